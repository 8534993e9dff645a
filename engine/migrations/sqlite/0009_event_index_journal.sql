-- Riposte store, version 9: the event index's journal.
--
-- Event ids are content hashes, so every row of `audit_events` lands on a
-- random page of its primary key, and SQLite writes each page a commit
-- touches whole: during a storm that was about two 4 KiB pages per decided
-- event. The writer now appends new index rows here, in `seq` order (one
-- page per few dozen rows), answers "was this event counted" for them from
-- memory (rebuilt from this table after a start), and merges them into
-- `audit_events` in large sorted runs, which touch each page of the primary
-- key once per run rather than once per event. AUTOINCREMENT so that a
-- `seq` is never handed out twice: the writer notices another process's
-- rows by the table's sequence moving without it.
CREATE TABLE audit_events_new (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT    NOT NULL,
    coalesce_key BIGINT  NOT NULL,
    decision_id  BIGINT  NOT NULL
);

-- What the readers look events up in: both. The journal has no index of
-- its own (that would bring the random writes back); it stays small.
CREATE VIEW audit_event_index AS
    SELECT event_id, coalesce_key, decision_id FROM audit_events
    UNION ALL
    SELECT event_id, coalesce_key, decision_id FROM audit_events_new;
