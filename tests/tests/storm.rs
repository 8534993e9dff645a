//! A storm end to end (issue 13): thousands of C2 logs from a handful of
//! pods to two C2 addresses, through the shipped `c2-quarantine` playbook,
//! the Kubernetes API stand-in and the PAN-OS stand-in, with a restart in
//! the middle. Each pod is quarantined once and each address registered
//! once; the audit trail holds a few coalesced records whose counts add up
//! to the number of events, and every event id finds the record it was
//! counted in.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use riposte_connectors::soar::{Format, NotifyOn, TargetConfig as SoarTarget};
use riposte_engine::act::firewall_sync::config::{BasicUser, EdlListConfig};
use riposte_engine::auth::hash_token;
use riposte_engine::decide::decision::DecisionFilter;
use riposte_engine::store::AuditQuery;
use riposte_firewall::edl::EdlKind;
use riposte_firewall::xmlapi::{ApiKey, TargetConfig};
use riposte_tests::kube_api::KubeApiServer;
use riposte_tests::lines;
use riposte_tests::panos_api::PanosApi;
use riposte_tests::service::{self, add_playbook, shipped_playbooks, use_cluster, Service};
use riposte_tests::soar_receiver::SoarReceiver;
use riposte_tests::syslog::{self, Framing};

const WAIT: Duration = Duration::from_secs(60);
const PODS: [&str; 3] = ["10.244.1.17", "10.244.2.17", "10.244.3.17"];
const C2: [&str; 2] = ["203.0.113.66", "198.51.100.99"];
/// Events per half of the storm (one half before the restart, one after).
const HALF: u64 = 1_500;

async fn start(
    kube: &KubeApiServer,
    fw: &PanosApi,
    rx: &SoarReceiver,
    data: Option<&std::path::Path>,
) -> Service {
    let playbook = std::fs::read_to_string(shipped_playbooks().join("c2-quarantine.rhai")).unwrap();
    let mut t = TargetConfig::new("fw1", &fw.url(), ApiKey::new(fw.key()));
    t.batch_interval_ms = 10;
    t.timeout_secs = 2;
    let data = data.map(std::path::Path::to_path_buf);
    // The SOAR hears the playbook's notifications and every action applied.
    let mut soar = SoarTarget::new("soar", rx.url("/hook"), Format::Webhook);
    soar.allow_private = true;
    soar.on = vec![NotifyOn::Notify, NotifyOn::Applied, NotifyOn::Refused];
    service::start_with(move |c, dir| {
        use_cluster(c, dir, kube).unwrap();
        add_playbook(c, "c2.rhai", &playbook).unwrap();
        if let Some(d) = data {
            c.data_dir = d;
        }
        c.firewall.targets = vec![t];
        c.notify.targets = vec![soar];
        c.notify.poll_interval_ms = 50;
        c.firewall.reconcile_interval_secs = 3600;
        c.firewall.edl = vec![EdlListConfig {
            name: "c2".into(),
            kind: EdlKind::Ip,
            basic: vec![BasicUser {
                user: "pa-fw".into(),
                sha256: hash_token("edl-secret"),
            }],
            bearer_sha256: Vec::new(),
        }];
    })
    .await
    .unwrap()
}

async fn wait_ready(svc: &Service) {
    riposte_tests::eventually(WAIT, || svc.running.readiness.is_ready().then_some(()))
        .await
        .unwrap_or_else(|_| panic!("not ready: {:?}", svc.running.readiness.snapshot()));
}

/// Sends events `from..from + n`, each pod to each address in turn.
async fn storm(svc: &Service, from: u64, n: u64) {
    let lines: Vec<String> = (from..from + n)
        .map(|i| {
            let src = PODS[(i % 3) as usize];
            let c2 = C2[((i / 3) % 2) as usize];
            lines::with_bsd_header(&lines::c2(src, c2, i))
        })
        .collect();
    for chunk in lines.chunks(500) {
        syslog::send_tcp(svc.running.tcp[0], chunk, Framing::OctetCounting)
            .await
            .unwrap();
    }
}

