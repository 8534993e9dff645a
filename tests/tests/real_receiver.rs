//! End to end with a real receiver: the Standard Webhooks reference library
//! (PyPI `standardwebhooks`, in `tests/receivers/standard_webhooks.py`)
//! verifies every notification Riposte sends, in every body format, across
//! a rotation of the signing secret, and rejects tampered ones.
//!
//! The rotation is the one the config documents: add the new secret (each
//! request then carries one `v1,` signature per secret), move the receiver
//! to the new secret, remove the old one. Each step is a config change
//! rolled out with a restart.
//!
//! The library comes from `.ci/real-tools` (a venv at
//! `$RIPOSTE_WEBHOOKS_VENV`, default `/var/tmp/riposte-standardwebhooks`);
//! without it the tests fail and say how to install it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use riposte_connectors::soar::signing::SigningKey;
use riposte_connectors::soar::{Format, Secret, SecretSource, TargetConfig};
use riposte_engine::store::{OutboxFilter, OutboxStatus};
use riposte_tests::lines;
use riposte_tests::service::{self, Service};
use riposte_tests::syslog::{self, Framing};
use tokio::io::AsyncBufReadExt;

const OLD: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NEW: &str = "whsec_cm90YXRlZC1zZWNyZXQtMjAyNi0xMi0wNg==";
const WAIT: Duration = Duration::from_secs(30);

/// The reference-library receiver, a Python child process with one secret.
struct Receiver {
    child: tokio::process::Child,
    port: u16,
    record: PathBuf,
    _dir: tempfile::TempDir,
}

/// One request as the receiver saw it, and the library's verdict.
#[derive(Debug, Clone)]
struct Record {
    ok: bool,
    error: Option<String>,
    id: String,
    path: String,
    headers: Vec<(String, String)>,
    content_type: String,
    body: Vec<u8>,
}

impl Receiver {
    async fn start(secret: &str) -> anyhow::Result<Receiver> {
        let venv = std::env::var_os("RIPOSTE_WEBHOOKS_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/tmp/riposte-standardwebhooks"));
        let python = venv.join("bin/python");
        assert!(
            python.exists(),
            "{} is missing: run .ci/real-tools (it installs the Standard Webhooks \
             reference library, PyPI standardwebhooks, into a venv at $RIPOSTE_WEBHOOKS_VENV)",
            python.display()
        );
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("receivers/standard_webhooks.py");
        let dir = tempfile::tempdir()?;
        let record = dir.path().join("requests.jsonl");
        let mut child = tokio::process::Command::new(python)
            .arg(script)
            .args(["--secret", secret, "--record"])
            .arg(&record)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut first = String::new();
        let mut reader = tokio::io::BufReader::new(stdout);
        tokio::time::timeout(WAIT, reader.read_line(&mut first)).await??;
        let port = first
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("the receiver said {first:?}, not `listening PORT`"))?;
        Ok(Receiver {
            child,
            port,
            record,
            _dir: dir,
        })
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn records(&self) -> Vec<Record> {
        let text = std::fs::read_to_string(&self.record).unwrap_or_default();
        text.lines().filter_map(parse_record).collect()
    }

    /// POSTs `record` (as tampered by the caller) and returns the status.
    async fn post(&self, record: &Record) -> anyhow::Result<u16> {
        let mut req = reqwest::Client::new()
            .post(format!("{}{}", self.base(), record.path))
            .header("content-type", &record.content_type)
            .body(record.body.clone());
        for (k, v) in &record.headers {
            req = req.header(k, v);
        }
        Ok(req.send().await?.status().as_u16())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn parse_record(line: &str) -> Option<Record> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let headers: Vec<(String, String)> = v["headers"]
        .as_object()?
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect();
    let id = headers
        .iter()
        .find(|(k, _)| k == "webhook-id")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    Some(Record {
        ok: v["ok"].as_bool()?,
        error: v["error"].as_str().map(str::to_owned),
        id,
        path: v["path"].as_str()?.to_owned(),
        headers,
        content_type: v["content_type"].as_str().unwrap_or_default().to_owned(),
        body: base64::engine::general_purpose::STANDARD
            .decode(v["body"].as_str()?)
            .ok()?,
    })
}

/// Every body format Riposte sends, each a target of its own name.
const FORMATS: [(&str, Format); 5] = [
    ("webhook", Format::Webhook),
    ("xsoar", Format::Xsoar),
    ("splunk_soar", Format::SplunkSoar),
    ("thehive", Format::Thehive),
    ("slack", Format::Slack),
];

