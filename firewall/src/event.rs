//! The normalized event: one type for everything that can trigger a playbook.
//!
//! Field names follow the Elastic Common Schema, serialized flat with dotted
//! keys (`"source.ip"`), so that NDJSON output drops straight into a SIEM and
//! security engineers already know the names. Every field that the input did
//! not carry is `None` and absent from the JSON, never an empty string.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// Short strings (zones, actions, applications) stay inline: no allocation on
/// the parse hot path for the common case.
pub type Str = CompactString;

/// What kind of thing happened (`event.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A threat detection (PAN-OS THREAT, Suricata alert/drop).
    Alert,
    /// A plain event such as a PAN-OS TRAFFIC log.
    Event,
    /// A call from a SOAR platform to one of Riposte's webhooks.
    Webhook,
    /// A synthetic event fired by a playbook's cron schedule.
    Schedule,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Alert => "alert",
            EventKind::Event => "event",
            EventKind::Webhook => "webhook",
            EventKind::Schedule => "schedule",
        }
    }
}

/// Which product produced the event (`event.module`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventModule {
    Panos,
    Suricata,
    /// Events Riposte makes itself: webhooks and schedules.
    Riposte,
}

impl EventModule {
    pub fn as_str(self) -> &'static str {
        match self {
            EventModule::Panos => "panos",
            EventModule::Suricata => "suricata",
            EventModule::Riposte => "riposte",
        }
    }
}

/// PAN-OS severity scale, shared by every format (`threat.severity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// `event.severity`: 1 (informational) to 5 (critical).
    pub fn score(self) -> u8 {
        self as u8 + 1
    }

    pub fn from_score(score: u8) -> Option<Severity> {
        Some(match score {
            1 => Severity::Informational,
            2 => Severity::Low,
            3 => Severity::Medium,
            4 => Severity::High,
            5 => Severity::Critical,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Informational => "informational",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses the names firewalls send, in any letter case; `info` and
    /// `informational` are the same level.
    pub fn parse(s: &str) -> Option<Severity> {
        let s = s.trim();
        let eq = |name: &str| s.eq_ignore_ascii_case(name);
        Some(if eq("informational") || eq("info") {
            Severity::Informational
        } else if eq("low") {
            Severity::Low
        } else if eq("medium") {
            Severity::Medium
        } else if eq("high") {
            Severity::High
        } else if eq("critical") {
            Severity::Critical
        } else {
            return None;
        })
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `network.direction` as the firewall reports it for the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    #[serde(rename = "client-to-server")]
    ClientToServer,
    #[serde(rename = "server-to-client")]
    ServerToClient,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::ClientToServer => "client-to-server",
            Direction::ServerToClient => "server-to-client",
        }
    }

    /// Accepts PAN-OS (`client-to-server`), Strata Logging Service
    /// (`client to server`) and numeric (`0`/`1`) spellings.
    pub fn parse(s: &str) -> Option<Direction> {
        let s = s.trim();
        let norm = |c: u8| {
            if c == b' ' || c == b'_' {
                b'-'
            } else {
                c.to_ascii_lowercase()
            }
        };
        let eq = |name: &str| {
            s.len() == name.len() && s.bytes().zip(name.bytes()).all(|(a, b)| norm(a) == b)
        };
        if eq("client-to-server") || s == "0" {
            Some(Direction::ClientToServer)
        } else if eq("server-to-client") || s == "1" {
            Some(Direction::ServerToClient)
        } else {
            None
        }
    }
}

/// The Kubernetes pod behind an address, filled by enrichment before
/// playbooks run. Lives here so that every room shares one shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodContext {
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub namespace_labels: BTreeMap<String, String>,
}

