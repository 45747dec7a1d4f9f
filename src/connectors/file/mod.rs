//! The `file` source (CSV, JSON Lines or text lines from a file or directory, split across subtasks)
//! and the `file` sink (JSON Lines or CSV, one part file per subtask).
mod csv;
mod fields;
mod jsonl;
mod lines;
mod sink;
mod source;
mod split;

pub use sink::{FileSink, FileSinkBuilder, FileSinkConfig};
pub use source::{FileFormat, FileSource, FileSourceBuilder, FileSourceConfig, OnError};
