//! Gathering registrations into few requests: ops wait up to the batch
//! interval (or until a message is full) for others to share their
//! message. The latest op for one (address, tag) wins within a batch, so a
//! register followed by an unregister never reaches the firewall in the
//! wrong order.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::client::Client;
use super::error::XmlApiError;
use super::message::UidOp;
use crate::edl::IpEntry;

/// Ops waiting at most; beyond, [`Batcher::submit`] waits (backpressure).
pub const QUEUE: usize = 100_000;

struct Pending {
    op: UidOp,
    done: oneshot::Sender<Result<(), XmlApiError>>,
}

/// The batching front of one [`Client`].
#[derive(Debug, Clone)]
pub struct Batcher {
    tx: mpsc::Sender<Pending>,
    client: Client,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("op", &self.op).finish()
    }
}

impl Batcher {
    /// Starts the batching task (on the current Tokio runtime); it ends when
    /// every `Batcher` clone is dropped.
    pub fn start(client: Client) -> Batcher {
        let (tx, rx) = mpsc::channel(QUEUE);
        let interval = Duration::from_millis(client.config().batch_interval_ms);
        let max = client.config().batch_entries.max(1);
        tokio::spawn(run(client.clone(), rx, interval, max));
        Batcher { tx, client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Queues `op` and waits for the answer of the message that carried it.
    pub async fn submit(&self, op: UidOp) -> Result<(), XmlApiError> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Pending { op, done })
            .await
            .map_err(|_| XmlApiError::Closed)?;
        rx.await.unwrap_or(Err(XmlApiError::Closed))
    }

    /// Queues many ops and waits for all of them; results in order.
    pub async fn submit_all(&self, ops: Vec<UidOp>) -> Vec<Result<(), XmlApiError>> {
        let mut waits = Vec::with_capacity(ops.len());
        for op in ops {
            let (done, rx) = oneshot::channel();
            if self.tx.send(Pending { op, done }).await.is_err() {
                waits.push(None);
            } else {
                waits.push(Some(rx));
            }
        }
        let mut out = Vec::with_capacity(waits.len());
        for w in waits {
            out.push(match w {
                Some(rx) => rx.await.unwrap_or(Err(XmlApiError::Closed)),
                None => Err(XmlApiError::Closed),
            });
        }
        out
    }
}

async fn run(client: Client, mut rx: mpsc::Receiver<Pending>, interval: Duration, max: usize) {
    // Enough ops for a few messages are gathered per round when they are
    // already queued, so a burst goes out in full messages.
    let round = max.saturating_mul(4);
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + interval;
        while batch.len() < round {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(p)) => batch.push(p),
                Ok(None) | Err(_) => break,
            }
        }
        flush(&client, batch).await;
    }
}

async fn flush(client: &Client, batch: Vec<Pending>) {
    // The latest op per (address, tag) is sent; everyone waiting on that
    // key gets its result.
    let mut slot: HashMap<(IpEntry, String), usize> = HashMap::new();
    let mut ops: Vec<UidOp> = Vec::new();
    let mut waiters: Vec<Vec<oneshot::Sender<Result<(), XmlApiError>>>> = Vec::new();
    for p in batch {
        let key = (*p.op.ip(), p.op.tag().as_str().to_string());
        match slot.get(&key) {
            Some(&i) => {
                ops[i] = p.op;
                waiters[i].push(p.done);
            }
            None => {
                slot.insert(key, ops.len());
                ops.push(p.op);
                waiters.push(vec![p.done]);
            }
        }
    }
    let results = client.apply(&ops).await;
    for (result, ws) in results.into_iter().zip(waiters) {
        for w in ws {
            let _ = w.send(result.clone());
        }
    }
}
