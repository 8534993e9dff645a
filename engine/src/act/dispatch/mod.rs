//! The dispatcher: from a playbook's decision to actions in the world.
//!
//! For an `enforce` decision, every intent is judged and carried out:
//! Kubernetes intents are resolved to pods through the pod index, checked by
//! the [guardrails](crate::act::guardrails) pod by pod, and queued on the pod's
//! [lane](lanes) — actions on one pod run in order, actions on different
//! pods concurrently, and the pipeline never waits for the API server. Each
//! action is retried on transient failures with backoff honouring
//! Retry-After, and its outcome lands on the decision in the decision log.
//! Intents whose connector is not configured are recorded as skipped.
//!
//! Idempotence: an action id (from event, playbook and intent) names every
//! action; a pod that already received an action id is not acted on twice,
//! and every Kubernetes write is idempotent anyway (server-side apply).

pub mod expiry;
pub mod kube;
pub mod lanes;
pub mod metrics;
pub mod repeats;
pub mod retry;

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use futures::future::BoxFuture;

use crate::act::approvals::{Approval, Approvals};
use crate::act::firewall_sync::{Firewalls, FwError};
use crate::act::guardrails::Guardrails;
use crate::act::notifications::Notifier;
use crate::act::publish::AmqpSink;
use crate::decide::decision::{
    trace_decision, ActionRecord, ActionStatus, Decision, DecisionLog, Dispatcher, Mode, Outcome,
};
use crate::decide::intent::{Action, Intent, Target};

pub use self::kube::KubeBackend;
pub use self::metrics::DispatchMetrics;

/// Action ids already applied to a target, remembered for a while so a
/// redelivered log does not act twice. Bounded: the oldest are forgotten.
#[derive(Debug)]
pub struct AppliedIds {
    capacity: usize,
    inner: Mutex<(HashSet<String>, VecDeque<String>)>,
}

impl AppliedIds {
    pub fn new(capacity: usize) -> AppliedIds {
        AppliedIds {
            capacity: capacity.max(1),
            inner: Mutex::new((HashSet::new(), VecDeque::new())),
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .contains(key)
    }

    pub fn insert(&self, key: String) {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (set, order) = &mut *guard;
        if set.insert(key.clone()) {
            order.push_back(key);
            while order.len() > self.capacity {
                if let Some(old) = order.pop_front() {
                    set.remove(&old);
                }
            }
        }
    }
}

/// Carries out enforce decisions; records dry-run ones.
#[derive(Debug)]
pub struct ActionDispatcher {
    log: Arc<DecisionLog>,
    kube: Option<Arc<KubeBackend>>,
    guardrails: Arc<Guardrails>,
    metrics: DispatchMetrics,
    notifier: Option<Arc<Notifier>>,
    firewall: Option<Arc<Firewalls>>,
    /// Where `approve` intents wait for a decision; without it they are
    /// recorded as skipped.
    approvals: Option<Arc<Approvals>>,
    /// `publish` intents go through its outbox to the broker.
    amqp: Option<Arc<AmqpSink>>,
}

/// Who an action is about, for the record.
fn record(
    intent: &Intent,
    target: Option<String>,
    status: ActionStatus,
    reason: Option<String>,
    code: Option<&str>,
) -> ActionRecord {
    ActionRecord {
        action_id: intent.action_id.clone(),
        action: intent.action.name().to_string(),
        target,
        status,
        reason,
        code: code.map(str::to_string),
        attempts: 0,
        duration_us: 0,
        at: Utc::now(),
    }
}

/// An intent handed to a task of its own; that task reports how it ended.
fn queued(intent: &Intent, target: Option<String>) -> ActionRecord {
    record(intent, target, ActionStatus::Queued, None, None)
}

/// An intent skipped because what would carry it out is not configured.
fn no_connector(intent: &Intent, target: Option<String>, what: &str) -> ActionRecord {
    record(
        intent,
        target,
        ActionStatus::Skipped,
        Some(format!("no {what} configured")),
        Some("no_connector"),
    )
}

impl ActionDispatcher {
    pub fn new(
        log: Arc<DecisionLog>,
        kube: Option<Arc<KubeBackend>>,
        guardrails: Arc<Guardrails>,
        metrics: DispatchMetrics,
    ) -> ActionDispatcher {
        ActionDispatcher {
            log,
            kube,
            guardrails,
            metrics,
            notifier: None,
            firewall: None,
            approvals: None,
            amqp: None,
        }
    }

