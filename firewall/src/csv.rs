//! Quote-aware column splitting for the firewall's CSV formats.
//!
//! PAN-OS quotes a column when it may hold a comma (URLs, user agents, email
//! subjects, category lists) and doubles any quote inside it. Splitting is a
//! single SIMD scan for `,` and `"` that records where each column ends; the
//! columns themselves stay borrowed slices of the line, and only a column
//! with doubled quotes allocates when it is read.
//!
//! Real devices are not always strict: a quote inside a quoted column that is
//! followed by neither a comma, another quote nor the end of the line is kept
//! as a literal character instead of ending the column, and a quote in the
//! middle of an unquoted column is plain text.

use std::borrow::Cow;
use std::fmt;

use memchr::{memchr, memchr2_iter};

/// More columns than any PAN-OS layout has (123 in 11.1); past it a line is
/// refused before any further work.
pub const MAX_COLUMNS: usize = 512;

/// Why a line could not be split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitError {
    /// The line has more than [`MAX_COLUMNS`] columns.
    TooManyColumns,
    /// The line is longer than 4 GiB, beyond what column offsets can hold.
    TooLong,
}

/// The columns of one CSV line, borrowed from it.
pub struct Columns<'a> {
    line: &'a str,
    /// `ends[i]` is the byte offset of the separator closing column `i` (the
    /// line length for the last one); column `i` starts right after
    /// `ends[i - 1]`.
    ends: [u32; MAX_COLUMNS],
    len: usize,
}

impl fmt::Debug for Columns<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter_raw()).finish()
    }
}

impl<'a> Columns<'a> {
    /// Splits `line` on commas outside quotes. An empty line is one empty
    /// column.
    pub fn split(line: &'a str) -> Result<Columns<'a>, SplitError> {
        let bytes = line.as_bytes();
        if u32::try_from(bytes.len()).is_err() {
            return Err(SplitError::TooLong);
        }
        let mut ends = [0u32; MAX_COLUMNS];
        let mut len = 0usize;
        let mut col_start = 0usize;
        let mut in_quotes = false;
        // The second quote of a doubled `""` is reported by the scan too.
        let mut skip = usize::MAX;
        for pos in memchr2_iter(b',', b'"', bytes) {
            if bytes[pos] == b',' {
                if in_quotes {
                    continue;
                }
                if len == MAX_COLUMNS {
                    return Err(SplitError::TooManyColumns);
                }
                // Fits: the line length was checked against u32 above.
                ends[len] = pos as u32;
                len += 1;
                col_start = pos + 1;
            } else if pos == skip {
                continue;
            } else if in_quotes {
                match bytes.get(pos + 1) {
                    Some(b'"') => skip = pos + 1,
                    Some(b',') | None => in_quotes = false,
                    Some(_) => {}
                }
            } else if pos == col_start {
                in_quotes = true;
            }
        }
        if len == MAX_COLUMNS {
            return Err(SplitError::TooManyColumns);
        }
        ends[len] = bytes.len() as u32;
        len += 1;
        Ok(Columns { line, ends, len })
    }

    /// How many columns the line has.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true: even an empty line has one (empty) column.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The line the columns were split from.
    pub fn line(&self) -> &'a str {
        self.line
    }

    /// Column `i` exactly as it appears in the line, quotes included.
    pub fn raw(&self, i: usize) -> Option<&'a str> {
        if i >= self.len {
            return None;
        }
        let start = match i {
            0 => 0,
            _ => self.ends[i - 1] as usize + 1,
        };
        self.line.get(start..self.ends[i] as usize)
    }

    /// Column `i` without its surrounding quotes, doubled quotes left as
    /// they are; `""` when the line has no such column. For columns that
    /// never hold a quote (numbers, addresses, names): never allocates.
    pub fn field(&self, i: usize) -> &'a str {
        match self.raw(i) {
            Some(raw) => strip_quotes(raw),
            None => "",
        }
    }

    /// Column `i` as text: surrounding quotes removed and doubled quotes
    /// turned back into one. Allocates only in that last case.
    pub fn get(&self, i: usize) -> Option<Cow<'a, str>> {
        self.raw(i).map(unquote)
    }

    /// Every column, quotes included.
    pub fn iter_raw(&self) -> impl Iterator<Item = &'a str> + '_ {
        (0..self.len).filter_map(|i| self.raw(i))
    }
}

