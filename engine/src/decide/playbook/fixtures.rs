//! Golden-file tests: each playbook against its recorded events.
//!
//! Layout: `DIR/fixtures/<playbook>/<case>.<ext>` holds events (raw logs or
//! normalized NDJSON, one per line) and `<case>.expected.ndjson` the intents
//! they must produce, one JSON object per line: the intent without its
//! `action_id`, with the event's `line` number first, e.g.
//!
//! ```json
//! {"line":1,"action":"tag_ip","ip":"203.0.113.9","tag":"riposte-c2","ttl":"1d"}
//! {"line":4,"error":"playbook `x` failed at x.rhai:7:1: …"}
//! ```
//!
//! Each case runs the playbook alone, with fresh counters and the events'
//! own timestamps as the clock, so results do not depend on the day or on
//! other cases. Comparison is by JSON value, so key order and spacing in a
//! golden file do not matter.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use riposte_firewall::ParseOptions;

use crate::decide::decision::Outcome;
use crate::decide::playbook::config::PlaybookConfig;
use crate::decide::playbook::error::PlaybookError;
use crate::decide::playbook::input::{for_each_input, Input};
use crate::decide::playbook::runtime::{list_playbooks, Clock, PlaybookRuntime};

/// Suffix of golden files.
pub const EXPECTED_SUFFIX: &str = ".expected.ndjson";

/// One case's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseStatus {
    Pass {
        lines: usize,
    },
    /// Output differs from the golden file: a readable diff.
    Fail {
        diff: String,
    },
    /// `--bless` wrote the golden file.
    Blessed {
        lines: usize,
    },
    /// The case could not run (unreadable file, a line that is not an event,
    /// a missing golden file).
    Broken {
        message: String,
    },
}

#[derive(Debug, Clone)]
pub struct CaseResult {
    pub playbook: String,
    pub file: PathBuf,
    pub status: CaseStatus,
    /// The runs' `print` and `debug` lines, each marked with the event's
    /// line and id.
    pub output: Vec<String>,
}

/// Everything `playbook test` found.
#[derive(Debug, Default)]
pub struct TestReport {
    pub cases: Vec<CaseResult>,
    /// Playbooks without a fixtures folder.
    pub untested: Vec<String>,
    /// Playbooks that do not compile, fixture folders for no playbook.
    pub errors: Vec<String>,
}

impl TestReport {
    pub fn failed(&self) -> usize {
        self.errors.len()
            + self
                .cases
                .iter()
                .filter(|c| {
                    matches!(
                        c.status,
                        CaseStatus::Fail { .. } | CaseStatus::Broken { .. }
                    )
                })
                .count()
    }
}

/// Runs every playbook of `dir` against `dir/fixtures/<name>/`.
pub fn run_dir(
    dir: &Path,
    cfg: &PlaybookConfig,
    opts: &ParseOptions,
    bless: bool,
) -> Result<TestReport, PlaybookError> {
    let files = list_playbooks(dir)?;
    let fixtures_root = dir.join("fixtures");
    let mut report = TestReport::default();
    let mut names = Vec::new();
    for path in &files {
        let rt =
            match PlaybookRuntime::from_files(cfg, std::slice::from_ref(path), Clock::EventTime) {
                Ok(rt) => rt,
                Err(e) => {
                    report.errors.push(e.to_string());
                    continue;
                }
            };
        let Some(info) = rt.playbooks().into_iter().next() else {
            continue;
        };
        names.push(info.name.clone());
        let case_dir = fixtures_root.join(&info.name);
        if !case_dir.is_dir() {
            report.untested.push(info.name.clone());
            continue;
        }
        let cases = match case_files(&case_dir) {
            Ok(c) => c,
            Err(e) => {
                report.errors.push(format!("{}: {e}", case_dir.display()));
                continue;
            }
        };
        if cases.is_empty() {
            report.untested.push(info.name.clone());
        }
        for case in cases {
            // Fresh counters for every case.
            let mut output = Vec::new();
            let status = match PlaybookRuntime::from_files(
                cfg,
                std::slice::from_ref(path),
                Clock::EventTime,
            ) {
                Ok(rt) => run_case(&rt, &case, opts, bless, &mut output),
                Err(e) => CaseStatus::Broken {
                    message: e.to_string(),
                },
            };
            report.cases.push(CaseResult {
                playbook: info.name.clone(),
                file: case,
                status,
                output,
            });
        }
    }
    if let Ok(entries) = std::fs::read_dir(&fixtures_root) {
        let mut orphans: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter(|n| !n.starts_with('.') && !names.contains(n))
            .collect();
        orphans.sort();
        for o in orphans {
            report.errors.push(format!(
                "{}: fixtures for `{o}`, but no playbook has that name",
                fixtures_root.join(&o).display()
            ));
        }
    }
    Ok(report)
}

