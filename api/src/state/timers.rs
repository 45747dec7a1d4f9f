//! Timers of one time domain: ordered by time, deduplicated, deletable.
//!
//! A timer is `(time, key, namespace)`. They sit in a `BTreeSet` ordered by time (then key and
//! namespace, so firing order is deterministic), plus a hash set of the same triples. Registering an
//! existing timer (the common case: a window operator registers its window's end timer for every record)
//! costs one hash probe and touches nothing else; only new timers pay the `O(log n)` tree insert. A delete
//! removes the timer from both at once, so nothing stale accumulates: a `BinaryHeap` with lazy deletion
//! would make inserts cheaper but keep deleted timers (e.g. session windows moving their end on every
//! record) until their time passes.
//! Every timer holds one reference to its key.
use super::keys::Keys;
use super::{KeyId, Namespace};
use hashbrown::HashSet;
use rustc_hash::FxBuildHasher;
use std::collections::BTreeSet;

/// One timer: fires at `.0` for key `.1` in namespace `.2`.
pub(crate) type TimerEntry = (i64, KeyId, Namespace);

/// The timers of one domain.
#[derive(Default)]
pub(crate) struct Timers {
    order: BTreeSet<TimerEntry>,
    index: HashSet<TimerEntry, FxBuildHasher>,
}

impl Timers {
    /// Adds a timer unless it exists; true when it is new.
    #[inline]
    pub(crate) fn register(&mut self, keys: &mut Keys, time: i64, key: KeyId, ns: Namespace) -> bool {
        let t = (time, key, ns);
        if !self.index.insert(t) {
            return false;
        }
        self.order.insert(t);
        keys.retain(key);
        true
    }

    /// Adds a restored timer whose key reference was already counted (dropped again for a duplicate).
    pub(crate) fn restore(&mut self, keys: &mut Keys, time: i64, key: KeyId, ns: Namespace) {
        let t = (time, key, ns);
        if self.index.insert(t) {
            self.order.insert(t);
        } else {
            keys.release(key);
        }
    }

    /// Removes a timer; true when it existed.
    #[inline]
    pub(crate) fn delete(&mut self, keys: &mut Keys, time: i64, key: KeyId, ns: Namespace) -> bool {
        let t = (time, key, ns);
        if !self.index.remove(&t) {
            return false;
        }
        self.order.remove(&t);
        keys.release(key);
        true
    }

    /// Removes and returns the earliest timer if it is due (`time <= limit`). The caller owns the key
    /// reference the timer held and must release it.
    #[inline]
    pub(crate) fn pop_due(&mut self, limit: i64) -> Option<TimerEntry> {
        let &first = self.order.first()?;
        if first.0 > limit {
            return None;
        }
        self.order.pop_first();
        self.index.remove(&first);
        Some(first)
    }

    /// The time of the earliest timer.
    #[inline]
    pub(crate) fn next_time(&self) -> Option<i64> {
        self.order.first().map(|t| t.0)
    }

    /// Number of timers.
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    /// Every timer in firing order, for snapshots.
    pub(crate) fn iter(&self) -> impl Iterator<Item = TimerEntry> + '_ {
        self.order.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OwnedDatum;

    #[test]
    fn ordered_deduplicated_and_counted_as_key_references() {
        let mut keys = Keys::new(8);
        let a = keys.intern_owned(Box::new([OwnedDatum::Int(1)]));
        let b = keys.intern_owned(Box::new([OwnedDatum::Int(2)]));
        let mut t = Timers::default();
        let ns = Namespace::NONE;
        assert!(t.register(&mut keys, 30, a, ns));
        assert!(t.register(&mut keys, 10, b, ns));
        assert!(!t.register(&mut keys, 30, a, ns), "duplicates collapse");
        assert!(t.register(&mut keys, 20, a, Namespace::window(0, 20)));
        assert_eq!(keys.refs(a), 2);
        assert_eq!(t.len(), 3);
        assert_eq!(t.next_time(), Some(10));
        assert!(!t.delete(&mut keys, 11, b, ns), "deleting a missing timer is a no-op");
        assert_eq!(t.pop_due(9), None);
        assert_eq!(t.pop_due(25), Some((10, b, ns)));
        assert_eq!(t.pop_due(25), Some((20, a, Namespace::window(0, 20))));
        assert_eq!(t.pop_due(25), None);
        assert_eq!(t.iter().collect::<Vec<_>>(), [(30, a, ns)]);
        assert!(t.delete(&mut keys, 30, a, ns));
        assert_eq!(t.len(), 0);
        assert_eq!(t.index.len(), 0);
    }
}
