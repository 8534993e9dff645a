//! The watches that feed the index, merged into one task.
//!
//! Each watch is a kube-runtime `watcher` with the default backoff, so an
//! API server that is down or answers errors is retried with growing pauses
//! (up to a few minutes) and the watch resumes or re-lists by itself. A
//! re-list replays the objects between `Init` and `InitDone`; whatever the
//! index held in that watch's scope and the re-list did not mention was
//! deleted while we were not looking, and is dropped at `InitDone`, so the
//! index never goes empty during a re-list.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;
use std::sync::Arc;

use futures::stream::{BoxStream, SelectAll};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Namespace;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

use super::entry::{Controller, RawPod};
use super::slim::SlimPod;
use super::store::Effects;
use super::Inner;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Pods,
    Namespaces,
    ReplicaSets,
    Jobs,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Pods => "pods",
            Kind::Namespaces => "namespaces",
            Kind::ReplicaSets => "replicasets",
            Kind::Jobs => "jobs",
        }
    }
}

/// The two owner kinds whose own controller the index records.
pub(super) fn owner_kind(kind: &str) -> Option<&'static str> {
    match kind {
        "ReplicaSet" => Some("ReplicaSet"),
        "Job" => Some("Job"),
        _ => None,
    }
}

/// One object from any watch, reduced to what the index uses.
#[derive(Debug)]
pub(super) enum Item {
    Pod(Box<SlimPod>),
    Namespace {
        name: String,
        labels: BTreeMap<String, String>,
    },
    Owner {
        kind: &'static str,
        namespace: String,
        name: String,
        controller: Option<Controller>,
    },
}

impl Item {
    fn key(&self) -> (String, String) {
        match self {
            Item::Pod(p) => (
                p.metadata.namespace.clone().unwrap_or_default(),
                p.metadata.name.clone().unwrap_or_default(),
            ),
            Item::Namespace { name, .. } => (String::new(), name.clone()),
            Item::Owner {
                namespace, name, ..
            } => (namespace.clone(), name.clone()),
        }
    }
}

type ItemStream = BoxStream<'static, (usize, Result<Event<Item>, watcher::Error>)>;

pub(super) struct Source {
    kind: Kind,
    /// The namespace this watch covers; None: all of them.
    scope: Option<String>,
}

/// The watches for the configured namespaces (empty: cluster-wide).
pub(super) fn streams(
    client: kube::Client,
    namespaces: &[String],
) -> (Vec<Source>, Vec<ItemStream>) {
    let mut sources = Vec::new();
    let mut streams: Vec<ItemStream> = Vec::new();
    let scopes: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.iter().cloned().map(Some).collect()
    };
    for scope in scopes {
        let id = sources.len();
        let (pods, rs, jobs): (
            Api<SlimPod>,
            Api<PartialObjectMeta<ReplicaSet>>,
            Api<PartialObjectMeta<Job>>,
        ) = match &scope {
            None => (
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
            ),
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
        };
        // Namespaces are cluster objects; a scoped watch asks for one by name,
        // which RBAC can grant with resourceNames.
        let ns_api: Api<Namespace> = Api::all(client.clone());
        let ns_config = match &scope {
            None => watcher::Config::default(),
            Some(ns) => watcher::Config::default().fields(&format!("metadata.name={ns}")),
        };
        streams.push(watch(id, pods, watcher::Config::default(), |p| {
            Some(Item::Pod(Box::new(p)))
        }));
        sources.push(Source {
            kind: Kind::Pods,
            scope: scope.clone(),
        });
        streams.push(watch(id + 1, ns_api, ns_config, |n: Namespace| {
            Some(Item::Namespace {
                name: n.metadata.name?,
                labels: n.metadata.labels.unwrap_or_default(),
            })
        }));
        sources.push(Source {
            kind: Kind::Namespaces,
            scope: scope.clone(),
        });
        streams.push(watch(id + 2, rs, watcher::Config::default(), |m| {
            owner_item("ReplicaSet", m)
        }));
        sources.push(Source {
            kind: Kind::ReplicaSets,
            scope: scope.clone(),
        });
        streams.push(watch(id + 3, jobs, watcher::Config::default(), |m| {
            owner_item("Job", m)
        }));
        sources.push(Source {
            kind: Kind::Jobs,
            scope,
        });
    }
    (sources, streams)
}

fn owner_item<K>(kind: &'static str, m: PartialObjectMeta<K>) -> Option<Item> {
    Some(Item::Owner {
        kind,
        namespace: m.metadata.namespace?,
        name: m.metadata.name?,
        controller: Controller::of(m.metadata.owner_references.as_ref()),
    })
}

fn watch<K>(
    id: usize,
    api: Api<K>,
    config: watcher::Config,
    convert: impl Fn(K) -> Option<Item> + Send + Sync + 'static,
) -> ItemStream
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    watcher::watcher(api, config)
        .default_backoff()
        .filter_map(move |r| {
            let out = match r {
                Ok(ev) => map_event(ev, &convert).map(Ok),
                Err(e) => Some(Err(e)),
            };
            futures::future::ready(out.map(|r| (id, r)))
        })
        .boxed()
}

