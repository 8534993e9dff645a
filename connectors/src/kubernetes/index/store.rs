//! The index's state and the rules that keep it consistent.
//!
//! One writer (the watch task) changes it under a write lock; the address
//! table that every event reads is a separate `DashMap` updated by the same
//! writer, so `resolve` never waits for the lock. Each change records which
//! addresses it touched and re-elects their owner (see
//! [`PodEntry::claim_rank`]).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use dashmap::DashMap;
use riposte_firewall::PodContext;

use crate::kubernetes::index::entry::{Controller, PodEntry, RawPod};
use crate::kubernetes::state::QuarantineState;
use crate::kubernetes::target::PodRef;

/// A change to the set of quarantined pods, as the watch saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum QuarantineChange {
    /// A pod became quarantined, or its quarantine changed (a new expiry).
    Set(Arc<QuarantineState>),
    /// A pod is no longer quarantined (released, or deleted).
    Cleared(PodRef),
}

/// Pod counts of one workload, for the "share of a workload" guardrail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkloadCounts {
    /// Live pods (not finished, not being deleted).
    pub pods: usize,
    /// Live pods that are Ready and not quarantined: the capacity left.
    pub ready: usize,
    /// Live pods carrying the quarantine label.
    pub quarantined: usize,
}

#[derive(Debug, Default)]
pub(crate) struct NsState {
    /// Seen by the namespace watch; until then the labels are unknown.
    pub known: bool,
    pub labels: BTreeMap<String, String>,
    pub pods: HashMap<String, PodEntry>,
}

type PodKey = (String, String);
/// (namespace, kind, name) of a ReplicaSet or a Job.
type OwnerKey = (String, &'static str, String);

/// Everything but the address table.
#[derive(Debug)]
pub(crate) struct Store {
    quarantine_label: String,
    pub(crate) namespaces: HashMap<String, NsState>,
    /// The controller of each ReplicaSet and Job (None: it has none).
    owners: HashMap<OwnerKey, Option<Controller>>,
    /// Every pod claiming each address; the table holds the winner.
    claims: HashMap<IpAddr, Vec<Claim>>,
    quarantined: HashMap<PodKey, Arc<QuarantineState>>,
}

/// One pod's claim on an address. Holding the pod's current context (not
/// its key) keeps this small (24 bytes) and lets an election run without
/// looking pods up.
#[derive(Debug, Clone)]
struct Claim {
    ctx: Arc<PodContext>,
    rank: (u8, i64),
}

impl Claim {
    fn is(&self, key: &PodKey) -> bool {
        self.ctx.namespace == key.0 && self.ctx.name == key.1
    }

    /// Rank first; names only make ties deterministic.
    fn order(&self) -> ((u8, i64), &str, &str) {
        (self.rank, &self.ctx.name, &self.ctx.namespace)
    }
}

/// What one change did, for the caller to publish.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub changes: Vec<QuarantineChange>,
}

impl Store {
    pub(crate) fn new(quarantine_label: &str) -> Store {
        Store {
            quarantine_label: quarantine_label.to_owned(),
            namespaces: HashMap::new(),
            owners: HashMap::new(),
            claims: HashMap::new(),
            quarantined: HashMap::new(),
        }
    }

