//! `riposte lint-manifests`: the CI/CD check that workloads the security
//! team cares about (say, everything labelled `compliance: pci`) run behind
//! the firewall and are not exempt from Riposte.
//!
//! - `yaml`: YAML documents as trees that remember each node's line.
//! - `policy`: the TOML policy (selectors, required annotation, forbidden keys).
//! - `output`: the report for humans, as JSON, and as SARIF 2.1.0.
//!
//! CN-Series steers a pod's traffic through the firewall when its CNI
//! plugin sees the annotation `paloaltonetworks.com/firewall: pan-fw` on the
//! pod as it is created. So the annotation is checked where the pod gets it:
//! `spec.template.metadata.annotations` of a Deployment, StatefulSet,
//! DaemonSet, ReplicaSet or Job, `spec.jobTemplate.spec.template` of a
//! CronJob, and `metadata.annotations` of a bare Pod. An annotation on the
//! workload's own metadata is not copied to its pods, and the check says so.

pub mod output;
pub mod policy;
pub mod yaml;

use std::io::Read;
use std::path::{Path, PathBuf};

use policy::{Level, Policy, Rule};
use yaml::{Node, Position};

/// One YAML text to check: a file, or standard input.
#[derive(Debug, Clone)]
pub struct Input {
    /// How reports name it: the path as given, or `-` for stdin.
    pub name: String,
    pub text: String,
}

/// A workload that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: String,
    pub level: Level,
    pub file: String,
    /// Where to look: the offending key, or the pod template lacking one.
    pub line: usize,
    pub column: usize,
    /// Where the offending object starts.
    pub object_line: usize,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub message: String,
    /// The chart template the object came from, from `helm template`'s
    /// `# Source:` comments.
    pub template: Option<String>,
}

/// An input that could not be checked (unreadable, invalid YAML).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: {}", self.file, self.message),
            (Some(l), None) => write!(f, "{}:{l}: {}", self.file, self.message),
            _ => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// What a run found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub files: usize,
    /// Kubernetes objects read (any kind).
    pub objects: usize,
    /// Workloads among them (kinds that make pods).
    pub workloads: usize,
    pub violations: Vec<Violation>,
    pub errors: Vec<InputError>,
}

impl Report {
    /// 2 when an input could not be read, 1 when a rule at level `error`
    /// was broken, 0 otherwise.
    pub fn exit_code(&self) -> u8 {
        if !self.errors.is_empty() {
            2
        } else if self.violations.iter().any(|v| v.level == Level::Error) {
            1
        } else {
            0
        }
    }
}

/// Kinds whose objects make pods, and where their pod template is.
const WORKLOADS: &[(&str, &[&str])] = &[
    ("Pod", &[]),
    ("Deployment", &["spec", "template"]),
    ("StatefulSet", &["spec", "template"]),
    ("DaemonSet", &["spec", "template"]),
    ("ReplicaSet", &["spec", "template"]),
    ("ReplicationController", &["spec", "template"]),
    ("Job", &["spec", "template"]),
    ("CronJob", &["spec", "jobTemplate", "spec", "template"]),
];

/// Reads the named files and directories (recursively: `*.yaml`, `*.yml`,
/// `*.json`, in name order); `-` reads `stdin`. Unreadable paths become
/// input errors; the others are still returned.
pub fn read_inputs(paths: &[PathBuf], mut stdin: impl Read) -> (Vec<Input>, Vec<InputError>) {
    let mut inputs = Vec::new();
    let mut errors = Vec::new();
    let mut stdin_read = false;
    for path in paths {
        if path.as_os_str() == "-" {
            if stdin_read {
                continue;
            }
            stdin_read = true;
            let mut text = String::new();
            match stdin.read_to_string(&mut text) {
                Ok(_) => inputs.push(Input {
                    name: "-".into(),
                    text,
                }),
                Err(e) => errors.push(InputError {
                    file: "-".into(),
                    line: None,
                    column: None,
                    message: format!("cannot read standard input: {e}"),
                }),
            }
        } else if path.is_dir() {
            let mut files = Vec::new();
            if let Err(e) = walk(path, &mut files) {
                errors.push(InputError {
                    file: path.display().to_string(),
                    line: None,
                    column: None,
                    message: format!("cannot list directory: {e}"),
                });
            }
            files.sort();
            for file in files {
                read_file(&file, &mut inputs, &mut errors);
            }
        } else {
            read_file(path, &mut inputs, &mut errors);
        }
    }
    (inputs, errors)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        // Symlinked directories are not followed: a link back up the tree
        // would otherwise loop forever.
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            walk(&path, files)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            files.push(path);
        }
    }
    Ok(())
}

