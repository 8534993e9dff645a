//! Admission: what a request must prove, and what it may hold, before its
//! body is read.
//!
//! Every route declares a [`Gate`]. The gate checks the credentials the
//! headers carry before a byte of the body is read, so a stranger's upload
//! is answered 401 (or 403) at once and never buffered. A request that gets
//! through then takes:
//! - a concurrency slot: authenticated requests share
//!   `http.max_concurrent_requests`, across every route; requests whose
//!   sender cannot be known before the body is read (HMAC-signed webhooks)
//!   share the separate `http.max_concurrent_unauthenticated`, so they can
//!   never take the authenticated ones' capacity;
//! - a share of the body budget: every buffered body counts against
//!   `http.body_budget_bytes`, and not-yet-authenticated ones also against
//!   the smaller `http.unauthenticated_body_budget_bytes`. Past a budget the
//!   answer is 503 with Retry-After; nothing is buffered beyond it.
//!
//! The body is then read here, at no less than `http.min_body_bytes_per_sec`
//! once `http.min_body_rate_grace_secs` have passed (408 otherwise), and
//! handed to the handler whole. Every refusal is counted in
//! `riposte_api_refused_total{route, reason}`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{FromRequestParts, MatchedPath, Path, Request};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{ApiError, ApiMetrics, AppState};
use crate::auth::Scope;
use crate::config::HttpConfig;

/// How long an authenticated request waits for a concurrency slot before
/// it is refused: long enough to ride out a burst, short enough that a
/// client learns of an overload at once.
const SLOT_WAIT: Duration = Duration::from_secs(1);

/// What a route requires from the headers before anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// No token, and no body is read: the probes, `/metrics`, the OpenAPI
    /// document, and routes whose handler checks credentials that are in
    /// the headers or the query (an EDL's own credentials, a signed
    /// approval link). These answer from the server's state without waiting
    /// on the client.
    Open,
    /// A bearer token with `scope`; `body` when the handler reads a body.
    Token { scope: Scope, body: bool },
    /// `POST /v1/webhooks/{name}`: what the headers can prove is checked
    /// first (a known webhook; the signature headers present and the
    /// timestamp in its window; the token in `bearer` mode); the body of a
    /// signed webhook is read under the unauthenticated budget and its
    /// signature verified by the handler.
    Webhook,
}

impl Gate {
    /// A token route that reads no body.
    pub const fn token(scope: Scope) -> Gate {
        Gate::Token { scope, body: false }
    }

    /// A token route whose handler reads the body.
    pub const fn token_with_body(scope: Scope) -> Gate {
        Gate::Token { scope, body: true }
    }
}

/// Whether the sender is known when its body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trust {
    Authenticated,
    Unauthenticated,
}

/// Why a request was refused here; the `reason` label of the metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    Unauthenticated,
    Forbidden(Scope),
    /// The body is larger than this request may send (413).
    TooLarge,
    /// Every authenticated slot is busy (503).
    Concurrency,
    /// Every unauthenticated slot is busy (503).
    UnauthenticatedConcurrency,
    /// The body budget is spent (503).
    BodyBudget,
    /// The unauthenticated body budget is spent (503).
    UnauthenticatedBodyBudget,
    /// The body arrived slower than the minimum rate (408).
    SlowBody,
    /// The body ended early or was malformed (400).
    BrokenBody,
}

impl Refused {
    fn reason(self) -> &'static str {
        match self {
            Refused::Unauthenticated => "unauthenticated",
            Refused::Forbidden(_) => "forbidden",
            Refused::TooLarge => "body_too_large",
            Refused::Concurrency => "concurrency",
            Refused::UnauthenticatedConcurrency => "unauthenticated_concurrency",
            Refused::BodyBudget => "body_budget",
            Refused::UnauthenticatedBodyBudget => "unauthenticated_body_budget",
            Refused::SlowBody => "slow_body",
            Refused::BrokenBody => "broken_body",
        }
    }

    fn error(self) -> ApiError {
        let unavailable = |detail: &str| ApiError::Unavailable {
            retry_after_secs: 1,
            detail: detail.into(),
        };
        match self {
            Refused::Unauthenticated => ApiError::Unauthenticated,
            Refused::Forbidden(scope) => ApiError::Forbidden(scope),
            Refused::TooLarge => ApiError::PayloadTooLarge,
            Refused::Concurrency | Refused::UnauthenticatedConcurrency => {
                unavailable("too many requests at once; retry later")
            }
            Refused::BodyBudget | Refused::UnauthenticatedBodyBudget => {
                unavailable("too many request bodies in memory; retry later")
            }
            Refused::SlowBody => ApiError::Timeout,
            Refused::BrokenBody => {
                ApiError::BadRequest("the request body ended early or is malformed".into())
            }
        }
    }
}

