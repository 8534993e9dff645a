//! The HTTP API: its state, built from every stage's handles, and its
//! server.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::act::Act;
use super::context::Context;
use crate::api::server::ServerSettings;
use crate::api::webhooks::Webhooks;
use crate::api::{ApiMetrics, AppState};
use crate::auth::TokenSet;
use crate::intake::pipeline::Pipeline;
use crate::intake::sources::Ingest;

/// What the API serves besides the context and the act stage.
pub(super) struct Api {
    pub registry: Arc<Registry>,
    pub metrics: ApiMetrics,
    pub webhooks: Webhooks,
    /// The bound listener; no server without one.
    pub listener: Option<TcpListener>,
    pub tls: Option<TlsAcceptor>,
}

/// Spawns the HTTP server into `sources`, which it drains like the other
/// sources.
pub(super) fn spawn(
    ctx: &Context,
    act: &Act,
    api: Api,
    pipeline: &Pipeline,
    sources: &mut JoinSet<()>,
) {
    let config = &ctx.config;
    let state = Arc::new(AppState {
        tokens: TokenSet::new(&config.api.tokens),
        registry: api.registry,
        readiness: ctx.readiness.clone(),
        ingest: Ingest::new(ctx.parse.clone(), ctx.ingest.source("http")),
        pipeline: pipeline.clone(),
        decisions: ctx.decisions.clone(),
        store: ctx.store.clone(),
        notifier: ctx.notifier.clone(),
        max_body_bytes: config.http.max_body_bytes,
        firewall: act.firewall.clone(),
        max_json_depth: config.api.max_json_depth,
        webhooks: api.webhooks,
        api_store: act.api_store.clone(),
        dispatcher: act.dispatcher.clone(),
        playbooks: ctx.playbooks.clone(),
        kube: ctx.kube.clone(),
        approvals: act.approvals.clone(),
        action_wait: Duration::from_millis(config.api.action_wait_ms),
        metrics: api.metrics,
    });
    // Without a listener the state goes now, and its pipeline handle with it.
    let Some(listener) = api.listener else { return };
    let app = crate::api::router(state, &config.http);
    let settings = ServerSettings {
        header_read_timeout: Duration::from_secs(config.http.header_read_timeout_secs.max(1)),
        tls_handshake_timeout: Duration::from_secs(10),
        max_connections: config.http.max_connections,
        grace: Duration::from_secs(config.pipeline.drain_timeout_secs.max(1)),
    };
    sources.spawn(crate::api::server::serve(
        listener,
        app,
        api.tls,
        settings,
        ctx.shutdown.clone(),
    ));
}
