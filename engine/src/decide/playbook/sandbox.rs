//! The Rhai engine every playbook runs in, and the state of one run.
//!
//! Limits come from [`PlaybookLimits`]: operations, call levels, expression
//! depth, string, array and map sizes, variables. The crate is built with
//! `no_module` (no `import`, no module resolver), `eval` is disabled, strict
//! variables are on, and the engine has no function touching files or the
//! network. `print` and `debug` go to tracing, within the playbook's output
//! budget (see [`output`](super::output)). A wall-clock deadline is
//! checked from `on_progress` against the run's own deadline.
//!
//! Per-run state (the intents made so far, the deadline, the event's pods
//! for target resolution) lives in a thread-local for the duration of one
//! synchronous run: native functions reach it without locks, and runs on
//! other threads never see it.

use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use rhai::{Dynamic, Engine, EvalAltResult, Position, Scope, AST};
use riposte_firewall::PodContext;

use crate::decide::intent::Action;
use crate::decide::playbook::config::PlaybookLimits;
use crate::decide::playbook::counters::Counters;
use crate::decide::playbook::output::ScriptOutput;
use crate::decide::playbook::script_api;

/// What one run knows and produces.
#[derive(Debug)]
pub struct RunState {
    pub playbook: Arc<str>,
    /// Where `print` and `debug` lines are budgeted.
    pub output: Option<Arc<ScriptOutput>>,
    /// "Now" for counters and `now()`, in milliseconds since the epoch.
    pub now_ms: i64,
    pub deadline: Instant,
    pub max_intents: usize,
    pub intents: Vec<Action>,
    pub source: (Option<IpAddr>, Option<Arc<PodContext>>),
    pub destination: (Option<IpAddr>, Option<Arc<PodContext>>),
    /// Set when `on_progress` stopped the run for its deadline.
    pub timed_out: bool,
    /// Set by `stop()`: the run ends there, its intents stand, and no
    /// later playbook runs on this event.
    pub stopped: bool,
    /// Set when a comparison of unlike values failed the run.
    pub type_mismatch: bool,
    /// `replay` and `playbook test`: `print` and `debug` lines are kept
    /// here, to be shown beside the event, instead of going to the log.
    pub capture: Option<Vec<String>>,
    /// A dry run's own counters. The live ones are only read (a dry run
    /// answers as the live playbook would now, and leaves its `count`,
    /// `once_per` and `seen_before` state as it was); this records the
    /// run's own calls, so a key used twice in one dry run still behaves.
    pub scratch: Option<Box<Counters>>,
}

thread_local! {
    static RUN: RefCell<Option<RunState>> = const { RefCell::new(None) };
}

/// Calls `f` with the current run's state; an error when called outside a
/// run (which only a bug could do).
// The error is text on purpose: every caller turns it into the Rhai
// runtime error the script sees (`fail`), which is Rhai's contract.
pub fn with_run<T>(f: impl FnOnce(&mut RunState) -> Result<T, String>) -> Result<T, String> {
    RUN.with(|cell| match cell.try_borrow_mut() {
        Ok(mut guard) => match guard.as_mut() {
            Some(state) => f(state),
            None => Err("called outside a playbook run".into()),
        },
        Err(_) => Err("re-entrant call".into()),
    })
}

/// A script-facing error: Rhai fills in the position of the calling line.
pub fn script_error(msg: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(msg.into()),
        Position::NONE,
    ))
}

/// What `stop()` raises to end the script; the run counts as decided.
pub const STOP_TOKEN: &str = "riposte:stop";

