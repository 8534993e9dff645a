//! Consuming with explicit acknowledgement.
//!
//! A consumer task owns the subscription: it (re)connects with backoff,
//! sets the prefetch (so at most that many messages are unacknowledged, and
//! the broker holds the rest), subscribes, and hands each message to the
//! caller as a [`Delivery`]. The caller acks only once the message's
//! consequences are durably recorded, asks for a retry on a transient
//! failure, or dead-letters a message that can never succeed, with the
//! reason in a header. Unacknowledged messages go back to the queue when the
//! connection breaks, so nothing accepted is lost: delivery is at least
//! once.

use std::fmt;
use std::sync::Arc;

use futures::StreamExt;
use lapin::message::Delivery as LapinDelivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Acker, BasicProperties, Channel};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::broker::Broker;
use super::error::AmqpError;
use super::publisher::{Outgoing, Publisher};
use super::topology::{QueueSpec, Topology};

/// The header carrying why Riposte dead-lettered a message.
pub const REASON_HEADER: &str = "x-riposte-dead-letter-reason";
/// The header naming the queue a dead letter came from.
pub const QUEUE_HEADER: &str = "x-riposte-original-queue";

/// What to consume and how.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub queue: QueueSpec,
    /// Unacknowledged messages at most (basic.qos).
    pub prefetch: u16,
    /// Shown by `rabbitmqctl list_consumers`.
    pub tag: String,
}

/// Where dead letters go, shared by the deliveries of one queue.
struct DeadLetters {
    publisher: Arc<Publisher>,
    queue: String,
    exchange: Option<String>,
    routing_key: Option<String>,
    delivery_limit: Option<u32>,
}

/// One message, with what is needed to settle it.
pub struct Delivery {
    pub body: Vec<u8>,
    pub exchange: String,
    pub routing_key: String,
    pub redelivered: bool,
    pub properties: BasicProperties,
    acker: Acker,
    // Keeps the channel open while the message is unsettled: its ack must
    // travel on the channel it arrived on.
    _channel: Channel,
    dead: Arc<DeadLetters>,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("queue", &self.dead.queue)
            .field("routing_key", &self.routing_key)
            .field("bytes", &self.body.len())
            .field("redelivered", &self.redelivered)
            .finish()
    }
}

/// How a failed message was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Requeued,
    DeadLettered,
}

impl Delivery {
    pub fn queue(&self) -> &str {
        &self.dead.queue
    }

    /// Earlier deliveries of this message (quorum queues count them in
    /// `x-delivery-count`; 0 on the first delivery).
    pub fn delivery_count(&self) -> u64 {
        let Some(headers) = self.properties.headers() else {
            return 0;
        };
        match headers.inner().get("x-delivery-count") {
            Some(v) => int_value(v).unwrap_or(0),
            None => u64::from(self.redelivered),
        }
    }

    /// A string header, if present.
    pub fn header(&self, key: &str) -> Option<String> {
        let headers = self.properties.headers().as_ref()?;
        header_string(headers, key)
    }

    pub fn message_id(&self) -> Option<&str> {
        self.properties.message_id().as_ref().map(|s| s.as_str())
    }

    /// The message is done with: the broker forgets it.
    pub async fn ack(self) -> Result<(), AmqpError> {
        self.acker
            .ack(BasicAckOptions::default())
            .await
            .map(|_| ())
            .map_err(AmqpError::protocol("basic.ack"))
    }

    /// A transient failure: back to the queue for another try, or to the
    /// dead letters once the queue's delivery limit would be passed.
    pub async fn retry(self, error: &str) -> Result<Settled, AmqpError> {
        if let Some(limit) = self.dead.delivery_limit {
            if self.delivery_count() + 1 >= u64::from(limit) {
                let reason = format!("delivery limit {limit} reached; last error: {error}");
                self.dead_letter(&reason).await?;
                return Ok(Settled::DeadLettered);
            }
        }
        self.acker
            .nack(BasicNackOptions {
                requeue: true,
                multiple: false,
            })
            .await
            .map_err(AmqpError::protocol("basic.nack"))?;
        Ok(Settled::Requeued)
    }

