//! End to end with real senders: syslog-ng, rsyslog and util-linux
//! `logger`, each started here as a child process with its own config,
//! relay the real PAN-OS lines of `../shared/samples` to a running Riposte.
//! Every line must arrive, be parsed into an event of its type, and be
//! counted exactly once, with no parse failure and no drop.
//!
//! The relays receive the lines as a firewall sends them (a BSD or an RFC
//! 5424 header before the PAN-OS CSV) and forward them with the transport
//! under test. The configs here are the README's examples.
//!
//! The daemons come from `.ci/real-tools` (see `riposte_tests::senders`);
//! a missing one fails the test and says how to install it.

use std::time::Duration;

use riposte_tests::senders::{self, Daemon, Samples};
use riposte_tests::service::{self, Service};
use riposte_tests::syslog::{self, Framing};

const WAIT: Duration = Duration::from_secs(60);

/// Riposte with syslog over UDP, TCP and (when `tls` is given) TLS with
/// client certificates, on loopback ports the kernel picks.
async fn riposte(tls: Option<&Pki>) -> anyhow::Result<Service> {
    let tls = tls.map(|p| (p.server_cert.clone(), p.server_key.clone(), p.ca.clone()));
    service::start_with(move |c, _| {
        // The relays keep one connection open and only reconnect after a
        // pause: Riposte must not close it while the test is setting up.
        c.syslog.tcp.idle_timeout_secs = 300;
        c.syslog.udp.receive_buffer_bytes = 8 << 20;
        if let Some((cert, key, ca)) = tls {
            c.syslog.tls.listen = vec![([127, 0, 0, 1], 0).into()];
            c.syslog.tls.cert_file = Some(cert);
            c.syslog.tls.key_file = Some(key);
            c.syslog.tls.client_ca_file = Some(ca);
            c.syslog.tls.idle_timeout_secs = 300;
        }
    })
    .await
}

/// Waits until `source` has parsed every sample line into an event of its
/// type, then checks the counts stay exact: no duplicate, no parse failure,
/// no drop.
async fn every_line_arrives_once(
    svc: &Service,
    source: &str,
    samples: &Samples,
    daemon: Option<&Daemon>,
) -> anyhow::Result<()> {
    let parsed = |dataset: &str| {
        svc.metric(
            "riposte_events_parsed_total",
            &[("source", source), ("dataset", dataset)],
        )
    };
    let want = (samples.threats as f64, samples.traffic as f64);
    let arrived = riposte_tests::eventually(WAIT, || {
        (parsed("panos.threat") >= want.0 && parsed("panos.traffic") >= want.1).then_some(())
    })
    .await;
    let report = || {
        format!(
            "{source}: wanted {} threats and {} traffic lines parsed; metrics:\n{}\nsender log:\n{}",
            want.0,
            want.1,
            svc.running.metrics_text(),
            daemon.map(Daemon::log).unwrap_or_default()
        )
    };
    if arrived.is_err() {
        anyhow::bail!("not every line arrived. {}", report());
    }
    // Anything late (a duplicate, a stray line) would show by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let total = samples.bodies.len() as f64;
    let by_source = |name: &str| svc.metric(name, &[("source", source)]);
    anyhow::ensure!(
        (parsed("panos.threat"), parsed("panos.traffic")) == want,
        "counts are not exact. {}",
        report()
    );
    anyhow::ensure!(
        by_source("riposte_records_received_total") == total,
        "received is not the line count. {}",
        report()
    );
    for failure in [
        "riposte_parse_failures_total",
        "riposte_records_dropped_total",
        "riposte_records_ignored_total",
    ] {
        anyhow::ensure!(
            by_source(failure) == 0.0,
            "{failure} is not 0. {}",
            report()
        );
    }
    Ok(())
}

/// Sends `lines` to a relay's plain TCP input, one per line, as a firewall
/// does.
async fn feed(port: u16, lines: &[String]) -> anyhow::Result<()> {
    syslog::send_tcp(([127, 0, 0, 1], port).into(), lines, Framing::NewLine).await
}

