//! A Slack message: `text` (the fallback) and Block Kit `blocks`.

use serde_json::{json, Value};

use crate::soar::Notification;

/// Slack mrkdwn treats `&`, `<` and `>` as control characters.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

pub(super) fn slack(n: &Notification) -> Value {
    let sev = n.severity.as_str().to_ascii_uppercase();
    // An update says so first: in a thread, or on its own through an
    // incoming webhook.
    let title = match &n.coalesced {
        Some(c) if c.update > 0 => format!("{} events: {}", c.count, n.title),
        _ => n.title.clone(),
    };
    let mut context = format!(
        "severity *{}* · event `{}`",
        n.severity.as_str(),
        n.event.id
    );
    if let Some(pb) = &n.playbook {
        context.push_str(&format!(" · playbook `{}`", slack_escape(pb)));
    }
    let mut blocks = vec![
        // Header text is plain and at most 150 characters.
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&title, 150)}}),
        // Section text is at most 3000 characters.
        json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&slack_escape(&n.describe()), 3000)}}),
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}),
    ];
    if !n.links.is_empty() {
        // Slack takes at most 25 elements per actions block; the approval
        // links come first, so they are never the ones cut.
        let buttons: Vec<Value> = n
            .links
            .iter()
            .take(25)
            .map(|l| {
                let mut b = json!({"type": "button", "text": {"type": "plain_text", "text": truncate(&l.title, 75)}, "url": l.url});
                if n.approvals.iter().any(|a| a.approve_url == l.url) {
                    b["style"] = json!("primary");
                } else if n.approvals.iter().any(|a| a.deny_url == l.url) {
                    b["style"] = json!("danger");
                }
                b
            })
            .collect();
        blocks.push(json!({"type": "actions", "elements": buttons}));
    }
    json!({
        "text": format!("[{sev}] {}", slack_escape(&title)),
        "blocks": blocks,
    })
}

#[cfg(test)]
mod tests {
    use super::super::render;
    use super::super::tests::*;
    use crate::soar::Format;
    use serde_json::json;

    #[test]
    fn slack_message_escapes_and_links() {
        let mut n = sample();
        n.title = "a <b> & c".into();
        let body = render(&target(Format::Slack), &n);
        assert_eq!(
            body,
            json!({
                "text": "[CRITICAL] a &lt;b&gt; &amp; c",
                "blocks": [
                    {"type": "header", "text": {"type": "plain_text", "text": "a <b> & c"}},
                    {"type": "section", "text": {"type": "mrkdwn", "text": DESCRIPTION.replace('>', "&gt;")}},
                    {"type": "context", "elements": [{"type": "mrkdwn", "text": "severity *critical* · event `ev-1` · playbook `c2-quarantine`"}]},
                    {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Decision"}, "url": "https://riposte.example/v1/decisions?event_id=ev-1"}]},
                ],
            })
        );
        n.title = "x".repeat(400);
        let long = render(&target(Format::Slack), &n);
        assert_eq!(
            long["blocks"][0]["text"]["text"]
                .as_str()
                .map(|s| s.chars().count()),
            Some(150)
        );
    }
}
