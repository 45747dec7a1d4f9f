//! What flows on an edge: data batches interleaved, in order, with control elements.
use crate::batch::Batch;

/// One element of an ordered stream between two subtasks.
#[derive(Debug)]
pub enum StreamElement {
    /// A batch of records.
    Data(Batch),
    /// Event time has advanced to this many milliseconds since the epoch.
    Watermark(i64),
    /// The upstream subtask became idle (`true`: it will not advance the watermark until it is active
    /// again, so consumers leave it out of their minimum) or active again (`false`).
    Idle(bool),
    /// A checkpoint barrier: everything before it belongs to the checkpoint, everything after to the next.
    Barrier(CheckpointBarrier),
    /// The upstream subtask has no more data.
    EndOfInput,
}

/// A checkpoint barrier as it travels with the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointBarrier {
    /// The checkpoint's id.
    pub id: u64,
    /// Whether it is a savepoint (taken on request and kept until deleted by hand).
    pub savepoint: bool,
}
