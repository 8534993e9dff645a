//! The pod index against the Kubernetes API server stand-in: the real
//! `kube::Client` and kube-runtime watchers over HTTPS.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use riposte_connectors::kubernetes::{client, KubernetesConfig, PodIndex, QuarantineChange};
use riposte_standins::eventually;
use riposte_standins::kube_api::{fixtures, KubeApiServer, PodFixture};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

async fn start() -> (KubeApiServer, kube::Client) {
    let kube = KubeApiServer::start().await.expect("the stand-in starts");
    let config = kube.client_config().expect("client config");
    let client = client::build(config, Duration::from_secs(5)).expect("client");
    (kube, client)
}

async fn synced(client: kube::Client, config: &KubernetesConfig) -> PodIndex {
    let index = PodIndex::spawn(client, config);
    tokio::time::timeout(WAIT, index.ready())
        .await
        .expect("the index syncs");
    index
}

fn name_of(v: &serde_json::Value) -> String {
    v["metadata"]["name"].as_str().expect("a name").to_owned()
}

#[tokio::test]
async fn syncs_and_resolves_with_owners_and_namespace_labels() {
    let (kube, client) = start().await;
    kube.add_namespace("shop", &[("team", "payments")])
        .expect("namespace");
    let web = kube
        .add_deployment("shop", "checkout", &[("app", "checkout")])
        .expect("deployment");
    let pod = kube
        .add_pod(web.pod("10.244.1.17").ip("fd00::17"))
        .expect("pod");
    kube.add_namespace("batch-ns", &[]).expect("namespace");
    let cron = kube
        .create("cronjobs", fixtures::cronjob("batch-ns", "report"))
        .expect("cronjob");
    let job = kube
        .create(
            "jobs",
            fixtures::job("batch-ns", "report-2890", Some(&cron)),
        )
        .expect("job");
    kube.add_pod(PodFixture::new("batch-ns", "report-2890-x", "10.244.2.5").owned_by(&job))
        .expect("job pod");

    let index = synced(client, &KubernetesConfig::default()).await;
    assert!(index.is_ready());

    let v4 = index.resolve(ip("10.244.1.17")).expect("IPv4 resolves");
    let v6 = index.resolve(ip("fd00::17")).expect("IPv6 resolves");
    assert_eq!(v4.name, name_of(&pod));
    assert_eq!(v6.name, v4.name);
    assert_eq!(
        v4.owner_kind.as_deref(),
        Some("Deployment"),
        "through the ReplicaSet"
    );
    assert_eq!(v4.owner_name.as_deref(), Some("checkout"));
    assert_eq!(
        v4.namespace_labels.get("team").map(String::as_str),
        Some("payments")
    );
    assert_eq!(v4.labels.get("app").map(String::as_str), Some("checkout"));
    assert_eq!(v4.node.as_deref(), Some("node-1"));
    assert!(!v4.uid.is_empty());

    let job_pod = index.resolve(ip("10.244.2.5")).expect("job pod resolves");
    assert_eq!(
        job_pod.owner_kind.as_deref(),
        Some("CronJob"),
        "through the Job"
    );
    assert_eq!(job_pod.owner_name.as_deref(), Some("report"));

    assert_eq!(
        index
            .namespace_labels("shop")
            .and_then(|l| l.get("team").cloned())
            .as_deref(),
        Some("payments")
    );
    assert!(index.resolve(ip("10.9.9.9")).is_none());

    // The ReplicaSet and Job watches asked for metadata only.
    let meta_only = kube
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/replicasets") || r.path.contains("/jobs"))
        .count();
    assert!(meta_only >= 2, "owner watches were made");
}

