//! What Riposte tells a SOAR: one [`Notification`], independent of any
//! platform's shape. The engine builds it from a decision; [`format`]
//! renders it for each platform. It is also what the outbox stores, so it
//! serializes losslessly.
//!
//! [`format`]: super::format

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Severity on Riposte's scale, the firewall events' own type: one home,
/// so an event's severity reaches a SOAR without translation. Each format
/// maps it to its platform's scale.
pub use riposte_firewall::Severity;

/// What the notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NotificationKind {
    /// A playbook's `notify` intent.
    #[serde(rename = "riposte.notify")]
    Notify,
    /// An enforced action was carried out.
    #[serde(rename = "riposte.action.applied")]
    ActionApplied,
    /// A guardrail refused an action.
    #[serde(rename = "riposte.action.refused")]
    ActionRefused,
    /// A connector failed to carry an action out.
    #[serde(rename = "riposte.action.failed")]
    ActionFailed,
    /// A playbook asks a human to approve an intent.
    #[serde(rename = "riposte.approval.requested")]
    ApprovalRequested,
}

impl NotificationKind {
    /// The Standard Webhooks event `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Notify => "riposte.notify",
            NotificationKind::ActionApplied => "riposte.action.applied",
            NotificationKind::ActionRefused => "riposte.action.refused",
            NotificationKind::ActionFailed => "riposte.action.failed",
            NotificationKind::ApprovalRequested => "riposte.approval.requested",
        }
    }
}

/// The event that triggered the playbook, in ECS terms: the firewall
/// crate's one event summary (the decision record keeps the same), with its
/// `id` filled. `EventInfo` is the name the SOAR model has always used.
pub use riposte_firewall::EventSummary;
pub type EventInfo = EventSummary;

/// The pod the event was about, when the pod index knew it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
}

/// One action of the decision and how it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionInfo {
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An observable the SOAR can pivot on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indicator {
    pub kind: IndicatorKind,
    pub value: String,
    /// `source`, `destination`, or the playbook field it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndicatorKind {
    Ip,
    Domain,
    Url,
    Hash,
}

/// A link for the analyst (the decision in Riposte's API, a runbook).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub title: String,
    pub url: String,
}

/// An intent waiting for a human, with the signed links that decide it.
/// Each link works once, only for its own verdict, and not after
/// `expires_at`; a plain `POST` to it decides (no token needed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// The approval's id (`/v1/approvals/{id}`).
    pub id: String,
    /// The action waiting (`quarantine`, `tag_ip`, …).
    pub action: String,
    /// What it would do, in words (`shop/checkout-7d9f for 4h`).
    pub summary: String,
    pub expires_at: DateTime<Utc>,
    /// What happens when nobody decides in time: `apply` or `drop`.
    pub on_timeout: String,
    pub approve_url: String,
    pub deny_url: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ApprovalRequest {
    /// The two links as analyst-facing [`Link`]s (approve first).
    pub fn links(&self) -> [Link; 2] {
        [
            Link {
                title: format!("Approve {} {}", self.action, self.summary),
                url: self.approve_url.clone(),
            },
            Link {
                title: format!("Deny {} {}", self.action, self.summary),
                url: self.deny_url.clone(),
            },
        ]
    }
}

/// One notification: everything a SOAR is told, in Riposte's terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The `webhook-id`: stable across retries and restarts, so receivers
    /// (and SOAR dedupe keys) see one notification however often it is sent.
    pub id: String,
    pub kind: NotificationKind,
    pub title: String,
    pub severity: Severity,
    /// When the decision was made.
    pub occurred: DateTime<Utc>,
    pub event: EventInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ActionInfo>,
    /// The fields of the playbook's `notify` call, as given.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indicators: Vec<Indicator>,
    /// Links for the analyst; the approve and deny links of
    /// [`Notification::approvals`] come first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// Intents of this decision waiting for approval.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<ApprovalRequest>,
    /// Set when this notification stands for several events of one
    /// subject (a coalescing window): the incident it opens or updates,
    /// the count and the aggregated evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coalesced: Option<Coalesced>,
}

