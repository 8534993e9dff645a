//! A Splunk SOAR container with artifacts (CEF fields).

use serde_json::{json, Map, Value};

use super::rfc3339;
use crate::soar::{IndicatorKind, Notification, Severity, TargetConfig};

/// Splunk SOAR's stock severities are low, medium and high.
fn splunk_severity(s: Severity) -> &'static str {
    match s {
        Severity::Informational | Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High | Severity::Critical => "high",
    }
}

pub(super) fn splunk_soar(t: &TargetConfig, n: &Notification) -> Value {
    let label = t.label.as_deref().unwrap_or("events");
    let severity = splunk_severity(n.severity);
    let mut cef = Map::new();
    let mut cef_types = Map::new();
    if let Some(ip) = n.event.source_ip {
        cef.insert("sourceAddress".into(), json!(ip));
        cef_types.insert("sourceAddress".into(), json!(["ip"]));
    }
    if let Some(ip) = n.event.destination_ip {
        cef.insert("destinationAddress".into(), json!(ip));
        cef_types.insert("destinationAddress".into(), json!(["ip"]));
    }
    if let Some(name) = &n.event.threat_name {
        cef.insert("threatName".into(), json!(name));
    }
    if let Some(ty) = &n.event.threat_type {
        cef.insert("threatType".into(), json!(ty));
    }
    if let Some(pod) = &n.pod {
        cef.insert("podNamespace".into(), json!(pod.namespace));
        cef.insert("podName".into(), json!(pod.name));
    }
    if let Some(pb) = &n.playbook {
        cef.insert("playbook".into(), json!(pb));
    }
    cef.insert("eventId".into(), json!(n.event.id));
    if let Some(c) = &n.coalesced {
        coalesced_cef(&mut cef, c);
    }
    let mut artifacts = vec![json!({
        "name": "Riposte event",
        "label": label,
        "severity": severity,
        "source_data_identifier": format!("{}-event", n.id),
        "cef": cef,
        "cef_types": cef_types,
    })];
    for (i, ind) in n.indicators.iter().enumerate() {
        // The event artifact already carries its two addresses.
        if ind.kind == IndicatorKind::Ip
            && matches!(ind.role.as_deref(), Some("source") | Some("destination"))
        {
            continue;
        }
        let (key, ty) = match ind.kind {
            IndicatorKind::Ip => ("destinationAddress", "ip"),
            IndicatorKind::Domain => ("destinationDnsDomain", "domain"),
            IndicatorKind::Url => ("requestURL", "url"),
            IndicatorKind::Hash => ("fileHash", "hash"),
        };
        artifacts.push(json!({
            "name": format!("Indicator: {}", ind.role.as_deref().unwrap_or(ty)),
            "label": label,
            "severity": severity,
            "source_data_identifier": format!("{}-ind-{i}", n.id),
            "cef": { key: ind.value },
            "cef_types": { key: [ty] },
        }));
    }
    for a in &n.approvals {
        artifacts.push(json!({
            "name": format!("Approval: {} {}", a.action, a.summary),
            "label": label,
            "severity": severity,
            "source_data_identifier": format!("{}-approval-{}", n.id, a.id),
            "cef": {
                "approvalId": a.id,
                "approveUrl": a.approve_url,
                "denyUrl": a.deny_url,
                "expiresAt": a.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "onTimeout": a.on_timeout,
            },
            "cef_types": { "approveUrl": ["url"], "denyUrl": ["url"] },
        }));
    }
    // Splunk runs playbooks once, when the last artifact arrives.
    let last = artifacts.len() - 1;
    for (i, a) in artifacts.iter_mut().enumerate() {
        a["run_automation"] = json!(i == last);
    }
    json!({
        "name": n.title,
        "label": label,
        "description": n.describe(),
        "severity": severity,
        "source_data_identifier": n.id,
        "start_time": rfc3339(n),
        "tags": t.tags,
        "data": n,
        "artifacts": artifacts,
    })
}

fn tallies(t: &[crate::soar::Tally]) -> String {
    t.iter()
        .map(|t| format!("{} ({})", t.value, t.count))
        .collect::<Vec<_>>()
        .join(", ")
}

