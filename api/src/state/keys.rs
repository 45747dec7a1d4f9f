//! Key interning: every key seen by a keyed operator gets a small [`KeyId`] that state tables and timers
//! refer to, so the owned key (a boxed slice of values) is allocated once per key and never hashed or
//! compared again on the hot path.
//!
//! A row is looked up by its key hash and [`KeySelector::key_matches`] against the interned keys, without
//! allocation. Keys are reference-counted by the state entries (one per key and namespace and state) and
//! timers that refer to them; the current key is pinned. A key that is neither referenced nor current is
//! released at once and its id recycled, so a stream of ever-new keys whose state expires stays bounded.
//! Ids are therefore only stable while the key is referenced: an operator must not keep a `KeyId` of its
//! own across calls unless the key holds state or a timer.
use super::codec;
use super::{KeyId, NO_KEY};
use crate::batch::Row;
use crate::error::Result;
#[cfg(test)]
use crate::key::hash_key;
use crate::key::{key_group, owned_keys_eq, KeySelector};
use crate::value::OwnedDatum;
use hashbrown::hash_table::{Entry, HashTable};

/// An owned key; a single value (the common `key_by: [field]`) is stored inline, so comparing an int key
/// reads no memory beyond the index entry.
#[derive(Clone)]
enum OwnedKey {
    One(OwnedDatum),
    Many(Box<[OwnedDatum]>),
}

impl OwnedKey {
    fn new(key: Box<[OwnedDatum]>) -> Self {
        if key.len() != 1 {
            return OwnedKey::Many(key);
        }
        match key.into_vec().pop() {
            Some(one) => OwnedKey::One(one),
            None => OwnedKey::Many(Box::default()),
        }
    }

    /// Decodes a canonical key (see the `codec` module) without an allocation for a single value.
    fn decode(bytes: &[u8], mask: u64) -> Result<Self> {
        if let Some(one) = codec::single_value(bytes, mask) {
            return Ok(OwnedKey::One(one));
        }
        let (mut first, mut rest) = (None, Vec::new());
        codec::walk_key(bytes, |i, d| {
            let v = codec::owned_datum(i, d, mask);
            if i == 0 {
                first = Some(v);
            } else {
                rest.push(v);
            }
        })?;
        Ok(match first {
            Some(one) if rest.is_empty() => OwnedKey::One(one),
            first => OwnedKey::Many(first.into_iter().chain(rest).collect()),
        })
    }

    #[inline]
    fn as_slice(&self) -> &[OwnedDatum] {
        match self {
            OwnedKey::One(one) => std::slice::from_ref(one),
            OwnedKey::Many(many) => many,
        }
    }
}

/// A key read from a snapshot, decoded (on any thread) but not interned yet.
pub(crate) struct RestoredKey {
    key: OwnedKey,
    hash: u64,
}

impl RestoredKey {
    /// Decodes a key in canonical form whose key hash is `hash`.
    pub(crate) fn decode(bytes: &[u8], mask: u64, hash: u64) -> Result<Self> {
        Ok(RestoredKey { key: OwnedKey::decode(bytes, mask)?, hash })
    }

    /// Its key hash.
    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }
}

/// A live key: its id and its key hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeyRef {
    /// The id.
    pub id: KeyId,
    /// The key hash ([`KeySelector::key_hash`]).
    pub hash: u64,
}

/// What is known of a key id without probing the index.
#[derive(Clone, Copy)]
struct Meta {
    hash: u64,
    group: u32,
    live: bool,
}

/// An entry of the key index: the owned key, its id and reference count, in 32 bytes. Switching to a
/// known key touches one entry of the index and nothing else (the previous key's entry, whose count
/// decides whether it is released, was touched by the previous switch).
#[derive(Clone)]
struct Interned {
    key: OwnedKey,
    id: KeyId,
    /// State entries and timers referring to the key.
    refs: u32,
}

/// The interned keys of one operator subtask, with the current key.
pub(crate) struct Keys {
    /// By id.
    meta: Vec<Meta>,
    /// The live keys, hashed by their key hash (kept in `meta`, read when the index grows).
    index: HashTable<Interned>,
    free: Vec<KeyId>,
    current: KeyRef,
    max_parallelism: usize,
}

impl Keys {
    /// No keys yet; key groups out of `max_parallelism` (at least 1).
    pub(crate) fn new(max_parallelism: usize) -> Self {
        Keys {
            meta: Vec::new(),
            index: HashTable::new(),
            free: Vec::new(),
            current: KeyRef { id: NO_KEY, hash: 0 },
            max_parallelism: max_parallelism.clamp(1, u32::MAX as usize),
        }
    }

    /// Number of live keys.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// The current key, or [`NO_KEY`].
    #[inline]
    pub(crate) fn current(&self) -> KeyId {
        self.current.id
    }

    /// The current key; panics when none is set (an operator bug, like Flink's "No key set").
    #[inline]
    pub(crate) fn current_checked(&self) -> KeyRef {
        if self.current.id == NO_KEY {
            no_current_key();
        }
        self.current
    }

