//! Riposte's engine: the brain and the face.
//!
//! The folders read as the flow of an event, then what stands beside it:
//!
//! - `intake/`: bytes in, events out. `sources/` (syslog over UDP, TCP and
//!   TLS, the Suricata EVE file tail), `queues/` (RabbitMQ queues as a
//!   source, and the partition queues between ingest and worker replicas),
//!   `records` (recorded logs for the offline commands), `pipeline`
//!   (bounded, per-source-ordered shards to the playbooks) and `enrich` (the
//!   pod behind each address).
//! - `decide/`: playbooks read events and return intents; nothing here
//!   acts. `playbook/` (the Rhai runtime and its sandbox), `intent` (what a
//!   playbook may decide, validated) and `decision` (the decision record,
//!   the boundary with the act stage).
//! - `act/`: decisions become actions within the guardrails. `guardrails`,
//!   `dispatch/` (per-pod lanes, retries, Kubernetes actions, quarantine
//!   expiry), `firewall_sync/` (IP tag leases, EDLs, the never-block list,
//!   the reconciler), `approvals` (a human's decision, signed links),
//!   `notifications/` (SOAR notifications through the durable outbox) and
//!   `publish` (`publish` intents and the decision stream to RabbitMQ).
//!
//! Beside the flow:
//! - `store/`: the audit trail, outbox, idempotency keys, approvals, EDL
//!   entries and IP-tag leases, in SQLite or PostgreSQL.
//! - `api/`: the HTTP server: admission, authentication, every route.
//! - `serve/`: one builder per stage fills a shared `Context`; `start_role`
//!   runs them in order and `Drain` stops everything in one place.
//! - `config/`: the one TOML file, validated at start-up, with `preflight`
//!   (every check `serve` and `check-config` run before binding), `secret`
//!   (configured secrets that never reach a log) and `redact` (inline
//!   secrets kept out of config error messages).
//! - `auth`: bearer tokens with scopes, compared in constant time.
//! - `leader`: which replica runs schedules, expiries and reconciliation.
//! - `cli/`: the `riposte` command line, one subcommand per file.
//! - `lint/`: `riposte lint-manifests`, the CI/CD check of Kubernetes
//!   manifests.
//! - `telemetry`: logging setup, tracing to stderr as text or JSON.
//! - `error`: the engine's top-level error type.
//! - `riposte gen`'s generator is the `riposte-gen` crate (`gen/`), apart
//!   because the service never generates logs; `cli/gen.rs` drives it.
//!
//! Metrics: each component declares its Prometheus series in its own
//! `metrics.rs` (`intake/metrics.rs`, `intake/queues/metrics.rs`,
//! `decide/playbook/metrics.rs`, `act/dispatch/metrics.rs`,
//! `act/firewall_sync/metrics.rs`, `act/notifications/metrics.rs`,
//! `api/metrics.rs`, `store/metrics.rs`; the leader's few series sit in
//! `leader`), and `serve` registers them all on the one registry it builds.

pub mod act;
pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod decide;
pub mod error;
pub mod intake;
pub mod leader;
pub mod lint;
pub mod log_budget;
pub mod serve;
pub mod store;
pub mod telemetry;
