//! End to end, issue 12 items 6–8: syslog connection slots cannot be taken
//! by one host or by many unlisted ones; the playbook watcher reloads only
//! when a playbook really changed; a playbook's `print` output is bounded.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Mutex, Once};
use std::time::Duration;

use riposte_tests::service::{self, add_playbook, Service};
use riposte_tests::syslog::{self, Framing};
use riposte_tests::{eventually, lines};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- logs

/// Everything the service logs in this test binary.
static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static CAPTURE: Once = Once::new();

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends the service's log (at info) to [`LOG`], once per binary.
fn capture_logs() {
    CAPTURE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_writer(|| LogWriter)
            .with_ansi(false)
            .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
            .try_init();
    });
}

/// Log lines containing every one of `needles`.
fn log_lines(needles: &[&str]) -> Vec<String> {
    let log = LOG.lock().unwrap_or_else(|e| e.into_inner());
    String::from_utf8_lossy(&log)
        .lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .map(str::to_owned)
        .collect()
}

// ------------------------------------------------------- connection slots

/// A TCP connection to `to` from the loopback address `from` (Linux routes
/// all of 127.0.0.0/8 to lo).
async fn connect_from(from: [u8; 4], to: SocketAddr) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    Ok(socket.connect(to).await?)
}

/// The service closed the connection without reading from it.
async fn closed_by_service(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 16];
    match tokio::time::timeout(WAIT, stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

async fn metric_reaches(svc: &Service, name: &str, labels: &[(&str, &str)], want: f64) -> f64 {
    eventually(WAIT, || {
        let v = svc.metric(name, labels);
        (v >= want).then_some(v)
    })
    .await
    .unwrap_or_else(|_| svc.metric(name, labels))
}

fn refused(svc: &Service, reason: &str) -> f64 {
    svc.metric(
        "riposte_connections_refused_total",
        &[("source", "syslog_tcp"), ("reason", reason)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_cannot_lock_the_priority_firewall_out_of_syslog() -> anyhow::Result<()>
{
    let svc = service::start_with(|c, _| {
        c.syslog.tcp.max_connections = 8;
        c.syslog.tcp.max_connections_per_source = 4;
        c.syslog.tcp.reserved_connections = 2;
        c.syslog.tcp.priority_sources = vec!["127.0.0.2/32".parse().expect("net")];
        // Idle flood connections stay open for the whole test.
        c.syslog.tcp.idle_timeout_secs = 300;
    })
    .await?;
    let addr = svc.running.tcp[0];
    let active =
        |svc: &Service| svc.metric("riposte_connections_active", &[("source", "syslog_tcp")]);

    // One host: its share, then refusals.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from([127, 0, 0, 1], addr).await?);
    }
    eventually(WAIT, || (active(&svc) >= 4.0).then_some(())).await?;
    for _ in 0..6 {
        let mut excess = connect_from([127, 0, 0, 1], addr).await?;
        assert!(
            closed_by_service(&mut excess).await,
            "a connection beyond the per-source cap was kept open"
        );
    }
    assert_eq!(
        metric_reaches(
            &svc,
            "riposte_connections_refused_total",
            &[("reason", "per_source_limit")],
            6.0
        )
        .await,
        6.0,
        "each excess connection is refused and counted"
    );

    // Many other unlisted hosts: they get the open slots, not the reserved ones.
    for from in [[127, 0, 0, 3], [127, 0, 0, 4]] {
        held.push(connect_from(from, addr).await?);
    }
    eventually(WAIT, || (active(&svc) >= 6.0).then_some(())).await?;
    let mut late = connect_from([127, 0, 0, 5], addr).await?;
    assert!(
        closed_by_service(&mut late).await,
        "an unlisted host took a reserved slot"
    );
    assert_eq!(
        metric_reaches(
            &svc,
            "riposte_connections_refused_total",
            &[("reason", "reserved_for_priority")],
            1.0
        )
        .await,
        1.0
    );
    assert_eq!(active(&svc), 6.0, "the flood holds every open slot");

    // The firewall still gets in, and its log is parsed.
    let parsed = || svc.metric("riposte_events_parsed_total", &[("source", "syslog_tcp")]);
    assert_eq!(parsed(), 0.0);
    let mut firewall = connect_from([127, 0, 0, 2], addr).await?;
    let line = lines::with_bsd_header(&lines::c2("10.244.1.17", "203.0.113.66", 1));
    tokio::io::AsyncWriteExt::write_all(
        &mut firewall,
        &syslog::frame(std::slice::from_ref(&line), Framing::NewLine),
    )
    .await?;
    tokio::io::AsyncWriteExt::shutdown(&mut firewall).await?;
    eventually(WAIT, || (parsed() >= 1.0).then_some(())).await?;
    assert_eq!(refused(&svc, "too_many_connections"), 0.0);
    drop(held);
    svc.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_tls_handshakes_from_one_host_cannot_take_every_tls_slot() -> anyhow::Result<()>
{
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
    let dir = tempfile::tempdir()?;
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server.key");
    std::fs::write(&cert, server.pem())?;
    std::fs::write(&key, server_key.serialize_pem())?;
    let svc = service::start_with(|c, _| {
        c.syslog.tls.listen = vec![([127, 0, 0, 1], 0).into()];
        c.syslog.tls.cert_file = Some(cert);
        c.syslog.tls.key_file = Some(key);
        c.syslog.tls.max_connections = 4;
        c.syslog.tls.max_connections_per_source = 2;
        // Silent clients hold their slot for the whole test.
        c.syslog.tls.handshake_timeout_secs = 300;
    })
    .await?;
    let addr = svc.running.tls[0];
    let active = || svc.metric("riposte_connections_active", &[("source", "syslog_tls")]);

    // Connections that never start their handshake, from one host.
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(connect_from([127, 0, 0, 3], addr).await?);
    }
    eventually(WAIT, || (active() >= 2.0).then_some(())).await?;
    for _ in 0..3 {
        let mut excess = connect_from([127, 0, 0, 3], addr).await?;
        assert!(
            closed_by_service(&mut excess).await,
            "a connection beyond the per-source cap was kept open"
        );
    }
    let labels = [("source", "syslog_tls"), ("reason", "per_source_limit")];
    assert_eq!(
        metric_reaches(&svc, "riposte_connections_refused_total", &labels, 3.0).await,
        3.0
    );

    // Another sender still gets a slot and its logs through.
    let client = syslog::tls_client(&ca.pem(), None)?;
    let line = lines::with_bsd_header(&lines::c2("10.244.1.17", "203.0.113.66", 1));
    syslog::send_tls(
        addr,
        client,
        std::slice::from_ref(&line),
        Framing::OctetCounting,
    )
    .await?;
    let parsed = || svc.metric("riposte_events_parsed_total", &[("source", "syslog_tls")]);
    eventually(WAIT, || (parsed() >= 1.0).then_some(())).await?;
    drop(held);
    svc.stop().await;
    Ok(())
}

// ------------------------------------------------------ playbook watcher

const GOOD: &str = "// name: watched\n// trigger: any\nlet x = 1;\n";
const REFUSED: &str = "// name: refused-once\n// trigger: any\nlet = ;\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_playbooks_never_reloads_and_a_change_reloads_once() -> anyhow::Result<()> {
    capture_logs();
    let svc = service::start_with(|c, _| {
        c.playbooks.watch = true;
        c.playbooks.watch_debounce_ms = 100;
        add_playbook(c, "watched.rhai", GOOD).expect("write playbook");
        add_playbook(c, "refused-once.rhai", REFUSED).expect("write playbook");
    })
    .await?;
    let dir = svc.config.playbooks.dir.clone();
    let reloads = || svc.metric("riposte_playbook_reloads_total", &[]);
    let refused_lines = || log_lines(&["refused-once.rhai", "ERROR"]).len();
    // Let the watcher start.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (reloads_at_start, refused_at_start) = (reloads(), refused_lines());
    assert!(
        refused_at_start >= 1,
        "the refused playbook was reported at start"
    );

    // `cat`, again and again, for two seconds.
    for _ in 0..20 {
        for f in ["watched.rhai", "refused-once.rhai"] {
            std::fs::read(dir.join(f))?;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        reloads(),
        reloads_at_start,
        "reading playbooks reloaded them"
    );
    assert_eq!(
        refused_lines(),
        refused_at_start,
        "the refusal was logged again"
    );

    // Writing the same text is no change either.
    std::fs::write(dir.join("watched.rhai"), GOOD)?;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        reloads(),
        reloads_at_start,
        "an unchanged file was reloaded"
    );

    // A real change: one reload, one more refusal line, and then quiet.
    std::fs::write(dir.join("watched.rhai"), format!("{GOOD}let y = 2;\n"))?;
    eventually(WAIT, || (reloads() > reloads_at_start).then_some(())).await?;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(reloads(), reloads_at_start + 1.0, "one change, one reload");
    assert_eq!(
        refused_lines(),
        refused_at_start + 1,
        "the refusal is logged once per reload"
    );
    svc.stop().await;
    Ok(())
}

// ------------------------------------------------------- print flood

const PRINTS_PER_RUN: usize = 201;
const CHATTY: &str = r#"// name: chatty
// trigger: any
// mode: enforce
let s = "0123456789";
for i in 0..12 { s += s; }
print("chatty-long " + s);
for i in 0..200 { print("chatty-flood " + i); }
"#;
const LOG_CALLS_PER_RUN: usize = 50;
const LOUD: &str = r#"// name: loud
// trigger: any
// mode: enforce
for i in 0..50 { log("warn", "loud-line " + i); }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playbook_printing_in_a_loop_writes_a_bounded_log_and_counts_the_rest(
) -> anyhow::Result<()> {
    capture_logs();
    let svc = service::start_with(|c, _| {
        c.playbooks.output_lines_per_second = 5;
        add_playbook(c, "chatty.rhai", CHATTY).expect("write playbook");
        add_playbook(c, "loud.rhai", LOUD).expect("write playbook");
    })
    .await?;
    let events = 20;
    let batch: Vec<String> = (1..=events)
        .map(|seq| lines::with_bsd_header(&lines::c2("10.244.1.17", "203.0.113.66", seq)))
        .collect();
    syslog::send_tcp(svc.running.tcp[0], &batch, Framing::NewLine).await?;
    let runs =
        |playbook: &str| svc.metric("riposte_playbook_runs_total", &[("playbook", playbook)]);
    eventually(WAIT, || {
        (runs("chatty") >= events as f64 && runs("loud") >= events as f64).then_some(())
    })
    .await?;
    let ok = svc.metric(
        "riposte_playbook_runs_total",
        &[("playbook", "chatty"), ("outcome", "ok")],
    );
    assert_eq!(ok, events as f64, "every run finished");

    let written = log_lines(&["playbook=chatty", "print: chatty-"]);
    let dropped = svc.metric(
        "riposte_playbook_output_dropped_total",
        &[("playbook", "chatty")],
    );
    let printed = events as usize * PRINTS_PER_RUN;
    assert!(
        written.len() < 100,
        "{} of {printed} print lines reached the log",
        written.len()
    );
    assert!(dropped > 0.0, "nothing counted as dropped");
    assert_eq!(
        written.len() + dropped as usize,
        printed,
        "every print is either written or counted"
    );
    let long = written
        .iter()
        .find(|l| l.contains("chatty-long"))
        .ok_or_else(|| anyhow::anyhow!("the first line of a fresh playbook is written"))?;
    assert!(
        long.len() < 4096,
        "a 40 KB print was written whole ({} bytes)",
        long.len()
    );

    // `log(level, message)` lines share the same budget.
    let logged = log_lines(&["loud-line"]).len();
    let dropped = svc.metric(
        "riposte_playbook_output_dropped_total",
        &[("playbook", "loud")],
    );
    let calls = events as usize * LOG_CALLS_PER_RUN;
    assert!(
        logged < 100,
        "{logged} of {calls} log() lines reached the log"
    );
    assert_eq!(
        logged + dropped as usize,
        calls,
        "every log() line is either written or counted"
    );
    svc.stop().await;
    Ok(())
}
