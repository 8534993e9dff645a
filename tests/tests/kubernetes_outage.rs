//! Bad input from the cluster side, on the real API server: the control
//! plane (kube-apiserver and etcd) goes away mid-watch and comes back, and
//! people edit Riposte's objects by hand between its writes.
//!
//! This binary stops and restarts its API server; the hand-edit test runs
//! in the same function afterwards so that nothing else sees the outage.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, Patch, PatchParams};
use riposte_engine::decide::decision::{ActionStatus, DecisionFilter};
use riposte_tests::real_cluster::{self, label, send_c2, WAIT};
use riposte_tests::real_k8s::{eventually_ok, RealCluster};
use riposte_tests::service::Service;
use serde_json::json;

const QUARANTINE: &str = r#"// name: quick-quarantine
// description: quarantine the source pod of a C2 alert (tests)
// trigger: threat.type = spyware, severity >= high
// mode: enforce
let pod = event.source.pod;
if pod != () {
    quarantine(pod, #{ ttl: "1h", reason: "C2" });
}
"#;

async fn quarantined(cluster: &RealCluster, ns: &str, name: &str) -> anyhow::Result<()> {
    let p = cluster
        .get::<Pod>(ns, name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("{name} gone"))?;
    anyhow::ensure!(
        label(&p, "riposte.io/quarantine") == Some("true"),
        "{name} not quarantined"
    );
    // The label comes first, the namespace's deny-all policy right after
    // it: a quarantine is done when both are there.
    cluster
        .get::<NetworkPolicy>(ns, "riposte-quarantine")
        .await?
        .ok_or_else(|| anyhow::anyhow!("{name} labelled, no deny-all policy in {ns} yet"))?;
    Ok(())
}

async fn quarantine_events(cluster: &RealCluster, ns: &str, name: &str) -> anyhow::Result<usize> {
    Ok(cluster
        .list::<Event>(ns)
        .await?
        .iter()
        .filter(|e| e["reason"] == "RiposteQuarantined" && e["involvedObject"]["name"] == name)
        .count())
}

fn applied_quarantines(svc: &Service, ip: &str) -> usize {
    svc.running
        .decisions
        .recent(100, &DecisionFilter::default())
        .into_iter()
        .filter(|d| d.event.source_ip.is_some_and(|s| s.to_string() == ip))
        .flat_map(|d| d.actions)
        .filter(|a| a.action == "quarantine" && a.status == ActionStatus::Applied)
        // A repeat (the pod is already quarantined) or an action folded into
        // one waiting on the pod's lane is recorded applied but makes no call.
        .filter(|a| !matches!(a.code.as_deref(), Some("repeat" | "coalesced")))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn riposte_rides_out_the_control_plane_going_away_and_hand_edits() -> anyhow::Result<()> {
    let cluster = real_cluster::cluster().await?;
    control_plane_away_mid_watch(cluster).await?;
    hand_edits_between_riposte_writes(cluster).await
}

async fn control_plane_away_mid_watch(cluster: &'static RealCluster) -> anyhow::Result<()> {
    let ns = cluster.namespace("shop", &[]).await?;
    let ips = cluster.ip_block();
    let (a, b) = (ips.ip(1), ips.ip(2));
    cluster.pod(&ns, "web-a", &[("app", "a")], &a).await?;
    cluster.pod(&ns, "web-b", &[("app", "b")], &b).await?;
    let svc = real_cluster::start(cluster, &[("q.rhai", QUARANTINE)], |_, _| {}).await?;
    send_c2(&svc, &a, 1).await?;
    eventually_ok(WAIT, || quarantined(cluster, &ns, "web-a")).await?;

    // kube-apiserver and etcd go away while Riposte watches.
    tokio::task::spawn_blocking(|| cluster.stop_now()).await??;
    let processed = svc.metric("riposte_events_processed_total", &[]);
    send_c2(&svc, &b, 2).await?;
    send_c2(&svc, &a, 3).await?;
    // Still ingesting and deciding…
    riposte_tests::eventually(WAIT, || {
        (svc.metric("riposte_events_processed_total", &[]) >= processed + 2.0).then_some(())
    })
    .await
    .map_err(|_| anyhow::anyhow!("ingest stopped with the API server"))?;
    // …and honest about the cluster being away, without giving up its
    // traffic: every replica sees the same outage, and one taken out of its
    // Service's endpoints could no longer take the firewalls' logs.
    let ready = eventually_ok(WAIT, || async {
        let r = reqwest::get(svc.http_url("/readyz")).await?;
        let code = r.status();
        let r: serde_json::Value = r.json().await?;
        anyhow::ensure!(r["checks"]["kubernetes_api"] == false, "{r}");
        anyhow::ensure!(code == 200 && r["ready"] == true, "{code} {r}");
        Ok(r)
    })
    .await
    .map_err(|e| e.context("/readyz does not report the API server gone"))?;
    eprintln!("while away: {ready}");
    assert_eq!(
        svc.metric("riposte_ready", &[("check", "kubernetes_api")]),
        0.0
    );

    tokio::task::spawn_blocking(|| cluster.start_again()).await??;
    real_cluster::wait_ready(&svc).await?;
    riposte_tests::eventually(WAIT, || {
        (svc.metric("riposte_ready", &[("check", "kubernetes_api")]) == 1.0).then_some(())
    })
    .await
    .map_err(|_| anyhow::anyhow!("kubernetes_api not reported back"))?;
    // The decision taken while away is carried out once the server is back.
    eventually_ok(Duration::from_secs(60), || {
        quarantined(cluster, &ns, "web-b")
    })
    .await
    .map_err(|e| {
        e.context(format!(
            "{:?}",
            svc.running.decisions.recent(5, &DecisionFilter::default())
        ))
    })?;
    // No duplicate: web-a was quarantined once, with one Event, though a
    // second alert about it came while the server was away.
    assert_eq!(applied_quarantines(&svc, &a), 1);
    assert_eq!(quarantine_events(cluster, &ns, "web-a").await?, 1);
    assert_eq!(quarantine_events(cluster, &ns, "web-b").await?, 1);
    svc.stop().await;
    Ok(())
}

/// What the README says: a person's removal of the quarantine label is a
/// release Riposte does not undo, and a person's additions to the deny-all
/// policy survive Riposte's next apply (field manager `riposte` claims only
/// the fields it writes).
async fn hand_edits_between_riposte_writes(cluster: &'static RealCluster) -> anyhow::Result<()> {
    let ns = cluster.namespace("shop", &[]).await?;
    let ips = cluster.ip_block();
    for (n, name) in [(1, "web-a"), (2, "web-b"), (3, "web-c")] {
        cluster
            .pod(&ns, name, &[("app", "web")], &ips.ip(n))
            .await?;
    }
    let svc = real_cluster::start(cluster, &[("q.rhai", QUARANTINE)], |_, _| {}).await?;
    send_c2(&svc, &ips.ip(1), 1).await?;
    eventually_ok(WAIT, || quarantined(cluster, &ns, "web-a")).await?;
    let admin = cluster.admin().await?;
    // A person adds an ingress rule for forensics to Riposte's policy.
    let policies = Api::<NetworkPolicy>::namespaced(admin.clone(), &ns);
    let forensics = json!({"spec": {"ingress": [{"from": [{"namespaceSelector":
        {"matchLabels": {"kubernetes.io/metadata.name": "forensics"}}}]}]}});
    policies
        .patch(
            "riposte-quarantine",
            &PatchParams::default(),
            &Patch::Merge(&forensics),
        )
        .await?;
    // Riposte writes the policy again for the next quarantined pod: its
    // action-id label names the quarantine that applied it last.
    let action_id = |p: &serde_json::Value| p["metadata"]["labels"]["riposte.io/action-id"].clone();
    let first = cluster
        .get::<NetworkPolicy>(&ns, "riposte-quarantine")
        .await?
        .unwrap_or_default();
    anyhow::ensure!(!action_id(&first).is_null(), "no action-id label: {first}");
    send_c2(&svc, &ips.ip(2), 2).await?;
    eventually_ok(WAIT, || quarantined(cluster, &ns, "web-b")).await?;
    let policy = eventually_ok(WAIT, || async {
        let p = cluster
            .get::<NetworkPolicy>(&ns, "riposte-quarantine")
            .await?
            .unwrap_or_default();
        anyhow::ensure!(
            action_id(&p) != action_id(&first),
            "the policy not applied again for web-b: {}",
            p["metadata"]
        );
        Ok(p)
    })
    .await?;
    assert_eq!(
        policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]
            ["kubernetes.io/metadata.name"],
        "forensics",
        "Riposte's apply removed a person's rule: {}",
        policy["spec"]
    );
    // A person takes the label off web-a: that is a release, not undone.
    let pods = Api::<Pod>::namespaced(admin, &ns);
    let unlabel = json!({"metadata": {"labels": {"riposte.io/quarantine": null}}});
    pods.patch("web-a", &PatchParams::default(), &Patch::Merge(&unlabel))
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let a = cluster.get::<Pod>(&ns, "web-a").await?.unwrap_or_default();
    assert_eq!(label(&a, "riposte.io/quarantine"), None, "relabelled");
    let states = svc
        .running
        .kube
        .as_ref()
        .map(|k| k.index().quarantined())
        .unwrap_or_default();
    assert!(
        !states
            .iter()
            .any(|s| s.pod.name == "web-a" && s.pod.namespace == ns),
        "the index still counts web-a as quarantined"
    );
    svc.stop().await;
    Ok(())
}
