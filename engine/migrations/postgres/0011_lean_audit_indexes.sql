-- Riposte store, version 11: the audit trail without the bytes nothing
-- reads.
--
-- `audit_events_decision` served only the retention purge, which now walks
-- `audit_events` in key order instead (a few short statements per purge
-- rather than an index row per decided event).
DROP INDEX IF EXISTS audit_events_decision;

-- Recovery looks for actions still queued, and only for those: the index
-- holds them alone rather than every action's status.
DROP INDEX IF EXISTS audit_actions_status;
CREATE INDEX audit_actions_queued ON audit_actions (decision_id) WHERE status = 'queued';
