//! Errors as RFC 7807 `application/problem+json`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::Scope;

#[derive(Debug)]
pub enum ApiError {
    Unauthenticated,
    Forbidden(Scope),
    BadRequest(String),
    /// Some records of a batch failed; the rest were accepted.
    Rejected {
        accepted: usize,
        errors: Vec<(usize, String)>,
    },
    Unavailable {
        retry_after_secs: u64,
        detail: String,
    },
    NotFound,
    Timeout,
    /// The cause is logged where it happened; the body stays generic.
    Internal,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) | ApiError::Rejected { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unavailable { .. } | ApiError::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let title = status.canonical_reason().unwrap_or("Error");
        let mut body = json!({
            "type": "about:blank",
            "title": title,
            "status": status.as_u16(),
        });
        let detail = match &self {
            ApiError::Unauthenticated => "a valid bearer token is required".to_string(),
            ApiError::Forbidden(scope) => format!("the token lacks the `{}` scope", scope.as_str()),
            ApiError::BadRequest(d) => d.clone(),
            ApiError::Rejected { accepted, errors } => {
                body["accepted"] = json!(accepted);
                body["errors"] = errors
                    .iter()
                    .map(|(line, error)| json!({"line": line, "error": error}))
                    .collect();
                format!("{} record(s) could not be parsed", errors.len())
            }
            ApiError::Unavailable { detail, .. } => detail.clone(),
            ApiError::NotFound => "no such resource".to_string(),
            ApiError::Timeout => "the request took too long".to_string(),
            ApiError::Internal => "internal error; see the server log".to_string(),
        };
        body["detail"] = json!(detail);
        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match &self {
            ApiError::Unauthenticated => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::Unavailable {
                retry_after_secs, ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        response
    }
}
