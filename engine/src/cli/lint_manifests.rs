//! `riposte lint-manifests`: fail CI when a workload the policy selects
//! (by default, label `compliance: pci`) would not run behind the firewall
//! or is exempt from Riposte.
//!
//! Exit codes: 0 clean, 1 a rule at level `error` is broken, 2 an input or
//! the policy could not be read (with file and line).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use crate::lint::{self, output, policy::Policy};

#[derive(Debug, Args)]
pub struct LintManifestsArgs {
    /// The policy (TOML, `[[rules]]`); default: workloads labelled
    /// `compliance: pci` need `paloaltonetworks.com/firewall: pan-fw` on
    /// their pod template and must not carry `riposte.io/exempt`.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Report format: `human`, `json` or `sarif` (SARIF 2.1.0).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// The namespace of objects that name none (as `kubectl apply -n`).
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// YAML files and directories (searched for *.yaml, *.yml, *.json);
    /// `-` reads standard input, e.g. `helm template … | riposte lint-manifests -`.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
    Sarif,
}

pub fn run(args: LintManifestsArgs) -> anyhow::Result<ExitCode> {
    let policy = match &args.policy {
        Some(path) => match Policy::load(path) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{e}");
                return Ok(ExitCode::from(2));
            }
        },
        None => Policy::default(),
    };
    let (inputs, read_errors) = lint::read_inputs(&args.paths, std::io::stdin().lock());
    let mut report = lint::lint(&policy, &inputs, &args.namespace);
    report.errors.splice(0..0, read_errors);
    let text = match args.format {
        Format::Human => output::human(&report),
        Format::Json => format!("{:#}\n", output::json(&report)),
        Format::Sarif => format!("{:#}\n", output::sarif(&report, &policy)),
    };
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not worth a panic.
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
    Ok(ExitCode::from(report.exit_code()))
}
