//! The request log: what clients sent and what they got back.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::Value;

/// One request as the stand-in saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Kubernetes verb: get, list, watch, create, update, patch, delete,
    /// deletecollection; empty for discovery and unknown paths.
    pub verb: String,
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// The query, decoded.
    pub params: BTreeMap<String, String>,
    pub content_type: Option<String>,
    pub user_agent: Option<String>,
    /// `fieldManager` query parameter.
    pub field_manager: Option<String>,
    /// `force=true` on an apply.
    pub force: bool,
    /// The body, parsed (JSON, or YAML for apply), when there is one.
    pub body: Option<Value>,
    /// The response status (200 for a watch that started streaming).
    pub status: u16,
    /// Status `reason` of a failed request.
    pub reason: Option<String>,
}

impl RequestRecord {
    /// Whether this was a server-side apply by `manager`.
    pub fn is_apply_by(&self, manager: &str) -> bool {
        self.verb == "patch"
            && self
                .content_type
                .as_deref()
                .is_some_and(|c| c.starts_with("application/apply-patch+yaml"))
            && self.field_manager.as_deref() == Some(manager)
    }

    /// The query parameter `key`.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }
}

/// Every request since start (or the last clear), in arrival order.
#[derive(Debug, Default)]
pub struct RequestLog {
    records: Mutex<Vec<RequestRecord>>,
}

impl RequestLog {
    pub fn push(&self, r: RequestRecord) {
        self.lock().push(r);
    }

    pub fn all(&self) -> Vec<RequestRecord> {
        self.lock().clone()
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RequestRecord>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }
}
