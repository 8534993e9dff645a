//! The outbox worker: one loop per target claims due notifications and
//! delivers them; one loop keeps the depth gauges and the disabled flags
//! in step with the store.
//!
//! Claims carry a lease long enough for the claimed batch to be sent, so
//! another replica never takes an item in flight; a worker that dies leaves
//! its leases to expire and the items are claimed again. On shutdown the
//! loops stop claiming and wait for the attempts in flight (each bounded by
//! the target's timeout), so a restart finds every item settled or due.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use riposte_connectors::soar::{Notification, Outcome};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::metrics::NotifyMetrics;
use super::{Notifier, Slot};
use crate::store::{OutboxItem, OutboxStatus};

/// How often depth gauges and disabled flags are refreshed from the store.
const STATE_REFRESH: Duration = Duration::from_secs(1);
/// How often coalescing windows are looked at for updates due.
const FLUSH_TICK: Duration = Duration::from_millis(250);
/// How long an update waits, at a time, for the notification that opens
/// its incident to be delivered (the update goes to the SOAR's id of it).
const OPENING_WAIT: Duration = Duration::from_secs(1);

/// The wait before retry number `attempt` (1-based): full jitter, uniform
/// in `[0, min(max, initial × 2^(attempt-1))]`, then at least what the
/// receiver asked for, never more than `max`.
pub fn backoff(
    attempt: u32,
    initial: Duration,
    max: Duration,
    retry_after: Option<Duration>,
    rng: &mut impl Rng,
) -> Duration {
    let exp = initial.saturating_mul(
        1u32.checked_shl(attempt.saturating_sub(1).min(31))
            .unwrap_or(u32::MAX),
    );
    let ceiling = exp.min(max);
    let jittered = Duration::from_millis(rng.random_range(0..=ceiling.as_millis() as u64));
    jittered.max(retry_after.unwrap_or(Duration::ZERO)).min(max)
}

/// Starts the worker: a loop per target and the state loop. The handle
/// ends once every loop has stopped after `shutdown`.
pub fn spawn(notifier: Arc<Notifier>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let owner = format!(
            "{}-{}-{:08x}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "riposte".into()),
            std::process::id(),
            rand::rng().random::<u32>()
        );
        let mut loops = JoinSet::new();
        // The disabled flags first, so a target disabled before a restart
        // is not sent to even once.
        refresh_state(&notifier).await;
        loops.spawn(state_loop(notifier.clone(), shutdown.clone()));
        loops.spawn(flush_loop(notifier.clone(), shutdown.clone()));
        for slot in notifier.slots() {
            loops.spawn(target_loop(
                notifier.clone(),
                slot.clone(),
                owner.clone(),
                shutdown.clone(),
            ));
        }
        while loops.join_next().await.is_some() {}
    })
}

async fn state_loop(notifier: Arc<Notifier>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(STATE_REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        refresh_state(&notifier).await;
    }
}

/// Writes the coalescing windows' updates as they come due. On shutdown
/// nothing is lost: the windows are in the store and a restart flushes them.
async fn flush_loop(notifier: Arc<Notifier>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(FLUSH_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        notifier.flush_due(Utc::now()).await;
    }
}

async fn refresh_state(notifier: &Notifier) {
    let store = notifier.store();
    match store.outbox_counts().await {
        Ok(counts) => {
            for slot in notifier.slots() {
                let pending = counts
                    .iter()
                    .find(|c| c.target == slot.target.name() && c.status == OutboxStatus::Pending)
                    .map_or(0, |c| c.count);
                notifier
                    .metrics()
                    .depth
                    .get_or_create(&NotifyMetrics::target(slot.target.name()))
                    .set(pending);
            }
        }
        Err(e) => tracing::warn!("outbox depth: {e}"),
    }
    match store.outbox_targets().await {
        Ok(states) => {
            for slot in notifier.slots() {
                let disabled = states
                    .iter()
                    .any(|s| s.target == slot.target.name() && s.disabled);
                let was = slot.disabled.swap(disabled, Ordering::SeqCst);
                notifier
                    .metrics()
                    .disabled
                    .get_or_create(&NotifyMetrics::target(slot.target.name()))
                    .set(i64::from(disabled));
                if was && !disabled {
                    tracing::info!(
                        target = slot.target.name(),
                        "notification target enabled again"
                    );
                    slot.wake.notify_one();
                }
            }
        }
        Err(e) => tracing::warn!("outbox target states: {e}"),
    }
}

