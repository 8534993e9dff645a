//! End to end, issue 12: approval links are capabilities (item 2), and a
//! killed process leaves no decision in flight for good (item 13).
//!
//! - No answer a `read` token gets (outbox, audit, decisions, approvals)
//!   holds a link that decides an approval: every URL in them is tried.
//! - The link the SOAR receives decides once, for one verdict, and only
//!   its own approval.
//! - The data directory is 0700; the database, its -wal and -shm files
//!   and the approval key are 0600.
//! - Decisions and actions a killed process left `pending`, `dispatching`
//!   or `queued` get their true outcome when the service starts.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use riposte_connectors::soar::{Format, NotifyOn, SecretSource, TargetConfig};
use riposte_engine::auth::{hash_token, Scope, TokenConfig};
use riposte_tests::service::{self, Service};
use riposte_tests::soar_receiver::SoarReceiver;
use riposte_tests::syslog::{self, Framing};
use riposte_tests::{eventually, lines};
use serde_json::Value;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const READ: &str = "read-only-token-for-the-dashboard";
const WAIT: Duration = Duration::from_secs(20);
const PUBLIC: &str = "https://riposte.example";

/// Puts a firewall tag up for approval and tells the SOAR about it.
const APPROVAL_PLAYBOOK: &str = r#"// name: c2-approval
// trigger: threat.type = spyware, threat.category = command-and-control, severity >= high
// mode: enforce
approve(tag_ip("203.0.113.66", "riposte-c2"), #{ timeout: "1h", on_timeout: "drop", reason: "beacon seen" });
notify("soar", #{ title: "C2 beacon: approve the block?" });
"#;

fn read_token() -> TokenConfig {
    TokenConfig {
        name: "dashboard".into(),
        sha256: hash_token(READ),
        scopes: vec![Scope::Read],
    }
}

async fn start_with_approvals(rx: &SoarReceiver) -> anyhow::Result<Service> {
    let mut t = TargetConfig::new("soar", rx.url("/soar"), Format::Webhook);
    t.allow_private = true;
    t.signing_secrets = vec![SecretSource::Inline(SECRET.into())];
    t.timeout_secs = 1;
    t.retry_initial_ms = 20;
    t.retry_max_secs = 1;
    t.on = vec![NotifyOn::Notify, NotifyOn::Approval];
    service::start_with(move |c, _| {
        if let Err(e) = service::add_playbook(c, "c2-approval.rhai", APPROVAL_PLAYBOOK) {
            panic!("writing the playbook: {e}");
        }
        c.notify.targets = vec![t];
        c.notify.poll_interval_ms = 50;
        c.api.public_url = PUBLIC.into();
        c.api.tokens = vec![read_token()];
    })
    .await
}

/// Every `http…` string and every `/v1/approvals/…` path in `text`.
fn urls_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for start in ["http://", "https://", "/v1/approvals/"] {
        let mut rest = text;
        while let Some(at) = rest.find(start) {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| c == '"' || c == '\\' || c.is_whitespace() || c == '>')
                .unwrap_or(tail.len());
            out.push(tail[..end].to_string());
            rest = &tail[start.len()..];
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `url` aimed at the running service instead of the public address.
fn local(svc: &Service, url: &str) -> String {
    if let Some(path) = url.strip_prefix(PUBLIC) {
        svc.http_url(path)
    } else if url.starts_with('/') {
        svc.http_url(url)
    } else {
        url.to_string()
    }
}

async fn get_text(svc: &Service, path: &str) -> anyhow::Result<String> {
    let r = reqwest::Client::new()
        .get(svc.http_url(path))
        .bearer_auth(READ)
        .send()
        .await?;
    anyhow::ensure!(r.status() == 200, "{path}: {}", r.status());
    Ok(r.text().await?)
}

async fn approvals(svc: &Service) -> anyhow::Result<Vec<Value>> {
    Ok(serde_json::from_str(
        &get_text(svc, "/v1/approvals?state=all").await?,
    )?)
}

/// C2 logs from one pod: each its own event, so its own approval.
async fn send_c2(svc: &Service, first: u64, count: u64) -> anyhow::Result<()> {
    let lines: Vec<String> = (first..first + count)
        .map(|i| {
            lines::with_bsd_header(&lines::c2(
                "10.244.1.17",
                &format!("203.0.113.{}", 1 + i),
                1000 + i,
            ))
        })
        .collect();
    syslog::send_tcp(svc.running.tcp[0], &lines, Framing::OctetCounting).await
}

/// The approve and deny links of the approval request the SOAR received
/// for approval `id`.
fn delivered_links(rx: &SoarReceiver, id: &str) -> Option<(String, String)> {
    rx.deliveries().iter().find_map(|d| {
        let a = d.body["data"]["approvals"]
            .as_array()?
            .iter()
            .find(|a| a["id"] == id)?
            .clone();
        Some((
            a["approve_url"].as_str()?.to_string(),
            a["deny_url"].as_str()?.to_string(),
        ))
    })
}

/// What a `read` token can see holds no link that decides anything:
/// every URL in the outbox, audit, decisions and approvals answers is
/// posted, and the approval stays pending. The token the SOAR got appears
/// in none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_token_sees_no_usable_approval_link() -> anyhow::Result<()> {
    let rx = SoarReceiver::builder().secret(SECRET).start().await?;
    let svc = start_with_approvals(&rx).await?;
    send_c2(&svc, 0, 1).await?;
    eventually(WAIT, || (rx.deliveries().len() >= 2).then_some(())).await?;
    let list = approvals(&svc).await?;
    assert_eq!(list.len(), 1, "{list:#?}");
    let id = list[0]["id"].as_str().unwrap().to_string();
    let (approve, _) = delivered_links(&rx, &id).expect("the SOAR got the links");
    let token = approve
        .rsplit_once("token=")
        .map(|(_, t)| t.to_string())
        .expect("the delivered link is signed");
    let mut answers = Vec::new();
    for path in [
        "/v1/outbox".to_string(),
        "/v1/outbox?status=delivered".to_string(),
        "/v1/audit".to_string(),
        "/v1/decisions".to_string(),
        "/v1/approvals".to_string(),
        "/v1/approvals?state=all".to_string(),
        format!("/v1/approvals/{id}"),
        "/v1/quarantines".to_string(),
    ] {
        answers.push((path.clone(), get_text(&svc, &path).await?));
    }
    let outbox = &answers[0].1;
    assert!(
        outbox.contains(&format!("/v1/approvals/{id}/approve")),
        "the outbox shows that a link exists: {outbox}"
    );
    let client = reqwest::Client::new();
    for (path, text) in &answers {
        assert!(
            !text.contains(&token),
            "{path} shows the link token: {text}"
        );
        for url in urls_in(text) {
            for method in [reqwest::Method::POST, reqwest::Method::GET] {
                let r = client
                    .request(method.clone(), local(&svc, &url))
                    .send()
                    .await?;
                assert_ne!(r.status(), 200, "{method} {url} from {path} answered 200");
            }
        }
    }
    let after = approvals(&svc).await?;
    assert_eq!(after[0]["state"], "pending", "{after:#?}");
    svc.stop().await;
    Ok(())
}

/// The link the SOAR received decides its approval once: used again, for
/// either verdict, it is refused; aimed at another approval it decides
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_link_works_once_and_for_its_own_approval_only() -> anyhow::Result<()> {
    let rx = SoarReceiver::builder().secret(SECRET).start().await?;
    let svc = start_with_approvals(&rx).await?;
    send_c2(&svc, 0, 2).await?;
    let mut ids = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while ids.len() < 2 && tokio::time::Instant::now() < deadline {
        ids = approvals(&svc)
            .await?
            .iter()
            .filter_map(|a| a["id"].as_str().map(str::to_string))
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ids.len(), 2, "two approvals: {ids:?}");
    let links = eventually(WAIT, || {
        Some((
            delivered_links(&rx, &ids[0])?,
            delivered_links(&rx, &ids[1])?,
        ))
    })
    .await?;
    let ((approve_a, deny_a), (approve_b, _)) = links;
    let client = reqwest::Client::new();
    let post = |url: String| {
        let client = client.clone();
        async move { client.post(url).send().await.map(|r| r.status().as_u16()) }
    };
    // A's link bent to B: B's id in A's signed link.
    let bent = approve_a.replace(&ids[0], &ids[1]);
    assert_eq!(post(local(&svc, &bent)).await?, 401);
    // B's approve link turned into a deny link.
    let flipped = approve_b.replace("/approve?", "/deny?");
    assert_eq!(post(local(&svc, &flipped)).await?, 401);
    // A's link works, once.
    assert_eq!(post(local(&svc, &approve_a)).await?, 200);
    let again = post(local(&svc, &approve_a)).await?;
    assert!(again == 409 || again == 410, "second use: {again}");
    let other = post(local(&svc, &deny_a)).await?;
    assert!(other == 409 || other == 410, "the other verdict: {other}");
    let states: Vec<(String, String)> = approvals(&svc)
        .await?
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap_or("").to_string(),
                a["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        states.contains(&(ids[0].clone(), "approved".into())),
        "{states:?}"
    );
    assert!(
        states.contains(&(ids[1].clone(), "pending".into())),
        "B is untouched: {states:?}"
    );
    svc.stop().await;
    Ok(())
}

/// The data directory is the owner's alone: 0700, and the database, its
/// WAL and shared-memory files and the approval key are 0600.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_and_database_are_owner_only() -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let svc = service::start_with(|c, _| c.api.tokens = vec![read_token()]).await?;
    // Something written, so the WAL is in use.
    let _ = get_text(&svc, "/v1/audit").await?;
    let mode = |p: &std::path::Path| -> anyhow::Result<u32> {
        Ok(std::fs::metadata(p)?.permissions().mode() & 0o777)
    };
    let data = &svc.config.data_dir;
    assert_eq!(mode(data)?, 0o700, "{}", data.display());
    for file in [
        "riposte.db",
        "riposte.db-wal",
        "riposte.db-shm",
        "approval-secret",
    ] {
        let path = data.join(file);
        assert!(path.exists(), "{} exists", path.display());
        assert_eq!(mode(&path)?, 0o600, "{}", path.display());
    }
    svc.stop().await;
    Ok(())
}

/// A data directory an older version left readable by others is narrowed
/// at start: the directory to 0700, the database files and the approval key
/// to 0600.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_readable_data_directory_is_narrowed_at_start() -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    let config = service::base_config(dir.path())?;
    let data = config.data_dir.clone();
    std::fs::create_dir_all(&data)?;
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755))?;
    {
        let store = riposte_engine::store::Store::open(&config.store, &config.data_dir).await?;
        store.close().await;
    }
    std::fs::write(data.join("approval-secret"), "00".repeat(32))?;
    for file in ["riposte.db", "approval-secret"] {
        std::fs::set_permissions(data.join(file), std::fs::Permissions::from_mode(0o644))?;
    }
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755))?;
    let running =
        riposte_engine::serve::start(config.clone(), tokio_util::sync::CancellationToken::new())
            .await?;
    let svc = Service {
        running,
        dir,
        config,
    };
    let mode = |p: &std::path::Path| -> anyhow::Result<u32> {
        Ok(std::fs::metadata(p)?.permissions().mode() & 0o777)
    };
    assert_eq!(mode(&data)?, 0o700);
    for file in ["riposte.db", "approval-secret"] {
        assert_eq!(mode(&data.join(file))?, 0o600, "{file}");
    }
    svc.stop().await;
    Ok(())
}

