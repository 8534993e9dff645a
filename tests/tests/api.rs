//! End to end over HTTP against the real service: signed webhooks (replay
//! window, seen ids) reaching a playbook, scopes (401 vs 403), idempotent
//! actions (same body, other body, in flight), approvals (approve by token,
//! deny by signed link, time out), and hostile clients (huge, deeply nested
//! and mistyped bodies, a slowloris), and all of it kept across a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::Utc;
use riposte_engine::act::approvals::{Approvals, Verdict};
use riposte_engine::api::webhooks::{Verify, WebhookConfig};
use riposte_engine::auth::{hash_token, Scope, TokenConfig};
use riposte_engine::config::secret::{Secret, SecretSource};
use riposte_engine::config::Config;
use riposte_engine::decide::decision::DecisionFilter;
use riposte_tests::service::{self, Service};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const READ: &str = "read-token";
const ACT: &str = "act-token";
const WEBHOOK_KEY: &[u8] = b"soar webhook key";
const APPROVAL_SECRET: &str = "approval link secret";

const PLAYBOOK: &str = r#"// name: soar-requests
// trigger: kind = webhook, webhook.name = soar
// mode: enforce
let body = event.webhook.body;
notify("soar", #{ echo: body.say });
"#;

fn configure(c: &mut Config) {
    c.api.tokens = vec![
        TokenConfig {
            name: "reader".into(),
            sha256: hash_token(READ),
            scopes: vec![Scope::Read],
        },
        TokenConfig {
            name: "soc".into(),
            sha256: hash_token(ACT),
            scopes: vec![Scope::Read, Scope::Act],
        },
    ];
    c.api.webhooks = vec![WebhookConfig {
        name: "soar".into(),
        verify: Verify::Standard,
        secrets: vec![SecretSource::Value(format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(WEBHOOK_KEY)
        ))],
        sha256: vec![],
        tolerance_secs: 300,
    }];
    c.api.approval_secret = Some(SecretSource::Value(APPROVAL_SECRET.into()));
    c.api.approval_check_ms = 50;
    c.api.action_wait_ms = 300;
    c.http.max_body_bytes = 256 * 1024;
    c.http.header_read_timeout_secs = 1;
}

async fn start() -> Service {
    service::start_with(|c, _| {
        configure(c);
        service::add_playbook(c, "soar-requests.rhai", PLAYBOOK).unwrap();
    })
    .await
    .unwrap()
}

fn signed(
    client: &reqwest::Client,
    url: &str,
    id: &str,
    ts: i64,
    body: &str,
) -> reqwest::RequestBuilder {
    service::standard_webhook(client, url, WEBHOOK_KEY, id, ts, body)
}

