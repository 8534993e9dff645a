//! Hostile HTTP clients against the release binary (issue 12, items 4
//! and 5): memory under a flood of unauthenticated uploads, and the latency
//! of an authenticated ingest while hundreds of connections trickle bodies.
//!
//! ```text
//! cargo build --release -p riposte-engine
//! cargo bench -p riposte-tests --bench hostile_http
//! ```
//!
//! The binary is `$RIPOSTE_BIN`, else `$CARGO_TARGET_DIR/release/riposte`,
//! else `target/release/riposte`. It runs as a child process (`riposte serve
//! --config <tmp>`) on the default `[http]` limits, so its RSS (VmRSS from
//! `/proc/<pid>/status`) is the service's own. Phases:
//! 1. 256 connections at once, each POSTing 10 MB without a valid credential,
//!    half to `/v1/ingest` (no token), half to a signed webhook with
//!    well-formed but forged signature headers, sent chunked (its body is
//!    read, under the unauthenticated budget); each reconnects when
//!    answered. Figures: RSS at
//!    idle and at its peak.
//! 2. The same with 64 clients holding a valid `ingest` token (10 MB of
//!    blank lines each): the global body budget's bound.
//! 3. 300 connections trickling bodies (1 byte / 100 ms) into `/v1/ingest`
//!    and into the webhook, reconnecting when cut off, while authenticated
//!    ingests are timed one after another: p50 and max.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use riposte_standins::ports::free_port;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const INGEST_TOKEN: &str = "bench-ingest-token";
const TEN_MB: usize = 10 * 1024 * 1024;

fn binary() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("RIPOSTE_BIN") {
        return Ok(PathBuf::from(p));
    }
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let p = target.join("release/riposte");
    anyhow::ensure!(
        p.exists(),
        "{} not found: run `cargo build --release -p riposte-engine` or set RIPOSTE_BIN",
        p.display()
    );
    Ok(p)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

