//! Store throughput, SQLite and PostgreSQL:
//! - audit: decisions per second from the decision log through the batched
//!   writer until committed (`flush`);
//! - outbox: notifications per second through enqueue, claim (batches of
//!   50) and mark-delivered, one enqueue and one delivered call each, as the
//!   notifier does.
//!
//! `cargo bench -p riposte-engine --bench store`. PostgreSQL at
//! 127.0.0.1:5432 (or `RIPOSTE_TEST_POSTGRES`) gets a scratch database,
//! dropped afterwards; it is skipped with a note when unreachable.
//! `STORE_BENCH_DECISIONS` and `STORE_BENCH_OUTBOX` set the counts.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use riposte_engine::decide::decision::{
    Decision, DecisionLog, EventSummary, Mode, Outcome, Timings,
};
use riposte_engine::decide::intent::{Action, Intent, Target, Ttl};
use riposte_engine::store::{AuditWriter, DatabaseUrl, NewOutboxItem, Store, StoreConfig};
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn decision(i: usize) -> Decision {
    let event = format!("ev{i}");
    let action = Action::Quarantine {
        target: Target::pod("shop", &format!("checkout-{i}")).unwrap(),
        ttl: Ttl::parse("4h").unwrap(),
        reason: Some("C2 traffic to 203.0.113.66".into()),
    };
    Decision {
        event_id: event.clone(),
        event: EventSummary {
            kind: "alert".into(),
            dataset: "panos.threat".into(),
            threat_name: Some("Cobalt Strike beacon".into()),
            threat_type: Some("spyware".into()),
            severity: Some("critical".into()),
            source_ip: Some("10.244.1.17".parse().unwrap()),
            destination_ip: Some("203.0.113.66".parse().unwrap()),
            ..EventSummary::default()
        },
        playbook: "c2-quarantine".into(),
        mode: Mode::Enforce,
        intents: vec![Intent::new(&event, "c2-quarantine", action)],
        outcome: Outcome::Applied,
        timings: Timings {
            eval_us: 35,
            dispatch_us: 4,
        },
        at: Utc::now(),
        actions: Vec::new(),
    }
}

async fn audit(store: &Store, n: usize) -> f64 {
    let writer = AuditWriter::new(store.clone());
    let stop = CancellationToken::new();
    let task = writer.spawn(stop.clone());
    let log = DecisionLog::new(10_000);
    log.set_sink(Arc::new(writer.clone()));
    let decisions: Vec<Decision> = (0..n).map(decision).collect();
    let started = Instant::now();
    for d in decisions {
        writer.wait_for_room().await;
        log.record(d);
    }
    writer.flush().await.unwrap();
    let rate = n as f64 / started.elapsed().as_secs_f64();
    stop.cancel();
    task.await.unwrap();
    rate
}

async fn outbox(store: &Store, n: usize) -> f64 {
    let payload = serde_json::json!({
        "type": "riposte.action.applied",
        "timestamp": "2026-11-27T06:00:00Z",
        "data": {"playbook": "c2-quarantine", "target": "shop/checkout-7d9f", "reason": "C2 traffic"}
    });
    let started = Instant::now();
    let now = Utc::now();
    for i in 0..n {
        store
            .outbox_enqueue(&NewOutboxItem {
                id: format!("msg_{i}"),
                target: "soar".into(),
                payload: payload.clone(),
                created_at: now,
            })
            .await
            .unwrap();
    }
    let mut delivered = 0;
    while delivered < n {
        let claimed = store
            .outbox_claim(
                Some("soar"),
                "bench",
                Duration::from_secs(60),
                50,
                Utc::now(),
            )
            .await
            .unwrap();
        assert!(!claimed.is_empty(), "items left unclaimed");
        for item in claimed {
            store.outbox_delivered(&item.id, Utc::now()).await.unwrap();
            delivered += 1;
        }
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// The same through the batch calls: enqueue 50 per transaction, mark a
/// claimed batch delivered in one.
async fn outbox_batched(store: &Store, n: usize) -> f64 {
    let payload = serde_json::json!({"type": "riposte.action.applied", "data": {"n": 1}});
    let started = Instant::now();
    let now = Utc::now();
    let items: Vec<NewOutboxItem> = (0..n)
        .map(|i| NewOutboxItem {
            id: format!("batch_{i}"),
            target: "xsoar".into(),
            payload: payload.clone(),
            created_at: now,
        })
        .collect();
    for chunk in items.chunks(50) {
        store.outbox_enqueue_many(chunk).await.unwrap();
    }
    let mut delivered = 0;
    while delivered < n {
        let claimed = store
            .outbox_claim(
                Some("xsoar"),
                "bench",
                Duration::from_secs(60),
                50,
                Utc::now(),
            )
            .await
            .unwrap();
        assert!(!claimed.is_empty(), "items left unclaimed");
        let ids: Vec<String> = claimed.into_iter().map(|i| i.id).collect();
        delivered += store.outbox_delivered_many(&ids, Utc::now()).await.unwrap() as usize;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

async fn run(name: &str, store: Store) {
    let decisions = count("STORE_BENCH_DECISIONS", 50_000);
    let items = count("STORE_BENCH_OUTBOX", 5_000);
    let a = audit(&store, decisions).await;
    println!("{name:<10} audit   {decisions:>7} decisions  {a:>10.0} decisions/s (batched writer, committed)");
    let o = outbox(&store, items).await;
    println!(
        "{name:<10} outbox  {items:>7} items      {o:>10.0} items/s (enqueue + claim + delivered)"
    );
    let ob = outbox_batched(&store, items).await;
    println!("{name:<10} outbox  {items:>7} items      {ob:>10.0} items/s (batches of 50)");
    store.close().await;
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(&StoreConfig::default(), dir.path())
        .await
        .unwrap();
    run("sqlite", sqlite).await;

    let server = std::env::var("RIPOSTE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
    let name = format!("riposte_bench_{}", std::process::id());
    let mut admin = match sqlx::PgConnection::connect(&format!("{server}/postgres")).await {
        Ok(c) => c,
        Err(e) => {
            println!("postgres   skipped: {e}");
            return;
        }
    };
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .unwrap();
    let config = StoreConfig {
        url: Some(DatabaseUrl::new(format!("{server}/{name}"))),
        ..StoreConfig::default()
    };
    let pg = Store::open(&config, dir.path()).await.unwrap();
    run("postgres", pg).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
}
