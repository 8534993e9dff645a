//! The dual path's tag follows its pod. A quarantined pod keeps its label
//! for as long as it lives, but its address can change under it (a sandbox
//! recreated after a node reboot hands the pod a new one). The follower
//! compares, for every quarantined pod, the addresses it holds now with the
//! quarantine tag's leases taken for that quarantine: a new address is
//! tagged, an address the pod gave up is untagged, and a quarantine whose
//! expiry moved moves its leases with it. Every change is counted
//! (`riposte_firewall_drift_total{kind="moved"}`) and recorded in the
//! decision log like the reconciler's repairs.
//!
//! Leases are matched to a quarantine by its action id (the dispatcher's
//! dual path tags with the quarantine intent's id, the same id the pod's
//! `riposte.io/action-id` annotation carries), so a tag a playbook placed
//! on the same address by itself is never touched.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use riposte_connectors::kubernetes::PodIndex;
use tokio_util::sync::CancellationToken;

use super::state::Lease;
use super::Firewalls;
use crate::decide::decision::{ActionRecord, ActionStatus, DecisionLog};

/// How long a quarantine without expiry is tagged for at a time; the
/// follower extends it when less than half is left.
const OPEN_ENDED_SECS: i64 = 86_400;

/// A lease whose expiry is this close to the quarantine's is left alone.
const EXPIRY_SLACK_SECS: i64 = 60;

/// One quarantined pod as the follower needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedPod {
    pub namespace: String,
    pub name: String,
    /// The quarantine's action id: the key of its leases.
    pub key: String,
    /// The addresses the pod holds now.
    pub ips: Vec<IpAddr>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl QuarantinedPod {
    /// Every quarantined pod of the index, with its current addresses.
    pub fn all(index: &PodIndex) -> Vec<QuarantinedPod> {
        index
            .quarantined()
            .iter()
            .map(|q| QuarantinedPod {
                namespace: q.pod.namespace.clone(),
                name: q.pod.name.clone(),
                key: lease_key(q.action_id.as_deref(), &q.pod.namespace, &q.pod.name),
                ips: index.pod_addresses(&q.pod.namespace, &q.pod.name),
                expires_at: q.expires_at,
            })
            .collect()
    }
}

/// The lease key of a quarantine: its action id, or for a quarantine made
/// by hand (a label set with kubectl, no action id) the pod's name.
pub fn lease_key(action_id: Option<&str>, namespace: &str, name: &str) -> String {
    match action_id {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => format!("quarantine:{namespace}/{name}"),
    }
}

/// What one round changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FollowRound {
    pub tagged: u64,
    pub untagged: u64,
    pub extended: u64,
    pub errors: u64,
}

/// Remembers the quarantines of the last round, so a quarantine that ended
/// while its pod was already gone (nothing left to resolve the address to)
/// still has its leases released.
#[derive(Debug, Default)]
pub struct Follower {
    last: HashMap<(String, String), String>,
}

