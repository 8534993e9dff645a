//! The one TOML configuration file.
//!
//! Every struct rejects unknown keys, so a typo fails at start-up with the
//! key's name and line instead of being silently ignored. Each field's doc
//! comment is its user documentation; `riposte check-config` validates a
//! file without starting anything. Without a file, [`Config::default`] is the
//! embedded configuration: syslog UDP and TCP on 127.0.0.1:5514, HTTP on
//! 127.0.0.1:8080, data in `./riposte-data`.

pub mod preflight;
pub mod redact;
pub mod secret;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use ipnet::IpNet;
use serde::Deserialize;

use crate::act::firewall_sync::FirewallConfig;
use crate::act::guardrails::GuardrailConfig;
use crate::act::notifications::NotifyConfig;
use crate::auth::{Scope, TokenConfig};
use crate::decide::playbook::PlaybookConfig;
use crate::error::EngineError;
use crate::intake::sources::slots::SlotPolicy;
use crate::store::StoreConfig;
use riposte_connectors::kubernetes::KubernetesConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where Riposte keeps its state (EVE tail positions, the SQLite store).
    /// Created when missing.
    pub data_dir: PathBuf,
    pub log: LogConfig,
    pub parse: ParseConfig,
    pub syslog: SyslogConfig,
    pub http: HttpConfig,
    pub api: ApiConfig,
    /// Suricata EVE files to follow.
    pub eve: Vec<EveConfig>,
    pub pipeline: PipelineConfig,
    pub playbooks: PlaybookConfig,
    pub pods: PodsConfig,
    /// The cluster: pod index, quarantine, network policy, events.
    pub kubernetes: KubernetesConfig,
    pub guardrails: GuardrailConfig,
    /// The audit trail, outbox, approvals, idempotency keys, EDL entries and
    /// IP-tag leases: SQLite in `data_dir` unless a PostgreSQL URL is given.
    pub store: StoreConfig,
    /// Notification targets (SOAR platforms, webhook receivers) and the
    /// outbox worker.
    pub notify: NotifyConfig,
    /// Firewalls (PAN-OS IP tags), EDLs and the never-block list.
    pub firewall: FirewallConfig,
    /// RabbitMQ: queues to consume, `publish` intents, the decision stream,
    /// and the partitions between `--role ingest` and `--role worker`.
    pub amqp: Option<crate::intake::queues::AmqpConfig>,
    /// Which replica runs schedules, expiries, reconciliation and purge.
    pub leader: crate::leader::LeaderConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("riposte-data"),
            log: LogConfig::default(),
            parse: ParseConfig::default(),
            syslog: SyslogConfig::default(),
            http: HttpConfig::default(),
            api: ApiConfig::default(),
            eve: Vec::new(),
            pipeline: PipelineConfig::default(),
            playbooks: PlaybookConfig::default(),
            pods: PodsConfig::default(),
            kubernetes: KubernetesConfig::default(),
            guardrails: GuardrailConfig::default(),
            store: StoreConfig::default(),
            notify: NotifyConfig::default(),
            firewall: FirewallConfig::default(),
            amqp: None,
            leader: crate::leader::LeaderConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter such as `info` or `info,riposte_engine::intake::sources=debug`;
    /// the `RUST_LOG` environment variable overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParseConfig {
    /// `auto` (detect per record), `panos`, `cef`, `leef` or `eve`.
    pub format: String,
    /// The firewall's time zone (IANA name such as `Europe/Berlin`): PAN-OS
    /// CSV times carry no zone.
    pub timezone: String,
    /// Longest record accepted on any source, in bytes; longer ones are
    /// refused and counted.
    pub max_record_bytes: usize,
}

