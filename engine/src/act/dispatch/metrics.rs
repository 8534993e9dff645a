//! The dispatcher's series: actions by final status, guardrail refusals by
//! reason, and the state of the pod index it resolves targets with.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;
use riposte_connectors::kubernetes::PodIndex;

use crate::act::notifications::Notifier;
use crate::decide::decision::ActionRecord;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: &'static str,
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    reason: &'static str,
}

/// The dispatcher's series.
#[derive(Debug, Clone, Default)]
pub struct DispatchMetrics {
    actions: Family<ActionLabels, Counter>,
    refusals: Family<RefusalLabels, Counter>,
    /// Actions asked again and not queued again (`repeat`: the pod is
    /// quarantined long enough; `coalesced`: the same action waits on the
    /// pod's lane).
    repeats: Family<RefusalLabels, Counter>,
    /// Distinct actions waiting or running on the pods' lanes.
    pub(super) lane_actions: Gauge,
    /// Told when an action finishes, for targets subscribed to action
    /// outcomes. Rides along with the metrics because every [`Reporter`](super::Reporter)
    /// already carries them.
    pub(super) outcomes: Arc<std::sync::OnceLock<Arc<Notifier>>>,
}

impl DispatchMetrics {
    pub fn register(registry: &mut Registry) -> DispatchMetrics {
        let m = DispatchMetrics::default();
        registry.register(
            "riposte_actions",
            "Actions by action and final status (applied, refused, failed, skipped)",
            m.actions.clone(),
        );
        registry.register(
            "riposte_guardrail_refusals",
            "Intents refused by a guardrail, by reason",
            m.refusals.clone(),
        );
        registry.register(
            "riposte_actions_repeated",
            "Actions asked again and not carried out again, by reason (repeat: the pod is quarantined long enough; coalesced: the same action already waits on the pod's lane)",
            m.repeats.clone(),
        );
        registry.register(
            "riposte_dispatch_lane_actions",
            "Distinct actions waiting or running on the pods' lanes (identical ones are folded in: the queue of one pod does not grow with a storm)",
            m.lane_actions.clone(),
        );
        m
    }

    pub(super) fn count(&self, record: &ActionRecord, action: &'static str) {
        self.actions
            .get_or_create(&ActionLabels {
                action,
                status: record.status.as_str(),
            })
            .inc();
    }

    pub(super) fn repeated(&self, reason: &'static str) {
        self.repeats.get_or_create(&RefusalLabels { reason }).inc();
    }

    pub(super) fn refused(&self, code: &'static str) {
        self.refusals
            .get_or_create(&RefusalLabels { reason: code })
            .inc();
    }

    /// Tells `notifier` about every finished action from now on.
    pub fn set_outcome_notifier(&self, notifier: Arc<Notifier>) {
        let _ = self.outcomes.set(notifier);
    }
}

/// The pod index's series, read from the index on each scrape (a gauge
/// kept up to date would cost every watch event a write):
/// `riposte_pod_index_synced`, `riposte_pod_index_pods`,
/// `riposte_pod_index_addresses`, `riposte_pod_index_watch_errors_total`
/// and `riposte_quarantines_active`. Registered only when a cluster is
/// configured.
#[derive(Debug)]
pub struct PodIndexCollector {
    index: PodIndex,
}

impl PodIndexCollector {
    pub fn new(index: PodIndex) -> PodIndexCollector {
        PodIndexCollector { index }
    }
}

impl Collector for PodIndexCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let status = self.index.status();
        let gauges = [
            (
                "riposte_pod_index_synced",
                "1 once every watch of the pod index has completed its first full list",
                i64::from(status.ready),
            ),
            (
                "riposte_pod_index_pods",
                "Pods in the pod index",
                saturating_i64(status.pods),
            ),
            (
                "riposte_pod_index_addresses",
                "Pod addresses the index resolves",
                saturating_i64(status.addresses),
            ),
            (
                "riposte_quarantines_active",
                "Pods carrying the quarantine label now",
                saturating_i64(status.quarantined),
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        let errors = ConstCounter::new(status.watch_errors);
        let metric = encoder.encode_descriptor(
            "riposte_pod_index_watch_errors",
            "Errors of the pod index's watches (each is retried with backoff)",
            None,
            errors.metric_type(),
        )?;
        errors.encode(metric)
    }
}

fn saturating_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pod_index_is_read_at_each_scrape() {
        let mut registry = Registry::default();
        let index = PodIndex::offline("riposte.io/quarantine");
        registry.register_collector(Box::new(PodIndexCollector::new(index)));
        let text = crate::intake::metrics::encode(&registry);
        for line in [
            "riposte_pod_index_synced 1\n",
            "riposte_pod_index_pods 0\n",
            "riposte_quarantines_active 0\n",
            "riposte_pod_index_watch_errors_total 0\n",
            "# TYPE riposte_pod_index_watch_errors counter\n",
        ] {
            assert!(text.contains(line), "{line}: {text}");
        }
    }
}
