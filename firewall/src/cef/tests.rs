//! Fixtures follow PAN-OS's predefined CEF templates (10.x/11.x) and the
//! Strata Logging Service's forwarder output.

use super::*;
use crate::{Severity, ThreatEvent};

const THREAT: &str = concat!(
    "CEF:0|Palo Alto Networks|PAN-OS|10.2.4|spyware|THREAT|10|",
    "rt=Jun 15 2024 10:21:07 GMT deviceExternalId=007951000123456 src=10.244.1.17 dst=203.0.113.50 ",
    "sourceTranslatedAddress=192.0.2.10 destinationTranslatedAddress=203.0.113.50 cs1Label=Rule ",
    "cs1=allow egress web suser=shop\\\\checkout duser= app=web-browsing cs3Label=Virtual System cs3=vsys1 ",
    "cs4Label=Source Zone cs4=k8s-pods cs5Label=Destination Zone cs5=untrust ",
    "deviceInboundInterface=ethernet1/1 deviceOutboundInterface=ethernet1/2 cs6Label=LogProfile cs6=default ",
    "cn1Label=SessionID cn1=123456 cnt=1 spt=49152 dpt=443 sourceTranslatedPort=31337 ",
    "destinationTranslatedPort=443 flexString1Label=Flags flexString1=0x80402000 proto=tcp act=reset-both ",
    "request=\"evil.example.com/gate.php?id\\=42\" cs2Label=URL Category cs2=command-and-control ",
    "flexString2Label=Direction flexString2=client-to-server PanOSActionFlags=0x2000000000000000 ",
    "externalId=7324351234 cat=Zeus C2 Traffic(13209) fileId=0 PanOSDGl1=0 PanOSDGl2=0 PanOSDGl3=0 ",
    "PanOSDGl4=0 PanOSVsysName= dvchost=cn-fw-1 PanOSSrcUUID= PanOSDstUUID= PanOSTunnelID=0 ",
    "PanOSThreatCategory=command-and-control PanOSContentVer=AppThreat-8795-8385 ",
    "PanOSRuleUUID=5b6a9c1e-0d8f-4e0b-9a57-1f3c2d4e5f60 PanOSContainerName=3f2a1b9c ",
    "PanOSPODNamespace=shop PanOSPODName=checkout-7d9f PanOSTimeGeneratedHighResolution=2024-06-15T10:21:06.880+00:00"
);

const TRAFFIC: &str = concat!(
    "CEF:0|Palo Alto Networks|PAN-OS|11.1.2|end|TRAFFIC|1|rt=Jun 15 2024 12:00:05 ",
    "deviceExternalId=007951000123456 src=10.244.2.8 dst=10.96.0.10 sourceTranslatedAddress=0.0.0.0 ",
    "destinationTranslatedAddress=0.0.0.0 cs1Label=Rule cs1=dns cs4Label=Source Zone cs4=pods ",
    "cs5Label=Destination Zone cs5=svc cn1Label=SessionID cn1=99 cnt=1 spt=53000 dpt=53 ",
    "sourceTranslatedPort=0 destinationTranslatedPort=0 proto=udp act=allow flexNumber1Label=Total bytes ",
    "flexNumber1=180 start=Jun 15 2024 12:00:00 cs2Label=URL Category cs2=any externalId=42 ",
    "reason=aged-out dvchost=cn-fw-1 cat=from-policy"
);

fn ctx(original: &str) -> RecordContext<'_> {
    RecordContext::bare(original)
}

fn event(payload: &str) -> ThreatEvent {
    event_with(payload, &ParseOptions::default())
}

fn event_with(payload: &str, opts: &ParseOptions) -> ThreatEvent {
    match parse(payload, &ctx(payload), opts).expect("parses") {
        Parsed::Event(ev) => *ev,
        Parsed::Ignored(i) => panic!("ignored: {i:?}"),
    }
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("test time")
}

