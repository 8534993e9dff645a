//! `riposte` as an API client, as an operator runs it: the real binary
//! against the real service started in-process on loopback ports (with the
//! Kubernetes API and SOAR stand-ins where a command needs them). Every
//! subcommand, its output formats, its exit codes, and bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use riposte_connectors::kubernetes::ClusterMode;
use riposte_connectors::soar::{Format, NotifyOn, SecretSource, TargetConfig};
use riposte_engine::act::firewall_sync::config::EdlListConfig;
use riposte_engine::auth::{hash_token, Scope, TokenConfig};
use riposte_engine::config::Config;
use riposte_engine::serve::{self, Running};
use riposte_firewall::edl::EdlKind;
use riposte_standins::kube_api::KubeApiServer;
use riposte_standins::soar_receiver::{Behaviour, SoarReceiver};
use riposte_standins::syslog::{self, Framing};
use riposte_standins::{eventually, lines};
use serde_json::Value;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

const OPS: &str = "ops-token-with-every-scope";
const READER: &str = "read-only-dashboard-token";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WAIT: Duration = Duration::from_secs(20);

/// Puts a firewall tag up for approval and tells the SOAR about it.
const APPROVAL_PLAYBOOK: &str = r#"// name: c2-approval
// trigger: threat.type = spyware, threat.category = command-and-control, severity >= high
// mode: enforce
approve(tag_ip("203.0.113.66", "riposte-c2"), #{ timeout: "1h", on_timeout: "drop", reason: "beacon seen" });
notify("soar", #{ title: "C2 beacon: approve the block?" });
"#;

struct Svc {
    running: Running,
    dir: TempDir,
}

impl Svc {
    fn url(&self) -> String {
        format!("http://{}", self.running.http.unwrap())
    }

    /// Runs `riposte ARGS` against this service with the ops token.
    async fn cli(&self, args: &[&str]) -> Run {
        run(&self.url(), Some(OPS), args).await
    }

    async fn stop(self) {
        self.running.shutdown();
        self.running.wait().await;
    }
}

async fn start(adjust: impl FnOnce(&mut Config, &std::path::Path)) -> Svc {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config::default();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    c.data_dir = dir.path().join("data");
    c.syslog.udp.listen = vec![];
    c.syslog.tcp.listen = vec![any];
    c.http.listen = Some(any);
    let playbooks = dir.path().join("playbooks");
    std::fs::create_dir_all(&playbooks).unwrap();
    c.playbooks.dir = playbooks;
    c.playbooks.watch = false;
    c.kubernetes.mode = ClusterMode::Off;
    c.api.action_wait_ms = 3000;
    c.api.tokens = vec![
        TokenConfig {
            name: "ops".into(),
            sha256: hash_token(OPS),
            scopes: vec![Scope::Read, Scope::Act, Scope::Admin],
        },
        TokenConfig {
            name: "dashboard".into(),
            sha256: hash_token(READER),
            scopes: vec![Scope::Read],
        },
    ];
    adjust(&mut c, dir.path());
    c.validate().unwrap();
    let running = serve::start_role(
        c,
        riposte_engine::intake::queues::Role::All,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    Svc { running, dir }
}

/// What a run of the binary left.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "{self:?}");
        &self.stdout
    }

    fn json(&self) -> Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    /// An error as the issue asks for it: exit `code`, one line on stderr,
    /// no stack trace, no raw JSON.
    fn fails(&self, code: i32, says: &str) {
        assert_eq!(self.code, code, "{self:?}");
        let err = self.stderr.trim_end();
        assert!(err.contains(says), "{says:?} not in {err:?}");
        if code == 1 {
            assert_eq!(err.lines().count(), 1, "one line: {err:?}");
            assert!(err.starts_with("riposte: "), "{err:?}");
        }
        for noise in ["panicked", "backtrace", "{\"", "RUST_BACKTRACE"] {
            assert!(!err.contains(noise), "{noise} in {err:?}");
        }
    }
}

fn command(url: &str, token: Option<&str>, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_riposte"));
    cmd.args(args)
        .env("RIPOSTE_URL", url)
        .env("COLUMNS", "200")
        .env_remove("RIPOSTE_TOKEN");
    if let Some(t) = token {
        cmd.env("RIPOSTE_TOKEN", t);
    }
    cmd
}

async fn run(url: &str, token: Option<&str>, args: &[&str]) -> Run {
    let mut cmd = command(url, token, args);
    let out: Output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Polls `riposte ARGS` until its output satisfies `check`.
async fn until(svc: &Svc, args: &[&str], check: impl Fn(&Run) -> bool) -> Run {
    let deadline = Instant::now() + WAIT;
    loop {
        let r = svc.cli(args).await;
        if check(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "never: {args:?}: {r:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_quarantines_decisions_and_audit() {
    let kube = KubeApiServer::start().await.unwrap();
    kube.add_namespace("shop", &[]).unwrap();
    let web = kube
        .add_deployment("shop", "checkout", &[("app", "checkout")])
        .unwrap();
    let victim = kube.add_pod(web.pod("10.244.1.17")).unwrap()["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    kube.add_pod(web.pod("10.244.1.18")).unwrap();
    kube.add_pod(web.pod("10.244.1.19")).unwrap();
    let svc = start(|c, dir| {
        let path = dir.join("kubeconfig");
        kube.write_kubeconfig(&path).unwrap();
        c.kubernetes.mode = ClusterMode::Kubeconfig;
        c.kubernetes.kubeconfig = Some(path);
    })
    .await;
    eventually(WAIT, || svc.running.readiness.is_ready().then_some(()))
        .await
        .unwrap();
    let pod = format!("shop/{victim}");

    // Nothing quarantined yet.
    assert!(svc
        .cli(&["quarantines", "list"])
        .await
        .ok()
        .contains("no pod is quarantined"));

    // A dry run is judged and recorded, nothing applied.
    let dry = svc
        .cli(&[
            "actions",
            "request",
            "quarantine",
            &pod,
            "--ttl",
            "1h",
            "--dry-run",
            "-o",
            "json",
        ])
        .await
        .json();
    assert_eq!(dry["decision"]["mode"], "dry-run", "{dry}");

    // The real thing: quarantined through the guardrails.
    let done = svc
        .cli(&[
            "actions",
            "request",
            "quarantine",
            &pod,
            "--ttl",
            "1h",
            "--reason",
            "seen beaconing",
            "-o",
            "json",
        ])
        .await
        .json();
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(
        done["decision"]["actions"][0]["status"], "applied",
        "{done}"
    );
    let id = done["id"].as_str().unwrap().to_owned();
    let got = svc.cli(&["actions", "get", &id]).await;
    assert!(got.ok().contains(&id), "{got:?}");
    assert!(got.ok().contains("applied"), "{got:?}");

    // Listed as the cluster says, as a table, JSON and YAML.
    let table = until(&svc, &["quarantines", "list"], |r| {
        r.stdout.contains(&victim)
    })
    .await;
    assert!(table.stdout.starts_with("POD"), "{table:?}");
    assert!(table.stdout.contains("seen beaconing"), "{table:?}");
    let json = svc.cli(&["quarantines", "list", "-o", "json"]).await.json();
    assert_eq!(json["quarantines"][0]["pod"]["name"], victim.as_str());
    let yaml = svc.cli(&["quarantines", "list", "-o", "yaml"]).await;
    assert!(yaml.ok().contains("quarantines:"), "{yaml:?}");
    assert!(yaml.ok().contains(&victim), "{yaml:?}");

    // Released, and gone from the list.
    svc.cli(&["quarantines", "release", &pod]).await.ok();
    until(&svc, &["quarantines", "list"], |r| {
        !r.stdout.contains(&victim)
    })
    .await;
    svc.cli(&["quarantines", "release", &pod])
        .await
        .fails(1, "404 Not Found: pod");
    svc.cli(&["quarantines", "release", "no-slash"])
        .await
        .fails(2, "NAMESPACE/POD");
    svc.cli(&["actions", "request", "quarantine", &pod])
        .await
        .fails(2, "needs --ttl");
    svc.cli(&["actions", "request", "teleport", &pod])
        .await
        .fails(2, "not one of");
    // An action that fails is the request failing: exit 1, the table
    // still shows why, and stderr says it in one line.
    let failed = svc
        .cli(&[
            "actions",
            "request",
            "quarantine",
            "shop/no-such-pod",
            "--ttl",
            "1h",
        ])
        .await;
    assert_eq!(failed.code, 1, "{failed:?}");
    assert!(failed.stdout.contains("no such pod"), "{failed:?}");
    assert!(failed.stderr.starts_with("riposte: request "), "{failed:?}");
    assert_eq!(failed.stderr.lines().count(), 1, "{failed:?}");

    // The decisions of this replica, and the durable audit trail.
    let decisions = svc.cli(&["decisions", "--playbook", "api:ops"]).await;
    assert!(decisions.ok().contains("quarantine"), "{decisions:?}");
    svc.running.audit.flush().await.unwrap();
    let audit = svc
        .cli(&["audit", "--playbook", "api:ops", "--since", "1h"])
        .await;
    assert!(audit.ok().starts_with("AT"), "{audit:?}");
    assert!(audit.ok().contains(&victim), "{audit:?}");
    let by_target = svc
        .cli(&[
            "audit",
            "--target",
            &pod,
            "--outcome",
            "applied",
            "-o",
            "json",
        ])
        .await;
    let entries: Vec<Value> = by_target
        .ok()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(entries.len() >= 2, "quarantine and release: {by_target:?}");
    let event = svc
        .cli(&["audit", "--event", &format!("api-{id}"), "-o", "json"])
        .await;
    assert_eq!(event.ok().lines().count(), 1, "{event:?}");
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_streams_page_by_page_and_follows() {
    let svc = start(|_, _| {}).await;
    let http = reqwest::Client::new();
    let body = r#"{"intents":[{"action":"release","target":{"kind":"pod","namespace":"shop","name":"web-1"}}],"dry_run":true}"#;
    for _ in 0..45 {
        let r = http
            .post(format!("{}/v1/actions", svc.url()))
            .bearer_auth(OPS)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    svc.running.audit.flush().await.unwrap();
    let pages_before = audit_requests(&svc);
    let all = svc.cli(&["audit", "--page-size", "10", "-o", "json"]).await;
    let ids: Vec<i64> = all
        .ok()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(ids.len(), 45, "{all:?}");
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    // Five pages of ten: read one after the other, never all at once.
    assert_eq!(audit_requests(&svc) - pages_before, 5.0);
    // The table is one table across pages: one header.
    let table = svc.cli(&["audit", "--page-size", "7"]).await;
    assert_eq!(table.ok().matches("PLAYBOOK").count(), 1, "{table:?}");
    assert_eq!(table.ok().lines().count(), 46);
    // Piped into `head`: the closed pipe ends it quietly.
    let mut cmd = command(&svc.url(), Some(OPS), &["audit", "--page-size", "5"]);
    let head = tokio::task::spawn_blocking(move || {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        drop(out);
        let status = child.wait_with_output().unwrap();
        (first, status)
    })
    .await
    .unwrap();
    assert!(head.0.starts_with("AT"), "{head:?}");
    assert!(
        !String::from_utf8_lossy(&head.1.stderr).contains("panicked"),
        "{head:?}"
    );

    // --follow: the last few, then each new one as it is recorded.
    let mut cmd = command(
        &svc.url(),
        Some(OPS),
        &[
            "audit",
            "--follow",
            "--limit",
            "2",
            "--interval",
            "1",
            "-o",
            "json",
        ],
    );
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let first: Vec<String> = (0..2).map(|_| rx.recv_timeout(WAIT).unwrap()).collect();
    let newest = serde_json::from_str::<Value>(&first[1]).unwrap()["id"]
        .as_i64()
        .unwrap();
    assert_eq!(newest, ids[0], "oldest first, ending with the newest");
    let r = http
        .post(format!("{}/v1/actions", svc.url()))
        .bearer_auth(OPS)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    svc.running.audit.flush().await.unwrap();
    let next = tokio::task::spawn_blocking(move || rx.recv_timeout(WAIT))
        .await
        .unwrap()
        .unwrap();
    let next_id = serde_json::from_str::<Value>(&next).unwrap()["id"]
        .as_i64()
        .unwrap();
    assert!(next_id > newest, "{next}");
    child.kill().unwrap();
    child.wait().unwrap();
    svc.stop().await;
}

fn audit_requests(svc: &Svc) -> f64 {
    let text = svc.running.metrics_text();
    text.lines()
        .filter(|l| l.starts_with("riposte_api_requests_total") && l.contains("/v1/audit"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn send_c2(svc: &Svc, first: u64, count: u64) {
    let lines: Vec<String> = (first..first + count)
        .map(|i| {
            lines::with_bsd_header(&lines::c2(
                "10.244.1.17",
                &format!("203.0.113.{}", 1 + i),
                1000 + i,
            ))
        })
        .collect();
    syslog::send_tcp(svc.running.tcp[0], &lines, Framing::OctetCounting)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_outbox_and_playbooks() {
    let rx = SoarReceiver::builder()
        .secret(SECRET)
        .start()
        .await
        .unwrap();
    // The first notification is refused for good (dead-lettered), then the
    // receiver takes them.
    rx.script([Behaviour::Status(403)]);
    let mut t = TargetConfig::new("soar", rx.url("/soar"), Format::Webhook);
    t.allow_private = true;
    t.signing_secrets = vec![SecretSource::Inline(SECRET.into())];
    t.timeout_secs = 1;
    t.retry_initial_ms = 20;
    t.retry_max_secs = 1;
    t.concurrency = 1;
    t.on = vec![NotifyOn::Notify, NotifyOn::Approval];
    let svc = start(move |c, _| {
        std::fs::write(c.playbooks.dir.join("c2-approval.rhai"), APPROVAL_PLAYBOOK).unwrap();
        c.notify.targets = vec![t];
        c.notify.poll_interval_ms = 50;
    })
    .await;

    // Playbooks: listed, dry-run on an event `riposte parse` made.
    let list = svc.cli(&["playbooks", "list"]).await;
    assert!(list.ok().contains("c2-approval"), "{list:?}");
    assert!(list.ok().contains("enforce"), "{list:?}");
    let log = svc.dir.path().join("c2.log");
    std::fs::write(&log, lines::c2("10.244.1.17", "203.0.113.66", 7)).unwrap();
    let parsed = run(&svc.url(), None, &["parse", log.to_str().unwrap()]).await;
    let event = svc.dir.path().join("event.json");
    std::fs::write(&event, parsed.ok().lines().next().unwrap()).unwrap();
    let dry = svc
        .cli(&[
            "playbooks",
            "dry-run",
            "c2-approval",
            "--event",
            event.to_str().unwrap(),
            "-o",
            "json",
        ])
        .await
        .json();
    assert_eq!(dry["matched"], true, "{dry}");
    assert_eq!(dry["decision"]["intents"][0]["action"], "approve", "{dry}");
    svc.cli(&[
        "playbooks",
        "dry-run",
        "nope",
        "--event",
        event.to_str().unwrap(),
    ])
    .await
    .fails(1, "404 Not Found: no playbook named `nope`");
    std::fs::write(&event, "{}").unwrap();
    svc.cli(&[
        "playbooks",
        "dry-run",
        "c2-approval",
        "--event",
        event.to_str().unwrap(),
    ])
    .await
    .fails(2, "not a normalized event");
    let reload = svc.cli(&["playbooks", "reload"]).await;
    assert!(reload.ok().contains("c2-approval"), "{reload:?}");
    std::fs::write(
        svc.dir.path().join("playbooks/broken.rhai"),
        "// name: broken\nlet x = ;",
    )
    .unwrap();
    let broken = svc.cli(&["playbooks", "reload"]).await;
    assert_eq!(broken.code, 1, "{broken:?}");
    assert!(broken.stdout.contains("refused"), "{broken:?}");
    std::fs::remove_file(svc.dir.path().join("playbooks/broken.rhai")).unwrap();
    run(&svc.url(), Some(READER), &["playbooks", "reload"])
        .await
        .fails(1, "403 Forbidden");

    // Two C2 beacons: two approvals waiting.
    send_c2(&svc, 0, 2).await;
    let waiting = until(&svc, &["approvals", "list", "-o", "json"], |r| {
        serde_json::from_str::<Value>(&r.stdout)
            .is_ok_and(|v| v.as_array().is_some_and(|a| a.len() == 2))
    })
    .await
    .json();
    let first = waiting[0]["id"].as_str().unwrap().to_owned();
    let second = waiting[1]["id"].as_str().unwrap().to_owned();
    let table = svc.cli(&["approvals", "list"]).await;
    assert!(table.ok().contains("tag_ip"), "{table:?}");
    assert!(svc
        .cli(&["approvals", "approve", &first])
        .await
        .ok()
        .contains("approved"));
    assert!(svc
        .cli(&["approvals", "deny", &second])
        .await
        .ok()
        .contains("denied"));
    svc.cli(&["approvals", "approve", &first])
        .await
        .fails(1, "409 Conflict: the approval is already approved");
    let all = svc
        .cli(&["approvals", "list", "--all", "-o", "json"])
        .await
        .json();
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert!(svc
        .cli(&["approvals", "list"])
        .await
        .ok()
        .contains("no approval is waiting"));

    // The outbox: one dead, replayed; filtered by status (the parameter the
    // OpenAPI document once named `state`).
    let dead = until(
        &svc,
        &["outbox", "list", "--status", "dead", "-o", "json"],
        |r| {
            serde_json::from_str::<Value>(&r.stdout)
                .is_ok_and(|v| v["items"].as_array().is_some_and(|a| !a.is_empty()))
        },
    )
    .await
    .json();
    let dead_id = dead["items"][0]["id"].as_str().unwrap().to_owned();
    let table = svc.cli(&["outbox", "list"]).await;
    assert!(table.ok().starts_with("ID"), "{table:?}");
    assert!(table.ok().contains(&dead_id), "{table:?}");
    let replayed = svc
        .cli(&["outbox", "replay", &dead_id, "-o", "json"])
        .await
        .json();
    assert_eq!(replayed[0]["status"], "pending", "{replayed}");
    until(
        &svc,
        &["outbox", "list", "--status", "dead", "-o", "json"],
        |r| {
            serde_json::from_str::<Value>(&r.stdout)
                .is_ok_and(|v| v["items"].as_array().is_some_and(Vec::is_empty))
        },
    )
    .await;
    let yaml = svc
        .cli(&["outbox", "list", "--status", "delivered", "-o", "yaml"])
        .await;
    assert!(yaml.ok().contains("status: delivered"), "{yaml:?}");

    // A 410 switches the target off; the client switches it back on.
    rx.set_gone(true);
    send_c2(&svc, 5, 1).await;
    let off = until(&svc, &["outbox", "list"], |r| r.stdout.contains("disabled")).await;
    assert!(off.stdout.contains("riposte outbox enable"), "{off:?}");
    rx.set_gone(false);
    let on = svc.cli(&["outbox", "enable", "soar"]).await;
    assert!(on.ok().contains("enabled"), "{on:?}");
    svc.cli(&["outbox", "enable", "nope"])
        .await
        .fails(1, "404 Not Found");
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edl_entries() {
    let svc = start(|c, _| {
        c.firewall.edl = vec![EdlListConfig {
            name: "c2".into(),
            kind: EdlKind::Ip,
            basic: vec![],
            bearer_sha256: vec![],
        }];
    })
    .await;
    assert!(svc
        .cli(&["edl", "list", "c2"])
        .await
        .ok()
        .contains("c2 is empty"));
    let added = svc
        .cli(&[
            "edl",
            "add",
            "c2",
            "192.0.2.1",
            "--ttl",
            "1h",
            "--reason",
            "C2 server",
        ])
        .await;
    assert!(added.ok().contains("192.0.2.1"), "{added:?}");
    // A CIDR holds a slash: it stays one path segment.
    svc.cli(&["edl", "add", "c2", "198.51.100.0/24"]).await.ok();
    let listed = svc.cli(&["edl", "list", "c2", "-o", "json"]).await.json();
    let values: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(values.contains(&"192.0.2.1"), "{listed}");
    assert!(
        values.iter().any(|v| v.starts_with("198.51.100.0")),
        "{listed}"
    );
    svc.cli(&["edl", "remove", "c2", "192.0.2.1"]).await.ok();
    svc.cli(&["edl", "remove", "c2", "198.51.100.0/24"])
        .await
        .ok();
    assert!(svc
        .cli(&["edl", "list", "c2"])
        .await
        .ok()
        .contains("c2 is empty"));
    svc.cli(&["edl", "add", "c2", "not-an-address"])
        .await
        .fails(1, "400 Bad Request");
    svc.cli(&["edl", "add", "c2", "192.0.2.1", "--ttl", "forever"])
        .await
        .fails(2, "--ttl");
    svc.cli(&["edl", "list", "nope"])
        .await
        .fails(1, "404 Not Found");
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_one_clear_line_and_the_right_exit_code() {
    let svc = start(|_, _| {}).await;
    let url = svc.url();
    run(&url, Some("wrong"), &["decisions"]).await.fails(
        1,
        "401 Unauthorized: valid credentials are required (check --token",
    );
    run(&url, None, &["decisions"]).await.fails(1, "401");
    run(&url, Some(READER), &["outbox", "replay", "x"])
        .await
        .fails(1, "403 Forbidden: the token lacks the `admin` scope");
    // The token from a file.
    let file = svc.dir.path().join("token");
    std::fs::write(&file, format!("{OPS}\n")).unwrap();
    run(
        &url,
        None,
        &["decisions", "--token-file", file.to_str().unwrap()],
    )
    .await
    .ok();
    run(
        &url,
        None,
        &["decisions", "--token-file", "/nonexistent/token"],
    )
    .await
    .fails(2, "cannot read the token file");

    // Nobody listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    run(
        &format!("http://127.0.0.1:{port}"),
        Some(OPS),
        &["quarantines", "list"],
    )
    .await
    .fails(1, "cannot reach");
    // https against a plain HTTP server, and a CA file that is not one.
    let https = url.replace("http://", "https://");
    run(&https, Some(OPS), &["decisions"]).await.fails(1, "TLS");
    run(
        &url,
        Some(OPS),
        &["decisions", "--ca-file", file.to_str().unwrap()],
    )
    .await
    .fails(2, "no PEM certificate");
    run("localhost:8080", Some(OPS), &["decisions"])
        .await
        .fails(2, "not an http:// or https:// URL");

    // Usage errors are clap's: exit 2.
    run(&url, Some(OPS), &["quarantines", "frobnicate"])
        .await
        .fails(2, "frobnicate");
    run(&url, Some(OPS), &["decisions", "--frobnicate"])
        .await
        .fails(2, "--frobnicate");
    run(&url, Some(OPS), &["decisions", "-o", "xml"])
        .await
        .fails(2, "xml");

    // Completions for the three shells.
    for shell in ["bash", "zsh", "fish"] {
        let r = run(&url, None, &["completions", shell]).await;
        assert!(r.ok().contains("quarantines"), "{shell}");
    }
    run(&url, None, &["completions", "tcsh"])
        .await
        .fails(2, "tcsh");
    svc.stop().await;
}

/// A CA and a server certificate for 127.0.0.1 made with the `openssl`
/// command; None when it is not installed.
fn openssl_certs(dir: &std::path::Path) -> Option<()> {
    let sh = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .ok()?;
    let ca = [
        &["req", "-x509"][..],
        &ec,
        &["-keyout", "ca.key", "-out", "ca.pem"],
        &["-subj", "/CN=test-ca", "-days", "1"],
    ]
    .concat();
    let csr = [
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "srv.key",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=localhost",
        ],
    ]
    .concat();
    let sign = [
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "1",
        "-extfile",
        "ext",
    ];
    (sh(&ca) && sh(&csr) && sh(&sign)).then_some(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_private_ca() {
    let certs = tempfile::tempdir().unwrap();
    if openssl_certs(certs.path()).is_none() {
        eprintln!("the openssl command is not available: the https client is not checked");
        return;
    }
    let dir = certs.path().to_owned();
    let svc = start(move |c, _| {
        c.http.tls_cert_file = Some(dir.join("srv.pem"));
        c.http.tls_key_file = Some(dir.join("srv.key"));
    })
    .await;
    let https = svc.url().replace("http://", "https://");
    let ca = certs.path().join("ca.pem");
    let ok = run(
        &https,
        Some(OPS),
        &["decisions", "--ca-file", ca.to_str().unwrap()],
    )
    .await;
    assert!(ok.ok().contains("no decision"), "{ok:?}");
    // Without the CA, and plain HTTP to the TLS port: one TLS line each.
    run(&https, Some(OPS), &["decisions"])
        .await
        .fails(1, "TLS with https://127.0.0.1");
    run(&svc.url(), Some(OPS), &["decisions"])
        .await
        .fails(1, "TLS with http://127.0.0.1");
    svc.stop().await;
}
