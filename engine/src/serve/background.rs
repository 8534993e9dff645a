//! The tasks beside the pipeline: store readiness, recovery, the notify
//! worker, approval timeouts, playbook reloads, the leader election and
//! what only the leader runs, and the broker's writers.

use std::sync::Arc;
use std::time::Duration;

use riposte_firewall::ThreatEvent;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::act::Act;
use super::context::Context;
use crate::api::Readiness;
use crate::error::EngineError;
use crate::intake::pipeline::Pipeline;
use crate::intake::queues::Role;
use crate::leader::{LeaderTasks, Leadership, Lock};
use crate::store::Store;

/// The background tasks, stopped by the shutdown token.
pub(super) struct Background {
    pub tasks: JoinSet<()>,
    /// Whether this replica leads (roles that run playbooks).
    pub leadership: Option<Leadership>,
    /// The decision stream's writers, each with its own stop: like the
    /// audit writer, they outlive the consumers that flush them.
    pub amqp_writers: Vec<(CancellationToken, JoinHandle<()>)>,
}

/// Spawns the background tasks. Fails only on a leader lock the config
/// cannot have.
pub(super) async fn spawn(
    ctx: &mut Context,
    act: &Act,
    pipeline: &Pipeline,
) -> Result<Background, EngineError> {
    let shutdown = &ctx.shutdown;
    let mut tasks = JoinSet::new();
    tasks.spawn(watch_store(
        ctx.store.clone(),
        ctx.readiness.clone(),
        shutdown.clone(),
    ));
    // Decisions a killed process left in flight get their true outcome.
    tasks.spawn(crate::store::recovery::run(
        ctx.store.clone(),
        shutdown.clone(),
    ));
    if let Some(n) = &ctx.notifier {
        join(
            &mut tasks,
            crate::act::notifications::worker::spawn(n.clone(), shutdown.clone()),
        );
    }
    tasks.spawn(act.approvals.clone().run_timeouts(
        ctx.decisions.clone(),
        act.dispatcher.clone(),
        Duration::from_millis(ctx.config.api.approval_check_ms),
        shutdown.clone(),
    ));
    if let Some(rt) = &ctx.playbooks {
        // SIGHUP always reloads; the directory is watched when `watch` is on.
        join(&mut tasks, rt.clone().spawn_reloader(shutdown.clone()));
    }
    let leadership = if ctx.role.decides() {
        Some(spawn_leadership(ctx, act, pipeline, &mut tasks)?)
    } else {
        None
    };
    let amqp_writers = spawn_amqp(ctx, &mut tasks).await;
    Ok(Background {
        tasks,
        leadership,
        amqp_writers,
    })
}

/// Waits in `tasks` for a task spawned elsewhere.
fn join(tasks: &mut JoinSet<()>, handle: JoinHandle<()>) {
    tasks.spawn(async move {
        let _ = handle.await;
    });
}

/// The leader election, which runs [`leader_tasks`] while this replica
/// leads.
fn spawn_leadership(
    ctx: &mut Context,
    act: &Act,
    pipeline: &Pipeline,
    tasks: &mut JoinSet<()>,
) -> Result<Leadership, EngineError> {
    let lock = Lock::choose(&ctx.config.leader, &ctx.store, ctx.lease_client.take())
        .map_err(EngineError::rejected("leader"))?;
    let leader = leader_tasks(ctx, act, pipeline);
    let metrics = crate::leader::register(&mut ctx.registry);
    let (leadership, handle) = crate::leader::spawn(
        lock,
        Duration::from_millis(ctx.config.leader.check_interval_ms),
        leader,
        metrics,
        ctx.shutdown.clone(),
    );
    join(tasks, handle);
    Ok(leadership)
}

