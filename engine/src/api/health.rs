//! Probes and metrics.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

use super::AppState;

/// Named readiness checks; `/readyz` answers 200 only when all are ready.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    checks: Arc<Mutex<BTreeMap<&'static str, bool>>>,
}

impl Readiness {
    /// Registers a check, not ready yet.
    pub fn register(&self, name: &'static str) {
        self.set(name, false);
    }

    pub fn set(&self, name: &'static str, ready: bool) {
        if let Ok(mut checks) = self.checks.lock() {
            checks.insert(name, ready);
        }
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