/// Builds the engine with every limit and the script API.
pub fn build_engine(limits: &PlaybookLimits, counters: Arc<Counters>) -> Engine {
    let mut engine = Engine::new();
    engine.set_max_operations(limits.max_operations.max(1));
    engine.set_max_call_levels(limits.max_call_levels);
    engine.set_max_expr_depths(
        limits.max_expr_depth.max(1),
        limits.max_function_expr_depth.max(1),
    );
    engine.set_max_string_size(limits.max_string_size.max(1));
    engine.set_max_array_size(limits.max_array_size.max(1));
    engine.set_max_map_size(limits.max_map_size.max(1));
    engine.set_max_variables(limits.max_variables.max(1));
    // The engine's string interner is one lock shared by every thread, and
    // trimming it when full costs milliseconds: runs' strings are
    // short-lived anyway.
    engine.set_max_strings_interned(0);
    engine.set_strict_variables(true);
    engine.disable_symbol("eval");
    engine.on_print(|text| {
        if captured(|| format!("print: {text}")) {
            return;
        }
        // Lines nobody would see cost no budget.
        if !tracing::enabled!(target: "riposte::playbook", tracing::Level::INFO) {
            return;
        }
        let Some((playbook, suppressed, text, cut)) = admit_output(text) else {
            return;
        };
        tracing::info!(target: "riposte::playbook", %playbook, suppressed, cut, "print: {text}");
    });
    engine.on_debug(|text, _source, pos| {
        if captured(|| format!("debug (line {}): {text}", pos.line().unwrap_or(0))) {
            return;
        }
        if !tracing::enabled!(target: "riposte::playbook", tracing::Level::DEBUG) {
            return;
        }
        let Some((playbook, suppressed, text, cut)) = admit_output(text) else {
            return;
        };
        tracing::debug!(target: "riposte::playbook", %playbook, suppressed, cut, line = pos.line().unwrap_or(0), "debug: {text}");
    });
    engine.on_progress(|ops| {
        // Reading the clock costs tens of nanoseconds: every 256 operations
        // is enough to stop a runaway loop within microseconds of its
        // deadline.
        if ops & 0xff != 0 {
            return None;
        }
        let late = RUN.with(|cell| match cell.try_borrow_mut() {
            Ok(mut guard) => match guard.as_mut() {
                Some(state) if Instant::now() >= state.deadline => {
                    state.timed_out = true;
                    true
                }
                _ => false,
            },
            Err(_) => false,
        });
        late.then(|| Dynamic::from("deadline"))
    });
    // Any property of `()` is `()`: a value the event does not carry reads
    // as `()` at any depth (`event.source.nat.ip`), so scripts need no
    // guard before each step and the event map needs no empty groups.
    engine.register_indexer_get(|_: &mut (), _: rhai::ImmutableString| ());
    script_api::register(&mut engine, counters);
    crate::decide::playbook::compare::register(&mut engine);
    engine
}

/// At most this many `print`/`debug` lines are kept from one captured run.
const MAX_CAPTURED: usize = 100;

/// Keeps the line when the run captures its output; whether it did.
fn captured(line: impl FnOnce() -> String) -> bool {
    RUN.with(|cell| match cell.try_borrow_mut() {
        Ok(mut guard) => match guard.as_mut().and_then(|s| s.capture.as_mut()) {
            Some(lines) => {
                if lines.len() < MAX_CAPTURED {
                    lines.push(line());
                } else if lines.len() == MAX_CAPTURED {
                    lines.push(format!(
                        "… more lines not shown (at most {MAX_CAPTURED} per run)"
                    ));
                }
                true
            }
            None => false,
        },
        Err(_) => false,
    })
}

/// For a line the current playbook may write now: its name, the lines held
/// back before it, the line cut to size and the bytes cut.
fn admit_output(text: &str) -> Option<(Arc<str>, u64, &str, usize)> {
    let (playbook, output) = RUN.with(|cell| {
        cell.try_borrow()
            .ok()
            .and_then(|g| g.as_ref().map(|s| (s.playbook.clone(), s.output.clone())))
    })?;
    // Outside a playbook's run (only a bug could print there) nothing is
    // budgeted, so nothing is written either.
    let output = output?;
    let suppressed = output.admit()?;
    let (text, cut) = output.clip(text);
    Some((playbook, suppressed, text, cut))
}

/// Runs a compiled playbook with `event` as a constant in a fresh scope;
/// returns the run's outcome and its state (with the intents made).
pub fn run(
    engine: &Engine,
    ast: &AST,
    event: Dynamic,
    state: RunState,
) -> (Result<(), Box<EvalAltResult>>, RunState) {
    RUN.with(|cell| *cell.borrow_mut() = Some(state));
    let mut scope = Scope::new();
    scope.push_constant_dynamic("event", event);
    let result = engine.run_ast_with_scope(&mut scope, ast);
    let state = RUN.with(|cell| cell.borrow_mut().take());
    // The state was put in above and nothing else takes it out.
    let state = state.unwrap_or_else(|| RunState {
        playbook: Arc::from(""),
        output: None,
        now_ms: 0,
        deadline: Instant::now(),
        max_intents: 0,
        intents: Vec::new(),
        source: (None, None),
        destination: (None, None),
        timed_out: false,
        stopped: false,
        type_mismatch: false,
        capture: None,
        scratch: None,
    });
    (result, state)
}

