//! Everything `serve` checks before it binds a socket, as one function that
//! `check-config` runs too, so the two can never disagree about a config.
//!
//! [`preflight`] reads and builds what a config names: TLS material, every
//! secret, the notification targets behind the SSRF guard, the firewall
//! clients, the playbooks, the pod inventory, the store and broker
//! settings, the leader backend. It connects to nothing and writes
//! nothing; `serve` then uses what it built instead of building it again.

use std::sync::Arc;

use prometheus_client::registry::Registry;
use riposte_connectors::soar::SoarTarget;
use riposte_firewall::xmlapi::Client as FirewallClient;
use tokio_rustls::TlsAcceptor;

use crate::act::firewall_sync::Firewalls;
use crate::act::notifications::Notifier;
use crate::api::webhooks::Webhooks;
use crate::config::secret::Secret;
use crate::config::{Config, TlsConfig};
use crate::decide::playbook::{Clock, PlaybookRuntime};
use crate::error::EngineError;
use crate::intake::enrich::StaticInventory;
use crate::intake::queues::{Amqp, Role};
use crate::intake::sources::tls;

/// What [`preflight`] built, for `serve` to use.
pub struct Prepared {
    pub parse: riposte_firewall::ParseOptions,
    /// `None` only for a role that runs no playbook and has no directory.
    pub playbooks: Option<Arc<PlaybookRuntime>>,
    /// Playbook files refused at load (`file:line:column: message`): `serve`
    /// runs without them and logs each; `check-config` fails on them.
    pub refused_playbooks: Vec<String>,
    pub syslog_tls: Option<TlsAcceptor>,
    pub http_tls: Option<TlsAcceptor>,
    pub inventory: Option<StaticInventory>,
    pub kube: Option<kube::Client>,
    /// Whether `kube` is the in-cluster service account.
    pub in_cluster: bool,
    /// The configured `api.approval_secret`; unset means the key kept in
    /// the data directory, which `serve` creates on first start.
    pub approval_secret: Option<Secret>,
    pub webhooks: Webhooks,
    pub notify_targets: Vec<SoarTarget>,
    pub firewall_clients: Vec<FirewallClient>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field(
                "playbooks",
                &self.playbooks.as_ref().map_or(0, |r| r.playbooks().len()),
            )
            .field("refused_playbooks", &self.refused_playbooks.len())
            .field("notify_targets", &self.notify_targets.len())
            .field("firewall_clients", &self.firewall_clients.len())
            .finish_non_exhaustive()
    }
}

/// What a replica of `role` does not use: a worker binds no syslog
/// listener and follows no EVE file.
pub fn apply_role(config: &mut Config, role: Role) {
    if role == Role::Worker {
        config.syslog.udp.listen.clear();
        config.syslog.tcp.listen.clear();
        config.syslog.tls.listen.clear();
        config.eve.clear();
    }
}

/// Checks and builds everything `config` (already passed through
/// [`apply_role`]) needs before the service binds its sockets. Metrics of
/// what it builds (playbooks, webhooks) are registered in `registry`.
pub async fn preflight(
    config: &Config,
    role: Role,
    registry: &mut Registry,
) -> Result<Prepared, EngineError> {
    config.validate()?;
    let parse = config.parse_options()?;

    let (playbooks, refused_playbooks) = playbooks(config, role, registry)?;

    let syslog_tls = if config.syslog.tls.listen.is_empty() {
        None
    } else {
        Some(tls::acceptor_for(&config.syslog.tls, tls::SYSLOG_KEYS)?)
    };
    let http_tls = match (&config.http.tls_cert_file, &config.http.tls_key_file) {
        (Some(cert), Some(key)) => Some(tls::acceptor_for(
            &TlsConfig {
                cert_file: Some(cert.clone()),
                key_file: Some(key.clone()),
                client_ca_file: config.http.tls_client_ca_file.clone(),
                ..Default::default()
            },
            tls::HTTP_KEYS,
        )?),
        _ => None,
    };

    let inventory = match &config.pods.inventory_file {
        Some(path) => Some(StaticInventory::load(path)?),
        None => None,
    };

    let kube = config
        .kubernetes
        .client()
        .await
        .map_err(EngineError::rejected("kubernetes"))?;
    let in_cluster = matches!(
        config.kubernetes.cluster_source(),
        Ok(Some(
            riposte_connectors::kubernetes::config::ClusterSource::InCluster
        ))
    );

    let approval_secret = match &config.api.approval_secret {
        Some(source) => Some(Secret::new(
            source
                .load()
                .map_err(EngineError::rejected("api.approval_secret"))?
                .into_bytes(),
        )),
        None => {
            // A key kept from an earlier start is read (never created here):
            // a damaged one stops `serve`, so it fails the check too.
            let kept = config.data_dir.join(crate::act::approvals::SECRET_FILE);
            if kept.exists() {
                crate::act::approvals::data_dir_secret(&config.data_dir)
                    .map_err(EngineError::rejected("api.approval_secret"))?;
            }
            None
        }
    };
    let webhooks = Webhooks::load(&config.api.webhooks, registry)
        .map_err(EngineError::rejected("api.webhooks"))?;
    let notify_targets = Notifier::targets(&config.notify)?;
    let firewall_clients =
        Firewalls::clients(&config.firewall).map_err(EngineError::rejected("firewall.targets"))?;

    crate::store::check_config(&config.store).map_err(EngineError::rejected("store"))?;
    Amqp::broker(config.amqp.as_ref(), role)?;
    if let Some(ca) = config.amqp.as_ref().and_then(|a| a.ca_file.as_ref()) {
        crate::intake::sources::tls::read_certs(ca)
            .map_err(EngineError::rejected("amqp.ca_file"))?;
    }
    if role.decides() {
        let postgres = config.store.url.as_ref().is_some_and(|u| u.is_postgres());
        config
            .leader
            .check_backend(postgres, kube.is_some())
            .map_err(EngineError::rejected("leader"))?;
    }

    Ok(Prepared {
        parse,
        playbooks,
        refused_playbooks,
        syslog_tls,
        http_tls,
        inventory,
        kube,
        in_cluster,
        approval_secret,
        webhooks,
        notify_targets,
        firewall_clients,
    })
}

type Loaded = (Option<Arc<PlaybookRuntime>>, Vec<String>);

/// Compiles the playbook directory. A replica that runs playbooks refuses
/// to start without it: an empty service that says it is ready hides a
/// typo in `playbooks.dir` until the first attack goes unanswered.
fn playbooks(config: &Config, role: Role, registry: &mut Registry) -> Result<Loaded, EngineError> {
    let dir = &config.playbooks.dir;
    if !dir.is_dir() && !role.decides() {
        tracing::info!(dir = %dir.display(), "no playbook directory: this role runs no playbook");
        return Ok((None, Vec::new()));
    }
    let (rt, report) = PlaybookRuntime::load_reporting(&config.playbooks, registry, Clock::Wall)?;
    for e in &report.errors {
        tracing::error!(target: "riposte::playbook", "playbook refused: {e}");
    }
    Ok((Some(Arc::new(rt)), report.errors))
}
