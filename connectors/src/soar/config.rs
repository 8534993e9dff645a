//! A notification target's configuration (`[[notify.targets]]` in the
//! engine's config file). Every key is documented here; unknown keys are
//! refused.

use std::path::PathBuf;

use serde::Deserialize;

use super::SecretSource;

/// One SOAR platform or webhook receiver Riposte tells about decisions.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// The name playbooks use: `notify("soar", #{...})`. Letters, digits,
    /// `-` and `_`.
    pub name: String,
    /// Where to POST, `http://` or `https://`, e.g.
    /// `https://xsoar.example/instance/execute/riposte`,
    /// `https://soar.example/rest/container`,
    /// `https://thehive.example/api/v1/alert`.
    pub url: String,
    /// The body's shape: `webhook` (default), `xsoar`, `splunk_soar`,
    /// `thehive` or `slack`.
    #[serde(default)]
    pub format: Format,
    /// How Riposte authenticates: `{ kind = "none" }` (default),
    /// `{ kind = "basic", username, password }`, `{ kind = "bearer", token }`,
    /// `{ kind = "header", name, value }`, `{ kind = "ph_auth_token", token }`
    /// (Splunk SOAR). Secrets are `"inline"`, `{ env = "VAR" }` or
    /// `{ file = "/path" }`.
    #[serde(default)]
    pub auth: Auth,
    /// TLS material for `https://` targets.
    #[serde(default)]
    pub tls: TlsConfig,
    /// Standard Webhooks signing secrets (`whsec_<base64>`). Every one signs
    /// each request (one `v1,` entry each), so a secret is rotated by adding
    /// the new one, updating the receiver, then removing the old one.
    /// Empty: no `webhook-signature` header (`webhook-id` and
    /// `webhook-timestamp` are always sent).
    #[serde(default)]
    pub signing_secrets: Vec<SecretSource>,
    /// Which notifications this target receives: `notify` (the playbooks'
    /// `notify("<name>", …)` intents), notifications of enforced actions
    /// by outcome: `applied`, `refused`, `failed`, and `approval`: a request
    /// for each intent a playbook puts up for approval, with its signed
    /// approve and deny links (a `notify` of the same decision carries them
    /// too). Default `["notify"]`.
    #[serde(default = "default_on")]
    pub on: Vec<NotifyOn>,
    /// Seconds one attempt may take, response included (default 15; the
    /// Standard Webhooks advice is 15–30).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Requests in flight to this target at once (default 4).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Requests per second to this target at most; 0 = unlimited (default 0).
    #[serde(default)]
    pub rate_limit_per_sec: u32,
    /// The first retry waits up to this many milliseconds; each further one
    /// doubles it, with full jitter (default 1000).
    #[serde(default = "default_retry_initial_ms")]
    pub retry_initial_ms: u64,
    /// Longest wait between two attempts, Retry-After included, in seconds
    /// (default 600).
    #[serde(default = "default_retry_max_secs")]
    pub retry_max_secs: u64,
    /// A notification not delivered this many seconds after it was written
    /// goes to the dead-letter list (default 86400: one day).
    #[serde(default = "default_max_age_secs")]
    pub max_age_secs: u64,
    /// Allow loopback, link-local and cloud metadata addresses (default
    /// false). Only for tests and sidecars: see the SSRF guard.
    #[serde(default)]
    pub allow_private: bool,
    /// Tags added to the incident, container or alert (all formats but
    /// `webhook` and `slack`).
    #[serde(default)]
    pub tags: Vec<String>,
    /// XSOAR: the incident type (default `Riposte Alert`).
    #[serde(default)]
    pub incident_type: Option<String>,
    /// Splunk SOAR: the container and artifact label (default `events`).
    #[serde(default)]
    pub label: Option<String>,
    /// TheHive: the alert `type` (default `riposte`) and `source` (default
    /// `riposte`).
    #[serde(default)]
    pub alert_type: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    /// TheHive: traffic light protocol and permissible actions protocol,
    /// 0 (white/clear) to 3 (red) (default 2, amber).
    #[serde(default)]
    pub tlp: Option<u8>,
    #[serde(default)]
    pub pap: Option<u8>,
    /// Seconds a coalescing window lasts (default 600; 0: every
    /// notification is its own incident). Notifications about the same
    /// subject (the pod or address, plus the title or playbook) within a
    /// window become one incident: the first is sent at once, the later
    /// ones are counted into updates of it.
    #[serde(default = "default_coalesce_window_secs")]
    pub coalesce_window_secs: u64,
    /// Seconds between two updates of one incident at most (default 60):
    /// the events counted meanwhile go out together, and once more when the
    /// window closes.
    #[serde(default = "default_coalesce_flush_secs")]
    pub coalesce_flush_secs: u64,
    /// Where updates go, when not at `url`'s origin: the XSOAR server
    /// (`POST {api_url}/incident`), Splunk SOAR (`POST
    /// {api_url}/rest/artifact`), TheHive (`PATCH
    /// {api_url}/api/v1/alert/{id}`). Default: `url`'s scheme, host and
    /// port. Slack and webhook targets send updates to `url` itself.
    #[serde(default)]
    pub api_url: Option<String>,
    /// Slack: the channel for `chat.postMessage` (`url` =
    /// `https://slack.com/api/chat.postMessage`, `auth` a bot token), which
    /// answers the message's `ts` so updates are threaded replies. Unset
    /// (an incoming webhook), updates are messages of their own.
    #[serde(default)]
    pub channel: Option<String>,
}

