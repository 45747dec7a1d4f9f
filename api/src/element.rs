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
    /// Checkpoint barrier `id` (everything before it belongs to checkpoint `id`).
    Barrier(u64),
    /// The upstream subtask has no more data.
    EndOfInput,
}