/// One normalized event. See the module docs for the naming rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreatEvent {
    /// When the firewall generated the log (PAN-OS "Generated Time", or the
    /// high-resolution timestamp when the line carries one).
    #[serde(rename = "@timestamp")]
    pub timestamp: DateTime<Utc>,
    /// Stable id: a hash of the original record, so a replayed or redelivered
    /// log gets the same id and the same idempotent actions.
    #[serde(rename = "event.id")]
    pub id: Str,
    #[serde(rename = "event.kind")]
    pub kind: EventKind,
    #[serde(rename = "event.module")]
    pub module: EventModule,
    /// `panos.threat`, `panos.traffic`, `suricata.alert`, `suricata.drop`, …
    #[serde(rename = "event.dataset")]
    pub dataset: Str,
    /// The firewall's action as sent: alert, drop, reset-both, block-url, …
    #[serde(
        rename = "event.action",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub action: Option<Str>,
    /// 1 (informational) … 5 (critical).
    #[serde(
        rename = "event.severity",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub severity: Option<u8>,
    /// When the firewall's management plane received the log (PAN-OS
    /// "Receive Time").
    #[serde(
        rename = "event.created",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub created: Option<DateTime<Utc>>,

    #[serde(
        rename = "threat.severity",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub threat_severity: Option<Severity>,
    /// PAN-OS subtype (url, virus, spyware, vulnerability, file, scan, flood,
    /// packet, data, wildfire, wildfire-virus, …).
    #[serde(
        rename = "threat.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub threat_type: Option<Str>,
    #[serde(rename = "threat.id", default, skip_serializing_if = "Option::is_none")]
    pub threat_id: Option<u64>,
    /// Threat name without the PAN-OS `(id)` suffix; Suricata's signature.
    #[serde(
        rename = "threat.name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub threat_name: Option<Str>,
    /// PAN-OS threat category (command-and-control, …) or Suricata category.
    #[serde(
        rename = "threat.category",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub threat_category: Option<Str>,

    #[serde(rename = "observer.vendor")]
    pub observer_vendor: Str,
    #[serde(rename = "observer.product")]
    pub observer_product: Str,
    #[serde(
        rename = "observer.serial_number",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub observer_serial_number: Option<Str>,
    #[serde(
        rename = "observer.hostname",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub observer_hostname: Option<Str>,
    #[serde(
        rename = "observer.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub observer_version: Option<Str>,
    #[serde(
        rename = "observer.ingress.interface.name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub observer_ingress_interface: Option<Str>,
    #[serde(
        rename = "observer.egress.interface.name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub observer_egress_interface: Option<Str>,

    #[serde(rename = "source.ip", default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<IpAddr>,
    #[serde(
        rename = "source.port",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_port: Option<u16>,
    #[serde(
        rename = "source.zone",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_zone: Option<Str>,
    #[serde(
        rename = "source.user",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_user: Option<Str>,
    #[serde(
        rename = "source.nat.ip",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_nat_ip: Option<IpAddr>,
    #[serde(
        rename = "source.nat.port",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_nat_port: Option<u16>,
    #[serde(
        rename = "source.geo.name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_location: Option<Str>,
    #[serde(
        rename = "source.pod",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_pod: Option<Arc<PodContext>>,

    #[serde(
        rename = "destination.ip",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_ip: Option<IpAddr>,
    #[serde(
        rename = "destination.port",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_port: Option<u16>,
    #[serde(
        rename = "destination.zone",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_zone: Option<Str>,
    #[serde(
        rename = "destination.user",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_user: Option<Str>,
    #[serde(
        rename = "destination.nat.ip",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_nat_ip: Option<IpAddr>,
    #[serde(
        rename = "destination.nat.port",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_nat_port: Option<u16>,
    #[serde(
        rename = "destination.geo.name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_location: Option<Str>,
    #[serde(
        rename = "destination.pod",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_pod: Option<Arc<PodContext>>,

    /// tcp, udp, icmp, …
    #[serde(
        rename = "network.transport",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub network_transport: Option<Str>,
    /// The firewall's App-ID (web-browsing, ssl, dns, …).
    #[serde(
        rename = "network.application",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub network_application: Option<Str>,
    /// Application-layer protocol as Suricata names it (`app_proto`).
    #[serde(
        rename = "network.protocol",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub network_protocol: Option<Str>,
    #[serde(
        rename = "network.direction",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub network_direction: Option<Direction>,

    #[serde(rename = "rule.name", default, skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<Str>,
    #[serde(rename = "rule.uuid", default, skip_serializing_if = "Option::is_none")]
    pub rule_uuid: Option<Str>,
    #[serde(
        rename = "url.original",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub url_original: Option<String>,
    #[serde(rename = "file.name", default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    #[serde(
        rename = "file.hash.sha256",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub file_hash_sha256: Option<Str>,
    #[serde(
        rename = "user_agent.original",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub user_agent: Option<String>,
    #[serde(
        rename = "email.from.address",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub email_from: Option<String>,
    #[serde(
        rename = "email.subject",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub email_subject: Option<String>,

    /// PAN-OS log type as sent (THREAT, TRAFFIC).
    #[serde(
        rename = "panos.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub panos_type: Option<Str>,
    /// PAN-OS subtype as sent (for TRAFFIC: start, end, drop, deny).
    #[serde(
        rename = "panos.subtype",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub panos_subtype: Option<Str>,
    #[serde(
        rename = "panos.virtual_system",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub panos_virtual_system: Option<Str>,
    #[serde(
        rename = "panos.session_id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub panos_session_id: Option<u64>,
    #[serde(
        rename = "panos.sequence_number",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub panos_sequence_number: Option<u64>,
    #[serde(
        rename = "panos.repeat_count",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub panos_repeat_count: Option<u32>,

    /// Suricata's flow id, to correlate alerts of one flow.
    #[serde(
        rename = "suricata.flow_id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub suricata_flow_id: Option<u64>,
    /// Suricata's classtype description as the alert gave it (`A Network
    /// Trojan was detected`); `threat.type` and `threat.category` hold it
    /// mapped onto the PAN-OS names (see `eve::classtype`).
    #[serde(
        rename = "suricata.category",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub suricata_category: Option<Str>,
    /// Suricata rule metadata (`metadata` of the alert), key → values.
    #[serde(
        rename = "suricata.metadata",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub suricata_metadata: Option<BTreeMap<String, Vec<String>>>,

    /// CN-Series: the container the traffic belongs to, when it knows.
    #[serde(
        rename = "container.id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub container_id: Option<Str>,
    #[serde(
        rename = "orchestrator.namespace",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub orchestrator_namespace: Option<Str>,
    #[serde(
        rename = "orchestrator.resource.name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub orchestrator_resource_name: Option<Str>,

    /// For `event.kind: webhook`: the webhook's configured name.
    #[serde(
        rename = "webhook.name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub webhook_name: Option<Str>,
    /// For webhooks and schedules: the JSON payload handed to playbooks.
    #[serde(
        rename = "event.payload",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub payload: Option<serde_json::Value>,

    /// Problems that did not stop the parse (a garbled address, an unknown
    /// severity), so that a damaged threat log still reaches the playbooks
    /// and the damage stays visible.
    #[serde(
        rename = "error.message",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub error_message: Option<String>,

    /// The raw record as received, kept for the audit trail.
    #[serde(rename = "event.original")]
    pub original: Arc<str>,
}

