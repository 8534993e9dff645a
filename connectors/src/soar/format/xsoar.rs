//! A Cortex XSOAR generic-webhook incident.

use serde_json::{json, Value};

use super::rfc3339;
use crate::soar::{Notification, Severity, TargetConfig};

/// XSOAR severities: 0.5 informational, 1 low, 2 medium, 3 high, 4 critical.
fn xsoar_severity(s: Severity) -> Value {
    match s {
        Severity::Informational => json!(0.5),
        Severity::Low => json!(1),
        Severity::Medium => json!(2),
        Severity::High => json!(3),
        Severity::Critical => json!(4),
    }
}

pub(super) fn xsoar(t: &TargetConfig, n: &Notification) -> Value {
    json!({
        "name": n.title,
        "type": t.incident_type.as_deref().unwrap_or("Riposte Alert"),
        "severity": xsoar_severity(n.severity),
        "occurred": rfc3339(n),
        "details": n.describe(),
        "labels": labels(t, n),
        "rawJson": n,
    })
}

/// The update of XSOAR incident `id` through the server's create-or-update
/// endpoint (`POST /incident` with the incident's `id`; `version: -1`
/// overwrites whatever version the incident is at). The details and the
/// `riposte.count` label carry the window's totals.
pub(super) fn xsoar_update(t: &TargetConfig, n: &Notification, id: &str) -> Value {
    json!({
        "id": id,
        "version": -1,
        "name": n.title,
        "type": t.incident_type.as_deref().unwrap_or("Riposte Alert"),
        "severity": xsoar_severity(n.severity),
        "details": n.describe(),
        "labels": labels(t, n),
        "rawJson": n,
    })
}

fn labels(t: &TargetConfig, n: &Notification) -> Vec<Value> {
    let mut labels = vec![
        json!({"type": "riposte.kind", "value": n.kind.as_str()}),
        json!({"type": "riposte.event_id", "value": n.event.id}),
    ];
    if let Some(pb) = &n.playbook {
        labels.push(json!({"type": "riposte.playbook", "value": pb}));
    }
    if let Some(pod) = &n.pod {
        labels.push(
            json!({"type": "riposte.pod", "value": format!("{}/{}", pod.namespace, pod.name)}),
        );
    }
    for a in &n.approvals {
        labels.push(json!({"type": "riposte.approval_id", "value": a.id}));
        labels.push(json!({"type": "riposte.approve_url", "value": a.approve_url}));
        labels.push(json!({"type": "riposte.deny_url", "value": a.deny_url}));
    }
    if let Some(c) = &n.coalesced {
        labels.push(json!({"type": "riposte.incident", "value": c.incident}));
        labels.push(json!({"type": "riposte.count", "value": c.count.to_string()}));
    }
    labels.extend(
        t.tags
            .iter()
            .map(|tag| json!({"type": "tag", "value": tag})),
    );
    labels
}

#[cfg(test)]
mod tests {
    use super::super::render;
    use super::super::tests::*;
    use crate::soar::{Format, Severity};
    use serde_json::json;

    #[test]
    fn xsoar_incident() {
        let n = sample();
        let mut t = target(Format::Xsoar);
        t.incident_type = Some("C2".into());
        assert_eq!(
            render(&t, &n),
            json!({
                "name": "C2 traffic to 203.0.113.9",
                "type": "C2",
                "severity": 4,
                "occurred": "2026-01-02T03:04:05.000Z",
                "details": DESCRIPTION,
                "labels": [
                    {"type": "riposte.kind", "value": "riposte.notify"},
                    {"type": "riposte.event_id", "value": "ev-1"},
                    {"type": "riposte.playbook", "value": "c2-quarantine"},
                    {"type": "riposte.pod", "value": "shop/checkout-7d9f"},
                    {"type": "tag", "value": "riposte"},
                ],
                "rawJson": serde_json::to_value(&n).expect("json"),
            })
        );
        let mut info = n;
        info.severity = Severity::Informational;
        assert_eq!(render(&t, &info)["severity"], json!(0.5));
    }
}
