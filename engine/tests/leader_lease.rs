//! Leader election between two `riposte serve` processes (the real binary)
//! against the real kube-apiserver of `../shared/k8s` (see
//! `riposte_standins::real_k8s`), both running as the `riposte-test` user
//! with the shipped ClusterRole and leader-election Role:
//!
//! - one of them holds the Lease and is the only one doing the leader's
//!   work: a quarantine made by the other replica is released at its expiry
//!   by the leader, never by the replica that made it;
//! - `kill -9` of the leader (no shutdown, the Lease is not given back):
//!   the other takes the Lease once it runs out and releases, on time, a
//!   quarantine the dead leader made.
//!
//! Lives in the engine's tests because only the crate that owns the
//! `riposte` binary gets its path from cargo (`CARGO_BIN_EXE_riposte`).

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use riposte_standins::real_k8s::{eventually_ok, RealCluster};
use serde_json::Value;

const LEASE_SECS: u64 = 4;
const CHECK_MS: u64 = 500;
const WAIT: Duration = Duration::from_secs(60);
const USER: &str = "riposte-test";

/// Quarantines the source pod of a C2 alert for 10 s: long enough to
/// outlive the leader's death and the Lease's running out.
const PLAYBOOK: &str = r#"// name: quick-quarantine
// description: quarantine the source pod of a C2 alert, briefly (tests)
// trigger: threat.type = spyware, severity >= high
// mode: enforce
let pod = event.source.pod;
if pod != () {
    quarantine(pod, #{ ttl: "10s", reason: `C2 traffic to ${event.destination.ip}` });
}
"#;

fn free_port() -> anyhow::Result<u16> {
    riposte_standins::ports::free_port()
}

/// One `riposte serve` process, killed (SIGKILL) when dropped.
struct Replica {
    id: &'static str,
    child: Child,
    http: reqwest::Client,
    url: String,
    syslog: SocketAddr,
    log: PathBuf,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Replica {
    fn start(
        id: &'static str,
        root: &Path,
        kubeconfig: &Path,
        lease_ns: &str,
        playbook: &str,
    ) -> anyhow::Result<Replica> {
        let dir = root.join(id);
        let playbooks = dir.join("playbooks");
        std::fs::create_dir_all(&playbooks)?;
        std::fs::write(playbooks.join("quick.rhai"), playbook)?;
        let (http, tcp) = (free_port()?, free_port()?);
        let config = dir.join("riposte.toml");
        std::fs::write(
            &config,
            format!(
                r#"data_dir = "{d}/data"
[log]
level = "info"
[syslog.udp]
listen = []
[syslog.tcp]
listen = ["127.0.0.1:{tcp}"]
[http]
listen = "127.0.0.1:{http}"
[playbooks]
dir = "{d}/playbooks"
watch = false
[kubernetes]
mode = "kubeconfig"
kubeconfig = "{kc}"
[leader]
backend = "kubernetes"
lease_name = "riposte-leader"
lease_namespace = "{lease_ns}"
identity = "{id}"
lease_duration_secs = {LEASE_SECS}
check_interval_ms = {CHECK_MS}
"#,
                d = dir.display(),
                kc = kubeconfig.display(),
            ),
        )?;
        let log = dir.join("riposte.log");
        let out = File::create(&log)?;
        let child = Command::new(env!("CARGO_BIN_EXE_riposte"))
            .args(["serve", "--config"])
            .arg(&config)
            .env_remove("HOSTNAME")
            .env_remove("POD_NAMESPACE")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        Ok(Replica {
            id,
            child,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
            url: format!("http://127.0.0.1:{http}"),
            syslog: format!("127.0.0.1:{tcp}").parse()?,
            log,
        })
    }

    async fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let r = self.http.get(format!("{}{path}", self.url)).send().await?;
        Ok((r.status().as_u16(), r.text().await?))
    }

    async fn ready(&self) -> anyhow::Result<()> {
        match self.get("/readyz").await? {
            (200, _) => Ok(()),
            (code, body) => anyhow::bail!("{}: /readyz {code} {body}", self.id),
        }
    }

    /// A series of `/metrics`, 0 when absent or unreadable.
    async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        match self.get("/metrics").await {
            Ok((200, text)) => riposte_standins::metrics::value(&text, name, labels),
            _ => 0.0,
        }
    }

    async fn leads(&self) -> bool {
        self.metric("riposte_leader", &[]).await == 1.0
    }

    async fn applied(&self, action: &str) -> f64 {
        self.metric(
            "riposte_actions_total",
            &[("action", action), ("status", "applied")],
        )
        .await
    }

    /// A PAN-OS C2 THREAT log from `src` over syslog TCP.
    async fn send_c2(&self, src: &str, seq: u64) -> anyhow::Result<()> {
        let line = riposte_standins::lines::with_bsd_header(&riposte_standins::lines::c2(
            src,
            "203.0.113.66",
            seq,
        ));
        riposte_standins::syslog::send_tcp(
            self.syslog,
            &[line],
            riposte_standins::syslog::Framing::NewLine,
        )
        .await
    }

    /// SIGKILL: no shutdown, the Lease stays held until it runs out.
    fn kill9(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(30);
        format!("--- {} log ---\n{}", self.id, lines[from..].join("\n"))
    }
}

