//! A [`Notification`] in each platform's shape, per
//! `shared/reference/firewall-and-soar-apis.md`:
//!
//! - `webhook`: the Standard Webhooks envelope `{type, timestamp, data}`.
//! - `xsoar`: a Cortex XSOAR generic-webhook incident (`name`, `type`,
//!   `severity` on XSOAR's 0.5–4 scale, `occurred`, `details`, `labels`,
//!   `rawJson`).
//! - `splunk_soar`: a container with artifacts (CEF fields); the
//!   notification id is the `source_data_identifier`, so a resend is a
//!   duplicate Splunk recognizes.
//! - `thehive`: a TheHive 5 alert with observables; `sourceRef` is the
//!   notification id, which TheHive refuses twice (its idempotency key).
//! - `slack`: `text` (the fallback) and Block Kit `blocks`.
//!
//! Approval requests reach every format: the signed approve and deny links
//! are in the description text of each, in the `data`/`rawJson` copy of the
//! notification where the format has one, and in each platform's own
//! place besides: XSOAR labels, a Splunk SOAR artifact with the two URLs,
//! TheHive tags, Slack buttons.

use serde_json::{json, Map, Value};

use super::{Format, IndicatorKind, Notification, Severity, TargetConfig};

/// The body for `target`'s format.
pub fn render(target: &TargetConfig, n: &Notification) -> Value {
    match target.format {
        Format::Webhook => webhook(n),
        Format::Xsoar => xsoar(target, n),
        Format::SplunkSoar => splunk_soar(target, n),
        Format::Thehive => thehive(target, n),
        Format::Slack => slack(n),
    }
}

fn rfc3339(n: &Notification) -> String {
    n.occurred
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn webhook(n: &Notification) -> Value {
    json!({
        "type": n.kind.as_str(),
        "timestamp": rfc3339(n),
        "data": n,
    })
}

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

fn xsoar(t: &TargetConfig, n: &Notification) -> Value {
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
    labels.extend(
        t.tags
            .iter()
            .map(|tag| json!({"type": "tag", "value": tag})),
    );
    json!({
        "name": n.title,
        "type": t.incident_type.as_deref().unwrap_or("Riposte Alert"),
        "severity": xsoar_severity(n.severity),
        "occurred": rfc3339(n),
        "details": n.describe(),
        "labels": labels,
        "rawJson": n,
    })
}

/// Splunk SOAR's stock severities are low, medium and high.
fn splunk_severity(s: Severity) -> &'static str {
    match s {
        Severity::Informational | Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High | Severity::Critical => "high",
    }
}

