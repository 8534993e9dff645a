//! The RabbitMQ on loopback: everything of `riposte_standins::rabbit`, plus
//! handles on the connectors' `Broker` (which the support crate cannot
//! name without depending on the connectors).

use std::sync::Arc;

use riposte_connectors::amqp::{Broker, BrokerSettings, BrokerUrl};
pub use riposte_standins::rabbit::*;

/// Settings for a test connection named `name`, reconnecting quickly.
pub fn settings(name: &str) -> BrokerSettings {
    BrokerSettings {
        url: BrokerUrl::new(url()),
        connection_name: name.to_string(),
        reconnect_min_ms: 50,
        reconnect_max_ms: 500,
        heartbeat_secs: 10,
        ..BrokerSettings::default()
    }
}

/// A broker handle for a test.
pub fn broker(name: &str) -> anyhow::Result<Arc<Broker>> {
    Ok(Broker::new(settings(name))?)
}
