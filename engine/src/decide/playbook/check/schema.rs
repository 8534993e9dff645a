//! The `event.…` paths a script can read, and the type of each, derived
//! from the event itself: [`full_event`] fills every field of
//! `riposte_firewall::ThreatEvent` (a struct literal without `..`, so a new
//! field does not compile until it is added here), and the schema is what
//! [`event_map`] makes of it. The paths scripts see and the paths the
//! checker accepts therefore cannot drift apart.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use chrono::DateTime;
use rhai::{Dynamic, Map};
use riposte_firewall::{Direction, EventKind, EventModule, PodContext, Severity, ThreatEvent};

use crate::decide::playbook::event_map::{event_map, PodMaps};

/// What a path holds, in the playbook language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Number,
    Bool,
    Map,
    Array,
    /// `()`: nothing.
    Unit,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "a string",
            Kind::Number => "a number",
            Kind::Bool => "a boolean",
            Kind::Map => "a map",
            Kind::Array => "an array",
            Kind::Unit => "()",
        }
    }

    pub fn of(d: &Dynamic) -> Kind {
        if d.is_string() {
            Kind::String
        } else if d.is_int() || d.is_float() {
            Kind::Number
        } else if d.is_bool() {
            Kind::Bool
        } else if d.is_map() {
            Kind::Map
        } else if d.is_array() {
            Kind::Array
        } else {
            Kind::Unit
        }
    }
}

/// Maps whose keys come from the data (labels, a webhook's body): any key
/// below them is accepted.
pub const OPEN: &[&str] = &[
    "payload",
    "webhook.body",
    "suricata.metadata",
    "source.pod.labels",
    "source.pod.namespace_labels",
    "destination.pod.labels",
    "destination.pod.namespace_labels",
];

/// Every path below `event` (`source.ip`, `source.pod`, …) and its kind.
#[derive(Debug)]
pub struct Schema {
    pub paths: BTreeMap<String, Kind>,
}

impl Schema {
    /// The schema, built once per process.
    pub fn get() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(|| {
            let mut paths = BTreeMap::new();
            let map = event_map(&full_event(), &PodMaps::new(4));
            collect("", &map, &mut paths);
            for open in OPEN {
                paths.retain(|p: &String, _| !p.starts_with(&format!("{open}.")));
            }
            Schema { paths }
        })
    }

    /// The kind at `path`, or `None` when no event has it; `Some(None)`
    /// for a path under an open map (any key, kind unknown).
    pub fn lookup(&self, path: &str) -> Option<Option<Kind>> {
        if let Some(k) = self.paths.get(path) {
            return Some(Some(*k));
        }
        OPEN.iter()
            .any(|o| path.starts_with(&format!("{o}.")))
            .then_some(None)
    }

    /// The closest known paths to a wrong one, for "did you mean".
    pub fn suggest(&self, path: &str) -> Option<String> {
        // The same leaf under another group is the usual mistake
        // (`file.sha256` for `file.hash.sha256`).
        let leaf = path.rsplit('.').next().unwrap_or(path);
        let first = path.split('.').next().unwrap_or(path);
        let same_leaf = self
            .paths
            .keys()
            .filter(|p| p.starts_with(first) && p.rsplit('.').next() == Some(leaf))
            .min_by_key(|p| p.len());
        if let Some(p) = same_leaf {
            return Some(p.clone());
        }
        super::domains::closest(path, self.paths.keys().map(String::as_str))
    }
}

fn collect(prefix: &str, map: &Map, out: &mut BTreeMap<String, Kind>) {
    for (k, v) in map {
        let path = if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        };
        out.insert(path.clone(), Kind::of(v));
        if let Some(m) = v.read_lock::<Map>() {
            collect(&path, &m, out);
        }
    }
}

fn pod() -> Arc<PodContext> {
    Arc::new(PodContext {
        namespace: "ns".into(),
        name: "pod".into(),
        uid: "uid".into(),
        labels: BTreeMap::from([("app".into(), "x".into())]),
        owner_kind: Some("ReplicaSet".into()),
        owner_name: Some("x".into()),
        node: Some("node".into()),
        service_account: Some("sa".into()),
        phase: Some("Running".into()),
        namespace_labels: BTreeMap::from([("team".into(), "x".into())]),
    })
}

