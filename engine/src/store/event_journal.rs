//! The event index's journal (SQLite): new rows of the event index are
//! appended to `audit_events_new` in sequence and merged into
//! `audit_events` in large sorted runs.
//!
//! Why: event ids are content hashes, so each index row lands on a random
//! page of `audit_events`' primary key, and SQLite writes every page a
//! commit touched whole to its WAL (and again at the checkpoint). During a
//! storm that was about two 4 KiB pages per decided event, the largest
//! single cost of deciding one. Appended in sequence, a commit touches one
//! page per few dozen rows; a merge of `merge_rows` sorted rows touches
//! each page of the primary key at most once.
//!
//! What stays true: every event is counted once per playbook. The journal
//! has no index of its own, so the writer answers "was this event counted"
//! for its rows from memory ([`Journal`]), read back from the table after a
//! start and whenever the table's sequence moved without this process (a
//! second process on the same file, a purge). Readers look events up in the
//! view `audit_event_index`, both tables; the journal part is a scan of at
//! most `merge_rows` rows. PostgreSQL keeps inserting into `audit_events`:
//! it logs a B-tree insert as a small record, not a page, and its replicas
//! share the index.

use std::collections::HashMap;

/// The last `seq` the journal handed out (0: none yet).
pub(crate) const JOURNAL_SEQ: &str =
    "SELECT seq FROM sqlite_sequence WHERE name = 'audit_events_new'";

/// Every row of the journal, to rebuild [`Journal`] from.
pub(crate) const JOURNAL_ROWS: &str =
    "SELECT event_id, coalesce_key, decision_id FROM audit_events_new";

/// The rows another process appended after the sequence this one knows.
pub(crate) const JOURNAL_ROWS_AFTER: &str =
    "SELECT event_id, coalesce_key, decision_id FROM audit_events_new WHERE seq > $1";

/// How many of the rows up to a sequence are still there: all that this
/// process knows of, unless something merged or purged them.
pub(crate) const JOURNAL_COUNT_UP_TO: &str =
    "SELECT count(*) FROM audit_events_new WHERE seq <= $1";

/// Moves the journal into the index, sorted by its key so that each page
/// is written once. (`WHERE true`: SQLite would otherwise read `ON` as a
/// join's.) A row already there is left as it is: the event was counted.
pub(crate) const MERGE: &str = "INSERT INTO audit_events (event_id, coalesce_key, decision_id) \
     SELECT event_id, coalesce_key, decision_id FROM audit_events_new WHERE true \
     ORDER BY event_id, coalesce_key ON CONFLICT DO NOTHING";

pub(crate) const EMPTY: &str = "DELETE FROM audit_events_new";

/// `n` journal rows.
pub(crate) fn append_sql(n: usize) -> String {
    format!(
        "INSERT INTO audit_events_new (event_id, coalesce_key, decision_id) VALUES {}",
        super::audit_stage::placeholders(n, 3)
    )
}

/// The journal's rows as this process knows them: the record each event
/// and key was counted in (keyed by [`index_key`]).
#[derive(Debug, Default)]
pub(crate) struct Journal {
    pub(crate) rows: HashMap<u128, i64>,
    /// The journal's sequence when `rows` was last true to it; `None`:
    /// read it back before the next batch.
    pub(crate) seq: Option<i64>,
    /// How many rows the table held then (an event counted twice by two
    /// processes is two rows, one entry of `rows`).
    pub(crate) count: i64,
    /// Whole read-backs so far (the others read only what another process
    /// appended).
    pub(crate) full_reads: u64,
}

impl Journal {
    /// The record event `event_id` was counted in under `key`, if the
    /// journal holds it.
    pub(crate) fn record_of(&self, event_id: &str, key: i64) -> Option<i64> {
        self.rows.get(&index_key(event_id, key)).copied()
    }

    /// Whether `seq` (read in a batch's transaction) is the journal this
    /// process knows.
    pub(crate) fn is_current(&self, seq: i64) -> bool {
        self.seq == Some(seq)
    }

    /// A batch (this process's, or another's read back) committed `rows`,
    /// leaving the journal's sequence at `seq`.
    pub(crate) fn appended(&mut self, rows: Vec<(u128, i64)>, seq: i64) {
        self.count += rows.len() as i64;
        self.rows.extend(rows);
        self.seq = Some(seq);
    }

    /// The store's journal is `rows` (`count` rows in the table) as of
    /// `seq`.
    pub(crate) fn reset(&mut self, rows: HashMap<u128, i64>, count: i64, seq: i64) {
        self.rows = rows;
        self.count = count;
        self.seq = Some(seq);
    }

    /// What to read back: `Some(seq)`, only the rows after `seq`, when the
    /// rows this process knows are all still there (`count_up_to_known`
    /// of them, read in the same transaction); `None`, all of them.
    pub(crate) fn read_after(&self, count_up_to_known: Option<i64>) -> Option<i64> {
        let seq = self.seq?;
        (count_up_to_known == Some(self.count)).then_some(seq)
    }

    /// Something other than this process's batches changed the journal
    /// (a purge): read it back before the next batch.
    pub(crate) fn invalidate(&mut self) {
        self.seq = None;
    }
}

/// The key of an event and coalesce key in the writer's memory: a 128-bit
/// hash (a collision is as likely as guessing a random 128-bit key).
pub(crate) fn index_key(event_id: &str, key: i64) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(event_id.as_bytes());
    h.update(&key.to_le_bytes());
    h.digest128()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_appended_by_this_process_keep_it_current() {
        let mut j = Journal::default();
        assert!(!j.is_current(0), "a journal never read is read first");
        j.reset(HashMap::new(), 0, 0);
        assert!(j.is_current(0));
        j.appended(vec![(index_key("e1", 7), 3)], 1);
        assert!(j.is_current(1));
        assert_eq!(j.count, 1);
        // Another process appended: its rows only, while all of ours are there.
        assert_eq!(j.read_after(Some(1)), Some(1));
        // A merge or a purge took rows away: all of it.
        assert_eq!(j.read_after(Some(0)), None);
        assert!(!j.is_current(2), "another process appended");
        assert_eq!(j.record_of("e1", 7), Some(3));
        assert_eq!(j.record_of("e1", 8), None, "another playbook's key");
        j.invalidate();
        assert!(!j.is_current(1), "a purge makes it read back");
        assert_eq!(j.read_after(Some(1)), None, "whole");
    }

    #[test]
    fn the_key_separates_event_and_coalesce_key() {
        assert_ne!(index_key("ab", 1), index_key("a", 1));
        assert_ne!(index_key("e", 1), index_key("e", 2));
        assert_eq!(index_key("e", 1), index_key("e", 1));
    }
}
