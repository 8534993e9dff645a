//! Outbound notifications through a durable outbox.
//!
//! A playbook's `notify("<target>", #{…})` intent, and optionally the
//! outcome of an enforced action (`on = ["applied", "refused", "failed"]`),
//! becomes a [`Notification`] written to the store's outbox before the
//! dispatcher reports the action done: from then on it survives restarts.
//! Its id (the `webhook-id`) is derived from the action id, so a redelivered
//! log or a replayed decision stores it once and the receiver sees one id
//! however often it is sent.
//!
//! The [`worker`] delivers: per target it claims due items with a lease,
//! sends them with the target's concurrency and rate limit, and marks each
//! delivered, schedules a retry (exponential backoff with full jitter, at
//! least the receiver's Retry-After), dead-letters it (a permanent refusal,
//! or older than `max_age_secs`), or disables the target (410 Gone).
//!
//! A disabled target stays disabled across restarts (the flag is in the
//! store: the receiver asked to stop, and restarting Riposte does not
//! change its mind); its notifications stay pending. `POST
//! /v1/outbox/targets/{name}/enable` switches it back on, and the pending
//! ones go out.
//!
//! Layout:
//! - [`config`]: the `[notify]` section.
//! - [`build`]: a decision to a [`Notification`].
//! - [`worker`]: claim, deliver, retry, dead-letter, disable.
//! - [`metrics`]: the `riposte_notify_*` series.

pub mod build;
pub mod config;
pub mod group;
pub mod metrics;
pub mod worker;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::Utc;
use riposte_connectors::soar::{Notification, NotifyOn, SoarTarget};
use serde_json::Value;

use crate::decide::decision::{ActionRecord, ActionStatus, Decision, DecisionFilter, DecisionLog};
use crate::decide::intent::Intent;
use crate::error::EngineError;
use crate::store::{NewOutboxItem, Store};

pub use self::config::NotifyConfig;
use self::group::{GroupCommit, GroupError};

/// The most outbox writes one commit takes.
const GROUP_COMMIT_MAX: usize = 256;
pub use self::metrics::NotifyMetrics;

/// One configured target and its worker's shared state.
#[derive(Debug)]
pub struct Slot {
    pub target: SoarTarget,
    on: HashSet<NotifyOn>,
    /// Set on a 410 Gone (and from the store at start), cleared when the
    /// target is re-enabled.
    pub disabled: AtomicBool,
    /// Wakes the worker when a notification is written.
    pub wake: tokio::sync::Notify,
}

/// Why a notify intent was not written to the outbox.
#[derive(Debug, thiserror::Error)]
pub enum NotifyRefusal {
    #[error("no notification target named `{0}` is configured")]
    UnknownTarget(String),
    #[error("target `{0}` does not take notify intents (see its `on` list)")]
    NotSubscribed(String),
    #[error("writing to the outbox failed: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("writing to the outbox failed: {0}")]
    Store(#[source] GroupError),
}

impl NotifyRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            NotifyRefusal::UnknownTarget(_) => "unknown_target",
            NotifyRefusal::NotSubscribed(_) => "not_subscribed",
            NotifyRefusal::Encode(_) | NotifyRefusal::Store(_) => "store",
        }
    }
}

/// The dispatcher's handle on notifications: writes to the outbox and
/// wakes the worker.
#[derive(Debug)]
pub struct Notifier {
    store: Store,
    /// Outbox writes, committed in groups (one disk sync for all the
    /// notifications written at the same moment).
    enqueue: GroupCommit<NewOutboxItem, bool>,
    /// Delivery acknowledgements, committed the same way.
    delivered: GroupCommit<String, ()>,
    slots: BTreeMap<String, Arc<Slot>>,
    config: NotifyConfig,
    metrics: NotifyMetrics,
    /// Signs approval links at send time: the outbox holds them without
    /// their token. Unset, links go out unsigned (and decide nothing).
    links: std::sync::OnceLock<crate::act::approvals::LinkSigner>,
}

impl Notifier {
    /// Builds every configured target (secrets, TLS, SSRF guard); `None`
    /// when there is none. A target that cannot be built stops the start
    /// with the target's key.
    pub fn build(
        config: &NotifyConfig,
        store: Store,
        metrics: NotifyMetrics,
    ) -> Result<Option<Arc<Notifier>>, EngineError> {
        let targets = Self::targets(config)?;
        Ok(Self::from_targets(config, targets, store, metrics))
    }

