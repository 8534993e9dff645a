//! The decision record and the dispatcher boundary.
//!
//! For every event a playbook's trigger matched, the runtime produces one
//! [`Decision`]: which playbook, which intents, in which mode. A
//! [`Dispatcher`] carries it out and fills in the outcome; this issue ships
//! the [`DryRunDispatcher`], which applies nothing and records every decision
//! in a bounded in-memory [`DecisionLog`]. Connectors arrive later behind the
//! same trait.

use std::collections::{HashMap, VecDeque};
use std::fmt;

use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

use crate::decide::intent::Intent;

/// Whether a playbook's intents are carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Enforce,
    /// Decide and record, apply nothing. The default for a playbook that
    /// does not say: a new playbook proves itself before it acts.
    #[default]
    DryRun,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::DryRun => "dry-run",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What became of a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Outcome {
    /// Made by the playbook, not yet dispatched.
    Decided,
    /// Recorded only: the playbook or the global switch is in dry-run mode.
    DryRun,
    /// The playbook decided nothing for this event.
    NoAction,
    /// Enforce mode, but nothing can carry it out yet.
    Pending { reason: String },
    /// Carried out.
    Applied,
    /// Refused by a guardrail.
    Refused { reason: String },
    /// A connector failed.
    Failed { message: String },
    /// The playbook failed or ran away; its intents, if any, were dropped.
    Error { message: String },
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Decided => "decided",
            Outcome::DryRun => "dry-run",
            Outcome::NoAction => "no-action",
            Outcome::Pending { .. } => "pending",
            Outcome::Applied => "applied",
            Outcome::Refused { .. } => "refused",
            Outcome::Failed { .. } => "failed",
            Outcome::Error { .. } => "error",
        }
    }
}

/// What the decision record keeps of the event: the firewall crate's one
/// summary, shared with the SOAR notification.
pub use riposte_firewall::EventSummary;

/// How long the decision took, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Timings {
    /// Running the playbook's script (the sandboxed run alone).
    pub eval_us: u64,
    /// Carrying it out (guardrails, connectors); 0 until dispatched.
    #[serde(default)]
    pub dispatch_us: u64,
}

/// One playbook's decision about one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub event_id: String,
    pub event: EventSummary,
    pub playbook: String,
    pub mode: Mode,
    pub intents: Vec<Intent>,
    pub outcome: Outcome,
    pub timings: Timings,
    pub at: DateTime<Utc>,
    /// What became of each intent once dispatched (filled as the actions
    /// finish; empty for dry-run decisions and until then).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ActionRecord>,
}

/// How one intent ended (or stands) after dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionStatus {
    /// Waiting in its target's lane.
    Queued,
    Applied,
    /// A guardrail said no.
    Refused,
    /// The connector failed (after retries, for transient failures).
    Failed,
    /// Nothing is configured that could carry it out.
    Skipped,
}

impl ActionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionStatus::Queued => "queued",
            ActionStatus::Applied => "applied",
            ActionStatus::Refused => "refused",
            ActionStatus::Failed => "failed",
            ActionStatus::Skipped => "skipped",
        }
    }
}

/// One intent's dispatch, for the decision record (and the audit trail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub action_id: String,
    /// The intent's action name (`quarantine`, …).
    pub action: String,
    /// What it was aimed at (`shop/checkout-7d9f`, an address, a list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub status: ActionStatus,
    /// Why it was refused, skipped or failed; what was done when applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The guardrail's or the error's fixed code, for metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub duration_us: u64,
    pub at: DateTime<Utc>,
}

impl Decision {
    /// Sums the actions up into the decision's outcome once none is queued.
    pub fn settle(&mut self) {
        if let Some(outcome) = settled_outcome(&self.actions) {
            self.outcome = outcome;
        }
    }
}

/// The outcome a decision's actions sum up to; `None` while one is queued
/// (or there is none). The audit store settles with it too, for records
/// whose decision is no longer in memory.
pub fn settled_outcome(actions: &[ActionRecord]) -> Option<Outcome> {
    if !settles(actions) {
        return None;
    }
    let first = |status: ActionStatus| {
        actions.iter().find(|a| a.status == status).map(|a| {
            format!(
                "{} {}: {}",
                a.action,
                a.target.as_deref().unwrap_or(""),
                a.reason.as_deref().unwrap_or("")
            )
        })
    };
    Some(if let Some(message) = first(ActionStatus::Failed) {
        Outcome::Failed { message }
    } else if let Some(reason) = first(ActionStatus::Refused) {
        Outcome::Refused { reason }
    } else if actions.iter().any(|a| a.status == ActionStatus::Applied) {
        Outcome::Applied
    } else {
        Outcome::Pending {
            reason: first(ActionStatus::Skipped).unwrap_or_else(|| "nothing to do".into()),
        }
    })
}

