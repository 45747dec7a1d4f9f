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
//! # Backends
//! The runtime creates keyed state through a [`StateBackend`], chosen per job: [`HeapBackend`] keeps
//! everything in memory; a spilling backend (the `eddy` crate's redb backend) attaches a [`SpillStore`] so
//! that the tables become a bounded cache over it (see [`KeyedState::with_spill`]). Because handles return
//! references into the cache, a spill only happens at a safe point: the runtime calls
//! [`KeyedState::spill_if_needed`] after every batch, timer and watermark hook.
//!
//! # Snapshots
//! [`KeyedState::snapshot`] captures the state of the key groups a subtask owns and returns a
//! [`SnapshotJob`] that encodes it on any thread; [`KeyedState::restore`] rebuilds a subtask's state from
//! the snapshots of all subtasks of the run that took the checkpoint, whatever its parallelism, keeping the
//! key groups it owns. The format is the same for every backend (see the `snapshot` module).
//!
//! # Conformance
//! [`conformance`] is the test suite every backend passes: `conformance::run_all(&backend)`.
mod backend;
mod codec;
pub mod conformance;
mod keys;
mod list;
mod map;
mod reducing;
mod snapshot;
mod spill;
mod table;
mod timers;
mod ttl;
mod value;

pub use backend::{HeapBackend, MemorySpillBackend, StateBackend};
pub use list::ListState;
pub use map::MapState;
pub use reducing::{AggregatingState, ReducingState};
pub use snapshot::SnapshotJob;
pub use spill::{MemoryStore, ScanFn, SpillBatch, SpillStore, SpillView};
pub use ttl::{StateDescriptor, StateTtl, TtlUpdate};
pub use value::ValueState;

use crate::batch::Row;
use crate::error::{EddyError, Result};
use crate::key::{KeyGroupRange, KeySelector};
use crate::value::OwnedDatum;
use keys::{KeyRef, Keys};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use spill::Spill;
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

/// Typed access to one table for the current key, as the handles use it.
pub(crate) struct Access<'a, V> {
    pub table: &'a mut Table<V>,
    pub keys: &'a mut Keys,
    pub key: KeyRef,
    pub now: i64,
    /// The spill store, when the tables are a cache over one.
    pub spill: Option<&'a mut Spill>,
}

