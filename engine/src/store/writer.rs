//! The batched audit writer: decisions go from the dispatcher's decision log
//! to the store without making the pipeline wait for a disk.
//!
//! The decision log hands every decision and action record to
//! [`AuditWriter`] (a [`DecisionSink`]) synchronously; one writer (a thread
//! of its own on the service's runtime) writes them in order, many per
//! transaction. The queue is bounded for those who can wait: the pipeline
//! calls [`AuditWriter::wait_for_room`] before each event, so a slow or
//! failing store slows the sources down (back-pressure) rather than growing
//! memory. Records are never dropped to make room: a transient
//! failure (disk full, connection lost) is retried with backoff until it
//! succeeds; a record the database refuses for good is logged and counted.
//! [`AuditWriter::flush`] waits until everything handed over so far is
//! written (an AMQP consumer acks after it).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use super::audit::AuditOp;
use super::notify::{NotifyJob, NotifyWrite};
use super::{Store, StoreError};
use crate::decide::decision::{ActionRecord, Decision, DecisionSink, FlushError, Outcome};

#[derive(Debug, Default)]
struct Queue {
    ops: VecDeque<AuditOp>,
    /// Taken by the writer, not yet committed.
    in_flight: usize,
    /// Records ever handed over (the sequence number of the last one).
    enqueued: u64,
    /// The writer task has ended: notification writes are refused at once
    /// rather than left waiting for an answer.
    stopped: bool,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    capacity: usize,
    batch_max: usize,
    /// Wakes the writer task.
    items: Notify,
    /// Wakes producers waiting for room.
    room: Notify,
    /// Sequence number of the last record written (or refused for good),
    /// and whether the writer task runs.
    committed: watch::Sender<(u64, bool)>,
    store: Store,
}

/// Hands audit records to the store in batches. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditWriter {
    shared: Arc<Shared>,
}

/// The audit records of a batch: notification writes ride along in it but
/// are not records (not counted as handed over, written or refused).
fn records(batch: &[AuditOp]) -> usize {
    batch
        .iter()
        .map(|op| match op {
            AuditOp::Decision(q) => 1 + q.folded.len(),
            AuditOp::Action { .. } => 1,
            AuditOp::Notify(_) => 0,
        })
        .sum()
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the audit writer stopped before writing the notification".into())
}

/// Longest pause between retries of a failing batch.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// After shutdown, how long the writer keeps retrying what is left.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

