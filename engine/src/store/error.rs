//! The store's one error type, classified by what a caller can do about it.

use thiserror::Error;

/// A store failure. The API maps [`StoreError::Unavailable`] to 503 (try
/// again later), [`StoreError::Conflict`] to 409, [`StoreError::NotFound`] to
/// 404 and [`StoreError::Invalid`] to 400; the rest are 500s.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database cannot be reached or written right now: connection lost,
    /// pool exhausted, disk full, I/O error, lock timeout. Transient: retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The write collides with a row that already exists.
    #[error("store conflict: {0}")]
    Conflict(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// The database holds something this version cannot read (a corrupt
    /// file, a value that does not decode, a schema from a newer version).
    #[error("store corrupt: {0}")]
    Corrupt(String),
    /// The caller passed something the store cannot use (a bad cursor).
    #[error("invalid store request: {0}")]
    Invalid(String),
    /// The `[store]` configuration cannot work (bad URL, unreadable
    /// password file).
    #[error("store config: {0}")]
    Config(String),
    /// Applying the schema migrations failed.
    #[error("store migration: {0}")]
    Migration(String),
    /// A statement the database refused for another reason (a bug).
    #[error("store query failed: {0}")]
    Query(String),
}

impl StoreError {
    /// Whether retrying the same operation later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// A fixed label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Conflict(_) => "conflict",
            StoreError::NotFound(_) => "not_found",
            StoreError::Corrupt(_) => "corrupt",
            StoreError::Invalid(_) => "invalid",
            StoreError::Config(_) => "config",
            StoreError::Migration(_) => "migration",
            StoreError::Query(_) => "query",
        }
    }
}

/// SQLite primary result codes (the low byte of an extended code) that mean
/// "not now" rather than "never".
const SQLITE_TRANSIENT: &[i64] = &[
    5,  // SQLITE_BUSY
    6,  // SQLITE_LOCKED
    7,  // SQLITE_NOMEM
    8,  // SQLITE_READONLY (a read-only mount, a file whose permissions changed)
    10, // SQLITE_IOERR
    13, // SQLITE_FULL
    14, // SQLITE_CANTOPEN
    15, // SQLITE_PROTOCOL
];

/// SQLite codes for a damaged file.
const SQLITE_CORRUPT: &[i64] = &[
    11, // SQLITE_CORRUPT
    26, // SQLITE_NOTADB
];

fn classify_database(e: &dyn sqlx::error::DatabaseError) -> StoreError {
    let message = e.message().to_owned();
    let code = e.code().map(|c| c.into_owned()).unwrap_or_default();
    if e.is_unique_violation() {
        return StoreError::Conflict(message);
    }
    // SQLite reports its (extended) result code as a decimal number.
    if let Ok(n) = code.parse::<i64>() {
        let primary = n & 0xff;
        if SQLITE_TRANSIENT.contains(&primary) {
            return StoreError::Unavailable(message);
        }
        if SQLITE_CORRUPT.contains(&primary) {
            return StoreError::Corrupt(message);
        }
        return StoreError::Query(format!("{message} (SQLite code {n})"));
    }
    // PostgreSQL SQLSTATE classes.
    match code.get(..2) {
        // Connection exception, insufficient resources (disk full, out of
        // memory, too many connections), operator intervention (shutdown,
        // restart), serialization failure or deadlock (transaction rollback),
        // system error (I/O).
        Some("08" | "53" | "57" | "40" | "58") => StoreError::Unavailable(message),
        Some("XX") => StoreError::Corrupt(message),
        Some("23") => StoreError::Conflict(message),
        _ => StoreError::Query(format!("{message} (SQLSTATE {code})")),
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        match e {
            sqlx::Error::Database(db) => classify_database(db.as_ref()),
            sqlx::Error::Io(e) => StoreError::Unavailable(format!("I/O: {e}")),
            sqlx::Error::Tls(e) => StoreError::Unavailable(format!("TLS: {e}")),
            sqlx::Error::Protocol(m) => StoreError::Unavailable(format!("protocol: {m}")),
            sqlx::Error::PoolTimedOut => {
                StoreError::Unavailable("timed out waiting for a database connection".into())
            }
            sqlx::Error::PoolClosed => StoreError::Unavailable("the store is closed".into()),
            sqlx::Error::WorkerCrashed => {
                StoreError::Unavailable("the database worker thread stopped".into())
            }
            sqlx::Error::RowNotFound => StoreError::NotFound("no such row".into()),
            sqlx::Error::Configuration(e) => StoreError::Config(e.to_string()),
            sqlx::Error::Migrate(e) => StoreError::Migration(e.to_string()),
            e @ (sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::TypeNotFound { .. }
            | sqlx::Error::ColumnIndexOutOfBounds { .. }) => StoreError::Corrupt(e.to_string()),
            other => StoreError::Query(other.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> StoreError {
        match e {
            sqlx::migrate::MigrateError::Execute(inner) => match StoreError::from(inner) {
                StoreError::Unavailable(m) => StoreError::Unavailable(m),
                other => StoreError::Migration(other.to_string()),
            },
            other => StoreError::Migration(other.to_string()),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> StoreError {
        StoreError::Corrupt(format!("stored JSON: {e}"))
    }
}
