//! LEEF's syntax: the header and the delimited `key=value` attributes.
//!
//! LEEF 1.0 separates attributes by tab, but PAN-OS's predefined template
//! uses `|`; LEEF 2.0 names its delimiter in a sixth header field, as a
//! character or as hex (`^`, `x09`, `0x7C`). LEEF has no escapes, so a
//! delimiter inside a value is recognized by what follows it: a segment that
//! is not `key=value` belongs to the value before it.

use crate::ParseError;

const FORMAT: &str = "leef";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header<'a> {
    pub version: &'a str,
    pub vendor: &'a str,
    pub product: &'a str,
    pub device_version: &'a str,
    pub event_id: &'a str,
    /// Always one ASCII byte, never `=`.
    pub delimiter: u8,
    pub attributes: &'a str,
}

impl<'a> Header<'a> {
    pub fn parse(payload: &'a str) -> Result<Header<'a>, ParseError> {
        let rest = payload
            .strip_prefix("LEEF:")
            .ok_or_else(|| ParseError::malformed(FORMAT, "record does not start with `LEEF:`"))?;
        let mut fields = [""; 5];
        let mut tail = rest;
        for (n, field) in fields.iter_mut().enumerate() {
            let Some(bar) = tail.find('|') else {
                return Err(ParseError::malformed(
                    FORMAT,
                    format!("header has {} of its 5 `|`-separated fields", n + 1),
                ));
            };
            *field = &tail[..bar];
            tail = &tail[bar + 1..];
        }
        let [version, vendor, product, device_version, event_id] = fields;
        let version = version.trim();
        let (delimiter, attributes) = if version.starts_with('2') {
            leef2_delimiter(tail)?
        } else {
            (guess_delimiter(tail), tail)
        };
        Ok(Header {
            version,
            vendor,
            product,
            device_version,
            event_id,
            delimiter,
            attributes,
        })
    }
}

/// LEEF 2.0's delimiter field, then the attributes after it.
fn leef2_delimiter(tail: &str) -> Result<(u8, &str), ParseError> {
    // The delimiter may itself be `|`, written as is: `…|eventid|||key=…`.
    if let Some(attrs) = tail.strip_prefix("||") {
        return Ok((b'|', attrs));
    }
    let Some(bar) = tail.find('|') else {
        // No delimiter field: attributes right away, tab-separated.
        return Ok((b'\t', tail));
    };
    let spec = &tail[..bar];
    if spec.contains('=') {
        return Ok((guess_delimiter(tail), tail));
    }
    let delimiter = parse_delimiter(spec).ok_or_else(|| {
        ParseError::malformed(
            FORMAT,
            format!(
                "LEEF 2.0 delimiter `{}` is neither one ASCII character (other than `=`) nor hex like `x09`",
                spec.chars().take(16).collect::<String>()
            ),
        )
    })?;
    Ok((delimiter, &tail[bar + 1..]))
}

fn parse_delimiter(spec: &str) -> Option<u8> {
    let byte = match spec.as_bytes() {
        [] => b'\t',
        [c] => *c,
        _ => {
            let hex = spec
                .strip_prefix("0x")
                .or_else(|| spec.strip_prefix("0X"))
                .or_else(|| spec.strip_prefix("\\x"))
                .or_else(|| spec.strip_prefix('x'))
                .or_else(|| spec.strip_prefix('X'))?;
            if hex.is_empty() || hex.len() > 4 {
                return None;
            }
            u8::try_from(u32::from_str_radix(hex, 16).ok()?).ok()?
        }
    };
    // A non-ASCII byte would split characters; `=` would split pairs.
    (byte.is_ascii() && byte != b'=').then_some(byte)
}

/// LEEF 1.0: tab by the standard, `|` from PAN-OS. Whichever comes first
/// after the first `=` separates the attributes.
fn guess_delimiter(attrs: &str) -> u8 {
    let b = attrs.as_bytes();
    let after_eq = memchr::memchr(b'=', b).unwrap_or(0);
    match memchr::memchr2(b'\t', b'|', &b[after_eq..]) {
        Some(i) if b[after_eq + i] == b'|' => b'|',
        _ => b'\t',
    }
}

fn is_key(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|c| c.is_ascii_alphabetic())
        && bytes.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

/// Calls `f` with each attribute's key and value, in order.
pub(crate) fn for_each_attribute<'a>(
    attrs: &'a str,
    delimiter: u8,
    mut f: impl FnMut(&'a str, &'a str),
) -> Result<(), ParseError> {
    let b = attrs.as_bytes();
    // The attribute being read: its key, and where its value starts and ends.
    let mut pending: Option<(&'a str, usize, usize)> = None;
    let mut seg_start = 0;
    let mut first_eq = None;
    // One pass over the delimiters and `=` signs; both are ASCII, so every
    // cut falls between characters.
    let mut marks = memchr::memchr2_iter(delimiter, b'=', b);
    loop {
        let mark = marks.next();
        if let Some(i) = mark {
            if b[i] == b'=' {
                first_eq.get_or_insert(i);
                continue;
            }
        }
        let seg_end = mark.unwrap_or(b.len());
        let key = first_eq
            .map(|eq| (attrs[seg_start..eq].trim(), eq + 1))
            .filter(|(key, _)| is_key(key));
        if let Some((key, value_start)) = key {
            if let Some((k, vs, ve)) = pending.replace((key, value_start, seg_end)) {
                f(k, &attrs[vs..ve]);
            }
        } else if attrs[seg_start..seg_end].trim().is_empty() {
            // An empty segment (a doubled or trailing delimiter) holds nothing.
        } else if let Some((_, _, value_end)) = pending.as_mut() {
            // The delimiter was part of the value: extend it.
            *value_end = seg_end;
        } else {
            return Err(ParseError::malformed(
                FORMAT,
                format!(
                    "attributes must be `key=value`; found `{}`",
                    attrs[seg_start..seg_end]
                        .chars()
                        .take(40)
                        .collect::<String>()
                ),
            ));
        }
        if mark.is_none() {
            break;
        }
        seg_start = seg_end + 1;
        first_eq = None;
    }
    if let Some((k, vs, ve)) = pending {
        f(k, &attrs[vs..ve]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(header: &Header<'_>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for_each_attribute(header.attributes, header.delimiter, |k, v| {
            out.push((k.to_string(), v.to_string()))
        })
        .expect("attributes");
        out
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn panos_leef1_uses_pipes() {
        let h = Header::parse("LEEF:1.0|Palo Alto Networks|PAN-OS Syslog Integration|11.1.6-h14|allow|cat=TRAFFIC|src=1.2.3.4|usrName=|devTime=Sep 17 2025 11:45:34 GMT")
            .expect("header");
        assert_eq!((h.version, h.event_id, h.delimiter), ("1.0", "allow", b'|'));
        assert_eq!(
            attrs(&h),
            kv(&[
                ("cat", "TRAFFIC"),
                ("src", "1.2.3.4"),
                ("usrName", ""),
                ("devTime", "Sep 17 2025 11:45:34 GMT")
            ])
        );
    }

    #[test]
    fn standard_leef1_uses_tabs() {
        let h =
            Header::parse("LEEF:1.0|V|P|1|ev|src=1.2.3.4\tmsg=a|b c\tdst=5.6.7.8").expect("header");
        assert_eq!(h.delimiter, b'\t');
        assert_eq!(
            attrs(&h),
            kv(&[("src", "1.2.3.4"), ("msg", "a|b c"), ("dst", "5.6.7.8")])
        );
    }

    #[test]
    fn leef2_declares_its_delimiter() {
        for (spec, delim) in [
            ("^", '^'),
            ("x09", '\t'),
            ("0x7C", '|'),
            ("\\x5E", '^'),
            ("", '\t'),
        ] {
            let d = delim.to_string();
            let line = format!("LEEF:2.0|V|P|1|ev|{spec}|src=1.2.3.4{d}dst=5.6.7.8");
            let h = Header::parse(&line).expect(spec);
            assert_eq!(h.delimiter, delim as u8, "{spec}");
            assert_eq!(
                attrs(&h),
                kv(&[("src", "1.2.3.4"), ("dst", "5.6.7.8")]),
                "{spec}"
            );
        }
        let h = Header::parse("LEEF:2.0|V|P|1|ev|||src=1|dst=2").expect("literal pipe");
        assert_eq!(h.delimiter, b'|');
        assert_eq!(attrs(&h), kv(&[("src", "1"), ("dst", "2")]));
        for bad in ["xyz", "x3D", "é", "x100"] {
            let line = format!("LEEF:2.0|V|P|1|ev|{bad}|src=1");
            assert!(Header::parse(&line).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_delimiter_inside_a_value_stays_in_the_value() {
        let h = Header::parse("LEEF:1.0|V|P|1|ev|Miscellaneous=\"a.example/x|y\"|src=1.2.3.4|")
            .expect("header");
        assert_eq!(
            attrs(&h),
            kv(&[("Miscellaneous", "\"a.example/x|y\""), ("src", "1.2.3.4")])
        );
    }

    #[test]
    fn keys_are_trimmed() {
        let h = Header::parse("LEEF:1.0|V|P|1|ev| ReceiveTime=2025/09/17 13:45:34|RuleName =web")
            .expect("header");
        assert_eq!(
            attrs(&h),
            kv(&[("ReceiveTime", "2025/09/17 13:45:34"), ("RuleName", "web")])
        );
    }

    #[test]
    fn malformed_headers_and_attributes() {
        assert!(Header::parse("LEEF:1.0|V|P").is_err());
        assert!(Header::parse("CEF:0|V").is_err());
        let h = Header::parse("LEEF:1.0|V|P|1|ev|garbage without pairs").expect("header");
        assert!(for_each_attribute(h.attributes, h.delimiter, |_, _| {}).is_err());
    }
}
