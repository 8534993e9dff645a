//! The firewall side's two targets:
//! - 10,000 tag registrations reach the PAN-OS stand-in in ≤ 20 requests
//!   (batching through the client's batcher, default batch settings);
//! - the 100,000-entry EDL is served in < 50 ms (`GET /v1/edl/{list}` over
//!   loopback HTTP with basic auth, the in-process service; p50/p99 of the
//!   cached body, and the first render after a change).
//!
//! `cargo bench -p riposte-tests --bench panos`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use riposte_engine::act::firewall_sync::config::{BasicUser, EdlListConfig};
use riposte_engine::auth::hash_token;
use riposte_engine::store::NewEdlEntry;
use riposte_firewall::edl::EdlKind;
use riposte_firewall::xmlapi::{ApiKey, Batcher, Client, Tag, TargetConfig, UidOp};
use riposte_tests::panos_api::PanosApi;
use riposte_tests::service;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn registrations() {
    let fw = PanosApi::start().await.unwrap();
    let config = TargetConfig::new("fw1", &fw.url(), ApiKey::new(fw.key()));
    let batcher = Batcher::start(Client::new(config).unwrap());
    let tag = Tag::new("riposte-c2").unwrap();
    let ops: Vec<_> = (0..10_000u32)
        .map(|i| {
            let ip = std::net::Ipv4Addr::from(0xCB00_0000 | i);
            UidOp::register(std::net::IpAddr::V4(ip).into(), tag.clone(), 86_400, false).unwrap()
        })
        .collect();
    let started = Instant::now();
    let results = batcher.submit_all(ops).await;
    let took = started.elapsed();
    let failed = results.iter().filter(|r| r.is_err()).count();
    let requests = fw.count("user-id");
    let bytes: usize = fw.requests().iter().map(|r| r.body_bytes).sum();
    println!(
        "tags: 10000 registrations -> {requests} requests ({} KiB form data), {failed} failed, {} tagged, {:.1} ms",
        bytes / 1024,
        fw.count_tagged("riposte-c2"),
        took.as_secs_f64() * 1e3
    );
    assert!(requests <= 20, "{requests} requests");
    assert_eq!(failed, 0);
}

async fn edl_serving() {
    let svc = service::start_with(|c, _| {
        c.firewall.edl = vec![EdlListConfig {
            name: "c2".into(),
            kind: EdlKind::Ip,
            basic: vec![BasicUser {
                user: "pa-fw".into(),
                sha256: hash_token("pw"),
            }],
            bearer_sha256: Vec::new(),
        }];
    })
    .await
    .unwrap();
    let fw = svc.running.firewall.clone().unwrap();
    // Loaded in batches straight into the store (one transaction each): a
    // transaction per entry would time the disk, not the serving.
    let now = chrono::Utc::now();
    let entries: Vec<NewEdlEntry> = (0..100_000u32)
        .map(|i| NewEdlEntry {
            value: std::net::Ipv4Addr::from(0x0A00_0000 | i).to_string(),
            expires_at: now + chrono::Duration::days(1),
            reason: None,
            action_id: None,
        })
        .collect();
    for batch in entries.chunks(10_000) {
        svc.running
            .store
            .edl_upsert("c2", batch, now)
            .await
            .unwrap();
    }
    let http = reqwest::Client::new();
    let url = svc.http_url("/v1/edl/c2");
    let get = || http.get(&url).basic_auth("pa-fw", Some("pw")).send();
    let started = Instant::now();
    let first = get().await.unwrap();
    let body = first.bytes().await.unwrap();
    let first_took = started.elapsed();
    let mut samples = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let r = get().await.unwrap();
        let b = r.bytes().await.unwrap();
        samples.push(t.elapsed());
        assert_eq!(b.len(), body.len());
    }
    samples.sort();
    // A change (one entry added through the firewall side, as an intent
    // does) makes the next poll read the list back and render it again.
    let mut renders = Vec::new();
    for i in 0..20u32 {
        let ip = std::net::Ipv4Addr::from(0xC633_6400 | i).to_string();
        fw.edl_add("c2", &ip, 86_400, None, None).await.unwrap();
        let t = Instant::now();
        let r = get().await.unwrap();
        let b = r.bytes().await.unwrap();
        renders.push(t.elapsed());
        assert!(b.len() > body.len());
    }
    renders.sort();
    println!(
        "edl: 100000 entries ({} KiB): first render {:.1} ms; cached p50 {:.2} ms, p99 {:.2} ms; \
         after a change p50 {:.1} ms, max {:.1} ms",
        body.len() / 1024,
        first_took.as_secs_f64() * 1e3,
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        percentile(&renders, 0.5).as_secs_f64() * 1e3,
        percentile(&renders, 1.0).as_secs_f64() * 1e3
    );
    assert!(percentile(&samples, 0.99) < Duration::from_millis(50));
    svc.stop().await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        registrations().await;
        edl_serving().await;
    });
}
