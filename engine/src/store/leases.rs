//! IP-tag leases: which address Riposte asked which firewall to tag, until
//! when. The reconciler compares them with what each firewall reports:
//! re-registers active leases a firewall forgot, unregisters released and
//! expired ones, then marks them unregistered.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{from_micros, micros, with_reader, with_writer, RowExt, Store, StoreError};

/// Where a lease stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaseState {
    /// Should be registered until `expires_at`.
    Active,
    /// Released before expiry: to unregister.
    Released,
    /// Unregistered on the firewall; kept for history until purged.
    Unregistered,
}

impl LeaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseState::Active => "active",
            LeaseState::Released => "released",
            LeaseState::Unregistered => "unregistered",
        }
    }

    fn parse(s: &str) -> Option<LeaseState> {
        match s {
            "active" => Some(LeaseState::Active),
            "released" => Some(LeaseState::Released),
            "unregistered" => Some(LeaseState::Unregistered),
            _ => None,
        }
    }
}

/// A lease to take or extend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTagLease {
    /// The configured firewall (or Panorama target) name.
    pub firewall: String,
    pub ip: String,
    pub tag: String,
    pub expires_at: DateTime<Utc>,
    pub action_id: Option<String>,
}

/// A stored lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagLease {
    pub firewall: String,
    pub ip: String,
    pub tag: String,
    pub state: LeaseState,
    pub expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "firewall, ip, tag, state, expires_at, action_id, created_at, updated_at";

fn lease_from<R: RowExt>(row: &R) -> Result<TagLease, StoreError> {
    let state = row.text("state")?;
    Ok(TagLease {
        firewall: row.text("firewall")?,
        ip: row.text("ip")?,
        tag: row.text("tag")?,
        state: LeaseState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown lease state `{state}`")))?,
        expires_at: from_micros(row.int("expires_at")?),
        action_id: row.opt_text("action_id")?,
        created_at: from_micros(row.int("created_at")?),
        updated_at: from_micros(row.int("updated_at")?),
    })
}