/// A playbook that tells every target about each C2 log.
const NOTIFY_ALL: &str = r#"// name: notify-all
// description: Tells every receiver about each C2 log, in each body format.
// trigger: threat.type = spyware
// mode: enforce
let c2 = event.destination.ip;
let about = #{ title: `C2 traffic to ${c2}`, severity: "critical", event_id: event.id, c2: c2 };
notify("webhook", about);
notify("xsoar", about);
notify("splunk_soar", about);
notify("thehive", about);
notify("slack", about);
"#;

/// One target per format on the receiver at `base`, each at `/<name>`.
fn targets(base: &str, secrets: &[&str]) -> Vec<TargetConfig> {
    FORMATS
        .iter()
        .map(|(name, format)| {
            let mut t = TargetConfig::new(*name, format!("{base}/{name}"), *format);
            t.allow_private = true;
            t.signing_secrets = secrets
                .iter()
                .map(|s| SecretSource::Inline((*s).into()))
                .collect();
            t.retry_initial_ms = 20;
            t.retry_max_secs = 1;
            t
        })
        .collect()
}

async fn start(base: &str, secrets: &[&str]) -> anyhow::Result<Service> {
    let targets = targets(base, secrets);
    service::start_with(move |c, _| {
        if let Err(e) = service::add_playbook(c, "notify-all.rhai", NOTIFY_ALL) {
            panic!("writing the playbook: {e}");
        }
        c.notify.targets = targets;
        c.notify.poll_interval_ms = 50;
    })
    .await
}

/// C2 logs to `count` distinct C2 servers, `first` onwards.
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

