//! The `riposte` command line: one subcommand per file.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// --- subcommand modules (one per file) ---
// (helpers: add `pub mod <yours>;` lines here)
pub mod check_config;
pub mod gen;
pub mod hash_token;
pub mod lint_manifests;
pub mod parse;
pub mod playbook;
pub mod replay;
pub mod serve;

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
    /// Run recorded logs through the playbooks and print the intents; nothing is applied.
    Replay(replay::ReplayArgs),
    /// Test, check or list playbooks.
    Playbook(playbook::PlaybookArgs),
    /// Run the service: receive logs, run playbooks, act.
    Serve(serve::ServeArgs),
    /// Parse log lines and print one normalized JSON event per record.
    Parse(parse::ParseArgs),
    /// Validate a config file and its playbooks without starting anything.
    CheckConfig(check_config::CheckConfigArgs),
    /// Print the SHA-256 to configure for an API token read from stdin.
    HashToken(hash_token::HashTokenArgs),
    /// Generate realistic PAN-OS syslog lines for demos, benchmarks and tests.
    Gen(gen::GenArgs),
    /// Check Kubernetes manifests: selected workloads run behind the firewall and are not exempt.
    LintManifests(lint_manifests::LintManifestsArgs),
}

/// Runs the parsed command line; the process exits with what it returns.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        // --- subcommand dispatch ---
        // (helpers: add `Command::Replay(args) => replay::run(args),` here)
        Command::Replay(args) => replay::run(args),
        Command::Playbook(args) => playbook::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Parse(args) => parse::run(args),
        Command::CheckConfig(args) => check_config::run(args),
        Command::HashToken(args) => hash_token::run(args),
        Command::Gen(args) => gen::run(args),
        Command::LintManifests(args) => lint_manifests::run(args),
    }
}
