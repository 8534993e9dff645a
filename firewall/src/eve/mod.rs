//! Suricata EVE JSON, one record per line.
//!
//! `alert` and `drop` records (a drop may carry the alert that caused it)
//! become alerts of module `suricata`, datasets `suricata.alert` and
//! `suricata.drop`. Every other `event_type` (flow, stats, dns, http, tls,
//! fileinfo, anomaly, netflow, …) is valid and ignored.
//!
//! Mapping notes:
//! - `alert.severity` is Suricata's priority: 1 is high, 2 medium, 3 low,
//!   4 and beyond informational. (Suricata has no "critical".)
//! - `direction` (`to_server` / `to_client`, Suricata 7) is the direction of
//!   the packet that matched, relative to the flow: client-to-server or
//!   server-to-client.
//! - `url.original` is `http.url` made absolute with `http.hostname` (and
//!   `http_port` when not 80), `http://` as Suricata only sees cleartext HTTP.
//! - A drop without an `alert.action` has the action `blocked`.
//!
//! The record is read twice: once for its type only, skipping every value,
//! and, for alerts and drops, once into typed borrowing structs. The common
//! case, a record to ignore, thus costs one scan; nesting is bounded by
//! serde_json's recursion limit (128).

pub mod classtype;
mod record;

use std::borrow::Cow;

use serde::de::IgnoredAny;

use crate::cef::panos_kv::{clip, ip};
use crate::syslog::timestamp;
use crate::{
    Direction, EventKind, EventModule, Ignored, ParseError, ParseOptions, Parsed, RecordContext,
    Severity, Str, ThreatEvent,
};
use record::{Kind, Record};

const FORMAT: &str = "eve";

/// Parses one EVE line.
pub fn parse(
    payload: &str,
    ctx: &RecordContext<'_>,
    _opts: &ParseOptions,
) -> Result<Parsed, ParseError> {
    let text = payload.trim();
    if !text.starts_with('{') {
        return Err(not_an_object(text));
    }
    let kind: Kind<'_> = serde_json::from_str(text).map_err(json_error)?;
    let event_type = kind
        .event_type
        .ok_or_else(|| ParseError::field(FORMAT, "event_type", "missing"))?;
    let dataset = match &*event_type {
        "alert" => "suricata.alert",
        "drop" => "suricata.drop",
        other => {
            return Ok(Parsed::Ignored(Ignored {
                format: FORMAT,
                kind: other.to_string(),
            }))
        }
    };
    let rec: Record<'_> = serde_json::from_str(text).map_err(json_error)?;
    let raw_time = rec
        .timestamp
        .as_deref()
        .ok_or_else(|| ParseError::field(FORMAT, "timestamp", "missing"))?;
    let at = timestamp::parse_rfc3339(raw_time).ok_or_else(|| {
        ParseError::field(
            FORMAT,
            "timestamp",
            format!(
                "`{}` is not a timestamp like 2021-06-03T10:00:01.123456+0000",
                clip(raw_time)
            ),
        )
    })?;

    let mut ev = ThreatEvent::new(
        EventKind::Alert,
        EventModule::Suricata,
        dataset,
        at,
        ctx.original,
    );
    ev.source_ip = ip(&mut ev, "source.ip", rec.src_ip.as_deref());
    ev.destination_ip = ip(&mut ev, "destination.ip", rec.dest_ip.as_deref());
    ev.source_port = rec.src_port;
    ev.destination_port = rec.dest_port;
    ev.network_transport = lower(rec.proto.as_deref());
    ev.network_protocol = lower(rec.app_proto.as_deref());
    ev.observer_ingress_interface = text_of(rec.in_iface.as_deref());
    ev.observer_hostname = text_of(rec.host.as_deref()).or_else(|| text_of(ctx.hostname));
    ev.suricata_flow_id = rec.flow_id;
    ev.network_direction = match rec.direction.as_deref() {
        Some("to_server") => Some(Direction::ClientToServer),
        Some("to_client") => Some(Direction::ServerToClient),
        _ => None,
    };

    if let Some(alert) = rec.alert {
        alert_fields(&mut ev, alert);
    }
    if ev.action.is_none() && dataset == "suricata.drop" {
        ev.action = Some(Str::new("blocked"));
    }

    if let Some(http) = &rec.http {
        ev.url_original = http_url(
            http.hostname.as_deref(),
            http.http_port,
            http.url.as_deref(),
        );
        ev.user_agent = owned(http.http_user_agent.as_ref());
    }
    let file = rec
        .fileinfo
        .iter()
        .chain(rec.files.iter().flatten())
        .find(|f| f.filename.as_deref().is_some_and(|n| !n.is_empty()));
    if let Some(file) = file {
        ev.file_name = owned(file.filename.as_ref());
        ev.file_hash_sha256 = text_of(file.sha256.as_deref());
    }
    Ok(Parsed::Event(Box::new(ev)))
}

