//! `GET /v1/playbooks`, `POST /v1/playbooks/reload` and
//! `POST /v1/playbooks/{name}/dry-run` (an event in, intents out, nothing
//! applied).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use riposte_firewall::ThreatEvent;

use super::wire::DryRun;
use super::{json, ApiError, AppState};
use crate::auth::Scope;
use crate::decide::playbook::{PlaybookInfo, PlaybookRuntime, ReloadReport};

fn runtime(state: &AppState) -> Result<&Arc<PlaybookRuntime>, ApiError> {
    state
        .playbooks
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable {
            retry_after_secs: 60,
            detail: "no playbook directory is loaded".into(),
        })
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Vec<PlaybookInfo>>, ApiError> {
    state.authorize(&headers, Scope::Read)?;
    Ok(Json(
        state
            .playbooks
            .as_ref()
            .map(|rt| rt.playbooks())
            .unwrap_or_default(),
    ))
}

pub async fn reload(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<ReloadReport>, ApiError> {
    let principal = state.authorize(&headers, Scope::Admin)?;
    let rt = runtime(&state)?.clone();
    let report = tokio::task::spawn_blocking(move || rt.reload())
        .await
        .map_err(|_| ApiError::Internal)?;
    tracing::info!(token = %principal.name, loaded = report.loaded.len(), errors = report.errors.len(), "playbooks reloaded through the API");
    Ok(Json(report))
}

pub async fn dry_run(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<DryRun>, ApiError> {
    state.authorize(&headers, Scope::Read)?;
    let rt = runtime(&state)?;
    let event: ThreatEvent = json::parse(&headers, &body, state.max_json_depth)?;
    match rt.dry_run(&name, &event) {
        None => Err(ApiError::NotFound(format!("no playbook named `{name}`"))),
        Some(decision) => Ok(Json(DryRun {
            matched: decision.is_some(),
            decision,
        })),
    }
}
