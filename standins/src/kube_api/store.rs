//! Objects, the global resourceVersion counter, and the retained change
//! history that watches, paged lists and `resourceVersionMatch=Exact` are
//! served from.
//!
//! Everything sits behind one mutex: writes are short, and one lock makes
//! every list a consistent snapshot and every resourceVersion unique.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::watch;

use super::resources::{ResourceType, RESOURCES};
use super::status::ApiError;

/// How many changes the history keeps by default: a watch or continue
/// token older than that gets 410 Expired, as after an etcd compaction.
pub const DEFAULT_HISTORY: usize = 1000;

/// A store key: (type index, namespace or "" for cluster scope, name).
pub type Key = (usize, String, String);

/// The kind of a change, as watch events name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One committed change.
#[derive(Debug)]
pub struct Change {
    pub rv: u64,
    pub res: usize,
    pub kind: ChangeType,
    /// The object after the change; for a deletion, the last state
    /// stamped with the deletion's resourceVersion.
    pub object: Arc<Value>,
    /// The object before the change (modifications and deletions).
    pub prev: Option<Arc<Value>>,
}

impl Change {
    fn key(&self) -> (String, String) {
        ns_name(&self.object)
    }
}

/// The namespace and name of an object.
pub fn ns_name(obj: &Value) -> (String, String) {
    let m = obj.get("metadata");
    let s = |k: &str| {
        m.and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    (s("namespace"), s("name"))
}

#[derive(Debug)]
struct State {
    objects: BTreeMap<Key, Arc<Value>>,
    rv: u64,
    history: VecDeque<Arc<Change>>,
    history_cap: usize,
    /// The newest resourceVersion no longer in `history`.
    compacted: u64,
}

/// The object store.
#[derive(Debug)]
pub struct Store {
    state: Mutex<State>,
    notify: watch::Sender<u64>,
}

impl Store {
    pub fn new(history_cap: usize) -> Self {
        let (notify, _) = watch::channel(1);
        Self {
            state: Mutex::new(State {
                objects: BTreeMap::new(),
                rv: 1,
                history: VecDeque::new(),
                history_cap: history_cap.max(1),
                compacted: 1,
            }),
            notify,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every
        // write is committed at the end), so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` as one transaction; watchers are woken if it wrote.
    pub fn transact<T>(
        &self,
        f: impl FnOnce(&mut Txn<'_>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut st = self.lock();
        let before = st.rv;
        let mut txn = Txn { st: &mut st };
        let out = f(&mut txn);
        let after = st.rv;
        drop(st);
        if after != before {
            self.notify.send_replace(after);
        }
        out
    }

    /// The current resourceVersion.
    pub fn rv(&self) -> u64 {
        self.lock().rv
    }

    /// Wakes on every committed write (the value is the newest rv).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.notify.subscribe()
    }

    pub fn get(&self, res: &ResourceType, ns: &str, name: &str) -> Option<Arc<Value>> {
        let st = self.lock();
        st.objects
            .get(&(res.index(), scope_ns(res, ns), name.to_string()))
            .cloned()
    }

    /// Objects of `res` (in `ns`, or everywhere) as of `at` (None: now),
    /// with key after `after`, in key order, and the rv they are as of.
    pub fn list(
        &self,
        res: &ResourceType,
        ns: Option<&str>,
        at: Option<u64>,
        after: Option<&(String, String)>,
    ) -> Result<(Vec<Arc<Value>>, u64), ApiError> {
        let st = self.lock();
        let idx = res.index();
        let at_rv = at.unwrap_or(st.rv);
        if at_rv > st.rv {
            return Err(ApiError::too_large_resource_version(at_rv, st.rv));
        }
        if at_rv < st.compacted {
            return Err(ApiError::expired(format!(
                "too old resource version: {at_rv} ({})",
                st.compacted + 1
            )));
        }
        let in_scope =
            |k: &(String, String)| ns.is_none_or(|n| k.0 == n) && after.is_none_or(|a| k > a);
        let current = range(&st.objects, idx, ns, after);
        let rewinding = st
            .history
            .iter()
            .rev()
            .take_while(|c| c.rv > at_rv)
            .any(|c| c.res == idx && in_scope(&c.key()));
        if !rewinding {
            return Ok((current.map(|(_, v)| v.clone()).collect(), at_rv));
        }
        let mut snap: BTreeMap<(String, String), Arc<Value>> = current
            .map(|((_, n, m), v)| ((n.clone(), m.clone()), v.clone()))
            .collect();
        for c in st.history.iter().rev().take_while(|c| c.rv > at_rv) {
            let key = c.key();
            if c.res != idx || !in_scope(&key) {
                continue;
            }
            match (c.kind, &c.prev) {
                (ChangeType::Added, _) => {
                    snap.remove(&key);
                }
                (_, Some(prev)) => {
                    snap.insert(key, prev.clone());
                }
                (_, None) => {}
            }
        }
        Ok((snap.into_values().collect(), at_rv))
    }

    /// Changes after `rv`, or `Err(oldest retained rv)` when some of them
    /// are no longer retained.
    pub fn changes_since(&self, rv: u64) -> Result<Vec<Arc<Change>>, u64> {
        let st = self.lock();
        if rv < st.compacted {
            return Err(st.compacted + 1);
        }
        let start = st.history.partition_point(|c| c.rv <= rv);
        Ok(st.history.range(start..).cloned().collect())
    }

    /// Forgets all history, as an etcd compaction does: any watch or
    /// continue token from before now gets 410 Expired.
    pub fn compact(&self) {
        let mut st = self.lock();
        st.history.clear();
        st.compacted = st.rv;
    }
}

fn scope_ns(res: &ResourceType, ns: &str) -> String {
    if res.namespaced {
        ns.to_string()
    } else {
        String::new()
    }
}

type Range<'a> = Box<dyn Iterator<Item = (&'a Key, &'a Arc<Value>)> + 'a>;

fn range<'a>(
    objects: &'a BTreeMap<Key, Arc<Value>>,
    idx: usize,
    ns: Option<&'a str>,
    after: Option<&'a (String, String)>,
) -> Range<'a> {
    let start: Key = match (ns, after) {
        (_, Some((n, m))) => (idx, n.clone(), m.clone()),
        (Some(n), None) => (idx, n.to_string(), String::new()),
        (None, None) => (idx, String::new(), String::new()),
    };
    Box::new(
        objects
            .range(start..)
            .take_while(move |(k, _)| k.0 == idx && ns.is_none_or(|n| k.1 == n))
            .filter(move |(k, _)| after.is_none_or(|(n, m)| (&k.1, &k.2) > (n, m))),
    )
}

/// Writes inside one [`Store::transact`].
#[derive(Debug)]
pub struct Txn<'a> {
    st: &'a mut State,
}

