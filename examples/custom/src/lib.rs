//! Custom node types for Eddy, written against the public API (`eddy-api`) only, exactly as the built-ins
//! are, and registered by name so YAML uses them like built-ins:
//!
//! | type | kind | what |
//! |---|---|---|
//! | `fraud_detector` | operator | a small transaction followed by a large one on the same account within a minute ([`fraud`]) |
//! | `dedup` | operator | drops records whose key was seen within a TTL ([`dedup`]) |
//! | `tumbling_count` | operator | a hand-written tumbling event-time count with a late side output ([`tumbling_count`]) |
//! | `tcp_lines` | source | lines from a TCP connection, with its offset in checkpoints ([`tcp_lines`]) |
//! | `part_files` | sink | JSON lines in part files, published by two-phase commit ([`part_files`]) |
//!
//! The `eddy-custom` binary (`src/main.rs`) is `eddy::Cli::new().with(register).run()`; tests and other
//! programs use [`register`] on a registry of their own. `docs/OPERATORS.md` walks through them.
use eddy_api::Registry;

pub mod dedup;
mod fields;
pub mod fraud;
pub mod part_files;
pub mod tcp_lines;
pub mod tumbling_count;

/// Registers this crate's node types (next to the built-ins of the registry it is given).
pub fn register(registry: &mut Registry) {
    registry
        .operator("fraud_detector", fraud::plan)
        .operator("dedup", dedup::plan)
        .operator("tumbling_count", tumbling_count::plan)
        .source("tcp_lines", tcp_lines::plan)
        .sink("part_files", part_files::plan);
}
