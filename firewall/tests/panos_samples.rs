//! Real PAN-OS lines written by others (shared/samples/panos, see its
//! README) through the public entry point, `parse_record`, with default
//! options: every line must become an event of the right kind, and the
//! values the samples' authors expected must come out of the right fields.
//!
//! Mapping notes (decisions of the parser, documented in `panos`):
//! - `0.0.0.0` NAT addresses and `0` NAT ports mean "no translation" and are
//!   absent from the event.
//! - The URL/Filename column goes to `file.name` for file-carrying subtypes
//!   and to `url.original` otherwise.
//! - `@timestamp` is the High Resolution Timestamp when the line has one.
//! - The layer-3 Haskell library strips a trailing ` (EXE)`-style acronym
//!   from threat names; PAN-OS's threat name includes it, and so do we.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, Utc};
use riposte_firewall::{parse_record, EventKind, ParseOptions, Parsed, ThreatEvent};
use serde_json::Value;

fn samples() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/samples/panos");
    assert!(
        dir.is_dir(),
        "the shared samples folder {} is missing: these tests read real third-party \
         PAN-OS lines from it (it sits beside the repository clone as shared/samples)",
        dir.display()
    );
    dir
}

fn read(name: &str) -> String {
    let path = samples().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn json(name: &str) -> Value {
    serde_json::from_str(&read(name)).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

fn event(raw: &str) -> ThreatEvent {
    match parse_record(raw.as_bytes(), &ParseOptions::default()) {
        Ok(Parsed::Event(ev)) => *ev,
        other => panic!("expected an event for {raw}\n got {other:?}"),
    }
}

/// Collects mismatches so one run shows them all.
#[derive(Default)]
struct Check {
    failures: Vec<String>,
}

impl Check {
    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, ctx: &str, key: &str, got: T, want: T) {
        if got != want {
            self.failures
                .push(format!("{ctx}: {key}: got {got:?}, want {want:?}"));
        }
    }

    fn finish(self, what: &str) {
        assert!(
            self.failures.is_empty(),
            "{what}: {} mismatches:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

#[test]
fn every_sample_line_becomes_an_event_of_its_type() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(samples())
        .expect("list samples")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        // LEEF, not CSV: another parser's business.
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("rsyslog__"))
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 9,
        "expected the PAN-OS sample files, found {files:?}"
    );
    let mut check = Check::default();
    let mut lines = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read sample");
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (n, raw) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            lines += 1;
            let ctx = format!("{name}:{}", n + 1);
            let (kind, dataset) = if raw.contains(",THREAT,") {
                (EventKind::Alert, "panos.threat")
            } else if raw.contains(",TRAFFIC,") {
                (EventKind::Event, "panos.traffic")
            } else {
                check
                    .failures
                    .push(format!("{ctx}: neither THREAT nor TRAFFIC"));
                continue;
            };
            match parse_record(raw.as_bytes(), &ParseOptions::default()) {
                Ok(Parsed::Event(ev)) => {
                    check.eq(&ctx, "event.kind", ev.kind, kind);
                    check.eq(&ctx, "event.dataset", ev.dataset.as_str(), dataset);
                    check.eq(&ctx, "event.original", &*ev.original, raw);
                    check.eq(
                        &ctx,
                        "source.ip or warning",
                        ev.source_ip.is_some() || ev.error_message.is_some(),
                        true,
                    );
                }
                other => check.failures.push(format!("{ctx}: {other:?}")),
            }
        }
    }
    assert!(lines > 800, "only {lines} lines read");
    check.finish("sample lines");
}

#[test]
fn garbled_addresses_in_the_arista_traffic_sample_only_warn() {
    let text = read("aristanetworks_DirectFlowAssist__PANSyslogMsg_traffic.log");
    let raw = text.lines().nth(1).expect("line 2");
    let ev = event(raw);
    assert_eq!(ev.dataset, "panos.traffic");
    assert_eq!(ev.source_ip, None);
    assert_eq!(ev.destination_ip, None);
    let msg = ev.error_message.expect("warnings");
    assert!(
        msg.contains("172.22.135") && msg.contains("172.300.28.33"),
        "{msg}"
    );
    assert_eq!(ev.rule_name.as_deref(), Some("Dev_Backup_flow_4m"));
}

