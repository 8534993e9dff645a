//! `riposte serve`: builds every component from the config, binds every
//! listener, runs until shutdown, then drains.
//!
//! [`start`] returns a [`Running`] service with the addresses it actually
//! bound (so tests can ask for port 0) and the handles tests need; `main`
//! waits on it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use prometheus_client::registry::Registry;
use riposte_firewall::ThreatEvent;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::act::approvals::Approvals;
use crate::act::dispatch::{ActionDispatcher, DispatchMetrics, KubeBackend};
use crate::act::firewall_sync::state::FirewallState;
use crate::act::firewall_sync::{FirewallMetrics, Firewalls};
use crate::act::guardrails::Guardrails;
use crate::act::notify::{Notifier, NotifyMetrics};
use crate::api::server::ServerSettings;
use crate::api::store::ApiStore;
use crate::api::{self, ApiMetrics, AppState, Readiness};
use crate::auth::TokenSet;
use crate::config::Config;
use crate::decide::decision::{DecisionLog, Dispatcher};
use crate::decide::playbook::PlaybookRuntime;
use crate::error::EngineError;
use crate::intake::enrich::{enrich, Chain, PodResolver};
use crate::intake::metrics::IngestMetrics;
use crate::intake::pipeline::{EventHandler, Pipeline};
use crate::intake::queues::partition::PartitionPublisher;
use crate::intake::queues::{Amqp, Role};
use crate::intake::sources::allow::AllowList;
use crate::intake::sources::stream::{self, StreamSettings};
use crate::intake::sources::{eve, udp, Ingest};
use crate::leader::{LeaderTasks, Leadership, Lock};
use crate::store::{AuditWriter, Store};
use riposte_connectors::kubernetes::{KubernetesConnector, PodIndex};

/// What a running service exposes.
#[derive(Debug)]
pub struct Running {
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
    pub tls: Vec<SocketAddr>,
    pub http: Option<SocketAddr>,
    pub decisions: Arc<DecisionLog>,
    pub registry: Arc<Registry>,
    pub readiness: Readiness,
    pub playbooks: Option<Arc<PlaybookRuntime>>,
    pub kube: Option<Arc<KubeBackend>>,
    /// The store, open and migrated.
    pub store: Store,
    /// The audit writer (tests `flush` it before reading the store).
    pub audit: AuditWriter,
    /// Firewalls and EDLs (tests run a reconciliation round at will).
    pub firewall: Option<Arc<Firewalls>>,
    pub role: Role,
    /// The broker side, when `[amqp]` is configured.
    pub amqp: Option<Arc<Amqp>>,
    /// Whether this replica leads (roles that run playbooks).
    pub leadership: Option<Leadership>,
    shutdown: CancellationToken,
    done: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Begins a graceful shutdown.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until every task has finished (after [`Running::shutdown`] or a
    /// signal).
    pub async fn wait(self) {
        if let Err(e) = self.done.await {
            tracing::error!(error = %e, "service task failed");
        }
    }

    /// Prometheus text of the current metrics.
    pub fn metrics_text(&self) -> String {
        crate::intake::metrics::encode(&self.registry)
    }
}

/// The end of the pipeline: playbooks, then the dispatcher.
struct PlaybookStage {
    runtime: Option<Arc<PlaybookRuntime>>,
    pods: Option<Arc<dyn PodResolver>>,
    dispatcher: Arc<dyn Dispatcher>,
    audit: AuditWriter,
}

impl EventHandler for PlaybookStage {
    fn handle(&self, mut event: Box<ThreatEvent>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Whatever path it came by (a JSON event skips the parsers).
            event.canonicalize_addresses();
            if let Some(pods) = &self.pods {
                enrich(&mut event, pods.as_ref());
            }
            tracing::debug!(
                dataset = %event.dataset,
                threat = event.threat_name.as_deref().unwrap_or(""),
                source = ?event.source_ip,
                destination = ?event.destination_ip,
                "event"
            );
            let Some(runtime) = &self.runtime else { return };
            // Back-pressure: while the store is behind, events wait here.
            self.audit.wait_for_room().await;
            for decision in runtime.evaluate(&event) {
                self.dispatcher.dispatch(decision).await;
            }
        })
    }
}

