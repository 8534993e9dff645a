//! `release`: undo exactly what `quarantine` did.
//!
//! The label and Riposte's annotations are removed with a JSON merge patch
//! that sets them to null, rather than with a server-side apply that no
//! longer contains them. SSA only removes a field when the applying
//! manager was its sole owner: if anyone else ever set the same label
//! value (a human's `kubectl label`, another tool's update), the field is
//! co-owned and an "empty" apply would leave the pod quarantined while
//! reporting success. A merge patch deletes the keys whoever owns them,
//! and the API server then prunes them from every manager's managed
//! fields, so the next quarantine's apply starts clean. The patch carries
//! the pod's uid and resourceVersion: a replaced pod is not touched, and a
//! pod changed since the read is re-read (a bounded number of times).
//!
//! A detached pod gets its labels back, or is deleted (`release_detached`).
//! Then the namespace's deny-all policy is deleted if no quarantined pod is
//! left in it. A pod that no longer exists counts as released, and the
//! policy clean-up still runs: releasing a deleted pod is how a policy
//! left behind by it goes away.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, ListParams, Patch, Preconditions};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::kubernetes::config::DetachedRelease;
use crate::kubernetes::connector::{pod_meta, KubernetesConnector};
use crate::kubernetes::detach::CONFLICT_ATTEMPTS;
use crate::kubernetes::error::{KubeError, Result};
use crate::kubernetes::names::*;
use crate::kubernetes::state::parse_detached;
use crate::kubernetes::target::PodRef;

/// How a release ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseOutcome {
    /// Label and annotations removed (and detached labels restored).
    Released,
    /// The detached pod was deleted, per `release_detached = "delete"`.
    Deleted,
    /// Nothing of a quarantine was on the pod.
    NotQuarantined,
    /// The pod no longer exists (or another pod took its name).
    PodGone,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseResult {
    pub pod: PodRef,
    pub outcome: ReleaseOutcome,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub restored_labels: BTreeMap<String, String>,
    /// The namespace's deny-all policy was deleted: no quarantined pod left.
    pub policy_deleted: bool,
}

/// The merge patch that removes a quarantine and restores `detached`.
pub(crate) fn release_patch(
    label: &str,
    pod_labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
    detached: &BTreeMap<String, String>,
    uid: &str,
    resource_version: &str,
) -> Value {
    let mut labels = Map::new();
    if pod_labels.contains_key(label) {
        labels.insert(label.to_owned(), Value::Null);
    }
    for (k, v) in detached {
        if k != label {
            labels.insert(k.clone(), Value::String(v.clone()));
        }
    }
    let removals: Map<String, Value> = QUARANTINE_ANNOTATIONS
        .iter()
        .filter(|k| annotations.contains_key(**k))
        .map(|k| ((*k).to_owned(), Value::Null))
        .collect();
    let mut meta = Map::new();
    meta.insert("uid".into(), json!(uid));
    meta.insert("resourceVersion".into(), json!(resource_version));
    if !labels.is_empty() {
        meta.insert("labels".into(), Value::Object(labels));
    }
    if !removals.is_empty() {
        meta.insert("annotations".into(), Value::Object(removals));
    }
    json!({ "metadata": meta })
}

impl KubernetesConnector {
    /// Releases one pod. Idempotent: releasing a released or vanished pod
    /// succeeds.
    pub async fn release(&self, pod: &PodRef) -> Result<ReleaseResult> {
        pod.validate()?;
        let cfg = &self.inner.config;
        let label = cfg.quarantine.label.as_str();
        let api = self.pods(&pod.namespace);
        let mut released_uid: Option<String> = pod.uid.clone();
        let mut restored = BTreeMap::new();
        let mut outcome = None;
        for _ in 0..CONFLICT_ATTEMPTS {
            let live = match self.get_pod(pod).await {
                Ok(p) => p,
                Err(KubeError::PodGone { .. }) => {
                    outcome = Some(ReleaseOutcome::PodGone);
                    break;
                }
                Err(e) => return Err(e),
            };
            let (uid, rv) = pod_meta(&live);
            released_uid = Some(uid.clone());
            let labels = live.metadata.labels.clone().unwrap_or_default();
            let annotations = live.metadata.annotations.clone().unwrap_or_default();
            let has_label = labels.contains_key(label);
            let has_annotations = QUARANTINE_ANNOTATIONS
                .iter()
                .any(|k| annotations.contains_key(*k));
            if !has_label && !has_annotations {
                outcome = Some(ReleaseOutcome::NotQuarantined);
                break;
            }
            let detached = match annotations.get(ANN_DETACHED_LABELS) {
                Some(raw) => parse_detached(raw).unwrap_or_else(|e| {
                    tracing::warn!(pod = %pod, error = %e, "detached labels unreadable; releasing without restoring them");
                    BTreeMap::new()
                }),
                None => BTreeMap::new(),
            };
            if !detached.is_empty() && cfg.quarantine.release_detached == DetachedRelease::Delete {
                let dp = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: Some(uid.clone()),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                outcome = Some(match self.call(api.delete(&pod.name, &dp)).await {
                    Ok(_) => ReleaseOutcome::Deleted,
                    Err(e) if matches!(e.status_code(), Some(404) | Some(409)) => {
                        ReleaseOutcome::PodGone
                    }
                    Err(e) => return Err(e),
                });
                break;
            }
            let patch = release_patch(label, &labels, &annotations, &detached, &uid, &rv);
            match self
                .call(api.patch(&pod.name, &self.patch_params(), &Patch::Merge(&patch)))
                .await
            {
                Ok(_) => {
                    restored = detached;
                    outcome = Some(ReleaseOutcome::Released);
                    break;
                }
                // Changed since the read: read again.
                Err(e) if e.status_code() == Some(409) => continue,
                Err(e) => {
                    let read = PodRef::new(pod.namespace.clone(), pod.name.clone()).with_uid(uid);
                    match self.classify_pod_error(&read, e).await {
                        KubeError::PodGone { .. } => {
                            outcome = Some(ReleaseOutcome::PodGone);
                            break;
                        }
                        e => return Err(e),
                    }
                }
            }
        }
        let Some(outcome) = outcome else {
            return Err(KubeError::ConflictRetriesExhausted {
                what: format!("releasing pod {pod}"),
                attempts: CONFLICT_ATTEMPTS,
            });
        };
        let exclude = match outcome {
            ReleaseOutcome::Deleted => released_uid.as_deref(),
            _ => None,
        };
        let policy_deleted = self
            .cleanup_quarantine_policy(&pod.namespace, exclude)
            .await?;
        tracing::info!(pod = %pod, ?outcome, policy_deleted, "pod released");
        Ok(ReleaseResult {
            pod: PodRef {
                uid: released_uid,
                ..pod.clone()
            },
            outcome,
            restored_labels: restored,
            policy_deleted,
        })
    }

