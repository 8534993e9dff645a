//! Where leases and EDL entries live: the store (SQLite or PostgreSQL,
//! shared by replicas, survives restarts) behind a small trait, so the
//! firewall logic is the same whatever holds them. [`MemoryState`] holds
//! them in memory, for unit tests.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

/// A lease as the reconciler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub firewall: String,
    pub ip: String,
    pub tag: String,
    pub expires_at: DateTime<Utc>,
    /// When it was last taken or extended: the firewall-side timeout of a
    /// long lease runs from about then.
    pub updated_at: DateTime<Utc>,
    /// The action that took it (for the dual path: the quarantine's), so a
    /// quarantined pod's leases can be found when its address changes.
    pub action_id: Option<String>,
}

/// A lease to take or extend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLease {
    pub firewall: String,
    pub ip: String,
    pub tag: String,
    pub expires_at: DateTime<Utc>,
    pub action_id: Option<String>,
}

/// A content version of one list: equal versions, equal bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ListVersion {
    pub revision: i64,
    pub expired: i64,
}

/// The store's own error: [`MemoryState`] never fails, and the store's
/// failures keep their kind (transient or not) for the callers.
pub type StateResult<T> = Result<T, crate::store::StoreError>;

/// What the firewall side needs from the store.
pub trait FirewallState: Send + Sync + Debug {
    fn lease_upsert<'a>(
        &'a self,
        leases: &'a [NewLease],
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<()>>;
    fn lease_release<'a>(
        &'a self,
        firewall: Option<&'a str>,
        ip: &'a str,
        tag: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<u64>>;
    fn leases_active<'a>(
        &'a self,
        firewall: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<Vec<Lease>>>;
    fn leases_to_unregister<'a>(
        &'a self,
        firewall: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<Vec<Lease>>>;
    fn lease_mark_unregistered<'a>(
        &'a self,
        firewall: &'a str,
        ip: &'a str,
        tag: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<bool>>;
    #[allow(clippy::too_many_arguments)]
    fn edl_upsert<'a>(
        &'a self,
        list: &'a str,
        value: &'a str,
        expires_at: DateTime<Utc>,
        reason: Option<&'a str>,
        action_id: Option<&'a str>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<()>>;
    fn edl_remove<'a>(
        &'a self,
        list: &'a str,
        value: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<bool>>;
    /// The active values of a list, sorted, one a line.
    fn edl_body<'a>(
        &'a self,
        list: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<String>>;
    fn edl_version<'a>(
        &'a self,
        list: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<ListVersion>>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Active,
    Released,
    Unregistered,
}

/// (firewall, ip, tag) → (state, expires, updated, action id).
type LeaseMap =
    BTreeMap<(String, String, String), (State, DateTime<Utc>, DateTime<Utc>, Option<String>)>;

#[derive(Debug, Default)]
struct Inner {
    leases: LeaseMap,
    lists: BTreeMap<String, (i64, BTreeMap<String, DateTime<Utc>>)>,
}

/// Leases and lists in memory (lost on restart).
#[derive(Debug, Default)]
pub struct MemoryState {
    inner: Mutex<Inner>,
}

impl MemoryState {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn leases(&self, firewall: &str, keep: impl Fn(State, DateTime<Utc>) -> bool) -> Vec<Lease> {
        self.with(|i| {
            i.leases
                .iter()
                .filter(|((fw, _, _), (s, exp, _, _))| fw == firewall && keep(*s, *exp))
                .map(|((fw, ip, tag), (_, exp, upd, action))| Lease {
                    firewall: fw.clone(),
                    ip: ip.clone(),
                    tag: tag.clone(),
                    expires_at: *exp,
                    updated_at: *upd,
                    action_id: action.clone(),
                })
                .collect()
        })
    }
}

impl FirewallState for MemoryState {
    fn lease_upsert<'a>(
        &'a self,
        leases: &'a [NewLease],
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<()>> {
        self.with(|i| {
            for l in leases {
                i.leases.insert(
                    (l.firewall.clone(), l.ip.clone(), l.tag.clone()),
                    (State::Active, l.expires_at, now, l.action_id.clone()),
                );
            }
        });
        Box::pin(async { Ok(()) })
    }

    fn lease_release<'a>(
        &'a self,
        firewall: Option<&'a str>,
        ip: &'a str,
        tag: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<u64>> {
        let n = self.with(|i| {
            let mut n = 0;
            for ((fw, lip, ltag), (s, _, upd, _)) in i.leases.iter_mut() {
                if lip == ip
                    && ltag == tag
                    && *s == State::Active
                    && firewall.is_none_or(|f| f == fw)
                {
                    *s = State::Released;
                    *upd = now;
                    n += 1;
                }
            }
            n
        });
        Box::pin(async move { Ok(n) })
    }

    fn leases_active<'a>(
        &'a self,
        firewall: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<Vec<Lease>>> {
        let v = self.leases(firewall, |s, exp| s == State::Active && exp > now);
        Box::pin(async { Ok(v) })
    }

    fn leases_to_unregister<'a>(
        &'a self,
        firewall: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<Vec<Lease>>> {
        let v = self.leases(firewall, |s, exp| {
            s == State::Released || (s == State::Active && exp <= now)
        });
        Box::pin(async { Ok(v) })
    }

