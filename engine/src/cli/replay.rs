//! `riposte replay`: recorded logs through the playbooks, intents out,
//! nothing applied.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use riposte_firewall::{Format, ParseOptions, ThreatEvent};

use serde::Serialize;

use crate::decide::decision::{Decision, Mode, Outcome};
use crate::decide::intent::Intent;
use crate::decide::playbook::input::{self, Input};
use crate::decide::playbook::{Clock, PlaybookConfig, PlaybookRuntime};
use crate::intake::enrich::{enrich, StaticInventory};
use crate::intake::records;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Directory of playbooks (`*.rhai`).
    #[arg(long, default_value = "playbooks")]
    pub playbooks: PathBuf,
    /// Print a readable table instead of JSON lines.
    #[arg(long)]
    pub table: bool,
    /// Payload format of raw log lines: auto, panos, cef, leef or eve.
    /// Normalized JSON events (`riposte parse` output) are always accepted.
    #[arg(long, default_value = "auto")]
    pub format: Format,
    /// The firewall's time zone, for PAN-OS CSV times (which carry none).
    #[arg(long, default_value = "UTC")]
    pub timezone: chrono_tz::Tz,
    /// A pod inventory (the file `[pods] inventory_file` reads): events get
    /// the pod behind each address, as in production.
    #[arg(long, value_name = "FILE")]
    pub pods: Option<PathBuf>,
    /// Log files, directories of them (walked), or NDJSON of normalized
    /// events; `-` or nothing reads standard input.
    pub files: Vec<PathBuf>,
}

/// Unreadable lines shown per file; the rest are counted.
const SHOWN_PER_FILE: usize = 20;

#[derive(Debug, Default)]
struct Counts {
    matched: u64,
    intents: u64,
    errors: u64,
}

/// What a replay saw, for the summary on standard error.
#[derive(Debug, Default)]
struct Tally {
    per_playbook: BTreeMap<String, Counts>,
    events: u64,
    ignored: u64,
    invalid: u64,
    /// A file could not be read.
    unreadable: bool,
    /// Files in which no line was a record of a known format.
    unrecognized: Vec<String>,
}

pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let Some(rt) = load(args.playbooks.clone()) else {
        return Ok(ExitCode::from(2));
    };
    let pods = match &args.pods {
        Some(path) => match StaticInventory::load(path) {
            Ok(inv) => Some(inv),
            Err(e) => {
                eprintln!("riposte replay: --pods: {e}");
                return Ok(ExitCode::from(2));
            }
        },
        None => None,
    };
    let opts = ParseOptions {
        format: args.format,
        timezone: args.timezone,
        ..ParseOptions::default()
    };
    let files = match input::expand(records::inputs(args.files)) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("riposte replay: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let progress = progress_bar(&files);

    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut tally = Tally::default();
    let ctx = Replay {
        rt: &rt,
        pods: pods.as_ref(),
        opts: &opts,
        table: args.table,
        progress: &progress,
    };
    let replayed = ctx.replay(&files, &mut out, &mut tally);
    progress.finish_and_clear();
    match replayed.and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(e.into()),
        Ok(()) => {}
    }
    drop(out);

    if !tally.unrecognized.is_empty() {
        let n = tally.unrecognized.len();
        let mut names: Vec<&str> = tally
            .unrecognized
            .iter()
            .take(5)
            .map(String::as_str)
            .collect();
        if n > 5 {
            names.push("…");
        }
        eprintln!(
            "skipped {n} file(s) in no format riposte reads: {}",
            names.join(", ")
        );
    }
    let errors = summary(
        &rt,
        tally.events,
        tally.ignored,
        tally.invalid,
        tally.per_playbook,
    );
    Ok(if tally.unreadable || errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A bar over the input's bytes on a terminal; hidden otherwise (and for
/// standard input, whose size is unknown).
fn progress_bar(files: &[PathBuf]) -> ProgressBar {
    use std::io::IsTerminal;
    if !io::stderr().is_terminal() || files.iter().any(|f| f.as_os_str() == "-") {
        return ProgressBar::hidden();
    }
    let total: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// The playbooks, or `None` (the reasons printed) when any is refused:
/// a replay answers for the whole directory.
fn load(dir: PathBuf) -> Option<PlaybookRuntime> {
    let cfg = PlaybookConfig {
        dir,
        watch: false,
        ..PlaybookConfig::default()
    };
    let mut registry = prometheus_client::registry::Registry::default();
    let (rt, report) = match PlaybookRuntime::load_reporting(&cfg, &mut registry, Clock::EventTime)
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("riposte replay: {e}");
            return None;
        }
    };
    if !report.errors.is_empty() {
        for e in &report.errors {
            eprintln!("riposte replay: playbook refused: {e}");
        }
        return None;
    }
    Some(rt)
}

/// What a replay reads with.
struct Replay<'a> {
    rt: &'a PlaybookRuntime,
    pods: Option<&'a StaticInventory>,
    opts: &'a ParseOptions,
    table: bool,
    progress: &'a ProgressBar,
}

/// One file's unreadable lines, held back until the file shows a record
/// of a known format: a file with none is skipped with one summary line.
#[derive(Default)]
struct FileState {
    recognized: bool,
    held: Vec<String>,
    shown: usize,
    hidden: u64,
}

