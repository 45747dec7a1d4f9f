//! The path from a job file to a result: load, plan, build the physical graph, run.
use crate::checkpoint::list::{CheckpointKind, CheckpointListing};
use crate::checkpoint::load::{load_checkpoint_blocking, LoadError, RestoreTarget};
use crate::checkpoint::location::StorageLocation;
use crate::checkpoint::store::OpendalStore;
use crate::config::checkpoints::{read_checkpoints, read_state, BackendSpec, CheckpointsSpec, ModeSpec, StateSpec};
use crate::config::failover::{read_failover, FailoverSpec};
use crate::config::restart::{default_restart, read_restart};
use crate::config::{self, JobSpec, Report};
use crate::plan::physical::{self, Settings};
use crate::plan::{logical, LogicalPlan};
use crate::state::redb::RedbBackend;
use eddy_actors::checkpoint::restore::RestoreMismatch;
use eddy_actors::checkpoint::{CheckpointConfig, CheckpointMode, StoreError};
use eddy_actors::coordinator::{run_job_with, JobHandle};
use eddy_actors::restart::RestartStrategy;
use eddy_actors::{run_job, JobError, JobGraph, JobMetrics, JobSummary};
use eddy_api::{Diagnostics, Registry};
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;

/// Batches in flight per channel: enough to keep both sides busy, small enough to bound memory.
pub const CHANNEL_CAPACITY: usize = 4;

/// A validated job, ready to run.
pub struct PreparedJob {
    /// The job model as read from the file.
    pub spec: JobSpec,
    /// The planned nodes.
    pub plan: LogicalPlan,
    /// The runtime graph.
    pub graph: JobGraph,
    /// The `checkpoints:` section and its storage, when the job checkpoints.
    pub checkpoints: Option<(CheckpointsSpec, StorageLocation)>,
    /// The `state:` section.
    pub state: StateSpec,
}

/// How to start a prepared job.
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// Restore from `latest` (the newest complete checkpoint in the job's storage), a checkpoint or
    /// savepoint directory under it, or a full URL.
    pub restore: Option<String>,
    /// Drop the state of nodes the job no longer has instead of refusing to restore.
    pub allow_non_restored_state: bool,
}

