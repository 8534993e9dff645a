//! Field sets as server-side apply tracks them in `managedFields`
//! (`fieldsType: FieldsV1`): a set of paths whose elements are `f:<field>`,
//! `k:<key fields as JSON>` for items of keyed lists, and `v:<JSON>` for
//! members of set lists. A path is a member when it is a leaf of the
//! FieldsV1 tree or carries the `"."` marker.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::resources::ResourceType;
use super::schema::{list_type, ListType};

/// One path, element by element.
pub type Path = Vec<String>;

/// A set of owned paths.
pub type FieldSet = BTreeSet<Path>;

/// Which part of an object a write may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The whole object (types without a status subresource).
    Whole,
    /// Everything but `status` (main resource of a type with `/status`).
    NoStatus,
    /// `status` only (the `/status` subresource).
    StatusOnly,
}

impl Scope {
    pub fn of(res: &ResourceType, subresource: Option<&str>) -> Self {
        match (res.status, subresource) {
            (true, Some("status")) => Scope::StatusOnly,
            (true, _) => Scope::NoStatus,
            (false, _) => Scope::Whole,
        }
    }
}

/// Server-maintained metadata that no manager owns.
const UNOWNED_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// Every member path of `obj` within `scope`.
pub fn of_object(res: &ResourceType, obj: &Value, scope: Scope) -> FieldSet {
    let mut out = FieldSet::new();
    let Some(top) = obj.as_object() else {
        return out;
    };
    for (k, v) in top {
        if k == "apiVersion" || k == "kind" {
            continue;
        }
        let in_scope = match scope {
            Scope::Whole => true,
            Scope::NoStatus => k != "status",
            Scope::StatusOnly => k == "status",
        };
        if !in_scope {
            continue;
        }
        let mut path = vec![format!("f:{k}")];
        let mut names = vec![k.as_str()];
        if k == "metadata" {
            if let Some(meta) = v.as_object() {
                for (mk, mv) in meta {
                    if UNOWNED_METADATA.contains(&mk.as_str()) {
                        continue;
                    }
                    path.push(format!("f:{mk}"));
                    names.push(mk);
                    collect(res, mv, &mut path, &mut names, &mut out);
                    path.pop();
                    names.pop();
                }
            }
            continue;
        }
        collect(res, v, &mut path, &mut names, &mut out);
    }
    out
}

fn collect<'a>(
    res: &ResourceType,
    v: &'a Value,
    path: &mut Path,
    names: &mut Vec<&'a str>,
    out: &mut FieldSet,
) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                path.push(format!("f:{k}"));
                names.push(k);
                collect(res, child, path, names, out);
                path.pop();
                names.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => match list_type(res, names) {
            ListType::Atomic => {
                out.insert(path.clone());
            }
            ListType::Set => {
                for item in items {
                    path.push(format!("v:{item}"));
                    out.insert(path.clone());
                    path.pop();
                }
            }
            ListType::Map(keys) => {
                for item in items {
                    path.push(key_element(item, keys));
                    out.insert(path.clone());
                    if let Some(m) = item.as_object() {
                        for (k, child) in m {
                            path.push(format!("f:{k}"));
                            names.push(k);
                            collect(res, child, path, names, out);
                            path.pop();
                            names.pop();
                        }
                    }
                    path.pop();
                }
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
}

/// `k:{"name":"app"}`: the key fields of a keyed-list item.
pub fn key_element(item: &Value, keys: &[&str]) -> String {
    let mut m = Map::new();
    for k in keys {
        if let Some(v) = item.get(*k) {
            m.insert((*k).to_string(), v.clone());
        }
    }
    format!("k:{}", Value::Object(m))
}

fn key_matches(item: &Value, element: &str) -> bool {
    let Some(json) = element.strip_prefix("k:") else {
        return false;
    };
    let Ok(Value::Object(keys)) = serde_json::from_str::<Value>(json) else {
        return false;
    };
    keys.iter().all(|(k, v)| item.get(k) == Some(v))
}

/// The value at `path` in `obj`.
pub fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for el in path {
        cur = step(cur, el)?;
    }
    Some(cur)
}

fn step<'a>(cur: &'a Value, el: &str) -> Option<&'a Value> {
    if let Some(f) = el.strip_prefix("f:") {
        return cur.get(f);
    }
    let items = cur.as_array()?;
    if el.starts_with("k:") {
        return items.iter().find(|i| key_matches(i, el));
    }
    if let Some(v) = el.strip_prefix("v:") {
        let want: Value = serde_json::from_str(v).ok()?;
        return items.iter().find(|i| **i == want);
    }
    if let Some(i) = el.strip_prefix("i:") {
        return items.get(i.parse::<usize>().ok()?);
    }
    None
}

fn step_mut<'a>(cur: &'a mut Value, el: &str) -> Option<&'a mut Value> {
    if let Some(f) = el.strip_prefix("f:") {
        return cur.get_mut(f);
    }
    let items = cur.as_array_mut()?;
    if el.starts_with("k:") {
        return items.iter_mut().find(|i| key_matches(i, el));
    }
    if let Some(v) = el.strip_prefix("v:") {
        let want: Value = serde_json::from_str(v).ok()?;
        return items.iter_mut().find(|i| **i == want);
    }
    None
}

