//! Quarantine, release, detach, label/annotate/delete, Events and error
//! classes against the Kubernetes API server stand-in.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use riposte_connectors::kubernetes::config::QuarantineConfig;
use riposte_connectors::kubernetes::events::REASON_QUARANTINED;
use riposte_connectors::kubernetes::{
    client, DeleteOutcome, DetachOutcome, DetachedRelease, EventOutcome, EventSpec, EventType,
    KubeError, KubernetesConfig, KubernetesConnector, PodIndex, PodRef, QuarantineSpec,
    ReleaseOutcome,
};
use riposte_standins::kube_api::{fixtures, Fault, KubeApiServer, PodFixture, Workload};
use serde_json::{json, Value};

async fn start(config: KubernetesConfig) -> (KubeApiServer, KubernetesConnector) {
    let kube = KubeApiServer::start().await.expect("the stand-in starts");
    let c = client::build(
        kube.client_config().expect("client config"),
        Duration::from_secs(5),
    )
    .expect("client");
    (kube, KubernetesConnector::new(c, config))
}

fn spec(action_id: &str) -> QuarantineSpec {
    QuarantineSpec {
        action_id: action_id.into(),
        reason: "C2 traffic to 203.0.113.9: Cobalt Strike beacon".into(),
        playbook: Some("c2-quarantine".into()),
        event_id: Some("ev-1".into()),
        expires_at: Some(
            Utc.with_ymd_and_hms(2030, 1, 1, 4, 0, 0)
                .single()
                .expect("time"),
        ),
        detach: None,
    }
}

fn name_of(v: &Value) -> String {
    v["metadata"]["name"].as_str().expect("a name").to_owned()
}

fn pod_ref(v: &Value) -> PodRef {
    PodRef::new(v["metadata"]["namespace"].as_str().expect("ns"), name_of(v))
}

fn shop(kube: &KubeApiServer) -> (Workload, Value, Value) {
    kube.add_namespace("shop", &[]).expect("namespace");
    let web = kube
        .add_deployment("shop", "checkout", &[("app", "checkout")])
        .expect("deployment");
    let a = kube.add_pod(web.pod("10.244.1.17")).expect("pod a");
    let b = kube.add_pod(web.pod("10.244.1.18")).expect("pod b");
    (web, a, b)
}

fn labels(v: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(v["metadata"]["labels"].clone()).unwrap_or_default()
}

fn annotations(v: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(v["metadata"]["annotations"].clone()).unwrap_or_default()
}

