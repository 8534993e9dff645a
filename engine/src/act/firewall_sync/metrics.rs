//! The firewall side's series: confirmed operations, failures and drift
//! by firewall, and EDL requests and withheld entries by list.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct FwLabels {
    pub(super) firewall: String,
    pub(super) kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ListLabels {
    pub(super) list: String,
    pub(super) status: &'static str,
}

/// The firewall side's series.
#[derive(Debug, Clone, Default)]
pub struct FirewallMetrics {
    ops: Family<FwLabels, Counter>,
    errors: Family<FwLabels, Counter>,
    drift: Family<FwLabels, Counter>,
    edl: Family<ListLabels, Counter>,
    pub(super) withheld: Family<ListLabels, Counter>,
    repeats: Family<KindLabel, Counter>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct KindLabel {
    pub(super) kind: &'static str,
}

impl FirewallMetrics {
    pub fn register(registry: &mut Registry) -> FirewallMetrics {
        let m = FirewallMetrics::default();
        registry.register(
            "riposte_firewall_ops",
            "Tag registrations and unregistrations confirmed by a firewall, by kind (register, unregister)",
            m.ops.clone(),
        );
        registry.register(
            "riposte_firewall_errors",
            "Failed firewall operations, by firewall and error kind (auth, not_xml, timeout, connect, http, api, entries, tls, store)",
            m.errors.clone(),
        );
        registry.register(
            "riposte_firewall_drift",
            "Differences the reconciler found and repaired, by firewall and kind (missing: re-registered; stale: unregistered; refreshed: long lease re-registered)",
            m.drift.clone(),
        );
        registry.register(
            "riposte_edl_requests",
            "EDL requests by list and answer (ok, not_modified, unauthorized, unknown)",
            m.edl.clone(),
        );
        registry.register(
            "riposte_edl_withheld",
            "Stored EDL entries not served because they are refused now, by list and reason (never_block, broad_prefix, invalid)",
            m.withheld.clone(),
        );
        registry.register(
            "riposte_firewall_repeats",
            "Tags and EDL entries asked for again while still fresh, not sent again before their refresh, by kind (tag, edl)",
            m.repeats.clone(),
        );
        m
    }

    pub(super) fn repeat(&self, kind: &'static str) {
        self.repeats.get_or_create(&KindLabel { kind }).inc();
    }

    pub(super) fn withheld(&self, list: &str, status: &'static str) {
        self.withheld
            .get_or_create(&ListLabels {
                list: list.to_string(),
                status,
            })
            .inc();
    }

    pub(super) fn op(&self, fw: &str, kind: &'static str) {
        self.ops
            .get_or_create(&FwLabels {
                firewall: fw.to_string(),
                kind,
            })
            .inc();
    }

    pub(crate) fn error(&self, fw: &str, kind: &'static str) {
        self.errors
            .get_or_create(&FwLabels {
                firewall: fw.to_string(),
                kind,
            })
            .inc();
    }

    pub(crate) fn drift(&self, fw: &str, kind: &'static str, n: u64) {
        if n > 0 {
            self.drift
                .get_or_create(&FwLabels {
                    firewall: fw.to_string(),
                    kind,
                })
                .inc_by(n);
        }
    }

    pub fn edl(&self, list: &str, status: &'static str) {
        self.edl
            .get_or_create(&ListLabels {
                list: list.to_string(),
                status,
            })
            .inc();
    }
}