async fn lease_holder(cluster: &RealCluster, ns: &str) -> anyhow::Result<String> {
    let lease = cluster
        .get::<Lease>(ns, "riposte-leader")
        .await?
        .ok_or_else(|| anyhow::anyhow!("no Lease in {ns}"))?;
    Ok(lease["spec"]["holderIdentity"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

async fn quarantine_label(cluster: &RealCluster, ns: &str, name: &str) -> anyhow::Result<bool> {
    let p: Value = cluster
        .get::<Pod>(ns, name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("pod {ns}/{name} is gone"))?;
    Ok(p["metadata"]["labels"]["riposte.io/quarantine"] == "true")
}

async fn wait_for(
    what: &str,
    replicas: &[&Replica],
    check: impl AsyncFnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    wait_within(WAIT, what, replicas, check).await
}

async fn wait_within(
    timeout: Duration,
    what: &str,
    replicas: &[&Replica],
    mut check: impl AsyncFnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = check().await;
        if matches!(last, Ok(true)) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let logs: Vec<String> = replicas.iter().map(|r| r.log_tail()).collect();
            anyhow::bail!(
                "{what}: not within {timeout:?} (last: {last:?})\n{}",
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_elect_one_leader_by_lease_and_the_other_takes_over_after_kill_9(
) -> anyhow::Result<()> {
    let cluster = tokio::task::spawn_blocking(RealCluster::shared).await??;
    let rbac = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/rbac/riposte.yaml"
    ))?;
    cluster.grant_cluster_roles(USER, "riposte", &rbac).await?;
    let lease_ns = cluster.namespace("riposte", &[]).await?;
    cluster.grant_leader_election(&lease_ns, USER).await?;
    let shop = cluster.namespace("shop", &[]).await?;
    let ips = cluster.ip_block();
    for (name, n) in [("web-1", 1), ("web-2", 2)] {
        cluster
            .pod(&shop, name, &[("app", name)], &ips.ip(n))
            .await?;
    }

    let root = tempfile::tempdir()?;
    let kubeconfig = cluster.riposte_kubeconfig();
    let mut a = Replica::start("replica-a", root.path(), &kubeconfig, &lease_ns, PLAYBOOK)?;
    wait_for("replica-a ready and leading", &[&a], async || {
        Ok(a.ready().await.is_ok() && a.leads().await)
    })
    .await?;
    let b = Replica::start("replica-b", root.path(), &kubeconfig, &lease_ns, PLAYBOOK)?;
    wait_for("replica-b ready", &[&a, &b], async || {
        Ok(b.ready().await.is_ok())
    })
    .await?;

    // Two lease periods with both running: one leader all along, the first,
    // and it is the Lease's holder.
    let hold = Instant::now() + Duration::from_secs(2 * LEASE_SECS);
    while Instant::now() < hold {
        let (la, lb) = (a.leads().await, b.leads().await);
        assert!(la && !lb, "a leads {la}, b leads {lb}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(lease_holder(cluster, &lease_ns).await?, "replica-a");

    // Any replica acts on the events it receives, but expiries are the
    // leader's: the follower quarantines web-1, the leader releases it.
    b.send_c2(&ips.ip(1), 1).await?;
    wait_for("replica-b quarantined web-1", &[&a, &b], async || {
        Ok(b.applied("quarantine").await == 1.0
            && quarantine_label(cluster, &shop, "web-1").await?)
    })
    .await?;
    wait_for("web-1 released at its expiry", &[&a, &b], async || {
        Ok(!quarantine_label(cluster, &shop, "web-1").await?)
    })
    .await?;
    wait_for("replica-a counted the release", &[&a, &b], async || {
        Ok(a.applied("release").await == 1.0)
    })
    .await?;
    assert_eq!(b.applied("release").await, 0.0, "the follower released");
    assert_eq!(a.applied("quarantine").await, 0.0, "the leader quarantined");

    // The leader quarantines web-2, then dies without a word.
    a.send_c2(&ips.ip(2), 2).await?;
    wait_for("replica-a quarantined web-2", &[&a, &b], async || {
        quarantine_label(cluster, &shop, "web-2").await
    })
    .await?;
    a.kill9()?;
    let killed = Instant::now();
    // The Lease was renewed at most one check interval before the kill: it
    // runs out a lease duration later, and the survivor sees that at its
    // next check. A second more for a loaded machine.
    let within = Duration::from_secs(LEASE_SECS) + 2 * Duration::from_millis(CHECK_MS);
    wait_within(
        within + Duration::from_secs(1),
        "replica-b took the Lease",
        &[&a, &b],
        async || Ok(lease_holder(cluster, &lease_ns).await? == "replica-b" && b.leads().await),
    )
    .await?;
    println!(
        "kill -9 of the leader -> the other replica holds the Lease: {:.2} s (lease {LEASE_SECS} s, check {CHECK_MS} ms)",
        killed.elapsed().as_secs_f64()
    );
    // The new leader does the leader's work: the dead leader's quarantine
    // is released at its expiry.
    wait_for("web-2 released by the new leader", &[&a, &b], async || {
        Ok(!quarantine_label(cluster, &shop, "web-2").await? && b.applied("release").await == 1.0)
    })
    .await?;
    eventually_ok(WAIT, || async {
        match cluster
            .get::<k8s_openapi::api::networking::v1::NetworkPolicy>(&shop, "riposte-quarantine")
            .await?
        {
            None => Ok(()),
            Some(_) => anyhow::bail!("the deny-all policy outlived the last quarantine"),
        }
    })
    .await?;
    drop(b);
    Ok(())
}
