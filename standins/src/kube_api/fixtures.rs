//! Realistic objects to seed the stand-in with: pods as a kubelet reports
//! them (IPs, phase, node, service account, owner chain), namespaces with
//! labels, and workloads (Deployment → ReplicaSet, StatefulSet, DaemonSet,
//! CronJob → Job) with the ownerReferences their controllers set.

use std::collections::BTreeMap;

use rand::Rng;
use serde_json::{json, Map, Value};

use super::ops::{new_uid, now};

fn string_map(pairs: &BTreeMap<String, String>) -> Value {
    Value::Object(pairs.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
}

fn pairs(labels: &[(&str, &str)]) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Five characters from the alphabet Kubernetes uses in generated names.
pub fn random_suffix(n: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A reference to an owner, as controllers write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
}

impl OwnerRef {
    /// The owner reference for a stored object.
    pub fn of(obj: &Value) -> Self {
        let s = |v: &Value| v.as_str().unwrap_or("").to_string();
        Self {
            api_version: s(&obj["apiVersion"]),
            kind: s(&obj["kind"]),
            name: s(&obj["metadata"]["name"]),
            uid: s(&obj["metadata"]["uid"]),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": true,
            "blockOwnerDeletion": true,
        })
    }
}

/// A pod as the kubelet reports it once running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFixture {
    pub namespace: String,
    pub name: String,
    /// `status.podIPs`, the first also `status.podIP`. Empty: no IP yet.
    pub ips: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub owner: Option<OwnerRef>,
    pub node: String,
    pub host_ip: String,
    pub service_account: String,
    /// Pending, Running, Succeeded, Failed.
    pub phase: String,
    pub image: String,
    pub start_time: Option<String>,
    pub uid: Option<String>,
}

impl PodFixture {
    /// A running pod with one IP on `node-1`, service account `default`.
    pub fn new(namespace: &str, name: &str, ip: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            name: name.to_string(),
            ips: if ip.is_empty() {
                vec![]
            } else {
                vec![ip.to_string()]
            },
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            owner: None,
            node: "node-1".into(),
            host_ip: "172.18.0.2".into(),
            service_account: "default".into(),
            phase: "Running".into(),
            image: "registry.example/app:1.0".into(),
            start_time: Some(now()),
            uid: None,
        }
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    pub fn labels(mut self, labels: &[(&str, &str)]) -> Self {
        self.labels.extend(pairs(labels));
        self
    }

    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// Adds a second (e.g. IPv6) address to `status.podIPs`.
    pub fn ip(mut self, ip: &str) -> Self {
        self.ips.push(ip.into());
        self
    }

    /// Owned (as controller) by this stored object.
    pub fn owned_by(mut self, owner: &Value) -> Self {
        self.owner = Some(OwnerRef::of(owner));
        self
    }

    pub fn node(mut self, node: &str) -> Self {
        self.node = node.into();
        self
    }

    pub fn service_account(mut self, sa: &str) -> Self {
        self.service_account = sa.into();
        self
    }

    pub fn phase(mut self, phase: &str) -> Self {
        self.phase = phase.into();
        self
    }

    pub fn image(mut self, image: &str) -> Self {
        self.image = image.into();
        self
    }