async fn target_loop(
    notifier: Arc<Notifier>,
    slot: Arc<Slot>,
    owner: String,
    shutdown: CancellationToken,
) {
    let cfg = slot.target.config().clone();
    let poll = Duration::from_millis(notifier.config().poll_interval_ms);
    let claim = notifier
        .config()
        .batch
        .min(cfg.concurrency.saturating_mul(4))
        .max(1);
    // Long enough to send a whole claimed batch: the attempts in flight,
    // and the rate limit's pacing of the rest.
    let pacing = if cfg.rate_limit_per_sec > 0 {
        claim as u64 / u64::from(cfg.rate_limit_per_sec) + 1
    } else {
        0
    };
    let lease = Duration::from_secs(cfg.timeout_secs * 4 + pacing + 10);
    let interval =
        (cfg.rate_limit_per_sec > 0).then(|| Duration::from_secs(1) / cfg.rate_limit_per_sec);
    let permits = Arc::new(Semaphore::new(cfg.concurrency));
    let mut inflight = JoinSet::new();
    let mut next_slot = Instant::now();
    let name = cfg.name.clone();
    'outer: loop {
        while inflight.try_join_next().is_some() {}
        if shutdown.is_cancelled() {
            break;
        }
        let items = if slot.disabled.load(Ordering::SeqCst) {
            Vec::new()
        } else {
            match notifier
                .store()
                .outbox_claim(Some(&name), &owner, lease, claim, Utc::now())
                .await
            {
                Ok(items) => items,
                Err(e) => {
                    tracing::warn!(target = %name, "outbox claim: {e}");
                    Vec::new()
                }
            }
        };
        if items.is_empty() {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = slot.wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
            }
            continue;
        }
        let mut items = items.into_iter();
        while let Some(item) = items.next() {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => None,
                p = permits.clone().acquire_owned() => p.ok(),
            };
            // Checked once the permit is held: the attempt that held it may
            // just have disabled the target.
            let (Some(permit), false) = (permit, slot.disabled.load(Ordering::SeqCst)) else {
                // Hand back what was claimed but not started.
                release(&notifier, std::iter::once(item).chain(items.by_ref())).await;
                continue 'outer;
            };
            if let Some(every) = interval {
                let now = Instant::now();
                if next_slot > now {
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        _ = tokio::time::sleep_until(next_slot) => {}
                    }
                }
                next_slot = next_slot.max(now) + every;
            }
            let notifier = notifier.clone();
            let slot = slot.clone();
            inflight.spawn(async move {
                deliver(&notifier, &slot, item).await;
                drop(permit);
            });
        }
    }
    // Attempts in flight finish (each bounded by the target's timeout), so
    // their outcome is recorded before the process goes.
    let grace = Duration::from_secs(cfg.timeout_secs + 2);
    let _ = tokio::time::timeout(grace, async {
        while inflight.join_next().await.is_some() {}
    })
    .await;
}

/// Gives claimed items back, due now, their attempts unchanged.
async fn release(notifier: &Notifier, items: impl Iterator<Item = OutboxItem>) {
    let now = Utc::now();
    for item in items {
        let last = item.last_error.as_deref().unwrap_or("");
        if let Err(e) = notifier
            .store()
            .outbox_retry(&item.id, item.attempts, now, last, now)
            .await
        {
            tracing::warn!(id = %item.id, "releasing an outbox item: {e}");
        }
    }
}

