//! Everything outside the pods: the firewalls that log, the internet hosts
//! pods talk to, the scanners and attackers, and the C2 servers.

use std::net::Ipv4Addr;

use rand::rngs::SmallRng;
use serde::Serialize;

use super::catalog::{self, App, Country, COUNTRIES};
use super::rand_ext::{below, between, hex, one, uuid};
use super::PanosVersion;

/// A CN-Series firewall of the generated fleet.
#[derive(Debug)]
pub(crate) struct Firewall {
    pub serial: String,
    /// Device Name, and the syslog header's hostname.
    pub name: String,
    pub version: PanosVersion,
    pub content_version: String,
    pub next_session: u64,
    pub next_seqno: u64,
}

/// A host outside the cluster.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outside {
    pub ip: Ipv4Addr,
    pub country: &'static str,
}

/// A command-and-control server that compromised pods talk to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct C2Server {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub country: &'static str,
    /// The `Name` of the spyware signature that fires on its traffic.
    pub threat_name: &'static str,
    pub threat_id: u64,
    pub domain: String,
    #[serde(skip)]
    pub(crate) app: &'static App,
}

/// The world outside the pods, fixed for a seed.
#[derive(Debug)]
pub(crate) struct World {
    pub firewalls: Vec<Firewall>,
    /// Internet servers pods reach (CDNs, registries, SaaS APIs).
    pub servers: Vec<Outside>,
    /// Internet clients: customers of exposed services, scanners, attackers.
    pub clients: Vec<Outside>,
    pub c2: Vec<C2Server>,
    /// Public addresses the cluster's egress is translated to.
    pub egress_nat: Vec<Ipv4Addr>,
    /// One UUID per entry of [`catalog::RULES`].
    pub rule_uuids: Vec<String>,
    /// SHA-256 digests of the files WildFire sees again and again.
    pub file_hashes: Vec<String>,
}

fn outside(rng: &mut SmallRng, country: &'static Country) -> Outside {
    let [a, b] = *one(rng, country.prefixes);
    let ip = Ipv4Addr::new(a, b, between(rng, 1, 254) as u8, between(rng, 1, 254) as u8);
    Outside {
        ip,
        country: country.name,
    }
}

const C2_WORDS: &[&str] = &[
    "cdn",
    "static",
    "update",
    "telemetry",
    "sync",
    "api",
    "metrics",
    "assets",
    "edge",
    "img",
];
const C2_TLDS: &[&str] = &[
    "duckdns.org",
    "top",
    "xyz",
    "ru",
    "onthewifi.com",
    "club",
    "online",
];

impl World {
    pub fn build(rng: &mut SmallRng, versions: &[PanosVersion], c2_count: usize) -> World {
        let firewalls = versions
            .iter()
            .enumerate()
            .map(|(i, &version)| Firewall {
                serial: hex(rng, 15).to_ascii_uppercase(),
                name: format!("cn-ngfw-{}", i + 1),
                version,
                content_version: format!(
                    "AppThreat-{}-{}",
                    between(rng, 8700, 8900),
                    between(rng, 8000, 9000)
                ),
                next_session: between(rng, 10_000, 5_000_000),
                next_seqno: 7_200_000_000_000_000_000 + below(rng, 400_000_000_000_000_000),
            })
            .collect();
        // Servers mostly sit in the big clouds and CDNs; clients come from
        // everywhere.
        let servers = (0..400)
            .map(|_| {
                let country = if below(rng, 10) < 7 {
                    &COUNTRIES[0]
                } else {
                    one(rng, COUNTRIES)
                };
                outside(rng, country)
            })
            .collect();
        let clients = (0..300)
            .map(|_| {
                let country = one(rng, COUNTRIES);
                outside(rng, country)
            })
            .collect();
        let c2 = (0..c2_count)
            .map(|i| {
                // C2 infrastructure avoids the US-heavy server list.
                let country = &COUNTRIES[1 + below(rng, (COUNTRIES.len() - 1) as u64) as usize];
                let host = outside(rng, country);
                let sig = &catalog::C2_SIGS[i % catalog::C2_SIGS.len()];
                let (port, app) = match below(rng, 10) {
                    0..=5 => (443, &catalog::SSL),
                    6 => (8443, &catalog::SSL),
                    7 | 8 => (80, &catalog::WEB_BROWSING),
                    _ => (8080, &catalog::WEB_BROWSING),
                };
                let domain = format!(
                    "{}-{}.{}",
                    one(rng, C2_WORDS),
                    one(rng, C2_WORDS),
                    one(rng, C2_TLDS)
                );
                C2Server {
                    ip: host.ip,
                    port,
                    country: host.country,
                    threat_name: sig.name,
                    threat_id: sig.id,
                    domain,
                    app,
                }
            })
            .collect();
        let egress_nat = (0..4).map(|_| outside(rng, &COUNTRIES[0]).ip).collect();
        let rule_uuids = catalog::RULES.iter().map(|_| uuid(rng)).collect();
        let file_hashes = (0..32).map(|_| hex(rng, 64)).collect();
        World {
            firewalls,
            servers,
            clients,
            c2,
            egress_nat,
            rule_uuids,
            file_hashes,
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn outside_addresses_are_public_and_c2_servers_distinct_families() {
        let mut rng = SmallRng::seed_from_u64(9);
        let w = World::build(&mut rng, &[PanosVersion::V11_1], 5);
        for o in w.servers.iter().chain(&w.clients) {
            assert!(
                !o.ip.is_private() && !o.ip.is_loopback() && !o.ip.is_unspecified(),
                "{}",
                o.ip
            );
        }
        assert_eq!(w.c2.len(), 5);
        let families: std::collections::HashSet<_> = w.c2.iter().map(|c| c.threat_id).collect();
        assert_eq!(families.len(), 5);
        assert_eq!(w.rule_uuids[0].len(), 36);
    }
}
