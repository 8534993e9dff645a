//! What every stage shares (the controller-rs `Context`): built once at
//! start, then the stage builders take their handles from it and clone them
//! into the tasks they spawn.

use std::sync::Arc;

use prometheus_client::registry::Registry;
use riposte_connectors::kubernetes::{KubernetesConnector, PodIndex};
use riposte_firewall::ParseOptions;
use tokio_util::sync::CancellationToken;

use crate::act::dispatch::metrics::PodIndexCollector;
use crate::act::dispatch::{DispatchMetrics, KubeBackend};
use crate::act::notifications::{Notifier, NotifyMetrics};
use crate::api::Readiness;
use crate::config::preflight::Prepared;
use crate::config::Config;
use crate::decide::decision::DecisionLog;
use crate::decide::playbook::PlaybookRuntime;
use crate::error::EngineError;
use crate::intake::metrics::IngestMetrics;
use crate::intake::queues::{Amqp, Role};
use crate::store::{AuditWriter, Store};

/// The shared handles of one running replica.
pub(super) struct Context {
    pub config: Config,
    pub role: Role,
    /// Cancelled on shutdown: every source and background task watches it.
    pub shutdown: CancellationToken,
    /// Every series registers here while the stages are built; the API
    /// serves it once [`Context::freeze_registry`] has shared it.
    pub registry: Registry,
    pub readiness: Readiness,
    pub parse: ParseOptions,
    pub ingest: IngestMetrics,
    /// Open and migrated (or, for PostgreSQL, waiting for the database).
    pub store: Store,
    pub audit: AuditWriter,
    pub decisions: Arc<DecisionLog>,
    /// The broker side, when `[amqp]` is configured.
    pub amqp: Option<Arc<Amqp>>,
    /// `None` only for a role that runs no playbook.
    pub playbooks: Option<Arc<PlaybookRuntime>>,
    pub dispatch_metrics: DispatchMetrics,
    pub notifier: Option<Arc<Notifier>>,
    /// Kubernetes actions and the pod index, when a cluster is configured.
    pub kube: Option<Arc<KubeBackend>>,
    /// The client for the leader's lease, and whether it is the in-cluster
    /// service account.
    pub lease_client: Option<(kube::Client, bool)>,
}