/// Whether [`settled_outcome`] has an outcome for `actions`, without
/// making it.
fn settles(actions: &[ActionRecord]) -> bool {
    !actions.is_empty() && actions.iter().all(|a| a.status != ActionStatus::Queued)
}

/// Carries decisions out. Object-safe so that the pipeline holds an
/// `Arc<dyn Dispatcher>` and later issues swap in real connectors.
pub trait Dispatcher: Send + Sync + fmt::Debug {
    /// Acts on the decision (or not) and returns it with its outcome filled.
    fn dispatch(&self, decision: Decision) -> BoxFuture<'_, Decision>;
}

/// Which decisions [`DecisionLog::recent`] returns; every set field must
/// match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionFilter {
    pub playbook: Option<String>,
    pub event_id: Option<String>,
    /// An intent's action name (`quarantine`, `tag_ip`, …).
    pub action: Option<String>,
    /// An outcome status (`dry-run`, `pending`, `error`, …).
    pub outcome: Option<String>,
    pub mode: Option<Mode>,
}

impl DecisionFilter {
    pub fn matches(&self, d: &Decision) -> bool {
        self.playbook.as_ref().is_none_or(|p| *p == d.playbook)
            && self.event_id.as_ref().is_none_or(|e| *e == d.event_id)
            && self
                .action
                .as_ref()
                .is_none_or(|a| d.intents.iter().any(|i| i.action.name() == a))
            && self
                .outcome
                .as_ref()
                .is_none_or(|o| o == d.outcome.as_str())
            && self.mode.is_none_or(|m| m == d.mode)
    }
}

/// Receives every decision and action record the [`DecisionLog`] takes, in
/// order: the store's audit writer. Called under the log's lock, so it must
/// only hand the record over, never wait.
pub trait DecisionSink: Send + Sync + fmt::Debug {
    fn decision(&self, decision: &Decision);
    /// An action's record for the latest decision of `event_id` by
    /// `playbook`, with that decision's settled outcome when the log still
    /// held it.
    fn action(
        &self,
        event_id: &str,
        playbook: &str,
        record: &ActionRecord,
        outcome: Option<&Outcome>,
    );

    /// Waits until everything handed over so far is durable. Sinks that
    /// keep nothing are done at once.
    fn flush(&self) -> BoxFuture<'_, Result<(), FlushError>> {
        Box::pin(async { Ok(()) })
    }
}

/// Why a [`DecisionSink`] could not make its records durable. The sinks
/// live in other stages (the store's audit writer, the AMQP publisher), so
/// their own error travels whole as the source rather than as an enum of
/// this stage's making.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct FlushError(Box<dyn std::error::Error + Send + Sync>);

impl FlushError {
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> FlushError {
        FlushError(Box::new(e))
    }
}

/// The most recent decisions, in memory, bounded: the oldest fall out.
/// With a [`DecisionSink`] set, everything recorded also goes to it (the
/// durable audit trail).
#[derive(Debug)]
pub struct DecisionLog {
    capacity: usize,
    entries: Mutex<Entries>,
    sink: OnceLock<Arc<dyn DecisionSink>>,
    counted: Family<DecisionLabels, Counter>,
}

/// The log's decisions, and where the latest of each event and playbook
/// is: an action's record finds its decision without a scan (during a
/// storm thousands of actions a second, each behind up to thousands of
/// decisions).
#[derive(Debug, Default)]
struct Entries {
    list: VecDeque<Arc<Decision>>,
    /// The sequence number of `list[0]`.
    first: u64,
    /// The sequence number of the latest decision of each event and
    /// playbook (a 128-bit hash of both).
    latest: HashMap<u128, u64>,
}

