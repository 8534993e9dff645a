//! Completing what a killed process left in flight.
//!
//! A decision is recorded `pending` ("dispatching") before its actions run,
//! and each outbox-bound action is recorded `queued` before its outbox
//! write; a process killed in between leaves decisions and actions that no
//! one will finish. [`Store::recover_inflight`] gives each its true
//! outcome from what the store itself shows:
//!
//! - a notification or AMQP message in the outbox was written (`applied`;
//!   the outbox worker delivers it, or has);
//! - an EDL entry or a firewall tag lease carrying the action's id was
//!   made (`applied`; the EDL is served from the store, and the reconciler
//!   keeps the firewalls in step with the leases); an EDL value no longer
//!   listed was removed;
//! - an approval request that is still pending stays queued: it is not
//!   interrupted, the approval (or its timeout) finishes it; a decided one
//!   is recorded as decided, unless it was approved and no later decision
//!   carried the intent out (then it is `interrupted`);
//! - everything else, a Kubernetes action above all, is `failed` with the
//!   code `interrupted`: the process stopped before it reported, and the
//!   store cannot tell whether the pod carries it (the pod's labels and
//!   annotations do).
//!
//! Only decisions of dead processes are touched: each decision names the
//! process that recorded it, and processes that heartbeat recently are
//! alive (with PostgreSQL, other replicas are). Decisions from before the
//! instance was recorded are taken only when older than the caller's grace.

use chrono::{DateTime, Utc};

use super::audit::{body_of, dicts_for, outcome_parts, settle, stored_actions, upsert_action};
use super::{micros, page_limit, with_writer, RowExt, Store, StoreError};
use crate::decide::decision::{settled_outcome, ActionRecord, ActionStatus, Outcome};
use crate::decide::intent::{Action, Intent};

/// The fixed code of an action a process stopped in the middle of.
pub const INTERRUPTED: &str = "interrupted";

/// What [`Store::recover_inflight`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Decisions whose record changed.
    pub decisions: usize,
    /// Action records written.
    pub actions: usize,
}

/// A decision still in flight, as stored.
struct Inflight {
    id: i64,
    event_id: String,
    playbook: String,
    outcome: String,
    reason: Option<String>,
    intents: Option<Vec<Intent>>,
    instance: Option<String>,
    at: i64,
}

/// What the store shows about one action.
enum Evidence {
    Final(ActionStatus, String, Option<String>),
    /// Legitimately in flight (a pending approval): left as it is.
    StillQueued,
}

/// Runs a [`Probe`] for decision `$d` in the open transaction `$tx`,
/// answering what it [`Found`]. A macro so it serves both backends.
macro_rules! look {
    ($tx:ident, $d:expr, $probe:expr) => {{
        let value = |sql: &'static str, a: String, b: Option<String>| {
            let q = sqlx::query_scalar::<_, String>(sql).bind(a);
            match b {
                Some(b) => q.bind(b),
                None => q,
            }
        };
        match $probe {
            Probe::Outbox(id) => Found::Value(
                value("SELECT status FROM outbox WHERE id = $1", id, None)
                    .fetch_optional(&mut *$tx)
                    .await?,
            ),
            Probe::EdlListed { list, action_id } => Found::Value(
                value(
                    "SELECT value FROM edl_entries WHERE list = $1 AND action_id = $2",
                    list,
                    Some(action_id),
                )
                .fetch_optional(&mut *$tx)
                .await?,
            ),
            Probe::EdlStill { list, value: v } => Found::Value(
                value(
                    "SELECT value FROM edl_entries WHERE list = $1 AND value = $2",
                    list,
                    Some(v),
                )
                .fetch_optional(&mut *$tx)
                .await?,
            ),
            Probe::Lease(action_id) => Found::Value(
                value(
                    "SELECT ip FROM tag_leases WHERE action_id = $1 AND state = 'active'",
                    action_id,
                    None,
                )
                .fetch_optional(&mut *$tx)
                .await?,
            ),
            Probe::Approval(id) => {
                let row = sqlx::query("SELECT state, on_timeout FROM approvals WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *$tx)
                    .await?;
                match row {
                    None => Found::Approval(None),
                    Some(r) => {
                        let state = r.text("state")?;
                        let applies = approval_applies(&state, &r.text("on_timeout")?);
                        // An approved intent is carried out by a decision
                        // of its own, after this one.
                        let carried = applies
                            && sqlx::query_scalar::<_, i64>(
                                "SELECT e.decision_id FROM audit_event_index e \
                                 JOIN audit_decisions d ON d.id = e.decision_id \
                                 WHERE e.event_id = $1 AND d.playbook = $2 \
                                 AND e.decision_id <> $3 LIMIT 1",
                            )
                            .bind(&$d.event_id)
                            .bind(&$d.playbook)
                            .bind($d.id)
                            .fetch_optional(&mut *$tx)
                            .await?
                            .is_some();
                        Found::Approval(Some((state, applies, carried)))
                    }
                }
            }
            Probe::Nothing => Found::Nothing,
        }
    }};
}

