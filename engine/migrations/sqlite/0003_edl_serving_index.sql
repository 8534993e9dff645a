-- Serving a list reads every active value in order: with the expiry in the
-- index beside the value, that is one ordered scan of the index, without a
-- sort or a lookup of each row.
CREATE INDEX edl_entries_serving ON edl_entries (list, value, expires_at);
