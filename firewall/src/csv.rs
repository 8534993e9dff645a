//! Quote-aware column splitting for the firewall's CSV formats.
//!
//! PAN-OS quotes a column when it may hold a comma (URLs, user agents, email
//! subjects, category lists) and doubles any quote inside it. Splitting scans
//! 64 bytes per step: the block's commas and quotes become two bit masks
//! (SSE2 compares through `safe_arch`, the workspace forbidding `unsafe`;
//! plain integer arithmetic on other targets), each comma ends a column, and
//! a comma followed by a quote opens a quoted column whose end is looked up
//! directly. Blocks without such a comma, most of a line, store their commas
//! in one branch-light pass. The columns stay borrowed slices of the line;
//! only a column with doubled quotes allocates, and only when it is read.
//!
//! Real devices are not always strict: a quote inside a quoted column that is
//! followed by neither a comma, another quote nor the end of the line is kept
//! as a literal character instead of ending the column, and a quote in the
//! middle of an unquoted column is plain text. An unterminated quoted column
//! runs to the end of the line.

use std::borrow::Cow;
use std::fmt;

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
    /// `ends[i - 1]`. Exactly 2 KiB: one more entry would tip the zeroing
    /// of the table into a slower `rep stosb` path of the C library.
    ends: [u32; MAX_COLUMNS],
    /// Bit `i`: column `i` opened with a quote.
    quoted: [u64; MAX_COLUMNS / 64],
    /// Bit `i`: column `i` holds a doubled quote to undo.
    doubled: [u64; MAX_COLUMNS / 64],
    len: usize,
    /// False when [`Columns::scan_upto`] left the end of the line unsplit.
    complete: bool,
}

fn set_bit(bits: &mut [u64; MAX_COLUMNS / 64], i: usize) {
    if let Some(w) = bits.get_mut(i / 64) {
        *w |= 1 << (i % 64);
    }
}

#[inline(always)]
fn bit(bits: &[u64; MAX_COLUMNS / 64], i: usize) -> bool {
    bits.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
}

/// The commas and the quotes of a 64-byte block as bit masks (bit `i` is
/// byte `i`): SSE2 compares, 16 bytes at a time.
#[cfg(all(
    any(target_arch = "x86_64", target_arch = "x86"),
    target_feature = "sse2"
))]
#[inline]
fn block_masks(block: &[u8; 64]) -> (u64, u64) {
    use safe_arch::{
        cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i, set_splat_i8_m128i,
    };
    let comma = set_splat_i8_m128i(b',' as i8);
    let quote = set_splat_i8_m128i(b'"' as i8);
    let (mut commas, mut quotes) = (0u64, 0u64);
    for (i, chunk) in block.chunks_exact(16).enumerate() {
        let Ok(chunk) = <&[u8; 16]>::try_from(chunk) else {
            continue;
        };
        let v = load_unaligned_m128i(chunk);
        // The mask is 16 bits wide: the cast only drops the sign.
        let c = move_mask_i8_m128i(cmp_eq_mask_i8_m128i(v, comma)) as u16;
        let q = move_mask_i8_m128i(cmp_eq_mask_i8_m128i(v, quote)) as u16;
        commas |= u64::from(c) << (16 * i);
        quotes |= u64::from(q) << (16 * i);
    }
    (commas, quotes)
}

#[cfg(not(all(
    any(target_arch = "x86_64", target_arch = "x86"),
    target_feature = "sse2"
)))]
#[inline]
fn block_masks(block: &[u8; 64]) -> (u64, u64) {
    portable_masks(block)
}

/// [`block_masks`] in plain integer arithmetic, eight bytes at a time: for
/// targets without SSE2.
#[cfg_attr(
    all(
        any(target_arch = "x86_64", target_arch = "x86"),
        target_feature = "sse2"
    ),
    allow(dead_code)
)]
#[inline]
fn portable_masks(block: &[u8; 64]) -> (u64, u64) {
    let (mut not_commas, mut not_quotes) = (0u64, 0u64);
    for (i, chunk) in block.chunks_exact(8).enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let w = u64::from_le_bytes(w);
        not_commas |= movemask(nonzero_bytes(w ^ 0x2c2c_2c2c_2c2c_2c2c)) << (i * 8);
        not_quotes |= movemask(nonzero_bytes(w ^ 0x2222_2222_2222_2222)) << (i * 8);
    }
    // Inverted once per block rather than once per word.
    (!not_commas, !not_quotes)
}

