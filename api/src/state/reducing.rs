//! [`ReducingState`] and [`AggregatingState`]: one accumulated value per key and namespace that added
//! values are folded into.
use super::{Access, KeyedState, Namespace, StateValue};
use std::fmt;

/// A handle to a reducing state: one `T` per key and namespace; [`add`](Self::add) folds a value in with
/// the state's reduce function (e.g. a running sum or max).
pub struct ReducingState<T> {
    idx: u32,
    reduce: fn(&mut T, T),
}

impl<T> Clone for ReducingState<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for ReducingState<T> {}

impl<T> fmt::Debug for ReducingState<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReducingState({})", self.idx)
    }
}

impl<T: StateValue> ReducingState<T> {
    pub(crate) fn new(idx: u32, reduce: fn(&mut T, T)) -> Self {
        ReducingState { idx, reduce }
    }

    /// Folds `value` into the state (or sets it when empty or expired).
    #[inline]
    pub fn add(&self, st: &mut KeyedState, ns: Namespace, value: T) {
        let Access { table, keys, key, now, spill } = st.access::<T>(self.idx);
        table.merge(keys, spill, key, ns, now, value, self.reduce);
    }

    /// The accumulated value, if any.
    #[inline]
    pub fn get<'s>(&self, st: &'s mut KeyedState, ns: Namespace) -> Option<&'s T> {
        let Access { table, keys, key, now, spill } = st.access::<T>(self.idx);
        let clock = table.clock(now, false);
        table.find(keys, spill, key, ns, clock, |_, _| true).map(|s| &s.value)
    }

    /// Removes the accumulated value.
    #[inline]
    pub fn clear(&self, st: &mut KeyedState, ns: Namespace) {
        self.take(st, ns);
    }

    /// Removes the accumulated value and returns it, if any.
    #[inline]
    pub fn take(&self, st: &mut KeyedState, ns: Namespace) -> Option<T> {
        let Access { table, keys, key, now, spill } = st.access::<T>(self.idx);
        table.remove(keys, spill, key, ns, now)
    }
}

/// A handle to an aggregating state: one accumulator `Acc` per key and namespace, created by the
/// state's `init` and updated by its `add` with each input (e.g. a count and sum for an average).
pub struct AggregatingState<In, Acc> {
    idx: u32,
    init: fn() -> Acc,
    add: fn(&mut Acc, In),
}

impl<In, Acc> Clone for AggregatingState<In, Acc> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<In, Acc> Copy for AggregatingState<In, Acc> {}

impl<In, Acc> fmt::Debug for AggregatingState<In, Acc> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AggregatingState({})", self.idx)
    }
}

impl<In: 'static, Acc: StateValue> AggregatingState<In, Acc> {
    pub(crate) fn new(idx: u32, init: fn() -> Acc, add: fn(&mut Acc, In)) -> Self {
        AggregatingState { idx, init, add }
    }

    /// Adds one input to the accumulator (created first when absent or expired).
    #[inline]
    pub fn add(&self, st: &mut KeyedState, ns: Namespace, input: In) {
        let Access { table, keys, key, now, spill } = st.access::<Acc>(self.idx);
        (self.add)(&mut table.upsert(keys, spill, key, ns, now, self.init).value, input);
    }

    /// The accumulator, if any input was added.
    #[inline]
    pub fn get<'s>(&self, st: &'s mut KeyedState, ns: Namespace) -> Option<&'s Acc> {
        let Access { table, keys, key, now, spill } = st.access::<Acc>(self.idx);
        let clock = table.clock(now, false);
        table.find(keys, spill, key, ns, clock, |_, _| true).map(|s| &s.value)
    }

    /// Removes the accumulator.
    #[inline]
    pub fn clear(&self, st: &mut KeyedState, ns: Namespace) {
        self.take(st, ns);
    }

    /// Removes the accumulator and returns it, if any.
    #[inline]
    pub fn take(&self, st: &mut KeyedState, ns: Namespace) -> Option<Acc> {
        let Access { table, keys, key, now, spill } = st.access::<Acc>(self.idx);
        table.remove(keys, spill, key, ns, now)
    }
}
