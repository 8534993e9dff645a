//! Enrichment: the pod behind each address, before playbooks run.
//!
//! A [`PodResolver`] answers "which pod has this IP"; the pipeline asks it
//! for the source and destination of every event and fills `source.pod` /
//! `destination.pod`. The Kubernetes pod index (watching the API server) is
//! one resolver; [`StaticInventory`], read from a JSON file, is the other —
//! for labs, demos, tests and addresses outside any cluster.
//!
//! CN-Series reports the protected pod itself (POD Namespace / POD Name).
//! When it does, the resolved pods are cross-checked against it and a
//! disagreement is recorded in `error.message`: a pod that moved since the
//! log was written, or a spoofed log.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use riposte_firewall::{PodContext, ThreatEvent};
use serde::{Deserialize, Serialize};

use crate::error::EngineError;

/// Answers which pod an address belongs to.
pub trait PodResolver: Send + Sync + std::fmt::Debug {
    fn resolve(&self, ip: IpAddr) -> Option<Arc<PodContext>>;
}

/// Fills the event's pod context; cheap when nothing resolves.
pub fn enrich(event: &mut ThreatEvent, resolver: &dyn PodResolver) {
    event.source_pod = event.source_ip.and_then(|ip| resolver.resolve(ip));
    event.destination_pod = event.destination_ip.and_then(|ip| resolver.resolve(ip));
    cross_check(event);
}

fn cross_check(event: &mut ThreatEvent) {
    let (Some(ns), Some(name)) = (
        event.orchestrator_namespace.as_deref(),
        event.orchestrator_resource_name.as_deref(),
    ) else {
        return;
    };
    let matches = |pod: &Option<Arc<PodContext>>| {
        pod.as_ref()
            .is_some_and(|p| p.namespace == ns && p.name == name)
    };
    let any_resolved = event.source_pod.is_some() || event.destination_pod.is_some();
    if any_resolved && !matches(&event.source_pod) && !matches(&event.destination_pod) {
        let message =
            format!("the firewall names pod {ns}/{name}, but neither address belongs to it now");
        event.warn("orchestrator.resource.name", message);
    }
}

/// One pod of a static inventory file (`[pods] inventory_file`, `replay
/// --pods`, and what `riposte gen --inventory` writes).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryPod {
    pub namespace: String,
    pub name: String,
    /// Every address of the pod (IPv4 and IPv6).
    pub ips: Vec<IpAddr>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub namespace_labels: std::collections::BTreeMap<String, String>,
}

impl InventoryPod {
    /// A pod as the inventory lists it, from its context and addresses.
    pub fn from_context(pod: PodContext, ips: Vec<IpAddr>) -> InventoryPod {
        InventoryPod {
            namespace: pod.namespace,
            name: pod.name,
            ips,
            uid: pod.uid,
            labels: pod.labels,
            owner_kind: pod.owner_kind,
            owner_name: pod.owner_name,
            node: pod.node,
            service_account: pod.service_account,
            namespace_labels: pod.namespace_labels,
        }
    }
}

/// Pods listed in a JSON file (`[{"namespace": …, "name": …, "ips": […]}, …]`).
#[derive(Debug, Default)]
pub struct StaticInventory {
    by_ip: HashMap<IpAddr, Arc<PodContext>>,
}

/// Why the static pod inventory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error(transparent)]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Parse(#[from] serde_json::Error),
    #[error("{ip} belongs to both {first} and {second}")]
    SharedIp {
        ip: IpAddr,
        first: String,
        second: String,
    },
}

impl StaticInventory {
    pub fn from_pods(pods: Vec<InventoryPod>) -> Result<StaticInventory, InventoryError> {
        let mut by_ip = HashMap::new();
        for p in pods {
            let ctx = Arc::new(PodContext {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                uid: p.uid,
                labels: p.labels,
                owner_kind: p.owner_kind,
                owner_name: p.owner_name,
                node: p.node,
                service_account: p.service_account,
                phase: Some("Running".into()),
                namespace_labels: p.namespace_labels,
            });
            for ip in p.ips {
                if let Some(other) = by_ip.insert(ip, ctx.clone()) {
                    return Err(InventoryError::SharedIp {
                        ip,
                        first: format!("{}/{}", other.namespace, other.name),
                        second: format!("{}/{}", p.namespace, p.name),
                    });
                }
            }
        }
        Ok(StaticInventory { by_ip })
    }