impl AuditWriter {
    /// A writer for `store`, sized by its `[store]` config. Nothing is
    /// written until [`AuditWriter::spawn`] starts the task.
    pub fn new(store: Store) -> AuditWriter {
        let capacity = store.config().audit_queue_capacity.max(1);
        let batch_max = store.config().audit_batch_max.max(1);
        AuditWriter {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue::default()),
                capacity,
                batch_max,
                items: Notify::new(),
                room: Notify::new(),
                committed: watch::Sender::new((0, false)),
                store,
            }),
        }
    }

    /// Queues one record. Never blocks and never drops; callers that can
    /// wait call [`AuditWriter::wait_for_room`] first.
    pub fn push(&self, op: AuditOp) {
        self.queue(op, false);
    }

    /// Commits notification writes in the writer's next transaction, and
    /// answers for each whether it changed anything (as
    /// [`Store::notify_write`] does). They go ahead of the records
    /// waiting: whoever writes them has waited for their decision's record
    /// to be durable already, and a notification should not wait for a
    /// storm's backlog.
    pub async fn notify(&self, writes: Vec<NotifyWrite>) -> Result<Vec<bool>, StoreError> {
        let (job, answer) = NotifyJob::new(writes);
        self.queue(AuditOp::Notify(Arc::new(job)), true);
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }

    fn queue(&self, op: AuditOp, first: bool) {
        let mut q = self.lock();
        if let (true, AuditOp::Notify(job)) = (q.stopped, &op) {
            drop(q);
            job.answer(Err(stopped()));
            return;
        }
        if first {
            // Not counted in `enqueued`: a flush waits for the records
            // handed over before it, which this one overtakes.
            q.ops.push_front(op);
        } else {
            q.ops.push_back(op);
            q.enqueued += 1;
        }
        let queued = q.ops.len() + q.in_flight;
        drop(q);
        self.shared.store.metrics().audit_queued.set(queued as i64);
        self.shared.items.notify_one();
    }

    /// Records waiting or being written.
    pub fn queued(&self) -> usize {
        let q = self.lock();
        q.ops.len() + q.in_flight
    }

    /// Waits until the queue is below its capacity.
    pub async fn wait_for_room(&self) {
        loop {
            let notified = self.shared.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.queued() < self.shared.capacity {
                return;
            }
            notified.await;
        }
    }

    /// Waits until every record handed over before this call is written.
    /// Fails when the writer stopped first.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let target = self.lock().enqueued;
        if committed_up_to(&self.shared.committed, target).await {
            Ok(())
        } else {
            Err(StoreError::Unavailable(
                "the audit writer is not running".into(),
            ))
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.shared.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the writer task. It runs until `shutdown`, then writes what is
    /// left (retrying transient failures for a bounded time) and ends.
    pub fn spawn(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let writer = self.clone();
        self.shared.committed.send_modify(|s| s.1 = true);
        let task = async move {
            writer.run(shutdown).await;
            writer.shared.committed.send_modify(|s| s.1 = false);
            let left: Vec<AuditOp> = {
                let mut q = writer.lock();
                q.stopped = true;
                let (notify, rest): (VecDeque<AuditOp>, VecDeque<AuditOp>) = q
                    .ops
                    .drain(..)
                    .partition(|op| matches!(op, AuditOp::Notify(_)));
                q.ops = rest;
                notify.into()
            };
            for op in left {
                if let AuditOp::Notify(job) = op {
                    job.answer(Err(stopped()));
                }
            }
        };
        // The writer gets a thread of its own on a multi-threaded runtime.
        // As a task it waited, at each of a batch's statements, behind
        // whatever the pipeline had queued on its worker (thousands of
        // events' tasks in a storm), and the store fell behind the
        // pipeline while half idle. On its own thread each answer from the
        // database resumes it at once; the runtime still serves its I/O and
        // timers, and returns its connection to the pool (sqlx does that in
        // a task). Storm bench: +10 to 15 % events/s on SQLite.
        let handle = tokio::runtime::Handle::current();
        match handle.runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::spawn_blocking(move || handle.block_on(task))
            }
            _ => tokio::spawn(task),
        }
    }

    async fn run(&self, shutdown: CancellationToken) {
        let mut committed = self.shared.committed.borrow().0;
        loop {
            let batch = self.take_batch();
            if batch.is_empty() {
                if shutdown.is_cancelled() {
                    return;
                }
                tokio::select! {
                    _ = self.shared.items.notified() => {}
                    _ = shutdown.cancelled() => {}
                }
                continue;
            }
            self.write(&batch, &shutdown).await;
            committed += records(&batch) as u64;
            {
                let mut q = self.lock();
                q.in_flight = 0;
                let queued = q.ops.len();
                drop(q);
                self.shared.store.metrics().audit_queued.set(queued as i64);
            }
            self.shared.committed.send_modify(|s| s.0 = committed);
            self.shared.room.notify_waiters();
        }
    }

    fn take_batch(&self) -> Vec<AuditOp> {
        let mut q = self.lock();
        let n = q.ops.len().min(self.shared.batch_max);
        let batch: Vec<AuditOp> = q.ops.drain(..n).collect();
        q.in_flight = batch.len();
        batch
    }

    /// Writes one batch: retries transient failures with backoff, and
    /// splits a batch the database refuses to find the record at fault.
    async fn write(&self, batch: &[AuditOp], shutdown: &CancellationToken) {
        let store = &self.shared.store;
        let metrics = store.metrics();
        let mut pause = Duration::from_millis(50);
        let mut drain_deadline = None;
        loop {
            match store.apply_audit(batch).await {
                Ok(_) => {
                    metrics.audit_written.inc_by(records(batch) as u64);
                    metrics.audit_batches.inc();
                    return;
                }
                Err(e) if e.is_transient() => {
                    if shutdown.is_cancelled() {
                        let deadline = *drain_deadline
                            .get_or_insert_with(|| tokio::time::Instant::now() + DRAIN_DEADLINE);
                        if tokio::time::Instant::now() >= deadline {
                            metrics.audit_rejected.inc_by(records(batch) as u64);
                            tracing::error!(error = %e, records = records(batch),
                                "store still unavailable at shutdown: audit records not written");
                            for op in batch {
                                if let AuditOp::Notify(job) = op {
                                    job.answer(Err(stopped()));
                                }
                            }
                            return;
                        }
                    }
                    metrics.audit_retries.inc();
                    tracing::warn!(error = %e, records = batch.len(), retry_in = ?pause,
                        "audit write failed, retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_BACKOFF);
                }
                Err(e) if batch.len() > 1 => {
                    tracing::warn!(error = %e, records = batch.len(),
                        "audit batch refused, writing its records one by one");
                    for op in batch {
                        Box::pin(self.write(std::slice::from_ref(op), shutdown)).await;
                    }
                    return;
                }
                Err(e) => {
                    let (event_id, playbook) = match &batch[0] {
                        AuditOp::Decision(q) => {
                            (q.decision.event_id.as_str(), q.decision.playbook.as_str())
                        }
                        AuditOp::Action {
                            event_id, playbook, ..
                        } => (event_id.as_str(), playbook.as_str()),
                        AuditOp::Notify(job) => {
                            tracing::error!(error = %e, "notification writes refused by the store");
                            job.answer(Err(e));
                            return;
                        }
                    };
                    metrics.audit_rejected.inc();
                    tracing::error!(event.id = %event_id, playbook = %playbook, error = %e,
                        "audit record refused by the store");
                    return;
                }
            }
        }
    }
}