    fn lease_mark_unregistered<'a>(
        &'a self,
        firewall: &'a str,
        ip: &'a str,
        tag: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<bool>> {
        let key = (firewall.to_string(), ip.to_string(), tag.to_string());
        let done = self.with(|i| match i.leases.get_mut(&key) {
            Some((s, exp, upd, _))
                if *s == State::Released || (*s == State::Active && *exp <= now) =>
            {
                *s = State::Unregistered;
                *upd = now;
                true
            }
            _ => false,
        });
        Box::pin(async move { Ok(done) })
    }

    fn edl_upsert<'a>(
        &'a self,
        list: &'a str,
        value: &'a str,
        expires_at: DateTime<Utc>,
        _reason: Option<&'a str>,
        _action_id: Option<&'a str>,
        _now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<()>> {
        self.with(|i| {
            let l = i.lists.entry(list.to_string()).or_default();
            l.0 += 1;
            l.1.insert(value.to_string(), expires_at);
        });
        Box::pin(async { Ok(()) })
    }

    fn edl_remove<'a>(
        &'a self,
        list: &'a str,
        value: &'a str,
        _now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<bool>> {
        let removed = self.with(|i| {
            let Some(l) = i.lists.get_mut(list) else {
                return false;
            };
            let removed = l.1.remove(value).is_some();
            if removed {
                l.0 += 1;
            }
            removed
        });
        Box::pin(async move { Ok(removed) })
    }

    fn edl_body<'a>(
        &'a self,
        list: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<String>> {
        let v = self.with(|i| {
            i.lists
                .get(list)
                .map(|l| {
                    l.1.iter()
                        .filter(|(_, e)| **e > now)
                        .map(|(v, _)| v.as_str())
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default()
        });
        Box::pin(async { Ok(v) })
    }

    fn edl_version<'a>(
        &'a self,
        list: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<ListVersion>> {
        let v = self.with(|i| {
            i.lists
                .get(list)
                .map(|l| ListVersion {
                    revision: l.0,
                    expired: l.1.values().filter(|e| **e <= now).count() as i64,
                })
                .unwrap_or_default()
        });
        Box::pin(async move { Ok(v) })
    }
}

/// The store holds leases and lists for real: shared by replicas, kept
/// across restarts.
impl FirewallState for crate::store::Store {
    fn lease_upsert<'a>(
        &'a self,
        leases: &'a [NewLease],
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<()>> {
        Box::pin(async move {
            let rows: Vec<crate::store::NewTagLease> = leases
                .iter()
                .map(|l| crate::store::NewTagLease {
                    firewall: l.firewall.clone(),
                    ip: l.ip.clone(),
                    tag: l.tag.clone(),
                    expires_at: l.expires_at,
                    action_id: l.action_id.clone(),
                })
                .collect();
            crate::store::Store::lease_upsert(self, &rows, now).await
        })
    }

    fn lease_release<'a>(
        &'a self,
        firewall: Option<&'a str>,
        ip: &'a str,
        tag: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<u64>> {
        Box::pin(
            async move { crate::store::Store::lease_release(self, firewall, ip, tag, now).await },
        )
    }

    fn leases_active<'a>(
        &'a self,
        firewall: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<Vec<Lease>>> {
        Box::pin(async move {
            crate::store::Store::leases_active(self, firewall, now)
                .await
                .map(|v| v.into_iter().map(lease).collect())
        })
    }

    fn leases_to_unregister<'a>(
        &'a self,
        firewall: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<Vec<Lease>>> {
        Box::pin(async move {
            crate::store::Store::leases_to_unregister(self, firewall, now)
                .await
                .map(|v| v.into_iter().map(lease).collect())
        })
    }

    fn lease_mark_unregistered<'a>(
        &'a self,
        firewall: &'a str,
        ip: &'a str,
        tag: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<bool>> {
        Box::pin(async move {
            crate::store::Store::lease_mark_unregistered(self, firewall, ip, tag, now).await
        })
    }

    fn edl_upsert<'a>(
        &'a self,
        list: &'a str,
        value: &'a str,
        expires_at: DateTime<Utc>,
        reason: Option<&'a str>,
        action_id: Option<&'a str>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<()>> {
        Box::pin(async move {
            let entry = crate::store::NewEdlEntry {
                value: value.to_string(),
                expires_at,
                reason: reason.map(str::to_string),
                action_id: action_id.map(str::to_string),
            };
            crate::store::Store::edl_upsert(self, list, std::slice::from_ref(&entry), now).await
        })
    }

    fn edl_remove<'a>(
        &'a self,
        list: &'a str,
        value: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<bool>> {
        Box::pin(async move { crate::store::Store::edl_remove(self, list, value, now).await })
    }

    fn edl_body<'a>(
        &'a self,
        list: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<String>> {
        Box::pin(async move { crate::store::Store::edl_active_body(self, list, now).await })
    }

    fn edl_version<'a>(
        &'a self,
        list: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, StateResult<ListVersion>> {
        Box::pin(async move {
            crate::store::Store::edl_version(self, list, now)
                .await
                .map(|v| ListVersion {
                    revision: v.revision,
                    expired: v.expired,
                })
        })
    }
}

fn lease(l: crate::store::TagLease) -> Lease {
    Lease {
        firewall: l.firewall,
        ip: l.ip,
        tag: l.tag,
        expires_at: l.expires_at,
        updated_at: l.updated_at,
        action_id: l.action_id,
    }
}
