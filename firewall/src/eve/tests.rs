use chrono::{DateTime, Utc};

use super::*;

const ALERT: &str = r#"{"timestamp":"2024-06-15T10:21:06.880123+0200","flow_id":1676750115612680,"in_iface":"eth0","event_type":"alert","src_ip":"10.244.1.17","src_port":49152,"dest_ip":"203.0.113.50","dest_port":8080,"proto":"TCP","pkt_src":"wire/pcap","tx_id":1,"host":"suricata-node-a","direction":"to_server","alert":{"action":"blocked","gid":1,"signature_id":2045001,"rev":1,"signature":"ET MALWARE Zeus C2 Beacon \"v2\"","category":"A Network Trojan was detected","severity":1,"metadata":{"attack_target":["Client_Endpoint"],"signature_severity":["Major"],"weird":[1,true,null,"x",{"n":1}],"lone":"value"}},"http":{"hostname":"evil.example.com","http_port":8080,"url":"/gate.php?id=42","http_user_agent":"curl/8.5.0","http_method":"POST","status":200},"files":[{"filename":"","size":0},{"filename":"payload.bin","sha256":"0000000000000000000000000000000000000000000000000000000000000000"}],"app_proto":"http","flow":{"pkts_toserver":3}}"#;

fn ctx(original: &str) -> RecordContext<'_> {
    RecordContext::bare(original)
}

fn run(line: &str) -> Result<Parsed, ParseError> {
    parse(line, &ctx(line), &ParseOptions::default())
}

fn event(line: &str) -> ThreatEvent {
    match run(line).expect("parses") {
        Parsed::Event(ev) => *ev,
        Parsed::Ignored(i) => panic!("ignored: {i:?}"),
    }
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("test time")
}

#[test]
fn alert_maps_every_field() {
    let ev = event(ALERT);
    assert_eq!(ev.kind, EventKind::Alert);
    assert_eq!(ev.module, EventModule::Suricata);
    assert_eq!(ev.dataset, "suricata.alert");
    assert_eq!(ev.observer_vendor, "OISF");
    assert_eq!(ev.timestamp, at("2024-06-15T08:21:06.880123Z"));
    assert_eq!(ev.source_ip, Some("10.244.1.17".parse().expect("ip")));
    assert_eq!(
        (ev.source_port, ev.destination_port),
        (Some(49152), Some(8080))
    );
    assert_eq!(ev.destination_ip, Some("203.0.113.50".parse().expect("ip")));
    assert_eq!(ev.network_transport.as_deref(), Some("tcp"));
    assert_eq!(ev.network_protocol.as_deref(), Some("http"));
    assert_eq!(ev.observer_ingress_interface.as_deref(), Some("eth0"));
    assert_eq!(ev.observer_hostname.as_deref(), Some("suricata-node-a"));
    assert_eq!(ev.suricata_flow_id, Some(1676750115612680));
    assert_eq!(ev.network_direction, Some(Direction::ClientToServer));
    assert_eq!(ev.action.as_deref(), Some("blocked"));
    assert_eq!(
        ev.threat_name.as_deref(),
        Some("ET MALWARE Zeus C2 Beacon \"v2\"")
    );
    assert_eq!(ev.threat_id, Some(2045001));
    // The classtype maps onto the PAN-OS names; its text stays too.
    assert_eq!(ev.threat_type.as_deref(), Some("spyware"));
    assert_eq!(ev.threat_category.as_deref(), Some("command-and-control"));
    assert_eq!(
        ev.suricata_category.as_deref(),
        Some("A Network Trojan was detected")
    );
    assert_eq!(ev.threat_severity, Some(Severity::High));
    assert_eq!(ev.severity, Some(4));
    let meta = ev.suricata_metadata.as_ref().expect("metadata");
    assert_eq!(meta["attack_target"], vec!["Client_Endpoint".to_string()]);
    assert_eq!(meta["weird"], vec!["1".to_string(), "x".to_string()]);
    assert_eq!(meta["lone"], vec!["value".to_string()]);
    assert_eq!(
        ev.url_original.as_deref(),
        Some("http://evil.example.com:8080/gate.php?id=42")
    );
    assert_eq!(ev.user_agent.as_deref(), Some("curl/8.5.0"));
    assert_eq!(ev.file_name.as_deref(), Some("payload.bin"));
    assert_eq!(
        ev.file_hash_sha256.as_deref(),
        Some("0".repeat(64).as_str())
    );
    assert_eq!(&*ev.original, ALERT);
    assert_eq!(ev.error_message, None);
}

