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
        let Access { table, keys, key, now } = st.access::<T>(self.idx);
        table.merge(keys, key, ns, now, value, self.reduce);
    }

    /// The accumulated value, if any.
    #[inline]
    pub fn get<'s>(&self, st: &'s mut KeyedState, ns: Namespace) -> Option<&'s T> {
        let Access { table, keys, key, now } = st.access::<T>(self.idx);
        let clock = table.clock(now, false);
        table.find(keys, key, ns, clock, |_, _| true).map(|s| &s.value)
    }

    /// Removes the accumulated value.
    #[inline]
    pub fn clear(&self, st: &mut KeyedState, ns: Namespace) {
        self.take(st, ns);
    }

    /// Removes the accumulated value and returns it, if any.
    #[inline]
    pub fn take(&self, st: &mut KeyedState, ns: Namespace) -> Option<T> {
        let Access { table, keys, key, now } = st.access::<T>(self.idx);
        table.remove(keys, key, ns, now)
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
        let Access { table, keys, key, now } = st.access::<Acc>(self.idx);
        (self.add)(&mut table.upsert(keys, key, ns, now, self.init).value, input);
    }

    /// The accumulator, if any input was added.
    #[inline]
    pub fn get<'s>(&self, st: &'s mut KeyedState, ns: Namespace) -> Option<&'s Acc> {
        let Access { table, keys, key, now } = st.access::<Acc>(self.idx);
        let clock = table.clock(now, false);
        table.find(keys, key, ns, clock, |_, _| true).map(|s| &s.value)
    }

    /// Removes the accumulator.
    #[inline]
    pub fn clear(&self, st: &mut KeyedState, ns: Namespace) {
        self.take(st, ns);
    }

    /// Removes the accumulator and returns it, if any.
    #[inline]
    pub fn take(&self, st: &mut KeyedState, ns: Namespace) -> Option<Acc> {
        let Access { table, keys, key, now } = st.access::<Acc>(self.idx);
        table.remove(keys, key, ns, now)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{key, state, w};
    use super::super::{StateDescriptor, StateTtl};
    use super::*;
    use std::time::Duration;

    #[test]
    fn reduces_per_key_and_namespace() {
        let mut st = state();
        let max = st.reducing::<i64>(StateDescriptor::new("max"), |a, b| *a = (*a).max(b)).unwrap();
        for (k, ns, v) in [(1, 0, 5), (1, 0, 3), (1, 10, 1), (2, 0, 9), (1, 0, 7)] {
            key(&mut st, k);
            max.add(&mut st, w(ns), v);
        }
        key(&mut st, 1);
        assert_eq!(max.get(&mut st, w(0)), Some(&7));
        assert_eq!(max.get(&mut st, w(10)), Some(&1));
        assert_eq!(max.take(&mut st, w(10)), Some(1));
        max.clear(&mut st, w(0));
        assert_eq!(max.get(&mut st, w(0)), None);
        key(&mut st, 2);
        assert_eq!(max.get(&mut st, w(0)), Some(&9));
    }

    #[test]
    fn an_expired_value_restarts_the_reduction() {
        let mut st = state();
        let ttl = StateTtl::new(Duration::from_millis(10));
        let sum = st.reducing::<u64>(StateDescriptor::new("sum").with_ttl(ttl), |a, b| *a += b).unwrap();
        key(&mut st, 1);
        sum.add(&mut st, Namespace::NONE, 1);
        st.set_processing_time(5);
        sum.add(&mut st, Namespace::NONE, 2);
        st.set_processing_time(14);
        assert_eq!(sum.get(&mut st, Namespace::NONE), Some(&3));
        st.set_processing_time(15);
        sum.add(&mut st, Namespace::NONE, 4);
        assert_eq!(sum.get(&mut st, Namespace::NONE), Some(&4));
    }

    #[test]
    fn aggregates_inputs_into_an_accumulator() {
        let mut st = state();
        let avg = st
            .aggregating::<f64, (u64, f64)>(StateDescriptor::new("avg"), || (0, 0.0), |a, x| *a = (a.0 + 1, a.1 + x))
            .unwrap();
        key(&mut st, 1);
        for x in [1.0, 2.0, 6.0] {
            avg.add(&mut st, Namespace::NONE, x);
        }
        assert_eq!(avg.get(&mut st, Namespace::NONE), Some(&(3, 9.0)));
        assert_eq!(avg.take(&mut st, Namespace::NONE), Some((3, 9.0)));
        avg.clear(&mut st, Namespace::NONE);
        assert_eq!(avg.get(&mut st, Namespace::NONE), None);
    }
}
