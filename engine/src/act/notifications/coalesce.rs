//! Coalescing windows: notifications about one subject within a window
//! become one incident.
//!
//! The subject is who the notification is about (the pod, else the address
//! the playbook singled out, else the event's addresses) plus its title
//! (which names the playbook when the playbook gave none), per target. The
//! first notification of a subject opens a window and goes out at once; the
//! later ones are counted into the window (count, first and last seen, top
//! sources, threat names, playbooks, a sample of event ids) and go out as
//! updates of that incident, at most once per flush interval and once more
//! when the window closes. Guardrail refusals are summarized: a window per
//! playbook whose first notification is the summary sent at the first flush.
//!
//! This module is the pure logic, time passed in, so its edges are tested
//! without a clock; [`super::Notifier`] persists each window's state with
//! every change (the store's `notify_windows`), so a restart inside a
//! window goes on counting into the incident the SOAR already has.
//!
//! Times: windows run on the wall clock at which notifications are written
//! (`now`), since their updates are flushed on it. A clock that steps
//! forward past a window's end closes it (its last update goes out) and the
//! next notification opens another; a step back inside a window stays in
//! it; a step back by more than a window closes it and opens another.
//! First and last seen are the decisions' own times, whatever order they
//! come in. No step loses a count.

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use riposte_connectors::soar::{Coalesced, Notification, NotificationKind, Tally};
use serde::{Deserialize, Serialize};

/// Distinct sources, threat names or reasons a window tallies; beyond,
/// events still count but new values are tallied as `other`.
const MAX_TALLIED: usize = 256;
/// Event ids one notification carries as its sample.
pub const SAMPLE: usize = 20;
/// Top sources, threat names and reasons one notification lists.
const TOP: usize = 5;
/// How long an event is remembered for the per-event merge (another
/// playbook's notification of the same event joins the first one's).
const EVENT_MEMORY_SECS: i64 = 300;
/// Events remembered for the per-event merge at most.
const EVENT_MEMORY_MAX: usize = 100_000;

/// A window's settings, from its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub window: Duration,
    pub flush: Duration,
}

/// One decision's notification, as a window counts it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub event_id: String,
    /// The decision's time.
    pub at: DateTime<Utc>,
    pub source: Option<String>,
    pub threat: Option<String>,
    pub playbook: Option<String>,
    /// For a refusal: the action and why (its code, else its reason).
    pub reason: Option<String>,
}

impl Seen {
    pub fn of(n: &Notification) -> Seen {
        let reason = (n.kind == NotificationKind::ActionRefused)
            .then(|| n.actions.first())
            .flatten()
            .map(|a| {
                let why = a.reason.as_deref().unwrap_or("refused");
                let why: String = why.chars().take(80).collect();
                format!("{} {why}", a.action)
            });
        Seen {
            event_id: n.event.id.clone(),
            at: n.occurred,
            source: n.event.source_ip.map(|ip| ip.to_string()),
            threat: n.event.threat_name.clone(),
            playbook: n.playbook.clone(),
            reason,
        }
    }
}

/// The subject of a notification: kind, who, what.
pub fn subject(n: &Notification) -> String {
    let kind = n.kind.as_str();
    if n.kind == NotificationKind::ActionRefused {
        // Summarized per playbook, whoever was spared.
        return format!("{kind}|{}", n.playbook.as_deref().unwrap_or(""));
    }
    let who = n
        .pod
        .as_ref()
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .or_else(|| {
            n.indicators
                .iter()
                .find(|i| !matches!(i.role.as_deref(), Some("source" | "destination")))
                .map(|i| i.value.clone())
        })
        .or_else(|| n.event.destination_ip.map(|ip| ip.to_string()))
        .or_else(|| n.event.source_ip.map(|ip| ip.to_string()))
        .unwrap_or_default();
    format!("{kind}|{who}|{}", n.title)
}

/// Whether a notification is coalesced at all: one carrying approval
/// links (an approval request, or a `notify` of a decision that asks for
/// approval) goes out on its own, or a human would never see its links.
pub fn coalesces(n: &Notification) -> bool {
    n.kind != NotificationKind::ApprovalRequested && n.approvals.is_empty()
}

