//! Turning one column into one event field.
//!
//! Missing values are `None`, never empty strings: an empty or blank column
//! is absent. A value that is present but malformed (an address like
//! `172.300.28.33`, a port of `70000`) leaves the field absent and is recorded
//! with [`ThreatEvent::warn`]: a damaged log still reaches the playbooks.

use std::net::{IpAddr, Ipv4Addr};

use crate::csv::Columns;
use crate::{Str, ThreatEvent};

/// Longest excerpt of a bad value quoted in `error.message`.
const EXCERPT: usize = 64;

/// A column as text: trimmed, `None` when empty.
#[inline(always)]
pub(crate) fn text(cols: &Columns<'_>, i: u16) -> Option<Str> {
    let i = usize::from(i);
    match cols.plain(i) {
        Some(v) => nonempty(v).map(Str::new),
        None => undoubled(cols, i).map(|v| Str::new(&v)),
    }
}

/// A column as an owned `String` (long values: URLs, user agents).
#[inline(always)]
pub(crate) fn string(cols: &Columns<'_>, i: u16) -> Option<String> {
    let i = usize::from(i);
    match cols.plain(i) {
        Some(v) => nonempty(v).map(str::to_owned),
        None => undoubled(cols, i),
    }
}

/// The trimmed text of a column with doubled quotes, turned back into
/// single ones; rare, so kept out of the way of the common path.
#[cold]
#[inline(never)]
fn undoubled(cols: &Columns<'_>, i: usize) -> Option<String> {
    let v = cols.get(i)?.into_owned();
    let t = nonempty(&v)?;
    Some(if t.len() == v.len() { v } else { t.to_owned() })
}

/// The trimmed value, `None` when blank.
#[inline]
pub(crate) fn nonempty(s: &str) -> Option<&str> {
    let t = s.trim_ascii();
    (!t.is_empty()).then_some(t)
}

/// A column as a plain (unquoted) trimmed slice, `""` when absent.
#[inline(always)]
pub(crate) fn raw<'a>(cols: &Columns<'a>, i: u16) -> &'a str {
    cols.field(usize::from(i)).trim_ascii()
}

#[inline(always)]
pub(crate) fn ip(ev: &mut ThreatEvent, name: &str, cols: &Columns<'_>, i: u16) -> Option<IpAddr> {
    let v = raw(cols, i);
    if v.is_empty() {
        return None;
    }
    if let Some(v4) = ipv4(v.as_bytes()) {
        return Some(IpAddr::V4(v4));
    }
    other_ip(ev, name, v)
}

/// IPv6, or not an address at all: kept off the IPv4 path.
#[inline(never)]
fn other_ip(ev: &mut ThreatEvent, name: &str, v: &str) -> Option<IpAddr> {
    match v.parse() {
        Ok(addr) => Some(addr),
        Err(_) => {
            ev.warn(name, format_args!("`{}` is not an IP address", excerpt(v)));
            None
        }
    }
}

/// A NAT address: `0.0.0.0` (or `::`) is how PAN-OS writes "no translation",
/// so it is absent rather than a fake address a playbook could act on.
#[inline(always)]
pub(crate) fn nat_ip(
    ev: &mut ThreatEvent,
    name: &str,
    cols: &Columns<'_>,
    i: u16,
) -> Option<IpAddr> {
    ip(ev, name, cols, i).filter(|a| !a.is_unspecified())
}

#[inline(always)]
pub(crate) fn port(ev: &mut ThreatEvent, name: &str, cols: &Columns<'_>, i: u16) -> Option<u16> {
    number(ev, name, cols, i, "port")
}

/// A NAT port: `0` means "no translation", like a `0.0.0.0` NAT address.
#[inline(always)]
pub(crate) fn nat_port(
    ev: &mut ThreatEvent,
    name: &str,
    cols: &Columns<'_>,
    i: u16,
) -> Option<u16> {
    port(ev, name, cols, i).filter(|p| *p != 0)
}

#[inline(always)]
pub(crate) fn number<T: TryFrom<u64>>(
    ev: &mut ThreatEvent,
    name: &str,
    cols: &Columns<'_>,
    i: u16,
    what: &str,
) -> Option<T> {
    let v = raw(cols, i);
    if v.is_empty() {
        return None;
    }
    let n = match word_at(cols.line(), v) {
        Some(word) if v.len() <= 8 => short_number(word, v.len()),
        _ => decimal(v.as_bytes()),
    };
    match n.and_then(|n| T::try_from(n).ok()) {
        Some(n) => Some(n),
        None => {
            not_a_number(ev, name, v, what);
            None
        }
    }
}

