//! Outbound notification throughput through the durable outbox: `count`
//! notify intents are written to the SQLite outbox (one durable write each,
//! from concurrent producers, as the dispatcher does) and delivered, signed,
//! to the SOAR receiver stand-in on loopback; the figure is notifications
//! per second from the first write to the last delivery acknowledged.
//!
//! `cargo bench -p riposte-tests --bench notify` (NOTIFY_BENCH_COUNT,
//! NOTIFY_BENCH_CONCURRENCY to change the defaults of 20000 and 64).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::registry::Registry;
use riposte_connectors::soar::{Format, SecretSource, TargetConfig};
use riposte_engine::act::notifications::{worker, Notifier, NotifyConfig, NotifyMetrics};
use riposte_engine::decide::decision::{Decision, EventSummary, Mode, Outcome, Timings};
use riposte_engine::decide::intent::{Action, Intent};
use riposte_engine::store::{OutboxStatus, Store, StoreConfig};
use riposte_tests::soar_receiver::SoarReceiver;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Decisions writing notifications at the same time, as the pipeline's
/// shards run them: concurrent writes share the outbox's commits.
const PRODUCERS: usize = 64;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn decision(i: usize) -> Decision {
    Decision {
        event_id: format!("bench-{i}"),
        event: EventSummary {
            kind: "alert".into(),
            dataset: "panos.threat".into(),
            threat_name: Some("Cobalt Strike Beacon".into()),
            threat_type: Some("spyware".into()),
            severity: Some("critical".into()),
            source_ip: Some("10.244.1.17".parse().unwrap()),
            destination_ip: Some(format!("203.0.113.{}", i % 250).parse().unwrap()),
            ..EventSummary::default()
        },
        playbook: "c2-quarantine".into(),
        mode: Mode::Enforce,
        intents: vec![],
        outcome: Outcome::Decided,
        timings: Timings::default(),
        at: chrono::Utc::now(),
        actions: vec![],
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let count = env("NOTIFY_BENCH_COUNT", 20_000);
    let concurrency = env("NOTIFY_BENCH_CONCURRENCY", 64);
    let rx = SoarReceiver::builder().secret(SECRET).start().await?;
    let dir = tempfile::tempdir()?;
    let store = Store::open(&StoreConfig::default(), dir.path()).await?;
    let mut target = TargetConfig::new("bench", rx.url("/hook"), Format::Webhook);
    target.allow_private = true;
    target.concurrency = concurrency;
    target.signing_secrets = vec![SecretSource::Inline(SECRET.into())];
    let config = NotifyConfig {
        targets: vec![target],
        batch: 1024,
        poll_interval_ms: 50,
        ..NotifyConfig::default()
    };
    let mut registry = Registry::default();
    let notifier = Notifier::build(
        &config,
        store.clone(),
        NotifyMetrics::register(&mut registry),
    )?
    .ok_or_else(|| anyhow::anyhow!("no target"))?;
    let shutdown = CancellationToken::new();
    let worker = worker::spawn(notifier.clone(), shutdown.clone());

    let started = Instant::now();
    let mut producers = tokio::task::JoinSet::new();
    for p in 0..PRODUCERS {
        let notifier: Arc<Notifier> = notifier.clone();
        producers.spawn(async move {
            for i in (p..count).step_by(PRODUCERS) {
                let d = decision(i);
                let fields = serde_json::json!({"title": format!("C2 traffic #{i}"), "severity": "critical"});
                let intent = Intent::new(
                    &d.event_id,
                    &d.playbook,
                    Action::Notify {
                        target: "bench".into(),
                        fields: fields.clone(),
                    },
                );
                notifier
                    .enqueue_intent(&d, &intent, "bench", &fields, &[])
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = producers.join_next().await {
        r??;
    }
    let enqueued = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(300);
    while rx.accepted_total() < count {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} delivered",
            rx.accepted_total()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let delivered = started.elapsed();
    // The last acknowledgements are written back before we count them.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let counts = store.outbox_counts().await?;
        let done = counts
            .iter()
            .find(|c| c.status == OutboxStatus::Delivered)
            .map_or(0, |c| c.count);
        if done as usize >= count || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let settled = started.elapsed();
    shutdown.cancel();
    let _ = worker.await;
    let bad = rx.bad_signatures();
    println!(
        "notify: {count} notifications, concurrency {concurrency}: all written to the outbox in {:.2} s, \
         all delivered (signed, verified) in {:.2} s = {:.0} notifications/s; \
         outbox settled in {:.2} s = {:.0}/s; bad signatures {bad}",
        enqueued.as_secs_f64(),
        delivered.as_secs_f64(),
        count as f64 / delivered.as_secs_f64(),
        settled.as_secs_f64(),
        count as f64 / settled.as_secs_f64(),
    );
    Ok(())
}
