//! Sources: everything that turns bytes from the outside into events.
//!
//! Each source frames records, hands each one to [`Ingest`] (parse, count,
//! log problems at a bounded rate) and passes the event to the pipeline with
//! the overload behaviour fitting its transport.

pub mod allow;
pub mod eve;
pub mod slots;
pub mod stream;
pub mod tls;
pub mod udp;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use prometheus_client::metrics::counter::Counter;
use riposte_firewall::{normalized, parse_record, ParseError, ParseOptions, Parsed, ThreatEvent};

use crate::intake::metrics::SourceMetrics;

/// Parses records of one source and keeps its counters.
#[derive(Debug)]
pub struct Ingest {
    opts: ParseOptions,
    metrics: SourceMetrics,
    parsed: DashMap<&'static str, Counter>,
    failures: DashMap<&'static str, Counter>,
    bad_log: RateLimitedLog,
}

/// What became of one record.
#[derive(Debug)]
pub enum Outcome {
    Event(Box<ThreatEvent>),
    Ignored,
    Failed(ParseError),
}

impl Ingest {
    pub fn new(opts: ParseOptions, metrics: SourceMetrics) -> Arc<Ingest> {
        Arc::new(Ingest {
            opts,
            metrics,
            parsed: DashMap::new(),
            failures: DashMap::new(),
            bad_log: RateLimitedLog::new(Duration::from_secs(10)),
        })
    }

    pub fn metrics(&self) -> &SourceMetrics {
        &self.metrics
    }

    pub fn options(&self) -> &ParseOptions {
        &self.opts
    }

    /// Parses one framed record, counting the result.
    pub fn record(&self, record: &[u8]) -> Outcome {
        self.metrics.received.inc();
        match parse_record(record, &self.opts).and_then(|p| {
            if let Parsed::Event(ev) = &p {
                normalized::check(ev)?;
            }
            Ok(p)
        }) {
            Ok(Parsed::Event(ev)) => {
                self.count_parsed(&ev.dataset);
                Outcome::Event(ev)
            }
            Ok(Parsed::Ignored(_)) => {
                self.metrics.ignored.inc();
                Outcome::Ignored
            }
            Err(e) => {
                self.failure(&e, record);
                Outcome::Failed(e)
            }
        }
    }

    /// Admits one event that arrived already normalized (HTTP JSON, AMQP)
    /// as [`normalized::admit`] does, counting the result like a record.
    pub fn normalized(&self, value: serde_json::Value) -> Outcome {
        self.metrics.received.inc();
        match normalized::admit(value) {
            Ok(ev) => {
                self.count_parsed(&ev.dataset);
                Outcome::Event(Box::new(ev))
            }
            Err(e) => {
                self.failure(&e, b"");
                Outcome::Failed(e)
            }
        }
    }

    /// Counts an event that arrived already normalized from another replica.
    pub fn count_parsed(&self, dataset: &str) {
        // Datasets are a handful of fixed names; intern them so the counter
        // lookup is a map hit, not a label allocation.
        let key = intern_dataset(dataset);
        self.parsed
            .entry(key)
            .or_insert_with(|| self.metrics.parsed(key))
            .inc();
    }

    /// Counts and (rate-limited) logs a record that failed.
    pub fn failure(&self, error: &ParseError, record: &[u8]) {
        let reason = error.reason();
        self.failures
            .entry(reason)
            .or_insert_with(|| self.metrics.failed(reason))
            .inc();
        if let Some(suppressed) = self.bad_log.permit() {
            let sample = String::from_utf8_lossy(&record[..record.len().min(200)]).into_owned();
            tracing::warn!(
                source = self.metrics.source,
                %error,
                sample,
                suppressed,
                "malformed record (further ones are counted in riposte_parse_failures_total and logged at most every 10s)"
            );
        }
    }
}

fn intern_dataset(dataset: &str) -> &'static str {
    match dataset {
        "panos.threat" => "panos.threat",
        "panos.traffic" => "panos.traffic",
        "suricata.alert" => "suricata.alert",
        "suricata.drop" => "suricata.drop",
        "riposte.webhook" => "riposte.webhook",
        "riposte.schedule" => "riposte.schedule",
        _ => "other",
    }
}

/// Lets one log line through per interval and counts the ones it held back,
/// so a flood of bad input costs one line per interval, not one per record.
#[derive(Debug)]
pub struct RateLimitedLog {
    start: Instant,
    interval_ms: u64,
    next_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl RateLimitedLog {
    pub fn new(interval: Duration) -> RateLimitedLog {
        RateLimitedLog {
            start: Instant::now(),
            interval_ms: interval.as_millis() as u64,
            next_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(held back since the last line)` when a line may be logged now.
    pub fn permit(&self) -> Option<u64> {
        let now = self.start.elapsed().as_millis() as u64;
        let next = self.next_ms.load(Ordering::Relaxed);
        if now >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now + self.interval_ms,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limited_log_lets_one_through_per_interval() {
        let log = RateLimitedLog::new(Duration::from_secs(3600));
        assert_eq!(log.permit(), Some(0));
        for _ in 0..99 {
            assert_eq!(log.permit(), None);
        }
        let log = RateLimitedLog::new(Duration::from_millis(0));
        assert_eq!(log.permit(), Some(0));
    }
}
