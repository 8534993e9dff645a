//! `riposte check-config`: validate a config file (and its playbooks)
//! without starting anything.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config::Config;

#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// The TOML config file.
    pub file: PathBuf,
}

pub fn run(args: CheckConfigArgs) -> anyhow::Result<ExitCode> {
    let config = match Config::load(&args.file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    let mut registry = prometheus_client::registry::Registry::default();
    if config.playbooks.dir.is_dir() {
        match crate::playbook::PlaybookRuntime::load_reporting(
            &config.playbooks,
            &mut registry,
            crate::playbook::Clock::Wall,
        ) {
            Ok((rt, report)) if report.errors.is_empty() => println!(
                "{}: ok ({} playbook(s) in {})",
                args.file.display(),
                rt.playbooks().len(),
                config.playbooks.dir.display()
            ),
            Ok((_, report)) => {
                for error in &report.errors {
                    eprintln!("{error}");
                }
                eprintln!(
                    "{}: {} playbook(s) refused",
                    args.file.display(),
                    report.errors.len()
                );
                return Ok(ExitCode::from(1));
            }
            Err(e) => {
                eprintln!("{}: playbooks: {e}", args.file.display());
                return Ok(ExitCode::from(1));
            }
        }
    } else {
        println!(
            "{}: ok (playbook directory {} does not exist: no playbook would run)",
            args.file.display(),
            config.playbooks.dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
