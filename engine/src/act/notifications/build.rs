//! From a decision to the [`Notification`] a SOAR is told: the playbook's
//! `notify` fields, the event summary, the pod, the other intents.

use riposte_connectors::soar::{
    ActionInfo, ApprovalRequest, EventInfo, Link, Notification, NotificationKind, PodInfo, Severity,
};
use serde_json::{Map, Value};

use crate::act::approvals::Approval;
use crate::decide::decision::{ActionRecord, ActionStatus, Decision};
use crate::decide::intent::{Action, Intent};

/// The notification for a playbook's `notify` intent. Its id is the
/// intent's action id: the same event through the same playbook always
/// yields the same `webhook-id`, across retries, redelivered logs and
/// restarts. The approvals the same decision asked for ride along, with
/// their signed links.
pub fn for_intent(
    decision: &Decision,
    intent: &Intent,
    fields: &Value,
    public_url: Option<&str>,
    approvals: &[Approval],
) -> Notification {
    let fields = field_map(fields);
    let title = fields
        .get("title")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| default_title(decision));
    let severity = fields
        .get("severity")
        .and_then(Value::as_str)
        .and_then(Severity::parse)
        .or_else(|| decision.event.severity.as_deref().and_then(Severity::parse))
        .unwrap_or(Severity::Medium);
    let actions = decision
        .intents
        .iter()
        .filter(|i| !matches!(i.action, Action::Notify { .. } | Action::Log { .. }))
        .map(|i| ActionInfo {
            action: i.action.name().to_string(),
            target: Some(i.action.summary()),
            status: decision
                .actions
                .iter()
                .find(|a| a.action_id == i.action_id)
                .map(|a| a.status.as_str())
                .unwrap_or("decided")
                .to_string(),
            reason: None,
        })
        .collect();
    let mut n = Notification {
        id: intent.action_id.clone(),
        kind: NotificationKind::Notify,
        title,
        severity,
        occurred: decision.at,
        event: event_info(decision),
        pod: pod_of(&fields),
        playbook: Some(decision.playbook.clone()),
        actions,
        fields,
        indicators: Vec::new(),
        links: links(decision, public_url),
        approvals: Vec::new(),
        coalesced: None,
    };
    n.add_approvals(approvals.iter().filter_map(approval_request).collect());
    n.collect_indicators();
    n
}

/// What a SOAR is told of an approval: its intent and its two signed links.
/// `None` once decided (the links are only made for a pending request).
pub fn approval_request(a: &Approval) -> Option<ApprovalRequest> {
    Some(ApprovalRequest {
        id: a.id.clone(),
        action: a.intent.action.name().to_string(),
        summary: a.intent.action.summary(),
        expires_at: a.expires_at,
        on_timeout: a.default.as_str().to_string(),
        approve_url: a.approve_url.clone()?,
        deny_url: a.deny_url.clone()?,
        approvers: a.approvers.clone(),
        reason: a.reason.clone(),
    })
}

/// The request for approval sent to targets subscribed to `approval`. The
/// id joins the approval id and the target, so each target is asked once.
pub fn for_approval(
    decision: &Decision,
    approval: &Approval,
    target: &str,
    public_url: Option<&str>,
) -> Option<Notification> {
    let request = approval_request(approval)?;
    let severity = decision
        .event
        .severity
        .as_deref()
        .and_then(Severity::parse)
        .unwrap_or(Severity::Medium);
    let mut n = Notification {
        id: format!("{}.approval.{target}", approval.id),
        kind: NotificationKind::ApprovalRequested,
        title: format!(
            "Approval needed: {} {} {}",
            decision.playbook, request.action, request.summary
        ),
        severity,
        occurred: approval.created_at,
        event: event_info(decision),
        pod: match approval.intent.action.target() {
            Some(crate::decide::intent::Target::Pod { namespace, name }) => Some(PodInfo {
                namespace: namespace.clone(),
                name: name.clone(),
            }),
            _ => None,
        },
        playbook: Some(decision.playbook.clone()),
        actions: vec![ActionInfo {
            action: request.action.clone(),
            target: Some(request.summary.clone()),
            status: "awaiting-approval".into(),
            reason: approval.reason.clone(),
        }],
        fields: Map::new(),
        indicators: Vec::new(),
        links: links(decision, public_url),
        approvals: Vec::new(),
        coalesced: None,
    };
    n.add_approvals(vec![request]);
    n.collect_indicators();
    Some(n)
}

