//! The audit trail: every decision and each of its actions.
//!
//! Decisions are appended, newest last; action records are upserted onto
//! the most recent decision of their event and playbook as the actions
//! finish, and settle the decision's outcome. Queries run newest first and
//! page with an opaque cursor (time and row id of the last entry seen).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    bind_args, decode_cursor, encode_cursor, from_micros, like_escape, micros, page_limit,
    with_reader, with_writer, Arg, Conditions, RowExt, Store, StoreError,
};
use crate::decide::decision::{
    settled_outcome, ActionRecord, ActionStatus, Decision, EventSummary, Mode, Outcome, Timings,
};
use crate::decide::intent::{Action, Target};

/// One write to the audit trail.
#[derive(Debug, Clone)]
pub enum AuditOp {
    /// A new decision (with any actions it already carries).
    Decision(Box<Decision>),
    /// An action's record for the latest decision of `event_id` by
    /// `playbook`, with the decision's settled outcome when known.
    Action {
        event_id: String,
        playbook: String,
        record: Box<ActionRecord>,
        outcome: Option<Outcome>,
    },
}

/// A stored decision, as `GET /v1/audit` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The store's row id (increasing in insertion order).
    pub id: i64,
    pub event_id: String,
    pub event: EventSummary,
    pub playbook: String,
    pub mode: Mode,
    /// The intents as recorded (JSON, so old records stay readable when the
    /// intent schema grows).
    pub intents: serde_json::Value,
    pub outcome: Outcome,
    pub timings: Timings,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ActionRecord>,
}

/// Which audit entries to list. Every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Decided at or after.
    pub from: Option<DateTime<Utc>>,
    /// Decided before.
    pub to: Option<DateTime<Utc>>,
    pub playbook: Option<String>,
    pub event_id: Option<String>,
    /// A target (`shop/checkout-7d9f`, an address, a list value) of an
    /// intent or an action: a substring unless `target_exact`.
    pub target: Option<String>,
    #[serde(default)]
    pub target_exact: bool,
    /// The outcome status (`applied`, `refused`, `dry-run`, …).
    pub outcome: Option<String>,
    /// An intent's action name (`quarantine`, `tag_ip`, …).
    pub action: Option<String>,
    /// Page size (1–1000; default 100).
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of entries, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// What an intent is aimed at, for the target filter.
pub fn intent_targets(action: &Action) -> Vec<String> {
    match action {
        Action::BlockEgress { target, cidr, .. } => vec![target_key(target), cidr.to_string()],
        Action::TagIp { ip, .. } | Action::UntagIp { ip, .. } => vec![ip.to_string()],
        Action::EdlAdd { list, value, .. } | Action::EdlRemove { list, value } => {
            vec![value.clone(), format!("{list}:{value}")]
        }
        Action::Notify { target, .. } => vec![target.clone()],
        Action::Publish { exchange, .. } => vec![exchange.clone()],
        other => other
            .target()
            .map(|t| vec![target_key(t)])
            .unwrap_or_default(),
    }
}

/// A Kubernetes target as action records name it: `namespace/name`, or
/// `namespace/k=v,…` for a selector, or the address of an unresolved pod.
fn target_key(target: &Target) -> String {
    match target {
        Target::Pod { namespace, name } => format!("{namespace}/{name}"),
        Target::Selector { namespace, labels } => {
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{namespace}/{}", labels.join(","))
        }
        Target::Unresolved { ip } => ip.to_string(),
    }
}

/// `"\na\nb\n"`: each item framed, so an exact match is `%\nitem\n%`.
fn framed<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::from("\n");
    for item in items {
        // A newline inside a value would break the framing; none of the
        // validated targets carries one, but a stray one only widens a match.
        out.push_str(&item.replace('\n', " "));
        out.push('\n');
    }
    out
}

pub(crate) fn outcome_parts(outcome: &Outcome) -> (&'static str, Option<&str>) {
    let reason = match outcome {
        Outcome::Pending { reason } | Outcome::Refused { reason } => Some(reason.as_str()),
        Outcome::Failed { message } | Outcome::Error { message } => Some(message.as_str()),
        _ => None,
    };
    (outcome.as_str(), reason)
}

