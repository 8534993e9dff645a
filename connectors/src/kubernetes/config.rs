//! `[kubernetes]`: how to reach the cluster, what to watch, and what a
//! quarantine or an egress block looks like.
//!
//! Every field's doc comment is its user documentation; the engine embeds
//! [`KubernetesConfig`] in its TOML file, so unknown keys are rejected.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::kubernetes::error::{KubeError, Result};
use crate::kubernetes::labels;

/// In-cluster service-account credentials, where kubelet mounts them.
pub const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
const SERVICE_HOST_ENV: &str = "KUBERNETES_SERVICE_HOST";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesConfig {
    /// How to find the cluster: `auto` (in-cluster when the service-account
    /// environment and token exist, else the `kubeconfig` file when one is
    /// named here, else off — never a kubeconfig merely found in
    /// `$KUBECONFIG` or `~/.kube/config`), `in-cluster`, `kubeconfig` (the
    /// named file, else `$KUBECONFIG`, else `~/.kube/config`) or `off`. Without a cluster,
    /// Kubernetes actions are recorded as skipped ("no cluster configured").
    pub mode: ClusterMode,
    /// The kubeconfig file; default `$KUBECONFIG`, then `~/.kube/config`.
    /// Setting it makes `auto` use it.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context; default: its current context.
    pub context: Option<String>,
    /// Namespaces to watch and act in; empty: the whole cluster. Limiting
    /// them also limits the RBAC Riposte needs to Roles in those namespaces
    /// (plus reading the namespaces themselves).
    pub namespaces: Vec<String>,
    /// The server-side apply field manager of every write.
    pub field_manager: String,
    /// Longest wait for one API request of an action (watches are
    /// long-lived and not bound by it); a timeout is a transient failure.
    pub request_timeout_secs: u64,
    /// Record a Kubernetes Event on the pod for every action and refusal
    /// (the chart's `actions.events`). Off, Riposte writes none of its own
    /// and needs no RBAC on Events; a playbook's explicit `k8s_event` is
    /// still attempted, and refused by the API server without that RBAC.
    pub events: bool,
    pub quarantine: QuarantineConfig,
    pub egress: EgressConfig,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        KubernetesConfig {
            mode: ClusterMode::Auto,
            kubeconfig: None,
            context: None,
            namespaces: Vec::new(),
            field_manager: "riposte".into(),
            request_timeout_secs: 10,
            events: true,
            quarantine: QuarantineConfig::default(),
            egress: EgressConfig::default(),
        }
    }
}

/// Where the cluster's address and credentials come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterMode {
    #[default]
    Auto,
    InCluster,
    Kubeconfig,
    Off,
}

/// `[kubernetes.quarantine]`: the label, the deny-all policy and its
/// allowances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuarantineConfig {
    /// The label (value `true`) that marks a quarantined pod and that the
    /// deny-all policy selects.
    pub label: String,
    /// Name of the deny-all NetworkPolicy Riposte keeps in each namespace
    /// holding a quarantined pod.
    pub policy_name: String,
    /// Let quarantined pods still resolve names: egress to the DNS pods
    /// (`dns_namespace`, `dns_pod_labels`) on port 53, UDP and TCP.
    pub allow_dns: bool,
    /// Namespace of the cluster DNS pods.
    pub dns_namespace: String,
    /// Labels of the cluster DNS pods.
    pub dns_pod_labels: BTreeMap<String, String>,
    /// Namespaces whose pods may still connect to a quarantined pod, such
    /// as a forensics namespace.
    pub allow_ingress_from_namespaces: Vec<String>,
    /// Networks a quarantined pod may still reach (a log collector, a
    /// node-local DNS cache such as 169.254.20.10/32).
    pub allow_egress_to: Vec<IpNet>,
    /// Take the labels that the pod's ReplicaSet (or DaemonSet, Job) and the
    /// namespace's Services select on off the pod, keeping them in the
    /// `riposte.io/detached-labels` annotation: the workload gets a clean
    /// replacement and Services stop sending traffic, while the quarantined
    /// pod is kept for forensics.
    pub detach: bool,
    /// What release does with a detached pod: `restore` its labels, or
    /// `delete` it (its replacement already runs).
    pub release_detached: DetachedRelease,
}

