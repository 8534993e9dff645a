//! `[store]`: where Riposte keeps what must survive a restart.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use crate::decide::intent::Ttl;

/// A database URL. Its password never reaches a log: `Debug` and
/// [`DatabaseUrl::redacted`] replace it.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> DatabaseUrl {
        DatabaseUrl(url.into())
    }

    /// The URL itself, for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it names a PostgreSQL server.
    pub fn is_postgres(&self) -> bool {
        self.0.starts_with("postgres://") || self.0.starts_with("postgresql://")
    }

    /// The URL with any password (userinfo after `:`, and a `password=`
    /// query parameter) replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<DatabaseUrl, D::Error> {
        let s = String::deserialize(d)?;
        if s.starts_with("sqlite:")
            || s.starts_with("postgres://")
            || s.starts_with("postgresql://")
        {
            Ok(DatabaseUrl(s))
        } else {
            Err(serde::de::Error::custom(format!(
                "`{}` is neither a sqlite: nor a postgres:// URL",
                redact_url(&s)
            )))
        }
    }
}

/// Replaces the password in `scheme://user:password@host/...` and in a
/// `password=` query parameter with `***`.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest_start + colon + 1..rest_start + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (base, query) = out.split_at(q + 1);
        let redacted: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{base}{}", redacted.join("&"));
    }
    out
}

fn ttl(literal: &str) -> Ttl {
    #[allow(clippy::expect_used)]
    Ttl::parse(literal).expect("the defaults below are valid durations")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The database. Unset: the SQLite file `<data_dir>/riposte.db`.
    /// `sqlite:///path/to/file.db` names another SQLite file;
    /// `postgres://user@host:5432/riposte?sslmode=verify-full&sslrootcert=/ca.pem`
    /// a PostgreSQL database shared by several replicas (TLS through rustls).
    /// Keep the password out of the URL: use `password_file` or `PGPASSWORD`.
    pub url: Option<DatabaseUrl>,
    /// A file holding the PostgreSQL password (a mounted Kubernetes secret);
    /// read at start-up, trailing newline ignored.
    pub password_file: Option<PathBuf>,
    /// Connections in the pool (PostgreSQL; SQLite uses this many readers
    /// and one writer).
    pub max_connections: u32,
    /// How long start-up keeps trying to reach the database, and how long an
    /// operation waits for a free connection, in seconds.
    pub connect_timeout_secs: u64,
    /// SQLite: how long a statement waits for a lock held by another
    /// process before failing, in milliseconds.
    pub busy_timeout_ms: u64,
    /// Decisions and their actions older than this are deleted from the
    /// audit trail (`"30d"`, `"12h"`, or seconds).
    pub audit_retention: Ttl,
    /// Delivered outbox notifications are kept this long (for `GET
    /// /v1/outbox`), then deleted.
    pub outbox_retention: Ttl,
    /// Dead-lettered notifications are kept this long for replay, then
    /// deleted.
    pub dead_letter_retention: Ttl,
    /// How long an `Idempotency-Key` is remembered after its first use.
    pub idempotency_ttl: Ttl,
    /// Decided and timed-out approvals, released or unregistered IP-tag
    /// leases and expired EDL entries are kept this long after they end.
    pub history_retention: Ttl,
    /// How often the retention purge runs, in seconds. Seen inbound webhook
    /// ids and idempotency keys are purged once they expire.
    pub purge_interval_secs: u64,
    /// Audit records waiting for the writer. When full, the pipeline waits
    /// (back-pressure); nothing is dropped.
    pub audit_queue_capacity: usize,
    /// Most audit records written in one transaction.
    pub audit_batch_max: usize,
    /// SQLite: new event index rows are appended to a journal and merged
    /// into the index when it holds this many, in one sorted run (a larger
    /// run writes fewer index pages per event; looking an event up scans
    /// the journal, and the writer keeps its rows in memory, about 50
    /// bytes each).
    pub audit_index_merge_rows: usize,
    /// Identical decisions (same playbook, mode and intents) within this
    /// many seconds of the first are one audit record with a count; every
    /// event stays findable by its id. 0: one record per decision.
    pub coalesce_window_secs: u64,
    /// Event ids a coalesced record keeps as its sample (besides the
    /// per-event index that finds every one).
    pub coalesce_sample: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: None,
            password_file: None,
            max_connections: 8,
            connect_timeout_secs: 10,
            busy_timeout_ms: 5_000,
            audit_retention: ttl("30d"),
            outbox_retention: ttl("7d"),
            dead_letter_retention: ttl("30d"),
            coalesce_window_secs: 60,
            coalesce_sample: 8,
            idempotency_ttl: ttl("24h"),
            history_retention: ttl("30d"),
            purge_interval_secs: 300,
            audit_queue_capacity: 8_192,
            audit_batch_max: 2_048,
            audit_index_merge_rows: 100_000,
        }
    }
}

