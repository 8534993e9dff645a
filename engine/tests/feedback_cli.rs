//! What the binary tells the person running it: `riposte serve`'s start
//! summary, and `riposte gen`'s progress bar (on a terminal only).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn serve_says_once_where_it_listens_what_it_loaded_and_what_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    std::fs::create_dir_all(dir.path().join("playbooks")).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../playbooks/c2-quarantine.rhai"
        ),
        dir.path().join("playbooks/c2-quarantine.rhai"),
    )
    .unwrap();
    let config = format!(
        "data_dir = '{d}/data'\n[http]\nlisten = '127.0.0.1:0'\n[syslog.udp]\nlisten = []\n\
         [syslog.tcp]\nlisten = ['127.0.0.1:0']\n[playbooks]\ndir = '{d}/playbooks'\nwatch = false\n\
         [kubernetes]\nmode = 'off'\n"
    );
    let path = dir.path().join("riposte.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_riposte"))
        .args(["serve", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    // Everything it says in its first two seconds of running.
    let mut text = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut serving_at = None;
    while std::time::Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                text.push_str(&line);
                text.push('\n');
                if serving_at.is_none()
                    && line.contains("is serving")
                    && line.starts_with("riposte ")
                {
                    serving_at = Some(std::time::Instant::now());
                }
            }
            Err(_) => {
                if serving_at.is_some_and(|t| t.elapsed() > Duration::from_secs(2)) {
                    break;
                }
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(serving_at.is_some(), "{text}");
    let block: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("riposte "))
        .collect();
    let block = block.join("\n");
    for says in [
        "syslog tcp  127.0.0.1:",
        "http://127.0.0.1:",
        "(API, /metrics, /healthz, /readyz)",
        "1 from",
        "store",
        "sqlite",
        "not configured:",
        "Kubernetes actions",
        "[[api.tokens]]",
    ] {
        assert!(block.contains(says), "{says:?} not in:\n{block}");
    }
    assert!(!block.contains("syslog udp"), "no UDP listener:\n{block}");
    assert_eq!(text.matches("is serving\n").count(), 1, "once:\n{text}");
}

/// `riposte gen` under a pseudo-terminal (util-linux `script`): the bar is
/// drawn. Returns what the terminal showed, or None without `script`.
fn gen_on_a_terminal(out: &std::path::Path) -> Option<String> {
    let cmd = format!(
        "{} gen --count 3000 --rate 1500 --seed 1 --out {}",
        env!("CARGO_BIN_EXE_riposte"),
        out.display()
    );
    let run = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    run.status
        .success()
        .then(|| String::from_utf8_lossy(&run.stdout).into_owned())
}

#[test]
fn gen_shows_a_progress_bar_on_a_terminal_and_nothing_when_piped() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lines.log");
    let piped = Command::new(env!("CARGO_BIN_EXE_riposte"))
        .args([
            "gen", "--count", "3000", "--rate", "1500", "--seed", "1", "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(piped.status.success());
    let err = String::from_utf8_lossy(&piped.stderr);
    assert_eq!(err.lines().count(), 1, "only the summary: {err:?}");
    assert!(err.starts_with("riposte gen: 3000 lines"), "{err:?}");
    assert!(!err.contains('\r') && !err.contains('\u{1b}'), "{err:?}");

    let Some(terminal) = gen_on_a_terminal(&out) else {
        eprintln!("util-linux `script` is not available: the terminal half is not checked");
        return;
    };
    assert!(terminal.contains("/3,000 lines"), "no bar in {terminal:?}");
    assert!(terminal.contains("riposte gen: 3000 lines"), "{terminal:?}");
}