#[tokio::test]
async fn quarantine_then_release_round_trip() {
    let (kube, conn) = start(KubernetesConfig::default()).await;
    let (_, a, b) = shop(&kube);
    let (ra, rb) = (pod_ref(&a), pod_ref(&b));

    let r = conn
        .quarantine(&ra, &spec("act-1"))
        .await
        .expect("quarantine a");
    assert!(!r.already_quarantined);
    assert_eq!(r.policy, "riposte-quarantine");
    assert_eq!(r.pod.uid.as_deref(), a["metadata"]["uid"].as_str());
    assert!(r.detach.is_none());

    let stored = kube.get("pods", "shop", &ra.name).expect("pod a");
    assert_eq!(
        labels(&stored)
            .get("riposte.io/quarantine")
            .map(String::as_str),
        Some("true")
    );
    let ann = annotations(&stored);
    assert_eq!(
        ann.get("riposte.io/reason").map(String::as_str),
        Some("C2 traffic to 203.0.113.9: Cobalt Strike beacon")
    );
    assert_eq!(
        ann.get("riposte.io/playbook").map(String::as_str),
        Some("c2-quarantine")
    );
    assert_eq!(
        ann.get("riposte.io/event-id").map(String::as_str),
        Some("ev-1")
    );
    assert_eq!(
        ann.get("riposte.io/action-id").map(String::as_str),
        Some("act-1")
    );
    assert_eq!(
        ann.get("riposte.io/expires-at").map(String::as_str),
        Some("2030-01-01T04:00:00Z")
    );
    let quarantined_at = ann
        .get("riposte.io/quarantined-at")
        .cloned()
        .expect("quarantined-at");
    assert!(chrono::DateTime::parse_from_rfc3339(&quarantined_at).is_ok());

    let policy = kube
        .get("networkpolicies", "shop", "riposte-quarantine")
        .expect("the deny-all policy");
    assert_eq!(
        policy["spec"]["podSelector"],
        json!({"matchLabels": {"riposte.io/quarantine": "true"}})
    );
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        policy["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "riposte"
    );
    assert_eq!(
        policy["metadata"]["labels"]["riposte.io/action-id"],
        "act-1"
    );

    // Both writes were forced server-side applies by `riposte`.
    let applies: Vec<_> = kube
        .requests()
        .into_iter()
        .filter(|r| r.is_apply_by("riposte"))
        .collect();
    assert!(applies
        .iter()
        .any(|r| r.path == format!("/api/v1/namespaces/shop/pods/{}", ra.name) && r.force));
    assert!(applies.iter().any(|r| r.path
        == "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies/riposte-quarantine"
        && r.force));

    // Idempotent: the same action again changes nothing that matters.
    let again = conn.quarantine(&ra, &spec("act-1")).await.expect("again");
    assert!(again.already_quarantined);
    let stored2 = kube.get("pods", "shop", &ra.name).expect("pod a");
    assert_eq!(
        annotations(&stored2),
        ann,
        "a retry rewrites the same annotations"
    );

    conn.quarantine(&rb, &spec("act-2"))
        .await
        .expect("quarantine b");

    // Release a: b is still quarantined, so the policy stays.
    let rel = conn.release(&ra).await.expect("release a");
    assert_eq!(rel.outcome, ReleaseOutcome::Released);
    assert!(!rel.policy_deleted);
    let stored = kube.get("pods", "shop", &ra.name).expect("pod a");
    assert!(!labels(&stored).contains_key("riposte.io/quarantine"));
    assert!(
        annotations(&stored)
            .keys()
            .all(|k| !k.starts_with("riposte.io/")),
        "{:?}",
        annotations(&stored)
    );
    assert_eq!(
        labels(&stored).get("app").map(String::as_str),
        Some("checkout"),
        "other labels untouched"
    );
    assert!(kube
        .get("networkpolicies", "shop", "riposte-quarantine")
        .is_some());
    // What Riposte no longer owns is gone from the managed fields too.
    let managed = serde_json::to_string(&stored["metadata"]["managedFields"]).expect("json");
    assert!(!managed.contains("riposte.io/quarantine"), "{managed}");

    // Release b: the last one, the policy goes.
    let rel = conn.release(&rb).await.expect("release b");
    assert!(rel.policy_deleted);
    assert!(kube
        .get("networkpolicies", "shop", "riposte-quarantine")
        .is_none());

    // Releasing again is fine.
    let rel = conn.release(&rb).await.expect("release b again");
    assert_eq!(rel.outcome, ReleaseOutcome::NotQuarantined);
    assert!(!rel.policy_deleted);
}

#[tokio::test]
async fn a_later_quarantine_keeps_the_first_time_and_never_shortens() {
    let (kube, conn) = start(KubernetesConfig::default()).await;
    let (_, a, _) = shop(&kube);
    let ra = pod_ref(&a);
    let first = conn.quarantine(&ra, &spec("act-1")).await.expect("first");
    let shorter = QuarantineSpec {
        action_id: "act-2".into(),
        expires_at: Some(
            Utc.with_ymd_and_hms(2030, 1, 1, 1, 0, 0)
                .single()
                .expect("time"),
        ),
        ..spec("act-2")
    };
    let second = conn.quarantine(&ra, &shorter).await.expect("second");
    assert!(second.already_quarantined);
    assert_eq!(second.quarantined_at, first.quarantined_at);
    assert_eq!(second.expires_at, first.expires_at, "never shortened");
    let ann = annotations(&kube.get("pods", "shop", &ra.name).expect("pod"));
    assert_eq!(
        ann.get("riposte.io/action-id").map(String::as_str),
        Some("act-2")
    );
}