impl Store {
    /// Completes the in-flight decisions of processes not in `live` (this
    /// one always counts as live); decisions recorded without an instance
    /// only when made before `legacy_before`. Each decision is settled in
    /// a transaction of its own, so replicas running this at once write
    /// the same records.
    pub async fn recover_inflight(
        &self,
        live: &[String],
        legacy_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Recovered, StoreError> {
        let mut done = Recovered::default();
        let mut after = 0i64;
        loop {
            let batch = self.inflight_after(after, 200).await?;
            let last = batch.len() < 200;
            for d in batch {
                after = after.max(d.id);
                let dead = match &d.instance {
                    Some(i) => i != self.instance() && !live.iter().any(|l| l == i),
                    None => d.at < micros(legacy_before),
                };
                if !dead {
                    continue;
                }
                let written = self.recover_one(&d, now).await?;
                if written > 0 {
                    done.decisions += 1;
                    done.actions += written;
                }
            }
            if last {
                return Ok(done);
            }
        }
    }

    async fn inflight_after(&self, after: i64, limit: usize) -> Result<Vec<Inflight>, StoreError> {
        self.run("recovery_scan", async {
            with_writer!(self, pool => {
                let rows = sqlx::query(
                    "SELECT id, event_id, playbook, outcome, reason, event_json, intents_json, \
                     packed, packed_dict, instance, at \
                     FROM audit_decisions \
                     WHERE id > $1 AND mode = 'enforce' AND ( \
                       outcome = 'decided' \
                       OR (outcome = 'pending' AND reason = 'dispatching') \
                       OR id IN (SELECT decision_id FROM audit_actions WHERE status = 'queued')) \
                     ORDER BY id LIMIT $2",
                )
                .bind(after)
                .bind(page_limit(limit))
                .fetch_all(pool)
                .await?;
                let dicts = dicts_for!(self, pool, rows);
                rows.iter()
                    .map(|r| {
                        Ok(Inflight {
                            id: r.int("id")?,
                            event_id: r.text("event_id")?,
                            playbook: r.text("playbook")?,
                            outcome: r.text("outcome")?,
                            reason: r.opt_text("reason")?,
                            // Unreadable intents (a newer schema): the
                            // action records alone are completed.
                            intents: body_of(r, &dicts)
                                .ok()
                                .and_then(|(_, intents)| serde_json::from_str(&intents).ok()),
                            instance: r.opt_text("instance")?,
                            at: r.int("at")?,
                        })
                    })
                    .collect()
            })
        })
        .await
    }

    /// Settles one decision; returns how many action records it wrote.
    async fn recover_one(&self, d: &Inflight, now: DateTime<Utc>) -> Result<usize, StoreError> {
        self.run("recovery_settle", async {
            with_writer!(self, pool => {
                let mut tx = pool.begin().await?;
                let mut actions = stored_actions!(tx, d.id)?;
                let mut written = 0;
                for (record, intent) in unanswered(d, &actions, now) {
                    let evidence = match intent {
                        Some(i) => {
                            let probe = Probe::of(i, &record);
                            let found = look!(tx, d, probe);
                            judge(i, found)
                        }
                        None => interrupted("before the action reported"),
                    };
                    let Some(record) = answered(record, evidence, &actions, now) else {
                        continue;
                    };
                    upsert_action!(tx, d.id, &record)?;
                    match actions
                        .iter_mut()
                        .find(|a| a.action_id == record.action_id && a.target == record.target)
                    {
                        Some(a) => *a = record,
                        None => actions.push(record),
                    }
                    written += 1;
                }
                if let Some(parts) = changed_outcome(d, &actions) {
                    settle!(tx, d.id, (parts.0, parts.1.as_deref()))?;
                    written = written.max(1);
                }
                tx.commit().await?;
                Ok(written)
            })
        })
        .await
    }
}

/// What needs an answer: every queued record, and every intent with no
/// record at all.
fn unanswered<'d>(
    d: &'d Inflight,
    actions: &[ActionRecord],
    now: DateTime<Utc>,
) -> Vec<(ActionRecord, Option<&'d Intent>)> {
    let intent_of = |id: &str| d.intents.iter().flatten().find(|i| i.action_id == id);
    let mut todo: Vec<(ActionRecord, Option<&Intent>)> = actions
        .iter()
        .filter(|a| a.status == ActionStatus::Queued)
        .map(|a| (a.clone(), intent_of(&a.action_id)))
        .collect();
    for intent in d.intents.iter().flatten() {
        if matches!(intent.action, Action::Log { .. })
            || actions.iter().any(|a| a.action_id == intent.action_id)
        {
            continue;
        }
        let record = ActionRecord {
            action_id: intent.action_id.clone(),
            action: intent.action.name().to_string(),
            target: Some(record_target(&intent.action)),
            status: ActionStatus::Queued,
            reason: None,
            code: None,
            attempts: 0,
            duration_us: 0,
            at: now,
        };
        todo.push((record, Some(intent)));
    }
    todo
}

