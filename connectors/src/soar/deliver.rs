//! One delivery attempt to one target, and what it means.
//!
//! [`SoarTarget::attempt`] sends one request and classifies the answer into
//! an [`Outcome`]; the engine's outbox decides what to do with it (mark
//! delivered, schedule a retry, disable the target, dead-letter). Nothing
//! here retries or sleeps.
//!
//! Classification (Standard Webhooks' sender rules, Vector's retry set):
//! - 2xx: delivered. Splunk SOAR's `existing_container_id` answer and
//!   TheHive's "already exists" answer mean an earlier attempt got through:
//!   [`Outcome::Duplicate`], which counts as delivered.
//! - 408, 429, 5xx except 501, timeouts and connection errors: retry,
//!   honouring `Retry-After` (seconds or an HTTP-date), capped.
//! - 410 Gone: the receiver asks to stop: disable the target.
//! - Everything else (other 4xx, 501, 3xx, which are never followed):
//!   rejected for good, with the status and the start of the body.

use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER,
};
use reqwest::{StatusCode, Url};

use super::signing::{signature_header, SigningKey, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use super::{format, guard, Auth, Format, Notification, SoarError, TargetConfig};

/// How much of a response body is read: enough for an error message or a
/// duplicate answer, never a memory problem.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// How much of a rejecting body is kept for the record.
pub const SNIPPET_BYTES: usize = 512;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered {
        status: u16,
    },
    /// The receiver already had it: counts as delivered.
    Duplicate {
        status: u16,
        detail: String,
    },
    /// Try again, not before `after` when the receiver said so.
    Retry {
        after: Option<Duration>,
        status: Option<u16>,
        reason: String,
    },
    /// 410 Gone: stop sending to this target until it is re-enabled.
    Disabled {
        reason: String,
    },
    /// Refused for good.
    Rejected {
        status: u16,
        body: String,
    },
}

impl Outcome {
    pub fn is_delivered(&self) -> bool {
        matches!(self, Outcome::Delivered { .. } | Outcome::Duplicate { .. })
    }

    /// A fixed name for metrics and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Delivered { .. } => "delivered",
            Outcome::Duplicate { .. } => "duplicate",
            Outcome::Retry { .. } => "retry",
            Outcome::Disabled { .. } => "disabled",
            Outcome::Rejected { .. } => "rejected",
        }
    }
}

/// A built target: config checked, secrets loaded, client ready.
#[derive(Debug, Clone)]
pub struct SoarTarget {
    config: TargetConfig,
    url: Url,
    /// Where updates go (`api_url`, or `url`'s origin), without a
    /// trailing slash.
    api: String,
    auth: Option<(HeaderName, HeaderValue)>,
    keys: Vec<SigningKey>,
    client: reqwest::Client,
    retry_after_cap: Duration,
}

fn config_error(t: &TargetConfig, message: impl Into<String>) -> SoarError {
    SoarError::Config {
        target: t.name.clone(),
        message: message.into(),
    }
}

fn sensitive(t: &TargetConfig, value: &str) -> Result<HeaderValue, SoarError> {
    let mut v = HeaderValue::from_str(value)
        .map_err(|_| config_error(t, "a credential holds characters a header cannot carry"))?;
    // Keeps it out of reqwest's and hyper's debug output.
    v.set_sensitive(true);
    Ok(v)
}

