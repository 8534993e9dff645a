//! `GET /v1/decisions`: the most recent decisions, newest first.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;

use super::wire::DecisionsQuery;
use super::{ApiError, AppState};
use crate::auth::Scope;
use crate::decide::decision::{Decision, DecisionFilter};

pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<DecisionsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Decision>>, ApiError> {
    state.authorize(&headers, Scope::Read)?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let filter = DecisionFilter {
        playbook: q.playbook,
        event_id: q.event_id,
        action: q.action,
        outcome: q.outcome,
        mode: q.mode,
    };
    let limit = q.limit.unwrap_or(100).min(1000);
    Ok(Json(state.decisions.recent(limit, &filter)))
}
