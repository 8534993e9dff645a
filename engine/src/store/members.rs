//! The worker replicas sharing the partition queues: a heartbeat row per
//! member, and the members whose heartbeat is recent. With PostgreSQL
//! every replica sees the others; SQLite is one process's file, so there a
//! worker only ever sees itself (and consumes every partition).

use chrono::{DateTime, Utc};

use super::{micros, with_reader, with_writer, RowExt, Store, StoreError};

impl Store {
    /// Records that `member` of the workers of `queue_prefix` is alive at
    /// `now`, and forgets members silent since `forget_before` (crashed
    /// replicas never remove their own row).
    pub async fn member_heartbeat(
        &self,
        queue_prefix: &str,
        member: &str,
        now: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now_us = micros(now);
        self.run("member_heartbeat", async {
            with_writer!(self, pool => {
                let mut tx = pool.begin().await?;
                sqlx::query(
                    "INSERT INTO partition_members (queue_prefix, member, heartbeat_at, joined_at) \
                     VALUES ($1, $2, $3, $3) ON CONFLICT (queue_prefix, member) \
                     DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
                )
                .bind(queue_prefix)
                .bind(member)
                .bind(now_us)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "DELETE FROM partition_members WHERE queue_prefix = $1 AND heartbeat_at < $2",
                )
                .bind(queue_prefix)
                .bind(micros(forget_before))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            })
        })
        .await
    }

    /// The members of `queue_prefix` heard from since `since`, sorted.
    pub async fn members_live(
        &self,
        queue_prefix: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        self.run("members_live", async {
            with_reader!(self, pool => {
                let rows = sqlx::query(
                    "SELECT member FROM partition_members \
                     WHERE queue_prefix = $1 AND heartbeat_at >= $2 ORDER BY member",
                )
                .bind(queue_prefix)
                .bind(micros(since))
                .fetch_all(pool)
                .await?;
                rows.iter().map(|r| r.text("member")).collect()
            })
        })
        .await
    }

    /// Removes `member` (a worker shutting down, its partitions handed
    /// over): the others take its partitions at their next check instead
    /// of waiting for its heartbeat to expire.
    pub async fn member_leave(&self, queue_prefix: &str, member: &str) -> Result<(), StoreError> {
        self.execute_pair(
            "member_leave",
            "DELETE FROM partition_members WHERE queue_prefix = $1 AND member = $2",
            queue_prefix,
            member,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing;
    use chrono::{Duration, Utc};

    #[tokio::test]
    async fn members_live_until_their_heartbeat_is_old() {
        let (store, _dir) = testing::sqlite().await;
        let t0 = Utc::now();
        let old = t0 - Duration::hours(1);
        store.member_heartbeat("p", "b", t0, old).await.expect("b");
        store.member_heartbeat("p", "a", t0, old).await.expect("a");
        store.member_heartbeat("q", "c", t0, old).await.expect("c");
        assert_eq!(store.members_live("p", t0).await.expect("live"), ["a", "b"]);
        // `a` goes quiet: after the TTL only `b` is live.
        let t1 = t0 + Duration::seconds(10);
        store.member_heartbeat("p", "b", t1, old).await.expect("b");
        let live = store
            .members_live("p", t1 - Duration::seconds(5))
            .await
            .expect("live");
        assert_eq!(live, ["b"]);
        store.member_leave("p", "b").await.expect("leave");
        assert!(store
            .members_live("p", old)
            .await
            .expect("live")
            .iter()
            .all(|m| m != "b"));
        // Long-silent rows are forgotten by the next heartbeat.
        store
            .member_heartbeat("p", "b", t1, t1 - Duration::seconds(1))
            .await
            .expect("b");
        assert_eq!(store.members_live("p", old).await.expect("live"), ["b"]);
        assert_eq!(store.members_live("q", old).await.expect("live"), ["c"]);
    }
}
