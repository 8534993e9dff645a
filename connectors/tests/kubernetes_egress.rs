//! `block_egress` / `unblock_egress` with every backend, against the
//! Kubernetes API server stand-in.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use ipnet::IpNet;
use riposte_connectors::kubernetes::config::EgressConfig;
use riposte_connectors::kubernetes::{
    client, EgressBackend, EgressSpec, EgressTarget, KubeError, KubernetesConfig,
    KubernetesConnector, PodRef,
};
use riposte_standins::kube_api::{KubeApiServer, PodFixture};
use serde_json::json;

async fn start(backend: EgressBackend, tier: &str) -> (KubeApiServer, KubernetesConnector) {
    let kube = KubeApiServer::start().await.expect("the stand-in starts");
    let c = client::build(
        kube.client_config().expect("client config"),
        Duration::from_secs(5),
    )
    .expect("client");
    let config = KubernetesConfig {
        egress: EgressConfig {
            backend,
            calico_tier: tier.into(),
            ..EgressConfig::default()
        },
        ..KubernetesConfig::default()
    };
    kube.add_namespace("shop", &[]).expect("namespace");
    kube.add_pod(PodFixture::new("shop", "web-1", "10.244.1.1").label("app", "web"))
        .expect("pod");
    (kube, KubernetesConnector::new(c, config))
}

fn cidr() -> IpNet {
    "203.0.113.0/24".parse().expect("cidr")
}

fn spec(action_id: &str, ports: &[u16]) -> EgressSpec {
    EgressSpec {
        action_id: action_id.into(),
        ports: ports.to_vec(),
        expires_at: Some(
            Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0)
                .single()
                .expect("time"),
        ),
        reason: Some("C2 network".into()),
        playbook: Some("c2-quarantine".into()),
        event_id: None,
    }
}

fn selector() -> EgressTarget {
    EgressTarget::Selector {
        namespace: "shop".into(),
        labels: BTreeMap::from([("app".to_owned(), "web".to_owned())]),
    }
}

#[tokio::test]
async fn networkpolicy_blocks_by_selector_and_is_read_back_and_removed() {
    let (kube, conn) = start(EgressBackend::NetworkPolicy, "riposte").await;
    let r = conn
        .block_egress(&selector(), cidr(), &spec("act-e1", &[]))
        .await
        .expect("block");
    assert!(r.policy.starts_with("riposte-egress-"));
    let stored = kube
        .get("networkpolicies", "shop", &r.policy)
        .expect("policy");
    assert_eq!(
        stored["spec"]["podSelector"],
        json!({"matchLabels": {"app": "web"}})
    );
    assert_eq!(stored["spec"]["policyTypes"], json!(["Egress"]));
    assert_eq!(
        stored["spec"]["egress"][0]["to"][0],
        json!({"ipBlock": {"cidr": "0.0.0.0/0", "except": ["203.0.113.0/24"]}})
    );
    assert_eq!(
        stored["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "riposte"
    );
    assert_eq!(
        stored["metadata"]["labels"]["riposte.io/action-id"],
        "act-e1"
    );
    assert!(kube
        .requests()
        .iter()
        .any(|q| q.is_apply_by("riposte") && q.path.ends_with(&r.policy)));

    // The same action applies the same object again.
    let again = conn
        .block_egress(&selector(), cidr(), &spec("act-e1", &[]))
        .await
        .expect("again");
    assert_eq!(again.policy, r.policy);
    assert_eq!(kube.list("networkpolicies", Some("shop")).len(), 1);

    let blocks = conn.egress_blocks().await.expect("list");
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].action_id.as_deref(), Some("act-e1"));
    assert_eq!(blocks[0].cidr, Some(cidr()));
    assert_eq!(blocks[0].expires_at, spec("act-e1", &[]).expires_at);

    let un = conn
        .unblock_egress("shop", "act-e1")
        .await
        .expect("unblock");
    assert!(un.policy_deleted);
    assert!(kube.get("networkpolicies", "shop", &r.policy).is_none());
    let un = conn
        .unblock_egress("shop", "act-e1")
        .await
        .expect("unblock again");
    assert!(!un.policy_deleted, "idempotent");
    assert!(conn.egress_blocks().await.expect("list").is_empty());
}

