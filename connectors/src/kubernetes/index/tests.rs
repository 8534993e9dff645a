use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::json;

use super::*;

const LABEL: &str = "riposte.io/quarantine";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn pod(v: serde_json::Value) -> Pod {
    serde_json::from_value(v).expect("a valid pod")
}

/// A pod with the fields the rules look at.
fn running(ns: &str, name: &str, ips: &[&str], started: &str) -> serde_json::Value {
    let pod_ips: Vec<_> = ips.iter().map(|i| json!({ "ip": i })).collect();
    json!({
        "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}"), "labels": {"app": "web"}},
        "spec": {"nodeName": "node-1", "serviceAccountName": "web", "containers": []},
        "status": {
            "phase": "Running",
            "podIP": ips.first().copied().unwrap_or(""),
            "podIPs": pod_ips,
            "startTime": started,
            "conditions": [{"type": "Ready", "status": "True"}]
        }
    })
}

fn with(mut v: serde_json::Value, path: &[&str], value: serde_json::Value) -> serde_json::Value {
    let mut cur = &mut v;
    for p in &path[..path.len() - 1] {
        cur = &mut cur[*p];
    }
    cur[path[path.len() - 1]] = value;
    v
}

fn owned(v: serde_json::Value, kind: &str, name: &str) -> serde_json::Value {
    with(
        v,
        &["metadata", "ownerReferences"],
        json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "o", "controller": true}]),
    )
}

fn controller(kind: &str, name: &str) -> Option<Controller> {
    Some(Controller {
        kind: kind.into(),
        name: name.into(),
    })
}

#[test]
fn resolves_ipv4_and_ipv6_to_the_same_pod() {
    let index = PodIndex::offline(LABEL);
    index.apply_pod(pod(running(
        "shop",
        "web-1",
        &["10.244.1.17", "fd00::17"],
        "2025-03-01T10:00:00Z",
    )));
    let v4 = index.resolve(ip("10.244.1.17")).expect("v4 resolves");
    let v6 = index.resolve(ip("fd00::17")).expect("v6 resolves");
    assert!(Arc::ptr_eq(&v4, &v6), "one Arc per pod");
    assert_eq!(v4.name, "web-1");
    assert_eq!(v4.node.as_deref(), Some("node-1"));
    assert_eq!(v4.service_account.as_deref(), Some("web"));
    assert_eq!(v4.phase.as_deref(), Some("Running"));
    assert!(index.resolve(ip("10.244.1.18")).is_none());
}

#[test]
fn a_finished_pod_gives_up_its_address() {
    let index = PodIndex::offline(LABEL);
    let done = with(
        running("batch", "job-1", &["10.0.0.5"], "2025-03-01T09:00:00Z"),
        &["status", "phase"],
        json!("Succeeded"),
    );
    index.apply_pod(pod(done));
    assert!(
        index.resolve(ip("10.0.0.5")).is_none(),
        "Succeeded pods claim nothing"
    );

    index.apply_pod(pod(running(
        "batch",
        "job-2",
        &["10.0.0.6"],
        "2025-03-01T09:00:00Z",
    )));
    assert!(index.resolve(ip("10.0.0.6")).is_some());
    let failed = with(
        running("batch", "job-2", &["10.0.0.6"], "2025-03-01T09:00:00Z"),
        &["status", "phase"],
        json!("Failed"),
    );
    index.apply_pod(pod(failed));
    assert!(
        index.resolve(ip("10.0.0.6")).is_none(),
        "a pod that failed lets go"
    );
}

#[test]
fn when_two_pods_claim_an_address_the_running_newest_wins() {
    let index = PodIndex::offline(LABEL);
    // The old pod is being deleted and still reports the address.
    let old = with(
        running("shop", "old", &["10.0.0.9"], "2025-03-01T08:00:00Z"),
        &["metadata", "deletionTimestamp"],
        json!("2025-03-01T10:00:00Z"),
    );
    index.apply_pod(pod(old));
    assert_eq!(
        index
            .resolve(ip("10.0.0.9"))
            .expect("terminating pods keep it alone")
            .name,
        "old"
    );
    let pending = with(
        running("shop", "pending", &["10.0.0.9"], "2025-03-01T10:00:01Z"),
        &["status", "phase"],
        json!("Pending"),
    );
    index.apply_pod(pod(pending));
    assert_eq!(
        index.resolve(ip("10.0.0.9")).expect("claimed").name,
        "pending"
    );

    index.apply_pod(pod(running(
        "shop",
        "a-older",
        &["10.0.0.9"],
        "2025-03-01T09:00:00Z",
    )));
    assert_eq!(
        index.resolve(ip("10.0.0.9")).expect("claimed").name,
        "a-older",
        "Running beats Pending"
    );
    index.apply_pod(pod(running(
        "shop",
        "z-newer",
        &["10.0.0.9"],
        "2025-03-01T09:30:00Z",
    )));
    assert_eq!(
        index.resolve(ip("10.0.0.9")).expect("claimed").name,
        "z-newer",
        "newest Running wins"
    );

    index.delete_pod("shop", "z-newer");
    assert_eq!(
        index.resolve(ip("10.0.0.9")).expect("claimed").name,
        "a-older",
        "the next claimant takes over"
    );
    index.delete_pod("shop", "a-older");
    index.delete_pod("shop", "pending");
    index.delete_pod("shop", "old");
    assert!(index.resolve(ip("10.0.0.9")).is_none());
}

