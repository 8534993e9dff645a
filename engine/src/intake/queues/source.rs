//! Consuming a queue of logs or events: decode, run the playbooks, and ack
//! only once what they decided is durable.
//!
//! Each queue is handled in order by one task (a partition queue is one
//! source's ordered stream). Acks are pipelined: a second task takes the
//! handled deliveries in order, waits once for everything recorded so far
//! to be durable (the audit writer's flush: decisions and action records;
//! notify and publish intents are in the outbox before their dispatch
//! returns), then acks them. The prefetch bounds what is between the two.
//! A delivery that is not acked when the process dies or the connection
//! breaks goes back to the queue: at least once, nothing lost.

use std::sync::Arc;

use riposte_connectors::amqp::{subscribe, Broker, ConsumerSettings, Delivery, Publisher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::config::MessageFormat;
use super::decode::Origin;
use super::metrics::AmqpMetrics;
use super::Durability;
use crate::intake::pipeline::EventHandler;
use crate::intake::sources::Ingest;

/// Everything a consumer needs besides its queue.
#[derive(Clone)]
pub struct ConsumerContext {
    pub broker: Arc<Broker>,
    pub dead_letters: Arc<Publisher>,
    pub handler: Arc<dyn EventHandler>,
    pub durable: Durability,
    pub ingest: Arc<Ingest>,
    pub metrics: AmqpMetrics,
    pub max_message_bytes: usize,
}

impl std::fmt::Debug for ConsumerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerContext")
            .field("broker", &self.broker)
            .finish()
    }
}

/// Consumes `settings.queue` until `shutdown` (handled deliveries are still
/// acked) or `kill` (nothing more is acked: what is unsettled returns to
/// the queue when the connection closes).
///
/// With `release` (a partition), the consumer can be handed over in order:
/// on `release` or `shutdown` it stops taking deliveries, acks the ones it
/// handled once durable, then releases the subscription (its channel
/// closes: the broker takes back the rest and activates the next consumer).
pub async fn consume(
    ctx: ConsumerContext,
    settings: ConsumerSettings,
    format: MessageFormat,
    origin: Origin,
    shutdown: CancellationToken,
    kill: CancellationToken,
    release: Option<CancellationToken>,
) {
    let queue = settings.queue.name.clone();
    let prefetch = usize::from(settings.prefetch.max(1));
    // The subscription stops on either (only on a kill when it is to be
    // released instead); only a kill skips the acks.
    let stop = CancellationToken::new();
    let hand_over = CancellationToken::new();
    {
        let (stop, shutdown, kill) = (stop.clone(), shutdown.clone(), kill.clone());
        let release = release.clone();
        let hand_over = hand_over.clone();
        tokio::spawn(async move {
            match release {
                None => tokio::select! {
                    () = shutdown.cancelled() => stop.cancel(),
                    () = kill.cancelled() => stop.cancel(),
                    () = stop.cancelled() => {}
                },
                Some(release) => tokio::select! {
                    () = shutdown.cancelled() => hand_over.cancel(),
                    () = release.cancelled() => hand_over.cancel(),
                    () = kill.cancelled() => stop.cancel(),
                    () = stop.cancelled() => {}
                },
            }
        });
    }
    let mut sub = match subscribe(
        ctx.broker.clone(),
        ctx.dead_letters.clone(),
        settings,
        stop.clone(),
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(queue = %queue, error = %e, "cannot consume");
            return;
        }
    };
    let (ack_tx, ack_rx) = mpsc::channel::<Delivery>(prefetch);
    let acker = tokio::spawn(ack_loop(
        ack_rx,
        ctx.durable.clone(),
        ctx.metrics.clone(),
        queue.clone(),
        kill.clone(),
    ));
    let mut handing_over = false;
    loop {
        let delivery = tokio::select! {
            biased;
            () = kill.cancelled() => break,
            () = hand_over.cancelled() => {
                handing_over = true;
                break;
            }
            d = sub.deliveries.recv() => match d {
                Some(d) => d,
                None => break,
            },
        };
        ctx.metrics.in_flight.inc();
        let Some(delivery) = handle(&ctx, delivery, format, origin, &queue, &kill).await else {
            ctx.metrics.in_flight.dec();
            continue;
        };
        if ack_tx.send(delivery).await.is_err() {
            ctx.metrics.in_flight.dec();
            break;
        }
    }
    drop(ack_tx);
    let _ = acker.await;
    if handing_over && !kill.is_cancelled() {
        // Everything handled is acked: what the broker takes back now was
        // never looked at, and comes next, in order, to the next consumer.
        sub.release().await;
        stop.cancel();
    } else {
        stop.cancel();
        sub.task.abort();
    }
}