#[tokio::test]
async fn follows_changes_and_ip_reuse_live() {
    let (kube, client) = start().await;
    kube.add_namespace("shop", &[]).expect("namespace");
    let old = kube
        .add_pod(PodFixture::new("shop", "old-job", "10.244.3.3"))
        .expect("pod");
    let index = synced(client, &KubernetesConfig::default()).await;
    assert_eq!(
        index
            .resolve(ip("10.244.3.3"))
            .map(|p| p.name.clone())
            .as_deref(),
        Some("old-job")
    );

    // The pod finishes: its address is free, nothing resolves.
    kube.modify("pods", "shop", &name_of(&old), |p| {
        p["status"]["phase"] = json!("Succeeded")
    })
    .expect("finish");
    eventually(WAIT, || {
        index.resolve(ip("10.244.3.3")).is_none().then_some(())
    })
    .await
    .expect("a finished pod gives up its address");

    // A new pod gets the same address from the CNI.
    kube.add_pod(PodFixture::new("shop", "new-web", "10.244.3.3"))
        .expect("pod");
    let now = eventually(WAIT, || index.resolve(ip("10.244.3.3")))
        .await
        .expect("resolves");
    assert_eq!(now.name, "new-web");

    // Labels change: a new snapshot.
    kube.modify("pods", "shop", "new-web", |p| {
        p["metadata"]["labels"] = json!({"app": "web", "v": "2"})
    })
    .expect("relabel");
    eventually(WAIT, || {
        index
            .resolve(ip("10.244.3.3"))
            .filter(|p| p.labels.get("v").map(String::as_str) == Some("2"))
    })
    .await
    .expect("label change seen");

    // Namespace labels change: every pod of it gets them.
    kube.modify("namespaces", "", "shop", |n| {
        n["metadata"]["labels"]["riposte.io/exempt"] = json!("true")
    })
    .expect("ns label");
    eventually(WAIT, || {
        index
            .resolve(ip("10.244.3.3"))
            .filter(|p| p.namespace_labels.contains_key("riposte.io/exempt"))
    })
    .await
    .expect("namespace label seen");

    kube.delete("pods", "shop", "new-web").expect("delete");
    eventually(WAIT, || {
        index.resolve(ip("10.244.3.3")).is_none().then_some(())
    })
    .await
    .expect("a deleted pod is gone");
}

#[tokio::test]
async fn quarantines_are_read_back_at_start_and_followed() {
    let (kube, client) = start().await;
    kube.add_namespace("shop", &[]).expect("namespace");
    // Quarantined by an earlier Riposte, before this one started.
    kube.add_pod(
        PodFixture::new("shop", "web-1", "10.244.1.1")
            .label("riposte.io/quarantine", "true")
            .annotation("riposte.io/reason", "C2 traffic")
            .annotation("riposte.io/action-id", "a1")
            .annotation("riposte.io/expires-at", "2030-01-01T00:00:00Z")
            .annotation("riposte.io/quarantined-at", "2029-12-31T20:00:00Z"),
    )
    .expect("pod");
    kube.add_pod(PodFixture::new("shop", "web-2", "10.244.1.2"))
        .expect("pod");
    let index = synced(client, &KubernetesConfig::default()).await;
    let mut changes = index.quarantine_changes();

    let list = index.quarantined();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].pod.name, "web-1");
    assert_eq!(list[0].reason.as_deref(), Some("C2 traffic"));
    assert_eq!(
        list[0].expires_at.map(|t| t.to_rfc3339()).as_deref(),
        Some("2030-01-01T00:00:00+00:00")
    );

    // Someone (another replica, a human) quarantines web-2.
    kube.modify("pods", "shop", "web-2", |p| {
        p["metadata"]["labels"] = json!({"riposte.io/quarantine": "true"});
        p["metadata"]["annotations"] = json!({"riposte.io/expires-at": "2030-01-02T00:00:00Z"});
    })
    .expect("quarantine web-2");
    let change = tokio::time::timeout(WAIT, changes.recv())
        .await
        .expect("a change arrives")
        .expect("channel open");
    match change {
        QuarantineChange::Set(s) => assert_eq!(s.pod.name, "web-2"),
        other => panic!("expected Set for web-2, got {other:?}"),
    }

    // A human releases web-1 with kubectl.
    kube.modify("pods", "shop", "web-1", |p| {
        p["metadata"]["labels"] = json!({});
    })
    .expect("release web-1");
    let change = tokio::time::timeout(WAIT, changes.recv())
        .await
        .expect("a change arrives")
        .expect("channel open");
    assert!(
        matches!(change, QuarantineChange::Cleared(ref p) if p.name == "web-1"),
        "{change:?}"
    );
    assert_eq!(index.quarantined().len(), 1);
}

