//! `POST /v1/ingest`: logs over HTTP.
//!
//! Bodies are read whole (bounded by `http.max_body_bytes`, 413 beyond) and
//! parsed before anything is accepted, so a batch is refused as a whole when
//! the pipeline has no room (503 with Retry-After) and the sender can retry
//! it unchanged; event ids are content hashes, so a retried batch produces
//! the same ids and idempotent actions downstream.
//!
//! Accepted bodies:
//! - `text/plain` (or no type): one log record per line, any format
//!   `riposte parse` reads.
//! - `application/x-ndjson` / `application/jsonl`: one JSON object per line,
//!   either a Suricata EVE record, a normalized Riposte event, or an object
//!   with the raw record in `message` (also `log`, `raw`).
//! - `application/json`: one such object, an array of them, or an object
//!   with the array in `logs` / `records` / `events` (the shape the PAN-OS
//!   HTTP server profile is configured to send, see the README).
//!
//! JSON nested deeper than `api.max_json_depth` is refused with 422 before
//! it is parsed: the whole body for `application/json`, and for NDJSON the
//! whole batch when any one line is too deep (nothing of it is accepted),
//! since such a line is an attack on the parser rather than a damaged log.
//!
//! Normalized events are admitted as firewall and IDS events only, with
//! Riposte's own ids ([`riposte_firewall::normalized`]): one claiming to be
//! a webhook or a schedule is a per-line error, counted under
//! `riposte_parse_failures_total{reason="provenance"}`.

// Events are boxed as the pipeline takes them (see `pipeline`).
#![allow(clippy::vec_box)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use riposte_firewall::{normalized, ParseError, ThreatEvent};
use serde_json::Value;

use super::{json, ApiError, AppState};
use crate::auth::Scope;
use crate::intake::pipeline::Closed;
use crate::intake::sources::Outcome;

/// At most this many per-line errors are listed in a 400 answer.
const MAX_LISTED_ERRORS: usize = 100;

pub async fn ingest(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let principal = state.authorize(&headers, Scope::Ingest)?;
    let mut batch = Batch::default();
    match content_type(&headers).as_str() {
        "application/json" => batch.json_body(&state, &body)?,
        "application/x-ndjson" | "application/jsonl" | "application/json-seq" => {
            batch.json_lines(&state, &body)?
        }
        _ => {
            for (i, line) in lines(&body) {
                batch.record(&state, i, line);
            }
        }
    }
    tracing::debug!(token = %principal.name, events = batch.events.len(), errors = batch.errors.len(), "ingest batch");
    let accepted = batch.events.len();
    if accepted > 0 {
        enqueue(&state, batch.events).await?;
    }
    if !batch.errors.is_empty() {
        batch.errors.truncate(MAX_LISTED_ERRORS);
        return Err(ApiError::Rejected {
            accepted,
            errors: batch.errors,
        });
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"accepted": accepted, "ignored": batch.ignored})),
    ))
}

/// The media type of the body, lowercase and without parameters.
fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("text/plain")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The records of one JSON body: an array, the array under `logs`,
/// `records` or `events`, or the body itself.
fn json_items(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        Value::Object(mut map) => {
            match ["logs", "records", "events"]
                .iter()
                .find_map(|k| match map.remove(*k) {
                    Some(Value::Array(a)) => Some(a),
                    _ => None,
                }) {
                Some(items) => items,
                None => vec![Value::Object(map)],
            }
        }
        other => vec![other],
    }
}

fn queue_full() -> ApiError {
    ApiError::Unavailable {
        retry_after_secs: 1,
        detail: "the pipeline is full; retry the whole batch later".into(),
    }
}

/// Hands the whole batch to the pipeline, or none of it.
async fn enqueue(state: &AppState, events: Vec<Box<ThreatEvent>>) -> Result<(), ApiError> {
    let accepted = events.len();
    if !state.pipeline.has_room(accepted) {
        state
            .ingest
            .metrics()
            .dropped("queue_full")
            .inc_by(accepted as u64);
        return Err(queue_full());
    }
    // Room was checked above; a race for the last slots waits briefly
    // rather than dropping what was promised room.
    match tokio::time::timeout(Duration::from_secs(1), state.pipeline.send_batch(events)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(Closed)) => Err(ApiError::Unavailable {
            retry_after_secs: 5,
            detail: "shutting down".into(),
        }),
        Err(_) => {
            state.ingest.metrics().dropped("queue_full").inc();
            Err(queue_full())
        }
    }
}

