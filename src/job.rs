//! The path from a job file to a result: load, plan, build the physical graph, run.
use crate::config::{self, JobSpec, Report};
use crate::plan::physical::{self, Settings};
use crate::plan::{logical, LogicalPlan};
use eddy_actors::coordinator::{run_job_with, JobHandle};
use eddy_actors::{run_job, JobError, JobGraph, JobMetrics, JobSummary};
use eddy_api::{Diagnostics, Registry};
use std::path::Path;
use std::sync::Arc;

/// Batches in flight per channel: enough to keep both sides busy, small enough to bound memory.
pub const CHANNEL_CAPACITY: usize = 4;

/// A validated job, ready to run.
pub struct PreparedJob {
    /// The job model as read from the file.
    pub spec: JobSpec,
    /// The planned nodes.
    pub plan: LogicalPlan,
    /// The runtime graph.
    pub graph: JobGraph,
}

/// Reads, validates and plans a job file; every problem comes back in one report.
pub fn prepare(path: &Path, overrides: &[String], registry: &Registry) -> Result<PreparedJob, Report> {
    let (spec, problems) = config::load_job_lenient(path, overrides)?;
    prepare_spec(spec, problems, registry)
}

/// Validates and plans a job from YAML text (`file` names it in messages).
pub fn prepare_str(file: &str, text: &str, overrides: &[String], registry: &Registry) -> Result<PreparedJob, Report> {
    let (spec, problems) = config::parse_job_lenient(file, text, overrides)?;
    prepare_spec(spec, problems, registry)
}

/// Plans even when the model had problems, so one report holds every problem of the file.
fn prepare_spec(spec: JobSpec, mut problems: Diagnostics, registry: &Registry) -> Result<PreparedJob, Report> {
    let plan = match logical::plan(&spec, registry) {
        Ok(plan) if problems.is_empty() => plan,
        Ok(_) => return Err(Report::new(spec.file.clone(), spec.source.clone(), problems)),
        Err(more) => {
            problems.extend(more.0);
            return Err(Report::new(spec.file.clone(), spec.source.clone(), problems));
        }
    };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let zero_timeout = spec.buffer_timeout.is_zero();
    let settings = Settings {
        max_parallelism: spec.max_parallelism.value,
        // "flush every record": one-record batches, sent as soon as they are produced.
        batch_size: if zero_timeout { 1 } else { spec.batch_size },
        buffer_timeout: spec.buffer_timeout,
        channel_capacity: CHANNEL_CAPACITY,
        threads,
    };
    let graph = physical::build(&plan, &settings);
    Ok(PreparedJob { spec, plan, graph })
}

impl PreparedJob {
    /// Runs the job to completion on this thread (it starts its own actix system).
    pub fn run(self) -> Result<JobSummary, JobError> {
        let metrics = Arc::new(JobMetrics::new(&self.graph.nodes()));
        run_job(self.graph, metrics)
    }

    /// A handle on the job's live status and metrics, for [`PreparedJob::run_with`].
    pub fn handle(&self) -> JobHandle {
        JobHandle::new(&self.graph)
    }

    /// Runs the job to completion like [`PreparedJob::run`], publishing its status and metrics through
    /// `handle` (from [`PreparedJob::handle`]) and taking cancel and stop requests from it.
    pub fn run_with(self, handle: &JobHandle) -> Result<JobSummary, JobError> {
        run_job_with(self.graph, handle)
    }
}
