//! The outside systems Riposte acts on or talks to.
//!
//! Layout (filled by the Kubernetes, SOAR and RabbitMQ work):
//! - `kubernetes/`: pod index, quarantine, network policy, events.
//! - `soar/`: outbound webhooks, their formats, signing and retry.
//! - `amqp/`: the lapin consumer and publisher.
//!
//! Connectors depend on `riposte-firewall` for the event type only; they know
//! nothing of playbooks.
