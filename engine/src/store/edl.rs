//! External dynamic list entries, served to firewalls that poll them.
//!
//! Each list has a revision counter, bumped in the same transaction as every
//! upsert, removal and purge. An entry that expires changes what the list
//! serves without any write, so [`EdlVersion`] also counts the entries
//! expired at the time asked: for one revision that count only grows with
//! time, so `(revision, expired)` names exactly one content, and the ETag
//! built from it changes whenever the served list does.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{from_micros, micros, with_reader, with_writer, RowExt, Store, StoreError};

/// An entry to add or refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEdlEntry {
    /// An address, CIDR, range, domain or URL, validated by the caller.
    pub value: String,
    pub expires_at: DateTime<Utc>,
    pub reason: Option<String>,
    /// The action that added it, for the audit trail.
    pub action_id: Option<String>,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdlEntry {
    pub list: String,
    pub value: String,
    pub expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a list's content is at a moment, cheaply: see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EdlVersion {
    /// Bumped by every change written to the list (0: never written).
    pub revision: i64,
    /// Entries past their expiry and not yet purged.
    pub expired: i64,
}

impl EdlVersion {
    /// A strong HTTP entity tag, quotes included.
    pub fn etag(&self) -> String {
        format!("\"{}-{}\"", self.revision, self.expired)
    }
}

const BUMP: &str = "INSERT INTO edl_lists (list, revision, updated_at) VALUES ($1, 1, $2) \
     ON CONFLICT (list) DO UPDATE SET revision = edl_lists.revision + 1, updated_at = excluded.updated_at";

