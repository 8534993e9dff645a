//! PAN-OS syslog CSV: THREAT and TRAFFIC logs of PAN-OS 6.x to 11.x, and
//! the Strata Logging Service / Prisma Access forwarder variants.
//!
//! Layout:
//! - `columns`: where each field sits (classic layout), per log type;
//!   `prisma`: the compact forwarder layout.
//! - `threat`, `traffic`: one event per log type; `session`: what the two
//!   share; `fields`: one column to one field; `time`: timestamps.
//!
//! The log type is read from its column (index 3 in the classic layout,
//! index 2 in the compact one), never guessed from the column count, which
//! grows with every release and with trailing empty columns. THREAT and
//! TRAFFIC become events; the other PAN-OS log types are [`Parsed::Ignored`];
//! anything else is [`ParseError::UnsupportedType`]. A line narrower than the
//! oldest real layout of its type (42 columns for THREAT, 43 for TRAFFIC) is
//! `TooFewColumns`; extra trailing columns are ignored; more than 512 columns
//! is `TooManyColumns`.
//!
//! What the event holds, and why:
//! - `@timestamp`: the High Resolution Timestamp (THREAT idx 107, TRAFFIC
//!   idx 102) when valid, else the Generated Time read in
//!   `ParseOptions::timezone`, else the Receive Time, else the syslog
//!   header's time (each fallback is recorded in `error.message`); no usable
//!   time at all is the only time error. `event.created` is the Receive Time.
//! - Values are kept as the firewall wrote them, except placeholders that
//!   mean "none": empty columns, `0.0.0.0`/`::` NAT addresses and `0` NAT
//!   ports (no translation), `no-serial`, a File Digest that is not 64 hex
//!   digits, `any`/`unknown` categories. Real values such as a flood log's
//!   `0.0.0.0` destination or a private-range location
//!   (`10.0.0.0-10.255.255.255`) stay.
//! - `source.user` `x-fwd-for: 1.2.3.4` (User-ID saw a client in an
//!   X-Forwarded-For header but no user) keeps the client without the prefix.
//! - `observer.hostname` is the Device Name column, or the syslog header's
//!   hostname when the line has none.
//! - A malformed value in any column but the type and the times (an address
//!   like `172.300.28.33`, a port of `70000`, an unknown severity) leaves its
//!   field absent and is recorded with `ThreatEvent::warn`: the threat still
//!   reaches the playbooks.
//! - THREAT specifics (URL vs file name, threat name and id, threat
//!   category) are described in `threat`.
//!
//! Speed (the target is a million 11.x THREAT lines a second on one core;
//! `benches/parse_panos.rs` measures it, and says how to count instructions
//! with callgrind): one pass splits the line into borrowed columns, up to
//! the last column the classic layouts read; numbers, addresses and times
//! are parsed in place (short numbers and the two PAN-OS time spellings at
//! fixed offsets, the date and hour of the previous line reused); the zone
//! database is only consulted when the configured zone is not UTC (and then
//! once per local hour). Allocation is limited to the event itself and its
//! longer strings.

mod columns;
mod fields;
mod prisma;
mod session;
mod threat;
mod time;
mod traffic;

#[cfg(test)]
mod fixtures;

use crate::csv::{Columns, SplitError, MAX_COLUMNS};
use crate::{Ignored, ParseError, ParseOptions, Parsed, RecordContext};

/// `format` of this parser's errors and ignored records.
const FORMAT: &str = "panos";

/// PAN-OS log types that are valid but carry nothing for playbooks.
const IGNORED_TYPES: &[&str] = &[
    "SYSTEM",
    "CONFIG",
    "HIPMATCH",
    "GLOBALPROTECT",
    "USERID",
    "AUTH",
    "DECRYPTION",
    "TUNNEL",
    "SCTP",
    "IPTAG",
    "CORRELATION",
    "GTP",
];

/// Longest type name quoted back in an `UnsupportedType` error.
const MAX_TYPE_NAME: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// `<FUTURE_USE>,<receive time>,<serial>,<TYPE>,…`: PAN-OS and the Strata
    /// Logging Service default order.
    Classic,
    /// `<ISO receive time>,<serial or no-serial>,<TYPE>,…`.
    Compact,
}

impl Variant {
    fn type_column(self) -> usize {
        match self {
            Variant::Classic => 3,
            Variant::Compact => 2,
        }
    }
}

