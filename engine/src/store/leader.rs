//! One replica at a time: schedules, expiries and reconciliation run on the
//! holder of a named lock. On PostgreSQL that is a session advisory lock on
//! a connection set aside for it, so a replica that dies (or loses its
//! connection) releases it at once; SQLite is one process's file, which is
//! always the leader.

use sqlx::postgres::PgConnection;
use sqlx::Connection;

use super::{Backend, Store, StoreError};

/// A held leader lock. Dropping it closes its connection, which releases
/// the lock too; [`LeaderLock::release`] does so without waiting for the
/// server to notice.
#[derive(Debug)]
pub struct LeaderLock {
    name: String,
    key: i64,
    conn: Option<PgConnection>,
}

/// The advisory lock key of `name`: stable across versions and replicas.
fn lock_key(name: &str) -> i64 {
    xxhash_rust::xxh3::xxh3_64(format!("riposte-leader:{name}").as_bytes()) as i64
}

impl Store {
    /// Takes the leader lock `name` if no other replica holds it. `None`
    /// means another replica leads; try again later.
    pub async fn try_leader_lock(&self, name: &str) -> Result<Option<LeaderLock>, StoreError> {
        let key = lock_key(name);
        self.run("leader_lock", async {
            match &self.inner.backend {
                Backend::Sqlite { .. } => Ok(Some(LeaderLock {
                    name: name.to_owned(),
                    key,
                    conn: None,
                })),
                Backend::Postgres(pool) => {
                    // Detached: the lock lives as long as this session, so
                    // the connection must never go back to the pool.
                    let mut conn = pool.acquire().await?.detach();
                    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                        .bind(key)
                        .fetch_one(&mut conn)
                        .await?;
                    if got {
                        Ok(Some(LeaderLock {
                            name: name.to_owned(),
                            key,
                            conn: Some(conn),
                        }))
                    } else {
                        let _ = conn.close().await;
                        Ok(None)
                    }
                }
            }
        })
        .await
    }
}

impl LeaderLock {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the lock is still held: its connection still answers. Call it
    /// before each round of leader work; false means stop and re-acquire.
    pub async fn is_held(&mut self) -> bool {
        match &mut self.conn {
            None => true,
            Some(conn) => conn.ping().await.is_ok(),
        }
    }

    /// Gives the lock up so another replica can take it at once.
    pub async fn release(mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(self.key)
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing;

    #[tokio::test]
    async fn sqlite_always_leads() {
        let (store, _dir) = testing::sqlite().await;
        let mut lock = store
            .try_leader_lock("expiry")
            .await
            .expect("lock")
            .expect("leader");
        assert!(lock.is_held().await);
        assert_eq!(lock.name(), "expiry");
        lock.release().await;
    }
}
