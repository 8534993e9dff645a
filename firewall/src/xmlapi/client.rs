//! One firewall or Panorama target over the XML API: requests with the key
//! in `X-PAN-KEY`, a rate limit, retries with backoff on transient
//! failures, and the answers read into results per registration.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde::Deserialize;

use super::error::XmlApiError;
use super::message::{build_messages, registered_ip_command, Limits, Tag, UidOp, MAX_POST_BYTES};
use super::response::{self, RegisteredIp, UidAnswer};
use super::tls;

/// The API key. Its `Debug` never shows it, and it is never logged.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(key.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

fn default_timeout_secs() -> u64 {
    10
}
fn default_batch_entries() -> usize {
    1000
}
fn default_batch_interval_ms() -> u64 {
    200
}
fn default_max_message_bytes() -> usize {
    MAX_POST_BYTES
}
fn default_rate() -> f64 {
    10.0
}
fn default_attempts() -> u32 {
    4
}
fn default_retry_base_ms() -> u64 {
    250
}
fn default_retry_max_ms() -> u64 {
    10_000
}
fn default_read_page() -> usize {
    500
}

/// One firewall or Panorama target (`[[firewall.targets]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Short name for metrics, logs and the audit trail.
    pub name: String,
    /// Base URL of the management interface, e.g. `https://fw1.example`;
    /// requests go to `<url>/api/`.
    pub url: String,
    /// The API key (prefer `key_file`).
    #[serde(default)]
    pub key: Option<ApiKey>,
    /// A file holding the API key (a mounted Secret); read at start.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The virtual system the tags belong to (`vsys1`); unset: the
    /// firewall's default.
    #[serde(default)]
    pub vsys: Option<String>,
    /// Through Panorama: the serial number of the firewall to act on.
    #[serde(default)]
    pub target: Option<String>,
    /// PEM file of the CA(s) the firewall's certificate chains to.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// SHA-256 fingerprint of the firewall's certificate (hex, colons
    /// allowed): trusts exactly that certificate, whatever names it holds.
    #[serde(default)]
    pub pinned_sha256: Option<String>,
    /// Seconds one request may take.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Registrations per message.
    #[serde(default = "default_batch_entries")]
    pub batch_entries: usize,
    /// How long a registration may wait for others to share its message.
    #[serde(default = "default_batch_interval_ms")]
    pub batch_interval_ms: u64,
    /// Form-encoded bytes per message (at most the 5 MB POST limit).
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Requests per second to this target, at most.
    #[serde(default = "default_rate")]
    pub requests_per_second: f64,
    /// Attempts per request on transient failures (timeouts, 5xx,
    /// connection refused, the firewall's "internal error" codes).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// Register tags `persistent="1"` (they survive a firewall reboot).
    #[serde(default)]
    pub persistent: bool,
    /// Entries per page when reading registered IPs back.
    #[serde(default = "default_read_page")]
    pub read_page_size: usize,
}

impl TargetConfig {
    /// A target with every default, for `url` and `key`.
    pub fn new(name: &str, url: &str, key: ApiKey) -> TargetConfig {
        TargetConfig {
            name: name.to_string(),
            url: url.to_string(),
            key: Some(key),
            key_file: None,
            vsys: None,
            target: None,
            ca_file: None,
            pinned_sha256: None,
            timeout_secs: default_timeout_secs(),
            batch_entries: default_batch_entries(),
            batch_interval_ms: default_batch_interval_ms(),
            max_message_bytes: default_max_message_bytes(),
            requests_per_second: default_rate(),
            max_attempts: default_attempts(),
            retry_base_ms: default_retry_base_ms(),
            retry_max_ms: default_retry_max_ms(),
            persistent: false,
            read_page_size: default_read_page(),
        }
    }