    /// The Pod object.
    pub fn to_json(&self) -> Value {
        let mut meta = Map::new();
        meta.insert("name".into(), json!(self.name));
        meta.insert("namespace".into(), json!(self.namespace));
        if let Some(uid) = &self.uid {
            meta.insert("uid".into(), json!(uid));
        }
        if !self.labels.is_empty() {
            meta.insert("labels".into(), string_map(&self.labels));
        }
        if !self.annotations.is_empty() {
            meta.insert("annotations".into(), string_map(&self.annotations));
        }
        if let Some(o) = &self.owner {
            meta.insert("ownerReferences".into(), json!([o.to_json()]));
        }
        let running = self.phase == "Running";
        let started = self.start_time.clone().unwrap_or_else(now);
        let mut status = json!({
            "phase": self.phase,
            "hostIP": self.host_ip,
            "hostIPs": [{"ip": self.host_ip}],
            "qosClass": "BestEffort",
            "startTime": started,
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": null, "lastTransitionTime": started},
                {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": started},
                {"type": "Ready", "status": if running { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": started},
                {"type": "ContainersReady", "status": if running { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": started},
                {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": started},
            ],
            "containerStatuses": [{
                "name": "app",
                "image": self.image,
                "imageID": format!("{}@sha256:{}", self.image.split(':').next().unwrap_or(""), "0".repeat(64)),
                "ready": running,
                "started": running,
                "restartCount": 0,
                "state": if running { json!({"running": {"startedAt": started}}) } else { json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": started}}) },
            }],
        });
        if let (Some(first), Some(s)) = (self.ips.first(), status.as_object_mut()) {
            s.insert("podIP".into(), json!(first));
            s.insert(
                "podIPs".into(),
                Value::Array(self.ips.iter().map(|ip| json!({"ip": ip})).collect()),
            );
        }
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": {
                "containers": [{
                    "name": "app",
                    "image": self.image,
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent",
                }],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30,
                "dnsPolicy": "ClusterFirst",
                "serviceAccountName": self.service_account,
                "serviceAccount": self.service_account,
                "nodeName": self.node,
                "schedulerName": "default-scheduler",
                "enableServiceLinks": true,
                "preemptionPolicy": "PreemptLowerPriority",
                "priority": 0,
            },
            "status": status,
        })
    }
}

/// A Namespace with labels.
pub fn namespace(name: &str, labels: &[(&str, &str)]) -> Value {
    let mut l = pairs(labels);
    l.insert("kubernetes.io/metadata.name".into(), name.into());
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": string_map(&l)},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

fn pod_template(labels: &BTreeMap<String, String>) -> Value {
    json!({
        "metadata": {"labels": string_map(labels)},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1.0"}]},
    })
}

/// A Deployment whose selector and template use `labels`.
pub fn deployment(namespace: &str, name: &str, labels: &[(&str, &str)]) -> Value {
    let l = pairs(labels);
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": string_map(&l), "uid": new_uid()},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": string_map(&l)},
            "template": pod_template(&l),
        },
        "status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2, "updatedReplicas": 2, "observedGeneration": 1},
    })
}

/// The ReplicaSet a Deployment controller makes, with its
/// `pod-template-hash` label and owner reference.
pub fn replicaset_of(deployment: &Value, hash: &str) -> Value {
    let ns = deployment["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    let name = deployment["metadata"]["name"].as_str().unwrap_or("app");
    let mut l: BTreeMap<String, String> = deployment["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    l.insert("pod-template-hash".into(), hash.into());
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{name}-{hash}"),
            "namespace": ns,
            "labels": string_map(&l),
            "uid": new_uid(),
            "ownerReferences": [OwnerRef::of(deployment).to_json()],
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": string_map(&l)},
            "template": pod_template(&l),
        },
        "status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2, "fullyLabeledReplicas": 2, "observedGeneration": 1},
    })
}

/// A StatefulSet whose selector and template use `labels`.
pub fn statefulset(namespace: &str, name: &str, labels: &[(&str, &str)]) -> Value {
    let l = pairs(labels);
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": namespace, "labels": string_map(&l), "uid": new_uid()},
        "spec": {"replicas": 1, "serviceName": name, "selector": {"matchLabels": string_map(&l)}, "template": pod_template(&l)},
        "status": {"replicas": 1, "readyReplicas": 1},
    })
}

/// A DaemonSet whose selector and template use `labels`.
pub fn daemonset(namespace: &str, name: &str, labels: &[(&str, &str)]) -> Value {
    let l = pairs(labels);
    json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": namespace, "labels": string_map(&l), "uid": new_uid()},
        "spec": {"selector": {"matchLabels": string_map(&l)}, "template": pod_template(&l)},
        "status": {"currentNumberScheduled": 1, "desiredNumberScheduled": 1, "numberMisscheduled": 0, "numberReady": 1},
    })
}