fn outcome_from(status: &str, reason: Option<String>) -> Result<Outcome, StoreError> {
    let reason = reason.unwrap_or_default();
    Ok(match status {
        "decided" => Outcome::Decided,
        "dry-run" => Outcome::DryRun,
        "no-action" => Outcome::NoAction,
        "pending" => Outcome::Pending { reason },
        "applied" => Outcome::Applied,
        "refused" => Outcome::Refused { reason },
        "failed" => Outcome::Failed { message: reason },
        "error" => Outcome::Error { message: reason },
        other => return Err(StoreError::Corrupt(format!("unknown outcome `{other}`"))),
    })
}

fn mode_from(s: &str) -> Result<Mode, StoreError> {
    match s {
        "enforce" => Ok(Mode::Enforce),
        "dry-run" => Ok(Mode::DryRun),
        other => Err(StoreError::Corrupt(format!("unknown mode `{other}`"))),
    }
}

fn status_from(s: &str) -> Result<ActionStatus, StoreError> {
    Ok(match s {
        "queued" => ActionStatus::Queued,
        "applied" => ActionStatus::Applied,
        "refused" => ActionStatus::Refused,
        "failed" => ActionStatus::Failed,
        "skipped" => ActionStatus::Skipped,
        other => {
            return Err(StoreError::Corrupt(format!(
                "unknown action status `{other}`"
            )))
        }
    })
}

const INSERT_DECISION: &str = "INSERT INTO audit_decisions \
     (event_id, playbook, mode, outcome, reason, event_json, intents_json, targets, actions, \
      eval_us, dispatch_us, at, instance) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id";

pub(crate) const UPSERT_ACTION: &str = "INSERT INTO audit_actions \
     (decision_id, action_id, target, action, status, reason, code, attempts, duration_us, at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
     ON CONFLICT (decision_id, action_id, target) DO UPDATE SET \
     action = excluded.action, status = excluded.status, reason = excluded.reason, \
     code = excluded.code, attempts = excluded.attempts, duration_us = excluded.duration_us, \
     at = excluded.at";

/// Appends `$1` (a target and a newline) to decision `$2`'s searchable
/// targets unless `$3` (a LIKE pattern) finds it there already.
const ADD_TARGET: &str = "UPDATE audit_decisions SET targets = targets || $1 \
     WHERE id = $2 AND targets NOT LIKE $3 ESCAPE '\\'";

/// What [`ADD_TARGET`] binds for `target`: the line to append and the
/// pattern that finds it.
fn target_append(target: &str) -> (String, String) {
    (
        format!("{}\n", target.replace('\n', " ")),
        format!("%\n{}\n%", like_escape(target)),
    )
}

const LATEST_DECISION: &str =
    "SELECT id FROM audit_decisions WHERE event_id = $1 AND playbook = $2 \
     ORDER BY id DESC LIMIT 1";

pub(crate) const SETTLE: &str =
    "UPDATE audit_decisions SET outcome = $1, reason = $2 WHERE id = $3";

/// A decision's stored actions, for [`action_from`].
pub(crate) const STORED_ACTIONS: &str =
    "SELECT action_id, target, action, status, reason, code, attempts, duration_us, at \
     FROM audit_actions WHERE decision_id = $1 ORDER BY at, action_id";

/// Writes action record `$record` of decision `$id` in the open
/// transaction `$tx`. A macro, like [`with_writer`](super::with_writer), so
/// one text serves both backends' transactions.
macro_rules! upsert_action {
    ($tx:ident, $id:expr, $record:expr) => {{
        let record: &$crate::decide::decision::ActionRecord = $record;
        sqlx::query($crate::store::audit::UPSERT_ACTION)
            .bind($id)
            .bind(&record.action_id)
            .bind(record.target.as_deref().unwrap_or(""))
            .bind(&record.action)
            .bind(record.status.as_str())
            .bind(record.reason.as_deref())
            .bind(record.code.as_deref())
            .bind(i64::from(record.attempts))
            .bind(record.duration_us.min(i64::MAX as u64) as i64)
            .bind($crate::store::micros(record.at))
            .execute(&mut *$tx)
            .await
    }};
}

