//! The generator's behaviour as a user of its lines sees it: structure,
//! mix, determinism, pods, quoting.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use super::*;

/// Splits a CSV payload the way PAN-OS writes it: fields may be quoted,
/// inner quotes doubled.
pub(crate) fn split_csv(payload: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = payload.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') if cur.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    assert!(!quoted, "unterminated quote in {payload}");
    fields.push(cur);
    fields
}

/// The CSV after any syslog header.
fn payload(line: &str) -> &str {
    if line.starts_with("1,") {
        line
    } else {
        line.find(" 1,").map_or(line, |i| &line[i + 1..])
    }
}

struct Parsed {
    text: String,
    kind: LineKind,
    c2: bool,
    pod: Option<Pod>,
    f: Vec<String>,
}

fn lines(opts: GenOptions, n: usize) -> (Generator, Vec<Parsed>) {
    let mut g = Generator::new(opts).expect("valid options");
    let out = (0..n)
        .map(|_| {
            let l = g.next_line();
            Parsed {
                text: l.text.to_owned(),
                kind: l.kind,
                c2: l.c2,
                pod: l.pod.cloned(),
                f: split_csv(payload(l.text)),
            }
        })
        .collect();
    (g, out)
}

const THREAT_POD: usize = 96;
const TRAFFIC_POD: usize = 92;

#[test]
fn the_same_seed_gives_the_same_lines_and_another_seed_others() {
    let take = |seed| {
        Generator::new(GenOptions {
            seed,
            ..GenOptions::default()
        })
        .expect("options")
        .take(2_000)
        .collect::<Vec<_>>()
    };
    assert_eq!(take(42), take(42));
    assert_ne!(take(42), take(43));
    let a = Generator::new(GenOptions {
        seed: 5,
        ..GenOptions::default()
    })
    .expect("options");
    let b = Generator::new(GenOptions {
        seed: 5,
        ..GenOptions::default()
    })
    .expect("options");
    assert_eq!(a.pods(), b.pods());
    assert_eq!(a.c2_servers(), b.c2_servers());
}

#[test]
fn ten_thousand_default_lines_hold_every_subtype_action_and_severity() {
    let (_, ls) = lines(GenOptions::default(), 10_000);
    let kinds: HashSet<LineKind> = ls.iter().map(|l| l.kind).collect();
    for s in ThreatSubtype::ALL {
        assert!(
            kinds.contains(&LineKind::Threat(s)),
            "no {} line",
            s.as_str()
        );
    }
    for s in [
        TrafficSubtype::Start,
        TrafficSubtype::End,
        TrafficSubtype::Drop,
        TrafficSubtype::Deny,
    ] {
        assert!(
            kinds.contains(&LineKind::Traffic(s)),
            "no TRAFFIC {} line",
            s.as_str()
        );
    }
    let threats: Vec<&Parsed> = ls
        .iter()
        .filter(|l| matches!(l.kind, LineKind::Threat(_)))
        .collect();
    let actions: HashSet<&str> = threats.iter().map(|l| l.f[30].as_str()).collect();
    for a in [
        "alert",
        "drop",
        "reset-both",
        "reset-client",
        "reset-server",
        "block-url",
        "sinkhole",
        "allow",
        "deny",
    ] {
        assert!(
            actions.contains(a),
            "no THREAT line with action {a}: {actions:?}"
        );
    }
    let severities: HashSet<&str> = threats.iter().map(|l| l.f[34].as_str()).collect();
    assert_eq!(
        severities,
        HashSet::from(["informational", "low", "medium", "high", "critical"])
    );
    let directions: HashSet<&str> = threats.iter().map(|l| l.f[35].as_str()).collect();
    assert_eq!(
        directions,
        HashSet::from(["client-to-server", "server-to-client"])
    );
    let categories: HashSet<&str> = threats.iter().map(|l| l.f[69].as_str()).collect();
    for c in [
        "command-and-control",
        "code-execution",
        "brute-force",
        "info-leak",
        "virus",
        "spyware",
        "unknown",
    ] {
        assert!(
            categories.contains(c),
            "no Threat Category {c}: {categories:?}"
        );
    }
    // Mostly traffic and informational URL lines; real threats are a few percent.
    let traffic = ls
        .iter()
        .filter(|l| matches!(l.kind, LineKind::Traffic(_)))
        .count();
    let urls = ls
        .iter()
        .filter(|l| l.kind == LineKind::Threat(ThreatSubtype::Url))
        .count();
    assert!((7_300..8_300).contains(&traffic), "{traffic} traffic lines");
    assert!((1_600..2_400).contains(&urls), "{urls} url lines");
    let real = threats.len() - urls;
    assert!((200..500).contains(&real), "{real} real threats");
}

