//! What one audit batch holds in memory before writing it in a few
//! multi-row statements.
//!
//! During a storm most decisions open a record of their own, and each
//! record used to cost an INSERT, an upsert per action (queued, then
//! final), a target append and a settle: one round trip each, and on
//! SQLite each round trip is a hop to its worker thread. Here a batch
//! keeps
//! - the records it opens ([`Staged`]): ids reserved up front, counts,
//!   targets, action rows and outcome changed in memory, inserted at the
//!   end (or before the store is asked about them);
//! - the first-event action rows of records already stored
//!   ([`PendingUpserts`]): the last state of each row, upserted at the end.
//!
//! Both keep the rule the SQL keeps: a final status is never taken back to
//! `queued`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::packing::Packer;

use crate::decide::decision::{settled_outcome, ActionRecord, ActionStatus, Outcome};

/// A record this batch opened, as it will be inserted.
#[derive(Debug)]
pub(crate) struct StagedRecord {
    pub id: i64,
    pub event_id: String,
    pub playbook: String,
    pub mode: &'static str,
    pub outcome: String,
    pub reason: Option<String>,
    pub event_json: String,
    pub intents_json: String,
    pub packed: Option<Vec<u8>>,
    pub packed_dict: i64,
    /// Framed searchable targets (`"\na\nb\n"`).
    pub targets: String,
    pub actions: String,
    pub eval_us: i64,
    pub dispatch_us: i64,
    pub at: i64,
    pub coalesce_key: i64,
    pub count: i64,
    pub last_at: i64,
    pub window_end: i64,
    pub sample: String,
    /// Its action rows, in the order they were first written.
    pub rows: Vec<ActionRecord>,
}

/// The records one batch opened and the ids it reserved for them.
#[derive(Debug, Default)]
pub(crate) struct Staged {
    /// Whether ids come from a PostgreSQL sequence (else SQLite's).
    pub postgres: bool,
    /// Decisions left in the batch: at most as many records to open.
    pub want: i64,
    /// Reserved ids not handed out yet, in increasing order.
    free: VecDeque<i64>,
    records: Vec<StagedRecord>,
    by_id: HashMap<i64, usize>,
    /// Packs the bodies of the records it opens (stored plain without).
    pub packer: Option<Arc<Mutex<Packer>>>,
}

/// Whether `framed` (`"\na\nb\n"`) holds `item` as a whole line.
pub(crate) fn framed_contains(framed: &str, item: &str) -> bool {
    framed
        .match_indices(item)
        .any(|(i, _)| framed[..i].ends_with('\n') && framed[i + item.len()..].starts_with('\n'))
}

fn target_of(r: &ActionRecord) -> &str {
    r.target.as_deref().unwrap_or("")
}

/// The SQL's rule: a row takes `new` unless that would take a final status
/// back to `queued`.
fn takes(current: ActionStatus, new: ActionStatus) -> bool {
    current == ActionStatus::Queued || new != ActionStatus::Queued
}

impl Staged {
    /// A reserved id, or none when the reservation is used up.
    pub fn new(postgres: bool) -> Staged {
        Staged {
            postgres,
            ..Staged::default()
        }
    }

    pub fn take_id(&mut self) -> Option<i64> {
        self.free.pop_front()
    }

    /// Adds reserved ids to hand out.
    pub fn reserve(&mut self, ids: impl IntoIterator<Item = i64>) {
        self.free.extend(ids);
        self.free.make_contiguous().sort_unstable();
    }

    /// The lowest reserved id not handed out (every higher one is unused
    /// too: they go out in order).
    pub fn unused(&self) -> Option<i64> {
        self.free.front().copied()
    }

