//! The store: what must survive a restart and be shared between replicas.
//!
//! SQLite in the data directory by default (WAL, one writer connection and a
//! pool of readers, so writers in this process never fight over the lock);
//! PostgreSQL when `[store] url` says so, for several replicas. One concrete,
//! cloneable [`Store`] with the same methods on both: the SQL is written once
//! in the dialect both accept (`$n` parameters, `ON CONFLICT`, `RETURNING`),
//! and the few statements that differ (row locking) branch on the backend.
//! Schema changes are versioned migrations in `engine/migrations/{sqlite,
//! postgres}`, embedded in the binary and applied at open.
//!
//! Layout, one file per thing held:
//! - [`audit`]: every decision and its actions; [`writer`] batches them in
//!   from the dispatcher's decision log.
//! - [`outbox`]: outbound notifications until delivered or dead-lettered.
//! - [`idempotency`]: `Idempotency-Key`s of `POST /v1/actions`.
//! - [`approvals`]: intents waiting for a human.
//! - [`edl`]: external dynamic list entries; [`leases`]: firewall IP tags.
//! - [`seen`]: inbound webhook ids, against replays.
//! - [`leader`]: a named lock so one replica runs schedules and expiries.
//! - [`purge`]: the retention task.
//! - [`metrics`]: the store's Prometheus series.
//! - [`recovery`]: completes the decisions a killed process left in flight.
//!
//! Times are stored as microseconds since the Unix epoch (`BIGINT`) in both
//! dialects, so comparisons and indexes behave the same.

pub mod approvals;
pub mod audit;
mod audit_stage;
pub mod config;
pub mod edl;
mod error;
mod event_journal;
pub mod idempotency;
pub mod leader;
pub mod leases;
pub mod members;
pub mod metrics;
pub mod notify;
pub mod outbox;
mod packing;
pub mod purge;
mod recent;
pub mod recovery;
pub mod seen;
pub mod writer;

use std::future::Future;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::registry::Registry;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use self::approvals::{Approval, ApprovalState, DecideError, NewApproval, OnTimeout, Verdict};
pub use self::audit::{AuditEntry, AuditPage, AuditQuery};
pub use self::config::{DatabaseUrl, StoreConfig};
pub use self::edl::{EdlEntry, EdlVersion, NewEdlEntry};
pub use self::error::StoreError;
pub use self::idempotency::IdempotencyBegin;
pub use self::leader::LeaderLock;
pub use self::leases::{LeaseState, NewTagLease, TagLease};
pub use self::metrics::{OpLabel, StoreMetrics, TableLabel};
pub use self::notify::{Incident, NotifyWrite, WindowRow, WindowState};
pub use self::outbox::{
    NewOutboxItem, OutboxCount, OutboxFilter, OutboxItem, OutboxPage, OutboxStatus, TargetState,
};
pub use self::writer::AuditWriter;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Runs `$body` with `$pool` bound to the pool that takes writes (SQLite's
/// single writer connection, or the PostgreSQL pool). The body is compiled
/// once per backend, so the same code drives both drivers.
macro_rules! with_writer {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.inner.backend {
            $crate::store::Backend::Sqlite { write: $pool, .. } => $body,
            $crate::store::Backend::Postgres($pool) => $body,
        }
    };
}

/// Like [`with_writer`], with the pool for reads.
macro_rules! with_reader {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.inner.backend {
            $crate::store::Backend::Sqlite { read: $pool, .. } => $body,
            $crate::store::Backend::Postgres($pool) => $body,
        }
    };
}

pub(crate) use {with_reader, with_writer};

#[derive(Debug)]
pub(crate) enum Backend {
    Sqlite {
        /// One connection: SQLite takes one writer at a time anyway, and a
        /// single in-process writer never meets `SQLITE_BUSY` from itself.
        write: SqlitePool,
        read: SqlitePool,
    },
    Postgres(PgPool),
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) backend: Backend,
    pub(crate) metrics: StoreMetrics,
    pub(crate) config: StoreConfig,
    /// The URL with its password redacted, for logs and errors.
    url: String,
    /// Whether the migrations have been applied. A PostgreSQL server that
    /// could not be reached at start leaves this false; the first operation
    /// (or readiness probe) that reaches it applies them.
    migrated: AtomicBool,
    /// One migration at a time in this process.
    migrating: tokio::sync::Mutex<()>,
    /// This process's name on the decisions it records: recovery leaves
    /// the in-flight decisions of live processes alone.
    instance: String,
    /// The coalesced audit records whose window this process knows open.
    pub(crate) open_records: tokio::sync::Mutex<audit::OpenRecords>,
    /// The dictionaries records are packed with, as readers load them.
    pub(crate) dicts: packing::Dicts,
}

