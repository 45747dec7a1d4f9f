//! From a validated job model to a runnable graph.
//!
//! [`logical::plan`] resolves inputs, rejects cycles, and has every node's factory check its config
//! against its input schemas, collecting all problems at once. [`physical::build`] expands that into
//! the runtime's [`JobGraph`](eddy_actors::JobGraph): routing nodes (`key_by`, `union`) become edge
//! partitionings and forward-connected nodes of equal parallelism are chained into one task.
pub mod event_time;
pub mod explain;
pub mod logical;
pub mod physical;

pub use logical::{LogicalNode, LogicalPlan, Planned};
