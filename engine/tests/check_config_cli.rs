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

/// Runs the binary with `args` then the path of a config file holding
/// `text` (`{dir}` is a fresh directory holding `playbooks/`, a garbage
/// PEM file and an unparseable inventory); its exit status and output.
fn run_on(args: &[&str], text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("playbooks")).expect("playbook dir");
    std::fs::write(dir.path().join("garbage.pem"), "garbage\n").expect("pem");
    std::fs::write(dir.path().join("inventory.json"), "{ not json").expect("inventory");
    let d = dir.path().display().to_string();
    let mut config = format!(
        "data_dir = '{d}/data'\n[syslog.udp]\nlisten = []\n[syslog.tcp]\nlisten = []\n\
         [http]\nlisten = '127.0.0.1:0'\n[kubernetes]\nmode = 'off'\n"
    );
    let text = text.replace("{dir}", &d);
    if !text.contains("[playbooks]") {
        config.push_str(&format!(
            "[playbooks]\ndir = '{d}/playbooks'\nwatch = false\n"
        ));
    }
    config.push_str(&text);
    let path = dir.path().join("riposte.toml");
    std::fs::write(&path, config).expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_riposte"))
        .args(args)
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run riposte");
    // A `serve` that wrongly starts is stopped rather than left hanging.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn check_config_exits_non_zero_naming_the_key_wherever_serve_refuses() {
    let cases = [
        ("[playbooks]\ndir = '{dir}/nope'\n", "playbooks.dir"),
        (
            "[syslog.tls]\nlisten = ['127.0.0.1:0']\ncert_file = '{dir}/garbage.pem'\nkey_file = '{dir}/garbage.pem'\n",
            "syslog.tls.cert_file",
        ),
        (
            "[[notify.targets]]\nname = 'soar'\nurl = 'http://169.254.169.254/'\n",
            "notify.targets[0]",
        ),
        (
            "[[notify.targets]]\nname = 'soar'\nurl = 'https://u:p4ss@soar.example.com/'\n",
            "notify.targets[0]",
        ),
        (
            "[api]\napproval_secret = { env = 'RIPOSTE_TEST_SURELY_UNSET_VARIABLE' }\n",
            "api.approval_secret",
        ),
        (
            "[pods]\ninventory_file = '{dir}/inventory.json'\n",
            "pods.inventory_file",
        ),
    ];
    for (text, key) in cases {
        let (ok, out) = run_on(&["check-config"], text);
        assert!(!ok, "check-config accepted:\n{text}\n{out}");
        assert!(out.contains(key), "`{key}` not named:\n{out}");
        let (ok, out) = run_on(&["serve", "--config"], text);
        assert!(!ok, "serve accepted:\n{text}\n{out}");
        assert!(out.contains(key), "serve: `{key}` not named:\n{out}");
    }
}

#[test]
fn neither_command_prints_an_inline_secret_of_a_refused_config() {
    for text in [
        "[api]\napproval_secret = 'S3CRET-unknown-variant'\n",
        "[api]\napproval_secret = { valeu = 'S3CRET-misspelt' }\n",
        "[[api.webhooks]]\nname = 'w'\nverify = 'standard'\nsecrets = [{ value = 'S3CRET-w', extra = 1 }]\n",
        "[[notify.targets]]\nname = 's'\nurl = 'https://x:S3CRET-url@soar.example.com/'\n",
    ] {
        for args in [&["check-config"][..], &["serve", "--config"][..]] {
            let (ok, out) = run_on(args, text);
            assert!(!ok, "{args:?} accepted:\n{text}\n{out}");
            assert!(!out.contains("S3CRET"), "{args:?} printed a secret:\n{out}");
        }
    }
}