    /// Sends `publish` intents to the broker through the outbox.
    pub fn with_amqp(mut self, sink: Option<Arc<AmqpSink>>) -> ActionDispatcher {
        self.amqp = sink;
        self
    }

    /// Lets `approve` intents wait in `approvals`.
    pub fn with_approvals(mut self, approvals: Arc<Approvals>) -> ActionDispatcher {
        self.approvals = Some(approvals);
        self
    }

    /// Stores every `approve` intent of an enforce decision as a pending
    /// approval; its action stays queued until someone decides. Targets
    /// subscribed to approvals are asked; the approvals made are returned
    /// so the decision's own notifications carry their links.
    async fn request_approvals(&self, decision: &Decision) -> Vec<Approval> {
        let mut made = Vec::new();
        let reporter = self.reporter(decision.event_id.clone(), decision.playbook.clone());
        for intent in &decision.intents {
            let Action::Approve { intent: inner, .. } = &intent.action else {
                continue;
            };
            let target = inner.target().map(|t| t.to_string());
            let Some(approvals) = &self.approvals else {
                let r = record(
                    intent,
                    target,
                    ActionStatus::Skipped,
                    Some("approvals are not configured".into()),
                    Some("no_approvals"),
                );
                reporter.finish(r);
                continue;
            };
            match approvals.create(decision, intent, Utc::now()).await {
                // Asked again (a redelivered event) after it was decided:
                // that decision stands.
                Ok(a) if a.state != crate::act::approvals::ApprovalState::Pending => reporter
                    .finish(record(
                        intent,
                        target,
                        ActionStatus::Skipped,
                        Some(format!("approval {} already {}", a.id, a.state.as_str())),
                        Some("already_decided"),
                    )),
                Ok(a) => {
                    reporter.report(record(
                        intent,
                        target,
                        ActionStatus::Queued,
                        Some(format!(
                            "awaiting approval {} until {} (then {})",
                            a.id,
                            a.expires_at.to_rfc3339(),
                            a.default.as_str()
                        )),
                        Some("awaiting_approval"),
                    ));
                    if let Some(n) = &self.notifier {
                        // The queued record first, as for every outbox write.
                        if let Err(e) = self.log.flush().await {
                            tracing::warn!(event.id = %decision.event_id, "audit trail not flushed before the outbox write: {e}");
                        }
                        n.approval_requested(decision, &a).await;
                    }
                    made.push(a);
                }
                Err(e) => reporter.finish(record(
                    intent,
                    target,
                    ActionStatus::Failed,
                    Some(format!("cannot store the approval: {e:?}")),
                    Some("store"),
                )),
            }
        }
        made
    }

    /// Sends `notify` intents through `notifier`'s outbox.
    pub fn with_notifier(mut self, notifier: Option<Arc<Notifier>>) -> ActionDispatcher {
        self.notifier = notifier;
        self
    }

    /// Carries out firewall intents (tags, EDLs) and the quarantine dual
    /// path through `firewall`.
    pub fn with_firewall(mut self, firewall: Option<Arc<Firewalls>>) -> ActionDispatcher {
        self.firewall = firewall;
        self
    }

    pub fn log(&self) -> &Arc<DecisionLog> {
        &self.log
    }

    /// A sink through which queued actions report their outcome.
    fn reporter(&self, event_id: String, playbook: String) -> Reporter {
        Reporter {
            log: self.log.clone(),
            metrics: self.metrics.clone(),
            event_id,
            playbook,
        }
    }

