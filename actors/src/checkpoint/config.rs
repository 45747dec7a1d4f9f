//! The checkpoint settings of a job.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::store::CheckpointStore;

/// Whether multi-input tasks align barriers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CheckpointMode {
    /// Align: hold an input after its barrier until every input delivered it (consistent state).
    #[default]
    ExactlyOnce,
    /// Do not align: records after a barrier may be in the snapshot (replayed twice after a restore).
    AtLeastOnce,
}

/// How and where a job checkpoints.
#[derive(Clone)]
pub struct CheckpointConfig {
    /// How often the coordinator triggers a checkpoint.
    pub interval: Duration,
    /// Barrier alignment.
    pub mode: CheckpointMode,
    /// A checkpoint not complete after this long is aborted.
    pub timeout: Duration,
    /// Completed checkpoints kept; older ones are deleted.
    pub retain: usize,
    /// Failed checkpoints in a row that the job tolerates; one more fails it over (restarts from the last completed one).
    pub tolerable_failures: usize,
    /// Checkpoints in flight at once.
    pub max_concurrent: usize,
    /// Least time between the end of one checkpoint and the start of the next.
    pub min_pause: Duration,
    /// Where snapshots go.
    pub store: Arc<dyn CheckpointStore>,
    /// Savepoints taken to a location of their own (`eddy savepoint --dir`), by checkpoint id.
    pub targets: SavepointTargets,
}

impl CheckpointConfig {
    /// Where checkpoint or savepoint `id` is written: its own target, else [`store`](Self::store).
    pub fn store_for(&self, id: u64) -> Arc<dyn CheckpointStore> {
        self.targets.get(id).unwrap_or_else(|| self.store.clone())
    }
}

/// The stores of savepoints taken to a location of their own, by checkpoint id, shared by the coordinator
/// and the tasks: the coordinator adds a target before it triggers the savepoint and removes it once the
/// savepoint completed or failed; tasks write their snapshot files where it says.
#[derive(Clone, Default)]
pub struct SavepointTargets(Arc<Mutex<BTreeMap<u64, Arc<dyn CheckpointStore>>>>);

impl SavepointTargets {
    /// Savepoint `id` goes to `store`.
    pub fn insert(&self, id: u64, store: Arc<dyn CheckpointStore>) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(id, store);
    }

    /// The target of savepoint `id`, if it has one.
    pub fn get(&self, id: u64) -> Option<Arc<dyn CheckpointStore>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(&id).cloned()
    }

    /// Forgets the target of `id` (completed or failed).
    pub fn remove(&self, id: u64) -> Option<Arc<dyn CheckpointStore>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(&id)
    }
}

impl std::fmt::Debug for CheckpointConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointConfig")
            .field("interval", &self.interval)
            .field("mode", &self.mode)
            .field("timeout", &self.timeout)
            .field("retain", &self.retain)
            .field("tolerable_failures", &self.tolerable_failures)
            .field("store", &self.store.describe())
            .finish()
    }
}
