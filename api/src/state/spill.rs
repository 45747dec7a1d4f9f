//! Spilling keyed state to an ordered key-value store: the plug-in that turns the heap tables into a
//! bounded cache (the redb backend in the `eddy` crate implements [`SpillStore`]).
//!
//! With a store attached ([`KeyedState::with_spill`](super::KeyedState::with_spill)), the tables hold a
//! cache of entries. A cache miss looks the entry up in the store and decodes it (dropping it when its TTL
//! has passed); writes stay in the cache, marked dirty; removals of entries the store may hold leave a
//! tombstone. When the cache holds more than its budget of entries plus tombstones,
//! [`KeyedState::spill_if_needed`](super::KeyedState::spill_if_needed) (called by the runtime between
//! batches, when no handle borrows into the cache) writes the dirty entries and tombstones as one sorted
//! batch and empties the cache, releasing the keys it referenced. Timers stay on the heap (as with Flink's
//! RocksDB backend and heap timers), so keys with timers stay in memory.
//!
//! # Store layout
//! A store entry's key is `group (u32 BE) | state (u32 BE, by declaration order) | canonical key |
//! namespace start, end (i64 BE with the sign bit flipped)`, so a key group's entries are one range, a
//! state's entries within it another. Its value is MessagePack: `ts (int) | key mask (uint) | value`.
//! The canonical key and mask are described in the `codec` module.
use super::codec::{self, Reader};
use super::keys::{KeyRef, Keys};
use super::{KeyId, Namespace};
use crate::error::{EddyError, Result};
use crate::value::OwnedDatum;
use hashbrown::HashSet;
use rustc_hash::FxBuildHasher;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// An ordered key-value store that keyed state spills to; one per operator subtask. It is scratch space:
/// writes need not be durable (checkpoints copy the state out), and the store goes when the state does.
pub trait SpillStore: Send {
    /// Reads the value stored under `key` into `out` (replacing its contents); false when there is none.
    fn get(&mut self, key: &[u8], out: &mut Vec<u8>) -> Result<bool>;
    /// Applies `batch` (sorted by key, each key once) as one transaction.
    fn write(&mut self, batch: &SpillBatch) -> Result<()>;
    /// A consistent read-only view of everything written so far, readable on another thread while writes
    /// go on (for snapshots).
    fn view(&mut self) -> Result<Box<dyn SpillView>>;
}

/// What [`SpillView::scan`] calls for each entry: `(key, value)`.
pub type ScanFn<'a> = dyn FnMut(&[u8], &[u8]) -> Result<()> + 'a;

/// A read-only, consistent view of a [`SpillStore`].
pub trait SpillView: Send {
    /// Calls `f(key, value)` for every entry with `start <= key < end`, in key order.
    fn scan(&self, start: &[u8], end: &[u8], f: &mut ScanFn<'_>) -> Result<()>;
}

/// A batch of puts and deletes for [`SpillStore::write`], kept in one buffer.
#[derive(Default)]
pub struct SpillBatch {
    data: Vec<u8>,
    /// (offset of the key in `data`, key length, value length or `u32::MAX` for a delete).
    items: Vec<(usize, u32, u32)>,
}

const DELETE: u32 = u32::MAX;

impl SpillBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put of `value` under `key`.
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        let at = self.data.len();
        self.data.extend_from_slice(key);
        self.data.extend_from_slice(value);
        self.items.push((at, key.len() as u32, value.len() as u32));
    }

    /// Adds a put whose key and then value are appended to the batch's buffer by `key` and `value` (no
    /// copy through a scratch buffer); `value` gets what `key` returned.
    pub(crate) fn put_with<T>(
        &mut self,
        key: impl FnOnce(&mut Vec<u8>) -> T,
        value: impl FnOnce(&mut Vec<u8>, T) -> Result<()>,
    ) -> Result<()> {
        let at = self.data.len();
        let t = key(&mut self.data);
        let k = self.data.len() - at;
        value(&mut self.data, t)?;
        let v = self.data.len() - at - k;
        self.items.push((at, k as u32, v as u32));
        Ok(())
    }

    /// Adds a delete of `key`.
    pub fn delete(&mut self, key: &[u8]) {
        let at = self.data.len();
        self.data.extend_from_slice(key);
        self.items.push((at, key.len() as u32, DELETE));
    }

    /// Number of puts and deletes.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn key_of(&self, item: (usize, u32, u32)) -> &[u8] {
        &self.data[item.0..item.0 + item.1 as usize]
    }

    /// Sorts by key; of the operations on one key, a put wins over a delete (the puts come from the cache,
    /// which is newer than any tombstone) and a later one over an earlier one.
    pub(crate) fn sort(&mut self) {
        let mut items = std::mem::take(&mut self.items);
        // Stable: equal keys keep their order, deletes first as they are added first.
        items.sort_by(|a, b| self.key_of(*a).cmp(self.key_of(*b)).then((a.2 != DELETE).cmp(&(b.2 != DELETE))));
        items.dedup_by(|later, earlier| {
            let same = self.key_of(*later) == self.key_of(*earlier);
            if same {
                *earlier = *later;
            }
            same
        });
        self.items = items;
    }

    /// The operations in order: `(key, Some(value))` for a put, `(key, None)` for a delete.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> + '_ {
        self.items.iter().map(|&(at, k, v)| {
            let key = &self.data[at..at + k as usize];
            let value = (v != DELETE).then(|| &self.data[at + k as usize..at + k as usize + v as usize]);
            (key, value)
        })
    }
}

