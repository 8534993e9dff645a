//! The SSRF guard: a notification target must not be loopback, link-local
//! or a cloud metadata endpoint unless the operator says so.
//!
//! An attacker who can influence config (or DNS) could otherwise make
//! Riposte post decisions, with its credentials, to the node's metadata
//! service. The check runs twice: on the URL's host when the target is
//! built (a clear start-up error), and on every address the resolver
//! returns at connection time ([`GuardedResolver`]), so a name that
//! resolves (or re-resolves) to 169.254.169.254 is refused too. Private
//! ranges (10/8, 172.16/12, 192.168/16, fc00::/7 other than the metadata
//! address) are allowed: an in-cluster SOAR lives there.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use riposte_firewall::addr;

use super::SoarError;

/// Host names that are metadata services whatever they resolve to.
const METADATA_NAMES: [&str; 5] = [
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
];

/// Why an address is refused, or `None` when it may be used. The address
/// and every IPv4 address it carries are checked
/// ([`riposte_firewall::addr`]): IPv4-mapped and -compatible forms reach
/// the IPv4 host itself, and a NAT64 (64:ff9b::/96, 64:ff9b:1::/48), 6to4
/// or Teredo address is delivered to its IPv4 address by a translator or
/// relay, so `[64:ff9b::a9fe:a9fe]` is the metadata service too.
pub fn forbidden_ip(ip: IpAddr) -> Option<&'static str> {
    addr::check_views(ip)
        .into_iter()
        .find_map(|(_, view)| forbidden_one(view))
}

fn forbidden_one(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            // fd00:ec2::254: the EC2 metadata service over IPv6.
            if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                Some("cloud metadata address")
            } else if v6.is_loopback() {
                Some("loopback address")
            } else if v6.is_unspecified() {
                Some("unspecified address")
            } else if (v6.segments()[0] & 0xffc0) == 0xfe80 {
                Some("link-local address")
            } else if v6.is_multicast() {
                Some("multicast address")
            } else {
                None
            }
        }
    }
}

fn forbidden_v4(v4: Ipv4Addr) -> Option<&'static str> {
    // 169.254.169.254 (AWS, GCP, Azure, OpenStack…) and 100.100.100.200
    // (Alibaba) are metadata services; the first is link-local anyway but
    // deserves the clearer reason.
    if v4 == Ipv4Addr::new(169, 254, 169, 254) || v4 == Ipv4Addr::new(100, 100, 100, 200) {
        Some("cloud metadata address")
    } else if v4.is_loopback() {
        Some("loopback address")
    } else if v4.is_link_local() {
        Some("link-local address")
    } else if v4.is_unspecified() {
        Some("unspecified address")
    } else if v4.is_broadcast() || v4.is_multicast() {
        Some("broadcast or multicast address")
    } else {
        None
    }
}

/// Checks a URL's host as written: an IP literal is checked as an address,
/// a name against the metadata and localhost names.
pub fn check_host(host: &str) -> Result<(), SoarError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let refuse = |reason| {
        Err(SoarError::Forbidden {
            host: host.to_string(),
            reason,
        })
    };
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return match forbidden_ip(ip) {
            Some(reason) => refuse(reason),
            None => Ok(()),
        };
    }
    let name = bare.trim_end_matches('.').to_ascii_lowercase();
    if METADATA_NAMES.contains(&name.as_str()) {
        return refuse("cloud metadata host name");
    }
    if name == "localhost" || name.ends_with(".localhost") {
        return refuse("loopback host name");
    }
    Ok(())
}

/// A resolver that drops forbidden addresses and fails when none is left.
#[derive(Debug, Clone, Default)]
pub struct GuardedResolver;

impl GuardedResolver {
    pub fn shared() -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver)
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            check_host(&host)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed = filter_resolved(&host, addrs)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Keeps the resolved addresses that may be used; an error when none is.
pub fn filter_resolved(host: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, SoarError> {
    let first_reason = addrs.first().and_then(|a| forbidden_ip(a.ip()));
    let allowed: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| forbidden_ip(a.ip()).is_none())
        .collect();
    if allowed.is_empty() {
        return Err(SoarError::Forbidden {
            host: host.to_string(),
            reason: first_reason.unwrap_or("the name resolved to no address"),
        });
    }
    Ok(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn refuses_loopback_link_local_and_metadata() {
        for bad in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "169.254.169.254",
            "169.254.1.1",
            "fe80::1",
            "fd00:ec2::254",
            "100.100.100.200",
            "0.0.0.0",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "224.0.0.1",
            // IPv4-compatible, NAT64, 6to4 and Teredo forms of forbidden
            // IPv4 addresses.
            "::127.0.0.1",
            "::7f00:1",
            "::a9fe:a9fe",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::127.0.0.1",
            "64:ff9b:1::a9fe:a9fe",
            "64:ff9b:1:2:3:4:7f00:1",
            "2002:a9fe:a9fe::",
            "2002:7f00:1::1",
            "2001:0:a9fe:a9fe::1",
            "2001:0:4136:e378:8000:63bf:5601:5601",
            "64:ff9b::6464:64c8",
        ] {
            assert!(forbidden_ip(ip(bad)).is_some(), "{bad} should be refused");
        }
        assert_eq!(
            forbidden_ip(ip("169.254.169.254")),
            Some("cloud metadata address")
        );
    }

    #[test]
    fn allows_private_and_public_addresses() {
        for good in [
            "10.0.0.5",
            "192.168.1.1",
            "172.16.0.1",
            "8.8.8.8",
            "2001:db8::1",
            "fd00::1",
            "::ffff:10.0.0.5",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(forbidden_ip(ip(good)), None, "{good} should be allowed");
        }
    }

    #[test]
    fn checks_host_names_and_literals() {
        assert!(check_host("metadata.google.internal").is_err());
        assert!(check_host("METADATA.google.internal.").is_err());
        assert!(check_host("localhost").is_err());
        assert!(check_host("foo.localhost").is_err());
        assert!(check_host("[::1]").is_err());
        for literal in [
            "[::127.0.0.1]",
            "[::ffff:127.0.0.1]",
            "[64:ff9b::a9fe:a9fe]",
            "[2002:a9fe:a9fe::]",
        ] {
            let err = check_host(literal).expect_err(literal).to_string();
            assert!(
                err.contains("loopback") || err.contains("metadata"),
                "{literal}: {err}"
            );
        }
        assert!(check_host("169.254.169.254").is_err());
        assert!(check_host("xsoar.example.com").is_ok());
        assert!(check_host("10.1.2.3").is_ok());
    }

    #[test]
    fn resolved_addresses_are_filtered() {
        let sa = |s: &str| SocketAddr::new(ip(s), 0);
        let kept =
            filter_resolved("x", vec![sa("169.254.169.254"), sa("10.0.0.1")]).expect("one left");
        assert_eq!(kept, vec![sa("10.0.0.1")]);
        let err =
            filter_resolved("evil.example", vec![sa("169.254.169.254")]).expect_err("refused");
        assert!(err.to_string().contains("cloud metadata"), "{err}");
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_that_resolve_to_loopback() {
        let name: Name = "localhost".parse().expect("name");
        let err = match GuardedResolver.resolve(name).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("loopback"), "{err}");
    }
}
