//! CEF's syntax: the pipe-separated header and the `key=value` extension,
//! with their escapes. Knows nothing of PAN-OS.

use std::borrow::Cow;

use crate::ParseError;

const FORMAT: &str = "cef";

/// The seven header fields, escapes still in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header<'a> {
    pub version: &'a str,
    pub vendor: &'a str,
    pub product: &'a str,
    pub device_version: &'a str,
    pub signature_id: &'a str,
    pub name: &'a str,
    pub severity: &'a str,
    pub extension: &'a str,
}

impl<'a> Header<'a> {
    /// Reads `CEF:Version|Vendor|Product|Version|Signature ID|Name|Severity|`
    /// where `\|` and `\\` are escapes inside a field.
    pub fn parse(payload: &'a str) -> Result<Header<'a>, ParseError> {
        let rest = payload
            .strip_prefix("CEF:")
            .ok_or_else(|| ParseError::malformed(FORMAT, "record does not start with `CEF:`"))?;
        let b = rest.as_bytes();
        let mut fields = [""; 7];
        let mut start = 0;
        let mut i = 0;
        let mut n = 0;
        while n < 7 {
            match b.get(i) {
                None => {
                    return Err(ParseError::malformed(
                        FORMAT,
                        format!("header has {} of its 7 `|`-separated fields", n + 1),
                    ))
                }
                Some(b'\\') => i += 2,
                Some(b'|') => {
                    fields[n] = &rest[start..i];
                    n += 1;
                    i += 1;
                    start = i;
                }
                Some(_) => i += 1,
            }
        }
        let [version, vendor, product, device_version, signature_id, name, severity] = fields;
        Ok(Header {
            version: version.trim(),
            vendor,
            product,
            device_version,
            signature_id,
            name,
            severity,
            extension: &rest[start..],
        })
    }
}

/// A header field with `\|` and `\\` undone.
pub(crate) fn unescape_header(s: &str) -> Cow<'_, str> {
    unescape(s, |c| match c {
        '|' => Some('|'),
        '\\' => Some('\\'),
        _ => None,
    })
}

/// An extension value with `\=`, `\\`, `\n`, `\r` (and a needless `\|`)
/// undone. Other backslashes are kept as sent.
pub(crate) fn unescape_value(s: &str) -> Cow<'_, str> {
    unescape(s, |c| match c {
        '=' => Some('='),
        '\\' => Some('\\'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        '|' => Some('|'),
        _ => None,
    })
}

fn unescape(s: &str, map: impl Fn(char) -> Option<char>) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(next) => match map(next) {
                Some(mapped) => out.push(mapped),
                None => {
                    out.push('\\');
                    out.push(next);
                }
            },
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// Iterates over the extension's `key=value` pairs, values still escaped.
///
/// A value runs to the last space before the next `key=` (spaces inside
/// values are allowed). An `=` counts as the start of a new pair only when
/// it is unescaped and the word before it is a valid key preceded by a
/// space: `request=http://x/?a=b` stays one value even from templates that
/// do not escape `=`.
#[derive(Debug, Clone)]
pub(crate) struct Extension<'a> {
    text: &'a str,
    /// Every `=` of the extension, in order: candidates for a key's end.
    equals: memchr::Memchr<'a>,
    /// Where the next key starts and where its `=` is, once known.
    next: Option<(usize, usize)>,
    done: bool,
}

