//! Bounded shards between the sources and the playbooks.
//!
//! Events are spread over shards by their source address, so all events of
//! one source are handled in order by one task (per-source counters and
//! thresholds stay exact) while different sources run in parallel. Every
//! shard queue is bounded: a full queue makes `send` wait (TCP and TLS stop
//! reading, so senders slow down) and `try_send` fail (UDP drops and counts,
//! HTTP answers 503). Memory never grows without bound.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use riposte_firewall::ThreatEvent;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::Instrument;

/// What runs on each event at the end of the pipeline.
pub trait EventHandler: Send + Sync + 'static {
    fn handle(&self, event: ThreatEvent) -> BoxFuture<'_, ()>;
}

/// The sending side, cloned into every source.
#[derive(Debug, Clone)]
pub struct Pipeline {
    shards: Arc<[mpsc::Sender<ThreatEvent>]>,
    queued: Gauge,
}

/// Why an event was not taken.
#[derive(Debug)]
pub enum Rejected {
    /// The shard's queue is full; the event is handed back.
    Full(Box<ThreatEvent>),
    /// The pipeline is shutting down.
    Closed,
}

/// The receiving side: one queue per shard, consumed by [`Shards::run`].
#[derive(Debug)]
pub struct Shards {
    receivers: Vec<mpsc::Receiver<ThreatEvent>>,
    queued: Gauge,
    processed: Counter,
}

impl Pipeline {
    pub fn new(shards: usize, capacity: usize, queued: Gauge, processed: Counter) -> (Pipeline, Shards) {
        let shards = shards.max(1);
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..shards).map(|_| mpsc::channel(capacity.max(1))).unzip();
        (
            Pipeline {
                shards: senders.into(),
                queued: queued.clone(),
            },
            Shards {
                receivers,
                queued,
                processed,
            },
        )
    }

    fn shard_of(&self, event: &ThreatEvent) -> &mpsc::Sender<ThreatEvent> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        event.partition_key().hash(&mut h);
        &self.shards[(h.finish() % self.shards.len() as u64) as usize]
    }

    /// Hands an event on, waiting while its shard is full.
    pub async fn send(&self, event: ThreatEvent) -> Result<(), Rejected> {
        let shard = self.shard_of(&event);
        shard.send(event).await.map_err(|_| Rejected::Closed)?;
        self.queued.inc();
        Ok(())
    }

    /// Hands an event on if its shard has room, else gives it back.
    pub fn try_send(&self, event: ThreatEvent) -> Result<(), Rejected> {
        let shard = self.shard_of(&event);
        match shard.try_send(event) {
            Ok(()) => {
                self.queued.inc();
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(ev)) => Err(Rejected::Full(Box::new(ev))),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Rejected::Closed),
        }
    }

    /// Whether every shard has room for at least `n` more events; HTTP ingest
    /// asks before accepting a batch so it can refuse the batch whole.
    pub fn has_room(&self, n: usize) -> bool {
        self.shards.iter().all(|s| s.capacity() >= n.min(s.max_capacity()))
    }
}

impl Shards {
    /// Runs one task per shard until every sender is gone and the queues are
    /// drained.
    pub async fn run(self, handler: Arc<dyn EventHandler>) {
        let mut tasks = JoinSet::new();
        for (i, mut rx) in self.receivers.into_iter().enumerate() {
            let handler = handler.clone();
            let queued = self.queued.clone();
            let processed = self.processed.clone();
            tasks.spawn(
                async move {
                    while let Some(event) = rx.recv().await {
                        queued.dec();
                        let span = tracing::debug_span!("event", event.id = %event.id);
                        handler.handle(event).instrument(span).await;
                        processed.inc();
                    }
                }
                .instrument(tracing::debug_span!("shard", shard = i)),
            );
        }
        while let Some(result) = tasks.join_next().await {
            if let Err(e) = result {
                tracing::error!(error = %e, "pipeline shard task failed");
            }
        }
    }

    /// Like [`Shards::run`], but gives up after `grace` once shutdown began.
    pub async fn run_with_grace(
        self,
        handler: Arc<dyn EventHandler>,
        shutdown: tokio_util::sync::CancellationToken,
        grace: Duration,
    ) {
        let run = self.run(handler);
        tokio::pin!(run);
        tokio::select! {
            () = &mut run => return,
            () = shutdown.cancelled() => {}
        }
        if tokio::time::timeout(grace, run).await.is_err() {
            tracing::warn!(grace_secs = grace.as_secs(), "pipeline did not drain in time; queued events abandoned");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    use chrono::Utc;
    use riposte_firewall::{EventKind, EventModule};

    fn event(src: &str, n: u32) -> ThreatEvent {
        let mut ev = ThreatEvent::new(
            EventKind::Alert,
            EventModule::Panos,
            "panos.threat",
            Utc::now(),
            &format!("{src} {n}"),
        );
        ev.source_ip = src.parse().ok();
        ev.panos_repeat_count = Some(n);
        ev
    }

    struct Collect(Mutex<Vec<(String, u32)>>);

    impl EventHandler for Collect {
        fn handle(&self, event: ThreatEvent) -> BoxFuture<'_, ()> {
            Box::pin(async move {
                let src = event.source_ip.map(|i| i.to_string()).unwrap_or_default();
                if let Ok(mut v) = self.0.lock() {
                    v.push((src, event.panos_repeat_count.unwrap_or(0)));
                }
            })
        }
    }

    #[tokio::test]
    async fn events_of_one_source_stay_in_order() {
        let (pipeline, shards) = Pipeline::new(4, 16, Gauge::default(), Counter::default());
        let collect = Arc::new(Collect(Mutex::new(Vec::new())));
        let run = tokio::spawn(shards.run(collect.clone()));
        for n in 0..200 {
            for src in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
                pipeline.send(event(src, n)).await.expect("open");
            }
        }
        drop(pipeline);
        run.await.expect("shards finish");
        let seen = collect.0.lock().expect("lock").clone();
        assert_eq!(seen.len(), 600);
        for src in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
            let order: Vec<u32> = seen.iter().filter(|(s, _)| s == src).map(|(_, n)| *n).collect();
            assert_eq!(order, (0..200).collect::<Vec<_>>(), "order of {src}");
        }
    }

    #[tokio::test]
    async fn full_queue_hands_the_event_back() {
        let (pipeline, _shards) = Pipeline::new(1, 2, Gauge::default(), Counter::default());
        pipeline.try_send(event("10.0.0.1", 1)).expect("room");
        pipeline.try_send(event("10.0.0.1", 2)).expect("room");
        assert!(!pipeline.has_room(1));
        match pipeline.try_send(event("10.0.0.1", 3)) {
            Err(Rejected::Full(ev)) => assert_eq!(ev.panos_repeat_count, Some(3)),
            other => panic!("expected Full, got {other:?}"),
        }
    }
}
