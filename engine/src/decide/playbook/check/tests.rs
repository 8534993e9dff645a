//! One small playbook per class of mistake, and the shipped playbooks.

use std::path::Path;

use crate::decide::playbook::config::PlaybookConfig;
use crate::decide::playbook::runtime::{Clock, PlaybookRuntime};

/// What loading `body` (after a two-line header) reports: the refusal, or
/// the warnings.
fn check(body: &str) -> Result<Vec<String>, String> {
    check_with_header("// name: t\n// trigger: any\n", body)
}

fn check_with_header(header: &str, body: &str) -> Result<Vec<String>, String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.rhai");
    std::fs::write(&path, format!("{header}{body}")).expect("write");
    let cfg = PlaybookConfig {
        dir: dir.path().to_owned(),
        watch: false,
        ..PlaybookConfig::default()
    };
    let mut registry = prometheus_client::registry::Registry::default();
    let (_rt, report) = PlaybookRuntime::load_reporting(&cfg, &mut registry, Clock::EventTime)
        .map_err(|e| e.to_string())?;
    if !report.errors.is_empty() {
        return Err(report.errors.join("\n"));
    }
    Ok(report.warnings)
}

fn refused(body: &str) -> String {
    match check(body) {
        Err(e) => e,
        Ok(w) => panic!("`{body}` was accepted (warnings {w:?})"),
    }
}

#[test]
fn a_misspelt_helper_is_refused_with_a_suggestion() {
    let e = refused("if once_pre(\"k\", \"10m\") { log(\"info\", \"x\"); }\n");
    assert!(
        e.contains("t.rhai:3:4: unknown function `once_pre`: did you mean `once_per`?"),
        "{e}"
    );
}

#[test]
fn wrong_arity_and_literal_types_are_refused_in_playbook_words() {
    let e = refused("edl_add(\"c2\", event.source.ip, \"24h\");\n");
    assert!(
        e.contains("t.rhai:3:") && e.contains("argument 3 is a string, but it takes a map"),
        "{e}"
    );
    assert!(!e.contains("ImmutableString") && !e.contains("&str"), "{e}");
    let e = refused("quarantine();\n");
    assert!(
        e.contains("`quarantine` takes 1 or 2 argument(s), not 0"),
        "{e}"
    );
    let e = refused("tag_ip(event.source.ip, 42);\n");
    assert!(
        e.contains("argument 2 is a number, but it takes a string"),
        "{e}"
    );
    let e = refused("log(\"warning\", \"x\");\n");
    assert!(e.contains("`warning` is not a log level"), "{e}");
}

#[test]
fn a_misspelt_option_key_is_refused() {
    let e = refused("quarantine(event.source.pod, #{ tll: \"4h\" });\n");
    assert!(
        e.contains("t.rhai:3:33: `quarantine` has no option `tll`: did you mean `ttl`?"),
        "{e}"
    );
}

#[test]
fn an_unknown_event_field_is_refused_with_the_right_path() {
    let e = refused("let h = event.file.sha256;\n");
    assert!(
        e.contains("no event has event.file.sha256")
            && e.contains("did you mean event.file.hash.sha256?"),
        "{e}"
    );
    // Open maps take any key, and `?.` is the same path.
    assert!(check("let a = event.source.pod.labels.app; let b = event.webhook.body.x; let c = event.file.hash?.sha256;\n").is_ok());
}

#[test]
fn comparing_unlike_types_is_refused() {
    let e =
        refused("let hits = count(\"k\", \"5m\");\nif hits > \"20\" { log(\"info\", \"x\"); }\n");
    assert!(
        e.contains("t.rhai:4:") && e.contains("compares a number with a string: always false"),
        "{e}"
    );
    let e = refused("if event.threat.id == \"86467\" { return; }\n");
    assert!(e.contains("compares a number with a string"), "{e}");
    // `()` is how presence is tested: never a mistake.
    assert!(check(
        "if event.source.ip == () { return; }\nif event.threat.id == 86467 { return; }\n"
    )
    .is_ok());
}

