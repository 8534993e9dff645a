//! `POST /v1/webhooks/{name}`: a SOAR's call becomes a Riposte event.
//!
//! Each configured webhook names how its sender proves itself:
//! - `standard`: Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//!   `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`),
//!   timestamps within ±`tolerance_secs` (5 minutes) of now;
//! - `github`: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`;
//! - `bearer`: `Authorization: Bearer <token>`, the token's SHA-256 in the
//!   config like API tokens; `webhook-id`/`webhook-timestamp`, when sent,
//!   are checked the same way as for `standard`.
//!
//! Several secrets may be configured at once (rotation): any one verifies.
//! Every comparison is constant-time. A replay inside the window
//! ([`Webhook::replay_window`]) is refused with 409, and what is remembered
//! against replays is what the mode's proof covers ([`Verified::replay_key`]):
//! the signed `webhook-id` for `standard`; for `github`, whose signature
//! covers the body only, the body's hash — `X-GitHub-Delivery` is not
//! signed, so a captured request sent again under a new or no delivery id
//! is still the same request; for `bearer`, nothing is signed, so the
//! sender's `webhook-id` when it sends one (against its own retries) and
//! nothing otherwise: whoever holds the token can send anything anyway. The JSON body becomes
//! `event.payload` (`event.webhook.body` in scripts) of an event with
//! `event.kind: webhook` and `webhook.name: <name>`, which goes through the
//! pipeline and the playbooks like any firewall event.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::Mac;
use prometheus_client::registry::Registry;
use riposte_firewall::{EventKind, EventModule, Str, ThreatEvent};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::metrics::WebhookMetrics;
use super::{json, ApiError, AppState};
use crate::act::approvals::hmac_sha256;
use crate::config::secret::{Secret, SecretSource};
use crate::intake::pipeline::Closed;

/// How a webhook's sender proves itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verify {
    Standard,
    Github,
    Bearer,
}

/// One `[[api.webhooks]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The `{name}` in `/v1/webhooks/{name}`, and `webhook.name` in events.
    pub name: String,
    pub verify: Verify,
    /// HMAC secrets for `standard` and `github`, newest first during a
    /// rotation. A `standard` secret in the `whsec_<base64>` form is
    /// base64-decoded, as the Standard Webhooks libraries do.
    #[serde(default)]
    pub secrets: Vec<SecretSource>,
    /// Hex SHA-256 hashes of the accepted bearer tokens (`bearer`).
    #[serde(default)]
    pub sha256: Vec<String>,
    /// Accepted clock difference for `webhook-timestamp`, in seconds.
    #[serde(default = "default_tolerance")]
    pub tolerance_secs: u64,
}

fn default_tolerance() -> u64 {
    300
}

/// Why a webhook's configuration or secrets cannot be used. Every message
/// names the webhook (and a secret's source), never a secret.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Name(#[from] crate::decide::intent::InvalidIntent),
    #[error("webhook `{0}`: secrets must not be empty")]
    NoSecrets(String),
    #[error("webhook `{0}`: sha256 is for verify = \"bearer\"")]
    HashesNotBearer(String),
    #[error("webhook `{0}`: sha256 (hashes of the bearer tokens) must not be empty")]
    NoHashes(String),
    #[error(
        "webhook `{0}`: secrets are for standard and github; bearer tokens are configured as sha256 hashes"
    )]
    SecretsForBearer(String),
    #[error("webhook `{0}`: sha256 entries must be 64 hex digits (the hash, never the token)")]
    BadHash(String),
    #[error("webhook `{0}`: tolerance_secs must be in 1..=3600")]
    Tolerance(String),
    /// `SecretSource::load` answers in text (config/secret.rs); the text
    /// names where the secret was looked for, never what it holds.
    #[error("webhook `{name}`: {message}")]
    Secret { name: String, message: String },
    #[error("webhook `{name}`: a whsec_ secret must be base64 after the prefix")]
    Whsec {
        name: String,
        #[source]
        source: base64::DecodeError,
    },
}