/// A value and how many events had it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub value: String,
    pub count: u64,
}

/// What a notification of a coalescing window says about the events it
/// stands for. Counts are the window's totals so far, so the last update
/// a SOAR shows always counts every event of the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coalesced {
    /// The incident key: the id of the notification that opened the
    /// incident. Every update of the incident carries the same key.
    pub incident: String,
    /// 0 for the notification that opens the incident, then 1, 2, … for
    /// each update.
    pub update: u32,
    /// Events counted in the incident so far, this notification's included.
    pub count: u64,
    /// Events this notification adds to the previous one's count.
    pub new: u64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// When the window closes: a last update follows then if events came
    /// after this one.
    pub window_end: DateTime<Utc>,
    /// The most frequent source addresses, most frequent first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_sources: Vec<Tally>,
    /// Threat names seen, most frequent first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub threat_names: Vec<Tally>,
    /// Every playbook counted in the incident (two playbooks notifying the
    /// same target for the same event are named together).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub playbooks: Vec<String>,
    /// A bounded sample of the event ids this notification adds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_ids: Vec<String>,
    /// A summary (guardrail refusals): per reason and action, how many.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<Tally>,
    /// True on the update sent when the window closed.
    #[serde(default)]
    pub last: bool,
}

impl Coalesced {
    /// The lines a description adds for the analyst.
    pub fn describe(&self) -> Vec<String> {
        let at = |t: &DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let tallies = |t: &[Tally]| {
            t.iter()
                .map(|t| format!("{} ({})", t.value, t.count))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut lines = vec![format!(
            "Events: {} (first seen {}, last seen {}){}",
            self.count,
            at(&self.first_seen),
            at(&self.last_seen),
            if self.update > 0 {
                format!(", {} new in update {}", self.new, self.update)
            } else {
                String::new()
            }
        )];
        if !self.top_sources.is_empty() {
            lines.push(format!("Top sources: {}", tallies(&self.top_sources)));
        }
        if !self.threat_names.is_empty() {
            lines.push(format!("Threats: {}", tallies(&self.threat_names)));
        }
        if !self.reasons.is_empty() {
            lines.push(format!("Refused: {}", tallies(&self.reasons)));
        }
        if self.playbooks.len() > 1 {
            lines.push(format!("Playbooks: {}", self.playbooks.join(", ")));
        }
        if !self.event_ids.is_empty() {
            lines.push(format!("Event ids (sample): {}", self.event_ids.join(", ")));
        }
        lines.push(if self.last {
            format!("Window closed at {}", at(&self.window_end))
        } else {
            format!("Window open until {}", at(&self.window_end))
        });
        lines
    }
}

impl Notification {
    /// Adds approval requests, their links ahead of the other links.
    pub fn add_approvals(&mut self, approvals: Vec<ApprovalRequest>) {
        let mut links: Vec<Link> = approvals.iter().flat_map(|a| a.links()).collect();
        links.append(&mut self.links);
        self.links = links;
        self.approvals.extend(approvals);
    }

