//! The AMQP sink: `publish` intents and the decision stream go through the
//! store's outbox (targets `amqp:publish` and `amqp:decisions`), so that a
//! message written there is never lost while the broker is away; a worker
//! publishes them persistent, mandatory and confirmed, marks them
//! delivered, and retries or dead-letters (in the outbox) the ones the
//! broker refuses.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use riposte_connectors::amqp::{AmqpError, Backoff, Outgoing, Publisher};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::act::notifications::group::{GroupCommit, GroupError};
use crate::decide::decision::{ActionRecord, Decision, DecisionSink, FlushError, Outcome};
use crate::decide::intent::Intent;
use crate::intake::queues::config::{
    AmqpOutboxConfig, DecisionStreamConfig, DECISIONS_TARGET, PUBLISH_TARGET,
};
use crate::intake::queues::metrics::AmqpMetrics;
use crate::store::{NewOutboxItem, OutboxItem, Store};

/// Longest wait for a publish to go out or be confirmed.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// Header naming the event a message is about.
pub const EVENT_HEADER: &str = "x-riposte-event-id";
/// Header naming the playbook that decided it.
pub const PLAYBOOK_HEADER: &str = "x-riposte-playbook";

/// Why a message did not reach the outbox, or cannot leave it.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The message does not encode, or a stored one does not decode.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Outbox(#[from] GroupError),
    #[error("the decision stream writer is not running")]
    StreamStopped,
}

/// One message as the outbox keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    pub exchange: String,
    pub routing_key: String,
    pub body: Value,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
}

impl StoredMessage {
    fn outgoing(&self, id: &str) -> Result<Outgoing, PublishError> {
        let body = serde_json::to_vec(&self.body)?;
        let mut out = Outgoing::new(&self.exchange, &self.routing_key, body)
            .message_id(id)
            .content_type("application/json");
        for (k, v) in &self.headers {
            out = out.header(k, v);
        }
        Ok(out)
    }
}

/// Publishes from the outbox; accepts `publish` intents.
pub struct AmqpSink {
    store: Store,
    publisher: Arc<Publisher>,
    config: AmqpOutboxConfig,
    metrics: AmqpMetrics,
    wake: Notify,
    enqueue: GroupCommit<NewOutboxItem, bool>,
    owner: String,
}

impl std::fmt::Debug for AmqpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpSink")
            .field("owner", &self.owner)
            .finish()
    }
}

fn group(store: &Store, batch: usize) -> GroupCommit<NewOutboxItem, bool> {
    let store = store.clone();
    GroupCommit::spawn(batch.max(1), move |items: Vec<NewOutboxItem>| {
        let store = store.clone();
        async move { store.outbox_enqueue_each(&items).await }
    })
}

impl AmqpSink {
    pub fn new(
        store: Store,
        publisher: Arc<Publisher>,
        config: AmqpOutboxConfig,
        metrics: AmqpMetrics,
    ) -> Arc<AmqpSink> {
        let owner = format!(
            "{}-{}-{:08x}",
            publisher.broker().settings().connection_name,
            std::process::id(),
            rand::random::<u32>()
        );
        Arc::new(AmqpSink {
            enqueue: group(&store, config.batch),
            store,
            publisher,
            config,
            metrics,
            wake: Notify::new(),
            owner,
        })
    }

    /// Writes the message of a `publish` intent to the outbox; returns its
    /// id once durable. The id comes from the action id, so a redelivered
    /// event's intent is stored (and published) once.
    pub async fn enqueue_publish(
        &self,
        decision: &Decision,
        intent: &Intent,
        exchange: &str,
        routing_key: &str,
        payload: &Value,
    ) -> Result<String, PublishError> {
        let id = format!("amqp-{}", intent.action_id);
        let message = StoredMessage {
            exchange: exchange.to_string(),
            routing_key: routing_key.to_string(),
            body: payload.clone(),
            headers: vec![
                (EVENT_HEADER.into(), decision.event_id.clone()),
                (PLAYBOOK_HEADER.into(), decision.playbook.clone()),
                ("x-riposte-action-id".into(), intent.action_id.clone()),
            ],
        };
        let item = NewOutboxItem {
            id: id.clone(),
            target: PUBLISH_TARGET.into(),
            payload: serde_json::to_value(&message)?,
            created_at: Utc::now(),
        };
        self.enqueue.submit(item).await?;
        self.wake.notify_one();
        Ok(id)
    }