    /// Carries out what can start at once; returns the `notify` intents,
    /// which the caller writes to the outbox before the decision is done.
    fn enforce(&self, decision: &mut Decision) -> Vec<Intent> {
        let reporter = self.reporter(decision.event_id.clone(), decision.playbook.clone());
        let mut immediate = Vec::new();
        let mut notifies = Vec::new();
        for intent in &decision.intents {
            match &intent.action {
                // Handled by `request_approvals`.
                Action::Log { .. } | Action::Approve { .. } => {}
                Action::Quarantine { .. }
                | Action::Release { .. }
                | Action::Label { .. }
                | Action::Annotate { .. }
                | Action::BlockEgress { .. }
                | Action::K8sEvent { .. }
                | Action::DeletePod { .. } => match &self.kube {
                    Some(kube) => {
                        let records = kube.submit(
                            intent,
                            decision,
                            &self.guardrails,
                            &reporter,
                            &self.metrics,
                        );
                        let refused = records.iter().any(|r| {
                            matches!(r.status, ActionStatus::Refused | ActionStatus::Failed)
                        });
                        immediate.extend(records);
                        if !refused {
                            immediate.extend(self.dual_path(kube, intent, decision, &reporter));
                        }
                    }
                    None => immediate.push(record(
                        intent,
                        intent.action.target().map(|t| t.to_string()),
                        ActionStatus::Skipped,
                        Some("no cluster configured".into()),
                        Some("no_cluster"),
                    )),
                },
                Action::TagIp { .. }
                | Action::UntagIp { .. }
                | Action::EdlAdd { .. }
                | Action::EdlRemove { .. } => match &self.firewall {
                    Some(fw) => immediate.push(firewall_intent(fw, intent, &reporter)),
                    None => immediate.push(no_connector(intent, None, "firewall connector")),
                },
                Action::Notify { .. } if self.notifier.is_some() => notifies.push(intent.clone()),
                Action::Notify { target, .. } => immediate.push(no_connector(
                    intent,
                    Some(target.clone()),
                    "notification target",
                )),
                // Written to the outbox with the notify intents, before the
                // decision is done.
                Action::Publish { .. } if self.amqp.is_some() => notifies.push(intent.clone()),
                Action::Publish { exchange, .. } => immediate.push(no_connector(
                    intent,
                    Some(exchange.clone()),
                    "AMQP connection",
                )),
            }
        }
        // The outbox-bound actions are reported queued before any action
        // is reported final: a decision whose actions seemed all final for
        // a moment (a skipped quarantine before its queued notification)
        // would be counted settled twice in `riposte_decisions_total`.
        for intent in &notifies {
            if let Some(target) = outbox_target(&intent.action) {
                reporter.report(queued(intent, Some(target)));
            }
        }
        for r in immediate {
            reporter.finish(r);
        }
        notifies
    }

    /// Waits until the decision and each outbox-bound action, reported
    /// queued by [`ActionDispatcher::enforce`], are durable: a notification
    /// or message in the outbox (delivered, perhaps, before a crash) always
    /// has its decision and action in the audit trail, which start-up
    /// recovery completes.
    async fn record_before_outbox(&self, decision: &Decision, intents: &[Intent]) {
        if intents.is_empty() {
            return;
        }
        if let Err(e) = self.log.flush().await {
            tracing::warn!(event.id = %decision.event_id, "audit trail not flushed before the outbox write: {e}");
        }
    }

    /// Writes each publish intent to the outbox; the action is applied once
    /// the message is durable there (the AMQP outbox worker publishes it).
    async fn publish(&self, decision: &Decision, intents: &[Intent]) {
        let Some(sink) = &self.amqp else {
            return;
        };
        let reporter = self.reporter(decision.event_id.clone(), decision.playbook.clone());
        for intent in intents {
            let Action::Publish {
                exchange,
                routing_key,
                payload,
            } = &intent.action
            else {
                continue;
            };
            let started = std::time::Instant::now();
            let target = outbox_target(&intent.action);
            let mut r = match sink
                .enqueue_publish(decision, intent, exchange, routing_key, payload)
                .await
            {
                Ok(id) => record(
                    intent,
                    target,
                    ActionStatus::Applied,
                    Some(format!("written to the outbox as {id}")),
                    None,
                ),
                Err(e) => record(
                    intent,
                    target,
                    ActionStatus::Failed,
                    Some(format!("cannot write to the outbox: {e}")),
                    Some("store"),
                ),
            };
            r.attempts = 1;
            r.duration_us = started.elapsed().as_micros() as u64;
            reporter.finish(r);
        }
    }

