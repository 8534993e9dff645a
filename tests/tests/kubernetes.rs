//! End to end against the Kubernetes API stand-in, with the real
//! `kube::Client`: a C2 threat log over syslog quarantines the pod behind
//! its address; the expiry releases it, also across a restart; guardrails
//! refuse protected namespaces and cap a flood of spoofed logs; detach
//! leaves the ReplicaSet with a clean replacement to make.

use std::time::Duration;

use riposte_engine::decide::decision::{ActionStatus, DecisionFilter};
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

async fn start(
    kube: &KubeApiServer,
    ttl: &str,
    adjust: impl FnOnce(&mut riposte_engine::config::Config),
) -> anyhow::Result<Service> {
    let mut failure = None;
    let svc = service::start_with(|c, dir| {
        if let Err(e) = use_cluster(c, dir, kube) {
            failure = Some(e);
        }
        if let Err(e) = add_playbook(c, "quick.rhai", &QUICK_QUARANTINE.replace("TTL", ttl)) {
            failure = Some(e);
        }
        adjust(c);
    })
    .await?;
    if let Some(e) = failure {
        return Err(e);
    }
    wait_ready(&svc).await?;
    Ok(svc)
}

async fn wait_ready(svc: &Service) -> anyhow::Result<()> {
    riposte_tests::eventually(WAIT, || svc.running.readiness.is_ready().then_some(()))
        .await
        .map_err(|_| anyhow::anyhow!("not ready: {:?}", svc.running.readiness.snapshot()))
}

fn name_of(obj: &Value) -> String {
    obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj["metadata"]["labels"][key].as_str()
}

