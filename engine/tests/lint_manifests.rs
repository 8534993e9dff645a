//! `riposte lint-manifests` on the real binary: every workload kind, multi-
//! document files, directories, stdin (helm template output), bad YAML with
//! its line, the exempt marker, namespace selection, JSON and SARIF reports.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn riposte(args: &[&str], dir: &Path, stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_riposte"))
        .arg("lint-manifests")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn json(args: &[&str], dir: &Path, stdin: Option<&str>) -> (i32, Value) {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let run = riposte(&all, dir, stdin);
    let value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", run.stdout, run.stderr));
    (run.code, value)
}

fn lines_of(report: &Value) -> Vec<(String, u64)> {
    report["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["kind"].as_str().unwrap().to_string(),
                v["line"].as_u64().unwrap(),
            )
        })
        .collect()
}

const GUARDED: &str = "paloaltonetworks.com/firewall: pan-fw";

/// One manifest per workload kind, each labelled compliance=pci, the pod
/// template (line noted) without the firewall annotation.
fn unguarded_workloads() -> String {
    let template = "    metadata:\n      labels: {app: x}\n    spec:\n      containers: [{name: c, image: i}]\n";
    let mut out = String::new();
    for kind in [
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "Job",
    ] {
        out.push_str(&format!(
            "---\napiVersion: v1\nkind: {kind}\nmetadata:\n  name: {}\n  namespace: shop\n  labels:\n    compliance: pci\nspec:\n  template:\n{template}",
            kind.to_lowercase()
        ));
    }
    out.push_str("---\napiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: nightly\n  namespace: shop\n  labels:\n    compliance: pci\nspec:\n  schedule: \"0 1 * * *\"\n  jobTemplate:\n    spec:\n      template:\n        metadata:\n          labels: {app: x}\n        spec:\n          containers: [{name: c, image: i}]\n");
    out.push_str("---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: bare\n  namespace: shop\n  labels:\n    compliance: pci\nspec:\n  containers: [{name: c, image: i}]\n");
    out
}

#[test]
fn every_workload_kind_without_the_annotation_fails_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = unguarded_workloads();
    std::fs::write(dir.path().join("all.yaml"), &text).unwrap();
    let (code, report) = json(&["all.yaml"], dir.path(), None);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["summary"]["workloads"], 7, "{report:#}");
    // Each violation points at the pod template's `metadata:` (for the Pod,
    // its own), found here by scanning the text the same way a human would.
    let lines: Vec<&str> = text.lines().collect();
    let mut expected = Vec::new();
    let mut kind = String::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some(k) = line.strip_prefix("kind: ") {
            kind = k.to_string();
            if kind == "Pod" {
                expected.push((kind.clone(), i as u64 + 3)); // the mapping under the next line's metadata:
            }
        }
        if kind != "Pod" && (line.trim() == "metadata:") && line.starts_with("    ") {
            expected.push((kind.clone(), i as u64 + 2)); // the mapping under it
        }
    }
    assert_eq!(lines_of(&report), expected, "{report:#}");
    let human = riposte(&["all.yaml"], dir.path(), None);
    assert_eq!(human.code, 1);
    assert!(
        human.stdout.contains(
            "all.yaml:12:7: error[pci-behind-firewall]: Deployment shop/deployment lacks"
        ),
        "{}",
        human.stdout
    );
    assert!(
        human
            .stdout
            .contains("spec.jobTemplate.spec.template.metadata.annotations"),
        "{}",
        human.stdout
    );
}

