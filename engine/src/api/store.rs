//! What the API keeps between requests: seen webhook ids, idempotency keys,
//! approvals.
//!
//! [`ApiStore`] is implemented by the durable [`Store`] (SQLite or
//! PostgreSQL), so all three survive a restart and are shared by every
//! replica on one PostgreSQL: a replayed webhook is refused by whichever
//! replica it reaches, a retried `Idempotency-Key` gets the first answer
//! from any of them, and an approval asked for on one can be decided on
//! another.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::act::approvals::{Approval, ApprovalState, Verdict};
use crate::decide::decision::EventSummary;
use crate::decide::intent::{ApprovalDefault, Intent};
use crate::store::{self, NewApproval, OnTimeout, Store, StoreError};

/// The store could not answer (disk full, database gone): the API says 503.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUnavailable(pub String);

impl fmt::Display for StoreUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store unavailable: {}", self.0)
    }
}

impl From<StoreError> for StoreUnavailable {
    fn from(e: StoreError) -> StoreUnavailable {
        StoreUnavailable(e.to_string())
    }
}

/// What `idempotency_begin` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// First use of the key: the caller does the work and then finishes it.
    Started,
    /// The same key and body are being served right now.
    InFlight,
    /// The same key and body were answered: here is that answer.
    Done { status: u16, body: String },
    /// The key was used with another body.
    Mismatch,
}

/// Why an approval could not be decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecideError {
    NotFound,
    /// Decided already (or timed out): approvals are single-use.
    AlreadyDecided(ApprovalState),
    /// Past its deadline: the timeout takes it (with the playbook's default).
    Expired,
    Store(StoreUnavailable),
}

type Fut<'a, T> = BoxFuture<'a, Result<T, StoreUnavailable>>;

/// How long an answered `Idempotency-Key` is kept.
pub const IDEMPOTENCY_TTL: Duration = Duration::hours(24);
/// How long a key stays claimed by a request in flight. A request that
/// never finishes (the process died under it) frees its key after this, so
/// the client's retry is served instead of refused for the whole TTL.
pub const IDEMPOTENCY_IN_FLIGHT: Duration = Duration::minutes(5);

/// The API's state, wherever it lives.
pub trait ApiStore: Send + Sync + fmt::Debug {
    /// Records a webhook message id; false when it was seen before.
    /// Ids older than `keep` may be forgotten.
    fn insert_webhook_id<'a>(
        &'a self,
        webhook: &'a str,
        id: &'a str,
        now: DateTime<Utc>,
        keep: Duration,
    ) -> Fut<'a, bool>;
    /// Forgets an id whose message could not be accepted after all, so the
    /// sender's retry is let in.
    fn forget_webhook_id<'a>(&'a self, webhook: &'a str, id: &'a str) -> Fut<'a, ()>;

    /// Claims `principal`'s `key` for a request whose body hashes to
    /// `fingerprint`.
    fn idempotency_begin<'a>(
        &'a self,
        principal: &'a str,
        key: &'a str,
        fingerprint: &'a str,
        now: DateTime<Utc>,
    ) -> Fut<'a, IdempotencyBegin>;
    fn idempotency_finish<'a>(
        &'a self,
        principal: &'a str,
        key: &'a str,
        status: u16,
        body: String,
        now: DateTime<Utc>,
    ) -> Fut<'a, ()>;
    /// Drops an unfinished key (the work failed before answering), so a retry
    /// starts over.
    fn idempotency_abandon<'a>(&'a self, principal: &'a str, key: &'a str) -> Fut<'a, ()>;

    /// Stores a pending approval and returns what is stored: the approval
    /// made earlier under the same id when there is one (a redelivered event
    /// asks again), so its deadline stands.
    fn approval_create(&self, approval: Approval) -> Fut<'_, Approval>;
    fn approval_get<'a>(&'a self, id: &'a str) -> Fut<'a, Option<Approval>>;
    /// Every approval, newest first, at most `limit`.
    fn approval_list(&self, pending_only: bool, limit: usize) -> Fut<'_, Vec<Approval>>;
    /// Decides a pending approval once; a second decision is refused.
    fn approval_decide<'a>(
        &'a self,
        id: &'a str,
        verdict: Verdict,
        by: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Approval, DecideError>>;
    /// Takes up to `limit` pending approvals past their deadline, marking
    /// them timed out: each is handed to one caller only, whichever replica
    /// asks.
    fn approvals_take_expired(&self, now: DateTime<Utc>, limit: usize) -> Fut<'_, Vec<Approval>>;
}