/// Builds and starts everything in the `all` role. Errors here are
/// configuration or bind errors: nothing is left running when it fails.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Running, EngineError> {
    start_role(config, Role::All, shutdown).await
}

/// Builds and starts the replica of `role`: `ingest` receives and publishes
/// to the partition queues, `worker` consumes them and runs the playbooks
/// (it binds no syslog listener and follows no EVE file), `all` does both
/// in one process.
pub async fn start_role(
    mut config: Config,
    role: Role,
    shutdown: CancellationToken,
) -> Result<Running, EngineError> {
    crate::config::preflight::apply_role(&mut config, role);
    let mut registry = Registry::default();
    // Every check `check-config` makes too, before anything is created.
    let prepared = crate::config::preflight::preflight(&config, role, &mut registry).await?;
    crate::store::private_dir(&config.data_dir).map_err(|source| EngineError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let opts = prepared.parse.clone();
    let metrics = IngestMetrics::register(&mut registry);
    let readiness = Readiness::default();
    readiness.register("listeners");
    readiness.register("playbooks");
    readiness.register("store");

    let store = Store::open(&config.store, &config.data_dir).await?;
    store.register_metrics(&mut registry);
    // False while a PostgreSQL store has not answered: `watch_store` turns
    // it true when it does.
    readiness.set("store", store.is_ready());
    let amqp = Amqp::build(config.amqp.as_ref(), role, &store, &mut registry)?;

    let runtime = prepared.playbooks.clone();
    readiness.set("playbooks", true);
    let mut resolvers: Vec<Arc<dyn PodResolver>> = Vec::new();
    let decisions = Arc::new(DecisionLog::default());
    let audit = AuditWriter::new(store.clone());
    match amqp.as_ref().and_then(|a| a.stream.clone()) {
        Some(stream) => decisions.set_sink(Arc::new(crate::act::publish::Tee(vec![
            Arc::new(audit.clone()),
            stream,
        ]))),
        None => decisions.set_sink(Arc::new(audit.clone())),
    };
    let dispatch_metrics = DispatchMetrics::register(&mut registry);
    let notifier = Notifier::from_targets(
        &config.notify,
        prepared.notify_targets,
        store.clone(),
        NotifyMetrics::register(&mut registry),
    );
    if let Some(n) = &notifier {
        dispatch_metrics.set_outcome_notifier(n.clone());
    }
    let kube_client = prepared.kube;
    let lease_client = kube_client.clone().map(|c| (c, prepared.in_cluster));
    let kube = match kube_client {
        Some(client) => {
            let index = PodIndex::spawn(client.clone(), &config.kubernetes);
            readiness.register("pod_index");
            let ready = readiness.clone();
            let waiting = index.clone();
            tokio::spawn(async move {
                waiting.ready().await;
                ready.set("pod_index", true);
                tracing::info!("pod index synced");
            });
            resolvers.push(Arc::new(index.clone()));
            let connector = KubernetesConnector::new(client, config.kubernetes.clone());
            Some(Arc::new(KubeBackend::new(connector, index)))
        }
        None => {
            tracing::info!(
                "no Kubernetes cluster configured: Kubernetes actions are recorded as skipped"
            );
            None
        }
    };
    if let (Some(path), Some(inventory)) = (&config.pods.inventory_file, prepared.inventory) {
        tracing::info!(file = %path.display(), addresses = inventory.len(), "pod inventory loaded");
        resolvers.push(Arc::new(inventory));
    }
    let pods: Option<Arc<dyn PodResolver>> = match resolvers.len() {
        0 => None,
        1 => resolvers.pop(),
        _ => Some(Arc::new(Chain(resolvers))),
    };
    let guardrails = Arc::new(Guardrails::new(config.guardrails.clone()));
    let firewall = start_firewalls(&config, prepared.firewall_clients, &store, &mut registry);
    let api_store: Arc<dyn ApiStore> = Arc::new(store.clone());
    let approval_secret = match prepared.approval_secret {
        Some(secret) => secret,
        None => crate::act::approvals::data_dir_secret(&config.data_dir).map_err(|e| {
            EngineError::ConfigInvalid {
                key: "api.approval_secret".into(),
                message: e.to_string(),
            }
        })?,
    };
    let approvals = Arc::new(Approvals::new(
        api_store.clone(),
        approval_secret,
        &config.api.public_url,
    ));
    if let Some(n) = &notifier {
        n.set_link_signer(approvals.signer().clone());
    }
    // What an older version stored with the link tokens in it.
    match store
        .outbox_rewrite_payloads(crate::act::approvals::strip_link_tokens)
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(items = n, "approval link tokens removed from the outbox"),
        Err(e) => tracing::warn!(error = %e, "cannot check the outbox for stored link tokens"),
    }
    let dispatcher: Arc<dyn Dispatcher> = Arc::new(
        ActionDispatcher::new(
            decisions.clone(),
            kube.clone(),
            guardrails,
            dispatch_metrics.clone(),
        )
        .with_notifier(notifier.clone())
        .with_firewall(firewall.clone())
        .with_approvals(approvals.clone())
        .with_amqp(amqp.as_ref().and_then(|a| a.sink.clone())),
    );
    let webhooks = prepared.webhooks;
    let api_metrics = ApiMetrics::register(&mut registry);

    let (pipeline, shards) = Pipeline::new(
        config.shard_count(),
        config.pipeline.queue_capacity,
        metrics.queued.clone(),
        metrics.processed.clone(),
    );

    // Bind everything before spawning anything, so a bad address fails the
    // start cleanly.
    let mut udp_sockets = Vec::new();
    for addr in &config.syslog.udp.listen {
        udp_sockets.push(udp::bind(*addr, config.syslog.udp.receive_buffer_bytes)?);
    }
    let mut tcp_listeners = Vec::new();
    for addr in &config.syslog.tcp.listen {
        tcp_listeners.push(stream::bind(*addr, "syslog TCP").await?);
    }
    let mut tls_listeners = Vec::new();
    let tls_acceptor = prepared.syslog_tls;
    for addr in &config.syslog.tls.listen {
        tls_listeners.push(stream::bind(*addr, "syslog TLS").await?);
    }
    let http_tls = prepared.http_tls;
    let http_listener = match config.http.listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| EngineError::Bind {
                    what: "HTTP",
                    addr,
                    source,
                })?,
        ),
        None => None,
    };

    let local = |r: std::io::Result<SocketAddr>| r.map_err(EngineError::Io);
    let mut running_udp = Vec::new();
    for s in &udp_sockets {
        running_udp.push(local(s.local_addr())?);
    }
    let mut running_tcp = Vec::new();
    for l in &tcp_listeners {
        running_tcp.push(local(l.local_addr())?);
    }
    let mut running_tls = Vec::new();
    for l in &tls_listeners {
        running_tls.push(local(l.local_addr())?);
    }
    let http_addr = match &http_listener {
        Some(l) => Some(local(l.local_addr())?),
        None => None,
    };

    let mut sources = JoinSet::new();
    let workers = config.shard_count();
    for socket in udp_sockets {
        let ingest = Ingest::new(opts.clone(), metrics.source("syslog_udp"));
        sources.spawn(udp::serve(
            socket,
            workers,
            AllowList::new(&config.syslog.udp.allowed_sources),
            ingest,
            pipeline.clone(),
            shutdown.clone(),
        ));
    }
    let tcp_settings = StreamSettings {
        slots: config.syslog.tcp.slot_policy(),
        idle_timeout: Duration::from_secs(config.syslog.tcp.idle_timeout_secs.max(1)),
        handshake_timeout: Duration::from_secs(10),
        max_record_bytes: config.parse.max_record_bytes,
    };
    for listener in tcp_listeners {
        let ingest = Ingest::new(opts.clone(), metrics.source("syslog_tcp"));
        sources.spawn(stream::serve(
            listener,
            tcp_settings.clone(),
            None,
            AllowList::new(&config.syslog.tcp.allowed_sources),
            ingest,
            pipeline.clone(),
            shutdown.clone(),
        ));
    }
    let tls_settings = StreamSettings {
        slots: config.syslog.tls.slot_policy(),
        idle_timeout: Duration::from_secs(config.syslog.tls.idle_timeout_secs.max(1)),
        handshake_timeout: Duration::from_secs(config.syslog.tls.handshake_timeout_secs.max(1)),
        max_record_bytes: config.parse.max_record_bytes,
    };
    for listener in tls_listeners {
        let ingest = Ingest::new(opts.clone(), metrics.source("syslog_tls"));
        sources.spawn(stream::serve(
            listener,
            tls_settings.clone(),
            tls_acceptor.clone(),
            AllowList::new(&config.syslog.tls.allowed_sources),
            ingest,
            pipeline.clone(),
            shutdown.clone(),
        ));
    }
    if !config.eve.is_empty() {
        let ingest = Ingest::new(opts.clone(), metrics.source("eve_file"));
        for eve_config in &config.eve {
            sources.spawn(eve::follow(
                eve_config.clone(),
                config.data_dir.clone(),
                ingest.clone(),
                pipeline.clone(),
                shutdown.clone(),
            ));
        }
    }

    let mut background = JoinSet::new();
    {
        background.spawn(watch_store(
            store.clone(),
            readiness.clone(),
            shutdown.clone(),
        ));
    }
    // Decisions a killed process left in flight get their true outcome.
    background.spawn(crate::store::recovery::run(store.clone(), shutdown.clone()));
    if let Some(n) = &notifier {
        let handle = crate::act::notify::worker::spawn(n.clone(), shutdown.clone());
        background.spawn(async move {
            let _ = handle.await;
        });
    }
    background.spawn(approvals.clone().run_timeouts(
        decisions.clone(),
        dispatcher.clone(),
        Duration::from_millis(config.api.approval_check_ms),
        shutdown.clone(),
    ));
    if let Some(rt) = &runtime {
        // SIGHUP always reloads; the directory is watched when `watch` is on.
        let handle = rt.clone().spawn_reloader(shutdown.clone());
        background.spawn(async move {
            let _ = handle.await;
        });
    }
    let leadership = if role.decides() {
        let lock = Lock::choose(&config.leader, &store, lease_client).map_err(|e| {
            EngineError::ConfigInvalid {
                key: "leader".into(),
                message: e.to_string(),
            }
        })?;
        let tasks = leader_tasks(
            &store,
            firewall.as_ref(),
            kube.as_ref(),
            runtime.as_ref(),
            &decisions,
            &dispatch_metrics,
            &pipeline,
        );
        let metrics = crate::leader::register(&mut registry);
        let (leadership, handle) = crate::leader::spawn(
            lock,
            Duration::from_millis(config.leader.check_interval_ms),
            tasks,
            metrics,
            shutdown.clone(),
        );
        background.spawn(async move {
            let _ = handle.await;
        });
        Some(leadership)
    } else {
        None
    };
    let mut amqp_writers = Vec::new();
    if let Some(a) = &amqp {
        a.declare().await;
        if role != Role::All {
            // A replica split over the broker does nothing useful without
            // it: not ready until connected.
            readiness.register("amqp");
            background.spawn(a.clone().watch(readiness.clone(), shutdown.clone()));
        }
        if let Some(sink) = &a.sink {
            let handle = sink.clone().spawn(shutdown.clone());
            background.spawn(async move {
                let _ = handle.await;
            });
        }
        if let Some(stream) = &a.stream {
            // Like the audit writer, it outlives the consumers that flush it.
            let stop = CancellationToken::new();
            amqp_writers.push((stop.clone(), stream.clone().spawn(stop)));
        }
    }

    let registry = Arc::new(registry);
    let http_ingest = Ingest::new(opts.clone(), metrics.source("http"));
    let state = Arc::new(AppState {
        tokens: TokenSet::new(&config.api.tokens),
        registry: registry.clone(),
        readiness: readiness.clone(),
        ingest: http_ingest,
        pipeline: pipeline.clone(),
        decisions: decisions.clone(),
        store: store.clone(),
        notifier: notifier.clone(),
        max_body_bytes: config.http.max_body_bytes,
        firewall: firewall.clone(),
        max_json_depth: config.api.max_json_depth,
        webhooks,
        api_store,
        dispatcher: dispatcher.clone(),
        playbooks: runtime.clone(),
        kube: kube.clone(),
        approvals,
        action_wait: Duration::from_millis(config.api.action_wait_ms),
        metrics: api_metrics,
    });
    if let Some(listener) = http_listener {
        let app = api::router(state, &config.http);
        let settings = ServerSettings {
            header_read_timeout: Duration::from_secs(config.http.header_read_timeout_secs.max(1)),
            tls_handshake_timeout: Duration::from_secs(10),
            max_connections: config.http.max_connections,
            grace: Duration::from_secs(config.pipeline.drain_timeout_secs.max(1)),
        };
        sources.spawn(api::server::serve(
            listener,
            app,
            http_tls,
            settings,
            shutdown.clone(),
        ));
    } else {
        drop(state);
    }
    drop(pipeline);
    readiness.set("listeners", true);
    tracing::info!(
        udp = ?running_udp,
        tcp = ?running_tcp,
        tls = ?running_tls,
        http = ?http_addr,
        playbooks = runtime.as_ref().map_or(0, |r| r.playbooks().len()),
        "riposte is serving"
    );

    let mut confirms = None;
    let stage: Arc<dyn EventHandler> = match (&amqp, role) {
        (Some(a), Role::Ingest) => {
            let (publisher, task) = PartitionPublisher::new(
                a.publisher.clone(),
                a.config.partitions.clone(),
                a.metrics.clone(),
                shutdown.clone(),
            );
            confirms = Some(task);
            publisher
        }
        _ => Arc::new(PlaybookStage {
            runtime: runtime.clone(),
            pods,
            dispatcher,
            audit: audit.clone(),
        }),
    };
    if let Some(a) = &amqp {
        let ingest = Ingest::new(opts.clone(), metrics.source("amqp"));
        for handle in a.spawn_consumers(stage.clone(), &audit, ingest, &shutdown) {
            sources.spawn(async move {
                let _ = handle.await;
            });
        }
    }
    let grace = Duration::from_secs(config.pipeline.drain_timeout_secs);
    let stop = shutdown.clone();
    // The writer outlives the pipeline: it stops only once the drained
    // pipeline has handed over its last decisions.
    let writer_stop = CancellationToken::new();
    let writer = audit.spawn(writer_stop.clone());
    let closing = store.clone();
    let broker = amqp.clone();
    let done = tokio::spawn(async move {
        let drained = tokio::spawn(shards.run_with_grace(stage, stop.clone(), grace));
        stop.cancelled().await;
        tracing::info!("shutting down: closing sources, draining the pipeline");
        while sources.join_next().await.is_some() {}
        while background.join_next().await.is_some() {}
        let _ = drained.await;
        if let Some(task) = confirms {
            let _ = task.await;
        }
        writer_stop.cancel();
        let _ = writer.await;
        for (stop, task) in amqp_writers {
            stop.cancel();
            let _ = task.await;
        }
        if let Some(a) = broker {
            a.broker.close().await;
        }
        closing.close().await;
        tracing::info!("stopped");
    });

    Ok(Running {
        udp: running_udp,
        tcp: running_tcp,
        tls: running_tls,
        http: http_addr,
        decisions,
        registry,
        readiness,
        playbooks: runtime,
        kube,
        store,
        audit,
        firewall,
        role,
        amqp,
        leadership,
        shutdown,
        done,
    })
}

