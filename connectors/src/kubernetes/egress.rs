//! `block_egress` / `unblock_egress`: deny the selected pods' traffic to a
//! network, with the policy API chosen by `[kubernetes.egress] backend`.
//!
//! The policy is named after the action id, so the same action applies the
//! same object. A single-pod target is labelled
//! `riposte.io/egress-<id>=true` first, because policies select pods by
//! label only. What a block is (network, ports, expiry, reason) lives on
//! the policy's annotations, so [`KubernetesConnector::egress_blocks`] can
//! rebuild every expiry after a restart, like quarantines.
//!
//! See [`policy::egress_network_policy`] for what the standard
//! NetworkPolicy backend cannot do.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch};
use kube::core::{GroupVersionKind, ObjectMeta};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::kubernetes::config::EgressBackend;
use crate::kubernetes::connector::KubernetesConnector;
use crate::kubernetes::error::{KubeError, Result};
use crate::kubernetes::names::*;
use crate::kubernetes::policy::{self, EgressPolicy, EgressSpec};
use crate::kubernetes::target::{EgressTarget, PodRef};

/// What `block_egress` applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressResult {
    pub backend: EgressBackend,
    pub namespace: String,
    /// The policy's name (Calico: with its tier prefix).
    pub policy: String,
    /// The pod that was labelled so the policy selects it, for a pod target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labeled_pod: Option<PodRef>,
}

/// What `unblock_egress` removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnblockResult {
    pub policy_deleted: bool,
    pub unlabeled_pods: usize,
}

/// An egress block read back from the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressBlock {
    pub backend: EgressBackend,
    pub namespace: String,
    pub policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<IpNet>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_pod: Option<PodRef>,
    /// Annotations that could not be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

impl EgressBlock {
    pub(crate) fn from_meta(backend: EgressBackend, meta: &ObjectMeta) -> Option<EgressBlock> {
        let namespace = meta.namespace.clone()?;
        let policy = meta.name.clone()?;
        let empty = BTreeMap::new();
        let ann = meta.annotations.as_ref().unwrap_or(&empty);
        let mut problems = Vec::new();
        let cidr = ann
            .get(ANN_CIDR)
            .and_then(|raw| match raw.parse::<IpNet>() {
                Ok(c) => Some(c),
                Err(e) => {
                    problems.push(format!("{ANN_CIDR}: {raw:?}: {e}"));
                    None
                }
            });
        let ports = ann
            .get(ANN_PORTS)
            .map(|raw| {
                raw.split(',')
                    .filter_map(|p| match p.trim().parse::<u16>() {
                        Ok(p) => Some(p),
                        Err(_) => {
                            problems.push(format!("{ANN_PORTS}: {p:?} is not a port"));
                            None
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let expires_at =
            ann.get(ANN_EXPIRES_AT).and_then(|raw| {
                match DateTime::parse_from_rfc3339(raw.trim()) {
                    Ok(t) => Some(t.with_timezone(&Utc)),
                    Err(e) => {
                        problems.push(format!("{ANN_EXPIRES_AT}: {raw:?}: {e}"));
                        None
                    }
                }
            });
        let target_pod = ann
            .get(ANN_TARGET_POD)
            .and_then(|raw| raw.split_once('/'))
            .map(|(ns, name)| PodRef::new(ns, name));
        Some(EgressBlock {
            backend,
            namespace,
            policy,
            action_id: ann.get(ANN_ACTION_ID).cloned(),
            cidr,
            ports,
            expires_at,
            target_pod,
            problems,
        })
    }
}

fn cilium_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cilium.io", "v2", "CiliumNetworkPolicy"),
        "ciliumnetworkpolicies",
    )
}

fn calico_policy_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("crd.projectcalico.org", "v1", "NetworkPolicy"),
        "networkpolicies",
    )
}

fn calico_tier_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("crd.projectcalico.org", "v1", "Tier"),
        "tiers",
    )
}

/// A 404 on a custom resource usually means the CNI's CRDs are missing.
fn crd_missing(e: KubeError, what: &str) -> KubeError {
    if e.status_code() == Some(404) {
        KubeError::Config(format!(
            "{what} is not served by this cluster ({e}); is the CNI installed, or should kubernetes.egress.backend be changed?"
        ))
    } else {
        e
    }
}

impl KubernetesConnector {
    fn policy_name(&self, action_id: &str) -> String {
        let name = egress_policy_name(action_id);
        match self.inner.config.egress.backend {
            EgressBackend::Calico => {
                policy::calico_policy_name(&self.inner.config.egress.calico_tier, &name)
            }
            _ => name,
        }
    }

