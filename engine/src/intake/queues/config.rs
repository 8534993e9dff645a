//! `[amqp]`: the broker, the queues Riposte consumes, the partitions between
//! ingest and worker replicas, and the decision stream.

use std::path::PathBuf;

use riposte_connectors::amqp::{BrokerSettings, BrokerUrl, ExchangeType, QueueSpec};
use serde::Deserialize;

/// The RabbitMQ side of Riposte. The connection keys are those of the
/// connector's [`BrokerSettings`], so a bare `[amqp] url = "…"` works.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AmqpConfig {
    /// `amqp://user@host:5672/vhost` or `amqps://…` (vhost URL-encoded:
    /// `%2f` is `/`). The password may be in the URL, or kept out of it in
    /// `password_file`.
    pub url: BrokerUrl,
    /// A file holding the broker password (a mounted Kubernetes secret),
    /// read at start-up; it replaces any password in `url`.
    pub password_file: Option<PathBuf>,
    /// PEM CA certificate(s) of the broker, for `amqps://` with a private CA.
    pub ca_file: Option<PathBuf>,
    /// Shown by `rabbitmqctl list_connections`; the role is appended.
    pub connection_name: String,
    pub heartbeat_secs: u16,
    pub connect_timeout_secs: u64,
    /// First wait before reconnecting, in milliseconds (doubles, with
    /// jitter, up to `reconnect_max_ms`).
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
    /// Published messages awaiting the broker's confirmation at once.
    pub max_inflight_confirms: usize,
    /// Largest message consumed; larger ones are dead-lettered
    /// (`oversized`) without being parsed.
    pub max_message_bytes: usize,
    /// Queues of threat logs or normalized events to consume.
    pub sources: Vec<AmqpSourceConfig>,
    /// The partition queues between `--role ingest` and `--role worker`.
    pub partitions: PartitionConfig,
    /// Every decision and action record, published to an exchange for SIEMs
    /// and SOARs. Off unless configured.
    pub decisions: Option<DecisionStreamConfig>,
    /// The delivery of `publish` intents (and the decision stream) from the
    /// store's outbox.
    pub outbox: AmqpOutboxConfig,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        let b = BrokerSettings::default();
        AmqpConfig {
            url: b.url,
            password_file: None,
            ca_file: None,
            connection_name: b.connection_name,
            heartbeat_secs: b.heartbeat_secs,
            connect_timeout_secs: b.connect_timeout_secs,
            reconnect_min_ms: b.reconnect_min_ms,
            reconnect_max_ms: b.reconnect_max_ms,
            max_inflight_confirms: b.max_inflight_confirms,
            max_message_bytes: 1024 * 1024,
            sources: Vec::new(),
            partitions: PartitionConfig::default(),
            decisions: None,
            outbox: AmqpOutboxConfig::default(),
        }
    }
}

/// What a source queue carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MessageFormat {
    /// Per message: a JSON object or array is read as normalized events
    /// (or EVE records, or `{"message": "<raw line>"}`), anything else as
    /// log lines.
    #[default]
    Auto,
    /// Log lines in any format `riposte parse` reads, one per line.
    Logs,
    /// Normalized Riposte events as JSON (one object, an array, or NDJSON).
    Events,
}

/// One queue to consume (`[[amqp.sources]]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AmqpSourceConfig {
    pub queue: String,
    /// `false`: the queue exists already and is used as it is (checked
    /// passively, never created or changed).
    #[serde(default = "yes")]
    pub declare: bool,
    /// Declare a quorum queue (replicated; counts deliveries).
    #[serde(default = "yes")]
    pub quorum: bool,
    #[serde(default)]
    pub format: MessageFormat,
    /// Unacknowledged messages at most: what is in flight in Riposte.
    #[serde(default = "default_prefetch")]
    pub prefetch: u16,
    /// Deliveries of one message before it is dead-lettered (declared as
    /// `x-delivery-limit` on quorum queues, counted by Riposte as well).
    #[serde(default = "default_delivery_limit")]
    pub delivery_limit: u32,
    /// Where poison messages go, with the reason in the
    /// `x-riposte-dead-letter-reason` header. Declared (fanout, durable)
    /// with a `<queue>.dead` queue bound to it unless `declare` is false.
    #[serde(default)]
    pub dead_letter_exchange: Option<String>,
}

fn yes() -> bool {
    true
}

fn default_prefetch() -> u16 {
    64
}

fn default_delivery_limit() -> u32 {
    5
}

