//! Ordered lanes: jobs on one key (one pod) run one after another, jobs on
//! different keys run concurrently, and the total waiting is bounded.
//!
//! A lane's task exists only while its lane has work, so a flood of distinct
//! keys costs one short-lived task each, never a resident task per pod ever
//! seen.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

type Job = BoxFuture<'static, ()>;

/// The lanes are full: the job was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

#[derive(Debug, Clone)]
pub struct Lanes {
    inner: Arc<Inner>,
}

struct Inner {
    lanes: Mutex<HashMap<String, VecDeque<(Job, OwnedSemaphorePermit)>>>,
    room: Arc<Semaphore>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes")
            .field("room", &self.room.available_permits())
            .finish_non_exhaustive()
    }
}

impl Lanes {
    /// Lanes holding at most `capacity` jobs waiting or running.
    pub fn new(capacity: usize) -> Lanes {
        Lanes {
            inner: Arc::new(Inner {
                lanes: Mutex::new(HashMap::new()),
                room: Arc::new(Semaphore::new(capacity.max(1))),
            }),
        }
    }

    /// Jobs waiting or running.
    pub fn pending(&self, capacity: usize) -> usize {
        capacity.saturating_sub(self.inner.room.available_permits())
    }

    /// Queues `job` behind the other jobs of `key`.
    pub fn submit(&self, key: String, job: Job) -> Result<(), Full> {
        let permit = self
            .inner
            .room
            .clone()
            .try_acquire_owned()
            .map_err(|_| Full)?;
        let mut lanes = self.inner.lanes.lock().unwrap_or_else(|e| e.into_inner());
        match lanes.get_mut(&key) {
            Some(lane) => lane.push_back((job, permit)),
            None => {
                lanes.insert(key.clone(), VecDeque::from([(job, permit)]));
                drop(lanes);
                let inner = self.inner.clone();
                tokio::spawn(async move { run_lane(inner, key).await });
            }
        }
        Ok(())
    }
}

async fn run_lane(inner: Arc<Inner>, key: String) {
    loop {
        let next = {
            let mut lanes = inner.lanes.lock().unwrap_or_else(|e| e.into_inner());
            let Some(lane) = lanes.get_mut(&key) else {
                return;
            };
            match lane.pop_front() {
                Some(job) => job,
                None => {
                    lanes.remove(&key);
                    return;
                }
            }
        };
        let (job, permit) = next;
        job.await;
        drop(permit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_key_runs_in_order_and_keys_run_concurrently() {
        let lanes = Lanes::new(100);
        let log = Arc::new(Mutex::new(Vec::new()));
        for i in 0..5 {
            let log = log.clone();
            lanes
                .submit(
                    "slow".into(),
                    Box::pin(async move {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        log.lock().expect("lock").push(format!("slow{i}"));
                    }),
                )
                .expect("room");
        }
        let log2 = log.clone();
        lanes
            .submit(
                "fast".into(),
                Box::pin(async move { log2.lock().expect("lock").push("fast".into()) }),
            )
            .expect("room");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let seen = log.lock().expect("lock").clone();
        assert_eq!(
            seen[0], "fast",
            "a slow lane does not hold up another: {seen:?}"
        );
        let slow: Vec<_> = seen
            .iter()
            .filter(|s| s.starts_with("slow"))
            .cloned()
            .collect();
        assert_eq!(slow, (0..5).map(|i| format!("slow{i}")).collect::<Vec<_>>());
        assert_eq!(lanes.pending(100), 0);
    }

    #[tokio::test]
    async fn capacity_bounds_what_waits() {
        let lanes = Lanes::new(2);
        let block = || -> Job { Box::pin(tokio::time::sleep(Duration::from_millis(200))) };
        assert!(lanes.submit("a".into(), block()).is_ok());
        assert!(lanes.submit("b".into(), block()).is_ok());
        assert_eq!(lanes.submit("c".into(), block()), Err(Full));
    }
}