    pub fn contains(&self, id: i64) -> bool {
        self.by_id.contains_key(&id)
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn stage(&mut self, record: StagedRecord) {
        self.by_id.insert(record.id, self.records.len());
        self.records.push(record);
    }

    fn get(&mut self, id: i64) -> Option<&mut StagedRecord> {
        let i = *self.by_id.get(&id)?;
        self.records.get_mut(i)
    }

    /// One more event counted in record `id` at `at`; its id joins the
    /// sample while the record holds fewer than `sample_max`.
    pub fn count(&mut self, id: i64, at: i64, event_id: Option<&str>, sample_max: i64) {
        if let Some(r) = self.get(id) {
            if let Some(e) = event_id.filter(|_| r.count < sample_max) {
                r.sample.push_str(&e.replace('\n', " "));
                r.sample.push('\n');
            }
            r.count += 1;
            r.last_at = r.last_at.max(at);
            r.at = r.at.min(at);
        }
    }

    /// The record's first event's action record: upserted by action id
    /// and target.
    pub fn upsert_action(&mut self, id: i64, record: &ActionRecord) {
        let Some(r) = self.get(id) else { return };
        let row = r
            .rows
            .iter_mut()
            .find(|a| a.action_id == record.action_id && target_of(a) == target_of(record));
        match row {
            Some(row) if takes(row.status, record.status) => *row = record.clone(),
            Some(_) => {}
            None => r.rows.push(record.clone()),
        }
    }

    /// A later event's action record: it lands on the record's rows of the
    /// same action and target (keeping their ids), or becomes a row of
    /// its own when the record has none.
    pub fn coalesced_action(&mut self, id: i64, record: &ActionRecord) {
        let Some(r) = self.get(id) else { return };
        let mut matched = false;
        for row in r
            .rows
            .iter_mut()
            .filter(|a| a.action == record.action && target_of(a) == target_of(record))
        {
            matched = true;
            if takes(row.status, record.status) {
                let action_id = std::mem::take(&mut row.action_id);
                *row = ActionRecord {
                    action_id,
                    ..record.clone()
                };
            }
        }
        if !matched {
            r.rows.push(record.clone());
        }
    }

    /// Adds `target` to the record's searchable targets unless there.
    pub fn add_target(&mut self, id: i64, target: &str) {
        let Some(r) = self.get(id) else { return };
        let line = target.replace('\n', " ");
        if !framed_contains(&r.targets, &line) {
            r.targets.push_str(&line);
            r.targets.push('\n');
        }
    }

    /// Settles the record's outcome to `outcome`, or (none given) as its
    /// action rows say; `false` when `id` is not staged here.
    pub fn settle(&mut self, id: i64, outcome: Option<&Outcome>) -> bool {
        let Some(r) = self.get(id) else { return false };
        let settled = match outcome {
            Some(o) => Some(o.clone()),
            None => {
                // As the store would list them: by time, then action id.
                let mut rows = r.rows.clone();
                rows.sort_by(|a, b| (a.at, &a.action_id).cmp(&(b.at, &b.action_id)));
                settled_outcome(&rows)
            }
        };
        if let Some(o) = settled {
            let (status, reason) = super::audit::outcome_parts(&o);
            r.outcome = status.to_owned();
            r.reason = reason.map(str::to_owned);
        }
        true
    }

    /// The staged records, to insert; the reservation stays.
    pub fn take(&mut self) -> Vec<StagedRecord> {
        self.by_id.clear();
        std::mem::take(&mut self.records)
    }
}

/// First-event action rows of stored records, by record: the last state
/// each row (action id and target) is to be upserted with.
#[derive(Debug, Default)]
pub(crate) struct PendingUpserts {
    rows: HashMap<i64, Vec<ActionRecord>>,
}

impl PendingUpserts {
    pub fn put(&mut self, id: i64, record: &ActionRecord) {
        let rows = self.rows.entry(id).or_default();
        let row = rows
            .iter_mut()
            .find(|a| a.action_id == record.action_id && target_of(a) == target_of(record));
        match row {
            Some(row) if takes(row.status, record.status) => *row = record.clone(),
            Some(_) => {}
            None => rows.push(record.clone()),
        }
    }

    /// Whether record `id` has rows waiting.
    #[cfg(test)]
    pub fn has(&self, id: i64) -> bool {
        self.rows.contains_key(&id)
    }

