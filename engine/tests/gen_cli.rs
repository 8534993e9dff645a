//! `riposte gen` as a user runs it: the real binary writing to a file, to
//! standard output, and to UDP and TCP syslog listeners opened here.

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const START: &str = "2025-03-01T12:00:00Z";

fn riposte(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_riposte"))
        .arg("gen")
        .args(args)
        .output()
        .expect("run the riposte binary")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "riposte gen failed ({:?}): {}",
        out.status,
        stderr(out)
    );
}

/// The Type column of a line with a syslog header.
fn log_type(line: &str) -> &str {
    let csv = line.find(" 1,").map_or(line, |i| &line[i + 1..]);
    csv.split(',').nth(3).unwrap_or("")
}

fn read_lines(path: &Path) -> Vec<String> {
    let file = std::fs::File::open(path).expect("open output");
    BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .expect("read output")
}

#[test]
fn writes_the_requested_count_to_a_file_reproducibly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = dir.path().join("a.log");
    let b = dir.path().join("b.log");
    for path in [&a, &b] {
        let out = riposte(&[
            "--count",
            "2000",
            "--seed",
            "7",
            "--start",
            START,
            "--out",
            path.to_str().expect("utf-8 path"),
        ]);
        assert_ok(&out);
        let summary = stderr(&out);
        assert!(
            summary.contains("2000 lines") && summary.contains("seed 7"),
            "{summary}"
        );
    }
    let lines = read_lines(&a);
    assert_eq!(lines.len(), 2000);
    assert_eq!(
        lines,
        read_lines(&b),
        "same seed and start, different output"
    );
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with('<') && l.contains(" cn-ngfw-")),
        "BSD headers by default"
    );
    assert!(lines
        .iter()
        .all(|l| matches!(log_type(l), "THREAT" | "TRAFFIC")));
    assert!(lines.iter().any(|l| log_type(l) == "THREAT"));
    assert!(lines.iter().all(|l| (600..=1500).contains(&l.len())));
}

#[test]
fn writes_to_standard_output_without_a_header() {
    let out = riposte(&["--count", "50", "--header", "none", "--quiet"]);
    assert_ok(&out);
    let text = String::from_utf8(out.stdout).expect("UTF-8 output");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 50);
    assert!(lines.iter().all(|l| l.starts_with("1,")), "{}", lines[0]);
    assert!(out.stderr.is_empty(), "--quiet prints no summary");
}

#[test]
fn sends_one_udp_datagram_per_line() {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
    let addr = socket.local_addr().expect("UDP address");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let (tx, rx) = mpsc::channel();
    let receiver = thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while got.len() < 500 && Instant::now() < deadline {
            if let Ok(n) = socket.recv(&mut buf) {
                got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            } else if rx.try_recv().is_ok() {
                break;
            }
        }
        got
    });
    // Paced so that the receiving thread keeps up with loopback buffers.
    let url = format!("udp://{addr}");
    let out = riposte(&["--count", "500", "--rate", "5000", "--syslog", &url]);
    let _ = tx.send(());
    assert_ok(&out);
    let got = receiver.join().expect("receiver");
    assert_eq!(got.len(), 500, "datagrams received");
    assert!(
        got.iter().all(|d| !d.contains('\n') && d.starts_with('<')),
        "one line per datagram, no newline"
    );
    assert!(got
        .iter()
        .all(|d| matches!(log_type(d), "THREAT" | "TRAFFIC")));
    assert!(
        stderr(&out).contains(&url),
        "summary names the destination: {}",
        stderr(&out)
    );
}

/// Accepts one TCP connection and returns everything sent on it.
fn tcp_listener() -> (String, thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind TCP");
    let addr = listener.local_addr().expect("TCP address");
    let handle = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut data = Vec::new();
        stream.read_to_end(&mut data).expect("read");
        data
    });
    (format!("tcp://{addr}"), handle)
}

#[test]
fn sends_newline_framed_lines_over_tcp() {
    let (url, handle) = tcp_listener();
    let out = riposte(&["--count", "3000", "--syslog", &url, "--header", "rfc5424"]);
    assert_ok(&out);
    let data = String::from_utf8(handle.join().expect("listener")).expect("UTF-8");
    let lines: Vec<&str> = data.lines().collect();
    assert_eq!(lines.len(), 3000);
    assert!(data.ends_with('\n'));
    assert!(
        lines
            .iter()
            .all(|l| l.contains(">1 ") && l.contains(" - - - - 1,")),
        "RFC 5424 headers"
    );
}

