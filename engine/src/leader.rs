//! One replica leads: schedules, quarantine expiries, the firewall
//! reconciler and the store's purge run only there.
//!
//! The lock is a Kubernetes Lease in a cluster (`[leader] backend =
//! "kubernetes"`, or `auto` when running in-cluster), else the store's
//! PostgreSQL advisory lock when several replicas share PostgreSQL, else
//! this process alone (SQLite is one process's file). The loop below takes
//! the lock, starts the leader's tasks, checks the lock every
//! `check_interval_ms` and stops the tasks the moment it is lost, then tries
//! to take it again.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use riposte_connectors::kubernetes::{KubeError, LeaseLock};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::store::{LeaderLock, Store, StoreError};

/// Why the leader lock cannot be chosen or asked.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("backend postgres needs a PostgreSQL store ([store] url)")]
    NoPostgres,
    #[error("backend kubernetes needs a cluster ([kubernetes])")]
    NoCluster,
    #[error("lease_duration_secs and check_interval_ms must be at least 1")]
    ZeroTiming,
    #[error("check_interval_ms must be well below lease_duration_secs (a third is usual)")]
    CheckTooSlow,
    #[error("leader lock: store unavailable: {0}")]
    Store(#[source] StoreError),
    #[error("leader lease: {0}")]
    Lease(#[source] KubeError),
}

/// Which lock decides the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LeaderBackend {
    /// A Lease when running in a cluster (in-cluster service account), the
    /// PostgreSQL advisory lock when the store is PostgreSQL, else none.
    #[default]
    Auto,
    Kubernetes,
    Postgres,
    /// This replica always leads (one replica only).
    None,
}

/// `[leader]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LeaderConfig {
    pub backend: LeaderBackend,
    /// The Lease's name and namespace (Kubernetes backend). The namespace
    /// defaults to the pod's own (`POD_NAMESPACE`, or the service account's
    /// namespace file), else `default`.
    pub lease_name: String,
    pub lease_namespace: Option<String>,
    /// This replica's name in the Lease: `HOSTNAME` (the pod name) unless
    /// set.
    pub identity: Option<String>,
    /// A Lease not renewed for this long is taken over.
    pub lease_duration_secs: u64,
    /// How often the leader renews (Lease) or checks (PostgreSQL) its lock,
    /// and how often the others try to take it, in milliseconds.
    pub check_interval_ms: u64,
}

impl Default for LeaderConfig {
    fn default() -> Self {
        LeaderConfig {
            backend: LeaderBackend::Auto,
            lease_name: "riposte-leader".into(),
            lease_namespace: None,
            identity: None,
            lease_duration_secs: 15,
            check_interval_ms: 2_000,
        }
    }
}

impl LeaderConfig {
    /// Whether the chosen backend has what it needs: a PostgreSQL store, a
    /// cluster.
    pub fn check_backend(&self, postgres_store: bool, cluster: bool) -> Result<(), LeaderError> {
        match self.backend {
            LeaderBackend::Postgres if !postgres_store => Err(LeaderError::NoPostgres),
            LeaderBackend::Kubernetes if !cluster => Err(LeaderError::NoCluster),
            _ => Ok(()),
        }
    }

    pub fn validate(&self) -> Result<(), LeaderError> {
        if self.lease_duration_secs == 0 || self.check_interval_ms == 0 {
            return Err(LeaderError::ZeroTiming);
        }
        if self.check_interval_ms >= self.lease_duration_secs * 1000 {
            return Err(LeaderError::CheckTooSlow);
        }
        Ok(())
    }

