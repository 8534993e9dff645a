//! Exchanges, queues and bindings: declared on every (re)connection, or
//! checked passively when the operators own them.
//!
//! Queues are quorum queues by default: replicated, durable, and they count
//! deliveries, so `x-delivery-limit` turns a message that keeps failing into
//! a dead letter instead of an endless redelivery loop.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, ExchangeKind};
use serde::Deserialize;

use super::error::AmqpError;

/// An exchange type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ExchangeType {
    Direct,
    #[default]
    Topic,
    Fanout,
    Headers,
}

/// One exchange.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeSpec {
    pub name: String,
    #[serde(default)]
    pub kind: ExchangeType,
    /// `false`: only check that it exists (passive), never create it.
    #[serde(default = "yes")]
    pub declare: bool,
}

fn yes() -> bool {
    true
}

/// One queue and the arguments it is declared with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSpec {
    pub name: String,
    /// `false`: use an existing queue as it is (passive declare), never
    /// create or change it.
    #[serde(default = "yes")]
    pub declare: bool,
    /// Declare a quorum queue (`x-queue-type: quorum`); otherwise a classic
    /// durable queue.
    #[serde(default = "yes")]
    pub quorum: bool,
    /// Deliveries of one message before the broker dead-letters it
    /// (`x-delivery-limit`, quorum queues only).
    #[serde(default)]
    pub delivery_limit: Option<u32>,
    /// Where dead letters go (`x-dead-letter-exchange`).
    #[serde(default)]
    pub dead_letter_exchange: Option<String>,
    /// Routing key of dead letters (`x-dead-letter-routing-key`); the
    /// message's own routing key when unset.
    #[serde(default)]
    pub dead_letter_routing_key: Option<String>,
    /// Only one consumer receives at a time; another takes over when it goes
    /// (`x-single-active-consumer`).
    #[serde(default)]
    pub single_active_consumer: bool,
}

impl QueueSpec {
    /// A declared quorum queue with no limit and no dead-lettering.
    pub fn quorum(name: impl Into<String>) -> QueueSpec {
        QueueSpec {
            name: name.into(),
            declare: true,
            quorum: true,
            delivery_limit: None,
            dead_letter_exchange: None,
            dead_letter_routing_key: None,
            single_active_consumer: false,
        }
    }

    /// The declaration arguments.
    pub fn arguments(&self) -> FieldTable {
        let mut args = FieldTable::default();
        if self.quorum {
            args.insert("x-queue-type".into(), long("quorum"));
        }
        if let Some(limit) = self.delivery_limit {
            args.insert(
                "x-delivery-limit".into(),
                AMQPValue::LongLongInt(i64::from(limit)),
            );
        }
        if let Some(dlx) = &self.dead_letter_exchange {
            args.insert("x-dead-letter-exchange".into(), long(dlx));
        }
        if let Some(key) = &self.dead_letter_routing_key {
            args.insert("x-dead-letter-routing-key".into(), long(key));
        }
        if self.single_active_consumer {
            args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
        }
        args
    }
}

pub(crate) fn long(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

/// A binding of a queue to an exchange.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingSpec {
    pub queue: String,
    pub exchange: String,
    #[serde(default)]
    pub routing_key: String,
}

/// Everything one component needs to exist on the broker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    pub exchanges: Vec<ExchangeSpec>,
    pub queues: Vec<QueueSpec>,
    pub bindings: Vec<BindingSpec>,
}

impl Topology {
    pub fn merge(&mut self, other: &Topology) {
        for e in &other.exchanges {
            if !self.exchanges.contains(e) {
                self.exchanges.push(e.clone());
            }
        }
        for q in &other.queues {
            if !self.queues.contains(q) {
                self.queues.push(q.clone());
            }
        }
        for b in &other.bindings {
            if !self.bindings.contains(b) {
                self.bindings.push(b.clone());
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.exchanges.is_empty() && self.queues.is_empty() && self.bindings.is_empty()
    }

    /// Declares (or passively checks) everything, in dependency order.
    pub async fn declare(&self, channel: &Channel) -> Result<(), AmqpError> {
        for e in &self.exchanges {
            let kind = match e.kind {
                ExchangeType::Direct => ExchangeKind::Direct,
                ExchangeType::Topic => ExchangeKind::Topic,
                ExchangeType::Fanout => ExchangeKind::Fanout,
                ExchangeType::Headers => ExchangeKind::Headers,
            };
            let options = ExchangeDeclareOptions {
                passive: !e.declare,
                durable: true,
                ..ExchangeDeclareOptions::default()
            };
            channel
                .exchange_declare(
                    ShortString::from(e.name.as_str()),
                    kind,
                    options,
                    FieldTable::default(),
                )
                .await
                .map_err(AmqpError::protocol("exchange.declare"))?;
        }
        for q in &self.queues {
            let (options, args) = if q.declare {
                (
                    QueueDeclareOptions {
                        durable: true,
                        ..QueueDeclareOptions::default()
                    },
                    q.arguments(),
                )
            } else {
                (
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
            };
            channel
                .queue_declare(ShortString::from(q.name.as_str()), options, args)
                .await
                .map_err(AmqpError::protocol("queue.declare"))?;
        }
        for b in &self.bindings {
            channel
                .queue_bind(
                    ShortString::from(b.queue.as_str()),
                    ShortString::from(b.exchange.as_str()),
                    ShortString::from(b.routing_key.as_str()),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(AmqpError::protocol("queue.bind"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_arguments() {
        let q = QueueSpec {
            delivery_limit: Some(5),
            dead_letter_exchange: Some("dlx".into()),
            dead_letter_routing_key: Some("dead".into()),
            single_active_consumer: true,
            ..QueueSpec::quorum("events.0")
        };
        let args = q.arguments();
        let inner = args.inner();
        assert_eq!(inner.get("x-queue-type"), Some(&long("quorum")));
        assert_eq!(
            inner.get("x-delivery-limit"),
            Some(&AMQPValue::LongLongInt(5))
        );
        assert_eq!(inner.get("x-dead-letter-exchange"), Some(&long("dlx")));
        assert_eq!(
            inner.get("x-single-active-consumer"),
            Some(&AMQPValue::Boolean(true))
        );
    }
}
