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
        let Access { table, keys, key, now, spill } = st.access::<T>(self.idx);
        let clock = table.clock(now, false);
        table.find(keys, spill, key, ns, clock, |_, _| true).map(|s| &s.value)
    }

    /// The value for in-place changes; counts as a write for TTL.
    #[inline]
    pub fn get_mut<'s>(&self, st: &'s mut KeyedState, ns: Namespace) -> Option<&'s mut T> {
        let Access { table, keys, key, now, spill } = st.access::<T>(self.idx);
        let clock = table.clock(now, true);
        table.find(keys, spill, key, ns, clock, |_, _| true).map(|s| &mut s.value)
    }

    /// The value, set to `init()` first when absent or expired; counts as a write for TTL.
    #[inline]
    pub fn get_or_insert_with<'s>(&self, st: &'s mut KeyedState, ns: Namespace, init: impl FnOnce() -> T) -> &'s mut T {
        let Access { table, keys, key, now, spill } = st.access::<T>(self.idx);
        &mut table.upsert(keys, spill, key, ns, now, init).value
    }

    /// Sets the value.
    #[inline]
    pub fn set(&self, st: &mut KeyedState, ns: Namespace, value: T) {
        let Access { table, keys, key, now, .. } = st.access::<T>(self.idx);
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
        let Access { table, keys, key, now, spill } = st.access::<T>(self.idx);
        table.remove(keys, spill, key, ns, now)
    }
}