/// Whether the first notification of a window goes out at once (a
/// refusal's window is summarized at its first flush instead).
pub fn immediate(kind: NotificationKind) -> bool {
    kind != NotificationKind::ActionRefused
}

/// One subject's window: everything its notifications say. Stored whole
/// (as JSON) with every change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// The incident key: the id of the notification that opens it.
    pub id: String,
    pub target: String,
    pub subject: String,
    /// False for a summary (refusals): nothing goes out at once.
    pub immediate: bool,
    /// When it opened and closes, on the clock notifications are written by.
    pub opened: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Events counted.
    pub count: u64,
    /// Events the SOAR has been told of (by notifications written).
    pub told: u64,
    /// Notifications written for it: the opening one is number 0.
    pub sent: u32,
    pub last_flush: DateTime<Utc>,
    pub sources: BTreeMap<String, u64>,
    pub threats: BTreeMap<String, u64>,
    pub reasons: BTreeMap<String, u64>,
    pub playbooks: Vec<String>,
    /// Event ids counted since the last notification (bounded).
    pub sample: Vec<String>,
    /// Something changed that no notification said yet, besides counts (a
    /// playbook joined by the per-event merge).
    pub dirty: bool,
    /// Every change bumps it: a store write only replaces an older one.
    pub rev: u64,
    pub closed: bool,
    /// The notification that opened it: updates are built from it.
    pub template: Notification,
}

fn bump(map: &mut BTreeMap<String, u64>, value: Option<&str>) {
    let Some(v) = value else { return };
    if let Some(n) = map.get_mut(v) {
        *n += 1;
    } else if map.len() < MAX_TALLIED {
        map.insert(v.to_string(), 1);
    } else {
        *map.entry("other".to_string()).or_insert(0) += 1;
    }
}

fn top(map: &BTreeMap<String, u64>, n: usize) -> Vec<Tally> {
    let mut all: Vec<Tally> = map
        .iter()
        .map(|(value, count)| Tally {
            value: value.clone(),
            count: *count,
        })
        .collect();
    // Most first; ties in name order, so a render is stable.
    all.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    all.truncate(n);
    all
}

impl Window {
    fn open(
        target: &str,
        subject: String,
        n: &Notification,
        now: DateTime<Utc>,
        s: Settings,
    ) -> Window {
        let mut w = Window {
            id: n.id.clone(),
            target: target.to_string(),
            subject,
            immediate: immediate(n.kind),
            opened: now,
            end: now + s.window,
            first_seen: n.occurred,
            last_seen: n.occurred,
            count: 0,
            told: 0,
            sent: 0,
            last_flush: now,
            sources: BTreeMap::new(),
            threats: BTreeMap::new(),
            reasons: BTreeMap::new(),
            playbooks: Vec::new(),
            sample: Vec::new(),
            dirty: false,
            rev: 0,
            closed: false,
            template: n.clone(),
        };
        if !w.immediate {
            w.template.title = format!(
                "Guardrail refusals: {}",
                n.playbook.as_deref().unwrap_or("Riposte")
            );
        }
        w.count_in(&Seen::of(n));
        w
    }

    fn count_in(&mut self, seen: &Seen) {
        self.count += 1;
        self.rev += 1;
        self.first_seen = self.first_seen.min(seen.at);
        self.last_seen = self.last_seen.max(seen.at);
        bump(&mut self.sources, seen.source.as_deref());
        bump(&mut self.threats, seen.threat.as_deref());
        bump(&mut self.reasons, seen.reason.as_deref());
        if let Some(pb) = &seen.playbook {
            self.join(pb);
        }
        if self.sample.len() < SAMPLE {
            self.sample.push(seen.event_id.clone());
        }
    }

    fn join(&mut self, playbook: &str) -> bool {
        if self.playbooks.iter().any(|p| p == playbook) {
            return false;
        }
        self.playbooks.push(playbook.to_string());
        self.rev += 1;
        true
    }

