//! `riposte playbook test|check|list`: playbooks before they touch a cluster.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use riposte_firewall::{Format, ParseOptions};

use crate::decide::playbook::fixtures::{self, CaseStatus};
use crate::decide::playbook::{Clock, PlaybookConfig, PlaybookRuntime};

#[derive(Debug, Args)]
pub struct PlaybookArgs {
    #[command(subcommand)]
    pub command: PlaybookCommand,
}

#[derive(Debug, Subcommand)]
pub enum PlaybookCommand {
    /// Run each playbook against its fixtures (DIR/fixtures/<name>/) and
    /// compare with the golden intents.
    Test(TestArgs),
    /// Compile and check every playbook: refuse what is certainly wrong
    /// (exit 1), warn on what is probably wrong.
    Check(DirArgs),
    /// List the playbooks as `GET /v1/playbooks` would.
    List(DirArgs),
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The playbook directory.
    #[arg(default_value = "playbooks")]
    pub dir: PathBuf,
    /// Write the golden files from the current output instead of comparing.
    #[arg(long)]
    pub bless: bool,
    /// Payload format of raw log lines in fixtures.
    #[arg(long, default_value = "auto")]
    pub format: Format,
    /// The firewall's time zone, for PAN-OS CSV times in fixtures.
    #[arg(long, default_value = "UTC")]
    pub timezone: chrono_tz::Tz,
}

#[derive(Debug, Args)]
pub struct DirArgs {
    /// The playbook directory.
    #[arg(default_value = "playbooks")]
    pub dir: PathBuf,
}

pub fn run(args: PlaybookArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        PlaybookCommand::Test(a) => test(a),
        PlaybookCommand::Check(a) => check(a),
        PlaybookCommand::List(a) => list(a),
    }
}

fn config(dir: PathBuf) -> PlaybookConfig {
    PlaybookConfig {
        dir,
        watch: false,
        ..PlaybookConfig::default()
    }
}

fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    let cfg = config(args.dir.clone());
    let opts = ParseOptions {
        format: args.format,
        timezone: args.timezone,
        ..ParseOptions::default()
    };
    let report = match fixtures::run_dir(&args.dir, &cfg, &opts, args.bless) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("riposte playbook test: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    for e in &report.errors {
        println!("ERROR {e}");
    }
    let (mut passed, mut blessed) = (0, 0);
    for case in &report.cases {
        let file = case.file.display();
        for line in &case.output {
            println!("      {file}: {line}");
        }
        match &case.status {
            CaseStatus::Pass { lines } => {
                passed += 1;
                println!("ok    {} {file} ({lines} line(s))", case.playbook);
            }
            CaseStatus::Blessed { lines } => {
                blessed += 1;
                println!("bless {} {file} ({lines} line(s) written)", case.playbook);
            }
            CaseStatus::Fail { diff } => {
                println!(
                    "FAIL  {} {file}: output differs from {} (- expected, + actual)",
                    case.playbook,
                    fixtures::expected_path(&case.file).display()
                );
                for line in diff.lines() {
                    println!("      {line}");
                }
            }
            CaseStatus::Broken { message } => {
                println!("FAIL  {} {file}: {message}", case.playbook);
            }
        }
    }
    for name in &report.untested {
        println!(
            "note  {name}: no fixtures in {}",
            args.dir.join("fixtures").join(name).display()
        );
    }
    let failed = report.failed();
    println!("{passed} passed, {failed} failed");
    if blessed > 0 {
        println!("{blessed} golden file(s) written: review them before committing");
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn check(args: DirArgs) -> anyhow::Result<ExitCode> {
    let cfg = config(args.dir.clone());
    let mut registry = prometheus_client::registry::Registry::default();
    let (rt, report) = match PlaybookRuntime::load_reporting(&cfg, &mut registry, Clock::Wall) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("riposte playbook check: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    for e in &report.errors {
        for line in e.lines() {
            println!("ERROR {line}");
        }
    }
    for w in &report.warnings {
        println!("WARN  {w}");
    }
    println!(
        "{} playbook(s) compiled, {} refused, {} warning(s)",
        rt.playbooks().len(),
        report.errors.len(),
        report.warnings.len()
    );
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn list(args: DirArgs) -> anyhow::Result<ExitCode> {
    let cfg = config(args.dir.clone());
    let mut registry = prometheus_client::registry::Registry::default();
    let (rt, report) = match PlaybookRuntime::load_reporting(&cfg, &mut registry, Clock::Wall) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("riposte playbook list: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    for e in &report.errors {
        eprintln!("ERROR {e}");
    }
    for info in rt.playbooks() {
        println!("{}", serde_json::to_string(&info)?);
    }
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
