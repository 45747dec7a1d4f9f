//! The operator trait: what a built-in or custom operator implements, and how it is planned.
use crate::batch::{Batch, Row};
use crate::error::Result;
use crate::key::{KeyGroupRange, KeySelector};
use crate::schema::SchemaRef;
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

/// Where an operator writes its results while handling an input.
pub struct Output<'a> {
    batch: &'a mut Batch,
}

impl<'a> Output<'a> {
    /// An output writing into `batch` (rows of the operator's output schema).
    pub fn new(batch: &'a mut Batch) -> Self {
        Output { batch }
    }

    /// The batch being filled: push whole rows (`push_row`, `push_row_from`) or field by field.
    #[inline]
    pub fn batch(&mut self) -> &mut Batch {
        self.batch
    }

    /// Emits one row of the output schema.
    #[inline]
    pub fn emit(&mut self, values: &[Datum<'_>]) {
        self.batch.push_row(values);
    }

    /// Emits a copy of an input row (when input and output schemas are the same).
    #[inline]
    pub fn emit_row(&mut self, row: Row<'_>) {
        self.batch.push_row_from(row);
    }
}

/// A running operator instance: one per subtask, driven by its task actor on one thread at a time.
///
/// Only [`Operator::process_batch`] is required. Hooks must not block: they run on the task's arbiter
/// thread, which other subtasks share.
pub trait Operator: Send + 'static {
    /// Called once before the first input.
    fn open(&mut self, _task: &TaskInfo) -> Result<()> {
        Ok(())
    }

    /// Handles a batch of input records (from any input, in arrival order).
    fn process_batch(&mut self, input: &Batch, out: &mut Output<'_>) -> Result<()>;

    /// Event time advanced on all inputs; the runtime forwards the watermark after this returns.
    fn on_watermark(&mut self, _watermark: i64, _out: &mut Output<'_>) -> Result<()> {
        Ok(())
    }

    /// Every input has ended; last chance to emit (e.g. final aggregates of a bounded job).
    fn on_end_of_input(&mut self, _out: &mut Output<'_>) -> Result<()> {
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

    /// Key expressions (SQL) that the output stays partitioned by, for a `key_by` node whose
    /// consumers inherit the key. `None` for ordinary operators.
    fn output_key(&self) -> Option<Vec<String>> {
        None
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

    /// Creates the instance for one subtask.
    fn build(&self, task: &TaskInfo) -> Result<Box<dyn Operator>>;
}