/// All keyed state and timers of one operator subtask: on the heap, or with the heap as a cache over a
/// [`SpillStore`].
///
/// Costs: `set_current_key` is one key hash and one probe of the key index, whose entries hold the
/// owned key inline (no allocation for a known key); a state access is an index into the declared
/// tables, a `TypeId` check and a probe of an FxHash table on `(KeyId, Namespace)`. With a spill store, a
/// miss adds a look-up in the store.
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
    /// The store the tables spill to, if any.
    spill: Option<Box<Spill>>,
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
            spill: None,
        }
    }

    /// Empty state whose tables are a cache over `store`: when they hold more than `cache_entries` entries
    /// (plus pending deletes), [`spill_if_needed`](Self::spill_if_needed) writes the changed entries to the
    /// store in one sorted batch and empties the cache. Timers stay in memory, and so do the keys that
    /// have timers.
    ///
    /// With a store, [`key_count`](Self::key_count) and [`entry_count`](Self::entry_count) count what is
    /// in memory only, and a [`KeyId`] stays valid across a spill only while its key has a timer (or is
    /// current). Entries whose TTL passed are dropped when loaded; the store is not swept.
    pub fn with_spill(
        selector: Arc<dyn KeySelector>,
        key_groups: KeyGroupRange,
        max_parallelism: usize,
        store: Box<dyn SpillStore>,
        cache_entries: usize,
    ) -> Self {
        let mut st = Self::new(selector, key_groups, max_parallelism);
        st.spill = Some(Box::new(Spill::new(store, cache_entries)));
        st
    }

    /// Whether the state spills to a store (so counts cover memory only).
    pub fn has_spill_store(&self) -> bool {
        self.spill.is_some()
    }

    /// Spills when the cache is over its budget, and reports an error met by an access since the last
    /// call (a failed read of the store, which reads as absent). The runtime calls it after every batch,
    /// timer and watermark hook, when no handle borrows into the state. One branch without a store.
    #[inline]
    pub fn spill_if_needed(&mut self) -> Result<()> {
        match &self.spill {
            None => Ok(()),
            Some(_) => self.spill_slow(),
        }
    }

    #[cold]
    #[inline(never)]
    fn spill_slow(&mut self) -> Result<()> {
        let cached = self.entry_count();
        let Some(spill) = self.spill.as_deref_mut() else { return Ok(()) };
        if let Some(e) = spill.error.take() {
            return Err(e);
        }
        if cached + spill.tombstones.len() > spill.budget {
            self.spill_all(true)?;
        }
        Ok(())
    }

    /// Writes the dirty entries and tombstones to the store in one sorted batch, then empties the cache
    /// (`evict`) or marks it clean. Nothing is written once an access failed: the error is returned.
    fn spill_all(&mut self, evict: bool) -> Result<()> {
        let Some(spill) = self.spill.as_deref_mut() else { return Ok(()) };
        if let Some(e) = spill.error.take() {
            return Err(e);
        }
        let mut batch = spill::SpillBatch::new();
        for key in spill.tombstones.drain() {
            batch.delete(&key);
        }
        for d in &self.tables {
            d.table.collect_dirty(&self.keys, &mut batch)?;
        }
        batch.sort();
        if !batch.is_empty() {
            spill.store.write(&batch)?;
        }
        for d in &mut self.tables {
            d.table.after_spill(&mut self.keys, evict);
        }
        Ok(())
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
            table: Box::new(Table::<V>::new(idx, ttl, prune)),
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
            Some(table) => Access { table, keys: &mut self.keys, key, now: self.now, spill: self.spill.as_deref_mut() },
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

    /// Number of live keys: those with state or timers, plus the current key. With a spill store: in
    /// memory (with state in the cache, or timers).
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Number of state entries (per key, namespace and state; a whole list or map counts once), expired
    /// ones included until they are removed. With a spill store: in the cache.
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
}

impl std::fmt::Debug for KeyedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedState")
            .field("key_groups", &self.key_groups)
            .field("keys", &self.keys.len())
            .field("states", &self.tables.iter().map(|d| (&d.name, d.table.len())).collect::<Vec<_>>())
            .field("event_timers", &self.event.len())
            .field("processing_timers", &self.processing.len())
            .field("spill", &self.spill.as_ref().map(|s| (s.budget, s.tombstones.len())))
            .finish()
    }
}

#[cold]
#[inline(never)]
fn foreign_handle() -> ! {
    panic!("keyed state handle used with a KeyedState that did not declare it")
}

#[cfg(test)]
mod tests {
    use super::conformance::{self, ModelOp};
    use super::*;
    use crate::key::FieldKeys;
    use crate::Batch;
    use proptest::prelude::*;
    use std::time::Duration;

    /// State keyed by field 0 over 128 key groups, all owned.
    fn state() -> KeyedState {
        KeyedState::new(Arc::new(FieldKeys(vec![0])), KeyGroupRange { start: 0, end: 127 }, 128)
    }

    /// Makes the int key `k` current.
    fn key(st: &mut KeyedState, k: i64) -> KeyId {
        conformance::key(st, k)
    }

    /// A window namespace `[start, start + 10)`.
    fn w(start: i64) -> Namespace {
        Namespace::window(start, start + 10)
    }

    #[test]
    fn heap_backend_conforms() {
        conformance::run_all(&HeapBackend);
    }

    #[test]
    fn spilling_backend_conforms_spilling_at_every_safe_point() {
        conformance::run_all(&MemorySpillBackend { cache_entries: 0 });
    }

    #[test]
    fn spilling_backend_conforms_with_a_small_cache() {
        conformance::run_all(&MemorySpillBackend { cache_entries: 5 });
    }