#[test]
fn guarded_workloads_pass_and_unselected_ones_are_not_checked() {
    let dir = tempfile::tempdir().unwrap();
    let guarded = unguarded_workloads().replace(
        "labels: {app: x}",
        &format!("labels: {{app: x}}\n      annotations: {{{GUARDED}}}"),
    );
    // The CronJob's template is deeper: re-indent its annotation.
    let guarded = guarded.replace(
        "          labels: {app: x}\n      annotations",
        "          labels: {app: x}\n          annotations",
    );
    let guarded = guarded.replace(
        "  name: bare\n",
        &format!("  name: bare\n  annotations: {{{GUARDED}}}\n"),
    );
    std::fs::write(dir.path().join("ok.yaml"), &guarded).unwrap();
    std::fs::write(
        dir.path().join("other.yaml"),
        "kind: Deployment\nmetadata: {name: blog}\nspec: {template: {metadata: {labels: {app: blog}}}}\n",
    )
    .unwrap();
    let run = riposte(&["ok.yaml", "other.yaml"], dir.path(), None);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("0 violation(s) in 8 workload(s)"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_wrong_value_and_the_exempt_marker_are_named_at_their_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("d.yaml"),
        "kind: Deployment\nmetadata:\n  name: pay\n  labels:\n    compliance: pci\n    riposte.io/exempt: \"true\"\nspec:\n  template:\n    metadata:\n      annotations:\n        paloaltonetworks.com/firewall: other-fw\n        riposte.io/exempt: \"true\"\n",
    )
    .unwrap();
    let (code, report) = json(&["d.yaml"], dir.path(), None);
    assert_eq!(code, 1);
    let v = report["violations"].as_array().unwrap();
    assert_eq!(v.len(), 3, "{report:#}");
    assert_eq!(v[0]["line"], 11);
    assert!(v[0]["message"].as_str().unwrap().contains("other-fw"));
    assert_eq!(v[1]["line"], 6); // the label on the Deployment
    assert!(v[1]["message"]
        .as_str()
        .unwrap()
        .contains("label `riposte.io/exempt"));
    assert_eq!(v[2]["line"], 12); // the annotation on the pod template
    assert!(v[2]["message"].as_str().unwrap().contains("annotation"));
    assert_eq!(v[2]["object_line"], 1);
}

#[test]
fn directories_multi_document_files_and_lists_are_all_read() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("manifests/nested");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(
        sub.join("a.yml"),
        "kind: ConfigMap\nmetadata: {name: c}\n---\nkind: Pod\nmetadata: {name: p, labels: {compliance: pci}}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("manifests/list.yaml"),
        "apiVersion: v1\nkind: List\nitems:\n- kind: Pod\n  metadata:\n    name: q\n    labels: {compliance: pci}\n- kind: DeploymentList\n  items:\n  - kind: Deployment\n    metadata: {name: r, labels: {compliance: pci}}\n    spec: {template: {metadata: {}}}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("manifests/README.md"), "not yaml: [").unwrap();
    let (code, report) = json(&["manifests"], dir.path(), None);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(
        report["summary"]["inputs"], 2,
        "README.md is skipped: {report:#}"
    );
    let mut found: Vec<(String, String, u64)> = report["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["file"].as_str().unwrap().to_string(),
                v["name"].as_str().unwrap().to_string(),
                v["object_line"].as_u64().unwrap(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            ("manifests/list.yaml".into(), "q".into(), 4),
            ("manifests/list.yaml".into(), "r".into(), 10),
            ("manifests/nested/a.yml".into(), "p".into(), 4),
        ]
    );
}

#[test]
fn helm_template_output_on_stdin_names_the_chart_template() {
    let dir = tempfile::tempdir().unwrap();
    let rendered = "---\n# Source: shop/templates/serviceaccount.yaml\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: shop\n---\n# Source: shop/templates/payments.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: payments\n  labels:\n    compliance: pci\nspec:\n  template:\n    metadata:\n      labels:\n        app: payments\n";
    let run = riposte(&["-"], dir.path(), Some(rendered));
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.starts_with(
            "<stdin>:18:7: error[pci-behind-firewall]: Deployment default/payments lacks"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("(rendered from shop/templates/payments.yaml)"),
        "{}",
        run.stdout
    );
    // --namespace places unnamespaced objects, as `kubectl apply -n` would.
    let (_, report) = json(
        &["--namespace", "payments", "-"],
        dir.path(),
        Some(rendered),
    );
    assert_eq!(report["violations"][0]["namespace"], "payments");
}

#[test]
fn bad_yaml_is_a_clear_error_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.yaml"),
        "kind: Deployment\nmetadata:\n  name: x\n  labels: {compliance: pci\nspec: {}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("fine.yaml"),
        "kind: Pod\nmetadata: {name: p, labels: {compliance: pci}}\n",
    )
    .unwrap();
    let run = riposte(&["broken.yaml", "fine.yaml"], dir.path(), None);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    let first = run.stdout.lines().next().unwrap();
    assert!(first.starts_with("broken.yaml:5:"), "{first}");
    assert!(first.contains("invalid YAML"), "{first}");
    // The other file is still checked.
    assert!(
        run.stdout.contains("fine.yaml:2:11: error"),
        "{}",
        run.stdout
    );
    let missing = riposte(&["nowhere.yaml"], dir.path(), None);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stdout.contains("nowhere.yaml: cannot read"),
        "{}",
        missing.stdout
    );
}

#[test]
fn a_policy_file_selects_by_namespace_kind_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.toml"),
        r#"
