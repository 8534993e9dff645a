//! The event as scripts see it: nested maps under the ECS names.
//!
//! `event.source.ip`, `event.threat.name`, `event.source.pod.namespace`, …
//! The ECS `event.*` group is the top level itself (`event.action`,
//! `event.kind`, `event.id`, `event.severity`), so scripts never write
//! `event.event`. A value the log did not carry is left out, and so is a
//! group with nothing in it: the sandbox reads any property of `()` as `()`,
//! so `event.source.nat.ip` is `()` whether `nat` or `ip` is missing, and an
//! event costs only the maps it fills. Addresses are strings, ports and ids
//! are integers. `event.original` is left out: the normalized fields are the
//! interface, and copying a kilobyte per run is not free.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Weak};

use dashmap::DashMap;
use rhai::{Dynamic, ImmutableString, Map};
use riposte_firewall::{PodContext, Str, ThreatEvent};

/// Pod maps already built, by the address of the pod index's shared
/// `PodContext`: the index hands out one `Arc` per pod, so a pod's map is
/// built once, not for every event. The `Weak` kept beside each entry pins
/// the allocation, so its address cannot be reused by another pod, and
/// makes `Arc::get_mut` refuse, so the context cannot change in place.
#[derive(Debug)]
pub struct PodMaps {
    maps: DashMap<usize, (Weak<PodContext>, Map)>,
    capacity: usize,
}

impl PodMaps {
    pub fn new(capacity: usize) -> PodMaps {
        PodMaps {
            maps: DashMap::new(),
            capacity: capacity.max(1),
        }
    }

    fn get(&self, pod: &Arc<PodContext>) -> Map {
        let key = Arc::as_ptr(pod) as usize;
        if let Some(entry) = self.maps.get(&key) {
            return entry.1.clone();
        }
        let map = pod_map(pod);
        if self.maps.len() >= self.capacity {
            // Pods that are gone first; if all are alive, start over.
            self.maps.retain(|_, (weak, _)| weak.strong_count() > 0);
            if self.maps.len() >= self.capacity {
                self.maps.clear();
            }
        }
        self.maps.insert(key, (Arc::downgrade(pod), map.clone()));
        map
    }
}

impl Default for PodMaps {
    fn default() -> Self {
        PodMaps::new(16_384)
    }
}

/// Builds the script's `event` map.
pub fn event_map(ev: &ThreatEvent, pods: &PodMaps) -> Map {
    let mut m = top_level(ev);
    group(&mut m, "threat", threat(ev));
    group(
        &mut m,
        "source",
        endpoint(
            ev.source_ip,
            ev.source_port,
            &ev.source_zone,
            &ev.source_user,
            ev.source_nat_ip,
            ev.source_nat_port,
            &ev.source_location,
            ev.source_pod.as_ref().map(|p| pods.get(p)),
        ),
    );
    group(
        &mut m,
        "destination",
        endpoint(
            ev.destination_ip,
            ev.destination_port,
            &ev.destination_zone,
            &ev.destination_user,
            ev.destination_nat_ip,
            ev.destination_nat_port,
            &ev.destination_location,
            ev.destination_pod.as_ref().map(|p| pods.get(p)),
        ),
    );

    group(&mut m, "network", network(ev));
    group(&mut m, "observer", observer(ev));
    content_groups(&mut m, ev);
    group(&mut m, "panos", panos(ev));
    group(&mut m, "suricata", suricata(ev));
    cluster_groups(&mut m, ev);
    let webhook = webhook(ev, &m);
    group(&mut m, "webhook", webhook);
    m
}

/// The ECS `event.*` fields, which are the map's top level, and `error`.
fn top_level(ev: &ThreatEvent) -> Map {
    let mut m = Map::new();
    m.insert("id".into(), s(&ev.id));
    m.insert(
        "kind".into(),
        Dynamic::from(ImmutableString::from(ev.kind.as_str())),
    );
    m.insert(
        "module".into(),
        Dynamic::from(ImmutableString::from(ev.module.as_str())),
    );
    m.insert("dataset".into(), s(&ev.dataset));
    m.insert("timestamp".into(), Dynamic::from(ev.timestamp.to_rfc3339()));
    m.insert("epoch".into(), Dynamic::from_int(ev.timestamp.timestamp()));
    opt_str(&mut m, "action", &ev.action);
    if let Some(sev) = ev.severity {
        m.insert("severity".into(), Dynamic::from_int(i64::from(sev)));
    }
    if let Some(created) = ev.created {
        m.insert("created".into(), Dynamic::from(created.to_rfc3339()));
    }
    if let Some(payload) = &ev.payload {
        if let Ok(d) = rhai::serde::to_dynamic(payload) {
            m.insert("payload".into(), d);
        }
    }
    if let Some(msg) = &ev.error_message {
        let mut e = Map::new();
        e.insert("message".into(), Dynamic::from(msg.clone()));
        group(&mut m, "error", e);
    }

    m
}

