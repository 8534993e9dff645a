//! Address forms: the one normalization every address check goes through
//! (never-block, the SSRF guard, EDL entries, tags, playbook helpers).
//!
//! An IPv6 address can name an IPv4 host. A check that compares only the
//! text, or only the IPv6 value, lets `::ffff:10.96.0.10` past a rule about
//! `10.96.0.10`. The forms known here:
//!
//! | form                              | prefix            | IPv4 in bits           | canonical form |
//! |-----------------------------------|-------------------|------------------------|----------------|
//! | IPv4-mapped (RFC 4291)            | `::ffff:0:0/96`   | 96–127                 | the IPv4       |
//! | IPv4-compatible (RFC 4291, deprecated) | `::/96`, not `::` or `::1` | 96–127 | the IPv4       |
//! | NAT64 well-known (RFC 6052)       | `64:ff9b::/96`    | 96–127                 | kept           |
//! | NAT64 local-use (RFC 8215)        | `64:ff9b:1::/48`  | 96–127 (the /96 format)| kept           |
//! | 6to4 (RFC 3056)                   | `2002::/16`       | 16–47                  | kept           |
//! | Teredo (RFC 4380)                 | `2001::/32`       | server 32–63, client 96–127 inverted | kept |
//!
//! Mapped and compatible addresses *are* the IPv4 host (a dual-stack
//! socket or a log shows an IPv4 peer that way), so they are rewritten to
//! it: one host is one EDL entry, one tag lease, one never-block match.
//! The translated forms (NAT64, 6to4, Teredo) are other IPv6 addresses
//! whose packets a translator or relay delivers to the IPv4 host: they are
//! kept as written (blocking them blocks that IPv6 traffic), but every
//! check applies to them *and* to the IPv4 addresses they reach
//! ([`embedded_ipv4_nets`]). Local-use NAT64 prefixes may, per RFC 6052,
//! put the IPv4 address elsewhere than the last 32 bits (the /32–/64
//! formats); only the /96 format is read, the common deployment. ISATAP
//! and other interface-identifier embeddings are out of scope: they name
//! an IPv6 host on a link, not an IPv4 destination.
//!
//! Nothing here does I/O.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// An IPv6 form that carries an IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Embedding {
    Mapped,
    Compatible,
    Nat64,
    Nat64Local,
    SixToFour,
    TeredoServer,
    TeredoClient,
}

impl Embedding {
    pub const ALL: [Embedding; 7] = [
        Embedding::Mapped,
        Embedding::Compatible,
        Embedding::Nat64,
        Embedding::Nat64Local,
        Embedding::SixToFour,
        Embedding::TeredoServer,
        Embedding::TeredoClient,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Embedding::Mapped => "IPv4-mapped",
            Embedding::Compatible => "IPv4-compatible",
            Embedding::Nat64 => "NAT64",
            Embedding::Nat64Local => "local-use NAT64",
            Embedding::SixToFour => "6to4",
            Embedding::TeredoServer => "Teredo server",
            Embedding::TeredoClient => "Teredo client",
        }
    }

    /// The form's prefix (bits, length), where the IPv4 address starts,
    /// and the mask it is XORed with (Teredo obfuscates the client).
    fn layout(self) -> (u128, u8, u8, u32) {
        match self {
            Embedding::Mapped => (0xffff << 32, 96, 96, 0),
            Embedding::Compatible => (0, 96, 96, 0),
            Embedding::Nat64 => (0x0064_ff9b << 96, 96, 96, 0),
            Embedding::Nat64Local => (0x0064_ff9b_0001 << 80, 48, 96, 0),
            Embedding::SixToFour => (0x2002 << 112, 16, 16, 0),
            Embedding::TeredoServer => (0x2001_0000 << 96, 32, 32, 0),
            Embedding::TeredoClient => (0x2001_0000 << 96, 32, 96, u32::MAX),
        }
    }
}

impl std::fmt::Display for Embedding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn mask(len: u8) -> u128 {
    match len {
        0 => 0,
        l => u128::MAX << (128 - u32::from(l.min(128))),
    }
}

/// The IPv4 host an IPv6 address *is*: IPv4-mapped, or IPv4-compatible
/// other than `::` and `::1`.
pub fn ipv4_host(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let bits = u128::from(v6);
    (bits >> 32 == 0 && bits > 1).then(|| Ipv4Addr::from(bits as u32))
}