impl SoarTarget {
    /// Validates the config, loads secrets and TLS material, checks the
    /// URL's host against the SSRF guard and builds the HTTP client.
    pub fn build(config: &TargetConfig) -> Result<SoarTarget, SoarError> {
        config.validate().map_err(|m| config_error(config, m))?;
        let url = Url::parse(&config.url).map_err(|e| config_error(config, format!("url: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(config_error(
                config,
                "url: only http:// and https:// are supported",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(config_error(
                config,
                "url: put credentials in `auth`, not in the URL (URLs get logged)",
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| config_error(config, "url: no host"))?;
        if !config.allow_private {
            guard::check_host(host)?;
        }
        let api = match &config.api_url {
            Some(a) => {
                let u = Url::parse(a).map_err(|e| config_error(config, format!("api_url: {e}")))?;
                let h = u
                    .host_str()
                    .ok_or_else(|| config_error(config, "api_url: no host"))?;
                if !config.allow_private {
                    guard::check_host(h)?;
                }
                a.trim_end_matches('/').to_string()
            }
            None => url.origin().ascii_serialization(),
        };
        let auth = match &config.auth {
            Auth::None => None,
            Auth::Basic { username, password } => {
                use base64::Engine as _;
                let pw = password.load()?;
                let raw = format!("{username}:{}", pw.expose());
                let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
                Some((
                    AUTHORIZATION,
                    sensitive(config, &format!("Basic {encoded}"))?,
                ))
            }
            Auth::Bearer { token } => {
                let t = token.load()?;
                Some((
                    AUTHORIZATION,
                    sensitive(config, &format!("Bearer {}", t.expose()))?,
                ))
            }
            Auth::Header { name, value } => {
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| config_error(config, format!("auth header name `{name}`")))?;
                let v = value.load()?;
                Some((name, sensitive(config, v.expose())?))
            }
            Auth::PhAuthToken { token } => {
                let t = token.load()?;
                Some((
                    HeaderName::from_static("ph-auth-token"),
                    sensitive(config, t.expose())?,
                ))
            }
        };
        let keys = config
            .signing_secrets
            .iter()
            .map(|s| s.load().and_then(|s| SigningKey::parse(&s)))
            .collect::<Result<Vec<_>, _>>()?;
        let client = client(config)?;
        Ok(SoarTarget {
            config: config.clone(),
            url,
            api,
            auth,
            keys,
            client,
            retry_after_cap: Duration::from_secs(config.retry_max_secs),
        })
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn config(&self) -> &TargetConfig {
        &self.config
    }

    /// The body for this target's format.
    pub fn render(&self, n: &Notification) -> Result<Vec<u8>, SoarError> {
        Ok(serde_json::to_vec(&format::render(&self.config, n))?)
    }

    /// Renders and sends `n` once.
    pub async fn attempt(&self, n: &Notification) -> Outcome {
        self.deliver(n, None).await.0
    }

    /// Whether updates of an incident need the SOAR's id of it (see
    /// [`format::updates_by_reference`]).
    pub fn updates_by_reference(&self) -> bool {
        format::updates_by_reference(&self.config)
    }

    /// Sends `n` once: an update of an incident (`n.coalesced.update > 0`)
    /// whose SOAR id `reference` is known goes to the SOAR's update path,
    /// anything else to `url`. Answers the outcome and, for a create the
    /// SOAR answered, the SOAR's id of what it opened.
    pub async fn deliver(
        &self,
        n: &Notification,
        reference: Option<&str>,
    ) -> (Outcome, Option<String>) {
        let update = n.coalesced.as_ref().is_some_and(|c| c.update > 0);
        let request = match (update, reference) {
            (true, Some(r)) => format::render_update(&self.config, &self.api, n, r),
            _ => None,
        };
        let (method, url, body) = match request {
            Some((format::Method::Patch, url, body)) => (reqwest::Method::PATCH, url, body),
            Some((format::Method::Post, url, body)) => (reqwest::Method::POST, url, body),
            None => (
                reqwest::Method::POST,
                self.url.to_string(),
                format::render(&self.config, n),
            ),
        };
        let body = match serde_json::to_vec(&body) {
            Ok(b) => b,
            Err(e) => {
                return (
                    Outcome::Rejected {
                        status: 0,
                        body: e.to_string(),
                    },
                    None,
                )
            }
        };
        let url = match Url::parse(&url) {
            Ok(u) => u,
            Err(e) => {
                return (
                    Outcome::Rejected {
                        status: 0,
                        body: format!("update URL {url}: {e}"),
                    },
                    None,
                )
            }
        };
        let (outcome, answer) = self.send_to(method, url, &n.id, body).await;
        let reference = if outcome.is_delivered() && !update {
            format::reference(self.config.format, &answer)
        } else {
            None
        };
        (outcome, reference)
    }

    /// Sends a rendered body once, signed with a fresh timestamp.
    pub async fn send(&self, id: &str, body: Vec<u8>) -> Outcome {
        self.send_to(reqwest::Method::POST, self.url.clone(), id, body)
            .await
            .0
    }

    /// Sends a rendered body once to `url`; the outcome and the start of
    /// the answer's body.
    async fn send_to(
        &self,
        method: reqwest::Method,
        url: Url,
        id: &str,
        body: Vec<u8>,
    ) -> (Outcome, Vec<u8>) {
        let timestamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        match HeaderValue::from_str(id) {
            Ok(v) => {
                headers.insert(HEADER_ID, v);
            }
            Err(_) => {
                return (
                    Outcome::Rejected {
                        status: 0,
                        body: "the notification id cannot be a header value".into(),
                    },
                    Vec::new(),
                )
            }
        }
        headers.insert(HEADER_TIMESTAMP, HeaderValue::from(timestamp));
        if !self.keys.is_empty() {
            let sig = signature_header(&self.keys, id, timestamp, &body);
            if let Ok(v) = HeaderValue::from_str(&sig) {
                headers.insert(HEADER_SIGNATURE, v);
            }
        }
        if let Some((name, value)) = &self.auth {
            headers.insert(name.clone(), value.clone());
        }
        let response = match self
            .client
            .request(method, url)
            .headers(headers)
            .body(body)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return (transport_failure(&e), Vec::new()),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()))
            .map(|d| d.min(self.retry_after_cap));
        let body = match read_capped(response, MAX_RESPONSE_BYTES).await {
            Ok(b) => b,
            // The status arrived: a body cut short by a timeout or a reset
            // does not change what it said, except that a 2xx we cannot
            // confirm is retried (the receiver dedupes by webhook-id).
            Err(e) if status.is_success() => return (transport_failure(&e), Vec::new()),
            Err(_) => Vec::new(),
        };
        (
            classify(self.config.format, status, retry_after, &body),
            body,
        )
    }
}

fn client(config: &TargetConfig) -> Result<reqwest::Client, SoarError> {
    let err = |message: String| SoarError::Client {
        target: config.name.clone(),
        message,
    };
    let timeout = Duration::from_secs(config.timeout_secs);
    let mut b = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        // Standard Webhooks: a 3xx is a failure, never followed (a redirect
        // could also lead around the SSRF guard).
        .redirect(reqwest::redirect::Policy::none())
        // A proxy from the environment would resolve names where the
        // guard cannot see them.
        .no_proxy()
        .pool_max_idle_per_host(config.concurrency)
        .user_agent(concat!("riposte/", env!("CARGO_PKG_VERSION")));
    if !config.allow_private {
        b = b.dns_resolver(guard::GuardedResolver::shared());
    }
    if let Some(ca) = &config.tls.ca_file {
        let pem =
            std::fs::read(ca).map_err(|e| err(format!("tls.ca_file {}: {e}", ca.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| err(format!("tls.ca_file {}: {e}", ca.display())))?;
        if certs.is_empty() {
            return Err(err(format!("tls.ca_file {}: no certificate", ca.display())));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    if let (Some(cert), Some(key)) = (&config.tls.client_cert, &config.tls.client_key) {
        let mut pem = std::fs::read(cert)
            .map_err(|e| err(format!("tls.client_cert {}: {e}", cert.display())))?;
        pem.push(b'\n');
        pem.extend(
            std::fs::read(key)
                .map_err(|e| err(format!("tls.client_key {}: {e}", key.display())))?,
        );
        let identity = reqwest::Identity::from_pem(&pem)
            .map_err(|e| err(format!("tls client identity: {e}")))?;
        b = b.identity(identity);
    }
    b.build().map_err(|e| err(e.to_string()))
}

fn transport_failure(e: &reqwest::Error) -> Outcome {
    // The guard's refusal surfaces as a connect error; it will not change
    // by retrying, but DNS might, so it is retried until max age like any
    // connection failure, with the reason on record.
    let mut reason = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        source = s.source();
        if reason.len() > SNIPPET_BYTES {
            break;
        }
    }
    Outcome::Retry {
        after: None,
        status: None,
        reason: truncate_utf8(&reason, SNIPPET_BYTES),
    }
}

async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = cap - out.len();
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= cap {
            break;
        }
    }
    Ok(out)
}

/// `Retry-After` as delta-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn truncate_utf8(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn snippet(body: &[u8]) -> String {
    truncate_utf8(&String::from_utf8_lossy(body), SNIPPET_BYTES)
}

/// What an answer means for `format`.
pub fn classify(
    format: Format,
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Outcome {
    let code = status.as_u16();
    if let Some(detail) = duplicate_answer(format, code, body) {
        return Outcome::Duplicate {
            status: code,
            detail,
        };
    }
    if status.is_success() {
        if format == Format::SplunkSoar && splunk_failed(body) {
            return Outcome::Rejected {
                status: code,
                body: snippet(body),
            };
        }
        return Outcome::Delivered { status: code };
    }
    match code {
        408 | 429 => Outcome::Retry {
            after: retry_after,
            status: Some(code),
            reason: format!("{status}"),
        },
        410 => Outcome::Disabled {
            reason: format!("the receiver answered {status}: {}", snippet(body)),
        },
        501 => Outcome::Rejected {
            status: code,
            body: snippet(body),
        },
        500..=599 => Outcome::Retry {
            after: retry_after,
            status: Some(code),
            reason: format!("{status}: {}", snippet(body)),
        },
        _ => Outcome::Rejected {
            status: code,
            body: snippet(body),
        },
    }
}

fn splunk_failed(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .is_some_and(|v| v.get("failed").and_then(|f| f.as_bool()) == Some(true))
}

/// The SOARs' "I already have this one" answers.
fn duplicate_answer(format: Format, code: u16, body: &[u8]) -> Option<String> {
    match format {
        // {"failed": true, "message": "duplicate…", "existing_container_id": N},
        // whatever the status.
        Format::SplunkSoar => {
            let v: serde_json::Value = serde_json::from_slice(body).ok()?;
            // An artifact (an update) resent answers the same way.
            if let Some(id) = v.get("existing_artifact_id") {
                return Some(format!("existing artifact {id}"));
            }
            let id = v.get("existing_container_id")?;
            Some(format!("existing container {id}"))
        }
        // TheHive refuses a second alert with the same (type, source,
        // sourceRef); the exact wording varies by version (unverified), so
        // any 400/409 whose message says it exists counts.
        Format::Thehive if code == 400 || code == 409 => {
            let text = String::from_utf8_lossy(body).to_ascii_lowercase();
            (text.contains("already exist") || text.contains("duplicate")).then(|| snippet(body))
        }
        _ => None,
    }
}

/// The time an attempt took, for the latency histogram.
#[derive(Debug, Clone, Copy)]
pub struct Timer(Instant);

impl Timer {
    pub fn start() -> Timer {
        Timer(Instant::now())
    }
    pub fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(code: u16) -> StatusCode {
        StatusCode::from_u16(code).expect("status")
    }

    #[test]
    fn classifies_statuses() {
        let f = Format::Webhook;
        assert_eq!(
            classify(f, st(200), None, b"garbage\xff"),
            Outcome::Delivered { status: 200 }
        );
        assert_eq!(
            classify(f, st(204), None, b""),
            Outcome::Delivered { status: 204 }
        );
        for code in [408, 429, 500, 502, 503, 504, 599] {
            assert!(
                matches!(classify(f, st(code), None, b""), Outcome::Retry { .. }),
                "{code}"
            );
        }
        let wait = Some(Duration::from_secs(7));
        assert_eq!(
            classify(f, st(429), wait, b""),
            Outcome::Retry {
                after: wait,
                status: Some(429),
                reason: "429 Too Many Requests".into()
            }
        );
        assert!(matches!(
            classify(f, st(410), None, b"bye"),
            Outcome::Disabled { .. }
        ));
        for code in [400, 401, 403, 404, 413, 422, 501, 301, 302] {
            assert!(
                matches!(classify(f, st(code), None, b"no"), Outcome::Rejected { .. }),
                "{code}"
            );
        }
    }

    #[test]
    fn rejections_keep_a_bounded_snippet() {
        let big = vec![b'x'; 10_000];
        match classify(Format::Webhook, st(400), None, &big) {
            Outcome::Rejected { status, body } => {
                assert_eq!(status, 400);
                assert!(body.len() <= SNIPPET_BYTES + 3);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn soar_duplicate_answers_count_as_delivered() {
        let splunk = br#"{"failed": true, "message": "duplicate", "existing_container_id": 42}"#;
        let o = classify(Format::SplunkSoar, st(200), None, splunk);
        assert!(o.is_delivered(), "{o:?}");
        assert!(classify(Format::SplunkSoar, st(400), None, splunk).is_delivered());
        let failed = br#"{"failed": true, "message": "bad label"}"#;
        assert!(matches!(
            classify(Format::SplunkSoar, st(200), None, failed),
            Outcome::Rejected { .. }
        ));
        let hive =
            br#"{"type":"CreateError","message":"Alert riposte:riposte:n-1 already exists"}"#;
        assert!(classify(Format::Thehive, st(400), None, hive).is_delivered());
        assert!(!classify(Format::Thehive, st(400), None, b"{\"message\":\"bad\"}").is_delivered());
        // Another format's answer means nothing special.
        assert!(!classify(Format::Webhook, st(400), None, hive).is_delivered());
    }

    #[test]
    fn retry_after_in_seconds_or_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        // 1994-11-06T08:49:37Z is 784_111_777; 60 s later:
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn builds_refuse_metadata_and_loopback_unless_allowed() {
        let t = TargetConfig::new("s", "http://169.254.169.254/latest", Format::Webhook);
        let err = SoarTarget::build(&t).expect_err("metadata");
        assert!(err.to_string().contains("cloud metadata"), "{err}");
        let t = TargetConfig::new("s", "http://127.0.0.1:9/", Format::Webhook);
        assert!(SoarTarget::build(&t).is_err());
        let mut t = TargetConfig::new("s", "http://127.0.0.1:9/", Format::Webhook);
        t.allow_private = true;
        assert!(SoarTarget::build(&t).is_ok());
        let t = TargetConfig::new("s", "http://u:p@soar.example/", Format::Webhook);
        assert!(SoarTarget::build(&t).is_err());
        let t = TargetConfig::new("s", "ftp://soar.example/", Format::Webhook);
        assert!(SoarTarget::build(&t).is_err());
    }

    #[tokio::test]
    async fn connection_refused_is_retried() {
        // A port nothing listens on: bind, read the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port");
        let mut t = TargetConfig::new("s", format!("http://127.0.0.1:{port}/"), Format::Webhook);
        t.allow_private = true;
        t.timeout_secs = 2;
        let target = SoarTarget::build(&t).expect("build");
        let o = target.send("id-1", b"{}".to_vec()).await;
        assert!(matches!(o, Outcome::Retry { status: None, .. }), "{o:?}");
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_at_connect() {
        let t = TargetConfig::new("s", "http://localhost.:9/", Format::Webhook);
        // localhost. is refused already by name.
        assert!(SoarTarget::build(&t).is_err());
    }
}
