//! Every Kubernetes action a playbook can take, carried out on the real
//! API server as the `riposte-test` user: `label` and `annotate` on a pod
//! and on a selector, `k8s_event`, `delete_pod`, and `block_egress` with a
//! standard NetworkPolicy and with Cilium's and Calico's policies (through
//! minimal CRDs the test installs, `crds/*-minimal.yaml`). The server's
//! validation is the judge: every object Riposte writes must be accepted
//! and read back as written.

use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use riposte_connectors::kubernetes::EgressBackend;
use riposte_engine::decide::decision::{ActionStatus, DecisionFilter};
use riposte_tests::real_cluster::{self, annotation, label, send_c2, WAIT};
use riposte_tests::real_k8s::{eventually_ok, RealCluster};
use riposte_tests::service::Service;
use serde_json::Value;

/// Labels, annotates, records an Event and blocks egress for the source pod
/// of a C2 alert; labels the pod's `app=web` neighbours by selector; and
/// deletes the pod at DELETE_IP.
const ACTIONS: &str = r#"// name: actions
// description: every Kubernetes action on a C2 alert (tests)
// trigger: threat.type = spyware, severity >= high
// mode: enforce
let pod = event.source.pod;
if pod != () {
    if event.source.ip == "DELETE_IP" {
        delete_pod(pod, #{ reason: "compromised" });
        return;
    }
    label(pod, #{ "sec.example.com/suspect": "c2" });
    annotate(pod, #{ "sec.example.com/note": `talked to ${event.destination.ip}` });
    label(selector(pod.namespace, #{ app: "web" }), #{ "sec.example.com/watch": "true" });
    k8s_event(pod, "RiposteSuspect", `C2 traffic to ${event.destination.ip}`);
    block_egress(pod, "203.0.113.0/24", #{ ttl: "1h", reason: "C2 network", ports: [443, 8443] });
}
"#;

/// What the chart grants for the Cilium and Calico backends
/// (deploy/helm/riposte/templates/rbac.yaml).
const CNI_RBAC: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: riposte-test-cni-policies
rules:
  - apiGroups: ["cilium.io"]
    resources: ["ciliumnetworkpolicies"]
    verbs: ["get", "list", "watch", "create", "patch", "delete"]
  - apiGroups: ["crd.projectcalico.org"]
    resources: ["networkpolicies"]
    verbs: ["get", "list", "watch", "create", "patch", "delete"]
  - apiGroups: ["crd.projectcalico.org"]
    resources: ["tiers"]
    verbs: ["get", "create", "patch"]
"#;

async fn cluster_with_crds() -> anyhow::Result<&'static RealCluster> {
    let cluster = real_cluster::cluster().await?;
    for crd in [
        include_str!("crds/cilium-minimal.yaml"),
        include_str!("crds/calico-minimal.yaml"),
    ] {
        cluster.apply_yaml(crd, false).await?;
    }
    real_cluster::grant_user(cluster, "riposte-test", "riposte-test", CNI_RBAC).await?;
    Ok(cluster)
}

fn failed_actions(svc: &Service) -> Vec<String> {
    svc.running
        .decisions
        .recent(50, &DecisionFilter::default())
        .into_iter()
        .flat_map(|d| d.actions)
        .filter(|a| a.status == ActionStatus::Failed || a.status == ActionStatus::Refused)
        .map(|a| format!("{:?} {:?} {:?}", a.status, a.code, a.reason))
        .collect()
}

/// Waits until every action of the decisions so far is done, and fails
/// with the failures' reasons when one did not apply.
async fn all_applied(svc: &Service, at_least: usize) -> anyhow::Result<()> {
    riposte_tests::eventually(WAIT, || {
        let actions: Vec<_> = svc
            .running
            .decisions
            .recent(50, &DecisionFilter::default())
            .into_iter()
            .flat_map(|d| d.actions)
            .collect();
        (actions.len() >= at_least && actions.iter().all(|a| a.status != ActionStatus::Queued))
            .then_some(())
    })
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "actions still queued: {:#?}",
            svc.running.decisions.recent(50, &DecisionFilter::default())
        )
    })?;
    let failed = failed_actions(svc);
    anyhow::ensure!(failed.is_empty(), "actions not applied: {failed:?}");
    Ok(())
}

async fn egress_objects(
    cluster: &RealCluster,
    ns: &str,
    backend: EgressBackend,
) -> anyhow::Result<Vec<Value>> {
    let ar = match backend {
        EgressBackend::NetworkPolicy => return cluster.list::<NetworkPolicy>(ns).await,
        EgressBackend::Cilium => ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("cilium.io", "v2", "CiliumNetworkPolicy"),
            "ciliumnetworkpolicies",
        ),
        EgressBackend::Calico => ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("crd.projectcalico.org", "v1", "NetworkPolicy"),
            "networkpolicies",
        ),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(cluster.admin().await?, ns, &ar);
    let list = api.list(&ListParams::default()).await?;
    list.items
        .into_iter()
        .map(|o| serde_json::to_value(o).map_err(anyhow::Error::from))
        .collect()
}

async fn every_action_on_the_real_server(backend: EgressBackend) -> anyhow::Result<()> {
    let cluster = cluster_with_crds().await?;
    let ns = cluster.namespace("shop", &[]).await?;
    let ips = cluster.ip_block();
    let (src, web2, gone) = (ips.ip(17), ips.ip(18), ips.ip(19));
    cluster.pod(&ns, "web-1", &[("app", "web")], &src).await?;
    cluster.pod(&ns, "web-2", &[("app", "web")], &web2).await?;
    cluster.pod(&ns, "db-1", &[("app", "db")], &gone).await?;
    let playbook = ACTIONS.replace("DELETE_IP", &gone);
    let svc = real_cluster::start(cluster, &[("actions.rhai", &playbook)], |c, _| {
        c.kubernetes.egress.backend = backend;
    })
    .await?;
    send_c2(&svc, &src, 1).await?;
    send_c2(&svc, &gone, 2).await?;
    all_applied(&svc, 6).await?;

    let web1 = cluster.get::<Pod>(&ns, "web-1").await?.unwrap_or_default();
    assert_eq!(label(&web1, "sec.example.com/suspect"), Some("c2"));
    assert_eq!(label(&web1, "sec.example.com/watch"), Some("true"));
    assert!(annotation(&web1, "sec.example.com/note").is_some_and(|n| n.contains("203.0.113.66")));
    let web2 = cluster.get::<Pod>(&ns, "web-2").await?.unwrap_or_default();
    assert_eq!(
        label(&web2, "sec.example.com/watch"),
        Some("true"),
        "by selector"
    );
    assert_eq!(label(&web2, "sec.example.com/suspect"), None);
    // delete_pod: gone (or going: nothing but the API server confirms it).
    eventually_ok(WAIT, || async {
        match cluster.get::<Pod>(&ns, "db-1").await? {
            None => Ok(()),
            Some(p) if p["metadata"]["deletionTimestamp"].is_string() => Ok(()),
            Some(_) => anyhow::bail!("db-1 not deleted"),
        }
    })
    .await?;
    // The playbook's own Event on the pod.
    eventually_ok(WAIT, || async {
        let events = cluster.list::<Event>(&ns).await?;
        events
            .iter()
            .any(|e| e["reason"] == "RiposteSuspect" && e["involvedObject"]["name"] == "web-1")
            .then_some(())
            .ok_or_else(|| anyhow::anyhow!("no RiposteSuspect event: {events:?}"))
    })
    .await?;
    // The egress block, in the backend's own API, read back as written.
    let objects = egress_objects(cluster, &ns, backend).await?;
    let block = objects
        .iter()
        .find(|o| annotation(o, "riposte.io/cidr") == Some("203.0.113.0/24"))
        .ok_or_else(|| anyhow::anyhow!("no egress block in {objects:?}"))?;
    check_block(backend, block);
    // The pod carries the label the policy selects.
    let selected = web1["metadata"]["labels"]
        .as_object()
        .is_some_and(|l| l.keys().any(|k| k.starts_with("riposte.io/egress-")));
    assert!(selected, "{}", web1["metadata"]["labels"]);
    svc.stop().await;
    Ok(())
}

fn check_block(backend: EgressBackend, block: &Value) {
    let spec = &block["spec"];
    match backend {
        EgressBackend::NetworkPolicy => {
            assert_eq!(spec["policyTypes"][0], "Egress", "{spec}");
            let excepted = spec["egress"][0]["to"][0]["ipBlock"]["except"][0].clone();
            assert_eq!(excepted, "203.0.113.0/24", "{spec}");
        }
        EgressBackend::Cilium => {
            let deny = &spec["egressDeny"][0];
            assert_eq!(deny["toCIDRSet"][0]["cidr"], "203.0.113.0/24", "{spec}");
            assert_eq!(deny["toPorts"][0]["ports"][0]["protocol"], "ANY", "{spec}");
            assert_eq!(spec["enableDefaultDeny"]["egress"], false, "{spec}");
        }
        EgressBackend::Calico => {
            assert_eq!(spec["tier"], "riposte", "{spec}");
            assert_eq!(spec["egress"][0]["action"], "Deny", "{spec}");
            assert_eq!(
                spec["egress"][0]["destination"]["nets"][0], "203.0.113.0/24",
                "{spec}"
            );
            let last = spec["egress"].as_array().and_then(|r| r.last()).cloned();
            assert_eq!(last.unwrap_or_default()["action"], "Pass", "{spec}");
            assert!(spec["selector"].as_str().is_some_and(|s| s.contains("==")));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_with_a_standard_network_policy() -> anyhow::Result<()> {
    every_action_on_the_real_server(EgressBackend::NetworkPolicy).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_with_cilium() -> anyhow::Result<()> {
    every_action_on_the_real_server(EgressBackend::Cilium).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_with_calico() -> anyhow::Result<()> {
    every_action_on_the_real_server(EgressBackend::Calico).await
}
