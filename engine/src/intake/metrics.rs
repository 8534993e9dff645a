//! Every Prometheus series the ingestion path exposes, in one place.
//!
//! Labels stay low-cardinality: a source kind, a dataset, a fixed reason —
//! never an address, a pod or a raw value. Hot paths hold pre-resolved
//! counter handles ([`SourceMetrics`]) rather than looking labels up per
//! record.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    pub source: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ParsedLabels {
    pub source: &'static str,
    pub dataset: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub source: &'static str,
    pub reason: &'static str,
}

#[derive(Debug, Clone)]
pub struct IngestMetrics {
    received: Family<SourceLabel, Counter>,
    parsed: Family<ParsedLabels, Counter>,
    failed: Family<ReasonLabels, Counter>,
    ignored: Family<SourceLabel, Counter>,
    dropped: Family<ReasonLabels, Counter>,
    refused: Family<ReasonLabels, Counter>,
    connections: Family<SourceLabel, Gauge>,
    pub processed: Counter,
    pub queued: Gauge,
}

impl IngestMetrics {
    pub fn register(registry: &mut Registry) -> IngestMetrics {
        let m = IngestMetrics {
            received: Family::default(),
            parsed: Family::default(),
            failed: Family::default(),
            ignored: Family::default(),
            dropped: Family::default(),
            refused: Family::default(),
            connections: Family::default(),
            processed: Counter::default(),
            queued: Gauge::default(),
        };
        registry.register(
            "riposte_records_received",
            "Records received, by source",
            m.received.clone(),
        );
        registry.register(
            "riposte_events_parsed",
            "Records parsed into events, by source and dataset",
            m.parsed.clone(),
        );
        registry.register(
            "riposte_parse_failures",
            "Records that could not be parsed, by source and reason",
            m.failed.clone(),
        );
        registry.register(
            "riposte_records_ignored",
            "Valid records that carry nothing for playbooks (Suricata flow, PAN-OS SYSTEM, ...)",
            m.ignored.clone(),
        );
        registry.register(
            "riposte_records_dropped",
            "Records dropped before the pipeline, by source and reason (queue_full, too_long, not_allowed, ...)",
            m.dropped.clone(),
        );
        registry.register(
            "riposte_connections_refused",
            "Connections refused, by source and reason",
            m.refused.clone(),
        );
        registry.register(
            "riposte_connections_active",
            "Open connections, by source",
            m.connections.clone(),
        );
        registry.register(
            "riposte_events_processed",
            "Events that went through the playbooks",
            m.processed.clone(),
        );
        registry.register(
            "riposte_pipeline_queued",
            "Events waiting in the pipeline shards",
            m.queued.clone(),
        );
        m
    }

    /// Pre-resolved handles for one source kind.
    pub fn source(&self, source: &'static str) -> SourceMetrics {
        SourceMetrics {
            source,
            received: self.received.get_or_create(&SourceLabel { source }).clone(),
            ignored: self.ignored.get_or_create(&SourceLabel { source }).clone(),
            connections: self
                .connections
                .get_or_create(&SourceLabel { source })
                .clone(),
            families: self.clone(),
        }
    }
}

/// The counters of one source, resolved once.
#[derive(Debug, Clone)]
pub struct SourceMetrics {
    pub source: &'static str,
    pub received: Counter,
    pub ignored: Counter,
    pub connections: Gauge,
    families: IngestMetrics,
}

impl SourceMetrics {
    pub fn parsed(&self, dataset: &str) -> Counter {
        self.families
            .parsed
            .get_or_create(&ParsedLabels {
                source: self.source,
                dataset: dataset.to_string(),
            })
            .clone()
    }

    pub fn failed(&self, reason: &'static str) -> Counter {
        self.families
            .failed
            .get_or_create(&ReasonLabels {
                source: self.source,
                reason,
            })
            .clone()
    }

    pub fn dropped(&self, reason: &'static str) -> Counter {
        self.families
            .dropped
            .get_or_create(&ReasonLabels {
                source: self.source,
                reason,
            })
            .clone()
    }

    pub fn refused(&self, reason: &'static str) -> Counter {
        self.families
            .refused
            .get_or_create(&ReasonLabels {
                source: self.source,
                reason,
            })
            .clone()
    }
}

/// Renders the registry in the Prometheus text format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::with_capacity(8192);
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}