fn strip_quotes(raw: &str) -> &str {
    match raw.as_bytes() {
        [b'"', .., b'"'] if raw.len() >= 2 => &raw[1..raw.len() - 1],
        [b'"', ..] => &raw[1..],
        _ => raw,
    }
}

/// Removes a column's surrounding quotes and undoubles the quotes inside.
pub fn unquote(raw: &str) -> Cow<'_, str> {
    if !raw.starts_with('"') {
        return Cow::Borrowed(raw);
    }
    let inner = strip_quotes(raw);
    if memchr(b'"', inner.as_bytes()).is_none() {
        Cow::Borrowed(inner)
    } else {
        Cow::Owned(inner.replace("\"\"", "\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(line: &str) -> Vec<String> {
        let c = Columns::split(line).expect("split");
        (0..c.len())
            .map(|i| c.get(i).expect("column").into_owned())
            .collect()
    }

    #[test]
    fn splits_plain_columns_and_keeps_empty_ones() {
        assert_eq!(cols("a,,b,"), ["a", "", "b", ""]);
        assert_eq!(cols(""), [""]);
        assert_eq!(cols(",,"), ["", "", ""]);
    }

    #[test]
    fn quoted_columns_keep_their_commas_and_undouble_quotes() {
        assert_eq!(
            cols(r#"1,"Sub: Hello, Worlds","From: ""John Doe"" <jdoe@example.com>",x"#),
            [
                "1",
                "Sub: Hello, Worlds",
                r#"From: "John Doe" <jdoe@example.com>"#,
                "x"
            ]
        );
        assert_eq!(
            cols(r#""www.example.com/string/""hello""",(9999)"#),
            [r#"www.example.com/string/"hello""#, "(9999)"]
        );
        assert_eq!(cols(r#""","",x"#), ["", "", "x"]);
    }

    #[test]
    fn quotes_are_lenient_like_real_devices() {
        // A quote inside a quoted column that does not close it is literal.
        assert_eq!(cols(r#""a "b" c",d"#), [r#"a "b" c"#, "d"]);
        // A quote in the middle of an unquoted column is plain text.
        assert_eq!(cols(r#"ab"c,d"#), [r#"ab"c"#, "d"]);
        // An unterminated quote runs to the end of the line.
        assert_eq!(cols(r#"a,"b,c"#), ["a", "b,c"]);
    }

    #[test]
    fn borrowed_unless_quotes_were_doubled() {
        let c = Columns::split(r#"plain,"quoted, yes","dq""x""#).expect("split");
        assert!(matches!(c.get(0), Some(Cow::Borrowed("plain"))));
        assert!(matches!(c.get(1), Some(Cow::Borrowed("quoted, yes"))));
        assert!(matches!(c.get(2), Some(Cow::Owned(_))));
        assert_eq!(c.field(1), "quoted, yes");
        assert_eq!(c.raw(1), Some(r#""quoted, yes""#));
        assert_eq!(c.field(99), "");
        assert!(c.get(3).is_none());
    }

    #[test]
    fn refuses_more_than_the_column_cap() {
        let at_cap = ",".repeat(MAX_COLUMNS - 1);
        assert_eq!(Columns::split(&at_cap).map(|c| c.len()), Ok(MAX_COLUMNS));
        let over = ",".repeat(MAX_COLUMNS);
        assert_eq!(
            Columns::split(&over).err(),
            Some(SplitError::TooManyColumns)
        );
        let huge = "x,".repeat(10_000);
        assert_eq!(
            Columns::split(&huge).err(),
            Some(SplitError::TooManyColumns)
        );
    }

    #[test]
    fn multibyte_text_stays_intact() {
        assert_eq!(
            cols("Zürich,\"日本, 東京\",ü"),
            ["Zürich", "日本, 東京", "ü"]
        );
    }
}
