//! The coordinator actor (Flink's JobManager): deploys the task actors of a [`JobGraph`], tracks
//! their lifecycle, and ends the job when every task has finished, one has failed, or it is told to
//! (cancel, stop).
//!
//! It also owns the job's live status: a [`JobHandle`] shares the state machine
//! (created -> running -> finished | failed | cancelled | stopped), the start and end times, the
//! failures and restarts, a description of the physical graph and the metrics with whoever watches the
//! job (the web server, the progress bar), and carries their actions back to the coordinator as
//! [`Control`] messages.
mod checkpoints;
mod failover;
mod heartbeat;

use crate::checkpoint::tracker::{Limits, Tracker};
use crate::checkpoint::{CheckpointConfig, CheckpointMetadata, CheckpointMode, CheckpointStore, RestoredCheckpoint};
use crate::faults::FaultyStore;
use crate::graph::{Head, JobGraph, Partitioning};
use crate::metrics::{JobMetrics, NodeTotals};
use crate::output::OutputWriter;
use crate::task::{Cancel, StopSource, TaskActor, TaskCheckpointing, TaskEvent, TaskEventKind, TaskId, TaskSetup};
use actix::prelude::*;
use actix_rt::{Arbiter, ArbiterHandle};
use eddy_api::StreamElement;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::{channel, Receiver, Sender};
use tokio::sync::oneshot;
use tracing::{info, info_span, warn};

/// How a finished job went.
#[derive(Clone, Debug)]
pub struct JobSummary {
    /// Job name.
    pub job: String,
    /// Time from deployment to the last task finishing.
    pub wall: Duration,
    /// Per-node totals in plan order.
    pub nodes: Vec<NodeTotals>,
    /// True when the job was stopped on request rather than running out of input.
    pub stopped: bool,
}

impl fmt::Display for JobSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = if self.stopped { "stopped after" } else { "finished in" };
        write!(f, "job `{}` {how} {:.3}s:", self.job, self.wall.as_secs_f64())?;
        for (i, n) in self.nodes.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            write!(f, "{sep}{} {}->{}", n.node, n.records_in, n.records_out)?;
            if n.records_skipped > 0 {
                write!(f, " ({} skipped)", n.records_skipped)?;
            }
            if n.backpressure_waits > 0 {
                write!(f, " (throttled {}x)", n.backpressure_waits)?;
            }
        }
        Ok(())
    }
}

/// Whether a job ended by a failure or was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobErrorKind {
    /// A task failed.
    Failed,
    /// Someone cancelled the job.
    Cancelled,
}

/// Why a job did not finish.
#[derive(Clone, Debug, thiserror::Error)]
pub struct JobError {
    /// Job name.
    pub job: String,
    /// The failing node (empty when cancelled).
    pub node: String,
    /// Its subtask.
    pub subtask: usize,
    /// The error, or who cancelled.
    pub message: String,
    /// Failure or cancellation.
    pub kind: JobErrorKind,
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            JobErrorKind::Cancelled => write!(f, "job `{}` cancelled: {}", self.job, self.message),
            JobErrorKind::Failed if self.node.is_empty() => write!(f, "job `{}` failed: {}", self.job, self.message),
            JobErrorKind::Failed => {
                write!(f, "job `{}` failed: node `{}` subtask {}: {}", self.job, self.node, self.subtask, self.message)
            }
        }
    }
}

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Planned, not deployed yet.
    Created,
    /// Tasks deployed and running.
    Running,
    /// A cancel was requested; tasks are being stopped.
    Cancelling,
    /// A stop was requested; tasks are being stopped.
    Stopping,
    /// Every task ran out of input and finished.
    Finished,
    /// A task failed.
    Failed,
    /// Cancelled on request.
    Cancelled,
    /// Stopped on request.
    Stopped,
}

impl JobState {
    /// Every state, for exporters that list them all.
    pub const ALL: [JobState; 8] = [
        JobState::Created,
        JobState::Running,
        JobState::Cancelling,
        JobState::Stopping,
        JobState::Finished,
        JobState::Failed,
        JobState::Cancelled,
        JobState::Stopped,
    ];