/// The partition queues (`[amqp.partitions]`): ingest replicas publish each
/// event to `<queue_prefix>.<n>`, n chosen by a hash of the source address,
/// so one source's events stay in order; each queue has a single active
/// consumer among the workers. The workers share the partitions: each
/// heartbeats in the store and consumes those assigned to it among the live
/// members (all of them when alone, or with a SQLite store).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PartitionConfig {
    /// A direct exchange; partition n is bound with routing key `n`.
    pub exchange: String,
    pub queue_prefix: String,
    /// Number of partitions. Every replica must agree: changing it moves
    /// sources between partitions (drain first).
    pub count: u16,
    /// Unacknowledged events per partition at a worker.
    pub prefetch: u16,
    pub delivery_limit: u32,
    /// Dead letters of the partitions (declared with a `<prefix>.dead`
    /// queue).
    pub dead_letter_exchange: String,
    /// How often a worker renews its heartbeat in the store and checks
    /// which partitions are its own, in milliseconds.
    pub rebalance_interval_ms: u64,
    /// A worker not heard from for this long is taken for dead and its
    /// partitions go to the others: a crashed worker's partitions wait at
    /// most this plus `rebalance_interval_ms`. A worker that shuts down
    /// hands them over at once.
    pub member_ttl_ms: u64,
}

impl Default for PartitionConfig {
    fn default() -> Self {
        PartitionConfig {
            exchange: "riposte.events".into(),
            queue_prefix: "riposte.events".into(),
            count: 8,
            prefetch: 256,
            delivery_limit: 5,
            dead_letter_exchange: "riposte.events.dlx".into(),
            rebalance_interval_ms: 2_000,
            member_ttl_ms: 6_000,
        }
    }
}

/// The decision stream (`[amqp.decisions]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DecisionStreamConfig {
    pub exchange: String,
    #[serde(default)]
    pub kind: ExchangeType,
    /// `false`: the exchange exists already (checked passively).
    #[serde(default = "yes")]
    pub declare: bool,
    /// Also publish decisions where no playbook decided anything.
    #[serde(default)]
    pub include_no_action: bool,
    /// Also publish each action's record as it finishes
    /// (`action.<action>.<status>`).
    #[serde(default = "yes")]
    pub actions: bool,
}

/// The AMQP outbox worker (`[amqp.outbox]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AmqpOutboxConfig {
    /// Messages claimed from the store at once.
    pub batch: usize,
    /// How often the outbox is looked at when nothing new was written, in
    /// milliseconds (new messages wake the worker at once).
    pub poll_ms: u64,
    /// Attempts before a message that keeps failing (unroutable, refused)
    /// is dead-lettered in the outbox (`GET /v1/outbox?status=dead`). An
    /// absent broker does not use up attempts.
    pub max_attempts: u32,
}

impl Default for AmqpOutboxConfig {
    fn default() -> Self {
        AmqpOutboxConfig {
            batch: 256,
            poll_ms: 1_000,
            max_attempts: 10,
        }
    }
}

/// Outbox target names of AMQP messages: a colon is not allowed in a
/// `[[notify.targets]]` name, so these never collide with one.
pub const PUBLISH_TARGET: &str = "amqp:publish";
pub const DECISIONS_TARGET: &str = "amqp:decisions";

impl AmqpSourceConfig {
    /// The queue's declaration.
    pub fn queue_spec(&self) -> QueueSpec {
        QueueSpec {
            name: self.queue.clone(),
            declare: self.declare,
            quorum: self.quorum,
            delivery_limit: (self.quorum && self.declare).then_some(self.delivery_limit),
            dead_letter_exchange: self.dead_letter_exchange.clone(),
            dead_letter_routing_key: None,
            single_active_consumer: false,
        }
    }
}

impl PartitionConfig {
    pub fn queue(&self, n: u16) -> String {
        format!("{}.{n}", self.queue_prefix)
    }

    pub fn queue_spec(&self, n: u16) -> QueueSpec {
        QueueSpec {
            name: self.queue(n),
            declare: true,
            quorum: true,
            delivery_limit: Some(self.delivery_limit),
            dead_letter_exchange: Some(self.dead_letter_exchange.clone()),
            dead_letter_routing_key: None,
            single_active_consumer: true,
        }
    }
}

