//! Intents waiting for a human's approval.
//!
//! Deciding is atomic and single-use: one conditional update moves a pending,
//! unexpired approval to approved or denied, so of two concurrent calls (two
//! clicks, two replicas) exactly one wins. Expired pending approvals are
//! taken by [`Store::approvals_take_expired`], which marks them timed out in
//! the same statement, so one replica applies each playbook default.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{
    from_micros, micros, opt_from_micros, page_limit, with_reader, with_writer, RowExt, Store,
    StoreError,
};

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApprovalState {
    Pending,
    Approved,
    Denied,
    /// Nobody decided in time; the playbook's default was taken.
    TimedOut,
}

impl ApprovalState {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Denied => "denied",
            ApprovalState::TimedOut => "timed-out",
        }
    }

    pub fn parse(s: &str) -> Option<ApprovalState> {
        match s {
            "pending" => Some(ApprovalState::Pending),
            "approved" => Some(ApprovalState::Approved),
            "denied" => Some(ApprovalState::Denied),
            "timed-out" => Some(ApprovalState::TimedOut),
            _ => None,
        }
    }
}

/// What happens to the intent when nobody decides in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnTimeout {
    Apply,
    Drop,
}

impl OnTimeout {
    pub fn as_str(self) -> &'static str {
        match self {
            OnTimeout::Apply => "apply",
            OnTimeout::Drop => "drop",
        }
    }
}

/// A human's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Approve,
    Deny,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Deny => "deny",
        }
    }
}

/// An approval request to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApproval {
    pub id: String,
    /// The intent to carry out when approved (its JSON).
    pub intent: serde_json::Value,
    pub event_id: String,
    pub playbook: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub on_timeout: OnTimeout,
    /// What the request was about beyond the intent (event summary,
    /// approvers, reason), as the engine describes it.
    pub context: Option<serde_json::Value>,
}

/// A stored approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub id: String,
    pub intent: serde_json::Value,
    pub event_id: String,
    pub playbook: String,
    pub state: ApprovalState,
    pub on_timeout: OnTimeout,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
}

/// Why [`Store::approval_decide`] did not decide.
#[derive(Debug, Error)]
pub enum DecideError {
    #[error("no approval {0}")]
    NotFound(String),
    /// Someone (or the timeout) decided first.
    #[error("approval already {}", .0.as_str())]
    AlreadyDecided(ApprovalState),
    /// Past its expiry; the timeout processing takes it.
    #[error("approval expired")]
    Expired,
    #[error(transparent)]
    Store(#[from] StoreError),
}

const COLUMNS: &str = "id, intent, event_id, playbook, state, on_timeout, created_at, expires_at, \
     decided_by, decided_at, context";

fn approval_from<R: RowExt>(row: &R) -> Result<Approval, StoreError> {
    let state = row.text("state")?;
    let on_timeout = row.text("on_timeout")?;
    Ok(Approval {
        id: row.text("id")?,
        intent: serde_json::from_str(&row.text("intent")?)?,
        event_id: row.text("event_id")?,
        playbook: row.text("playbook")?,
        state: ApprovalState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown approval state `{state}`")))?,
        on_timeout: match on_timeout.as_str() {
            "apply" => OnTimeout::Apply,
            "drop" => OnTimeout::Drop,
            other => return Err(StoreError::Corrupt(format!("unknown on_timeout `{other}`"))),
        },
        created_at: from_micros(row.int("created_at")?),
        expires_at: from_micros(row.int("expires_at")?),
        decided_by: row.opt_text("decided_by")?,
        decided_at: opt_from_micros(row.opt_int("decided_at")?),
        context: row
            .opt_text("context")?
            .map(|c| serde_json::from_str(&c))
            .transpose()?,
    })
}

impl Store {
    /// Stores a pending approval. [`StoreError::Conflict`] when the id is
    /// taken.
    pub async fn approval_create(&self, a: &NewApproval) -> Result<Approval, StoreError> {
        let intent = serde_json::to_string(&a.intent)
            .map_err(|e| StoreError::Invalid(format!("intent: {e}")))?;
        let context = a
            .context
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Invalid(format!("context: {e}")))?;
        self.run("approval_create", async {
            with_writer!(self, pool => {
                let row = sqlx::query(&format!(
                    "INSERT INTO approvals (id, intent, event_id, playbook, state, on_timeout, \
                     created_at, expires_at, context) \
                     VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8) \
                     ON CONFLICT (id) DO NOTHING RETURNING {COLUMNS}"
                ))
                .bind(&a.id)
                .bind(&intent)
                .bind(&a.event_id)
                .bind(&a.playbook)
                .bind(a.on_timeout.as_str())
                .bind(micros(a.created_at))
                .bind(micros(a.expires_at))
                .bind(context.as_deref())
                .fetch_optional(pool)
                .await?;
                match row {
                    Some(row) => approval_from(&row),
                    None => Err(StoreError::Conflict(format!("approval {} exists", a.id))),
                }
            })
        })
        .await
    }