#[test]
fn a_pod_that_moves_address_releases_the_old_one() {
    let index = PodIndex::offline(LABEL);
    index.apply_pod(pod(running(
        "shop",
        "web",
        &["10.0.0.1"],
        "2025-03-01T08:00:00Z",
    )));
    index.apply_pod(pod(running(
        "shop",
        "web",
        &["10.0.0.2"],
        "2025-03-01T08:00:00Z",
    )));
    assert!(index.resolve(ip("10.0.0.1")).is_none());
    assert_eq!(
        index.resolve(ip("10.0.0.2")).expect("new address").name,
        "web"
    );
}

#[test]
fn host_network_pods_claim_no_address() {
    let index = PodIndex::offline(LABEL);
    let host = with(
        running(
            "monitoring",
            "node-exporter-x",
            &["192.168.1.10"],
            "2025-03-01T08:00:00Z",
        ),
        &["spec", "hostNetwork"],
        json!(true),
    );
    index.apply_pod(pod(host));
    assert!(
        index.resolve(ip("192.168.1.10")).is_none(),
        "a node address names no single pod"
    );
    assert!(index.pod("monitoring", "node-exporter-x").is_some());
}

#[test]
fn owners_resolve_to_the_top_workload_in_any_arrival_order() {
    let index = PodIndex::offline(LABEL);
    // Pod first, ReplicaSet later: the pod is re-resolved when it shows up.
    index.apply_pod(pod(owned(
        running(
            "shop",
            "checkout-7d9f-x",
            &["10.0.0.1"],
            "2025-03-01T08:00:00Z",
        ),
        "ReplicaSet",
        "checkout-7d9f",
    )));
    let before = index.resolve(ip("10.0.0.1")).expect("resolves");
    assert_eq!(before.owner_kind.as_deref(), Some("ReplicaSet"));
    index.apply_owner(
        "ReplicaSet",
        "shop",
        "checkout-7d9f",
        controller("Deployment", "checkout"),
    );
    let after = index.resolve(ip("10.0.0.1")).expect("resolves");
    assert_eq!(after.owner_kind.as_deref(), Some("Deployment"));
    assert_eq!(after.owner_name.as_deref(), Some("checkout"));
    assert_eq!(
        before.owner_kind.as_deref(),
        Some("ReplicaSet"),
        "old snapshots are not mutated"
    );

    // Job first, pod later.
    index.apply_owner(
        "Job",
        "batch",
        "report-2890",
        controller("CronJob", "report"),
    );
    index.apply_pod(pod(owned(
        running(
            "batch",
            "report-2890-abc",
            &["10.0.0.2"],
            "2025-03-01T08:00:00Z",
        ),
        "Job",
        "report-2890",
    )));
    let job_pod = index.resolve(ip("10.0.0.2")).expect("resolves");
    assert_eq!(job_pod.owner_kind.as_deref(), Some("CronJob"));
    assert_eq!(job_pod.owner_name.as_deref(), Some("report"));

    // StatefulSets and DaemonSets own their pods directly.
    index.apply_pod(pod(owned(
        running("db", "pg-0", &["10.0.0.3"], "2025-03-01T08:00:00Z"),
        "StatefulSet",
        "pg",
    )));
    assert_eq!(
        index
            .resolve(ip("10.0.0.3"))
            .expect("resolves")
            .owner_kind
            .as_deref(),
        Some("StatefulSet")
    );

    // A bare ReplicaSet (no controller) is the top itself.
    index.apply_owner("ReplicaSet", "shop", "bare", None);
    index.apply_pod(pod(owned(
        running("shop", "bare-x", &["10.0.0.4"], "2025-03-01T08:00:00Z"),
        "ReplicaSet",
        "bare",
    )));
    assert_eq!(
        index
            .resolve(ip("10.0.0.4"))
            .expect("resolves")
            .owner_name
            .as_deref(),
        Some("bare")
    );

    // The ReplicaSet goes away: the pod falls back to its direct owner.
    index.delete_owner("ReplicaSet", "shop", "checkout-7d9f");
    assert_eq!(
        index
            .resolve(ip("10.0.0.1"))
            .expect("resolves")
            .owner_kind
            .as_deref(),
        Some("ReplicaSet")
    );
}

