//! What the stand-in knows of each type's schema: the typed decode that
//! built-in types go through (type errors, unknown fields), and how lists
//! merge in server-side apply and strategic merge patch.

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

use super::resources::ResourceType;

/// How a list is owned and merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType {
    /// Replaced as a whole, owned as one field.
    Atomic,
    /// Scalars merged as a set.
    Set,
    /// Items identified by these keys, merged and owned one by one.
    Map(&'static [&'static str]),
}

/// `x-kubernetes-list-type` of the list at `path` (field names only).
/// Custom resources have no schema here, so their lists are atomic, as
/// in a CRD schema that does not say otherwise.
pub fn list_type(res: &ResourceType, path: &[&str]) -> ListType {
    if !res.builtin {
        return ListType::Atomic;
    }
    let n = path.len();
    let Some(&last) = path.last() else {
        return ListType::Atomic;
    };
    let parent = if n >= 2 { path[n - 2] } else { "" };
    let in_container = matches!(
        parent,
        "containers" | "initContainers" | "ephemeralContainers"
    );
    match last {
        "ownerReferences" if parent == "metadata" => ListType::Map(&["uid"]),
        "finalizers" if parent == "metadata" => ListType::Set,
        "containers" | "initContainers" | "ephemeralContainers" if parent == "spec" => {
            ListType::Map(&["name"])
        }
        "volumes" | "imagePullSecrets" | "resourceClaims" if parent == "spec" => {
            ListType::Map(&["name"])
        }
        "env" if in_container => ListType::Map(&["name"]),
        "volumeMounts" if in_container => ListType::Map(&["mountPath"]),
        "volumeDevices" if in_container => ListType::Map(&["devicePath"]),
        "ports" if in_container => ListType::Map(&["containerPort", "protocol"]),
        "ports" if res.kind == "Service" && path == ["spec", "ports"] => {
            ListType::Map(&["port", "protocol"])
        }
        "hostAliases" if parent == "spec" => ListType::Map(&["ip"]),
        "podIPs" | "hostIPs" if parent == "status" => ListType::Map(&["ip"]),
        "conditions" if parent == "status" => ListType::Map(&["type"]),
        "topologySpreadConstraints" if parent == "spec" => {
            ListType::Map(&["topologyKey", "whenUnsatisfiable"])
        }
        _ => ListType::Atomic,
    }
}

/// Strategic merge patch behaviour of the list at `path`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchStrategy {
    /// No strategy: the patch's list replaces the stored one.
    Replace,
    /// `patchStrategy: merge` of scalars.
    MergePrimitives,
    /// `patchStrategy: merge` with `patchMergeKey`.
    MergeByKey(&'static str),
}

/// `patchStrategy` and `patchMergeKey` from the Go types.
pub fn patch_strategy(res: &ResourceType, path: &[&str]) -> PatchStrategy {
    let n = path.len();
    let Some(&last) = path.last() else {
        return PatchStrategy::Replace;
    };
    let parent = if n >= 2 { path[n - 2] } else { "" };
    let in_container = matches!(
        parent,
        "containers" | "initContainers" | "ephemeralContainers"
    );
    match last {
        "ownerReferences" if parent == "metadata" => PatchStrategy::MergeByKey("uid"),
        "finalizers" if parent == "metadata" => PatchStrategy::MergePrimitives,
        "containers" | "initContainers" | "ephemeralContainers" if parent == "spec" => {
            PatchStrategy::MergeByKey("name")
        }
        "volumes" | "imagePullSecrets" | "resourceClaims" if parent == "spec" => {
            PatchStrategy::MergeByKey("name")
        }
        "env" if in_container => PatchStrategy::MergeByKey("name"),
        "volumeMounts" if in_container => PatchStrategy::MergeByKey("mountPath"),
        "volumeDevices" if in_container => PatchStrategy::MergeByKey("devicePath"),
        "ports" if in_container => PatchStrategy::MergeByKey("containerPort"),
        "ports" if res.kind == "Service" && path == ["spec", "ports"] => {
            PatchStrategy::MergeByKey("port")
        }
        "hostAliases" if parent == "spec" => PatchStrategy::MergeByKey("ip"),
        "podIPs" | "hostIPs" if parent == "status" => PatchStrategy::MergeByKey("ip"),
        "conditions" if parent == "status" => PatchStrategy::MergeByKey("type"),
        "topologySpreadConstraints" if parent == "spec" => PatchStrategy::MergeByKey("topologyKey"),
        _ => PatchStrategy::Replace,
    }
}