/// The eight bytes of `line` from where `v` (a slice of it) starts: a
/// column and what follows it, for readers that take whole words. `None`
/// within eight bytes of the end of the line.
#[inline(always)]
fn word_at(line: &str, v: &str) -> Option<u64> {
    // Addresses only: `v` lies inside `line`.
    let at = (v.as_ptr() as usize).checked_sub(line.as_ptr() as usize)?;
    let bytes = line.as_bytes().get(at..)?.first_chunk::<8>()?;
    Some(u64::from_le_bytes(*bytes))
}

/// The number in the first `len` (1 to 8) bytes of `word`: the digits are
/// moved to the end of the word, zeros fill the front, and the eight are
/// read at once. No loop whose length depends on the number of digits.
#[inline(always)]
fn short_number(word: u64, len: usize) -> Option<u64> {
    let pad = 8 * (8 - len);
    let digits = (word & (u64::MAX >> pad)) << pad;
    let zeros = 0x3030_3030_3030_3030 & !(u64::MAX << pad);
    eight_digits(&(digits | zeros).to_le_bytes())
}

#[cold]
#[inline(never)]
fn not_a_number(ev: &mut ThreatEvent, name: &str, v: &str, what: &str) {
    ev.warn(name, format_args!("`{}` is not a valid {what}", excerpt(v)));
}

/// A dotted-quad IPv4 address (the common case, parsed without the
/// generality of `IpAddr::from_str`); `None` sends anything else there.
/// Like `Ipv4Addr::from_str`: one to three digits per octet, no leading
/// zeros, nothing after the fourth octet.
#[inline]
fn ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    let digit = |i: usize| {
        b.get(i)
            .map(|c| c.wrapping_sub(b'0'))
            .filter(|d| *d <= 9)
            .map(u32::from)
    };
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (k, octet) in octets.iter_mut().enumerate() {
        if k > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let first = digit(i)?;
        let mut v = first;
        i += 1;
        if let Some(d) = digit(i) {
            if first == 0 {
                return None;
            }
            v = v * 10 + d;
            i += 1;
            if let Some(d) = digit(i) {
                v = v * 10 + d;
                i += 1;
            }
        }
        *octet = u8::try_from(v).ok()?;
    }
    (i == b.len()).then_some(Ipv4Addr::from(octets))
}

/// An unsigned decimal number that fits in u64.
#[inline]
pub(crate) fn decimal(b: &[u8]) -> Option<u64> {
    if b.is_empty() {
        return None;
    }
    if b.len() < 20 {
        return short_decimal(b);
    }
    // Leading zeros only matter to the length check.
    let b = match b.iter().position(|d| *d != b'0') {
        Some(first) => &b[first..],
        None => return Some(0),
    };
    match b.len() {
        0..=19 => short_decimal(b),
        20 => {
            let mut v = 0u64;
            for d in b {
                if !d.is_ascii_digit() {
                    return None;
                }
                v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            }
            Some(v)
        }
        _ => None,
    }
}

/// One to 19 digits: no overflow possible.
#[inline]
fn short_decimal(b: &[u8]) -> Option<u64> {
    let mut v = 0u64;
    let mut rest = b;
    while let Some((eight, tail)) = rest.split_first_chunk::<8>() {
        v = v * 100_000_000 + eight_digits(eight)?;
        rest = tail;
    }
    for &c in rest {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u64::from(d);
    }
    Some(v)
}

/// Eight decimal digits at once (pairs, then quads, then the eight); `None`
/// unless all eight bytes are digits.
#[inline]
fn eight_digits(b: &[u8; 8]) -> Option<u64> {
    const HIGH: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    let x = u64::from_le_bytes(*b);
    // Every byte in 0x30..=0x3f, and still there after adding 6 (so at most
    // 0x39); the first test rules out the carries that could fool the second.
    if x & HIGH != ZEROS || x.wrapping_add(0x0606_0606_0606_0606) & HIGH != ZEROS {
        return None;
    }
    let d = x - ZEROS;
    let d = (d * 10 + (d >> 8)) & 0x00ff_00ff_00ff_00ff;
    let d = (d * 100 + (d >> 16)) & 0x0000_ffff_0000_ffff;
    Some((d * 10_000 + (d >> 32)) & 0xffff_ffff)
}

