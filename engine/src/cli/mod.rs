//! The `riposte` command line: one subcommand per file.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

const ABOUT: &str = "Threat response automation for Kubernetes: firewall threat logs in, \
                     guarded actions on pods out.";

const LONG_ABOUT: &str = "\
Threat response automation for Kubernetes.

Riposte receives the threat logs of an in-cluster firewall (PAN-OS, CEF, LEEF,
Suricata EVE) over syslog, files or HTTP, finds the pod behind each address,
runs your playbooks (sandboxed Rhai scripts) on every event, and carries out
what they decide behind guardrails: quarantine pods by label, tighten network
policy in the cluster and on the firewall, and notify the SOAR platform.

Most used:
  riposte serve --config riposte.toml   run the service
  riposte check-config riposte.toml     validate a config and its playbooks
  riposte playbook test [DIR]           run playbooks against their fixtures
  riposte replay FILE...                what recorded logs would trigger; nothing applied
  riposte parse FILE...                 the normalized event of each log line

Operating a running Riposte (--server, RIPOSTE_URL; --token, RIPOSTE_TOKEN):
  riposte quarantines list | release NS/POD
  riposte approvals list | approve ID | deny ID
  riposte actions request ACTION TARGET | get ID
  riposte audit [--since 1h] [--playbook P] [--target T] [--follow]
  riposte decisions
  riposte edl list LIST | add LIST VALUE | remove LIST VALUE
  riposte outbox list | replay ID | enable TARGET
  riposte playbooks list | reload | dry-run NAME --event FILE
  riposte completions bash|zsh|fish

Run `riposte help <COMMAND>` for a command's options.";

pub mod check_config;
pub mod client;
pub mod completions;
pub mod gen;
pub mod hash_token;
pub mod lint_manifests;
pub mod parse;
pub mod playbook;
pub mod replay;
pub mod serve;

/// The `riposte` command line. Its help is written for the people running
/// Riposte rather than taken from the crate description.
#[derive(Debug, Parser)]
#[command(name = "riposte", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
    /// Quarantined pods of a running Riposte: list them, release one.
    Quarantines(client::quarantines::QuarantinesArgs),
    /// Actions waiting for a person: list, approve, deny.
    Approvals(client::approvals::ApprovalsArgs),
    /// Ask a running Riposte for an action, or what came of one.
    Actions(client::actions::ActionsArgs),
    /// The audit trail, filtered, page by page, or followed.
    Audit(client::audit::AuditArgs),
    /// The most recent decisions of a running Riposte.
    Decisions(client::decisions::DecisionsArgs),
    /// External dynamic lists: list, add, remove entries.
    Edl(client::edl::EdlArgs),
    /// Notifications: list, replay a dead one, enable a disabled target.
    Outbox(client::outbox::OutboxArgs),
    /// Playbooks of a running Riposte: list, reload, dry-run one on an event.
    Playbooks(client::playbooks::PlaybooksArgs),
    /// Print the shell completion script for bash, zsh or fish.
    Completions(completions::CompletionsArgs),
}

/// Runs the parsed command line; the process exits with what it returns.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Replay(args) => replay::run(args),
        Command::Playbook(args) => playbook::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Parse(args) => parse::run(args),
        Command::CheckConfig(args) => check_config::run(args),
        Command::HashToken(args) => hash_token::run(args),
        Command::Gen(args) => gen::run(args),
        Command::LintManifests(args) => lint_manifests::run(args),
        Command::Quarantines(args) => client::quarantines::run(args),
        Command::Approvals(args) => client::approvals::run(args),
        Command::Actions(args) => client::actions::run(args),
        Command::Audit(args) => client::audit::run(args),
        Command::Decisions(args) => client::decisions::run(args),
        Command::Edl(args) => client::edl::run(args),
        Command::Outbox(args) => client::outbox::run(args),
        Command::Playbooks(args) => client::playbooks::run(args),
        Command::Completions(args) => completions::run(args),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn help_is_written_for_users_not_the_crate_description() {
        let mut cmd = Cli::command();
        cmd.clone().debug_assert();
        let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
        assert_ne!(about, env!("CARGO_PKG_DESCRIPTION"));
        let long = cmd.render_long_help().to_string();
        for sub in ["serve", "check-config", "playbook test", "replay", "parse"] {
            assert!(
                long.contains(&format!("riposte {sub}")),
                "{sub} in:\n{long}"
            );
        }
    }
}
