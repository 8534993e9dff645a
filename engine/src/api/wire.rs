//! What goes over the wire: the query strings, bodies and answers of the
//! API routes, shared by the handlers (which read queries and bodies and
//! write answers) and by the `riposte` client (which writes queries and
//! bodies and reads answers). One type for both sides, so the client cannot
//! drift from the server; `api::tests` checks the OpenAPI document against
//! these types by sending every documented parameter.
//!
//! Queries and bodies refuse unknown fields on the server, and leave unset
//! options out when the client writes them.

use serde::{Deserialize, Serialize};

pub use crate::act::approvals::Approval;
pub use crate::decide::decision::{Decision, Mode};
pub use crate::decide::intent::{Action, Intent, Ttl};
pub use crate::decide::playbook::{PlaybookInfo, ReloadReport};
pub use crate::store::{AuditEntry, OutboxItem, OutboxPage, OutboxStatus, TargetState};
pub use riposte_connectors::kubernetes::QuarantineState;

/// `GET /v1/decisions` query.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionsQuery {
    /// At most this many (default 100, at most 1000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub playbook: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
}

/// One entry of `GET /v1/decisions`: a decision and the identical ones it
/// stands for. As in the audit trail, identical decisions (same playbook,
/// mode, outcome and intents) within the coalescing window of the first
/// (`[store] coalesce_window_secs`) are one entry: the first decision whole,
/// `count`, when the last one was made and a sample of their event ids.
/// Counted among the decisions this replica still holds in memory; the
/// audit trail has the counts of every event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecisionEntry {
    #[serde(flatten)]
    pub decision: Decision,
    /// Decisions this entry stands for (1 when it stands alone).
    #[serde(default = "one")]
    pub count: u64,
    /// When the last of them was made (`at` is the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Their first event ids (at most `[store] coalesce_sample`); empty
    /// when it stands alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample: Vec<String>,
}

fn one() -> u64 {
    1
}

/// `POST /v1/actions` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// Intents as playbooks write them (`action_id` is ignored: the server
    /// derives it).
    pub intents: Vec<Intent>,
    /// Judge and record, apply nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Why, for the audit trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Whether an action request has finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestStatus {
    /// No action is still queued.
    Done,
    InProgress,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Done => "done",
            RequestStatus::InProgress => "in-progress",
        }
    }
}

/// The answer of `POST /v1/actions`, `GET /v1/actions/{id}` and
/// `DELETE /v1/quarantines/{namespace}/{pod}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionResult {
    pub id: String,
    pub status: RequestStatus,
    pub decision: Decision,
}

/// `GET /v1/quarantines` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuarantineList {
    /// Whether a cluster is configured at all.
    pub cluster: bool,
    pub quarantines: Vec<QuarantineState>,
}

/// `GET /v1/audit` query. Times are RFC 3339; `limit` is read as text so
/// that a bad one gets the route's own message.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub playbook: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `GET /v1/audit` answer: newest first; `next_cursor` when more remain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `POST /v1/playbooks/{name}/dry-run` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DryRun {
    /// Whether the playbook's trigger matches the event.
    pub matched: bool,
    /// What the playbook decided (absent when the trigger did not match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

/// `GET /v1/approvals` query.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsQuery {
    /// `pending` (default) or `all`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// `GET /v1/outbox` query.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxQuery {
    /// `pending`, `delivered` or `dead`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<OutboxStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `GET /v1/outbox` answer: one page, newest first, and the targets' states.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxResponse {
    #[serde(flatten)]
    pub page: OutboxPage,
    /// Targets disabled (or re-enabled) at some point.
    pub targets: Vec<TargetState>,
}

/// `POST /v1/edl/{list}` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdlAdd {
    pub value: String,
    pub ttl: Ttl,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `POST /v1/edl/{list}` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EdlAdded {
    pub list: String,
    /// The value as the list holds it (canonical form).
    pub value: String,
    pub ttl: Ttl,
    pub detail: String,
}

/// `DELETE /v1/edl/{list}/{value}` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EdlRemoved {
    pub detail: String,
}

/// A refusal: an RFC 7807 problem document (the members every refusal has).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Problem {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub status: u16,
    #[serde(default)]
    pub detail: String,
}
