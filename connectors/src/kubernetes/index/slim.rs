//! The pod as the index's watch reads it off the wire.
//!
//! Deserializing a full `Pod` for every list page builds every container
//! spec, env var, volume, managed-field tree and status of 500 pods at a
//! time, only for the index to keep a few hundred bytes of each; the
//! allocator then keeps much of that transient memory for reuse long after
//! the initial list is digested. [`SlimPod`] names only the fields the
//! index uses, so serde skips the rest of the JSON without allocating it,
//! and foreign annotations are dropped while they are read.
//!
//! It is a real [`kube::Resource`] for `v1/pods`, so the watcher lists and
//! watches it exactly as it would `Pod` (resourceVersions included).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::NamespaceResourceScope;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use crate::kubernetes::state::is_riposte_key;

/// A pod reduced, as it is read, to what the index uses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SlimPod {
    #[serde(deserialize_with = "slim_meta")]
    pub metadata: ObjectMeta,
    pub spec: Option<SlimSpec>,
    pub status: Option<SlimStatus>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct SlimSpec {
    pub node_name: Option<String>,
    pub service_account_name: Option<String>,
    pub host_network: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct SlimStatus {
    pub phase: Option<String>,
    #[serde(rename = "podIP")]
    pub pod_ip: Option<String>,
    #[serde(rename = "podIPs")]
    pub pod_ips: Option<Vec<SlimPodIp>>,
    pub start_time: Option<Time>,
    pub conditions: Option<Vec<SlimCondition>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SlimPodIp {
    pub ip: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SlimCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
}

/// The metadata fields the index and the watcher use; managed fields,
/// finalizers and foreign annotations are skipped unread.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct WireMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    #[serde(deserialize_with = "riposte_annotations")]
    annotations: Option<BTreeMap<String, String>>,
    owner_references: Option<Vec<OwnerReference>>,
    creation_timestamp: Option<Time>,
    deletion_timestamp: Option<Time>,
}

fn slim_meta<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    let m = WireMeta::deserialize(d)?;
    Ok(ObjectMeta {
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        resource_version: m.resource_version,
        labels: m.labels,
        annotations: m.annotations,
        owner_references: m.owner_references,
        creation_timestamp: m.creation_timestamp,
        deletion_timestamp: m.deletion_timestamp,
        ..ObjectMeta::default()
    })
}

/// Reads an annotation map keeping only Riposte's own keys: the others'
/// values (last-applied configurations can be tens of kilobytes) are
/// skipped without being copied.
fn riposte_annotations<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    struct Keep;

    /// A key, kept only when it is one of Riposte's.
    struct Key(Option<String>);

    impl<'de> Deserialize<'de> for Key {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
            struct KeyVisitor;
            impl Visitor<'_> for KeyVisitor {
                type Value = Key;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an annotation key")
                }
                fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key, E> {
                    Ok(Key(is_riposte_key(v).then(|| v.to_owned())))
                }
            }
            d.deserialize_str(KeyVisitor)
        }
    }

    impl<'de> Visitor<'de> for Keep {
        type Value = Option<BTreeMap<String, String>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of annotations")
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(Keep)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut kept = BTreeMap::new();
            while let Some(Key(key)) = map.next_key::<Key>()? {
                match key {
                    Some(k) => {
                        let v: String = map.next_value()?;
                        kept.insert(k, v);
                    }
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(Some(kept))
        }
    }

    d.deserialize_option(Keep)
}

impl kube::Resource for SlimPod {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("Pod")
    }
    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("v1")
    }
    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("pods")
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl From<Pod> for SlimPod {
    fn from(pod: Pod) -> SlimPod {
        let mut metadata = pod.metadata;
        metadata.managed_fields = None;
        if let Some(annotations) = &mut metadata.annotations {
            annotations.retain(|k, _| is_riposte_key(k));
        }
        let spec = pod.spec.map(|s| SlimSpec {
            node_name: s.node_name,
            service_account_name: s.service_account_name,
            host_network: s.host_network,
        });
        let status = pod.status.map(|s| SlimStatus {
            phase: s.phase,
            pod_ip: s.pod_ip,
            pod_ips: s
                .pod_ips
                .map(|ips| ips.into_iter().map(|p| SlimPodIp { ip: p.ip }).collect()),
            start_time: s.start_time,
            conditions: s.conditions.map(|cs| {
                cs.into_iter()
                    .map(|c| SlimCondition {
                        type_: c.type_,
                        status: c.status,
                    })
                    .collect()
            }),
        });
        SlimPod {
            metadata,
            spec,
            status,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn only_the_fields_the_index_uses_are_read() {
        let pod: SlimPod = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "checkout-7d9f-x2k4q",
                "namespace": "shop",
                "uid": "u-1",
                "resourceVersion": "42",
                "labels": {"app": "checkout"},
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"huge\": true}",
                    "riposte.io/expires-at": "2025-03-01T14:00:00Z"
                },
                "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:metadata": {}}}],
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "checkout-7d9f", "uid": "rs-1", "controller": true}]
            },
            "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "x", "env": [{"name": "A", "value": "b"}]}]},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}], "containerStatuses": [{"name": "app"}]}
        }))
        .unwrap();
        assert_eq!(pod.metadata.resource_version.as_deref(), Some("42"));
        assert!(pod.metadata.managed_fields.is_none());
        let annotations = pod.metadata.annotations.unwrap();
        assert_eq!(annotations.len(), 1, "foreign annotations are not kept");
        assert!(annotations.contains_key("riposte.io/expires-at"));
        assert_eq!(pod.spec.unwrap().node_name.as_deref(), Some("node-1"));
        assert_eq!(pod.status.unwrap().pod_ips.unwrap()[0].ip, "10.0.0.1");
    }

    #[test]
    fn null_and_missing_sections_are_empty() {
        let pod: SlimPod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x", "namespace": "y", "annotations": null, "labels": null},
            "spec": null,
            "status": {"podIPs": null, "conditions": null}
        }))
        .unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("x"));
        assert!(pod.metadata.annotations.is_none());
        assert!(pod.spec.is_none());
    }
}