#[test]
fn every_line_has_the_column_count_of_its_firewalls_release() {
    for header in [Header::None, Header::Bsd, Header::Rfc5424] {
        let (g, ls) = lines(
            GenOptions {
                header,
                seed: 11,
                threat_share: 0.3,
                ..GenOptions::default()
            },
            5_000,
        );
        let versions: HashMap<String, PanosVersion> =
            g.firewalls().map(|(n, v)| (n.to_owned(), v)).collect();
        let mut counts = HashSet::new();
        for l in &ls {
            let (expected, device) = match l.kind {
                LineKind::Threat(s) => {
                    assert_eq!(l.f[3], "THREAT");
                    assert_eq!(l.f[4], s.as_str());
                    let v = versions[&l.f[59]];
                    (v.threat_columns(), v)
                }
                LineKind::Traffic(s) => {
                    assert_eq!(l.f[3], "TRAFFIC");
                    assert_eq!(l.f[4], s.as_str());
                    let v = versions[&l.f[52]];
                    (v.traffic_columns(), v)
                }
            };
            assert_eq!(
                l.f.len(),
                expected,
                "{:?} line of a {} firewall: {}",
                l.kind,
                device.as_str(),
                l.text
            );
            assert_eq!(l.f[5], device.config_version());
            counts.insert(l.f.len());
        }
        assert_eq!(
            counts,
            HashSet::from([120, 121, 123, 114, 115, 117]),
            "{header:?}"
        );
    }
}

#[test]
fn known_columns_hold_what_the_field_reference_says() {
    let (_, ls) = lines(
        GenOptions {
            seed: 3,
            threat_share: 0.3,
            ..GenOptions::default()
        },
        3_000,
    );
    for l in &ls {
        let f = &l.f;
        for idx in [7, 8, 9, 10] {
            f[idx]
                .parse::<Ipv4Addr>()
                .unwrap_or_else(|_| panic!("column {idx} is not an address: {}", l.text));
        }
        chrono::NaiveDateTime::parse_from_str(&f[1], "%Y/%m/%d %H:%M:%S").expect("Receive Time");
        let generated = chrono::NaiveDateTime::parse_from_str(&f[6], "%Y/%m/%d %H:%M:%S")
            .expect("Generated Time");
        let hires_idx = if matches!(l.kind, LineKind::Threat(_)) {
            107
        } else {
            102
        };
        let hires =
            chrono::DateTime::parse_from_rfc3339(&f[hires_idx]).expect("High Resolution Timestamp");
        assert_eq!(
            hires.naive_utc().and_utc().timestamp(),
            generated.and_utc().timestamp(),
            "{}",
            l.text
        );
        match l.kind {
            LineKind::Threat(s) => {
                // Threat ID: Name(id), and `(9999)` for URL filtering.
                let tid = &f[32];
                let open = tid.rfind('(').expect("Name(id)");
                assert!(
                    tid.ends_with(')') && tid[open + 1..tid.len() - 1].parse::<u64>().is_ok(),
                    "{tid}"
                );
                if s == ThreatSubtype::Url {
                    assert_eq!(tid, "(9999)");
                    assert_eq!(f[34], "informational");
                } else {
                    assert!(open > 0, "a real threat has a name: {tid}");
                }
                assert_eq!(f[76].len(), 36, "Rule UUID: {}", f[76]);
                assert_eq!(f[76].matches('-').count(), 4);
                assert!(!f[69].is_empty(), "Threat Category");
            }
            LineKind::Traffic(s) => {
                let bytes: u64 = f[31].parse().expect("Bytes");
                let sent: u64 = f[32].parse().expect("Bytes Sent");
                let received: u64 = f[33].parse().expect("Bytes Received");
                assert_eq!(bytes, sent + received);
                let packets: u64 = f[34].parse().expect("Packets");
                assert_eq!(
                    packets,
                    f[44].parse::<u64>().expect("sent") + f[45].parse::<u64>().expect("received")
                );
                f[36].parse::<u64>().expect("Elapsed Time");
                let reason = f[46].as_str();
                match s {
                    TrafficSubtype::Start => assert_eq!(reason, "n/a"),
                    TrafficSubtype::Drop | TrafficSubtype::Deny => {
                        assert_eq!(reason, "policy-deny")
                    }
                    TrafficSubtype::End => assert!([
                        "tcp-fin",
                        "tcp-rst-from-client",
                        "tcp-rst-from-server",
                        "aged-out"
                    ]
                    .contains(&reason)),
                }
                assert_eq!(f[65].len(), 36, "Rule UUID");
            }
        }
    }
}

