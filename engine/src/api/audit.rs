//! `GET /v1/audit`: the durable audit trail, filtered and paged.
//!
//! Read from the store, so decisions from before a restart, and those made
//! by other replicas on the same PostgreSQL, are there too. Filters:
//! `from`/`to` (RFC 3339, inclusive/exclusive), `playbook`, `event_id`,
//! `target` (exactly one of an intent's or action's targets: a pod
//! `namespace/name`, an address, an EDL `list:value` or value, a
//! notification target), `action` (an intent's action name), `outcome`;
//! `limit` (default 100, at most 1000). Newest first; when more remain,
//! `next_cursor` is given and passed back as `cursor` for the next page.
//! Decisions reach the store through the batching audit writer, a moment
//! after they are made.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, Utc};

use super::wire::{AuditPage, AuditQuery};
use super::{ApiError, AppState};
use crate::auth::Scope;
use crate::store::{self, StoreError};

fn time(what: &str, v: &Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    v.as_deref()
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| ApiError::BadRequest(format!("{what}: not an RFC 3339 time: {e}")))
        })
        .transpose()
}

/// A filter value: non-empty and bounded, so a query string cannot make the
/// database scan with a megabyte pattern.
fn text(what: &str, v: Option<String>) -> Result<Option<String>, ApiError> {
    match v {
        Some(s) if s.is_empty() || s.len() > 512 => Err(ApiError::BadRequest(format!(
            "{what} must be 1 to 512 bytes"
        ))),
        other => Ok(other),
    }
}

pub async fn query(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    state.authorize(&headers, Scope::Read)?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = match q.limit.as_deref() {
        None => 100,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::BadRequest("limit must be 1 to 1000".into()))?,
    };
    let query = store::AuditQuery {
        from: time("from", &q.from)?,
        to: time("to", &q.to)?,
        playbook: text("playbook", q.playbook)?,
        event_id: text("event_id", q.event_id)?,
        target: text("target", q.target)?,
        target_exact: true,
        outcome: text("outcome", q.outcome)?,
        action: text("action", q.action)?,
        limit: Some(limit),
        cursor: text("cursor", q.cursor)?,
    };
    match state.store.query_audit(&query).await {
        Ok(page) => Ok(Json(AuditPage {
            items: page.entries,
            next_cursor: page.next_cursor,
        })),
        Err(StoreError::Invalid(_)) => Err(ApiError::BadRequest(
            "cursor is not one this server gave".into(),
        )),
        Err(e) => {
            tracing::warn!(error = %e, "audit query");
            Err(ApiError::Unavailable {
                retry_after_secs: 5,
                detail: "the store is unavailable; retry later".into(),
            })
        }
    }
}
