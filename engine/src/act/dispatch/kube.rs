//! Kubernetes intents: resolve the target to pods, judge each pod, queue the
//! action on the pod's lane, retry, record, and leave a Kubernetes Event on
//! the pod for every action and refusal.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::future::BoxFuture;
use ipnet::IpNet;
use riposte_connectors::kubernetes::{
    EgressSpec, EgressTarget, EventSpec, EventType, KubeError, KubernetesConnector, PodIndex,
    PodRef, QuarantineChange, QuarantineSpec, QuarantineState,
};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::expiry::{self, QuarantineSource};
use super::lanes::Lanes;
use super::repeats::{self, Repeat, Repeats};
use super::retry::{RetryPolicy, Retryable};
use super::{queued, record, AppliedIds, DispatchMetrics, Reporter};
use crate::act::guardrails::{Effect, Guardrails, PodFacts};
use crate::decide::decision::{
    ActionRecord, ActionStatus, Decision, DecisionLog, EventSummary, Mode, Outcome, Timings,
};
use crate::decide::intent::{Action, Intent, Target, Ttl};

/// The record of a repeated action: applied (by the action it repeats),
/// with why nothing more was done.
fn repeat_record(intent: &Intent, who: String, repeat: &Repeat) -> ActionRecord {
    record(
        intent,
        Some(who),
        ActionStatus::Applied,
        Some(repeat.reason()),
        Some(repeat.code()),
    )
}

/// The pod an action runs on, and who asked for it.
struct OnPod<'a> {
    pod: &'a PodRef,
    action_id: &'a str,
    playbook: &'a str,
    event_id: &'a str,
}

impl OnPod<'_> {
    fn reason_or(&self, reason: &Option<String>) -> String {
        reason
            .clone()
            .unwrap_or_else(|| format!("decided by playbook {}", self.playbook))
    }
}

/// An Event's reason, message and action.
type PodEvent = (&'static str, String, &'static str);

/// What one action did, and the Event to leave on the pod when it worked.
struct Done {
    result: Result<String, KubeError>,
    attempts: u32,
    event: Option<PodEvent>,
}

impl Retryable for KubeError {
    fn is_transient(&self) -> bool {
        KubeError::is_transient(self)
    }
    fn retry_after(&self) -> Option<Duration> {
        KubeError::retry_after(self)
    }
    fn is_unreachable(&self) -> bool {
        matches!(self, KubeError::Connection(_) | KubeError::Timeout(_))
    }
    fn settles_after_outage(&self) -> bool {
        matches!(self.status_code(), Some(401 | 403))
    }
}

/// Actions waiting or running on the API server at most; beyond, new ones
/// are refused as failed ("action queue full") rather than queued without
/// bound while the API server is away.
pub const MAX_PENDING_ACTIONS: usize = 10_000;

/// The Kubernetes side of the dispatcher.
#[derive(Debug)]
pub struct KubeBackend {
    connector: KubernetesConnector,
    index: PodIndex,
    lanes: Lanes,
    retry: RetryPolicy,
    applied: AppliedIds,
    quarantine_label: String,
    repeats: Repeats,
}

fn effect(action: &Action) -> Effect {
    match action {
        Action::Quarantine { .. } | Action::DeletePod { .. } | Action::BlockEgress { .. } => {
            Effect::Containment
        }
        Action::Label { .. } | Action::Annotate { .. } => Effect::Change,
        _ => Effect::Harmless,
    }
}

impl KubeBackend {
    pub fn new(connector: KubernetesConnector, index: PodIndex) -> KubeBackend {
        let quarantine_label = connector.config().quarantine.label.clone();
        KubeBackend {
            connector,
            index,
            lanes: Lanes::new(MAX_PENDING_ACTIONS),
            retry: RetryPolicy::default(),
            applied: AppliedIds::new(100_000),
            quarantine_label,
            repeats: Repeats::default(),
        }
    }

    pub fn index(&self) -> &PodIndex {
        &self.index
    }

    /// Distinct actions waiting or running on the pods' lanes (identical
    /// ones are folded into them).
    pub fn queued(&self) -> usize {
        self.repeats.queued()
    }

