//! The real Kubernetes API server of `../shared/k8s` (kube-apiserver and
//! kube-controller-manager v1.28.1 on a loopback etcd), one per test binary.
//!
//! [`RealCluster::shared`] starts it on first use, on a free loopback port,
//! in its own directory under the target dir (`target/real-k8s/<binary>`),
//! and every test of the binary shares it: each test makes its own
//! namespaces ([`RealCluster::namespace`]) and its own pod addresses
//! ([`RealCluster::ip_block`]), so tests never see each other's objects or
//! answers even though one Riposte watches the whole cluster.
//!
//! Nothing outlives the test binary: a watchdog started beside the server
//! (its own session, so a Ctrl-C of the test run does not kill it first)
//! runs `stop-apiserver` as soon as the test process is gone, whatever the
//! way it ended (exit, panic, abort, SIGKILL). A leftover from a run whose
//! watchdog was itself killed is stopped by pid file at the next start.
//!
//! What a real server cannot be made to do on demand (outages of a chosen
//! length, 429 with Retry-After, injected 500s, slow answers) stays with the
//! stand-in in [`crate::kube_api`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde_json::{json, Value};

use crate::ports::{free_port, listen_port};
pub use crate::proxy::TcpProxy;

/// Where the start and stop scripts are: `$RIPOSTE_K8S_DIR`, else
/// `../shared/k8s` beside the repository.
pub fn scripts_dir() -> PathBuf {
    match std::env::var_os("RIPOSTE_K8S_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/k8s"),
    }
}

/// A running control plane shared by the tests of one binary.
#[derive(Debug)]
pub struct RealCluster {
    dir: PathBuf,
    port: u16,
    /// Serialises restarts (tests that restart the server live in their own
    /// binary, but two of them may still run at once).
    restart: Mutex<()>,
}

static SHARED: OnceLock<Result<RealCluster, String>> = OnceLock::new();
static NEXT_BLOCK: AtomicU32 = AtomicU32::new(0);

