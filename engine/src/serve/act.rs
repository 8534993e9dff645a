//! The act stage: guardrails, the firewall side, approvals and the
//! dispatcher that carries decisions out.

use std::sync::Arc;

use prometheus_client::registry::Registry;
use riposte_firewall::xmlapi::Client as FirewallClient;

use super::context::Context;
use crate::act::approvals::Approvals;
use crate::act::dispatch::ActionDispatcher;
use crate::act::firewall_sync::state::FirewallState;
use crate::act::firewall_sync::{FirewallMetrics, Firewalls};
use crate::act::guardrails::Guardrails;
use crate::api::store::ApiStore;
use crate::config::secret::Secret;
use crate::config::Config;
use crate::decide::decision::Dispatcher;
use crate::error::EngineError;
use crate::store::Store;

/// What the act stage hands the API and the background tasks.
pub(super) struct Act {
    /// Firewalls and EDLs, when `[firewall]` configures any.
    pub firewall: Option<Arc<Firewalls>>,
    pub api_store: Arc<dyn ApiStore>,
    pub approvals: Arc<Approvals>,
    pub dispatcher: Arc<dyn Dispatcher>,
}

impl Act {
    /// `firewall_clients` and `approval_secret` come from the preflight; an
    /// unset secret means the key kept in the data directory.
    pub async fn build(
        ctx: &mut Context,
        firewall_clients: Vec<FirewallClient>,
        approval_secret: Option<Secret>,
    ) -> Result<Act, EngineError> {
        let guardrails = Arc::new(Guardrails::new(ctx.config.guardrails.clone()));
        let firewall =
            start_firewalls(&ctx.config, firewall_clients, &ctx.store, &mut ctx.registry);
        let api_store: Arc<dyn ApiStore> = Arc::new(ctx.store.clone());
        let approval_secret = match approval_secret {
            Some(secret) => secret,
            None => crate::act::approvals::data_dir_secret(&ctx.config.data_dir)
                .map_err(EngineError::rejected("api.approval_secret"))?,
        };
        let approvals = Arc::new(Approvals::new(
            api_store.clone(),
            approval_secret,
            &ctx.config.api.public_url,
        ));
        if let Some(n) = &ctx.notifier {
            n.set_link_signer(approvals.signer().clone());
        }
        strip_stored_link_tokens(&ctx.store).await;
        let dispatcher: Arc<dyn Dispatcher> = Arc::new(
            ActionDispatcher::new(
                ctx.decisions.clone(),
                ctx.kube.clone(),
                guardrails,
                ctx.dispatch_metrics.clone(),
            )
            .with_notifier(ctx.notifier.clone())
            .with_firewall(firewall.clone())
            .with_approvals(approvals.clone())
            .with_amqp(ctx.amqp.as_ref().and_then(|a| a.sink.clone())),
        );
        Ok(Act {
            firewall,
            api_store,
            approvals,
            dispatcher,
        })
    }
}

/// What an older version stored with the link tokens in it.
async fn strip_stored_link_tokens(store: &Store) {
    match store
        .outbox_rewrite_payloads(crate::act::approvals::strip_link_tokens)
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(items = n, "approval link tokens removed from the outbox"),
        Err(e) => tracing::warn!(error = %e, "cannot check the outbox for stored link tokens"),
    }
}

/// The firewall side, when `[firewall]` configures targets or lists;
/// `clients` come from the preflight.
fn start_firewalls(
    config: &Config,
    clients: Vec<FirewallClient>,
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
    let fw = Arc::new(fw);
    let seed = fw.clone();
    tokio::spawn(async move { seed.seed_registrations().await });
    Some(fw)
}
