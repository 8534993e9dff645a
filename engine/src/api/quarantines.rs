//! `GET /v1/quarantines` and `DELETE /v1/quarantines/{namespace}/{pod}`.
//!
//! Quarantines live on the pods (label and annotations), so the list comes
//! from the pod index, never from a copy that could disagree with the
//! cluster. A release goes through the dispatcher like a playbook's
//! `release` intent: guardrails, retries, audit trail.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use riposte_connectors::kubernetes::QuarantineState;

use super::actions;
use super::wire::QuarantineList;
use super::{ApiError, AppState};
use crate::auth::Scope;
use crate::decide::intent::{self, Action, Target};

pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<QuarantineList>, ApiError> {
    state.authorize(&headers, Scope::Read)?;
    let mut quarantines: Vec<QuarantineState> = match &state.kube {
        Some(kube) => kube
            .index()
            .quarantined()
            .iter()
            .map(|q| QuarantineState::clone(q))
            .collect(),
        None => Vec::new(),
    };
    quarantines
        .sort_by(|a, b| (&a.pod.namespace, &a.pod.name).cmp(&(&b.pod.namespace, &b.pod.name)));
    Ok(Json(QuarantineList {
        cluster: state.kube.is_some(),
        quarantines,
    }))
}

pub async fn release(
    State(state): State<Arc<AppState>>,
    Path((namespace, pod)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let principal = state.authorize(&headers, Scope::Act)?;
    intent::validate_namespace(&namespace).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    intent::validate_pod_name(&pod).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let Some(kube) = &state.kube else {
        return Err(ApiError::NotFound("no cluster is configured".into()));
    };
    let quarantined = kube
        .index()
        .quarantined()
        .iter()
        .any(|q| q.pod.namespace == namespace && q.pod.name == pod);
    if !quarantined {
        return Err(ApiError::NotFound(format!(
            "pod {namespace}/{pod} is not quarantined"
        )));
    }
    let target = Target::pod(&namespace, &pod).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let result = actions::run(
        &state,
        &principal.name,
        vec![Action::Release {
            target,
            reason: Some(format!("released through the API by {}", principal.name)),
        }],
        false,
        state.action_wait,
    )
    .await;
    Ok(actions::answer(&result).2)
}