    /// Wakes the worker (new items were written by someone else).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs the delivery loop until `shutdown`.
    pub fn spawn(self: Arc<Self>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move { self.run(shutdown).await })
    }

    async fn run(&self, shutdown: CancellationToken) {
        let poll = Duration::from_millis(self.config.poll_ms);
        let lease = Duration::from_secs(60);
        let mut backoff = self.publisher.broker().backoff();
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let mut busy = false;
            let mut broker_down = false;
            for target in [PUBLISH_TARGET, DECISIONS_TARGET] {
                let items = match self
                    .store
                    .outbox_claim(
                        Some(target),
                        &self.owner,
                        lease,
                        self.config.batch,
                        Utc::now(),
                    )
                    .await
                {
                    Ok(items) => items,
                    Err(e) => {
                        tracing::warn!(target, error = %e, "AMQP outbox claim failed");
                        continue;
                    }
                };
                if items.is_empty() {
                    continue;
                }
                tracing::debug!(target, items = items.len(), "AMQP outbox: claimed");
                busy = true;
                if self.deliver(target, items).await {
                    broker_down = true;
                }
            }
            if broker_down {
                let delay = backoff.next_delay();
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shutdown.cancelled() => return,
                }
                continue;
            }
            backoff.reset();
            if !busy {
                tokio::select! {
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(poll) => {}
                    () = shutdown.cancelled() => return,
                }
            }
        }
    }

    /// Publishes a claimed batch (all sent, then the confirms awaited);
    /// returns true when the broker was unreachable.
    async fn deliver(&self, target: &'static str, items: Vec<OutboxItem>) -> bool {
        let kind = if target == PUBLISH_TARGET {
            "publish"
        } else {
            "decisions"
        };
        let mut pending = Vec::with_capacity(items.len());
        let mut broker_down = false;
        for item in items {
            let msg = match serde_json::from_value::<StoredMessage>(item.payload.clone())
                .map_err(PublishError::from)
                .and_then(|m| m.outgoing(&item.id))
            {
                Ok(m) => m,
                Err(e) => {
                    self.dead(&item, kind, &format!("unreadable outbox item: {e}"))
                        .await;
                    continue;
                }
            };
            if broker_down {
                pending.push((item, Err(None)));
                continue;
            }
            match tokio::time::timeout(CONFIRM_TIMEOUT, self.publisher.send(&msg)).await {
                Ok(Ok(p)) => pending.push((item, Ok(p))),
                Ok(Err(e)) => {
                    broker_down = e.is_transient();
                    pending.push((item, Err(Some(e))));
                }
                Err(_) => {
                    tracing::warn!("AMQP publish did not go out in time");
                    broker_down = true;
                    pending.push((item, Err(None)));
                }
            }
        }
        let mut delivered = Vec::new();
        for (item, sent) in pending {
            let result = match sent {
                // A confirm that never comes (a connection that died
                // without telling) must not stall the outbox: the message
                // is sent again (at least once; the message id names it).
                Ok(p) => match tokio::time::timeout(CONFIRM_TIMEOUT, p.confirmed()).await {
                    Ok(r) => r,
                    Err(_) => {
                        tracing::warn!(id = %item.id, "no publisher confirm in time; will send again");
                        Err(AmqpError::Shutdown)
                    }
                },
                Err(Some(e)) => Err(e),
                Err(None) => Err(AmqpError::Shutdown),
            };
            match result {
                Ok(()) => delivered.push(item.id),
                Err(e) if e.is_transient() => {
                    broker_down = true;
                    tracing::debug!(id = %item.id, error = %e, "AMQP publish failed; the broker is away");
                    self.metrics.published(kind, "retried", 1);
                    // The broker's absence costs no attempt.
                    self.retry(&item, item.attempts, &e.to_string()).await;
                }
                Err(e) => {
                    let attempts = item.attempts + 1;
                    let code = if matches!(e, AmqpError::Unroutable { .. }) {
                        "unroutable"
                    } else {
                        "refused"
                    };
                    self.metrics.published(kind, code, 1);
                    if attempts >= self.config.max_attempts {
                        self.dead(&item, kind, &format!("after {attempts} attempts: {e}"))
                            .await;
                    } else {
                        tracing::warn!(id = %item.id, attempts, error = %e, "AMQP publish refused; will retry");
                        self.retry(&item, attempts, &e.to_string()).await;
                    }
                }
            }
        }
        if !delivered.is_empty() {
            self.mark_delivered(kind, &delivered).await;
        }
        broker_down
    }

    /// Marks confirmed messages delivered: retried for a while when the
    /// store is away, then left to their lease (sent again: at least once).
    async fn mark_delivered(&self, kind: &'static str, delivered: &[String]) {
        let n = delivered.len() as u64;
        let mut pause = Duration::from_millis(50);
        loop {
            match self
                .store
                .outbox_delivered_many(delivered, Utc::now())
                .await
            {
                Ok(_) => break,
                Err(e) if e.is_transient() => {
                    tracing::warn!(error = %e, "marking AMQP messages delivered failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                    if pause >= Duration::from_secs(5) {
                        // The lease runs out and they are sent again:
                        // at least once.
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "marking AMQP messages delivered failed");
                    break;
                }
            }
        }
        self.metrics.published(kind, "confirmed", n);
    }

    async fn retry(&self, item: &OutboxItem, attempts: u32, error: &str) {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
        let mut delay = b.next_delay();
        for _ in 0..attempts.min(16) {
            delay = b.next_delay();
        }
        let next = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
        if let Err(e) = self
            .store
            .outbox_retry(&item.id, attempts, next, error, Utc::now())
            .await
        {
            tracing::warn!(id = %item.id, error = %e, "outbox retry not recorded (the lease expires instead)");
        }
    }

    async fn dead(&self, item: &OutboxItem, kind: &'static str, reason: &str) {
        self.metrics.published(kind, "dead", 1);
        tracing::error!(id = %item.id, reason, "AMQP message dead-lettered in the outbox (GET /v1/outbox?status=dead, replay with POST /v1/outbox/{{id}}/replay)");
        if let Err(e) = self
            .store
            .outbox_dead_letter(&item.id, reason, Utc::now())
            .await
        {
            tracing::warn!(id = %item.id, error = %e, "outbox dead-letter not recorded");
        }
    }
}