#[test]
fn drop_records_are_alerts_with_or_without_an_alert_object() {
    let with = r#"{"timestamp":"2024-06-15T10:00:00.000000+0000","event_type":"drop","src_ip":"1.2.3.4","dest_ip":"5.6.7.8","proto":"UDP","drop":{"len":60,"reason":"rules"},"alert":{"action":"blocked","signature_id":7,"signature":"drop it","severity":3}}"#;
    let ev = event(with);
    assert_eq!(ev.dataset, "suricata.drop");
    assert_eq!(ev.kind, EventKind::Alert);
    assert_eq!(ev.threat_severity, Some(Severity::Low));
    assert_eq!(ev.network_transport.as_deref(), Some("udp"));

    let without = r#"{"timestamp":"2024-06-15T10:00:00.000000+0000","event_type":"drop","src_ip":"1.2.3.4","dest_ip":"5.6.7.8","proto":"TCP","drop":{"len":60}}"#;
    let ev = event(without);
    assert_eq!(ev.dataset, "suricata.drop");
    assert_eq!(ev.action.as_deref(), Some("blocked"));
    assert_eq!(ev.threat_name, None);
}

#[test]
fn severities_follow_suricata_priorities() {
    for (priority, want) in [
        (1, Some(Severity::High)),
        (2, Some(Severity::Medium)),
        (3, Some(Severity::Low)),
        (4, Some(Severity::Informational)),
        (255, Some(Severity::Informational)),
    ] {
        let line = format!(
            r#"{{"timestamp":"2024-06-15T10:00:00+0000","event_type":"alert","alert":{{"severity":{priority}}}}}"#
        );
        assert_eq!(event(&line).threat_severity, want, "{priority}");
    }
    let zero =
        r#"{"timestamp":"2024-06-15T10:00:00+0000","event_type":"alert","alert":{"severity":0}}"#;
    let ev = event(zero);
    assert_eq!(ev.threat_severity, None);
    assert!(ev.error_message.expect("warning").contains("severity"));
}

