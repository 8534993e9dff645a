//! `Idempotency-Key`s of `POST /v1/actions`: the same key and body get the
//! first answer, another body under the same key is refused, and a request
//! still running is reported as such.
//!
//! Keys are scoped by principal (the API token's name), so two clients can
//! never read each other's answers, and expire after a TTL.

use chrono::{DateTime, Utc};

use super::{micros, with_writer, RowExt, Store, StoreError};

/// What [`Store::idempotency_begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// First use of the key: go ahead, then call
    /// [`Store::idempotency_finish`] (or [`Store::idempotency_abandon`]).
    New,
    /// The same request is still being handled (answer 409).
    InFlight,
    /// Answered before: send this again.
    Done { status: u16, body: String },
    /// The key was used with another request body (answer 422).
    Mismatch,
}

impl Store {
    /// Claims `key` for `principal`'s request (identified by
    /// `request_hash`, e.g. SHA-256 of method, path and body) for `ttl`. An
    /// expired key counts as unused.
    pub async fn idempotency_begin(
        &self,
        principal: &str,
        key: &str,
        request_hash: &str,
        ttl: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Result<IdempotencyBegin, StoreError> {
        let now_us = micros(now);
        let expires = now_us.saturating_add(ttl.as_micros().min(i64::MAX as u128) as i64);
        self.run("idempotency_begin", async {
            with_writer!(self, pool => {
                // Insert, or take over an expired key; RETURNING yields a row
                // only when this call now owns the key.
                let claimed = sqlx::query(
                    "INSERT INTO idempotency_keys (principal, key, request_hash, status, body, \
                     created_at, expires_at) VALUES ($1, $2, $3, NULL, NULL, $4, $5) \
                     ON CONFLICT (principal, key) DO UPDATE SET request_hash = excluded.request_hash, \
                     status = NULL, body = NULL, created_at = excluded.created_at, \
                     expires_at = excluded.expires_at WHERE idempotency_keys.expires_at <= $4 \
                     RETURNING principal",
                )
                .bind(principal)
                .bind(key)
                .bind(request_hash)
                .bind(now_us)
                .bind(expires)
                .fetch_optional(pool)
                .await?;
                if claimed.is_some() {
                    return Ok(IdempotencyBegin::New);
                }
                let row = sqlx::query(
                    "SELECT request_hash, status, body FROM idempotency_keys \
                     WHERE principal = $1 AND key = $2",
                )
                .bind(principal)
                .bind(key)
                .fetch_optional(pool)
                .await?;
                let Some(row) = row else {
                    // Abandoned between the two statements: still someone's.
                    return Ok(IdempotencyBegin::InFlight);
                };
                if row.text("request_hash")? != request_hash {
                    return Ok(IdempotencyBegin::Mismatch);
                }
                Ok(match row.opt_int("status")? {
                    None => IdempotencyBegin::InFlight,
                    Some(status) => IdempotencyBegin::Done {
                        status: u16::try_from(status).map_err(|_| {
                            StoreError::Corrupt(format!("stored HTTP status {status}"))
                        })?,
                        body: row.opt_text("body")?.unwrap_or_default(),
                    },
                })
            })
        })
        .await
    }

    /// Stores the answer to a request begun with
    /// [`Store::idempotency_begin`], kept until `expires_at` (the claim's
    /// own expiry is only a lease on the work in flight, so a request lost
    /// in a crash does not hold its key for the whole answer TTL). False
    /// when the key is unknown.
    pub async fn idempotency_finish(
        &self,
        principal: &str,
        key: &str,
        status: u16,
        body: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.run("idempotency_finish", async {
            with_writer!(self, pool => {
                let done = sqlx::query(
                    "UPDATE idempotency_keys SET status = $3, body = $4, expires_at = $5 \
                     WHERE principal = $1 AND key = $2",
                )
                .bind(principal)
                .bind(key)
                .bind(i64::from(status))
                .bind(body)
                .bind(micros(expires_at))
                .execute(pool)
                .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }

    /// Forgets an unanswered key (the request failed before acting), so a
    /// retry with it starts afresh. An answered key is kept.
    pub async fn idempotency_abandon(&self, principal: &str, key: &str) -> Result<(), StoreError> {
        self.execute_pair(
            "idempotency_abandon",
            "DELETE FROM idempotency_keys WHERE principal = $1 AND key = $2 AND status IS NULL",
            principal,
            key,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;
    use std::time::Duration;

    #[tokio::test]
    async fn new_inflight_done_mismatch_and_expiry() {
        let (store, _dir) = testing::sqlite().await;
        let now = Utc::now();
        let ttl = Duration::from_secs(60);
        let begin = |hash: &'static str, at: DateTime<Utc>| {
            let store = store.clone();
            async move {
                store
                    .idempotency_begin("soar", "k1", hash, ttl, at)
                    .await
                    .expect("begin")
            }
        };
        assert_eq!(begin("h1", now).await, IdempotencyBegin::New);
        assert_eq!(begin("h1", now).await, IdempotencyBegin::InFlight);
        assert_eq!(begin("h2", now).await, IdempotencyBegin::Mismatch);
        assert!(store
            .idempotency_finish(
                "soar",
                "k1",
                200,
                "{\"ok\":true}",
                now + chrono::Duration::seconds(60)
            )
            .await
            .expect("finish"));
        assert_eq!(
            begin("h1", now).await,
            IdempotencyBegin::Done {
                status: 200,
                body: "{\"ok\":true}".into()
            }
        );
        // Another principal's key of the same name is its own.
        assert_eq!(
            store
                .idempotency_begin("other", "k1", "h9", ttl, now)
                .await
                .expect("begin"),
            IdempotencyBegin::New
        );
        // Once expired, the key is new again.
        let later = now + chrono::Duration::seconds(61);
        assert_eq!(begin("h2", later).await, IdempotencyBegin::New);
        // Abandoned keys start afresh; answered ones stay.
        store
            .idempotency_abandon("soar", "k1")
            .await
            .expect("abandon");
        assert_eq!(begin("h3", later).await, IdempotencyBegin::New);
    }
}
