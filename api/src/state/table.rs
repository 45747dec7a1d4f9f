//! State tables: the typed storage behind every declared state, one table per state.
//!
//! A [`Table<V>`] maps `(KeyId, Namespace)` to a [`Slot`] holding the value and its TTL timestamp, in a
//! `hashbrown::HashTable` hashed with FxHash over the id and namespace (a few multiplications; the owned
//! key is never touched). Value, reducing and aggregating state store the user's value; list and map
//! state store a whole list or map per key and namespace. Each slot holds one reference to its key in
//! [`Keys`], so a key is released when its last slot (and timer) goes.
//!
//! The key state holds the tables as `Box<dyn ErasedTable>`, and typed handles downcast through
//! [`ErasedTable::as_any_mut`] (one `TypeId` comparison per access). The erased trait carries what the
//! state needs without knowing the type: the incremental TTL sweep and iteration per key group.
//!
//! # Snapshots
//! A key group's state is the keys of that group ([`Keys::iter_group`]), the slots of each table whose
//! key is in the group ([`Table::iter_group`]; typed, so `V: Serialize` is at hand) and the timers of the
//! group. The checkpoint issue adds to [`ErasedTable`] a `write_group(&self, keys, group, out)` implemented
//! once in `impl ErasedTable for Table<V>` on top of [`Table::iter_group`] (writing key index within the
//! group, namespace, timestamp and the serialized value), and a `read_group` that rebuilds with
//! [`Keys::intern_owned`] and [`Table::restore`]. Timestamps are kept, so TTL survives a restore.
use super::keys::{KeyRef, Keys};
use super::{KeyId, Namespace, StateValue};
use hashbrown::hash_table::{Entry, HashTable};
use rustc_hash::FxHasher;
use std::any::Any;
use std::hash::Hasher;

/// One state entry: a value for one key and namespace.
#[derive(Clone, Debug)]
pub(crate) struct Slot<V> {
    /// The key.
    pub key: KeyId,
    /// The namespace.
    pub ns: Namespace,
    /// Processing time of the last update (for TTL); an upper bound of the element timestamps inside
    /// list and map values.
    pub ts: i64,
    /// The value.
    pub value: V,
}

/// TTL settings of a table in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ttl {
    /// Time to live.
    pub ms: i64,
    /// Whether reads restart the clock.
    pub on_read: bool,
}

/// The view of time for one access.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    /// Current processing time.
    pub now: i64,
    /// Timestamps at or before this are expired; `None` without TTL.
    pub deadline: Option<i64>,
    /// Whether this access restarts the clock of what it reads.
    pub refresh: bool,
}

impl Clock {
    /// Whether a value written at `ts` is expired.
    #[inline]
    pub fn expired(&self, ts: i64) -> bool {
        self.deadline.is_some_and(|d| ts <= d)
    }
}

/// Drops the expired parts of a value (list elements, map entries) with timestamps at or before the
/// deadline; returns true when nothing is left.
pub(crate) type PruneFn<V> = fn(&mut V, i64) -> bool;

/// The storage of one declared state.
pub(crate) struct Table<V> {
    map: HashTable<Slot<V>>,
    ttl: Option<Ttl>,
    prune: Option<PruneFn<V>>,
    /// Bucket where the incremental TTL sweep resumes.
    cursor: usize,
}

/// The hash of a slot's identity, from the key's hash rather than its id: the probe's loads then do
/// not wait for the key lookup that produced the id, so their cache misses overlap.
#[inline]
fn slot_hash(key_hash: u64, ns: Namespace) -> u64 {
    let mut h = FxHasher::default();
    h.write_u64(key_hash);
    h.write_i64(ns.start);
    h.write_i64(ns.end);
    h.finish()
}

impl<V> Table<V> {
    /// An empty table.
    pub(crate) fn new(ttl: Option<Ttl>, prune: Option<PruneFn<V>>) -> Self {
        Table { map: HashTable::new(), ttl, prune, cursor: 0 }
    }

    /// The TTL settings.
    #[inline]
    pub(crate) fn ttl(&self) -> Option<Ttl> {
        self.ttl
    }

    /// The clock of a read (`write` false) or write at `now`.
    #[inline]
    pub(crate) fn clock(&self, now: i64, write: bool) -> Clock {
        match self.ttl {
            None => Clock { now, deadline: None, refresh: write },
            Some(t) => Clock { now, deadline: Some(now.saturating_sub(t.ms)), refresh: write || t.on_read },
        }
    }

