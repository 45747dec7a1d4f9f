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

    /// All input has ended: flush everything durably.
    fn finish(&mut self) -> Result<()> {
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
