//! Issue 12, item 9: address forms, end to end against the running service.
//!
//! - A C2 log, a playbook or the API naming an IPv6 form of a never-block
//!   address (`::ffff:10.96.0.10`, NAT64, 6to4) is refused and recorded
//!   with the reason; neither the firewall nor the EDL ever sees it.
//! - `::/0` and prefixes broader than the list takes are refused with 422;
//!   a list allowed broad prefixes takes them (never-block still holds).
//! - `10.0.0.1` and `::ffff:10.0.0.1` are one EDL entry.
//! - Notification targets on IPv6 forms of loopback and the metadata
//!   address are refused at start.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use riposte_connectors::soar::{Format, TargetConfig as SoarTargetConfig};
use riposte_engine::act::firewall_sync::config::{BasicUser, EdlListConfig};
use riposte_engine::auth::{hash_token, Scope, TokenConfig};
use riposte_engine::decide::decision::{ActionRecord, ActionStatus, DecisionFilter};
use riposte_firewall::edl::EdlKind;
use riposte_firewall::xmlapi::{ApiKey, TargetConfig};
use riposte_tests::panos_api::PanosApi;
use riposte_tests::service::{self, shipped_playbooks, Service};
use riposte_tests::syslog::{self, Framing};
use riposte_tests::{eventually, lines};

const ACT: &str = "soc-act-token";
const EDL_PASSWORD: &str = "edl-poll-secret";
const WAIT: Duration = Duration::from_secs(10);
const DNS: &str = "10.96.0.10";

fn list(name: &str) -> EdlListConfig {
    EdlListConfig {
        name: name.into(),
        kind: EdlKind::Ip,
        basic: vec![BasicUser {
            user: "pa-fw".into(),
            sha256: hash_token(EDL_PASSWORD),
        }],
        bearer_sha256: Vec::new(),
    }
}

/// The service with one firewall, the cluster DNS on the never-block list,
/// lists `c2` and `wide` (the latter allowed broad prefixes), and either
/// the shipped playbooks or `playbook`.
async fn start(fw: &PanosApi, playbook: Option<&str>) -> Service {
    let mut t = TargetConfig::new("fw1", &fw.url(), ApiKey::new(fw.key()));
    t.retry_base_ms = 5;
    t.retry_max_ms = 20;
    t.max_attempts = 2;
    t.timeout_secs = 2;
    t.batch_interval_ms = 10;
    let pb = playbook.map(str::to_string);
    service::start_with(move |c, _| {
        match &pb {
            Some(text) => service::add_playbook(c, "test.rhai", text).unwrap(),
            None => c.playbooks.dir = shipped_playbooks(),
        }
        c.api.tokens = vec![TokenConfig {
            name: "soc".into(),
            sha256: hash_token(ACT),
            scopes: vec![Scope::Act, Scope::Read],
        }];
        c.firewall.targets = vec![t];
        c.firewall.reconcile_interval_secs = 3600;
        c.firewall.dns_servers = vec![format!("{DNS}/32").parse().unwrap()];
        c.firewall.edl = vec![list("c2"), list("wide")];
        c.firewall.allow_broad_prefixes = vec!["wide".into()];
    })
    .await
    .unwrap()
}

