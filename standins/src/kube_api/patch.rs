//! The three patch formats that are not server-side apply: JSON merge
//! patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch.

use serde_json::{Map, Value};

use super::resources::ResourceType;
use super::schema::{patch_strategy, PatchStrategy};

/// Why a patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchFailure {
    /// The patch document itself is malformed: 400.
    Malformed(String),
    /// The patch is well-formed but does not apply to the object: 422.
    DoesNotApply(String),
}

/// RFC 7386: objects merge recursively, `null` deletes, anything else
/// (lists included) replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// The most operations one JSON patch may hold, as upstream limits it.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

fn pointer_tokens(path: &str) -> Result<Vec<String>, PatchFailure> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(PatchFailure::Malformed(format!(
            "invalid JSON pointer {path:?}: must start with '/'"
        )));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn missing(path: &str) -> PatchFailure {
    PatchFailure::DoesNotApply(format!("doc is missing path: {path:?}: missing value"))
}

/// The parent container of `tokens` and the last token.
fn parent_mut<'a>(
    doc: &'a mut Value,
    tokens: &'a [String],
    path: &str,
) -> Result<(&'a mut Value, &'a str), PatchFailure> {
    let Some((last, init)) = tokens.split_last() else {
        return Err(PatchFailure::DoesNotApply(format!(
            "cannot operate on the whole document at {path:?}"
        )));
    };
    let mut cur = doc;
    for t in init {
        cur = match cur {
            Value::Object(m) => m.get_mut(t).ok_or_else(|| missing(path))?,
            Value::Array(a) => {
                let i: usize = t.parse().map_err(|_| missing(path))?;
                a.get_mut(i).ok_or_else(|| missing(path))?
            }
            _ => return Err(missing(path)),
        };
    }
    Ok((cur, last))
}

fn get_at<'a>(doc: &'a Value, path: &str) -> Result<&'a Value, PatchFailure> {
    let tokens = pointer_tokens(path)?;
    let mut cur = doc;
    for t in &tokens {
        cur = match cur {
            Value::Object(m) => m.get(t).ok_or_else(|| missing(path))?,
            Value::Array(a) => {
                let i: usize = t.parse().map_err(|_| missing(path))?;
                a.get(i).ok_or_else(|| missing(path))?
            }
            _ => return Err(missing(path)),
        };
    }
    Ok(cur)
}

fn add_at(doc: &mut Value, path: &str, value: Value) -> Result<(), PatchFailure> {
    let tokens = pointer_tokens(path)?;
    if tokens.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = parent_mut(doc, &tokens, path)?;
    match parent {
        Value::Object(m) => {
            m.insert(last.to_string(), value);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            let i: usize = last.parse().map_err(|_| missing(path))?;
            if i > a.len() {
                return Err(PatchFailure::DoesNotApply(format!(
                    "add operation does not apply: index {i} out of bounds at {path:?}"
                )));
            }
            a.insert(i, value);
            Ok(())
        }
        _ => Err(missing(path)),
    }
}

fn remove_at(doc: &mut Value, path: &str) -> Result<Value, PatchFailure> {
    let tokens = pointer_tokens(path)?;
    let (parent, last) = parent_mut(doc, &tokens, path)?;
    match parent {
        Value::Object(m) => m.remove(last).ok_or_else(|| missing(path)),
        Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| missing(path))?;
            if i >= a.len() {
                return Err(missing(path));
            }
            Ok(a.remove(i))
        }
        _ => Err(missing(path)),
    }
}

