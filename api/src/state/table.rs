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
//! state needs without knowing the type: the incremental TTL sweep, snapshots (entries written per key
//! group with their typed values, and read back) and spilling (dirty entries written to the store).
//!
//! With a spill store (see the `spill` module) the table is a cache: the operations take the optional
//! [`Spill`] and go to the store only on a miss, in out-of-line code, so the heap backend's hot path is
//! the same as without spilling but for one flag store per write. A slot's flags say whether it changed
//! since it was loaded or spilled ([`DIRTY`]) and whether the store is known not to hold it ([`FRESH`],
//! so removing it needs no tombstone).
use super::codec::{self, Reader};
use super::keys::{KeyRef, Keys};
use super::spill::{put_store_key, put_store_value, Spill, SpillBatch};
use super::{KeyId, Namespace, StateValue};
use crate::error::{EddyError, Result};
use hashbrown::hash_table::{Entry, HashTable};
use rustc_hash::FxHasher;
use std::any::Any;
use std::hash::Hasher;

/// Slot flag: changed since it was loaded from the spill store or last spilled.
pub(crate) const DIRTY: u8 = 1;
/// Slot flag: the spill store is known not to hold the entry.
pub(crate) const FRESH: u8 = 2;

/// One state entry: a value for one key and namespace.
#[derive(Clone, Debug)]
pub(crate) struct Slot<V> {
    /// The key.
    pub key: KeyId,
    /// [`DIRTY`] and [`FRESH`] (fits in the padding after `key`).
    pub flags: u8,
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
#[derive(Clone)]
pub(crate) struct Table<V> {
    map: HashTable<Slot<V>>,
    ttl: Option<Ttl>,
    prune: Option<PruneFn<V>>,
    /// Bucket where the incremental TTL sweep resumes.
    cursor: usize,
    /// The state's index (declaration order), which names it in the spill store.
    id: u32,
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

/// Entries handled together by snapshots and restores, so that their memory accesses overlap.
pub(crate) const CHUNK: usize = 32;

/// The entries of one state in one key group, encoded for a snapshot.
#[derive(Default)]
pub(crate) struct Part {
    /// Number of entries.
    pub count: usize,
    /// `count` times: key index (within the group), namespace start and end, timestamp, value as bytes.
    pub buf: Vec<u8>,
}

impl<V: StateValue> Table<V> {
    /// An empty table for the state with index `id`.
    pub(crate) fn new(id: u32, ttl: Option<Ttl>, prune: Option<PruneFn<V>>) -> Self {
        Table { map: HashTable::new(), ttl, prune, cursor: 0, id }
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

    /// The live slot of `key` and `ns` (loaded from the spill store on a miss). An expired slot, or one
    /// that `keep` rejects (after pruning its expired parts, say), is removed and `None` returned. Restarts
    /// the slot's clock on writes, and on reads with `TtlUpdate::OnReadAndWrite`. A caller that changes
    /// the value through a read clock marks the slot [`DIRTY`] itself.
    #[inline]
    pub(crate) fn find(
        &mut self,
        keys: &mut Keys,
        mut spill: Option<&mut Spill>,
        key: KeyRef,
        ns: Namespace,
        clock: Clock,
        keep: impl FnOnce(&mut V, Clock) -> bool,
    ) -> Option<&mut Slot<V>> {
        let hash = slot_hash(key.hash, ns);
        let mut e = match self.map.find_entry(hash, |s| s.key == key.id && s.ns == ns) {
            Ok(e) => e,
            Err(absent) => {
                let (ts, value) = spill.as_deref_mut()?.load::<V>(keys, self.id, key, ns, clock.deadline)?;
                keys.retain(key.id);
                let slot = Slot { key: key.id, flags: 0, ns, ts, value };
                absent.into_table().insert_unique(hash, slot, |s| slot_hash(keys.hash(s.key), s.ns))
            }
        };
        let s = e.get_mut();
        if clock.expired(s.ts) || !keep(&mut s.value, clock) {
            let (s, _) = e.remove();
            if let Some(sp) = spill {
                if s.flags & FRESH == 0 {
                    sp.tombstone(keys, self.id, s.key, s.ns);
                }
            }
            keys.release(s.key);
            return None;
        }
        if clock.refresh {
            s.ts = clock.now;
            s.flags |= DIRTY;
        }
        Some(e.into_mut())
    }

    /// The slot of `key` and `ns`, created with `init` when absent (in the cache and the spill store) or
    /// expired; its clock restarts.
    #[inline]
    pub(crate) fn upsert(
        &mut self,
        keys: &mut Keys,
        spill: Option<&mut Spill>,
        key: KeyRef,
        ns: Namespace,
        now: i64,
        init: impl FnOnce() -> V,
    ) -> &mut Slot<V> {
        let clock = self.clock(now, true);
        let id = self.id;
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
                s.flags |= DIRTY;
                s
            }
            Entry::Vacant(v) => {
                let (value, flags) = match spill {
                    None => (init(), DIRTY),
                    Some(sp) => match sp.load::<V>(keys, id, key, ns, clock.deadline) {
                        Some((_, value)) => (value, DIRTY),
                        None => (init(), DIRTY | FRESH),
                    },
                };
                keys.retain(key.id);
                v.insert(Slot { key: key.id, flags, ns, ts: now, value }).into_mut()
            }
        }
    }