impl ThreatEvent {
    /// An event with only the mandatory fields set; parsers fill the rest.
    pub fn new(
        kind: EventKind,
        module: EventModule,
        dataset: &str,
        timestamp: DateTime<Utc>,
        original: &str,
    ) -> ThreatEvent {
        // Built at compile time: no copy per event.
        let (vendor, product) = match module {
            EventModule::Panos => (
                Str::const_new("Palo Alto Networks"),
                Str::const_new("PAN-OS"),
            ),
            EventModule::Suricata => (Str::const_new("OISF"), Str::const_new("Suricata")),
            EventModule::Riposte => (Str::const_new("Riposte"), Str::const_new("Riposte")),
        };
        ThreatEvent {
            timestamp,
            id: event_id(original),
            kind,
            module,
            dataset: Str::new(dataset),
            action: None,
            severity: None,
            created: None,
            threat_severity: None,
            threat_type: None,
            threat_id: None,
            threat_name: None,
            threat_category: None,
            observer_vendor: vendor,
            observer_product: product,
            observer_serial_number: None,
            observer_hostname: None,
            observer_version: None,
            observer_ingress_interface: None,
            observer_egress_interface: None,
            source_ip: None,
            source_port: None,
            source_zone: None,
            source_user: None,
            source_nat_ip: None,
            source_nat_port: None,
            source_location: None,
            source_pod: None,
            destination_ip: None,
            destination_port: None,
            destination_zone: None,
            destination_user: None,
            destination_nat_ip: None,
            destination_nat_port: None,
            destination_location: None,
            destination_pod: None,
            network_transport: None,
            network_application: None,
            network_protocol: None,
            network_direction: None,
            rule_name: None,
            rule_uuid: None,
            url_original: None,
            file_name: None,
            file_hash_sha256: None,
            user_agent: None,
            email_from: None,
            email_subject: None,
            panos_type: None,
            panos_subtype: None,
            panos_virtual_system: None,
            panos_session_id: None,
            panos_sequence_number: None,
            panos_repeat_count: None,
            suricata_flow_id: None,
            suricata_category: None,
            suricata_metadata: None,
            container_id: None,
            orchestrator_namespace: None,
            orchestrator_resource_name: None,
            webhook_name: None,
            payload: None,
            error_message: None,
            original: Arc::from(original),
        }
    }