impl Store {
    /// Adds entries to `list`, or refreshes their expiry, reason and action
    /// id; one transaction, one revision bump.
    pub async fn edl_upsert(
        &self,
        list: &str,
        entries: &[NewEdlEntry],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let now_us = micros(now);
        self.run("edl_upsert", async {
            with_writer!(self, pool => {
                let mut tx = pool.begin().await?;
                for e in entries {
                    sqlx::query(
                        "INSERT INTO edl_entries (list, value, expires_at, reason, action_id, \
                         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
                         ON CONFLICT (list, value) DO UPDATE SET expires_at = excluded.expires_at, \
                         reason = excluded.reason, action_id = excluded.action_id, \
                         updated_at = excluded.updated_at",
                    )
                    .bind(list)
                    .bind(&e.value)
                    .bind(micros(e.expires_at))
                    .bind(e.reason.as_deref())
                    .bind(e.action_id.as_deref())
                    .bind(now_us)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(BUMP).bind(list).bind(now_us).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            })
        })
        .await
    }

    /// Removes `value` from `list`; false when it was not there.
    pub async fn edl_remove(
        &self,
        list: &str,
        value: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.run("edl_remove", async {
            with_writer!(self, pool => {
                let mut tx = pool.begin().await?;
                let done = sqlx::query("DELETE FROM edl_entries WHERE list = $1 AND value = $2")
                    .bind(list)
                    .bind(value)
                    .execute(&mut *tx)
                    .await?;
                let removed = done.rows_affected() > 0;
                if removed {
                    sqlx::query(BUMP).bind(list).bind(micros(now)).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(removed)
            })
        })
        .await
    }

    /// The entries of `list` not expired at `now`, by value.
    pub async fn edl_active(
        &self,
        list: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<EdlEntry>, StoreError> {
        self.run("edl_active", async {
            with_reader!(self, pool => {
                let rows = sqlx::query(
                    "SELECT list, value, expires_at, reason, action_id, created_at, updated_at \
                     FROM edl_entries WHERE list = $1 AND expires_at > $2 ORDER BY value",
                )
                .bind(list)
                .bind(micros(now))
                .fetch_all(pool)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    out.push(EdlEntry {
                        list: row.text("list")?,
                        value: row.text("value")?,
                        expires_at: from_micros(row.int("expires_at")?),
                        reason: row.opt_text("reason")?,
                        action_id: row.opt_text("action_id")?,
                        created_at: from_micros(row.int("created_at")?),
                        updated_at: from_micros(row.int("updated_at")?),
                    });
                }
                Ok(out)
            })
        })
        .await
    }

    /// Only the values of [`Store::edl_active`], for serving large lists.
    pub async fn edl_active_values(
        &self,
        list: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        self.run("edl_active", async {
            with_reader!(self, pool => {
                Ok(sqlx::query_scalar::<_, String>(
                    "SELECT value FROM edl_entries WHERE list = $1 AND expires_at > $2 ORDER BY value",
                )
                .bind(list)
                .bind(micros(now))
                .fetch_all(pool)
                .await?)
            })
        })
        .await
    }

    /// The active values of `list`, sorted, one a line: joined by the
    /// database, so a 100,000-entry list comes back as one row rather than
    /// 100,000 (the row-by-row fetch cost more than the query). SQLite
    /// joins the ordered scan of the serving index as it comes (an ORDER BY
    /// inside the aggregate would sort it again).
    pub async fn edl_active_body(
        &self,
        list: &str,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        self.run("edl_active", async {
            let body: Option<String> = match &self.inner.backend {
                super::Backend::Sqlite { read, .. } => {
                    sqlx::query_scalar(
                        "SELECT group_concat(value, char(10)) FROM (SELECT value FROM edl_entries \
                         WHERE list = $1 AND expires_at > $2 ORDER BY value)",
                    )
                    .bind(list)
                    .bind(micros(now))
                    .fetch_one(read)
                    .await?
                }
                super::Backend::Postgres(pool) => {
                    sqlx::query_scalar(
                        "SELECT string_agg(value, E'\\n' ORDER BY value COLLATE \"C\") FROM edl_entries \
                         WHERE list = $1 AND expires_at > $2",
                    )
                    .bind(list)
                    .bind(micros(now))
                    .fetch_one(pool)
                    .await?
                }
            };
            Ok(body.unwrap_or_default())
        })
        .await
    }

    /// The list's version at `now` (two indexed lookups).
    pub async fn edl_version(
        &self,
        list: &str,
        now: DateTime<Utc>,
    ) -> Result<EdlVersion, StoreError> {
        self.run("edl_version", async {
            with_reader!(self, pool => {
                let revision: Option<i64> =
                    sqlx::query_scalar("SELECT revision FROM edl_lists WHERE list = $1")
                        .bind(list)
                        .fetch_optional(pool)
                        .await?;
                let expired: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM edl_entries WHERE list = $1 AND expires_at <= $2",
                )
                .bind(list)
                .bind(micros(now))
                .fetch_one(pool)
                .await?;
                Ok(EdlVersion { revision: revision.unwrap_or(0), expired })
            })
        })
        .await
    }

    /// Deletes entries expired at `now` from every list (bumping the
    /// revision of each list touched); returns how many.
    pub async fn edl_purge_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let now_us = micros(now);
        self.run("edl_purge", async {
            with_writer!(self, pool => {
                let mut tx = pool.begin().await?;
                let lists: Vec<String> = sqlx::query_scalar(
                    "SELECT DISTINCT list FROM edl_entries WHERE expires_at <= $1",
                )
                .bind(now_us)
                .fetch_all(&mut *tx)
                .await?;
                let done = sqlx::query("DELETE FROM edl_entries WHERE expires_at <= $1")
                    .bind(now_us)
                    .execute(&mut *tx)
                    .await?;
                for list in &lists {
                    sqlx::query(BUMP).bind(list).bind(now_us).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(done.rows_affected())
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;
    use chrono::Duration;

    fn entry(value: &str, expires_at: DateTime<Utc>) -> NewEdlEntry {
        NewEdlEntry {
            value: value.into(),
            expires_at,
            reason: Some("C2".into()),
            action_id: None,
        }
    }

    #[tokio::test]
    async fn version_changes_on_add_remove_and_expiry() {
        let (store, _dir) = testing::sqlite().await;
        let now = Utc::now();
        let v0 = store.edl_version("c2", now).await.expect("version");
        assert_eq!(
            v0,
            EdlVersion {
                revision: 0,
                expired: 0
            }
        );
        store
            .edl_upsert(
                "c2",
                &[
                    entry("203.0.113.66", now + Duration::hours(1)),
                    entry("198.51.100.0/24", now + Duration::seconds(10)),
                ],
                now,
            )
            .await
            .expect("upsert");
        let v1 = store.edl_version("c2", now).await.expect("version");
        assert_ne!(v1, v0);
        assert_eq!(
            store.edl_active_values("c2", now).await.expect("active"),
            ["198.51.100.0/24", "203.0.113.66"]
        );
        // Nothing written, yet one entry expired: the version moves.
        let later = now + Duration::seconds(11);
        let v2 = store.edl_version("c2", later).await.expect("version");
        assert_ne!(v2.etag(), v1.etag());
        assert_eq!(
            store.edl_active("c2", later).await.expect("active").len(),
            1
        );
        assert_eq!(
            store.edl_version("c2", later).await.expect("version"),
            v2,
            "stable while unchanged"
        );
        assert!(store
            .edl_remove("c2", "203.0.113.66", later)
            .await
            .expect("remove"));
        assert!(!store
            .edl_remove("c2", "203.0.113.66", later)
            .await
            .expect("remove"));
        let v3 = store.edl_version("c2", later).await.expect("version");
        assert_ne!(v3, v2);
        assert_eq!(store.edl_purge_expired(later).await.expect("purge"), 1);
        let v4 = store.edl_version("c2", later).await.expect("version");
        assert_ne!(v4, v3);
        assert!(store
            .edl_active("c2", later)
            .await
            .expect("active")
            .is_empty());
        assert_eq!(
            store
                .edl_version("other", later)
                .await
                .expect("version")
                .revision,
            0
        );
    }
}
