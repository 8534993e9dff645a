//! The ingest role's end of the pipeline: each normalized event is
//! published to its partition queue instead of running the playbooks here.
//!
//! The partition is a hash of the source address, so one source's events
//! go, in order, to one queue, which one worker consumes at a time (single
//! active consumer): per-source order and counters hold across replicas.
//! Publishing is pipelined: a pipeline shard sends and moves on, one task
//! awaits the broker's confirmations in order and publishes again whatever
//! was not confirmed, until it is. A shard waits only when the confirms in
//! flight reach `max_inflight_confirms` or the broker is away, which slows
//! the sources down (TCP stops reading, HTTP answers 503).

use std::net::IpAddr;
use std::sync::Arc;

use futures::future::BoxFuture;
use riposte_connectors::amqp::{
    BindingSpec, ExchangeSpec, ExchangeType, Outgoing, PendingConfirm, Publisher, QueueSpec,
    Topology,
};
use riposte_firewall::ThreatEvent;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::config::PartitionConfig;
use super::metrics::AmqpMetrics;
use crate::intake::pipeline::EventHandler;

/// The partition of events from `source`: stable across processes and
/// versions (xxh3 of the address bytes).
pub fn partition_of(source: IpAddr, count: u16) -> u16 {
    let hash = match source {
        IpAddr::V4(a) => xxhash_rust::xxh3::xxh3_64(&a.octets()),
        IpAddr::V6(a) => xxhash_rust::xxh3::xxh3_64(&a.octets()),
    };
    (hash % u64::from(count.max(1))) as u16
}

/// The exchange, the partition queues and their dead letters.
pub fn topology(config: &PartitionConfig) -> Topology {
    let dead = format!("{}.dead", config.queue_prefix);
    let mut t = Topology {
        exchanges: vec![
            ExchangeSpec {
                name: config.exchange.clone(),
                kind: ExchangeType::Direct,
                declare: true,
            },
            ExchangeSpec {
                name: config.dead_letter_exchange.clone(),
                kind: ExchangeType::Fanout,
                declare: true,
            },
        ],
        queues: vec![QueueSpec::quorum(&dead)],
        bindings: vec![BindingSpec {
            queue: dead,
            exchange: config.dead_letter_exchange.clone(),
            routing_key: String::new(),
        }],
    };
    for n in 0..config.count {
        t.queues.push(config.queue_spec(n));
        t.bindings.push(BindingSpec {
            queue: config.queue(n),
            exchange: config.exchange.clone(),
            routing_key: n.to_string(),
        });
    }
    t
}

type Sent = (PendingConfirm, Outgoing);

/// Publishes events to their partitions (the ingest role's
/// [`EventHandler`]).
pub struct PartitionPublisher {
    publisher: Arc<Publisher>,
    config: PartitionConfig,
    confirms: mpsc::Sender<Sent>,
    metrics: AmqpMetrics,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for PartitionPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionPublisher")
            .field("exchange", &self.config.exchange)
            .field("partitions", &self.config.count)
            .finish()
    }
}

impl PartitionPublisher {
    /// The publisher and its confirmation task; the task ends once the
    /// publisher is dropped and every message is confirmed (or `shutdown`
    /// gave up on them: they were never acknowledged to anyone).
    pub fn new(
        publisher: Arc<Publisher>,
        config: PartitionConfig,
        metrics: AmqpMetrics,
        shutdown: CancellationToken,
    ) -> (Arc<PartitionPublisher>, tokio::task::JoinHandle<()>) {
        let window = publisher.broker().settings().max_inflight_confirms.max(1);
        let (tx, rx) = mpsc::channel(window);
        let task = tokio::spawn(confirm_loop(
            rx,
            publisher.clone(),
            metrics.clone(),
            shutdown.clone(),
        ));
        (
            Arc::new(PartitionPublisher {
                publisher,
                config,
                confirms: tx,
                metrics,
                shutdown,
            }),
            task,
        )
    }

    fn message(&self, event: &ThreatEvent) -> Option<Outgoing> {
        let body = match serde_json::to_vec(event) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(event.id = %event.id, error = %e, "event does not serialize");
                return None;
            }
        };
        let n = partition_of(event.partition_key(), self.config.count);
        Some(
            Outgoing::new(&self.config.exchange, &n.to_string(), body)
                .message_id(&event.id)
                .content_type("application/json"),
        )
    }
}

impl EventHandler for PartitionPublisher {
    fn handle(&self, event: Box<ThreatEvent>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let Some(msg) = self.message(&event) else {
                return;
            };
            let mut backoff = self.publisher.broker().backoff();
            loop {
                match self.publisher.send(&msg).await {
                    Ok(pending) => {
                        if self.confirms.send((pending, msg)).await.is_err() {
                            tracing::error!(event.id = %event.id, "partition confirm task gone");
                        }
                        return;
                    }
                    Err(e) => {
                        self.metrics.published("partition", "retried", 1);
                        let delay = backoff.next_delay();
                        tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64,
                            "cannot publish to the partitions; the sources wait");
                        tokio::select! {
                            () = tokio::time::sleep(delay) => {}
                            () = self.shutdown.cancelled() => {
                                // Still try while the pipeline drains.
                                tokio::time::sleep(delay).await;
                            }
                        }
                    }
                }
            }
        })
    }
}

async fn confirm_loop(
    mut rx: mpsc::Receiver<Sent>,
    publisher: Arc<Publisher>,
    metrics: AmqpMetrics,
    shutdown: CancellationToken,
) {
    while let Some((pending, msg)) = rx.recv().await {
        match pending.confirmed().await {
            Ok(()) => metrics.published("partition", "confirmed", 1),
            Err(e) => {
                // Not taken by the broker: publish again until it is.
                metrics.published("partition", "retried", 1);
                tracing::warn!(error = %e, "partition publish not confirmed; publishing again");
                let mut backoff = publisher.broker().backoff();
                let mut attempts = 0u32;
                loop {
                    attempts += 1;
                    match publisher.publish(&msg).await {
                        Ok(()) => {
                            metrics.published("partition", "confirmed", 1);
                            break;
                        }
                        Err(e) => {
                            if matches!(e, riposte_connectors::amqp::AmqpError::Unroutable { .. }) {
                                metrics.published("partition", "unroutable", 1);
                            }
                            let delay = backoff.next_delay();
                            tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64,
                                "partition publish failed; retrying");
                            if shutdown.is_cancelled() && attempts >= 20 {
                                tracing::error!(
                                    "shutting down with a partition message the broker never confirmed"
                                );
                                break;
                            }
                            tokio::time::sleep(delay).await;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_stable_and_spread() {
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        assert_eq!(partition_of(a, 8), partition_of(a, 8));
        let mut seen = std::collections::HashSet::new();
        for i in 0..64u8 {
            seen.insert(partition_of(IpAddr::from([10, 0, 0, i]), 8));
        }
        assert_eq!(seen.len(), 8, "64 sources reach every partition");
        assert_eq!(partition_of(a, 1), 0);
    }

    #[test]
    fn topology_binds_each_partition_by_number() {
        let t = topology(&PartitionConfig {
            count: 3,
            ..PartitionConfig::default()
        });
        assert_eq!(t.queues.len(), 4);
        assert!(t.queues[1].single_active_consumer);
        assert_eq!(t.bindings[2].routing_key, "1");
    }
}