impl StoreConfig {
    /// The URL to open: the configured one, or the SQLite file in `data_dir`.
    pub fn resolved_url(&self, data_dir: &Path) -> DatabaseUrl {
        match &self.url {
            Some(url) => url.clone(),
            None => DatabaseUrl(format!(
                "sqlite://{}",
                data_dir.join("riposte.db").display()
            )),
        }
    }

    /// Checks what serde cannot; the message names no key (the caller does).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.max_connections == 0 {
            return Err(("store.max_connections", "must be at least 1".into()));
        }
        if self.connect_timeout_secs == 0 {
            return Err(("store.connect_timeout_secs", "must be at least 1".into()));
        }
        if self.purge_interval_secs == 0 {
            return Err(("store.purge_interval_secs", "must be at least 1".into()));
        }
        if self.audit_queue_capacity == 0 {
            return Err(("store.audit_queue_capacity", "must be at least 1".into()));
        }
        if self.audit_batch_max == 0 {
            return Err(("store.audit_batch_max", "must be at least 1".into()));
        }
        if !(1..=10_000_000).contains(&self.audit_index_merge_rows) {
            return Err((
                "store.audit_index_merge_rows",
                "must be between 1 and 10000000".into(),
            ));
        }
        if self.coalesce_window_secs > 86_400 {
            return Err((
                "store.coalesce_window_secs",
                "must be at most 86400 (a day): a record's window is its last-seen horizon".into(),
            ));
        }
        if !(1..=100).contains(&self.coalesce_sample) {
            return Err(("store.coalesce_sample", "must be 1 to 100".into()));
        }
        // `password_file` is read when the store opens, not here: a config
        // checked outside the pod (CI, `check-config`) has no secret mounted.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://riposte:s3cret@db:5432/riposte"),
            "postgres://riposte:***@db:5432/riposte"
        );
        assert_eq!(
            redact_url("postgres://db/riposte?user=r&password=s3cret&sslmode=require"),
            "postgres://db/riposte?user=r&password=***&sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://riposte@db/riposte"),
            "postgres://riposte@db/riposte"
        );
        let url = DatabaseUrl::new("postgres://u:p%40ss@h/d");
        assert!(!format!("{url:?}").contains("p%40ss"));
    }

    #[test]
    fn default_url_is_the_data_dir_file() {
        let url = StoreConfig::default().resolved_url(Path::new("/var/lib/riposte"));
        assert_eq!(url.expose(), "sqlite:///var/lib/riposte/riposte.db");
        assert!(!url.is_postgres());
    }

    #[test]
    fn retention_reads_durations() {
        let c: StoreConfig =
            toml::from_str("audit_retention = \"90d\"\noutbox_retention = 3600\n").expect("valid");
        assert_eq!(c.audit_retention.as_secs(), 90 * 86_400);
        assert_eq!(c.outbox_retention.as_secs(), 3600);
        assert!(toml::from_str::<StoreConfig>("url = \"mysql://x\"").is_err());
        assert!(toml::from_str::<StoreConfig>("retention = 3").is_err());
    }
}
