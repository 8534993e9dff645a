//! Real third-party lines (shared/samples, see its README) through the
//! syslog header splitter, the LEEF parser and the Suricata EVE parser.
//!
//! - Every header in the PAN-OS sample logs must strip to the payload: the
//!   CSV row (`1,…`, or the Strata Logging Service's ISO time), or `LEEF:`.
//! - Where the samples' authors recorded the header's fields (hostname,
//!   facility, level, timestamp), ours must agree.
//! - Every Suricata line must parse: alerts into events whose values match
//!   the line as serde_json reads it, everything else into `Ignored`.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};
use riposte_firewall::syslog::{split_header, HeaderFormat};
use riposte_firewall::{
    eve, parse_record, Direction, EventKind, EventModule, ParseOptions, Parsed, RecordContext,
    Severity, ThreatEvent,
};
use serde_json::Value;

fn samples(kind: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/samples")
        .join(kind);
    assert!(
        dir.is_dir(),
        "the shared samples folder {} is missing: these tests read real third-party \
         log lines from it (it sits beside the repository clone as shared/samples)",
        dir.display()
    );
    dir
}

fn files(kind: &str, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(samples(kind))
        .unwrap_or_else(|e| panic!("cannot list samples/{kind}: {e}"))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no .{ext} files in samples/{kind}");
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
}

fn is_sls_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 20 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[10] == b'T'
}

