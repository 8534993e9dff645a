//! `riposte serve`: builds every component from the config, binds every
//! listener, runs until shutdown, then drains.
//!
//! [`start`] returns a [`Running`] service with the addresses it actually
//! bound (so tests can ask for port 0) and the handles tests need; `main`
//! waits on it.
//!
//! [`start_role`] is the one place where everything starts, in order, and
//! `Drain` the one place where everything stops. The `Context` holds
//! what every stage shares; one builder per stage fills in the rest:
//! - `context`: config, registry, readiness, store, audit writer, decision
//!   log, broker, notifier, Kubernetes side and pod index;
//! - `intake`: pod resolvers, pipeline, listeners, sources, consumers;
//! - `decide`: what the pipeline hands each event to;
//! - `act`: guardrails, firewalls, approvals, the dispatcher;
//! - `api`: the HTTP state and server;
//! - `background`: store watch, recovery, workers, leader election.

mod act;
mod api;
mod background;
mod context;
mod decide;
mod intake;
pub mod summary;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use self::act::Act;
use self::context::Context;
use self::intake::Listeners;
use crate::act::dispatch::KubeBackend;
use crate::act::firewall_sync::Firewalls;
use crate::api::{ApiMetrics, Readiness};
use crate::config::Config;
use crate::decide::decision::DecisionLog;
use crate::decide::playbook::PlaybookRuntime;
use crate::error::EngineError;
use crate::intake::pipeline::{EventHandler, Shards};
use crate::intake::queues::{Amqp, Role};
use crate::leader::Leadership;
use crate::store::{AuditWriter, Store};

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
    config: Config,
    role: Role,
    shutdown: CancellationToken,
) -> Result<Running, EngineError> {
    let (mut ctx, mut prepared) = Context::build(config, role, shutdown).await?;
    let pods = intake::pod_resolver(&ctx, prepared.inventory.take());
    let firewall_clients = std::mem::take(&mut prepared.firewall_clients);
    let act = Act::build(&mut ctx, firewall_clients, prepared.approval_secret.take()).await?;
    let webhooks = std::mem::take(&mut prepared.webhooks);
    let api_metrics = ApiMetrics::register(&mut ctx.registry);
    let (pipeline, shards) = intake::pipeline(&ctx);

    // Bind everything before spawning anything, so a bad address fails the
    // start cleanly.
    let mut listeners = Listeners::bind(&ctx.config).await?;
    let bound = listeners.bound()?;
    let mut sources =
        intake::spawn_sources(&ctx, &mut listeners, prepared.syslog_tls.take(), &pipeline);
    let background = background::spawn(&mut ctx, &act, &pipeline).await?;
    let registry = ctx.freeze_registry();
    let http = api::Api {
        registry: registry.clone(),
        metrics: api_metrics,
        webhooks,
        listener: listeners.http.take(),
        tls: prepared.http_tls.take(),
    };
    api::spawn(&ctx, &act, http, &pipeline, &mut sources);
    drop(pipeline);
    ctx.readiness.set("listeners", true);
    tracing::info!(
        udp = ?bound.udp,
        tcp = ?bound.tcp,
        tls = ?bound.tls,
        http = ?bound.http,
        playbooks = ctx.playbooks.as_ref().map_or(0, |r| r.playbooks().len()),
        "riposte is serving"
    );

    let (stage, confirms) = decide::stage(&ctx, pods, act.dispatcher.clone());
    intake::spawn_consumers(&ctx, &stage, &mut sources);
    // The writer outlives the pipeline: it stops only once the drained
    // pipeline has handed over its last decisions.
    let writer_stop = CancellationToken::new();
    let writer = ctx.audit.spawn(writer_stop.clone());
    let done = tokio::spawn(
        Drain {
            stop: ctx.shutdown.clone(),
            grace: Duration::from_secs(ctx.config.pipeline.drain_timeout_secs),
            stage,
            shards,
            sources,
            background: background.tasks,
            confirms,
            writer_stop,
            writer,
            amqp_writers: background.amqp_writers,
            broker: ctx.amqp.clone(),
            store: ctx.store.clone(),
        }
        .run(),
    );
    Ok(Running {
        udp: bound.udp,
        tcp: bound.tcp,
        tls: bound.tls,
        http: bound.http,
        decisions: ctx.decisions,
        registry,
        readiness: ctx.readiness,
        playbooks: ctx.playbooks,
        kube: ctx.kube,
        store: ctx.store,
        audit: ctx.audit,
        firewall: act.firewall,
        role,
        amqp: ctx.amqp,
        leadership: background.leadership,
        shutdown: ctx.shutdown,
        done,
    })
}

/// Everything a shutdown stops, in the order [`Drain::run`] stops it.
struct Drain {
    stop: CancellationToken,
    grace: Duration,
    stage: Arc<dyn EventHandler>,
    shards: Shards,
    sources: JoinSet<()>,
    background: JoinSet<()>,
    /// The partition publisher's confirm loop (the `ingest` role).
    confirms: Option<JoinHandle<()>>,
    writer_stop: CancellationToken,
    writer: JoinHandle<()>,
    amqp_writers: Vec<(CancellationToken, JoinHandle<()>)>,
    broker: Option<Arc<Amqp>>,
    store: Store,
}

impl Drain {
    /// Runs the pipeline until shutdown, then closes the sources and the
    /// background tasks, drains the pipeline, and only then stops the
    /// writers, the broker and the store.
    async fn run(mut self) {
        let drained = tokio::spawn(self.shards.run_with_grace(
            self.stage,
            self.stop.clone(),
            self.grace,
        ));
        self.stop.cancelled().await;
        tracing::info!("shutting down: closing sources, draining the pipeline");
        while self.sources.join_next().await.is_some() {}
        while self.background.join_next().await.is_some() {}
        let _ = drained.await;
        if let Some(task) = self.confirms {
            let _ = task.await;
        }
        self.writer_stop.cancel();
        let _ = self.writer.await;
        for (stop, task) in self.amqp_writers {
            stop.cancel();
            let _ = task.await;
        }
        if let Some(a) = self.broker {
            a.broker.close().await;
        }
        self.store.close().await;
        tracing::info!("stopped");
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
