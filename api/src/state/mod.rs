//! Keyed state and timers: the ProcessFunction layer, heap backend.
//!
//! An operator on a keyed stream owns one [`KeyedState`]. In `open` it declares its state by name and
//! gets typed, `Copy` handles back: [`ValueState`], [`ListState`], [`MapState`], [`ReducingState`],
//! [`AggregatingState`]. Per record it makes the record's key current
//! ([`KeyedState::set_current_key`]); every handle access then reads or writes the current key's state in
//! a [`Namespace`] (a window, or [`Namespace::NONE`]). Timers are registered for the current key in a
//! namespace, in event time or processing time; the runtime pops the due ones
//! ([`KeyedState::pop_event_timer`]) with their key made current, and calls the operator for each.
//!
//! State values are any `serde` type ([`StateValue`]), may expire after a processing-time TTL
//! ([`StateTtl`]), and every key hashes into a key group, so later issues can snapshot and move state
//! per key group (see [Snapshots](#snapshots)).
//!
//! # Example: a count per key and 10 s window, emitted by an event-time timer
//! ```
//! use eddy_api::key::FieldKeys;
//! use eddy_api::state::{KeyedState, Namespace, StateDescriptor};
//! use eddy_api::{Batch, KeyGroupRange};
//! use std::sync::Arc;
//!
//! let mut state = KeyedState::new(Arc::new(FieldKeys(vec![0])), KeyGroupRange { start: 0, end: 127 }, 128);
//! let count = state.value::<u64>(StateDescriptor::new("count"))?; // in the operator's `open`
//!
//! let mut batch = Batch::new(2); // (user, event time in ms)
//! for (user, time) in [("ann", 1_000), ("bob", 1_500), ("ann", 2_000), ("ann", 12_000)] {
//!     batch.push_str(user);
//!     batch.push_int(time);
//! }
//! for row in batch.rows() {
//!     state.set_current_key(row);
//!     let start = row.int(1).unwrap_or(0).div_euclid(10_000) * 10_000;
//!     let window = Namespace::window(start, start + 10_000);
//!     *count.get_or_insert_with(&mut state, window, || 0) += 1;
//!     // Fire at the end of the window: one timer per key and window, however many records.
//!     state.register_event_timer(window.end - 1, window);
//! }
//!
//! // The watermark reaches 10 s: the runtime pops the due timers, each with its key made current.
//! let mut fired = Vec::new();
//! while let Some(timer) = state.pop_event_timer(10_000) {
//!     let n = count.take(&mut state, timer.namespace).unwrap_or(0);
//!     fired.push((state.current_key()[0].to_string(), timer.namespace.start, n));
//! }
//! fired.sort();
//! assert_eq!(fired, [("ann".to_string(), 0, 2), ("bob".to_string(), 0, 1)]);
//! assert_eq!(state.next_event_timer(), Some(19_999));
//! state.clear_current_key();
//! assert_eq!(state.key_count(), 1, "bob has no state or timer left: released");
//! # Ok::<(), eddy_api::EddyError>(())
//! ```
//!
//! # Snapshots
//! Everything is organised by key so that a key group can be written and rebuilt on its own: the keys of
//! a group, each table's entries whose key is in the group, and the group's timers
//! (`KeyedState::visit_key_group`, internal). The checkpoint issue serializes these per group and
//! rebuilds a subtask's state from the groups it owns after a restore or rescale; the internal `table`
//! module describes the plug-in points.
mod keys;
mod list;
mod map;
mod reducing;
mod table;
mod timers;
mod ttl;
mod value;

pub use list::ListState;
pub use map::MapState;
pub use reducing::{AggregatingState, ReducingState};
pub use ttl::{StateDescriptor, StateTtl, TtlUpdate};
pub use value::ValueState;

use crate::batch::Row;
use crate::error::{EddyError, Result};
use crate::key::{KeyGroupRange, KeySelector};
use crate::value::OwnedDatum;
use keys::{KeyRef, Keys};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::any::{type_name, Any, TypeId};
use std::hash::Hash;
use std::sync::Arc;
use table::{ErasedTable, PruneFn, Table, Ttl};
use timers::Timers;

/// A small id for an interned key of one [`KeyedState`]. Stable while the key holds state or timers;
/// recycled once the key is released.
pub type KeyId = u32;

/// The [`KeyId`] meaning "no key" (before the first `set_current_key`).
pub const NO_KEY: KeyId = KeyId::MAX;

/// A scope of keyed state within a key, e.g. a window `[start, end)`; [`Namespace::NONE`] for plain
/// keyed state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Namespace {
    /// Start (e.g. of a window, inclusive).
    pub start: i64,
    /// End (e.g. of a window, exclusive).
    pub end: i64,
}

impl Namespace {
    /// The namespace of state that is not scoped (Flink's `VoidNamespace`; also covers all of time, like
    /// a global window).
    pub const NONE: Namespace = Namespace { start: i64::MIN, end: i64::MAX };

    /// The namespace of the window `[start, end)`.
    pub const fn window(start: i64, end: i64) -> Self {
        Namespace { start, end }
    }
}

/// The clock a timer follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TimeDomain {
    /// Fires when the watermark reaches its time.
    EventTime,
    /// Fires when the wall clock reaches its time.
    ProcessingTime,
}

/// A due timer, as popped by the runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Timer {
    /// When it was due (ms).
    pub time: i64,
    /// Its key (current when popped).
    pub key: KeyId,
    /// Its namespace.
    pub namespace: Namespace,
    /// Its clock.
    pub domain: TimeDomain,
}