async fn dead_letter(notifier: &Notifier, target: &str, id: &str, reason: String) {
    notifier
        .metrics()
        .dead
        .get_or_create(&NotifyMetrics::target(target))
        .inc();
    tracing::warn!(id, target, "notification dead-lettered: {reason}");
    if let Err(e) = notifier
        .store()
        .outbox_dead_letter(id, &reason, Utc::now())
        .await
    {
        tracing::warn!(id, "dead-lettering: {e}");
    }
}

fn age(item: &OutboxItem, now: DateTime<Utc>) -> Duration {
    (now - item.created_at).to_std().unwrap_or(Duration::ZERO)
}

async fn deliver(notifier: &Notifier, slot: &Slot, item: OutboxItem) {
    let target = slot.target.name();
    let cfg = slot.target.config();
    let max_age = Duration::from_secs(cfg.max_age_secs);
    let id = item.id.as_str();
    let dead = |reason: String| dead_letter(notifier, target, id, reason);
    let mut n: Notification = match serde_json::from_value(item.payload.clone()) {
        Ok(n) => n,
        Err(e) => return dead(format!("unreadable stored notification: {e}")).await,
    };
    // The only place a usable approval link exists: in the request to the
    // receiver, never in the store.
    if let Some(signer) = notifier.link_signer() {
        signer.sign_notification(&mut n);
    }
    let span = tracing::info_span!("notify", event.id = %n.event.id, id = %item.id, target);
    // Instrument rather than enter: a guard held across `.await` keeps the
    // span entered while this task is parked, so other tasks' log lines on
    // that thread would carry this notification's fields.
    async {
        if age(&item, Utc::now()) > max_age {
            let last = item
                .last_error
                .clone()
                .unwrap_or_else(|| "never attempted".into());
            return dead(format!(
                "not delivered within max_age_secs ({}); last error: {last}",
                cfg.max_age_secs
            ))
            .await;
        }
        // An update of an incident goes to the SOAR's id of it, known once
        // the notification that opened it was delivered.
        let mut reference = None;
        if let Some(c) = n.coalesced.as_ref().filter(|c| c.update > 0) {
            if slot.target.updates_by_reference() {
                match notifier.store().notify_incident(&c.incident).await {
                    Ok(Some(i)) if i.reference.is_some() => reference = i.reference,
                    Ok(Some(i)) if i.opening == Some(OutboxStatus::Pending) => {
                        let later = Utc::now()
                            + chrono::Duration::from_std(OPENING_WAIT)
                                .unwrap_or(chrono::Duration::zero());
                        let why = "waiting for the notification that opens the incident";
                        if let Err(e) = notifier
                            .store()
                            .outbox_retry(&item.id, item.attempts, later, why, Utc::now())
                            .await
                        {
                            tracing::warn!("rescheduling an update: {e}");
                        }
                        return;
                    }
                    // Never opened in the SOAR (dead-lettered) or opened
                    // without an id the answer gave: the update opens one
                    // of its own, with the window's totals.
                    Ok(_) => {}
                    Err(e) => {
                        let outcome = Outcome::Retry {
                            after: None,
                            status: None,
                            reason: format!("reading the incident: {e}"),
                        };
                        return settle(notifier, slot, &item, outcome).await;
                    }
                }
            }
        }
        let (outcome, opened) = slot.target.deliver(&n, reference.as_deref()).await;
        if let (Some(c), Some(r)) = (n.coalesced.as_ref().filter(|c| c.update == 0), opened) {
            // Saved before the delivery is: an update must never find the
            // opening delivered and its reference missing.
            if let Err(e) = notifier.store().notify_set_reference(&c.incident, &r).await {
                tracing::warn!("saving the SOAR's id of the incident: {e}");
            }
        }
        settle(notifier, slot, &item, outcome).await;
    }
    .instrument(span)
    .await
}