    /// Lower-case name, as in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Created => "created",
            JobState::Running => "running",
            JobState::Cancelling => "cancelling",
            JobState::Stopping => "stopping",
            JobState::Finished => "finished",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Stopped => "stopped",
        }
    }

    /// True once the job has ended, whichever way.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Finished | JobState::Failed | JobState::Cancelled | JobState::Stopped)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A task failure, as shown in the job's exception history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureRecord {
    /// When it was reported, in ms since the epoch.
    pub time_ms: u64,
    /// The failing node.
    pub node: String,
    /// Its subtask.
    pub subtask: usize,
    /// The error.
    pub message: String,
    /// Whether the task was restarted (otherwise the failure ended the job).
    pub restarted: bool,
}

/// One recovery: a failure, the restart it caused and how long the restarted tasks took to run again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryRecord {
    /// The restart attempt (1 for the first restart).
    pub attempt: u64,
    /// When the failure was reported, in ms since the epoch.
    pub failed_ms: u64,
    /// The failed node and subtask.
    pub node: String,
    /// Its subtask.
    pub subtask: usize,
    /// The error.
    pub cause: String,
    /// Tasks restarted (all of them on full failover, the region's on region failover).
    pub tasks: usize,
    /// The checkpoint the restarted tasks restored (`None`: started from the beginning).
    pub checkpoint: Option<u64>,
    /// From the failure to every restarted task running again (restore included), once known.
    pub recovered_after_ms: Option<u64>,
}

/// One chain of the physical graph, as described to people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VertexInfo {
    /// Position in the graph.
    pub id: usize,
    /// The chained node names joined by `->`.
    pub name: String,
    /// The chained node names in order.
    pub nodes: Vec<String>,
    /// Subtasks.
    pub parallelism: usize,
    /// For a source chain: whether its input ends by itself.
    pub bounded: Option<bool>,
}

/// One edge of the physical graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdgeInfo {
    /// Upstream vertex.
    pub from: usize,
    /// Downstream vertex.
    pub to: usize,
    /// `forward`, `rebalance`, `hash` or `broadcast`.
    pub partitioning: &'static str,
}

/// The physical graph and its settings, without the runnable parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphInfo {
    /// Task chains.
    pub vertices: Vec<VertexInfo>,
    /// Their connections.
    pub edges: Vec<EdgeInfo>,
    /// Number of key groups.
    pub max_parallelism: usize,
    /// Records per batch.
    pub batch_size: usize,
    /// Flush interval of partly filled batches.
    pub buffer_timeout: Duration,
    /// Batches in flight per channel.
    pub channel_capacity: usize,
    /// Arbiter threads.
    pub threads: usize,
}

impl GraphInfo {
    /// Describes a graph.
    pub fn of(g: &JobGraph) -> Self {
        GraphInfo {
            vertices: g
                .vertices
                .iter()
                .map(|v| VertexInfo {
                    id: v.id,
                    name: v.display_name(),
                    nodes: v.node_names().iter().map(|n| n.to_string()).collect(),
                    parallelism: v.parallelism,
                    bounded: match &v.head {
                        Head::Source { builder, .. } => Some(builder.bounded()),
                        Head::Input => None,
                    },
                })
                .collect(),
            edges: g
                .edges
                .iter()
                .map(|e| EdgeInfo { from: e.from, to: e.to, partitioning: e.partitioning.name() })
                .collect(),
            max_parallelism: g.max_parallelism,
            batch_size: g.batch_size,
            buffer_timeout: g.buffer_timeout,
            channel_capacity: g.channel_capacity,
            threads: g.threads,
        }
    }

    /// True when every source ends by itself.
    pub fn bounded(&self) -> bool {
        self.vertices.iter().all(|v| v.bounded != Some(false))
    }

    /// Total number of tasks.
    pub fn tasks(&self) -> usize {
        self.vertices.iter().map(|v| v.parallelism).sum()
    }

    /// The vertex running a node.
    pub fn vertex_of(&self, node: &str) -> Option<&VertexInfo> {
        self.vertices.iter().find(|v| v.nodes.iter().any(|n| n == node))
    }
}