fn epoch(t: Option<DateTime<Utc>>) -> Option<f64> {
    t.map(|t| t.timestamp() as f64)
}

/// jcustenborder: every expected field that maps to an event field.
fn check_jcustenborder(file: &str) {
    // Fields of the Java parser with no event counterpart.
    const UNMAPPED: &[&str] = &[
        "flags",
        "actionFlags",
        "logAction",
        "contentType",
        "pcapId",
        "urlIndex",
        "reportId",
        "bytes",
        "bytesSent",
        "bytesReceived",
        "packets",
        "packetsSent",
        "packetsReceived",
        "startTime",
        "elapsedTime",
        "sessionEndReason",
        "deviceGroupHierarchyLevel1",
        "deviceGroupHierarchyLevel2",
        "deviceGroupHierarchyLevel3",
        "deviceGroupHierarchyLevel4",
        "actionSource",
    ];
    let samples = json(file);
    let samples = samples.as_array().expect("array of samples");
    assert!(!samples.is_empty());
    let mut check = Check::default();
    for (n, s) in samples.iter().enumerate() {
        let raw = s["raw"].as_str().expect("raw");
        let ctx = format!("{file}[{n}]");
        let ev = event(raw);
        let exp: BTreeMap<String, Value> =
            serde_json::from_value(s["expected"].clone()).expect("expected object");
        let str_of = |k: &str| exp.get(k).and_then(Value::as_str).map(str::to_owned);
        let num = |k: &str| exp.get(k).and_then(Value::as_u64);
        let nat_ip = |k: &str| str_of(k).filter(|v| v != "0.0.0.0");
        let nat_port = |k: &str| num(k).filter(|p| *p != 0);
        let subtype = str_of("threatContentType").unwrap_or_default();
        let is_threat = str_of("type").as_deref() == Some("THREAT");
        for key in exp.keys() {
            let c = &mut check;
            match key.as_str() {
                "type" => c.eq(
                    &ctx,
                    key,
                    ev.panos_type.as_deref().map(str::to_owned),
                    str_of(key),
                ),
                "threatContentType" => {
                    c.eq(
                        &ctx,
                        key,
                        ev.panos_subtype.as_deref().map(str::to_owned),
                        str_of(key),
                    );
                    let want = if is_threat { str_of(key) } else { None };
                    c.eq(
                        &ctx,
                        "threat.type",
                        ev.threat_type.as_deref().map(str::to_owned),
                        want,
                    );
                }
                "generatedTime" => c.eq(
                    &ctx,
                    key,
                    Some(ev.timestamp.timestamp() as f64),
                    exp[key].as_f64(),
                ),
                "receiveTime" => c.eq(&ctx, key, epoch(ev.created), exp[key].as_f64()),
                "serialNumber" => c.eq(
                    &ctx,
                    key,
                    ev.observer_serial_number.as_deref().map(str::to_owned),
                    str_of(key),
                ),
                "sourceIp" => c.eq(&ctx, key, ev.source_ip.map(|i| i.to_string()), str_of(key)),
                "destinationIp" => c.eq(
                    &ctx,
                    key,
                    ev.destination_ip.map(|i| i.to_string()),
                    str_of(key),
                ),
                "natSourceIp" => c.eq(
                    &ctx,
                    key,
                    ev.source_nat_ip.map(|i| i.to_string()),
                    nat_ip(key),
                ),
                "natDestinationIp" => c.eq(
                    &ctx,
                    key,
                    ev.destination_nat_ip.map(|i| i.to_string()),
                    nat_ip(key),
                ),
                "ruleName" => c.eq(
                    &ctx,
                    key,
                    ev.rule_name.as_deref().map(str::to_owned),
                    str_of(key),
                ),
                "sourceUser" => c.eq(
                    &ctx,
                    key,
                    ev.source_user.as_deref().map(str::to_owned),
                    str_of(key),
                ),
                "destinationUser" => c.eq(
                    &ctx,
                    key,
                    ev.destination_user.as_deref().map(str::to_owned),
                    str_of(key),
                ),
                "application" => c.eq(
                    &ctx,
                    key,
                    ev.network_application.as_deref().map(str::to_owned),
                    str_of(key),
                ),
                "virtualSystem" => c.eq(
                    &ctx,
                    key,
                    ev.panos_virtual_system.as_deref().map(str::to_owned),
                    str_of(key),
                ),
                "sourceZone" => c.eq(
                    &ctx,
                    key,
                    ev.source_zone.as_deref().map(str::to_owned),
                    str_of(key),
                ),
                "destinationZone" => c.eq(
                    &ctx,
                    key,
                    ev.destination_zone.as_deref().map(str::to_owned),
                    str_of(key),
                ),
                "inboundInterface" => c.eq(
                    &ctx,
                    key,
                    ev.observer_ingress_interface.as_deref().map(str::to_owned),
                    str_of(key),
                ),
                "outboundInterface" => c.eq(
                    &ctx,
                    key,
                    ev.observer_egress_interface.as_deref().map(str::to_owned),
                    str_of(key),
                ),
                "sessionId" => c.eq(&ctx, key, ev.panos_session_id, num(key)),
                "repeatCount" => c.eq(&ctx, key, ev.panos_repeat_count.map(u64::from), num(key)),
                "sourcePort" => c.eq(&ctx, key, ev.source_port.map(u64::from), num(key)),
                "destinationPort" => c.eq(&ctx, key, ev.destination_port.map(u64::from), num(key)),
                "natSourcePort" => {
                    c.eq(&ctx, key, ev.source_nat_port.map(u64::from), nat_port(key))
                }
                "natDestinationPort" => c.eq(
                    &ctx,
                    key,
                    ev.destination_nat_port.map(u64::from),
                    nat_port(key),
                ),
                "protocol" => c.eq(
                    &ctx,
                    key,
                    ev.network_transport.as_deref().map(str::to_owned),
                    str_of(key),
                ),
                "action" => c.eq(
                    &ctx,
                    key,
                    ev.action.as_deref().map(str::to_owned),
                    str_of(key),
                ),
                "urlFilename" => {
                    let got = ev.url_original.clone().or_else(|| ev.file_name.clone());
                    c.eq(&ctx, key, got, str_of(key).filter(|v| !v.is_empty()));
                    let file_subtype =
                        matches!(subtype.as_str(), "file" | "data" | "virus" | "wildfire");
                    c.eq(
                        &ctx,
                        "file.name vs url.original",
                        ev.url_original.is_none(),
                        file_subtype,
                    );
                }
                "threatId" => {
                    let want = str_of(key).unwrap_or_default();
                    let (name, id) = match want.rsplit_once('(') {
                        Some((name, id)) => (
                            name.trim_end().to_owned(),
                            id.trim_end_matches(')').parse().ok(),
                        ),
                        None => (want.clone(), None),
                    };
                    c.eq(&ctx, "threat.id", ev.threat_id, id);
                    let name = (!name.is_empty()).then_some(name);
                    c.eq(
                        &ctx,
                        "threat.name",
                        ev.threat_name.as_deref().map(str::to_owned),
                        name,
                    );
                }
                "category" => {
                    // The URL category only stands in for url subtypes, and only
                    // when it says something.
                    if subtype == "url"
                        && !matches!(str_of(key).as_deref(), Some("any" | "unknown"))
                    {
                        c.eq(
                            &ctx,
                            key,
                            ev.threat_category.as_deref().map(str::to_owned),
                            str_of(key),
                        );
                    }
                }
                "severity" => c.eq(
                    &ctx,
                    key,
                    ev.threat_severity.map(|s| s.as_str().to_owned()),
                    str_of(key),
                ),
                "direction" => c.eq(
                    &ctx,
                    key,
                    ev.network_direction.map(|d| d.as_str().to_owned()),
                    str_of(key),
                ),
                "sequenceNumber" => c.eq(&ctx, key, ev.panos_sequence_number, num(key)),
                "sourceLocation" => c.eq(
                    &ctx,
                    key,
                    ev.source_location.as_deref().map(str::to_owned),
                    str_of(key),
                ),
                "destinationLocation" => c.eq(
                    &ctx,
                    key,
                    ev.destination_location.as_deref().map(str::to_owned),
                    str_of(key),
                ),
                "deviceName" => c.eq(
                    &ctx,
                    key,
                    ev.observer_hostname.as_deref().map(str::to_owned),
                    str_of(key),
                ),
                k if UNMAPPED.contains(&k) => {}
                other => c.failures.push(format!(
                    "{ctx}: expected key `{other}` has no mapping in this test"
                )),
            }
        }
        // Users the Java parser left out are absent here too.
        if !exp.contains_key("sourceUser") {
            check.eq(&ctx, "sourceUser (absent)", ev.source_user.is_none(), true);
        }
        if !exp.contains_key("destinationUser") {
            check.eq(
                &ctx,
                "destinationUser (absent)",
                ev.destination_user.is_none(),
                true,
            );
        }
    }
    check.finish(file);
}