    /// Whether `intent` on pod `who` repeats what is done or under way: an
    /// identical action waiting on the pod's lane, or a quarantine the pod
    /// already has for long enough.
    fn repeat(&self, pod: &PodRef, intent: &Intent, who: &str) -> Option<Repeat> {
        match &intent.action {
            Action::Quarantine { ttl, .. } => {
                let current = self.repeats.recent(who).or_else(|| {
                    self.index
                        .quarantine_of(&pod.namespace, &pod.name)
                        .map(|q| q.expires_at)
                });
                if let Some(until) = current {
                    if repeats::covered(until, ttl.as_secs(), Utc::now()) {
                        return Some(Repeat::Quarantined(until));
                    }
                }
            }
            Action::Release { .. } => self.repeats.released(who),
            _ => {}
        }
        None
    }

    pub fn connector(&self) -> &KubernetesConnector {
        &self.connector
    }

    /// What guardrails need to know about a pod, from the index.
    fn facts(&self, pod: &PodRef) -> Option<PodFacts> {
        let ctx = self.index.pod(&pod.namespace, &pod.name)?;
        let already_contained = ctx.labels.contains_key(&self.quarantine_label);
        let (workload, ready, contained) = match (&ctx.owner_kind, &ctx.owner_name) {
            (Some(kind), Some(name)) => {
                let counts = self.index.workload_counts(&ctx.namespace, kind, name);
                (
                    Some((kind.clone(), name.clone())),
                    counts.ready + counts.quarantined,
                    counts.quarantined,
                )
            }
            _ => (None, 1, 0),
        };
        Some(PodFacts {
            namespace: ctx.namespace.clone(),
            name: ctx.name.clone(),
            labels: ctx.labels.clone(),
            namespace_labels: ctx.namespace_labels.clone(),
            workload,
            workload_ready: ready,
            workload_contained: contained,
            already_contained,
        })
    }

    /// Judges the intent pod by pod and queues what passes. Returns the
    /// records that are final at once (refusals, unknown pods, a full queue)
    /// and the queued ones; queued actions report their end themselves.
    pub(super) fn submit(
        self: &Arc<Self>,
        intent: &Intent,
        decision: &Decision,
        guardrails: &Guardrails,
        reporter: &Reporter,
        metrics: &DispatchMetrics,
    ) -> Vec<ActionRecord> {
        let Some(target) = intent.action.target() else {
            return Vec::new();
        };
        let pods = match self.resolve(intent, target, reporter) {
            Ok(pods) => pods,
            Err(final_record) => return vec![*final_record],
        };
        let records: Vec<ActionRecord> = pods
            .into_iter()
            .filter_map(|pod| self.submit_on(pod, intent, decision, guardrails, reporter))
            .collect();
        for r in &records {
            if let Some(code @ ("repeat" | "coalesced")) = r.code.as_deref() {
                metrics.repeated(if code == "repeat" {
                    "repeat"
                } else {
                    "coalesced"
                });
            }
        }
        metrics.lane_actions.set(self.repeats.queued() as i64);
        records
    }

    /// The pods `target` names now; or the record saying why there are none.
    fn resolve(
        &self,
        intent: &Intent,
        target: &Target,
        reporter: &Reporter,
    ) -> Result<Vec<PodRef>, Box<ActionRecord>> {
        match target {
            Target::Pod { namespace, name } => match self.index.pod(namespace, name) {
                Some(ctx) => Ok(vec![PodRef::from(ctx.as_ref())]),
                None => Err(Box::new(record(
                    intent,
                    Some(format!("{namespace}/{name}")),
                    ActionStatus::Failed,
                    Some("no such pod in the cluster (deleted, or not yet seen)".into()),
                    Some("pod_not_found"),
                ))),
            },
            Target::Selector { namespace, labels } => {
                let pods = self.index.pods_matching(namespace, labels);
                if pods.is_empty() {
                    return Err(Box::new(record(
                        intent,
                        Some(target.to_string()),
                        ActionStatus::Skipped,
                        Some("no pod matches the selector".into()),
                        Some("no_match"),
                    )));
                }
                Ok(pods)
            }
            Target::Unresolved { ip } => {
                let refusal = Guardrails::unresolved(&ip.to_string());
                reporter.refused(refusal.code);
                Err(Box::new(record(
                    intent,
                    Some(ip.to_string()),
                    ActionStatus::Refused,
                    Some(refusal.message),
                    Some(refusal.code),
                )))
            }
        }
    }

