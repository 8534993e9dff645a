//! The HTTP API.
//!
//! [`router`] builds the whole application apart from any socket, so tests
//! call it with `tower::ServiceExt::oneshot`. Every route but the probes,
//! `/metrics`, `/v1/openapi.json` and the webhooks (which verify their own
//! signatures) requires a bearer token with the route's scope. Every answer
//! is counted by route and status, and every refusal is a problem document
//! (RFC 7807), the layers' own (body limit, timeout, unknown route)
//! included.

mod actions;
mod approvals;
mod audit;
mod decisions;
mod edl;
mod error;
mod health;
mod ingest;
pub mod json;
mod metrics;
mod openapi;
mod outbox;
mod playbooks;
mod quarantines;
pub mod server;
pub mod store;
pub mod webhooks;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::HeaderMap;
use axum::routing::{delete, get, post, MethodRouter};
use axum::Router;
use prometheus_client::registry::Registry;
use tower::limit::ConcurrencyLimitLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub use error::{problem, ApiError, PROBLEM_JSON};
pub use health::Readiness;
pub use metrics::ApiMetrics;

use crate::approvals::Approvals;
use crate::auth::{AuthError, Principal, Scope, TokenSet};
use crate::decision::{DecisionLog, Dispatcher};
use crate::dispatch::KubeBackend;
use crate::pipeline::Pipeline;
use crate::playbook::PlaybookRuntime;
use crate::sources::Ingest;
use crate::store::Store;
use store::ApiStore;
use webhooks::Webhooks;

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
    /// Deepest JSON nesting accepted in request bodies.
    pub max_json_depth: usize,
    pub webhooks: Webhooks,
    /// Seen webhook ids, idempotency keys, approvals.
    pub api_store: Arc<dyn ApiStore>,
    pub dispatcher: Arc<dyn Dispatcher>,
    pub playbooks: Option<Arc<PlaybookRuntime>>,
    pub kube: Option<Arc<KubeBackend>>,
    pub approvals: Arc<Approvals>,
    /// How long `POST /v1/actions` waits for the outcome before answering
    /// 202.
    pub action_wait: Duration,
    pub metrics: ApiMetrics,
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

/// The routes, recorded as they are added so that the OpenAPI test can
/// compare what is served with what is documented.
#[derive(Debug)]
pub struct Routes {
    router: Router<Arc<AppState>>,
    served: Vec<(&'static str, &'static str)>,
}

impl Routes {
    fn new() -> Routes {
        Routes {
            router: Router::new(),
            served: Vec::new(),
        }
    }

    fn add(
        mut self,
        method: &'static str,
        path: &'static str,
        route: MethodRouter<Arc<AppState>>,
    ) -> Routes {
        self.served.push((method, path));
        self.router = self.router.route(path, route);
        self
    }

    pub fn get<H, T>(self, path: &'static str, h: H) -> Routes
    where
        H: Handler<T, Arc<AppState>>,
        T: 'static,
    {
        self.add("get", path, get(h))
    }

    pub fn post<H, T>(self, path: &'static str, h: H) -> Routes
    where
        H: Handler<T, Arc<AppState>>,
        T: 'static,
    {
        self.add("post", path, post(h))
    }

    pub fn delete<H, T>(self, path: &'static str, h: H) -> Routes
    where
        H: Handler<T, Arc<AppState>>,
        T: 'static,
    {
        self.add("delete", path, delete(h))
    }

    /// `(method, path)` of every route, in axum's `{param}` syntax.
    pub fn served(&self) -> &[(&'static str, &'static str)] {
        &self.served
    }
}

/// Every route of the API.
pub fn routes() -> Routes {
    Routes::new()
        .get("/healthz", health::healthz)
        .get("/readyz", health::readyz)
        .get("/metrics", health::metrics)
        .get("/v1/openapi.json", openapi::document)
        .post("/v1/ingest", ingest::ingest)
        .get("/v1/decisions", decisions::list)
        .post("/v1/webhooks/{name}", webhooks::receive)
        .post("/v1/actions", actions::create)
        .get("/v1/actions/{id}", actions::get)
        .get("/v1/quarantines", quarantines::list)
        .delete("/v1/quarantines/{namespace}/{pod}", quarantines::release)
        .get("/v1/audit", audit::query)
        .get("/v1/playbooks", playbooks::list)
        .post("/v1/playbooks/reload", playbooks::reload)
        .post("/v1/playbooks/{name}/dry-run", playbooks::dry_run)
        .get("/v1/approvals", approvals::list)
        .get("/v1/approvals/{id}", approvals::get)
        .post("/v1/approvals/{id}/{verdict}", approvals::decide)
        .get("/v1/outbox", outbox::list)
        .post("/v1/outbox/{id}/replay", outbox::replay)
        .post("/v1/outbox/targets/{name}/enable", outbox::enable_target)
        .get("/v1/edl/{list}", edl::get)
        .post("/v1/edl/{list}", edl::add)
        .delete("/v1/edl/{list}/{value}", edl::remove)
}

/// The application: routes, body limit, concurrency limit, timeout, and
/// around everything the counting and problem-document layer.
pub fn router(state: Arc<AppState>, request_timeout: Duration, max_concurrent: usize) -> Router {
    let limit = state.max_body_bytes;
    let api_metrics = state.metrics.clone();
    routes()
        .router
        .route_layer(axum::middleware::from_fn(metrics::mark_route))
        .fallback(metrics::no_route)
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
        .layer(axum::middleware::from_fn_with_state(
            api_metrics,
            metrics::observe,
        ))
}