#[test]
fn sends_octet_counted_frames_over_tcp() {
    let (url, handle) = tcp_listener();
    let out = riposte(&["--count", "700", "--syslog", &url, "--octet-counting"]);
    assert_ok(&out);
    let data = handle.join().expect("listener");
    let mut frames = Vec::new();
    let mut rest = &data[..];
    while !rest.is_empty() {
        let space = rest.iter().position(|&b| b == b' ').expect("LEN SP");
        let len: usize = std::str::from_utf8(&rest[..space])
            .expect("digits")
            .parse()
            .expect("frame length");
        let frame = std::str::from_utf8(&rest[space + 1..space + 1 + len]).expect("UTF-8 frame");
        frames.push(frame.to_owned());
        rest = &rest[space + 1 + len..];
    }
    assert_eq!(frames.len(), 700);
    assert!(frames
        .iter()
        .all(|f| f.starts_with('<') && !f.contains('\n')));
}

#[test]
fn a_refused_connection_exits_1_naming_the_address() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("tcp://127.0.0.1:{port}");
    let out = riposte(&["--count", "10", "--syslog", &url]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&url), "error names the address: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn the_rate_is_held_against_the_clock() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("paced.log");
    let started = Instant::now();
    let out = riposte(&[
        "--count",
        "6000",
        "--rate",
        "4000",
        "--out",
        path.to_str().expect("utf-8 path"),
    ]);
    let took = started.elapsed().as_secs_f64();
    assert_ok(&out);
    assert_eq!(read_lines(&path).len(), 6000);
    // 6000 lines at 4000/s: the last batch is due just under 1.5 s in.
    assert!((1.45..3.0).contains(&took), "took {took:.3} s");
}

#[test]
fn bad_options_are_refused_with_a_reason() {
    let out = riposte(&["--c2-share", "2"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("between 0 and 1"), "{}", stderr(&out));
    let out = riposte(&["--octet-counting", "--count", "1"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("tcp"), "{}", stderr(&out));
    let out = riposte(&["--syslog", "127.0.0.1:514"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("udp://HOST:PORT"), "{}", stderr(&out));
}

#[test]
fn the_inventory_lists_the_pods_the_lines_come_from_and_loads_as_inventory_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let inv = dir.path().join("inventory.json");
    let answers = dir.path().join("answers.json");
    let log = dir.path().join("gen.log");
    let out = riposte(&[
        "--count",
        "2000",
        "--pods",
        "30",
        "--c2-share",
        "0.05",
        "--seed",
        "3",
        "--inventory",
        inv.to_str().expect("utf-8 path"),
        "--answers",
        answers.to_str().expect("utf-8 path"),
        "--out",
        log.to_str().expect("utf-8 path"),
    ]);
    assert_ok(&out);
    // The file is exactly what `[pods] inventory_file` reads.
    let text = std::fs::read_to_string(&inv).expect("inventory");
    let pods: Vec<riposte_engine::intake::enrich::InventoryPod> =
        serde_json::from_str(&text).expect("the inventory_file format");
    assert_eq!(pods.len(), 30);
    let loaded = riposte_engine::intake::enrich::StaticInventory::load(&inv).expect("loads");
    assert_eq!(loaded.len(), 30);
    assert!(pods
        .iter()
        .all(|p| p.labels.contains_key("app") && p.owner_kind.is_some()));
    let ips: Vec<String> = pods.iter().map(|p| p.ips[0].to_string()).collect();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&answers).expect("answers")).expect("JSON");
    let c2: Vec<&str> = json["c2_servers"]
        .as_array()
        .expect("c2")
        .iter()
        .filter_map(|c| c["ip"].as_str())
        .collect();
    assert!(!c2.is_empty());
    let lines = read_lines(&log);
    assert!(
        lines
            .iter()
            .any(|l| c2.iter().any(|ip| l.contains(&format!(",{ip},")))),
        "C2 servers appear in the log"
    );
    assert!(
        lines
            .iter()
            .all(|l| ips.iter().any(|ip| l.contains(&format!(",{ip},")))),
        "every line involves an inventoried pod"
    );
}