    /// A message that can never succeed: published to the dead-letter
    /// exchange with `reason` in [`REASON_HEADER`] and then acked, so the
    /// reason travels with it. Without a dead-letter exchange it is
    /// rejected (the broker drops it, or dead-letters it by policy).
    pub async fn dead_letter(self, reason: &str) -> Result<(), AmqpError> {
        let Some(exchange) = self.dead.exchange.clone() else {
            tracing::warn!(queue = %self.dead.queue, reason, "no dead-letter exchange: message rejected");
            self.acker
                .reject(BasicRejectOptions { requeue: false })
                .await
                .map_err(AmqpError::protocol("basic.reject"))?;
            return Ok(());
        };
        let routing_key = self
            .dead
            .routing_key
            .clone()
            .unwrap_or_else(|| self.routing_key.clone());
        let mut out = Outgoing::new(&exchange, &routing_key, self.body.clone())
            .header(REASON_HEADER, reason)
            .header(QUEUE_HEADER, &self.dead.queue);
        if let Some(headers) = self.properties.headers() {
            for (k, v) in headers.inner() {
                if k.as_str() != REASON_HEADER && k.as_str() != QUEUE_HEADER {
                    out.headers.insert(k.clone(), v.clone());
                }
            }
        }
        if let Some(id) = self.message_id() {
            out = out.message_id(id);
        }
        if let Some(ct) = self.properties.content_type() {
            out = out.content_type(ct.as_str());
        }
        match self.dead.publisher.publish(&out).await {
            Ok(()) => {}
            Err(AmqpError::Unroutable { .. }) => {
                // Nothing is bound to the dead-letter exchange: keeping the
                // message forever would block the queue, so it is rejected,
                // loudly.
                tracing::error!(
                    queue = %self.dead.queue,
                    exchange = %exchange,
                    reason,
                    "dead letter unroutable (no queue bound to the dead-letter exchange): message rejected"
                );
                self.acker
                    .reject(BasicRejectOptions { requeue: false })
                    .await
                    .map_err(AmqpError::protocol("basic.reject"))?;
                return Ok(());
            }
            Err(e) => {
                // Could not store the dead letter: leave the message where it
                // is for a later try.
                let _ = self
                    .acker
                    .nack(BasicNackOptions {
                        requeue: true,
                        multiple: false,
                    })
                    .await;
                return Err(e);
            }
        }
        self.ack().await
    }
}

fn int_value(v: &AMQPValue) -> Option<u64> {
    match v {
        AMQPValue::LongLongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongUInt(n) => Some(u64::from(*n)),
        AMQPValue::ShortInt(n) => u64::try_from(*n).ok(),
        AMQPValue::ShortUInt(n) => Some(u64::from(*n)),
        AMQPValue::ShortShortInt(n) => u64::try_from(*n).ok(),
        AMQPValue::ShortShortUInt(n) => Some(u64::from(*n)),
        AMQPValue::Timestamp(n) => Some(*n),
        _ => None,
    }
}

/// A header as a string (long and short strings, byte arrays as UTF-8).
pub fn header_string(headers: &FieldTable, key: &str) -> Option<String> {
    match headers.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        AMQPValue::ByteArray(b) => Some(String::from_utf8_lossy(b.as_slice()).into_owned()),
        other => int_value(other).map(|n| n.to_string()),
    }
}

/// A running consumer: deliveries arrive on `deliveries`.
#[derive(Debug)]
pub struct Subscription {
    pub deliveries: mpsc::Receiver<Delivery>,
    pub task: JoinHandle<()>,
    release: CancellationToken,
}

impl Subscription {
    /// Ends the subscription by closing its channel, with no basic.cancel
    /// first: the broker takes back every message still unacknowledged
    /// (ahead of the rest of the queue) and, on a single-active-consumer
    /// queue, activates the next consumer in the same step. A cancel first
    /// would let the next consumer start on later messages while these are
    /// still out, which breaks the queue's order. Ack what was handled
    /// before: an ack after this fails.
    pub async fn release(self) {
        self.release.cancel();
        let _ = self.task.await;
    }
}

