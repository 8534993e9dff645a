//! `GET /v1/audit`: the decisions, filtered and paged.
//!
//! Filters: `from`/`to` (RFC 3339, inclusive/exclusive), `playbook`,
//! `target` (a pod `namespace/name`, an address, a list: matched against
//! every action's target), `outcome`; `limit` (default 100, at most 1000).
//! Newest first; when more remain, `next_cursor` is given and passed back as
//! `cursor` for the next page.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::auth::Scope;
use crate::decision::{Decision, DecisionFilter};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    from: Option<String>,
    to: Option<String>,
    playbook: Option<String>,
    target: Option<String>,
    outcome: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct AuditPage {
    pub items: Vec<Decision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn time(what: &str, v: &Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    v.as_deref()
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| ApiError::BadRequest(format!("{what}: not an RFC 3339 time: {e}")))
        })
        .transpose()
}

fn targets(d: &Decision, target: &str) -> bool {
    let pod = format!("pod {target}");
    d.actions
        .iter()
        .any(|a| a.target.as_deref().is_some_and(|t| t == target || t == pod))
        || d.intents.iter().any(|i| {
            i.action.target().is_some_and(|t| t.to_string() == pod)
                || i.action.summary().split_whitespace().next() == Some(target)
        })
}

pub async fn query(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    state.authorize(&headers, Scope::Read)?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let from = time("from", &q.from)?;
    let to = time("to", &q.to)?;
    let limit = match q.limit.as_deref() {
        None => 100,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::BadRequest("limit must be 1 to 1000".into()))?,
    };
    let skip = match q.cursor.as_deref() {
        None => 0,
        Some(c) => c
            .strip_prefix("o")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| ApiError::BadRequest("cursor is not one this server gave".into()))?,
    };
    let filter = DecisionFilter {
        playbook: q.playbook,
        outcome: q.outcome,
        ..Default::default()
    };
    let all = state.decisions.recent(usize::MAX, &filter);
    let mut matching = all.into_iter().filter(|d| {
        from.is_none_or(|f| d.at >= f)
            && to.is_none_or(|t| d.at < t)
            && q.target.as_deref().is_none_or(|t| targets(d, t))
    });
    let items: Vec<Decision> = matching.by_ref().skip(skip).take(limit).collect();
    let more = matching.next().is_some();
    let next_cursor = more.then(|| format!("o{}", skip + items.len()));
    Ok(Json(AuditPage { items, next_cursor }))
}