    /// Writes each notify intent to the outbox; the action is applied once
    /// the notification is durable (delivery is the outbox worker's).
    async fn notify(&self, decision: &Decision, intents: Vec<Intent>, approvals: &[Approval]) {
        let Some(notifier) = &self.notifier else {
            return;
        };
        let reporter = self.reporter(decision.event_id.clone(), decision.playbook.clone());
        for intent in intents {
            let Action::Notify { target, fields } = &intent.action else {
                continue;
            };
            let started = std::time::Instant::now();
            let mut r = match notifier
                .enqueue_intent(decision, &intent, target, fields, approvals)
                .await
            {
                Ok(done) => record(
                    &intent,
                    Some(target.clone()),
                    ActionStatus::Applied,
                    Some(done.to_string()),
                    None,
                ),
                Err(e) => {
                    let status = match e {
                        crate::act::notifications::NotifyRefusal::Encode(_)
                        | crate::act::notifications::NotifyRefusal::Store(_) => {
                            ActionStatus::Failed
                        }
                        _ => ActionStatus::Refused,
                    };
                    record(
                        &intent,
                        Some(target.clone()),
                        status,
                        Some(e.to_string()),
                        Some(e.code()),
                    )
                }
            };
            r.attempts = 1;
            r.duration_us = started.elapsed().as_micros() as u64;
            reporter.finish(r);
        }
    }
}

/// Who an outbox-bound intent is about, for the record: the same string
/// whether the dispatcher records it or start-up recovery completes it, so
/// the two find each other's records.
pub(crate) fn outbox_target(action: &Action) -> Option<String> {
    match action {
        Action::Notify { target, .. } => Some(target.clone()),
        Action::Publish {
            exchange,
            routing_key,
            ..
        } => Some(format!("{exchange} {routing_key}")),
        _ => None,
    }
}

/// Who a firewall intent is about, for the record.
pub(crate) fn firewall_target(action: &Action) -> String {
    match action {
        Action::TagIp { ip, tag, .. } | Action::UntagIp { ip, tag } => format!("{ip} {tag}"),
        Action::EdlAdd { list, value, .. } | Action::EdlRemove { list, value } => {
            format!("edl {list}: {value}")
        }
        other => other.summary(),
    }
}

/// Queues a firewall intent; it reports its end itself.
fn firewall_intent(fw: &Arc<Firewalls>, intent: &Intent, reporter: &Reporter) -> ActionRecord {
    let target = firewall_target(&intent.action);
    let (fw, job, reporter, who) = (fw.clone(), intent.clone(), reporter.clone(), target.clone());
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let id = Some(job.action_id.as_str());
        let result = match &job.action {
            Action::TagIp { ip, tag, ttl, .. } => {
                fw.tag_ip(*ip, tag, ttl.as_secs(), id, false).await
            }
            Action::UntagIp { ip, tag } => fw.untag_ip(*ip, tag).await,
            Action::EdlAdd {
                list,
                value,
                ttl,
                reason,
            } => {
                fw.edl_add(list, value, ttl.as_secs(), reason.as_deref(), id)
                    .await
            }
            Action::EdlRemove { list, value } => fw.edl_remove(list, value).await,
            _ => return,
        };
        let mut rec = finished(&job, who, result, &reporter);
        rec.duration_us = started.elapsed().as_micros() as u64;
        reporter.finish(rec);
    });
    queued(intent, Some(target))
}

fn finished(
    intent: &Intent,
    who: String,
    result: Result<String, FwError>,
    reporter: &Reporter,
) -> ActionRecord {
    let mut rec = match result {
        Ok(what) => {
            let code = crate::act::firewall_sync::is_repeat(&what).then_some("repeat");
            record(intent, Some(who), ActionStatus::Applied, Some(what), code)
        }
        Err(FwError::Refused(r)) => {
            reporter.refusal(r.code, &who, intent.action.name(), &r.message);
            record(
                intent,
                Some(who),
                ActionStatus::Refused,
                Some(r.message),
                Some(r.code),
            )
        }
        Err(e) => record(
            intent,
            Some(who),
            ActionStatus::Failed,
            Some(e.to_string()),
            Some(e.code()),
        ),
    };
    rec.attempts = 1;
    rec
}