    fn top_owner(&self, ns: &str, c: &Option<Controller>) -> (Option<String>, Option<String>) {
        let Some(c) = c else {
            return (None, None);
        };
        let kind: Option<&'static str> = match c.kind.as_str() {
            "ReplicaSet" => Some("ReplicaSet"),
            "Job" => Some("Job"),
            _ => None,
        };
        if let Some(kind) = kind {
            let key = (ns.to_owned(), kind, c.name.clone());
            if let Some(Some(top)) = self.owners.get(&key) {
                return (Some(top.kind.clone()), Some(top.name.clone()));
            }
        }
        (Some(c.kind.clone()), Some(c.name.clone()))
    }

    fn context(&self, raw: &RawPod) -> PodContext {
        let (owner_kind, owner_name) = self.top_owner(&raw.namespace, &raw.controller);
        PodContext {
            namespace: raw.namespace.clone(),
            name: raw.name.clone(),
            uid: raw.uid.clone(),
            labels: raw.labels.clone(),
            owner_kind,
            owner_name,
            node: raw.node.clone(),
            service_account: raw.service_account.clone(),
            phase: raw.phase.clone(),
            namespace_labels: self
                .namespaces
                .get(&raw.namespace)
                .map(|n| n.labels.clone())
                .unwrap_or_default(),
        }
    }

    fn is_quarantined(&self, ctx: &PodContext) -> bool {
        ctx.labels.get(&self.quarantine_label).map(String::as_str) == Some("true")
    }

    /// Adds or replaces a pod.
    pub(crate) fn upsert_pod(
        &mut self,
        raw: RawPod,
        table: &DashMap<IpAddr, Arc<PodContext>>,
        fx: &mut Effects,
    ) {
        let ctx = Arc::new(self.context(&raw));
        let entry = PodEntry {
            ctx,
            ips: raw.ips.into_boxed_slice(),
            controller: raw.controller,
            started_ns: raw.started_ns,
            terminating: raw.terminating,
            ready: raw.ready,
            host_network: raw.host_network,
            riposte: raw.riposte,
        };
        let key = (raw.namespace, raw.name);
        let ns = self.namespaces.entry(key.0.clone()).or_default();
        let old = ns.pods.insert(key.1.clone(), entry.clone());
        let mut touched: Vec<IpAddr> = Vec::new();
        if let Some(old) = &old {
            if old.claim_rank().is_some() {
                for ip in old.ips.iter() {
                    self.unclaim(*ip, &key);
                    touched.push(*ip);
                }
            }
        }
        if let Some(rank) = entry.claim_rank() {
            for ip in entry.ips.iter() {
                self.claims.entry(*ip).or_default().push(Claim {
                    ctx: entry.ctx.clone(),
                    rank,
                });
                touched.push(*ip);
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for ip in touched {
            self.elect(ip, table);
        }
        self.track_quarantine(&key, Some(&entry), fx);
    }

    /// Forgets a pod.
    pub(crate) fn remove_pod(
        &mut self,
        namespace: &str,
        name: &str,
        table: &DashMap<IpAddr, Arc<PodContext>>,
        fx: &mut Effects,
    ) {
        let Some(ns) = self.namespaces.get_mut(namespace) else {
            return;
        };
        let Some(old) = ns.pods.remove(name) else {
            return;
        };
        if !ns.known && ns.pods.is_empty() {
            self.namespaces.remove(namespace);
        }
        let key = (namespace.to_owned(), name.to_owned());
        if old.claim_rank().is_some() {
            for ip in old.ips.iter() {
                self.unclaim(*ip, &key);
                self.elect(*ip, table);
            }
        }
        self.track_quarantine(&key, None, fx);
    }

    fn unclaim(&mut self, ip: IpAddr, key: &PodKey) {
        if let Some(list) = self.claims.get_mut(&ip) {
            list.retain(|c| !c.is(key));
            if list.is_empty() {
                self.claims.remove(&ip);
            }
        }
    }

    /// Puts the strongest claimant of `ip` into the table.
    fn elect(&self, ip: IpAddr, table: &DashMap<IpAddr, Arc<PodContext>>) {
        let winner = self
            .claims
            .get(&ip)
            .and_then(|list| list.iter().max_by(|a, b| a.order().cmp(&b.order())))
            .map(|c| c.ctx.clone());
        match winner {
            Some(ctx) => {
                let current = table.get(&ip).map(|c| Arc::ptr_eq(c.value(), &ctx));
                if current != Some(true) {
                    table.insert(ip, ctx);
                }
            }
            None => {
                table.remove(&ip);
            }
        }
    }

    fn track_quarantine(&mut self, key: &PodKey, entry: Option<&PodEntry>, fx: &mut Effects) {
        let now = entry.filter(|e| self.is_quarantined(&e.ctx)).map(|e| {
            let pod = PodRef::new(key.0.clone(), key.1.clone()).with_uid(e.ctx.uid.clone());
            QuarantineState::from_annotations(pod, &e.riposte)
        });
        match now {
            Some(state) => {
                let unchanged = self.quarantined.get(key).is_some_and(|old| **old == state);
                if !unchanged {
                    let state = Arc::new(state);
                    self.quarantined.insert(key.clone(), state.clone());
                    fx.changes.push(QuarantineChange::Set(state));
                }
            }
            None => {
                if let Some(old) = self.quarantined.remove(key) {
                    fx.changes.push(QuarantineChange::Cleared(old.pod.clone()));
                }
            }
        }
    }

    /// Rebuilds the contexts of the pods `pick` selects in one namespace
    /// (namespace labels or owner chain changed) and republishes their
    /// addresses.
    fn refresh(
        &mut self,
        namespace: &str,
        pick: impl Fn(&PodEntry) -> bool,
        table: &DashMap<IpAddr, Arc<PodContext>>,
    ) {
        let Some(ns) = self.namespaces.get(namespace) else {
            return;
        };
        let picked: Vec<String> = ns
            .pods
            .iter()
            .filter(|(_, e)| pick(e))
            .map(|(n, _)| n.clone())
            .collect();
        for name in picked {
            let Some(e) = self
                .namespaces
                .get(namespace)
                .and_then(|n| n.pods.get(&name))
            else {
                continue;
            };
            let (owner_kind, owner_name) = self.top_owner(namespace, &e.controller);
            let namespace_labels = self
                .namespaces
                .get(namespace)
                .map(|n| n.labels.clone())
                .unwrap_or_default();
            let ctx = Arc::new(PodContext {
                owner_kind,
                owner_name,
                namespace_labels,
                ..(*e.ctx).clone()
            });
            if *ctx == *e.ctx {
                continue;
            }
            let ips = e.ips.clone();
            let claims = e.claim_rank().is_some();
            if let Some(e) = self
                .namespaces
                .get_mut(namespace)
                .and_then(|n| n.pods.get_mut(&name))
            {
                e.ctx = ctx.clone();
            }
            if claims {
                let key = (namespace.to_owned(), name.clone());
                for ip in ips.iter() {
                    if let Some(list) = self.claims.get_mut(ip) {
                        for c in list.iter_mut().filter(|c| c.is(&key)) {
                            c.ctx = ctx.clone();
                        }
                    }
                    // Only republish where this pod is the current winner.
                    let holds = table
                        .get(ip)
                        .is_some_and(|c| c.namespace == namespace && c.name == name);
                    if holds {
                        table.insert(*ip, ctx.clone());
                    }
                }
            }
        }
    }

    /// Records a namespace's labels.
    pub(crate) fn upsert_namespace(
        &mut self,
        name: &str,
        labels: BTreeMap<String, String>,
        table: &DashMap<IpAddr, Arc<PodContext>>,
    ) {
        let ns = self.namespaces.entry(name.to_owned()).or_default();
        let changed = !ns.known || ns.labels != labels;
        ns.known = true;
        ns.labels = labels;
        if changed {
            self.refresh(name, |_| true, table);
        }
    }

    pub(crate) fn remove_namespace(
        &mut self,
        name: &str,
        table: &DashMap<IpAddr, Arc<PodContext>>,
    ) {
        let Some(ns) = self.namespaces.get_mut(name) else {
            return;
        };
        ns.known = false;
        ns.labels.clear();
        if ns.pods.is_empty() {
            self.namespaces.remove(name);
        } else {
            self.refresh(name, |_| true, table);
        }
    }

    /// Records the controller of a ReplicaSet or Job.
    pub(crate) fn upsert_owner(
        &mut self,
        kind: &'static str,
        namespace: &str,
        name: &str,
        controller: Option<Controller>,
        table: &DashMap<IpAddr, Arc<PodContext>>,
    ) {
        let key = (namespace.to_owned(), kind, name.to_owned());
        if self.owners.get(&key) == Some(&controller) {
            return;
        }
        self.owners.insert(key, controller);
        self.refresh(namespace, |e| owned_by(e, kind, name), table);
    }

    pub(crate) fn remove_owner(
        &mut self,
        kind: &'static str,
        namespace: &str,
        name: &str,
        table: &DashMap<IpAddr, Arc<PodContext>>,
    ) {
        let key = (namespace.to_owned(), kind, name.to_owned());
        if self.owners.remove(&key).is_some() {
            self.refresh(namespace, |e| owned_by(e, kind, name), table);
        }
    }

    // ---- reads ----

    pub(crate) fn pod(&self, namespace: &str, name: &str) -> Option<&PodEntry> {
        self.namespaces.get(namespace)?.pods.get(name)
    }

    pub(crate) fn pod_keys(&self, scope: Option<&str>) -> Vec<PodKey> {
        self.namespaces
            .iter()
            .filter(|(ns, _)| scope.is_none_or(|s| s == ns.as_str()))
            .flat_map(|(ns, st)| st.pods.keys().map(move |n| (ns.clone(), n.clone())))
            .collect()
    }

    pub(crate) fn namespace_names(&self, scope: Option<&str>) -> Vec<String> {
        self.namespaces
            .iter()
            .filter(|(ns, st)| st.known && scope.is_none_or(|s| s == ns.as_str()))
            .map(|(ns, _)| ns.clone())
            .collect()
    }

    pub(crate) fn owner_keys(
        &self,
        kind: &'static str,
        scope: Option<&str>,
    ) -> Vec<(String, String)> {
        self.owners
            .keys()
            .filter(|(ns, k, _)| *k == kind && scope.is_none_or(|s| s == ns.as_str()))
            .map(|(ns, _, n)| (ns.clone(), n.clone()))
            .collect()
    }

    pub(crate) fn namespace_labels(&self, ns: &str) -> Option<BTreeMap<String, String>> {
        self.namespaces
            .get(ns)
            .filter(|n| n.known)
            .map(|n| n.labels.clone())
    }

    pub(crate) fn pods_matching(
        &self,
        namespace: &str,
        selector: &BTreeMap<String, String>,
    ) -> Vec<PodRef> {
        let Some(ns) = self.namespaces.get(namespace) else {
            return Vec::new();
        };
        let mut out: Vec<PodRef> = ns
            .pods
            .values()
            .filter(|e| e.live() && crate::kubernetes::labels::matches(selector, &e.ctx.labels))
            .map(|e| PodRef::from(&*e.ctx))
            .collect();
        out.sort();
        out
    }

    pub(crate) fn workload_counts(
        &self,
        namespace: &str,
        kind: &str,
        name: &str,
    ) -> WorkloadCounts {
        let mut c = WorkloadCounts::default();
        let Some(ns) = self.namespaces.get(namespace) else {
            return c;
        };
        for e in ns.pods.values() {
            if !e.live()
                || e.ctx.owner_kind.as_deref() != Some(kind)
                || e.ctx.owner_name.as_deref() != Some(name)
            {
                continue;
            }
            c.pods += 1;
            if self.is_quarantined(&e.ctx) {
                c.quarantined += 1;
            } else if e.ready {
                c.ready += 1;
            }
        }
        c
    }

    pub(crate) fn quarantined(&self) -> Vec<Arc<QuarantineState>> {
        let mut out: Vec<Arc<QuarantineState>> = self.quarantined.values().cloned().collect();
        out.sort_by(|a, b| a.pod.cmp(&b.pod));
        out
    }

    pub(crate) fn quarantine_of(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<Arc<QuarantineState>> {
        self.quarantined
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    pub(crate) fn pod_count(&self) -> usize {
        self.namespaces.values().map(|n| n.pods.len()).sum()
    }
}

fn owned_by(e: &PodEntry, kind: &str, name: &str) -> bool {
    e.controller
        .as_ref()
        .is_some_and(|c| c.kind == kind && c.name == name)
}
