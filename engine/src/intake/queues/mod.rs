//! RabbitMQ on the engine side: queues of logs or events as a source, the
//! `publish` intent and the decision stream as a sink, and the partition
//! queues that split Riposte into ingest and worker replicas.
//!
//! - [`config`]: the `[amqp]` section.
//! - [`decode`]: message bodies to events.
//! - [`source`]: consumers that ack once decisions are durable, and
//!   dead-letter poison messages with the reason.
//! - `publish` intents and the decision stream live in the act stage
//!   ([`crate::act::publish`]); the broker handle here owns them.
//! - [`partition`]: the ingest role's publisher to the partition queues.
//! - [`assign`]: the workers sharing the partitions.

pub mod assign;
pub mod config;
pub mod decode;
pub mod metrics;
pub mod partition;
pub mod source;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use prometheus_client::registry::Registry;
use riposte_connectors::amqp::{
    BindingSpec, Broker, ConsumerSettings, ExchangeSpec, ExchangeType, Publisher, QueueSpec,
    Topology,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use self::config::AmqpConfig;
use self::metrics::AmqpMetrics;
use self::source::ConsumerContext;
use crate::act::publish::{AmqpSink, DecisionStream, PublishError};
use crate::error::EngineError;
use crate::intake::pipeline::EventHandler;
use crate::intake::sources::Ingest;
use crate::store::{AuditWriter, Store, StoreError};

/// What a replica does (`riposte serve --role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Everything in one process (no partition queues).
    #[default]
    All,
    /// Receives syslog, HTTP and EVE, publishes events to the partitions.
    Ingest,
    /// Consumes the partitions and runs the playbooks.
    Worker,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Ingest => "ingest",
            Role::Worker => "worker",
        }
    }

    /// Whether this role runs playbooks (and so dispatches and leads).
    pub fn decides(self) -> bool {
        self != Role::Ingest
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `--role` that is none of the three.
#[derive(Debug, thiserror::Error)]
#[error("unknown role `{0}` (all, ingest or worker)")]
pub struct UnknownRole(String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        match s {
            "all" => Ok(Role::All),
            "ingest" => Ok(Role::Ingest),
            "worker" => Ok(Role::Worker),
            other => Err(UnknownRole(other.to_string())),
        }
    }
}