#[test]
fn c2_share_is_honoured_and_c2_lines_join_a_compromised_pod_and_a_c2_server() {
    let opts = GenOptions {
        seed: 8,
        c2_share: 0.05,
        ..GenOptions::default()
    };
    let (g, ls) = lines(opts, 20_000);
    let c2_ips: HashSet<String> = g.c2_servers().iter().map(|c| c.ip.to_string()).collect();
    let compromised: HashMap<String, &Pod> = g
        .compromised_pods()
        .map(|p| (p.ip.to_string(), p))
        .collect();
    assert_eq!(c2_ips.len(), 5);
    assert_eq!(compromised.len(), 3);
    let c2: Vec<&Parsed> = ls
        .iter()
        .filter(|l| l.f[3] == "THREAT" && l.f[69] == "command-and-control")
        .collect();
    assert!(
        (850..1_150).contains(&c2.len()),
        "{} C2 lines for a 5 % share of 20,000",
        c2.len()
    );
    let mut directions = HashSet::new();
    for l in &c2 {
        assert!(l.c2);
        assert_eq!((l.f[4].as_str(), l.f[34].as_str()), ("spyware", "critical"));
        let (src, dst) = (&l.f[7], &l.f[8]);
        let (pod_ip, server_ip) = if l.f[35] == "server-to-client" {
            (dst, src)
        } else {
            (src, dst)
        };
        directions.insert(l.f[35].clone());
        assert!(c2_ips.contains(server_ip), "{}", l.text);
        let pod = compromised
            .get(pod_ip)
            .unwrap_or_else(|| panic!("not a compromised pod: {}", l.text));
        assert_eq!(
            l.f[THREAT_POD..THREAT_POD + 3],
            [
                pod.container_id.clone(),
                pod.namespace.clone(),
                pod.name.clone()
            ]
        );
    }
    assert_eq!(directions.len(), 2);
    // Source NAT belongs to the pod's side: never on lines whose source is the C2.
    for l in c2.iter().filter(|l| l.f[35] == "server-to-client") {
        assert_eq!(
            (l.f[9].as_str(), l.f[10].as_str()),
            ("0.0.0.0", "0.0.0.0"),
            "{}",
            l.text
        );
    }
    assert!(
        c2.iter().any(|l| l.f[9] != "0.0.0.0"),
        "some egress is source-NATed"
    );
    assert_eq!(ls.iter().filter(|l| l.c2).count(), c2.len());
    // The C2 servers are a stable set: every C2 line uses one of them, and
    // all of them are used.
    let used: HashSet<String> = c2
        .iter()
        .map(|l| {
            if l.f[35] == "server-to-client" {
                l.f[7].clone()
            } else {
                l.f[8].clone()
            }
        })
        .collect();
    assert_eq!(used, c2_ips);
}