[[rules]]
id = "payments-firewalled"
description = "Everything in the payments namespace runs behind the firewall."
selector.namespaces = ["payments"]
require_annotation = { key = "paloaltonetworks.com/firewall" }

[[rules]]
id = "tier-web"
level = "warning"
selector = { labels = { tier = "web" }, kinds = ["Deployment"] }
require_annotation = { key = "example.com/waf", value = "on" }
forbid = []
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("m.yaml"),
        "kind: Pod\nmetadata: {name: a, namespace: payments}\n---\nkind: Pod\nmetadata: {name: b, namespace: shop}\n---\nkind: Pod\nmetadata: {name: c, namespace: payments, annotations: {paloaltonetworks.com/firewall: any}}\n---\nkind: Deployment\nmetadata: {name: w, namespace: shop}\nspec: {template: {metadata: {labels: {tier: web}}}}\n",
    )
    .unwrap();
    let (code, report) = json(&["--policy", "policy.toml", "m.yaml"], dir.path(), None);
    assert_eq!(code, 1);
    let v = report["violations"].as_array().unwrap();
    let got: Vec<(&str, &str, &str)> = v
        .iter()
        .map(|v| {
            (
                v["rule"].as_str().unwrap(),
                v["name"].as_str().unwrap(),
                v["level"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("payments-firewalled", "a", "error"),
            ("tier-web", "w", "warning")
        ]
    );
    // A warning alone does not fail the check.
    std::fs::write(dir.path().join("w.yaml"), "kind: Deployment\nmetadata: {name: w}\nspec: {template: {metadata: {labels: {tier: web}}}}\n").unwrap();
    let run = riposte(&["--policy", "policy.toml", "w.yaml"], dir.path(), None);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("warning[tier-web]"), "{}", run.stdout);
    // A typo in the policy is refused with its line.
    std::fs::write(
        dir.path().join("bad.toml"),
        "[[rules]]\nid = \"x\"\nrequire_anotation = {}\n",
    )
    .unwrap();
    let run = riposte(&["--policy", "bad.toml", "w.yaml"], dir.path(), None);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("require_anotation") && run.stderr.contains("line 3"),
        "{}",
        run.stderr
    );
}

#[test]
fn sarif_output_is_a_valid_sarif_2_1_0_log() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("k8s")).unwrap();
    std::fs::write(
        dir.path().join("k8s/pay.yaml"),
        "kind: Deployment\nmetadata:\n  name: pay\n  namespace: shop\n  labels: {compliance: pci}\nspec:\n  template:\n    metadata:\n      labels: {app: pay}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("k8s/broken.yaml"), "a: [\n").unwrap();
    let run = riposte(&["--format", "sarif", "k8s"], dir.path(), None);
    assert_eq!(run.code, 2, "bad YAML wins over violations: {}", run.stdout);
    let log: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(log["version"], "2.1.0");
    assert!(log["$schema"]
        .as_str()
        .unwrap()
        .contains("sarif-schema-2.1.0"));
    let runs = log["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let driver = &runs[0]["tool"]["driver"];
    assert_eq!(driver["name"], "riposte lint-manifests");
    let rules = driver["rules"].as_array().unwrap();
    assert_eq!(rules[0]["id"], "pci-behind-firewall");
    assert_eq!(rules[0]["defaultConfiguration"]["level"], "error");
    assert!(rules[0]["shortDescription"]["text"].is_string());
    let results = runs[0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    let r = &results[0];
    assert_eq!(r["ruleId"], "pci-behind-firewall");
    assert_eq!(r["ruleIndex"], 0);
    assert_eq!(r["level"], "error");
    assert!(r["message"]["text"].as_str().unwrap().contains("shop/pay"));
    let loc = &r["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "k8s/pay.yaml");
    assert_eq!(loc["region"]["startLine"], 9);
    assert_eq!(loc["region"]["startColumn"], 7);
    let inv = &runs[0]["invocations"][0];
    assert_eq!(inv["executionSuccessful"], false);
    let note = &inv["toolExecutionNotifications"][0];
    assert_eq!(note["level"], "error");
    assert_eq!(
        note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "k8s/broken.yaml"
    );
    assert!(
        note["locations"][0]["physicalLocation"]["region"]["startLine"]
            .as_u64()
            .unwrap()
            >= 1
    );
}

#[test]
fn the_shipped_deploy_manifests_pass_the_default_policy() {
    let deploy = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/rbac");
    let run = riposte(&[deploy], Path::new(env!("CARGO_MANIFEST_DIR")), None);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}