/// The notification of an enforced action's outcome (`applied`, `refused`,
/// `failed`) for one target. The id joins the action id, the outcome and
/// the target, so each is told once.
pub fn for_outcome(
    decision: &Decision,
    record: &ActionRecord,
    target: &str,
    public_url: Option<&str>,
) -> Option<Notification> {
    let (kind, severity) = match record.status {
        ActionStatus::Applied => (NotificationKind::ActionApplied, Severity::Low),
        ActionStatus::Refused => (NotificationKind::ActionRefused, Severity::Medium),
        ActionStatus::Failed => (NotificationKind::ActionFailed, Severity::High),
        ActionStatus::Queued | ActionStatus::Skipped => return None,
    };
    let on = record.target.as_deref().unwrap_or("");
    let title = format!(
        "{} {} {}{}",
        decision.playbook,
        record.action,
        record.status.as_str(),
        if on.is_empty() {
            String::new()
        } else {
            format!(": {on}")
        }
    );
    let pod = record.target.as_deref().and_then(parse_pod);
    let mut n = Notification {
        id: format!("{}.{}.{}", record.action_id, record.status.as_str(), target),
        kind,
        title,
        severity,
        occurred: record.at,
        event: event_info(decision),
        pod,
        playbook: Some(decision.playbook.clone()),
        actions: vec![ActionInfo {
            action: record.action.clone(),
            target: record.target.clone(),
            status: record.status.as_str().to_string(),
            reason: record.reason.clone(),
        }],
        fields: Map::new(),
        indicators: Vec::new(),
        links: links(decision, public_url),
        approvals: Vec::new(),
        coalesced: None,
    };
    n.collect_indicators();
    Some(n)
}

fn default_title(d: &Decision) -> String {
    match &d.event.threat_name {
        Some(name) => format!("{}: {name}", d.playbook),
        None => format!("{}: {}", d.playbook, d.event.dataset),
    }
}

fn event_info(d: &Decision) -> EventInfo {
    d.event.with_id(&d.event_id)
}

/// The playbook's fields as an object; `()` values (JSON null) are
/// dropped, a non-object is kept under `value`.
fn field_map(fields: &Value) -> Map<String, Value> {
    match fields {
        Value::Object(m) => m
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        Value::Null => Map::new(),
        other => {
            let mut m = Map::new();
            m.insert("value".into(), other.clone());
            m
        }
    }
}

/// `pod`, `source_pod` or `destination_pod` as `namespace/name`.
fn pod_of(fields: &Map<String, Value>) -> Option<PodInfo> {
    ["pod", "source_pod", "destination_pod"]
        .iter()
        .filter_map(|k| fields.get(*k).and_then(Value::as_str))
        .find_map(parse_pod)
}

fn parse_pod(s: &str) -> Option<PodInfo> {
    let (ns, name) = s.split_once('/')?;
    let ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 253
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    };
    (ok(ns) && ok(name)).then(|| PodInfo {
        namespace: ns.to_string(),
        name: name.to_string(),
    })
}

