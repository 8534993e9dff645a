//! PAN-OS THREAT parsing throughput on one core.
//!
//! The target is 1,000,000 lines per second of realistic PAN-OS 10.x/11.x
//! THREAT lines (600–1,500 bytes, 120–123 columns). The lines are generated
//! here, varied in subtype, width, quoting and values, from the 11.1 field
//! order; criterion reports elements (lines) per second.
//!
//! `cargo bench -p riposte-firewall --bench parse_panos`
//!
//! Wall-clock figures on a shared machine vary with its load; instruction
//! counts do not. With `PARSE_PANOS_PASSES=N` set, the binary skips criterion
//! and parses the 1,024 lines N times (no header, UTC), so that
//! `valgrind --tool=callgrind` run with two values of N gives the
//! instructions per line as the difference divided by 1,024 × ΔN (set-up and
//! line generation cancel out):
//!
//! ```text
//! cargo bench -p riposte-firewall --bench parse_panos --no-run
//! PARSE_PANOS_PASSES=1  valgrind --tool=callgrind <bench binary>
//! PARSE_PANOS_PASSES=11 valgrind --tool=callgrind <bench binary>
//! ```
//!
//! (`PARSE_PANOS_RECORDS=1` as well: `parse_record` on the records with
//! their syslog header instead.)

use std::hint::black_box;

use criterion::{criterion_group, Criterion, Throughput};
use riposte_firewall::{panos, parse_record, ParseOptions, Parsed, RecordContext};

/// The allocator of the `riposte` binary (engine/src/main.rs): an event
/// costs a handful of allocations (the box, the original line, its id,
/// long strings), and what the parser achieves in production is measured
/// with the allocator it runs on there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Deterministic pseudo-random numbers (64-bit LCG): the same lines on every
/// run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

struct Subtype {
    name: &'static str,
    threats: &'static [&'static str],
    category: &'static str,
    threat_category: &'static str,
    file: bool,
}

const SUBTYPES: &[Subtype] = &[
    Subtype {
        name: "url",
        threats: &["(9999)"],
        category: "command-and-control",
        threat_category: "unknown",
        file: false,
    },
    Subtype {
        name: "spyware",
        threats: &[
            "Cobalt Strike.Gen Command and Control Traffic(86237)",
            "Suspicious DNS Query (generic:xj3kq.duckdns.org)(4100111)",
            "Phishing:login-micr0soft.example(109010001)",
        ],
        category: "any",
        threat_category: "command-and-control",
        file: false,
    },
    Subtype {
        name: "vulnerability",
        threats: &[
            "Apache Log4j Remote Code Execution Vulnerability(91991)",
            "SSH User Authentication Brute Force Attempt(40015)",
            "HTTP /etc/passwd Access Attempt(30852)",
        ],
        category: "any",
        threat_category: "code-execution",
        file: false,
    },
    Subtype {
        name: "virus",
        threats: &[
            "Virus/Win32.WGeneric.dbxkcp(556124130)",
            "Eicar Test File(100000)",
        ],
        category: "any",
        threat_category: "virus",
        file: true,
    },
    Subtype {
        name: "file",
        threats: &[
            "Windows Executable (EXE)(52020)",
            "Adobe Portable Document Format (PDF)(52021)",
        ],
        category: "computer-and-internet-info",
        threat_category: "unknown",
        file: true,
    },
    Subtype {
        name: "wildfire",
        threats: &["Windows Executable (EXE)(52020)"],
        category: "malicious",
        threat_category: "unknown",
        file: true,
    },
    Subtype {
        name: "scan",
        threats: &["TCP Port Scan(8001)", "Host Sweep(8002)"],
        category: "any",
        threat_category: "unknown",
        file: false,
    },
];

const USER_AGENTS: &[&str] = &[
    "\"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\"",
    "\"curl/8.5.0\"",
    "\"python-requests/2.31.0\"",
    "",
];

const ZONES: &[&str] = &["pods", "trust", "dmz", "internet", "untrust", "k8s-egress"];
const APPS: &[&str] = &[
    "ssl",
    "web-browsing",
    "dns",
    "ssh",
    "smtp",
    "ms-ds-smbv2",
    "unknown-tcp",
];
const PODS: &[(&str, &str)] = &[
    ("shop", "checkout-7d9f"),
    ("payments", "api-5c8b9"),
    ("", ""),
];

