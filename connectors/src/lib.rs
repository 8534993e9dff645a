//! The outside systems Riposte acts on or talks to.
//!
//! Layout:
//! - [`kubernetes`]: pod index, quarantine, network policy, events.
//! - [`soar`]: outbound webhooks to SOAR platforms: formats, signing, one
//!   classified delivery attempt.
//! - [`amqp`]: RabbitMQ connection manager, topology, consumer and publisher.
//!
//! Connectors depend on `riposte-firewall` for the event type only; they know
//! nothing of playbooks.

pub mod amqp;
pub mod kubernetes;
pub mod soar;
