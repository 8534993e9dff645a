//! Act once per target: during a storm the same action on the same pod is
//! decided again and again. An action identical to one already waiting on
//! the pod's lane is folded into it (the lane never grows with the storm),
//! and a quarantine of a pod already quarantined for long enough is a
//! recorded repeat with no API call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::decide::intent::Action;

/// How long a quarantine this process applied is trusted before the pod
/// index (which follows the API server's watch) has caught up with it.
const WATCH_LAG: Duration = Duration::from_secs(30);

/// Most remembered quarantines; beyond, the stale ones are dropped.
const MAX_RECENT: usize = 10_000;

/// What a repeated action became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repeat {
    /// The same action already waits (or runs) on the pod: this one is
    /// carried out by it (its action id).
    Queued(String),
    /// The pod is quarantined until then (None: until released by hand),
    /// at least as long as this quarantine asks.
    Quarantined(Option<DateTime<Utc>>),
}

impl Repeat {
    /// The reason an action record gives.
    pub fn reason(&self) -> String {
        match self {
            Repeat::Queued(id) => {
                format!("the same action is already queued on this pod (action {id}): done once")
            }
            Repeat::Quarantined(Some(until)) => format!(
                "already quarantined until {}: repeat recorded, no API call",
                until.to_rfc3339()
            ),
            Repeat::Quarantined(None) => {
                "already quarantined until released by hand: repeat recorded, no API call".into()
            }
        }
    }

    /// The record's fixed code.
    pub fn code(&self) -> &'static str {
        match self {
            Repeat::Queued(_) => "coalesced",
            Repeat::Quarantined(_) => "repeat",
        }
    }
}

/// The lane key of an action on pod `who`: the action as written, so only
/// identical ones meet; but quarantines of one pod for as long meet
/// whatever their reason says (a storm's alerts word it each their way).
pub fn lane_key(who: &str, action: &Action) -> String {
    if let Action::Quarantine { ttl, .. } = action {
        return format!("{who}\nquarantine {}", ttl.as_secs());
    }
    let json = serde_json::to_string(action).unwrap_or_else(|_| action.summary());
    format!("{who}\n{json}")
}

/// Whether a quarantine of `ttl_secs` from `now` adds nothing to one that
/// ends at `current` (None: no end). Within a tenth of the TTL (at least a
/// minute) counts as nothing: the expiry is refreshed at most that often.
pub fn covered(current: Option<DateTime<Utc>>, ttl_secs: u64, now: DateTime<Utc>) -> bool {
    let Some(current) = current else {
        return true;
    };
    let ttl = i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2_000_000);
    let slack = (ttl / 10).max(60);
    current + chrono::Duration::seconds(slack) >= now + chrono::Duration::seconds(ttl)
}

/// When this process applied a quarantine, and until when it holds.
type Applied = (Instant, Option<DateTime<Utc>>);

/// Actions queued per lane key, and quarantines applied lately.
#[derive(Debug, Default)]
pub struct Repeats {
    queued: Mutex<HashMap<String, String>>,
    recent: Mutex<HashMap<String, Applied>>,
}

impl Repeats {
    /// Claims `key` for action `action_id`; the action id that holds it
    /// when another one does.
    pub fn claim(&self, key: &str, action_id: &str) -> Option<String> {
        let mut q = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(holder) = q.get(key) {
            return Some(holder.clone());
        }
        q.insert(key.to_owned(), action_id.to_owned());
        None
    }

    /// Releases `key` once its action ended (either way).
    pub fn release(&self, key: &str) {
        self.queued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// Actions waiting or running, one per distinct action and pod.
    pub fn queued(&self) -> usize {
        self.queued.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Remembers that pod `who` was quarantined until `until`.
    pub fn quarantined(&self, who: &str, until: Option<DateTime<Utc>>) {
        let mut r = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if r.len() >= MAX_RECENT {
            r.retain(|_, (at, _)| at.elapsed() < WATCH_LAG);
        }
        r.insert(who.to_owned(), (Instant::now(), until));
    }

    /// Forgets pod `who`'s quarantine (it is being released).
    pub fn released(&self, who: &str) {
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(who);
    }

    /// The quarantine this process applied to `who` lately, while the
    /// index may not show it yet.
    pub fn recent(&self, who: &str) -> Option<Option<DateTime<Utc>>> {
        let r = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        r.get(who)
            .filter(|(at, _)| at.elapsed() < WATCH_LAG)
            .map(|(_, until)| *until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quarantine_is_covered_until_its_refresh_is_due() {
        let now = Utc::now();
        let h = |n: i64| Some(now + chrono::Duration::hours(n));
        // 4h asked, 4h left: nothing to add.
        assert!(covered(h(4), 4 * 3600, now));
        // 3h40 left of 4h: within a tenth (24 min), still covered.
        assert!(covered(
            Some(now + chrono::Duration::minutes(220)),
            4 * 3600,
            now
        ));
        // 3h left: the expiry is extended (one call).
        assert!(!covered(h(3), 4 * 3600, now));
        // Released by hand only: never shortened or extended.
        assert!(covered(None, 4 * 3600, now));
        // Short TTLs refresh at most once a minute.
        assert!(covered(Some(now + chrono::Duration::seconds(5)), 60, now));
    }

    #[test]
    fn one_claim_per_key_until_released() {
        let r = Repeats::default();
        assert_eq!(r.claim("pod\nq", "a1"), None);
        assert_eq!(r.claim("pod\nq", "a2"), Some("a1".into()));
        assert_eq!(r.claim("pod\nother", "a3"), None);
        assert_eq!(r.queued(), 2);
        r.release("pod\nq");
        assert_eq!(r.claim("pod\nq", "a4"), None);
    }

    #[test]
    fn a_recent_quarantine_is_known_until_released() {
        let r = Repeats::default();
        let until = Some(Utc::now());
        r.quarantined("ns/p", until);
        assert_eq!(r.recent("ns/p"), Some(until));
        r.released("ns/p");
        assert_eq!(r.recent("ns/p"), None);
    }
}