/// The source or destination user. PAN-OS writes `x-fwd-for: <client ip>`
/// when User-ID read the client from an X-Forwarded-For header but mapped it
/// to no user; the client identity is kept without the prefix.
#[inline(always)]
pub(crate) fn user(cols: &Columns<'_>, i: u16) -> Option<Str> {
    let i = usize::from(i);
    match cols.plain(i) {
        Some(v) => without_xff(nonempty(v)?).map(Str::new),
        None => undoubled(cols, i).and_then(|v| without_xff(&v).map(Str::new)),
    }
}

fn without_xff(v: &str) -> Option<&str> {
    const XFF: &str = "x-fwd-for:";
    match v.get(..XFF.len()) {
        Some(prefix) if prefix.eq_ignore_ascii_case(XFF) => nonempty(&v[XFF.len()..]),
        _ => Some(v),
    }
}

/// Splits a THREAT "Threat ID" column into name and numeric id.
///
/// PAN-OS writes `Name(id)`; the name may itself hold `:` `/` and
/// parentheses (`Suspicious DNS Query (generic:example.com)(4100111)`,
/// `Windows Executable (EXE)(52020)`), so only the last parenthesised group,
/// when it is all digits, is the id. URL logs write `(9999)`: an id and no
/// name. Strata Logging Service may write the bare number.
pub(crate) fn threat_id(v: &str) -> (Option<&str>, Option<u64>) {
    let v = v.trim_ascii();
    if v.is_empty() {
        return (None, None);
    }
    if let Some(body) = v.strip_suffix(')') {
        // The digits before the closing parenthesis, read backwards: the
        // name before them can be long.
        let b = body.as_bytes();
        let digits_from = b
            .iter()
            .rposition(|c| !c.is_ascii_digit())
            .map_or(0, |p| p + 1);
        if digits_from > 0 && b[digits_from - 1] == b'(' {
            let digits = &body[digits_from..];
            if let Some(id) = parse_digits(digits) {
                let name = body[..digits_from - 1].trim_end();
                // Old WildFire lines repeat the id as the name: `428148050(428148050)`.
                let name = (!name.is_empty() && name != digits).then_some(name);
                return (name, Some(id));
            }
        }
    }
    if let Some(id) = parse_digits(v) {
        return (None, Some(id));
    }
    (Some(v), None)
}

fn parse_digits(s: &str) -> Option<u64> {
    decimal(s.as_bytes())
}