#[test]
fn every_panos_sample_header_strips_to_its_payload() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for path in files("panos", "log") {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = read(&path);
        for (i, line) in lines(&text).enumerate() {
            checked += 1;
            let (header, payload) = match split_header(line) {
                Ok(split) => split,
                Err(e) => {
                    failures.push(format!("{name}:{}: {e}", i + 1));
                    continue;
                }
            };
            let ok = if name.contains("leef") {
                payload.starts_with("LEEF:1.0|Palo Alto Networks|")
            } else {
                payload.starts_with("1,20") || is_sls_time(payload)
            };
            if !ok {
                failures.push(format!(
                    "{name}:{}: payload starts `{}`",
                    i + 1,
                    &payload[..payload.len().min(40)]
                ));
            }
            if header.format == HeaderFormat::None {
                failures.push(format!("{name}:{}: no header recognized", i + 1));
            }
            if line.starts_with("<14>1 ") && header.format != HeaderFormat::Rfc5424 {
                failures.push(format!(
                    "{name}:{}: RFC 5424 header read as {:?}",
                    i + 1,
                    header.format
                ));
            }
            if let Some(host) = header.hostname {
                if host.contains([',', '|', ' ']) {
                    failures.push(format!("{name}:{}: hostname `{host}`", i + 1));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} lines:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked >= 800, "only {checked} sample lines found");
}

#[test]
fn headers_agree_with_what_the_sample_authors_recorded() {
    let dir = samples("panos");
    // jcustenborder's expected values carry the syslog host, facility and level.
    let mut checked = 0;
    for file in [
        "jcustenborder_palo-alto-syslog-parser__threat.json",
        "jcustenborder_palo-alto-syslog-parser__traffic.json",
    ] {
        let cases: Vec<Value> = serde_json::from_str(&read(&dir.join(file))).expect("sample JSON");
        for case in &cases {
            let raw = case["raw"].as_str().expect("raw line");
            let syslog = &case["syslog"];
            let (header, payload) = split_header(raw).expect(raw);
            assert_eq!(header.hostname, syslog["host"].as_str(), "{raw}");
            assert_eq!(
                header.facility.map(u64::from),
                syslog["facility"].as_u64(),
                "{raw}"
            );
            assert_eq!(
                header.severity.map(u64::from),
                syslog["level"].as_u64(),
                "{raw}"
            );
            assert!(payload.starts_with("1,"), "{raw}");
            checked += 1;
        }
    }
    assert!(checked >= 700, "only {checked} jcustenborder cases");

    // crowdsec's expected values carry the RFC 3339 header's host and time.
    let cases: Vec<Value> =
        serde_json::from_str(&read(&dir.join("crowdsecurity_hub__palo-alto-threat.json")))
            .expect("sample JSON");
    for case in &cases {
        let raw = case["raw"].as_str().expect("raw line");
        let expected = &case["expected"];
        let (header, _) = split_header(raw).expect(raw);
        assert_eq!(
            header.hostname,
            expected["parsed.syslog_hostname"].as_str(),
            "{raw}"
        );
        let want: DateTime<Utc> = expected["parsed.syslog_timestamp"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .expect("expected timestamp")
            .with_timezone(&Utc);
        assert_eq!(header.timestamp, Some(want), "{raw}");
    }
    assert_eq!(cases.len(), 2);
}

fn attribute<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split('|')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn leef_sample_parses_into_traffic_events() {
    let text = read(&samples("panos").join("rsyslog__mmleefparse_basic__leef_traffic.log"));
    let mut count = 0;
    for line in lines(&text) {
        let ev = match parse_record(line.as_bytes(), &ParseOptions::default()) {
            Ok(Parsed::Event(ev)) => *ev,
            other => panic!("expected an event for {line}\n got {other:?}"),
        };
        let want = |key: &str| attribute(line, key).expect(key);
        assert_eq!(ev.kind, EventKind::Event);
        assert_eq!(ev.dataset, "panos.traffic");
        assert_eq!(ev.source_ip, want("src").parse().ok());
        assert_eq!(ev.destination_ip, want("dst").parse().ok());
        assert_eq!(ev.source_port, want("srcPort").parse().ok());
        assert_eq!(ev.destination_port, want("dstPort").parse().ok());
        assert_eq!(ev.action.as_deref(), Some(want("action")));
        assert_eq!(ev.panos_subtype.as_deref(), Some(want("Subtype")));
        assert_eq!(ev.rule_name.as_deref(), Some(want("RuleName")));
        assert_eq!(ev.source_zone.as_deref(), Some(want("SourceZone")));
        assert_eq!(ev.network_application.as_deref(), Some(want("Application")));
        assert_eq!(
            ev.observer_serial_number.as_deref(),
            Some(want("SerialNumber"))
        );
        assert_eq!(ev.panos_sequence_number, want("sequence").parse().ok());
        assert_eq!(ev.network_transport.as_deref(), Some(want("proto")));
        let dev_time = NaiveDateTime::parse_from_str(want("devTime"), "%b %d %Y %H:%M:%S GMT")
            .expect("devTime");
        assert_eq!(ev.timestamp, dev_time.and_utc());
        assert_eq!(
            ev.observer_hostname.as_deref(),
            Some("firewall.domain.local")
        );
        assert_eq!(&*ev.original, line);
        assert_eq!(ev.error_message, None, "{line}");
        count += 1;
    }
    assert_eq!(count, 3);
}

fn suricata_time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .unwrap_or_else(|e| panic!("expected time {s}: {e}"))
        .with_timezone(&Utc)
}

fn check_alert(ev: &ThreatEvent, v: &Value, line: &str) {
    assert_eq!(ev.kind, EventKind::Alert);
    assert_eq!(ev.module, EventModule::Suricata);
    assert_eq!(
        ev.dataset,
        format!("suricata.{}", v["event_type"].as_str().unwrap_or_default())
    );
    assert_eq!(
        ev.timestamp,
        suricata_time(v["timestamp"].as_str().expect("timestamp"))
    );
    assert_eq!(
        ev.source_ip,
        v["src_ip"].as_str().and_then(|s| s.parse().ok())
    );
    assert_eq!(
        ev.destination_ip,
        v["dest_ip"].as_str().and_then(|s| s.parse().ok())
    );
    assert_eq!(ev.source_port.map(u64::from), v["src_port"].as_u64());
    assert_eq!(ev.destination_port.map(u64::from), v["dest_port"].as_u64());
    assert_eq!(
        ev.network_transport.as_deref(),
        v["proto"].as_str().map(str::to_ascii_lowercase).as_deref()
    );
    assert_eq!(ev.network_protocol.as_deref(), v["app_proto"].as_str());
    assert_eq!(
        ev.observer_ingress_interface.as_deref(),
        v["in_iface"].as_str()
    );
    assert_eq!(ev.suricata_flow_id, v["flow_id"].as_u64());
    let alert = &v["alert"];
    assert_eq!(ev.action.as_deref(), alert["action"].as_str());
    assert_eq!(ev.threat_name.as_deref(), alert["signature"].as_str());
    assert_eq!(ev.threat_id, alert["signature_id"].as_u64());
    // Suricata's own category text is kept as suricata.category; threat.type
    // and threat.category come from the classtype table, as for PAN-OS.
    let category = alert["category"].as_str().filter(|c| !c.is_empty());
    assert_eq!(ev.suricata_category.as_deref(), category);
    let mapped = category.and_then(riposte_firewall::eve::classtype::map);
    assert_eq!(ev.threat_type.as_deref(), mapped.map(|(ty, _)| ty));
    assert_eq!(ev.threat_category.as_deref(), mapped.and_then(|(_, c)| c));
    let want_severity = match alert["severity"].as_u64() {
        Some(1) => Some(Severity::High),
        Some(2) => Some(Severity::Medium),
        Some(3) => Some(Severity::Low),
        Some(_) => Some(Severity::Informational),
        None => None,
    };
    assert_eq!(ev.threat_severity, want_severity);
    match alert["metadata"].as_object() {
        Some(meta) => {
            let got = ev.suricata_metadata.as_ref().expect("metadata");
            assert_eq!(got.len(), meta.len());
            for (key, values) in meta {
                let want: Vec<&str> = values
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                assert_eq!(got[key], want, "metadata {key}");
            }
        }
        None => assert_eq!(ev.suricata_metadata, None),
    }
    if let Some(url) = v["http"]["url"].as_str() {
        let got = ev.url_original.as_deref().expect("url");
        assert!(got.ends_with(url), "{got} vs {url}");
        if let Some(host) = v["http"]["hostname"].as_str() {
            assert!(got.starts_with(&format!("http://{host}")), "{got}");
        }
    }
    assert_eq!(
        ev.network_direction,
        match v["direction"].as_str() {
            Some("to_server") => Some(Direction::ClientToServer),
            Some("to_client") => Some(Direction::ServerToClient),
            _ => None,
        }
    );
    assert_eq!(&*ev.original, line);
    assert_eq!(ev.error_message, None, "{line}");
}

#[test]
fn every_suricata_sample_line_parses() {
    let opts = ParseOptions::default();
    let (mut alerts, mut ignored) = (0, 0);
    for path in files("suricata", "json") {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = read(&path);
        for line in lines(&text) {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{name}: sample is not JSON: {e}"));
            let kind = v["event_type"].as_str().expect("event_type");
            let ctx = RecordContext::bare(line);
            let direct =
                eve::parse(line, &ctx, &opts).unwrap_or_else(|e| panic!("{name}: {e}\n{line}"));
            // The public entry point detects EVE by its `{` and agrees.
            let via_record =
                parse_record(line.as_bytes(), &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(direct, via_record, "{name}");
            match direct {
                Parsed::Event(ev) => {
                    assert!(
                        matches!(kind, "alert" | "drop"),
                        "{name}: {kind} became an event"
                    );
                    check_alert(&ev, &v, line);
                    alerts += 1;
                }
                Parsed::Ignored(i) => {
                    assert!(
                        !matches!(kind, "alert" | "drop"),
                        "{name}: an {kind} was ignored"
                    );
                    assert_eq!((i.format, i.kind.as_str()), ("eve", kind));
                    ignored += 1;
                }
            }
            if name.starts_with("DCSO") {
                assert_ne!(kind, "alert", "DCSO's file holds no alerts");
            }
        }
    }
    assert_eq!(
        (alerts, ignored),
        (10, 10),
        "alerts and ignored records across the samples"
    );
}

#[test]
fn suricata_user_guide_alert_values() {
    let path = samples("suricata").join("OISF_suricata__doc_userguide_eve_alert_examples.json");
    let text = read(&path);
    let line = lines(&text).nth(1).expect("second example");
    let ev = parse_record(line.as_bytes(), &ParseOptions::default())
        .expect("parses")
        .into_event()
        .expect("event");
    assert_eq!(ev.threat_id, Some(2045001));
    assert_eq!(ev.threat_severity, Some(Severity::High));
    assert_eq!(ev.source_ip, Some("142.11.240.191".parse().expect("ip")));
    assert_eq!(
        ev.url_original.as_deref(),
        Some("http://142.11.240.191:35361/")
    );
    assert_eq!(ev.network_direction, Some(Direction::ServerToClient));
    assert_eq!(
        ev.suricata_metadata
            .as_ref()
            .map(|m| m["signature_severity"].clone()),
        Some(vec!["Major".to_string()])
    );
}