async fn served(svc: &Service, list: &str) -> String {
    let r = reqwest::Client::new()
        .get(svc.http_url(&format!("/v1/edl/{list}")))
        .basic_auth("pa-fw", Some(EDL_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

async fn add(svc: &Service, list: &str, value: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(svc.http_url(&format!("/v1/edl/{list}")))
        .bearer_auth(ACT)
        .json(&serde_json::json!({"value": value, "ttl": "1h", "reason": "test"}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Finished firewall actions of the given kind.
fn fw_actions(svc: &Service, action: &str) -> Vec<ActionRecord> {
    svc.running
        .decisions
        .recent(200, &DecisionFilter::default())
        .into_iter()
        .flat_map(|d| d.actions)
        .filter(|a| a.action == action && a.status != ActionStatus::Queued)
        .collect()
}

/// Whether the firewall stand-in holds any tag on any spelling of `v4`.
fn tagged_anywhere(fw: &PanosApi, v4: &str) -> Vec<String> {
    fw.registered()
        .keys()
        .filter(|ip| ip.contains(v4) || ip.contains("a60:a"))
        .cloned()
        .collect()
}

fn assert_never_served(body: &str) {
    assert!(
        !body.contains(DNS) && !body.contains("a60:a") && !body.contains("::/0"),
        "the EDL serves a protected address: {body:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c2_log_naming_the_mapped_form_of_the_cluster_dns_is_refused_and_never_served() {
    let fw = PanosApi::start().await.unwrap();
    let svc = start(&fw, None).await;
    // The shipped C2 playbook tags and lists the C2 address; here the
    // "C2" is the cluster DNS in IPv4-mapped form.
    let spoofed = lines::with_bsd_header(&lines::c2("10.244.1.17", "::ffff:10.96.0.10", 91));
    let real = lines::with_bsd_header(&lines::c2("10.244.1.17", "203.0.113.66", 92));
    syslog::send_tcp(svc.running.tcp[0], &[spoofed, real], Framing::OctetCounting)
        .await
        .unwrap();

    // The real C2 goes through, so the spoofed one has been handled too.
    eventually(WAIT, || fw.tag("203.0.113.66", "riposte-c2"))
        .await
        .unwrap();
    let refused = eventually(WAIT, || {
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
        assert_eq!(a.code.as_deref(), Some("never_block"), "{a:?}");
        let reason = a.reason.as_deref().unwrap();
        assert!(
            reason.contains("never-block") && reason.contains(DNS),
            "{a:?}"
        );
    }
    assert_eq!(tagged_anywhere(&fw, DNS), Vec::<String>::new());
    let listed = served(&svc, "c2").await;
    assert_never_served(&listed);
    assert!(listed.contains("203.0.113.66"), "{listed:?}");
    assert_eq!(
        svc.metric(
            "riposte_guardrail_refusals_total",
            &[("reason", "never_block")]
        ),
        2.0
    );
    svc.stop().await;
}

const NAT64_DNS: &str = r#"// name: embedded-forms
// description: a playbook fooled into blocking the cluster DNS in IPv6 forms
// trigger: threat.type = spyware
// mode: enforce
tag_ip("64:ff9b::a60:a", "riposte-c2", #{ ttl: "1h" });
tag_ip("::10.96.0.10", "riposte-c2", #{ ttl: "1h" });
edl_add("c2", "::ffff:10.96.0.0/124", #{ ttl: "1h" });
edl_add("c2", "2002:a60:a::/48", #{ ttl: "1h" });
tag_ip("203.0.113.7", "riposte-c2", #{ ttl: "1h" });
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playbook_intents_naming_embedded_forms_of_a_never_block_address_are_refused() {
    let fw = PanosApi::start().await.unwrap();
    let svc = start(&fw, Some(NAT64_DNS)).await;
    let line = lines::with_bsd_header(&lines::c2("10.244.1.17", "203.0.113.7", 93));
    syslog::send_tcp(svc.running.tcp[0], &[line], Framing::OctetCounting)
        .await
        .unwrap();
    eventually(WAIT, || fw.tag("203.0.113.7", "riposte-c2"))
        .await
        .unwrap();
    let refused = eventually(WAIT, || {
        let r: Vec<_> = fw_actions(&svc, "tag_ip")
            .into_iter()
            .chain(fw_actions(&svc, "edl_add"))
            .filter(|a| a.status == ActionStatus::Refused)
            .collect();
        (r.len() == 4).then_some(r)
    })
    .await
    .unwrap();
    for a in &refused {
        assert_eq!(a.code.as_deref(), Some("never_block"), "{a:?}");
        assert!(a.reason.as_deref().unwrap().contains(DNS), "{a:?}");
    }
    assert_eq!(tagged_anywhere(&fw, DNS), Vec::<String>::new());
    assert_never_served(&served(&svc, "c2").await);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edl_values_over_the_api_in_ipv6_forms_of_a_protected_address_are_refused_with_422() {
    let fw = PanosApi::start().await.unwrap();
    let svc = start(&fw, None).await;
    for value in [
        "::ffff:10.96.0.10",
        "64:ff9b::a60:a",
        "::ffff:10.96.0.0/120",
    ] {
        let (status, body) = add(&svc, "c2", value).await;
        assert_eq!(status, 422, "{value}: {body}");
        assert!(body.contains("never-block"), "{value}: {body}");
    }
    // Each refusal is in the audit trail with its reason.
    let audit = svc.running.decisions.recent(
        50,
        &DecisionFilter {
            playbook: Some("api:soc".into()),
            ..DecisionFilter::default()
        },
    );
    let refused: Vec<_> = audit
        .iter()
        .flat_map(|d| &d.actions)
        .filter(|a| a.status == ActionStatus::Refused)
        .collect();
    assert_eq!(refused.len(), 3, "{audit:?}");
    assert!(refused
        .iter()
        .all(|a| a.reason.as_deref().unwrap().contains("never-block")));
    assert_never_served(&served(&svc, "c2").await);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_address_space_and_over_broad_prefixes_are_refused_with_422() {
    let fw = PanosApi::start().await.unwrap();
    let svc = start(&fw, None).await;
    for value in [
        "::/0",
        "0.0.0.0/0",
        "0.0.0.0/1",
        "198.0.0.0/8",
        "2001:db8::/32",
        "64:ff9b::/96",
        "2002::/16",
        "198.0.0.0-198.255.255.255",
    ] {
        let (status, body) = add(&svc, "c2", value).await;
        assert_eq!(status, 422, "{value}: {body}");
        assert!(
            body.contains("too broad") || body.contains("never-block"),
            "{value}: {body}"
        );
    }
    // Within the minimums: accepted.
    assert_eq!(add(&svc, "c2", "198.51.0.0/16").await.0, 201);
    assert_eq!(add(&svc, "c2", "2001:db8:1::/48").await.0, 201);
    let mut listed: Vec<String> = served(&svc, "c2")
        .await
        .lines()
        .map(str::to_string)
        .collect();
    listed.sort();
    assert_eq!(listed, ["198.51.0.0/16", "2001:db8:1::/48"]);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_allowed_broad_prefixes_takes_them_but_never_the_protected_ones() {
    let fw = PanosApi::start().await.unwrap();
    let svc = start(&fw, None).await;
    let (status, body) = add(&svc, "wide", "198.0.0.0/8").await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = add(&svc, "wide", "2001:db8::/32").await;
    assert_eq!(status, 201, "{body}");
    // Broad is allowed; covering the cluster DNS is not.
    for value in ["::/0", "10.0.0.0/8", "64:ff9b::/96"] {
        let (status, body) = add(&svc, "wide", value).await;
        assert_eq!(status, 422, "{value}: {body}");
        assert!(body.contains("never-block"), "{value}: {body}");
    }
    let mut listed: Vec<String> = served(&svc, "wide")
        .await
        .lines()
        .map(str::to_string)
        .collect();
    listed.sort();
    assert_eq!(listed, ["198.0.0.0/8", "2001:db8::/32"]);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_and_its_mapped_form_are_one_edl_entry() {
    let fw = PanosApi::start().await.unwrap();
    let svc = start(&fw, None).await;
    for value in ["198.51.100.7", "::ffff:198.51.100.7", "::FFFF:c633:6407"] {
        let (status, body) = add(&svc, "c2", value).await;
        assert_eq!(status, 201, "{value}: {body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["value"], "198.51.100.7", "{body}");
    }
    assert_eq!(served(&svc, "c2").await, "198.51.100.7\n");
    // Removing either spelling removes the one entry.
    let del = reqwest::Client::new()
        .delete(svc.http_url("/v1/edl/c2/::ffff:198.51.100.7"))
        .bearer_auth(ACT)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    assert_eq!(served(&svc, "c2").await, "");
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_targets_on_ipv6_forms_of_loopback_or_metadata_are_refused_at_start() {
    for host in [
        "[::127.0.0.1]",
        "[::ffff:127.0.0.1]",
        "[64:ff9b::a9fe:a9fe]",
        "[2002:a9fe:a9fe::]",
        "[64:ff9b:1::a9fe:a9fe]",
    ] {
        let url = format!("http://{host}:8080/hook");
        let target = SoarTargetConfig::new("soar", url.clone(), Format::Webhook);
        let started = service::start_with(move |c, _| {
            c.notify.targets = vec![target];
        })
        .await;
        let err = match started {
            Ok(svc) => {
                svc.stop().await;
                panic!("{url}: the service started with this target");
            }
            Err(e) => format!("{e:#}"),
        };
        assert!(
            err.contains("loopback") || err.contains("metadata"),
            "{url}: {err}"
        );
    }
}