#[tokio::test]
async fn survives_the_api_server_going_away_and_coming_back() {
    let (kube, client) = start().await;
    kube.add_namespace("shop", &[]).expect("namespace");
    kube.add_pod(PodFixture::new("shop", "stays", "10.244.5.1"))
        .expect("pod");
    kube.add_pod(PodFixture::new("shop", "leaves", "10.244.5.2"))
        .expect("pod");
    let index = synced(client, &KubernetesConfig::default()).await;
    assert!(index.resolve(ip("10.244.5.2")).is_some());

    kube.stop().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // While it is away: resolve keeps answering from memory.
    assert!(index.resolve(ip("10.244.5.1")).is_some());
    assert!(index.is_ready(), "readiness reflects the first sync");
    // The cluster changes meanwhile, and its history is compacted, so
    // the watch cannot resume and must re-list.
    kube.delete("pods", "shop", "leaves")
        .expect("delete while away");
    kube.create(
        "pods",
        PodFixture::new("shop", "arrives", "10.244.5.3").to_json(),
    )
    .expect("create while away");
    kube.compact();
    kube.restart().await.expect("restart");

    eventually(Duration::from_secs(60), || index.resolve(ip("10.244.5.3")))
        .await
        .expect("the watch came back and saw the new pod");
    eventually(Duration::from_secs(60), || {
        index.resolve(ip("10.244.5.2")).is_none().then_some(())
    })
    .await
    .expect("the pod deleted while away is dropped by the re-list");
    assert!(
        index.resolve(ip("10.244.5.1")).is_some(),
        "the re-list keeps what still exists"
    );
    let status = index.status();
    assert!(
        status.watch_errors > 0,
        "the outage was counted: {status:?}"
    );
    assert!(status.last_error.is_some());
}

#[tokio::test]
async fn a_server_down_at_start_delays_readiness_not_the_process() {
    let (kube, client) = start().await;
    kube.add_namespace("shop", &[]).expect("namespace");
    kube.add_pod(PodFixture::new("shop", "web", "10.244.6.1"))
        .expect("pod");
    kube.stop().await;
    let index = PodIndex::spawn(client, &KubernetesConfig::default());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!index.is_ready(), "not ready before a first sync");
    assert!(index.resolve(ip("10.244.6.1")).is_none());
    kube.restart().await.expect("restart");
    tokio::time::timeout(Duration::from_secs(60), index.ready())
        .await
        .expect("ready once the server is back");
    assert!(index.resolve(ip("10.244.6.1")).is_some());
}

#[tokio::test]
async fn watches_only_the_configured_namespaces() {
    let (kube, client) = start().await;
    kube.add_namespace("shop", &[("team", "payments")])
        .expect("namespace");
    kube.add_namespace("other", &[]).expect("namespace");
    kube.add_pod(PodFixture::new("shop", "in", "10.244.7.1"))
        .expect("pod");
    kube.add_pod(PodFixture::new("other", "out", "10.244.7.2"))
        .expect("pod");
    let config = KubernetesConfig {
        namespaces: vec!["shop".into()],
        ..KubernetesConfig::default()
    };
    let index = synced(client, &config).await;
    let p = index.resolve(ip("10.244.7.1")).expect("watched namespace");
    assert_eq!(
        p.namespace_labels.get("team").map(String::as_str),
        Some("payments")
    );
    assert!(index.resolve(ip("10.244.7.2")).is_none(), "not watched");
    assert!(index.namespace_labels("other").is_none());
    let cluster_wide = kube
        .requests()
        .into_iter()
        .any(|r| r.verb == "list" && r.path == "/api/v1/pods");
    assert!(
        !cluster_wide,
        "no cluster-wide pod list when namespaces are configured"
    );
}

#[tokio::test]
async fn indexes_ten_thousand_pods() {
    let (kube, client) = start().await;
    let pods = (0..10_000u32).map(|i| {
        let ns = format!("team-{}", i % 20);
        PodFixture::new(
            &ns,
            &format!("pod-{i}"),
            &format!("10.{}.{}.{}", 100 + i / 65_536, (i / 256) % 256, i % 256),
        )
        .ip(&format!("fd00::{:x}", i + 1))
        .label("app", &format!("app-{}", i % 50))
    });
    kube.seed_pods(pods).expect("seed");
    let t = Instant::now();
    let index = synced(client, &KubernetesConfig::default()).await;
    let took = t.elapsed();
    let status = index.status();
    println!(
        "indexed {} pods / {} addresses in {took:?}",
        status.pods, status.addresses
    );
    assert_eq!(status.pods, 10_000);
    assert_eq!(status.addresses, 20_000);
    let p = index
        .resolve(ip("10.100.39.15"))
        .expect("pod 9999 resolves"); // 9999 = 39*256 + 15
    assert_eq!(p.name, "pod-9999");
    assert_eq!(
        index
            .resolve(ip("fd00::2710"))
            .map(|p| p.name.clone())
            .as_deref(),
        Some("pod-9999")
    );
}
