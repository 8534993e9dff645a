//! Byte-level readers for the timestamps found in syslog headers and in the
//! firewall's key/value formats. Hand-written rather than `chrono`'s format
//! strings: they run on every record, and they must say how many bytes they
//! consumed so that the header parser can go on from there.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// `Jan` … `Dec`, any letter case, to 1 … 12.
pub(crate) fn month_from_abbr(b: &[u8]) -> Option<u32> {
    if b.len() != 3 {
        return None;
    }
    let lower = [
        b[0].to_ascii_lowercase(),
        b[1].to_ascii_lowercase(),
        b[2].to_ascii_lowercase(),
    ];
    Some(match &lower {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    })
}

/// Reads exactly `n` ASCII digits at `pos`.
pub(crate) fn digits(b: &[u8], pos: usize, n: usize) -> Option<u32> {
    let s = b.get(pos..pos + n)?;
    let mut v = 0u32;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// Reads one or two digits at `pos`; returns the value and the bytes read.
pub(crate) fn one_or_two_digits(b: &[u8], pos: usize) -> Option<(u32, usize)> {
    let first = *b.get(pos)?;
    if !first.is_ascii_digit() {
        return None;
    }
    match b.get(pos + 1) {
        Some(c) if c.is_ascii_digit() => {
            Some((u32::from(first - b'0') * 10 + u32::from(c - b'0'), 2))
        }
        _ => Some((u32::from(first - b'0'), 1)),
    }
}

/// `hh:mm:ss` at `pos`, then an optional `.fraction`. Returns
/// (hour, minute, second, nanoseconds, bytes read). Values are not checked
/// against their ranges here; building the date does that.
pub(crate) fn clock(b: &[u8], pos: usize) -> Option<(u32, u32, u32, u32, usize)> {
    let h = digits(b, pos, 2)?;
    if b.get(pos + 2) != Some(&b':') {
        return None;
    }
    let m = digits(b, pos + 3, 2)?;
    if b.get(pos + 5) != Some(&b':') {
        return None;
    }
    let s = digits(b, pos + 6, 2)?;
    let mut end = pos + 8;
    let mut nanos = 0u32;
    if b.get(end) == Some(&b'.') && b.get(end + 1).is_some_and(u8::is_ascii_digit) {
        end += 1;
        let mut scale = 100_000_000u32;
        while let Some(c) = b.get(end).filter(|c| c.is_ascii_digit()) {
            // Digits past nanoseconds are read and dropped.
            nanos += u32::from(c - b'0') * scale;
            scale /= 10;
            end += 1;
        }
    }
    Some((h, m, s, nanos, end - pos))
}

fn naive(
    year: i32,
    month: u32,
    day: u32,
    h: u32,
    m: u32,
    s: u32,
    nanos: u32,
) -> Option<NaiveDateTime> {
    // A leap second (`:60`) is folded into the last nanosecond of the minute's
    // 59th second rather than rejected: it is a hint, not a fact to refuse.
    let (s, nanos) = if s == 60 {
        (59, 999_999_999)
    } else {
        (s, nanos)
    };
    NaiveDate::from_ymd_opt(year, month, day)?.and_hms_nano_opt(h, m, s, nanos)
}

/// A UTC offset at `pos`: `Z`, `z`, `+hh:mm`, `+hhmm` or `+hh`. Returns the
/// offset in seconds east and the bytes read.
pub(crate) fn offset(b: &[u8], pos: usize) -> Option<(i32, usize)> {
    match b.get(pos)? {
        b'Z' | b'z' => Some((0, 1)),
        sign @ (b'+' | b'-') => {
            let hh = digits(b, pos + 1, 2)?;
            let (mm, len) = if b.get(pos + 3) == Some(&b':') {
                (digits(b, pos + 4, 2)?, 6)
            } else if let Some(mm) = digits(b, pos + 3, 2) {
                (mm, 5)
            } else {
                (0, 3)
            };
            if hh > 23 || mm > 59 {
                return None;
            }
            let secs = (hh * 3600 + mm * 60) as i32;
            Some((if *sign == b'-' { -secs } else { secs }, len))
        }
        _ => None,
    }
}

/// An RFC 3339 / ISO 8601 timestamp with a zone at the start of `b`:
/// `2021-10-28T02:58:53.586Z`, `2023-07-06T08:11:40+02:00`, Suricata's
/// `2021-06-03T10:00:01.123456+0000`. Returns the instant and the bytes read;
/// `None` if the bytes do not have that shape or the date does not exist.
pub(crate) fn rfc3339_prefix(b: &[u8]) -> Option<(DateTime<Utc>, usize)> {
    let year = digits(b, 0, 4)?;
    if b.get(4) != Some(&b'-') {
        return None;
    }
    let month = digits(b, 5, 2)?;
    if b.get(7) != Some(&b'-') {
        return None;
    }
    let day = digits(b, 8, 2)?;
    if !matches!(b.get(10), Some(b'T' | b't')) {
        return None;
    }
    let (h, m, s, nanos, clock_len) = clock(b, 11)?;
    let pos = 11 + clock_len;
    let (off, off_len) = offset(b, pos)?;
    let dt = naive(year as i32, month, day, h, m, s, nanos)?;
    let utc = dt.checked_sub_signed(chrono::TimeDelta::seconds(i64::from(off)))?;
    Some((Utc.from_utc_datetime(&utc), pos + off_len))
}

/// A whole string that is an RFC 3339 timestamp (surrounding spaces allowed).
pub(crate) fn parse_rfc3339(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    match rfc3339_prefix(s.as_bytes()) {
        Some((dt, len)) if len == s.len() => Some(dt),
        _ => None,
    }
}

/// An RFC 3164 (BSD) timestamp at the start of `b`: `Mmm dd hh:mm:ss`, where
/// the day may be space-padded (`Feb  2`), unpadded (`Mar 9`) or, as some
/// relays write it, padded and two digits wide (`Feb  22`). A year after the
/// day (`Mmm dd yyyy hh:mm:ss`), as some devices send, is read too.
///
/// Returns the parsed instant (if the values form a real date) and the bytes
/// read. The header has no year and no zone: the year is taken from `now`,
/// stepping back one year when that would put the stamp more than a month in
/// the future (a December log read in January), and the zone is taken as UTC.
pub(crate) fn bsd_prefix(
    b: &[u8],
    now: &dyn Fn() -> DateTime<Utc>,
) -> Option<(Option<DateTime<Utc>>, usize)> {
    // ctime's form, `Sun Jun 28 06:00:19 2026`, leads with the weekday and
    // ends with the year.
    let ctime = b.get(3) == Some(&b' ') && b.get(0..3).is_some_and(is_weekday);
    let mut pos = if ctime { 4 } else { 0 };
    let month = month_from_abbr(b.get(pos..pos + 3)?)?;
    pos += 3;
    let spaces = count_spaces(b, pos);
    if spaces == 0 || spaces > 2 {
        return None;
    }
    pos += spaces;
    let (day, day_len) = one_or_two_digits(b, pos)?;
    pos += day_len;
    let spaces = count_spaces(b, pos);
    if spaces != 1 {
        return None;
    }
    pos += 1;
    let mut year = None;
    if let (Some(y), Some(b' ')) = (digits(b, pos, 4), b.get(pos + 4)) {
        year = Some(y as i32);
        pos += 5;
    }
    let (h, m, s, nanos, clock_len) = clock(b, pos)?;
    pos += clock_len;
    if ctime && year.is_none() {
        if let (Some(b' '), Some(y)) = (b.get(pos), digits(b, pos + 1, 4)) {
            if matches!(b.get(pos + 5), None | Some(b' ')) {
                year = Some(y as i32);
                pos += 5;
            }
        }
    }
    let at = match year {
        Some(y) => naive(y, month, day, h, m, s, nanos).map(|dt| Utc.from_utc_datetime(&dt)),
        // The clock is read only here: it costs as much as the rest of the
        // header.
        None => infer_year(month, day, h, m, s, nanos, now()),
    };
    Some((at, pos))
}

fn is_weekday(b: &[u8]) -> bool {
    const DAYS: [&[u8; 3]; 7] = [b"mon", b"tue", b"wed", b"thu", b"fri", b"sat", b"sun"];
    let lower = [
        b[0].to_ascii_lowercase(),
        b[1].to_ascii_lowercase(),
        b[2].to_ascii_lowercase(),
    ];
    DAYS.iter().any(|d| **d == lower)
}

fn infer_year(
    month: u32,
    day: u32,
    h: u32,
    m: u32,
    s: u32,
    nanos: u32,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let this_year = now.year();
    let limit = now + chrono::TimeDelta::days(31);
    // Feb 29 may exist in the previous year only; try both before giving up.
    for year in [this_year, this_year - 1] {
        if let Some(dt) = naive(year, month, day, h, m, s, nanos) {
            let dt = Utc.from_utc_datetime(&dt);
            if dt <= limit {
                return Some(dt);
            }
        }
    }
    None
}

fn count_spaces(b: &[u8], pos: usize) -> usize {
    b.get(pos..)
        .map_or(0, |rest| rest.iter().take_while(|&&c| c == b' ').count())
}

/// The `MMM dd yyyy HH:mm:ss[.fff] [zone]` form PAN-OS calls
/// "cef-formatted" (CEF `rt`, LEEF `devTime`): `Sep 17 2025 11:45:34 GMT`.
/// A zone of `GMT`/`UTC`/`Z`, a numeric offset or an IANA name is honoured;
/// without one, or with an abbreviation that names no single zone (`PST`),
/// `default_tz` applies and `zone_guessed` is set so that the caller can warn.
pub(crate) fn parse_cef_time(s: &str, default_tz: chrono_tz::Tz) -> Option<(DateTime<Utc>, bool)> {
    let b = s.trim().as_bytes();
    let month = month_from_abbr(b.get(0..3)?)?;
    let mut pos = 3;
    let spaces = count_spaces(b, pos);
    if spaces == 0 {
        return None;
    }
    pos += spaces;
    let (day, day_len) = one_or_two_digits(b, pos)?;
    pos += day_len;
    if b.get(pos) != Some(&b' ') {
        return None;
    }
    let year = digits(b, pos + 1, 4)? as i32;
    pos += 5;
    if b.get(pos) != Some(&b' ') {
        return None;
    }
    let (h, m, s, nanos, clock_len) = clock(b, pos + 1)?;
    pos += 1 + clock_len;
    let dt = naive(year, month, day, h, m, s, nanos)?;
    let zone = std::str::from_utf8(&b[pos..]).ok()?.trim();
    in_zone(dt, zone, default_tz)
}

/// PAN-OS's own `yyyy/mm/dd hh:mm:ss` (CSV and LEEF `ReceiveTime`), in the
/// firewall's local zone. Unpadded months and days (`2018/12/5`) are read.
pub(crate) fn parse_panos_local(s: &str, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    let b = s.trim().as_bytes();
    let year = digits(b, 0, 4)? as i32;
    if b.get(4) != Some(&b'/') {
        return None;
    }
    let (month, mlen) = one_or_two_digits(b, 5)?;
    let mut pos = 5 + mlen;
    if b.get(pos) != Some(&b'/') {
        return None;
    }
    let (day, dlen) = one_or_two_digits(b, pos + 1)?;
    pos += 1 + dlen;
    if b.get(pos) != Some(&b' ') {
        return None;
    }
    let (h, m, sec, nanos, clen) = clock(b, pos + 1)?;
    if pos + 1 + clen != b.len() {
        return None;
    }
    let dt = naive(year, month, day, h, m, sec, nanos)?;
    local_to_utc(dt, tz)
}

fn in_zone(
    dt: NaiveDateTime,
    zone: &str,
    default_tz: chrono_tz::Tz,
) -> Option<(DateTime<Utc>, bool)> {
    if zone.is_empty() {
        return local_to_utc(dt, default_tz).map(|t| (t, true));
    }
    if zone.eq_ignore_ascii_case("gmt") || zone.eq_ignore_ascii_case("utc") || zone == "Z" {
        return Some((Utc.from_utc_datetime(&dt), false));
    }
    let zb = zone.as_bytes();
    // `GMT+02:00` / `UTC-0500` spell an offset after the name.
    let numeric = if zb.len() > 3
        && (zone[..3].eq_ignore_ascii_case("gmt") || zone[..3].eq_ignore_ascii_case("utc"))
    {
        &zb[3..]
    } else {
        zb
    };
    if let Some((secs, len)) = offset(numeric, 0) {
        if len == numeric.len() {
            let fixed = FixedOffset::east_opt(secs)?;
            return fixed
                .from_local_datetime(&dt)
                .single()
                .map(|t| (t.with_timezone(&Utc), false));
        }
    }
    if let Ok(tz) = zone.parse::<chrono_tz::Tz>() {
        return local_to_utc(dt, tz).map(|t| (t, false));
    }
    local_to_utc(dt, default_tz).map(|t| (t, true))
}

/// A local wall-clock time to UTC. In the hour a DST change repeats, the
/// earlier instant is taken; a time skipped by the change does not exist and
/// is read as if the clock had not moved yet (shifted by the gap).
pub(crate) fn local_to_utc(dt: NaiveDateTime, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&dt) {
        chrono::LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        chrono::LocalResult::Ambiguous(a, _) => Some(a.with_timezone(&Utc)),
        chrono::LocalResult::None => tz
            .from_local_datetime(&(dt + chrono::TimeDelta::hours(1)))
            .earliest()
            .map(|t| t.with_timezone(&Utc) - chrono::TimeDelta::hours(1)),
    }
}