/// The event files of a case folder, sorted.
fn case_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if path.is_file()
            && !name.starts_with('.')
            && !name.ends_with(EXPECTED_SUFFIX)
            && !name.to_ascii_lowercase().starts_with("readme")
        {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// `case.ndjson` → `case.expected.ndjson`.
pub fn expected_path(case: &Path) -> PathBuf {
    let stem = case
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    case.with_file_name(format!("{stem}{EXPECTED_SUFFIX}"))
}

/// Why a case could not be run.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error(transparent)]
    Read(#[from] std::io::Error),
    /// Every line that is not an event, together.
    #[error("{}", .0.iter().map(|(line, m)| format!("line {line}: {m}")).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<(u64, String)>),
}

/// The output lines of one case, canonical JSON; the runs' `print` and
/// `debug` lines go to `printed`. Every line that is not an event is
/// reported, together.
pub fn case_output(
    rt: &PlaybookRuntime,
    case: &Path,
    opts: &ParseOptions,
    printed: &mut Vec<String>,
) -> Result<Vec<String>, CaseError> {
    let mut lines = Vec::new();
    let mut problems: Vec<(u64, String)> = Vec::new();
    for_each_input(case, opts, |line_no, input| match input {
        Input::Event(ev) => {
            let (decisions, output) = rt.evaluate_capturing(&ev);
            printed.extend(output.into_iter().map(|o| {
                format!(
                    "line {line_no} [{}] event {}: {}",
                    o.playbook, o.event_id, o.text
                )
            }));
            for d in decisions {
                match d.outcome {
                    Outcome::Error { message } => {
                        lines.push(format!(
                            "{{\"line\":{line_no},\"error\":{}}}",
                            serde_json::Value::String(message)
                        ));
                    }
                    _ => {
                        for intent in d.intents {
                            lines.push(golden_line(line_no, &intent.action));
                        }
                    }
                }
            }
        }
        Input::Ignored => {}
        Input::Invalid(message) => problems.push((line_no, message)),
    })?;
    if problems.is_empty() {
        Ok(lines)
    } else {
        Err(CaseError::Invalid(problems))
    }
}

/// `{"line":N,` then the action's own JSON.
fn golden_line(line_no: u64, action: &crate::decide::intent::Action) -> String {
    let body = serde_json::to_string(action).unwrap_or_else(|_| "{}".into());
    match body.strip_prefix('{') {
        Some(rest) if rest != "}" => format!("{{\"line\":{line_no},{rest}"),
        _ => format!("{{\"line\":{line_no}}}"),
    }
}

fn run_case(
    rt: &PlaybookRuntime,
    case: &Path,
    opts: &ParseOptions,
    bless: bool,
    printed: &mut Vec<String>,
) -> CaseStatus {
    let actual = match case_output(rt, case, opts, printed) {
        Ok(a) => a,
        Err(e) => {
            return CaseStatus::Broken {
                message: e.to_string(),
            }
        }
    };
    let golden = expected_path(case);
    if bless {
        let mut text = actual.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        return match std::fs::write(&golden, text) {
            Ok(()) => CaseStatus::Blessed {
                lines: actual.len(),
            },
            Err(e) => CaseStatus::Broken {
                message: format!("{}: {e}", golden.display()),
            },
        };
    }
    let expected_text = match std::fs::read_to_string(&golden) {
        Ok(t) => t,
        Err(e) => {
            return CaseStatus::Broken {
                message: format!(
                    "{}: {e} (run `riposte playbook test --bless` to write it from the current output:\n{})",
                    golden.display(),
                    actual.join("\n")
                ),
            }
        }
    };
    let mut expected = Vec::new();
    for (i, line) in expected_text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) => expected.push((line.trim().to_owned(), v)),
            Err(e) => {
                return CaseStatus::Broken {
                    message: format!("{}:{}: not JSON: {e}", golden.display(), i + 1),
                }
            }
        }
    }
    let actual_values: Vec<(String, serde_json::Value)> = actual
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or(serde_json::Value::Null);
            (l.clone(), v)
        })
        .collect();
    let same = expected.len() == actual_values.len()
        && expected.iter().zip(&actual_values).all(|(e, a)| e.1 == a.1);
    if same {
        CaseStatus::Pass {
            lines: actual.len(),
        }
    } else {
        CaseStatus::Fail {
            diff: diff_by(
                &expected,
                &actual_values,
                |a, b| a.1 == b.1,
                |x| x.0.as_str(),
            ),
        }
    }
}