/// The stored action records of decision `$id`, read in `$tx`.
macro_rules! stored_actions {
    ($tx:ident, $id:expr) => {{
        let rows = sqlx::query($crate::store::audit::STORED_ACTIONS)
            .bind($id)
            .fetch_all(&mut *$tx)
            .await?;
        rows.iter()
            .map($crate::store::audit::action_from)
            .collect::<Result<Vec<_>, $crate::store::StoreError>>()
    }};
}

/// Sets decision `$id`'s outcome columns to `$parts` (a status and a
/// reason, as [`outcome_parts`] gives them) in `$tx`.
macro_rules! settle {
    ($tx:ident, $id:expr, $parts:expr) => {{
        let (status, reason): (&str, Option<&str>) = $parts;
        sqlx::query($crate::store::audit::SETTLE)
            .bind(status)
            .bind(reason)
            .bind($id)
            .execute(&mut *$tx)
            .await
    }};
}

pub(crate) use {settle, stored_actions, upsert_action};

/// Inserts decision row `$r` (a [`DecisionRow`]) made by `$instance` in
/// `$tx`; answers its id.
macro_rules! insert_decision {
    ($tx:ident, $r:expr, $instance:expr) => {{
        let r: &DecisionRow = $r;
        sqlx::query_scalar::<_, i64>(INSERT_DECISION)
            .bind(&r.event_id)
            .bind(&r.playbook)
            .bind(r.mode)
            .bind(r.outcome)
            .bind(r.reason.as_deref())
            .bind(&r.event_json)
            .bind(&r.intents_json)
            .bind(&r.targets)
            .bind(&r.actions)
            .bind(r.eval_us)
            .bind(r.dispatch_us)
            .bind(r.at)
            .bind($instance)
            .fetch_one(&mut *$tx)
            .await
    }};
}

pub(crate) fn action_from<R: RowExt>(row: &R) -> Result<ActionRecord, StoreError> {
    let target = row.text("target")?;
    Ok(ActionRecord {
        action_id: row.text("action_id")?,
        action: row.text("action")?,
        target: (!target.is_empty()).then_some(target),
        status: status_from(&row.text("status")?)?,
        reason: row.opt_text("reason")?,
        code: row.opt_text("code")?,
        attempts: row.int("attempts")?.clamp(0, u32::MAX as i64) as u32,
        duration_us: row.int("duration_us")?.max(0) as u64,
        at: from_micros(row.int("at")?),
    })
}

/// The `WHERE` clause of an audit listing: `query`'s filters and cursor.
fn audit_conditions(query: &AuditQuery) -> Result<Conditions, StoreError> {
    let mut c = Conditions::default();
    if let Some(from) = query.from {
        let p = c.arg(Arg::Int(micros(from)));
        c.push(format!("at >= {p}"));
    }
    if let Some(to) = query.to {
        let p = c.arg(Arg::Int(micros(to)));
        c.push(format!("at < {p}"));
    }
    for (column, value) in [
        ("playbook", &query.playbook),
        ("event_id", &query.event_id),
        ("outcome", &query.outcome),
    ] {
        if let Some(value) = value {
            let p = c.arg(Arg::Text(value.clone()));
            c.push(format!("{column} = {p}"));
        }
    }
    if let Some(action) = &query.action {
        let p = c.arg(Arg::Text(format!("%\n{}\n%", like_escape(action))));
        c.push(format!("actions LIKE {p} ESCAPE '\\'"));
    }
    if let Some(target) = &query.target {
        let pattern = if query.target_exact {
            format!("%\n{}\n%", like_escape(target))
        } else {
            format!("%{}%", like_escape(target))
        };
        let p = c.arg(Arg::Text(pattern));
        c.push(format!("targets LIKE {p} ESCAPE '\\'"));
    }
    if let Some(cursor) = &query.cursor {
        let (at, id) = decode_cursor(cursor)?;
        let id: i64 = id
            .parse()
            .map_err(|_| StoreError::Invalid("malformed page cursor".into()))?;
        let pa = c.arg(Arg::Int(at));
        let pi = c.arg(Arg::Int(id));
        c.push(format!("(at < {pa} OR (at = {pa} AND id < {pi}))"));
    }
    Ok(c)
}

