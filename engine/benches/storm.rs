//! The storm bench (issue 13): the realistic mix and the threat storm
//! through one real `riposte serve`, on SQLite and on PostgreSQL.
//!
//! ```text
//! cargo bench -p riposte-engine --bench storm
//! RIPOSTE_STORM_SECS=600 cargo bench -p riposte-engine --bench storm   # the 10-minute storm
//! ```
//!
//! For each backend it starts `riposte serve` (this package's binary, or
//! `$RIPOSTE_BIN`) with the shipped playbooks, a 300-pod inventory written
//! by `riposte gen --inventory`, no cluster and no firewall (those intents
//! are recorded as skipped), and one SOAR target: a webhook receiver in this
//! process. Then `riposte gen` (the same binary, another process) sends over
//! TCP syslog, as fast as the service takes it:
//! 1. the realistic mix (default `gen` shares) for `RIPOSTE_MIX_SECS` (10);
//! 2. the threat storm (`--c2-share 0.5 --threat-share 0.5 --url-share 0`)
//!    for `RIPOSTE_STORM_SECS` (20).
//!
//! Every figure is read from the service itself: `/metrics`
//! (`riposte_events_processed_total`, `riposte_decisions_total`,
//! `riposte_audit_records_written_total`, `riposte_notify_delivered_total`),
//! `/proc/PID/status` (VmRSS, sampled every 500 ms) and the store (SQLite:
//! the database file and its WAL; PostgreSQL: `pg_database_size`). Rates are
//! counter deltas over the time `gen` ran. `RIPOSTE_STORM_BACKENDS` picks
//! `sqlite`, `postgres` or both (default); `RIPOSTE_STORM_STORE` adds
//! `[store]` settings (say `audit_batch_max = 2048`); PostgreSQL is the trusted
//! `postgres` user on 127.0.0.1:5432 (`RIPOSTE_TEST_PG_URL` overrides), in a
//! database made for the run and dropped after it.
//!
//! The machine is what it is: the figures are for however many cores the
//! service, `gen` and the receiver share, so read the ratios first.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use riposte_standins::metrics::value;
use riposte_standins::ports::free_port;
use riposte_standins::postgres;
use riposte_standins::soar_receiver::SoarReceiver;

const SEED: &str = "13";
const PODS: &str = "300";
const STORM: [&str; 6] = [
    "--c2-share",
    "0.5",
    "--threat-share",
    "0.5",
    "--url-share",
    "0",
];

fn secs(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn binary() -> PathBuf {
    std::env::var_os("RIPOSTE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_riposte")))
}

fn rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// CPU seconds (user and system) `pid` has used: events per CPU second of
/// the service itself is the figure a loaded, shared machine leaves
/// comparable.
fn cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command (which may hold spaces) end with ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here;
    // the kernel counts them in USER_HZ, 100 on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// One GET over a fresh connection; the body.
fn get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// The figures of one scrape of `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
struct Scrape {
    processed: f64,
    decisions: f64,
    audit_written: f64,
    audit_queued: f64,
    coalesced: f64,
    delivered: f64,
    outbox_depth: f64,
    pipeline_queued: f64,
}

