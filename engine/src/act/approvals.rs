//! Approvals: intents a playbook wants a human to confirm.
//!
//! A playbook wraps an intent with `approve(intent, #{ timeout, default })`.
//! The dispatcher stores an [`Approval`] instead of acting; a person (or the
//! SOAR on their behalf) decides through `POST /v1/approvals/{id}/approve`
//! or `/deny`, with an `act` token or with one of the signed links the
//! approval carries. A decision is taken once: the store refuses a second.
//! When the deadline passes first, the playbook's default ("apply" or
//! "drop") is taken and recorded like any other decision.
//!
//! Links are capabilities. Their token is an HMAC-SHA256 under the server's
//! approval secret over the approval id, the verdict and the approval's
//! deadline, so a link cannot be forged, bent to the other verdict or to
//! another approval, or used after the deadline; it works once, because the
//! approval it decides is decided once. The token is never stored: the
//! approval and the outbox hold the link without it, and the outbox worker
//! signs it into the notification at send time ([`LinkSigner`]). So neither
//! an API answer nor a reader of the database sees a usable link.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use crate::api::store::{ApiStore, DecideError, StoreUnavailable};
use crate::config::secret::Secret;
use crate::decide::decision::{
    ActionRecord, ActionStatus, Decision, DecisionLog, Dispatcher, EventSummary, Mode, Outcome,
    Timings,
};
use crate::decide::intent::{Action, ApprovalDefault, Intent};

pub use crate::store::{ApprovalState, Verdict};

/// One intent awaiting (or past) a human decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// The `approve` intent's action id: stable for the event and playbook.
    pub id: String,
    pub event_id: String,
    pub event: EventSummary,
    pub playbook: String,
    /// The intent to carry out once approved.
    pub intent: Intent,
    pub default: ApprovalDefault,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub state: ApprovalState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
    /// The links for the notification, without their token (the outbox
    /// worker signs them at send time); absent once decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approve_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_url: Option<String>,
}

impl Approval {
    /// Whether the intent is carried out after this decision.
    pub fn applies(&self) -> bool {
        match self.state {
            ApprovalState::Approved => true,
            ApprovalState::TimedOut => self.default == ApprovalDefault::Apply,
            ApprovalState::Denied | ApprovalState::Pending => false,
        }
    }
}

/// Makes approvals, checks their links, carries out decisions.
#[derive(Debug)]
pub struct Approvals {
    store: Arc<dyn ApiStore>,
    signer: LinkSigner,
    /// Prefix of the links (`https://riposte.example.com`).
    public_url: String,
}

/// Signs and checks approval links. Held by the API (to check) and the
/// outbox worker (to sign at send time), never by anything that stores.
#[derive(Debug, Clone)]
pub struct LinkSigner {
    secret: Secret,
}

impl LinkSigner {
    pub fn new(secret: Secret) -> LinkSigner {
        LinkSigner { secret }
    }

