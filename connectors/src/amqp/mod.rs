//! RabbitMQ through lapin: the queue source, the decision stream and the
//! bus between ingest and worker replicas all stand on these pieces.
//!
//! - [`broker`]: the connection manager (reconnect with backoff and jitter,
//!   topology declared again on every new connection).
//! - [`topology`]: quorum queues with delivery limits, dead-letter exchanges
//!   and single active consumers; passive checks for queues others own.
//! - [`consumer`]: prefetch-bounded subscriptions whose deliveries are
//!   acked, retried or dead-lettered (with the reason) by the caller.
//! - [`publisher`]: persistent, mandatory, confirmed publishing with a bound
//!   on confirms in flight.

pub mod broker;
pub mod config;
pub mod consumer;
pub mod error;
pub mod publisher;
pub mod topology;

pub use broker::{Backoff, Broker};
pub use config::{BrokerSettings, BrokerUrl};
pub use consumer::{
    subscribe, ConsumerSettings, Delivery, Settled, Subscription, QUEUE_HEADER, REASON_HEADER,
};
pub use error::AmqpError;
pub use publisher::{Outgoing, PendingConfirm, Publisher};
pub use topology::{BindingSpec, ExchangeSpec, ExchangeType, QueueSpec, Topology};
