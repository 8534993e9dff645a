//! `quarantine`: label the pod, record why and until when on it, and make
//! sure the namespace's deny-all policy selects it.
//!
//! Order matters for concurrent releases: the pod is labelled first, then
//! the policy is applied. A release deletes the policy only after listing
//! no labelled pod, with the policy's resourceVersion as precondition, so
//! it either sees this pod's label or its delete fails against this apply
//! (which changes the policy's action-id label).

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, Utc};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, Patch};
use serde::{Deserialize, Serialize};

use crate::kubernetes::connector::KubernetesConnector;
use crate::kubernetes::error::{KubeError, Result};
use crate::kubernetes::names::*;
use crate::kubernetes::policy;
use crate::kubernetes::state::{is_riposte_key, rfc3339, QuarantineState};
use crate::kubernetes::target::PodRef;

/// What a quarantine records on the pod.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QuarantineSpec {
    /// The dispatcher's idempotency key.
    pub action_id: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// None: until released by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Overrides `[kubernetes.quarantine] detach` for this quarantine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detach: Option<bool>,
}

/// What a quarantine did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineResult {
    /// The pod, with its uid.
    pub pod: PodRef,
    /// The NetworkPolicy that isolates it.
    pub policy: String,
    /// The pod was already quarantined (this one refreshed or extended it).
    pub already_quarantined: bool,
    pub quarantined_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detach: Option<DetachOutcome>,
}

/// What `detach` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DetachOutcome {
    /// These labels are now only in `riposte.io/detached-labels` (empty:
    /// nothing selected the pod).
    Detached { labels: BTreeMap<String, String> },
    /// The pod stays attached, for this reason.
    NotPossible { reason: String },
}

/// The expiry of a quarantine that is extended by another one: never
/// shortened (a weaker playbook must not release early); no expiry wins.
fn merged_expiry(
    previous: Option<&QuarantineState>,
    requested: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    match previous {
        None => requested,
        Some(prev) => match (prev.expires_at, requested) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        },
    }
}

impl QuarantineSpec {
    fn validate(&self) -> Result<()> {
        if self.action_id.trim().is_empty() {
            return Err(KubeError::invalid(
                "quarantine",
                "an action id is required (it names what release undoes)",
            ));
        }
        if self.reason.trim().is_empty() {
            return Err(KubeError::invalid(
                "quarantine",
                "a reason is required: it is what `kubectl describe` shows",
            ));
        }
        Ok(())
    }
}

