//! The keyed state conformance suite against the redb backend (with a tiny cache, so that it spills all
//! the time), snapshots across backends, memory bounds, and the redb figures.
use super::*;
use eddy_api::key::FieldKeys;
use eddy_api::state::conformance::{self, ModelOp};
use eddy_api::state::{MemorySpillBackend, Namespace, StateDescriptor};
use eddy_api::{Batch, KeyGroupRange};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A fresh directory under the system's temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("eddy-state-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The files left under `dir` (recursively).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn redb_backend_conforms_with_a_16_entry_cache() {
    let dir = TempDir::new("conform");
    conformance::run_all(&RedbBackend::new(dir.path()).with_cache_entries(16));
    assert!(files(dir.path()).is_empty(), "every state file is removed with its state: {:?}", files(dir.path()));
}

#[test]
fn redb_backend_conforms_spilling_at_every_safe_point() {
    let dir = TempDir::new("conform0");
    conformance::run_all(&RedbBackend::new(dir.path()).with_cache_entries(0));
}

#[test]
fn snapshots_restore_between_heap_and_redb() {
    let dir = TempDir::new("cross");
    let redb = RedbBackend::new(dir.path()).with_cache_entries(16);
    conformance::check_cross_restore(&HeapBackend, &redb);
    conformance::check_cross_restore(&redb, &HeapBackend);
    conformance::check_cross_restore(&redb, &MemorySpillBackend { cache_entries: 2 });
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
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn redb_value_state_equals_a_hash_map(
        ops in proptest::collection::vec(model_op(), 1..200),
        ttl in any::<bool>(),
        cache in 0usize..4,
    ) {
        let dir = TempDir::new("model");
        let redb = RedbBackend::new(dir.path()).with_cache_entries(cache);
        prop_assert_eq!(conformance::check_model(&redb, &ops, ttl), Ok(()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    /// Heap and redb snapshots rescale from 2 subtasks to 4 and 1, into either backend.
    #[test]
    fn rescaling_between_heap_and_redb(records in proptest::collection::vec((-500i64..500, any::<u32>()), 0..200)) {
        let dir = TempDir::new("rescale");
        let redb = RedbBackend::new(dir.path()).with_cache_entries(16);
        prop_assert_eq!(conformance::check_rescale(&redb, &redb, &records), Ok(()));
        prop_assert_eq!(conformance::check_rescale(&HeapBackend, &redb, &records), Ok(()));
        prop_assert_eq!(conformance::check_rescale(&redb, &HeapBackend, &records), Ok(()));
    }
}

fn task() -> TaskInfo {
    TaskInfo { job: "job/1".into(), node: "count by user".into(), subtask: 3, parallelism: 4, max_parallelism: 128 }
}

use eddy_api::TaskInfo;

const ALL: KeyGroupRange = KeyGroupRange { start: 0, end: 127 };

#[test]
fn memory_stays_bounded_with_200k_keys_and_a_1000_entry_cache() {
    let dir = TempDir::new("bounded");
    let backend = RedbBackend::new(dir.path()).with_cache_entries(1000);
    let mut st = backend.create(&task(), Arc::new(FieldKeys(vec![0])), ALL, 128).unwrap();
    assert_eq!(files(dir.path()).len(), 1);
    let name = files(dir.path())[0].to_string_lossy().into_owned();
    assert!(name.contains("job_1") && name.contains("count_by_user-3-"), "{name}");
    let count = st.value::<u64>(StateDescriptor::new("count")).unwrap();
    let mut batch = Batch::new(1);
    let mut max_keys = 0;
    for round in 0..2u64 {
        for chunk in 0..200 {
            batch.clear();
            for k in 0..1000 {
                batch.push_int(chunk * 1000 + k);
            }
            for row in batch.rows() {
                st.set_current_key(row);
                *count.get_or_insert_with(&mut st, Namespace::NONE, || 0) += 1;
            }
            st.spill_if_needed().unwrap(); // after every batch, as the runtime does
            max_keys = max_keys.max(st.key_count());
            assert!(st.entry_count() <= 1000, "{}", st.entry_count());
        }
        assert!(max_keys <= 2001, "keys in memory stay bounded by the cache: {max_keys}");
        let size = std::fs::metadata(files(dir.path())[0].clone()).map(|m| m.len()).unwrap_or(0);
        println!("round {round}: at most {max_keys} keys in memory; file {} MB", size >> 20);
    }
    for k in (0..200_000).step_by(997) {
        batch.clear();
        batch.push_int(k);
        st.set_current_key(batch.row(0));
        assert_eq!(count.get(&mut st, Namespace::NONE), Some(&2), "key {k}");
    }
    drop(st);
    assert!(files(dir.path()).is_empty(), "the file goes with the state");
}

#[test]
fn a_state_directory_that_cannot_be_created_is_an_error_naming_it() {
    let dir = TempDir::new("blocked");
    std::fs::create_dir_all(dir.path()).unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let backend = RedbBackend::new(&file);
    let e = backend.create(&task(), Arc::new(FieldKeys(vec![0])), ALL, 128).unwrap_err().to_string();
    assert!(e.contains("not-a-dir"), "{e}");
}

/// Snapshot and restore figures with redb, 1M keys with one value state each, release build:
/// `cargo test --release -p eddy state::tests::redb_snapshot_bench -- --ignored --nocapture`.
#[test]
#[ignore]
fn redb_snapshot_bench() {
    use std::time::Instant;
    const KEYS: i64 = 1_000_000;
    let dir = TempDir::new("bench");
    let redb = RedbBackend::new(dir.path()).with_cache_entries(100_000);
    let make = |b: &dyn StateBackend| {
        let mut st = b.create(&task(), Arc::new(FieldKeys(vec![0])), ALL, 128).unwrap();
        let v = st.value::<u64>(StateDescriptor::new("count")).unwrap();
        (st, v)
    };
    let mut batch = Batch::new(1);
    let (mut st, v) = make(&redb);
    let start = Instant::now();
    for chunk in 0..KEYS / 1000 {
        batch.clear();
        for k in 0..1000 {
            batch.push_int((chunk * 1000 + k) * 7919);
        }
        for (i, row) in batch.rows().enumerate() {
            st.set_current_key(row);
            v.set(&mut st, Namespace::NONE, i as u64);
        }
        st.spill_if_needed().unwrap();
    }
    println!("redb: 1M keys written through a 100k cache in {:?}", start.elapsed());
    let start = Instant::now();
    let job = st.snapshot().unwrap();
    let capture = start.elapsed();
    let bytes = job().unwrap();
    println!(
        "redb snapshot: capture (flush + read view, task thread) {capture:?}, encode {:?}, {} MB",
        start.elapsed() - capture,
        bytes.len() >> 20
    );
    for (name, b) in [("redb", &redb as &dyn StateBackend), ("heap", &HeapBackend)] {
        let (mut into, _) = make(b);
        let start = Instant::now();
        into.restore(&[&bytes]).unwrap();
        println!("restore of the redb snapshot into {name}: {:?}", start.elapsed());
        if name == "heap" {
            let start = Instant::now();
            let heap_bytes = into.snapshot().unwrap()().unwrap();
            println!("heap snapshot of it: {:?}", start.elapsed());
            let (mut back, _) = make(&redb);
            let start = Instant::now();
            back.restore(&[&heap_bytes]).unwrap();
            println!("restore of the heap snapshot into redb: {:?}", start.elapsed());
        }
    }
}