#[test]
fn jcustenborder_threat_expectations_hold() {
    check_jcustenborder("jcustenborder_palo-alto-syslog-parser__threat.json");
}

#[test]
fn jcustenborder_traffic_expectations_hold() {
    check_jcustenborder("jcustenborder_palo-alto-syslog-parser__traffic.json");
}

#[test]
fn layer3_expectations_hold() {
    const UNMAPPED: &[&str] = &[
        "contentVersion",
        "virtualSystemName",
        "httpHeaders",
        "urlCategoryList",
    ];
    let log = read("layer-3-communications_pan-os-syslog__Sample_threat.log");
    let lines: Vec<&str> = log.lines().collect();
    let doc = json("layer-3-communications_pan-os-syslog__Sample_threat.json");
    let samples = doc["samples"].as_array().expect("samples");
    assert!(!samples.is_empty());
    let mut check = Check::default();
    for s in samples {
        let name = s["sample"].as_str().unwrap_or("?");
        let raw = s["raw"].as_str().expect("raw");
        let index = s["line_index"]
            .as_u64()
            .and_then(|i| usize::try_from(i).ok())
            .expect("line_index");
        check.eq(
            name,
            "raw is the log line",
            lines.get(index).copied(),
            Some(raw),
        );
        let ev = event(raw);
        let exp = s["expected"].as_object().expect("expected");
        for (key, want) in exp {
            let c = &mut check;
            match key.as_str() {
                "miscellaneous(url)" => c.eq(name, key, ev.url_original.as_deref(), want.as_str()),
                "miscellaneous(domain)" => {
                    c.eq(name, key, ev.url_original.as_deref(), want.as_str())
                }
                "miscellaneous" => c.eq(name, key, ev.file_name.as_deref(), want.as_str()),
                "subtype" => c.eq(name, key, ev.threat_type.as_deref(), want.as_str()),
                "threatId" => c.eq(name, key, ev.threat_id, want.as_u64()),
                "sender" => c.eq(name, key, ev.email_from.as_deref(), want.as_str()),
                "threatName" => {
                    let got = ev.threat_name.as_deref().unwrap_or_default();
                    let want = want.as_str().unwrap_or_default();
                    // See the module docs: ` (EXE)` stays part of the name.
                    let ok = got == want
                        || got.strip_prefix(want).is_some_and(|rest| {
                            rest.starts_with(" (")
                                && rest.ends_with(')')
                                && rest[2..rest.len() - 1]
                                    .bytes()
                                    .all(|b| b.is_ascii_uppercase())
                        });
                    c.eq(name, key, ok, true);
                }
                k if UNMAPPED.contains(&k) => {}
                other => c.failures.push(format!(
                    "{name}: expected key `{other}` has no mapping in this test"
                )),
            }
        }
    }
    check.finish("layer-3 samples");
}

