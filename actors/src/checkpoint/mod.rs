//! Checkpoints on the actor runtime: what a checkpoint is made of, where it is stored, and the pure
//! bookkeeping of the coordinator.
//!
//! - [`config`]: the job's checkpoint settings (`checkpoints:` in YAML).
//! - [`store`]: the storage interface the runtime writes through; the `eddy` crate implements it on
//!   OpenDAL (file, S3, memory). Nothing here does I/O itself.
//! - [`format`]: the bytes of a task's snapshot file (versioned header, payload, checksum) and of the
//!   checkpoint metadata that is written last and makes a checkpoint complete.
//! - [`tracker`]: which checkpoints are pending, acknowledged, complete, timed out or failed (pure logic,
//!   unit-tested with a fake clock).
//! - [`restore`]: a loaded checkpoint, as the tasks read it back (state per node and subtask).
pub mod config;
pub mod format;
pub mod restore;
pub mod store;
pub mod tracker;

pub use config::{CheckpointConfig, CheckpointMode, SavepointTargets};
pub use format::{CheckpointMetadata, NodeState, TaskFile, TaskSnapshot};
pub use restore::RestoredCheckpoint;
pub use store::{CheckpointStore, StoreError, StoreFuture};

/// The directory of a checkpoint (`chk-0000000007`) or savepoint (`savepoint-0000000007`) under the
/// store's root.
pub fn checkpoint_dir(id: u64, savepoint: bool) -> String {
    if savepoint {
        format!("savepoint-{id:010}")
    } else {
        format!("chk-{id:010}")
    }
}

/// The name of a checkpoint's metadata file, inside its directory.
pub const METADATA_FILE: &str = "_metadata";
