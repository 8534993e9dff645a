//! Errors as RFC 7807 `application/problem+json`.
//!
//! Every refusal the API makes, its own and those of the layers around it
//! (body limit, timeout, unknown route), reaches the client as a problem
//! document: `type`, `title`, `status`, `detail`, and extra members where
//! they help (`accepted`/`errors` for a partly bad ingest batch).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::Scope;

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

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
    NotFound(String),
    /// The body is larger than `http.max_body_bytes`.
    PayloadTooLarge,
    /// The body is not in a media type the route reads.
    UnsupportedMediaType(String),
    /// Well-formed, but not acceptable: a deeply nested body, an invalid
    /// intent, an idempotency key reused with another body.
    Unprocessable(String),
    /// The request conflicts with the resource's state: a replayed webhook
    /// id, an idempotent request still in flight, an approval already
    /// decided.
    Conflict(String),
    Timeout,
    /// The cause is logged where it happened; the body stays generic.
    Internal,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) | ApiError::Rejected { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn detail(&self) -> String {
        match self {
            ApiError::Unauthenticated => "valid credentials are required".to_string(),
            ApiError::Forbidden(scope) => format!("the token lacks the `{}` scope", scope.as_str()),
            ApiError::BadRequest(d)
            | ApiError::NotFound(d)
            | ApiError::UnsupportedMediaType(d)
            | ApiError::Unprocessable(d)
            | ApiError::Conflict(d) => d.clone(),
            ApiError::Rejected { errors, .. } => {
                format!("{} record(s) could not be parsed", errors.len())
            }
            ApiError::Unavailable { detail, .. } => detail.clone(),
            ApiError::PayloadTooLarge => "the request body is larger than allowed".to_string(),
            ApiError::Timeout => "the request took too long".to_string(),
            ApiError::Internal => "internal error; see the server log".to_string(),
        }
    }
}

/// A bare problem response for `status` with `detail`.
pub fn problem(status: StatusCode, detail: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = json!({
        "type": "about:blank",
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    });
    with_problem_type(status, body.to_string())
}

fn with_problem_type(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let title = status.canonical_reason().unwrap_or("Error");
        let mut body = json!({
            "type": "about:blank",
            "title": title,
            "status": status.as_u16(),
            "detail": self.detail(),
        });
        if let ApiError::Rejected { accepted, errors } = &self {
            body["accepted"] = json!(accepted);
            body["errors"] = errors
                .iter()
                .map(|(line, error)| json!({"line": line, "error": error}))
                .collect();
        }
        let mut response = with_problem_type(status, body.to_string());
        let headers = response.headers_mut();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_kind_of_refusal() {
        assert_eq!(ApiError::Unauthenticated.status(), 401);
        assert_eq!(ApiError::Forbidden(Scope::Act).status(), 403);
        assert_eq!(ApiError::PayloadTooLarge.status(), 413);
        assert_eq!(ApiError::UnsupportedMediaType("x".into()).status(), 415);
        assert_eq!(ApiError::Unprocessable("x".into()).status(), 422);
        assert_eq!(ApiError::Conflict("x".into()).status(), 409);
        assert_eq!(ApiError::NotFound("x".into()).status(), 404);
    }

    #[test]
    fn problem_documents_carry_the_media_type_and_members() {
        let r = ApiError::Forbidden(Scope::Admin).into_response();
        assert_eq!(r.status(), 403);
        assert_eq!(
            r.headers().get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
            Some(PROBLEM_JSON.as_bytes())
        );
    }
}