    /// The rows of record `id` (all when `None`), to write now, in record
    /// order.
    pub fn take(&mut self, only: Option<i64>) -> Vec<(i64, ActionRecord)> {
        let mut taken: Vec<(i64, Vec<ActionRecord>)> = match only {
            Some(id) => self.rows.remove(&id).map(|r| (id, r)).into_iter().collect(),
            None => self.rows.drain().collect(),
        };
        taken.sort_by_key(|(id, _)| *id);
        taken
            .into_iter()
            .flat_map(|(id, rows)| rows.into_iter().map(move |r| (id, r)))
            .collect()
    }
}

/// The size of the next multi-row statement for `n` rows: the largest
/// power of two up to `max`, so that few statement texts are prepared.
fn chunk(n: usize, max: usize) -> usize {
    let n = n.clamp(1, max.max(1));
    1 << (usize::BITS - 1 - n.leading_zeros())
}

/// `items` in the slices multi-row statements take them in: sizes of
/// [`chunk`] (127 rows are 7 statements of 7 prepared sizes).
pub(crate) fn chunks<T>(items: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (part, tail) = rest.split_at(chunk(rest.len(), max));
        rest = tail;
        Some(part)
    })
}

/// The columns a staged record is inserted with, in bind order.
pub(crate) const RECORD_COLUMNS: &str = "id, event_id, playbook, mode, outcome, reason, \
     event_json, intents_json, targets, actions, eval_us, dispatch_us, at, instance, \
     coalesce_key, count, last_at, window_end, sample, packed, packed_dict";
const RECORD_ARITY: usize = 21;

/// Inserts `n` staged records with their reserved ids. PostgreSQL's
/// identity column takes given ids only when told so.
pub(crate) fn insert_records_sql(n: usize, postgres: bool) -> String {
    let overriding = if postgres {
        " OVERRIDING SYSTEM VALUE"
    } else {
        ""
    };
    format!(
        "INSERT INTO audit_decisions ({RECORD_COLUMNS}){overriding} VALUES {}",
        placeholders(n, RECORD_ARITY)
    )
}

/// Writes `n` action rows; an existing row is updated under the rule that
/// never takes a final status back to `queued`.
pub(crate) fn upsert_actions_sql(n: usize) -> String {
    format!(
        "INSERT INTO audit_actions \
         (decision_id, action_id, target, action, status, reason, code, attempts, duration_us, at) \
         VALUES {} \
         ON CONFLICT (decision_id, action_id, target) DO UPDATE SET \
         action = excluded.action, status = excluded.status, reason = excluded.reason, \
         code = excluded.code, attempts = excluded.attempts, duration_us = excluded.duration_us, \
         at = excluded.at \
         WHERE audit_actions.status = 'queued' OR excluded.status <> 'queued'",
        placeholders(n, 10)
    )
}

/// The action rows of `n` records (`$1`…), to read their state.
pub(crate) fn action_states_sql(n: usize) -> String {
    let params: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    format!(
        "SELECT decision_id, action, target, status FROM audit_actions \
         WHERE decision_id IN ({})",
        params.join(", ")
    )
}

/// `n` action rows of coalesced records, by record (`column1`), action
/// (`column2`) and target (`column3`), to the status `column4` and the
/// rest: a row keeps one state per action however many events the record
/// counts, and a final status is never taken back to `queued`.
pub(crate) fn update_coalesced_actions_sql(n: usize) -> String {
    format!(
        "UPDATE audit_actions SET status = v.column4, reason = v.column5, code = v.column6, \
         attempts = v.column7, duration_us = v.column8, at = v.column9 \
         FROM (VALUES {}) AS v \
         WHERE audit_actions.decision_id = v.column1 AND audit_actions.action = v.column2 \
         AND audit_actions.target = v.column3 \
         AND (audit_actions.status = 'queued' OR v.column4 <> 'queued')",
        placeholders(n, 9)
    )
}

/// How a transaction's backend binds parameters. SQLite finds the number
/// of a `$N` parameter by scanning the list of the statement's parameter
/// names, once per parameter bound: a multi-row statement's thousand
/// parameters cost that squared (4 % of the service's CPU in a storm). A
/// bare `?` is bound by its position, with no lookup.
pub(crate) trait Binds {
    const POSITIONAL: bool;
}

impl Binds for sqlx::Transaction<'_, sqlx::Sqlite> {
    const POSITIONAL: bool = true;
}

impl Binds for sqlx::Transaction<'_, sqlx::Postgres> {
    const POSITIONAL: bool = false;
}

/// `sql` (a statement made here, each `$N` once and in order) as `tx`'s
/// backend binds it best.
pub(crate) fn binds<T: Binds>(_tx: &T, sql: String) -> String {
    if T::POSITIONAL {
        positional(&sql)
    } else {
        sql
    }
}

