//! What the API keeps between requests: seen webhook ids, idempotency keys,
//! approvals.
//!
//! Behind [`ApiStore`] so the durable store (SQLite / PostgreSQL) and the
//! in-memory [`MemoryStore`] (tests, and a service run without a store) are
//! interchangeable.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use futures::future::BoxFuture;

use crate::approvals::{Approval, ApprovalState, Verdict};

/// The store could not answer (disk full, database gone): the API says 503.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUnavailable(pub String);

impl fmt::Display for StoreUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store unavailable: {}", self.0)
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
    Store(StoreUnavailable),
}

type Fut<'a, T> = BoxFuture<'a, Result<T, StoreUnavailable>>;

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

    fn idempotency_begin<'a>(
        &'a self,
        key: &'a str,
        fingerprint: &'a str,
        now: DateTime<Utc>,
    ) -> Fut<'a, IdempotencyBegin>;
    fn idempotency_finish<'a>(&'a self, key: &'a str, status: u16, body: String) -> Fut<'a, ()>;
    /// Drops an unfinished key (the work failed before answering), so a retry
    /// starts over.
    fn idempotency_abandon<'a>(&'a self, key: &'a str) -> Fut<'a, ()>;

    fn approval_create(&self, approval: Approval) -> Fut<'_, ()>;
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
    /// Pending approvals whose deadline has passed.
    fn approvals_due(&self, now: DateTime<Utc>) -> Fut<'_, Vec<Approval>>;
}

/// How long idempotency answers are kept.
const IDEMPOTENCY_TTL_HOURS: i64 = 24;
/// Bounds on the in-memory maps: past these the oldest entries go.
const MAX_SEEN_IDS: usize = 200_000;
const MAX_KEYS: usize = 100_000;
const MAX_APPROVALS: usize = 10_000;

#[derive(Debug, Clone)]
enum KeyState {
    InFlight,
    Done { status: u16, body: String },
}

#[derive(Debug, Default)]
struct Inner {
    seen: HashMap<(String, String), DateTime<Utc>>,
    seen_order: VecDeque<((String, String), DateTime<Utc>)>,
    keys: HashMap<String, (String, KeyState, DateTime<Utc>)>,
    key_order: VecDeque<String>,
    approvals: BTreeMap<String, Approval>,
}

