//! The real service, in-process.

use std::path::PathBuf;

use riposte_engine::config::Config;
use riposte_engine::serve::{self, Running};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// A running service and the directory holding its data.
#[derive(Debug)]
pub struct Service {
    pub running: Running,
    pub dir: TempDir,
    pub config: Config,
}

/// A config listening on loopback ports the kernel picks, with its data and
/// an empty playbook directory under `dir`.
pub fn base_config(dir: &std::path::Path) -> anyhow::Result<Config> {
    let mut c = Config::default();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse()?;
    c.data_dir = dir.join("data");
    c.syslog.udp.listen = vec![any];
    c.syslog.tcp.listen = vec![any];
    c.syslog.tcp.idle_timeout_secs = 2;
    c.http.listen = Some(any);
    let playbooks = dir.join("playbooks");
    std::fs::create_dir_all(&playbooks)?;
    c.playbooks.dir = playbooks;
    c.playbooks.watch = false;
    // Never the developer's own cluster: tests opt in to the stand-in.
    c.kubernetes.mode = riposte_connectors::kubernetes::ClusterMode::Off;
    Ok(c)
}

/// Starts the service on [`base_config`] changed by `adjust`.
pub async fn start_with(
    adjust: impl FnOnce(&mut Config, &std::path::Path),
) -> anyhow::Result<Service> {
    start_role_with(riposte_engine::intake::queues::Role::All, adjust).await
}

/// The one-pod inventory (`shop/checkout-7d9f8b6c5-x2k4q` at 10.244.1.17, a
/// Deployment's pod) written into `dir` and set as `[pods] inventory_file`.
pub fn checkout_inventory(c: &mut Config, dir: &std::path::Path) {
    let inventory = dir.join("pods.json");
    let pods = r#"[{"namespace":"shop","name":"checkout-7d9f8b6c5-x2k4q","ips":["10.244.1.17"],
                    "labels":{"app":"checkout"},"owner_kind":"Deployment","owner_name":"checkout"}]"#;
    if let Err(e) = std::fs::write(&inventory, pods) {
        panic!("writing the inventory: {e}");
    }
    c.pods.inventory_file = Some(inventory);
}

/// Starts a replica of `role` on [`base_config`] changed by `adjust`.
pub async fn start_role_with(
    role: riposte_engine::intake::queues::Role,
    adjust: impl FnOnce(&mut Config, &std::path::Path),
) -> anyhow::Result<Service> {
    let dir = tempfile::tempdir()?;
    let mut config = base_config(dir.path())?;
    adjust(&mut config, dir.path());
    config.validate()?;
    let running = serve::start_role(config.clone(), role, CancellationToken::new()).await?;
    Ok(Service {
        running,
        dir,
        config,
    })
}

/// Starts the service on [`base_config`].
pub async fn start() -> anyhow::Result<Service> {
    start_with(|_, _| {}).await
}

/// Points the config at a Kubernetes API stand-in through a kubeconfig file
/// in `dir`.
pub fn use_cluster(
    c: &mut Config,
    dir: &std::path::Path,
    kube: &crate::kube_api::KubeApiServer,
) -> anyhow::Result<()> {
    let path = dir.join("kubeconfig");
    kube.write_kubeconfig(&path)?;
    c.kubernetes.mode = riposte_connectors::kubernetes::ClusterMode::Kubeconfig;
    c.kubernetes.kubeconfig = Some(path);
    Ok(())
}

/// Points the config at a real API server through `kubeconfig` (see
/// [`crate::real_k8s`]).
pub fn use_real_cluster(c: &mut Config, kubeconfig: &std::path::Path) {
    c.kubernetes.mode = riposte_connectors::kubernetes::ClusterMode::Kubeconfig;
    c.kubernetes.kubeconfig = Some(kubeconfig.to_path_buf());
}

/// Writes a playbook file into the config's playbook directory.
pub fn add_playbook(c: &Config, file: &str, text: &str) -> anyhow::Result<()> {
    std::fs::write(c.playbooks.dir.join(file), text)?;
    Ok(())
}

/// Where the repository's shipped playbooks are.
pub fn shipped_playbooks() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../playbooks")
}

impl Service {
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        crate::metrics::value(&self.running.metrics_text(), name, labels)
    }

    pub fn http_url(&self, path: &str) -> String {
        match self.running.http {
            Some(addr) => format!("http://{addr}{path}"),
            None => String::new(),
        }
    }

    /// Stops the service and starts it again on the same config and data
    /// directory, as after a restart of the process.
    pub async fn restart(self) -> anyhow::Result<Service> {
        self.restart_with(|_| {}).await
    }

    /// Stops the service and starts it again on the same data directory
    /// with its config changed by `adjust`, as after a config change rolled
    /// out with a restart.
    pub async fn restart_with(self, adjust: impl FnOnce(&mut Config)) -> anyhow::Result<Service> {
        let Service {
            running,
            dir,
            mut config,
        } = self;
        adjust(&mut config);
        config.validate()?;
        let role = running.role;
        running.shutdown();
        running.wait().await;
        let running = serve::start_role(config.clone(), role, CancellationToken::new()).await?;
        Ok(Service {
            running,
            dir,
            config,
        })
    }

    pub async fn stop(self) {
        self.running.shutdown();
        self.running.wait().await;
    }
}

/// A POST signed as a SOAR signs a Standard Webhooks call: `v1,` and the
/// base64 HMAC-SHA256 of `id.ts.body` under `key`.
pub fn standard_webhook(
    client: &reqwest::Client,
    url: &str,
    key: &[u8],
    id: &str,
    ts: i64,
    body: &str,
) -> reqwest::RequestBuilder {
    use base64::Engine as _;
    let mut mac = riposte_engine::act::approvals::hmac_sha256(key);
    hmac::Mac::update(&mut mac, format!("{id}.{ts}.{body}").as_bytes());
    let sig =
        base64::engine::general_purpose::STANDARD.encode(hmac::Mac::finalize(mac).into_bytes());
    client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", format!("v1,{sig}"))
        .body(body.to_owned())
}