fn syslog_ng_relay(source: &str, destination: &str) -> String {
    format!(
        "@version: 3.38\n\
         options {{ keep-hostname(yes); time-reopen(1); log-msg-size(65536); }};\n\
         source s_firewalls {{ {source} }};\n\
         destination d_riposte {{ {destination} }};\n\
         log {{ source(s_firewalls); destination(d_riposte); }};\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_ng_relays_rfc5424_octet_counted_over_tcp() -> anyhow::Result<()> {
    let samples = senders::panos_samples();
    let svc = riposte(None).await?;
    let (input, out) = (senders::free_port(), svc.running.tcp[0].port());
    let mut daemon = senders::syslog_ng(&syslog_ng_relay(
        &format!(
            r#"network(ip("127.0.0.1") port({input}) transport("tcp") flags(syslog-protocol));"#
        ),
        &format!(r#"syslog("127.0.0.1" port({out}) transport("tcp"));"#),
    ));
    daemon.wait_listening(input);
    feed(input, &senders::rfc5424(&samples.bodies)).await?;
    every_line_arrives_once(&svc, "syslog_tcp", &samples, Some(&daemon)).await?;
    svc.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_ng_relays_bsd_over_tcp() -> anyhow::Result<()> {
    let samples = senders::panos_samples();
    let svc = riposte(None).await?;
    let (input, out) = (senders::free_port(), svc.running.tcp[0].port());
    let mut daemon = senders::syslog_ng(&syslog_ng_relay(
        &format!(r#"network(ip("127.0.0.1") port({input}) transport("tcp"));"#),
        &format!(r#"network("127.0.0.1" port({out}) transport("tcp"));"#),
    ));
    daemon.wait_listening(input);
    feed(input, &senders::bsd(&samples.bodies)).await?;
    every_line_arrives_once(&svc, "syslog_tcp", &samples, Some(&daemon)).await?;
    svc.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_ng_relays_bsd_over_udp() -> anyhow::Result<()> {
    let samples = senders::panos_samples();
    let svc = riposte(None).await?;
    let (input, out) = (senders::free_port(), svc.running.udp[0].port());
    // UDP has no flow control: the relay is throttled to a rate a shared
    // CI machine keeps up with, so an exact count is a fair demand.
    let mut daemon = senders::syslog_ng(&syslog_ng_relay(
        &format!(r#"network(ip("127.0.0.1") port({input}) transport("tcp"));"#),
        &format!(r#"network("127.0.0.1" port({out}) transport("udp") throttle(2000));"#),
    ));
    daemon.wait_listening(input);
    feed(input, &senders::bsd(&samples.bodies)).await?;
    every_line_arrives_once(&svc, "syslog_udp", &samples, Some(&daemon)).await?;
    svc.stop().await;
    Ok(())
}

/// A CA, Riposte's server certificate (localhost, 127.0.0.1) and the
/// relay's client certificate, as PEM files in a temporary directory.
struct Pki {
    _dir: tempfile::TempDir,
    ca: std::path::PathBuf,
    server_cert: std::path::PathBuf,
    server_key: std::path::PathBuf,
    client_cert: std::path::PathBuf,
    client_key: std::path::PathBuf,
}

fn pki() -> anyhow::Result<Pki> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "riposte test CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca = ca_params.self_signed(&ca_key)?;
    let leaf = |names: Vec<String>, cn: &str| -> anyhow::Result<(String, String)> {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let cert = params.signed_by(&key, &ca, &ca_key)?;
        Ok((cert.pem(), key.serialize_pem()))
    };
    let (server_pem, server_key) = leaf(vec!["localhost".into(), "127.0.0.1".into()], "localhost")?;
    let (client_pem, client_key) = leaf(vec!["relay.example".into()], "relay.example")?;
    let dir = tempfile::tempdir()?;
    let w = |name: &str, text: &str| senders::write(dir.path(), name, text);
    Ok(Pki {
        ca: w("ca.pem", &ca.pem()),
        server_cert: w("server.pem", &server_pem),
        server_key: w("server.key", &server_key),
        client_cert: w("client.pem", &client_pem),
        client_key: w("client.key", &client_key),
        _dir: dir,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_ng_relays_over_tls_with_a_client_certificate() -> anyhow::Result<()> {
    let samples = senders::panos_samples();
    let pki = pki()?;
    let svc = riposte(Some(&pki)).await?;
    let (input, out) = (senders::free_port(), svc.running.tls[0].port());
    let mut daemon = senders::syslog_ng(&syslog_ng_relay(
        &format!(
            r#"network(ip("127.0.0.1") port({input}) transport("tcp") flags(syslog-protocol));"#
        ),
        &format!(
            r#"syslog("localhost" port({out}) transport("tls")
                 tls(ca-file("{}") cert-file("{}") key-file("{}") peer-verify(required-trusted)));"#,
            pki.ca.display(),
            pki.client_cert.display(),
            pki.client_key.display()
        ),
    ));
    daemon.wait_listening(input);
    feed(input, &senders::rfc5424(&samples.bodies)).await?;
    every_line_arrives_once(&svc, "syslog_tls", &samples, Some(&daemon)).await?;
    anyhow::ensure!(
        svc.metric(
            "riposte_connections_refused_total",
            &[("source", "syslog_tls")]
        ) == 0.0,
        "the relay's TLS connection was refused:\n{}",
        daemon.log()
    );
    svc.stop().await;
    Ok(())
}

/// rsyslog relaying what its plain TCP input receives with `action`; its
/// own messages stay in the default ruleset, which has no action.
fn rsyslog_relay(input: u16, globals: &str, action: &str) -> String {
    format!(
        "global(workDirectory=\"{{{{dir}}}}\" maxMessageSize=\"64k\" {globals})\n\
         module(load=\"imtcp\")\n\
         input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{input}\" ruleset=\"firewalls\")\n\
         ruleset(name=\"firewalls\") {{\n  {action}\n}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_forwards_octet_counted_over_tcp() -> anyhow::Result<()> {
    let samples = senders::panos_samples();
    let svc = riposte(None).await?;
    let (input, out) = (senders::free_port(), svc.running.tcp[0].port());
    let mut daemon = senders::rsyslogd(&rsyslog_relay(
        input,
        "",
        &format!(
            r#"action(type="omfwd" target="127.0.0.1" port="{out}" protocol="tcp" TCP_Framing="octet-counted")"#
        ),
    ));
    daemon.wait_listening(input);
    feed(input, &senders::bsd(&samples.bodies)).await?;
    every_line_arrives_once(&svc, "syslog_tcp", &samples, Some(&daemon)).await?;
    svc.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_forwards_over_tls_with_a_client_certificate() -> anyhow::Result<()> {
    let samples = senders::panos_samples();
    let pki = pki()?;
    let svc = riposte(Some(&pki)).await?;
    let (input, out) = (senders::free_port(), svc.running.tls[0].port());
    let globals = format!(
        r#"DefaultNetstreamDriverCAFile="{}" DefaultNetstreamDriverCertFile="{}" DefaultNetstreamDriverKeyFile="{}""#,
        pki.ca.display(),
        pki.client_cert.display(),
        pki.client_key.display()
    );
    let mut daemon = senders::rsyslogd(&rsyslog_relay(
        input,
        &globals,
        &format!(
            r#"action(type="omfwd" target="localhost" port="{out}" protocol="tcp" TCP_Framing="octet-counted"
         StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="localhost")"#
        ),
    ));
    daemon.wait_listening(input);
    feed(input, &senders::bsd(&samples.bodies)).await?;
    every_line_arrives_once(&svc, "syslog_tls", &samples, Some(&daemon)).await?;
    svc.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logger_sends_rfc5424_octet_counted_over_tcp() -> anyhow::Result<()> {
    let samples = senders::panos_samples();
    let svc = riposte(None).await?;
    let dir = tempfile::tempdir()?;
    let file = senders::write(dir.path(), "bodies.log", &samples.bodies.join("\n"));
    let port = svc.running.tcp[0].port().to_string();
    // One message per line of the file, each behind logger's own RFC 5424
    // header (with its timeQuality structured data).
    let out = tokio::process::Command::new("logger")
        .args(["--tcp", "--octet-count", "--rfc5424", "--size", "65536"])
        .args(["--server", "127.0.0.1", "--port", &port, "--tag", "pa-fw-1"])
        .arg("--file")
        .arg(&file)
        .output()
        .await;
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            panic!("util-linux logger is missing or cannot run ({e}): apt-get install bsdutils")
        }
    };
    anyhow::ensure!(
        out.status.success(),
        "logger failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    every_line_arrives_once(&svc, "syslog_tcp", &samples, None).await?;
    svc.stop().await;
    Ok(())
}