/// `$1, $2, …` as `?`: only for statements whose parameters appear once
/// each, in order, outside any quotes (those made here).
fn positional(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

/// `($1, …), (…)`: `rows` rows of `arity` numbered parameters.
pub(crate) fn placeholders(rows: usize, arity: usize) -> String {
    let mut out = String::new();
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..arity {
            if c > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(r * arity + c + 1).to_string());
        }
        out.push(')');
    }
    out
}

/// A stored action row of a coalesced record, as read at the end of a
/// batch (or before a write of the record's first event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoredRow {
    Missing,
    Queued,
    Final,
}

/// What the rows of a coalesced record's later events make the batch
/// write, once the stored rows are known.
#[derive(Debug, PartialEq)]
pub(crate) enum RowWrite {
    /// No row yet: the first record's row, in the state the later ones
    /// leave it.
    Insert(ActionRecord),
    /// The row (by record, action and target) takes this state.
    Update(ActionRecord),
}

/// One action row (record, action, target) of a coalesced record, as this
/// batch knows it. A storm counts thousands of events into a few records,
/// and every event's actions land on the same rows: a batch reads their
/// state once, for all of them in one statement, applies its events'
/// records in memory and writes each row once.
#[derive(Debug, Default)]
pub(crate) struct CoalescedRow {
    /// Whether the stored row is `queued`; `None` until read.
    queued: Option<bool>,
    /// Until read: this batch's records for the row, in order.
    unread: Vec<ActionRecord>,
    /// Once read: the state to write.
    pending: Option<ActionRecord>,
    /// Once read, when there was no row: the action id to insert it under.
    insert_as: Option<String>,
}

impl CoalescedRow {
    /// A later event's record of this row.
    pub(crate) fn push(&mut self, record: &ActionRecord) {
        match self.queued {
            None => self.unread.push(record.clone()),
            Some(queued) => {
                // The SQL's rule: a final status is never taken back.
                if queued || record.status != ActionStatus::Queued {
                    self.queued = Some(record.status == ActionStatus::Queued);
                    self.pending = Some(record.clone());
                }
            }
        }
    }

    /// Whether the stored row must be read before [`CoalescedRow::resolve`].
    pub(crate) fn unread(&self) -> bool {
        self.queued.is_none()
    }

    /// Applies the records held while unread to the stored row.
    pub(crate) fn resolve(&mut self, stored: StoredRow) {
        if self.queued.is_some() {
            return;
        }
        let mut records = std::mem::take(&mut self.unread).into_iter();
        self.queued = Some(match stored {
            StoredRow::Queued => true,
            StoredRow::Final => false,
            StoredRow::Missing => match records.next() {
                Some(first) => {
                    // Inserted under its first event's action id.
                    self.insert_as = Some(first.action_id.clone());
                    let queued = first.status == ActionStatus::Queued;
                    self.pending = Some(first);
                    queued
                }
                None => false,
            },
        });
        for r in records {
            self.push(&r);
        }
    }