fn default_on() -> Vec<NotifyOn> {
    vec![NotifyOn::Notify]
}
fn default_timeout_secs() -> u64 {
    15
}
fn default_concurrency() -> usize {
    4
}
fn default_retry_initial_ms() -> u64 {
    1000
}
fn default_retry_max_secs() -> u64 {
    600
}
fn default_max_age_secs() -> u64 {
    86_400
}
fn default_coalesce_window_secs() -> u64 {
    600
}
fn default_coalesce_flush_secs() -> u64 {
    60
}

/// The body shapes Riposte speaks.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Generic JSON in the Standard Webhooks envelope `{type, timestamp, data}`.
    #[default]
    Webhook,
    /// Cortex XSOAR generic webhook: an incident.
    Xsoar,
    /// Splunk SOAR `/rest/container`: a container with artifacts.
    SplunkSoar,
    /// TheHive 5 `/api/v1/alert`: an alert with observables.
    Thehive,
    /// A Slack-compatible incoming-webhook message (`text` and `blocks`).
    Slack,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Webhook => "webhook",
            Format::Xsoar => "xsoar",
            Format::SplunkSoar => "splunk_soar",
            Format::Thehive => "thehive",
            Format::Slack => "slack",
        }
    }
}

/// What a target is told about.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum NotifyOn {
    Notify,
    Applied,
    Refused,
    Failed,
    Approval,
}

/// How Riposte authenticates to a target.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    #[default]
    None,
    /// `Authorization: Basic …` (XSOAR generic webhook).
    Basic {
        username: String,
        password: SecretSource,
    },
    /// `Authorization: Bearer …` (TheHive API key).
    Bearer { token: SecretSource },
    /// A header of your choosing, e.g. `X-Api-Key`.
    Header { name: String, value: SecretSource },
    /// Splunk SOAR's `ph-auth-token` header.
    PhAuthToken { token: SecretSource },
}

/// TLS settings for `https://` targets. The system roots are always
/// trusted; `ca_file` adds a private CA.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with CA certificates to trust in addition to the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain for mutual TLS (with `client_key`).
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
}

impl TargetConfig {
    /// A target with every default, for tests and examples.
    pub fn new(name: impl Into<String>, url: impl Into<String>, format: Format) -> TargetConfig {
        TargetConfig {
            name: name.into(),
            url: url.into(),
            format,
            auth: Auth::None,
            tls: TlsConfig::default(),
            signing_secrets: Vec::new(),
            on: default_on(),
            timeout_secs: default_timeout_secs(),
            concurrency: default_concurrency(),
            rate_limit_per_sec: 0,
            retry_initial_ms: default_retry_initial_ms(),
            retry_max_secs: default_retry_max_secs(),
            max_age_secs: default_max_age_secs(),
            allow_private: false,
            tags: Vec::new(),
            incident_type: None,
            label: None,
            alert_type: None,
            source: None,
            tlp: None,
            pap: None,
            coalesce_window_secs: default_coalesce_window_secs(),
            coalesce_flush_secs: default_coalesce_flush_secs(),
            api_url: None,
            channel: None,
        }
    }

