//! Compiled playbooks and their evaluation against events.
//!
//! The compiled set is immutable and swapped whole on reload: an evaluation
//! holds an `Arc` of the set it started with, so a reload never disturbs
//! in-flight events and never leaves a half-loaded set visible.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use prometheus_client::registry::Registry;
use rhai::{Dynamic, Engine, EvalAltResult, AST};
use riposte_firewall::{EventKind, EventModule, ThreatEvent};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::decide::decision::{Decision, EventSummary, Mode, Outcome, Timings};
use crate::decide::intent::Intent;
use crate::decide::playbook::check::{self, Checker};
use crate::decide::playbook::config::PlaybookConfig;
use crate::decide::playbook::counters::Counters;
use crate::decide::playbook::error::PlaybookError;
use crate::decide::playbook::event_map::{event_map, event_map_reading, PodMaps};
use crate::decide::playbook::fingerprint::{self, Fingerprint};
use crate::decide::playbook::meta::{self, Meta};
use crate::decide::playbook::metrics::{PlaybookMetrics, RunMetrics};
use crate::decide::playbook::output::ScriptOutput;
use crate::decide::playbook::reads::{self, Need};
use crate::decide::playbook::sandbox::{self, RunState};

/// Where "now" comes from for counters and `now()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The wall clock: `serve`.
    Wall,
    /// The event's `@timestamp`: `replay` and `playbook test`, so that a
    /// recorded day replays the same way every time.
    EventTime,
}

/// One compiled playbook.
#[derive(Debug)]
pub struct CompiledPlaybook {
    pub meta: Meta,
    pub path: PathBuf,
    /// The file name as shown in messages (`c2-quarantine.rhai`).
    pub display: String,
    pub ast: AST,
    /// What it reads of the event.
    pub(crate) reads: Need,
    /// What the checker thought probably wrong, as `file:line:column:
    /// warning: message`.
    pub warnings: Vec<String>,
    /// xxh3 of the source, to skip recompiling unchanged files.
    pub hash: u64,
    pub(crate) name: Arc<str>,
    metrics: RunMetrics,
    output: Arc<ScriptOutput>,
    last_warn_ms: AtomicI64,
    suppressed_warns: AtomicU64,
}

/// A listing entry for `GET /v1/playbooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaybookInfo {
    pub name: String,
    pub description: String,
    /// The mode it runs in (the global dry-run switch included).
    pub mode: Mode,
    /// The mode its header declares.
    pub declared_mode: Mode,
    pub order: i64,
    pub enabled: bool,
    pub trigger: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    pub file: PathBuf,
}

/// The set in force: every loaded playbook in run order.
#[derive(Debug, Default)]
pub struct PlaybookSet {
    pub playbooks: Vec<Arc<CompiledPlaybook>>,
    pub generation: u64,
    /// What any of them reads of the event: what the event map holds.
    pub(crate) reads: Need,
}

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    /// Newly compiled or changed playbooks now in force.
    pub loaded: Vec<String>,
    pub unchanged: Vec<String>,
    pub removed: Vec<String>,
    /// Refused files, each as `file:line:column: message`; a refused file's
    /// previous version, if any, keeps running.
    pub errors: Vec<String>,
    /// What the checker thought probably wrong in the playbooks now in
    /// force, each as `file:line:column: warning: message`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl ReloadReport {
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Where the playbooks come from.
#[derive(Debug, Clone)]
enum Origin {
    Dir(PathBuf),
    Files(Vec<PathBuf>),
}

/// The playbook runtime: compiled playbooks, the sandbox, counters, metrics.
#[derive(Debug)]
pub struct PlaybookRuntime {
    pub(crate) cfg: PlaybookConfig,
    origin: Origin,
    engine: Engine,
    set: RwLock<Arc<PlaybookSet>>,
    pub(crate) metrics: PlaybookMetrics,
    counters: Arc<Counters>,
    pod_maps: PodMaps,
    clock: Clock,
    generation_tx: watch::Sender<u64>,
    /// Held by a reload; holds the fingerprint of the files it read.
    reload_lock: std::sync::Mutex<Option<u64>>,
}

/// A `print` or `debug` line of one playbook's run on one event
/// ([`PlaybookRuntime::evaluate_capturing`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    pub playbook: String,
    pub event_id: String,
    pub text: String,
}

impl PlaybookRuntime {
    /// Loads every `*.rhai` of `cfg.dir`. A playbook that fails to compile is
    /// reported (log and metric) and skipped; a missing directory is an error.
    pub fn load(cfg: &PlaybookConfig, registry: &mut Registry) -> Result<Self, PlaybookError> {
        Self::load_with_clock(cfg, registry, Clock::Wall)
    }

    /// [`load`](Self::load) with a chosen clock (the offline commands use
    /// event time).
    pub fn load_with_clock(
        cfg: &PlaybookConfig,
        registry: &mut Registry,
        clock: Clock,
    ) -> Result<Self, PlaybookError> {
        let (rt, report) = Self::load_reporting(cfg, registry, clock)?;
        for e in &report.errors {
            tracing::error!(target: "riposte::playbook", "playbook refused: {e}");
        }
        Ok(rt)
    }

