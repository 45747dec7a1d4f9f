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

    /// Where this sink's committed output is and how to read it back, so that tools (`eddy chaos`) can
    /// give each run its own location and compare outputs record for record. `None` (the default): the
    /// output cannot be compared (a broker, a database, nothing at all).
    fn output_files(&self) -> Option<OutputFiles> {
        None
    }
}

/// How to find and read back what a sink committed, for [`SinkBuilder::output_files`].
///
/// The output is text, one record per line, under the path held by the config key `path_key`: either
/// that file, or a directory whose visible files named `part*` hold it (hidden files, such as in-progress
/// or pending ones starting with a dot, are not output). Empty lines are not records. A tool sets the key
/// (`--set sinks.NAME.config.<path_key>=...`) to give a run its own location, so the sink must accept a
/// fresh path there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputFiles {
    /// The config key holding the path: a file, or a directory of `part*` files.
    pub path_key: String,
    /// Lines at the start of every file that are not records (a CSV header: 1).
    pub header_lines: usize,
}

impl OutputFiles {
    /// Output under the config key `path_key`, without header lines.
    pub fn new(path_key: impl Into<String>) -> Self {
        OutputFiles { path_key: path_key.into(), header_lines: 0 }
    }

    /// The same with `n` header lines at the start of every file.
    pub fn with_header_lines(mut self, n: usize) -> Self {
        self.header_lines = n;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Opaque;

    impl SinkBuilder for Opaque {
        fn build(&self, _task: &TaskInfo) -> Result<Box<dyn Sink>> {
            Err(crate::EddyError::internal("not built in this test"))
        }
    }

    #[test]
    fn output_is_not_comparable_unless_the_sink_says_where_it_is() {
        assert_eq!(Opaque.output_files(), None);
        let files = OutputFiles::new("path").with_header_lines(1);
        assert_eq!(files, OutputFiles { path_key: "path".into(), header_lines: 1 });
    }
}
