//! The storage interface of checkpoints. The runtime only names paths relative to the store's root;
//! the implementation (OpenDAL in the `eddy` crate) retries transient errors with backoff before it
//! reports one, so an error here means the call has failed for good (for this checkpoint).
use std::future::Future;
use std::pin::Pin;

/// A storage call in flight.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>>;

/// A failed storage call.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    /// What failed, naming the path and the store.
    pub message: String,
    /// Whether trying again later may succeed (an outage) rather than never (bad credentials).
    pub transient: bool,
}

/// Where checkpoints and savepoints are kept.
///
/// Layout under the root: `chk-<id>/` per checkpoint with one file per task and a `_metadata` file
/// written last; a checkpoint is complete exactly when its `_metadata` exists.
pub trait CheckpointStore: Send + Sync + 'static {
    /// Writes a whole object.
    fn write(&self, path: String, bytes: Vec<u8>) -> StoreFuture<()>;

    /// Writes a whole object so that readers see either nothing or all of it (write to a temporary
    /// name and rename where the store can rename; a single PUT on object stores).
    fn write_atomic(&self, path: String, bytes: Vec<u8>) -> StoreFuture<()>;

    /// Reads a whole object.
    fn read(&self, path: String) -> StoreFuture<Vec<u8>>;

    /// Deletes a directory and everything in it (a discarded checkpoint); missing is not an error.
    fn delete_dir(&self, dir: String) -> StoreFuture<()>;

    /// The store's URL, for messages.
    fn describe(&self) -> String;
}
