//! `POST /v1/actions` and `GET /v1/actions/{id}`: intents from outside,
//! through the same guardrails and dispatcher as the playbooks'.
//!
//! The body holds the intents in the JSON shape playbooks produce (see
//! `intent`), validated the same way. The answer is 200 with the decision
//! when every action finished within `api.action_wait_ms`, else 202 with
//! `Location: /v1/actions/{id}` to poll. With an `Idempotency-Key` header
//! the first answer is kept: the same key and body get it again, another
//! body 422, and a retry while the first is still being served 409.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use sha2::{Digest, Sha256};

use super::store::IdempotencyBegin;
use super::wire::{ActionRequest, ActionResult, RequestStatus};
use super::{json, ApiError, AppState};
use crate::auth::Scope;
use crate::decide::decision::{
    ActionStatus, Decision, DecisionFilter, EventSummary, Mode, Outcome, Timings,
};
use crate::decide::intent::{Action, Intent};

/// At most this many intents per request.
pub const MAX_INTENTS: usize = 100;

/// The decision log key of a request id.
fn event_id(id: &str) -> String {
    format!("api-{id}")
}

pub(crate) fn settled(d: &Decision) -> bool {
    !matches!(&d.outcome, Outcome::Pending { reason } if reason == "dispatching")
        && !d.actions.iter().any(|a| a.status == ActionStatus::Queued)
}

/// Dispatches `intents` for `principal` and waits up to `wait` for them to
/// finish. Used by `POST /v1/actions` and the quarantine release.
pub(crate) async fn run(
    state: &AppState,
    principal: &str,
    actions: Vec<Action>,
    dry_run: bool,
    wait: Duration,
) -> ActionResult {
    let id = crate::act::approvals::hex(&rand::random::<[u8; 16]>());
    let event_id = event_id(&id);
    let playbook = format!("api:{principal}");
    let intents = actions
        .into_iter()
        .map(|a| Intent::new(&event_id, &playbook, a))
        .collect();
    let decision = Decision {
        event_id: event_id.clone(),
        event: EventSummary {
            kind: "api".into(),
            dataset: "riposte.api".into(),
            ..EventSummary::default()
        },
        playbook,
        mode: if dry_run { Mode::DryRun } else { Mode::Enforce },
        intents,
        outcome: Outcome::Decided,
        timings: Timings::default(),
        at: Utc::now(),
        actions: Vec::new(),
    };
    let mut current = state.dispatcher.dispatch(decision).await;
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(2);
    while !settled(&current) && Instant::now() < deadline {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
        if let Some(d) = lookup(state, &event_id) {
            current = d;
        }
    }
    ActionResult {
        status: status_of(&current),
        id,
        decision: current,
    }
}

fn status_of(d: &Decision) -> RequestStatus {
    if settled(d) {
        RequestStatus::Done
    } else {
        RequestStatus::InProgress
    }
}

fn lookup(state: &AppState, event_id: &str) -> Option<Decision> {
    state
        .decisions
        .recent(
            1,
            &DecisionFilter {
                event_id: Some(event_id.to_owned()),
                ..Default::default()
            },
        )
        .pop()
}

/// 200 with the result, or 202 with its `Location`.
pub(crate) fn answer(result: &ActionResult) -> (StatusCode, String, Response) {
    let status = if result.status == RequestStatus::Done {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let body = serde_json::to_string(result).unwrap_or_else(|_| "{}".into());
    let response = respond(status, body.clone(), &result.id);
    (status, body, response)
}

fn respond(status: StatusCode, body: String, id: &str) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if status == StatusCode::ACCEPTED {
        if let Ok(v) = HeaderValue::from_str(&format!("/v1/actions/{id}")) {
            r.headers_mut().insert(header::LOCATION, v);
        }
    }
    r
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let principal = state.authorize(&headers, Scope::Act)?;
    let request: ActionRequest = json::parse(&headers, &body, state.max_json_depth)?;
    validate(&request)?;
    let key = idempotency_key(&headers)?;
    if let Some(key) = &key {
        if let Some(answered) = idempotency_begin(&state, &principal.name, key, &body).await? {
            return Ok(answered);
        }
    }
    tracing::info!(
        token = %principal.name,
        intents = request.intents.len(),
        dry_run = request.dry_run,
        reason = request.reason.as_deref().unwrap_or(""),
        "action request"
    );
    let actions = request.intents.into_iter().map(|i| i.action).collect();
    let result = run(
        &state,
        &principal.name,
        actions,
        request.dry_run,
        state.action_wait,
    )
    .await;
    let (status, body, response) = answer(&result);
    if let Some(key) = &key {
        if let Err(e) = state
            .api_store
            .idempotency_finish(&principal.name, key, status.as_u16(), body, Utc::now())
            .await
        {
            tracing::warn!(error = %e, "cannot record the idempotent answer");
        }
    }
    Ok(response)
}

fn validate(request: &ActionRequest) -> Result<(), ApiError> {
    if request.intents.is_empty() || request.intents.len() > MAX_INTENTS {
        return Err(ApiError::Unprocessable(format!(
            "intents must hold 1 to {MAX_INTENTS} intents"
        )));
    }
    for (i, intent) in request.intents.iter().enumerate() {
        intent
            .action
            .validate()
            .map_err(|e| ApiError::Unprocessable(format!("intents[{i}]: {e}")))?;
    }
    if let Some(r) = &request.reason {
        crate::decide::intent::validate_text("reason", r, 1_024)
            .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    }
    Ok(())
}

/// The request's `Idempotency-Key`, when it sent one.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let k = v
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            ApiError::BadRequest("Idempotency-Key must be 1 to 255 visible characters".into())
        })?;
    Ok(Some(k.to_owned()))
}

/// Claims `key` for this request; answers the first answer when the same
/// key and body were served before.
async fn idempotency_begin(
    state: &AppState,
    principal: &str,
    key: &str,
    body: &[u8],
) -> Result<Option<Response>, ApiError> {
    // The request as parsed, re-serialized: key order and spacing do not
    // make two bodies different.
    let canonical: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| ApiError::Internal)?;
    let fingerprint = crate::act::approvals::hex(&Sha256::digest(canonical.to_string()));
    match state
        .api_store
        .idempotency_begin(principal, key, &fingerprint, Utc::now())
        .await
    {
        Ok(IdempotencyBegin::Started) => Ok(None),
        Ok(IdempotencyBegin::InFlight) => Err(ApiError::Conflict(
            "a request with this Idempotency-Key is still being served".into(),
        )),
        Ok(IdempotencyBegin::Mismatch) => Err(ApiError::Unprocessable(
            "this Idempotency-Key was used with another body".into(),
        )),
        Ok(IdempotencyBegin::Done { status, body }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let id = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_owned))
                .unwrap_or_default();
            Ok(Some(respond(status, body, &id)))
        }
        Err(e) => {
            tracing::warn!(error = %e, "idempotency key");
            Err(ApiError::Unavailable {
                retry_after_secs: 5,
                detail: "the store is unavailable; retry later".into(),
            })
        }
    }
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.authorize(&headers, Scope::Read)?;
    let decision = lookup(&state, &event_id(&id))
        .ok_or_else(|| ApiError::NotFound(format!("no action request `{id}`")))?;
    let result = ActionResult {
        status: status_of(&decision),
        id,
        decision,
    };
    let body = serde_json::to_string(&result).map_err(|_| ApiError::Internal)?;
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}
