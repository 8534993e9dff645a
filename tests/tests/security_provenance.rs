//! Security regressions of issue 12, end to end against the real service:
//!
//! - provenance is Riposte's: on every ingest path (HTTP in each content
//!   type, syslog TCP, the EVE file, an AMQP source queue) a posted event
//!   claiming to be a webhook or a schedule runs no webhook or scheduled
//!   playbook, and a claimed `event.id` is replaced by Riposte's hash;
//! - a GitHub-mode webhook sent again with a new or no delivery id is a
//!   replay;
//! - unknown webhook and EDL names answer a stranger as known ones do;
//! - `/v1/ingest` refuses JSON nested deeper than `api.max_json_depth`.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::time::Duration;

use base64::Engine as _;
use chrono::Utc;
use riposte_connectors::amqp::{BrokerUrl, Outgoing, Publisher, Topology};
use riposte_engine::api::webhooks::{Verify, WebhookConfig};
use riposte_engine::auth::{hash_token, Scope, TokenConfig};
use riposte_engine::config::secret::SecretSource;
use riposte_engine::config::{Config, EveConfig, StartAt};
use riposte_engine::decide::decision::{Decision, DecisionFilter};
use riposte_engine::intake::queues::config::{AmqpConfig, AmqpSourceConfig, MessageFormat};
use riposte_firewall::event::event_id;
use riposte_tests::service::{self, add_playbook, Service};
use riposte_tests::syslog::{self, Framing};
use riposte_tests::{eventually, lines, rabbit};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

const INGEST: &str = "ingest-token";
const READ: &str = "read-token";
const SOAR_KEY: &[u8] = b"soar webhook key";
const GITHUB_SECRET: &str = "github webhook secret";

/// What a forged SOAR event would have done: release the pod it names.
const SOAR_PLAYBOOK: &str = r#"// name: soar-requests
// trigger: kind = webhook, webhook.name = soar
// mode: enforce
log("info", `soar asks: ${event.webhook.body.say}`);
"#;

const GITHUB_PLAYBOOK: &str = r#"// name: github-requests
// trigger: kind = webhook, webhook.name = gh
// mode: enforce
log("info", `github says: ${event.webhook.body.say}`);
"#;

/// Runs only when its schedule fires (yearly): never within a test.
const SCHEDULED_PLAYBOOK: &str = r#"// name: sweep
// schedule: @yearly
log("info", `sweep at ${event.payload.scheduled_for}`);
"#;

/// Sees every firewall and IDS alert: what the ingest paths made of a line.
const ALERTS_PLAYBOOK: &str = r#"// name: alerts
// trigger: kind = alert
// mode: enforce
log("info", `alert ${event.id}`);
"#;

fn configure(c: &mut Config) {
    c.api.tokens = vec![
        TokenConfig {
            name: "fw".into(),
            sha256: hash_token(INGEST),
            scopes: vec![Scope::Ingest],
        },
        TokenConfig {
            name: "reader".into(),
            sha256: hash_token(READ),
            scopes: vec![Scope::Read],
        },
    ];
    c.api.webhooks = vec![
        WebhookConfig {
            name: "soar".into(),
            verify: Verify::Standard,
            secrets: vec![SecretSource::Value(format!(
                "whsec_{}",
                base64::engine::general_purpose::STANDARD.encode(SOAR_KEY)
            ))],
            sha256: vec![],
            tolerance_secs: 300,
        },
        WebhookConfig {
            name: "gh".into(),
            verify: Verify::Github,
            secrets: vec![SecretSource::Value(GITHUB_SECRET.into())],
            sha256: vec![],
            tolerance_secs: 300,
        },
    ];
    for (file, text) in [
        ("soar-requests.rhai", SOAR_PLAYBOOK),
        ("github-requests.rhai", GITHUB_PLAYBOOK),
        ("sweep.rhai", SCHEDULED_PLAYBOOK),
        ("alerts.rhai", ALERTS_PLAYBOOK),
    ] {
        add_playbook(c, file, text).unwrap();
    }
}

async fn start(adjust: impl FnOnce(&mut Config, &std::path::Path)) -> Service {
    service::start_with(|c, dir| {
        configure(c);
        adjust(c, dir);
    })
    .await
    .unwrap()
}