    fn mac(&self, id: &str, verdict: Verdict, expires: i64) -> Hmac<Sha256> {
        let mut mac = hmac_sha256(self.secret.expose());
        mac.update(id.as_bytes());
        mac.update(b"\n");
        mac.update(verdict.as_str().as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// The token of the link deciding `id` with `verdict`, valid until
    /// `expires` (Unix seconds).
    pub fn token(&self, id: &str, verdict: Verdict, expires: i64) -> String {
        hex(&self.mac(id, verdict, expires).finalize().into_bytes())
    }

    /// Checks a token in constant time (the MAC comparison is).
    pub fn verify(&self, id: &str, verdict: Verdict, expires: i64, token: &str) -> bool {
        let Some(sig) = unhex(token) else {
            return false;
        };
        self.mac(id, verdict, expires).verify_slice(&sig).is_ok()
    }

    /// Signs the approval links of a notification about to be sent: each
    /// stored link (without token) gets its token, in the approval and in
    /// the analyst links. Links already carrying a token are left alone.
    pub fn sign_notification(&self, n: &mut riposte_connectors::soar::Notification) {
        let mut signed: Vec<(String, String)> = Vec::new();
        for a in &mut n.approvals {
            let expires = a.expires_at.timestamp();
            for (verdict, url) in [
                (Verdict::Approve, &mut a.approve_url),
                (Verdict::Deny, &mut a.deny_url),
            ] {
                if url.contains("token=") {
                    continue;
                }
                let full = format!("{url}&token={}", self.token(&a.id, verdict, expires));
                signed.push((url.clone(), full.clone()));
                *url = full;
            }
        }
        for link in &mut n.links {
            if let Some((_, full)) = signed.iter().find(|(bare, _)| *bare == link.url) {
                link.url = full.clone();
            }
        }
    }
}

/// Removes link tokens (`&token=…`) from every string of a stored
/// notification: what the API shows, and what an older version stored.
/// Returns whether anything was removed.
pub fn strip_link_tokens(value: &mut serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => match strip_token(s) {
            Some(clean) => {
                *s = clean;
                true
            }
            None => false,
        },
        serde_json::Value::Array(items) => items
            .iter_mut()
            .fold(false, |acc, v| strip_link_tokens(v) | acc),
        serde_json::Value::Object(map) => map
            .values_mut()
            .fold(false, |acc, v| strip_link_tokens(v) | acc),
        _ => false,
    }
}

/// `s` without its `token=` query values (`None` when there is none).
fn strip_token(s: &str) -> Option<String> {
    if !s.contains("token=") {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("token=") {
        let starts_param = at == 0 || matches!(rest.as_bytes()[at - 1], b'?' | b'&');
        if !starts_param {
            out.push_str(&rest[..at + 6]);
            rest = &rest[at + 6..];
            continue;
        }
        // Drop the separator before it too, unless it opens the query.
        let keep = if at > 0 && rest.as_bytes()[at - 1] == b'&' {
            at - 1
        } else {
            at
        };
        out.push_str(&rest[..keep]);
        let value = &rest[at + 6..];
        let end = value
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '%' && c != '-' && c != '_')
            .unwrap_or(value.len());
        rest = &value[end..];
        if keep == at && rest.starts_with('&') {
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Some(out)
}

/// Why a decision was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    #[error("no such approval")]
    NotFound,
    #[error("approval already {}", .0.as_str())]
    AlreadyDecided(ApprovalState),
    /// Past its deadline; the timeout takes it.
    #[error("approval past its deadline")]
    Expired,
    #[error("bad approval token")]
    BadToken,
    #[error("{0}")]
    Store(StoreUnavailable),
}

/// Why the generated link key cannot be read or kept.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a hex key of 16 bytes or more", .0.display())]
    NotAKey(std::path::PathBuf),
}

impl Approvals {
    pub fn new(store: Arc<dyn ApiStore>, secret: Secret, public_url: &str) -> Approvals {
        Approvals {
            store,
            signer: LinkSigner::new(secret),
            public_url: public_url.trim_end_matches('/').to_owned(),
        }
    }

    /// What the outbox worker signs links with.
    pub fn signer(&self) -> &LinkSigner {
        &self.signer
    }

    pub fn store(&self) -> &Arc<dyn ApiStore> {
        &self.store
    }

    /// The link deciding `id` with `verdict`, valid until `expires`,
    /// without its token: what is stored. [`LinkSigner::sign_notification`]
    /// completes it when the notification is sent.
    pub fn unsigned_link(&self, id: &str, verdict: Verdict, expires: DateTime<Utc>) -> String {
        format!(
            "{}/v1/approvals/{id}/{}?expires={}",
            self.public_url,
            verdict.as_str(),
            expires.timestamp()
        )
    }

    /// The signed link deciding `id` with `verdict`, valid until `expires`.
    pub fn link(&self, id: &str, verdict: Verdict, expires: DateTime<Utc>) -> String {
        let ts = expires.timestamp();
        format!(
            "{}&token={}",
            self.unsigned_link(id, verdict, expires),
            self.signer.token(id, verdict, ts)
        )
    }

