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

use std::collections::{HashMap, HashSet};
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
