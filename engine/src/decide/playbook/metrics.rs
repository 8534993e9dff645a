//! The playbook runtime's Prometheus series. Labels are the playbook name
//! (bounded by the files in the directory), the outcome and the action name:
//! never an address or a pod.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    pub playbook: String,
    /// `ok` or `error`.
    pub outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlaybookLabels {
    pub playbook: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IntentLabels {
    pub playbook: String,
    pub action: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok` or `error`.
    pub result: String,
}

fn run_histogram() -> Histogram {
    // 2 µs … ~0.5 s.
    Histogram::new(exponential_buckets(2e-6, 4.0, 10))
}

/// Every series of the runtime, registered once.
#[derive(Debug, Clone)]
pub struct PlaybookMetrics {
    pub runs: Family<RunLabels, Counter>,
    pub run_seconds: Family<PlaybookLabels, Histogram, fn() -> Histogram>,
    pub intents: Family<IntentLabels, Counter>,
    pub matched: Counter,
    pub reloads: Family<ResultLabels, Counter>,
    pub loaded: Gauge,
    pub schedule_runs: Family<PlaybookLabels, Counter>,
    pub counter_entries: Gauge,
    pub counter_evictions: Counter,
    pub output_dropped: Family<PlaybookLabels, Counter>,
    /// Intents dropped because an earlier playbook made the same one for
    /// the same event.
    pub merged: Family<PlaybookLabels, Counter>,
    /// Comparisons of values of different types, which raise an error.
    pub type_mismatches: Family<PlaybookLabels, Counter>,
}

impl PlaybookMetrics {
    pub fn new(registry: &mut Registry) -> PlaybookMetrics {
        let m = PlaybookMetrics {
            runs: Family::default(),
            run_seconds: Family::new_with_constructor(run_histogram),
            intents: Family::default(),
            matched: Counter::default(),
            reloads: Family::default(),
            loaded: Gauge::default(),
            schedule_runs: Family::default(),
            counter_entries: Gauge::default(),
            counter_evictions: Counter::default(),
            output_dropped: Family::default(),
            merged: Family::default(),
            type_mismatches: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("riposte_playbook");
        r.register(
            "runs",
            "Playbook runs, by playbook and outcome (ok, error: failed or stopped by a sandbox limit)",
            m.runs.clone(),
        );
        r.register(
            "run_seconds",
            "Time to build the event map and run one playbook",
            m.run_seconds.clone(),
        );
        r.register(
            "intents",
            "Intents produced, by playbook and action",
            m.intents.clone(),
        );
        r.register(
            "matched_events",
            "Events that matched at least one playbook trigger",
            m.matched.clone(),
        );
        r.register(
            "reloads",
            "Playbook directory reloads, by result",
            m.reloads.clone(),
        );
        r.register("loaded", "Playbooks currently loaded", m.loaded.clone());
        r.register(
            "schedule_runs",
            "Synthetic schedule events fired, by playbook",
            m.schedule_runs.clone(),
        );
        r.register(
            "counter_entries",
            "Keys held by count, once_per and seen_before",
            m.counter_entries.clone(),
        );
        r.register(
            "counter_evictions",
            "Live counter keys evicted because the store was full",
            m.counter_evictions.clone(),
        );
        r.register(
            "output_dropped",
            "print and debug lines dropped by the per-playbook output rate limit",
            m.output_dropped.clone(),
        );
        r.register(
            "intents_merged",
            "Intents dropped because an earlier playbook made the same one for the same event",
            m.merged.clone(),
        );
        r.register(
            "type_mismatches",
            "Comparisons of a number with a string (or other unlike values), which fail the run",
            m.type_mismatches.clone(),
        );
        m
    }

    /// Handles for one playbook, resolved once at load so that a run does
    /// no label lookup.
    pub fn for_playbook(&self, name: &str) -> RunMetrics {
        let run = |outcome: &str| {
            self.runs
                .get_or_create(&RunLabels {
                    playbook: name.to_owned(),
                    outcome: outcome.to_owned(),
                })
                .clone()
        };
        RunMetrics {
            intents: std::array::from_fn(|_| std::sync::OnceLock::new()),
            ok: run("ok"),
            error: run("error"),
            seconds: self
                .run_seconds
                .get_or_create(&PlaybookLabels {
                    playbook: name.to_owned(),
                })
                .clone(),
        }
    }

    pub fn reload(&self, ok: bool) {
        self.reloads
            .get_or_create(&ResultLabels {
                result: if ok { "ok" } else { "error" }.to_owned(),
            })
            .inc();
    }
}

/// One playbook's run series.
#[derive(Debug)]
pub struct RunMetrics {
    pub ok: Counter,
    pub error: Counter,
    pub seconds: Histogram,
    /// Intent counters by [`Action::ordinal`], made on first use so that
    /// actions a playbook never takes add no series.
    intents: [std::sync::OnceLock<Counter>; crate::decide::intent::Action::NAMES.len()],
}

impl RunMetrics {
    pub fn intent(
        &self,
        all: &PlaybookMetrics,
        playbook: &str,
        action: &crate::decide::intent::Action,
    ) {
        let slot = &self.intents[action
            .ordinal()
            .min(crate::decide::intent::Action::NAMES.len() - 1)];
        slot.get_or_init(|| {
            all.intents
                .get_or_create(&IntentLabels {
                    playbook: playbook.to_owned(),
                    action: action.name().to_owned(),
                })
                .clone()
        })
        .inc();
    }
}