#[test]
fn threat_log_becomes_an_alert_with_every_predefined_field() {
    let ev = event(THREAT);
    assert_eq!(ev.kind, EventKind::Alert);
    assert_eq!(ev.module, EventModule::Panos);
    assert_eq!(ev.dataset, "panos.threat");
    assert_eq!(ev.timestamp, at("2024-06-15T10:21:06.880Z"));
    assert_eq!(ev.created, Some(at("2024-06-15T10:21:07Z")));
    assert_eq!(ev.source_ip, Some("10.244.1.17".parse().expect("ip")));
    assert_eq!(ev.destination_ip, Some("203.0.113.50".parse().expect("ip")));
    assert_eq!(
        (ev.source_port, ev.destination_port),
        (Some(49152), Some(443))
    );
    assert_eq!(ev.source_nat_ip, Some("192.0.2.10".parse().expect("ip")));
    assert_eq!(
        (ev.source_nat_port, ev.destination_nat_port),
        (Some(31337), Some(443))
    );
    assert_eq!(ev.rule_name.as_deref(), Some("allow egress web"));
    assert_eq!(ev.source_user.as_deref(), Some("shop\\checkout"));
    assert_eq!(ev.destination_user, None);
    assert_eq!(ev.network_application.as_deref(), Some("web-browsing"));
    assert_eq!(ev.panos_virtual_system.as_deref(), Some("vsys1"));
    assert_eq!(ev.source_zone.as_deref(), Some("k8s-pods"));
    assert_eq!(ev.destination_zone.as_deref(), Some("untrust"));
    assert_eq!(
        ev.observer_ingress_interface.as_deref(),
        Some("ethernet1/1")
    );
    assert_eq!(ev.observer_egress_interface.as_deref(), Some("ethernet1/2"));
    assert_eq!(ev.panos_session_id, Some(123456));
    assert_eq!(ev.panos_repeat_count, Some(1));
    assert_eq!(ev.panos_sequence_number, Some(7324351234));
    assert_eq!(ev.network_transport.as_deref(), Some("tcp"));
    assert_eq!(ev.action.as_deref(), Some("reset-both"));
    assert_eq!(
        ev.url_original.as_deref(),
        Some("evil.example.com/gate.php?id=42")
    );
    assert_eq!(ev.network_direction, Some(Direction::ClientToServer));
    assert_eq!(ev.threat_name.as_deref(), Some("Zeus C2 Traffic"));
    assert_eq!(ev.threat_id, Some(13209));
    assert_eq!(ev.threat_type.as_deref(), Some("spyware"));
    assert_eq!(ev.threat_category.as_deref(), Some("command-and-control"));
    assert_eq!(ev.threat_severity, Some(Severity::Critical));
    assert_eq!(ev.severity, Some(5));
    assert_eq!(
        ev.observer_serial_number.as_deref(),
        Some("007951000123456")
    );
    assert_eq!(ev.observer_hostname.as_deref(), Some("cn-fw-1"));
    assert_eq!(ev.observer_version.as_deref(), Some("10.2.4"));
    assert_eq!(ev.panos_type.as_deref(), Some("THREAT"));
    assert_eq!(ev.panos_subtype.as_deref(), Some("spyware"));
    assert_eq!(
        ev.rule_uuid.as_deref(),
        Some("5b6a9c1e-0d8f-4e0b-9a57-1f3c2d4e5f60")
    );
    assert_eq!(ev.container_id.as_deref(), Some("3f2a1b9c"));
    assert_eq!(ev.orchestrator_namespace.as_deref(), Some("shop"));
    assert_eq!(
        ev.orchestrator_resource_name.as_deref(),
        Some("checkout-7d9f")
    );
    assert_eq!(&*ev.original, THREAT);
    assert_eq!(ev.error_message, None);
}

#[test]
fn event_id_comes_from_the_whole_record() {
    let record = format!("<14>Jun 15 10:21:07 cn-fw-1 {THREAT}");
    let ctx = RecordContext {
        original: &record,
        hostname: Some("cn-fw-1"),
        header_time: None,
    };
    let ev = parse(THREAT, &ctx, &ParseOptions::default())
        .expect("parses")
        .into_event()
        .expect("event");
    assert_eq!(&*ev.original, record);
    assert_eq!(ev.id, crate::event::event_id(&record));
}

#[test]
fn traffic_log_becomes_an_event_in_the_firewall_zone() {
    let opts = ParseOptions {
        timezone: "Europe/Berlin".parse().expect("tz"),
        ..ParseOptions::default()
    };
    let ev = event_with(TRAFFIC, &opts);
    assert_eq!(ev.kind, EventKind::Event);
    assert_eq!(ev.dataset, "panos.traffic");
    // `start` is the generated time, in the firewall's zone (UTC+2 in June).
    assert_eq!(ev.timestamp, at("2024-06-15T10:00:00Z"));
    assert_eq!(ev.created, Some(at("2024-06-15T10:00:05Z")));
    assert_eq!(ev.source_nat_ip, None, "0.0.0.0 means no NAT");
    assert_eq!(ev.source_nat_port, None);
    assert_eq!(ev.network_transport.as_deref(), Some("udp"));
    assert_eq!(ev.action.as_deref(), Some("allow"));
    assert_eq!(ev.panos_subtype.as_deref(), Some("end"));
    assert_eq!(
        ev.threat_name, None,
        "TRAFFIC `cat` is the action source, not a threat"
    );
    assert_eq!(ev.threat_severity, None);
    assert_eq!(ev.panos_sequence_number, Some(42));
    assert_eq!(ev.error_message, None);
}

