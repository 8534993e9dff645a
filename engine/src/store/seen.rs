//! Ids of inbound webhooks already accepted, against replays: a signed
//! request captured and sent again within the replay window is refused.

use chrono::{DateTime, Utc};

use super::{micros, with_writer, Store, StoreError};

impl Store {
    /// Remembers `id` from `source` until `expires_at`. True when it was not
    /// seen before (or its memory had expired): accept the request; false
    /// means a replay.
    pub async fn seen_insert(
        &self,
        source: &str,
        id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.run("seen_insert", async {
            with_writer!(self, pool => {
                let row = sqlx::query(
                    "INSERT INTO seen_ids (source, id, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (source, id) DO UPDATE SET expires_at = excluded.expires_at \
                     WHERE seen_ids.expires_at <= $4 RETURNING id",
                )
                .bind(source)
                .bind(id)
                .bind(micros(expires_at))
                .bind(micros(now))
                .fetch_optional(pool)
                .await?;
                Ok(row.is_some())
            })
        })
        .await
    }

    /// Forgets `id` from `source`: its request could not be accepted after
    /// all, so the sender's retry must get in.
    pub async fn seen_forget(&self, source: &str, id: &str) -> Result<(), StoreError> {
        self.execute_pair(
            "seen_forget",
            "DELETE FROM seen_ids WHERE source = $1 AND id = $2",
            source,
            id,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing;
    use chrono::{Duration, Utc};

    #[tokio::test]
    async fn second_sighting_is_a_replay_until_expiry() {
        let (store, _dir) = testing::sqlite().await;
        let now = Utc::now();
        let exp = now + Duration::minutes(10);
        assert!(store
            .seen_insert("xsoar", "msg_1", exp, now)
            .await
            .expect("insert"));
        assert!(!store
            .seen_insert("xsoar", "msg_1", exp, now)
            .await
            .expect("insert"));
        assert!(store
            .seen_insert("github", "msg_1", exp, now)
            .await
            .expect("other source"));
        store.seen_forget("github", "msg_1").await.expect("forget");
        assert!(store
            .seen_insert("github", "msg_1", exp, now)
            .await
            .expect("forgotten"));
        let later = exp + Duration::seconds(1);
        assert!(store
            .seen_insert("xsoar", "msg_1", later + Duration::minutes(10), later)
            .await
            .expect("expired"));
    }
}
