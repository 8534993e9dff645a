//! Outbound notifications to SOAR platforms and webhook receivers.
//!
//! Layout:
//! - [`config`]: a target's configuration (`[[notify.targets]]`).
//! - [`secret`]: secrets from inline, env or file, redacted in `Debug`.
//! - [`model`]: the [`Notification`] Riposte tells, platform-neutral.
//! - [`format`]: the notification in each platform's body shape.
//! - [`signing`]: Standard Webhooks HMAC-SHA256 signatures (and verification).
//! - [`guard`]: the SSRF guard (loopback, link-local, cloud metadata).
//! - [`deliver`]: one attempt to one target, classified into an [`Outcome`].
//! - [`error`]: the module's error type.
//!
//! Durability, retries and rate limits are the engine's outbox worker's
//! business: this module sends once and says what the answer meant.

pub mod config;
pub mod deliver;
pub mod error;
pub mod format;
pub mod guard;
pub mod model;
pub mod secret;
pub mod signing;

pub use config::{Auth, Format, NotifyOn, TargetConfig, TlsConfig};
pub use deliver::{classify, Outcome, SoarTarget};
pub use error::SoarError;
pub use model::{
    ActionInfo, ApprovalRequest, Coalesced, EventInfo, Indicator, IndicatorKind, Link,
    Notification, NotificationKind, PodInfo, Severity, Tally,
};
pub use secret::{Secret, SecretSource};
