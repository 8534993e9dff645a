//! The PAN-OS XML API client against the stand-in: batching, idempotent
//! answers, retries, bad keys, HTML answers, TLS trust, read-back paging;
//! then Riposte end to end (C2 log → tag, reboot → reconcile, EDLs,
//! never-block refusals, a failing firewall).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use riposte_firewall::xmlapi::{ApiKey, Batcher, Client, Tag, TargetConfig, UidOp, XmlApiError};
use riposte_tests::panos_api::{Fault, FaultKind, Options, PanosApi};

fn config(fw: &PanosApi) -> TargetConfig {
    let mut c = TargetConfig::new("fw1", &fw.url(), ApiKey::new(fw.key()));
    c.retry_base_ms = 5;
    c.retry_max_ms = 20;
    c.requests_per_second = 1000.0;
    c.batch_interval_ms = 20;
    c.timeout_secs = 2;
    c
}

fn reg(ip: &str, tag: &str, timeout: u64) -> UidOp {
    UidOp::register(ip.parse().unwrap(), Tag::new(tag).unwrap(), timeout, false).unwrap()
}

fn unreg(ip: &str, tag: &str) -> UidOp {
    UidOp::Unregister {
        ip: ip.parse().unwrap(),
        tag: Tag::new(tag).unwrap(),
    }
}

