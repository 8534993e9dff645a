//! The slim copy of a pod the index keeps, and who may claim an address.
//!
//! A full Pod object weighs tens of kilobytes (managed fields, container
//! specs, statuses); the index keeps a few hundred bytes: what enrichment
//! hands to playbooks, the addresses, the direct controller (to re-resolve
//! when its ReplicaSet or Job shows up), readiness, and Riposte's own
//! annotations.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use riposte_firewall::PodContext;

use super::slim::SlimPod;
use crate::kubernetes::state::is_riposte_key;

/// A pod's controlling owner, as its ownerReference names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Controller {
    pub kind: String,
    pub name: String,
}

impl Controller {
    pub(crate) fn of(refs: Option<&Vec<OwnerReference>>) -> Option<Controller> {
        refs?
            .iter()
            .find(|r| r.controller == Some(true))
            .map(|r| Controller {
                kind: r.kind.clone(),
                name: r.name.clone(),
            })
    }
}

/// A pod reduced to what the index needs, before owner resolution and
/// namespace labels are added.
#[derive(Debug, Clone)]
pub(crate) struct RawPod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    pub controller: Option<Controller>,
    pub node: Option<String>,
    pub service_account: Option<String>,
    pub phase: Option<String>,
    pub ips: Vec<IpAddr>,
    pub started_ns: i64,
    pub terminating: bool,
    pub ready: bool,
    pub host_network: bool,
    pub riposte: BTreeMap<String, String>,
}

fn nanos(t: &Time) -> i64 {
    t.0.as_nanosecond().try_into().unwrap_or(i64::MAX)
}

impl RawPod {
    /// None for an object without a name or namespace (never sent by a real
    /// API server, but never trusted either).
    pub(crate) fn from_pod(pod: Pod) -> Option<RawPod> {
        RawPod::from_slim(SlimPod::from(pod))
    }

    /// None for an object without a name or namespace (never sent by a real
    /// API server, but never trusted either).
    pub(crate) fn from_slim(pod: SlimPod) -> Option<RawPod> {
        let meta = pod.metadata;
        let namespace = meta.namespace.filter(|n| !n.is_empty())?;
        let name = meta.name.filter(|n| !n.is_empty())?;
        let spec = pod.spec.unwrap_or_default();
        let status = pod.status.unwrap_or_default();
        let mut ips: Vec<IpAddr> = Vec::new();
        let listed = status.pod_ips.iter().flatten().map(|p| p.ip.as_str());
        for raw in status.pod_ip.as_deref().into_iter().chain(listed) {
            if let Ok(ip) = raw.trim().parse::<IpAddr>() {
                if !ips.contains(&ip) {
                    ips.push(ip);
                }
            }
        }
        let started_ns = status
            .start_time
            .as_ref()
            .or(meta.creation_timestamp.as_ref())
            .map_or(0, nanos);
        let ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        // The slim read already dropped foreign annotations; filter anyway so
        // the rule lives here too.
        let riposte = meta
            .annotations
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| is_riposte_key(k))
            .collect();
        Some(RawPod {
            namespace,
            name,
            uid: meta.uid.unwrap_or_default(),
            labels: meta.labels.unwrap_or_default(),
            controller: Controller::of(meta.owner_references.as_ref()),
            node: spec.node_name,
            service_account: spec.service_account_name,
            phase: status.phase,
            ips,
            started_ns,
            terminating: meta.deletion_timestamp.is_some(),
            ready,
            host_network: spec.host_network.unwrap_or(false),
            riposte,
        })
    }
}

/// One indexed pod.
#[derive(Debug, Clone)]
pub(crate) struct PodEntry {
    /// What `resolve` hands out; rebuilt (never mutated) when the pod, its
    /// namespace's labels or its owner chain change, so holders of the old
    /// `Arc` keep a consistent snapshot.
    pub ctx: Arc<PodContext>,
    pub ips: Box<[IpAddr]>,
    pub controller: Option<Controller>,
    pub started_ns: i64,
    pub terminating: bool,
    pub ready: bool,
    pub host_network: bool,
    pub riposte: BTreeMap<String, String>,
}