    /// The write this row still needs, if any (resolved rows only).
    pub(crate) fn take_write(&mut self) -> Option<RowWrite> {
        let mut pending = self.pending.take()?;
        Some(match self.insert_as.take() {
            Some(action_id) => {
                pending.action_id = action_id;
                RowWrite::Insert(pending)
            }
            None => RowWrite::Update(pending),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn rec(action_id: &str, action: &str, status: ActionStatus, secs: i64) -> ActionRecord {
        ActionRecord {
            action_id: action_id.into(),
            action: action.into(),
            target: Some("shop/a".into()),
            status,
            reason: Some(format!("{status:?} {action_id}")),
            code: None,
            attempts: 1,
            duration_us: 5,
            at: DateTime::<Utc>::from_timestamp(secs, 0).expect("valid"),
        }
    }

    fn staged(id: i64) -> Staged {
        let mut s = Staged::default();
        s.stage(StagedRecord {
            id,
            event_id: "e1".into(),
            playbook: "pb".into(),
            mode: "enforce",
            outcome: "pending".into(),
            reason: Some("dispatching".into()),
            event_json: "{}".into(),
            intents_json: "[]".into(),
            packed: None,
            packed_dict: 0,
            targets: "\nshop/a\n".into(),
            actions: "\nquarantine\n".into(),
            eval_us: 1,
            dispatch_us: 1,
            at: 100,
            coalesce_key: 7,
            count: 1,
            last_at: 100,
            window_end: 200,
            sample: "\ne1\n".into(),
            rows: Vec::new(),
        });
        s
    }

    #[test]
    fn reserved_ids_are_handed_out_in_order_and_the_rest_is_given_back() {
        let mut s = Staged::default();
        assert_eq!(s.take_id(), None, "nothing reserved");
        s.reserve([13, 11, 12]);
        assert_eq!((s.take_id(), s.take_id()), (Some(11), Some(12)));
        assert_eq!(s.unused(), Some(13));
        assert_eq!(s.take_id(), Some(13));
        assert_eq!((s.take_id(), s.unused()), (None, None));
    }

    #[test]
    fn a_final_row_never_goes_back_to_queued_and_later_events_keep_the_rows_id() {
        let mut s = staged(1);
        s.upsert_action(1, &rec("q1", "quarantine", ActionStatus::Queued, 1));
        s.upsert_action(1, &rec("q1", "quarantine", ActionStatus::Applied, 2));
        s.upsert_action(1, &rec("q1", "quarantine", ActionStatus::Queued, 3));
        let rows = &s.records[0].rows;
        assert_eq!((rows.len(), rows[0].status), (1, ActionStatus::Applied));
        // A later event's failure lands on the first event's row.
        s.coalesced_action(1, &rec("q2", "quarantine", ActionStatus::Failed, 4));
        s.coalesced_action(1, &rec("q3", "quarantine", ActionStatus::Queued, 5));
        let rows = &s.records[0].rows;
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].action_id.as_str(), rows[0].status),
            ("q1", ActionStatus::Failed)
        );
        // An action the record has no row of gets its own.
        s.coalesced_action(1, &rec("n2", "notify", ActionStatus::Applied, 6));
        assert_eq!(s.records[0].rows.len(), 2);
    }

    #[test]
    fn counts_targets_and_outcome_change_in_memory() {
        let mut s = staged(1);
        s.count(1, 150, Some("e2"), 2);
        s.count(1, 90, Some("e3"), 2);
        s.add_target(1, "shop/a");
        s.add_target(1, "10.0.0.9");
        s.upsert_action(1, &rec("q1", "quarantine", ActionStatus::Skipped, 1));
        assert!(s.settle(1, None));
        assert!(!s.settle(2, None), "not staged here");
        let r = &s.take()[0];
        assert_eq!((r.count, r.at, r.last_at), (3, 90, 150));
        assert_eq!(r.sample, "\ne1\ne2\n", "the sample stops at its bound");
        assert_eq!(r.targets, "\nshop/a\n10.0.0.9\n");
        assert_eq!(r.outcome, "pending", "only skipped actions");
        assert!(s.is_empty() && !s.contains(1));
    }