/// What only the leader runs: the store's purge, the firewall reconciler,
/// quarantine expiries, the firewall's following of quarantined pods (dual
/// path) and the playbook schedules.
fn leader_tasks(
    store: &Store,
    firewall: Option<&Arc<Firewalls>>,
    kube: Option<&Arc<KubeBackend>>,
    runtime: Option<&Arc<PlaybookRuntime>>,
    decisions: &Arc<DecisionLog>,
    dispatch_metrics: &DispatchMetrics,
    pipeline: &Pipeline,
) -> LeaderTasks {
    let store = store.clone();
    let follow = firewall
        .filter(|f| f.config().dual_path && !f.targets().is_empty())
        .cloned();
    let firewall = firewall.filter(|f| !f.targets().is_empty()).cloned();
    let kube = kube.cloned();
    let runtime = runtime.cloned();
    let decisions = decisions.clone();
    let dispatch_metrics = dispatch_metrics.clone();
    // Dropped with the closure when the election loop ends on shutdown, so
    // the pipeline still closes once the sources are done.
    let pipeline = pipeline.clone();
    Box::new(move |stop: CancellationToken| {
        let mut tasks = vec![store.spawn_purge(stop.clone())];
        if let Some(fw) = &firewall {
            tasks.push(fw.clone().spawn_reconciler(decisions.clone(), stop.clone()));
        }
        if let Some(kube) = &kube {
            tasks.push(kube.clone().spawn_expiry(
                decisions.clone(),
                dispatch_metrics.clone(),
                stop.clone(),
            ));
            if let Some(fw) = follow.as_ref() {
                tasks.push(fw.clone().spawn_follower(
                    kube.index().clone(),
                    decisions.clone(),
                    stop.clone(),
                ));
            }
        }
        if let Some(rt) = &runtime {
            // Schedule events join the same pipeline as firewall events.
            let (tx, mut rx) = mpsc::channel::<ThreatEvent>(64);
            let handle = rt.clone().spawn_scheduler(tx, stop.clone());
            let forward = pipeline.clone();
            tasks.push(tokio::spawn(async move {
                while let Some(ev) = rx.recv().await {
                    if forward.send(Box::new(ev)).await.is_err() {
                        break;
                    }
                }
                let _ = handle.await;
            }));
        }
        tasks
    })
}

