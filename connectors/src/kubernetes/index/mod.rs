//! The pod index: which pod has an address, and which pods are quarantined.
//!
//! Watches (kube-runtime watchers, each with the default backoff) on pods
//! and namespaces, plus the metadata of ReplicaSets and Jobs to resolve a
//! pod's owner to its top workload (Deployment through its ReplicaSet,
//! CronJob through its Job; StatefulSet and DaemonSet own their pods
//! directly). Cluster-wide, or one set of watches per configured namespace.
//!
//! `resolve` runs for every event: it is one `DashMap` read and an `Arc`
//! clone. Everything else reads a slim copy of each pod under a read lock.
//!
//! Quarantines are read back from the pods' labels and annotations, at
//! start (the initial list) and from then on from the watch; subscribers
//! of [`PodIndex::quarantine_changes`] learn of each new, changed or lifted
//! quarantine, which is how the engine's expiry scheduler survives restarts.

mod entry;
mod slim;
mod store;
mod watch;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use riposte_firewall::PodContext;
use tokio::sync::{broadcast, watch as tokio_watch};

pub use entry::Controller;
pub use store::{QuarantineChange, WorkloadCounts};

use crate::kubernetes::config::KubernetesConfig;
use crate::kubernetes::state::QuarantineState;
use crate::kubernetes::target::PodRef;
use entry::RawPod;
use store::{Effects, Store};

/// How many quarantine changes a slow subscriber may fall behind before it
/// gets `Lagged` (and should re-read [`PodIndex::quarantined`]).
const CHANGES_CAPACITY: usize = 1024;

/// Health of the index, for `/readyz` and the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexStatus {
    /// Every watch has completed its first full list.
    pub ready: bool,
    pub pods: usize,
    pub addresses: usize,
    pub quarantined: usize,
    /// Watch errors since start (each is retried with backoff).
    pub watch_errors: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

#[derive(Debug)]
struct Inner {
    table: DashMap<IpAddr, Arc<PodContext>>,
    store: RwLock<Store>,
    ready: tokio_watch::Sender<bool>,
    changes: broadcast::Sender<QuarantineChange>,
    watch_errors: AtomicU64,
    last_error: Mutex<Option<(DateTime<Utc>, String)>>,
}

/// The pod index. Cheap to clone; the watches stop when the last clone of
/// an index made by [`PodIndex::spawn`] is dropped.
#[derive(Debug, Clone)]
pub struct PodIndex {
    inner: Arc<Inner>,
    _task: Option<Arc<TaskGuard>>,
}

