//! The router through `tower::ServiceExt::oneshot`: no socket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use base64::Engine as _;
use hmac::Mac;
use prometheus_client::registry::Registry;
use serde_json::Value;
use tower::ServiceExt;

use super::webhooks::{Verify, WebhookConfig, Webhooks};
use super::*;
use crate::act::approvals::Approvals;
use crate::act::dispatch::{ActionDispatcher, DispatchMetrics};
use crate::act::guardrails::Guardrails;
use crate::auth::{hash_token, TokenConfig};
use crate::config::secret::{Secret, SecretSource};
use crate::decide::decision::DecisionLog;
use crate::intake::metrics::IngestMetrics;

struct Harness {
    app: Router,
    state: Arc<AppState>,
    _shards: crate::intake::pipeline::Shards,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let durable = crate::store::Store::open(&Default::default(), dir.path())
        .await
        .unwrap();
    let mut registry = Registry::default();
    let ingest_metrics = IngestMetrics::register(&mut registry);
    let decisions = Arc::new(DecisionLog::default());
    let store: Arc<dyn store::ApiStore> = Arc::new(durable.clone());
    let approvals = Arc::new(Approvals::new(
        store.clone(),
        Secret::new(b"k".to_vec()),
        "http://riposte.test",
    ));
    let dispatcher: Arc<dyn Dispatcher> = Arc::new(
        ActionDispatcher::new(
            decisions.clone(),
            None,
            Arc::new(Guardrails::new(Default::default())),
            DispatchMetrics::register(&mut registry),
        )
        .with_approvals(approvals.clone()),
    );
    let webhooks = Webhooks::load(
        &[WebhookConfig {
            name: "soar".into(),
            verify: Verify::Standard,
            secrets: vec![SecretSource::Value("whsec_c2VjcmV0".into())],
            sha256: vec![],
            tolerance_secs: 300,
        }],
        &mut registry,
    )
    .unwrap();
    let metrics = ApiMetrics::register(&mut registry);
    let (pipeline, shards) = crate::intake::pipeline::Pipeline::new(
        1,
        16,
        ingest_metrics.queued.clone(),
        ingest_metrics.processed.clone(),
    );
    let tokens = [
        ("reader", "r", vec![Scope::Read]),
        ("actor", "a", vec![Scope::Act, Scope::Read]),
        ("admin", "adm", vec![Scope::Admin]),
        (
            "all",
            "all",
            vec![Scope::Read, Scope::Act, Scope::Admin, Scope::Ingest],
        ),
    ];
    let state = Arc::new(AppState {
        tokens: TokenSet::new(
            &tokens
                .iter()
                .map(|(name, tok, scopes)| TokenConfig {
                    name: (*name).into(),
                    sha256: hash_token(tok),
                    scopes: scopes.clone(),
                })
                .collect::<Vec<_>>(),
        ),
        registry: Arc::new(registry),
        readiness: Readiness::default(),
        ingest: Ingest::new(Default::default(), ingest_metrics.source("http")),
        pipeline,
        decisions,
        store: durable,
        notifier: None,
        firewall: None,
        max_body_bytes: 64 * 1024,
        max_json_depth: 16,
        webhooks,
        api_store: store,
        dispatcher,
        playbooks: None,
        kube: None,
        approvals,
        action_wait: Duration::from_millis(200),
        metrics,
    });
    Harness {
        app: router(
            state.clone(),
            &crate::config::HttpConfig {
                request_timeout_secs: 5,
                max_concurrent_requests: 16,
                ..Default::default()
            },
        ),
        state,
        _shards: shards,
        _dir: dir,
    }
}

async fn call(app: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

fn post(path: &str, token: Option<&str>, body: &str) -> Request<Body> {
    let mut b = Request::post(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

fn get(path: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::empty()).unwrap()
}

fn is_problem(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes())
}

const DRY_QUARANTINE: &str = r#"{"intents":[{"action":"quarantine","target":{"kind":"pod","namespace":"shop","name":"checkout-1"},"ttl":"4h","reason":"test"}],"dry_run":true}"#;

#[test]
fn every_served_route_is_documented_and_every_documented_route_is_served() {
    let doc: Value = serde_json::from_str(openapi::DOCUMENT).expect("openapi.json is JSON");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                documented.insert((method.clone(), path.clone()));
            }
        }
    }
    let served: BTreeSet<(String, String)> = routes()
        .served()
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served, not documented: {undocumented:?}"
    );
    assert!(unserved.is_empty(), "documented, not served: {unserved:?}");
}

