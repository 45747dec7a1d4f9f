//! The operator trait: what a built-in or custom operator implements, and how it is planned.
use crate::batch::{Batch, Row};
use crate::error::Result;
use crate::key::{KeyGroupRange, KeySelector};
use crate::schema::SchemaRef;
use crate::state::{KeyedState, Timer};
use crate::value::Datum;
use std::sync::Arc;

/// Where a subtask sits in the job; handed to every hook that creates or opens an instance.
#[derive(Clone, Debug)]
pub struct TaskInfo {
    /// Job name.
    pub job: Arc<str>,
    /// Node name from the YAML.
    pub node: Arc<str>,
    /// This subtask's index, from 0.
    pub subtask: usize,
    /// Number of subtasks of the node.
    pub parallelism: usize,
    /// Number of key groups (upper bound of rescaling).
    pub max_parallelism: usize,
}

impl TaskInfo {
    /// The key groups this subtask owns on a keyed stream.
    pub fn key_groups(&self) -> KeyGroupRange {
        KeyGroupRange::for_subtask(self.max_parallelism, self.parallelism, self.subtask)
    }
}

/// What an operator sees and uses while handling an input: where to emit results (the main output and
/// its declared side outputs) and the current time.
pub struct Context<'a> {
    out: &'a mut Batch,
    sides: &'a mut [Batch],
    watermark: i64,
    processing_time: i64,
    port: usize,
    state: Option<&'a mut KeyedState>,
    late: LateCounts,
}

/// Late records an operator saw during one call, for the job's metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LateCounts {
    /// Dropped (no late side output configured).
    pub dropped: u64,
    /// Routed to a late side output.
    pub side_output: u64,
}

impl<'a> Context<'a> {
    /// A context writing into `out` (rows of the output schema) and `sides` (one batch per declared
    /// side output, in [`OperatorBuilder::side_outputs`] order).
    pub fn new(out: &'a mut Batch, sides: &'a mut [Batch], watermark: i64, processing_time: i64) -> Self {
        Context { out, sides, watermark, processing_time, port: 0, state: None, late: LateCounts::default() }
    }

    /// The same context with the operator's keyed state and timers.
    pub fn with_state(mut self, state: Option<&'a mut KeyedState>) -> Self {
        self.state = state;
        self
    }

    /// The keyed state and the main output batch at once (to read state while emitting).
    pub fn state_and_batch(&mut self) -> Result<(&mut KeyedState, &mut Batch)> {
        match self.state.as_deref_mut() {
            Some(st) => Ok((st, &mut *self.out)),
            None => Err(crate::EddyError::internal("keyed state is only available to operators on a keyed stream")),
        }
    }

    /// The operator's keyed state and timers, scoped to the current key (set it per record with
    /// [`KeyedState::set_current_key`]; in `on_timer` it is the timer's key). Only operators on a keyed
    /// stream have it (see [`OperatorBuilder::state_key`]).
    pub fn state(&mut self) -> Result<&mut KeyedState> {
        self.state
            .as_deref_mut()
            .ok_or_else(|| crate::EddyError::internal("keyed state is only available to operators on a keyed stream"))
    }

    /// The same context for a batch that arrived on input `port`.
    pub fn on_port(mut self, port: usize) -> Self {
        self.port = port;
        self
    }

    /// Which input the batch being processed came from: its position in the node's `inputs:` (0 for
    /// single-input operators; e.g. 0 = left and 1 = right for a join).
    pub fn input_port(&self) -> usize {
        self.port
    }

    /// The main output batch being filled: push whole rows (`push_row`, `push_row_from`) or field by field.
    #[inline]
    pub fn batch(&mut self) -> &mut Batch {
        self.out
    }