/// A listed decision, its actions still to be read.
fn entry_from<R: RowExt>(row: &R) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        id: row.int("id")?,
        event_id: row.text("event_id")?,
        event: serde_json::from_str(&row.text("event_json")?)?,
        playbook: row.text("playbook")?,
        mode: mode_from(&row.text("mode")?)?,
        intents: serde_json::from_str(&row.text("intents_json")?)?,
        outcome: outcome_from(&row.text("outcome")?, row.opt_text("reason")?)?,
        timings: Timings {
            eval_us: row.int("eval_us")?.max(0) as u64,
            dispatch_us: row.int("dispatch_us")?.max(0) as u64,
        },
        at: from_micros(row.int("at")?),
        actions: Vec::new(),
    })
}

/// A decision's columns, serialized before the transaction starts.
struct DecisionRow {
    event_id: String,
    playbook: String,
    mode: &'static str,
    outcome: &'static str,
    reason: Option<String>,
    event_json: String,
    intents_json: String,
    targets: String,
    actions: String,
    eval_us: i64,
    dispatch_us: i64,
    at: i64,
}

impl DecisionRow {
    fn of(d: &Decision) -> Result<DecisionRow, StoreError> {
        let (outcome, reason) = outcome_parts(&d.outcome);
        let mut targets: Vec<String> = d
            .intents
            .iter()
            .flat_map(|i| intent_targets(&i.action))
            .collect();
        targets.extend(d.actions.iter().filter_map(|a| a.target.clone()));
        Ok(DecisionRow {
            event_id: d.event_id.clone(),
            playbook: d.playbook.clone(),
            mode: d.mode.as_str(),
            outcome,
            reason: reason.map(str::to_owned),
            event_json: serde_json::to_string(&d.event)
                .map_err(|e| StoreError::Invalid(format!("event summary: {e}")))?,
            intents_json: serde_json::to_string(&d.intents)
                .map_err(|e| StoreError::Invalid(format!("intents: {e}")))?,
            targets: framed(targets.iter().map(String::as_str)),
            actions: framed(d.intents.iter().map(|i| i.action.name())),
            eval_us: d.timings.eval_us.min(i64::MAX as u64) as i64,
            dispatch_us: d.timings.dispatch_us.min(i64::MAX as u64) as i64,
            at: micros(d.at),
        })
    }
}

impl Store {
    /// Appends decisions (and the actions they carry) in one transaction;
    /// returns their row ids in order.
    pub async fn append_decisions(&self, decisions: &[Decision]) -> Result<Vec<i64>, StoreError> {
        let ops: Vec<AuditOp> = decisions
            .iter()
            .map(|d| AuditOp::Decision(Box::new(d.clone())))
            .collect();
        self.apply_audit(&ops).await
    }

    /// Records an action's outcome on the latest decision of `event_id` by
    /// `playbook`, settling the decision's outcome to `outcome` when given.
    /// An action whose decision is not (or no longer) stored is ignored.
    pub async fn record_action(
        &self,
        event_id: &str,
        playbook: &str,
        record: &ActionRecord,
        outcome: Option<&Outcome>,
    ) -> Result<(), StoreError> {
        self.apply_audit(&[AuditOp::Action {
            event_id: event_id.to_owned(),
            playbook: playbook.to_owned(),
            record: Box::new(record.clone()),
            outcome: outcome.cloned(),
        }])
        .await
        .map(|_| ())
    }

