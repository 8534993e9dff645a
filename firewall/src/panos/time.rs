//! PAN-OS timestamps, parsed by hand: this runs three times per log line.
//!
//! Two spellings occur: the firewall's own `YYYY/MM/DD HH:MM:SS` in the
//! device's local time with no zone (month, day and hour are not always
//! zero-padded: `2018/12/5 13:15:16`), and ISO 8601 with a fraction and an
//! offset (`2024-08-19T13:58:32.880+00:00`, `2021-10-28T02:58:52.000000Z`) in
//! the High Resolution Timestamp and everywhere in Strata Logging Service
//! output. A zone-less time is read in the configured zone; a local time that
//! falls in a daylight-saving gap is read with the offset in force before the
//! gap (so 02:30 on a spring-forward night is 03:30 summer time), and one that
//! occurs twice in autumn is taken at its first occurrence.

use std::cell::Cell;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// A parsed timestamp, before the zone is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stamp {
    /// Wall-clock time with no zone: seconds as if it were UTC.
    Local { secs: i64, nanos: u32 },
    /// A time that carried its own offset.
    Exact(DateTime<Utc>),
}

impl Stamp {
    /// The instant, reading a zone-less time in `tz`.
    pub(crate) fn resolve(self, tz: Tz) -> Option<DateTime<Utc>> {
        match self {
            Stamp::Exact(t) => Some(t),
            Stamp::Local { secs, nanos } => {
                if is_utc(tz) {
                    return instant(secs, nanos);
                }
                if let Some(offset) = cached_offset(tz, secs) {
                    return instant(secs.checked_sub(offset)?, nanos);
                }
                let naive = DateTime::from_timestamp(secs, nanos)?.naive_utc();
                if let Some(t) = tz.from_local_datetime(&naive).earliest() {
                    return Some(t.with_timezone(&Utc));
                }
                // A gap: no zone has two transitions within three hours.
                let before = naive.checked_sub_signed(TimeDelta::hours(3))?;
                let offset = match tz.offset_from_local_datetime(&before).earliest() {
                    Some(o) => o.fix(),
                    None => tz.offset_from_utc_datetime(&naive).fix(),
                };
                let utc = secs.checked_sub(i64::from(offset.local_minus_utc()))?;
                DateTime::from_timestamp(utc, nanos)
            }
        }
    }
}

/// A `YYYY/MM/DD HH` prefix (its bytes 0..8 and 5..13 as two words) and the
/// seconds at the start of that hour. All zeros matches no prefix.
type HourStart = (u64, u64, i64);

thread_local! {
    /// The last calendar day turned into a date: every line carries two or
    /// three times, nearly always of the same day.
    static DAY: Cell<Option<(i64, NaiveDate)>> = const { Cell::new(None) };
    /// The seconds at the start of the last `YYYY/MM/DD HH` (slot 0) and
    /// `YYYY-MM-DDTHH` (slot 1) prefix read, keyed by the prefix itself:
    /// consecutive logs share their date and hour, so only minutes,
    /// seconds and what follows are read digit by digit.
    static HOURS: [Cell<HourStart>; 2] = const { [Cell::new((0, 0, 0)), Cell::new((0, 0, 0))] };
    /// The zone's offset for the last local hour looked up, when that whole
    /// hour has one unambiguous offset: consecutive logs almost always fall in
    /// the same hour, and the zone database is slow next to the rest of a
    /// parse.
    static HOUR_OFFSET: Cell<Option<(Tz, i64, i64)>> = const { Cell::new(None) };
}

/// The offset (local minus UTC, seconds) in force at local time `secs`, when
/// its hour has a single one.
fn cached_offset(tz: Tz, secs: i64) -> Option<i64> {
    let hour = secs.div_euclid(3600);
    if let Some((t, h, offset)) = HOUR_OFFSET.get() {
        if t == tz && h == hour {
            return Some(offset);
        }
    }
    let at = |s: i64| {
        let naive = DateTime::from_timestamp(s, 0)?.naive_utc();
        tz.offset_from_local_datetime(&naive)
            .single()
            .map(|o| i64::from(o.fix().local_minus_utc()))
    };
    let start = at(hour * 3600)?;
    if at(hour * 3600 + 3599)? != start {
        return None;
    }
    HOUR_OFFSET.set(Some((tz, hour, start)));
    Some(start)
}

