//! The Standard Webhooks envelope `{type, timestamp, data}`.

use serde_json::{json, Value};

use super::rfc3339;
use crate::soar::Notification;

/// The event type of an incident's update (its `data.coalesced.incident`
/// is the incident key the first notification carried).
pub const UPDATED: &str = "riposte.incident.updated";

pub(super) fn webhook(n: &Notification) -> Value {
    let update = n.coalesced.as_ref().is_some_and(|c| c.update > 0);
    json!({
        "type": if update { UPDATED } else { n.kind.as_str() },
        "timestamp": rfc3339(n),
        "data": n,
    })
}

#[cfg(test)]
mod tests {
    use super::super::render;
    use super::super::tests::*;
    use crate::soar::{Format, Notification, TargetConfig};
    use serde_json::json;

    #[test]
    fn webhook_is_the_standard_webhooks_envelope() {
        let n = sample();
        let body = render(&TargetConfig::new("w", "https://x/", Format::Webhook), &n);
        assert_eq!(
            body,
            json!({
                "type": "riposte.notify",
                "timestamp": "2026-01-02T03:04:05.000Z",
                "data": serde_json::to_value(&n).expect("json"),
            })
        );
        assert_eq!(body["data"]["event"]["source_ip"], "10.244.1.17");
        assert_eq!(body["data"]["fields"]["c2"], "203.0.113.9");
        let back: Notification = serde_json::from_value(body["data"].clone()).expect("round trip");
        assert_eq!(back, n);
    }
}
