//! What the rest of Riposte keeps of an event once its playbooks have run:
//! the decision record's view of it (the audit trail without the raw line)
//! and the notification's (what a SOAR pivots on). One type for both, so
//! the audit and the SOAR never describe the same event two ways.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::event::ThreatEvent;

/// An event in ECS terms, small enough to store with every decision.
///
/// `id` is empty where the record holding the summary names the event
/// itself (a decision has its own `event_id`); a notification fills it.
/// Empty strings are left out of the JSON, so each holder's form stays what
/// it always was.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSummary {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dataset: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threat_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threat_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_ip: Option<IpAddr>,
}

impl EventSummary {
    /// The summary a decision keeps (no `id`: the decision names its event).
    pub fn of(event: &ThreatEvent) -> EventSummary {
        EventSummary {
            kind: event.kind.as_str().to_owned(),
            dataset: event.dataset.to_string(),
            threat_name: event.threat_name.as_ref().map(|s| s.to_string()),
            threat_type: event.threat_type.as_ref().map(|s| s.to_string()),
            severity: event.threat_severity.map(|s| s.as_str().to_owned()),
            source_ip: event.source_ip,
            destination_ip: event.destination_ip,
            ..EventSummary::default()
        }
    }

    /// The same summary naming its event, as a notification carries it.
    pub fn with_id(&self, id: &str) -> EventSummary {
        EventSummary {
            id: id.to_owned(),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn summary() -> EventSummary {
        EventSummary {
            kind: "alert".into(),
            dataset: "suricata.eve".into(),
            threat_name: Some("ET MALWARE Sliver implant".into()),
            severity: Some("high".into()),
            destination_ip: Some("198.51.100.7".parse().expect("ip")),
            ..EventSummary::default()
        }
    }

    #[test]
    fn a_decision_s_summary_keeps_its_json_form_without_an_id() {
        let v = serde_json::to_value(summary()).expect("json");
        assert_eq!(
            v,
            json!({"kind": "alert", "dataset": "suricata.eve",
                   "threat_name": "ET MALWARE Sliver implant",
                   "severity": "high", "destination_ip": "198.51.100.7"})
        );
        let back: EventSummary = serde_json::from_value(v).expect("back");
        assert_eq!(back, summary());
    }

    #[test]
    fn a_notification_s_summary_names_its_event_and_reads_older_records() {
        let v = serde_json::to_value(summary().with_id("ev-1")).expect("json");
        assert_eq!(v["id"], "ev-1");
        assert_eq!(v["kind"], "alert");
        // An approval request's event (nothing known) was `{"id": ""}`-less
        // and kind-less before; it still reads.
        let empty: EventSummary = serde_json::from_value(json!({"id": "x"})).expect("sparse");
        assert_eq!(empty.kind, "");
        assert_eq!(
            serde_json::to_value(EventSummary::default()).expect("json"),
            json!({})
        );
    }
}