/// The live status of a job.
#[derive(Clone, Debug)]
pub struct JobStatus {
    /// A per-run identifier (16 hex digits).
    pub id: String,
    /// Job name.
    pub job: String,
    /// Current state.
    pub state: JobState,
    /// When the job was created (planned), in ms since the epoch.
    pub created_ms: u64,
    /// When its tasks were deployed.
    pub started_ms: Option<u64>,
    /// When it ended.
    pub ended_ms: Option<u64>,
    /// Time from deployment to the end, once ended.
    pub wall: Option<Duration>,
    /// Task failures, oldest first.
    pub failures: Vec<FailureRecord>,
    /// Restarts of the job or its tasks.
    pub restarts: u64,
    /// Each recovery from a failure, oldest first.
    pub recoveries: Vec<RecoveryRecord>,
    /// How it ended, in words (the error for a failed or cancelled job).
    pub message: Option<String>,
    /// The physical graph.
    pub graph: GraphInfo,
    /// Checkpoint statistics (all zero without checkpoints).
    pub checkpoints: CheckpointStats,
}

/// What the job's checkpoints have done so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// Whether the job checkpoints at all.
    pub enabled: bool,
    /// Completed checkpoints (savepoints included).
    pub completed: u64,
    /// Failed or timed-out checkpoints.
    pub failed: u64,
    /// Checkpoints in flight.
    pub in_progress: usize,
    /// The newest completed checkpoint: id, location, size in bytes, duration.
    pub latest: Option<CompletedCheckpoint>,
    /// The newest completed savepoint.
    pub latest_savepoint: Option<CompletedCheckpoint>,
    /// The checkpoint the job was restored from.
    pub restored_from: Option<String>,
    /// Why the last checkpoint failed, if it did.
    pub last_failure: Option<String>,
}

/// A completed checkpoint or savepoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletedCheckpoint {
    /// Its id.
    pub id: u64,
    /// Where it is (store URL and directory).
    pub location: String,
    /// Bytes of all task files.
    pub size: u64,
    /// From trigger to completion.
    pub duration_ms: u64,
    /// When it completed, ms since the epoch.
    pub time_ms: u64,
}

/// An action on a running job, sent by a [`JobHandle`] to the coordinator.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub enum Control {
    /// Stop every task at once; the job ends as cancelled (an error).
    Cancel,
    /// Stop the job on request; it ends as stopped (a success): sources end their input and everything
    /// drains, as if the input were exhausted.
    Stop,
    /// Take a savepoint (needs checkpoints): the job goes on, or with `stop` it stops right after the
    /// savepoint, so that restoring it resumes the job exactly.
    Savepoint {
        /// Stop the job once the savepoint is complete.
        stop: bool,
        /// Where to write it (`savepoint-<id>/` under this store); `None`: the job's checkpoint storage.
        target: Option<SavepointTarget>,
    },
}

/// A location of its own for one savepoint (`eddy savepoint --dir URL`).
#[derive(Clone)]
pub struct SavepointTarget(pub Arc<dyn CheckpointStore>);

impl std::fmt::Debug for SavepointTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.describe())
    }
}

/// Why an action was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The job has already ended (or is already being cancelled or stopped).
    #[error("job is {0}, not running")]
    NotRunning(JobState),
    /// The coordinator is gone.
    #[error("the job's coordinator is not reachable")]
    Unreachable,
    /// Savepoints need a job with `checkpoints:` configured.
    #[error("the job does not checkpoint: add a `checkpoints:` section to take savepoints")]
    NoCheckpoints,
}

#[derive(Default)]
struct ControlSlot {
    coordinator: Option<Recipient<Control>>,
    /// An action that arrived before the coordinator started.
    pending: Option<Control>,
}

struct Shared {
    metrics: Arc<JobMetrics>,
    status: RwLock<JobStatus>,
    control: Mutex<ControlSlot>,
}