    /// Whether a notification written at `now` belongs to this window.
    pub fn holds(&self, now: DateTime<Utc>, s: Settings) -> bool {
        !self.closed && now < self.end && now > self.opened - s.window
    }

    /// The window's notification number `self.sent` as of `now` (the
    /// opening one, or an update), and the window as told.
    fn notification(&mut self, now: DateTime<Utc>, last: bool) -> Notification {
        let update = self.sent;
        let mut n = self.template.clone();
        if update > 0 {
            n.id = format!("{}.u{update}", self.id);
            n.occurred = now;
        }
        n.coalesced = Some(self.coalesced(update, last));
        self.sent += 1;
        self.told = self.count;
        self.last_flush = now;
        self.sample.clear();
        self.dirty = false;
        self.rev += 1;
        n
    }

    fn coalesced(&self, update: u32, last: bool) -> Coalesced {
        Coalesced {
            incident: self.id.clone(),
            update,
            count: self.count,
            new: self.count - self.told,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            window_end: self.end,
            top_sources: top(&self.sources, TOP),
            threat_names: top(&self.threats, TOP),
            playbooks: self.playbooks.clone(),
            event_ids: self.sample.clone(),
            reasons: top(&self.reasons, TOP * 2),
            last,
        }
    }

    /// The opening notification as it would go out now: for the
    /// per-event merge, which rewrites it while still unsent.
    pub fn opening(&self) -> Notification {
        let mut n = self.template.clone();
        n.coalesced = Some(self.coalesced(0, false));
        n
    }
}

/// What [`Windows::observe`] did with a notification. Each carries the
/// windows to store (their new state) and the notifications to write.
#[derive(Debug, Default, PartialEq)]
pub struct Observed {
    /// Windows changed, to store.
    pub windows: Vec<Window>,
    /// Notifications to write to the outbox now.
    pub notify: Vec<Notification>,
    /// An unsent opening notification to rewrite (the per-event merge).
    pub amend: Option<Notification>,
    /// The incident the notification was counted in.
    pub incident: String,
    /// Whether it opened the incident (else it was counted into it).
    pub opened: bool,
    /// The first event counted into an incident after its opening one:
    /// the moment for the window's one log line.
    pub first_coalesced: bool,
}

/// Every open window of the targets, by target and subject, and the recent
/// events for the per-event merge.
#[derive(Debug, Default)]
pub struct Windows {
    pub loaded: bool,
    by_subject: HashMap<(String, String), Window>,
    /// (target, event id) → the subject whose window counted it.
    events: HashMap<(String, String), String>,
    event_order: VecDeque<(DateTime<Utc>, (String, String))>,
}

impl Windows {
    /// Takes back windows read from the store after a restart.
    pub fn restore(&mut self, windows: impl IntoIterator<Item = Window>) {
        for w in windows {
            let key = (w.target.clone(), w.subject.clone());
            match self.by_subject.get(&key) {
                Some(have) if have.opened >= w.opened => {}
                _ => {
                    self.by_subject.insert(key, w);
                }
            }
        }
        self.loaded = true;
    }

    /// Forgets every window: the store is read again on next use (after a
    /// failed write, memory may be ahead of it).
    pub fn reset(&mut self) {
        self.by_subject.clear();
        self.events.clear();
        self.event_order.clear();
        self.loaded = false;
    }

    /// Open windows per target.
    pub fn open_by_target(&self) -> BTreeMap<String, i64> {
        let mut out = BTreeMap::new();
        for w in self.by_subject.values() {
            *out.entry(w.target.clone()).or_insert(0) += 1;
        }
        out
    }

    fn remember(&mut self, target: &str, event: &str, subject: &str, now: DateTime<Utc>) {
        let key = (target.to_string(), event.to_string());
        if self
            .events
            .insert(key.clone(), subject.to_string())
            .is_none()
        {
            self.event_order.push_back((now, key));
        }
        while let Some((at, _)) = self.event_order.front() {
            let stale = *at < now - Duration::seconds(EVENT_MEMORY_SECS)
                || self.event_order.len() > EVENT_MEMORY_MAX;
            if !stale {
                break;
            }
            if let Some((_, k)) = self.event_order.pop_front() {
                self.events.remove(&k);
            }
        }
    }