/// A SHA-256 digest: 64 hex digits. PAN-OS fills the File Digest column
/// with `0` or other placeholders when there is no file.
pub(crate) fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `8-4-4-4-12` hex digits.
pub(crate) fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// At most [`EXCERPT`] bytes of `s`, cut on a character boundary.
pub(crate) fn excerpt(s: &str) -> &str {
    if s.len() <= EXCERPT {
        return s;
    }
    let mut end = EXCERPT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threat_id_keeps_names_with_parentheses_and_colons() {
        assert_eq!(
            threat_id("Suspicious DNS Query (generic:hashimshafiq.no-ip.biz)(4100111)"),
            (
                Some("Suspicious DNS Query (generic:hashimshafiq.no-ip.biz)"),
                Some(4100111)
            )
        );
        assert_eq!(
            threat_id("Phishing:example.com(109010001)"),
            (Some("Phishing:example.com"), Some(109010001))
        );
        assert_eq!(
            threat_id("Windows Executable (EXE)(52020)"),
            (Some("Windows Executable (EXE)"), Some(52020))
        );
        assert_eq!(
            threat_id("HTTP /etc/passwd Access Attempt(30852)"),
            (Some("HTTP /etc/passwd Access Attempt"), Some(30852))
        );
    }

    #[test]
    fn threat_id_for_urls_and_bare_numbers() {
        assert_eq!(threat_id("(9999)"), (None, Some(9999)));
        assert_eq!(threat_id("21000"), (None, Some(21000)));
        assert_eq!(threat_id("428148050(428148050)"), (None, Some(428148050)));
        assert_eq!(threat_id(""), (None, None));
    }

    #[test]
    fn threat_id_without_a_numeric_suffix_is_all_name() {
        assert_eq!(
            threat_id("Odd Name (beta)"),
            (Some("Odd Name (beta)"), None)
        );
        assert_eq!(
            threat_id("Overflow(99999999999999999999999)"),
            (Some("Overflow(99999999999999999999999)"), None)
        );
        assert_eq!(threat_id("()"), (Some("()"), None));
    }

    #[test]
    fn users_lose_the_xff_prefix_only() {
        let c =
            Columns::split(r#"x-fwd-for: 11.22.33.44,example\jdoe,, ,X-FWD-FOR:"#).expect("split");
        assert_eq!(user(&c, 0).as_deref(), Some("11.22.33.44"));
        assert_eq!(user(&c, 1).as_deref(), Some(r"example\jdoe"));
        assert_eq!(user(&c, 2), None);
        assert_eq!(user(&c, 3), None);
        assert_eq!(user(&c, 4), None);
    }

    #[test]
    fn fast_ipv4_agrees_with_the_standard_parser() {
        for s in [
            "10.244.1.17",
            "0.0.0.0",
            "255.255.255.255",
            "1.2.3",
            "172.300.28.33",
            "01.2.3.4",
            "1.2.3.4.",
            ".1.2.3",
            "1..2.3",
            "1.2.3.4 ",
            "1.2.3.04",
            "1234.1.1.1",
            "",
            "a.b.c.d",
            "fe80::1",
            "::ffff:1.2.3.4",
        ] {
            let std: Option<Ipv4Addr> = s.parse().ok();
            assert_eq!(ipv4(s.as_bytes()), std, "{s}");
        }
    }

    proptest::proptest! {
        #[test]
        fn fast_ipv4_agrees_on_any_digits_and_dots(s in "[0-9.]{0,17}") {
            let std: Option<Ipv4Addr> = s.parse().ok();
            proptest::prop_assert_eq!(ipv4(s.as_bytes()), std);
        }


        #[test]
        fn decimal_agrees_with_the_standard_parser(s in "[0-9]{1,21}") {
            proptest::prop_assert_eq!(decimal(s.as_bytes()), s.parse::<u64>().ok());
        }

        #[test]
        fn decimal_refuses_what_the_standard_parser_refuses(s in "[0-9]{0,9}[/:a+ \\x00\\u{ff}]?[0-9]{0,12}") {
            let std = s.parse::<u64>().ok().filter(|_| !s.starts_with('+'));
            proptest::prop_assert_eq!(decimal(s.as_bytes()), std);
        }

        #[test]
        fn threat_id_agrees_with_reading_the_last_group(name in "[A-Za-z (:)0-9]{0,20}", id in "[0-9]{0,12}") {
            let v = format!("{name}({id})");
            let (got_name, got_id) = threat_id(&v);
            // The reference: the last `(` of the trimmed value and what
            // follows it.
            let t = v.trim_ascii();
            let open = t.rfind('(').expect("has a parenthesis");
            let digits = &t[open + 1..t.len() - 1];
            let want_id = digits.parse::<u64>().ok().filter(|_| digits.bytes().all(|c| c.is_ascii_digit()));
            proptest::prop_assert_eq!(got_id, want_id.or_else(|| t.parse().ok()));
            if want_id.is_some() {
                let n = t[..open].trim_end();
                proptest::prop_assert_eq!(got_name, (!n.is_empty() && n != digits).then_some(n));
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn short_numbers_read_like_decimal(v in "[0-9]{1,8}|[0-9a-f +-]{1,8}", tail in "[,0-9a-z]{8}") {
            let line = format!("{v}{tail}");
            let word = word_at(&line, &line[..v.len()]).expect("eight bytes");
            proptest::prop_assert_eq!(short_number(word, v.len()), decimal(v.as_bytes()));
        }
    }

    #[test]
    fn decimals_refuse_signs_overflow_and_junk() {
        assert_eq!(decimal(b"7331912355678901234"), Some(7331912355678901234));
        assert_eq!(decimal(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(decimal(b"18446744073709551616"), None);
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b"1 ",
            b"0x10",
            b"123456789012345678901",
        ] {
            assert_eq!(decimal(bad), None);
        }
    }

    #[test]
    fn digests_and_uuids_are_recognised() {
        assert!(is_sha256(
            "85dde742f22216725f0ff6b172ca68f4f30f02029f08b3079cec34da804db793"
        ));
        assert!(!is_sha256("0"));
        assert!(!is_sha256(&"g".repeat(64)));
        assert!(is_uuid("a40f8ec5-109d-4dc5-b09d-33b848f5bd09"));
        assert!(!is_uuid("123458"));
    }

    #[test]
    fn excerpts_cut_on_char_boundaries() {
        let long = "é".repeat(100);
        assert!(excerpt(&long).len() <= EXCERPT);
        assert_eq!(excerpt("short"), "short");
    }
}
