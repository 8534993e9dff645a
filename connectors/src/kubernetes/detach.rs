//! `detach`: take the labels the pod's controller and the namespace's
//! Services select on off the pod, keeping them in an annotation.
//!
//! The ReplicaSet (or DaemonSet, Job) then no longer counts the pod, lets go
//! of it and starts a clean replacement; Services stop routing to it; the
//! quarantined pod itself keeps running for forensics. A StatefulSet cannot
//! do this: its replacement would need the very same pod name.
//!
//! The change is a JSON merge patch carrying the pod's resourceVersion, so
//! it never overwrites a label someone changed since the read; on a
//! conflict the pod is re-read and the patch recomputed, a bounded number
//! of times.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{DaemonSet, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ListParams, Patch};
use serde_json::{json, Map, Value};

use crate::kubernetes::connector::{pod_meta, KubernetesConnector};
use crate::kubernetes::error::{KubeError, Result};
use crate::kubernetes::index::Controller;
use crate::kubernetes::labels;
use crate::kubernetes::names::ANN_DETACHED_LABELS;
use crate::kubernetes::quarantine::DetachOutcome;
use crate::kubernetes::state::{parse_detached, render_detached};
use crate::kubernetes::target::PodRef;

/// Attempts at a resourceVersion-guarded patch before giving up.
pub(crate) const CONFLICT_ATTEMPTS: u32 = 5;

/// The label keys whose removal makes `selector` stop matching: every
/// `matchLabels` key, and the keys of `In` and `Exists` requirements
/// (`NotIn` and `DoesNotExist` still match a missing label).
pub(crate) fn selector_keys(selector: &LabelSelector) -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .collect();
    for req in selector.match_expressions.iter().flatten() {
        if req.operator == "In" || req.operator == "Exists" {
            keys.insert(req.key.clone());
        }
    }
    keys
}

/// The merge patch that moves `keys` into the annotation; None when there
/// is nothing (left) to move.
pub(crate) fn detach_patch(
    pod_labels: &BTreeMap<String, String>,
    existing: &BTreeMap<String, String>,
    keys: &BTreeSet<String>,
    resource_version: &str,
) -> Option<(Value, BTreeMap<String, String>)> {
    let moving: BTreeMap<String, String> = keys
        .iter()
        .filter_map(|k| pod_labels.get(k).map(|v| (k.clone(), v.clone())))
        .collect();
    if moving.is_empty() {
        return None;
    }
    // A label detached before and re-added since keeps its first value:
    // that is what the workload selected on.
    let mut all = moving.clone();
    for (k, v) in existing {
        all.insert(k.clone(), v.clone());
    }
    let removals: Map<String, Value> = moving.keys().map(|k| (k.clone(), Value::Null)).collect();
    let patch = json!({
        "metadata": {
            "resourceVersion": resource_version,
            "labels": removals,
            "annotations": {ANN_DETACHED_LABELS: render_detached(&all)},
        }
    });
    Some((patch, all))
}

