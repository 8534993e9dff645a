//! From a C2 threat log arriving on syslog to the pod labelled and the
//! deny-all policy in place on the Kubernetes API stand-in: p50 and p99.
//!
//! `cargo bench -p riposte-tests --bench quarantine_latency` (release
//! build; the service runs in-process, the stand-in on loopback HTTPS with
//! the real kube client). Each sample is one C2 log for a different pod,
//! sent over TCP, timed until the stand-in holds both the label and the
//! namespace's quarantine policy. Guardrail caps are raised so every sample
//! is quarantined.

use std::time::{Duration, Instant};

use riposte_tests::kube_api::{KubeApiServer, PodFixture};
use riposte_tests::lines;
use riposte_tests::service::{self, add_playbook, use_cluster};
use tokio::io::AsyncWriteExt;

const PLAYBOOK: &str = r#"// name: bench-quarantine
// description: quarantine the source pod of a C2 alert
// trigger: threat.type = spyware, severity >= high
// mode: enforce
let pod = event.source.pod;
if pod != () { quarantine(pod, #{ ttl: "1h", reason: "bench" }); }
"#;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() -> anyhow::Result<()> {
    let quick = !std::env::args().any(|a| a == "--bench");
    let samples: usize = if quick { 20 } else { 400 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let kube = KubeApiServer::start().await?;
        let namespaces = 10;
        for n in 0..namespaces {
            kube.add_namespace(&format!("bench-{n}"), &[])?;
        }
        let ip = |i: usize| format!("10.246.{}.{}", i / 250, i % 250 + 1);
        kube.seed_pods((0..samples).map(|i| PodFixture::new(&format!("bench-{}", i % namespaces), &format!("app-{i}"), &ip(i))))?;
        let mut failure = None;
        let svc = service::start_with(|c, dir| {
            if let Err(e) = use_cluster(c, dir, &kube).and_then(|()| add_playbook(c, "bench.rhai", PLAYBOOK)) {
                failure = Some(e);
            }
            c.guardrails.max_containments_per_minute = 1_000_000;
            c.guardrails.max_containments_per_namespace_per_minute = 1_000_000;
            c.log.level = "warn".into();
        })
        .await?;
        if let Some(e) = failure {
            return Err(e);
        }
        riposte_tests::eventually(Duration::from_secs(30), || svc.running.readiness.is_ready().then_some(())).await?;
        let mut stream = tokio::net::TcpStream::connect(svc.running.tcp[0]).await?;
        let mut latencies = Vec::with_capacity(samples);
        for i in 0..samples {
            let ns = format!("bench-{}", i % namespaces);
            let name = format!("app-{i}");
            let line = lines::with_bsd_header(&lines::c2(&ip(i), "203.0.113.66", i as u64));
            let started = Instant::now();
            stream.write_all(format!("{line}\n").as_bytes()).await?;
            loop {
                let labelled = kube
                    .get("pods", &ns, &name)
                    .is_some_and(|p| p["metadata"]["labels"]["riposte.io/quarantine"] == "true");
                if labelled && kube.get("networkpolicies", &ns, "riposte-quarantine").is_some() {
                    break;
                }
                if started.elapsed() > Duration::from_secs(10) {
                    anyhow::bail!("sample {i} never quarantined");
                }
                tokio::time::sleep(Duration::from_micros(100)).await;
            }
            latencies.push(started.elapsed());
        }
        latencies.sort();
        println!(
            "syslog C2 log -> pod labelled + deny-all policy on the stand-in, {samples} samples: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            percentile(&latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        );
        svc.stop().await;
        Ok(())
    })
}