impl KubernetesConnector {
    /// Quarantines one pod. Idempotent: the same spec applied twice leaves
    /// the pod as once; a later quarantine of a quarantined pod keeps its
    /// first quarantined-at and never shortens its expiry.
    pub async fn quarantine(
        &self,
        pod: &PodRef,
        spec: &QuarantineSpec,
    ) -> Result<QuarantineResult> {
        pod.validate()?;
        spec.validate()?;
        let cfg = &self.inner.config;
        let label = cfg.quarantine.label.as_str();
        let live = self.get_pod(pod).await?;
        let uid = live.metadata.uid.clone().unwrap_or_default();
        let current = PodRef::new(pod.namespace.clone(), pod.name.clone()).with_uid(uid);
        let labels = live.metadata.labels.clone().unwrap_or_default();
        let already = labels.get(label).map(String::as_str) == Some("true");
        let previous = already.then(|| {
            let riposte: BTreeMap<String, String> = live
                .metadata
                .annotations
                .iter()
                .flatten()
                .filter(|(k, _)| is_riposte_key(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            QuarantineState::from_annotations(current.clone(), &riposte)
        });
        let quarantined_at = previous
            .as_ref()
            .and_then(|p| p.quarantined_at)
            // Whole seconds, as the annotation keeps it: the result and
            // what a later read returns agree.
            .unwrap_or_else(|| Utc::now().trunc_subsecs(0));
        let expires_at = merged_expiry(previous.as_ref(), spec.expires_at);

        let mut annotations = BTreeMap::new();
        annotations.insert(ANN_REASON.to_owned(), spec.reason.clone());
        annotations.insert(ANN_ACTION_ID.to_owned(), spec.action_id.clone());
        annotations.insert(ANN_QUARANTINED_AT.to_owned(), rfc3339(quarantined_at));
        if let Some(t) = expires_at {
            annotations.insert(ANN_EXPIRES_AT.to_owned(), rfc3339(t));
        }
        if let Some(p) = &spec.playbook {
            annotations.insert(ANN_PLAYBOOK.to_owned(), p.clone());
        }
        if let Some(e) = &spec.event_id {
            annotations.insert(ANN_EVENT_ID.to_owned(), e.clone());
        }
        let body = policy::quarantine_pod_apply(label, &pod.namespace, &pod.name, &annotations);
        let api = self.pods(&pod.namespace);
        let applied = match self
            .call(api.patch(&pod.name, &self.apply_params(), &Patch::Apply(&body)))
            .await
        {
            Ok(p) => p,
            // An apply to a pod deleted since the read would try to create
            // it (and fail validation): tell that apart from a real refusal.
            Err(e) => return Err(self.classify_pod_error(&current, e).await),
        };

        // Isolation first: a detach that fails (RBAC, conflicts) must not
        // leave a labelled pod without its policy.
        self.ensure_quarantine_policy(&pod.namespace, &spec.action_id)
            .await?;

        let detach = if spec.detach.unwrap_or(cfg.quarantine.detach) {
            Some(self.detach(&current, applied).await?)
        } else {
            None
        };
        tracing::info!(pod = %current, action_id = %spec.action_id, expires_at = ?expires_at, "pod quarantined");
        Ok(QuarantineResult {
            pod: current,
            policy: cfg.quarantine.policy_name.clone(),
            already_quarantined: already,
            quarantined_at,
            expires_at,
            detach,
        })
    }

    /// Applies the namespace's deny-all policy (idempotent).
    pub async fn ensure_quarantine_policy(&self, namespace: &str, action_id: &str) -> Result<()> {
        let cfg = &self.inner.config;
        let body = policy::quarantine_policy(&cfg.quarantine, namespace, action_id);
        let api: Api<NetworkPolicy> = Api::namespaced(self.inner.client.clone(), namespace);
        let _guard = self.namespace_lock(namespace).await;
        self.call(api.patch(
            &cfg.quarantine.policy_name,
            &self.apply_params(),
            &Patch::Apply(&body),
        ))
        .await?;
        Ok(())
    }

    /// Quarantines every live pod of `namespace` carrying all of `selector`,
    /// as the index sees them now. Each pod's outcome is reported on its
    /// own; a pod deleted in between is a `PodGone` among successes.
    pub async fn quarantine_matching(
        &self,
        index: &crate::kubernetes::index::PodIndex,
        namespace: &str,
        selector: &BTreeMap<String, String>,
        spec: &QuarantineSpec,
    ) -> Vec<(PodRef, Result<QuarantineResult>)> {
        let mut out = Vec::new();
        for pod in index.pods_matching(namespace, selector) {
            let r = self.quarantine(&pod, spec).await;
            out.push((pod, r));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, h, 0, 0)
            .single()
            .expect("time")
    }

    fn prev(expires: Option<DateTime<Utc>>) -> QuarantineState {
        let mut s = QuarantineState::from_annotations(PodRef::new("a", "b"), &BTreeMap::new());
        s.expires_at = expires;
        s
    }

    #[test]
    fn a_new_quarantine_takes_the_requested_expiry() {
        assert_eq!(merged_expiry(None, Some(t(4))), Some(t(4)));
        assert_eq!(merged_expiry(None, None), None);
    }

    #[test]
    fn a_second_quarantine_never_shortens_the_first() {
        assert_eq!(
            merged_expiry(Some(&prev(Some(t(8)))), Some(t(4))),
            Some(t(8))
        );
        assert_eq!(
            merged_expiry(Some(&prev(Some(t(4)))), Some(t(8))),
            Some(t(8))
        );
        assert_eq!(
            merged_expiry(Some(&prev(None)), Some(t(4))),
            None,
            "manual stays manual"
        );
        assert_eq!(
            merged_expiry(Some(&prev(Some(t(4)))), None),
            None,
            "an open-ended one wins"
        );
    }

    #[test]
    fn specs_need_an_action_id_and_a_reason() {
        let mut s = QuarantineSpec {
            action_id: "a".into(),
            reason: "C2".into(),
            ..QuarantineSpec::default()
        };
        assert!(s.validate().is_ok());
        s.reason = " ".into();
        assert!(s.validate().is_err());
        s.reason = "C2".into();
        s.action_id.clear();
        assert!(s.validate().is_err());
    }
}
