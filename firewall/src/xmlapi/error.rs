//! What can go wrong talking to a firewall.

use std::time::Duration;

use thiserror::Error;

/// An XML API failure. Cloneable: one failed request is the answer for
/// every registration batched into it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum XmlApiError {
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    #[error("configuration: {0}")]
    Config(String),
    #[error("the firewall rejected the API key (HTTP {status}): {message}")]
    Auth { status: u16, message: String },
    #[error("the firewall answered HTTP {status}: {message}")]
    Http {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("the firewall's answer is not XML API XML ({reason}); starts with {snippet:?}")]
    NotXml { reason: String, snippet: String },
    #[error("the firewall refused the request (code {}): {message}", code.map_or_else(|| "none".to_string(), |c| c.to_string()))]
    Api { code: Option<u32>, message: String },
    #[error("the firewall refused {count} entries, first {ip}: {message}")]
    Entries {
        count: usize,
        ip: String,
        message: String,
    },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach the firewall: {0}")]
    Connect(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("the batcher for this firewall has stopped")]
    Closed,
}

impl XmlApiError {
    /// Worth trying again soon: the firewall or the path to it is busy or
    /// away, not refusing this request for what it is.
    pub fn is_transient(&self) -> bool {
        match self {
            XmlApiError::Http { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            XmlApiError::Timeout(_) | XmlApiError::Connect(_) => true,
            // PAN-OS codes 2–5, 11 and 21 are "internal error", 22 "session
            // timed out": the management plane is busy or restarting.
            XmlApiError::Api { code: Some(c), .. } => matches!(c, 2..=5 | 11 | 21 | 22),
            _ => false,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            XmlApiError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A short, fixed label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            XmlApiError::Invalid { .. } => "invalid",
            XmlApiError::Config(_) => "config",
            XmlApiError::Auth { .. } => "auth",
            XmlApiError::Http { .. } => "http",
            XmlApiError::NotXml { .. } => "not_xml",
            XmlApiError::Api { .. } => "api",
            XmlApiError::Entries { .. } => "entries",
            XmlApiError::Timeout(_) => "timeout",
            XmlApiError::Connect(_) => "connect",
            XmlApiError::Tls(_) => "tls",
            XmlApiError::Closed => "closed",
        }
    }

    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        XmlApiError::Invalid {
            what,
            reason: reason.into(),
        }
    }
}
