//! The report, for humans, as JSON, and as SARIF 2.1.0 (what GitHub code
//! scanning, GitLab and most CI dashboards import).

use serde_json::{json, Value};

use super::policy::Policy;
use super::{Report, Violation};

pub const SARIF_SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// `file:line:col: level[rule]: message`, one violation a line (the form
/// editors and CI log viewers turn into links), then a summary.
pub fn human(report: &Report) -> String {
    let mut out = String::new();
    for e in &report.errors {
        out.push_str(&format!("{e}\n"));
    }
    for v in &report.violations {
        out.push_str(&format!(
            "{}:{}:{}: {}[{}]: {}",
            display_name(&v.file),
            v.line,
            v.column,
            v.level.as_str(),
            v.rule,
            v.message
        ));
        if let Some(t) = &v.template {
            out.push_str(&format!(" (rendered from {t})"));
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "{} violation(s) in {} workload(s) of {} object(s) in {} input(s){}\n",
        report.violations.len(),
        report.workloads,
        report.objects,
        report.files,
        if report.errors.is_empty() {
            String::new()
        } else {
            format!("; {} input(s) could not be checked", report.errors.len())
        }
    ));
    out
}

/// A stable JSON document for scripts.
pub fn json(report: &Report) -> Value {
    json!({
        "summary": {
            "inputs": report.files,
            "objects": report.objects,
            "workloads": report.workloads,
            "violations": report.violations.len(),
            "errors": report.errors.len(),
            "exit_code": report.exit_code(),
        },
        "violations": report.violations.iter().map(|v| json!({
            "rule": v.rule,
            "level": v.level.as_str(),
            "file": v.file,
            "line": v.line,
            "column": v.column,
            "object_line": v.object_line,
            "kind": v.kind,
            "namespace": v.namespace,
            "name": v.name,
            "template": v.template,
            "message": v.message,
        })).collect::<Vec<_>>(),
        "errors": report.errors.iter().map(|e| json!({
            "file": e.file,
            "line": e.line,
            "column": e.column,
            "message": e.message,
        })).collect::<Vec<_>>(),
    })
}

/// A SARIF 2.1.0 log with one run: the policy's rules as the driver's
/// rules, one result per violation, unreadable inputs as tool execution
/// notifications (and `executionSuccessful: false`).
pub fn sarif(report: &Report, policy: &Policy) -> Value {
    let rules: Vec<Value> = policy
        .rules
        .iter()
        .map(|r| {
            let text = if r.description.is_empty() {
                format!(
                    "Selected workloads carry the pod annotation `{}` and none of {:?}.",
                    r.require_annotation.key, r.forbid
                )
            } else {
                r.description.clone()
            };
            json!({
                "id": r.id,
                "name": r.id,
                "shortDescription": { "text": text },
                "fullDescription": { "text": text },
                "defaultConfiguration": { "level": r.level.as_str() },
                "help": { "text": format!(
                    "Add `{}{}` under the pod template's metadata.annotations (spec.template, \
                     or spec.jobTemplate.spec.template for a CronJob), and remove {:?}.",
                    r.require_annotation.key,
                    r.require_annotation.value.as_deref().map(|v| format!(": {v}")).unwrap_or_default(),
                    r.forbid,
                ) },
            })
        })
        .collect();
    let results: Vec<Value> = report
        .violations
        .iter()
        .map(|v| {
            let index = policy.rules.iter().position(|r| r.id == v.rule);
            let mut result = json!({
                "ruleId": v.rule,
                "level": v.level.as_str(),
                "message": { "text": v.message },
                "locations": [location(v)],
                "partialFingerprints": {
                    "riposteObject/v1": format!("{}/{}/{}/{}", v.rule, v.kind, v.namespace, v.name),
                },
            });
            if let (Some(i), Some(obj)) = (index, result.as_object_mut()) {
                obj.insert("ruleIndex".into(), json!(i));
            }
            result
        })
        .collect();
    let notifications: Vec<Value> = report
        .errors
        .iter()
        .map(|e| {
            let mut physical = json!({ "artifactLocation": { "uri": uri(&e.file) } });
            if let (Some(line), Some(obj)) = (e.line, physical.as_object_mut()) {
                obj.insert(
                    "region".into(),
                    json!({ "startLine": line, "startColumn": e.column.unwrap_or(1) }),
                );
            }
            json!({
                "level": "error",
                "message": { "text": e.message },
                "locations": [{ "physicalLocation": physical }],
            })
        })
        .collect();
    json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "riposte lint-manifests",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://example.invalid/riposte/deploy/README.md",
                "rules": rules,
            }},
            "invocations": [{
                "executionSuccessful": report.errors.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }],
    })
}

fn location(v: &Violation) -> Value {
    json!({
        "physicalLocation": {
            "artifactLocation": { "uri": uri(&v.file) },
            "region": { "startLine": v.line, "startColumn": v.column },
        },
        "logicalLocations": [{
            "name": v.name,
            "fullyQualifiedName": format!("{}/{}/{}", v.namespace, v.kind, v.name),
            "kind": "resource",
        }],
    })
}

fn display_name(file: &str) -> &str {
    if file == "-" {
        "<stdin>"
    } else {
        file
    }
}

/// A relative URI reference for a path as given: forward slashes, no
/// leading `./`, and everything but unreserved characters and `/`
/// percent-encoded (SARIF requires valid URIs; paths may hold spaces).
pub fn uri(file: &str) -> String {
    if file == "-" {
        return "stdin".into();
    }
    let path = file.replace('\\', "/");
    let path = path.strip_prefix("./").unwrap_or(&path);
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_relative_and_encoded() {
        assert_eq!(uri("./deploy/my app.yaml"), "deploy/my%20app.yaml");
        assert_eq!(uri("-"), "stdin");
        assert_eq!(uri("a\\b.yml"), "a/b.yml");
    }
}