#[test]
fn pod_columns_name_the_pod_behind_a_pod_address() {
    let (g, ls) = lines(
        GenOptions {
            seed: 21,
            pods: 50,
            threat_share: 0.2,
            ..GenOptions::default()
        },
        5_000,
    );
    let by_ip: HashMap<String, &Pod> = g.pods().iter().map(|p| (p.ip.to_string(), p)).collect();
    let mut with_pod = 0;
    for l in &ls {
        let at = if matches!(l.kind, LineKind::Threat(_)) {
            THREAT_POD
        } else {
            TRAFFIC_POD
        };
        let cols = &l.f[at..at + 3];
        match by_ip.get(&l.f[7]).or_else(|| by_ip.get(&l.f[8])) {
            Some(_) => {
                // Source pod first, else the destination pod.
                let expected = by_ip
                    .get(&l.f[7])
                    .or_else(|| by_ip.get(&l.f[8]))
                    .expect("pod");
                assert_eq!(
                    cols,
                    [
                        expected.container_id.clone(),
                        expected.namespace.clone(),
                        expected.name.clone()
                    ],
                    "{}",
                    l.text
                );
                assert_eq!(l.pod.as_ref().map(|p| &p.name), Some(&expected.name));
                with_pod += 1;
            }
            None => assert_eq!(cols, ["", "", ""], "{}", l.text),
        }
    }
    assert!(with_pod > 4_500, "{with_pod} of 5000 lines involve a pod");
    assert!(g.pods().iter().all(|p| p.ip.octets()[..2] == [10, 244]));
}

#[test]
fn many_pods_in_many_namespaces_are_sources() {
    let (g, ls) = lines(
        GenOptions {
            seed: 4,
            pods: 400,
            ..GenOptions::default()
        },
        10_000,
    );
    let names: HashSet<&str> = ls
        .iter()
        .filter_map(|l| l.pod.as_ref())
        .map(|p| p.name.as_str())
        .collect();
    assert!(names.len() > 300, "{} distinct pods", names.len());
    let namespaces: HashSet<&str> = ls
        .iter()
        .filter_map(|l| l.pod.as_ref())
        .map(|p| p.namespace.as_str())
        .collect();
    for ns in ["shop", "payments", "web", "batch"] {
        assert!(namespaces.contains(ns), "{ns}");
    }
    assert_eq!(g.pods().len(), 400);
}

#[test]
fn quoted_fields_round_trip_with_commas_and_doubled_quotes() {
    let (_, ls) = lines(
        GenOptions {
            seed: 13,
            threat_share: 0.2,
            ..GenOptions::default()
        },
        20_000,
    );
    let threats: Vec<&Parsed> = ls
        .iter()
        .filter(|l| matches!(l.kind, LineKind::Threat(_)))
        .collect();
    // URL/Filename is always quoted, as PAN-OS does.
    for l in &threats {
        let raw = payload(&l.text);
        let misc = &l.f[31];
        let quoted = format!(",\"{}\",", misc.replace('"', "\"\""));
        assert!(
            raw.contains(&quoted),
            "URL/Filename {misc:?} not quoted in {raw}"
        );
    }
    assert!(
        threats.iter().any(|l| l.f[31].contains(',')),
        "no URL/Filename with a comma"
    );
    assert!(
        threats.iter().any(|l| l.f[31].contains('"')),
        "no URL/Filename with a quote"
    );
    assert!(
        threats.iter().any(|l| l.f[46].contains(", like Gecko")),
        "no user agent with a comma"
    );
    assert!(
        threats.iter().any(|l| l.f[50].contains("\"Billing\"")),
        "no sender with quotes"
    );
    assert!(
        threats.iter().any(|l| l.f[75].contains(',')),
        "no URL Category List"
    );
}

#[test]
fn lines_are_between_600_and_1500_bytes() {
    for header in [Header::None, Header::Bsd, Header::Rfc5424] {
        let (_, ls) = lines(
            GenOptions {
                header,
                seed: 17,
                threat_share: 0.3,
                ..GenOptions::default()
            },
            10_000,
        );
        let (min, max) = ls.iter().fold((usize::MAX, 0), |(lo, hi), l| {
            (lo.min(l.text.len()), hi.max(l.text.len()))
        });
        assert!(min >= 600 && max <= 1500, "{header:?}: {min}..{max} bytes");
    }
}