#[test]
fn namespace_labels_are_merged_and_follow_changes() {
    let index = PodIndex::offline(LABEL);
    index.apply_pod(pod(running(
        "shop",
        "web",
        &["10.0.0.1"],
        "2025-03-01T08:00:00Z",
    )));
    assert!(index
        .resolve(ip("10.0.0.1"))
        .expect("resolves")
        .namespace_labels
        .is_empty());
    assert_eq!(
        index.namespace_labels("shop"),
        None,
        "unknown until the namespace is seen"
    );
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": {"name": "shop", "labels": {"team": "payments", "riposte.io/exempt": "false"}}
    }))
    .expect("namespace");
    index.apply_namespace(ns);
    let ctx = index.resolve(ip("10.0.0.1")).expect("resolves");
    assert_eq!(
        ctx.namespace_labels.get("team").map(String::as_str),
        Some("payments")
    );
    assert_eq!(index.namespace_labels("shop").expect("known").len(), 2);
    index.delete_namespace("shop");
    assert!(index
        .resolve(ip("10.0.0.1"))
        .expect("resolves")
        .namespace_labels
        .is_empty());
}

#[test]
fn selectors_and_workload_counts_see_live_pods_only() {
    let index = PodIndex::offline(LABEL);
    index.apply_owner(
        "ReplicaSet",
        "shop",
        "web-1",
        controller("Deployment", "web"),
    );
    for (i, name) in ["web-1-a", "web-1-b", "web-1-c", "web-1-d"]
        .iter()
        .enumerate()
    {
        let mut p = owned(
            running(
                "shop",
                name,
                &[&format!("10.0.0.{}", i + 1)],
                "2025-03-01T08:00:00Z",
            ),
            "ReplicaSet",
            "web-1",
        );
        if *name == "web-1-b" {
            p = with(p, &["metadata", "labels", LABEL], json!("true"));
        }
        if *name == "web-1-c" {
            p = with(
                p,
                &["status", "conditions"],
                json!([{"type": "Ready", "status": "False"}]),
            );
        }
        if *name == "web-1-d" {
            p = with(
                p,
                &["metadata", "deletionTimestamp"],
                json!("2025-03-01T10:00:00Z"),
            );
        }
        index.apply_pod(pod(p));
    }
    let counts = index.workload_counts("shop", "Deployment", "web");
    assert_eq!(
        counts,
        WorkloadCounts {
            pods: 3,
            ready: 1,
            quarantined: 1
        }
    );
    assert_eq!(
        index.workload_counts("shop", "Deployment", "other"),
        WorkloadCounts::default()
    );

    let sel = BTreeMap::from([("app".to_owned(), "web".to_owned())]);
    let names: Vec<String> = index
        .pods_matching("shop", &sel)
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(
        names,
        vec!["web-1-a", "web-1-b", "web-1-c"],
        "sorted, without the terminating pod"
    );
    let first = index
        .pods_matching("shop", &sel)
        .into_iter()
        .next()
        .expect("one");
    assert_eq!(first.uid.as_deref(), Some("uid-web-1-a"));
    assert!(index.pods_matching("other", &sel).is_empty());
}