#[tokio::test]
async fn quarantine_by_selector_through_the_index() {
    let (kube, conn) = start(KubernetesConfig::default()).await;
    let (_, _, _) = shop(&kube);
    kube.add_pod(PodFixture::new("shop", "other", "10.244.1.30").label("app", "other"))
        .expect("other pod");
    let index = PodIndex::spawn(conn.client().clone(), conn.config());
    tokio::time::timeout(Duration::from_secs(20), index.ready())
        .await
        .expect("sync");
    let sel = BTreeMap::from([("app".to_owned(), "checkout".to_owned())]);
    let results = conn
        .quarantine_matching(&index, "shop", &sel, &spec("act-sel"))
        .await;
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(|(_, r)| r.is_ok()));
    let q = kube
        .list("pods", Some("shop"))
        .into_iter()
        .filter(|p| labels(p).contains_key("riposte.io/quarantine"))
        .count();
    assert_eq!(q, 2, "only the selected pods");
}

#[tokio::test]
async fn detach_leaves_the_replicaset_unmatched_and_restore_puts_labels_back() {
    let config = KubernetesConfig {
        quarantine: QuarantineConfig {
            detach: true,
            ..QuarantineConfig::default()
        },
        ..KubernetesConfig::default()
    };
    let (kube, conn) = start(config).await;
    let (web, a, _) = shop(&kube);
    kube.create(
        "services",
        fixtures::service("shop", "checkout", &[("app", "checkout")]),
    )
    .expect("service");
    kube.create(
        "services",
        fixtures::service("shop", "unrelated", &[("app", "other")]),
    )
    .expect("service");
    let before = labels(&a);
    let ra = pod_ref(&a);

    let r = conn
        .quarantine(&ra, &spec("act-d"))
        .await
        .expect("quarantine");
    let moved = match r.detach {
        Some(DetachOutcome::Detached { labels }) => labels,
        other => panic!("expected Detached, got {other:?}"),
    };
    assert_eq!(
        moved.keys().cloned().collect::<Vec<_>>(),
        vec!["app", "pod-template-hash"]
    );

    let stored = kube
        .get("pods", "shop", &ra.name)
        .expect("the pod is kept for forensics");
    let now = labels(&stored);
    assert_eq!(
        now.get("riposte.io/quarantine").map(String::as_str),
        Some("true"),
        "still isolated"
    );
    let rs_selector: BTreeMap<String, String> =
        serde_json::from_value(web.replicaset["spec"]["selector"]["matchLabels"].clone())
            .expect("selector");
    assert!(
        !rs_selector.iter().all(|(k, v)| now.get(k) == Some(v)),
        "the ReplicaSet selector no longer matches {now:?}"
    );
    let recorded: BTreeMap<String, String> = serde_json::from_str(
        annotations(&stored)
            .get("riposte.io/detached-labels")
            .expect("recorded"),
    )
    .expect("json");
    assert_eq!(recorded, moved);
    // The detach was a merge patch guarded by the resourceVersion.
    let guarded = kube.requests().into_iter().any(|r| {
        r.verb == "patch"
            && r.content_type.as_deref() == Some("application/merge-patch+json")
            && r.body
                .as_ref()
                .is_some_and(|b| b["metadata"]["resourceVersion"].is_string())
    });
    assert!(guarded);

    // Quarantining again does not lose what was detached.
    conn.quarantine(&ra, &spec("act-d")).await.expect("again");

    let rel = conn.release(&ra).await.expect("release");
    assert_eq!(rel.outcome, ReleaseOutcome::Released);
    assert_eq!(rel.restored_labels, moved);
    let stored = kube.get("pods", "shop", &ra.name).expect("pod");
    assert_eq!(labels(&stored), before, "exactly the original labels");
    assert!(annotations(&stored)
        .keys()
        .all(|k| !k.starts_with("riposte.io/")));
}

