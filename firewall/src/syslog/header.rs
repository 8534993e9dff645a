//! Recognizes and strips a syslog header, whatever its flavour, and hands
//! back the payload. Runs on every record: it borrows, never allocates, and
//! reads each byte of the header once.
//!
//! Accepted shapes (the PRI is optional everywhere but in RFC 5424):
//! - no header at all: `1,2024/…`, `CEF:0|…`, `LEEF:…`;
//! - RFC 3164: `<14>Feb  2 11:30:47 host tag[pid]: payload`, with or without
//!   the hostname and the tag, a space after the PRI (`<13> Jul 23 …`), the
//!   `host  : payload` form, a two-digit day after a double space
//!   (`Feb  22`), an optional year after the day, ctime's
//!   `Sun Jun 28 06:00:19 2026`;
//! - an RFC 3339 timestamp in place of the BSD one:
//!   `2023-07-06T08:11:40+02:00 host payload`;
//! - RFC 5424: `<14>1 2021-10-28T02:58:53.586Z host app procid msgid [sd] msg`
//!   with `-` for nil fields, escaped structured data and an optional BOM;
//! - one relay-added BSD header (and octet count) wrapped around any of the
//!   above, as rsyslog writes when it stores a forwarded message.

use chrono::{DateTime, Utc};

use super::timestamp;
use crate::ParseError;

/// Which header the record carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HeaderFormat {
    /// The payload started right away.
    #[default]
    None,
    /// BSD syslog, or its RFC 3339-timestamped variant.
    Rfc3164,
    Rfc5424,
}

/// What the header said. Every field borrows from the record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyslogHeader<'a> {
    pub format: HeaderFormat,
    pub facility: Option<u8>,
    pub severity: Option<u8>,
    /// Only a hint: BSD stamps have no year and no zone (UTC and the current
    /// year are assumed). The payload's own times win.
    pub timestamp: Option<DateTime<Utc>>,
    pub hostname: Option<&'a str>,
    /// RFC 5424 APP-NAME, or the RFC 3164 tag without its `[pid]`.
    pub app_name: Option<&'a str>,
    pub proc_id: Option<&'a str>,
    pub msg_id: Option<&'a str>,
    /// RFC 5424 structured data as sent, brackets and escapes included.
    pub structured_data: Option<&'a str>,
}

/// Splits `text` into its syslog header and payload. The payload is returned
/// with leading spaces removed. Fails only on a PRI that is not a number
/// from 0 to 191 or on RFC 5424 structured data that never closes.
pub fn split_header(text: &str) -> Result<(SyslogHeader<'_>, &str), ParseError> {
    split_with_clock(text, &Utc::now)
}

/// [`split_header`] with the clock passed in: BSD timestamps take their year
/// from `now`.
pub fn split_header_at(
    text: &str,
    now: DateTime<Utc>,
) -> Result<(SyslogHeader<'_>, &str), ParseError> {
    split_with_clock(text, &|| now)
}

/// The clock is only read for a BSD timestamp without a year.
fn split_with_clock<'a>(
    text: &'a str,
    now: &dyn Fn() -> DateTime<Utc>,
) -> Result<(SyslogHeader<'a>, &'a str), ParseError> {
    let (header, payload) = split_once(text, now)?;
    // A relay that stores a forwarded message prefixes its own BSD header,
    // sometimes with the octet count it received: `Mar 1 20:48:22 relay 4465
    // <14>1 2021-…`. The inner header is the sender's, so it wins.
    if header.format == HeaderFormat::Rfc3164 {
        let inner = skip_octet_count(payload);
        if inner.starts_with('<') {
            if let Ok((inner_header, inner_payload)) = split_once(inner, now) {
                if inner_header.format != HeaderFormat::None {
                    return Ok((inner_header, inner_payload));
                }
            }
        }
    }
    Ok((header, payload))
}