impl Default for QuarantineConfig {
    fn default() -> Self {
        QuarantineConfig {
            label: "riposte.io/quarantine".into(),
            policy_name: "riposte-quarantine".into(),
            allow_dns: true,
            dns_namespace: "kube-system".into(),
            dns_pod_labels: BTreeMap::from([("k8s-app".to_owned(), "kube-dns".to_owned())]),
            allow_ingress_from_namespaces: Vec::new(),
            allow_egress_to: Vec::new(),
            detach: false,
            release_detached: DetachedRelease::Restore,
        }
    }
}

/// Release of a detached pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetachedRelease {
    /// Put the detached labels back (the workload then has one pod more
    /// than it wants and scales one down).
    #[default]
    Restore,
    /// Delete the pod.
    Delete,
}

/// `[kubernetes.egress]`: how `block_egress` is expressed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgressConfig {
    /// `networkpolicy` (standard, an allow-all-except policy; see the
    /// limits in the egress module docs), `cilium` (CiliumNetworkPolicy
    /// `egressDeny`, Cilium 1.15 or later) or `calico` (a Calico
    /// NetworkPolicy with a Deny rule in its own tier).
    pub backend: EgressBackend,
    /// Keep DNS to the cluster DNS pods allowed even when the blocked
    /// network contains them (standard NetworkPolicy only; the deny
    /// backends leave everything but the blocked network untouched).
    pub keep_dns: bool,
    /// Calico: the tier Riposte's policies live in. It is created when
    /// missing; its policies end with Pass, so the tiers after it (and the
    /// Kubernetes NetworkPolicies in `default`) still decide the rest.
    pub calico_tier: String,
    /// Calico: the tier's order (lower is evaluated first).
    pub calico_tier_order: f64,
    /// Calico: the order of each policy within the tier.
    pub calico_order: f64,
}

impl Default for EgressConfig {
    fn default() -> Self {
        EgressConfig {
            backend: EgressBackend::NetworkPolicy,
            keep_dns: true,
            calico_tier: "riposte".into(),
            calico_tier_order: 100.0,
            calico_order: 100.0,
        }
    }
}

/// The policy API used by `block_egress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EgressBackend {
    #[default]
    #[serde(rename = "networkpolicy")]
    NetworkPolicy,
    Cilium,
    Calico,
}

impl EgressBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            EgressBackend::NetworkPolicy => "networkpolicy",
            EgressBackend::Cilium => "cilium",
            EgressBackend::Calico => "calico",
        }
    }
}

/// Where [`KubernetesConfig::client`] found the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterSource {
    InCluster,
    /// Kubeconfig files, merged in order like kubectl does.
    Kubeconfig(Vec<PathBuf>),
}

/// The process environment, behind a trait so detection is testable
/// without mutating the real environment.
pub(crate) trait Environment {
    fn var(&self, key: &str) -> Option<OsString>;
    fn exists(&self, path: &Path) -> bool;
}

struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, key: &str) -> Option<OsString> {
        std::env::var_os(key)
    }
    fn exists(&self, path: &Path) -> bool {
        path.is_file()
    }
}

