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

/// How an update request is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Post,
    Patch,
}

/// Whether updates of an incident on `target` go to the SOAR's own update
/// path, which needs the SOAR's id of the incident (the XSOAR incident id,
/// the Splunk SOAR container id, the TheHive alert id, the Slack message
/// `ts`). A webhook receiver, and Slack through an incoming webhook, get
/// updates at `url` like any notification.
pub fn updates_by_reference(target: &TargetConfig) -> bool {
    match target.format {
        Format::Xsoar | Format::SplunkSoar | Format::Thehive => true,
        Format::Slack => target.channel.is_some(),
        Format::Webhook => false,
    }
}

/// The update of incident `reference` (the SOAR's id, from the answer to
/// the notification that opened it) in the SOAR's own update path, under
/// `api` (the SOAR's base URL, no trailing slash): method, URL and body.
/// `None` for formats that update at `url` ([`updates_by_reference`]).
pub fn render_update(
    target: &TargetConfig,
    api: &str,
    n: &Notification,
    reference: &str,
) -> Option<(Method, String, Value)> {
    match target.format {
        Format::Xsoar => Some((
            Method::Post,
            format!("{api}/incident"),
            xsoar::xsoar_update(target, n, reference),
        )),
        Format::SplunkSoar => Some((
            Method::Post,
            format!("{api}/rest/artifact"),
            splunk_soar::splunk_artifact(target, n, reference),
        )),
        Format::Thehive => Some((
            Method::Patch,
            format!("{api}/api/v1/alert/{}", path_segment(reference)),
            thehive::thehive_update(target, n),
        )),
        Format::Slack if target.channel.is_some() => {
            let mut body = slack(n);
            body["channel"] = Value::from(target.channel.clone());
            body["thread_ts"] = Value::from(reference);
            Some((Method::Post, target.url.clone(), body))
        }
        Format::Slack | Format::Webhook => None,
    }
}

/// The SOAR's id of what a create request opened, from its answer: XSOAR's
/// incident `id`, Splunk SOAR's container `id` (or `existing_container_id`
/// on a duplicate), TheHive's alert `_id`, Slack's message `ts`.
pub fn reference(format: Format, body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let v = match &v {
        // XSOAR's webhook may answer one incident per object sent.
        Value::Array(a) => a.first()?.clone(),
        _ => v,
    };
    let field = |k: &str| match v.get(k)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match format {
        Format::Xsoar => field("id"),
        Format::SplunkSoar => field("id").or_else(|| field("existing_container_id")),
        Format::Thehive => field("_id").or_else(|| field("id")),
        Format::Slack => (v.get("ok") == Some(&Value::Bool(true)))
            .then(|| field("ts"))
            .flatten(),
        Format::Webhook => None,
    }
}

