//! The audit trail: every decision and each of its actions.
//!
//! Decisions are appended, newest last; action records are upserted onto
//! the most recent decision of their event and playbook as the actions
//! finish, and settle the decision's outcome. Queries run newest first and
//! page with an opaque cursor (time and row id of the last entry seen).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::audit_stage::{
    action_states_sql, binds, chunks, framed_contains, insert_records_sql, placeholders,
    update_coalesced_actions_sql, upsert_actions_sql, CoalescedRow, PendingUpserts, RowWrite,
    Staged, StagedRecord, StoredRow,
};
use super::event_journal::{self, index_key, Journal};
use super::notify::{notify_statements, NotifyJob, PreparedNotify};
use super::packing::{self, Packer, NO_DICT};
use super::recent::Recent;
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
    /// A new decision (with any actions it already carries); made by
    /// [`AuditOp::decision`].
    Decision(Box<Queued>),
    /// An action's record for the latest decision of `event_id` by
    /// `playbook`, with the decision's settled outcome when known.
    Action {
        event_id: String,
        playbook: String,
        record: Box<ActionRecord>,
        outcome: Option<Outcome>,
    },
    /// Notification writes (windows, outbox items) to commit with the
    /// batch ([`AuditWriter::notify`](super::AuditWriter::notify)).
    Notify(Arc<super::notify::NotifyJob>),
}

/// A decision on its way to the store, with the keys it is recorded under.
/// They are hashed when the decision is handed over, on the pipeline's
/// threads, not by the one task that writes every record.
#[derive(Debug, Clone)]
pub struct Queued {
    pub decision: Decision,
    /// Action records (with the decision's outcome then) reported while the
    /// decision still waited in the writer's queue: applied right after it,
    /// as their own [`AuditOp::Action`]s would have been. In a storm most
    /// actions finish at once (a repeat, a skip), and a queued operation
    /// each was most of the writer's work.
    pub folded: Vec<(ActionRecord, Option<Outcome>)>,
    coalesce_key: i64,
    playbook_key: i64,
    asks_approval: bool,
}

impl AuditOp {
    pub fn decision(decision: Decision) -> AuditOp {
        AuditOp::Decision(Box::new(Queued {
            coalesce_key: coalesce_key(&decision),
            playbook_key: playbook_key(&decision.playbook),
            asks_approval: decision
                .intents
                .iter()
                .any(|i| matches!(i.action, Action::Approve { .. })),
            decision,
            folded: Vec::new(),
        }))
    }
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
    /// When the first event counted in this record was decided.
    pub at: DateTime<Utc>,
    /// Events counted in this record: identical decisions (same playbook,
    /// mode and intents) within the coalescing window are one record.
    #[serde(default = "one")]
    pub count: u64,
    /// When the last event counted in this record was decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_at: Option<DateTime<Utc>>,
    /// The first few event ids counted (the first one's summary is
    /// `event`); every other one finds this record through
    /// `GET /v1/audit?event_id=`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ActionRecord>,
}

fn one() -> u64 {
    1
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
    /// An event id: the record it was counted in, whether it was the
    /// record's first event or a later one.
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
      eval_us, dispatch_us, at, instance, coalesce_key, count, last_at, window_end, sample, \
      packed, packed_dict) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 1, $12, $15, $16, $17, $18) \
     RETURNING id";

const NEWEST_DICT: &str = "SELECT id, dict FROM audit_dicts ORDER BY id DESC LIMIT 1";
const INSERT_DICT: &str = "INSERT INTO audit_dicts (dict, created_at) VALUES ($1, $2) RETURNING id";
/// A dictionary a reader has not loaded yet.
pub(crate) const DICT_BY_ID: &str = "SELECT dict FROM audit_dicts WHERE id = $1";

/// Reserves `$1` ids of the records' identity sequence (PostgreSQL), for
/// the records a batch opens.
const RESERVE_PG: &str =
    "SELECT nextval(pg_get_serial_sequence('audit_decisions', 'id')) FROM generate_series(1, $1)";

/// Ids PostgreSQL reserves at a time: those a batch leaves unused are
/// gaps in the sequence.
const PG_RESERVE_MAX: i64 = 32;

/// Moves SQLite's AUTOINCREMENT counter `$1` ids on: the ids up to the new
/// value are the batch's. The write takes the database's write lock, so
/// no other writer hands them out; the batch gives back what it did not
/// use ([`GIVE_BACK_SQLITE`]) before it commits.
const RESERVE_SQLITE: &str =
    "UPDATE sqlite_sequence SET seq = seq + $1 WHERE name = 'audit_decisions' RETURNING seq";

/// [`RESERVE_SQLITE`] on a store that never had a record.
const START_SQLITE: &str = "INSERT INTO sqlite_sequence (name, seq) \
     SELECT 'audit_decisions', COALESCE(MAX(id), 0) + $1 FROM audit_decisions RETURNING seq";

const GIVE_BACK_SQLITE: &str = "UPDATE sqlite_sequence SET seq = $1 WHERE name = 'audit_decisions'";

/// The intents' action names of a record (framed).
const RECORD_ACTIONS: &str = "SELECT actions FROM audit_decisions WHERE id = $1";

/// The record an event was counted in under this key (its playbook's).
const FIND_EVENT: &str =
    "SELECT decision_id FROM audit_event_index WHERE event_id = $1 AND coalesce_key = $2";

/// Counts event `$1` in record `$3`; no row when it is counted already.
const INDEX_EVENT: &str = "INSERT INTO audit_events (event_id, coalesce_key, decision_id) \
     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";

/// The newest records whose window is open (`$2` now), read back once
/// after a start; `$1` bounds the scan to the newest ids.
const OPEN_RECORDS: &str = "SELECT id, coalesce_key, at, window_end, count FROM audit_decisions \
     WHERE id > $1 AND window_end > $2 ORDER BY id";

/// `n` records' counts: per record (`column1`), `column2` more events,
/// the latest decided at `column3` and the earliest at `column4`;
/// `column6` (framed event ids) joins the sample while the record holds
/// fewer than `column5`. A clock stepped back moves first seen. (Both
/// SQLite and PostgreSQL name a `VALUES` list's columns `columnN`.)
fn count_events_sql(n: usize) -> String {
    format!(
        "UPDATE audit_decisions SET count = count + v.column2, \
         last_at = CASE WHEN last_at < v.column3 THEN v.column3 ELSE last_at END, \
         at = CASE WHEN at > v.column4 THEN v.column4 ELSE at END, \
         sample = CASE WHEN count < v.column5 THEN sample || v.column6 ELSE sample END \
         FROM (VALUES {}) AS v WHERE audit_decisions.id = v.column1",
        placeholders(n, 6)
    )
}

/// `n` records' outcomes: per record (`column1`), the status `column2` and
/// reason `column3`.
fn settle_sql(n: usize) -> String {
    format!(
        "UPDATE audit_decisions SET outcome = v.column2, reason = v.column3 \
         FROM (VALUES {}) AS v WHERE audit_decisions.id = v.column1",
        placeholders(n, 3)
    )
}

pub(crate) const UPSERT_ACTION: &str = "INSERT INTO audit_actions \
     (decision_id, action_id, target, action, status, reason, code, attempts, duration_us, at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
     ON CONFLICT (decision_id, action_id, target) DO UPDATE SET \
     action = excluded.action, status = excluded.status, reason = excluded.reason, \
     code = excluded.code, attempts = excluded.attempts, duration_us = excluded.duration_us, \
     at = excluded.at \
     WHERE audit_actions.status = 'queued' OR excluded.status <> 'queued'";

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

/// The latest record event `$1` was counted in by playbook `$2`, and
/// whether it was that record's first event.
const LATEST_DECISION: &str = "SELECT d.id, d.event_id FROM audit_event_index e \
     JOIN audit_decisions d ON d.id = e.decision_id \
     WHERE e.event_id = $1 AND d.playbook = $2 ORDER BY d.id DESC LIMIT 1";

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
        let q = sqlx::query($crate::store::audit::UPSERT_ACTION)
            .bind($id)
            .bind(&record.action_id)
            .bind(record.target.as_deref().unwrap_or(""))
            .bind(&record.action);
        $crate::store::audit::bind_action_state!(q, record)
            .execute(&mut *$tx)
            .await
    }};
}