impl ActionDispatcher {
    /// The quarantine dual path: a quarantined pod's address is also tagged
    /// on the firewalls (blocked at once, whatever the CNI does), and a
    /// released pod's address untagged.
    fn dual_path(
        &self,
        kube: &Arc<KubeBackend>,
        intent: &Intent,
        decision: &Decision,
        reporter: &Reporter,
    ) -> Option<ActionRecord> {
        let fw = self.firewall.as_ref().filter(|f| f.config().dual_path)?;
        let (Action::Quarantine {
            target: Target::Pod { namespace, name },
            ..
        }
        | Action::Release {
            target: Target::Pod { namespace, name },
            ..
        }) = &intent.action
        else {
            return None;
        };
        let is_pod = |ip: std::net::IpAddr| {
            kube.index()
                .resolve(ip)
                .is_some_and(|p| &p.namespace == namespace && &p.name == name)
        };
        let tag = fw.config().quarantine_tag.clone();
        let (fw, job, reporter) = (fw.clone(), intent.clone(), reporter.clone());
        match &intent.action {
            Action::Quarantine { ttl, .. } => {
                let ip = [decision.event.source_ip, decision.event.destination_ip]
                    .into_iter()
                    .flatten()
                    .find(|ip| is_pod(*ip))?;
                let who = format!("firewall {ip} {tag}");
                let ttl = ttl.as_secs();
                let target = who.clone();
                tokio::spawn(async move {
                    let result = fw.tag_ip(ip, &tag, ttl, Some(&job.action_id), true).await;
                    reporter.finish(finished(&job, who, result, &reporter));
                });
                Some(queued(intent, Some(target)))
            }
            _ => {
                let index = kube.index().clone();
                let (ns, pod) = (namespace.clone(), name.clone());
                let target = format!("firewall {ns}/{pod} {tag}");
                let who = target.clone();
                tokio::spawn(async move {
                    let result = fw
                        .untag_where(&tag, |ip| {
                            index
                                .resolve(ip)
                                .is_some_and(|p| p.namespace == ns && p.name == pod)
                        })
                        .await;
                    reporter.finish(finished(&job, who, result, &reporter));
                });
                Some(queued(intent, Some(target)))
            }
        }
    }
}

/// Action names are a fixed set; map them back to their static spelling for
/// metric labels.
fn leak_name(name: &str) -> &'static str {
    Action::NAMES
        .iter()
        .find(|n| **n == name)
        .copied()
        .unwrap_or("other")
}

/// Reports action outcomes onto their decision, from wherever they finish.
#[derive(Debug, Clone)]
pub struct Reporter {
    log: Arc<DecisionLog>,
    metrics: DispatchMetrics,
    event_id: String,
    playbook: String,
}

/// The refusal lines' budget, per playbook.
static REFUSAL_LINES: std::sync::LazyLock<crate::log_budget::LogBudget> =
    std::sync::LazyLock::new(Default::default);

/// The action lines' budget, per playbook.
static ACTION_LINES: std::sync::LazyLock<crate::log_budget::LogBudget> =
    std::sync::LazyLock::new(Default::default);

impl Reporter {
    pub fn report(&self, record: ActionRecord) {
        if record.status != ActionStatus::Queued {
            // Within the playbook's budget (see `log_budget`): in a storm
            // each event's actions would be a line each.
            crate::log_budget::budgeted!(
                ACTION_LINES, &self.playbook, INFO,
                event.id = %self.event_id,
                playbook = %self.playbook,
                action = %record.action,
                target = record.target.as_deref().unwrap_or(""),
                status = record.status.as_str(),
                reason = record.reason.as_deref().unwrap_or(""),
                attempts = record.attempts,
                "action"
            );
        }
        self.log
            .record_action(&self.event_id, &self.playbook, record);
    }

    /// Counts and reports a final outcome.
    pub fn finish(&self, record: ActionRecord) {
        self.metrics.count(&record, leak_name(&record.action));
        self.report(record.clone());
        if let Some(notifier) = self.metrics.outcomes.get() {
            notifier.action_finished(&self.log, &self.event_id, &self.playbook, &record);
        }
    }

    pub fn refused(&self, code: &'static str) {
        self.metrics.refused(code);
    }

