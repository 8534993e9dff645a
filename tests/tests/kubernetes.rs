//! End to end against the real kube-apiserver and controller manager
//! (`../shared/k8s`, see `riposte_tests::real_k8s`), Riposte running as the
//! `riposte-test` user with the shipped ClusterRole: a C2 threat log over
//! syslog quarantines the pod of a real Deployment; the expiry releases it,
//! also across a restart; guardrails refuse protected namespaces, cap a
//! flood and hold to the workload share the ReplicaSet's own status gives;
//! detach makes the ReplicaSet create a real replacement, and release
//! deletes the detached pod or gives it back to its ReplicaSet.

use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use riposte_engine::decide::decision::{ActionStatus, DecisionFilter};
use riposte_tests::real_cluster::{self, label, send_c2, WAIT};
use riposte_tests::real_k8s::{eventually_ok, RealCluster};
use riposte_tests::service::Service;
use serde_json::Value;

/// Quarantines the source pod of any high or critical spyware alert.
const QUICK_QUARANTINE: &str = r#"// name: quick-quarantine
// description: quarantine the source pod of a C2 alert, briefly (tests)
// trigger: threat.type = spyware, severity >= high
// mode: enforce
let pod = event.source.pod;
if pod != () {
    quarantine(pod, #{ ttl: "TTL", reason: `C2 traffic to ${event.destination.ip}` });
}
"#;

/// One test of this file at a time. Every Riposte these tests start
/// watches the whole cluster and, as its leader, releases at expiry every
/// quarantine it learns of, with its own settings: side by side, the
/// detach-and-delete test's service released the detach-and-restore test's
/// pod (deleted it) and the other way round.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn start(
    cluster: &RealCluster,
    ttl: &str,
    adjust: impl FnOnce(&mut riposte_engine::config::Config),
) -> anyhow::Result<Service> {
    let playbook = QUICK_QUARANTINE.replace("TTL", ttl);
    real_cluster::start(cluster, &[("quick.rhai", &playbook)], |c, _| adjust(c)).await
}

async fn pod(cluster: &RealCluster, ns: &str, name: &str) -> anyhow::Result<Value> {
    cluster
        .get::<Pod>(ns, name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("pod {ns}/{name} is gone"))
}

async fn quarantined(cluster: &RealCluster, ns: &str, name: &str) -> anyhow::Result<Value> {
    let p = pod(cluster, ns, name).await?;
    match label(&p, "riposte.io/quarantine") {
        Some("true") => Ok(p),
        other => anyhow::bail!("{ns}/{name} carries quarantine label {other:?}"),
    }
}

async fn not_quarantined(cluster: &RealCluster, ns: &str, name: &str) -> anyhow::Result<()> {
    let p = pod(cluster, ns, name).await?;
    match label(&p, "riposte.io/quarantine") {
        None => Ok(()),
        Some(v) => anyhow::bail!("{ns}/{name} still carries quarantine={v}"),
    }
}

async fn policy(cluster: &RealCluster, ns: &str) -> anyhow::Result<Value> {
    cluster
        .get::<NetworkPolicy>(ns, "riposte-quarantine")
        .await?
        .ok_or_else(|| anyhow::anyhow!("no riposte-quarantine policy in {ns}"))
}

async fn no_policy(cluster: &RealCluster, ns: &str) -> anyhow::Result<()> {
    match cluster
        .get::<NetworkPolicy>(ns, "riposte-quarantine")
        .await?
    {
        None => Ok(()),
        Some(_) => anyhow::bail!("riposte-quarantine still in {ns}"),
    }
}

fn decisions(svc: &Service) -> String {
    format!(
        "{:?}",
        svc.running.decisions.recent(5, &DecisionFilter::default())
    )
}

