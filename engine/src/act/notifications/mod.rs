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
//! - [`coalesce`]: per-target windows that make one incident of the
//!   notifications about one subject (updates with counts after the first),
//!   merge two playbooks' notifications of one event, and summarize
//!   guardrail refusals.
//! - [`metrics`]: the `riposte_notify_*` series.

pub mod build;
pub mod coalesce;
pub mod config;
pub mod group;
pub mod metrics;
pub mod worker;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::Utc;
use riposte_connectors::soar::{Notification, NotificationKind, NotifyOn, SoarTarget};
use serde_json::Value;

use crate::decide::decision::{ActionRecord, ActionStatus, Decision, DecisionFilter, DecisionLog};
use crate::decide::intent::Intent;
use crate::error::EngineError;
use crate::store::{AuditWriter, NewOutboxItem, NotifyWrite, Store, WindowRow, WindowState};

pub use self::config::NotifyConfig;
use self::group::{GroupCommit, GroupError};

/// The most outbox writes one commit takes.
const GROUP_COMMIT_MAX: usize = 256;
pub use self::metrics::NotifyMetrics;

/// The budget of the line a notification window logs when it starts
/// coalescing, per target (see `log_budget`).
static WINDOW_LINES: std::sync::LazyLock<crate::log_budget::LogBudget> =
    std::sync::LazyLock::new(Default::default);

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

/// What became of a notification: written as `id`, or counted into the
/// open incident `id` of its subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    pub id: String,
    pub coalesced: bool,
}

