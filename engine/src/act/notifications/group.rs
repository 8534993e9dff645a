//! Group commit for outbox writes.
//!
//! Every outbox write is a durable commit: one disk sync. Written one by
//! one, notifications are capped by the disk's sync rate (about a hundred a
//! second on ordinary disks). Callers instead hand their item to a
//! [`GroupCommit`] and wait: one task takes everything that is waiting and
//! writes it in one transaction, so concurrent callers share a sync and each
//! still returns only once its own item is durable.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::store::StoreError;

type Job<T, R> = (T, oneshot::Sender<Result<R, GroupError>>);

/// Why a write queued for group commit did not commit.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GroupError {
    /// The batch's commit failed: every write in it shares the error.
    #[error("{0}")]
    Commit(#[source] Arc<StoreError>),
    #[error("a batch of {sent} writes answered {answered} results")]
    Answers { sent: usize, answered: usize },
    #[error("the outbox writer has stopped")]
    Stopped,
}

/// A queue of writes committed in batches by one task.
#[derive(Debug)]
pub struct GroupCommit<T, R> {
    tx: mpsc::Sender<Job<T, R>>,
}

impl<T: Send + 'static, R: Send + 'static> GroupCommit<T, R> {
    /// Starts the committing task on the current runtime. `commit` writes a
    /// batch (at most `max_batch` items) and answers one result per item, in
    /// order; its error is every caller's error. The task ends when the
    /// last handle is dropped.
    pub fn spawn<F, Fut>(max_batch: usize, commit: F) -> Self
    where
        F: Fn(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<R>, StoreError>> + Send,
    {
        let max_batch = max_batch.max(1);
        let (tx, mut rx) = mpsc::channel::<Job<T, R>>(max_batch.saturating_mul(4));
        tokio::spawn(async move {
            let mut jobs = Vec::with_capacity(max_batch);
            while rx.recv_many(&mut jobs, max_batch).await > 0 {
                let (items, replies): (Vec<T>, Vec<_>) = jobs.drain(..).unzip();
                match commit(items).await {
                    Ok(results) if results.len() == replies.len() => {
                        for (reply, r) in replies.into_iter().zip(results) {
                            let _ = reply.send(Ok(r));
                        }
                    }
                    Ok(results) => {
                        let e = GroupError::Answers {
                            sent: replies.len(),
                            answered: results.len(),
                        };
                        for reply in replies {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                    Err(e) => {
                        let e = GroupError::Commit(Arc::new(e));
                        for reply in replies {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                }
            }
        });
        GroupCommit { tx }
    }

    /// Queues `item` and waits until the batch that holds it is committed.
    pub async fn submit(&self, item: T) -> Result<R, GroupError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((item, reply))
            .await
            .map_err(|_| GroupError::Stopped)?;
        answer.await.map_err(|_| GroupError::Stopped)?
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn concurrent_writes_share_commits_and_each_gets_its_own_answer() {
        let commits = Arc::new(AtomicUsize::new(0));
        let c = commits.clone();
        let group = Arc::new(GroupCommit::spawn(64, move |items: Vec<u32>| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
                Ok(items.into_iter().map(|i| i * 2).collect())
            }
        }));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..200u32 {
            let g = group.clone();
            tasks.spawn(async move { (i, g.submit(i).await) });
        }
        while let Some(r) = tasks.join_next().await {
            let (i, answer) = r.unwrap();
            assert_eq!(answer.ok(), Some(i * 2));
        }
        assert!(commits.load(Ordering::SeqCst) < 200, "writes were batched");
    }

    #[tokio::test]
    async fn a_failed_commit_fails_every_write_in_it() {
        let group = GroupCommit::spawn(8, |_: Vec<u32>| async {
            Err::<Vec<()>, _>(StoreError::Unavailable("disk full".to_string()))
        });
        let failed = group.submit(1).await.expect_err("the commit failed");
        assert_eq!(failed.to_string(), "store unavailable: disk full");
    }
}
