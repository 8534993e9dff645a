//! The one error type of the SOAR connector.
//!
//! Delivery failures are not errors here: one attempt always ends in a
//! [`Outcome`](super::Outcome) that says whether to retry. `SoarError` is for
//! what stops a target from being built at all (bad config, unreadable
//! secret or certificate) and for what is refused before anything is sent.

/// Why a SOAR target cannot be used, or a request was refused before sending.
#[derive(Debug, thiserror::Error)]
pub enum SoarError {
    /// The target's configuration is unusable.
    #[error("notify target `{target}`: {message}")]
    Config { target: String, message: String },

    /// A secret (password, token, signing key) could not be read.
    #[error("secret from {source_kind}: {message}")]
    Secret {
        source_kind: &'static str,
        message: String,
    },

    /// A signing secret is not `whsec_<base64>`.
    #[error("signing secret: {0}")]
    SigningSecret(String),

    /// The target's address is loopback, link-local or a cloud metadata
    /// endpoint, and `allow_private` is off.
    #[error("refusing to send to {host}: {reason} (set allow_private = true to allow it)")]
    Forbidden { host: String, reason: &'static str },

    /// The HTTP client could not be built (TLS material rejected).
    #[error("notify target `{target}`: HTTP client: {message}")]
    Client { target: String, message: String },

    /// The notification could not be rendered (never expected: our own
    /// types serialize).
    #[error("rendering the notification: {0}")]
    Render(#[from] serde_json::Error),
}
