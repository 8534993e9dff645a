//! How to reach the broker: URL, TLS, heartbeat, reconnect pacing.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// The broker URL. It carries the password, so its `Debug` and `Display`
/// show the URL with the password replaced.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct BrokerUrl(String);

impl BrokerUrl {
    pub fn new(url: impl Into<String>) -> BrokerUrl {
        BrokerUrl(url.into())
    }

    /// The URL with its secret, for the client library only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let Some(scheme_end) = url.find("://") else {
            return url.clone();
        };
        let rest = &url[scheme_end + 3..];
        let host_start = rest.find('/').unwrap_or(rest.len());
        let authority = &rest[..host_start];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                let user = userinfo.split(':').next().unwrap_or("");
                format!("{}{}:***@{}", &url[..scheme_end + 3], user, &rest[at + 1..])
            }
            None => url.clone(),
        }
    }
}

impl fmt::Debug for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BrokerUrl({})", self.redacted())
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Default for BrokerUrl {
    fn default() -> Self {
        BrokerUrl("amqp://guest:guest@127.0.0.1:5672/%2f".into())
    }
}

/// The connection to RabbitMQ (`[amqp]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerSettings {
    /// `amqp://user:password@host:5672/vhost` or `amqps://…` for TLS (the
    /// vhost URL-encoded: `%2f` is `/`). Never logged with its password.
    pub url: BrokerUrl,
    /// PEM CA certificate(s) that sign the broker's certificate, for
    /// `amqps://` with a private CA; the system roots are trusted as well.
    pub ca_file: Option<PathBuf>,
    /// Shown in the RabbitMQ management UI and `rabbitmqctl
    /// list_connections`, so operators can tell replicas apart.
    pub connection_name: String,
    /// Heartbeat interval asked of the broker, in seconds (0 turns them
    /// off): a dead peer is noticed within about twice this.
    pub heartbeat_secs: u16,
    /// Giving up on one connection attempt after this many seconds.
    pub connect_timeout_secs: u64,
    /// First wait before reconnecting, in milliseconds; doubles on each
    /// failure up to `reconnect_max_ms`, with random jitter.
    pub reconnect_min_ms: u64,
    /// Longest wait between reconnection attempts, in milliseconds.
    pub reconnect_max_ms: u64,
    /// Published messages awaiting the broker's confirmation at once, per
    /// publisher; further publishes wait.
    pub max_inflight_confirms: usize,
}

impl Default for BrokerSettings {
    fn default() -> Self {
        BrokerSettings {
            url: BrokerUrl::default(),
            ca_file: None,
            connection_name: "riposte".into(),
            heartbeat_secs: 30,
            connect_timeout_secs: 10,
            reconnect_min_ms: 200,
            reconnect_max_ms: 30_000,
            max_inflight_confirms: 1024,
        }
    }
}

impl BrokerSettings {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        let url = self.url.expose();
        if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
            return Err(format!(
                "url must start with amqp:// or amqps:// (got {})",
                self.url.redacted()
            ));
        }
        if let Some(ca) = &self.ca_file {
            if !ca.is_file() {
                return Err(format!("ca_file {} is not a readable file", ca.display()));
            }
        }
        if self.reconnect_min_ms == 0 || self.reconnect_max_ms < self.reconnect_min_ms {
            return Err("reconnect_min_ms must be at least 1 and at most reconnect_max_ms".into());
        }
        if self.max_inflight_confirms == 0 {
            return Err("max_inflight_confirms must be at least 1".into());
        }
        Ok(())
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_never_shows() {
        let url = BrokerUrl::new("amqps://riposte:s3cret@mq.example:5671/prod");
        assert_eq!(url.redacted(), "amqps://riposte:***@mq.example:5671/prod");
        assert!(!format!("{url:?}").contains("s3cret"));
        assert!(!format!("{url}").contains("s3cret"));
        assert_eq!(
            BrokerUrl::new("amqp://host:5672/%2f").redacted(),
            "amqp://host:5672/%2f"
        );
    }

    #[test]
    fn refuses_other_schemes() {
        let s = BrokerSettings {
            url: BrokerUrl::new("http://x"),
            ..BrokerSettings::default()
        };
        assert!(s.validate().is_err());
        BrokerSettings::default()
            .validate()
            .expect("defaults valid");
    }
}
