//! Addresses Riposte must never tag or list: blocking them would cut the
//! cluster off from itself (pods, services, DNS, the API server) or from
//! the people answering the alert (SOAR, the firewall's management). An
//! attacker who can spoof a firewall log must not get them blocked.

use std::net::IpAddr;

use ipnet::IpNet;
use riposte_firewall::addr::{canonical, canonical_net};
use riposte_firewall::edl::IpEntry;

use super::config::FirewallConfig;
use crate::act::guardrails::Refusal;

/// The list, each range with why it is there.
#[derive(Debug, Clone, Default)]
pub struct NeverBlock {
    ranges: Vec<(IpNet, &'static str)>,
}

impl NeverBlock {
    pub fn from_config(c: &FirewallConfig) -> NeverBlock {
        let mut ranges = Vec::new();
        for (nets, why) in [
            (&c.pod_cidrs, "pod_cidr"),
            (&c.service_cidrs, "service_cidr"),
            (&c.dns_servers, "dns_server"),
            (&c.api_servers, "api_server"),
            (&c.soar_endpoints, "soar_endpoint"),
            (&c.never_block, "configured"),
        ] {
            ranges.extend(nets.iter().map(|n| (canonical_net(*n), why)));
        }
        for t in &c.targets {
            let host = t.host();
            let bare = host
                .as_deref()
                .map(|h| h.trim_start_matches('[').trim_end_matches(']'));
            if let Some(ip) = bare.and_then(|h| h.parse::<IpAddr>().ok()) {
                ranges.push((IpNet::from(canonical(ip)), "firewall_management"));
            }
        }
        NeverBlock { ranges }
    }

    /// Adds a range (addresses learned at start, e.g. resolved host names).
    pub fn add(&mut self, net: IpNet, why: &'static str) {
        self.ranges.push((canonical_net(net), why));
    }

    /// Refuses `entry` when it touches a protected range: the entry in its
    /// canonical form, and every IPv4 network its IPv6 addresses carry
    /// (`::ffff:10.96.0.10`, `64:ff9b::a60:a` and `10.96.0.0/12` all touch
    /// 10.96.0.10). A pod the intent targets by name (the dual path) may be
    /// in the pod CIDRs.
    pub fn check(&self, entry: &IpEntry, pod_target: bool) -> Result<(), Refusal> {
        let entry = entry.canonical();
        let reach = entry.reach();
        for (net, why) in &self.ranges {
            if pod_target && *why == "pod_cidr" {
                continue;
            }
            let hit = reach
                .iter()
                .find(|(_, r)| r.contains(net) || net.contains(r));
            if let Some((form, r)) = hit {
                let via =
                    form.map_or_else(String::new, |f| format!(" through its {f} addresses {r}"));
                return Err(Refusal {
                    code: "never_block",
                    message: format!(
                        "{entry} is on the never-block list ({} {net}){via}: blocking it could cut the cluster off",
                        why.replace('_', " ")
                    ),
                });
            }
        }
        Ok(())
    }

    /// [`NeverBlock::check`] for one IPv4 address (nothing to normalize),
    /// without allocating.
    pub fn check_v4(&self, ip: std::net::Ipv4Addr) -> Result<(), Refusal> {
        let ip = IpAddr::V4(ip);
        match self.ranges.iter().find(|(net, _)| net.contains(&ip)) {
            None => Ok(()),
            Some(_) => self.check(&IpEntry::Addr(ip), false),
        }
    }

    /// Refuses an EDL value of a domain or URL list whose host is a
    /// protected address.
    pub fn check_host(&self, host: &str) -> Result<(), Refusal> {
        let parsed = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(v6).parse::<IpAddr>(),
            None => host.split(['/', ':', '?']).next().unwrap_or(host).parse(),
        };
        match parsed {
            Ok(ip) => self.check(&IpEntry::Addr(ip), false),
            Err(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> NeverBlock {
        let mut c = FirewallConfig {
            pod_cidrs: vec!["10.244.0.0/16".parse().unwrap_or_else(|_| unreachable!())],
            dns_servers: vec!["10.96.0.10/32".parse().unwrap_or_else(|_| unreachable!())],
            ..FirewallConfig::default()
        };
        c.targets.push(riposte_firewall::xmlapi::TargetConfig::new(
            "fw",
            "https://192.0.2.1",
            riposte_firewall::xmlapi::ApiKey::new("k"),
        ));
        NeverBlock::from_config(&c)
    }

    fn e(s: &str) -> IpEntry {
        s.parse().unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn protected_addresses_and_overlapping_ranges_are_refused_with_the_reason() {
        let nb = list();
        let r = nb.check(&e("10.96.0.10"), false).expect_err("dns");
        assert_eq!(r.code, "never_block");
        assert!(r.message.contains("dns server"), "{}", r.message);
        assert!(nb.check(&e("10.0.0.0/8"), false).is_err());
        assert!(nb.check(&e("10.96.0.1-10.96.0.20"), false).is_err());
        assert!(nb.check(&e("192.0.2.1"), false).is_err());
        assert!(nb.check(&e("203.0.113.9"), false).is_ok());
        assert!(nb.check_host("10.96.0.10:53/x").is_err());
        assert!(nb.check_host("evil.example").is_ok());
    }

    #[test]
    fn every_form_of_a_protected_address_is_refused() {
        let nb = list();
        for value in [
            "::ffff:10.96.0.10",
            "::ffff:a60:a",
            "::10.96.0.10",
            "64:ff9b::a60:a",
            "64:ff9b:1:0:0:0:a60:a",
            "2002:a60:a::1",
            "::ffff:10.96.0.0/120",
            "::ffff:10.96.0.1-::ffff:10.96.0.20",
            "10.96.0.0/12",
            "::/0",
            "64:ff9b::/96",
            "::ffff:192.0.2.1",
        ] {
            let r = nb.check(&e(value), false).expect_err(value);
            assert_eq!(r.code, "never_block", "{value}");
        }
        let r = nb.check(&e("64:ff9b::a60:a"), false).expect_err("nat64");
        assert!(r.message.contains("NAT64"), "{}", r.message);
        assert!(nb.check_host("[::ffff:10.96.0.10]:53/x").is_err());
        assert!(nb.check_host("[64:ff9b::a60:a]/x").is_err());
        for fine in [
            "::ffff:203.0.113.9",
            "64:ff9b::cb00:7109",
            "2001:db8::a60:a",
        ] {
            assert!(nb.check(&e(fine), false).is_ok(), "{fine}");
        }
    }

    #[test]
    fn configured_ranges_in_mapped_form_protect_the_ipv4_host() {
        let c = FirewallConfig {
            never_block: vec!["::ffff:198.51.100.0/120"
                .parse()
                .unwrap_or_else(|_| unreachable!())],
            ..FirewallConfig::default()
        };
        let nb = NeverBlock::from_config(&c);
        assert!(nb.check(&e("198.51.100.7"), false).is_err());
    }

    #[test]
    fn a_pod_target_may_be_in_the_pod_cidr_but_nothing_else() {
        let nb = list();
        assert!(nb.check(&e("10.244.1.17"), false).is_err());
        assert!(nb.check(&e("10.244.1.17"), true).is_ok());
        assert!(nb.check(&e("10.96.0.10"), true).is_err());
    }
}
