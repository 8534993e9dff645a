//! A `kill -9` of the real `riposte serve` in the middle of a storm, then a
//! restart (issue 13): nothing the service decided is lost, nothing is
//! counted twice, and nothing stays in flight.
//!
//! Thousands of C2 logs from three pods to two C2 addresses go over TCP
//! syslog to the shipped `c2-quarantine` playbook (one decision per event),
//! which notifies a SOAR receiver through the outbox. The process is killed
//! with SIGKILL once some of them are durable, while the logs still pour
//! in; after the restart the sender
//! replays the whole storm, as a relay does after an outage (event ids are
//! content hashes, so the replayed events are recognised). Then, through
//! the API: the counts of the audit records add up to exactly the events
//! sent, every event id finds its record with `GET /v1/audit?event_id=`,
//! no action is left `queued`, and every notification the audit says was
//! written to the outbox (or counted into an incident written there) was
//! delivered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use riposte_engine::auth::hash_token;
use riposte_firewall::{parse_record, ParseOptions, Parsed};
use riposte_standins::lines;
use riposte_standins::metrics::value;
use riposte_standins::soar_receiver::SoarReceiver;
use riposte_standins::syslog::{self, Framing};

const EVENTS: u64 = 4_000;
const PODS: [&str; 3] = ["10.244.1.17", "10.244.2.17", "10.244.3.17"];
const C2: [&str; 2] = ["203.0.113.66", "198.51.100.99"];
const TOKEN: &str = "storm-read-token";
const WAIT: Duration = Duration::from_secs(120);

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    riposte_standins::ports::free_port().expect("a free port")
}

fn config(dir: &Path, tcp: u16, http: u16, soar: &str) -> std::path::PathBuf {
    let inventory = dir.join("pods.json");
    let pods: Vec<serde_json::Value> = PODS
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            serde_json::json!({"namespace": "shop", "name": format!("app{i}-7d9f8b6c5-x2k4q"),
                "ips": [ip], "labels": {"app": format!("app{i}")},
                "owner_kind": "Deployment", "owner_name": format!("app{i}")})
        })
        .collect();
    std::fs::write(&inventory, serde_json::to_string(&pods).unwrap()).unwrap();
    let playbooks = dir.join("playbooks");
    std::fs::create_dir_all(&playbooks).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../playbooks/c2-quarantine.rhai"
        ),
        playbooks.join("c2-quarantine.rhai"),
    )
    .unwrap();
    let path = dir.join("riposte.toml");
    let mut f = std::fs::File::create(&path).unwrap();
    write!(
        f,
        r#"data_dir = "{data}"

[log]
level = "warn"

[syslog.udp]
listen = []

[syslog.tcp]
listen = ["127.0.0.1:{tcp}"]

[http]
listen = "127.0.0.1:{http}"

[playbooks]
dir = "{playbooks}"
watch = false

[kubernetes]
mode = "off"

[pods]
inventory_file = "{inventory}"

[notify]
poll_interval_ms = 50

[[notify.targets]]
name = "soar"
url = "{soar}"
format = "webhook"
allow_private = true

[[api.tokens]]
name = "soc"
sha256 = "{hash}"
scopes = ["read"]
"#,
        data = dir.join("data").display(),
        playbooks = playbooks.display(),
        inventory = inventory.display(),
        hash = hash_token(TOKEN),
    )
    .unwrap();
    path
}

fn start(config: &Path) -> Serve {
    Serve(
        Command::new(env!("CARGO_BIN_EXE_riposte"))
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("riposte serve starts"),
    )
}

