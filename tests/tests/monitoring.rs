//! The dashboard and alert rules of deploy/monitoring, checked against the
//! real tools and a real Riposte: `promtool check rules` and the rules' unit
//! tests; every metric the dashboard and the rules read is one a running
//! Riposte serves; and a real Prometheus (Debian's `prometheus` package, a
//! child process with its own config and storage) scrapes a running
//! Riposte with the shipped rules loaded and fires one of them.
//!
//! promtool and prometheus must be on PATH (`apt-get install -y
//! prometheus`; `.ci/run` installs it): without them these tests fail and
//! say so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use riposte_connectors::soar::{Format, NotifyOn, TargetConfig};
use riposte_engine::intake::queues::config::{AmqpConfig, PartitionConfig};
use riposte_engine::lint::yaml::{self, Node, Value};
use riposte_tests::kube_api::{KubeApiServer, PodFixture};
use riposte_tests::lines;
use riposte_tests::rabbit;
use riposte_tests::service::{self, use_cluster, Service};
use riposte_tests::soar_receiver::SoarReceiver;
use riposte_tests::syslog::{self, Framing};
use serde_json::Value as Json;

const MONITORING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/monitoring");
const CHART_FILES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/helm/riposte/files");
const RULES: &str = "riposte-alerts.yaml";
const RULE_TESTS: &str = "riposte-alerts.test.yaml";
const DASHBOARD: &str = "riposte-dashboard.json";
const WAIT: Duration = Duration::from_secs(20);

fn monitoring(file: &str) -> PathBuf {
    Path::new(MONITORING).join(file)
}

/// A tool of Debian's `prometheus` package, or a failure that says how to
/// get it.
fn tool(name: &str) -> PathBuf {
    let found = Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        found.is_ok_and(|s| s.success()),
        "`{name}` is not on PATH: install Debian's prometheus package \
         (`apt-get install -y prometheus`, as .ci/run does) to check deploy/monitoring"
    );
    PathBuf::from(name)
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run the tool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

fn parse_yaml(file: &Path) -> Json {
    let text = std::fs::read_to_string(file).unwrap();
    let docs = yaml::parse_documents(&text).unwrap_or_else(|e| panic!("{file:?}: {e}"));
    to_json(docs.into_iter().flatten().next().expect("one document"))
}

fn to_json(node: Node) -> Json {
    match node.value {
        Value::Scalar(s) => Json::String(s),
        Value::Sequence(items) => Json::Array(items.into_iter().map(to_json).collect()),
        Value::Mapping(entries) => Json::Object(
            entries
                .into_iter()
                .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), to_json(v)))
                .collect(),
        ),
    }
}