/// The decision stream: a [`DecisionSink`] that turns every decision and
/// action record into an outbox message for the stream's exchange. The
/// sink must not wait, so records queue in memory and one task writes them
/// in batches; [`DecisionStream::flush`] waits until what was handed over
/// is in the outbox (a consumer acks after it).
pub struct DecisionStream {
    config: DecisionStreamConfig,
    queue: Mutex<(VecDeque<NewOutboxItem>, u64)>,
    items: Notify,
    committed: watch::Sender<(u64, bool)>,
    store: Store,
    sink: Arc<AmqpSink>,
}

impl std::fmt::Debug for DecisionStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionStream")
            .field("exchange", &self.config.exchange)
            .finish()
    }
}

/// A routing-key word: dots and wildcards would change the key's shape.
fn word(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl DecisionStream {
    pub fn new(config: DecisionStreamConfig, store: Store, sink: Arc<AmqpSink>) -> Arc<Self> {
        Arc::new(DecisionStream {
            config,
            queue: Mutex::new((VecDeque::new(), 0)),
            items: Notify::new(),
            committed: watch::Sender::new((0, false)),
            store,
            sink,
        })
    }

    fn push(&self, item: NewOutboxItem) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.0.push_back(item);
        q.1 += 1;
        drop(q);
        self.items.notify_one();
    }

    fn message(&self, routing_key: String, body: Value, event_id: &str, playbook: &str) -> Value {
        serde_json::to_value(StoredMessage {
            exchange: self.config.exchange.clone(),
            routing_key,
            body,
            headers: vec![
                (EVENT_HEADER.into(), event_id.to_string()),
                (PLAYBOOK_HEADER.into(), playbook.to_string()),
            ],
        })
        .unwrap_or(Value::Null)
    }

    /// Waits until every record handed over before this call is in the
    /// outbox.
    pub async fn flush(&self) -> Result<(), PublishError> {
        let target = self.queue.lock().unwrap_or_else(|e| e.into_inner()).1;
        if crate::store::writer::committed_up_to(&self.committed, target).await {
            Ok(())
        } else {
            Err(PublishError::StreamStopped)
        }
    }

    /// Starts the writer; it runs until `shutdown`, then writes what is left.
    pub fn spawn(self: Arc<Self>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        self.committed.send_modify(|s| s.1 = true);
        tokio::spawn(async move {
            let mut done = self.committed.borrow().0;
            loop {
                let batch: Vec<NewOutboxItem> = {
                    let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                    let n = q.0.len().min(512);
                    q.0.drain(..n).collect()
                };
                if batch.is_empty() {
                    if shutdown.is_cancelled() {
                        break;
                    }
                    tokio::select! {
                        () = self.items.notified() => {}
                        () = shutdown.cancelled() => {}
                    }
                    continue;
                }
                let mut pause = Duration::from_millis(50);
                loop {
                    match self.store.outbox_enqueue_many(&batch).await {
                        Ok(_) => break,
                        Err(e) if e.is_transient() && !shutdown.is_cancelled() => {
                            tracing::warn!(error = %e, "decision stream: outbox write failed, retrying");
                            tokio::time::sleep(pause).await;
                            pause = (pause * 2).min(Duration::from_secs(5));
                        }
                        Err(e) => {
                            tracing::error!(error = %e, records = batch.len(),
                                "decision stream: records not written to the outbox");
                            break;
                        }
                    }
                }
                done += batch.len() as u64;
                self.committed.send_modify(|s| s.0 = done);
                self.sink.wake();
            }
            self.committed.send_modify(|s| s.1 = false);
        })
    }
}