#[test]
fn headers_are_bsd_rfc5424_or_absent() {
    let first = |header| {
        Generator::new(GenOptions {
            header,
            ..GenOptions::default()
        })
        .expect("options")
        .next_line()
        .text
        .to_owned()
    };
    let bsd = first(Header::Bsd);
    assert!(
        bsd.starts_with('<') && !bsd.contains("> ") && bsd.contains(" cn-ngfw-"),
        "{bsd}"
    );
    assert!(
        chrono::NaiveTime::parse_from_str(&bsd[bsd.find('>').expect(">") + 8..][..8], "%H:%M:%S")
            .is_ok(),
        "{bsd}"
    );
    let ietf = first(Header::Rfc5424);
    let (pri, rest) = ietf.split_once(">1 ").expect("<PRI>1 ");
    assert!(pri.starts_with('<'));
    let (ts, rest) = rest.split_once(' ').expect("timestamp");
    chrono::DateTime::parse_from_rfc3339(ts).expect("RFC 3339 timestamp");
    assert!(
        rest.starts_with("cn-ngfw-") && rest.contains(" - - - - 1,"),
        "{ietf}"
    );
    assert!(first(Header::None).starts_with("1,"));
}

#[test]
fn timestamps_advance_from_the_start_at_the_simulated_rate() {
    let start = chrono::Utc
        .with_ymd_and_hms(2024, 2, 28, 23, 59, 0)
        .single()
        .expect("date");
    let (_, ls) = lines(
        GenOptions {
            start,
            events_per_sec: 10.0,
            ..GenOptions::default()
        },
        1_200,
    );
    let t = |l: &Parsed| {
        chrono::DateTime::parse_from_rfc3339(&l.f[if l.f[3] == "THREAT" { 107 } else { 102 }])
            .expect("hi-res")
    };
    let first = t(&ls[0]);
    let last = t(&ls[ls.len() - 1]);
    let span = (last - first).num_seconds();
    assert!(
        (100..140).contains(&span),
        "1200 lines at 10/s span {span} s"
    );
    assert!(
        ls.windows(2).all(|w| t(&w[0]) <= t(&w[1])),
        "time goes backwards"
    );
    assert!(
        ls.iter().any(|l| l.f[6].starts_with("2024/02/29")),
        "leap day"
    );
}

#[test]
fn invalid_options_are_refused_with_the_option_named() {
    let err = |opts: GenOptions| Generator::new(opts).expect_err("invalid").to_string();
    assert!(err(GenOptions {
        c2_share: 1.5,
        ..GenOptions::default()
    })
    .contains("c2_share"));
    assert!(err(GenOptions {
        c2_share: 0.5,
        threat_share: 0.3,
        url_share: 0.3,
        ..GenOptions::default()
    })
    .contains("add up"));
    assert!(err(GenOptions {
        pods: 0,
        ..GenOptions::default()
    })
    .contains("pods"));
    assert!(err(GenOptions {
        compromised_pods: 0,
        ..GenOptions::default()
    })
    .contains("compromised"));
    assert!(err(GenOptions {
        versions: vec![],
        ..GenOptions::default()
    })
    .contains("versions"));
    assert!(err(GenOptions {
        cluster: "a,b".into(),
        ..GenOptions::default()
    })
    .contains("cluster"));
    assert!(err(GenOptions {
        events_per_sec: 0.0,
        ..GenOptions::default()
    })
    .contains("events_per_sec"));
    // Without C2 traffic, no compromised pod is needed.
    assert!(Generator::new(GenOptions {
        c2_share: 0.0,
        compromised_pods: 0,
        pods: 1,
        ..GenOptions::default()
    })
    .is_ok());
}

#[test]
fn a_single_pod_cluster_still_generates_every_kind_of_line() {
    let (_, ls) = lines(
        GenOptions {
            pods: 1,
            compromised_pods: 1,
            threat_share: 0.5,
            ..GenOptions::default()
        },
        5_000,
    );
    let kinds: HashSet<LineKind> = ls.iter().map(|l| l.kind).collect();
    assert!(kinds.len() >= 14, "{kinds:?}");
}

