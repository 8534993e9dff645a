//! `riposte quarantines list | release NS/POD`.

use clap::{Args, Subcommand};
use reqwest::Method;

use super::output::{self, Table};
use super::{actions, pod_ref, Client, ClientError, Connection, Format};
use crate::api::wire::{ActionResult, QuarantineList};

#[derive(Debug, Args)]
pub struct QuarantinesArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub command: QuarantinesCommand,
}

#[derive(Debug, Subcommand)]
pub enum QuarantinesCommand {
    /// The quarantined pods, as the cluster's labels and annotations say.
    List,
    /// Lift a pod's quarantine now (through the guardrails, recorded in the
    /// audit trail).
    Release {
        /// The pod, as NAMESPACE/POD.
        pod: String,
    },
}

pub fn run(args: QuarantinesArgs) -> anyhow::Result<std::process::ExitCode> {
    super::run(&args.conn, |client, format| async move {
        match args.command {
            QuarantinesCommand::List => list(&client, format).await,
            QuarantinesCommand::Release { pod } => release(&client, format, &pod).await,
        }
    })
}

fn table(list: &QuarantineList) -> Table {
    let mut t = Table::new(&["POD", "SINCE", "EXPIRES", "PLAYBOOK", "REASON"]);
    for q in &list.quarantines {
        t.row(vec![
            format!("{}/{}", q.pod.namespace, q.pod.name),
            q.quarantined_at.as_ref().map_or("-".into(), output::time),
            q.expires_at.as_ref().map_or("never".into(), output::time),
            output::opt(q.playbook.as_deref()),
            output::opt(q.reason.as_deref()),
        ]);
    }
    t
}

async fn list(client: &Client, format: Format) -> Result<(), ClientError> {
    let list: QuarantineList = client.get(&["v1", "quarantines"], &()).await?;
    if format == Format::Table && list.quarantines.is_empty() {
        let why = if list.cluster {
            "no pod is quarantined\n"
        } else {
            "no pod is quarantined (no cluster is configured)\n"
        };
        return output::write(why);
    }
    output::emit(format, &list, table)
}

async fn release(client: &Client, format: Format, pod: &str) -> Result<(), ClientError> {
    let (ns, name) = pod_ref(pod)?;
    let req = client.request(Method::DELETE, &["v1", "quarantines", &ns, &name]);
    let result: ActionResult = client.json(req, "the release").await?;
    actions::show(format, &result)
}
