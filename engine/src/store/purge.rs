//! The retention purge: deletes what has outlived its retention, in small
//! chunks so a large backlog never holds the database for long.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{micros, with_writer, Store, StoreError, TableLabel};

/// Rows deleted per statement.
const CHUNK: i64 = 5_000;

/// Event index rows walked per statement.
const WALK: i64 = 10_000;

/// What one purge deleted, by table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    pub audit_decisions: u64,
    pub outbox: u64,
    pub idempotency_keys: u64,
    pub approvals: u64,
    pub edl_entries: u64,
    pub tag_leases: u64,
    pub seen_ids: u64,
}

fn before(now: DateTime<Utc>, retention: crate::decide::intent::Ttl) -> i64 {
    micros(now).saturating_sub((retention.as_secs() as i64).saturating_mul(1_000_000))
}

impl Store {
    /// Deletes, as of `now`: decisions (with their actions) older than the
    /// audit retention; delivered and dead outbox items past theirs; expired
    /// idempotency keys and seen ids; expired EDL entries; approvals decided
    /// and leases unregistered longer than the history retention ago.
    pub async fn purge(&self, now: DateTime<Utc>) -> Result<PurgeReport, StoreError> {
        let c = self.config().clone();
        let now_us = micros(now);
        let history = before(now, c.history_retention);
        let mut report = PurgeReport {
            edl_entries: self.edl_purge_expired(now).await?,
            ..PurgeReport::default()
        };
        let audit_before = before(now, c.audit_retention);
        // Actions first: SQLite only cascades with foreign keys on, and the
        // explicit delete keeps both backends alike.
        self.purge_chunks(
            "DELETE FROM audit_actions WHERE decision_id IN \
             (SELECT id FROM audit_decisions WHERE at < $1 ORDER BY id LIMIT $2)",
            &[audit_before],
            false,
        )
        .await?;
        report.audit_decisions = self
            .purge_chunks(
                "DELETE FROM audit_decisions WHERE id IN \
                 (SELECT id FROM audit_decisions WHERE at < $1 ORDER BY id LIMIT $2)",
                &[audit_before],
                true,
            )
            .await?;
        // The event index of purged records: they were the oldest, so
        // their ids are below every remaining record's. The index is
        // walked in key order, a short statement at a time (it has no
        // index by record: that cost ~50 bytes per decided event).
        if report.audit_decisions > 0 {
            self.purge_event_index(WALK).await?;
        }
        // The journal is small and unindexed. The audit writer keeps its
        // rows in memory: it reads them back after.
        let mut open = self.inner.open_records.lock().await;
        self.run("purge", async {
            with_writer!(self, pool => {
                sqlx::query(
                    "DELETE FROM audit_events_new WHERE decision_id < \
                     COALESCE((SELECT MIN(id) FROM audit_decisions), $1)",
                )
                .bind(i64::MAX)
                .execute(pool)
                .await?;
                Ok(())
            })
        })
        .await?;
        open.journal.invalidate();
        drop(open);
        report.outbox = self
            .purge_chunks(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE \
                 (status = 'delivered' AND updated_at < $1) OR (status = 'dead' AND updated_at < $3) \
                 LIMIT $2)",
                &[before(now, c.outbox_retention), before(now, c.dead_letter_retention)],
                true,
            )
            .await?;
        // Closed notification windows, once their updates are long settled
        // (an update may wait for its incident up to the dead-letter age).
        self.purge_chunks(
            "DELETE FROM notify_windows WHERE id IN (SELECT id FROM notify_windows WHERE \
             closed = TRUE AND updated_at < $1 LIMIT $2)",
            &[before(now, c.dead_letter_retention)],
            true,
        )
        .await?;
        report.idempotency_keys = self
            .purge_chunks(
                "DELETE FROM idempotency_keys WHERE (principal, key) IN \
                 (SELECT principal, key FROM idempotency_keys WHERE expires_at <= $1 LIMIT $2)",
                &[now_us],
                true,
            )
            .await?;
        report.seen_ids = self
            .purge_chunks(
                "DELETE FROM seen_ids WHERE (source, id) IN \
                 (SELECT source, id FROM seen_ids WHERE expires_at <= $1 LIMIT $2)",
                &[now_us],
                true,
            )
            .await?;
        report.approvals = self
            .purge_chunks(
                "DELETE FROM approvals WHERE id IN (SELECT id FROM approvals WHERE \
                 state <> 'pending' AND COALESCE(decided_at, expires_at) < $1 LIMIT $2)",
                &[history],
                true,
            )
            .await?;
        report.tag_leases = self
            .purge_chunks(
                "DELETE FROM tag_leases WHERE (firewall, ip, tag) IN (SELECT firewall, ip, tag \
                 FROM tag_leases WHERE state = 'unregistered' AND updated_at < $1 LIMIT $2)",
                &[history],
                true,
            )
            .await?;
        let m = &self.inner.metrics.purged;
        for (table, n) in [
            ("audit_decisions", report.audit_decisions),
            ("outbox", report.outbox),
            ("idempotency_keys", report.idempotency_keys),
            ("approvals", report.approvals),
            ("edl_entries", report.edl_entries),
            ("tag_leases", report.tag_leases),
            ("seen_ids", report.seen_ids),
        ] {
            if n > 0 {
                m.get_or_create(&TableLabel { table }).inc_by(n);
            }
        }
        Ok(report)
    }

    /// Runs a `DELETE ... LIMIT $2` until it deletes less than a chunk.
    /// `$1` (and `$3`) are `args`; with `count`, returns rows deleted.
    /// Deletes the event index rows of records no longer stored, walking
    /// `audit_events` in key order `walk` rows at a time.
    async fn purge_event_index(&self, walk: i64) -> Result<u64, StoreError> {
        let floor = self
            .run("purge", async {
                with_writer!(self, pool => {
                    Ok(sqlx::query_scalar::<_, i64>(
                        "SELECT COALESCE(MIN(id), $1) FROM audit_decisions",
                    )
                    .bind(i64::MAX)
                    .fetch_one(pool)
                    .await?)
                })
            })
            .await?;
        let mut after: Option<String> = None;
        let mut total = 0;
        loop {
            let (next, n) = self
                .run("purge", async {
                    with_writer!(self, pool => {
                        let next: Option<String> = match &after {
                            None => sqlx::query_scalar(
                                "SELECT event_id FROM audit_events ORDER BY event_id LIMIT 1 OFFSET $1",
                            )
                            .bind(walk)
                            .fetch_optional(pool)
                            .await?,
                            Some(a) => sqlx::query_scalar(
                                "SELECT event_id FROM audit_events WHERE event_id > $1 \
                                 ORDER BY event_id LIMIT 1 OFFSET $2",
                            )
                            .bind(a)
                            .bind(walk)
                            .fetch_optional(pool)
                            .await?,
                        };
                        let sql = match (&after, &next) {
                            (None, None) => "DELETE FROM audit_events WHERE decision_id < $1",
                            (Some(_), None) => {
                                "DELETE FROM audit_events WHERE decision_id < $1 AND event_id > $2"
                            }
                            (None, Some(_)) => {
                                "DELETE FROM audit_events WHERE decision_id < $1 AND event_id <= $2"
                            }
                            (Some(_), Some(_)) => {
                                "DELETE FROM audit_events WHERE decision_id < $1 \
                                 AND event_id > $2 AND event_id <= $3"
                            }
                        };
                        let mut q = sqlx::query(sql).bind(floor);
                        for bound in [&after, &next].into_iter().flatten() {
                            q = q.bind(bound);
                        }
                        let n = q.execute(pool).await?.rows_affected();
                        Ok((next, n))
                    })
                })
                .await?;
            total += n;
            match next {
                Some(n) => after = Some(n),
                None => return Ok(total),
            }
            // Let other writers in between statements.
            tokio::task::yield_now().await;
        }
    }

    async fn purge_chunks(&self, sql: &str, args: &[i64], count: bool) -> Result<u64, StoreError> {
        let mut total = 0u64;
        loop {
            let n = self
                .run("purge", async {
                    with_writer!(self, pool => {
                        let mut q = sqlx::query(sql).bind(args[0]).bind(CHUNK);
                        if let Some(third) = args.get(1) {
                            q = q.bind(*third);
                        }
                        Ok(q.execute(pool).await?.rows_affected())
                    })
                })
                .await?;
            if count {
                total += n;
            }
            if n < CHUNK as u64 {
                return Ok(total);
            }
            // Let other writers in between chunks.
            tokio::task::yield_now().await;
        }
    }

    /// Runs [`Store::purge`] every `purge_interval_secs` until `shutdown`.
    /// A failed purge is logged and counted; the next one tries again.
    pub fn spawn_purge(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        let every = Duration::from_secs(self.config().purge_interval_secs.max(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                match store.purge(Utc::now()).await {
                    Ok(report) => tracing::debug!(?report, "store purge"),
                    Err(e) => {
                        tracing::warn!(error = %e, "store purge failed; retrying next interval")
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;
    use crate::store::NewOutboxItem;
    use chrono::Duration as ChronoDuration;

    #[tokio::test]
    async fn the_event_index_walk_deletes_exactly_the_rows_of_records_gone() {
        let (store, _dir) = testing::sqlite().await;
        let write = testing::sqlite_writer(&store);
        sqlx::query(
            "INSERT INTO audit_decisions (id, event_id, playbook, mode, outcome, event_json, \
             intents_json, targets, actions, eval_us, dispatch_us, at) \
             VALUES (15, 'e', 'pb', 'enforce', 'applied', '{}', '[]', '', '', 0, 0, 0)",
        )
        .execute(write)
        .await
        .expect("record");
        // Two rows for some events (two playbooks), across walk steps.
        for i in 0..30i64 {
            for key in 1..=(1 + i % 2) {
                sqlx::query("INSERT INTO audit_events (event_id, coalesce_key, decision_id) VALUES ($1, $2, $3)")
                    .bind(format!("{:02x}{}", (i * 37) % 256, i))
                    .bind(key)
                    .bind(i)
                    .execute(write)
                    .await
                    .expect("index row");
            }
        }
        let deleted = store.purge_event_index(4).await.expect("walk");
        let left: Vec<i64> =
            sqlx::query_scalar("SELECT DISTINCT decision_id FROM audit_events ORDER BY 1")
                .fetch_all(write)
                .await
                .expect("left");
        assert_eq!(left, (15..30).collect::<Vec<_>>());
        assert_eq!(deleted, (0..15).map(|i| 1 + i % 2).sum::<i64>() as u64);
    }

    #[tokio::test]
    async fn purge_respects_each_retention() {
        let (store, _dir) = testing::sqlite().await;
        let now = Utc::now();
        let old = now - ChronoDuration::days(40);
        for (id, at) in [("old", old), ("new", now)] {
            store
                .outbox_enqueue(&NewOutboxItem {
                    id: id.into(),
                    target: "t".into(),
                    payload: serde_json::json!({}),
                    created_at: at,
                })
                .await
                .expect("enqueue");
            store.outbox_delivered(id, at).await.expect("delivered");
        }
        store
            .outbox_enqueue(&NewOutboxItem {
                id: "pending-old".into(),
                target: "t".into(),
                payload: serde_json::json!({}),
                created_at: old,
            })
            .await
            .expect("enqueue");
        assert!(store
            .seen_insert("s", "x", now - ChronoDuration::seconds(1), old)
            .await
            .expect("seen"));
        let report = store.purge(now).await.expect("purge");
        assert_eq!(report.outbox, 1);
        assert_eq!(report.seen_ids, 1);
        assert!(store.outbox_get("old").await.expect("get").is_none());
        assert!(store.outbox_get("new").await.expect("get").is_some());
        assert!(
            store
                .outbox_get("pending-old")
                .await
                .expect("get")
                .is_some(),
            "pending is never purged"
        );
    }
}