#[test]
fn layer3_prisma_lines_use_the_compact_layout() {
    let log = read("layer-3-communications_pan-os-syslog__Sample_threat.log");
    let lines: Vec<&str> = log.lines().collect();
    let url = event(lines[10]);
    assert_eq!(url.threat_type.as_deref(), Some("url"));
    assert_eq!(url.threat_category.as_deref(), Some("shopping"));
    assert_eq!(
        url.network_direction.map(|d| d.as_str()),
        Some("client-to-server")
    );
    assert_eq!(url.observer_hostname.as_deref(), Some("big-ol-device"));
    assert_eq!(url.observer_serial_number, None);
    assert_eq!(
        url.rule_uuid.as_deref(),
        Some("89ea2a40-656e-4c5a-b44c-c27b52de3982")
    );
    assert_eq!(url.timestamp.to_rfc3339(), "2021-10-28T02:58:50.719+00:00");
    let spyware = event(lines[11]);
    assert_eq!(spyware.threat_name.as_deref(), Some("Phishing:example.com"));
    assert_eq!(spyware.threat_id, Some(109010001));
    assert_eq!(spyware.threat_category.as_deref(), Some("dns-phishing"));
    assert_eq!(spyware.source_user.as_deref(), Some(r"domain\exampleuser"));
    assert_eq!(spyware.observer_hostname.as_deref(), Some("Big-Firewall"));
    let wildfire = event(lines[12]);
    assert_eq!(
        wildfire.file_hash_sha256.as_deref(),
        Some("85dde742f22216725f0ff6b172ca68f4f30f02029f08b3079cec34da804db793")
    );
    assert_eq!(
        wildfire.threat_name.as_deref(),
        Some("Adobe Portable Document Format (PDF)")
    );
    assert_eq!(
        wildfire.network_direction.map(|d| d.as_str()),
        Some("server-to-client")
    );
    for ev in [&url, &spyware, &wildfire] {
        assert_eq!(ev.error_message, None);
    }
    let traffic = read("layer-3-communications_pan-os-syslog__Sample_traffic.log");
    let prisma = event(traffic.lines().nth(3).expect("line 4"));
    assert_eq!(prisma.dataset, "panos.traffic");
    assert_eq!(prisma.observer_hostname.as_deref(), Some("The-Device-Name"));
    assert_eq!(prisma.destination_location.as_deref(), Some("JP"));
    assert_eq!(
        prisma.rule_uuid.as_deref(),
        Some("89092ab0-606f-4c5a-b44c-c271420f3972")
    );
    assert_eq!(
        prisma.timestamp.to_rfc3339(),
        "2021-10-27T19:20:41.652+00:00"
    );
    assert_eq!(prisma.error_message, None);
}