#[derive(Debug)]
struct TaskGuard(tokio::task::JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl PodIndex {
    /// An index that no watch feeds: for tests, benches and offline tools,
    /// fed through [`PodIndex::apply_pod`] and friends. Ready at once.
    pub fn offline(quarantine_label: &str) -> PodIndex {
        let index = PodIndex::empty(quarantine_label);
        index.inner.ready.send_replace(true);
        index
    }

    fn empty(quarantine_label: &str) -> PodIndex {
        let (ready, _) = tokio_watch::channel(false);
        let (changes, _) = broadcast::channel(CHANGES_CAPACITY);
        PodIndex {
            inner: Arc::new(Inner {
                table: DashMap::new(),
                store: RwLock::new(Store::new(quarantine_label)),
                ready,
                changes,
                watch_errors: AtomicU64::new(0),
                last_error: Mutex::new(None),
            }),
            _task: None,
        }
    }

    /// Starts the watches against the cluster. Must run inside a Tokio
    /// runtime; returns at once (see [`PodIndex::ready`]).
    pub fn spawn(client: kube::Client, config: &KubernetesConfig) -> PodIndex {
        let mut index = PodIndex::empty(&config.quarantine.label);
        let streams = watch::streams(client, &config.namespaces);
        let inner = index.inner.clone();
        let task = tokio::spawn(watch::run(inner, streams));
        index._task = Some(Arc::new(TaskGuard(task)));
        index
    }

    /// The pod that has this address now, with its namespace's labels.
    #[inline]
    pub fn resolve(&self, ip: IpAddr) -> Option<Arc<PodContext>> {
        self.inner.table.get(&ip).map(|c| c.value().clone())
    }

    /// Resolves after every watch has completed its first full list.
    pub async fn ready(&self) {
        let mut rx = self.inner.ready.subscribe();
        // An error means the sender is gone, which cannot happen while we
        // hold `inner`; either way there is nothing more to wait for.
        let _ = rx.wait_for(|r| *r).await;
    }

    pub fn is_ready(&self) -> bool {
        *self.inner.ready.borrow()
    }

    /// One pod by name.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<Arc<PodContext>> {
        self.read().pod(namespace, name).map(|e| e.ctx.clone())
    }

    /// The addresses a pod holds now: those that resolve to it (an ended
    /// pod has given its address up; a host-network pod's is its node's,
    /// never the pod's own).
    pub fn pod_addresses(&self, namespace: &str, name: &str) -> Vec<IpAddr> {
        // Copied out so the address table is read without the store lock.
        let ips: Vec<IpAddr> = match self.read().pod(namespace, name) {
            Some(entry) if !entry.host_network => entry.ips.to_vec(),
            _ => return Vec::new(),
        };
        ips.into_iter()
            .filter(|ip| {
                self.inner
                    .table
                    .get(ip)
                    .is_some_and(|c| c.namespace == namespace && c.name == name)
            })
            .collect()
    }

    /// Live pods (not finished, not being deleted) of a namespace carrying
    /// every label of `selector`, sorted by name.
    pub fn pods_matching(
        &self,
        namespace: &str,
        selector: &BTreeMap<String, String>,
    ) -> Vec<PodRef> {
        self.read().pods_matching(namespace, selector)
    }

    /// Counts of the live pods whose top owner is `owner_kind`/`owner_name`.
    pub fn workload_counts(
        &self,
        namespace: &str,
        owner_kind: &str,
        owner_name: &str,
    ) -> WorkloadCounts {
        self.read()
            .workload_counts(namespace, owner_kind, owner_name)
    }

    /// A namespace's labels; None until the namespace watch has seen it.
    pub fn namespace_labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        self.read().namespace_labels(namespace)
    }

    /// Every pod carrying the quarantine label, with its annotations read.
    pub fn quarantined(&self) -> Vec<Arc<QuarantineState>> {
        self.read().quarantined()
    }

    /// One pod's quarantine, when it carries the label: a repeated
    /// quarantine is answered from here without an API call.
    pub fn quarantine_of(&self, namespace: &str, name: &str) -> Option<Arc<QuarantineState>> {
        self.read().quarantine_of(namespace, name)
    }

    /// Quarantine changes from now on. On `RecvError::Lagged`, re-read
    /// [`PodIndex::quarantined`]: it is always complete.
    pub fn quarantine_changes(&self) -> broadcast::Receiver<QuarantineChange> {
        self.inner.changes.subscribe()
    }

    pub fn status(&self) -> IndexStatus {
        let (pods, quarantined) = {
            let s = self.read();
            (s.pod_count(), s.quarantined().len())
        };
        let last = self
            .inner
            .last_error
            .lock()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        IndexStatus {
            ready: self.is_ready(),
            pods,
            addresses: self.inner.table.len(),
            quarantined,
            watch_errors: self.inner.watch_errors.load(Ordering::Relaxed),
            last_error_at: last.as_ref().map(|(t, _)| *t),
            last_error: last.map(|(_, m)| m),
        }
    }

    // ---- feeding (the watch task, and offline indexes) ----

    /// Adds or replaces a pod as the API server describes it.
    pub fn apply_pod(&self, pod: Pod) {
        if let Some(raw) = RawPod::from_pod(pod) {
            self.inner.with_store(|s, t, fx| s.upsert_pod(raw, t, fx));
        }
    }

    pub fn delete_pod(&self, namespace: &str, name: &str) {
        self.inner
            .with_store(|s, t, fx| s.remove_pod(namespace, name, t, fx));
    }

    pub fn apply_namespace(&self, ns: Namespace) {
        if let Some(name) = ns.metadata.name {
            let labels = ns.metadata.labels.unwrap_or_default();
            self.inner
                .with_store(|s, t, _| s.upsert_namespace(&name, labels, t));
        }
    }

    pub fn delete_namespace(&self, name: &str) {
        self.inner.with_store(|s, t, _| s.remove_namespace(name, t));
    }

    /// Records who controls a ReplicaSet or a Job (`kind` is `ReplicaSet` or
    /// `Job`; other kinds own their pods directly and need no record).
    pub fn apply_owner(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        controller: Option<Controller>,
    ) {
        if let Some(kind) = watch::owner_kind(kind) {
            self.inner
                .with_store(|s, t, _| s.upsert_owner(kind, namespace, name, controller, t));
        }
    }

    pub fn delete_owner(&self, kind: &str, namespace: &str, name: &str) {
        if let Some(kind) = watch::owner_kind(kind) {
            self.inner
                .with_store(|s, t, _| s.remove_owner(kind, namespace, name, t));
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Store> {
        // A panic while writing cannot leave the store half-updated in a way
        // worse than stale: keep serving.
        self.inner
            .store
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn with_store(
        &self,
        f: impl FnOnce(&mut Store, &DashMap<IpAddr, Arc<PodContext>>, &mut Effects),
    ) {
        let mut fx = Effects::default();
        {
            let mut store = self.write();
            f(&mut store, &self.table, &mut fx);
        }
        for change in fx.changes {
            // No subscriber is fine: the scheduler reads `quarantined()` at start.
            let _ = self.changes.send(change);
        }
    }

    fn record_error(&self, message: String) {
        self.watch_errors.fetch_add(1, Ordering::Relaxed);
        let mut g = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        *g = Some((Utc::now(), message));
    }
}

#[cfg(test)]
mod tests;