fn ip(rng: &mut Rng, private: bool) -> String {
    if private {
        format!("10.244.{}.{}", rng.below(8), 1 + rng.below(250))
    } else {
        format!(
            "{}.{}.{}.{}",
            20 + rng.below(180),
            rng.below(256),
            rng.below(256),
            1 + rng.below(254)
        )
    }
}

fn threat_line(rng: &mut Rng) -> String {
    let st = &SUBTYPES[rng.below(SUBTYPES.len() as u64) as usize];
    let width = 120 + rng.below(4) as usize;
    let mut c: Vec<String> = vec![String::new(); width];
    let (sec, ms) = (rng.below(60), rng.below(1000));
    let time = format!("2024/08/19 13:{:02}:{sec:02}", rng.below(60));
    let src = ip(rng, true);
    let dst = ip(rng, false);
    let (ns, pod) = PODS[rng.below(PODS.len() as u64) as usize];
    let misc = if st.file {
        format!(
            "\"{}\"",
            rng.pick(&[
                "invoice_2024-08.pdf.exe",
                "setup.msi",
                "report.docm",
                "payload.bin"
            ])
        )
    } else if st.name == "scan" {
        String::new()
    } else {
        format!(
            "\"{}.example.net/{}?id={}&ref=a,b\"",
            rng.pick(&["cdn", "login", "update", "c2"]),
            rng.pick(&[
                "gate.php",
                "wp-admin/admin-ajax.php",
                "static/js/app.js",
                "beacon"
            ]),
            rng.below(1_000_000)
        )
    };
    let set: &[(usize, String)] = &[
        (0, "1".into()),
        (1, time.clone()),
        (2, format!("0079540{:08}", rng.below(100_000_000))),
        (3, "THREAT".into()),
        (4, st.name.into()),
        (5, "2816".into()),
        (6, time.clone()),
        (7, src),
        (8, dst.clone()),
        (9, "198.51.100.7".into()),
        (10, dst),
        (11, rng.pick(&["pods-to-internet", "allow-egress-web", "k8s-default-deny-log"]).into()),
        (12, rng.pick(&["corp\\svc-checkout", "x-fwd-for: 198.51.100.23", ""]).into()),
        (14, rng.pick(APPS).into()),
        (15, "vsys1".into()),
        (16, rng.pick(ZONES).into()),
        (17, rng.pick(ZONES).into()),
        (18, "ethernet1/1".into()),
        (19, "ethernet1/2".into()),
        (20, "forward-to-riposte".into()),
        (21, time.clone()),
        (22, rng.below(10_000_000).to_string()),
        (23, (1 + rng.below(3)).to_string()),
        (24, (1024 + rng.below(64_000)).to_string()),
        (25, rng.pick(&["443", "80", "53", "22", "8443"]).into()),
        (26, (1024 + rng.below(64_000)).to_string()),
        (27, "443".into()),
        (28, "0x402000".into()),
        (29, rng.pick(&["tcp", "udp"]).into()),
        (30, rng.pick(&["alert", "reset-both", "drop", "block-url", "sinkhole"]).into()),
        (31, misc),
        (32, rng.pick(st.threats).into()),
        (33, st.category.into()),
        (34, rng.pick(&["informational", "low", "medium", "high", "critical"]).into()),
        (35, rng.pick(&["client-to-server", "server-to-client"]).into()),
        (36, (7_331_912_355_678_901_234u64 + rng.below(1_000_000)).to_string()),
        (37, "0x8000000000000000".into()),
        (38, "10.0.0.0-10.255.255.255".into()),
        (39, rng.pick(&["United States", "Germany", "Netherlands", "Singapore"]).into()),
        (40, "0".into()),
        (41, "text/html".into()),
        (42, "0".into()),
        (
            43,
            if st.name == "wildfire" {
                "85dde742f22216725f0ff6b172ca68f4f30f02029f08b3079cec34da804db793".into()
            } else {
                String::new()
            },
        ),
        (45, "0".into()),
        (46, rng.pick(USER_AGENTS).into()),
        (48, "198.51.100.23".into()),
        (54, "12".into()),
        (55, "0".into()),
        (56, "0".into()),
        (57, "0".into()),
        (59, format!("cn-ngfw-{}", rng.below(4))),
        (63, "get".into()),
        (66, "0".into()),
        (68, "N/A".into()),
        (69, st.threat_category.into()),
        (70, "AppThreat-8870-8843".into()),
        (71, "0x0".into()),
        (72, "0".into()),
        (73, "4294967295".into()),
        (75, "\"computer-and-internet-info,low-risk\"".into()),
        (76, "9b0e2d71-8c1f-4a8e-a3f5-2f6c0d1e7b44".into()),
        (77, "0".into()),
        (80, "Linux Server".into()),
        (86, format!("{pod}.{ns}")),
        (96, if pod.is_empty() { String::new() } else { format!("containerd://{:012x}", rng.next()) }),
        (97, ns.into()),
        (98, pod.into()),
        (106, "0".into()),
        (107, format!("2024-08-19T13:58:{sec:02}.{ms:03}+00:00")),
        (111, "general-internet".into()),
        (112, "internet-utility".into()),
        (113, "browser-based".into()),
        (114, "4".into()),
        (115, "\"used-by-malware,able-to-transfer-file,has-known-vulnerability,tunnel-other-application,pervasive-use\"".into()),
        (117, rng.pick(APPS).into()),
        (118, "no".into()),
        (119, "no".into()),
        (122, "NonProxyTraffic".into()),
    ];
    for (i, v) in set {
        if *i < width {
            c[*i].clone_from(v);
        }
    }
    c.join(",")
}

