//! Riposte against the real API server ([`crate::real_k8s`]): the shipped
//! RBAC bound to the `riposte-test` user, the service started on it, and
//! the small reads the tests make.

use std::path::Path;
use std::time::Duration;

use riposte_engine::config::Config;
use serde_json::Value;

use crate::real_k8s::RealCluster;
use crate::service::{self, add_playbook, use_real_cluster, Service};

pub const WAIT: Duration = Duration::from_secs(60);

/// The binary's cluster, with `deploy/rbac/riposte.yaml`'s ClusterRole
/// bound to `riposte-test`: Riposte runs as that user, so a write the
/// shipped RBAC does not allow is a real 403.
pub async fn cluster() -> anyhow::Result<&'static RealCluster> {
    let cluster = tokio::task::spawn_blocking(RealCluster::shared).await??;
    let rbac = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/rbac/riposte.yaml"
    ))?;
    grant_user(cluster, "riposte-test", "riposte", &rbac).await?;
    Ok(cluster)
}

/// Applies the ClusterRoles of `manifests` (their other objects are left
/// out) and binds each to `user` with a binding named `<binding>-<role>`.
pub async fn grant_user(
    cluster: &RealCluster,
    user: &str,
    binding: &str,
    manifests: &str,
) -> anyhow::Result<()> {
    cluster.grant_cluster_roles(user, binding, manifests).await
}

/// Starts Riposte on the cluster as `riposte-test` with `playbooks`
/// (file name, text), changed by `adjust`, and waits until it is ready.
pub async fn start(
    cluster: &RealCluster,
    playbooks: &[(&str, &str)],
    adjust: impl FnOnce(&mut Config, &Path),
) -> anyhow::Result<Service> {
    start_as(&cluster.riposte_kubeconfig(), playbooks, adjust).await
}

/// [`start`] with another kubeconfig.
pub async fn start_as(
    kubeconfig: &Path,
    playbooks: &[(&str, &str)],
    adjust: impl FnOnce(&mut Config, &Path),
) -> anyhow::Result<Service> {
    let mut failure = None;
    let svc = service::start_with(|c, dir| {
        use_real_cluster(c, kubeconfig);
        for (file, text) in playbooks {
            if let Err(e) = add_playbook(c, file, text) {
                failure = Some(e);
            }
        }
        adjust(c, dir);
    })
    .await?;
    if let Some(e) = failure {
        return Err(e);
    }
    wait_ready(&svc).await?;
    Ok(svc)
}

pub async fn wait_ready(svc: &Service) -> anyhow::Result<()> {
    crate::eventually(WAIT, || svc.running.readiness.is_ready().then_some(()))
        .await
        .map_err(|_| anyhow::anyhow!("not ready: {:?}", svc.running.readiness.snapshot()))
}

/// A PAN-OS C2 THREAT log from `src` over syslog TCP.
pub async fn send_c2(svc: &Service, src: &str, seq: u64) -> anyhow::Result<()> {
    let line = crate::lines::with_bsd_header(&crate::lines::c2(src, "203.0.113.66", seq));
    crate::syslog::send_tcp(svc.running.tcp[0], &[line], crate::syslog::Framing::NewLine).await
}

pub fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj["metadata"]["labels"][key].as_str()
}

pub fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj["metadata"]["annotations"][key].as_str()
}