/// Valid values for a documented parameter: its example, each value of its
/// enum, the bounds of an integer, a time for a date-time, a cursor the
/// store could have given, else a plain word.
fn valid_values(param: &Value) -> Vec<String> {
    let schema = &param["schema"];
    if let Some(example) = param["example"].as_str().or(schema["example"].as_str()) {
        return vec![example.to_owned()];
    }
    if let Some(values) = schema["enum"].as_array() {
        return values
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
    }
    if schema["type"] == "integer" {
        let min = schema["minimum"].as_i64().unwrap_or(1);
        let max = schema["maximum"].as_i64().unwrap_or(min.max(1));
        return vec![min.to_string(), max.to_string()];
    }
    if schema["format"] == "date-time" {
        return vec!["2026-01-01T00:00:00Z".to_owned()];
    }
    match param["name"].as_str() {
        Some("cursor") => vec![crate::store::encode_cursor(1_700_000_000_000_000, "1")],
        Some("expires") => vec!["1700000000".to_owned()],
        _ => vec!["x".to_owned()],
    }
}

/// Query parameters that only mean something together: a signed approval
/// link is its expiry and its token.
const TOGETHER: &[&[&str]] = &[&["expires", "token"]];

/// The document and the handlers' own query types must agree: every
/// documented query parameter of every route, alone and all together, with
/// a valid value, is never answered 400. (`GET /v1/outbox` documented
/// `state` while the handler reads `status`; this is the check that would
/// have caught it. A 401/404/415 for a made-up id or a missing body is
/// fine: the parameters were read.)
#[tokio::test]
async fn every_documented_parameter_is_accepted_with_a_valid_value() {
    let h = harness().await;
    let doc: Value = serde_json::from_str(openapi::DOCUMENT).unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let mut uri = path.clone();
            let mut queries: Vec<Vec<(String, String)>> = Vec::new();
            for p in &params {
                let name = p["name"].as_str().unwrap().to_owned();
                let values = valid_values(p);
                match p["in"].as_str() {
                    Some("path") => uri = uri.replace(&format!("{{{name}}}"), &values[0]),
                    Some("query") => {
                        queries.push(values.into_iter().map(|v| (name.clone(), v)).collect())
                    }
                    _ => {}
                }
            }
            // Each value alone (with the parameters it only goes with),
            // then the first value of every parameter.
            let firsts: Vec<(String, String)> =
                queries.iter().filter_map(|v| v.first().cloned()).collect();
            let partners = |name: &str| -> Vec<(String, String)> {
                TOGETHER
                    .iter()
                    .filter(|group| group.contains(&name))
                    .flat_map(|group| group.iter())
                    .filter(|other| **other != name)
                    .filter_map(|other| firsts.iter().find(|(k, _)| k == other).cloned())
                    .collect()
            };
            let mut cases: Vec<Vec<(String, String)>> = queries
                .iter()
                .flatten()
                .map(|kv| [vec![kv.clone()], partners(&kv.0)].concat())
                .collect();
            cases.push(firsts.clone());
            for case in cases {
                let query = case
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("&");
                let full = format!("{uri}?{query}");
                let req = Request::builder()
                    .method(method.to_uppercase().as_str())
                    .uri(&full)
                    .header(header::AUTHORIZATION, "Bearer all")
                    .body(Body::empty())
                    .unwrap();
                let (status, _, body) = call(&h.app, req).await;
                assert_ne!(status, StatusCode::BAD_REQUEST, "{method} {full}: {body}");
                checked += 1;
            }
        }
    }
    assert!(checked > 40, "only {checked} requests");
}