fn scrape(port: u16) -> anyhow::Result<Scrape> {
    let text = get(port, "/metrics").context("GET /metrics")?;
    let v = |name: &str| value(&text, name, &[]);
    Ok(Scrape {
        processed: v("riposte_events_processed_total"),
        decisions: v("riposte_decisions_total"),
        audit_written: v("riposte_audit_records_written_total"),
        audit_queued: v("riposte_audit_queued"),
        coalesced: v("riposte_audit_coalesced_total"),
        delivered: v("riposte_notify_delivered_total"),
        outbox_depth: v("riposte_notify_outbox_depth"),
        pipeline_queued: v("riposte_pipeline_queued"),
    })
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `riposte gen` sending to `tcp` until dropped.
fn gen(tcp: u16, extra: &[&str]) -> anyhow::Result<Proc> {
    let child = Command::new(binary())
        .args(["gen", "--count", "0", "--seed", SEED, "--pods", PODS, "-q"])
        .args(["--syslog", &format!("tcp://127.0.0.1:{tcp}")])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("spawning riposte gen")?;
    Ok(Proc(child))
}

/// RSS samples of one process, taken by a thread until stopped.
struct Rss {
    samples: Arc<Mutex<Vec<(Instant, u64)>>>,
    stop: Arc<AtomicBool>,
}

impl Rss {
    fn sample(pid: u32) -> Rss {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (samples.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                if let Some(kib) = rss_kib(pid) {
                    s.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((Instant::now(), kib));
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        Rss { samples, stop }
    }

    fn between(&self, from: Instant, to: Instant) -> Vec<u64> {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(t, _)| *t >= from && *t <= to)
            .map(|(_, k)| *k)
            .collect()
    }
}

impl Drop for Rss {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// `start / peak / end` of a phase's samples, and the peak of its last
/// half (flat when it is the peak of the first).
fn rss_line(samples: &[u64]) -> String {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return "no samples".into();
    };
    let peak = samples.iter().copied().max().unwrap_or(0);
    let half = samples.len() / 2;
    let first_half = samples[..half.max(1)].iter().copied().max().unwrap_or(0);
    let second_half = samples[half..].iter().copied().max().unwrap_or(0);
    format!(
        "start {:.1} MiB, peak {:.1} MiB, end {:.1} MiB (peak of first half {:.1}, of second half {:.1})",
        mib(*first),
        mib(peak),
        mib(*last),
        mib(first_half),
        mib(second_half)
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Bytes the store takes now.
async fn store_bytes(backend: Backend, data: &Path, pg_url: Option<&str>) -> anyhow::Result<u64> {
    match backend {
        Backend::Sqlite => {
            let mut total = 0;
            for name in ["riposte.db", "riposte.db-wal"] {
                total += std::fs::metadata(data.join(name)).map_or(0, |m| m.len());
            }
            Ok(total)
        }
        Backend::Postgres => {
            let url = pg_url.context("no database")?;
            let pool = sqlx::PgPool::connect(url).await?;
            let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(&pool)
                .await?;
            pool.close().await;
            Ok(bytes.max(0) as u64)
        }
    }
}

/// Records stored, events counted in them, rows of the event index.
async fn audit_totals(
    backend: Backend,
    data: &Path,
    pg_url: Option<&str>,
) -> anyhow::Result<(i64, i64, i64)> {
    const TOTALS: &str = "SELECT COUNT(*), CAST(COALESCE(SUM(count), 0) AS BIGINT), \
                          (SELECT COUNT(*) FROM audit_event_index) FROM audit_decisions";
    Ok(match backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}?mode=ro", data.join("riposte.db").display());
            let pool = sqlx::SqlitePool::connect(&url).await?;
            let t = sqlx::query_as(TOTALS).fetch_one(&pool).await?;
            pool.close().await;
            t
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(pg_url.context("no database")?).await?;
            let t = sqlx::query_as(TOTALS).fetch_one(&pool).await?;
            pool.close().await;
            t
        }
    })
}

/// Waits (up to `limit`) until `done` holds for a scrape.
fn wait_for(http: u16, limit: Duration, done: impl Fn(&Scrape) -> bool) -> anyhow::Result<Scrape> {
    let deadline = Instant::now() + limit;
    loop {
        let s = scrape(http)?;
        if done(&s) || Instant::now() > deadline {
            return Ok(s);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// One stream's window: the scrapes at its ends, its length, when, and
/// the CPU seconds the service used in it.
struct Window {
    before: Scrape,
    after: Scrape,
    secs: f64,
    from: Instant,
    to: Instant,
    cpu: f64,
}

/// Runs one stream for `secs`.
fn stream(pid: u32, http: u16, tcp: u16, extra: &[&str], secs: u64) -> anyhow::Result<Window> {
    let before = scrape(http)?;
    let cpu0 = cpu_secs(pid);
    let from = Instant::now();
    let g = gen(tcp, extra)?;
    std::thread::sleep(Duration::from_secs(secs));
    let after = scrape(http)?;
    let to = Instant::now();
    let cpu = cpu_secs(pid) - cpu0;
    drop(g);
    Ok(Window {
        before,
        after,
        secs: to.duration_since(from).as_secs_f64(),
        from,
        to,
        cpu,
    })
}

async fn run(
    backend: Backend,
    mix_secs: u64,
    storm_secs: u64,
    rx: &SoarReceiver,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    if std::env::var_os("RIPOSTE_STORM_KEEP").is_some() {
        // To look into the store after the run.
        let kept = dir.keep();
        println!("keeping {}", kept.display());
        return run_in(backend, mix_secs, storm_secs, rx, &kept).await;
    }
    let path = dir.path().to_owned();
    run_in(backend, mix_secs, storm_secs, rx, &path).await
}

async fn run_in(
    backend: Backend,
    mix_secs: u64,
    storm_secs: u64,
    rx: &SoarReceiver,
    dir: &Path,
) -> anyhow::Result<()> {
    let data = dir.join("data");
    let inventory = dir.join("pods.json");
    let status = Command::new(binary())
        .args(["gen", "--count", "1", "--seed", SEED, "--pods", PODS, "-q"])
        .arg("--inventory")
        .arg(&inventory)
        .arg("--out")
        .arg(dir.join("first-line.log"))
        .status()?;
    anyhow::ensure!(status.success(), "riposte gen --inventory failed");
    let pg_url = match backend {
        Backend::Postgres => Some(postgres::fresh_database("storm_bench").await?),
        Backend::Sqlite => None,
    };
    // `RIPOSTE_STORM_STORE`: more `[store]` settings, one per line, to
    // compare tunings in one command.
    let extra = std::env::var("RIPOSTE_STORM_STORE").unwrap_or_default();
    let store = match &pg_url {
        Some(url) => format!("[store]\nurl = \"{url}\"\n{extra}\n"),
        None => format!("[store]\n{extra}\n"),
    };
    let (http, tcp) = (free_port()?, free_port()?);
    let config = dir.join("riposte.toml");
    std::fs::write(
        &config,
        format!(
            r#"data_dir = "{data}"

[log]
level = "info"

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

{store}
[[notify.targets]]
name = "soar"
url = "{soar}"
format = "webhook"
allow_private = true
"#,
            data = data.display(),
            playbooks = concat!(env!("CARGO_MANIFEST_DIR"), "/../playbooks"),
            inventory = inventory.display(),
            soar = rx.url("/hook"),
        ),
    )?;
    let serve = Proc(
        Command::new(binary())
            .args(["serve", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            // At the default level, into a file: the run counts its lines
            // (a storm must not log one per event).
            .stderr(std::fs::File::create(dir.join("riposte.log"))?)
            .spawn()
            .context("spawning riposte serve")?,
    );
    let pid = serve.0.id();
    let deadline = Instant::now() + Duration::from_secs(120);
    while get(http, "/readyz").is_none() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "riposte serve never became ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let rss = Rss::sample(pid);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(1));

    let mix = stream(pid, http, tcp, &[], mix_secs)?;
    let (m0, m1, mix_s, mix_from, mix_to) = (mix.before, mix.after, mix.secs, mix.from, mix.to);
    // Let what the mix queued drain before the storm starts.
    wait_for(http, Duration::from_secs(60), |s| {
        s.pipeline_queued == 0.0 && s.audit_queued == 0.0
    })?;
    let bytes_before = store_bytes(backend, &data, pg_url.as_deref()).await?;
    let delivered_before = rx.accepted_total();
    let storm = stream(pid, http, tcp, &STORM, storm_secs)?;
    let (s0, s1, storm_s, storm_from, storm_to) =
        (storm.before, storm.after, storm.secs, storm.from, storm.to);
    // Everything the storm queued: decided, written, delivered.
    let settled = wait_for(http, Duration::from_secs(120), |s| {
        s.pipeline_queued == 0.0 && s.audit_queued == 0.0 && s.outbox_depth == 0.0
    })?;
    std::thread::sleep(Duration::from_secs(1));
    let settled = scrape(http).unwrap_or(settled);
    let t_end = Instant::now();
    let bytes_after = store_bytes(backend, &data, pg_url.as_deref()).await?;
    let delivered = rx.accepted_total() - delivered_before;
    drop(serve);
    let totals = audit_totals(backend, &data, pg_url.as_deref()).await;

    let mix_rate = (m1.processed - m0.processed) / mix_s;
    let storm_rate = (s1.processed - s0.processed) / storm_s;
    let decided_rate = (s1.decisions - s0.decisions) / storm_s;
    let storm_decided = settled.decisions - s0.decisions;
    let storm_events = settled.processed - s0.processed;
    let grown = bytes_after.saturating_sub(bytes_before);
    println!(
        "\n== {backend:?}: mix {mix_secs} s, storm {storm_secs} s, {} ==",
        binary().display()
    );
    let mix_per_cpu = (m1.processed - m0.processed) / mix.cpu.max(0.01);
    let storm_per_cpu = (s1.processed - s0.processed) / storm.cpu.max(0.01);
    println!(
        "mix:   {mix_rate:>10.0} events/s ({:.0} events; the service used {:.2} CPUs: {mix_per_cpu:.0} events per CPU-second)",
        m1.processed - m0.processed,
        mix.cpu / mix_s,
    );
    println!(
        "storm: {storm_rate:>10.0} events/s ({:.0} events; the service used {:.2} CPUs: {storm_per_cpu:.0} events per CPU-second), {:.1}% of the mix rate ({:.1}% per CPU-second)",
        s1.processed - s0.processed,
        storm.cpu / storm_s,
        100.0 * storm_rate / mix_rate.max(1.0),
        100.0 * storm_per_cpu / mix_per_cpu.max(1.0)
    );
    println!(
        "decided during the storm: {decided_rate:.0} decisions/s, {:.0} per CPU-second ({:.0} of {storm_events:.0} events decided, {:.0}%); {:.0} audit writes, {:.0} coalesced",
        (s1.decisions - s0.decisions) / storm.cpu.max(0.01),
        storm_decided,
        100.0 * storm_decided / storm_events.max(1.0),
        settled.audit_written - s0.audit_written,
        settled.coalesced - s0.coalesced,
    );
    println!(
        "queues as the storm ended: {:.0} audit records waiting for the writer, {:.0} events in the pipeline (full queues say which stage bounds the storm)",
        s1.audit_queued, s1.pipeline_queued,
    );
    println!(
        "store: +{:.1} MiB over the storm = {:.0} bytes per decided event ({bytes_before} -> {bytes_after} bytes)",
        grown as f64 / (1024.0 * 1024.0),
        grown as f64 / storm_decided.max(1.0)
    );
    match totals {
        Ok((records, counted, indexed)) => println!(
            "audit: {records} records counting {counted} events; {indexed} event index rows"
        ),
        Err(e) => println!("audit totals: {e}"),
    }
    println!(
        "notifications: {delivered} delivered to the receiver ({:.0} by riposte_notify_delivered_total) for {storm_decided:.0} matched events = {:.4} per matched event",
        settled.delivered - s0.delivered,
        delivered as f64 / storm_decided.max(1.0)
    );
    let log = std::fs::read_to_string(dir.join("riposte.log")).unwrap_or_default();
    println!(
        "log: {} lines at the default level over the whole run ({} WARN, {} ERROR)",
        log.lines().count(),
        log.lines().filter(|l| l.contains(" WARN ")).count(),
        log.lines().filter(|l| l.contains(" ERROR ")).count(),
    );
    println!("RSS: whole run {}", rss_line(&rss.between(t0, t_end)));
    println!("RSS: mix {}", rss_line(&rss.between(mix_from, mix_to)));
    let storm_samples = rss.between(storm_from, storm_to);
    println!("RSS: storm {}", rss_line(&storm_samples));
    if storm_secs >= 120 {
        // One sample a minute, to see it flat (or not).
        let per_minute: Vec<String> = storm_samples
            .iter()
            .step_by(120)
            .map(|k| format!("{:.0}", mib(*k)))
            .collect();
        println!(
            "RSS each minute of the storm (MiB): {}",
            per_minute.join(", ")
        );
    }
    drop(rss);
    if let Some(url) = pg_url {
        postgres::drop_database(&url).await;
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mix_secs = secs("RIPOSTE_MIX_SECS", 10);
    let storm_secs = secs("RIPOSTE_STORM_SECS", 20);
    let backends =
        std::env::var("RIPOSTE_STORM_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let rx = rt.block_on(SoarReceiver::start())?;
    for name in backends.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let backend = match name {
            "sqlite" => Backend::Sqlite,
            "postgres" => Backend::Postgres,
            other => anyhow::bail!("unknown backend `{other}` in RIPOSTE_STORM_BACKENDS"),
        };
        rt.block_on(run(backend, mix_secs, storm_secs, &rx))?;
    }
    Ok(())
}
