//! The `file` source (CSV, JSON Lines or text lines from a file or directory, cut into byte-range
//! splits shared by the subtasks, resumable from checkpointed positions at any parallelism) and the
//! `file` sink (JSON Lines or CSV, one part file per subtask; exactly-once part files published per
//! checkpoint when the job takes checkpoints).
mod csv;
mod fields;
mod jsonl;
mod lines;
mod sink;
mod source;
mod split;

pub use sink::{FileSink, FileSinkBuilder, FileSinkConfig};
pub use source::{FileFormat, FileSource, FileSourceBuilder, FileSourceConfig, OnError};