/// Bytes held by buffered bodies, bounded by a capacity.
#[derive(Debug)]
pub struct Budget {
    capacity: usize,
    used: AtomicUsize,
    gauge: Gauge,
}

impl Budget {
    fn new(capacity: usize, gauge: Gauge) -> Arc<Budget> {
        Arc::new(Budget {
            capacity,
            used: AtomicUsize::new(0),
            gauge,
        })
    }

    fn take(&self, n: usize) -> bool {
        let taken = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|t| *t <= self.capacity)
            })
            .is_ok();
        if taken {
            self.show();
        }
        taken
    }

    fn give(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
        self.show();
    }

    fn show(&self) {
        self.gauge
            .set(i64::try_from(self.used.load(Ordering::Acquire)).unwrap_or(i64::MAX));
    }
}

/// A body's share of one budget, given back when dropped (after the
/// handler has answered).
#[derive(Debug)]
struct Lease {
    budget: Arc<Budget>,
    held: usize,
}

impl Lease {
    fn grow_to(&mut self, n: usize) -> bool {
        if n <= self.held {
            return true;
        }
        if self.budget.take(n - self.held) {
            self.held = n;
            true
        } else {
            false
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.held > 0 {
            self.budget.give(self.held);
        }
    }
}

/// The budgets a body is read under: the global one, and for an
/// unauthenticated sender the small one too.
#[derive(Debug)]
struct Leases {
    all: Lease,
    unauthenticated: Option<Lease>,
}

impl Leases {
    fn grow_to(&mut self, n: usize) -> Result<(), Refused> {
        let before = self.unauthenticated.as_ref().map(|u| u.held);
        if let Some(u) = &mut self.unauthenticated {
            if !u.grow_to(n) {
                return Err(Refused::UnauthenticatedBodyBudget);
            }
        }
        if !self.all.grow_to(n) {
            // Give back what the small budget just lent.
            if let (Some(u), Some(before)) = (&mut self.unauthenticated, before) {
                u.budget.give(u.held - before);
                u.held = before;
            }
            return Err(Refused::BodyBudget);
        }
        Ok(())
    }
}

/// The shared state of every route's gate: one instance per router, so the
/// slots and budgets bound the whole server, not one route.
#[derive(Debug)]
pub struct Admission {
    state: Arc<AppState>,
    metrics: ApiMetrics,
    max_body: usize,
    all: Arc<Budget>,
    unauthenticated: Arc<Budget>,
    slots: Arc<Semaphore>,
    unauthenticated_slots: Arc<Semaphore>,
    /// Bytes per second; 0 turns the check off.
    min_rate: u64,
    grace: Duration,
}

impl Admission {
    pub fn new(state: Arc<AppState>, http: &HttpConfig) -> Arc<Admission> {
        let metrics = state.metrics.clone();
        let max_body = state.max_body_bytes;
        Arc::new(Admission {
            all: Budget::new(
                http.body_budget_bytes.max(max_body),
                metrics.body_bytes_held("all"),
            ),
            unauthenticated: Budget::new(
                http.unauthenticated_body_budget_bytes,
                metrics.body_bytes_held("unauthenticated"),
            ),
            slots: Arc::new(Semaphore::new(http.max_concurrent_requests.max(1))),
            unauthenticated_slots: Arc::new(Semaphore::new(
                http.max_concurrent_unauthenticated.max(1),
            )),
            min_rate: http.min_body_bytes_per_sec,
            grace: Duration::from_secs(http.min_body_rate_grace_secs),
            max_body,
            metrics,
            state,
        })
    }

