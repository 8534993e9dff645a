//! A quarantine as it lives on the pod: one label and a few annotations.
//!
//! The pod is the source of truth, so `kubectl` shows why and until when a
//! pod is cut off, and a restarted Riposte reschedules every expiry by
//! reading them back. Parsing never fails: a damaged annotation becomes a
//! `problems` entry and the field is left empty (an unreadable expiry is
//! never guessed, so such a pod waits for a human's release).

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::kubernetes::names::*;
use crate::kubernetes::target::PodRef;

/// One quarantined pod, read from its annotations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineState {
    pub pod: PodRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantined_at: Option<DateTime<Utc>>,
    /// None: no expiry, released by hand (or the annotation is damaged: see
    /// `problems`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Labels `detach` took off the pod, to restore on release.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub detached_labels: BTreeMap<String, String>,
    /// Annotations that could not be read, worded for an operator.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

impl QuarantineState {
    /// Reads the state from a pod's annotations (only `riposte.io/*` ones
    /// are looked at).
    pub fn from_annotations(pod: PodRef, annotations: &BTreeMap<String, String>) -> Self {
        let mut problems = Vec::new();
        let text = |key: &str| annotations.get(key).filter(|v| !v.is_empty()).cloned();
        let mut time = |key: &str| {
            let raw = annotations.get(key)?;
            match DateTime::parse_from_rfc3339(raw.trim()) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(e) => {
                    problems.push(format!("{key}: {raw:?} is not an RFC 3339 time ({e})"));
                    None
                }
            }
        };
        let quarantined_at = time(ANN_QUARANTINED_AT);
        let expires_at = time(ANN_EXPIRES_AT);
        let detached_labels = match annotations.get(ANN_DETACHED_LABELS) {
            None => BTreeMap::new(),
            Some(raw) => match parse_detached(raw) {
                Ok(m) => m,
                Err(e) => {
                    problems.push(format!("{ANN_DETACHED_LABELS}: {e}"));
                    BTreeMap::new()
                }
            },
        };
        QuarantineState {
            pod,
            reason: text(ANN_REASON),
            playbook: text(ANN_PLAYBOOK),
            event_id: text(ANN_EVENT_ID),
            action_id: text(ANN_ACTION_ID),
            quarantined_at,
            expires_at,
            detached_labels,
            problems,
        }
    }
}

/// The `riposte.io/detached-labels` JSON object.
pub(crate) fn parse_detached(raw: &str) -> Result<BTreeMap<String, String>, String> {
    serde_json::from_str::<BTreeMap<String, String>>(raw)
        .map_err(|e| format!("not a JSON object of strings ({e})"))
}

pub(crate) fn render_detached(labels: &BTreeMap<String, String>) -> String {
    serde_json::to_string(labels).unwrap_or_else(|_| "{}".into())
}

/// RFC 3339 in UTC with seconds, the way Kubernetes writes times.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Whether this annotation is one the pod index keeps.
pub(crate) fn is_riposte_key(key: &str) -> bool {
    key.starts_with(RIPOSTE_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_everything_a_quarantine_wrote() {
        let a = ann(&[
            (ANN_REASON, "C2 traffic to 203.0.113.9"),
            (ANN_PLAYBOOK, "c2-quarantine"),
            (ANN_EVENT_ID, "ev-1"),
            (ANN_ACTION_ID, "act-1"),
            (ANN_QUARANTINED_AT, "2025-03-01T10:00:00Z"),
            (ANN_EXPIRES_AT, "2025-03-01T14:00:00+00:00"),
            (
                ANN_DETACHED_LABELS,
                r#"{"app":"checkout","pod-template-hash":"7d9f"}"#,
            ),
            ("unrelated", "x"),
        ]);
        let s = QuarantineState::from_annotations(PodRef::new("shop", "checkout-7d9f"), &a);
        assert_eq!(s.reason.as_deref(), Some("C2 traffic to 203.0.113.9"));
        assert_eq!(s.playbook.as_deref(), Some("c2-quarantine"));
        assert_eq!(s.event_id.as_deref(), Some("ev-1"));
        assert_eq!(s.action_id.as_deref(), Some("act-1"));
        assert_eq!(
            s.quarantined_at,
            Some(
                Utc.with_ymd_and_hms(2025, 3, 1, 10, 0, 0)
                    .single()
                    .expect("time")
            )
        );
        assert_eq!(
            s.expires_at,
            Some(
                Utc.with_ymd_and_hms(2025, 3, 1, 14, 0, 0)
                    .single()
                    .expect("time")
            )
        );
        assert_eq!(
            s.detached_labels.get("app").map(String::as_str),
            Some("checkout")
        );
        assert!(s.problems.is_empty());
    }

    #[test]
    fn damage_is_reported_not_guessed() {
        let a = ann(&[
            (ANN_EXPIRES_AT, "tomorrow"),
            (ANN_DETACHED_LABELS, "app=checkout"),
        ]);
        let s = QuarantineState::from_annotations(PodRef::new("shop", "x"), &a);
        assert_eq!(
            s.expires_at, None,
            "an unreadable expiry never releases early"
        );
        assert!(s.detached_labels.is_empty());
        assert_eq!(s.problems.len(), 2);
        assert!(s.problems[0].contains("tomorrow"));
    }

    #[test]
    fn no_annotations_means_manual_release() {
        let s = QuarantineState::from_annotations(PodRef::new("shop", "x"), &BTreeMap::new());
        assert_eq!(s.expires_at, None);
        assert!(s.problems.is_empty());
    }

    #[test]
    fn detached_labels_round_trip() {
        let m = BTreeMap::from([("app".to_owned(), "web".to_owned())]);
        assert_eq!(parse_detached(&render_detached(&m)).expect("json"), m);
    }

    #[test]
    fn times_are_written_like_kubernetes_writes_them() {
        let t = Utc
            .with_ymd_and_hms(2025, 3, 1, 10, 0, 0)
            .single()
            .expect("time");
        assert_eq!(rfc3339(t), "2025-03-01T10:00:00Z");
    }
}
