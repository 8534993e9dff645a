//! Ingestion throughput, end to end through the real service: syslog over
//! TCP into the pipeline (target ≥ 300,000 events/s on 2 cores, no loss),
//! and the UDP drop rate at 100,000 events/s.
//!
//! `cargo bench -p riposte-engine --bench ingest` (set RIPOSTE_BENCH_EVENTS
//! to change the TCP event count, default 1,000,000). The sender runs in the
//! same process on its own thread, so it competes with Riposte for the two
//! cores: the figures are a floor.

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use riposte_engine::config::Config;
use riposte_engine::gen::{GenOptions, Generator};
use riposte_engine::serve::{self, Running};
use tokio_util::sync::CancellationToken;

// As in the `riposte` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn metric(running: &Running, name: &str) -> f64 {
    running
        .metrics_text()
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

fn config(dir: &std::path::Path) -> Config {
    let any: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut c = Config::default();
    c.data_dir = dir.join("data");
    c.syslog.udp.listen = vec![any];
    c.syslog.tcp.listen = vec![any];
    c.http.listen = None;
    c.playbooks.dir = dir.join("no-playbooks");
    c
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

async fn wait_for(running: &Running, name: &str, want: f64, patience: Duration) -> f64 {
    let mut last = -1.0;
    let mut still = Instant::now();
    loop {
        let now = metric(running, name);
        if now >= want {
            return now;
        }
        if now != last {
            last = now;
            still = Instant::now();
        } else if still.elapsed() > patience {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn main() {
    let n: usize = std::env::var("RIPOSTE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => panic!("runtime: {e}"),
    };
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    };
    let running = match rt.block_on(serve::start(config(dir.path()), CancellationToken::new())) {
        Ok(r) => r,
        Err(e) => panic!("start: {e}"),
    };

    // --- TCP ---
    let tcp_lines = lines(n, 7);
    let mut payload = Vec::with_capacity(tcp_lines.iter().map(|l| l.len() + 1).sum());
    for l in &tcp_lines {
        payload.extend_from_slice(l.as_bytes());
        payload.push(b'\n');
    }
    let avg = payload.len() / n.max(1);
    let addr = running.tcp[0];
    let started = Instant::now();
    let sender = std::thread::spawn(move || -> std::io::Result<()> {
        let mut s = std::net::TcpStream::connect(addr)?;
        s.write_all(&payload)?;
        s.flush()
    });
    let processed = rt.block_on(wait_for(&running, "riposte_events_processed_total", n as f64, Duration::from_secs(5)));
    let elapsed = started.elapsed();
    match sender.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("sender: {e}"),
        Err(_) => eprintln!("sender thread panicked"),
    }
    let failed = metric(&running, "riposte_parse_failures_total");
    println!(
        "tcp: {n} lines (avg {avg} B) -> {processed} events through the pipeline in {:.3}s = {:.0} events/s; parse failures {failed}; lost {}",
        elapsed.as_secs_f64(),
        processed / elapsed.as_secs_f64(),
        n as f64 - processed - failed,
    );

    // --- UDP at 100,000 events/s for 3 s ---
    let rate = 100_000usize;
    let secs = 3usize;
    let udp_lines = lines(rate * secs, 11);
    let before_processed = metric(&running, "riposte_events_processed_total");
    let before_received = metric(&running, "riposte_records_received_total");
    let target = running.udp[0];
    let sent = std::thread::spawn(move || -> std::io::Result<usize> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        let start = Instant::now();
        // Pace in batches of 1 ms against the monotonic clock.
        let per_ms = rate / 1000;
        let mut sent = 0;
        for (i, chunk) in udp_lines.chunks(per_ms).enumerate() {
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
        Ok(sent)
    });
    let sent = match sent.join() {
        Ok(Ok(s)) => s,
        _ => 0,
    };
    let processed = rt.block_on(wait_for(
        &running,
        "riposte_events_processed_total",
        before_processed + sent as f64,
        Duration::from_secs(2),
    )) - before_processed;
    let received = metric(&running, "riposte_records_received_total") - before_received;
    let queue_full = metric(&running, "riposte_records_dropped_total");
    println!(
        "udp: sent {sent} at {rate}/s -> received {received}, processed {processed}; kernel drops {:.3}%, queue-full drops {queue_full}; total loss {:.3}%",
        100.0 * (sent as f64 - received) / sent.max(1) as f64,
        100.0 * (sent as f64 - processed) / sent.max(1) as f64,
    );
    running.shutdown();
    rt.block_on(running.wait());
}