    /// Checks a link's token in constant time, and its expiry.
    pub fn verify_link(
        &self,
        id: &str,
        verdict: Verdict,
        expires: i64,
        token: &str,
        now: DateTime<Utc>,
    ) -> bool {
        if expires < now.timestamp() {
            return false;
        }
        self.signer.verify(id, verdict, expires, token)
    }

    /// Stores the approval an `approve` intent asks for, with its links.
    pub async fn create(
        &self,
        decision: &Decision,
        approve: &Intent,
        now: DateTime<Utc>,
    ) -> Result<Approval, ApprovalError> {
        let Action::Approve {
            intent,
            timeout,
            default,
            approvers,
            reason,
        } = &approve.action
        else {
            return Err(ApprovalError::NotFound);
        };
        let id = approve.action_id.clone();
        let expires_at = now + chrono::Duration::seconds(timeout.as_secs() as i64);
        let approval = Approval {
            id: id.clone(),
            event_id: decision.event_id.clone(),
            event: decision.event.clone(),
            playbook: decision.playbook.clone(),
            intent: Intent::new(&decision.event_id, &decision.playbook, (**intent).clone()),
            default: *default,
            approvers: approvers.clone(),
            reason: reason.clone(),
            created_at: now,
            expires_at,
            state: ApprovalState::Pending,
            decided_by: None,
            decided_at: None,
            approve_url: None,
            deny_url: None,
        };
        let mut stored = self
            .store
            .approval_create(approval)
            .await
            .map_err(ApprovalError::Store)?;
        // For the stored deadline: asked again for the same event, the
        // links still end when the first request does. Without their
        // token: they are stored in the outbox, and signed when sent.
        if stored.state == ApprovalState::Pending {
            stored.approve_url = Some(self.unsigned_link(&id, Verdict::Approve, stored.expires_at));
            stored.deny_url = Some(self.unsigned_link(&id, Verdict::Deny, stored.expires_at));
        }
        Ok(stored)
    }

    /// Decides once, records the decision on the original decision's
    /// `approve` action, and carries the intent out when it applies.
    pub async fn decide(
        &self,
        id: &str,
        verdict: Verdict,
        by: &str,
        log: &DecisionLog,
        dispatcher: &dyn Dispatcher,
    ) -> Result<Approval, ApprovalError> {
        let now = Utc::now();
        let approval = self
            .store
            .approval_decide(id, verdict, by, now)
            .await
            .map_err(|e| match e {
                DecideError::NotFound => ApprovalError::NotFound,
                DecideError::AlreadyDecided(s) => ApprovalError::AlreadyDecided(s),
                DecideError::Expired => ApprovalError::Expired,
                DecideError::Store(e) => ApprovalError::Store(e),
            })?;
        self.carry_out(approval, by, log, dispatcher, now).await
    }

    /// Records a decided approval on the original decision's `approve`
    /// action, and dispatches the intent when the decision applies it.
    async fn carry_out(
        &self,
        approval: Approval,
        by: &str,
        log: &DecisionLog,
        dispatcher: &dyn Dispatcher,
        now: DateTime<Utc>,
    ) -> Result<Approval, ApprovalError> {
        let applies = approval.applies();
        tracing::info!(
            event.id = %approval.event_id,
            playbook = %approval.playbook,
            approval = %approval.id,
            state = approval.state.as_str(),
            by,
            applies,
            "approval decided"
        );
        log.record_action(
            &approval.event_id,
            &approval.playbook,
            ActionRecord {
                action_id: approval.id.clone(),
                action: "approve".into(),
                target: approval.intent.action.target().map(|t| t.to_string()),
                status: if applies {
                    ActionStatus::Applied
                } else {
                    ActionStatus::Refused
                },
                reason: Some(match approval.state {
                    ApprovalState::TimedOut => format!(
                        "no decision in time: default `{}` taken",
                        approval.default.as_str()
                    ),
                    s => format!("{} by {by}", s.as_str()),
                }),
                code: Some(format!("approval_{}", approval.state.as_str())),
                attempts: 0,
                duration_us: 0,
                at: now,
            },
        );
        if applies {
            let decision = Decision {
                event_id: approval.event_id.clone(),
                event: approval.event.clone(),
                playbook: approval.playbook.clone(),
                mode: Mode::Enforce,
                intents: vec![approval.intent.clone()],
                outcome: Outcome::Decided,
                timings: Timings::default(),
                at: now,
                actions: Vec::new(),
            };
            dispatcher.dispatch(decision).await;
        }
        Ok(approval)
    }

