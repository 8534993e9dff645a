//! End to end: a C2 log over syslog becomes a decision in the durable audit
//! trail, which is still there, with its outcome, after a restart.

use std::time::Duration;

use riposte_engine::store::AuditQuery;
use riposte_tests::lines;
use riposte_tests::service::{self, shipped_playbooks};
use riposte_tests::syslog::{self, Framing};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decision_lands_in_the_store_and_survives_a_restart() -> anyhow::Result<()> {
    let svc = service::start_with(|c, dir| {
        c.playbooks.dir = shipped_playbooks();
        service::checkout_inventory(c, dir);
    })
    .await?;
    assert_eq!(svc.running.store.backend_name(), "sqlite");
    let ready: serde_json::Value = reqwest::get(svc.http_url("/readyz")).await?.json().await?;
    assert_eq!(ready["checks"]["store"], true, "{ready}");

    let line = lines::with_bsd_header(&lines::c2("10.244.1.17", "203.0.113.66", 1));
    syslog::send_tcp(
        svc.running.tcp[0],
        std::slice::from_ref(&line),
        Framing::OctetCounting,
    )
    .await?;
    riposte_tests::eventually(Duration::from_secs(10), || {
        let d = svc.running.decisions.recent(
            10,
            &riposte_engine::decide::decision::DecisionFilter::default(),
        );
        d.iter()
            .any(|d| d.playbook == "c2-quarantine")
            .then_some(())
    })
    .await?;
    svc.running.audit.flush().await?;
    let query = AuditQuery {
        playbook: Some("c2-quarantine".into()),
        target: Some("shop/checkout-7d9f8b6c5-x2k4q".into()),
        target_exact: true,
        ..Default::default()
    };
    let before = svc.running.store.query_audit(&query).await?;
    assert_eq!(before.entries.len(), 1, "{before:?}");
    assert!(svc.metric("riposte_audit_records_written_total", &[]) >= 1.0);

    let svc = svc.restart().await?;
    let after = svc.running.store.query_audit(&query).await?;
    assert_eq!(after.entries, before.entries);
    let entry = &after.entries[0];
    assert_eq!(entry.mode.as_str(), "enforce");
    assert_eq!(entry.event.destination_ip, Some("203.0.113.66".parse()?));
    assert!(entry
        .intents
        .as_array()
        .is_some_and(|i| i.iter().any(|i| i["action"] == "quarantine")));
    svc.stop().await;
    Ok(())
}