/// A 128-bit hash of an event id and a playbook: the key under which the
/// decision log and the audit writer remember a decision.
pub(crate) fn event_playbook_key(event_id: &str, playbook: &str) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(event_id.as_bytes());
    h.update(&[0]);
    h.update(playbook.as_bytes());
    h.digest128()
}

impl Entries {
    fn push(&mut self, decision: Arc<Decision>, capacity: usize) {
        if self.list.len() >= capacity {
            if let Some(old) = self.list.pop_front() {
                let key = event_playbook_key(&old.event_id, &old.playbook);
                if self.latest.get(&key) == Some(&self.first) {
                    self.latest.remove(&key);
                }
                self.first += 1;
            }
        }
        let seq = self.first + self.list.len() as u64;
        self.latest.insert(
            event_playbook_key(&decision.event_id, &decision.playbook),
            seq,
        );
        self.list.push_back(decision);
    }

    /// The latest decision of `event_id` by `playbook`, if still held.
    fn latest_mut(&mut self, event_id: &str, playbook: &str) -> Option<&mut Arc<Decision>> {
        let seq = *self.latest.get(&event_playbook_key(event_id, playbook))?;
        let index = usize::try_from(seq.checked_sub(self.first)?).ok()?;
        self.list
            .get_mut(index)
            .filter(|d| d.event_id == event_id && d.playbook == playbook)
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    playbook: String,
    outcome: &'static str,
}

impl DecisionLog {
    /// Default capacity: ten thousand decisions.
    pub const DEFAULT_CAPACITY: usize = 10_000;

    pub fn new(capacity: usize) -> DecisionLog {
        let capacity = capacity.max(1);
        DecisionLog {
            capacity,
            entries: Mutex::new(Entries {
                list: VecDeque::with_capacity(capacity.min(1024)),
                ..Entries::default()
            }),
            sink: OnceLock::new(),
            counted: Family::default(),
        }
    }

    /// Registers `riposte_decisions_total{playbook, outcome}`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            "riposte_decisions",
            "Decisions by playbook (api:<token name> for API requests) and outcome, counted once \
             settled (applied, refused, failed, dry-run, no-action, error; pending when every \
             action was skipped)",
            self.counted.clone(),
        );
    }

    /// Counts a decision once it is settled: at once unless it waits for
    /// its actions, else when the last of them has finished.
    fn count(&self, playbook: &str, outcome: &Outcome) {
        self.counted
            .get_or_create(&DecisionLabels {
                playbook: playbook.to_owned(),
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// Sends everything recorded from now on to `sink` as well. Set once;
    /// false when a sink was already set.
    pub fn set_sink(&self, sink: Arc<dyn DecisionSink>) -> bool {
        self.sink.set(sink).is_ok()
    }

    /// Waits until every record handed to the sink so far is durable: an
    /// action's record is written before its notification is, so a
    /// notification delivered after a crash always has its record.
    pub async fn flush(&self) -> Result<(), FlushError> {
        match self.sink.get() {
            Some(sink) => sink.flush().await,
            None => Ok(()),
        }
    }

    /// The sink, to flush from a task of its own.
    pub fn sink(&self) -> Option<Arc<dyn DecisionSink>> {
        self.sink.get().cloned()
    }

    pub fn record(&self, decision: Decision) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sink) = self.sink.get() {
            sink.decision(&decision);
        }
        if !matches!(decision.outcome, Outcome::Pending { .. } | Outcome::Decided) {
            self.count(&decision.playbook, &decision.outcome);
        }
        entries.push(Arc::new(decision), self.capacity);
    }

    /// Adds (or replaces, by action id and target) an action's record on the
    /// most recent decision of `event_id` by `playbook`, and settles the
    /// decision's outcome. A decision that has already fallen out of the log
    /// is not brought back.
    pub fn record_action(&self, event_id: &str, playbook: &str, record: ActionRecord) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = entries.latest_mut(event_id, playbook) else {
            if let Some(sink) = self.sink.get() {
                sink.action(event_id, playbook, &record, None);
            }
            return;
        };
        let decision = Arc::make_mut(entry);
        // Counted here, not when recorded: it waited for its actions.
        let waiting =
            matches!(decision.outcome, Outcome::Pending { .. }) && !settles(&decision.actions);
        match decision
            .actions
            .iter_mut()
            .find(|a| a.action_id == record.action_id && a.target == record.target)
        {
            // A queued action's own task can finish before the dispatcher
            // reports it queued; the late "queued" must not undo the end.
            Some(existing)
                if record.status == ActionStatus::Queued
                    && existing.status != ActionStatus::Queued =>
            {
                return;
            }
            Some(existing) => *existing = record.clone(),
            None => decision.actions.push(record.clone()),
        }
        // Summed up once: the outcome's message is formatted for each
        // action of a storm's every event.
        if let Some(outcome) = settled_outcome(&decision.actions) {
            decision.outcome = outcome;
            if waiting {
                self.count(playbook, &decision.outcome);
            }
        }
        if let Some(sink) = self.sink.get() {
            sink.action(event_id, playbook, &record, Some(&decision.outcome));
        }
    }

    /// Up to `limit` decisions matching `filter`, newest first.
    pub fn recent(&self, limit: usize, filter: &DecisionFilter) -> Vec<Decision> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .list
            .iter()
            .rev()
            .filter(|d| filter.matches(d))
            .take(limit)
            .map(|d| Decision::clone(d))
            .collect()
    }

    /// Every decision held, oldest first: shared, not copied, so a reader
    /// holds the log's lock only while the pointers are taken.
    pub fn snapshot(&self) -> Vec<Arc<Decision>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.list.iter().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .list
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for DecisionLog {
    fn default() -> Self {
        DecisionLog::new(DecisionLog::DEFAULT_CAPACITY)
    }
}