    /// Builds every configured target: secrets read, TLS material loaded,
    /// the URL checked against the SSRF guard. Nothing is sent.
    pub fn targets(config: &NotifyConfig) -> Result<Vec<SoarTarget>, EngineError> {
        config
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                SoarTarget::build(t).map_err(|e| EngineError::ConfigInvalid {
                    key: format!("notify.targets[{i}]"),
                    message: e.to_string(),
                })
            })
            .collect()
    }

    /// The notifier over `targets` (from [`Notifier::targets`] of the same
    /// config); `None` when there is none.
    pub fn from_targets(
        config: &NotifyConfig,
        targets: Vec<SoarTarget>,
        store: Store,
        metrics: NotifyMetrics,
    ) -> Option<Arc<Notifier>> {
        if targets.is_empty() {
            return None;
        }
        let mut slots = BTreeMap::new();
        for (t, target) in config.targets.iter().zip(targets) {
            metrics
                .disabled
                .get_or_create(&NotifyMetrics::target(&t.name))
                .set(0);
            slots.insert(
                t.name.clone(),
                Arc::new(Slot {
                    target,
                    on: t.on.iter().copied().collect(),
                    disabled: AtomicBool::new(false),
                    wake: tokio::sync::Notify::new(),
                }),
            );
        }
        let writer = store.clone();
        let enqueue = GroupCommit::spawn(GROUP_COMMIT_MAX, move |items: Vec<NewOutboxItem>| {
            let store = writer.clone();
            async move { store.outbox_enqueue_each(&items).await }
        });
        let writer = store.clone();
        let delivered = GroupCommit::spawn(GROUP_COMMIT_MAX, move |ids: Vec<String>| {
            let store = writer.clone();
            async move {
                store
                    .outbox_delivered_many(&ids, Utc::now())
                    .await
                    .map(|_| vec![(); ids.len()])
            }
        });
        Some(Arc::new(Notifier {
            store,
            enqueue,
            delivered,
            slots,
            config: config.clone(),
            metrics,
            links: std::sync::OnceLock::new(),
        }))
    }

    /// Signs approval links with `signer` when notifications are sent.
    pub fn set_link_signer(&self, signer: crate::act::approvals::LinkSigner) {
        let _ = self.links.set(signer);
    }

    pub fn link_signer(&self) -> Option<&crate::act::approvals::LinkSigner> {
        self.links.get()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Marks a notification delivered; returns once that is durable
    /// (committed together with the others delivered at the same moment).
    pub async fn mark_delivered(&self, id: String) -> Result<(), GroupError> {
        self.delivered.submit(id).await
    }

    pub fn metrics(&self) -> &NotifyMetrics {
        &self.metrics
    }

    pub fn slots(&self) -> impl Iterator<Item = &Arc<Slot>> {
        self.slots.values()
    }

    pub fn config(&self) -> &NotifyConfig {
        &self.config
    }

    /// Writes the notification of a `notify` intent to the outbox. Returns
    /// its id once it is durable.
    pub async fn enqueue_intent(
        &self,
        decision: &Decision,
        intent: &Intent,
        target: &str,
        fields: &Value,
        approvals: &[crate::act::approvals::Approval],
    ) -> Result<String, NotifyRefusal> {
        let refuse = |r: NotifyRefusal| {
            self.metrics
                .refused
                .get_or_create(&metrics::ReasonLabel { reason: r.code() })
                .inc();
            Err(r)
        };
        let Some(slot) = self.slots.get(target) else {
            return refuse(NotifyRefusal::UnknownTarget(target.to_string()));
        };
        if !slot.on.contains(&NotifyOn::Notify) {
            return refuse(NotifyRefusal::NotSubscribed(target.to_string()));
        }
        let n = build::for_intent(
            decision,
            intent,
            fields,
            self.config.public_url.as_deref(),
            approvals,
        );
        match self.enqueue(slot, &n).await {
            Ok(()) => Ok(n.id),
            Err(e) => refuse(e),
        }
    }

    async fn enqueue(&self, slot: &Slot, n: &Notification) -> Result<(), NotifyRefusal> {
        let payload = serde_json::to_value(n).map_err(NotifyRefusal::Encode)?;
        let item = NewOutboxItem {
            id: n.id.clone(),
            target: slot.target.name().to_string(),
            payload,
            created_at: Utc::now(),
        };
        let new = self
            .enqueue
            .submit(item)
            .await
            .map_err(NotifyRefusal::Store)?;
        if new {
            self.metrics
                .enqueued
                .get_or_create(&NotifyMetrics::target(slot.target.name()))
                .inc();
            slot.wake.notify_one();
        }
        Ok(())
    }

    /// Tells the targets subscribed to an action's final status about it.
    /// Called from wherever actions finish (synchronously): the write
    /// happens on a task of its own.
    pub fn action_finished(
        self: &Arc<Self>,
        log: &DecisionLog,
        event_id: &str,
        playbook: &str,
        record: &ActionRecord,
    ) {
        let on = match record.status {
            ActionStatus::Applied => NotifyOn::Applied,
            ActionStatus::Refused => NotifyOn::Refused,
            ActionStatus::Failed => NotifyOn::Failed,
            ActionStatus::Queued | ActionStatus::Skipped => return,
        };
        // A notification about a notification would loop.
        if record.action == "notify" || record.action == "log" {
            return;
        }
        // A repeat changed nothing (the pod was quarantined, the tag
        // registered): during a storm the audit record counts them, the
        // SOAR is not told each one.
        if matches!(record.code.as_deref(), Some("repeat" | "coalesced")) {
            return;
        }
        let slots: Vec<Arc<Slot>> = self
            .slots
            .values()
            .filter(|s| s.on.contains(&on))
            .cloned()
            .collect();
        if slots.is_empty() {
            return;
        }
        let filter = DecisionFilter {
            playbook: Some(playbook.to_string()),
            event_id: Some(event_id.to_string()),
            ..Default::default()
        };
        let Some(decision) = log.recent(1, &filter).into_iter().next() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let me = self.clone();
        let record = record.clone();
        let audit = log.sink();
        runtime.spawn(async move {
            // The action's record is durable before the SOAR can be told.
            if let Some(audit) = audit {
                if let Err(e) = audit.flush().await {
                    tracing::warn!(event.id = %decision.event_id, "audit trail not flushed before the outbox write: {e}");
                }
            }
            for slot in slots {
                let Some(n) = build::for_outcome(
                    &decision,
                    &record,
                    slot.target.name(),
                    me.config.public_url.as_deref(),
                ) else {
                    continue;
                };
                if let Err(e) = me.enqueue(&slot, &n).await {
                    me.metrics
                        .refused
                        .get_or_create(&metrics::ReasonLabel { reason: e.code() })
                        .inc();
                    tracing::warn!(event.id = %decision.event_id, target = slot.target.name(), "action notification not written: {e}");
                }
            }
        });
    }

    /// Asks every target subscribed to `approval` to decide `approval`:
    /// the request, with its signed links, is durable in the outbox when
    /// this returns. A target that cannot be written to is logged and
    /// counted; the approval stands either way (it can be decided over the
    /// API).
    pub async fn approval_requested(
        &self,
        decision: &Decision,
        approval: &crate::act::approvals::Approval,
    ) {
        for slot in self
            .slots
            .values()
            .filter(|s| s.on.contains(&NotifyOn::Approval))
        {
            let Some(n) = build::for_approval(
                decision,
                approval,
                slot.target.name(),
                self.config.public_url.as_deref(),
            ) else {
                continue;
            };
            if let Err(e) = self.enqueue(slot, &n).await {
                self.metrics
                    .refused
                    .get_or_create(&metrics::ReasonLabel { reason: e.code() })
                    .inc();
                tracing::warn!(event.id = %decision.event_id, approval = %approval.id,
                    target = slot.target.name(), "approval request not written: {e}");
            }
        }
    }

    /// Switches a disabled target back on (in the store and here).
    pub async fn enable_target(&self, name: &str) -> Result<bool, crate::store::StoreError> {
        let Some(slot) = self.slots.get(name) else {
            return Ok(false);
        };
        self.store.outbox_enable_target(name, Utc::now()).await?;
        slot.disabled.store(false, Ordering::SeqCst);
        self.metrics
            .disabled
            .get_or_create(&NotifyMetrics::target(name))
            .set(0);
        tracing::info!(target = name, "notification target enabled");
        slot.wake.notify_one();
        Ok(true)
    }

    /// Whether `name` is a configured target.
    pub fn has_target(&self, name: &str) -> bool {
        self.slots.contains_key(name)
    }
}
