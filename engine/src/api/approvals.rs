//! `GET /v1/approvals`, `GET /v1/approvals/{id}` and
//! `POST /v1/approvals/{id}/approve|deny`.
//!
//! A decision needs an `act` token, or the signed link from the approval's
//! notification (`?expires=…&token=…`). Listings never show the links: a
//! `read` token must not be a way to decide. A link decides once: the
//! approval is decided once, so a second use, for either verdict, is 409.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use chrono::Utc;
use serde::Deserialize;

use super::wire::ApprovalsQuery;
use super::{ApiError, AppState};
use crate::act::approvals::{Approval, ApprovalError, ApprovalState, Verdict};
use crate::auth::Scope;

fn redact(mut a: Approval) -> Approval {
    a.approve_url = None;
    a.deny_url = None;
    a
}

fn unavailable() -> ApiError {
    ApiError::Unavailable {
        retry_after_secs: 5,
        detail: "the store is unavailable; retry later".into(),
    }
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<ApprovalsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Approval>>, ApiError> {
    state.authorize(&headers, Scope::Read)?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let pending_only = match q.state.as_deref() {
        None | Some("pending") => true,
        Some("all") => false,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "state `{other}` is not pending or all"
            )))
        }
    };
    let all = state
        .approvals
        .store()
        .approval_list(pending_only, 1000)
        .await
        .map_err(|_| unavailable())?;
    Ok(Json(all.into_iter().map(redact).collect()))
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Approval>, ApiError> {
    state.authorize(&headers, Scope::Read)?;
    let a = state
        .approvals
        .store()
        .approval_get(&id)
        .await
        .map_err(|_| unavailable())?
        .ok_or_else(|| ApiError::NotFound(format!("no approval `{id}`")))?;
    Ok(Json(redact(a)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkQuery {
    expires: Option<String>,
    token: Option<String>,
}

pub async fn decide(
    State(state): State<Arc<AppState>>,
    Path((id, verdict)): Path<(String, String)>,
    headers: HeaderMap,
    query: Result<Query<LinkQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Approval>, ApiError> {
    let verdict = match verdict.as_str() {
        "approve" => Verdict::Approve,
        "deny" => Verdict::Deny,
        _ => return Err(ApiError::NotFound("no such route".into())),
    };
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let by = match (&q.expires, &q.token) {
        (Some(expires), Some(token)) => {
            let expires: i64 = expires
                .parse()
                .map_err(|_| ApiError::BadRequest("expires must be a Unix time".into()))?;
            if !state
                .approvals
                .verify_link(&id, verdict, expires, token, Utc::now())
            {
                return Err(ApiError::Unauthenticated);
            }
            // Bound to this very request for approval: a link made for an
            // earlier one with the same id (purged, then asked again) has
            // another deadline, and decides nothing.
            let current = state
                .approvals
                .store()
                .approval_get(&id)
                .await
                .map_err(|_| unavailable())?;
            if current.is_some_and(|a| a.expires_at.timestamp() != expires) {
                return Err(ApiError::Unauthenticated);
            }
            "signed link".to_owned()
        }
        (None, None) => state.authorize(&headers, Scope::Act)?.name,
        _ => {
            return Err(ApiError::BadRequest(
                "a signed link carries both expires and token".into(),
            ))
        }
    };
    match state
        .approvals
        .decide(
            &id,
            verdict,
            &by,
            &state.decisions,
            state.dispatcher.as_ref(),
        )
        .await
    {
        Ok(a) => Ok(Json(redact(a))),
        Err(ApprovalError::NotFound) => Err(ApiError::NotFound(format!("no approval `{id}`"))),
        Err(ApprovalError::AlreadyDecided(s)) => Err(ApiError::Conflict(format!(
            "the approval is already {}",
            match s {
                ApprovalState::TimedOut => "timed out",
                other => other.as_str(),
            }
        ))),
        Err(ApprovalError::Expired) => Err(ApiError::Conflict(
            "the approval has expired: the playbook's default is taken".into(),
        )),
        Err(ApprovalError::BadToken) => Err(ApiError::Unauthenticated),
        Err(ApprovalError::Store(_)) => Err(unavailable()),
    }
}
