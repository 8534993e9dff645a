-- Riposte store, version 6: coalesced decision records and the event index.
--
-- Identical decisions (same playbook, mode and intents) within a window are
-- one record with a count, first and last seen (`at`, `last_at`) and a
-- bounded "\n"-framed sample of event ids; `coalesce_key` is the hash of
-- what makes them identical and `window_end` where the record's window
-- closes. Every decided event has one row in `audit_events`, which answers
-- "which record was this event counted in" and makes recording idempotent:
-- an event redelivered to the same playbook (an AMQP redelivery after a
-- kill, a re-read file) finds its row and is not counted again.
ALTER TABLE audit_decisions ADD COLUMN coalesce_key BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_decisions ADD COLUMN count BIGINT NOT NULL DEFAULT 1;
ALTER TABLE audit_decisions ADD COLUMN last_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_decisions ADD COLUMN window_end BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_decisions ADD COLUMN sample TEXT NOT NULL DEFAULT '';
UPDATE audit_decisions SET last_at = at, window_end = at, sample = char(10) || event_id || char(10);

CREATE TABLE audit_events (
    event_id     TEXT   NOT NULL,
    -- The playbook's hash: one row per event and playbook. (The decision
    -- carrying out an approved intent, which follows its event's first
    -- one, is keyed by its own coalesce key.)
    coalesce_key BIGINT NOT NULL,
    decision_id  BIGINT NOT NULL,
    PRIMARY KEY (event_id, coalesce_key)
) WITHOUT ROWID;
-- Older records keep a key of their own (minus their id): each stays
-- findable by its event, as it was recorded.
INSERT INTO audit_events (event_id, coalesce_key, decision_id)
    SELECT event_id, -id, id FROM audit_decisions ORDER BY id;
CREATE INDEX audit_events_decision ON audit_events (decision_id);

-- The open record of a key is its newest.
CREATE INDEX audit_decisions_coalesce ON audit_decisions (coalesce_key, id);