    /// Sets both severity fields from one level.
    pub fn set_severity(&mut self, severity: Severity) {
        self.threat_severity = Some(severity);
        self.severity = Some(severity.score());
    }

    /// Records a problem that did not stop the parse.
    pub fn warn(&mut self, field: &str, message: impl fmt::Display) {
        let msg = format!("{field}: {message}");
        match &mut self.error_message {
            Some(existing) => {
                existing.push_str("; ");
                existing.push_str(&msg);
            }
            None => self.error_message = Some(msg),
        }
    }

    /// Puts every address in canonical form ([`crate::addr::canonical`]):
    /// a log naming `::ffff:10.0.0.1` is about the IPv4 host, so triggers,
    /// pod lookups and playbooks see `10.0.0.1`.
    pub fn canonicalize_addresses(&mut self) {
        for ip in [
            &mut self.source_ip,
            &mut self.source_nat_ip,
            &mut self.destination_ip,
            &mut self.destination_nat_ip,
        ]
        .into_iter()
        .flatten()
        {
            *ip = crate::addr::canonical(*ip);
        }
    }

    /// The address that keys per-source ordering and counters: the source IP,
    /// or the unspecified address for events without one (webhooks).
    pub fn partition_key(&self) -> IpAddr {
        self.source_ip
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }
}

/// A 128-bit xxh3 of the record, hex encoded: stable across processes and
/// versions, cheap (tens of nanoseconds for a kilobyte line).
pub fn event_id(original: &str) -> Str {
    /// Word-aligned, so that checking the digits are UTF-8 takes the
    /// eight-bytes-at-a-time path.
    #[repr(align(8))]
    struct Digits([u8; 32]);
    let h = twox_hash::XxHash3_128::oneshot(original.as_bytes());
    let mut digits = Digits([0u8; 32]);
    for (out, half) in digits
        .0
        .chunks_exact_mut(16)
        .zip([(h >> 64) as u64, h as u64])
    {
        out.copy_from_slice(&hex_u64(half));
    }
    // The buffer holds only ASCII hex digits.
    Str::from_utf8(&digits.0[..]).unwrap_or_default()
}