/// RFC 6902.
pub fn json_patch(doc: &mut Value, patch: &Value) -> Result<(), PatchFailure> {
    let Some(ops) = patch.as_array() else {
        return Err(PatchFailure::Malformed(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch".into(),
        ));
    };
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchFailure::DoesNotApply(format!(
            "The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {}",
            ops.len()
        )));
    }
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = op.get("path").and_then(Value::as_str);
        let Some(path) = path else {
            return Err(PatchFailure::Malformed(format!(
                "operation {op} has no \"path\""
            )));
        };
        let value = || {
            op.get("value").cloned().ok_or_else(|| {
                PatchFailure::Malformed(format!("operation {kind:?} at {path:?} has no \"value\""))
            })
        };
        let from = || {
            op.get("from").and_then(Value::as_str).ok_or_else(|| {
                PatchFailure::Malformed(format!("operation {kind:?} at {path:?} has no \"from\""))
            })
        };
        match kind {
            "add" => add_at(doc, path, value()?)?,
            "remove" => {
                remove_at(doc, path)?;
            }
            "replace" => {
                let v = value()?;
                let tokens = pointer_tokens(path)?;
                if tokens.is_empty() {
                    *doc = v;
                } else {
                    get_at(doc, path)?;
                    let (parent, last) = parent_mut(doc, &tokens, path)?;
                    match parent {
                        Value::Object(m) => {
                            m.insert(last.to_string(), v);
                        }
                        Value::Array(a) => {
                            let i: usize = last.parse().map_err(|_| missing(path))?;
                            *a.get_mut(i).ok_or_else(|| missing(path))? = v;
                        }
                        _ => return Err(missing(path)),
                    }
                }
            }
            "move" => {
                let from = from()?;
                if path.starts_with(&format!("{from}/")) {
                    return Err(PatchFailure::DoesNotApply(format!(
                        "move operation cannot move {from:?} into its own child {path:?}"
                    )));
                }
                let v = remove_at(doc, from)?;
                add_at(doc, path, v)?;
            }
            "copy" => {
                let v = get_at(doc, from()?)?.clone();
                add_at(doc, path, v)?;
            }
            "test" => {
                let want = value()?;
                let have = get_at(doc, path)?;
                if *have != want {
                    return Err(PatchFailure::DoesNotApply(format!(
                        "testing value {path:?} failed: test failed"
                    )));
                }
            }
            other => {
                return Err(PatchFailure::Malformed(format!(
                    "Unexpected kind: {other:?}"
                )))
            }
        }
    }
    Ok(())
}

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder/";
const DELETE_PRIMITIVES: &str = "$deleteFromPrimitiveList/";

/// Strategic merge patch for built-in types: maps merge as in a merge
/// patch; lists merge by the Go type's `patchMergeKey` where it has one
/// (containers by name, ownerReferences by uid, …) and are replaced
/// otherwise; the `$patch`, `$retainKeys`, `$setElementOrder/` and
/// `$deleteFromPrimitiveList/` directives are honoured.
pub fn strategic_merge_patch(
    res: &ResourceType,
    target: &mut Value,
    patch: &Value,
) -> Result<(), PatchFailure> {
    let mut path = Vec::new();
    smp_object(res, target, patch, &mut path)
}