fn read_file(path: &Path, inputs: &mut Vec<Input>, errors: &mut Vec<InputError>) {
    let name = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => inputs.push(Input { name, text }),
            Err(e) => errors.push(InputError {
                file: name,
                line: None,
                column: None,
                message: format!(
                    "not UTF-8 text (invalid byte at offset {})",
                    e.utf8_error().valid_up_to()
                ),
            }),
        },
        Err(e) => errors.push(InputError {
            file: name,
            line: None,
            column: None,
            message: format!("cannot read: {e}"),
        }),
    }
}

/// Checks every input against the policy. Objects without a namespace are
/// taken to be in `default_namespace` (as `kubectl apply -n` would).
pub fn lint(policy: &Policy, inputs: &[Input], default_namespace: &str) -> Report {
    let mut report = Report::default();
    for input in inputs {
        report.files += 1;
        lint_input(policy, input, default_namespace, &mut report);
    }
    report
}

fn lint_input(policy: &Policy, input: &Input, default_namespace: &str, report: &mut Report) {
    let documents = match yaml::parse_documents(&input.text) {
        Ok(d) => d,
        Err(e) => {
            report.errors.push(InputError {
                file: input.name.clone(),
                line: Some(e.line),
                column: Some(e.column),
                message: format!("invalid YAML: {}", e.message),
            });
            return;
        }
    };
    let sources = helm_sources(&input.text);
    let mut ctx = Context {
        policy,
        file: &input.name,
        sources: &sources,
        default_namespace,
        report,
    };
    for document in documents.iter().flatten() {
        ctx.object(document, 0);
    }
}

struct Context<'a> {
    policy: &'a Policy,
    file: &'a str,
    sources: &'a [(usize, String)],
    default_namespace: &'a str,
    report: &'a mut Report,
}

/// One pod-making object, as the rules see it.
struct Workload<'n> {
    kind: &'n str,
    namespace: &'n str,
    name: &'n str,
    at: Position,
    /// The object's own metadata.
    metadata: Option<&'n Node>,
    /// The pod template (for a Pod: the Pod itself).
    template: Option<&'n Node>,
}

impl Workload<'_> {
    fn template_metadata(&self) -> Option<&Node> {
        self.template.and_then(|t| t.get("metadata"))
    }
}

