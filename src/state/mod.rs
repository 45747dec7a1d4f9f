//! State backends: where keyed state lives, chosen per job by the `state:` section (read in
//! `config::checkpoints`, applied in `job`).
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
//! memory; [`RedbBackend`] keeps a bounded cache over a redb file per subtask (see its module). A new
//! backend implements [`StateBackend`], usually as a [`SpillStore`](eddy_api::state::SpillStore) behind
//! [`KeyedState::with_spill`](eddy_api::state::KeyedState::with_spill), and passes
//! `eddy_api::state::conformance::run_all`.
pub mod redb;

pub use eddy_api::state::{HeapBackend, StateBackend};
pub use redb::RedbBackend;

#[cfg(test)]
mod tests;
