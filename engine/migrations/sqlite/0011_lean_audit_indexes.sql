-- Riposte store, version 11: the audit trail without the bytes nothing
-- reads.
--
-- `audit_events_decision` served only the retention purge, which now walks
-- `audit_events` in key order instead (a few short statements per purge
-- rather than an index row per decided event, about 50 bytes each).
DROP INDEX IF EXISTS audit_events_decision;

-- Recovery looks for actions still queued, and only for those: the index
-- holds them alone rather than every action's status.
DROP INDEX IF EXISTS audit_actions_status;

-- Action rows are found by their primary key; as a rowid table every row
-- was stored twice (the table and the key's index). Without a rowid the
-- table is the key's B-tree.
CREATE TABLE audit_actions_keyed (
    decision_id BIGINT NOT NULL REFERENCES audit_decisions (id) ON DELETE CASCADE,
    action_id   TEXT   NOT NULL,
    target      TEXT   NOT NULL DEFAULT '',
    action      TEXT   NOT NULL,
    status      TEXT   NOT NULL,
    reason      TEXT,
    code        TEXT,
    attempts    BIGINT NOT NULL,
    duration_us BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    PRIMARY KEY (decision_id, action_id, target)
) WITHOUT ROWID;
INSERT INTO audit_actions_keyed
    (decision_id, action_id, target, action, status, reason, code, attempts, duration_us, at)
    SELECT decision_id, action_id, target, action, status, reason, code, attempts, duration_us, at
    FROM audit_actions
    -- Rows of a record no longer stored (written with foreign keys off)
    -- would fail the new table's foreign key; no query could show them.
    WHERE decision_id IN (SELECT id FROM audit_decisions);
DROP TABLE audit_actions;
ALTER TABLE audit_actions_keyed RENAME TO audit_actions;
CREATE INDEX audit_actions_queued ON audit_actions (decision_id) WHERE status = 'queued';
