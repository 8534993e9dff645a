//! The decide stage: what the pipeline's shards hand each event to.

use std::sync::Arc;

use futures::future::BoxFuture;
use riposte_firewall::ThreatEvent;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use super::context::Context;
use crate::decide::decision::{Decision, Dispatcher};
use crate::decide::playbook::PlaybookRuntime;
use crate::intake::enrich::{enrich, PodResolver};
use crate::intake::pipeline::EventHandler;
use crate::intake::queues::partition::PartitionPublisher;
use crate::intake::queues::Role;
use crate::store::AuditWriter;

/// Events whose dispatches are left to finish beside the shards, at most:
/// each waits for the audit trail and the outbox (a notifying decision),
/// and holds its decisions meanwhile, so beyond this the shards wait
/// (back-pressure).
const TAILS: u32 = 4_096;

/// The end of the pipeline: playbooks, then the dispatcher.
struct PlaybookStage {
    runtime: Option<Arc<PlaybookRuntime>>,
    pods: Option<Arc<dyn PodResolver>>,
    dispatcher: Arc<dyn Dispatcher>,
    audit: AuditWriter,
    /// One permit per event whose dispatches finish beside the shards.
    tails: Arc<Semaphore>,
}

impl PlaybookStage {
    /// Enriches the event and runs the playbooks on it; `None` when there
    /// is nothing to decide with.
    async fn decide(&self, event: &mut ThreatEvent) -> Option<Vec<Decision>> {
        // Whatever path it came by (a JSON event skips the parsers).
        event.canonicalize_addresses();
        if let Some(pods) = &self.pods {
            enrich(event, pods.as_ref());
        }
        tracing::debug!(
            dataset = %event.dataset,
            threat = event.threat_name.as_deref().unwrap_or(""),
            source = ?event.source_ip,
            destination = ?event.destination_ip,
            "event"
        );
        let runtime = self.runtime.as_ref()?;
        // Back-pressure: while the store is behind, events wait here.
        self.audit.wait_for_room().await;
        Some(runtime.evaluate(event))
    }
}

impl EventHandler for PlaybookStage {
    fn handle(&self, mut event: Box<ThreatEvent>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            for decision in self.decide(&mut event).await.unwrap_or_default() {
                self.dispatcher.dispatch(decision).await;
            }
        })
    }

    fn handle_in_order(&self, mut event: Box<ThreatEvent>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let mut waiting = Vec::new();
            for decision in self.decide(&mut event).await.unwrap_or_default() {
                let dispatcher = self.dispatcher.clone();
                let mut dispatch =
                    Box::pin(async move { dispatcher.dispatch(decision).await }.in_current_span());
                // What orders a decision's effects (recording it, queueing
                // its actions on their pods' lanes) happens before the
                // dispatch first waits, so it happens here, in the shard's
                // order. What a notifying decision then waits for (its
                // record made durable, then its outbox write, two commits)
                // goes on beside the shard: a storm is not decided at the
                // pace of the disk's flushes, one event at a time.
                if futures::poll!(dispatch.as_mut()).is_pending() {
                    waiting.push(dispatch);
                }
            }
            if waiting.is_empty() {
                return;
            }
            // One task per event, finishing its decisions in playbook
            // order: two playbooks' notifications of one event reach the
            // notifier (which merges them) in the order they ran.
            let finish = async move {
                for dispatch in waiting {
                    dispatch.await;
                }
            };
            match self.tails.clone().acquire_owned().await {
                Ok(permit) => {
                    tokio::spawn(async move {
                        finish.await;
                        drop(permit);
                    });
                }
                Err(_) => finish.await,
            }
        })
    }

    fn drain(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Every permit back: every dispatch left running has ended.
            let _ = self.tails.acquire_many(TAILS).await;
        })
    }
}

/// The `ingest` role over a broker publishes each event to its partition
/// queue (with the task that waits for the broker's confirms); every other
/// replica enriches the event and runs the playbooks.
pub(super) fn stage(
    ctx: &Context,
    pods: Option<Arc<dyn PodResolver>>,
    dispatcher: Arc<dyn Dispatcher>,
) -> (Arc<dyn EventHandler>, Option<JoinHandle<()>>) {
    match (&ctx.amqp, ctx.role) {
        (Some(a), Role::Ingest) => {
            let (publisher, confirms) = PartitionPublisher::new(
                a.publisher.clone(),
                a.config.partitions.clone(),
                a.metrics.clone(),
                ctx.shutdown.clone(),
            );
            (publisher, Some(confirms))
        }
        _ => (
            Arc::new(PlaybookStage {
                runtime: ctx.playbooks.clone(),
                pods,
                dispatcher,
                audit: ctx.audit.clone(),
                tails: Arc::new(Semaphore::new(TAILS as usize)),
            }),
            None,
        ),
    }
}
