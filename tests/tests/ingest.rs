//! End to end: logs sent over UDP, TCP (both framings), TLS and HTTP to a
//! running service are parsed and counted; hostile input is cut off and
//! counted while everyone else keeps being served.

use std::time::Duration;

use riposte_tests::lines;
use riposte_tests::service::{self, Service};
use riposte_tests::syslog::{self, Framing};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

fn c2_lines(n: u64) -> Vec<String> {
    (0..n)
        .map(|i| {
            lines::with_bsd_header(&lines::c2(
                &format!("10.244.1.{}", i % 250 + 1),
                "203.0.113.66",
                i,
            ))
        })
        .collect()
}

async fn parsed(svc: &Service, source: &str, want: f64) -> anyhow::Result<()> {
    let result = riposte_tests::eventually(WAIT, || {
        let got = svc.metric(
            "riposte_events_parsed_total",
            &[("source", source), ("dataset", "panos.threat")],
        );
        (got >= want).then_some(got)
    })
    .await;
    if result.is_err() {
        anyhow::bail!(
            "{source}: wanted {want} parsed threats; metrics:\n{}",
            svc.running.metrics_text()
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_threat_logs_are_parsed_and_counted() -> anyhow::Result<()> {
    let svc = service::start().await?;
    syslog::send_udp(svc.running.udp[0], &c2_lines(50)).await?;
    parsed(&svc, "syslog_udp", 50.0).await?;
    svc.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_accepts_newline_and_octet_counted_framing() -> anyhow::Result<()> {
    let svc = service::start().await?;
    let addr = svc.running.tcp[0];
    syslog::send_tcp(addr, &c2_lines(500), Framing::NewLine).await?;
    syslog::send_tcp(addr, &c2_lines(500), Framing::OctetCounting).await?;
    parsed(&svc, "syslog_tcp", 1000.0).await?;
    svc.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificates() -> anyhow::Result<()> {
    // A CA, a server certificate for localhost, and a client certificate.
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key)?;
    let server_key = rcgen::KeyPair::generate()?;
    let server = rcgen::CertificateParams::new(vec!["localhost".to_string()])?.signed_by(
        &server_key,
        &ca,
        &ca_key,
    )?;
    let client_key = rcgen::KeyPair::generate()?;
    let client = rcgen::CertificateParams::new(vec!["firewall".to_string()])?.signed_by(
        &client_key,
        &ca,
        &ca_key,
    )?;

    let dir = tempfile::tempdir()?;
    let write = |name: &str, text: &str| -> anyhow::Result<String> {
        let p = dir.path().join(name);
        std::fs::write(&p, text)?;
        Ok(p.display().to_string())
    };
    let cert = write("server.pem", &server.pem())?;
    let key = write("server.key", &server_key.serialize_pem())?;
    let ca_file = write("ca.pem", &ca.pem())?;
    let svc = service::start_with(|c, _| {
        c.syslog.tls.listen = vec![([127, 0, 0, 1], 0).into()];
        c.syslog.tls.cert_file = Some(cert.into());
        c.syslog.tls.key_file = Some(key.into());
        c.syslog.tls.client_ca_file = Some(ca_file.into());
    })
    .await?;
    let addr = svc.running.tls[0];

    let with_cert = syslog::tls_client(
        &ca.pem(),
        Some((&client.pem(), &client_key.serialize_pem())),
    )?;
    syslog::send_tls(addr, with_cert, &c2_lines(20), Framing::OctetCounting).await?;
    parsed(&svc, "syslog_tls", 20.0).await?;

    // Without a client certificate the handshake is refused and counted, and
    // nothing it sent is parsed.
    let without = syslog::tls_client(&ca.pem(), None)?;
    let _ = syslog::send_tls(addr, without, &c2_lines(5), Framing::NewLine).await;
    riposte_tests::eventually(WAIT, || {
        (svc.metric(
            "riposte_connections_refused_total",
            &[("source", "syslog_tls"), ("reason", "tls_handshake")],
        ) >= 1.0)
            .then_some(())
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        svc.metric("riposte_events_parsed_total", &[("source", "syslog_tls")]),
        20.0
    );
    svc.stop().await;
    Ok(())
}

const INGEST_TOKEN: &str = "ingest-token-for-tests";
const READ_TOKEN: &str = "read-token-for-tests";

fn with_tokens(c: &mut riposte_engine::config::Config) {
    use riposte_engine::auth::{hash_token, Scope, TokenConfig};
    c.api.tokens = vec![
        TokenConfig {
            name: "fw".into(),
            sha256: hash_token(INGEST_TOKEN),
            scopes: vec![Scope::Ingest],
        },
        TokenConfig {
            name: "soc".into(),
            sha256: hash_token(READ_TOKEN),
            scopes: vec![Scope::Read],
        },
    ];
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_ingest_authenticates_and_reports_bad_lines() -> anyhow::Result<()> {
    let svc = service::start_with(|c, _| with_tokens(c)).await?;
    let client = reqwest::Client::new();
    let url = svc.http_url("/v1/ingest");
    let body = c2_lines(10).join("\n");

    let r = client.post(&url).body(body.clone()).send().await?;
    assert_eq!(r.status(), 401, "no token");
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let r = client
        .post(&url)
        .bearer_auth("wrong")
        .body(body.clone())
        .send()
        .await?;
    assert_eq!(r.status(), 401, "wrong token");
    let r = client
        .post(&url)
        .bearer_auth(READ_TOKEN)
        .body(body.clone())
        .send()
        .await?;
    assert_eq!(r.status(), 403, "token without the ingest scope");

    let r = client
        .post(&url)
        .bearer_auth(INGEST_TOKEN)
        .body(body)
        .send()
        .await?;
    assert_eq!(r.status(), 202);
    let answer: serde_json::Value = r.json().await?;
    assert_eq!(answer["accepted"], 10);
    parsed(&svc, "http", 10.0).await?;

    // Bad lines are named by number; the good ones are still accepted.
    let mixed = format!(
        "{}\nthis is not a log\n{}\n",
        c2_lines(1)[0],
        "\u{1}\u{2}garbage"
    );
    let r = client
        .post(&url)
        .bearer_auth(INGEST_TOKEN)
        .body(mixed)
        .send()
        .await?;
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = r.json().await?;
    assert_eq!(problem["accepted"], 1);
    let bad: Vec<u64> = problem["errors"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["line"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(bad, vec![2, 3]);
    parsed(&svc, "http", 11.0).await?;

    // JSON bodies: an array mixing a raw line in `message` and a normalized
    // event; a normalized event cannot smuggle in pod context.
    let line = c2_lines(1)[0].clone();
    let mut event = serde_json::to_value(
        riposte_firewall::parse_record(line.as_bytes(), &Default::default())?
            .into_event()
            .ok_or_else(|| anyhow::anyhow!("not an event"))?,
    )?;
    event["event.original"] = serde_json::json!("posted as a normalized event");
    let r = client
        .post(&url)
        .bearer_auth(INGEST_TOKEN)
        .json(&serde_json::json!({"logs": [{"message": line}, event]}))
        .send()
        .await?;
    assert_eq!(r.status(), 202);
    parsed(&svc, "http", 13.0).await?;

    // Oversized bodies are refused before they are read: the answer comes
    // from the headers alone, no byte of the 11 MB body is sent.
    let addr = svc.running.http.ok_or_else(|| anyhow::anyhow!("no HTTP"))?;
    let mut raw = TcpStream::connect(addr).await?;
    raw.write_all(
        format!(
            "POST /v1/ingest HTTP/1.1\r\nHost: riposte\r\nAuthorization: Bearer {INGEST_TOKEN}\r\nContent-Length: {}\r\n\r\n",
            11 * 1024 * 1024
        )
        .as_bytes(),
    )
    .await?;
    let mut answer = vec![0u8; 512];
    let n =
        tokio::time::timeout(WAIT, tokio::io::AsyncReadExt::read(&mut raw, &mut answer)).await??;
    let status_line = String::from_utf8_lossy(&answer[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    assert!(status_line.contains(" 413 "), "{status_line}");

    // Probes and metrics need no token. (A fresh client: the server closes a
    // connection whose body it refused to read.)
    let client = reqwest::Client::new();
    assert_eq!(
        client.get(svc.http_url("/healthz")).send().await?.status(),
        200
    );
    assert_eq!(
        client.get(svc.http_url("/readyz")).send().await?.status(),
        200
    );
    let metrics = client
        .get(svc.http_url("/metrics"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("riposte_records_received_total"),
        "{metrics}"
    );
    svc.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_tcp_clients_are_cut_off_and_others_still_served() -> anyhow::Result<()> {
    let svc = service::start().await?;
    let addr = svc.running.tcp[0];

    // Half a frame, then silence: closed after the idle timeout (2s here).
    let mut staller = TcpStream::connect(addr).await?;
    staller
        .write_all(b"<14>Nov 27 10:15:30 fw 1,2026/11/27 10:15:30,0070")
        .await?;

    // A 10 MB line with no newline in sight, then a good line.
    let mut flooder = TcpStream::connect(addr).await?;
    let big = vec![b'A'; 10 * 1024 * 1024];
    flooder.write_all(&big).await?;
    flooder.write_all(b"\n").await?;
    flooder
        .write_all(syslog::frame(&c2_lines(1), Framing::NewLine).as_slice())
        .await?;
    flooder.shutdown().await?;

    // Invalid UTF-8 and binary garbage.
    let mut garbage = TcpStream::connect(addr).await?;
    garbage
        .write_all(b"\xff\xfe\x00\x01binary\n\x80\x81\x82\n")
        .await?;
    garbage.shutdown().await?;

    // Meanwhile a well-behaved firewall is served in full.
    syslog::send_tcp(addr, &c2_lines(100), Framing::NewLine).await?;
    parsed(&svc, "syslog_tcp", 101.0).await?;
    riposte_tests::eventually(WAIT, || {
        (svc.metric(
            "riposte_records_dropped_total",
            &[("source", "syslog_tcp"), ("reason", "idle_timeout")],
        ) >= 1.0)
            .then_some(())
    })
    .await?;
    assert!(
        svc.metric(
            "riposte_records_dropped_total",
            &[("source", "syslog_tcp"), ("reason", "frame_too_long")]
        ) >= 1.0
            || svc.metric(
                "riposte_records_dropped_total",
                &[("source", "syslog_tcp"), ("reason", "too_long")]
            ) >= 1.0,
        "oversized frame counted: {}",
        svc.running.metrics_text()
    );
    assert!(svc.metric("riposte_parse_failures_total", &[("source", "syslog_tcp")]) >= 2.0);
    drop(staller);
    svc.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_flood_beyond_the_limit_is_refused_and_counted() -> anyhow::Result<()> {
    let svc = service::start_with(|c, _| c.syslog.tcp.max_connections = 4).await?;
    let addr = svc.running.tcp[0];
    // Hold every slot, then knock 20 more times.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(addr).await?);
    }
    riposte_tests::eventually(WAIT, || {
        (svc.metric("riposte_connections_active", &[("source", "syslog_tcp")]) >= 4.0).then_some(())
    })
    .await?;
    for _ in 0..20 {
        let _ = TcpStream::connect(addr).await?;
    }
    riposte_tests::eventually(WAIT, || {
        (svc.metric(
            "riposte_connections_refused_total",
            &[("source", "syslog_tcp"), ("reason", "too_many_connections")],
        ) >= 20.0)
            .then_some(())
    })
    .await?;
    // Once a slot frees up, logs flow again.
    drop(held);
    riposte_tests::eventually(WAIT, || {
        (svc.metric("riposte_connections_active", &[("source", "syslog_tcp")]) == 0.0).then_some(())
    })
    .await?;
    syslog::send_tcp(addr, &c2_lines(10), Framing::NewLine).await?;
    parsed(&svc, "syslog_tcp", 10.0).await?;
    svc.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn senders_outside_the_allow_list_are_refused() -> anyhow::Result<()> {
    // Only 192.0.2.0/24 may send: loopback is refused on UDP and TCP.
    let svc = service::start_with(|c, _| {
        let only: ipnet::IpNet = "192.0.2.0/24".parse().expect("net");
        c.syslog.udp.allowed_sources = vec![only];
        c.syslog.tcp.allowed_sources = vec![only];
    })
    .await?;
    syslog::send_udp(svc.running.udp[0], &c2_lines(3)).await?;
    let _ = syslog::send_tcp(svc.running.tcp[0], &c2_lines(3), Framing::NewLine).await;
    riposte_tests::eventually(WAIT, || {
        let udp = svc.metric(
            "riposte_records_dropped_total",
            &[("source", "syslog_udp"), ("reason", "not_allowed")],
        );
        let tcp = svc.metric(
            "riposte_connections_refused_total",
            &[("source", "syslog_tcp"), ("reason", "not_allowed")],
        );
        (udp >= 3.0 && tcp >= 1.0).then_some(())
    })
    .await?;
    assert_eq!(svc.metric("riposte_events_parsed_total", &[]), 0.0);
    svc.stop().await;
    Ok(())
}