/// Cheap check that a payload (syslog header already stripped) is PAN-OS
/// CSV: a short FUTURE_USE token then a date, or an ISO date first, and in
/// either case an upper-case log type in the type column.
pub fn looks_like_csv(payload: &str) -> bool {
    match variant_of_prefix(payload) {
        Some(variant) => column(payload, variant.type_column()).is_some_and(is_type_name),
        // A garbled receive time: still PAN-OS when the type column says so.
        None => {
            leading_token(payload.as_bytes()).is_some()
                && column(payload, 3)
                    .is_some_and(|t| t == "THREAT" || t == "TRAFFIC" || IGNORED_TYPES.contains(&t))
        }
    }
}

/// Column `n` of a line whose first columns hold no quotes (true of the
/// columns before the log type).
fn column(payload: &str, n: usize) -> Option<&str> {
    crate::csv::leading_column(payload, n)
}

/// Length of the classic layout's FUTURE_USE token (normally `1`) when the
/// payload starts with one followed by a comma.
fn leading_token(b: &[u8]) -> Option<usize> {
    let token = b
        .iter()
        .take(17)
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'.' || **c == b'-' || **c == b'_')
        .count();
    ((1..=16).contains(&token) && b.get(token) == Some(&b',')).then_some(token)
}

fn variant_of_prefix(payload: &str) -> Option<Variant> {
    // Classic: FUTURE_USE is a short token (normally `1`), then the date.
    if let Some(token) = leading_token(payload.as_bytes()) {
        if time::looks_like_date(&payload[token + 1..]) {
            return Some(Variant::Classic);
        }
    }
    if time::looks_like_date(payload) && payload.as_bytes().get(10) == Some(&b'T') {
        return Some(Variant::Compact);
    }
    None
}

fn is_type_name(s: &str) -> bool {
    (1..=MAX_TYPE_NAME).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
}

/// Parses one PAN-OS CSV payload (the syslog header already stripped).
/// Never panics, whatever the input.
pub fn parse(
    payload: &str,
    ctx: &RecordContext<'_>,
    opts: &ParseOptions,
) -> Result<Parsed, ParseError> {
    // Some devices end lines with spaces; a record may keep its line ending.
    let line = trim_line_end(payload);
    if line.trim_ascii_start().is_empty() {
        return Err(ParseError::Empty);
    }
    let split_error = |e| match e {
        SplitError::TooManyColumns => ParseError::TooManyColumns {
            format: FORMAT,
            max: MAX_COLUMNS,
        },
        SplitError::TooLong => ParseError::malformed(FORMAT, "line too long to split"),
    };
    // The classic layouts read no further than CLASSIC_READ columns: the
    // trailing ones (about a sixth of an 11.x THREAT line) are split only
    // for the compact layout, which locates its tail from anchors.
    let mut cols = Columns::new(line);
    cols.scan_upto(columns::CLASSIC_READ).map_err(split_error)?;
    let variant = variant_of(&cols)?;
    if variant == Variant::Compact && !cols.is_complete() {
        cols.scan().map_err(split_error)?;
    }
    let log_type = cols.field(variant.type_column()).trim_ascii();
    let event = match (log_type, variant) {
        ("THREAT", Variant::Classic) => threat::parse(&cols, &columns::THREAT, ctx, opts)?,
        ("THREAT", Variant::Compact) => {
            threat::parse(&cols, &prisma::threat_layout(&cols), ctx, opts)?
        }
        ("TRAFFIC", Variant::Classic) => traffic::parse(&cols, &columns::TRAFFIC, ctx, opts)?,
        ("TRAFFIC", Variant::Compact) => {
            traffic::parse(&cols, &prisma::traffic_layout(&cols), ctx, opts)?
        }
        (t, _) if IGNORED_TYPES.contains(&t) => {
            return Ok(Parsed::Ignored(Ignored {
                format: FORMAT,
                kind: t.to_owned(),
            }))
        }
        ("", _) => {
            return Err(ParseError::malformed(
                FORMAT,
                "the log type column is empty",
            ))
        }
        (t, _) => {
            return Err(ParseError::UnsupportedType {
                format: FORMAT,
                log_type: fields::excerpt(t).chars().take(MAX_TYPE_NAME).collect(),
            })
        }
    };
    Ok(Parsed::Event(event))
}