/// The scope playbooks are compiled against: `event` is known, so strict
/// variables accept it; it is a plain variable here so that the optimizer
/// does not fold a placeholder value into the script.
pub fn compile_scope() -> Scope<'static> {
    let mut scope = Scope::new();
    scope.push_dynamic("event", Dynamic::UNIT);
    scope
}

#[cfg(test)]
mod tests {
    use crate::decide::playbook::config::{PlaybookConfig, PlaybookLimits};
    use crate::decide::playbook::runtime::testing::*;
    use crate::decide::playbook::runtime::{Clock, PlaybookRuntime};

    fn compile_error(src: &str) -> String {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bad.rhai");
        std::fs::write(&path, format!("// name: bad\n// trigger: any\n{src}")).expect("write");
        match PlaybookRuntime::from_files(&PlaybookConfig::default(), &[path], Clock::EventTime) {
            Ok(_) => panic!("`{src}` compiled"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_syntax_error_is_refused_with_file_line_and_column() {
        let e = compile_error("let x = 1;\nlet y = (x + ;\n");
        assert!(e.contains("bad.rhai:4:"), "{e}");
    }

    #[test]
    fn eval_modules_and_undefined_variables_do_not_compile() {
        assert!(compile_error("eval(\"1\");").contains("bad.rhai:3:"));
        assert!(compile_error("import \"x\" as y;").contains("bad.rhai:3:"));
        let e = compile_error("let a = b;");
        assert!(e.contains("bad.rhai:3:9") && e.contains("b"), "{e}");
    }

    #[test]
    fn an_infinite_loop_is_stopped_by_the_operation_limit() {
        // A generous deadline, so that the operation limit stops it first
        // even in a debug build.
        let cfg = PlaybookConfig {
            limits: PlaybookLimits {
                timeout_ms: 60_000,
                ..PlaybookLimits::default()
            },
            ..PlaybookConfig::default()
        };
        let (_d, rt) = runtime(
            &[(
                "t.rhai",
                "// trigger: any\n\n\nlet n = 0;\nloop { n += 1; }\n",
            )],
            cfg,
        );
        let e = error_of(&rt, &c2_event());
        assert!(
            e.contains("t.rhai:5:") && e.contains("more than 100000 operations"),
            "{e}"
        );
    }

    #[test]
    fn a_slow_run_is_stopped_by_the_wall_clock_deadline() {
        let cfg = PlaybookConfig {
            limits: PlaybookLimits {
                max_operations: u64::MAX / 2,
                timeout_ms: 20,
                ..PlaybookLimits::default()
            },
            ..PlaybookConfig::default()
        };
        let (_d, rt) = runtime(
            &[(
                "t.rhai",
                "// trigger: any\nlet n = 0;\nwhile true { n += 1; }\n",
            )],
            cfg,
        );
        let started = std::time::Instant::now();
        let e = error_of(&rt, &c2_event());
        assert!(
            e.contains("t.rhai:3:") && e.contains("20 ms deadline"),
            "{e}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn a_gigabyte_string_is_refused() {
        let (_d, rt) = one("let s = \"x\";\ns.pad(1000000000, \"x\");\n");
        let e = error_of(&rt, &c2_event());
        assert!(
            e.contains("t.rhai:5:") && e.contains("over the sandbox limit"),
            "{e}"
        );
        let (_d, rt) = one("let s = \"xxxxxxxx\";\nloop { s += s; }\n");
        let e = error_of(&rt, &c2_event());
        assert!(e.contains("over the sandbox limit"), "{e}");
    }

    #[test]
    fn large_arrays_and_maps_are_refused() {
        let (_d, rt) = one("let a = [];\na.pad(100000, 0);\n");
        let e = error_of(&rt, &c2_event());
        assert!(e.contains("over the sandbox limit"), "{e}");
        // Rhai measures a map when a method changes it (not on `m[k] = v`,
        // whose growth the operation limit bounds) and re-measures it every
        // time: a debug build needs a generous deadline to get there.
        let cfg = PlaybookConfig {
            limits: PlaybookLimits {
                timeout_ms: 60_000,
                ..PlaybookLimits::default()
            },
            ..PlaybookConfig::default()
        };
        let (_d, rt) = runtime(&[("t.rhai", "// trigger: any\nlet m = #{};\nfor i in 0..2000 { let x = #{}; x[`k${i}`] = i; m.mixin(x); }\n")], cfg);
        let e = error_of(&rt, &c2_event());
        assert!(e.contains("over the sandbox limit"), "{e}");
    }

    #[test]
    fn deep_recursion_is_stopped() {
        let (_d, rt) = one("fn down(n) { down(n + 1) }\ndown(0);\n");
        let e = error_of(&rt, &c2_event());
        assert!(
            e.contains("more than 16 nested calls") && e.contains("t.rhai:5:"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_function_names_itself_and_the_line() {
        // Refused at load by the checker…
        let e = compile_error("\nexfiltrate(event.source.ip);\n");
        assert!(
            e.contains("bad.rhai:4:1: unknown function `exfiltrate`"),
            "{e}"
        );
        // …and, called as a method the checker does not follow, at run time.
        let (_d, rt) = one("\nevent.source.ip.exfiltrate();\n");
        let e = error_of(&rt, &c2_event());
        assert!(e.contains("t.rhai:5:") && e.contains("exfiltrate"), "{e}");
    }

    #[test]
    fn a_malformed_target_is_refused() {
        let (_d, rt) =
            one("quarantine(#{ namespace: \"Bad NS\", name: \"x\" }, #{ ttl: \"4h\" });");
        let e = error_of(&rt, &c2_event());
        assert!(
            e.contains("t.rhai:4:1: quarantine: namespace `Bad NS`"),
            "{e}"
        );
        let (_d, rt) = one("quarantine(event.destination.pod, #{ ttl: \"4h\" });");
        let e = error_of(&rt, &c2_event());
        assert!(e.contains("quarantine: target is ()"), "{e}");
    }

    #[test]
    fn a_ttl_of_forever_is_refused() {
        let (_d, rt) = one("quarantine(event.source.pod, #{ ttl: \"forever\" });");
        let e = error_of(&rt, &c2_event());
        assert!(
            e.contains("t.rhai:4:1: quarantine: ttl: duration \"forever\" is not allowed"),
            "{e}"
        );
    }

    #[test]
    fn the_event_is_read_only() {
        let (_d, rt) = one("event.source.ip = \"1.2.3.4\";");
        let e = error_of(&rt, &c2_event());
        assert!(e.contains("t.rhai:4:"), "{e}");
        let (_d, rt) = one("event = 1;");
        assert!(error_of(&rt, &c2_event()).contains("t.rhai:4:"));
    }

    #[test]
    fn missing_values_read_as_unit_at_any_depth() {
        let (_d, rt) = one("if event.source.nat.ip == () && event.url.original == () && event.source.pod.labels.app == \"checkout\" { log(\"info\", \"ok\"); }");
        assert_eq!(intents_of(&rt, &c2_event()).len(), 1);
    }

    #[test]
    fn runs_do_not_leak_state_into_each_other() {
        let (_d, rt) = one("let seen = 1;\nif seen > 1 { tag_ip(event.destination.ip, \"x\"); }\n");
        for _ in 0..3 {
            assert!(intents_of(&rt, &c2_event()).is_empty());
        }
    }

    #[test]
    fn the_runtime_keeps_going_after_every_failure() {
        let (_d, rt) = one(
            "if event.threat.name == \"loop\" { loop {} }\ntag_ip(event.destination.ip, \"x\");\n",
        );
        let mut looping = c2_event();
        looping.threat_name = Some("loop".into());
        assert!(!error_of(&rt, &looping).is_empty());
        assert_eq!(intents_of(&rt, &c2_event()).len(), 1);
    }
}