/// Epoch milliseconds (13 digits) or seconds (10 digits or fewer), as some
/// PAN-OS CEF templates send `rt`.
pub(crate) fn parse_epoch(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.is_empty() || s.len() > 16 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n: i64 = s.parse().ok()?;
    if s.len() >= 12 {
        DateTime::from_timestamp_millis(n)
    } else {
        DateTime::from_timestamp(n, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("test timestamp")
    }

    #[test]
    fn rfc3339_accepts_every_offset_spelling() {
        let cases = [
            ("2021-10-28T02:58:53.586Z", "2021-10-28T02:58:53.586Z"),
            ("2023-07-06T08:11:40+02:00", "2023-07-06T06:11:40Z"),
            (
                "2021-06-03T10:00:01.123456+0000",
                "2021-06-03T10:00:01.123456Z",
            ),
            (
                "2022-07-12T05:52:18.378379-0000",
                "2022-07-12T05:52:18.378379Z",
            ),
            ("2025-07-14T09:50:36-04:00", "2025-07-14T13:50:36Z"),
            (
                "2017-04-07T22:24:37.251547+0100",
                "2017-04-07T21:24:37.251547Z",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_rfc3339(input), Some(at(want)), "{input}");
        }
    }

    #[test]
    fn rfc3339_rejects_near_misses() {
        for input in [
            "2021-10-28 02:58:53Z",
            "2021-10-28T02:58:53",
            "2021-13-28T02:58:53Z",
            "2021-02-30T02:58:53Z",
            "2021-10-28T02:58Z",
            "1,2024/01/01",
            "",
        ] {
            assert_eq!(parse_rfc3339(input), None, "{input}");
        }
    }

    #[test]
    fn bsd_infers_the_year_and_steps_back_over_new_year() {
        let now = at("2024-01-03T00:00:00Z");
        let (t, len) = bsd_prefix(b"Dec 31 23:59:59 host", &|| now).expect("shape");
        assert_eq!(t, Some(at("2023-12-31T23:59:59Z")));
        assert_eq!(len, 15);
        let (t, _) = bsd_prefix(b"Jan  2 10:00:00 x", &|| now).expect("shape");
        assert_eq!(t, Some(at("2024-01-02T10:00:00Z")));
    }

    #[test]
    fn bsd_reads_padding_quirks() {
        let now = at("2024-06-01T00:00:00Z");
        for (input, want_len) in [
            ("Feb  2 11:30:47", 15),
            ("Feb  22 21:32:20", 16),
            ("Mar 9 14:47:44", 14),
            ("jul 23 15:45:11.123", 19),
            ("Mar 01 2021 20:48:21", 20),
        ] {
            let (t, len) = bsd_prefix(input.as_bytes(), &|| now).expect(input);
            assert!(t.is_some(), "{input}");
            assert_eq!(len, want_len, "{input}");
        }
        let (t, len) = bsd_prefix(b"Sun Jun 28 06:00:19 2026 host", &|| now).expect("ctime");
        assert_eq!(t, Some(at("2026-06-28T06:00:19Z")));
        assert_eq!(len, 24);
        let (t, len) = bsd_prefix(b"Fri Jun 14 06:00:19 host", &|| now).expect("ctime, no year");
        assert_eq!(t, Some(at("2024-06-14T06:00:19Z")));
        assert_eq!(len, 19);
        assert!(bsd_prefix(b"Foo 12 10:00:00", &|| now).is_none());
        assert!(bsd_prefix(b"Feb 12 1000:00", &|| now).is_none());
        // The shape is a header even if the values are not a real date.
        let (t, _) = bsd_prefix(b"Feb 31 10:00:00", &|| now).expect("shape");
        assert_eq!(t, None);
    }

    #[test]
    fn cef_time_honours_its_zone_or_falls_back() {
        let tz: chrono_tz::Tz = "Europe/Berlin".parse().expect("tz");
        assert_eq!(
            parse_cef_time("Sep 17 2025 11:45:34 GMT", tz),
            Some((at("2025-09-17T11:45:34Z"), false))
        );
        assert_eq!(
            parse_cef_time("Sep 17 2025 13:45:34", tz),
            Some((at("2025-09-17T11:45:34Z"), true))
        );
        assert_eq!(
            parse_cef_time("Mar 01 2021 20:48:21 +01:00", tz),
            Some((at("2021-03-01T19:48:21Z"), false))
        );
        assert_eq!(
            parse_cef_time("Mar 01 2021 20:48:21 America/New_York", tz),
            Some((at("2021-03-02T01:48:21Z"), false))
        );
        assert_eq!(
            parse_cef_time("Mar 01 2021 20:48:21 PST", chrono_tz::Tz::UTC),
            Some((at("2021-03-01T20:48:21Z"), true))
        );
        assert_eq!(parse_cef_time("2021-03-01 20:48:21", tz), None);
    }

    #[test]
    fn panos_local_time_uses_the_firewall_zone() {
        let tz: chrono_tz::Tz = "Europe/Berlin".parse().expect("tz");
        assert_eq!(
            parse_panos_local("2025/09/17 13:45:34", tz),
            Some(at("2025-09-17T11:45:34Z"))
        );
        assert_eq!(
            parse_panos_local("2018/12/5 13:15:16", chrono_tz::Tz::UTC),
            Some(at("2018-12-05T13:15:16Z"))
        );
        assert_eq!(parse_panos_local("2018/12/5", chrono_tz::Tz::UTC), None);
    }

    #[test]
    fn epoch_distinguishes_seconds_from_milliseconds() {
        assert_eq!(
            parse_epoch("1614631701000"),
            Some(at("2021-03-01T20:48:21Z"))
        );
        assert_eq!(parse_epoch("1614631701"), Some(at("2021-03-01T20:48:21Z")));
        assert_eq!(parse_epoch("16146x"), None);
    }
}