#[tokio::test]
async fn a_single_pod_is_labelled_so_the_policy_selects_only_it() {
    let (kube, conn) = start(EgressBackend::NetworkPolicy, "riposte").await;
    kube.add_pod(PodFixture::new("shop", "web-2", "10.244.1.2").label("app", "web"))
        .expect("sibling");
    let target = EgressTarget::Pod(PodRef::new("shop", "web-1"));
    let r = conn
        .block_egress(&target, cidr(), &spec("act-e2", &[443]))
        .await
        .expect("block");
    assert_eq!(
        r.labeled_pod.as_ref().map(|p| p.name.as_str()),
        Some("web-1")
    );
    let stored = kube
        .get("networkpolicies", "shop", &r.policy)
        .expect("policy");
    let selector = stored["spec"]["podSelector"]["matchLabels"]
        .as_object()
        .expect("labels")
        .clone();
    assert_eq!(selector.len(), 1);
    let (key, value) = selector.iter().next().expect("one label");
    assert!(key.starts_with("riposte.io/egress-"));
    let web1 = kube.get("pods", "shop", "web-1").expect("pod");
    let web2 = kube.get("pods", "shop", "web-2").expect("pod");
    assert_eq!(&web1["metadata"]["labels"][key.as_str()], value);
    assert!(
        web2["metadata"]["labels"].get(key.as_str()).is_none(),
        "the sibling is not selected"
    );
    assert_eq!(stored["metadata"]["annotations"]["riposte.io/ports"], "443");
    assert_eq!(
        stored["metadata"]["annotations"]["riposte.io/target-pod"],
        "shop/web-1"
    );

    let un = conn
        .unblock_egress("shop", "act-e2")
        .await
        .expect("unblock");
    assert_eq!(un.unlabeled_pods, 1);
    let web1 = kube.get("pods", "shop", "web-1").expect("pod");
    assert!(web1["metadata"]["labels"].get(key.as_str()).is_none());

    let gone = EgressTarget::Pod(PodRef::new("shop", "no-such-pod"));
    let err = conn
        .block_egress(&gone, cidr(), &spec("act-e3", &[]))
        .await
        .expect_err("gone");
    assert!(matches!(err, KubeError::PodGone { .. }), "{err}");
}

#[tokio::test]
async fn cilium_uses_egress_deny() {
    let (kube, conn) = start(EgressBackend::Cilium, "riposte").await;
    let r = conn
        .block_egress(&selector(), cidr(), &spec("act-c", &[443]))
        .await
        .expect("block");
    let stored = kube
        .get("ciliumnetworkpolicies", "shop", &r.policy)
        .expect("a CiliumNetworkPolicy");
    assert_eq!(stored["apiVersion"], "cilium.io/v2");
    assert_eq!(
        stored["spec"]["endpointSelector"],
        json!({"matchLabels": {"app": "web"}})
    );
    assert_eq!(
        stored["spec"]["egressDeny"],
        json!([{"toCIDRSet": [{"cidr": "203.0.113.0/24"}], "toPorts": [{"ports": [{"port": "443", "protocol": "ANY"}]}]}])
    );
    assert_eq!(
        stored["spec"]["enableDefaultDeny"],
        json!({"egress": false, "ingress": false})
    );
    let blocks = conn.egress_blocks().await.expect("list");
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].ports, vec![443]);
    assert!(
        conn.unblock_egress("shop", "act-c")
            .await
            .expect("unblock")
            .policy_deleted
    );
    assert!(kube
        .get("ciliumnetworkpolicies", "shop", &r.policy)
        .is_none());
}

#[tokio::test]
async fn calico_uses_a_deny_rule() {
    // The stand-in serves Calico policies but not Tiers: the default tier.
    let (kube, conn) = start(EgressBackend::Calico, "default").await;
    let r = conn
        .block_egress(&selector(), cidr(), &spec("act-k", &[]))
        .await
        .expect("block");
    assert!(
        r.policy.starts_with("default.riposte-egress-"),
        "{}",
        r.policy
    );
    let stored = kube
        .get("networkpolicies.crd.projectcalico.org", "shop", &r.policy)
        .expect("a Calico NetworkPolicy");
    assert_eq!(stored["spec"]["selector"], "app == 'web'");
    assert_eq!(stored["spec"]["types"], json!(["Egress"]));
    assert_eq!(
        stored["spec"]["egress"],
        json!([{"action": "Deny", "destination": {"nets": ["203.0.113.0/24"]}}])
    );
    assert!(stored["spec"]["order"].is_number());
    assert_eq!(conn.egress_blocks().await.expect("list").len(), 1);
    assert!(
        conn.unblock_egress("shop", "act-k")
            .await
            .expect("unblock")
            .policy_deleted
    );
}

#[tokio::test]
async fn bad_requests_never_leave() {
    let (kube, conn) = start(EgressBackend::NetworkPolicy, "riposte").await;
    kube.clear_requests();
    let empty = EgressTarget::Selector {
        namespace: "shop".into(),
        labels: BTreeMap::new(),
    };
    assert!(matches!(
        conn.block_egress(&empty, cidr(), &spec("a", &[])).await,
        Err(KubeError::Invalid { .. })
    ));
    assert!(matches!(
        conn.block_egress(&selector(), cidr(), &spec("a", &[0]))
            .await,
        Err(KubeError::Invalid { .. })
    ));
    assert!(matches!(
        conn.block_egress(&selector(), cidr(), &spec("", &[])).await,
        Err(KubeError::Invalid { .. })
    ));
    assert!(kube.requests().is_empty());
}