fn split_once<'a>(
    text: &'a str,
    now: &dyn Fn() -> DateTime<Utc>,
) -> Result<(SyslogHeader<'a>, &'a str), ParseError> {
    let b = text.as_bytes();
    let mut pos = skip_spaces(b, 0);
    let mut header = SyslogHeader::default();

    let has_pri = b.get(pos) == Some(&b'<');
    if has_pri {
        let (pri, len) = read_pri(b, pos)?;
        header.facility = Some(pri / 8);
        header.severity = Some(pri % 8);
        pos += len;
        if let Some(after_version) = rfc5424_version(b, pos) {
            header.format = HeaderFormat::Rfc5424;
            let payload_at = rfc5424_fields(text, after_version, &mut header)?;
            return Ok((header, payload(text, payload_at)));
        }
        pos = skip_spaces(b, pos);
    }

    let stamp = if let Some((t, len)) = timestamp::bsd_prefix(&b[pos..], now) {
        Some((t, len))
    } else {
        timestamp::rfc3339_prefix(&b[pos..]).map(|(t, len)| (Some(t), len))
    };
    let Some((time, len)) = stamp.filter(|&(_, len)| is_space_or_end(b, pos + len)) else {
        // No timestamp: a bare payload, or `<PRI>payload`. Without a
        // timestamp to anchor it, a hostname cannot be told from a payload
        // word, so none is taken.
        if has_pri {
            header.format = HeaderFormat::Rfc3164;
        }
        return Ok((header, payload(text, pos)));
    };
    header.format = HeaderFormat::Rfc3164;
    header.timestamp = time;
    pos = skip_spaces(b, pos + len);

    let (token, token_end) = next_token(b, pos);
    if let Some(tag) = parse_tag(token) {
        // `Mmm dd hh:mm:ss tag[pid]: payload` — no hostname.
        header.app_name = tag.0;
        header.proc_id = tag.1;
        return Ok((header, payload(text, token_end)));
    }
    if !is_hostname(token) {
        return Ok((header, payload(text, pos)));
    }
    header.hostname = Some(&text[pos..token_end]);
    pos = skip_spaces(b, token_end);

    let (token, token_end) = next_token(b, pos);
    if let Some(tag) = parse_tag(token) {
        header.app_name = tag.0;
        header.proc_id = tag.1;
        pos = token_end;
    }
    Ok((header, payload(text, pos)))
}

/// `<PRI>` at `pos`: one to three digits, 0 to 191.
fn read_pri(b: &[u8], pos: usize) -> Result<(u8, usize), ParseError> {
    let mut value: u32 = 0;
    let mut i = pos + 1;
    while let Some(&c) = b.get(i) {
        if c == b'>' {
            break;
        }
        if !c.is_ascii_digit() || i - pos > 3 {
            return Err(header_err(
                "PRI must be one to three digits between `<` and `>`",
            ));
        }
        value = value * 10 + u32::from(c - b'0');
        i += 1;
    }
    if b.get(i) != Some(&b'>') || i == pos + 1 {
        return Err(header_err(
            "PRI must be one to three digits between `<` and `>`",
        ));
    }
    if value > 191 {
        return Err(header_err(format!(
            "PRI {value} is out of range (0 to 191)"
        )));
    }
    Ok((value as u8, i + 1 - pos))
}

/// After the PRI, RFC 5424 has a version (`1`, at most two digits) and one
/// space, then a timestamp or `-`. Returns where the timestamp starts.
fn rfc5424_version(b: &[u8], pos: usize) -> Option<usize> {
    let first = *b.get(pos)?;
    if !(b'1'..=b'9').contains(&first) {
        return None;
    }
    let mut i = pos + 1;
    if b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    if b.get(i) != Some(&b' ') {
        return None;
    }
    let next = *b.get(i + 1)?;
    (next == b'-' || next.is_ascii_digit()).then_some(i + 1)
}

/// TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA, each separated
/// by one space (more are tolerated). Returns where the message starts.
fn rfc5424_fields<'a>(
    text: &'a str,
    mut pos: usize,
    header: &mut SyslogHeader<'a>,
) -> Result<usize, ParseError> {
    let b = text.as_bytes();
    let mut fields: [Option<&'a str>; 5] = [None; 5];
    for field in &mut fields {
        let (token, end) = next_token(b, pos);
        if token.is_empty() {
            return Err(header_err(
                "RFC 5424 header ends before its structured data",
            ));
        }
        if token != b"-" {
            *field = Some(&text[pos..end]);
        }
        pos = skip_spaces(b, end);
    }
    let [time, hostname, app_name, proc_id, msg_id] = fields;
    // An unreadable timestamp is a lost hint, not a lost record.
    header.timestamp = time.and_then(timestamp::parse_rfc3339);
    header.hostname = hostname;
    header.app_name = app_name;
    header.proc_id = proc_id;
    header.msg_id = msg_id;

    match b.get(pos) {
        None => Err(header_err(
            "RFC 5424 header ends before its structured data",
        )),
        Some(b'-') if is_space_or_end(b, pos + 1) => Ok(pos + 1),
        Some(b'[') => {
            let end = structured_data_end(b, pos)?;
            header.structured_data = Some(&text[pos..end]);
            if !is_space_or_end(b, end) {
                return Err(header_err(
                    "RFC 5424 structured data must be followed by a space",
                ));
            }
            Ok(end)
        }
        Some(_) => Err(header_err(
            "RFC 5424 structured data must be `-` or start with `[`",
        )),
    }
}

/// One or more `[id name="value" …]` elements. Inside a quoted value, `\"`,
/// `\\` and `\]` are escapes and `]` does not close the element. Returns the
/// position after the last `]`.
fn structured_data_end(b: &[u8], mut pos: usize) -> Result<usize, ParseError> {
    while b.get(pos) == Some(&b'[') {
        pos += 1;
        let mut quoted = false;
        loop {
            match b.get(pos) {
                None => return Err(header_err("RFC 5424 structured data is not closed by `]`")),
                Some(b'\\') if quoted => pos += 2,
                Some(b'"') => {
                    quoted = !quoted;
                    pos += 1;
                }
                Some(b']') if !quoted => {
                    pos += 1;
                    break;
                }
                Some(_) => pos += 1,
            }
        }
    }
    Ok(pos)
}

/// A BSD tag: `name:`, `name[pid]:` or, as some PAN-OS relays send after
/// `host  `, a lone `:`. Returns the name and pid.
fn parse_tag(token: &[u8]) -> Option<(Option<&str>, Option<&str>)> {
    let body = token.strip_suffix(b":")?;
    let (name, pid) = match body.iter().position(|&c| c == b'[') {
        Some(open) => {
            let pid = body[open + 1..].strip_suffix(b"]")?;
            if pid.is_empty() || !pid.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-') {
                return None;
            }
            (&body[..open], Some(pid))
        }
        None => (body, None),
    };
    if name.len() > 64
        || !name
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'/'))
    {
        return None;
    }
    Some((ascii_str(name), pid.and_then(ascii_str)))
}

/// Bytes already checked to be ASCII, as a non-empty `str`.
fn ascii_str(s: &[u8]) -> Option<&str> {
    std::str::from_utf8(s).ok().filter(|s| !s.is_empty())
}

/// Hostnames, FQDNs and IPv4/IPv6 addresses. A payload's first word (a CSV
/// row, `CEF:0|…`, a JSON object) always holds a byte outside this set.
fn is_hostname(token: &[u8]) -> bool {
    !token.is_empty()
        && token.len() <= 255
        && token
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b':' | b'%'))
        && token.last() != Some(&b':')
}

