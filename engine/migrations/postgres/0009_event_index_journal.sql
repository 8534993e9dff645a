-- Riposte store, version 9: the event index's journal (SQLite's; see the
-- SQLite migration). PostgreSQL writes a B-tree insert as a small WAL
-- record, not a whole page, and its replicas share the index, so its
-- writers keep inserting into `audit_events`; the table and the view exist
-- so that both backends' readers run the same statements.
CREATE TABLE audit_events_new (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     TEXT   NOT NULL,
    coalesce_key BIGINT NOT NULL,
    decision_id  BIGINT NOT NULL
);

CREATE VIEW audit_event_index AS
    SELECT event_id, coalesce_key, decision_id FROM audit_events
    UNION ALL
    SELECT event_id, coalesce_key, decision_id FROM audit_events_new;