    /// Takes the default of every approval past its deadline, every `every`,
    /// until shutdown.
    pub async fn run_timeouts(
        self: Arc<Self>,
        log: Arc<DecisionLog>,
        dispatcher: Arc<dyn Dispatcher>,
        every: Duration,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            // In batches, so a backlog after an outage is worked through
            // without one huge statement.
            loop {
                let now = Utc::now();
                let due = match self.store.approvals_take_expired(now, 100).await {
                    Ok(due) => due,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot take approvals past their deadline");
                        break;
                    }
                };
                let last = due.len() < 100;
                for a in due {
                    let id = a.id.clone();
                    if let Err(e) = self
                        .carry_out(a, "timeout", &log, dispatcher.as_ref(), now)
                        .await
                    {
                        tracing::warn!(approval = %id, error = ?e, "approval timeout");
                    }
                }
                if last {
                    break;
                }
            }
        }
    }
}

/// The file in the data directory holding the generated link key.
pub const SECRET_FILE: &str = "approval-secret";

/// The link key when `api.approval_secret` is not configured: generated
/// once and kept in `<data_dir>/approval-secret` (mode 0600), so links sent
/// before a restart still decide the approvals that survive it. Replicas
/// that do not share a data directory need the configured secret.
pub fn data_dir_secret(data_dir: &std::path::Path) -> Result<Secret, SecretFileError> {
    let path = data_dir.join(SECRET_FILE);
    let io = |source: std::io::Error| SecretFileError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                // Written by an older version with the umask's mode.
                if let Ok(m) = std::fs::metadata(&path) {
                    if m.permissions().mode() & 0o077 != 0 {
                        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                            .map_err(io)?;
                    }
                }
            }
            return unhex(text.trim())
                .filter(|k| k.len() >= 16)
                .map(Secret::new)
                .ok_or_else(|| SecretFileError::NotAKey(path.clone()));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let key: [u8; 32] = rand::random();
    let tmp = data_dir.join(format!("{SECRET_FILE}.tmp"));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        f.write_all(hex(&key).as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(io)?;
    tracing::info!(file = %path.display(), "approval link key generated");
    Ok(Secret::new(key.to_vec()))
}