/// `secs` seconds and `nanos` nanoseconds after the Unix epoch, as
/// `DateTime::from_timestamp` gives it (`None` out of range), with the date
/// of the day reused from the previous call.
fn instant(secs: i64, nanos: u32) -> Option<DateTime<Utc>> {
    let day = secs.div_euclid(86_400);
    // In 0..86_400: the cast cannot truncate.
    let second = secs.rem_euclid(86_400) as u32;
    let date = match DAY.get() {
        Some((d, date)) if d == day => date,
        _ => {
            let date = DateTime::from_timestamp(day.checked_mul(86_400)?, 0)?.date_naive();
            DAY.set(Some((day, date)));
            date
        }
    };
    let time = NaiveTime::from_num_seconds_from_midnight_opt(second, nanos)?;
    Some(NaiveDateTime::new(date, time).and_utc())
}

fn is_utc(tz: Tz) -> bool {
    matches!(
        tz,
        Tz::UTC | Tz::Etc__UTC | Tz::GMT | Tz::Etc__GMT | Tz::Zulu
    )
}

/// Parses and resolves in one step; `None` when the text is no timestamp.
pub(crate) fn parse_in(s: &str, tz: Tz) -> Option<DateTime<Utc>> {
    parse(s)?.resolve(tz)
}

/// True when `s` starts like a date (`YYYY/` or `YYYY-`): cheap layout
/// detection, not validation.
pub(crate) fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10 && b[..4].iter().all(u8::is_ascii_digit) && (b[4] == b'/' || b[4] == b'-')
}

/// True when `s` is an ISO 8601 timestamp (`YYYY-MM-DDTHH:MM:SS…`).
pub(crate) fn looks_like_iso(s: &str) -> bool {
    looks_like_date(s) && s.as_bytes().get(10) == Some(&b'T') && parse(s).is_some()
}

/// Parses either spelling. Never panics; `None` for anything else.
pub(crate) fn parse(s: &str) -> Option<Stamp> {
    let b = s.trim_ascii().as_bytes();
    let (secs, mut p) = match padded(b) {
        Some(secs) => {
            if let Some(stamp) = common_tail(b.get(19..).unwrap_or_default(), secs) {
                return stamp;
            }
            (secs, Cursor { b, i: 19 })
        }
        None => {
            let (year, month, day, hour, minute, second, p) = unpadded(b)?;
            if !(1..=12).contains(&month)
                || day == 0
                || day > days_in_month(year, month)
                || hour > 23
                || minute > 59
                || second > 59
            {
                return None;
            }
            let secs = days_from_civil(year, month, day) * 86_400
                + i64::from(hour) * 3600
                + i64::from(minute) * 60
                + i64::from(second);
            (secs, p)
        }
    };
    let mut nanos = 0u32;
    if p.peek() == Some(b'.') {
        p.i += 1;
        let start = p.i;
        while let Some(c) = p.peek().filter(u8::is_ascii_digit) {
            if p.i - start < 9 {
                nanos = nanos * 10 + u32::from(c - b'0');
            }
            p.i += 1;
        }
        let n = p.i - start;
        if n == 0 {
            return None;
        }
        for _ in n..9 {
            nanos *= 10;
        }
    }
    let offset = match p.next() {
        None => return Some(Stamp::Local { secs, nanos }),
        Some(b'Z' | b'z') => 0,
        Some(sign @ (b'+' | b'-')) => {
            let hh = p.digits(2, 2)?;
            if p.peek() == Some(b':') {
                p.i += 1;
            }
            let mm = match p.peek() {
                Some(_) => p.digits(2, 2)?,
                None => 0,
            };
            if hh > 23 || mm > 59 {
                return None;
            }
            let off = i64::from(hh * 3600 + mm * 60);
            if sign == b'+' {
                off
            } else {
                -off
            }
        }
        Some(_) => return None,
    };
    if p.peek().is_some() {
        return None;
    }
    instant(secs - offset, nanos).map(Stamp::Exact)
}

/// The zero-padded `YYYY/MM/DD HH:MM:SS` (or `-` and `T`) prefix nearly all
/// times have, read at fixed offsets: seconds since the epoch as if UTC.
#[inline]
fn padded(b: &[u8]) -> Option<i64> {
    let head: &[u8; 19] = b.get(..19)?.try_into().ok()?;
    let d = |i: usize| -> Option<u32> {
        let (a, b) = (head[i], head[i + 1]);
        (a.is_ascii_digit() && b.is_ascii_digit())
            .then(|| u32::from(a - b'0') * 10 + u32::from(b - b'0'))
    };
    if head[13] != b':' || head[16] != b':' {
        return None;
    }
    let (minute, second) = (d(14)?, d(17)?);
    if minute > 59 || second > 59 {
        return None;
    }
    let hour = hour_start(head)?;
    Some(hour + i64::from(minute) * 60 + i64::from(second))
}