/// A shared view of one job: its status and metrics, and a way to cancel or stop it. Cheap to clone;
/// usable from any thread.
#[derive(Clone)]
pub struct JobHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for JobHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandle").field("status", &self.status()).finish_non_exhaustive()
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl JobHandle {
    /// A handle for a job about to run on `graph`, with fresh metrics.
    pub fn new(graph: &JobGraph) -> Self {
        Self::with_metrics(graph, Arc::new(JobMetrics::new(&graph.nodes())))
    }

    /// A handle over existing metrics (which must cover `graph.nodes()`).
    pub fn with_metrics(graph: &JobGraph, metrics: Arc<JobMetrics>) -> Self {
        let created_ms = now_ms();
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write(graph.job.as_bytes());
        h.write_u64(created_ms);
        h.write_u32(std::process::id());
        let status = JobStatus {
            id: format!("{:016x}", h.finish()),
            job: graph.job.to_string(),
            state: JobState::Created,
            created_ms,
            started_ms: None,
            ended_ms: None,
            wall: None,
            failures: Vec::new(),
            restarts: 0,
            recoveries: Vec::new(),
            message: None,
            graph: GraphInfo::of(graph),
            checkpoints: CheckpointStats { enabled: graph.checkpoints.is_some(), ..CheckpointStats::default() },
        };
        JobHandle {
            shared: Arc::new(Shared {
                metrics,
                status: RwLock::new(status),
                control: Mutex::new(ControlSlot::default()),
            }),
        }
    }

    /// The job's counters.
    pub fn metrics(&self) -> &Arc<JobMetrics> {
        &self.shared.metrics
    }

    /// A copy of the current status.
    pub fn status(&self) -> JobStatus {
        self.shared.status.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The current state.
    pub fn state(&self) -> JobState {
        self.shared.status.read().unwrap_or_else(PoisonError::into_inner).state
    }

    /// Updates the status (the runtime's side).
    pub fn update(&self, f: impl FnOnce(&mut JobStatus)) {
        f(&mut self.shared.status.write().unwrap_or_else(PoisonError::into_inner));
    }

    /// Asks the coordinator to cancel the job; returns the state it moves to.
    pub fn cancel(&self) -> Result<JobState, ControlError> {
        self.send(Control::Cancel)
    }

    /// Asks the coordinator to stop the job; returns the state it moves to.
    pub fn stop(&self) -> Result<JobState, ControlError> {
        self.send(Control::Stop)
    }

    /// Asks the coordinator for a savepoint, into `target` or else the job's checkpoint storage; it shows in
    /// [`JobStatus::checkpoints`] when complete.
    pub fn savepoint(&self, target: Option<SavepointTarget>) -> Result<JobState, ControlError> {
        self.send(Control::Savepoint { stop: false, target })
    }

    /// Asks the coordinator to take a savepoint (into `target` or else the job's checkpoint storage) and
    /// then stop the job.
    pub fn stop_with_savepoint(&self, target: Option<SavepointTarget>) -> Result<JobState, ControlError> {
        self.send(Control::Savepoint { stop: true, target })
    }

    fn send(&self, action: Control) -> Result<JobState, ControlError> {
        if matches!(action, Control::Savepoint { .. }) && !self.status().checkpoints.enabled {
            return Err(ControlError::NoCheckpoints);
        }
        let next = match action {
            Control::Cancel => JobState::Cancelling,
            Control::Stop | Control::Savepoint { stop: true, .. } => JobState::Stopping,
            Control::Savepoint { stop: false, .. } => self.state(),
        };
        let mut slot = self.shared.control.lock().unwrap_or_else(PoisonError::into_inner);
        match self.state() {
            JobState::Created | JobState::Running => {}
            other => return Err(ControlError::NotRunning(other)),
        }
        match &slot.coordinator {
            Some(c) if c.connected() => c.do_send(action),
            Some(_) => return Err(ControlError::Unreachable),
            None => slot.pending = Some(action),
        }
        self.update(|s| s.state = next);
        Ok(next)
    }

    /// Called by the coordinator when it starts: registers it and returns an action that arrived first.
    fn attach(&self, coordinator: Recipient<Control>) -> Option<Control> {
        let mut slot = self.shared.control.lock().unwrap_or_else(PoisonError::into_inner);
        slot.coordinator = Some(coordinator);
        slot.pending.take()
    }

    fn detach(&self) {
        self.shared.control.lock().unwrap_or_else(PoisonError::into_inner).coordinator = None;
    }
}

/// Deploys and supervises one job.
pub struct Coordinator {
    graph: JobGraph,
    handle: JobHandle,
    arbiters: Vec<ArbiterHandle>,
    /// The running task actors, by task index ([`Coordinator::index_of`]); `None` while restarting.
    tasks: Vec<Option<Addr<TaskActor>>>,
    /// Per task: its id, the attempt it runs in, and whether it has finished (without checkpoints).
    slots: Vec<Slot>,
    started: Instant,
    done: Option<oneshot::Sender<Result<JobSummary, JobError>>>,
    /// A graceful stop was asked for: the job ends as stopped once every task has drained.
    stopping: bool,
    /// Checkpointing: the config, the bookkeeping, and the state of the tasks.
    checkpoints: Option<Checkpoints>,
    /// Restart strategy, regions and recoveries in flight.
    failover: failover::Failover,
    heartbeats: heartbeat::Heartbeats,
    /// Worker threads declared stuck: `run_job` must not wait for them to end.
    stuck_threads: Option<Arc<Mutex<Vec<usize>>>>,
}

/// What the coordinator knows of one task.
struct Slot {
    id: TaskId,
    /// The attempt the task runs in; reports of other attempts are dropped.
    epoch: u64,
    /// Reported `Finished` (jobs without checkpoints end when every task has).
    finished: bool,
    /// Runs a source (it injects barriers).
    source: bool,
}

/// The coordinator's checkpoint side.
struct Checkpoints {
    config: CheckpointConfig,
    tracker: Tracker,
    /// Which tasks have reported `Finished` (they snapshot on a direct trigger).
    finished: Vec<bool>,
    /// Tasks closed after the final checkpoint.
    closed: Vec<bool>,
    /// The final checkpoint has been triggered and not failed.
    final_triggered: bool,
    /// Stop the job once this savepoint completes.
    stop_after: Option<u64>,
    /// Completed periodic checkpoints still kept, oldest first (retention deletes beyond `retain`), those
    /// of earlier runs included.
    retained: Vec<u64>,
    /// Incomplete checkpoints of earlier runs, deleted when this run completes its first.
    stale: Vec<u64>,
    /// The newest completed checkpoint or savepoint: what a restart restores.
    latest: Option<CheckpointMetadata>,
    /// Monotonic origin of the tracker's clock.
    origin: Instant,
}

impl Checkpoints {
    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

impl Coordinator {
    fn new(
        mut graph: JobGraph,
        handle: JobHandle,
        arbiters: Vec<ArbiterHandle>,
        done: oneshot::Sender<Result<JobSummary, JobError>>,
    ) -> Self {
        // Chaos runs: the injector decides which checkpoint-store writes fail.
        if let (Some(cp), Some(faults)) = (graph.checkpoints.as_mut(), graph.supervision.faults.clone()) {
            cp.store = Arc::new(FaultyStore::new(cp.store.clone(), faults));
        }
        let mut slots = Vec::new();
        for v in &graph.vertices {
            for subtask in 0..v.parallelism {
                slots.push(Slot {
                    id: TaskId { vertex: v.id, subtask },
                    epoch: 0,
                    finished: false,
                    source: matches!(v.head, Head::Source { .. }),
                });
            }
        }
        Coordinator {
            handle,
            arbiters,
            tasks: slots.iter().map(|_| None).collect(),
            slots,
            started: Instant::now(),
            done: Some(done),
            stopping: false,
            checkpoints: None,
            failover: failover::Failover::new(&graph),
            heartbeats: heartbeat::Heartbeats::default(),
            stuck_threads: None,
            graph,
        }
    }

    /// The position of a task in `tasks` and `slots`: vertices in order, then subtasks.
    fn index_of(&self, task: TaskId) -> Option<usize> {
        let base: usize = self.graph.vertices.iter().take(task.vertex).map(|v| v.parallelism).sum();
        let v = self.graph.vertices.get(task.vertex)?;
        (task.subtask < v.parallelism).then_some(base + task.subtask)
    }

    /// Creates the bounded channels between the tasks of the `selected` vertices and starts one task
    /// actor per subtask, spread over the arbiters. Every edge of a selected vertex must lead to another
    /// selected one (a whole job or whole pipelined regions).
    /// Returns the number of tasks started.
    fn deploy(
        &mut self,
        me: Recipient<TaskEvent>,
        selected: &[bool],
        restore: Option<Arc<RestoredCheckpoint>>,
    ) -> usize {
        let g = &self.graph;
        let metrics = self.handle.metrics().clone();
        type Senders = Vec<Vec<Sender<StreamElement>>>; // per output edge, per target
        let mut outs: Vec<Vec<Senders>> =
            g.vertices.iter().map(|v| (0..v.parallelism).map(|_| Vec::new()).collect()).collect();
        type Inputs = Vec<(Receiver<StreamElement>, usize)>; // per input channel: receiver, input port
        let mut ins: Vec<Vec<Inputs>> =
            g.vertices.iter().map(|v| (0..v.parallelism).map(|_| Vec::new()).collect()).collect();
        for e in g.edges.iter().filter(|e| selected[e.from] && selected[e.to]) {
            let (pa, pb) = (g.vertices[e.from].parallelism, g.vertices[e.to].parallelism);
            for (i, out) in outs[e.from].iter_mut().enumerate() {
                let mut senders = Vec::new();
                let targets = if matches!(e.partitioning, Partitioning::Forward) { i..i + 1 } else { 0..pb };
                debug_assert!(!matches!(e.partitioning, Partitioning::Forward) || pa == pb);
                for j in targets {
                    let (tx, rx) = channel(g.channel_capacity.max(1));
                    senders.push(tx);
                    ins[e.to][j].push((rx, e.port));
                }
                out.push(senders);
            }
        }
        let mut n = 0;
        let mut started = Vec::new();
        for v in g.vertices.iter().filter(|v| selected[v.id]) {
            let edges: Vec<_> = g.outputs_of(v.id).map(|(_, e)| (e.partitioning.clone(), e.side)).collect();
            for subtask in (0..v.parallelism).rev() {
                let senders = outs[v.id].pop().unwrap_or_default();
                let outputs = edges
                    .iter()
                    .zip(senders)
                    .map(|((p, side), s)| {
                        OutputWriter::new(p.clone(), s, v.output_width(*side), g.batch_size, g.max_parallelism)
                            .on_side(*side)
                    })
                    .collect();
                let id = TaskId { vertex: v.id, subtask };
                let Some(index) = self.index_of(id) else { continue };
                let setup = TaskSetup {
                    id,
                    job: g.job.clone(),
                    vertex: v.clone(),
                    max_parallelism: g.max_parallelism,
                    inputs: std::mem::take(&mut ins[v.id][subtask]),
                    outputs,
                    metrics: v.node_names().iter().map(|name| metrics.get(name, subtask)).collect(),
                    batch_size: g.batch_size,
                    buffer_timeout: g.buffer_timeout,
                    coordinator: me.clone(),
                    checkpointing: g.checkpoints.as_ref().map(|c| TaskCheckpointing {
                        store: c.store.clone(),
                        align: c.mode == CheckpointMode::ExactlyOnce,
                        targets: c.targets.clone(),
                    }),
                    restore: restore.clone(),
                    state_backend: g.state_backend.clone(),
                    epoch: self.slots[index].epoch,
                    faults: g.supervision.faults.clone(),
                };
                // Round robin over all tasks: each thread gets a share of every vertex (sources included).
                let arbiter = &self.arbiters[index % self.arbiters.len()];
                started.push((index, TaskActor::start_in_arbiter(arbiter, move |_| TaskActor::new(setup))));
                n += 1;
            }
        }
        for (index, addr) in started {
            self.slots[index].finished = false;
            self.tasks[index] = Some(addr);
        }
        n
    }

    /// Sets up the checkpoint bookkeeping (once, before the first deployment).
    fn setup_checkpoints(&mut self) {
        let Some(config) = self.graph.checkpoints.clone() else { return };
        let n = self.slots.len();
        let limits = Limits {
            timeout_ms: u64::try_from(config.timeout.as_millis()).unwrap_or(u64::MAX),
            max_concurrent: config.max_concurrent,
            min_pause_ms: u64::try_from(config.min_pause.as_millis()).unwrap_or(u64::MAX),
            tolerable_failures: config.tolerable_failures,
        };
        let restored = self.graph.restore.as_ref().map_or(1, |r| r.id + 1);
        let first = self.graph.first_checkpoint_id.max(restored);
        self.checkpoints = Some(Checkpoints {
            tracker: Tracker::new(limits, n, first),
            finished: vec![false; n],
            closed: vec![false; n],
            final_triggered: false,
            stop_after: None,
            retained: self.graph.earlier_checkpoints.iter().filter(|c| c.1).map(|c| c.0).collect(),
            stale: self.graph.earlier_checkpoints.iter().filter(|c| !c.1).map(|c| c.0).collect(),
            latest: None,
            origin: Instant::now(),
            config,
        });
    }

    /// The live task actors.
    fn live_tasks(&self) -> impl Iterator<Item = &Addr<TaskActor>> {
        self.tasks.iter().flatten()
    }

    /// Ends the job: records the final state and hands the result to `run_job`.
    fn complete(&mut self, ctx: &mut Context<Self>, result: Result<JobSummary, JobError>) {
        let wall = self.started.elapsed();
        let (state, message) = match &result {
            Ok(s) if s.stopped => (JobState::Stopped, None),
            Ok(_) => (JobState::Finished, None),
            Err(e) if e.kind == JobErrorKind::Cancelled => (JobState::Cancelled, Some(e.to_string())),
            Err(e) => (JobState::Failed, Some(e.to_string())),
        };
        self.handle.detach();
        self.handle.update(|s| {
            s.state = state;
            s.ended_ms = Some(now_ms());
            s.wall = Some(wall);
            s.message = message;
        });
        for spare in self.heartbeats.spares.drain(..) {
            spare.stop();
        }
        if let Some(done) = self.done.take() {
            let _ = done.send(result);
        }
        ctx.stop();
    }

    fn cancel_tasks(&self) {
        for t in self.live_tasks() {
            t.do_send(Cancel);
        }
    }

    fn summary(&self, stopped: bool) -> JobSummary {
        JobSummary {
            job: self.graph.job.to_string(),
            wall: self.started.elapsed(),
            nodes: self.handle.metrics().totals(),
            stopped,
        }
    }
}

impl Actor for Coordinator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.started = Instant::now();
        let pending = self.handle.attach(ctx.address().recipient());
        self.handle.update(|s| {
            if s.state == JobState::Created {
                s.state = JobState::Running;
            }
            s.started_ms = Some(now_ms());
        });
        let restore = self.graph.restore.clone();
        if let Some(r) = &restore {
            let from = r.location.clone();
            info!(checkpoint = r.id, %from, "restoring");
            self.handle.update(|s| s.checkpoints.restored_from = Some(from));
        }
        self.setup_checkpoints();
        let all = vec![true; self.graph.vertices.len()];
        let n = self.deploy(ctx.address().recipient(), &all, restore);
        info!(tasks = n, threads = self.arbiters.len(), "job deployed");
        self.start_checkpointing(ctx);
        self.start_heartbeats(ctx);
        if self.slots.is_empty() {
            let summary = self.summary(false);
            self.complete(ctx, Ok(summary));
        } else if let Some(action) = pending {
            ctx.notify(action);
        }
    }
}

