//! State backends: how the runtime creates the keyed state of an operator subtask, so that a job picks
//! heap or a spilling store (the `eddy` crate's redb backend) without operators knowing.
//!
//! Every backend hands out the same [`KeyedState`]: the heap backend keeps everything in memory; a
//! spilling backend attaches a [`SpillStore`](super::SpillStore) and a cache budget
//! ([`KeyedState::with_spill`]). Their snapshots share one format, so a job can change backend across a
//! restore.
use super::spill::MemoryStore;
use super::KeyedState;
use crate::error::Result;
use crate::key::{KeyGroupRange, KeySelector};
use crate::operator::TaskInfo;
use std::sync::Arc;

/// Creates the keyed state of operator subtasks; one per job, shared by its tasks.
pub trait StateBackend: Send + Sync + 'static {
    /// The backend's name as configured (`heap`, `redb`).
    fn name(&self) -> &str;

    /// Keyed state for one operator subtask.
    fn create(
        &self,
        task: &TaskInfo,
        selector: Arc<dyn KeySelector>,
        key_groups: KeyGroupRange,
        max_parallelism: usize,
    ) -> Result<KeyedState>;
}

/// Keeps all keyed state on the heap (the default): fastest, bounded by memory.
#[derive(Clone, Copy, Debug, Default)]
pub struct HeapBackend;

impl StateBackend for HeapBackend {
    fn name(&self) -> &str {
        "heap"
    }

    fn create(
        &self,
        _task: &TaskInfo,
        selector: Arc<dyn KeySelector>,
        key_groups: KeyGroupRange,
        max_parallelism: usize,
    ) -> Result<KeyedState> {
        Ok(KeyedState::new(selector, key_groups, max_parallelism))
    }
}

/// Spills keyed state to a [`MemoryStore`] beyond a cache of `cache_entries`: no use in production (the
/// store is in memory too), but it runs the spill path without a database, for tests.
#[derive(Clone, Copy, Debug)]
pub struct MemorySpillBackend {
    /// Entries (plus tombstones) kept in the cache before a spill.
    pub cache_entries: usize,
}

impl StateBackend for MemorySpillBackend {
    fn name(&self) -> &str {
        "memory-spill"
    }

    fn create(
        &self,
        _task: &TaskInfo,
        selector: Arc<dyn KeySelector>,
        key_groups: KeyGroupRange,
        max_parallelism: usize,
    ) -> Result<KeyedState> {
        let store = Box::new(MemoryStore::new());
        Ok(KeyedState::with_spill(selector, key_groups, max_parallelism, store, self.cache_entries))
    }
}