#[derive(Default)]
struct Batch {
    events: Vec<Box<ThreatEvent>>,
    ignored: usize,
    errors: Vec<(usize, String)>,
}

impl Batch {
    /// A JSON document of one or more records.
    fn json_body(&mut self, state: &AppState, body: &[u8]) -> Result<(), ApiError> {
        if json::depth_exceeds(body, state.max_json_depth) {
            return Err(too_deep(state, None));
        }
        let value: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                state.ingest.failure(&json_error(&e), body);
                return Err(ApiError::BadRequest(format!("body is not valid JSON: {e}")));
            }
        };
        for (i, item) in json_items(value).into_iter().enumerate() {
            self.json_item(state, i + 1, item);
        }
        Ok(())
    }

    /// One JSON record a line.
    fn json_lines(&mut self, state: &AppState, body: &[u8]) -> Result<(), ApiError> {
        if let Some((i, _)) =
            lines(body).find(|(_, line)| json::depth_exceeds(line, state.max_json_depth))
        {
            return Err(too_deep(state, Some(i)));
        }
        for (i, line) in lines(body) {
            match serde_json::from_slice::<Value>(line) {
                Ok(item) => self.json_item(state, i, item),
                Err(e) => {
                    state.ingest.failure(&json_error(&e), line);
                    self.errors.push((i, format!("not valid JSON: {e}")));
                }
            }
        }
        Ok(())
    }

    fn record(&mut self, state: &AppState, line: usize, record: &[u8]) {
        match state.ingest.record(record) {
            Outcome::Event(ev) => self.events.push(ev),
            Outcome::Ignored => self.ignored += 1,
            Outcome::Failed(e) => self.errors.push((line, e.to_string())),
        }
    }

    fn json_item(&mut self, state: &AppState, line: usize, item: Value) {
        match item {
            Value::String(s) => self.record(state, line, s.as_bytes()),
            Value::Object(ref map) if normalized::looks_normalized(map) => {
                match state.ingest.normalized(item) {
                    Outcome::Event(ev) => self.events.push(ev),
                    Outcome::Ignored => self.ignored += 1,
                    Outcome::Failed(e) => self.errors.push((line, e.to_string())),
                }
            }
            Value::Object(ref map) => {
                if let Some(Value::String(raw)) =
                    ["message", "log", "raw"].iter().find_map(|k| map.get(*k))
                {
                    self.record(state, line, raw.as_bytes());
                } else {
                    // An EVE record (or garbage the EVE parser will name).
                    let text = item.to_string();
                    self.record(state, line, text.as_bytes());
                }
            }
            _ => {
                let err = ParseError::Malformed {
                    format: "json",
                    reason: "expected an object or a string".into(),
                };
                state.ingest.failure(&err, b"");
                self.errors.push((line, err.to_string()));
            }
        }
    }
}

/// The 422 for a body (or the NDJSON line `line`) nested deeper than
/// `api.max_json_depth`, counted as a malformed record.
fn too_deep(state: &AppState, line: Option<usize>) -> ApiError {
    let max = state.max_json_depth;
    let detail = match line {
        Some(i) => format!(
            "line {i} nests arrays and objects deeper than {max} levels (api.max_json_depth); \
             nothing of the batch was accepted"
        ),
        None => format!(
            "the body nests arrays and objects deeper than {max} levels (api.max_json_depth)"
        ),
    };
    let err = ParseError::Malformed {
        format: "json",
        reason: format!("nested deeper than {max} levels"),
    };
    state.ingest.metrics().received.inc();
    state.ingest.failure(&err, b"");
    ApiError::Unprocessable(detail)
}

fn json_error(e: &serde_json::Error) -> ParseError {
    ParseError::Malformed {
        format: "json",
        reason: e.to_string(),
    }
}

/// Non-empty lines with their 1-based numbers.
fn lines(body: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    body.split(|b| *b == b'\n')
        .enumerate()
        .filter_map(|(i, line)| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            (!line.iter().all(u8::is_ascii_whitespace)).then_some((i + 1, line))
        })
}