/// The 16 lower-case hex digits of `x`, most significant first: each nibble
/// spread to its own byte, then turned into `0-9a-f` in one go.
fn hex_u64(x: u64) -> [u8; 16] {
    let spread = |x: u64| {
        let x = (x | x << 16) & 0x0000_ffff_0000_ffff;
        let x = (x | x << 8) & 0x00ff_00ff_00ff_00ff;
        (x | x << 4) & 0x0f0f_0f0f_0f0f_0f0f
    };
    // Nibble `k` (from the least significant) now sits in byte `k`; the
    // text wants the most significant first.
    let digits = |n: u64| {
        let letters = ((n + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
        (n + 0x3030_3030_3030_3030 + letters * 0x27).swap_bytes()
    };
    let hi = digits(spread(x >> 32)).to_le_bytes();
    let lo = digits(spread(x & 0xffff_ffff)).to_le_bytes();
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&hi);
    out[8..].copy_from_slice(&lo);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_round_trips_through_score_and_name() {
        for s in [
            Severity::Informational,
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ] {
            assert_eq!(Severity::from_score(s.score()), Some(s));
            assert_eq!(Severity::parse(&s.as_str().to_ascii_uppercase()), Some(s));
        }
        assert_eq!(Severity::Critical.score(), 5);
        assert_eq!(
            Severity::parse("Informational"),
            Some(Severity::Informational)
        );
        assert_eq!(Severity::parse("severe"), None);
    }

    #[test]
    fn direction_accepts_every_spelling() {
        assert_eq!(
            Direction::parse("client to server"),
            Some(Direction::ClientToServer)
        );
        assert_eq!(
            Direction::parse("Server-To-Client"),
            Some(Direction::ServerToClient)
        );
        assert_eq!(Direction::parse("sideways"), None);
    }

    #[test]
    fn json_uses_dotted_names_and_omits_missing_values() {
        let mut ev = ThreatEvent::new(
            EventKind::Alert,
            EventModule::Panos,
            "panos.threat",
            DateTime::from_timestamp(0, 0).unwrap_or_default(),
            "raw line",
        );
        ev.source_ip = Some("10.244.1.17".parse().expect("ip"));
        ev.set_severity(Severity::Critical);
        let json = serde_json::to_value(&ev).expect("serialize");
        assert_eq!(json["source.ip"], "10.244.1.17");
        assert_eq!(json["event.severity"], 5);
        assert_eq!(json["threat.severity"], "critical");
        assert_eq!(json["event.original"], "raw line");
        assert!(json.get("destination.ip").is_none());
        let back: ThreatEvent = serde_json::from_value(json).expect("deserialize");
        assert_eq!(back, ev);
    }

    #[test]
    fn event_id_is_stable_and_distinct() {
        assert_eq!(event_id("a"), event_id("a"));
        assert_ne!(event_id("a"), event_id("b"));
        assert_eq!(event_id("a").len(), 32);
        // The same id as every earlier release: replayed logs keep their
        // idempotency keys across upgrades.
        for line in [
            "",
            "a",
            "raw line",
            &"1,2024/08/19 13:58:33,THREAT,".repeat(40),
        ] {
            let h = xxhash_rust::xxh3::xxh3_128(line.as_bytes());
            assert_eq!(event_id(line), format!("{h:032x}"), "{line}");
        }
    }

    proptest::proptest! {
        /// Every XXH3 size class (0, 1-3, 4-8, 9-16, 17-128, 129-240 and
        /// longer inputs) gives the id earlier releases gave.
        #[test]
        fn event_id_matches_xxh3_128_at_every_length(line in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000)) {
            let line = String::from_utf8_lossy(&line);
            let h = xxhash_rust::xxh3::xxh3_128(line.as_bytes());
            proptest::prop_assert_eq!(event_id(&line), format!("{h:032x}"));
        }
    }

    #[test]
    fn hex_digits_cover_every_nibble() {
        assert_eq!(&hex_u64(0x0123_4567_89ab_cdef), b"0123456789abcdef");
        assert_eq!(&hex_u64(u64::MAX), b"ffffffffffffffff");
        assert_eq!(&hex_u64(0), b"0000000000000000");
        assert_eq!(&hex_u64(0xfedc_ba98_7654_3210), b"fedcba9876543210");
    }
}