    /// Whether `id` is a live key.
    pub(crate) fn is_live(&self, id: KeyId) -> bool {
        self.meta.get(id as usize).is_some_and(|m| m.live)
    }

    /// The key hash of a live id (the current key's without reading `meta`).
    #[inline]
    pub(crate) fn hash(&self, id: KeyId) -> u64 {
        if id == self.current.id {
            return self.current.hash;
        }
        self.meta.get(id as usize).map_or(0, |m| m.hash)
    }

    /// The key group of a live id (0 for [`NO_KEY`]).
    #[inline]
    pub(crate) fn group(&self, id: KeyId) -> usize {
        self.meta.get(id as usize).map_or(0, |m| m.group as usize)
    }

    /// The index entry of a live id.
    #[inline]
    fn entry(&self, id: KeyId) -> Option<&Interned> {
        if !self.is_live(id) {
            return None;
        }
        self.index.find(self.hash(id), |e| e.id == id)
    }

    /// The owned key of a live id (empty for [`NO_KEY`] or a free id): one probe of the index.
    #[inline]
    pub(crate) fn key(&self, id: KeyId) -> &[OwnedDatum] {
        self.entry(id).map_or(&[], |e| e.key.as_slice())
    }

    /// References to a live id (state entries and timers), for tests.
    pub(crate) fn refs(&self, id: KeyId) -> u32 {
        self.entry(id).map_or(0, |e| e.refs)
    }

    /// The id of the row's key (with hash `hash`), interning it when new; no allocation for a known key.
    #[inline]
    pub(crate) fn intern_row(&mut self, selector: &dyn KeySelector, row: Row<'_>, hash: u64) -> KeyId {
        // `find` first: cheaper than `entry` for the common case of a known key.
        if let Some(e) = self.index.find(hash, |e| selector.key_matches(row, e.key.as_slice())) {
            return e.id;
        }
        let id = alloc(&mut self.meta, &mut self.free, hash, self.max_parallelism);
        let meta = &self.meta;
        self.index.insert_unique(hash, Interned { key: OwnedKey::new(selector.key_of(row)), id, refs: 0 }, |e| {
            meta[e.id as usize].hash
        });
        id
    }

    /// The id of an owned key, interning it when new.
    #[cfg(test)]
    pub(crate) fn intern_owned(&mut self, key: Box<[OwnedDatum]>) -> KeyId {
        let hash = hash_key(&key);
        let meta = &self.meta;
        let entry = self.index.entry(hash, |e| owned_keys_eq(e.key.as_slice(), &key), |e| meta[e.id as usize].hash);
        match entry {
            Entry::Occupied(e) => e.get().id,
            Entry::Vacant(v) => {
                let id = alloc(&mut self.meta, &mut self.free, hash, self.max_parallelism);
                v.insert(Interned { key: OwnedKey::new(key), id, refs: 0 });
                id
            }
        }
    }

    /// The id of a key decoded from a snapshot, interning it when new, with `refs` references from the
    /// state entries and timers about to be restored for it.
    pub(crate) fn intern_restored(&mut self, restored: RestoredKey, refs: u32) -> KeyId {
        let RestoredKey { key, hash } = restored;
        let meta = &self.meta;
        let entry =
            self.index.entry(hash, |e| owned_keys_eq(e.key.as_slice(), key.as_slice()), |e| meta[e.id as usize].hash);
        match entry {
            Entry::Occupied(mut e) => {
                e.get_mut().refs += refs;
                e.get().id
            }
            Entry::Vacant(v) => {
                let id = alloc(&mut self.meta, &mut self.free, hash, self.max_parallelism);
                v.insert(Interned { key, id, refs });
                id
            }
        }
    }

    /// Probes the index for each hash without using the result: a restore does it for a chunk of keys
    /// before interning them, so that the cache misses overlap rather than come one after the other.
    pub(crate) fn warm(&self, hashes: impl Iterator<Item = u64>) {
        std::hint::black_box(hashes.filter(|&h| self.index.find(h, |_| false).is_some()).count());
    }

    /// Room for `additional` more keys without growing the index (before a restore).
    pub(crate) fn reserve(&mut self, additional: usize) {
        let meta = &self.meta;
        self.index.reserve(additional, |e| meta[e.id as usize].hash);
    }

    /// Makes `id` (a live key, or [`NO_KEY`]) current, releasing the previous current key if nothing
    /// refers to it any more.
    #[inline]
    pub(crate) fn set_current(&mut self, id: KeyId) {
        let hash = self.meta.get(id as usize).map_or(0, |m| m.hash);
        self.set_current_hashed(KeyRef { id, hash });
    }

    /// [`set_current`](Self::set_current) when the key hash is at hand.
    #[inline]
    pub(crate) fn set_current_hashed(&mut self, key: KeyRef) {
        let old = std::mem::replace(&mut self.current, key);
        if old.id != key.id && old.id != NO_KEY {
            if let Ok(e) = self.index.find_entry(old.hash, |e| e.id == old.id) {
                if e.get().refs == 0 {
                    e.remove();
                    self.free_id(old.id);
                }
            }
        }
    }

