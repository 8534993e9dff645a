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
use crate::error::EngineError;
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

/// Why `serve` would not start on a config file.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Unreadable, or not a valid config (the error names the file).
    #[error(transparent)]
    Load(EngineError),
    /// A check `serve` makes before binding refused it.
    #[error("{}: {source}", file.display())]
    Refused { file: PathBuf, source: EngineError },
    /// Playbooks `serve` would skip: one line each, then how many.
    #[error("{}\n{}: {} playbook(s) refused", refused.join("\n"), file.display(), refused.len())]
    Playbooks { file: PathBuf, refused: Vec<String> },
}

/// Checks `file` as `serve --role role` would start on it: the line to
/// print when it would start, else the reasons it would not.
// The reasons stay text here: they are what the command prints, and the
// end-to-end tests compare them with the error `serve` stops with.
pub async fn check(file: &Path, role: Role) -> Result<String, String> {
    verdict(file, role).await.map_err(|e| e.to_string())
}

async fn verdict(file: &Path, role: Role) -> Result<String, CheckError> {
    let mut config = Config::load(file).map_err(CheckError::Load)?;
    crate::config::preflight::apply_role(&mut config, role);
    let mut registry = prometheus_client::registry::Registry::default();
    let prepared = crate::config::preflight::preflight(&config, role, &mut registry)
        .await
        .map_err(|source| CheckError::Refused {
            file: file.to_path_buf(),
            source,
        })?;
    if !prepared.refused_playbooks.is_empty() {
        return Err(CheckError::Playbooks {
            file: file.to_path_buf(),
            refused: prepared.refused_playbooks.clone(),
        });
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
