//! The redb state backend: keyed state larger than memory.
//!
//! Each operator subtask gets a redb database file, `<dir>/<job>/<node>-<subtask>-<unique>.redb`, deleted
//! when its keyed state is dropped; it is scratch space (checkpoints copy state out through snapshots), so
//! every write transaction commits with `Durability::None`: no fsync, and nothing survives a crash, which
//! is what a restore from a checkpoint expects.
//!
//! The [`KeyedState`] keeps its heap tables as a bounded cache over the file (the spill plug-in of
//! `eddy_api::state`): a miss reads the entry from the file, changes stay in memory, and when the cache
//! holds more than `cache_entries` entries the runtime's safe point writes the changed entries and
//! deletes as one sorted batch in one transaction, then empties the cache. Timers stay in memory, so keys
//! with timers do too. Key and entry counts cover memory only. Entries whose TTL passed are dropped when
//! read; the file itself is not swept.
//!
//! A snapshot writes the pending changes, then encodes the entries from a read transaction (a
//! consistent view while processing goes on) on the snapshot thread, in the same format as the heap
//! backend. A restore writes the restored entries straight into the file, sorted, in one transaction.
use eddy_api::error::{EddyError, Result};
use eddy_api::key::{KeyGroupRange, KeySelector};
use eddy_api::state::{KeyedState, ScanFn, SpillBatch, SpillStore, SpillView, StateBackend};
use eddy_api::TaskInfo;
use redb::{Database, Durability, ReadOnlyTable, ReadableDatabase, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The one table of a state file: store key to store value, as laid out by `eddy_api::state`.
const ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("keyed_state");

/// redb's page cache per file: the state cache above it holds the hot entries, so this stays small.
const PAGE_CACHE_BYTES: usize = 32 << 20;

/// Keyed state in a bounded memory cache over a redb file per operator subtask.
#[derive(Clone, Debug)]
pub struct RedbBackend {
    dir: PathBuf,
    cache_entries: usize,
}

impl RedbBackend {
    /// State entries per subtask kept in memory unless configured.
    pub const DEFAULT_CACHE_ENTRIES: usize = 100_000;

    /// Files under `dir`, with the default cache.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        RedbBackend { dir: dir.into(), cache_entries: Self::DEFAULT_CACHE_ENTRIES }
    }

    /// Sets the state entries per subtask kept in memory before a spill.
    pub fn with_cache_entries(mut self, entries: usize) -> Self {
        self.cache_entries = entries;
        self
    }

    /// Where the files go.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl StateBackend for RedbBackend {
    fn name(&self) -> &str {
        "redb"
    }

    fn create(
        &self,
        task: &TaskInfo,
        selector: Arc<dyn KeySelector>,
        key_groups: KeyGroupRange,
        max_parallelism: usize,
    ) -> Result<KeyedState> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = self.dir.join(file_name(&task.job));
        std::fs::create_dir_all(&dir)
            .map_err(|e| EddyError::io(format!("cannot create the state directory {}", dir.display()), e))?;
        let unique = format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = dir.join(format!("{}-{}-{unique}.redb", file_name(&task.node), task.subtask));
        let store = RedbStore::create(path)?;
        Ok(KeyedState::with_spill(selector, key_groups, max_parallelism, Box::new(store), self.cache_entries))
    }
}

/// A name made safe for a file name.
fn file_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// A redb error as an [`EddyError`] naming the file.
fn fail(path: &Path, what: &str, e: impl Into<redb::Error>) -> EddyError {
    EddyError::io(format!("state database {}: {what}", path.display()), std::io::Error::other(e.into()))
}

/// One subtask's state file.
struct RedbStore {
    path: PathBuf,
    /// `None` only while dropping.
    db: Option<Database>,
    /// A read transaction's table for cache misses, reopened after each write.
    reader: Option<ReadOnlyTable<&'static [u8], &'static [u8]>>,
}

impl RedbStore {
    /// A new, empty file at `path` (a leftover file there, from a process that died, is replaced).
    fn create(path: PathBuf) -> Result<Self> {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(EddyError::io(format!("cannot remove the old state file {}", path.display()), e))
            }
            _ => {}
        }
        let db = Database::builder()
            .set_cache_size(PAGE_CACHE_BYTES)
            .create(&path)
            .map_err(|e| fail(&path, "cannot create", e))?;
        let store = RedbStore { path, db: Some(db), reader: None };
        // Create the table, so that reads never meet a missing one.
        store.write_txn(|_| Ok(()))?;
        Ok(store)
    }

    fn db(&self) -> Result<&Database> {
        self.db.as_ref().ok_or_else(|| EddyError::internal("state database used while dropped"))
    }

    /// Runs `f` on the table in one non-durable write transaction.
    fn write_txn(&self, f: impl FnOnce(&mut redb::Table<'_, &[u8], &[u8]>) -> Result<()>) -> Result<()> {
        let p = &self.path;
        let mut tx = self.db()?.begin_write().map_err(|e| fail(p, "cannot begin a write", e))?;
        tx.set_durability(Durability::None).map_err(|e| fail(p, "cannot set durability", e))?;
        {
            let mut table = tx.open_table(ENTRIES).map_err(|e| fail(p, "cannot open the table", e))?;
            f(&mut table)?;
        }
        tx.commit().map_err(|e| fail(p, "cannot commit", e))
    }

    fn read_table(&self) -> Result<ReadOnlyTable<&'static [u8], &'static [u8]>> {
        let p = &self.path;
        let tx = self.db()?.begin_read().map_err(|e| fail(p, "cannot begin a read", e))?;
        tx.open_table(ENTRIES).map_err(|e| fail(p, "cannot open the table", e))
    }
}

impl SpillStore for RedbStore {
    fn get(&mut self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        if self.reader.is_none() {
            self.reader = Some(self.read_table()?);
        }
        let Some(reader) = self.reader.as_ref() else { return Ok(false) };
        match reader.get(key).map_err(|e| fail(&self.path, "cannot read", e))? {
            Some(value) => {
                out.clear();
                out.extend_from_slice(value.value());
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn write(&mut self, batch: &SpillBatch) -> Result<()> {
        // The reader's snapshot is about to be stale; dropping it first also lets redb reuse pages.
        self.reader = None;
        let p = self.path.clone();
        self.write_txn(|table| {
            for (key, value) in batch.iter() {
                match value {
                    Some(value) => drop(table.insert(key, value).map_err(|e| fail(&p, "cannot write", e))?),
                    None => drop(table.remove(key).map_err(|e| fail(&p, "cannot delete", e))?),
                }
            }
            Ok(())
        })
    }

    fn view(&mut self) -> Result<Box<dyn SpillView>> {
        Ok(Box::new(RedbView { table: self.read_table()?, path: self.path.clone() }))
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        self.reader = None;
        self.db = None;
        // A snapshot view may still read the file: on Unix it keeps the removed file's data until done.
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove a state file");
        }
    }
}

/// A read transaction of a state file, for a snapshot.
struct RedbView {
    table: ReadOnlyTable<&'static [u8], &'static [u8]>,
    path: PathBuf,
}

impl SpillView for RedbView {
    fn scan(&self, start: &[u8], end: &[u8], f: &mut ScanFn<'_>) -> Result<()> {
        let range = self.table.range::<&[u8]>(start..end).map_err(|e| fail(&self.path, "cannot scan", e))?;
        for entry in range {
            let (key, value) = entry.map_err(|e| fail(&self.path, "cannot scan", e))?;
            f(key.value(), value.value())?;
        }
        Ok(())
    }
}
