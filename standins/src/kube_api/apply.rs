//! Server-side apply and the managed-fields bookkeeping every write does.
//!
//! Each `managedFields` entry is one (manager, operation, subresource) and
//! the set of fields it owns. Apply merges the applied configuration into
//! the object, takes ownership of exactly the fields it names, removes the
//! fields the same manager applied before and no longer names (unless
//! someone else owns them too), and refuses, without `force`, to change a
//! field another manager owns. Non-apply writes take ownership of the
//! fields they changed, taking it from everyone else.

use serde_json::{json, Map, Value};

use super::fieldset::{self, FieldSet, Scope};
use super::resources::ResourceType;
use super::schema::{list_type, ListType};
use super::status::quote;

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: String,
    pub set: FieldSet,
}

impl Entry {
    fn is(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }

    /// How conflict messages name the manager (apiserver's `printManager`).
    fn describe(&self) -> String {
        let mut s = quote(&self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {}", quote(&self.subresource)));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {}", self.api_version));
            if !self.time.is_empty() {
                s.push_str(&format!(" at {}", self.time));
            }
        }
        s
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert("operation".into(), json!(self.operation));
        m.insert("apiVersion".into(), json!(self.api_version));
        if !self.time.is_empty() {
            m.insert("time".into(), json!(self.time));
        }
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), fieldset::to_fields_v1(&self.set));
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), json!(self.subresource));
        }
        Value::Object(m)
    }
}

/// The entries stored on `obj`.
pub fn read_entries(obj: &Value) -> Vec<Entry> {
    let Some(list) = obj
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    let s = |e: &Value, k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    list.iter()
        .map(|e| Entry {
            manager: s(e, "manager"),
            operation: s(e, "operation"),
            api_version: s(e, "apiVersion"),
            time: s(e, "time"),
            subresource: s(e, "subresource"),
            set: e
                .get("fieldsV1")
                .map(fieldset::from_fields_v1)
                .unwrap_or_default(),
        })
        .collect()
}

/// Stores `entries` on `obj` (removing the key when there are none).
pub fn write_entries(obj: &mut Value, entries: &[Entry]) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(Entry::to_json).collect()),
        );
    }
}

/// The part of an applied configuration a write to `scope` may set.
pub fn scoped(applied: &Value, scope: Scope) -> Value {
    let mut v = applied.clone();
    if let Some(m) = v.as_object_mut() {
        match scope {
            Scope::Whole => {}
            Scope::NoStatus => {
                m.remove("status");
            }
            Scope::StatusOnly => {
                m.retain(|k, _| {
                    k == "status" || k == "apiVersion" || k == "kind" || k == "metadata"
                });
                if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.retain(|k, _| k == "name" || k == "namespace");
                }
            }
        }
    }
    v
}

/// Apply conflicts: (manager as printed, field path as printed).
pub type Conflicts = Vec<(String, String)>;

