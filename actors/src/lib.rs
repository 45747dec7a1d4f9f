//! Eddy's runtime on actix.
//!
//! The [`Coordinator`](coordinator::Coordinator) actor (Flink's JobManager) deploys a [`JobGraph`]:
//! one [`TaskActor`](task::TaskActor) per parallel instance of each chain of operators, spread over
//! one arbiter per core. Tasks exchange [`StreamElement`](eddy_api::StreamElement)s over **bounded**
//! channels, one per pair of connected subtasks: a task that cannot hand a batch downstream stops
//! taking input until it can, so a slow sink slows the sources down and memory stays bounded.
//!
//! The graph is built by the planner in the `eddy` crate; this crate only runs it.

pub mod checkpoint;
pub mod coordinator;
pub mod faults;
pub mod gate;
pub mod graph;
pub mod metrics;
pub mod output;
mod panic;
pub mod restart;
pub mod task;

pub use coordinator::{run_job, JobError, JobSummary};
pub use graph::{Edge, EventTimeSpec, Failover, Head, JobGraph, Partitioning, Supervision, Vertex};
pub use metrics::{JobMetrics, NodeMetrics};
