//! `riposte audit [filters] [--follow]`: the durable audit trail.
//!
//! Read page by page (the API's cursor) and printed as each page arrives:
//! a trail of millions of decisions never sits in memory. Without
//! `--follow`, newest first; `-o json` prints one JSON document a line and
//! `-o yaml` one YAML document per entry, so a pipe can read them as they
//! come. `--follow` prints the last `--limit` entries oldest first, then
//! each new one as the store receives it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;

use super::output::{self, Format, Table};
use super::{Client, ClientError, Connection};
use crate::api::wire::{AuditEntry, AuditPage, AuditQuery};

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// Only entries from this long ago (30m, 2h, 7d) or since this RFC 3339
    /// time.
    #[arg(long)]
    pub since: Option<String>,
    /// Only this playbook's (`api:NAME` for a token's requests).
    #[arg(long)]
    pub playbook: Option<String>,
    /// Only entries aimed at this target: NS/POD, an address, LIST:VALUE.
    #[arg(long)]
    pub target: Option<String>,
    /// Only entries with this outcome (applied, refused, dry-run, ...).
    #[arg(long)]
    pub outcome: Option<String>,
    /// Only entries about this event id.
    #[arg(long)]
    pub event: Option<String>,
    /// Only entries with an intent of this action (quarantine, tag_ip, ...).
    #[arg(long)]
    pub action: Option<String>,
    /// Keep printing new entries as they are recorded (Ctrl-C ends).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// With --follow: how many recent entries to show first.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Entries asked for per page.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub page_size: u16,
    /// With --follow: seconds between polls.
    #[arg(long, default_value_t = 2)]
    pub interval: u64,
}

/// `--since`: a duration back from now, or a time.
pub fn since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, ClientError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let ttl: crate::decide::intent::Ttl =
        serde_json::from_value(serde_json::json!(text)).map_err(|_| {
            ClientError::Usage(format!(
                "--since `{text}` is neither a duration (30m, 2h, 7d) nor an RFC 3339 time"
            ))
        })?;
    let secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    Ok(now - chrono::Duration::seconds(secs))
}

pub fn run(args: AuditArgs) -> anyhow::Result<std::process::ExitCode> {
    let from = args.since.as_deref().map(|s| since(s, Utc::now()));
    let conn = args.conn.clone();
    super::run(&conn, |client, format| async move {
        let query = AuditQuery {
            from: from.transpose()?.map(|t| t.to_rfc3339()),
            playbook: args.playbook,
            event_id: args.event,
            target: args.target,
            action: args.action,
            outcome: args.outcome,
            limit: Some(args.page_size.to_string()),
            ..AuditQuery::default()
        };
        if args.follow {
            follow(&client, format, query, args.limit, args.interval).await
        } else {
            stream(&client, format, query).await
        }
    })
}

