//! The Kubernetes pods the generated traffic comes from: namespaces,
//! workloads, pod names, IPs inside the pod CIDR, labels and owners.
//!
//! The same inventory can be loaded into a Kubernetes API stand-in, so that
//! an end-to-end test resolves every generated pod address to its pod.

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use riposte_firewall::PodContext;
use serde::Serialize;

use super::catalog::{self, App};
use super::rand_ext::{below, hex, pick, uuid};
use crate::error::GenError;

/// How a workload's pods are owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Deployment,
    StatefulSet,
    CronJob,
}

/// A workload template: where its pods live and what they serve.
#[derive(Debug)]
pub(crate) struct Workload {
    pub namespace: &'static str,
    pub name: &'static str,
    kind: Kind,
    weight: u32,
    /// Port and App-ID it serves inside the cluster; 0 = serves nothing.
    pub port: u16,
    pub app: Option<&'static App>,
    /// Reachable from the internet through the ingress zone.
    pub exposed: bool,
    tier: &'static str,
}

macro_rules! wl {
    ($ns:expr, $name:expr, $kind:expr, $w:expr, $port:expr, $app:expr, $exposed:expr, $tier:expr) => {
        Workload {
            namespace: $ns,
            name: $name,
            kind: $kind,
            weight: $w,
            port: $port,
            app: $app,
            exposed: $exposed,
            tier: $tier,
        }
    };
}

/// The first entry is the flagship story's pod (`shop/checkout`): pod 0
/// always comes from it.
pub(crate) const WORKLOADS: &[Workload] = &[
    wl!(
        "shop",
        "checkout",
        Kind::Deployment,
        8,
        8080,
        Some(&catalog::WEB_BROWSING),
        false,
        "backend"
    ),
    wl!(
        "shop",
        "frontend",
        Kind::Deployment,
        10,
        8443,
        Some(&catalog::SSL),
        true,
        "frontend"
    ),
    wl!(
        "shop",
        "cart",
        Kind::Deployment,
        6,
        8080,
        Some(&catalog::WEB_BROWSING),
        false,
        "backend"
    ),
    wl!(
        "shop",
        "catalog",
        Kind::Deployment,
        6,
        8080,
        Some(&catalog::WEB_BROWSING),
        false,
        "backend"
    ),
    wl!(
        "shop",
        "recommendations",
        Kind::Deployment,
        4,
        8080,
        Some(&catalog::WEB_BROWSING),
        false,
        "backend"
    ),
    wl!(
        "payments",
        "payments-api",
        Kind::Deployment,
        6,
        8443,
        Some(&catalog::SSL),
        false,
        "backend"
    ),
    wl!(
        "payments",
        "ledger",
        Kind::Deployment,
        3,
        8443,
        Some(&catalog::SSL),
        false,
        "backend"
    ),
    wl!(
        "payments",
        "fraud-scorer",
        Kind::Deployment,
        3,
        8080,
        Some(&catalog::WEB_BROWSING),
        false,
        "backend"
    ),
    wl!(
        "web",
        "api-gateway",
        Kind::Deployment,
        6,
        8443,
        Some(&catalog::SSL),
        true,
        "frontend"
    ),
    wl!(
        "web",
        "static-site",
        Kind::Deployment,
        4,
        8080,
        Some(&catalog::WEB_BROWSING),
        true,
        "frontend"
    ),
    wl!(
        "auth",
        "auth-service",
        Kind::Deployment,
        4,
        8080,
        Some(&catalog::WEB_BROWSING),
        false,
        "backend"
    ),
    wl!(
        "batch",
        "report-builder",
        Kind::CronJob,
        3,
        0,
        None,
        false,
        "batch"
    ),
    wl!(
        "batch",
        "etl-nightly",
        Kind::CronJob,
        3,
        0,
        None,
        false,
        "batch"
    ),
    wl!(
        "batch",
        "image-resizer",
        Kind::Deployment,
        3,
        0,
        None,
        false,
        "batch"
    ),
    wl!(
        "data",
        "postgres",
        Kind::StatefulSet,
        2,
        5432,
        Some(&catalog::POSTGRES),
        false,
        "data"
    ),
    wl!(
        "data",
        "redis",
        Kind::StatefulSet,
        2,
        6379,
        Some(&catalog::REDIS),
        false,
        "data"
    ),
    wl!(
        "data",
        "mysql",
        Kind::StatefulSet,
        1,
        3306,
        Some(&catalog::MYSQL),
        false,
        "data"
    ),
    wl!(
        "kube-system",
        "coredns",
        Kind::Deployment,
        2,
        53,
        Some(&catalog::DNS),
        false,
        "system"
    ),
];