#[tokio::test]
async fn a_failed_detach_still_leaves_the_pod_isolated() {
    let config = KubernetesConfig {
        quarantine: QuarantineConfig {
            detach: true,
            ..QuarantineConfig::default()
        },
        ..KubernetesConfig::default()
    };
    let (kube, conn) = start(config).await;
    let (_, a, _) = shop(&kube);
    let ra = pod_ref(&a);
    kube.inject(
        Fault::status(403)
            .verb("list")
            .path_prefix("/api/v1/namespaces/shop/services"),
    );
    let err = conn
        .quarantine(&ra, &spec("act-d"))
        .await
        .expect_err("no RBAC for services");
    assert_eq!(err.status_code(), Some(403));
    let stored = kube.get("pods", "shop", &ra.name).expect("pod");
    assert_eq!(
        labels(&stored)
            .get("riposte.io/quarantine")
            .map(String::as_str),
        Some("true")
    );
    assert!(
        kube.get("networkpolicies", "shop", "riposte-quarantine")
            .is_some(),
        "isolated anyway"
    );
    // The retry the dispatcher makes completes the detach.
    let r = conn.quarantine(&ra, &spec("act-d")).await.expect("retry");
    assert!(matches!(r.detach, Some(DetachOutcome::Detached { .. })));
}

#[tokio::test]
async fn detached_pods_can_be_deleted_on_release() {
    let config = KubernetesConfig {
        quarantine: QuarantineConfig {
            detach: true,
            release_detached: DetachedRelease::Delete,
            ..QuarantineConfig::default()
        },
        ..KubernetesConfig::default()
    };
    let (kube, conn) = start(config).await;
    let (_, a, _) = shop(&kube);
    let ra = pod_ref(&a);
    conn.quarantine(&ra, &spec("act-d"))
        .await
        .expect("quarantine");
    let rel = conn.release(&ra).await.expect("release");
    assert_eq!(rel.outcome, ReleaseOutcome::Deleted);
    assert!(kube.get("pods", "shop", &ra.name).is_none());
    assert!(rel.policy_deleted, "it was the only quarantined pod");
}

#[tokio::test]
async fn statefulset_pods_are_not_detached() {
    let config = KubernetesConfig {
        quarantine: QuarantineConfig {
            detach: true,
            ..QuarantineConfig::default()
        },
        ..KubernetesConfig::default()
    };
    let (kube, conn) = start(config).await;
    kube.add_namespace("db", &[]).expect("namespace");
    let sts = kube
        .create(
            "statefulsets",
            fixtures::statefulset("db", "pg", &[("app", "pg")]),
        )
        .expect("sts");
    let p = kube
        .add_pod(
            PodFixture::new("db", "pg-0", "10.244.4.1")
                .label("app", "pg")
                .owned_by(&sts),
        )
        .expect("pod");
    let r = conn
        .quarantine(&pod_ref(&p), &spec("act-s"))
        .await
        .expect("quarantine");
    assert!(
        matches!(r.detach, Some(DetachOutcome::NotPossible { .. })),
        "{:?}",
        r.detach
    );
    let stored = kube.get("pods", "db", "pg-0").expect("pod");
    assert_eq!(
        labels(&stored).get("app").map(String::as_str),
        Some("pg"),
        "labels kept"
    );
    assert_eq!(
        labels(&stored)
            .get("riposte.io/quarantine")
            .map(String::as_str),
        Some("true")
    );
}