fn splunk_soar(t: &TargetConfig, n: &Notification) -> Value {
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

/// TheHive: 1 low, 2 medium, 3 high, 4 critical.
fn thehive_severity(s: Severity) -> u8 {
    match s {
        Severity::Informational | Severity::Low => 1,
        Severity::Medium => 2,
        Severity::High => 3,
        Severity::Critical => 4,
    }
}

fn thehive(t: &TargetConfig, n: &Notification) -> Value {
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

/// Slack mrkdwn treats `&`, `<` and `>` as control characters.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn slack(n: &Notification) -> Value {
    let sev = n.severity.as_str().to_ascii_uppercase();
    let mut context = format!(
        "severity *{}* · event `{}`",
        n.severity.as_str(),
        n.event.id
    );
    if let Some(pb) = &n.playbook {
        context.push_str(&format!(" · playbook `{}`", slack_escape(pb)));
    }
    let mut blocks = vec![
        // Header text is plain and at most 150 characters.
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&n.title, 150)}}),
        // Section text is at most 3000 characters.
        json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&slack_escape(&n.describe()), 3000)}}),
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}),
    ];
    if !n.links.is_empty() {
        // Slack takes at most 25 elements per actions block; the approval
        // links come first, so they are never the ones cut.
        let buttons: Vec<Value> = n
            .links
            .iter()
            .take(25)
            .map(|l| {
                let mut b = json!({"type": "button", "text": {"type": "plain_text", "text": truncate(&l.title, 75)}, "url": l.url});
                if n.approvals.iter().any(|a| a.approve_url == l.url) {
                    b["style"] = json!("primary");
                } else if n.approvals.iter().any(|a| a.deny_url == l.url) {
                    b["style"] = json!("danger");
                }
                b
            })
            .collect();
        blocks.push(json!({"type": "actions", "elements": buttons}));
    }
    json!({
        "text": format!("[{sev}] {}", slack_escape(&n.title)),
        "blocks": blocks,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::soar::{
        ActionInfo, ApprovalRequest, EventInfo, Indicator, Link, NotificationKind, PodInfo,
    };
    use chrono::TimeZone;

    pub(crate) fn sample() -> Notification {
        let mut fields = Map::new();
        fields.insert("title".into(), json!("C2 traffic to 203.0.113.9"));
        fields.insert("c2".into(), json!("203.0.113.9"));
        fields.insert("domain".into(), json!("Evil.example"));
        let mut n = Notification {
            id: "n-1".into(),
            kind: NotificationKind::Notify,
            title: "C2 traffic to 203.0.113.9".into(),
            severity: Severity::Critical,
            occurred: chrono::Utc
                .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
                .single()
                .expect("valid date"),
            event: EventInfo {
                id: "ev-1".into(),
                kind: Some("alert".into()),
                dataset: Some("panos.threat".into()),
                threat_name: Some("Cobalt Strike Beacon".into()),
                threat_type: Some("spyware".into()),
                severity: Some("critical".into()),
                source_ip: Some("10.244.1.17".parse().expect("ip")),
                destination_ip: Some("203.0.113.9".parse().expect("ip")),
            },
            pod: Some(PodInfo {
                namespace: "shop".into(),
                name: "checkout-7d9f".into(),
            }),
            playbook: Some("c2-quarantine".into()),
            actions: vec![ActionInfo {
                action: "quarantine".into(),
                target: Some("shop/checkout-7d9f".into()),
                status: "applied".into(),
                reason: None,
            }],
            fields,
            indicators: vec![],
            links: vec![Link {
                title: "Decision".into(),
                url: "https://riposte.example/v1/decisions?event_id=ev-1".into(),
            }],
            approvals: vec![],
        };
        n.collect_indicators();
        n
    }

    fn with_approval() -> Notification {
        let mut n = sample();
        n.add_approvals(vec![ApprovalRequest {
            id: "ap-1".into(),
            action: "quarantine".into(),
            summary: "shop/checkout-7d9f for 4h".into(),
            expires_at: n.occurred + chrono::Duration::hours(1),
            on_timeout: "drop".into(),
            approve_url: "https://riposte.example/v1/approvals/ap-1/approve?expires=1&token=aa"
                .into(),
            deny_url: "https://riposte.example/v1/approvals/ap-1/deny?expires=1&token=bb".into(),
            approvers: vec!["soc-lead".into()],
            reason: Some("beaconing".into()),
        }]);
        n
    }

    /// Every format carries both signed links of an approval request.
    #[test]
    fn approval_links_reach_every_format() {
        let n = with_approval();
        let approve = &n.approvals[0].approve_url;
        let deny = &n.approvals[0].deny_url;
        assert_eq!(n.links[0].url, *approve, "approval links come first");
        assert_eq!(n.links[1].url, *deny);
        for format in [
            Format::Webhook,
            Format::Xsoar,
            Format::SplunkSoar,
            Format::Thehive,
            Format::Slack,
        ] {
            let body = render(&target(format), &n).to_string();
            assert!(body.contains(approve.as_str()), "{format:?}: {body}");
            assert!(body.contains(deny.as_str()), "{format:?}: {body}");
        }
        let desc = n.describe();
        assert!(desc.contains("Approval needed: quarantine shop/checkout-7d9f for 4h (until 2026-01-02T04:04:05Z, then drop): beaconing"), "{desc}");
        let xsoar = render(&target(Format::Xsoar), &n);
        assert!(xsoar["labels"]
            .as_array()
            .expect("labels")
            .contains(&json!({"type": "riposte.approve_url", "value": approve})));
        let splunk = render(&target(Format::SplunkSoar), &n);
        let artifacts = splunk["artifacts"].as_array().expect("artifacts");
        let approval = artifacts
            .iter()
            .find(|a| a["cef"]["approvalId"] == "ap-1")
            .expect("approval artifact");
        assert_eq!(approval["cef"]["denyUrl"], json!(deny));
        assert_eq!(
            artifacts.last().map(|a| a["run_automation"].clone()),
            Some(json!(true))
        );
        let hive = render(&target(Format::Thehive), &n);
        assert!(hive["description"]
            .as_str()
            .expect("text")
            .contains(deny.as_str()));
        assert!(hive["tags"]
            .as_array()
            .expect("tags")
            .contains(&json!("riposte:approval=ap-1")));
        let slack = render(&target(Format::Slack), &n);
        let buttons = slack["blocks"][3]["elements"].as_array().expect("buttons");
        assert_eq!(buttons[0]["url"], json!(approve));
        assert_eq!(buttons[0]["style"], "primary");
        assert_eq!(buttons[1]["style"], "danger");
        assert!(buttons[2].get("style").is_none());
        let generic = render(&target(Format::Webhook), &n);
        assert_eq!(
            generic["data"]["approvals"][0]["approve_url"],
            json!(approve)
        );
    }

    const DESCRIPTION: &str = "Threat: Cobalt Strike Beacon (spyware)\nTraffic: 10.244.1.17 -> 203.0.113.9\nPod: shop/checkout-7d9f\nPlaybook: c2-quarantine\nAction: quarantine applied on shop/checkout-7d9f\nEvent: ev-1";

    fn target(format: Format) -> TargetConfig {
        let mut t = TargetConfig::new("soar", "https://soar.example/", format);
        t.tags = vec!["riposte".into()];
        t
    }

    #[test]
    fn webhook_is_the_standard_webhooks_envelope() {
        let n = sample();
        let body = render(&TargetConfig::new("w", "https://x/", Format::Webhook), &n);
        assert_eq!(
            body,
            json!({
                "type": "riposte.notify",
                "timestamp": "2026-01-02T03:04:05.000Z",
                "data": serde_json::to_value(&n).expect("json"),
            })
        );
        assert_eq!(body["data"]["event"]["source_ip"], "10.244.1.17");
        assert_eq!(body["data"]["fields"]["c2"], "203.0.113.9");
        let back: Notification = serde_json::from_value(body["data"].clone()).expect("round trip");
        assert_eq!(back, n);
    }

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

    #[test]
    fn slack_message_escapes_and_links() {
        let mut n = sample();
        n.title = "a <b> & c".into();
        let body = render(&target(Format::Slack), &n);
        assert_eq!(
            body,
            json!({
                "text": "[CRITICAL] a &lt;b&gt; &amp; c",
                "blocks": [
                    {"type": "header", "text": {"type": "plain_text", "text": "a <b> & c"}},
                    {"type": "section", "text": {"type": "mrkdwn", "text": DESCRIPTION.replace('>', "&gt;")}},
                    {"type": "context", "elements": [{"type": "mrkdwn", "text": "severity *critical* · event `ev-1` · playbook `c2-quarantine`"}]},
                    {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Decision"}, "url": "https://riposte.example/v1/decisions?event_id=ev-1"}]},
                ],
            })
        );
        n.title = "x".repeat(400);
        let long = render(&target(Format::Slack), &n);
        assert_eq!(
            long["blocks"][0]["text"]["text"]
                .as_str()
                .map(|s| s.chars().count()),
            Some(150)
        );
    }

    #[test]
    fn indicator_roles_reach_the_observables() {
        let n = sample();
        assert!(n.indicators.contains(&Indicator {
            kind: IndicatorKind::Domain,
            value: "evil.example".into(),
            role: Some("domain".into()),
        }));
    }
}