    #[test]
    fn snapshots_restore_across_backends() {
        conformance::check_cross_restore(&HeapBackend, &MemorySpillBackend { cache_entries: 3 });
        conformance::check_cross_restore(&MemorySpillBackend { cache_entries: 3 }, &HeapBackend);
    }

    /// Enough keys that the restore decodes on a helper thread (`PARALLEL_RESTORE`).
    fn big_state() -> KeyedState {
        let mut st = state();
        let v = st.value::<String>(StateDescriptor::new("v")).unwrap();
        let m = st.map::<u32, u64>(StateDescriptor::new("m")).unwrap();
        for k in 0..40_000i64 {
            key(&mut st, k);
            v.set(&mut st, Namespace::NONE, format!("value {k}"));
            if k % 3 == 0 {
                m.put(&mut st, w(k), (k % 7) as u32, k as u64);
            }
            if k % 5 == 0 {
                st.register_event_timer(k * 10, w(k));
            }
        }
        st
    }

    #[test]
    fn a_big_restore_decoding_on_a_helper_thread_restores_everything() {
        let mut st = big_state();
        let bytes = conformance::snapshot(&mut st);
        let mut restored = state();
        let _ = restored.value::<String>(StateDescriptor::new("v")).unwrap();
        let _ = restored.map::<u32, u64>(StateDescriptor::new("m")).unwrap();
        restored.restore(&[&bytes]).unwrap();
        assert_eq!(restored.key_count(), st.key_count());
        assert_eq!(restored.entry_count(), st.entry_count());
        let again = conformance::snapshot(&mut restored);
        assert_eq!(conformance::dump(&[&again]), conformance::dump(&[&bytes]));
    }