/// HMAC-SHA256 keyed with `key` (every key length is valid for HMAC; the
/// fallback is never taken).
pub fn hmac_sha256(key: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key)
        .unwrap_or_else(|_| <Hmac<Sha256> as hmac::digest::KeyInit>::new(&Default::default()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|p| {
            let hi = (p[0] as char).to_digit(16)?;
            let lo = (p[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_key_is_kept_in_the_data_dir() {
        let dir = tempfile::tempdir().expect("dir");
        let one = data_dir_secret(dir.path()).expect("generated");
        let two = data_dir_secret(dir.path()).expect("read back");
        assert_eq!(one.expose(), two.expose());
        assert_eq!(one.expose().len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SECRET_FILE))
                .expect("file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "readable by the owner only");
        }
        std::fs::write(dir.path().join(SECRET_FILE), "zz").expect("write");
        assert!(
            data_dir_secret(dir.path()).is_err(),
            "a garbled key is refused"
        );
    }

    #[tokio::test]
    async fn stored_links_carry_no_token_and_are_signed_when_sent() {
        use riposte_connectors::soar::{
            ApprovalRequest, EventInfo, Link, Notification, NotificationKind, Severity,
        };
        let (store, _dir) = crate::store::testing::sqlite().await;
        let a = Approvals::new(
            Arc::new(store),
            Secret::new(b"server secret".to_vec()),
            "https://riposte.example",
        );
        let exp = Utc::now() + chrono::Duration::minutes(5);
        let approve = a.unsigned_link("ap-1", Verdict::Approve, exp);
        let deny = a.unsigned_link("ap-1", Verdict::Deny, exp);
        assert!(!approve.contains("token="));
        let mut n = Notification {
            id: "n1".into(),
            kind: NotificationKind::ApprovalRequested,
            title: "t".into(),
            severity: Severity::High,
            occurred: exp,
            event: EventInfo::default(),
            pod: None,
            playbook: None,
            actions: Vec::new(),
            fields: Default::default(),
            indicators: Vec::new(),
            links: Vec::new(),
            approvals: Vec::new(),
            coalesced: None,
        };
        n.add_approvals(vec![ApprovalRequest {
            id: "ap-1".into(),
            action: "tag_ip".into(),
            summary: "s".into(),
            expires_at: exp,
            on_timeout: "drop".into(),
            approve_url: approve.clone(),
            deny_url: deny,
            approvers: Vec::new(),
            reason: None,
        }]);
        n.links.push(Link {
            title: "Decision".into(),
            url: "https://riposte.example/v1/decisions?event_id=e".into(),
        });
        let stored = serde_json::to_value(&n).expect("json");
        a.signer().sign_notification(&mut n);
        let signed = &n.approvals[0].approve_url;
        assert_eq!(signed, &a.link("ap-1", Verdict::Approve, exp));
        assert_eq!(&n.links[0].url, signed, "the analyst link is signed too");
        assert!(n.approvals[0].deny_url.contains("token="));
        assert!(!n.links[2].url.contains("token="));
        // Signing twice changes nothing; stripping gives the stored form.
        let once = n.clone();
        a.signer().sign_notification(&mut n);
        assert_eq!(n, once);
        let mut shown = serde_json::to_value(&n).expect("json");
        assert!(strip_link_tokens(&mut shown));
        assert_eq!(shown, stored);
        assert!(!strip_link_tokens(&mut shown));
    }

    #[test]
    fn tokens_are_stripped_wherever_they_stand() {
        let cases = [
            (
                "https://x/v1/a?expires=1&token=ab12",
                "https://x/v1/a?expires=1",
            ),
            (
                "https://x/v1/a?token=ab12&expires=1",
                "https://x/v1/a?expires=1",
            ),
            ("https://x/v1/a?token=ab12", "https://x/v1/a?"),
            (
                "Approve: https://x/a?e=1&token=ff (now)",
                "Approve: https://x/a?e=1 (now)",
            ),
            ("mytoken=1 stays", "mytoken=1 stays"),
        ];
        for (input, want) in cases {
            let mut v = serde_json::Value::String(input.into());
            strip_link_tokens(&mut v);
            assert_eq!(v, want, "{input}");
        }
    }

    #[tokio::test]
    async fn links_are_signed_per_verdict_and_expire() {
        let (store, _dir) = crate::store::testing::sqlite().await;
        let a = Approvals::new(
            Arc::new(store),
            Secret::new(b"server secret".to_vec()),
            "https://riposte.example/",
        );
        let now = Utc::now();
        let exp = now + chrono::Duration::minutes(5);
        let link = a.link("abc", Verdict::Approve, exp);
        assert!(link.starts_with("https://riposte.example/v1/approvals/abc/approve?expires="));
        let token = link.rsplit_once("token=").map(|(_, t)| t).unwrap_or("");
        let ts = exp.timestamp();
        assert!(a.verify_link("abc", Verdict::Approve, ts, token, now));
        assert!(!a.verify_link("abc", Verdict::Deny, ts, token, now));
        assert!(!a.verify_link("abd", Verdict::Approve, ts, token, now));
        assert!(!a.verify_link("abc", Verdict::Approve, ts + 1, token, now));
        assert!(!a.verify_link(
            "abc",
            Verdict::Approve,
            ts,
            token,
            exp + chrono::Duration::seconds(1)
        ));
        assert!(!a.verify_link("abc", Verdict::Approve, ts, "zz", now));
    }
}
