//! The HTTP API.
//!
//! [`router`] builds the whole application apart from any socket, so tests
//! call it with `tower::ServiceExt::oneshot`. Every route but the probes and
//! `/metrics` requires a bearer token with the route's scope.

mod decisions;
mod edl;
mod error;
mod health;
mod ingest;
mod outbox;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use prometheus_client::registry::Registry;
use tower::limit::ConcurrencyLimitLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub use error::ApiError;
pub use health::Readiness;

use crate::auth::{AuthError, Principal, Scope, TokenSet};
use crate::decision::DecisionLog;
use crate::pipeline::Pipeline;
use crate::sources::Ingest;
use crate::store::Store;

/// What the handlers share.
#[derive(Debug)]
pub struct AppState {
    pub tokens: TokenSet,
    pub registry: Arc<Registry>,
    pub readiness: Readiness,
    pub ingest: Arc<Ingest>,
    pub pipeline: Pipeline,
    pub decisions: Arc<DecisionLog>,
    /// The durable store (audit trail, outbox, approvals, ...).
    pub store: Store,
    /// The notification targets, when any is configured.
    pub notifier: Option<Arc<crate::notify::Notifier>>,
    pub max_body_bytes: usize,
    /// Firewalls and EDLs, when `[firewall]` configures any.
    pub firewall: Option<Arc<crate::firewall::Firewalls>>,
}

impl AppState {
    /// Checks the request's bearer token for `scope`.
    pub fn authorize(&self, headers: &HeaderMap, scope: Scope) -> Result<Principal, ApiError> {
        let header = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        self.tokens.authorize(header, scope).map_err(|e| match e {
            AuthError::Unauthenticated => ApiError::Unauthenticated,
            AuthError::Forbidden => ApiError::Forbidden(scope),
        })
    }
}

/// The application: routes, body limit, concurrency limit, timeout.
pub fn router(state: Arc<AppState>, request_timeout: Duration, max_concurrent: usize) -> Router {
    let limit = state.max_body_bytes;
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/v1/ingest", post(ingest::ingest))
        .route("/v1/decisions", get(decisions::list))
        .route("/v1/outbox", get(outbox::list))
        .route("/v1/outbox/{id}/replay", post(outbox::replay))
        .route(
            "/v1/outbox/targets/{name}/enable",
            post(outbox::enable_target),
        )
        .route("/v1/edl/{list}", get(edl::get).post(edl::add))
        .route("/v1/edl/{list}/{value}", axum::routing::delete(edl::remove))
        .with_state(state)
        // Refuses a declared Content-Length over the limit at once (413),
        // before any of the body is read; chunked bodies are cut at the limit.
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(limit))
        // Bounds each request, slow clients trickling a body included: past
        // the deadline the client gets 408 and its slot is freed.
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(ConcurrencyLimitLayer::new(max_concurrent.max(1)))
}