impl KubernetesConnector {
    /// Detaches a (just quarantined) pod; `live` is its latest version.
    pub(crate) async fn detach(&self, pod: &PodRef, mut live: Pod) -> Result<DetachOutcome> {
        let ns = pod.namespace.as_str();
        let controller = Controller::of(live.metadata.owner_references.as_ref());
        let mut keys = match self
            .controller_selector_keys(ns, controller.as_ref())
            .await?
        {
            Ok(keys) => keys,
            Err(reason) => return Ok(DetachOutcome::NotPossible { reason }),
        };
        let pod_labels = live.metadata.labels.clone().unwrap_or_default();
        let services: Api<Service> = Api::namespaced(self.inner.client.clone(), ns);
        let list = self.call(services.list(&ListParams::default())).await?;
        for svc in list.items {
            let Some(selector) = svc.spec.and_then(|s| s.selector).filter(|s| !s.is_empty()) else {
                continue;
            };
            if labels::matches(&selector, &pod_labels) {
                keys.extend(selector.into_keys());
            }
        }
        // The quarantine label must stay: it is what isolates the pod.
        keys.remove(&self.inner.config.quarantine.label);

        let api = self.pods(ns);
        for _ in 0..CONFLICT_ATTEMPTS {
            let (_, rv) = pod_meta(&live);
            let labels_now = live.metadata.labels.clone().unwrap_or_default();
            let existing = live
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANN_DETACHED_LABELS))
                .map(|raw| parse_detached(raw).unwrap_or_default())
                .unwrap_or_default();
            let Some((patch, all)) = detach_patch(&labels_now, &existing, &keys, &rv) else {
                return Ok(DetachOutcome::Detached { labels: existing });
            };
            match self
                .call(api.patch(&pod.name, &self.patch_params(), &Patch::Merge(&patch)))
                .await
            {
                Ok(_) => {
                    tracing::info!(pod = %pod, labels = ?all.keys().collect::<Vec<_>>(), "pod detached from its workload");
                    return Ok(DetachOutcome::Detached { labels: all });
                }
                Err(e) if e.status_code() == Some(409) => {
                    live = self.get_pod(pod).await?;
                }
                Err(e) => return Err(self.classify_pod_error(pod, e).await),
            }
        }
        Err(KubeError::ConflictRetriesExhausted {
            what: format!("detaching pod {pod}"),
            attempts: CONFLICT_ATTEMPTS,
        })
    }

    /// The selector keys of the pod's controller; `Err(reason)` when
    /// detaching cannot give the workload a replacement.
    async fn controller_selector_keys(
        &self,
        ns: &str,
        controller: Option<&Controller>,
    ) -> Result<std::result::Result<BTreeSet<String>, String>> {
        let Some(c) = controller else {
            return Ok(Ok(BTreeSet::new()));
        };
        let client = self.inner.client.clone();
        let selector = match c.kind.as_str() {
            "ReplicaSet" => self
                .call(Api::<ReplicaSet>::namespaced(client, ns).get_opt(&c.name))
                .await?
                .and_then(|o| o.spec)
                .map(|s| s.selector),
            "DaemonSet" => self
                .call(Api::<DaemonSet>::namespaced(client, ns).get_opt(&c.name))
                .await?
                .and_then(|o| o.spec)
                .map(|s| s.selector),
            "Job" => self
                .call(Api::<Job>::namespaced(client, ns).get_opt(&c.name))
                .await?
                .and_then(|o| o.spec)
                .and_then(|s| s.selector),
            "StatefulSet" => {
                return Ok(Err(
                    "a StatefulSet replaces a pod under the same name, so the quarantined pod cannot stay beside its replacement".into(),
                ))
            }
            other => {
                return Ok(Err(format!(
                    "pods controlled by a {other} are not detached: Riposte does not know how it selects them"
                )))
            }
        };
        // A controller already gone selects nothing any more.
        Ok(Ok(selector.as_ref().map(selector_keys).unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selector_keys_are_those_whose_absence_unmatches() {
        let sel: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "web", "pod-template-hash": "7d9f"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "env", "operator": "NotIn", "values": ["dev"]},
                {"key": "team", "operator": "Exists"}
            ]
        }))
        .expect("selector");
        let keys: Vec<String> = selector_keys(&sel).into_iter().collect();
        assert_eq!(keys, vec!["app", "pod-template-hash", "team", "tier"]);
    }

    #[test]
    fn the_patch_moves_labels_under_a_resource_version_precondition() {
        let labels = map(&[
            ("app", "web"),
            ("pod-template-hash", "7d9f"),
            ("riposte.io/quarantine", "true"),
            ("keep", "me"),
        ]);
        let keys: BTreeSet<String> = ["app", "pod-template-hash", "absent"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (patch, all) =
            detach_patch(&labels, &BTreeMap::new(), &keys, "42").expect("something to move");
        assert_eq!(
            patch,
            json!({"metadata": {
                "resourceVersion": "42",
                "labels": {"app": null, "pod-template-hash": null},
                "annotations": {"riposte.io/detached-labels": "{\"app\":\"web\",\"pod-template-hash\":\"7d9f\"}"},
            }})
        );
        assert_eq!(all, map(&[("app", "web"), ("pod-template-hash", "7d9f")]));
    }

    #[test]
    fn detaching_twice_changes_nothing_and_keeps_first_values() {
        let keys: BTreeSet<String> = ["app"].iter().map(|s| s.to_string()).collect();
        let existing = map(&[("app", "web")]);
        assert!(detach_patch(&map(&[("other", "x")]), &existing, &keys, "1").is_none());
        // Someone re-added the label with another value: it is moved again,
        // and the original value is what release will restore.
        let (_, all) =
            detach_patch(&map(&[("app", "hacked")]), &existing, &keys, "1").expect("re-added");
        assert_eq!(all, existing);
    }
}