    fn identity(&self) -> String {
        self.identity
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| {
                format!(
                    "riposte-{}-{:08x}",
                    std::process::id(),
                    rand::random::<u32>()
                )
            })
    }

    fn namespace(&self) -> String {
        self.lease_namespace
            .clone()
            .or_else(|| {
                std::env::var("POD_NAMESPACE")
                    .ok()
                    .filter(|n| !n.is_empty())
            })
            .or_else(|| {
                std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(|| "default".into())
    }
}

/// The lock as chosen from the config.
#[derive(Debug, Clone)]
pub enum Lock {
    Always,
    Postgres(Store),
    Lease(Box<LeaseLock>),
}

impl Lock {
    /// Chooses the lock: `in_cluster` says whether the Kubernetes client
    /// came from the in-cluster service account.
    pub fn choose(
        config: &LeaderConfig,
        store: &Store,
        kube: Option<(kube::Client, bool)>,
    ) -> Result<Lock, LeaderError> {
        let lease = |client: kube::Client| {
            Lock::Lease(Box::new(LeaseLock::new(
                client,
                &config.namespace(),
                &config.lease_name,
                &config.identity(),
                Duration::from_secs(config.lease_duration_secs),
            )))
        };
        config.check_backend(store.is_postgres(), kube.is_some())?;
        match config.backend {
            LeaderBackend::None => Ok(Lock::Always),
            LeaderBackend::Postgres => Ok(Lock::Postgres(store.clone())),
            LeaderBackend::Kubernetes => match kube {
                Some((client, _)) => Ok(lease(client)),
                None => Err(LeaderError::NoCluster),
            },
            LeaderBackend::Auto => Ok(match kube {
                Some((client, true)) => lease(client),
                _ if store.is_postgres() => Lock::Postgres(store.clone()),
                _ => Lock::Always,
            }),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Lock::Always => "none",
            Lock::Postgres(_) => "postgres",
            Lock::Lease(_) => "kubernetes",
        }
    }
}

/// A held lock.
enum Held {
    Always,
    Postgres(LeaderLock),
    /// The Lease, and when it was last renewed.
    Lease(Box<LeaseLock>, std::time::Instant),
}

impl Held {
    async fn still_held(&mut self) -> bool {
        match self {
            Held::Always => true,
            Held::Postgres(lock) => lock.is_held().await,
            Held::Lease(lease, renewed) => match lease.try_acquire_or_renew().await {
                Ok(true) => {
                    *renewed = std::time::Instant::now();
                    true
                }
                // Another replica holds it now.
                Ok(false) => false,
                // The API server did not answer: still ours until the
                // renew deadline (two thirds of the lease), as client-go.
                Err(e) => {
                    let deadline = lease.duration().mul_f64(2.0 / 3.0);
                    tracing::warn!(error = %e, "leader lease not renewed");
                    renewed.elapsed() < deadline
                }
            },
        }
    }

    async fn release(self) {
        match self {
            Held::Always => {}
            Held::Postgres(lock) => lock.release().await,
            Held::Lease(lease, _) => lease.release().await,
        }
    }
}

/// The name of the PostgreSQL advisory lock.
const LOCK_NAME: &str = "leader";

/// `Ok(None)`: another replica leads. `Err`: the lock could not be asked
/// (store down, API server away, or a Lease this replica may not write).
async fn try_take(lock: &Lock) -> Result<Option<Held>, LeaderError> {
    match lock {
        Lock::Always => Ok(Some(Held::Always)),
        Lock::Postgres(store) => match store.try_leader_lock(LOCK_NAME).await {
            Ok(held) => Ok(held.map(Held::Postgres)),
            Err(e) => Err(LeaderError::Store(e)),
        },
        Lock::Lease(lease) => match lease.try_acquire_or_renew().await {
            Ok(true) => Ok(Some(Held::Lease(lease.clone(), std::time::Instant::now()))),
            Ok(false) => Ok(None),
            Err(e) => Err(LeaderError::Lease(e)),
        },
    }
}

/// Whether this replica leads, for tests and `/metrics`.
#[derive(Debug, Clone)]
pub struct Leadership {
    /// Whether it leads, and how many times it took the lead so far.
    rx: watch::Receiver<(bool, u64)>,
}

impl Leadership {
    pub fn is_leader(&self) -> bool {
        self.rx.borrow().0
    }

    /// How many times this replica became the leader.
    pub fn terms(&self) -> u64 {
        self.rx.borrow().1
    }

    /// Waits until this replica leads.
    pub async fn led(&mut self) {
        let _ = self.rx.wait_for(|l| l.0).await;
    }
}

/// What the leader runs: started with a token that is cancelled when the
/// leadership ends.
pub type LeaderTasks = Box<dyn Fn(CancellationToken) -> Vec<JoinHandle<()>> + Send + Sync>;

// The election's series: two, registered here beside the loop that sets
// them.

/// The election's series.
#[derive(Debug, Clone, Default)]
pub struct LeaderMetrics {
    /// 1 while this replica leads.
    pub leading: Gauge,
    /// Attempts to take the lock that could not even ask it.
    pub lock_errors: Counter,
}

/// Registers `riposte_leader` and `riposte_leader_lock_errors_total`.
pub fn register(registry: &mut Registry) -> LeaderMetrics {
    let m = LeaderMetrics::default();
    registry.register(
        "riposte_leader",
        "1 while this replica holds the leader role (schedules, expiries, reconciliation, purge)",
        m.leading.clone(),
    );
    registry.register(
        "riposte_leader_lock_errors",
        "Attempts to take the leader lock that failed (store down, API server away, Lease forbidden): while they last, no replica may be running expiries",
        m.lock_errors.clone(),
    );
    m
}

/// Runs the election loop until `shutdown`; the leader's tasks run while
/// the lock is held.
pub fn spawn(
    lock: Lock,
    check: Duration,
    tasks: LeaderTasks,
    metrics: LeaderMetrics,
    shutdown: CancellationToken,
) -> (Leadership, JoinHandle<()>) {
    let (tx, rx) = watch::channel((false, 0u64));
    let tasks = Arc::new(tasks);
    let gauge = metrics.leading.clone();
    let handle = tokio::spawn(async move {
        // Failing since: logged loudly once, then quietly.
        let mut failing = false;
        loop {
            let held = tokio::select! {
                () = shutdown.cancelled() => return,
                h = try_take(&lock) => h,
            };
            let held = match held {
                Ok(h) => {
                    if failing {
                        tracing::info!(lock = lock.kind(), "leader lock answers again");
                    }
                    failing = false;
                    h
                }
                Err(e) => {
                    metrics.lock_errors.inc();
                    if failing {
                        tracing::debug!(error = %e, "leader lock still failing");
                    } else {
                        tracing::error!(
                            error = %e,
                            lock = lock.kind(),
                            "cannot take the leader lock: this replica runs no schedules, expiries or reconciliation until it can"
                        );
                    }
                    failing = true;
                    None
                }
            };
            let Some(mut held) = held else {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(check) => continue,
                }
            };
            tracing::info!(
                lock = lock.kind(),
                "leading: schedules, expiries, reconciliation and purge run here"
            );
            gauge.set(1);
            tx.send_modify(|s| *s = (true, s.1 + 1));
            let stop = shutdown.child_token();
            let running = tasks(stop.clone());
            let lost = loop {
                tokio::select! {
                    () = shutdown.cancelled() => break false,
                    () = tokio::time::sleep(check) => {}
                }
                let ok = tokio::select! {
                    () = shutdown.cancelled() => break false,
                    ok = held.still_held() => ok,
                };
                if !ok {
                    break true;
                }
            };
            stop.cancel();
            for h in running {
                let _ = h.await;
            }
            gauge.set(0);
            tx.send_modify(|s| s.0 = false);
            if lost {
                tracing::warn!(lock = lock.kind(), "leadership lost: leader tasks stopped");
                drop(held);
            } else {
                held.release().await;
                return;
            }
        }
    });
    (Leadership { rx }, handle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn always_leads_and_stops_its_tasks_on_shutdown() {
        let started = Arc::new(AtomicUsize::new(0));
        let s = started.clone();
        let shutdown = CancellationToken::new();
        let (mut leadership, handle) = spawn(
            Lock::Always,
            Duration::from_millis(10),
            Box::new(move |stop: CancellationToken| {
                s.fetch_add(1, Ordering::SeqCst);
                vec![tokio::spawn(async move { stop.cancelled().await })]
            }),
            LeaderMetrics::default(),
            shutdown.clone(),
        );
        leadership.led().await;
        assert!(leadership.is_leader());
        shutdown.cancel();
        handle.await.expect("ends");
        assert_eq!(started.load(Ordering::SeqCst), 1);
        assert!(!leadership.is_leader());
    }

    #[tokio::test]
    async fn a_lock_that_cannot_be_asked_is_counted_and_never_leads() {
        // A PostgreSQL store on a closed port: every attempt fails.
        let dir = tempfile::tempdir().expect("dir");
        let config = crate::store::StoreConfig {
            url: Some(crate::store::DatabaseUrl::new(
                "postgres://postgres@127.0.0.1:9/none".to_string(),
            )),
            connect_timeout_secs: 1,
            ..crate::store::StoreConfig::default()
        };
        let store = crate::store::Store::open(&config, dir.path())
            .await
            .expect("opens unready");
        let metrics = LeaderMetrics::default();
        let shutdown = CancellationToken::new();
        let (leadership, handle) = spawn(
            Lock::Postgres(store),
            Duration::from_millis(10),
            Box::new(|_| Vec::new()),
            metrics.clone(),
            shutdown.clone(),
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while metrics.lock_errors.get() < 2 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(metrics.lock_errors.get() >= 2);
        assert!(!leadership.is_leader());
        shutdown.cancel();
        handle.await.expect("ends");
    }

    #[test]
    fn config_checks_the_intervals() {
        assert!(LeaderConfig::default().validate().is_ok());
        let c = LeaderConfig {
            check_interval_ms: 20_000,
            ..LeaderConfig::default()
        };
        assert!(c.validate().is_err());
    }
}
