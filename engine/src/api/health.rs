//! Probes and metrics.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::AppState;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabel {
    check: &'static str,
}

/// Named readiness checks; `/readyz` answers 200 only when all of them are
/// ready, advisory ones aside. Each is also `riposte_ready{check}`, so an
/// alert can say which check holds a replica back (the kubelet only sees
/// the 503).
///
/// An advisory check is reported like the others (in `/readyz`'s body and
/// its gauge) but does not make `/readyz` answer 503: it describes trouble
/// every replica shares and that taking this one out of its Service's
/// endpoints would not cure, only make worse (the API server away: the
/// replicas all go unready together and the firewalls' syslog has nowhere
/// to go, while each replica could still read and decide it).
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    checks: Arc<Mutex<BTreeMap<&'static str, bool>>>,
    advisory: Arc<Mutex<BTreeSet<&'static str>>>,
    gauges: Family<CheckLabel, Gauge>,
}

impl Readiness {
    /// Registers `riposte_ready{check}`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            "riposte_ready",
            "1 while a readiness check passes, by check (listeners, playbooks, store, pod_index, amqp, kubernetes_api); /readyz is 200 when all but the advisory kubernetes_api are 1",
            self.gauges.clone(),
        );
    }

    /// Registers a check, not ready yet.
    pub fn register(&self, name: &'static str) {
        self.set(name, false);
    }

    /// Registers an advisory check, not ready yet: reported, never a 503.
    pub fn register_advisory(&self, name: &'static str) {
        if let Ok(mut advisory) = self.advisory.lock() {
            advisory.insert(name);
        }
        self.set(name, false);
    }

    pub fn set(&self, name: &'static str, ready: bool) {
        if let Ok(mut checks) = self.checks.lock() {
            checks.insert(name, ready);
        }
        self.gauges
            .get_or_create(&CheckLabel { check: name })
            .set(i64::from(ready));
    }

    pub fn snapshot(&self) -> BTreeMap<&'static str, bool> {
        self.checks.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn advisory(&self) -> BTreeSet<&'static str> {
        self.advisory.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Whether the replica should get traffic: every check but the
    /// advisory ones passes.
    pub fn is_ready(&self) -> bool {
        let advisory = self.advisory();
        self.snapshot()
            .iter()
            .all(|(name, ready)| *ready || advisory.contains(name))
    }
}

pub async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let checks = state.readiness.snapshot();
    let advisory = state.readiness.advisory();
    let ready = state.readiness.is_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({"ready": ready, "checks": checks, "advisory": advisory})),
    )
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::intake::metrics::encode(&state.registry),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_check_is_a_gauge_that_follows_it() {
        let readiness = Readiness::default();
        let mut registry = Registry::default();
        readiness.register_metrics(&mut registry);
        readiness.register("store");
        readiness.register("pod_index");
        readiness.set("store", true);
        let text = crate::intake::metrics::encode(&registry);
        assert!(
            text.contains("riposte_ready{check=\"store\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("riposte_ready{check=\"pod_index\"} 0\n"),
            "{text}"
        );
        readiness.set("pod_index", true);
        let text = crate::intake::metrics::encode(&registry);
        assert!(
            text.contains("riposte_ready{check=\"pod_index\"} 1\n"),
            "{text}"
        );
        assert!(readiness.is_ready());
    }

    #[test]
    fn an_advisory_check_is_reported_but_keeps_the_replica_ready() {
        let readiness = Readiness::default();
        let mut registry = Registry::default();
        readiness.register_metrics(&mut registry);
        readiness.register("pod_index");
        readiness.register_advisory("kubernetes_api");
        readiness.set("pod_index", true);
        assert!(readiness.is_ready(), "an advisory check never holds back");
        let text = crate::intake::metrics::encode(&registry);
        assert!(
            text.contains("riposte_ready{check=\"kubernetes_api\"} 0\n"),
            "{text}"
        );
        assert_eq!(readiness.snapshot().get("kubernetes_api"), Some(&false));
        readiness.set("pod_index", false);
        assert!(!readiness.is_ready(), "the other checks still do");
    }
}
