//! The only state playbooks have: `count`, `once_per` and `seen_before`.
//! `count` is exact at the window's edges for the newest `EXACT` (128) events of
//! a key (an approximation at the edge undercounted real bursts).
//!
//! Keys are namespaced per playbook (two playbooks' `"c2:1.2.3.4"` never
//! collide) and per window, and stored as a 128-bit hash so that an entry's
//! size does not depend on what the script put in its key. The store is a
//! concurrent map bounded by a capacity: when it is full, expired entries go
//! first, then the least recently touched live ones, and every live entry
//! dropped that way is counted as an eviction.
//!
//! Time is whatever the caller says it is (milliseconds): the event's time in
//! `replay` and `playbook test` so results are reproducible, the wall clock
//! in `serve`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use dashmap::DashMap;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

/// `count` keeps the times of the newest this-many events of a key exactly,
/// so any threshold up to it is decided exactly at the window's edges.
/// Memory: at most this many times (8 bytes each) per key.
const EXACT: usize = 128;

/// Events beyond [`EXACT`] are counted in this many slots of a tenth of the
/// window each: past 128 events the answer is at least 128 and misses at
/// most the overflow events of the one slot the window's edge cuts.
const SLOTS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Count,
    OncePer,
    SeenBefore,
}

#[derive(Debug)]
struct Entry {
    /// Last time the key was touched: the eviction order.
    touched_ms: i64,
    /// After this, the entry no longer affects any answer.
    expires_ms: i64,
    state: State,
}

#[derive(Debug)]
enum State {
    /// `once_per`: when it last fired; `seen_before`: when last seen.
    Last(i64),
    /// `count`: the newest events' times, oldest first, exactly; older
    /// ones per slot (`head` is the slot index of the newest slot).
    Window {
        times: VecDeque<i64>,
        head: i64,
        slots: [u32; SLOTS],
    },
}

/// The store. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Counters {
    map: DashMap<u128, Entry>,
    capacity: usize,
    len: AtomicUsize,
    sweeping: AtomicBool,
    entries_gauge: Gauge,
    evictions: Counter,
}

fn hash_key(ns: &str, kind: Kind, window_ms: i64, key: &str) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(ns.as_bytes());
    h.update(&[0, kind as u8]);
    h.update(&window_ms.to_le_bytes());
    h.update(key.as_bytes());
    h.digest128()
}

impl Counters {
    pub fn new(capacity: usize, entries_gauge: Gauge, evictions: Counter) -> Counters {
        Counters {
            map: DashMap::new(),
            capacity: capacity.max(16),
            len: AtomicUsize::new(0),
            sweeping: AtomicBool::new(false),
            entries_gauge,
            evictions,
        }
    }

    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn evictions(&self) -> u64 {
        self.evictions.get()
    }

    /// Counts this occurrence and returns how many happened in the last
    /// `window_ms`, this one included.
    pub fn count(&self, ns: &str, key: &str, window_ms: i64, now_ms: i64) -> u64 {
        let window_ms = window_ms.max(1);
        let slot_ms = (window_ms + SLOTS as i64 - 1) / SLOTS as i64;
        let idx = now_ms.div_euclid(slot_ms);
        let fresh = || State::Window {
            times: VecDeque::new(),
            head: idx,
            slots: [0; SLOTS],
        };
        let k = hash_key(ns, Kind::Count, window_ms, key);
        self.with_entry(k, window_ms, now_ms, fresh(), |state| {
            let State::Window { times, head, slots } = state else {
                *state = fresh();
                return 0;
            };
            if idx > *head {
                let advance = (idx - *head).min(SLOTS as i64);
                for step in 1..=advance {
                    slots[(*head + step).rem_euclid(SLOTS as i64) as usize] = 0;
                }
                *head = idx;
            }
            let edge = now_ms.saturating_sub(window_ms);
            while times.front().is_some_and(|&t| t <= edge) {
                times.pop_front();
            }
            if times.len() == EXACT {
                // The oldest exact time moves to its slot, if the slots
                // still cover it.
                if let Some(t) = times.pop_front() {
                    let at = t.div_euclid(slot_ms);
                    if *head - at < SLOTS as i64 && at <= *head {
                        let slot = &mut slots[at.rem_euclid(SLOTS as i64) as usize];
                        *slot = slot.saturating_add(1);
                    }
                }
            }
            // Events may arrive out of order (replays, several sources):
            // keep the times sorted.
            let at = times.partition_point(|&t| t <= now_ms);
            times.insert(at, now_ms);
            exact_and_overflow(times, *head, slots, idx, edge)
        })
    }

