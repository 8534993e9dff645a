-- Riposte store, version 1. Times are microseconds since the Unix epoch.

-- Every decision of every playbook, with what became of it.
CREATE TABLE audit_decisions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT    NOT NULL,
    playbook     TEXT    NOT NULL,
    mode         TEXT    NOT NULL,
    outcome      TEXT    NOT NULL,
    reason       TEXT,
    event_json   TEXT    NOT NULL,
    intents_json TEXT    NOT NULL,
    -- "\n"-framed lists of the intents' targets and action names, so the
    -- target and action filters are one indexed-table LIKE, no JSON parsing.
    targets      TEXT    NOT NULL,
    actions      TEXT    NOT NULL,
    eval_us      BIGINT  NOT NULL,
    dispatch_us  BIGINT  NOT NULL,
    at           BIGINT  NOT NULL
);
CREATE INDEX audit_decisions_at ON audit_decisions (at, id);
CREATE INDEX audit_decisions_event ON audit_decisions (event_id, playbook);
CREATE INDEX audit_decisions_playbook ON audit_decisions (playbook, at);

-- Each intent's dispatch, updated as it finishes.
CREATE TABLE audit_actions (
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
);

-- Outbound notifications, written before they are sent.
CREATE TABLE outbox (
    id              TEXT   PRIMARY KEY,
    target          TEXT   NOT NULL,
    payload         TEXT   NOT NULL,
    status          TEXT   NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    locked_by       TEXT,
    locked_until    BIGINT,
    last_error      TEXT,
    dead_reason     TEXT,
    delivered_at    BIGINT
);
CREATE INDEX outbox_due ON outbox (status, target, next_attempt_at);
CREATE INDEX outbox_created ON outbox (created_at, id);

CREATE TABLE outbox_targets (
    target     TEXT    PRIMARY KEY,
    disabled   BOOLEAN NOT NULL,
    reason     TEXT,
    updated_at BIGINT  NOT NULL
);

CREATE TABLE idempotency_keys (
    principal    TEXT   NOT NULL,
    key          TEXT   NOT NULL,
    request_hash TEXT   NOT NULL,
    status       BIGINT,
    body         TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (principal, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

CREATE TABLE approvals (
    id          TEXT   PRIMARY KEY,
    intent      TEXT   NOT NULL,
    event_id    TEXT   NOT NULL,
    playbook    TEXT   NOT NULL,
    state       TEXT   NOT NULL,
    on_timeout  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    decided_by  TEXT,
    decided_at  BIGINT
);
CREATE INDEX approvals_state ON approvals (state, expires_at);

CREATE TABLE edl_entries (
    list       TEXT   NOT NULL,
    value      TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    reason     TEXT,
    action_id  TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (list, value)
);
CREATE INDEX edl_entries_expiry ON edl_entries (list, expires_at);

-- One revision counter per list, bumped by every change.
CREATE TABLE edl_lists (
    list       TEXT   PRIMARY KEY,
    revision   BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE tag_leases (
    firewall   TEXT   NOT NULL,
    ip         TEXT   NOT NULL,
    tag        TEXT   NOT NULL,
    state      TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    action_id  TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (firewall, ip, tag)
);
CREATE INDEX tag_leases_state ON tag_leases (firewall, state, expires_at);

CREATE TABLE seen_ids (
    source     TEXT   NOT NULL,
    id         TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (source, id)
);
CREATE INDEX seen_ids_expiry ON seen_ids (expires_at);
