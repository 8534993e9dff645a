-- Riposte store, version 10: packed record bodies.
--
-- A new record's event summary and intents are stored zstd-compressed in
-- `packed` (the two JSON texts separated by a NUL), and `event_json` and
-- `intents_json` are left empty. `packed_dict` names the dictionary in
-- `audit_dicts` they were compressed with (0: none). Dictionaries are
-- trained by the audit writer from the records it writes and never changed
-- or deleted: a record stays readable as long as it is kept. Records
-- written before this version keep their JSON as it was (`packed` NULL).
ALTER TABLE audit_decisions ADD COLUMN packed BLOB;
ALTER TABLE audit_decisions ADD COLUMN packed_dict BIGINT NOT NULL DEFAULT 0;

CREATE TABLE audit_dicts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    dict       BLOB    NOT NULL,
    created_at BIGINT  NOT NULL
);