    /// Checks what serde cannot: the name, numbers in range, knobs that
    /// belong to another format, TLS pairs.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "name `{}`: use letters, digits, `-` and `_`",
                self.name
            ));
        }
        // Checked here as well as when the target is built, so that no
        // config holding a URL password loads (and none reaches a `Debug`).
        if reqwest::Url::parse(&self.url)
            .is_ok_and(|u| !u.username().is_empty() || u.password().is_some())
        {
            return Err("url: put credentials in `auth`, not in the URL (URLs get logged)".into());
        }
        if self.timeout_secs == 0 || self.timeout_secs > 300 {
            return Err("timeout_secs must be 1 to 300".into());
        }
        if self.concurrency == 0 || self.concurrency > 256 {
            return Err("concurrency must be 1 to 256".into());
        }
        if self.retry_initial_ms == 0 {
            return Err("retry_initial_ms must be at least 1".into());
        }
        if self.retry_max_secs == 0 {
            return Err("retry_max_secs must be at least 1".into());
        }
        if self.max_age_secs == 0 {
            return Err("max_age_secs must be at least 1".into());
        }
        if self.on.is_empty() {
            return Err("`on` is empty: the target would never be told anything".into());
        }
        for (key, set, format) in [
            ("incident_type", self.incident_type.is_some(), Format::Xsoar),
            ("label", self.label.is_some(), Format::SplunkSoar),
            ("alert_type", self.alert_type.is_some(), Format::Thehive),
            ("source", self.source.is_some(), Format::Thehive),
            ("tlp", self.tlp.is_some(), Format::Thehive),
            ("pap", self.pap.is_some(), Format::Thehive),
            ("channel", self.channel.is_some(), Format::Slack),
        ] {
            if set && self.format != format {
                return Err(format!(
                    "`{key}` only applies to format = \"{}\"",
                    format.as_str()
                ));
            }
        }
        for (key, v) in [("tlp", self.tlp), ("pap", self.pap)] {
            if v.is_some_and(|v| v > 3) {
                return Err(format!("{key} must be 0 to 3"));
            }
        }
        if self.coalesce_window_secs > 7 * 86_400 {
            return Err("coalesce_window_secs must be at most 604800 (a week)".into());
        }
        if self.coalesce_window_secs > 0
            && (self.coalesce_flush_secs == 0
                || self.coalesce_flush_secs > self.coalesce_window_secs)
        {
            return Err("coalesce_flush_secs must be 1 to coalesce_window_secs".into());
        }
        if let Some(api) = &self.api_url {
            match reqwest::Url::parse(api) {
                Ok(u)
                    if matches!(u.scheme(), "http" | "https")
                        && u.password().is_none()
                        && u.username().is_empty() => {}
                _ => {
                    return Err(
                        "api_url must be an http:// or https:// URL without credentials".into(),
                    )
                }
            }
        }
        if self.tls.client_cert.is_some() != self.tls.client_key.is_some() {
            return Err("tls.client_cert and tls.client_key go together".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_names_ranges_and_format_knobs() {
        let ok = TargetConfig::new("soar", "https://x.example/", Format::Xsoar);
        assert_eq!(ok.validate(), Ok(()));
        let mut bad = ok.clone();
        bad.name = "a b".into();
        assert!(bad.validate().is_err());
        let mut bad = ok.clone();
        bad.tlp = Some(2);
        assert!(bad.validate().expect_err("thehive only").contains("tlp"));
        let mut bad = ok.clone();
        bad.concurrency = 0;
        assert!(bad.validate().is_err());
        let mut bad = ok;
        bad.tls.client_cert = Some("/c".into());
        assert!(bad.validate().is_err());
    }

    #[test]
    fn coalescing_settings_are_checked() {
        let t: TargetConfig = serde_json::from_str(
            r#"{"name": "s", "url": "https://x.example/", "format": "slack",
                "coalesce_window_secs": 300, "coalesce_flush_secs": 30, "channel": "C0SOC"}"#,
        )
        .expect("parse");
        assert_eq!(t.validate(), Ok(()));
        let d = TargetConfig::new("s", "https://x.example/", Format::Xsoar);
        assert_eq!((d.coalesce_window_secs, d.coalesce_flush_secs), (600, 60));
        let mut off = d.clone();
        off.coalesce_window_secs = 0;
        off.coalesce_flush_secs = 0;
        assert_eq!(off.validate(), Ok(()), "0 turns coalescing off");
        let mut bad = d.clone();
        bad.coalesce_flush_secs = 601;
        assert!(bad
            .validate()
            .expect_err("flush > window")
            .contains("coalesce_flush_secs"));
        let mut bad = d.clone();
        bad.coalesce_flush_secs = 0;
        assert!(bad.validate().is_err());
        let mut bad = d.clone();
        bad.api_url = Some("https://u:p@x.example".into());
        assert!(bad.validate().expect_err("credentials").contains("api_url"));
        let mut bad = d;
        bad.channel = Some("C0SOC".into());
        assert!(bad.validate().expect_err("slack only").contains("channel"));
    }

    #[test]
    fn auth_shapes_deserialize_and_refuse_unknown_keys() {
        let a: Auth =
            serde_json::from_str(r#"{"kind":"basic","username":"u","password":{"env":"P"}}"#)
                .expect("basic");
        assert!(matches!(a, Auth::Basic { .. }));
        let a: Auth =
            serde_json::from_str(r#"{"kind":"ph_auth_token","token":"t"}"#).expect("splunk");
        assert!(matches!(a, Auth::PhAuthToken { .. }));
        assert!(serde_json::from_str::<Auth>(r#"{"kind":"bearer","token":"t","x":1}"#).is_err());
        assert!(!format!(
            "{:?}",
            Auth::Bearer {
                token: SecretSource::Inline("s3cret".into())
            }
        )
        .contains("s3cret"));
    }
}
