//! Failure bodies shaped like the API server's `metav1.Status`.
//!
//! The messages, reasons and `details` follow what apimachinery's
//! `k8s.io/apimachinery/pkg/api/errors` constructors produce, because clients
//! (kube's `Status::is_not_found`, retry policies, people reading logs) key
//! off exactly these.

use serde_json::{json, Map, Value};

use super::resources::ResourceType;

/// One entry of `details.causes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

impl Cause {
    /// `FieldValueInvalid`: the value at `field` breaks a syntax or rule.
    pub fn invalid(field: impl Into<String>, value: &str, detail: &str) -> Self {
        Self {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {}: {detail}", quote(value)),
            field: field.into(),
        }
    }

    /// `FieldValueRequired`.
    pub fn required(field: impl Into<String>, detail: &str) -> Self {
        let message = if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        };
        Self {
            reason: "FieldValueRequired".into(),
            message,
            field: field.into(),
        }
    }

    /// `FieldValueForbidden`.
    pub fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        Self {
            reason: "FieldValueForbidden".into(),
            message: format!("Forbidden: {detail}"),
            field: field.into(),
        }
    }

    /// `FieldValueNotSupported`: the value is not one of `allowed`.
    pub fn not_supported(field: impl Into<String>, value: &str, allowed: &[&str]) -> Self {
        let list: Vec<String> = allowed.iter().map(|a| quote(a)).collect();
        Self {
            reason: "FieldValueNotSupported".into(),
            message: format!(
                "Unsupported value: {}: supported values: {}",
                quote(value),
                list.join(", ")
            ),
            field: field.into(),
        }
    }

    /// `FieldValueTooLong`.
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        Self {
            reason: "FieldValueTooLong".into(),
            message: format!("Too long: may not be more than {max} bytes"),
            field: field.into(),
        }
    }

    /// The `field: message` form used inside an Invalid message.
    fn line(&self) -> String {
        if self.field.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.field, self.message)
        }
    }
}

/// Go's `%q` for the strings we print: double quotes, escaped quotes and
/// backslashes.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A failed request, answered with a `Status` body and its HTTP code.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    /// `details`, already shaped (name, group, kind, causes, retryAfterSeconds).
    pub details: Option<Box<Value>>,
    /// Sent as the `Retry-After` header too.
    pub retry_after: Option<u64>,
    /// Response headers beyond the usual ones (e.g. `Warning`).
    pub warnings: Vec<String>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

fn details(name: &str, res: &ResourceType, kind: &str) -> Map<String, Value> {
    let mut d = Map::new();
    if !name.is_empty() {
        d.insert("name".into(), json!(name));
    }
    if !res.group.is_empty() {
        d.insert("group".into(), json!(res.group));
    }
    d.insert("kind".into(), json!(kind));
    d
}

