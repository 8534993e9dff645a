//! Scale-out through RabbitMQ: events/s from syslog through an ingest
//! replica, the broker's partition queues and one (then two) worker
//! replicas to recorded decisions; and the latency per event, p50/p99,
//! against the same path in one `all` process (the difference is what the
//! broker hop adds).
//!
//! `cargo bench -p riposte-tests --bench amqp` (needs the RabbitMQ on
//! 127.0.0.1:5672 and PostgreSQL on 127.0.0.1:5432). Everything runs in
//! this one process on loopback: the replicas are in-process servers; the
//! workers share one PostgreSQL database (as they must to share the
//! partitions), the ingest replica has a SQLite store. Without `--bench`
//! (as `cargo test` runs benches) it does a short smoke run.
//!
//! Throughput: `EVENTS` C2 logs from 64 sources over one TCP connection,
//! timed from the first byte sent until every event's message is acked by
//! the workers (acked = its decision is in the audit trail). Latency:
//! events paced at 200/s, each timed from its send to its decision's
//! timestamp on the worker.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use riposte_connectors::amqp::BrokerUrl;
use riposte_engine::config::Config;
use riposte_engine::decide::decision::DecisionFilter;
use riposte_engine::intake::queues::config::{AmqpConfig, PartitionConfig};
use riposte_engine::intake::queues::Role;
use riposte_engine::store::DatabaseUrl;
use riposte_tests::service::{self, add_playbook, Service};
use riposte_tests::{lines, postgres, rabbit};
use tokio::io::AsyncWriteExt;

const PLAYBOOK: &str = r#"// name: bench
// trigger: threat.type = spyware
// mode: dry-run
log("debug", "c2");
"#;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn configure(c: &mut Config, base: &str, partitions: &PartitionConfig) -> anyhow::Result<()> {
    add_playbook(c, "bench.rhai", PLAYBOOK)?;
    c.log.level = "warn".into();
    c.amqp = Some(AmqpConfig {
        url: BrokerUrl::new(rabbit::url()),
        connection_name: format!("bench-{base}"),
        partitions: partitions.clone(),
        ..AmqpConfig::default()
    });
    Ok(())
}

fn line(i: u64) -> String {
    lines::with_bsd_header(&lines::c2(
        &format!("10.8.0.{}", 1 + i % 64),
        "203.0.113.66",
        i,
    ))
}

fn acked(workers: &[Service]) -> f64 {
    workers
        .iter()
        .map(|w| w.metric("riposte_amqp_messages_total", &[("result", "acked")]))
        .sum()
}

fn decided(services: &[&Service]) -> usize {
    services
        .iter()
        .map(|s| s.metric("riposte_events_processed_total", &[]) as usize)
        .sum()
}