mod crash {
    use super::*;
    use chrono::Utc;
    use riposte_engine::decide::decision::{
        ActionRecord, ActionStatus, Decision, EventSummary, Mode, Outcome, Timings,
    };
    use riposte_engine::decide::intent::{Action, ApprovalDefault, Intent, Target, Ttl};
    use riposte_engine::store::{
        NewApproval, NewEdlEntry, NewOutboxItem, OnTimeout, Store, Verdict,
    };

    fn summary() -> EventSummary {
        EventSummary {
            kind: "alert".into(),
            dataset: "panos.threat".into(),
            threat_name: Some("Beacon".into()),
            threat_type: Some("spyware".into()),
            severity: Some("critical".into()),
            source_ip: Some("10.244.1.17".parse().unwrap()),
            destination_ip: Some("203.0.113.9".parse().unwrap()),
            ..EventSummary::default()
        }
    }

    /// A decision as the dispatcher records it before its actions run.
    fn dispatching(event_id: &str, intents: Vec<Action>) -> Decision {
        Decision {
            event_id: event_id.into(),
            event: summary(),
            playbook: "c2".into(),
            mode: Mode::Enforce,
            intents: intents
                .into_iter()
                .map(|a| Intent::new(event_id, "c2", a))
                .collect(),
            outcome: Outcome::Pending {
                reason: "dispatching".into(),
            },
            timings: Timings::default(),
            at: Utc::now(),
            actions: Vec::new(),
        }
    }