impl ApiError {
    fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
            message: message.into(),
            details: None,
            retry_after: None,
            warnings: Vec::new(),
        }
    }

    /// 404 for an object that does not exist.
    pub fn not_found(res: &ResourceType, name: &str) -> Self {
        let mut e = Self::new(
            404,
            "NotFound",
            format!("{} {} not found", res.qualified(), quote(name)),
        );
        e.details = Some(Box::new(Value::Object(details(name, res, res.plural))));
        e
    }

    /// 404 for a path that names no resource.
    pub fn no_route() -> Self {
        let mut e = Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
        e.details = Some(Box::new(json!({})));
        e
    }

    /// 409 for a create whose name is taken.
    pub fn already_exists(res: &ResourceType, name: &str) -> Self {
        let mut e = Self::new(
            409,
            "AlreadyExists",
            format!("{} {} already exists", res.qualified(), quote(name)),
        );
        e.details = Some(Box::new(Value::Object(details(name, res, res.plural))));
        e
    }

    /// 409 for a write based on a stale resourceVersion or failed precondition.
    pub fn conflict(res: &ResourceType, name: &str, why: &str) -> Self {
        let mut e = Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {}: {why}",
                res.qualified(),
                quote(name)
            ),
        );
        e.details = Some(Box::new(Value::Object(details(name, res, res.plural))));
        e
    }

    /// The usual optimistic-concurrency conflict.
    pub fn stale(res: &ResourceType, name: &str) -> Self {
        Self::conflict(
            res,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 from server-side apply: fields owned by other managers.
    pub fn apply_conflicts(conflicts: &[(String, String)]) -> Self {
        // (manager description, field path)
        let message = match conflicts {
            [(manager, field)] => {
                format!("Apply failed with 1 conflict: conflict with {manager}: {field}")
            }
            _ => {
                let mut by_manager: Vec<(&str, Vec<&str>)> = Vec::new();
                for (m, f) in conflicts {
                    match by_manager.iter_mut().find(|(bm, _)| *bm == m.as_str()) {
                        Some((_, fields)) => fields.push(f),
                        None => by_manager.push((m, vec![f])),
                    }
                }
                let mut msg = format!("Apply failed with {} conflicts: ", conflicts.len());
                let parts: Vec<String> = by_manager
                    .iter()
                    .map(|(m, fields)| {
                        let mut s = format!("conflicts with {m}:");
                        for f in fields {
                            s.push_str(&format!("\n- {f}"));
                        }
                        s
                    })
                    .collect();
                msg.push_str(&parts.join("\n"));
                msg
            }
        };
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(m, f)| {
                json!({"reason": "FieldManagerConflict", "message": format!("conflict with {m}"), "field": f})
            })
            .collect();
        let mut e = Self::new(409, "Conflict", message);
        e.details = Some(Box::new(json!({ "causes": causes })));
        e
    }

    /// 422 with field causes.
    pub fn invalid(res: &ResourceType, name: &str, causes: Vec<Cause>) -> Self {
        let lines: Vec<String> = causes.iter().map(Cause::line).collect();
        let what = if lines.len() == 1 {
            lines[0].clone()
        } else {
            format!("[{}]", lines.join(", "))
        };
        let mut e = Self::new(
            422,
            "Invalid",
            format!(
                "{} {} is invalid: {what}",
                res.qualified_kind(),
                quote(name)
            ),
        );
        let mut d = details(name, res, res.kind);
        d.insert(
            "causes".into(),
            Value::Array(
                causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect(),
            ),
        );
        e.details = Some(Box::new(Value::Object(d)));
        e
    }

    /// 422 about request parameters rather than an object (e.g. a watch
    /// with `sendInitialEvents` but no bookmarks).
    pub fn invalid_params(kind: &str, causes: Vec<Cause>) -> Self {
        let lines: Vec<String> = causes.iter().map(Cause::line).collect();
        let what = if lines.len() == 1 {
            lines[0].clone()
        } else {
            format!("[{}]", lines.join(", "))
        };
        let mut e = Self::new(
            422,
            "Invalid",
            format!("{kind} {} is invalid: {what}", quote("")),
        );
        e.details = Some(Box::new(json!({
            "kind": kind,
            "causes": causes.iter().map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field})).collect::<Vec<_>>(),
        })));
        e
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 401 for a missing or wrong bearer token.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403.
    pub fn forbidden(res: &ResourceType, name: &str, why: &str) -> Self {
        let target = if name.is_empty() {
            res.qualified()
        } else {
            format!("{} {}", res.qualified(), quote(name))
        };
        let mut e = Self::new(403, "Forbidden", format!("{target} is forbidden: {why}"));
        e.details = Some(Box::new(Value::Object(details(name, res, res.plural))));
        e
    }

    /// 405.
    pub fn method_not_allowed() -> Self {
        let mut e = Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        );
        e.details = Some(Box::new(json!({})));
        e
    }

    /// 406 for an `Accept` we cannot serve.
    pub fn not_acceptable(accept: &str) -> Self {
        Self::new(
            406,
            "NotAcceptable",
            format!("only the following media types are accepted: application/json, application/yaml, application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1, application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1 (got {accept})"),
        )
    }

    /// 410 Expired: a resourceVersion or continue token older than the
    /// retained history.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 415 for a patch type the resource does not take.
    pub fn unsupported_media_type(content_type: &str, accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {} (got {})",
                accepted.join(", "),
                if content_type.is_empty() { "none" } else { content_type }
            ),
        )
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        );
        e.details = Some(Box::new(json!({ "retryAfterSeconds": retry_after_secs })));
        e.retry_after = Some(retry_after_secs);
        e
    }

    /// 500.
    pub fn internal(message: &str) -> Self {
        let mut e = Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        );
        e.details = Some(Box::new(json!({ "causes": [{ "message": message }] })));
        e
    }

    /// 503.
    pub fn unavailable(message: &str) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// 504 for a resourceVersion the server has not reached.
    pub fn too_large_resource_version(asked: u64, current: u64) -> Self {
        let mut e = Self::new(
            504,
            "Timeout",
            format!("Too large resource version: {asked}, current: {current}"),
        );
        e.details = Some(Box::new(json!({
            "causes": [{ "reason": "ResourceVersionTooLarge", "message": "Too large resource version" }],
            "retryAfterSeconds": 1,
        })));
        e
    }

    /// Any other code, with the reason the API server pairs with it.
    pub fn other(code: u16, message: &str) -> Self {
        let reason = match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            405 => "MethodNotAllowed",
            409 => "Conflict",
            410 => "Expired",
            415 => "UnsupportedMediaType",
            422 => "Invalid",
            429 => "TooManyRequests",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            c if c >= 500 => "InternalError",
            _ => "BadRequest",
        };
        Self::new(code, reason, message)
    }

    /// Adds a `Warning` header to the failure.
    pub fn with_warnings(mut self, warnings: Vec<String>) -> Self {
        self.warnings = warnings;
        self
    }

    /// The `Status` body.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let (Some(d), Some(obj)) = (&self.details, s.as_object_mut()) {
            obj.insert("details".into(), (**d).clone());
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube_api::resources;

    #[test]
    fn not_found_matches_the_api_server_shape() {
        let pods = resources::lookup("pods").expect("pods are served");
        let body = ApiError::not_found(pods, "x").to_status();
        assert_eq!(
            body,
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                   "message":"pods \"x\" not found","reason":"NotFound",
                   "details":{"name":"x","kind":"pods"},"code":404})
        );
    }

    #[test]
    fn grouped_resources_are_qualified_in_messages_and_details() {
        let np = resources::lookup("networkpolicies.networking.k8s.io").expect("served");
        let body = ApiError::already_exists(np, "deny").to_status();
        assert_eq!(
            body["message"],
            "networkpolicies.networking.k8s.io \"deny\" already exists"
        );
        assert_eq!(body["details"]["group"], "networking.k8s.io");
        assert_eq!(body["code"], 409);
    }

    #[test]
    fn invalid_names_the_kind_and_every_cause() {
        let pods = resources::lookup("pods").expect("served");
        let e = ApiError::invalid(
            pods,
            "p",
            vec![
                Cause::invalid("metadata.labels", "a b", "bad"),
                Cause::required("spec.containers", ""),
            ],
        );
        let body = e.to_status();
        assert_eq!(
            body["message"],
            "Pod \"p\" is invalid: [metadata.labels: Invalid value: \"a b\": bad, spec.containers: Required value]"
        );
        assert_eq!(body["details"]["kind"], "Pod");
        assert_eq!(body["details"]["causes"][1]["reason"], "FieldValueRequired");
        assert_eq!(body["code"], 422);
    }

    #[test]
    fn apply_conflict_lists_manager_and_field() {
        let e = ApiError::apply_conflicts(&[("\"other\"".into(), ".metadata.labels.team".into())]);
        assert_eq!(
            e.message,
            "Apply failed with 1 conflict: conflict with \"other\": .metadata.labels.team"
        );
        assert_eq!(
            e.to_status()["details"]["causes"][0]["reason"],
            "FieldManagerConflict"
        );
    }

    #[test]
    fn too_many_requests_carries_retry_after() {
        let e = ApiError::too_many_requests(3);
        assert_eq!(e.retry_after, Some(3));
        assert_eq!(e.to_status()["details"]["retryAfterSeconds"], 3);
    }
}