/// The deny-all policy selects the quarantine label, both directions, and
/// the real server recorded it as Riposte's own apply.
fn check_deny_all(policy: &Value) {
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"]["riposte.io/quarantine"],
        "true"
    );
    let types: Vec<&str> = policy["spec"]["policyTypes"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        types.contains(&"Ingress") && types.contains(&"Egress"),
        "{types:?}"
    );
    assert_eq!(
        policy["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "riposte"
    );
    let managers: Vec<(&str, &str)> = policy["metadata"]["managedFields"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|f| {
                    (
                        f["manager"].as_str().unwrap_or(""),
                        f["operation"].as_str().unwrap_or(""),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(managers.contains(&("riposte", "Apply")), "{managers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c2_log_quarantines_the_pod_and_the_expiry_releases_it_across_a_restart(
) -> anyhow::Result<()> {
    let _one_at_a_time = SERIAL.lock().await;
    let cluster = real_cluster::cluster().await?;
    let ns = cluster.namespace("shop", &[("team", "payments")]).await?;
    let ips = cluster.ip_block();
    let pods = cluster
        .deployment(
            &ns,
            "checkout",
            &[("app", "checkout")],
            3,
            &mut ips.from(17),
        )
        .await?;
    let victim = pods
        .get(&ips.ip(17))
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no pod at {}: {pods:?}", ips.ip(17)))?;

    let svc = start(cluster, "8s", |_| {}).await?;
    send_c2(&svc, &ips.ip(17), 1).await?;

    let p = eventually_ok(WAIT, || quarantined(cluster, &ns, &victim))
        .await
        .map_err(|e| e.context(decisions(&svc)))?;
    let annotations = &p["metadata"]["annotations"];
    assert_eq!(annotations["riposte.io/playbook"], "quick-quarantine");
    assert!(annotations["riposte.io/expires-at"].is_string());
    assert!(annotations["riposte.io/reason"]
        .as_str()
        .unwrap_or("")
        .contains("203.0.113.66"));
    // The deny-all policy selects the quarantine label, both directions,
    // and the real server accepted it as Riposte's own apply.
    let policy = eventually_ok(WAIT, || policy(cluster, &ns)).await?;
    check_deny_all(&policy);
    // The other replicas are untouched.
    for (ip, name) in &pods {
        if *name != victim {
            not_quarantined(cluster, &ns, name)
                .await
                .map_err(|e| e.context(ip.clone()))?;
        }
    }
    // A Kubernetes Event on the pod says why.
    eventually_ok(WAIT, || async {
        let events = cluster.list::<Event>(&ns).await?;
        events
            .iter()
            .any(|e| e["reason"] == "RiposteQuarantined" && e["involvedObject"]["name"] == *victim)
            .then_some(())
            .ok_or_else(|| anyhow::anyhow!("no RiposteQuarantined event: {events:?}"))
    })
    .await?;

    // Restart Riposte before the quarantine expires: the expiry is read back
    // from the pod and still fires.
    let svc = svc.restart().await?;
    real_cluster::wait_ready(&svc).await?;
    eventually_ok(Duration::from_secs(30), || {
        not_quarantined(cluster, &ns, &victim)
    })
    .await?;
    eventually_ok(WAIT, || no_policy(cluster, &ns))
        .await
        .map_err(|e| e.context("the policy outlived the last quarantined pod"))?;
    riposte_tests::eventually(WAIT, || {
        svc.running
            .decisions
            .recent(
                10,
                &DecisionFilter {
                    playbook: Some("riposte-expiry".into()),
                    ..DecisionFilter::default()
                },
            )
            .iter()
            .any(|d| d.actions.iter().any(|a| a.status == ActionStatus::Applied))
            .then_some(())
    })
    .await
    .map_err(|_| anyhow::anyhow!("the expiry's release is not on the decision record"))?;
    svc.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_in_kube_system_is_refused() -> anyhow::Result<()> {
    let _one_at_a_time = SERIAL.lock().await;
    let cluster = real_cluster::cluster().await?;
    let ip = cluster.ip_block().ip(10);
    let name = format!("coredns-{:08x}", rand::random::<u32>());
    cluster
        .pod("kube-system", &name, &[("k8s-app", "kube-dns")], &ip)
        .await?;
    let svc = start(cluster, "1h", |_| {}).await?;
    send_c2(&svc, &ip, 1).await?;
    let refused = riposte_tests::eventually(WAIT, || {
        svc.running
            .decisions
            .recent(5, &DecisionFilter::default())
            .into_iter()
            .flat_map(|d| d.actions)
            .find(|a| a.status == ActionStatus::Refused)
    })
    .await?;
    assert_eq!(refused.code.as_deref(), Some("protected_namespace"));
    not_quarantined(cluster, "kube-system", &name).await?;
    assert!(
        svc.metric(
            "riposte_guardrail_refusals_total",
            &[("reason", "protected_namespace")]
        ) >= 1.0
    );
    cluster.delete::<Pod>("kube-system", &name).await?;
    svc.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_spoofed_c2_logs_quarantines_no_more_than_the_rate_cap() -> anyhow::Result<()> {
    let _one_at_a_time = SERIAL.lock().await;
    let cluster = real_cluster::cluster().await?;
    // Enough pods to go well past the cap (20 a minute by default); fewer
    // than on the stand-in because every one is a real write to etcd.
    let count = 120;
    let mut namespaces = Vec::new();
    for _ in 0..6 {
        namespaces.push(cluster.namespace("team", &[]).await?);
    }
    let ips = cluster.ip_block();
    let addresses: Vec<(String, String, String)> = (0..count)
        .map(|i| {
            (
                namespaces[i % namespaces.len()].clone(),
                format!("app-{i}"),
                ips.ip(i as u8 + 1),
            )
        })
        .collect();
    let created: Vec<anyhow::Result<Pod>> = futures::stream::iter(addresses.iter())
        .map(|(ns, name, ip)| async move { cluster.pod(ns, name, &[("app", name)], ip).await })
        .buffer_unordered(8)
        .collect()
        .await;
    for c in created {
        c?;
    }
    let svc = start(cluster, "1h", |_| {}).await?;
    let lines: Vec<String> = addresses
        .iter()
        .enumerate()
        .map(|(i, (_, _, ip))| {
            riposte_tests::lines::with_bsd_header(&riposte_tests::lines::c2(
                ip,
                "203.0.113.66",
                i as u64,
            ))
        })
        .collect();
    riposte_tests::syslog::send_tcp(
        svc.running.tcp[0],
        &lines,
        riposte_tests::syslog::Framing::OctetCounting,
    )
    .await?;
    riposte_tests::eventually(Duration::from_secs(30), || {
        (svc.metric("riposte_events_processed_total", &[]) >= count as f64).then_some(())
    })
    .await?;
    riposte_tests::eventually(Duration::from_secs(60), || {
        svc.running
            .decisions
            .recent(2000, &DecisionFilter::default())
            .iter()
            .all(|d| d.actions.iter().all(|a| a.status != ActionStatus::Queued))
            .then_some(())
    })
    .await
    .map_err(|_| anyhow::anyhow!("actions still queued after a minute"))?;
    let mut quarantined = 0;
    for ns in &namespaces {
        quarantined += cluster
            .list::<Pod>(ns)
            .await?
            .iter()
            .filter(|p| label(p, "riposte.io/quarantine").is_some())
            .count();
    }
    let cap =
        riposte_engine::act::guardrails::GuardrailConfig::default().max_containments_per_minute;
    assert!(
        quarantined <= cap,
        "{quarantined} pods quarantined, cap {cap}"
    );
    assert!(quarantined > 0, "nothing quarantined: {}", decisions(&svc));
    let refused = svc.metric(
        "riposte_guardrail_refusals_total",
        &[("reason", "rate_limit")],
    ) + svc.metric(
        "riposte_guardrail_refusals_total",
        &[("reason", "namespace_rate_limit")],
    );
    assert!(
        refused >= (count - cap) as f64,
        "refusals counted: {refused}"
    );
    svc.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workload_share_comes_from_the_replicasets_own_status() -> anyhow::Result<()> {
    let _one_at_a_time = SERIAL.lock().await;
    let cluster = real_cluster::cluster().await?;
    let ns = cluster.namespace("shop", &[]).await?;
    let ips = cluster.ip_block();
    let pods = cluster
        .deployment(&ns, "cart", &[("app", "cart")], 2, &mut ips.from(1))
        .await?;
    // Half of two ready replicas: one may be contained, the second not.
    let svc = start(cluster, "1h", |_| {}).await?;
    send_c2(&svc, &ips.ip(1), 1).await?;
    let first = pods.get(&ips.ip(1)).cloned().unwrap_or_default();
    eventually_ok(WAIT, || quarantined(cluster, &ns, &first)).await?;
    send_c2(&svc, &ips.ip(2), 2).await?;
    let refused = riposte_tests::eventually(WAIT, || {
        svc.running
            .decisions
            .recent(5, &DecisionFilter::default())
            .into_iter()
            .flat_map(|d| d.actions)
            .find(|a| a.status == ActionStatus::Refused)
    })
    .await?;
    assert_eq!(
        refused.code.as_deref(),
        Some("workload_share"),
        "{refused:?}"
    );
    let second = pods.get(&ips.ip(2)).cloned().unwrap_or_default();
    not_quarantined(cluster, &ns, &second).await?;
    svc.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detach_makes_the_replicaset_create_a_replacement_and_release_deletes_the_pod(
) -> anyhow::Result<()> {
    let _one_at_a_time = SERIAL.lock().await;
    let cluster = real_cluster::cluster().await?;
    let ns = cluster.namespace("shop", &[]).await?;
    let ips = cluster.ip_block();
    let pods = cluster
        .deployment(
            &ns,
            "checkout",
            &[("app", "checkout")],
            2,
            &mut ips.from(17),
        )
        .await?;
    let victim = pods.get(&ips.ip(17)).cloned().unwrap_or_default();
    let svc = start(cluster, "6s", |c| {
        c.kubernetes.quarantine.detach = true;
        c.kubernetes.quarantine.release_detached =
            riposte_connectors::kubernetes::DetachedRelease::Delete;
    })
    .await?;
    send_c2(&svc, &ips.ip(17), 1).await?;
    let p = eventually_ok(WAIT, || async {
        let p = quarantined(cluster, &ns, &victim).await?;
        p["metadata"]["annotations"]["riposte.io/detached-labels"]
            .is_string()
            .then_some(p)
            .ok_or_else(|| anyhow::anyhow!("not detached yet"))
    })
    .await
    .map_err(|e| e.context(decisions(&svc)))?;
    assert_eq!(label(&p, "app"), None, "{}", p["metadata"]["labels"]);
    // Out of its ReplicaSet: no controller owner reference any more, once
    // the controller manager's ReplicaSet controller has seen the labels
    // go and let go of the pod (asynchronously)…
    eventually_ok(WAIT, || async {
        let p = quarantined(cluster, &ns, &victim).await?;
        let owned = p["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|o| o.iter().any(|r| r["controller"] == true));
        anyhow::ensure!(!owned, "still owned: {}", p["metadata"]["ownerReferences"]);
        Ok(())
    })
    .await?;
    // …so the ReplicaSet makes a replacement: two pods match again.
    let matching = cluster
        .run_pods(&ns, "app=checkout", 2, &mut ips.from(30))
        .await?;
    assert!(!matching.values().any(|n| *n == victim), "{matching:?}");
    // Release (the TTL) deletes the detached pod, its replacement runs.
    eventually_ok(Duration::from_secs(30), || async {
        match cluster.get::<Pod>(&ns, &victim).await? {
            None => Ok(()),
            Some(p) if p["metadata"]["deletionTimestamp"].is_string() => Ok(()),
            Some(_) => anyhow::bail!("the detached pod is still there"),
        }
    })
    .await
    .map_err(|e| e.context(decisions(&svc)))?;
    eventually_ok(WAIT, || no_policy(cluster, &ns)).await?;
    svc.stop().await;
    Ok(())
}

/// Every version of pod `ns/name` from resource version `rv` on, until
/// `done` says it has seen what it waits for (its answer is returned).
async fn watch_pod<T: Send + 'static>(
    cluster: &RealCluster,
    ns: &str,
    name: &str,
    rv: &str,
    mut done: impl FnMut(&Value) -> Option<T> + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<T>>> {
    use kube::api::{WatchEvent, WatchParams};
    let api = kube::Api::<Pod>::namespaced(cluster.admin().await?, ns);
    let wp = WatchParams::default().fields(&format!("metadata.name={name}"));
    let rv = rv.to_owned();
    let name = name.to_owned();
    Ok(tokio::spawn(async move {
        let mut stream = api.watch(&wp, &rv).await?.boxed();
        while let Some(ev) = stream.next().await {
            match ev? {
                WatchEvent::Added(p) | WatchEvent::Modified(p) => {
                    if let Some(t) = done(&serde_json::to_value(&p)?) {
                        return Ok(t);
                    }
                }
                WatchEvent::Deleted(_) => anyhow::bail!("{name} was deleted first"),
                WatchEvent::Bookmark(_) => {}
                WatchEvent::Error(e) => anyhow::bail!("watch of {name}: {e:?}"),
            }
        }
        anyhow::bail!("the watch of {name} ended")
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detach_then_release_restores_the_labels_and_the_replicaset_settles_back_to_its_count(
) -> anyhow::Result<()> {
    let _one_at_a_time = SERIAL.lock().await;
    use k8s_openapi::api::apps::v1::ReplicaSet;
    let cluster = real_cluster::cluster().await?;
    let ns = cluster.namespace("shop", &[]).await?;
    let ips = cluster.ip_block();
    let pods = cluster
        .deployment(
            &ns,
            "checkout",
            &[("app", "checkout")],
            2,
            &mut ips.from(17),
        )
        .await?;
    let victim = pods.get(&ips.ip(17)).cloned().unwrap_or_default();
    let before = pod(cluster, &ns, &victim).await?;
    // app=checkout and the ReplicaSet's pod-template-hash.
    let original = before["metadata"]["labels"].clone();
    assert!(original["pod-template-hash"].is_string(), "{original}");

    // Every version of the pod from now on: the restored one may be the
    // surplus the ReplicaSet deletes a moment later, so a poll could miss it.
    let rv = before["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_owned();
    let want = original.clone();
    let mut was_detached = false;
    let restored = watch_pod(cluster, &ns, &victim, &rv, move |p| {
        let annotations = p["metadata"]["annotations"].as_object();
        let detached = annotations.is_some_and(|a| a.contains_key("riposte.io/detached-labels"));
        was_detached |= detached;
        (was_detached && !detached && p["metadata"]["labels"] == want).then(|| p.clone())
    })
    .await?;

    let svc = start(cluster, "8s", |c| {
        c.kubernetes.quarantine.detach = true;
        c.kubernetes.quarantine.release_detached =
            riposte_connectors::kubernetes::DetachedRelease::Restore;
    })
    .await?;
    send_c2(&svc, &ips.ip(17), 1).await?;
    eventually_ok(WAIT, || async {
        let p = quarantined(cluster, &ns, &victim).await?;
        p["metadata"]["annotations"]["riposte.io/detached-labels"]
            .is_string()
            .then_some(p)
            .ok_or_else(|| anyhow::anyhow!("not detached yet"))
    })
    .await
    .map_err(|e| e.context(decisions(&svc)))?;
    // The ReplicaSet lets go of it and makes a replacement.
    let matching = cluster
        .run_pods(&ns, "app=checkout", 2, &mut ips.from(30))
        .await?;
    assert!(!matching.values().any(|n| *n == victim), "{matching:?}");
    eventually_ok(WAIT, || policy(cluster, &ns)).await?;

    // The expiry releases it: its original labels are back, and nothing of
    // the quarantine is left on it.
    let p = tokio::time::timeout(WAIT, restored)
        .await
        .map_err(|_| anyhow::anyhow!("never restored: {}", decisions(&svc)))???;
    assert_eq!(p["metadata"]["labels"], original);
    assert_eq!(label(&p, "riposte.io/quarantine"), None);
    let left: Vec<&String> = p["metadata"]["annotations"]
        .as_object()
        .map(|a| a.keys().filter(|k| k.starts_with("riposte.io/")).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "quarantine annotations left: {left:?}");

    // Back in its ReplicaSet's selector, it makes one pod too many: the
    // ReplicaSet adopts it and scales back to its desired two, and no pod
    // of the workload is quarantined.
    let settled = eventually_ok(WAIT, || async {
        let sets = cluster.list::<ReplicaSet>(&ns).await?;
        let [rs] = sets.as_slice() else {
            anyhow::bail!("{} ReplicaSets", sets.len());
        };
        let live: Vec<Value> = cluster
            .list::<Pod>(&ns)
            .await?
            .into_iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .filter(|p| label(p, "app") == Some("checkout"))
            .collect();
        let (want, have) = (&rs["spec"]["replicas"], &rs["status"]["replicas"]);
        // Adopted again: the ReplicaSet controller adds its owner
        // reference asynchronously once the labels match.
        let adopted = live.iter().all(|p| {
            p["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|o| {
                    o.iter()
                        .any(|r| r["controller"] == true && r["kind"] == "ReplicaSet")
                })
        });
        if live.len() == 2 && *want == 2 && *have == 2 && adopted {
            Ok(live)
        } else {
            anyhow::bail!(
                "{} live pods, ReplicaSet wants {want} has {have}",
                live.len()
            )
        }
    })
    .await?;
    for p in &settled {
        assert_eq!(label(p, "riposte.io/quarantine"), None, "{p}");
        let owned = p["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|o| {
                o.iter()
                    .any(|r| r["controller"] == true && r["kind"] == "ReplicaSet")
            });
        assert!(owned, "not the ReplicaSet's: {}", p["metadata"]);
    }
    // No quarantined pod left in the namespace: the deny-all policy goes.
    eventually_ok(WAIT, || no_policy(cluster, &ns)).await?;
    svc.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_last_quarantined_pod_removes_the_deny_all_policy() -> anyhow::Result<()> {
    let _one_at_a_time = SERIAL.lock().await;
    let cluster = real_cluster::cluster().await?;
    let ns = cluster.namespace("shop", &[]).await?;
    let ip = cluster.ip_block().ip(17);
    cluster.pod(&ns, "web-1", &[("app", "web")], &ip).await?;
    let svc = start(cluster, "1h", |_| {}).await?;
    send_c2(&svc, &ip, 1).await?;
    eventually_ok(WAIT, || policy(cluster, &ns)).await?;
    cluster.delete::<Pod>(&ns, "web-1").await?;
    eventually_ok(WAIT, || no_policy(cluster, &ns))
        .await
        .map_err(|e| e.context("the deny-all policy outlived its last pod"))?;
    svc.stop().await;
    Ok(())
}

// Leader election between two Riposte processes (the real binary) is
// engine/tests/leader_lease.rs: only the crate that owns the binary gets
// its path from cargo.
