//! Loading a checkpoint or savepoint for a restore: find it (the newest complete checkpoint, or an
//! explicit directory), read `_metadata` and every task file concurrently, verify each file (size,
//! checksum, checkpoint id) and assemble a [`RestoredCheckpoint`]. For [`RestoreTarget::Latest`] a damaged
//! checkpoint is skipped, with a warning naming the file and the reason, in favour of the previous one.
use super::list::{parse_dir_name, CheckpointKind};
use super::location::{LocationError, StorageLocation};
use super::store::OpendalStore;
use eddy_actors::checkpoint::format::decode_task_file;
use eddy_actors::checkpoint::{CheckpointMetadata, RestoredCheckpoint, StoreError, TaskSnapshot};
use tokio::task::JoinSet;

/// Name of the file that makes a checkpoint complete.
pub const METADATA_FILE: &str = "_metadata";

/// Task files read at the same time (bounds connections on object stores).
const MAX_CONCURRENT_READS: usize = 16;

/// What to restore from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreTarget {
    /// The newest complete `chk-<id>/` under the store's root (savepoints are never picked: restore
    /// one by its path). Damaged checkpoints are skipped in favour of older ones.
    Latest,
    /// One checkpoint or savepoint directory, used as is (damage is an error, never a fallback):
    /// - a full URL (`file:///...`, `s3://...`, `memory://...`) or an absolute filesystem path; an
    ///   URL of the store's own scheme reuses the store's options (endpoint, credentials);
    /// - anything else is relative to the store's root, e.g. `chk-0000000007` or
    ///   `savepoint-7-1700000000000`.
    Path(String),
}

/// A checkpoint that `Latest` passed over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedCheckpoint {
    /// Its id.
    pub id: u64,
    /// Its directory's URL.
    pub location: String,
    /// Why it cannot be used (names the file).
    pub reason: String,
}

/// A loaded checkpoint, and the damaged ones that were skipped to get to it (for the caller to print).
#[derive(Clone, Debug)]
pub struct LoadedCheckpoint {
    /// The state, ready for the tasks.
    pub restored: RestoredCheckpoint,
    /// Its metadata.
    pub metadata: CheckpointMetadata,
    /// Newer complete checkpoints that were damaged, newest first (only for [`RestoreTarget::Latest`]).
    pub skipped: Vec<SkippedCheckpoint>,
}

/// A checkpoint that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The store failed (after retries); trying again later may help when `transient`.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An explicit path that does not parse.
    #[error(transparent)]
    Location(#[from] LocationError),
    /// There is nothing to restore.
    #[error("no complete checkpoint under {url}")]
    NoCheckpoint {
        /// The store's root.
        url: String,
    },
    /// Every complete checkpoint is damaged.
    #[error("no usable checkpoint under {url}: {}", describe_skipped(.skipped))]
    AllDamaged {
        /// The store's root.
        url: String,
        /// Each one and why.
        skipped: Vec<SkippedCheckpoint>,
    },
    /// An explicit directory with no `_metadata`.
    #[error("{url} is not a complete checkpoint or savepoint: it has no {METADATA_FILE}")]
    Incomplete {
        /// The directory.
        url: String,
    },
    /// An explicit checkpoint with a missing, truncated or corrupt file.
    #[error("checkpoint {url} is damaged: {reason}")]
    Damaged {
        /// The directory.
        url: String,
        /// What is wrong (names the file).
        reason: String,
    },
    /// The blocking wrapper could not run.
    #[error("cannot load a checkpoint: {0}")]
    Runtime(String),
}

fn describe_skipped(skipped: &[SkippedCheckpoint]) -> String {
    skipped.iter().map(|s| format!("{} ({})", s.location, s.reason)).collect::<Vec<_>>().join("; ")
}

/// Why one checkpoint directory could not be loaded.
enum DirError {
    /// No `_metadata`: not complete.
    Incomplete,
    /// A file is missing, truncated or corrupt.
    Damaged(String),
    /// The store failed; never a reason to fall back (the data may be fine).
    Store(StoreError),
}

impl From<StoreError> for DirError {
    fn from(e: StoreError) -> Self {
        DirError::Store(e)
    }
}