fn lines(n: usize) -> Vec<String> {
    let mut rng = Rng(0x5eed_cafe);
    let lines: Vec<String> = (0..n).map(|_| threat_line(&mut rng)).collect();
    let (min, max) = lines.iter().fold((usize::MAX, 0), |(lo, hi), l| {
        (lo.min(l.len()), hi.max(l.len()))
    });
    assert!(
        min >= 600 && max <= 1500,
        "line lengths {min}..{max} outside 600..1500"
    );
    lines
}

fn must_be_alert(parsed: &Parsed) {
    assert!(
        matches!(parsed, Parsed::Event(ev) if ev.dataset == "panos.threat" && ev.error_message.is_none())
    );
}

fn bench(c: &mut Criterion) {
    let payloads = lines(1024);
    let records = records(&payloads);
    let utc = ParseOptions::default();
    let berlin = ParseOptions {
        timezone: chrono_tz::Tz::Europe__Berlin,
        ..ParseOptions::default()
    };
    // The lines must be what the bench claims: valid THREAT alerts.
    for (p, r) in payloads.iter().zip(&records) {
        let ctx = RecordContext::bare(p);
        must_be_alert(&panos::parse(p, &ctx, &utc).expect("payload parses"));
        must_be_alert(&parse_record(r.as_bytes(), &utc).expect("record parses"));
    }

    let mut group = c.benchmark_group("panos_threat");
    group.throughput(Throughput::Elements(payloads.len() as u64));
    group.bench_function("panos::parse, no header, UTC", |b| {
        b.iter(|| {
            for p in &payloads {
                let ctx = RecordContext::bare(p);
                black_box(panos::parse(black_box(p), &ctx, &utc).ok());
            }
        })
    });
    group.bench_function("panos::parse, no header, Europe/Berlin", |b| {
        b.iter(|| {
            for p in &payloads {
                let ctx = RecordContext::bare(p);
                black_box(panos::parse(black_box(p), &ctx, &berlin).ok());
            }
        })
    });
    group.bench_function("parse_record, BSD syslog header, UTC", |b| {
        b.iter(|| {
            for r in &records {
                black_box(parse_record(black_box(r.as_bytes()), &utc).ok());
            }
        })
    });
    group.finish();
}

/// A fixed amount of work for instruction counting (see the module docs):
/// `panos::parse` on the payloads, or with `PARSE_PANOS_RECORDS` set,
/// `parse_record` on the syslog records.
fn passes(n: usize) {
    let payloads = lines(1024);
    let records = records(&payloads);
    let utc = ParseOptions::default();
    let whole_records = std::env::var_os("PARSE_PANOS_RECORDS").is_some();
    for _ in 0..n {
        if whole_records {
            for r in &records {
                black_box(parse_record(black_box(r.as_bytes()), &utc).ok());
            }
            continue;
        }
        for p in &payloads {
            let ctx = RecordContext::bare(p);
            black_box(panos::parse(black_box(p), &ctx, &utc).ok());
        }
    }
}

/// The payloads behind a BSD syslog header, as a firewall sends them.
fn records(payloads: &[String]) -> Vec<String> {
    payloads
        .iter()
        .enumerate()
        .map(|(i, l)| format!("<14>Aug 19 13:58:{:02} cn-ngfw-{} {l}", i % 60, i % 4))
        .collect()
}

criterion_group!(benches, bench);

fn main() {
    if let Some(n) = std::env::var("PARSE_PANOS_PASSES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        passes(n);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