impl Context {
    /// Runs the preflight (every check `check-config` makes too, before
    /// anything is created), then opens the store and the broker and builds
    /// the handles the stages share. The rest of the preflight's output is
    /// returned for the stage builders.
    pub async fn build(
        mut config: Config,
        role: Role,
        shutdown: CancellationToken,
    ) -> Result<(Context, Prepared), EngineError> {
        crate::config::preflight::apply_role(&mut config, role);
        let mut registry = Registry::default();
        let mut prepared =
            crate::config::preflight::preflight(&config, role, &mut registry).await?;
        crate::store::private_dir(&config.data_dir).map_err(|source| EngineError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let parse = prepared.parse.clone();
        let ingest = IngestMetrics::register(&mut registry);
        let readiness = Readiness::default();
        readiness.register_metrics(&mut registry);
        readiness.register("listeners");
        readiness.register("playbooks");
        readiness.register("store");

        let store = Store::open(&config.store, &config.data_dir).await?;
        store.register_metrics(&mut registry);
        // False while a PostgreSQL store has not answered: `watch_store` turns
        // it true when it does.
        readiness.set("store", store.is_ready());
        let amqp = Amqp::build(config.amqp.as_ref(), role, &store, &mut registry)?;

        let playbooks = prepared.playbooks.clone();
        readiness.set("playbooks", true);
        let (decisions, audit) = decision_log(&store, amqp.as_ref());
        decisions.register_metrics(&mut registry);
        let dispatch_metrics = DispatchMetrics::register(&mut registry);
        let notifier = Notifier::from_targets(
            &config.notify,
            std::mem::take(&mut prepared.notify_targets),
            store.clone(),
            NotifyMetrics::register(&mut registry),
        );
        if let Some(n) = &notifier {
            dispatch_metrics.set_outcome_notifier(n.clone());
            n.write_through(audit.clone());
        }
        let kube_client = prepared.kube.take();
        let lease_client = kube_client.clone().map(|c| (c, prepared.in_cluster));
        let kube = kube_backend(&config, kube_client, &readiness, &mut registry, &shutdown);
        let context = Context {
            config,
            role,
            shutdown,
            registry,
            readiness,
            parse,
            ingest,
            store,
            audit,
            decisions,
            amqp,
            playbooks,
            dispatch_metrics,
            notifier,
            kube,
            lease_client,
        };
        Ok((context, prepared))
    }

    /// Shares the registry once every series is registered; the context's
    /// own is left empty, so nothing may register after this.
    pub fn freeze_registry(&mut self) -> Arc<Registry> {
        Arc::new(std::mem::take(&mut self.registry))
    }
}

/// The decision log, whose decisions go to the audit writer and, when the
/// broker carries a decision stream, to the stream too.
fn decision_log(store: &Store, amqp: Option<&Arc<Amqp>>) -> (Arc<DecisionLog>, AuditWriter) {
    let decisions = Arc::new(DecisionLog::default());
    let audit = AuditWriter::new(store.clone());
    match amqp.and_then(|a| a.stream.clone()) {
        Some(stream) => decisions.set_sink(Arc::new(crate::act::publish::Tee(vec![
            Arc::new(audit.clone()),
            stream,
        ]))),
        None => decisions.set_sink(Arc::new(audit.clone())),
    };
    (decisions, audit)
}

/// The Kubernetes side: the pod index (a readiness check until it has
/// synced) and the connector that acts.
fn kube_backend(
    config: &Config,
    client: Option<kube::Client>,
    readiness: &Readiness,
    registry: &mut Registry,
    shutdown: &CancellationToken,
) -> Option<Arc<KubeBackend>> {
    let Some(client) = client else {
        tracing::info!(
            "no Kubernetes cluster configured: Kubernetes actions are recorded as skipped"
        );
        return None;
    };
    let index = PodIndex::spawn(client.clone(), &config.kubernetes);
    registry.register_collector(Box::new(PodIndexCollector::new(index.clone())));
    readiness.register("pod_index");
    readiness.register_advisory("kubernetes_api");
    let probe = index_readiness(index.clone(), client.clone(), readiness.clone());
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = probe => {}
            () = stop.cancelled() => {}
        }
    });
    let connector = KubernetesConnector::new(client, config.kubernetes.clone());
    Some(Arc::new(KubeBackend::new(connector, index)))
}

/// `pod_index` is ready once the index has synced: before that, addresses
/// do not resolve to pods and decisions would miss them. `kubernetes_api`
/// (advisory: reported on `/readyz` and `riposte_ready`, never a 503) says
/// whether the API server answers now: while it does not, the index may be
/// stale (pods that came, went or moved are unseen) and actions wait in
/// their retries, but ingest and decisions go on, so the replica keeps its
/// traffic. An outage hits every replica at once: taking them out of their
/// Service's endpoints would only drop the firewalls' logs.
async fn index_readiness(index: PodIndex, client: kube::Client, readiness: Readiness) {
    const PROBE: std::time::Duration = std::time::Duration::from_secs(2);
    index.ready().await;
    readiness.set("pod_index", true);
    readiness.set("kubernetes_api", true);
    tracing::info!("pod index synced");
    let mut failures = 0u32;
    loop {
        tokio::time::sleep(PROBE).await;
        let answered = tokio::time::timeout(PROBE, client.apiserver_version())
            .await
            .is_ok_and(|r| r.is_ok());
        let was = failures;
        failures = if answered {
            0
        } else {
            failures.saturating_add(1)
        };
        // Two misses in a row: one lost probe is not an outage.
        if failures == 2 {
            tracing::warn!("the API server does not answer: the pod index may be stale and actions wait; still reading and deciding");
            readiness.set("kubernetes_api", false);
        } else if failures == 0 && was >= 2 {
            tracing::info!("the API server answers again; the pod index catches up");
            readiness.set("kubernetes_api", true);
        }
    }
}