/// Where the store keeps the trace of one intent's action.
enum Probe {
    /// The outbox row of this id (a notification or an AMQP message).
    Outbox(String),
    /// An EDL entry this action made.
    EdlListed { list: String, action_id: String },
    /// The EDL entry this action was to remove.
    EdlStill { list: String, value: String },
    /// The firewall tag lease this action took.
    Lease(String),
    /// The approval this action asked for.
    Approval(String),
    /// Nothing the store holds tells.
    Nothing,
}

impl Probe {
    fn of(i: &Intent, record: &ActionRecord) -> Probe {
        let firewall_half = record
            .target
            .as_deref()
            .is_some_and(|t| t.starts_with("firewall "));
        match &i.action {
            Action::Notify { .. } => Probe::Outbox(i.action_id.clone()),
            Action::Publish { .. } => Probe::Outbox(format!("amqp-{}", i.action_id)),
            Action::EdlAdd { list, .. } => Probe::EdlListed {
                list: list.clone(),
                action_id: i.action_id.clone(),
            },
            Action::EdlRemove { list, value } => Probe::EdlStill {
                list: list.clone(),
                value: value.clone(),
            },
            Action::TagIp { .. } => Probe::Lease(i.action_id.clone()),
            Action::Quarantine { .. } if firewall_half => Probe::Lease(i.action_id.clone()),
            Action::Approve { .. } => Probe::Approval(i.action_id.clone()),
            _ => Probe::Nothing,
        }
    }
}

/// What a [`Probe`] found.
enum Found {
    /// The probe's one value (an outbox status, an EDL value, a leased IP),
    /// or none.
    Value(Option<String>),
    /// The approval's state, and whether a later decision carried out the
    /// intent it approved; none when no approval was stored.
    Approval(Option<(String, bool, bool)>),
    Nothing,
}

/// Whether an approval in `state` with `on_timeout` lets its intent run.
fn approval_applies(state: &str, on_timeout: &str) -> bool {
    state == "approved" || (state == "timed-out" && on_timeout == "apply")
}

/// What the store's trace says about intent `i`'s action.
fn judge(i: &Intent, found: Found) -> Evidence {
    let applied = |reason: String| Evidence::Final(ActionStatus::Applied, reason, None);
    match (&i.action, found) {
        (Action::Notify { target, .. }, Found::Value(Some(status))) => applied(format!(
            "written to the outbox as {} ({status} to {target}; found at recovery)",
            i.action_id
        )),
        (Action::Notify { .. }, _) => {
            interrupted("before the notification was written to the outbox")
        }
        (Action::Publish { .. }, Found::Value(Some(status))) => applied(format!(
            "written to the outbox as amqp-{} ({status}; found at recovery)",
            i.action_id
        )),
        (Action::Publish { .. }, _) => interrupted("before the message was written to the outbox"),
        (Action::EdlAdd { list, .. }, Found::Value(Some(v))) => {
            applied(format!("{v} is listed in {list} (found at recovery)"))
        }
        (Action::EdlAdd { .. }, _) => interrupted("before the entry was listed"),
        (Action::EdlRemove { list, value }, Found::Value(None)) => applied(format!(
            "{value} is not listed in {list} (found at recovery)"
        )),
        (Action::EdlRemove { .. }, _) => interrupted("before the entry was removed"),
        (_, Found::Value(Some(ip))) => applied(format!(
            "the tag lease of {ip} is recorded (found at recovery); the reconciler keeps the \
             firewalls in step"
        )),
        (_, Found::Value(None)) => interrupted("before the tag lease was recorded"),
        (_, Found::Approval(None)) => interrupted("before the approval was stored"),
        (_, Found::Approval(Some((state, applies, carried)))) => {
            approval_evidence(&state, applies, carried)
        }
        (_, Found::Nothing) => interrupted(
            "before the action reported; whether it took effect is not \
             known here (for a pod: see its labels and annotations)",
        ),
    }
}