impl Context<'_> {
    fn object(&mut self, node: &Node, depth: usize) {
        if !node.is_mapping() {
            return;
        }
        let Some(kind) = node.get("kind").and_then(Node::as_str) else {
            return;
        };
        self.report.objects += 1;
        // `kind: List` and typed lists (`DeploymentList`) from `kubectl get -o yaml`.
        if kind.ends_with("List") {
            if depth < 4 {
                for item in node.get("items").and_then(Node::as_sequence).unwrap_or(&[]) {
                    self.object(item, depth + 1);
                }
            }
            return;
        }
        let Some(template_path) = WORKLOADS
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, path)| *path)
        else {
            return;
        };
        self.report.workloads += 1;
        let metadata = node.get("metadata");
        let field = |key: &str| metadata.and_then(|m| m.get(key)).and_then(Node::as_str);
        let workload = Workload {
            kind,
            namespace: field("namespace").unwrap_or(self.default_namespace),
            name: field("name")
                .or_else(|| field("generateName"))
                .unwrap_or("(unnamed)"),
            at: node.at,
            metadata,
            template: if template_path.is_empty() {
                Some(node)
            } else {
                node.path(template_path)
            },
        };
        let policy = self.policy;
        for rule in &policy.rules {
            if selects(rule, &workload) {
                self.check(rule, &workload, template_path);
            }
        }
    }

    fn check(&mut self, rule: &Rule, w: &Workload<'_>, template_path: &[&str]) {
        self.check_required(rule, w, template_path);
        self.check_forbidden(rule, w, template_path.is_empty());
    }

    /// The annotation the rule requires, on the pod template.
    fn check_required(&mut self, rule: &Rule, w: &Workload<'_>, template_path: &[&str]) {
        let is_pod = template_path.is_empty();
        let required = &rule.require_annotation;
        let wanted = match &required.value {
            Some(v) => format!("`{}: {v}`", required.key),
            None => format!("`{}`", required.key),
        };
        let template_meta = w.template_metadata();
        let found = template_meta
            .and_then(|m| m.get("annotations"))
            .map(|a| a.string_map())
            .unwrap_or_default()
            .into_iter()
            .find(|(k, _, _)| *k == required.key);
        let where_template = if is_pod {
            "metadata.annotations".to_string()
        } else {
            format!("{}.metadata.annotations", template_path.join("."))
        };
        match found {
            Some((_, value, at)) => {
                if let Some(expected) = &required.value {
                    if value != expected {
                        self.violation(
                            rule,
                            w,
                            at,
                            format!(
                                "{} {}/{} has `{}: {value}` in {where_template}; rule `{}` wants {wanted}",
                                w.kind, w.namespace, w.name, required.key, rule.id
                            ),
                        );
                    }
                }
            }
            None => {
                // On the workload itself, the annotation never reaches the
                // pods: the firewall would not see it.
                let misplaced = (!is_pod)
                    .then(|| w.metadata.and_then(|m| m.get("annotations")))
                    .flatten()
                    .map(|a| a.string_map())
                    .unwrap_or_default()
                    .into_iter()
                    .find(|(k, _, _)| *k == required.key);
                let (at, message) = match misplaced {
                    Some((_, _, at)) => (
                        at,
                        format!(
                            "{} {}/{} carries {wanted} on its own metadata, which its pods do not \
                             inherit: move it to {where_template} (rule `{}`)",
                            w.kind, w.namespace, w.name, rule.id
                        ),
                    ),
                    None => (
                        template_meta.or(w.template).map_or(w.at, |n| n.at),
                        format!(
                            "{} {}/{} lacks {wanted} in {where_template}: its pods would not run \
                             behind the firewall (rule `{}`{})",
                            w.kind,
                            w.namespace,
                            w.name,
                            rule.id,
                            selector_text(rule)
                        ),
                    ),
                };
                self.violation(rule, w, at, message);
            }
        }
    }

    /// The labels and annotations the rule forbids, on the workload and
    /// its pod template.
    fn check_forbidden(&mut self, rule: &Rule, w: &Workload<'_>, is_pod: bool) {
        let template_meta = w.template_metadata();
        for forbidden in &rule.forbid {
            let mut places: Vec<(&str, &Node)> = Vec::new();
            if !is_pod {
                if let Some(m) = w.metadata {
                    places.push(("metadata", m));
                }
            }
            if let Some(m) = template_meta {
                places.push((if is_pod { "metadata" } else { "pod template" }, m));
            }
            for (place, meta) in places {
                for field in ["labels", "annotations"] {
                    let hit = meta
                        .get(field)
                        .map(|m| m.string_map())
                        .unwrap_or_default()
                        .into_iter()
                        .find(|(k, _, _)| k == forbidden);
                    if let Some((_, value, at)) = hit {
                        let singular = field.trim_end_matches('s');
                        self.violation(
                            rule,
                            w,
                            at,
                            format!(
                                "{} {}/{} carries the {singular} `{forbidden}: {value}` ({place}): \
                                 rule `{}` forbids it on these workloads",
                                w.kind, w.namespace, w.name, rule.id
                            ),
                        );
                    }
                }
            }
        }
    }

    fn violation(&mut self, rule: &Rule, w: &Workload<'_>, at: Position, message: String) {
        let template = self
            .sources
            .iter()
            .take_while(|(line, _)| *line < w.at.line)
            .last()
            .map(|(_, t)| t.clone());
        self.report.violations.push(Violation {
            rule: rule.id.clone(),
            level: rule.level,
            file: self.file.to_string(),
            line: at.line,
            column: at.column,
            object_line: w.at.line,
            kind: w.kind.to_string(),
            namespace: w.namespace.to_string(),
            name: w.name.to_string(),
            message,
            template,
        });
    }
}

