//! The `kube::Client` Riposte uses: kube's default stack, minus its built-in
//! retries, plus `Retry-After` carried into the error.
//!
//! kube retries 429/503/504 by itself for up to 15 attempts; an action would
//! then hang for minutes inside one call while the dispatcher, which owns
//! retries, backoff and the audit trail, knows nothing. So the built-in
//! retry is off, and the server's `Retry-After` header (which kube drops when
//! it turns a response into an error) is copied into the Status body's
//! `details.retryAfterSeconds`, where [`KubeError`] reads it. A real API
//! server puts it in both places; proxies and load balancers often only in
//! the header.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{header::RETRY_AFTER, Request, Response, StatusCode};
use kube::client::{Body, ClientBuilder, DynBody};
use tower::{BoxError, Layer, Service};

use crate::kubernetes::error::{KubeError, Result};

/// Builds a client from a kube configuration (the tests' stand-in hands
/// one out; production configurations come from
/// [`KubernetesConfig::client`](crate::kubernetes::KubernetesConfig::client)).
pub fn build(mut config: kube::Config, connect_timeout: Duration) -> Result<kube::Client> {
    config.default_retry = false;
    config.connect_timeout = Some(connect_timeout);
    let builder = ClientBuilder::try_from(config).map_err(KubeError::from)?;
    Ok(builder.with_layer(&RetryAfterLayer).build())
}

#[derive(Debug, Clone, Copy)]
struct RetryAfterLayer;

impl<S> Layer<S> for RetryAfterLayer {
    type Service = RetryAfterService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RetryAfterService { inner }
    }
}

#[derive(Debug, Clone)]
struct RetryAfterService<S> {
    inner: S,
}

type BoxResponse = Response<Box<DynBody>>;

impl<S> Service<Request<Body>> for RetryAfterService<S>
where
    S: Service<Request<Body>, Response = BoxResponse, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = BoxResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<BoxResponse, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await?;
            let status = res.status();
            if status != StatusCode::TOO_MANY_REQUESTS && !status.is_server_error() {
                return Ok(res);
            }
            let Some(secs) = res
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u32>().ok())
            else {
                return Ok(res);
            };
            let (parts, body) = res.into_parts();
            let bytes = body.collect().await?.to_bytes();
            let rewritten = with_retry_after(&bytes, status, secs);
            let body: Box<DynBody> =
                Box::new(Full::new(Bytes::from(rewritten)).map_err(|never| match never {}));
            Ok(Response::from_parts(parts, body))
        })
    }
}

/// The error body with `details.retryAfterSeconds` set; a body that is not
/// a Status (a proxy's HTML page) becomes one, keeping its text as message.
fn with_retry_after(body: &[u8], status: StatusCode, secs: u32) -> Vec<u8> {
    let mut value = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(map))
            if map.get("kind").and_then(|k| k.as_str()) == Some("Status") =>
        {
            serde_json::Value::Object(map)
        }
        _ => serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "code": status.as_u16(),
            "reason": status.canonical_reason().unwrap_or("").replace(' ', ""),
            "message": String::from_utf8_lossy(body).trim(),
        }),
    };
    if let Some(map) = value.as_object_mut() {
        let details = map
            .entry("details")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(d) = details.as_object_mut() {
            let present = d
                .get("retryAfterSeconds")
                .and_then(serde_json::Value::as_u64)
                .is_some_and(|s| s > 0);
            if !present {
                d.insert("retryAfterSeconds".into(), secs.into());
            }
        }
    }
    serde_json::to_vec(&value).unwrap_or_else(|_| body.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_value_lands_in_a_status_body() {
        let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","code":429,"reason":"TooManyRequests","message":"slow down"}"#;
        let out = with_retry_after(body, StatusCode::TOO_MANY_REQUESTS, 7);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(v["details"]["retryAfterSeconds"], 7);
        assert_eq!(v["message"], "slow down");
    }

    #[test]
    fn the_bodys_own_value_wins() {
        let body = br#"{"kind":"Status","code":429,"details":{"retryAfterSeconds":2}}"#;
        let out = with_retry_after(body, StatusCode::TOO_MANY_REQUESTS, 9);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(v["details"]["retryAfterSeconds"], 2);
    }

    #[test]
    fn a_proxy_page_becomes_a_status() {
        let out = with_retry_after(b"<html>busy</html>\n", StatusCode::SERVICE_UNAVAILABLE, 5);
        let status: kube::core::Status = serde_json::from_slice(&out).expect("a Status");
        assert_eq!(status.code, 503);
        assert_eq!(status.reason, "ServiceUnavailable");
        assert_eq!(status.message, "<html>busy</html>");
        let e = KubeError::from(kube::Error::Api(status.boxed()));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(5)));
        assert!(e.is_transient());
    }
}
