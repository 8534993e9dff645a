//! External dynamic lists for the firewall to poll, and their entries.
//!
//! - `GET /v1/edl/{list}`: the list in PAN-OS EDL text, one entry a line.
//!   Authenticated by HTTP basic auth (what a PAN-OS EDL object sends) with
//!   a user of the list, or a bearer token: one of the list's, or an API
//!   token with the `read` scope. Strong `ETag`; `If-None-Match` → 304.
//!   The body is rendered once per list version and served from memory.
//! - `POST /v1/edl/{list}` (`act`): `{"value": "…", "ttl": "7d", "reason": "…"}`.
//! - `DELETE /v1/edl/{list}/{value}` (`act`): the value URL-encoded.
//!
//! Every change asked for over the API, done or refused, is a decision of
//! playbook `api:<token name>` in the audit trail (who, what, when, and
//! what came of it), like the other API actions.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::wire::{EdlAdd, EdlAdded, EdlRemoved};
use super::{ApiError, AppState};
use crate::act::firewall_sync::{EdlListConfig, Firewalls, FwError};
use crate::auth::Scope;
use crate::decide::decision::{
    ActionRecord, ActionStatus, Decision, EventSummary, Mode, Outcome, Timings,
};
use crate::decide::intent::{Action, Intent};

/// Records an EDL change asked for over the API in the decision log, and so
/// in the audit trail.
fn audit(state: &AppState, who: &str, action: Action, result: &Result<String, ApiError>) {
    let id = crate::act::approvals::hex(&rand::random::<[u8; 16]>());
    let event_id = format!("api-{id}");
    let playbook = format!("api:{who}");
    let target = match &action {
        Action::EdlAdd { list, value, .. } | Action::EdlRemove { list, value } => {
            format!("edl {list}: {value}")
        }
        other => other.summary(),
    };
    let intent = Intent::new(&event_id, &playbook, action);
    let now = chrono::Utc::now();
    let (status, reason, code) = match result {
        Ok(done) => (ActionStatus::Applied, done.clone(), None),
        Err(ApiError::Unavailable { detail, .. }) => (
            ActionStatus::Failed,
            detail.clone(),
            Some("store".to_owned()),
        ),
        Err(ApiError::BadRequest(m) | ApiError::NotFound(m) | ApiError::Unprocessable(m)) => {
            (ActionStatus::Refused, m.clone(), Some("refused".to_owned()))
        }
        Err(e) => (
            ActionStatus::Refused,
            format!("{e:?}"),
            Some("refused".to_owned()),
        ),
    };
    let mut decision = Decision {
        event_id,
        event: EventSummary {
            kind: "api".into(),
            dataset: "riposte.api".into(),
            ..EventSummary::default()
        },
        playbook,
        mode: Mode::Enforce,
        actions: vec![ActionRecord {
            action_id: intent.action_id.clone(),
            action: intent.action.name().to_string(),
            target: Some(target),
            status,
            reason: Some(reason),
            code,
            attempts: 1,
            duration_us: 0,
            at: now,
        }],
        intents: vec![intent],
        outcome: Outcome::Decided,
        timings: Timings::default(),
        at: now,
    };
    decision.settle();
    state.decisions.record(decision);
}

fn firewalls(state: &AppState) -> Result<&Arc<Firewalls>, ApiError> {
    state
        .firewall
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("no firewall or EDL is configured".into()))
}

fn hash_eq(hex_hash: &str, secret: &[u8]) -> bool {
    let presented: [u8; 32] = Sha256::digest(secret).into();
    match hex::decode(hex_hash.trim()) {
        Ok(expected) if expected.len() == 32 => bool::from(expected.ct_eq(&presented)),
        _ => false,
    }
}

/// Whether the request may read `list`.
fn may_read(state: &AppState, list: &EdlListConfig, headers: &HeaderMap) -> bool {
    let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, rest)) = auth.trim().split_once(' ') else {
        return false;
    };
    if scheme.eq_ignore_ascii_case("basic") {
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(rest.trim()) else {
            return false;
        };
        let Some(colon) = raw.iter().position(|b| *b == b':') else {
            return false;
        };
        let (user, password) = (&raw[..colon], &raw[colon + 1..]);
        // Every user is compared, so the time taken tells nothing.
        let mut ok = false;
        for u in &list.basic {
            let same_user = bool::from(u.user.as_bytes().ct_eq(user));
            ok |= same_user & hash_eq(&u.sha256, password);
        }
        return ok;
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        let token = rest.trim().as_bytes();
        let mut ok = false;
        for h in &list.bearer_sha256 {
            ok |= hash_eq(h, token);
        }
        return ok || state.authorize(headers, Scope::Read).is_ok();
    }
    false
}

