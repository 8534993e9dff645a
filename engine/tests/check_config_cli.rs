//! `riposte check-config` on the real binary: a good config passes, a typo
//! is named with its line, a broken playbook fails the check.

use std::process::Command;

fn check(config: &str, playbook: Option<&str>) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pb = dir.path().join("playbooks");
    std::fs::create_dir_all(&pb).expect("playbook dir");
    if let Some(text) = playbook {
        std::fs::write(pb.join("p.rhai"), text).expect("playbook");
    }
    let path = dir.path().join("riposte.toml");
    std::fs::write(
        &path,
        format!("{config}\n[playbooks]\ndir = \"{}\"\n", pb.display()),
    )
    .expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_riposte"))
        .args(["check-config"])
        .arg(&path)
        .output()
        .expect("run riposte");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

const GOOD: &str =
    "// name: ok\n// trigger: threat.type = spyware\n// mode: dry-run\nlog(\"info\", \"seen\");\n";

#[test]
fn a_valid_config_and_playbook_pass() {
    let (ok, out) = check("data_dir = \"/tmp/x\"", Some(GOOD));
    assert!(ok, "{out}");
    assert!(out.contains("1 playbook"), "{out}");
}

#[test]
fn an_unknown_key_is_named_with_its_line() {
    let (ok, out) = check(
        "data_dir = \"/tmp/x\"\n[syslog.tcp]\nmax_conections = 3",
        None,
    );
    assert!(!ok);
    assert!(
        out.contains("max_conections") && out.contains("line 3"),
        "{out}"
    );
}

#[test]
fn a_broken_playbook_fails_the_check_with_its_location() {
    let (ok, out) = check(
        "",
        Some("// name: broken\n// trigger: threat.type = spyware\nlet x = ;\n"),
    );
    assert!(!ok, "{out}");
    assert!(out.contains("p.rhai:"), "{out}");
}
