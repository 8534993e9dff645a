//! Fixtures follow PAN-OS's predefined LEEF templates: 1.0 with `|`
//! (traffic as PAN-OS 11.1 sends it, threat from the 8.x–10.x template) and
//! 2.0 with a declared delimiter.

use super::*;
use crate::Severity;

const TRAFFIC: &str = concat!(
    "LEEF:1.0|Palo Alto Networks|PAN-OS Syslog Integration|11.1.6-h14|deny|cat=TRAFFIC|",
    "ReceiveTime=2025/09/17 13:48:37|SerialNumber=010108010025|Type=TRAFFIC|Subtype=drop|",
    "devTime=Sep 17 2025 11:48:37 GMT|src=172.16.129.169|dst=198.51.100.39|srcPostNAT=0.0.0.0|",
    "dstPostNAT=0.0.0.0|RuleName=interzone-default|usrName=|SourceUser=|DestinationUser=|",
    "Application=not-applicable|VirtualSystem=vsys7|SourceZone=wan|DestinationZone=partner-gw|",
    "IngressInterface=ethernet1/8.2012|EgressInterface=|LogForwardingProfile=default|SessionID=0|",
    "RepeatCount=1|srcPort=63219|dstPort=3367|srcPostNATPort=0|dstPostNATPort=0|Flags=0x0|proto=tcp|",
    "action=deny|totalBytes=0|sequence=7548503197948374938|SessionEndReason=policy-deny|",
    "DeviceName=firewall.domain.local|ActionSource=from-policy|TunnelType=N/A"
);

const THREAT: &str = concat!(
    "LEEF:1.0|Palo Alto Networks|PAN-OS Syslog Integration|10.2.4|Zeus C2 Traffic(13209)|",
    "ReceiveTime=2024/06/15 12:21:07|SerialNumber=007951000123456|cat=THREAT|Subtype=spyware|",
    "devTime=Jun 15 2024 10:21:07 GMT|src=10.244.1.17|dst=203.0.113.50|srcPostNAT=192.0.2.10|",
    "dstPostNAT=203.0.113.50|RuleName=allow egress web|usrName=shop\\checkout|SourceUser=shop\\checkout|",
    "DestinationUser=|Application=web-browsing|VirtualSystem=vsys1|SourceZone=k8s-pods|",
    "DestinationZone=untrust|IngressInterface=ethernet1/1|EgressInterface=ethernet1/2|",
    "LogForwardingProfile=default|SessionID=123456|RepeatCount=1|srcPort=49152|dstPort=443|",
    "srcPostNATPort=31337|dstPostNATPort=443|Flags=0x80402000|proto=tcp|action=reset-both|",
    "Miscellaneous=\"evil.example.com/gate.php?id=42|x\"|ThreatID=Zeus C2 Traffic(13209)|",
    "URLCategory=command-and-control|sev=5|Severity=critical|Direction=client-to-server|",
    "sequence=7324351234|ActionFlags=0x2000000000000000|SourceLocation=10.0.0.0-10.255.255.255|",
    "DestinationLocation=United States|ContentType=|PCAP_ID=0|FileDigest=|Cloud=|UserAgent=curl/8.5.0|",
    "DeviceName=cn-fw-1|ThreatCategory=command-and-control|ContainerID=3f2a1b9c|",
    "ContainerNameSpace=shop|ContainerName=checkout-7d9f|RuleUUID=5b6a9c1e-0d8f-4e0b-9a57-1f3c2d4e5f60"
);

fn ctx(original: &str) -> RecordContext<'_> {
    RecordContext::bare(original)
}

fn event(payload: &str) -> ThreatEvent {
    let opts = ParseOptions {
        timezone: "Europe/Berlin".parse().expect("tz"),
        ..ParseOptions::default()
    };
    match parse(payload, &ctx(payload), &opts).expect("parses") {
        Parsed::Event(ev) => *ev,
        Parsed::Ignored(i) => panic!("ignored: {i:?}"),
    }
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("test time")
}