impl DecisionSink for DecisionStream {
    fn decision(&self, d: &Decision) {
        if d.outcome == Outcome::NoAction && !self.config.include_no_action {
            return;
        }
        let body = serde_json::to_value(d).unwrap_or(Value::Null);
        let key = format!("decision.{}.{}", word(&d.playbook), d.outcome.as_str());
        let payload = self.message(key, body, &d.event_id, &d.playbook);
        self.push(NewOutboxItem {
            id: format!("dec-{}-{}-{}", d.event_id, d.playbook, d.outcome.as_str()),
            target: DECISIONS_TARGET.into(),
            payload,
            created_at: Utc::now(),
        });
    }

    fn action(
        &self,
        event_id: &str,
        playbook: &str,
        record: &ActionRecord,
        outcome: Option<&Outcome>,
    ) {
        if !self.config.actions || record.status == crate::decide::decision::ActionStatus::Queued {
            return;
        }
        let body = serde_json::json!({
            "event_id": event_id,
            "playbook": playbook,
            "action": record,
            "decision_outcome": outcome.map(Outcome::as_str),
        });
        let key = format!("action.{}.{}", word(&record.action), record.status.as_str());
        let payload = self.message(key, body, event_id, playbook);
        let target = xxhash_rust::xxh3::xxh3_64(record.target.as_deref().unwrap_or("").as_bytes());
        self.push(NewOutboxItem {
            id: format!(
                "act-{}-{target:016x}-{}",
                record.action_id,
                record.status.as_str()
            ),
            target: DECISIONS_TARGET.into(),
            payload,
            created_at: Utc::now(),
        });
    }
}

/// Hands every record to several sinks, in order.
#[derive(Debug)]
pub struct Tee(pub Vec<Arc<dyn DecisionSink>>);

impl DecisionSink for Tee {
    fn decision(&self, decision: &Decision) {
        for s in &self.0 {
            s.decision(decision);
        }
    }

    fn action(
        &self,
        event_id: &str,
        playbook: &str,
        record: &ActionRecord,
        outcome: Option<&Outcome>,
    ) {
        for s in &self.0 {
            s.action(event_id, playbook, record, outcome);
        }
    }

    fn flush(&self) -> futures::future::BoxFuture<'_, Result<(), FlushError>> {
        Box::pin(async move {
            for s in &self.0 {
                s.flush().await?;
            }
            Ok(())
        })
    }
}
