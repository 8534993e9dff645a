//! A PostgreSQL store that cannot be reached when Riposte starts: the
//! service starts anyway, `/readyz` answers 503 with the store check
//! failing (and routes that need the store 503), and it turns ready by
//! itself once PostgreSQL answers. The outage is a closed port in front of
//! the real server (nothing listens on it); PostgreSQL "comes back" when a
//! forwarder to the real server starts listening there. The real server is
//! never stopped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use riposte_engine::auth::{hash_token, Scope, TokenConfig};
use riposte_engine::store::DatabaseUrl;
use riposte_tests::service;
use serde_json::Value;
use sqlx::Connection;
use tokio::net::{TcpListener, TcpStream};

const READ: &str = "outage-read-token";

fn pg_server() -> String {
    std::env::var("RIPOSTE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// `host:port` of a `postgres://user@host:port` URL.
fn authority(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// A loopback port nobody listens on right now.
fn closed_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

/// Forwards every connection accepted on `listener` to `upstream`.
async fn forward(listener: TcpListener, upstream: String) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            return;
        };
        let upstream = upstream.clone();
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

async fn readyz(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let r = client.get(url).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_postgres_at_start_is_waited_for() {
    let server = pg_server();
    let name = format!(
        "riposte_outage_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {server} (start it with .ci/services): {e}"));
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .unwrap();

    let port = closed_port();
    let user = server
        .split_once("://")
        .and_then(|(_, r)| r.split_once('@'))
        .map_or("postgres", |(u, _)| u)
        .to_owned();
    let url = format!("postgres://{user}@127.0.0.1:{port}/{name}");
    let svc = service::start_with(|c, _| {
        c.store.url = Some(DatabaseUrl::new(url));
        c.store.connect_timeout_secs = 1;
        c.api.tokens = vec![TokenConfig {
            name: "reader".into(),
            sha256: hash_token(READ),
            scopes: vec![Scope::Read],
        }];
    })
    .await
    .expect("the service starts without its database");
    let client = reqwest::Client::new();

    let (status, body) = readyz(&client, &svc.http_url("/readyz")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["store"], false, "{body}");
    let health = client.get(svc.http_url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "alive, only not ready");
    let audit = client
        .get(svc.http_url("/v1/audit"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap();
    assert_eq!(audit.status(), 503);
    assert_eq!(audit.headers()["content-type"], "application/problem+json");

    // PostgreSQL comes back on the configured address.
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let forwarder = tokio::spawn(forward(listener, authority(&server)));
    riposte_tests::eventually(Duration::from_secs(30), || {
        svc.running.readiness.is_ready().then_some(())
    })
    .await
    .expect("ready once PostgreSQL answers");
    let (status, body) = readyz(&client, &svc.http_url("/readyz")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["store"], true);
    // Migrated and serving.
    let audit = client
        .get(svc.http_url("/v1/audit"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap();
    assert_eq!(audit.status(), 200);
    svc.running.store.ping().await.expect("the store answers");

    svc.stop().await;
    forwarder.abort();
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await;
    let _ = admin.close().await;
}