/// Appends a store key (see the module docs).
#[inline]
pub(crate) fn put_store_key(out: &mut Vec<u8>, group: usize, state: u32, key: &[OwnedDatum], ns: Namespace) -> u64 {
    out.extend_from_slice(&(group as u32).to_be_bytes());
    out.extend_from_slice(&state.to_be_bytes());
    let mask = codec::put_key(out, key);
    put_store_namespace(out, ns);
    mask
}

/// Appends a namespace in store-key form.
#[inline]
pub(crate) fn put_store_namespace(out: &mut Vec<u8>, ns: Namespace) {
    out.extend_from_slice(&((ns.start as u64) ^ (1 << 63)).to_be_bytes());
    out.extend_from_slice(&((ns.end as u64) ^ (1 << 63)).to_be_bytes());
}

/// A store key taken apart.
pub(crate) struct StoreKey<'a> {
    pub group: u32,
    pub state: u32,
    pub key: &'a [u8],
    pub ns: Namespace,
}

/// Takes a store key apart.
pub(crate) fn parse_store_key(bytes: &[u8]) -> Result<StoreKey<'_>> {
    let bad = || codec::corrupt("malformed spill store key");
    let (group, rest) = bytes.split_first_chunk::<4>().ok_or_else(bad)?;
    let (state, rest) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
    let (key, end) = rest.split_last_chunk::<8>().ok_or_else(bad)?;
    let (key, start) = key.split_last_chunk::<8>().ok_or_else(bad)?;
    let flip = |b: &[u8; 8]| (u64::from_be_bytes(*b) ^ (1 << 63)) as i64;
    Ok(StoreKey {
        group: u32::from_be_bytes(*group),
        state: u32::from_be_bytes(*state),
        key,
        ns: Namespace { start: flip(start), end: flip(end) },
    })
}

/// Appends a store value: timestamp, key mask, encoded value.
#[inline]
pub(crate) fn put_store_value<V: Serialize>(out: &mut Vec<u8>, ts: i64, mask: u64, value: &V) -> Result<()> {
    codec::put_int(out, ts);
    codec::put_uint(out, mask);
    codec::encode_value(out, value)
}

/// A store value taken apart: timestamp, key mask, the encoded value.
pub(crate) fn parse_store_value(bytes: &[u8]) -> Result<(i64, u64, &[u8])> {
    let mut r = Reader::new(bytes);
    let ts = r.int()?;
    let mask = r.uint()?;
    Ok((ts, mask, r.rest()))
}

/// The spill side of a [`KeyedState`](super::KeyedState): the store, its budget and what is pending.
pub(crate) struct Spill {
    pub store: Box<dyn SpillStore>,
    /// Cache entries plus tombstones allowed before a spill.
    pub budget: usize,
    /// Store keys to delete at the next spill; looked up on a miss so a removed entry does not come back.
    pub tombstones: HashSet<Box<[u8]>, FxBuildHasher>,
    /// The first error of an access (which cannot return one); reported by the next `spill_if_needed`,
    /// and nothing is written to the store after it.
    pub error: Option<EddyError>,
    key_buf: Vec<u8>,
    value_buf: Vec<u8>,
}

impl Spill {
    pub(crate) fn new(store: Box<dyn SpillStore>, budget: usize) -> Self {
        Spill { store, budget, tombstones: HashSet::default(), error: None, key_buf: Vec::new(), value_buf: Vec::new() }
    }

    fn fail(&mut self, e: EddyError) {
        self.error.get_or_insert(e);
    }