impl FileState {
    fn invalid(&mut self, progress: &ProgressBar, line: String) {
        if !self.recognized {
            if self.held.len() < SHOWN_PER_FILE {
                self.held.push(line);
            } else {
                self.hidden += 1;
            }
            return;
        }
        if self.shown < SHOWN_PER_FILE {
            self.shown += 1;
            progress.suspend(|| eprintln!("{line}"));
        } else {
            self.hidden += 1;
        }
    }

    fn recognize(&mut self, progress: &ProgressBar) {
        if self.recognized {
            return;
        }
        self.recognized = true;
        for line in std::mem::take(&mut self.held) {
            self.shown += 1;
            progress.suspend(|| eprintln!("{line}"));
        }
    }
}

impl Replay<'_> {
    /// Runs every event of `files` through the playbooks, writing each
    /// intent to `out`. Only an error writing `out` stops it: unreadable
    /// input is reported and counted.
    fn replay(&self, files: &[PathBuf], out: &mut impl Write, tally: &mut Tally) -> io::Result<()> {
        if self.table {
            writeln!(
                out,
                "{:<28} {:<22} {:<8} {:<13} DETAIL",
                "WHERE", "PLAYBOOK", "MODE", "ACTION"
            )?;
        }
        let mut io_error: Option<io::Error> = None;
        for file in files {
            let name = file.display().to_string();
            let mut state = FileState::default();
            let invalid_before = tally.invalid;
            let result = input::for_each_input_sized(file, self.opts, |line_no, size, input| {
                self.progress.inc(size as u64);
                if io_error.is_some() {
                    return;
                }
                let mut ev = match input {
                    Input::Event(ev) => ev,
                    Input::Ignored => {
                        state.recognize(self.progress);
                        tally.ignored += 1;
                        return;
                    }
                    Input::Invalid(msg) => {
                        tally.invalid += 1;
                        state.invalid(self.progress, format!("{name}:{line_no}: {msg}"));
                        return;
                    }
                };
                state.recognize(self.progress);
                tally.events += 1;
                if let Some(pods) = self.pods {
                    enrich(&mut ev, pods);
                }
                let place = format!("{name}:{line_no}");
                if let Err(e) = self.one_event(&place, &ev, out, tally) {
                    io_error = Some(e);
                }
            });
            if let Err(e) = result {
                self.progress.suspend(|| eprintln!("{name}: {e}"));
                tally.unreadable = true;
            } else if !state.recognized && tally.invalid > invalid_before {
                // Not a log: its lines are not counted as unreadable records.
                tally.invalid = invalid_before;
                tally.unrecognized.push(name);
            } else if state.hidden > 0 {
                let hidden = state.hidden;
                self.progress
                    .suspend(|| eprintln!("{name}: {hidden} more unreadable line(s) not shown"));
            }
        }
        io_error.map_or(Ok(()), Err)
    }

    fn one_event(
        &self,
        place: &str,
        ev: &ThreatEvent,
        out: &mut impl Write,
        tally: &mut Tally,
    ) -> io::Result<()> {
        let (decisions, lines) = self.rt.evaluate_capturing(ev);
        if !lines.is_empty() {
            self.progress.suspend(|| {
                for l in &lines {
                    eprintln!("{place} [{}] event {}: {}", l.playbook, l.event_id, l.text);
                }
            });
        }
        for d in decisions {
            let counts = tally.per_playbook.entry(d.playbook.clone()).or_default();
            counts.matched += 1;
            counts.intents += d.intents.len() as u64;
            if let Outcome::Error { message } = &d.outcome {
                counts.errors += 1;
                self.progress.suspend(|| eprintln!("{place}: {message}"));
            }
            if self.table {
                write_table(out, place, &d)?;
            } else {
                write_json(out, place, &d)?;
            }
        }
        Ok(())
    }
}

/// The counts per playbook on standard error; how many runs failed.
fn summary(
    rt: &PlaybookRuntime,
    events: u64,
    ignored: u64,
    invalid: u64,
    mut per_playbook: BTreeMap<String, Counts>,
) -> u64 {
    eprintln!("{events} event(s) replayed, {ignored} record(s) ignored, {invalid} unreadable");
    eprintln!(
        "{:<24} {:>8} {:>8} {:>8}",
        "playbook", "matched", "intents", "errors"
    );
    let mut errors = 0;
    for info in rt.playbooks() {
        let c = per_playbook.remove(&info.name).unwrap_or_default();
        errors += c.errors;
        eprintln!(
            "{:<24} {:>8} {:>8} {:>8}",
            info.name, c.matched, c.intents, c.errors
        );
    }
    errors
}

/// Where an intent came from, then the intent's own fields.
#[derive(Serialize)]
struct ReplayLine<'a> {
    at: &'a str,
    event_id: &'a str,
    playbook: &'a str,
    mode: Mode,
    #[serde(flatten)]
    intent: &'a Intent,
}

/// One JSON line per intent.
fn write_json(out: &mut impl Write, place: &str, d: &Decision) -> io::Result<()> {
    for intent in &d.intents {
        let line = ReplayLine {
            at: place,
            event_id: &d.event_id,
            playbook: &d.playbook,
            mode: d.mode,
            intent,
        };
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

fn write_table(out: &mut impl Write, place: &str, d: &Decision) -> io::Result<()> {
    for intent in &d.intents {
        writeln!(
            out,
            "{:<28} {:<22} {:<8} {:<13} {}",
            place,
            d.playbook,
            d.mode.as_str(),
            intent.action.name(),
            intent.action.summary()
        )?;
    }
    Ok(())
}