impl std::fmt::Display for Enqueued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.coalesced {
            write!(f, "counted into incident {} (coalesced)", self.id)
        } else {
            write!(f, "written to the outbox as {}", self.id)
        }
    }
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
    /// Outbox and window writes, committed in groups (one disk sync for
    /// all the notifications written at the same moment); each submitted
    /// list commits whole.
    writes: GroupCommit<Vec<NotifyWrite>, Vec<bool>>,
    /// The open coalescing windows (read back from the store on first use).
    windows: tokio::sync::Mutex<coalesce::Windows>,
    /// Delivery acknowledgements, committed the same way.
    delivered: GroupCommit<String, ()>,
    slots: BTreeMap<String, Arc<Slot>>,
    config: NotifyConfig,
    metrics: NotifyMetrics,
    /// Signs approval links at send time: the outbox holds them without
    /// their token. Unset, links go out unsigned (and decide nothing).
    links: std::sync::OnceLock<crate::act::approvals::LinkSigner>,
    /// When set, window and outbox writes are committed by the audit
    /// writer, in its transactions ([`AuditWriter::notify`]), rather than
    /// by a group commit of their own.
    audit: std::sync::OnceLock<AuditWriter>,
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
        let writes = GroupCommit::spawn(GROUP_COMMIT_MAX, move |units: Vec<Vec<NotifyWrite>>| {
            let store = writer.clone();
            async move {
                let lens: Vec<usize> = units.iter().map(Vec::len).collect();
                let all: Vec<NotifyWrite> = units.into_iter().flatten().collect();
                let mut done = store.notify_write(&all).await?.into_iter();
                Ok(lens
                    .into_iter()
                    .map(|n| done.by_ref().take(n).collect())
                    .collect())
            }
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
            writes,
            windows: tokio::sync::Mutex::new(coalesce::Windows::default()),
            delivered,
            slots,
            config: config.clone(),
            metrics,
            links: std::sync::OnceLock::new(),
            audit: std::sync::OnceLock::new(),
        }))
    }

    /// Commits window and outbox writes through `writer` from now on: on
    /// SQLite one task then holds the store's write connection, and a
    /// storm's notification writes share the audit batches' commits.
    pub fn write_through(&self, writer: AuditWriter) {
        let _ = self.audit.set(writer);
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

    /// Writes the notification of a `notify` intent to the outbox, or
    /// counts it into the open incident of its subject. Returns once that
    /// is durable.
    pub async fn enqueue_intent(
        &self,
        decision: &Decision,
        intent: &Intent,
        target: &str,
        fields: &Value,
        approvals: &[crate::act::approvals::Approval],
    ) -> Result<Enqueued, NotifyRefusal> {
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
            Ok(e) => Ok(e),
            Err(e) => refuse(e),
        }
    }

    /// Commits one list of writes (whole), answering for each whether it
    /// changed anything.
    async fn submit(&self, writes: Vec<NotifyWrite>) -> Result<Vec<bool>, NotifyRefusal> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        match self.audit.get() {
            Some(writer) => writer
                .notify(writes)
                .await
                .map_err(|e| NotifyRefusal::Store(GroupError::Commit(Arc::new(e)))),
            None => self
                .writes
                .submit(writes)
                .await
                .map_err(NotifyRefusal::Store),
        }
    }

    fn item(
        slot: &Slot,
        n: &Notification,
        now: chrono::DateTime<Utc>,
    ) -> Result<NewOutboxItem, NotifyRefusal> {
        Ok(NewOutboxItem {
            id: n.id.clone(),
            target: slot.target.name().to_string(),
            payload: serde_json::to_value(n).map_err(NotifyRefusal::Encode)?,
            created_at: now,
        })
    }

    /// A window's write, with the window itself as its state (serialized
    /// by the writer if it is the newest of its batch).
    fn row(w: coalesce::Window, now: chrono::DateTime<Utc>) -> NotifyWrite {
        NotifyWrite::Window(WindowRow {
            id: w.id.clone(),
            target: w.target.clone(),
            subject: w.subject.clone(),
            window_end: w.end,
            closed: w.closed,
            rev: i64::try_from(w.rev).unwrap_or(i64::MAX),
            state: WindowState::pending(w),
            updated_at: now,
        })
    }

    /// The coalescing settings of target `name`; `None` when it does not
    /// coalesce.
    fn settings(&self, name: &str) -> Option<coalesce::Settings> {
        let cfg = self.slots.get(name)?.target.config();
        (cfg.coalesce_window_secs > 0).then(|| coalesce::Settings {
            window: chrono::Duration::seconds(cfg.coalesce_window_secs as i64),
            flush: chrono::Duration::seconds(cfg.coalesce_flush_secs.max(1) as i64),
        })
    }

    /// Reads the open windows back after a start, once.
    async fn load_windows(&self, w: &mut coalesce::Windows) {
        if w.loaded {
            return;
        }
        match self.store.notify_windows_open().await {
            Ok(rows) => {
                let mut windows: Vec<coalesce::Window> = Vec::new();
                for r in rows
                    .into_iter()
                    .filter(|r| self.slots.contains_key(&r.target))
                {
                    match r.state.into_value().and_then(serde_json::from_value) {
                        Ok(window) => windows.push(window),
                        Err(e) => {
                            self.metrics.windows_unreadable.inc();
                            tracing::warn!(window = %r.id, target = %r.target, "a stored notification window cannot be read back (a new incident opens for its subject): {e}");
                        }
                    }
                }
                if !windows.is_empty() {
                    tracing::info!(
                        windows = windows.len(),
                        "notification windows open before the restart go on"
                    );
                }
                w.restore(windows);
            }
            Err(e) => tracing::warn!("reading the open notification windows: {e}"),
        }
    }

    fn count_windows(&self, w: &coalesce::Windows) {
        let open = w.open_by_target();
        for name in self.slots.keys() {
            self.metrics
                .windows
                .get_or_create(&NotifyMetrics::target(name))
                .set(open.get(name).copied().unwrap_or(0));
        }
    }

    /// Writes `n` for `slot`: at once, or coalesced into its subject's
    /// window (see [`coalesce`]).
    async fn enqueue(&self, slot: &Slot, n: &Notification) -> Result<Enqueued, NotifyRefusal> {
        let name = slot.target.name();
        let now = Utc::now();
        let settings = self.settings(name).filter(|_| coalesce::coalesces(n));
        let Some(settings) = settings else {
            let done = self
                .submit(vec![NotifyWrite::Enqueue {
                    item: Self::item(slot, n, now)?,
                    due: now,
                }])
                .await?;
            if done.first() == Some(&true) {
                self.notified(slot, 1);
            }
            return Ok(Enqueued {
                id: n.id.clone(),
                coalesced: false,
            });
        };
        let (observed, writes) = {
            let mut w = self.windows.lock().await;
            self.load_windows(&mut w).await;
            let mut o = w.observe(name, n, now, settings);
            // Only an opening changes the count here (windows close in
            // `flush_due`): no walk over every window per notification.
            if o.opened {
                self.count_windows(&w);
            }
            let mut writes = Vec::new();
            for m in &o.notify {
                // The opening notification of a playbook's notify waits a
                // moment for another playbook's of the same event to join.
                let due = if o.opened && m.id == o.incident && m.kind == NotificationKind::Notify {
                    now + chrono::Duration::milliseconds(self.config.event_merge_ms as i64)
                } else {
                    now
                };
                writes.push(NotifyWrite::Enqueue {
                    item: Self::item(slot, m, now)?,
                    due,
                });
            }
            if let Some(a) = &o.amend {
                writes.push(NotifyWrite::Amend {
                    id: a.id.clone(),
                    payload: serde_json::to_value(a).map_err(NotifyRefusal::Encode)?,
                    now,
                });
            }
            for win in std::mem::take(&mut o.windows) {
                writes.push(Self::row(win, now));
            }
            (o, writes)
        };
        let done = match self.submit(writes).await {
            Ok(done) => done,
            Err(e) => {
                // Memory ran ahead of the store: read it back next time.
                self.windows.lock().await.reset();
                return Err(e);
            }
        };
        let new = done
            .iter()
            .take(observed.notify.len())
            .filter(|d| **d)
            .count();
        self.notified(slot, new);
        if observed.amend.is_some() && done.get(observed.notify.len()) == Some(&false) {
            // The opening notification was already on its way: the joined
            // playbook goes in the next update.
            let row = {
                let mut w = self.windows.lock().await;
                w.amend_failed(name, &observed.incident)
            };
            if let Some(row) = row {
                if let Err(e) = self.submit(vec![Self::row(row, now)]).await {
                    tracing::warn!(event.id = %n.event.id, "saving a notification window: {e}");
                }
            }
        }
        if !observed.opened {
            self.metrics
                .coalesced
                .get_or_create(&NotifyMetrics::target(name))
                .inc();
        }
        if observed.first_coalesced {
            // Once per window, never per event, and within the target's
            // budget: a storm touches many subjects.
            crate::log_budget::budgeted!(
                WINDOW_LINES, name, INFO,
                event.id = %n.event.id, target = name, incident = %observed.incident,
                window_secs = settings.window.num_seconds(), flush_secs = settings.flush.num_seconds(),
                "notifications about one subject: counting them into one incident, updates at most once per flush interval"
            );
        }
        Ok(Enqueued {
            id: observed.incident,
            coalesced: !observed.opened,
        })
    }

    /// Counts `new` notifications written for `slot` and wakes its worker.
    fn notified(&self, slot: &Slot, new: usize) {
        if new == 0 {
            return;
        }
        self.metrics
            .enqueued
            .get_or_create(&NotifyMetrics::target(slot.target.name()))
            .inc_by(new as u64);
        slot.wake.notify_one();
    }

    /// Writes the updates due at `now` (and the last ones of windows that
    /// closed): called by the worker's flush loop.
    pub async fn flush_due(&self, now: chrono::DateTime<Utc>) {
        let writes = {
            let mut w = self.windows.lock().await;
            self.load_windows(&mut w).await;
            let (notify, windows) = w.due(now, |t| {
                self.settings(t).unwrap_or(coalesce::Settings {
                    window: chrono::Duration::zero(),
                    flush: chrono::Duration::zero(),
                })
            });
            self.count_windows(&w);
            let mut writes = Vec::with_capacity(notify.len() + windows.len());
            for (target, n) in &notify {
                let Some(slot) = self.slots.get(target) else {
                    continue;
                };
                match Self::item(slot, n, now) {
                    Ok(item) => {
                        writes.push((Some(slot.clone()), NotifyWrite::Enqueue { item, due: now }))
                    }
                    Err(e) => tracing::warn!(id = %n.id, "notification update not written: {e}"),
                }
            }
            for win in windows {
                writes.push((None, Self::row(win, now)));
            }
            writes
        };
        if writes.is_empty() {
            return;
        }
        let (slots, writes): (Vec<Option<Arc<Slot>>>, Vec<NotifyWrite>) =
            writes.into_iter().unzip();
        match self.submit(writes).await {
            Ok(done) => {
                for (slot, new) in slots.iter().zip(done) {
                    if let (Some(slot), true) = (slot, new) {
                        self.notified(slot, 1);
                    }
                }
            }
            Err(e) => {
                tracing::warn!("notification updates not written, retried: {e}");
                self.windows.lock().await.reset();
            }
        }
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