/// Index of `kube-system/coredns` in [`WORKLOADS`].
pub(crate) const COREDNS: usize = WORKLOADS.len() - 1;

/// Pods per node before another node is added, and usable host numbers in
/// a node's /24 (.2 to .254; .1 is the node's bridge).
const PODS_PER_NODE: usize = 100;
const HOSTS_PER_NODE: usize = 253;

/// One pod of the generated cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub ip: Ipv4Addr,
    pub node: String,
    pub labels: BTreeMap<String, String>,
    /// `ReplicaSet`, `StatefulSet` or `Job`.
    pub owner_kind: String,
    pub owner_name: String,
    pub service_account: String,
    /// The CN-Series `Container ID` column of this pod's lines.
    pub container_id: String,
    /// Index into [`WORKLOADS`].
    #[serde(skip)]
    pub(crate) workload: usize,
}

impl Workload {
    pub(crate) fn tier(&self) -> &'static str {
        self.tier
    }
}

impl Pod {
    /// The pod as enrichment would describe it.
    pub fn to_pod_context(&self) -> PodContext {
        PodContext {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            labels: self.labels.clone(),
            owner_kind: Some(self.owner_kind.clone()),
            owner_name: Some(self.owner_name.clone()),
            node: Some(self.node.clone()),
            service_account: Some(self.service_account.clone()),
            phase: Some("Running".to_owned()),
            namespace_labels: BTreeMap::from([(
                "kubernetes.io/metadata.name".to_owned(),
                self.namespace.clone(),
            )]),
        }
    }

    pub(crate) fn workload(&self) -> &'static Workload {
        &WORKLOADS[self.workload.min(WORKLOADS.len() - 1)]
    }
}

/// The alphabet Kubernetes uses for generated name suffixes (no vowels, no
/// look-alike characters).
const K8S_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn k8s_suffix(rng: &mut SmallRng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(K8S_ALPHABET[below(rng, K8S_ALPHABET.len() as u64) as usize]))
        .collect()
}