/// What an alert says: the signature, the action, the severity, and the
/// classtype mapped onto `threat.type` / `threat.category`.
fn alert_fields(ev: &mut ThreatEvent, alert: record::Alert<'_>) {
    ev.action = text_of(alert.action.as_deref());
    ev.threat_name = text_of(alert.signature.as_deref());
    ev.threat_id = alert.signature_id;
    ev.suricata_category = text_of(alert.category.as_deref());
    if let Some((ty, category)) = alert.category.as_deref().and_then(classtype::map) {
        ev.threat_type = Some(Str::new(ty));
        ev.threat_category = category.map(Str::new);
    }
    match alert.severity.map(severity) {
        Some(Some(level)) => ev.set_severity(level),
        Some(None) => ev.warn(
            "event.severity",
            "alert.severity 0 is not a Suricata priority",
        ),
        None => {}
    }
    ev.suricata_metadata = alert.metadata.map(|m| m.0).filter(|m| !m.is_empty());
}

/// Suricata's priority (1 = most severe) on the five-level scale.
fn severity(priority: u64) -> Option<Severity> {
    Some(match priority {
        0 => return None,
        1 => Severity::High,
        2 => Severity::Medium,
        3 => Severity::Low,
        _ => Severity::Informational,
    })
}

fn http_url(hostname: Option<&str>, port: Option<u16>, url: Option<&str>) -> Option<String> {
    let url = url.filter(|u| !u.is_empty());
    let hostname = hostname.filter(|h| !h.is_empty());
    match (hostname, url) {
        (_, Some(url)) if url.contains("://") => Some(url.to_string()),
        (Some(host), Some(url)) => {
            let path = if url.starts_with('/') {
                Cow::Borrowed(url)
            } else {
                Cow::Owned(format!("/{url}"))
            };
            Some(match port {
                Some(p) if p != 80 => format!("http://{host}:{p}{path}"),
                _ => format!("http://{host}{path}"),
            })
        }
        (Some(host), None) => Some(format!("http://{host}/")),
        (None, Some(url)) => Some(url.to_string()),
        (None, None) => None,
    }
}

fn text_of(s: Option<&str>) -> Option<Str> {
    s.filter(|s| !s.is_empty()).map(Str::new)
}

fn lower(s: Option<&str>) -> Option<Str> {
    s.filter(|s| !s.is_empty())
        .map(|s| Str::from(s.to_ascii_lowercase()))
}

fn owned(s: Option<&Cow<'_, str>>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(|s| s.to_string())
}

fn json_error(e: serde_json::Error) -> ParseError {
    let what = match e.classify() {
        serde_json::error::Category::Data => "unexpected value in EVE record",
        _ => "invalid JSON",
    };
    ParseError::malformed(FORMAT, format!("{what}: {e}"))
}

/// A record that does not start with `{`: invalid JSON is reported as such
/// (with serde's line and column), valid JSON as the wrong kind of value.
fn not_an_object(text: &str) -> ParseError {
    match serde_json::from_str::<IgnoredAny>(text) {
        Err(e) => json_error(e),
        Ok(_) => {
            let found = match text.as_bytes().first() {
                Some(b'[') => "an array",
                Some(b'"') => "a string",
                Some(b't' | b'f') => "a boolean",
                Some(b'n') => "null",
                _ => "a number",
            };
            ParseError::field(
                FORMAT,
                "record",
                format!("an EVE record is a JSON object, not {found}"),
            )
        }
    }
}

#[cfg(test)]
mod tests;
