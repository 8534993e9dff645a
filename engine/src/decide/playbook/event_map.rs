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

use crate::decide::playbook::reads::Need;

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

/// Builds the script's `event` map, all of it.
pub fn event_map(ev: &ThreatEvent, pods: &PodMaps) -> Map {
    event_map_reading(ev, pods, &Need::All)
}

/// Builds the part of the `event` map that `need` reads (what the
/// playbooks in force read, found in their syntax trees): a property no
/// script reads is not built.
pub fn event_map_reading(ev: &ThreatEvent, pods: &PodMaps, need: &Need) -> Map {
    let mut m = Map::new();
    let payload = payload(ev, need);
    top_level(&mut m, ev, need, payload.as_ref());
    if let Some(n) = need.get("threat") {
        group(&mut m, "threat", threat(ev, n));
    }
    if let Some(n) = need.get("source") {
        let end = Endpoint {
            ip: ev.source_ip,
            port: ev.source_port,
            zone: &ev.source_zone,
            user: &ev.source_user,
            nat_ip: ev.source_nat_ip,
            nat_port: ev.source_nat_port,
            location: &ev.source_location,
            pod: ev.source_pod.as_ref(),
        };
        group(&mut m, "source", end.map(n, pods));
    }
    if let Some(n) = need.get("destination") {
        let end = Endpoint {
            ip: ev.destination_ip,
            port: ev.destination_port,
            zone: &ev.destination_zone,
            user: &ev.destination_user,
            nat_ip: ev.destination_nat_ip,
            nat_port: ev.destination_nat_port,
            location: &ev.destination_location,
            pod: ev.destination_pod.as_ref(),
        };
        group(&mut m, "destination", end.map(n, pods));
    }
    if let Some(n) = need.get("network") {
        group(&mut m, "network", network(ev, n));
    }
    if let Some(n) = need.get("observer") {
        group(&mut m, "observer", observer(ev, n));
    }
    content_groups(&mut m, ev, need);
    if let Some(n) = need.get("panos") {
        group(&mut m, "panos", panos(ev, n));
    }
    if let Some(n) = need.get("suricata") {
        group(&mut m, "suricata", suricata(ev, n));
    }
    cluster_groups(&mut m, ev, need);
    if let Some(n) = need.get("webhook") {
        group(&mut m, "webhook", webhook(ev, n, payload));
    }
    m
}

/// The webhook's JSON body as a script value, when `payload` or
/// `webhook.body` is read.
fn payload(ev: &ThreatEvent, need: &Need) -> Option<Dynamic> {
    let body = need
        .get("webhook")
        .is_some_and(|w| w.wants("body") && ev.webhook_name.is_some());
    if !need.wants("payload") && !body {
        return None;
    }
    rhai::serde::to_dynamic(ev.payload.as_ref()?).ok()
}

/// The ECS `event.*` fields, which are the map's top level, and `error`.
fn top_level(m: &mut Map, ev: &ThreatEvent, n: &Need, payload: Option<&Dynamic>) {
    if n.wants("id") {
        m.insert("id".into(), s(&ev.id));
    }
    if n.wants("kind") {
        m.insert(
            "kind".into(),
            Dynamic::from(ImmutableString::from(ev.kind.as_str())),
        );
    }
    if n.wants("module") {
        m.insert(
            "module".into(),
            Dynamic::from(ImmutableString::from(ev.module.as_str())),
        );
    }
    if n.wants("dataset") {
        m.insert("dataset".into(), s(&ev.dataset));
    }
    if n.wants("timestamp") {
        m.insert("timestamp".into(), Dynamic::from(ev.timestamp.to_rfc3339()));
    }
    if n.wants("epoch") {
        m.insert("epoch".into(), Dynamic::from_int(ev.timestamp.timestamp()));
    }
    opt_str(m, n, "action", &ev.action);
    if let (Some(sev), true) = (ev.severity, n.wants("severity")) {
        m.insert("severity".into(), Dynamic::from_int(i64::from(sev)));
    }
    if let (Some(created), true) = (ev.created, n.wants("created")) {
        m.insert("created".into(), Dynamic::from(created.to_rfc3339()));
    }
    if let (Some(d), true) = (payload, n.wants("payload")) {
        m.insert("payload".into(), d.clone());
    }
    if let (Some(msg), true) = (&ev.error_message, n.wants("error")) {
        let mut e = Map::new();
        e.insert("message".into(), Dynamic::from(msg.clone()));
        group(m, "error", e);
    }
}