#[test]
fn crowdsec_expectations_hold() {
    let samples = json("crowdsecurity_hub__palo-alto-threat.json");
    let samples = samples.as_array().expect("array");
    assert!(!samples.is_empty());
    let mut check = Check::default();
    for (n, s) in samples.iter().enumerate() {
        let raw = s["raw"].as_str().expect("raw");
        let ctx = format!("crowdsec[{n}]");
        let ev = event(raw);
        let exp = s["expected"].as_object().expect("expected");
        let get = |k: &str| {
            exp.get(&format!("parsed.{k}"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let num = |k: &str| get(k).and_then(|v| v.parse::<u64>().ok());
        let owned = |v: Option<&str>| v.map(str::to_owned);
        let c = &mut check;
        c.eq(&ctx, "action", owned(ev.action.as_deref()), get("action"));
        c.eq(
            &ctx,
            "app",
            owned(ev.network_application.as_deref()),
            get("app"),
        );
        c.eq(
            &ctx,
            "direction",
            ev.network_direction.map(|d| d.as_str().to_owned()),
            get("direction"),
        );
        c.eq(
            &ctx,
            "dst_country",
            owned(ev.destination_location.as_deref()),
            get("dst_country"),
        );
        c.eq(
            &ctx,
            "src_country",
            owned(ev.source_location.as_deref()),
            get("src_country"),
        );
        c.eq(
            &ctx,
            "dst_ip",
            ev.destination_ip.map(|i| i.to_string()),
            get("dst_ip"),
        );
        c.eq(
            &ctx,
            "src_ip",
            ev.source_ip.map(|i| i.to_string()),
            get("src_ip"),
        );
        c.eq(
            &ctx,
            "nat_dst_ip",
            ev.destination_nat_ip.map(|i| i.to_string()),
            get("nat_dst_ip"),
        );
        c.eq(
            &ctx,
            "nat_src_ip",
            ev.source_nat_ip.map(|i| i.to_string()),
            get("nat_src_ip"),
        );
        c.eq(
            &ctx,
            "dst_port",
            ev.destination_port.map(u64::from),
            num("dst_port"),
        );
        c.eq(
            &ctx,
            "src_port",
            ev.source_port.map(u64::from),
            num("src_port"),
        );
        c.eq(
            &ctx,
            "nat_dst_port",
            ev.destination_nat_port.map(u64::from),
            num("nat_dst_port"),
        );
        c.eq(
            &ctx,
            "nat_src_port",
            ev.source_nat_port.map(u64::from),
            num("nat_src_port"),
        );
        c.eq(
            &ctx,
            "dst_zone",
            owned(ev.destination_zone.as_deref()),
            get("dst_zone"),
        );
        c.eq(
            &ctx,
            "src_zone",
            owned(ev.source_zone.as_deref()),
            get("src_zone"),
        );
        c.eq(
            &ctx,
            "egress_int",
            owned(ev.observer_egress_interface.as_deref()),
            get("egress_int"),
        );
        c.eq(
            &ctx,
            "ingress_int",
            owned(ev.observer_ingress_interface.as_deref()),
            get("ingress_int"),
        );
        c.eq(
            &ctx,
            "ip_proto",
            owned(ev.network_transport.as_deref()),
            get("ip_proto"),
        );
        c.eq(
            &ctx,
            "log_seq_num",
            ev.panos_sequence_number,
            num("log_seq_num"),
        );
        c.eq(
            &ctx,
            "log_subtype",
            owned(ev.threat_type.as_deref()),
            get("log_subtype"),
        );
        c.eq(
            &ctx,
            "log_type",
            owned(ev.panos_type.as_deref()),
            get("log_type"),
        );
        c.eq(
            &ctx,
            "repeat_count",
            ev.panos_repeat_count.map(u64::from),
            num("repeat_count"),
        );
        c.eq(&ctx, "rule", owned(ev.rule_name.as_deref()), get("rule"));
        c.eq(
            &ctx,
            "serial_number",
            owned(ev.observer_serial_number.as_deref()),
            get("serial_number"),
        );
        c.eq(&ctx, "session_id", ev.panos_session_id, num("session_id"));
        c.eq(
            &ctx,
            "severity",
            ev.threat_severity.map(|s| s.as_str().to_owned()),
            get("severity"),
        );
        c.eq(
            &ctx,
            "vsys",
            owned(ev.panos_virtual_system.as_deref()),
            get("vsys"),
        );
        c.eq(
            &ctx,
            "url_or_filename",
            ev.url_original.clone(),
            get("url_or_filename"),
        );
        let threat = get("threat_id").unwrap_or_default();
        let full = format!(
            "{}({})",
            ev.threat_name.as_deref().unwrap_or_default(),
            ev.threat_id.map(|i| i.to_string()).unwrap_or_default()
        );
        c.eq(&ctx, "threat_id", full, threat);
        // Generation time is device-local; the header and the
        // high-resolution timestamp carry the device's offset.
        let header: DateTime<FixedOffset> =
            DateTime::parse_from_rfc3339(&get("syslog_timestamp").unwrap_or_default())
                .expect("header time");
        let local = ev
            .timestamp
            .with_timezone(header.offset())
            .format("%Y/%m/%d %H:%M:%S")
            .to_string();
        c.eq(
            &ctx,
            "generation_timestamp",
            Some(local),
            get("generation_timestamp"),
        );
    }
    check.finish("crowdsec samples");
}