fn links(d: &Decision, public_url: Option<&str>) -> Vec<Link> {
    let Some(base) = public_url else {
        return Vec::new();
    };
    let id: String = d
        .event_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.~".contains(c) {
                c.to_string()
            } else {
                format!("%{:02X}", c as u32 & 0xff)
            }
        })
        .collect();
    vec![Link {
        title: "Decision in Riposte".into(),
        url: format!("{}/v1/decisions?event_id={id}", base.trim_end_matches('/')),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::decision::{EventSummary, Mode, Outcome, Timings};
    use crate::decide::intent::{Target, Ttl};
    use serde_json::json;

    fn decision() -> Decision {
        let quarantine = Intent::new(
            "ev1",
            "c2-quarantine",
            Action::Quarantine {
                target: Target::pod("shop", "checkout-7d9f").expect("valid"),
                ttl: Ttl::parse("4h").expect("valid"),
                reason: None,
            },
        );
        let notify = Intent::new(
            "ev1",
            "c2-quarantine",
            Action::Notify {
                target: "soar".into(),
                fields: json!({"title": "C2 traffic to 203.0.113.9", "severity": "critical",
                    "c2": "203.0.113.9", "pod": "shop/checkout-7d9f", "nothing": null}),
            },
        );
        Decision {
            event_id: "ev1".into(),
            event: EventSummary {
                kind: "alert".into(),
                dataset: "panos.threat".into(),
                threat_name: Some("Beacon".into()),
                threat_type: Some("spyware".into()),
                severity: Some("high".into()),
                source_ip: Some("10.244.1.17".parse().expect("ip")),
                destination_ip: Some("203.0.113.9".parse().expect("ip")),
                ..EventSummary::default()
            },
            playbook: "c2-quarantine".into(),
            mode: Mode::Enforce,
            intents: vec![quarantine, notify],
            outcome: Outcome::Decided,
            timings: Timings::default(),
            at: chrono::Utc::now(),
            actions: Vec::new(),
        }
    }

    #[test]
    fn a_notify_intent_becomes_a_notification_with_a_stable_id() {
        let d = decision();
        let intent = &d.intents[1];
        let Action::Notify { fields, .. } = &intent.action else {
            panic!("notify")
        };
        let n = for_intent(&d, intent, fields, Some("https://riposte.example/"), &[]);
        assert_eq!(n.id, intent.action_id);
        assert_eq!(n.title, "C2 traffic to 203.0.113.9");
        assert_eq!(n.severity, Severity::Critical);
        assert_eq!(
            n.pod,
            Some(PodInfo {
                namespace: "shop".into(),
                name: "checkout-7d9f".into()
            })
        );
        assert!(!n.fields.contains_key("nothing"));
        assert_eq!(n.actions.len(), 1);
        assert_eq!(n.actions[0].action, "quarantine");
        assert_eq!(n.actions[0].status, "decided");
        assert_eq!(
            n.links[0].url,
            "https://riposte.example/v1/decisions?event_id=ev1"
        );
        assert_eq!(for_intent(&d, intent, fields, None, &[]).id, n.id);
    }

    #[test]
    fn defaults_come_from_the_event() {
        let d = decision();
        let n = for_intent(&d, &d.intents[1], &Value::Null, None, &[]);
        assert_eq!(n.title, "c2-quarantine: Beacon");
        assert_eq!(n.severity, Severity::High);
        assert!(n.links.is_empty());
    }

    #[test]
    fn outcomes_have_one_id_per_status_and_target() {
        let d = decision();
        let record = ActionRecord {
            action_id: "a1".into(),
            action: "quarantine".into(),
            target: Some("shop/checkout-7d9f".into()),
            status: ActionStatus::Refused,
            reason: Some("protected namespace".into()),
            code: None,
            attempts: 0,
            duration_us: 0,
            at: chrono::Utc::now(),
        };
        let n = for_outcome(&d, &record, "soar", None).expect("refused is told");
        assert_eq!(n.id, "a1.refused.soar");
        assert_eq!(n.kind, NotificationKind::ActionRefused);
        assert_eq!(n.pod.map(|p| p.name), Some("checkout-7d9f".into()));
        let mut queued = record;
        queued.status = ActionStatus::Queued;
        assert!(for_outcome(&d, &queued, "soar", None).is_none());
    }
}