    /// Applies audit writes in order in one transaction (the batched
    /// writer's unit of work). Returns the row ids of the new decisions.
    pub async fn apply_audit(&self, ops: &[AuditOp]) -> Result<Vec<i64>, StoreError> {
        // Serialize before taking the connection: a bad value fails alone.
        let mut rows = Vec::with_capacity(ops.len());
        for op in ops {
            rows.push(match op {
                AuditOp::Decision(d) => Some(DecisionRow::of(d)?),
                AuditOp::Action { .. } => None,
            });
        }
        self.run("audit_write", async {
            with_writer!(self, pool => {
                let mut tx = pool.begin().await?;
                let mut ids = Vec::new();
                // Decisions written in this batch, so their actions need no
                // lookup.
                let mut latest: HashMap<(&str, &str), i64> = HashMap::new();
                for (op, row) in ops.iter().zip(&rows) {
                    match (op, row) {
                        (AuditOp::Decision(d), Some(r)) => {
                            let id = insert_decision!(tx, r, self.instance())?;
                            for record in &d.actions {
                                upsert_action!(tx, id, record)?;
                            }
                            latest.insert((d.event_id.as_str(), d.playbook.as_str()), id);
                            ids.push(id);
                        }
                        (AuditOp::Action { event_id, playbook, record, outcome }, _) => {
                            let id = match latest.get(&(event_id.as_str(), playbook.as_str())) {
                                Some(id) => Some(*id),
                                None => sqlx::query_scalar::<_, i64>(LATEST_DECISION)
                                    .bind(event_id)
                                    .bind(playbook)
                                    .fetch_optional(&mut *tx)
                                    .await?,
                            };
                            let Some(id) = id else {
                                tracing::debug!(event.id = %event_id, playbook = %playbook,
                                    "action record for a decision not in the store");
                                continue;
                            };
                            upsert_action!(tx, id, record)?;
                            if let Some(target) = record.target.as_deref().filter(|t| !t.is_empty()) {
                                // Action targets (resolved pods) join the
                                // decision's searchable targets.
                                let (append, pattern) = target_append(target);
                                sqlx::query(ADD_TARGET)
                                    .bind(append)
                                    .bind(id)
                                    .bind(pattern)
                                    .execute(&mut *tx)
                                    .await?;
                            }
                            // Without an outcome the decision has left the
                            // in-memory log: settle it from what is stored,
                            // or it would stay `pending` for good.
                            let settled = match outcome {
                                Some(o) => Some(o.clone()),
                                None => settled_outcome(&stored_actions!(tx, id)?),
                            };
                            if let Some(outcome) = &settled {
                                settle!(tx, id, outcome_parts(outcome))?;
                            }
                        }
                        (AuditOp::Decision(_), None) => {}
                    }
                }
                tx.commit().await?;
                Ok(ids)
            })
        })
        .await
    }

    /// Lists decisions matching `query`, newest first, one page.
    pub async fn query_audit(&self, query: &AuditQuery) -> Result<AuditPage, StoreError> {
        let mut c = audit_conditions(query)?;
        let limit = page_limit(query.limit.unwrap_or(100));
        let pl = c.arg(Arg::Int(limit + 1));
        let sql = format!(
            "SELECT id, event_id, playbook, mode, outcome, reason, event_json, intents_json, \
             eval_us, dispatch_us, at FROM audit_decisions{} ORDER BY at DESC, id DESC LIMIT {pl}",
            c.sql()
        );
        self.run("audit_query", async {
            with_reader!(self, pool => {
                let rows = bind_args!(sqlx::query(&sql), &c.args).fetch_all(pool).await?;
                let mut entries = rows.iter().map(entry_from).collect::<Result<Vec<_>, _>>()?;
                let next_cursor = if entries.len() as i64 > limit {
                    entries.truncate(limit as usize);
                    entries
                        .last()
                        .map(|e| encode_cursor(micros(e.at), &e.id.to_string()))
                } else {
                    None
                };
                if !entries.is_empty() {
                    let mut ids = Conditions::default();
                    let placeholders: Vec<String> =
                        entries.iter().map(|e| ids.arg(Arg::Int(e.id))).collect();
                    let sql = format!(
                        "SELECT decision_id, action_id, target, action, status, reason, code, \
                         attempts, duration_us, at FROM audit_actions WHERE decision_id IN ({}) \
                         ORDER BY at, action_id",
                        placeholders.join(", ")
                    );
                    let rows = bind_args!(sqlx::query(&sql), &ids.args).fetch_all(pool).await?;
                    let by_id: HashMap<i64, usize> =
                        entries.iter().enumerate().map(|(i, e)| (e.id, i)).collect();
                    for row in &rows {
                        let decision_id = row.int("decision_id")?;
                        let record = action_from(row)?;
                        if let Some(i) = by_id.get(&decision_id) {
                            entries[*i].actions.push(record);
                        }
                    }
                }
                Ok(AuditPage { entries, next_cursor })
            })
        })
        .await
    }