async fn throughput(
    ingest: &Service,
    workers: &[Service],
    events: u64,
    first: u64,
) -> anyhow::Result<f64> {
    let before = acked(workers);
    let mut stream = tokio::net::TcpStream::connect(ingest.running.tcp[0]).await?;
    let started = Instant::now();
    let mut buf = Vec::with_capacity(1 << 20);
    for i in first..first + events {
        buf.extend_from_slice(line(i).as_bytes());
        buf.push(b'\n');
        if buf.len() > 512 * 1024 {
            stream.write_all(&buf).await?;
            buf.clear();
        }
    }
    stream.write_all(&buf).await?;
    stream.shutdown().await?;
    let target = before + events as f64;
    while acked(workers) < target {
        if started.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("{} of {events} acked in 600 s", acked(workers) - before);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(events as f64 / started.elapsed().as_secs_f64())
}

/// Sends `count` events paced at `rate`/s to `to`, then reads each one's
/// decision time from `deciders`.
async fn latency(
    to: &Service,
    deciders: &[&Service],
    count: u64,
    rate: u64,
    first: u64,
) -> anyhow::Result<(Duration, Duration)> {
    let opts = to.config.parse_options()?;
    let mut stream = tokio::net::TcpStream::connect(to.running.tcp[0]).await?;
    let mut sent: HashMap<String, DateTime<Utc>> = HashMap::new();
    let start = Instant::now();
    for k in 0..count {
        let due = start + Duration::from_micros(k * 1_000_000 / rate);
        tokio::time::sleep_until(due.into()).await;
        let l = line(first + k);
        let id = match riposte_firewall::parse_record(l.as_bytes(), &opts) {
            Ok(riposte_firewall::Parsed::Event(ev)) => ev.id.to_string(),
            _ => anyhow::bail!("bench line does not parse"),
        };
        sent.insert(id, Utc::now());
        stream.write_all(format!("{l}\n").as_bytes()).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut at: HashMap<String, DateTime<Utc>> = HashMap::new();
    while at.len() < sent.len() {
        for s in deciders {
            for d in s
                .running
                .decisions
                .recent(10_000, &DecisionFilter::default())
            {
                if sent.contains_key(&d.event_id) {
                    at.entry(d.event_id.clone()).or_insert(d.at);
                }
            }
        }
        if Instant::now() > deadline {
            anyhow::bail!("{} of {} decided", at.len(), sent.len());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut lat: Vec<Duration> = sent
        .iter()
        .map(|(id, t)| (at[id] - *t).to_std().unwrap_or_default())
        .collect();
    lat.sort_unstable();
    Ok((percentile(&lat, 0.5), percentile(&lat, 0.99)))
}

fn main() -> anyhow::Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let events: u64 = if full { 30_000 } else { 500 };
    let paced: u64 = if full { 1_000 } else { 50 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let base = rabbit::unique("bench");
        let partitions = PartitionConfig {
            exchange: format!("{base}.ev"),
            queue_prefix: format!("{base}.ev"),
            dead_letter_exchange: format!("{base}.ev.dlx"),
            ..PartitionConfig::default()
        };
        let mut adjust = |c: &mut Config, _: &std::path::Path| {
            configure(c, &base, &partitions).expect("writing the bench playbook");
        };
        let pg = postgres::fresh_database("bench").await?;
        let mut adjust_worker = |c: &mut Config, _: &std::path::Path| {
            configure(c, &base, &partitions).expect("writing the bench playbook");
            c.store.url = Some(DatabaseUrl::new(&pg));
        };

        // The same path without the broker, for the latency baseline.
        let all = service::start_with(|c, _| {
            add_playbook(c, "bench.rhai", PLAYBOOK).expect("writing the bench playbook");
            c.log.level = "warn".into();
        })
        .await?;
        let before = decided(&[&all]);
        let started = Instant::now();
        let mut stream = tokio::net::TcpStream::connect(all.running.tcp[0]).await?;
        let mut buf = Vec::new();
        for i in 0..events {
            buf.extend_from_slice(line(i).as_bytes());
            buf.push(b'\n');
        }
        stream.write_all(&buf).await?;
        stream.shutdown().await?;
        while decided(&[&all]) < before + events as usize {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let local_rate = events as f64 / started.elapsed().as_secs_f64();
        let (l50, l99) = latency(&all, &[&all], paced, 200, 10_000_000).await?;
        all.stop().await;
        println!("amqp/all-in-one (no broker)      {local_rate:>9.0} events/s   latency p50 {l50:?} p99 {l99:?}");

        let ingest = service::start_role_with(Role::Ingest, &mut adjust).await?;
        let mut workers = vec![service::start_role_with(Role::Worker, &mut adjust_worker).await?];
        // Warm up (connections, topology, first compiles of the playbook).
        throughput(&ingest, &workers, 200, 20_000_000).await?;
        let one = throughput(&ingest, &workers, events, 0).await?;
        let refs: Vec<&Service> = workers.iter().collect();
        let (w50, w99) = latency(&ingest, &refs, paced, 200, 30_000_000).await?;
        println!("amqp/ingest+1 worker            {one:>9.0} events/s   latency p50 {w50:?} p99 {w99:?}");
        println!(
            "amqp/added by the broker hop                        p50 {:?} p99 {:?}",
            w50.saturating_sub(l50),
            w99.saturating_sub(l99)
        );

        workers.push(service::start_role_with(Role::Worker, &mut adjust_worker).await?);
        // Wait for the second worker to get its share of the partitions.
        let started = Instant::now();
        while workers
            .iter()
            .any(|w| w.metric("riposte_amqp_partitions_owned", &[]) != f64::from(partitions.count / 2))
        {
            if started.elapsed() > Duration::from_secs(120) {
                anyhow::bail!("the two workers did not split the partitions");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        throughput(&ingest, &workers, 200, 21_000_000).await?;
        let before: Vec<f64> = workers
            .iter()
            .map(|w| w.metric("riposte_amqp_messages_total", &[("result", "acked")]))
            .collect();
        let two = throughput(&ingest, &workers, events, 40_000_000).await?;
        let shares: Vec<f64> = workers
            .iter()
            .zip(&before)
            .map(|(w, b)| w.metric("riposte_amqp_messages_total", &[("result", "acked")]) - b)
            .collect();
        let refs: Vec<&Service> = workers.iter().collect();
        let (t50, t99) = latency(&ingest, &refs, paced, 200, 50_000_000).await?;
        println!(
            "amqp/ingest+2 workers           {two:>9.0} events/s   latency p50 {t50:?} p99 {t99:?}   (acked per worker: {shares:?})"
        );

        ingest.stop().await;
        for w in workers {
            w.stop().await;
        }
        let mut queues: Vec<String> = (0..partitions.count).map(|n| partitions.queue(n)).collect();
        queues.push(format!("{}.dead", partitions.queue_prefix));
        rabbit::cleanup(&queues, &[partitions.exchange.clone(), partitions.dead_letter_exchange.clone()]).await;
        postgres::drop_database(&pg).await;
        Ok(())
    })
}
