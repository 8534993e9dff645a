//! The webhook outbox: a notification is stored before it is sent and stays
//! until delivered or dead-lettered, across restarts and replicas.
//!
//! Delivery workers [`Store::outbox_claim`] due items with a lease (owner and
//! `locked_until`): on PostgreSQL the claim locks rows with `FOR UPDATE SKIP
//! LOCKED`, so two replicas never take the same item; a worker that dies
//! leaves its lease to expire and the item is claimed again. Then the worker
//! marks each item delivered, schedules a retry, or dead-letters it.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::{Deserialize, Serialize};

use super::{
    bind_args, decode_cursor, encode_cursor, from_micros, micros, opt_from_micros, page_limit,
    with_reader, with_writer, Arg, Conditions, RowExt, Store, StoreError,
};

/// Where an outbox item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxStatus {
    /// Waiting for (another) delivery attempt.
    Pending,
    Delivered,
    /// Given up on; kept for inspection and replay.
    Dead,
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Delivered => "delivered",
            OutboxStatus::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<OutboxStatus> {
        match s {
            "pending" => Some(OutboxStatus::Pending),
            "delivered" => Some(OutboxStatus::Delivered),
            "dead" => Some(OutboxStatus::Dead),
            _ => None,
        }
    }
}

/// A notification to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOutboxItem {
    /// The `webhook-id`, stable across retries; enqueueing the same id
    /// twice stores it once.
    pub id: String,
    /// The configured notification target's name.
    pub target: String,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxItem {
    pub id: String,
    pub target: String,
    pub payload: serde_json::Value,
    pub status: OutboxStatus,
    /// Delivery attempts so far.
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Which items [`Store::outbox_list`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxFilter {
    pub status: Option<OutboxStatus>,
    pub target: Option<String>,
    /// Page size (1–1000; default 100).
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

/// One page of items, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxPage {
    pub items: Vec<OutboxItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Items of one target in one status, for gauges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxCount {
    pub target: String,
    pub status: OutboxStatus,
    pub count: i64,
}

/// Whether a target is switched off (a 410 Gone from the receiver).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetState {
    pub target: String,
    pub disabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, target, payload, status, attempts, next_attempt_at, created_at, \
     updated_at, locked_by, locked_until, last_error, dead_reason, delivered_at";

fn item_from<R: RowExt>(row: &R) -> Result<OutboxItem, StoreError> {
    let payload = row.text("payload")?;
    let status = row.text("status")?;
    Ok(OutboxItem {
        id: row.text("id")?,
        target: row.text("target")?,
        payload: serde_json::from_str(&payload)?,
        status: OutboxStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown outbox status `{status}`")))?,
        attempts: row.int("attempts")?.clamp(0, u32::MAX as i64) as u32,
        next_attempt_at: from_micros(row.int("next_attempt_at")?),
        created_at: from_micros(row.int("created_at")?),
        updated_at: from_micros(row.int("updated_at")?),
        locked_by: row.opt_text("locked_by")?,
        locked_until: opt_from_micros(row.opt_int("locked_until")?),
        last_error: row.opt_text("last_error")?,
        dead_reason: row.opt_text("dead_reason")?,
        delivered_at: opt_from_micros(row.opt_int("delivered_at")?),
    })
}

const INSERT: &str = "INSERT INTO outbox (id, target, payload, status, attempts, next_attempt_at, \
     created_at, updated_at) VALUES ($1, $2, $3, 'pending', 0, $4, $4, $4) \
     ON CONFLICT (id) DO NOTHING";

impl Store {
    /// Stores a notification as pending, due at once. Returns false when an
    /// item with this id is already stored (nothing changes).
    pub async fn outbox_enqueue(&self, item: &NewOutboxItem) -> Result<bool, StoreError> {
        Ok(self.outbox_enqueue_many(std::slice::from_ref(item)).await? == 1)
    }

    /// Stores several notifications in one transaction; returns how many
    /// were new.
    pub async fn outbox_enqueue_many(&self, items: &[NewOutboxItem]) -> Result<usize, StoreError> {
        let new = self.outbox_enqueue_each(items).await?;
        Ok(new.iter().filter(|n| **n).count())
    }

    /// Stores several notifications in one transaction (one disk sync for
    /// all of them); says for each whether it was new.
    pub async fn outbox_enqueue_each(
        &self,
        items: &[NewOutboxItem],
    ) -> Result<Vec<bool>, StoreError> {
        let payloads = items
            .iter()
            .map(|i| serde_json::to_string(&i.payload))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::Invalid(format!("payload: {e}")))?;
        self.run("outbox_enqueue", async {
            with_writer!(self, pool => {
                let mut tx = pool.begin().await?;
                let mut new = Vec::with_capacity(items.len());
                for (item, payload) in items.iter().zip(&payloads) {
                    let done = sqlx::query(INSERT)
                        .bind(&item.id)
                        .bind(&item.target)
                        .bind(payload)
                        .bind(micros(item.created_at))
                        .execute(&mut *tx)
                        .await?;
                    new.push(done.rows_affected() == 1);
                }
                tx.commit().await?;
                Ok(new)
            })
        })
        .await
    }

    /// Rewrites every stored payload `clean` changes (it returns true when
    /// it did), in one transaction: used at start to take approval link
    /// tokens out of what an older version stored.
    pub async fn outbox_rewrite_payloads(
        &self,
        clean: impl Fn(&mut serde_json::Value) -> bool + Send + Sync,
    ) -> Result<usize, StoreError> {
        self.run("outbox_rewrite", async {
            with_writer!(self, pool => {
                let mut tx = pool.begin().await?;
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT id, payload FROM outbox WHERE payload LIKE '%token=%'",
                )
                .fetch_all(&mut *tx)
                .await?;
                let mut changed = 0;
                for (id, payload) in rows {
                    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(&payload) else {
                        continue;
                    };
                    if !clean(&mut value) {
                        continue;
                    }
                    sqlx::query("UPDATE outbox SET payload = $1 WHERE id = $2")
                        .bind(value.to_string())
                        .bind(&id)
                        .execute(&mut *tx)
                        .await?;
                    changed += 1;
                }
                tx.commit().await?;
                Ok(changed)
            })
        })
        .await
    }

    /// Claims up to `limit` due pending items (of `target`, or of any
    /// target) for `owner` until `now + lease`: oldest due first, skipping
    /// items another worker holds an unexpired lease on.
    pub async fn outbox_claim(
        &self,
        target: Option<&str>,
        owner: &str,
        lease: std::time::Duration,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let now_us = micros(now);
        let until = micros(now + ChronoDuration::from_std(lease).unwrap_or(ChronoDuration::MAX));
        let target_clause = if target.is_some() {
            " AND target = $5"
        } else {
            ""
        };
        let pick = format!(
            "SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $3 \
             AND (locked_until IS NULL OR locked_until <= $3){target_clause} \
             ORDER BY next_attempt_at, created_at LIMIT $4{}",
            self.skip_locked()
        );
        let sql = if self.is_postgres() {
            // A materialized CTE runs the locking pick exactly once.
            format!(
                "WITH picked AS MATERIALIZED ({pick}) UPDATE outbox o SET locked_by = $1, \
                 locked_until = $2, updated_at = $3 FROM picked WHERE o.id = picked.id \
                 RETURNING {}",
                COLUMNS
                    .split(", ")
                    .map(|c| format!("o.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            format!(
                "UPDATE outbox SET locked_by = $1, locked_until = $2, updated_at = $3 \
                 WHERE id IN ({pick}) RETURNING {COLUMNS}"
            )
        };
        self.run("outbox_claim", async {
            with_writer!(self, pool => {
                let mut q = sqlx::query(&sql)
                    .bind(owner)
                    .bind(until)
                    .bind(now_us)
                    .bind(page_limit(limit));
                if let Some(t) = target {
                    q = q.bind(t);
                }
                let rows = q.fetch_all(pool).await?;
                let mut items = rows.iter().map(item_from).collect::<Result<Vec<_>, _>>()?;
                items.sort_by(|a, b| {
                    (a.next_attempt_at, a.created_at, &a.id).cmp(&(b.next_attempt_at, b.created_at, &b.id))
                });
                Ok(items)
            })
        })
        .await
    }

    /// Marks an item delivered (counting the attempt) and releases its
    /// lease. False when no such pending item exists.
    pub async fn outbox_delivered(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.run("outbox_delivered", async {
            with_writer!(self, pool => {
                let done = sqlx::query(
                    "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, \
                     delivered_at = $2, updated_at = $2, locked_by = NULL, locked_until = NULL, \
                     last_error = NULL WHERE id = $1 AND status = 'pending'",
                )
                .bind(id)
                .bind(micros(now))
                .execute(pool)
                .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }

    /// Marks several items delivered in one transaction (one commit for a
    /// whole claimed batch); returns how many were pending.
    pub async fn outbox_delivered_many(
        &self,
        ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.run("outbox_delivered", async {
            with_writer!(self, pool => {
                let mut tx = pool.begin().await?;
                let mut n = 0;
                for id in ids {
                    n += sqlx::query(
                        "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, \
                         delivered_at = $2, updated_at = $2, locked_by = NULL, \
                         locked_until = NULL, last_error = NULL WHERE id = $1 AND status = 'pending'",
                    )
                    .bind(id)
                    .bind(micros(now))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
                tx.commit().await?;
                Ok(n)
            })
        })
        .await
    }

    /// Records a failed attempt: `attempts` is the new total, the item is
    /// due again at `next_attempt_at`, its lease is released.
    pub async fn outbox_retry(
        &self,
        id: &str,
        attempts: u32,
        next_attempt_at: DateTime<Utc>,
        last_error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.run("outbox_retry", async {
            with_writer!(self, pool => {
                let done = sqlx::query(
                    "UPDATE outbox SET attempts = $2, next_attempt_at = $3, last_error = $4, \
                     updated_at = $5, locked_by = NULL, locked_until = NULL \
                     WHERE id = $1 AND status = 'pending'",
                )
                .bind(id)
                .bind(i64::from(attempts))
                .bind(micros(next_attempt_at))
                .bind(last_error)
                .bind(micros(now))
                .execute(pool)
                .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }

    /// Gives up on a pending item: it moves to the dead-letter list with
    /// `reason`, where it can be listed and replayed.
    pub async fn outbox_dead_letter(
        &self,
        id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.run("outbox_dead_letter", async {
            with_writer!(self, pool => {
                let done = sqlx::query(
                    "UPDATE outbox SET status = 'dead', dead_reason = $2, updated_at = $3, \
                     locked_by = NULL, locked_until = NULL WHERE id = $1 AND status = 'pending'",
                )
                .bind(id)
                .bind(reason)
                .bind(micros(now))
                .execute(pool)
                .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }

    /// Puts a dead item back to pending, due at once with its attempts
    /// reset. [`StoreError::NotFound`] when there is no such item,
    /// [`StoreError::Conflict`] when it is not dead.
    pub async fn outbox_replay(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<OutboxItem, StoreError> {
        self.run("outbox_replay", async {
            with_writer!(self, pool => {
                let row = sqlx::query(&format!(
                    "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $2, \
                     updated_at = $2, dead_reason = NULL, last_error = NULL, locked_by = NULL, \
                     locked_until = NULL WHERE id = $1 AND status = 'dead' RETURNING {COLUMNS}"
                ))
                .bind(id)
                .bind(micros(now))
                .fetch_optional(pool)
                .await?;
                match row {
                    Some(row) => item_from(&row),
                    None => {
                        let status: Option<String> =
                            sqlx::query_scalar("SELECT status FROM outbox WHERE id = $1")
                                .bind(id)
                                .fetch_optional(pool)
                                .await?;
                        Err(match status {
                            Some(s) => StoreError::Conflict(format!(
                                "outbox item {id} is {s}, only dead items are replayed"
                            )),
                            None => StoreError::NotFound(format!("outbox item {id}")),
                        })
                    }
                }
            })
        })
        .await
    }

    /// One item by id.
    pub async fn outbox_get(&self, id: &str) -> Result<Option<OutboxItem>, StoreError> {
        self.run("outbox_get", async {
            with_reader!(self, pool => {
                let row = sqlx::query(&format!("SELECT {COLUMNS} FROM outbox WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(pool)
                    .await?;
                row.as_ref().map(item_from).transpose()
            })
        })
        .await
    }

    /// Items matching `filter`, newest first, one page.
    pub async fn outbox_list(&self, filter: &OutboxFilter) -> Result<OutboxPage, StoreError> {
        let mut c = Conditions::default();
        if let Some(status) = filter.status {
            let p = c.arg(Arg::Text(status.as_str().into()));
            c.push(format!("status = {p}"));
        }
        if let Some(target) = &filter.target {
            let p = c.arg(Arg::Text(target.clone()));
            c.push(format!("target = {p}"));
        }
        if let Some(cursor) = &filter.cursor {
            let (at, id) = decode_cursor(cursor)?;
            let pa = c.arg(Arg::Int(at));
            let pi = c.arg(Arg::Text(id));
            c.push(format!(
                "(created_at < {pa} OR (created_at = {pa} AND id < {pi}))"
            ));
        }
        let limit = page_limit(filter.limit.unwrap_or(100));
        let pl = c.arg(Arg::Int(limit + 1));
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox{} ORDER BY created_at DESC, id DESC LIMIT {pl}",
            c.sql()
        );
        self.run("outbox_list", async {
            with_reader!(self, pool => {
                let rows = bind_args!(sqlx::query(&sql), &c.args).fetch_all(pool).await?;
                let mut items = rows.iter().map(item_from).collect::<Result<Vec<_>, _>>()?;
                let next_cursor = if items.len() as i64 > limit {
                    items.truncate(limit as usize);
                    items.last().map(|i| encode_cursor(micros(i.created_at), &i.id))
                } else {
                    None
                };
                Ok(OutboxPage { items, next_cursor })
            })
        })
        .await
    }

    /// How many items each target has in each status.
    pub async fn outbox_counts(&self) -> Result<Vec<OutboxCount>, StoreError> {
        self.run("outbox_counts", async {
            with_reader!(self, pool => {
                let rows = sqlx::query(
                    "SELECT target, status, COUNT(*) AS n FROM outbox GROUP BY target, status \
                     ORDER BY target, status",
                )
                .fetch_all(pool)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    let status = row.text("status")?;
                    out.push(OutboxCount {
                        target: row.text("target")?,
                        status: OutboxStatus::parse(&status).ok_or_else(|| {
                            StoreError::Corrupt(format!("unknown outbox status `{status}`"))
                        })?,
                        count: row.int("n")?,
                    });
                }
                Ok(out)
            })
        })
        .await
    }

    /// Switches a target off (its items stay pending) with the reason.
    pub async fn outbox_disable_target(
        &self,
        target: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.set_target(target, true, Some(reason), now).await
    }

    /// Switches a target back on.
    pub async fn outbox_enable_target(
        &self,
        target: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.set_target(target, false, None, now).await
    }

    async fn set_target(
        &self,
        target: &str,
        disabled: bool,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.run("outbox_target", async {
            with_writer!(self, pool => {
                sqlx::query(
                    "INSERT INTO outbox_targets (target, disabled, reason, updated_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (target) DO UPDATE SET \
                     disabled = excluded.disabled, reason = excluded.reason, \
                     updated_at = excluded.updated_at",
                )
                .bind(target)
                .bind(disabled)
                .bind(reason)
                .bind(micros(now))
                .execute(pool)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// The target's state; `None` when it was never switched off or on.
    pub async fn outbox_target(&self, target: &str) -> Result<Option<TargetState>, StoreError> {
        Ok(self
            .outbox_targets()
            .await?
            .into_iter()
            .find(|t| t.target == target))
    }

    /// Every target that was ever switched off (or back on).
    pub async fn outbox_targets(&self) -> Result<Vec<TargetState>, StoreError> {
        self.run("outbox_target", async {
            with_reader!(self, pool => {
                let rows = sqlx::query(
                    "SELECT target, disabled, reason, updated_at FROM outbox_targets ORDER BY target",
                )
                .fetch_all(pool)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    out.push(TargetState {
                        target: row.text("target")?,
                        disabled: row.boolean("disabled")?,
                        reason: row.opt_text("reason")?,
                        updated_at: from_micros(row.int("updated_at")?),
                    });
                }
                Ok(out)
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;
    use std::time::Duration;

    fn item(id: &str, target: &str, at: DateTime<Utc>) -> NewOutboxItem {
        NewOutboxItem {
            id: id.into(),
            target: target.into(),
            payload: serde_json::json!({"type": "riposte.decision", "data": {"id": id}}),
            created_at: at,
        }
    }

    #[tokio::test]
    async fn lifecycle_claim_retry_dead_replay() {
        let (store, _dir) = testing::sqlite().await;
        let t0 = Utc::now();
        assert!(store
            .outbox_enqueue(&item("a", "soar", t0))
            .await
            .expect("enqueue"));
        assert!(
            !store
                .outbox_enqueue(&item("a", "soar", t0))
                .await
                .expect("again"),
            "idempotent"
        );
        store
            .outbox_enqueue(&item("b", "slack", t0))
            .await
            .expect("enqueue");

        let lease = Duration::from_secs(30);
        let claimed = store
            .outbox_claim(Some("soar"), "w1", lease, 10, t0)
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].locked_by.as_deref(), Some("w1"));
        assert!(
            store
                .outbox_claim(Some("soar"), "w2", lease, 10, t0)
                .await
                .expect("claim")
                .is_empty(),
            "leased"
        );
        // The lease lapses: another worker takes it.
        let later = t0 + ChronoDuration::seconds(31);
        let again = store
            .outbox_claim(Some("soar"), "w2", lease, 10, later)
            .await
            .expect("claim");
        assert_eq!(again.len(), 1);

        let next = later + ChronoDuration::seconds(60);
        assert!(store
            .outbox_retry("a", 1, next, "HTTP 503", later)
            .await
            .expect("retry"));
        assert!(
            store
                .outbox_claim(None, "w1", lease, 10, later)
                .await
                .expect("claim")
                .iter()
                .all(|i| i.id != "a"),
            "not due yet"
        );
        let due = store
            .outbox_claim(Some("soar"), "w1", lease, 10, next)
            .await
            .expect("claim");
        assert_eq!(due[0].attempts, 1);
        assert_eq!(due[0].last_error.as_deref(), Some("HTTP 503"));

        assert!(store
            .outbox_dead_letter("a", "too old", next)
            .await
            .expect("dead"));
        let dead = store
            .outbox_list(&OutboxFilter {
                status: Some(OutboxStatus::Dead),
                ..Default::default()
            })
            .await
            .expect("list");
        assert_eq!(dead.items.len(), 1);
        assert_eq!(dead.items[0].dead_reason.as_deref(), Some("too old"));

        let replayed = store.outbox_replay("a", next).await.expect("replay");
        assert_eq!(
            (replayed.status, replayed.attempts),
            (OutboxStatus::Pending, 0)
        );
        assert!(matches!(
            store.outbox_replay("a", next).await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            store.outbox_replay("zz", next).await,
            Err(StoreError::NotFound(_))
        ));

        assert!(store.outbox_delivered("a", next).await.expect("delivered"));
        assert_eq!(
            store
                .outbox_delivered_many(&["a".into(), "b".into()], next)
                .await
                .expect("delivered"),
            1,
            "only b was still pending"
        );
        let counts = store.outbox_counts().await.expect("counts");
        assert!(counts.contains(&OutboxCount {
            target: "soar".into(),
            status: OutboxStatus::Delivered,
            count: 1
        }));
        assert!(counts.contains(&OutboxCount {
            target: "slack".into(),
            status: OutboxStatus::Delivered,
            count: 1
        }));
    }

    #[tokio::test]
    async fn list_pages_and_targets_toggle() {
        let (store, _dir) = testing::sqlite().await;
        let t0 = Utc::now();
        for i in 0..5 {
            store
                .outbox_enqueue(&item(
                    &format!("n{i}"),
                    "soar",
                    t0 + ChronoDuration::seconds(i),
                ))
                .await
                .expect("enqueue");
        }
        let first = store
            .outbox_list(&OutboxFilter {
                limit: Some(3),
                ..Default::default()
            })
            .await
            .expect("list");
        let ids: Vec<&str> = first.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["n4", "n3", "n2"]);
        let second = store
            .outbox_list(&OutboxFilter {
                limit: Some(3),
                cursor: first.next_cursor,
                ..Default::default()
            })
            .await
            .expect("list");
        let ids: Vec<&str> = second.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["n1", "n0"]);
        assert!(second.next_cursor.is_none());

        assert_eq!(store.outbox_target("soar").await.expect("get"), None);
        store
            .outbox_disable_target("soar", "410 Gone", t0)
            .await
            .expect("disable");
        let state = store
            .outbox_target("soar")
            .await
            .expect("get")
            .expect("set");
        assert!(state.disabled);
        assert_eq!(state.reason.as_deref(), Some("410 Gone"));
        store
            .outbox_enable_target("soar", t0)
            .await
            .expect("enable");
        assert!(
            !store
                .outbox_target("soar")
                .await
                .expect("get")
                .expect("set")
                .disabled
        );
    }
}