#[tokio::test]
async fn refusals_are_problem_documents_and_counted() {
    let h = harness().await;
    let (s, hd, b) = call(&h.app, get("/nope", None)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(is_problem(&hd));
    assert_eq!(b["status"], 404);
    let (s, hd, _) = call(
        &h.app,
        Request::delete("/v1/actions").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert!(is_problem(&hd));
    let huge = "x".repeat(65 * 1024);
    let (s, hd, _) = call(&h.app, post("/v1/actions", Some("a"), &huge)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(is_problem(&hd));
    // The unread body stays on the connection: the client must not reuse it.
    assert_eq!(
        hd.get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..])
    );
    let text = crate::intake::metrics::encode(&h.state.registry);
    assert!(text.contains(r#"route="unmatched",status="404""#), "{text}");
    assert!(text.contains(r#"status="413""#), "{text}");
}

#[tokio::test]
async fn scopes_401_then_403() {
    let h = harness().await;
    let (s, hd, _) = call(&h.app, post("/v1/actions", None, DRY_QUARANTINE)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(hd.get(header::WWW_AUTHENTICATE).is_some());
    let (s, _, _) = call(&h.app, post("/v1/actions", Some("wrong"), DRY_QUARANTINE)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, b) = call(&h.app, post("/v1/actions", Some("r"), DRY_QUARANTINE)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(b["detail"].as_str().unwrap().contains("act"));
    let (s, _, _) = call(&h.app, post("/v1/playbooks/reload", Some("a"), "")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = call(&h.app, post("/v1/playbooks/reload", Some("adm"), "")).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn hostile_bodies() {
    let h = harness().await;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (s, _, b) = call(&h.app, post("/v1/actions", Some("a"), &deep)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let req = Request::post("/v1/actions")
        .header(header::AUTHORIZATION, "Bearer a")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(DRY_QUARANTINE))
        .unwrap();
    let (s, _, _) = call(&h.app, req).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (s, _, _) = call(&h.app, post("/v1/actions", Some("a"), "{not json")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let bad_ns = DRY_QUARANTINE.replace("\"shop\"", "\"Shop!\"");
    let (s, _, b) = call(&h.app, post("/v1/actions", Some("a"), &bad_ns)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(b["detail"].as_str().unwrap().contains("namespace"), "{b}");
    let (s, _, _) = call(&h.app, post("/v1/actions", Some("a"), r#"{"intents":[]}"#)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn dry_run_action_answers_200_and_can_be_fetched() {
    let h = harness().await;
    let (s, _, b) = call(&h.app, post("/v1/actions", Some("a"), DRY_QUARANTINE)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "done");
    assert_eq!(b["decision"]["outcome"]["status"], "dry-run");
    assert_eq!(b["decision"]["playbook"], "api:actor");
    let id = b["id"].as_str().unwrap();
    let (s, _, b2) = call(&h.app, get(&format!("/v1/actions/{id}"), Some("r"))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b2["decision"]["event_id"], b["decision"]["event_id"]);
    let (s, _, _) = call(&h.app, get("/v1/actions/nope", Some("r"))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn idempotency_same_other_and_in_flight() {
    let h = harness().await;
    let with_key = |body: &str, key: &str| {
        Request::post("/v1/actions")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, "Bearer a")
            .header("idempotency-key", key)
            .body(Body::from(body.to_owned()))
            .unwrap()
    };
    let (s1, _, b1) = call(&h.app, with_key(DRY_QUARANTINE, "k1")).await;
    assert_eq!(s1, StatusCode::OK);
    // Same body, spaced differently: the first answer.
    let respaced =
        serde_json::to_string_pretty(&serde_json::from_str::<Value>(DRY_QUARANTINE).unwrap())
            .unwrap();
    let (s2, _, b2) = call(&h.app, with_key(&respaced, "k1")).await;
    assert_eq!(s2, StatusCode::OK);
    assert_eq!(b1["id"], b2["id"]);
    let other = DRY_QUARANTINE.replace("4h", "2h");
    let (s3, _, _) = call(&h.app, with_key(&other, "k1")).await;
    assert_eq!(s3, StatusCode::UNPROCESSABLE_ENTITY);
    // A key whose first request is still being served.
    let fp = {
        let v: Value = serde_json::from_str(DRY_QUARANTINE).unwrap();
        crate::act::approvals::hex(&<sha2::Sha256 as sha2::Digest>::digest(v.to_string()))
    };
    h.state
        .api_store
        .idempotency_begin("actor", "k2", &fp, chrono::Utc::now())
        .await
        .unwrap();
    let (s4, _, _) = call(&h.app, with_key(DRY_QUARANTINE, "k2")).await;
    assert_eq!(s4, StatusCode::CONFLICT);
}

fn signed(body: &str, id: &str, ts: i64) -> Request<Body> {
    let mut mac = crate::act::approvals::hmac_sha256(b"secret");
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    Request::post("/v1/webhooks/soar")
        .header(header::CONTENT_TYPE, "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", format!("v1,{sig}"))
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn webhooks_verify_reject_replays_and_stale_calls() {
    let h = harness().await;
    let now = chrono::Utc::now().timestamp();
    let body = r#"{"action":"quarantine"}"#;
    let (s, _, b) = call(&h.app, signed(body, "m1", now)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    let (s, _, _) = call(&h.app, signed(body, "m1", now)).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _, _) = call(&h.app, signed(body, "m2", now - 600)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let mut forged = signed(body, "m3", now);
    *forged.body_mut() = Body::from(r#"{"action":"release"}"#);
    let (s, _, _) = call(&h.app, forged).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Refused from the headers, before the body is read, as a bad proof
    // is: an unknown name cannot be told from a known one.
    let (s, _, _) = call(&h.app, post("/v1/webhooks/other", None, body)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn approvals_approve_once() {
    let h = harness().await;
    let body = r#"{"intents":[{"action":"approve","intent":{"action":"notify","target":"soar","fields":{}},"timeout":"30m","default":"drop"}]}"#;
    let (s, hd, b) = call(&h.app, post("/v1/actions", Some("a"), body)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    assert!(hd.get(header::LOCATION).is_some());
    let (_, _, list) = call(&h.app, get("/v1/approvals", Some("r"))).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0].get("approve_url").is_none());
    let id = list[0]["id"].as_str().unwrap();
    let path = format!("/v1/approvals/{id}/approve");
    let (s, _, _) = call(&h.app, post(&path, Some("r"), "")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, a) = call(&h.app, post(&path, Some("a"), "")).await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert_eq!(a["state"], "approved");
    assert_eq!(a["decided_by"], "actor");
    let (s, _, _) = call(
        &h.app,
        post(&format!("/v1/approvals/{id}/deny"), Some("a"), ""),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
}