fn decisions(svc: &Service, playbook: &str) -> Vec<Decision> {
    svc.running.decisions.recent(
        10_000,
        &DecisionFilter {
            playbook: Some(playbook.into()),
            ..Default::default()
        },
    )
}

/// Whether the decision is about an event from `ip`.
fn from(d: &Decision, ip: &str) -> bool {
    d.event.source_ip == Some(ip.parse().unwrap())
}

/// Waits for a decision of `playbook` that `pick` accepts.
async fn decision_where(
    svc: &Service,
    playbook: &str,
    pick: impl Fn(&Decision) -> bool,
) -> Decision {
    eventually(WAIT, || {
        decisions(svc, playbook).into_iter().find(|d| pick(d))
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "no such decision of {playbook}; have {:#?}",
            svc.running.decisions.recent(50, &DecisionFilter::default())
        )
    })
}

/// A webhook event as a SOAR's signed call makes it, forged.
fn forged_webhook() -> Value {
    json!({
        "@timestamp": Utc::now().to_rfc3339(),
        "event.id": "forged-webhook",
        "event.kind": "webhook",
        "event.module": "riposte",
        "event.dataset": "riposte.webhook",
        "observer.vendor": "Riposte",
        "observer.product": "Riposte",
        "webhook.name": "soar",
        "event.payload": {"say": "release shop/checkout"},
        "event.original": "{\"say\":\"release shop/checkout\"}"
    })
}

/// A schedule event as the scheduler makes it, forged.
fn forged_schedule() -> Value {
    let now = Utc::now().to_rfc3339();
    json!({
        "@timestamp": now,
        "event.id": "forged-schedule",
        "event.kind": "schedule",
        "event.module": "riposte",
        "event.dataset": "riposte.schedule",
        "observer.vendor": "Riposte",
        "observer.product": "Riposte",
        "event.payload": {"playbook": "sweep", "schedule": "@yearly", "scheduled_for": now},
        "event.original": format!("schedule sweep {now}")
    })
}

/// A firewall alert that also carries a webhook's name and payload.
fn alert_with_webhook_fields() -> Value {
    json!({
        "@timestamp": Utc::now().to_rfc3339(),
        "event.id": "forged-alert",
        "event.kind": "alert",
        "event.module": "panos",
        "event.dataset": "panos.threat",
        "observer.vendor": "Palo Alto Networks",
        "observer.product": "PAN-OS",
        "source.ip": "10.244.1.17",
        "webhook.name": "soar",
        "event.payload": {"say": "release shop/checkout"},
        "event.original": "forged"
    })
}

/// A Suricata alert record from `src`, with `extra` members appended.
fn eve_alert(src: &str, extra: &str) -> String {
    format!(
        r#"{{"timestamp":"2026-11-27T10:15:30.123456+0000","flow_id":77,"event_type":"alert","src_ip":"{src}","src_port":51514,"dest_ip":"203.0.113.66","dest_port":443,"proto":"TCP","alert":{{"action":"blocked","gid":1,"signature_id":2030000,"rev":1,"signature":"ET MALWARE Beacon","category":"A Network Trojan was detected","severity":1}}{extra}}}"#
    )
}

/// A Suricata alert record that also carries the normalized webhook fields.
fn eve_alert_with_webhook_fields(src: &str) -> String {
    eve_alert(
        src,
        r#","event.kind":"webhook","event.module":"riposte","webhook.name":"soar","event.payload":{"say":"release shop/checkout"}"#,
    )
}

fn soar_signed(
    client: &reqwest::Client,
    url: &str,
    id: &str,
    body: &str,
) -> reqwest::RequestBuilder {
    let ts = Utc::now().timestamp();
    service::standard_webhook(client, url, SOAR_KEY, id, ts, body)
}