    /// Deletes the namespace's deny-all policy when no pod (other than
    /// `exclude_uid`, a pod being deleted) carries the quarantine label.
    /// Only a policy labelled as Riposte's is ever deleted.
    pub async fn cleanup_quarantine_policy(
        &self,
        namespace: &str,
        exclude_uid: Option<&str>,
    ) -> Result<bool> {
        let cfg = &self.inner.config;
        let name = cfg.quarantine.policy_name.as_str();
        let policies: Api<NetworkPolicy> = Api::namespaced(self.inner.client.clone(), namespace);
        let pods = self.pods(namespace);
        let selector = format!("{}=true", cfg.quarantine.label);
        let _guard = self.namespace_lock(namespace).await;
        for _ in 0..CONFLICT_ATTEMPTS {
            let Some(policy) = self.call(policies.get_opt(name)).await? else {
                return Ok(false);
            };
            let ours = policy
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(MANAGED_BY))
                .is_some_and(|v| v == MANAGED_BY_VALUE);
            if !ours {
                return Ok(false);
            }
            let rv = policy.metadata.resource_version.clone();
            let quarantined = self
                .call(pods.list_metadata(&ListParams::default().labels(&selector)))
                .await?;
            let left = quarantined
                .items
                .iter()
                .filter(|p| exclude_uid.is_none_or(|x| p.metadata.uid.as_deref() != Some(x)))
                .count();
            if left > 0 {
                return Ok(false);
            }
            let dp = DeleteParams {
                preconditions: Some(Preconditions {
                    resource_version: rv,
                    uid: None,
                }),
                ..DeleteParams::default()
            };
            match self.call(policies.delete(name, &dp)).await {
                Ok(_) => return Ok(true),
                Err(e) if e.status_code() == Some(404) => return Ok(false),
                // A quarantine re-applied it meanwhile: look again.
                Err(e) if e.status_code() == Some(409) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(KubeError::ConflictRetriesExhausted {
            what: format!("deleting policy {namespace}/{name}"),
            attempts: CONFLICT_ATTEMPTS,
        })
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
    fn the_patch_removes_exactly_what_quarantine_wrote() {
        let labels = map(&[("riposte.io/quarantine", "true"), ("app", "web")]);
        let annotations = map(&[
            ("riposte.io/reason", "C2"),
            ("riposte.io/expires-at", "2025-03-01T14:00:00Z"),
            ("riposte.io/action-id", "a1"),
            ("riposte.io/exempt-note", "not ours to remove"),
            ("team", "blue"),
        ]);
        let got = release_patch(
            "riposte.io/quarantine",
            &labels,
            &annotations,
            &BTreeMap::new(),
            "u1",
            "7",
        );
        assert_eq!(
            got,
            json!({"metadata": {
                "uid": "u1",
                "resourceVersion": "7",
                "labels": {"riposte.io/quarantine": null},
                "annotations": {"riposte.io/reason": null, "riposte.io/action-id": null, "riposte.io/expires-at": null},
            }})
        );
    }

    #[test]
    fn detached_labels_come_back_and_their_record_goes() {
        let labels = map(&[("riposte.io/quarantine", "true")]);
        let annotations = map(&[("riposte.io/detached-labels", r#"{"app":"web"}"#)]);
        let detached = map(&[("app", "web"), ("riposte.io/quarantine", "smuggled")]);
        let got = release_patch(
            "riposte.io/quarantine",
            &labels,
            &annotations,
            &detached,
            "u1",
            "7",
        );
        assert_eq!(
            got["metadata"]["labels"],
            json!({"riposte.io/quarantine": null, "app": "web"}),
            "the quarantine label is never restored"
        );
        assert_eq!(
            got["metadata"]["annotations"],
            json!({"riposte.io/detached-labels": null})
        );
    }
}