/// A server-side apply of `applied` by `manager` onto `current` (absent
/// for a create). Returns the new object with its `managedFields`.
pub fn apply(
    res: &ResourceType,
    current: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    subresource: Option<&str>,
    now: &str,
) -> Result<Value, Conflicts> {
    let scope = fieldset::Scope::of(res, subresource);
    let sub = subresource.unwrap_or("");
    let applied = scoped(applied, scope);
    let applied_set = fieldset::of_object(res, &applied, scope);
    let mut obj = current.cloned().unwrap_or_else(|| json!({}));
    let mut entries = read_entries(&obj);
    if current.is_some() && entries.is_empty() {
        // Objects written before anyone applied are owned as a whole by a
        // synthetic updater, so a first apply still sees their values.
        entries.push(Entry {
            manager: "before-first-apply".into(),
            operation: "Update".into(),
            api_version: res.api_version(),
            time: String::new(),
            subresource: String::new(),
            set: fieldset::of_object(res, &obj, Scope::of(res, None)),
        });
    }

    let mut conflicts = Conflicts::new();
    let mut conflicting: Vec<(usize, Vec<String>)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if e.is(manager, "Apply", sub) {
            continue;
        }
        for path in applied_set.intersection(&e.set) {
            if fieldset::has_descendant(&applied_set, path) {
                continue;
            }
            let have = fieldset::value_at(&obj, path);
            let want = fieldset::value_at(&applied, path);
            if have.is_some() && have != want {
                conflicts.push((e.describe(), fieldset::display(path)));
                conflicting.push((i, path.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    for (i, path) in conflicting {
        entries[i].set.remove(&path);
    }

    let previous = entries
        .iter()
        .find(|e| e.is(manager, "Apply", sub))
        .map(|e| e.set.clone())
        .unwrap_or_default();
    let mut others = FieldSet::new();
    for e in entries.iter().filter(|e| !e.is(manager, "Apply", sub)) {
        others.extend(e.set.iter().cloned());
    }
    let mut dropped: Vec<&Vec<String>> = previous
        .difference(&applied_set)
        .filter(|p| !others.contains(*p) && !fieldset::has_descendant(&others, p))
        .collect();
    // Deepest first, so removing an item never hides a field inside it.
    dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for path in dropped {
        fieldset::remove_at(&mut obj, path);
        prune_empty_parents(&mut obj, path, &others, &applied_set);
    }

    let mut names = Vec::new();
    merge(res, &mut obj, &applied, &mut names);

    match entries.iter_mut().find(|e| e.is(manager, "Apply", sub)) {
        Some(mine) => {
            if mine.set != applied_set {
                mine.set = applied_set;
                mine.time = now.to_string();
            }
            mine.api_version = res.api_version();
        }
        None => entries.push(Entry {
            manager: manager.to_string(),
            operation: "Apply".into(),
            api_version: res.api_version(),
            time: now.to_string(),
            subresource: sub.to_string(),
            set: applied_set,
        }),
    }
    entries.retain(|e| !e.set.is_empty());
    write_entries(&mut obj, &entries);
    Ok(obj)
}

fn prune_empty_parents(obj: &mut Value, path: &[String], others: &FieldSet, applied: &FieldSet) {
    for end in (1..path.len()).rev() {
        let parent = &path[..end];
        if !parent.last().is_some_and(|el| el.starts_with("f:")) {
            return;
        }
        let empty = fieldset::value_at(obj, parent)
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty);
        let owned = others.contains(parent) || applied.contains(parent);
        if !empty || owned || parent.len() <= 1 {
            return;
        }
        fieldset::remove_at(obj, parent);
    }
}

/// Merges an applied configuration into an object: maps by key, keyed
/// lists by their keys, set lists as sets, everything else replaced.
pub fn merge(res: &ResourceType, target: &mut Value, applied: &Value, names: &mut Vec<String>) {
    let Value::Object(src) = applied else {
        *target = applied.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(dst) = target else { return };
    for (k, v) in src {
        if v.is_null() {
            continue;
        }
        names.push(k.clone());
        match v {
            Value::Object(_) => {
                let slot = dst.entry(k.clone()).or_insert(Value::Null);
                merge(res, slot, v, names);
            }
            Value::Array(items) => {
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let kind = list_type(res, &refs);
                let slot = dst.entry(k.clone()).or_insert(Value::Null);
                merge_list(res, slot, items, kind, names);
            }
            other => {
                dst.insert(k.clone(), other.clone());
            }
        }
        names.pop();
    }
}

fn merge_list(
    res: &ResourceType,
    slot: &mut Value,
    items: &[Value],
    kind: ListType,
    names: &mut Vec<String>,
) {
    match kind {
        ListType::Atomic => *slot = Value::Array(items.to_vec()),
        ListType::Set => {
            if !slot.is_array() {
                *slot = Value::Array(Vec::new());
            }
            if let Value::Array(have) = slot {
                for i in items {
                    if !have.contains(i) {
                        have.push(i.clone());
                    }
                }
            }
        }
        ListType::Map(keys) => {
            if !slot.is_array() {
                *slot = Value::Array(Vec::new());
            }
            let Value::Array(have) = slot else { return };
            for item in items {
                let same = |h: &Value| keys.iter().all(|k| h.get(*k) == item.get(*k));
                match have.iter_mut().find(|h| same(h)) {
                    Some(existing) => merge(res, existing, item, names),
                    None => have.push(item.clone()),
                }
            }
        }
    }
}

/// Records a non-apply write (create, update, patch) by `manager`: it now
/// owns the fields it changed, and nobody owns fields that are gone.
pub fn track_update(
    res: &ResourceType,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    now: &str,
) {
    let scope = Scope::of(res, subresource);
    let sub = subresource.unwrap_or("");
    let mut entries = old.map(read_entries).unwrap_or_default();
    let new_set = fieldset::of_object(res, new, scope);
    let old_set = old
        .map(|o| fieldset::of_object(res, o, scope))
        .unwrap_or_default();
    let changed: FieldSet = new_set
        .iter()
        .filter(|p| {
            if fieldset::has_descendant(&new_set, p) {
                !old_set.contains(*p)
            } else {
                old.and_then(|o| fieldset::value_at(o, p)) != fieldset::value_at(new, p)
            }
        })
        .cloned()
        .collect();
    let removed: FieldSet = old_set.difference(&new_set).cloned().collect();
    if !changed.is_empty() || !removed.is_empty() {
        for e in entries.iter_mut() {
            if !e.is(manager, "Update", sub) {
                e.set
                    .retain(|p| !changed.contains(p) && !removed.contains(p));
            }
        }
        match entries.iter_mut().find(|e| e.is(manager, "Update", sub)) {
            Some(mine) => {
                mine.set.extend(changed);
                mine.set.retain(|p| !removed.contains(p));
                mine.time = now.to_string();
                mine.api_version = res.api_version();
            }
            None => entries.push(Entry {
                manager: manager.to_string(),
                operation: "Update".into(),
                api_version: res.api_version(),
                time: now.to_string(),
                subresource: sub.to_string(),
                set: changed,
            }),
        }
        entries.retain(|e| !e.set.is_empty());
    }
    write_entries(new, &entries);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube_api::resources::lookup;

    const NOW: &str = "2025-01-01T00:00:00Z";

    fn pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "p", "namespace": "shop", "labels": {"app": "web"}},
               "spec": {"containers": [{"name": "app", "image": "web:1"}]}})
    }

    fn labels(obj: &Value) -> Value {
        obj["metadata"]["labels"].clone()
    }

    #[test]
    fn apply_adds_and_later_removes_its_own_fields() {
        let pods = lookup("pods").expect("served");
        let mut current = pod();
        track_update(pods, None, &mut current, "kubectl", None, NOW);
        let q = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p",
                       "labels": {"riposte.io/quarantine": "true"}, "annotations": {"riposte.io/reason": "c2"}}});
        let after =
            apply(pods, Some(&current), &q, "riposte", false, None, NOW).expect("no conflict");
        assert_eq!(
            labels(&after),
            json!({"app": "web", "riposte.io/quarantine": "true"})
        );
        let entries = read_entries(&after);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].manager, "riposte");
        assert_eq!(entries[1].operation, "Apply");

        let release = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
        let released =
            apply(pods, Some(&after), &release, "riposte", false, None, NOW).expect("ok");
        assert_eq!(labels(&released), json!({"app": "web"}));
        assert!(
            released["metadata"].get("annotations").is_none(),
            "emptied map is dropped"
        );
        assert_eq!(
            read_entries(&released).len(),
            1,
            "an apply owning nothing is dropped"
        );
    }

    #[test]
    fn fields_owned_by_another_manager_survive_removal() {
        let pods = lookup("pods").expect("served");
        let cfg = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"x": "1"}}});
        let a = apply(pods, Some(&pod()), &cfg, "a", false, None, NOW).expect("ok");
        let b = apply(pods, Some(&a), &cfg, "b", false, None, NOW).expect("same value: shared");
        let empty = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
        let a_gone = apply(pods, Some(&b), &empty, "a", false, None, NOW).expect("ok");
        assert_eq!(labels(&a_gone)["x"], "1", "b still owns it");
    }

    #[test]
    fn a_different_value_conflicts_unless_forced() {
        let pods = lookup("pods").expect("served");
        let a = apply(pods, Some(&pod()),
            &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"team": "red"}}}),
            "a", false, None, NOW).expect("ok");
        let other = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"team": "blue"}}});
        let err = apply(pods, Some(&a), &other, "b", false, None, NOW).expect_err("conflict");
        assert_eq!(
            err,
            vec![("\"a\"".to_string(), ".metadata.labels.team".to_string())]
        );
        let forced = apply(pods, Some(&a), &other, "b", true, None, NOW).expect("forced");
        assert_eq!(labels(&forced)["team"], "blue");
        let entries = read_entries(&forced);
        assert!(
            entries.iter().all(|e| e.manager != "a"),
            "a lost its only field"
        );
    }

    #[test]
    fn objects_without_managed_fields_are_owned_before_first_apply() {
        let pods = lookup("pods").expect("served");
        let cfg = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"app": "db"}}});
        let err =
            apply(pods, Some(&pod()), &cfg, "riposte", false, None, NOW).expect_err("conflict");
        assert!(
            err[0].0.starts_with("\"before-first-apply\" using v1"),
            "{err:?}"
        );
    }

    #[test]
    fn keyed_lists_merge_by_key() {
        let pods = lookup("pods").expect("served");
        let cfg = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "debug", "image": "busybox"}]}});
        let mut current = pod();
        track_update(pods, None, &mut current, "kubectl", None, NOW);
        let out = apply(pods, Some(&current), &cfg, "riposte", false, None, NOW).expect("ok");
        let names: Vec<&str> = out["spec"]["containers"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, ["app", "debug"]);
    }

    #[test]
    fn updates_take_ownership_of_what_they_change() {
        let pods = lookup("pods").expect("served");
        let applied = apply(pods, None,
            &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"team": "red"}}}),
            "riposte", false, None, NOW).expect("ok");
        let mut edited = applied.clone();
        edited["metadata"]["labels"]["team"] = json!("blue");
        track_update(pods, Some(&applied), &mut edited, "kubectl-edit", None, NOW);
        let entries = read_entries(&edited);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].manager, "kubectl-edit");
        assert_eq!(entries[0].operation, "Update");
    }

    #[test]
    fn status_is_out_of_scope_for_the_main_resource() {
        let pods = lookup("pods").expect("served");
        let cfg = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                         "status": {"phase": "Failed"}});
        let out = apply(pods, Some(&pod()), &cfg, "riposte", false, None, NOW).expect("ok");
        assert!(out.get("status").is_none());
        let out = apply(
            pods,
            Some(&pod()),
            &cfg,
            "riposte",
            false,
            Some("status"),
            NOW,
        )
        .expect("ok");
        assert_eq!(out["status"]["phase"], "Failed");
        assert_eq!(
            read_entries(&out).last().map(|e| e.subresource.as_str()),
            Some("status")
        );
    }
}
