//! The Helm chart on the real API server. Every rendering of every value set
//! in deploy/helm/riposte/ci/ is applied with a server-side dry run, then
//! installed, and its Deployments' ReplicaSets create their pods. Then the
//! RBAC each value set renders is put to work: Riposte runs as the chart's
//! ServiceAccount (a TokenRequest token) with the rendering's own
//! `[kubernetes]` settings through every action the value set enables, and
//! none is refused; with one permission taken away, the refusal is clear,
//! counted and on the decision record.
//!
//! helm comes from `.ci/helm` (cached under /var/tmp), as for helm_chart.rs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use riposte_engine::decide::decision::{ActionStatus, DecisionFilter};
use riposte_tests::real_cluster::{self, send_c2, WAIT};
use riposte_tests::real_k8s::{eventually_ok, RealCluster};
use riposte_tests::service::Service;
use serde_json::Value;

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/helm/riposte");
const CACHED_HELM: &str = "/var/tmp/riposte-ci-tools/helm-v4.1.4/helm";

/// A MINIMAL CRD of the Prometheus Operator's group (monitoring.coreos.com/v1),
/// NOT the operator's own: enough for the API server to accept the chart's
/// ServiceMonitor and PrometheusRule; their spec is kept as given (the rules
/// themselves are checked by promtool in `tests/monitoring.rs`).
fn minimal_monitoring_crd(kind: &str) -> String {
    let singular = kind.to_ascii_lowercase();
    format!(
        r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {singular}s.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {{kind: {kind}, listKind: {kind}List, plural: {singular}s, singular: {singular}}}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
"#
    )
}

fn helm() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("RIPOSTE_HELM") {
        return Ok(PathBuf::from(p));
    }
    if Path::new(CACHED_HELM).is_file() {
        return Ok(PathBuf::from(CACHED_HELM));
    }
    anyhow::bail!("no helm binary: run .ci/helm (it fetches and caches one) before the tests")
}

fn value_sets() -> anyhow::Result<Vec<String>> {
    let mut sets = Vec::new();
    for e in std::fs::read_dir(Path::new(CHART).join("ci"))? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") {
            sets.push(name);
        }
    }
    sets.sort();
    Ok(sets)
}

/// `helm template` of one value set as release `release` in `ns`.
fn render(set: &str, release: &str, ns: &str) -> anyhow::Result<Vec<Value>> {
    let out = Command::new(helm()?)
        .args(["template", release, CHART, "--namespace", ns, "-f"])
        .arg(Path::new(CHART).join("ci").join(set))
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "helm template {set}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&String::from_utf8(out.stdout)?) {
        let mut v = <Value as serde::Deserialize>::deserialize(doc)?;
        if v.is_object() {
            yaml11_octals(&mut v);
            docs.push(v);
        }
    }
    Ok(docs)
}

/// helm and kubectl read YAML 1.1, where a file mode such as `0440` is
/// octal; serde_yaml reads YAML 1.2, where it is not a number.
fn yaml11_octals(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                let octal = match child {
                    Value::String(s)
                        if (k == "defaultMode" || k == "mode") && s.starts_with('0') =>
                    {
                        u64::from_str_radix(s, 8).ok()
                    }
                    _ => None,
                };
                match octal {
                    Some(n) => *child = Value::from(n),
                    None => yaml11_octals(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(yaml11_octals),
        _ => {}
    }
}

fn to_yaml(docs: &[&Value]) -> String {
    docs.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// Namespaces the rendering puts objects in besides the release's own
/// (the restricted value set's Roles in `shop` and `payments`).
async fn other_namespaces(cluster: &RealCluster, docs: &[Value], ns: &str) -> anyhow::Result<()> {
    for d in docs {
        if let Some(other) = d["metadata"]["namespace"].as_str().filter(|o| *o != ns) {
            let obj = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}});
            cluster.apply_yaml(&obj.to_string(), false).await?;
        }
    }
    Ok(())
}