/// The canonical form of an address: an IPv4-mapped or IPv4-compatible
/// IPv6 address becomes its IPv4 address; everything else is itself.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => ipv4_host(v6).map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The canonical form of a network: its network address (host bits
/// cleared), and an IPv4-mapped or IPv4-compatible prefix of /96 or longer
/// as the IPv4 prefix it is (`::ffff:10.0.0.0/104` is `10.0.0.0/8`). A
/// compatible prefix holding `::` or `::1` stays IPv6: those are not IPv4
/// hosts.
pub fn canonical_net(net: IpNet) -> IpNet {
    let n = match net {
        IpNet::V4(n) => return IpNet::V4(n.trunc()),
        IpNet::V6(n) => n.trunc(),
    };
    if n.prefix_len() < 96 {
        return IpNet::V6(n);
    }
    let bits = u128::from(n.network());
    let Ok(v4) = Ipv4Net::new(Ipv4Addr::from(bits as u32), n.prefix_len() - 96) else {
        return IpNet::V6(n);
    };
    let mapped = bits >> 32 == 0xffff;
    let compatible = bits >> 32 == 0
        && v4.network() != Ipv4Addr::UNSPECIFIED
        && v4 != Ipv4Net::from(Ipv4Addr::new(0, 0, 0, 1));
    if mapped || compatible {
        IpNet::V4(v4)
    } else {
        IpNet::V6(n)
    }
}

/// The IPv4 networks that the addresses of `net` carry, one per form whose
/// prefix overlaps `net`: the IPv4 bits `net` fixes, the rest free (so
/// `64:ff9b::/96` reaches `0.0.0.0/0`, `2002:a9fe::/32` reaches
/// `169.254.0.0/16`).
pub fn embedded_ipv4_nets(net: Ipv6Net) -> Vec<(Embedding, Ipv4Net)> {
    let (n, l) = (u128::from(net.network()), net.prefix_len());
    let mut out = Vec::new();
    for form in Embedding::ALL {
        let (p, pl, offset, xor) = form.layout();
        if (n ^ p) & mask(l.min(pl)) != 0 {
            continue;
        }
        // The intersection of `net` and the form's prefix is the longer one.
        let (bits, len) = if l >= pl { (n, l) } else { (p, pl) };
        let raw = (bits >> (96 - u32::from(offset))) as u32 ^ xor;
        let fixed = len.saturating_sub(offset).min(32);
        if let Ok(v4) = Ipv4Net::new(Ipv4Addr::from(raw), fixed) {
            out.push((form, v4.trunc()));
        }
    }
    out
}

/// The IPv4 addresses an IPv6 address carries, with the form of each.
pub fn embedded_ipv4(v6: Ipv6Addr) -> Vec<(Embedding, Ipv4Addr)> {
    embedded_ipv4_nets(Ipv6Net::from(v6))
        .into_iter()
        .map(|(form, n)| (form, n.network()))
        .collect()
}