    /// The live stored entry of state `state` for `key` and `ns`, as (timestamp, value). An expired one
    /// is dropped (and a tombstone left); an error is kept for `spill_if_needed` and reads as absent.
    #[cold]
    #[inline(never)]
    pub(crate) fn load<V: DeserializeOwned>(
        &mut self,
        keys: &Keys,
        state: u32,
        key: KeyRef,
        ns: Namespace,
        deadline: Option<i64>,
    ) -> Option<(i64, V)> {
        self.key_buf.clear();
        put_store_key(&mut self.key_buf, keys.group(key.id), state, keys.key(key.id), ns);
        if self.tombstones.contains(&self.key_buf[..]) {
            return None;
        }
        match self.store.get(&self.key_buf, &mut self.value_buf) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                self.fail(e);
                return None;
            }
        }
        let decoded = (|| -> Result<Option<(i64, V)>> {
            let (ts, _, bytes) = parse_store_value(&self.value_buf)?;
            if deadline.is_some_and(|d| ts <= d) {
                return Ok(None);
            }
            Ok(Some((ts, codec::decode_value(bytes)?)))
        })();
        match decoded {
            Ok(Some(v)) => Some(v),
            Ok(None) => {
                self.tombstones.insert(self.key_buf.as_slice().into());
                None
            }
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }

    /// Leaves a tombstone for the stored entry of state `state` for `key` and `ns`.
    #[cold]
    #[inline(never)]
    pub(crate) fn tombstone(&mut self, keys: &Keys, state: u32, key: KeyId, ns: Namespace) {
        self.key_buf.clear();
        put_store_key(&mut self.key_buf, keys.group(key), state, keys.key(key), ns);
        self.tombstones.insert(self.key_buf.as_slice().into());
    }
}

/// A [`SpillStore`] in memory (a `BTreeMap`): the reference implementation, for tests of the spill path
/// without a database.
#[derive(Default)]
pub struct MemoryStore {
    map: Arc<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl SpillStore for MemoryStore {
    fn get(&mut self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        out.clear();
        match self.map.get(key) {
            Some(v) => {
                out.extend_from_slice(v);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn write(&mut self, batch: &SpillBatch) -> Result<()> {
        // Copy on write: a view taken before keeps its own map.
        let map = Arc::make_mut(&mut self.map);
        for (k, v) in batch.iter() {
            match v {
                Some(v) => map.insert(k.to_vec(), v.to_vec()),
                None => map.remove(k),
            };
        }
        Ok(())
    }

    fn view(&mut self) -> Result<Box<dyn SpillView>> {
        Ok(Box::new(MemoryView(self.map.clone())))
    }
}

struct MemoryView(Arc<BTreeMap<Vec<u8>, Vec<u8>>>);

impl SpillView for MemoryView {
    fn scan(&self, start: &[u8], end: &[u8], f: &mut ScanFn<'_>) -> Result<()> {
        for (k, v) in self.0.range::<[u8], _>((std::ops::Bound::Included(start), std::ops::Bound::Excluded(end))) {
            f(k, v)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_sort_and_puts_win_over_deletes() {
        let mut b = SpillBatch::new();
        b.put(b"b", b"1");
        b.delete(b"a");
        b.delete(b"b");
        b.put(b"a", b"2");
        b.delete(b"c");
        b.sort();
        let ops: Vec<_> = b.iter().map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec))).collect();
        assert_eq!(
            ops,
            [(b"a".to_vec(), Some(b"2".to_vec())), (b"b".to_vec(), Some(b"1".to_vec())), (b"c".to_vec(), None)]
        );
        let mut store = MemoryStore::new();
        store.write(&b).unwrap();
        let view = store.view().unwrap();
        let mut d = SpillBatch::new();
        d.delete(b"a");
        store.write(&d).unwrap();
        let mut seen = Vec::new();
        view.scan(b"a", b"c", &mut |k, v| {
            seen.push((k.to_vec(), v.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.len(), 2, "the view is consistent: the later delete is not in it");
        let mut out = Vec::new();
        assert!(!store.get(b"a", &mut out).unwrap());
        assert!(store.get(b"b", &mut out).unwrap());
        assert_eq!(out, b"1");
    }

    #[test]
    fn store_keys_round_trip() {
        let mut k = Vec::new();
        let ns = Namespace::window(-5, 10);
        put_store_key(&mut k, 3, 2, &[OwnedDatum::Str("x".into())], ns);
        let p = parse_store_key(&k).unwrap();
        assert_eq!((p.group, p.state, p.ns), (3, 2, ns));
        assert_eq!(codec::decode_key(p.key, 0).unwrap().as_ref(), [OwnedDatum::Str("x".into())]);
        let mut n = Vec::new();
        put_store_namespace(&mut n, Namespace::NONE);
        assert!(parse_store_key(&n).is_err());
    }
}
