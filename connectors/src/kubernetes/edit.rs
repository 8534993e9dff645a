//! `label`, `annotate` and `delete_pod`.
//!
//! Labels and annotations are changed with JSON merge patches, not
//! server-side apply: an apply under Riposte's field manager must always
//! carry every field that manager owns, so a `label` apply would strip the
//! quarantine label applied under the same manager. Merge patches set or
//! remove (null) exactly the keys given, which is also idempotent.
//!
//! Keys under `riposte.io/` and the quarantine label are Riposte's
//! bookkeeping: only `quarantine` and `release` write them, so a playbook
//! cannot forge or erase a quarantine (or an exemption) through `label`.

use std::collections::BTreeMap;

use kube::api::{DeleteParams, Patch, Preconditions};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::kubernetes::connector::KubernetesConnector;
use crate::kubernetes::error::{KubeError, Result};
use crate::kubernetes::labels;
use crate::kubernetes::names::RIPOSTE_PREFIX;
use crate::kubernetes::target::PodRef;

/// How a pod deletion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteOutcome {
    Deleted,
    /// It was gone already (or another pod holds its name now).
    AlreadyGone,
}

/// The merge patch for a set of changes (`None` removes the key).
pub(crate) fn metadata_patch(
    field: &str,
    changes: &BTreeMap<String, Option<String>>,
    uid: Option<&str>,
) -> Value {
    let map: Map<String, Value> = changes
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().map_or(Value::Null, Value::String)))
        .collect();
    let mut meta = Map::new();
    meta.insert(field.to_owned(), Value::Object(map));
    if let Some(uid) = uid {
        // A uid in a patch makes the API server refuse a different pod
        // that took the same name.
        meta.insert("uid".into(), json!(uid));
    }
    json!({ "metadata": meta })
}

/// Refuses keys that only `quarantine` and `release` may write.
pub(crate) fn refuse_reserved(
    what: &'static str,
    quarantine_label: &str,
    changes: &BTreeMap<String, Option<String>>,
) -> Result<()> {
    match changes
        .keys()
        .find(|k| k.starts_with(RIPOSTE_PREFIX) || k.as_str() == quarantine_label)
    {
        Some(k) => Err(KubeError::invalid(
            what,
            format!("{k:?} is reserved for Riposte's own bookkeeping; use quarantine and release"),
        )),
        None => Ok(()),
    }
}

impl KubernetesConnector {
    fn refuse_reserved(
        &self,
        what: &'static str,
        changes: &BTreeMap<String, Option<String>>,
    ) -> Result<()> {
        refuse_reserved(what, &self.inner.config.quarantine.label, changes)
    }

    /// Sets (or with `None`, removes) labels on a pod.
    pub async fn label(
        &self,
        pod: &PodRef,
        changes: &BTreeMap<String, Option<String>>,
    ) -> Result<()> {
        pod.validate()?;
        labels::validate_labels(changes)?;
        self.refuse_reserved("label", changes)?;
        self.patch_metadata(pod, "labels", changes).await
    }

    /// Sets (or with `None`, removes) annotations on a pod.
    pub async fn annotate(
        &self,
        pod: &PodRef,
        changes: &BTreeMap<String, Option<String>>,
    ) -> Result<()> {
        pod.validate()?;
        labels::validate_annotations(changes)?;
        self.refuse_reserved("annotation", changes)?;
        self.patch_metadata(pod, "annotations", changes).await
    }

    async fn patch_metadata(
        &self,
        pod: &PodRef,
        field: &str,
        changes: &BTreeMap<String, Option<String>>,
    ) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let patch = metadata_patch(field, changes, pod.uid.as_deref());
        let api = self.pods(&pod.namespace);
        match self
            .call(api.patch(&pod.name, &self.patch_params(), &Patch::Merge(&patch)))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(self.classify_pod_error(pod, e).await),
        }
    }

    /// Deletes a pod (with its grace period, or `grace_period_secs`).
    pub async fn delete_pod(
        &self,
        pod: &PodRef,
        grace_period_secs: Option<u32>,
    ) -> Result<DeleteOutcome> {
        pod.validate()?;
        let dp = DeleteParams {
            grace_period_seconds: grace_period_secs,
            preconditions: pod.uid.as_ref().map(|uid| Preconditions {
                uid: Some(uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self
            .call(self.pods(&pod.namespace).delete(&pod.name, &dp))
            .await
        {
            Ok(_) => {
                tracing::info!(pod = %pod, "pod deleted");
                Ok(DeleteOutcome::Deleted)
            }
            // 409: the uid precondition failed, another pod has the name.
            Err(e) if matches!(e.status_code(), Some(404) | Some(409)) => {
                Ok(DeleteOutcome::AlreadyGone)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn riposte_keys_cannot_be_forged_or_erased() {
        let set = |k: &str| BTreeMap::from([(k.to_owned(), Some("true".to_owned()))]);
        for key in [
            "riposte.io/quarantine",
            "riposte.io/exempt",
            "riposte.io/expires-at",
        ] {
            let e = refuse_reserved("label", "riposte.io/quarantine", &set(key)).expect_err(key);
            assert!(!e.is_transient());
        }
        let custom = refuse_reserved(
            "label",
            "security.example.com/isolated",
            &set("security.example.com/isolated"),
        );
        assert!(custom.is_err(), "a custom quarantine label is reserved too");
        assert!(refuse_reserved("label", "riposte.io/quarantine", &set("team")).is_ok());
    }

    #[test]
    fn patches_set_and_remove_exactly_the_given_keys() {
        let changes = BTreeMap::from([
            ("team".to_owned(), Some("blue".to_owned())),
            ("old".to_owned(), None),
        ]);
        assert_eq!(
            metadata_patch("labels", &changes, Some("u1")),
            json!({"metadata": {"labels": {"old": null, "team": "blue"}, "uid": "u1"}})
        );
        assert_eq!(
            metadata_patch("annotations", &changes, None),
            json!({"metadata": {"annotations": {"old": null, "team": "blue"}}})
        );
    }
}
