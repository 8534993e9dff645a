//! A budget for the log lines an event makes.
//!
//! Every decision and every finished action has a line at `info`: in a
//! quiet hour that is the story of each alert, in a storm tens of
//! thousands of lines a second, which buries everything else and costs a
//! formatter and a write per line. So each kind of line has a budget per
//! key (the playbook): the first [`LINES`] of a [`WINDOW`] are logged at
//! their level, the rest at `debug` only, and the next line let through
//! says how many were left out (`left_out`). Nothing is lost from the
//! record: the audit trail and the metrics count every one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lines let through per key and window.
pub const LINES: u32 = 20;

/// The window of a budget.
pub const WINDOW: Duration = Duration::from_secs(10);

/// Keys a budget keeps apart (playbooks and API tokens are few); beyond,
/// new keys share one budget.
const MAX_KEYS: usize = 1_024;

/// Logs an event at `$level` (a `tracing::Level` constant's name) if
/// `$budget` lets a line for `$key` through, with `left_out`; else at
/// `debug`. The rest is what `tracing::event!` takes after the level.
macro_rules! budgeted {
    ($budget:expr, $key:expr, $level:ident, $($event:tt)+) => {{
        let admitted = if tracing::enabled!(tracing::Level::$level) {
            $budget.admit($key, std::time::Instant::now())
        } else {
            None
        };
        match admitted {
            Some(left_out) => tracing::event!(tracing::Level::$level, left_out, $($event)+),
            None => tracing::event!(tracing::Level::DEBUG, $($event)+),
        }
    }};
}

pub(crate) use budgeted;

#[derive(Debug, Default)]
pub struct LogBudget {
    keys: Mutex<HashMap<String, Slot>>,
}

#[derive(Debug)]
struct Slot {
    start: Instant,
    used: u32,
    left_out: u64,
}

impl LogBudget {
    /// Whether a line for `key` is let through at `now`; if so, how many
    /// were left out before it.
    pub fn admit(&self, key: &str, now: Instant) -> Option<u64> {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let key = if keys.len() >= MAX_KEYS && !keys.contains_key(key) {
            ""
        } else {
            key
        };
        let slot = match keys.get_mut(key) {
            Some(slot) => slot,
            None => keys.entry(key.to_owned()).or_insert(Slot {
                start: now,
                used: 0,
                left_out: 0,
            }),
        };
        if now.saturating_duration_since(slot.start) >= WINDOW {
            slot.start = now;
            slot.used = 0;
        }
        if slot.used < LINES {
            slot.used += 1;
            Some(std::mem::take(&mut slot.left_out))
        } else {
            slot.left_out += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_lines_of_a_window_pass_and_the_next_window_says_how_many_did_not() {
        let budget = LogBudget::default();
        let t0 = Instant::now();
        for _ in 0..LINES {
            assert_eq!(budget.admit("c2", t0), Some(0));
        }
        for _ in 0..500 {
            assert_eq!(budget.admit("c2", t0 + Duration::from_secs(1)), None);
        }
        // Another key has its own budget.
        assert_eq!(budget.admit("scan", t0), Some(0));
        // The last moment of the window is still in it.
        assert_eq!(
            budget.admit("c2", t0 + WINDOW - Duration::from_millis(1)),
            None
        );
        assert_eq!(budget.admit("c2", t0 + WINDOW), Some(501));
        assert_eq!(budget.admit("c2", t0 + WINDOW), Some(0));
    }

    #[test]
    fn keys_beyond_the_bound_share_one_budget() {
        let budget = LogBudget::default();
        let t0 = Instant::now();
        for i in 0..MAX_KEYS {
            assert!(budget.admit(&format!("k{i}"), t0).is_some());
        }
        for i in 0..LINES {
            assert!(budget.admit(&format!("new{i}"), t0).is_some());
        }
        assert_eq!(budget.admit("another", t0), None);
        assert!(budget.keys.lock().expect("lock").len() <= MAX_KEYS + 1);
    }
}