fn threat(ev: &ThreatEvent) -> Map {
    let mut threat = Map::new();
    if let Some(sev) = ev.threat_severity {
        threat.insert(
            "severity".into(),
            Dynamic::from(ImmutableString::from(sev.as_str())),
        );
    }
    opt_str(&mut threat, "type", &ev.threat_type);
    opt_str(&mut threat, "category", &ev.threat_category);
    opt_str(&mut threat, "name", &ev.threat_name);
    opt_u64(&mut threat, "id", ev.threat_id);
    threat
}

fn network(ev: &ThreatEvent) -> Map {
    let mut network = Map::new();
    opt_str(&mut network, "transport", &ev.network_transport);
    opt_str(&mut network, "application", &ev.network_application);
    opt_str(&mut network, "protocol", &ev.network_protocol);
    if let Some(d) = ev.network_direction {
        network.insert(
            "direction".into(),
            Dynamic::from(ImmutableString::from(d.as_str())),
        );
    }
    network
}

fn observer(ev: &ThreatEvent) -> Map {
    let mut observer = Map::new();
    observer.insert("vendor".into(), s(&ev.observer_vendor));
    observer.insert("product".into(), s(&ev.observer_product));
    opt_str(&mut observer, "serial_number", &ev.observer_serial_number);
    opt_str(&mut observer, "hostname", &ev.observer_hostname);
    opt_str(&mut observer, "version", &ev.observer_version);
    if let Some(name) = &ev.observer_ingress_interface {
        observer.insert("ingress".into(), nested("interface", "name", s(name)));
    }
    if let Some(name) = &ev.observer_egress_interface {
        observer.insert("egress".into(), nested("interface", "name", s(name)));
    }
    observer
}

/// What the traffic carried: `rule`, `url`, `file`, `user_agent`, `email`.
fn content_groups(m: &mut Map, ev: &ThreatEvent) {
    let mut rule = Map::new();
    opt_str(&mut rule, "name", &ev.rule_name);
    opt_str(&mut rule, "uuid", &ev.rule_uuid);
    group(m, "rule", rule);

    let mut url = Map::new();
    opt_string(&mut url, "original", &ev.url_original);
    group(m, "url", url);

    let mut file = Map::new();
    opt_string(&mut file, "name", &ev.file_name);
    if let Some(h) = &ev.file_hash_sha256 {
        let mut hash = Map::new();
        hash.insert("sha256".into(), s(h));
        file.insert("hash".into(), hash.into());
    }
    group(m, "file", file);

    let mut ua = Map::new();
    opt_string(&mut ua, "original", &ev.user_agent);
    group(m, "user_agent", ua);

    let mut email = Map::new();
    if let Some(from) = &ev.email_from {
        let mut f = Map::new();
        f.insert("address".into(), Dynamic::from(from.clone()));
        email.insert("from".into(), f.into());
    }
    opt_string(&mut email, "subject", &ev.email_subject);
    group(m, "email", email);
}

fn panos(ev: &ThreatEvent) -> Map {
    let mut panos = Map::new();
    opt_str(&mut panos, "type", &ev.panos_type);
    opt_str(&mut panos, "subtype", &ev.panos_subtype);
    opt_str(&mut panos, "virtual_system", &ev.panos_virtual_system);
    opt_u64(&mut panos, "session_id", ev.panos_session_id);
    opt_u64(&mut panos, "sequence_number", ev.panos_sequence_number);
    opt_u64(
        &mut panos,
        "repeat_count",
        ev.panos_repeat_count.map(u64::from),
    );
    panos
}