impl DecisionSink for AuditWriter {
    fn decision(&self, decision: &Decision) {
        self.push(AuditOp::decision(decision.clone()));
    }

    fn action(
        &self,
        event_id: &str,
        playbook: &str,
        record: &ActionRecord,
        outcome: Option<&Outcome>,
    ) {
        {
            // The decision it belongs to is the last one queued (the
            // dispatcher reports what finishes at once right after it):
            // the record rides along in it, one operation fewer.
            let mut q = self.lock();
            if let Some(AuditOp::Decision(d)) = q.ops.back_mut() {
                if d.decision.event_id == event_id && d.decision.playbook == playbook {
                    d.folded.push((record.clone(), outcome.cloned()));
                    q.enqueued += 1;
                    return;
                }
            }
        }
        self.push(AuditOp::Action {
            event_id: event_id.to_owned(),
            playbook: playbook.to_owned(),
            record: Box::new(record.clone()),
            outcome: outcome.cloned(),
        });
    }

    fn flush(&self) -> futures::future::BoxFuture<'_, Result<(), FlushError>> {
        Box::pin(async move { AuditWriter::flush(self).await.map_err(FlushError::new) })
    }
}

/// Waits until a writer's `(committed, running)` count reaches `target`,
/// or the writer stops first (false). The audit writer and the decision
/// stream both report progress this way.
pub(crate) async fn committed_up_to(committed: &watch::Sender<(u64, bool)>, target: u64) -> bool {
    let mut rx = committed.subscribe();
    let (done, _) = rx
        .wait_for(|(done, running)| *done >= target || !*running)
        .await
        .map(|s| *s)
        .unwrap_or((0, false));
    done >= target
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::decision::{ActionStatus, EventSummary, Mode, Timings};
    use crate::store::testing;

    fn decision(i: usize) -> Decision {
        Decision {
            event_id: format!("ev{i}"),
            event: EventSummary {
                kind: "alert".into(),
                dataset: "panos.threat".into(),
                ..EventSummary::default()
            },
            playbook: "pb".into(),
            mode: Mode::DryRun,
            intents: Vec::new(),
            outcome: Outcome::NoAction,
            timings: Timings::default(),
            at: chrono::Utc::now(),
            actions: Vec::new(),
        }
    }

    fn skipped(event: &str, action: &str, target: &str) -> ActionRecord {
        ActionRecord {
            action_id: format!("{event}-{action}"),
            action: action.into(),
            target: Some(target.into()),
            status: ActionStatus::Skipped,
            reason: Some("no connector configured".into()),
            code: None,
            attempts: 0,
            duration_us: 0,
            at: chrono::Utc::now(),
        }
    }

    #[tokio::test]
    async fn actions_reported_right_after_their_decision_ride_in_it() {
        let (store, _dir) = testing::sqlite().await;
        let writer = AuditWriter::new(store.clone());
        let mut d = decision(1);
        d.mode = Mode::Enforce;
        d.outcome = Outcome::Pending {
            reason: "dispatching".into(),
        };
        writer.decision(&d);
        let mut quarantine = skipped("ev1", "quarantine", "shop/a");
        quarantine.status = ActionStatus::Queued;
        writer.action("ev1", "pb", &quarantine, None);
        quarantine.status = ActionStatus::Skipped;
        let pending = |why: &str| Outcome::Pending { reason: why.into() };
        writer.action("ev1", "pb", &quarantine, Some(&pending("first")));
        // Another event's decision, then the first event's last action:
        // that one is queued on its own, and finds its decision all the same.
        writer.decision(&decision(2));
        let tag = skipped("ev1", "tag_ip", "198.51.100.7");
        writer.action("ev1", "pb", &tag, Some(&pending("last")));
        assert_eq!(writer.queued(), 3, "two decisions and the late action");

        let stop = CancellationToken::new();
        let task = writer.spawn(stop.clone());
        writer.flush().await.expect("flush");
        let entries = testing::audit_of(&store, "ev1").await;
        let entry = &entries[0];
        let actions: Vec<(&str, ActionStatus)> = entry
            .actions
            .iter()
            .map(|a| (a.action.as_str(), a.status))
            .collect();
        assert_eq!(
            actions,
            [
                ("quarantine", ActionStatus::Skipped),
                ("tag_ip", ActionStatus::Skipped)
            ]
        );
        assert_eq!(entry.outcome, pending("last"));
        assert_eq!(
            store.metrics().audit_written.get(),
            5,
            "every record counted, folded or not"
        );
        stop.cancel();
        task.await.expect("writer ends");
    }

    #[tokio::test]
    async fn batches_everything_and_flush_waits_for_it() {
        batches_flushes_and_stops().await;
    }

    /// The service's runtime, where the writer has a thread of its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_its_own_thread_it_batches_flushes_and_stops_the_same() {
        batches_flushes_and_stops().await;
    }

    async fn batches_flushes_and_stops() {
        let (store, _dir) = testing::sqlite().await;
        let writer = AuditWriter::new(store.clone());
        let stop = CancellationToken::new();
        let task = writer.spawn(stop.clone());
        for i in 0..1000 {
            writer.wait_for_room().await;
            writer.decision(&decision(i));
        }
        writer.flush().await.expect("flush");
        // Identical decisions: coalesced, every one counted and indexed.
        let (_, counted, indexed) = store.audit_totals().await.expect("count");
        assert_eq!((counted, indexed), (1000, 1000));
        assert!(store.metrics().audit_batches.get() < 1000, "batched");
        assert_eq!(
            testing::audit_of(&store, "ev999").await.len(),
            1,
            "the last one is found"
        );
        stop.cancel();
        task.await.expect("writer ends");
        assert!(writer.flush().await.is_ok(), "nothing pending");
        writer.decision(&decision(1000));
        assert!(writer.flush().await.is_err(), "stopped writer");
    }

    fn window(id: &str, rev: i64) -> NotifyWrite {
        NotifyWrite::Window(crate::store::WindowRow {
            id: id.into(),
            target: "soar".into(),
            subject: "riposte.notify|shop/a|C2".into(),
            window_end: chrono::Utc::now() + chrono::Duration::seconds(600),
            closed: false,
            rev,
            state: crate::store::WindowState::Value(serde_json::json!({ "count": rev })),
            updated_at: chrono::Utc::now(),
        })
    }

    #[tokio::test]
    async fn notification_writes_commit_with_the_batches_and_overtake_the_backlog() {
        let (store, _dir) = testing::sqlite().await;
        let writer = AuditWriter::new(store.clone());
        // A backlog before the writer starts: the notification goes first,
        // and a flush still waits for every record handed over.
        for i in 0..600 {
            writer.decision(&decision(i));
        }
        let stop = CancellationToken::new();
        let notifying = {
            let writer = writer.clone();
            tokio::spawn(async move {
                writer
                    .notify(vec![window("w1", 2), window("w1", 1), window("w2", 1)])
                    .await
            })
        };
        let task = writer.spawn(stop.clone());
        let answers = notifying.await.expect("joined").expect("committed");
        assert_eq!(
            answers,
            [true, false, true],
            "the newest state of each window"
        );
        let again = writer.notify(vec![window("w1", 2), window("w1", 3)]).await;
        assert_eq!(
            again.expect("committed"),
            [false, true],
            "an older state is refused"
        );
        writer.flush().await.expect("flush");
        let (_, counted, _) = store.audit_totals().await.expect("count");
        assert_eq!(counted, 600, "the flush waited for every record");
        let open = store.notify_windows_open().await.expect("windows");
        let w1 = open.iter().find(|w| w.id == "w1").expect("w1 stored");
        assert_eq!(w1.rev, 3);
        assert_eq!(open.len(), 2);
        stop.cancel();
        task.await.expect("writer ends");
        let refused = writer.notify(vec![window("w3", 1)]).await;
        assert!(
            matches!(refused, Err(StoreError::Unavailable(_))),
            "a stopped writer answers at once: {refused:?}"
        );
    }

    #[tokio::test]
    async fn full_queue_makes_producers_wait_until_written() {
        let (store, _dir) = testing::sqlite().await;
        let mut config = store.config().clone();
        config.audit_queue_capacity = 4;
        let store = Store {
            inner: Arc::new(crate::store::Inner {
                backend: match &store.inner.backend {
                    crate::store::Backend::Sqlite { write, read } => {
                        crate::store::Backend::Sqlite {
                            write: write.clone(),
                            read: read.clone(),
                        }
                    }
                    crate::store::Backend::Postgres(p) => {
                        crate::store::Backend::Postgres(p.clone())
                    }
                },
                metrics: Default::default(),
                config,
                url: String::new(),
                migrated: true.into(),
                migrating: Default::default(),
                instance: "test".into(),
                open_records: Default::default(),
                dicts: Default::default(),
            }),
        };
        let writer = AuditWriter::new(store.clone());
        for i in 0..4 {
            writer.decision(&decision(i));
        }
        let waiting =
            tokio::time::timeout(Duration::from_millis(100), writer.wait_for_room()).await;
        assert!(
            waiting.is_err(),
            "full queue, no writer: the producer waits"
        );
        let stop = CancellationToken::new();
        let task = writer.spawn(stop.clone());
        tokio::time::timeout(Duration::from_secs(5), writer.wait_for_room())
            .await
            .expect("room once written");
        writer.flush().await.expect("flush");
        assert_eq!(store.audit_totals().await.expect("count").1, 4);
        stop.cancel();
        task.await.expect("writer ends");
    }
}