impl AmqpConfig {
    /// Checks what serde cannot; the error names the key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let key = |k: &str| format!("amqp.{k}");
        self.broker_settings_unchecked()
            .validate()
            .map_err(|m| ("amqp".to_string(), m))?;
        if self.max_message_bytes < 256 {
            return Err((key("max_message_bytes"), "must be at least 256".into()));
        }
        let mut queues = std::collections::HashSet::new();
        for (i, s) in self.sources.iter().enumerate() {
            let k = key(&format!("sources[{i}]"));
            if s.queue.is_empty() || s.queue.len() > 255 {
                return Err((k, "queue must be 1 to 255 bytes".into()));
            }
            if !queues.insert(s.queue.as_str()) {
                return Err((k, format!("queue `{}` is consumed twice", s.queue)));
            }
            if s.prefetch == 0 {
                return Err((k, "prefetch must be at least 1".into()));
            }
            if s.delivery_limit == 0 {
                return Err((k, "delivery_limit must be at least 1".into()));
            }
        }
        let p = &self.partitions;
        if p.count == 0 || p.count > 1024 {
            return Err((key("partitions.count"), "must be in 1..=1024".into()));
        }
        if p.prefetch == 0 || p.delivery_limit == 0 {
            return Err((
                key("partitions"),
                "prefetch and delivery_limit must be at least 1".into(),
            ));
        }
        if p.exchange.is_empty() || p.queue_prefix.is_empty() || p.dead_letter_exchange.is_empty() {
            return Err((
                key("partitions"),
                "exchange, queue_prefix and dead_letter_exchange must not be empty".into(),
            ));
        }
        if p.rebalance_interval_ms == 0 || p.member_ttl_ms < 2 * p.rebalance_interval_ms {
            return Err((
                key("partitions"),
                "rebalance_interval_ms must be at least 1 and member_ttl_ms at least twice it \
                 (three times is usual)"
                    .into(),
            ));
        }
        if let Some(d) = &self.decisions {
            if d.exchange.is_empty() {
                return Err((
                    key("decisions.exchange"),
                    "must name an exchange (the default exchange routes by queue name only)".into(),
                ));
            }
        }
        if self.outbox.batch == 0 || self.outbox.poll_ms == 0 || self.outbox.max_attempts == 0 {
            return Err((
                key("outbox"),
                "batch, poll_ms and max_attempts must be at least 1".into(),
            ));
        }
        Ok(())
    }

    fn broker_settings_unchecked(&self) -> BrokerSettings {
        BrokerSettings {
            url: self.url.clone(),
            ca_file: self.ca_file.clone(),
            connection_name: self.connection_name.clone(),
            heartbeat_secs: self.heartbeat_secs,
            connect_timeout_secs: self.connect_timeout_secs,
            reconnect_min_ms: self.reconnect_min_ms,
            reconnect_max_ms: self.reconnect_max_ms,
            max_inflight_confirms: self.max_inflight_confirms,
        }
    }

    /// The connector's settings, with the password from `password_file`
    /// and `role` in the connection name.
    pub fn broker_settings(&self, role: &str) -> Result<BrokerSettings, BrokerConfigError> {
        let mut s = self.broker_settings_unchecked();
        s.connection_name = format!("{} {role}", self.connection_name);
        if let Some(path) = &self.password_file {
            let password = std::fs::read_to_string(path).map_err(|source| {
                BrokerConfigError::PasswordFile {
                    path: path.clone(),
                    source,
                }
            })?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                return Err(BrokerConfigError::EmptyPassword(path.clone()));
            }
            s.url = BrokerUrl::new(with_password(self.url.expose(), password)?);
        }
        Ok(s)
    }
}

/// Why the broker's settings cannot be made from `[amqp]`.
#[derive(Debug, thiserror::Error)]
pub enum BrokerConfigError {
    #[error("password_file {}: {source}", path.display())]
    PasswordFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("password_file {} is empty", .0.display())]
    EmptyPassword(std::path::PathBuf),
    #[error("url has no scheme")]
    NoScheme,
    #[error("password_file needs a user name in url (amqp://user@host)")]
    NoUser,
}

/// `url` with its password set to `password` (percent-encoded).
fn with_password(url: &str, password: &str) -> Result<String, BrokerConfigError> {
    let scheme_end = url.find("://").ok_or(BrokerConfigError::NoScheme)?;
    let rest = &url[scheme_end + 3..];
    let host_start = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..host_start];
    let (user, host) = match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            (
                userinfo.split(':').next().unwrap_or(""),
                &authority[at + 1..],
            )
        }
        None => return Err(BrokerConfigError::NoUser),
    };
    let mut encoded = String::new();
    for b in password.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(format!(
        "{}{user}:{encoded}@{host}{}",
        &url[..scheme_end + 3],
        &rest[host_start..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_url_is_a_whole_config() {
        let c: AmqpConfig =
            toml::from_str("url = \"amqp://riposte:pw@mq:5672/%2f\"").expect("parses");
        c.validate().expect("valid");
        assert_eq!(c.partitions.count, 8);
        assert!(c.decisions.is_none());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(toml::from_str::<AmqpConfig>("urll = \"amqp://x\"").is_err());
        let c: AmqpConfig =
            toml::from_str("[[sources]]\nqueue = \"q\"\nprefetch = 0\n").expect("parses");
        let (key, _) = c.validate().expect_err("prefetch 0");
        assert_eq!(key, "amqp.sources[0]");
        let c: AmqpConfig = toml::from_str("[partitions]\ncount = 0\n").expect("parses");
        assert!(c.validate().is_err());
        let c: AmqpConfig =
            toml::from_str("[partitions]\nrebalance_interval_ms = 1000\nmember_ttl_ms = 1500\n")
                .expect("parses");
        let (key, _) = c.validate().expect_err("ttl below two intervals");
        assert_eq!(key, "amqp.partitions");
    }

    #[test]
    fn password_file_replaces_the_url_password() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3c/ret\n").expect("write");
        let c = AmqpConfig {
            url: BrokerUrl::new("amqps://riposte@mq:5671/prod"),
            password_file: Some(path),
            ..AmqpConfig::default()
        };
        let s = c.broker_settings("worker").expect("settings");
        assert_eq!(s.url.expose(), "amqps://riposte:s3c%2Fret@mq:5671/prod");
        assert_eq!(s.connection_name, "riposte worker");
        assert!(!format!("{s:?}").contains("s3c"));
    }
}
