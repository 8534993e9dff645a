//! Intake: bytes in, events out, each with the pod behind its addresses.
//!
//! - [`sources`]: syslog over UDP, TCP and TLS, the Suricata EVE file tail;
//!   each turns bytes into records and records into events.
//! - [`queues`]: RabbitMQ queues of logs or events as a source, and the
//!   partition queues between ingest and worker replicas.
//! - [`records`]: recorded logs from files or stdin for the offline commands.
//! - [`pipeline`]: bounded, per-source-ordered shards from sources to
//!   playbooks.
//! - [`enrich`]: the pod behind each address, before playbooks run.
//! - [`metrics`]: the intake's Prometheus series.

pub mod enrich;
pub mod metrics;
pub mod pipeline;
pub mod queues;
pub mod records;
pub mod sources;