    /// The live slot of `key` and `ns`. An expired slot, or one that `keep` rejects (after pruning its
    /// expired parts, say), is removed and `None` returned. Restarts the slot's clock on writes, and on
    /// reads with `TtlUpdate::OnReadAndWrite`.
    #[inline]
    pub(crate) fn find(
        &mut self,
        keys: &mut Keys,
        key: KeyRef,
        ns: Namespace,
        clock: Clock,
        keep: impl FnOnce(&mut V, Clock) -> bool,
    ) -> Option<&mut Slot<V>> {
        let Ok(mut e) = self.map.find_entry(slot_hash(key.hash, ns), |s| s.key == key.id && s.ns == ns) else {
            return None;
        };
        let s = e.get_mut();
        if clock.expired(s.ts) || !keep(&mut s.value, clock) {
            let (s, _) = e.remove();
            keys.release(s.key);
            return None;
        }
        if clock.refresh {
            s.ts = clock.now;
        }
        Some(e.into_mut())
    }

    /// The slot of `key` and `ns`, created with `init` when absent or expired; its clock restarts.
    #[inline]
    pub(crate) fn upsert(
        &mut self,
        keys: &mut Keys,
        key: KeyRef,
        ns: Namespace,
        now: i64,
        init: impl FnOnce() -> V,
    ) -> &mut Slot<V> {
        let clock = self.clock(now, true);
        match self.map.entry(
            slot_hash(key.hash, ns),
            |s| s.key == key.id && s.ns == ns,
            |s| slot_hash(keys.hash(s.key), s.ns),
        ) {
            Entry::Occupied(e) => {
                let s = e.into_mut();
                if clock.expired(s.ts) {
                    s.value = init();
                }
                s.ts = now;
                s
            }
            Entry::Vacant(v) => {
                keys.retain(key.id);
                v.insert(Slot { key: key.id, ns, ts: now, value: init() }).into_mut()
            }
        }
    }

    /// Sets the value of `key` and `ns`.
    #[inline]
    pub(crate) fn put(&mut self, keys: &mut Keys, key: KeyRef, ns: Namespace, now: i64, value: V) {
        match self.map.entry(
            slot_hash(key.hash, ns),
            |s| s.key == key.id && s.ns == ns,
            |s| slot_hash(keys.hash(s.key), s.ns),
        ) {
            Entry::Occupied(mut e) => {
                let s = e.get_mut();
                s.value = value;
                s.ts = now;
            }
            Entry::Vacant(v) => {
                keys.retain(key.id);
                v.insert(Slot { key: key.id, ns, ts: now, value });
            }
        }
    }

    /// Folds `value` into the live value of `key` and `ns` with `merge`, or sets it when there is none.
    #[inline]
    pub(crate) fn merge(
        &mut self,
        keys: &mut Keys,
        key: KeyRef,
        ns: Namespace,
        now: i64,
        value: V,
        merge: impl FnOnce(&mut V, V),
    ) {
        let clock = self.clock(now, true);
        match self.map.entry(
            slot_hash(key.hash, ns),
            |s| s.key == key.id && s.ns == ns,
            |s| slot_hash(keys.hash(s.key), s.ns),
        ) {
            Entry::Occupied(mut e) => {
                let s = e.get_mut();
                if clock.expired(s.ts) {
                    s.value = value;
                } else {
                    merge(&mut s.value, value);
                }
                s.ts = now;
            }
            Entry::Vacant(v) => {
                keys.retain(key.id);
                v.insert(Slot { key: key.id, ns, ts: now, value });
            }
        }
    }

    /// Removes the slot of `key` and `ns`, returning its value unless it had expired.
    #[inline]
    pub(crate) fn remove(&mut self, keys: &mut Keys, key: KeyRef, ns: Namespace, now: i64) -> Option<V> {
        let clock = self.clock(now, false);
        let e = self.map.find_entry(slot_hash(key.hash, ns), |s| s.key == key.id && s.ns == ns).ok()?;
        let (s, _) = e.remove();
        keys.release(s.key);
        (!clock.expired(s.ts)).then_some(s.value)
    }

    /// Puts a slot back as it was (snapshot restore): replaces an existing one, keeps the timestamp.
    #[allow(dead_code)] // snapshot support: exercised by the tests now, used by the checkpoint issue
    pub(crate) fn restore(&mut self, keys: &mut Keys, slot: Slot<V>) {
        let (key, ns) = (KeyRef { id: slot.key, hash: keys.hash(slot.key) }, slot.ns);
        match self.map.entry(
            slot_hash(key.hash, ns),
            |s| s.key == key.id && s.ns == ns,
            |s| slot_hash(keys.hash(s.key), s.ns),
        ) {
            Entry::Occupied(mut e) => *e.get_mut() = slot,
            Entry::Vacant(v) => {
                keys.retain(key.id);
                v.insert(slot);
            }
        }
    }

