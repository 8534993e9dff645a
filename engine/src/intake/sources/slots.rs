//! Connection slots of a stream listener, shared out so that no sender can
//! take them all.
//!
//! Three bounds apply to each new connection: its address may hold at most
//! `per_source` of them (one host flooding idle connections fills its own
//! share, not the listener); the listener holds at most `total`; and the
//! last `reserved` slots go only to `priority` senders (the configured
//! firewalls), so that many other addresses together cannot lock them out
//! either. A slot is given back when its [`Slot`] is dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use ipnet::IpNet;

/// How the slots are shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotPolicy {
    /// Connections at once, all senders together.
    pub total: usize,
    /// Connections at once from one address.
    pub per_source: usize,
    /// Slots out of `total` that only `priority` senders may take.
    pub reserved: usize,
    /// Senders that may use the reserved slots.
    pub priority: Vec<IpNet>,
}

/// Why a connection was refused; [`Refusal::reason`] is its metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its address already holds `per_source` connections.
    SourceLimit,
    /// Only reserved slots are left and the sender is not a priority one.
    Reserved,
    /// Every slot is taken.
    Full,
}

impl SlotPolicy {
    /// A setting that cannot work: its key (under the listener's table) and
    /// why.
    pub fn problem(&self) -> Option<(&'static str, &'static str)> {
        if self.total == 0 {
            return Some(("max_connections", "must be at least 1"));
        }
        if self.per_source == 0 {
            return Some(("max_connections_per_source", "must be at least 1"));
        }
        // A reserve with nobody to keep it for is never applied, so a
        // small max_connections alone is no mistake.
        if !self.priority.is_empty() && self.reserved >= self.total {
            return Some((
                "reserved_connections",
                "must be less than max_connections (others need a slot too)",
            ));
        }
        None
    }
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::SourceLimit => "per_source_limit",
            Refusal::Reserved => "reserved_for_priority",
            Refusal::Full => "too_many_connections",
        }
    }
}

#[derive(Debug, Default)]
struct Held {
    total: usize,
    /// Only addresses holding a connection: at most `total` entries.
    by_source: HashMap<IpAddr, usize>,
}

/// The slots of one listener.
#[derive(Debug, Clone)]
pub struct Slots {
    policy: Arc<SlotPolicy>,
    held: Arc<Mutex<Held>>,
}

/// One taken slot; dropping it gives the slot back.
#[derive(Debug)]
pub struct Slot {
    source: IpAddr,
    held: Arc<Mutex<Held>>,
}

impl Slots {
    pub fn new(policy: SlotPolicy) -> Slots {
        let policy = SlotPolicy {
            total: policy.total.max(1),
            per_source: policy.per_source.max(1),
            reserved: policy.reserved.min(policy.total.saturating_sub(1)),
            priority: policy.priority,
        };
        Slots {
            policy: Arc::new(policy),
            held: Arc::new(Mutex::new(Held::default())),
        }
    }

    fn is_priority(&self, ip: IpAddr) -> bool {
        self.policy.priority.iter().any(|n| n.contains(&ip))
    }

    /// Takes a slot for a connection from `peer`, or says why not.
    pub fn acquire(&self, peer: IpAddr) -> Result<Slot, Refusal> {
        // One host is one source whichever way its address reaches us (an
        // IPv4 sender on a dual-stack socket shows up as ::ffff:a.b.c.d).
        let source = riposte_firewall::addr::canonical(peer);
        // Reserved slots are only worth something with someone to keep them for.
        let open_to_all = if self.policy.priority.is_empty() || self.is_priority(source) {
            self.policy.total
        } else {
            self.policy.total - self.policy.reserved
        };
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.total >= self.policy.total {
            return Err(Refusal::Full);
        }
        if held.total >= open_to_all {
            return Err(Refusal::Reserved);
        }
        let mine = held.by_source.entry(source).or_insert(0);
        if *mine >= self.policy.per_source {
            return Err(Refusal::SourceLimit);
        }
        *mine += 1;
        held.total += 1;
        Ok(Slot {
            source,
            held: self.held.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.total = held.total.saturating_sub(1);
        if let Some(n) = held.by_source.get_mut(&self.source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.by_source.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn policy(total: usize, per_source: usize, reserved: usize, priority: &[&str]) -> SlotPolicy {
        SlotPolicy {
            total,
            per_source,
            reserved,
            priority: priority.iter().map(|p| p.parse().expect("net")).collect(),
        }
    }

    #[test]
    fn one_address_cannot_take_more_than_its_share() {
        let slots = Slots::new(policy(10, 3, 0, &[]));
        let held: Vec<Slot> = (0..3)
            .map(|_| slots.acquire(ip("10.0.0.1")).expect("within share"))
            .collect();
        assert_eq!(
            slots.acquire(ip("10.0.0.1")).err(),
            Some(Refusal::SourceLimit)
        );
        // The mapped form is the same host.
        assert_eq!(
            slots.acquire(ip("::ffff:10.0.0.1")).err(),
            Some(Refusal::SourceLimit)
        );
        assert!(slots.acquire(ip("10.0.0.2")).is_ok());
        drop(held);
        assert!(slots.acquire(ip("10.0.0.1")).is_ok(), "slots come back");
    }

    #[test]
    fn reserved_slots_keep_room_for_priority_senders() {
        let slots = Slots::new(policy(4, 4, 2, &["192.0.2.10/32"]));
        let _a = slots.acquire(ip("10.0.0.1")).expect("open slot");
        let _b = slots.acquire(ip("10.0.0.2")).expect("open slot");
        assert_eq!(slots.acquire(ip("10.0.0.3")).err(), Some(Refusal::Reserved));
        let _f1 = slots.acquire(ip("192.0.2.10")).expect("reserved slot");
        let _f2 = slots.acquire(ip("192.0.2.10")).expect("reserved slot");
        assert_eq!(slots.acquire(ip("192.0.2.10")).err(), Some(Refusal::Full));
        assert_eq!(slots.acquire(ip("10.0.0.3")).err(), Some(Refusal::Full));
    }

    #[test]
    fn without_priority_senders_nothing_is_held_back() {
        let slots = Slots::new(policy(2, 2, 1, &[]));
        let _a = slots.acquire(ip("10.0.0.1")).expect("slot");
        let _b = slots.acquire(ip("10.0.0.1")).expect("slot");
        assert_eq!(slots.acquire(ip("10.0.0.2")).err(), Some(Refusal::Full));
    }

    #[test]
    fn settings_that_cannot_work_are_named() {
        assert_eq!(policy(512, 64, 32, &[]).problem(), None);
        assert_eq!(
            policy(8, 4, 32, &[]).problem(),
            None,
            "no priority senders, no reserve"
        );
        assert_eq!(
            policy(8, 4, 8, &["10.0.0.1/32"]).problem().map(|p| p.0),
            Some("reserved_connections")
        );
        assert_eq!(
            policy(8, 0, 0, &[]).problem().map(|p| p.0),
            Some("max_connections_per_source")
        );
        assert_eq!(
            policy(0, 1, 0, &[]).problem().map(|p| p.0),
            Some("max_connections")
        );
    }

    #[test]
    fn refusal_reasons_are_distinct() {
        let reasons = [Refusal::SourceLimit, Refusal::Reserved, Refusal::Full].map(Refusal::reason);
        assert_ne!(reasons[0], reasons[1]);
        assert_ne!(reasons[1], reasons[2]);
        assert_ne!(reasons[0], reasons[2]);
    }
}
