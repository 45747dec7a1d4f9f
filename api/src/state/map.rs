//! [`MapState`]: a map per key and namespace.
//!
//! With TTL, every entry carries its own timestamp and expires on its own, as in Flink.
use super::table::{Clock, DIRTY};
use super::{Access, KeyedState, Namespace, StateKey, StateValue};
use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;

/// One map entry with the processing time of its last update.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct MapEntry<V> {
    ts: i64,
    value: V,
}

/// The stored value of one map.
pub(crate) type MapValue<K, V> = HashMap<K, MapEntry<V>, FxBuildHasher>;

/// Drops the entries stamped at or before `deadline`; true when the map is empty.
pub(crate) fn prune<K, V>(map: &mut MapValue<K, V>, deadline: i64) -> bool {
    map.retain(|_, e| e.ts > deadline);
    map.is_empty()
}

/// Expires and (for reads that restart clocks) touches the entry of `k`; false when the map is empty.
#[inline]
fn touch_one<K, V, Q>(map: &mut MapValue<K, V>, k: &Q, clock: Clock) -> bool
where
    K: Borrow<Q> + Eq + Hash,
    Q: Hash + Eq + ?Sized,
{
    if clock.deadline.is_some() {
        if let Some(e) = map.get_mut(k) {
            if clock.expired(e.ts) {
                map.remove(k);
            } else if clock.refresh {
                e.ts = clock.now;
            }
        }
    }
    !map.is_empty()
}

/// A handle to a map state: a map from `K` to `V` per key and namespace. `Copy`; every access is for the
/// current key. An empty map is the same as no map.
pub struct MapState<K, V> {
    idx: u32,
    _type: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for MapState<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for MapState<K, V> {}

impl<K, V> fmt::Debug for MapState<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MapState({})", self.idx)
    }
}

impl<K: StateKey, V: StateValue> MapState<K, V> {
    pub(crate) fn new(idx: u32) -> Self {
        MapState { idx, _type: PhantomData }
    }

    /// The value of `k`, if present and not expired.
    #[inline]
    pub fn get<'s, Q>(&self, st: &'s mut KeyedState, ns: Namespace, k: &Q) -> Option<&'s V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Access { table, keys, key, now, spill } = st.access::<MapValue<K, V>>(self.idx);
        let clock = table.clock(now, false);
        let slot = table.find(keys, spill, key, ns, clock, |m, c| touch_one(m, k, c))?;
        slot.value.get(k).map(|e| &e.value)
    }

    /// The value of `k` for in-place changes; counts as a write for TTL.
    #[inline]
    pub fn get_mut<'s, Q>(&self, st: &'s mut KeyedState, ns: Namespace, k: &Q) -> Option<&'s mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Access { table, keys, key, now, spill } = st.access::<MapValue<K, V>>(self.idx);
        let clock = table.clock(now, true);
        let slot = table.find(keys, spill, key, ns, clock, |m, c| touch_one(m, k, c))?;
        slot.value.get_mut(k).map(|e| &mut e.value)
    }

    /// Whether `k` is present and not expired.
    #[inline]
    pub fn contains<Q>(&self, st: &mut KeyedState, ns: Namespace, k: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(st, ns, k).is_some()
    }

    /// Sets the value of `k`.
    #[inline]
    pub fn put(&self, st: &mut KeyedState, ns: Namespace, k: K, value: V) {
        let Access { table, keys, key, now, spill } = st.access::<MapValue<K, V>>(self.idx);
        table.upsert(keys, spill, key, ns, now, MapValue::default).value.insert(k, MapEntry { ts: now, value });
    }

    /// Removes `k`, returning its value if it was present and not expired.
    #[inline]
    pub fn remove<Q>(&self, st: &mut KeyedState, ns: Namespace, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Access { table, keys, key, now, spill } = st.access::<MapValue<K, V>>(self.idx);
        let clock = table.clock(now, false);
        let (mut removed, mut changed) = (None, false);
        let slot = table.find(keys, spill, key, ns, clock, |m, c| {
            let entry = m.remove(k);
            changed = entry.is_some();
            removed = entry.filter(|e| !c.expired(e.ts)).map(|e| e.value);
            !m.is_empty()
        });
        if let Some(s) = slot.filter(|_| changed) {
            s.flags |= DIRTY; // changed through a read clock
        }
        removed
    }

    /// The live entries, in no particular order.
    pub fn iter<'s>(&self, st: &'s mut KeyedState, ns: Namespace) -> impl Iterator<Item = (&'s K, &'s V)> + 's {
        let Access { table, keys, key, now, spill } = st.access::<MapValue<K, V>>(self.idx);
        let clock = table.clock(now, false);
        let slot = table.find(keys, spill, key, ns, clock, |m, c| {
            if let Some(deadline) = c.deadline {
                if prune(m, deadline) {
                    return false;
                }
                if c.refresh {
                    m.values_mut().for_each(|e| e.ts = c.now);
                }
            }
            !m.is_empty()
        });
        slot.map(|s| &s.value).into_iter().flat_map(|m| m.iter().map(|(k, e)| (k, &e.value)))
    }

    /// Whether the map has no live entries.
    pub fn is_empty(&self, st: &mut KeyedState, ns: Namespace) -> bool {
        self.iter(st, ns).next().is_none()
    }

    /// Removes the whole map.
    #[inline]
    pub fn clear(&self, st: &mut KeyedState, ns: Namespace) {
        let Access { table, keys, key, now, spill } = st.access::<MapValue<K, V>>(self.idx);
        table.remove(keys, spill, key, ns, now);
    }
}
