//! `GET /v1/decisions`: the most recent decisions, newest first.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;

use super::{ApiError, AppState};
use crate::auth::Scope;
use crate::decide::decision::{Decision, DecisionFilter, Mode};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionsQuery {
    /// At most this many (default 100, at most 1000).
    limit: Option<usize>,
    playbook: Option<String>,
    event_id: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
    mode: Option<Mode>,
}

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
