//! Quarantine expiry.
//!
//! Expiries live on the pods (`riposte.io/expires-at`), so this scheduler
//! holds no state of its own: it reads every quarantine back from the pod
//! index at start, follows the index's change stream, and releases each pod
//! when its time comes. A release that fails is tried again 30 seconds
//! later, until the watch reports the pod released (or gone). A restart
//! loses nothing: the next process reads the same annotations.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use riposte_connectors::kubernetes::{PodRef, QuarantineChange, QuarantineState};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Where quarantines are read from: the pod index in production.
pub trait QuarantineSource: Send + Sync + 'static {
    fn ready(&self) -> BoxFuture<'_, ()>;
    fn quarantined(&self) -> Vec<Arc<QuarantineState>>;
    fn changes(&self) -> broadcast::Receiver<QuarantineChange>;
}

/// How long to wait before trying a failed or unconfirmed release again.
const RETRY: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct Schedule {
    due: BTreeSet<(DateTime<Utc>, PodRef)>,
    by_pod: HashMap<PodRef, DateTime<Utc>>,
}

impl Schedule {
    fn key(pod: &PodRef) -> PodRef {
        // The uid is not part of the identity here: the annotation is read
        // from whatever pod has the name now.
        PodRef::new(pod.namespace.clone(), pod.name.clone())
    }

    fn set(&mut self, pod: &PodRef, at: Option<DateTime<Utc>>) {
        let key = Self::key(pod);
        if let Some(old) = self.by_pod.remove(&key) {
            self.due.remove(&(old, key.clone()));
        }
        if let Some(at) = at {
            self.due.insert((at, key.clone()));
            self.by_pod.insert(key, at);
        }
    }

    fn next(&self) -> Option<DateTime<Utc>> {
        self.due.first().map(|(t, _)| *t)
    }

    /// Takes every pod due at `now`.
    fn take_due(&mut self, now: DateTime<Utc>) -> Vec<PodRef> {
        let mut out = Vec::new();
        while let Some((t, _)) = self.due.first() {
            if *t > now {
                break;
            }
            if let Some((_, pod)) = self.due.pop_first() {
                self.by_pod.remove(&pod);
                out.push(pod);
            }
        }
        out
    }
}

/// Runs until shutdown, calling `release` for every quarantine that
/// expires.
pub async fn run<S, R>(source: Arc<S>, release: R, shutdown: CancellationToken)
where
    S: QuarantineSource,
    R: Fn(Arc<QuarantineState>) -> BoxFuture<'static, ()> + Send + Sync + 'static,
{
    tokio::select! {
        () = source.ready() => {}
        () = shutdown.cancelled() => return,
    }
    // Subscribe before reading, so nothing between the two is missed.
    let mut changes = source.changes();
    let mut schedule = Schedule::default();
    let mut states: HashMap<PodRef, Arc<QuarantineState>> = HashMap::new();
    let resync = |schedule: &mut Schedule, states: &mut HashMap<PodRef, Arc<QuarantineState>>| {
        *schedule = Schedule::default();
        states.clear();
        for q in source.quarantined() {
            schedule.set(&q.pod, q.expires_at);
            states.insert(Schedule::key(&q.pod), q);
        }
    };
    resync(&mut schedule, &mut states);
    tracing::info!(
        scheduled = schedule.due.len(),
        "quarantine expiries read back from the cluster"
    );
    loop {
        let wait = schedule.next().map(|at| {
            (at - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(Duration::from_secs(3600))
        });
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = sleep_or_forever(wait) => {
                let now = Utc::now();
                for pod in schedule.take_due(now) {
                    if let Some(state) = states.get(&pod).cloned() {
                        tracing::info!(pod = %pod, "quarantine expired; releasing");
                        release(state).await;
                        // Until the watch confirms the release, try again later.
                        let retry = now + chrono::Duration::from_std(RETRY).unwrap_or_default();
                        schedule.set(&pod, Some(retry));
                    }
                }
            }
            change = changes.recv() => match change {
                Ok(QuarantineChange::Set(q)) => {
                    schedule.set(&q.pod, q.expires_at);
                    states.insert(Schedule::key(&q.pod), q);
                }
                Ok(QuarantineChange::Cleared(pod)) => {
                    schedule.set(&pod, None);
                    states.remove(&Schedule::key(&pod));
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "quarantine change stream lagged; reading every quarantine again");
                    resync(&mut schedule, &mut states);
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

async fn sleep_or_forever(wait: Option<Duration>) {
    match wait {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Fake {
        initial: Vec<Arc<QuarantineState>>,
        tx: broadcast::Sender<QuarantineChange>,
    }

    impl QuarantineSource for Fake {
        fn ready(&self) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }
        fn quarantined(&self) -> Vec<Arc<QuarantineState>> {
            self.initial.clone()
        }
        fn changes(&self) -> broadcast::Receiver<QuarantineChange> {
            self.tx.subscribe()
        }
    }

    fn state(name: &str, expires_in_ms: i64) -> Arc<QuarantineState> {
        let mut s =
            QuarantineState::from_annotations(PodRef::new("shop", name), &Default::default());
        s.expires_at = Some(Utc::now() + chrono::Duration::milliseconds(expires_in_ms));
        Arc::new(s)
    }

    #[tokio::test]
    async fn expiries_read_back_and_learned_from_the_watch_fire_in_time() {
        let (tx, _) = broadcast::channel(16);
        let fake = Arc::new(Fake {
            initial: vec![state("old", 50), state("later", 100_000)],
            tx: tx.clone(),
        });
        let released = Arc::new(Mutex::new(Vec::new()));
        let seen = released.clone();
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(
            fake,
            move |s: Arc<QuarantineState>| -> BoxFuture<'static, ()> {
                let seen = seen.clone();
                Box::pin(async move { seen.lock().expect("lock").push(s.pod.name.clone()) })
            },
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.send(QuarantineChange::Set(state("new", 60)))
            .expect("subscriber");
        tx.send(QuarantineChange::Set(state("cancelled", 60)))
            .expect("subscriber");
        tx.send(QuarantineChange::Cleared(PodRef::new("shop", "cancelled")))
            .expect("subscriber");
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.cancel();
        task.await.expect("scheduler stops");
        let mut got = released.lock().expect("lock").clone();
        got.sort();
        assert_eq!(got, vec!["new".to_string(), "old".to_string()]);
    }
}
