//! The dispatcher's series: actions by final status, and guardrail
//! refusals by reason.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

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
