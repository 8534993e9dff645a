//! The Helm chart, rendered by the real `helm template` (see `.ci/helm` for
//! where the binary comes from) with every value set in
//! deploy/helm/riposte/ci/, and checked for what a reviewer would check by
//! hand: well-formed objects, least-privilege RBAC that never exceeds
//! deploy/rbac (whose sufficiency tests/tests/kubernetes.rs proves),
//! hardened pods, the roles split, and a generated riposte.toml that
//! Riposte itself accepts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use riposte_engine::lint::yaml::{self, Node, Value};
use serde_json::{json, Value as Json};

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/helm/riposte");
const RBAC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/rbac");
/// Where `.ci/helm` caches the binary.
const CACHED_HELM: &str = "/var/tmp/riposte-ci-tools/helm-v4.1.4/helm";

fn helm() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("RIPOSTE_HELM") {
        return Some(PathBuf::from(p));
    }
    if Path::new(CACHED_HELM).is_file() {
        return Some(PathBuf::from(CACHED_HELM));
    }
    let found = Command::new("helm").arg("version").output();
    found
        .is_ok_and(|o| o.status.success())
        .then(|| PathBuf::from("helm"))
}

/// The rendered objects of one value set, or None (with a note) when no
/// helm binary is here; in CI a missing helm fails.
fn render(values: &str, extra: &[&str]) -> Option<Vec<Json>> {
    let Some(helm) = helm() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "no helm binary: run .ci/helm (it fetches and caches one) before the tests"
        );
        eprintln!("note: no helm binary (run .ci/helm): the chart was not rendered");
        return None;
    };
    let out = Command::new(helm)
        .args(["template", "riposte", CHART, "--namespace", "riposte", "-f"])
        .arg(Path::new(CHART).join("ci").join(values))
        .args(extra)
        .output()
        .expect("run helm");
    assert!(
        out.status.success(),
        "helm template {values}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let docs = yaml::parse_documents(&text).unwrap_or_else(|e| panic!("{values}: {e}\n{text}"));
    Some(
        docs.iter()
            .flatten()
            .filter(|d| d.is_mapping())
            .map(to_json)
            .collect(),
    )
}

fn to_json(node: &Node) -> Json {
    match &node.value {
        Value::Scalar(s) => Json::String(s.clone()),
        Value::Sequence(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Mapping(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), to_json(v)))
                .collect(),
        ),
    }
}

fn of_kind<'a>(objects: &'a [Json], kind: &str) -> Vec<&'a Json> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn value_sets() -> Vec<String> {
    let mut sets: Vec<String> = std::fs::read_dir(Path::new(CHART).join("ci"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    sets.sort();
    assert!(sets.len() >= 4, "{sets:?}");
    sets
}

type Grant = (String, String, String);

/// (apiGroup, resource, verb) triples of every Role and ClusterRole.
fn grants<'a>(objects: impl IntoIterator<Item = &'a Json>) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for o in objects {
        if o["kind"] != "Role" && o["kind"] != "ClusterRole" {
            continue;
        }
        for rule in o["rules"].as_array().unwrap() {
            for g in rule["apiGroups"].as_array().unwrap() {
                for r in rule["resources"].as_array().unwrap() {
                    for v in rule["verbs"].as_array().unwrap() {
                        out.insert((
                            g.as_str().unwrap().into(),
                            r.as_str().unwrap().into(),
                            v.as_str().unwrap().into(),
                        ));
                    }
                }
            }
        }
    }
    out
}

fn shipped_rbac() -> BTreeSet<Grant> {
    let mut objects = Vec::new();
    for entry in std::fs::read_dir(RBAC).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for doc in yaml::parse_documents(&text).unwrap().iter().flatten() {
            objects.push(to_json(doc));
        }
    }
    grants(&objects)
}

fn has(g: &BTreeSet<Grant>, group: &str, resource: &str, verb: &str) -> bool {
    g.contains(&(group.into(), resource.into(), verb.into()))
}

