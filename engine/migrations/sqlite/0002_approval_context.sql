-- Riposte store, version 2: what an approval request was about (the event
-- summary, approvers, reason), so a pending approval read back after a
-- restart or on another replica shows and dispatches as it was made.
ALTER TABLE approvals ADD COLUMN context TEXT;
