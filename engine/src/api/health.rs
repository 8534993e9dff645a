//! Probes and metrics.

use std::collections::BTreeMap;
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

/// Named readiness checks; `/readyz` answers 200 only when all are ready.
/// Each is also `riposte_ready{check}`, so an alert can say which check
/// holds a replica back (the kubelet only sees the 503).
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    checks: Arc<Mutex<BTreeMap<&'static str, bool>>>,
    gauges: Family<CheckLabel, Gauge>,
}

impl Readiness {
    /// Registers `riposte_ready{check}`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            "riposte_ready",
            "1 while a readiness check passes, by check (listeners, playbooks, store, pod_index, amqp); /readyz is 200 when all are 1",
            self.gauges.clone(),
        );
    }

    /// Registers a check, not ready yet.
    pub fn register(&self, name: &'static str) {
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

    pub fn is_ready(&self) -> bool {
        self.snapshot().values().all(|r| *r)
    }
}

pub async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let checks = state.readiness.snapshot();
    let ready = checks.values().all(|r| *r);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({"ready": ready, "checks": checks})),
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
}