/// Why a job could not be set up to run (storage, restore).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The checkpoint storage cannot be opened.
    #[error("checkpoint storage: {0}")]
    Storage(#[from] StoreError),
    /// The checkpoint to restore cannot be loaded.
    #[error("restore: {0}")]
    Load(#[from] LoadError),
    /// The checkpoint does not fit the job.
    #[error("restore from {location}: {source}")]
    Mismatch {
        /// The checkpoint.
        location: String,
        /// What does not fit.
        source: RestoreMismatch,
    },
    /// `--restore latest` without `checkpoints:`.
    #[error("--restore latest needs a `checkpoints:` section (the storage to look in); or pass a checkpoint's URL")]
    NoStorage,
}

/// Reads, validates and plans a job file; every problem comes back in one report.
pub fn prepare(path: &Path, overrides: &[String], registry: &Registry) -> Result<PreparedJob, Report> {
    let (spec, problems) = config::load_job_lenient(path, overrides)?;
    prepare_spec(spec, problems, registry)
}

/// Validates and plans a job from YAML text (`file` names it in messages).
pub fn prepare_str(file: &str, text: &str, overrides: &[String], registry: &Registry) -> Result<PreparedJob, Report> {
    let (spec, problems) = config::parse_job_lenient(file, text, overrides)?;
    prepare_spec(spec, problems, registry)
}

/// Plans even when the model had problems, so one report holds every problem of the file.
fn prepare_spec(spec: JobSpec, mut problems: Diagnostics, registry: &Registry) -> Result<PreparedJob, Report> {
    let plan = match logical::plan(&spec, registry) {
        Ok(plan) if problems.is_empty() => plan,
        Ok(_) => return Err(Report::new(spec.file.clone(), spec.source.clone(), problems)),
        Err(more) => {
            problems.extend(more.0);
            return Err(Report::new(spec.file.clone(), spec.source.clone(), problems));
        }
    };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let zero_timeout = spec.buffer_timeout.is_zero();
    let settings = Settings {
        max_parallelism: spec.max_parallelism.value,
        // "flush every record": one-record batches, sent as soon as they are produced.
        batch_size: if zero_timeout { 1 } else { spec.batch_size },
        buffer_timeout: spec.buffer_timeout,
        channel_capacity: CHANNEL_CAPACITY,
        threads,
    };
    let graph = physical::build(&plan, &settings);
    let mut graph = graph;
    let (checkpoints, state) = match read_sections(&spec, &mut graph) {
        Ok(sections) => sections,
        Err(d) => return Err(Report::new(spec.file.clone(), spec.source.clone(), d)),
    };
    Ok(PreparedJob { spec, plan, graph, checkpoints, state })
}

/// Reads `checkpoints:` and `state:`, and `restart:` and `failover:` into the graph's supervision; the
/// storage URL is checked here so `eddy validate` reports it.
#[allow(clippy::type_complexity)]
fn read_sections(
    spec: &JobSpec,
    graph: &mut JobGraph,
) -> Result<(Option<(CheckpointsSpec, StorageLocation)>, StateSpec), Diagnostics> {
    let mut diags = Diagnostics::new();
    let restart = match spec.section("restart").map(read_restart) {
        None => default_restart(spec.section("checkpoints").is_some()),
        Some(Ok(r)) => r,
        Some(Err(d)) => {
            diags.extend(d.0);
            RestartStrategy::None
        }
    };
    let failover = match spec.section("failover").map(read_failover) {
        None => FailoverSpec::default(),
        Some(Ok(f)) => f,
        Some(Err(d)) => {
            diags.extend(d.0);
            FailoverSpec::default()
        }
    };
    graph.supervision.restart = restart;
    graph.supervision.failover = failover.mode;
    graph.supervision.heartbeat_timeout = failover.heartbeat_timeout;
    let checkpoints = match spec.section("checkpoints").map(read_checkpoints) {
        None => None,
        Some(Err(d)) => {
            diags.extend(d.0);
            None
        }
        Some(Ok(c)) => {
            let url = c.storage.as_ref().map_or_else(|| default_storage(&spec.name), |u| u.value.clone());
            match StorageLocation::parse(&url, c.storage_options.clone()) {
                Ok(loc) => Some((c, loc)),
                Err(e) => {
                    diags.push(eddy_api::Diagnostic::at(c.storage_span, format!("`checkpoints.storage`: {e}")));
                    None
                }
            }
        }
    };
    let state = match spec.section("state").map(read_state) {
        None => StateSpec::default(),
        Some(Ok(s)) => s,
        Some(Err(d)) => {
            diags.extend(d.0);
            StateSpec::default()
        }
    };
    if diags.is_empty() {
        Ok((checkpoints, state))
    } else {
        Err(diags)
    }
}

/// The highest checkpoint or savepoint id in a store, so a new run never reuses a directory.
/// What earlier runs left in the store: every checkpoint and savepoint, by id.
fn earlier_checkpoints(store: &OpendalStore) -> Result<Vec<CheckpointListing>, StoreError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError { message: format!("cannot start a runtime: {e}"), transient: false })?;
    rt.block_on(crate::checkpoint::list::list_checkpoints(store))
}

/// Where checkpoints go when `checkpoints.storage` is not set: `.eddy/checkpoints/<job>` in the
/// working directory.
fn default_storage(job: &str) -> String {
    let dir = std::env::current_dir().unwrap_or_else(|_| std::path::PathBuf::from("."));
    format!("file://{}", dir.join(".eddy").join("checkpoints").join(job).display())
}

