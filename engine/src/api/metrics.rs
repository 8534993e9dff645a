//! Counting every answer, and turning the layers' bare refusals into
//! problem documents.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::error::{problem, PROBLEM_JSON};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: u16,
}

/// `riposte_api_requests_total{route, status}`.
#[derive(Debug, Clone, Default)]
pub struct ApiMetrics {
    requests: Family<RequestLabels, Counter>,
}

impl ApiMetrics {
    pub fn register(registry: &mut Registry) -> ApiMetrics {
        let m = ApiMetrics::default();
        registry.register(
            "riposte_api_requests",
            "HTTP API answers by route template and status (refusals included)",
            m.requests.clone(),
        );
        m
    }
}

/// The route template that served a request, passed out to [`observe`].
#[derive(Debug, Clone)]
struct RouteLabel(String);

/// Runs inside the router, where the matched route is known.
pub async fn mark_route(matched: Option<MatchedPath>, req: Request, next: Next) -> Response {
    let route = matched.map(|m| m.as_str().to_owned());
    let mut response = next.run(req).await;
    if let Some(route) = route {
        response.extensions_mut().insert(RouteLabel(route));
    }
    response
}

/// Unknown paths.
pub async fn no_route() -> Response {
    problem(StatusCode::NOT_FOUND, "no such route")
}

/// Runs outside every layer: counts the answer, and replaces a refusal that
/// is not yet a problem document (body limit, timeout, wrong method) with
/// one.
pub async fn observe(State(m): State<ApiMetrics>, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let route = response
        .extensions()
        .get::<RouteLabel>()
        .map_or_else(|| "unmatched".to_owned(), |r| r.0.clone());
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