#[tokio::test]
async fn registrations_are_batched_into_few_requests_with_their_timeouts() {
    let fw = PanosApi::start().await.unwrap();
    let mut c = config(&fw);
    c.batch_entries = 1000;
    let batcher = Batcher::start(Client::new(c).unwrap());
    let ops: Vec<_> = (0..2500)
        .map(|i| reg(&format!("10.1.{}.{}", i / 250, i % 250), "riposte-c2", 3600))
        .collect();
    let results = batcher.submit_all(ops).await;
    assert!(
        results.iter().all(|r| r.is_ok()),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    assert_eq!(fw.count_tagged("riposte-c2"), 2500);
    assert!(fw.count("user-id") <= 4, "{} requests", fw.count("user-id"));
    let info = fw.tag("10.1.0.7", "riposte-c2").unwrap();
    assert_eq!((info.timeout, info.persistent), (3600, false));
}

#[tokio::test]
async fn already_there_and_already_gone_are_successes_and_other_refusals_are_not() {
    let fw = PanosApi::start().await.unwrap();
    let client = Client::new(config(&fw)).unwrap();
    let ops = [reg("192.0.2.1", "a", 60), reg("192.0.2.1", "a", 60)];
    // The same key twice in one message: the second is "already exists".
    assert!(client.apply(&ops).await.iter().all(|r| r.is_ok()));
    assert!(client.apply(&[unreg("192.0.2.9", "a")]).await[0].is_ok());
    assert!(client.apply(&[unreg("192.0.2.1", "a")]).await[0].is_ok());
    assert!(fw.tag("192.0.2.1", "a").is_none());
    // A prefix, a range and an IPv6 address are fine.
    let many = [
        reg("192.0.2.0/28", "b", 0),
        reg("192.0.2.40-192.0.2.50", "b", 0),
        reg("2001:db8::1", "b", 0),
    ];
    assert!(client.apply(&many).await.iter().all(|r| r.is_ok()));
    assert_eq!(fw.count_tagged("b"), 3);
    // A refused entry fails alone: a raw message with a bad address.
    let raw = "<uid-message><version>2.0</version><type>update</type><payload><register><entry ip=\"not-an-ip\"><tag><member>x</member></tag></entry><entry ip=\"192.0.2.77\"><tag><member>x</member></tag></entry></register></payload></uid-message>";
    let answer = client.send_uid(raw).await.unwrap();
    assert_eq!(answer.refused.len(), 1);
    assert_eq!(answer.refused[0].ip, "not-an-ip");
    assert!(fw.tag("192.0.2.77", "x").is_some());
}

#[tokio::test]
async fn transient_failures_are_retried_and_permanent_ones_are_not() {
    let fw = PanosApi::start().await.unwrap();
    let client = Client::new(config(&fw)).unwrap();
    fw.inject(Fault::new(FaultKind::Status(503), 2));
    let r = client.apply(&[reg("192.0.2.2", "t", 60)]).await;
    assert!(r[0].is_ok(), "{r:?}");
    assert_eq!(fw.count("user-id"), 3);

    fw.reset_log();
    fw.inject(Fault::new(FaultKind::Html, 1));
    let r = client.apply(&[reg("192.0.2.3", "t", 60)]).await;
    match &r[0] {
        Err(XmlApiError::NotXml { snippet, .. }) => assert!(snippet.contains("html"), "{snippet}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        fw.count("user-id"),
        1,
        "an HTML page is not retried at once"
    );

    fw.inject(Fault::new(FaultKind::Garbage, 1));
    assert!(matches!(
        client.apply(&[reg("192.0.2.3", "t", 60)]).await[0],
        Err(XmlApiError::NotXml { .. })
    ));

    // Every attempt fails: bounded attempts, the last error reported.
    fw.reset_log();
    fw.inject(Fault::new(FaultKind::Status(500), 100));
    let r = client.apply(&[reg("192.0.2.4", "t", 60)]).await;
    assert!(
        matches!(r[0], Err(XmlApiError::Http { status: 500, .. })),
        "{r:?}"
    );
    assert_eq!(fw.count("user-id"), 4);
    fw.clear_faults();
}

#[tokio::test]
async fn a_wrong_key_is_an_auth_error_tried_once_and_never_shown() {
    let fw = PanosApi::start().await.unwrap();
    let mut c = config(&fw);
    c.key = Some(ApiKey::new("wrong-key-123"));
    let shown = format!("{c:?}");
    assert!(!shown.contains("wrong-key-123"));
    let client = Client::new(c).unwrap();
    let r = client.apply(&[reg("192.0.2.5", "t", 60)]).await;
    match &r[0] {
        Err(e @ XmlApiError::Auth { status: 403, .. }) => {
            assert!(!e.is_transient());
            assert!(!e.to_string().contains("wrong-key-123"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fw.requests().len(), 1);
    assert!(!fw.requests()[0].authorized);
}

#[tokio::test]
async fn hangs_time_out_and_a_down_firewall_is_a_transient_connect_error() {
    let fw = PanosApi::start().await.unwrap();
    let mut c = config(&fw);
    c.timeout_secs = 1;
    c.max_attempts = 1;
    let client = Client::new(c).unwrap();
    fw.inject(Fault::new(FaultKind::Hang, 1));
    let started = Instant::now();
    let r = client.apply(&[reg("192.0.2.6", "t", 60)]).await;
    assert!(matches!(r[0], Err(XmlApiError::Timeout(_))), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(5));

    fw.stop().await;
    let r = client.apply(&[reg("192.0.2.6", "t", 60)]).await;
    match &r[0] {
        Err(e @ XmlApiError::Connect(_)) => assert!(e.is_transient()),
        other => panic!("{other:?}"),
    }
    fw.restart().await.unwrap();
    assert!(client.apply(&[reg("192.0.2.6", "t", 60)]).await[0].is_ok());
}

#[tokio::test]
async fn read_back_pages_through_everything_and_filters_by_tag() {
    let fw = PanosApi::start().await.unwrap();
    let mut c = config(&fw);
    c.read_page_size = 500;
    let client = Client::new(c).unwrap();
    let mut ops: Vec<_> = (0..1200)
        .map(|i| reg(&format!("10.2.{}.{}", i / 200, i % 200), "riposte-c2", 0))
        .collect();
    ops.push(reg("192.0.2.99", "other", 0));
    assert!(client.apply(&ops).await.iter().all(|r| r.is_ok()));
    let all = client.registered(None).await.unwrap();
    assert_eq!(all.len(), 1201);
    assert_eq!(fw.count("op"), 3);
    let tagged = client
        .registered(Some(&Tag::new("riposte-c2").unwrap()))
        .await
        .unwrap();
    assert_eq!(tagged.len(), 1200);
    assert!(tagged
        .iter()
        .all(|e| e.tags == vec!["riposte-c2".to_string()]));
}

#[tokio::test]
async fn vsys_and_panorama_target_travel_with_every_request() {
    let fw = PanosApi::start().await.unwrap();
    let mut c = config(&fw);
    c.vsys = Some("vsys2".into());
    c.target = Some("007951000123456".into());
    let client = Client::new(c).unwrap();
    assert!(client.apply(&[reg("192.0.2.8", "t", 60)]).await[0].is_ok());
    let req = &fw.requests()[0];
    assert_eq!(req.vsys.as_deref(), Some("vsys2"));
    assert_eq!(req.target.as_deref(), Some("007951000123456"));
    assert_eq!(req.method, "POST");
}

#[tokio::test]
async fn tls_trusts_a_ca_file_or_a_pinned_certificate_and_nothing_else() {
    let fw = PanosApi::start_with(Options {
        tls: true,
        key: None,
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, fw.ca_pem().unwrap()).unwrap();

    let mut with_ca = config(&fw);
    with_ca.ca_file = Some(ca);
    let client = Client::new(with_ca).unwrap();
    assert!(client.apply(&[reg("192.0.2.10", "t", 60)]).await[0].is_ok());

    let mut pinned = config(&fw);
    pinned.url = format!("https://127.0.0.1:{}", fw.addr().port());
    pinned.pinned_sha256 = Some(fw.cert_sha256().unwrap().to_string());
    let client = Client::new(pinned.clone()).unwrap();
    assert!(client.apply(&[reg("192.0.2.11", "t", 60)]).await[0].is_ok());

    pinned.pinned_sha256 = Some("00".repeat(32));
    pinned.max_attempts = 1;
    let client = Client::new(pinned).unwrap();
    let r = client.apply(&[reg("192.0.2.12", "t", 60)]).await;
    assert!(matches!(r[0], Err(XmlApiError::Tls(_))), "{r:?}");

    // The public roots do not know the stand-in's CA.
    let mut plain = config(&fw);
    plain.max_attempts = 1;
    let r = Client::new(plain)
        .unwrap()
        .apply(&[reg("192.0.2.13", "t", 60)])
        .await;
    assert!(matches!(r[0], Err(XmlApiError::Tls(_))), "{r:?}");
    assert!(fw.tag("192.0.2.12", "t").is_none());
}

#[tokio::test]
async fn the_stand_in_forgets_non_persistent_tags_on_reboot_and_expires_timeouts() {
    let fw = PanosApi::start().await.unwrap();
    let client = Client::new(config(&fw)).unwrap();
    let persistent = UidOp::register(
        "192.0.2.20".parse().unwrap(),
        Tag::new("p").unwrap(),
        0,
        true,
    )
    .unwrap();
    let ops = [
        persistent,
        reg("192.0.2.21", "n", 0),
        reg("192.0.2.22", "short", 1),
    ];
    assert!(client.apply(&ops).await.iter().all(|r| r.is_ok()));
    fw.reboot();
    assert!(fw.tag("192.0.2.20", "p").is_some());
    assert!(fw.tag("192.0.2.21", "n").is_none());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(fw.tag("192.0.2.22", "short").is_none());
}

// ---------------------------------------------------------------------
// Riposte end to end.
// ---------------------------------------------------------------------

mod e2e {
    use super::*;
    use riposte_engine::act::firewall_sync::config::{BasicUser, EdlListConfig};
    use riposte_engine::auth::{hash_token, Scope, TokenConfig};
    use riposte_engine::decide::decision::{ActionStatus, DecisionFilter};
    use riposte_firewall::edl::EdlKind;
    use riposte_tests::lines;
    use riposte_tests::service::{self, shipped_playbooks, Service};
    use riposte_tests::syslog::{self, Framing};

    const ACT: &str = "soar-act-token";
    const EDL_PASSWORD: &str = "edl-poll-secret";

    fn target(fw: &PanosApi, key: &str) -> TargetConfig {
        let mut t = TargetConfig::new("fw1", &fw.url(), ApiKey::new(key));
        t.retry_base_ms = 5;
        t.retry_max_ms = 20;
        t.max_attempts = 2;
        t.timeout_secs = 2;
        t.batch_interval_ms = 10;
        t
    }

    async fn start(fw: &PanosApi, key: &str, playbooks: Option<&str>) -> Service {
        let key = key.to_string();
        let t = target(fw, &key);
        let pb = playbooks.map(str::to_string);
        service::start_with(move |c, _| {
            match &pb {
                Some(text) => service::add_playbook(c, "test.rhai", text).unwrap(),
                None => c.playbooks.dir = shipped_playbooks(),
            }
            c.api.tokens = vec![TokenConfig {
                name: "soar".into(),
                sha256: hash_token(ACT),
                scopes: vec![Scope::Act, Scope::Read],
            }];
            c.firewall.targets = vec![t];
            c.firewall.reconcile_interval_secs = 3600;
            c.firewall.dns_servers = vec!["10.96.0.10/32".parse().unwrap()];
            c.firewall.service_cidrs = vec!["10.96.0.0/12".parse().unwrap()];
            c.firewall.edl = vec![EdlListConfig {
                name: "c2".into(),
                kind: EdlKind::Ip,
                basic: vec![BasicUser {
                    user: "pa-fw".into(),
                    sha256: hash_token(EDL_PASSWORD),
                }],
                bearer_sha256: Vec::new(),
            }];
        })
        .await
        .unwrap()
    }

    async fn send_c2(svc: &Service, c2: &str, seq: u64) {
        let line = lines::with_bsd_header(&lines::c2("10.244.1.17", c2, seq));
        syslog::send_tcp(svc.running.tcp[0], &[line], Framing::OctetCounting)
            .await
            .unwrap();
    }

    async fn edl(svc: &Service, etag: Option<&str>) -> reqwest::Response {
        let mut req = reqwest::Client::new()
            .get(svc.http_url("/v1/edl/c2"))
            .basic_auth("pa-fw", Some(EDL_PASSWORD));
        if let Some(tag) = etag {
            req = req.header("if-none-match", tag);
        }
        req.send().await.unwrap()
    }

    fn fw_actions(
        svc: &Service,
        action: &str,
    ) -> Vec<riposte_engine::decide::decision::ActionRecord> {
        svc.running
            .decisions
            .recent(100, &DecisionFilter::default())
            .into_iter()
            .flat_map(|d| d.actions)
            .filter(|a| a.action == action && a.status != ActionStatus::Queued)
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_c2_log_tags_the_c2_address_and_lists_it_and_a_reboot_is_repaired() {
        let fw = PanosApi::start().await.unwrap();
        let svc = start(&fw, &fw.key(), None).await;
        send_c2(&svc, "203.0.113.66", 1).await;

        let info = riposte_tests::eventually(Duration::from_secs(10), || {
            fw.tag("203.0.113.66", "riposte-c2")
        })
        .await
        .unwrap();
        assert_eq!(info.timeout, 24 * 3600, "the playbook's 24h ttl");

        // The EDL the firewall polls: basic auth, ETag, 304.
        let anon = reqwest::get(svc.http_url("/v1/edl/c2")).await.unwrap();
        assert_eq!(anon.status(), 401);
        assert!(anon.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic"));
        let mut list = String::new();
        let mut etag = String::new();
        for _ in 0..100 {
            let r = edl(&svc, None).await;
            assert_eq!(r.status(), 200);
            etag = r.headers()["etag"].to_str().unwrap().to_string();
            list = r.text().await.unwrap();
            if !list.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(list, "203.0.113.66\n");
        let again = edl(&svc, Some(&etag)).await;
        assert_eq!(again.status(), 304);

        // A reboot forgets the non-persistent tag; the reconciler restores it.
        fw.reboot();
        assert!(fw.tag("203.0.113.66", "riposte-c2").is_none());
        let fwd = svc.running.firewall.clone().unwrap();
        let rounds = fwd.reconcile(Some(&svc.running.decisions)).await;
        assert_eq!(rounds[0].1.missing, 1, "{rounds:?}");
        assert!(fw.tag("203.0.113.66", "riposte-c2").is_some());
        assert_eq!(
            svc.metric(
                "riposte_firewall_drift_total",
                &[("firewall", "fw1"), ("kind", "missing")]
            ),
            1.0
        );
        let audit = svc.running.decisions.recent(
            10,
            &DecisionFilter {
                playbook: Some("firewall-reconciler".into()),
                ..DecisionFilter::default()
            },
        );
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].actions[0].status, ActionStatus::Applied);
        // Nothing else drifted: a second round finds nothing.
        let rounds = fwd.reconcile(Some(&svc.running.decisions)).await;
        assert_eq!(rounds[0].1, Default::default());
        svc.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn edl_entries_come_and_expire_and_bad_or_protected_values_are_refused() {
        let fw = PanosApi::start().await.unwrap();
        let svc = start(&fw, &fw.key(), None).await;
        let http = reqwest::Client::new();
        let add = |value: &str, ttl: u64| {
            http.post(svc.http_url("/v1/edl/c2"))
                .bearer_auth(ACT)
                .json(&serde_json::json!({"value": value, "ttl": ttl, "reason": "test"}))
                .send()
        };
        let r = add("198.51.100.0/24", 1).await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let first = edl(&svc, None).await;
        let etag = first.headers()["etag"].to_str().unwrap().to_string();
        assert_eq!(first.text().await.unwrap(), "198.51.100.0/24\n");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let later = edl(&svc, Some(&etag)).await;
        assert_eq!(later.status(), 200, "expired: the list changed");
        assert_eq!(later.text().await.unwrap(), "");

        let bad = add("198.51.100.1/24", 60).await.unwrap();
        assert_eq!(bad.status(), 400);
        assert!(bad.text().await.unwrap().contains("host bits"));
        let protected = add("10.96.0.10", 60).await.unwrap();
        assert_eq!(protected.status(), 422);
        assert!(protected.text().await.unwrap().contains("never-block"));
        let unauth = http
            .post(svc.http_url("/v1/edl/c2"))
            .json(&serde_json::json!({"value": "192.0.2.1", "ttl": 60}))
            .send()
            .await
            .unwrap();
        assert_eq!(unauth.status(), 401);

        assert_eq!(add("192.0.2.1-192.0.2.9", 60).await.unwrap().status(), 201);
        let del = http
            .delete(svc.http_url("/v1/edl/c2/192.0.2.1-192.0.2.9"))
            .bearer_auth(ACT)
            .send()
            .await
            .unwrap();
        assert_eq!(del.status(), 200);
        assert_eq!(edl(&svc, None).await.text().await.unwrap(), "");
        svc.stop().await;
    }

    const TAG_DNS: &str = r#"// name: tag-dns
// description: a playbook fooled into blocking the cluster DNS
// trigger: threat.type = spyware
// mode: enforce
tag_ip("10.96.0.10", "riposte-c2", #{ ttl: "1h" });
edl_add("c2", "10.96.0.0/16", #{ ttl: "1h" });
tag_ip("203.0.113.7", "riposte-c2", #{ ttl: "1h" });
"#;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_block_addresses_are_refused_and_recorded_with_the_reason() {
        let fw = PanosApi::start().await.unwrap();
        let svc = start(&fw, &fw.key(), Some(TAG_DNS)).await;
        send_c2(&svc, "203.0.113.7", 2).await;
        riposte_tests::eventually(Duration::from_secs(10), || {
            fw.tag("203.0.113.7", "riposte-c2")
        })
        .await
        .unwrap();
        let refused = riposte_tests::eventually(Duration::from_secs(10), || {
            let r: Vec<_> = fw_actions(&svc, "tag_ip")
                .into_iter()
                .chain(fw_actions(&svc, "edl_add"))
                .filter(|a| a.status == ActionStatus::Refused)
                .collect();
            (r.len() == 2).then_some(r)
        })
        .await
        .unwrap();
        for a in &refused {
            assert_eq!(a.code.as_deref(), Some("never_block"));
            assert!(
                a.reason.as_deref().unwrap().contains("never-block"),
                "{a:?}"
            );
        }
        assert!(fw.tag("10.96.0.10", "riposte-c2").is_none());
        assert_eq!(
            svc.metric(
                "riposte_guardrail_refusals_total",
                &[("reason", "never_block")]
            ),
            2.0
        );
        svc.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_firewall_is_counted_loses_nothing_and_is_repaired_later() {
        let fw = PanosApi::start().await.unwrap();
        // Riposte holds a key the firewall does not accept.
        let svc = start(&fw, "revoked-key", None).await;
        send_c2(&svc, "203.0.113.66", 3).await;
        let failed = riposte_tests::eventually(Duration::from_secs(10), || {
            fw_actions(&svc, "tag_ip")
                .into_iter()
                .find(|a| a.status == ActionStatus::Failed)
        })
        .await
        .unwrap();
        assert_eq!(failed.code.as_deref(), Some("auth"));
        assert!(!failed.reason.as_deref().unwrap().contains("revoked-key"));
        assert!(
            svc.metric(
                "riposte_firewall_errors_total",
                &[("firewall", "fw1"), ("kind", "auth")]
            ) >= 1.0
        );

        // HTML instead of XML, then the firewall away: counted, nothing lost.
        let fwd = svc.running.firewall.clone().unwrap();
        fw.set_key("revoked-key");
        fw.inject(Fault::new(FaultKind::Html, 1).for_type("op"));
        let round = fwd.reconcile(None).await;
        assert_eq!(round[0].1.errors, 1);
        assert!(
            svc.metric(
                "riposte_firewall_errors_total",
                &[("firewall", "fw1"), ("kind", "not_xml")]
            ) >= 1.0
        );
        fw.stop().await;
        let round = fwd.reconcile(None).await;
        assert_eq!(round[0].1.errors, 1);
        // The rest of Riposte is unaffected.
        let health = reqwest::get(svc.http_url("/healthz")).await.unwrap();
        assert_eq!(health.status(), 200);

        // Back, with the key accepted: the lease kept in the store is
        // registered by the next round.
        fw.restart().await.unwrap();
        let round = fwd.reconcile(Some(&svc.running.decisions)).await;
        assert_eq!(round[0].1.missing, 1, "{round:?}");
        assert_eq!(
            fw.tag("203.0.113.66", "riposte-c2")
                .map(|t| t.timeout > 86_000),
            Some(true)
        );
        svc.stop().await;
    }
}

/// The dual path against both stand-ins: a quarantine also tags the pod's
/// address on the firewall; when the pod's address changes under its
/// quarantine (a sandbox recreated), the tag follows it; the release
/// untags it.
mod dual_path {
    use std::time::Duration;

    use riposte_engine::auth::{hash_token, Scope, TokenConfig};
    use riposte_firewall::xmlapi::{ApiKey, TargetConfig};
    use riposte_tests::kube_api::KubeApiServer;
    use riposte_tests::lines;
    use riposte_tests::panos_api::PanosApi;
    use riposte_tests::service::{self, add_playbook, use_cluster};
    use riposte_tests::syslog::{self, Framing};
    use serde_json::json;

    const WAIT: Duration = Duration::from_secs(20);
    const ACT: &str = "soar-act-token";

    const QUARANTINE: &str = r#"// name: quarantine-c2
// description: quarantine the source pod of a C2 alert
// trigger: threat.type = spyware
// mode: enforce
let pod = event.source.pod;
if pod != () {
    quarantine(pod, #{ ttl: "2h", reason: "C2" });
}
"#;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_quarantine_tag_follows_the_pods_address_and_the_release_removes_it(
    ) -> anyhow::Result<()> {
        let fw = PanosApi::start().await?;
        let kube = KubeApiServer::start().await?;
        kube.add_namespace("shop", &[])?;
        let web = kube.add_deployment("shop", "checkout", &[("app", "checkout")])?;
        let victim = kube.add_pod(web.pod("10.244.1.17"))?["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        kube.add_pod(web.pod("10.244.1.18"))?;
        kube.add_pod(web.pod("10.244.1.19"))?;

        let mut failure = None;
        let url = fw.url();
        let key = fw.key();
        let svc = service::start_with(|c, dir| {
            if let Err(e) = use_cluster(c, dir, &kube) {
                failure = Some(e);
            }
            if let Err(e) = add_playbook(c, "q.rhai", QUARANTINE) {
                failure = Some(e);
            }
            let mut t = TargetConfig::new("fw1", &url, ApiKey::new(&key));
            t.batch_interval_ms = 10;
            t.retry_base_ms = 5;
            t.max_attempts = 2;
            c.firewall.targets = vec![t];
            c.firewall.dual_path = true;
            c.firewall.follow_interval_secs = 1;
            c.firewall.reconcile_interval_secs = 3600;
            c.firewall.pod_cidrs = vec!["10.244.0.0/16".parse().expect("cidr")];
            c.api.tokens = vec![TokenConfig {
                name: "soar".into(),
                sha256: hash_token(ACT),
                scopes: vec![Scope::Act, Scope::Read],
            }];
        })
        .await?;
        if let Some(e) = failure {
            return Err(e);
        }
        riposte_tests::eventually(WAIT, || svc.running.readiness.is_ready().then_some(())).await?;

        let line = lines::with_bsd_header(&lines::c2("10.244.1.17", "203.0.113.66", 1));
        syslog::send_tcp(svc.running.tcp[0], &[line], Framing::OctetCounting).await?;
        riposte_tests::eventually(WAIT, || fw.tag("10.244.1.17", "riposte-quarantine"))
            .await
            .map_err(|_| anyhow::anyhow!("the pod's address was never tagged"))?;
        assert!(fw.tag("10.244.1.18", "riposte-quarantine").is_none());

        // The pod's sandbox is recreated with another address.
        kube.modify("pods", "shop", &victim, |p| {
            p["status"]["podIP"] = json!("10.244.2.40");
            p["status"]["podIPs"] = json!([{ "ip": "10.244.2.40" }]);
        })?;
        riposte_tests::eventually(WAIT, || {
            (fw.tag("10.244.2.40", "riposte-quarantine").is_some()
                && fw.tag("10.244.1.17", "riposte-quarantine").is_none())
            .then_some(())
        })
        .await
        .map_err(|_| anyhow::anyhow!("the tag did not follow: {:?}", fw.registered()))?;
        // Counted once the follower's round is over.
        riposte_tests::eventually(WAIT, || {
            let moved = svc.metric(
                "riposte_firewall_drift_total",
                &[("firewall", "fw1"), ("kind", "moved")],
            );
            (moved >= 2.0).then_some(())
        })
        .await?;

        // Released through the API: the pod's current address is untagged.
        let r = reqwest::Client::new()
            .delete(svc.http_url(&format!("/v1/quarantines/shop/{victim}")))
            .bearer_auth(ACT)
            .send()
            .await?;
        assert!(r.status().is_success(), "{}", r.text().await?);
        riposte_tests::eventually(WAIT, || {
            fw.tag("10.244.2.40", "riposte-quarantine")
                .is_none()
                .then_some(())
        })
        .await
        .map_err(|_| anyhow::anyhow!("still tagged after release: {:?}", fw.registered()))?;
        assert_eq!(fw.count_tagged("riposte-quarantine"), 0);
        svc.stop().await;
        Ok(())
    }
}