impl<'a> Extension<'a> {
    pub fn new(text: &'a str) -> Extension<'a> {
        Extension {
            text,
            equals: memchr::memchr_iter(b'=', text.as_bytes()),
            next: None,
            done: false,
        }
    }

    /// The first pair must start the extension: leading spaces, a key, `=`.
    fn first_key(&mut self) -> Option<Result<(usize, usize), ParseError>> {
        let b = self.text.as_bytes();
        let start = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
        if start == b.len() {
            return None;
        }
        let key_len = b[start..].iter().take_while(|&&c| is_key_byte(c)).count();
        let eq = start + key_len;
        if key_len == 0 || b.get(eq) != Some(&b'=') || !b[start].is_ascii_alphabetic() {
            let found: String = self.text[start..].chars().take(40).collect();
            return Some(Err(ParseError::malformed(
                FORMAT,
                format!("extension must be `key=value` pairs; found `{found}`"),
            )));
        }
        // Key bytes exclude `=`, so this is the first `=` of the text.
        self.equals.next();
        Some(Ok((start, eq)))
    }
}

fn is_key_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

fn escaped(b: &[u8], pos: usize) -> bool {
    b[..pos].iter().rev().take_while(|&&c| c == b'\\').count() % 2 == 1
}

impl<'a> Iterator for Extension<'a> {
    type Item = Result<(&'a str, &'a str), ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let (key_start, eq) = match self.next.take() {
            Some(next) => next,
            None => match self.first_key() {
                Some(Ok(first)) => first,
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                None => {
                    self.done = true;
                    return None;
                }
            },
        };
        let b = self.text.as_bytes();
        let value_start = eq + 1;
        let mut value_end = b.len();
        // Each `=` after the value's start is a candidate for the next key's;
        // the word before it is scanned back only as far as key bytes go.
        for at in self.equals.by_ref() {
            let next_key_len = b[value_start..at]
                .iter()
                .rev()
                .take_while(|&&c| is_key_byte(c))
                .count();
            let next_key = at - next_key_len;
            if next_key_len > 0
                && next_key > value_start
                && b[next_key - 1] == b' '
                && b[next_key].is_ascii_alphabetic()
                && !escaped(b, at)
            {
                self.next = Some((next_key, at));
                value_end = next_key - 1;
                break;
            }
        }
        if self.next.is_none() {
            self.done = true;
        }
        let key = &self.text[key_start..eq];
        let value = self.text[value_start..value_end].trim_end_matches(' ');
        Some(Ok((key, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(ext: &str) -> Vec<(&str, &str)> {
        Extension::new(ext).map(|r| r.expect("pair")).collect()
    }

    #[test]
    fn header_fields_and_escaped_pipes() {
        let h =
            Header::parse(r"CEF:0|Palo Alto Networks|PAN-OS|10.1.3|spy\|ware|THREAT|8|src=1.2.3.4")
                .expect("header");
        assert_eq!(h.version, "0");
        assert_eq!(h.vendor, "Palo Alto Networks");
        assert_eq!(h.signature_id, r"spy\|ware");
        assert_eq!(unescape_header(h.signature_id), "spy|ware");
        assert_eq!(h.name, "THREAT");
        assert_eq!(h.severity, "8");
        assert_eq!(h.extension, "src=1.2.3.4");

        let h = Header::parse(r"CEF:0|a\\|b|c|d|e|f|").expect("header");
        assert_eq!(unescape_header(h.vendor), r"a\");
        assert_eq!(h.product, "b");
        assert_eq!(h.extension, "");
    }

    #[test]
    fn header_needs_seven_fields() {
        let err = Header::parse("CEF:0|a|b|c").expect_err("short");
        assert!(err.to_string().contains("4 of its 7"), "{err}");
        assert!(Header::parse(r"CEF:0|a|b|c|d|e|f\|").is_err());
        assert!(Header::parse("LEEF:1.0|x").is_err());
    }

    #[test]
    fn values_with_spaces_run_to_the_next_key() {
        assert_eq!(
            pairs("cs1Label=Rule cs1=allow web out src=10.0.0.1  msg=two  spaces "),
            vec![
                ("cs1Label", "Rule"),
                ("cs1", "allow web out"),
                ("src", "10.0.0.1"),
                ("msg", "two  spaces")
            ]
        );
    }

    #[test]
    fn escaped_and_unescaped_equals_in_values() {
        let p = pairs(r"request=http://x.example/?a=b&c=d msg=a\=b c\\ cat=x");
        assert_eq!(p[0], ("request", "http://x.example/?a=b&c=d"));
        assert_eq!(p[1], ("msg", r"a\=b c\\"));
        assert_eq!(unescape_value(p[1].1), r"a=b c\");
        assert_eq!(p[2], ("cat", "x"));
        assert_eq!(
            unescape_value(r"line1\nline2\rend \d"),
            "line1\nline2\rend \\d"
        );
    }

    #[test]
    fn empty_values_and_dashed_keys() {
        assert_eq!(
            pairs("duser= PanOSX-Forwarded-ForIP=1.2.3.4 suser="),
            vec![
                ("duser", ""),
                ("PanOSX-Forwarded-ForIP", "1.2.3.4"),
                ("suser", "")
            ]
        );
        assert!(pairs("   ").is_empty());
    }

    #[test]
    fn malformed_extensions_are_errors() {
        for ext in ["just words", "=value", "1abc=x", "src 1.2.3.4"] {
            let first = Extension::new(ext).next().expect("one item");
            assert!(first.is_err(), "{ext}");
        }
    }
}
