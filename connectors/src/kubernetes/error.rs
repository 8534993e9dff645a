//! The one error type of the Kubernetes connector.
//!
//! The engine's dispatcher decides from [`KubeError::is_transient`] whether
//! to retry, and waits at least [`KubeError::retry_after`] when the server
//! said so. Transient: 409 (re-read and try again), 429, 5xx other than 501,
//! timeouts and connection failures. Everything else is permanent: retrying
//! a 403 or a 422 only repeats the refusal.

use std::time::Duration;

/// What went wrong talking to the Kubernetes API, or before even asking.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The `[kubernetes]` configuration is unusable (bad key, unreadable
    /// kubeconfig, missing service-account files in `in-cluster` mode).
    #[error("kubernetes configuration: {0}")]
    Config(String),

    /// The pod does not exist (any more), or a pod of the same name with
    /// another uid replaced it: the one the decision was about is gone.
    #[error("pod {namespace}/{name} not found: deleted or replaced since the decision")]
    PodGone { namespace: String, name: String },

    /// A request Riposte refuses to send: a label or annotation that
    /// Kubernetes would reject, a reserved key, a CIDR that cannot be
    /// expressed. Permanent.
    #[error("invalid {what}: {message}")]
    Invalid { what: &'static str, message: String },

    /// The API server answered with an error status.
    #[error("the API server answered {code} {reason}: {message}")]
    Api {
        code: u16,
        /// The Status `reason` (`NotFound`, `Conflict`, `TooManyRequests`,
        /// `Invalid`, …); empty when the body was not a Status.
        reason: String,
        message: String,
        /// From `details.retryAfterSeconds` or the `Retry-After` header.
        retry_after: Option<Duration>,
    },

    /// No answer within the configured request timeout.
    #[error("no answer from the API server within {0:?}")]
    Timeout(Duration),

    /// The API server could not be reached or the connection broke.
    #[error("cannot reach the API server: {0}")]
    Connection(String),

    /// An optimistic-concurrency write kept losing to other writers.
    #[error("{what}: still conflicting after {attempts} attempts")]
    ConflictRetriesExhausted { what: String, attempts: u32 },

    /// The API server answered something that is not what its API promises.
    #[error("unexpected answer from the API server: {0}")]
    Decode(String),
}

impl KubeError {
    /// Worth retrying later: the same request may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            KubeError::Api { code, .. } => is_transient_status(*code),
            KubeError::Timeout(_)
            | KubeError::Connection(_)
            | KubeError::ConflictRetriesExhausted { .. } => true,
            KubeError::Config(_)
            | KubeError::PodGone { .. }
            | KubeError::Invalid { .. }
            | KubeError::Decode(_) => false,
        }
    }

    /// How long the server asked us to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            KubeError::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            KubeError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// A low-cardinality label for metrics and the audit trail.
    pub fn kind(&self) -> &'static str {
        match self {
            KubeError::Config(_) => "config",
            KubeError::PodGone { .. } => "pod_gone",
            KubeError::Invalid { .. } => "invalid",
            KubeError::Api { code: 409, .. } => "conflict",
            KubeError::Api { code: 429, .. } => "throttled",
            KubeError::Api { code, .. } if *code >= 500 => "server_error",
            KubeError::Api { code: 403, .. } | KubeError::Api { code: 401, .. } => "forbidden",
            KubeError::Api { code: 404, .. } => "not_found",
            KubeError::Api { .. } => "rejected",
            KubeError::Timeout(_) => "timeout",
            KubeError::Connection(_) => "connection",
            KubeError::ConflictRetriesExhausted { .. } => "conflict",
            KubeError::Decode(_) => "decode",
        }
    }

    pub(crate) fn invalid(what: &'static str, message: impl Into<String>) -> KubeError {
        KubeError::Invalid {
            what,
            message: message.into(),
        }
    }
}

/// 501 Not Implemented will not start working by itself.
fn is_transient_status(code: u16) -> bool {
    code == 409 || code == 429 || (code >= 500 && code != 501)
}

impl From<kube::Error> for KubeError {
    fn from(e: kube::Error) -> KubeError {
        match e {
            kube::Error::Api(status) => {
                let retry_after = status
                    .details
                    .as_ref()
                    .map(|d| d.retry_after_seconds)
                    .filter(|s| *s > 0)
                    .map(|s| Duration::from_secs(u64::from(s)));
                KubeError::Api {
                    code: status.code,
                    reason: status.reason,
                    message: status.message,
                    retry_after,
                }
            }
            kube::Error::HyperError(e) => KubeError::Connection(e.to_string()),
            kube::Error::Service(e) => KubeError::Connection(source_chain(e.as_ref())),
            kube::Error::ReadEvents(e) => KubeError::Connection(e.to_string()),
            kube::Error::SerdeError(e) => KubeError::Decode(e.to_string()),
            kube::Error::FromUtf8(e) => KubeError::Decode(e.to_string()),
            kube::Error::InferConfig(e) => KubeError::Config(e.to_string()),
            kube::Error::InferKubeconfig(e) => KubeError::Config(e.to_string()),
            kube::Error::Auth(e) => KubeError::Config(format!("credentials: {e}")),
            kube::Error::RustlsTls(e) => KubeError::Config(format!("TLS: {e}")),
            other => KubeError::Decode(other.to_string()),
        }
    }
}

/// The whole cause chain: "service error" alone tells an operator nothing.
fn source_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

/// The connector's result type.
pub type Result<T, E = KubeError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::response::StatusDetails;
    use kube::core::Status;

    fn api(code: u16, retry: u32) -> KubeError {
        let mut status = Status::failure("boom", "Reason").with_code(code);
        if retry > 0 {
            let details: StatusDetails =
                serde_json::from_value(serde_json::json!({ "retryAfterSeconds": retry }))
                    .expect("a valid StatusDetails");
            status.details = Some(details);
        }
        KubeError::from(kube::Error::Api(status.boxed()))
    }

    #[test]
    fn throttling_and_server_errors_are_retried_with_the_servers_delay() {
        let e = api(429, 3);
        assert!(e.is_transient());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(e.kind(), "throttled");
        assert!(api(500, 0).is_transient());
        assert!(api(503, 0).is_transient());
        assert_eq!(api(503, 0).retry_after(), None);
        assert!(
            api(409, 0).is_transient(),
            "a conflict is re-read and retried"
        );
    }

    #[test]
    fn client_errors_are_permanent() {
        for code in [400, 401, 403, 404, 422, 501] {
            assert!(!api(code, 0).is_transient(), "{code}");
        }
        assert!(!KubeError::PodGone {
            namespace: "a".into(),
            name: "b".into()
        }
        .is_transient());
        assert!(!KubeError::invalid("label", "x").is_transient());
    }

    #[test]
    fn timeouts_and_broken_connections_are_transient() {
        assert!(KubeError::Timeout(Duration::from_secs(1)).is_transient());
        assert!(KubeError::Connection("refused".into()).is_transient());
    }

    #[test]
    fn pod_gone_names_the_pod() {
        let e = KubeError::PodGone {
            namespace: "shop".into(),
            name: "checkout-1".into(),
        };
        assert!(e.to_string().contains("shop/checkout-1"));
        assert_eq!(e.kind(), "pod_gone");
    }
}
