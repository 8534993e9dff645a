//! Bounded shards between the sources and the playbooks.
//!
//! Events are spread over shards by their source address, so all events of
//! one source are handled in order by one task (per-source counters and
//! thresholds stay exact) while different sources run in parallel.
//!
//! Sources hand over events in batches (everything decoded from one read),
//! so the cost of queueing and of waking a shard is paid per batch, not per
//! event. Each shard's queue is bounded in events by a semaphore: a full
//! queue makes [`Pipeline::send_batch`] wait (TCP and TLS stop reading, so
//! senders slow down) and [`Pipeline::try_send_batch`] give the events back
//! (UDP drops and counts them). Memory never grows without bound.

// Events stay boxed from the parser to the playbooks: a ThreatEvent is well
// over a kilobyte, and each hop would otherwise copy it.
#![allow(clippy::vec_box)]

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use riposte_firewall::ThreatEvent;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

/// What runs on each event at the end of the pipeline.
pub trait EventHandler: Send + Sync + 'static {
    /// Handles `event` to the end: what it leads to is done (or durable)
    /// when this returns. A consumer that acknowledges its messages once
    /// handled needs this.
    fn handle(&self, event: Box<ThreatEvent>) -> BoxFuture<'_, ()>;

    /// Handles `event` in the order of its shard, but may leave what only
    /// waits (for the store, for an outbox write) to finish beside the
    /// shard, so that the next event need not wait for it. What a source
    /// without acknowledgements (syslog, HTTP ingest) hands over goes here.
    fn handle_in_order(&self, event: Box<ThreatEvent>) -> BoxFuture<'_, ()> {
        self.handle(event)
    }

    /// Waits until whatever [`EventHandler::handle_in_order`] left running
    /// has finished: the pipeline is drained only then.
    fn drain(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

#[derive(Debug)]
struct Shard {
    tx: mpsc::UnboundedSender<Vec<Box<ThreatEvent>>>,
    /// One permit per event slot: taken on send, given back on dequeue.
    room: Arc<Semaphore>,
    capacity: usize,
}

/// The sending side, cloned into every source.
#[derive(Debug, Clone)]
pub struct Pipeline {
    shards: Arc<[Shard]>,
    queued: Gauge,
}

/// The pipeline is shutting down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// The receiving side: one queue per shard, consumed by [`Shards::run`].
type Receiver = (
    mpsc::UnboundedReceiver<Vec<Box<ThreatEvent>>>,
    Arc<Semaphore>,
);

#[derive(Debug)]
pub struct Shards {
    receivers: Vec<Receiver>,
    queued: Gauge,
    processed: Counter,
}

impl Pipeline {
    pub fn new(
        shards: usize,
        capacity: usize,
        queued: Gauge,
        processed: Counter,
    ) -> (Pipeline, Shards) {
        let capacity = capacity.clamp(1, u32::MAX as usize >> 3);
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        for _ in 0..shards.max(1) {
            let (tx, rx) = mpsc::unbounded_channel();
            let room = Arc::new(Semaphore::new(capacity));
            senders.push(Shard {
                tx,
                room: room.clone(),
                capacity,
            });
            receivers.push((rx, room));
        }
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

    fn shard_index(&self, event: &ThreatEvent) -> usize {
        if self.shards.len() == 1 {
            return 0;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        event.partition_key().hash(&mut h);
        (h.finish() % self.shards.len() as u64) as usize
    }

    /// Splits a batch by shard, keeping each source's order.
    fn split(&self, events: Vec<Box<ThreatEvent>>) -> Vec<(usize, Vec<Box<ThreatEvent>>)> {
        if self.shards.len() == 1 {
            return vec![(0, events)];
        }
        let mut parts: Vec<Vec<Box<ThreatEvent>>> =
            (0..self.shards.len()).map(|_| Vec::new()).collect();
        for ev in events {
            let i = self.shard_index(&ev);
            parts[i].push(ev);
        }
        parts
            .into_iter()
            .enumerate()
            .filter(|(_, p)| !p.is_empty())
            .collect()
    }

    fn enqueue(&self, shard: &Shard, batch: Vec<Box<ThreatEvent>>) -> Result<(), Closed> {
        let n = batch.len();
        shard.tx.send(batch).map_err(|_| Closed)?;
        self.queued.inc_by(n as i64);
        Ok(())
    }

    /// Hands events on, waiting while their shards are full.
    pub async fn send_batch(&self, events: Vec<Box<ThreatEvent>>) -> Result<(), Closed> {
        for (i, mut part) in self.split(events) {
            let shard = &self.shards[i];
            // A batch larger than the whole queue goes in queue-sized pieces.
            while !part.is_empty() {
                let rest = if part.len() > shard.capacity {
                    part.split_off(shard.capacity)
                } else {
                    Vec::new()
                };
                let permit = shard
                    .room
                    .acquire_many(part.len() as u32)
                    .await
                    .map_err(|_| Closed)?;
                permit.forget();
                self.enqueue(shard, part)?;
                part = rest;
            }
        }
        Ok(())
    }

    /// Hands one event on, waiting while its shard is full.
    pub async fn send(&self, event: Box<ThreatEvent>) -> Result<(), Closed> {
        self.send_batch(vec![event]).await
    }

    /// Hands on what fits without waiting; returns the events that did not
    /// fit (their shard was full), or `Closed`.
    pub fn try_send_batch(
        &self,
        events: Vec<Box<ThreatEvent>>,
    ) -> Result<Vec<Box<ThreatEvent>>, Closed> {
        let mut rejected = Vec::new();
        for (i, mut part) in self.split(events) {
            let shard = &self.shards[i];
            if part.len() > shard.capacity {
                rejected.extend(part.split_off(shard.capacity));
            }
            match shard.room.try_acquire_many(part.len() as u32) {
                Ok(permit) => {
                    permit.forget();
                    self.enqueue(shard, part)?;
                }
                Err(tokio::sync::TryAcquireError::NoPermits) => rejected.extend(part),
                Err(tokio::sync::TryAcquireError::Closed) => return Err(Closed),
            }
        }
        Ok(rejected)
    }

    /// Whether every shard has room for `n` more events; HTTP ingest asks
    /// before accepting a batch so it can refuse the batch whole.
    pub fn has_room(&self, n: usize) -> bool {
        self.shards
            .iter()
            .all(|s| s.room.available_permits() >= n.min(s.capacity))
    }
}

impl Shards {
    /// Runs one task per shard until every sender is gone and the queues are
    /// drained.
    pub async fn run(self, handler: Arc<dyn EventHandler>) {
        let mut tasks = JoinSet::new();
        for (i, (mut rx, room)) in self.receivers.into_iter().enumerate() {
            let handler = handler.clone();
            let queued = self.queued.clone();
            let processed = self.processed.clone();
            tasks.spawn(
                async move {
                    while let Some(batch) = rx.recv().await {
                        let n = batch.len();
                        // Room is given back as the batch leaves the queue
                        // (a batch never exceeds the queue's capacity).
                        room.add_permits(n);
                        queued.dec_by(n as i64);
                        for event in batch {
                            let span = tracing::debug_span!("event", event.id = %event.id);
                            handler.handle_in_order(event).instrument(span).await;
                        }
                        processed.inc_by(n as u64);
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
        handler.drain().await;
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
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "pipeline did not drain in time; queued events abandoned"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    use chrono::Utc;
    use riposte_firewall::{EventKind, EventModule};

    fn event(src: &str, n: u32) -> Box<ThreatEvent> {
        let mut ev = ThreatEvent::new(
            EventKind::Alert,
            EventModule::Panos,
            "panos.threat",
            Utc::now(),
            &format!("{src} {n}"),
        );
        ev.source_ip = src.parse().ok();
        ev.panos_repeat_count = Some(n);
        Box::new(ev)
    }

    struct Collect(Mutex<Vec<(String, u32)>>);

    impl EventHandler for Collect {
        fn handle(&self, event: Box<ThreatEvent>) -> BoxFuture<'_, ()> {
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
            let batch = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
                .iter()
                .map(|src| event(src, n))
                .collect();
            pipeline.send_batch(batch).await.expect("open");
        }
        // A batch bigger than a whole queue still goes through, in order.
        let big: Vec<_> = (200..300).map(|n| event("10.0.0.1", n)).collect();
        pipeline.send_batch(big).await.expect("open");
        drop(pipeline);
        run.await.expect("shards finish");
        let seen = collect.0.lock().expect("lock").clone();
        assert_eq!(seen.len(), 700);
        let order = |src: &str| -> Vec<u32> {
            seen.iter()
                .filter(|(s, _)| s == src)
                .map(|(_, n)| *n)
                .collect()
        };
        assert_eq!(order("10.0.0.1"), (0..300).collect::<Vec<_>>());
        assert_eq!(order("10.0.0.2"), (0..200).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn full_queue_hands_the_events_back() {
        let (pipeline, _shards) = Pipeline::new(1, 2, Gauge::default(), Counter::default());
        let left = pipeline
            .try_send_batch(vec![event("10.0.0.1", 1), event("10.0.0.1", 2)])
            .expect("open");
        assert!(left.is_empty());
        assert!(!pipeline.has_room(1));
        let left = pipeline
            .try_send_batch(vec![event("10.0.0.1", 3)])
            .expect("open");
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].panos_repeat_count, Some(3));
    }

    #[tokio::test]
    async fn room_comes_back_as_shards_take_events() {
        let (pipeline, shards) = Pipeline::new(1, 3, Gauge::default(), Counter::default());
        let collect = Arc::new(Collect(Mutex::new(Vec::new())));
        let run = tokio::spawn(shards.run(collect.clone()));
        for n in 0..50 {
            pipeline.send(event("10.0.0.9", n)).await.expect("open");
        }
        drop(pipeline);
        run.await.expect("drained");
        assert_eq!(collect.0.lock().expect("lock").len(), 50);
    }
}