/// Every address a check must look at for `ip`: its canonical form, then
/// each IPv4 address it carries.
pub fn check_views(ip: IpAddr) -> Vec<(Option<Embedding>, IpAddr)> {
    let c = canonical(ip);
    let mut out = vec![(None, c)];
    if let IpAddr::V6(v6) = c {
        out.extend(
            embedded_ipv4(v6)
                .into_iter()
                .map(|(form, v4)| (Some(form), IpAddr::V4(v4))),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| panic!("{s}"))
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap_or_else(|_| panic!("{s}"))
    }

    #[test]
    fn mapped_and_compatible_addresses_are_their_ipv4_host() {
        let cases = [
            ("::ffff:10.96.0.10", "10.96.0.10"),
            ("::FFFF:a60:a", "10.96.0.10"),
            ("::127.0.0.1", "127.0.0.1"),
            ("::a9fe:a9fe", "169.254.169.254"),
            ("::ffff:0.0.0.0", "0.0.0.0"),
            ("10.0.0.1", "10.0.0.1"),
            // Not IPv4 hosts: unspecified, loopback, translated forms.
            ("::", "::"),
            ("::1", "::1"),
            ("64:ff9b::a9fe:a9fe", "64:ff9b::a9fe:a9fe"),
            ("2002:a9fe:a9fe::", "2002:a9fe:a9fe::"),
            ("2001:db8::1", "2001:db8::1"),
            ("::ffff:1:0:0", "::ffff:1:0:0"),
        ];
        for (input, want) in cases {
            assert_eq!(canonical(ip(input)), ip(want), "{input}");
        }
    }

    #[test]
    fn networks_in_mapped_or_compatible_space_become_ipv4_networks() {
        let cases = [
            ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
            ("::ffff:10.96.0.10/128", "10.96.0.10/32"),
            ("::ffff:0:0/96", "0.0.0.0/0"),
            ("::10.0.0.0/104", "10.0.0.0/8"),
            ("::ffff:10.1.2.3/104", "10.0.0.0/8"),
            ("10.1.2.3/8", "10.0.0.0/8"),
            // Holding `::` or `::1`: stays IPv6.
            ("::/96", "::/96"),
            ("::/0", "::/0"),
            ("::1/128", "::1/128"),
            ("::/127", "::/127"),
            ("::ffff:0:0/95", "::fffe:0:0/95"),
            ("64:ff9b::/96", "64:ff9b::/96"),
        ];
        for (input, want) in cases {
            assert_eq!(canonical_net(net(input)), net(want), "{input}");
        }
    }

    #[test]
    fn every_form_yields_the_ipv4_it_carries() {
        let metadata = Ipv4Addr::new(169, 254, 169, 254);
        let cases: [(&str, Embedding); 7] = [
            ("::ffff:a9fe:a9fe", Embedding::Mapped),
            ("::a9fe:a9fe", Embedding::Compatible),
            ("64:ff9b::a9fe:a9fe", Embedding::Nat64),
            ("64:ff9b:1:2:3:4:a9fe:a9fe", Embedding::Nat64Local),
            ("2002:a9fe:a9fe::1", Embedding::SixToFour),
            ("2001:0:a9fe:a9fe::1", Embedding::TeredoServer),
            // The client's address is stored inverted.
            (
                "2001:0:4136:e378:8000:63bf:5601:5601",
                Embedding::TeredoClient,
            ),
        ];
        for (input, form) in cases {
            let Ok(IpAddr::V6(v6)) = input.parse::<IpAddr>() else {
                panic!("{input}");
            };
            let found = embedded_ipv4(v6);
            assert!(found.contains(&(form, metadata)), "{input}: {found:?}");
        }
        let Ok(IpAddr::V6(plain)) = "2001:db8::a9fe:a9fe".parse::<IpAddr>() else {
            panic!("v6");
        };
        assert!(embedded_ipv4(plain).is_empty());
    }

    #[test]
    fn prefixes_reach_the_ipv4_networks_they_cover() {
        let v6 = |s: &str| match net(s) {
            IpNet::V6(n) => n,
            IpNet::V4(_) => panic!("{s}"),
        };
        let reach = |s: &str| embedded_ipv4_nets(v6(s));
        assert!(reach("64:ff9b::/96").contains(&(
            Embedding::Nat64,
            "0.0.0.0/0".parse().unwrap_or_else(|_| unreachable!())
        )));
        assert!(reach("2002:a9fe::/32").contains(&(
            Embedding::SixToFour,
            "169.254.0.0/16".parse().unwrap_or_else(|_| unreachable!())
        )));
        // ::/0 holds every form, each reaching all of IPv4.
        let all = reach("::/0");
        assert_eq!(all.len(), Embedding::ALL.len());
        assert!(all.iter().all(|(_, n)| n.prefix_len() == 0));
        assert!(reach("2001:db8::/32").is_empty());
        assert!(reach("fd00::/8").is_empty());
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn every_embedding_of_an_ipv4_address_leads_back_to_it(a in any::<u32>(), hi in any::<u64>()) {
                let v = Ipv4Addr::from(a);
                let w = u128::from(a);
                let mapped = Ipv6Addr::from((0xffff_u128 << 32) | w);
                prop_assert_eq!(canonical(IpAddr::V6(mapped)), IpAddr::V4(v));
                if a > 1 {
                    let compatible = Ipv6Addr::from(w);
                    prop_assert_eq!(canonical(IpAddr::V6(compatible)), IpAddr::V4(v));
                }
                let forms = [
                    (Embedding::Nat64, (0x0064_ff9b_u128 << 96) | w),
                    (Embedding::Nat64Local, (0x0064_ff9b_0001_u128 << 80) | (u128::from(hi as u32) << 32) | w),
                    (Embedding::SixToFour, (0x2002_u128 << 112) | (w << 80) | u128::from(hi)),
                    (Embedding::TeredoServer, (0x2001_0000_u128 << 96) | (w << 64) | u128::from(hi)),
                    (Embedding::TeredoClient, (0x2001_0000_u128 << 96) | (u128::from(hi >> 32) << 32) | u128::from(!a)),
                ];
                for (form, bits) in forms {
                    let v6 = Ipv6Addr::from(bits);
                    prop_assert!(embedded_ipv4(v6).contains(&(form, v)), "{} {:?}", v6, form);
                    prop_assert!(check_views(IpAddr::V6(v6)).contains(&(Some(form), IpAddr::V4(v))));
                }
            }

            #[test]
            fn canonical_forms_are_stable(bits in any::<u128>(), len in 0u8..=128) {
                let ip = IpAddr::V6(Ipv6Addr::from(bits));
                prop_assert_eq!(canonical(canonical(ip)), canonical(ip));
                let n = IpNet::V6(Ipv6Net::new(Ipv6Addr::from(bits), len).map_err(|e| TestCaseError::fail(e.to_string()))?);
                let c = canonical_net(n);
                prop_assert_eq!(canonical_net(c), c);
                prop_assert!(c.contains(&canonical(n.network())), "{} -> {}", n, c);
            }
        }
    }
}
