//! The reconciler: every interval, for each firewall, the store's leases
//! against what the firewall reports (paged read-back).
//!
//! - An active lease whose tag the firewall does not hold (a reboot forgot
//!   a non-persistent tag, a registration failed) is registered again:
//!   drift `missing`.
//! - A long lease whose firewall-side timeout is about to lapse is
//!   registered again with a fresh timeout: `refreshed`.
//! - A released or expired lease the firewall still holds is unregistered:
//!   drift `stale`; then it is marked unregistered in the store.
//!
//! Every repair is counted (`riposte_firewall_drift_total{firewall,kind}`)
//! and recorded in the decision log (and so the audit trail) as a decision
//! of the `firewall-reconciler`. A firewall that does not answer is
//! counted and skipped until the next round; nothing leaves the store.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use riposte_firewall::edl::IpEntry;
use riposte_firewall::xmlapi::Tag;
use tokio_util::sync::CancellationToken;

use super::state::Lease;
use super::{Firewalls, Target};
use crate::decide::decision::{
    ActionRecord, ActionStatus, Decision, DecisionLog, EventSummary, Mode, Outcome, Timings,
};
use crate::decide::intent::{Action, Intent, Ttl};

/// What one round did on one firewall.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    pub missing: u64,
    pub refreshed: u64,
    pub stale: u64,
    pub errors: u64,
}

/// (address, tag) pairs a firewall reports.
type Held = HashSet<(String, String)>;

/// A round's counts, and the repairs it records in the decision log.
#[derive(Default)]
struct Repairs {
    round: Round,
    actions: Vec<ActionRecord>,
    intents: Vec<Intent>,
}

impl Repairs {
    fn push(&mut self, action: ActionRecord, intent: Intent) {
        self.actions.push(action);
        self.intents.push(intent);
    }
}

/// The audit name of the reconciler's decisions.
pub const PLAYBOOK: &str = "firewall-reconciler";

impl Firewalls {
    /// One round on one firewall.
    pub async fn reconcile_target(&self, target: &Target, log: Option<&DecisionLog>) -> Round {
        let now = Utc::now();
        let mut repairs = Repairs::default();
        let fw = target.name.as_str();
        // Leases first, then the firewall: a registration that completes in
        // between is then seen as held, never as missing.
        let active = match self.state.leases_active(fw, now).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(firewall = fw, error = %e, "reconciler: store unreadable");
                self.metrics.error("store", "store");
                repairs.round.errors += 1;
                return repairs.round;
            }
        };
        let reported = match target.batcher.client().registered(None).await {
            Ok(r) => r,
            Err(e) => {
                self.count_error(fw, &e);
                repairs.round.errors += 1;
                return repairs.round;
            }
        };
        let held: Held = reported
            .iter()
            .flat_map(|r| r.tags.iter().map(move |t| (r.ip.clone(), t.clone())))
            .collect();
        for lease in &active {
            self.register_again(target, lease, &held, now, &mut repairs)
                .await;
        }
        let to_unregister = self
            .state
            .leases_to_unregister(fw, now)
            .await
            .unwrap_or_default();
        for lease in &to_unregister {
            self.unregister_stale(target, lease, &held, now, &mut repairs)
                .await;
        }
        let Repairs {
            round,
            actions,
            intents,
        } = repairs;
        self.metrics.drift(fw, "missing", round.missing);
        self.metrics.drift(fw, "refreshed", round.refreshed);
        self.metrics.drift(fw, "stale", round.stale);
        if !intents.is_empty() {
            tracing::info!(
                firewall = fw,
                missing = round.missing,
                refreshed = round.refreshed,
                stale = round.stale,
                errors = round.errors,
                "reconciled"
            );
            if let Some(log) = log {
                log.record(drift_decision(fw, intents, actions, &round));
            }
        }
        round
    }

    /// An active lease: registered again when the firewall lacks it
    /// (`missing`) or its firewall-side timeout is about to lapse
    /// (`refreshed`).
    async fn register_again(
        &self,
        target: &Target,
        lease: &Lease,
        held: &Held,
        now: DateTime<Utc>,
        repairs: &mut Repairs,
    ) {
        let fw = target.name.as_str();
        let (Ok(ip), Ok(tag)) = (lease.ip.parse::<IpEntry>(), Tag::new(&lease.tag)) else {
            return;
        };
        let key = (fw.to_string(), lease.ip.clone(), lease.tag.clone());
        if self.in_flight(&key) {
            return;
        }
        let margin = ChronoDuration::seconds(self.config.refresh_margin_secs as i64);
        let is_held = held.contains(&(lease.ip.clone(), lease.tag.clone()));
        let until = self.registered_until(&key).unwrap_or_else(|| {
            lease.updated_at
                + ChronoDuration::seconds(super::firewall_timeout(
                    lease.updated_at,
                    lease.expires_at,
                ) as i64)
        });
        let kind = if !is_held {
            "missing"
        } else if until - margin <= now && lease.expires_at - until > ChronoDuration::seconds(60) {
            // The lease outlives the firewall's (30-day) timeout.
            "refreshed"
        } else {
            return;
        };
        if kind == "refreshed" {
            // Forget the old registration so register_on unregisters
            // first: the firewall keeps a tag's first timeout.
            let _ = self.unregister_on(target, ip, &tag).await;
        }
        let result = self
            .register_on(target, ip, &tag, lease.expires_at, now)
            .await;
        match &result {
            Ok(()) if kind == "missing" => repairs.round.missing += 1,
            Ok(()) => repairs.round.refreshed += 1,
            Err(_) => repairs.round.errors += 1,
        }
        if let (Ok(ttl), IpEntry::Addr(addr)) = (
            Ttl::from_secs((lease.expires_at - now).num_seconds().max(1) as u64),
            ip,
        ) {
            let intent = Intent::new(
                &format!("reconcile:{fw}"),
                PLAYBOOK,
                Action::TagIp {
                    ip: addr,
                    tag: lease.tag.clone(),
                    ttl,
                    reason: Some(format!("reconciler: {kind} on {fw}")),
                },
            );
            repairs.push(action_record(&intent, fw, kind, &result), intent);
        }
    }

    /// A released or expired lease: unregistered when the firewall still
    /// holds it (`stale`), then marked unregistered in the store.
    async fn unregister_stale(
        &self,
        target: &Target,
        lease: &Lease,
        held: &Held,
        now: DateTime<Utc>,
        repairs: &mut Repairs,
    ) {
        let fw = target.name.as_str();
        let (Ok(ip), Ok(tag)) = (lease.ip.parse::<IpEntry>(), Tag::new(&lease.tag)) else {
            return;
        };
        if held.contains(&(lease.ip.clone(), lease.tag.clone())) {
            let result = self.unregister_on(target, ip, &tag).await;
            match &result {
                Ok(()) => repairs.round.stale += 1,
                Err(_) => {
                    repairs.round.errors += 1;
                    return;
                }
            }
            if let IpEntry::Addr(addr) = ip {
                let intent = Intent::new(
                    &format!("reconcile:{fw}"),
                    PLAYBOOK,
                    Action::UntagIp {
                        ip: addr,
                        tag: lease.tag.clone(),
                    },
                );
                repairs.push(action_record(&intent, fw, "stale", &result), intent);
            }
        }
        let _ = self
            .state
            .lease_mark_unregistered(fw, &lease.ip, &lease.tag, now)
            .await;
    }

    /// One round on every firewall.
    pub async fn reconcile(&self, log: Option<&DecisionLog>) -> Vec<(String, Round)> {
        let mut out = Vec::new();
        for t in &self.targets {
            out.push((t.name.clone(), self.reconcile_target(t, log).await));
        }
        out
    }

    /// Reconciles every `reconcile_interval_secs` until shutdown (a first
    /// round at once: a restart repairs what happened while down).
    pub fn spawn_reconciler(
        self: Arc<Self>,
        log: Arc<DecisionLog>,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let every = Duration::from_secs(self.config.reconcile_interval_secs.max(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = shutdown.cancelled() => return,
                }
                tokio::select! {
                    _ = self.reconcile(Some(&log)) => {}
                    () = shutdown.cancelled() => return,
                }
            }
        })
    }
}