    /// One more state entry or timer refers to `id` (a live key; usually the current one).
    #[inline]
    pub(crate) fn retain(&mut self, id: KeyId) {
        let hash = self.hash(id);
        if let Some(e) = self.index.find_mut(hash, |e| e.id == id) {
            e.refs += 1;
        }
    }

    /// A state entry or timer of `id` is gone; the key is released when it was the last and the key is
    /// not current.
    #[inline]
    pub(crate) fn release(&mut self, id: KeyId) {
        if !self.is_live(id) {
            return;
        }
        let current = id == self.current.id;
        let Ok(mut e) = self.index.find_entry(self.hash(id), |e| e.id == id) else { return };
        let refs = &mut e.get_mut().refs;
        debug_assert!(*refs != 0, "release of an unreferenced key");
        *refs = refs.saturating_sub(1);
        if *refs == 0 && !current {
            e.remove();
            self.free_id(id);
        }
    }

    /// Releases `id` if nothing refers to it and it is not current (a key interned by a restore that got
    /// no state after all).
    pub(crate) fn release_if_unused(&mut self, id: KeyId) {
        if id == self.current.id || !self.is_live(id) {
            return;
        }
        if let Ok(e) = self.index.find_entry(self.hash(id), |e| e.id == id) {
            if e.get().refs == 0 {
                e.remove();
                self.free_id(id);
            }
        }
    }

    /// A copy of the keys that state or timers refer to, for a snapshot encoded on another thread.
    pub(crate) fn copy(&self) -> KeysCopy {
        KeysCopy { index: self.index.clone(), id_bound: self.meta.len() }
    }

    /// Marks an id, already out of the index, free for reuse.
    fn free_id(&mut self, id: KeyId) {
        if let Some(m) = self.meta.get_mut(id as usize) {
            m.live = false;
            self.free.push(id);
        }
    }
}

/// The keys of a [`Keys`] as a snapshot copies them (a clone of the index, without the per-id data).
pub(crate) struct KeysCopy {
    index: HashTable<Interned>,
    id_bound: usize,
}

impl KeysCopy {
    /// Every key that state or a timer refers to (the current key alone is left out).
    pub(crate) fn iter_referenced(&self) -> impl Iterator<Item = (KeyId, &[OwnedDatum])> + '_ {
        self.index.iter().filter(|e| e.refs > 0).map(|e| (e.id, e.key.as_slice()))
    }

    /// One more than the largest id handed out (to size tables indexed by id).
    pub(crate) fn id_bound(&self) -> usize {
        self.id_bound
    }
}

/// A recycled or new id for a key with hash `hash`.
fn alloc(meta: &mut Vec<Meta>, free: &mut Vec<KeyId>, hash: u64, max_parallelism: usize) -> KeyId {
    // `max_parallelism` fits in u32 (see `Keys::new`), so does the group.
    let m = Meta { hash, group: key_group(hash, max_parallelism) as u32, live: true };
    if let Some(id) = free.pop() {
        meta[id as usize] = m;
        return id;
    }
    let id = match KeyId::try_from(meta.len()) {
        Ok(id) if id != NO_KEY => id,
        _ => too_many_keys(),
    };
    meta.push(m);
    id
}

#[cold]
#[inline(never)]
fn no_current_key() -> ! {
    panic!("keyed state accessed without a current key: call set_current_key (or set_current_key_id) first")
}

#[cold]
#[inline(never)]
fn too_many_keys() -> ! {
    panic!("keyed state: more than 4 billion live keys in one subtask")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::FieldKeys;
    use crate::{Batch, Datum};

    #[test]
    fn interning_recycles_released_ids() {
        let sel = FieldKeys(vec![0]);
        let mut b = Batch::new(1);
        for k in [1, 2, 1] {
            b.push_row(&[Datum::Int(k)]);
        }
        let mut keys = Keys::new(128);
        let id = |keys: &mut Keys, i: usize| keys.intern_row(&sel, b.row(i), sel.key_hash(b.row(i)));
        let a = id(&mut keys, 0);
        let c = id(&mut keys, 1);
        assert_ne!(a, c);
        assert_eq!(id(&mut keys, 2), a, "same key, same id");
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.key(a), &[OwnedDatum::Int(1)]);
        assert_eq!(keys.group(a), key_group(sel.key_hash(b.row(0)), 128));

        keys.retain(a);
        keys.set_current(c);
        keys.release(a);
        assert!(!keys.is_live(a), "unreferenced and not current: released");
        assert!(keys.is_live(c), "current keys are pinned");
        keys.set_current(NO_KEY);
        assert_eq!(keys.len(), 0);
        let again = keys.intern_owned(Box::new([OwnedDatum::Int(2)]));
        assert!(again == a || again == c, "ids are recycled");
        assert_eq!(keys.intern_row(&sel, b.row(1), sel.key_hash(b.row(1))), again, "owned and row keys agree");
        assert_eq!(keys.copy().iter_referenced().count(), 0, "the current key is not referenced");
        keys.retain(again);
        assert_eq!(keys.copy().iter_referenced().count(), 1);
    }
}