/// The store. Cheap to clone: every clone shares the pools.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl Store {
    /// Opens (creating when needed) the database `config` names, or
    /// `<data_dir>/riposte.db`, and applies pending migrations. A PostgreSQL
    /// server that does not answer is retried for `connect_timeout_secs`;
    /// if it still does not, the store opens anyway, unready
    /// ([`Store::is_ready`] false, every operation failing as unavailable),
    /// and connects and migrates as soon as the server answers: a replica
    /// started during a database outage comes up and turns ready by itself.
    pub async fn open(config: &StoreConfig, data_dir: &Path) -> Result<Store, StoreError> {
        let url = config.resolved_url(data_dir);
        let redacted = url.redacted();
        let backend = match &config.url {
            Some(url) if url.is_postgres() => open_postgres(config, url).await?,
            Some(url) => {
                let options = sqlite_options(url)?;
                open_sqlite(config, options, url.expose().contains(":memory:")).await?
            }
            None => {
                let options = SqliteConnectOptions::new().filename(data_dir.join("riposte.db"));
                open_sqlite(config, options, false).await?
            }
        };
        let store = Store {
            inner: Arc::new(Inner {
                backend,
                metrics: StoreMetrics::default(),
                config: config.clone(),
                url: redacted,
                migrated: AtomicBool::new(false),
                migrating: tokio::sync::Mutex::new(()),
                instance: instance_name(),
                open_records: Default::default(),
                dicts: Default::default(),
            }),
        };
        match store.ensure_migrated().await {
            Ok(()) => {
                tracing::info!(url = %store.inner.url, backend = store.backend_name(), "store open")
            }
            // Only a server that does not answer is waited for; SQLite, or
            // a database that answers with an error, stops the start.
            Err(e) if e.is_transient() && store.is_postgres() => {
                store
                    .inner
                    .metrics
                    .errors
                    .get_or_create(&OpLabel { op: "migrate" })
                    .inc();
                tracing::warn!(url = %store.inner.url, error = %e,
                    "store unreachable: starting unready, connecting when it answers");
            }
            Err(e) => return Err(e),
        }
        Ok(store)
    }

    /// This process's instance name (host, pid and a random part).
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// Whether the database has been reached and migrated. False only for
    /// a PostgreSQL store that has not answered since the start.
    pub fn is_ready(&self) -> bool {
        self.inner.migrated.load(Ordering::Acquire)
    }

    /// Applies the migrations unless done already (once per process).
    async fn ensure_migrated(&self) -> Result<(), StoreError> {
        if self.is_ready() {
            return Ok(());
        }
        let _one = self.inner.migrating.lock().await;
        if self.is_ready() {
            return Ok(());
        }
        self.migrate().await?;
        if !self.inner.migrated.swap(true, Ordering::AcqRel) {
            tracing::info!(url = %self.inner.url, backend = self.backend_name(), "store migrated");
        }
        Ok(())
    }

    /// Applies the embedded migrations not yet applied. Idempotent; on
    /// PostgreSQL an advisory lock keeps two replicas from racing.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.inner.backend {
            Backend::Sqlite { write, .. } => SQLITE_MIGRATIONS.run(write).await?,
            Backend::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// Registers the store's series (`riposte_store_errors_total{op}`, the
    /// audit writer's, the purge's).
    pub fn register_metrics(&self, registry: &mut Registry) {
        self.inner.metrics.register(registry);
    }

    pub fn metrics(&self) -> &StoreMetrics {
        &self.inner.metrics
    }

    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match self.inner.backend {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.inner.backend, Backend::Postgres(_))
    }

    /// The database URL with its password redacted.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Answers when the database is reachable and takes a statement; for
    /// `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run("ping", async {
            with_writer!(self, pool => {
                sqlx::query("SELECT 1").execute(pool).await?;
            });
            Ok(())
        })
        .await
    }

    /// Closes every connection; later calls fail as unavailable.
    pub async fn close(&self) {
        match &self.inner.backend {
            Backend::Sqlite { write, read } => {
                write.close().await;
                read.close().await;
            }
            Backend::Postgres(pool) => pool.close().await,
        }
    }

    /// Runs one operation, counting its failure under `op`.
    pub(crate) async fn run<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let result = match self.ensure_migrated().await {
            Ok(()) => fut.await,
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            self.inner
                .metrics
                .errors
                .get_or_create(&OpLabel { op })
                .inc();
            tracing::debug!(op, error = %e, "store operation failed");
        }
        result
    }

    /// A write that takes two text parameters and answers nothing (the
    /// deletes that forget one row by its two-part key).
    pub(crate) async fn execute_pair(
        &self,
        op: &'static str,
        sql: &'static str,
        first: &str,
        second: &str,
    ) -> Result<(), StoreError> {
        self.run(op, async {
            with_writer!(self, pool => {
                sqlx::query(sql).bind(first).bind(second).execute(pool).await?;
                Ok(())
            })
        })
        .await
    }

    /// The PostgreSQL `FOR UPDATE SKIP LOCKED` suffix for claiming rows, so
    /// two replicas never take the same one; SQLite has one writer and needs
    /// none.
    pub(crate) fn skip_locked(&self) -> &'static str {
        match self.inner.backend {
            Backend::Sqlite { .. } => "",
            Backend::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        }
    }
}