/// Binds an action record's state (status, reason, code, attempts,
/// duration, time) to query `$q`, in that order: every statement that
/// writes an action row ends its row with them.
macro_rules! bind_action_state {
    ($q:expr, $a:expr) => {{
        let a: &$crate::decide::decision::ActionRecord = $a;
        $q.bind(a.status.as_str())
            .bind(a.reason.as_deref())
            .bind(a.code.as_deref())
            .bind(i64::from(a.attempts))
            .bind(a.duration_us.min(i64::MAX as u64) as i64)
            .bind($crate::store::micros(a.at))
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

pub(crate) use {bind_action_state, settle, stored_actions, upsert_action};

/// Inserts decision row `$r` (a [`DecisionRow`]) made by `$instance` in
/// `$tx`; answers its id.
macro_rules! insert_decision {
    ($tx:ident, $r:expr, $instance:expr, $staged:expr) => {{
        let r: &DecisionRow = $r;
        // Only a decision that opens a record is stored whole: the event
        // and intents of the others are those of the record's first.
        let c = RecordColumns::of(r.decision, $staged.packer.as_deref())?;
        sqlx::query_scalar::<_, i64>(INSERT_DECISION)
            .bind(r.event_id)
            .bind(r.playbook)
            .bind(r.mode)
            .bind(r.outcome)
            .bind(r.reason)
            .bind(&c.event_json)
            .bind(&c.intents_json)
            .bind(&c.targets)
            .bind(&c.actions)
            .bind(r.eval_us)
            .bind(r.dispatch_us)
            .bind(r.at)
            .bind($instance)
            .bind(r.coalesce_key)
            .bind(r.window_end)
            .bind(&c.sample)
            .bind(c.packed.as_deref())
            .bind(c.packed_dict)
            .fetch_one(&mut *$tx)
            .await
    }};
}

/// How a decision was recorded.
#[derive(Debug, Clone, Copy)]
enum Recorded {
    /// A record of its own.
    New(i64),
    /// Counted in an open record of identical decisions.
    Coalesced(i64),
    /// Its event was counted for this playbook already (a redelivery).
    Duplicate(i64),
}

impl Recorded {
    fn id(self) -> i64 {
        match self {
            Recorded::New(id) | Recorded::Coalesced(id) | Recorded::Duplicate(id) => id,
        }
    }
}

/// Counts of one audit transaction, for the metrics once committed.
#[derive(Debug, Default)]
struct Tally {
    coalesced: u64,
    duplicates: u64,
}

/// A record whose window may still be open: its id, first seen and end.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenRecord {
    id: i64,
    first: i64,
    end: i64,
    /// Events counted in it (for the one log line a storm gets per
    /// window).
    counted: u64,
}

/// The open records this process knows, by coalesce key: read back once
/// (the newest records) after a start, then kept as records open. A key
/// this process does not know opens a record of its own, never a wrong
/// count: another replica's open record is merely not joined.
#[derive(Debug)]
pub(crate) struct OpenRecords {
    loaded: bool,
    by_key: HashMap<i64, OpenRecord>,
    /// The record the latest decision of an event and playbook is counted
    /// in, and whether it was that record's first event, for the actions
    /// that finish after their decision's batch was written. This process
    /// writes every record of its decisions, so what it remembers is what
    /// the store would answer. Keyed by a 128-bit hash of both.
    latest: Recent<u128, (i64, bool)>,
    /// The searchable targets (framed) of the records this process
    /// opened, so that an action's target already there (nearly always:
    /// the intents name it) costs no statement.
    targets: Recent<i64, String>,
    /// SQLite: the event index rows not merged into `audit_events` yet.
    pub(crate) journal: Journal,
    /// Packs the bodies of new records (made when the records are read
    /// back, with the newest dictionary).
    packer: Option<Arc<Mutex<Packer>>>,
}

/// The budget of the line a record logs when it starts coalescing, per
/// playbook (see `log_budget`).
static RECORD_LINES: std::sync::LazyLock<crate::log_budget::LogBudget> =
    std::sync::LazyLock::new(Default::default);

/// Most open records remembered; beyond, the closed ones are dropped.
const MAX_OPEN_RECORDS: usize = 50_000;

/// The key of an event and playbook in [`OpenRecords`]'s memory.
fn latest_key((event_id, playbook): (&str, &str)) -> u128 {
    crate::decide::decision::event_playbook_key(event_id, playbook)
}

/// Decisions whose record [`OpenRecords`] remembers for their actions
/// (at least; at most twice as many): at a storm's 10,000 decisions a
/// second, several seconds for an action to finish. Older ones ask the
/// store.
const MAX_LATEST: usize = 65_536;

impl Default for OpenRecords {
    fn default() -> Self {
        OpenRecords {
            loaded: false,
            by_key: HashMap::new(),
            latest: Recent::new(MAX_LATEST),
            targets: Recent::new(MAX_LATEST),
            journal: Journal::default(),
            packer: None,
        }
    }
}

/// How many of the newest records a start reads back for open windows.
const READ_BACK: i64 = 100_000;

impl OpenRecords {
    fn get(&self, key: i64) -> Option<OpenRecord> {
        self.by_key.get(&key).copied()
    }

    fn latest(&self, key: (&str, &str)) -> Option<(i64, bool)> {
        self.latest.get(&latest_key(key)).copied()
    }

    fn remember(&mut self, latest: HashMap<(&str, &str), (i64, bool)>) {
        self.latest
            .extend(latest.into_iter().map(|(k, v)| (latest_key(k), v)));
    }

    /// Whether record `id`'s searchable targets are known to hold
    /// `target`.
    fn has_target(&self, id: i64, target: &str) -> bool {
        self.targets
            .get(&id)
            .is_some_and(|t| framed_contains(t, target))
    }

    fn know_targets(&mut self, targets: HashMap<i64, String>) {
        self.targets.extend(targets);
    }

    fn merge(&mut self, opened: HashMap<i64, OpenRecord>, now: i64) {
        if self.by_key.len() + opened.len() > MAX_OPEN_RECORDS {
            self.by_key.retain(|_, r| r.end > now);
        }
        self.by_key.extend(opened);
    }
}

/// Inserts the event index row of `$event` under `$key` for record `$id`
/// in `$tx`: true when it is new, false when the event was counted there.
/// With a [`BatchIndex`] (`$index`), the row is only noted, and written
/// with the batch's others at its end.
macro_rules! index_event {
    ($tx:ident, $index:expr, $event:expr, $key:expr, $id:expr) => {
        match $index {
            Some(ix) => ix.add($event, $key, $id),
            None => {
                sqlx::query(INDEX_EVENT)
                    .bind($event)
                    .bind($key)
                    .bind($id)
                    .execute(&mut *$tx)
                    .await?
                    .rows_affected()
                    == 1
            }
        }
    };
}

/// Writes the event index rows `$index` holds in `$tx`, in statements of
/// a few sizes (so that few statements are prepared); `false` when one of
/// them was there already (another replica counted the event meanwhile):
/// the batch is then done again, one statement at a time. On SQLite they
/// are appended to the journal ([`event_journal`]), which the batch's
/// check covered from memory.
macro_rules! flush_index {
    ($tx:ident, $index:expr) => {{
        let mut fresh = true;
        if let Some(ix) = $index {
            let rows = std::mem::take(&mut ix.rows);
            let journal = ix.journal.is_some();
            for chunk in chunks(&rows, 128) {
                if journal {
                    let sql = binds(&$tx, event_journal::append_sql(chunk.len()));
                    let mut q = sqlx::query(&sql);
                    for (event, key, id, k) in chunk {
                        q = q.bind(*event).bind(*key).bind(*id);
                        ix.journaled.push((*k, *id));
                    }
                    q.execute(&mut *$tx).await?;
                    continue;
                }
                let sql = binds(&$tx, insert_index_sql(chunk.len()));
                let mut q = sqlx::query(&sql);
                for (event, key, id, _) in chunk {
                    q = q.bind(*event).bind(*key).bind(*id);
                }
                fresh = q.execute(&mut *$tx).await?.rows_affected() == chunk.len() as u64;
                if !fresh {
                    break;
                }
            }
        }
        fresh
    }};
}

/// Reads which of `$events` (distinct event ids) the index holds, into
/// `$index`'s counted set.
macro_rules! load_index {
    ($tx:ident, $index:expr, $events:expr) => {{
        let ix: &mut BatchIndex = $index;
        let events: &[&str] = $events;
        for chunk in chunks(events, 128) {
            let sql = binds(&$tx, select_index_sql(chunk.len()));
            let mut q = sqlx::query(&sql);
            for event in chunk {
                q = q.bind(*event);
            }
            for row in q.fetch_all(&mut *$tx).await? {
                let event = row.text("event_id")?;
                ix.counted
                    .insert(index_key(&event, row.int("coalesce_key")?));
            }
        }
    }};
}

/// Stages decision row `$r` as a record this batch opens (`$staged`),
/// with an id reserved in `$tx`; evaluates to the id. It is inserted with
/// the batch's others by `flush_staged!`.
macro_rules! stage_record {
    ($tx:ident, $staged:expr, $r:expr) => {{
        let st: &mut Staged = $staged;
        let r: &DecisionRow = $r;
        let id = match st.take_id() {
            Some(id) => id,
            None => {
                let want = st.want.max(1);
                if st.postgres {
                    let ids = sqlx::query_scalar::<_, i64>(RESERVE_PG)
                        .bind(want.min(PG_RESERVE_MAX))
                        .fetch_all(&mut *$tx)
                        .await?;
                    st.reserve(ids);
                } else {
                    let top = match sqlx::query_scalar::<_, i64>(RESERVE_SQLITE)
                        .bind(want)
                        .fetch_optional(&mut *$tx)
                        .await?
                    {
                        Some(top) => top,
                        None => {
                            sqlx::query_scalar::<_, i64>(START_SQLITE)
                                .bind(want)
                                .fetch_one(&mut *$tx)
                                .await?
                        }
                    };
                    st.reserve(top.saturating_sub(want) + 1..=top);
                }
                st.take_id()
                    .ok_or_else(|| StoreError::Corrupt("no audit record id was reserved".into()))?
            }
        };
        // Only a decision that opens a record is stored whole: the event
        // and intents of the others are those of the record's first.
        let c = RecordColumns::of(r.decision, st.packer.as_deref())?;
        st.stage(StagedRecord {
            id,
            event_id: r.event_id.to_owned(),
            playbook: r.playbook.to_owned(),
            mode: r.mode,
            outcome: r.outcome.to_owned(),
            reason: r.reason.map(str::to_owned),
            event_json: c.event_json,
            intents_json: c.intents_json,
            packed: c.packed,
            packed_dict: c.packed_dict,
            targets: c.targets,
            actions: c.actions,
            eval_us: r.eval_us,
            dispatch_us: r.dispatch_us,
            at: r.at,
            coalesce_key: r.coalesce_key,
            count: 1,
            last_at: r.at,
            window_end: r.window_end,
            sample: c.sample,
            rows: Vec::new(),
        });
        id
    }};
}

/// Writes action rows `$rows` (record id and record) in `$tx`, many per
/// statement, under the rule that never takes a final status back to
/// `queued`.
macro_rules! write_action_rows {
    ($tx:ident, $rows:expr) => {{
        let rows: &[(i64, ActionRecord)] = $rows;
        for part in chunks(rows, 64) {
            let sql = binds(&$tx, upsert_actions_sql(part.len()));
            let mut q = sqlx::query(&sql);
            for (id, a) in part {
                q = q
                    .bind(*id)
                    .bind(&a.action_id)
                    .bind(a.target.as_deref().unwrap_or(""))
                    .bind(&a.action);
                q = bind_action_state!(q, a);
            }
            q.execute(&mut *$tx).await?;
        }
    }};
}

/// Inserts the records `$staged` holds (made by `$instance`), then their
/// action rows, in `$tx`: a few statements for a batch's records.
macro_rules! flush_staged {
    ($tx:ident, $staged:expr, $instance:expr, $known:expr) => {{
        let st: &mut Staged = $staged;
        let postgres = st.postgres;
        let mut records = st.take();
        let known: &mut HashMap<i64, String> = $known;
        let instance: &str = $instance;
        for part in chunks(&records, 64) {
            let sql = binds(&$tx, insert_records_sql(part.len(), postgres));
            let mut q = sqlx::query(&sql);
            for r in part {
                q = q
                    .bind(r.id)
                    .bind(&r.event_id)
                    .bind(&r.playbook)
                    .bind(r.mode)
                    .bind(&r.outcome)
                    .bind(r.reason.as_deref())
                    .bind(&r.event_json)
                    .bind(&r.intents_json)
                    .bind(&r.targets)
                    .bind(&r.actions)
                    .bind(r.eval_us)
                    .bind(r.dispatch_us)
                    .bind(r.at)
                    .bind(instance)
                    .bind(r.coalesce_key)
                    .bind(r.count)
                    .bind(r.last_at)
                    .bind(r.window_end)
                    .bind(&r.sample)
                    .bind(r.packed.as_deref())
                    .bind(r.packed_dict);
            }
            q.execute(&mut *$tx).await?;
        }
        let rows: Vec<(i64, ActionRecord)> = records
            .iter_mut()
            .flat_map(|r| {
                std::mem::take(&mut r.rows)
                    .into_iter()
                    .map(move |a| (r.id, a))
            })
            .collect();
        write_action_rows!($tx, &rows);
        known.extend(records.iter().map(|r| (r.id, r.targets.clone())));
    }};
}

/// Inserts decision row `$r` as a record of its own, counted under
/// `$key`; `None` (and nothing written) when the event was counted under
/// that key already.
macro_rules! insert_record {
    ($tx:ident, $index:expr, $staged:expr, $r:expr, $key:expr, $instance:expr) => {{
        let r: &DecisionRow = $r;
        match &mut $index {
            // Known counted: nothing to write.
            Some(ix) if ix.has(r.event_id, $key) => None,
            // Batched: staged, inserted with the batch's other records.
            Some(_) => {
                let id = stage_record!($tx, &mut $staged, r);
                index_event!($tx, &mut $index, r.event_id, $key, id);
                Some(id)
            }
            None => {
                let id = insert_decision!($tx, r, $instance, $staged)?;
                if index_event!($tx, None::<&mut BatchIndex>, r.event_id, $key, id) {
                    Some(id)
                } else {
                    sqlx::query("DELETE FROM audit_decisions WHERE id = $1")
                        .bind(id)
                        .execute(&mut *$tx)
                        .await?;
                    None
                }
            }
        }
    }};
}

/// Records decision row `$r` in `$tx`: counted once per event and playbook
/// (a redelivered event is a [`Recorded::Duplicate`]), in the open record
/// of its key when this process knows one open at its time (`$open`, with
/// the records this transaction opened in `$opened`), else in a new one.
/// One statement in the common case (the event index row): the counts go
/// to `$counts`, written once per record by `finish_batch!`. Evaluates to
/// a [`Recorded`].
macro_rules! record_decision {
    ($tx:ident, $index:expr, $staged:expr, $known:expr, $r:expr, $window_us:expr, $sample_max:expr, $instance:expr, $open:expr, $opened:expr, $counts:expr) => {{
        let r: &DecisionRow = $r;
        let opened: &mut HashMap<i64, OpenRecord> = $opened;
        let open = opened
            .get(&r.coalesce_key)
            .copied()
            .or_else(|| $open.get(r.coalesce_key))
            .filter(|o| $window_us > 0 && in_window(r.at, o.first, o.end, $window_us));
        let counted = match open {
            Some(o) if index_event!($tx, $index.as_mut(), r.event_id, r.playbook_key, o.id) => {
                // Counted in the record once per batch, not per event.
                let sampled = i64::try_from(o.counted).unwrap_or(i64::MAX) < $sample_max;
                if $staged.contains(o.id) {
                    $staged.count(o.id, r.at, sampled.then_some(r.event_id), $sample_max);
                } else {
                    $counts.entry(o.id).or_insert_with(|| PendingCount::new(r.at)).add(
                        r.at,
                        sampled.then_some(r.event_id),
                    );
                }
                if o.counted == 1 {
                    // Once per record (so per window), never per event, and
                    // within the playbook's budget: a storm of distinct
                    // decisions opens many records.
                    crate::log_budget::budgeted!(
                        RECORD_LINES, r.playbook, INFO,
                        playbook = %r.playbook, record = o.id,
                        window_ends = %from_micros(o.end).to_rfc3339(),
                        "identical decisions: counting them in one audit record until the window ends"
                    );
                }
                opened.insert(r.coalesce_key, OpenRecord { counted: o.counted + 1, ..o });
                Some(Recorded::Coalesced(o.id))
            }
            Some(_) => None,
            None => insert_record!($tx, $index, $staged, r, r.playbook_key, $instance).map(|id| {
                opened.insert(
                    r.coalesce_key,
                    OpenRecord {
                        id,
                        first: r.at,
                        end: r.window_end,
                        counted: 1,
                    },
                );
                Recorded::New(id)
            }),
        };
        match counted {
            Some(recorded) => recorded,
            // Counted for this playbook already: a redelivery, or a
            // stateful playbook (`once_per`, `count`) deciding it otherwise
            // the second time. Only the decision that carries out an
            // approved intent follows its event's first one.
            None => {
                // The store answers: what this batch noted goes first.
                flush_staged!($tx, &mut $staged, $instance, &mut $known);
                if !flush_index!($tx, $index.as_mut()) {
                    return Ok(None);
                }
                let existing = match $index.as_ref().and_then(|ix| ix.record_of(r.event_id, r.playbook_key)) {
                    Some(id) => id,
                    None => sqlx::query_scalar::<_, i64>(FIND_EVENT)
                        .bind(r.event_id)
                        .bind(r.playbook_key)
                        .fetch_one(&mut *$tx)
                        .await?,
                };
                let asked = !r.asks_approval
                    && sqlx::query_scalar::<_, String>(RECORD_ACTIONS)
                        .bind(existing)
                        .fetch_optional(&mut *$tx)
                        .await?
                        .is_some_and(|a| a.contains("\napprove\n"));
                if !asked {
                    Recorded::Duplicate(existing)
                } else if let Some(id) = insert_record!($tx, $index, $staged, r, r.coalesce_key, $instance) {
                    Recorded::New(id)
                } else {
                    Recorded::Duplicate(
                        match $index.as_ref().and_then(|ix| ix.record_of(r.event_id, r.coalesce_key)) {
                            Some(id) => id,
                            None => sqlx::query_scalar::<_, i64>(FIND_EVENT)
                                .bind(r.event_id)
                                .bind(r.coalesce_key)
                                .fetch_one(&mut *$tx)
                                .await?,
                        },
                    )
                }
            }
        }
    }};
}

/// Writes the action rows of coalesced records that `$writes` holds back,
/// of record `$only` (all when `None`), in `$tx`: first reads the stored
/// state of the rows not read yet (one statement per 64 records), then
/// inserts the rows that were missing and updates the others, many per
/// statement. The rows of `$only` are forgotten, as a write of that
/// record's first event is about to change them.
macro_rules! flush_action_rows {
    ($tx:ident, $writes:expr, $only:expr) => {{
        let writes: &mut ActionWrites = $writes;
        let only: Option<i64> = $only;
        let mine = |k: &(i64, String, String)| only.is_none_or(|id| k.0 == id);
        let mut unread: Vec<i64> = writes
            .rows
            .iter()
            .filter(|(k, r)| mine(k) && r.unread())
            .map(|(k, _)| k.0)
            .collect();
        unread.sort_unstable();
        unread.dedup();
        let mut stored: HashMap<(i64, String, String), StoredRow> = HashMap::new();
        for part in chunks(&unread, 64) {
            let sql = binds(&$tx, action_states_sql(part.len()));
            let mut q = sqlx::query(&sql);
            for id in part {
                q = q.bind(*id);
            }
            for row in q.fetch_all(&mut *$tx).await? {
                let key = (
                    row.int("decision_id")?,
                    row.text("action")?,
                    row.text("target")?,
                );
                // Several rows of one action and target (two intents
                // alike): the update keeps each one's rule.
                let state = if row.text("status")? == "queued" {
                    StoredRow::Queued
                } else {
                    StoredRow::Final
                };
                let e = stored.entry(key).or_insert(state);
                if state == StoredRow::Queued {
                    *e = state;
                }
            }
        }
        let mut inserts: Vec<(i64, ActionRecord)> = Vec::new();
        let mut updates: Vec<(i64, ActionRecord)> = Vec::new();
        for (key, row) in writes.rows.iter_mut().filter(|(k, _)| mine(k)) {
            row.resolve(stored.get(key).copied().unwrap_or(StoredRow::Missing));
            match row.take_write() {
                Some(RowWrite::Insert(r)) => inserts.push((key.0, r)),
                Some(RowWrite::Update(r)) => updates.push((key.0, r)),
                None => {}
            }
        }
        if let Some(id) = only {
            writes.rows.retain(|k, _| k.0 != id);
        }
        write_action_rows!($tx, &inserts);
        for part in chunks(&updates, 64) {
            let sql = binds(&$tx, update_coalesced_actions_sql(part.len()));
            let mut q = sqlx::query(&sql);
            for (id, a) in part {
                q = q
                    .bind(*id)
                    .bind(&a.action)
                    .bind(a.target.as_deref().unwrap_or(""));
                q = bind_action_state!(q, a);
            }
            q.execute(&mut *$tx).await?;
        }
    }};
}

/// Writes action record `$record` onto record `$id` (`$first`: of the
/// record's first event) in `$tx`, adds its target to the record's
/// searchable targets, and leaves the record's outcome to settle at the end
/// of the batch (`$writes`). A later event's record of an action whose row
/// this batch has seen already is held back in `$writes` and written once:
/// a storm's thousands of identical actions per batch are one write.
macro_rules! record_action_op {
    ($tx:ident, $staged:expr, $upserts:expr, $open:expr, $id:expr, $first:expr, $record:expr, $outcome:expr, $writes:expr) => {{
        let (id, record, outcome): (i64, &ActionRecord, &Option<Outcome>) =
            ($id, $record, $outcome);
        let writes: &mut ActionWrites = $writes;
        let staged: &mut Staged = $staged;
        let upserts: &mut PendingUpserts = $upserts;
        let target = record.target.as_deref().unwrap_or("");
        if staged.contains(id) {
            // A record this batch opened: all in memory.
            if $first {
                staged.upsert_action(id, record);
            } else {
                staged.coalesced_action(id, record);
            }
            if !target.is_empty() {
                staged.add_target(id, target);
            }
        } else if $first {
            if writes.row_ids.remove(&id) {
                // The rows this batch holds for the record's later events
                // go first, after what its first event's actions left
                // before them.
                write_action_rows!($tx, &upserts.take(Some(id)));
                flush_action_rows!($tx, writes, Some(id));
            }
            // Written with the batch's others at its end.
            upserts.put(id, record);
        } else {
            // Applied in memory; the row is read and written once, at the
            // end of the batch (after the first event's rows held above).
            writes.row_ids.insert(id);
            writes
                .rows
                .entry((id, record.action.clone(), target.to_owned()))
                .or_default()
                .push(record);
        }
        if !target.is_empty()
            && !staged.contains(id)
            && !$open.has_target(id, target)
            && writes.targets.insert((id, target.to_owned()))
        {
            // Action targets (resolved pods) join the decision's
            // searchable targets.
            let (append, pattern) = target_append(target);
            sqlx::query(ADD_TARGET)
                .bind(append)
                .bind(id)
                .bind(pattern)
                .execute(&mut *$tx)
                .await?;
        }
        // The last action of a record in the batch settles it.
        writes.settles.insert(id, outcome.clone());
    }};
}

/// Finishes a batch's audit writes in `$tx`: the action rows held back,
/// the counts of the open records, and each record's outcome, settled as
/// its last action record in the batch said (or, without an outcome, as
/// its stored actions say: the decision has left the in-memory log, and
/// would otherwise stay `pending`).
macro_rules! finish_batch {
    ($tx:ident, $writes:expr, $counts:expr, $sample_max:expr) => {{
        let writes: &mut ActionWrites = $writes;
        flush_action_rows!($tx, writes, None);
        let counts: Vec<(&i64, &PendingCount)> = $counts.iter().collect();
        for part in chunks(&counts, 64) {
            let sql = binds(&$tx, count_events_sql(part.len()));
            let mut q = sqlx::query(&sql);
            for (id, c) in part {
                q = q
                    .bind(**id)
                    .bind(c.n)
                    .bind(c.last)
                    .bind(c.first)
                    .bind($sample_max)
                    .bind(&c.sample);
            }
            q.execute(&mut *$tx).await?;
        }
        let mut settles: Vec<(i64, &'static str, Option<String>)> = Vec::new();
        for (id, outcome) in writes.settles.drain() {
            let settled = match outcome {
                Some(o) => Some(o),
                None => settled_outcome(&stored_actions!($tx, id)?),
            };
            if let Some(outcome) = &settled {
                let (status, reason) = outcome_parts(outcome);
                settles.push((id, status, reason.map(str::to_owned)));
            }
        }
        for part in chunks(&settles, 64) {
            let sql = binds(&$tx, settle_sql(part.len()));
            let mut q = sqlx::query(&sql);
            for (id, status, reason) in part {
                q = q.bind(*id).bind(*status).bind(reason.as_deref());
            }
            q.execute(&mut *$tx).await?;
        }
    }};
}

/// The event index of one batch: which of its events were counted
/// before it (read in one statement at its start, and on SQLite from the
/// journal's rows in memory), and the rows it adds, written at its end in
/// a few statements rather than one per event.
#[derive(Debug, Default)]
struct BatchIndex<'a> {
    /// Events and keys counted, before or in this batch (hashed).
    counted: HashSet<u128>,
    /// Rows to write: event id, key, record, and the hash of the first two.
    rows: Vec<(&'a str, i64, i64, u128)>,
    /// The records of the rows this batch noted (hashed event and key).
    ids: HashMap<u128, i64>,
    /// SQLite: the journal's rows (what `audit_events` does not hold yet).
    journal: Option<&'a Journal>,
    /// SQLite: the rows this batch appended to the journal.
    journaled: Vec<(u128, i64)>,
}

impl<'a> BatchIndex<'a> {
    fn has(&self, event_id: &str, key: i64) -> bool {
        self.seen(index_key(event_id, key))
    }

    fn seen(&self, k: u128) -> bool {
        self.counted.contains(&k) || self.journal.is_some_and(|j| j.rows.contains_key(&k))
    }

    /// Notes event `event_id` counted under `key` in record `id`; false
    /// when it was counted already.
    fn add(&mut self, event_id: &'a str, key: i64, id: i64) -> bool {
        let k = index_key(event_id, key);
        if self.seen(k) {
            return false;
        }
        self.counted.insert(k);
        self.ids.insert(k, id);
        self.rows.push((event_id, key, id, k));
        true
    }

    /// The record event `event_id` was counted in under `key`, when this
    /// batch or the journal knows it (else the store answers).
    fn record_of(&self, event_id: &str, key: i64) -> Option<i64> {
        self.ids
            .get(&index_key(event_id, key))
            .copied()
            .or_else(|| self.journal.and_then(|j| j.record_of(event_id, key)))
    }
}

fn insert_index_sql(n: usize) -> String {
    format!(
        "INSERT INTO audit_events (event_id, coalesce_key, decision_id) VALUES {} \
         ON CONFLICT DO NOTHING",
        placeholders(n, 3)
    )
}

fn select_index_sql(n: usize) -> String {
    let params: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    format!(
        "SELECT event_id, coalesce_key FROM audit_events WHERE event_id IN ({})",
        params.join(", ")
    )
}

/// What a batch's action records leave to write once, at its end.
#[derive(Debug, Default)]
struct ActionWrites {
    /// Targets this batch added to a record's searchable targets.
    targets: HashSet<(i64, String)>,
    /// The outcome each record is to be settled to (`None`: from its
    /// stored actions).
    settles: HashMap<i64, Option<Outcome>>,
    /// Action rows of coalesced records this batch has seen, by record,
    /// action and target.
    rows: HashMap<(i64, String, String), CoalescedRow>,
    /// The records `rows` holds rows of.
    row_ids: HashSet<i64>,
}

/// Whether a decision at `at` belongs in a record first seen at `first`
/// whose window ends at `end`: before the end, and not so far before the
/// first event (a clock stepped back) that it would stretch the window.
fn in_window(at: i64, first: i64, end: i64, window_us: i64) -> bool {
    at < end && at > first.saturating_sub(window_us)
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
    if let Some(event_id) = &query.event_id {
        let p = c.arg(Arg::Text(event_id.clone()));
        c.push(format!(
            "id IN (SELECT decision_id FROM audit_event_index WHERE event_id = {p})"
        ));
    }
    for (column, value) in [("playbook", &query.playbook), ("outcome", &query.outcome)] {
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
/// A record's event summary and intents (JSON), packed or not.
pub(crate) fn body_of<R: RowExt>(
    row: &R,
    dicts: &packing::DictMap,
) -> Result<(String, String), StoreError> {
    match row.opt_bytes("packed")? {
        Some(packed) => packing::unpack_with(&packed, row.int("packed_dict")?, dicts),
        None => Ok((row.text("event_json")?, row.text("intents_json")?)),
    }
}

/// Loads the dictionaries `$rows` (with a `packed_dict` column) were packed
/// with that `$store` has not loaded yet, through `$pool`; evaluates to the
/// loaded ones.
macro_rules! dicts_for {
    ($store:expr, $pool:expr, $rows:expr) => {{
        let dicts = &$store.inner.dicts;
        // Each missing one once, however many rows name it.
        let mut missing = std::collections::BTreeSet::new();
        for row in $rows.iter() {
            let id = row.int("packed_dict")?;
            if !dicts.has(id) {
                missing.insert(id);
            }
        }
        for id in missing {
            let stored = sqlx::query($crate::store::audit::DICT_BY_ID)
                .bind(id)
                .fetch_optional($pool)
                .await?;
            if let Some(r) = stored {
                dicts.add(id, &r.bytes("dict")?);
            }
        }
        dicts.snapshot()
    }};
}

pub(crate) use dicts_for;

fn entry_from<R: RowExt>(row: &R, dicts: &packing::DictMap) -> Result<AuditEntry, StoreError> {
    let (event_json, intents_json) = body_of(row, dicts)?;
    Ok(AuditEntry {
        id: row.int("id")?,
        event_id: row.text("event_id")?,
        event: serde_json::from_str(&event_json)?,
        playbook: row.text("playbook")?,
        mode: mode_from(&row.text("mode")?)?,
        intents: serde_json::from_str(&intents_json)?,
        outcome: outcome_from(&row.text("outcome")?, row.opt_text("reason")?)?,
        timings: Timings {
            eval_us: row.int("eval_us")?.max(0) as u64,
            dispatch_us: row.int("dispatch_us")?.max(0) as u64,
        },
        at: from_micros(row.int("at")?),
        count: row.int("count")?.max(1) as u64,
        last_at: Some(from_micros(row.int("last_at")?)),
        sample: row
            .text("sample")?
            .split('\n')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        actions: Vec::new(),
    })
}

/// What recording a decision needs before the transaction starts; the
/// columns only a new record stores are made by [`RecordColumns::of`].
struct DecisionRow<'a> {
    decision: &'a Decision,
    event_id: &'a str,
    playbook: &'a str,
    mode: &'static str,
    outcome: &'static str,
    reason: Option<&'a str>,
    eval_us: i64,
    dispatch_us: i64,
    at: i64,
    coalesce_key: i64,
    /// The event index's key: the playbook's hash (or, for the decision
    /// that carries out an approved intent, the coalesce key).
    playbook_key: i64,
    /// Whether an intent asks for approval.
    asks_approval: bool,
    window_end: i64,
}

/// The columns of a new record: the event and intents whole, the
/// searchable targets and actions, the sample it starts with.
struct RecordColumns {
    /// Empty when packed.
    event_json: String,
    intents_json: String,
    /// Both, compressed (see `packing`), and the dictionary they need.
    packed: Option<Vec<u8>>,
    packed_dict: i64,
    targets: String,
    actions: String,
    sample: String,
}

impl RecordColumns {
    fn of(d: &Decision, packer: Option<&Mutex<Packer>>) -> Result<RecordColumns, StoreError> {
        let mut targets: Vec<String> = d
            .intents
            .iter()
            .flat_map(|i| intent_targets(&i.action))
            .collect();
        targets.extend(d.actions.iter().filter_map(|a| a.target.clone()));
        let mut event_json = serde_json::to_string(&d.event)
            .map_err(|e| StoreError::Invalid(format!("event summary: {e}")))?;
        let mut intents_json = serde_json::to_string(&d.intents)
            .map_err(|e| StoreError::Invalid(format!("intents: {e}")))?;
        // A body that cannot be packed is stored as it is: the record is
        // never lost to its compression.
        let packed = packer.and_then(|p| {
            p.lock()
                .unwrap_or_else(|e| e.into_inner())
                .pack(&event_json, &intents_json)
                .map_err(|e| tracing::warn!(error = %e, "audit record stored uncompressed"))
                .ok()
        });
        let (packed, packed_dict) = match packed {
            Some((packed, dict)) => {
                event_json.clear();
                intents_json.clear();
                (Some(packed), dict)
            }
            None => (None, NO_DICT),
        };
        Ok(RecordColumns {
            event_json,
            intents_json,
            packed,
            packed_dict,
            targets: framed(targets.iter().map(String::as_str)),
            actions: framed(d.intents.iter().map(|i| i.action.name())),
            sample: framed(std::iter::once(d.event_id.as_str())),
        })
    }
}

/// The events a batch counts in one open record, written once.
#[derive(Debug)]
struct PendingCount {
    n: i64,
    first: i64,
    last: i64,
    /// Framed event ids that join the sample.
    sample: String,
}

impl PendingCount {
    fn new(at: i64) -> PendingCount {
        PendingCount {
            n: 0,
            first: at,
            last: at,
            sample: String::new(),
        }
    }

    fn add(&mut self, at: i64, sampled: Option<&str>) {
        self.n += 1;
        self.first = self.first.min(at);
        self.last = self.last.max(at);
        // The record's sample is framed already ("\nfirst\n"): each id
        // only adds itself and a newline.
        if let Some(id) = sampled {
            self.sample.push_str(&id.replace('\n', " "));
            self.sample.push('\n');
        }
    }
}

/// The event index's key of `playbook`: positive, like coalesce keys.
fn playbook_key(playbook: &str) -> i64 {
    ((xxhash_rust::xxh3::xxh3_64(playbook.as_bytes()) >> 1) as i64).max(1)
}

/// What makes decisions identical: playbook, mode, initial outcome and
/// the intents' actions (their ids name the event, so they are left out).
/// Requests (API calls, SOAR webhooks), expiries, firewall repairs and
/// any decision that already carries its action records are each a record
/// of their own: their key also hashes their event id. Positive, so a key
/// never meets those older records were given (minus their id).
pub(crate) fn coalesce_key(d: &Decision) -> i64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for part in [d.playbook.as_str(), d.mode.as_str(), d.outcome.as_str()] {
        h.update(part.as_bytes());
        h.update(&[0]);
    }
    for intent in &d.intents {
        let _ = serde_json::to_writer(KeyWriter(&mut h), &intent.action);
        h.update(&[0]);
    }
    let own = !d.actions.is_empty()
        || matches!(
            d.event.dataset.as_ref(),
            "riposte.api" | "riposte.webhook" | "riposte.expiry" | "riposte.firewall"
        );
    if own {
        h.update(d.event_id.as_bytes());
    }
    ((h.digest() >> 1) as i64).max(1)
}

struct KeyWriter<'a>(&'a mut xxhash_rust::xxh3::Xxh3);

impl std::io::Write for KeyWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> DecisionRow<'a> {
    fn of(q: &'a Queued, window_us: i64) -> DecisionRow<'a> {
        let d = &q.decision;
        let (outcome, reason) = outcome_parts(&d.outcome);
        DecisionRow {
            decision: d,
            event_id: &d.event_id,
            playbook: &d.playbook,
            mode: d.mode.as_str(),
            outcome,
            reason,
            eval_us: d.timings.eval_us.min(i64::MAX as u64) as i64,
            dispatch_us: d.timings.dispatch_us.min(i64::MAX as u64) as i64,
            at: micros(d.at),
            coalesce_key: q.coalesce_key,
            playbook_key: q.playbook_key,
            asks_approval: q.asks_approval,
            window_end: micros(d.at).saturating_add(window_us),
        }
    }
}

impl Store {
    /// Appends decisions (and the actions they carry) in one transaction;
    /// returns their row ids in order.
    pub async fn append_decisions(&self, decisions: &[Decision]) -> Result<Vec<i64>, StoreError> {
        let ops: Vec<AuditOp> = decisions
            .iter()
            .map(|d| AuditOp::decision(d.clone()))
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
    /// writer's unit of work). Returns, for each decision, the id of the
    /// record it was counted in: a new one, an open coalesced one, or the
    /// one a redelivered event was counted in already (not counted again).
    pub async fn apply_audit(&self, ops: &[AuditOp]) -> Result<Vec<i64>, StoreError> {
        let config = self.config();
        let window_us = i64::try_from(config.coalesce_window_secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000);
        let sample_max = i64::try_from(config.coalesce_sample).unwrap_or(i64::MAX);
        // Keys and times before taking the connection; what only a new
        // record stores is serialized when one is opened.
        let rows: Vec<Option<DecisionRow>> = ops
            .iter()
            .map(|op| match op {
                AuditOp::Decision(d) => Some(DecisionRow::of(d, window_us)),
                AuditOp::Action { .. } | AuditOp::Notify(_) => None,
            })
            .collect();
        let decisions = rows.iter().flatten().count() as i64;
        let jobs: Vec<&NotifyJob> = ops
            .iter()
            .filter_map(|op| match op {
                AuditOp::Notify(job) => Some(&**job),
                _ => None,
            })
            .collect();
        let prepared = PreparedNotify::new(jobs.iter().flat_map(|j| j.writes.iter()))?;
        let postgres = matches!(self.inner.backend, super::Backend::Postgres(_));
        // One audit transaction at a time in this process: the open
        // records it knows stay true to what is committed.
        let mut open = self.inner.open_records.lock().await;
        if !open.loaded {
            open.by_key = self.read_back_open_records().await?;
            open.packer = Some(Arc::new(Mutex::new(self.packer().await?)));
            open.loaded = true;
        }
        let packer = open.packer.clone();
        if let Some(p) = &packer {
            self.store_trained_dictionary(p).await;
        }
        // First with the batch's event index written at its end; if
        // another replica counted one of its events meanwhile, again one
        // statement at a time.
        let mut batched = true;
        // SQLite: the journal moved without this process (a start, another
        // process, a purge); read it back and begin again.
        let mut stale = false;
        let (ids, tally, latest, opened, known, journaled, notified) = loop {
            let journal = &open.journal;
            let attempt = self
                .run("audit_write", async {
                    with_writer!(self, pool => {
                        let mut tx = pool.begin().await?;
                        let mut journal_seq = 0;
                        if !postgres {
                            journal_seq = sqlx::query_scalar::<_, i64>(event_journal::JOURNAL_SEQ)
                                .fetch_optional(&mut *tx)
                                .await?
                                .unwrap_or(0);
                            if !journal.is_current(journal_seq) {
                                stale = true;
                                return Ok(None);
                            }
                        }
                        let mut index: Option<BatchIndex> = None;
                        if batched {
                            let mut ix = BatchIndex {
                                journal: (!postgres).then_some(journal),
                                ..BatchIndex::default()
                            };
                            let mut seen = HashSet::new();
                            let events: Vec<&str> = rows
                                .iter()
                                .flatten()
                                .map(|r| r.event_id)
                                .filter(|e| seen.insert(*e))
                                .collect();
                            load_index!(tx, &mut ix, &events);
                            index = Some(ix);
                        }
                        let mut opened: HashMap<i64, OpenRecord> = HashMap::new();
                        let mut ids = Vec::new();
                        let mut tally = Tally::default();
                        // Records of this batch's decisions (and whether the
                        // event was the record's first), so their actions need
                        // no lookup.
                        let mut latest: HashMap<(&str, &str), (i64, bool)> = HashMap::new();
                        let mut counts: HashMap<i64, PendingCount> = HashMap::new();
                        let mut writes = ActionWrites::default();
                        let mut staged = Staged::new(postgres);
                        staged.packer = packer.clone();
                        let mut upserts = PendingUpserts::default();
                        // The searchable targets of the records it opened.
                        let mut known: HashMap<i64, String> = HashMap::new();
                        let mut left = decisions;
                        for (op, row) in ops.iter().zip(&rows) {
                            match (op, row) {
                                (AuditOp::Decision(q), Some(r)) => {
                                    let d = &q.decision;
                                    staged.want = left;
                                    left -= 1;
                                    let recorded = record_decision!(
                                        tx, index, staged, known, r, window_us, sample_max, self.instance(), open,
                                        &mut opened, counts
                                    );
                                    let id = recorded.id();
                                    match recorded {
                                        Recorded::New(_) => {
                                            for record in &d.actions {
                                                if staged.contains(id) {
                                                    staged.upsert_action(id, record);
                                                } else {
                                                    upsert_action!(tx, id, record)?;
                                                }
                                            }
                                        }
                                        Recorded::Coalesced(_) => tally.coalesced += 1,
                                        Recorded::Duplicate(_) => tally.duplicates += 1,
                                    }
                                    let first = matches!(recorded, Recorded::New(_));
                                    latest.insert((d.event_id.as_str(), d.playbook.as_str()), (id, first));
                                    ids.push(id);
                                    for (record, outcome) in &q.folded {
                                        record_action_op!(tx, &mut staged, &mut upserts, open, id, first, record, outcome, &mut writes);
                                    }
                                }
                                (AuditOp::Action { event_id, playbook, record, outcome }, _) => {
                                    let key = (event_id.as_str(), playbook.as_str());
                                    // This batch's decisions, then the previous
                                    // batches' (most actions finish after the
                                    // batch of their decision), then the store.
                                    let known = latest.get(&key).copied().or_else(|| open.latest(key));
                                    let found = match known {
                                        Some(found) => Some(found),
                                        None => sqlx::query(LATEST_DECISION)
                                            .bind(event_id)
                                            .bind(playbook)
                                            .fetch_optional(&mut *tx)
                                            .await?
                                            .map(|row| -> Result<(i64, bool), StoreError> {
                                                Ok((row.int("id")?, row.text("event_id")? == *event_id))
                                            })
                                            .transpose()?,
                                    };
                                    let Some((id, first)) = found else {
                                        tracing::debug!(event.id = %event_id, playbook = %playbook,
                                            "action record for a decision not in the store");
                                        continue;
                                    };
                                    latest.insert(key, (id, first));
                                    record_action_op!(tx, &mut staged, &mut upserts, open, id, first, record, outcome, &mut writes);
                                }
                                (AuditOp::Decision(_), None) | (AuditOp::Notify(_), _) => {}
                            }
                        }
                        // The records this batch opened, settled in memory and
                        // inserted with their action rows; the reserved ids
                        // it did not use go back.
                        writes.settles.retain(|id, outcome| !staged.settle(*id, outcome.as_ref()));
                        flush_staged!(tx, &mut staged, self.instance(), &mut known);
                        if let (false, Some(unused)) = (postgres, staged.unused()) {
                            sqlx::query(GIVE_BACK_SQLITE).bind(unused - 1).execute(&mut *tx).await?;
                        }
                        write_action_rows!(tx, &upserts.take(None));
                        if !flush_index!(tx, index.as_mut()) {
                            return Ok(None);
                        }
                        finish_batch!(tx, &mut writes, &counts, sample_max);
                        let notified = if prepared.writes.is_empty() {
                            Vec::new()
                        } else {
                            notify_statements!(tx, &prepared)
                        };
                        let journaled = index.map(|ix| ix.journaled).unwrap_or_default();
                        if !journaled.is_empty() {
                            journal_seq = sqlx::query_scalar::<_, i64>(event_journal::JOURNAL_SEQ)
                                .fetch_one(&mut *tx)
                                .await?;
                        }
                        tx.commit().await?;
                        Ok(Some((ids, tally, latest, opened, known, (journaled, journal_seq), notified)))
                    })
                })
                .await?;
            match attempt {
                Some(done) => break done,
                None if stale => {
                    stale = false;
                    self.read_back_event_journal(&mut open.journal).await?;
                }
                None => batched = false,
            }
        };
        if !postgres {
            let (rows, seq) = journaled;
            open.journal.appended(rows, seq);
            if open.journal.rows.len() >= config.audit_index_merge_rows {
                self.merge_event_journal(&mut open.journal).await;
            }
            self.metrics()
                .audit_index_journal
                .set(open.journal.rows.len() as i64);
        }
        if let Some(p) = &packer {
            let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
            p.train_when_sampled();
            let (dict, body, packed) = p.take_bytes();
            let metrics = self.metrics();
            metrics.audit_dictionary.set(dict);
            metrics.audit_body_bytes.inc_by(body);
            metrics.audit_packed_bytes.inc_by(packed);
        }
        let mut answers = notified.into_iter();
        for job in &jobs {
            job.answer(Ok(answers.by_ref().take(job.writes.len()).collect()));
        }
        let now = micros(Utc::now());
        open.merge(opened, now);
        open.remember(latest);
        open.know_targets(known);
        let windows = open.by_key.values().filter(|r| r.end > now).count();
        drop(open);
        let metrics = self.metrics();
        metrics.audit_open_windows.set(windows as i64);
        metrics.audit_coalesced.inc_by(tally.coalesced);
        metrics.audit_duplicates.inc_by(tally.duplicates);
        Ok(ids)
    }

    /// A packer for the audit writer, with the newest dictionary stored.
    async fn packer(&self) -> Result<Packer, StoreError> {
        let newest = self
            .run("audit_dict_read", async {
                with_writer!(self, pool => {
                    let row = sqlx::query(NEWEST_DICT).fetch_optional(pool).await?;
                    row.map(|r| -> Result<(i64, Vec<u8>), StoreError> {
                        Ok((r.int("id")?, r.bytes("dict")?))
                    })
                    .transpose()
                })
            })
            .await?;
        let mut packer = Packer::new()?;
        if let Some((id, dict)) = newest {
            packer.install(id, &dict)?;
            self.inner.dicts.add(id, &dict);
        }
        Ok(packer)
    }

    /// Stores the dictionary the packer's training made, if it has
    /// finished, and packs with it from then on. Failing to store it costs
    /// only bytes: the packer goes on with the one it has.
    async fn store_trained_dictionary(&self, packer: &Mutex<Packer>) {
        let finished = packer.lock().unwrap_or_else(|e| e.into_inner()).finished();
        let Some(training) = finished else {
            return;
        };
        let stored = match packing::trained(training).await {
            Some(dict) => self
                .run("audit_dict_write", async {
                    with_writer!(self, pool => {
                        let id = sqlx::query_scalar::<_, i64>(INSERT_DICT)
                            .bind(&dict)
                            .bind(micros(Utc::now()))
                            .fetch_one(pool)
                            .await?;
                        Ok((id, dict))
                    })
                })
                .await
                .map_err(|e| tracing::warn!(error = %e, "could not store the audit records' new dictionary"))
                .ok(),
            None => None,
        };
        let mut p = packer.lock().unwrap_or_else(|e| e.into_inner());
        match stored.map(|(id, dict)| p.install(id, &dict).map(|()| (id, dict))) {
            Some(Ok((id, dict))) => {
                self.inner.dicts.add(id, &dict);
                tracing::info!(
                    dict = id,
                    bytes = dict.len(),
                    "audit records are packed with a new dictionary"
                );
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "could not use the audit records' new dictionary");
                p.failed();
            }
            None => p.failed(),
        }
    }

    /// Reads the event index's journal back into `journal` (SQLite): only
    /// the rows another process appended when every row this process knows
    /// is still there, else all of it (a start, a merge or purge).
    async fn read_back_event_journal(&self, journal: &mut Journal) -> Result<(), StoreError> {
        let super::Backend::Sqlite { write, .. } = &self.inner.backend else {
            return Ok(());
        };
        let known = journal.seq;
        let (rows, seq, after) = self
            .run("audit_index_read_back", async {
                let mut tx = write.begin().await?;
                let seq = sqlx::query_scalar::<_, i64>(event_journal::JOURNAL_SEQ)
                    .fetch_optional(&mut *tx)
                    .await?
                    .unwrap_or(0);
                let there = match known {
                    Some(k) => Some(
                        sqlx::query_scalar::<_, i64>(event_journal::JOURNAL_COUNT_UP_TO)
                            .bind(k)
                            .fetch_one(&mut *tx)
                            .await?,
                    ),
                    None => None,
                };
                let after = journal.read_after(there);
                let query = match after {
                    Some(k) => sqlx::query(event_journal::JOURNAL_ROWS_AFTER).bind(k),
                    None => sqlx::query(event_journal::JOURNAL_ROWS),
                };
                let mut rows = Vec::new();
                for row in query.fetch_all(&mut *tx).await? {
                    let event = row.text("event_id")?;
                    rows.push((
                        index_key(&event, row.int("coalesce_key")?),
                        row.int("decision_id")?,
                    ));
                }
                tx.commit().await?;
                Ok((rows, seq, after))
            })
            .await?;
        match after {
            Some(_) => journal.appended(rows, seq),
            None => {
                journal.full_reads += 1;
                let count = rows.len() as i64;
                journal.reset(rows.into_iter().collect(), count, seq);
            }
        }
        Ok(())
    }

    /// Merges the event index's journal into `audit_events` (SQLite), in
    /// one sorted run. A failure leaves the journal as it was, to be merged
    /// after a later batch: the batch that triggered it is committed.
    async fn merge_event_journal(&self, journal: &mut Journal) {
        let super::Backend::Sqlite { write, .. } = &self.inner.backend else {
            return;
        };
        let started = std::time::Instant::now();
        let merged = self
            .run("audit_index_merge", async {
                let mut tx = write.begin().await?;
                let moved = sqlx::query(event_journal::MERGE)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query(event_journal::EMPTY).execute(&mut *tx).await?;
                let seq = sqlx::query_scalar::<_, i64>(event_journal::JOURNAL_SEQ)
                    .fetch_optional(&mut *tx)
                    .await?
                    .unwrap_or(0);
                tx.commit().await?;
                Ok((moved, seq))
            })
            .await;
        match merged {
            Ok((moved, seq)) => {
                let rows = journal.rows.len();
                journal.reset(HashMap::new(), 0, seq);
                self.metrics().audit_index_merged.inc_by(moved);
                tracing::debug!(
                    rows,
                    moved,
                    took_ms = started.elapsed().as_millis() as u64,
                    "merged the event index's journal"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, rows = journal.rows.len(),
                    "could not merge the event index's journal; it is kept and merged after a later batch");
            }
        }
    }

    /// The records whose window is still open, among the newest.
    async fn read_back_open_records(&self) -> Result<HashMap<i64, OpenRecord>, StoreError> {
        self.run("audit_open_records", async {
            with_writer!(self, pool => {
                let newest = sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(id) FROM audit_decisions")
                    .fetch_one(pool)
                    .await?
                    .unwrap_or(0);
                let rows = sqlx::query(OPEN_RECORDS)
                    .bind(newest.saturating_sub(READ_BACK))
                    .bind(micros(Utc::now()))
                    .fetch_all(pool)
                    .await?;
                let mut open = HashMap::new();
                for row in &rows {
                    let record = OpenRecord {
                        id: row.int("id")?,
                        first: row.int("at")?,
                        end: row.int("window_end")?,
                        counted: row.int("count")?.max(0) as u64,
                    };
                    open.insert(row.int("coalesce_key")?, record);
                }
                Ok(open)
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
             packed, packed_dict, eval_us, dispatch_us, at, count, last_at, sample \
             FROM audit_decisions{} \
             ORDER BY at DESC, id DESC LIMIT {pl}",
            c.sql()
        );
        self.run("audit_query", async {
            with_reader!(self, pool => {
                let rows = bind_args!(sqlx::query(&sql), &c.args).fetch_all(pool).await?;
                let dicts = dicts_for!(self, pool, rows);
                let mut entries = rows
                    .iter()
                    .map(|r| entry_from(r, &dicts))
                    .collect::<Result<Vec<_>, _>>()?;
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

    /// Records stored, events counted in them, and rows of the event
    /// index (for tests and the bench: the last two are equal when every
    /// event is counted once).
    pub async fn audit_totals(&self) -> Result<(i64, i64, i64), StoreError> {
        self.run("audit_count", async {
            with_reader!(self, pool => {
                let (records, counted) = sqlx::query_as::<_, (i64, i64)>(
                    "SELECT COUNT(*), CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM audit_decisions",
                )
                .fetch_one(pool)
                .await?;
                let indexed = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM audit_event_index")
                    .fetch_one(pool)
                    .await?;
                Ok((records, counted, indexed))
            })
        })
        .await
    }

    /// Bytes the store's data takes (SQLite: pages in use, after a WAL
    /// checkpoint; PostgreSQL: the database's size), for the bench.
    pub async fn data_bytes(&self) -> Result<i64, StoreError> {
        self.run("data_bytes", async {
            match &self.inner.backend {
                super::Backend::Sqlite { write, .. } => {
                    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                        .execute(write)
                        .await?;
                    let used: i64 = sqlx::query_scalar(
                        "SELECT (p.page_count - f.freelist_count) * s.page_size \
                         FROM pragma_page_count() p, pragma_freelist_count() f, pragma_page_size() s",
                    )
                    .fetch_one(write)
                    .await?;
                    Ok(used)
                }
                super::Backend::Postgres(pool) => Ok(sqlx::query_scalar(
                    "SELECT pg_database_size(current_database())::BIGINT",
                )
                .fetch_one(pool)
                .await?),
            }
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

    /// Decision `event` by `playbook` at `secs` plus `micros`.
    fn at(event: &str, secs: i64, micros: i64) -> Decision {
        let mut d = decision(event, "c2", secs);
        // Intents name the event only through their ids: identical ones.
        d.at += chrono::Duration::microseconds(micros);
        d
    }

    async fn entries(store: &Store) -> Vec<AuditEntry> {
        store
            .query_audit(&AuditQuery::default())
            .await
            .expect("query")
            .entries
    }

    async fn record_of(store: &Store, event: &str) -> Vec<i64> {
        store
            .query_audit(&AuditQuery {
                event_id: Some(event.into()),
                ..Default::default()
            })
            .await
            .expect("query")
            .entries
            .iter()
            .map(|e| e.id)
            .collect()
    }

    const T: i64 = 1_700_000_000;

    #[test]
    fn the_batch_statements_number_their_parameters_in_order() {
        // So that SQLite binds them by position (audit_stage::binds).
        for n in [1, 3, 64] {
            for sql in [
                count_events_sql(n),
                settle_sql(n),
                insert_index_sql(n),
                select_index_sql(n),
            ] {
                let got = super::super::audit_stage::tests::numbers(&sql);
                assert_eq!(got, (1..=got.len()).collect::<Vec<_>>(), "{sql}");
            }
        }
    }

    /// Another process appending to the journal costs a read of what it
    /// appended, not of the whole journal; a merge by it, a whole read.
    #[tokio::test]
    async fn another_process_s_appends_are_read_back_alone() {
        let (store, dir) = testing::sqlite().await;
        let config = crate::store::StoreConfig {
            audit_index_merge_rows: 6,
            ..crate::store::StoreConfig::default()
        };
        let other = Store::open(&config, dir.path()).await.expect("other");
        let full_reads = |s: &Store| {
            let s = s.clone();
            async move { s.inner.open_records.lock().await.journal.full_reads }
        };
        store
            .append_decisions(&[at("ev1", T, 0)])
            .await
            .expect("ev1");
        assert_eq!(full_reads(&store).await, 1, "the start");
        other
            .append_decisions(&[at("ev2", T, 1), at("ev3", T, 2)])
            .await
            .expect("ev2, ev3");
        // ev2 is the other's: counted once; ev4 is new.
        store
            .append_decisions(&[at("ev2", T, 1), at("ev4", T, 3)])
            .await
            .expect("ev2, ev4");
        assert_eq!(full_reads(&store).await, 1, "only the other's rows read");
        assert_eq!(store.metrics().audit_duplicates.get(), 1);
        // The other merges (six rows): the rows this one knew are gone.
        other
            .append_decisions(&[at("ev5", T, 4), at("ev6", T, 5)])
            .await
            .expect("ev5, ev6");
        assert_eq!(other.metrics().audit_index_merged.get(), 6);
        store
            .append_decisions(&[at("ev6", T, 5), at("ev1", T, 0), at("ev7", T, 6)])
            .await
            .expect("ev6, ev1, ev7");
        assert_eq!(full_reads(&store).await, 2, "read whole after a merge");
        assert_eq!(store.metrics().audit_duplicates.get(), 3);
        assert_eq!(store.audit_totals().await.expect("totals").1, 7);
    }

    #[tokio::test]
    async fn a_redelivered_decision_is_counted_once() {
        let (store, _dir) = testing::sqlite().await;
        let d = at("ev1", T, 0);
        let first = store
            .append_decisions(std::slice::from_ref(&d))
            .await
            .expect("first");
        // Redelivered (a later batch, and within one batch too).
        let again = store
            .append_decisions(&[d.clone(), d.clone()])
            .await
            .expect("again");
        assert_eq!(again, vec![first[0], first[0]], "the same record answers");
        let e = entries(&store).await;
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].count, 1, "counted once");
        assert_eq!(store.metrics().audit_duplicates.get(), 2);
        // Outside the window, too: the event index remembers it.
        let mut late = d.clone();
        late.at += chrono::Duration::hours(2);
        store.append_decisions(&[late]).await.expect("late");
        assert_eq!(entries(&store).await[0].count, 1);
    }

    #[tokio::test]
    async fn identical_decisions_in_a_window_are_one_record_and_every_event_finds_it() {
        let (store, _dir) = testing::sqlite().await;
        let ds: Vec<Decision> = (0..20).map(|i| at(&format!("ev{i}"), T + i, 0)).collect();
        store.append_decisions(&ds[..5]).await.expect("append");
        store.append_decisions(&ds[5..]).await.expect("append");
        let e = entries(&store).await;
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].count, 20);
        assert_eq!(e[0].event_id, "ev0", "the first event whole");
        assert_eq!(e[0].at, ds[0].at);
        assert_eq!(e[0].last_at, Some(ds[19].at));
        let sample: Vec<String> = (0..8).map(|i| format!("ev{i}")).collect();
        assert_eq!(e[0].sample, sample, "bounded by coalesce_sample");
        for d in &ds {
            assert_eq!(record_of(&store, &d.event_id).await, vec![e[0].id]);
        }
        assert_eq!(store.metrics().audit_coalesced.get(), 19);
        // Another playbook is a record of its own; other intents for an
        // event already counted (a stateful playbook deciding a redelivered
        // event otherwise) are not counted again.
        let mut other = at("ev0", T, 0);
        other.playbook = "other".into();
        let mut more = at("ev1", T, 0);
        more.intents.clear();
        store
            .append_decisions(&[other, more])
            .await
            .expect("append");
        assert_eq!(entries(&store).await.len(), 2);
        assert_eq!(record_of(&store, "ev0").await.len(), 2);
        assert_eq!(store.metrics().audit_duplicates.get(), 1);
    }

    #[tokio::test]
    async fn the_decision_carrying_out_an_approved_intent_is_recorded_beside_the_asking_one() {
        let (store, _dir) = testing::sqlite().await;
        let mut asking = at("ev", T, 0);
        let inner = asking.intents[0].action.clone();
        asking.intents = vec![Intent::new(
            "ev",
            "c2",
            Action::Approve {
                intent: Box::new(inner.clone()),
                timeout: Ttl::parse("1h").expect("valid"),
                default: crate::decide::intent::ApprovalDefault::Drop,
                approvers: Vec::new(),
                reason: None,
            },
        )];
        let mut approved = at("ev", T + 5, 0);
        approved.intents = vec![Intent::new("ev", "c2", inner)];
        store
            .append_decisions(&[asking.clone(), approved.clone()])
            .await
            .expect("append");
        // Both redelivered: neither counted again.
        store
            .append_decisions(&[asking, approved])
            .await
            .expect("append");
        let e = entries(&store).await;
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e.iter().all(|e| e.count == 1));
        assert_eq!(record_of(&store, "ev").await.len(), 2);
    }

    #[tokio::test]
    async fn the_last_event_of_a_window_is_in_it_and_the_next_opens_another() {
        let (store, _dir) = testing::sqlite().await;
        let window = store.config().coalesce_window_secs as i64;
        store
            .append_decisions(&[
                at("first", T, 0),
                at("last", T + window, -1),
                at("next", T + window, 0),
            ])
            .await
            .expect("append");
        let e = entries(&store).await;
        assert_eq!(e.len(), 2, "{e:?}");
        let (newer, older) = (&e[0], &e[1]);
        assert_eq!((older.event_id.as_str(), older.count), ("first", 2));
        assert_eq!((newer.event_id.as_str(), newer.count), ("next", 1));
        assert_eq!(record_of(&store, "last").await, vec![older.id]);
    }

    #[tokio::test]
    async fn a_restart_inside_a_window_goes_on_counting_in_the_open_record() {
        let dir = tempfile::tempdir().expect("dir");
        let config = crate::store::StoreConfig::default();
        let store = Store::open(&config, dir.path()).await.expect("open");
        // Now: a start reads back the windows open now.
        let t = Utc::now().timestamp();
        store
            .append_decisions(&[at("a", t, 0), at("b", t + 1, 0)])
            .await
            .expect("append");
        store.close().await;
        let store = Store::open(&config, dir.path()).await.expect("reopen");
        store
            .append_decisions(&[at("c", t + 30, 0), at("b", t + 1, 0)])
            .await
            .expect("append");
        let e = entries(&store).await;
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].count, 3, "c counted, b (redelivered) not again");
    }

    #[tokio::test]
    async fn clock_steps_move_first_seen_or_open_a_record_never_lose_a_count() {
        let (store, _dir) = testing::sqlite().await;
        store
            .append_decisions(&[
                at("a", T, 0),
                // A small step back: still this window; first seen moves.
                at("b", T - 5, 0),
                // A jump forward: a record of its own.
                at("c", T + 3_600, 0),
                // Back again after the jump: the open record is c's, whose
                // window this is not in.
                at("d", T + 10, 0),
                // A step back beyond a window: its own record.
                at("e", T - 3_600, 0),
            ])
            .await
            .expect("append");
        let e = entries(&store).await;
        let total: u64 = e.iter().map(|e| e.count).sum();
        assert_eq!(total, 5, "every event counted once: {e:?}");
        let first = e.iter().find(|e| e.event_id == "a").expect("a's record");
        assert_eq!(first.count, 2);
        assert_eq!(first.at, at("b", T - 5, 0).at, "first seen moved back");
        assert_eq!(e.len(), 4);
        for ev in ["a", "b", "c", "d", "e"] {
            assert_eq!(record_of(&store, ev).await.len(), 1, "{ev} resolves");
        }
    }

    #[tokio::test]
    async fn actions_of_later_events_land_on_the_records_action_and_never_go_back_to_queued() {
        let (store, _dir) = testing::sqlite().await;
        let (a, b) = (at("a", T, 0), at("b", T + 1, 0));
        store
            .append_decisions(&[a.clone(), b.clone()])
            .await
            .expect("append");
        let action = |d: &Decision, status| ActionRecord {
            action_id: d.intents[0].action_id.clone(),
            action: "quarantine".into(),
            target: Some("shop/checkout-7d9f".into()),
            status,
            reason: None,
            code: None,
            attempts: 1,
            duration_us: 1,
            at: d.at,
        };
        for (d, status) in [
            (&a, ActionStatus::Queued),
            (&a, ActionStatus::Applied),
            (&b, ActionStatus::Queued),
            (&b, ActionStatus::Applied),
            (&a, ActionStatus::Queued),
        ] {
            store
                .record_action(&d.event_id, "c2", &action(d, status), None)
                .await
                .expect("action");
        }
        let e = entries(&store).await;
        assert_eq!(e.len(), 1);
        assert_eq!(
            e[0].actions.len(),
            1,
            "one row per action: {:?}",
            e[0].actions
        );
        assert_eq!(e[0].actions[0].status, ActionStatus::Applied);
        assert_eq!(e[0].outcome, Outcome::Applied);
    }

    #[tokio::test]
    async fn a_zero_window_keeps_one_record_per_decision_but_still_counts_once() {
        let dir = tempfile::tempdir().expect("dir");
        let config = crate::store::StoreConfig {
            coalesce_window_secs: 0,
            ..Default::default()
        };
        let store = Store::open(&config, dir.path()).await.expect("open");
        store
            .append_decisions(&[at("a", T, 0), at("b", T, 0), at("a", T, 0)])
            .await
            .expect("append");
        assert_eq!(entries(&store).await.len(), 2);
    }

    #[tokio::test]
    async fn records_from_before_packing_read_as_they_were_and_a_corrupt_body_is_an_error() {
        let (store, _dir) = testing::sqlite().await;
        let write = testing::sqlite_writer(&store);
        sqlx::query(
            "INSERT INTO audit_decisions (event_id, playbook, mode, outcome, event_json, \
             intents_json, targets, actions, eval_us, dispatch_us, at, count, last_at, \
             window_end, sample) VALUES ('old', 'pb', 'enforce', 'applied', \
             '{\"kind\":\"alert\",\"dataset\":\"panos.threat\"}', \
             '[{\"action\":\"tag_ip\",\"ip\":\"192.0.2.7\"}]', '', '', 1, 1, 5, 1, 5, 5, '')",
        )
        .execute(write)
        .await
        .expect("insert");
        let page = store
            .query_audit(&AuditQuery::default())
            .await
            .expect("query");
        assert_eq!(page.entries.len(), 1);
        assert_eq!(page.entries[0].event.dataset, "panos.threat");
        assert_eq!(
            page.entries[0].intents,
            serde_json::json!([{"action": "tag_ip", "ip": "192.0.2.7"}])
        );
        // A body that is not what the writer packs: an error saying so,
        // not a panic or an empty record.
        sqlx::query("UPDATE audit_decisions SET packed = X'28B52FFD00', packed_dict = 0")
            .execute(write)
            .await
            .expect("update");
        let err = store
            .query_audit(&AuditQuery::default())
            .await
            .expect_err("corrupt");
        assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
        // One packed with a dictionary the store does not have.
        let packed = zstd::bulk::compress(b"{}\0[]", 3).expect("compress");
        sqlx::query("UPDATE audit_decisions SET packed = $1, packed_dict = 99")
            .bind(packed)
            .execute(write)
            .await
            .expect("update");
        let err = store
            .query_audit(&AuditQuery::default())
            .await
            .expect_err("no dictionary");
        assert!(err.to_string().contains("dictionary 99"), "{err}");
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