fn threat(ev: &ThreatEvent, n: &Need) -> Map {
    let mut threat = Map::new();
    if let (Some(sev), true) = (ev.threat_severity, n.wants("severity")) {
        threat.insert(
            "severity".into(),
            Dynamic::from(ImmutableString::from(sev.as_str())),
        );
    }
    opt_str(&mut threat, n, "type", &ev.threat_type);
    opt_str(&mut threat, n, "category", &ev.threat_category);
    opt_str(&mut threat, n, "name", &ev.threat_name);
    opt_u64(&mut threat, n, "id", ev.threat_id);
    threat
}

fn network(ev: &ThreatEvent, n: &Need) -> Map {
    let mut network = Map::new();
    opt_str(&mut network, n, "transport", &ev.network_transport);
    opt_str(&mut network, n, "application", &ev.network_application);
    opt_str(&mut network, n, "protocol", &ev.network_protocol);
    if let (Some(d), true) = (ev.network_direction, n.wants("direction")) {
        network.insert(
            "direction".into(),
            Dynamic::from(ImmutableString::from(d.as_str())),
        );
    }
    network
}

fn observer(ev: &ThreatEvent, n: &Need) -> Map {
    let mut observer = Map::new();
    if n.wants("vendor") {
        observer.insert("vendor".into(), s(&ev.observer_vendor));
    }
    if n.wants("product") {
        observer.insert("product".into(), s(&ev.observer_product));
    }
    opt_str(
        &mut observer,
        n,
        "serial_number",
        &ev.observer_serial_number,
    );
    opt_str(&mut observer, n, "hostname", &ev.observer_hostname);
    opt_str(&mut observer, n, "version", &ev.observer_version);
    if let (Some(name), true) = (&ev.observer_ingress_interface, n.wants("ingress")) {
        observer.insert("ingress".into(), nested("interface", "name", s(name)));
    }
    if let (Some(name), true) = (&ev.observer_egress_interface, n.wants("egress")) {
        observer.insert("egress".into(), nested("interface", "name", s(name)));
    }
    observer
}

/// What the traffic carried: `rule`, `url`, `file`, `user_agent`, `email`.
fn content_groups(m: &mut Map, ev: &ThreatEvent, need: &Need) {
    if let Some(n) = need.get("rule") {
        let mut rule = Map::new();
        opt_str(&mut rule, n, "name", &ev.rule_name);
        opt_str(&mut rule, n, "uuid", &ev.rule_uuid);
        group(m, "rule", rule);
    }
    if let Some(n) = need.get("url") {
        let mut url = Map::new();
        opt_string(&mut url, n, "original", &ev.url_original);
        group(m, "url", url);
    }
    if let Some(n) = need.get("file") {
        let mut file = Map::new();
        opt_string(&mut file, n, "name", &ev.file_name);
        if let (Some(h), true) = (&ev.file_hash_sha256, n.wants("hash")) {
            let mut hash = Map::new();
            hash.insert("sha256".into(), s(h));
            file.insert("hash".into(), hash.into());
        }
        group(m, "file", file);
    }
    if let Some(n) = need.get("user_agent") {
        let mut ua = Map::new();
        opt_string(&mut ua, n, "original", &ev.user_agent);
        group(m, "user_agent", ua);
    }
    if let Some(n) = need.get("email") {
        let mut email = Map::new();
        if let (Some(from), true) = (&ev.email_from, n.wants("from")) {
            let mut f = Map::new();
            f.insert("address".into(), Dynamic::from(from.clone()));
            email.insert("from".into(), f.into());
        }
        opt_string(&mut email, n, "subject", &ev.email_subject);
        group(m, "email", email);
    }
}

fn panos(ev: &ThreatEvent, n: &Need) -> Map {
    let mut panos = Map::new();
    opt_str(&mut panos, n, "type", &ev.panos_type);
    opt_str(&mut panos, n, "subtype", &ev.panos_subtype);
    opt_str(&mut panos, n, "virtual_system", &ev.panos_virtual_system);
    opt_u64(&mut panos, n, "session_id", ev.panos_session_id);
    opt_u64(&mut panos, n, "sequence_number", ev.panos_sequence_number);
    opt_u64(
        &mut panos,
        n,
        "repeat_count",
        ev.panos_repeat_count.map(u64::from),
    );
    panos
}