/// A type that can be kept in keyed state: cloneable, serializable (for snapshots) and sendable.
pub trait StateValue: Clone + Serialize + DeserializeOwned + Send + 'static {}
impl<T: Clone + Serialize + DeserializeOwned + Send + 'static> StateValue for T {}

/// A type that can be a [`MapState`] key.
pub trait StateKey: StateValue + Eq + Hash {}
impl<T: StateValue + Eq + Hash> StateKey for T {}

/// One declared state.
struct Declared {
    name: String,
    /// "value", "list", ...: with `types`, for messages and the redeclaration check.
    kind: &'static str,
    types: String,
    table_type: TypeId,
    ttl: Option<StateTtl>,
    table: Box<dyn ErasedTable>,
    /// The reduce or add function of reducing and aggregating state.
    function: Option<Box<dyn Any + Send>>,
}

/// What [`KeyedState::visit_key_group`] shows of one key group (the snapshot layer implements it).
#[allow(dead_code)] // snapshot support: exercised by the tests now, used by the checkpoint issue
pub(crate) trait KeyGroupVisitor {
    /// A key of the group.
    fn key(&mut self, id: KeyId, key: &[OwnedDatum]);
    /// An entry of state `state` (by declaration order) for key `id`, written at processing time `ts`.
    /// The value is read through the typed table (see the `table` module).
    fn entry(&mut self, state: usize, id: KeyId, ns: Namespace, ts: i64);
    /// A timer of a key of the group.
    fn timer(&mut self, timer: Timer);
}

/// Typed access to one table for the current key, as the handles use it.
pub(crate) struct Access<'a, V> {
    pub table: &'a mut Table<V>,
    pub keys: &'a mut Keys,
    pub key: KeyRef,
    pub now: i64,
}

/// All keyed state and timers of one operator subtask, on the heap.
///
/// Costs: `set_current_key` is one key hash and one probe of the key index, whose entries hold the
/// owned key inline (no allocation for a known key); a state access is an index into the declared
/// tables, a `TypeId` check and a probe of an FxHash table on `(KeyId, Namespace)`.
pub struct KeyedState {
    selector: Arc<dyn KeySelector>,
    key_groups: KeyGroupRange,
    max_parallelism: usize,
    keys: Keys,
    tables: Vec<Declared>,
    now: i64,
    event: Timers,
    processing: Timers,
    /// The table where the incremental TTL sweep resumes.
    sweep_at: usize,
}

impl KeyedState {
    /// Empty state for a subtask that owns `key_groups` out of `max_parallelism`, keyed by `selector`
    /// (the same selector the input is partitioned by).
    pub fn new(selector: Arc<dyn KeySelector>, key_groups: KeyGroupRange, max_parallelism: usize) -> Self {
        KeyedState {
            selector,
            key_groups,
            max_parallelism: max_parallelism.max(1),
            keys: Keys::new(max_parallelism),
            tables: Vec::new(),
            now: 0,
            event: Timers::default(),
            processing: Timers::default(),
            sweep_at: 0,
        }
    }

    /// Declares (or gets again) a value state: one `T` per key and namespace.
    ///
    /// Declaring a name again returns the same handle; with another kind, type or TTL it is an
    /// [`EddyError::User`] naming the state.
    pub fn value<T: StateValue>(&mut self, desc: StateDescriptor) -> Result<ValueState<T>> {
        let idx = self.declare::<T>(desc, "value", type_name::<T>().to_owned(), None, None)?;
        Ok(ValueState::new(idx))
    }

    /// Declares (or gets again) a list state: a list of `T` per key and namespace; with TTL, elements
    /// expire one by one.
    pub fn list<T: StateValue>(&mut self, desc: StateDescriptor) -> Result<ListState<T>> {
        let prune: PruneFn<list::ListValue<T>> = list::ListValue::prune;
        let idx = self.declare(desc, "list", type_name::<T>().to_owned(), Some(prune), None)?;
        Ok(ListState::new(idx))
    }

    /// Declares (or gets again) a map state: a map from `K` to `V` per key and namespace; with TTL,
    /// entries expire one by one.
    pub fn map<K: StateKey, V: StateValue>(&mut self, desc: StateDescriptor) -> Result<MapState<K, V>> {
        let prune: PruneFn<map::MapValue<K, V>> = map::prune;
        let types = format!("{}, {}", type_name::<K>(), type_name::<V>());
        let idx = self.declare(desc, "map", types, Some(prune), None)?;
        Ok(MapState::new(idx))
    }

    /// Declares (or gets again) a reducing state: one `T` per key and namespace that every added value
    /// is folded into with `reduce`. A second declaration keeps the first `reduce`.
    pub fn reducing<T: StateValue>(
        &mut self,
        desc: StateDescriptor,
        reduce: fn(&mut T, T),
    ) -> Result<ReducingState<T>> {
        let name = desc.name.clone();
        let idx = self.declare::<T>(desc, "reducing", type_name::<T>().to_owned(), None, Some(Box::new(reduce)))?;
        Ok(ReducingState::new(idx, self.function::<fn(&mut T, T)>(idx, &name)?))
    }