    pub fn load(path: &Path) -> Result<StaticInventory, EngineError> {
        StaticInventory::read(path).map_err(|e| EngineError::ConfigInvalid {
            key: "pods.inventory_file".into(),
            message: format!("{}: {e}", path.display()),
        })
    }

    fn read(path: &Path) -> Result<StaticInventory, InventoryError> {
        let text = std::fs::read_to_string(path)?;
        let pods: Vec<InventoryPod> = serde_json::from_str(&text)?;
        StaticInventory::from_pods(pods)
    }

    pub fn len(&self) -> usize {
        self.by_ip.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }
}

impl PodResolver for riposte_connectors::kubernetes::PodIndex {
    fn resolve(&self, ip: IpAddr) -> Option<Arc<PodContext>> {
        riposte_connectors::kubernetes::PodIndex::resolve(self, ip)
    }
}

/// Several resolvers, asked in order: the cluster's index first, then a
/// static inventory for what lives outside it.
#[derive(Debug)]
pub struct Chain(pub Vec<Arc<dyn PodResolver>>);

impl PodResolver for Chain {
    fn resolve(&self, ip: IpAddr) -> Option<Arc<PodContext>> {
        self.0.iter().find_map(|r| r.resolve(ip))
    }
}

impl PodResolver for StaticInventory {
    fn resolve(&self, ip: IpAddr) -> Option<Arc<PodContext>> {
        self.by_ip.get(&ip).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use riposte_firewall::{EventKind, EventModule};

    fn inventory() -> StaticInventory {
        let pods: Vec<InventoryPod> = serde_json::from_str(
            r#"[{"namespace":"shop","name":"checkout-7d9f","ips":["10.244.1.17","fd00::17"],
                 "labels":{"app":"checkout"},"owner_kind":"Deployment","owner_name":"checkout"}]"#,
        )
        .expect("inventory JSON");
        StaticInventory::from_pods(pods).expect("inventory")
    }

    fn event(src: &str, dst: &str) -> ThreatEvent {
        let mut ev = ThreatEvent::new(
            EventKind::Alert,
            EventModule::Panos,
            "panos.threat",
            Utc::now(),
            "x",
        );
        ev.source_ip = src.parse().ok();
        ev.destination_ip = dst.parse().ok();
        ev
    }

    #[test]
    fn source_and_destination_pods_are_filled() {
        let inv = inventory();
        let mut ev = event("10.244.1.17", "203.0.113.66");
        enrich(&mut ev, &inv);
        let pod = ev.source_pod.as_ref().expect("source pod");
        assert_eq!(
            (pod.namespace.as_str(), pod.name.as_str()),
            ("shop", "checkout-7d9f")
        );
        assert_eq!(pod.owner_kind.as_deref(), Some("Deployment"));
        assert!(ev.destination_pod.is_none());
        let mut v6 = event("203.0.113.66", "fd00::17");
        enrich(&mut v6, &inv);
        assert!(v6.destination_pod.is_some());
    }

    #[test]
    fn disagreeing_cn_series_pod_is_recorded() {
        let inv = inventory();
        let mut ev = event("10.244.1.17", "203.0.113.66");
        ev.orchestrator_namespace = Some("payments".into());
        ev.orchestrator_resource_name = Some("api-1".into());
        enrich(&mut ev, &inv);
        assert!(ev
            .error_message
            .as_deref()
            .unwrap_or("")
            .contains("payments/api-1"));

        let mut agree = event("10.244.1.17", "203.0.113.66");
        agree.orchestrator_namespace = Some("shop".into());
        agree.orchestrator_resource_name = Some("checkout-7d9f".into());
        enrich(&mut agree, &inv);
        assert!(agree.error_message.is_none());
    }

    #[test]
    fn one_address_for_two_pods_is_refused() {
        let pods: Vec<InventoryPod> = serde_json::from_str(
            r#"[{"namespace":"a","name":"x","ips":["10.0.0.1"]},{"namespace":"b","name":"y","ips":["10.0.0.1"]}]"#,
        )
        .expect("JSON");
        assert!(StaticInventory::from_pods(pods).is_err());
    }
}