fn suricata(ev: &ThreatEvent, n: &Need) -> Map {
    let mut suricata = Map::new();
    opt_u64(&mut suricata, n, "flow_id", ev.suricata_flow_id);
    opt_str(&mut suricata, n, "category", &ev.suricata_category);
    if let (Some(meta), true) = (&ev.suricata_metadata, n.wants("metadata")) {
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
fn cluster_groups(m: &mut Map, ev: &ThreatEvent, need: &Need) {
    if let Some(n) = need.get("container") {
        let mut container = Map::new();
        opt_str(&mut container, n, "id", &ev.container_id);
        group(m, "container", container);
    }
    if let Some(n) = need.get("orchestrator") {
        let mut orchestrator = Map::new();
        opt_str(
            &mut orchestrator,
            n,
            "namespace",
            &ev.orchestrator_namespace,
        );
        if let (Some(name), true) = (&ev.orchestrator_resource_name, n.wants("resource")) {
            let mut r = Map::new();
            r.insert("name".into(), s(name));
            orchestrator.insert("resource".into(), r.into());
        }
        group(m, "orchestrator", orchestrator);
    }
}

/// `webhook`: its name and its JSON body (also the generic `event.payload`).
fn webhook(ev: &ThreatEvent, n: &Need, payload: Option<Dynamic>) -> Map {
    let mut webhook = Map::new();
    opt_str(&mut webhook, n, "name", &ev.webhook_name);
    if let (Some(body), true, true) = (payload, ev.webhook_name.is_some(), n.wants("body")) {
        webhook.insert("body".into(), body);
    }
    webhook
}

/// One end of the connection, `source` or `destination`.
struct Endpoint<'a> {
    ip: Option<IpAddr>,
    port: Option<u16>,
    zone: &'a Option<Str>,
    user: &'a Option<Str>,
    nat_ip: Option<IpAddr>,
    nat_port: Option<u16>,
    location: &'a Option<Str>,
    pod: Option<&'a Arc<PodContext>>,
}

impl Endpoint<'_> {
    fn map(&self, n: &Need, pods: &PodMaps) -> Map {
        let mut m = Map::new();
        if let (Some(ip), true) = (self.ip, n.wants("ip")) {
            m.insert("ip".into(), Dynamic::from(ip.to_string()));
        }
        if let (Some(port), true) = (self.port, n.wants("port")) {
            m.insert("port".into(), Dynamic::from_int(i64::from(port)));
        }
        opt_str(&mut m, n, "zone", self.zone);
        opt_str(&mut m, n, "user", self.user);
        if let (true, Some(nn)) = (
            self.nat_ip.is_some() || self.nat_port.is_some(),
            n.get("nat"),
        ) {
            let mut nat = Map::new();
            if let (Some(ip), true) = (self.nat_ip, nn.wants("ip")) {
                nat.insert("ip".into(), Dynamic::from(ip.to_string()));
            }
            if let (Some(port), true) = (self.nat_port, nn.wants("port")) {
                nat.insert("port".into(), Dynamic::from_int(i64::from(port)));
            }
            group(&mut m, "nat", nat);
        }
        if let (Some(loc), true) = (self.location, n.wants("geo")) {
            let mut geo = Map::new();
            geo.insert("name".into(), s(loc));
            group(&mut m, "geo", geo);
        }
        if let (Some(pod), true) = (self.pod, n.wants("pod")) {
            m.insert("pod".into(), pods.get(pod).into());
        }
        m
    }
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
    opt_string(&mut m, &Need::All, "owner_kind", &pod.owner_kind);
    opt_string(&mut m, &Need::All, "owner_name", &pod.owner_name);
    opt_string(&mut m, &Need::All, "node", &pod.node);
    opt_string(&mut m, &Need::All, "service_account", &pod.service_account);
    opt_string(&mut m, &Need::All, "phase", &pod.phase);
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

fn opt_str(m: &mut Map, n: &Need, key: &str, v: &Option<Str>) {
    if let (Some(v), true) = (v, n.wants(key)) {
        m.insert(key.into(), s(v));
    }
}

fn opt_string(m: &mut Map, n: &Need, key: &str, v: &Option<String>) {
    if let (Some(v), true) = (v, n.wants(key)) {
        m.insert(key.into(), Dynamic::from(v.clone()));
    }
}

fn opt_u64(m: &mut Map, n: &Need, key: &str, v: Option<u64>) {
    if let (Some(v), true) = (v, n.wants(key)) {
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
