//! `riposte approvals list | approve ID | deny ID`.

use clap::{Args, Subcommand};

use super::output::{self, Table};
use super::{Client, ClientError, Connection, Format};
use crate::api::wire::{Approval, ApprovalsQuery};

#[derive(Debug, Args)]
pub struct ApprovalsArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub command: ApprovalsCommand,
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// Actions waiting for a person's yes or no.
    List {
        /// Decided and timed-out ones too.
        #[arg(long)]
        all: bool,
    },
    /// Carry the action out (an `act` token).
    Approve { id: String },
    /// Drop the action (an `act` token).
    Deny { id: String },
}

pub fn run(args: ApprovalsArgs) -> anyhow::Result<std::process::ExitCode> {
    super::run(&args.conn, |client, format| async move {
        match args.command {
            ApprovalsCommand::List { all } => list(&client, format, all).await,
            ApprovalsCommand::Approve { id } => decide(&client, format, &id, "approve").await,
            ApprovalsCommand::Deny { id } => decide(&client, format, &id, "deny").await,
        }
    })
}

fn table(list: &Vec<Approval>) -> Table {
    let mut t = Table::new(&[
        "ID", "STATE", "PLAYBOOK", "ACTION", "EXPIRES", "DEFAULT", "REASON",
    ]);
    for a in list {
        t.row(vec![
            a.id.clone(),
            a.state.as_str().to_owned(),
            a.playbook.clone(),
            format!("{} {}", a.intent.action.name(), a.intent.action.summary()),
            output::time(&a.expires_at),
            a.default.as_str().to_owned(),
            output::opt(a.reason.as_deref()),
        ]);
    }
    t
}

async fn list(client: &Client, format: Format, all: bool) -> Result<(), ClientError> {
    let query = ApprovalsQuery {
        state: all.then(|| "all".to_owned()),
    };
    let list: Vec<Approval> = client.get(&["v1", "approvals"], &query).await?;
    if format == Format::Table && list.is_empty() {
        return output::write("no approval is waiting\n");
    }
    output::emit(format, &list, table)
}

async fn decide(
    client: &Client,
    format: Format,
    id: &str,
    verdict: &str,
) -> Result<(), ClientError> {
    let a: Approval = client
        .post::<_, ()>(&["v1", "approvals", id, verdict], None)
        .await?;
    output::emit(format, &vec![a], table)
}