    /// Checks what can be checked without the network.
    pub fn validate(&self) -> Result<(), XmlApiError> {
        let bad = |m: String| Err(XmlApiError::Config(format!("firewall {}: {m}", self.name)));
        if self.name.is_empty() {
            return bad("empty name".into());
        }
        // The URL is never echoed: it may carry a password.
        if !(self.url.starts_with("https://") || self.url.starts_with("http://")) {
            return bad("url is not http(s)://".into());
        }
        match reqwest::Url::parse(&self.url) {
            Err(e) => return bad(format!("url does not parse: {e}")),
            Ok(u) if !u.username().is_empty() || u.password().is_some() => {
                return bad(
                    "url: put credentials in `key` or `key_file`, not in the URL (URLs get logged)"
                        .into(),
                )
            }
            Ok(_) => {}
        }
        match (&self.key, &self.key_file) {
            (None, None) => return bad("needs `key` or `key_file`".into()),
            (Some(_), Some(_)) => return bad("`key` and `key_file` are exclusive".into()),
            _ => {}
        }
        if self.ca_file.is_some() && self.pinned_sha256.is_some() {
            return bad("`ca_file` and `pinned_sha256` are exclusive".into());
        }
        if let Some(pin) = &self.pinned_sha256 {
            tls::parse_fingerprint(pin)?;
        }
        if self.max_message_bytes > MAX_POST_BYTES || self.max_message_bytes < 1024 {
            return bad(format!(
                "max_message_bytes {} is outside 1024..={MAX_POST_BYTES}",
                self.max_message_bytes
            ));
        }
        if self.batch_entries == 0 || self.read_page_size == 0 {
            return bad("batch_entries and read_page_size must be positive".into());
        }
        if self.requests_per_second.is_nan() || self.requests_per_second <= 0.0 {
            return bad("requests_per_second must be positive".into());
        }
        if self.max_attempts == 0 || self.timeout_secs == 0 {
            return bad("max_attempts and timeout_secs must be positive".into());
        }
        Ok(())
    }

    /// The key, from the config or its file.
    pub fn resolve_key(&self) -> Result<ApiKey, XmlApiError> {
        if let Some(k) = &self.key {
            return Ok(k.clone());
        }
        let Some(path) = &self.key_file else {
            return Err(XmlApiError::Config(format!(
                "firewall {}: no key",
                self.name
            )));
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            XmlApiError::Config(format!(
                "firewall {}: key_file {}: {e}",
                self.name,
                path.display()
            ))
        })?;
        let key = text.trim();
        if key.is_empty() {
            return Err(XmlApiError::Config(format!(
                "firewall {}: key_file {} is empty",
                self.name,
                path.display()
            )));
        }
        Ok(ApiKey::new(key))
    }

    /// The management host (name or address) of the URL.
    pub fn host(&self) -> Option<String> {
        reqwest::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_string()))
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_entries: self.batch_entries,
            max_bytes: self.max_message_bytes,
        }
    }
}

/// Spaces requests out to at most `rate` a second.
#[derive(Debug)]
struct RateLimiter {
    interval: Duration,
    next: tokio::sync::Mutex<Instant>,
}

impl RateLimiter {
    fn new(rate: f64) -> RateLimiter {
        RateLimiter {
            interval: Duration::from_secs_f64(1.0 / rate.max(0.001)),
            next: tokio::sync::Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        let mut next = self.next.lock().await;
        let now = Instant::now();
        if *next > now {
            tokio::time::sleep(*next - now).await;
        }
        *next = (*next).max(now) + self.interval;
    }
}

/// The largest answer read: a page of registered IPs is well below.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// A client for one target.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: TargetConfig,
    key: ApiKey,
    endpoint: reqwest::Url,
    http: reqwest::Client,
    limiter: RateLimiter,
    timeout: Duration,
}

/// Outcome of each op given to [`Client::apply`], in order.
pub type OpResults = Vec<Result<(), XmlApiError>>;

