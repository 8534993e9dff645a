//! End to end: notifications from the real service to a SOAR receiver
//! stand-in, through the durable outbox.
//!
//! - The C2 log reaches the receiver as a correctly signed notification.
//! - While the receiver is down and Riposte restarts, decisions keep
//!   flowing; when it is back every notification arrives, each webhook-id
//!   exactly once.
//! - 429 with Retry-After is honoured; 410 disables the target until it is
//!   enabled over the API; a refused notification is dead-lettered and
//!   replayed over the API.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use riposte_connectors::soar::{Format, SecretSource, TargetConfig};
use riposte_engine::auth::{hash_token, Scope, TokenConfig};
use riposte_engine::store::{OutboxFilter, OutboxStatus};
use riposte_tests::service::{self, shipped_playbooks, Service};
use riposte_tests::soar_receiver::{Behaviour, SoarReceiver};
use riposte_tests::syslog::{self, Framing};
use riposte_tests::{eventually, lines};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ADMIN: &str = "outbox-admin-token";
const WAIT: Duration = Duration::from_secs(20);

fn soar_target(rx: &SoarReceiver, format: Format) -> TargetConfig {
    let mut t = TargetConfig::new("soar", rx.url("/instance/execute/riposte"), format);
    t.allow_private = true;
    t.signing_secrets = vec![SecretSource::Inline(SECRET.into())];
    t.timeout_secs = 1;
    t.retry_initial_ms = 20;
    t.retry_max_secs = 1;
    t
}

async fn start(
    rx: &SoarReceiver,
    adjust: impl FnOnce(&mut TargetConfig),
) -> anyhow::Result<Service> {
    let mut target = soar_target(rx, Format::Xsoar);
    adjust(&mut target);
    // The shipped C2 playbook alone: one notification per C2 address.
    let c2 = std::fs::read_to_string(shipped_playbooks().join("c2-quarantine.rhai"))?;
    service::start_with(move |c, _| {
        if let Err(e) = service::add_playbook(c, "c2-quarantine.rhai", &c2) {
            panic!("writing the playbook: {e}");
        }
        c.notify.targets = vec![target];
        c.notify.poll_interval_ms = 50;
        c.api.tokens = vec![TokenConfig {
            name: "soc-admin".into(),
            sha256: hash_token(ADMIN),
            scopes: vec![Scope::Read, Scope::Admin],
        }];
    })
    .await
}

/// C2 logs from one pod to `count` distinct C2 servers (each its own
/// notification: the playbook notifies once per C2 address).
async fn send_c2(svc: &Service, first: u64, count: u64) -> anyhow::Result<()> {
    let lines: Vec<String> = (first..first + count)
        .map(|i| {
            lines::with_bsd_header(&lines::c2(
                "10.244.1.17",
                &format!("203.0.113.{}", 1 + i % 250),
                1000 + i,
            ))
        })
        .collect();
    syslog::send_tcp(svc.running.tcp[0], &lines, Framing::OctetCounting).await
}

