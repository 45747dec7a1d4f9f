//! The conformance suite of keyed state backends: every behaviour of [`KeyedState`] that operators rely
//! on, run against a [`StateBackend`], so that the heap, spilling and redb backends are held to the same
//! tests.
//!
//! [`run_all`] runs every case (each panics on failure, naming itself); [`check_model`] compares random
//! operations with a `HashMap` model and [`check_rescale`] checks that snapshots taken at one parallelism
//! restore at another with the same content, for property tests. The cases call
//! [`KeyedState::spill_if_needed`] at the points where the runtime would (between records), so a
//! spilling backend with a tiny cache spills all the time. Counts ([`KeyedState::key_count`],
//! [`KeyedState::entry_count`]) are only checked where they are exact: without a spill store.
//!
//! ```
//! eddy_api::state::conformance::run_all(&eddy_api::state::HeapBackend);
//! ```
use super::{KeyId, KeyedState, Namespace, StateBackend, StateDescriptor, StateTtl, TimeDomain, TtlUpdate};
use crate::batch::Batch;
use crate::key::{hash_key, key_group, FieldKeys, KeyGroupRange, KeySelector};
use crate::operator::TaskInfo;
use crate::value::{Datum, OwnedDatum};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// The number of key groups the suite uses.
pub const MAX_PARALLELISM: usize = 128;

/// Every key group.
const ALL: KeyGroupRange = KeyGroupRange { start: 0, end: MAX_PARALLELISM - 1 };

/// A case of the suite.
pub type Case = fn(&dyn StateBackend);

/// Every case, by name.
pub const CASES: &[(&str, Case)] = &[
    ("redeclaring returns the same handle or a typed error", redeclare),
    ("the current key is known without interning again", current_key),
    ("a remembered key can be made current again", remembered_key),
    ("keys are released when state and timers are gone", keys_released),
    ("timers fire in time order and may register more while firing", timers),
    ("the TTL sweep bounds the keys of an endless key stream", ttl_sweep_bounds_keys),
    ("value state per key and namespace", value_per_key_and_namespace),
    ("value state TTL on create and write", value_ttl_on_create_and_write),
    ("value state TTL on read and write", value_ttl_on_read_and_write),
    ("the cleanup removes what nobody reads", value_cleanup),
    ("list state add, get, update, take, clear", list_ops),
    ("list elements expire one by one", list_ttl),
    ("list reads restart the clock with OnReadAndWrite", list_ttl_on_read),
    ("map state put, get, remove, iter, clear", map_ops),
    ("map entries expire one by one", map_ttl),
    ("map reads restart entry clocks with OnReadAndWrite", map_ttl_on_read),
    ("reducing state per key and namespace", reducing),
    ("an expired reducing value restarts the reduction", reducing_ttl),
    ("aggregating state", aggregating),
    ("a snapshot restores every kind of state, key type and timer", snapshot_round_trip),
    ("a snapshot of 2 subtasks restores into 4 and into 1", snapshot_rescale),
    ("a restore into other declarations is a user error naming the state", snapshot_errors),
    ("TTL runs on across a restore", snapshot_ttl),
];

/// Runs every case against `backend`, printing each name (seen with `--nocapture`); panics on the first
/// failure with the case's name.
pub fn run_all(backend: &dyn StateBackend) {
    for (name, case) in CASES {
        println!("conformance [{}]: {name}", backend.name());
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(backend))) {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            panic!("conformance case `{name}` failed for the {} backend: {msg}", backend.name());
        }
    }
}

/// The task the suite creates state for.
fn task() -> TaskInfo {
    TaskInfo { job: "conformance".into(), node: "keyed".into(), subtask: 0, parallelism: 1, max_parallelism: 128 }
}

/// Keyed state of `backend` for `range`, keyed by `selector`.
pub fn make_with(backend: &dyn StateBackend, selector: Arc<dyn KeySelector>, range: KeyGroupRange) -> KeyedState {
    match backend.create(&task(), selector, range, MAX_PARALLELISM) {
        Ok(st) => st,
        Err(e) => panic!("the {} backend cannot create keyed state: {e}", backend.name()),
    }
}

/// Keyed state of `backend` for `range`, keyed by an int in field 0.
pub fn make(backend: &dyn StateBackend, range: KeyGroupRange) -> KeyedState {
    make_with(backend, Arc::new(FieldKeys(vec![0])), range)
}

fn state(b: &dyn StateBackend) -> KeyedState {
    make(b, ALL)
}

/// A safe point: spills if needed (as the runtime does between batches).
pub fn safe(st: &mut KeyedState) {
    if let Err(e) = st.spill_if_needed() {
        panic!("spill_if_needed failed: {e}");
    }
}

/// A safe point, then makes the int key `k` current.
pub fn key(st: &mut KeyedState, k: i64) -> KeyId {
    safe(st);
    let mut b = Batch::new(1);
    b.push_row(&[Datum::Int(k)]);
    st.set_current_key(b.row(0))
}

/// The key group of the int key `k`.
pub fn group_of(k: i64) -> usize {
    key_group(hash_key(&[OwnedDatum::Int(k)]), MAX_PARALLELISM)
}

/// A window namespace `[start, start + 10)`.
fn w(start: i64) -> Namespace {
    Namespace::window(start, start + 10)
}

/// Takes a snapshot and encodes it.
pub fn snapshot(st: &mut KeyedState) -> Vec<u8> {
    let job = st.snapshot().unwrap_or_else(|e| panic!("snapshot: {e}"));
    job().unwrap_or_else(|e| panic!("snapshot encoding: {e}"))
}

/// The content of snapshots as sorted lines (key group, key, state, namespace, timestamp, value bytes;
/// timers), to compare snapshots of any backend and parallelism.
pub fn dump(snapshots: &[&[u8]]) -> Vec<String> {
    super::snapshot::dump(snapshots).unwrap_or_else(|e| panic!("dump: {e}"))
}

