//! State backends: the job's `state:` section and the backends it selects.
//!
//! ```yaml
//! state:
//!   backend: redb          # heap (the default) | redb
//!   dir: /var/lib/eddy     # redb: where the per-subtask database files go
//!   cache_entries: 100000  # redb: state entries per subtask kept in memory
//! ```
//!
//! Every backend hands out the same [`KeyedState`](eddy_api::state::KeyedState) through
//! [`StateBackend::create`], so operators do not know which one runs, and their snapshots share one
//! format: a checkpoint taken with one backend restores into the other. [`HeapBackend`] keeps all state in
//! memory; [`RedbBackend`] keeps a bounded cache over a redb file per subtask (see its module).
pub mod redb;

use eddy_api::config::{from_config, ConfigValue};
use eddy_api::diagnostic::Diagnostic;
pub use eddy_api::state::{HeapBackend, StateBackend};
pub use redb::RedbBackend;
use std::path::PathBuf;
use std::sync::Arc;

/// Which backend keeps keyed state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// All state in memory (the default): fastest, bounded by memory.
    #[default]
    Heap,
    /// A bounded cache in memory over a redb database file per subtask: state larger than memory.
    Redb,
}

/// The `state:` section of a job.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// `heap` (default) or `redb`.
    #[serde(default)]
    pub backend: BackendKind,
    /// Directory of the redb files (required with `redb`): `<dir>/<job>/<node>-<subtask>-<unique>.redb`,
    /// each deleted when its subtask's state is dropped.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// With `redb`: state entries per subtask kept in memory before the changed ones are written out and
    /// the cache emptied (default [`RedbBackend::DEFAULT_CACHE_ENTRIES`]).
    #[serde(default)]
    pub cache_entries: Option<usize>,
}

impl StateConfig {
    /// Reads the `state:` section (the default, heap, when there is none); a problem is located in the
    /// file.
    pub fn read(section: Option<&ConfigValue>) -> Result<StateConfig, Diagnostic> {
        let Some(value) = section else { return Ok(StateConfig::default()) };
        let config: StateConfig = from_config(value).map_err(|mut d| {
            d.message = format!("`state`: {}", d.message);
            d
        })?;
        let problem = |msg: &str, hint: &str| Err(Diagnostic::at(value.span, msg).with_hint(hint));
        match config.backend {
            BackendKind::Redb if config.dir.is_none() => {
                problem("`state`: the redb backend needs a `dir`", "add `dir: /path/for/state/files`")
            }
            BackendKind::Heap if config.dir.is_some() || config.cache_entries.is_some() => problem(
                "`state`: `dir` and `cache_entries` only apply to the redb backend",
                "add `backend: redb`, or remove them",
            ),
            _ if config.cache_entries == Some(0) => {
                problem("`state`: `cache_entries` must be at least 1", "a cache of 10000 or more is typical")
            }
            _ => Ok(config),
        }
    }

    /// The configured backend.
    pub fn build(&self) -> Arc<dyn StateBackend> {
        match (self.backend, &self.dir) {
            (BackendKind::Redb, Some(dir)) => {
                let cache = self.cache_entries.unwrap_or(RedbBackend::DEFAULT_CACHE_ENTRIES);
                Arc::new(RedbBackend::new(dir).with_cache_entries(cache))
            }
            // `read` refuses redb without a dir; heap otherwise.
            _ => Arc::new(HeapBackend),
        }
    }
}

#[cfg(test)]
mod tests;
