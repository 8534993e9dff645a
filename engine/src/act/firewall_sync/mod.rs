//! The firewall side of the dispatcher: IP tags on every configured
//! firewall (dynamic address groups), external dynamic lists, the
//! never-block list, and the reconciler keeping firewalls true to the
//! store.
//!
//! Leases first: `tag_ip` writes its lease to the store, then registers
//! the tag (the firewall's own timeout is the lease's ttl, capped at its
//! 30-day maximum); a firewall that fails or is away loses nothing, the
//! reconciler registers what is missing once it answers. Leases longer
//! than 30 days are registered again before the firewall's timeout lapses.
//! `untag_ip` releases the lease, then unregisters.
//!
//! - [`config`]: the `firewall` config section.
//! - [`metrics`]: the firewall side's series.
//! - [`never_block`]: addresses never tagged or listed.
//! - [`state`]: the store behind a trait.
//! - [`reconcile`]: the periodic comparison with each firewall.
//! - [`follow`]: the dual path's tag follows a quarantined pod's address.

pub mod config;
pub mod follow;
pub mod metrics;
pub mod never_block;
pub mod reconcile;
pub mod state;

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use riposte_firewall::edl::{self, EdlKind, IpEntry, RenderedEdl};
use riposte_firewall::xmlapi::{Batcher, Client, Tag, UidOp, XmlApiError, MAX_TAG_TIMEOUT_SECS};

pub use self::config::{EdlListConfig, FirewallConfig};
pub use self::metrics::FirewallMetrics;
pub use self::never_block::NeverBlock;
use self::state::{FirewallState, ListVersion, NewLease};
use crate::act::guardrails::Refusal;
use crate::store::StoreError;

/// Why a firewall intent did not apply.
#[derive(Debug, thiserror::Error)]
pub enum FwError {
    #[error("{}", .0.message)]
    Refused(Refusal),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("store: {0}")]
    Store(#[source] StoreError),
    /// Some or all firewalls failed; the lease is kept for the reconciler.
    #[error("{message}")]
    Firewalls { code: &'static str, message: String },
}

impl FwError {
    pub fn code(&self) -> &'static str {
        match self {
            FwError::Refused(r) => r.code,
            FwError::Invalid(_) => "invalid",
            FwError::Store(_) => "store",
            FwError::Firewalls { code, .. } => code,
        }
    }
}

/// One firewall target.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub batcher: Batcher,
    pub persistent: bool,
}

pub type LeaseKey = (String, String, String);

/// The firewall side, shared by the dispatcher, the API and the reconciler.
#[derive(Debug)]
pub struct Firewalls {
    config: FirewallConfig,
    targets: Vec<Target>,
    never_block: NeverBlock,
    state: Arc<dyn FirewallState>,
    metrics: FirewallMetrics,
    cache: Mutex<HashMap<String, (ListVersion, RenderedEdl)>>,
    /// When each registration's firewall-side timeout lapses, as far as
    /// this process knows (after a restart: from the lease's last update).
    registered_until: Mutex<HashMap<LeaseKey, DateTime<Utc>>>,
    /// Registrations being sent now: the reconciler leaves them alone (a
    /// lease written a moment ago is not drift).
    in_flight: Mutex<HashMap<LeaseKey, usize>>,
    /// When each EDL entry this process wrote expires: during a storm the
    /// same entry is not written again before its refresh is due.
    edl_until: Mutex<HashMap<(String, String), DateTime<Utc>>>,
}

/// Ends the answer of a tag or EDL entry asked for again while fresh.
const REPEATED: &str = "(repeat)";

/// Whether a firewall answer says the action repeated one still fresh
/// (nothing was sent): recorded with the code `repeat`, never notified.
pub fn is_repeat(answer: &str) -> bool {
    answer.ends_with(REPEATED)
}