impl KubernetesConfig {
    /// The per-request timeout of actions.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs.max(1))
    }

    /// Checks what a typo would otherwise turn into a 422 at the first
    /// quarantine.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, e: KubeError| KubeError::Config(format!("kubernetes.{key}: {e}"));
        for ns in &self.namespaces {
            labels::validate_namespace(ns).map_err(|e| bad("namespaces", e))?;
        }
        if self.field_manager.is_empty() || self.field_manager.len() > 128 {
            return Err(KubeError::Config(
                "kubernetes.field_manager: 1 to 128 characters".into(),
            ));
        }
        if self.request_timeout_secs == 0 {
            return Err(KubeError::Config(
                "kubernetes.request_timeout_secs: must be at least 1".into(),
            ));
        }
        let q = &self.quarantine;
        labels::validate_key("label", &q.label).map_err(|e| bad("quarantine.label", e))?;
        labels::validate_object_name("policy", &q.policy_name)
            .map_err(|e| bad("quarantine.policy_name", e))?;
        labels::validate_namespace(&q.dns_namespace)
            .map_err(|e| bad("quarantine.dns_namespace", e))?;
        for (k, v) in &q.dns_pod_labels {
            labels::validate_key("label", k).map_err(|e| bad("quarantine.dns_pod_labels", e))?;
            labels::validate_label_value(k, v).map_err(|e| bad("quarantine.dns_pod_labels", e))?;
        }
        if q.allow_dns && q.dns_pod_labels.is_empty() {
            return Err(KubeError::Config(
                "kubernetes.quarantine.dns_pod_labels: empty would allow DNS to every pod of the DNS namespace; name the DNS pods' labels".into(),
            ));
        }
        for ns in &q.allow_ingress_from_namespaces {
            labels::validate_namespace(ns)
                .map_err(|e| bad("quarantine.allow_ingress_from_namespaces", e))?;
        }
        if self.egress.backend == EgressBackend::Calico
            && !labels::is_dns_label(&self.egress.calico_tier)
        {
            return Err(KubeError::Config(format!(
                "kubernetes.egress.calico_tier: {:?} is not a DNS-1123 label",
                self.egress.calico_tier
            )));
        }
        Ok(())
    }

    /// Where the cluster is, per `mode`; `None` when there is none to use.
    pub fn cluster_source(&self) -> Result<Option<ClusterSource>> {
        self.detect(&ProcessEnvironment)
    }

    pub(crate) fn detect(&self, env: &dyn Environment) -> Result<Option<ClusterSource>> {
        let in_cluster =
            || env.var(SERVICE_HOST_ENV).is_some() && env.exists(Path::new(SERVICE_ACCOUNT_TOKEN));
        match self.mode {
            ClusterMode::Off => Ok(None),
            ClusterMode::InCluster => {
                if in_cluster() {
                    Ok(Some(ClusterSource::InCluster))
                } else {
                    Err(KubeError::Config(format!(
                        "mode is in-cluster, but {SERVICE_HOST_ENV} is not set or {SERVICE_ACCOUNT_TOKEN} is missing"
                    )))
                }
            }
            ClusterMode::Kubeconfig => match self.kubeconfig_paths(env) {
                Some(paths) => Ok(Some(ClusterSource::Kubeconfig(paths))),
                None => Err(KubeError::Config(match &self.kubeconfig {
                    Some(p) => format!("kubeconfig {} does not exist", p.display()),
                    None => "mode is kubeconfig, but neither $KUBECONFIG nor ~/.kube/config names an existing file".into(),
                })),
            },
            ClusterMode::Auto => {
                if let Some(p) = &self.kubeconfig {
                    // Named explicitly: a missing file is a mistake, not "no cluster".
                    return if env.exists(p) {
                        Ok(Some(ClusterSource::Kubeconfig(vec![p.clone()])))
                    } else {
                        Err(KubeError::Config(format!(
                            "kubeconfig {} does not exist",
                            p.display()
                        )))
                    };
                }
                // Never a kubeconfig found lying around: `riposte serve` on
                // an engineer's laptop must not start quarantining pods in
                // whatever cluster kubectl happens to point at. Outside a
                // cluster, a kubeconfig is used only when named or when
                // `mode = "kubeconfig"`.
                Ok(in_cluster().then_some(ClusterSource::InCluster))
            }
        }
    }

    fn kubeconfig_paths(&self, env: &dyn Environment) -> Option<Vec<PathBuf>> {
        if let Some(p) = &self.kubeconfig {
            return env.exists(p).then(|| vec![p.clone()]);
        }
        if let Some(list) = env.var("KUBECONFIG") {
            let paths: Vec<PathBuf> = std::env::split_paths(&list)
                .filter(|p| !p.as_os_str().is_empty() && env.exists(p))
                .collect();
            if !paths.is_empty() {
                return Some(paths);
            }
        }
        let home = env.var("HOME")?;
        let p = Path::new(&home).join(".kube").join("config");
        env.exists(&p).then(|| vec![p])
    }

    /// A client for the configured cluster; `None` when `mode` is `off` or
    /// `auto` found no cluster. Retries are left to the caller: the client
    /// never sleeps on a 429 by itself.
    pub async fn client(&self) -> Result<Option<kube::Client>> {
        let Some(source) = self.cluster_source()? else {
            return Ok(None);
        };
        let config = match source {
            ClusterSource::InCluster => kube::Config::incluster()
                .map_err(|e| KubeError::Config(format!("in-cluster configuration: {e}")))?,
            ClusterSource::Kubeconfig(paths) => {
                let mut merged: Option<kube::config::Kubeconfig> = None;
                for p in &paths {
                    let one = kube::config::Kubeconfig::read_from(p)
                        .map_err(|e| KubeError::Config(format!("{}: {e}", p.display())))?;
                    merged = Some(match merged {
                        None => one,
                        Some(m) => m
                            .merge(one)
                            .map_err(|e| KubeError::Config(format!("{}: {e}", p.display())))?,
                    });
                }
                let kubeconfig = merged.unwrap_or_default();
                let options = kube::config::KubeConfigOptions {
                    context: self.context.clone(),
                    ..Default::default()
                };
                kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|e| KubeError::Config(format!("kubeconfig: {e}")))?
            }
        };
        crate::kubernetes::client::build(config, self.request_timeout()).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    #[derive(Default)]
    struct FakeEnv {
        vars: HashMap<String, String>,
        files: HashSet<PathBuf>,
    }

    impl Environment for FakeEnv {
        fn var(&self, key: &str) -> Option<OsString> {
            self.vars.get(key).map(OsString::from)
        }
        fn exists(&self, path: &Path) -> bool {
            self.files.contains(path)
        }
    }

    fn in_cluster_env() -> FakeEnv {
        let mut env = FakeEnv::default();
        env.vars.insert(SERVICE_HOST_ENV.into(), "10.96.0.1".into());
        env.files.insert(PathBuf::from(SERVICE_ACCOUNT_TOKEN));
        env
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = KubernetesConfig::default();
        assert_eq!(c.mode, ClusterMode::Auto);
        assert_eq!(c.field_manager, "riposte");
        assert_eq!(c.quarantine.label, "riposte.io/quarantine");
        assert_eq!(c.quarantine.policy_name, "riposte-quarantine");
        assert!(c.quarantine.allow_dns);
        assert!(!c.quarantine.detach);
        assert_eq!(c.quarantine.release_detached, DetachedRelease::Restore);
        assert_eq!(c.egress.backend, EgressBackend::NetworkPolicy);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn parses_from_json_shape_and_rejects_unknown_keys() {
        let c: KubernetesConfig = serde_json::from_value(serde_json::json!({
            "mode": "in-cluster",
            "namespaces": ["shop"],
            "quarantine": {"detach": true, "release_detached": "delete", "allow_egress_to": ["10.0.0.0/8"]},
            "egress": {"backend": "cilium"}
        }))
        .expect("valid config");
        assert_eq!(c.mode, ClusterMode::InCluster);
        assert!(c.quarantine.detach);
        assert_eq!(c.quarantine.release_detached, DetachedRelease::Delete);
        assert_eq!(c.egress.backend, EgressBackend::Cilium);
        let err = serde_json::from_value::<KubernetesConfig>(
            serde_json::json!({"quarantine": {"lable": "x"}}),
        )
        .expect_err("typo");
        assert!(err.to_string().contains("lable"), "{err}");
    }

    #[test]
    fn validation_names_the_bad_key() {
        let mut c = KubernetesConfig::default();
        c.quarantine.label = "bad label".into();
        let e = c.validate().expect_err("bad label");
        assert!(e.to_string().contains("quarantine.label"), "{e}");
        let c = KubernetesConfig {
            namespaces: vec!["Shop".into()],
            ..KubernetesConfig::default()
        };
        assert!(c.validate().is_err());
        let mut c = KubernetesConfig::default();
        c.quarantine.dns_pod_labels.clear();
        assert!(
            c.validate().is_err(),
            "DNS to a whole namespace is too wide"
        );
    }

    #[test]
    fn auto_is_in_cluster_or_a_named_kubeconfig_never_a_stray_one() {
        let c = KubernetesConfig::default();
        assert_eq!(
            c.detect(&in_cluster_env()).expect("detect"),
            Some(ClusterSource::InCluster)
        );

        // A developer's kubeconfig is not picked up by `auto`…
        let mut env = FakeEnv::default();
        env.vars.insert("HOME".into(), "/home/sec".into());
        env.files.insert(PathBuf::from("/home/sec/.kube/config"));
        env.vars
            .insert("KUBECONFIG".into(), "/a:/missing:/b".into());
        env.files.insert(PathBuf::from("/a"));
        env.files.insert(PathBuf::from("/b"));
        assert_eq!(c.detect(&env).expect("detect"), None);

        // …only by `mode = "kubeconfig"`, which merges $KUBECONFIG like kubectl.
        let k = KubernetesConfig {
            mode: ClusterMode::Kubeconfig,
            ..KubernetesConfig::default()
        };
        assert_eq!(
            k.detect(&env).expect("detect"),
            Some(ClusterSource::Kubeconfig(vec![
                PathBuf::from("/a"),
                PathBuf::from("/b")
            ]))
        );
        env.vars.remove("KUBECONFIG");
        assert_eq!(
            k.detect(&env).expect("detect"),
            Some(ClusterSource::Kubeconfig(vec![PathBuf::from(
                "/home/sec/.kube/config"
            )]))
        );

        // A kubeconfig named in the config is used by `auto` too.
        let named = KubernetesConfig {
            kubeconfig: Some(PathBuf::from("/a")),
            ..KubernetesConfig::default()
        };
        assert_eq!(
            named.detect(&env).expect("detect"),
            Some(ClusterSource::Kubeconfig(vec![PathBuf::from("/a")]))
        );
        assert_eq!(c.detect(&FakeEnv::default()).expect("detect"), None);
    }

    #[test]
    fn explicit_modes_fail_loudly_when_their_cluster_is_missing() {
        let mut c = KubernetesConfig {
            mode: ClusterMode::InCluster,
            ..KubernetesConfig::default()
        };
        assert!(c.detect(&FakeEnv::default()).is_err());
        c.mode = ClusterMode::Kubeconfig;
        assert!(c.detect(&FakeEnv::default()).is_err());
        c.mode = ClusterMode::Auto;
        c.kubeconfig = Some(PathBuf::from("/etc/riposte/kubeconfig"));
        assert!(
            c.detect(&in_cluster_env()).is_err(),
            "a named file must exist"
        );
        c.mode = ClusterMode::Off;
        assert_eq!(c.detect(&in_cluster_env()).expect("off"), None);
    }

    #[tokio::test]
    async fn off_gives_no_client() {
        let c = KubernetesConfig {
            mode: ClusterMode::Off,
            ..KubernetesConfig::default()
        };
        assert!(c.client().await.expect("off is not an error").is_none());
    }
}