    /// Sets the value of `key` and `ns` (no look-up in the spill store: it is overwritten).
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
                s.flags |= DIRTY;
            }
            Entry::Vacant(v) => {
                keys.retain(key.id);
                v.insert(Slot { key: key.id, flags: DIRTY, ns, ts: now, value });
            }
        }
    }

    /// Folds `value` into the live value of `key` and `ns` with `merge`, or sets it when there is none.
    #[inline]
    #[allow(clippy::too_many_arguments)] // the table's context, then the operation's arguments
    pub(crate) fn merge(
        &mut self,
        keys: &mut Keys,
        spill: Option<&mut Spill>,
        key: KeyRef,
        ns: Namespace,
        now: i64,
        value: V,
        merge: impl FnOnce(&mut V, V),
    ) {
        let clock = self.clock(now, true);
        let id = self.id;
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
                s.flags |= DIRTY;
            }
            Entry::Vacant(v) => {
                let (value, flags) = match spill {
                    None => (value, DIRTY),
                    Some(sp) => match sp.load::<V>(keys, id, key, ns, clock.deadline) {
                        Some((_, mut stored)) => {
                            merge(&mut stored, value);
                            (stored, DIRTY)
                        }
                        None => (value, DIRTY | FRESH),
                    },
                };
                keys.retain(key.id);
                v.insert(Slot { key: key.id, flags, ns, ts: now, value });
            }
        }
    }

    /// Removes the slot of `key` and `ns` (and the spill store's entry), returning its value unless it
    /// had expired.
    #[inline]
    pub(crate) fn remove(
        &mut self,
        keys: &mut Keys,
        spill: Option<&mut Spill>,
        key: KeyRef,
        ns: Namespace,
        now: i64,
    ) -> Option<V> {
        let clock = self.clock(now, false);
        match self.map.find_entry(slot_hash(key.hash, ns), |s| s.key == key.id && s.ns == ns) {
            Ok(e) => {
                let (s, _) = e.remove();
                if let Some(sp) = spill {
                    if s.flags & FRESH == 0 {
                        sp.tombstone(keys, self.id, s.key, s.ns);
                    }
                }
                keys.release(s.key);
                (!clock.expired(s.ts)).then_some(s.value)
            }
            Err(_) => {
                let sp = spill?;
                let (_, value) = sp.load::<V>(keys, self.id, key, ns, clock.deadline)?;
                sp.tombstone(keys, self.id, key.id, ns);
                Some(value)
            }
        }
    }

    /// Puts a slot back as it was (snapshot restore), its key reference already counted: replaces an
    /// existing one (dropping the reference again), keeps the timestamp.
    pub(crate) fn restore(&mut self, keys: &mut Keys, slot: Slot<V>) {
        let (key, ns) = (KeyRef { id: slot.key, hash: keys.hash(slot.key) }, slot.ns);
        match self.map.entry(
            slot_hash(key.hash, ns),
            |s| s.key == key.id && s.ns == ns,
            |s| slot_hash(keys.hash(s.key), s.ns),
        ) {
            Entry::Occupied(mut e) => {
                *e.get_mut() = slot;
                keys.release(key.id);
            }
            Entry::Vacant(v) => {
                v.insert(slot);
            }
        }
    }

    /// Visits up to `budget` buckets from where the last sweep stopped, removing expired slots (and
    /// expired parts of list and map values). Returns the buckets visited and whether the sweep reached
    /// the end of the table (the next one starts over). With a spill store, the store's copies of what
    /// it removes are older and so expired too: they are dropped when loaded, and need no tombstone.
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

