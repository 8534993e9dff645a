//! Support for the end-to-end tests: start the real service in-process on
//! loopback ports chosen by the kernel, send it logs the way firewalls do,
//! and read back what it made of them.
//!
//! Layout:
//! - [`service`]: start and stop `riposte serve` in-process with a config.
//! - [`syslog`]: senders over UDP, TCP (both framings) and TLS.
//! - [`metrics`]: read a counter out of the Prometheus text.
//! - [`lines`]: PAN-OS log lines written for the tests.
//! - [`soar_receiver`]: a SOAR webhook receiver that verifies signatures and
//!   fails on demand.
//! - [`kube_api`]: a Kubernetes API server stand-in the real `kube::Client`
//!   talks to over HTTPS with a bearer token.
//! - [`panos_api`]: a PAN-OS XML API stand-in (User-ID tags, registered-IP
//!   read-back, reboots and faults).
//! - [`postgres`]: a fresh database per test on the loopback PostgreSQL.
//! - [`rabbit`]: the loopback RabbitMQ: unique names, cleanup, closing
//!   connections and restarting the broker from its side.

pub mod kube_api;
pub mod lines;
pub mod metrics;
pub mod panos_api;
pub mod postgres;
pub mod rabbit;
pub mod service;
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