impl PreparedJob {
    /// Opens the checkpoint storage and loads the checkpoint to restore, if any; returns notes for the
    /// user (damaged checkpoints skipped, state dropped). Call before running.
    pub fn start(&mut self, opts: &StartOptions) -> Result<Vec<String>, SetupError> {
        let mut notes = Vec::new();
        if self.state.backend == BackendSpec::Redb {
            let dir = self.state.dir.as_ref().map_or_else(|| std::env::temp_dir().join("eddy-state"), PathBuf::from);
            let mut backend = RedbBackend::new(dir);
            if let Some(n) = self.state.cache_entries {
                backend = backend.with_cache_entries(n);
            }
            self.graph.state_backend = Arc::new(backend);
        }
        let store = match &self.checkpoints {
            Some((c, loc)) => {
                let store = Arc::new(OpendalStore::new(loc)?);
                self.graph.checkpoints = Some(CheckpointConfig {
                    interval: c.interval,
                    mode: match c.mode {
                        ModeSpec::ExactlyOnce => CheckpointMode::ExactlyOnce,
                        ModeSpec::AtLeastOnce => CheckpointMode::AtLeastOnce,
                    },
                    timeout: c.timeout,
                    retain: c.retain,
                    tolerable_failures: c.tolerable_failures,
                    max_concurrent: c.max_concurrent,
                    min_pause: c.min_pause,
                    store: store.clone(),
                    targets: Default::default(),
                });
                let earlier = earlier_checkpoints(&store)?;
                self.graph.first_checkpoint_id = earlier.iter().map(|l| l.id).max().map_or(1, |id| id + 1);
                self.graph.earlier_checkpoints = earlier
                    .iter()
                    .filter(|l| l.kind == CheckpointKind::Checkpoint)
                    .map(|l| (l.id, l.complete))
                    .collect();
                Some(store)
            }
            None => None,
        };
        let Some(target) = opts.restore.as_deref() else { return Ok(notes) };
        let (store, which) = match (store, target) {
            (Some(s), "latest") => (s, RestoreTarget::Latest),
            (None, "latest") => return Err(SetupError::NoStorage),
            // A URL or an absolute path stands alone (e.g. a savepoint taken with `--dir`); anything else
            // is a directory under the job's checkpoint storage.
            (Some(s), path) if !path.contains("://") && !Path::new(path).is_absolute() => {
                (s, RestoreTarget::Path(path.to_string()))
            }
            (_, path) => (Arc::new(OpendalStore::open(path)?), RestoreTarget::Path(String::new())),
        };
        let latest = which == RestoreTarget::Latest;
        let loading = std::time::Instant::now();
        let loaded = match load_checkpoint_blocking(&store, which) {
            Ok(l) => l,
            // Nothing to resume (killed before its first checkpoint): start from the beginning.
            Err(LoadError::NoCheckpoint { url }) if latest => {
                notes.push(format!("no complete checkpoint under {url} yet: starting from the beginning"));
                return Ok(notes);
            }
            Err(e) => return Err(e.into()),
        };
        for s in &loaded.skipped {
            notes.push(format!("skipped damaged checkpoint {} ({}): {}", s.id, s.location, s.reason));
        }
        let restored = loaded.restored;
        let dropped = restored
            .check(&self.graph, opts.allow_non_restored_state)
            .map_err(|source| SetupError::Mismatch { location: restored.location.clone(), source })?;
        for node in dropped {
            notes.push(format!("dropped the state of node `{node}`, which the job no longer has"));
        }
        notes.push(format!(
            "restoring from checkpoint {} at {} (read and verified in {} ms)",
            restored.id,
            restored.location,
            loading.elapsed().as_millis()
        ));
        self.graph.first_checkpoint_id = self.graph.first_checkpoint_id.max(restored.id + 1);
        // As Flink's default (NO_CLAIM) restore mode: the checkpoint restored from stays the user's, so it
        // can be restored again; retention deletes only the others that earlier runs left.
        self.graph.earlier_checkpoints.retain(|(id, _)| *id != restored.id);
        self.graph.restore = Some(Arc::new(restored));
        Ok(notes)
    }

    /// Runs the job to completion on this thread (it starts its own actix system).
    pub fn run(self) -> Result<JobSummary, JobError> {
        let metrics = Arc::new(JobMetrics::new(&self.graph.nodes()));
        run_job(self.graph, metrics)
    }

    /// A handle on the job's live status and metrics, for [`PreparedJob::run_with`].
    pub fn handle(&self) -> JobHandle {
        JobHandle::new(&self.graph)
    }

    /// Runs the job to completion like [`PreparedJob::run`], publishing its status and metrics through
    /// `handle` (from [`PreparedJob::handle`]) and taking cancel and stop requests from it.
    pub fn run_with(self, handle: &JobHandle) -> Result<JobSummary, JobError> {
        run_job_with(self.graph, handle)
    }
}
