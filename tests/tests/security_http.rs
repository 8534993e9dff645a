//! Issue 12, items 4, 5 and 12c, against the real service over TCP: a
//! stranger's upload is refused from its headers before its body is read;
//! bodies in memory are bounded by a budget (503 beyond it), and the
//! unauthenticated share of it cannot shut out an authenticated sender;
//! trickling bodies are cut off (408); the concurrency limit holds across
//! routes; and the layers' refusals are counted under their route.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use riposte_engine::api::webhooks::{Verify, WebhookConfig};
use riposte_engine::auth::{hash_token, Scope, TokenConfig};
use riposte_engine::config::secret::SecretSource;
use riposte_engine::config::Config;
use riposte_tests::service::{self, Service};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const READ: &str = "read-token";
const INGEST: &str = "ingest-token";
/// Long enough that no answer in these tests comes from the request
/// timeout: whatever answers, answers for its own reason.
const REQUEST_TIMEOUT_SECS: u64 = 300;
/// Only to keep a broken build from hanging; no assertion is about time.
const PATIENCE: Duration = Duration::from_secs(60);

fn configure(c: &mut Config) {
    c.api.tokens = vec![
        TokenConfig {
            name: "reader".into(),
            sha256: hash_token(READ),
            scopes: vec![Scope::Read],
        },
        TokenConfig {
            name: "firewall".into(),
            sha256: hash_token(INGEST),
            scopes: vec![Scope::Ingest],
        },
    ];
    c.api.webhooks = vec![WebhookConfig {
        name: "soar".into(),
        verify: Verify::Standard,
        secrets: vec![SecretSource::Value(format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(b"soar webhook key")
        ))],
        sha256: vec![],
        tolerance_secs: 300,
    }];
    c.http.request_timeout_secs = REQUEST_TIMEOUT_SECS;
    c.http.max_body_bytes = 10 * 1024 * 1024;
    // Off unless a test is about it: held uploads must stay held.
    c.http.min_body_bytes_per_sec = 0;
}

async fn start(adjust: impl FnOnce(&mut Config)) -> Service {
    service::start_with(|c, _| {
        configure(c);
        adjust(c);
    })
    .await
    .unwrap()
}

/// Sends a request head (and `body`, maybe only part of what the head
/// declares) on a new connection, leaving it open.
async fn send(addr: SocketAddr, head: &str, body: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    s.flush().await.unwrap();
    s
}

fn post_head(path: &str, token: Option<&str>, length: usize, extra: &str) -> String {
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    format!(
        "POST {path} HTTP/1.1\r\nHost: riposte\r\n{auth}{extra}Content-Type: text/plain\r\nContent-Length: {length}\r\n\r\n"
    )
}