/// The two tails PAN-OS writes after the seconds, read at fixed offsets:
/// nothing (the firewall's local time) and `.fff±hh:mm` (the High Resolution
/// Timestamp). `None` for anything else, and for these with a bad digit:
/// the general reader decides those.
#[inline]
fn common_tail(tail: &[u8], secs: i64) -> Option<Option<Stamp>> {
    let d = |x: u8| x.is_ascii_digit().then(|| u32::from(x - b'0'));
    match *tail {
        [] => Some(Some(Stamp::Local { secs, nanos: 0 })),
        [b'.', f1, f2, f3, sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let millis = d(f1)? * 100 + d(f2)? * 10 + d(f3)?;
            let (hh, mm) = (d(h1)? * 10 + d(h2)?, d(m1)? * 10 + d(m2)?);
            if hh > 23 || mm > 59 {
                return None;
            }
            let offset = i64::from(hh * 3600 + mm * 60);
            let offset = if sign == b'+' { offset } else { -offset };
            Some(instant(secs - offset, millis * 1_000_000).map(Stamp::Exact))
        }
        _ => None,
    }
}

/// Seconds at the start of the hour `YYYY/MM/DD HH` (or `-` and `T`) that
/// `head` opens with, `None` when it is no valid date and hour.
#[inline]
fn hour_start(head: &[u8; 19]) -> Option<i64> {
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&head[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let (k1, k2) = (word(0), word(5));
    let slot = usize::from(head[4] == b'-');
    let (c1, c2, secs) = HOURS.with(|h| h[slot].get());
    if (c1, c2) == (k1, k2) {
        return Some(secs);
    }
    let sep = head[4];
    if (sep != b'/' && sep != b'-') || head[7] != sep || (head[10] != b' ' && head[10] != b'T') {
        return None;
    }
    let d = |i: usize| -> Option<u32> {
        let (a, b) = (head[i], head[i + 1]);
        (a.is_ascii_digit() && b.is_ascii_digit())
            .then(|| u32::from(a - b'0') * 10 + u32::from(b - b'0'))
    };
    let year = i64::from(d(0)? * 100 + d(2)?);
    let (month, day, hour) = (d(5)?, d(8)?, d(11)?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) || hour > 23 {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + i64::from(hour) * 3600;
    HOURS.with(|h| h[slot].set((k1, k2, secs)));
    Some(secs)
}

/// Any other spelling: unpadded month, day or hour.
fn unpadded(b: &[u8]) -> Option<(i64, u32, u32, u32, u32, u32, Cursor<'_>)> {
    let mut p = Cursor { b, i: 0 };
    let year = p.digits(4, 4)? as i64;
    let sep = p.next()?;
    if sep != b'/' && sep != b'-' {
        return None;
    }
    let month = p.digits(1, 2)?;
    p.expect(sep)?;
    let day = p.digits(1, 2)?;
    match p.next()? {
        b' ' | b'T' => {}
        _ => return None,
    }
    let hour = p.digits(1, 2)?;
    p.expect(b':')?;
    let minute = p.digits(2, 2)?;
    p.expect(b':')?;
    let second = p.digits(2, 2)?;
    Some((year, month, day, hour, minute, second, p))
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// Between `min` and `max` decimal digits.
    fn digits(&mut self, min: usize, max: usize) -> Option<u32> {
        let start = self.i;
        let mut v = 0u32;
        while self.i - start < max {
            match self.peek() {
                Some(c @ b'0'..=b'9') => {
                    v = v * 10 + u32::from(c - b'0');
                    self.i += 1;
                }
                _ => break,
            }
        }
        (self.i - start >= min).then_some(v)
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("rfc3339")
            .with_timezone(&Utc)
    }

    #[test]
    fn reads_the_firewall_spelling_padded_or_not() {
        assert_eq!(
            parse_in("2012/04/08 05:24:02", Tz::UTC),
            Some(utc("2012-04-08T05:24:02Z"))
        );
        assert_eq!(
            parse_in("2018/12/5 13:15:16", Tz::UTC),
            Some(utc("2018-12-05T13:15:16Z"))
        );
        assert_eq!(
            parse_in("2018/1/5 3:05:06", Tz::UTC),
            Some(utc("2018-01-05T03:05:06Z"))
        );
    }

    #[test]
    fn reads_iso_with_fraction_and_offset() {
        assert_eq!(
            parse_in("2024-08-19T13:58:32.880+00:00", Tz::UTC),
            Some(utc("2024-08-19T13:58:32.880Z"))
        );
        assert_eq!(
            parse_in("2023-07-06T08:11:40.288+02:00", Tz::UTC),
            Some(utc("2023-07-06T06:11:40.288Z"))
        );
        assert_eq!(
            parse_in("2021-10-28T02:58:52.000000Z", Tz::Europe__Berlin),
            Some(utc("2021-10-28T02:58:52Z"))
        );
        assert_eq!(
            parse_in("2025-07-14T09:50:36.624-04:00", Tz::UTC),
            Some(utc("2025-07-14T13:50:36.624Z"))
        );
    }

    #[test]
    fn local_time_follows_the_zone_across_dst() {
        let berlin = Tz::Europe__Berlin;
        // Winter (CET, +01:00) and summer (CEST, +02:00).
        assert_eq!(
            parse_in("2024/01/15 12:00:00", berlin),
            Some(utc("2024-01-15T11:00:00Z"))
        );
        assert_eq!(
            parse_in("2024/07/15 12:00:00", berlin),
            Some(utc("2024-07-15T10:00:00Z"))
        );
        // Spring-forward gap: 02:30 does not exist; read as 03:30 CEST.
        assert_eq!(
            parse_in("2024/03/31 02:30:00", berlin),
            Some(utc("2024-03-31T01:30:00Z"))
        );
        // Fall-back: 02:30 happens twice; the first (CEST) one wins.
        assert_eq!(
            parse_in("2024/10/27 02:30:00", berlin),
            Some(utc("2024-10-27T00:30:00Z"))
        );
        assert_eq!(
            parse_in("2024/10/27 03:30:00", berlin),
            Some(utc("2024-10-27T02:30:00Z"))
        );
    }

    #[test]
    fn the_hour_cache_never_changes_an_answer() {
        // Zones with 1-hour, 30-minute and southern-hemisphere transitions.
        for tz in [
            Tz::Europe__Berlin,
            Tz::Australia__Lord_Howe,
            Tz::America__Santiago,
        ] {
            let start = days_from_civil(2024, 1, 1) * 86_400;
            // Every 20 minutes for a year, in order (the cache is warm) and
            // compared with the zone database asked directly.
            for step in 0..(366 * 72) {
                let secs = start + step * 1200;
                let got = Stamp::Local { secs, nanos: 0 }.resolve(tz);
                let naive = DateTime::from_timestamp(secs, 0)
                    .expect("in range")
                    .naive_utc();
                if let Some(want) = tz.from_local_datetime(&naive).earliest() {
                    assert_eq!(got, Some(want.with_timezone(&Utc)), "{tz} {naive}");
                } else {
                    assert!(got.is_some(), "{tz} {naive}: gap times still resolve");
                }
            }
        }
    }

    #[test]
    fn fixed_tails_read_like_the_general_reader() {
        for s in [
            "2024-08-19T13:58:32.880+00:00",
            "2024-08-19T13:58:32.880-04:30",
            "2024-08-19T13:58:32.880+24:00",
            "2024-08-19T13:58:32.8x0+00:00",
            "2024-08-19T23:59:59.999+01:00",
            "2024/08/19 13:58:33",
            "2024-02-29T00:00:00.000+00:00",
        ] {
            let b = s.as_bytes();
            let secs = padded(b).expect("padded");
            let general = || {
                // The general reader, without the fixed-offset shortcut.
                let mut p = Cursor { b, i: 19 };
                let mut nanos = 0u32;
                if p.peek() == Some(b'.') {
                    p.i += 1;
                    for _ in 0..3 {
                        nanos = nanos * 10
                            + u32::from(p.next()?.checked_sub(b'0').filter(|d| *d < 10)?);
                    }
                    nanos *= 1_000_000;
                }
                let sign = match p.next() {
                    None => return Some(Stamp::Local { secs, nanos }),
                    Some(c) => c,
                };
                let hh = p.digits(2, 2)?;
                p.expect(b':')?;
                let mm = p.digits(2, 2)?;
                if hh > 23 || mm > 59 {
                    return None;
                }
                let off = i64::from(hh * 3600 + mm * 60);
                let off = if sign == b'+' { off } else { -off };
                instant(secs - off, nanos).map(Stamp::Exact)
            };
            assert_eq!(parse(s), general(), "{s}");
            if let Some(fast) = common_tail(&b[19..], secs) {
                assert_eq!(fast, general(), "{s}");
            }
        }
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for bad in [
            "",
            "2024/13/01 00:00:00",
            "2023/02/29 00:00:00",
            "2024/01/01 24:00:00",
            "2024/01/01 00:60:00",
            "2024/01/01",
            "2024/01-01 00:00:00",
            "2024-01-01T00:00:00+25:00",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00Zjunk",
            "no-serial",
            "0",
            "９９９９/01/01 00:00:00",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert!(parse("2024/02/29 23:59:59").is_some());
    }

    #[test]
    fn detects_iso_columns() {
        assert!(looks_like_iso("1970-01-01T00:00:00.000000Z"));
        assert!(!looks_like_iso("2024/01/01 00:00:00"));
        assert!(!looks_like_iso("2024-01-01 junk"));
        assert!(looks_like_date("2018/12/5 13:15:16"));
        assert!(!looks_like_date("1,2018/12"));
    }
}