/// A line diff (longest common subsequence): `-` expected only, `+` actual
/// only, unchanged lines next to a change shown with two spaces.
pub fn diff(expected: &[&str], actual: &[&str]) -> String {
    diff_by(expected, actual, |a, b| a == b, |s| s)
}

/// [`diff`] over any items: `same` decides equality (JSON values compare by
/// value), `show` gives the line to print.
pub fn diff_by<'a, T>(
    expected: &'a [T],
    actual: &'a [T],
    same: impl Fn(&T, &T) -> bool,
    show: impl Fn(&'a T) -> &'a str,
) -> String {
    let (n, m) = (expected.len(), actual.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if same(&expected[i], &actual[j]) {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && same(&expected[i], &actual[j]) {
            ops.push((' ', show(&expected[i])));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', show(&expected[i])));
            i += 1;
        } else {
            ops.push(('+', show(&actual[j])));
            j += 1;
        }
    }
    let mut out = String::new();
    for (k, (op, line)) in ops.iter().enumerate() {
        let near_change = ops[k.saturating_sub(1)..(k + 2).min(ops.len())]
            .iter()
            .any(|(o, _)| *o != ' ');
        if *op != ' ' || near_change {
            let _ = writeln!(out, "{op} {line}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_marks_missing_and_extra_lines() {
        let d = diff(&["a", "b", "c"], &["a", "x", "c"]);
        assert_eq!(d, "  a\n- b\n+ x\n  c\n");
        assert_eq!(diff(&["a"], &["a"]), "");
        assert_eq!(diff(&[], &["n"]), "+ n\n");
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
    }

    const EVENT: &str = r#"{"@timestamp":"2025-01-01T00:00:00Z","event.id":"e1","event.kind":"alert","event.module":"panos","event.dataset":"panos.threat","observer.vendor":"Palo Alto Networks","observer.product":"PAN-OS","destination.ip":"203.0.113.9","event.original":"x"}"#;

    #[test]
    fn cases_pass_fail_and_report_errors_per_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        write(root, "tag.rhai", "// trigger: any\ntag_ip(event.destination.ip, \"x\");\nif event.id == \"e2\" { quarantine(event.source.pod); }\n");
        write(root, "fixtures/tag/ok.ndjson", EVENT);
        write(
            root,
            "fixtures/tag/ok.expected.ndjson",
            "{\"line\": 1, \"ttl\": \"1h\", \"action\": \"tag_ip\", \"ip\": \"203.0.113.9\", \"tag\": \"x\"}\n",
        );
        write(
            root,
            "fixtures/tag/err.ndjson",
            &EVENT.replace("\"e1\"", "\"e2\""),
        );
        write(root, "fixtures/tag/err.expected.ndjson", "");
        write(root, "fixtures/ghost/a.ndjson", EVENT);
        write(root, "lonely.rhai", "// trigger: any\nlet x = 1;\n");
        let cfg = PlaybookConfig::default();
        let report = run_dir(root, &cfg, &ParseOptions::default(), false).expect("run");
        let status = |name: &str| {
            report
                .cases
                .iter()
                .find(|c| c.file.ends_with(name))
                .map(|c| c.status.clone())
                .expect("case")
        };
        assert_eq!(
            status("ok.ndjson"),
            CaseStatus::Pass { lines: 1 },
            "key order and spacing do not matter"
        );
        match status("err.ndjson") {
            CaseStatus::Fail { diff } => {
                assert!(
                    diff.contains("+ {\"line\":1,\"error\":\"playbook `tag` failed at tag.rhai:3:"),
                    "{diff}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(report.untested, ["lonely"]);
        assert!(
            report.errors.iter().any(|e| e.contains("`ghost`")),
            "{:?}",
            report.errors
        );
        assert_eq!(report.failed(), 2);
    }

    #[test]
    fn golden_paths_sit_beside_the_case() {
        assert_eq!(
            expected_path(Path::new("f/c2/from-pod.ndjson")),
            PathBuf::from("f/c2/from-pod.expected.ndjson")
        );
    }
}
