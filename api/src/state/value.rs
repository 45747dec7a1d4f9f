//! [`ValueState`]: one value per key and namespace.
use super::{Access, KeyedState, Namespace, StateValue};
use std::fmt;
use std::marker::PhantomData;

/// A handle to a value state: one `T` per key and namespace. `Copy`; every access is for the current key
/// of the [`KeyedState`] that declared it.
pub struct ValueState<T> {
    idx: u32,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for ValueState<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for ValueState<T> {}

impl<T> fmt::Debug for ValueState<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ValueState({})", self.idx)
    }
}

impl<T: StateValue> ValueState<T> {
    pub(crate) fn new(idx: u32) -> Self {
        ValueState { idx, _type: PhantomData }
    }

    /// The value, if set and not expired.
    #[inline]
    pub fn get<'s>(&self, st: &'s mut KeyedState, ns: Namespace) -> Option<&'s T> {
        let Access { table, keys, key, now } = st.access::<T>(self.idx);
        let clock = table.clock(now, false);
        table.find(keys, key, ns, clock, |_, _| true).map(|s| &s.value)
    }

    /// The value for in-place changes; counts as a write for TTL.
    #[inline]
    pub fn get_mut<'s>(&self, st: &'s mut KeyedState, ns: Namespace) -> Option<&'s mut T> {
        let Access { table, keys, key, now } = st.access::<T>(self.idx);
        let clock = table.clock(now, true);
        table.find(keys, key, ns, clock, |_, _| true).map(|s| &mut s.value)
    }

    /// The value, set to `init()` first when absent or expired; counts as a write for TTL.
    #[inline]
    pub fn get_or_insert_with<'s>(&self, st: &'s mut KeyedState, ns: Namespace, init: impl FnOnce() -> T) -> &'s mut T {
        let Access { table, keys, key, now } = st.access::<T>(self.idx);
        &mut table.upsert(keys, key, ns, now, init).value
    }

    /// Sets the value.
    #[inline]
    pub fn set(&self, st: &mut KeyedState, ns: Namespace, value: T) {
        let Access { table, keys, key, now } = st.access::<T>(self.idx);
        table.put(keys, key, ns, now, value);
    }

    /// Removes the value.
    #[inline]
    pub fn clear(&self, st: &mut KeyedState, ns: Namespace) {
        self.take(st, ns);
    }

    /// Removes the value and returns it, if it was set and not expired.
    #[inline]
    pub fn take(&self, st: &mut KeyedState, ns: Namespace) -> Option<T> {
        let Access { table, keys, key, now } = st.access::<T>(self.idx);
        table.remove(keys, key, ns, now)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{key, state, w};
    use super::super::{StateDescriptor, StateTtl, TtlUpdate};
    use super::*;
    use std::time::Duration;

    #[test]
    fn per_key_and_namespace() {
        let mut st = state();
        let v = st.value::<String>(StateDescriptor::new("v")).unwrap();
        key(&mut st, 1);
        assert_eq!(v.get(&mut st, Namespace::NONE), None);
        v.set(&mut st, Namespace::NONE, "a".into());
        v.set(&mut st, w(0), "b".into());
        key(&mut st, 2);
        assert_eq!(v.get(&mut st, Namespace::NONE), None);
        v.get_or_insert_with(&mut st, w(0), String::new).push('c');
        v.get_or_insert_with(&mut st, w(0), String::new).push('d');
        key(&mut st, 1);
        assert_eq!(v.get(&mut st, Namespace::NONE).map(String::as_str), Some("a"));
        assert_eq!(v.get(&mut st, w(0)).map(String::as_str), Some("b"));
        if let Some(s) = v.get_mut(&mut st, w(0)) {
            s.push('!');
        }
        assert_eq!(v.take(&mut st, w(0)).as_deref(), Some("b!"));
        assert_eq!(v.get(&mut st, w(0)), None);
        v.clear(&mut st, w(0));
        key(&mut st, 2);
        assert_eq!(v.get(&mut st, w(0)).map(String::as_str), Some("cd"));
        assert_eq!(st.entry_count(), 2);
    }

    #[test]
    fn ttl_on_create_and_write() {
        let mut st = state();
        let v = st.value::<u32>(StateDescriptor::new("v").with_ttl(StateTtl::new(Duration::from_millis(100)))).unwrap();
        key(&mut st, 1);
        st.set_processing_time(1_000);
        v.set(&mut st, Namespace::NONE, 1);
        st.set_processing_time(1_099);
        assert_eq!(v.get(&mut st, Namespace::NONE), Some(&1), "reads do not extend the life");
        st.set_processing_time(1_100);
        assert_eq!(v.get(&mut st, Namespace::NONE), None, "expired at write time + ttl");
        assert_eq!(st.entry_count(), 0, "removed on access");
        v.set(&mut st, Namespace::NONE, 2);
        st.set_processing_time(1_150);
        *v.get_or_insert_with(&mut st, Namespace::NONE, || 0) += 1;
        st.set_processing_time(1_249);
        assert_eq!(v.get(&mut st, Namespace::NONE), Some(&3), "writes extend the life");
        st.set_processing_time(1_250);
        assert_eq!(v.take(&mut st, Namespace::NONE), None, "expired values are not returned by take");
        v.set(&mut st, Namespace::NONE, 4);
        st.set_processing_time(2_000);
        assert_eq!(*v.get_or_insert_with(&mut st, Namespace::NONE, || 10), 10, "an expired value is replaced");
    }

    #[test]
    fn ttl_on_read_and_write() {
        let mut st = state();
        let ttl = StateTtl::new(Duration::from_millis(100)).with_update(TtlUpdate::OnReadAndWrite);
        let v = st.value::<u32>(StateDescriptor::new("v").with_ttl(ttl)).unwrap();
        key(&mut st, 1);
        v.set(&mut st, Namespace::NONE, 1);
        for now in [90, 180, 270] {
            st.set_processing_time(now);
            assert_eq!(v.get(&mut st, Namespace::NONE), Some(&1), "each read extends the life");
        }
        st.set_processing_time(370);
        assert_eq!(v.get(&mut st, Namespace::NONE), None);
    }

    #[test]
    fn cleanup_removes_what_nobody_reads() {
        let mut st = state();
        let v = st.value::<u32>(StateDescriptor::new("v").with_ttl(StateTtl::new(Duration::from_secs(1)))).unwrap();
        for k in 0..1000 {
            st.set_processing_time(k);
            key(&mut st, k);
            v.set(&mut st, w(0), 1);
        }
        st.set_processing_time(1_500);
        let mut calls = 0;
        while st.entry_count() > 499 {
            st.cleanup_expired(16);
            calls += 1;
            assert!(calls < 1000, "the sweep makes progress");
        }
        assert_eq!(st.entry_count(), 499, "written at 501..=999: alive until 1501..");
        st.cleanup_expired(1 << 20);
        assert_eq!(st.entry_count(), 499);
        assert_eq!(st.key_count(), 499, "released with their state (the current key holds state)");
    }
}