/// Applies nothing: dry-run decisions are recorded as `dry-run`, enforce
/// ones as `pending` ("no connector configured") until connectors exist.
#[derive(Debug, Clone)]
pub struct DryRunDispatcher {
    log: Arc<DecisionLog>,
}

impl DryRunDispatcher {
    pub fn new(log: Arc<DecisionLog>) -> DryRunDispatcher {
        DryRunDispatcher { log }
    }

    pub fn log(&self) -> &Arc<DecisionLog> {
        &self.log
    }

    /// The synchronous core, for callers outside an async context.
    pub fn dispatch_now(&self, mut decision: Decision) -> Decision {
        let started = std::time::Instant::now();
        if decision.outcome == Outcome::Decided {
            decision.outcome = if decision.intents.is_empty() {
                Outcome::NoAction
            } else {
                match decision.mode {
                    Mode::DryRun => Outcome::DryRun,
                    Mode::Enforce => Outcome::Pending {
                        reason: "no connector configured".to_owned(),
                    },
                }
            };
        }
        decision.timings.dispatch_us = started.elapsed().as_micros() as u64;
        trace_decision(&decision);
        self.log.record(decision.clone());
        decision
    }
}

impl Dispatcher for DryRunDispatcher {
    fn dispatch(&self, decision: Decision) -> BoxFuture<'_, Decision> {
        Box::pin(async move { self.dispatch_now(decision) })
    }
}

/// Logs a decision inside a span carrying the event id. Its `log` intents
/// were written by the playbook runtime, within the playbook's output
/// budget (see `playbook::output`).
pub fn trace_decision(d: &Decision) {
    // Within the playbook's budget at its level, else at debug: a storm's
    // decisions are counted in the audit trail and the metrics, not logged
    // one by one.
    match &d.outcome {
        Outcome::Error { message } => crate::log_budget::budgeted!(
            DECISION_LINES, &d.playbook, WARN,
            event.id = %d.event_id,
            playbook = %d.playbook,
            mode = %d.mode,
            outcome = d.outcome.as_str(),
            "playbook failed: {message}"
        ),
        _ => crate::log_budget::budgeted!(
            DECISION_LINES, &d.playbook, INFO,
            event.id = %d.event_id,
            playbook = %d.playbook,
            mode = %d.mode,
            outcome = d.outcome.as_str(),
            intents = ?IntentNames(&d.intents),
            eval_us = d.timings.eval_us,
            "decision"
        ),
    }
}

/// The intents' action names, formatted only if a line is written.
struct IntentNames<'a>(&'a [Intent]);

impl fmt::Debug for IntentNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|i| i.action.name()))
            .finish()
    }
}