    /// The slots whose key is in key group `group` (expired ones included), for snapshots.
    #[allow(dead_code)] // snapshot support: exercised by the tests now, used by the checkpoint issue
    pub(crate) fn iter_group<'a>(&'a self, keys: &'a Keys, group: usize) -> impl Iterator<Item = &'a Slot<V>> + 'a {
        self.map.iter().filter(move |s| keys.group(s.key) == group)
    }

    /// Visits up to `budget` buckets from where the last sweep stopped, removing expired slots (and
    /// expired parts of list and map values). Returns the buckets visited and whether the sweep reached
    /// the end of the table (the next one starts over).
    pub(crate) fn sweep(&mut self, keys: &mut Keys, now: i64, budget: usize) -> (usize, bool) {
        let n = self.map.num_buckets();
        let Some(ttl) = self.ttl else { return (0, true) };
        if n == 0 || budget == 0 {
            return (0, n == 0);
        }
        let deadline = now.saturating_sub(ttl.ms);
        let start = if self.cursor < n { self.cursor } else { 0 };
        let end = start.saturating_add(budget).min(n);
        for bucket in start..end {
            // Removing a bucket never moves the others, so the cursor stays meaningful between calls.
            let Ok(mut e) = self.map.get_bucket_entry(bucket) else { continue };
            let s = e.get_mut();
            let gone = s.ts <= deadline || self.prune.is_some_and(|prune| prune(&mut s.value, deadline));
            if gone {
                let (s, _) = e.remove();
                keys.release(s.key);
            }
        }
        self.cursor = if end >= n { 0 } else { end };
        (end - start, end >= n)
    }
}

/// What the key state needs of a table without knowing its value type.
pub(crate) trait ErasedTable: Send + 'static {
    /// For typed access by the handles.
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// For typed read access (snapshots, tests).
    #[allow(dead_code)] // snapshot support: exercised by the tests now, used by the checkpoint issue
    fn as_any(&self) -> &dyn Any;
    /// Number of entries.
    fn len(&self) -> usize;
    /// Whether the table has a TTL (and so takes part in the sweep).
    fn has_ttl(&self) -> bool;
    /// See [`Table::sweep`].
    fn sweep(&mut self, keys: &mut Keys, now: i64, budget: usize) -> (usize, bool);
    /// Calls `f(key, namespace, timestamp)` for every entry of key group `group`.
    #[allow(dead_code)] // snapshot support: exercised by the tests now, used by the checkpoint issue
    fn for_each_in_group(&self, keys: &Keys, group: usize, f: &mut dyn FnMut(KeyId, Namespace, i64));
}

impl<V: StateValue> ErasedTable for Table<V> {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn has_ttl(&self) -> bool {
        self.ttl.is_some()
    }

    fn sweep(&mut self, keys: &mut Keys, now: i64, budget: usize) -> (usize, bool) {
        Table::sweep(self, keys, now, budget)
    }

    fn for_each_in_group(&self, keys: &Keys, group: usize, f: &mut dyn FnMut(KeyId, Namespace, i64)) {
        self.iter_group(keys, group).for_each(|s| f(s.key, s.ns, s.ts));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_visits_every_bucket_within_budget_and_releases_keys() {
        let mut keys = Keys::new(4);
        let mut t: Table<u32> = Table::new(Some(Ttl { ms: 10, on_read: false }), None);
        let ids: Vec<KeyId> = (0..100).map(|i| keys.intern_owned(Box::new([crate::OwnedDatum::Int(i)]))).collect();
        for (i, &k) in ids.iter().enumerate() {
            let key = KeyRef { id: k, hash: keys.hash(k) };
            t.put(&mut keys, key, Namespace::NONE, i as i64 % 20, 1);
        }
        assert_eq!(keys.len(), 100);
        // At 20, entries written at or before 10 are expired: 11 of every 20.
        let mut visited = 0;
        loop {
            let (v, done) = t.sweep(&mut keys, 20, 7);
            assert!(v <= 7);
            visited += v;
            if done {
                break;
            }
        }
        assert_eq!(visited, t.map.num_buckets());
        assert_eq!(t.map.len(), 45);
        assert_eq!(keys.len(), 45);
        assert_eq!(t.sweep(&mut keys, 20, 0), (0, false));
    }
}