fn approval_evidence(state: &str, applies: bool, carried: bool) -> Evidence {
    if state == "pending" {
        Evidence::StillQueued
    } else if applies && !carried {
        Evidence::Final(
            ActionStatus::Failed,
            format!(
                "interrupted: approval {state}, but Riposte stopped \
                 before the intent was dispatched (POST /v1/actions \
                 carries it out)"
            ),
            Some(INTERRUPTED.to_string()),
        )
    } else {
        Evidence::Final(
            if applies {
                ActionStatus::Applied
            } else {
                ActionStatus::Refused
            },
            format!("approval {state} (found at recovery)"),
            Some(format!("approval_{state}")),
        )
    }
}

/// `record` as `evidence` answers it, or none when there is nothing to
/// write (an approval still pending that already has its record).
fn answered(
    mut record: ActionRecord,
    evidence: Evidence,
    actions: &[ActionRecord],
    now: DateTime<Utc>,
) -> Option<ActionRecord> {
    match evidence {
        Evidence::StillQueued => {
            // Recorded so the decision shows what it waits for.
            if actions.iter().any(|a| a.action_id == record.action_id) {
                return None;
            }
            record.reason = Some("awaiting approval".into());
            record.code = Some("awaiting_approval".into());
        }
        Evidence::Final(status, reason, code) => {
            record.status = status;
            record.reason = Some(reason);
            record.code = code;
            record.at = now;
        }
    }
    Some(record)
}

/// The decision's outcome as its action records now sum up, when it
/// differs from the stored one.
fn changed_outcome(
    d: &Inflight,
    actions: &[ActionRecord],
) -> Option<(&'static str, Option<String>)> {
    let waiting = actions.iter().filter(|a| a.status == ActionStatus::Queued);
    let outcome = if actions.is_empty() {
        // Nothing to sum up: no intent was ever carried out.
        Some(Outcome::Failed {
            message: "interrupted: Riposte stopped before the decision was dispatched".into(),
        })
    } else if waiting.clone().count() > 0 && waiting.clone().all(|a| a.action == "approve") {
        // In flight for a good reason, and now saying which.
        Some(Outcome::Pending {
            reason: "awaiting approval".into(),
        })
    } else {
        settled_outcome(actions)
    };
    let outcome = outcome?;
    let (status, reason) = outcome_parts(&outcome);
    (status != d.outcome || reason != d.reason.as_deref())
        .then(|| (status, reason.map(str::to_owned)))
}

fn interrupted(when: &str) -> Evidence {
    Evidence::Final(
        ActionStatus::Failed,
        format!("interrupted: Riposte stopped {when}"),
        Some(INTERRUPTED.to_string()),
    )
}

/// The target an action's record names, as the dispatcher writes it.
fn record_target(action: &Action) -> String {
    if let Some(target) = crate::act::dispatch::outbox_target(action) {
        return target;
    }
    match action {
        Action::TagIp { .. }
        | Action::UntagIp { .. }
        | Action::EdlAdd { .. }
        | Action::EdlRemove { .. } => crate::act::dispatch::firewall_target(action),
        Action::Approve { intent, .. } => {
            intent.target().map(|t| t.to_string()).unwrap_or_default()
        }
        other => other.target().map(|t| t.to_string()).unwrap_or_default(),
    }
}

/// The heartbeat rows of running `serve` processes (one member set of the
/// partition members table).
pub const INSTANCES: &str = "riposte-instances";
/// How often a process says it is alive and looks for dead ones' work.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(10);
/// Silent this long, a process is dead: its in-flight decisions are
/// completed by whoever runs next. Several heartbeats, so a slow database
/// round does not kill a live replica.
const DEAD_AFTER_SECS: i64 = 60;
/// Decisions recorded before instances were (an older version, perhaps
/// still running during a rolling upgrade on PostgreSQL) are taken once
/// this old. SQLite is one process's file: there they are taken at once.
const LEGACY_GRACE_SECS: i64 = 600;