/// Starts consuming `settings.queue` (declared through `broker` on every
/// connection) until `shutdown`.
pub async fn subscribe(
    broker: Arc<Broker>,
    dead_letter_publisher: Arc<Publisher>,
    settings: ConsumerSettings,
    shutdown: CancellationToken,
) -> Result<Subscription, AmqpError> {
    broker
        .add_topology(&Topology {
            queues: vec![settings.queue.clone()],
            ..Topology::default()
        })
        .await
        .or_else(|e| if e.is_transient() { Ok(()) } else { Err(e) })?;
    let (tx, rx) = mpsc::channel(usize::from(settings.prefetch.max(1)));
    let dead = Arc::new(DeadLetters {
        publisher: dead_letter_publisher,
        queue: settings.queue.name.clone(),
        exchange: settings.queue.dead_letter_exchange.clone(),
        routing_key: settings.queue.dead_letter_routing_key.clone(),
        delivery_limit: settings.queue.delivery_limit,
    });
    let release = CancellationToken::new();
    let task = tokio::spawn(run(broker, settings, dead, tx, shutdown, release.clone()));
    Ok(Subscription {
        deliveries: rx,
        task,
        release,
    })
}

async fn run(
    broker: Arc<Broker>,
    settings: ConsumerSettings,
    dead: Arc<DeadLetters>,
    tx: mpsc::Sender<Delivery>,
    shutdown: CancellationToken,
    release: CancellationToken,
) {
    let mut backoff = broker.backoff();
    let queue = settings.queue.name.clone();
    loop {
        // Dropped half-open, the channel closes: nothing to take back yet.
        let opened = tokio::select! {
            o = open(&broker, &settings, &shutdown) => o,
            () = release.cancelled() => return,
        };
        let channel = match opened {
            Ok(c) => c,
            Err(AmqpError::Shutdown) => return,
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(queue = %queue, error = %e, retry_in_ms = delay.as_millis() as u64, "cannot consume");
                tokio::select! {
                    () = tokio::time::sleep(delay) => continue,
                    () = shutdown.cancelled() => return,
                    () = release.cancelled() => return,
                }
            }
        };
        let (channel, mut consumer) = channel;
        backoff.reset();
        tracing::info!(queue = %queue, prefetch = settings.prefetch, "consuming");
        loop {
            let next = tokio::select! {
                biased;
                () = release.cancelled() => return close(&channel, &queue).await,
                () = shutdown.cancelled() => return,
                n = consumer.next() => n,
            };
            match next {
                Some(Ok(d)) => {
                    tokio::select! {
                        biased;
                        () = release.cancelled() => return close(&channel, &queue).await,
                        sent = tx.send(wrap(d, &channel, &dead)) => if sent.is_err() {
                            return;
                        },
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(queue = %queue, error = %e, "consumer broke; reconnecting");
                    break;
                }
                None => {
                    tracing::warn!(queue = %queue, "consumer cancelled by the broker; resubscribing");
                    break;
                }
            }
        }
        let delay = backoff.next_delay();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.cancelled() => return,
            () = release.cancelled() => return,
        }
    }
}

/// Closes a released consumer's channel (see [`Subscription::release`]).
async fn close(channel: &Channel, queue: &str) {
    match channel.close(200, ShortString::from("released")).await {
        Ok(()) => tracing::info!(queue, "consumer released"),
        // A channel that broke is closed already: the broker took its
        // messages back then.
        Err(e) => tracing::warn!(queue, error = %e, "closing a released consumer's channel"),
    }
}

async fn open(
    broker: &Broker,
    settings: &ConsumerSettings,
    shutdown: &CancellationToken,
) -> Result<(Channel, lapin::Consumer), AmqpError> {
    let connection = broker.connection_retrying(shutdown).await?;
    let channel = match connection.create_channel().await {
        Ok(c) => c,
        Err(source) => {
            broker.forget(&connection).await;
            return Err(AmqpError::Protocol {
                op: "channel.open",
                source,
            });
        }
    };
    channel
        .basic_qos(settings.prefetch, BasicQosOptions { global: false })
        .await
        .map_err(AmqpError::protocol("basic.qos"))?;
    let consumer = channel
        .basic_consume(
            ShortString::from(settings.queue.name.as_str()),
            ShortString::from(settings.tag.as_str()),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(AmqpError::protocol("basic.consume"))?;
    Ok((channel, consumer))
}

fn wrap(d: LapinDelivery, channel: &Channel, dead: &Arc<DeadLetters>) -> Delivery {
    Delivery {
        body: d.data,
        exchange: d.exchange.to_string(),
        routing_key: d.routing_key.to_string(),
        redelivered: d.redelivered,
        properties: d.properties,
        acker: d.acker,
        _channel: channel.clone(),
        dead: dead.clone(),
    }
}
