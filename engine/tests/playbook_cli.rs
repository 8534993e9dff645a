//! `riposte replay` and `riposte playbook test`, run as the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn riposte(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_riposte"))
        .args(args)
        .output()
        .expect("run riposte")
}

fn workspace() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn shipped() -> String {
    workspace().join("playbooks").display().to_string()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A copy of the shipped playbooks and fixtures to break on purpose.
fn copy_shipped() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read dir") {
            let path = entry.expect("entry").path();
            let dest = to.join(path.file_name().expect("name"));
            if path.is_dir() {
                copy(&path, &dest);
            } else {
                std::fs::copy(&path, &dest).expect("copy");
            }
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    copy(&workspace().join("playbooks"), dir.path());
    dir
}

#[test]
fn the_shipped_playbooks_pass_their_fixtures() {
    let out = riposte(&["playbook", "test", &shipped()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    for name in [
        "c2-quarantine",
        "exploit-inbound",
        "malware-download",
        "scan-and-flood",
        "lateral-movement",
        "notify-all-critical",
    ] {
        assert!(
            stdout.contains(&format!("ok    {name} ")),
            "{name} has no passing case:\n{stdout}"
        );
    }
    assert!(
        !stdout.contains("note "),
        "every shipped playbook has fixtures:\n{stdout}"
    );
}

#[test]
fn a_golden_mismatch_prints_a_diff_and_exits_1() {
    let dir = copy_shipped();
    let golden = dir
        .path()
        .join("fixtures/c2-quarantine/from-pods.expected.ndjson");
    let edited = std::fs::read_to_string(&golden).expect("golden").replacen(
        "\"ttl\":\"4h\"",
        "\"ttl\":\"8h\"",
        1,
    );
    std::fs::write(&golden, edited).expect("write");
    let out = riposte(&["playbook", "test", &dir.path().display().to_string()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL  c2-quarantine"), "{stdout}");
    let minus = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("- "))
        .expect("a - line");
    let plus = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("+ "))
        .expect("a + line");
    assert!(
        minus.contains("{\"line\":1,\"action\":\"quarantine\"") && minus.contains("\"ttl\":\"8h\""),
        "{stdout}"
    );
    assert!(
        plus.contains("{\"line\":1,\"action\":\"quarantine\"") && plus.contains("\"ttl\":\"4h\""),
        "{stdout}"
    );
    assert!(stdout.contains("1 failed"), "{stdout}");
}

#[test]
fn a_playbook_that_does_not_compile_fails_the_test_with_its_place() {
    let dir = copy_shipped();
    std::fs::write(
        dir.path().join("broken.rhai"),
        "// name: broken\n// trigger: any\nlet x = ;\n",
    )
    .expect("write");
    let out = riposte(&["playbook", "test", &dir.path().display().to_string()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("broken.rhai:3:"), "{stdout}");
}

#[test]
fn bless_writes_golden_files_that_then_pass() {
    let dir = copy_shipped();
    let golden = dir
        .path()
        .join("fixtures/scan-and-flood/recon.expected.ndjson");
    std::fs::remove_file(&golden).expect("remove");
    let path = dir.path().display().to_string();
    let out = riposte(&["playbook", "test", &path]);
    assert_eq!(out.status.code(), Some(1), "a missing golden file fails");
    assert!(text(&out.stdout).contains("--bless"));
    let out = riposte(&["playbook", "test", "--bless", &path]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(golden.exists());
    let out = riposte(&["playbook", "test", &path]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn a_missing_directory_is_a_usage_error() {
    let out = riposte(&["playbook", "test", "/nonexistent/riposte-playbooks"]);
    assert_eq!(out.status.code(), Some(2));
    let out = riposte(&[
        "replay",
        "--playbooks",
        "/nonexistent/riposte-playbooks",
        "-",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn replay_prints_intents_as_json_lines_and_counts_on_stderr() {
    let fixture = workspace().join("playbooks/fixtures/c2-quarantine/from-pods.ndjson");
    let out = riposte(&[
        "replay",
        "--playbooks",
        &shipped(),
        &fixture.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let quarantine = lines
        .iter()
        .find(|l| l["action"] == "quarantine" && l["playbook"] == "c2-quarantine")
        .expect("a quarantine intent");
    assert_eq!(quarantine["target"]["namespace"], "shop");
    assert_eq!(quarantine["mode"], "enforce");
    assert_eq!(quarantine["event_id"], "c2-1");
    assert_eq!(quarantine["action_id"].as_str().map(str::len), Some(32));
    assert!(quarantine["at"]
        .as_str()
        .is_some_and(|a| a.ends_with("from-pods.ndjson:1")));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("6 event(s) replayed"), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("c2-quarantine") && l.contains(" 15 ")),
        "{stderr}"
    );
}

#[test]
fn replay_table_is_readable() {
    let fixture = workspace().join("playbooks/fixtures/scan-and-flood/recon.ndjson");
    let out = riposte(&[
        "replay",
        "--table",
        "--playbooks",
        &shipped(),
        &fixture.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("WHERE"), "{stdout}");
    assert!(
        stdout.contains("tag_ip        45.137.21.9 +riposte-scanner for 1h"),
        "{stdout}"
    );
}

#[test]
fn replay_of_real_panos_samples_decides_on_c2_and_exploits() {
    let samples = workspace().join("../shared/samples/panos");
    assert!(
        samples.is_dir(),
        "the real-world samples folder {} is missing: it must sit beside the repository (see shared/samples/README.md)",
        samples.display()
    );
    let file = samples.join("aristanetworks_DirectFlowAssist__PANSyslogMsg_threat.log");
    let out = riposte(&[
        "replay",
        "--playbooks",
        &shipped(),
        &file.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    // The PoisonIvy C2 line (PAN-OS 6, no threat category, server-to-client):
    // the C2 is the source; no pod context, so no quarantine.
    let c2: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["playbook"] == "c2-quarantine")
        .collect();
    assert!(
        c2.iter().any(|l| l["action"] == "tag_ip"
            && l["ip"] == "112.78.22.47"
            && l["tag"] == "riposte-c2"),
        "{c2:?}"
    );
    assert!(
        c2.iter()
            .any(|l| l["action"] == "edl_add" && l["value"] == "112.78.22.47"),
        "{c2:?}"
    );
    assert!(
        !c2.iter().any(|l| l["action"] == "quarantine"),
        "no pod context, no quarantine"
    );
    // Heartbleed (critical, no pod context): the SOAR hears of it.
    assert!(lines.iter().any(|l| l["playbook"] == "notify-all-critical"
        && l["fields"]["threat"]
            .as_str()
            .is_some_and(|t| t.contains("Heartbleed"))));
}

/// Pods at the addresses the samples' C2 and exploit alerts hit: the PAN-OS
/// PoisonIvy victim, the Suricata user guide's C2 victim, and the targets
/// of the Suricata Apache exploit and the PAN-OS SSH brute force.
const SAMPLE_PODS: &str = r#"[
  {"namespace": "shop", "name": "checkout-1", "ips": ["192.168.204.150"], "labels": {"app": "checkout"}},
  {"namespace": "shop", "name": "cart-1", "ips": ["192.168.100.237"]},
  {"namespace": "web", "name": "apache-1", "ips": ["1.2.3.5"]},
  {"namespace": "ops", "name": "bastion-1", "ips": ["1.2.3.3"]}
]"#;

#[test]
fn replay_with_pods_over_the_samples_folder_decides_on_pods() {
    let samples = workspace().join("../shared/samples");
    assert!(
        samples.is_dir(),
        "the real-world samples folder {} is missing: it must sit beside the repository (see shared/samples/README.md)",
        samples.display()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let pods = dir.path().join("pods.json");
    std::fs::write(&pods, SAMPLE_PODS).expect("pods");
    let out = riposte(&[
        "replay",
        "--playbooks",
        &shipped(),
        "--pods",
        &pods.display().to_string(),
        &samples.display().to_string(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // The folder is walked; README.md and the expected-value JSON files are
    // not logs: one summary line, not one per line.
    let skipped: Vec<&str> = stderr.lines().filter(|l| l.contains("README.md")).collect();
    assert_eq!(skipped.len(), 1, "{stderr}");
    assert!(skipped[0].starts_with("skipped "), "{stderr}");
    assert!(!stderr.contains("unrecognized"), "{stderr}");
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let quarantined = |ns: &str, name: &str, playbook: &str| {
        lines.iter().any(|l| {
            l["playbook"] == playbook
                && l["action"] == "quarantine"
                && l["target"]["namespace"] == ns
                && l["target"]["name"] == name
        })
    };
    // C2 on PAN-OS (by name) and on Suricata (classtype trojan-activity).
    assert!(
        quarantined("shop", "checkout-1", "c2-quarantine"),
        "{lines:#?}"
    );
    assert!(quarantined("shop", "cart-1", "c2-quarantine"), "{lines:#?}");
    // Exploits from outside against pods: the attacker is tagged and the
    // SOAR hears of the pod.
    for (attacker, pod) in [("1.2.3.4", "web/apache-1"), ("1.2.3.2", "ops/bastion-1")] {
        assert!(
            lines.iter().any(|l| l["playbook"] == "exploit-inbound"
                && l["action"] == "tag_ip"
                && l["ip"] == attacker),
            "{attacker}: {lines:#?}"
        );
        assert!(
            lines.iter().any(|l| l["playbook"] == "exploit-inbound"
                && l["action"] == "notify"
                && l["fields"]["pod"] == pod),
            "{pod}: {lines:#?}"
        );
    }
    // One C2 alert notifies once: c2-quarantine is exclusive.
    let c2_events: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["playbook"] == "c2-quarantine" && l["action"] == "notify")
        .collect();
    for n in &c2_events {
        let notifies = lines
            .iter()
            .filter(|l| l["event_id"] == n["event_id"] && l["action"] == "notify")
            .count();
        assert_eq!(notifies, 1, "{lines:#?}");
    }
}

#[test]
fn replay_shows_print_and_debug_marked_per_playbook_and_event() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("talk.rhai"),
        "// trigger: any\nprint(`saw ${event.threat.name}`);\ndebug(event.source.ip);\n",
    )
    .expect("playbook");
    let samples = workspace().join("../shared/samples/panos");
    let file = samples.join("aristanetworks_DirectFlowAssist__PANSyslogMsg_threat.log");
    let out = riposte(&[
        "replay",
        "--playbooks",
        &dir.path().display().to_string(),
        &file.display().to_string(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("print: saw PoisonIvy"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains(":2 [talk] event "), "{line}");
    assert!(
        stderr.contains("debug (line 3): \"112.78.22.47\""),
        "{stderr}"
    );
}