impl Follower {
    /// One round: every quarantined pod's leases made true.
    pub async fn round(
        &mut self,
        fw: &Firewalls,
        pods: &[QuarantinedPod],
        log: Option<&DecisionLog>,
    ) -> FollowRound {
        let mut round = FollowRound::default();
        let cfg = fw.config();
        let Some(first) = fw.targets().first() else {
            return round;
        };
        if !cfg.dual_path {
            return round;
        }
        let tag = cfg.quarantine_tag.as_str();
        let now = Utc::now();
        let leases: Vec<Lease> = match fw.state().leases_active(&first.name, now).await {
            Ok(l) => l.into_iter().filter(|l| l.tag == tag).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "quarantine follower: the store did not answer");
                fw.metrics().error("store", "store");
                round.errors += 1;
                return round;
            }
        };
        let mut pass = Pass {
            fw,
            first: &first.name,
            tag,
            leases: &leases,
            now,
            round,
            records: Vec::new(),
        };
        let mut current = HashMap::new();
        for pod in pods {
            current.insert((pod.namespace.clone(), pod.name.clone()), pod.key.clone());
            pass.follow(pod).await;
        }
        // Quarantines gone since the last round: release what they left.
        let ended: HashSet<&String> = self
            .last
            .iter()
            .filter(|(pod, _)| !current.contains_key(*pod))
            .map(|(_, key)| key)
            .collect();
        pass.release_ended(&ended).await;
        let Pass { round, records, .. } = pass;
        self.last = current;
        fw.metrics().drift(
            &first.name,
            "moved",
            round.tagged + round.untagged + round.extended,
        );
        if !records.is_empty() {
            tracing::info!(
                tagged = round.tagged,
                untagged = round.untagged,
                extended = round.extended,
                errors = round.errors,
                "quarantine tags followed their pods"
            );
            if let Some(log) = log {
                log.record(super::reconcile::reconciler_decision(
                    "follow".into(),
                    format!(
                        "quarantine tags followed their pods: {} tagged, {} untagged, {} extended",
                        round.tagged, round.untagged, round.extended
                    ),
                    (round.errors > 0)
                        .then(|| format!("{} quarantine tag changes failed", round.errors)),
                    Vec::new(),
                    records,
                ));
            }
        }
        round
    }
}

/// One round's view of the store, and what it did so far.
struct Pass<'a> {
    fw: &'a Firewalls,
    /// The first target: its leases stand for all targets'.
    first: &'a str,
    tag: &'a str,
    leases: &'a [Lease],
    now: DateTime<Utc>,
    round: FollowRound,
    records: Vec<ActionRecord>,
}

impl Pass<'_> {
    /// Tags the pod's current addresses (or extends their leases), and
    /// untags the addresses it no longer has.
    async fn follow(&mut self, pod: &QuarantinedPod) {
        let now = self.now;
        let ours: Vec<&Lease> = self
            .leases
            .iter()
            .filter(|l| l.action_id.as_deref() == Some(pod.key.as_str()))
            .collect();
        let want_until = pod
            .expires_at
            .unwrap_or(now + ChronoDuration::seconds(OPEN_ENDED_SECS));
        if want_until <= now {
            // Expired: the expiry task releases it (and the release
            // untags); nothing to follow.
            return;
        }
        let ttl = (want_until - now).num_seconds().max(1) as u64;
        let who = format!("{}/{}", pod.namespace, pod.name);
        for ip in &pod.ips {
            let addr = ip.to_string();
            let held = self.leases.iter().find(|l| l.ip == addr);
            let stale_expiry = held.is_some_and(|l| {
                l.action_id.as_deref() == Some(pod.key.as_str())
                    && needs_extension(l.expires_at, pod.expires_at, want_until, now)
            });
            // Held under another action (a playbook's own tag_ip): not ours.
            if held.is_some() && !stale_expiry {
                continue;
            }
            if self
                .fw
                .in_flight(&(self.first.to_string(), addr, self.tag.to_string()))
            {
                continue;
            }
            let result = self
                .fw
                .tag_ip(*ip, self.tag, ttl, Some(&pod.key), true)
                .await;
            match &result {
                Ok(_) if stale_expiry => self.round.extended += 1,
                Ok(_) => self.round.tagged += 1,
                Err(_) => self.round.errors += 1,
            }
            self.records
                .push(record(&pod.key, "tag_ip", *ip, &who, result));
        }
        for lease in ours {
            match lease.ip.parse::<IpAddr>() {
                Ok(ip) if !pod.ips.contains(&ip) => {
                    let rec = untag(self.fw, self.tag, ip, &pod.key, &who, &mut self.round).await;
                    self.records.push(rec);
                }
                _ => {}
            }
        }
    }

    /// Untags what the quarantines in `ended` left.
    async fn release_ended(&mut self, ended: &HashSet<&String>) {
        for lease in self
            .leases
            .iter()
            .filter(|l| l.action_id.as_ref().is_some_and(|k| ended.contains(k)))
        {
            let (Ok(ip), Some(key)) = (lease.ip.parse::<IpAddr>(), lease.action_id.as_deref())
            else {
                continue;
            };
            let who = format!("(ended quarantine {key})");
            let rec = untag(self.fw, self.tag, ip, key, &who, &mut self.round).await;
            self.records.push(rec);
        }
    }
}