    fn refuse(&self, route: &str, why: Refused, body_pending: bool) -> Response {
        self.metrics.refused(route, why.reason());
        let mut response = why.error().into_response();
        if body_pending {
            // The body stays unread on the connection, which the server
            // then drops: the client must not send another request on it.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }

    async fn slot(&self, trust: Trust) -> Result<OwnedSemaphorePermit, Refused> {
        match trust {
            Trust::Authenticated => {
                match tokio::time::timeout(SLOT_WAIT, self.slots.clone().acquire_owned()).await {
                    Ok(Ok(permit)) => Ok(permit),
                    _ => Err(Refused::Concurrency),
                }
            }
            // Strangers never queue: a queue of them would be theirs to fill.
            Trust::Unauthenticated => self
                .unauthenticated_slots
                .clone()
                .try_acquire_owned()
                .map_err(|_| Refused::UnauthenticatedConcurrency),
        }
    }

    /// Largest body this sender may send.
    fn limit(&self, trust: Trust) -> usize {
        match trust {
            Trust::Authenticated => self.max_body,
            Trust::Unauthenticated => self.max_body.min(self.unauthenticated.capacity),
        }
    }

    /// When the body must have delivered `received` bytes by, measured from
    /// `start`.
    fn deadline(
        &self,
        start: tokio::time::Instant,
        received: usize,
    ) -> Option<tokio::time::Instant> {
        if self.min_rate == 0 {
            return None;
        }
        let earned = Duration::from_secs_f64(received as f64 / self.min_rate as f64);
        Some(start + self.grace + earned)
    }

    /// Reads the whole body under the budgets and the minimum rate.
    async fn read(
        &self,
        body: Body,
        declared: Option<u64>,
        trust: Trust,
    ) -> Result<(Bytes, Leases), Refused> {
        let limit = self.limit(trust);
        let mut leases = Leases {
            all: Lease {
                budget: self.all.clone(),
                held: 0,
            },
            unauthenticated: (trust == Trust::Unauthenticated).then(|| Lease {
                budget: self.unauthenticated.clone(),
                held: 0,
            }),
        };
        let mut buf: Vec<u8> = Vec::new();
        if let Some(n) = declared {
            let n = usize::try_from(n).map_err(|_| Refused::TooLarge)?;
            if n > limit {
                return Err(Refused::TooLarge);
            }
            // The whole declared length is reserved before any of it is
            // read: a body that fits is never cut off half-way for want of
            // room.
            leases.grow_to(n)?;
            buf.reserve_exact(n);
        }
        let start = tokio::time::Instant::now();
        let mut stream = body.into_data_stream();
        loop {
            let next = match self.deadline(start, buf.len()) {
                Some(at) => match tokio::time::timeout_at(at, stream.next()).await {
                    Ok(next) => next,
                    Err(_) => return Err(Refused::SlowBody),
                },
                None => stream.next().await,
            };
            let chunk = match next {
                None => break,
                Some(Ok(chunk)) => chunk,
                Some(Err(_)) => return Err(Refused::BrokenBody),
            };
            let needed = buf.len().saturating_add(chunk.len());
            if needed > limit {
                return Err(Refused::TooLarge);
            }
            if needed > buf.capacity() {
                // Grow geometrically, but hold the budget for every byte
                // allocated, not only those received.
                let want = needed.max(buf.capacity().saturating_mul(2)).min(limit);
                let want = if leases.grow_to(want).is_ok() {
                    want
                } else {
                    leases.grow_to(needed)?;
                    needed
                };
                buf.reserve_exact(want - buf.len());
            }
            buf.extend_from_slice(&chunk);
        }
        Ok((Bytes::from(buf), leases))
    }
}

/// Whether the request carries a body that has not been read.
fn body_pending(req: &Request) -> bool {
    !req.body().is_end_stream()
}

/// The route-level layer: `gate` is the route's, the shared state comes
/// from the request's extensions (see [`super::router`]).
pub async fn admit(gate: Gate, req: Request, next: Next) -> Response {
    let Some(admission) = req.extensions().get::<Arc<Admission>>().cloned() else {
        tracing::error!("the admission layer is missing its state");
        return ApiError::Internal.into_response();
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    admission.admit(gate, &route, req, next).await
}

impl Admission {
    async fn admit(&self, gate: Gate, route: &str, req: Request, next: Next) -> Response {
        let pending = body_pending(&req);
        let (trust, reads_body) = match gate {
            Gate::Open => return next.run(req).await,
            Gate::Token { scope, body } => match self.state.authorize(req.headers(), scope) {
                Ok(_) => (Trust::Authenticated, body),
                Err(ApiError::Forbidden(s)) => {
                    return self.refuse(route, Refused::Forbidden(s), pending)
                }
                Err(_) => return self.refuse(route, Refused::Unauthenticated, pending),
            },
            Gate::Webhook => {
                let (mut parts, body) = req.into_parts();
                let name = Path::<String>::from_request_parts(&mut parts, &())
                    .await
                    .map(|Path(n)| n)
                    .unwrap_or_default();
                let pre = self
                    .state
                    .webhooks
                    .precheck(&name, &parts.headers, chrono::Utc::now());
                let req = Request::from_parts(parts, body);
                let trust = match pre {
                    Ok(true) => Trust::Authenticated,
                    Ok(false) => Trust::Unauthenticated,
                    Err(_) => return self.refuse(route, Refused::Unauthenticated, pending),
                };
                return self.read_then_run(trust, route, req, next).await;
            }
        };
        if !reads_body {
            let _slot = match self.slot(trust).await {
                Ok(s) => s,
                Err(why) => return self.refuse(route, why, pending),
            };
            return next.run(req).await;
        }
        self.read_then_run(trust, route, req, next).await
    }

    async fn read_then_run(&self, trust: Trust, route: &str, req: Request, next: Next) -> Response {
        let pending = body_pending(&req);
        let declared = req.body().size_hint().exact();
        if declared.is_some_and(|n| n > self.limit(trust) as u64) {
            return self.refuse(route, Refused::TooLarge, pending);
        }
        let _slot = match self.slot(trust).await {
            Ok(s) => s,
            Err(why) => return self.refuse(route, why, pending),
        };
        let (parts, body) = req.into_parts();
        let (bytes, _leases) = match self.read(body, declared, trust).await {
            Ok(read) => read,
            Err(why) => {
                let cut_off = matches!(why, Refused::SlowBody | Refused::TooLarge);
                return self.refuse(route, why, cut_off || pending);
            }
        };
        // The leases and the slot are held until the handler has answered:
        // the handler holds the body until then.
        next.run(Request::from_parts(parts, Body::from(bytes)))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn refusals_answer_with_their_status() {
        assert_eq!(
            Refused::TooLarge.error().status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            Refused::SlowBody.error().status(),
            StatusCode::REQUEST_TIMEOUT
        );
        assert_eq!(
            Refused::BodyBudget.error().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            Refused::UnauthenticatedConcurrency.error().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn a_budget_lends_no_more_than_its_capacity_and_gets_it_back() {
        let budget = Budget::new(100, Gauge::default());
        let mut a = Lease {
            budget: budget.clone(),
            held: 0,
        };
        assert!(a.grow_to(60));
        let mut b = Lease {
            budget: budget.clone(),
            held: 0,
        };
        assert!(!b.grow_to(50));
        assert!(b.grow_to(40));
        drop(a);
        assert_eq!(budget.used.load(Ordering::Acquire), 40);
        drop(b);
        assert_eq!(budget.used.load(Ordering::Acquire), 0);
    }

    #[test]
    fn a_refused_global_share_gives_back_the_unauthenticated_one() {
        let all = Budget::new(10, Gauge::default());
        let small = Budget::new(100, Gauge::default());
        let mut leases = Leases {
            all: Lease {
                budget: all.clone(),
                held: 0,
            },
            unauthenticated: Some(Lease {
                budget: small.clone(),
                held: 0,
            }),
        };
        assert_eq!(leases.grow_to(50), Err(Refused::BodyBudget));
        assert_eq!(small.used.load(Ordering::Acquire), 0);
        assert_eq!(leases.grow_to(10), Ok(()));
        drop(leases);
        assert_eq!(all.used.load(Ordering::Acquire), 0);
        assert_eq!(small.used.load(Ordering::Acquire), 0);
    }
}
