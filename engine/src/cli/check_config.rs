//! `riposte check-config`: validate a config file (and its playbooks)
//! without starting anything.
//!
//! It runs the very checks `serve` runs before binding its sockets
//! ([`crate::config::preflight`]): whatever `serve` would refuse, this refuses
//! with the same message. It is stricter in one way: a playbook `serve`
//! would skip (and log) fails the check.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::config::Config;
use crate::intake::queues::Role;

#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// The TOML config file.
    pub file: PathBuf,
    /// Check as `serve --role` would start: `all` (default), `ingest` or
    /// `worker`.
    #[arg(long, env = "RIPOSTE_ROLE", default_value = "all")]
    pub role: Role,
}

pub fn run(args: CheckConfigArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match runtime.block_on(check(&args.file, args.role)) {
        Ok(report) => {
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Err(report) => {
            eprintln!("{report}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Checks `file` as `serve --role role` would start on it: the line to
/// print when it would start, else the reasons it would not.
pub async fn check(file: &Path, role: Role) -> Result<String, String> {
    let mut config = Config::load(file).map_err(|e| e.to_string())?;
    crate::config::preflight::apply_role(&mut config, role);
    let mut registry = prometheus_client::registry::Registry::default();
    let prepared = crate::config::preflight::preflight(&config, role, &mut registry)
        .await
        .map_err(|e| format!("{}: {e}", file.display()))?;
    if !prepared.refused_playbooks.is_empty() {
        let mut lines = prepared.refused_playbooks.clone();
        lines.push(format!(
            "{}: {} playbook(s) refused",
            file.display(),
            prepared.refused_playbooks.len()
        ));
        return Err(lines.join("\n"));
    }
    Ok(match &prepared.playbooks {
        Some(rt) => format!(
            "{}: ok ({} playbook(s) in {})",
            file.display(),
            rt.playbooks().len(),
            config.playbooks.dir.display()
        ),
        None => format!(
            "{}: ok (role {role}: no playbook directory, no playbook runs)",
            file.display()
        ),
    })
}
