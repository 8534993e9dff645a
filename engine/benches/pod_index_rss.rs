//! Memory of the pod index: RSS of a real `riposte serve` process watching
//! a cluster of 10,000 pods (the Kubernetes API stand-in), against the same
//! process with no cluster. Target: < 60 MiB above idle.
//!
//! `cargo bench -p riposte-engine --bench pod_index_rss`
//! (RIPOSTE_BENCH_PODS changes the pod count).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use riposte_standins::kube_api::{KubeApiServer, PodFixture};

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn free_port() -> u16 {
    riposte_standins::ports::free_port().unwrap_or(18_080)
}

fn ready(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.write_all(b"GET /readyz HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.starts_with("HTTP/1.1 200")
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `riposte serve` with `extra` config, waits until ready and the
/// memory has settled, and returns its RSS in KiB.
fn measure(
    dir: &std::path::Path,
    name: &str,
    extra: &str,
    env: &[(&str, &str)],
) -> anyhow::Result<u64> {
    let http = free_port();
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{d}/{name}-data\"\n[log]\nlevel = \"warn\"\n[syslog.udp]\nlisten = []\n[syslog.tcp]\nlisten = []\n[http]\nlisten = \"127.0.0.1:{http}\"\n[playbooks]\ndir = \"{pb}\"\n{extra}\n",
            d = dir.display(),
            pb = concat!(env!("CARGO_MANIFEST_DIR"), "/../playbooks"),
        ),
    )?;
    let child = Command::new(env!("CARGO_BIN_EXE_riposte"))
        .args(["serve", "--config"])
        .arg(&config)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let serve = Serve(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready(http) {
        if Instant::now() > deadline {
            anyhow::bail!("{name}: riposte never became ready");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2));
    Ok(rss_kib(serve.0.id()))
}

fn main() -> anyhow::Result<()> {
    let quick = !std::env::args().any(|a| a == "--bench");
    let pods: usize = std::env::var("RIPOSTE_BENCH_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 500 } else { 10_000 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let kube = rt.block_on(KubeApiServer::start())?;
    let namespaces = 50;
    for n in 0..namespaces {
        kube.add_namespace(&format!("ns-{n}"), &[("team", "t")])?;
    }
    kube.seed_pods((0..pods).map(|i| {
        PodFixture::new(
            &format!("ns-{}", i % namespaces),
            &format!("app-{i}-7d9f8b6c5-x2k4q"),
            &format!(
                "10.{}.{}.{}",
                100 + i / 65_000,
                (i / 250) % 256,
                i % 250 + 1
            ),
        )
        .labels(&[("app", "web"), ("tier", "frontend"), ("version", "v1")])
    }))?;
    let kubeconfig = dir.path().join("kubeconfig");
    kube.write_kubeconfig(&kubeconfig)?;

    let cluster = format!(
        "[kubernetes]\nmode = \"kubeconfig\"\nkubeconfig = \"{}\"",
        kubeconfig.display()
    );
    // mimalloc keeps freed pages for reuse a while; with a purge delay of 0
    // they go back to the OS at once, which shows what the index itself
    // keeps once the initial list has been digested.
    for (label, env) in [
        ("default allocator settings", &[][..]),
        (
            "MIMALLOC_PURGE_DELAY=0",
            &[("MIMALLOC_PURGE_DELAY", "0")][..],
        ),
    ] {
        let idle = measure(dir.path(), "idle", "[kubernetes]\nmode = \"off\"", env)?;
        let watching = measure(dir.path(), "watching", &cluster, env)?;
        println!(
            "riposte serve RSS ({label}): idle {:.1} MiB, watching {pods} pods {:.1} MiB: +{:.1} MiB for the pod index ({:.0} bytes per pod)",
            idle as f64 / 1024.0,
            watching as f64 / 1024.0,
            (watching.saturating_sub(idle)) as f64 / 1024.0,
            (watching.saturating_sub(idle) * 1024) as f64 / pods as f64,
        );
    }
    drop(kube);
    Ok(())
}