/// Waits until the outbox holds at least `at_least` notifications, none of
/// them pending or dead, and the count has settled; returns their ids.
async fn all_delivered(svc: &Service, at_least: usize) -> anyhow::Result<BTreeSet<String>> {
    let deadline = std::time::Instant::now() + WAIT;
    let mut last = None;
    loop {
        let items = svc
            .running
            .store
            .outbox_list(&OutboxFilter {
                limit: Some(1000),
                ..Default::default()
            })
            .await?
            .items;
        let done =
            items.len() >= at_least && items.iter().all(|i| i.status == OutboxStatus::Delivered);
        let ids: BTreeSet<String> = items.into_iter().map(|i| i.id).collect();
        if done && last.as_ref() == Some(&ids) {
            return Ok(ids);
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "not every notification was delivered: {} in the outbox, wanted {at_least} all delivered",
            ids.len()
        );
        last = done.then_some(ids);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Every one of `ids` reached `rx` and the library verified it, and
/// nothing it received failed verification.
fn verified(rx: &Receiver, ids: &BTreeSet<String>) -> anyhow::Result<Vec<Record>> {
    let records = rx.records();
    let bad: Vec<&Record> = records.iter().filter(|r| !r.ok).collect();
    anyhow::ensure!(bad.is_empty(), "the library rejected: {bad:?}");
    let got: BTreeSet<String> = records.iter().map(|r| r.id.clone()).collect();
    anyhow::ensure!(
        ids.is_subset(&got),
        "not received: {:?}",
        ids.difference(&got).collect::<Vec<_>>()
    );
    Ok(records
        .into_iter()
        .filter(|r| ids.contains(&r.id))
        .collect())
}

fn signatures(r: &Record) -> usize {
    r.headers
        .iter()
        .find(|(k, _)| k == "webhook-signature")
        .map_or(0, |(_, v)| v.split(' ').count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_library_verifies_every_notification_across_a_secret_rotation(
) -> anyhow::Result<()> {
    // Before: one secret, a receiver on it.
    let old_rx = Receiver::start(OLD).await?;
    let svc = start(&old_rx.base(), &[OLD]).await?;
    send_c2(&svc, 0, 3).await?;
    let before = all_delivered(&svc, 3 * FORMATS.len()).await?;
    anyhow::ensure!(before.len() == 3 * FORMATS.len(), "{before:?}");
    let records = verified(&old_rx, &before)?;
    anyhow::ensure!(records.iter().all(|r| signatures(r) == 1), "{records:?}");
    let paths: BTreeSet<&str> = records.iter().map(|r| r.path.as_str()).collect();
    let every: BTreeSet<String> = FORMATS.iter().map(|(n, _)| format!("/{n}")).collect();
    anyhow::ensure!(
        paths.iter().map(|p| p.to_string()).collect::<BTreeSet<_>>() == every,
        "not every format was verified: {paths:?}"
    );

    // Step 1: Riposte signs with both; the receiver moves to the new one.
    let new_rx = Receiver::start(NEW).await?;
    let url = new_rx.base();
    let svc = svc
        .restart_with(|c| c.notify.targets = targets(&url, &[OLD, NEW]))
        .await?;
    send_c2(&svc, 3, 3).await?;
    let during: BTreeSet<String> =
        &all_delivered(&svc, before.len() + 3 * FORMATS.len()).await? - &before;
    let both = verified(&new_rx, &during)?;
    anyhow::ensure!(both.iter().all(|r| signatures(r) == 2), "{both:?}");
    // A receiver not yet moved accepts them too: no window of failures.
    for r in &both {
        anyhow::ensure!(
            old_rx.post(r).await? == 204,
            "the old-secret receiver refused {r:?}"
        );
    }

    // Step 2: the old secret is removed; only the new one verifies.
    let svc = svc
        .restart_with(|c| c.notify.targets = targets(&url, &[NEW]))
        .await?;
    send_c2(&svc, 6, 3).await?;
    let all = all_delivered(&svc, before.len() + during.len() + 3 * FORMATS.len()).await?;
    let after: BTreeSet<String> = &(&all - &before) - &during;
    let new_only = verified(&new_rx, &after)?;
    for r in &new_only {
        anyhow::ensure!(signatures(r) == 1, "{r:?}");
        anyhow::ensure!(
            old_rx.post(r).await? == 401,
            "the retired secret still verifies {r:?}"
        );
    }
    svc.stop().await;
    Ok(())
}

/// `record` with the header `name` set to `value` (removed when `None`).
fn with_header(record: &Record, name: &str, value: Option<String>) -> Record {
    let mut r = record.clone();
    r.headers.retain(|(k, _)| k != name);
    if let Some(v) = value {
        r.headers.push((name.to_owned(), v));
    }
    r
}

fn header(record: &Record, name: &str) -> String {
    record
        .headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_library_rejects_tampered_notifications() -> anyhow::Result<()> {
    let rx = Receiver::start(OLD).await?;
    let svc = start(&rx.base(), &[OLD]).await?;
    send_c2(&svc, 0, 1).await?;
    let ids = all_delivered(&svc, FORMATS.len()).await?;
    let genuine = verified(&rx, &ids)?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("nothing received"))?;
    svc.stop().await;
    // The untouched request still verifies (within the library's
    // five-minute window), so every 401 below is the tampering's doing.
    anyhow::ensure!(
        rx.post(&genuine).await? == 204,
        "the genuine request was refused"
    );

    let ts: i64 = header(&genuine, "webhook-timestamp").parse()?;
    let sig = header(&genuine, "webhook-signature");
    let mut body = genuine.clone();
    body.body.push(b' ');
    let mut flipped = sig.clone();
    let last = flipped
        .pop()
        .map_or('A', |c| if c == 'A' { 'B' } else { 'A' });
    flipped.push(last);
    let other = SigningKey::parse(&Secret::new(NEW))?;
    let own = SigningKey::parse(&Secret::new(OLD))?;
    let stale = ts - 3600;
    let tampered = [
        ("the body", body),
        (
            "the id",
            with_header(&genuine, "webhook-id", Some("msg_forged".into())),
        ),
        (
            "the timestamp",
            with_header(&genuine, "webhook-timestamp", Some((ts + 1).to_string())),
        ),
        (
            "the signature",
            with_header(&genuine, "webhook-signature", Some(flipped)),
        ),
        (
            "no signature",
            with_header(&genuine, "webhook-signature", None),
        ),
        (
            "another key",
            with_header(
                &genuine,
                "webhook-signature",
                Some(other.sign(&genuine.id, ts, &genuine.body)),
            ),
        ),
        (
            "a replay an hour old, signed with the right key",
            with_header(
                &with_header(&genuine, "webhook-timestamp", Some(stale.to_string())),
                "webhook-signature",
                Some(own.sign(&genuine.id, stale, &genuine.body)),
            ),
        ),
    ];
    for (what, r) in &tampered {
        let status = rx.post(r).await?;
        anyhow::ensure!(status == 401, "tampered ({what}) got {status}");
    }
    // Each rejection is the library's own, with its reason.
    let rejected: Vec<Record> = rx.records().into_iter().filter(|r| !r.ok).collect();
    anyhow::ensure!(rejected.len() == tampered.len(), "{rejected:?}");
    anyhow::ensure!(rejected.iter().all(|r| r.error.is_some()), "{rejected:?}");
    Ok(())
}