impl PodEntry {
    /// Whether the pod has run to completion: its address is free again.
    pub(crate) fn ended(&self) -> bool {
        matches!(
            self.ctx.phase.as_deref(),
            Some("Succeeded") | Some("Failed")
        )
    }

    /// A live pod that counts for selectors and workload shares.
    pub(crate) fn live(&self) -> bool {
        !self.ended() && !self.terminating
    }

    /// How strongly this pod claims its addresses; None: not at all.
    ///
    /// - Host-network pods share their node's address with every other
    ///   host-network pod on it: an address says nothing about which of
    ///   them spoke, so they claim none (and a NetworkPolicy could not
    ///   isolate them anyway).
    /// - A pod that ran to completion gave its address back to the CNI.
    /// - A pod being deleted still runs through its grace period, so it
    ///   keeps its address unless a live pod claims the same one — the
    ///   newcomer got it from the CNI after the old sandbox was torn down.
    /// - Among live pods a Running one beats a Pending one, and the newest
    ///   start wins a remaining tie (the API server lags the CNI).
    pub(crate) fn claim_rank(&self) -> Option<(u8, i64)> {
        if self.host_network || self.ended() || self.ips.is_empty() {
            return None;
        }
        let class = if self.terminating {
            0
        } else if self.ctx.phase.as_deref() == Some("Running") {
            2
        } else {
            1
        };
        Some((class, self.started_ns))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    /// A pod as the API server would send it, from JSON.
    pub(crate) fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).expect("a valid pod")
    }

    #[test]
    fn keeps_only_what_the_index_needs() {
        let p = pod(serde_json::json!({
            "metadata": {
                "name": "checkout-7d9f-abcde", "namespace": "shop", "uid": "u1",
                "labels": {"app": "checkout"},
                "annotations": {"riposte.io/reason": "C2", "kubectl.kubernetes.io/last-applied-configuration": "{…huge…}"},
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Other", "name": "x", "uid": "o0"},
                    {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "checkout-7d9f", "uid": "o1", "controller": true}
                ],
                "managedFields": [{"manager": "kubelet", "operation": "Update"}],
                "creationTimestamp": "2025-03-01T10:00:00Z"
            },
            "spec": {"nodeName": "node-1", "serviceAccountName": "checkout", "containers": [{"name": "app", "image": "shop/checkout:1"}]},
            "status": {
                "phase": "Running",
                "podIP": "10.244.1.17",
                "podIPs": [{"ip": "10.244.1.17"}, {"ip": "fd00::17"}],
                "startTime": "2025-03-01T10:00:05Z",
                "conditions": [{"type": "Ready", "status": "True"}]
            }
        }));
        let raw = RawPod::from_pod(p).expect("named pod");
        assert_eq!(raw.namespace, "shop");
        assert_eq!(
            raw.ips,
            vec![
                "10.244.1.17".parse::<IpAddr>().expect("ip"),
                "fd00::17".parse().expect("ip")
            ]
        );
        assert_eq!(
            raw.controller,
            Some(Controller {
                kind: "ReplicaSet".into(),
                name: "checkout-7d9f".into()
            })
        );
        assert_eq!(raw.riposte.len(), 1, "foreign annotations are dropped");
        assert!(raw.ready);
        assert_eq!(raw.node.as_deref(), Some("node-1"));
        assert_eq!(raw.service_account.as_deref(), Some("checkout"));
        assert!(raw.started_ns > 0);
    }

    #[test]
    fn garbage_addresses_and_missing_names_are_skipped() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "x", "namespace": "shop"},
            "status": {"podIP": "not-an-ip", "podIPs": [{"ip": ""}, {"ip": "10.0.0.1"}]}
        }));
        let raw = RawPod::from_pod(p).expect("named pod");
        assert_eq!(raw.ips, vec!["10.0.0.1".parse::<IpAddr>().expect("ip")]);
        assert!(RawPod::from_pod(pod(serde_json::json!({"metadata": {"name": "x"}}))).is_none());
    }
}