/// Everything in memory: lost on restart, bounded in size.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ApiStore for MemoryStore {
    fn insert_webhook_id<'a>(
        &'a self,
        webhook: &'a str,
        id: &'a str,
        now: DateTime<Utc>,
        keep: Duration,
    ) -> Fut<'a, bool> {
        Box::pin(async move {
            let mut g = self.lock();
            let inner = &mut *g;
            while let Some((key, at)) = inner.seen_order.front() {
                if *at + keep >= now && inner.seen_order.len() < MAX_SEEN_IDS {
                    break;
                }
                if inner.seen.get(key) == Some(at) {
                    inner.seen.remove(key);
                }
                inner.seen_order.pop_front();
            }
            let key = (webhook.to_owned(), id.to_owned());
            if inner.seen.contains_key(&key) {
                return Ok(false);
            }
            inner.seen.insert(key.clone(), now);
            inner.seen_order.push_back((key, now));
            Ok(true)
        })
    }

    fn forget_webhook_id<'a>(&'a self, webhook: &'a str, id: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            self.lock()
                .seen
                .remove(&(webhook.to_owned(), id.to_owned()));
            Ok(())
        })
    }

    fn idempotency_begin<'a>(
        &'a self,
        key: &'a str,
        fingerprint: &'a str,
        now: DateTime<Utc>,
    ) -> Fut<'a, IdempotencyBegin> {
        Box::pin(async move {
            let mut g = self.lock();
            let inner = &mut *g;
            while let Some(old) = inner.key_order.front() {
                let expired = inner
                    .keys
                    .get(old)
                    .is_none_or(|(_, _, at)| *at + Duration::hours(IDEMPOTENCY_TTL_HOURS) < now);
                if !expired && inner.key_order.len() < MAX_KEYS {
                    break;
                }
                if let Some(old) = inner.key_order.pop_front() {
                    inner.keys.remove(&old);
                }
            }
            if let Some((fp, state, _)) = inner.keys.get(key) {
                if fp != fingerprint {
                    return Ok(IdempotencyBegin::Mismatch);
                }
                return Ok(match state {
                    KeyState::InFlight => IdempotencyBegin::InFlight,
                    KeyState::Done { status, body } => IdempotencyBegin::Done {
                        status: *status,
                        body: body.clone(),
                    },
                });
            }
            inner.keys.insert(
                key.to_owned(),
                (fingerprint.to_owned(), KeyState::InFlight, now),
            );
            inner.key_order.push_back(key.to_owned());
            Ok(IdempotencyBegin::Started)
        })
    }

    fn idempotency_finish<'a>(&'a self, key: &'a str, status: u16, body: String) -> Fut<'a, ()> {
        Box::pin(async move {
            if let Some(entry) = self.lock().keys.get_mut(key) {
                entry.1 = KeyState::Done { status, body };
            }
            Ok(())
        })
    }

    fn idempotency_abandon<'a>(&'a self, key: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            self.lock().keys.remove(key);
            Ok(())
        })
    }

    fn approval_create(&self, approval: Approval) -> Fut<'_, ()> {
        Box::pin(async move {
            let mut g = self.lock();
            if g.approvals.len() >= MAX_APPROVALS {
                // Decided ones go first; pending ones are never dropped.
                let decided: Vec<String> = g
                    .approvals
                    .values()
                    .filter(|a| a.state != ApprovalState::Pending)
                    .map(|a| a.id.clone())
                    .take(MAX_APPROVALS / 10 + 1)
                    .collect();
                for id in decided {
                    g.approvals.remove(&id);
                }
            }
            g.approvals.entry(approval.id.clone()).or_insert(approval);
            Ok(())
        })
    }

    fn approval_get<'a>(&'a self, id: &'a str) -> Fut<'a, Option<Approval>> {
        Box::pin(async move { Ok(self.lock().approvals.get(id).cloned()) })
    }

    fn approval_list(&self, pending_only: bool, limit: usize) -> Fut<'_, Vec<Approval>> {
        Box::pin(async move {
            let g = self.lock();
            let mut all: Vec<Approval> = g
                .approvals
                .values()
                .filter(|a| !pending_only || a.state == ApprovalState::Pending)
                .cloned()
                .collect();
            all.sort_by_key(|a| std::cmp::Reverse(a.created_at));
            all.truncate(limit);
            Ok(all)
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
            let mut g = self.lock();
            let a = g.approvals.get_mut(id).ok_or(DecideError::NotFound)?;
            if a.state != ApprovalState::Pending {
                return Err(DecideError::AlreadyDecided(a.state));
            }
            a.decide(verdict, by, now);
            Ok(a.clone())
        })
    }

    fn approvals_due(&self, now: DateTime<Utc>) -> Fut<'_, Vec<Approval>> {
        Box::pin(async move {
            Ok(self
                .lock()
                .approvals
                .values()
                .filter(|a| a.state == ApprovalState::Pending && a.expires_at <= now)
                .cloned()
                .collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn webhook_ids_are_let_in_once() {
        let s = MemoryStore::new();
        let now = Utc::now();
        let keep = Duration::minutes(10);
        assert_eq!(s.insert_webhook_id("a", "1", now, keep).await, Ok(true));
        assert_eq!(s.insert_webhook_id("a", "1", now, keep).await, Ok(false));
        assert_eq!(s.insert_webhook_id("b", "1", now, keep).await, Ok(true));
        s.forget_webhook_id("a", "1").await.expect("forget");
        assert_eq!(s.insert_webhook_id("a", "1", now, keep).await, Ok(true));
        // Past the window the id is forgotten.
        let later = now + Duration::minutes(11);
        assert_eq!(s.insert_webhook_id("b", "2", later, keep).await, Ok(true));
        assert_eq!(s.insert_webhook_id("b", "1", later, keep).await, Ok(true));
    }

    #[tokio::test]
    async fn idempotency_keys() {
        let s = MemoryStore::new();
        let now = Utc::now();
        assert_eq!(
            s.idempotency_begin("k", "f1", now).await,
            Ok(IdempotencyBegin::Started)
        );
        assert_eq!(
            s.idempotency_begin("k", "f1", now).await,
            Ok(IdempotencyBegin::InFlight)
        );
        assert_eq!(
            s.idempotency_begin("k", "f2", now).await,
            Ok(IdempotencyBegin::Mismatch)
        );
        s.idempotency_finish("k", 200, "{}".into())
            .await
            .expect("finish");
        assert_eq!(
            s.idempotency_begin("k", "f1", now).await,
            Ok(IdempotencyBegin::Done {
                status: 200,
                body: "{}".into()
            })
        );
        s.idempotency_abandon("k").await.expect("abandon");
        assert_eq!(
            s.idempotency_begin("k", "f2", now).await,
            Ok(IdempotencyBegin::Started)
        );
    }
}