/// Loads a checkpoint or savepoint for a restore. See [`RestoreTarget`] for what is picked; for
/// `Latest`, skipped checkpoints are logged (`warn`) and returned in [`LoadedCheckpoint::skipped`].
pub async fn load_checkpoint(store: &OpendalStore, which: RestoreTarget) -> Result<LoadedCheckpoint, LoadError> {
    match which {
        RestoreTarget::Path(path) => {
            let trimmed = path.trim();
            let (dir_store, dir) = if trimmed.contains("://") || trimmed.starts_with('/') {
                let mut location = StorageLocation::parse(trimmed, Default::default())?;
                if location.scheme() == store.location().scheme() {
                    location = StorageLocation::parse(location.url(), store.location().options().clone())?;
                }
                (OpendalStore::new(&location)?, String::new())
            } else {
                (store.clone(), trimmed.trim_matches('/').to_string())
            };
            let url = dir_url(&dir_store, &dir);
            let expected = url.rsplit('/').next().and_then(parse_dir_name).map(|(id, _)| id);
            match load_dir(&dir_store, &dir, expected).await {
                Ok((restored, metadata)) => Ok(LoadedCheckpoint { restored, metadata, skipped: Vec::new() }),
                Err(DirError::Incomplete) => Err(LoadError::Incomplete { url }),
                Err(DirError::Damaged(reason)) => Err(LoadError::Damaged { url, reason }),
                Err(DirError::Store(e)) => Err(LoadError::Store(e)),
            }
        }
        RestoreTarget::Latest => {
            let mut ids: Vec<(u64, String)> = store
                .list_dir("")
                .await?
                .into_iter()
                .filter(|e| e.is_dir)
                .filter_map(|e| match parse_dir_name(&e.name) {
                    Some((id, CheckpointKind::Checkpoint)) => Some((id, e.name)),
                    _ => None,
                })
                .collect();
            ids.sort_by_key(|(id, _)| std::cmp::Reverse(*id));
            let mut skipped = Vec::new();
            for (id, dir) in ids {
                match load_dir(store, &dir, Some(id)).await {
                    Ok((restored, metadata)) => {
                        if !skipped.is_empty() {
                            tracing::warn!(
                                "restoring from {} after skipping {} damaged newer checkpoint(s)",
                                restored.location,
                                skipped.len()
                            );
                        }
                        return Ok(LoadedCheckpoint { restored, metadata, skipped });
                    }
                    Err(DirError::Incomplete) => {
                        tracing::debug!("{} has no {METADATA_FILE}: not complete, ignored", dir_url(store, &dir));
                    }
                    Err(DirError::Damaged(reason)) => {
                        let location = dir_url(store, &dir);
                        tracing::warn!("skipping damaged checkpoint {location}: {reason}");
                        skipped.push(SkippedCheckpoint { id, location, reason });
                    }
                    Err(DirError::Store(e)) => return Err(LoadError::Store(e)),
                }
            }
            let url = store.url().to_string();
            Err(if skipped.is_empty() {
                LoadError::NoCheckpoint { url }
            } else {
                LoadError::AllDamaged { url, skipped }
            })
        }
    }
}

/// [`load_checkpoint`] on a fresh single-threaded runtime, for the command line. Must not be called
/// from inside an async runtime (it returns an error rather than panicking).
pub fn load_checkpoint_blocking(store: &OpendalStore, which: RestoreTarget) -> Result<LoadedCheckpoint, LoadError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(LoadError::Runtime("load_checkpoint_blocking called from inside an async runtime".into()));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| LoadError::Runtime(format!("cannot start a runtime: {e}")))?;
    rt.block_on(load_checkpoint(store, which))
}

fn dir_url(store: &OpendalStore, dir: &str) -> String {
    if dir.is_empty() {
        store.url().to_string()
    } else {
        format!("{}/{dir}", store.url().trim_end_matches('/'))
    }
}

