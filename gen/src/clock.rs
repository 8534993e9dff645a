//! Timestamps of generated logs, written the ways PAN-OS writes them.
//!
//! Times are milliseconds since the Unix epoch, in UTC (the firewall's
//! configured zone is UTC as far as the generator is concerned). Formatting
//! is done by hand: it runs several times per line.

use super::lines::push_2;

/// A civil date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub milli: u32,
}

impl Civil {
    pub fn from_millis(ms: i64) -> Civil {
        let secs = ms.div_euclid(1000);
        let milli = ms.rem_euclid(1000) as u32;
        let days = secs.div_euclid(86_400);
        let tod = secs.rem_euclid(86_400) as u32;
        // Howard Hinnant's days-to-civil algorithm.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Civil {
            year,
            month,
            day,
            hour: tod / 3600,
            minute: tod / 60 % 60,
            second: tod % 60,
            milli,
        }
    }
}

fn push_year(buf: &mut Vec<u8>, year: i64) {
    let y = year.clamp(0, 9999) as u32;
    push_2(buf, y / 100);
    push_2(buf, y % 100);
}

fn push_hms(buf: &mut Vec<u8>, c: &Civil) {
    push_2(buf, c.hour);
    buf.push(b':');
    push_2(buf, c.minute);
    buf.push(b':');
    push_2(buf, c.second);
}

/// `2025/07/14 09:50:35`: Receive Time, Generated Time, Start Time.
pub(crate) fn push_panos(buf: &mut Vec<u8>, ms: i64) {
    let c = Civil::from_millis(ms);
    push_year(buf, c.year);
    buf.push(b'/');
    push_2(buf, c.month);
    buf.push(b'/');
    push_2(buf, c.day);
    buf.push(b' ');
    push_hms(buf, &c);
}

/// `2025-07-14T09:50:36.624+00:00`: the High Resolution Timestamp and the
/// RFC 5424 header.
pub(crate) fn push_iso_millis(buf: &mut Vec<u8>, ms: i64) {
    let c = Civil::from_millis(ms);
    push_year(buf, c.year);
    buf.push(b'-');
    push_2(buf, c.month);
    buf.push(b'-');
    push_2(buf, c.day);
    buf.push(b'T');
    push_hms(buf, &c);
    buf.push(b'.');
    buf.push(b'0' + (c.milli / 100) as u8);
    push_2(buf, c.milli % 100);
    buf.extend_from_slice(b"+00:00");
}

/// `Jul  4 09:50:36`: the BSD syslog (RFC 3164) header time, day padded
/// with a space.
pub(crate) fn push_bsd(buf: &mut Vec<u8>, ms: i64) {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let c = Civil::from_millis(ms);
    buf.extend_from_slice(MONTHS[(c.month.clamp(1, 12) - 1) as usize]);
    buf.push(b' ');
    if c.day < 10 {
        buf.push(b' ');
        buf.push(b'0' + c.day as u8);
    } else {
        push_2(buf, c.day);
    }
    buf.push(b' ');
    push_hms(buf, &c);
}

/// The three spellings of one second of log time.
#[derive(Debug, Clone, Copy)]
struct Second {
    sec: i64,
    /// `2025/07/14 09:50:35`
    panos: [u8; 19],
    /// `2025-07-14T09:50:35` (milliseconds and offset are added per use)
    iso: [u8; 19],
    /// `Jul 14 09:50:35`
    bsd: [u8; 15],
}

/// Formatted seconds, cached: a line writes four to six timestamps, and
/// consecutive lines mostly share their seconds.
#[derive(Debug)]
pub(crate) struct Stamps {
    /// Direct-mapped by the low bits of the second.
    slots: [Second; 4],
}

impl Default for Stamps {
    fn default() -> Self {
        let empty = Second {
            sec: i64::MIN,
            panos: [b'0'; 19],
            iso: [b'0'; 19],
            bsd: [b'0'; 15],
        };
        Stamps { slots: [empty; 4] }
    }
}

fn fill<const N: usize>(out: &mut [u8; N], f: fn(&mut Vec<u8>, i64), ms: i64) {
    let mut tmp = Vec::with_capacity(32);
    f(&mut tmp, ms);
    for (o, t) in out.iter_mut().zip(&tmp) {
        *o = *t;
    }
}

impl Stamps {
    fn second(&mut self, ms: i64) -> &Second {
        let sec = ms.div_euclid(1000);
        let slot = &mut self.slots[(sec & 3) as usize];
        if slot.sec != sec {
            let whole = sec * 1000;
            slot.sec = sec;
            fill(&mut slot.panos, push_panos, whole);
            fill(&mut slot.iso, push_iso_millis, whole);
            fill(&mut slot.bsd, push_bsd, whole);
        }
        slot
    }

    /// Same as [`push_panos`].
    pub fn panos(&mut self, buf: &mut Vec<u8>, ms: i64) {
        buf.extend_from_slice(&self.second(ms).panos);
    }

    /// Same as [`push_iso_millis`].
    pub fn iso_millis(&mut self, buf: &mut Vec<u8>, ms: i64) {
        buf.extend_from_slice(&self.second(ms).iso);
        let milli = ms.rem_euclid(1000) as u32;
        buf.push(b'.');
        buf.push(b'0' + (milli / 100) as u8);
        push_2(buf, milli % 100);
        buf.extend_from_slice(b"+00:00");
    }

    /// Same as [`push_bsd`].
    pub fn bsd(&mut self, buf: &mut Vec<u8>, ms: i64) {
        buf.extend_from_slice(&self.second(ms).bsd);
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn text(f: fn(&mut Vec<u8>, i64), ms: i64) -> String {
        let mut buf = Vec::new();
        f(&mut buf, ms);
        String::from_utf8(buf).expect("ASCII")
    }

    #[test]
    fn cached_stamps_match_direct_formatting() {
        let mut st = Stamps::default();
        let base = Utc
            .with_ymd_and_hms(2024, 12, 31, 23, 59, 58)
            .single()
            .expect("date")
            .timestamp_millis();
        for ms in (0..5_000)
            .step_by(7)
            .map(|d| base + d)
            .chain([base + 3_000, base, -1_500])
        {
            let cached = |f: fn(&mut Stamps, &mut Vec<u8>, i64), st: &mut Stamps| {
                let mut buf = Vec::new();
                f(st, &mut buf, ms);
                String::from_utf8(buf).expect("ASCII")
            };
            assert_eq!(cached(Stamps::panos, &mut st), text(push_panos, ms));
            assert_eq!(
                cached(Stamps::iso_millis, &mut st),
                text(push_iso_millis, ms)
            );
            assert_eq!(cached(Stamps::bsd, &mut st), text(push_bsd, ms));
        }
    }

    #[test]
    fn formats_match_chrono_across_years_and_leap_days() {
        for (y, mo, d, h, mi, s) in [
            (2024, 2, 29, 23, 59, 59),
            (2025, 7, 4, 9, 5, 6),
            (1999, 12, 31, 0, 0, 0),
            (2100, 3, 1, 12, 0, 1),
        ] {
            let t = Utc
                .with_ymd_and_hms(y, mo, d, h, mi, s)
                .single()
                .expect("valid date");
            let ms = t.timestamp_millis() + 624;
            assert_eq!(
                text(push_panos, ms),
                t.format("%Y/%m/%d %H:%M:%S").to_string()
            );
            assert_eq!(
                text(push_iso_millis, ms),
                t.format("%Y-%m-%dT%H:%M:%S.624+00:00").to_string()
            );
            assert_eq!(text(push_bsd, ms), t.format("%b %e %H:%M:%S").to_string());
        }
    }
}