impl WebhookConfig {
    pub fn validate(&self) -> Result<(), WebhookError> {
        crate::decide::intent::validate_name("webhook name", &self.name)?;
        let name = || self.name.clone();
        match self.verify {
            Verify::Standard | Verify::Github => {
                if self.secrets.is_empty() {
                    return Err(WebhookError::NoSecrets(name()));
                }
                if !self.sha256.is_empty() {
                    return Err(WebhookError::HashesNotBearer(name()));
                }
            }
            Verify::Bearer => {
                if self.sha256.is_empty() {
                    return Err(WebhookError::NoHashes(name()));
                }
                if !self.secrets.is_empty() {
                    return Err(WebhookError::SecretsForBearer(name()));
                }
                if self.sha256.iter().any(|h| decode_hash(h).is_none()) {
                    return Err(WebhookError::BadHash(name()));
                }
            }
        }
        if self.tolerance_secs == 0 || self.tolerance_secs > 3_600 {
            return Err(WebhookError::Tolerance(name()));
        }
        Ok(())
    }
}

fn decode_hash(hex: &str) -> Option<[u8; 32]> {
    let bytes = crate::act::approvals::unhex(hex.trim())?;
    bytes.try_into().ok()
}

/// A webhook ready to verify requests.
#[derive(Debug)]
pub struct Webhook {
    name: String,
    verify: Verify,
    keys: Vec<Secret>,
    hashes: Vec<[u8; 32]>,
    tolerance: i64,
}

/// Why a request was refused, with a fixed code for the metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub detail: String,
}

fn refuse(code: &'static str, detail: impl Into<String>) -> Refusal {
    Refusal {
        code,
        detail: detail.into(),
    }
}

/// What a verified request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// What is remembered against replays within the window, and tells
    /// two deliberate calls with the same body apart in the event id: the
    /// signed message id (`standard`), the body's SHA-256 (`github`), or
    /// the sender's unsigned message id when it sent one (`bearer`).
    pub replay_key: Option<String>,
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

impl Webhook {
    /// Loads the secrets; errors name the webhook and the source, never a
    /// secret.
    pub fn load(c: &WebhookConfig) -> Result<Webhook, WebhookError> {
        let mut keys = Vec::new();
        for source in &c.secrets {
            let text = source.load().map_err(|e| WebhookError::Secret {
                name: c.name.clone(),
                message: e.to_string(),
            })?;
            let key = match (c.verify, text.strip_prefix("whsec_")) {
                (Verify::Standard, Some(b64)) => base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|source| WebhookError::Whsec {
                        name: c.name.clone(),
                        source,
                    })?,
                _ => text.into_bytes(),
            };
            keys.push(Secret::new(key));
        }
        Ok(Webhook {
            name: c.name.clone(),
            verify: c.verify,
            keys,
            hashes: c.sha256.iter().filter_map(|h| decode_hash(h)).collect(),
            tolerance: c.tolerance_secs as i64,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long a replay key is remembered: both sides of the timestamp
    /// tolerance, and a minute. In `github` mode, which has no signed
    /// timestamp, this is the only bound on a replay: the same body is
    /// refused for this long after it was accepted, and `tolerance_secs`
    /// does nothing else.
    pub fn replay_window(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.tolerance * 2 + 60)
    }

    /// Checks the request's proof against every configured secret.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Verified, Refusal> {
        match self.verify {
            Verify::Standard => self.verify_standard(headers, body, now),
            Verify::Github => self.verify_github(headers, body),
            Verify::Bearer => self.verify_bearer(headers, now),
        }
    }