/// Entries decoded by an [`EntryDecoder`]: a `Vec<Slot<V>>` whose keys are still indexes in their section.
pub(crate) type DecodedEntries = Box<dyn Any + Send>;

/// Decodes `count` entries of one value type from a snapshot section, counting each one in `refs` (by the
/// key's index in the section).
pub(crate) type EntryDecoder = fn(r: &mut Reader<'_>, count: usize, refs: &mut [u32]) -> Result<DecodedEntries>;

fn decode_entries<V: StateValue>(r: &mut Reader<'_>, count: usize, refs: &mut [u32]) -> Result<DecodedEntries> {
    // An entry takes at least 4 bytes: a corrupt count cannot make this allocate beyond the input.
    let mut out: Vec<Slot<V>> = Vec::with_capacity(count.min(r.rest().len() / 4));
    for _ in 0..count {
        let at = r.u32()?;
        *refs.get_mut(at as usize).ok_or_else(|| codec::corrupt("an entry names a key the group does not have"))? += 1;
        let ns = r.namespace()?;
        let ts = r.int()?;
        let value = codec::decode_value(r.bin()?)?;
        out.push(Slot { key: at, flags: DIRTY, ns, ts, value });
    }
    Ok(Box::new(out))
}

/// What the key state needs of a table without knowing its value type.
pub(crate) trait ErasedTable: Send + 'static {
    /// For typed access by the handles.
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// Number of entries (in memory).
    fn len(&self) -> usize;
    /// Whether the table has a TTL (and so takes part in the sweep).
    fn has_ttl(&self) -> bool;
    /// See [`Table::sweep`].
    fn sweep(&mut self, keys: &mut Keys, now: i64, budget: usize) -> (usize, bool);
    /// A copy, for a snapshot encoded on another thread.
    fn clone_box(&self) -> Box<dyn ErasedTable>;
    /// Appends every entry to the part of its key group, with the key as its index within the group:
    /// `place[id]` is (part index, key index), `u32::MAX` for a key that is not in the snapshot.
    fn write_groups(&self, place: &[(u32, u32)], parts: &mut [Part]) -> Result<()>;
    /// Room for `additional` more entries (before a restore).
    fn reserve(&mut self, keys: &Keys, additional: usize);
    /// The function that decodes entries written by [`write_groups`](Self::write_groups) for this table's
    /// value type; a plain function, so a restore can decode on another thread.
    fn entry_decoder(&self) -> EntryDecoder;
    /// Inserts entries from this table's [`entry_decoder`](Self::entry_decoder), the keys being `ids` by
    /// index, each key's references already counted.
    fn insert_decoded(&mut self, keys: &mut Keys, ids: &[KeyId], entries: DecodedEntries) -> Result<()>;
    /// Adds a put of every dirty entry to `batch`.
    fn collect_dirty(&self, keys: &Keys, batch: &mut SpillBatch) -> Result<()>;
    /// After the dirty entries were written: empties the cache (`evict`), or marks every entry clean and
    /// stored.
    fn after_spill(&mut self, keys: &mut Keys, evict: bool);
}