/// A lease is moved when the quarantine's expiry changed (extended or cut
/// short), or an open-ended quarantine's lease is past half its time.
fn needs_extension(
    lease_until: DateTime<Utc>,
    quarantine_until: Option<DateTime<Utc>>,
    want_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    match quarantine_until {
        Some(_) => (lease_until - want_until).num_seconds().abs() > EXPIRY_SLACK_SECS,
        None => lease_until - now < ChronoDuration::seconds(OPEN_ENDED_SECS / 2),
    }
}

/// Untags an address a quarantine no longer holds, counted in `round`.
async fn untag(
    fw: &Firewalls,
    tag: &str,
    ip: IpAddr,
    key: &str,
    who: &str,
    round: &mut FollowRound,
) -> ActionRecord {
    let result = fw.untag_ip(ip, tag).await;
    match &result {
        Ok(_) => round.untagged += 1,
        Err(_) => round.errors += 1,
    }
    record(key, "untag_ip", ip, who, result)
}

fn record(
    key: &str,
    action: &str,
    ip: IpAddr,
    who: &str,
    result: Result<String, super::FwError>,
) -> ActionRecord {
    let (status, reason, code) = match result {
        Ok(done) => (ActionStatus::Applied, done, None),
        Err(e) => (
            ActionStatus::Failed,
            e.to_string(),
            Some(e.code().to_string()),
        ),
    };
    ActionRecord {
        action_id: key.to_string(),
        action: action.to_string(),
        target: Some(format!("{ip} {who}")),
        status,
        reason: Some(reason),
        code,
        attempts: 1,
        duration_us: 0,
        at: Utc::now(),
    }
}

