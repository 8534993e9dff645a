-- Riposte store, version 7: coalescing windows of notifications.
--
-- Notifications about one subject (per target: the pod or address, plus
-- the title or playbook) within a window are one incident in the SOAR: the
-- first goes out at once, the later ones are counted into updates of it.
-- Each row is one window, keyed by the incident key (the id of the
-- notification that opened it, an outbox id); `state` is the window's
-- whole state as JSON (counts, first and last seen, tallies, the sample of
-- event ids not yet told), rewritten with each change and only by a newer
-- `rev`. `reference` is the SOAR's own id of the incident (the XSOAR
-- incident id, the Splunk SOAR container id, the TheHive alert id, the
-- Slack message ts), saved when the first notification was delivered:
-- updates go to it, across restarts. A restart reads back the windows not
-- `closed` and goes on counting into them.
CREATE TABLE notify_windows (
    id         TEXT    PRIMARY KEY,
    target     TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    window_end BIGINT  NOT NULL,
    closed     BOOLEAN NOT NULL DEFAULT FALSE,
    rev        BIGINT  NOT NULL,
    state      TEXT    NOT NULL,
    reference  TEXT,
    updated_at BIGINT  NOT NULL
);
CREATE INDEX notify_windows_open ON notify_windows (closed, window_end);