    /// Decides a pending, unexpired approval, once: the first caller wins,
    /// later ones get [`DecideError::AlreadyDecided`].
    pub async fn approval_decide(
        &self,
        id: &str,
        verdict: Verdict,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Approval, DecideError> {
        let state = match verdict {
            Verdict::Approve => ApprovalState::Approved,
            Verdict::Deny => ApprovalState::Denied,
        };
        let row = self
            .run("approval_decide", async {
                with_writer!(self, pool => {
                    let row = sqlx::query(&format!(
                        "UPDATE approvals SET state = $2, decided_by = $3, decided_at = $4 \
                         WHERE id = $1 AND state = 'pending' AND expires_at > $4 RETURNING {COLUMNS}"
                    ))
                    .bind(id)
                    .bind(state.as_str())
                    .bind(by)
                    .bind(micros(now))
                    .fetch_optional(pool)
                    .await?;
                    row.as_ref().map(approval_from).transpose()
                })
            })
            .await?;
        if let Some(approval) = row {
            return Ok(approval);
        }
        match self.approval_get(id).await? {
            None => Err(DecideError::NotFound(id.to_owned())),
            Some(a) if a.state == ApprovalState::Pending => Err(DecideError::Expired),
            Some(a) => Err(DecideError::AlreadyDecided(a.state)),
        }
    }

    pub async fn approval_get(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        self.run("approval_get", async {
            with_reader!(self, pool => {
                let row = sqlx::query(&format!("SELECT {COLUMNS} FROM approvals WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(pool)
                    .await?;
                row.as_ref().map(approval_from).transpose()
            })
        })
        .await
    }

    /// Approvals in `state` (or all), newest first, at most `limit`.
    pub async fn approvals_list(
        &self,
        state: Option<ApprovalState>,
        limit: usize,
    ) -> Result<Vec<Approval>, StoreError> {
        self.run("approvals_list", async {
            with_reader!(self, pool => {
                let rows = match state {
                    Some(s) => sqlx::query(&format!(
                        "SELECT {COLUMNS} FROM approvals WHERE state = $1 \
                         ORDER BY created_at DESC, id DESC LIMIT $2"
                    ))
                    .bind(s.as_str())
                    .bind(page_limit(limit))
                    .fetch_all(pool)
                    .await?,
                    None => sqlx::query(&format!(
                        "SELECT {COLUMNS} FROM approvals ORDER BY created_at DESC, id DESC LIMIT $1"
                    ))
                    .bind(page_limit(limit))
                    .fetch_all(pool)
                    .await?,
                };
                rows.iter().map(approval_from).collect()
            })
        })
        .await
    }

    /// Takes up to `limit` pending approvals expired at `now`, marking them
    /// timed out in the same statement: each is returned to one caller only.
    /// The caller applies or drops the intent per `on_timeout`.
    pub async fn approvals_take_expired(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Approval>, StoreError> {
        let pick = format!(
            "SELECT id FROM approvals WHERE state = 'pending' AND expires_at <= $1 \
             ORDER BY expires_at LIMIT $2{}",
            self.skip_locked()
        );
        let sql =
            if self.is_postgres() {
                format!(
                "WITH picked AS MATERIALIZED ({pick}) UPDATE approvals a SET state = 'timed-out', \
                 decided_at = $1 FROM picked WHERE a.id = picked.id RETURNING {}",
                COLUMNS.split(", ").map(|c| format!("a.{c}")).collect::<Vec<_>>().join(", ")
            )
            } else {
                format!(
                "UPDATE approvals SET state = 'timed-out', decided_at = $1 WHERE id IN ({pick}) \
                 RETURNING {COLUMNS}"
            )
            };
        self.run("approvals_take_expired", async {
            with_writer!(self, pool => {
                let rows = sqlx::query(&sql)
                    .bind(micros(now))
                    .bind(page_limit(limit))
                    .fetch_all(pool)
                    .await?;
                rows.iter().map(approval_from).collect()
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;
    use chrono::Duration;

    fn new(id: &str, now: DateTime<Utc>, ttl_secs: i64) -> NewApproval {
        NewApproval {
            id: id.into(),
            intent: serde_json::json!({"action": "quarantine"}),
            event_id: "ev1".into(),
            playbook: "c2".into(),
            created_at: now,
            expires_at: now + Duration::seconds(ttl_secs),
            on_timeout: OnTimeout::Drop,
            context: Some(serde_json::json!({"reason": "test"})),
        }
    }

    #[tokio::test]
    async fn decide_once_then_refuse() {
        let (store, _dir) = testing::sqlite().await;
        let now = Utc::now();
        store
            .approval_create(&new("a1", now, 60))
            .await
            .expect("create");
        assert!(matches!(
            store.approval_create(&new("a1", now, 60)).await,
            Err(StoreError::Conflict(_))
        ));
        let a = store
            .approval_decide("a1", Verdict::Approve, "alice", now)
            .await
            .expect("decide");
        assert_eq!(a.state, ApprovalState::Approved);
        assert_eq!(a.decided_by.as_deref(), Some("alice"));
        assert!(matches!(
            store.approval_decide("a1", Verdict::Deny, "bob", now).await,
            Err(DecideError::AlreadyDecided(ApprovalState::Approved))
        ));
        assert!(matches!(
            store.approval_decide("zz", Verdict::Deny, "bob", now).await,
            Err(DecideError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn expired_ones_time_out_once() {
        let (store, _dir) = testing::sqlite().await;
        let now = Utc::now();
        store
            .approval_create(&new("a1", now, 10))
            .await
            .expect("create");
        store
            .approval_create(&new("a2", now, 100))
            .await
            .expect("create");
        let later = now + Duration::seconds(11);
        assert!(matches!(
            store
                .approval_decide("a1", Verdict::Approve, "alice", later)
                .await,
            Err(DecideError::Expired)
        ));
        let taken = store.approvals_take_expired(later, 10).await.expect("take");
        assert_eq!(taken.len(), 1);
        assert_eq!(
            (taken[0].id.as_str(), taken[0].state),
            ("a1", ApprovalState::TimedOut)
        );
        assert!(store
            .approvals_take_expired(later, 10)
            .await
            .expect("take")
            .is_empty());
        let pending = store
            .approvals_list(Some(ApprovalState::Pending), 10)
            .await
            .expect("list");
        assert_eq!(pending.len(), 1);
        assert_eq!(store.approvals_list(None, 10).await.expect("list").len(), 2);
    }
}