/// Loads the checkpoint in `dir` (relative to the store; empty: the store's root), checking that its
/// metadata carries `expected_id` when the directory name tells one.
async fn load_dir(
    store: &OpendalStore,
    dir: &str,
    expected_id: Option<u64>,
) -> Result<(RestoredCheckpoint, CheckpointMetadata), DirError> {
    let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
    let url = dir_url(store, dir);
    let meta_path = format!("{prefix}{METADATA_FILE}");
    let Some(bytes) = store.read_if_exists(&meta_path).await? else {
        return Err(DirError::Incomplete);
    };
    let meta = CheckpointMetadata::from_bytes(&bytes.to_bytes(), METADATA_FILE)
        .map_err(|e| DirError::Damaged(e.to_string()))?;
    if let Some(id) = expected_id.filter(|id| *id != meta.id) {
        return Err(DirError::Damaged(format!("{METADATA_FILE}: names checkpoint {}, the directory {id}", meta.id)));
    }

    // Read every task file concurrently; decode on the blocking pool so that decoding (checksum and
    // MessagePack) of several files uses every core, and so the runtime thread stays free.
    let mut files: Vec<Option<TaskSnapshot>> = vec![None; meta.tasks.len()];
    let mut pending = meta.tasks.iter().enumerate();
    let mut set: JoinSet<(usize, Result<TaskSnapshot, DirError>)> = JoinSet::new();
    loop {
        while set.len() < MAX_CONCURRENT_READS {
            let Some((i, task)) = pending.next() else { break };
            if task.path.split('/').any(|s| s == ".." || s.is_empty()) {
                return Err(DirError::Damaged(format!("{METADATA_FILE}: bad task file path `{}`", task.path)));
            }
            let (store, path, name, size, id) =
                (store.clone(), format!("{prefix}{}", task.path), task.path.clone(), task.size, meta.id);
            set.spawn(async move { (i, read_task_file(store, path, name, size, id).await) });
        }
        let Some(joined) = set.join_next().await else { break };
        let (i, result) = joined.map_err(|e| DirError::Damaged(format!("reading a task file failed: {e}")))?;
        files[i] = Some(result?);
    }
    let files: Vec<TaskSnapshot> = files.into_iter().flatten().collect();
    tracing::info!(files = files.len(), bytes = meta.size(), "loaded checkpoint {url}");
    Ok((RestoredCheckpoint::new(url, &meta, files), meta))
}

