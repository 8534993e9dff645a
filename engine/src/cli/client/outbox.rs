//! `riposte outbox list | replay ID | enable TARGET`: the notifications
//! waiting, delivered or dead-lettered, and the targets a 410 switched off.

use clap::{Args, Subcommand};

use super::output::{self, Table};
use super::{Client, ClientError, Connection, Format};
use crate::api::wire::{OutboxItem, OutboxQuery, OutboxResponse, OutboxStatus, TargetState};

#[derive(Debug, Args)]
pub struct OutboxArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub command: OutboxCommand,
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Notifications, newest first, and the disabled targets.
    List {
        /// Only those pending, delivered or dead.
        #[arg(long, value_parser = ["pending", "delivered", "dead"])]
        status: Option<String>,
        /// Only those for this target.
        #[arg(long)]
        target: Option<String>,
        /// At most this many (1 to 1000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: u16,
    },
    /// Send a dead-lettered notification again (an `admin` token).
    Replay { id: String },
    /// Switch a target that answered 410 Gone back on (an `admin` token).
    Enable { target: String },
}

pub fn run(args: OutboxArgs) -> anyhow::Result<std::process::ExitCode> {
    super::run(&args.conn, |client, format| async move {
        match args.command {
            OutboxCommand::List {
                status,
                target,
                limit,
            } => {
                let status = status.as_deref().map(|s| match s {
                    "pending" => OutboxStatus::Pending,
                    "delivered" => OutboxStatus::Delivered,
                    _ => OutboxStatus::Dead,
                });
                let query = OutboxQuery {
                    status,
                    target,
                    limit: Some(usize::from(limit)),
                    cursor: None,
                };
                list(&client, format, &query).await
            }
            OutboxCommand::Replay { id } => {
                let item: OutboxItem = client
                    .post::<_, ()>(&["v1", "outbox", &id, "replay"], None)
                    .await?;
                output::emit(format, &vec![item], items)
            }
            OutboxCommand::Enable { target } => {
                let state: TargetState = client
                    .post::<_, ()>(&["v1", "outbox", "targets", &target, "enable"], None)
                    .await?;
                output::emit(format, &vec![state], targets)
            }
        }
    })
}

fn items(list: &Vec<OutboxItem>) -> Table {
    let mut t = Table::new(&["ID", "TARGET", "STATUS", "ATTEMPTS", "UPDATED", "ERROR"]);
    for i in list {
        t.row(vec![
            i.id.clone(),
            i.target.clone(),
            format!("{:?}", i.status).to_lowercase(),
            i.attempts.to_string(),
            output::time(&i.updated_at),
            output::opt(i.dead_reason.as_deref().or(i.last_error.as_deref())),
        ]);
    }
    t
}

fn targets(list: &Vec<TargetState>) -> Table {
    let mut t = Table::new(&["TARGET", "STATE", "SINCE", "REASON"]);
    for s in list {
        t.row(vec![
            s.target.clone(),
            if s.disabled { "disabled" } else { "enabled" }.to_owned(),
            output::time(&s.updated_at),
            output::opt(s.reason.as_deref()),
        ]);
    }
    t
}

async fn list(client: &Client, format: Format, query: &OutboxQuery) -> Result<(), ClientError> {
    let answer: OutboxResponse = client.get(&["v1", "outbox"], query).await?;
    if format != Format::Table {
        return output::emit(format, &answer, |_| Table::new(&[]));
    }
    let mut text = if answer.page.items.is_empty() {
        "no notification\n".to_owned()
    } else {
        items(&answer.page.items).render(output::terminal_width())
    };
    let disabled: Vec<TargetState> = answer.targets.into_iter().filter(|t| t.disabled).collect();
    if !disabled.is_empty() {
        text.push('\n');
        text.push_str(&targets(&disabled).render(output::terminal_width()));
        text.push_str("(`riposte outbox enable TARGET` switches one back on)\n");
    }
    if answer.page.next_cursor.is_some() {
        text.push_str("(more remain: narrow with --status/--target or raise --limit)\n");
    }
    output::write(&text)
}
