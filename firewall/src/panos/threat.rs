//! THREAT logs: `event.kind: alert`, dataset `panos.threat`.
//!
//! Field choices worth knowing:
//! - `threat.type` is the subtype (url, virus, spyware, vulnerability, file,
//!   scan, flood, packet, data, wildfire, wildfire-virus, …).
//! - The URL/Filename column is a file name for the subtypes that inspect
//!   files (file, virus, wildfire, wildfire-virus, ml-virus, data, dlp) and
//!   goes to `file.name`; for every other subtype it is a URL or domain and
//!   goes to `url.original`.
//! - `threat.category` is the "Threat Category" column (PAN-OS 8.1+:
//!   command-and-control, brute-force, …) when it says something. When it is
//!   missing, empty or `unknown`, URL logs fall back to the URL category
//!   (PAN-DB has `command-and-control`, `malware`, `phishing` categories) and
//!   WildFire logs to the verdict (malicious, grayware, phishing), both in
//!   the "Category" column. For other subtypes that column is only the URL
//!   category of the session (`any` on older releases), which says nothing
//!   about the threat, so it is not used.

use crate::csv::Columns;
use crate::{
    Direction, EventKind, ParseError, ParseOptions, RecordContext, Severity, Str, ThreatEvent,
};

use super::columns::Layout;
use super::fields::{self, excerpt, raw, string, text};
use super::session;

pub(super) fn parse(
    cols: &Columns<'_>,
    l: &Layout,
    ctx: &RecordContext<'_>,
    opts: &ParseOptions,
) -> Result<Box<ThreatEvent>, ParseError> {
    session::check_width(cols, l, "THREAT")?;
    let mut ev = session::new_event(cols, l, EventKind::Alert, "panos.threat", ctx, opts)?;
    session::fill(&mut ev, cols, l, ctx, "THREAT");

    let subtype = raw(cols, l.subtype);
    ev.threat_type = ev.panos_subtype.clone();

    let severity = raw(cols, l.severity);
    match severity_of(severity) {
        Some(s) => ev.set_severity(s),
        None if severity.is_empty() => {}
        None => ev.warn(
            "threat.severity",
            format_args!("unknown severity `{}`", excerpt(severity)),
        ),
    }

    let direction = raw(cols, l.direction);
    ev.network_direction = direction_of(direction);
    if ev.network_direction.is_none() && !direction.is_empty() {
        ev.warn(
            "network.direction",
            format_args!("unknown direction `{}`", excerpt(direction)),
        );
    }

    if let Some(id_column) = cols.get(usize::from(l.threat_id)) {
        let (name, id) = fields::threat_id(&id_column);
        ev.threat_name = name.map(Str::new);
        ev.threat_id = id;
    }

    let misc = string(cols, l.misc);
    if carries_file(subtype) {
        ev.file_name = misc;
    } else {
        ev.url_original = misc;
    }

    let digest = raw(cols, l.file_digest);
    if fields::is_sha256(digest) {
        let mut d = Str::new(digest);
        d.make_ascii_lowercase();
        ev.file_hash_sha256 = Some(d);
    }

    ev.user_agent = string(cols, l.user_agent);
    ev.email_from = string(cols, l.sender);
    ev.email_subject = string(cols, l.subject);
    ev.threat_category = threat_category(cols, l, subtype);
    Ok(ev)
}

/// The severity, with the spellings PAN-OS writes matched before the
/// general (case-insensitive) parser.
#[inline]
fn severity_of(s: &str) -> Option<Severity> {
    match s {
        "informational" => Some(Severity::Informational),
        "low" => Some(Severity::Low),
        "medium" => Some(Severity::Medium),
        "high" => Some(Severity::High),
        "critical" => Some(Severity::Critical),
        _ => Severity::parse(s),
    }
}

/// The direction, with the spellings PAN-OS writes matched before the
/// general parser.
#[inline]
fn direction_of(s: &str) -> Option<Direction> {
    match s {
        "client-to-server" => Some(Direction::ClientToServer),
        "server-to-client" => Some(Direction::ServerToClient),
        _ => Direction::parse(s),
    }
}