/// What an approval row keeps besides the intent, in its `context` column.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Context {
    event: EventSummary,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    approvers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

fn to_row(a: &Approval) -> Result<NewApproval, StoreUnavailable> {
    let bad = |e: serde_json::Error| StoreUnavailable(format!("approval {}: {e}", a.id));
    Ok(NewApproval {
        id: a.id.clone(),
        intent: serde_json::to_value(&a.intent).map_err(bad)?,
        event_id: a.event_id.clone(),
        playbook: a.playbook.clone(),
        created_at: a.created_at,
        expires_at: a.expires_at,
        on_timeout: match a.default {
            ApprovalDefault::Apply => OnTimeout::Apply,
            ApprovalDefault::Drop => OnTimeout::Drop,
        },
        context: Some(
            serde_json::to_value(Context {
                event: a.event.clone(),
                approvers: a.approvers.clone(),
                reason: a.reason.clone(),
            })
            .map_err(bad)?,
        ),
    })
}

/// A stored row as the engine's approval. Links are not stored (they are
/// signed when the request is made); the row's intent must be one the
/// engine can carry out.
fn from_row(row: store::Approval) -> Result<Approval, StoreUnavailable> {
    let intent: Intent = serde_json::from_value(row.intent).map_err(|e| {
        StoreUnavailable(format!(
            "approval {}: stored intent unreadable: {e}",
            row.id
        ))
    })?;
    let context = row
        .context
        .and_then(|c| serde_json::from_value::<Context>(c).ok());
    let (event, approvers, reason) = match context {
        Some(c) => (c.event, c.approvers, c.reason),
        None => (
            EventSummary {
                kind: "unknown".into(),
                dataset: "unknown".into(),
                ..EventSummary::default()
            },
            Vec::new(),
            None,
        ),
    };
    Ok(Approval {
        id: row.id,
        event_id: row.event_id,
        event,
        playbook: row.playbook,
        intent,
        default: match row.on_timeout {
            OnTimeout::Apply => ApprovalDefault::Apply,
            OnTimeout::Drop => ApprovalDefault::Drop,
        },
        approvers,
        reason,
        created_at: row.created_at,
        expires_at: row.expires_at,
        state: row.state,
        decided_by: row.decided_by,
        decided_at: row.decided_at,
        approve_url: None,
        deny_url: None,
    })
}