impl RealCluster {
    /// The binary's cluster, started on first call (about 4 to 8 s).
    pub fn shared() -> anyhow::Result<&'static RealCluster> {
        match SHARED.get_or_init(|| RealCluster::start().map_err(|e| format!("{e:#}"))) {
            Ok(c) => Ok(c),
            Err(e) => Err(anyhow!("the real Kubernetes API server did not start: {e}")),
        }
    }

    fn start() -> anyhow::Result<RealCluster> {
        let scripts = scripts_dir();
        if !scripts.join("start-apiserver").is_file() {
            bail!(
                "{} has no start-apiserver: the real-cluster tests need the local Kubernetes \
                 API server of ../shared/k8s beside the repository (or RIPOSTE_K8S_DIR set to \
                 its folder); see that folder's README.md",
                scripts.display()
            );
        }
        let dir = own_dir()?;
        std::fs::create_dir_all(&dir)?;
        // A previous run whose watchdog did not get to stop it.
        stop_script(&scripts, &dir)?;
        // Each run starts from an empty cluster; binaries, keys and tokens
        // are kept (decompressing the binaries is half the start-up).
        match std::fs::remove_dir_all(dir.join("etcd")) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).context("removing the previous run's etcd data"),
        }
        let port = free_port()?;
        let cluster = RealCluster {
            dir,
            port,
            restart: Mutex::new(()),
        };
        cluster.run_start()?;
        cluster.spawn_watchdog()?;
        Ok(cluster)
    }

    /// Runs the start script, with etcd on ports this process picked (see
    /// [`crate::ports::listen_port`]). A start that loses a port anyway
    /// (another test binary's server took it between the check and etcd's
    /// bind) is tried again on fresh etcd ports.
    fn run_start(&self) -> anyhow::Result<()> {
        let ports = self.dir.join("etcd.ports");
        let mut failures = Vec::new();
        for attempt in 0..START_ATTEMPTS {
            // A restart keeps etcd's ports while they are free; a first start
            // or a retry picks new ones rather than the script's own pick.
            if attempt > 0 || !ports_are_ours(&ports) {
                let client = listen_port(&[self.port])?;
                let peer = listen_port(&[self.port, client])?;
                std::fs::write(&ports, format!("{client} {peer}\n"))
                    .context("writing etcd.ports")?;
            }
            let out = Command::new(scripts_dir().join("start-apiserver"))
                .arg(&self.dir)
                .arg(self.port.to_string())
                .stdin(Stdio::null())
                .output()
                .context("running start-apiserver")?;
            if out.status.success() {
                return Ok(());
            }
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            let retry = stderr.contains("address already in use");
            failures.push(format!(
                "start-apiserver {} {} failed ({}):\n{stderr}",
                self.dir.display(),
                self.port,
                out.status,
            ));
            if !retry {
                break;
            }
            // Whatever the failed start left running goes before the next.
            stop_script(&scripts_dir(), &self.dir)?;
        }
        bail!("{}", failures.join("\n--- tried again ---\n"))
    }

    /// Stops the server when this process is gone. Its own session keeps it
    /// out of the terminal's process group, so it outlives a Ctrl-C of the
    /// test run long enough to clean up after it.
    fn spawn_watchdog(&self) -> anyhow::Result<()> {
        let script = "while kill -0 \"$0\" 2>/dev/null; do sleep 0.5; done; exec \"$1\" \"$2\"";
        Command::new("setsid")
            .arg("sh")
            .arg("-c")
            .arg(script)
            .arg(std::process::id().to_string())
            .arg(scripts_dir().join("stop-apiserver"))
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the API server's watchdog")?;
        Ok(())
    }

    /// The start script's directory: logs, pid files, tokens, kubeconfigs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kubeconfig of `admin` (group `system:masters`).
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// Kubeconfig of `riposte-test`, a user with no groups: only what RBAC
    /// grants it.
    pub fn riposte_kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig-riposte")
    }

    /// A client as admin. Made per call: a kube client belongs to the tokio
    /// runtime it was made on, and every test has its own.
    pub async fn admin(&self) -> anyhow::Result<Client> {
        client_from(&self.admin_kubeconfig()).await
    }

    /// A fresh namespace `<prefix>-<random>` with `labels`.
    pub async fn namespace(&self, prefix: &str, labels: &[(&str, &str)]) -> anyhow::Result<String> {
        let name = format!("{prefix}-{:08x}", rand::random::<u32>());
        let mut l: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        l.insert("riposte.test/real-k8s".into(), "true".into());
        let ns: Namespace = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": l}
        }))?;
        Api::<Namespace>::all(self.admin().await?)
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        Ok(name)
    }

    /// Pod addresses no other test of this binary uses: `10.X.Y.n`.
    pub fn ip_block(&self) -> IpBlock {
        let n = NEXT_BLOCK.fetch_add(1, Ordering::Relaxed);
        IpBlock {
            a: 100 + (n / 256) % 150,
            b: n % 256,
        }
    }

    /// Creates a pod (one `app` container, `labels`) and makes it look
    /// running at `ip`: nothing runs pods here, so the test sets the status
    /// a kubelet would.
    pub async fn pod(
        &self,
        ns: &str,
        name: &str,
        labels: &[(&str, &str)],
        ip: &str,
    ) -> anyhow::Result<Pod> {
        let pod: Pod = serde_json::from_value(pod_json(ns, name, labels))?;
        let api = Api::<Pod>::namespaced(self.admin().await?, ns);
        api.create(&PostParams::default(), &pod)
            .await
            .with_context(|| format!("creating pod {ns}/{name}"))?;
        self.set_pod_ip(ns, name, ip).await
    }

    /// Sets a pod's status as a kubelet would: Running, Ready, at `ip`.
    pub async fn set_pod_ip(&self, ns: &str, name: &str, ip: &str) -> anyhow::Result<Pod> {
        let api = Api::<Pod>::namespaced(self.admin().await?, ns);
        let status = json!({"status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True"}],
        }});
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
            .await
            .with_context(|| format!("setting the status of pod {ns}/{name}"))
    }

    /// Waits until the pods selected by `selector` in `ns` number `count`,
    /// then gives the ones without an address the next addresses of `ips`
    /// (in name order). Returns the pods' names by address.
    pub async fn run_pods(
        &self,
        ns: &str,
        selector: &str,
        count: usize,
        ips: &mut dyn Iterator<Item = String>,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let api = Api::<Pod>::namespaced(self.admin().await?, ns);
        let lp = ListParams::default().labels(selector);
        let pods = eventually_ok(Duration::from_secs(30), || async {
            let pods = api.list(&lp).await?.items;
            let live: Vec<Pod> = pods
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .collect();
            if live.len() == count {
                Ok(live)
            } else {
                bail!("{} of {count} pods for {selector} in {ns}", live.len())
            }
        })
        .await?;
        let mut by_ip = BTreeMap::new();
        let mut names: Vec<(String, Option<String>)> = pods
            .iter()
            .map(|p| {
                let ip = p.status.as_ref().and_then(|s| s.pod_ip.clone());
                (p.metadata.name.clone().unwrap_or_default(), ip)
            })
            .collect();
        names.sort();
        for (name, ip) in names {
            let ip = match ip {
                Some(ip) => ip,
                None => {
                    let ip = ips.next().ok_or_else(|| anyhow!("out of addresses"))?;
                    self.set_pod_ip(ns, &name, &ip).await?;
                    ip
                }
            };
            by_ip.insert(ip, name);
        }
        Ok(by_ip)
    }

    /// A Deployment of `replicas` pods labelled `labels` (its selector): the
    /// controller manager makes the ReplicaSet and the pods; this waits for
    /// them and gives them addresses from `ips`. Returns pod names by address.
    pub async fn deployment(
        &self,
        ns: &str,
        name: &str,
        labels: &[(&str, &str)],
        replicas: usize,
        ips: &mut dyn Iterator<Item = String>,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let l: BTreeMap<&str, &str> = labels.iter().copied().collect();
        let d = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": l},
                "template": {
                    "metadata": {"labels": l},
                    "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
                },
            },
        });
        self.apply_yaml(&d.to_string(), false).await?;
        let selector: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.run_pods(ns, &selector.join(","), replicas, ips).await
    }

    /// An object as JSON (`None` when absent), for any resource type.
    pub async fn get<K>(&self, ns: &str, name: &str) -> anyhow::Result<Option<Value>>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
        <K as Resource>::DynamicType: Default,
    {
        let api = Api::<K>::namespaced(self.admin().await?, ns);
        match api.get_opt(name).await? {
            Some(o) => Ok(Some(serde_json::to_value(o)?)),
            None => Ok(None),
        }
    }

    /// The objects of a namespace as JSON.
    pub async fn list<K>(&self, ns: &str) -> anyhow::Result<Vec<Value>>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
        <K as Resource>::DynamicType: Default,
    {
        let api = Api::<K>::namespaced(self.admin().await?, ns);
        let items = api.list(&ListParams::default()).await?.items;
        items
            .into_iter()
            .map(|o| serde_json::to_value(o).map_err(anyhow::Error::from))
            .collect()
    }

    /// Deletes an object now (grace period 0: no kubelet will confirm).
    pub async fn delete<K>(&self, ns: &str, name: &str) -> anyhow::Result<()>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        <K as Resource>::DynamicType: Default,
    {
        let api = Api::<K>::namespaced(self.admin().await?, ns);
        api.delete(name, &DeleteParams::default().grace_period(0))
            .await
            .with_context(|| format!("deleting {ns}/{name}"))?;
        Ok(())
    }

    /// Applies YAML documents (`---` separated) as admin with server-side
    /// apply under field manager `test`; `dry_run` asks the server to check
    /// them without storing anything.
    pub async fn apply_yaml(&self, yaml: &str, dry_run: bool) -> anyhow::Result<Vec<Value>> {
        crate::real_k8s_apply::apply_yaml(&self.admin().await?, yaml, dry_run).await
    }

    /// Applies the ClusterRoles of `manifests` (their other objects are
    /// left out) and binds each to `user` with a binding named
    /// `<binding>-<role>`.
    pub async fn grant_cluster_roles(
        &self,
        user: &str,
        binding: &str,
        manifests: &str,
    ) -> anyhow::Result<()> {
        let mut docs = Vec::new();
        for doc in serde_yaml::Deserializer::from_str(manifests) {
            let v = <Value as serde::Deserialize>::deserialize(doc)?;
            if v["kind"] != "ClusterRole" {
                continue;
            }
            let role = v["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            docs.push(v.to_string());
            docs.push(
                json!({
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRoleBinding",
                    "metadata": {"name": format!("{binding}-{role}")},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
                })
                .to_string(),
            );
        }
        self.apply_yaml(&docs.join("\n---\n"), false).await?;
        Ok(())
    }

    /// The shipped leader-election Role (`deploy/rbac/leader-election.yaml`)
    /// in namespace `ns`, bound to `user`.
    pub async fn grant_leader_election(&self, ns: &str, user: &str) -> anyhow::Result<()> {
        let shipped = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/rbac/leader-election.yaml"
        ))?;
        let role = shipped
            .split("\n---\n")
            .next()
            .unwrap_or_default()
            .replace("namespace: riposte", &format!("namespace: {ns}"));
        let binding = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "riposte-leader-election", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "riposte-leader-election"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        });
        self.apply_yaml(&format!("{role}\n---\n{binding}"), false)
            .await?;
        Ok(())
    }

    /// A kubeconfig, written to `dest`, for a ServiceAccount `ns/name`
    /// (created when missing) with a token from the TokenRequest API.
    pub async fn service_account_kubeconfig(
        &self,
        ns: &str,
        name: &str,
        dest: &Path,
    ) -> anyhow::Result<PathBuf> {
        crate::real_k8s_apply::service_account_kubeconfig(self, ns, name, dest).await
    }

    /// Stops and starts the whole control plane (etcd included) on the same
    /// directory and port: data is kept, every watch is cut.
    pub fn restart(&self) -> anyhow::Result<()> {
        let _one = self
            .restart
            .lock()
            .map_err(|_| anyhow!("restart lock poisoned"))?;
        self.stop_now()?;
        self.run_start()
    }

    /// Stops the control plane (it stays stopped until [`Self::start_again`]).
    pub fn stop_now(&self) -> anyhow::Result<()> {
        stop_script(&scripts_dir(), &self.dir)
    }

    /// Starts the control plane again after [`Self::stop_now`].
    pub fn start_again(&self) -> anyhow::Result<()> {
        self.run_start()
    }

    /// etcd's client URL (the start script records its ports).
    pub fn etcd_url(&self) -> anyhow::Result<String> {
        let ports = std::fs::read_to_string(self.dir.join("etcd.ports"))?;
        let client = ports
            .split_whitespace()
            .next()
            .ok_or_else(|| anyhow!("etcd.ports is empty"))?;
        Ok(format!("http://127.0.0.1:{client}"))
    }

    /// Compacts etcd's history up to its current revision, so watches that
    /// resume from an older resource version get `410 Gone`. Uses etcd's
    /// gRPC gateway (Debian's etcd-server ships no etcdctl). Returns the
    /// revision compacted to.
    pub async fn compact_etcd(&self) -> anyhow::Result<u64> {
        let url = self.etcd_url()?;
        let http = reqwest_client()?;
        let head: Value = http
            .post(format!("{url}/v3/kv/range"))
            .body(r#"{"key":"AA=="}"#)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let rev: u64 = head["header"]["revision"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| anyhow!("no revision in etcd's answer: {head}"))?;
        http.post(format!("{url}/v3/kv/compaction"))
            .body(json!({"revision": rev.to_string(), "physical": true}).to_string())
            .send()
            .await?
            .error_for_status()
            .context("etcd compaction")?;
        Ok(rev)
    }
}