impl Handler<TaskEvent> for Coordinator {
    type Result = ();

    fn handle(&mut self, ev: TaskEvent, ctx: &mut Context<Self>) {
        let Some(i) = self.index_of(ev.task) else { return };
        if self.slots[i].epoch != ev.epoch || self.done.is_none() {
            tracing::debug!(task = ?ev.task, epoch = ev.epoch, "report of an earlier attempt dropped");
            return;
        }
        match ev.kind {
            TaskEventKind::Started => self.task_started(i),
            TaskEventKind::Finished if self.checkpoints.is_some() => self.task_finished(ctx, i),
            TaskEventKind::Acked { checkpoint, file } => self.task_acked(ctx, i, checkpoint, file),
            TaskEventKind::Declined { checkpoint, error } => self.task_declined(ctx, ev.task, checkpoint, error),
            TaskEventKind::Closed => self.task_closed(ctx, i),
            TaskEventKind::Finished => {
                self.slots[i].finished = true;
                self.tasks[i] = None;
                if self.slots.iter().all(|s| s.finished) {
                    let summary = self.summary(self.stopping);
                    self.complete(ctx, Ok(summary));
                }
            }
            TaskEventKind::Failed { node, error } => self.task_failed(ctx, i, node, error),
        }
    }
}

impl Handler<Control> for Coordinator {
    type Result = ();