fn action_record(
    intent: &Intent,
    fw: &str,
    kind: &str,
    result: &Result<(), riposte_firewall::xmlapi::XmlApiError>,
) -> ActionRecord {
    let (status, reason, code) = match result {
        Ok(()) => (
            ActionStatus::Applied,
            format!("drift {kind} repaired on {fw}"),
            None,
        ),
        Err(e) => (
            ActionStatus::Failed,
            format!("drift {kind} on {fw}: {e}"),
            Some(e.kind().to_string()),
        ),
    };
    ActionRecord {
        action_id: intent.action_id.clone(),
        action: intent.action.name().to_string(),
        target: Some(format!("{fw}:{}", intent.action.summary())),
        status,
        reason: Some(reason),
        code,
        attempts: 1,
        duration_us: 0,
        at: Utc::now(),
    }
}

fn drift_decision(
    fw: &str,
    intents: Vec<Intent>,
    actions: Vec<ActionRecord>,
    round: &Round,
) -> Decision {
    reconciler_decision(
        format!("reconcile:{fw}"),
        format!(
            "drift on {fw}: {} missing, {} refreshed, {} stale",
            round.missing, round.refreshed, round.stale
        ),
        (round.errors > 0).then(|| format!("{} repairs failed on {fw}", round.errors)),
        intents,
        actions,
    )
}

/// A decision of the `firewall-reconciler` (drift repairs, and the
/// follower's tag moves), for the decision log and the audit trail.
pub(super) fn reconciler_decision(
    id_prefix: String,
    summary: String,
    failed: Option<String>,
    intents: Vec<Intent>,
    actions: Vec<ActionRecord>,
) -> Decision {
    let now = Utc::now();
    Decision {
        event_id: format!("{id_prefix}:{}", now.timestamp_micros()),
        event: EventSummary {
            kind: "reconcile".into(),
            dataset: "riposte.firewall".into(),
            threat_name: Some(summary),
            ..EventSummary::default()
        },
        playbook: PLAYBOOK.into(),
        mode: Mode::Enforce,
        intents,
        outcome: match failed {
            Some(message) => Outcome::Failed { message },
            None => Outcome::Applied,
        },
        timings: Timings::default(),
        at: now,
        actions,
    }
}
