//! The pod index against the real API server: hundreds of pods created and
//! deleted with their addresses reused, every lookup checked; then cut off
//! while pods churn, etcd is compacted and the API server (etcd with it)
//! restarts, so the watch resumes from a resource version the server no
//! longer has and gets a real `410 Gone`: the index re-lists and answers
//! every address right again.
//!
//! This binary restarts its API server, so its tests run one after the
//! other inside one test function.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use riposte_connectors::kubernetes::{ClusterMode, KubernetesConfig, PodIndex};
use riposte_tests::real_cluster;
use riposte_tests::real_k8s::{self, eventually_ok, IpBlock, RealCluster, TcpProxy};

/// What every address should resolve to: a pod's name, or nothing.
type Expected = BTreeMap<IpAddr, Option<String>>;

async fn create_pods(
    cluster: &RealCluster,
    ns: &str,
    pods: &[(String, String)],
) -> anyhow::Result<()> {
    let results: Vec<anyhow::Result<Pod>> = futures::stream::iter(pods.iter())
        .map(|(name, ip)| async move { cluster.pod(ns, name, &[("app", "churn")], ip).await })
        .buffer_unordered(8)
        .collect()
        .await;
    results.into_iter().try_for_each(|r| r.map(|_| ()))
}

async fn delete_pods(cluster: &RealCluster, ns: &str, names: &[String]) -> anyhow::Result<()> {
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(names.iter())
        .map(|name| async move { cluster.delete::<Pod>(ns, name).await })
        .buffer_unordered(8)
        .collect()
        .await;
    results.into_iter().collect()
}

/// The addresses whose answer is wrong, with what the index said.
fn wrong_answers(index: &PodIndex, ns: &str, expected: &Expected) -> Vec<String> {
    expected
        .iter()
        .filter_map(|(ip, want)| {
            let got = index.resolve(*ip);
            let got_name = got
                .as_ref()
                .filter(|p| p.namespace == ns)
                .map(|p| p.name.clone());
            (got_name != *want || (got.is_some() && want.is_none()))
                .then(|| format!("{ip}: want {want:?}, index says {got_name:?}"))
        })
        .collect()
}

async fn all_answers_right(index: &PodIndex, ns: &str, expected: &Expected) -> anyhow::Result<()> {
    eventually_ok(Duration::from_secs(90), || async {
        let wrong = wrong_answers(index, ns, expected);
        if wrong.is_empty() {
            Ok(())
        } else {
            anyhow::bail!(
                "{} wrong answers, e.g. {:?}; index {:?}",
                wrong.len(),
                &wrong[..wrong.len().min(5)],
                index.status()
            )
        }
    })
    .await
}

/// `count` pods named `<prefix>-<n>` at addresses `from`.. of `blocks`.
fn batch(prefix: &str, blocks: &[IpBlock], from: usize, count: usize) -> Vec<(String, String)> {
    (from..from + count)
        .map(|n| {
            let block = blocks[n / 200];
            (format!("{prefix}-{n}"), block.ip((n % 200) as u8 + 1))
        })
        .collect()
}

fn expect(expected: &mut Expected, pods: &[(String, String)]) -> anyhow::Result<()> {
    for (name, ip) in pods {
        expected.insert(ip.parse()?, Some(name.clone()));
    }
    Ok(())
}

fn expect_gone(expected: &mut Expected, pods: &[(String, String)]) -> anyhow::Result<()> {
    for (_, ip) in pods {
        expected.insert(ip.parse()?, None);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pod_index_stays_right_under_churn_compaction_and_an_api_server_restart(
) -> anyhow::Result<()> {
    let cluster = real_cluster::cluster().await?;
    let ns = cluster.namespace("churn", &[]).await?;
    let blocks = [cluster.ip_block(), cluster.ip_block()];
    let proxy = TcpProxy::start(format!("127.0.0.1:{}", cluster.port())).await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    real_k8s::kubeconfig_through(
        &proxy,
        &cluster.riposte_kubeconfig(),
        cluster.port(),
        &kubeconfig,
    )?;
    let config = KubernetesConfig {
        mode: ClusterMode::Kubeconfig,
        kubeconfig: Some(kubeconfig),
        ..KubernetesConfig::default()
    };
    let client = config
        .client()
        .await?
        .ok_or_else(|| anyhow::anyhow!("no client"))?;
    let index = PodIndex::spawn(client, &config);
    tokio::time::timeout(Duration::from_secs(30), index.ready()).await?;

    // Churn: 300 pods, 150 deleted, 150 new ones of which 100 take the
    // deleted pods' addresses.
    let t0 = std::time::Instant::now();
    let mut expected = Expected::new();
    let first = batch("a", &blocks, 0, 300);
    create_pods(cluster, &ns, &first).await?;
    expect(&mut expected, &first)?;
    all_answers_right(&index, &ns, &expected).await?;
    eprintln!("{:?} 300 pods created and resolved", t0.elapsed());
    let doomed: Vec<String> = first[..150].iter().map(|(n, _)| n.clone()).collect();
    delete_pods(cluster, &ns, &doomed).await?;
    expect_gone(&mut expected, &first[..150])?;
    let reused: Vec<(String, String)> = first[..100]
        .iter()
        .map(|(n, ip)| (format!("re-{n}"), ip.clone()))
        .collect();
    let fresh = batch("b", &blocks, 300, 50);
    create_pods(cluster, &ns, &reused).await?;
    create_pods(cluster, &ns, &fresh).await?;
    expect(&mut expected, &reused)?;
    expect(&mut expected, &fresh)?;
    all_answers_right(&index, &ns, &expected).await?;

    eprintln!("{:?} churned and resolved", t0.elapsed());
    // Cut off: pods change while the index cannot see it, etcd forgets the
    // history and the API server restarts with an empty watch cache.
    proxy.down();
    let errors_before = index.status().watch_errors;
    let gone: Vec<String> = reused[..50].iter().map(|(n, _)| n.clone()).collect();
    delete_pods(cluster, &ns, &gone).await?;
    expect_gone(&mut expected, &reused[..50])?;
    let moved: Vec<(String, String)> = reused[..25]
        .iter()
        .map(|(n, ip)| (format!("moved-{n}"), ip.clone()))
        .collect();
    create_pods(cluster, &ns, &moved).await?;
    expect(&mut expected, &moved)?;
    // A surviving pod changes address (a new sandbox after a restart).
    let (name, old_ip) = fresh[0].clone();
    let new_ip = blocks[1].ip(250);
    cluster.set_pod_ip(&ns, &name, &new_ip).await?;
    expected.insert(old_ip.parse()?, None);
    expected.insert(new_ip.parse()?, Some(name));
    let compacted = cluster.compact_etcd().await?;
    tokio::task::spawn_blocking(|| cluster.restart()).await??;
    eprintln!("{:?} restarted", t0.elapsed());
    proxy.up();
    all_answers_right(&index, &ns, &expected).await?;
    let status = index.status();
    assert!(
        status.watch_errors > errors_before,
        "the index saw no error while cut off: {status:?}"
    );
    assert!(status.ready, "{status:?}");
    // The real 410 (the API server's "too old resource version": its watch
    // cache starts after the restart, and etcd no longer has the history).
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("too old resource version")),
        "{status:?}"
    );
    eprintln!(
        "{:?} compacted at revision {compacted}; index after recovery: {status:?}",
        t0.elapsed()
    );
    Ok(())
}
