//! Riposte's engine: the brain and the face.
//!
//! Layout, in the order an event flows (intake, decide, act), then what
//! stands beside the flow:
//! - `sources/`: syslog over UDP, TCP and TLS, the Suricata EVE file tail;
//!   each turns bytes into records and records into events.
//! - `records`: recorded logs from files or stdin for the offline commands.
//! - `pipeline`: bounded, per-source-ordered shards from sources to playbooks.
//! - `enrich`: the pod behind each address, before playbooks run.
//! - `amqp/`: RabbitMQ: queue source, `publish` intents, decision stream,
//!   partitions between ingest and worker replicas.
//! - `playbook/`: the Rhai runtime: scripts compiled once, run per event in a
//!   sandbox, returning intents.
//! - `intent`: what a playbook decides (intents and their validation).
//! - `decision`: the decision record and the dispatcher boundary.
//! - `guardrails`: what must never happen automatically, checked per pod.
//! - `dispatch/`: from decisions to actions: per-pod lanes, retries,
//!   Kubernetes actions, quarantine expiry.
//! - `firewall/`: the dispatcher's firewall side: IP tag leases, EDLs, the
//!   never-block list and the reconciler.
//! - `approvals`: intents waiting for a human's decision, signed links.
//! - `notify/`: notifications to SOAR platforms through the durable outbox.
//! - `store/`: the audit trail, outbox, idempotency keys, approvals, EDL
//!   entries and IP-tag leases, in SQLite or PostgreSQL.
//! - `api/`: the HTTP server (ingest, webhooks, actions, quarantines, audit,
//!   playbooks, approvals, health, metrics, decisions).
//! - `auth`: bearer tokens with scopes for the API, compared in constant time.
//! - `leader`: which replica runs schedules, expiries and reconciliation.
//! - `config`: the one TOML file, validated and compiled at start-up.
//! - `preflight`: every check `serve` and `check-config` run before binding.
//! - `serve`: builds every component, binds the listeners, runs, drains.
//! - `secret`: configured secrets that never reach a log.
//! - `redact`: keeps inline secrets out of config error messages.
//! - `error`: the engine's top-level error type.
//! - `metrics`: the ingestion path's Prometheus series; other modules
//!   (`api`, `amqp`, `notify`, `playbook`, `dispatch`, `firewall`, `store`,
//!   `leader`) declare their own, all registered on the one registry `serve`
//!   builds.
//! - `telemetry`: logging setup, tracing to stderr as text or JSON.
//! - `lint/`: `riposte lint-manifests`, the CI/CD check of Kubernetes manifests.
//! - `cli/`: the `riposte` command line, one subcommand per file.
//! - `riposte gen`'s generator is the `riposte-gen` crate (`gen/`), apart
//!   because the service never generates logs; `cli/gen.rs` drives it.

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
pub mod serve;
pub mod store;
pub mod telemetry;
