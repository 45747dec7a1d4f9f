//! The checkpoint settings of a job.
use std::sync::Arc;
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