fn table(entries: &[AuditEntry]) -> Table {
    let mut t = Table::new(&["AT", "PLAYBOOK", "MODE", "OUTCOME", "EVENT", "ACTIONS"]);
    for e in entries {
        let actions = if e.actions.is_empty() {
            "-".to_owned()
        } else {
            e.actions
                .iter()
                .map(|a| {
                    format!(
                        "{} {} {}",
                        a.action,
                        a.target.as_deref().unwrap_or("-"),
                        a.status.as_str()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        t.row(vec![
            output::time(&e.at),
            e.playbook.clone(),
            e.mode.to_string(),
            e.outcome.as_str().to_owned(),
            e.event_id.clone(),
            actions,
        ]);
    }
    t
}

/// Prints pages as they come: the table's columns are laid out on the
/// first page and kept, so the output reads as one table.
struct Printer {
    format: Format,
    widths: Option<Vec<usize>>,
    printed: u64,
}

impl Printer {
    fn new(format: Format) -> Printer {
        Printer {
            format,
            widths: None,
            printed: 0,
        }
    }

    fn print(&mut self, entries: &[AuditEntry]) -> Result<(), ClientError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.printed += entries.len() as u64;
        let text = match self.format {
            Format::Table => {
                let t = table(entries);
                let header = self.widths.is_none();
                let widths = self
                    .widths
                    .get_or_insert_with(|| t.layout(output::terminal_width()));
                t.render_with(widths, header)
            }
            Format::Json => {
                let mut text = String::new();
                for e in entries {
                    let line = serde_json::to_string(e)
                        .map_err(|e| ClientError::Output(std::io::Error::other(e)))?;
                    text.push_str(&line);
                    text.push('\n');
                }
                text
            }
            Format::Yaml => {
                let mut text = String::new();
                for e in entries {
                    text.push_str("---\n");
                    text.push_str(&output::document(Format::Yaml, e)?);
                }
                text
            }
        };
        output::write(&text)
    }
}

async fn page(client: &Client, query: &AuditQuery) -> Result<AuditPage, ClientError> {
    client.get(&["v1", "audit"], query).await
}

async fn stream(client: &Client, format: Format, mut query: AuditQuery) -> Result<(), ClientError> {
    let mut printer = Printer::new(format);
    loop {
        let page = page(client, &query).await?;
        printer.print(&page.items)?;
        match page.next_cursor {
            Some(cursor) if !page.items.is_empty() => query.cursor = Some(cursor),
            _ => break,
        }
    }
    if printer.printed == 0 && format == Format::Table {
        eprintln!("riposte: no audit entry matches");
    }
    Ok(())
}

/// How far back each poll looks again: decisions reach the store through
/// a batching writer, so one recorded a moment before the newest seen may
/// arrive after it.
const OVERLAP: chrono::Duration = chrono::Duration::seconds(30);

async fn follow(
    client: &Client,
    format: Format,
    mut query: AuditQuery,
    last: usize,
    interval: u64,
) -> Result<(), ClientError> {
    let mut printer = Printer::new(format);
    query.limit = Some(last.clamp(1, 1000).to_string());
    let mut recent = page(client, &query).await?.items;
    recent.reverse();
    printer.print(&recent)?;
    // The store's ids grow in insertion order: an entry with a larger id
    // than any printed is one stored since. `from` only narrows the
    // search, with an overlap for entries stored late with an earlier time.
    let mut last_id = recent.iter().map(|e| e.id).max().unwrap_or(0);
    let mut newest = recent.iter().map(|e| e.at).max();
    query.limit = Some("1000".to_owned());
    loop {
        tokio::time::sleep(Duration::from_secs(interval.max(1))).await;
        if let Some(t) = newest {
            query.from = Some((t - OVERLAP).to_rfc3339());
        }
        query.cursor = None;
        let mut fresh = Vec::new();
        loop {
            let page = page(client, &query).await?;
            let more = page.items.iter().all(|e| e.id > last_id);
            fresh.extend(page.items.into_iter().filter(|e| e.id > last_id));
            match page.next_cursor {
                // Newest first: once a page reaches what was printed, the
                // rest is older still.
                Some(c) if more => query.cursor = Some(c),
                _ => break,
            }
        }
        fresh.sort_by_key(|e| e.id);
        printer.print(&fresh)?;
        last_id = fresh.iter().map(|e| e.id).max().unwrap_or(last_id);
        newest = newest.max(fresh.iter().map(|e| e.at).max());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_duration_or_a_time() {
        let now = DateTime::parse_from_rfc3339("2026-12-06T12:00:00Z")
            .unwrap_or_default()
            .with_timezone(&Utc);
        let two_hours = since("2h", now).map(|t| t.to_rfc3339());
        assert_eq!(two_hours.ok().as_deref(), Some("2026-12-06T10:00:00+00:00"));
        let at = since("2026-12-01T00:00:00Z", now).map(|t| t.to_rfc3339());
        assert_eq!(at.ok().as_deref(), Some("2026-12-01T00:00:00+00:00"));
        assert!(matches!(
            since("yesterday", now),
            Err(ClientError::Usage(_))
        ));
    }
}
