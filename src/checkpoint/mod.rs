//! The checkpoint store on OpenDAL and what the command line does with it.
//!
//! - [`location`]: parsing a storage URL (`file://`, a path, `s3://`, `memory://`) and its options.
//! - [`store`]: [`OpendalStore`], the runtime's `CheckpointStore` over OpenDAL, with retries.
//! - [`load`]: reading a checkpoint or savepoint back for a restore, skipping damaged ones for `latest`.
//! - [`list`]: what a store holds, as data and as a table, and which directories retention may delete.
//!
//! Layout under a store's root: `chk-<id>/` per checkpoint (id zero-padded to 10 digits) and
//! `savepoint-<id>-<unix ms>/` (or `savepoint-<id>/`) per savepoint, each with task files and a
//! `_metadata` written last; a directory is complete exactly when its `_metadata` exists.
pub mod list;
pub mod load;
pub mod location;
pub mod store;

pub use list::{
    checkpoint_dir, format_listing, list_checkpoints, parse_dir_name, retention_victims, savepoint_dir, CheckpointKind,
    CheckpointListing,
};
pub use load::{
    load_checkpoint, load_checkpoint_blocking, LoadError, LoadedCheckpoint, RestoreTarget, SkippedCheckpoint,
    METADATA_FILE,
};
pub use location::{LocationError, StorageLocation, S3_OPTIONS};
pub use store::{is_transient, DirEntry, OpendalStore, RetryPolicy};
