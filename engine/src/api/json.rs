//! Reading JSON bodies defensively.
//!
//! Handlers take the body as bytes and call [`parse`] after authorizing, so
//! a stranger gets 401 before any parsing is spent on them. The media type
//! must be JSON (415 otherwise), nesting is bounded before serde sees the
//! body (422: serde's own recursion limit would answer too late and too
//! deep), malformed text is 400 and a well-formed body of the wrong shape
//! 422.

use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;

use super::ApiError;

/// Deepest nesting of arrays and objects accepted by default.
pub const DEFAULT_MAX_DEPTH: usize = 32;

/// Whether the request says its body is JSON (`application/json` or any
/// `+json` type).
pub fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.rsplit_once('+').is_some_and(|(main, suffix)| {
            main.to_ascii_lowercase().starts_with("application/")
                && suffix.eq_ignore_ascii_case("json")
        })
}

/// The deepest nesting of `[`/`{` in `body`, stopping as soon as `limit` is
/// passed. Brackets inside strings do not count.
pub fn depth_exceeds(body: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Checks the media type and the nesting, then deserializes.
pub fn parse<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
    max_depth: usize,
) -> Result<T, ApiError> {
    if !is_json(headers) {
        return Err(ApiError::UnsupportedMediaType(
            "the body must be application/json".into(),
        ));
    }
    parse_bytes(body, max_depth)
}

/// [`parse`] without the media type check.
pub fn parse_bytes<T: DeserializeOwned>(body: &[u8], max_depth: usize) -> Result<T, ApiError> {
    if depth_exceeds(body, max_depth) {
        return Err(ApiError::Unprocessable(format!(
            "the body nests arrays and objects deeper than {max_depth} levels"
        )));
    }
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::Unprocessable(e.to_string()),
        _ => ApiError::BadRequest(format!("the body is not valid JSON: {e}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn json_headers(ct: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        h
    }

    #[test]
    fn json_media_types() {
        assert!(is_json(&json_headers("application/json")));
        assert!(is_json(&json_headers("Application/JSON; charset=utf-8")));
        assert!(is_json(&json_headers("application/cloudevents+json")));
        assert!(!is_json(&json_headers("text/plain")));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn depth_counts_brackets_outside_strings_only() {
        assert!(!depth_exceeds(br#"{"a":[1,{"b":2}]}"#, 3));
        assert!(depth_exceeds(br#"{"a":[1,{"b":[]}]}"#, 3));
        assert!(!depth_exceeds(br#"{"a":"[[[[[[[[\"[[[["}"#, 1));
        let deep = "[".repeat(10_000);
        assert!(depth_exceeds(deep.as_bytes(), DEFAULT_MAX_DEPTH));
    }

    #[test]
    fn errors_by_kind() {
        let h = json_headers("application/json");
        let e = parse::<serde_json::Value>(&h, b"{", 8).expect_err("syntax");
        assert_eq!(e.status(), 400);
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct S {
            a: u8,
        }
        let e = parse::<S>(&h, br#"{"a":"x"}"#, 8).expect_err("data");
        assert_eq!(e.status(), 422);
        let e = parse::<S>(&json_headers("text/plain"), br#"{"a":1}"#, 8).expect_err("type");
        assert_eq!(e.status(), 415);
        let e = parse::<serde_json::Value>(&h, "[".repeat(50).as_bytes(), 8).expect_err("deep");
        assert_eq!(e.status(), 422);
    }
}
