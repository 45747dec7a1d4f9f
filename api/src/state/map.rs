//! [`MapState`]: a map per key and namespace.
//!
//! With TTL, every entry carries its own timestamp and expires on its own, as in Flink.
use super::table::Clock;
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
        let Access { table, keys, key, now } = st.access::<MapValue<K, V>>(self.idx);
        let clock = table.clock(now, false);
        let slot = table.find(keys, key, ns, clock, |m, c| touch_one(m, k, c))?;
        slot.value.get(k).map(|e| &e.value)
    }

    /// The value of `k` for in-place changes; counts as a write for TTL.
    #[inline]
    pub fn get_mut<'s, Q>(&self, st: &'s mut KeyedState, ns: Namespace, k: &Q) -> Option<&'s mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Access { table, keys, key, now } = st.access::<MapValue<K, V>>(self.idx);
        let clock = table.clock(now, true);
        let slot = table.find(keys, key, ns, clock, |m, c| touch_one(m, k, c))?;
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
        let Access { table, keys, key, now } = st.access::<MapValue<K, V>>(self.idx);
        table.upsert(keys, key, ns, now, MapValue::default).value.insert(k, MapEntry { ts: now, value });
    }

    /// Removes `k`, returning its value if it was present and not expired.
    #[inline]
    pub fn remove<Q>(&self, st: &mut KeyedState, ns: Namespace, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Access { table, keys, key, now } = st.access::<MapValue<K, V>>(self.idx);
        let clock = table.clock(now, false);
        let mut removed = None;
        table.find(keys, key, ns, clock, |m, c| {
            removed = m.remove(k).filter(|e| !c.expired(e.ts)).map(|e| e.value);
            !m.is_empty()
        });
        removed
    }

    /// The live entries, in no particular order.
    pub fn iter<'s>(&self, st: &'s mut KeyedState, ns: Namespace) -> impl Iterator<Item = (&'s K, &'s V)> + 's {
        let Access { table, keys, key, now } = st.access::<MapValue<K, V>>(self.idx);
        let clock = table.clock(now, false);
        let slot = table.find(keys, key, ns, clock, |m, c| {
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
        let Access { table, keys, key, now } = st.access::<MapValue<K, V>>(self.idx);
        table.remove(keys, key, ns, now);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{key, state, w};
    use super::super::{StateDescriptor, StateTtl, TtlUpdate};
    use super::*;
    use std::time::Duration;

    fn sorted<'a>(it: impl Iterator<Item = (&'a String, &'a u32)>) -> Vec<(String, u32)> {
        let mut v: Vec<_> = it.map(|(k, v)| (k.clone(), *v)).collect();
        v.sort();
        v
    }

    #[test]
    fn put_get_remove_iter_clear() {
        let mut st = state();
        let m = st.map::<String, u32>(StateDescriptor::new("m")).unwrap();
        key(&mut st, 1);
        assert!(m.is_empty(&mut st, Namespace::NONE));
        m.put(&mut st, Namespace::NONE, "a".into(), 1);
        m.put(&mut st, Namespace::NONE, "b".into(), 2);
        m.put(&mut st, w(0), "a".into(), 10);
        key(&mut st, 2);
        assert_eq!(m.get(&mut st, Namespace::NONE, "a"), None);
        m.put(&mut st, Namespace::NONE, "a".into(), 100);
        key(&mut st, 1);
        assert_eq!(m.get(&mut st, Namespace::NONE, "a"), Some(&1));
        assert!(m.contains(&mut st, w(0), "a"));
        assert!(!m.contains(&mut st, w(0), "b"));
        if let Some(v) = m.get_mut(&mut st, Namespace::NONE, "b") {
            *v += 1;
        }
        assert_eq!(sorted(m.iter(&mut st, Namespace::NONE)), [("a".into(), 1), ("b".into(), 3)]);
        assert_eq!(m.remove(&mut st, Namespace::NONE, "a"), Some(1));
        assert_eq!(m.remove(&mut st, Namespace::NONE, "a"), None);
        assert_eq!(sorted(m.iter(&mut st, Namespace::NONE)), [("b".into(), 3)]);
        m.clear(&mut st, w(0));
        assert!(m.is_empty(&mut st, w(0)));
        assert_eq!(st.entry_count(), 2);
    }

    #[test]
    fn entries_expire_one_by_one() {
        let mut st = state();
        let ttl = StateTtl::new(Duration::from_millis(10));
        let m = st.map::<String, u32>(StateDescriptor::new("m").with_ttl(ttl)).unwrap();
        key(&mut st, 1);
        m.put(&mut st, Namespace::NONE, "a".into(), 1);
        st.set_processing_time(5);
        m.put(&mut st, Namespace::NONE, "b".into(), 2);
        st.set_processing_time(10);
        assert_eq!(m.get(&mut st, Namespace::NONE, "a"), None);
        assert!(!m.contains(&mut st, Namespace::NONE, "a"));
        assert_eq!(m.get(&mut st, Namespace::NONE, "b"), Some(&2));
        m.put(&mut st, Namespace::NONE, "c".into(), 3);
        st.set_processing_time(15);
        assert_eq!(sorted(m.iter(&mut st, Namespace::NONE)), [("c".into(), 3)]);
        st.set_processing_time(19);
        assert_eq!(m.remove(&mut st, Namespace::NONE, "c"), Some(3));
        assert_eq!(st.entry_count(), 0, "the map went with its last entry");

        // The sweep prunes partly expired maps, and removes fully expired ones.
        m.put(&mut st, w(0), "x".into(), 1);
        st.set_processing_time(25);
        m.put(&mut st, w(0), "y".into(), 2);
        key(&mut st, 2);
        m.put(&mut st, w(0), "z".into(), 3);
        st.set_processing_time(30);
        st.cleanup_expired(1 << 10);
        assert_eq!(st.entry_count(), 2);
        st.set_processing_time(0);
        key(&mut st, 1);
        assert_eq!(sorted(m.iter(&mut st, w(0))), [("y".into(), 2)]);
        st.set_processing_time(40);
        st.cleanup_expired(1 << 10);
        assert_eq!(st.entry_count(), 0);
        assert_eq!(st.key_count(), 1, "only the current key is left");
    }

    #[test]
    fn reads_restart_entry_clocks_with_on_read_and_write() {
        let mut st = state();
        let ttl = StateTtl::new(Duration::from_millis(10)).with_update(TtlUpdate::OnReadAndWrite);
        let m = st.map::<u32, u32>(StateDescriptor::new("m").with_ttl(ttl)).unwrap();
        key(&mut st, 1);
        m.put(&mut st, Namespace::NONE, 1, 1);
        m.put(&mut st, Namespace::NONE, 2, 2);
        st.set_processing_time(8);
        assert_eq!(m.get(&mut st, Namespace::NONE, &1), Some(&1));
        st.set_processing_time(12);
        assert_eq!(m.get(&mut st, Namespace::NONE, &2), None, "not read: expired");
        assert_eq!(m.get(&mut st, Namespace::NONE, &1), Some(&1), "read at 8: alive until 18");
        st.set_processing_time(21);
        assert_eq!(m.iter(&mut st, Namespace::NONE).count(), 1, "read at 12");
        st.set_processing_time(30);
        assert_eq!(m.iter(&mut st, Namespace::NONE).count(), 1, "iter read it at 21");
    }
}