    /// Decisions stored (for tests and the bench).
    pub async fn audit_count(&self) -> Result<i64, StoreError> {
        self.run("audit_count", async {
            with_reader!(self, pool => {
                Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM audit_decisions")
                    .fetch_one(pool)
                    .await?)
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::intent::{Intent, Ttl};
    use crate::store::testing;

    fn decision(event: &str, playbook: &str, at_secs: i64) -> Decision {
        let action = Action::Quarantine {
            target: Target::pod("shop", "checkout-7d9f").expect("valid"),
            ttl: Ttl::parse("4h").expect("valid"),
            reason: Some("C2".into()),
        };
        Decision {
            event_id: event.into(),
            event: EventSummary {
                kind: "alert".into(),
                dataset: "panos.threat".into(),
                threat_name: Some("c2".into()),
                severity: Some("critical".into()),
                ..EventSummary::default()
            },
            playbook: playbook.into(),
            mode: Mode::Enforce,
            intents: vec![Intent::new(event, playbook, action)],
            outcome: Outcome::Pending {
                reason: "dispatching".into(),
            },
            timings: Timings {
                eval_us: 12,
                dispatch_us: 3,
            },
            at: DateTime::from_timestamp(at_secs, 0).expect("valid"),
            actions: Vec::new(),
        }
    }

    #[tokio::test]
    async fn decisions_and_actions_round_trip() {
        let (store, _dir) = testing::sqlite().await;
        let d = decision("ev1", "c2", 1_700_000_000);
        store
            .append_decisions(std::slice::from_ref(&d))
            .await
            .expect("append");
        let record = ActionRecord {
            action_id: d.intents[0].action_id.clone(),
            action: "quarantine".into(),
            target: Some("shop/checkout-7d9f".into()),
            status: ActionStatus::Applied,
            reason: Some("labelled".into()),
            code: None,
            attempts: 1,
            duration_us: 900,
            at: d.at,
        };
        store
            .record_action("ev1", "c2", &record, Some(&Outcome::Applied))
            .await
            .expect("action");
        let page = store
            .query_audit(&AuditQuery::default())
            .await
            .expect("query");
        assert_eq!(page.entries.len(), 1);
        let e = &page.entries[0];
        assert_eq!(e.outcome, Outcome::Applied);
        assert_eq!(e.actions, vec![record]);
        assert_eq!(e.event, d.event);
        assert_eq!(e.intents, serde_json::to_value(&d.intents).expect("json"));
        assert!(page.next_cursor.is_none());
    }

    #[tokio::test]
    async fn unknown_decision_action_is_ignored() {
        let (store, _dir) = testing::sqlite().await;
        let record = ActionRecord {
            action_id: "x".into(),
            action: "quarantine".into(),
            target: None,
            status: ActionStatus::Failed,
            reason: None,
            code: None,
            attempts: 3,
            duration_us: 1,
            at: Utc::now(),
        };
        store
            .record_action("nope", "c2", &record, None)
            .await
            .expect("ignored, not an error");
        assert_eq!(store.audit_count().await.expect("count"), 0);
    }

    #[tokio::test]
    async fn bad_cursor_is_invalid() {
        let (store, _dir) = testing::sqlite().await;
        let err = store
            .query_audit(&AuditQuery {
                cursor: Some("zz".into()),
                ..Default::default()
            })
            .await
            .expect_err("bad cursor");
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    }
}