fn sorted<K: Ord + Clone, V: Clone>(it: impl Iterator<Item = (K, V)>) -> Vec<(K, V)> {
    let mut v: Vec<_> = it.collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn redeclare(b: &dyn StateBackend) {
    let mut st = state(b);
    let a = st.value::<u64>(StateDescriptor::new("count")).unwrap();
    let c = st.value::<u64>(StateDescriptor::new("count")).unwrap();
    key(&mut st, 1);
    a.set(&mut st, Namespace::NONE, 5);
    key(&mut st, 1);
    assert_eq!(c.get(&mut st, Namespace::NONE), Some(&5));
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

fn current_key(b: &dyn StateBackend) {
    let mut st = state(b);
    let a = key(&mut st, 7);
    assert_eq!(key(&mut st, 7), a);
    assert_eq!(st.current_key(), &[OwnedDatum::Int(7)]);
    assert_eq!(st.key_group_of_current(), group_of(7));
    assert_eq!(st.key_count(), 1, "the current key is pinned");
    let c = key(&mut st, 8);
    assert_eq!(st.key_count(), 1, "key 7 had no state: released when 8 became current");
    assert_eq!(st.current_key_id(), c);
    st.clear_current_key();
    assert_eq!(st.key_count(), 0);
    assert_eq!(st.current_key_id(), super::NO_KEY);
    assert!(st.current_key().is_empty());
}

fn remembered_key(b: &dyn StateBackend) {
    let mut st = state(b);
    let v = st.value::<u64>(StateDescriptor::new("v")).unwrap();
    let a = key(&mut st, 1);
    v.set(&mut st, Namespace::NONE, 10);
    // No safe point from here on: an id is only stable while its key is in memory.
    let mut batch = Batch::new(1);
    batch.push_row(&[Datum::Int(2)]);
    st.set_current_key(batch.row(0));
    st.set_current_key_id(a);
    assert_eq!(st.current_key(), &[OwnedDatum::Int(1)]);
    assert_eq!(v.get(&mut st, Namespace::NONE), Some(&10));
    st.set_current_key_id(super::NO_KEY);
    assert_eq!(st.key_count(), 1, "key 2 had nothing: released");
    assert!(format!("{st:?}").contains("keys: 1"));
}

fn keys_released(b: &dyn StateBackend) {
    let mut st = state(b);
    let exact = !st.has_spill_store();
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
    assert_eq!(st.key_count(), 100, "every key has timers");
    if exact {
        assert_eq!(st.entry_count(), 400);
    }
    for k in 0..100 {
        let id = key(&mut st, k);
        if exact {
            assert_eq!(st.keys.refs(id), 6);
        }
        v.clear(&mut st, w(0));
        assert_eq!(v.take(&mut st, w(10)), Some(1));
        l.clear(&mut st, Namespace::NONE);
        assert_eq!(m.remove(&mut st, w(0), "a"), Some(3), "the last entry removes the map");
        st.delete_processing_timer(5, Namespace::NONE);
        assert_eq!(st.keys.refs(id), 1, "only the event timer is left");
    }
    assert_eq!(st.entry_count(), 0);
    assert_eq!(st.key_count(), 100);
    safe(&mut st);
    let mut fired = 0;
    while let Some(t) = st.pop_event_timer(i64::MAX) {
        assert_eq!(st.current_key_id(), t.key);
        assert_eq!(st.current_key(), &[OwnedDatum::Int(t.time - 100)]);
        assert_eq!(v.get(&mut st, w(0)), None, "cleared state stays cleared after a spill");
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
    if exact {
        assert_eq!(st.key_count(), 2);
    }
    key(&mut st, 1000);
    assert_eq!(v.get(&mut st, Namespace::NONE), Some(&9));
}

fn timers(b: &dyn StateBackend) {
    let mut st = state(b);
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
    safe(&mut st);
    while let Some(t) = st.pop_event_timer(30) {
        assert_eq!(t.domain, TimeDomain::EventTime);
        let k = st.current_key()[0].as_datum().as_int().unwrap_or(0);
        seen.push((t.time, k));
        c.add(&mut st, Namespace::NONE, 1);
        if t.time == 10 && k == 2 {
            st.register_event_timer(15, Namespace::NONE); // due: fires in this loop
            st.register_event_timer(40, Namespace::NONE); // not yet
        }
        safe(&mut st); // after each timer hook
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

fn ttl_sweep_bounds_keys(b: &dyn StateBackend) {
    let mut st = state(b);
    let exact = !st.has_spill_store();
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
    if exact {
        assert_eq!(st.key_count(), 10, "only the keys with state without TTL remain");
        assert_eq!(st.entry_count(), 10);
    }
    for k in [0, 999, 1000, 5000, 9999] {
        key(&mut st, k);
        assert_eq!(v.get(&mut st, Namespace::NONE), None, "expired");
        assert_eq!(plain.get(&mut st, Namespace::NONE).copied(), (k % 1000 == 0).then_some(1));
    }
}

fn value_per_key_and_namespace(b: &dyn StateBackend) {
    let mut st = state(b);
    let v = st.value::<String>(StateDescriptor::new("v")).unwrap();
    key(&mut st, 1);
    assert_eq!(v.get(&mut st, Namespace::NONE), None);
    v.set(&mut st, Namespace::NONE, "a".into());
    v.set(&mut st, w(0), "b".into());
    key(&mut st, 2);
    assert_eq!(v.get(&mut st, Namespace::NONE), None);
    v.get_or_insert_with(&mut st, w(0), String::new).push('c');
    key(&mut st, 2);
    v.get_or_insert_with(&mut st, w(0), String::new).push('d');
    key(&mut st, 1);
    assert_eq!(v.get(&mut st, Namespace::NONE).map(String::as_str), Some("a"));
    assert_eq!(v.get(&mut st, w(0)).map(String::as_str), Some("b"));
    key(&mut st, 1);
    if let Some(s) = v.get_mut(&mut st, w(0)) {
        s.push('!');
    }
    key(&mut st, 1);
    assert_eq!(v.take(&mut st, w(0)).as_deref(), Some("b!"));
    assert_eq!(v.get(&mut st, w(0)), None);
    key(&mut st, 1);
    assert_eq!(v.get(&mut st, w(0)), None, "a take is not undone by a spill");
    v.clear(&mut st, w(0));
    key(&mut st, 2);
    assert_eq!(v.get(&mut st, w(0)).map(String::as_str), Some("cd"));
    if !st.has_spill_store() {
        assert_eq!(st.entry_count(), 2);
    }
}

fn value_ttl_on_create_and_write(b: &dyn StateBackend) {
    let mut st = state(b);
    let v = st.value::<u32>(StateDescriptor::new("v").with_ttl(StateTtl::new(Duration::from_millis(100)))).unwrap();
    key(&mut st, 1);
    st.set_processing_time(1_000);
    v.set(&mut st, Namespace::NONE, 1);
    key(&mut st, 1);
    st.set_processing_time(1_099);
    assert_eq!(v.get(&mut st, Namespace::NONE), Some(&1), "reads do not extend the life");
    key(&mut st, 1);
    st.set_processing_time(1_100);
    assert_eq!(v.get(&mut st, Namespace::NONE), None, "expired at write time + ttl");
    assert_eq!(st.entry_count(), 0, "removed on access");
    v.set(&mut st, Namespace::NONE, 2);
    key(&mut st, 1);
    st.set_processing_time(1_150);
    *v.get_or_insert_with(&mut st, Namespace::NONE, || 0) += 1;
    key(&mut st, 1);
    st.set_processing_time(1_249);
    assert_eq!(v.get(&mut st, Namespace::NONE), Some(&3), "writes extend the life");
    st.set_processing_time(1_250);
    assert_eq!(v.take(&mut st, Namespace::NONE), None, "expired values are not returned by take");
    v.set(&mut st, Namespace::NONE, 4);
    key(&mut st, 1);
    st.set_processing_time(2_000);
    assert_eq!(*v.get_or_insert_with(&mut st, Namespace::NONE, || 10), 10, "an expired value is replaced");
}

fn value_ttl_on_read_and_write(b: &dyn StateBackend) {
    let mut st = state(b);
    let ttl = StateTtl::new(Duration::from_millis(100)).with_update(TtlUpdate::OnReadAndWrite);
    let v = st.value::<u32>(StateDescriptor::new("v").with_ttl(ttl)).unwrap();
    key(&mut st, 1);
    v.set(&mut st, Namespace::NONE, 1);
    for now in [90, 180, 270] {
        key(&mut st, 1);
        st.set_processing_time(now);
        assert_eq!(v.get(&mut st, Namespace::NONE), Some(&1), "each read extends the life");
    }
    key(&mut st, 1);
    st.set_processing_time(370);
    assert_eq!(v.get(&mut st, Namespace::NONE), None);
}

fn value_cleanup(b: &dyn StateBackend) {
    let mut st = state(b);
    let exact = !st.has_spill_store();
    let v = st.value::<u32>(StateDescriptor::new("v").with_ttl(StateTtl::new(Duration::from_secs(1)))).unwrap();
    for k in 0..1000 {
        st.set_processing_time(k);
        key(&mut st, k);
        v.set(&mut st, w(0), 1);
    }
    st.set_processing_time(1_500);
    if exact {
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
    st.cleanup_expired(1 << 20);
    for k in [0, 500, 501, 999] {
        key(&mut st, k);
        assert_eq!(v.get(&mut st, w(0)).copied(), (k > 500).then_some(1), "key {k}");
    }
}

fn list_ops(b: &dyn StateBackend) {
    let mut st = state(b);
    let l = st.list::<u32>(StateDescriptor::new("l")).unwrap();
    key(&mut st, 1);
    assert!(l.get(&mut st, Namespace::NONE).is_empty());
    l.add(&mut st, Namespace::NONE, 1);
    key(&mut st, 1);
    l.add_all(&mut st, Namespace::NONE, [2, 3]);
    l.add(&mut st, w(0), 9);
    key(&mut st, 2);
    l.add(&mut st, Namespace::NONE, 7);
    key(&mut st, 1);
    assert_eq!(l.get(&mut st, Namespace::NONE), [1, 2, 3]);
    assert_eq!(l.get(&mut st, w(0)), [9]);
    l.update(&mut st, Namespace::NONE, vec![4, 5]);
    key(&mut st, 1);
    assert_eq!(l.get(&mut st, Namespace::NONE), [4, 5]);
    assert_eq!(l.take(&mut st, Namespace::NONE), [4, 5]);
    assert!(l.get(&mut st, Namespace::NONE).is_empty());
    key(&mut st, 1);
    assert!(l.get(&mut st, Namespace::NONE).is_empty(), "a take is not undone by a spill");
    l.update(&mut st, w(0), Vec::new());
    assert!(l.get(&mut st, w(0)).is_empty(), "an empty update clears");
    l.add_all(&mut st, w(0), []);
    key(&mut st, 1);
    assert!(l.get(&mut st, w(0)).is_empty());
    let exact = !st.has_spill_store();
    if exact {
        assert_eq!(st.entry_count(), 1, "only key 2's list is left");
    }
    key(&mut st, 2);
    assert_eq!(l.get(&mut st, Namespace::NONE), [7]);
    l.clear(&mut st, Namespace::NONE);
    assert_eq!(st.entry_count(), 0);
    assert_eq!(st.key_count(), 1);
    key(&mut st, 2);
    assert!(l.get(&mut st, Namespace::NONE).is_empty());
}

fn list_ttl(b: &dyn StateBackend) {
    let mut st = state(b);
    let l = st.list::<u32>(StateDescriptor::new("l").with_ttl(StateTtl::new(Duration::from_millis(10)))).unwrap();
    key(&mut st, 1);
    for (now, x) in [(0, 1), (5, 2), (8, 3)] {
        key(&mut st, 1);
        st.set_processing_time(now);
        l.add(&mut st, Namespace::NONE, x);
    }
    key(&mut st, 1);
    st.set_processing_time(9);
    assert_eq!(l.get(&mut st, Namespace::NONE), [1, 2, 3]);
    key(&mut st, 1);
    st.set_processing_time(10);
    assert_eq!(l.get(&mut st, Namespace::NONE), [2, 3]);
    key(&mut st, 1);
    st.set_processing_time(16);
    assert_eq!(l.take(&mut st, Namespace::NONE), [3]);
    l.add(&mut st, Namespace::NONE, 4);
    key(&mut st, 1);
    st.set_processing_time(30);
    assert!(l.get(&mut st, Namespace::NONE).is_empty());
    assert_eq!(st.entry_count(), 0);

    // The sweep prunes partly expired lists too.
    l.add(&mut st, w(0), 1);
    st.set_processing_time(35);
    l.add(&mut st, w(0), 2);
    st.set_processing_time(40);
    st.cleanup_expired(1 << 10);
    assert_eq!(l.get(&mut st, w(0)), [2]);
    if !st.has_spill_store() {
        st.set_processing_time(0); // time going backwards must not resurrect what the sweep dropped
        assert_eq!(l.get(&mut st, w(0)), [2]);
    }
}

fn list_ttl_on_read(b: &dyn StateBackend) {
    let mut st = state(b);
    let ttl = StateTtl::new(Duration::from_millis(10)).with_update(TtlUpdate::OnReadAndWrite);
    let l = st.list::<u32>(StateDescriptor::new("l").with_ttl(ttl)).unwrap();
    key(&mut st, 1);
    l.add(&mut st, Namespace::NONE, 1);
    key(&mut st, 1);
    st.set_processing_time(5);
    l.add(&mut st, Namespace::NONE, 2);
    key(&mut st, 1);
    st.set_processing_time(9);
    assert_eq!(l.get(&mut st, Namespace::NONE), [1, 2]);
    key(&mut st, 1);
    st.set_processing_time(18);
    assert_eq!(l.get(&mut st, Namespace::NONE), [1, 2]);
    key(&mut st, 1);
    st.set_processing_time(28);
    assert!(l.get(&mut st, Namespace::NONE).is_empty());
}

fn map_ops(b: &dyn StateBackend) {
    let mut st = state(b);
    let m = st.map::<String, u32>(StateDescriptor::new("m")).unwrap();
    let items = |st: &mut KeyedState, ns| sorted(m.iter(st, ns).map(|(k, v)| (k.clone(), *v)));
    key(&mut st, 1);
    assert!(m.is_empty(&mut st, Namespace::NONE));
    m.put(&mut st, Namespace::NONE, "a".into(), 1);
    key(&mut st, 1);
    m.put(&mut st, Namespace::NONE, "b".into(), 2);
    m.put(&mut st, w(0), "a".into(), 10);
    key(&mut st, 2);
    assert_eq!(m.get(&mut st, Namespace::NONE, "a"), None);
    m.put(&mut st, Namespace::NONE, "a".into(), 100);
    key(&mut st, 1);
    assert_eq!(m.get(&mut st, Namespace::NONE, "a"), Some(&1));
    assert!(m.contains(&mut st, w(0), "a"));
    assert!(!m.contains(&mut st, w(0), "b"));
    key(&mut st, 1);
    if let Some(v) = m.get_mut(&mut st, Namespace::NONE, "b") {
        *v += 1;
    }
    key(&mut st, 1);
    assert_eq!(items(&mut st, Namespace::NONE), [("a".into(), 1), ("b".into(), 3)]);
    assert_eq!(m.remove(&mut st, Namespace::NONE, "a"), Some(1));
    assert_eq!(m.remove(&mut st, Namespace::NONE, "a"), None);
    key(&mut st, 1);
    assert_eq!(items(&mut st, Namespace::NONE), [("b".into(), 3)], "a remove is not undone by a spill");
    m.clear(&mut st, w(0));
    assert!(m.is_empty(&mut st, w(0)));
    key(&mut st, 1);
    assert!(m.is_empty(&mut st, w(0)));
    if !st.has_spill_store() {
        assert_eq!(st.entry_count(), 2);
    }
    key(&mut st, 2);
    assert_eq!(items(&mut st, Namespace::NONE), [("a".into(), 100)]);
}

fn map_ttl(b: &dyn StateBackend) {
    let mut st = state(b);
    let exact = !st.has_spill_store();
    let ttl = StateTtl::new(Duration::from_millis(10));
    let m = st.map::<String, u32>(StateDescriptor::new("m").with_ttl(ttl)).unwrap();
    let items = |st: &mut KeyedState, ns| sorted(m.iter(st, ns).map(|(k, v)| (k.clone(), *v)));
    key(&mut st, 1);
    m.put(&mut st, Namespace::NONE, "a".into(), 1);
    key(&mut st, 1);
    st.set_processing_time(5);
    m.put(&mut st, Namespace::NONE, "b".into(), 2);
    key(&mut st, 1);
    st.set_processing_time(10);
    assert_eq!(m.get(&mut st, Namespace::NONE, "a"), None);
    assert!(!m.contains(&mut st, Namespace::NONE, "a"));
    assert_eq!(m.get(&mut st, Namespace::NONE, "b"), Some(&2));
    m.put(&mut st, Namespace::NONE, "c".into(), 3);
    key(&mut st, 1);
    st.set_processing_time(15);
    assert_eq!(items(&mut st, Namespace::NONE), [("c".into(), 3)]);
    key(&mut st, 1);
    st.set_processing_time(19);
    assert_eq!(m.remove(&mut st, Namespace::NONE, "c"), Some(3));
    if exact {
        // (A spilled map still holds `b`, expired, until it is written again: iter's pruning was not.)
        assert_eq!(st.entry_count(), 0, "the map went with its last entry");
    }

    // The sweep prunes partly expired maps, and removes fully expired ones.
    m.put(&mut st, w(0), "x".into(), 1);
    key(&mut st, 1);
    st.set_processing_time(25);
    m.put(&mut st, w(0), "y".into(), 2);
    key(&mut st, 2);
    m.put(&mut st, w(0), "z".into(), 3);
    st.set_processing_time(30);
    st.cleanup_expired(1 << 10);
    if exact {
        assert_eq!(st.entry_count(), 2);
        st.set_processing_time(0); // the sweep dropped x: going back in time does not bring it back
    }
    key(&mut st, 1);
    assert_eq!(items(&mut st, w(0)), [("y".into(), 2)]);
    st.set_processing_time(40);
    st.cleanup_expired(1 << 10);
    if exact {
        assert_eq!(st.entry_count(), 0);
        assert_eq!(st.key_count(), 1, "only the current key is left");
    }
    for k in [1, 2] {
        key(&mut st, k);
        assert!(m.is_empty(&mut st, w(0)));
    }
}

fn map_ttl_on_read(b: &dyn StateBackend) {
    let mut st = state(b);
    let ttl = StateTtl::new(Duration::from_millis(10)).with_update(TtlUpdate::OnReadAndWrite);
    let m = st.map::<u32, u32>(StateDescriptor::new("m").with_ttl(ttl)).unwrap();
    key(&mut st, 1);
    m.put(&mut st, Namespace::NONE, 1, 1);
    m.put(&mut st, Namespace::NONE, 2, 2);
    key(&mut st, 1);
    st.set_processing_time(8);
    assert_eq!(m.get(&mut st, Namespace::NONE, &1), Some(&1));
    key(&mut st, 1);
    st.set_processing_time(12);
    assert_eq!(m.get(&mut st, Namespace::NONE, &2), None, "not read: expired");
    assert_eq!(m.get(&mut st, Namespace::NONE, &1), Some(&1), "read at 8: alive until 18");
    key(&mut st, 1);
    st.set_processing_time(21);
    assert_eq!(m.iter(&mut st, Namespace::NONE).count(), 1, "read at 12");
    key(&mut st, 1);
    st.set_processing_time(30);
    assert_eq!(m.iter(&mut st, Namespace::NONE).count(), 1, "iter read it at 21");
}

fn reducing(b: &dyn StateBackend) {
    let mut st = state(b);
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
    key(&mut st, 1);
    assert_eq!(max.get(&mut st, w(10)), None);
    key(&mut st, 2);
    assert_eq!(max.get(&mut st, w(0)), Some(&9));
}

fn reducing_ttl(b: &dyn StateBackend) {
    let mut st = state(b);
    let ttl = StateTtl::new(Duration::from_millis(10));
    let sum = st.reducing::<u64>(StateDescriptor::new("sum").with_ttl(ttl), |a, b| *a += b).unwrap();
    key(&mut st, 1);
    sum.add(&mut st, Namespace::NONE, 1);
    key(&mut st, 1);
    st.set_processing_time(5);
    sum.add(&mut st, Namespace::NONE, 2);
    key(&mut st, 1);
    st.set_processing_time(14);
    assert_eq!(sum.get(&mut st, Namespace::NONE), Some(&3));
    key(&mut st, 1);
    st.set_processing_time(15);
    sum.add(&mut st, Namespace::NONE, 4);
    assert_eq!(sum.get(&mut st, Namespace::NONE), Some(&4));
}

fn aggregating(b: &dyn StateBackend) {
    let mut st = state(b);
    let avg = st
        .aggregating::<f64, (u64, f64)>(StateDescriptor::new("avg"), || (0, 0.0), |a, x| *a = (a.0 + 1, a.1 + x))
        .unwrap();
    for x in [1.0, 2.0, 6.0] {
        key(&mut st, 1);
        avg.add(&mut st, Namespace::NONE, x);
    }
    key(&mut st, 1);
    assert_eq!(avg.get(&mut st, Namespace::NONE), Some(&(3, 9.0)));
    assert_eq!(avg.take(&mut st, Namespace::NONE), Some((3, 9.0)));
    avg.clear(&mut st, Namespace::NONE);
    key(&mut st, 1);
    assert_eq!(avg.get(&mut st, Namespace::NONE), None);
}

/// The handles of the state [`fill`] builds.
#[derive(Clone, Copy)]
struct Handles {
    v: super::ValueState<u64>,
    l: super::ListState<String>,
    m: super::MapState<String, u32>,
    r: super::ReducingState<u64>,
    t: super::ValueState<u32>,
}

fn declare(st: &mut KeyedState) -> Handles {
    let ttl = StateTtl::new(Duration::from_secs(3600));
    Handles {
        v: st.value(StateDescriptor::new("v")).unwrap(),
        l: st.list(StateDescriptor::new("l")).unwrap(),
        m: st.map(StateDescriptor::new("m")).unwrap(),
        r: st.reducing(StateDescriptor::new("r"), |a, b| *a += b).unwrap(),
        t: st.value(StateDescriptor::new("t").with_ttl(ttl)).unwrap(),
    }
}

/// Writes state of every kind and timers for the keys of `records` (key, value); when `only` is given,
/// just for the keys of those key groups (as the subtask owning them would).
fn fill(st: &mut KeyedState, h: Handles, records: &[(i64, u32)], only: Option<KeyGroupRange>) {
    for &(k, x) in records {
        if only.is_some_and(|r| !r.contains(group_of(k))) {
            continue;
        }
        st.set_processing_time(i64::from(x));
        key(st, k);
        h.v.set(st, Namespace::NONE, u64::from(x));
        h.l.add(st, Namespace::NONE, format!("x{x}"));
        if x % 3 == 0 {
            h.m.put(st, w(i64::from(x % 2)), "only".into(), x); // one entry per map: its bytes are stable
        }
        h.r.add(st, w(i64::from(x % 4) * 10), u64::from(x));
        h.t.set(st, Namespace::NONE, x);
        if x % 2 == 0 {
            st.register_event_timer(i64::from(x), w(0));
        }
        if x % 5 == 0 {
            st.register_processing_timer(i64::from(x) + 7, Namespace::NONE);
        }
    }
    safe(st);
}

/// Snapshots taken by 2 subtasks (each owning half the key groups) restore into 4 subtasks and into 1 with
/// exactly the content of one state built over all key groups: keys, values, timestamps and timers.
/// `build` writes the state and snapshots it, `into` restores.
pub fn check_rescale(build: &dyn StateBackend, into: &dyn StateBackend, records: &[(i64, u32)]) -> Result<(), String> {
    let mut all = state(build);
    let h = declare(&mut all);
    fill(&mut all, h, records, None);
    let want = dump(&[&snapshot(&mut all)]);

    let halves: Vec<Vec<u8>> = (0..2)
        .map(|i| {
            let range = KeyGroupRange::for_subtask(MAX_PARALLELISM, 2, i);
            let mut st = make(build, range);
            let h = declare(&mut st);
            fill(&mut st, h, records, Some(range));
            snapshot(&mut st)
        })
        .collect();
    let halves: Vec<&[u8]> = halves.iter().map(Vec::as_slice).collect();
    if dump(&halves) != want {
        return Err("the snapshots of 2 subtasks differ from the snapshot of 1".into());
    }
    for parallelism in [4, 1] {
        let mut got = Vec::new();
        let (mut entries, mut exact) = (0, !all.has_spill_store());
        for i in 0..parallelism {
            let range = KeyGroupRange::for_subtask(MAX_PARALLELISM, parallelism, i);
            let mut st = make(into, range);
            declare(&mut st);
            st.restore(&halves).map_err(|e| format!("restore into subtask {i} of {parallelism}: {e}"))?;
            entries += st.entry_count();
            exact &= !st.has_spill_store();
            let bytes = snapshot(&mut st);
            let lines = dump(&[&bytes]);
            let outside = |l: &&String| {
                let g = l.get(1..).and_then(|l| l.split(' ').next()).and_then(|g| g.parse().ok());
                !g.is_some_and(|g| range.contains(g))
            };
            if let Some(l) = lines.iter().find(outside) {
                return Err(format!("subtask {i} of {parallelism} ({range:?}) has a key group it does not own: {l}"));
            }
            got.extend(lines);
        }
        got.sort();
        if got != want {
            let missing: Vec<_> = want.iter().filter(|l| !got.contains(l)).take(3).collect();
            let extra: Vec<_> = got.iter().filter(|l| !want.contains(l)).take(3).collect();
            return Err(format!("restored into {parallelism}: missing {missing:?}, extra {extra:?}"));
        }
        if exact && entries != all.entry_count() {
            return Err(format!("restored {entries} entries into {parallelism} subtasks, had {}", all.entry_count()));
        }
    }

    // Typed reads after a restore into 1, against a model of the records.
    let mut one = state(into);
    let h = declare(&mut one);
    one.restore(&halves).map_err(|e| e.to_string())?;
    let mut model: BTreeMap<i64, (u32, Vec<String>)> = BTreeMap::new();
    for &(k, x) in records {
        let e = model.entry(k).or_default();
        e.0 = x;
        e.1.push(format!("x{x}"));
    }
    for (&k, (last, list)) in &model {
        key(&mut one, k);
        if h.v.get(&mut one, Namespace::NONE) != Some(&u64::from(*last)) {
            return Err(format!("key {k}: value {:?}, want {last}", h.v.get(&mut one, Namespace::NONE)));
        }
        if h.l.get(&mut one, Namespace::NONE) != list.as_slice() {
            return Err(format!("key {k}: list {:?}, want {list:?}", h.l.get(&mut one, Namespace::NONE)));
        }
    }
    Ok(())
}

fn snapshot_rescale(b: &dyn StateBackend) {
    let records: Vec<(i64, u32)> = (0..600u32).map(|i| (i64::from(i * 7919 % 250), i)).collect();
    if let Err(e) = check_rescale(b, b, &records) {
        panic!("{e}");
    }
}

/// A state built with `from` restores into `to` with the same content (the snapshot format is shared).
pub fn check_cross_restore(from: &dyn StateBackend, to: &dyn StateBackend) {
    let records: Vec<(i64, u32)> = (0..500u32).map(|i| (i64::from(i * 31 % 180), i)).collect();
    let mut a = state(from);
    let h = declare(&mut a);
    fill(&mut a, h, &records, None);
    let bytes = snapshot(&mut a);
    let mut b = state(to);
    let h = declare(&mut b);
    b.restore(&[&bytes]).unwrap_or_else(|e| panic!("{} -> {}: {e}", from.name(), to.name()));
    assert_eq!(dump(&[&snapshot(&mut b)]), dump(&[&bytes]), "{} -> {}", from.name(), to.name());
    for (k, x) in records.iter().rev().take(20) {
        key(&mut b, *k);
        assert_eq!(h.t.get(&mut b, Namespace::NONE), Some(x));
    }
}

fn snapshot_round_trip(b: &dyn StateBackend) {
    let mut a = state(b);
    let h = declare(&mut a);
    let agg = a.aggregating::<u32, (u32, u32)>(StateDescriptor::new("agg"), || (0, 0), |a, x| *a = (a.0 + 1, a.1 + x));
    let agg = agg.unwrap();
    for k in 0..300 {
        a.set_processing_time(k);
        key(&mut a, k);
        h.v.set(&mut a, w(k), k as u64);
        h.l.add_all(&mut a, Namespace::NONE, [format!("a{k}"), format!("b{k}")]);
        for i in 0..3 {
            h.m.put(&mut a, Namespace::NONE, format!("k{i}"), k as u32 + i);
        }
        agg.add(&mut a, w(0), k as u32);
        a.register_event_timer(1000 + k, w(k));
        if k % 3 == 0 {
            a.register_processing_timer(2000 + k, Namespace::NONE);
        }
    }
    // A key with a timer and no state, and one whose state was removed.
    key(&mut a, 5000);
    a.register_event_timer(7, Namespace::NONE);
    key(&mut a, 0);
    h.l.clear(&mut a, Namespace::NONE);

    // Keys of several values: text, timestamps, -0.0.
    let sel: Arc<dyn KeySelector> = Arc::new(FieldKeys(vec![0, 1, 2]));
    let mut c = make_with(b, sel.clone(), ALL);
    let cv = c.value::<String>(StateDescriptor::new("cv")).unwrap();
    let mut rows = Batch::new(3);
    for i in 0..50 {
        rows.push_row(&[Datum::Str(&format!("user-{i}")), Datum::Timestamp(i * 1000), Datum::Float(-0.0)]);
    }
    for (i, row) in rows.rows().enumerate() {
        safe(&mut c);
        c.set_current_key(row);
        cv.set(&mut c, Namespace::NONE, format!("v{i}"));
        if i % 2 == 0 {
            c.register_event_timer(i as i64, Namespace::NONE);
        }
    }

    let bytes = snapshot(&mut a);
    let c_bytes = snapshot(&mut c);
    let mut a2 = state(b);
    let h2 = declare(&mut a2);
    let agg2 =
        a2.aggregating::<u32, (u32, u32)>(StateDescriptor::new("agg"), || (0, 0), |a, x| *a = (a.0 + 1, a.1 + x));
    let agg2 = agg2.unwrap();
    a2.restore(&[&bytes]).unwrap();
    assert_eq!(a2.timer_count(TimeDomain::EventTime), 301);
    assert_eq!(a2.timer_count(TimeDomain::ProcessingTime), 100);
    for k in 0..300 {
        key(&mut a2, k);
        assert_eq!(h2.v.get(&mut a2, w(k)), Some(&(k as u64)));
        let list: Vec<String> = if k == 0 { vec![] } else { vec![format!("a{k}"), format!("b{k}")] };
        assert_eq!(h2.l.get(&mut a2, Namespace::NONE), list.as_slice());
        let map = sorted(h2.m.iter(&mut a2, Namespace::NONE).map(|(k, v)| (k.clone(), *v)));
        assert_eq!(map, (0..3).map(|i| (format!("k{i}"), k as u32 + i)).collect::<Vec<_>>());
        assert_eq!(agg2.get(&mut a2, w(0)), Some(&(1, k as u32)));
    }
    let mut fired = HashSet::new();
    safe(&mut a2);
    while let Some(t) = a2.pop_event_timer(i64::MAX) {
        let k = a2.current_key()[0].as_datum().as_int().unwrap_or(-1);
        assert!(t.time == 7 && k == 5000 || t.time == 1000 + k && t.namespace == w(k), "{t:?} for key {k}");
        fired.insert(k);
        safe(&mut a2);
    }
    assert_eq!(fired.len(), 301);

    let mut c2 = make_with(b, sel, ALL);
    let cv2 = c2.value::<String>(StateDescriptor::new("cv")).unwrap();
    c2.restore(&[&c_bytes]).unwrap();
    assert_eq!(dump(&[&snapshot(&mut c2)]), dump(&[&c_bytes]));
    let mut seen = Vec::new();
    while let Some(t) = c2.pop_event_timer(i64::MAX) {
        let key = c2.current_key().to_vec();
        assert_eq!(format!("{:?}", key[1]), format!("{:?}", OwnedDatum::Timestamp(t.time * 1000)));
        assert!(key[2].as_datum().as_float().is_some_and(|f| f == 0.0 && f.is_sign_negative()), "{key:?}");
        seen.push(cv2.get(&mut c2, Namespace::NONE).cloned());
    }
    assert_eq!(seen.len(), 25);
    assert!(seen.iter().enumerate().all(|(i, v)| v.as_deref() == Some(&*format!("v{}", i * 2))), "{seen:?}");

    // An empty state snapshots and restores.
    let mut e = state(b);
    declare(&mut e);
    let empty = snapshot(&mut e);
    let mut e2 = state(b);
    declare(&mut e2);
    e2.restore(&[&empty]).unwrap();
    assert!(dump(&[&empty]).is_empty());
}

fn snapshot_errors(b: &dyn StateBackend) {
    let mut a = state(b);
    let h = declare(&mut a);
    fill(&mut a, h, &[(1, 1), (2, 2)], None);
    let bytes = snapshot(&mut a);
    type Declare = fn(&mut KeyedState);
    let restore = |decl: Declare, bytes: &[u8]| {
        let mut st = state(b);
        decl(&mut st);
        st.restore(&[bytes]).map_err(|e| (matches!(e, crate::EddyError::User(_)), e.to_string()))
    };
    fn all_but_t(st: &mut KeyedState) {
        let _ = st.value::<u64>(StateDescriptor::new("v"));
        let _ = st.list::<String>(StateDescriptor::new("l"));
        let _ = st.map::<String, u32>(StateDescriptor::new("m"));
        let _ = st.reducing::<u64>(StateDescriptor::new("r"), |a, b| *a += b);
    }
    let other_type: Declare = |st| {
        let _ = st.value::<String>(StateDescriptor::new("v"));
    };
    let e = restore(other_type, &bytes).unwrap_err();
    assert!(e.0 && e.1.contains("`v`") && e.1.contains("value<u64>") && e.1.contains("String"), "{e:?}");
    let e = restore(all_but_t, &bytes).unwrap_err();
    assert!(e.0 && e.1.contains("`t`") && e.1.contains("no longer declares"), "{e:?}");
    let ttl_less: Declare = |st| {
        all_but_t(st);
        let _ = st.value::<u32>(StateDescriptor::new("t"));
    };
    let e = restore(ttl_less, &bytes).unwrap_err();
    assert!(e.0 && e.1.contains("`t`") && e.1.contains("TTL"), "{e:?}");
    let more: Declare = |st| {
        declare(st);
        let _ = st.value::<u8>(StateDescriptor::new("new state"));
    };
    let ok = restore(more, &bytes);
    assert!(ok.is_ok(), "a state the snapshot does not have starts empty: {ok:?}");
    let mut other = KeyedState::new(Arc::new(FieldKeys(vec![0])), KeyGroupRange { start: 0, end: 63 }, 64);
    declare(&mut other);
    let e = other.restore(&[&bytes]).unwrap_err().to_string();
    assert!(e.contains("max parallelism"), "{e}");
    for bad in [&bytes[..bytes.len() / 2], b"not a snapshot", &[]] {
        assert!(restore(|st| _ = declare(st), bad).is_err());
    }
}

fn snapshot_ttl(b: &dyn StateBackend) {
    let mut a = state(b);
    let v = a.value::<u32>(StateDescriptor::new("v").with_ttl(StateTtl::new(Duration::from_millis(100)))).unwrap();
    a.set_processing_time(1_000);
    key(&mut a, 1);
    v.set(&mut a, Namespace::NONE, 1);
    a.set_processing_time(1_040);
    key(&mut a, 2);
    v.set(&mut a, Namespace::NONE, 2);
    let bytes = snapshot(&mut a);
    let mut c = state(b);
    let v = c.value::<u32>(StateDescriptor::new("v").with_ttl(StateTtl::new(Duration::from_millis(100)))).unwrap();
    c.restore(&[&bytes]).unwrap();
    c.set_processing_time(1_099);
    key(&mut c, 1);
    assert_eq!(v.get(&mut c, Namespace::NONE), Some(&1));
    c.set_processing_time(1_100);
    key(&mut c, 1);
    assert_eq!(v.get(&mut c, Namespace::NONE), None, "written at 1000: expired at 1100 after the restore too");
    key(&mut c, 2);
    assert_eq!(v.get(&mut c, Namespace::NONE), Some(&2));
}

/// An operation of [`check_model`].
#[derive(Clone, Debug)]
pub enum ModelOp {
    /// Make key `.0` current.
    Key(u8),
    /// Set the value in namespace `.0`.
    Set(u8, u32),
    /// Read the value in namespace `.0` and compare with the model.
    Get(u8),
    /// Clear the value in namespace `.0`.
    Clear(u8),
    /// Advance processing time.
    Advance(u8),
    /// Run the TTL sweep with this budget.
    Sweep(u8),
    /// A safe point (a spill when over budget).
    Spill,
    /// Snapshot and restore into a new state.
    Restore,
}

/// Random put/get/clear over keys and namespaces behave like a `HashMap` (with TTL: like a `HashMap` of
/// timestamped values that hides old ones), across spills and restores; without a spill store, live keys
/// are exactly those with entries plus the current one.
pub fn check_model(b: &dyn StateBackend, ops: &[ModelOp], with_ttl: bool) -> Result<(), String> {
    const TTL: i64 = 50;
    let mut desc = StateDescriptor::new("v");
    if with_ttl {
        desc = desc.with_ttl(StateTtl::new(Duration::from_millis(TTL as u64)));
    }
    let mut st = state(b);
    let mut v = st.value::<u32>(desc.clone()).map_err(|e| e.to_string())?;
    let exact = !st.has_spill_store();
    let mut model: HashMap<(u8, u8), (u32, i64)> = HashMap::new();
    let mut now = 0;
    let mut cur = 0u8;
    key(&mut st, 0);
    let live = |e: &(u32, i64), now: i64| !with_ttl || e.1 + TTL > now;
    let w = |n: u8| w(i64::from(n));
    for op in ops {
        match *op {
            ModelOp::Key(k) => {
                cur = k;
                key(&mut st, i64::from(k));
            }
            ModelOp::Set(n, x) => {
                v.set(&mut st, w(n), x);
                model.insert((cur, n), (x, now));
            }
            ModelOp::Get(n) => {
                let want = model.get(&(cur, n)).filter(|e| live(e, now)).map(|e| e.0);
                let got = v.get(&mut st, w(n)).copied();
                if got != want {
                    return Err(format!("get({cur}, {n}) at {now}: {got:?}, want {want:?}"));
                }
            }
            ModelOp::Clear(n) => {
                v.clear(&mut st, w(n));
                model.remove(&(cur, n));
            }
            ModelOp::Advance(d) => {
                now += i64::from(d);
                st.set_processing_time(now);
            }
            ModelOp::Sweep(n) => st.cleanup_expired(usize::from(n)),
            ModelOp::Spill => safe(&mut st),
            ModelOp::Restore => {
                let bytes = snapshot(&mut st);
                st = state(b);
                v = st.value::<u32>(desc.clone()).map_err(|e| e.to_string())?;
                st.restore(&[&bytes]).map_err(|e| e.to_string())?;
                st.set_processing_time(now);
                key(&mut st, i64::from(cur));
            }
        }
        model.retain(|_, e| live(e, now) || !with_ttl);
        let mut keys: HashSet<u8> = model.keys().map(|k| k.0).collect();
        keys.insert(cur);
        if exact && st.key_count() < keys.len() {
            return Err(format!("{} keys, the model has {}", st.key_count(), keys.len()));
        }
        if exact && !with_ttl && (st.key_count(), st.entry_count()) != (keys.len(), model.len()) {
            return Err(format!(
                "keys and entries {:?}, want {:?}",
                (st.key_count(), st.entry_count()),
                (keys.len(), model.len())
            ));
        }
    }
    if exact {
        // With TTL, a full sweep brings the state down to exactly the live model.
        st.cleanup_expired(usize::MAX);
        let mut keys: HashSet<u8> = model.keys().map(|k| k.0).collect();
        keys.insert(cur);
        if (st.key_count(), st.entry_count()) != (keys.len(), model.len()) {
            return Err(format!(
                "after a sweep {:?}, want {:?}",
                (st.key_count(), st.entry_count()),
                (keys.len(), model.len())
            ));
        }
    }
    // Every entry of the model reads back, from the store if need be.
    for (&(k, n), &(x, _)) in &model {
        key(&mut st, i64::from(k));
        if v.get(&mut st, w(n)) != Some(&x) {
            return Err(format!("key {k} namespace {n}: {:?}, want {x}", v.get(&mut st, w(n))));
        }
    }
    Ok(())
}
