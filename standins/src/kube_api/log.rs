//! The request log: what clients sent and what they got back.

use std::collections::{BTreeMap, VecDeque};
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

/// Requests since start (or the last clear), in arrival order; the oldest
/// are forgotten past the capacity, so long runs keep bounded memory.
#[derive(Debug)]
pub struct RequestLog {
    records: Mutex<VecDeque<RequestRecord>>,
    capacity: usize,
    /// Whether request bodies are kept.
    bodies: bool,
}

impl Default for RequestLog {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY, true)
    }
}

/// Requests remembered by default.
pub const DEFAULT_CAPACITY: usize = 100_000;

impl RequestLog {
    pub fn new(capacity: usize, bodies: bool) -> Self {
        Self {
            records: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            bodies,
        }
    }

    pub fn push(&self, mut r: RequestRecord) {
        if !self.bodies {
            r.body = None;
        }
        let mut records = self.lock();
        if records.len() == self.capacity {
            records.pop_front();
        }
        records.push_back(r);
    }

    pub fn all(&self) -> Vec<RequestRecord> {
        self.lock().iter().cloned().collect()
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<RequestRecord>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str) -> RequestRecord {
        RequestRecord {
            method: "PATCH".into(),
            verb: "patch".into(),
            path: path.into(),
            query: String::new(),
            params: BTreeMap::new(),
            content_type: Some("application/apply-patch+yaml".into()),
            user_agent: None,
            field_manager: Some("riposte".into()),
            force: false,
            body: Some(serde_json::json!({"a": 1})),
            status: 200,
            reason: None,
        }
    }

    #[test]
    fn the_log_is_bounded_and_can_drop_bodies() {
        let log = RequestLog::new(2, false);
        for p in ["/a", "/b", "/c"] {
            log.push(record(p));
        }
        let all = log.all();
        assert_eq!(
            all.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
            ["/b", "/c"]
        );
        assert!(all[0].body.is_none());
        assert!(all[0].is_apply_by("riposte"));
    }
}