    fn queued(intent: &Intent, target: &str) -> ActionRecord {
        ActionRecord {
            action_id: intent.action_id.clone(),
            action: intent.action.name().into(),
            target: Some(target.into()),
            status: ActionStatus::Queued,
            reason: None,
            code: None,
            attempts: 0,
            duration_us: 0,
            at: Utc::now(),
        }
    }

    /// Writes what a process killed in the middle of a stream leaves: a
    /// decision whose EDL entry was made, whose notification was delivered
    /// and whose quarantine never reported; a decision killed before its
    /// notification was written; one waiting for an approval; one approved
    /// but killed before the approved intent was dispatched.
    async fn leave_half_finished(store: &Store) -> anyhow::Result<()> {
        let pod = Target::pod("shop", "checkout-7d9f")?;
        let mut a = dispatching(
            "ev-a",
            vec![
                Action::EdlAdd {
                    list: "c2".into(),
                    value: "203.0.113.9".into(),
                    ttl: Ttl::parse("1h")?,
                    reason: None,
                },
                Action::Notify {
                    target: "soar".into(),
                    fields: serde_json::json!({"title": "C2"}),
                },
                Action::Quarantine {
                    target: pod.clone(),
                    ttl: Ttl::parse("4h")?,
                    reason: None,
                },
            ],
        );
        a.actions = vec![
            queued(&a.intents[0], "edl c2: 203.0.113.9"),
            queued(&a.intents[2], "shop/checkout-7d9f"),
        ];
        let b = dispatching(
            "ev-b",
            vec![Action::Notify {
                target: "soar".into(),
                fields: serde_json::json!({"title": "C2"}),
            }],
        );
        let mut c = dispatching(
            "ev-c",
            vec![Action::Approve {
                intent: Box::new(Action::Quarantine {
                    target: pod,
                    ttl: Ttl::parse("4h")?,
                    reason: None,
                }),
                timeout: Ttl::parse("1h")?,
                default: ApprovalDefault::Drop,
                approvers: Vec::new(),
                reason: None,
            }],
        );
        c.actions = vec![queued(&c.intents[0], "shop/checkout-7d9f")];
        // Approved, then killed before the intent was dispatched.
        let mut d = dispatching("ev-d", vec![c.intents[0].action.clone()]);
        d.actions = vec![queued(&d.intents[0], "shop/checkout-7d9f")];
        store
            .append_decisions(&[a.clone(), b, c.clone(), d.clone()])
            .await?;
        let now = Utc::now();
        store
            .edl_upsert(
                "c2",
                &[NewEdlEntry {
                    value: "203.0.113.9".into(),
                    expires_at: now + chrono::Duration::hours(1),
                    reason: None,
                    action_id: Some(a.intents[0].action_id.clone()),
                }],
                now,
            )
            .await?;
        let notified = a.intents[1].action_id.clone();
        store
            .outbox_enqueue(&NewOutboxItem {
                id: notified.clone(),
                target: "soar".into(),
                payload: serde_json::json!({}),
                created_at: now,
            })
            .await?;
        store
            .outbox_delivered_many(std::slice::from_ref(&notified), now)
            .await?;
        store
            .approval_create(&NewApproval {
                id: c.intents[0].action_id.clone(),
                intent: serde_json::json!({"action": "quarantine"}),
                event_id: "ev-c".into(),
                playbook: "c2".into(),
                created_at: now,
                expires_at: now + chrono::Duration::hours(1),
                on_timeout: OnTimeout::Drop,
                context: None,
            })
            .await?;
        store
            .approval_create(&NewApproval {
                id: d.intents[0].action_id.clone(),
                intent: serde_json::json!({"action": "quarantine"}),
                event_id: "ev-d".into(),
                playbook: "c2".into(),
                created_at: now,
                expires_at: now + chrono::Duration::hours(1),
                on_timeout: OnTimeout::Drop,
                context: None,
            })
            .await?;
        store
            .approval_decide(&d.intents[0].action_id, Verdict::Approve, "alice", now)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    }

