//! Fault injection hooks for chaos testing (`eddy chaos`). The runtime asks a [`FaultInjector`] at fixed
//! sites of a task's life (processing, snapshot, restore, commit), before acknowledging a checkpoint and
//! before every checkpoint-store write; the injector decides, from its seeded plan, whether a fault fires
//! there. Without an injector (every normal run) none of this costs more than a `None` check.
use crate::checkpoint::{CheckpointStore, StoreError, StoreFuture};
use std::sync::Arc;
use std::time::Duration;

/// Where in a task's life a fault site is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Handling a batch of records (from a source poll or an input channel).
    Processing,
    /// Taking a snapshot on a checkpoint barrier.
    Snapshot,
    /// Opening and restoring state after a (re)start.
    Restore,
    /// Committing after a checkpoint completed (`on_checkpoint_complete`, a sink's commit).
    Commit,
}

impl Phase {
    /// Lower-case name, as in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Processing => "processing",
            Phase::Snapshot => "snapshot",
            Phase::Restore => "restore",
            Phase::Commit => "commit",
        }
    }
}

/// A fault site in a task.
#[derive(Clone, Copy, Debug)]
pub struct Site<'a> {
    /// The node of the chain the site belongs to (the chain's head for task-wide sites).
    pub node: &'a str,
    /// Its subtask.
    pub subtask: usize,
    /// The phase.
    pub phase: Phase,
    /// Records in the batch at a processing site (zero elsewhere).
    pub records: usize,
    /// The restart attempt of the task (0 for the first deployment).
    pub attempt: u64,
}

/// What a task does at a site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Nothing: carry on.
    None,
    /// Panic with this message (inside the task boundary, so the task fails as user code would).
    Panic(String),
    /// Block the task's thread for this long (a slow or stuck task).
    Delay(Duration),
    /// Silently drop the last record of the batch at a processing site (a deliberate bug, for the
    /// negative test of the verdict).
    DropRecord,
}

/// Decides which faults fire. Implemented by the chaos runner; must be cheap when nothing fires.
pub trait FaultInjector: Send + Sync + 'static {
    /// Called at every site of every task.
    fn at(&self, site: Site<'_>) -> FaultAction;

    /// Called before each write to the checkpoint store; `Some(message)` fails the write.
    fn fail_storage_write(&self, path: &str) -> Option<String>;

    /// Called when a task's checkpoint acknowledgement reaches the coordinator; `true` drops it (the
    /// checkpoint then times out).
    fn drop_ack(&self, node: &str, subtask: usize, checkpoint: u64) -> bool;
}

/// A checkpoint store whose writes fail when the injector says so.
pub struct FaultyStore {
    inner: Arc<dyn CheckpointStore>,
    faults: Arc<dyn FaultInjector>,
}

impl FaultyStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn CheckpointStore>, faults: Arc<dyn FaultInjector>) -> Self {
        FaultyStore { inner, faults }
    }

    fn check(&self, path: &str) -> Result<(), StoreError> {
        match self.faults.fail_storage_write(path) {
            Some(message) => Err(StoreError { message, transient: true }),
            None => Ok(()),
        }
    }
}

impl CheckpointStore for FaultyStore {
    fn write(&self, path: String, bytes: Vec<u8>) -> StoreFuture<()> {
        match self.check(&path) {
            Ok(()) => self.inner.write(path, bytes),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn write_atomic(&self, path: String, bytes: Vec<u8>) -> StoreFuture<()> {
        match self.check(&path) {
            Ok(()) => self.inner.write_atomic(path, bytes),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn read(&self, path: String) -> StoreFuture<Vec<u8>> {
        self.inner.read(path)
    }

    fn delete_dir(&self, dir: String) -> StoreFuture<()> {
        self.inner.delete_dir(dir)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}
