//! Counting every answer, and turning the layers' bare refusals into
//! problem documents.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::error::{problem, PROBLEM_JSON};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    route: String,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BudgetLabels {
    budget: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    webhook: String,
    outcome: &'static str,
}

/// `riposte_webhooks{webhook, outcome}`: inbound webhook calls, accepted or
/// why refused. The caller maps names it does not know to one label.
#[derive(Debug, Clone, Default)]
pub struct WebhookMetrics {
    counted: Family<WebhookLabels, Counter>,
}

impl WebhookMetrics {
    pub fn register(registry: &mut Registry) -> WebhookMetrics {
        let m = WebhookMetrics::default();
        registry.register(
            "riposte_webhooks",
            "Inbound webhook calls by webhook and outcome (accepted, or why refused)",
            m.counted.clone(),
        );
        m
    }

    pub fn count(&self, webhook: String, outcome: &'static str) {
        self.counted
            .get_or_create(&WebhookLabels { webhook, outcome })
            .inc();
    }
}

/// `riposte_api_requests_total{route, status}`, and the admission layer's
/// `riposte_api_refused_total{route, reason}` and
/// `riposte_api_body_bytes_held{budget}`.
#[derive(Debug, Clone, Default)]
pub struct ApiMetrics {
    requests: Family<RequestLabels, Counter>,
    refused: Family<RefusedLabels, Counter>,
    held: Family<BudgetLabels, Gauge>,
}

impl ApiMetrics {
    pub fn register(registry: &mut Registry) -> ApiMetrics {
        let m = ApiMetrics::default();
        registry.register(
            "riposte_api_requests",
            "HTTP API answers by route template and status (refusals included)",
            m.requests.clone(),
        );
        registry.register(
            "riposte_api_refused",
            "HTTP requests refused before or while their body was read, by route and reason \
             (unauthenticated, forbidden, body_too_large, concurrency, unauthenticated_concurrency, \
             body_budget, unauthenticated_body_budget, slow_body, broken_body)",
            m.refused.clone(),
        );
        registry.register(
            "riposte_api_body_bytes_held",
            "Bytes of request bodies held in memory, by budget (all, unauthenticated)",
            m.held.clone(),
        );
        m
    }

    /// Counts a refusal of the admission layer.
    pub fn refused(&self, route: &str, reason: &'static str) {
        self.refused
            .get_or_create(&RefusedLabels {
                route: route.to_owned(),
                reason,
            })
            .inc();
    }

    /// The gauge showing what the budget `budget` has lent.
    pub fn body_bytes_held(&self, budget: &'static str) -> Gauge {
        self.held.get_or_create(&BudgetLabels { budget }).clone()
    }
}

/// Unknown paths.
pub async fn no_route() -> Response {
    problem(StatusCode::NOT_FOUND, "no such route")
}

/// Runs outside every other layer, but (as axum applies `Router::layer` to
/// each route) after the route is matched: the layers' own answers (a
/// timeout, a refused body) are counted under their route too. Replaces a
/// refusal that is not yet a problem document (timeout, wrong method) with
/// one.
pub async fn observe(State(m): State<ApiMetrics>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    let status = response.status();
    m.requests
        .get_or_create(&RequestLabels {
            route,
            status: status.as_u16(),
        })
        .inc();
    // A handler's own JSON answer (a problem document, or `/readyz`'s
    // checks with its 503) is what the route documents: only the layers'
    // plain-text refusals are replaced.
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            let v = v.as_bytes();
            v.starts_with(PROBLEM_JSON.as_bytes()) || v.starts_with(b"application/json")
        });
    if status.as_u16() < 400 || is_json {
        return closing(response);
    }
    let detail = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is larger than allowed",
        StatusCode::REQUEST_TIMEOUT => "the request took too long",
        StatusCode::METHOD_NOT_ALLOWED => "the route does not take this method",
        StatusCode::SERVICE_UNAVAILABLE => "the service is overloaded; retry later",
        StatusCode::NOT_FOUND => "no such resource",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported media type",
        StatusCode::UNPROCESSABLE_ENTITY => "the request could not be processed",
        _ => "the request was refused",
    };
    let mut out = problem(status, detail);
    // Keep what tells the client how to go on.
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(v) = response.headers().get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    closing(out.into_response())
}

/// A request refused before its body was read (413) or while it was still
/// arriving (408) leaves the connection holding unread bytes: the server
/// closes it, and says so, so that the client does not send its next
/// request down a connection that is going away.
fn closing(mut response: Response) -> Response {
    if matches!(
        response.status(),
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
    ) {
        response.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    response
}