#[tokio::test]
async fn quarantines_are_read_from_the_pod_and_announced() {
    let index = PodIndex::offline(LABEL);
    let mut changes = index.quarantine_changes();
    let base = running("shop", "web", &["10.0.0.1"], "2025-03-01T08:00:00Z");
    index.apply_pod(pod(base.clone()));
    assert!(index.quarantined().is_empty());

    let q = with(
        with(base.clone(), &["metadata", "labels", LABEL], json!("true")),
        &["metadata", "annotations"],
        json!({
            "riposte.io/reason": "C2",
            "riposte.io/expires-at": "2025-03-01T14:00:00Z",
            "riposte.io/action-id": "a1",
            "other.io/big": "dropped"
        }),
    );
    index.apply_pod(pod(q.clone()));
    let list = index.quarantined();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].reason.as_deref(), Some("C2"));
    assert_eq!(list[0].pod.uid.as_deref(), Some("uid-web"));
    match changes.recv().await.expect("a change") {
        QuarantineChange::Set(s) => assert_eq!(s.action_id.as_deref(), Some("a1")),
        other => panic!("expected Set, got {other:?}"),
    }

    // The same state again (a status update) is not a change.
    index.apply_pod(pod(with(q.clone(), &["status", "phase"], json!("Running"))));
    // A longer expiry is.
    index.apply_pod(pod(with(
        q.clone(),
        &["metadata", "annotations", "riposte.io/expires-at"],
        json!("2025-03-01T18:00:00Z"),
    )));
    match changes.recv().await.expect("a change") {
        QuarantineChange::Set(s) => assert_eq!(
            s.expires_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2025-03-01T18:00:00+00:00")
        ),
        other => panic!("expected Set, got {other:?}"),
    }

    index.apply_pod(pod(base));
    assert_eq!(
        changes.recv().await.expect("a change"),
        QuarantineChange::Cleared(PodRef::new("shop", "web").with_uid("uid-web"))
    );
    assert!(index.quarantined().is_empty());

    index.apply_pod(pod(q));
    let _ = changes.recv().await.expect("set again");
    index.delete_pod("shop", "web");
    assert!(matches!(
        changes.recv().await.expect("a change"),
        QuarantineChange::Cleared(_)
    ));
    assert_eq!(index.status().quarantined, 0);
}

#[test]
fn only_the_value_true_quarantines() {
    let index = PodIndex::offline(LABEL);
    index.apply_pod(pod(with(
        running("shop", "web", &["10.0.0.1"], "2025-03-01T08:00:00Z"),
        &["metadata", "labels", LABEL],
        json!("false"),
    )));
    assert!(index.quarantined().is_empty());
}

#[tokio::test]
async fn offline_indexes_are_ready_and_count() {
    let index = PodIndex::offline(LABEL);
    index.ready().await;
    assert!(index.is_ready());
    index.apply_pod(pod(running(
        "shop",
        "web",
        &["10.0.0.1", "fd00::1"],
        "2025-03-01T08:00:00Z",
    )));
    let s = index.status();
    assert_eq!((s.pods, s.addresses, s.watch_errors), (1, 2, 0));
}

#[test]
fn an_election_after_a_refresh_publishes_the_fresh_snapshot() {
    let index = PodIndex::offline(LABEL);
    index.apply_pod(pod(running(
        "shop",
        "web",
        &["10.0.0.1"],
        "2025-03-01T08:00:00Z",
    )));
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "shop", "labels": {"team": "blue"}}}))
            .expect("namespace");
    index.apply_namespace(ns);
    // A weaker claimant arrives: the election re-runs and must keep the
    // refreshed context of the winner, not the one from before.
    let pending = with(
        running("shop", "pending", &["10.0.0.1"], "2025-03-01T09:00:00Z"),
        &["status", "phase"],
        json!("Pending"),
    );
    index.apply_pod(pod(pending));
    let ctx = index.resolve(ip("10.0.0.1")).expect("resolves");
    assert_eq!(ctx.name, "web");
    assert_eq!(
        ctx.namespace_labels.get("team").map(String::as_str),
        Some("blue")
    );
    index.delete_pod("shop", "web");
    assert_eq!(
        index
            .resolve(ip("10.0.0.1"))
            .expect("the other claimant")
            .name,
        "pending"
    );
}

#[test]
fn a_pods_current_addresses_follow_its_status_and_its_claims() {
    let index = PodIndex::offline(LABEL);
    let web = running(
        "shop",
        "web",
        &["10.0.0.1", "fd00::1"],
        "2025-03-01T08:00:00Z",
    );
    index.apply_pod(pod(web.clone()));
    let ips = |name| index.pod_addresses("shop", name);
    assert_eq!(
        ips("web"),
        vec![
            "10.0.0.1".parse::<IpAddr>().expect("ip"),
            "fd00::1".parse().expect("ip")
        ]
    );
    // The sandbox was recreated with a new address (the kubelet writes
    // both fields).
    index.apply_pod(pod(with(
        with(web.clone(), &["status", "podIP"], json!("10.0.0.9")),
        &["status", "podIPs"],
        json!([{ "ip": "10.0.0.9" }]),
    )));
    assert_eq!(ips("web"), vec!["10.0.0.9".parse::<IpAddr>().expect("ip")]);
    assert!(ips("nobody").is_empty());
    // Host-network pods hold their node's address, never their own.
    index.apply_pod(pod(with(
        running("shop", "agent", &["192.168.1.5"], "2025-03-01T08:00:00Z"),
        &["spec", "hostNetwork"],
        json!(true),
    )));
    assert!(ips("agent").is_empty());
}