    /// True when `key` did not fire in the last `window_ms` (and marks it as
    /// fired now); false while suppressed.
    pub fn once_per(&self, ns: &str, key: &str, window_ms: i64, now_ms: i64) -> bool {
        let k = hash_key(ns, Kind::OncePer, window_ms, key);
        self.with_entry(
            k,
            window_ms,
            now_ms,
            State::Last(i64::MIN),
            |state| match state {
                State::Last(last) if now_ms.saturating_sub(*last) < window_ms => false,
                _ => {
                    *state = State::Last(now_ms);
                    true
                }
            },
        )
    }

    /// True when `key` was seen in the last `window_ms`; records this sighting.
    pub fn seen_before(&self, ns: &str, key: &str, window_ms: i64, now_ms: i64) -> bool {
        let k = hash_key(ns, Kind::SeenBefore, window_ms, key);
        self.with_entry(k, window_ms, now_ms, State::Last(i64::MIN), |state| {
            let State::Last(last) = state else {
                return false;
            };
            let seen = now_ms.saturating_sub(*last).saturating_abs() < window_ms;
            if *last < now_ms {
                *last = now_ms;
            }
            seen
        })
    }

    /// What [`Counters::count`] would answer now, minus the occurrence it
    /// would add, without adding it.
    pub fn peek_count(&self, ns: &str, key: &str, window_ms: i64, now_ms: i64) -> u64 {
        let window_ms = window_ms.max(1);
        let slot_ms = (window_ms + SLOTS as i64 - 1) / SLOTS as i64;
        let idx = now_ms.div_euclid(slot_ms);
        let k = hash_key(ns, Kind::Count, window_ms, key);
        let Some(e) = self.map.get(&k) else {
            return 0;
        };
        let State::Window { times, head, slots } = &e.state else {
            return 0;
        };
        exact_and_overflow(times, *head, slots, idx, now_ms.saturating_sub(window_ms))
    }

    /// What [`Counters::once_per`] would answer now, without firing.
    pub fn peek_once_per(&self, ns: &str, key: &str, window_ms: i64, now_ms: i64) -> bool {
        let k = hash_key(ns, Kind::OncePer, window_ms, key);
        match self.map.get(&k).as_deref().map(|e| &e.state) {
            Some(State::Last(last)) => now_ms.saturating_sub(*last) >= window_ms,
            _ => true,
        }
    }

    /// What [`Counters::seen_before`] would answer now, without recording
    /// the sighting.
    pub fn peek_seen_before(&self, ns: &str, key: &str, window_ms: i64, now_ms: i64) -> bool {
        let k = hash_key(ns, Kind::SeenBefore, window_ms, key);
        match self.map.get(&k).as_deref().map(|e| &e.state) {
            Some(State::Last(last)) => now_ms.saturating_sub(*last).saturating_abs() < window_ms,
            _ => false,
        }
    }

    /// Runs `update` on the entry of key `k`, created as `fresh` if absent.
    fn with_entry<T>(
        &self,
        k: u128,
        window_ms: i64,
        now_ms: i64,
        fresh: State,
        update: impl FnOnce(&mut State) -> T,
    ) -> T {
        let expires_ms = now_ms.saturating_add(window_ms);
        let (result, inserted) = match self.map.entry(k) {
            dashmap::Entry::Occupied(mut e) => {
                let entry = e.get_mut();
                entry.touched_ms = entry.touched_ms.max(now_ms);
                entry.expires_ms = entry.expires_ms.max(expires_ms);
                (update(&mut entry.state), false)
            }
            dashmap::Entry::Vacant(v) => {
                let mut state = fresh;
                let result = update(&mut state);
                v.insert(Entry {
                    touched_ms: now_ms,
                    expires_ms,
                    state,
                });
                (result, true)
            }
        };
        if inserted {
            let len = self.len.fetch_add(1, Ordering::Relaxed) + 1;
            self.entries_gauge.set(len as i64);
            if len > self.capacity {
                self.sweep(now_ms);
            }
        }
        result
    }

    /// Brings the store back under 90 % of its capacity. One thread sweeps at
    /// a time; the others go on (the store may briefly overshoot a little).
    fn sweep(&self, now_ms: i64) {
        if self
            .sweeping
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let target = self.capacity * 9 / 10;
        self.map.retain(|_, e| e.expires_ms > now_ms);
        let live = self.map.len();
        if live > target {
            let mut touched: Vec<i64> = self.map.iter().map(|e| e.touched_ms).collect();
            let excess = live - target;
            let (_, nth, _) = touched.select_nth_unstable(excess - 1);
            let threshold = *nth;
            let mut evicted = 0usize;
            self.map.retain(|_, e| {
                let keep = e.touched_ms > threshold;
                if !keep {
                    evicted += 1;
                }
                keep
            });
            self.evictions.inc_by(evicted as u64);
        }
        let len = self.map.len();
        self.len.store(len, Ordering::Relaxed);
        self.entries_gauge.set(len as i64);
        self.sweeping.store(false, Ordering::Release);
    }
}