/// The answer's status line and headers, read without sending any more of
/// the body.
async fn answer(s: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let read = async {
        let mut chunk = [0u8; 4096];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the server closed the connection without answering");
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .expect("the server answers without waiting for the body");
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    (status, text.to_ascii_lowercase())
}

/// Waits until the metric reaches `want` (the server works on what was sent
/// concurrently with the test).
async fn metric_reaches(svc: &Service, name: &str, labels: &[(&str, &str)], want: f64) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let v = svc.metric(name, labels);
        if v == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}{labels:?} stayed at {v}, expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn webhook_head(length: usize) -> String {
    let now = chrono::Utc::now().timestamp();
    // Well-formed but forged: only the body could tell.
    let extra = format!(
        "webhook-id: msg_{length}_{}\r\nwebhook-timestamp: {now}\r\nwebhook-signature: v1,AAAA\r\n",
        rand::random::<u64>()
    );
    post_head("/v1/webhooks/soar", None, length, &extra)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_without_a_valid_token_are_refused_before_their_body_is_sent() {
    let svc = start(|_| {}).await;
    let addr = svc.running.http.unwrap();
    let ten_mb = 10 * 1024 * 1024;

    // Nothing of the declared 10 MB is ever sent: an answer proves the
    // server did not wait for it.
    let mut s = send(addr, &post_head("/v1/ingest", None, ten_mb, ""), b"").await;
    let (status, head) = answer(&mut s).await;
    assert_eq!(status, 401);
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    assert!(head.contains("connection: close"), "{head}");

    let mut s = send(
        addr,
        &post_head("/v1/ingest", Some("nope"), ten_mb, ""),
        b"",
    )
    .await;
    assert_eq!(answer(&mut s).await.0, 401);

    let mut s = send(addr, &post_head("/v1/ingest", Some(READ), ten_mb, ""), b"").await;
    assert_eq!(answer(&mut s).await.0, 403);

    // A webhook without its signature headers, and an unknown one.
    let mut s = send(addr, &post_head("/v1/webhooks/soar", None, ten_mb, ""), b"").await;
    assert_eq!(answer(&mut s).await.0, 401);
    let mut s = send(addr, &post_head("/v1/webhooks/nope", None, ten_mb, ""), b"").await;
    assert_eq!(answer(&mut s).await.0, 401);

    assert_eq!(
        svc.metric(
            "riposte_api_refused_total",
            &[("route", "/v1/ingest"), ("reason", "unauthenticated")]
        ),
        2.0
    );
    assert_eq!(
        svc.metric(
            "riposte_api_requests_total",
            &[("route", "/v1/ingest"), ("status", "403")]
        ),
        1.0
    );
    assert_eq!(
        svc.metric("riposte_api_body_bytes_held", &[("budget", "all")]),
        0.0
    );
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authenticated_ingest_succeeds_while_unauthenticated_uploads_fill_their_budget() {
    let svc = start(|c| {
        c.http.unauthenticated_body_budget_bytes = 64 * 1024;
        // Few enough that the refused uploads' connections, were they kept,
        // would leave none for the ingest.
        c.http.max_connections = 16;
    })
    .await;
    let addr = svc.running.http.unwrap();
    let declared = 16 * 1024;

    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(send(addr, &webhook_head(declared), b"{\"a\":").await);
    }
    metric_reaches(
        &svc,
        "riposte_api_body_bytes_held",
        &[("budget", "unauthenticated")],
        (4 * declared) as f64,
    )
    .await;
    for _ in 0..12 {
        let mut s = send(addr, &webhook_head(declared), b"{\"a\":").await;
        let (status, head) = answer(&mut s).await;
        assert_eq!(status, 503);
        assert!(head.contains("retry-after:"), "{head}");
    }
    assert_eq!(
        svc.metric(
            "riposte_api_refused_total",
            &[
                ("route", "/v1/webhooks/{name}"),
                ("reason", "unauthenticated_body_budget")
            ]
        ),
        12.0
    );

    let r = reqwest::Client::new()
        .post(svc.http_url("/v1/ingest"))
        .bearer_auth(INGEST)
        .header("content-type", "text/plain")
        .body("\n".repeat(32 * 1024))
        .timeout(PATIENCE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    drop(held);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_oversized_bodies_are_cut_off_and_counted_under_their_route() {
    let svc = start(|c| {
        c.http.min_body_bytes_per_sec = 1000;
        c.http.min_body_rate_grace_secs = 1;
        c.http.max_body_bytes = 64 * 1024;
    })
    .await;
    let addr = svc.running.http.unwrap();

    let mut s = send(
        addr,
        &post_head("/v1/ingest", Some(INGEST), 60_000, ""),
        b"trickle",
    )
    .await;
    let (status, head) = answer(&mut s).await;
    assert_eq!(status, 408);
    assert!(head.contains("connection: close"), "{head}");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, s.read_to_end(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(_))),
        "the connection of a trickling body is closed"
    );

    let mut s = send(
        addr,
        &post_head("/v1/ingest", Some(INGEST), 64 * 1024 + 1, ""),
        b"",
    )
    .await;
    assert_eq!(answer(&mut s).await.0, 413);

    for (status, reason) in [("408", "slow_body"), ("413", "body_too_large")] {
        assert_eq!(
            svc.metric(
                "riposte_api_requests_total",
                &[("route", "/v1/ingest"), ("status", status)]
            ),
            1.0,
            "{status}"
        );
        assert_eq!(
            svc.metric(
                "riposte_api_refused_total",
                &[("route", "/v1/ingest"), ("reason", reason)]
            ),
            1.0,
            "{reason}"
        );
    }
    assert_eq!(
        svc.metric("riposte_api_requests_total", &[("route", "unmatched")]),
        0.0
    );
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_beyond_the_memory_budget_get_503_and_are_counted() {
    let svc = start(|c| {
        c.http.max_body_bytes = 48 * 1024;
        c.http.body_budget_bytes = 64 * 1024;
        c.http.unauthenticated_body_budget_bytes = 16 * 1024;
    })
    .await;
    let addr = svc.running.http.unwrap();
    let held_bytes = 40_000;
    let held = send(
        addr,
        &post_head("/v1/ingest", Some(INGEST), held_bytes, ""),
        b"\n\n",
    )
    .await;
    metric_reaches(
        &svc,
        "riposte_api_body_bytes_held",
        &[("budget", "all")],
        held_bytes as f64,
    )
    .await;

    let client = reqwest::Client::new();
    let ingest = || {
        client
            .post(svc.http_url("/v1/ingest"))
            .bearer_auth(INGEST)
            .header("content-type", "text/plain")
            .body("\n".repeat(30_000))
            .timeout(PATIENCE)
            .send()
    };
    let r = ingest().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(
        svc.metric(
            "riposte_api_refused_total",
            &[("route", "/v1/ingest"), ("reason", "body_budget")]
        ),
        1.0
    );
    assert_eq!(
        svc.metric(
            "riposte_api_requests_total",
            &[("route", "/v1/ingest"), ("status", "503")]
        ),
        1.0
    );

    // The abandoned upload gives its share back.
    drop(held);
    metric_reaches(
        &svc,
        "riposte_api_body_bytes_held",
        &[("budget", "all")],
        0.0,
    )
    .await;
    assert_eq!(ingest().await.unwrap().status(), 202);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrent_requests_holds_across_routes() {
    let svc = start(|c| c.http.max_concurrent_requests = 2).await;
    let addr = svc.running.http.unwrap();
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(
            send(
                addr,
                &post_head("/v1/ingest", Some(INGEST), 1_000, ""),
                b"\n",
            )
            .await,
        );
    }
    metric_reaches(
        &svc,
        "riposte_api_body_bytes_held",
        &[("budget", "all")],
        2_000.0,
    )
    .await;

    let client = reqwest::Client::new();
    let decisions = || {
        client
            .get(svc.http_url("/v1/decisions"))
            .bearer_auth(READ)
            .timeout(PATIENCE)
            .send()
    };
    let r = decisions().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        svc.metric(
            "riposte_api_refused_total",
            &[("route", "/v1/decisions"), ("reason", "concurrency")]
        ),
        1.0
    );

    drop(held);
    metric_reaches(
        &svc,
        "riposte_api_body_bytes_held",
        &[("budget", "all")],
        0.0,
    )
    .await;
    assert_eq!(decisions().await.unwrap().status(), 200);
    svc.stop().await;
}