    /// Emits one row of the output schema.
    #[inline]
    pub fn emit(&mut self, values: &[Datum<'_>]) {
        self.out.push_row(values);
    }

    /// Emits a copy of an input row (when input and output schemas are the same).
    #[inline]
    pub fn emit_row(&mut self, row: Row<'_>) {
        self.out.push_row_from(row);
    }

    /// Side output `index` (as declared by the builder), e.g. late records.
    pub fn side_output(&mut self, index: usize) -> Result<&mut Batch> {
        let n = self.sides.len();
        self.sides
            .get_mut(index)
            .ok_or_else(|| crate::EddyError::internal(format!("side output {index} is not declared ({n} are)")))
    }

    /// Counts late records (behind the watermark beyond any allowed lateness): `dropped` ones and ones
    /// routed to a side output. Late records are never dropped silently: they show in the metrics.
    pub fn record_late(&mut self, dropped: u64, side_output: u64) {
        self.late.dropped += dropped;
        self.late.side_output += side_output;
    }

    /// The late records counted so far in this call.
    pub fn late_counts(&self) -> LateCounts {
        self.late
    }

    /// The current event time: the minimum watermark over the inputs (`i64::MIN` before the first one).
    pub fn current_watermark(&self) -> i64 {
        self.watermark
    }

    /// The wall clock in milliseconds since the epoch, read once per input.
    pub fn processing_time(&self) -> i64 {
        self.processing_time
    }
}

/// What an operator gets when it opens: where it runs, and its keyed state to declare state in.
pub struct OpenContext<'a> {
    /// Where the subtask sits in the job.
    pub task: &'a TaskInfo,
    state: Option<&'a mut KeyedState>,
}

impl<'a> OpenContext<'a> {
    /// A context for opening an operator.
    pub fn new(task: &'a TaskInfo, state: Option<&'a mut KeyedState>) -> Self {
        OpenContext { task, state }
    }

    /// The keyed state to declare value, list, map or reducing state in (keyed operators only).
    pub fn state(&mut self) -> Result<&mut KeyedState> {
        self.state
            .as_deref_mut()
            .ok_or_else(|| crate::EddyError::internal("keyed state is only available to operators on a keyed stream"))
    }
}

/// A running operator instance: one per subtask, driven by its task actor on one thread at a time.
///
/// Only [`Operator::process_batch`] is required. Hooks must not block: they run on the task's arbiter
/// thread, which other subtasks share.
pub trait Operator: Send + 'static {
    /// Called once before the first input; declare keyed state here.
    fn open(&mut self, _ctx: &mut OpenContext<'_>) -> Result<()> {
        Ok(())
    }

    /// Handles a batch of input records (from any input, in arrival order).
    fn process_batch(&mut self, input: &Batch, out: &mut Context<'_>) -> Result<()>;

    /// A timer registered through the keyed state fired; its key is current in `ctx.state()`. Event-time
    /// timers fire when the watermark passes them (before `on_watermark`), processing-time timers when
    /// the wall clock does.
    fn on_timer(&mut self, _timer: Timer, _ctx: &mut Context<'_>) -> Result<()> {
        Ok(())
    }

    /// Event time advanced on all inputs; the runtime forwards the watermark after this returns.
    fn on_watermark(&mut self, _watermark: i64, _out: &mut Context<'_>) -> Result<()> {
        Ok(())
    }

    /// Every input has ended; last chance to emit (e.g. final aggregates of a bounded job).
    fn on_end_of_input(&mut self, _out: &mut Context<'_>) -> Result<()> {
        Ok(())
    }

    /// Checkpoint `checkpoint`'s barrier has reached this operator (aligned over all inputs): everything
    /// before it has been processed, nothing after it yet. Emit here what must go out ahead of the barrier
    /// (Flink's `prepareSnapshotPreBarrier`); keyed state and timers are snapshotted by the runtime right
    /// after, and [`snapshot_state`](Self::snapshot_state) is called for anything else.
    fn on_checkpoint(&mut self, _checkpoint: u64, _out: &mut Context<'_>) -> Result<()> {
        Ok(())
    }

    /// State that is not keyed (kept in the operator's own fields) for checkpoint `checkpoint`, encoded
    /// with [`crate::snapshot::encode`]; `None` when there is none. Keyed state and timers need nothing
    /// here: the runtime snapshots them.
    fn snapshot_state(&mut self, _checkpoint: u64) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }

    /// Restores what [`snapshot_state`](Self::snapshot_state) returned, after `open` and before the
    /// first input: the states of every subtask of the run that took the checkpoint, indexed by that
    /// run's subtask (after a rescale there are more or fewer than this run's subtasks; each subtask
    /// takes what belongs to it). Keyed state is restored by the runtime before this is called.
    fn restore_state(&mut self, _states: &[Vec<u8>]) -> Result<()> {
        Ok(())
    }

    /// Checkpoint `checkpoint` is complete: every task has durably stored its part. Side effects that must
    /// happen only once (publishing, committing) belong here.
    fn on_checkpoint_complete(&mut self, _checkpoint: u64) -> Result<()> {
        Ok(())
    }

    /// Called once when the subtask stops, after the last input.
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// How an operator needs its input distributed across its subtasks.
#[derive(Clone, Default)]
pub enum InputPartitioning {
    /// Any distribution: forward where parallelism matches, otherwise round robin.
    #[default]
    Any,
    /// Records with equal keys go to the same subtask (hash partitioning by key group).
    Hash(Arc<dyn KeySelector>),
    /// Every subtask sees every record.
    Broadcast,
    /// Round robin even when parallelism matches (breaks chaining; spreads skew).
    Rebalance,
}