#[test]
fn strata_logging_service_swaps_type_and_subtype() {
    let line = concat!(
        "CEF:0|Palo Alto Networks|LF|2.0|THREAT|spyware|8|ProfileToken=xxxxx dtz=UTC ",
        "rt=Mar 01 2021 20:48:21 deviceExternalId=0123 start=Mar 01 2021 20:48:16 ",
        "src=10.0.0.5 dst=198.51.100.7 PanOSIsClienttoServer=false PanOSIsServertoClient=true ",
        "PanOSContainerID=c0ffee PanOSContainerNameSpace=payments PanOSContainerName=api-5f6d ",
        "cat=Suspicious DNS Query (generic:bad.example)(109010004) PanOSThreatCategory=dns-c2"
    );
    let ev = event(line);
    assert_eq!(ev.panos_type.as_deref(), Some("THREAT"));
    assert_eq!(ev.threat_type.as_deref(), Some("spyware"));
    assert_eq!(ev.timestamp, at("2021-03-01T20:48:16Z"));
    assert_eq!(ev.threat_severity, Some(Severity::High));
    assert_eq!(ev.network_direction, Some(Direction::ServerToClient));
    assert_eq!(ev.container_id.as_deref(), Some("c0ffee"));
    assert_eq!(ev.orchestrator_namespace.as_deref(), Some("payments"));
    assert_eq!(ev.orchestrator_resource_name.as_deref(), Some("api-5f6d"));
    assert_eq!(
        ev.threat_name.as_deref(),
        Some("Suspicious DNS Query (generic:bad.example)")
    );
    assert_eq!(ev.threat_id, Some(109010004));
    assert_eq!(ev.threat_category.as_deref(), Some("dns-c2"));
}

#[test]
fn url_logs_take_the_url_and_its_category() {
    let line = concat!(
        "CEF:0|Palo Alto Networks|PAN-OS|9.1.0|url|THREAT|1|rt=1718446867000 src=10.1.1.1 dst=10.2.2.2 ",
        "act=block-url request=\"phish.example/login page\" cs2Label=URL Category cs2=phishing cat=(9999) ",
        "requestClientApplication=Mozilla/5.0 (X11; Linux x86_64)"
    );
    let ev = event(line);
    assert_eq!(ev.timestamp, at("2024-06-15T10:21:07Z"));
    assert_eq!(ev.url_original.as_deref(), Some("phish.example/login page"));
    assert_eq!(ev.threat_category.as_deref(), Some("phishing"));
    assert_eq!(
        (ev.threat_name.as_deref(), ev.threat_id),
        (None, Some(9999))
    );
    assert_eq!(ev.threat_severity, Some(Severity::Informational));
    assert_eq!(
        ev.user_agent.as_deref(),
        Some("Mozilla/5.0 (X11; Linux x86_64)")
    );
}

#[test]
fn wildfire_logs_take_the_file_and_mail_fields() {
    let digest = "a".repeat(64);
    let line = format!(
        "CEF:0|Palo Alto Networks|PAN-OS|10.1.0|wildfire|THREAT|8|rt=Jun 15 2024 10:00:00 GMT \
         request=\"invoice.pdf.exe\" fileHash={digest} suid=billing@bad.example msg=Your invoice\\nplease pay \
         cat=Windows Executable (EXE)(52020) PanOSThreatCategory="
    );
    let ev = event(&line);
    assert_eq!(ev.file_name.as_deref(), Some("invoice.pdf.exe"));
    assert_eq!(ev.url_original, None);
    assert_eq!(ev.file_hash_sha256.as_deref(), Some(digest.as_str()));
    assert_eq!(ev.email_from.as_deref(), Some("billing@bad.example"));
    assert_eq!(
        ev.email_subject.as_deref(),
        Some("Your invoice\nplease pay")
    );
    assert_eq!(ev.threat_name.as_deref(), Some("Windows Executable (EXE)"));
    assert_eq!(ev.threat_category, None);
}

