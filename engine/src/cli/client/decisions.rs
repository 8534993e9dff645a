//! `riposte decisions`: the most recent decisions of this replica.

use clap::Args;

use super::output::{self, Table};
use super::{Client, ClientError, Connection, Format};
use crate::api::wire::{Decision, DecisionEntry, DecisionsQuery, Mode};

#[derive(Debug, Args)]
pub struct DecisionsArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// Only this playbook's.
    #[arg(long)]
    pub playbook: Option<String>,
    /// Only those with this outcome (applied, refused, dry-run, ...).
    #[arg(long)]
    pub outcome: Option<String>,
    /// Only those about this event id.
    #[arg(long)]
    pub event: Option<String>,
    /// Only those with an intent of this action (quarantine, tag_ip, ...).
    #[arg(long)]
    pub action: Option<String>,
    /// Only those made in this mode.
    #[arg(long, value_parser = ["enforce", "dry-run"])]
    pub mode: Option<String>,
    /// At most this many, newest first (at most 1000).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

pub fn run(args: DecisionsArgs) -> anyhow::Result<std::process::ExitCode> {
    let query = DecisionsQuery {
        limit: Some(args.limit),
        playbook: args.playbook,
        event_id: args.event,
        action: args.action,
        outcome: args.outcome,
        mode: args.mode.as_deref().map(|m| match m {
            "enforce" => Mode::Enforce,
            _ => Mode::DryRun,
        }),
    };
    super::run(&args.conn, |client, format| async move {
        list(&client, format, &query).await
    })
}

/// What a decision asked for, one intent after the other.
pub fn intents(d: &Decision) -> String {
    if d.intents.is_empty() {
        return "-".into();
    }
    d.intents
        .iter()
        .map(|i| format!("{} {}", i.action.name(), i.action.summary()))
        .collect::<Vec<_>>()
        .join("; ")
}

fn table(list: &Vec<DecisionEntry>) -> Table {
    let mut t = Table::new(&[
        "AT", "PLAYBOOK", "MODE", "OUTCOME", "COUNT", "EVENT", "INTENTS",
    ]);
    for e in list {
        let d = &e.decision;
        t.row(vec![
            output::time(&d.at),
            d.playbook.clone(),
            d.mode.to_string(),
            d.outcome.as_str().to_owned(),
            e.count.to_string(),
            d.event_id.clone(),
            intents(d),
        ]);
    }
    t
}

async fn list(client: &Client, format: Format, query: &DecisionsQuery) -> Result<(), ClientError> {
    let list: Vec<DecisionEntry> = client.get(&["v1", "decisions"], query).await?;
    if format == Format::Table && list.is_empty() {
        return output::write("no decision\n");
    }
    output::emit(format, &list, table)
}
