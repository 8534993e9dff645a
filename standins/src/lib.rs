//! Stand-ins for what Riposte talks to, and the small helpers tests need
//! around them: the Kubernetes API server, the PAN-OS XML API, SOAR webhook
//! receivers, syslog senders, and the loopback PostgreSQL and RabbitMQ.
//!
//! This crate depends on neither the engine nor the connectors, so that the
//! connectors' tests (and the engine's benches) can use the stand-ins
//! without building the service: before it, the stand-ins lived in
//! `riposte-tests`, which needs the engine, which needs the connectors. The
//! end-to-end tests reach everything here through `riposte-tests`, which
//! re-exports it beside the in-process service.
//!
//! Layout:
//! - [`kube_api`]: a Kubernetes API server stand-in the real `kube::Client`
//!   talks to over HTTPS with a bearer token.
//! - [`panos_api`]: a PAN-OS XML API stand-in (User-ID tags, registered-IP
//!   read-back, reboots and faults).
//! - [`soar_receiver`]: a SOAR webhook receiver that verifies Standard
//!   Webhooks signatures and fails on demand.
//! - [`syslog`]: senders over UDP, TCP (both framings) and TLS.
//! - [`lines`]: PAN-OS log lines written for the tests.
//! - [`metrics`]: read a series out of the Prometheus text.
//! - [`postgres`]: a fresh database per test on the loopback PostgreSQL.
//! - [`real_k8s`]: the real kube-apiserver of `../shared/k8s`, one per test
//!   binary, a namespace per test.
//! - [`rabbit`]: the loopback RabbitMQ: unique names, cleanup, closing
//!   connections and restarting the broker from its side, a proxy to cut.
//! - [`eventually`]: poll a condition until it holds.

pub mod kube_api;
pub mod lines;
pub mod metrics;
pub mod panos_api;
pub mod ports;
pub mod postgres;
pub mod proxy;
pub mod rabbit;
pub mod real_k8s;
mod real_k8s_apply;
pub mod soar_receiver;
pub mod syslog;

use std::time::{Duration, Instant};

/// Polls `check` until it returns `Some`, or fails after `timeout`.
pub async fn eventually<T>(
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            anyhow::bail!("condition not met within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