#[test]
fn traffic_log_as_pan_os_11_sends_it() {
    let ev = event(TRAFFIC);
    assert_eq!(ev.kind, EventKind::Event);
    assert_eq!(ev.dataset, "panos.traffic");
    assert_eq!(ev.timestamp, at("2025-09-17T11:48:37Z"));
    assert_eq!(ev.created, Some(at("2025-09-17T11:48:37Z")));
    assert_eq!(ev.source_ip, Some("172.16.129.169".parse().expect("ip")));
    assert_eq!(ev.destination_port, Some(3367));
    assert_eq!(ev.source_nat_ip, None);
    assert_eq!(ev.rule_name.as_deref(), Some("interzone-default"));
    assert_eq!(ev.source_user, None);
    assert_eq!(ev.panos_virtual_system.as_deref(), Some("vsys7"));
    assert_eq!(ev.source_zone.as_deref(), Some("wan"));
    assert_eq!(ev.observer_egress_interface, None);
    assert_eq!(ev.panos_sequence_number, Some(7548503197948374938));
    assert_eq!(ev.action.as_deref(), Some("deny"));
    assert_eq!(ev.panos_subtype.as_deref(), Some("drop"));
    assert_eq!(ev.observer_serial_number.as_deref(), Some("010108010025"));
    assert_eq!(
        ev.observer_hostname.as_deref(),
        Some("firewall.domain.local")
    );
    assert_eq!(ev.threat_severity, None);
    assert_eq!(ev.error_message, None);
}

#[test]
fn threat_log_becomes_an_alert() {
    let ev = event(THREAT);
    assert_eq!(ev.kind, EventKind::Alert);
    assert_eq!(ev.dataset, "panos.threat");
    assert_eq!(ev.timestamp, at("2024-06-15T10:21:07Z"));
    assert_eq!(ev.threat_name.as_deref(), Some("Zeus C2 Traffic"));
    assert_eq!(ev.threat_id, Some(13209));
    assert_eq!(ev.threat_type.as_deref(), Some("spyware"));
    assert_eq!(ev.threat_category.as_deref(), Some("command-and-control"));
    assert_eq!(ev.threat_severity, Some(Severity::Critical));
    assert_eq!(ev.network_direction, Some(Direction::ClientToServer));
    assert_eq!(
        ev.url_original.as_deref(),
        Some("evil.example.com/gate.php?id=42|x")
    );
    assert_eq!(ev.source_user.as_deref(), Some("shop\\checkout"));
    assert_eq!(ev.source_nat_port, Some(31337));
    assert_eq!(ev.destination_location.as_deref(), Some("United States"));
    assert_eq!(ev.user_agent.as_deref(), Some("curl/8.5.0"));
    assert_eq!(ev.container_id.as_deref(), Some("3f2a1b9c"));
    assert_eq!(ev.orchestrator_namespace.as_deref(), Some("shop"));
    assert_eq!(
        ev.orchestrator_resource_name.as_deref(),
        Some("checkout-7d9f")
    );
    assert_eq!(
        ev.rule_uuid.as_deref(),
        Some("5b6a9c1e-0d8f-4e0b-9a57-1f3c2d4e5f60")
    );
    assert_eq!(ev.action.as_deref(), Some("reset-both"));
    assert_eq!(&*ev.original, THREAT);
    assert_eq!(ev.error_message, None);
}

#[test]
fn leef2_threat_with_a_hex_delimiter_and_the_newer_keys() {
    let line = concat!(
        "LEEF:2.0|Palo Alto Networks|PAN-OS Syslog Integration|11.0.1|Cobalt Strike Beacon(86237)|x7C|",
        "ProfileToken=0x0|TimeReceived=2024/01/10 08:00:00|DeviceSN=0123|cat=THREAT|SubType=vulnerability|",
        "src=10.0.0.5|dst=198.51.100.9|Rule=out|usrName=alice|FromZone=pods|ToZone=inet|",
        "InboundInterface=ethernet1/1|srcPort=4000|dstPort=80|proto=tcp|Action=drop|FileName=/beacon.bin|",
        "VendorSeverity=high|DirectionOfAttack=server-to-client|SequenceNo=77|",
        "TimeGeneratedHighResolution=2024-01-10T07:59:59.250+00:00"
    );
    let ev = event(line);
    assert_eq!(ev.timestamp, at("2024-01-10T07:59:59.250Z"));
    assert_eq!(
        ev.created,
        Some(at("2024-01-10T07:00:00Z")),
        "ReceiveTime is local (Berlin, UTC+1)"
    );
    assert_eq!(ev.threat_name.as_deref(), Some("Cobalt Strike Beacon"));
    assert_eq!(ev.threat_id, Some(86237));
    assert_eq!(ev.threat_severity, Some(Severity::High));
    assert_eq!(ev.network_direction, Some(Direction::ServerToClient));
    assert_eq!(ev.source_zone.as_deref(), Some("pods"));
    assert_eq!(ev.source_user.as_deref(), Some("alice"));
    assert_eq!(ev.rule_name.as_deref(), Some("out"));
    assert_eq!(ev.url_original.as_deref(), Some("/beacon.bin"));
    assert_eq!(ev.panos_sequence_number, Some(77));
    assert_eq!(ev.observer_serial_number.as_deref(), Some("0123"));
}