/// Records what the receiver answered: delivered, retried later (or dead
/// when that would pass `max_age_secs`), target disabled, or refused.
async fn settle(notifier: &Notifier, slot: &Slot, item: &OutboxItem, outcome: Outcome) {
    let target = slot.target.name();
    let cfg = slot.target.config();
    let label = NotifyMetrics::target(target);
    let m = notifier.metrics();
    let store = notifier.store();
    let max_age = Duration::from_secs(cfg.max_age_secs);
    let id = item.id.as_str();
    let dead = |reason: String| dead_letter(notifier, target, id, reason);
    let now = Utc::now();
    let attempts = item.attempts.saturating_add(1);
    match outcome {
        Outcome::Delivered { .. } | Outcome::Duplicate { .. } => {
            m.delivered.get_or_create(&label).inc();
            m.latency
                .get_or_create(&label)
                .observe(age(item, now).as_secs_f64());
            if let Outcome::Duplicate { detail, .. } = &outcome {
                tracing::info!("the receiver already had it: {detail}");
            }
            if let Err(e) = notifier.mark_delivered(item.id.clone()).await {
                tracing::warn!("marking delivered: {e}");
            }
        }
        Outcome::Retry {
            after,
            status,
            reason,
        } => {
            m.failed.get_or_create(&label).inc();
            let delay = backoff(
                attempts,
                Duration::from_millis(cfg.retry_initial_ms),
                Duration::from_secs(cfg.retry_max_secs),
                after,
                &mut rand::rng(),
            );
            if age(item, now) + delay > max_age {
                dead(format!(
                    "not delivered within max_age_secs ({}); last error: {reason}",
                    cfg.max_age_secs
                ))
                .await;
                return;
            }
            m.retries.get_or_create(&label).inc();
            tracing::debug!(
                attempts,
                ?status,
                delay_ms = delay.as_millis() as u64,
                "delivery failed, will retry: {reason}"
            );
            let at = now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero());
            if let Err(e) = store
                .outbox_retry(&item.id, attempts, at, &reason, now)
                .await
            {
                tracing::warn!("scheduling a retry: {e}");
            }
        }
        Outcome::Disabled { reason } => {
            m.failed.get_or_create(&label).inc();
            slot.disabled.store(true, Ordering::SeqCst);
            m.disabled.get_or_create(&label).set(1);
            tracing::warn!("notification target disabled until re-enabled (POST /v1/outbox/targets/{target}/enable): {reason}");
            if let Err(e) = store.outbox_disable_target(target, &reason, now).await {
                tracing::warn!("disabling the target: {e}");
            }
            // The notification stays pending for when the target is back.
            if let Err(e) = store
                .outbox_retry(&item.id, attempts, now, &reason, now)
                .await
            {
                tracing::warn!("keeping the notification: {e}");
            }
        }
        Outcome::Rejected { status, body } => {
            m.failed.get_or_create(&label).inc();
            dead(format!("refused by the receiver (HTTP {status}): {body}")).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_grows_stays_under_the_cap_and_honours_retry_after() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let initial = Duration::from_millis(100);
        let max = Duration::from_secs(10);
        for attempt in 1..40 {
            let ceiling = (initial * 2u32.saturating_pow(attempt.min(20) - 1)).min(max);
            for _ in 0..20 {
                let d = backoff(attempt, initial, max, None, &mut rng);
                assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
            }
        }
        let d = backoff(1, initial, max, Some(Duration::from_secs(3)), &mut rng);
        assert!(d >= Duration::from_secs(3));
        let d = backoff(1, initial, max, Some(Duration::from_secs(3600)), &mut rng);
        assert_eq!(d, max);
        // Full jitter spreads: not every draw is the ceiling.
        let draws: std::collections::HashSet<u128> = (0..50)
            .map(|_| backoff(5, initial, max, None, &mut rng).as_millis())
            .collect();
        assert!(draws.len() > 10);
    }
}