#[test]
fn lines_parse_as_threat_and_traffic_events() {
    use riposte_firewall::{parse_record, EventKind, ParseOptions, Parsed as P};
    let (_, ls) = lines(
        GenOptions {
            seed: 99,
            threat_share: 0.5,
            c2_share: 0.05,
            ..GenOptions::default()
        },
        3_000,
    );
    let opts = ParseOptions::default();
    let mut seen = HashSet::new();
    for l in &ls {
        let ev = match parse_record(l.text.as_bytes(), &opts) {
            Ok(P::Event(ev)) => ev,
            other => panic!("{other:?} for {}", l.text),
        };
        assert_eq!(
            ev.source_ip.map(|ip| ip.to_string()).as_deref(),
            Some(l.f[7].as_str())
        );
        assert_eq!(
            ev.destination_ip.map(|ip| ip.to_string()).as_deref(),
            Some(l.f[8].as_str())
        );
        assert_eq!(ev.action.as_deref(), Some(l.f[30].as_str()));
        match l.kind {
            LineKind::Threat(s) => {
                assert_eq!(ev.kind, EventKind::Alert, "{}", l.text);
                assert_eq!(ev.threat_type.as_deref(), Some(s.as_str()));
                let tid = &l.f[32];
                let open = tid.rfind('(').expect("Name(id)");
                assert_eq!(
                    ev.threat_id,
                    tid[open + 1..tid.len() - 1].parse().ok(),
                    "{}",
                    l.text
                );
                if open > 0 {
                    assert_eq!(ev.threat_name.as_deref(), Some(&tid[..open]), "{}", l.text);
                }
                // The parser's rule: the Threat Category column when it says
                // something, else the URL category / WildFire verdict.
                let meaningful = |c: &str| !c.is_empty() && c != "unknown" && c != "any";
                let expected = if meaningful(&l.f[69]) {
                    Some(l.f[69].as_str())
                } else if (s == ThreatSubtype::Url || s.as_str().starts_with("wildfire"))
                    && meaningful(&l.f[33])
                {
                    Some(l.f[33].as_str())
                } else {
                    None
                };
                assert_eq!(ev.threat_category.as_deref(), expected, "{}", l.text);
                let misc = Some(l.f[31].as_str()).filter(|m| !m.is_empty());
                let files = [
                    ThreatSubtype::File,
                    ThreatSubtype::Virus,
                    ThreatSubtype::Wildfire,
                    ThreatSubtype::WildfireVirus,
                    ThreatSubtype::Data,
                ];
                if files.contains(&s) {
                    assert_eq!(ev.file_name.as_deref(), misc, "{}", l.text);
                } else {
                    assert_eq!(ev.url_original.as_deref(), misc, "{}", l.text);
                }
                assert_eq!(
                    ev.threat_severity.map(|s| s.as_str()),
                    Some(l.f[34].as_str())
                );
                assert_eq!(
                    ev.network_direction.map(|d| d.as_str()),
                    Some(l.f[35].as_str())
                );
                assert_eq!(ev.rule_uuid.as_deref(), Some(l.f[76].as_str()));
                if let Some(pod) = &l.pod {
                    assert_eq!(ev.container_id.as_deref(), Some(pod.container_id.as_str()));
                    assert_eq!(
                        ev.orchestrator_namespace.as_deref(),
                        Some(pod.namespace.as_str())
                    );
                    assert_eq!(
                        ev.orchestrator_resource_name.as_deref(),
                        Some(pod.name.as_str())
                    );
                }
                if l.c2 {
                    assert_eq!(ev.threat_category.as_deref(), Some("command-and-control"));
                }
            }
            LineKind::Traffic(s) => {
                assert_eq!(ev.kind, EventKind::Event, "{}", l.text);
                assert_eq!(ev.panos_subtype.as_deref(), Some(s.as_str()));
            }
        }
        seen.insert(l.kind);
    }
    assert!(seen.len() >= 14, "{seen:?}");
}