/// A /24 of pod addresses of one test.
#[derive(Debug, Clone, Copy)]
pub struct IpBlock {
    a: u32,
    b: u32,
}

impl IpBlock {
    /// The `n`th address (1 to 254).
    pub fn ip(&self, n: u8) -> String {
        format!("10.{}.{}.{n}", self.a, self.b)
    }

    /// Addresses `from..=254`, for [`RealCluster::run_pods`].
    pub fn from(&self, from: u8) -> impl Iterator<Item = String> + '_ {
        (from..=254).map(move |n| self.ip(n))
    }
}

/// A pod manifest with one container and `labels`.
pub fn pod_json(ns: &str, name: &str, labels: &[(&str, &str)]) -> Value {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    json!({
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
    })
}

/// Reads a kubeconfig file into a client.
pub async fn client_from(kubeconfig: &Path) -> anyhow::Result<Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    Ok(Client::try_from(cfg)?)
}

/// Retries `check` until it returns `Ok`, or returns its last error after
/// `timeout`.
pub async fn eventually_ok<T, E, F, Fut>(timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: Into<anyhow::Error>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return Ok(v),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(e.into().context(format!("still failing after {timeout:?}")))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn reqwest_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?)
}

/// `target/real-k8s/<test binary name without its hash>`.
fn own_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let stem = exe
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| anyhow!("test binary without a name"))?;
    let name = match stem.rsplit_once('-') {
        Some((n, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => n,
        _ => stem,
    };
    // target/<profile>/deps/<binary>: three levels up is the target dir.
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    Ok(target.join("real-k8s").join(name))
}

fn stop_script(scripts: &Path, dir: &Path) -> anyhow::Result<()> {
    let out = Command::new(scripts.join("stop-apiserver"))
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .context("running stop-apiserver")?;
    if !out.status.success() {
        bail!(
            "stop-apiserver {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// How often a start that lost a port to someone else is tried.
const START_ATTEMPTS: usize = 3;

/// Whether `etcd.ports` names two ports of [`crate::ports::PORTS`] (a file
/// from an older run, or from the script's own pick, may not).
fn ports_are_ours(file: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(file) else {
        return false;
    };
    let ports: Vec<u16> = text
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    ports.len() == 2 && ports.iter().all(|p| crate::ports::PORTS.contains(p))
}

/// `kubeconfig` (which names the server at `127.0.0.1:port`) rewritten to
/// reach it through `proxy`, written to `dest`.
pub fn kubeconfig_through(
    proxy: &TcpProxy,
    kubeconfig: &Path,
    port: u16,
    dest: &Path,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(kubeconfig)?.replace(
        &format!("https://127.0.0.1:{port}"),
        &format!("https://{}", proxy.addr),
    );
    std::fs::write(dest, text)?;
    Ok(())
}
