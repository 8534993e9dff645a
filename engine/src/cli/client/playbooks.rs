//! `riposte playbooks list | reload | dry-run NAME --event FILE`: the
//! playbooks a running Riposte has loaded.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use riposte_firewall::ThreatEvent;

use super::output::{self, Table};
use super::{Client, ClientError, Connection, Format};
use crate::api::wire::{DryRun, PlaybookInfo, ReloadReport};

#[derive(Debug, Args)]
pub struct PlaybooksArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub command: PlaybooksCommand,
}

#[derive(Debug, Subcommand)]
pub enum PlaybooksCommand {
    /// The playbooks in force, in run order.
    List,
    /// Read the playbook directory again (an `admin` token); a refused file
    /// keeps its previous version running, and makes the exit code 1.
    Reload,
    /// What playbook NAME would decide about an event; nothing is applied.
    DryRun {
        name: String,
        /// A normalized event as JSON (what `riposte parse` prints).
        #[arg(long, value_name = "FILE")]
        event: PathBuf,
    },
}

pub fn run(args: PlaybooksArgs) -> anyhow::Result<std::process::ExitCode> {
    super::run(&args.conn, |client, format| async move {
        match args.command {
            PlaybooksCommand::List => {
                let list: Vec<PlaybookInfo> = client.get(&["v1", "playbooks"], &()).await?;
                if format == Format::Table && list.is_empty() {
                    return output::write("no playbook is loaded\n");
                }
                output::emit(format, &list, table)
            }
            PlaybooksCommand::Reload => reload(&client, format).await,
            PlaybooksCommand::DryRun { name, event } => {
                dry_run(&client, format, &name, &event).await
            }
        }
    })
}

fn table(list: &Vec<PlaybookInfo>) -> Table {
    let mut t = Table::new(&["NAME", "MODE", "ENABLED", "ORDER", "TRIGGER", "DESCRIPTION"]);
    for p in list {
        t.row(vec![
            p.name.clone(),
            p.mode.to_string(),
            p.enabled.to_string(),
            p.order.to_string(),
            p.schedule.clone().unwrap_or_else(|| p.trigger.join(", ")),
            p.description.clone(),
        ]);
    }
    t
}

async fn reload(client: &Client, format: Format) -> Result<(), ClientError> {
    let report: ReloadReport = client
        .post::<_, ()>(&["v1", "playbooks", "reload"], None)
        .await?;
    output::emit(format, &report, |r| {
        let mut t = Table::new(&["PLAYBOOK", "RESULT"]);
        for (names, what) in [
            (&r.loaded, "loaded"),
            (&r.unchanged, "unchanged"),
            (&r.removed, "removed"),
        ] {
            for n in names {
                t.row(vec![n.clone(), what.to_owned()]);
            }
        }
        for e in &r.errors {
            t.row(vec![e.clone(), "refused".to_owned()]);
        }
        t
    })?;
    if report.errors.is_empty() {
        Ok(())
    } else {
        Err(ClientError::Failed(format!(
            "{} playbook file(s) refused; their previous versions keep running",
            report.errors.len()
        )))
    }
}

async fn dry_run(
    client: &Client,
    format: Format,
    name: &str,
    event: &PathBuf,
) -> Result<(), ClientError> {
    let text = std::fs::read(event).map_err(|e| {
        ClientError::Usage(format!(
            "cannot read the event file {}: {e}",
            event.display()
        ))
    })?;
    // Read with the handler's own type: a file it would refuse is refused
    // here, with the field that is wrong.
    let value: ThreatEvent = serde_json::from_slice(&text).map_err(|e| {
        ClientError::Usage(format!(
            "{} is not a normalized event: {e}",
            event.display()
        ))
    })?;
    let result: DryRun = client
        .post(&["v1", "playbooks", name, "dry-run"], Some(&value))
        .await?;
    output::emit(format, &result, |r| {
        let mut t = Table::new(&["PLAYBOOK", "MATCHED", "OUTCOME", "INTENTS"]);
        t.row(vec![
            name.to_owned(),
            r.matched.to_string(),
            r.decision
                .as_ref()
                .map_or("-".into(), |d| d.outcome.as_str().to_owned()),
            r.decision
                .as_ref()
                .map_or("-".into(), super::decisions::intents),
        ]);
        t
    })
}
