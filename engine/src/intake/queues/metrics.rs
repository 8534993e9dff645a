//! The AMQP series. Labels are queue names and outbox targets from the
//! config (a handful), and fixed results and reasons.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumedLabels {
    pub queue: String,
    /// `acked`, `requeued`, `dead_lettered`, `unsettled` (the ack did not
    /// reach the broker: the message comes again).
    pub result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeadLabels {
    pub queue: String,
    /// `oversized`, `undecodable`, `delivery_limit`.
    pub reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PublishedLabels {
    /// `partition`, `publish` (intents), `decisions`.
    pub kind: &'static str,
    /// `confirmed`, `retried`, `unroutable`, `dead`.
    pub result: &'static str,
}

#[derive(Debug, Clone, Default)]
pub struct AmqpMetrics {
    pub consumed: Family<ConsumedLabels, Counter>,
    pub dead: Family<DeadLabels, Counter>,
    pub events: Family<ConsumedLabels, Counter>,
    pub published: Family<PublishedLabels, Counter>,
    /// Unsettled deliveries held by this process.
    pub in_flight: Gauge,
    /// Partition queues this worker is assigned to consume.
    pub partitions_owned: Gauge,
    /// Live workers this worker sees (itself included).
    pub workers: Gauge,
    /// Changes of this worker's partitions (the first assignment too).
    pub rebalances: Counter,
}

impl AmqpMetrics {
    pub fn register(registry: &mut Registry) -> AmqpMetrics {
        let m = AmqpMetrics::default();
        registry.register(
            "riposte_amqp_messages",
            "Messages consumed from AMQP queues, by queue and how they were settled",
            m.consumed.clone(),
        );
        registry.register(
            "riposte_amqp_dead_letters",
            "Messages dead-lettered by Riposte, by queue and reason",
            m.dead.clone(),
        );
        registry.register(
            "riposte_amqp_events",
            "Events decoded from AMQP messages, by queue (result: decoded, ignored, failed)",
            m.events.clone(),
        );
        registry.register(
            "riposte_amqp_published",
            "Messages published to the broker, by kind and result",
            m.published.clone(),
        );
        registry.register(
            "riposte_amqp_in_flight",
            "Consumed messages not yet settled",
            m.in_flight.clone(),
        );
        registry.register(
            "riposte_amqp_partitions_owned",
            "Partition queues assigned to this worker",
            m.partitions_owned.clone(),
        );
        registry.register(
            "riposte_amqp_workers",
            "Live worker replicas sharing the partitions, as this worker sees them",
            m.workers.clone(),
        );
        registry.register(
            "riposte_amqp_rebalances",
            "Changes of the partitions assigned to this worker",
            m.rebalances.clone(),
        );
        m
    }

    pub fn consumed(&self, queue: &str, result: &'static str) {
        self.consumed
            .get_or_create(&ConsumedLabels {
                queue: queue.to_string(),
                result,
            })
            .inc();
    }

    pub fn dead(&self, queue: &str, reason: &'static str) {
        self.dead
            .get_or_create(&DeadLabels {
                queue: queue.to_string(),
                reason,
            })
            .inc();
    }

    pub fn events(&self, queue: &str, result: &'static str, n: u64) {
        if n > 0 {
            self.events
                .get_or_create(&ConsumedLabels {
                    queue: queue.to_string(),
                    result,
                })
                .inc_by(n);
        }
    }

    pub fn published(&self, kind: &'static str, result: &'static str, n: u64) {
        if n > 0 {
            self.published
                .get_or_create(&PublishedLabels { kind, result })
                .inc_by(n);
        }
    }
}