    /// Loads like [`load`](Self::load) and also returns what the first load
    /// found, refused playbooks included (for `check-config` and `replay`).
    pub fn load_reporting(
        cfg: &PlaybookConfig,
        registry: &mut Registry,
        clock: Clock,
    ) -> Result<(Self, ReloadReport), PlaybookError> {
        let meta = std::fs::metadata(&cfg.dir).map_err(|source| PlaybookError::Dir {
            path: cfg.dir.clone(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(PlaybookError::Dir {
                path: cfg.dir.clone(),
                source: std::io::Error::other("not a directory"),
            });
        }
        let rt = Self::new(cfg, registry, clock, Origin::Dir(cfg.dir.clone()));
        let report = rt.reload();
        Ok((rt, report))
    }

    /// A runtime holding exactly these files, for `playbook test` (each
    /// playbook alone with fresh counters). Fails on the first refused file.
    pub fn from_files(
        cfg: &PlaybookConfig,
        files: &[PathBuf],
        clock: Clock,
    ) -> Result<Self, PlaybookError> {
        let mut registry = Registry::default();
        let rt = Self::new(cfg, &mut registry, clock, Origin::Files(files.to_vec()));
        let mut playbooks = Vec::new();
        for path in files {
            playbooks.push(Arc::new(rt.compile_file(path)?));
        }
        sort(&mut playbooks);
        rt.install(playbooks);
        Ok(rt)
    }

    fn new(cfg: &PlaybookConfig, registry: &mut Registry, clock: Clock, origin: Origin) -> Self {
        let metrics = PlaybookMetrics::new(registry);
        let counters = Arc::new(Counters::new(
            cfg.counter_capacity,
            metrics.counter_entries.clone(),
            metrics.counter_evictions.clone(),
        ));
        let engine = sandbox::build_engine(&cfg.limits, counters.clone());
        let (generation_tx, _) = watch::channel(0);
        PlaybookRuntime {
            cfg: cfg.clone(),
            origin,
            engine,
            set: RwLock::new(Arc::new(PlaybookSet::default())),
            metrics,
            counters,
            pod_maps: PodMaps::default(),
            clock,
            generation_tx,
            reload_lock: std::sync::Mutex::new(None),
        }
    }

    pub fn config(&self) -> &PlaybookConfig {
        &self.cfg
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The set in force.
    pub fn current(&self) -> Arc<PlaybookSet> {
        self.set.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Changes whenever a reload installs a new set.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation_tx.subscribe()
    }

    fn install(&self, playbooks: Vec<Arc<CompiledPlaybook>>) {
        let mut guard = self.set.write().unwrap_or_else(|e| e.into_inner());
        let generation = guard.generation + 1;
        self.metrics.loaded.set(playbooks.len() as i64);
        let mut reads = Need::default();
        for pb in &playbooks {
            reads.union(&pb.reads);
        }
        *guard = Arc::new(PlaybookSet {
            playbooks,
            generation,
            reads,
        });
        drop(guard);
        self.generation_tx.send_replace(generation);
    }

    /// Re-reads the playbooks and swaps the set in one step. A file that
    /// fails to compile is refused and its previous version keeps running.
    pub fn reload(&self) -> ReloadReport {
        let mut last = self.reload_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.reload_locked(&mut last)
    }

    /// Reloads like [`reload`](Self::reload) only when the files' names or
    /// contents differ from what the last reload read: `None` when they do
    /// not (nothing is logged or counted then).
    pub fn reload_if_changed(&self) -> Option<ReloadReport> {
        let mut last = self.reload_lock.lock().unwrap_or_else(|e| e.into_inner());
        let now = fingerprint::current(self.files());
        if *last == Some(now) {
            return None;
        }
        Some(self.reload_locked(&mut last))
    }

    fn files(&self) -> Result<Vec<PathBuf>, PlaybookError> {
        match &self.origin {
            Origin::Dir(dir) => list_playbooks(dir),
            Origin::Files(files) => Ok(files.clone()),
        }
    }

    fn reload_locked(&self, last: &mut Option<u64>) -> ReloadReport {
        let old = self.current();
        let mut report = ReloadReport::default();
        let mut seen = Fingerprint::default();
        let files = match self.files() {
            Ok(files) => files,
            Err(e) => {
                let e = e.to_string();
                seen.listing_failed(&e);
                *last = Some(seen.finish());
                report.errors.push(e);
                self.metrics.reload(false);
                return report;
            }
        };
        let mut next: Vec<Arc<CompiledPlaybook>> = Vec::new();
        for path in &files {
            let previous = old.playbooks.iter().find(|p| &p.path == path);
            let source = match std::fs::read_to_string(path) {
                Ok(s) => s,
                Err(source) => {
                    seen.file(path, Err(source.kind()));
                    report.errors.push(
                        PlaybookError::Read {
                            path: path.clone(),
                            source,
                        }
                        .to_string(),
                    );
                    if let Some(p) = previous {
                        next.push(p.clone());
                    }
                    continue;
                }
            };
            let hash = fingerprint::content_hash(&source);
            seen.file(path, Ok(hash));
            if let Some(p) = previous.filter(|p| p.hash == hash) {
                report.unchanged.push(p.meta.name.clone());
                report.warnings.extend(p.warnings.iter().cloned());
                next.push(p.clone());
                continue;
            }
            match self.compile(path, &source, hash) {
                Ok(pb) => {
                    report.loaded.push(pb.meta.name.clone());
                    report.warnings.extend(pb.warnings.iter().cloned());
                    next.push(Arc::new(pb));
                }
                Err(e) => {
                    report.errors.push(e.to_string());
                    if let Some(p) = previous {
                        next.push(p.clone());
                    }
                }
            }
        }
        // Two files may not claim one name: the first (by file name) wins.
        let mut kept: Vec<Arc<CompiledPlaybook>> = Vec::with_capacity(next.len());
        for pb in next {
            if let Some(other) = kept.iter().find(|k| k.meta.name == pb.meta.name) {
                report.errors.push(
                    PlaybookError::Duplicate {
                        path: pb.path.clone(),
                        name: pb.meta.name.clone(),
                        other: other.path.clone(),
                    }
                    .to_string(),
                );
                if let Some(i) = report.loaded.iter().rposition(|n| *n == pb.meta.name) {
                    report.loaded.remove(i);
                }
                continue;
            }
            kept.push(pb);
        }
        for p in &old.playbooks {
            if !kept.iter().any(|k| k.meta.name == p.meta.name) {
                report.removed.push(p.meta.name.clone());
            }
        }
        sort(&mut kept);
        self.install(kept);
        *last = Some(seen.finish());
        self.metrics.reload(report.is_ok());
        if !report.loaded.is_empty() || !report.removed.is_empty() {
            tracing::info!(
                target: "riposte::playbook",
                loaded = ?report.loaded,
                removed = ?report.removed,
                errors = report.errors.len(),
                "playbooks reloaded"
            );
        }
        report
    }

    fn compile_file(&self, path: &Path) -> Result<CompiledPlaybook, PlaybookError> {
        let source = std::fs::read_to_string(path).map_err(|source| PlaybookError::Read {
            path: path.to_owned(),
            source,
        })?;
        let hash = fingerprint::content_hash(&source);
        self.compile(path, &source, hash)
    }

    fn compile(
        &self,
        path: &Path,
        source: &str,
        hash: u64,
    ) -> Result<CompiledPlaybook, PlaybookError> {
        let meta = meta::parse(path, source)?;
        let scope = sandbox::compile_scope();
        let ast = self
            .engine
            .compile_with_scope(&scope, source)
            .map_err(|e| {
                let pos = e.position();
                PlaybookError::Compile {
                    path: path.to_owned(),
                    line: pos.line().unwrap_or(0),
                    column: pos.position().unwrap_or(0),
                    message: e.err_type().to_string(),
                }
            })?;
        let warnings = self.lint(path, source, &meta)?;
        let display = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let output = Arc::new(ScriptOutput::new(
            self.cfg.output_lines_per_second,
            self.cfg.output_max_bytes.max(1),
            self.metrics
                .output_dropped
                .get_or_create(&crate::decide::playbook::metrics::PlaybookLabels {
                    playbook: meta.name.clone(),
                })
                .clone(),
        ));
        Ok(CompiledPlaybook {
            output,
            name: Arc::from(meta.name.as_str()),
            metrics: self.metrics.for_playbook(&meta.name),
            meta,
            path: path.to_owned(),
            display,
            reads: reads::of(&ast),
            ast,
            warnings,
            hash,
            last_warn_ms: AtomicI64::new(i64::MIN),
            suppressed_warns: AtomicU64::new(0),
        })
    }

    /// Runs the checker: its errors refuse the playbook, its warnings are
    /// returned (`file:line:column: warning: message`) and logged.
    fn lint(&self, path: &Path, source: &str, meta: &Meta) -> Result<Vec<String>, PlaybookError> {
        let findings = Checker::shared(&self.engine).check(source, meta);
        let at = |f: &check::Finding| format!("{}:{f}", path.display());
        let errors: Vec<String> = findings
            .iter()
            .filter(|f| f.level == check::Level::Error)
            .map(at)
            .collect();
        if !errors.is_empty() {
            // The warnings ride along: one fix-up round, not two.
            let mut errors = errors;
            errors.extend(
                findings
                    .iter()
                    .filter(|f| f.level == check::Level::Warning)
                    .map(|f| {
                        format!(
                            "{}:{}:{}: warning: {}",
                            path.display(),
                            f.line,
                            f.column,
                            f.message
                        )
                    }),
            );
            return Err(PlaybookError::Check {
                path: path.to_owned(),
                findings: errors,
            });
        }
        let warnings: Vec<String> = findings
            .iter()
            .map(|f| {
                format!(
                    "{}:{}:{}: warning: {}",
                    path.display(),
                    f.line,
                    f.column,
                    f.message
                )
            })
            .collect();
        for w in &warnings {
            tracing::warn!(target: "riposte::playbook", "{w}");
        }
        Ok(warnings)
    }

    /// Every loaded playbook, in run order.
    pub fn playbooks(&self) -> Vec<PlaybookInfo> {
        self.current()
            .playbooks
            .iter()
            .map(|p| PlaybookInfo {
                name: p.meta.name.clone(),
                description: p.meta.description.clone(),
                mode: self.effective_mode(p),
                declared_mode: p.meta.mode,
                order: p.meta.order,
                enabled: p.meta.enabled,
                trigger: p.meta.trigger_text.clone(),
                schedule: p.meta.schedule.as_ref().map(|s| s.text.clone()),
                file: p.path.clone(),
            })
            .collect()
    }

    fn effective_mode(&self, p: &CompiledPlaybook) -> Mode {
        if self.cfg.dry_run {
            Mode::DryRun
        } else {
            p.meta.mode
        }
    }

    /// Runs every enabled playbook whose trigger matches, in order. Events
    /// that match nothing cost a few comparisons and no allocation.
    pub fn evaluate(&self, event: &ThreatEvent) -> Vec<Decision> {
        self.evaluate_inner(event, None)
    }

    /// [`evaluate`](Self::evaluate), keeping the runs' `print` and `debug`
    /// lines (for `replay` and `playbook test`) instead of logging them.
    pub fn evaluate_capturing(&self, event: &ThreatEvent) -> (Vec<Decision>, Vec<OutputLine>) {
        let mut output = Vec::new();
        let decisions = self.evaluate_inner(event, Some(&mut output));
        (decisions, output)
    }

    fn evaluate_inner(
        &self,
        event: &ThreatEvent,
        mut capture: Option<&mut Vec<OutputLine>>,
    ) -> Vec<Decision> {
        let set = self.current();
        let scheduled = scheduled_playbook(event);
        let hits = |pb: &&Arc<CompiledPlaybook>| {
            pb.meta.enabled
                && match scheduled {
                    Some(name) => name == pb.meta.name,
                    None => pb.meta.trigger.matches(event),
                }
        };
        let Some(first) = set.playbooks.iter().position(|pb| hits(&pb)) else {
            return Vec::new();
        };
        self.metrics.matched.inc();
        let matching: Vec<&Arc<CompiledPlaybook>> =
            set.playbooks[first..].iter().filter(hits).collect();
        let mut map = Some(Dynamic::from_map(event_map_reading(
            event,
            &self.pod_maps,
            &set.reads,
        )));
        let last = matching.len() - 1;
        let mut out = Vec::with_capacity(matching.len());
        for (i, pb) in matching.into_iter().enumerate() {
            // The last run takes the map itself: one deep copy fewer.
            let event_dyn = if i == last {
                map.take().unwrap_or_default()
            } else {
                map.clone().unwrap_or_default()
            };
            let (decision, ends_chain, lines) =
                self.run(pb, event, event_dyn, false, capture.is_some());
            if let Some(sink) = capture.as_deref_mut() {
                sink.extend(lines.into_iter().map(|text| OutputLine {
                    playbook: pb.meta.name.clone(),
                    event_id: event.id.to_string(),
                    text,
                }));
            }
            out.push(decision);
            if ends_chain {
                break;
            }
        }
        if out.len() > 1 {
            self.merge(&mut out);
        }
        out
    }

    /// Drops from later decisions the intents an earlier playbook already
    /// made for this event (the same action on the same target with the
    /// same parameters; the reason may differ), so that overlapping
    /// playbooks act, and notify, once. Counted per playbook.
    fn merge(&self, decisions: &mut [Decision]) {
        let mut seen: Vec<serde_json::Value> = Vec::new();
        for d in decisions.iter_mut() {
            let before = d.intents.len();
            d.intents.retain(|i| {
                if matches!(i.action, crate::decide::intent::Action::Log { .. }) {
                    return true;
                }
                let mut key = serde_json::to_value(&i.action).unwrap_or_default();
                if let Some(o) = key.as_object_mut() {
                    o.remove("reason");
                }
                if seen.contains(&key) {
                    return false;
                }
                seen.push(key);
                true
            });
            let merged = before - d.intents.len();
            if merged > 0 {
                self.metrics
                    .merged
                    .get_or_create(&crate::decide::playbook::metrics::PlaybookLabels {
                        playbook: d.playbook.clone(),
                    })
                    .inc_by(merged as u64);
            }
        }
    }

    /// Runs one playbook on an event and applies nothing
    /// (`POST /v1/playbooks/{name}/dry-run`): `None` when there is no such
    /// playbook, `Some(None)` when its trigger does not match. Counters
    /// (`count`, `once_per`, `seen_before`) answer from the live state but
    /// are not changed by it: a dry run never suppresses (or counts towards)
    /// what the live playbook does next.
    pub fn dry_run(&self, name: &str, event: &ThreatEvent) -> Option<Option<Decision>> {
        let set = self.current();
        let pb = set.playbooks.iter().find(|p| p.meta.name == name)?;
        if !pb.meta.trigger.matches(event) {
            return Some(None);
        }
        let map = Dynamic::from_map(event_map(event, &self.pod_maps));
        let (mut d, _, _) = self.run(pb, event, map, true, false);
        d.mode = Mode::DryRun;
        if d.outcome == Outcome::Decided {
            d.outcome = if d.intents.is_empty() {
                Outcome::NoAction
            } else {
                Outcome::DryRun
            };
        }
        Some(Some(d))
    }

    /// One playbook on one event: its decision, whether the chain ends
    /// here (`stop()`, or an `exclusive` playbook that decided), and the
    /// `print`/`debug` lines when `capture` is set.
    fn run(
        &self,
        pb: &CompiledPlaybook,
        event: &ThreatEvent,
        event_dyn: Dynamic,
        dry_run: bool,
        capture: bool,
    ) -> (Decision, bool, Vec<String>) {
        let started = Instant::now();
        let now_ms = match self.clock {
            Clock::Wall => Utc::now().timestamp_millis(),
            Clock::EventTime => event.timestamp.timestamp_millis(),
        };
        let state = RunState {
            playbook: pb.name.clone(),
            output: Some(pb.output.clone()),
            now_ms,
            deadline: started + Duration::from_millis(self.cfg.limits.timeout_ms.max(1)),
            max_intents: self.cfg.limits.max_intents,
            intents: Vec::new(),
            source: (event.source_ip, event.source_pod.clone()),
            destination: (event.destination_ip, event.destination_pod.clone()),
            timed_out: false,
            stopped: false,
            type_mismatch: false,
            capture: capture.then(Vec::new),
            scratch: dry_run.then(|| {
                Box::new(Counters::new(
                    1_024,
                    prometheus_client::metrics::gauge::Gauge::default(),
                    prometheus_client::metrics::counter::Counter::default(),
                ))
            }),
        };
        let (result, mut state) = sandbox::run(&self.engine, &pb.ast, event_dyn, state);
        let result = match result {
            Err(e) if state.stopped && matches!(*e, EvalAltResult::ErrorTerminated(..)) => Ok(()),
            other => other,
        };
        let ends_chain = result.is_ok() && (state.stopped || pb.meta.exclusive);
        let lines = state.capture.take().unwrap_or_default();
        let elapsed = started.elapsed();
        pb.metrics.seconds.observe(elapsed.as_secs_f64());
        let (intents, outcome) = match result {
            Ok(()) => {
                pb.metrics.ok.inc();
                let intents: Vec<Intent> = state
                    .intents
                    .into_iter()
                    .map(|a| {
                        pb.metrics.intent(&self.metrics, &pb.meta.name, &a);
                        Intent::new(&event.id, &pb.meta.name, a)
                    })
                    .collect();
                if !dry_run {
                    log_intents(pb, event, &intents);
                }
                (intents, Outcome::Decided)
            }
            Err(err) => {
                pb.metrics.error.inc();
                if state.type_mismatch {
                    self.metrics
                        .type_mismatches
                        .get_or_create(&crate::decide::playbook::metrics::PlaybookLabels {
                            playbook: pb.meta.name.clone(),
                        })
                        .inc();
                }
                let message = self.describe_error(pb, &err, state.timed_out);
                self.warn_failure(pb, event, &message);
                (Vec::new(), Outcome::Error { message })
            }
        };
        let decision = Decision {
            event_id: event.id.to_string(),
            event: EventSummary::of(event),
            playbook: pb.meta.name.clone(),
            mode: self.effective_mode(pb),
            intents,
            outcome,
            timings: Timings {
                eval_us: elapsed.as_micros() as u64,
                dispatch_us: 0,
            },
            at: Utc::now(),
            actions: Vec::new(),
        };
        (decision, ends_chain, lines)
    }

    /// `playbook `x` failed at x.rhai:12:5: …`, with the innermost position.
    fn describe_error(
        &self,
        pb: &CompiledPlaybook,
        err: &EvalAltResult,
        timed_out: bool,
    ) -> String {
        let inner = err.unwrap_inner();
        let pos = if inner.position().is_none() {
            err.position()
        } else {
            inner.position()
        };
        let limits = &self.cfg.limits;
        let what = match inner {
            EvalAltResult::ErrorTerminated(..) if timed_out => format!(
                "stopped: ran longer than the {} ms deadline",
                limits.timeout_ms
            ),
            EvalAltResult::ErrorTooManyOperations(..) => format!(
                "stopped: more than {} operations (an endless loop?)",
                limits.max_operations
            ),
            EvalAltResult::ErrorStackOverflow(..) => format!(
                "stopped: more than {} nested calls (runaway recursion?)",
                limits.max_call_levels
            ),
            EvalAltResult::ErrorDataTooLarge(what, ..) => format!(
                "stopped: {what} over the sandbox limit (strings {} bytes, arrays {}, maps {})",
                limits.max_string_size, limits.max_array_size, limits.max_map_size
            ),
            EvalAltResult::ErrorRuntime(msg, ..) => msg.to_string(),
            other => {
                // Rhai appends " (line 3, position 5)": we say it our way.
                let text = other.to_string();
                let suffix = format!(" ({})", other.position());
                match text.strip_suffix(&suffix) {
                    Some(t) if !other.position().is_none() => t.to_owned(),
                    _ => text,
                }
            }
        };
        match (pos.line(), pos.position()) {
            (Some(line), Some(col)) => format!(
                "playbook `{}` failed at {}:{line}:{col}: {what}",
                pb.meta.name, pb.display
            ),
            (Some(line), None) => format!(
                "playbook `{}` failed at {}:{line}: {what}",
                pb.meta.name, pb.display
            ),
            _ => format!(
                "playbook `{}` failed in {}: {what}",
                pb.meta.name, pb.display
            ),
        }
    }

    /// At most one warning per playbook per second; the rest are counted and
    /// reported with the next one.
    fn warn_failure(&self, pb: &CompiledPlaybook, event: &ThreatEvent, message: &str) {
        let now = Utc::now().timestamp_millis();
        let last = pb.last_warn_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < 1_000
            || pb
                .last_warn_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            pb.suppressed_warns.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let suppressed = pb.suppressed_warns.swap(0, Ordering::Relaxed);
        tracing::warn!(
            target: "riposte::playbook",
            playbook = %pb.meta.name,
            event.id = %event.id,
            suppressed,
            "{message}"
        );
    }
}

/// Writes a run's `log(level, message)` lines to the service log, within the
/// playbook's output budget (shared with `print` and `debug`): a playbook
/// logging on every event must not flood the log any more than one printing.
/// The decision record keeps every line whole.
fn log_intents(pb: &CompiledPlaybook, event: &ThreatEvent, intents: &[Intent]) {
    use crate::decide::intent::{Action, LogLevel};
    use tracing::Level;
    if !intents
        .iter()
        .any(|i| matches!(i.action, Action::Log { .. }))
    {
        return;
    }
    let span = tracing::info_span!("decision", event.id = %event.id, playbook = %pb.meta.name);
    let _guard = span.enter();
    for intent in intents {
        let Action::Log { level, message } = &intent.action else {
            continue;
        };
        // Lines nobody would see cost no budget.
        let shown = match level {
            LogLevel::Trace => tracing::enabled!(target: "riposte::playbook", Level::TRACE),
            LogLevel::Debug => tracing::enabled!(target: "riposte::playbook", Level::DEBUG),
            LogLevel::Info => tracing::enabled!(target: "riposte::playbook", Level::INFO),
            LogLevel::Warn => tracing::enabled!(target: "riposte::playbook", Level::WARN),
            LogLevel::Error => tracing::enabled!(target: "riposte::playbook", Level::ERROR),
        };
        if !shown {
            continue;
        }
        let Some(suppressed) = pb.output.admit() else {
            continue;
        };
        let (text, cut) = pb.output.clip(message);
        match level {
            LogLevel::Trace => {
                tracing::trace!(target: "riposte::playbook", suppressed, cut, "{text}")
            }
            LogLevel::Debug => {
                tracing::debug!(target: "riposte::playbook", suppressed, cut, "{text}")
            }
            LogLevel::Info => {
                tracing::info!(target: "riposte::playbook", suppressed, cut, "{text}")
            }
            LogLevel::Warn => {
                tracing::warn!(target: "riposte::playbook", suppressed, cut, "{text}")
            }
            LogLevel::Error => {
                tracing::error!(target: "riposte::playbook", suppressed, cut, "{text}")
            }
        }
    }
}

fn sort(playbooks: &mut [Arc<CompiledPlaybook>]) {
    playbooks.sort_by(|a, b| {
        a.meta
            .order
            .cmp(&b.meta.order)
            .then_with(|| a.meta.name.cmp(&b.meta.name))
    });
}

/// The `*.rhai` files of a directory, sorted by name.
pub fn list_playbooks(dir: &Path) -> Result<Vec<PathBuf>, PlaybookError> {
    let entries = std::fs::read_dir(dir).map_err(|source| PlaybookError::Dir {
        path: dir.to_owned(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| PlaybookError::Dir {
            path: dir.to_owned(),
            source,
        })?;
        let path = entry.path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if !hidden && path.extension().is_some_and(|e| e == "rhai") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// For a schedule event, the playbook it fires.
fn scheduled_playbook(event: &ThreatEvent) -> Option<&str> {
    if event.kind != EventKind::Schedule || event.module != EventModule::Riposte {
        return None;
    }
    Some(
        event
            .payload
            .as_ref()
            .and_then(|p| p.get("playbook"))
            .and_then(|p| p.as_str())
            .unwrap_or(""),
    )
}

/// Helpers for the runtime's and the sandbox's tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use chrono::DateTime;
    use riposte_firewall::{Direction, EventKind, EventModule, PodContext, Severity, ThreatEvent};

    use super::*;

    /// A runtime holding the given playbooks (file name, source).
    pub fn runtime(
        files: &[(&str, &str)],
        cfg: PlaybookConfig,
    ) -> (tempfile::TempDir, PlaybookRuntime) {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, src) in files {
            std::fs::write(dir.path().join(name), src).expect("write playbook");
        }
        let cfg = PlaybookConfig {
            dir: dir.path().to_owned(),
            ..cfg
        };
        let mut registry = Registry::default();
        let rt =
            PlaybookRuntime::load_with_clock(&cfg, &mut registry, Clock::EventTime).expect("load");
        (dir, rt)
    }

    /// One playbook with `trigger: any` and this body.
    pub fn one(body: &str) -> (tempfile::TempDir, PlaybookRuntime) {
        runtime(
            &[(
                "t.rhai",
                &format!("// name: t\n// trigger: any\n// mode: enforce\n{body}"),
            )],
            PlaybookConfig::default(),
        )
    }

    /// The flagship C2 event: pod shop/checkout-7d9f talking to 203.0.113.9.
    pub fn c2_event() -> ThreatEvent {
        let mut ev = ThreatEvent::new(
            EventKind::Alert,
            EventModule::Panos,
            "panos.threat",
            DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            "c2 line",
        );
        ev.threat_type = Some("spyware".into());
        ev.threat_category = Some("command-and-control".into());
        ev.threat_name = Some("Cobalt Strike Beacon".into());
        ev.threat_id = Some(86_467);
        ev.set_severity(Severity::Critical);
        ev.action = Some("reset-both".into());
        ev.source_ip = Some("10.244.1.17".parse().expect("ip"));
        ev.source_port = Some(51_234);
        ev.destination_ip = Some("203.0.113.9".parse().expect("ip"));
        ev.destination_port = Some(443);
        ev.network_direction = Some(Direction::ClientToServer);
        ev.source_pod = Some(Arc::new(PodContext {
            namespace: "shop".into(),
            name: "checkout-7d9f".into(),
            labels: BTreeMap::from([("app".into(), "checkout".into())]),
            ..Default::default()
        }));
        ev
    }

    /// The only decision for `ev`.
    pub fn decide(rt: &PlaybookRuntime, ev: &ThreatEvent) -> Decision {
        let mut ds = rt.evaluate(ev);
        assert_eq!(ds.len(), 1, "{ds:?} (refused: {:?})", rt.reload().errors);
        ds.remove(0)
    }

    /// The error message of the only decision.
    pub fn error_of(rt: &PlaybookRuntime, ev: &ThreatEvent) -> String {
        match decide(rt, ev).outcome {
            Outcome::Error { message } => message,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    /// The intents of the only decision, as JSON without ids.
    pub fn intents_of(rt: &PlaybookRuntime, ev: &ThreatEvent) -> Vec<serde_json::Value> {
        let d = decide(rt, ev);
        assert_eq!(d.outcome, Outcome::Decided, "{d:?}");
        d.intents
            .iter()
            .map(|i| serde_json::to_value(&i.action).expect("json"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::testing::*;
    use super::*;

    const TAG: &str = "tag_ip(event.destination.ip, \"x\");\n";

    #[test]
    fn print_and_log_lines_share_a_budget_per_playbook_and_the_rest_is_counted() {
        let cfg = PlaybookConfig {
            output_lines_per_second: 10,
            ..PlaybookConfig::default()
        };
        let (_d, rt) = runtime(
            &[(
                "t.rhai",
                "// name: t\n// trigger: any\nfor i in 0..30 { print(`p${i}`); }\nfor i in 0..30 { log(\"warn\", `l${i}`); }\n",
            )],
            cfg,
        );
        let dropped = || {
            rt.metrics
                .output_dropped
                .get_or_create(&crate::decide::playbook::metrics::PlaybookLabels {
                    playbook: "t".into(),
                })
                .get()
        };
        let shown = tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .with_max_level(tracing::Level::TRACE)
            .finish();
        let d = tracing::subscriber::with_default(shown, || decide(&rt, &c2_event()));
        assert_eq!(d.intents.len(), 30, "the record keeps every log line");
        assert_eq!(dropped(), 50, "60 lines, a burst of 10 written");
        let hidden = tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .with_max_level(tracing::Level::ERROR)
            .finish();
        tracing::subscriber::with_default(hidden, || decide(&rt, &c2_event()));
        assert_eq!(dropped(), 50, "lines the log level hides cost nothing");
    }

    #[test]
    fn events_that_match_no_trigger_cost_no_run() {
        let (_d, rt) = runtime(
            &[("a.rhai", &format!("// trigger: threat.type = virus\n{TAG}"))],
            PlaybookConfig::default(),
        );
        assert!(rt.evaluate(&c2_event()).is_empty());
    }

    #[test]
    fn playbooks_run_in_order_and_disabled_ones_do_not() {
        let (_d, rt) = runtime(
            &[
                ("a.rhai", &format!("// order: 20\n// trigger: any\n{TAG}")),
                ("b.rhai", &format!("// order: 10\n// trigger: any\n{TAG}")),
                (
                    "c.rhai",
                    &format!("// order: 5\n// enabled: false\n// trigger: any\n{TAG}"),
                ),
            ],
            PlaybookConfig::default(),
        );
        let names: Vec<String> = rt
            .evaluate(&c2_event())
            .into_iter()
            .map(|d| d.playbook)
            .collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(rt.playbooks().len(), 3);
    }

    #[test]
    fn stop_ends_the_run_and_the_chain_keeping_its_intents() {
        let (_d, rt) = runtime(
            &[
                (
                    "a.rhai",
                    "// order: 1\n// trigger: any\ntag_ip(event.destination.ip, \"a\");\nstop();\ntag_ip(event.destination.ip, \"never\");\n",
                ),
                ("b.rhai", &format!("// order: 2\n// trigger: any\n{TAG}")),
            ],
            PlaybookConfig::default(),
        );
        let ds = rt.evaluate(&c2_event());
        assert_eq!(ds.len(), 1, "{ds:?}");
        assert_eq!(ds[0].outcome, Outcome::Decided);
        assert_eq!(ds[0].intents.len(), 1);
    }

    #[test]
    fn an_exclusive_playbook_ends_the_chain_unless_it_failed() {
        let files = |body: &str| {
            runtime(
                &[
                    (
                        "a.rhai",
                        &format!("// order: 1\n// exclusive: true\n// trigger: any\n{body}"),
                    ),
                    ("b.rhai", &format!("// order: 2\n// trigger: any\n{TAG}")),
                ],
                PlaybookConfig::default(),
            )
        };
        let (_d, rt) = files("tag_ip(event.destination.ip, \"a\");\n");
        let names: Vec<String> = rt
            .evaluate(&c2_event())
            .into_iter()
            .map(|d| d.playbook)
            .collect();
        assert_eq!(names, ["a"]);
        // A failed run decided nothing: the next playbook still runs.
        let (_d, rt) = files("throw \"boom\";\n");
        let names: Vec<String> = rt
            .evaluate(&c2_event())
            .into_iter()
            .map(|d| d.playbook)
            .collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn identical_intents_of_several_playbooks_are_merged() {
        let notify = "notify(\"soar\", #{ title: \"C2\" });\n";
        let (_d, rt) = runtime(
            &[
                ("a.rhai", &format!("// order: 1\n// trigger: any\n{notify}quarantine(event.source.pod, #{{ ttl: \"1h\", reason: \"a\" }});\n")),
                ("b.rhai", &format!("// order: 2\n// trigger: any\n{notify}quarantine(event.source.pod, #{{ ttl: \"1h\", reason: \"b\" }});\nnotify(\"soar\", #{{ title: \"other\" }});\n")),
            ],
            PlaybookConfig::default(),
        );
        let ds = rt.evaluate(&c2_event());
        assert_eq!(ds[0].intents.len(), 2);
        // The same notify and the same quarantine (another reason) go once.
        assert_eq!(ds[1].intents.len(), 1, "{:?}", ds[1].intents);
        let merged = rt
            .metrics
            .merged
            .get_or_create(&crate::decide::playbook::metrics::PlaybookLabels {
                playbook: "b".into(),
            })
            .get();
        assert_eq!(merged, 2);
    }

    #[test]
    fn global_dry_run_overrides_every_playbook() {
        let src = format!("// trigger: any\n// mode: enforce\n{TAG}");
        let (_d, rt) = runtime(&[("a.rhai", &src)], PlaybookConfig::default());
        assert_eq!(decide(&rt, &c2_event()).mode, Mode::Enforce);
        let (_d, rt) = runtime(
            &[("a.rhai", &src)],
            PlaybookConfig {
                dry_run: true,
                ..PlaybookConfig::default()
            },
        );
        assert_eq!(decide(&rt, &c2_event()).mode, Mode::DryRun);
        assert_eq!(rt.playbooks()[0].mode, Mode::DryRun);
        assert_eq!(rt.playbooks()[0].declared_mode, Mode::Enforce);
    }

    #[test]
    fn a_failing_playbook_does_not_stop_the_others() {
        let (_d, rt) = runtime(
            &[
                (
                    "bad.rhai",
                    "// order: 1\n// trigger: any\nlet x = 1;\nthrow `nope ${x}`;\n",
                ),
                ("good.rhai", &format!("// order: 2\n// trigger: any\n{TAG}")),
            ],
            PlaybookConfig::default(),
        );
        let ds = rt.evaluate(&c2_event());
        assert_eq!(ds.len(), 2);
        match &ds[0].outcome {
            Outcome::Error { message } => {
                assert!(
                    message.starts_with("playbook `bad` failed at bad.rhai:4:1:"),
                    "{message}"
                );
                assert!(message.contains("nope"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(ds[1].intents.len(), 1);
        assert_eq!(ds[1].outcome, Outcome::Decided);
    }

    #[test]
    fn intents_carry_stable_action_ids() {
        let (_d, rt) = one(TAG);
        let a = decide(&rt, &c2_event());
        let b = decide(&rt, &c2_event());
        assert_eq!(a.intents[0].action_id, b.intents[0].action_id);
        assert_eq!(a.event_id, c2_event().id.as_str());
        assert_eq!(a.event.threat_type.as_deref(), Some("spyware"));
    }

    #[test]
    fn reload_swaps_changed_keeps_previous_on_error_and_drops_removed() {
        let (dir, rt) = runtime(
            &[
                ("a.rhai", &format!("// trigger: any\n{TAG}")),
                ("b.rhai", &format!("// trigger: any\n{TAG}")),
            ],
            PlaybookConfig::default(),
        );
        let before = rt.current();
        // A broken edit: refused with its place, the old `a` keeps running.
        std::fs::write(dir.path().join("a.rhai"), "// trigger: any\nlet x = ;\n").expect("write");
        std::fs::remove_file(dir.path().join("b.rhai")).expect("remove");
        std::fs::write(dir.path().join("c.rhai"), format!("// trigger: any\n{TAG}"))
            .expect("write");
        let report = rt.reload();
        assert_eq!(report.errors.len(), 1, "{report:?}");
        assert!(
            report.errors[0].contains("a.rhai:2:"),
            "{}",
            report.errors[0]
        );
        assert_eq!(report.removed, ["b"]);
        assert_eq!(report.loaded, ["c"]);
        let names: Vec<String> = rt.playbooks().into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(rt.evaluate(&c2_event()).len(), 2);
        // The set an in-flight evaluation holds is untouched.
        assert_eq!(before.playbooks.len(), 2);
        // A fixed edit is picked up.
        std::fs::write(
            dir.path().join("a.rhai"),
            "// trigger: threat.type = virus\nlet x = 1;\n",
        )
        .expect("write");
        let report = rt.reload();
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(report.loaded, ["a"]);
        assert_eq!(report.unchanged, ["c"]);
        assert_eq!(rt.evaluate(&c2_event()).len(), 1);
    }

    #[test]
    fn broken_playbooks_are_skipped_at_start_and_duplicates_refused() {
        let (_d, rt) = runtime(
            &[
                ("a.rhai", "// trigger: any\nlet = 1;\n"),
                ("b.rhai", &format!("// name: same\n// trigger: any\n{TAG}")),
                ("c.rhai", &format!("// name: same\n// trigger: any\n{TAG}")),
            ],
            PlaybookConfig::default(),
        );
        let names: Vec<String> = rt.playbooks().into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["same"]);
        let report = rt.reload();
        assert_eq!(report.errors.len(), 2, "{report:?}");
        assert!(
            report.errors.iter().any(|e| e.contains("already defined")),
            "{report:?}"
        );
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let cfg = PlaybookConfig {
            dir: "/nonexistent/riposte/playbooks".into(),
            ..PlaybookConfig::default()
        };
        let mut registry = Registry::default();
        assert!(PlaybookRuntime::load(&cfg, &mut registry).is_err());
    }

    #[test]
    fn schedule_events_reach_only_their_playbook() {
        let (_d, rt) = runtime(
            &[
                ("sweep.rhai", "// schedule: @hourly\nlog(\"info\", `sweep at ${event.payload.scheduled_for}`);\n"),
                ("other.rhai", &format!("// trigger: any\n{TAG}")),
            ],
            PlaybookConfig::default(),
        );
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let ev = crate::decide::playbook::schedule::schedule_event("sweep", "@hourly", at);
        let ds = rt.evaluate(&ev);
        assert_eq!(ds.len(), 1, "{ds:?}");
        assert_eq!(ds[0].playbook, "sweep");
        assert_eq!(ds[0].intents.len(), 1);
        // And a firewall event does not wake the schedule-only playbook.
        let names: Vec<String> = rt
            .evaluate(&c2_event())
            .into_iter()
            .map(|d| d.playbook)
            .collect();
        assert_eq!(names, ["other"]);
    }

    /// A dry run reads the live counters but leaves them as they were.
    #[test]
    fn dry_runs_leave_the_live_counters_alone() {
        let (_d, rt) = one("let n = count(\"k\", \"1h\");\n\
             if seen_before(\"s\", \"1h\") { log(\"info\", \"seen\"); }\n\
             if once_per(event.destination.ip, \"1h\") { tag_ip(event.destination.ip, \"x\"); }\n\
             if once_per(event.destination.ip, \"1h\") { throw \"fired twice in one run\"; }\n\
             notify(\"soar\", #{ n: n });");
        let fired = |d: &Decision| d.intents.iter().any(|i| i.action.name() == "tag_ip");
        let n = |d: &Decision| {
            d.intents
                .iter()
                .find_map(|i| match &i.action {
                    crate::decide::intent::Action::Notify { fields, .. } => fields["n"].as_i64(),
                    _ => None,
                })
                .unwrap_or(-1)
        };
        let logged = |d: &Decision| d.intents.iter().any(|i| i.action.name() == "log");
        for _ in 0..3 {
            let d = rt.dry_run("t", &c2_event()).flatten().expect("matched");
            assert_eq!(d.outcome, Outcome::DryRun, "{d:?}");
            assert!(fired(&d), "a dry run fires what the live run would");
            assert_eq!(n(&d), 1);
            assert!(!logged(&d));
        }
        // The live playbook was not suppressed, counted or seen by them.
        let live = rt.evaluate(&c2_event()).remove(0);
        assert!(fired(&live), "{live:?}");
        assert_eq!(n(&live), 1);
        assert!(!logged(&live));
        // Now the live state is there, and dry runs see it (and still do
        // not change it).
        let d = rt.dry_run("t", &c2_event()).flatten().expect("matched");
        assert!(!fired(&d));
        assert_eq!(n(&d), 2);
        assert!(logged(&d));
        let live = rt.evaluate(&c2_event()).remove(0);
        assert!(!fired(&live));
        assert_eq!(n(&live), 2);
    }

    #[test]
    fn evaluation_is_thread_safe() {
        let (_d, rt) = one(
            "if once_per(event.destination.ip, \"1h\") { tag_ip(event.destination.ip, \"x\"); }",
        );
        let rt = Arc::new(rt);
        let fired: usize = (0..4)
            .map(|_| {
                let rt = rt.clone();
                std::thread::spawn(move || {
                    (0..200)
                        .map(|_| rt.evaluate(&c2_event())[0].intents.len())
                        .sum::<usize>()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .sum();
        assert_eq!(fired, 1);
    }
}