/// The decision lines' budget, per playbook.
static DECISION_LINES: std::sync::LazyLock<crate::log_budget::LogBudget> =
    std::sync::LazyLock::new(Default::default);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::intent::{Action, Target, Ttl};

    fn decision(playbook: &str, mode: Mode, intents: Vec<Intent>) -> Decision {
        Decision {
            event_id: "ev1".into(),
            event: EventSummary {
                kind: "alert".into(),
                dataset: "panos.threat".into(),
                threat_type: Some("spyware".into()),
                severity: Some("critical".into()),
                ..EventSummary::default()
            },
            playbook: playbook.into(),
            mode,
            intents,
            outcome: Outcome::Decided,
            timings: Timings::default(),
            at: DateTime::from_timestamp(0, 0).unwrap_or_default(),
            actions: Vec::new(),
        }
    }

    fn quarantine() -> Intent {
        Intent::new(
            "ev1",
            "pb",
            Action::Quarantine {
                target: Target::pod("shop", "checkout").expect("valid"),
                ttl: Ttl::parse("4h").expect("valid"),
                reason: None,
            },
        )
    }

    #[test]
    fn dry_run_dispatcher_fills_outcomes_by_mode() {
        let log = Arc::new(DecisionLog::new(10));
        let d = DryRunDispatcher::new(log.clone());
        let dry = d.dispatch_now(decision("a", Mode::DryRun, vec![quarantine()]));
        assert_eq!(dry.outcome, Outcome::DryRun);
        let enforce = d.dispatch_now(decision("b", Mode::Enforce, vec![quarantine()]));
        assert_eq!(
            enforce.outcome,
            Outcome::Pending {
                reason: "no connector configured".into()
            }
        );
        let nothing = d.dispatch_now(decision("c", Mode::Enforce, vec![]));
        assert_eq!(nothing.outcome, Outcome::NoAction);
        let mut failed = decision("d", Mode::Enforce, vec![]);
        failed.outcome = Outcome::Error {
            message: "boom".into(),
        };
        assert_eq!(d.dispatch_now(failed).outcome.as_str(), "error");
        assert_eq!(log.len(), 4);
    }

    #[test]
    fn dispatch_through_the_trait_object() {
        let log = Arc::new(DecisionLog::new(10));
        let d: Arc<dyn Dispatcher> = Arc::new(DryRunDispatcher::new(log.clone()));
        let out = futures::executor::block_on(d.dispatch(decision(
            "a",
            Mode::DryRun,
            vec![quarantine()],
        )));
        assert_eq!(out.outcome, Outcome::DryRun);
        assert_eq!(log.recent(10, &DecisionFilter::default()).len(), 1);
    }

    #[test]
    fn a_late_queued_report_never_undoes_a_finished_action() {
        let log = DecisionLog::new(10);
        let mut d = decision("pb", Mode::Enforce, vec![quarantine()]);
        d.outcome = Outcome::Pending {
            reason: "dispatching".into(),
        };
        log.record(d);
        let at = |status| ActionRecord {
            action_id: "a1".into(),
            action: "tag_ip".into(),
            target: Some("10.96.0.10 riposte-c2".into()),
            status,
            reason: None,
            code: None,
            attempts: 0,
            duration_us: 0,
            at: Utc::now(),
        };
        // The action's task finished before the dispatcher said "queued".
        log.record_action("ev1", "pb", at(ActionStatus::Refused));
        log.record_action("ev1", "pb", at(ActionStatus::Queued));
        let actions = &log.recent(1, &DecisionFilter::default())[0].actions;
        assert_eq!(actions.len(), 1);
        assert_eq!(actions[0].status, ActionStatus::Refused);
    }

    #[test]
    fn an_action_finds_the_latest_decision_of_its_event_while_it_is_held() {
        let log = DecisionLog::new(3);
        let pending = |event: &str, playbook: &str| {
            let mut d = decision(playbook, Mode::Enforce, vec![quarantine()]);
            d.event_id = event.into();
            d.outcome = Outcome::Pending {
                reason: "dispatching".into(),
            };
            d
        };
        let applied = ActionRecord {
            action_id: "a1".into(),
            action: "quarantine".into(),
            target: Some("shop/checkout".into()),
            status: ActionStatus::Applied,
            reason: None,
            code: None,
            attempts: 1,
            duration_us: 1,
            at: Utc::now(),
        };
        log.record(pending("ev1", "pb"));
        log.record(pending("ev2", "pb"));
        let mut again = pending("ev1", "pb");
        again.mode = Mode::DryRun;
        log.record(again);
        log.record_action("ev1", "pb", applied.clone());
        let held = log.snapshot();
        assert!(held[0].actions.is_empty(), "not the older decision of ev1");
        assert_eq!(held[2].actions.len(), 1, "the latest decision of ev1");
        assert_eq!(held[2].mode, Mode::DryRun);
        // ev1's first decision and ev2 fall out; ev1's latest stays.
        log.record(pending("ev3", "pb"));
        log.record(pending("ev4", "pb"));
        log.record_action("ev2", "pb", applied.clone());
        log.record_action("ev1", "pb", applied.clone());
        log.record_action("ev4", "other", applied.clone());
        let held = log.snapshot();
        assert_eq!(held.len(), 3);
        assert_eq!(held[0].event_id, "ev1");
        assert_eq!(held[0].actions.len(), 1);
        assert!(
            held[1..].iter().all(|d| d.actions.is_empty()),
            "ev2 is gone, ev4 has no 'other'"
        );
    }

    #[test]
    fn decisions_are_counted_once_by_their_settled_outcome() {
        let log = DecisionLog::new(10);
        let mut registry = Registry::default();
        log.register_metrics(&mut registry);
        let mut none = decision("quiet", Mode::Enforce, vec![]);
        none.outcome = Outcome::NoAction;
        log.record(none);
        let mut acting = decision("c2", Mode::Enforce, vec![quarantine(), quarantine()]);
        acting.outcome = Outcome::Pending {
            reason: "dispatching".into(),
        };
        log.record(acting);
        let record = |id: &str, status| ActionRecord {
            action_id: id.into(),
            action: "quarantine".into(),
            target: Some("shop/checkout".into()),
            status,
            reason: None,
            code: None,
            attempts: 0,
            duration_us: 0,
            at: Utc::now(),
        };
        log.record_action("ev1", "c2", record("a1", ActionStatus::Queued));
        log.record_action("ev1", "c2", record("a2", ActionStatus::Queued));
        log.record_action("ev1", "c2", record("a1", ActionStatus::Applied));
        let text = crate::intake::metrics::encode(&registry);
        assert!(
            !text.contains("playbook=\"c2\""),
            "counted while queued:\n{text}"
        );
        log.record_action("ev1", "c2", record("a2", ActionStatus::Applied));
        // A report after settling (a retry's) counts nothing more.
        log.record_action("ev1", "c2", record("a2", ActionStatus::Applied));
        let text = crate::intake::metrics::encode(&registry);
        assert!(
            text.contains("riposte_decisions_total{playbook=\"c2\",outcome=\"applied\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("riposte_decisions_total{playbook=\"quiet\",outcome=\"no-action\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn log_is_bounded_and_filters_newest_first() {
        let log = DecisionLog::new(3);
        for (i, pb) in ["a", "b", "a", "b"].iter().enumerate() {
            let mut d = decision(
                pb,
                Mode::DryRun,
                if i % 2 == 0 {
                    vec![quarantine()]
                } else {
                    vec![]
                },
            );
            d.event_id = format!("ev{i}");
            log.record(d);
        }
        assert_eq!(log.len(), 3);
        let all = log.recent(10, &DecisionFilter::default());
        let ids: Vec<&str> = all.iter().map(|d| d.event_id.as_str()).collect();
        assert_eq!(ids, ["ev3", "ev2", "ev1"]);
        let only_a = log.recent(
            10,
            &DecisionFilter {
                playbook: Some("a".into()),
                ..Default::default()
            },
        );
        assert_eq!(only_a.len(), 1);
        let with_q = log.recent(
            10,
            &DecisionFilter {
                action: Some("quarantine".into()),
                ..Default::default()
            },
        );
        assert_eq!(with_q.len(), 1);
        assert_eq!(log.recent(1, &DecisionFilter::default()).len(), 1);
    }

    #[test]
    fn decisions_round_trip_through_json() {
        let mut d = decision("a", Mode::Enforce, vec![quarantine()]);
        d.outcome = Outcome::Pending {
            reason: "no connector configured".into(),
        };
        let json = serde_json::to_value(&d).expect("serialize");
        assert_eq!(json["mode"], "enforce");
        assert_eq!(json["outcome"]["status"], "pending");
        let back: Decision = serde_json::from_value(json).expect("deserialize");
        assert_eq!(back, d);
    }
}