/// None for an object the converter refuses (no name): it is skipped.
fn map_event<K>(ev: Event<K>, f: &impl Fn(K) -> Option<Item>) -> Option<Event<Item>> {
    Some(match ev {
        Event::Apply(k) => Event::Apply(f(k)?),
        Event::Delete(k) => Event::Delete(f(k)?),
        Event::InitApply(k) => Event::InitApply(f(k)?),
        Event::Init => Event::Init,
        Event::InitDone => Event::InitDone,
    })
}

#[derive(Debug, Default)]
struct SyncState {
    synced_once: bool,
    /// Keys seen since the last `Init`, while a (re-)list is in progress.
    seen: Option<HashSet<(String, String)>>,
}

/// Consumes every watch until the index is dropped.
pub(super) async fn run(inner: Arc<Inner>, (sources, streams): (Vec<Source>, Vec<ItemStream>)) {
    let mut all: SelectAll<ItemStream> = futures::stream::select_all(streams);
    let mut sync: Vec<SyncState> = sources.iter().map(|_| SyncState::default()).collect();
    while let Some((id, item)) = all.next().await {
        let (Some(source), Some(state)) = (sources.get(id), sync.get_mut(id)) else {
            continue;
        };
        match item {
            Ok(ev) => handle(&inner, source, state, ev),
            Err(e) => {
                tracing::warn!(watch = source.kind.name(), namespace = source.scope.as_deref().unwrap_or("*"), error = %e, "pod index watch failed; retrying with backoff");
                inner.record_error(format!("{} watch: {e}", source.kind.name()));
            }
        }
        if !*inner.ready.borrow() && sync.iter().all(|s| s.synced_once) {
            tracing::info!("pod index synced");
            inner.ready.send_replace(true);
        }
    }
}

fn handle(inner: &Inner, source: &Source, state: &mut SyncState, ev: Event<Item>) {
    match ev {
        Event::Init => state.seen = Some(HashSet::new()),
        Event::InitApply(item) => {
            if let Some(seen) = state.seen.as_mut() {
                seen.insert(item.key());
            }
            apply(inner, item);
        }
        Event::Apply(item) => apply(inner, item),
        Event::Delete(item) => delete(inner, item),
        Event::InitDone => {
            let seen = state.seen.take().unwrap_or_default();
            prune(inner, source, &seen);
            state.synced_once = true;
        }
    }
}

fn apply(inner: &Inner, item: Item) {
    match item {
        Item::Pod(p) => {
            if let Some(raw) = RawPod::from_slim(*p) {
                inner.with_store(|s, t, fx| s.upsert_pod(raw, t, fx));
            }
        }
        Item::Namespace { name, labels } => {
            inner.with_store(|s, t, _| s.upsert_namespace(&name, labels, t));
        }
        Item::Owner {
            kind,
            namespace,
            name,
            controller,
        } => inner.with_store(|s, t, _| s.upsert_owner(kind, &namespace, &name, controller, t)),
    }
}

fn delete(inner: &Inner, item: Item) {
    let (namespace, name) = item.key();
    match item {
        Item::Pod(_) => inner.with_store(|s, t, fx| s.remove_pod(&namespace, &name, t, fx)),
        Item::Namespace { .. } => inner.with_store(|s, t, _| s.remove_namespace(&name, t)),
        Item::Owner { kind, .. } => {
            inner.with_store(|s, t, _| s.remove_owner(kind, &namespace, &name, t))
        }
    }
}

/// Drops what the finished list did not mention, within the watch's scope.
fn prune(inner: &Inner, source: &Source, seen: &HashSet<(String, String)>) {
    let scope = source.scope.as_deref();
    let stale: Vec<(String, String)> = {
        let store = inner.write();
        match source.kind {
            Kind::Pods => store.pod_keys(scope),
            Kind::Namespaces => store
                .namespace_names(scope)
                .into_iter()
                .map(|n| (String::new(), n))
                .collect(),
            Kind::ReplicaSets => store.owner_keys("ReplicaSet", scope),
            Kind::Jobs => store.owner_keys("Job", scope),
        }
    }
    .into_iter()
    .filter(|k| !seen.contains(k))
    .collect();
    if stale.is_empty() {
        return;
    }
    tracing::debug!(
        watch = source.kind.name(),
        stale = stale.len(),
        "dropping objects deleted while the watch was down"
    );
    let mut fx = Effects::default();
    {
        let mut store = inner.write();
        for (ns, name) in &stale {
            match source.kind {
                Kind::Pods => store.remove_pod(ns, name, &inner.table, &mut fx),
                Kind::Namespaces => store.remove_namespace(name, &inner.table),
                Kind::ReplicaSets => store.remove_owner("ReplicaSet", ns, name, &inner.table),
                Kind::Jobs => store.remove_owner("Job", ns, name, &inner.table),
            }
        }
    }
    for change in fx.changes {
        let _ = inner.changes.send(change);
    }
}