#[test]
fn a_loop_variable_or_parameter_is_not_the_same_named_let() {
    // Each `x` below may hold a string: refusing would be a false alarm.
    assert!(check("let x = 1;\nfor x in [\"a\"] { if x == \"a\" { return; } }\n").is_ok());
    assert!(check("let x = 1;\nfn f(x) { x == \"a\" }\nif f(\"a\") { return; }\n").is_ok());
}

#[test]
fn enumerated_values_are_checked_in_triggers_and_scripts() {
    let w = check_with_header(
        "// name: t\n// trigger: threat.type = vulnerabilty\n",
        "let x = 1;\n",
    )
    .expect("loads");
    assert!(w.iter().any(|w| w.contains("t.rhai:2:27: warning: trigger: `vulnerabilty` is not a known threat.type: did you mean `vulnerability`?")), "{w:?}");
    let w = check("if event.threat.type == \"spywere\" { return; }\n").expect("loads");
    assert!(
        w.iter().any(|w| w.contains("did you mean `spyware`?")),
        "{w:?}"
    );
    let e = refused("if event.network.direction == \"inbound\" { return; }\n");
    assert!(e.contains("`inbound` is never a network.direction"), "{e}");
}

#[test]
fn a_ttl_without_a_unit_is_refused() {
    let e = refused("quarantine(event.source.pod, #{ ttl: 24 });\n");
    assert!(
        e.contains("ttl 24 has no unit (it would be 24 seconds): write \"24h\""),
        "{e}"
    );
    let e = refused("if once_per(\"k\", 600) { return; }\n");
    assert!(e.contains("the duration 600 has no unit"), "{e}");
}

#[test]
fn misspelt_notify_keys_and_severities_are_refused() {
    let e = refused("notify(\"soar\", #{ title: \"x\", severty: \"high\" });\n");
    assert!(
        e.contains("`severty` is not a key notify knows: did you mean `severity`?"),
        "{e}"
    );
    let e = refused("notify(\"soar\", #{ severity: \"urgent\" });\n");
    assert!(e.contains("severity `urgent` is not a severity"), "{e}");
    // Other keys are fields.
    assert!(
        check("notify(\"soar\", #{ title: \"x\", attacker: \"1.2.3.4\", c2: \"x\" });\n").is_ok()
    );
}

#[test]
fn every_shipped_playbook_passes_with_no_warning() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../playbooks");
    let cfg = PlaybookConfig {
        dir,
        watch: false,
        ..PlaybookConfig::default()
    };
    let mut registry = prometheus_client::registry::Registry::default();
    let (rt, report) =
        PlaybookRuntime::load_reporting(&cfg, &mut registry, Clock::EventTime).expect("dir");
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
    assert!(report.warnings.is_empty(), "{:#?}", report.warnings);
    assert!(rt.playbooks().len() >= 7);
}

#[test]
fn the_helper_table_is_what_the_engine_registers() {
    let engine = crate::decide::playbook::sandbox::build_engine(
        &Default::default(),
        std::sync::Arc::new(crate::decide::playbook::counters::Counters::new(
            16,
            Default::default(),
            Default::default(),
        )),
    );
    let mut registered: Vec<(String, usize)> = engine
        .gen_fn_signatures(false)
        .iter()
        .filter_map(|s| super::parse_signature(s))
        // Operators are the raising comparisons (`compare`), not helpers.
        .filter(|(n, _)| n.starts_with(|c: char| c.is_ascii_alphabetic()) && !n.contains('$'))
        .collect();
    registered.sort();
    registered.dedup();
    let mut table: Vec<(String, usize)> = super::helpers::HELPERS
        .iter()
        .flat_map(|h| h.signatures.iter().map(|s| (h.name.to_owned(), s.len())))
        .collect();
    table.sort();
    table.dedup();
    assert_eq!(registered, table);
}
