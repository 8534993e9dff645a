//! `GET /v1/decisions`: the most recent decisions, newest first, with
//! identical ones counted in one entry as the audit trail counts them.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;

use super::wire::{DecisionEntry, DecisionsQuery};
use super::{ApiError, AppState};
use crate::auth::Scope;
use crate::decide::decision::{Decision, DecisionFilter};
use crate::store::audit::coalesce_key;

pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<DecisionsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<DecisionEntry>>, ApiError> {
    state.authorize(&headers, Scope::Read)?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    // The event id picks the entry the event was counted in, not the
    // event's decision alone: the other filters pick the decisions.
    let filter = DecisionFilter {
        playbook: q.playbook,
        event_id: None,
        action: q.action,
        outcome: q.outcome,
        mode: q.mode,
    };
    let limit = q.limit.unwrap_or(100).min(1000);
    let config = state.store.config();
    let window_us = i64::try_from(config.coalesce_window_secs)
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000);
    let held = state.decisions.snapshot();
    let decisions = held.iter().filter(|d| filter.matches(d));
    let entries = coalesce(decisions, window_us, config.coalesce_sample);
    Ok(Json(
        entries
            .into_iter()
            .rev()
            .filter(|g| q.event_id.as_ref().is_none_or(|id| g.has(id)))
            .take(limit)
            .map(Group::entry)
            .collect(),
    ))
}

/// Identical decisions counted together, as they are being grouped.
struct Group<'a> {
    first: &'a Decision,
    count: u64,
    last_at: chrono::DateTime<chrono::Utc>,
    sample: Vec<String>,
    /// Every event id counted (only the event filter reads them).
    events: Vec<&'a str>,
    /// Where the window of the first decision ends (microseconds).
    end: i64,
}

impl Group<'_> {
    fn has(&self, event_id: &str) -> bool {
        self.events.contains(&event_id)
    }

    fn entry(self) -> DecisionEntry {
        let alone = self.count == 1;
        DecisionEntry {
            decision: self.first.clone(),
            count: self.count,
            last_at: (!alone).then_some(self.last_at),
            sample: if alone { Vec::new() } else { self.sample },
        }
    }
}

/// Groups `decisions` (oldest first) as the audit trail does: a decision
/// joins the open group of its coalesce key when it falls within the
/// window of the group's first, else opens one. Groups come out in the
/// order of their last decision, oldest first.
fn coalesce<'a>(
    decisions: impl Iterator<Item = &'a Arc<Decision>>,
    window_us: i64,
    sample_max: usize,
) -> Vec<Group<'a>> {
    let mut groups: Vec<Option<Group<'a>>> = Vec::new();
    // Per key: the open group's index; per group: its last decision's
    // position, which orders the answer.
    let mut open: HashMap<i64, usize> = HashMap::new();
    let mut last_seen: Vec<(usize, usize)> = Vec::new();
    for (pos, d) in decisions.enumerate() {
        let d: &'a Decision = d;
        let at = d.at.timestamp_micros();
        let key = coalesce_key(d);
        let joined = open.get(&key).copied().filter(|&i| {
            window_us > 0
                && groups[i].as_ref().is_some_and(|g| {
                    at < g.end && at > g.first.at.timestamp_micros().saturating_sub(window_us)
                })
        });
        match joined.and_then(|i| groups[i].as_mut().map(|g| (i, g))) {
            Some((i, g)) => {
                g.count += 1;
                g.last_at = g.last_at.max(d.at);
                if g.sample.len() < sample_max {
                    g.sample.push(d.event_id.clone());
                }
                g.events.push(&d.event_id);
                last_seen.push((pos, i));
            }
            None => {
                let i = groups.len();
                groups.push(Some(Group {
                    first: d,
                    count: 1,
                    last_at: d.at,
                    sample: vec![d.event_id.clone()],
                    events: vec![&d.event_id],
                    end: at.saturating_add(window_us),
                }));
                open.insert(key, i);
                last_seen.push((pos, i));
            }
        }
    }
    // A group's place is that of its last decision.
    let mut last: HashMap<usize, usize> = HashMap::new();
    for (pos, i) in last_seen {
        last.insert(i, pos);
    }
    let mut order: Vec<(usize, usize)> = last.into_iter().map(|(i, pos)| (pos, i)).collect();
    order.sort_unstable();
    order
        .into_iter()
        .filter_map(|(_, i)| groups[i].take())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::decision::{EventSummary, Mode, Outcome, Timings};
    use crate::decide::intent::{Action, Intent, Target, Ttl};

    fn decision(event: &str, pod: &str, secs: i64) -> Arc<Decision> {
        let action = Action::Quarantine {
            target: Target::pod("shop", pod).expect("valid"),
            ttl: Ttl::parse("4h").expect("valid"),
            reason: None,
        };
        Arc::new(Decision {
            event_id: event.into(),
            event: EventSummary::default(),
            playbook: "c2".into(),
            mode: Mode::Enforce,
            intents: vec![Intent::new(event, "c2", action)],
            outcome: Outcome::Applied,
            timings: Timings::default(),
            at: chrono::DateTime::from_timestamp(1_700_000_000 + secs, 0).expect("valid"),
            actions: Vec::new(),
        })
    }

    #[test]
    fn identical_decisions_in_a_window_are_one_entry_with_a_count() {
        let held = [
            decision("a1", "a", 0),
            decision("b1", "b", 1),
            decision("a2", "a", 2),
            decision("a3", "a", 3),
            // The window (60 s) of a1 has closed: a new entry.
            decision("a4", "a", 60),
        ];
        let groups = coalesce(held.iter(), 60_000_000, 2);
        let got: Vec<(String, u64, Vec<String>)> = groups
            .into_iter()
            .map(Group::entry)
            .map(|e| (e.decision.event_id, e.count, e.sample))
            .collect();
        assert_eq!(
            got,
            vec![
                ("b1".into(), 1, vec![]),
                ("a1".into(), 3, vec!["a1".into(), "a2".into()]),
                ("a4".into(), 1, vec![]),
            ]
        );
    }

    #[test]
    fn a_zero_window_keeps_every_decision_alone() {
        let held = [decision("a1", "a", 0), decision("a2", "a", 0)];
        let groups = coalesce(held.iter(), 0, 8);
        assert_eq!(groups.len(), 2);
        assert!(groups.iter().all(|g| g.count == 1));
    }
}