#[test]
fn other_event_types_are_ignored() {
    for kind in [
        "flow", "stats", "dns", "http", "tls", "fileinfo", "anomaly", "netflow",
    ] {
        // Even with fields of unexpected types: ignored records are not typed.
        let line = format!(r#"{{"event_type":"{kind}","src_port":"not a number","timestamp":7}}"#);
        assert_eq!(
            run(&line).expect(kind),
            Parsed::Ignored(Ignored {
                format: "eve",
                kind: kind.to_string()
            })
        );
    }
}

#[test]
fn direction_to_client_and_urls_without_host() {
    let line = r#"{"timestamp":"2024-06-15T10:00:00+0000","event_type":"alert","direction":"to_client","http":{"url":"/x"},"fileinfo":{"filename":"a.exe"}}"#;
    let ev = event(line);
    assert_eq!(ev.network_direction, Some(Direction::ServerToClient));
    assert_eq!(ev.url_original.as_deref(), Some("/x"));
    assert_eq!(ev.file_name.as_deref(), Some("a.exe"));
    assert_eq!(
        http_url(Some("h"), Some(80), Some("p")).as_deref(),
        Some("http://h/p")
    );
    assert_eq!(
        http_url(Some("h"), None, Some("https://other/")).as_deref(),
        Some("https://other/")
    );
    assert_eq!(
        http_url(Some("h"), None, None).as_deref(),
        Some("http://h/")
    );
}

#[test]
fn observer_falls_back_to_the_syslog_hostname() {
    let line = r#"{"timestamp":"2024-06-15T10:00:00+0000","event_type":"alert","src_ip":"bad ip"}"#;
    let ctx = RecordContext {
        original: line,
        hostname: Some("ids-1"),
        header_time: None,
    };
    let ev = parse(line, &ctx, &ParseOptions::default())
        .expect("parses")
        .into_event()
        .expect("event");
    assert_eq!(ev.observer_hostname.as_deref(), Some("ids-1"));
    assert_eq!(ev.source_ip, None);
    assert!(ev.error_message.expect("warning").contains("source.ip"));
}

#[test]
fn malformed_json_reports_line_and_column() {
    let err = run("{\"event_type\":\"alert\",\n\"x\":}").expect_err("bad json");
    assert!(
        matches!(err, ParseError::Malformed { format: "eve", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("line 2 column 5"), "{err}");
    let err = run("{\"event_type\":\"alert\"").expect_err("eof");
    assert!(err.to_string().contains("invalid JSON"), "{err}");
    let err = run("{\"event_type\":\"alert\"} trailing").expect_err("trailing");
    assert!(err.to_string().contains("trailing"), "{err}");
}

#[test]
fn json_that_is_not_an_object_is_a_field_error() {
    for (line, found) in [
        ("[1,2]", "an array"),
        ("\"alert\"", "a string"),
        ("42", "a number"),
        ("null", "null"),
    ] {
        let err = run(line).expect_err(line);
        assert!(
            matches!(
                err,
                ParseError::Field {
                    field: "record",
                    ..
                }
            ),
            "{line}: {err}"
        );
        assert!(err.to_string().contains(found), "{line}: {err}");
    }
}

#[test]
fn missing_or_bad_required_fields_are_field_errors() {
    for (line, field) in [
        (r#"{"event_type":"alert","src_ip":"1.2.3.4"}"#, "timestamp"),
        (
            r#"{"event_type":"alert","timestamp":"yesterday"}"#,
            "timestamp",
        ),
        (r#"{"timestamp":"2024-06-15T10:00:00+0000"}"#, "event_type"),
    ] {
        let err = run(line).expect_err(line);
        assert!(
            matches!(&err, ParseError::Field { field: f, .. } if *f == field),
            "{line}: {err}"
        );
    }
}

#[test]
fn wrongly_typed_alert_fields_are_explained() {
    let line = r#"{"timestamp":"2024-06-15T10:00:00+0000","event_type":"alert","src_port":"http"}"#;
    let err = run(line).expect_err("type");
    assert!(err.to_string().contains("unexpected value"), "{err}");
    assert!(err.to_string().contains("column"), "{err}");
}

#[test]
fn deep_nesting_never_overflows_the_stack() {
    let n = 100_000;
    let open = "[".repeat(n);
    let closed = format!("{open}{}", "]".repeat(n));
    // Unclosed: an error.
    let err = run(&open).expect_err("deep array");
    assert!(matches!(err, ParseError::Malformed { .. }), "{err}");
    assert!(run(&"{\"a\":".repeat(n)).is_err());
    // Closed but not an object: the right error.
    let err = run(&closed).expect_err("array");
    assert!(
        matches!(
            err,
            ParseError::Field {
                field: "record",
                ..
            }
        ),
        "{err}"
    );
    // Deep values under keys Riposte skips or reads leniently are skipped
    // without recursion, and the alert survives.
    let line = format!(
        r#"{{"timestamp":"2024-06-15T10:00:00+0000","event_type":"alert","x":{closed},"alert":{{"signature":"s","metadata":{{"k":["v",{closed}]}}}}}}"#
    );
    let ev = event(&line);
    assert_eq!(ev.threat_name.as_deref(), Some("s"));
    assert_eq!(
        ev.suricata_metadata.expect("metadata")["k"],
        vec!["v".to_string()]
    );
    // Typed positions hit serde_json's recursion limit instead.
    let line = format!(
        r#"{{"timestamp":"2024-06-15T10:00:00+0000","event_type":"alert","alert":{}}}"#,
        "{\"alert\":".repeat(n)
    );
    assert!(run(&line).is_err());
}

#[test]
fn escaped_strings_are_decoded() {
    let line = r#"{"timestamp":"2024-06-15T10:00:00+0000","event_type":"alert","alert":{"signature":"caf\u00e9 \/ \"quoted\""}}"#;
    assert_eq!(
        event(line).threat_name.as_deref(),
        Some("café / \"quoted\"")
    );
}