    /// What the headers alone can prove, before the body is read: the
    /// signature headers are present and well-formed and the timestamp is
    /// within the window (`standard`, `github`), or the sender is
    /// authenticated outright (`bearer`: `Ok(true)`). The signature over the
    /// body is checked by [`Webhook::verify`] once the body is read.
    pub fn precheck(&self, headers: &HeaderMap, now: DateTime<Utc>) -> Result<bool, Refusal> {
        match self.verify {
            Verify::Standard => {
                let (_, _, sigs) = self.standard_headers(headers, now)?;
                if !sigs.split_ascii_whitespace().any(|s| s.starts_with("v1,")) {
                    return Err(refuse("unsigned", "webhook-signature has no v1 signature"));
                }
                Ok(false)
            }
            Verify::Github => {
                header_str(headers, "x-hub-signature-256")
                    .and_then(|s| s.strip_prefix("sha256="))
                    .and_then(crate::act::approvals::unhex)
                    .ok_or_else(|| {
                        refuse("unsigned", "X-Hub-Signature-256: sha256=<hex> is required")
                    })?;
                Ok(false)
            }
            Verify::Bearer => self.verify_bearer(headers, now).map(|_| true),
        }
    }

    /// The Standard Webhooks headers, present and well-formed, with the
    /// timestamp inside the window: what both the header precheck and the
    /// full verification require before any signature is looked at.
    fn standard_headers<'h>(
        &self,
        headers: &'h HeaderMap,
        now: DateTime<Utc>,
    ) -> Result<(&'h str, &'h str, &'h str), Refusal> {
        let (Some(id), Some(ts), Some(sigs)) = (
            header_str(headers, "webhook-id"),
            header_str(headers, "webhook-timestamp"),
            header_str(headers, "webhook-signature"),
        ) else {
            return Err(refuse(
                "unsigned",
                "webhook-id, webhook-timestamp and webhook-signature are required",
            ));
        };
        if id.is_empty() || id.len() > 256 {
            return Err(refuse("bad_id", "webhook-id must be 1 to 256 characters"));
        }
        self.timestamp(ts, now)?;
        Ok((id, ts, sigs))
    }

    fn timestamp(&self, raw: &str, now: DateTime<Utc>) -> Result<(), Refusal> {
        let ts: i64 = raw
            .parse()
            .map_err(|_| refuse("bad_timestamp", "webhook-timestamp is not a Unix time"))?;
        if (now.timestamp() - ts).abs() > self.tolerance {
            return Err(refuse(
                "stale",
                format!(
                    "webhook-timestamp is more than {} seconds from the server's time",
                    self.tolerance
                ),
            ));
        }
        Ok(())
    }

    fn verify_standard(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Verified, Refusal> {
        let (id, ts, sigs) = self.standard_headers(headers, now)?;
        let presented: Vec<Vec<u8>> = sigs
            .split_ascii_whitespace()
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .collect();
        if presented.is_empty() {
            return Err(refuse("unsigned", "webhook-signature has no v1 signature"));
        }
        let mut ok = false;
        for key in &self.keys {
            let mut mac = hmac_sha256(key.expose());
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(ts.as_bytes());
            mac.update(b".");
            mac.update(body);
            let expected = mac.finalize().into_bytes();
            for sig in &presented {
                // Every pair is compared: no early exit tells which matched.
                ok |= bool::from(expected.as_slice().ct_eq(sig.as_slice()));
            }
        }
        if !ok {
            return Err(refuse("bad_signature", "the signature does not verify"));
        }
        Ok(Verified {
            replay_key: Some(id.to_owned()),
        })
    }

    fn verify_github(&self, headers: &HeaderMap, body: &[u8]) -> Result<Verified, Refusal> {
        let sig = header_str(headers, "x-hub-signature-256")
            .and_then(|s| s.strip_prefix("sha256="))
            .and_then(crate::act::approvals::unhex)
            .ok_or_else(|| refuse("unsigned", "X-Hub-Signature-256: sha256=<hex> is required"))?;
        let mut ok = false;
        for key in &self.keys {
            let mut mac = hmac_sha256(key.expose());
            mac.update(body);
            let expected = mac.finalize().into_bytes();
            ok |= bool::from(expected.as_slice().ct_eq(sig.as_slice()));
        }
        if !ok {
            return Err(refuse("bad_signature", "the signature does not verify"));
        }
        // What the signature covers is the body alone: that is what a
        // replay repeats, whatever delivery id comes with it.
        Ok(Verified {
            replay_key: Some(format!(
                "sha256:{}",
                crate::act::approvals::hex(&Sha256::digest(body))
            )),
        })
    }

    fn verify_bearer(&self, headers: &HeaderMap, now: DateTime<Utc>) -> Result<Verified, Refusal> {
        let token = header_str(headers, header::AUTHORIZATION.as_str())
            .and_then(|h| {
                let (scheme, rest) = h.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(|| refuse("unsigned", "Authorization: Bearer <token> is required"))?;
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut ok = false;
        for h in &self.hashes {
            ok |= bool::from(h.ct_eq(&presented));
        }
        if !ok {
            return Err(refuse("bad_token", "the bearer token is not accepted"));
        }
        if let Some(ts) = header_str(headers, "webhook-timestamp") {
            self.timestamp(ts, now)?;
        }
        Ok(Verified {
            replay_key: header_str(headers, "webhook-id")
                .filter(|s| !s.is_empty() && s.len() <= 256)
                .map(str::to_owned),
        })
    }
}

/// The configured webhooks and their counters.
#[derive(Debug, Default)]
pub struct Webhooks {
    by_name: HashMap<String, Webhook>,
    counted: WebhookMetrics,
}

impl Webhooks {
    pub fn load(
        configs: &[WebhookConfig],
        registry: &mut Registry,
    ) -> Result<Webhooks, WebhookError> {
        let mut by_name = HashMap::new();
        for c in configs {
            by_name.insert(c.name.clone(), Webhook::load(c)?);
        }
        Ok(Webhooks {
            by_name,
            counted: WebhookMetrics::register(registry),
        })
    }

    fn count(&self, webhook: &str, outcome: &'static str) {
        // Names come from the config only: an unknown name is one label.
        let webhook = if self.by_name.contains_key(webhook) {
            webhook.to_owned()
        } else {
            "unknown".to_owned()
        };
        self.counted.count(webhook, outcome);
    }
}

impl Webhooks {
    /// [`Webhook::precheck`] for the webhook `name`, counting a refusal
    /// (an unknown name included) as the handler would.
    pub fn precheck(
        &self,
        name: &str,
        headers: &HeaderMap,
        now: DateTime<Utc>,
    ) -> Result<bool, Refusal> {
        let Some(hook) = self.by_name.get(name) else {
            self.count(name, "unknown_webhook");
            return Err(refuse("unknown_webhook", "no such webhook"));
        };
        hook.precheck(headers, now).inspect_err(|r| {
            self.count(name, r.code);
            tracing::info!(webhook = %name, reason = r.code, "webhook refused before its body was read");
        })
    }
}

/// The event a verified webhook call becomes.
pub fn webhook_event(
    name: &str,
    id: Option<&str>,
    body: &[u8],
    payload: serde_json::Value,
    now: DateTime<Utc>,
) -> ThreatEvent {
    let original = String::from_utf8_lossy(body);
    let mut ev = ThreatEvent::new(
        EventKind::Webhook,
        EventModule::Riposte,
        "riposte.webhook",
        now,
        &original,
    );
    // The message id makes two deliberate calls with the same body two
    // events; a retried delivery (same id) stays one.
    let mut keyed = String::with_capacity(name.len() + body.len() + 64);
    keyed.push_str("webhook\n");
    keyed.push_str(name);
    keyed.push('\n');
    keyed.push_str(id.unwrap_or(""));
    keyed.push('\n');
    keyed.push_str(&original);
    ev.id = riposte_firewall::event::event_id(&keyed);
    ev.webhook_name = Some(Str::new(name));
    ev.payload = Some(payload);
    ev
}

pub async fn receive(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let hooks = &state.webhooks;
    let Some(hook) = hooks.by_name.get(&name) else {
        // The same answer as a known webhook with a bad proof: webhook
        // names cannot be probed for.
        hooks.count(&name, "unknown_webhook");
        return Err(ApiError::Unauthenticated);
    };
    let now = Utc::now();
    let verified = match hook.verify(&headers, &body, now) {
        Ok(v) => v,
        Err(r) => {
            hooks.count(&name, r.code);
            tracing::info!(webhook = %name, reason = r.code, "webhook refused");
            return Err(ApiError::Unauthenticated);
        }
    };
    let payload: serde_json::Value = match json::parse(&headers, &body, state.max_json_depth) {
        Ok(v) => v,
        Err(e) => {
            hooks.count(&name, "bad_body");
            return Err(e);
        }
    };
    if !state.pipeline.has_room(1) {
        hooks.count(&name, "queue_full");
        return Err(ApiError::Unavailable {
            retry_after_secs: 1,
            detail: "the pipeline is full; retry later".into(),
        });
    }
    if let Some(id) = &verified.replay_key {
        match state
            .api_store
            .insert_webhook_id(&name, id, now, hook.replay_window())
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                hooks.count(&name, "replayed");
                return Err(ApiError::Conflict(
                    "this message was already received".into(),
                ));
            }
            Err(e) => {
                hooks.count(&name, "store_unavailable");
                tracing::warn!(webhook = %name, error = %e, "cannot record the webhook id");
                return Err(ApiError::Unavailable {
                    retry_after_secs: 5,
                    detail: "the store is unavailable; retry later".into(),
                });
            }
        }
    }
    let ev = webhook_event(&name, verified.replay_key.as_deref(), &body, payload, now);
    let event_id = ev.id.to_string();
    let sent =
        tokio::time::timeout(Duration::from_secs(1), state.pipeline.send(Box::new(ev))).await;
    if !matches!(sent, Ok(Ok(()))) {
        // Not accepted after all: let the sender's retry in.
        if let Some(id) = &verified.replay_key {
            let _ = state.api_store.forget_webhook_id(&name, id).await;
        }
        hooks.count(&name, "queue_full");
        let detail = match sent {
            Ok(Err(Closed)) => "shutting down",
            _ => "the pipeline is full; retry later",
        };
        return Err(ApiError::Unavailable {
            retry_after_secs: 1,
            detail: detail.into(),
        });
    }
    hooks.count(&name, "accepted");
    tracing::info!(webhook = %name, event.id = %event_id, "webhook accepted");
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"accepted": true, "event_id": event_id})),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn hook(verify: Verify, secrets: &[&str], sha256: &[&str]) -> Webhook {
        let c = WebhookConfig {
            name: "soar".into(),
            verify,
            secrets: secrets
                .iter()
                .map(|s| SecretSource::Value((*s).into()))
                .collect(),
            sha256: sha256.iter().map(|s| (*s).into()).collect(),
            tolerance_secs: 300,
        };
        c.validate().expect("valid");
        Webhook::load(&c).expect("loads")
    }

    pub fn standard_headers(key: &[u8], id: &str, ts: i64, body: &[u8]) -> HeaderMap {
        let mut mac = hmac_sha256(key);
        mac.update(format!("{id}.{ts}.").as_bytes());
        mac.update(body);
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let mut h = HeaderMap::new();
        h.insert("webhook-id", HeaderValue::from_str(id).expect("hv"));
        h.insert("webhook-timestamp", HeaderValue::from(ts));
        h.insert(
            "webhook-signature",
            HeaderValue::from_str(&format!("v1,Zm9v v1,{sig}")).expect("hv"),
        );
        h
    }

    #[test]
    fn standard_signatures_with_rotation_and_window() {
        let old = base64::engine::general_purpose::STANDARD.encode(b"old key");
        let new = base64::engine::general_purpose::STANDARD.encode(b"new key");
        let h = hook(
            Verify::Standard,
            &[&format!("whsec_{new}"), &format!("whsec_{old}")],
            &[],
        );
        let now = Utc::now();
        let body = br#"{"a":1}"#;
        for key in [b"old key".as_slice(), b"new key"] {
            let headers = standard_headers(key, "msg_1", now.timestamp(), body);
            assert_eq!(
                h.verify(&headers, body, now),
                Ok(Verified {
                    replay_key: Some("msg_1".into())
                })
            );
        }
        let forged = standard_headers(b"other", "msg_1", now.timestamp(), body);
        assert_eq!(
            h.verify(&forged, body, now).map_err(|r| r.code),
            Err("bad_signature")
        );
        let headers = standard_headers(b"new key", "msg_1", now.timestamp(), body);
        assert_eq!(
            h.verify(&headers, br#"{"a":2}"#, now).map_err(|r| r.code),
            Err("bad_signature")
        );
        let stale = standard_headers(b"new key", "msg_1", now.timestamp() - 301, body);
        assert_eq!(
            h.verify(&stale, body, now).map_err(|r| r.code),
            Err("stale")
        );
        let future = standard_headers(b"new key", "msg_1", now.timestamp() + 301, body);
        assert_eq!(
            h.verify(&future, body, now).map_err(|r| r.code),
            Err("stale")
        );
        assert_eq!(
            h.verify(&HeaderMap::new(), body, now).map_err(|r| r.code),
            Err("unsigned")
        );
    }

    #[test]
    fn github_signatures() {
        let h = hook(Verify::Github, &["It's a Secret to Everybody"], &[]);
        // GitHub's documented example.
        let body = b"Hello, World!";
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-hub-signature-256",
            HeaderValue::from_static(
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            ),
        );
        headers.insert("x-github-delivery", HeaderValue::from_static("d-1"));
        let first = h.verify(&headers, body, Utc::now()).expect("verifies");
        // The replay key is the signed body's hash, not the unsigned
        // delivery id: another or no delivery id is the same message.
        let key = first.replay_key.clone().expect("a key");
        assert!(key.starts_with("sha256:") && !key.contains("d-1"), "{key}");
        headers.insert("x-github-delivery", HeaderValue::from_static("d-2"));
        assert_eq!(h.verify(&headers, body, Utc::now()), Ok(first.clone()));
        headers.remove("x-github-delivery");
        assert_eq!(h.verify(&headers, body, Utc::now()), Ok(first));
        assert!(h.verify(&headers, b"Hello, World?", Utc::now()).is_err());
    }

    #[test]
    fn bearer_tokens_are_hashed() {
        let h = hook(Verify::Bearer, &[], &[&crate::auth::hash_token("tok")]);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer tok"),
        );
        // Nothing is signed: without the sender's own id there is nothing
        // to tell a replay from a new call by.
        assert_eq!(
            h.verify(&headers, b"{}", Utc::now()),
            Ok(Verified { replay_key: None })
        );
        headers.insert("webhook-id", HeaderValue::from_static("retry-1"));
        assert_eq!(
            h.verify(&headers, b"{}", Utc::now()),
            Ok(Verified {
                replay_key: Some("retry-1".into())
            })
        );
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer nope"),
        );
        assert_eq!(
            h.verify(&headers, b"{}", Utc::now()).map_err(|r| r.code),
            Err("bad_token")
        );
    }

    #[test]
    fn config_is_checked() {
        let c = WebhookConfig {
            name: "x".into(),
            verify: Verify::Bearer,
            secrets: vec![],
            sha256: vec!["tok".into()],
            tolerance_secs: 300,
        };
        assert!(c.validate().is_err());
        let c = WebhookConfig {
            name: "x".into(),
            verify: Verify::Standard,
            secrets: vec![],
            sha256: vec![],
            tolerance_secs: 300,
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn events_carry_the_name_and_payload() {
        let body = br#"{"action":"quarantine"}"#;
        let a = webhook_event(
            "soar",
            Some("1"),
            body,
            serde_json::json!({"action":"quarantine"}),
            Utc::now(),
        );
        let b = webhook_event(
            "soar",
            Some("2"),
            body,
            serde_json::json!({"action":"quarantine"}),
            Utc::now(),
        );
        assert_eq!(a.kind, EventKind::Webhook);
        assert_eq!(a.webhook_name.as_deref(), Some("soar"));
        assert_ne!(a.id, b.id);
        assert_eq!(&*a.original, r#"{"action":"quarantine"}"#);
    }
}