    /// Counts notification `n` for `target` written at `now`.
    pub fn observe(
        &mut self,
        target: &str,
        n: &Notification,
        now: DateTime<Utc>,
        s: Settings,
    ) -> Observed {
        let mut out = Observed::default();
        let subject = subject(n);
        // Per event: another playbook's notification of an event this
        // target was already told of joins that incident, uncounted.
        if let Some(known) = self.events.get(&(target.to_string(), n.event.id.clone())) {
            if let Some(w) = self
                .by_subject
                .get_mut(&(target.to_string(), known.clone()))
                .filter(|w| w.holds(now, s))
            {
                out.incident = w.id.clone();
                if let Some(pb) = &n.playbook {
                    if w.join(pb) {
                        if w.immediate && w.sent == 1 && w.count == 1 {
                            // Possibly still unsent: rewritten if so (else
                            // see `amend_failed`).
                            out.amend = Some(w.opening());
                        } else {
                            w.dirty = true;
                        }
                        out.windows.push(w.clone());
                    }
                }
                return out;
            }
        }
        let key = (target.to_string(), subject.clone());
        let mut closed = None;
        if let Some(w) = self.by_subject.get_mut(&key) {
            if w.holds(now, s) {
                w.count_in(&Seen::of(n));
                out.incident = w.id.clone();
                out.first_coalesced = w.count == 2;
                out.windows.push(w.clone());
                self.remember(target, &n.event.id, &subject, now);
                return out;
            }
            // Its time is over (or the clock went back by more than a
            // window): it closes now, with its last update.
            closed = self.by_subject.remove(&key);
        }
        if let Some(mut w) = closed {
            if let Some(last) = close(&mut w, now) {
                out.notify.push(last);
            }
            out.windows.push(w);
        }
        let mut w = Window::open(target, subject.clone(), n, now, s);
        if w.immediate {
            out.notify.push(w.notification(now, false));
        }
        out.incident = w.id.clone();
        out.opened = true;
        out.windows.push(w.clone());
        self.by_subject.insert(key, w);
        self.remember(target, &n.event.id, &subject, now);
        out
    }

    /// The merge's rewrite of the opening notification of `incident` came
    /// too late (it was on its way): the joined playbook goes in the next
    /// update. Answers the window to store.
    pub fn amend_failed(&mut self, target: &str, incident: &str) -> Option<Window> {
        let w = self
            .by_subject
            .values_mut()
            .find(|w| w.target == target && w.id == incident)?;
        w.dirty = true;
        w.rev += 1;
        Some(w.clone())
    }

    /// Flushes what is due at `now`: an update of each window with events
    /// (or a joined playbook) not told yet whose flush interval has passed,
    /// and the last update of each window that closed. Answers the
    /// notifications to write and the windows to store.
    pub fn due(
        &mut self,
        now: DateTime<Utc>,
        settings: impl Fn(&str) -> Settings,
    ) -> (Vec<(String, Notification)>, Vec<Window>) {
        let mut notify = Vec::new();
        let mut windows = Vec::new();
        let mut gone = Vec::new();
        for (key, w) in self.by_subject.iter_mut() {
            let s = settings(&w.target);
            // Past its end, or the clock went back by more than a window.
            if now >= w.end || now <= w.opened - s.window {
                if let Some(last) = close(w, now) {
                    notify.push((w.target.clone(), last));
                }
                windows.push(w.clone());
                gone.push(key.clone());
                continue;
            }
            let pending = w.count > w.told || w.dirty;
            if pending && now >= w.last_flush + s.flush {
                notify.push((w.target.clone(), w.notification(now, false)));
                windows.push(w.clone());
            }
        }
        for key in gone {
            self.by_subject.remove(&key);
        }
        (notify, windows)
    }
}

