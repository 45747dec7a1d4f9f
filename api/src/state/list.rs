//! [`ListState`]: a list of values per key and namespace.
//!
//! With TTL, every element carries the processing time it was added (or the list last updated or, with
//! `OnReadAndWrite`, read), and elements expire one by one as in Flink. The list also remembers its
//! oldest timestamp, so a read only scans for expired elements when one is actually due.
use super::table::Clock;
use super::{Access, KeyedState, Namespace, StateValue};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::marker::PhantomData;

/// The stored value of one list: elements, their timestamps (only with TTL) and the oldest timestamp.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ListValue<T> {
    items: Vec<T>,
    stamps: Vec<i64>,
    oldest: i64,
}

impl<T> Default for ListValue<T> {
    fn default() -> Self {
        ListValue { items: Vec::new(), stamps: Vec::new(), oldest: i64::MAX }
    }
}

impl<T> ListValue<T> {
    fn new(items: Vec<T>, now: Option<i64>) -> Self {
        match now {
            Some(now) => ListValue { stamps: vec![now; items.len()], items, oldest: now },
            None => ListValue { items, stamps: Vec::new(), oldest: i64::MAX },
        }
    }

    #[inline]
    fn push(&mut self, item: T, now: Option<i64>) {
        self.items.push(item);
        if let Some(now) = now {
            self.stamps.push(now);
            self.oldest = self.oldest.min(now);
        }
    }

    /// Drops the elements stamped at or before `deadline`; true when the list is empty.
    pub(crate) fn prune(&mut self, deadline: i64) -> bool {
        if self.oldest <= deadline && self.stamps.len() == self.items.len() {
            let mut kept = 0;
            for i in 0..self.items.len() {
                if self.stamps[i] > deadline {
                    self.items.swap(kept, i);
                    self.stamps[kept] = self.stamps[i];
                    kept += 1;
                }
            }
            self.items.truncate(kept);
            self.stamps.truncate(kept);
            self.oldest = self.stamps.iter().copied().min().unwrap_or(i64::MAX);
        }
        self.items.is_empty()
    }

    /// Expires elements and restarts their clocks for an access; false when nothing is left.
    #[inline]
    fn touch(&mut self, clock: Clock) -> bool {
        if let Some(deadline) = clock.deadline {
            if self.prune(deadline) {
                return false;
            }
            if clock.refresh {
                self.stamps.fill(clock.now);
                self.oldest = clock.now;
            }
        }
        !self.items.is_empty()
    }
}

/// A handle to a list state: a list of `T` per key and namespace. `Copy`; every access is for the
/// current key. An empty list is the same as no list.
pub struct ListState<T> {
    idx: u32,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for ListState<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for ListState<T> {}

impl<T> fmt::Debug for ListState<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ListState({})", self.idx)
    }
}

impl<T: StateValue> ListState<T> {
    pub(crate) fn new(idx: u32) -> Self {
        ListState { idx, _type: PhantomData }
    }

    /// Appends an element.
    #[inline]
    pub fn add(&self, st: &mut KeyedState, ns: Namespace, item: T) {
        let Access { table, keys, key, now, spill } = st.access::<ListValue<T>>(self.idx);
        let stamp = table.ttl().map(|_| now);
        table.upsert(keys, spill, key, ns, now, ListValue::default).value.push(item, stamp);
    }

    /// Appends elements.
    pub fn add_all(&self, st: &mut KeyedState, ns: Namespace, items: impl IntoIterator<Item = T>) {
        let mut items = items.into_iter().peekable();
        if items.peek().is_none() {
            return;
        }
        let Access { table, keys, key, now, spill } = st.access::<ListValue<T>>(self.idx);
        let stamp = table.ttl().map(|_| now);
        let list = &mut table.upsert(keys, spill, key, ns, now, ListValue::default).value;
        items.for_each(|item| list.push(item, stamp));
    }

    /// The elements in insertion order (empty when there are none).
    #[inline]
    pub fn get<'s>(&self, st: &'s mut KeyedState, ns: Namespace) -> &'s [T] {
        let Access { table, keys, key, now, spill } = st.access::<ListValue<T>>(self.idx);
        let clock = table.clock(now, false);
        table.find(keys, spill, key, ns, clock, ListValue::touch).map_or(&[], |s| &s.value.items)
    }

    /// Replaces the elements (an empty vector clears the list).
    pub fn update(&self, st: &mut KeyedState, ns: Namespace, items: Vec<T>) {
        if items.is_empty() {
            return self.clear(st, ns);
        }
        let Access { table, keys, key, now, .. } = st.access::<ListValue<T>>(self.idx);
        let stamp = table.ttl().map(|_| now);
        table.put(keys, key, ns, now, ListValue::new(items, stamp));
    }

    /// Removes the list and returns its live elements (e.g. to emit a window's contents without copying).
    pub fn take(&self, st: &mut KeyedState, ns: Namespace) -> Vec<T> {
        let Access { table, keys, key, now, spill } = st.access::<ListValue<T>>(self.idx);
        let deadline = table.clock(now, false).deadline;
        let Some(mut list) = table.remove(keys, spill, key, ns, now) else { return Vec::new() };
        if let Some(deadline) = deadline {
            list.prune(deadline);
        }
        list.items
    }

    /// Removes the list.
    #[inline]
    pub fn clear(&self, st: &mut KeyedState, ns: Namespace) {
        let Access { table, keys, key, now, spill } = st.access::<ListValue<T>>(self.idx);
        table.remove(keys, spill, key, ns, now);
    }
}
