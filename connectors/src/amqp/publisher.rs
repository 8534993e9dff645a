//! Publishing with the guarantees an audit trail needs: persistent
//! messages, publisher confirms awaited, the mandatory flag set so an
//! unroutable message is an error instead of silently vanishing, and a
//! bound on confirms in flight so a slow broker slows the publisher down.

use std::fmt;
use std::sync::Arc;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, PublisherConfirm};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::broker::Broker;
use super::error::AmqpError;
use super::topology::long;

/// One message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub exchange: String,
    pub routing_key: String,
    pub body: Vec<u8>,
    pub headers: FieldTable,
    pub message_id: Option<String>,
    pub content_type: Option<String>,
    /// Unroutable (no queue bound for the key) is an error when set.
    pub mandatory: bool,
}

impl Outgoing {
    /// A mandatory, persistent message.
    pub fn new(exchange: &str, routing_key: &str, body: Vec<u8>) -> Outgoing {
        Outgoing {
            exchange: exchange.to_string(),
            routing_key: routing_key.to_string(),
            body,
            headers: FieldTable::default(),
            message_id: None,
            content_type: None,
            mandatory: true,
        }
    }

    pub fn header(mut self, key: &str, value: &str) -> Outgoing {
        self.headers.insert(ShortString::from(key), long(value));
        self
    }

    pub fn header_value(mut self, key: &str, value: AMQPValue) -> Outgoing {
        self.headers.insert(ShortString::from(key), value);
        self
    }

    pub fn message_id(mut self, id: &str) -> Outgoing {
        self.message_id = Some(id.to_string());
        self
    }

    pub fn content_type(mut self, ct: &str) -> Outgoing {
        self.content_type = Some(ct.to_string());
        self
    }

    fn properties(&self) -> BasicProperties {
        let mut p = BasicProperties::default()
            .with_delivery_mode(2)
            .with_headers(self.headers.clone());
        if let Some(id) = &self.message_id {
            p = p.with_message_id(ShortString::from(id.as_str()));
        }
        if let Some(ct) = &self.content_type {
            p = p.with_content_type(ShortString::from(ct.as_str()));
        }
        p
    }
}

/// A sent message whose confirmation has not been awaited yet. Holds one
/// of the publisher's in-flight slots until then.
pub struct PendingConfirm {
    confirm: PublisherConfirm,
    exchange: String,
    routing_key: String,
    _slot: OwnedSemaphorePermit,
}

impl fmt::Debug for PendingConfirm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingConfirm")
            .field("exchange", &self.exchange)
            .field("routing_key", &self.routing_key)
            .finish()
    }
}

impl PendingConfirm {
    /// Waits for the broker: `Ok` once it has taken the message (stored it
    /// durably on every queue it routed to).
    pub async fn confirmed(self) -> Result<(), AmqpError> {
        match self.confirm.await {
            Ok(Confirmation::Ack(None)) | Ok(Confirmation::NotRequested) => Ok(()),
            Ok(Confirmation::Ack(Some(returned))) | Ok(Confirmation::Nack(Some(returned))) => {
                Err(AmqpError::Unroutable {
                    exchange: self.exchange,
                    routing_key: self.routing_key,
                    reply_code: returned.reply_code,
                    reply_text: returned.reply_text.to_string(),
                })
            }
            Ok(Confirmation::Nack(None)) => Err(AmqpError::Nacked),
            Err(source) => Err(AmqpError::Protocol {
                op: "publisher confirm",
                source,
            }),
        }
    }
}

/// Publishes on a confirm-mode channel of its own, reopened when it closes.
pub struct Publisher {
    broker: Arc<Broker>,
    channel: tokio::sync::Mutex<Option<Channel>>,
    slots: Arc<Semaphore>,
}

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("broker", &self.broker)
            .field("free_slots", &self.slots.available_permits())
            .finish()
    }
}

impl Publisher {
    pub fn new(broker: Arc<Broker>) -> Publisher {
        let slots = Arc::new(Semaphore::new(broker.settings().max_inflight_confirms));
        Publisher {
            broker,
            channel: tokio::sync::Mutex::new(None),
            slots,
        }
    }

    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Sends without waiting for the confirmation; waits for a free
    /// in-flight slot first.
    pub async fn send(&self, msg: &Outgoing) -> Result<PendingConfirm, AmqpError> {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AmqpError::Shutdown)?;
        let mut guard = self.channel.lock().await;
        let channel = match guard.as_ref() {
            Some(c) if c.status().connected() => c.clone(),
            _ => {
                *guard = None;
                let c = self.broker.channel().await?;
                c.confirm_select(ConfirmSelectOptions::default())
                    .await
                    .map_err(AmqpError::protocol("confirm.select"))?;
                *guard = Some(c.clone());
                c
            }
        };
        let sent = channel
            .basic_publish(
                ShortString::from(msg.exchange.as_str()),
                ShortString::from(msg.routing_key.as_str()),
                BasicPublishOptions {
                    mandatory: msg.mandatory,
                    immediate: false,
                },
                &msg.body,
                msg.properties(),
            )
            .await;
        match sent {
            Ok(confirm) => Ok(PendingConfirm {
                confirm,
                exchange: msg.exchange.clone(),
                routing_key: msg.routing_key.clone(),
                _slot: slot,
            }),
            Err(source) => {
                *guard = None;
                Err(AmqpError::Protocol {
                    op: "basic.publish",
                    source,
                })
            }
        }
    }

    /// Sends and waits for the broker's confirmation.
    pub async fn publish(&self, msg: &Outgoing) -> Result<(), AmqpError> {
        self.send(msg).await?.confirmed().await
    }

    /// Publishes, retrying transient failures with backoff until confirmed,
    /// a permanent error, or shutdown.
    pub async fn publish_retrying(
        &self,
        msg: &Outgoing,
        shutdown: &CancellationToken,
    ) -> Result<(), AmqpError> {
        let mut backoff = self.broker.backoff();
        loop {
            match self.publish(msg).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_transient() && !shutdown.is_cancelled() => {
                    let delay = backoff.next_delay();
                    tracing::debug!(error = %e, retry_in_ms = delay.as_millis() as u64, "publish failed, retrying");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = shutdown.cancelled() => return Err(AmqpError::Shutdown),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}
