//! End to end: a C2 threat log sent over syslog to a running service with
//! the shipped playbooks ends up as a quarantine decision in its decision
//! record, readable over the API with a `read` token.

use std::time::Duration;

use riposte_engine::auth::{hash_token, Scope, TokenConfig};
use riposte_tests::lines;
use riposte_tests::service::{self, shipped_playbooks};
use riposte_tests::syslog::{self, Framing};

const READ_TOKEN: &str = "soc-read-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c2_log_over_syslog_becomes_a_quarantine_decision() -> anyhow::Result<()> {
    let svc = service::start_with(|c, dir| {
        c.playbooks.dir = shipped_playbooks();
        service::checkout_inventory(c, dir);
        c.api.tokens = vec![TokenConfig {
            name: "soc".into(),
            sha256: hash_token(READ_TOKEN),
            scopes: vec![Scope::Read],
        }];
    })
    .await?;
    let line = lines::with_bsd_header(&lines::c2("10.244.1.17", "203.0.113.66", 1));
    syslog::send_tcp(
        svc.running.tcp[0],
        std::slice::from_ref(&line),
        Framing::OctetCounting,
    )
    .await?;

    let client = reqwest::Client::new();
    let url = svc.http_url("/v1/decisions?playbook=c2-quarantine");
    assert_eq!(
        client.get(&url).send().await?.status(),
        401,
        "decisions need a token"
    );
    let decisions = riposte_tests::eventually(Duration::from_secs(10), || {
        let d = svc.running.decisions.recent(
            10,
            &riposte_engine::decide::decision::DecisionFilter::default(),
        );
        (!d.is_empty()).then_some(d)
    })
    .await?;
    assert!(decisions.iter().any(|d| d.playbook == "c2-quarantine"));

    let body: serde_json::Value = client
        .get(&url)
        .bearer_auth(READ_TOKEN)
        .send()
        .await?
        .json()
        .await?;
    let decision = &body[0];
    assert_eq!(decision["playbook"], "c2-quarantine");
    assert_eq!(decision["mode"], "enforce");
    // Nothing can carry it out yet: recorded, not applied.
    assert_eq!(decision["outcome"]["status"], "pending");
    let intents = decision["intents"].as_array().cloned().unwrap_or_default();
    let quarantine = intents
        .iter()
        .find(|i| i["action"] == "quarantine")
        .ok_or_else(|| anyhow::anyhow!("no quarantine intent in {decision}"))?;
    assert_eq!(quarantine["target"]["namespace"], "shop");
    assert_eq!(quarantine["target"]["name"], "checkout-7d9f8b6c5-x2k4q");
    assert_eq!(quarantine["ttl"], "4h");
    assert!(intents
        .iter()
        .any(|i| i["action"] == "tag_ip" && i["ip"] == "203.0.113.66" && i["tag"] == "riposte-c2"));
    assert!(intents
        .iter()
        .any(|i| i["action"] == "edl_add" && i["list"] == "c2"));

    // The same log again (a retransmission) produces the same action ids.
    syslog::send_udp(svc.running.udp[0], std::slice::from_ref(&line)).await?;
    let all = riposte_tests::eventually(Duration::from_secs(10), || {
        let d = svc.running.decisions.recent(
            10,
            &riposte_engine::decide::decision::DecisionFilter {
                playbook: Some("c2-quarantine".into()),
                ..Default::default()
            },
        );
        (d.len() >= 2).then_some(d)
    })
    .await?;
    let ids = |d: &riposte_engine::decide::decision::Decision| -> Vec<String> {
        d.intents
            .iter()
            .filter(|i| i.action.name() == "quarantine")
            .map(|i| i.action_id.clone())
            .collect()
    };
    assert_eq!(ids(&all[0]), ids(&all[1]));
    // Once more: the two retransmissions decide alike (the playbook's
    // once-per notification went with the first), and over the API they
    // are one entry counting both, as the audit trail counts them.
    syslog::send_udp(svc.running.udp[0], std::slice::from_ref(&line)).await?;
    riposte_tests::eventually(Duration::from_secs(10), || {
        let d = svc.running.decisions.recent(
            10,
            &riposte_engine::decide::decision::DecisionFilter {
                playbook: Some("c2-quarantine".into()),
                ..Default::default()
            },
        );
        (d.len() >= 3).then_some(())
    })
    .await?;
    let body: serde_json::Value = client
        .get(&url)
        .bearer_auth(READ_TOKEN)
        .send()
        .await?
        .json()
        .await?;
    let counts: Vec<u64> = body
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["count"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(counts, vec![2, 1], "{body}");
    assert_eq!(
        body[0]["sample"].as_array().map(Vec::len),
        Some(2),
        "{body}"
    );
    svc.stop().await;
    Ok(())
}