async fn ready(client: &reqwest::Client, http: u16) {
    let deadline = Instant::now() + WAIT;
    loop {
        let ok = client
            .get(format!("http://127.0.0.1:{http}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "riposte serve never became ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn metric(client: &reqwest::Client, http: u16, name: &str) -> f64 {
    let text = client
        .get(format!("http://127.0.0.1:{http}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    value(&text, name, &[])
}

async fn audit(client: &reqwest::Client, http: u16, query: &str) -> serde_json::Value {
    let r = client
        .get(format!("http://127.0.0.1:{http}/v1/audit?{query}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{query}: {}", r.status());
    r.json().await.unwrap()
}

/// Every record of the c2 playbook, through the API's pages.
async fn records(client: &reqwest::Client, http: u16) -> Vec<serde_json::Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = "playbook=c2-quarantine&limit=1000".to_string();
        if let Some(c) = &cursor {
            q.push_str(&format!("&cursor={c}"));
        }
        let page = audit(client, http, &q).await;
        all.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return all,
        }
    }
}

fn counted(records: &[serde_json::Value]) -> u64 {
    records
        .iter()
        .map(|r| r["count"].as_u64().unwrap_or(0))
        .sum()
}

/// Sends `lines` in chunks of 200 on fresh connections, stopping at the
/// first failure (the process is gone).
async fn send(tcp: SocketAddr, lines: Vec<String>) {
    for chunk in lines.chunks(200) {
        if syslog::send_tcp(tcp, chunk, Framing::OctetCounting)
            .await
            .is_err()
        {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_mid_storm_and_a_restart_lose_nothing_and_count_every_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let rx = SoarReceiver::start().await.unwrap();
    let (tcp, http) = (free_port(), free_port());
    let config = config(dir.path(), tcp, http, &rx.url("/hook"));
    let tcp_addr: SocketAddr = ([127, 0, 0, 1], tcp).into();
    let storm: Vec<String> = (0..EVENTS)
        .map(|i| {
            let src = PODS[(i % 3) as usize];
            let c2 = C2[((i / 3) % 2) as usize];
            lines::with_bsd_header(&lines::c2(src, c2, i))
        })
        .collect();
    let ids: BTreeSet<String> = storm
        .iter()
        .map(
            |l| match parse_record(l.as_bytes(), &ParseOptions::default()) {
                Ok(Parsed::Event(ev)) => ev.id.to_string(),
                other => panic!("{l}: {other:?}"),
            },
        )
        .collect();
    assert_eq!(ids.len() as u64, EVENTS, "distinct events");
    let client = reqwest::Client::new();

    let mut serve = start(&config);
    ready(&client, http).await;
    let sender = tokio::spawn(send(tcp_addr, storm.clone()));
    // Mid-storm: some events durable in the audit trail, the logs still
    // coming and more decided than written.
    let deadline = Instant::now() + WAIT;
    let durable_at_kill = loop {
        let durable = metric(&client, http, "riposte_audit_coalesced_total").await;
        if durable >= (EVENTS / 8) as f64 {
            break durable;
        }
        assert!(Instant::now() < deadline, "{durable} events durable so far");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    serve.0.kill().unwrap(); // SIGKILL
    serve.0.wait().unwrap();
    let _ = sender.await;
    assert!(
        durable_at_kill < EVENTS as f64,
        "killed mid-storm ({durable_at_kill} of {EVENTS} events durable)"
    );

    // The restart, and the sender replays the whole storm.
    let serve = start(&config);
    ready(&client, http).await;
    send(tcp_addr, storm).await;
    let deadline = Instant::now() + WAIT;
    let all = loop {
        let r = records(&client, http).await;
        if counted(&r) >= EVENTS || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // Exactly every event once: the replayed ones decided before the kill
    // are recognised, none is missing.
    assert_eq!(counted(&all), EVENTS, "{} records", all.len());
    let duplicates = metric(&client, http, "riposte_audit_duplicates_total").await;
    assert!(
        duplicates > 0.0,
        "events recorded before the kill are recognised when replayed"
    );
    assert!(
        all.len() < 100,
        "coalesced: {} records for {EVENTS} events",
        all.len()
    );
    // Every event id finds the record it was counted in.
    for id in &ids {
        let page = audit(&client, http, &format!("event_id={id}")).await;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        assert_eq!(items.len(), 1, "event {id}: {page}");
        assert_eq!(items[0]["playbook"], "c2-quarantine");
    }
    // Nothing stays in flight: the decisions the killed process left
    // dispatching are completed at start.
    let deadline = Instant::now() + WAIT;
    loop {
        let r = records_settled(&client, http).await;
        if r.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still in flight after the restart: {r:#?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Every notification the audit trail says was written to the outbox
    // reached the SOAR: none lost with the process.
    let settled = records(&client, http).await;
    let notify_rows: Vec<&serde_json::Value> = settled
        .iter()
        .flat_map(|r| r["actions"].as_array().into_iter().flatten())
        .filter(|a| a["action"] == "notify")
        .collect();
    let written: BTreeSet<String> = settled
        .iter()
        .flat_map(|r| r["actions"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["action"] == "notify" && a["status"] == "applied")
        .filter_map(|a| {
            a["reason"]
                .as_str()
                // Written as ID, or counted into the open incident ID of its
                // subject (a replayed event's notification, after the restart,
                // joins the incident its first one opened). Recovery adds how
                // it found it: "ID (pending to soar; …)".
                .and_then(|r| {
                    r.strip_prefix("written to the outbox as ")
                        .or_else(|| r.strip_prefix("counted into incident "))
                })
                .and_then(|r| r.split_whitespace().next())
                .map(str::to_owned)
        })
        .collect();
    assert!(
        !written.is_empty(),
        "the playbook notified; its notify actions: {notify_rows:#?}"
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let pending = metric(&client, http, "riposte_notify_outbox_depth").await;
        if pending == 0.0 {
            break;
        }
        assert!(Instant::now() < deadline, "{pending} notifications pending");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delivered: BTreeSet<String> = rx.deliveries().iter().map(|d| d.id.clone()).collect();
    for id in &written {
        assert!(
            delivered.contains(id),
            "notification {id} was not delivered"
        );
    }
    drop(serve);
}

/// Records still dispatching, or with an action still `queued`.
async fn records_settled(client: &reqwest::Client, http: u16) -> Vec<serde_json::Value> {
    records(client, http)
        .await
        .into_iter()
        .filter(|r| {
            r["outcome"]["reason"] == "dispatching"
                || r["actions"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|a| a["status"] == "queued"))
        })
        .collect()
}
