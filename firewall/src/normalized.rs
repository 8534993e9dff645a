//! Normalized events arriving as JSON on an ingest path (HTTP `/v1/ingest`,
//! AMQP source queues): the shape `riposte parse` prints.
//!
//! What an event is, and where it came from, is set by the path it arrived
//! on, never by its content. Whoever can send logs can therefore send
//! firewall and IDS events (`event.kind` `alert` or `event`, module `panos`
//! or `suricata`) and nothing else: a record claiming to be a webhook or a
//! schedule, to come from Riposte itself, or carrying a webhook's name or
//! payload is refused with [`ParseError::Provenance`], never quietly
//! stripped, so the sender learns at once that the record did not count.
//!
//! The claimed `event.id` is never kept either: ids key idempotent actions,
//! so a sender choosing them could make a genuine record look like one
//! already handled. The id is Riposte's hash of the whole admitted event
//! instead: a retried record gets the same id, and a record claiming a
//! genuine log's `event.original` with other fields gets another.

use serde_json::Value;

use crate::event::event_id;
use crate::{EventKind, EventModule, ParseError, Str, ThreatEvent};

const FORMAT: &str = "riposte event";

/// Keys that only Riposte's webhook route and scheduler may set.
const RESERVED: [&str; 2] = ["webhook.name", "event.payload"];

/// Whether a JSON object is meant as a normalized event (rather than an EVE
/// record or an envelope around a raw line): it uses one of the names that
/// only normalized events have.
pub fn looks_normalized(map: &serde_json::Map<String, Value>) -> bool {
    ["event.kind", "event.module", "event.id"]
        .iter()
        .chain(RESERVED.iter())
        .any(|k| map.contains_key(*k))
}

fn refuse(field: &'static str, reason: impl Into<String>) -> ParseError {
    ParseError::Provenance {
        field,
        reason: reason.into(),
    }
}

fn refuse_kind(kind: &str) -> ParseError {
    refuse(
        "event.kind",
        format!(
            "`{kind}` events are made by Riposte only (webhooks by the verified webhook route, \
             schedules by the scheduler); ingested events are `alert` or `event`"
        ),
    )
}

fn refuse_module() -> ParseError {
    refuse(
        "event.module",
        "`riposte` events are made by Riposte only; ingested events are from `panos` or `suricata`",
    )
}

/// Admits one normalized event from an ingest path: a firewall or IDS
/// event, its pod context dropped (it comes from Riposte's own index only)
/// and its id Riposte's content hash.
pub fn admit(value: Value) -> Result<ThreatEvent, ParseError> {
    // The claims are looked at before the shape, so that a forged record
    // is named as such even when it is also malformed.
    if let Value::Object(map) = &value {
        if let Some(field) = RESERVED.iter().find(|k| map.contains_key(**k)) {
            return Err(refuse(
                field,
                "only Riposte's verified webhook route and scheduler set it; \
                 ingested events must not carry it",
            ));
        }
        if let Some(kind @ ("webhook" | "schedule")) = map.get("event.kind").and_then(Value::as_str)
        {
            return Err(refuse_kind(kind));
        }
        if map.get("event.module").and_then(Value::as_str) == Some("riposte") {
            return Err(refuse_module());
        }
    }
    let mut ev: ThreatEvent = serde_json::from_value(value).map_err(|e| ParseError::Malformed {
        format: FORMAT,
        reason: e.to_string(),
    })?;
    // The typed event again: whatever spelling got past the checks above.
    check(&ev)?;
    ev.source_pod = None;
    ev.destination_pod = None;
    ev.id = content_id(&mut ev)?;
    Ok(ev)
}

/// Whether `ev` is something an ingest path may yield: a firewall or IDS
/// event without a webhook's name or payload. Every ingest path checks the
/// events it made, parsed ones included, so that no parser change can ever
/// let a log line become a webhook or a schedule.
pub fn check(ev: &ThreatEvent) -> Result<(), ParseError> {
    match ev.kind {
        EventKind::Alert | EventKind::Event => {}
        EventKind::Webhook | EventKind::Schedule => return Err(refuse_kind(ev.kind.as_str())),
    }
    if ev.module == EventModule::Riposte {
        return Err(refuse_module());
    }
    if ev.webhook_name.is_some() {
        return Err(refuse(
            "webhook.name",
            "ingested events must not carry a webhook's name",
        ));
    }
    if ev.payload.is_some() {
        return Err(refuse(
            "event.payload",
            "ingested events must not carry a webhook's or schedule's payload",
        ));
    }
    Ok(())
}