struct Server {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server() -> anyhow::Result<Server> {
    let dir = tempfile::tempdir()?;
    let playbooks = dir.path().join("playbooks");
    std::fs::create_dir_all(&playbooks)?;
    let port = free_port()?;
    let config = format!(
        r#"data_dir = "{data}"

[log]
level = "error"

[syslog.udp]
listen = ["127.0.0.1:0"]

[syslog.tcp]
listen = ["127.0.0.1:0"]

[http]
listen = "127.0.0.1:{port}"

[playbooks]
dir = "{playbooks}"
watch = false

[kubernetes]
mode = "off"

[[api.tokens]]
name = "bench"
sha256 = "{hash}"
scopes = ["ingest"]

[[api.webhooks]]
name = "soar"
verify = "standard"
secrets = [{{ value = "whsec_YmVuY2ggd2ViaG9vayBrZXk=" }}]
"#,
        data = dir.path().join("data").display(),
        playbooks = playbooks.display(),
        hash = riposte_engine::auth::hash_token(INGEST_TOKEN),
    );
    let path = dir.path().join("riposte.toml");
    std::fs::File::create(&path)?.write_all(config.as_bytes())?;
    let child = Command::new(binary()?)
        .args(["serve", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("spawning riposte serve")?;
    Ok(Server {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        _dir: dir,
    })
}

/// Sends `head`, then up to `length` bytes as fast as the server takes
/// them, stopping when it answers or closes; returns the status (0 when
/// the connection ended without one).
async fn upload(addr: SocketAddr, head: String, body: Arc<Vec<u8>>, chunked: bool) -> u16 {
    let Ok(stream) = TcpStream::connect(addr).await else {
        return 0;
    };
    let (mut rd, mut wr) = stream.into_split();
    let writer = async move {
        if wr.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        for chunk in body.chunks(64 * 1024) {
            let framed = if chunked {
                let mut f = format!("{:x}\r\n", chunk.len()).into_bytes();
                f.extend_from_slice(chunk);
                f.extend_from_slice(b"\r\n");
                wr.write_all(&f).await
            } else {
                wr.write_all(chunk).await
            };
            if framed.is_err() {
                return;
            }
        }
        if chunked && wr.write_all(b"0\r\n\r\n").await.is_err() {
            return;
        }
        // Keep the write half open until the answer is read.
        std::future::pending::<()>().await;
    };
    let reader = async move {
        let mut buf = [0u8; 256];
        match rd.read(&mut buf).await {
            Ok(n) if n > 12 => std::str::from_utf8(&buf[9..12])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            _ => 0,
        }
    };
    tokio::select! {
        () = writer => 0,
        s = reader => s,
    }
}

/// A request head; `length` 0 sends the body chunked.
fn head(path: &str, token: Option<&str>, length: usize, webhook: bool) -> String {
    let framing = if length == 0 {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {length}")
    };
    let mut h = format!(
        "POST {path} HTTP/1.1\r\nHost: riposte\r\nContent-Type: application/json\r\n{framing}\r\n"
    );
    if let Some(t) = token {
        h.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if webhook {
        let now = chrono::Utc::now().timestamp();
        h.push_str(&format!(
            "webhook-id: msg_{}\r\nwebhook-timestamp: {now}\r\nwebhook-signature: v1,AAAA\r\n",
            rand::random::<u64>()
        ));
    }
    h.push_str("\r\n");
    h
}

#[derive(Default)]
struct Tally {
    by_status: [AtomicU64; 6],
}

impl Tally {
    fn add(&self, status: u16) {
        let i = match status {
            202 => 0,
            401 => 1,
            408 => 2,
            413 => 3,
            503 => 4,
            _ => 5,
        };
        self.by_status[i].fetch_add(1, Ordering::Relaxed);
    }

    fn show(&self) -> String {
        let n = |i: usize| self.by_status[i].load(Ordering::Relaxed);
        format!(
            "202: {}, 401: {}, 408: {}, 413: {}, 503: {}, cut/other: {}",
            n(0),
            n(1),
            n(2),
            n(3),
            n(4),
            n(5)
        )
    }
}

/// Runs `clients` looping uploaders for `duration`, sampling the server's
/// RSS; returns the peak in KiB.
async fn flood(
    server: &Server,
    clients: usize,
    duration: Duration,
    make: impl Fn(usize) -> (String, Arc<Vec<u8>>, bool) + Send + Sync + 'static,
) -> (u64, Arc<Tally>) {
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let make = Arc::new(make);
    let mut tasks = Vec::new();
    for i in 0..clients {
        let (stop, tally, make, addr) = (stop.clone(), tally.clone(), make.clone(), server.addr);
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (head, body, chunked) = make(i);
                tally.add(upload(addr, head, body, chunked).await);
            }
        }));
    }
    let pid = server.child.id();
    let mut peak = 0;
    let end = Instant::now() + duration;
    while Instant::now() < end {
        peak = peak.max(rss_kib(pid).unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.abort();
    }
    (peak, tally)
}

/// Sends `head` and then one byte every `every` until the server answers
/// or closes; returns the status.
async fn trickle(addr: SocketAddr, head: String, every: Duration) -> u16 {
    let Ok(stream) = TcpStream::connect(addr).await else {
        return 0;
    };
    let (mut rd, mut wr) = stream.into_split();
    let writer = async move {
        if wr.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        loop {
            tokio::time::sleep(every).await;
            if wr.write_all(b" ").await.is_err() {
                return;
            }
        }
    };
    let reader = async move {
        let mut buf = [0u8; 256];
        match rd.read(&mut buf).await {
            Ok(n) if n > 12 => std::str::from_utf8(&buf[9..12])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            _ => 0,
        }
    };
    tokio::select! {
        () = writer => 0,
        s = reader => s,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() -> anyhow::Result<()> {
    let quick = !std::env::args().any(|a| a == "--bench");
    let flood_secs = if quick { 3 } else { 10 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let server = start_server()?;
        let client = reqwest::Client::new();
        let health = format!("http://{}/healthz", server.addr);
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.get(&health).send().await.is_err() {
            anyhow::ensure!(Instant::now() < deadline, "riposte did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let ingest_url = format!("http://{}/v1/ingest", server.addr);
        // A real threat log (no playbook acts on it): what a firewall sends.
        let line = format!("{}\n", riposte_tests::lines::c2("10.0.0.1", "203.0.113.9", 1));
        // Warm up the paths the phases use, then let the allocator settle.
        for _ in 0..20 {
            let _ = client.post(&ingest_url).bearer_auth(INGEST_TOKEN).body(line.clone()).send().await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let pid = server.child.id();
        let idle = rss_kib(pid).context("reading VmRSS")?;
        println!("idle RSS: {} MiB", idle / 1024);

        // 1. Unauthenticated 10 MB uploads.
        let junk = Arc::new(vec![b'x'; TEN_MB]);
        let body = junk.clone();
        let (peak, tally) = flood(&server, 256, Duration::from_secs(flood_secs), move |i| {
            // The webhook half is sent chunked: a declared 10 MB is refused
            // (413) unread, as larger than any unauthenticated body may be,
            // while a chunked one is read, under the unauthenticated budget,
            // until it passes that size.
            if i % 2 == 1 {
                (head("/v1/webhooks/soar", None, 0, true), body.clone(), true)
            } else {
                (head("/v1/ingest", None, TEN_MB, false), body.clone(), false)
            }
        })
        .await;
        println!(
            "256 concurrent unauthenticated 10 MB POSTs for {flood_secs} s: peak RSS {} MiB, {} MiB above idle ({})",
            peak / 1024,
            peak.saturating_sub(idle) / 1024,
            tally.show()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;

        // 2. Authenticated 10 MB uploads: the global budget holds.
        let blank = Arc::new(vec![b'\n'; TEN_MB]);
        let (peak, tally) = flood(&server, 64, Duration::from_secs(flood_secs), move |_| {
            let mut h = head("/v1/ingest", Some(INGEST_TOKEN), TEN_MB, false);
            h = h.replace("application/json", "text/plain");
            (h, blank.clone(), false)
        })
        .await;
        println!(
            "64 concurrent authenticated 10 MB POSTs for {flood_secs} s: peak RSS {} MiB, {} MiB above idle ({})",
            peak / 1024,
            peak.saturating_sub(idle) / 1024,
            tally.show()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;

        // 3. Trickling bodies, and authenticated ingests timed meanwhile.
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let mut tricklers = Vec::new();
        for i in 0..300 {
            let (stop, tally, addr) = (stop.clone(), tally.clone(), server.addr);
            tricklers.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let webhook = i % 2 == 1;
                    let path = if webhook { "/v1/webhooks/soar" } else { "/v1/ingest" };
                    let h = head(path, None, 1024 * 1024, webhook);
                    tally.add(trickle(addr, h, Duration::from_millis(100)).await);
                    // Reconnect at once, but not in a busy loop: the attack
                    // measured is slow bodies, not a connection flood.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let samples = if quick { 10 } else { 50 };
        let mut times = Vec::with_capacity(samples);
        let mut failures = 0;
        let timed = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(60))
            .build()?;
        for _ in 0..samples {
            let t = Instant::now();
            let ok = timed
                .post(&ingest_url)
                .bearer_auth(INGEST_TOKEN)
                .header("content-type", "text/plain")
                .body(line.clone())
                .send()
                .await
                .is_ok_and(|r| r.status() == 202);
            times.push(t.elapsed());
            if !ok {
                failures += 1;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop.store(true, Ordering::Relaxed);
        for t in tricklers {
            t.abort();
        }
        times.sort();
        println!(
            "authenticated ingest (new connection each) under 300 trickling unauthenticated connections: p50 {:?}, max {:?}, {} of {samples} not 202 (tricklers: {})",
            percentile(&times, 0.5),
            times[times.len() - 1],
            failures,
            tally.show()
        );
        Ok(())
    })
}
