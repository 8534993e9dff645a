//! Kubernetes: the pod index and every action Riposte takes in a cluster.
//!
//! Layout:
//! - [`config`]: `[kubernetes]`, and finding the cluster (in-cluster,
//!   kubeconfig, or none: actions are then skipped by the engine).
//! - [`client`]: the `kube::Client` (no hidden retries; `Retry-After` kept).
//! - [`error`]: [`KubeError`], transient or permanent, with `retry_after`.
//! - [`index`]: [`PodIndex`], address → pod, quarantines read back from the
//!   cluster.
//! - [`connector`]: [`KubernetesConnector`], shared plumbing of the actions;
//!   one file per action: [`quarantine`] (and [`detach`]), [`release`],
//!   [`egress`], [`events`], [`edit`] (label, annotate, delete).
//! - [`policy`]: the objects Riposte applies, as pure builders.
//! - [`state`]: a quarantine as it lives on the pod's annotations.
//! - [`labels`], [`names`], [`target`]: syntax checks, the keys and names
//!   Riposte writes, and what an action aims at.
//!
//! The engine translates playbook intents into these typed operations; this
//! module knows nothing of playbooks.

pub mod client;
pub mod config;
pub mod connector;
pub mod detach;
pub mod edit;
pub mod egress;
pub mod error;
pub mod events;
pub mod index;
pub mod labels;
pub mod lease;
pub mod names;
pub mod policy;
pub mod quarantine;
pub mod release;
pub mod state;
pub mod target;

pub use config::{ClusterMode, DetachedRelease, EgressBackend, KubernetesConfig};
pub use connector::KubernetesConnector;
pub use edit::DeleteOutcome;
pub use egress::{EgressBlock, EgressResult, UnblockResult};
pub use error::KubeError;
pub use events::{EventOutcome, EventSpec, EventType};
pub use index::{IndexStatus, PodIndex, QuarantineChange, WorkloadCounts};
pub use lease::LeaseLock;
pub use policy::EgressSpec;
pub use quarantine::{DetachOutcome, QuarantineResult, QuarantineSpec};
pub use release::{ReleaseOutcome, ReleaseResult};
pub use state::QuarantineState;
pub use target::{EgressTarget, PodRef};
