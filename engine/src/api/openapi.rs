//! `GET /v1/openapi.json`: the OpenAPI 3 document kept in the repository
//! (`engine/openapi.json`), served as written.

use axum::http::header;
use axum::response::IntoResponse;

/// The document, compiled in.
pub const DOCUMENT: &str = include_str!("../../openapi.json");

pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}
