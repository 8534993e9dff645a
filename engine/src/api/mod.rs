//! The HTTP API.
//!
//! [`router`] builds the whole application apart from any socket, so tests
//! call it with `tower::ServiceExt::oneshot`. Every route but the probes,
//! `/metrics`, `/v1/openapi.json` and the webhooks (which verify their own
//! signatures) requires a bearer token with the route's scope. Each route
//! declares its [`Gate`], which checks that token from the headers before
//! any of the body is read (see [`admission`]). Every answer is counted by
//! route and status, and every refusal is a problem document (RFC 7807),
//! the layers' own (body limit, timeout, unknown route) included.

mod actions;
pub mod admission;
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
pub mod wire;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::HeaderMap;
use axum::routing::{delete, get, post, MethodRouter};
use axum::{Extension, Router};
use prometheus_client::registry::Registry;
use tower_http::timeout::TimeoutLayer;

pub use admission::{Admission, Gate};
pub use error::{problem, ApiError, PROBLEM_JSON};
pub use health::Readiness;
pub use metrics::ApiMetrics;

use crate::act::approvals::Approvals;
use crate::act::dispatch::KubeBackend;
use crate::auth::{AuthError, Principal, Scope, TokenSet};
use crate::decide::decision::{DecisionLog, Dispatcher};
use crate::decide::playbook::PlaybookRuntime;
use crate::intake::pipeline::Pipeline;
use crate::intake::sources::Ingest;
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
    pub notifier: Option<Arc<crate::act::notifications::Notifier>>,
    pub max_body_bytes: usize,
    /// Firewalls and EDLs, when `[firewall]` configures any.
    pub firewall: Option<Arc<crate::act::firewall_sync::Firewalls>>,
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
        gate: Gate,
        route: MethodRouter<Arc<AppState>>,
    ) -> Routes {
        self.served.push((method, path));
        // The gate runs inside the route, where the route is known, and
        // before the handler's extractors read the body.
        let route = route.route_layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                admission::admit(gate, req, next)
            },
        ));
        self.router = self.router.route(path, route);
        self
    }

    pub fn get<H, T>(self, path: &'static str, gate: Gate, h: H) -> Routes
    where
        H: Handler<T, Arc<AppState>>,
        T: 'static,
    {
        self.add("get", path, gate, get(h))
    }

    pub fn post<H, T>(self, path: &'static str, gate: Gate, h: H) -> Routes
    where
        H: Handler<T, Arc<AppState>>,
        T: 'static,
    {
        self.add("post", path, gate, post(h))
    }

    pub fn delete<H, T>(self, path: &'static str, gate: Gate, h: H) -> Routes
    where
        H: Handler<T, Arc<AppState>>,
        T: 'static,
    {
        self.add("delete", path, gate, delete(h))
    }

    /// `(method, path)` of every route, in axum's `{param}` syntax.
    pub fn served(&self) -> &[(&'static str, &'static str)] {
        &self.served
    }
}

/// Every route of the API, with what it requires before its body is read.
/// Handlers check their scope again: the gate is what keeps a stranger's
/// body out of memory, the handler's check what a reader of the handler
/// sees.
pub fn routes() -> Routes {
    use Gate::Open;
    let read = Gate::token(Scope::Read);
    let act = Gate::token(Scope::Act);
    let admin = Gate::token(Scope::Admin);
    Routes::new()
        .get("/healthz", Open, health::healthz)
        .get("/readyz", Open, health::readyz)
        .get("/metrics", Open, health::metrics)
        .get("/v1/openapi.json", Open, openapi::document)
        .post(
            "/v1/ingest",
            Gate::token_with_body(Scope::Ingest),
            ingest::ingest,
        )
        .get("/v1/decisions", read, decisions::list)
        .post("/v1/webhooks/{name}", Gate::Webhook, webhooks::receive)
        .post(
            "/v1/actions",
            Gate::token_with_body(Scope::Act),
            actions::create,
        )
        .get("/v1/actions/{id}", read, actions::get)
        .get("/v1/quarantines", read, quarantines::list)
        .delete(
            "/v1/quarantines/{namespace}/{pod}",
            act,
            quarantines::release,
        )
        .get("/v1/audit", read, audit::query)
        .get("/v1/playbooks", read, playbooks::list)
        .post("/v1/playbooks/reload", admin, playbooks::reload)
        .post(
            "/v1/playbooks/{name}/dry-run",
            Gate::token_with_body(Scope::Read),
            playbooks::dry_run,
        )
        .get("/v1/approvals", read, approvals::list)
        .get("/v1/approvals/{id}", read, approvals::get)
        // A signed link (in the query) or an `act` token; no body is read.
        .post("/v1/approvals/{id}/{verdict}", Open, approvals::decide)
        .get("/v1/outbox", read, outbox::list)
        .post("/v1/outbox/{id}/replay", admin, outbox::replay)
        .post(
            "/v1/outbox/targets/{name}/enable",
            admin,
            outbox::enable_target,
        )
        // The list's own credentials or a `read` token; no body is read.
        .get("/v1/edl/{list}", Open, edl::get)
        .post(
            "/v1/edl/{list}",
            Gate::token_with_body(Scope::Act),
            edl::add,
        )
        .delete("/v1/edl/{list}/{value}", act, edl::remove)
}

/// The application: routes behind their gates, the request timeout, and
/// around everything the counting and problem-document layer. The gates
/// share one [`Admission`]: the concurrency slots and body budgets bound the
/// whole server, not each route.
pub fn router(state: Arc<AppState>, http: &crate::config::HttpConfig) -> Router {
    let api_metrics = state.metrics.clone();
    let admission = Admission::new(state.clone(), http);
    routes()
        .router
        .fallback(metrics::no_route)
        .with_state(state)
        // Bodies are bounded by the gates, which read them under the
        // budgets; the extractors' own limit would only cut them again.
        .layer(DefaultBodyLimit::disable())
        .layer(Extension(admission))
        // Bounds each request as a whole; slow bodies are cut off sooner by
        // the gates' minimum rate.
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(http.request_timeout_secs.max(1)),
        ))
        .layer(axum::middleware::from_fn_with_state(
            api_metrics,
            metrics::observe,
        ))
}