    /// Judges one pod and queues the action on its lane; the record when
    /// it is final at once, `None` when queued (reported as such).
    fn submit_on(
        self: &Arc<Self>,
        pod: PodRef,
        intent: &Intent,
        decision: &Decision,
        guardrails: &Guardrails,
        reporter: &Reporter,
    ) -> Option<ActionRecord> {
        let who = format!("{}/{}", pod.namespace, pod.name);
        let Some(facts) = self.facts(&pod) else {
            return Some(record(
                intent,
                Some(who),
                ActionStatus::Failed,
                Some("the pod left the index before it could be judged".into()),
                Some("pod_not_found"),
            ));
        };
        // A repeat changes nothing: no guardrail budget, no API call.
        if let Some(repeat) = self.repeat(&pod, intent, &who) {
            return Some(repeat_record(intent, who, &repeat));
        }
        let lane_key = repeats::lane_key(&who, &intent.action);
        if let Some(holder) = self.repeats.claim(&lane_key, &intent.action_id) {
            let repeat = Repeat::Queued(holder);
            return Some(repeat_record(intent, who, &repeat));
        }
        if let Err(refusal) = guardrails.check(&facts, effect(&intent.action)) {
            self.repeats.release(&lane_key);
            reporter.refusal(
                refusal.code,
                &who.to_string(),
                intent.action.name(),
                &refusal.message,
            );
            // Tell whoever looks at the pod, unless the namespace is one
            // Riposte must not touch at all.
            if refusal.code != "protected_namespace" {
                self.queue_event(&pod, intent, "RiposteRefused", &refusal.message, "Refuse");
            }
            return Some(record(
                intent,
                Some(who),
                ActionStatus::Refused,
                Some(refusal.message),
                Some(refusal.code),
            ));
        }
        let done_key = format!("{}@{who}", intent.action_id);
        if self.applied.contains(&done_key) {
            self.repeats.release(&lane_key);
            return Some(record(
                intent,
                Some(who),
                ActionStatus::Applied,
                Some("already applied (same action id)".into()),
                None,
            ));
        }
        let job = self.clone().job(
            pod,
            intent.clone(),
            decision.playbook.clone(),
            decision.event_id.clone(),
            reporter.clone(),
            (done_key, lane_key.clone()),
        );
        match self.lanes.submit(who.clone(), job) {
            Ok(()) => {
                reporter.report(queued(intent, Some(who)));
                None
            }
            Err(_) => Some({
                self.repeats.release(&lane_key);
                record(
                    intent,
                    Some(who),
                    ActionStatus::Failed,
                    Some(format!(
                        "{MAX_PENDING_ACTIONS} actions already wait for the API server"
                    )),
                    Some("queue_full"),
                )
            }),
        }
    }

    /// Best effort: an Event on the pod, on the pod's lane.
    fn queue_event(
        self: &Arc<Self>,
        pod: &PodRef,
        intent: &Intent,
        reason: &str,
        message: &str,
        action: &str,
    ) {
        if !self.connector.config().events {
            return;
        }
        let spec = EventSpec {
            reason: reason.to_string(),
            message: message.to_string(),
            event_type: EventType::Warning,
            action: action.to_string(),
            action_id: format!("{}-{}", intent.action_id, reason.to_ascii_lowercase()),
        };
        let me = self.clone();
        let pod = pod.clone();
        let key = format!("{}/{}", pod.namespace, pod.name);
        let _ = self.lanes.submit(
            key,
            Box::pin(async move {
                // The action itself is done and recorded; its Event is a
                // courtesy to `kubectl describe`, so a failure is logged,
                // not retried forever nor turned into the action's failure.
                if let Err(e) = me
                    .retry
                    .run(|| me.connector.event(&pod, &spec))
                    .await
                    .result
                {
                    tracing::warn!(
                        pod = %format!("{}/{}", pod.namespace, pod.name),
                        reason = %spec.reason,
                        kind = e.kind(),
                        error = %e,
                        "the Kubernetes Event of an action was not recorded"
                    );
                }
            }),
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn job(
        self: Arc<Self>,
        pod: PodRef,
        intent: Intent,
        playbook: String,
        event_id: String,
        reporter: Reporter,
        (done_key, lane_key): (String, String),
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let started = Instant::now();
            let (result, attempts) = self.execute(&pod, &intent, &playbook, &event_id).await;
            self.repeats.release(&lane_key);
            reporter
                .metrics
                .lane_actions
                .set(self.repeats.queued() as i64);
            let who = format!("{}/{}", pod.namespace, pod.name);
            let mut rec = match result {
                Ok(done) => {
                    if let Action::Quarantine { ttl, .. } = &intent.action {
                        let until = Utc::now() + chrono::Duration::seconds(ttl.as_secs() as i64);
                        self.repeats.quarantined(&who, Some(until));
                    }
                    self.applied.insert(done_key);
                    record(&intent, Some(who), ActionStatus::Applied, Some(done), None)
                }
                Err(e) => record(
                    &intent,
                    Some(who),
                    ActionStatus::Failed,
                    Some(e.to_string()),
                    Some(e.kind()),
                ),
            };
            rec.attempts = attempts;
            rec.duration_us = started.elapsed().as_micros() as u64;
            reporter.finish(rec);
        })
    }

