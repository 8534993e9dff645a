-- Riposte store, version 5: which process recorded a decision, so that at
-- start (and while running) a replica completes the decisions a dead
-- process left in flight, never those of a live one; and indexes that find
-- the decisions and actions still in flight without scanning the trail.
ALTER TABLE audit_decisions ADD COLUMN instance TEXT;
CREATE INDEX audit_decisions_outcome ON audit_decisions (outcome, id);
CREATE INDEX audit_actions_status ON audit_actions (status, decision_id);