/// Removes the field, list item or set member at `path`.
pub fn remove_at(obj: &mut Value, path: &[String]) {
    let Some((last, init)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for el in init {
        match step_mut(cur, el) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(items) = cur.as_array_mut() {
        if last.starts_with("k:") {
            items.retain(|i| !key_matches(i, last));
        } else if let Some(v) = last.strip_prefix("v:") {
            if let Ok(want) = serde_json::from_str::<Value>(v) {
                items.retain(|i| *i != want);
            }
        }
    }
}

/// The FieldsV1 JSON tree of a set.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        // A member that also has owned children carries the "." marker.
        let marker = has_descendant(set, path);
        let mut node = &mut root;
        for el in path.iter().chain(marker.then(|| ".".to_string()).iter()) {
            let child = node
                .entry(el.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(m) = child else { break };
            node = m;
        }
    }
    Value::Object(root)
}

/// The set described by a FieldsV1 JSON tree.
pub fn from_fields_v1(v: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    let mut path = Vec::new();
    read_node(v, &mut path, &mut out);
    out
}

fn read_node(v: &Value, path: &mut Path, out: &mut FieldSet) {
    let Some(m) = v.as_object() else { return };
    for (k, child) in m {
        if k == "." {
            out.insert(path.clone());
            continue;
        }
        path.push(k.clone());
        if child.as_object().is_none_or(Map::is_empty) {
            out.insert(path.clone());
        } else {
            read_node(child, path, out);
        }
        path.pop();
    }
}

/// `.spec.containers[name="app"].image`: how conflicts name a path.
pub fn display(path: &[String]) -> String {
    let mut s = String::new();
    for el in path {
        if let Some(f) = el.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = el.strip_prefix("k:") {
            let parts: Vec<String> = match serde_json::from_str::<Value>(k) {
                Ok(Value::Object(m)) => m.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                _ => vec![k.to_string()],
            };
            s.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = el.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        } else if let Some(i) = el.strip_prefix("i:") {
            s.push_str(&format!("[{i}]"));
        }
    }
    s
}

/// Whether some path of `set` lies strictly below `path`.
pub fn has_descendant(set: &FieldSet, path: &[String]) -> bool {
    set.range(path.to_vec()..)
        .skip_while(|p| p.as_slice() == path)
        .take_while(|p| p.starts_with(path))
        .next()
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube_api::resources::lookup;
    use serde_json::json;

    fn p(s: &[&str]) -> Path {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn object_fields_skip_identity_and_status() {
        let pods = lookup("pods").expect("served");
        let obj = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "n", "uid": "u", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "x"}]},
            "status": {"phase": "Running"}});
        let set = of_object(pods, &obj, Scope::NoStatus);
        let expected: FieldSet = [
            p(&["f:metadata", "f:labels", "f:app"]),
            p(&["f:spec", "f:containers", "k:{\"name\":\"app\"}"]),
            p(&["f:spec", "f:containers", "k:{\"name\":\"app\"}", "f:image"]),
            p(&["f:spec", "f:containers", "k:{\"name\":\"app\"}", "f:name"]),
        ]
        .into_iter()
        .collect();
        assert_eq!(set, expected);
        let status = of_object(pods, &obj, Scope::StatusOnly);
        assert_eq!(status, [p(&["f:status", "f:phase"])].into_iter().collect());
    }

    #[test]
    fn fields_v1_round_trips_with_dot_markers() {
        let pods = lookup("pods").expect("served");
        let obj = json!({"metadata": {"labels": {"a": "1"}, "finalizers": ["x"]},
            "spec": {"containers": [{"name": "app", "image": "x"}]}});
        let set = of_object(pods, &obj, Scope::Whole);
        let tree = to_fields_v1(&set);
        assert_eq!(
            tree,
            json!({
                "f:metadata": {"f:finalizers": {"v:\"x\"": {}}, "f:labels": {"f:a": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}}}}
            })
        );
        assert_eq!(from_fields_v1(&tree), set);
    }

    #[test]
    fn paths_reach_and_remove_values() {
        let mut obj = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]},
                             "metadata": {"finalizers": ["f1", "f2"]}});
        let img = p(&["f:spec", "f:containers", "k:{\"name\":\"a\"}", "f:image"]);
        assert_eq!(value_at(&obj, &img), Some(&json!("x")));
        assert_eq!(display(&img), ".spec.containers[name=\"a\"].image");
        remove_at(
            &mut obj,
            &p(&["f:spec", "f:containers", "k:{\"name\":\"b\"}"]),
        );
        remove_at(&mut obj, &p(&["f:metadata", "f:finalizers", "v:\"f1\""]));
        assert_eq!(
            obj,
            json!({"spec": {"containers": [{"name": "a", "image": "x"}]},
                               "metadata": {"finalizers": ["f2"]}})
        );
    }

    #[test]
    fn descendants_are_found() {
        let set: FieldSet = [p(&["f:a", "f:b"]), p(&["f:c"])].into_iter().collect();
        assert!(has_descendant(&set, &p(&["f:a"])));
        assert!(!has_descendant(&set, &p(&["f:a", "f:b"])));
        assert!(!has_descendant(&set, &p(&["f:c"])));
    }
}