    #[test]
    fn a_damaged_section_fails_a_big_restore_without_hanging() {
        let bytes = conformance::snapshot(&mut big_state());
        let mut failed = 0;
        // 0xc1 is never valid MessagePack: wherever a reader meets it, decoding fails.
        for i in 1..=40 {
            let mut damaged = bytes.clone();
            damaged[bytes.len() / 2 + i * bytes.len() / 100] = 0xc1;
            let mut st = state();
            let _ = st.value::<String>(StateDescriptor::new("v")).unwrap();
            let _ = st.map::<u32, u64>(StateDescriptor::new("m")).unwrap();
            failed += usize::from(st.restore(&[&damaged]).is_err());
        }
        assert!(failed > 0, "no damaged byte was noticed");
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
    fn keyed_state_is_send() {
        fn send<T: Send>() {}
        send::<KeyedState>();
        send::<SnapshotJob>();
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
    fn a_failed_store_read_is_reported_at_the_next_safe_point_and_nothing_is_written() {
        struct Failing(bool);
        impl SpillStore for Failing {
            fn get(&mut self, _: &[u8], _: &mut Vec<u8>) -> Result<bool> {
                Err(EddyError::io("reading", std::io::Error::other("disk on fire")))
            }
            fn write(&mut self, _: &SpillBatch) -> Result<()> {
                self.0 = true;
                Err(EddyError::internal("must not write after a failed read"))
            }
            fn view(&mut self) -> Result<Box<dyn SpillView>> {
                Err(EddyError::internal("no view"))
            }
        }
        let sel = Arc::new(FieldKeys(vec![0]));
        let mut st =
            KeyedState::with_spill(sel, KeyGroupRange { start: 0, end: 127 }, 128, Box::new(Failing(false)), 0);
        let v = st.value::<u64>(StateDescriptor::new("v")).unwrap();
        key(&mut st, 1);
        *v.get_or_insert_with(&mut st, Namespace::NONE, || 0) += 1;
        let e = st.spill_if_needed().unwrap_err().to_string();
        assert!(e.contains("disk on fire"), "{e}");
        assert!(st.snapshot().is_err());
    }

    fn model_op() -> impl Strategy<Value = ModelOp> {
        prop_oneof![
            3 => (0u8..6).prop_map(ModelOp::Key),
            4 => (0u8..3, any::<u32>()).prop_map(|(n, v)| ModelOp::Set(n, v)),
            4 => (0u8..3).prop_map(ModelOp::Get),
            2 => (0u8..3).prop_map(ModelOp::Clear),
            1 => (0u8..60).prop_map(ModelOp::Advance),
            1 => (0u8..20).prop_map(ModelOp::Sweep),
            1 => Just(ModelOp::Spill),
            1 => Just(ModelOp::Restore),
        ]
    }

    proptest! {
        #[test]
        fn heap_value_state_equals_a_hash_map(ops in proptest::collection::vec(model_op(), 1..200), ttl in any::<bool>()) {
            prop_assert_eq!(conformance::check_model(&HeapBackend, &ops, ttl), Ok(()));
        }

        #[test]
        fn spilled_value_state_equals_a_hash_map(
            ops in proptest::collection::vec(model_op(), 1..200),
            ttl in any::<bool>(),
            cache in 0usize..4,
        ) {
            prop_assert_eq!(conformance::check_model(&MemorySpillBackend { cache_entries: cache }, &ops, ttl), Ok(()));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// State built over all 128 key groups equals, key for key, the state of 2 subtasks snapshotted and
        /// restored into 4 and into 1.
        #[test]
        fn rescaling_keeps_every_key_value_and_timer(
            records in proptest::collection::vec((-1000i64..1000, any::<u32>()), 0..300),
            spill in any::<bool>(),
        ) {
            let heap = HeapBackend;
            let spilling = MemorySpillBackend { cache_entries: 7 };
            let (build, into): (&dyn StateBackend, &dyn StateBackend) = if spill { (&heap, &spilling) } else { (&spilling, &heap) };
            prop_assert_eq!(conformance::check_rescale(&heap, &heap, &records), Ok(()));
            prop_assert_eq!(conformance::check_rescale(build, into, &records), Ok(()));
        }
    }

    /// Snapshot and restore of 1M keys with one value state each, release build:
    /// `cargo test --release -p eddy-api state::tests::snapshot_bench -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn snapshot_bench() {
        use std::time::Instant;
        const KEYS: i64 = 1_000_000;
        let mut st = state();
        let v = st.value::<u64>(StateDescriptor::new("count")).unwrap();
        let mut b = Batch::new(1);
        for k in 0..KEYS {
            b.push_int(k * 7919);
        }
        for (i, row) in b.rows().enumerate() {
            st.set_current_key(row);
            v.set(&mut st, Namespace::NONE, i as u64);
        }
        st.register_event_timer(5, Namespace::NONE);
        // CPU time of this thread (Linux), which a busy machine inflates less than wall time.
        fn cpu() -> Duration {
            let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
            Duration::from_nanos(stat.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0))
        }
        let timed = |f: &mut dyn FnMut()| {
            let (wall, cpu0) = (Instant::now(), cpu());
            f();
            format!("{:.0?} ({:.0?} CPU)", wall.elapsed(), cpu() - cpu0)
        };
        for round in 0..3 {
            let mut job = None;
            let capture = timed(&mut || job = Some(st.snapshot().unwrap()));
            let mut bytes = Vec::new();
            let encode = timed(&mut || bytes = job.take().map(|job| job().unwrap()).unwrap_or_default());
            let mut restored = state();
            restored.value::<u64>(StateDescriptor::new("count")).unwrap();
            let restore = timed(&mut || restored.restore(&[&bytes]).unwrap());
            assert_eq!(restored.entry_count(), KEYS as usize);
            // Restoring half the groups (a rescale to 2) steps over the other half.
            let mut half = KeyedState::new(Arc::new(FieldKeys(vec![0])), KeyGroupRange::for_subtask(128, 2, 1), 128);
            half.value::<u64>(StateDescriptor::new("count")).unwrap();
            let half_restore = timed(&mut || half.restore(&[&bytes]).unwrap());
            println!(
                "round {round}: 1M keys, {} MB: capture {capture} (task thread), encode {encode}, restore {restore}, \
                 restore of half the key groups {half_restore}",
                bytes.len() >> 20
            );
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