/// How many events a `count` window holds: the exact times after `edge`,
/// and the overflow slots that moving the window to slot `idx` keeps.
fn exact_and_overflow(
    times: &VecDeque<i64>,
    head: i64,
    slots: &[u32; SLOTS],
    idx: i64,
    edge: i64,
) -> u64 {
    let exact = times.len() - times.partition_point(|&t| t <= edge);
    let advance = idx.saturating_sub(head).max(0);
    let overflow: u64 = if advance >= SLOTS as i64 {
        0
    } else {
        (0..SLOTS as i64 - advance)
            .map(|j| u64::from(slots[(head - j).rem_euclid(SLOTS as i64) as usize]))
            .sum()
    };
    exact as u64 + overflow
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(capacity: usize) -> Counters {
        Counters::new(capacity, Gauge::default(), Counter::default())
    }

    const MIN: i64 = 60_000;

    #[test]
    fn peeking_answers_without_changing_anything() {
        let c = store(100);
        assert!(c.peek_once_per("pb", "k", 10 * MIN, 0));
        assert!(
            c.peek_once_per("pb", "k", 10 * MIN, 0),
            "peeking fires nothing"
        );
        assert!(c.once_per("pb", "k", 10 * MIN, 0));
        assert!(!c.peek_once_per("pb", "k", 10 * MIN, 5 * MIN));
        assert!(c.peek_once_per("pb", "k", 10 * MIN, 10 * MIN));
        assert!(!c.peek_seen_before("pb", "s", MIN, 0));
        assert!(!c.seen_before("pb", "s", MIN, 0));
        assert!(c.peek_seen_before("pb", "s", MIN, 10_000));
        for t in [0, 10_000, 50_000] {
            assert_eq!(
                c.peek_count("pb", "n", MIN, t),
                c.count("pb", "n", MIN, t) - 1
            );
        }
        // A minute on, the first has left the window (as `count` sees it).
        assert_eq!(c.peek_count("pb", "n", MIN, 65_000), 2);
        assert_eq!(c.count("pb", "n", MIN, 65_000), 3);
        assert_eq!(c.peek_count("pb", "n", MIN, 10 * MIN), 0);
        assert_eq!(c.len(), 3, "peeks add no entry");
    }

    #[test]
    fn count_is_a_sliding_window() {
        let c = store(100);
        assert_eq!(c.count("pb", "k", MIN, 0), 1);
        assert_eq!(c.count("pb", "k", MIN, 10_000), 2);
        assert_eq!(c.count("pb", "k", MIN, 50_000), 3);
        // The first falls out after a minute, the others stay.
        assert_eq!(c.count("pb", "k", MIN, 65_000), 3);
        assert_eq!(c.count("pb", "k", MIN, 200_000), 1);
        assert_eq!(c.count("pb", "other", MIN, 200_000), 1);
    }

    #[test]
    fn count_is_exact_at_the_window_edge() {
        // 21 events within 4 min 58 s: the 21st sees all 21 in "5m".
        let c = store(100);
        let mut last = 0;
        for i in 0..21 {
            let t = i * 14_900;
            last = c.count("pb", "burst", 5 * MIN, t);
        }
        assert_eq!(last, 21);
        // One millisecond past five minutes after the first, it has left.
        assert_eq!(c.peek_count("pb", "burst", 5 * MIN, 5 * MIN + 1), 20);
        // Exactly at five minutes it has left too: the window is the last
        // five minutes, its start excluded.
        assert_eq!(c.peek_count("pb", "burst", 5 * MIN, 5 * MIN), 20);
        assert_eq!(c.peek_count("pb", "burst", 5 * MIN, 5 * MIN - 1), 21);
    }

    #[test]
    fn out_of_order_events_count_by_their_own_time() {
        let c = store(100);
        assert_eq!(c.count("pb", "k", MIN, 50_000), 1);
        assert_eq!(c.count("pb", "k", MIN, 10_000), 2);
        // At 75 s the event of 10 s has left, the one of 50 s stays.
        assert_eq!(c.count("pb", "k", MIN, 75_000), 2);
    }

    #[test]
    fn past_the_exact_bound_count_never_drops_below_it() {
        let c = store(100);
        let mut n = 0;
        for i in 0..1_000 {
            n = c.count("pb", "storm", MIN, i * 50);
        }
        // 1,000 events in 50 s, all within the minute.
        assert!(n >= EXACT as u64, "{n}");
        assert!(n <= 1_000, "{n}");
        assert!(n >= 1_000 - 1_000 / SLOTS as u64, "{n}");
    }

    #[test]
    fn once_per_suppresses_within_the_window() {
        let c = store(100);
        assert!(c.once_per("pb", "k", 10 * MIN, 0));
        assert!(!c.once_per("pb", "k", 10 * MIN, 5 * MIN));
        assert!(c.once_per("pb", "k", 10 * MIN, 10 * MIN));
        assert!(
            c.once_per("pb", "j", 10 * MIN, 10 * MIN),
            "keys are independent"
        );
    }

    #[test]
    fn seen_before_remembers_sightings() {
        let c = store(100);
        assert!(!c.seen_before("pb", "k", 10 * MIN, 0));
        assert!(c.seen_before("pb", "k", 10 * MIN, 9 * MIN));
        assert!(!c.seen_before("pb", "k", 10 * MIN, 30 * MIN));
    }

    #[test]
    fn once_per_is_exact_at_the_window_edge() {
        // "Until `window` has passed since it last returned true": one
        // millisecond before, still suppressed; at the window, free again.
        let c = store(100);
        assert!(c.once_per("pb", "k", 10 * MIN, 0));
        assert!(!c.once_per("pb", "k", 10 * MIN, 10 * MIN - 1));
        assert!(c.once_per("pb", "k", 10 * MIN, 10 * MIN));
        // Suppressed calls do not extend the window: it runs from the last
        // `true`, at 10 min, so 20 min frees it whatever came between.
        assert!(!c.once_per("pb", "k", 10 * MIN, 19 * MIN));
        assert!(!c.once_per("pb", "k", 10 * MIN, 20 * MIN - 1));
        assert!(c.once_per("pb", "k", 10 * MIN, 20 * MIN));
        // An event older than the last `true` (out of order) is suppressed.
        assert!(!c.once_per("pb", "k", 10 * MIN, 15 * MIN));
        // Each window is its own key: "1m" does not share "10m"'s state.
        assert!(c.once_per("pb", "k", MIN, 20 * MIN));
    }

    #[test]
    fn seen_before_is_exact_at_the_window_edge() {
        // "Seen in the last window", its start excluded, like `count`.
        let c = store(100);
        assert!(!c.seen_before("pb", "k", 10 * MIN, 0));
        assert!(c.seen_before("pb", "k", 10 * MIN, 10 * MIN - 1));
        // Every sighting counts: the one just made moved the window on.
        assert!(c.seen_before("pb", "k", 10 * MIN, 20 * MIN - 2));
        assert!(!c.seen_before("pb", "k", 10 * MIN, 30 * MIN - 2));
        // Exactly one window after the last sighting it has left.
        let c = store(100);
        assert!(!c.seen_before("pb", "j", 10 * MIN, 0));
        assert!(!c.seen_before("pb", "j", 10 * MIN, 10 * MIN));
        // An older event does not move the last sighting back.
        assert!(c.seen_before("pb", "j", 10 * MIN, 5 * MIN));
        assert!(c.seen_before("pb", "j", 10 * MIN, 20 * MIN - 1));
    }

    #[test]
    fn peeks_agree_with_the_helpers_at_the_edge() {
        let c = store(100);
        assert!(c.once_per("pb", "k", MIN, 0));
        assert!(!c.peek_once_per("pb", "k", MIN, MIN - 1));
        assert!(c.peek_once_per("pb", "k", MIN, MIN));
        assert!(!c.seen_before("pb", "s", MIN, 0));
        assert!(c.peek_seen_before("pb", "s", MIN, MIN - 1));
        assert!(!c.peek_seen_before("pb", "s", MIN, MIN));
    }

    #[test]
    fn playbooks_have_their_own_namespace() {
        let c = store(100);
        assert!(c.once_per("a", "k", MIN, 0));
        assert!(c.once_per("b", "k", MIN, 0));
        assert!(!c.once_per("a", "k", MIN, 1));
    }

    #[test]
    fn the_store_is_bounded_and_counts_evictions() {
        let c = store(100);
        for i in 0..1_000i64 {
            c.once_per("pb", &format!("k{i}"), 100 * MIN, i);
        }
        assert!(c.len() <= 101, "len {}", c.len());
        assert!(c.evictions() >= 890, "evictions {}", c.evictions());
        // The most recent keys survive.
        assert!(!c.once_per("pb", "k999", 100 * MIN, 1_000));
    }

    #[test]
    fn expired_entries_go_before_live_ones_and_are_not_evictions() {
        let c = store(100);
        for i in 0..100i64 {
            c.once_per("pb", &format!("old{i}"), 1_000, 0);
        }
        c.once_per("pb", "new", 1_000, 10_000);
        assert_eq!(c.evictions(), 0);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn concurrent_use_is_consistent() {
        let c = std::sync::Arc::new(store(10_000));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    (0..1_000)
                        .filter(|_| c.once_per("pb", "shared", 10 * MIN, 0))
                        .count()
                })
            })
            .collect();
        let fired: usize = threads.into_iter().map(|t| t.join().expect("thread")).sum();
        assert_eq!(fired, 1);
    }
}