/// `<count> ` before a relayed message.
fn skip_octet_count(s: &str) -> &str {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && digits <= 10 && s.as_bytes().get(digits) == Some(&b' ') {
        &s[digits + 1..]
    } else {
        s
    }
}

fn next_token(b: &[u8], pos: usize) -> (&[u8], usize) {
    let rest = b.get(pos..).unwrap_or_default();
    let len = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
    (&rest[..len], pos + len)
}

fn skip_spaces(b: &[u8], mut pos: usize) -> usize {
    while b.get(pos) == Some(&b' ') {
        pos += 1;
    }
    pos
}

fn is_space_or_end(b: &[u8], pos: usize) -> bool {
    matches!(b.get(pos), None | Some(b' '))
}

/// The message from `pos`, without leading spaces or a UTF-8 BOM (RFC 5424
/// allows one before the message).
fn payload(text: &str, pos: usize) -> &str {
    let rest = text.get(pos..).unwrap_or_default().trim_start_matches(' ');
    rest.strip_prefix('\u{feff}').unwrap_or(rest)
}

fn header_err(reason: impl Into<String>) -> ParseError {
    ParseError::Header {
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2024-06-15T12:00:00Z".parse().expect("now")
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("test timestamp")
    }

    fn split(text: &str) -> (SyslogHeader<'_>, &str) {
        split_header_at(text, now()).expect(text)
    }

    #[test]
    fn bare_payloads_have_no_header() {
        for text in [
            "1,2024/01/02 03:04:05,0123,THREAT,spyware",
            "CEF:0|Palo Alto Networks|PAN-OS|10.1|spyware|THREAT|8|src=1.2.3.4",
            "LEEF:1.0|Palo Alto Networks|PAN-OS Syslog Integration|11.1|allow|cat=TRAFFIC",
            "2021-10-27T19:20:59.000000Z,no-serial,TRAFFIC,end,10.0",
            "{\"event_type\":\"alert\"}",
            "",
        ] {
            let (h, p) = split(text);
            assert_eq!(h, SyslogHeader::default(), "{text}");
            assert_eq!(p, text);
        }
    }

    #[test]
    fn bsd_header_with_pri_and_hostname() {
        let (h, p) = split("<14>Jul 20 23:59:02 firewall 1,2021/07/20 23:59:02,1234");
        assert_eq!(h.format, HeaderFormat::Rfc3164);
        assert_eq!((h.facility, h.severity), (Some(1), Some(6)));
        assert_eq!(h.hostname, Some("firewall"));
        // More than a month ahead of "now" (2024-06-15): last year's July.
        assert_eq!(h.timestamp, Some(at("2023-07-20T23:59:02Z")));
        assert_eq!(p, "1,2021/07/20 23:59:02,1234");
    }

    #[test]
    fn bsd_header_quirks_from_the_field() {
        let cases = [
            // double-space day, two-digit day after a double space
            (
                "<14>Mar  2 11:30:47 MY-PA-5250-3 1,2021",
                Some("MY-PA-5250-3"),
            ),
            ("<14>Feb  22 21:32:20 pa-fw-2 1,2012/04/08", Some("pa-fw-2")),
            // space after the PRI, leading space before it
            (
                "<13> Jul 23 15:45:11 NY-APP-8.local 1,2019",
                Some("NY-APP-8.local"),
            ),
            (
                " <14>Jul 24 15:29:32 PA-5050  : 1,2018/07/24",
                Some("PA-5050"),
            ),
            // `host  : ` with an empty tag
            (
                "<10>May 12 16:30:37 PA-3020A.arista.com  : 1,2019/05/12",
                Some("PA-3020A.arista.com"),
            ),
            // no PRI at all, unpadded day
            (
                "Mar 9 14:47:44 firewall1.example.com 1,2020/03/09",
                Some("firewall1.example.com"),
            ),
            // no hostname: the payload follows the timestamp
            ("<10>Mar 26 18:32:28 1,2015/03/26 18:32:28", None),
        ];
        for (text, host) in cases {
            let (h, p) = split(text);
            assert_eq!(h.format, HeaderFormat::Rfc3164, "{text}");
            assert_eq!(h.hostname, host, "{text}");
            assert!(p.starts_with("1,20"), "{text} -> {p}");
            assert!(h.timestamp.is_some(), "{text}");
        }
    }

    #[test]
    fn bsd_program_tags_are_stripped() {
        let (h, p) = split("<14>Jun  1 10:00:00 fw01 panfw[123]: 1,2024/06/01");
        assert_eq!(h.hostname, Some("fw01"));
        assert_eq!(h.app_name, Some("panfw"));
        assert_eq!(h.proc_id, Some("123"));
        assert_eq!(p, "1,2024/06/01");

        let (h, p) = split("Jun  1 10:00:00 fw01 suricata: {\"a\":1}");
        assert_eq!(
            (h.hostname, h.app_name, h.proc_id),
            (Some("fw01"), Some("suricata"), None)
        );
        assert_eq!(p, "{\"a\":1}");

        // A tag without a hostname.
        let (h, p) = split("<14>Jun  1 10:00:00 panfw[9]: CEF:0|x");
        assert_eq!((h.hostname, h.app_name), (None, Some("panfw")));
        assert_eq!(p, "CEF:0|x");
    }

    #[test]
    fn bsd_header_before_key_value_payloads() {
        let (h, p) =
            split("<14>Sep 17 13:45:35 firewall.domain.local LEEF:1.0|Palo Alto Networks|x");
        assert_eq!(h.hostname, Some("firewall.domain.local"));
        assert_eq!(p, "LEEF:1.0|Palo Alto Networks|x");
        let (h, p) = split("<14>Sep 17 13:45:35 CEF:0|Palo Alto Networks|x");
        assert_eq!(h.hostname, None);
        assert_eq!(p, "CEF:0|Palo Alto Networks|x");
    }

    #[test]
    fn ctime_stamps_with_weekday_and_year() {
        let (h, p) = split(
            "<180>Sun Jun 28 06:00:19 2026 paloalto.paseries.test LEEF:1.0|Palo Alto Networks|x",
        );
        assert_eq!((h.facility, h.severity), (Some(22), Some(4)));
        assert_eq!(h.timestamp, Some(at("2026-06-28T06:00:19Z")));
        assert_eq!(h.hostname, Some("paloalto.paseries.test"));
        assert_eq!(p, "LEEF:1.0|Palo Alto Networks|x");
    }

    #[test]
    fn rfc3339_timestamp_in_place_of_the_bsd_one() {
        let (h, p) = split("2023-07-06T08:11:40+02:00 paloalto.test.host 1,2023/07/06 08:11:40");
        assert_eq!(h.format, HeaderFormat::Rfc3164);
        assert_eq!(h.facility, None);
        assert_eq!(h.timestamp, Some(at("2023-07-06T06:11:40Z")));
        assert_eq!(h.hostname, Some("paloalto.test.host"));
        assert_eq!(p, "1,2023/07/06 08:11:40");

        let (h, p) = split("<13>2023-07-06T08:11:40.5Z host tag: x");
        assert_eq!((h.hostname, h.app_name), (Some("host"), Some("tag")));
        assert_eq!(p, "x");
    }

    #[test]
    fn rfc5424_with_nil_fields() {
        let text = "<14>1 2025-07-14T09:50:36-04:00 the-hostname - - - -  1,2025/07/14 09:50:35";
        let (h, p) = split(text);
        assert_eq!(h.format, HeaderFormat::Rfc5424);
        assert_eq!(h.timestamp, Some(at("2025-07-14T13:50:36Z")));
        assert_eq!(h.hostname, Some("the-hostname"));
        assert_eq!(
            (h.app_name, h.proc_id, h.msg_id, h.structured_data),
            (None, None, None, None)
        );
        assert_eq!(p, "1,2025/07/14 09:50:35");
    }

    #[test]
    fn rfc5424_strata_logging_service_forwarder() {
        let text = "<14>1 2021-10-28T02:58:53.586Z stream-foobar-baz logforwarder - panwlogs - 2021-10-28T02:58:52.000000Z,no-serial,THREAT";
        let (h, p) = split(text);
        assert_eq!(h.hostname, Some("stream-foobar-baz"));
        assert_eq!(h.app_name, Some("logforwarder"));
        assert_eq!(h.msg_id, Some("panwlogs"));
        assert!(p.starts_with("2021-10-28T02:58:52.000000Z,no-serial"));
    }

    #[test]
    fn rfc5424_structured_data_with_escapes_and_bom() {
        let text = "<165>1 2003-10-11T22:14:15.003Z host app 42 ID47 [ex@1 a=\"x\\]y\" b=\"q\\\"]\"][other@2 c=\"]\"] \u{feff}CEF:0|x";
        let (h, p) = split(text);
        assert_eq!((h.facility, h.severity), (Some(20), Some(5)));
        assert_eq!(h.proc_id, Some("42"));
        assert_eq!(h.msg_id, Some("ID47"));
        assert_eq!(
            h.structured_data,
            Some("[ex@1 a=\"x\\]y\" b=\"q\\\"]\"][other@2 c=\"]\"]")
        );
        assert_eq!(p, "CEF:0|x");
    }

    #[test]
    fn rfc5424_without_a_message() {
        let (h, p) = split("<14>1 - - - - - -");
        assert_eq!(h.format, HeaderFormat::Rfc5424);
        assert_eq!(h.timestamp, None);
        assert_eq!(p, "");
    }

    #[test]
    fn rfc5424_errors_are_explained() {
        for text in [
            "<14>1 2021-10-28T02:58:53Z host app - - [unterminated a=\"b\"",
            "<14>1 2021-10-28T02:58:53Z host app - - x payload",
            "<14>1 2021-10-28T02:58:53Z host app",
        ] {
            let err = split_header_at(text, now()).expect_err(text);
            assert_eq!(err.reason(), "syslog_header", "{text}");
        }
    }

    #[test]
    fn pri_must_be_a_small_number() {
        for text in [
            "<192>Jan  1 00:00:00 h x",
            "<x>foo",
            "<>foo",
            "<1234>foo",
            "<14",
        ] {
            let err = split_header_at(text, now()).expect_err(text);
            assert!(matches!(err, ParseError::Header { .. }), "{text}");
        }
        let (h, _) = split("<191>Jan  1 00:00:00 h x");
        assert_eq!((h.facility, h.severity), (Some(23), Some(7)));
        let (h, p) = split("<0>1,2024/01/01");
        assert_eq!(
            (h.facility, h.severity, h.hostname),
            (Some(0), Some(0), None)
        );
        assert_eq!(p, "1,2024/01/01");
    }

    #[test]
    fn relay_header_around_the_senders_header() {
        let text = "Mar 1 20:48:22 gke-node-sw0m 4465 <14>1 2021-03-01T20:48:22.900Z stream-logfwd logforwarder - panwlogs - CEF:0|Palo Alto Networks|LF|2.0|THREAT|spyware|1|rt=x";
        let (h, p) = split(text);
        assert_eq!(h.format, HeaderFormat::Rfc5424);
        assert_eq!(h.hostname, Some("stream-logfwd"));
        assert!(p.starts_with("CEF:0|Palo Alto Networks|LF"));
    }

    #[test]
    fn unreal_bsd_dates_are_still_stripped() {
        let (h, p) = split("<14>Feb 30 10:00:00 host 1,2024");
        assert_eq!(h.timestamp, None);
        assert_eq!(h.hostname, Some("host"));
        assert_eq!(p, "1,2024");
    }
}