    /// Carries out one action on one pod, with retries; then leaves an
    /// Event on the pod.
    async fn execute(
        &self,
        pod: &PodRef,
        intent: &Intent,
        playbook: &str,
        event_id: &str,
    ) -> (Result<String, KubeError>, u32) {
        let on = OnPod {
            pod,
            action_id: intent.action_id.as_str(),
            playbook,
            event_id,
        };
        let c = &self.connector;
        let done = match &intent.action {
            Action::Quarantine { ttl, reason, .. } => self.quarantine(&on, *ttl, reason).await,
            Action::Release { reason, .. } => {
                let out = self.retry.run(|| c.release(pod)).await;
                let message = format!("Released by Riposte: {}", on.reason_or(reason));
                Done {
                    result: out
                        .result
                        .map(|r| format!("{:?}", r.outcome).to_lowercase()),
                    attempts: out.attempts,
                    event: Some(("RiposteReleased", message, "Release")),
                }
            }
            Action::Label { labels, .. } => {
                let out = self.retry.run(|| c.label(pod, labels)).await;
                let message = format!(
                    "Labels changed by Riposte (playbook {playbook}): {}",
                    kv(labels)
                );
                Done {
                    result: out.result.map(|()| "labelled".to_string()),
                    attempts: out.attempts,
                    event: Some(("RiposteLabeled", message, "Label")),
                }
            }
            Action::Annotate { annotations, .. } => {
                let out = self.retry.run(|| c.annotate(pod, annotations)).await;
                Done {
                    result: out.result.map(|()| "annotated".to_string()),
                    attempts: out.attempts,
                    event: None,
                }
            }
            Action::BlockEgress {
                cidr,
                ttl,
                ports,
                reason,
                ..
            } => self.block_egress(&on, *cidr, *ttl, ports, reason).await,
            Action::K8sEvent {
                reason, message, ..
            } => {
                let spec = EventSpec {
                    reason: reason.clone(),
                    message: message.clone(),
                    event_type: EventType::Warning,
                    action: "Report".into(),
                    action_id: on.action_id.to_string(),
                };
                let out = self.retry.run(|| c.event(pod, &spec)).await;
                Done {
                    result: out.result.map(|_| "event recorded".to_string()),
                    attempts: out.attempts,
                    event: None,
                }
            }
            Action::DeletePod { reason, .. } => self.delete_pod(&on, reason).await,
            _ => Done {
                result: Ok("nothing to do".to_string()),
                attempts: 0,
                event: None,
            },
        };
        if let (Ok(_), Some(event)) = (&done.result, done.event) {
            self.announce(&on, event).await;
        }
        (done.result, done.attempts)
    }

    async fn quarantine(&self, on: &OnPod<'_>, ttl: Ttl, reason: &Option<String>) -> Done {
        let expires_at = Utc::now() + chrono::Duration::seconds(ttl.as_secs() as i64);
        let spec = QuarantineSpec {
            action_id: on.action_id.to_string(),
            reason: on.reason_or(reason),
            playbook: Some(on.playbook.to_string()),
            event_id: Some(on.event_id.to_string()),
            expires_at: Some(expires_at),
            detach: None,
        };
        let out = self
            .retry
            .run(|| self.connector.quarantine(on.pod, &spec))
            .await;
        let result = out.result.map(|r| {
            let until = r
                .expires_at
                .map_or_else(|| "released by hand".into(), |t| t.to_rfc3339());
            format!("quarantined (policy {}), until {until}", r.policy)
        });
        let message = format!(
            "Quarantined by Riposte (playbook {}) until {}: {}",
            on.playbook,
            expires_at.to_rfc3339(),
            spec.reason
        );
        Done {
            result,
            attempts: out.attempts,
            event: Some(("RiposteQuarantined", message, "Quarantine")),
        }
    }