/// Builds `count` pods spread over nodes, each with a distinct address in
/// `cidr`. Pod 0 is always a `shop/checkout` replica.
pub(crate) fn build(rng: &mut SmallRng, count: usize, cidr: Ipv4Net) -> Result<Vec<Pod>, GenError> {
    let invalid = |message: String| GenError::InvalidOption {
        option: "pod_cidr",
        message,
    };
    if cidr.prefix_len() > 24 {
        return Err(invalid(format!(
            "{cidr} is too small: nodes get a /24 each, so the pod CIDR must be /24 or larger"
        )));
    }
    let subnets = 1usize << (24 - cidr.prefix_len());
    let nodes = count
        .div_ceil(PODS_PER_NODE)
        .max(3)
        .max(count.div_ceil(HOSTS_PER_NODE))
        .min(subnets);
    if count > nodes * HOSTS_PER_NODE {
        return Err(GenError::InvalidOption {
            option: "pods",
            message: format!(
                "{count} pods do not fit in {cidr} (at most {})",
                nodes * HOSTS_PER_NODE
            ),
        });
    }
    let base = u32::from(cidr.network());
    // Each node hands out its /24's hosts in a shuffled order, as IPAM does
    // once pods come and go.
    let mut free: Vec<Vec<u8>> = (0..nodes)
        .map(|_| {
            let mut hosts: Vec<u8> = (2..=254).collect();
            hosts.shuffle(rng);
            hosts
        })
        .collect();
    let node_names: Vec<String> = (0..nodes)
        .map(|i| format!("worker-{}-{}", i + 1, k8s_suffix(rng, 5)))
        .collect();
    // One ReplicaSet hash per Deployment, one revision per StatefulSet.
    let hashes: Vec<String> = WORKLOADS
        .iter()
        .map(|_| {
            let len = 9 + below(rng, 2) as usize;
            k8s_suffix(rng, len)
        })
        .collect();
    let weights: Vec<u32> = WORKLOADS.iter().map(|w| w.weight).collect();
    let total: u32 = weights.iter().sum();
    let mut ordinals = vec![0u32; WORKLOADS.len()];
    let mut names = HashSet::with_capacity(count);
    let mut pods = Vec::with_capacity(count);
    for i in 0..count {
        let w = if i == 0 {
            0
        } else {
            pick(rng, &weights, total)
        };
        let wl = &WORKLOADS[w];
        let mut node = below(rng, nodes as u64) as usize;
        // The node count guarantees room somewhere; walk to a node with space.
        while free[node].is_empty() {
            node = (node + 1) % nodes;
        }
        let host = free[node].pop().unwrap_or(2);
        let ip = Ipv4Addr::from(base + ((node as u32) << 8) + u32::from(host));
        let mut labels = BTreeMap::new();
        labels.insert("app".to_owned(), wl.name.to_owned());
        labels.insert("app.kubernetes.io/name".to_owned(), wl.name.to_owned());
        labels.insert(
            "app.kubernetes.io/part-of".to_owned(),
            wl.namespace.to_owned(),
        );
        labels.insert("tier".to_owned(), wl.tier.to_owned());
        let (name, owner_kind, owner_name) = loop {
            let candidate = match wl.kind {
                Kind::Deployment => {
                    let rs = format!("{}-{}", wl.name, hashes[w]);
                    labels.insert("pod-template-hash".to_owned(), hashes[w].clone());
                    (format!("{rs}-{}", k8s_suffix(rng, 5)), "ReplicaSet", rs)
                }
                Kind::StatefulSet => {
                    let name = format!("{}-{}", wl.name, ordinals[w]);
                    ordinals[w] += 1;
                    labels.insert(
                        "controller-revision-hash".to_owned(),
                        format!("{}-{}", wl.name, hashes[w]),
                    );
                    labels.insert(
                        "statefulset.kubernetes.io/pod-name".to_owned(),
                        name.clone(),
                    );
                    (name, "StatefulSet", wl.name.to_owned())
                }
                Kind::CronJob => {
                    // Jobs of a CronJob are named after their scheduled minute.
                    let job = format!("{}-{}", wl.name, 28_400_000 + below(rng, 600_000));
                    labels.insert("job-name".to_owned(), job.clone());
                    labels.insert("batch.kubernetes.io/job-name".to_owned(), job.clone());
                    (format!("{job}-{}", k8s_suffix(rng, 5)), "Job", job)
                }
            };
            if names.insert((w, candidate.0.clone())) {
                break candidate;
            }
        };
        pods.push(Pod {
            namespace: wl.namespace.to_owned(),
            name,
            uid: uuid(rng),
            ip,
            node: node_names[node].clone(),
            labels,
            owner_kind: owner_kind.to_owned(),
            owner_name,
            service_account: if wl.namespace == "kube-system" {
                wl.name.to_owned()
            } else {
                format!("{}-sa", wl.name)
            },
            container_id: hex(rng, 64),
            workload: w,
        });
    }
    Ok(pods)
}