    /// Blocks the target's egress to `cidr` (on `spec.ports`, or entirely).
    pub async fn block_egress(
        &self,
        target: &EgressTarget,
        cidr: IpNet,
        spec: &EgressSpec,
    ) -> Result<EgressResult> {
        target.validate()?;
        if spec.action_id.trim().is_empty() {
            return Err(KubeError::invalid(
                "block_egress",
                "an action id is required (it names the policy)",
            ));
        }
        policy::normalize_ports(&spec.ports)?;
        let cfg = &self.inner.config;
        let namespace = target.namespace().to_owned();
        let name = self.policy_name(&spec.action_id);
        let (selector, labeled_pod, target_pod) = match target {
            EgressTarget::Selector { labels, .. } => (labels.clone(), None, None),
            EgressTarget::Pod(pod) => {
                let live = self.get_pod(pod).await?;
                let uid = live.metadata.uid.clone().unwrap_or_default();
                let current = PodRef::new(pod.namespace.clone(), pod.name.clone()).with_uid(uid);
                let key = egress_pod_label(&spec.action_id);
                let changes = BTreeMap::from([(key.clone(), Some("true".to_owned()))]);
                let patch = crate::kubernetes::edit::metadata_patch(
                    "labels",
                    &changes,
                    current.uid.as_deref(),
                );
                if let Err(e) = self
                    .call(self.pods(&pod.namespace).patch(
                        &pod.name,
                        &self.patch_params(),
                        &Patch::Merge(&patch),
                    ))
                    .await
                {
                    return Err(self.classify_pod_error(&current, e).await);
                }
                let selector = BTreeMap::from([(key, "true".to_owned())]);
                (selector, Some(current), Some(pod.to_string()))
            }
        };
        let p = EgressPolicy {
            name: &name,
            namespace: &namespace,
            pod_selector: &selector,
            cidr,
            spec,
            target_pod: target_pod.as_deref(),
        };
        let client = self.inner.client.clone();
        match cfg.egress.backend {
            EgressBackend::NetworkPolicy => {
                let body = policy::egress_network_policy(&p, &cfg.quarantine, &cfg.egress)?;
                let api: Api<NetworkPolicy> = Api::namespaced(client, &namespace);
                self.call(api.patch(&name, &self.apply_params(), &Patch::Apply(&body)))
                    .await?;
            }
            EgressBackend::Cilium => {
                let body = policy::egress_cilium_policy(&p)?;
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client, &namespace, &cilium_resource());
                self.call(api.patch(&name, &self.apply_params(), &Patch::Apply(&body)))
                    .await
                    .map_err(|e| crd_missing(e, "CiliumNetworkPolicy"))?;
            }
            EgressBackend::Calico => {
                self.ensure_calico_tier().await?;
                let body = policy::egress_calico_policy(&p, &cfg.egress)?;
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client, &namespace, &calico_policy_resource());
                self.call(api.patch(&name, &self.apply_params(), &Patch::Apply(&body)))
                    .await
                    .map_err(|e| crd_missing(e, "Calico NetworkPolicy"))?;
            }
        }
        tracing::info!(namespace = %namespace, policy = %name, %cidr, backend = cfg.egress.backend.as_str(), "egress blocked");
        Ok(EgressResult {
            backend: cfg.egress.backend,
            namespace,
            policy: name,
            labeled_pod,
        })
    }

    async fn ensure_calico_tier(&self) -> Result<()> {
        let egress = &self.inner.config.egress;
        if egress.calico_tier == "default" {
            return Ok(());
        }
        self.inner
            .calico_tier
            .get_or_try_init(|| async {
                let body = policy::calico_tier(egress);
                let api: Api<DynamicObject> =
                    Api::all_with(self.inner.client.clone(), &calico_tier_resource());
                self.call(api.patch(
                    &egress.calico_tier,
                    &self.apply_params(),
                    &Patch::Apply(&body),
                ))
                .await
                .map_err(|e| crd_missing(e, "the Calico Tier resource"))?;
                Ok::<(), KubeError>(())
            })
            .await?;
        Ok(())
    }

    /// Removes the block made by `action_id` in `namespace`: the policy,
    /// and the selection label from any pod carrying it. Idempotent.
    pub async fn unblock_egress(&self, namespace: &str, action_id: &str) -> Result<UnblockResult> {
        crate::kubernetes::labels::validate_namespace(namespace)?;
        let name = self.policy_name(action_id);
        let client = self.inner.client.clone();
        let dp = DeleteParams::default();
        let deleted = match self.inner.config.egress.backend {
            EgressBackend::NetworkPolicy => {
                let api: Api<NetworkPolicy> = Api::namespaced(client, namespace);
                self.call(api.delete(&name, &dp)).await.map(|_| ())
            }
            EgressBackend::Cilium => {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client, namespace, &cilium_resource());
                self.call(api.delete(&name, &dp)).await.map(|_| ())
            }
            EgressBackend::Calico => {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client, namespace, &calico_policy_resource());
                self.call(api.delete(&name, &dp)).await.map(|_| ())
            }
        };
        let policy_deleted = match deleted {
            Ok(()) => true,
            Err(e) if e.status_code() == Some(404) => false,
            Err(e) => return Err(e),
        };
        let key = egress_pod_label(action_id);
        let pods = self.pods(namespace);
        let labeled = self
            .call(pods.list_metadata(&ListParams::default().labels(&key)))
            .await?;
        let mut unlabeled = 0;
        let removal = json!({"metadata": {"labels": {key.as_str(): Value::Null}}});
        for p in labeled.items {
            let Some(pod_name) = p.metadata.name else {
                continue;
            };
            match self
                .call(pods.patch(&pod_name, &self.patch_params(), &Patch::Merge(&removal)))
                .await
            {
                Ok(_) => unlabeled += 1,
                Err(e) if e.status_code() == Some(404) => {}
                Err(e) => return Err(e),
            }
        }
        tracing::info!(namespace, policy = %name, policy_deleted, unlabeled, "egress unblocked");
        Ok(UnblockResult {
            policy_deleted,
            unlabeled_pods: unlabeled,
        })
    }

    /// Every egress block Riposte made with the configured backend, in the
    /// watched namespaces: read at start to reschedule their expiries.
    pub async fn egress_blocks(&self) -> Result<Vec<EgressBlock>> {
        let cfg = &self.inner.config;
        let lp = ListParams::default().labels(&format!(
            "{MANAGED_BY}={MANAGED_BY_VALUE},{ROLE_LABEL}={ROLE_EGRESS}"
        ));
        let scopes: Vec<Option<&str>> = if cfg.namespaces.is_empty() {
            vec![None]
        } else {
            cfg.namespaces.iter().map(|n| Some(n.as_str())).collect()
        };
        let backend = cfg.egress.backend;
        let mut out = Vec::new();
        for scope in scopes {
            let client = self.inner.client.clone();
            let metas: Vec<ObjectMeta> = match backend {
                EgressBackend::NetworkPolicy => {
                    let api: Api<NetworkPolicy> = match scope {
                        Some(ns) => Api::namespaced(client, ns),
                        None => Api::all(client),
                    };
                    self.call(api.list_metadata(&lp))
                        .await?
                        .items
                        .into_iter()
                        .map(|m| m.metadata)
                        .collect()
                }
                EgressBackend::Cilium | EgressBackend::Calico => {
                    let ar = if backend == EgressBackend::Cilium {
                        cilium_resource()
                    } else {
                        calico_policy_resource()
                    };
                    let api: Api<DynamicObject> = match scope {
                        Some(ns) => Api::namespaced_with(client, ns, &ar),
                        None => Api::all_with(client, &ar),
                    };
                    self.call(api.list(&lp))
                        .await?
                        .items
                        .into_iter()
                        .map(|o| o.metadata)
                        .collect()
                }
            };
            out.extend(
                metas
                    .iter()
                    .filter_map(|m| EgressBlock::from_meta(backend, m)),
            );
        }
        out.sort_by(|a, b| (&a.namespace, &a.policy).cmp(&(&b.namespace, &b.policy)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_read_back_from_policy_annotations() {
        let meta: ObjectMeta = serde_json::from_value(json!({
            "name": "riposte-egress-1",
            "namespace": "shop",
            "annotations": {
                "riposte.io/action-id": "a1",
                "riposte.io/cidr": "203.0.113.0/24",
                "riposte.io/ports": "80,443",
                "riposte.io/expires-at": "2025-03-02T00:00:00Z",
                "riposte.io/target-pod": "shop/web-1"
            }
        }))
        .expect("meta");
        let b = EgressBlock::from_meta(EgressBackend::NetworkPolicy, &meta).expect("named");
        assert_eq!(b.action_id.as_deref(), Some("a1"));
        assert_eq!(b.cidr, Some("203.0.113.0/24".parse().expect("cidr")));
        assert_eq!(b.ports, vec![80, 443]);
        assert!(b.expires_at.is_some());
        assert_eq!(b.target_pod, Some(PodRef::new("shop", "web-1")));
        assert!(b.problems.is_empty());
    }

    #[test]
    fn damaged_block_annotations_are_reported() {
        let meta: ObjectMeta = serde_json::from_value(json!({
            "name": "p", "namespace": "shop",
            "annotations": {"riposte.io/cidr": "nope", "riposte.io/ports": "80,x", "riposte.io/expires-at": "soon"}
        }))
        .expect("meta");
        let b = EgressBlock::from_meta(EgressBackend::Cilium, &meta).expect("named");
        assert_eq!(b.cidr, None);
        assert_eq!(b.ports, vec![80]);
        assert_eq!(b.expires_at, None);
        assert_eq!(b.problems.len(), 3);
    }

    #[test]
    fn a_missing_crd_says_so() {
        let e = crd_missing(
            KubeError::Api {
                code: 404,
                reason: "NotFound".into(),
                message: "the server could not find the requested resource".into(),
                retry_after: None,
            },
            "CiliumNetworkPolicy",
        );
        assert!(e.to_string().contains("CiliumNetworkPolicy"), "{e}");
        assert!(!e.is_transient());
    }
}