impl ApiStore for Store {
    fn insert_webhook_id<'a>(
        &'a self,
        webhook: &'a str,
        id: &'a str,
        now: DateTime<Utc>,
        keep: Duration,
    ) -> Fut<'a, bool> {
        Box::pin(async move { Ok(self.seen_insert(webhook, id, now + keep, now).await?) })
    }

    fn forget_webhook_id<'a>(&'a self, webhook: &'a str, id: &'a str) -> Fut<'a, ()> {
        Box::pin(async move { Ok(self.seen_forget(webhook, id).await?) })
    }

    fn idempotency_begin<'a>(
        &'a self,
        principal: &'a str,
        key: &'a str,
        fingerprint: &'a str,
        now: DateTime<Utc>,
    ) -> Fut<'a, IdempotencyBegin> {
        Box::pin(async move {
            let lease = IDEMPOTENCY_IN_FLIGHT.to_std().unwrap_or_default();
            Ok(
                match Store::idempotency_begin(self, principal, key, fingerprint, lease, now)
                    .await?
                {
                    store::IdempotencyBegin::New => IdempotencyBegin::Started,
                    store::IdempotencyBegin::InFlight => IdempotencyBegin::InFlight,
                    store::IdempotencyBegin::Mismatch => IdempotencyBegin::Mismatch,
                    store::IdempotencyBegin::Done { status, body } => {
                        IdempotencyBegin::Done { status, body }
                    }
                },
            )
        })
    }

    fn idempotency_finish<'a>(
        &'a self,
        principal: &'a str,
        key: &'a str,
        status: u16,
        body: String,
        now: DateTime<Utc>,
    ) -> Fut<'a, ()> {
        Box::pin(async move {
            Store::idempotency_finish(self, principal, key, status, &body, now + IDEMPOTENCY_TTL)
                .await?;
            Ok(())
        })
    }

    fn idempotency_abandon<'a>(&'a self, principal: &'a str, key: &'a str) -> Fut<'a, ()> {
        Box::pin(async move { Ok(Store::idempotency_abandon(self, principal, key).await?) })
    }

    fn approval_create(&self, approval: Approval) -> Fut<'_, Approval> {
        Box::pin(async move {
            let row = to_row(&approval)?;
            match Store::approval_create(self, &row).await {
                Ok(_) => Ok(approval),
                Err(StoreError::Conflict(_)) => match Store::approval_get(self, &row.id).await? {
                    Some(existing) => from_row(existing),
                    // Purged between the two statements: nothing to keep.
                    None => Ok(approval),
                },
                Err(e) => Err(e.into()),
            }
        })
    }

    fn approval_get<'a>(&'a self, id: &'a str) -> Fut<'a, Option<Approval>> {
        Box::pin(async move {
            Store::approval_get(self, id)
                .await?
                .map(from_row)
                .transpose()
        })
    }

    fn approval_list(&self, pending_only: bool, limit: usize) -> Fut<'_, Vec<Approval>> {
        Box::pin(async move {
            let state = pending_only.then_some(ApprovalState::Pending);
            let rows = Store::approvals_list(self, state, limit).await?;
            // One unreadable row must not hide every other approval.
            Ok(rows
                .into_iter()
                .filter_map(|r| {
                    from_row(r)
                        .map_err(|e| tracing::warn!(error = %e, "approval skipped in listing"))
                        .ok()
                })
                .collect())
        })
    }

    fn approval_decide<'a>(
        &'a self,
        id: &'a str,
        verdict: Verdict,
        by: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Approval, DecideError>> {
        Box::pin(async move {
            match Store::approval_decide(self, id, verdict, by, now).await {
                Ok(row) => from_row(row).map_err(DecideError::Store),
                Err(store::DecideError::NotFound(_)) => Err(DecideError::NotFound),
                Err(store::DecideError::AlreadyDecided(s)) => Err(DecideError::AlreadyDecided(s)),
                Err(store::DecideError::Expired) => Err(DecideError::Expired),
                Err(store::DecideError::Store(e)) => Err(DecideError::Store(e.into())),
            }
        })
    }

    fn approvals_take_expired(&self, now: DateTime<Utc>, limit: usize) -> Fut<'_, Vec<Approval>> {
        Box::pin(async move {
            let rows = Store::approvals_take_expired(self, now, limit).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                match from_row(row) {
                    Ok(a) => out.push(a),
                    // Already marked timed out: nothing can be carried out.
                    Err(e) => tracing::warn!(error = %e, "timed-out approval unreadable"),
                }
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::decision::EventSummary;
    use crate::decide::intent::{Action, Target, Ttl};

    fn approval(id: &str, now: DateTime<Utc>, secs: i64) -> Approval {
        Approval {
            id: id.into(),
            event_id: "ev1".into(),
            event: EventSummary {
                kind: "alert".into(),
                dataset: "panos.threat".into(),
                threat_name: Some("Beacon".into()),
                severity: Some("high".into()),
                ..EventSummary::default()
            },
            playbook: "c2".into(),
            intent: Intent::new(
                "ev1",
                "c2",
                Action::Quarantine {
                    target: Target::pod("shop", "web-1").expect("valid"),
                    ttl: Ttl::parse("1h").expect("valid"),
                    reason: None,
                },
            ),
            default: ApprovalDefault::Apply,
            approvers: vec!["soc".into()],
            reason: Some("beacon".into()),
            created_at: now,
            expires_at: now + Duration::seconds(secs),
            state: ApprovalState::Pending,
            decided_by: None,
            decided_at: None,
            approve_url: Some("https://x/approve".into()),
            deny_url: Some("https://x/deny".into()),
        }
    }

    #[tokio::test]
    async fn approvals_round_trip_through_the_store() {
        let (store, _dir) = crate::store::testing::sqlite().await;
        // Through the trait, as the API sees it (the inherent methods of
        // the same names take the store's own rows).
        let s: &dyn ApiStore = &store;
        let now = Utc::now();
        let a = approval("a1", now, 60);
        let stored = s.approval_create(a.clone()).await.expect("create");
        assert_eq!(stored, a);
        // Asked again (a redelivered event): the first request stands.
        let again = approval("a1", now + Duration::seconds(5), 60);
        let kept = s.approval_create(again).await.expect("create again");
        assert_eq!(kept.expires_at.timestamp(), a.expires_at.timestamp());
        let read = s.approval_get("a1").await.expect("get").expect("found");
        assert_eq!(read.event, a.event);
        assert_eq!(read.intent, a.intent);
        assert_eq!((read.approve_url, read.deny_url), (None, None));
        assert_eq!(s.approval_list(true, 10).await.expect("list").len(), 1);
        let decided = s
            .approval_decide("a1", Verdict::Deny, "alice", now)
            .await
            .expect("decide");
        assert_eq!(decided.state, ApprovalState::Denied);
        assert_eq!(
            s.approval_decide("a1", Verdict::Approve, "bob", now).await,
            Err(DecideError::AlreadyDecided(ApprovalState::Denied))
        );
        assert!(s.approval_list(true, 10).await.expect("list").is_empty());
        s.approval_create(approval("a2", now, 1))
            .await
            .expect("create");
        let later = now + Duration::seconds(2);
        assert_eq!(
            s.approval_decide("a2", Verdict::Approve, "bob", later)
                .await,
            Err(DecideError::Expired)
        );
        let taken = s.approvals_take_expired(later, 10).await.expect("take");
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].state, ApprovalState::TimedOut);
        assert!(s
            .approvals_take_expired(later, 10)
            .await
            .expect("take")
            .is_empty());
    }

    #[tokio::test]
    async fn webhook_ids_and_idempotency_keys() {
        let (store, _dir) = crate::store::testing::sqlite().await;
        let s: &dyn ApiStore = &store;
        let now = Utc::now();
        let keep = Duration::minutes(10);
        assert_eq!(s.insert_webhook_id("a", "1", now, keep).await, Ok(true));
        assert_eq!(s.insert_webhook_id("a", "1", now, keep).await, Ok(false));
        assert_eq!(s.insert_webhook_id("b", "1", now, keep).await, Ok(true));
        s.forget_webhook_id("a", "1").await.expect("forget");
        assert_eq!(s.insert_webhook_id("a", "1", now, keep).await, Ok(true));
        let later = now + Duration::minutes(11);
        assert_eq!(s.insert_webhook_id("b", "1", later, keep).await, Ok(true));

        let begin = |fp: &'static str, at| s.idempotency_begin("soar", "k", fp, at);
        assert_eq!(begin("f1", now).await, Ok(IdempotencyBegin::Started));
        assert_eq!(begin("f1", now).await, Ok(IdempotencyBegin::InFlight));
        assert_eq!(begin("f2", now).await, Ok(IdempotencyBegin::Mismatch));
        // A claim whose request never finished lapses after the lease.
        let lapsed = now + IDEMPOTENCY_IN_FLIGHT + Duration::seconds(1);
        assert_eq!(begin("f2", lapsed).await, Ok(IdempotencyBegin::Started));
        s.idempotency_finish("soar", "k", 200, "{}".into(), lapsed)
            .await
            .expect("finish");
        // The answer is kept for the TTL, well past the in-flight lease.
        let next_day = lapsed + IDEMPOTENCY_TTL - Duration::seconds(1);
        assert_eq!(
            begin("f2", next_day).await,
            Ok(IdempotencyBegin::Done {
                status: 200,
                body: "{}".into()
            })
        );
        s.idempotency_abandon("soar", "k")
            .await
            .expect("abandon keeps answers");
        assert_eq!(begin("f1", next_day).await, Ok(IdempotencyBegin::Mismatch));
    }
}