impl Txn<'_> {
    pub fn get(&self, res: &ResourceType, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.st
            .objects
            .get(&(res.index(), scope_ns(res, ns), name.to_string()))
            .cloned()
    }

    /// The resourceVersion the next write will get.
    pub fn next_rv(&self) -> u64 {
        self.st.rv + 1
    }

    /// Every object of `res` in `ns` (or everywhere).
    pub fn list(&self, res: &ResourceType, ns: Option<&str>) -> Vec<Arc<Value>> {
        range(&self.st.objects, res.index(), ns, None)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Stores `obj` under a new resourceVersion (written into its
    /// metadata) and records the change.
    pub fn put(&mut self, res: &ResourceType, mut obj: Value) -> Arc<Value> {
        self.st.rv += 1;
        let rv = self.st.rv;
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        let (ns, name) = ns_name(&obj);
        let key = (res.index(), scope_ns(res, &ns), name);
        let obj = Arc::new(obj);
        let prev = self.st.objects.insert(key, obj.clone());
        let kind = if prev.is_some() {
            ChangeType::Modified
        } else {
            ChangeType::Added
        };
        self.record(Change {
            rv,
            res: res.index(),
            kind,
            object: obj.clone(),
            prev,
        });
        obj
    }

    /// Removes an object; returns its last state stamped with the
    /// deletion's resourceVersion.
    pub fn remove(&mut self, res: &ResourceType, ns: &str, name: &str) -> Option<Arc<Value>> {
        let key = (res.index(), scope_ns(res, ns), name.to_string());
        let prev = self.st.objects.remove(&key)?;
        self.st.rv += 1;
        let rv = self.st.rv;
        let mut last = (*prev).clone();
        if let Some(meta) = last.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        let last = Arc::new(last);
        self.record(Change {
            rv,
            res: res.index(),
            kind: ChangeType::Deleted,
            object: last.clone(),
            prev: Some(prev),
        });
        Some(last)
    }

    /// Every object (of any type) in namespace `ns`, with its type.
    pub fn in_namespace(&self, ns: &str) -> Vec<(&'static ResourceType, Arc<Value>)> {
        self.st
            .objects
            .iter()
            .filter(|(k, _)| k.1 == ns && RESOURCES.get(k.0).is_some_and(|r| r.namespaced))
            .filter_map(|(k, v)| RESOURCES.get(k.0).map(|r| (r, v.clone())))
            .collect()
    }

    /// Objects (of any type, in `ns` or cluster scope) owned by `uid`.
    pub fn dependents(&self, ns: &str, uid: &str) -> Vec<(&'static ResourceType, Arc<Value>)> {
        self.st
            .objects
            .iter()
            .filter(|(k, _)| k.1 == ns || k.1.is_empty())
            .filter(|(_, v)| {
                v.get("metadata")
                    .and_then(|m| m.get("ownerReferences"))
                    .and_then(Value::as_array)
                    .is_some_and(|refs| {
                        refs.iter()
                            .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
                    })
            })
            .filter_map(|(k, v)| RESOURCES.get(k.0).map(|r| (r, v.clone())))
            .collect()
    }

    fn record(&mut self, change: Change) {
        self.st.history.push_back(Arc::new(change));
        while self.st.history.len() > self.st.history_cap {
            if let Some(old) = self.st.history.pop_front() {
                self.st.compacted = old.rv;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube_api::resources::lookup;
    use serde_json::json;

    fn pod(ns: &str, name: &str, v: u32) -> Value {
        json!({"metadata": {"namespace": ns, "name": name}, "v": v})
    }

    #[test]
    fn every_write_gets_a_new_resource_version() {
        let pods = lookup("pods").expect("served");
        let store = Store::new(10);
        let a = store
            .transact(|t| Ok(t.put(pods, pod("a", "p", 1))))
            .expect("ok");
        let b = store
            .transact(|t| Ok(t.put(pods, pod("a", "p", 2))))
            .expect("ok");
        assert_eq!(a["metadata"]["resourceVersion"], "2");
        assert_eq!(b["metadata"]["resourceVersion"], "3");
        let gone = store
            .transact(|t| Ok(t.remove(pods, "a", "p")))
            .expect("ok")
            .expect("existed");
        assert_eq!(gone["metadata"]["resourceVersion"], "4");
        assert_eq!(store.rv(), 4);
    }

    #[test]
    fn lists_rewind_to_an_older_resource_version() {
        let pods = lookup("pods").expect("served");
        let store = Store::new(100);
        store
            .transact(|t| {
                t.put(pods, pod("a", "p1", 1));
                t.put(pods, pod("a", "p2", 1));
                Ok(())
            })
            .expect("ok");
        let then = store.rv();
        store
            .transact(|t| {
                t.put(pods, pod("a", "p1", 2));
                t.remove(pods, "a", "p2");
                t.put(pods, pod("a", "p3", 1));
                Ok(())
            })
            .expect("ok");
        let (old, rv) = store
            .list(pods, Some("a"), Some(then), None)
            .expect("retained");
        assert_eq!(rv, then);
        let names: Vec<(String, u64)> = old
            .iter()
            .map(|o| (ns_name(o).1, o["v"].as_u64().unwrap_or(0)))
            .collect();
        assert_eq!(names, [("p1".to_string(), 1), ("p2".to_string(), 1)]);
        let (now, _) = store.list(pods, None, None, None).expect("ok");
        assert_eq!(now.len(), 2);
        let after = ("a".to_string(), "p1".to_string());
        let (rest, _) = store
            .list(pods, Some("a"), Some(then), Some(&after))
            .expect("ok");
        assert_eq!(rest.len(), 1);
    }

    #[test]
    fn history_beyond_the_window_is_expired() {
        let pods = lookup("pods").expect("served");
        let store = Store::new(2);
        let start = store.rv();
        for i in 0..5 {
            store
                .transact(|t| Ok(t.put(pods, pod("a", &format!("p{i}"), 1))))
                .expect("ok");
        }
        assert!(store.changes_since(start).is_err());
        assert_eq!(store.changes_since(store.rv() - 2).map(|c| c.len()), Ok(2));
        let err = store
            .list(pods, None, Some(start), None)
            .expect_err("expired");
        assert_eq!(err.code, 410);
        store.compact();
        assert!(store.changes_since(store.rv() - 1).is_err());
        assert_eq!(store.changes_since(store.rv()).map(|c| c.len()), Ok(0));
    }
}