/// Picks the pods that talk to C2 servers: pod 0 (`shop/checkout`) and
/// others at random, never from `kube-system`.
pub(crate) fn compromised(rng: &mut SmallRng, pods: &[Pod], wanted: usize) -> Vec<usize> {
    let mut eligible: Vec<usize> = (1..pods.len())
        .filter(|&i| pods[i].namespace != "kube-system")
        .collect();
    eligible.shuffle(rng);
    let mut out = Vec::with_capacity(wanted);
    if wanted > 0 && !pods.is_empty() {
        out.push(0);
    }
    out.extend(eligible.into_iter().take(wanted.saturating_sub(1)));
    out
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn cidr(s: &str) -> Ipv4Net {
        s.parse().expect("test CIDR")
    }

    #[test]
    fn pods_have_distinct_addresses_inside_the_pod_cidr_and_distinct_names() {
        let mut rng = SmallRng::seed_from_u64(7);
        let net = cidr("10.244.0.0/16");
        let pods = build(&mut rng, 2_000, net).expect("2000 pods fit in a /16");
        let ips: HashSet<_> = pods.iter().map(|p| p.ip).collect();
        assert_eq!(ips.len(), pods.len());
        assert!(pods.iter().all(|p| net.contains(&p.ip)));
        let names: HashSet<_> = pods.iter().map(|p| (&p.namespace, &p.name)).collect();
        assert_eq!(names.len(), pods.len());
    }

    #[test]
    fn pods_look_like_kubernetes_pods() {
        let mut rng = SmallRng::seed_from_u64(1);
        let pods = build(&mut rng, 300, cidr("10.244.0.0/16")).expect("300 pods");
        assert_eq!(
            (pods[0].namespace.as_str(), pods[0].owner_kind.as_str()),
            ("shop", "ReplicaSet")
        );
        assert!(pods[0].name.starts_with("checkout-"));
        // checkout-7d9f8b6c5-x2k4q: workload, template hash, 5-char suffix.
        let parts: Vec<&str> = pods[0].name.rsplitn(3, '-').collect();
        assert_eq!(parts[0].len(), 5);
        assert!(parts[1].len() == 9 || parts[1].len() == 10);
        assert_eq!(
            pods[0].labels.get("pod-template-hash").map(String::as_str),
            Some(parts[1])
        );
        assert_eq!(pods[0].owner_name, format!("checkout-{}", parts[1]));
        assert_eq!(pods[0].container_id.len(), 64);
        let kinds: HashSet<_> = pods.iter().map(|p| p.owner_kind.as_str()).collect();
        assert_eq!(kinds, HashSet::from(["ReplicaSet", "StatefulSet", "Job"]));
        let namespaces: HashSet<_> = pods.iter().map(|p| p.namespace.as_str()).collect();
        for ns in ["shop", "payments", "web", "batch"] {
            assert!(namespaces.contains(ns), "no pod in {ns}");
        }
        let ctx = pods[0].to_pod_context();
        assert_eq!(ctx.labels.get("app").map(String::as_str), Some("checkout"));
        assert_eq!(ctx.owner_kind.as_deref(), Some("ReplicaSet"));
    }

    #[test]
    fn too_many_pods_for_the_cidr_is_an_error_naming_the_limit() {
        let mut rng = SmallRng::seed_from_u64(1);
        let err = build(&mut rng, 1_000, cidr("10.244.0.0/23")).expect_err("2 x 253 hosts");
        assert!(err.to_string().contains("at most 506"), "{err}");
        let err = build(&mut rng, 10, cidr("10.244.0.0/26")).expect_err("smaller than a node /24");
        assert!(err.to_string().contains("/24"), "{err}");
    }

    #[test]
    fn compromised_pods_include_checkout_and_never_kube_system() {
        let mut rng = SmallRng::seed_from_u64(3);
        let pods = build(&mut rng, 500, cidr("10.244.0.0/16")).expect("500 pods");
        let c = compromised(&mut rng, &pods, 5);
        assert_eq!(c.len(), 5);
        assert_eq!(c[0], 0);
        assert!(c.iter().all(|&i| pods[i].namespace != "kube-system"));
    }
}