fn selects(rule: &Rule, w: &Workload<'_>) -> bool {
    let s = &rule.selector;
    if !s.kinds.is_empty() && !s.kinds.iter().any(|k| k == w.kind) {
        return false;
    }
    if !s.namespaces.is_empty() && !s.namespaces.iter().any(|n| n == w.namespace) {
        return false;
    }
    fn labels_of(meta: Option<&Node>) -> Vec<(&str, &str, Position)> {
        meta.and_then(|m| m.get("labels"))
            .map(|l| l.string_map())
            .unwrap_or_default()
    }
    let own = labels_of(w.metadata);
    let pod = labels_of(w.template_metadata());
    s.labels.iter().all(|(key, value)| {
        own.iter()
            .chain(pod.iter())
            .any(|(k, v, _)| k == key && v == value)
    })
}

fn selector_text(rule: &Rule) -> String {
    if rule.selector.labels.is_empty() {
        return String::new();
    }
    let labels: Vec<String> = rule
        .selector
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(" selects {}", labels.join(","))
}

/// `helm template` prefixes each object with `# Source: chart/templates/x.yaml`.
fn helm_sources(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            line.strip_prefix("# Source: ")
                .map(|s| (i + 1, s.trim().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Report {
        lint(
            &Policy::default(),
            &[Input {
                name: "m.yaml".into(),
                text: text.into(),
            }],
            "default",
        )
    }

    #[test]
    fn a_guarded_pci_deployment_passes() {
        let r = run("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: pay\n  labels:\n    compliance: pci\nspec:\n  template:\n    metadata:\n      annotations:\n        paloaltonetworks.com/firewall: pan-fw\n");
        assert_eq!(r.workloads, 1);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!(r.exit_code(), 0);
    }

    #[test]
    fn the_annotation_on_the_deployment_itself_is_called_misplaced() {
        let r = run("kind: Deployment\nmetadata:\n  name: pay\n  labels: {compliance: pci}\n  annotations:\n    paloaltonetworks.com/firewall: pan-fw\nspec:\n  template:\n    metadata: {}\n");
        assert_eq!(r.violations.len(), 1);
        let v = &r.violations[0];
        assert_eq!(v.line, 6);
        assert!(
            v.message.contains("move it to spec.template"),
            "{}",
            v.message
        );
        assert_eq!(r.exit_code(), 1);
    }

    #[test]
    fn unselected_and_non_workload_objects_are_ignored() {
        let r = run("kind: Deployment\nmetadata: {name: web}\nspec: {template: {}}\n---\nkind: ConfigMap\nmetadata: {name: c, labels: {compliance: pci}}\n");
        assert_eq!(r.objects, 2);
        assert_eq!(r.workloads, 1);
        assert!(r.violations.is_empty());
    }

    #[test]
    fn helm_source_comments_name_the_template() {
        let r = run("---\n# Source: shop/templates/pay.yaml\nkind: Pod\nmetadata:\n  name: pay\n  labels: {compliance: pci}\n");
        assert_eq!(
            r.violations[0].template.as_deref(),
            Some("shop/templates/pay.yaml")
        );
        assert_eq!(r.violations[0].object_line, 3);
    }
}
