//! Kubernetes Events on the pod, for every action and every refusal.
//!
//! Written as core/v1 Events: that is what `kubectl describe pod` and
//! `kubectl get events` list, and what every dashboard reads
//! (events.k8s.io/v1 objects land in the same store, but with legacy fields
//! such as `firstTimestamp` empty, which older tools show as unknown age).
//! Both the legacy fields (`source`, `firstTimestamp`, `count`) and the
//! newer ones (`reportingComponent`, `reportingInstance`, `action`) are set.
//!
//! The name is derived from the action id and the reason, so a retried
//! action records one Event, not two: the second create gets 409
//! AlreadyExists, which counts as done.

use chrono::{DateTime, SecondsFormat, Utc};
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::kubernetes::connector::KubernetesConnector;
use crate::kubernetes::error::{KubeError, Result};
use crate::kubernetes::names::*;
use crate::kubernetes::target::PodRef;

/// Reasons Riposte uses; any other UpperCamelCase word works too.
pub const REASON_QUARANTINED: &str = "RiposteQuarantined";
pub const REASON_RELEASED: &str = "RiposteReleased";
pub const REASON_REFUSED: &str = "RiposteRefused";
pub const REASON_EGRESS_BLOCKED: &str = "RiposteEgressBlocked";
pub const REASON_EGRESS_UNBLOCKED: &str = "RiposteEgressUnblocked";
pub const REASON_LABELED: &str = "RiposteLabeled";
pub const REASON_DELETED: &str = "RiposteDeleted";

/// Longest message kept; events.k8s.io caps `note` at 1 kB, and a longer
/// message is noise in `kubectl describe` anyway.
const MAX_MESSAGE: usize = 1024;
const MAX_REASON: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum EventType {
    #[default]
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// One Event to record.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventSpec {
    /// Short UpperCamelCase cause, e.g. [`REASON_QUARANTINED`].
    pub reason: String,
    /// For humans; cut at 1 kB.
    pub message: String,
    pub event_type: EventType,
    /// What was done: `Quarantine`, `Release`, `Refuse`, …
    pub action: String,
    /// Makes the Event idempotent per action.
    pub action_id: String,
}

/// Whether the Event was written now or by an earlier attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventOutcome {
    Recorded,
    AlreadyRecorded,
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// `<pod>.<hash>`: unique per (pod, action, reason), within 253 characters.
pub(crate) fn event_name(pod: &PodRef, spec: &EventSpec) -> String {
    let id = short_id(&[
        &pod.name,
        pod.uid.as_deref().unwrap_or(""),
        &spec.action_id,
        &spec.reason,
    ]);
    let keep = 253 - 1 - id.len();
    let mut prefix = pod.name.as_str();
    if prefix.len() > keep {
        prefix = &prefix[..keep];
    }
    format!("{}.{}", prefix.trim_end_matches(['.', '-']), id)
}

/// The Event object.
pub(crate) fn event_object(
    pod: &PodRef,
    spec: &EventSpec,
    instance: &str,
    now: DateTime<Utc>,
) -> Value {
    let now = now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut involved = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "namespace": pod.namespace,
        "name": pod.name,
    });
    if let Some(uid) = &pod.uid {
        involved["uid"] = json!(uid);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": event_name(pod, spec),
            "namespace": pod.namespace,
            "labels": {MANAGED_BY: MANAGED_BY_VALUE},
            "annotations": {ANN_ACTION_ID: spec.action_id},
        },
        "involvedObject": involved,
        "reason": spec.reason,
        "message": truncate(&spec.message, MAX_MESSAGE),
        "type": spec.event_type.as_str(),
        "action": spec.action,
        "source": {"component": MANAGED_BY_VALUE},
        "reportingComponent": EVENT_REPORTING_CONTROLLER,
        "reportingInstance": instance,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    })
}

impl EventSpec {
    fn validate(&self) -> Result<()> {
        if self.reason.is_empty() || self.reason.len() > MAX_REASON {
            return Err(KubeError::invalid(
                "event",
                "a reason of 1 to 128 characters is required",
            ));
        }
        if self.action.is_empty() || self.action.len() > MAX_REASON {
            return Err(KubeError::invalid(
                "event",
                "an action of 1 to 128 characters is required",
            ));
        }
        if self.action_id.is_empty() {
            return Err(KubeError::invalid(
                "event",
                "an action id is required (it makes the Event idempotent)",
            ));
        }
        Ok(())
    }
}