impl<V: StateValue> ErasedTable for Table<V> {
    fn as_any_mut(&mut self) -> &mut dyn Any {
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

    fn clone_box(&self) -> Box<dyn ErasedTable> {
        Box::new(self.clone())
    }

    fn write_groups(&self, place: &[(u32, u32)], parts: &mut [Part]) -> Result<()> {
        // In chunks: the look-ups of `place` (random, mostly cache misses) go first, in a tight loop, so
        // that the CPU overlaps them; then the encoding.
        let mut slots = self.map.iter();
        let mut chunk: Vec<(&Slot<V>, (u32, u32))> = Vec::with_capacity(CHUNK);
        loop {
            chunk.clear();
            chunk.extend(slots.by_ref().take(CHUNK).map(|s| (s, (u32::MAX, 0))));
            if chunk.is_empty() {
                return Ok(());
            }
            for (s, p) in chunk.iter_mut() {
                *p = place.get(s.key as usize).copied().unwrap_or((u32::MAX, 0));
            }
            for &(s, (part, at)) in &chunk {
                let Some(part) = parts.get_mut(part as usize) else { continue };
                let out = &mut part.buf;
                codec::put_uint(out, u64::from(at));
                codec::put_namespace(out, s.ns);
                codec::put_int(out, s.ts);
                codec::put_bin_with(out, |out| codec::encode_value(out, &s.value))?;
                part.count += 1;
            }
        }
    }

    fn reserve(&mut self, keys: &Keys, additional: usize) {
        self.map.reserve(additional, |s| slot_hash(keys.hash(s.key), s.ns));
    }

    fn entry_decoder(&self) -> EntryDecoder {
        decode_entries::<V>
    }

    fn insert_decoded(&mut self, keys: &mut Keys, ids: &[KeyId], entries: DecodedEntries) -> Result<()> {
        let entries = entries
            .downcast::<Vec<Slot<V>>>()
            .map_err(|_| EddyError::internal("restored entries decoded for another state type"))?;
        // In chunks: probing for the chunk's slots first, in a tight loop, overlaps the cache misses that
        // the inserts would otherwise wait for one after the other.
        let mut entries = entries.into_iter();
        let mut chunk: Vec<Slot<V>> = Vec::with_capacity(CHUNK);
        loop {
            chunk.clear();
            for mut slot in entries.by_ref().take(CHUNK) {
                // Until here `key` is the key's index in its section.
                slot.key = *ids
                    .get(slot.key as usize)
                    .ok_or_else(|| codec::corrupt("an entry names a key the group does not have"))?;
                chunk.push(slot);
            }
            if chunk.is_empty() {
                return Ok(());
            }
            let probe = |s: &&Slot<V>| {
                self.map.find(slot_hash(keys.hash(s.key), s.ns), |x| x.key == s.key && x.ns == s.ns).is_some()
            };
            std::hint::black_box(chunk.iter().filter(probe).count());
            for slot in chunk.drain(..) {
                self.restore(keys, slot);
            }
        }
    }

    fn collect_dirty(&self, keys: &Keys, batch: &mut SpillBatch) -> Result<()> {
        for s in self.map.iter().filter(|s| s.flags & DIRTY != 0) {
            batch.put_with(
                |out| put_store_key(out, keys.group(s.key), self.id, keys.key(s.key), s.ns),
                |out, mask| put_store_value(out, s.ts, mask, &s.value),
            )?;
        }
        Ok(())
    }

    fn after_spill(&mut self, keys: &mut Keys, evict: bool) {
        if evict {
            for s in self.map.drain() {
                keys.release(s.key);
            }
            self.cursor = 0;
        } else {
            self.map.iter_mut().for_each(|s| s.flags = 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_visits_every_bucket_within_budget_and_releases_keys() {
        let mut keys = Keys::new(4);
        let mut t: Table<u32> = Table::new(0, Some(Ttl { ms: 10, on_read: false }), None);
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
