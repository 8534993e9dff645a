//! `riposte edl list LIST | add LIST VALUE [--ttl] | remove LIST VALUE`:
//! the external dynamic lists the firewall polls.

use clap::{Args, Subcommand};
use reqwest::Method;

use super::output::{self, Table};
use super::{Client, ClientError, Connection, Format};
use crate::api::wire::{EdlAdd, EdlAdded, EdlRemoved, Ttl};

#[derive(Debug, Args)]
pub struct EdlArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub command: EdlCommand,
}

#[derive(Debug, Subcommand)]
pub enum EdlCommand {
    /// The entries the firewall gets when it polls LIST.
    List { list: String },
    /// Add VALUE (an address, a range, a domain or a URL, as the list's
    /// kind takes) to LIST for --ttl.
    Add {
        list: String,
        value: String,
        /// How long the entry stays (30m, 4h, 7d).
        #[arg(long, default_value = "24h")]
        ttl: String,
        /// Why, for the audit trail.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Take VALUE off LIST now.
    Remove { list: String, value: String },
}

pub fn run(args: EdlArgs) -> anyhow::Result<std::process::ExitCode> {
    super::run(&args.conn, |client, format| async move {
        match args.command {
            EdlCommand::List { list } => show(&client, format, &list).await,
            EdlCommand::Add {
                list,
                value,
                ttl,
                reason,
            } => add(&client, format, &list, value, &ttl, reason).await,
            EdlCommand::Remove { list, value } => {
                let done: EdlRemoved = client.delete(&["v1", "edl", &list, &value]).await?;
                output::emit(format, &done, |d| detail(&d.detail))
            }
        }
    })
}

fn detail(text: &str) -> Table {
    let mut t = Table::new(&["RESULT"]);
    t.row(vec![text.to_owned()]);
    t
}

async fn show(client: &Client, format: Format, list: &str) -> Result<(), ClientError> {
    let resp = client
        .send(client.request(Method::GET, &["v1", "edl", list]))
        .await?;
    let text = resp.text().await.map_err(|e| ClientError::Unexpected {
        what: format!("GET edl/{list}"),
        cause: e.to_string(),
    })?;
    let entries: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if format == Format::Table && entries.is_empty() {
        return output::write(&format!("{list} is empty\n"));
    }
    output::emit(format, &entries, |entries| {
        let mut t = Table::new(&["VALUE"]);
        for e in entries {
            t.row(vec![(*e).to_owned()]);
        }
        t
    })
}

async fn add(
    client: &Client,
    format: Format,
    list: &str,
    value: String,
    ttl: &str,
    reason: Option<String>,
) -> Result<(), ClientError> {
    let ttl: Ttl = serde_json::from_value(serde_json::json!(ttl))
        .map_err(|e| ClientError::Usage(format!("--ttl `{ttl}`: {e}")))?;
    let body = EdlAdd { value, ttl, reason };
    let done: EdlAdded = client.post(&["v1", "edl", list], Some(&body)).await?;
    output::emit(format, &done, |d| {
        let mut t = Table::new(&["LIST", "VALUE", "TTL", "RESULT"]);
        t.row(vec![
            d.list.clone(),
            d.value.clone(),
            d.ttl.to_string(),
            d.detail.clone(),
        ]);
        t
    })
}