/// The broker's side tasks: the connection watch (a split replica is not
/// ready until connected), the `publish` sink and the decision stream.
async fn spawn_amqp(
    ctx: &Context,
    tasks: &mut JoinSet<()>,
) -> Vec<(CancellationToken, JoinHandle<()>)> {
    let mut writers = Vec::new();
    let Some(a) = &ctx.amqp else { return writers };
    a.declare().await;
    if ctx.role != Role::All {
        // A replica split over the broker does nothing useful without
        // it: not ready until connected.
        ctx.readiness.register("amqp");
        tasks.spawn(a.clone().watch(ctx.readiness.clone(), ctx.shutdown.clone()));
    }
    if let Some(sink) = &a.sink {
        join(tasks, sink.clone().spawn(ctx.shutdown.clone()));
    }
    if let Some(stream) = &a.stream {
        // Like the audit writer, it outlives the consumers that flush it.
        let stop = CancellationToken::new();
        writers.push((stop.clone(), stream.clone().spawn(stop)));
    }
    writers
}

/// What only the leader runs: the store's purge, the firewall reconciler,
/// quarantine expiries, the firewall's following of quarantined pods (dual
/// path) and the playbook schedules.
fn leader_tasks(ctx: &Context, act: &Act, pipeline: &Pipeline) -> LeaderTasks {
    let store = ctx.store.clone();
    let follow = act
        .firewall
        .as_ref()
        .filter(|f| f.config().dual_path && !f.targets().is_empty())
        .cloned();
    let firewall = act
        .firewall
        .as_ref()
        .filter(|f| !f.targets().is_empty())
        .cloned();
    let kube = ctx.kube.clone();
    let runtime = ctx.playbooks.clone();
    let decisions = ctx.decisions.clone();
    let dispatch_metrics = ctx.dispatch_metrics.clone();
    // Dropped with the closure when the election loop ends on shutdown, so
    // the pipeline still closes once the sources are done.
    let pipeline = pipeline.clone();
    Box::new(move |stop: CancellationToken| {
        let mut tasks = vec![store.spawn_purge(stop.clone())];
        if let Some(fw) = &firewall {
            tasks.push(fw.clone().spawn_reconciler(decisions.clone(), stop.clone()));
        }
        if let Some(kube) = &kube {
            tasks.push(kube.clone().spawn_expiry(
                decisions.clone(),
                dispatch_metrics.clone(),
                stop.clone(),
            ));
            if let Some(fw) = follow.as_ref() {
                tasks.push(fw.clone().spawn_follower(
                    kube.index().clone(),
                    decisions.clone(),
                    stop.clone(),
                ));
            }
        }
        if let Some(rt) = &runtime {
            tasks.push(spawn_schedules(rt, &pipeline, &stop));
        }
        tasks
    })
}

/// The playbook schedules, whose events join the same pipeline as firewall
/// events.
fn spawn_schedules(
    runtime: &Arc<crate::decide::playbook::PlaybookRuntime>,
    pipeline: &Pipeline,
    stop: &CancellationToken,
) -> JoinHandle<()> {
    let (tx, mut rx) = mpsc::channel::<ThreatEvent>(64);
    let handle = runtime.clone().spawn_scheduler(tx, stop.clone());
    let forward = pipeline.clone();
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            if forward.send(Box::new(ev)).await.is_err() {
                break;
            }
        }
        let _ = handle.await;
    })
}

/// Keeps the `store` readiness check true while the database answers
/// (connecting and migrating a store that was unreachable at start). Looks
/// every 5 s, every second while not ready.
async fn watch_store(store: Store, readiness: Readiness, shutdown: CancellationToken) {
    let mut was_ready = store.is_ready();
    let mut first = true;
    loop {
        let pause = match (first, was_ready) {
            (true, _) => Duration::ZERO,
            (false, true) => Duration::from_secs(5),
            (false, false) => Duration::from_secs(1),
        };
        first = false;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        let ready = matches!(
            tokio::time::timeout(Duration::from_secs(3), store.ping()).await,
            Ok(Ok(()))
        );
        if ready != was_ready {
            if ready {
                tracing::info!("store reachable again");
            } else {
                tracing::warn!(url = store.url(), "store unreachable: not ready");
            }
            was_ready = ready;
        }
        readiness.set("store", ready);
    }
}