fn coalesced_cef(cef: &mut Map<String, Value>, c: &crate::soar::Coalesced) {
    let at =
        |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    cef.insert("riposteIncident".into(), json!(c.incident));
    cef.insert("eventCount".into(), json!(c.count));
    cef.insert("newEvents".into(), json!(c.new));
    cef.insert("startTime".into(), json!(at(&c.first_seen)));
    cef.insert("endTime".into(), json!(at(&c.last_seen)));
    if !c.top_sources.is_empty() {
        cef.insert("topSources".into(), json!(tallies(&c.top_sources)));
    }
    if !c.threat_names.is_empty() {
        cef.insert("threatNames".into(), json!(tallies(&c.threat_names)));
    }
    if !c.reasons.is_empty() {
        cef.insert("refusals".into(), json!(tallies(&c.reasons)));
    }
    if !c.playbooks.is_empty() {
        cef.insert("playbooks".into(), json!(c.playbooks.join(", ")));
    }
    if !c.event_ids.is_empty() {
        cef.insert("eventIds".into(), json!(c.event_ids.join(", ")));
    }
}

/// An update of container `container`: one artifact added to it
/// (`POST /rest/artifact`) with the window's totals in its CEF fields. Its
/// `source_data_identifier` is the update's notification id, so a resend
/// is a duplicate Splunk recognizes. Automation does not run for it: a
/// storm must not start a playbook per update.
pub(super) fn splunk_artifact(t: &TargetConfig, n: &Notification, container: &str) -> Value {
    let label = t.label.as_deref().unwrap_or("events");
    let mut cef = Map::new();
    if let Some(c) = &n.coalesced {
        coalesced_cef(&mut cef, c);
    }
    let update = n.coalesced.as_ref().map_or(0, |c| c.update);
    let count = n.coalesced.as_ref().map_or(1, |c| c.count);
    json!({
        // Splunk SOAR's container ids are numbers.
        "container_id": container.parse::<u64>().map(Value::from).unwrap_or_else(|_| json!(container)),
        "name": format!("Riposte update {update}: {count} events"),
        "label": label,
        "severity": splunk_severity(n.severity),
        "source_data_identifier": n.id,
        "start_time": rfc3339(n),
        "cef": cef,
        "data": n,
        "run_automation": false,
    })
}

#[cfg(test)]
mod tests {
    use super::super::render;
    use super::super::tests::*;
    use crate::soar::Format;
    use serde_json::json;

    #[test]
    fn splunk_container_with_artifacts() {
        let n = sample();
        assert_eq!(
            render(&target(Format::SplunkSoar), &n),
            json!({
                "name": "C2 traffic to 203.0.113.9",
                "label": "events",
                "description": DESCRIPTION,
                "severity": "high",
                "source_data_identifier": "n-1",
                "start_time": "2026-01-02T03:04:05.000Z",
                "tags": ["riposte"],
                "data": serde_json::to_value(&n).expect("json"),
                "artifacts": [
                    {
                        "name": "Riposte event",
                        "label": "events",
                        "severity": "high",
                        "source_data_identifier": "n-1-event",
                        "cef": {
                            "sourceAddress": "10.244.1.17",
                            "destinationAddress": "203.0.113.9",
                            "threatName": "Cobalt Strike Beacon",
                            "threatType": "spyware",
                            "podNamespace": "shop",
                            "podName": "checkout-7d9f",
                            "playbook": "c2-quarantine",
                            "eventId": "ev-1",
                        },
                        "cef_types": {"sourceAddress": ["ip"], "destinationAddress": ["ip"]},
                        "run_automation": false,
                    },
                    {
                        "name": "Indicator: domain",
                        "label": "events",
                        "severity": "high",
                        "source_data_identifier": "n-1-ind-2",
                        "cef": {"destinationDnsDomain": "evil.example"},
                        "cef_types": {"destinationDnsDomain": ["domain"]},
                        "run_automation": true,
                    },
                ],
            })
        );
    }
}