    /// Declares (or gets again) an aggregating state: one accumulator `Acc` per key and namespace,
    /// created by `init` and updated by `add` with every added input. A second declaration keeps the
    /// first functions.
    pub fn aggregating<In: 'static, Acc: StateValue>(
        &mut self,
        desc: StateDescriptor,
        init: fn() -> Acc,
        add: fn(&mut Acc, In),
    ) -> Result<AggregatingState<In, Acc>> {
        let name = desc.name.clone();
        let types = format!("{} -> {}", type_name::<In>(), type_name::<Acc>());
        let idx = self.declare::<Acc>(desc, "aggregating", types, None, Some(Box::new((init, add))))?;
        let (init, add) = self.function::<(fn() -> Acc, fn(&mut Acc, In))>(idx, &name)?;
        Ok(AggregatingState::new(idx, init, add))
    }

    fn declare<V: StateValue>(
        &mut self,
        desc: StateDescriptor,
        kind: &'static str,
        types: String,
        prune: Option<PruneFn<V>>,
        function: Option<Box<dyn Any + Send>>,
    ) -> Result<u32> {
        let table_type = TypeId::of::<Table<V>>();
        if let Some(idx) = self.tables.iter().position(|d| d.name == desc.name) {
            let d = &self.tables[idx];
            if d.kind != kind || d.table_type != table_type || d.types != types {
                return Err(EddyError::user(format!(
                    "keyed state `{}` is declared as {}<{}> and again as {kind}<{types}>",
                    desc.name, d.kind, d.types
                )));
            }
            if d.ttl != desc.ttl {
                return Err(EddyError::user(format!(
                    "keyed state `{}` is declared twice with different TTLs ({:?} and {:?})",
                    desc.name, d.ttl, desc.ttl
                )));
            }
            return u32::try_from(idx).map_err(|_| EddyError::internal("too many states"));
        }
        let idx = u32::try_from(self.tables.len()).map_err(|_| EddyError::user("too many keyed states declared"))?;
        let ttl = desc.ttl.map(|t| Ttl { ms: t.millis(), on_read: t.update == TtlUpdate::OnReadAndWrite });
        self.tables.push(Declared {
            name: desc.name,
            kind,
            types,
            table_type,
            ttl: desc.ttl,
            table: Box::new(Table::<V>::new(ttl, prune)),
            function,
        });
        Ok(idx)
    }

    fn function<F: Copy + 'static>(&self, idx: u32, name: &str) -> Result<F> {
        self.tables
            .get(idx as usize)
            .and_then(|d| d.function.as_deref())
            .and_then(|f| f.downcast_ref::<F>())
            .copied()
            .ok_or_else(|| EddyError::internal(format!("keyed state `{name}`: functions of another type")))
    }

    /// Typed access to table `idx` for the current key (panics without a current key, or for a handle
    /// of another `KeyedState`: both are operator bugs).
    #[inline]
    pub(crate) fn access<V: 'static>(&mut self, idx: u32) -> Access<'_, V> {
        let key = self.keys.current_checked();
        let table = self.tables.get_mut(idx as usize).and_then(|d| d.table.as_any_mut().downcast_mut::<Table<V>>());
        match table {
            Some(table) => Access { table, keys: &mut self.keys, key, now: self.now },
            None => foreign_handle(),
        }
    }

    /// Makes the row's key current and returns its id; interns the key when new (the only allocation).
    #[inline]
    pub fn set_current_key(&mut self, row: Row<'_>) -> KeyId {
        let hash = self.selector.key_hash(row);
        let id = self.keys.intern_row(&*self.selector, row, hash);
        self.keys.set_current_hashed(KeyRef { id, hash });
        debug_assert!(
            self.key_groups.contains(self.keys.group(id)),
            "key group {} is outside this subtask's {:?}: the input is partitioned by another key",
            self.keys.group(id),
            self.key_groups
        );
        id
    }

    /// Like [`set_current_key`](Self::set_current_key), reading the key with another selector: for
    /// operators with inputs of different schemas (joins), whose per-input selectors produce equal key
    /// values for records that belong together.
    pub fn set_current_key_with(&mut self, selector: &dyn KeySelector, row: Row<'_>) -> KeyId {
        let hash = selector.key_hash(row);
        let id = self.keys.intern_row(selector, row, hash);
        self.keys.set_current_hashed(KeyRef { id, hash });
        id
    }

    /// Makes a known key current (e.g. one remembered with its state); [`NO_KEY`] clears the current key.
    /// Panics when `key` is not live (an operator bug).
    pub fn set_current_key_id(&mut self, key: KeyId) {
        if key != NO_KEY && !self.keys.is_live(key) {
            panic!("set_current_key_id({key}): not a live key of this keyed state");
        }
        self.keys.set_current(key);
    }

    /// Unpins the current key (releasing it when no state or timer refers to it); state accesses need a
    /// current key again afterwards.
    pub fn clear_current_key(&mut self) {
        self.keys.set_current(NO_KEY);
    }

    /// The current key's id ([`NO_KEY`] when none).
    #[inline]
    pub fn current_key_id(&self) -> KeyId {
        self.keys.current()
    }

    /// The current key's values (empty when none).
    #[inline]
    pub fn current_key(&self) -> &[OwnedDatum] {
        self.keys.key(self.keys.current())
    }

    /// The key group of the current key (0 when none).
    #[inline]
    pub fn key_group_of_current(&self) -> usize {
        self.keys.group(self.keys.current())
    }

    /// Number of live keys: those with state or timers, plus the current key.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Number of state entries (per key, namespace and state; a whole list or map counts once), expired
    /// ones included until they are removed.
    pub fn entry_count(&self) -> usize {
        self.tables.iter().map(|d| d.table.len()).sum()
    }

    /// The key groups this subtask owns.
    pub fn key_groups(&self) -> KeyGroupRange {
        self.key_groups
    }

    /// The number of key groups.
    pub fn max_parallelism(&self) -> usize {
        self.max_parallelism
    }

    /// Sets the processing time (ms) that TTL is measured in; the runtime calls it before handing
    /// control to the operator.
    #[inline]
    pub fn set_processing_time(&mut self, now_ms: i64) {
        self.now = now_ms;
    }

    /// The processing time last set.
    pub fn processing_time(&self) -> i64 {
        self.now
    }

    /// Registers an event-time timer for the current key; registering an existing timer does nothing.
    #[inline]
    pub fn register_event_timer(&mut self, time: i64, ns: Namespace) {
        let key = self.keys.current_checked().id;
        self.event.register(&mut self.keys, time, key, ns);
    }

    /// Deletes an event-time timer of the current key; a no-op when there is none.
    #[inline]
    pub fn delete_event_timer(&mut self, time: i64, ns: Namespace) {
        let key = self.keys.current_checked().id;
        self.event.delete(&mut self.keys, time, key, ns);
    }

    /// Registers a processing-time timer for the current key; registering an existing timer does nothing.
    #[inline]
    pub fn register_processing_timer(&mut self, time: i64, ns: Namespace) {
        let key = self.keys.current_checked().id;
        self.processing.register(&mut self.keys, time, key, ns);
    }

    /// Deletes a processing-time timer of the current key; a no-op when there is none.
    #[inline]
    pub fn delete_processing_timer(&mut self, time: i64, ns: Namespace) {
        let key = self.keys.current_checked().id;
        self.processing.delete(&mut self.keys, time, key, ns);
    }

    /// Removes the earliest event-time timer at or before `watermark` and makes its key current. Call in
    /// a loop, running the operator's `on_timer` for each: timers it registers that are already due pop
    /// in the same loop.
    pub fn pop_event_timer(&mut self, watermark: i64) -> Option<Timer> {
        let (time, key, namespace) = self.event.pop_due(watermark)?;
        self.fire(key);
        Some(Timer { time, key, namespace, domain: TimeDomain::EventTime })
    }

    /// Removes the earliest processing-time timer at or before `now` and makes its key current.
    pub fn pop_processing_timer(&mut self, now: i64) -> Option<Timer> {
        let (time, key, namespace) = self.processing.pop_due(now)?;
        self.fire(key);
        Some(Timer { time, key, namespace, domain: TimeDomain::ProcessingTime })
    }

    /// Pins the key of a popped timer, then drops the timer's reference to it.
    fn fire(&mut self, key: KeyId) {
        self.keys.set_current(key);
        self.keys.release(key);
    }

    /// The time of the earliest event-time timer.
    pub fn next_event_timer(&self) -> Option<i64> {
        self.event.next_time()
    }

    /// The time of the earliest processing-time timer (for the runtime to schedule a wake-up).
    pub fn next_processing_timer(&self) -> Option<i64> {
        self.processing.next_time()
    }

    /// Number of registered timers in `domain`.
    pub fn timer_count(&self, domain: TimeDomain) -> usize {
        match domain {
            TimeDomain::EventTime => self.event.len(),
            TimeDomain::ProcessingTime => self.processing.len(),
        }
    }

    /// Removes expired entries of TTL'd states, visiting at most `budget` hash buckets over all tables,
    /// from where the last call stopped; keys left without state or timers are released. The runtime calls
    /// it periodically so that state nobody reads again still goes away.
    pub fn cleanup_expired(&mut self, budget: usize) {
        let n = self.tables.len();
        if n == 0 {
            return;
        }
        let mut left = budget;
        // One more than the number of tables: the table where the last call stopped is swept to its end
        // first and, when the budget allows, from its start again at the end of the round.
        for _ in 0..=n {
            if left == 0 {
                return;
            }
            let at = self.sweep_at % n;
            let table = &mut self.tables[at].table;
            if table.has_ttl() {
                let (visited, done) = table.sweep(&mut self.keys, self.now, left);
                left = left.saturating_sub(visited);
                if !done {
                    return;
                }
            }
            self.sweep_at = (at + 1) % n;
        }
    }

    /// Shows everything stored for key group `group`: its keys, then every state entry of those keys,
    /// then their timers in firing order. Internal: the snapshot layer reads the values through the typed
    /// tables (see the `table` module) and rebuilds with `Keys::intern_owned` and `Table::restore`.
    #[allow(dead_code)] // snapshot support: exercised by the tests now, used by the checkpoint issue
    pub(crate) fn visit_key_group(&self, group: usize, v: &mut dyn KeyGroupVisitor) {
        for (id, key) in self.keys.iter_group(group) {
            v.key(id, key);
        }
        for (i, d) in self.tables.iter().enumerate() {
            d.table.for_each_in_group(&self.keys, group, &mut |id, ns, ts| v.entry(i, id, ns, ts));
        }
        for (timers, domain) in [(&self.event, TimeDomain::EventTime), (&self.processing, TimeDomain::ProcessingTime)] {
            for (time, key, namespace) in timers.iter_group(&self.keys, group) {
                v.timer(Timer { time, key, namespace, domain });
            }
        }
    }
}

