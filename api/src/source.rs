//! The source trait: where records enter a job.
use crate::batch::Batch;
use crate::error::Result;
use crate::operator::TaskInfo;
use crate::schema::SchemaRef;
use std::time::Duration;

/// What a call to [`Source::poll`] produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourcePoll {
    /// Rows were appended (possibly none); poll again soon.
    Ready,
    /// Nothing available now; poll again after about this long (rate limits, empty sockets).
    Idle(Duration),
    /// The source is exhausted (bounded input); rows appended by this call still count.
    Finished,
}

/// Progress of a bounded source, for progress bars and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceProgress {
    /// Units (bytes or records) done.
    pub done: u64,
    /// Units in total, when known.
    pub total: Option<u64>,
}

/// A running source instance, one per subtask; it reads its own share of the input (split) itself.
pub trait Source: Send + 'static {
    /// Called once before the first poll.
    fn open(&mut self, _task: &TaskInfo) -> Result<()> {
        Ok(())
    }

    /// Appends up to `max_rows` rows to `out` without blocking for long.
    fn poll(&mut self, out: &mut Batch, max_rows: usize) -> Result<SourcePoll>;

    /// How far the source has come.
    fn progress(&self) -> SourceProgress {
        SourceProgress::default()
    }

    /// Records skipped as malformed (when the source is configured to skip them).
    fn skipped_records(&self) -> u64 {
        0
    }

    /// The position to resume from after a failure (file and offset, sequence number, broker offsets),
    /// encoded with [`crate::snapshot::encode`], for checkpoint `checkpoint`. It covers exactly the rows
    /// returned by the polls so far. `None`: the source cannot resume (it starts over on restore).
    fn snapshot_position(&mut self, _checkpoint: u64) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }

    /// Resumes from checkpointed positions, after `open` and before the first poll: the positions of
    /// every subtask of the run that took the checkpoint, indexed by that run's subtask. The parallelism
    /// may have changed, so a source divides its input into splits that do not depend on the parallelism
    /// and each subtask resumes the splits it owns now.
    fn restore_position(&mut self, _positions: &[Vec<u8>]) -> Result<()> {
        Ok(())
    }

    /// Checkpoint `checkpoint` is complete (e.g. commit offsets back to a broker).
    fn on_checkpoint_complete(&mut self, _checkpoint: u64) -> Result<()> {
        Ok(())
    }

    /// Called once when the subtask stops.
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A validated, planned source node.
pub trait SourceBuilder: Send + Sync + 'static {
    /// The schema of the records it emits.
    fn output_schema(&self) -> SchemaRef;

    /// Whether the input ends by itself.
    fn bounded(&self) -> bool;

    /// Creates the instance for one subtask.
    fn build(&self, task: &TaskInfo) -> Result<Box<dyn Source>>;
}
