//! Which peers may send logs.

use std::net::IpAddr;

use ipnet::IpNet;

/// Allowed source networks; empty allows everyone.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    nets: Vec<IpNet>,
}

impl AllowList {
    pub fn new(nets: &[IpNet]) -> AllowList {
        AllowList {
            nets: nets.to_vec(),
        }
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.nets.is_empty() {
            return true;
        }
        // An IPv4 sender on a dual-stack socket shows up as ::ffff:a.b.c.d.
        let ip = riposte_firewall::addr::canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_list_allows_all_and_cidrs_filter() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert!(AllowList::default().allows(ip("203.0.113.9")));
        let list = AllowList::new(&["10.0.0.0/8".parse().expect("net")]);
        assert!(list.allows(ip("10.1.2.3")));
        assert!(list.allows(ip("::ffff:10.1.2.3")));
        assert!(!list.allows(ip("192.168.1.1")));
    }
}