fn trim_line_end(s: &str) -> &str {
    let b = s.as_bytes();
    let mut end = b.len();
    while end > 0 && matches!(b[end - 1], b' ' | b'\t' | b'\r' | b'\n' | 0) {
        end -= 1;
    }
    // Only ASCII bytes were cut, so `end` is a character boundary.
    s.get(..end).unwrap_or(s)
}

/// Which layout the line uses, from where its receive time is; a line whose
/// receive time is garbled is still classic when its type column names a
/// PAN-OS log type.
fn variant_of(cols: &Columns<'_>) -> Result<Variant, ParseError> {
    let known = |t: &str| t == "THREAT" || t == "TRAFFIC" || IGNORED_TYPES.contains(&t);
    if cols.len() > 3 && time::looks_like_date(cols.field(1)) {
        Ok(Variant::Classic)
    } else if cols.len() > 2 && time::looks_like_date(cols.field(0)) {
        Ok(Variant::Compact)
    } else if known(cols.field(3).trim_ascii()) {
        Ok(Variant::Classic)
    } else {
        Err(ParseError::malformed(
            FORMAT,
            "no receive time in column 2 (PAN-OS layout) or column 1 (Strata Logging Service layout), \
             and no PAN-OS log type in column 4",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{threat_line, traffic_line};
    use super::*;

    fn ctx(line: &str) -> RecordContext<'_> {
        RecordContext::bare(line)
    }

    fn run(line: &str) -> Result<Parsed, ParseError> {
        parse(line, &ctx(line), &ParseOptions::default())
    }

    #[test]
    fn recognises_both_layouts_and_nothing_else() {
        assert!(looks_like_csv(&threat_line(42).build()));
        assert!(looks_like_csv(&traffic_line(43).build()));
        assert!(looks_like_csv(
            "1,2018/12/5 13:15:16,0009C101677,TRAFFIC,start"
        ));
        assert!(looks_like_csv(
            "2021-10-28T02:58:52.000000Z,no-serial,THREAT,url,10.0"
        ));
        assert!(looks_like_csv(
            "1,2020-10-13T01:12:03.000000Z,007051000113358,THREAT,wildfire"
        ));
        assert!(looks_like_csv(
            "1,2020/10/13 01:12:03,007051000113358,SYSTEM,general"
        ));
        for not in [
            "",
            "hello, world",
            "1,2,3,4",
            "CEF:0|Palo Alto Networks|PAN-OS|10.1|url|THREAT|1|",
            "{\"event_type\":\"alert\"}",
            "1,2018/12/5 13:15:16,0009C101677,traffic,start",
            "1,2018/12/5 13:15:16,0009C101677",
            "Feb 12 15:10:06 PA-5050 1,2018/02/12 15:10:06,0009C103236,THREAT,virus",
        ] {
            assert!(!looks_like_csv(not), "{not}");
        }
    }

    #[test]
    fn other_panos_types_are_ignored_not_errors() {
        for t in IGNORED_TYPES {
            let line = format!(
                "1,2020/10/13 01:12:03,007051000113358,{t},general,,2020/10/13 01:12:03,vsys1"
            );
            match run(&line) {
                Ok(Parsed::Ignored(Ignored {
                    format: "panos",
                    kind,
                })) => assert_eq!(kind, *t),
                other => panic!("{t}: {other:?}"),
            }
        }
        let line =
            "2020-10-13T01:16:46.000000Z,no-serial,SYSTEM,general,,2020-10-13T01:16:26.000000Z";
        assert!(matches!(run(line), Ok(Parsed::Ignored(_))));
    }

    #[test]
    fn unknown_types_are_unsupported_and_named() {
        let line = threat_line(120).set(3, "BOGUS").build();
        match run(&line) {
            Err(ParseError::UnsupportedType { log_type, .. }) => assert_eq!(log_type, "BOGUS"),
            other => panic!("{other:?}"),
        }
        let long = "X".repeat(500);
        let line = threat_line(120).set(3, &long).build();
        match run(&line) {
            Err(ParseError::UnsupportedType { log_type, .. }) => {
                assert_eq!(log_type.len(), MAX_TYPE_NAME)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_type_decides_not_the_column_count() {
        // A TRAFFIC line as wide as a THREAT line is still TRAFFIC, and the
        // reverse.
        let traffic = traffic_line(123).build();
        assert!(run(&traffic)
            .ok()
            .and_then(Parsed::into_event)
            .is_some_and(|e| e.dataset == "panos.traffic"));
        let threat = threat_line(47).build();
        assert!(run(&threat)
            .ok()
            .and_then(Parsed::into_event)
            .is_some_and(|e| e.dataset == "panos.threat"));
    }

    #[test]
    fn structural_errors() {
        assert_eq!(run("").err(), Some(ParseError::Empty));
        assert_eq!(run("   ").err(), Some(ParseError::Empty));
        assert!(matches!(run("garbage"), Err(ParseError::Malformed { .. })));
        assert!(matches!(
            run("a,b,c,d,e,f"),
            Err(ParseError::Malformed { .. })
        ));
        assert!(matches!(
            run("1,2024/08/19 13:58:33,007954000123456,,url"),
            Err(ParseError::Malformed { .. })
        ));
        let wide = threat_line(120).build() + &",x".repeat(10_000);
        assert_eq!(
            run(&wide).err(),
            Some(ParseError::TooManyColumns {
                format: "panos",
                max: MAX_COLUMNS
            })
        );
        let err = run(&threat_line(30).build()).expect_err("too few columns");
        assert_eq!(err.reason(), "too_few_columns");
    }

    #[test]
    fn a_garbled_receive_time_does_not_lose_the_threat() {
        let line = threat_line(120).set(1, "garbage").build();
        let ev = run(&line).ok().and_then(Parsed::into_event).expect("event");
        assert_eq!(ev.created, None);
        assert!(ev
            .error_message
            .is_some_and(|m| m.contains("receive time `garbage`")));
        assert_eq!(ev.threat_id, Some(86237));
    }

    #[test]
    fn extra_trailing_columns_are_ignored() {
        let base = threat_line(123).build();
        let padded = format!("{base},,,extra,\"more, stuff\",");
        let a = run(&base).ok().and_then(Parsed::into_event).expect("base");
        let b = run(&padded)
            .ok()
            .and_then(Parsed::into_event)
            .expect("padded");
        assert_eq!(a.threat_id, b.threat_id);
        assert_eq!(a.timestamp, b.timestamp);
        assert_eq!(a.container_id, b.container_id);
        assert_eq!(b.error_message, None);
    }

    #[test]
    fn strata_default_order_is_the_classic_one_with_iso_times() {
        // The docs' own example shape: leading `1`, ISO times, bare threat id,
        // decimal flags, `server to client`.
        let line = "1,2020-10-13T01:12:03.000000Z,007051000113358,THREAT,wildfire,10.0,2020-10-13T01:11:59.000000Z,\
                    fe80::7202:b3ff:fe1e:8329,fe80::e202:b3ff:fe1e:8329,192.0.2.1,192.0.2.2,allow-all-employees,\
                    paloaltonetwork\\xxxxx,,xunlei-kankan,vsys1,dmz,ethernet4Zone-test4,,,rs-logging,,721482,1,25342,442,\
                    16758,29009,2899968,tcp,block-ip,some other fake filename,21000,,Low,server to client,400993366,\
                    -6917529027641081856,chicago,US,,,0,885e78ce802e42561193c1d76bd3a7ac3e2fec291508e6ba75d1e10ddb522869";
        let ev = run(line).ok().and_then(Parsed::into_event).expect("event");
        assert_eq!(ev.threat_id, Some(21000));
        assert_eq!(ev.threat_name, None);
        assert_eq!(ev.file_name.as_deref(), Some("some other fake filename"));
        assert_eq!(ev.threat_severity, Some(crate::Severity::Low));
        assert_eq!(ev.network_direction, Some(crate::Direction::ServerToClient));
        assert_eq!(
            ev.source_ip,
            Some("fe80::7202:b3ff:fe1e:8329".parse().expect("ip"))
        );
        assert_eq!(ev.panos_sequence_number, Some(400993366));
        assert_eq!(
            ev.file_hash_sha256.as_deref(),
            Some("885e78ce802e42561193c1d76bd3a7ac3e2fec291508e6ba75d1e10ddb522869")
        );
        assert_eq!(ev.timestamp.to_rfc3339(), "2020-10-13T01:11:59+00:00");
        assert_eq!(ev.error_message, None);
    }
}