fn suricata(ev: &ThreatEvent) -> Map {
    let mut suricata = Map::new();
    opt_u64(&mut suricata, "flow_id", ev.suricata_flow_id);
    opt_str(&mut suricata, "category", &ev.suricata_category);
    if let Some(meta) = &ev.suricata_metadata {
        let mut md = Map::new();
        for (k, values) in meta {
            let arr: rhai::Array = values.iter().map(|v| Dynamic::from(v.clone())).collect();
            md.insert(k.as_str().into(), arr.into());
        }
        group(&mut suricata, "metadata", md);
    }
    suricata
}

/// Where in the cluster: `container`, `orchestrator`.
fn cluster_groups(m: &mut Map, ev: &ThreatEvent) {
    let mut container = Map::new();
    opt_str(&mut container, "id", &ev.container_id);
    group(m, "container", container);

    let mut orchestrator = Map::new();
    opt_str(&mut orchestrator, "namespace", &ev.orchestrator_namespace);
    if let Some(name) = &ev.orchestrator_resource_name {
        let mut r = Map::new();
        r.insert("name".into(), s(name));
        orchestrator.insert("resource".into(), r.into());
    }
    group(m, "orchestrator", orchestrator);
}

/// `webhook`, with the body already mapped as `payload` in `m`.
fn webhook(ev: &ThreatEvent, m: &Map) -> Map {
    let mut webhook = Map::new();
    opt_str(&mut webhook, "name", &ev.webhook_name);
    if ev.webhook_name.is_some() {
        // The webhook's JSON body, also under the generic `event.payload`.
        if let Some(body) = m.get("payload") {
            webhook.insert("body".into(), body.clone());
        }
    }
    webhook
}

#[allow(clippy::too_many_arguments)]
fn endpoint(
    ip: Option<IpAddr>,
    port: Option<u16>,
    zone: &Option<Str>,
    user: &Option<Str>,
    nat_ip: Option<IpAddr>,
    nat_port: Option<u16>,
    location: &Option<Str>,
    pod: Option<Map>,
) -> Map {
    let mut m = Map::new();
    if let Some(ip) = ip {
        m.insert("ip".into(), Dynamic::from(ip.to_string()));
    }
    if let Some(port) = port {
        m.insert("port".into(), Dynamic::from_int(i64::from(port)));
    }
    opt_str(&mut m, "zone", zone);
    opt_str(&mut m, "user", user);
    if nat_ip.is_some() || nat_port.is_some() {
        let mut nat = Map::new();
        if let Some(ip) = nat_ip {
            nat.insert("ip".into(), Dynamic::from(ip.to_string()));
        }
        if let Some(port) = nat_port {
            nat.insert("port".into(), Dynamic::from_int(i64::from(port)));
        }
        group(&mut m, "nat", nat);
    }
    if let Some(loc) = location {
        let mut geo = Map::new();
        geo.insert("name".into(), s(loc));
        group(&mut m, "geo", geo);
    }
    if let Some(pod) = pod {
        m.insert("pod".into(), pod.into());
    }
    m
}

/// A pod as scripts see it; also a valid intent target.
pub fn pod_map(pod: &PodContext) -> Map {
    let mut m = Map::new();
    m.insert("namespace".into(), Dynamic::from(pod.namespace.clone()));
    m.insert("name".into(), Dynamic::from(pod.name.clone()));
    if !pod.uid.is_empty() {
        m.insert("uid".into(), Dynamic::from(pod.uid.clone()));
    }
    group(&mut m, "labels", string_map(&pod.labels));
    group(
        &mut m,
        "namespace_labels",
        string_map(&pod.namespace_labels),
    );
    opt_string(&mut m, "owner_kind", &pod.owner_kind);
    opt_string(&mut m, "owner_name", &pod.owner_name);
    opt_string(&mut m, "node", &pod.node);
    opt_string(&mut m, "service_account", &pod.service_account);
    opt_string(&mut m, "phase", &pod.phase);
    m
}

/// Inserts a group only when it holds something.
fn group(m: &mut Map, key: &str, sub: Map) {
    if !sub.is_empty() {
        m.insert(key.into(), sub.into());
    }
}

fn string_map(src: &BTreeMap<String, String>) -> Map {
    src.iter()
        .map(|(k, v)| (k.as_str().into(), Dynamic::from(v.clone())))
        .collect()
}