fn roundtrip<T: DeserializeOwned + Serialize>(
    res: &ResourceType,
    obj: &Value,
) -> Result<Value, String> {
    let typed: T = serde_json::from_value(obj.clone()).map_err(|e| {
        format!(
            "{} in version {:?} cannot be handled as a {}: {e}",
            res.kind, res.version, res.kind
        )
    })?;
    serde_json::to_value(&typed).map_err(|e| format!("re-encoding {}: {e}", res.kind))
}

/// Decodes `obj` as its Go type would: wrong types are an error (400),
/// unknown fields are dropped. Custom resources pass unchanged.
pub fn decode(res: &ResourceType, obj: &Value) -> Result<Value, String> {
    use k8s_openapi::api::{apps, batch, coordination, core, events, networking};
    match (res.group, res.kind) {
        ("", "Namespace") => roundtrip::<core::v1::Namespace>(res, obj),
        ("", "Pod") => roundtrip::<core::v1::Pod>(res, obj),
        ("", "Event") => roundtrip::<core::v1::Event>(res, obj),
        ("", "Service") => roundtrip::<core::v1::Service>(res, obj),
        ("", "Node") => roundtrip::<core::v1::Node>(res, obj),
        ("networking.k8s.io", "NetworkPolicy") => {
            roundtrip::<networking::v1::NetworkPolicy>(res, obj)
        }
        ("apps", "Deployment") => roundtrip::<apps::v1::Deployment>(res, obj),
        ("apps", "ReplicaSet") => roundtrip::<apps::v1::ReplicaSet>(res, obj),
        ("apps", "StatefulSet") => roundtrip::<apps::v1::StatefulSet>(res, obj),
        ("apps", "DaemonSet") => roundtrip::<apps::v1::DaemonSet>(res, obj),
        ("batch", "Job") => roundtrip::<batch::v1::Job>(res, obj),
        ("batch", "CronJob") => roundtrip::<batch::v1::CronJob>(res, obj),
        ("events.k8s.io", "Event") => roundtrip::<events::v1::Event>(res, obj),
        ("coordination.k8s.io", "Lease") => roundtrip::<coordination::v1::Lease>(res, obj),
        _ => Ok(obj.clone()),
    }
}

/// Dotted paths (`spec.containers[0].imagee`) present in `input` but
/// dropped by [`decode`]: the fields the Go type does not know.
pub fn unknown_fields(input: &Value, decoded: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(input, decoded, "", &mut out);
    out
}

fn walk(input: &Value, decoded: &Value, at: &str, out: &mut Vec<String>) {
    match (input, decoded) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                if v.is_null() {
                    continue;
                }
                let here = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                match b.get(k) {
                    Some(w) => walk(v, w, &here, out),
                    None => out.push(here),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                walk(v, w, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube_api::resources::lookup;
    use serde_json::json;

    #[test]
    fn containers_merge_by_name_but_policy_rules_are_atomic() {
        let pods = lookup("pods").expect("served");
        assert_eq!(
            list_type(pods, &["spec", "containers"]),
            ListType::Map(&["name"])
        );
        assert_eq!(
            list_type(pods, &["spec", "containers", "ports"]),
            ListType::Map(&["containerPort", "protocol"])
        );
        let np = lookup("networkpolicies").expect("served");
        assert_eq!(list_type(np, &["spec", "egress"]), ListType::Atomic);
        assert_eq!(
            patch_strategy(np, &["spec", "egress"]),
            PatchStrategy::Replace
        );
        let cnp = lookup("cnp").expect("served");
        assert_eq!(
            list_type(cnp, &["metadata", "finalizers"]),
            ListType::Atomic
        );
    }

    #[test]
    fn decode_drops_and_reports_unknown_fields() {
        let pods = lookup("pods").expect("served");
        let input = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labelz": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i", "imagee": "x"}]}});
        let decoded = decode(pods, &input).expect("decodes");
        assert_eq!(
            unknown_fields(&input, &decoded),
            ["metadata.labelz", "spec.containers[0].imagee"]
        );
        assert!(decoded["metadata"].get("labelz").is_none());
    }

    #[test]
    fn decode_refuses_wrong_types() {
        let pods = lookup("pods").expect("served");
        let err = decode(pods, &json!({"metadata": {"labels": "app=web"}})).expect_err("type");
        assert!(
            err.starts_with("Pod in version \"v1\" cannot be handled as a Pod"),
            "{err}"
        );
    }

    #[test]
    fn custom_resources_pass_unchanged() {
        let cnp = lookup("cnp").expect("served");
        let obj = json!({"spec": {"egressDeny": [{"toCIDR": ["1.2.3.4/32"]}]}});
        assert_eq!(decode(cnp, &obj).expect("decodes"), obj);
    }
}
