//! The decide stage: what the pipeline's shards hand each event to.

use std::sync::Arc;

use futures::future::BoxFuture;
use riposte_firewall::ThreatEvent;
use tokio::task::JoinHandle;

use super::context::Context;
use crate::decide::decision::Dispatcher;
use crate::decide::playbook::PlaybookRuntime;
use crate::intake::enrich::{enrich, PodResolver};
use crate::intake::pipeline::EventHandler;
use crate::intake::queues::partition::PartitionPublisher;
use crate::intake::queues::Role;
use crate::store::AuditWriter;

/// The end of the pipeline: playbooks, then the dispatcher.
struct PlaybookStage {
    runtime: Option<Arc<PlaybookRuntime>>,
    pods: Option<Arc<dyn PodResolver>>,
    dispatcher: Arc<dyn Dispatcher>,
    audit: AuditWriter,
}

impl EventHandler for PlaybookStage {
    fn handle(&self, mut event: Box<ThreatEvent>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Whatever path it came by (a JSON event skips the parsers).
            event.canonicalize_addresses();
            if let Some(pods) = &self.pods {
                enrich(&mut event, pods.as_ref());
            }
            tracing::debug!(
                dataset = %event.dataset,
                threat = event.threat_name.as_deref().unwrap_or(""),
                source = ?event.source_ip,
                destination = ?event.destination_ip,
                "event"
            );
            let Some(runtime) = &self.runtime else { return };
            // Back-pressure: while the store is behind, events wait here.
            self.audit.wait_for_room().await;
            for decision in runtime.evaluate(&event) {
                self.dispatcher.dispatch(decision).await;
            }
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
            }),
            None,
        ),
    }
}