/// Heartbeats this process and completes dead processes' in-flight
/// decisions: at once at start, then every [`HEARTBEAT`], until shutdown.
pub async fn run(store: Store, shutdown: tokio_util::sync::CancellationToken) {
    loop {
        let now = Utc::now();
        let forget = now - chrono::Duration::seconds(DEAD_AFTER_SECS * 60);
        if let Err(e) = store
            .member_heartbeat(INSTANCES, store.instance(), now, forget)
            .await
        {
            tracing::warn!(error = %e, "instance heartbeat");
        }
        let since = now - chrono::Duration::seconds(DEAD_AFTER_SECS);
        match store.members_live(INSTANCES, since).await {
            Ok(live) => {
                let legacy_before = if store.is_postgres() {
                    now - chrono::Duration::seconds(LEGACY_GRACE_SECS)
                } else {
                    now
                };
                match store.recover_inflight(&live, legacy_before, now).await {
                    Ok(r) if r.decisions > 0 => tracing::warn!(
                        decisions = r.decisions,
                        actions = r.actions,
                        "completed decisions a stopped process left in flight"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "recovering in-flight decisions"),
                }
            }
            Err(e) => tracing::warn!(error = %e, "live instances"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(HEARTBEAT) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::decision::{Decision, EventSummary, Mode, Timings};
    use crate::store::testing;

    fn dispatching(event_id: &str) -> Decision {
        Decision {
            event_id: event_id.into(),
            event: EventSummary {
                kind: "alert".into(),
                dataset: "panos.threat".into(),
                ..EventSummary::default()
            },
            playbook: "pb".into(),
            mode: Mode::Enforce,
            intents: vec![Intent::new(
                event_id,
                "pb",
                Action::Notify {
                    target: "soar".into(),
                    // Distinct decisions: identical ones are one record.
                    fields: serde_json::json!({ "event": event_id }),
                },
            )],
            outcome: Outcome::Pending {
                reason: "dispatching".into(),
            },
            timings: Timings::default(),
            at: Utc::now(),
            actions: Vec::new(),
        }
    }

    async fn set_instance(store: &Store, event_id: &str, instance: Option<&str>) {
        with_writer!(store, pool => {
            sqlx::query("UPDATE audit_decisions SET instance = $1 WHERE event_id = $2")
                .bind(instance)
                .bind(event_id)
                .execute(pool)
                .await
                .expect("update");
        });
    }

    async fn outcome(store: &Store, event_id: &str) -> String {
        let page = store
            .query_audit(&crate::store::AuditQuery {
                event_id: Some(event_id.into()),
                ..Default::default()
            })
            .await
            .expect("query");
        page.entries[0].outcome.as_str().to_string()
    }

    #[tokio::test]
    async fn only_dead_processes_decisions_are_completed() {
        let (store, _dir) = testing::sqlite().await;
        let decisions: Vec<Decision> = ["mine", "live", "dead", "old", "recent"]
            .into_iter()
            .map(dispatching)
            .collect();
        store.append_decisions(&decisions).await.expect("append");
        set_instance(&store, "live", Some("replica-2")).await;
        set_instance(&store, "dead", Some("replica-3")).await;
        set_instance(&store, "old", None).await;
        set_instance(&store, "recent", None).await;
        with_writer!(store, pool => {
            sqlx::query("UPDATE audit_decisions SET at = 0 WHERE event_id = 'old'")
                .execute(pool)
                .await
                .expect("update");
        });
        let now = Utc::now();
        let live = vec!["replica-2".to_string()];
        let grace = now - chrono::Duration::minutes(10);
        let done = store
            .recover_inflight(&live, grace, now)
            .await
            .expect("recover");
        assert_eq!(done.decisions, 2, "{done:?}");
        assert_eq!(
            outcome(&store, "mine").await,
            "pending",
            "this process's own"
        );
        assert_eq!(outcome(&store, "live").await, "pending", "a live replica's");
        assert_eq!(outcome(&store, "dead").await, "failed");
        assert_eq!(
            outcome(&store, "old").await,
            "failed",
            "older than the grace"
        );
        assert_eq!(
            outcome(&store, "recent").await,
            "pending",
            "within the grace"
        );
        let again = store
            .recover_inflight(&live, grace, now)
            .await
            .expect("again");
        assert_eq!(again, Recovered::default(), "nothing left to do");
    }
}