    fn entry<'a>(audit: &'a Value, event_id: &str) -> &'a Value {
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event_id"] == event_id)
            .unwrap_or_else(|| panic!("{event_id} in {audit:#}"))
    }

    fn action<'a>(e: &'a Value, name: &str) -> &'a Value {
        e["actions"]
            .as_array()
            .unwrap_or_else(|| panic!("actions of {e:#}"))
            .iter()
            .find(|a| a["action"] == name)
            .unwrap_or_else(|| panic!("{name} in {e:#}"))
    }

    /// After a `kill -9`, the next start gives every decision the process
    /// left in flight its true outcome: what the store shows was done is
    /// applied, what cannot be known is failed as interrupted, and only a
    /// request still waiting for a human stays pending.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn decisions_left_in_flight_by_a_killed_process_get_their_true_outcome(
    ) -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut config = service::base_config(dir.path())?;
        config.api.tokens = vec![read_token()];
        config.validate()?;
        {
            // The killed process's store, as it left it.
            std::fs::create_dir_all(&config.data_dir)?;
            let store = Store::open(&config.store, &config.data_dir).await?;
            leave_half_finished(&store).await?;
            store.close().await;
        }
        let running = riposte_engine::serve::start(
            config.clone(),
            tokio_util::sync::CancellationToken::new(),
        )
        .await?;
        let svc = Service {
            running,
            dir,
            config,
        };
        let mut audit = Value::Null;
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::time::Instant::now() < deadline {
            audit = serde_json::from_str(&get_text(&svc, "/v1/audit").await?)?;
            let settled = audit["items"].as_array().is_some_and(|es| {
                es.len() == 4 && es.iter().all(|e| e["outcome"]["reason"] != "dispatching")
            });
            if settled {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let a = entry(&audit, "ev-a");
        assert_eq!(action(a, "edl_add")["status"], "applied", "{a:#}");
        assert_eq!(action(a, "notify")["status"], "applied", "{a:#}");
        let q = action(a, "quarantine");
        assert_eq!(q["status"], "failed", "{a:#}");
        assert_eq!(q["code"], "interrupted", "{a:#}");
        assert_eq!(a["outcome"]["status"], "failed", "{a:#}");
        let b = entry(&audit, "ev-b");
        assert_eq!(action(b, "notify")["status"], "failed", "{b:#}");
        assert_eq!(action(b, "notify")["code"], "interrupted", "{b:#}");
        assert_eq!(b["outcome"]["status"], "failed", "{b:#}");
        // Waiting for a human is not interrupted: the approval finishes it.
        let c = entry(&audit, "ev-c");
        assert_eq!(action(c, "approve")["status"], "queued", "{c:#}");
        assert_eq!(c["outcome"]["status"], "pending", "{c:#}");
        assert_eq!(c["outcome"]["reason"], "awaiting approval", "{c:#}");
        let d = entry(&audit, "ev-d");
        assert_eq!(action(d, "approve")["code"], "interrupted", "{d:#}");
        assert_eq!(d["outcome"]["status"], "failed", "{d:#}");
        for e in audit["items"].as_array().unwrap() {
            assert_ne!(
                e["outcome"]["reason"], "dispatching",
                "left dispatching: {e:#}"
            );
        }
        svc.stop().await;
        Ok(())
    }
}