impl Client {
    pub fn new(config: TargetConfig) -> Result<Client, XmlApiError> {
        config.validate()?;
        let key = config.resolve_key()?;
        let base = config.url.trim_end_matches('/');
        let endpoint = reqwest::Url::parse(&format!("{base}/api/"))
            .map_err(|e| XmlApiError::Config(format!("firewall {}: url: {e}", config.name)))?;
        let timeout = Duration::from_secs(config.timeout_secs);
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("riposte/", env!("CARGO_PKG_VERSION")));
        if let Some(pin) = &config.pinned_sha256 {
            builder = builder.use_preconfigured_tls(tls::pinned(tls::parse_fingerprint(pin)?)?);
        } else if let Some(ca) = &config.ca_file {
            builder = builder.use_preconfigured_tls(tls::ca_file(ca)?);
        }
        let http = builder
            .build()
            .map_err(|e| XmlApiError::Config(format!("firewall {}: {e}", config.name)))?;
        Ok(Client {
            inner: Arc::new(Inner {
                limiter: RateLimiter::new(config.requests_per_second),
                key,
                endpoint,
                http,
                timeout,
                config,
            }),
        })
    }

    pub fn name(&self) -> &str {
        &self.inner.config.name
    }

    pub fn config(&self) -> &TargetConfig {
        &self.inner.config
    }

    /// One request, no retry: the status and the body.
    async fn request_once(&self, form: &[(&str, &str)]) -> Result<(u16, String), XmlApiError> {
        let inner = &self.inner;
        inner.limiter.wait().await;
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        if let Some(vsys) = &inner.config.vsys {
            fields.push(("vsys", vsys));
        }
        if let Some(target) = &inner.config.target {
            fields.push(("target", target));
        }
        let resp = inner
            .http
            .post(inner.endpoint.clone())
            .header("X-PAN-KEY", inner.key.expose())
            .form(&fields)
            .send()
            .await
            .map_err(|e| transport_error(e, inner.timeout))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut resp = resp;
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                        return Err(XmlApiError::NotXml {
                            reason: format!("answer larger than {MAX_ANSWER_BYTES} bytes"),
                            snippet: String::new(),
                        });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(transport_error(e, inner.timeout)),
            }
        }
        let body = String::from_utf8_lossy(&body).into_owned();
        if status >= 500 || status == 429 || status == 408 {
            return Err(XmlApiError::Http {
                status,
                message: body.trim().chars().take(200).collect(),
                retry_after,
            });
        }
        if (300..400).contains(&status) {
            return Err(XmlApiError::Http {
                status,
                message: "redirect (a login page or a proxy?) not followed".into(),
                retry_after: None,
            });
        }
        if status != 200 && response::parse_response(&body).is_err() {
            // A 4xx that is not an XML API answer: the key (401/403) or the path.
            let message: String = body.trim().chars().take(200).collect();
            if status == 401 || status == 403 {
                return Err(XmlApiError::Auth { status, message });
            }
            return Err(XmlApiError::Http {
                status,
                message,
                retry_after: None,
            });
        }
        Ok((status, body))
    }

    /// Runs `parse` on answers, retrying transient failures with exponential
    /// backoff (full jitter, Retry-After honoured) within the attempt bound.
    async fn request<T>(
        &self,
        form: &[(&str, &str)],
        parse: impl Fn(&str, u16) -> Result<T, XmlApiError>,
    ) -> Result<T, XmlApiError> {
        let cfg = &self.inner.config;
        let base = Duration::from_millis(cfg.retry_base_ms);
        let max = Duration::from_millis(cfg.retry_max_ms);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = match self.request_once(form).await {
                Ok((status, body)) => parse(&body, status),
                Err(e) => Err(e),
            };
            match result {
                Err(e) if e.is_transient() && attempt < cfg.max_attempts => {
                    let cap = base.saturating_mul(1 << (attempt - 1).min(16)).min(max);
                    let jitter = rand::rng().random_range(0..=cap.as_millis().max(1) as u64);
                    let wait = Duration::from_millis(jitter)
                        .max(e.retry_after().unwrap_or_default().min(max));
                    tracing::warn!(firewall = %cfg.name, attempt, error = %e, ?wait, "transient XML API failure, retrying");
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    /// Sends one uid-message (retried on transient failures).
    pub async fn send_uid(&self, xml: &str) -> Result<UidAnswer, XmlApiError> {
        self.request(&[("type", "user-id"), ("cmd", xml)], response::parse_uid)
            .await
    }

    /// Applies `ops` in order, as few messages as the limits allow; the
    /// result of each op, in order. Ops refused entry by entry fail alone.
    pub async fn apply(&self, ops: &[UidOp]) -> OpResults {
        let mut results: OpResults = vec![Ok(()); ops.len()];
        for message in build_messages(ops, self.inner.config.limits()) {
            match self.send_uid(&message.xml).await {
                Ok(answer) => {
                    let refused: HashSet<(&str, bool)> = answer
                        .refused
                        .iter()
                        .map(|r| (r.ip.as_str(), r.register))
                        .collect();
                    if refused.is_empty() {
                        continue;
                    }
                    for &i in &message.ops {
                        let op = &ops[i];
                        let ip = op.ip().to_string();
                        if refused.contains(&(ip.as_str(), op.is_register())) {
                            let why = answer
                                .refused
                                .iter()
                                .find(|r| r.ip == ip)
                                .map(|r| r.message.clone())
                                .unwrap_or_default();
                            results[i] = Err(XmlApiError::Entries {
                                count: 1,
                                ip,
                                message: why,
                            });
                        }
                    }
                }
                Err(e) => {
                    for &i in &message.ops {
                        results[i] = Err(e.clone());
                    }
                }
            }
        }
        results
    }

    /// Every registered IP (optionally only those with `tag`), page by page.
    pub async fn registered(&self, tag: Option<&Tag>) -> Result<Vec<RegisteredIp>, XmlApiError> {
        let page_size = self.inner.config.read_page_size;
        let mut out = Vec::new();
        let mut start = 1;
        // A firewall holds at most a few hundred thousand registrations;
        // the bound stops a firewall that keeps answering full pages.
        for _ in 0..10_000 {
            let cmd = registered_ip_command(page_size, start, tag);
            let page = self
                .request(&[("type", "op"), ("cmd", &cmd)], response::parse_registered)
                .await?;
            let n = page.entries.len();
            out.extend(page.entries);
            if n < page_size || page.count.is_some_and(|c| out.len() >= c) {
                return Ok(out);
            }
            start += n;
        }
        Ok(out)
    }
}

fn transport_error(e: reqwest::Error, timeout: Duration) -> XmlApiError {
    if e.is_timeout() {
        return XmlApiError::Timeout(timeout);
    }
    // Name the innermost cause: "connection refused", a certificate error.
    let mut source: Option<&dyn std::error::Error> = Some(&e);
    let mut innermost = e.to_string();
    let mut is_tls = false;
    while let Some(s) = source {
        innermost = s.to_string();
        if s.downcast_ref::<rustls::Error>().is_some() {
            is_tls = true;
        }
        source = s.source();
    }
    if is_tls || innermost.contains("certificate") {
        return XmlApiError::Tls(innermost);
    }
    XmlApiError::Connect(innermost)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_never_shows_in_debug() {
        let c = TargetConfig::new("fw1", "https://fw1.example", ApiKey::new("LUFRPT1secret"));
        let shown = format!("{c:?}");
        assert!(!shown.contains("LUFRPT1secret"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn config_mistakes_are_named() {
        let ok = TargetConfig::new("fw1", "https://fw1.example", ApiKey::new("k"));
        assert!(ok.validate().is_ok());
        assert_eq!(ok.host().as_deref(), Some("fw1.example"));
        let mut c = ok.clone();
        c.url = "fw1.example".into();
        assert!(c.validate().is_err());
        let mut c = ok.clone();
        c.key = None;
        assert!(c
            .validate()
            .expect_err("no key")
            .to_string()
            .contains("key_file"));
        let mut c = ok.clone();
        c.ca_file = Some("/x".into());
        c.pinned_sha256 = Some("ab".repeat(32));
        assert!(c.validate().is_err());
        let mut c = ok;
        c.max_message_bytes = 10 * 1024 * 1024;
        assert!(c.validate().is_err());
    }

    #[test]
    fn the_key_file_is_read_and_trimmed() {
        let dir = std::env::temp_dir().join(format!("riposte-key-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("key");
        std::fs::write(&path, "secret-key\n").expect("write");
        let mut c = TargetConfig::new("fw1", "https://fw1.example", ApiKey::new("x"));
        c.key = None;
        c.key_file = Some(path.clone());
        assert_eq!(c.resolve_key().expect("key").expose(), "secret-key");
        std::fs::write(&path, "\n").expect("write");
        assert!(c.resolve_key().is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
