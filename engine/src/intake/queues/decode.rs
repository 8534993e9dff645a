//! From a message body to events: log lines in any format the parser reads,
//! or normalized events as JSON (one object, an array, or NDJSON).
//!
//! Who wrote a queue decides what its events may claim ([`Origin`]): the
//! queues of `[[amqp.sources]]` are ingest paths like syslog and HTTP, so
//! their normalized events are firewall and IDS events only, with Riposte's
//! own ids; the partition queues carry what this deployment's ingest
//! replicas made, webhook events and their ids included.

// Events stay boxed from the decoder to the playbooks, as in the pipeline.
#![allow(clippy::vec_box)]

use riposte_firewall::{normalized, ParseError, ThreatEvent};
use serde_json::Value;

use super::config::MessageFormat;
use crate::intake::sources::{Ingest, Outcome};

/// Who wrote the messages of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A queue of `[[amqp.sources]]`, written by others: normalized events
    /// are admitted as [`riposte_firewall::normalized::admit`] says.
    Outside,
    /// A partition queue, written only by this deployment's ingest
    /// replicas (which the broker's permissions must ensure): events are
    /// taken as those replicas made them.
    Replicas,
}

/// What one message held.
#[derive(Debug, Default)]
pub struct Decoded {
    pub events: Vec<Box<ThreatEvent>>,
    /// Valid records that carry nothing for playbooks.
    pub ignored: usize,
    /// Why records failed, at most a few kept (for the dead-letter reason).
    pub errors: Vec<String>,
    pub failed: usize,
}

impl Decoded {
    fn fail(&mut self, e: String) {
        self.failed += 1;
        if self.errors.len() < 3 {
            self.errors.push(e);
        }
    }

    /// Nothing in the message was usable: it is poison.
    pub fn is_poison(&self) -> bool {
        self.events.is_empty() && self.ignored == 0
    }

    /// The dead-letter reason of a poison message.
    pub fn reason(&self) -> String {
        if self.errors.is_empty() {
            "undecodable: the message holds no record".into()
        } else {
            format!("undecodable: {}", self.errors.join("; "))
        }
    }
}

/// Decodes `body`; counts go to `ingest`'s source metrics.
pub fn decode(body: &[u8], format: MessageFormat, origin: Origin, ingest: &Ingest) -> Decoded {
    let mut out = Decoded::default();
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let json = match format {
        MessageFormat::Events => true,
        MessageFormat::Logs => false,
        MessageFormat::Auto => matches!(first, Some(b'{' | b'[')),
    };
    if json {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Array(items)) => {
                for item in items {
                    json_item(&mut out, item, format, origin, ingest);
                }
            }
            Ok(item) => json_item(&mut out, item, format, origin, ingest),
            // Not one JSON document: NDJSON, one per line.
            Err(_) => {
                for line in lines(body) {
                    match serde_json::from_slice::<Value>(line) {
                        Ok(item) => json_item(&mut out, item, format, origin, ingest),
                        Err(e) => {
                            let err = ParseError::Malformed {
                                format: "json",
                                reason: e.to_string(),
                            };
                            ingest.metrics().received.inc();
                            ingest.failure(&err, line);
                            out.fail(err.to_string());
                        }
                    }
                }
            }
        }
    } else {
        for line in lines(body) {
            record(&mut out, line, ingest);
        }
    }
    out
}

fn record(out: &mut Decoded, line: &[u8], ingest: &Ingest) {
    match ingest.record(line) {
        Outcome::Event(ev) => out.events.push(ev),
        Outcome::Ignored => out.ignored += 1,
        Outcome::Failed(e) => out.fail(e.to_string()),
    }
}

fn json_item(
    out: &mut Decoded,
    item: Value,
    format: MessageFormat,
    origin: Origin,
    ingest: &Ingest,
) {
    match item {
        Value::Object(ref map)
            if origin == Origin::Outside && normalized::looks_normalized(map) =>
        {
            match ingest.normalized(item) {
                Outcome::Event(ev) => out.events.push(ev),
                Outcome::Ignored => out.ignored += 1,
                Outcome::Failed(e) => out.fail(e.to_string()),
            }
        }
        Value::Object(ref map) if map.contains_key("event.kind") => {
            ingest.metrics().received.inc();
            match serde_json::from_value::<Box<ThreatEvent>>(item) {
                Ok(mut ev) => {
                    // Pod context comes from this replica's own index only:
                    // whoever can write to the queue must not be able to
                    // say which pod an event is about.
                    ev.source_pod = None;
                    ev.destination_pod = None;
                    ingest.count_parsed(&ev.dataset);
                    out.events.push(ev);
                }
                Err(e) => {
                    let err = ParseError::Malformed {
                        format: "riposte event",
                        reason: e.to_string(),
                    };
                    ingest.failure(&err, b"");
                    out.fail(err.to_string());
                }
            }
        }
        Value::Object(_) if format == MessageFormat::Events => {
            ingest.metrics().received.inc();
            let err = ParseError::Malformed {
                format: "riposte event",
                reason: "not a normalized event (no `event.kind`)".into(),
            };
            ingest.failure(&err, b"");
            out.fail(err.to_string());
        }
        Value::Object(ref map) => {
            if let Some(Value::String(raw)) =
                ["message", "log", "raw"].iter().find_map(|k| map.get(*k))
            {
                record(out, raw.as_bytes(), ingest);
            } else {
                // An EVE record (or garbage the EVE parser will name).
                record(out, item.to_string().as_bytes(), ingest);
            }
        }
        Value::String(s) if format != MessageFormat::Events => record(out, s.as_bytes(), ingest),
        _ => {
            ingest.metrics().received.inc();
            let err = ParseError::Malformed {
                format: "json",
                reason: "expected an object".into(),
            };
            ingest.failure(&err, b"");
            out.fail(err.to_string());
        }
    }
}