#[tokio::test]
async fn a_pod_deleted_between_decision_and_action_is_a_clear_error() {
    let (kube, conn) = start(KubernetesConfig::default()).await;
    let (_, a, _) = shop(&kube);
    let ra = pod_ref(&a).with_uid(a["metadata"]["uid"].as_str().expect("uid"));
    kube.delete("pods", "shop", &ra.name).expect("delete");

    let err = conn
        .quarantine(&ra, &spec("act-1"))
        .await
        .expect_err("gone");
    assert!(matches!(err, KubeError::PodGone { .. }), "{err}");
    assert!(!err.is_transient());
    assert!(err.to_string().contains(&ra.name));
    assert!(
        kube.get("pods", "shop", &ra.name).is_none(),
        "no ghost pod was created"
    );

    // Replaced by a pod of the same name: still not the pod decided on.
    kube.add_pod(PodFixture::new("shop", &ra.name, "10.244.1.99"))
        .expect("same name");
    let err = conn
        .quarantine(&ra, &spec("act-1"))
        .await
        .expect_err("replaced");
    assert!(matches!(err, KubeError::PodGone { .. }), "{err}");
    let err = conn
        .label(
            &ra,
            &BTreeMap::from([("team".to_owned(), Some("x".to_owned()))]),
        )
        .await
        .expect_err("replaced");
    assert!(matches!(err, KubeError::PodGone { .. }), "{err}");
    assert_eq!(
        conn.delete_pod(&ra, None).await.expect("delete"),
        DeleteOutcome::AlreadyGone
    );
    assert!(
        kube.get("pods", "shop", &ra.name).is_some(),
        "the replacement was not deleted"
    );

    // Releasing a pod that is gone is success.
    let missing = PodRef::new("shop", "never-existed");
    let rel = conn
        .release(&missing)
        .await
        .expect("release of a missing pod");
    assert_eq!(rel.outcome, ReleaseOutcome::PodGone);
    assert_eq!(
        conn.delete_pod(&missing, None).await.expect("delete"),
        DeleteOutcome::AlreadyGone
    );
}

#[tokio::test]
async fn releasing_a_deleted_pod_cleans_up_its_policy() {
    let (kube, conn) = start(KubernetesConfig::default()).await;
    let (_, a, _) = shop(&kube);
    let ra = pod_ref(&a);
    conn.quarantine(&ra, &spec("act-1"))
        .await
        .expect("quarantine");
    kube.delete("pods", "shop", &ra.name)
        .expect("deleted by someone");
    let rel = conn.release(&ra).await.expect("release");
    assert_eq!(rel.outcome, ReleaseOutcome::PodGone);
    assert!(rel.policy_deleted);
    assert!(kube
        .get("networkpolicies", "shop", "riposte-quarantine")
        .is_none());
}

