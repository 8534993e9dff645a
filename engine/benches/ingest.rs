//! Ingestion throughput of the real `riposte serve` process: syslog over TCP
//! into the pipeline (target ≥ 300,000 events/s on 2 cores, no loss), and
//! the UDP loss at 100,000 events/s.
//!
//! `cargo bench -p riposte-engine --bench ingest`; RIPOSTE_BENCH_EVENTS
//! changes the TCP event count (default 1,000,000). The lines come from
//! `riposte_gen` (PAN-OS 10.1–11.1, ~900 bytes, BSD syslog header)
//! and are generated before the clock starts; the sender is a thread of this
//! process writing a prepared buffer, so it costs about what `cat FILE >
//! /dev/tcp/…` would. The service runs with no playbooks: this measures
//! framing, parsing and queueing (see `--bench playbooks` for the rest).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use riposte_gen::{GenOptions, Generator};

fn free_port() -> u16 {
    riposte_standins::ports::free_port().unwrap_or(18_514)
}

/// Sum of every sample of `name` on the service's /metrics.
fn metric(http: SocketAddr, name: &str) -> f64 {
    let Ok(mut s) = TcpStream::connect(http) else {
        return -1.0;
    };
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum::<f64>()
        + 0.0 // an empty sum is -0.0
}

fn wait_for(http: SocketAddr, name: &str, want: f64, patience: Duration) -> f64 {
    let mut last = -1.0;
    let mut still = Instant::now();
    loop {
        let now = metric(http, name);
        if now >= want {
            return now;
        }
        if now != last {
            last = now;
            still = Instant::now();
        } else if still.elapsed() > patience {
            return now;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn lines(n: usize, seed: u64) -> Vec<String> {
    let mut g = match Generator::new(GenOptions {
        seed,
        pods: 2000,
        ..GenOptions::default()
    }) {
        Ok(g) => g,
        Err(e) => panic!("generator options: {e}"),
    };
    (0..n).map(|_| g.next_line().text.to_owned()).collect()
}

struct Service {
    child: Child,
    syslog: SocketAddr,
    http: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Service {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    };
    let syslog = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = dir.path().join("bench.toml");
    let text = format!(
        "data_dir = \"{d}/data\"\n[log]\nlevel = \"warn\"\n[syslog.udp]\nlisten = [\"{syslog}\"]\n[syslog.tcp]\nlisten = [\"{syslog}\"]\n[http]\nlisten = \"{http}\"\n[playbooks]\ndir = \"{d}/no-playbooks\"\n",
        d = dir.path().display()
    );
    if let Err(e) = std::fs::write(&config, text) {
        panic!("config: {e}");
    }
    let child = match Command::new(env!("CARGO_BIN_EXE_riposte"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("starting riposte: {e}"),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(http, "riposte_events_processed_total") < 0.0 {
        if Instant::now() > deadline {
            panic!("riposte did not come up on {http}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Service {
        child,
        syslog,
        http,
        _dir: dir,
    }
}

fn tcp(n: usize) {
    let svc = start();
    let payload: Vec<u8> = lines(n, 7)
        .iter()
        .flat_map(|l| l.bytes().chain(std::iter::once(b'\n')))
        .collect();
    let avg = payload.len() / n.max(1);
    let addr = svc.syslog;
    let started = Instant::now();
    let sender = std::thread::spawn(move || -> std::io::Result<()> {
        let mut s = TcpStream::connect(addr)?;
        s.write_all(&payload)
    });
    let processed = wait_for(
        svc.http,
        "riposte_events_processed_total",
        n as f64,
        Duration::from_secs(5),
    );
    let elapsed = started.elapsed().as_secs_f64();
    if let Ok(Err(e)) = sender.join() {
        eprintln!("sender: {e}");
    }
    let failed = metric(svc.http, "riposte_parse_failures_total");
    println!(
        "syslog/tcp: {n} lines of {avg} B -> {processed} events through the pipeline in {elapsed:.3} s = {:.0} events/s; parse failures {failed}; lost {}",
        processed / elapsed,
        n as f64 - processed - failed,
    );
}

fn udp(rate: usize, secs: usize) {
    let svc = start();
    let all = lines(rate * secs, 11);
    let target = svc.syslog;
    let socket = match UdpSocket::bind("127.0.0.1:0") {
        Ok(s) => s,
        Err(e) => panic!("udp socket: {e}"),
    };
    let start = Instant::now();
    let per_ms = (rate / 1000).max(1);
    let mut sent = 0usize;
    // Paced in 1 ms batches against the monotonic clock.
    for (i, chunk) in all.chunks(per_ms).enumerate() {
        let due = start + Duration::from_millis(i as u64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        for l in chunk {
            if socket.send_to(l.as_bytes(), target).is_ok() {
                sent += 1;
            }
        }
    }
    let achieved = sent as f64 / start.elapsed().as_secs_f64();
    let processed = wait_for(
        svc.http,
        "riposte_events_processed_total",
        sent as f64,
        Duration::from_secs(2),
    );
    let received = metric(svc.http, "riposte_records_received_total");
    let queue_full = metric(svc.http, "riposte_records_dropped_total");
    println!(
        "syslog/udp: sent {sent} at {achieved:.0}/s -> received {received}, processed {processed}; lost in the kernel {:.3}%, dropped on a full queue {queue_full}; total loss {:.3}%",
        100.0 * (sent as f64 - received) / sent.max(1) as f64,
        100.0 * (sent as f64 - processed) / sent.max(1) as f64,
    );
}

fn main() {
    // `cargo test --benches` runs this with --bench absent: keep it quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("RIPOSTE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 10_000 } else { 1_000_000 });
    tcp(n);
    udp(100_000, if quick { 1 } else { 5 });
}
