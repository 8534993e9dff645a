//! The `riposte` command line: one subcommand per file.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// --- subcommand modules (one per file) ---
// (helpers: add `pub mod <yours>;` lines here)

/// Threat response automation for Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "riposte", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    // --- subcommand variants ---
    // (helpers: add your variant here, e.g. `Replay(replay::ReplayArgs)`)
}

/// Runs the parsed command line; the process exits with what it returns.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        // --- subcommand dispatch ---
        // (helpers: add `Command::Replay(args) => replay::run(args),` here)
    }
}
