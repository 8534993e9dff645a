//! Act: decisions become actions, within the guardrails.
//!
//! - [`guardrails`]: what must never happen automatically, checked per pod.
//! - [`dispatch`]: from decisions to actions: per-pod lanes, retries,
//!   Kubernetes actions, quarantine expiry.
//! - [`firewall_sync`]: the firewall side: IP tag leases, EDLs, the
//!   never-block list and the reconciler.
//! - [`approvals`]: intents waiting for a human's decision, signed links.
//! - [`notifications`]: notifications to SOAR platforms through the durable
//!   outbox (named apart from the `notify` file-watcher crate the playbook
//!   reloader uses).
//! - [`publish`]: `publish` intents and the decision stream to RabbitMQ.

pub mod approvals;
pub mod dispatch;
pub mod firewall_sync;
pub mod guardrails;
pub mod notifications;
pub mod publish;