    /// Counts a guardrail's refusal and says so at `warn`, within the
    /// playbook's budget (else at debug): a spoofed-log storm aimed at a
    /// protected address is refused on every event.
    pub fn refusal(&self, code: &'static str, who: &str, action: &str, message: &str) {
        self.refused(code);
        crate::log_budget::budgeted!(
            REFUSAL_LINES, &self.playbook, WARN,
            target = %who, action, reason = code, "refused: {message}"
        );
    }
}

impl Dispatcher for ActionDispatcher {
    fn dispatch(&self, mut decision: Decision) -> BoxFuture<'_, Decision> {
        Box::pin(async move {
            let started = std::time::Instant::now();
            if decision.outcome == Outcome::Decided {
                if decision.intents.is_empty() {
                    decision.outcome = Outcome::NoAction;
                } else if decision.mode == Mode::DryRun {
                    decision.outcome = Outcome::DryRun;
                } else {
                    decision.outcome = Outcome::Pending {
                        reason: "dispatching".into(),
                    };
                    // Record first: queued actions report onto this entry.
                    trace_decision(&decision);
                    self.log.record(decision.clone());
                    let notifies = self.enforce(&mut decision);
                    // Approvals first: the decision's notifications carry
                    // their links.
                    let approvals = self.request_approvals(&decision).await;
                    self.record_before_outbox(&decision, &notifies).await;
                    self.publish(&decision, &notifies).await;
                    self.notify(&decision, notifies, &approvals).await;
                    decision.timings.dispatch_us = started.elapsed().as_micros() as u64;
                    return decision;
                }
            }
            decision.timings.dispatch_us = started.elapsed().as_micros() as u64;
            trace_decision(&decision);
            self.log.record(decision.clone());
            decision
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::act::notifications::{NotifyConfig, NotifyMetrics};
    use crate::decide::decision::{DecisionSink, EventSummary, FlushError, Timings};
    use crate::store::{OutboxFilter, Store};
    use riposte_connectors::soar::{Format, TargetConfig};

    /// Remembers, at each flush, whether the outbox already held the
    /// notification: it must not.
    #[derive(Debug)]
    struct Probe {
        store: Store,
        records: Mutex<Vec<String>>,
        flushes: Mutex<Vec<(usize, bool)>>,
    }

    impl DecisionSink for Probe {
        fn decision(&self, _: &Decision) {
            self.lock().push("decision".into());
        }

        fn action(&self, _: &str, _: &str, r: &ActionRecord, _: Option<&Outcome>) {
            self.lock()
                .push(format!("{} {}", r.action, r.status.as_str()));
        }

        fn flush(&self) -> BoxFuture<'_, Result<(), FlushError>> {
            Box::pin(async move {
                let written = self
                    .store
                    .outbox_list(&OutboxFilter::default())
                    .await
                    .map_err(FlushError::new)?;
                let seen = self.lock().len();
                self.flushes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((seen, !written.items.is_empty()));
                Ok(())
            })
        }
    }

    impl Probe {
        fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
            self.records.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    /// A dispatcher with one SOAR target and no cluster or firewall, its
    /// decision log reporting to a [`Probe`].
    fn notifying(store: &Store) -> (ActionDispatcher, Arc<Probe>, Arc<DecisionLog>) {
        let mut target = TargetConfig::new("soar", "http://127.0.0.1:9/hook", Format::Webhook);
        target.allow_private = true;
        let config = NotifyConfig {
            targets: vec![target],
            ..NotifyConfig::default()
        };
        let notifier = Notifier::build(&config, store.clone(), NotifyMetrics::default())
            .expect("notifier")
            .expect("a target");
        let probe = Arc::new(Probe {
            store: store.clone(),
            records: Mutex::new(Vec::new()),
            flushes: Mutex::new(Vec::new()),
        });
        let log = Arc::new(DecisionLog::default());
        log.set_sink(probe.clone());
        let dispatcher = ActionDispatcher::new(
            log.clone(),
            None,
            Arc::new(Guardrails::new(Default::default())),
            DispatchMetrics::default(),
        )
        .with_notifier(Some(notifier));
        (dispatcher, probe, log)
    }

    /// A tag of the C2 address for `event` by `playbook`.
    fn c2_tag(event: &str, playbook: &str) -> Intent {
        Intent::new(
            event,
            playbook,
            Action::TagIp {
                ip: "203.0.113.9".parse().expect("ip"),
                tag: "c2".into(),
                ttl: crate::decide::intent::Ttl::from_secs(3600).expect("ttl"),
                reason: None,
            },
        )
    }

    /// A notification of event `ev1` to the `soar` target.
    fn soar_notify() -> Intent {
        Intent::new(
            "ev1",
            "pb",
            Action::Notify {
                target: "soar".into(),
                fields: serde_json::json!({"title": "C2"}),
            },
        )
    }

    fn enforced(intents: Vec<Intent>) -> Decision {
        Decision {
            event_id: "ev1".into(),
            event: EventSummary {
                kind: "alert".into(),
                dataset: "panos.threat".into(),
                ..EventSummary::default()
            },
            playbook: "pb".into(),
            mode: Mode::Enforce,
            intents,
            outcome: Outcome::Decided,
            timings: Timings::default(),
            at: Utc::now(),
            actions: Vec::new(),
        }
    }

    /// The log of a test, as the service would write it.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_storm_logs_a_budget_of_lines_per_playbook_not_one_per_event() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let log = Arc::new(DecisionLog::default());
        let dispatcher = ActionDispatcher::new(
            log.clone(),
            None,
            Arc::new(Guardrails::new(Default::default())),
            DispatchMetrics::default(),
        );
        // No firewall: every event's tag is skipped at once, an action
        // line and a decision line each.
        for i in 0..1_000 {
            let mut d = enforced(vec![c2_tag(&format!("ev{i}"), "log-budget-storm")]);
            d.event_id = format!("ev{i}");
            d.playbook = "log-budget-storm".into();
            dispatcher.dispatch(d).await;
        }
        let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
        let lines = |message: &str| {
            text.lines()
                .filter(|l| l.contains("log-budget-storm") && l.contains(message))
                .count()
        };
        let limit = crate::log_budget::LINES as usize;
        assert_eq!(lines(": decision"), limit, "{text}");
        assert_eq!(lines(": action"), limit, "{text}");
    }

    #[tokio::test]
    async fn a_skipped_action_beside_a_notification_counts_the_decision_once() {
        let (store, _dir) = crate::store::testing::sqlite().await;
        let (dispatcher, probe, log) = notifying(&store);
        let mut registry = prometheus_client::registry::Registry::default();
        log.register_metrics(&mut registry);
        // No firewall: the tag is skipped at once, the notification queued.
        let tag = c2_tag("ev1", "pb");
        let notify = soar_notify();
        dispatcher.dispatch(enforced(vec![tag, notify])).await;
        let text = crate::intake::metrics::encode(&registry);
        let counted: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("riposte_decisions_total{"))
            .collect();
        // Once, as applied: not also `pending` for the moment when the
        // skipped tag was its only action, and a final one.
        assert_eq!(
            counted,
            ["riposte_decisions_total{playbook=\"pb\",outcome=\"applied\"} 1"],
            "{text}"
        );
        let records = probe.lock().clone();
        assert_eq!(
            records,
            [
                "decision",
                "notify queued",
                "tag_ip skipped",
                "notify applied"
            ],
            "the notification is queued before the tag is reported skipped"
        );
    }

    #[tokio::test]
    async fn a_notification_is_written_only_once_its_action_is_recorded() {
        let (store, _dir) = crate::store::testing::sqlite().await;
        let (dispatcher, probe, _log) = notifying(&store);
        let notify = soar_notify();
        dispatcher.dispatch(enforced(vec![notify])).await;
        let outbox = store
            .outbox_list(&OutboxFilter::default())
            .await
            .expect("outbox");
        assert_eq!(outbox.items.len(), 1, "the notification is written");
        let records = probe.lock().clone();
        assert_eq!(
            records,
            ["decision", "notify queued", "notify applied"],
            "{records:?}"
        );
        let flushes = probe
            .flushes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        assert_eq!(
            flushes.first(),
            Some(&(2, false)),
            "the decision and the queued action were flushed before the outbox write: {flushes:?}"
        );
    }
}
