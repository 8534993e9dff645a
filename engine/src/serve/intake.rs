//! The intake stage: where enrichment finds pods, the pipeline, the
//! listeners and the sources that feed the pipeline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::context::Context;
use crate::config::Config;
use crate::error::EngineError;
use crate::intake::enrich::{Chain, PodResolver, StaticInventory};
use crate::intake::pipeline::{EventHandler, Pipeline, Shards};
use crate::intake::sources::allow::AllowList;
use crate::intake::sources::stream::{self, StreamSettings};
use crate::intake::sources::{eve, udp, Ingest};

/// Where enrichment finds pods: the pod index, then the static inventory.
pub(super) fn pod_resolver(
    ctx: &Context,
    inventory: Option<StaticInventory>,
) -> Option<Arc<dyn PodResolver>> {
    let mut resolvers: Vec<Arc<dyn PodResolver>> = Vec::new();
    if let Some(kube) = &ctx.kube {
        resolvers.push(Arc::new(kube.index().clone()));
    }
    if let (Some(path), Some(inventory)) = (&ctx.config.pods.inventory_file, inventory) {
        tracing::info!(file = %path.display(), addresses = inventory.len(), "pod inventory loaded");
        resolvers.push(Arc::new(inventory));
    }
    match resolvers.len() {
        0 => None,
        1 => resolvers.pop(),
        _ => Some(Arc::new(Chain(resolvers))),
    }
}

/// The pipeline the sources send to, and its shards.
pub(super) fn pipeline(ctx: &Context) -> (Pipeline, Shards) {
    Pipeline::new(
        ctx.config.shard_count(),
        ctx.config.pipeline.queue_capacity,
        ctx.ingest.queued.clone(),
        ctx.ingest.processed.clone(),
    )
}

/// Every listener, bound before anything is spawned so that a bad address
/// fails the start cleanly.
pub(super) struct Listeners {
    udp: Vec<UdpSocket>,
    tcp: Vec<TcpListener>,
    tls: Vec<TcpListener>,
    /// Served by the API stage.
    pub http: Option<TcpListener>,
}

/// The addresses the listeners actually bound (tests ask for port 0).
pub(super) struct Bound {
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
    pub tls: Vec<SocketAddr>,
    pub http: Option<SocketAddr>,
}

impl Listeners {
    pub async fn bind(config: &Config) -> Result<Listeners, EngineError> {
        let mut udp = Vec::new();
        for addr in &config.syslog.udp.listen {
            udp.push(udp::bind(*addr, config.syslog.udp.receive_buffer_bytes)?);
        }
        let mut tcp = Vec::new();
        for addr in &config.syslog.tcp.listen {
            tcp.push(stream::bind(*addr, "syslog TCP").await?);
        }
        let mut tls = Vec::new();
        for addr in &config.syslog.tls.listen {
            tls.push(stream::bind(*addr, "syslog TLS").await?);
        }
        let http = match config.http.listen {
            Some(addr) => {
                Some(
                    TcpListener::bind(addr)
                        .await
                        .map_err(|source| EngineError::Bind {
                            what: "HTTP",
                            addr,
                            source,
                        })?,
                )
            }
            None => None,
        };
        Ok(Listeners {
            udp,
            tcp,
            tls,
            http,
        })
    }

    pub fn bound(&self) -> Result<Bound, EngineError> {
        let local = |r: std::io::Result<SocketAddr>| r.map_err(EngineError::Io);
        Ok(Bound {
            udp: self
                .udp
                .iter()
                .map(|s| local(s.local_addr()))
                .collect::<Result<_, _>>()?,
            tcp: self
                .tcp
                .iter()
                .map(|l| local(l.local_addr()))
                .collect::<Result<_, _>>()?,
            tls: self
                .tls
                .iter()
                .map(|l| local(l.local_addr()))
                .collect::<Result<_, _>>()?,
            http: self
                .http
                .as_ref()
                .map(|l| local(l.local_addr()))
                .transpose()?,
        })
    }
}

/// Spawns the syslog listeners (UDP, TCP, TLS) and the EVE followers; the
/// HTTP listener stays in `listeners` for the API stage.
pub(super) fn spawn_sources(
    ctx: &Context,
    listeners: &mut Listeners,
    tls_acceptor: Option<TlsAcceptor>,
    pipeline: &Pipeline,
) -> JoinSet<()> {
    let config = &ctx.config;
    let mut sources = JoinSet::new();
    let workers = config.shard_count();
    for socket in std::mem::take(&mut listeners.udp) {
        let ingest = Ingest::new(ctx.parse.clone(), ctx.ingest.source("syslog_udp"));
        sources.spawn(udp::serve(
            socket,
            workers,
            AllowList::new(&config.syslog.udp.allowed_sources),
            ingest,
            pipeline.clone(),
            ctx.shutdown.clone(),
        ));
    }
    let tcp_settings = StreamSettings {
        slots: config.syslog.tcp.slot_policy(),
        idle_timeout: Duration::from_secs(config.syslog.tcp.idle_timeout_secs.max(1)),
        handshake_timeout: Duration::from_secs(10),
        max_record_bytes: config.parse.max_record_bytes,
    };
    for listener in std::mem::take(&mut listeners.tcp) {
        let ingest = Ingest::new(ctx.parse.clone(), ctx.ingest.source("syslog_tcp"));
        sources.spawn(stream::serve(
            listener,
            tcp_settings.clone(),
            None,
            AllowList::new(&config.syslog.tcp.allowed_sources),
            ingest,
            pipeline.clone(),
            ctx.shutdown.clone(),
        ));
    }
    let tls_settings = StreamSettings {
        slots: config.syslog.tls.slot_policy(),
        idle_timeout: Duration::from_secs(config.syslog.tls.idle_timeout_secs.max(1)),
        handshake_timeout: Duration::from_secs(config.syslog.tls.handshake_timeout_secs.max(1)),
        max_record_bytes: config.parse.max_record_bytes,
    };
    for listener in std::mem::take(&mut listeners.tls) {
        let ingest = Ingest::new(ctx.parse.clone(), ctx.ingest.source("syslog_tls"));
        sources.spawn(stream::serve(
            listener,
            tls_settings.clone(),
            tls_acceptor.clone(),
            AllowList::new(&config.syslog.tls.allowed_sources),
            ingest,
            pipeline.clone(),
            ctx.shutdown.clone(),
        ));
    }
    spawn_eve(ctx, pipeline, &mut sources);
    sources
}

/// One follower per configured EVE file, sharing one set of metrics.
fn spawn_eve(ctx: &Context, pipeline: &Pipeline, sources: &mut JoinSet<()>) {
    if ctx.config.eve.is_empty() {
        return;
    }
    let ingest = Ingest::new(ctx.parse.clone(), ctx.ingest.source("eve_file"));
    for eve_config in &ctx.config.eve {
        sources.spawn(eve::follow(
            eve_config.clone(),
            ctx.config.data_dir.clone(),
            ingest.clone(),
            pipeline.clone(),
            ctx.shutdown.clone(),
        ));
    }
}

/// The broker's partition consumers, handing their events to `stage`.
pub(super) fn spawn_consumers(
    ctx: &Context,
    stage: &Arc<dyn EventHandler>,
    sources: &mut JoinSet<()>,
) {
    let Some(amqp) = &ctx.amqp else { return };
    let ingest = Ingest::new(ctx.parse.clone(), ctx.ingest.source("amqp"));
    for handle in amqp.spawn_consumers(stage.clone(), &ctx.audit, ingest, &ctx.shutdown) {
        sources.spawn(async move {
            let _ = handle.await;
        });
    }
}
