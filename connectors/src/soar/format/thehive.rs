//! A TheHive 5 alert with observables.

use serde_json::{json, Value};

use crate::soar::{IndicatorKind, Notification, Severity, TargetConfig};

/// TheHive: 1 low, 2 medium, 3 high, 4 critical.
fn thehive_severity(s: Severity) -> u8 {
    match s {
        Severity::Informational | Severity::Low => 1,
        Severity::Medium => 2,
        Severity::High => 3,
        Severity::Critical => 4,
    }
}

fn tags(t: &TargetConfig, n: &Notification) -> Vec<String> {
    let mut tags: Vec<String> = t.tags.clone();
    if let Some(pb) = &n.playbook {
        tags.push(format!("riposte:playbook={pb}"));
    }
    if let Some(pod) = &n.pod {
        tags.push(format!("k8s:namespace={}", pod.namespace));
    }
    for a in &n.approvals {
        tags.push(format!("riposte:approval={}", a.id));
    }
    if let Some(c) = &n.coalesced {
        tags.push(format!("riposte:incident={}", c.incident));
        tags.push(format!("riposte:count={}", c.count));
    }
    tags
}

/// The update of an alert (`PATCH /api/v1/alert/{id}`): its description
/// and tags (which a PATCH replaces whole) carry the window's totals.
pub(super) fn thehive_update(t: &TargetConfig, n: &Notification) -> Value {
    json!({
        "description": n.describe(),
        "severity": thehive_severity(n.severity),
        "tags": tags(t, n),
    })
}

pub(super) fn thehive(t: &TargetConfig, n: &Notification) -> Value {
    let tags = tags(t, n);
    let observables: Vec<Value> = n
        .indicators
        .iter()
        .map(|i| {
            let role = i.role.as_deref().unwrap_or("indicator");
            json!({
                "dataType": match i.kind {
                    IndicatorKind::Ip => "ip",
                    IndicatorKind::Domain => "domain",
                    IndicatorKind::Url => "url",
                    IndicatorKind::Hash => "hash",
                },
                "data": i.value,
                "message": format!("{role} of event {}", n.event.id),
                // The event's own two ends include our pod: only what the
                // playbook singled out is an indicator of compromise.
                "ioc": !matches!(role, "source" | "destination"),
                "tags": [format!("role:{role}")],
            })
        })
        .collect();
    json!({
        "type": t.alert_type.as_deref().unwrap_or("riposte"),
        "source": t.source.as_deref().unwrap_or("riposte"),
        "sourceRef": n.id,
        "title": n.title,
        "description": n.describe(),
        "severity": thehive_severity(n.severity),
        "date": n.occurred.timestamp_millis(),
        "tags": tags,
        "tlp": t.tlp.unwrap_or(2),
        "pap": t.pap.unwrap_or(2),
        "observables": observables,
    })
}

#[cfg(test)]
mod tests {
    use super::super::render;
    use super::super::tests::*;
    use crate::soar::Format;
    use serde_json::json;

    #[test]
    fn thehive_alert_with_observables() {
        let n = sample();
        let mut t = target(Format::Thehive);
        t.tlp = Some(3);
        assert_eq!(
            render(&t, &n),
            json!({
                "type": "riposte",
                "source": "riposte",
                "sourceRef": "n-1",
                "title": "C2 traffic to 203.0.113.9",
                "description": DESCRIPTION,
                "severity": 4,
                "date": 1767323045000_i64,
                "tags": ["riposte", "riposte:playbook=c2-quarantine", "k8s:namespace=shop"],
                "tlp": 3,
                "pap": 2,
                "observables": [
                    {"dataType": "ip", "data": "10.244.1.17", "message": "source of event ev-1", "ioc": false, "tags": ["role:source"]},
                    {"dataType": "ip", "data": "203.0.113.9", "message": "destination of event ev-1", "ioc": false, "tags": ["role:destination"]},
                    {"dataType": "domain", "data": "evil.example", "message": "domain of event ev-1", "ioc": true, "tags": ["role:domain"]},
                ],
            })
        );
    }
}