/// An event with every field set. A struct literal on purpose: a field
/// added to `ThreatEvent` breaks the build here until the schema knows it.
pub fn full_event() -> ThreatEvent {
    let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    let ip = |s: &str| s.parse().ok();
    ThreatEvent {
        timestamp: at,
        id: "id".into(),
        kind: EventKind::Alert,
        module: EventModule::Panos,
        dataset: "panos.threat".into(),
        action: Some("alert".into()),
        severity: Some(4),
        created: Some(at),
        threat_severity: Some(Severity::High),
        threat_type: Some("spyware".into()),
        threat_id: Some(1),
        threat_name: Some("x".into()),
        threat_category: Some("command-and-control".into()),
        observer_vendor: "v".into(),
        observer_product: "p".into(),
        observer_serial_number: Some("s".into()),
        observer_hostname: Some("h".into()),
        observer_version: Some("v".into()),
        observer_ingress_interface: Some("i".into()),
        observer_egress_interface: Some("e".into()),
        source_ip: ip("10.0.0.1"),
        source_port: Some(1),
        source_zone: Some("z".into()),
        source_user: Some("u".into()),
        source_nat_ip: ip("10.0.0.2"),
        source_nat_port: Some(2),
        source_location: Some("l".into()),
        source_pod: Some(pod()),
        destination_ip: ip("10.0.0.3"),
        destination_port: Some(3),
        destination_zone: Some("z".into()),
        destination_user: Some("u".into()),
        destination_nat_ip: ip("10.0.0.4"),
        destination_nat_port: Some(4),
        destination_location: Some("l".into()),
        destination_pod: Some(pod()),
        network_transport: Some("tcp".into()),
        network_application: Some("a".into()),
        network_protocol: Some("p".into()),
        network_direction: Some(Direction::ClientToServer),
        rule_name: Some("r".into()),
        rule_uuid: Some("u".into()),
        url_original: Some("u".into()),
        file_name: Some("f".into()),
        file_hash_sha256: Some("00".into()),
        user_agent: Some("ua".into()),
        email_from: Some("a@b".into()),
        email_subject: Some("s".into()),
        panos_type: Some("THREAT".into()),
        panos_subtype: Some("spyware".into()),
        panos_virtual_system: Some("vsys1".into()),
        panos_session_id: Some(1),
        panos_sequence_number: Some(1),
        panos_repeat_count: Some(1),
        suricata_flow_id: Some(1),
        suricata_category: Some("A Network Trojan was detected".into()),
        suricata_metadata: Some(BTreeMap::from([("k".into(), vec!["v".into()])])),
        container_id: Some("c".into()),
        orchestrator_namespace: Some("ns".into()),
        orchestrator_resource_name: Some("r".into()),
        webhook_name: Some("w".into()),
        payload: Some(serde_json::json!({ "k": "v" })),
        error_message: Some("e".into()),
        original: Arc::from("x"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_event_sets_every_field_serde_knows() {
        // Every field serializes (none is a skipped `None`): the schema
        // sees every group a real event can carry.
        let json = serde_json::to_value(full_event()).expect("serializes");
        let obj = json.as_object().expect("object");
        let fields = obj.len();
        // Every field of ThreatEvent; adding one breaks `full_event` first.
        assert!(obj.values().all(|v| !v.is_null()), "{obj:?}");
        assert_eq!(fields, 64, "{:?}", obj.keys().collect::<Vec<_>>());
    }

    #[test]
    fn the_schema_has_the_documented_paths_and_kinds() {
        let s = Schema::get();
        for (path, kind) in [
            ("source.ip", Kind::String),
            ("source.port", Kind::Number),
            ("file.hash.sha256", Kind::String),
            ("threat.id", Kind::Number),
            ("threat.severity", Kind::String),
            ("severity", Kind::Number),
            ("source.pod", Kind::Map),
            ("destination.pod.namespace", Kind::String),
            ("source.nat.ip", Kind::String),
            ("source.geo.name", Kind::String),
            ("observer.ingress.interface.name", Kind::String),
            ("email.from.address", Kind::String),
            ("webhook.body", Kind::Map),
            ("suricata.category", Kind::String),
        ] {
            assert_eq!(s.lookup(path), Some(Some(kind)), "{path}");
        }
        assert_eq!(s.lookup("file.sha256"), None);
        assert_eq!(s.lookup("original"), None);
        assert_eq!(
            s.lookup("source.pod.labels.app.kubernetes.io/name"),
            Some(None)
        );
        assert_eq!(
            s.suggest("file.sha256").as_deref(),
            Some("file.hash.sha256")
        );
        for open in OPEN {
            assert_eq!(s.paths.get(*open), Some(&Kind::Map), "{open}");
        }
    }
}
