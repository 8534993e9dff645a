//! The RabbitMQ on loopback, for tests: unique names, cleanup, and closing
//! one test's connections from the broker's side (as a broker restart or an
//! operator would).
//!
//! It talks to the broker with lapin and `rabbitmqctl` only, not through the
//! connectors' `Broker`: the connectors' own tests use it, and a support
//! crate that depended on them would put them in a dependency cycle. The
//! `Broker` handles for tests (`broker`, `settings`) are in `riposte-tests`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lapin::types::{LongString, ShortString};
use lapin::{Connection, ConnectionProperties};

use crate::proxy::TcpProxy;

/// The broker URL: `RIPOSTE_TEST_AMQP_URL`, or guest on 127.0.0.1:5672.
pub fn url() -> String {
    std::env::var("RIPOSTE_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A name no other test (or test run) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{}-{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Deletes queues and exchanges (best effort: a test's leftovers must not
/// fail the next one).
pub async fn cleanup(queues: &[String], exchanges: &[String]) {
    let properties = ConnectionProperties::default()
        .with_connection_name(LongString::from("riposte-test-cleanup".as_bytes().to_vec()));
    let url = url();
    let connect = Connection::connect(&url, properties);
    let Ok(Ok(connection)) = tokio::time::timeout(Duration::from_secs(10), connect).await else {
        return;
    };
    if let Ok(channel) = connection.create_channel().await {
        for q in queues {
            let _ = channel
                .queue_delete(q.as_str().into(), Default::default())
                .await;
        }
        for e in exchanges {
            let _ = channel
                .exchange_delete(e.as_str().into(), Default::default())
                .await;
        }
    }
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        connection.close(200, ShortString::from("cleaned up")),
    )
    .await;
}

async fn rabbitmqctl(args: &[&str]) -> anyhow::Result<String> {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new("rabbitmqctl")
            .args(args)
            .output(),
    )
    .await??;
    if !out.status.success() {
        anyhow::bail!(
            "rabbitmqctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Closes, from the broker, every connection whose client-given name
/// contains `name`; returns how many.
pub async fn close_connections_named(name: &str) -> anyhow::Result<usize> {
    // The table output: the pid column is in the form close_connection
    // takes (the JSON output's is not).
    let text = rabbitmqctl(&["list_connections", "pid", "client_properties", "-q"]).await?;
    let mut closed = 0;
    for line in text.lines() {
        let Some((pid, properties)) = line.split_once('\t') else {
            continue;
        };
        if !pid.starts_with('<') || !properties.contains(name) {
            continue;
        }
        rabbitmqctl(&["close_connection", pid, "closed by a riposte test"]).await?;
        closed += 1;
    }
    Ok(closed)
}

/// Stops and starts the broker application (a broker restart). Always
/// starts it again, even when the wait in between fails.
pub async fn restart_broker(down_for: Duration) -> anyhow::Result<()> {
    rabbitmqctl(&["stop_app"]).await?;
    tokio::time::sleep(down_for).await;
    let started = rabbitmqctl(&["start_app"]).await;
    if started.is_err() {
        // One more try: a broker left stopped would fail every later test.
        tokio::time::sleep(Duration::from_secs(1)).await;
        rabbitmqctl(&["start_app"]).await?;
    }
    rabbitmqctl(&["await_startup"]).await?;
    Ok(())
}

/// A cuttable proxy in front of the broker (restarting the shared broker
/// itself would break every other test running at the time).
pub async fn proxy() -> anyhow::Result<TcpProxy> {
    let u = url();
    let rest = u.split_once("://").map_or(u.as_str(), |(_, r)| r);
    let host = rest.split('/').next().unwrap_or("");
    let target = host.rsplit_once('@').map_or(host, |(_, h)| h);
    TcpProxy::start(target).await
}

/// The broker URL through `proxy`.
pub fn url_through(proxy: &TcpProxy) -> String {
    let u = url();
    let (scheme, rest) = u.split_once("://").unwrap_or(("amqp", u.as_str()));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let user = authority
        .rsplit_once('@')
        .map(|(user, _)| format!("{user}@"));
    format!(
        "{scheme}://{}{}/{path}",
        user.unwrap_or_default(),
        proxy.addr
    )
}
