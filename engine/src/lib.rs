//! Riposte's engine: the brain and the face.
//!
//! Layout:
//! - `config`: the one TOML file, validated and compiled at start-up.
//! - `sources/`: syslog over UDP, TCP and TLS, the Suricata EVE file tail;
//!   each turns bytes into records and records into events.
//! - `enrich`: the pod behind each address, before playbooks run.
//! - `dispatch/`: from decisions to actions: per-pod lanes, retries,
//!   Kubernetes actions, quarantine expiry.
//! - `guardrails`: what must never happen automatically, checked per pod.
//! - `pipeline`: bounded, per-source-ordered shards from sources to playbooks.
//! - `api/`: the HTTP server (ingest, webhooks, actions, quarantines, audit,
//!   playbooks, approvals, health, metrics, decisions).
//! - `approvals`: intents waiting for a human's decision, signed links.
//! - `secret`: configured secrets that never reach a log.
//! - `store/`: the audit trail, outbox, idempotency keys, approvals, EDL
//!   entries and IP-tag leases, in SQLite or PostgreSQL.
//! - `amqp/`: RabbitMQ: queue source, `publish` intents, decision stream,
//!   partitions between ingest and worker replicas.
//! - `leader`: which replica runs schedules, expiries and reconciliation.
//! - `notify/`: notifications to SOAR platforms through the durable outbox.
//! - `metrics`: every Prometheus series in one place.
//! - `lint`: `riposte lint-manifests`, the CI/CD check of Kubernetes manifests.
//! - `cli` and `gen`: the `riposte` command line and its log generator.

pub mod amqp;
pub mod api;
pub mod approvals;
pub mod auth;
pub mod cli;
pub mod config;
pub mod decision;
pub mod dispatch;
pub mod enrich;
pub mod error;
pub mod firewall;
pub mod gen;
pub mod guardrails;
pub mod intent;
pub mod leader;
pub mod lint;
pub mod metrics;
pub mod notify;
pub mod pipeline;
pub mod playbook;
pub mod preflight;
pub mod records;
pub mod redact;
pub mod secret;
pub mod serve;
pub mod sources;
pub mod store;
pub mod telemetry;
