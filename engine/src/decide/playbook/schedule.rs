//! Cron schedules: synthetic `event.kind: schedule` events.
//!
//! Each scheduled playbook's next run is computed from *now* (UTC), at start
//! and after every firing, so runs missed while Riposte was down, or while
//! the process was paused, are not fired in a burst: at most one run fires
//! per wake-up, then the schedule moves on from the present.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use riposte_firewall::{EventKind, EventModule, ThreatEvent};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::decide::playbook::metrics::PlaybookLabels;
use crate::decide::playbook::runtime::PlaybookRuntime;

/// Longest sleep between checks, so that a wall-clock jump is noticed.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// The synthetic event a schedule fires for `playbook`.
pub fn schedule_event(playbook: &str, schedule: &str, at: DateTime<Utc>) -> ThreatEvent {
    let original = format!("schedule {playbook} {}", at.to_rfc3339());
    let mut ev = ThreatEvent::new(
        EventKind::Schedule,
        EventModule::Riposte,
        "riposte.schedule",
        at,
        &original,
    );
    ev.payload = Some(serde_json::json!({
        "playbook": playbook,
        "schedule": schedule,
        "scheduled_for": at.to_rfc3339(),
    }));
    ev
}

/// The next run of each scheduled, enabled playbook after `now`; entries
/// whose schedule did not change keep their pending time.
fn plan(
    rt: &PlaybookRuntime,
    previous: &HashMap<String, (String, DateTime<Utc>)>,
    now: DateTime<Utc>,
) -> HashMap<String, (String, DateTime<Utc>)> {
    let mut next = HashMap::new();
    for pb in &rt.current().playbooks {
        let (Some(schedule), true) = (&pb.meta.schedule, pb.meta.enabled) else {
            continue;
        };
        let kept = previous
            .get(&pb.meta.name)
            .filter(|(text, _)| *text == schedule.text)
            .map(|(_, at)| *at);
        let at = kept.or_else(|| schedule.cron.after(&now).next());
        if let Some(at) = at {
            next.insert(pb.meta.name.clone(), (schedule.text.clone(), at));
        }
    }
    next
}

impl PlaybookRuntime {
    /// Fires schedule events into `events` (the pipeline's input) until
    /// `shutdown`.
    pub fn spawn_scheduler(
        self: Arc<Self>,
        events: mpsc::Sender<ThreatEvent>,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut reloads = self.subscribe();
            let mut pending = plan(&self, &HashMap::new(), Utc::now());
            loop {
                let now = Utc::now();
                let wait = pending
                    .values()
                    .map(|(_, at)| (*at - now).to_std().unwrap_or(Duration::ZERO))
                    .min()
                    .unwrap_or(MAX_SLEEP)
                    .min(MAX_SLEEP);
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    changed = reloads.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        pending = plan(&self, &pending, Utc::now());
                        continue;
                    }
                    _ = tokio::time::sleep(wait) => {}
                }
                let now = Utc::now();
                let due: Vec<String> = pending
                    .iter()
                    .filter(|(_, (_, at))| *at <= now)
                    .map(|(name, _)| name.clone())
                    .collect();
                for name in due {
                    let Some((text, at)) = pending.get(&name).cloned() else {
                        continue;
                    };
                    let ev = schedule_event(&name, &text, at);
                    self.metrics
                        .schedule_runs
                        .get_or_create(&PlaybookLabels {
                            playbook: name.clone(),
                        })
                        .inc();
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        sent = events.send(ev) => if sent.is_err() { return },
                    }
                    // From now, not from `at`: missed runs are skipped.
                    let next = self
                        .current()
                        .playbooks
                        .iter()
                        .find(|p| p.meta.name == name)
                        .and_then(|p| p.meta.schedule.as_ref())
                        .and_then(|s| s.cron.after(&Utc::now()).next());
                    match next {
                        Some(next) => {
                            pending.insert(name, (text, next));
                        }
                        None => {
                            pending.remove(&name);
                        }
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::playbook::config::PlaybookConfig;
    use crate::decide::playbook::meta::Schedule;
    use crate::decide::playbook::runtime::testing::runtime;

    #[tokio::test]
    async fn a_scheduled_playbook_fires_into_the_pipeline() {
        let (_dir, rt) = runtime(
            &[(
                "tick.rhai",
                "// schedule: * * * * * *\nlog(\"info\", `tick ${event.payload.scheduled_for}`);\n",
            )],
            PlaybookConfig::default(),
        );
        let rt = Arc::new(rt);
        let (tx, mut rx) = mpsc::channel(4);
        let shutdown = CancellationToken::new();
        let task = rt.clone().spawn_scheduler(tx, shutdown.clone());
        let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("a schedule event within 5 s")
            .expect("the channel is open");
        assert_eq!(ev.kind, EventKind::Schedule);
        let decisions = rt.evaluate(&ev);
        assert_eq!(decisions.len(), 1);
        assert_eq!(decisions[0].playbook, "tick");
        assert_eq!(decisions[0].intents.len(), 1);
        shutdown.cancel();
        task.await.expect("scheduler stops on shutdown");
    }

    #[test]
    fn schedule_events_name_their_playbook_and_differ_per_run() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let a = schedule_event("sweep", "@hourly", at);
        let b = schedule_event("sweep", "@hourly", at + chrono::Duration::hours(1));
        assert_eq!(a.kind, EventKind::Schedule);
        assert_eq!(
            a.payload.as_ref().and_then(|p| p["playbook"].as_str()),
            Some("sweep")
        );
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn the_next_run_after_downtime_is_in_the_future_not_a_backlog() {
        let s = Schedule::parse("*/5 * * * *").expect("valid");
        let now = DateTime::from_timestamp(1_700_000_123, 0).unwrap_or_default();
        let next = s.cron.after(&now).next().expect("a next run");
        assert!(next > now && next - now <= chrono::Duration::minutes(5));
    }
}