/// Waits until the audit trail has counted `n` events.
async fn audited(svc: &Service, n: i64) -> (i64, i64, i64) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let t = svc.running.store.audit_totals().await.unwrap();
        if t.1 >= n || std::time::Instant::now() > deadline {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn event_ids(svc: &Service) -> BTreeSet<String> {
    svc.running
        .decisions
        .recent(100_000, &DecisionFilter::default())
        .into_iter()
        .map(|d| d.event_id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_quarantines_each_pod_once_registers_each_address_once_and_counts_every_event() {
    let kube = KubeApiServer::start().await.unwrap();
    kube.add_namespace("shop", &[]).unwrap();
    let mut victims = BTreeMap::new();
    for (i, ip) in PODS.iter().enumerate() {
        let app = format!("app{i}");
        let w = kube
            .add_deployment("shop", &app, &[("app", app.as_str())])
            .unwrap();
        let pod = kube.add_pod(w.pod(ip)).unwrap();
        victims.insert(
            ip.to_string(),
            pod["metadata"]["name"].as_str().unwrap().to_string(),
        );
        for n in 0..3 {
            kube.add_pod(w.pod(&format!("10.244.{}.{}", i + 1, 30 + n)))
                .unwrap();
        }
    }
    let fw = PanosApi::start().await.unwrap();
    let rx = SoarReceiver::builder().start().await.unwrap();
    let data = tempfile::tempdir().unwrap();

    let svc = start(&kube, &fw, &rx, Some(data.path())).await;
    wait_ready(&svc).await;
    let bytes_before = svc.running.store.data_bytes().await.unwrap();
    storm(&svc, 0, HALF).await;
    let first = audited(&svc, HALF as i64).await;
    assert_eq!(first.1, HALF as i64, "first half counted: {first:?}");
    let mut ids = event_ids(&svc);
    // A restart inside the coalescing window: the open records go on.
    let svc = {
        svc.stop().await;
        start(&kube, &fw, &rx, Some(data.path())).await
    };
    wait_ready(&svc).await;
    // Redelivered: the last 100 events of the first half come again.
    storm(&svc, HALF - 100, 100 + HALF).await;
    let (records, counted, indexed) = audited(&svc, 2 * HALF as i64).await;
    ids.extend(event_ids(&svc));
    assert_eq!(ids.len(), 2 * HALF as usize, "distinct events decided");

    let bytes = svc.running.store.data_bytes().await.unwrap() - bytes_before;
    eprintln!(
        "store: {bytes} bytes for {counted} decided events ({} per event), {records} records",
        bytes / counted.max(1)
    );
    // Counts add up: every event once, the redelivered ones not twice.
    assert_eq!((counted, indexed), (2 * HALF as i64, 2 * HALF as i64));
    assert_eq!(svc.metric("riposte_audit_duplicates_total", &[]), 100.0);
    // Three pods by two addresses, with and without the once-per-10-minutes
    // notification: a handful of records, not thousands.
    assert!(records <= 24, "{records} records for {counted} events");
    // Every event id finds the record it was counted in.
    for id in &ids {
        let page = svc
            .running
            .store
            .query_audit(&AuditQuery {
                event_id: Some(id.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.entries.len(), 1, "event {id}");
        assert!(page.entries[0].count >= 1);
    }

    // Exactly one quarantine per pod: one write to each victim, none to
    // the others.
    for (ip, name) in &victims {
        let p = kube.get("pods", "shop", name).unwrap();
        assert_eq!(
            p["metadata"]["labels"]["riposte.io/quarantine"], "true",
            "{ip} quarantined"
        );
        let writes =
            kube.requests_matching("patch", &format!("/api/v1/namespaces/shop/pods/{name}"));
        assert_eq!(writes.len(), 1, "{ip}: writes to the pod {writes:#?}");
    }
    // One registration per address, across the restart.
    let registrations: usize = fw
        .requests()
        .iter()
        .filter(|r| r.kind == "user-id")
        .map(|r| r.entries)
        .sum();
    assert_eq!(registrations, C2.len(), "{:?}", fw.requests());
    for c2 in C2 {
        assert!(fw.tag(c2, "riposte-c2").is_some(), "{c2} tagged");
    }
    assert!(svc.metric("riposte_firewall_repeats_total", &[("kind", "tag")]) > 0.0);
    // The SOAR hears the first actions and the playbook's once-per-address
    // notifications (after the restart, which forgets `once_per`, counted
    // into the incident the first one opened), never one per repeat: a few
    // dozen at most for 3,000 events.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delivered = rx.accepted_total();
    eprintln!("SOAR deliveries: {delivered} for {counted} matched events");
    assert!(
        (1..=30).contains(&delivered),
        "{delivered} SOAR deliveries for {counted} events"
    );
    svc.stop().await;
}