/// Every rule of the shipped file: (alert name, expression).
fn rules() -> Vec<(String, String)> {
    let doc = parse_yaml(&monitoring(RULES));
    let mut out = Vec::new();
    for group in doc["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            out.push((
                rule["alert"].as_str().unwrap().to_string(),
                rule["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

#[test]
fn the_rules_pass_promtool_and_every_rule_has_a_unit_test_that_fires_and_one_that_does_not() {
    let promtool = tool("promtool");
    let checked = run(Command::new(&promtool)
        .args(["check", "rules"])
        .arg(monitoring(RULES)));
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = run(Command::new(&promtool)
        .args(["test", "rules", RULE_TESTS])
        .current_dir(MONITORING));
    assert!(tested.contains("SUCCESS"), "{tested}");

    let tests = parse_yaml(&monitoring(RULE_TESTS));
    let (mut fires, mut quiet) = (BTreeSet::new(), BTreeSet::new());
    for t in tests["tests"].as_array().unwrap() {
        for case in t["alert_rule_test"].as_array().unwrap() {
            let name = case["alertname"].as_str().unwrap().to_string();
            match case["exp_alerts"].as_array() {
                Some(a) if !a.is_empty() => fires.insert(name),
                _ => quiet.insert(name),
            };
        }
    }
    let names: BTreeSet<String> = rules().into_iter().map(|(n, _)| n).collect();
    assert!(names.len() >= 8, "{names:?}");
    assert_eq!(fires, names, "rules with a case that fires");
    assert_eq!(quiet, names, "rules with a case that stays quiet");
}

#[test]
fn the_chart_ships_the_same_dashboard_and_rules() {
    for file in [RULES, DASHBOARD] {
        assert_eq!(
            std::fs::read_to_string(monitoring(file)).unwrap(),
            std::fs::read_to_string(Path::new(CHART_FILES).join(file)).unwrap(),
            "deploy/helm/riposte/files/{file} differs from deploy/monitoring/{file}: copy it over"
        );
    }
}

/// What Grafana needs to load the dashboard anywhere: panels with unique
/// ids that do not overlap on the grid, and every query on the data source
/// the user picks (a `datasource` variable, not a UID from this machine).
#[test]
fn the_dashboard_is_one_grafana_loads_on_any_prometheus() {
    let text = std::fs::read_to_string(monitoring(DASHBOARD)).unwrap();
    let dash: Json = serde_json::from_str(&text).unwrap();
    assert_eq!(dash["uid"], "riposte-overview");
    let vars = dash["templating"]["list"].as_array().unwrap();
    assert!(vars
        .iter()
        .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"));
    let panels = dash["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    let mut cells = BTreeSet::new();
    for p in panels {
        assert!(ids.insert(p["id"].as_u64().unwrap()), "duplicate id: {p}");
        let g = &p["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| g[k].as_u64().unwrap());
        assert!(x + w <= 24, "{p}");
        for cell in (x..x + w).flat_map(|x| (y..y + h).map(move |y| (x, y))) {
            assert!(cells.insert(cell), "panel {} overlaps another", p["title"]);
        }
        if p["type"] != "row" {
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
            for t in p["targets"].as_array().unwrap() {
                assert_eq!(t["datasource"]["uid"], "${datasource}", "{}", p["title"]);
                assert!(t["expr"].as_str().is_some_and(|e| !e.is_empty()), "{p}");
            }
        }
    }
}

// ---- metric names ----

/// Words of PromQL that are not metric names: operators, and aggregations
/// (which may take their grouping before their parentheses).
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
    "atan2",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];

/// The metric names a PromQL expression reads: identifiers outside label
/// matchers, strings, ranges and grouping lists that are not functions,
/// keywords or Grafana variables.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    // Skips from an opening bracket to its match, strings included.
    let skip_group = |mut i: usize, open: char, close: char| -> usize {
        let mut depth = 0;
        while i < chars.len() {
            match chars[i] {
                c if c == open => depth += 1,
                c if c == close => {
                    depth -= 1;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                '"' | '\'' | '`' => i = skip_string(&chars, i) - 1,
                _ => {}
            }
            i += 1;
        }
        i
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            i = skip_group(i, '{', '}');
        } else if c == '[' {
            i = skip_group(i, '[', ']');
        } else if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
        } else if c == '$' || c.is_ascii_digit() || c == '.' {
            // A Grafana variable ($job, $__rate_interval) or a number.
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_.".contains(chars[i])) {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let call = next < chars.len() && chars[next] == '(';
            if [
                "by",
                "without",
                "on",
                "ignoring",
                "group_left",
                "group_right",
            ]
            .contains(&&*word)
            {
                if call {
                    i = skip_group(next, '(', ')');
                }
            } else if !call && !KEYWORDS.contains(&&*word.to_ascii_lowercase()) {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() && chars[i] != quote {
        if chars[i] == '\\' && quote != '`' {
            i += 1;
        }
        i += 1;
    }
    i + 1
}

#[test]
fn metric_names_are_read_from_promql_as_prometheus_would() {
    let names = |e: &str| metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"sum by (source, reason) (rate(riposte_parse_failures_total{job=~"$job", x="a}b"}[$__rate_interval]))"#
        ),
        ["riposte_parse_failures_total"]
    );
    assert_eq!(
        names("(a_total > 0 unless increase(b_total[15m]) > 0) or c > 500 and on (x) group_left (y) d"),
        ["a_total", "b_total", "c", "d"]
    );
    assert_eq!(
        names("histogram_quantile(0.95, sum by (le) (rate(h_bucket[5m]))) > 1e-3 * 0.5"),
        ["h_bucket"]
    );
    assert_eq!(
        names("max without (instance, pod) (riposte_leader) == bool 0"),
        ["riposte_leader"]
    );
}

/// Every metric name the dashboard reads: panel queries and the variables'
/// `label_values(metric, label)` queries.
fn dashboard_metrics() -> BTreeSet<String> {
    let text = std::fs::read_to_string(monitoring(DASHBOARD)).unwrap();
    let dash: Json = serde_json::from_str(&text).unwrap();
    let mut exprs = Vec::new();
    collect_exprs(&dash["panels"], &mut exprs);
    assert!(exprs.len() >= 20, "{exprs:?}");
    let mut names: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    for var in dash["templating"]["list"].as_array().unwrap() {
        if let Some(q) = var["query"]["query"].as_str() {
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|q| q.rsplit_once(','))
                .map(|(m, _)| m)
                .unwrap_or_else(|| panic!("variable query {q}"));
            names.extend(metric_names(inner));
        }
    }
    names
}

fn collect_exprs(v: &Json, out: &mut Vec<String>) {
    match v {
        Json::Object(m) => {
            if let Some(Json::String(e)) = m.get("expr") {
                out.push(e.clone());
            }
            m.values().for_each(|v| collect_exprs(v, out));
        }
        Json::Array(a) => a.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// The sample names a /metrics text can carry, from its `# TYPE` lines (a
/// family with no sample yet is declared all the same) and its samples.
fn served_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if let Some(decl) = line.strip_prefix("# TYPE ") {
            let mut parts = decl.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                "summary" => &["", "_sum", "_count"],
                _ => &[""],
            };
            out.extend(suffixes.iter().map(|s| format!("{name}{s}")));
        } else if !line.starts_with('#') {
            let name: String = line
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "_:".contains(*c))
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// Quarantines the source pod of a C2 alert; the second playbook fails on
/// the same events, as a broken one would.
const PLAYBOOKS: [(&str, &str); 2] = [
    (
        "quick-quarantine.rhai",
        r#"// name: quick-quarantine
// description: quarantine the source pod of a C2 alert (tests)
// trigger: threat.type = spyware, severity >= high
// mode: enforce
let pod = event.source.pod;
if pod != () {
    quarantine(pod, #{ ttl: "1h", reason: "C2 traffic" });
}
"#,
    ),
    (
        "broken.rhai",
        r#"// name: broken
// description: fails on every event it sees (tests)
// trigger: threat.type = spyware
// mode: enforce
throw "broken on purpose";
"#,
    ),
];

/// A notification target told of every action, retrying fast.
fn target(name: &str, url: String) -> TargetConfig {
    let mut t = TargetConfig::new(name, url, Format::Webhook);
    t.allow_private = true;
    t.on = vec![NotifyOn::Applied, NotifyOn::Refused, NotifyOn::Failed];
    t.timeout_secs = 1;
    t.retry_initial_ms = 20;
    t.retry_max_secs = 1;
    t.max_age_secs = 1;
    t
}

/// A replica with everything a dashboard panel covers configured: a
/// cluster (the Kubernetes API stand-in), playbooks that act and fail,
/// notification targets that accept, are gone, and are down, and the
/// broker (partitions of its own on the test RabbitMQ).
async fn fully_configured(
    kube: &KubeApiServer,
    soar: &SoarReceiver,
    gone: &SoarReceiver,
    base: &str,
) -> anyhow::Result<Service> {
    let mut failure = None;
    let svc = service::start_with(|c, dir| {
        failure = use_cluster(c, dir, kube).err();
        for (file, text) in PLAYBOOKS {
            if let Err(e) = service::add_playbook(c, file, text) {
                failure = Some(e);
            }
        }
        c.notify.targets = vec![
            target("soar", soar.url("/hook")),
            target("gone", gone.url("/hook")),
            target("down", "http://127.0.0.1:9/hook".into()),
        ];
        c.notify.poll_interval_ms = 50;
        c.amqp = Some(AmqpConfig {
            url: riposte_connectors::amqp::BrokerUrl::new(rabbit::url()),
            connection_name: base.to_string(),
            partitions: PartitionConfig {
                exchange: format!("{base}.ev"),
                queue_prefix: format!("{base}.ev"),
                dead_letter_exchange: format!("{base}.ev.dlx"),
                count: 2,
                ..PartitionConfig::default()
            },
            ..AmqpConfig::default()
        });
    })
    .await?;
    if let Some(e) = failure {
        anyhow::bail!("configuring the replica: {e}");
    }
    Ok(svc)
}

/// Every series family appears on /metrics with its first sample only:
/// this replica is put through what each panel shows (events parsed and
/// not, a quarantine applied and one refused, a playbook failing,
/// notifications delivered, refused by a gone target and retried until
/// dead) before its /metrics is compared with the names in use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_the_rules_read_is_served_by_riposte() -> anyhow::Result<()>
{
    let kube = KubeApiServer::start().await?;
    let web = kube.add_deployment("shop", "checkout", &[("app", "checkout")])?;
    kube.add_pod(web.pod("10.244.1.17"))?;
    kube.add_pod(PodFixture::new(
        "kube-system",
        "coredns-5d78c9869d-abcde",
        "10.244.0.10",
    ))?;
    let soar = SoarReceiver::start().await?;
    let gone = SoarReceiver::start().await?;
    gone.set_gone(true);
    let base = rabbit::unique("monitoring");
    let svc = fully_configured(&kube, &soar, &gone, &base).await?;
    riposte_tests::eventually(WAIT, || {
        (svc.metric("riposte_pod_index_synced", &[]) == 1.0).then_some(())
    })
    .await?;
    let c2 = |src: &str, seq| lines::with_bsd_header(&lines::c2(src, "203.0.113.66", seq));
    let sent = [
        c2("10.244.1.17", 1),
        c2("10.244.0.10", 2),
        "this is not a log".into(),
    ];
    syslog::send_tcp(svc.running.tcp[0], &sent, Framing::NewLine).await?;

    let used: BTreeSet<String> = dashboard_metrics()
        .into_iter()
        .chain(rules().iter().flat_map(|(_, e)| metric_names(e)))
        .collect();
    let missing =
        |text: &str| -> Vec<String> { used.difference(&served_names(text)).cloned().collect() };
    let all_served = riposte_tests::eventually(WAIT, || {
        let text = svc.running.metrics_text();
        missing(&text).is_empty().then_some(())
    })
    .await;
    // The new series say what happened: two pods known, one quarantined,
    // the quarantine's decision applied, the other refused, the broken
    // playbook's an error.
    let settled = riposte_tests::eventually(WAIT, || {
        let decided = |playbook, outcome| {
            svc.metric(
                "riposte_decisions_total",
                &[("playbook", playbook), ("outcome", outcome)],
            )
        };
        (svc.metric("riposte_pod_index_pods", &[]) == 2.0
            && svc.metric("riposte_quarantines_active", &[]) == 1.0
            && decided("quick-quarantine", "applied") == 1.0
            && decided("quick-quarantine", "refused") == 1.0
            && decided("broken", "error") == 2.0
            && svc.metric("riposte_ready", &[("check", "pod_index")]) == 1.0)
            .then_some(())
    })
    .await;
    // What a scraper gets, over HTTP.
    let text = reqwest::get(svc.http_url("/metrics"))
        .await?
        .error_for_status()?
        .text()
        .await?;
    svc.stop().await;
    let queues = [0, 1].map(|n| format!("{base}.ev.{n}")).to_vec();
    let exchanges = vec![format!("{base}.ev"), format!("{base}.ev.dlx")];
    rabbit::cleanup(
        &[queues, vec![format!("{base}.ev.dead")]].concat(),
        &exchanges,
    )
    .await;
    assert!(
        all_served.is_ok() && missing(&text).is_empty(),
        "the dashboard or the alert rules read metrics Riposte does not serve: {:?}\n/metrics:\n{text}",
        missing(&text)
    );
    assert!(
        settled.is_ok(),
        "the series disagree with what happened:\n{text}"
    );
    assert_covers_the_issue(&dashboard_metrics());
    Ok(())
}

/// What the issue asks the dashboard to show, by the names that carry it.
fn assert_covers_the_issue(dashboard: &BTreeSet<String>) {
    for name in [
        "riposte_events_parsed_total",
        "riposte_parse_failures_total",
        "riposte_records_dropped_total",
        "riposte_decisions_total",
        "riposte_actions_total",
        "riposte_guardrail_refusals_total",
        "riposte_quarantines_active",
        "riposte_notify_outbox_depth",
        "riposte_notify_delivery_seconds_bucket",
        "riposte_notify_target_disabled",
        "riposte_pod_index_pods",
        "riposte_pod_index_synced",
        "riposte_amqp_partitions_owned",
        "riposte_leader",
    ] {
        assert!(dashboard.contains(name), "no panel reads {name}");
    }
}

// ---- a real Prometheus ----

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    riposte_standins::ports::free_port().expect("a free port")
}

/// The shipped rules, with RiposteParseFailuresSpiking firing as soon as
/// its condition holds instead of after 10 minutes.
fn rules_firing_at_once() -> String {
    let text = std::fs::read_to_string(monitoring(RULES)).unwrap();
    let at = text
        .find("- alert: RiposteParseFailuresSpiking")
        .expect("the rule");
    let (head, tail) = text.split_at(at);
    let pending = tail.find("for: 10m").expect("its `for:`");
    format!(
        "{head}{}for: 0s{}",
        &tail[..pending],
        &tail[pending + "for: 10m".len()..]
    )
}

/// Starts Prometheus scraping `target` every second, with `rules`.
fn start_prometheus(dir: &Path, target: SocketAddr, rules: &str) -> (Killed, String) {
    let prometheus = tool("prometheus");
    std::fs::write(dir.join("rules.yaml"), rules).unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files: [rules.yaml]\n\
         scrape_configs:\n  - job_name: riposte\n    static_configs:\n      - targets: ['{target}']\n"
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new(prometheus)
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    (Killed(child), format!("http://127.0.0.1:{port}"))
}

async fn get_json(client: &reqwest::Client, url: &str) -> Option<Json> {
    client.get(url).send().await.ok()?.json().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_riposte_and_fires_the_parse_failure_alert() -> anyhow::Result<()>
{
    let svc = service::start().await?;
    let dir = tempfile::tempdir()?;
    let (mut prometheus, api) = start_prometheus(
        dir.path(),
        svc.running.http.unwrap(),
        &rules_firing_at_once(),
    );
    let log = || std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;

    // A sender whose lines are not logs at all, until the alert fires.
    let tcp = svc.running.tcp[0];
    let garbage: Vec<String> = (0..20).map(|n| format!("this is not a log {n}")).collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut alert = None;
    while alert.is_none() {
        assert!(
            Instant::now() < deadline,
            "RiposteParseFailuresSpiking did not fire within 90 s; alerts: {}\nprometheus log:\n{}",
            get_json(&client, &format!("{api}/api/v1/alerts"))
                .await
                .unwrap_or_default(),
            log()
        );
        if let Ok(Some(status)) = prometheus.0.try_wait() {
            panic!("prometheus exited ({status}):\n{}", log());
        }
        syslog::send_tcp(tcp, &garbage, Framing::NewLine).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let alerts = get_json(&client, &format!("{api}/api/v1/alerts")).await;
        alert = alerts.and_then(|a| {
            a["data"]["alerts"]
                .as_array()?
                .iter()
                .find(|a| {
                    a["labels"]["alertname"] == "RiposteParseFailuresSpiking"
                        && a["state"] == "firing"
                })
                .cloned()
        });
    }
    let alert = alert.unwrap();
    assert_eq!(alert["labels"]["source"], "syslog_tcp", "{alert}");
    assert_eq!(alert["labels"]["job"], "riposte", "{alert}");
    assert!(
        svc.metric("riposte_parse_failures_total", &[("source", "syslog_tcp")]) >= 20.0,
        "Riposte counted the failures Prometheus saw"
    );

    // Every shipped rule evaluates cleanly against Riposte's real series,
    // and the scrape itself is healthy.
    let rules = get_json(&client, &format!("{api}/api/v1/rules"))
        .await
        .unwrap();
    let loaded: Vec<&Json> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    assert_eq!(loaded.len(), self::rules().len(), "{rules}");
    for r in loaded {
        assert_eq!(
            r["health"], "ok",
            "rule {} failed to evaluate: {r}",
            r["name"]
        );
    }
    let targets = get_json(&client, &format!("{api}/api/v1/targets"))
        .await
        .unwrap();
    let target = &targets["data"]["activeTargets"][0];
    assert_eq!(target["health"], "up", "{targets}");
    svc.stop().await;
    Ok(())
}