#[test]
fn threat_in_the_header_when_a_template_puts_it_there() {
    let line = "CEF:0|Palo Alto Networks|PAN-OS|10.1|Cobalt Strike Beacon(86237)|THREAT|9|rt=Jun 15 2024 10:00:00 GMT src=1.1.1.1";
    let ev = event(line);
    assert_eq!(ev.threat_name.as_deref(), Some("Cobalt Strike Beacon"));
    assert_eq!(ev.threat_id, Some(86237));
    assert_eq!(ev.threat_type, None);
    assert_eq!(ev.threat_severity, Some(Severity::Critical));
}

#[test]
fn textual_severity_key_wins_over_the_header_number() {
    let line = "CEF:0|Palo Alto Networks|PAN-OS|10.1|vulnerability|THREAT|3|rt=Jun 15 2024 10:00:00 GMT severity=high";
    assert_eq!(event(line).threat_severity, Some(Severity::High));
}

#[test]
fn escaped_pipes_and_backslashes_in_the_header() {
    let line = r"CEF:0|Palo Alto Networks|PAN-OS|10.1|spy\|ware|THREAT|5|rt=Jun 15 2024 10:00:00 GMT cs1=a\\b";
    let ev = event(line);
    assert_eq!(ev.threat_type.as_deref(), Some("spy|ware"));
    assert_eq!(ev.rule_name.as_deref(), Some(r"a\b"));
    assert_eq!(ev.threat_severity, Some(Severity::Medium));
}

#[test]
fn damaged_values_are_warnings_not_failures() {
    let line = "CEF:0|Palo Alto Networks|PAN-OS|10.1|spyware|THREAT|x|rt=Jun 15 2024 10:00:00 GMT src=10.0.0.300 spt=99999 fileHash=abc";
    let ev = event(line);
    assert_eq!(ev.source_ip, None);
    assert_eq!(ev.source_port, None);
    let msg = ev.error_message.expect("warnings");
    for part in [
        "source.ip",
        "source.port",
        "event.severity",
        "file.hash.sha256",
    ] {
        assert!(msg.contains(part), "{msg}");
    }
}

#[test]
fn unparseable_times_fall_back_with_a_warning() {
    let line = "CEF:0|Palo Alto Networks|PAN-OS|10.1|spyware|THREAT|5|rt=yesterday src=10.0.0.1";
    let header_time = at("2024-06-15T10:00:00Z");
    let ctx = RecordContext {
        original: line,
        hostname: Some("fw"),
        header_time: Some(header_time),
    };
    let ev = parse(line, &ctx, &ParseOptions::default())
        .expect("parses")
        .into_event()
        .expect("event");
    assert_eq!(ev.timestamp, header_time);
    assert_eq!(ev.observer_hostname.as_deref(), Some("fw"));
    assert!(ev.error_message.expect("warning").contains("yesterday"));
}

#[test]
fn a_record_without_any_time_is_an_error() {
    let line = "CEF:0|Palo Alto Networks|PAN-OS|10.1|spyware|THREAT|5|src=10.0.0.1";
    let err = parse(line, &ctx(line), &ParseOptions::default()).expect_err("no time");
    assert!(
        matches!(err, ParseError::Field { field: "rt", .. }),
        "{err}"
    );
}

#[test]
fn other_log_types_are_ignored() {
    let line = "CEF:0|Palo Alto Networks|PAN-OS|10.1|general|SYSTEM|1|rt=Jun 15 2024 10:00:00 GMT msg=hello";
    let parsed = parse(line, &ctx(line), &ParseOptions::default()).expect("parses");
    assert_eq!(
        parsed,
        Parsed::Ignored(Ignored {
            format: "cef",
            kind: "SYSTEM".into()
        })
    );
}

#[test]
fn other_vendors_are_refused() {
    let line = "CEF:0|Fortinet|FortiGate|7.0|0419016384|ips|7|src=1.1.1.1";
    let err = parse(line, &ctx(line), &ParseOptions::default()).expect_err("vendor");
    assert!(
        matches!(
            err,
            ParseError::Field {
                field: "device_vendor",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn malformed_records_say_what_is_wrong() {
    for (line, needle) in [
        ("CEF:0|Palo Alto Networks|PAN-OS|10.1|spyware", "header has"),
        (
            "CEF:0|Palo Alto Networks|PAN-OS|10.1|spyware|THREAT|5|no pairs here",
            "key=value",
        ),
        (
            "CEF:0|Palo Alto Networks|PAN-OS|10.1|spyware|THREAT|5|=oops rt=x",
            "key=value",
        ),
        ("not cef", "CEF:"),
    ] {
        let err = parse(line, &ctx(line), &ParseOptions::default()).expect_err(line);
        assert!(err.to_string().contains(needle), "{line}: {err}");
    }
}