#[test]
fn every_value_set_renders_well_formed_hardened_objects() {
    for set in value_sets() {
        let Some(objects) = render(&set, &[]) else {
            return;
        };
        assert!(!objects.is_empty(), "{set}");
        for o in &objects {
            for field in ["apiVersion", "kind"] {
                assert!(
                    o[field].as_str().is_some_and(|s| !s.is_empty()),
                    "{set}: {o}"
                );
            }
            assert!(o["metadata"]["name"].is_string(), "{set}: {o}");
            let cluster_scoped =
                ["ClusterRole", "ClusterRoleBinding"].contains(&o["kind"].as_str().unwrap());
            let in_watched = ["Role", "RoleBinding"].contains(&o["kind"].as_str().unwrap());
            // The dashboard goes where Grafana's sidecar looks, when told.
            let dashboard_elsewhere =
                set == "rabbitmq.yaml" && o["metadata"]["name"] == "riposte-dashboard";
            if dashboard_elsewhere {
                assert_eq!(o["metadata"]["namespace"], "monitoring", "{set}: {o}");
            } else if !cluster_scoped && !in_watched {
                assert_eq!(o["metadata"]["namespace"], "riposte", "{set}: {o}");
            }
        }
        let deployments = of_kind(&objects, "Deployment");
        assert!(!deployments.is_empty(), "{set}");
        for d in deployments {
            let pod = &d["spec"]["template"]["spec"];
            assert_eq!(pod["securityContext"]["runAsNonRoot"], "true", "{set}");
            assert_eq!(
                pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
                "{set}"
            );
            let c = &pod["containers"][0];
            let sc = &c["securityContext"];
            assert_eq!(sc["readOnlyRootFilesystem"], "true", "{set}");
            assert_eq!(sc["allowPrivilegeEscalation"], "false", "{set}");
            assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{set}");
            assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz", "{set}");
            assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz", "{set}");
            assert!(c["resources"]["limits"]["memory"].is_string(), "{set}");
            assert_eq!(c["args"][0], "serve", "{set}");
            // Whatever is written lands on a volume, never the image.
            let mounts: Vec<&str> = c["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["mountPath"].as_str().unwrap())
                .collect();
            assert!(
                mounts.contains(&"/var/lib/riposte") && mounts.contains(&"/tmp"),
                "{set}: {mounts:?}"
            );
        }
        assert!(of_kind(&objects, "NetworkPolicy").len() <= 1, "{set}");
    }
}

#[test]
fn rbac_never_exceeds_the_shipped_manifests_and_follows_the_actions() {
    let shipped = shipped_rbac();
    for set in value_sets() {
        let Some(objects) = render(&set, &[]) else {
            return;
        };
        let granted = grants(&objects);
        let extra: Vec<&Grant> = granted.difference(&shipped).collect();
        assert!(
            extra.is_empty(),
            "{set} grants beyond deploy/rbac: {extra:?}"
        );
        // Every binding names the chart's ServiceAccount in its namespace.
        for b in objects
            .iter()
            .filter(|o| o["kind"] == "RoleBinding" || o["kind"] == "ClusterRoleBinding")
        {
            assert_eq!(b["subjects"][0]["name"], "riposte", "{set}");
            assert_eq!(b["subjects"][0]["namespace"], "riposte", "{set}");
        }
    }
    let default = grants(&render("default.yaml", &[]).unwrap_or_default());
    if default.is_empty() {
        return;
    }
    assert!(has(&default, "", "pods", "watch") && has(&default, "", "pods", "patch"));
    assert!(has(
        &default,
        "networking.k8s.io",
        "networkpolicies",
        "create"
    ));
    assert!(
        !has(&default, "", "pods", "delete"),
        "delete_pod is off by default"
    );
    assert!(
        !has(&default, "", "services", "list"),
        "detach is off by default"
    );
    assert!(!has(
        &default,
        "cilium.io",
        "ciliumnetworkpolicies",
        "create"
    ));
    assert!(
        !has(&default, "coordination.k8s.io", "leases", "create"),
        "one pod elects nobody"
    );

    let full = grants(&render("full.yaml", &[]).unwrap());
    assert!(has(&full, "", "pods", "delete") && has(&full, "", "services", "list"));
    assert!(has(&full, "apps", "daemonsets", "get"));
    assert!(has(&full, "cilium.io", "ciliumnetworkpolicies", "patch"));
    assert!(!has(
        &full,
        "crd.projectcalico.org",
        "networkpolicies",
        "patch"
    ));
    assert!(has(&full, "coordination.k8s.io", "leases", "update"));

    let mq = grants(&render("rabbitmq.yaml", &[]).unwrap());
    assert!(has(&mq, "crd.projectcalico.org", "tiers", "create"));
    assert!(!has(&mq, "cilium.io", "ciliumnetworkpolicies", "patch"));

    // Quarantine and labels off, block_egress on: pods are still patched
    // (block_egress labels its target pod for the policy to select; the
    // real API server refused it without, see helm_chart_real.rs), never
    // deleted.
    let restricted = render("restricted.yaml", &[]).unwrap();
    let r = grants(&restricted);
    assert!(has(&r, "", "pods", "patch"), "{r:?}");
    assert!(!has(&r, "", "pods", "delete"), "{r:?}");
    assert!(!has(&r, "", "events", "create"), "{r:?}");
    assert!(
        has(&r, "networking.k8s.io", "networkpolicies", "create"),
        "block_egress stays"
    );
    let roles: Vec<&str> = of_kind(&restricted, "Role")
        .iter()
        .map(|r| r["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(roles, vec!["shop", "payments"]);
    let cluster = grants(of_kind(&restricted, "ClusterRole"));
    assert_eq!(
        cluster
            .iter()
            .map(|g| g.1.as_str())
            .collect::<BTreeSet<_>>(),
        BTreeSet::from(["namespaces"]),
        "watching some namespaces reads only namespaces cluster-wide"
    );
}

#[test]
fn rabbitmq_splits_ingest_and_worker_and_the_syslog_service_feeds_ingest() {
    let Some(objects) = render("rabbitmq.yaml", &[]) else {
        return;
    };
    let deployments = of_kind(&objects, "Deployment");
    let roles: Vec<(&str, Vec<&str>)> = deployments
        .iter()
        .map(|d| {
            let args = d["spec"]["template"]["spec"]["containers"][0]["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            (d["metadata"]["name"].as_str().unwrap(), args)
        })
        .collect();
    assert_eq!(roles.len(), 2, "{roles:?}");
    assert_eq!(roles[0].0, "riposte-ingest");
    assert!(roles[0].1.ends_with(&["--role", "ingest"]), "{roles:?}");
    assert_eq!(roles[1].0, "riposte-worker");
    assert!(roles[1].1.ends_with(&["--role", "worker"]), "{roles:?}");
    let syslog = objects
        .iter()
        .find(|o| o["kind"] == "Service" && o["metadata"]["name"] == "riposte-syslog")
        .unwrap();
    assert_eq!(
        syslog["spec"]["selector"]["app.kubernetes.io/component"],
        "ingest"
    );
    assert_eq!(of_kind(&objects, "PodDisruptionBudget").len(), 2);
    // The chart refuses several pods on one SQLite file.
    let helm = match helm() {
        Some(h) => h,
        None => return,
    };
    let out = Command::new(helm)
        .args(["template", "riposte", CHART, "--set", "replicaCount=2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("store.postgres"));
}

#[test]
fn the_generated_config_is_accepted_by_riposte() {
    let tls = tempfile::tempdir().unwrap();
    for f in ["tls.crt", "tls.key", "ca.crt"] {
        std::fs::write(tls.path().join(f), "placeholder").unwrap();
    }
    let mut checked = 0;
    for set in value_sets() {
        let Some(objects) = render(&set, &[]) else {
            return;
        };
        let Some(toml) = objects
            .iter()
            .find(|o| o["metadata"]["name"] == "riposte-config")
            .map(|o| {
                let data = if o["kind"] == "Secret" {
                    &o["stringData"]
                } else {
                    &o["data"]
                };
                data["riposte.toml"].as_str().unwrap().to_string()
            })
        else {
            continue; // an existing ConfigMap is the user's
        };
        check_connector_tables(&set, &toml);
        // The mounted secrets, as placeholder files where Riposte reads them.
        const SECRETS: &str = "/etc/riposte/secrets/";
        for mention in toml.split(SECRETS).skip(1) {
            let name: String = mention
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "-._".contains(*c))
                .collect();
            std::fs::write(tls.path().join(name), "placeholder\n").unwrap();
        }
        let text = toml
            .replace("/etc/riposte/tls/", &format!("{}/", tls.path().display()))
            .replace(SECRETS, &format!("{}/", tls.path().display()));
        let config = riposte_engine::config::Config::from_toml(&text, Path::new(&set))
            .unwrap_or_else(|e| panic!("{set}: {e}\n{text}"));
        // Expiries and reconciliation must run somewhere: alone, the pod
        // leads; with several, the Lease decides, and the chart grants it.
        let lease_rbac = of_kind(&objects, "Role").iter().any(|r| {
            r["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("-leader-election"))
        });
        use riposte_engine::leader::LeaderBackend;
        match config.leader.backend {
            LeaderBackend::Kubernetes => assert!(lease_rbac, "{set}: a Lease without RBAC"),
            LeaderBackend::None => assert!(
                set.ends_with("default.yaml") || set.ends_with("restricted.yaml"),
                "{set}: several pods need an election"
            ),
            other => panic!("{set}: leader backend {other:?}"),
        }
        checked += 1;
    }
    assert!(checked >= 3, "{checked}");
}

/// The notification targets also pass the connector's own validation
/// (URLs, auth, formats), which parsing the config alone does not run.
fn check_connector_tables(set: &str, text: &str) {
    use serde::Deserialize;
    let doc: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("{set}: {e}\n{text}"));
    let targets = |table: &str| -> Vec<toml::Value> {
        doc.get(table)
            .and_then(|t| t.get("targets"))
            .and_then(|t| t.as_array())
            .cloned()
            .unwrap_or_default()
    };
    for t in targets("notify") {
        let target = riposte_connectors::soar::TargetConfig::deserialize(t.clone())
            .unwrap_or_else(|e| panic!("{set}: [[notify.targets]] {t}: {e}"));
        target
            .validate()
            .unwrap_or_else(|e| panic!("{set}: {}: {e}", target.name));
    }
}

#[test]
fn the_images_default_config_is_accepted_by_riposte() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/container/riposte.toml"
    );
    let config = riposte_engine::config::Config::load(Path::new(path)).unwrap();
    assert_eq!(config.data_dir, Path::new("/var/lib/riposte"));
    assert_eq!(config.http.listen.map(|a| a.port()), Some(8080));
    assert!(config.syslog.udp.listen[0].ip().is_unspecified());
}

/// The monitoring files the chart carries, as deploy/monitoring ships them.
fn monitoring_file(name: &str) -> String {
    let path = Path::new(CHART).join("../../monitoring").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

#[test]
fn the_dashboard_and_the_alert_rules_ride_along_when_enabled() {
    let Some(default) = render("default.yaml", &[]) else {
        return;
    };
    assert!(of_kind(&default, "PrometheusRule").is_empty());
    assert!(!default
        .iter()
        .any(|o| o["metadata"]["name"] == "riposte-dashboard"));

    let full = render("full.yaml", &[]).unwrap();
    let dashboard = full
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == "riposte-dashboard")
        .expect("the dashboard ConfigMap");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(
        dashboard["metadata"]["annotations"]["grafana_folder"],
        "Security"
    );
    let json = dashboard["data"]["riposte-dashboard.json"]
        .as_str()
        .unwrap();
    assert_eq!(
        json.trim_end(),
        monitoring_file("riposte-dashboard.json").trim_end()
    );
    assert!(serde_json::from_str::<Json>(json).is_ok());

    let rules = of_kind(&full, "PrometheusRule");
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rules[0]["metadata"]["labels"]["release"], "prometheus");
    let shipped = yaml::parse_documents(&monitoring_file("riposte-alerts.yaml")).unwrap();
    let shipped = to_json(shipped.iter().flatten().next().unwrap());
    assert_eq!(rules[0]["spec"]["groups"], shipped["groups"]);

    let mq = render("rabbitmq.yaml", &[]).unwrap();
    assert!(of_kind(&mq, "PrometheusRule").is_empty());
    assert!(mq
        .iter()
        .any(|o| o["metadata"]["name"] == "riposte-dashboard"));
}