impl Store {
    /// Takes or extends leases (state back to active, new expiry); one
    /// transaction.
    pub async fn lease_upsert(
        &self,
        leases: &[NewTagLease],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now_us = micros(now);
        self.run("lease_upsert", async {
            with_writer!(self, pool => {
                let mut tx = pool.begin().await?;
                for l in leases {
                    sqlx::query(
                        "INSERT INTO tag_leases (firewall, ip, tag, state, expires_at, action_id, \
                         created_at, updated_at) VALUES ($1, $2, $3, 'active', $4, $5, $6, $6) \
                         ON CONFLICT (firewall, ip, tag) DO UPDATE SET state = 'active', \
                         expires_at = excluded.expires_at, action_id = excluded.action_id, \
                         updated_at = excluded.updated_at",
                    )
                    .bind(&l.firewall)
                    .bind(&l.ip)
                    .bind(&l.tag)
                    .bind(micros(l.expires_at))
                    .bind(l.action_id.as_deref())
                    .bind(now_us)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            })
        })
        .await
    }

    /// Releases the active lease of `ip`/`tag` on `firewall` (or on every
    /// firewall) so the reconciler unregisters it; returns how many.
    pub async fn lease_release(
        &self,
        firewall: Option<&str>,
        ip: &str,
        tag: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.run("lease_release", async {
            with_writer!(self, pool => {
                let done = sqlx::query(
                    "UPDATE tag_leases SET state = 'released', updated_at = $4 \
                     WHERE ip = $1 AND tag = $2 AND state = 'active' \
                     AND ($3 IS NULL OR firewall = $3)",
                )
                .bind(ip)
                .bind(tag)
                .bind(firewall)
                .bind(micros(now))
                .execute(pool)
                .await?;
                Ok(done.rows_affected())
            })
        })
        .await
    }

    /// Leases that should be registered on `firewall` at `now`.
    pub async fn leases_active(
        &self,
        firewall: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<TagLease>, StoreError> {
        self.leases_where(
            "leases_active",
            "firewall = $1 AND state = 'active' AND expires_at > $2",
            firewall,
            now,
        )
        .await
    }

    /// Leases to unregister from `firewall`: released, or active but expired
    /// at `now`.
    pub async fn leases_to_unregister(
        &self,
        firewall: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<TagLease>, StoreError> {
        self.leases_where(
            "leases_to_unregister",
            "firewall = $1 AND (state = 'released' OR (state = 'active' AND expires_at <= $2))",
            firewall,
            now,
        )
        .await
    }

    async fn leases_where(
        &self,
        op: &'static str,
        condition: &str,
        firewall: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<TagLease>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM tag_leases WHERE {condition} ORDER BY ip, tag");
        self.run(op, async {
            with_reader!(self, pool => {
                let rows = sqlx::query(&sql)
                    .bind(firewall)
                    .bind(micros(now))
                    .fetch_all(pool)
                    .await?;
                rows.iter().map(lease_from).collect()
            })
        })
        .await
    }

    /// Marks a lease unregistered after the firewall confirmed it, unless it
    /// was taken again meanwhile (active with a later expiry). True when
    /// marked.
    pub async fn lease_mark_unregistered(
        &self,
        firewall: &str,
        ip: &str,
        tag: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.run("lease_mark_unregistered", async {
            with_writer!(self, pool => {
                let done = sqlx::query(
                    "UPDATE tag_leases SET state = 'unregistered', updated_at = $4 \
                     WHERE firewall = $1 AND ip = $2 AND tag = $3 \
                     AND (state = 'released' OR (state = 'active' AND expires_at <= $4))",
                )
                .bind(firewall)
                .bind(ip)
                .bind(tag)
                .bind(micros(now))
                .execute(pool)
                .await?;
                Ok(done.rows_affected() == 1)
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

    fn lease(fw: &str, ip: &str, exp: DateTime<Utc>) -> NewTagLease {
        NewTagLease {
            firewall: fw.into(),
            ip: ip.into(),
            tag: "riposte-c2".into(),
            expires_at: exp,
            action_id: Some("a1".into()),
        }
    }

    #[tokio::test]
    async fn lease_lifecycle() {
        let (store, _dir) = testing::sqlite().await;
        let now = Utc::now();
        store
            .lease_upsert(
                &[
                    lease("fw1", "203.0.113.66", now + Duration::hours(1)),
                    lease("fw1", "198.51.100.7", now + Duration::seconds(5)),
                    lease("fw2", "203.0.113.66", now + Duration::hours(1)),
                ],
                now,
            )
            .await
            .expect("upsert");
        assert_eq!(
            store.leases_active("fw1", now).await.expect("active").len(),
            2
        );
        let later = now + Duration::seconds(6);
        let active = store.leases_active("fw1", later).await.expect("active");
        assert_eq!(active.len(), 1);
        assert_eq!(
            store
                .lease_release(Some("fw1"), "203.0.113.66", "riposte-c2", later)
                .await
                .expect("release"),
            1
        );
        let gone = store
            .leases_to_unregister("fw1", later)
            .await
            .expect("to unregister");
        let ips: Vec<&str> = gone.iter().map(|l| l.ip.as_str()).collect();
        assert_eq!(ips, ["198.51.100.7", "203.0.113.66"]);
        assert!(store
            .lease_mark_unregistered("fw1", "203.0.113.66", "riposte-c2", later)
            .await
            .expect("mark"));
        assert_eq!(
            store
                .leases_to_unregister("fw1", later)
                .await
                .expect("to unregister")
                .len(),
            1
        );
        // Taken again: active, not to unregister.
        store
            .lease_upsert(
                &[lease("fw1", "198.51.100.7", later + Duration::hours(1))],
                later,
            )
            .await
            .expect("renew");
        assert!(!store
            .lease_mark_unregistered("fw1", "198.51.100.7", "riposte-c2", later)
            .await
            .expect("mark"));
        assert!(store
            .leases_to_unregister("fw1", later)
            .await
            .expect("none")
            .is_empty());
        assert_eq!(
            store
                .leases_active("fw2", later)
                .await
                .expect("fw2 untouched")
                .len(),
            1
        );
    }
}
