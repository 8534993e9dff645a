//! `riposte actions request ACTION TARGET | get ID`: ask for an action as
//! a SOAR would, through the same guardrails as the playbooks.

use clap::{Args, Subcommand};
use serde_json::json;

use super::output::{self, Table};
use super::{pod_ref, Client, ClientError, Connection, Format};
use crate::api::wire::{Action, ActionRequest, ActionResult, Intent, RequestStatus};
use crate::decide::decision::{ActionStatus, Outcome};

#[derive(Debug, Args)]
pub struct ActionsArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub command: ActionsCommand,
}

#[derive(Debug, Subcommand)]
pub enum ActionsCommand {
    /// Ask for one action now.
    ///
    /// ACTION and TARGET: `quarantine NS/POD --ttl 4h`, `release NS/POD`,
    /// `delete-pod NS/POD`, `block-egress NS/POD --cidr NET --ttl 1h`,
    /// `tag-ip IP --tag TAG --ttl 1h`, `untag-ip IP --tag TAG`.
    Request {
        /// quarantine, release, delete-pod, block-egress, tag-ip or untag-ip.
        action: String,
        /// NAMESPACE/POD, or an address for tag-ip and untag-ip.
        target: String,
        /// How long it lasts (30m, 4h, 7d).
        #[arg(long)]
        ttl: Option<String>,
        /// Why, for the audit trail.
        #[arg(long)]
        reason: Option<String>,
        /// Judge and record; apply nothing.
        #[arg(long)]
        dry_run: bool,
        /// The firewall tag of tag-ip and untag-ip.
        #[arg(long)]
        tag: Option<String>,
        /// The network block-egress denies.
        #[arg(long)]
        cidr: Option<String>,
    },
    /// What became of an earlier request.
    Get {
        /// The id `actions request` printed.
        id: String,
    },
}

pub fn run(args: ActionsArgs) -> anyhow::Result<std::process::ExitCode> {
    super::run(&args.conn, |client, format| async move {
        match args.command {
            ActionsCommand::Get { id } => {
                let result: ActionResult = client.get(&["v1", "actions", &id], &()).await?;
                show(format, &result)
            }
            ActionsCommand::Request {
                action,
                target,
                ttl,
                reason,
                dry_run,
                tag,
                cidr,
            } => {
                let action = build(&action, &target, ttl, reason.clone(), tag, cidr)?;
                let request = ActionRequest {
                    intents: vec![Intent {
                        action_id: String::new(),
                        action,
                    }],
                    dry_run,
                    reason,
                };
                request_one(&client, format, &request).await
            }
        }
    })
}

fn missing(flag: &str, action: &str) -> ClientError {
    ClientError::Usage(format!("{action} needs --{flag}"))
}

/// The intent in the playbooks' JSON shape, read by the server's own type
/// and checked by its own validation before anything is sent.
fn build(
    action: &str,
    target: &str,
    ttl: Option<String>,
    reason: Option<String>,
    tag: Option<String>,
    cidr: Option<String>,
) -> Result<Action, ClientError> {
    let name = action.replace('-', "_");
    let pod = || -> Result<serde_json::Value, ClientError> {
        let (ns, pod) = pod_ref(target)?;
        Ok(json!({"kind": "pod", "namespace": ns, "name": pod}))
    };
    let ttl_of = |t: &Option<String>| t.clone().ok_or_else(|| missing("ttl", action));
    let tag_of = || tag.clone().ok_or_else(|| missing("tag", action));
    let value = match name.as_str() {
        "quarantine" => {
            json!({"action": name, "target": pod()?, "ttl": ttl_of(&ttl)?, "reason": reason})
        }
        "release" | "delete_pod" => json!({"action": name, "target": pod()?, "reason": reason}),
        "block_egress" => json!({"action": name, "target": pod()?,
            "cidr": cidr.ok_or_else(|| missing("cidr", action))?,
            "ttl": ttl_of(&ttl)?, "reason": reason}),
        "tag_ip" => json!({"action": name, "ip": target, "tag": tag_of()?,
            "ttl": ttl_of(&ttl)?, "reason": reason}),
        "untag_ip" => json!({"action": name, "ip": target, "tag": tag_of()?}),
        _ => {
            return Err(ClientError::Usage(format!(
                "`{action}` is not one of quarantine, release, delete-pod, block-egress, tag-ip, untag-ip"
            )))
        }
    };
    let mut value = value;
    if let Some(obj) = value.as_object_mut() {
        obj.retain(|_, v| !v.is_null());
    }
    let action: Action = serde_json::from_value(value)
        .map_err(|e| ClientError::Usage(format!("{action} {target}: {e}")))?;
    action
        .validate()
        .map_err(|e| ClientError::Usage(format!("{} {target}: {e}", action.name())))?;
    Ok(action)
}

async fn request_one(
    client: &Client,
    format: Format,
    request: &ActionRequest,
) -> Result<(), ClientError> {
    let result: ActionResult = client.post(&["v1", "actions"], Some(request)).await?;
    show(format, &result)
}

fn table(result: &ActionResult) -> Table {
    let mut t = Table::new(&[
        "ID", "STATUS", "OUTCOME", "ACTION", "TARGET", "RESULT", "REASON",
    ]);
    let d = &result.decision;
    if d.actions.is_empty() {
        t.row(vec![
            result.id.clone(),
            result.status.as_str().into(),
            d.outcome.as_str().into(),
            super::decisions::intents(d),
            "-".into(),
            "-".into(),
            outcome_reason(&d.outcome).unwrap_or("-").into(),
        ]);
    }
    for a in &d.actions {
        t.row(vec![
            result.id.clone(),
            result.status.as_str().into(),
            d.outcome.as_str().into(),
            a.action.clone(),
            output::opt(a.target.as_deref()),
            a.status.as_str().into(),
            output::opt(a.reason.as_deref()),
        ]);
    }
    t
}

fn outcome_reason(o: &Outcome) -> Option<&str> {
    match o {
        Outcome::Pending { reason } | Outcome::Refused { reason } => Some(reason),
        Outcome::Failed { message } | Outcome::Error { message } => Some(message),
        _ => None,
    }
}

/// Prints a request's result. An action refused or failed is the API
/// doing its job and the operator's request failing: exit 1.
pub fn show(format: Format, result: &ActionResult) -> Result<(), ClientError> {
    output::emit(format, result, table)?;
    let d = &result.decision;
    let failed = d
        .actions
        .iter()
        .any(|a| matches!(a.status, ActionStatus::Refused | ActionStatus::Failed))
        || matches!(
            d.outcome,
            Outcome::Refused { .. } | Outcome::Failed { .. } | Outcome::Error { .. }
        );
    if failed {
        return Err(ClientError::Failed(format!(
            "request {}: {}{}",
            result.id,
            d.outcome.as_str(),
            outcome_reason(&d.outcome)
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        )));
    }
    if result.status == RequestStatus::InProgress && format == Format::Table {
        eprintln!(
            "riposte: still in progress; `riposte actions get {}` shows what came of it",
            result.id
        );
    }
    Ok(())
}