impl std::fmt::Debug for KeyedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedState")
            .field("key_groups", &self.key_groups)
            .field("keys", &self.keys.len())
            .field("states", &self.tables.iter().map(|d| (&d.name, d.table.len())).collect::<Vec<_>>())
            .field("event_timers", &self.event.len())
            .field("processing_timers", &self.processing.len())
            .finish()
    }
}

#[cold]
#[inline(never)]
fn foreign_handle() -> ! {
    panic!("keyed state handle used with a KeyedState that did not declare it")
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for the state tests: a state keyed by an int field, and setting keys by value.
    use super::*;
    use crate::key::FieldKeys;
    use crate::{Batch, Datum};

    /// State keyed by field 0 over 128 key groups, all owned.
    pub(crate) fn state() -> KeyedState {
        KeyedState::new(Arc::new(FieldKeys(vec![0])), KeyGroupRange { start: 0, end: 127 }, 128)
    }

    /// Makes the int key `k` current.
    pub(crate) fn key(st: &mut KeyedState, k: i64) -> KeyId {
        let mut b = Batch::new(1);
        b.push_row(&[Datum::Int(k)]);
        st.set_current_key(b.row(0))
    }

    /// A window namespace `[start, start + 10)`.
    pub(crate) fn w(start: i64) -> Namespace {
        Namespace::window(start, start + 10)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{key, state, w};
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;
    use std::time::Duration;

    #[test]
    fn redeclaring_returns_the_same_handle_or_a_typed_error() {
        let mut st = state();
        let a = st.value::<u64>(StateDescriptor::new("count")).unwrap();
        let b = st.value::<u64>(StateDescriptor::new("count")).unwrap();
        key(&mut st, 1);
        a.set(&mut st, Namespace::NONE, 5);
        assert_eq!(b.get(&mut st, Namespace::NONE), Some(&5));
        let e = st.value::<String>(StateDescriptor::new("count")).unwrap_err().to_string();
        assert!(e.contains("`count`") && e.contains("value<u64>") && e.contains("value<alloc::string::String>"), "{e}");
        let e = st.list::<u64>(StateDescriptor::new("count")).unwrap_err().to_string();
        assert!(e.contains("list<u64>"), "{e}");
        let e = st.reducing::<u64>(StateDescriptor::new("count"), |a, b| *a += b).unwrap_err().to_string();
        assert!(e.contains("reducing<u64>"), "{e}");
        let ttl = StateDescriptor::new("count").with_ttl(StateTtl::new(Duration::from_secs(1)));
        assert!(st.value::<u64>(ttl).unwrap_err().to_string().contains("different TTLs"));
        let agg = st.aggregating::<u32, u64>(StateDescriptor::new("agg"), || 0, |a, x| *a += u64::from(x)).unwrap();
        let e = st.aggregating::<i32, u64>(StateDescriptor::new("agg"), || 0, |a, x| *a += x as u64).unwrap_err();
        assert!(e.to_string().contains("aggregating<u32 -> u64>"), "{e}");
        agg.add(&mut st, Namespace::NONE, 3);
        assert_eq!(agg.get(&mut st, Namespace::NONE), Some(&3));
    }

    #[test]
    #[should_panic(expected = "without a current key")]
    fn access_without_a_key_is_an_operator_bug() {
        let mut st = state();
        let v = st.value::<u64>(StateDescriptor::new("v")).unwrap();
        v.set(&mut st, Namespace::NONE, 1);
    }

    #[test]
    #[should_panic(expected = "did not declare it")]
    fn handles_of_another_state_are_refused() {
        let mut a = state();
        let mut b = state();
        let _ = b.value::<String>(StateDescriptor::new("s")).unwrap();
        let v = a.value::<u64>(StateDescriptor::new("v")).unwrap();
        key(&mut b, 1);
        v.set(&mut b, Namespace::NONE, 1);
    }

    #[test]
    fn current_key_is_known_without_interning_again() {
        let mut st = state();
        let a = key(&mut st, 7);
        assert_eq!(key(&mut st, 7), a);
        assert_eq!(st.current_key(), &[OwnedDatum::Int(7)]);
        assert_eq!(st.key_group_of_current(), crate::key::key_group(crate::key::hash_key(st.current_key()), 128));
        assert_eq!(st.key_count(), 1, "the current key is pinned");
        let b = key(&mut st, 8);
        assert_eq!(st.key_count(), 1, "key 7 had no state: released when 8 became current");
        assert_eq!(st.current_key_id(), b);
        st.clear_current_key();
        assert_eq!(st.key_count(), 0);
        assert_eq!(st.current_key_id(), NO_KEY);
        assert!(st.current_key().is_empty());
    }

    #[test]
    fn a_remembered_key_can_be_made_current_again() {
        fn send<T: Send>() {}
        send::<KeyedState>();
        let mut st = state();
        let v = st.value::<u64>(StateDescriptor::new("v")).unwrap();
        let a = key(&mut st, 1);
        v.set(&mut st, Namespace::NONE, 10);
        key(&mut st, 2);
        st.set_current_key_id(a);
        assert_eq!(st.current_key(), &[OwnedDatum::Int(1)]);
        assert_eq!(v.get(&mut st, Namespace::NONE), Some(&10));
        st.set_current_key_id(NO_KEY);
        assert_eq!(st.key_count(), 1, "key 2 had nothing: released");
        assert!(format!("{st:?}").contains("keys: 1"));
    }

    #[test]
    #[should_panic(expected = "not a live key")]
    fn a_released_key_id_is_refused() {
        let mut st = state();
        let a = key(&mut st, 1);
        key(&mut st, 2);
        st.set_current_key_id(a);
    }

    #[test]
    fn keys_are_released_when_state_and_timers_are_gone() {
        let mut st = state();
        let v = st.value::<u64>(StateDescriptor::new("v")).unwrap();
        let l = st.list::<u64>(StateDescriptor::new("l")).unwrap();
        let m = st.map::<String, u64>(StateDescriptor::new("m")).unwrap();
        for k in 0..100 {
            key(&mut st, k);
            v.set(&mut st, w(0), 1);
            v.set(&mut st, w(10), 1);
            l.add(&mut st, Namespace::NONE, 2);
            m.put(&mut st, w(0), "a".into(), 3);
            st.register_event_timer(100 + k, w(0));
            st.register_processing_timer(5, Namespace::NONE);
        }
        assert_eq!(st.key_count(), 100);
        assert_eq!(st.entry_count(), 400);
        for k in 0..100 {
            let id = key(&mut st, k);
            assert_eq!(st.keys.refs(id), 6);
            v.clear(&mut st, w(0));
            assert_eq!(v.take(&mut st, w(10)), Some(1));
            l.clear(&mut st, Namespace::NONE);
            assert_eq!(m.remove(&mut st, w(0), "a"), Some(3), "the last entry removes the map");
            st.delete_processing_timer(5, Namespace::NONE);
            assert_eq!(st.keys.refs(id), 1, "only the event timer is left");
        }
        assert_eq!(st.entry_count(), 0);
        assert_eq!(st.key_count(), 100);
        let mut fired = 0;
        while let Some(t) = st.pop_event_timer(i64::MAX) {
            assert_eq!(st.current_key_id(), t.key);
            assert_eq!(st.current_key(), &[OwnedDatum::Int(t.time - 100)]);
            fired += 1;
            assert_eq!(st.key_count(), 100 - fired + 1, "keys go as their timers fire; the current one stays");
        }
        assert_eq!(fired, 100);
        st.clear_current_key();
        assert_eq!(st.key_count(), 0);
        assert_eq!(st.timer_count(TimeDomain::EventTime) + st.timer_count(TimeDomain::ProcessingTime), 0);
        // Recycled ids serve new keys.
        key(&mut st, 1000);
        v.set(&mut st, Namespace::NONE, 9);
        key(&mut st, 1001);
        assert_eq!(st.key_count(), 2);
        key(&mut st, 1000);
        assert_eq!(v.get(&mut st, Namespace::NONE), Some(&9));
    }

    #[test]
    fn timers_fire_in_time_order_and_may_register_more_while_firing() {
        let mut st = state();
        let c = st.reducing::<u64>(StateDescriptor::new("fired"), |a, b| *a += b).unwrap();
        for (k, t) in [(1, 30), (2, 10), (3, 20), (1, 10), (2, 10)] {
            key(&mut st, k);
            st.register_event_timer(t, Namespace::NONE);
        }
        key(&mut st, 3);
        st.register_event_timer(25, w(0));
        st.delete_event_timer(25, w(0));
        st.delete_event_timer(26, w(0));
        assert_eq!(st.timer_count(TimeDomain::EventTime), 4, "(2, 10) twice collapses; the deleted one is gone");
        let mut seen = Vec::new();
        while let Some(t) = st.pop_event_timer(30) {
            assert_eq!(t.domain, TimeDomain::EventTime);
            let k = st.current_key()[0].as_datum().as_int().unwrap_or(0);
            seen.push((t.time, k));
            c.add(&mut st, Namespace::NONE, 1);
            if t.time == 10 && k == 2 {
                st.register_event_timer(15, Namespace::NONE); // due: fires in this loop
                st.register_event_timer(40, Namespace::NONE); // not yet
            }
        }
        let mut by_time = seen.clone();
        by_time.sort();
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [10, 10, 15, 20, 30]);
        assert_eq!(by_time, [(10, 1), (10, 2), (15, 2), (20, 3), (30, 1)]);
        assert_eq!(st.next_event_timer(), Some(40));
        assert_eq!(st.pop_event_timer(39), None);
        key(&mut st, 2);
        assert_eq!(c.get(&mut st, Namespace::NONE), Some(&2));

        // Processing time: its own queue.
        st.register_processing_timer(100, w(0));
        st.register_processing_timer(50, w(10));
        assert_eq!(st.next_processing_timer(), Some(50));
        assert_eq!(st.pop_event_timer(1000).map(|t| t.time), Some(40));
        let t = st.pop_processing_timer(60).unwrap_or_else(|| unreachable!());
        assert_eq!((t.time, t.namespace, t.domain), (50, w(10), TimeDomain::ProcessingTime));
        assert_eq!(st.pop_processing_timer(60), None);
        assert_eq!(st.pop_processing_timer(100).map(|t| t.namespace), Some(w(0)));
        assert_eq!(st.next_processing_timer(), None);
    }

    #[test]
    fn ttl_sweep_bounds_keys_of_an_endless_key_stream() {
        let mut st = state();
        let ttl = StateTtl::new(Duration::from_millis(100));
        let v = st.value::<u64>(StateDescriptor::new("seen").with_ttl(ttl)).unwrap();
        let plain = st.value::<u64>(StateDescriptor::new("plain")).unwrap();
        let mut max_keys = 0;
        for now in 0..10_000i64 {
            st.set_processing_time(now);
            key(&mut st, now);
            v.set(&mut st, Namespace::NONE, 1);
            if now % 1000 == 0 {
                plain.set(&mut st, Namespace::NONE, 1);
            }
            st.cleanup_expired(8);
            max_keys = max_keys.max(st.key_count());
        }
        assert!(max_keys < 400, "keys stay bounded by the TTL: at most {max_keys}");
        st.set_processing_time(20_000);
        st.cleanup_expired(1 << 20);
        st.clear_current_key();
        assert_eq!(st.key_count(), 10, "only the keys with state without TTL remain");
        assert_eq!(st.entry_count(), 10);
    }

    #[test]
    fn a_key_group_can_be_listed_and_rebuilt_elsewhere() {
        struct Collect(Vec<KeyId>, Vec<(usize, KeyId, Namespace, i64)>, Vec<Timer>);
        impl KeyGroupVisitor for Collect {
            fn key(&mut self, id: KeyId, _key: &[OwnedDatum]) {
                self.0.push(id);
            }
            fn entry(&mut self, state: usize, id: KeyId, ns: Namespace, ts: i64) {
                self.1.push((state, id, ns, ts));
            }
            fn timer(&mut self, timer: Timer) {
                self.2.push(timer);
            }
        }
        let mut a = state();
        let v = a.value::<u64>(StateDescriptor::new("v")).unwrap();
        let l = a.list::<String>(StateDescriptor::new("l")).unwrap();
        for k in 0..50 {
            a.set_processing_time(k);
            key(&mut a, k);
            v.set(&mut a, w(k), k as u64);
            l.add(&mut a, Namespace::NONE, format!("x{k}"));
            a.register_event_timer(k, w(k));
        }
        let group = a.key_group_of_current();
        let mut seen = Collect(Vec::new(), Vec::new(), Vec::new());
        a.visit_key_group(group, &mut seen);
        assert!(!seen.0.is_empty());
        assert_eq!(seen.1.len(), 2 * seen.0.len());
        assert_eq!(seen.2.len(), seen.0.len());
        assert!(seen.1.iter().all(|e| a.keys.group(e.1) == group));

        // Rebuild the group in a new state, as a restore would: keys, then typed entries, then timers.
        let mut b = state();
        let v2 = b.value::<u64>(StateDescriptor::new("v")).unwrap();
        let l2 = b.list::<String>(StateDescriptor::new("l")).unwrap();
        let mut ids = HashMap::new();
        for (id, k) in a.keys.iter_group(group) {
            ids.insert(id, b.keys.intern_owned(k.into()));
        }
        let copy = |from: &KeyedState, to: &mut KeyedState, i: usize| {
            let src = from.tables[i].table.as_any().downcast_ref::<Table<u64>>();
            let list = from.tables[i].table.as_any().downcast_ref::<Table<list::ListValue<String>>>();
            let (keys, tables) = (&mut to.keys, &mut to.tables);
            if let Some(src) = src {
                let dst = tables[i].table.as_any_mut().downcast_mut::<Table<u64>>().unwrap();
                for s in src.iter_group(&from.keys, group) {
                    dst.restore(keys, table::Slot { key: ids[&s.key], ..s.clone() });
                }
            }
            if let Some(src) = list {
                let dst = tables[i].table.as_any_mut().downcast_mut::<Table<list::ListValue<String>>>().unwrap();
                for s in src.iter_group(&from.keys, group) {
                    dst.restore(keys, table::Slot { key: ids[&s.key], ..s.clone() });
                }
            }
        };
        copy(&a, &mut b, 0);
        copy(&a, &mut b, 1);
        for t in seen.2 {
            b.event.register(&mut b.keys, t.time, ids[&t.key], t.namespace);
        }
        assert_eq!(b.key_count(), seen.0.len());
        for k in 0..50 {
            key(&mut b, k);
            let in_group = b.key_group_of_current() == group;
            assert_eq!(v2.get(&mut b, w(k)).copied(), in_group.then_some(k as u64));
            assert_eq!(l2.get(&mut b, Namespace::NONE).len(), usize::from(in_group));
        }
        assert_eq!(b.timer_count(TimeDomain::EventTime), seen.0.len());
    }

    #[derive(Clone, Debug)]
    enum Op {
        Key(u8),
        Set(u8, u32),
        Get(u8),
        Clear(u8),
        Advance(u8),
        Sweep(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u8..6).prop_map(Op::Key),
            4 => (0u8..3, any::<u32>()).prop_map(|(n, v)| Op::Set(n, v)),
            4 => (0u8..3).prop_map(Op::Get),
            2 => (0u8..3).prop_map(Op::Clear),
            1 => (0u8..60).prop_map(Op::Advance),
            1 => (0u8..20).prop_map(Op::Sweep),
        ]
    }

    proptest! {
        /// Random put/get/clear over keys and namespaces behave like a HashMap (with TTL: like a HashMap
        /// of timestamped values that hides old ones), and live keys are exactly those with entries plus
        /// the current one.
        #[test]
        fn value_state_equals_a_hash_map(ops in proptest::collection::vec(op(), 1..200), with_ttl in any::<bool>()) {
            const TTL: i64 = 50;
            let mut st = state();
            let mut desc = StateDescriptor::new("v");
            if with_ttl {
                desc = desc.with_ttl(StateTtl::new(Duration::from_millis(TTL as u64)));
            }
            let v = st.value::<u32>(desc).unwrap();
            let mut model: HashMap<(u8, u8), (u32, i64)> = HashMap::new();
            let mut now = 0;
            let mut cur = 0u8;
            key(&mut st, 0);
            let live = |e: &(u32, i64), now: i64| !with_ttl || e.1 + TTL > now;
            for op in ops {
                match op {
                    Op::Key(k) => { cur = k; key(&mut st, i64::from(k)); }
                    Op::Set(n, x) => { v.set(&mut st, w(i64::from(n)), x); model.insert((cur, n), (x, now)); }
                    Op::Get(n) => {
                        let want = model.get(&(cur, n)).filter(|e| live(e, now)).map(|e| e.0);
                        prop_assert_eq!(v.get(&mut st, w(i64::from(n))).copied(), want);
                    }
                    Op::Clear(n) => { v.clear(&mut st, w(i64::from(n))); model.remove(&(cur, n)); }
                    Op::Advance(d) => { now += i64::from(d); st.set_processing_time(now); }
                    Op::Sweep(b) => st.cleanup_expired(usize::from(b)),
                }
                model.retain(|_, e| live(e, now) || !with_ttl);
                let mut keys: std::collections::HashSet<u8> = model.keys().map(|k| k.0).collect();
                keys.insert(cur);
                prop_assert!(st.key_count() >= keys.len());
                if !with_ttl {
                    prop_assert_eq!(st.key_count(), keys.len());
                    prop_assert_eq!(st.entry_count(), model.len());
                }
            }
            // With TTL, a full sweep brings the state down to exactly the live model.
            st.cleanup_expired(usize::MAX);
            let mut keys: std::collections::HashSet<u8> = model.keys().map(|k| k.0).collect();
            keys.insert(cur);
            prop_assert_eq!(st.key_count(), keys.len());
            prop_assert_eq!(st.entry_count(), model.len());
        }
    }

    /// Per-access cost, release build: `cargo test --release -p eddy-api state::tests::bench -- --ignored --nocapture`.
    /// Random keys out of 10,000 (all in cache) and out of 300,000 (keys and state well beyond L2), each
    /// figure the best of 5 runs (the machine is shared), against the reference: `aggregate.rs`'s lookup,
    /// one hash table holding each owned key with its value, no interning.
    #[test]
    #[ignore]
    fn bench() {
        use crate::key::{FieldKeys, KeySelector};
        use crate::{Batch, Datum};
        use hashbrown::hash_table::{Entry, HashTable};
        use std::hint::black_box;
        use std::time::Instant;
        const N: usize = 1_000_000;
        macro_rules! best {
            ($name:expr, $body:block) => {{
                let mut best = f64::MAX;
                for _ in 0..5 {
                    let start = Instant::now();
                    $body
                    best = best.min(start.elapsed().as_nanos() as f64 / N as f64);
                }
                println!("  {:<56} {best:>6.1} ns/op", $name);
            }};
        }
        struct G {
            hash: u64,
            key: Box<[OwnedDatum]>,
            n: u64,
        }
        for keys in [10_000u64, 300_000] {
            println!("{keys} keys, random order:");
            let mut b = Batch::new(1);
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            for _ in 0..N {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b.push_row(&[Datum::Int((x % keys) as i64)]);
            }
            let sel = FieldKeys(vec![0]);
            let mut groups: HashTable<G> = HashTable::new();
            best!("reference: HashTable<(key, count)>, count += 1", {
                for row in b.rows() {
                    let hash = sel.key_hash(row);
                    match groups.entry(hash, |g| g.hash == hash && sel.key_matches(row, &g.key), |g| g.hash) {
                        Entry::Occupied(mut e) => e.get_mut().n += 1,
                        Entry::Vacant(v) => {
                            v.insert(G { hash, key: sel.key_of(row), n: 1 });
                        }
                    }
                }
            });
            drop(groups);
            let mut st = KeyedState::new(Arc::new(sel), KeyGroupRange { start: 0, end: 127 }, 128);
            let v = st.value::<u64>(StateDescriptor::new("v")).unwrap();
            let r = st.reducing::<u64>(StateDescriptor::new("r"), |a, b| *a += b).unwrap();
            let ttl = StateTtl::new(Duration::from_secs(3600));
            let t = st.value::<u64>(StateDescriptor::new("t").with_ttl(ttl)).unwrap();
            best!("set_current_key + ValueState get_or_insert_with += 1", {
                for row in b.rows() {
                    st.set_current_key(row);
                    *v.get_or_insert_with(&mut st, Namespace::NONE, || 0) += 1;
                }
            });
            best!("set_current_key", {
                for row in b.rows() {
                    black_box(st.set_current_key(row));
                }
            });
            best!("set_current_key + ValueState get", {
                for row in b.rows() {
                    st.set_current_key(row);
                    black_box(v.get(&mut st, Namespace::NONE));
                }
            });
            best!("set_current_key + ValueState set (with TTL)", {
                for row in b.rows() {
                    st.set_current_key(row);
                    t.set(&mut st, Namespace::NONE, 1);
                }
            });
            best!("set_current_key + ReducingState add (window namespace)", {
                for row in b.rows() {
                    st.set_current_key(row);
                    r.add(&mut st, w(0), 1);
                }
            });
            best!("set_current_key + register event timer (existing)", {
                for row in b.rows() {
                    st.set_current_key(row);
                    st.register_event_timer(10, w(0));
                }
            });
            let start = Instant::now();
            let mut n = 0;
            while st.pop_event_timer(i64::MAX).is_some() {
                n += 1;
            }
            println!("  {:<56} {:>6.1} ns/op", "pop_event_timer", start.elapsed().as_nanos() as f64 / n as f64);
        }

        println!("one key:");
        let mut st = state();
        let v = st.value::<u64>(StateDescriptor::new("v")).unwrap();
        let r = st.reducing::<u64>(StateDescriptor::new("r"), |a, b| *a += b).unwrap();
        let mut b = Batch::new(1);
        b.push_row(&[Datum::Int(1)]);
        let row = b.row(0);
        st.set_current_key(row);
        best!("set_current_key (same key)", {
            for _ in 0..N {
                black_box(st.set_current_key(row));
            }
        });
        best!("ValueState set", {
            for i in 0..N {
                v.set(&mut st, w(0), i as u64);
            }
        });
        best!("ValueState get", {
            for _ in 0..N {
                black_box(v.get(&mut st, w(0)));
            }
        });
        best!("ReducingState add (16 namespaces)", {
            for i in 0..N {
                r.add(&mut st, w((i & 15) as i64 * 10), 1);
            }
        });
        best!("register event timer (existing)", {
            for _ in 0..N {
                st.register_event_timer(10, w(0));
            }
        });
    }
}