/// A CronJob running every five minutes.
pub fn cronjob(namespace: &str, name: &str) -> Value {
    json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": namespace, "uid": new_uid()},
        "spec": {
            "schedule": "*/5 * * * *",
            "jobTemplate": {"spec": {"template": {"spec": {
                "containers": [{"name": "job", "image": "registry.example/job:1.0"}],
                "restartPolicy": "OnFailure",
            }}}},
        },
    })
}

/// A Job, owned by `owner` (a CronJob) when given.
pub fn job(namespace: &str, name: &str, owner: Option<&Value>) -> Value {
    let mut meta = json!({"name": name, "namespace": namespace, "uid": new_uid()});
    if let Some(o) = owner {
        meta["ownerReferences"] = json!([OwnerRef::of(o).to_json()]);
    }
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {"template": {"spec": {
            "containers": [{"name": "job", "image": "registry.example/job:1.0"}],
            "restartPolicy": "OnFailure",
        }}},
        "status": {"active": 1},
    })
}

/// A ClusterIP Service selecting `selector`.
pub fn service(namespace: &str, name: &str, selector: &[(&str, &str)]) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": string_map(&pairs(selector)),
            "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
            "type": "ClusterIP",
        },
    })
}

/// A Deployment and its ReplicaSet, as stored.
#[derive(Debug, Clone)]
pub struct Workload {
    pub deployment: Value,
    pub replicaset: Value,
}

impl Workload {
    /// A pod of this workload: named after the ReplicaSet, carrying the
    /// template labels, owned by the ReplicaSet.
    pub fn pod(&self, ip: &str) -> PodFixture {
        let ns = self.replicaset["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default");
        let rs = self.replicaset["metadata"]["name"]
            .as_str()
            .unwrap_or("app");
        let mut p = PodFixture::new(ns, &format!("{rs}-{}", random_suffix(5)), ip)
            .owned_by(&self.replicaset);
        if let Some(labels) = self.replicaset["spec"]["template"]["metadata"]["labels"].as_object()
        {
            for (k, v) in labels {
                p.labels
                    .insert(k.clone(), v.as_str().unwrap_or("").to_string());
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_look_like_what_a_kubelet_reports() {
        let p = PodFixture::new("shop", "checkout-7d9f", "10.244.1.17")
            .ip("fd00::17")
            .label("app", "checkout")
            .to_json();
        assert_eq!(p["status"]["podIP"], "10.244.1.17");
        assert_eq!(p["status"]["podIPs"][1]["ip"], "fd00::17");
        assert_eq!(p["status"]["phase"], "Running");
        assert_eq!(p["spec"]["serviceAccountName"], "default");
        let typed: k8s_openapi::api::core::v1::Pod =
            serde_json::from_value(p).expect("a valid Pod");
        assert_eq!(typed.metadata.labels.map(|l| l.len()), Some(1));
    }

    #[test]
    fn replicasets_point_at_their_deployment() {
        let d = deployment("shop", "checkout", &[("app", "checkout")]);
        let rs = replicaset_of(&d, "7d9f8b6c5d");
        assert_eq!(rs["metadata"]["name"], "checkout-7d9f8b6c5d");
        assert_eq!(rs["metadata"]["ownerReferences"][0]["kind"], "Deployment");
        assert_eq!(
            rs["metadata"]["ownerReferences"][0]["uid"],
            d["metadata"]["uid"]
        );
        assert_eq!(
            rs["spec"]["selector"]["matchLabels"]["pod-template-hash"],
            "7d9f8b6c5d"
        );
        let w = Workload {
            deployment: d,
            replicaset: rs,
        };
        let pod = w.pod("10.0.0.1").to_json();
        assert!(pod["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("checkout-7d9f8b6c5d-")));
        assert_eq!(pod["metadata"]["labels"]["pod-template-hash"], "7d9f8b6c5d");
    }
}