    async fn block_egress(
        &self,
        on: &OnPod<'_>,
        cidr: IpNet,
        ttl: Ttl,
        ports: &[u16],
        reason: &Option<String>,
    ) -> Done {
        let spec = EgressSpec {
            action_id: on.action_id.to_string(),
            ports: ports.to_vec(),
            expires_at: Some(Utc::now() + chrono::Duration::seconds(ttl.as_secs() as i64)),
            reason: Some(on.reason_or(reason)),
            playbook: Some(on.playbook.to_string()),
            event_id: Some(on.event_id.to_string()),
        };
        let target = EgressTarget::Pod(on.pod.clone());
        let out = self
            .retry
            .run(|| self.connector.block_egress(&target, cidr, &spec))
            .await;
        let message = format!(
            "Egress to {cidr} blocked by Riposte (playbook {}): {}",
            on.playbook,
            on.reason_or(reason)
        );
        Done {
            result: out
                .result
                .map(|r| format!("egress to {cidr} blocked (policy {})", r.policy)),
            attempts: out.attempts,
            event: Some(("RiposteEgressBlocked", message, "BlockEgress")),
        }
    }

    async fn delete_pod(&self, on: &OnPod<'_>, reason: &Option<String>) -> Done {
        // The Event goes first: afterwards there is no pod to hang it on.
        let message = format!(
            "Deleted by Riposte (playbook {}): {}",
            on.playbook,
            on.reason_or(reason)
        );
        let spec = EventSpec {
            reason: "RiposteDeleted".into(),
            message,
            event_type: EventType::Warning,
            action: "Delete".into(),
            action_id: format!("{}-event", on.action_id),
        };
        let c = &self.connector;
        let _ = self.retry.run(|| c.event(on.pod, &spec)).await;
        let out = self.retry.run(|| c.delete_pod(on.pod, None)).await;
        Done {
            result: out.result.map(|r| format!("{r:?}").to_lowercase()),
            attempts: out.attempts,
            event: None,
        }
    }

    /// Best effort: the Event telling the pod's watchers what was done.
    async fn announce(&self, on: &OnPod<'_>, (reason, message, action): PodEvent) {
        let spec = EventSpec {
            reason: reason.to_string(),
            message,
            event_type: EventType::Normal,
            action: action.to_string(),
            action_id: format!("{}-event", on.action_id),
        };
        let pod = on.pod;
        if let Err(e) = self
            .retry
            .run(|| self.connector.event(pod, &spec))
            .await
            .result
        {
            tracing::debug!(pod = %pod, error = %e, "could not record the Kubernetes Event");
        }
    }

