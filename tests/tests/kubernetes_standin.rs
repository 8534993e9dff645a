//! End to end against the Kubernetes API stand-in, for what a real API
//! server cannot be made to do on demand: be down for exactly as long as a
//! test wants. Everything else runs against the real server
//! (`kubernetes.rs`).

use std::time::Duration;

use riposte_tests::kube_api::{KubeApiServer, PodFixture};
use riposte_tests::lines;
use riposte_tests::service::{self, add_playbook, use_cluster, Service};
use riposte_tests::syslog::{self, Framing};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(15);

/// Quarantines the source pod of any high or critical spyware alert.
const QUICK_QUARANTINE: &str = r#"// name: quick-quarantine
// description: quarantine the source pod of a C2 alert, briefly (tests)
// trigger: threat.type = spyware, severity >= high
// mode: enforce
let pod = event.source.pod;
if pod != () {
    quarantine(pod, #{ ttl: "TTL", reason: `C2 traffic to ${event.destination.ip}` });
}
"#;

async fn wait_ready(svc: &Service) -> anyhow::Result<()> {
    riposte_tests::eventually(WAIT, || svc.running.readiness.is_ready().then_some(()))
        .await
        .map_err(|_| anyhow::anyhow!("not ready: {:?}", svc.running.readiness.snapshot()))
}

fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj["metadata"]["labels"][key].as_str()
}

async fn send_c2(svc: &Service, src: &str, seq: u64) -> anyhow::Result<()> {
    let line = lines::with_bsd_header(&lines::c2(src, "203.0.113.66", seq));
    syslog::send_tcp(svc.running.tcp[0], &[line], Framing::NewLine).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_down_at_start_leaves_riposte_serving_and_honestly_not_ready(
) -> anyhow::Result<()> {
    let kube = KubeApiServer::start().await?;
    kube.add_namespace("shop", &[])?;
    kube.add_pod(PodFixture::new("shop", "web-1", "10.244.3.17"))?;
    kube.stop().await;
    let mut failure = None;
    let svc = service::start_with(|c, dir| {
        if let Err(e) = use_cluster(c, dir, &kube)
            .and_then(|()| add_playbook(c, "quick.rhai", &QUICK_QUARANTINE.replace("TTL", "1h")))
        {
            failure = Some(e);
        }
    })
    .await?;
    if let Some(e) = failure {
        return Err(e);
    }
    // Logs are still taken and decided while the cluster is away…
    send_c2(&svc, "10.244.3.17", 1).await?;
    riposte_tests::eventually(WAIT, || {
        (svc.metric("riposte_events_processed_total", &[]) >= 1.0).then_some(())
    })
    .await?;
    // …and /readyz says the pod index is not there yet.
    let ready: serde_json::Value = reqwest::get(svc.http_url("/readyz")).await?.json().await?;
    assert_eq!(ready["ready"], false, "{ready}");
    assert_eq!(ready["checks"]["pod_index"], false, "{ready}");
    // When the API server comes back, the index syncs and Riposte acts.
    kube.restart().await?;
    wait_ready(&svc).await?;
    send_c2(&svc, "10.244.3.17", 2).await?;
    riposte_tests::eventually(Duration::from_secs(30), || {
        let p = kube.get("pods", "shop", "web-1")?;
        (label(&p, "riposte.io/quarantine") == Some("true")).then_some(())
    })
    .await
    .map_err(|_| anyhow::anyhow!("never quarantined after the API server came back"))?;
    svc.stop().await;
    Ok(())
}