fn smp_object(
    res: &ResourceType,
    target: &mut Value,
    patch: &Value,
    path: &mut Vec<String>,
) -> Result<(), PatchFailure> {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    match p.get(DIRECTIVE).and_then(Value::as_str) {
        Some("replace") => {
            *target = strip(res, patch, path)?;
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Null;
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => {
            return Err(PatchFailure::Malformed(format!(
                "unknown patch type: {other:?} in map"
            )))
        }
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let mut orders: Vec<(String, Vec<Value>)> = Vec::new();
    if let Some(Value::Array(keep)) = p.get(RETAIN_KEYS) {
        if let Value::Object(t) = target {
            let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
            t.retain(|k, _| keep.contains(&k.as_str()));
        }
    }
    for (k, v) in p {
        if k == DIRECTIVE || k == RETAIN_KEYS {
            continue;
        }
        if let Some(field) = k.strip_prefix(SET_ORDER) {
            if let Value::Array(order) = v {
                orders.push((field.to_string(), order.clone()));
            }
            continue;
        }
        if let Some(field) = k.strip_prefix(DELETE_PRIMITIVES) {
            let drop: Vec<&Value> = v.as_array().map(|a| a.iter().collect()).unwrap_or_default();
            if let Some(Value::Array(items)) = target.get_mut(field) {
                items.retain(|x| !drop.contains(&x));
            }
            continue;
        }
        if k.starts_with('$') {
            return Err(PatchFailure::Malformed(format!(
                "unknown patch directive {k:?}"
            )));
        }
        let Value::Object(t) = target else {
            continue;
        };
        if v.is_null() {
            t.remove(k);
            continue;
        }
        path.push(k.clone());
        match v {
            Value::Object(_) => {
                let slot = t.entry(k.clone()).or_insert(Value::Null);
                smp_object(res, slot, v, path)?;
                if slot.is_null() {
                    t.remove(k);
                }
            }
            Value::Array(items) => {
                let refs: Vec<&str> = path.iter().map(String::as_str).collect();
                let strategy = patch_strategy(res, &refs);
                let slot = t.entry(k.clone()).or_insert(Value::Null);
                smp_list(res, slot, items, strategy, path)?;
            }
            other => {
                t.insert(k.clone(), other.clone());
            }
        }
        path.pop();
    }
    for (field, order) in orders {
        if let Some(Value::Array(items)) = target.get_mut(&field) {
            path.push(field.clone());
            let refs: Vec<&str> = path.iter().map(String::as_str).collect();
            let key = match patch_strategy(res, &refs) {
                PatchStrategy::MergeByKey(key) => Some(key),
                _ => None,
            };
            path.pop();
            reorder(items, &order, key);
        }
    }
    Ok(())
}

fn reorder(items: &mut Vec<Value>, order: &[Value], key: Option<&str>) {
    let ident = |v: &Value| -> Value {
        match key {
            Some(k) => v.get(k).cloned().unwrap_or(Value::Null),
            None => v.clone(),
        }
    };
    let mut ordered = Vec::with_capacity(items.len());
    for o in order {
        let want = ident(o);
        if let Some(pos) = items.iter().position(|i| ident(i) == want) {
            ordered.push(items.remove(pos));
        }
    }
    ordered.append(items);
    *items = ordered;
}

fn smp_list(
    res: &ResourceType,
    slot: &mut Value,
    items: &[Value],
    strategy: PatchStrategy,
    path: &mut Vec<String>,
) -> Result<(), PatchFailure> {
    let replace_all = items
        .iter()
        .any(|i| i.get(DIRECTIVE).and_then(Value::as_str) == Some("replace"));
    match strategy {
        PatchStrategy::Replace => {
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                out.push(strip(res, i, path)?);
            }
            *slot = Value::Array(out);
        }
        PatchStrategy::MergePrimitives => {
            if !slot.is_array() || replace_all {
                *slot = Value::Array(Vec::new());
            }
            if let Value::Array(have) = slot {
                for i in items {
                    if i.is_object() {
                        continue;
                    }
                    if !have.contains(i) {
                        have.push(i.clone());
                    }
                }
            }
        }
        PatchStrategy::MergeByKey(key) => {
            if !slot.is_array() || replace_all {
                *slot = Value::Array(Vec::new());
            }
            let Value::Array(have) = slot else {
                return Ok(());
            };
            for item in items {
                let directive = item.get(DIRECTIVE).and_then(Value::as_str);
                if directive == Some("replace") && item.as_object().is_some_and(|m| m.len() == 1) {
                    continue;
                }
                let Some(id) = item.get(key) else {
                    return Err(PatchFailure::Malformed(format!(
                        "map: {item} does not contain declared merge key: {key}"
                    )));
                };
                let pos = have.iter().position(|h| h.get(key) == Some(id));
                match (directive, pos) {
                    (Some("delete"), Some(p)) => {
                        have.remove(p);
                    }
                    (Some("delete"), None) => {}
                    (_, Some(p)) => smp_object(res, &mut have[p], item, path)?,
                    (_, None) => have.push(strip(res, item, path)?),
                }
            }
        }
    }
    Ok(())
}

/// A patch fragment with its directives applied to nothing.
fn strip(res: &ResourceType, v: &Value, path: &mut Vec<String>) -> Result<Value, PatchFailure> {
    match v {
        Value::Object(m) => {
            let mut clean = m.clone();
            clean.remove(DIRECTIVE);
            let mut out = Value::Object(Map::new());
            smp_object(res, &mut out, &Value::Object(clean), path)?;
            Ok(out)
        }
        other => Ok(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube_api::resources::lookup;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        // The example from RFC 7386 section 3.
        let mut doc = json!({"title": "Goodbye!", "author": {"givenName": "John", "familyName": "Doe"},
                             "tags": ["example", "sample"], "content": "This will be unchanged"});
        merge_patch(
            &mut doc,
            &json!({"title": "Hello!", "phoneNumber": "+01-123-456-7890",
                                      "author": {"familyName": null}, "tags": ["example"]}),
        );
        assert_eq!(
            doc,
            json!({"title": "Hello!", "author": {"givenName": "John"},
                               "tags": ["example"], "content": "This will be unchanged",
                               "phoneNumber": "+01-123-456-7890"})
        );
    }

    #[test]
    fn json_patch_runs_every_operation() {
        let mut doc = json!({"metadata": {"labels": {"a": "1"}}, "list": [1, 2]});
        json_patch(
            &mut doc,
            &json!([
                {"op": "test", "path": "/metadata/labels/a", "value": "1"},
                {"op": "add", "path": "/metadata/labels/riposte.io~1quarantine", "value": "true"},
                {"op": "replace", "path": "/metadata/labels/a", "value": "2"},
                {"op": "add", "path": "/list/-", "value": 3},
                {"op": "add", "path": "/list/0", "value": 0},
                {"op": "remove", "path": "/list/1"},
                {"op": "copy", "from": "/list/0", "path": "/first"},
                {"op": "move", "from": "/first", "path": "/moved"}
            ]),
        )
        .expect("applies");
        assert_eq!(
            doc,
            json!({"metadata": {"labels": {"a": "2", "riposte.io/quarantine": "true"}},
                               "list": [0, 2, 3], "moved": 0})
        );
    }

    #[test]
    fn json_patch_failures_are_told_apart() {
        let mut doc = json!({"a": 1});
        assert!(matches!(
            json_patch(&mut doc, &json!([{"op": "test", "path": "/a", "value": 2}])),
            Err(PatchFailure::DoesNotApply(_))
        ));
        assert!(matches!(
            json_patch(&mut doc, &json!([{"op": "remove", "path": "/b"}])),
            Err(PatchFailure::DoesNotApply(_))
        ));
        assert!(matches!(
            json_patch(&mut doc, &json!({"op": "add"})),
            Err(PatchFailure::Malformed(_))
        ));
        assert!(matches!(
            json_patch(&mut doc, &json!([{"op": "frobnicate", "path": "/a"}])),
            Err(PatchFailure::Malformed(_))
        ));
        assert_eq!(doc, json!({"a": 1}));
    }

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let pods = lookup("pods").expect("served");
        let mut pod = json!({"metadata": {"labels": {"app": "web"}, "finalizers": ["a"]},
            "spec": {"containers": [{"name": "app", "image": "web:1"}, {"name": "sidecar", "image": "proxy:1"}],
                     "tolerations": [{"key": "a"}]}});
        strategic_merge_patch(pods, &mut pod, &json!({
            "metadata": {"labels": {"riposte.io/quarantine": "true", "app": null}, "finalizers": ["b"]},
            "spec": {"containers": [{"name": "sidecar", "image": "proxy:2"}, {"name": "debug", "image": "busybox"}],
                     "tolerations": [{"key": "b"}]}
        })).expect("applies");
        assert_eq!(
            pod,
            json!({"metadata": {"labels": {"riposte.io/quarantine": "true"}, "finalizers": ["a", "b"]},
            "spec": {"containers": [{"name": "app", "image": "web:1"}, {"name": "sidecar", "image": "proxy:2"},
                                    {"name": "debug", "image": "busybox"}],
                     "tolerations": [{"key": "b"}]}})
        );
    }

    #[test]
    fn strategic_merge_directives() {
        let pods = lookup("pods").expect("served");
        let mut pod = json!({"metadata": {"finalizers": ["a", "b"]},
            "spec": {"containers": [{"name": "app", "image": "web:1"}, {"name": "sidecar", "image": "p"}]}});
        strategic_merge_patch(
            pods,
            &mut pod,
            &json!({
                "metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]},
                "spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}
            }),
        )
        .expect("applies");
        assert_eq!(pod["metadata"]["finalizers"], json!(["b"]));
        assert_eq!(
            pod["spec"]["containers"],
            json!([{"name": "app", "image": "web:1"}])
        );
        let err = strategic_merge_patch(
            pods,
            &mut pod,
            &json!({"spec": {"containers": [{"image": "x"}]}}),
        );
        assert!(matches!(err, Err(PatchFailure::Malformed(m)) if m.contains("merge key: name")));
        strategic_merge_patch(
            pods,
            &mut pod,
            &json!({"metadata": {"$patch": "replace", "name": "p"}}),
        )
        .expect("applies");
        assert_eq!(pod["metadata"], json!({"name": "p"}));
    }
}