#[test]
fn tab_separated_leef1_and_numeric_severity() {
    let line = "LEEF:1.0|Palo Alto Networks|PAN-OS|9.1|(9999)|cat=THREAT\tSubtype=url\tdevTime=Jun 15 2024 10:00:00 GMT\tMisc=bad.example/x\tURLCategory=malware\tsev=8\tThreatID=(9999)";
    let ev = event(line);
    assert_eq!(ev.threat_type.as_deref(), Some("url"));
    assert_eq!(ev.url_original.as_deref(), Some("bad.example/x"));
    assert_eq!(ev.threat_category.as_deref(), Some("malware"));
    assert_eq!(ev.threat_severity, Some(Severity::High));
    assert_eq!(
        (ev.threat_name.as_deref(), ev.threat_id),
        (None, Some(9999))
    );
}

#[test]
fn file_subtypes_put_misc_in_file_name() {
    let digest = "b".repeat(64);
    let line = format!(
        "LEEF:1.0|Palo Alto Networks|PAN-OS Syslog Integration|10.1|Eicar(39040)|cat=THREAT|Subtype=virus|\
         devTime=Jun 15 2024 10:00:00 GMT|Miscellaneous=\"eicar.com\"|FileDigest={digest}|\
         Sender=a@bad.example|Subject=hello|Severity=medium"
    );
    let ev = event(&line);
    assert_eq!(ev.file_name.as_deref(), Some("eicar.com"));
    assert_eq!(ev.url_original, None);
    assert_eq!(ev.file_hash_sha256.as_deref(), Some(digest.as_str()));
    assert_eq!(ev.email_from.as_deref(), Some("a@bad.example"));
    assert_eq!(ev.email_subject.as_deref(), Some("hello"));
}

#[test]
fn missing_times_fall_back_to_the_header_or_fail() {
    let line = "LEEF:1.0|Palo Alto Networks|PAN-OS|10.1|allow|cat=TRAFFIC|src=10.0.0.1";
    let err = parse(line, &ctx(line), &ParseOptions::default()).expect_err("no time");
    assert!(
        matches!(
            err,
            ParseError::Field {
                field: "devTime",
                ..
            }
        ),
        "{err}"
    );
    let header_time = at("2024-06-15T10:00:00Z");
    let ctx = RecordContext {
        original: line,
        hostname: Some("fw-a"),
        header_time: Some(header_time),
    };
    let ev = parse(line, &ctx, &ParseOptions::default())
        .expect("parses")
        .into_event()
        .expect("event");
    assert_eq!(ev.timestamp, header_time);
    assert_eq!(ev.observer_hostname.as_deref(), Some("fw-a"));
    assert_eq!(
        ev.action.as_deref(),
        Some("allow"),
        "the header's event id is the action"
    );
}

#[test]
fn damaged_values_are_warnings() {
    let line = "LEEF:1.0|Palo Alto Networks|PAN-OS|10.1|x|cat=THREAT|devTime=Jun 15 2024 10:00:00 GMT|ReceiveTime=soon|src=1.2.3|srcPort=-1|Severity=awful";
    let ev = event(line);
    let msg = ev.error_message.expect("warnings");
    for part in ["source.ip", "source.port", "event.severity"] {
        assert!(msg.contains(part), "{msg}");
    }
}

#[test]
fn other_log_types_are_ignored() {
    let line = "LEEF:1.0|Palo Alto Networks|PAN-OS Syslog Integration|10.1|general|cat=SYSTEM|subtype=general|sev=1";
    assert_eq!(
        parse(line, &ctx(line), &ParseOptions::default()).expect("parses"),
        Parsed::Ignored(Ignored {
            format: "leef",
            kind: "SYSTEM".into()
        })
    );
}

#[test]
fn errors_name_the_problem() {
    for (line, needle) in [
        ("LEEF:1.0|Palo Alto Networks|PAN-OS", "header has"),
        ("LEEF:1.0|Acme|Widget|1|x|cat=THREAT", "not Palo Alto"),
        (
            "LEEF:1.0|Palo Alto Networks|PAN-OS|1|x|src=1.1.1.1",
            "log type",
        ),
        (
            "LEEF:1.0|Palo Alto Networks|PAN-OS|1|x|no attributes",
            "key=value",
        ),
        (
            "LEEF:2.0|Palo Alto Networks|PAN-OS|1|x|bogus|cat=THREAT",
            "delimiter",
        ),
    ] {
        let err = parse(line, &ctx(line), &ParseOptions::default()).expect_err(line);
        assert!(err.to_string().contains(needle), "{line}: {err}");
    }
}
