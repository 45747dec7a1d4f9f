//! The sink trait: where records leave a job.
use crate::batch::Batch;
use crate::error::Result;
use crate::operator::TaskInfo;

/// A running sink instance, one per subtask.
pub trait Sink: Send + 'static {
    /// Called once before the first batch.
    fn open(&mut self, _task: &TaskInfo) -> Result<()> {
        Ok(())
    }

    /// Writes a batch (records of the sink's input schema).
    fn write_batch(&mut self, batch: &Batch) -> Result<()>;

    /// All input has ended and the job runs without checkpoints: flush and publish everything durably.
    /// With checkpoints the runtime calls [`pre_commit`](Self::pre_commit) and [`commit`](Self::commit)
    /// for a final checkpoint instead, so the end of the input is committed exactly once too.
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }

    /// Phase one of a two-phase commit, at checkpoint `checkpoint`'s barrier: make everything written so
    /// far durable but not yet visible (close in-progress files, pre-commit a transaction) and return what
    /// [`commit`](Self::commit) or a restore needs to publish it (encoded with
    /// [`crate::snapshot::encode`]). A sink that writes straight through (at-least-once) returns `None`.
    fn pre_commit(&mut self, _checkpoint: u64) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }

    /// Phase two: checkpoint `checkpoint` is complete, so publish what was pre-committed up to and
    /// including it (earlier checkpoints may have been aborted; their data is published now). Must be
    /// idempotent: after a failure it may be repeated through [`restore`](Self::restore).
    fn commit(&mut self, _checkpoint: u64) -> Result<()> {
        Ok(())
    }

    /// Restoring from a checkpoint, after `open` and before the first batch: the states that
    /// [`pre_commit`](Self::pre_commit) returned for it, one per subtask of the run that took it
    /// (indexed by that run's subtask; subtask `i` of this run handles old subtasks `j` with
    /// `j % parallelism == i`). Publish them (the checkpoint completed, but the commit may not have
    /// happened before the failure) and discard anything else in progress from the failed run.
    fn restore(&mut self, _states: &[Vec<u8>]) -> Result<()> {
        Ok(())
    }

    /// Called once when the subtask stops (also after a failure, without `finish`).
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A validated, planned sink node.
pub trait SinkBuilder: Send + Sync + 'static {
    /// Creates the instance for one subtask.
    fn build(&self, task: &TaskInfo) -> Result<Box<dyn Sink>>;
}