/// A reference as one URL path segment: anything but unreserved characters
/// (TheHive ids start with `~`) is percent-encoded.
fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The body for `target`'s format.
pub fn render(target: &TargetConfig, n: &Notification) -> Value {
    match target.format {
        Format::Webhook => webhook(n),
        Format::Xsoar => xsoar(target, n),
        Format::SplunkSoar => splunk_soar(target, n),
        Format::Thehive => thehive(target, n),
        Format::Slack => {
            let mut body = slack(n);
            if let Some(channel) = &target.channel {
                body["channel"] = Value::from(channel.as_str());
            }
            body
        }
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
            coalesced: None,
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

    fn coalesced(update: u32) -> Notification {
        let mut n = sample();
        n.id = if update == 0 {
            "n-1".into()
        } else {
            format!("n-1.u{update}")
        };
        n.coalesced = Some(crate::soar::Coalesced {
            incident: "n-1".into(),
            update,
            count: 1234,
            new: 1000,
            first_seen: n.occurred,
            last_seen: n.occurred + chrono::Duration::seconds(90),
            window_end: n.occurred + chrono::Duration::seconds(600),
            top_sources: vec![
                crate::soar::Tally {
                    value: "10.244.1.17".into(),
                    count: 1200,
                },
                crate::soar::Tally {
                    value: "10.244.2.9".into(),
                    count: 34,
                },
            ],
            threat_names: vec![crate::soar::Tally {
                value: "Cobalt Strike Beacon".into(),
                count: 1234,
            }],
            playbooks: vec!["c2-quarantine".into(), "notify-all-critical".into()],
            event_ids: vec!["ev-7".into(), "ev-8".into()],
            reasons: Vec::new(),
            last: false,
        });
        n
    }

    /// Each SOAR shows the count: in the incident that opens a window and
    /// in each update, which goes to the SOAR's own update path.
    #[test]
    fn every_format_shows_counts_and_updates_through_its_own_path() {
        let opening = coalesced(0);
        let update = coalesced(3);
        let api = "https://soar.example";
        for format in [
            Format::Webhook,
            Format::Xsoar,
            Format::SplunkSoar,
            Format::Thehive,
            Format::Slack,
        ] {
            let body = render(&target(format), &opening).to_string();
            assert!(body.contains("notify-all-critical"), "{format:?}: {body}");
            if format == Format::Webhook {
                // The receiver's program reads the numbers.
                assert!(body.contains(r#""count":1234"#), "{body}");
                continue;
            }
            assert!(body.contains("Events: 1234"), "{format:?}: {body}");
            assert!(body.contains("10.244.1.17 (1200)"), "{format:?}: {body}");
        }
        // XSOAR: the create-or-update endpoint with the incident's id.
        let (m, url, body) =
            render_update(&target(Format::Xsoar), api, &update, "417").expect("update");
        assert_eq!(
            (m, url.as_str()),
            (Method::Post, "https://soar.example/incident")
        );
        assert_eq!(
            (body["id"].clone(), body["version"].clone()),
            (json!("417"), json!(-1))
        );
        assert!(body["labels"]
            .as_array()
            .expect("labels")
            .contains(&json!({"type": "riposte.count", "value": "1234"})));
        assert!(body["details"]
            .as_str()
            .expect("details")
            .contains("1000 new in update 3"));
        // Splunk SOAR: an artifact added to the container.
        let (m, url, body) =
            render_update(&target(Format::SplunkSoar), api, &update, "88").expect("update");
        assert_eq!(
            (m, url.as_str()),
            (Method::Post, "https://soar.example/rest/artifact")
        );
        assert_eq!(body["container_id"], json!(88));
        assert_eq!(body["source_data_identifier"], "n-1.u3");
        assert_eq!(body["cef"]["eventCount"], json!(1234));
        assert_eq!(body["cef"]["newEvents"], json!(1000));
        assert_eq!(
            body["cef"]["topSources"],
            "10.244.1.17 (1200), 10.244.2.9 (34)"
        );
        assert_eq!(body["run_automation"], json!(false));
        // TheHive: the alert patched, its tags carrying the count.
        let (m, url, body) =
            render_update(&target(Format::Thehive), api, &update, "~4160").expect("update");
        assert_eq!(
            (m, url.as_str()),
            (Method::Patch, "https://soar.example/api/v1/alert/~4160")
        );
        assert!(body["tags"]
            .as_array()
            .expect("tags")
            .contains(&json!("riposte:count=1234")));
        assert!(body.get("sourceRef").is_none(), "a patch, not a new alert");
        // Slack with a channel: a threaded reply; without, a message of its own.
        let mut slack = target(Format::Slack);
        slack.url = "https://slack.example/api/chat.postMessage".into();
        slack.channel = Some("C0SOC".into());
        let (_, url, body) = render_update(&slack, api, &update, "1712.0001").expect("thread");
        assert_eq!(url, slack.url);
        assert_eq!(
            (body["thread_ts"].clone(), body["channel"].clone()),
            (json!("1712.0001"), json!("C0SOC"))
        );
        assert!(body["text"].as_str().expect("text").contains("1234 events"));
        assert!(render_update(&target(Format::Slack), api, &update, "x").is_none());
        // A webhook receiver: an update event with the same incident key.
        assert!(render_update(&target(Format::Webhook), api, &update, "x").is_none());
        let hook = render(&target(Format::Webhook), &update);
        assert_eq!(hook["type"], "riposte.incident.updated");
        assert_eq!(hook["data"]["coalesced"]["incident"], "n-1");
        assert_eq!(
            render(&target(Format::Webhook), &opening)["type"],
            "riposte.notify"
        );
    }

    #[test]
    fn references_come_from_each_soars_answer() {
        assert_eq!(
            reference(Format::Xsoar, br#"{"id":"417","version":1}"#).as_deref(),
            Some("417")
        );
        assert_eq!(
            reference(Format::Xsoar, br#"[{"id":"9"}]"#).as_deref(),
            Some("9")
        );
        assert_eq!(
            reference(Format::SplunkSoar, br#"{"id":88,"success":true}"#).as_deref(),
            Some("88")
        );
        assert_eq!(
            reference(
                Format::SplunkSoar,
                br#"{"failed":true,"existing_container_id":7}"#
            )
            .as_deref(),
            Some("7")
        );
        assert_eq!(
            reference(Format::Thehive, br#"{"_id":"~4160","title":"x"}"#).as_deref(),
            Some("~4160")
        );
        assert_eq!(
            reference(Format::Slack, br#"{"ok":true,"ts":"1712.0001"}"#).as_deref(),
            Some("1712.0001")
        );
        assert_eq!(reference(Format::Slack, br#"{"ok":false,"ts":"1"}"#), None);
        assert_eq!(reference(Format::Slack, b"ok"), None);
        assert_eq!(reference(Format::Webhook, br#"{"id":"1"}"#), None);
        assert_eq!(path_segment("~41/60"), "~41%2F60");
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