    /// Fills [`Notification::indicators`] from the event's addresses and
    /// the playbook fields holding an IP address, a URL or a domain, without
    /// duplicates. Field names become the indicator's role.
    pub fn collect_indicators(&mut self) {
        let mut out: Vec<Indicator> = Vec::new();
        let mut push = |kind, value: String, role: &str| {
            if !out.iter().any(|i| i.kind == kind && i.value == value) {
                out.push(Indicator {
                    kind,
                    value,
                    role: Some(role.to_string()),
                });
            }
        };
        if let Some(ip) = self.event.source_ip {
            push(IndicatorKind::Ip, ip.to_string(), "source");
        }
        if let Some(ip) = self.event.destination_ip {
            push(IndicatorKind::Ip, ip.to_string(), "destination");
        }
        for (key, value) in &self.fields {
            let Some(s) = value.as_str() else { continue };
            let s = s.trim();
            if s.parse::<IpAddr>().is_ok() {
                push(IndicatorKind::Ip, s.to_string(), key);
            } else if s.starts_with("http://") || s.starts_with("https://") {
                push(IndicatorKind::Url, s.to_string(), key);
            } else if matches!(key.as_str(), "domain" | "hostname" | "fqdn") && looks_like_domain(s)
            {
                push(IndicatorKind::Domain, s.to_ascii_lowercase(), key);
            } else if matches!(key.as_str(), "sha256" | "md5" | "sha1" | "hash")
                && !s.is_empty()
                && s.chars().all(|c| c.is_ascii_hexdigit())
            {
                push(IndicatorKind::Hash, s.to_ascii_lowercase(), key);
            }
        }
        for i in self.indicators.drain(..) {
            if !out.iter().any(|o| o.kind == i.kind && o.value == i.value) {
                out.push(i);
            }
        }
        self.indicators = out;
    }

    /// A plain-text (Markdown-friendly) description for the analyst.
    pub fn describe(&self) -> String {
        let mut lines = Vec::new();
        if let Some(name) = &self.event.threat_name {
            let ty = self.event.threat_type.as_deref().unwrap_or("threat");
            lines.push(format!("Threat: {name} ({ty})"));
        }
        match (self.event.source_ip, self.event.destination_ip) {
            (Some(s), Some(d)) => lines.push(format!("Traffic: {s} -> {d}")),
            (Some(s), None) => lines.push(format!("Source: {s}")),
            (None, Some(d)) => lines.push(format!("Destination: {d}")),
            (None, None) => {}
        }
        if let Some(pod) = &self.pod {
            lines.push(format!("Pod: {}/{}", pod.namespace, pod.name));
        }
        if let Some(pb) = &self.playbook {
            lines.push(format!("Playbook: {pb}"));
        }
        if let Some(c) = &self.coalesced {
            lines.extend(c.describe());
        }
        for a in &self.actions {
            let mut line = format!("Action: {} {}", a.action, a.status);
            if let Some(t) = &a.target {
                line.push_str(&format!(" on {t}"));
            }
            if let Some(r) = &a.reason {
                line.push_str(&format!(" ({r})"));
            }
            lines.push(line);
        }
        lines.push(format!("Event: {}", self.event.id));
        for a in &self.approvals {
            let mut line = format!(
                "Approval needed: {} {} (until {}, then {})",
                a.action,
                a.summary,
                a.expires_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                a.on_timeout
            );
            if let Some(r) = &a.reason {
                line.push_str(&format!(": {r}"));
            }
            lines.push(line);
            lines.push(format!("Approve: {}", a.approve_url));
            lines.push(format!("Deny: {}", a.deny_url));
        }
        lines.join("\n")
    }
}

fn looks_like_domain(s: &str) -> bool {
    s.contains('.')
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_parse_common_spellings() {
        assert_eq!(Severity::parse("Critical"), Some(Severity::Critical));
        assert_eq!(Severity::parse("info"), Some(Severity::Informational));
        assert_eq!(Severity::parse("urgent"), None);
    }

    #[test]
    fn indicators_come_from_addresses_and_fields_once() {
        let mut n = super::super::format::tests::sample();
        n.indicators.clear();
        n.collect_indicators();
        let values: Vec<(&str, IndicatorKind)> = n
            .indicators
            .iter()
            .map(|i| (i.value.as_str(), i.kind))
            .collect();
        assert_eq!(
            values,
            [
                ("10.244.1.17", IndicatorKind::Ip),
                ("203.0.113.9", IndicatorKind::Ip),
                ("evil.example", IndicatorKind::Domain),
            ]
        );
    }
}
