//! The notification series, all labelled by target name (a handful,
//! from config: low cardinality).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabel {
    pub target: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

fn latency_histogram() -> Histogram {
    // 5 ms to about 5.8 hours: a notification may wait out a long outage.
    Histogram::new(exponential_buckets(0.005, 3.0, 14))
}

/// The outbox worker's and the dispatcher's notification series.
#[derive(Debug, Clone)]
pub struct NotifyMetrics {
    pub enqueued: Family<TargetLabel, Counter>,
    pub delivered: Family<TargetLabel, Counter>,
    pub retries: Family<TargetLabel, Counter>,
    pub dead: Family<TargetLabel, Counter>,
    pub failed: Family<TargetLabel, Counter>,
    pub refused: Family<ReasonLabel, Counter>,
    pub depth: Family<TargetLabel, Gauge>,
    pub disabled: Family<TargetLabel, Gauge>,
    pub latency: Family<TargetLabel, Histogram, fn() -> Histogram>,
    /// Notifications counted into an open incident instead of sent.
    pub coalesced: Family<TargetLabel, Counter>,
    /// Coalescing windows open.
    pub windows: Family<TargetLabel, Gauge>,
    /// Stored windows that could not be read back at start.
    pub windows_unreadable: Counter,
}

impl Default for NotifyMetrics {
    fn default() -> Self {
        NotifyMetrics {
            enqueued: Family::default(),
            delivered: Family::default(),
            retries: Family::default(),
            dead: Family::default(),
            failed: Family::default(),
            refused: Family::default(),
            depth: Family::default(),
            disabled: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            coalesced: Family::default(),
            windows: Family::default(),
            windows_unreadable: Counter::default(),
        }
    }
}

impl NotifyMetrics {
    pub fn register(registry: &mut Registry) -> NotifyMetrics {
        let m = NotifyMetrics::default();
        registry.register(
            "riposte_notify_enqueued",
            "Notifications written to the outbox, by target",
            m.enqueued.clone(),
        );
        registry.register(
            "riposte_notify_delivered",
            "Notifications delivered (or acknowledged as duplicates), by target",
            m.delivered.clone(),
        );
        registry.register(
            "riposte_notify_retries",
            "Delivery retries scheduled, by target",
            m.retries.clone(),
        );
        registry.register(
            "riposte_notify_dead",
            "Notifications moved to the dead-letter list, by target",
            m.dead.clone(),
        );
        registry.register(
            "riposte_notify_failed",
            "Delivery attempts that failed (any answer but delivered), by target",
            m.failed.clone(),
        );
        registry.register(
            "riposte_notify_refused",
            "Notify intents not written to the outbox, by reason (unknown_target, not_subscribed, store)",
            m.refused.clone(),
        );
        registry.register(
            "riposte_notify_outbox_depth",
            "Pending notifications in the outbox, by target",
            m.depth.clone(),
        );
        registry.register(
            "riposte_notify_target_disabled",
            "1 while a target is disabled (it answered 410 Gone), by target",
            m.disabled.clone(),
        );
        registry.register(
            "riposte_notify_delivery_seconds",
            "From written to the outbox to delivered, by target",
            m.latency.clone(),
        );
        registry.register(
            "riposte_notify_coalesced",
            "Notifications counted into an open incident of their subject (sent in its updates) instead of sent on their own, by target",
            m.coalesced.clone(),
        );
        registry.register(
            "riposte_notify_windows_unreadable",
            "Stored notification windows that could not be read back at start (their incident gets no more updates; a new one opens)",
            m.windows_unreadable.clone(),
        );
        registry.register(
            "riposte_notify_windows_open",
            "Coalescing windows open (incidents still counting notifications), by target",
            m.windows.clone(),
        );
        m
    }

    pub fn target(name: &str) -> TargetLabel {
        TargetLabel {
            target: name.to_string(),
        }
    }
}