    /// Releases expired quarantines and lifts expired egress blocks until
    /// shutdown. Expiries are read from the cluster, never kept only here.
    pub fn spawn_expiry(
        self: Arc<Self>,
        log: Arc<DecisionLog>,
        metrics: DispatchMetrics,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let quarantines = {
            let log = log.clone();
            let metrics = metrics.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let source = Arc::new(IndexSource(me.index.clone()));
                let releaser = me.clone();
                expiry::run(
                    source,
                    move |state: Arc<QuarantineState>| -> BoxFuture<'static, ()> {
                        let me = releaser.clone();
                        let log = log.clone();
                        let metrics = metrics.clone();
                        Box::pin(async move { me.expire(&state, &log, &metrics) })
                    },
                    shutdown,
                )
                .await;
            })
        };
        // A quarantined pod that was deleted leaves its namespace's deny-all
        // policy behind; releasing the gone pod removes the policy once no
        // quarantined pod is left there.
        let sweeper = {
            let me = self.clone();
            let shutdown = shutdown.clone();
            let mut changes = me.index.quarantine_changes();
            tokio::spawn(async move {
                loop {
                    let change = tokio::select! {
                        c = changes.recv() => c,
                        () = shutdown.cancelled() => return,
                    };
                    match change {
                        Ok(QuarantineChange::Cleared(pod))
                            if me.index.pod(&pod.namespace, &pod.name).is_none() =>
                        {
                            let key = format!("{}/{}", pod.namespace, pod.name);
                            let worker = me.clone();
                            let _ = me.lanes.submit(
                                key,
                                Box::pin(async move {
                                    if let Err(e) = worker.retry.run(|| worker.connector.release(&pod)).await.result {
                                        tracing::warn!(pod = %pod, error = %e, "could not clean up after a deleted quarantined pod");
                                    }
                                }),
                            );
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                        _ => {}
                    }
                }
            })
        };
        let me = self;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tokio::select! {
                    _ = tick.tick() => me.lift_expired_egress_blocks().await,
                    () = shutdown.cancelled() => break,
                }
            }
            let _ = quarantines.await;
            let _ = sweeper.await;
        })
    }

    /// Queues the release of an expired quarantine, recorded as a decision
    /// of the built-in `riposte-expiry` playbook.
    fn expire(
        self: &Arc<Self>,
        state: &QuarantineState,
        log: &Arc<DecisionLog>,
        metrics: &DispatchMetrics,
    ) {
        let playbook = "riposte-expiry".to_string();
        let expires = state.expires_at.map(|t| t.to_rfc3339()).unwrap_or_default();
        let event_id = format!(
            "expiry:{}/{}:{expires}",
            state.pod.namespace, state.pod.name
        );
        let target = Target::Pod {
            namespace: state.pod.namespace.clone(),
            name: state.pod.name.clone(),
        };
        let intent = Intent::new(
            &event_id,
            &playbook,
            Action::Release {
                target,
                reason: Some(format!("quarantine expired at {expires}")),
            },
        );
        let decision = Decision {
            event_id: event_id.clone(),
            event: EventSummary {
                kind: "schedule".into(),
                dataset: "riposte.expiry".into(),
                threat_name: state.reason.clone(),
                ..EventSummary::default()
            },
            playbook: playbook.clone(),
            mode: Mode::Enforce,
            intents: vec![intent.clone()],
            outcome: Outcome::Pending {
                reason: "dispatching".into(),
            },
            timings: Timings::default(),
            at: Utc::now(),
            actions: Vec::new(),
        };
        log.record(decision);
        let reporter = Reporter {
            log: log.clone(),
            metrics: metrics.clone(),
            event_id: event_id.clone(),
            playbook: playbook.clone(),
        };
        let pod = PodRef::new(state.pod.namespace.clone(), state.pod.name.clone());
        let who = pod.to_string();
        self.repeats.released(&who);
        let job = self.clone().job(
            pod,
            intent.clone(),
            playbook,
            event_id,
            reporter.clone(),
            (format!("{}@{who}", intent.action_id), String::new()),
        );
        if self.lanes.submit(who.clone(), job).is_err() {
            reporter.finish(record(
                &intent,
                Some(who),
                ActionStatus::Failed,
                Some("action queue full".into()),
                Some("queue_full"),
            ));
        }
    }

    async fn lift_expired_egress_blocks(&self) {
        let blocks = match self.connector.egress_blocks().await {
            Ok(b) => b,
            Err(e) => {
                tracing::debug!(error = %e, "cannot list egress blocks");
                return;
            }
        };
        let now = Utc::now();
        for block in blocks {
            let (Some(expires), Some(action_id)) = (block.expires_at, block.action_id.as_deref())
            else {
                continue;
            };
            if expires > now {
                continue;
            }
            match self
                .retry
                .run(|| self.connector.unblock_egress(&block.namespace, action_id))
                .await
                .result
            {
                Ok(_) => {
                    tracing::info!(namespace = %block.namespace, policy = %block.policy, "egress block expired; lifted")
                }
                Err(e) => {
                    tracing::warn!(namespace = %block.namespace, policy = %block.policy, error = %e, "could not lift an expired egress block")
                }
            }
        }
    }
}

fn kv(map: &BTreeMap<String, Option<String>>) -> String {
    map.iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => format!("-{k}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The pod index as the expiry scheduler's source of quarantines.
struct IndexSource(PodIndex);

impl QuarantineSource for IndexSource {
    fn ready(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.0.ready())
    }
    fn quarantined(&self) -> Vec<Arc<QuarantineState>> {
        self.0.quarantined()
    }
    fn changes(&self) -> broadcast::Receiver<QuarantineChange> {
        self.0.quarantine_changes()
    }
}