fn nested(outer: &str, inner: &str, value: Dynamic) -> Dynamic {
    let mut i = Map::new();
    i.insert(inner.into(), value);
    let mut o = Map::new();
    o.insert(outer.into(), i.into());
    o.into()
}

fn s(v: &Str) -> Dynamic {
    Dynamic::from(ImmutableString::from(v.as_str()))
}

fn opt_str(m: &mut Map, key: &str, v: &Option<Str>) {
    if let Some(v) = v {
        m.insert(key.into(), s(v));
    }
}

fn opt_string(m: &mut Map, key: &str, v: &Option<String>) {
    if let Some(v) = v {
        m.insert(key.into(), Dynamic::from(v.clone()));
    }
}

fn opt_u64(m: &mut Map, key: &str, v: Option<u64>) {
    if let Some(v) = v {
        m.insert(
            key.into(),
            Dynamic::from_int(i64::try_from(v).unwrap_or(i64::MAX)),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::DateTime;
    use riposte_firewall::{EventKind, EventModule, Severity};

    use super::*;

    #[test]
    fn fields_are_nested_under_their_ecs_names() {
        let mut ev = ThreatEvent::new(
            EventKind::Alert,
            EventModule::Panos,
            "panos.threat",
            DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            "raw",
        );
        ev.set_severity(Severity::High);
        ev.threat_name = Some("Heartbleed".into());
        ev.threat_type = Some("vulnerability".into());
        ev.source_ip = Some("198.51.100.4".parse().expect("ip"));
        ev.destination_port = Some(443);
        ev.action = Some("alert".into());
        ev.destination_pod = Some(Arc::new(PodContext {
            namespace: "shop".into(),
            name: "web-1".into(),
            labels: BTreeMap::from([("app".into(), "web".into())]),
            ..Default::default()
        }));
        let m = event_map(&ev, &PodMaps::default());
        let get = |path: &[&str]| -> Dynamic {
            let mut cur = Dynamic::from(m.clone());
            for p in path {
                cur = cur
                    .try_cast::<Map>()
                    .and_then(|map| map.get(*p).cloned())
                    .unwrap_or(Dynamic::UNIT);
            }
            cur
        };
        assert_eq!(
            get(&["action"]).into_string().ok().as_deref(),
            Some("alert")
        );
        assert_eq!(get(&["severity"]).as_int().ok(), Some(4));
        assert_eq!(
            get(&["threat", "severity"]).into_string().ok().as_deref(),
            Some("high")
        );
        assert_eq!(
            get(&["threat", "type"]).into_string().ok().as_deref(),
            Some("vulnerability")
        );
        assert_eq!(
            get(&["source", "ip"]).into_string().ok().as_deref(),
            Some("198.51.100.4")
        );
        assert_eq!(get(&["destination", "port"]).as_int().ok(), Some(443));
        assert_eq!(
            get(&["destination", "pod", "labels", "app"])
                .into_string()
                .ok()
                .as_deref(),
            Some("web")
        );
        assert!(get(&["source", "pod"]).is_unit());
        assert!(get(&["threat", "category"]).is_unit());
        assert!(get(&["url"]).is_unit(), "empty groups are left out");
        assert!(get(&["original"]).is_unit());
    }

    #[test]
    fn pod_maps_are_built_once_per_shared_context() {
        let maps = PodMaps::new(2);
        let pod = Arc::new(PodContext {
            namespace: "shop".into(),
            name: "web-1".into(),
            ..Default::default()
        });
        let a = maps.get(&pod);
        assert_eq!(maps.maps.len(), 1);
        assert_eq!(maps.get(&pod).len(), a.len());
        assert_eq!(maps.maps.len(), 1);
        // The context cannot change behind the cache's back.
        let mut pod = pod;
        assert!(Arc::get_mut(&mut pod).is_none());
        // A full cache drops the pods that are gone.
        for i in 0..3 {
            let other = Arc::new(PodContext {
                namespace: "shop".into(),
                name: format!("web-{i}"),
                ..Default::default()
            });
            let m = maps.get(&other);
            assert_eq!(
                m.get("name").and_then(|d| d.clone().into_string().ok()),
                Some(format!("web-{i}"))
            );
        }
        assert!(maps.maps.len() <= 2);
    }
}