/// Why a batch of consumed messages is not durable yet (so not acked).
#[derive(Debug, thiserror::Error)]
pub enum DurabilityError {
    #[error("{0}")]
    Audit(#[source] StoreError),
    #[error("{0}")]
    Stream(#[source] PublishError),
}

/// What a consumer waits for before it acks: the audit writer, and the
/// decision stream when there is one.
#[derive(Debug, Clone)]
pub struct Durability {
    audit: AuditWriter,
    stream: Option<Arc<DecisionStream>>,
}

impl Durability {
    pub async fn flush(&self) -> Result<(), DurabilityError> {
        self.audit.flush().await.map_err(DurabilityError::Audit)?;
        if let Some(s) = &self.stream {
            s.flush().await.map_err(DurabilityError::Stream)?;
        }
        Ok(())
    }
}

/// The broker side of a running replica.
#[derive(Debug)]
pub struct Amqp {
    pub config: AmqpConfig,
    pub role: Role,
    pub broker: Arc<Broker>,
    pub publisher: Arc<Publisher>,
    pub metrics: AmqpMetrics,
    /// `publish` intents and the decision stream (roles that decide).
    pub sink: Option<Arc<AmqpSink>>,
    pub stream: Option<Arc<DecisionStream>>,
    /// Where the workers find each other.
    store: Store,
    kill: CancellationToken,
}

impl Amqp {
    /// The broker of `role`, checked (URL, password file, CA file) but not
    /// connected; `None` without `[amqp]`. The start-up checks
    /// `check-config` shares with `serve` run this.
    pub fn broker(
        config: Option<&AmqpConfig>,
        role: Role,
    ) -> Result<Option<Arc<Broker>>, EngineError> {
        let invalid = |message: String| EngineError::ConfigInvalid {
            key: "amqp".into(),
            message,
        };
        let Some(config) = config else {
            if role != Role::All {
                return Err(invalid(format!(
                    "--role {role} needs the broker: configure [amqp]"
                )));
            }
            return Ok(None);
        };
        let settings = config
            .broker_settings(role.as_str())
            .map_err(|e| invalid(e.to_string()))?;
        Broker::new(settings)
            .map(Some)
            .map_err(|e| invalid(e.to_string()))
    }

    /// Builds the broker handle (no connection yet) and the sink. `None`
    /// when `[amqp]` is absent; an error when the role needs it.
    pub fn build(
        config: Option<&AmqpConfig>,
        role: Role,
        store: &Store,
        registry: &mut Registry,
    ) -> Result<Option<Arc<Amqp>>, EngineError> {
        let (Some(config), Some(broker)) = (config, Self::broker(config, role)?) else {
            return Ok(None);
        };
        let publisher = Arc::new(Publisher::new(broker.clone()));
        let metrics = AmqpMetrics::register(registry);
        let (sink, stream) = if role.decides() {
            let sink = AmqpSink::new(
                store.clone(),
                publisher.clone(),
                config.outbox.clone(),
                metrics.clone(),
            );
            let stream = config
                .decisions
                .clone()
                .map(|d| DecisionStream::new(d, store.clone(), sink.clone()));
            (Some(sink), stream)
        } else {
            (None, None)
        };
        Ok(Some(Arc::new(Amqp {
            config: config.clone(),
            role,
            broker,
            publisher,
            metrics,
            sink,
            stream,
            store: store.clone(),
            kill: CancellationToken::new(),
        })))
    }

    /// The topology this replica declares on every connection.
    pub fn topology(&self) -> Topology {
        let mut t = Topology::default();
        if self.role != Role::All {
            t.merge(&partition::topology(&self.config.partitions));
        }
        if self.role.decides() {
            for s in &self.config.sources {
                if let Some(dlx) = s.dead_letter_exchange.as_ref().filter(|_| s.declare) {
                    let dead = format!("{}.dead", s.queue);
                    t.merge(&Topology {
                        exchanges: vec![ExchangeSpec {
                            name: dlx.clone(),
                            kind: ExchangeType::Fanout,
                            declare: true,
                        }],
                        queues: vec![QueueSpec::quorum(&dead)],
                        bindings: vec![BindingSpec {
                            queue: dead,
                            exchange: dlx.clone(),
                            routing_key: String::new(),
                        }],
                    });
                }
            }
            if let Some(d) = &self.config.decisions {
                t.merge(&Topology {
                    exchanges: vec![ExchangeSpec {
                        name: d.exchange.clone(),
                        kind: d.kind,
                        declare: d.declare,
                    }],
                    ..Topology::default()
                });
            }
        }
        t
    }

    /// Declares the topology now when the broker answers; otherwise it is
    /// declared on the first connection.
    pub async fn declare(&self) {
        if let Err(e) = self.broker.add_topology(&self.topology()).await {
            if e.is_transient() {
                tracing::warn!(error = %e, url = %self.broker.settings().url,
                    "AMQP broker not reachable yet: topology declared once connected");
            } else {
                tracing::error!(error = %e, "AMQP topology refused by the broker");
            }
        }
    }

    /// The durability a consumer waits for.
    pub fn durability(&self, audit: &AuditWriter) -> Durability {
        Durability {
            audit: audit.clone(),
            stream: self.stream.clone(),
        }
    }

    /// Starts the consumers of this role: the configured source queues,
    /// and the partitions on a worker. They end on `shutdown` (acking what
    /// they handled) or on [`Amqp::kill`].
    pub fn spawn_consumers(
        self: &Arc<Self>,
        handler: Arc<dyn EventHandler>,
        audit: &AuditWriter,
        ingest: Arc<Ingest>,
        shutdown: &CancellationToken,
    ) -> Vec<JoinHandle<()>> {
        let mut tasks = Vec::new();
        if !self.role.decides() {
            return tasks;
        }
        let ctx = ConsumerContext {
            broker: self.broker.clone(),
            dead_letters: self.publisher.clone(),
            handler,
            durable: self.durability(audit),
            ingest,
            metrics: self.metrics.clone(),
            max_message_bytes: self.config.max_message_bytes,
        };
        let tag = |queue: &str| format!("{} {queue}", self.broker.settings().connection_name);
        for s in &self.config.sources {
            let settings = ConsumerSettings {
                queue: s.queue_spec(),
                prefetch: s.prefetch,
                tag: tag(&s.queue),
            };
            tasks.push(tokio::spawn(source::consume(
                ctx.clone(),
                settings,
                s.format,
                decode::Origin::Outside,
                shutdown.clone(),
                self.kill.clone(),
                None,
            )));
        }
        if self.role == Role::Worker {
            tasks.push(tokio::spawn(assign::run(
                ctx,
                self.config.partitions.clone(),
                self.store.clone(),
                self.broker.settings().connection_name.clone(),
                shutdown.clone(),
                self.kill.clone(),
            )));
        }
        tasks
    }

    /// Keeps the `amqp` readiness check true while the broker answers
    /// (connecting when there is no connection), until `shutdown`.
    pub async fn watch(
        self: Arc<Self>,
        readiness: crate::api::Readiness,
        shutdown: CancellationToken,
    ) {
        let mut was = None;
        loop {
            let ok = tokio::time::timeout(
                self.broker.settings().connect_timeout(),
                self.broker.connection(),
            )
            .await
            .is_ok_and(|c| c.is_ok());
            if was != Some(ok) {
                if ok {
                    tracing::info!("AMQP broker reachable: ready");
                } else {
                    tracing::warn!(url = %self.broker.settings().url, "AMQP broker unreachable: not ready");
                }
                was = Some(ok);
            }
            readiness.set("amqp", ok);
            let pause = if ok { 5 } else { 1 };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(std::time::Duration::from_secs(pause)) => {}
            }
        }
    }

    /// Stops consuming at once without acking anything more, and drops the
    /// connection: every unsettled message goes back to its queue, as when
    /// the process is killed. Tests use it; so does nothing else.
    pub async fn kill(&self) {
        self.kill.cancel();
        // Let the consumers see it before the connection goes, so none
        // reconnects in between.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        self.broker.close().await;
    }
}