/// 0x80 in every non-zero byte of `x`, 0 elsewhere (exact: no carries
/// between bytes).
#[inline]
fn nonzero_bytes(x: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    (((x & LOW7).wrapping_add(LOW7)) | x) & !LOW7
}

/// Gathers the high bit of each byte into the low 8 bits (byte `i` to bit
/// `i`).
#[inline]
fn movemask(x: u64) -> u64 {
    ((x >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// The masks of the block of `bytes` starting at `base`; a short last block
/// is padded with zeros.
#[inline]
fn masks_at(bytes: &[u8], base: usize) -> (u64, u64) {
    match bytes
        .get(base..base + 64)
        .and_then(|b| <&[u8; 64]>::try_from(b).ok())
    {
        Some(block) => block_masks(block),
        None => {
            let mut block = [0u8; 64];
            let rest = bytes.get(base..).unwrap_or_default();
            block[..rest.len()].copy_from_slice(rest);
            block_masks(&block)
        }
    }
}

/// Column `n` of `line` read as if no column before it held a quote, for a
/// quick look at a line's first columns before splitting it: one mask of
/// the first 64 bytes finds the commas when the column ends within them.
pub fn leading_column(line: &str, n: usize) -> Option<&str> {
    let (mut commas, _) = masks_at(line.as_bytes(), 0);
    if line.len() < 64 {
        // The padding is not a line's text.
        commas &= (1u64 << line.len()) - 1;
    }
    // The `n` commas before the column and the one after it, when in the
    // block.
    let mut start = 0;
    for _ in 0..n {
        if commas == 0 {
            return leading_column_slow(line, n);
        }
        start = commas.trailing_zeros() as usize + 1;
        commas &= commas - 1;
    }
    let end = match commas {
        0 if line.len() <= 64 => line.len(),
        0 => return leading_column_slow(line, n),
        _ => commas.trailing_zeros() as usize,
    };
    line.get(start..end)
}

fn leading_column_slow(line: &str, n: usize) -> Option<&str> {
    let mut rest = line;
    for _ in 0..n {
        let i = memchr::memchr(b',', rest.as_bytes())?;
        rest = &rest[i + 1..];
    }
    let end = memchr::memchr(b',', rest.as_bytes()).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Where the quoted column whose opening quote is at `open` ends: the
/// position of its closing quote, and whether it held doubled quotes. `None`
/// when it never closes. `quotes` is the quote mask of the block starting at
/// `base`: short columns close in it without another search.
#[inline]
fn closing_quote(bytes: &[u8], open: usize, base: usize, quotes: u64) -> (Option<usize>, bool) {
    let mut doubled = false;
    let mut from = open + 1;
    loop {
        let in_block = match from.checked_sub(base) {
            Some(skip) if skip < 64 => quotes & (u64::MAX << skip),
            _ => 0,
        };
        let q = if in_block != 0 {
            base + in_block.trailing_zeros() as usize
        } else {
            let from = from.max(base + 64);
            match bytes
                .get(from..)
                .and_then(|rest| memchr::memchr(b'"', rest))
            {
                Some(q) => from + q,
                None => return (None, doubled),
            }
        };
        match bytes.get(q + 1) {
            Some(b'"') => {
                doubled = true;
                from = q + 2;
            }
            Some(b',') | None => return (Some(q), doubled),
            // A stray quote inside a quoted column: literal.
            Some(_) => from = q + 1,
        }
    }
}

/// Marks column `col`, opening with the quote at `open`, as quoted and
/// returns where its content ends (the position after the closing quote), or
/// `None` when it runs to the end of the line.
fn quoted_column(
    quoted: &mut [u64; MAX_COLUMNS / 64],
    doubled: &mut [u64; MAX_COLUMNS / 64],
    col: usize,
    bytes: &[u8],
    open: usize,
    (base, quotes): (usize, u64),
) -> Option<usize> {
    set_bit(quoted, col);
    let (close, has_doubled) = closing_quote(bytes, open, base, quotes);
    if has_doubled {
        set_bit(doubled, col);
    }
    close.map(|q| q + 1)
}

/// Records the commas of `commas` (bits of the block at `base`) as the ends
/// of the next columns.
#[inline]
fn push_commas(
    ends: &mut [u32; MAX_COLUMNS],
    len: &mut usize,
    base: usize,
    mut commas: u64,
) -> Result<(), SplitError> {
    match ends
        .get_mut(*len..)
        .and_then(|rest| rest.first_chunk_mut::<64>())
    {
        // Room for any block: no check per column (a mask has at most 64
        // bits, so the index never wraps).
        Some(slots) => {
            // Eight slots a round, whether or not eight commas are left: a
            // block rarely holds more, so the loop runs once and its end is
            // predictable. Slots past the last comma get stray values that
            // nothing reads (`k + j` stays below 64: no index wraps).
            let n = commas.count_ones() as usize;
            let mut k = 0usize;
            while k < n {
                for j in 0..8 {
                    // Fits: the line length was checked against u32 before
                    // the scan.
                    slots[(k + j) & 63] = (base + commas.trailing_zeros() as usize) as u32;
                    commas &= commas.wrapping_sub(1);
                }
                k += 8;
            }
            *len += n;
        }
        None => {
            while commas != 0 {
                let Some(slot) = ends.get_mut(*len) else {
                    return Err(SplitError::TooManyColumns);
                };
                *slot = (base + commas.trailing_zeros() as usize) as u32;
                commas &= commas - 1;
                *len += 1;
            }
        }
    }
    // The last slot is kept for the end of the line.
    if *len >= MAX_COLUMNS {
        return Err(SplitError::TooManyColumns);
    }
    Ok(())
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
        let mut c = Columns::new(line);
        c.scan()?;
        Ok(c)
    }

    /// `line`, not split yet: [`Columns::scan`] splits it in place, so that
    /// a caller keeping the columns on its stack never moves the 2 KiB table.
    pub fn new(line: &'a str) -> Columns<'a> {
        Columns {
            line,
            ends: [0u32; MAX_COLUMNS],
            quoted: [0u64; MAX_COLUMNS / 64],
            doubled: [0u64; MAX_COLUMNS / 64],
            len: 0,
            complete: false,
        }
    }

    /// Splits the line given to [`Columns::new`].
    pub fn scan(&mut self) -> Result<(), SplitError> {
        self.scan_upto(MAX_COLUMNS)
    }

    /// Splits the line given to [`Columns::new`] as far as reading its first
    /// `wanted` columns needs: once they are split, the rest of the line is
    /// left alone when it is too short to hold the columns that would take
    /// the line over [`MAX_COLUMNS`] (so that limit is still enforced).
    /// [`Columns::len`] then counts only the columns split, at least
    /// `wanted`, and [`Columns::is_complete`] is false. Calling
    /// [`Columns::scan`] afterwards splits the whole line.
    pub fn scan_upto(&mut self, wanted: usize) -> Result<(), SplitError> {
        let Columns {
            line,
            ends,
            quoted,
            doubled,
            len: columns,
            complete,
        } = self;
        let bytes = line.as_bytes();
        if u32::try_from(bytes.len()).is_err() {
            return Err(SplitError::TooLong);
        }
        // Columns closed so far: the index of the open one.
        let mut len = 0usize;
        // Commas before `resume` are inside a quoted column.
        let mut resume = 0usize;
        if bytes.first() == Some(&b'"') {
            let (_, quotes) = masks_at(bytes, 0);
            resume = quoted_column(quoted, doubled, 0, bytes, 0, (0, quotes)).unwrap_or(usize::MAX);
        }
        let mut base = 0usize;
        'blocks: while base < bytes.len() {
            if len >= wanted && len + (bytes.len() - base) < MAX_COLUMNS {
                // Every column wanted is split, and the rest of the line has
                // too few bytes for too many columns.
                *columns = len;
                *complete = false;
                return Ok(());
            }
            let block_end = base + 64;
            if resume >= block_end {
                if resume == usize::MAX {
                    break;
                }
                base = block_end;
                continue;
            }
            let (mut commas, quotes) = masks_at(bytes, base);
            if resume > base {
                commas &= u64::MAX << (resume - base);
            }
            // Commas followed by a quote, which opens a quoted column; the
            // byte after the block counts for the block's last comma.
            let next_is_quote = u64::from(bytes.get(block_end) == Some(&b'"'));
            let mut opens = commas & ((quotes >> 1) | (next_is_quote << 63));
            // Plain commas in one go up to each quoted column, which is then
            // skipped whole.
            while opens != 0 {
                let at = opens.trailing_zeros();
                let upto = commas & (u64::MAX >> (63 - at));
                push_commas(ends, &mut len, base, upto)?;
                commas &= !upto;
                match quoted_column(
                    quoted,
                    doubled,
                    len,
                    bytes,
                    base + at as usize + 1,
                    (base, quotes),
                ) {
                    Some(r) => {
                        resume = r;
                        let keep = match r.checked_sub(base) {
                            Some(skip) if skip < 64 => u64::MAX << skip,
                            _ => 0,
                        };
                        commas &= keep;
                        opens &= keep;
                    }
                    // Unterminated: the column runs to the end of the line.
                    None => break 'blocks,
                }
            }
            push_commas(ends, &mut len, base, commas)?;
            base = block_end;
        }
        let Some(slot) = ends.get_mut(len) else {
            return Err(SplitError::TooManyColumns);
        };
        *slot = bytes.len() as u32;
        *columns = len + 1;
        *complete = true;
        Ok(())
    }

    /// False when [`Columns::scan_upto`] left the end of the line unsplit.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// How many columns the line has (how many were split, after
    /// [`Columns::scan_upto`] stopped early).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True only before [`Columns::scan`]: even an empty line has one
    /// (empty) column.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The line the columns were split from.
    pub fn line(&self) -> &'a str {
        self.line
    }

    /// Column `i` exactly as it appears in the line, quotes included.
    #[inline(always)]
    pub fn raw(&self, i: usize) -> Option<&'a str> {
        if i >= self.len {
            return None;
        }
        let end = *self.ends.get(i)? as usize;
        let start = match i.checked_sub(1) {
            Some(prev) => *self.ends.get(prev)? as usize + 1,
            None => 0,
        };
        self.line.get(start..end)
    }

    /// Column `i` without its surrounding quotes (`""` when the line has no
    /// such column), or `None` when it holds doubled quotes that only
    /// [`Columns::get`] turns back into one. The doubled quotes are looked
    /// up only for quoted columns.
    #[inline(always)]
    pub fn plain(&self, i: usize) -> Option<&'a str> {
        match self.raw(i) {
            Some(raw) if bit(&self.quoted, i) => {
                (!bit(&self.doubled, i)).then(|| strip_quotes(raw))
            }
            Some(raw) => Some(raw),
            None => Some(""),
        }
    }

    /// Column `i` without its surrounding quotes, doubled quotes left as
    /// they are; `""` when the line has no such column. For columns that
    /// never hold a quote (numbers, addresses, names): never allocates.
    #[inline(always)]
    pub fn field(&self, i: usize) -> &'a str {
        match self.raw(i) {
            Some(raw) if bit(&self.quoted, i) => strip_quotes(raw),
            Some(raw) => raw,
            None => "",
        }
    }

    /// Column `i` as text: surrounding quotes removed and doubled quotes
    /// turned back into one. Allocates only in that last case.
    pub fn get(&self, i: usize) -> Option<Cow<'a, str>> {
        let raw = self.raw(i)?;
        Some(if !bit(&self.quoted, i) {
            Cow::Borrowed(raw)
        } else if !bit(&self.doubled, i) {
            Cow::Borrowed(strip_quotes(raw))
        } else {
            Cow::Owned(strip_quotes(raw).replace("\"\"", "\""))
        })
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
    if !inner.contains('"') {
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
        assert_eq!(c.plain(0), Some("plain"));
        assert_eq!(c.plain(1), Some("quoted, yes"));
        assert_eq!(c.plain(2), None);
        assert_eq!(c.plain(99), Some(""));
        assert_eq!(c.raw(1), Some(r#""quoted, yes""#));
        assert_eq!(c.field(99), "");
        assert!(c.get(3).is_none());
    }

    #[test]
    fn a_partial_split_keeps_the_wanted_columns_and_the_cap() {
        let line = format!("{},\"q,uoted\",{}", "a,".repeat(200), "b,".repeat(40));
        let full = Columns::split(&line).expect("split");
        let mut part = Columns::new(&line);
        part.scan_upto(100).expect("split");
        assert!(!part.is_complete());
        assert!(part.len() >= 100 && part.len() < full.len());
        for i in 0..part.len() {
            assert_eq!(part.raw(i), full.raw(i), "{i}");
        }
        assert_eq!(part.raw(part.len()), None);
        // Splitting again finishes the job.
        part.scan().expect("split");
        assert!(part.is_complete());
        assert_eq!(part.len(), full.len());
        // Lines that could go over the cap are split to the end, so the cap
        // is still enforced; short lines are complete anyway.
        let over = format!("{}x", ",".repeat(MAX_COLUMNS));
        assert_eq!(
            Columns::new(&over).scan_upto(10),
            Err(SplitError::TooManyColumns)
        );
        let mut short = Columns::new("a,b,c");
        short.scan_upto(2).expect("split");
        assert!(short.is_complete() && short.len() == 3);
    }

    proptest::proptest! {
        #[test]
        fn leading_columns_are_the_plain_split(line in "[a,é]{0,150}", n in 0usize..8) {
            let want = line.split(',').nth(n);
            proptest::prop_assert_eq!(leading_column(&line, n), want);
        }
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

    /// The same rules, one byte at a time: what the block scan must match.
    fn reference(line: &str) -> Vec<(String, bool, bool)> {
        let b = line.as_bytes();
        let (mut out, mut start, mut in_q, mut quoted, mut doubled) =
            (Vec::new(), 0, false, false, false);
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b',' if !in_q => {
                    out.push((line[start..i].to_owned(), quoted, doubled));
                    (start, quoted, doubled) = (i + 1, false, false);
                }
                b'"' if in_q => match b.get(i + 1) {
                    Some(b'"') => {
                        doubled = true;
                        i += 1;
                    }
                    Some(b',') | None => in_q = false,
                    Some(_) => {}
                },
                b'"' if i == start => (in_q, quoted) = (true, true),
                _ => {}
            }
            i += 1;
        }
        out.push((line[start..].to_owned(), quoted, doubled));
        out
    }

    fn scanned(line: &str) -> Vec<(String, bool, bool)> {
        let c = Columns::split(line).expect("split");
        (0..c.len())
            .map(|i| {
                let raw = c.raw(i).expect("raw").to_owned();
                (raw, bit(&c.quoted, i), bit(&c.doubled, i))
            })
            .collect()
    }

    #[test]
    fn block_scan_matches_the_bytewise_rules_across_block_edges() {
        // Quotes and commas placed on every offset around the 64-byte edges.
        for pad in 0..140 {
            let prefix = "x".repeat(pad);
            let long = format!(",\"{}\",z,\"{}\"\"\"", "y,".repeat(70), "w,".repeat(40));
            for tail in [
                r#","a""b",c"#,
                r#","",""#,
                r#","a,b"""#,
                r#",""""#,
                r#"a"b,"c"d",e"#,
                r#","unterminated,x"#,
                r#""first,col",x"#,
                long.as_str(),
            ] {
                let line = format!("{prefix}{tail}");
                assert_eq!(scanned(&line), reference(&line), "{line}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn block_scan_matches_the_bytewise_rules(line in "[a,\"]{0,300}") {
            proptest::prop_assert_eq!(scanned(&line), reference(&line));
        }
    }

    #[test]
    fn masks_find_exactly_the_commas_and_quotes() {
        let mut block = [0u8; 64];
        for (i, b) in block.iter_mut().enumerate() {
            *b = [
                b',',
                b'"',
                b'a',
                0x2c ^ 0x80,
                0xa2,
                b'-',
                b'<',
                0xff,
                b'\'',
                0x22 ^ 0x80,
            ][i % 10];
        }
        // Both implementations: the portable one runs on targets without
        // SSE2, which CI does not build for.
        for (commas, quotes) in [block_masks(&block), portable_masks(&block)] {
            for (i, b) in block.iter().enumerate() {
                assert_eq!(commas >> i & 1 == 1, *b == b',', "{i}");
                assert_eq!(quotes >> i & 1 == 1, *b == b'"', "{i}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn both_mask_implementations_agree(block in proptest::collection::vec(proptest::prelude::any::<u8>(), 64)) {
            let block: [u8; 64] = block.try_into().expect("64 bytes");
            proptest::prop_assert_eq!(block_masks(&block), portable_masks(&block));
        }
    }

    #[test]
    fn multibyte_text_stays_intact() {
        assert_eq!(
            cols("Zürich,\"日本, 東京\",ü"),
            ["Zürich", "日本, 東京", "ü"]
        );
    }
}