impl Default for ParseConfig {
    fn default() -> Self {
        ParseConfig {
            format: "auto".into(),
            timezone: "UTC".into(),
            max_record_bytes: 64 * 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyslogConfig {
    pub udp: UdpConfig,
    pub tcp: TcpConfig,
    pub tls: TlsConfig,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        let local: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 5514));
        SyslogConfig {
            udp: UdpConfig {
                listen: vec![local],
                ..UdpConfig::default()
            },
            tcp: TcpConfig {
                listen: vec![local],
                ..TcpConfig::default()
            },
            tls: TlsConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UdpConfig {
    /// Addresses to receive syslog datagrams on; empty disables UDP.
    pub listen: Vec<SocketAddr>,
    /// Senders allowed to log to Riposte; datagrams from others are dropped
    /// and counted. Empty allows everyone.
    pub allowed_sources: Vec<IpNet>,
    /// Kernel receive buffer to ask for (SO_RCVBUF), in bytes: bursts wait
    /// there instead of being dropped.
    pub receive_buffer_bytes: usize,
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig {
            listen: Vec::new(),
            allowed_sources: Vec::new(),
            receive_buffer_bytes: 8 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TcpConfig {
    /// Addresses to accept syslog connections on; empty disables TCP.
    pub listen: Vec<SocketAddr>,
    /// Senders allowed to connect; others are refused and counted. Empty
    /// allows everyone.
    pub allowed_sources: Vec<IpNet>,
    /// Connections served at once; further ones are refused and counted.
    pub max_connections: usize,
    /// Connections one address may hold at once; further ones are refused
    /// and counted, so that one host cannot take every slot.
    pub max_connections_per_source: usize,
    /// Senders (the firewalls) that may use the reserved slots.
    pub priority_sources: Vec<IpNet>,
    /// Slots out of `max_connections` kept for `priority_sources`, so that
    /// many other addresses together cannot lock them out; unused while
    /// `priority_sources` is empty.
    pub reserved_connections: usize,
    /// A connection that sends nothing for this long is closed, so stalled
    /// clients cannot hold connection slots.
    pub idle_timeout_secs: u64,
}

impl TcpConfig {
    /// How the connection slots are shared out.
    pub fn slot_policy(&self) -> SlotPolicy {
        SlotPolicy {
            total: self.max_connections,
            per_source: self.max_connections_per_source,
            reserved: self.reserved_connections,
            priority: self.priority_sources.clone(),
        }
    }
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            listen: Vec::new(),
            allowed_sources: Vec::new(),
            max_connections: 512,
            max_connections_per_source: 64,
            priority_sources: Vec::new(),
            reserved_connections: 32,
            idle_timeout_secs: 300,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Addresses to accept syslog over TLS on (RFC 5425 framing); empty
    /// disables TLS.
    pub listen: Vec<SocketAddr>,
    /// PEM certificate chain presented to senders.
    pub cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// When set, senders must present a client certificate signed by one of
    /// these CAs (PEM).
    pub client_ca_file: Option<PathBuf>,
    pub allowed_sources: Vec<IpNet>,
    pub max_connections: usize,
    /// As in `[syslog.tcp]`; a TLS handshake holds its slot too.
    pub max_connections_per_source: usize,
    /// As in `[syslog.tcp]`.
    pub priority_sources: Vec<IpNet>,
    /// As in `[syslog.tcp]`.
    pub reserved_connections: usize,
    pub idle_timeout_secs: u64,
    /// A handshake not finished in this time is abandoned.
    pub handshake_timeout_secs: u64,
}

impl TlsConfig {
    /// How the connection slots are shared out.
    pub fn slot_policy(&self) -> SlotPolicy {
        SlotPolicy {
            total: self.max_connections,
            per_source: self.max_connections_per_source,
            reserved: self.reserved_connections,
            priority: self.priority_sources.clone(),
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            listen: Vec::new(),
            cert_file: None,
            key_file: None,
            client_ca_file: None,
            allowed_sources: Vec::new(),
            max_connections: 512,
            max_connections_per_source: 64,
            priority_sources: Vec::new(),
            reserved_connections: 32,
            idle_timeout_secs: 300,
            handshake_timeout_secs: 10,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address of the HTTP API (ingest, health, metrics, decisions).
    pub listen: Option<SocketAddr>,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Requests not answered within this time get 408.
    pub request_timeout_secs: u64,
    /// Authenticated requests served at once, across every route; more
    /// wait up to a second, then get 503 with Retry-After.
    pub max_concurrent_requests: usize,
    /// Requests served at once whose sender is not known before the body is
    /// read (HMAC-signed webhooks); more get 503 at once. Separate from
    /// `max_concurrent_requests`, which they can never take.
    pub max_concurrent_unauthenticated: usize,
    /// Bytes of request bodies held in memory at once, over all
    /// connections; a body that does not fit gets 503 with Retry-After.
    /// At least `max_body_bytes`.
    pub body_budget_bytes: usize,
    /// The part of `body_budget_bytes` that bodies of not-yet-authenticated
    /// senders (signed webhooks) may hold; also the largest such body (413
    /// beyond).
    pub unauthenticated_body_budget_bytes: usize,
    /// Slowest body accepted, in bytes per second, once
    /// `min_body_rate_grace_secs` have passed; slower ones get 408 and the
    /// connection is closed. 0 turns the check off.
    pub min_body_bytes_per_sec: u64,
    /// How long a body may take before the minimum rate applies.
    pub min_body_rate_grace_secs: u64,
    /// A client that has not sent its request headers within this time is
    /// disconnected (slowloris).
    pub header_read_timeout_secs: u64,
    /// Open connections at most.
    pub max_connections: usize,
    /// PEM certificate chain: when set with `tls_key_file`, the API is
    /// served over HTTPS (rustls) instead of plain HTTP.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub tls_key_file: Option<PathBuf>,
    /// When set, clients must present a certificate signed by one of these
    /// CAs (PEM).
    pub tls_client_ca_file: Option<PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            max_body_bytes: 10 * 1024 * 1024,
            request_timeout_secs: 30,
            max_concurrent_requests: 256,
            max_concurrent_unauthenticated: 64,
            body_budget_bytes: 64 * 1024 * 1024,
            unauthenticated_body_budget_bytes: 4 * 1024 * 1024,
            min_body_bytes_per_sec: 1024,
            min_body_rate_grace_secs: 5,
            header_read_timeout_secs: 10,
            max_connections: 1024,
            tls_cert_file: None,
            tls_key_file: None,
            tls_client_ca_file: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// API tokens. Only their SHA-256 hashes are configured (`riposte
    /// hash-token` makes one), so the config file holds no secret.
    pub tokens: Vec<TokenConfig>,
    /// Inbound webhooks (`POST /v1/webhooks/{name}`), see the README.
    pub webhooks: Vec<crate::api::webhooks::WebhookConfig>,
    /// How long `POST /v1/actions` waits for the outcome before answering
    /// 202 with a `Location` to poll, in milliseconds.
    pub action_wait_ms: u64,
    /// Deepest nesting of arrays and objects accepted in JSON bodies.
    pub max_json_depth: usize,
    /// The service's address as SOAR platforms reach it, for the signed
    /// approve/deny links (`https://riposte.example.com`).
    pub public_url: String,
    /// Key signing the approve/deny links. Unset: a random key generated
    /// once and kept in `<data_dir>/approval-secret` (replicas that do not
    /// share a data directory need this set).
    pub approval_secret: Option<crate::config::secret::SecretSource>,
    /// How often approvals past their deadline are looked for, in
    /// milliseconds.
    pub approval_check_ms: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            tokens: Vec::new(),
            webhooks: Vec::new(),
            action_wait_ms: 2_000,
            max_json_depth: crate::api::json::DEFAULT_MAX_DEPTH,
            public_url: "http://127.0.0.1:8080".into(),
            approval_secret: None,
            approval_check_ms: 1_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EveConfig {
    /// The EVE JSON file Suricata writes (`eve.json`). Followed across
    /// rotation and truncation; the read position survives restarts.
    pub path: PathBuf,
    /// How often to look for new lines, in milliseconds.
    #[serde(default = "default_eve_poll_ms")]
    pub poll_interval_ms: u64,
    /// Where to start when no position is remembered: `end` (only new
    /// records) or `beginning`.
    #[serde(default)]
    pub start_at: StartAt,
}

fn default_eve_poll_ms() -> u64 {
    250
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    #[default]
    End,
    Beginning,
}

/// Where the pod behind an address comes from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PodsConfig {
    /// A JSON file listing pods and their addresses
    /// (`[{"namespace", "name", "ips", "labels", "owner_kind", "owner_name",
    /// "node", "service_account", "namespace_labels"}]`): for labs, demos and
    /// addresses outside any cluster. Read at start-up.
    pub inventory_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Parallel shards between sources and playbooks; events from one source
    /// address always go to the same shard, in order. 0 means one per core.
    pub shards: usize,
    /// Events waiting per shard. When full, TCP and TLS stop reading (the
    /// sender slows), HTTP answers 503 and UDP drops (counted).
    pub queue_capacity: usize,
    /// On shutdown, how long to let queued events finish.
    pub drain_timeout_secs: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            shards: 0,
            queue_capacity: 8192,
            drain_timeout_secs: 10,
        }
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, EngineError> {
        let text = std::fs::read_to_string(path).map_err(|source| EngineError::ConfigRead {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text, path)
    }

    /// Parses and validates config text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Config, EngineError> {
        let config: Config = toml::from_str(text).map_err(|e| EngineError::ConfigParse {
            path: origin.to_path_buf(),
            message: crate::config::redact::toml_error(text, &e),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: values that must parse, files that must
    /// exist, settings that must agree. The first problem found is the one
    /// reported, section by section.
    pub fn validate(&self) -> Result<(), EngineError> {
        self.validate_limits()?;
        self.validate_syslog()?;
        self.validate_api()?;
        self.validate_http_tls()?;
        self.validate_components()?;
        self.validate_http_bodies()
    }

    /// `[parse]` and `[pipeline]`.
    fn validate_limits(&self) -> Result<(), EngineError> {
        self.parse_options()?;
        if self.parse.max_record_bytes < 256 || self.parse.max_record_bytes > 16 * 1024 * 1024 {
            return Err(EngineError::invalid(
                "parse.max_record_bytes",
                "must be between 256 and 16777216",
            ));
        }
        if self.pipeline.queue_capacity == 0 {
            return Err(EngineError::invalid(
                "pipeline.queue_capacity",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// `[syslog]`: connection limits and the TLS listener's files.
    fn validate_syslog(&self) -> Result<(), EngineError> {
        if self.syslog.tcp.max_connections == 0 {
            return Err(EngineError::invalid(
                "syslog.tcp.max_connections",
                "must be at least 1",
            ));
        }
        for (table, slots) in [
            ("syslog.tcp", self.syslog.tcp.slot_policy()),
            ("syslog.tls", self.syslog.tls.slot_policy()),
        ] {
            if let Some((key, message)) = slots.problem() {
                return Err(EngineError::invalid(format!("{table}.{key}"), message));
            }
        }
        let tls = &self.syslog.tls;
        if !tls.listen.is_empty() {
            for (key, file) in [
                ("syslog.tls.cert_file", &tls.cert_file),
                ("syslog.tls.key_file", &tls.key_file),
            ] {
                match file {
                    None => {
                        return Err(EngineError::invalid(
                            key,
                            "required when syslog.tls.listen is set",
                        ))
                    }
                    Some(path) if !path.is_file() => {
                        return Err(EngineError::invalid(
                            key,
                            format!("{} is not a readable file", path.display()),
                        ))
                    }
                    Some(_) => {}
                }
            }
            if let Some(ca) = &tls.client_ca_file {
                if !ca.is_file() {
                    return Err(EngineError::invalid(
                        "syslog.tls.client_ca_file",
                        format!("{} is not a readable file", ca.display()),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `[api]`: tokens, webhooks and the approval settings.
    fn validate_api(&self) -> Result<(), EngineError> {
        let mut token_names = std::collections::HashSet::new();
        let mut token_hashes = std::collections::HashSet::new();
        for (i, token) in self.api.tokens.iter().enumerate() {
            let key = format!("api.tokens[{i}]");
            token
                .validate()
                .map_err(EngineError::rejected(key.as_str()))?;
            // The name keys audit records and idempotency keys: two holders
            // under one name would share them.
            if !token_names.insert(token.name.as_str()) {
                return Err(EngineError::invalid(
                    &key,
                    format!("token `{}` is configured twice", token.name),
                ));
            }
            if !token_hashes.insert(token.sha256.trim().to_ascii_lowercase()) {
                return Err(EngineError::invalid(
                    &key,
                    format!(
                        "token `{}` has the same sha256 as another token: one token, one name",
                        token.name
                    ),
                ));
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, hook) in self.api.webhooks.iter().enumerate() {
            hook.validate()
                .map_err(EngineError::rejected(format!("api.webhooks[{i}]")))?;
            if !names.insert(hook.name.as_str()) {
                return Err(EngineError::invalid(
                    format!("api.webhooks[{i}]"),
                    format!("webhook `{}` is configured twice", hook.name),
                ));
            }
        }
        if !(1..=256).contains(&self.api.max_json_depth) {
            return Err(EngineError::invalid(
                "api.max_json_depth",
                "must be in 1..=256",
            ));
        }
        if crate::config::redact::has_userinfo(&self.api.public_url) {
            return Err(EngineError::invalid(
                "api.public_url",
                "must not hold user:password (it is published in every approval link)",
            ));
        }
        if self.api.approval_check_ms == 0 {
            return Err(EngineError::invalid(
                "api.approval_check_ms",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// `[http]`'s certificate, key and client CA go together.
    fn validate_http_tls(&self) -> Result<(), EngineError> {
        if self.http.tls_cert_file.is_some() != self.http.tls_key_file.is_some() {
            return Err(EngineError::invalid(
                "http.tls_cert_file",
                "tls_cert_file and tls_key_file go together",
            ));
        }
        if self.http.tls_client_ca_file.is_some() && self.http.tls_cert_file.is_none() {
            return Err(EngineError::invalid(
                "http.tls_client_ca_file",
                "client certificates need HTTPS: set tls_cert_file and tls_key_file",
            ));
        }
        Ok(())
    }

    /// The sections whose types check themselves.
    fn validate_components(&self) -> Result<(), EngineError> {
        self.guardrails
            .validate()
            .map_err(EngineError::rejected("guardrails.max_workload_share"))?;
        self.firewall
            .validate()
            .map_err(EngineError::rejected("firewall"))?;
        self.kubernetes
            .validate()
            .map_err(EngineError::rejected("kubernetes"))?;
        self.store
            .validate()
            .map_err(|(key, message)| EngineError::invalid(key, message))?;
        self.notify
            .validate()
            .map_err(|(key, message)| EngineError::invalid(&key, message))?;
        if let Some(amqp) = &self.amqp {
            amqp.validate()
                .map_err(|(key, message)| EngineError::invalid(&key, message))?;
        }
        self.leader
            .validate()
            .map_err(EngineError::rejected("leader"))?;
        Ok(())
    }

    /// `[http]`'s body limits.
    fn validate_http_bodies(&self) -> Result<(), EngineError> {
        if self.http.max_body_bytes == 0 {
            return Err(EngineError::invalid(
                "http.max_body_bytes",
                "must be at least 1",
            ));
        }
        if self.http.body_budget_bytes < self.http.max_body_bytes {
            return Err(EngineError::invalid(
                "http.body_budget_bytes",
                "must be at least http.max_body_bytes",
            ));
        }
        if self.http.unauthenticated_body_budget_bytes == 0
            || self.http.unauthenticated_body_budget_bytes > self.http.body_budget_bytes
        {
            return Err(EngineError::invalid(
                "http.unauthenticated_body_budget_bytes",
                "must be in 1..=http.body_budget_bytes",
            ));
        }
        Ok(())
    }

    /// The parser settings this config asks for.
    pub fn parse_options(&self) -> Result<riposte_firewall::ParseOptions, EngineError> {
        let format = self
            .parse
            .format
            .parse()
            .map_err(|message| EngineError::ConfigInvalid {
                key: "parse.format".into(),
                message,
            })?;
        let timezone: Tz = self
            .parse
            .timezone
            .parse()
            .map_err(|_| EngineError::ConfigInvalid {
                key: "parse.timezone".into(),
                message: format!(
                    "`{}` is not an IANA time zone name (such as UTC or Europe/Berlin)",
                    self.parse.timezone
                ),
            })?;
        Ok(riposte_firewall::ParseOptions {
            format,
            timezone,
            max_record_bytes: self.parse.max_record_bytes,
        })
    }

    /// Number of pipeline shards, resolving `0` to the core count.
    pub fn shard_count(&self) -> usize {
        match self.pipeline.shards {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        }
    }

    /// Whether any configured token grants `scope`.
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.api.tokens.iter().any(|t| t.scopes.contains(&scope))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, EngineError> {
        Config::from_toml(text, Path::new("test.toml"))
    }

    #[test]
    fn embedded_defaults_listen_on_loopback() {
        let c = Config::default();
        c.validate().expect("defaults are valid");
        assert_eq!(
            c.syslog.udp.listen,
            vec!["127.0.0.1:5514".parse().expect("addr")]
        );
        assert_eq!(
            c.syslog.tcp.listen,
            vec!["127.0.0.1:5514".parse().expect("addr")]
        );
        assert_eq!(c.http.listen, Some("127.0.0.1:8080".parse().expect("addr")));
        assert_eq!(c.data_dir, PathBuf::from("riposte-data"));
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = parse("data_dir = \"x\"\n\n[syslog.tcp]\nlisten = []\nmax_conections = 3\n")
            .expect_err("typo must be refused");
        let msg = err.to_string();
        assert!(msg.contains("max_conections"), "{msg}");
        assert!(msg.contains("line 5"), "{msg}");
    }

    #[test]
    fn bad_timezone_is_refused_with_key() {
        let err = parse("[parse]\ntimezone = \"Mars/Olympus\"\n").expect_err("bad zone");
        assert!(err.to_string().contains("parse.timezone"), "{err}");
    }

    #[test]
    fn tls_without_certificate_is_refused() {
        let err = parse("[syslog.tls]\nlisten = [\"127.0.0.1:6514\"]\n").expect_err("no cert");
        assert!(err.to_string().contains("syslog.tls.cert_file"), "{err}");
    }

    #[test]
    fn two_tokens_may_not_share_a_name() {
        let token = |name: &str, token: &str| {
            format!(
                "[[api.tokens]]\nname = \"{name}\"\nsha256 = \"{}\"\nscopes = [\"read\"]\n",
                crate::auth::hash_token(token)
            )
        };
        let err = parse(&format!("{}{}", token("soc", "a"), token("soc", "b"))).expect_err("twins");
        assert!(err.to_string().contains("api.tokens[1]"), "{err}");
        let err = parse(&format!("{}{}", token("soc", "a"), token("ops", "a")))
            .expect_err("one token, two names");
        assert!(err.to_string().contains("api.tokens[1]"), "{err}");
        parse(&format!("{}{}", token("soc", "a"), token("ops", "b"))).expect("distinct");
    }

    #[test]
    fn debug_of_a_loaded_config_shows_no_secret() {
        let c = parse(
            r#"
            [api]
            approval_secret = { value = "S3CRET-approval" }
            [[api.webhooks]]
            name = "w"
            verify = "standard"
            secrets = [{ value = "S3CRET-webhook" }]
            [store]
            url = "postgres://riposte:S3CRET-store@db/riposte"
            [amqp]
            url = "amqp://riposte:S3CRET-amqp@broker:5672/%2f"
            [[notify.targets]]
            name = "soar"
            url = "https://soar.example.com/hook"
            auth = { kind = "basic", username = "u", password = "S3CRET-basic" }
            signing_secrets = ["S3CRET-signing"]
            [[firewall.targets]]
            name = "fw"
            url = "https://192.0.2.1"
            key = "S3CRET-panos"
            "#,
        )
        .expect("valid");
        let debug = format!("{c:?}");
        assert!(!debug.contains("S3CRET"), "{debug}");
    }

    #[test]
    fn urls_with_a_password_do_not_load() {
        for text in [
            "[api]\npublic_url = \"https://u:S3CRET@riposte.example\"\n",
            "[notify]\npublic_url = \"https://u:S3CRET@riposte.example\"\n",
            "[[notify.targets]]\nname = \"s\"\nurl = \"https://u:S3CRET@soar.example\"\n",
            "[[firewall.targets]]\nname = \"fw\"\nurl = \"https://u:S3CRET@192.0.2.1\"\nkey = \"k\"\n",
        ] {
            let err = parse(text).expect_err("refused");
            assert!(!err.to_string().contains("S3CRET"), "{err}");
        }
    }

    #[test]
    fn full_example_parses() {
        let c = parse(
            r#"
            data_dir = "/var/lib/riposte"
            [log]
            format = "json"
            [parse]
            timezone = "Europe/Berlin"
            [syslog.udp]
            listen = ["0.0.0.0:514"]
            allowed_sources = ["10.0.0.0/8"]
            [http]
            listen = "0.0.0.0:8080"
            [[api.tokens]]
            name = "firewall"
            sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
            scopes = ["ingest"]
            [[eve]]
            path = "/var/log/suricata/eve.json"
            "#,
        )
        .expect("valid");
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.syslog.udp.allowed_sources.len(), 1);
        assert!(c.has_scope(Scope::Ingest));
        assert!(!c.has_scope(Scope::Admin));
        assert_eq!(c.eve[0].start_at, StartAt::End);
    }
}