/// Most EDL entries remembered; beyond, the expired ones are dropped.
const MAX_EDL_REMEMBERED: usize = 100_000;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The firewall-side timeout of a lease expiring at `expires_at`.
fn firewall_timeout(now: DateTime<Utc>, expires_at: DateTime<Utc>) -> u64 {
    let secs = (expires_at - now).num_seconds().max(1) as u64;
    secs.min(MAX_TAG_TIMEOUT_SECS)
}

impl Firewalls {
    /// Starts a client and a batcher per target (on the current runtime).
    pub fn new(
        config: FirewallConfig,
        state: Arc<dyn FirewallState>,
        metrics: FirewallMetrics,
    ) -> Result<Firewalls, XmlApiError> {
        let clients = Self::clients(&config)?;
        Ok(Self::with_clients(config, clients, state, metrics))
    }

    /// A client per target: key read, TLS pin or CA loaded, nothing sent.
    pub fn clients(config: &FirewallConfig) -> Result<Vec<Client>, XmlApiError> {
        config.targets.iter().cloned().map(Client::new).collect()
    }

    /// Starts a batcher per client (on the current runtime); `clients` come
    /// from [`Firewalls::clients`] of the same config.
    pub fn with_clients(
        config: FirewallConfig,
        clients: Vec<Client>,
        state: Arc<dyn FirewallState>,
        metrics: FirewallMetrics,
    ) -> Firewalls {
        let mut targets = Vec::new();
        for (t, client) in config.targets.iter().zip(clients) {
            targets.push(Target {
                name: t.name.clone(),
                persistent: t.persistent,
                batcher: Batcher::start(client),
            });
        }
        Firewalls {
            never_block: NeverBlock::from_config(&config),
            config,
            targets,
            state,
            metrics,
            cache: Mutex::new(HashMap::new()),
            registered_until: Mutex::new(HashMap::new()),
            edl_until: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &FirewallConfig {
        &self.config
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    pub fn metrics(&self) -> &FirewallMetrics {
        &self.metrics
    }

    pub fn state(&self) -> &Arc<dyn FirewallState> {
        &self.state
    }

    pub fn never_block_mut(&mut self) -> &mut NeverBlock {
        &mut self.never_block
    }

    fn count_error(&self, fw: &str, e: &XmlApiError) {
        self.metrics.error(fw, e.kind());
        tracing::warn!(firewall = fw, error = %e, "firewall operation failed");
    }

    /// Registers `ops` on one target; the failure, if any.
    async fn send(&self, target: &Target, ops: Vec<UidOp>) -> Vec<Result<(), XmlApiError>> {
        let results = target.batcher.submit_all(ops.clone()).await;
        for (op, r) in ops.iter().zip(&results) {
            match r {
                Ok(()) => self.metrics.op(
                    &target.name,
                    if op.is_register() {
                        "register"
                    } else {
                        "unregister"
                    },
                ),
                Err(e) => self.count_error(&target.name, e),
            }
        }
        results
    }

    /// Registers `ip` with `tag` until `expires_at` on one target; when a
    /// registration is known with an earlier firewall timeout, it is
    /// unregistered first (the firewall keeps the first timeout of a tag
    /// that "already exists").
    pub(crate) async fn register_on(
        &self,
        target: &Target,
        ip: IpEntry,
        tag: &Tag,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), XmlApiError> {
        let timeout = firewall_timeout(now, expires_at);
        let key = (target.name.clone(), ip.to_string(), tag.to_string());
        let until = now + ChronoDuration::seconds(timeout as i64);
        let known = lock(&self.registered_until).get(&key).copied();
        if known.is_some_and(|k| k + ChronoDuration::seconds(60) < until) {
            let unreg = UidOp::Unregister {
                ip,
                tag: tag.clone(),
            };
            if let Some(Err(e)) = self.send(target, vec![unreg]).await.pop() {
                return Err(e);
            }
        }
        let op = UidOp::register(ip, tag.clone(), timeout, target.persistent)?;
        match self.send(target, vec![op]).await.pop() {
            Some(Ok(())) => {
                lock(&self.registered_until).insert(key, until);
                Ok(())
            }
            Some(Err(e)) => Err(e),
            None => Err(XmlApiError::Closed),
        }
    }

    pub(crate) async fn unregister_on(
        &self,
        target: &Target,
        ip: IpEntry,
        tag: &Tag,
    ) -> Result<(), XmlApiError> {
        let op = UidOp::Unregister {
            ip,
            tag: tag.clone(),
        };
        let r = self
            .send(target, vec![op])
            .await
            .pop()
            .unwrap_or(Err(XmlApiError::Closed));
        if r.is_ok() {
            lock(&self.registered_until).remove(&(
                target.name.clone(),
                ip.to_string(),
                tag.to_string(),
            ));
        }
        r
    }

    /// Reads back, after a start, until when each active lease is
    /// registered (the reconciler's estimate: from its last update), so the
    /// repeats of a storm that outlives a restart send nothing either.
    /// Drift (a firewall that lost them) is the reconciler's to repair.
    pub async fn seed_registrations(&self) {
        let now = Utc::now();
        for t in &self.targets {
            let leases = match self.state.leases_active(&t.name, now).await {
                Ok(leases) => leases,
                Err(e) => {
                    tracing::debug!(firewall = %t.name, error = %e, "cannot read leases back");
                    continue;
                }
            };
            let mut known = lock(&self.registered_until);
            for l in leases {
                let until = l.updated_at
                    + ChronoDuration::seconds(firewall_timeout(l.updated_at, l.expires_at) as i64);
                known.entry((t.name.clone(), l.ip, l.tag)).or_insert(until);
            }
        }
    }

    pub fn in_flight(&self, key: &LeaseKey) -> bool {
        lock(&self.in_flight).contains_key(key)
    }

    pub(crate) fn registered_until(&self, key: &LeaseKey) -> Option<DateTime<Utc>> {
        lock(&self.registered_until).get(key).copied()
    }

    /// `tag_ip`: lease in the store, then registered on every target.
    /// `pod_target`: the address is a pod the intent names (dual path).
    pub async fn tag_ip(
        &self,
        ip: IpAddr,
        tag: &str,
        ttl_secs: u64,
        action_id: Option<&str>,
        pod_target: bool,
    ) -> Result<String, FwError> {
        let entry = IpEntry::Addr(ip).canonical();
        self.never_block
            .check(&entry, pod_target)
            .map_err(FwError::Refused)?;
        let tag = Tag::new(tag).map_err(|e| FwError::Invalid(e.to_string()))?;
        if self.targets.is_empty() {
            return Err(FwError::Invalid("no firewall target configured".into()));
        }
        let now = Utc::now();
        let expires_at = now + ChronoDuration::seconds(ttl_secs as i64);
        let keys: Vec<LeaseKey> = self
            .targets
            .iter()
            .map(|t| (t.name.clone(), entry.to_string(), tag.to_string()))
            .collect();
        // Registered everywhere for long enough already (a storm repeating
        // itself): nothing is sent before the refresh is due.
        let until: Vec<Option<DateTime<Utc>>> =
            keys.iter().map(|k| self.registered_until(k)).collect();
        if until
            .iter()
            .all(|u| u.is_some() && crate::act::dispatch::repeats::covered(*u, ttl_secs, now))
        {
            let first = until.iter().flatten().min().copied().unwrap_or(now);
            self.metrics.repeat("tag");
            return Ok(format!(
                "{entry} already tagged {tag} until {}: not sent again before its refresh {REPEATED}",
                first.to_rfc3339()
            ));
        }
        {
            let mut f = lock(&self.in_flight);
            // The same registration is being sent now: it carries this one
            // (the lease it wrote lets the reconciler repair a failure).
            if keys.iter().all(|k| f.contains_key(k)) {
                drop(f);
                self.metrics.repeat("tag");
                return Ok(format!(
                    "{entry} tag {tag} is being registered already: sent once {REPEATED}"
                ));
            }
            for k in &keys {
                *f.entry(k.clone()).or_default() += 1;
            }
        }
        let result = self
            .tag_ip_leased(entry, &tag, ttl_secs, expires_at, now, action_id)
            .await;
        let mut f = lock(&self.in_flight);
        for k in keys {
            if let Some(n) = f.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    f.remove(&k);
                }
            }
        }
        result
    }

    async fn tag_ip_leased(
        &self,
        entry: IpEntry,
        tag: &Tag,
        ttl_secs: u64,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
        action_id: Option<&str>,
    ) -> Result<String, FwError> {
        let leases: Vec<NewLease> = self
            .targets
            .iter()
            .map(|t| NewLease {
                firewall: t.name.clone(),
                ip: entry.to_string(),
                tag: tag.to_string(),
                expires_at,
                action_id: action_id.map(str::to_string),
            })
            .collect();
        if let Err(e) = self.state.lease_upsert(&leases, now).await {
            self.metrics.error("store", "store");
            return Err(FwError::Store(e));
        }
        let results = futures::future::join_all(
            self.targets
                .iter()
                .map(|t| self.register_on(t, entry, tag, expires_at, now)),
        )
        .await;
        self.summarize(
            results,
            format!(
                "{entry} tagged {tag} for {ttl_secs}s (firewall timeout {}s)",
                firewall_timeout(now, expires_at)
            ),
        )
    }

    fn summarize(
        &self,
        results: Vec<Result<(), XmlApiError>>,
        ok: String,
    ) -> Result<String, FwError> {
        let failed: Vec<String> = self
            .targets
            .iter()
            .zip(&results)
            .filter_map(|(t, r)| r.as_ref().err().map(|e| format!("{}: {e}", t.name)))
            .collect();
        if failed.is_empty() {
            return Ok(format!("{ok} on {} firewall(s)", self.targets.len()));
        }
        let code = results
            .iter()
            .find_map(|r| r.as_ref().err().map(XmlApiError::kind))
            .unwrap_or("firewall");
        Err(FwError::Firewalls {
            code,
            message: format!(
                "{} of {} firewall(s) failed ({}); the lease is kept and the reconciler retries",
                failed.len(),
                self.targets.len(),
                failed.join("; ")
            ),
        })
    }

    /// `untag_ip`: the lease released, then unregistered everywhere.
    pub async fn untag_ip(&self, ip: IpAddr, tag: &str) -> Result<String, FwError> {
        let entry = IpEntry::Addr(ip).canonical();
        let tag = Tag::new(tag).map_err(|e| FwError::Invalid(e.to_string()))?;
        let now = Utc::now();
        if let Err(e) = self
            .state
            .lease_release(None, &entry.to_string(), tag.as_str(), now)
            .await
        {
            self.metrics.error("store", "store");
            return Err(FwError::Store(e));
        }
        let results = futures::future::join_all(
            self.targets
                .iter()
                .map(|t| self.unregister_on(t, entry, &tag)),
        )
        .await;
        for (t, r) in self.targets.iter().zip(&results) {
            if r.is_ok() {
                let _ = self
                    .state
                    .lease_mark_unregistered(&t.name, &entry.to_string(), tag.as_str(), now)
                    .await;
            }
        }
        self.summarize(results, format!("{entry} untagged {tag}"))
    }

    /// Untags every address leased with `tag` that `matches` (the dual
    /// path's release: the pod's address, whatever it was when tagged).
    pub async fn untag_where(
        &self,
        tag: &str,
        matches: impl Fn(IpAddr) -> bool,
    ) -> Result<String, FwError> {
        let Some(first) = self.targets.first() else {
            return Err(FwError::Invalid("no firewall target configured".into()));
        };
        let leases = self
            .state
            .leases_active(&first.name, Utc::now())
            .await
            .map_err(FwError::Store)?;
        let mut done = Vec::new();
        for lease in leases.iter().filter(|l| l.tag == tag) {
            if let Ok(ip) = lease.ip.parse::<IpAddr>() {
                if matches(ip) {
                    done.push(self.untag_ip(ip, tag).await?);
                }
            }
        }
        if done.is_empty() {
            return Ok(format!("no address of this pod carries {tag}"));
        }
        Ok(done.join("; "))
    }

    pub fn list(&self, name: &str) -> Option<&EdlListConfig> {
        self.config.edl.iter().find(|l| l.name == name)
    }

    /// Checks a value for `list`: its canonical form.
    pub fn edl_value(&self, list: &str, value: &str) -> Result<(EdlKind, String), FwError> {
        let cfg = self
            .list(list)
            .ok_or_else(|| FwError::Invalid(format!("no EDL named `{list}` is configured")))?;
        let value = cfg
            .kind
            .normalize(value)
            .map_err(|e| FwError::Invalid(e.to_string()))?;
        Ok((cfg.kind, value))
    }

    /// `edl_add`: validated, checked against the never-block list, stored.
    pub async fn edl_add(
        &self,
        list: &str,
        value: &str,
        ttl_secs: u64,
        reason: Option<&str>,
        action_id: Option<&str>,
    ) -> Result<String, FwError> {
        let (kind, value) = self.edl_value(list, value)?;
        match kind {
            EdlKind::Ip => {
                let entry: IpEntry = value
                    .parse()
                    .map_err(|e: edl::EdlError| FwError::Invalid(e.to_string()))?;
                self.check_breadth(list, &entry).map_err(FwError::Refused)?;
                self.never_block
                    .check(&entry, false)
                    .map_err(FwError::Refused)?;
            }
            EdlKind::Url | EdlKind::Domain => self
                .never_block
                .check_host(&value)
                .map_err(FwError::Refused)?,
        }
        let now = Utc::now();
        let expires_at = now + ChronoDuration::seconds(ttl_secs as i64);
        let key = (list.to_owned(), value.clone());
        let known = lock(&self.edl_until).get(&key).copied();
        if known.is_some() && crate::act::dispatch::repeats::covered(known, ttl_secs, now) {
            self.metrics.repeat("edl");
            return Ok(format!(
                "{value} already in EDL {list} until {}: not written again before its refresh {REPEATED}",
                known.unwrap_or(now).to_rfc3339()
            ));
        }
        self.state
            .edl_upsert(list, &value, expires_at, reason, action_id, now)
            .await
            .map_err(|e| {
                self.metrics.error("store", "store");
                FwError::Store(e)
            })?;
        let mut until = lock(&self.edl_until);
        if until.len() >= MAX_EDL_REMEMBERED {
            until.retain(|_, t| *t > now);
        }
        until.insert(key, expires_at);
        drop(until);
        Ok(format!("{value} in EDL {list} for {ttl_secs}s"))
    }

    /// Refuses a prefix broader than the list takes
    /// (`min_prefix_len_v4`/`_v6`, unless `allow_broad_prefixes`).
    fn check_breadth(&self, list: &str, entry: &IpEntry) -> Result<(), Refusal> {
        let (v4, v6) = self.config.min_prefix_lens(list);
        match entry.too_broad(v4, v6) {
            None => Ok(()),
            Some(why) => Err(Refusal {
                code: "broad_prefix",
                message: format!(
                    "{why} `{list}` ([firewall] min_prefix_len_v4 = {}, min_prefix_len_v6 = {}; allow_broad_prefixes lifts it)",
                    self.config.min_prefix_len_v4, self.config.min_prefix_len_v6
                ),
            }),
        }
    }

    /// What of a stored IP list is served: each entry in canonical form,
    /// once, and none that the never-block list or the list's prefix
    /// minimum refuses now (an entry stored before an upgrade or a config
    /// change, e.g. `::ffff:10.96.0.10`, must not reach the firewall).
    fn servable<'a>(&self, list: &str, body: &'a str) -> Vec<Cow<'a, str>> {
        let mut out: Vec<Cow<'a, str>> = Vec::new();
        // Stored values are unique, and a plain IPv4 address has one
        // spelling, so only re-spelled entries can be duplicates: of each
        // other, or (an old `::ffff:a.b.c.d`) of a plain IPv4 entry.
        let mut respelled = std::collections::HashSet::new();
        let mut respelled_v4 = Vec::new();
        for line in body.split('\n').filter(|l| !l.is_empty()) {
            // The common entry, a plain IPv4 address, is checked without
            // allocating: this runs over every entry once per list version.
            let why = if let Ok(v4) = line.parse::<std::net::Ipv4Addr>() {
                self.never_block.check_v4(v4).map(|()| None)
            } else {
                match line.parse::<IpEntry>() {
                    Err(_) => Err(Refusal {
                        code: "invalid",
                        message: String::new(),
                    }),
                    Ok(entry) => self
                        .check_breadth(list, &entry)
                        .and_then(|()| self.never_block.check(&entry, false))
                        .map(|()| Some(entry)),
                }
            };
            match why {
                Ok(None) => out.push(Cow::Borrowed(line)),
                Ok(Some(IpEntry::Addr(IpAddr::V4(v4)))) => respelled_v4.push(v4.to_string()),
                Ok(Some(entry)) => {
                    let entry = entry.to_string();
                    if respelled.insert(entry.clone()) {
                        out.push(Cow::Owned(entry));
                    }
                }
                Err(r) => {
                    self.metrics.withheld(list, r.code);
                    tracing::warn!(list, entry = line, reason = r.code, "EDL entry withheld");
                }
            }
        }
        if !respelled_v4.is_empty() {
            let mut seen: std::collections::HashSet<String> =
                out.iter().map(|e| e.to_string()).collect();
            for v4 in respelled_v4 {
                if seen.insert(v4.clone()) {
                    out.push(Cow::Owned(v4));
                }
            }
        }
        out
    }

    pub async fn edl_remove(&self, list: &str, value: &str) -> Result<String, FwError> {
        let written = value.trim();
        let value = match self.edl_value(list, value) {
            Ok((_, v)) => v,
            Err(FwError::Invalid(_)) if self.list(list).is_some() => written.to_string(),
            Err(e) => return Err(e),
        };
        lock(&self.edl_until).remove(&(list.to_owned(), value.clone()));
        let mut removed = self
            .state
            .edl_remove(list, &value, Utc::now())
            .await
            .map_err(FwError::Store)?;
        // An entry stored in another spelling before values were
        // normalized can still be removed as it was written.
        if !removed && written != value {
            removed = self
                .state
                .edl_remove(list, written, Utc::now())
                .await
                .map_err(FwError::Store)?;
        }
        Ok(if removed {
            format!("{value} removed from EDL {list}")
        } else {
            format!("{value} was not in EDL {list}")
        })
    }

    /// The list as the firewall polls it, rendered once per version.
    pub async fn edl_render(&self, list: &str) -> Result<RenderedEdl, FwError> {
        if self.list(list).is_none() {
            return Err(FwError::Invalid(format!("no EDL named `{list}`")));
        }
        let now = Utc::now();
        let version = self
            .state
            .edl_version(list, now)
            .await
            .map_err(FwError::Store)?;
        if let Some((v, body)) = lock(&self.cache).get(list) {
            if *v == version {
                return Ok(body.clone());
            }
        }
        let body = self
            .state
            .edl_body(list, now)
            .await
            .map_err(FwError::Store)?;
        let rendered = match self.list(list).map(|l| l.kind) {
            Some(EdlKind::Ip) => {
                let entries = self.servable(list, &body);
                edl::render(entries.iter().map(|e| e.as_ref()))
            }
            _ => edl::render(body.split('\n')),
        };
        lock(&self.cache).insert(list.to_string(), (version, rendered.clone()));
        Ok(rendered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::act::firewall_sync::config::EdlListConfig;
    use crate::act::firewall_sync::metrics::ListLabels;
    use crate::act::firewall_sync::state::MemoryState;

    fn firewalls() -> Firewalls {
        let config = FirewallConfig {
            dns_servers: vec!["10.96.0.10/32".parse().unwrap_or_else(|_| unreachable!())],
            edl: vec![EdlListConfig {
                name: "c2".into(),
                kind: EdlKind::Ip,
                basic: Vec::new(),
                bearer_sha256: Vec::new(),
            }],
            ..FirewallConfig::default()
        };
        Firewalls::new(
            config,
            Arc::new(MemoryState::default()),
            FirewallMetrics::default(),
        )
        .unwrap_or_else(|_| unreachable!())
    }

    #[tokio::test]
    async fn edl_bodies_are_cached_per_version_and_change_with_it() {
        let fw = firewalls();
        let empty = fw.edl_render("c2").await.unwrap_or_else(|e| panic!("{e}"));
        assert!(empty.body.is_empty());
        fw.edl_add("c2", "192.0.2.1", 60, None, None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let one = fw.edl_render("c2").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&one.body[..], b"192.0.2.1\n");
        assert_ne!(one.etag, empty.etag);
        let again = fw.edl_render("c2").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again, one);
        assert!(fw.edl_remove("c2", "192.0.2.1").await.is_ok());
        assert_eq!(
            fw.edl_render("c2").await.map(|r| r.etag).ok(),
            Some(empty.etag)
        );
    }

    #[tokio::test]
    async fn an_edl_entry_still_fresh_is_not_written_again_until_removed() {
        let fw = firewalls();
        let first = fw.edl_add("c2", "192.0.2.1", 3600, None, None).await;
        assert!(first.as_deref().is_ok_and(|a| !is_repeat(a)), "{first:?}");
        let version = fw.edl_render("c2").await.map(|r| r.etag).ok();
        let again = fw.edl_add("c2", "192.0.2.1", 3600, None, None).await;
        assert!(again.as_deref().is_ok_and(is_repeat), "{again:?}");
        assert_eq!(fw.edl_render("c2").await.map(|r| r.etag).ok(), version);
        // Asking for much longer is a refresh; a removal forgets it.
        let longer = fw.edl_add("c2", "192.0.2.1", 7 * 86_400, None, None).await;
        assert!(longer.as_deref().is_ok_and(|a| !is_repeat(a)), "{longer:?}");
        assert!(fw.edl_remove("c2", "192.0.2.1").await.is_ok());
        let back = fw.edl_add("c2", "192.0.2.1", 3600, None, None).await;
        assert!(back.as_deref().is_ok_and(|a| !is_repeat(a)), "{back:?}");
    }

    #[tokio::test]
    async fn bad_values_unknown_lists_and_never_block_addresses_are_refused() {
        let fw = firewalls();
        assert_eq!(
            fw.edl_add("c2", "10.96.0.10", 60, None, None)
                .await
                .map_err(|e| e.code()),
            Err("never_block")
        );
        assert_eq!(
            fw.edl_add("c2", "nope", 60, None, None)
                .await
                .map_err(|e| e.code()),
            Err("invalid")
        );
        assert_eq!(
            fw.edl_add("other", "192.0.2.1", 60, None, None)
                .await
                .map_err(|e| e.code()),
            Err("invalid")
        );
        let ip: IpAddr = "10.96.0.10".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(
            fw.tag_ip(ip, "t", 60, None, false)
                .await
                .map_err(|e| e.code()),
            Err("never_block")
        );
    }

    #[tokio::test]
    async fn ipv6_forms_of_protected_addresses_and_broad_prefixes_are_refused() {
        let fw = firewalls();
        for (value, code) in [
            ("::ffff:10.96.0.10", "never_block"),
            ("64:ff9b::a60:a", "never_block"),
            ("::/0", "broad_prefix"),
            ("0.0.0.0/1", "broad_prefix"),
            ("10.0.0.0/8", "broad_prefix"),
            ("2001:db8::/32", "broad_prefix"),
            ("64:ff9b::/96", "broad_prefix"),
            ("::ffff:0.0.0.0/97", "broad_prefix"),
        ] {
            assert_eq!(
                fw.edl_add("c2", value, 60, None, None)
                    .await
                    .map_err(|e| e.code()),
                Err(code),
                "{value}"
            );
        }
        let ip: IpAddr = "::ffff:10.96.0.10"
            .parse()
            .unwrap_or_else(|_| unreachable!());
        assert_eq!(
            fw.tag_ip(ip, "t", 60, None, false)
                .await
                .map_err(|e| e.code()),
            Err("never_block")
        );
        // One host, one entry, whatever its spelling.
        for value in ["198.51.100.7", "::ffff:198.51.100.7", "::FFFF:c633:6407"] {
            assert!(fw.edl_add("c2", value, 60, None, None).await.is_ok());
        }
        assert!(fw
            .edl_add("c2", "198.51.0.0/16", 60, None, None)
            .await
            .is_ok());
        assert!(fw
            .edl_add("c2", "2001:db8::/48", 60, None, None)
            .await
            .is_ok());
        let body = fw.edl_render("c2").await.unwrap_or_else(|e| panic!("{e}"));
        let mut lines: Vec<&str> = std::str::from_utf8(&body.body)
            .unwrap_or_default()
            .lines()
            .collect();
        lines.sort_unstable();
        assert_eq!(lines, ["198.51.0.0/16", "198.51.100.7", "2001:db8::/48"]);
    }

    #[tokio::test]
    async fn a_list_allowed_broad_prefixes_takes_them_but_never_blocked_ones() {
        let mut fw = firewalls();
        fw.config.allow_broad_prefixes = vec!["c2".into()];
        assert!(fw
            .edl_add("c2", "198.0.0.0/8", 60, None, None)
            .await
            .is_ok());
        assert_eq!(
            fw.edl_add("c2", "::/0", 60, None, None)
                .await
                .map_err(|e| e.code()),
            Err("never_block")
        );
    }

    #[tokio::test]
    async fn stored_entries_refused_now_are_not_served() {
        let fw = firewalls();
        let now = Utc::now();
        let later = now + ChronoDuration::hours(1);
        for v in [
            "::ffff:10.96.0.10",
            "::/0",
            "203.0.113.9",
            "::ffff:203.0.113.9",
        ] {
            fw.state
                .edl_upsert("c2", v, later, None, None, now)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let body = fw.edl_render("c2").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&body.body[..], b"203.0.113.9\n");
        assert_eq!(
            fw.metrics()
                .withheld
                .get_or_create(&ListLabels {
                    list: "c2".into(),
                    status: "never_block",
                })
                .get(),
            1
        );
        // The old spelling can still be removed as written.
        let gone = fw
            .edl_remove("c2", "::ffff:10.96.0.10")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(gone.contains("removed"), "{gone}");
    }

    #[test]
    fn the_firewall_timeout_is_the_lease_capped_at_thirty_days() {
        let now = Utc::now();
        assert_eq!(
            firewall_timeout(now, now + ChronoDuration::hours(24)),
            86_400
        );
        assert_eq!(
            firewall_timeout(now, now + ChronoDuration::days(90)),
            MAX_TAG_TIMEOUT_SECS
        );
        assert_eq!(firewall_timeout(now, now - ChronoDuration::hours(1)), 1);
    }
}