async fn outbox(
    svc: &Service,
    status: Option<OutboxStatus>,
) -> Vec<riposte_engine::store::OutboxItem> {
    svc.running
        .store
        .outbox_list(&OutboxFilter {
            status,
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap()
        .items
}

async fn wait_outbox(svc: &Service, status: OutboxStatus, at_least: usize) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let n = outbox(svc, Some(status)).await.len();
        if n >= at_least {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("{n} {status:?} outbox items, wanted {at_least}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_c2_log_reaches_the_soar_signed() -> anyhow::Result<()> {
    let rx = SoarReceiver::builder().secret(SECRET).start().await?;
    let svc = start(&rx, |_| {}).await?;
    send_c2(&svc, 0, 1).await?;
    let delivered = eventually(WAIT, || {
        let d = rx.deliveries();
        d.iter()
            .find(|d| d.body["rawJson"]["playbook"] == "c2-quarantine")
            .cloned()
    })
    .await?;
    // The receiver verified the signature before recording it.
    assert_eq!(rx.bad_signatures(), 0);
    assert_eq!(delivered.path, "/instance/execute/riposte");
    let body = &delivered.body;
    assert_eq!(body["name"], "C2 traffic to 203.0.113.1");
    assert_eq!(body["severity"], 4);
    assert_eq!(body["type"], "Riposte Alert");
    assert_eq!(body["rawJson"]["id"], delivered.id.as_str());
    assert_eq!(body["rawJson"]["fields"]["c2"], "203.0.113.1");
    assert_eq!(body["rawJson"]["event"]["destination_ip"], "203.0.113.1");
    // The decision records the notify action as applied (durable).
    let decision = eventually(WAIT, || {
        svc.running
            .decisions
            .recent(10, &Default::default())
            .into_iter()
            .find(|d| {
                d.playbook == "c2-quarantine" && d.actions.iter().any(|a| a.action == "notify")
            })
    })
    .await?;
    let notify = decision
        .actions
        .iter()
        .find(|a| a.action == "notify")
        .unwrap();
    assert_eq!(notify.status.as_str(), "applied");
    wait_outbox(&svc, OutboxStatus::Delivered, 1).await?;
    assert!(svc.metric("riposte_notify_delivered_total", &[("target", "soar")]) >= 1.0);
    svc.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_while_the_receiver_is_down_across_a_restart() -> anyhow::Result<()> {
    let rx = SoarReceiver::builder().secret(SECRET).start().await?;
    rx.down();
    let svc = start(&rx, |_| {}).await?;
    send_c2(&svc, 0, 5).await?;
    wait_outbox(&svc, OutboxStatus::Pending, 5).await?;
    let before = svc.running.decisions.len();
    assert!(before >= 5);
    let svc = svc.restart().await?;
    // Decisions keep flowing after the restart, receiver still down.
    send_c2(&svc, 5, 5).await?;
    eventually(WAIT, || (svc.running.decisions.len() >= 5).then_some(())).await?;
    wait_outbox(&svc, OutboxStatus::Pending, 10).await?;
    assert!(rx.deliveries().is_empty());
    rx.up()?;
    wait_outbox(&svc, OutboxStatus::Delivered, 10).await?;
    let all = outbox(&svc, None).await;
    assert_eq!(all.len(), 10, "one notification per C2 address");
    assert!(all.iter().all(|i| i.status == OutboxStatus::Delivered));
    let stored: HashSet<String> = all.iter().map(|i| i.id.clone()).collect();
    let counts: HashMap<String, usize> = rx.accepted_counts();
    assert_eq!(counts.keys().cloned().collect::<HashSet<_>>(), stored);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    assert_eq!(rx.bad_signatures(), 0);
    svc.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() -> anyhow::Result<()> {
    let rx = SoarReceiver::builder().secret(SECRET).start().await?;
    rx.script([Behaviour::RetryAfter(429, "2".into())]);
    let svc = start(&rx, |t| t.retry_max_secs = 5).await?;
    send_c2(&svc, 0, 1).await?;
    let delivered = eventually(WAIT, || rx.deliveries().into_iter().next()).await?;
    let first = rx.request_times()[0];
    let waited = delivered.received_at.duration_since(first);
    assert!(
        waited >= Duration::from_millis(1900),
        "retried after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "retried after {waited:?}");
    assert!(svc.metric("riposte_notify_retries_total", &[("target", "soar")]) >= 1.0);
    svc.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_the_target_until_enabled() -> anyhow::Result<()> {
    let rx = SoarReceiver::builder().secret(SECRET).start().await?;
    rx.set_gone(true);
    let svc = start(&rx, |t| t.concurrency = 1).await?;
    send_c2(&svc, 0, 1).await?;
    eventually(WAIT, || {
        (svc.metric("riposte_notify_target_disabled", &[("target", "soar")]) == 1.0).then_some(())
    })
    .await?;
    rx.set_gone(false);
    send_c2(&svc, 1, 1).await?;
    wait_outbox(&svc, OutboxStatus::Pending, 2).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        rx.deliveries().is_empty(),
        "a disabled target is not sent to"
    );
    let requests = rx.requests();
    assert_eq!(requests, 1, "one attempt, then the target is off");

    let client = reqwest::Client::new();
    let url = svc.http_url("/v1/outbox/targets/soar/enable");
    assert_eq!(client.post(&url).send().await?.status(), 401);
    let r = client.post(&url).bearer_auth(ADMIN).send().await?;
    assert_eq!(r.status(), 200);
    let unknown = client
        .post(svc.http_url("/v1/outbox/targets/nope/enable"))
        .bearer_auth(ADMIN)
        .send()
        .await?;
    assert_eq!(unknown.status(), 404);
    wait_outbox(&svc, OutboxStatus::Delivered, 2).await?;
    assert_eq!(
        svc.metric("riposte_notify_target_disabled", &[("target", "soar")]),
        0.0
    );
    svc.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_notification_is_dead_lettered_and_replayed() -> anyhow::Result<()> {
    let rx = SoarReceiver::builder().secret(SECRET).start().await?;
    rx.script([Behaviour::Status(400)]);
    let svc = start(&rx, |_| {}).await?;
    send_c2(&svc, 0, 1).await?;
    wait_outbox(&svc, OutboxStatus::Dead, 1).await?;
    assert!(svc.metric("riposte_notify_dead_total", &[("target", "soar")]) >= 1.0);

    let client = reqwest::Client::new();
    let list: serde_json::Value = client
        .get(svc.http_url("/v1/outbox?status=dead&target=soar"))
        .bearer_auth(ADMIN)
        .send()
        .await?
        .json()
        .await?;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    assert!(!items.is_empty(), "{list}");
    let dead = items
        .iter()
        .find(|i| i["dead_reason"].as_str().is_some_and(|r| r.contains("400")))
        .ok_or_else(|| anyhow::anyhow!("no item refused with 400 in {list}"))?;
    let id = dead["id"].as_str().unwrap().to_string();
    let bad = client
        .get(svc.http_url("/v1/outbox?status=bogus"))
        .bearer_auth(ADMIN)
        .send()
        .await?;
    assert_eq!(bad.status(), 400);

    let replay = svc.http_url(&format!("/v1/outbox/{id}/replay"));
    assert_eq!(client.post(&replay).send().await?.status(), 401);
    let r = client.post(&replay).bearer_auth(ADMIN).send().await?;
    assert_eq!(r.status(), 200);
    let counts = eventually(WAIT, || {
        let c = rx.accepted_counts();
        c.contains_key(&id).then_some(c)
    })
    .await?;
    assert_eq!(counts[&id], 1);
    let missing = client
        .post(svc.http_url("/v1/outbox/nope/replay"))
        .bearer_auth(ADMIN)
        .send()
        .await?;
    assert_eq!(missing.status(), 404);
    svc.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_old_to_deliver_goes_to_the_dead_letter_list() -> anyhow::Result<()> {
    let rx = SoarReceiver::builder().secret(SECRET).start().await?;
    rx.down();
    let svc = start(&rx, |t| t.max_age_secs = 1).await?;
    send_c2(&svc, 0, 1).await?;
    wait_outbox(&svc, OutboxStatus::Dead, 1).await?;
    let dead = outbox(&svc, Some(OutboxStatus::Dead)).await;
    assert!(
        dead[0]
            .dead_reason
            .as_deref()
            .unwrap_or("")
            .contains("max_age_secs"),
        "{:?}",
        dead[0].dead_reason
    );
    svc.stop().await;
    Ok(())
}

/// A playbook that puts a firewall tag up for approval and tells every
/// format about it.
const APPROVAL_PLAYBOOK: &str = r#"// name: c2-approval
// trigger: threat.type = spyware, threat.category = command-and-control, severity >= high
// mode: enforce
approve(tag_ip("203.0.113.66", "riposte-c2"), #{ timeout: "1h", on_timeout: "drop", reason: "beacon seen" });
notify("generic", #{ title: "C2 beacon: approve the block?" });
notify("xsoar", #{ title: "C2 beacon: approve the block?" });
notify("splunk", #{ title: "C2 beacon: approve the block?" });
notify("thehive", #{ title: "C2 beacon: approve the block?" });
notify("slack", #{ title: "C2 beacon: approve the block?" });
"#;

/// When a playbook asks for approval, every notification of the decision,
/// in every format, carries the signed approve and deny links, and targets
/// subscribed to `approval` get a request of their own; a link taken from a
/// delivered notification decides the approval, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_links_reach_every_format() -> anyhow::Result<()> {
    use riposte_connectors::soar::NotifyOn;
    let rx = SoarReceiver::builder().secret(SECRET).start().await?;
    let formats = [
        ("generic", Format::Webhook),
        ("xsoar", Format::Xsoar),
        ("splunk", Format::SplunkSoar),
        ("thehive", Format::Thehive),
        ("slack", Format::Slack),
    ];
    let targets: Vec<TargetConfig> = formats
        .iter()
        .map(|(name, format)| {
            let mut t = soar_target(&rx, *format);
            t.name = (*name).into();
            t.url = rx.url(&format!("/{name}"));
            t.on = vec![NotifyOn::Notify, NotifyOn::Approval];
            t
        })
        .collect();
    let svc = service::start_with(move |c, _| {
        if let Err(e) = service::add_playbook(c, "c2-approval.rhai", APPROVAL_PLAYBOOK) {
            panic!("writing the playbook: {e}");
        }
        c.notify.targets = targets;
        c.notify.poll_interval_ms = 50;
        c.api.public_url = "https://riposte.example".into();
    })
    .await?;
    send_c2(&svc, 0, 1).await?;
    // Each target gets the notify and the approval request.
    let deliveries = eventually(WAIT, || {
        let d = rx.deliveries();
        (d.len() >= 10).then_some(d)
    })
    .await?;
    assert_eq!(deliveries.len(), 10, "{deliveries:#?}");
    assert_eq!(rx.bad_signatures(), 0);
    let generic: Vec<_> = deliveries.iter().filter(|d| d.path == "/generic").collect();
    let request = generic
        .iter()
        .find(|d| d.body["type"] == "riposte.approval.requested")
        .expect("the approval request");
    let approval = &request.body["data"]["approvals"][0];
    let approve = approval["approve_url"].as_str().unwrap().to_owned();
    let deny = approval["deny_url"].as_str().unwrap().to_owned();
    assert!(approve.starts_with("https://riposte.example/v1/approvals/"));
    assert_eq!(approval["action"], "tag_ip");
    assert_eq!(approval["on_timeout"], "drop");
    assert_eq!(approval["reason"], "beacon seen");
    for (name, _) in formats {
        let mine: Vec<_> = deliveries
            .iter()
            .filter(|d| d.path == format!("/{name}"))
            .collect();
        assert_eq!(mine.len(), 2, "{name}");
        for d in mine {
            let text = d.body.to_string();
            assert!(text.contains(&approve), "{name}: {text}");
            assert!(text.contains(&deny), "{name}: {text}");
        }
    }
    // A person clicks Approve in Slack.
    let slack = deliveries
        .iter()
        .find(|d| d.path == "/slack" && d.body["text"].as_str().unwrap_or("").contains("C2 beacon"))
        .expect("the slack notify");
    let button = slack.body["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .map(|b| b["elements"][0].clone())
        .expect("buttons");
    assert_eq!(button["style"], "primary");
    let local = |url: &str| url.replace("https://riposte.example", &svc.http_url(""));
    let client = reqwest::Client::new();
    let r = client
        .post(local(button["url"].as_str().unwrap()))
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await?["state"], "approved");
    // The deny link is now spent with its approval.
    let r = client.post(local(&deny)).send().await?;
    assert_eq!(r.status(), 409);
    svc.stop().await;
    Ok(())
}

// ---- Coalescing (issue 13 item 4) ----

/// Every C2 event to every SOAR format, unthrottled: the coalescing windows
/// are all that stand between a storm and the SOARs.
const EVERY_SOAR: &str = r#"// name: c2-every-soar
// description: tell every SOAR of every C2 event (tests: coalescing)
// trigger: threat.type = spyware, severity >= high
// mode: enforce
let c2 = event.destination.ip;
let fields = #{ title: `C2 traffic to ${c2}`, severity: "critical", c2: c2 };
notify("xsoar", fields);
notify("splunk", fields);
notify("thehive", fields);
notify("slack", fields);
notify("hook", fields);
"#;

/// A target of `format` at `path` of `rx`, its updates under `api`,
/// flushing every 10 s in a 5-minute window.
fn coalescing(
    rx: &SoarReceiver,
    name: &str,
    format: Format,
    path: &str,
    api: Option<&str>,
) -> TargetConfig {
    let mut t = TargetConfig::new(name, rx.url(path), format);
    t.allow_private = true;
    t.timeout_secs = 2;
    t.retry_initial_ms = 20;
    t.retry_max_secs = 1;
    t.coalesce_window_secs = 300;
    t.coalesce_flush_secs = 10;
    t.api_url = api.map(|a| rx.url(a));
    if format == Format::Slack {
        t.channel = Some("C0SOC".into());
    }
    t
}

async fn start_every_soar(rx: &SoarReceiver, data: &std::path::Path) -> anyhow::Result<Service> {
    let data = data.to_path_buf();
    let targets = vec![
        coalescing(
            rx,
            "xsoar",
            Format::Xsoar,
            "/xsoar/instance/execute/riposte",
            Some("/xsoar"),
        ),
        coalescing(
            rx,
            "splunk",
            Format::SplunkSoar,
            "/splunk/rest/container",
            Some("/splunk"),
        ),
        coalescing(
            rx,
            "thehive",
            Format::Thehive,
            "/thehive/api/v1/alert",
            Some("/thehive"),
        ),
        coalescing(
            rx,
            "slack",
            Format::Slack,
            "/slack/api/chat.postMessage",
            None,
        ),
        coalescing(rx, "hook", Format::Webhook, "/hook", None),
    ];
    service::start_with(move |c, _| {
        if let Err(e) = service::add_playbook(c, "c2-every-soar.rhai", EVERY_SOAR) {
            panic!("writing the playbook: {e}");
        }
        c.data_dir = data;
        c.notify.targets = targets;
        c.notify.poll_interval_ms = 50;
    })
    .await
}

/// C2 logs `from..from + n` from three pods to three C2 servers.
async fn c2_storm(svc: &Service, from: u64, n: u64) -> anyhow::Result<()> {
    let lines: Vec<String> = (from..from + n)
        .map(|i| {
            let src = format!("10.244.{}.17", 1 + i % 3);
            let c2 = format!("203.0.113.{}", 60 + (i / 3) % 3);
            lines::with_bsd_header(&lines::c2(&src, &c2, 50_000 + i))
        })
        .collect();
    for chunk in lines.chunks(500) {
        syslog::send_tcp(svc.running.tcp[0], chunk, Framing::OctetCounting).await?;
    }
    Ok(())
}

/// What one delivery told a SOAR, read the way each SOAR shows it.
#[derive(Debug, Clone, PartialEq)]
struct Told {
    target: &'static str,
    /// The incident key (the opening notification's id).
    incident: String,
    count: u64,
    /// An update (else the request that opened the incident).
    update: bool,
    /// For an update: the SOAR id it was sent to (the `answered` number of
    /// the opening request); for an opening: its own.
    soar_id: usize,
}

fn soar_id(v: &serde_json::Value) -> usize {
    let s = match v {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.clone(),
        _ => String::new(),
    };
    s.trim_start_matches('~')
        .split('.')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn told(d: &riposte_tests::soar_receiver::Delivery) -> Told {
    let b = &d.body;
    let coalesced = |c: &serde_json::Value| {
        (
            c["incident"].as_str().unwrap_or_default().to_string(),
            c["count"].as_u64().unwrap_or(0),
        )
    };
    let p = d.path.as_str();
    if p.starts_with("/xsoar") {
        let (incident, count) = coalesced(&b["rawJson"]["coalesced"]);
        let update = p == "/xsoar/incident";
        let id = if update {
            soar_id(&b["id"])
        } else {
            d.answered
        };
        Told {
            target: "xsoar",
            incident,
            count,
            update,
            soar_id: id,
        }
    } else if p.starts_with("/splunk") {
        let (incident, count) = coalesced(&b["data"]["coalesced"]);
        let update = p == "/splunk/rest/artifact";
        assert!(
            !update || b["cef"]["eventCount"].as_u64() == Some(count),
            "{b}"
        );
        let id = if update {
            soar_id(&b["container_id"])
        } else {
            d.answered
        };
        Told {
            target: "splunk",
            incident,
            count,
            update,
            soar_id: id,
        }
    } else if p.starts_with("/thehive") {
        // TheHive shows the count in the alert's tags.
        let tags: Vec<&str> = b["tags"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t.as_str())
            .collect();
        let tag = |k: &str| {
            tags.iter()
                .find_map(|t| t.strip_prefix(k))
                .unwrap_or_default()
                .to_string()
        };
        let update = d.method == "PATCH";
        let id = if update {
            soar_id(&serde_json::json!(p
                .trim_start_matches("/thehive/api/v1/alert/")
                .replace("%7E", "~")))
        } else {
            d.answered
        };
        Told {
            target: "thehive",
            incident: tag("riposte:incident="),
            count: tag("riposte:count=").parse().unwrap_or(0),
            update,
            soar_id: id,
        }
    } else if p.starts_with("/slack") {
        // Slack shows it in the message text; updates are thread replies.
        let text = b["blocks"][1]["text"]["text"].as_str().unwrap_or_default();
        let count = text
            .split("Events: ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let update = b.get("thread_ts").is_some();
        assert_eq!(b["channel"], "C0SOC");
        let id = if update {
            soar_id(&b["thread_ts"])
        } else {
            d.answered
        };
        Told {
            target: "slack",
            incident: String::new(),
            count,
            update,
            soar_id: id,
        }
    } else {
        let (incident, count) = coalesced(&b["data"]["coalesced"]);
        let update = b["type"] == "riposte.incident.updated";
        Told {
            target: "hook",
            incident,
            count,
            update,
            soar_id: 0,
        }
    }
}

/// Per target: incidents opened, updates, and the events the SOAR shows
/// (per incident the highest count it was told, added up).
fn shown(rx: &SoarReceiver) -> BTreeMap<&'static str, (usize, usize, u64)> {
    let all: Vec<Told> = rx.deliveries().iter().map(told).collect();
    let mut out = BTreeMap::new();
    for target in ["xsoar", "splunk", "thehive", "slack", "hook"] {
        let mine: Vec<&Told> = all.iter().filter(|t| t.target == target).collect();
        let opened: Vec<&&Told> = mine.iter().filter(|t| !t.update).collect();
        let mut best: HashMap<String, u64> = HashMap::new();
        for t in &mine {
            // An update reaches the incident its opening request created.
            let key = if target == "slack" {
                t.soar_id.to_string()
            } else {
                if t.update && target != "hook" {
                    let opening = opened.iter().find(|o| o.soar_id == t.soar_id);
                    assert_eq!(
                        opening.map(|o| o.incident.as_str()),
                        Some(t.incident.as_str()),
                        "{target}: {t:?}"
                    );
                }
                t.incident.clone()
            };
            let e = best.entry(key).or_insert(0);
            *e = (*e).max(t.count);
        }
        out.insert(
            target,
            (opened.len(), mine.len() - opened.len(), best.values().sum()),
        );
    }
    out
}

/// Thousands of matched events for three subjects (three C2 servers), with
/// a restart in the middle: each SOAR gets one incident per subject, then
/// updates at most every flush interval through its own update path, and
/// the counts it shows add up to every event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_is_one_incident_per_subject_in_every_soar_with_counts_that_add_up(
) -> anyhow::Result<()> {
    const HALF: u64 = 1_500;
    let rx = SoarReceiver::start().await?;
    let data = tempfile::tempdir()?;
    let started = std::time::Instant::now();
    let svc = start_every_soar(&rx, data.path()).await?;
    c2_storm(&svc, 0, HALF).await?;
    let decided = |svc: &Service| {
        let svc = svc.running.store.clone();
        async move { svc.audit_totals().await.map(|t| t.1).unwrap_or(0) }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while decided(&svc).await < HALF as i64 {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "first half not decided"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A restart inside the windows: the incidents go on.
    svc.stop().await;
    let svc = start_every_soar(&rx, data.path()).await?;
    c2_storm(&svc, HALF, HALF).await?;
    let total = 2 * HALF;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let seen = loop {
        let s = shown(&rx);
        if s.values().all(|(_, _, n)| *n == total) {
            break s;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the SOARs show {s:?}, wanted {total} events each"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let elapsed = started.elapsed().as_secs();
    let deliveries = rx.accepted_total();
    eprintln!(
        "coalescing: {deliveries} SOAR deliveries for {total} matched events x 5 targets \
         ({:.3}% per target) in {elapsed} s; per target (incidents, updates, events shown): {seen:?}",
        deliveries as f64 * 100.0 / (5 * total) as f64
    );
    for (target, (incidents, updates, events)) in &seen {
        assert_eq!(
            *incidents, 3,
            "{target}: one incident per subject, across the restart"
        );
        assert_eq!(*events, total, "{target}: every event counted");
        // At most one update per subject per 10 s flush (and one more at
        // the restart), however many events.
        let bound = 3 * (elapsed as usize / 10 + 3);
        assert!(
            *updates <= bound,
            "{target}: {updates} updates in {elapsed} s"
        );
        // The issue's target: at most 2% of matched events become deliveries.
        assert!(
            (incidents + updates) * 50 <= total as usize,
            "{target}: {} deliveries for {total} events",
            incidents + updates
        );
    }
    assert!(svc.metric("riposte_notify_coalesced_total", &[("target", "xsoar")]) > 1000.0);
    assert_eq!(
        svc.metric("riposte_notify_windows_open", &[("target", "xsoar")]),
        3.0
    );
    svc.stop().await;
    Ok(())
}

/// Two playbooks that notify the same target for the same event send one
/// notification naming both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_playbooks_on_one_event_send_one_notification_naming_both() -> anyhow::Result<()> {
    let rx = SoarReceiver::start().await?;
    let mut target = TargetConfig::new("soar", rx.url("/hook"), Format::Webhook);
    target.allow_private = true;
    let svc = service::start_with(move |c, _| {
        for (file, text) in [
            (
                "c2-notify.rhai",
                "// name: c2-notify\n// description: tests\n// trigger: threat.type = spyware, severity >= high\n// mode: enforce\n// order: 1\nnotify(\"soar\", #{ title: `C2 traffic to ${event.destination.ip}`, severity: \"critical\" });\n",
            ),
            (
                "critical-notify.rhai",
                "// name: critical-notify\n// description: tests\n// trigger: severity >= critical\n// mode: enforce\n// order: 2\nnotify(\"soar\", #{ title: `Critical: ${event.threat.name}` });\n",
            ),
        ] {
            if let Err(e) = service::add_playbook(c, file, text) {
                panic!("writing the playbook: {e}");
            }
        }
        c.notify.targets = vec![target];
        c.notify.poll_interval_ms = 50;
    })
    .await?;
    send_c2(&svc, 0, 1).await?;
    let first = eventually(WAIT, || rx.deliveries().first().cloned()).await?;
    // Long enough for a second notification, had there been one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(rx.accepted_total(), 1, "{:#?}", rx.deliveries());
    let playbooks = &first.body["data"]["coalesced"]["playbooks"];
    assert_eq!(
        playbooks,
        &serde_json::json!(["c2-notify", "critical-notify"]),
        "{}",
        first.body
    );
    assert_eq!(first.body["data"]["coalesced"]["count"], 1, "one event");
    // Both notify actions are applied: the second counted into the first.
    let decisions = svc.running.decisions.recent(10, &Default::default());
    let reasons: Vec<String> = decisions
        .iter()
        .flat_map(|d| d.actions.iter())
        .filter(|a| a.action == "notify")
        .filter_map(|a| a.reason.clone())
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("coalesced")),
        "{reasons:?}"
    );
    svc.stop().await;
    Ok(())
}

/// Guardrail refusals reach the SOAR as one summary per window, counting
/// every refusal, never one notification each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guardrail_refusals_are_summarized_per_window() -> anyhow::Result<()> {
    use riposte_connectors::soar::NotifyOn;
    use riposte_tests::kube_api::KubeApiServer;
    const PODS: u64 = 20;
    // The stand-in has kube-system, a protected namespace.
    let kube = KubeApiServer::start().await?;
    let w = kube.add_deployment("kube-system", "dns", &[("app", "dns")])?;
    for i in 0..PODS {
        kube.add_pod(w.pod(&format!("10.96.0.{}", 10 + i)))?;
    }
    let rx = SoarReceiver::start().await?;
    let mut target = TargetConfig::new("soar", rx.url("/hook"), Format::Webhook);
    target.allow_private = true;
    target.on = vec![NotifyOn::Refused];
    target.coalesce_flush_secs = 1;
    let svc = service::start_with(|c, dir| {
        if let Err(e) = service::use_cluster(c, dir, &kube) {
            panic!("cluster: {e}");
        }
        let quarantine = "// name: quarantine-c2\n// description: tests\n// trigger: threat.type = spyware, severity >= high\n// mode: enforce\nif event.source.pod != () { quarantine(event.source.pod, #{ ttl: \"1h\", reason: \"C2\" }); }\n";
        if let Err(e) = service::add_playbook(c, "q.rhai", quarantine) {
            panic!("writing the playbook: {e}");
        }
        c.notify.targets = vec![target];
        c.notify.poll_interval_ms = 50;
    })
    .await?;
    riposte_tests::eventually(Duration::from_secs(60), || {
        svc.running.readiness.is_ready().then_some(())
    })
    .await?;
    let lines: Vec<String> = (0..PODS * 5)
        .map(|i| {
            lines::with_bsd_header(&lines::c2(
                &format!("10.96.0.{}", 10 + i % PODS),
                "203.0.113.7",
                70_000 + i,
            ))
        })
        .collect();
    syslog::send_tcp(svc.running.tcp[0], &lines, Framing::OctetCounting).await?;
    let refused = || {
        svc.metric(
            "riposte_actions_total",
            &[("action", "quarantine"), ("status", "refused")],
        )
    };
    eventually(WAIT, || (refused() >= PODS as f64).then_some(())).await?;
    // Every refusal is in what the SOAR shows, once a flush has passed.
    let shows = |rx: &SoarReceiver| {
        rx.deliveries()
            .iter()
            .filter_map(|d| d.body["data"]["coalesced"]["count"].as_u64())
            .max()
            .unwrap_or(0)
    };
    eventually(WAIT, || (shows(&rx) as f64 == refused()).then_some(())).await?;
    let deliveries = rx.deliveries();
    assert!(
        deliveries.len() <= 3,
        "a summary and few updates: {deliveries:#?}"
    );
    let summary = &deliveries[0].body;
    assert_eq!(summary["type"], "riposte.action.refused");
    assert_eq!(
        summary["data"]["title"],
        "Guardrail refusals: quarantine-c2"
    );
    let reasons = summary["data"]["coalesced"]["reasons"].to_string();
    assert!(reasons.contains("is protected"), "{reasons}");
    assert!(refused() >= PODS as f64, "{} refusals", refused());
    svc.stop().await;
    Ok(())
}