/// The one answer to a request without the list's credentials, whether or
/// not the list exists.
fn unauthorized() -> Response {
    let mut r = super::problem(StatusCode::UNAUTHORIZED, "valid credentials are required");
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"riposte-edl\", charset=\"UTF-8\""),
    );
    r
}

fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

fn fw_error(e: FwError) -> ApiError {
    match e {
        // Well-formed but refused (never-block, broader than the list
        // takes): 422, like an invalid intent.
        FwError::Refused(r) => ApiError::Unprocessable(format!("refused: {}", r.message)),
        FwError::Invalid(m) => ApiError::BadRequest(m),
        FwError::Store(m) => {
            tracing::error!(error = %m, "EDL store");
            ApiError::Unavailable {
                retry_after_secs: 5,
                detail: "the store is unavailable".into(),
            }
        }
        FwError::Firewalls { message, .. } => ApiError::BadRequest(message),
    }
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(list): Path<String>,
    headers: HeaderMap,
) -> Response {
    // An unknown list answers a stranger as a known one does without the
    // right credentials, so list names cannot be probed for; only a
    // `read` token learns that the list does not exist.
    let unknown = |state: &AppState| {
        if state.authorize(&headers, Scope::Read).is_ok() {
            ApiError::NotFound("no such list".into()).into_response()
        } else {
            unauthorized()
        }
    };
    let Ok(fw) = firewalls(&state) else {
        return unknown(&state);
    };
    let Some(cfg) = fw.list(&list) else {
        fw.metrics().edl("unknown", "unknown");
        return unknown(&state);
    };
    if !may_read(&state, cfg, &headers) {
        fw.metrics().edl(&list, "unauthorized");
        return unauthorized();
    }
    let rendered = match fw.edl_render(&list).await {
        Ok(r) => r,
        Err(e) => return fw_error(e).into_response(),
    };
    let etag = HeaderValue::from_str(&rendered.etag).unwrap_or(HeaderValue::from_static("\"\""));
    if etag_matches(&headers, &rendered.etag) {
        fw.metrics().edl(&list, "not_modified");
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        r.headers_mut().insert(header::ETAG, etag);
        return r;
    }
    fw.metrics().edl(&list, "ok");
    let mut r = (StatusCode::OK, rendered.body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::ETAG, etag);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

pub async fn add(
    State(state): State<Arc<AppState>>,
    Path(list): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let who = state.authorize(&headers, Scope::Act)?;
    let fw = firewalls(&state)?;
    let entry: EdlAdd =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("body: {e}")))?;
    let reason = entry
        .reason
        .clone()
        .unwrap_or_else(|| format!("added through the API by {}", who.name));
    let done = fw
        .edl_add(
            &list,
            &entry.value,
            entry.ttl.as_secs(),
            Some(&reason),
            None,
        )
        .await
        .map_err(fw_error);
    let value = match &done {
        Ok(_) => fw
            .edl_value(&list, &entry.value)
            .map(|(_, v)| v)
            .unwrap_or_else(|_| entry.value.clone()),
        Err(_) => entry.value.clone(),
    };
    audit(
        &state,
        &who.name,
        Action::EdlAdd {
            list: list.clone(),
            value: value.clone(),
            ttl: entry.ttl,
            reason: Some(reason),
        },
        &done,
    );
    let done = done?;
    tracing::info!(list = %list, by = %who.name, "{done}");
    Ok((
        StatusCode::CREATED,
        Json(EdlAdded {
            list,
            value,
            ttl: entry.ttl,
            detail: done,
        }),
    )
        .into_response())
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    Path((list, value)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let who = state.authorize(&headers, Scope::Act)?;
    let fw = firewalls(&state)?;
    let done = fw.edl_remove(&list, &value).await.map_err(fw_error);
    audit(
        &state,
        &who.name,
        Action::EdlRemove {
            list: list.clone(),
            value,
        },
        &done,
    );
    let done = done?;
    tracing::info!(list = %list, by = %who.name, "{done}");
    Ok((StatusCode::OK, Json(EdlRemoved { detail: done })).into_response())
}