fn instance_name() -> String {
    format!(
        "{}-{}-{:08x}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "riposte".into()),
        std::process::id(),
        rand::random::<u32>()
    )
}

/// Creates `dir` (and its missing parents) readable by the owner only
/// (0700); an existing one is narrowed to that when it is ours. The data
/// directory holds the audit trail, the outbox and the approval key.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            if let Err(e) = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
                // A mount point owned by someone else: say so, go on.
                tracing::warn!(dir = %dir.display(), error = %e,
                    "cannot make the data directory owner-only (0700)");
            }
        }
        Ok(())
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

/// Creates the SQLite database file owner-only (0600) before SQLite opens
/// it, and narrows existing files (the database, its -wal and -shm) to
/// that: SQLite gives the -wal and -shm files the database file's mode.
fn private_db_files(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let file = std::path::PathBuf::from(name);
            match std::fs::metadata(&file) {
                Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

async fn open_sqlite(
    config: &StoreConfig,
    base: SqliteConnectOptions,
    in_memory: bool,
) -> Result<Backend, StoreError> {
    if !in_memory {
        let path = base.get_filename();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            private_dir(parent).map_err(|e| {
                StoreError::Unavailable(format!("creating {}: {e}", parent.display()))
            })?;
        }
        private_db_files(path)
            .map_err(|e| StoreError::Unavailable(format!("creating {}: {e}", path.display())))?;
    }
    let options = base
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: a committed audit record or outbox item survives a power
        // loss, not only a crash; the writer batches, so the fsync is shared.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_millis(config.busy_timeout_ms))
        .foreign_keys(true);
    let acquire = Duration::from_secs(config.connect_timeout_secs);
    let write = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(acquire)
        .connect_with(options.clone())
        .await?;
    let read = if in_memory {
        write.clone()
    } else {
        SqlitePoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(acquire)
            .connect_with(options)
            .await?
    };
    Ok(Backend::Sqlite { write, read })
}

/// Checks what [`Store::open`] checks before it connects (the URL parses,
/// the password file reads), without connecting or creating anything: for
/// the start-up checks `check-config` shares with `serve`.
pub fn check_config(config: &StoreConfig) -> Result<(), StoreError> {
    match &config.url {
        Some(url) if url.is_postgres() => pg_options(config, url).map(drop),
        Some(url) => sqlite_options(url).map(drop),
        None => Ok(()),
    }
}

fn sqlite_options(url: &DatabaseUrl) -> Result<SqliteConnectOptions, StoreError> {
    // The driver's message may quote the URL: only the redacted form is shown.
    SqliteConnectOptions::from_str(url.expose()).map_err(|e| {
        StoreError::Config(format!(
            "{}: {}",
            url.redacted(),
            e.to_string().replace(url.expose(), "<url>")
        ))
    })
}

fn pg_options(config: &StoreConfig, url: &DatabaseUrl) -> Result<PgConnectOptions, StoreError> {
    let mut options = PgConnectOptions::from_str(url.expose())
        .map_err(|e| {
            StoreError::Config(format!(
                "{}: {}",
                url.redacted(),
                e.to_string().replace(url.expose(), "<url>")
            ))
        })?
        .application_name("riposte");
    if let Some(path) = &config.password_file {
        let password = std::fs::read_to_string(path)
            .map_err(|e| StoreError::Config(format!("password_file {}: {e}", path.display())))?;
        options = options.password(password.trim_end_matches(['\r', '\n']));
    }
    Ok(options)
}

async fn open_postgres(config: &StoreConfig, url: &DatabaseUrl) -> Result<Backend, StoreError> {
    let options = pg_options(config, url)?;
    let pool_options = PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(Duration::from_secs(config.connect_timeout_secs));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(config.connect_timeout_secs);
    let mut pause = Duration::from_millis(100);
    loop {
        match pool_options.clone().connect_with(options.clone()).await {
            Ok(pool) => return Ok(Backend::Postgres(pool)),
            Err(e) => {
                let e = StoreError::from(e);
                if !e.is_transient() {
                    return Err(e);
                }
                if tokio::time::Instant::now() + pause > deadline {
                    // A pool that connects on first use: the store opens
                    // unready and heals when the server answers.
                    tracing::warn!(url = %url.redacted(), error = %e, "store not reachable");
                    return Ok(Backend::Postgres(pool_options.connect_lazy_with(options)));
                }
                tracing::warn!(url = %url.redacted(), error = %e, "store not reachable yet, retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Microseconds since the epoch, as stored.
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The time a stored value names. Out-of-range values (never written by
/// Riposte) read as the epoch rather than failing a whole listing.
pub(crate) fn from_micros(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(v).unwrap_or_default()
}

pub(crate) fn opt_from_micros(v: Option<i64>) -> Option<DateTime<Utc>> {
    v.map(from_micros)
}

/// Typed column reads shared by both backends' rows, so row decoders are
/// written once.
pub(crate) trait RowExt {
    fn text(&self, col: &str) -> Result<String, StoreError>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, col: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError>;
    fn boolean(&self, col: &str) -> Result<bool, StoreError>;
    fn bytes(&self, col: &str) -> Result<Vec<u8>, StoreError>;
    fn opt_bytes(&self, col: &str) -> Result<Option<Vec<u8>>, StoreError>;
}

macro_rules! impl_row_ext {
    ($row:ty) => {
        impl RowExt for $row {
            fn text(&self, col: &str) -> Result<String, StoreError> {
                Ok(sqlx::Row::try_get(self, col)?)
            }
            fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError> {
                Ok(sqlx::Row::try_get(self, col)?)
            }
            fn int(&self, col: &str) -> Result<i64, StoreError> {
                Ok(sqlx::Row::try_get(self, col)?)
            }
            fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError> {
                Ok(sqlx::Row::try_get(self, col)?)
            }
            fn boolean(&self, col: &str) -> Result<bool, StoreError> {
                Ok(sqlx::Row::try_get(self, col)?)
            }
            fn bytes(&self, col: &str) -> Result<Vec<u8>, StoreError> {
                Ok(sqlx::Row::try_get(self, col)?)
            }
            fn opt_bytes(&self, col: &str) -> Result<Option<Vec<u8>>, StoreError> {
                Ok(sqlx::Row::try_get(self, col)?)
            }
        }
    };
}

impl_row_ext!(sqlx::sqlite::SqliteRow);
impl_row_ext!(sqlx::postgres::PgRow);

/// A positional argument of a statement built at run time.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Int(i64),
    Text(String),
}

/// A `WHERE` clause built at run time with `$n` placeholders.
#[derive(Debug, Default)]
pub(crate) struct Conditions {
    clauses: Vec<String>,
    pub(crate) args: Vec<Arg>,
}

impl Conditions {
    /// Adds an argument, returning its placeholder.
    pub(crate) fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }

    pub(crate) fn push(&mut self, clause: String) {
        self.clauses.push(clause);
    }

    /// ` WHERE a AND b`, or nothing.
    pub(crate) fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// Binds [`Arg`]s to a query in order.
macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for a in $args {
            q = match a {
                $crate::store::Arg::Int(v) => q.bind(*v),
                $crate::store::Arg::Text(s) => q.bind(s.as_str()),
            };
        }
        q
    }};
}

pub(crate) use bind_args;

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern.
pub(crate) fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An opaque page cursor: a position `(time, key)` in a newest-first
/// listing, hex-encoded so callers treat it as a token.
pub(crate) fn encode_cursor(at: i64, key: &str) -> String {
    let raw = format!("{at}:{key}");
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn decode_cursor(cursor: &str) -> Result<(i64, String), StoreError> {
    let bad = || StoreError::Invalid("malformed page cursor".into());
    if !cursor.len().is_multiple_of(2) || cursor.len() > 1024 {
        return Err(bad());
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(cursor.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| bad())?;
    let raw = String::from_utf8(bytes).map_err(|_| bad())?;
    let (at, key) = raw.split_once(':').ok_or_else(bad)?;
    Ok((at.parse().map_err(|_| bad())?, key.to_owned()))
}

/// Bounds a page size: at least 1, at most 1000.
pub(crate) fn page_limit(limit: usize) -> i64 {
    limit.clamp(1, 1000) as i64
}

#[cfg(test)]
pub(crate) mod testing {
    //! A fresh SQLite store in a temporary directory, for unit tests.
    use super::*;

    pub(crate) async fn sqlite() -> (Store, tempfile::TempDir) {
        #[allow(clippy::unwrap_used)]
        let dir = tempfile::tempdir().unwrap();
        #[allow(clippy::unwrap_used)]
        let store = Store::open(&StoreConfig::default(), dir.path())
            .await
            .unwrap();
        (store, dir)
    }

    /// The audit entries `event_id` finds.
    pub(crate) async fn audit_of(store: &Store, event_id: &str) -> Vec<AuditEntry> {
        #[allow(clippy::unwrap_used)]
        store
            .query_audit(&AuditQuery {
                event_id: Some(event_id.into()),
                ..Default::default()
            })
            .await
            .unwrap()
            .entries
    }

    /// The write connection of a SQLite store, for tests that write what
    /// the store itself would not (older rows, damaged ones).
    pub(crate) fn sqlite_writer(store: &Store) -> &SqlitePool {
        match &store.inner.backend {
            Backend::Sqlite { write, .. } => write,
            Backend::Postgres(_) => panic!("a SQLite store"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = encode_cursor(1_700_000_000_000_000, "ab:c");
        assert_eq!(
            decode_cursor(&c).expect("valid"),
            (1_700_000_000_000_000, "ab:c".to_owned())
        );
        assert!(decode_cursor("zz").is_err());
        assert!(decode_cursor("abc").is_err());
        assert!(decode_cursor("").is_err());
    }

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(like_escape("a%b_c\\"), "a\\%b\\_c\\\\");
    }

    #[tokio::test]
    async fn opens_migrates_twice_and_pings() {
        let (store, dir) = testing::sqlite().await;
        store.ping().await.expect("ping");
        store.migrate().await.expect("migrations are idempotent");
        store.close().await;
        assert!(store.ping().await.is_err(), "closed store is unavailable");
        let again = Store::open(&StoreConfig::default(), dir.path())
            .await
            .expect("reopen");
        again.ping().await.expect("ping after reopen");
        assert!(dir.path().join("riposte.db").is_file());
    }

    /// A store of version 10 upgrades: its action rows move to the
    /// keyed table, and a row of no stored record (possible only with
    /// foreign keys off) is left behind rather than failing the start.
    #[tokio::test]
    async fn a_version_10_store_upgrades_keeping_its_records_actions() {
        use sqlx::Connection as _;
        let dir = tempfile::tempdir().expect("dir");
        let older = tempfile::tempdir().expect("migrations");
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
        for entry in std::fs::read_dir(&src).expect("migrations") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_owned();
            if name.as_str() < "0011" {
                std::fs::copy(&path, older.path().join(&name)).expect("copy");
            }
        }
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("riposte.db"))
            .create_if_missing(true)
            .foreign_keys(false);
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .expect("connect");
        sqlx::migrate::Migrator::new(older.path())
            .await
            .expect("migrator")
            .run(&mut conn)
            .await
            .expect("version 10");
        sqlx::query(
            "INSERT INTO audit_decisions (id, event_id, playbook, mode, outcome, event_json, \
             intents_json, targets, actions, eval_us, dispatch_us, at) \
             VALUES (1, 'e1', 'pb', 'enforce', 'applied', '{\"kind\":\"alert\",\"dataset\":\"x\"}', \
             '[]', '', '', 0, 0, 5)",
        )
        .execute(&mut conn)
        .await
        .expect("record");
        for (decision, action) in [(1, "a1"), (1, "a2"), (99, "orphan")] {
            sqlx::query(
                "INSERT INTO audit_actions (decision_id, action_id, target, action, status, \
                 attempts, duration_us, at) VALUES ($1, $2, '', 'quarantine', 'applied', 1, 1, 5)",
            )
            .bind(decision)
            .bind(action)
            .execute(&mut conn)
            .await
            .expect("action row");
        }
        conn.close().await.expect("close");
        let store = Store::open(&StoreConfig::default(), dir.path())
            .await
            .expect("upgrade");
        let page = store
            .query_audit(&AuditQuery::default())
            .await
            .expect("query");
        let ids: Vec<&str> = page.entries[0]
            .actions
            .iter()
            .map(|a| a.action_id.as_str())
            .collect();
        assert_eq!(ids, ["a1", "a2"]);
        let write = testing::sqlite_writer(&store);
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_actions")
            .fetch_one(write)
            .await
            .expect("count");
        assert_eq!(rows, 2);
    }
}
