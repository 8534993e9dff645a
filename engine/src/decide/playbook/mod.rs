//! The playbook runtime: security engineers' Rhai scripts, compiled once,
//! run per event in a sandbox, returning intents.
//!
//! Layout:
//! - [`meta`]: the `// key: value` header; [`trigger`]: the native filter
//!   checked before any script runs.
//! - [`sandbox`]: the Rhai engine and its limits; [`script_api`]: the
//!   functions scripts call; [`event_map`]: the event as scripts see it;
//!   [`counters`]: `count`, `once_per`, `seen_before`.
//! - [`runtime`]: compile, evaluate, list; [`reload`]: file watch and
//!   SIGHUP; [`fingerprint`]: whether the files changed; [`schedule`]:
//!   cron-fired events; [`output`]: `print` and `debug`, bounded.
//! - [`fixtures`]: golden-file tests for `riposte playbook test`; [`input`]:
//!   events from recorded files (raw logs or normalized NDJSON).
//! - [`check`]: the static checker run at load, on reload and by
//!   `riposte playbook check`.
//! - [`config`], [`metrics`], [`error`].
//!
//! The format and every function are documented for playbook authors in
//! `playbooks/README.md`.

pub mod check;
pub mod compare;
pub mod config;
pub mod counters;
pub mod error;
pub mod event_map;
pub mod fingerprint;
pub mod fixtures;
pub mod input;
pub mod meta;
pub mod metrics;
pub mod output;
pub mod reads;
pub mod reload;
pub mod runtime;
pub mod sandbox;
pub mod schedule;
pub mod script_api;
pub mod trigger;

pub use config::{PlaybookConfig, PlaybookLimits};
pub use error::PlaybookError;
pub use runtime::{Clock, PlaybookInfo, PlaybookRuntime, ReloadReport};