/// Closes `w`: its last update when anything was not told yet.
fn close(w: &mut Window, now: DateTime<Utc>) -> Option<Notification> {
    let pending = w.count > w.told || w.dirty;
    let last = pending.then(|| w.notification(now, true));
    w.closed = true;
    w.rev += 1;
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use riposte_connectors::soar::{EventInfo, PodInfo, Severity};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
            .single()
            .expect("valid")
    }

    fn settings() -> Settings {
        Settings {
            window: Duration::seconds(600),
            flush: Duration::seconds(60),
        }
    }

    fn n(event: &str, pod: &str, at: DateTime<Utc>) -> Notification {
        Notification {
            id: format!("{event}.notify"),
            kind: NotificationKind::Notify,
            title: "C2 traffic to 203.0.113.9".into(),
            severity: Severity::Critical,
            occurred: at,
            event: EventInfo {
                id: event.into(),
                kind: "alert".into(),
                dataset: "panos.threat".into(),
                threat_name: Some("Beacon".into()),
                source_ip: Some("10.244.1.17".parse().expect("ip")),
                ..EventInfo::default()
            },
            pod: Some(PodInfo {
                namespace: "shop".into(),
                name: pod.into(),
            }),
            playbook: Some("c2-quarantine".into()),
            actions: Vec::new(),
            fields: Default::default(),
            indicators: Vec::new(),
            links: Vec::new(),
            approvals: Vec::new(),
            coalesced: None,
        }
    }

    fn due(w: &mut Windows, now: DateTime<Utc>) -> (Vec<Notification>, Vec<Window>) {
        let (sent, windows) = w.due(now, |_| settings());
        (sent.into_iter().map(|(_, n)| n).collect(), windows)
    }

    fn secs(s: i64) -> Duration {
        Duration::seconds(s)
    }

    /// Sums what the SOAR is told: the last count each incident showed.
    fn told(sent: &[Notification]) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for n in sent {
            let c = n.coalesced.as_ref().expect("coalesced");
            let e = out.entry(c.incident.clone()).or_insert(0);
            *e = (*e).max(c.count);
        }
        out
    }

    #[test]
    fn the_first_goes_at_once_the_rest_in_updates_at_most_once_per_flush() {
        let mut w = Windows::default();
        let mut sent = Vec::new();
        let o = w.observe("soar", &n("e0", "a", t0()), t0(), settings());
        assert!(o.opened);
        assert_eq!(o.notify.len(), 1, "the first at once");
        sent.extend(o.notify);
        for i in 1..1000 {
            let at = t0() + Duration::milliseconds(i * 100);
            let o = w.observe("soar", &n(&format!("e{i}"), "a", at), at, settings());
            assert!(o.notify.is_empty() && !o.opened);
            assert_eq!(o.first_coalesced, i == 1);
            // The flusher runs every second.
            if i % 10 == 0 {
                sent.extend(due(&mut w, at).0);
            }
        }
        // 100 s of events: updates at 60 s and none before.
        assert_eq!(sent.len(), 2, "{sent:#?}");
        let u = sent[1].coalesced.as_ref().expect("coalesced");
        assert_eq!((u.update, u.count, u.new), (1, 601, 600));
        assert_eq!(sent[1].id, "e0.notify.u1");
        assert_eq!(u.event_ids.len(), SAMPLE);
        assert_eq!(u.top_sources[0].value, "10.244.1.17");
        // The window closes: the rest in a last update.
        let (last, stored) = due(&mut w, t0() + secs(600));
        assert_eq!(last.len(), 1);
        assert!(stored[0].closed);
        sent.extend(last);
        assert_eq!(
            told(&sent).get("e0.notify"),
            Some(&1000),
            "every event counted"
        );
        assert!(sent[2].coalesced.as_ref().is_some_and(|c| c.last));
        assert!(due(&mut w, t0() + secs(700)).0.is_empty());
    }

    #[test]
    fn the_last_event_of_a_window_is_in_it_and_the_next_opens_another() {
        let mut w = Windows::default();
        w.observe("soar", &n("first", "a", t0()), t0(), settings());
        let last_moment = t0() + secs(600) - Duration::microseconds(1);
        let o = w.observe(
            "soar",
            &n("last", "a", last_moment),
            last_moment,
            settings(),
        );
        assert_eq!((o.incident.as_str(), o.opened), ("first.notify", false));
        let end = t0() + secs(600);
        let o = w.observe("soar", &n("next", "a", end), end, settings());
        assert!(o.opened, "at the end a new incident opens");
        assert_eq!(o.incident, "next.notify");
        // The old one's last update went out with it, counting `last`.
        assert_eq!(o.notify.len(), 2);
        let closing = o.notify[0].coalesced.as_ref().expect("coalesced");
        assert_eq!(
            (closing.incident.as_str(), closing.count, closing.last),
            ("first.notify", 2, true)
        );
        assert!(o.windows[0].closed);
    }

    #[test]
    fn a_restart_inside_a_window_goes_on_counting_in_the_same_incident() {
        let mut before = Windows::default();
        let o = before.observe("soar", &n("e0", "a", t0()), t0(), settings());
        let o2 = before.observe(
            "soar",
            &n("e1", "a", t0() + secs(5)),
            t0() + secs(5),
            settings(),
        );
        // What the store holds: the newest state of each window, as JSON.
        let stored: Vec<Window> = o2
            .windows
            .iter()
            .map(|w| serde_json::from_value(serde_json::to_value(w).expect("json")).expect("back"))
            .collect();
        assert_eq!(stored[0].count, 2);
        let mut after = Windows::default();
        after.restore(stored);
        let at = t0() + secs(30);
        let o3 = after.observe("soar", &n("e2", "a", at), at, settings());
        assert!(!o3.opened, "no second incident");
        assert_eq!(o3.incident, o.incident);
        let (sent, _) = due(&mut after, t0() + secs(61));
        let c = sent[0].coalesced.as_ref().expect("coalesced");
        assert_eq!((c.update, c.count, c.new), (1, 3, 2));
    }

    #[test]
    fn clock_steps_never_lose_a_count() {
        let mut w = Windows::default();
        let mut sent = Vec::new();
        let mut feed = |w: &mut Windows, ev: &str, now: DateTime<Utc>| {
            let o = w.observe("soar", &n(ev, "a", now), now, settings());
            sent.extend(o.notify.iter().cloned());
            o
        };
        feed(&mut w, "a", t0());
        // A small step back: still this window.
        let o = feed(&mut w, "b", t0() - secs(5));
        assert!(!o.opened);
        assert_eq!(
            o.windows[0].first_seen,
            t0() - secs(5),
            "first seen moved back"
        );
        // A jump forward past the end: a new incident, the old one closed.
        let o = feed(&mut w, "c", t0() + secs(3_600));
        assert!(o.opened);
        // Back again by more than a window: another one.
        let o = feed(&mut w, "d", t0() + secs(10));
        assert!(o.opened);
        // The flusher, on a clock far ahead, closes what is open.
        sent.extend(due(&mut w, t0() + secs(90_000)).0);
        let total: u64 = told(&sent).values().sum();
        assert_eq!(total, 4, "every event counted once: {:#?}", told(&sent));
        // A flusher on a clock that went back by more than a window closes
        // the window too, rather than keeping it open for ever.
        let mut w = Windows::default();
        w.observe("soar", &n("x", "a", t0()), t0(), settings());
        w.observe("soar", &n("y", "a", t0()), t0() + secs(1), settings());
        let (last, stored) = due(&mut w, t0() - secs(700));
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].coalesced.as_ref().map(|c| c.count), Some(2));
        assert!(stored[0].closed);
    }

    #[test]
    fn notifications_with_approval_links_are_never_coalesced() {
        let mut with_links = n("e0", "a", t0());
        assert!(coalesces(&with_links));
        with_links.approvals = vec![riposte_connectors::soar::ApprovalRequest {
            id: "ap-1".into(),
            action: "quarantine".into(),
            summary: "shop/a for 4h".into(),
            expires_at: t0(),
            on_timeout: "drop".into(),
            approve_url: "https://r.example/a".into(),
            deny_url: "https://r.example/d".into(),
            approvers: Vec::new(),
            reason: None,
        }];
        assert!(!coalesces(&with_links));
    }

    #[test]
    fn subjects_are_per_target_pod_and_title() {
        let mut w = Windows::default();
        assert!(
            w.observe("soar", &n("e0", "a", t0()), t0(), settings())
                .opened
        );
        assert!(
            w.observe("slack", &n("e1", "a", t0()), t0(), settings())
                .opened
        );
        assert!(
            w.observe("soar", &n("e2", "b", t0()), t0(), settings())
                .opened
        );
        let mut other = n("e3", "a", t0());
        other.title = "Something else".into();
        assert!(w.observe("soar", &other, t0(), settings()).opened);
        assert!(
            !w.observe("soar", &n("e4", "a", t0()), t0(), settings())
                .opened
        );
        assert_eq!(w.open_by_target().get("soar"), Some(&3));
    }

    #[test]
    fn a_second_playbook_on_the_same_event_joins_the_first_ones_notification() {
        let mut w = Windows::default();
        w.observe("soar", &n("e0", "a", t0()), t0(), settings());
        let mut second = n("e0", "a", t0());
        second.id = "e0.other".into();
        second.title = "Critical threat".into();
        second.playbook = Some("notify-all-critical".into());
        let o = w.observe("soar", &second, t0(), settings());
        assert!(!o.opened);
        assert_eq!(o.incident, "e0.notify");
        let amended = o.amend.expect("the opening rewritten");
        assert_eq!(amended.id, "e0.notify");
        let c = amended.coalesced.expect("coalesced");
        assert_eq!(c.playbooks, ["c2-quarantine", "notify-all-critical"]);
        assert_eq!(c.count, 1, "one event");
        // The same event again from the same playbook (a redelivery): nothing.
        let o = w.observe("soar", &second, t0(), settings());
        assert!(o.windows.is_empty() && o.notify.is_empty());
        assert!(
            due(&mut w, t0() + secs(60)).0.is_empty(),
            "nothing more to say"
        );
        // Had the rewrite come too late, the next update names both.
        assert!(w.amend_failed("soar", "e0.notify").is_some_and(|w| w.dirty));
        let (sent, _) = due(&mut w, t0() + secs(61));
        assert_eq!(sent.len(), 1);
        assert_eq!(
            sent[0].coalesced.as_ref().map(|c| c.playbooks.len()),
            Some(2)
        );
    }

    #[test]
    fn refusals_are_summarized_per_window_never_sent_one_by_one() {
        let mut w = Windows::default();
        let mut sent = Vec::new();
        for i in 0..500 {
            let mut r = n(&format!("r{i}"), &format!("pod{i}"), t0());
            r.kind = NotificationKind::ActionRefused;
            r.id = format!("r{i}.refused.soar");
            r.title = format!("c2-quarantine quarantine refused: shop/pod{i}");
            r.actions = vec![riposte_connectors::soar::ActionInfo {
                action: "quarantine".into(),
                target: Some(format!("shop/pod{i}")),
                status: "refused".into(),
                reason: Some(
                    if i % 5 == 0 {
                        "rate limit"
                    } else {
                        "protected namespace"
                    }
                    .into(),
                ),
            }];
            let at = t0() + Duration::milliseconds(i * 10);
            let o = w.observe("soar", &r, at, settings());
            assert!(o.notify.is_empty(), "never one by one");
            assert_eq!(o.opened, i == 0);
        }
        sent.extend(due(&mut w, t0() + secs(60)).0);
        assert_eq!(sent.len(), 1, "one summary");
        let s = &sent[0];
        assert_eq!(s.id, "r0.refused.soar", "the summary opens the incident");
        assert_eq!(s.title, "Guardrail refusals: c2-quarantine");
        let c = s.coalesced.as_ref().expect("coalesced");
        assert_eq!((c.update, c.count), (0, 500));
        assert_eq!(
            c.reasons,
            [
                Tally {
                    value: "quarantine protected namespace".into(),
                    count: 400
                },
                Tally {
                    value: "quarantine rate limit".into(),
                    count: 100
                },
            ]
        );
        // Nothing new: nothing more, not even at the end.
        assert!(due(&mut w, t0() + secs(600)).0.is_empty());
    }
}
