//! Pod index costs: the per-event address lookup, the per-change update,
//! and the heap the index holds for 10,000 pods.
//!
//! `cargo bench -p riposte-connectors --bench pod_index`
//!
//! The heap figure comes from a counting global allocator around building
//! the index: bytes allocated minus bytes freed, so the Pod objects fed in
//! (and dropped) do not count, only what the index keeps.

use std::alloc::System;
use std::hint::black_box;
use std::net::IpAddr;

use criterion::{BatchSize, Criterion};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use riposte_connectors::kubernetes::index::Controller;
use riposte_connectors::kubernetes::PodIndex;
use serde_json::json;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const PODS: u32 = 10_000;
const NAMESPACES: u32 = 50;

fn v4(i: u32) -> String {
    format!("10.{}.{}.{}", 100 + i / 65_536, (i / 256) % 256, i % 256)
}

/// A pod as the API server sends it: managed fields, a container spec,
/// statuses, foreign annotations — everything the index must not keep.
fn pod(i: u32) -> Pod {
    let ns = format!("team-{}", i % NAMESPACES);
    let rs = format!("app-{}-7d9f8b6c5d", i % 500);
    serde_json::from_value(json!({
        "metadata": {
            "name": format!("{rs}-{i:05}"),
            "namespace": ns,
            "uid": format!("0b6a4f2e-{i:04x}-4c1d-9a57-1e2f3a4b5c6d"),
            "resourceVersion": format!("{}", 1000 + i),
            "creationTimestamp": "2025-03-01T10:00:00Z",
            "labels": {
                "app": format!("app-{}", i % 500),
                "pod-template-hash": "7d9f8b6c5d",
                "app.kubernetes.io/part-of": "shop",
                "app.kubernetes.io/version": "1.4.2",
                "tier": "backend"
            },
            "annotations": {
                "kubectl.kubernetes.io/restartedAt": "2025-03-01T09:59:00Z",
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9090"
            },
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": "r", "controller": true, "blockOwnerDeletion": true}],
            "managedFields": [{"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}},
                              {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "subresource": "status", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:podIP": {}, "f:podIPs": {}}}}]
        },
        "spec": {
            "nodeName": format!("node-{}", i % 40),
            "serviceAccountName": format!("app-{}", i % 500),
            "containers": [{"name": "app", "image": "registry.example/shop/app:1.4.2", "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                            "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "DB_HOST", "value": "db.shop.svc"}],
                            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]
        },
        "status": {
            "phase": "Running",
            "podIP": v4(i),
            "podIPs": [{"ip": v4(i)}, {"ip": format!("fd00::{:x}", i + 1)}],
            "hostIP": "172.18.0.2",
            "startTime": "2025-03-01T10:00:01Z",
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}],
            "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "image": "registry.example/shop/app:1.4.2", "imageID": "sha256:0", "started": true}]
        }
    }))
    .unwrap_or_default()
}

fn namespace(n: u32) -> Namespace {
    serde_json::from_value(json!({
        "metadata": {"name": format!("team-{n}"), "labels": {"kubernetes.io/metadata.name": format!("team-{n}"), "team": "shop", "env": "prod"}}
    }))
    .unwrap_or_default()
}

fn build() -> PodIndex {
    let index = PodIndex::offline("riposte.io/quarantine");
    for n in 0..NAMESPACES {
        index.apply_namespace(namespace(n));
    }
    for r in 0..500u32 {
        let deploy = Controller {
            kind: "Deployment".into(),
            name: format!("app-{r}"),
        };
        index.apply_owner(
            "ReplicaSet",
            &format!("team-{}", r % NAMESPACES),
            &format!("app-{r}-7d9f8b6c5d"),
            Some(deploy),
        );
    }
    for i in 0..PODS {
        index.apply_pod(pod(i));
    }
    index
}

fn heap_report() -> PodIndex {
    let region = Region::new(GLOBAL);
    let index = build();
    let stats = region.change();
    let held = stats.bytes_allocated as i128 - stats.bytes_deallocated as i128
        + stats.bytes_reallocated as i128;
    let status = index.status();
    println!(
        "pod index heap: {} pods, {} addresses: {:.2} MiB held ({} bytes/pod)",
        status.pods,
        status.addresses,
        held as f64 / (1024.0 * 1024.0),
        held / i128::from(PODS)
    );
    index
}

fn benches(c: &mut Criterion, index: &PodIndex) {
    let hits: Vec<IpAddr> = (0..PODS)
        .step_by(7)
        .filter_map(|i| v4(i).parse().ok())
        .collect();
    let miss: IpAddr = "192.0.2.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let mut n = 0usize;
    c.bench_function("resolve/hit", |b| {
        b.iter(|| {
            n = (n + 1) % hits.len();
            black_box(index.resolve(black_box(hits[n])))
        })
    });
    c.bench_function("resolve/miss", |b| {
        b.iter(|| black_box(index.resolve(black_box(miss))))
    });
    let mut i = 0u32;
    c.bench_function("apply_pod/update", |b| {
        b.iter_batched(
            || {
                i = (i + 1) % PODS;
                pod(i)
            },
            |p| index.apply_pod(p),
            BatchSize::SmallInput,
        )
    });
}

fn main() {
    let index = heap_report();
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c, &index);
    c.final_summary();
}