impl Firewalls {
    /// Follows quarantined pods every `follow_interval_secs` and whenever
    /// a quarantine changes, until shutdown.
    pub fn spawn_follower(
        self: Arc<Self>,
        index: PodIndex,
        log: Arc<DecisionLog>,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let every = Duration::from_secs(self.config().follow_interval_secs.max(1));
        tokio::spawn(async move {
            let mut changes = index.quarantine_changes();
            let mut follower = Follower::default();
            tokio::select! {
                () = index.ready() => {}
                () = shutdown.cancelled() => return,
            }
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    // Lagged or closed: either way, a full round re-reads all.
                    _ = changes.recv() => {}
                    () = shutdown.cancelled() => return,
                }
                let pods = QuarantinedPod::all(&index);
                tokio::select! {
                    _ = follower.round(&self, &pods, Some(&log)) => {}
                    () = shutdown.cancelled() => return,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::act::firewall_sync::config::FirewallConfig;
    use crate::act::firewall_sync::state::{FirewallState, MemoryState};

    fn pod(ips: &[&str], key: &str) -> QuarantinedPod {
        QuarantinedPod {
            namespace: "shop".into(),
            name: "web".into(),
            key: key.into(),
            ips: ips.iter().map(|i| i.parse().expect("ip")).collect(),
            expires_at: Some(Utc::now() + ChronoDuration::hours(4)),
        }
    }

    #[test]
    fn quarantines_made_by_hand_get_a_key_from_the_pod() {
        assert_eq!(lease_key(Some("a1"), "shop", "web"), "a1");
        assert_eq!(lease_key(None, "shop", "web"), "quarantine:shop/web");
        assert_eq!(lease_key(Some(""), "shop", "web"), "quarantine:shop/web");
    }

    #[test]
    fn leases_move_when_the_quarantine_expiry_moves() {
        let now = Utc::now();
        let until = now + ChronoDuration::hours(4);
        assert!(!needs_extension(until, Some(until), until, now));
        let later = until + ChronoDuration::hours(2);
        assert!(needs_extension(until, Some(later), later, now));
        let open = now + ChronoDuration::hours(20);
        assert!(!needs_extension(open, None, open, now));
        assert!(needs_extension(
            now + ChronoDuration::hours(2),
            None,
            open,
            now
        ));
    }

    /// A follower with a firewall target that does not answer: leases are
    /// kept in the state either way (the reconciler repairs the firewall),
    /// so the state shows what the follower decided.
    async fn firewalls(dual_path: bool) -> (Firewalls, Arc<MemoryState>) {
        let state = Arc::new(MemoryState::default());
        let mut cfg: FirewallConfig = toml::from_str(
            r#"
            dual_path = true
            pod_cidrs = ["10.0.0.0/8"]
            [[targets]]
            name = "fw1"
            url = "https://127.0.0.1:9"
            key = "k"
            timeout_secs = 1
            max_attempts = 1
            "#,
        )
        .expect("config");
        cfg.dual_path = dual_path;
        let fw = Firewalls::new(
            cfg,
            state.clone() as Arc<dyn FirewallState>,
            crate::act::firewall_sync::FirewallMetrics::default(),
        )
        .expect("firewalls");
        (fw, state)
    }

    async fn tagged(state: &MemoryState) -> Vec<(String, Option<String>)> {
        let mut v: Vec<_> = state
            .leases_active("fw1", Utc::now())
            .await
            .expect("leases")
            .into_iter()
            .map(|l| (l.ip, l.action_id))
            .collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn the_tag_follows_the_pods_new_address_and_leaves_other_tags_alone() {
        let (fw, state) = firewalls(true).await;
        // A playbook's own tag on an address the pod will take later.
        fw.tag_ip(
            "10.0.0.9".parse().expect("ip"),
            "riposte-quarantine",
            600,
            Some("pb-1"),
            true,
        )
        .await
        .ok();
        let mut f = Follower::default();
        let log = DecisionLog::new(10);
        f.round(&fw, &[pod(&["10.0.0.1"], "a1")], Some(&log)).await;
        assert_eq!(
            tagged(&state).await,
            vec![
                ("10.0.0.1".into(), Some("a1".into())),
                ("10.0.0.9".into(), Some("pb-1".into()))
            ]
        );
        // The pod's sandbox came back with another address.
        let r = f.round(&fw, &[pod(&["10.0.0.2"], "a1")], Some(&log)).await;
        // The firewall is away: both changes are in the store, counted as
        // failed until the reconciler registers them.
        assert_eq!(r.errors, 2);
        assert_eq!(
            tagged(&state).await,
            vec![
                ("10.0.0.2".into(), Some("a1".into())),
                ("10.0.0.9".into(), Some("pb-1".into()))
            ]
        );
        // Nothing changed: nothing done.
        let idle = f.round(&fw, &[pod(&["10.0.0.2"], "a1")], Some(&log)).await;
        assert_eq!(idle, FollowRound::default());
        // The quarantine ended while the pod was gone: its lease goes too.
        let r = f.round(&fw, &[], Some(&log)).await;
        assert_eq!(r.errors, 1);
        assert_eq!(
            tagged(&state).await,
            vec![("10.0.0.9".into(), Some("pb-1".into()))]
        );
        let recorded = log.recent(10, &Default::default());
        assert!(recorded.iter().all(|d| d.playbook == "firewall-reconciler"));
        assert!(recorded
            .iter()
            .flat_map(|d| &d.actions)
            .any(|a| a.action == "untag_ip" && a.target.as_deref() == Some("10.0.0.1 shop/web")));
    }

    #[tokio::test]
    async fn nothing_is_followed_without_the_dual_path() {
        let (fw, state) = firewalls(false).await;
        let r = Follower::default()
            .round(&fw, &[pod(&["10.0.0.1"], "a1")], None)
            .await;
        assert_eq!(r, FollowRound::default());
        assert!(tagged(&state).await.is_empty());
    }
}
