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

use serde_json::Value;

mod slack;
mod splunk_soar;
mod thehive;
mod webhook;
mod xsoar;

use super::{Format, Notification, TargetConfig};
use slack::slack;
use splunk_soar::splunk_soar;
use thehive::thehive;
use webhook::webhook;
use xsoar::xsoar;

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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::soar::{
        ActionInfo, ApprovalRequest, EventInfo, Indicator, IndicatorKind, Link, NotificationKind,
        PodInfo, Severity,
    };
    use chrono::TimeZone;
    use serde_json::{json, Map};

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
                kind: "alert".into(),
                dataset: "panos.threat".into(),
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

    pub(super) const DESCRIPTION: &str = "Threat: Cobalt Strike Beacon (spyware)\nTraffic: 10.244.1.17 -> 203.0.113.9\nPod: shop/checkout-7d9f\nPlaybook: c2-quarantine\nAction: quarantine applied on shop/checkout-7d9f\nEvent: ev-1";

    pub(super) fn target(format: Format) -> TargetConfig {
        let mut t = TargetConfig::new("soar", "https://soar.example/", format);
        t.tags = vec!["riposte".into()];
        t
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
