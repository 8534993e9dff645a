//! `POST /v1/actions` in dry-run under a fixed open-loop load.
//!
//! Starts the real service (HTTP on loopback, no cluster), then sends
//! requests at a fixed rate whether or not earlier ones have answered, and
//! measures each from the moment it was due (so a stall shows up in the
//! tail instead of slowing the load down). Reports p50, p99, p99.9 and max.
//!
//! `cargo bench -p riposte-tests --bench api`
//! Knobs: `API_BENCH_RATE` (requests/s, default 500), `API_BENCH_SECS`
//! (default 10), `API_BENCH_TARGET_P99_MS` (default 10: exit 1 above it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use riposte_engine::auth::{hash_token, Scope, TokenConfig};
use riposte_tests::service;

const TOKEN: &str = "bench-act-token";
const BODY: &str = r#"{"intents":[{"action":"quarantine","target":{"kind":"pod","namespace":"shop","name":"checkout-7d9f8b6c5-x2lqp"},"ttl":"4h","reason":"bench"},{"action":"tag_ip","ip":"203.0.113.66","tag":"riposte-c2","ttl":"1d"}],"dry_run":true}"#;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rate: u64 = env("API_BENCH_RATE", 500);
    let secs: u64 = env("API_BENCH_SECS", 10);
    let target_ms: f64 = env("API_BENCH_TARGET_P99_MS", 10.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let svc = service::start_with(|c, _| {
            c.api.tokens = vec![TokenConfig {
                name: "bench".into(),
                sha256: hash_token(TOKEN),
                scopes: vec![Scope::Act],
            }];
            c.syslog.udp.listen.clear();
            c.syslog.tcp.listen.clear();
        })
        .await
        .unwrap();
        let url = svc.http_url("/v1/actions");
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .unwrap();
        // Warm up connections and code paths.
        for _ in 0..200 {
            let r = client
                .post(&url)
                .bearer_auth(TOKEN)
                .header("content-type", "application/json")
                .body(BODY)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
        let total = rate * secs;
        let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
        let start = Instant::now();
        let mut tasks = Vec::with_capacity(total as usize);
        for i in 0..total {
            let due = start + interval * i as u32;
            tokio::time::sleep_until(due.into()).await;
            let client = client.clone();
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                let r = client
                    .post(&url)
                    .bearer_auth(TOKEN)
                    .header("content-type", "application/json")
                    .body(BODY)
                    .send()
                    .await;
                let ok = match r {
                    Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                (due.elapsed(), ok)
            }));
        }
        let mut lat = Vec::with_capacity(tasks.len());
        let mut failed = 0;
        for t in tasks {
            let (d, ok) = t.await.unwrap();
            if !ok {
                failed += 1;
            }
            lat.push(d);
        }
        let wall = start.elapsed();
        lat.sort();
        let pct = |p: f64| {
            let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
            lat[i].as_secs_f64() * 1e3
        };
        let p99 = pct(0.99);
        println!(
            "POST /v1/actions dry-run: {total} requests at {rate}/s (offered) over {:.1}s, {failed} failed",
            wall.as_secs_f64()
        );
        println!(
            "latency from due time: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            pct(0.50),
            p99,
            pct(0.999),
            lat.last().map_or(0.0, |d| d.as_secs_f64() * 1e3)
        );
        svc.stop().await;
        if failed > 0 || p99 > target_ms {
            println!("FAIL: target p99 < {target_ms} ms with no failures");
            std::process::exit(1);
        }
    });
}