async fn problem(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    assert_eq!(
        r.headers()["content-type"],
        "application/problem+json",
        "status {status}"
    );
    (status, r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhook_reaches_the_playbook_once() {
    let svc = start().await;
    let client = reqwest::Client::new();
    let url = svc.http_url("/v1/webhooks/soar");
    let now = Utc::now().timestamp();
    let body = r#"{"say":"hello"}"#;

    let r = signed(&client, &url, "msg_1", now, body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let accepted: Value = r.json().await.unwrap();
    let event_id = accepted["event_id"].as_str().unwrap().to_owned();
    let decision = riposte_tests::eventually(Duration::from_secs(10), || {
        svc.running
            .decisions
            .recent(
                1,
                &DecisionFilter {
                    event_id: Some(event_id.clone()),
                    ..Default::default()
                },
            )
            .pop()
    })
    .await
    .unwrap();
    assert_eq!(decision.playbook, "soar-requests");
    assert_eq!(decision.event.kind, "webhook");
    let intent = serde_json::to_value(&decision.intents[0]).unwrap();
    assert_eq!(intent["fields"]["echo"], "hello");

    // The same message again: refused, and nothing new runs.
    let (s, _) = problem(
        signed(&client, &url, "msg_1", now, body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 409);
    // Outside the ±5 minute window, even with a fresh id. `now` was read
    // in whole seconds before the first request, and a loaded machine can
    // be more than a second past it here: `now + 301` was then inside the
    // window and accepted. The clock is read again, with a margin (the
    // exact edge is the verifier's unit test).
    let now = Utc::now().timestamp();
    let (s, _) = problem(
        signed(&client, &url, "msg_2", now - 330, body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 401);
    let (s, _) = problem(
        signed(&client, &url, "msg_3", now + 330, body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 401);
    // A signature over another body.
    let forged = signed(&client, &url, "msg_4", now, r#"{"say":"bye"}"#)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(forged).await.0, 401);
    // No signature at all.
    let r = client
        .post(&url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await.0, 401);

    let count = |outcome: &str| {
        svc.metric(
            "riposte_webhooks_total",
            &[("webhook", "soar"), ("outcome", outcome)],
        )
    };
    assert_eq!(count("accepted"), 1.0);
    assert_eq!(count("replayed"), 1.0);
    assert_eq!(count("stale"), 2.0);
    assert_eq!(count("bad_signature"), 1.0);
    assert_eq!(count("unsigned"), 1.0);
    assert_eq!(
        svc.metric(
            "riposte_api_requests_total",
            &[("route", "/v1/webhooks/{name}"), ("status", "401")]
        ),
        4.0
    );
    svc.stop().await;
}

const NOTIFY: &str = r#"{"intents":[{"action":"notify","target":"soar","fields":{"title":"x"}}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_and_idempotency() {
    let svc = start().await;
    let client = reqwest::Client::new();
    let url = svc.http_url("/v1/actions");
    let post = |token: Option<&str>, body: &str, key: Option<&str>| {
        let mut r = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(k) = key {
            r = r.header("idempotency-key", k);
        }
        r.send()
    };
    assert_eq!(
        problem(post(None, NOTIFY, None).await.unwrap()).await.0,
        401
    );
    assert_eq!(
        problem(post(Some("nope"), NOTIFY, None).await.unwrap())
            .await
            .0,
        401
    );
    let (s, p) = problem(post(Some(READ), NOTIFY, None).await.unwrap()).await;
    assert_eq!(s, 403);
    assert!(p["detail"].as_str().unwrap().contains("`act`"));

    let first = post(Some(ACT), NOTIFY, Some("req-1")).await.unwrap();
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["status"], "done");
    assert_eq!(first["decision"]["actions"][0]["status"], "skipped");
    let again: Value = post(Some(ACT), NOTIFY, Some("req-1"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again, first, "the same key and body get the first answer");
    let other = NOTIFY.replace("\"x\"", "\"y\"");
    assert_eq!(
        problem(post(Some(ACT), &other, Some("req-1")).await.unwrap())
            .await
            .0,
        422
    );

    // An approval keeps the request in flight past the wait: a retry with
    // the same key meanwhile is 409, and the first answers 202.
    let slow = r#"{"intents":[{"action":"approve","intent":{"action":"notify","target":"soar","fields":{}},"timeout":"1h","default":"drop"}]}"#;
    let (a, b) = tokio::join!(post(Some(ACT), slow, Some("req-2")), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        post(Some(ACT), slow, Some("req-2")).await
    });
    let a = a.unwrap();
    assert_eq!(a.status(), 202);
    let location = a.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(problem(b.unwrap()).await.0, 409);
    let polled = client
        .get(svc.http_url(&location))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap();
    assert_eq!(polled.status(), 200);
    let polled: Value = polled.json().await.unwrap();
    assert_eq!(polled["status"], "in-progress");
    svc.stop().await;
}

async fn request_approval(
    svc: &Service,
    client: &reqwest::Client,
    timeout: &str,
    default: &str,
) -> Value {
    let body = json!({"intents": [{"action": "approve", "intent": {"action": "notify", "target": "soar", "fields": {"n": timeout}}, "timeout": timeout, "default": default}]});
    let r = client
        .post(svc.http_url("/v1/actions"))
        .bearer_auth(ACT)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let result: Value = r.json().await.unwrap();
    let event_id = result["decision"]["event_id"].as_str().unwrap().to_owned();
    let list: Vec<Value> = client
        .get(svc.http_url("/v1/approvals"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list.into_iter()
        .find(|a| a["event_id"] == event_id.as_str())
        .expect("the approval is listed")
}

fn settled_approve_record(svc: &Service, event_id: &str) -> Option<Value> {
    let decisions = svc.running.decisions.recent(
        10,
        &DecisionFilter {
            event_id: Some(event_id.to_owned()),
            ..Default::default()
        },
    );
    decisions
        .iter()
        .flat_map(|d| d.actions.iter())
        .find(|a| {
            a.action == "approve"
                && a.status != riposte_engine::decide::decision::ActionStatus::Queued
        })
        .map(|a| serde_json::to_value(a).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_approve_deny_and_time_out() {
    let svc = start().await;
    let client = reqwest::Client::new();

    // Approve with an act token: the notify intent is then dispatched.
    let a = request_approval(&svc, &client, "1h", "drop").await;
    let id = a["id"].as_str().unwrap();
    let r = client
        .post(svc.http_url(&format!("/v1/approvals/{id}/approve")))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await.0, 403);
    let r = client
        .post(svc.http_url(&format!("/v1/approvals/{id}/approve")))
        .bearer_auth(ACT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["state"], "approved");
    let event_id = a["event_id"].as_str().unwrap();
    let record = riposte_tests::eventually(Duration::from_secs(5), || {
        settled_approve_record(&svc, event_id)
    })
    .await
    .unwrap();
    assert_eq!(record["status"], "applied");
    let applied = svc.running.decisions.recent(
        10,
        &DecisionFilter {
            event_id: Some(event_id.to_owned()),
            action: Some("notify".into()),
            ..Default::default()
        },
    );
    assert_eq!(applied.len(), 1, "the approved intent was dispatched");

    // Deny through the signed link: single use, and not for the other verdict.
    let d = request_approval(&svc, &client, "1h", "apply").await;
    let id = d["id"].as_str().unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(d["expires_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    let signer = Approvals::new(
        Arc::new(svc.running.store.clone()),
        Secret::new(APPROVAL_SECRET.as_bytes().to_vec()),
        &svc.http_url(""),
    );
    let deny = signer.link(id, Verdict::Deny, expires);
    let bent = deny.replace("/deny?", "/approve?");
    assert_eq!(
        problem(client.post(&bent).send().await.unwrap()).await.0,
        401
    );
    let r = client.post(&deny).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["state"], "denied");
    assert_eq!(
        problem(client.post(&deny).send().await.unwrap()).await.0,
        409
    );
    let record = riposte_tests::eventually(Duration::from_secs(5), || {
        settled_approve_record(&svc, d["event_id"].as_str().unwrap())
    })
    .await
    .unwrap();
    assert_eq!(record["status"], "refused");

    // Nobody decides: after the timeout the default (apply) is taken and
    // recorded.
    let t = request_approval(&svc, &client, "1s", "apply").await;
    let record = riposte_tests::eventually(Duration::from_secs(5), || {
        settled_approve_record(&svc, t["event_id"].as_str().unwrap())
    })
    .await
    .unwrap();
    assert_eq!(record["status"], "applied");
    assert!(record["reason"]
        .as_str()
        .unwrap()
        .contains("default `apply` taken"));
    let state: Value = client
        .get(svc.http_url(&format!("/v1/approvals/{}", t["id"].as_str().unwrap())))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["state"], "timed-out");
    svc.stop().await;
}

/// What the API promised before a restart holds after it (same data
/// directory): a seen webhook id is still a replay, an `Idempotency-Key`
/// still gets its first answer, and a pending approval can still be
/// decided, by token or by the signed link from before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_seen_ids_idempotent_answers_and_approvals() {
    let svc = start().await;
    let client = reqwest::Client::new();
    let now = Utc::now().timestamp();
    let body = r#"{"say":"before"}"#;
    let r = signed(
        &client,
        &svc.http_url("/v1/webhooks/soar"),
        "msg_restart",
        now,
        body,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    let first = client
        .post(svc.http_url("/v1/actions"))
        .bearer_auth(ACT)
        .header("content-type", "application/json")
        .header("idempotency-key", "restart-1")
        .body(NOTIFY)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    let approve_me = request_approval(&svc, &client, "1h", "drop").await;
    let deny_me = request_approval(&svc, &client, "1h", "apply").await;

    let svc = svc.restart().await.unwrap();

    let r = signed(
        &client,
        &svc.http_url("/v1/webhooks/soar"),
        "msg_restart",
        now,
        body,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(problem(r).await.0, 409, "a replay across a restart");
    let post = |body: &str| {
        client
            .post(svc.http_url("/v1/actions"))
            .bearer_auth(ACT)
            .header("content-type", "application/json")
            .header("idempotency-key", "restart-1")
            .body(body.to_owned())
            .send()
    };
    let again = post(NOTIFY).await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(
        problem(post(&NOTIFY.replace("\"x\"", "\"z\"")).await.unwrap())
            .await
            .0,
        422
    );

    let pending: Vec<Value> = client
        .get(svc.http_url("/v1/approvals"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = pending.iter().filter_map(|a| a["id"].as_str()).collect();
    let (a_id, d_id) = (
        approve_me["id"].as_str().unwrap(),
        deny_me["id"].as_str().unwrap(),
    );
    assert!(ids.contains(&a_id) && ids.contains(&d_id), "{ids:?}");
    let kept = pending.iter().find(|a| a["id"] == a_id).unwrap();
    assert_eq!(kept["intent"], approve_me["intent"]);
    assert_eq!(kept["event"], approve_me["event"]);
    let r = client
        .post(svc.http_url(&format!("/v1/approvals/{a_id}/approve")))
        .bearer_auth(ACT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["state"], "approved");
    let event_id = approve_me["event_id"].as_str().unwrap().to_owned();
    let dispatched = riposte_tests::eventually(Duration::from_secs(10), || {
        svc.running
            .decisions
            .recent(
                1,
                &DecisionFilter {
                    event_id: Some(event_id.clone()),
                    action: Some("notify".into()),
                    ..Default::default()
                },
            )
            .pop()
    })
    .await;
    assert!(dispatched.is_ok(), "the approved intent was dispatched");
    // The link signed before the restart still decides (the secret is the
    // configured one), once.
    let expires = chrono::DateTime::parse_from_rfc3339(deny_me["expires_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    let signer = Approvals::new(
        Arc::new(svc.running.store.clone()),
        Secret::new(APPROVAL_SECRET.as_bytes().to_vec()),
        &svc.http_url(""),
    );
    let deny = signer.link(d_id, Verdict::Deny, expires);
    let r = client.post(&deny).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["state"], "denied");
    assert_eq!(
        problem(client.post(&deny).send().await.unwrap()).await.0,
        409
    );
    svc.stop().await;
}

/// `GET /v1/audit` reads the durable trail: after a restart the decisions
/// made before it are listed, filtered and paged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_outlives_a_restart() {
    let svc = start().await;
    let client = reqwest::Client::new();
    let r = signed(
        &client,
        &svc.http_url("/v1/webhooks/soar"),
        "msg_audit",
        Utc::now().timestamp(),
        r#"{"say":"audit me"}"#,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    let webhook_event = r.json::<Value>().await.unwrap()["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut api_events = Vec::new();
    for dry_run in [false, false, true] {
        let mut body: Value = serde_json::from_str(NOTIFY).unwrap();
        body["dry_run"] = json!(dry_run);
        let r: Value = client
            .post(svc.http_url("/v1/actions"))
            .bearer_auth(ACT)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        api_events.push(r["decision"]["event_id"].as_str().unwrap().to_owned());
    }
    // The playbook's decision is made on the pipeline: wait for it before
    // the restart, which then drains it to the store.
    riposte_tests::eventually(Duration::from_secs(10), || {
        svc.running
            .decisions
            .recent(
                1,
                &DecisionFilter {
                    event_id: Some(webhook_event.clone()),
                    ..Default::default()
                },
            )
            .pop()
    })
    .await
    .unwrap();

    let svc = svc.restart().await.unwrap();
    assert!(svc
        .running
        .decisions
        .recent(10, &Default::default())
        .is_empty());
    let audit = |query: &str| {
        let url = svc.http_url(&format!("/v1/audit{query}"));
        let client = client.clone();
        async move {
            let r = client.get(url).bearer_auth(READ).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, page) = audit("?playbook=soar-requests").await;
    assert_eq!(s, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["event_id"], webhook_event.as_str());
    assert_eq!(page["items"][0]["intents"][0]["fields"]["echo"], "audit me");

    // Every decision aimed at the `soar` target, two at a time.
    let (s, first) = audit("?target=soar&limit=2").await;
    assert_eq!(s, 200);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let (_, second) = audit(&format!("?target=soar&limit=2&cursor={cursor}")).await;
    assert!(second.get("next_cursor").is_none());
    let mut seen: Vec<String> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["items"].as_array().unwrap())
        .map(|i| i["event_id"].as_str().unwrap().to_owned())
        .collect();
    seen.sort();
    let mut all = api_events.clone();
    all.push(webhook_event.clone());
    all.sort();
    assert_eq!(seen, all, "each decision once, across the pages");

    let (_, dry) = audit("?outcome=dry-run").await;
    assert_eq!(dry["items"].as_array().unwrap().len(), 1);
    assert_eq!(dry["items"][0]["event_id"], api_events[2].as_str());
    let (_, by_event) = audit(&format!("?event_id={}&action=notify", api_events[0])).await;
    assert_eq!(by_event["items"].as_array().unwrap().len(), 1);
    let (_, later) = audit("?from=2999-01-01T00:00:00Z").await;
    assert!(later["items"].as_array().unwrap().is_empty());
    assert_eq!(audit("?cursor=zz").await.0, 400);
    assert_eq!(audit("?limit=0").await.0, 400);
    svc.stop().await;
}

/// `POST /v1/playbooks/{name}/dry-run` answers as the live playbook would,
/// without consuming its `once_per` window: after any number of dry runs,
/// the live event still acts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_do_not_consume_the_live_once_per() {
    const ONCE: &str = r#"// name: c2-once
// trigger: threat.type = spyware
// mode: enforce
if once_per(event.destination.ip, "1h") { notify("soar", #{ title: "first sighting" }); }
"#;
    let svc = service::start_with(|c, _| {
        configure(c);
        service::add_playbook(c, "c2-once.rhai", ONCE).unwrap();
    })
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let mut event = riposte_firewall::ThreatEvent::new(
        riposte_firewall::EventKind::Alert,
        riposte_firewall::EventModule::Panos,
        "panos.threat",
        Utc::now(),
        "dry-run event",
    );
    event.threat_type = Some("spyware".into());
    event.destination_ip = Some("203.0.113.9".parse().unwrap());
    let dry_run = || {
        client
            .post(svc.http_url("/v1/playbooks/c2-once/dry-run"))
            .bearer_auth(READ)
            .json(&event)
            .send()
    };
    let notifies = |d: &Value| {
        d["intents"]
            .as_array()
            .map_or(0, |i| i.iter().filter(|i| i["action"] == "notify").count())
    };
    for _ in 0..3 {
        let r: Value = dry_run().await.unwrap().json().await.unwrap();
        assert_eq!(r["matched"], true, "{r}");
        assert_eq!(notifies(&r["decision"]), 1, "{r}");
    }
    // The live C2 log to the same address: not suppressed by the dry runs.
    let line = riposte_tests::lines::with_bsd_header(&riposte_tests::lines::c2(
        "10.244.1.17",
        "203.0.113.9",
        1,
    ));
    riposte_tests::syslog::send_tcp(
        svc.running.tcp[0],
        &[line],
        riposte_tests::syslog::Framing::OctetCounting,
    )
    .await
    .unwrap();
    let live = riposte_tests::eventually(Duration::from_secs(10), || {
        svc.running
            .decisions
            .recent(
                1,
                &DecisionFilter {
                    playbook: Some("c2-once".into()),
                    ..Default::default()
                },
            )
            .pop()
    })
    .await
    .unwrap();
    assert_eq!(
        notifies(&serde_json::to_value(&live).unwrap()),
        1,
        "{live:?}"
    );
    // Now the window is taken, and a dry run says so.
    let r: Value = dry_run().await.unwrap().json().await.unwrap();
    assert_eq!(notifies(&r["decision"]), 0, "{r}");
    svc.stop().await;
}

/// EDL changes over the API are in the audit trail: who (the token's
/// name), what, when, and what came of it, refusals included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edl_changes_over_the_api_are_audited() {
    use riposte_engine::act::firewall_sync::config::EdlListConfig;
    let svc = service::start_with(|c, _| {
        configure(c);
        c.firewall.edl = vec![EdlListConfig {
            name: "c2".into(),
            kind: riposte_firewall::edl::EdlKind::Ip,
            basic: vec![],
            bearer_sha256: vec![],
        }];
    })
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let before = Utc::now();
    let add = |value: &str| {
        client
            .post(svc.http_url("/v1/edl/c2"))
            .bearer_auth(ACT)
            .json(&json!({"value": value, "ttl": 3600, "reason": "C2 seen by the SOC"}))
            .send()
    };
    assert_eq!(add("198.51.100.7").await.unwrap().status(), 201);
    assert_eq!(add("198.51.100.1/24").await.unwrap().status(), 400);
    let del = client
        .delete(svc.http_url("/v1/edl/c2/198.51.100.7"))
        .bearer_auth(ACT)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    svc.running.audit.flush().await.unwrap();

    let page: Value = client
        .get(svc.http_url("/v1/audit?playbook=api:soc"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = page["items"].as_array().unwrap();
    let seen: Vec<(String, String, String)> = items
        .iter()
        .map(|i| {
            (
                i["intents"][0]["action"].as_str().unwrap().to_owned(),
                i["intents"][0]["value"].as_str().unwrap().to_owned(),
                i["actions"][0]["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect = |a: &str, v: &str, s: &str| (a.to_owned(), v.to_owned(), s.to_owned());
    assert_eq!(
        seen,
        [
            expect("edl_remove", "198.51.100.7", "applied"),
            expect("edl_add", "198.51.100.1/24", "refused"),
            expect("edl_add", "198.51.100.7", "applied"),
        ],
        "{page:#}"
    );
    assert!(items[1]["actions"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("host bits"));
    assert_eq!(items[2]["intents"][0]["reason"], "C2 seen by the SOC");
    for i in items {
        let at = chrono::DateTime::parse_from_rfc3339(i["at"].as_str().unwrap()).unwrap();
        assert!(at >= before, "{i}");
    }
    // The target filter finds them by value.
    let by_value: Value = client
        .get(svc.http_url("/v1/audit?target=198.51.100.7"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_value["items"].as_array().unwrap().len(), 2);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_get_clear_refusals_and_the_service_stays_up() {
    let svc = start().await;
    let client = reqwest::Client::new();
    let url = svc.http_url("/v1/actions");

    let huge = format!(
        "{{\"intents\":[],\"reason\":\"{}\"}}",
        "x".repeat(300 * 1024)
    );
    let r = client
        .post(&url)
        .bearer_auth(ACT)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await.0, 413);

    let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    let r = client
        .post(&url)
        .bearer_auth(ACT)
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await.0, 422);

    let r = client
        .post(&url)
        .bearer_auth(ACT)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(NOTIFY)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await.0, 415);

    // A slowloris: headers trickled slower than the header read timeout.
    let addr = svc.running.http.unwrap();
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
    assert!(
        closed.is_ok(),
        "the server closes a client that never finishes its headers"
    );

    assert_eq!(
        svc.metric(
            "riposte_api_requests_total",
            &[("route", "/v1/actions"), ("status", "422")]
        ),
        1.0
    );
    // A fresh connection: the pooled one sat idle through the slowloris
    // wait, past the header read timeout, and the server may be closing it
    // just as it would be reused.
    let r = reqwest::Client::new()
        .get(svc.http_url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ready: Value = r.json().await.unwrap();
    assert_eq!(ready["checks"]["store"], true);
    svc.stop().await;
}
