//! The notification outbox: `GET /v1/outbox` (read scope) lists it,
//! `POST /v1/outbox/{id}/replay` (admin) sends a dead-lettered notification
//! again, `POST /v1/outbox/targets/{name}/enable` (admin) switches a target
//! disabled by a 410 Gone back on.

use std::sync::Arc;

use super::wire::{OutboxQuery, OutboxResponse};
use super::{ApiError, AppState};
use crate::auth::Scope;
use crate::store::{OutboxFilter, OutboxItem, StoreError, TargetState};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(_) => ApiError::NotFound("no such outbox entry or target".into()),
        StoreError::Invalid(m) | StoreError::Conflict(m) => ApiError::BadRequest(m),
        StoreError::Unavailable(m) => {
            tracing::warn!("outbox API: {m}");
            ApiError::Unavailable {
                retry_after_secs: 5,
                detail: "the store is unavailable; try again".into(),
            }
        }
        other => {
            tracing::error!("outbox API: {other}");
            ApiError::Internal
        }
    }
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<OutboxQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<OutboxResponse>, ApiError> {
    state.authorize(&headers, Scope::Read)?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if q.limit.is_some_and(|l| l == 0 || l > 1000) {
        return Err(ApiError::BadRequest("limit must be 1 to 1000".into()));
    }
    let filter = OutboxFilter {
        status: q.status,
        target: q.target,
        limit: q.limit,
        cursor: q.cursor,
    };
    let mut page = state
        .store
        .outbox_list(&filter)
        .await
        .map_err(store_error)?;
    // Stored payloads hold approval links without their token; what an
    // older version stored with one is shown without it all the same.
    for item in &mut page.items {
        crate::act::approvals::strip_link_tokens(&mut item.payload);
    }
    let targets = state.store.outbox_targets().await.map_err(store_error)?;
    Ok(Json(OutboxResponse { page, targets }))
}

pub async fn replay(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<OutboxItem>, ApiError> {
    let who = state.authorize(&headers, Scope::Admin)?;
    let mut item = state
        .store
        .outbox_replay(&id, chrono::Utc::now())
        .await
        .map_err(store_error)?;
    crate::act::approvals::strip_link_tokens(&mut item.payload);
    tracing::info!(id = %id, target = %item.target, by = %who.name, "outbox item replayed");
    Ok(Json(item))
}

pub async fn enable_target(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<TargetState>, ApiError> {
    let who = state.authorize(&headers, Scope::Admin)?;
    let known = state.notifier.as_ref().is_some_and(|n| n.has_target(&name));
    if !known {
        return Err(ApiError::NotFound("no such notification target".into()));
    }
    let now = chrono::Utc::now();
    state
        .store
        .outbox_enable_target(&name, now)
        .await
        .map_err(store_error)?;
    tracing::info!(target = %name, by = %who.name, "notification target enabled");
    Ok(Json(TargetState {
        target: name,
        disabled: false,
        reason: None,
        updated_at: now,
    }))
}