#[tokio::test]
async fn labels_and_annotations_are_checked_before_sending() {
    let (kube, conn) = start(KubernetesConfig::default()).await;
    let (_, a, _) = shop(&kube);
    let ra = pod_ref(&a);
    kube.clear_requests();
    let bad = BTreeMap::from([("team".to_owned(), Some("has spaces".to_owned()))]);
    let err = conn.label(&ra, &bad).await.expect_err("invalid value");
    assert!(matches!(err, KubeError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("team"), "{err}");
    let forged = BTreeMap::from([("riposte.io/quarantine".to_owned(), None)]);
    assert!(matches!(
        conn.label(&ra, &forged).await,
        Err(KubeError::Invalid { .. })
    ));
    assert!(
        kube.requests_matching("patch", "/").is_empty(),
        "nothing was sent"
    );

    let set = BTreeMap::from([
        ("team".to_owned(), Some("blue".to_owned())),
        ("app".to_owned(), None),
    ]);
    conn.label(&ra, &set).await.expect("label");
    conn.annotate(
        &ra,
        &BTreeMap::from([(
            "soc.example.com/ticket".to_owned(),
            Some("INC-42: looked at".to_owned()),
        )]),
    )
    .await
    .expect("annotate");
    let stored = kube.get("pods", "shop", &ra.name).expect("pod");
    assert_eq!(
        labels(&stored).get("team").map(String::as_str),
        Some("blue")
    );
    assert!(!labels(&stored).contains_key("app"), "None removes");
    assert_eq!(
        annotations(&stored)
            .get("soc.example.com/ticket")
            .map(String::as_str),
        Some("INC-42: looked at")
    );

    assert_eq!(
        conn.delete_pod(&ra, Some(0)).await.expect("delete"),
        DeleteOutcome::Deleted
    );
    assert!(kube.get("pods", "shop", &ra.name).is_none());
}

#[tokio::test]
async fn events_are_recorded_once_per_action() {
    let (kube, conn) = start(KubernetesConfig::default()).await;
    let (_, a, _) = shop(&kube);
    let ra = pod_ref(&a).with_uid(a["metadata"]["uid"].as_str().expect("uid"));
    let ev = EventSpec {
        reason: REASON_QUARANTINED.into(),
        message: "Quarantined until 2030-01-01T04:00:00Z: C2 traffic".into(),
        event_type: EventType::Warning,
        action: "Quarantine".into(),
        action_id: "act-1".into(),
    };
    assert_eq!(
        conn.event(&ra, &ev).await.expect("event"),
        EventOutcome::Recorded
    );
    assert_eq!(
        conn.event(&ra, &ev).await.expect("again"),
        EventOutcome::AlreadyRecorded
    );
    let events = kube.list("events", Some("shop"));
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e["involvedObject"]["kind"], "Pod");
    assert_eq!(e["involvedObject"]["name"], ra.name.as_str());
    assert_eq!(
        e["involvedObject"]["uid"],
        ra.uid.as_deref().unwrap_or_default()
    );
    assert_eq!(e["reason"], "RiposteQuarantined");
    assert_eq!(e["type"], "Warning");
    assert_eq!(e["reportingComponent"], "riposte.io/riposte");
}

#[tokio::test]
async fn server_errors_and_throttling_are_transient_with_retry_after() {
    let (kube, conn) = start(KubernetesConfig::default()).await;
    let (_, a, _) = shop(&kube);
    let ra = pod_ref(&a);

    kube.inject(Fault::status(500).verb("patch"));
    let err = conn.quarantine(&ra, &spec("act-1")).await.expect_err("500");
    assert!(err.is_transient(), "{err}");
    assert_eq!(err.status_code(), Some(500));

    kube.inject(Fault::too_many_requests(3).verb("get"));
    let err = conn.quarantine(&ra, &spec("act-1")).await.expect_err("429");
    assert!(err.is_transient());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
    assert_eq!(
        kube.pending_faults(),
        0,
        "one attempt each: the client does not retry by itself"
    );

    kube.inject(Fault::status(403).verb("patch"));
    let err = conn.quarantine(&ra, &spec("act-1")).await.expect_err("403");
    assert!(!err.is_transient());

    // After the faults, the same action goes through.
    conn.quarantine(&ra, &spec("act-1"))
        .await
        .expect("quarantine");
}

#[tokio::test]
async fn a_slow_server_is_a_timeout_and_a_dead_one_a_connection_error() {
    let config = KubernetesConfig {
        request_timeout_secs: 1,
        ..KubernetesConfig::default()
    };
    let (kube, conn) = start(config).await;
    let (_, a, _) = shop(&kube);
    let ra = pod_ref(&a);
    kube.inject(Fault::hang(Duration::from_secs(3)).verb("get"));
    let err = conn
        .quarantine(&ra, &spec("act-1"))
        .await
        .expect_err("slow");
    assert!(matches!(err, KubeError::Timeout(_)), "{err}");
    assert!(err.is_transient());

    kube.stop().await;
    let err = conn
        .quarantine(&ra, &spec("act-1"))
        .await
        .expect_err("down");
    assert!(err.is_transient(), "{err}");
}
