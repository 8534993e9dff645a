-- Riposte store, version 8: the indexes no query uses any more. Events are
-- found through audit_events (version 6), and no query looks a record up
-- by its coalesce key (this process keeps its open records in memory and
-- reads them back by id), so both only cost a write per record.
DROP INDEX IF EXISTS audit_decisions_event;
DROP INDEX IF EXISTS audit_decisions_coalesce;