async fn read_task_file(
    store: OpendalStore,
    path: String,
    name: String,
    size: u64,
    checkpoint: u64,
) -> Result<TaskSnapshot, DirError> {
    let Some(buf) = store.read_if_exists(&path).await? else {
        return Err(DirError::Damaged(format!("{name}: missing (listed in {METADATA_FILE})")));
    };
    if buf.len() as u64 != size {
        return Err(DirError::Damaged(format!(
            "{name}: {} bytes, {METADATA_FILE} says {size}: truncated or overwritten",
            buf.len()
        )));
    }
    let decoded = tokio::task::spawn_blocking(move || {
        let bytes = buf.to_bytes(); // no copy when the read arrived in one piece
        decode_task_file(&bytes, &name, checkpoint)
    })
    .await
    .map_err(|e| DirError::Damaged(format!("decoding a task file failed: {e}")))?;
    decoded.map_err(|e| DirError::Damaged(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::list::{checkpoint_dir, savepoint_dir};
    use eddy_actors::checkpoint::format::{encode_task_file, NodeEntry, TaskFile, FORMAT_VERSION};
    use eddy_actors::checkpoint::{CheckpointStore, NodeState};

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    fn memory_store() -> OpendalStore {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        OpendalStore::open(&format!("memory://load-test-{}-{n}", std::process::id())).unwrap()
    }

    /// Writes a complete checkpoint with `subtasks` task files of node `agg`, each with `blob` as keyed state.
    async fn write_checkpoint(store: &OpendalStore, dir: &str, id: u64, subtasks: usize, blob: &[u8]) {
        let mut tasks = Vec::new();
        for s in 0..subtasks {
            let node = NodeState {
                node: "agg".into(),
                subtask: s,
                parallelism: subtasks,
                schema: "k:int".into(),
                keyed: Some(blob.to_vec()),
                ..NodeState::default()
            };
            let bytes = encode_task_file("job", id, &TaskSnapshot { nodes: vec![node] }).unwrap();
            let path = format!("agg-{s}.snap");
            tasks.push(TaskFile {
                path: path.clone(),
                size: bytes.len() as u64,
                nodes: vec![NodeEntry {
                    node: "agg".into(),
                    subtask: s,
                    parallelism: subtasks,
                    key_groups: None,
                    schema: "k:int".into(),
                }],
            });
            store.write(format!("{dir}/{path}"), bytes).await.unwrap();
        }
        let meta = CheckpointMetadata {
            format_version: FORMAT_VERSION,
            job: "job".into(),
            id,
            savepoint: dir.starts_with("savepoint-"),
            finished: false,
            time_ms: 1_700_000_000_000 + id,
            duration_ms: 5,
            max_parallelism: 128,
            tasks,
        };
        store.write_atomic(format!("{dir}/{METADATA_FILE}"), meta.to_bytes()).await.unwrap();
    }

    #[test]
    fn latest_picks_the_newest_complete_checkpoint() {
        let store = memory_store();
        rt().block_on(async {
            let e = load_checkpoint(&store, RestoreTarget::Latest).await.unwrap_err();
            assert_eq!(e.to_string(), format!("no complete checkpoint under {}", store.url()));
            write_checkpoint(&store, &checkpoint_dir(1), 1, 2, b"one").await;
            write_checkpoint(&store, &checkpoint_dir(2), 2, 2, b"two").await;
            write_checkpoint(&store, &savepoint_dir(9, 1), 9, 1, b"sp").await; // never picked by Latest
            store.write(format!("{}/agg-0.snap", checkpoint_dir(3)), b"partial".to_vec()).await.unwrap();
            let l = load_checkpoint(&store, RestoreTarget::Latest).await.unwrap();
            assert_eq!(l.restored.id, 2);
            assert!(l.skipped.is_empty());
            assert_eq!(l.restored.location, format!("{}/chk-0000000002", store.url()));
            assert_eq!(l.restored.max_parallelism, 128);
            let states = l.restored.node("agg");
            assert_eq!(states.len(), 2);
            assert_eq!(states[1].keyed.as_deref(), Some(&b"two"[..]));
        });
    }

    #[test]
    fn latest_skips_damaged_checkpoints_and_says_why() {
        let store = memory_store();
        rt().block_on(async {
            write_checkpoint(&store, &checkpoint_dir(1), 1, 2, b"one").await;
            write_checkpoint(&store, &checkpoint_dir(2), 2, 2, b"two").await;
            write_checkpoint(&store, &checkpoint_dir(3), 3, 2, b"three").await;
            write_checkpoint(&store, &checkpoint_dir(4), 4, 1, b"four").await;
            // 4: a flipped byte; 3: a missing file; 2: truncated.
            let p4 = format!("{}/agg-0.snap", checkpoint_dir(4));
            let mut bytes = store.read(p4.clone()).await.unwrap();
            let at = bytes.len() - 5; // the payload's last byte, before the checksum
            bytes[at] ^= 0x55;
            store.write(p4, bytes).await.unwrap();
            store.delete_file(&format!("{}/agg-1.snap", checkpoint_dir(3))).await.unwrap();
            let p2 = format!("{}/agg-1.snap", checkpoint_dir(2));
            let bytes = store.read(p2.clone()).await.unwrap();
            store.write(p2, bytes[..bytes.len() - 7].to_vec()).await.unwrap();

            let l = load_checkpoint(&store, RestoreTarget::Latest).await.unwrap();
            assert_eq!(l.restored.id, 1);
            let reasons: Vec<(u64, &str)> = l.skipped.iter().map(|s| (s.id, s.reason.as_str())).collect();
            assert_eq!(reasons.len(), 3, "{reasons:?}");
            assert_eq!(reasons[0].0, 4);
            assert!(reasons[0].1.starts_with("agg-0.snap: ") && reasons[0].1.contains("corrupt"), "{reasons:?}");
            assert!(reasons[1].1.starts_with("agg-1.snap: "), "{reasons:?}");
            assert!(reasons[2].1.contains("agg-1.snap") && reasons[2].1.contains("truncated"), "{reasons:?}");
            assert_eq!(l.skipped[0].location, format!("{}/chk-0000000004", store.url()));

            // An explicit path that is damaged is an error, never a fallback.
            let e = load_checkpoint(&store, RestoreTarget::Path(checkpoint_dir(4))).await.unwrap_err();
            assert!(matches!(e, LoadError::Damaged { .. }), "{e}");
            assert!(e.to_string().contains("chk-0000000004 is damaged: agg-0.snap"), "{e}");

            // Everything damaged: one error listing each.
            store.delete_dir(checkpoint_dir(1)).await.unwrap();
            store.write(format!("{}/{METADATA_FILE}", checkpoint_dir(1)), b"{".to_vec()).await.unwrap();
            let e = load_checkpoint(&store, RestoreTarget::Latest).await.unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("no usable checkpoint under {}: ", store.url())), "{msg}");
            assert!(msg.contains("chk-0000000001 (_metadata: not valid checkpoint metadata"), "{msg}");
        });
    }

    #[test]
    fn explicit_paths_relative_or_full() {
        let store = memory_store();
        rt().block_on(async {
            let sp = savepoint_dir(5, 1_700_000_000_000);
            write_checkpoint(&store, &sp, 5, 1, b"five").await;
            let l = load_checkpoint(&store, RestoreTarget::Path(sp.clone())).await.unwrap();
            assert_eq!((l.restored.id, l.metadata.savepoint), (5, true));
            let full = format!("{}/{sp}", store.url());
            let l = load_checkpoint(&store, RestoreTarget::Path(full.clone())).await.unwrap();
            assert_eq!(l.restored.location, full);
            let e = load_checkpoint(&store, RestoreTarget::Path("chk-0000000042".into())).await.unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "{}/chk-0000000042 is not a complete checkpoint or savepoint: it has no _metadata",
                    store.url()
                )
            );
            // A directory whose metadata names another checkpoint is damaged.
            let other = store.read(format!("{sp}/{METADATA_FILE}")).await.unwrap();
            store.write(format!("{}/{METADATA_FILE}", checkpoint_dir(6)), other).await.unwrap();
            let e = load_checkpoint(&store, RestoreTarget::Path(checkpoint_dir(6))).await.unwrap_err();
            assert!(e.to_string().contains("names checkpoint 5"), "{e}");
            let e = load_checkpoint(&store, RestoreTarget::Path("ftp://x".into())).await.unwrap_err();
            assert!(e.to_string().contains("unsupported scheme"), "{e}");
        });
    }

    #[test]
    fn blocking_wrapper_on_the_filesystem() {
        let root = std::env::temp_dir().join(format!("eddy-load-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let store = OpendalStore::open(root.to_str().unwrap()).unwrap();
        rt().block_on(write_checkpoint(&store, &checkpoint_dir(7), 7, 3, b"seven"));
        let l = load_checkpoint_blocking(&store, RestoreTarget::Latest).unwrap();
        assert_eq!((l.restored.id, l.restored.node("agg").len()), (7, 3));
        let inside = rt().block_on(async { load_checkpoint_blocking(&store, RestoreTarget::Latest).unwrap_err() });
        assert!(inside.to_string().contains("inside an async runtime"));
        let _ = std::fs::remove_dir_all(&root);
    }

    /// The restore of ~1M keys worth of snapshot files from the local filesystem stays well under a second
    /// (the target; the bound here is looser so a busy machine does not fail it).
    #[test]
    fn restores_a_large_checkpoint_quickly() {
        let root = std::env::temp_dir().join(format!("eddy-load-perf-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let store = OpendalStore::open(root.to_str().unwrap()).unwrap();
        // 1M keys of ~40 bytes each (key, value, timer) spread over 4 subtasks: ~40 MB of keyed state.
        let blob: Vec<u8> = (0..10_000_000u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
        rt().block_on(write_checkpoint(&store, &checkpoint_dir(1), 1, 4, &blob));
        let started = std::time::Instant::now();
        let l = load_checkpoint_blocking(&store, RestoreTarget::Latest).unwrap();
        let took = started.elapsed();
        eprintln!("restored {} bytes in {took:?}", l.metadata.size());
        assert_eq!(l.restored.node("agg")[3].keyed.as_ref().map(Vec::len), Some(blob.len()));
        assert!(took < std::time::Duration::from_secs(5), "restore took {took:?}");
        let _ = std::fs::remove_dir_all(&root);
    }
}