/// Handles one delivery; returns it when it is to be acked once durable.
async fn handle(
    ctx: &ConsumerContext,
    delivery: Delivery,
    format: MessageFormat,
    origin: Origin,
    queue: &str,
    kill: &CancellationToken,
) -> Option<Delivery> {
    if delivery.body.len() > ctx.max_message_bytes {
        let reason = format!(
            "oversized: {} bytes, the limit (amqp.max_message_bytes) is {}",
            delivery.body.len(),
            ctx.max_message_bytes
        );
        dead_letter(ctx, delivery, queue, "oversized", &reason).await;
        return None;
    }
    let decoded = super::decode::decode(&delivery.body, format, origin, &ctx.ingest);
    ctx.metrics
        .events(queue, "decoded", decoded.events.len() as u64);
    ctx.metrics.events(queue, "ignored", decoded.ignored as u64);
    ctx.metrics.events(queue, "failed", decoded.failed as u64);
    if decoded.is_poison() {
        let reason = decoded.reason();
        dead_letter(ctx, delivery, queue, "undecodable", &reason).await;
        return None;
    }
    for event in decoded.events {
        if kill.is_cancelled() {
            return None;
        }
        let span = tracing::debug_span!("event", event.id = %event.id, queue);
        ctx.handler.handle(event).instrument(span).await;
    }
    Some(delivery)
}

async fn dead_letter(
    ctx: &ConsumerContext,
    delivery: Delivery,
    queue: &str,
    code: &'static str,
    reason: &str,
) {
    tracing::warn!(queue, reason, "message dead-lettered");
    match delivery.dead_letter(reason).await {
        Ok(()) => {
            ctx.metrics.dead(queue, code);
            ctx.metrics.consumed(queue, "dead_lettered");
        }
        Err(e) => {
            // Left on the queue (nacked): it comes back for another try.
            tracing::warn!(queue, error = %e, "could not dead-letter; the message stays queued");
            ctx.metrics.consumed(queue, "unsettled");
        }
    }
}

/// Acks handled deliveries in order, once everything recorded before them
/// is durable: one flush for all that waited meanwhile.
async fn ack_loop(
    mut rx: mpsc::Receiver<Delivery>,
    durable: Durability,
    metrics: AmqpMetrics,
    queue: String,
    kill: CancellationToken,
) {
    let mut batch = Vec::new();
    loop {
        let first = tokio::select! {
            biased;
            () = kill.cancelled() => return,
            d = rx.recv() => match d {
                Some(d) => d,
                None => return,
            },
        };
        batch.push(first);
        while batch.len() < 4096 {
            match rx.try_recv() {
                Ok(d) => batch.push(d),
                Err(_) => break,
            }
        }
        let flushed = tokio::select! {
            biased;
            () = kill.cancelled() => return,
            r = durable.flush() => r,
        };
        let n = batch.len();
        match flushed {
            Ok(()) => {
                for d in batch.drain(..) {
                    match d.ack().await {
                        Ok(()) => metrics.consumed(&queue, "acked"),
                        Err(e) => {
                            tracing::warn!(queue = %queue, error = %e,
                                "ack not delivered (the connection broke): the message comes again");
                            metrics.consumed(&queue, "unsettled");
                        }
                    }
                }
            }
            Err(e) => {
                // The writer stopped (shutdown): unacked, the messages go
                // back to the queue when the connection closes.
                tracing::warn!(queue = %queue, error = %e, messages = n,
                    "decisions not durable: messages left unacknowledged");
                metrics
                    .consumed
                    .get_or_create(&super::metrics::ConsumedLabels {
                        queue: queue.clone(),
                        result: "unsettled",
                    })
                    .inc_by(n as u64);
                batch.clear();
            }
        }
        metrics.in_flight.dec_by(n as i64);
    }
}
