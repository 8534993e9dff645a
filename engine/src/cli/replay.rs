//! `riposte replay`: recorded logs through the playbooks, intents out,
//! nothing applied.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use riposte_firewall::{Format, ParseOptions};

use serde::Serialize;

use crate::decide::decision::{Decision, Mode, Outcome};
use crate::decide::intent::Intent;
use crate::decide::playbook::input::{for_each_input, Input};
use crate::decide::playbook::{Clock, PlaybookConfig, PlaybookRuntime};
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
    /// Log files or NDJSON of normalized events; `-` or nothing reads
    /// standard input.
    pub files: Vec<PathBuf>,
}

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
}

pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let Some(rt) = load(args.playbooks.clone()) else {
        return Ok(ExitCode::from(2));
    };
    let opts = ParseOptions {
        format: args.format,
        timezone: args.timezone,
        ..ParseOptions::default()
    };
    let files = records::inputs(args.files);

    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut tally = Tally::default();
    let replayed = replay(&rt, &files, &opts, args.table, &mut out, &mut tally);
    match replayed.and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(e.into()),
        Ok(()) => {}
    }
    drop(out);

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

/// Runs every event of `files` through the playbooks, writing each intent
/// to `out`. Only an error writing `out` stops it: unreadable input is
/// reported and counted.
fn replay(
    rt: &PlaybookRuntime,
    files: &[PathBuf],
    opts: &ParseOptions,
    table: bool,
    out: &mut impl Write,
    tally: &mut Tally,
) -> io::Result<()> {
    if table {
        writeln!(
            out,
            "{:<28} {:<22} {:<8} {:<13} DETAIL",
            "WHERE", "PLAYBOOK", "MODE", "ACTION"
        )?;
    }
    let mut io_error: Option<io::Error> = None;
    for file in files {
        let name = file.display().to_string();
        let result = for_each_input(file, opts, |line_no, input| {
            if io_error.is_some() {
                return;
            }
            let ev = match input {
                Input::Event(ev) => ev,
                Input::Ignored => {
                    tally.ignored += 1;
                    return;
                }
                Input::Invalid(msg) => {
                    tally.invalid += 1;
                    eprintln!("{name}:{line_no}: {msg}");
                    return;
                }
            };
            tally.events += 1;
            let place = format!("{name}:{line_no}");
            for d in rt.evaluate(&ev) {
                let counts = tally.per_playbook.entry(d.playbook.clone()).or_default();
                counts.matched += 1;
                counts.intents += d.intents.len() as u64;
                if let Outcome::Error { message } = &d.outcome {
                    counts.errors += 1;
                    eprintln!("{place}: {message}");
                }
                let written = if table {
                    write_table(out, &place, &d)
                } else {
                    write_json(out, &place, &d)
                };
                if let Err(e) = written {
                    io_error = Some(e);
                    return;
                }
            }
        });
        if let Err(e) = result {
            eprintln!("{name}: {e}");
            tally.unreadable = true;
        }
    }
    io_error.map_or(Ok(()), Err)
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
