//! The store's Prometheus series: operation failures, the audit writer's
//! progress and the retention purge.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabel {
    pub op: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabel {
    pub table: &'static str,
}

/// The store's series. Created with the store and registered by
/// [`Store::register_metrics`], so a store opened in a test counts too.
#[derive(Debug, Clone, Default)]
pub struct StoreMetrics {
    /// Failed operations, by operation.
    pub errors: Family<OpLabel, Counter>,
    /// Audit records (decisions and action updates) committed.
    pub audit_written: Counter,
    /// Audit transactions committed.
    pub audit_batches: Counter,
    /// Audit batches retried after a transient failure.
    pub audit_retries: Counter,
    /// Audit records the database refused for good (logged each).
    pub audit_rejected: Counter,
    /// Audit records waiting for the writer.
    pub audit_queued: Gauge,
    /// Decisions counted in an open record of identical decisions rather
    /// than a record of their own.
    pub audit_coalesced: Counter,
    /// Decisions of events already counted for their playbook (redelivered
    /// or re-read), not counted again.
    pub audit_duplicates: Counter,
    /// Coalesced records whose window is open (as this process knows).
    pub audit_open_windows: Gauge,
    /// Event index rows merged from the journal into the index (SQLite).
    pub audit_index_merged: Counter,
    /// Event index rows in the journal, waiting to be merged (SQLite).
    pub audit_index_journal: Gauge,
    /// Bytes of new records' bodies (event summary and intents, JSON)...
    pub audit_body_bytes: Counter,
    /// ...and as stored, packed.
    pub audit_packed_bytes: Counter,
    /// The dictionary new records are packed with (0: none yet).
    pub audit_dictionary: Gauge,
    /// Rows deleted by the retention purge, by table.
    pub purged: Family<TableLabel, Counter>,
}

impl StoreMetrics {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "riposte_store_errors",
            "Store operations that failed, by operation",
            self.errors.clone(),
        );
        registry.register(
            "riposte_audit_records_written",
            "Audit records (decisions and action updates) committed to the store",
            self.audit_written.clone(),
        );
        registry.register(
            "riposte_audit_coalesced",
            "Decisions counted in an open audit record of identical decisions",
            self.audit_coalesced.clone(),
        );
        registry.register(
            "riposte_audit_duplicates",
            "Decisions of events already recorded for their playbook (redelivered), not counted again",
            self.audit_duplicates.clone(),
        );
        registry.register(
            "riposte_audit_open_windows",
            "Coalesced audit records whose window is open, as this process knows them",
            self.audit_open_windows.clone(),
        );
        registry.register(
            "riposte_audit_index_merged",
            "Event index rows merged from the journal into the index in sorted runs (SQLite)",
            self.audit_index_merged.clone(),
        );
        registry.register(
            "riposte_audit_index_journal",
            "Event index rows in the journal, not merged into the index yet (SQLite)",
            self.audit_index_journal.clone(),
        );
        registry.register(
            "riposte_audit_body_bytes",
            "Bytes of new audit records' bodies (event summary and intents) as JSON",
            self.audit_body_bytes.clone(),
        );
        registry.register(
            "riposte_audit_packed_bytes",
            "Bytes of new audit records' bodies as stored, compressed",
            self.audit_packed_bytes.clone(),
        );
        registry.register(
            "riposte_audit_dictionary",
            "The id of the dictionary new audit records are compressed with (0: none yet)",
            self.audit_dictionary.clone(),
        );
        registry.register(
            "riposte_audit_batches",
            "Audit write transactions committed",
            self.audit_batches.clone(),
        );
        registry.register(
            "riposte_audit_retries",
            "Audit batches retried after a transient store failure",
            self.audit_retries.clone(),
        );
        registry.register(
            "riposte_audit_records_rejected",
            "Audit records the store refused permanently (each is logged)",
            self.audit_rejected.clone(),
        );
        registry.register(
            "riposte_audit_queued",
            "Audit records waiting for the store writer",
            self.audit_queued.clone(),
        );
        registry.register(
            "riposte_store_purged_rows",
            "Rows deleted by the retention purge, by table",
            self.purged.clone(),
        );
    }
}