/// The hash of the event's every field but its id.
fn content_id(ev: &mut ThreatEvent) -> Result<Str, ParseError> {
    ev.id = Str::default();
    let text = serde_json::to_string(&*ev).map_err(|e| ParseError::Malformed {
        format: FORMAT,
        reason: e.to_string(),
    })?;
    // Prefixed, so that no raw log line can hash to a normalized event's id.
    Ok(event_id(&format!("normalized\n{text}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alert() -> Value {
        json!({
            "@timestamp": "2024-01-01T00:00:00Z",
            "event.id": "chosen-by-the-sender",
            "event.kind": "alert",
            "event.module": "panos",
            "event.dataset": "panos.threat",
            "observer.vendor": "Palo Alto Networks",
            "observer.product": "PAN-OS",
            "source.ip": "10.0.0.1",
            "event.original": "raw line"
        })
    }

    fn with(key: &str, value: Value) -> Value {
        let mut v = alert();
        v[key] = value;
        v
    }

    #[test]
    fn firewall_events_are_admitted_with_riposte_s_id() {
        let ev = admit(alert()).expect("admitted");
        assert_ne!(ev.id, "chosen-by-the-sender");
        assert_eq!(ev.id.len(), 32);
        // The same content, whatever id it claims: the same id.
        let again = admit(with("event.id", json!("another claim"))).expect("admitted");
        assert_eq!(again.id, ev.id);
        // Other content with the same `event.original`: another id.
        let other = admit(with("source.ip", json!("10.0.0.2"))).expect("admitted");
        assert_ne!(other.id, ev.id);
        // Never the id of the raw line it claims to be.
        assert_ne!(ev.id, event_id("raw line"));
    }

    #[test]
    fn claimed_pod_context_is_dropped() {
        let v = with("source.pod", json!({"namespace": "prod", "name": "api-0"}));
        let ev = admit(v).expect("admitted");
        assert!(ev.source_pod.is_none());
        assert_eq!(ev.id, admit(alert()).expect("admitted").id);
    }

    #[test]
    fn webhook_and_schedule_claims_are_refused() {
        for (key, value, field) in [
            ("event.kind", json!("webhook"), "event.kind"),
            ("event.kind", json!("schedule"), "event.kind"),
            ("event.module", json!("riposte"), "event.module"),
            ("webhook.name", json!("soar"), "webhook.name"),
            (
                "event.payload",
                json!({"action": "release"}),
                "event.payload",
            ),
            ("webhook.name", Value::Null, "webhook.name"),
        ] {
            let err = admit(with(key, value)).expect_err(key);
            assert_eq!(err.reason(), "provenance", "{key}");
            match err {
                ParseError::Provenance { field: f, .. } => assert_eq!(f, field),
                other => panic!("{key}: {other:?}"),
            }
        }
        // Refused as forged even when the rest does not parse.
        let v = json!({"event.kind": "webhook", "webhook.name": "soar"});
        assert_eq!(admit(v).expect_err("forged").reason(), "provenance");
    }

    #[test]
    fn a_malformed_event_says_why() {
        let err = admit(json!({"event.kind": "alert", "sorce.ip": "1"})).expect_err("bad");
        assert_eq!(err.reason(), "malformed");
        assert!(err.to_string().starts_with("riposte event:"), "{err}");
    }

    #[test]
    fn normalized_objects_are_told_from_eve_records() {
        let map = |v: Value| match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        assert!(looks_normalized(&map(alert())));
        assert!(looks_normalized(&map(json!({"webhook.name": "soar"}))));
        assert!(!looks_normalized(&map(
            json!({"event_type": "alert", "src_ip": "10.0.0.1"})
        )));
        assert!(!looks_normalized(&map(json!({"message": "raw"}))));
    }
}