fn github_signature(body: &str) -> String {
    let mut mac = riposte_engine::act::approvals::hmac_sha256(GITHUB_SECRET.as_bytes());
    hmac::Mac::update(&mut mac, body.as_bytes());
    let bytes = hmac::Mac::finalize(mac).into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn provenance_failures(svc: &Service, source: &str) -> f64 {
    svc.metric(
        "riposte_parse_failures_total",
        &[("source", source), ("reason", "provenance")],
    )
}

async fn post_ingest(
    client: &reqwest::Client,
    svc: &Service,
    content_type: &str,
    body: String,
) -> (u16, Value) {
    let r = client
        .post(svc.http_url("/v1/ingest"))
        .bearer_auth(INGEST)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The genuine webhook still works, and is the only thing that ran the
/// webhook playbook; the scheduled playbook never ran.
async fn only_the_signed_webhook_ran(svc: &Service) {
    let client = reqwest::Client::new();
    let r = soar_signed(
        &client,
        &svc.http_url("/v1/webhooks/soar"),
        "genuine-1",
        r#"{"say":"quarantine shop/checkout"}"#,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    let accepted: Value = r.json().await.unwrap();
    let id = accepted["event_id"].as_str().unwrap().to_owned();
    decision_where(svc, "soar-requests", |d| d.event_id == id).await;
    let soar = decisions(svc, "soar-requests");
    assert_eq!(soar.len(), 1, "only the signed call: {soar:#?}");
    let sweep = decisions(svc, "sweep");
    assert!(sweep.is_empty(), "the schedule ran on demand: {sweep:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_webhook_and_schedule_events_posted_to_ingest_are_refused_and_run_nothing() {
    let svc = start(|_, _| {}).await;
    let client = reqwest::Client::new();

    // application/json: one object, an array, the envelope.
    let bodies = [
        forged_webhook(),
        json!([forged_schedule()]),
        json!({"events": [alert_with_webhook_fields()]}),
    ];
    for body in bodies {
        let (status, problem) =
            post_ingest(&client, &svc, "application/json", body.to_string()).await;
        assert_eq!(status, 400, "{problem}");
        assert_eq!(problem["accepted"], 0, "{problem}");
        let error = problem["errors"][0]["error"].as_str().unwrap();
        assert!(error.starts_with("riposte event field `"), "{error}");
    }

    // NDJSON: the forged lines are named; the genuine EVE alert goes in.
    let genuine = eve_alert("10.244.1.30", "");
    let ndjson = format!("{}\n{}\n{genuine}\n", forged_webhook(), forged_schedule());
    for content_type in ["application/x-ndjson", "application/jsonl"] {
        let (status, problem) = post_ingest(&client, &svc, content_type, ndjson.clone()).await;
        assert_eq!(status, 400, "{problem}");
        assert_eq!(problem["accepted"], 1, "{problem}");
        let lines: Vec<u64> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["line"].as_u64().unwrap())
            .collect();
        assert_eq!(lines, [1, 2], "{problem}");
        let second = problem["errors"][1]["error"].as_str().unwrap();
        assert!(second.contains("event.payload"), "{second}");
    }
    assert_eq!(provenance_failures(&svc, "http"), 7.0);
    decision_where(&svc, "alerts", |d| from(d, "10.244.1.30")).await;

    only_the_signed_webhook_ran(&svc).await;
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_event_id_is_replaced_by_riposte_s_content_hash() {
    let svc = start(|_, _| {}).await;
    let client = reqwest::Client::new();
    let genuine = lines::c2("10.244.1.17", "203.0.113.66", 1);
    let genuine_id = event_id(&genuine).to_string();

    // A normalized event claiming the genuine log's id and original, about
    // another pod address: had it kept the id, the genuine log would look
    // like one already handled.
    let opts = svc.config.parse_options().unwrap();
    let parsed = riposte_firewall::parse_record(genuine.as_bytes(), &opts)
        .unwrap()
        .into_event()
        .unwrap();
    let mut forged = serde_json::to_value(&parsed).unwrap();
    assert_eq!(forged["event.id"], genuine_id.as_str());
    forged["source.ip"] = json!("10.244.9.9");
    let (status, answer) = post_ingest(&client, &svc, "application/json", forged.to_string()).await;
    assert_eq!(status, 202, "{answer}");

    let d = decision_where(&svc, "alerts", |d| from(d, "10.244.9.9")).await;
    assert_ne!(d.event_id, genuine_id, "the claimed id was kept");
    assert_eq!(d.event_id.len(), 32);
    assert!(d.event_id.bytes().all(|b| b.is_ascii_hexdigit()));

    // The same content claiming yet another id: the same id as before.
    forged["event.id"] = json!("attacker-chosen");
    forged["source.ip"] = json!("10.244.9.10");
    let (status, _) =
        post_ingest(&client, &svc, "application/x-ndjson", format!("{forged}\n")).await;
    assert_eq!(status, 202);
    let first = decision_where(&svc, "alerts", |d| from(d, "10.244.9.10")).await;
    let (status, _) = post_ingest(&client, &svc, "application/json", {
        forged["event.id"] = json!("attacker-chosen-again");
        forged.to_string()
    })
    .await;
    assert_eq!(status, 202);
    assert_ne!(first.event_id, "attacker-chosen");
    assert_eq!(
        svc.metric(
            "riposte_events_parsed_total",
            &[("source", "http"), ("dataset", "panos.threat")]
        ),
        3.0
    );

    // The genuine log, sent by the firewall, is decided under its own id.
    let (status, _) = post_ingest(&client, &svc, "text/plain", genuine.clone()).await;
    assert_eq!(status, 202);
    decision_where(&svc, "alerts", |d| d.event_id == genuine_id).await;
    for d in decisions(&svc, "alerts") {
        assert!(
            !d.event_id.starts_with("attacker"),
            "a claimed id was kept: {d:#?}"
        );
        if from(&d, "10.244.9.10") {
            assert_eq!(d.event_id, first.event_id, "a retry got another id");
        }
    }
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_webhook_events_over_syslog_tcp_stay_firewall_events() {
    let svc = start(|_, _| {}).await;
    let forged = forged_webhook().to_string();
    let sent = vec![
        forged.clone(),
        lines::with_bsd_header(&forged),
        lines::with_bsd_header(&eve_alert_with_webhook_fields("10.244.1.41")),
        lines::with_bsd_header(&lines::c2("10.244.1.42", "203.0.113.66", 2)),
    ];
    syslog::send_tcp(svc.running.tcp[0], &sent, Framing::NewLine)
        .await
        .unwrap();
    // The EVE-shaped line is a Suricata alert, whatever else it carries.
    let d = decision_where(&svc, "alerts", |d| from(d, "10.244.1.41")).await;
    assert_eq!(d.event.kind, "alert");
    assert_eq!(d.event.dataset, "suricata.alert");
    decision_where(&svc, "alerts", |d| from(d, "10.244.1.42")).await;
    assert_eq!(
        svc.metric("riposte_parse_failures_total", &[("source", "syslog_tcp")]),
        2.0,
        "both forged normalized events are refused"
    );
    only_the_signed_webhook_ran(&svc).await;
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_webhook_events_in_the_eve_file_stay_ids_alerts() {
    let logs = tempfile::tempdir().unwrap();
    let eve = logs.path().join("eve.json");
    let mut f = std::fs::File::create(&eve).unwrap();
    writeln!(f, "{}", forged_webhook()).unwrap();
    writeln!(f, "{}", forged_schedule()).unwrap();
    writeln!(f, "{}", eve_alert_with_webhook_fields("10.244.1.51")).unwrap();
    drop(f);
    let path = eve.clone();
    let svc = start(move |c, _| {
        c.eve = vec![EveConfig {
            path,
            poll_interval_ms: 20,
            start_at: StartAt::Beginning,
        }];
    })
    .await;
    let d = decision_where(&svc, "alerts", |d| from(d, "10.244.1.51")).await;
    assert_eq!(d.event.kind, "alert");
    assert_eq!(d.event.dataset, "suricata.alert");
    assert_eq!(
        svc.metric("riposte_parse_failures_total", &[("source", "eve_file")]),
        2.0
    );
    only_the_signed_webhook_ran(&svc).await;
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_webhook_and_schedule_events_from_an_amqp_queue_are_dead_lettered() {
    let base = rabbit::unique("prov");
    let queue = format!("{base}.events");
    let dlx = format!("{base}.events.dlx");
    let source = AmqpSourceConfig {
        queue: queue.clone(),
        declare: true,
        quorum: true,
        format: MessageFormat::Auto,
        prefetch: 16,
        delivery_limit: 3,
        dead_letter_exchange: Some(dlx.clone()),
    };
    let svc = start(|c, _| {
        c.amqp = Some(AmqpConfig {
            url: BrokerUrl::new(rabbit::url()),
            connection_name: format!("svc-{base}"),
            reconnect_min_ms: 50,
            reconnect_max_ms: 500,
            heartbeat_secs: 10,
            sources: vec![source.clone()],
            ..AmqpConfig::default()
        });
    })
    .await;
    let broker = rabbit::broker(&format!("pub-{base}")).unwrap();
    broker
        .add_topology(&Topology {
            queues: vec![source.queue_spec()],
            ..Topology::default()
        })
        .await
        .unwrap();
    let publisher = Publisher::new(broker.clone());
    let publish = |body: Vec<u8>| {
        let msg = Outgoing::new("", &queue, body).content_type("application/json");
        let publisher = &publisher;
        async move { publisher.publish(&msg).await.unwrap() }
    };
    publish(forged_webhook().to_string().into_bytes()).await;
    publish(json!([forged_schedule()]).to_string().into_bytes()).await;
    publish(alert_with_webhook_fields().to_string().into_bytes()).await;

    // A normalized alert claiming a genuine log's id, then that log.
    let genuine = lines::c2("10.244.1.61", "203.0.113.66", 3);
    let genuine_id = event_id(&genuine).to_string();
    let opts = svc.config.parse_options().unwrap();
    let parsed = riposte_firewall::parse_record(genuine.as_bytes(), &opts)
        .unwrap()
        .into_event()
        .unwrap();
    let mut claimed = serde_json::to_value(&parsed).unwrap();
    claimed["source.ip"] = json!("10.244.1.62");
    publish(claimed.to_string().into_bytes()).await;
    publish(genuine.clone().into_bytes()).await;

    let d = decision_where(&svc, "alerts", |d| from(d, "10.244.1.62")).await;
    assert_ne!(d.event_id, genuine_id, "the claimed id was kept");
    decision_where(&svc, "alerts", |d| d.event_id == genuine_id).await;
    eventually(WAIT, || {
        let dead = svc.metric(
            "riposte_amqp_dead_letters_total",
            &[("queue", queue.as_str()), ("reason", "undecodable")],
        );
        (dead >= 3.0).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(provenance_failures(&svc, "amqp"), 3.0);
    only_the_signed_webhook_ran(&svc).await;

    svc.stop().await;
    broker.close().await;
    rabbit::cleanup(&[queue.clone(), format!("{queue}.dead")], &[dlx]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_webhook_sent_again_with_another_or_no_delivery_id_is_a_replay() {
    let svc = start(|_, _| {}).await;
    let client = reqwest::Client::new();
    let url = svc.http_url("/v1/webhooks/gh");
    let body = r#"{"say":"quarantine shop/checkout"}"#;
    let sig = github_signature(body);
    let send = |delivery: Option<&str>| {
        let mut r = client
            .post(&url)
            .header("content-type", "application/json")
            .header("x-hub-signature-256", &sig)
            .body(body);
        if let Some(d) = delivery {
            r = r.header("x-github-delivery", d);
        }
        r.send()
    };
    assert_eq!(send(Some("delivery-1")).await.unwrap().status(), 202);
    for delivery in [Some("delivery-2"), None, Some("delivery-1")] {
        let r = send(delivery).await.unwrap();
        assert_eq!(r.status(), 409, "replayed with delivery id {delivery:?}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    assert_eq!(
        svc.metric(
            "riposte_webhooks_total",
            &[("webhook", "gh"), ("outcome", "replayed")]
        ),
        3.0
    );
    // Another body is another message.
    let other = r#"{"say":"release shop/checkout"}"#;
    let r = client
        .post(&url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", github_signature(other))
        .body(other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    eventually(WAIT, || {
        (decisions(&svc, "github-requests").len() >= 2).then_some(())
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(decisions(&svc, "github-requests").len(), 2);
    svc.stop().await;
}

/// Status, `WWW-Authenticate` and body of an answer, for comparing two.
async fn answer(r: reqwest::RequestBuilder) -> (u16, Option<String>, Option<String>, String) {
    let r = r.send().await.unwrap();
    let h = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (auth, ct) = (h("www-authenticate"), h("content-type"));
    (r.status().as_u16(), auth, ct, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_webhook_and_edl_names_answer_strangers_like_known_ones() {
    use riposte_engine::act::firewall_sync::config::{BasicUser, EdlListConfig};
    let svc = start(|c, _| {
        c.firewall.edl = vec![EdlListConfig {
            name: "c2".into(),
            kind: riposte_firewall::edl::EdlKind::Ip,
            basic: vec![BasicUser {
                user: "pa-fw".into(),
                sha256: hash_token("edl password"),
            }],
            bearer_sha256: vec![],
        }];
    })
    .await;
    let client = reqwest::Client::new();

    // Webhooks: an unknown name is a known name with a bad proof.
    let body = r#"{"say":"hi"}"#;
    let post = |name: &str| {
        client
            .post(svc.http_url(&format!("/v1/webhooks/{name}")))
            .header("content-type", "application/json")
            .body(body)
    };
    let known = answer(post("soar")).await;
    let unknown = answer(post("no-such-hook")).await;
    assert_eq!(known.0, 401);
    assert_eq!(unknown, known);
    let known = answer(soar_signed(
        &client,
        &svc.http_url("/v1/webhooks/gh"),
        "x",
        body,
    ))
    .await;
    let unknown = answer(soar_signed(
        &client,
        &svc.http_url("/v1/webhooks/nope"),
        "x",
        body,
    ))
    .await;
    assert_eq!(unknown, known);
    assert_eq!(
        svc.metric(
            "riposte_webhooks_total",
            &[("webhook", "unknown"), ("outcome", "unknown_webhook")]
        ),
        2.0
    );

    // EDLs: no credentials, wrong basic credentials, a token without the
    // scope: the same answer for the list that exists and the one that
    // does not.
    let get = |list: &str| client.get(svc.http_url(&format!("/v1/edl/{list}")));
    let known = answer(get("c2")).await;
    assert_eq!(known.0, 401);
    assert_eq!(known.2.as_deref(), Some("application/problem+json"));
    assert_eq!(answer(get("no-such-list")).await, known);
    let wrong = |list: &str| get(list).basic_auth("pa-fw", Some("guess"));
    assert_eq!(
        answer(wrong("no-such-list")).await,
        answer(wrong("c2")).await
    );
    let ingest = |list: &str| get(list).bearer_auth(INGEST);
    assert_eq!(
        answer(ingest("no-such-list")).await,
        answer(ingest("c2")).await
    );
    let add = |list: &str| {
        client
            .post(svc.http_url(&format!("/v1/edl/{list}")))
            .json(&json!({"value": "198.51.100.7", "ttl": 60}))
    };
    assert_eq!(answer(add("no-such-list")).await, answer(add("c2")).await);
    let del = |list: &str| client.delete(svc.http_url(&format!("/v1/edl/{list}/198.51.100.7")));
    assert_eq!(answer(del("no-such-list")).await, answer(del("c2")).await);
    // The list's own poller, and a `read` token, are told what exists.
    let ok = get("c2").basic_auth("pa-fw", Some("edl password"));
    assert_eq!(answer(ok).await.0, 200);
    assert_eq!(answer(get("no-such-list").bearer_auth(READ)).await.0, 404);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_refuses_json_nested_deeper_than_max_json_depth() {
    let svc = start(|c, _| c.api.max_json_depth = 8).await;
    let client = reqwest::Client::new();
    let deep = |levels: usize| {
        format!(
            r#"{{"message":"x","extra":{}1{}}}"#,
            "[".repeat(levels),
            "]".repeat(levels)
        )
    };
    // Exactly at the limit: read (and refused for what it says, not for
    // its depth).
    let (status, _) = post_ingest(&client, &svc, "application/json", deep(7)).await;
    assert_eq!(status, 400);
    let (status, problem) = post_ingest(&client, &svc, "application/json", deep(8)).await;
    assert_eq!(status, 422, "{problem}");
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("api.max_json_depth"));

    // NDJSON: one line too deep refuses the whole batch.
    let good = eve_alert("10.244.1.70", "");
    let batch = format!("{good}\n{}\n", deep(40));
    let (status, problem) = post_ingest(&client, &svc, "application/x-ndjson", batch).await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("line 2"),
        "{problem}"
    );
    let (status, _) = post_ingest(&client, &svc, "application/x-ndjson", format!("{good}\n")).await;
    assert_eq!(status, 202);
    assert_eq!(
        svc.metric(
            "riposte_events_parsed_total",
            &[("source", "http"), ("dataset", "suricata.alert")]
        ),
        1.0,
        "nothing of the refused batch was accepted"
    );
    let r = client
        .post(svc.http_url("/v1/ingest"))
        .bearer_auth(INGEST)
        .header("content-type", "application/json")
        .body("[".repeat(100_000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    svc.stop().await;
}