/// Subtypes whose URL/Filename column names a file.
fn carries_file(subtype: &str) -> bool {
    matches!(
        subtype,
        "file" | "virus" | "wildfire" | "wildfire-virus" | "ml-virus" | "data" | "dlp"
    )
}

fn threat_category(cols: &Columns<'_>, l: &Layout, subtype: &str) -> Option<Str> {
    let meaningful = |c: &Str| c != "unknown" && c != "any";
    text(cols, l.threat_category)
        .filter(meaningful)
        .or_else(|| {
            let fallback = subtype == "url" || subtype.starts_with("wildfire");
            fallback
                .then(|| text(cols, l.category).filter(meaningful))
                .flatten()
        })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{threat_line, Line};
    use super::super::parse;
    use crate::{
        Direction, EventKind, ParseError, ParseOptions, Parsed, RecordContext, Severity,
        ThreatEvent,
    };
    use chrono::{DateTime, Utc};
    use chrono_tz::Tz;

    fn ctx(line: &str) -> RecordContext<'_> {
        RecordContext::bare(line)
    }

    fn event(line: &str) -> ThreatEvent {
        event_in(line, Tz::UTC)
    }

    fn event_in(line: &str, tz: Tz) -> ThreatEvent {
        let opts = ParseOptions {
            timezone: tz,
            ..ParseOptions::default()
        };
        match parse(line, &ctx(line), &opts) {
            Ok(Parsed::Event(ev)) => *ev,
            other => panic!("expected an event for {line}: {other:?}"),
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("rfc3339")
            .with_timezone(&Utc)
    }

    #[test]
    fn c2_spyware_line_fills_every_field_a_playbook_uses() {
        let line = threat_line(123)
            .set(4, "spyware")
            .set(7, "10.244.1.17")
            .set(8, "203.0.113.66")
            .set(30, "reset-both")
            .set(31, "")
            .set(32, "Cobalt Strike.Gen Command and Control Traffic(86237)")
            .set(33, "any")
            .set(34, "critical")
            .set(35, "client-to-server")
            .set(69, "command-and-control")
            .set(96, "containerd://4f2a9c")
            .set(97, "shop")
            .set(98, "checkout-7d9f")
            .build();
        let ev = event(&line);
        assert_eq!(ev.kind, EventKind::Alert);
        assert_eq!(ev.dataset, "panos.threat");
        assert_eq!(ev.threat_type.as_deref(), Some("spyware"));
        assert_eq!(ev.threat_category.as_deref(), Some("command-and-control"));
        assert_eq!(
            ev.threat_name.as_deref(),
            Some("Cobalt Strike.Gen Command and Control Traffic")
        );
        assert_eq!(ev.threat_id, Some(86237));
        assert_eq!(ev.threat_severity, Some(Severity::Critical));
        assert_eq!(ev.severity, Some(5));
        assert_eq!(ev.action.as_deref(), Some("reset-both"));
        assert_eq!(ev.network_direction, Some(Direction::ClientToServer));
        assert_eq!(ev.source_ip, Some("10.244.1.17".parse().expect("ip")));
        assert_eq!(ev.destination_ip, Some("203.0.113.66".parse().expect("ip")));
        assert_eq!(ev.container_id.as_deref(), Some("containerd://4f2a9c"));
        assert_eq!(ev.orchestrator_namespace.as_deref(), Some("shop"));
        assert_eq!(
            ev.orchestrator_resource_name.as_deref(),
            Some("checkout-7d9f")
        );
        assert_eq!(ev.url_original, None);
        assert_eq!(ev.file_name, None);
        assert_eq!(ev.error_message, None);
        // The fixture defaults, read from their own columns.
        assert_eq!(
            ev.observer_serial_number.as_deref(),
            Some("007954000123456")
        );
        assert_eq!(ev.observer_hostname.as_deref(), Some("cn-ngfw-1"));
        assert_eq!(
            ev.observer_ingress_interface.as_deref(),
            Some("ethernet1/1")
        );
        assert_eq!(ev.observer_egress_interface.as_deref(), Some("ethernet1/2"));
        assert_eq!(ev.source_zone.as_deref(), Some("pods"));
        assert_eq!(ev.destination_zone.as_deref(), Some("internet"));
        assert_eq!(ev.source_port, Some(51234));
        assert_eq!(ev.destination_port, Some(443));
        assert_eq!(ev.source_nat_ip, Some("198.51.100.7".parse().expect("ip")));
        assert_eq!(ev.source_nat_port, Some(40001));
        assert_eq!(
            ev.destination_nat_ip,
            Some("203.0.113.66".parse().expect("ip"))
        );
        assert_eq!(ev.destination_nat_port, Some(443));
        assert_eq!(ev.source_user.as_deref(), Some(r"corp\svc-checkout"));
        assert_eq!(ev.destination_user, None);
        assert_eq!(ev.network_transport.as_deref(), Some("tcp"));
        assert_eq!(ev.network_application.as_deref(), Some("ssl"));
        assert_eq!(ev.rule_name.as_deref(), Some("pods-to-internet"));
        assert_eq!(
            ev.rule_uuid.as_deref(),
            Some("9b0e2d71-8c1f-4a8e-a3f5-2f6c0d1e7b44")
        );
        assert_eq!(ev.panos_type.as_deref(), Some("THREAT"));
        assert_eq!(ev.panos_subtype.as_deref(), Some("spyware"));
        assert_eq!(ev.panos_virtual_system.as_deref(), Some("vsys1"));
        assert_eq!(ev.panos_session_id, Some(887766));
        assert_eq!(ev.panos_repeat_count, Some(1));
        assert_eq!(ev.panos_sequence_number, Some(7331912355678901234));
        assert_eq!(
            ev.source_location.as_deref(),
            Some("10.0.0.0-10.255.255.255")
        );
        assert_eq!(ev.destination_location.as_deref(), Some("United States"));
        // High Resolution Timestamp (idx 107) wins over Generated Time.
        assert_eq!(ev.timestamp, utc("2024-08-19T13:58:32.880Z"));
        assert_eq!(ev.created, Some(utc("2024-08-19T13:58:33Z")));
        assert_eq!(&*ev.original, line.as_str());
        assert_eq!(ev.id.len(), 32);
    }

    #[test]
    fn every_subtype_routes_misc_to_url_or_file() {
        let cases: &[(&str, &str, &str, Option<&str>)] = &[
            // subtype, misc, threat id, expected url (None = file name)
            (
                "url",
                "\"www.example.com/a,b\"",
                "(9999)",
                Some("www.example.com/a,b"),
            ),
            (
                "vulnerability",
                "\"1.2.3.5/nmaplowercheck1688559266\"",
                "Nmap Scripting Engine Detection(58433)",
                Some("1.2.3.5/nmaplowercheck1688559266"),
            ),
            (
                "spyware",
                "\"evil.example\"",
                "Suspicious DNS Query (generic:evil.example)(4100111)",
                Some("evil.example"),
            ),
            ("scan", "", "TCP Port Scan(8001)", None),
            ("flood", "", "UDP Flood(8502)", None),
            ("packet", "", "Packet-based attack protection(8701)", None),
            ("virus", "\"eicar.com\"", "Eicar Test File(100000)", None),
            (
                "file",
                "\"SylinkDrop.exe\"",
                "Windows Executable (EXE)(52020)",
                None,
            ),
            (
                "data",
                "\"customers.csv\"",
                "Credit Card Numbers(60000)",
                None,
            ),
            (
                "wildfire",
                "\"invoice.pdf.exe\"",
                "Windows Executable (EXE)(52020)",
                None,
            ),
            (
                "wildfire-virus",
                "\"dropper.exe\"",
                "Virus/Win32.WGeneric.abc(270000001)",
                None,
            ),
        ];
        for (subtype, misc, threat_id, url) in cases {
            let line = threat_line(120)
                .set(4, subtype)
                .set(31, misc)
                .set(32, threat_id)
                .build();
            let ev = event(&line);
            assert_eq!(ev.threat_type.as_deref(), Some(*subtype));
            assert!(ev.threat_id.is_some(), "{subtype}");
            let unquoted = misc.trim_matches('"');
            match url {
                Some(u) => {
                    assert_eq!(ev.url_original.as_deref(), Some(*u), "{subtype}");
                    assert_eq!(ev.file_name, None, "{subtype}");
                }
                None => {
                    assert_eq!(ev.url_original, None, "{subtype}");
                    let want = (!unquoted.is_empty()).then_some(unquoted);
                    assert_eq!(ev.file_name.as_deref(), want, "{subtype}");
                }
            }
            assert_eq!(ev.error_message, None, "{subtype}");
        }
    }

    #[test]
    fn url_logs_have_an_id_and_no_name_and_fall_back_to_the_url_category() {
        let line = threat_line(120)
            .set(4, "url")
            .set(31, "\"c2.example.net/beacon\"")
            .set(32, "(9999)")
            .set(33, "command-and-control")
            .set(34, "Informational")
            .set(69, "unknown")
            .build();
        let ev = event(&line);
        assert_eq!(ev.threat_id, Some(9999));
        assert_eq!(ev.threat_name, None);
        assert_eq!(ev.threat_category.as_deref(), Some("command-and-control"));
        assert_eq!(ev.threat_severity, Some(Severity::Informational));
        assert_eq!(ev.severity, Some(1));
    }

    #[test]
    fn wildfire_logs_carry_digest_and_verdict() {
        let digest = "8040C1CEE63DB55B348DEA8F07AD42D1C78F9ED2C4FF90A9F9ACCFFA7ABA186F";
        let line = threat_line(121)
            .set(4, "wildfire")
            .set(31, "\"document22092014_73327_pdf.exe\"")
            .set(32, "428148050(428148050)")
            .set(33, "malicious")
            .set(43, digest)
            .set(69, "")
            .build();
        let ev = event(&line);
        assert_eq!(
            ev.file_name.as_deref(),
            Some("document22092014_73327_pdf.exe")
        );
        assert_eq!(
            ev.file_hash_sha256.as_deref(),
            Some(digest.to_ascii_lowercase().as_str())
        );
        assert_eq!(ev.threat_category.as_deref(), Some("malicious"));
        assert_eq!(ev.threat_id, Some(428148050));
        assert_eq!(ev.threat_name, None);
    }

    #[test]
    fn other_subtypes_do_not_take_the_url_category_as_threat_category() {
        let line = threat_line(75)
            .set(4, "file")
            .set(33, "computer-and-internet-info")
            .set(69, "")
            .build();
        assert_eq!(event(&line).threat_category, None);
        // A 6.x line has no Threat Category column and says `any`.
        let line = threat_line(42)
            .set(4, "vulnerability")
            .set(33, "any")
            .build();
        assert_eq!(event(&line).threat_category, None);
    }

    #[test]
    fn digest_placeholders_are_not_hashes() {
        for placeholder in ["0", "", "85dde742", "N/A"] {
            let line = threat_line(120).set(43, placeholder).build();
            assert_eq!(event(&line).file_hash_sha256, None, "{placeholder}");
        }
    }

    #[test]
    fn email_and_user_agent_columns_keep_commas_and_quotes() {
        let line = threat_line(79)
            .set(4, "file")
            .set(
                46,
                "\"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)\"",
            )
            .set(50, "\"From: \"\"John Doe\"\" <jdoe@example.com>\"")
            .set(51, "\"Sub: Hello, Worlds\"")
            .set(52, "To: <foo@bar.org>;  ")
            .build();
        let ev = event(&line);
        assert_eq!(
            ev.user_agent.as_deref(),
            Some("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)")
        );
        assert_eq!(
            ev.email_from.as_deref(),
            Some("From: \"John Doe\" <jdoe@example.com>")
        );
        assert_eq!(ev.email_subject.as_deref(), Some("Sub: Hello, Worlds"));
    }

    #[test]
    fn every_version_width_parses() {
        for width in [42, 45, 54, 72, 73, 74, 75, 78, 79, 120, 121, 123, 126, 130] {
            let line = threat_line(width).build();
            let ev = event(&line);
            assert_eq!(
                ev.threat_name.as_deref(),
                Some("Cobalt Strike.Gen Command and Control Traffic"),
                "{width}"
            );
            assert_eq!(ev.error_message, None, "{width}");
            // Fields that only later releases append are absent, not empty.
            assert_eq!(ev.observer_hostname.is_some(), width > 59, "{width}");
            assert_eq!(ev.threat_category.is_some(), width > 69, "{width}");
            assert_eq!(ev.rule_uuid.is_some(), width > 76, "{width}");
            assert_eq!(ev.container_id.is_some(), width > 96, "{width}");
            let want = if width > 107 {
                utc("2024-08-19T13:58:32.880Z")
            } else {
                utc("2024-08-19T13:58:32Z")
            };
            assert_eq!(ev.timestamp, want, "{width}");
        }
    }

    #[test]
    fn quirks_of_real_devices() {
        let line = threat_line(45)
            .set(0, "0")
            .set(1, "2018/12/5 13:15:37")
            .set(5, "2049")
            .set(6, "2018/12/5 16:54:37")
            .set(21, "2018/12/5 16:54:37")
            .set(34, "Medium")
            .set(40, "0")
            .set(12, "x-fwd-for: 11.22.33.44")
            .build()
            + "  ";
        let ev = event(&line);
        assert_eq!(ev.timestamp, utc("2018-12-05T16:54:37Z"));
        assert_eq!(ev.created, Some(utc("2018-12-05T13:15:37Z")));
        assert_eq!(ev.threat_severity, Some(Severity::Medium));
        assert_eq!(ev.source_user.as_deref(), Some("11.22.33.44"));
        assert_eq!(ev.error_message, None);
    }

    #[test]
    fn nat_placeholders_are_absent_but_real_zero_addresses_stay() {
        let line = threat_line(42)
            .set(4, "flood")
            .set(8, "0.0.0.0")
            .set(9, "0.0.0.0")
            .set(10, "0.0.0.0")
            .set(24, "0")
            .set(25, "0")
            .set(26, "0")
            .set(27, "0")
            .build();
        let ev = event(&line);
        assert_eq!(ev.destination_ip, Some("0.0.0.0".parse().expect("ip")));
        assert_eq!(ev.source_port, Some(0));
        assert_eq!(ev.source_nat_ip, None);
        assert_eq!(ev.destination_nat_ip, None);
        assert_eq!(ev.source_nat_port, None);
        assert_eq!(ev.destination_nat_port, None);
    }

    #[test]
    fn malformed_non_essential_columns_become_warnings() {
        let line = threat_line(120)
            .set(7, "172.22.135")
            .set(8, "172.300.28.33")
            .set(24, "70000")
            .set(22, "abc")
            .set(34, "severe")
            .set(35, "sideways")
            .set(107, "2024-13-45T99:00:00Z")
            .build();
        let ev = event(&line);
        assert_eq!(ev.source_ip, None);
        assert_eq!(ev.destination_ip, None);
        assert_eq!(ev.source_port, None);
        assert_eq!(ev.panos_session_id, None);
        assert_eq!(ev.threat_severity, None);
        assert_eq!(ev.network_direction, None);
        // The generated time stands in for the broken high-resolution one.
        assert_eq!(ev.timestamp, utc("2024-08-19T13:58:32Z"));
        let msg = ev.error_message.expect("warnings");
        for needle in [
            "source.ip: `172.22.135`",
            "destination.ip: `172.300.28.33`",
            "source.port: `70000`",
            "panos.session_id: `abc`",
            "threat.severity: unknown severity `severe`",
            "network.direction: unknown direction `sideways`",
            "@timestamp: high resolution timestamp",
        ] {
            assert!(msg.contains(needle), "{needle} missing from {msg}");
        }
        // The threat itself is intact.
        assert_eq!(ev.threat_id, Some(86237));
    }

    #[test]
    fn time_fallbacks_and_the_one_fatal_time_error() {
        // Generated time broken, no high-resolution one: receive time stands in.
        let line = threat_line(75).set(6, "yesterday").build();
        let ev = event(&line);
        assert_eq!(ev.timestamp, utc("2024-08-19T13:58:33Z"));
        assert!(ev
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("`yesterday`")));
        // No usable time anywhere: an error naming the field.
        let line = threat_line(75)
            .set(1, "2024/08/19 13:58")
            .set(6, "yesterday")
            .build();
        let opts = ParseOptions::default();
        match parse(&line, &ctx(&line), &opts) {
            Err(ParseError::Field { field, .. }) => assert_eq!(field, "generated_time"),
            other => panic!("expected a field error: {other:?}"),
        }
        // ... unless the syslog header had one.
        let header_time = utc("2024-08-19T13:59:00Z");
        let ctx = RecordContext {
            original: &line,
            hostname: Some("fw-from-header"),
            header_time: Some(header_time),
        };
        let ev = parse(&line, &ctx, &opts)
            .expect("parsed")
            .into_event()
            .expect("event");
        assert_eq!(ev.timestamp, header_time);
        // Device Name is present in a 75-column line, so it beats the header.
        assert_eq!(ev.observer_hostname.as_deref(), Some("cn-ngfw-1"));
    }

    #[test]
    fn header_hostname_when_the_line_has_no_device_name() {
        let line = threat_line(54).build();
        let ctx = RecordContext {
            original: &line,
            hostname: Some("PA-5050"),
            header_time: None,
        };
        let ev = parse(&line, &ctx, &ParseOptions::default())
            .expect("parsed")
            .into_event()
            .expect("event");
        assert_eq!(ev.observer_hostname.as_deref(), Some("PA-5050"));
    }

    #[test]
    fn generated_time_is_read_in_the_configured_zone_across_dst() {
        let berlin = Tz::Europe__Berlin;
        let at = |t: &str| {
            let line = threat_line(79).set(6, t).set(1, t).build();
            event_in(&line, berlin)
        };
        assert_eq!(
            at("2024/01/15 12:00:00").timestamp,
            utc("2024-01-15T11:00:00Z")
        );
        assert_eq!(
            at("2024/07/15 12:00:00").timestamp,
            utc("2024-07-15T10:00:00Z")
        );
        assert_eq!(
            at("2024/03/31 02:30:00").timestamp,
            utc("2024-03-31T01:30:00Z")
        );
        let autumn = at("2024/10/27 02:30:00");
        assert_eq!(autumn.timestamp, utc("2024-10-27T00:30:00Z"));
        assert_eq!(autumn.created, Some(utc("2024-10-27T00:30:00Z")));
        // The high-resolution timestamp carries its own offset: no zone applied.
        let line = threat_line(123).build();
        assert_eq!(
            event_in(&line, berlin).timestamp,
            utc("2024-08-19T13:58:32.880Z")
        );
    }

    #[test]
    fn too_few_columns_is_an_error_with_the_count() {
        let line = threat_line(41).build();
        match parse(&line, &ctx(&line), &ParseOptions::default()) {
            Err(ParseError::TooFewColumns {
                count,
                min,
                log_type,
                ..
            }) => {
                assert_eq!((count, min, log_type), (41, 42, "THREAT"));
            }
            other => panic!("expected TooFewColumns: {other:?}"),
        }
    }

    #[test]
    fn line_builder_makes_the_requested_width() {
        for width in [41, 42, 123] {
            let line: Line = threat_line(width);
            let built = line.build();
            let cols = crate::csv::Columns::split(&built).expect("split");
            assert_eq!(cols.len(), width);
        }
    }
}