/// Non-empty lines, without their CR.
fn lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    body.split(|b| *b == b'\n').filter_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        (!line.iter().all(u8::is_ascii_whitespace)).then_some(line)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::metrics::IngestMetrics;

    fn ingest() -> std::sync::Arc<Ingest> {
        let mut registry = prometheus_client::registry::Registry::default();
        let m = IngestMetrics::register(&mut registry);
        Ingest::new(
            crate::config::Config::default()
                .parse_options()
                .expect("defaults"),
            m.source("amqp"),
        )
    }

    const EVE: &str = r#"{"timestamp":"2024-05-01T10:00:00.000000+0000","event_type":"alert","src_ip":"10.0.0.1","src_port":1234,"dest_ip":"10.0.0.2","dest_port":80,"proto":"TCP","alert":{"action":"allowed","gid":1,"signature_id":2000001,"rev":1,"signature":"ET TEST","category":"Test","severity":1}}"#;

    #[test]
    fn garbage_is_poison_with_a_reason() {
        let i = ingest();
        let d = decode(
            b"\x00\x01 not a log at all",
            MessageFormat::Auto,
            Origin::Outside,
            &i,
        );
        assert!(d.is_poison());
        assert!(d.reason().starts_with("undecodable"), "{}", d.reason());
        let d = decode(b"{\"a\": 1}", MessageFormat::Events, Origin::Outside, &i);
        assert!(d.is_poison());
        assert!(d.reason().contains("event.kind"), "{}", d.reason());
        assert!(decode(b"  \n ", MessageFormat::Auto, Origin::Outside, &i).is_poison());
    }

    #[test]
    fn eve_and_normalized_events_round_trip() {
        let i = ingest();
        let d = decode(EVE.as_bytes(), MessageFormat::Auto, Origin::Outside, &i);
        assert_eq!(d.events.len(), 1, "{:?}", d.errors);
        let json = serde_json::to_vec(&d.events[0]).expect("serialize");
        // Between replicas an event keeps the id its ingest replica gave it.
        let back = decode(&json, MessageFormat::Events, Origin::Replicas, &i);
        assert_eq!(back.events.len(), 1, "{:?}", back.errors);
        assert_eq!(back.events[0].id, d.events[0].id);
        // From outside the id is Riposte's hash of what arrived, whatever
        // it claims; the same message again gets the same one.
        let outside = decode(&json, MessageFormat::Events, Origin::Outside, &i);
        assert_eq!(outside.events.len(), 1, "{:?}", outside.errors);
        let again = decode(&json, MessageFormat::Auto, Origin::Outside, &i);
        assert_eq!(again.events[0].id, outside.events[0].id);
        let two = format!("{EVE}\n{EVE}\n");
        assert_eq!(
            decode(two.as_bytes(), MessageFormat::Auto, Origin::Outside, &i)
                .events
                .len(),
            2
        );
    }

    #[test]
    fn outside_queues_cannot_carry_webhooks_or_schedules() {
        let i = ingest();
        let webhook = serde_json::json!({
            "@timestamp": "2024-01-01T00:00:00Z",
            "event.id": "x",
            "event.kind": "webhook",
            "event.module": "riposte",
            "event.dataset": "riposte.webhook",
            "observer.vendor": "Riposte",
            "observer.product": "Riposte",
            "webhook.name": "soar",
            "event.payload": {"action": "release"},
            "event.original": "{}"
        });
        let body = serde_json::to_vec(&webhook).expect("serialize");
        for format in [MessageFormat::Auto, MessageFormat::Events] {
            let d = decode(&body, format, Origin::Outside, &i);
            assert!(d.is_poison(), "{format:?}");
            assert!(d.reason().contains("webhook.name"), "{}", d.reason());
        }
        // The partition queues carry the webhook events ingest replicas made.
        let d = decode(&body, MessageFormat::Events, Origin::Replicas, &i);
        assert_eq!(d.events.len(), 1, "{:?}", d.errors);
    }
}