impl std::fmt::Debug for InputPartitioning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InputPartitioning::Any => "any",
            InputPartitioning::Hash(_) => "hash",
            InputPartitioning::Broadcast => "broadcast",
            InputPartitioning::Rebalance => "rebalance",
        })
    }
}

/// A validated, planned operator node: knows its output schema and creates instances for subtasks.
pub trait OperatorBuilder: Send + Sync + 'static {
    /// The schema of the records it emits.
    fn output_schema(&self) -> SchemaRef;

    /// How the input must be partitioned.
    fn input_partitioning(&self) -> InputPartitioning {
        InputPartitioning::Any
    }

    /// How input `port` (its position in `inputs:`) must be partitioned; by default the same for every
    /// input ([`input_partitioning`](Self::input_partitioning)). Two-input operators whose sides have
    /// different schemas (joins) return a selector per side here; selectors of different sides must
    /// produce equal key values for records that should meet, so they hash to the same subtask.
    fn input_partitioning_for(&self, _port: usize) -> InputPartitioning {
        self.input_partitioning()
    }

    /// Key expressions (SQL) that the output stays partitioned by, for a `key_by` node whose
    /// consumers inherit the key. `None` for ordinary operators.
    fn output_key(&self) -> Option<Vec<String>> {
        None
    }

    /// The key of the operator's keyed state and timers, if it has any: by default the key its input is
    /// hash-partitioned by; an operator on a non-keyed stream that still wants state and timers (e.g. a
    /// global window) returns a selector with an empty key here.
    fn state_key(&self) -> Option<Arc<dyn KeySelector>> {
        match self.input_partitioning() {
            InputPartitioning::Hash(keys) => Some(keys),
            _ => None,
        }
    }

    /// Named side outputs with their schemas (e.g. `late`), consumed in YAML as `inputs: [node.late]`.
    fn side_outputs(&self) -> Vec<(String, SchemaRef)> {
        Vec::new()
    }

    /// True for nodes that only route records (`key_by`, `union`): the planner removes them and
    /// applies their [`input_partitioning`](Self::input_partitioning) to the edges that bypass them,
    /// so no task copies records through them. `build` is never called for such nodes.
    fn passthrough(&self) -> bool {
        false
    }

    /// A parallelism the operator must run at (e.g. 1 for a global aggregate), if any.
    fn fixed_parallelism(&self) -> Option<usize> {
        None
    }

    /// Watermarks generated from the records entering this operator, replacing the upstream ones
    /// (Flink's `assignTimestampsAndWatermarks` mid-stream); the field is a position in its input (and
    /// output) records. The planner starts a chain at such an operator, so its task derives the
    /// watermark from the data it receives and ignores the watermarks from upstream (except the end of
    /// input). `None` (default): watermarks pass through.
    fn watermarks(&self) -> Option<crate::WatermarkStrategy> {
        None
    }

    /// Creates the instance for one subtask.
    fn build(&self, task: &TaskInfo) -> Result<Box<dyn Operator>>;
}