    fn handle(&mut self, action: Control, ctx: &mut Context<Self>) {
        if self.done.is_none() {
            return;
        }
        if let Control::Savepoint { stop, target } = action {
            return self.savepoint(ctx, stop, target.map(|t| t.0));
        }
        if matches!(action, Control::Stop) {
            // Graceful: sources end their input as if it were exhausted, every task drains, the sinks
            // finish, and the job completes through the normal path, marked as stopped.
            info!("job stopping on request: sources end their input");
            self.stopping = true;
            for t in self.live_tasks() {
                t.do_send(StopSource);
            }
            return;
        }
        self.cancel_tasks();
        match action {
            Control::Cancel => {
                warn!("job cancelled on request");
                let err = JobError {
                    job: self.graph.job.to_string(),
                    node: String::new(),
                    subtask: 0,
                    message: "cancelled on request".into(),
                    kind: JobErrorKind::Cancelled,
                };
                self.complete(ctx, Err(err));
            }
            Control::Stop | Control::Savepoint { .. } => {
                info!("job stopped on request");
                let summary = self.summary(true);
                self.complete(ctx, Ok(summary));
            }
        }
    }
}

/// Runs a job to completion on a fresh actix system with `graph.threads` arbiters.
pub fn run_job(graph: JobGraph, metrics: Arc<JobMetrics>) -> Result<JobSummary, JobError> {
    let handle = JobHandle::with_metrics(&graph, metrics);
    run_job_with(graph, &handle)
}