impl KubernetesConnector {
    /// Records an Event on the pod. The pod need not exist any more: the
    /// Event still tells `kubectl get events` what happened to it.
    pub async fn event(&self, pod: &PodRef, spec: &EventSpec) -> Result<EventOutcome> {
        pod.validate()?;
        spec.validate()?;
        let body = event_object(pod, spec, &self.inner.instance, Utc::now());
        let event: Event =
            serde_json::from_value(body).map_err(|e| KubeError::Decode(e.to_string()))?;
        let api: Api<Event> = Api::namespaced(self.inner.client.clone(), &pod.namespace);
        let pp = PostParams {
            field_manager: Some(self.inner.config.field_manager.clone()),
            ..PostParams::default()
        };
        match self.call(api.create(&pp, &event)).await {
            Ok(_) => Ok(EventOutcome::Recorded),
            Err(e) if e.status_code() == Some(409) => Ok(EventOutcome::AlreadyRecorded),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn spec() -> EventSpec {
        EventSpec {
            reason: REASON_QUARANTINED.into(),
            message: "Quarantined until 2025-03-01T14:00:00Z: C2 traffic".into(),
            event_type: EventType::Warning,
            action: "Quarantine".into(),
            action_id: "a1".into(),
        }
    }

    #[test]
    fn the_event_is_what_kubectl_describe_lists() {
        let pod = PodRef::new("shop", "web-1").with_uid("u1");
        let now = Utc
            .with_ymd_and_hms(2025, 3, 1, 10, 0, 0)
            .single()
            .expect("time");
        let got = event_object(&pod, &spec(), "riposte-0", now);
        let name = got["metadata"]["name"].as_str().expect("name").to_owned();
        assert!(name.starts_with("web-1."), "{name}");
        assert_eq!(
            got,
            json!({
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {
                    "name": name,
                    "namespace": "shop",
                    "labels": {"app.kubernetes.io/managed-by": "riposte"},
                    "annotations": {"riposte.io/action-id": "a1"},
                },
                "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": "shop", "name": "web-1", "uid": "u1"},
                "reason": "RiposteQuarantined",
                "message": "Quarantined until 2025-03-01T14:00:00Z: C2 traffic",
                "type": "Warning",
                "action": "Quarantine",
                "source": {"component": "riposte"},
                "reportingComponent": "riposte.io/riposte",
                "reportingInstance": "riposte-0",
                "firstTimestamp": "2025-03-01T10:00:00Z",
                "lastTimestamp": "2025-03-01T10:00:00Z",
                "count": 1,
            })
        );
        let typed: Event = serde_json::from_value(got).expect("a valid core/v1 Event");
        assert_eq!(typed.involved_object.uid.as_deref(), Some("u1"));
    }

    #[test]
    fn names_are_stable_per_action_and_reason_and_fit() {
        let pod = PodRef::new("shop", "web-1");
        let a = event_name(&pod, &spec());
        assert_eq!(a, event_name(&pod, &spec()));
        let released = EventSpec {
            reason: REASON_RELEASED.into(),
            ..spec()
        };
        assert_ne!(a, event_name(&pod, &released));
        let long = PodRef::new("shop", "x".repeat(253));
        let n = event_name(&long, &spec());
        assert!(n.len() <= 253);
        assert!(crate::kubernetes::labels::is_dns_subdomain(&n), "{n}");
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let m = "é".repeat(1000);
        let t = truncate(&m, MAX_MESSAGE);
        assert!(t.len() <= MAX_MESSAGE);
        assert!(t.ends_with('…'));
    }

    #[test]
    fn specs_are_checked() {
        assert!(spec().validate().is_ok());
        assert!(EventSpec {
            reason: String::new(),
            ..spec()
        }
        .validate()
        .is_err());
        assert!(EventSpec {
            action_id: String::new(),
            ..spec()
        }
        .validate()
        .is_err());
    }
}
