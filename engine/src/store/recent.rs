//! A bounded map of recent entries that forgets the older half at once.
//!
//! The audit writer remembers, for the actions that finish after their
//! decision's batch, which record each decision went to. Clearing the
//! whole map when full sent every action in flight at that moment to the
//! store (during a storm, hundreds of lookups each second, each scanning
//! the event index's journal); with two generations an entry is kept for
//! at least `max` insertions after it was made.

use std::collections::HashMap;
use std::hash::Hash;

#[derive(Debug)]
pub(crate) struct Recent<K, V> {
    new: HashMap<K, V>,
    old: HashMap<K, V>,
    max: usize,
}

impl<K: Hash + Eq, V> Recent<K, V> {
    pub(crate) fn new(max: usize) -> Recent<K, V> {
        Recent {
            new: HashMap::new(),
            old: HashMap::new(),
            max: max.max(1),
        }
    }

    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.new.get(key).or_else(|| self.old.get(key))
    }

    pub(crate) fn insert(&mut self, key: K, value: V) {
        if self.new.len() >= self.max {
            self.old = std::mem::take(&mut self.new);
        }
        self.new.insert(key, value);
    }

    pub(crate) fn extend(&mut self, entries: impl IntoIterator<Item = (K, V)>) {
        for (k, v) in entries {
            self.insert(k, v);
        }
    }

    /// Entries held (at most twice `max`).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.new.len() + self.old.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_max_entries_and_stays_bounded() {
        let mut r = Recent::new(3);
        r.extend((0..10).map(|i| (i, i * 10)));
        // The last 3 always; never more than 6.
        for i in 7..10 {
            assert_eq!(r.get(&i), Some(&(i * 10)), "{i}");
        }
        assert_eq!(r.get(&0), None);
        assert!(r.len() <= 6);
    }

    #[test]
    fn a_newer_value_wins_over_the_older_generation() {
        let mut r = Recent::new(2);
        r.insert("a", 1);
        r.insert("b", 2);
        r.insert("a", 3); // "a" = 1 moves to the old generation
        assert_eq!(r.get(&"a"), Some(&3));
        assert_eq!(r.get(&"b"), Some(&2));
    }
}