/// Keeps the `store` readiness check true while the database answers
/// (connecting and migrating a store that was unreachable at start). Looks
/// every 5 s, every second while not ready.
async fn watch_store(store: Store, readiness: Readiness, shutdown: CancellationToken) {
    let mut was_ready = store.is_ready();
    let mut first = true;
    loop {
        let pause = match (first, was_ready) {
            (true, _) => Duration::ZERO,
            (false, true) => Duration::from_secs(5),
            (false, false) => Duration::from_secs(1),
        };
        first = false;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        let ready = matches!(
            tokio::time::timeout(Duration::from_secs(3), store.ping()).await,
            Ok(Ok(()))
        );
        if ready != was_ready {
            if ready {
                tracing::info!("store reachable again");
            } else {
                tracing::warn!(url = store.url(), "store unreachable: not ready");
            }
            was_ready = ready;
        }
        readiness.set("store", ready);
    }
}

/// Cancels `token` on SIGINT or SIGTERM.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for SIGTERM");
                        let _ = ctrl_c.await;
                        token.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        token.cancel();
    });
}

/// The firewall side, when `[firewall]` configures targets or lists;
/// `clients` come from the preflight.
fn start_firewalls(
    config: &Config,
    clients: Vec<riposte_firewall::xmlapi::Client>,
    store: &Store,
    registry: &mut Registry,
) -> Option<Arc<Firewalls>> {
    let c = &config.firewall;
    if c.targets.is_empty() && c.edl.is_empty() {
        return None;
    }
    let metrics = FirewallMetrics::register(registry);
    let state: Arc<dyn FirewallState> = Arc::new(store.clone());
    let fw = Firewalls::with_clients(c.clone(), clients, state, metrics);
    tracing::info!(
        targets = fw.targets().len(),
        lists = c.edl.len(),
        dual_path = c.dual_path,
        "firewall side ready"
    );
    Some(Arc::new(fw))
}