    #[test]
    fn pending_upserts_keep_each_rows_last_state_and_come_out_in_order() {
        let mut p = PendingUpserts::default();
        p.put(2, &rec("b", "notify", ActionStatus::Queued, 1));
        p.put(2, &rec("b", "notify", ActionStatus::Applied, 2));
        p.put(2, &rec("b", "notify", ActionStatus::Queued, 3));
        p.put(1, &rec("a", "quarantine", ActionStatus::Queued, 1));
        assert!(p.has(2) && p.has(1) && !p.has(3));
        let two = p.take(Some(2));
        assert_eq!(two.len(), 1);
        assert_eq!(two[0].1.status, ActionStatus::Applied);
        let rest = p.take(None);
        assert_eq!(rest.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1]);
        assert!(!p.has(1));
    }

    #[test]
    fn a_coalesced_row_read_queued_takes_the_last_record_never_back_to_queued() {
        let mut row = CoalescedRow::default();
        for (id, status) in [
            ("b", ActionStatus::Queued),
            ("c", ActionStatus::Applied),
            ("d", ActionStatus::Queued),
        ] {
            row.push(&rec(id, "quarantine", status, 1));
        }
        assert!(row.unread());
        row.resolve(StoredRow::Queued);
        assert!(!row.unread());
        match row.take_write() {
            Some(RowWrite::Update(r)) => {
                assert_eq!(
                    r.status,
                    ActionStatus::Applied,
                    "d's queued does not undo c"
                );
                assert_eq!(r.action_id, "c");
            }
            other => panic!("an update, not {other:?}"),
        }
        assert_eq!(row.take_write(), None, "written once");
        // Known now: a later record is applied in memory.
        row.push(&rec("e", "quarantine", ActionStatus::Failed, 2));
        assert!(matches!(row.take_write(), Some(RowWrite::Update(r)) if r.action_id == "e"));
    }

    #[test]
    fn a_coalesced_row_read_final_only_takes_final_records() {
        let mut row = CoalescedRow::default();
        row.push(&rec("b", "quarantine", ActionStatus::Queued, 1));
        row.resolve(StoredRow::Final);
        assert_eq!(
            row.take_write(),
            None,
            "a queued record never overwrites a final row"
        );
        row.push(&rec("c", "quarantine", ActionStatus::Skipped, 1));
        assert!(
            matches!(row.take_write(), Some(RowWrite::Update(r)) if r.status == ActionStatus::Skipped)
        );
    }

    #[test]
    fn a_missing_row_is_inserted_under_its_first_events_action_id() {
        let mut row = CoalescedRow::default();
        row.push(&rec("first", "notify", ActionStatus::Queued, 1));
        row.push(&rec("later", "notify", ActionStatus::Applied, 2));
        row.push(&rec("latest", "notify", ActionStatus::Queued, 3));
        row.resolve(StoredRow::Missing);
        match row.take_write() {
            Some(RowWrite::Insert(r)) => {
                assert_eq!(r.action_id, "first");
                assert_eq!(r.status, ActionStatus::Applied);
                assert_eq!(r.reason.as_deref(), Some("Applied later"));
            }
            other => panic!("an insert, not {other:?}"),
        }
        // Inserted: what follows updates it.
        row.push(&rec("next", "notify", ActionStatus::Failed, 4));
        assert!(matches!(row.take_write(), Some(RowWrite::Update(r)) if r.action_id == "next"));
    }

    /// The numbers of `sql`'s `$N` parameters, in textual order.
    pub(crate) fn numbers(sql: &str) -> Vec<usize> {
        sql.split('$')
            .skip(1)
            .map(|rest| {
                rest.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse()
                    .expect("a numbered parameter")
            })
            .collect()
    }

    #[test]
    fn every_multi_row_statement_numbers_its_parameters_in_order() {
        // What makes them safe to bind by position on SQLite.
        for n in [1, 2, 64] {
            for sql in [
                insert_records_sql(n, false),
                insert_records_sql(n, true),
                upsert_actions_sql(n),
                action_states_sql(n),
                update_coalesced_actions_sql(n),
                crate::store::event_journal::append_sql(n),
            ] {
                let got = numbers(&sql);
                assert_eq!(got, (1..=got.len()).collect::<Vec<_>>(), "{sql}");
                let bare = positional(&sql);
                assert!(!bare.contains('$'), "{bare}");
                assert_eq!(bare.matches('?').count(), got.len());
            }
        }
        assert_eq!(
            positional("a = $1 AND b IN ($2, $10)"),
            "a = ? AND b IN (?, ?)"
        );
    }

    #[test]
    fn statement_sizes_are_powers_of_two() {
        assert_eq!(
            [1, 2, 3, 64, 65, 1000].map(|n| chunk(n, 64)),
            [1, 2, 2, 64, 64, 64]
        );
        let sizes: Vec<usize> = chunks(&[0; 127], 128).map(<[i32]>::len).collect();
        assert_eq!(sizes, [64, 32, 16, 8, 4, 2, 1]);
        assert_eq!(chunks(&[0; 0], 64).count(), 0);
        assert!(framed_contains("\nshop/a\n10.0.0.9\n", "shop/a"));
        assert!(
            !framed_contains("\nshop/ab\n", "shop/a"),
            "a whole line only"
        );
        assert_eq!(
            placeholders(2, 3),
            "($1, $2, $3), ($4, $5, $6)",
            "numbered row by row"
        );
        assert!(insert_records_sql(1, true).contains("OVERRIDING SYSTEM VALUE"));
        assert!(!insert_records_sql(1, false).contains("OVERRIDING"));
    }
}