/// Runs a job to completion like [`run_job`], publishing its status through `handle` (made from the same
/// graph) and taking actions from it.
pub fn run_job_with(graph: JobGraph, handle: &JobHandle) -> Result<JobSummary, JobError> {
    let span = info_span!("job", job = %graph.job);
    let _g = span.enter();
    let threads = graph.threads.max(1);
    let job = graph.job.to_string();
    let sys = actix_rt::System::new();
    let coordinator_handle = handle.clone();
    let stuck: Arc<Mutex<Vec<usize>>> = Arc::default();
    let stuck_threads = stuck.clone();
    let (result, arbiters) = sys.block_on(async move {
        let arbiters: Vec<Arbiter> = (0..threads).map(|_| Arbiter::new()).collect();
        let handles = arbiters.iter().map(Arbiter::handle).collect();
        let (tx, rx) = oneshot::channel();
        let mut coordinator = Coordinator::new(graph, coordinator_handle, handles, tx);
        coordinator.stuck_threads = Some(stuck.clone());
        coordinator.start();
        let result = rx.await;
        (result, arbiters)
    });
    let stuck = stuck_threads.lock().unwrap_or_else(PoisonError::into_inner).clone();
    for (k, a) in arbiters.into_iter().enumerate() {
        a.stop();
        if !stuck.contains(&k) {
            let _ = a.join(); // a stuck thread may never end: it is abandoned
        }
    }
    result.unwrap_or_else(|_| {
        let message = "the coordinator stopped unexpectedly".to_string();
        handle.detach();
        handle.update(|s| {
            s.state = JobState::Failed;
            s.ended_ms = Some(now_ms());
            s.message = Some(message.clone());
        });
        Err(JobError { job, node: String::new(), subtask: 0, message, kind: JobErrorKind::Failed })
    })
}