async fn wait_for_pods(cluster: &RealCluster, deployment: &Value) -> anyhow::Result<usize> {
    let ns = deployment["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    let want = deployment["spec"]["replicas"].as_u64().unwrap_or(1) as usize;
    let selector: Vec<String> = deployment["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let api = Api::<Pod>::namespaced(cluster.admin().await?, ns);
    let lp = ListParams::default().labels(&selector.join(","));
    eventually_ok(Duration::from_secs(30), || async {
        let n = api.list(&lp).await?.items.len();
        if n >= want {
            Ok(n)
        } else {
            anyhow::bail!("{n} of {want} pods of {}", deployment["metadata"]["name"])
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rendering_applies_dry_run_then_installs_and_its_replicasets_make_pods(
) -> anyhow::Result<()> {
    let cluster = real_cluster::cluster().await?;
    for kind in ["ServiceMonitor", "PrometheusRule"] {
        cluster
            .apply_yaml(&minimal_monitoring_crd(kind), false)
            .await?;
    }
    for set in value_sets()? {
        let ns = cluster.namespace("chart", &[]).await?;
        let release = format!("a-{}", set.trim_end_matches(".yaml"));
        let docs = render(&set, &release, &ns)?;
        other_namespaces(cluster, &docs, &ns).await?;
        let all: Vec<&Value> = docs.iter().collect();
        // Namespaced objects without a namespace go to the release's.
        let yaml = to_yaml(&all).replace(
            "\"namespace\":\"default\"",
            &format!("\"namespace\":\"{ns}\""),
        );
        cluster
            .apply_yaml(&yaml, true)
            .await
            .map_err(|e| e.context(format!("{set}: server-side dry run")))?;
        let deployments: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "Deployment").collect();
        assert!(!deployments.is_empty(), "{set}: no Deployment");
        for d in &deployments {
            let name = d["metadata"]["name"].as_str().unwrap_or_default();
            let stored = cluster
                .get::<k8s_openapi::api::apps::v1::Deployment>(&ns, name)
                .await?;
            assert!(stored.is_none(), "{set}: the dry run stored {name}");
        }
        cluster
            .apply_yaml(&yaml, false)
            .await
            .map_err(|e| e.context(format!("{set}: install")))?;
        for d in deployments {
            let mut d = d.clone();
            if d["metadata"]["namespace"].is_null() {
                d["metadata"]["namespace"] = Value::String(ns.clone());
            }
            let pods = wait_for_pods(cluster, &d)
                .await
                .map_err(|e| e.context(set.clone()))?;
            eprintln!("{set}: {} made {pods} pods", d["metadata"]["name"]);
        }
    }
    Ok(())
}

/// The value set's `actions` (chart defaults where unset).
#[derive(Debug, Clone, Copy)]
struct Actions {
    quarantine: bool,
    block_egress: bool,
    label: bool,
    delete_pod: bool,
    events: bool,
}

fn actions_of(set: &str) -> anyhow::Result<Actions> {
    let text = std::fs::read_to_string(Path::new(CHART).join("ci").join(set))?;
    let v: Value = serde_yaml::from_str(&text)?;
    let a = &v["actions"];
    let on = |k: &str, default: bool| a[k].as_bool().unwrap_or(default);
    Ok(Actions {
        quarantine: on("quarantine", true),
        block_egress: on("blockEgress", true),
        label: on("label", true),
        delete_pod: on("deletePod", false),
        events: on("events", true),
    })
}

/// A playbook taking every enabled action on the source pod of a C2 alert
/// (and deleting the pod at DELETE_IP when delete_pod is on).
fn playbook(a: Actions) -> String {
    let mut body = String::new();
    if a.delete_pod {
        body.push_str("if event.source.ip == \"DELETE_IP\" { delete_pod(pod); return; }\n");
    }
    if a.quarantine {
        body.push_str("quarantine(pod, #{ ttl: \"1h\", reason: \"C2\" });\n");
    }
    if a.label {
        body.push_str("label(pod, #{ \"sec.example.com/suspect\": \"c2\" });\n");
        body.push_str("annotate(pod, #{ \"sec.example.com/note\": \"c2\" });\n");
    }
    if a.block_egress {
        body.push_str("block_egress(pod, \"203.0.113.0/24\", #{ ttl: \"1h\" });\n");
    }
    if a.events {
        body.push_str("k8s_event(pod, \"RiposteSuspect\", \"C2\");\n");
    }
    format!(
        "// name: chart-actions\n// description: every action the value set enables (tests)\n\
         // trigger: threat.type = spyware, severity >= high\n// mode: enforce\n\
         let pod = event.source.pod;\nif pod != () {{\n{body}}}\n"
    )
}

/// The rendering's `[kubernetes]` table, as the chart configures Riposte.
/// A value set that brings its own config (`config.existingConfigMap`)
/// gets the `[kubernetes]` a user of it would write: its namespaces, its
/// Events switch.
fn kubernetes_config(
    set: &str,
    docs: &[Value],
) -> anyhow::Result<riposte_connectors::kubernetes::KubernetesConfig> {
    let toml_text = docs.iter().find_map(|d| {
        d["data"]["riposte.toml"]
            .as_str()
            .or_else(|| d["stringData"]["riposte.toml"].as_str())
    });
    let Some(toml_text) = toml_text else {
        let values: Value = serde_yaml::from_str(&std::fs::read_to_string(
            Path::new(CHART).join("ci").join(set),
        )?)?;
        let namespaces = values["kubernetes"]["namespaces"]
            .as_array()
            .map(|n| {
                n.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        return Ok(riposte_connectors::kubernetes::KubernetesConfig {
            namespaces,
            events: actions_of(set)?.events,
            ..Default::default()
        });
    };
    let table: toml::Table = toml::from_str(toml_text)?;
    let kube = table
        .get("kubernetes")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no [kubernetes] in the chart's riposte.toml"))?;
    Ok(kube.try_into()?)
}

fn outcomes(svc: &Service) -> Vec<(String, ActionStatus, Option<String>, Option<String>)> {
    svc.running
        .decisions
        .recent(50, &DecisionFilter::default())
        .into_iter()
        .flat_map(|d| d.actions)
        .map(|a| (a.action, a.status, a.code, a.reason))
        .collect()
}

async fn settled(svc: &Service, at_least: usize) -> anyhow::Result<()> {
    riposte_tests::eventually(WAIT, || {
        let o = outcomes(svc);
        (o.len() >= at_least && o.iter().all(|(_, s, _, _)| *s != ActionStatus::Queued))
            .then_some(())
    })
    .await
    .map_err(|_| anyhow::anyhow!("actions not settled: {:?}", outcomes(svc)))
}

/// Installs the RBAC of `set` as release `release` in a fresh namespace,
/// starts Riposte as its ServiceAccount with its `[kubernetes]` settings
/// and a Deployment of three pods to act on in the namespace it watches.
async fn riposte_as_the_chart(
    cluster: &'static RealCluster,
    set: &str,
    release: &str,
) -> anyhow::Result<(Service, Vec<String>, Actions, Vec<Value>)> {
    let ns = cluster.namespace("rbac", &[]).await?;
    let docs = render(set, release, &ns)?;
    other_namespaces(cluster, &docs, &ns).await?;
    let rbac: Vec<&Value> = docs
        .iter()
        .filter(|d| {
            let k = d["kind"].as_str().unwrap_or_default();
            k.ends_with("Role") || k.ends_with("RoleBinding") || k == "ServiceAccount"
        })
        .collect();
    cluster.apply_yaml(&to_yaml(&rbac), false).await?;
    let sa = rbac
        .iter()
        .find(|d| d["kind"] == "ServiceAccount")
        .and_then(|d| d["metadata"]["name"].as_str())
        .ok_or_else(|| anyhow::anyhow!("{set}: no ServiceAccount"))?
        .to_owned();
    let mut kube = kubernetes_config(set, &docs)?;
    // The restricted value set watches shop and payments only.
    let target_ns = match kube.namespaces.first() {
        Some(n) => n.clone(),
        None => ns.clone(),
    };
    let ips = cluster.ip_block();
    let name = format!("web-{}", rand::random::<u32>());
    let pods = cluster
        .deployment(&target_ns, &name, &[("app", &name)], 3, &mut ips.from(1))
        .await?;
    let addrs: Vec<String> = pods.keys().cloned().collect();
    let dir = tempfile::tempdir()?;
    let kubeconfig = cluster
        .service_account_kubeconfig(&ns, &sa, &dir.path().join("kubeconfig"))
        .await?;
    kube.mode = riposte_connectors::kubernetes::ClusterMode::Kubeconfig;
    kube.kubeconfig = Some(kubeconfig.clone());
    let actions = actions_of(set)?;
    let text = playbook(actions).replace("DELETE_IP", &addrs[2]);
    let svc = real_cluster::start_as(&kubeconfig, &[("chart.rhai", &text)], move |c, _| {
        c.kubernetes = kube;
    })
    .await?;
    // The token file must outlive the service's start; the kubeconfig is
    // read at start only.
    drop(dir);
    Ok((svc, addrs, actions, docs))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_charts_rbac_allows_every_action_its_value_set_enables() -> anyhow::Result<()> {
    let cluster = real_cluster::cluster().await?;
    for crd in [
        include_str!("crds/cilium-minimal.yaml"),
        include_str!("crds/calico-minimal.yaml"),
    ] {
        cluster.apply_yaml(crd, false).await?;
    }
    for set in value_sets()? {
        let release = format!("b-{}", set.trim_end_matches(".yaml"));
        let (svc, addrs, actions, _) = riposte_as_the_chart(cluster, &set, &release)
            .await
            .map_err(|e| e.context(set.clone()))?;
        send_c2(&svc, &addrs[0], 1).await?;
        let mut expected = [actions.quarantine, actions.label, actions.label]
            .iter()
            .chain([actions.block_egress, actions.events].iter())
            .filter(|on| **on)
            .count();
        if actions.delete_pod {
            send_c2(&svc, &addrs[2], 2).await?;
            expected += 1;
        }
        settled(&svc, expected)
            .await
            .map_err(|e| e.context(set.clone()))?;
        let not_applied: Vec<_> = outcomes(&svc)
            .into_iter()
            .filter(|(_, s, _, _)| *s != ActionStatus::Applied)
            .collect();
        assert!(
            not_applied.is_empty(),
            "{set}: {actions:?} not applied under the chart's RBAC: {not_applied:?}"
        );
        assert_eq!(
            svc.metric("riposte_actions_total", &[("status", "failed")]),
            0.0,
            "{set}"
        );
        if actions.events && (actions.quarantine || actions.block_egress) {
            // Riposte's own Events on the pod went through too.
            let ns = svc.config.kubernetes.namespaces.first().cloned();
            let ns = match ns {
                Some(n) => n,
                None => pod_namespace(&svc, &addrs[0])?,
            };
            eventually_ok(WAIT, || async {
                let events = cluster
                    .list::<k8s_openapi::api::core::v1::Event>(&ns)
                    .await?;
                events
                    .iter()
                    .any(|e| {
                        let r = e["reason"].as_str().unwrap_or_default();
                        r == "RiposteQuarantined" || r == "RiposteEgressBlocked"
                    })
                    .then_some(())
                    .ok_or_else(|| anyhow::anyhow!("{set}: no Event of Riposte's own"))
            })
            .await?;
        }
        eprintln!("{set}: {expected} actions applied under the chart's RBAC");
        svc.stop().await;
    }
    Ok(())
}

fn pod_namespace(svc: &Service, ip: &str) -> anyhow::Result<String> {
    let kube = svc
        .running
        .kube
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no cluster"))?;
    let pod = kube
        .index()
        .resolve(ip.parse()?)
        .ok_or_else(|| anyhow::anyhow!("{ip} not in the index"))?;
    Ok(pod.namespace.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_taken_away_is_refused_clearly_counted_and_recorded() -> anyhow::Result<()> {
    let cluster = real_cluster::cluster().await?;
    let (svc, addrs, _, docs) = riposte_as_the_chart(cluster, "default.yaml", "c-default").await?;
    // An administrator trims the ClusterRole: pods may no longer be patched.
    let mut role = docs
        .iter()
        .find(|d| d["kind"] == "ClusterRole")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no ClusterRole"))?;
    if let Some(rules) = role["rules"].as_array_mut() {
        for rule in rules {
            if rule["resources"] == serde_json::json!(["pods"]) {
                if let Some(verbs) = rule["verbs"].as_array_mut() {
                    verbs.retain(|v| v != "patch");
                }
            }
        }
    }
    cluster.apply_yaml(&role.to_string(), false).await?;
    send_c2(&svc, &addrs[0], 1).await?;
    let failed = riposte_tests::eventually(WAIT, || {
        outcomes(&svc)
            .into_iter()
            .find(|(a, s, _, _)| a == "quarantine" && *s == ActionStatus::Failed)
    })
    .await
    .map_err(|_| anyhow::anyhow!("quarantine did not fail: {:?}", outcomes(&svc)))?;
    // Clear: the code says forbidden, the reason names the verb, the
    // resource and who was refused.
    assert_eq!(failed.2.as_deref(), Some("forbidden"), "{failed:?}");
    let reason = failed.3.unwrap_or_default();
    assert!(
        reason.contains("403") && reason.contains("cannot patch resource \"pods\""),
        "{reason}"
    );
    assert!(reason.contains("system:serviceaccount:"), "{reason}");
    // Counted.
    assert!(
        svc.metric(
            "riposte_actions_total",
            &[("action", "quarantine"), ("status", "failed")]
        ) >= 1.0
    );
    // Recorded (the decision record above), once: a 403 is not retried: the refusal repeats itself.
    let attempts = svc
        .running
        .decisions
        .recent(10, &DecisionFilter::default())
        .into_iter()
        .flat_map(|d| d.actions)
        .find(|a| a.action == "quarantine")
        .map(|a| a.attempts);
    assert_eq!(attempts, Some(1));
    svc.stop().await;
    Ok(())
}