async fn send_c2(svc: &Service, src: &str, seq: u64) -> anyhow::Result<()> {
    let line = lines::with_bsd_header(&lines::c2(src, "203.0.113.66", seq));
    syslog::send_tcp(svc.running.tcp[0], &[line], Framing::NewLine).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c2_log_quarantines_the_pod_and_the_expiry_releases_it_across_a_restart(
) -> anyhow::Result<()> {
    let kube = KubeApiServer::start().await?;
    kube.add_namespace("shop", &[("team", "payments")])?;
    let web = kube.add_deployment("shop", "checkout", &[("app", "checkout")])?;
    let victim = name_of(&kube.add_pod(web.pod("10.244.1.17"))?);
    kube.add_pod(web.pod("10.244.1.18"))?;
    kube.add_pod(web.pod("10.244.1.19"))?;

    let svc = start(&kube, "6s", |_| {}).await?;
    send_c2(&svc, "10.244.1.17", 1).await?;

    let pod = riposte_tests::eventually(WAIT, || {
        let p = kube.get("pods", "shop", &victim)?;
        (label(&p, "riposte.io/quarantine") == Some("true")).then_some(p)
    })
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "pod never quarantined; decisions: {:?}",
            svc.running.decisions.recent(5, &DecisionFilter::default())
        )
    })?;
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(annotations["riposte.io/playbook"], "quick-quarantine");
    assert!(annotations["riposte.io/expires-at"].is_string());
    assert!(annotations["riposte.io/reason"]
        .as_str()
        .unwrap_or("")
        .contains("203.0.113.66"));
    // The deny-all policy selects the quarantine label, both directions.
    let policy = riposte_tests::eventually(WAIT, || {
        kube.get("networkpolicies", "shop", "riposte-quarantine")
    })
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "no quarantine policy: {:?}",
            kube.list("networkpolicies", None)
        )
    })?;
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"]["riposte.io/quarantine"],
        "true"
    );
    let types: Vec<&str> = policy["spec"]["policyTypes"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        types.contains(&"Ingress") && types.contains(&"Egress"),
        "{types:?}"
    );
    assert_eq!(
        policy["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "riposte"
    );
    // Written by server-side apply under Riposte's field manager.
    assert!(kube.requests().iter().any(|r| r.is_apply_by("riposte")));
    // The other replicas are untouched.
    let untouched = kube
        .list("pods", Some("shop"))
        .iter()
        .filter(|p| label(p, "riposte.io/quarantine").is_none())
        .count();
    assert_eq!(untouched, 2);
    // A Kubernetes Event on the pod says why.
    riposte_tests::eventually(WAIT, || {
        let events = [
            kube.list("events", Some("shop")),
            kube.list("events.events.k8s.io", Some("shop")),
        ]
        .concat();
        events
            .iter()
            .any(|e| e["reason"] == "RiposteQuarantined")
            .then_some(())
    })
    .await
    .map_err(|_| anyhow::anyhow!("no RiposteQuarantined event"))?;

    // Restart Riposte before the quarantine expires: the expiry is read back
    // from the pod and still fires.
    let svc = svc.restart().await?;
    wait_ready(&svc).await?;
    riposte_tests::eventually(Duration::from_secs(20), || {
        let p = kube.get("pods", "shop", &victim)?;
        label(&p, "riposte.io/quarantine").is_none().then_some(())
    })
    .await
    .map_err(|_| anyhow::anyhow!("quarantine never expired"))?;
    riposte_tests::eventually(WAIT, || {
        kube.get("networkpolicies", "shop", "riposte-quarantine")
            .is_none()
            .then_some(())
    })
    .await
    .map_err(|_| anyhow::anyhow!("the policy outlived the last quarantined pod"))?;
    riposte_tests::eventually(WAIT, || {
        svc.running
            .decisions
            .recent(
                10,
                &DecisionFilter {
                    playbook: Some("riposte-expiry".into()),
                    ..DecisionFilter::default()
                },
            )
            .iter()
            .any(|d| d.actions.iter().any(|a| a.status == ActionStatus::Applied))
            .then_some(())
    })
    .await
    .map_err(|_| anyhow::anyhow!("the expiry's release is not on the decision record"))?;
    svc.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_in_kube_system_is_refused() -> anyhow::Result<()> {
    let kube = KubeApiServer::start().await?;
    kube.add_pod(PodFixture::new(
        "kube-system",
        "coredns-5d78c9869d-abcde",
        "10.244.0.10",
    ))?;
    let svc = start(&kube, "1h", |_| {}).await?;
    send_c2(&svc, "10.244.0.10", 1).await?;
    let refused = riposte_tests::eventually(WAIT, || {
        svc.running
            .decisions
            .recent(5, &DecisionFilter::default())
            .into_iter()
            .flat_map(|d| d.actions)
            .find(|a| a.status == ActionStatus::Refused)
    })
    .await?;
    assert_eq!(refused.code.as_deref(), Some("protected_namespace"));
    let pod = kube
        .get("pods", "kube-system", "coredns-5d78c9869d-abcde")
        .ok_or_else(|| anyhow::anyhow!("pod gone"))?;
    assert_eq!(label(&pod, "riposte.io/quarantine"), None);
    assert!(
        svc.metric(
            "riposte_guardrail_refusals_total",
            &[("reason", "protected_namespace")]
        ) >= 1.0
    );
    svc.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_spoofed_c2_logs_quarantines_no_more_than_the_rate_cap() -> anyhow::Result<()> {
    let kube = KubeApiServer::start().await?;
    let namespaces = 20;
    for n in 0..namespaces {
        kube.add_namespace(&format!("team-{n}"), &[])?;
    }
    let pods: Vec<PodFixture> = (0..1000)
        .map(|i| {
            PodFixture::new(
                &format!("team-{}", i % namespaces),
                &format!("app-{i}"),
                &format!("10.245.{}.{}", i / 250, i % 250 + 1),
            )
        })
        .collect();
    kube.seed_pods(pods)?;
    let svc = start(&kube, "1h", |_| {}).await?;
    let lines: Vec<String> = (0..1000)
        .map(|i| {
            lines::with_bsd_header(&lines::c2(
                &format!("10.245.{}.{}", i / 250, i % 250 + 1),
                "203.0.113.66",
                i,
            ))
        })
        .collect();
    syslog::send_tcp(svc.running.tcp[0], &lines, Framing::OctetCounting).await?;
    riposte_tests::eventually(Duration::from_secs(30), || {
        (svc.metric("riposte_events_processed_total", &[]) >= 1000.0).then_some(())
    })
    .await?;
    // Let every queued action finish.
    riposte_tests::eventually(Duration::from_secs(60), || {
        svc.running
            .decisions
            .recent(2000, &DecisionFilter::default())
            .iter()
            .all(|d| d.actions.iter().all(|a| a.status != ActionStatus::Queued))
            .then_some(())
    })
    .await
    .map_err(|_| anyhow::anyhow!("actions still queued after a minute"))?;
    let quarantined = kube
        .list("pods", None)
        .iter()
        .filter(|p| label(p, "riposte.io/quarantine").is_some())
        .count();
    let cap =
        riposte_engine::act::guardrails::GuardrailConfig::default().max_containments_per_minute;
    assert!(
        quarantined <= cap,
        "{quarantined} pods quarantined, cap {cap}"
    );
    if quarantined == 0 {
        let mut codes = std::collections::BTreeMap::new();
        for d in svc
            .running
            .decisions
            .recent(2000, &DecisionFilter::default())
        {
            for a in d.actions {
                *codes
                    .entry(format!("{:?} {:?} {:?}", a.status, a.code, a.reason))
                    .or_insert(0) += 1;
            }
        }
        panic!("nothing quarantined; action outcomes: {codes:#?}");
    }
    let refused = svc.metric(
        "riposte_guardrail_refusals_total",
        &[("reason", "rate_limit")],
    ) + svc.metric(
        "riposte_guardrail_refusals_total",
        &[("reason", "namespace_rate_limit")],
    );
    assert!(
        refused >= (1000 - cap) as f64,
        "refusals counted: {refused}"
    );
    svc.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detach_leaves_the_replicaset_selector_unmatched_and_keeps_the_pod() -> anyhow::Result<()> {
    let kube = KubeApiServer::start().await?;
    kube.add_namespace("shop", &[])?;
    let web = kube.add_deployment("shop", "checkout", &[("app", "checkout")])?;
    let victim = name_of(&kube.add_pod(web.pod("10.244.2.17"))?);
    kube.add_pod(web.pod("10.244.2.18"))?;
    let svc = start(&kube, "1h", |c| c.kubernetes.quarantine.detach = true).await?;
    send_c2(&svc, "10.244.2.17", 1).await?;
    let pod = riposte_tests::eventually(WAIT, || {
        let p = kube.get("pods", "shop", &victim)?;
        let done = label(&p, "riposte.io/quarantine") == Some("true")
            && p["metadata"]["annotations"]["riposte.io/detached-labels"].is_string();
        done.then_some(p)
    })
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "pod never quarantined and detached: {:?}",
            svc.running.decisions.recent(3, &DecisionFilter::default())
        )
    })?;
    let selector = web.replicaset["spec"]["selector"]["matchLabels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(!selector.is_empty());
    let matches = selector
        .iter()
        .all(|(k, v)| pod["metadata"]["labels"][k.as_str()] == *v);
    assert!(
        !matches,
        "the ReplicaSet still selects the quarantined pod: {}",
        pod["metadata"]["labels"]
    );
    let detached = pod["metadata"]["annotations"]["riposte.io/detached-labels"]
        .as_str()
        .unwrap_or_default();
    assert!(detached.contains("checkout"), "{detached}");
    assert!(
        kube.get("pods", "shop", &victim).is_some(),
        "kept for forensics"
    );
    svc.stop().await;
    Ok(())
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_rbac_is_enough_for_quarantine_detach_and_release() -> anyhow::Result<()> {
    let kube = KubeApiServer::start().await?;
    kube.add_namespace("shop", &[])?;
    let web = kube.add_deployment("shop", "checkout", &[("app", "checkout")])?;
    kube.create(
        "services",
        riposte_tests::kube_api::fixtures::service("shop", "checkout", &[("app", "checkout")]),
    )?;
    let victim = name_of(&kube.add_pod(web.pod("10.244.4.17"))?);
    kube.add_pod(web.pod("10.244.4.18"))?;
    let rbac = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/rbac/riposte.yaml"
    ))?;
    kube.restrict_to_manifests("system:serviceaccount:riposte:riposte", &rbac)?;
    let svc = start(&kube, "3s", |c| c.kubernetes.quarantine.detach = true).await?;
    send_c2(&svc, "10.244.4.17", 1).await?;
    riposte_tests::eventually(WAIT, || {
        let p = kube.get("pods", "shop", &victim)?;
        (label(&p, "riposte.io/quarantine") == Some("true")).then_some(())
    })
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "not quarantined under the shipped RBAC: {:?}",
            forbidden(&kube)
        )
    })?;
    riposte_tests::eventually(Duration::from_secs(20), || {
        let p = kube.get("pods", "shop", &victim)?;
        label(&p, "riposte.io/quarantine").is_none().then_some(())
    })
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "not released under the shipped RBAC: {:?}",
            forbidden(&kube)
        )
    })?;
    assert!(
        forbidden(&kube).is_empty(),
        "requests the RBAC refused: {:?}",
        forbidden(&kube)
    );
    svc.stop().await;
    Ok(())
}

fn forbidden(kube: &KubeApiServer) -> Vec<String> {
    kube.requests()
        .iter()
        .filter(|r| r.status == 403)
        .map(|r| format!("{} {}", r.verb, r.path))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_last_quarantined_pod_removes_the_deny_all_policy() -> anyhow::Result<()> {
    let kube = KubeApiServer::start().await?;
    kube.add_namespace("shop", &[])?;
    kube.add_pod(PodFixture::new("shop", "web-1", "10.244.5.17"))?;
    let svc = start(&kube, "1h", |_| {}).await?;
    send_c2(&svc, "10.244.5.17", 1).await?;
    riposte_tests::eventually(WAIT, || {
        kube.get("networkpolicies", "shop", "riposte-quarantine")
    })
    .await?;
    kube.delete("pods", "shop", "web-1")?;
    riposte_tests::eventually(WAIT, || {
        kube.get("networkpolicies", "shop", "riposte-quarantine")
            .is_none()
            .then_some(())
    })
    .await
    .map_err(|_| anyhow::anyhow!("the deny-all policy outlived its last pod"))?;
    svc.stop().await;
    Ok(())
}
