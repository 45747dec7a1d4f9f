//! The coordinator actor (Flink's JobManager): deploys the task actors of a [`JobGraph`], tracks
//! their lifecycle, and ends the job when every task has finished or one has failed.
use crate::graph::{Head, JobGraph, Partitioning};
use crate::metrics::{JobMetrics, NodeTotals};
use crate::output::OutputWriter;
use crate::task::{Cancel, TaskActor, TaskEvent, TaskId, TaskSetup};
use actix::prelude::*;
use actix_rt::{Arbiter, ArbiterHandle};
use eddy_api::StreamElement;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{channel, Receiver, Sender};
use tokio::sync::oneshot;
use tracing::{info, info_span};

/// How a finished job went.
#[derive(Clone, Debug)]
pub struct JobSummary {
    /// Job name.
    pub job: String,
    /// Time from deployment to the last task finishing.
    pub wall: Duration,
    /// Per-node totals in plan order.
    pub nodes: Vec<NodeTotals>,
}

impl fmt::Display for JobSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job `{}` finished in {:.3}s:", self.job, self.wall.as_secs_f64())?;
        for (i, n) in self.nodes.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            write!(f, "{sep}{} {}->{}", n.node, n.records_in, n.records_out)?;
            if n.records_skipped > 0 {
                write!(f, " ({} skipped)", n.records_skipped)?;
            }
            if n.backpressure_waits > 0 {
                write!(f, " (throttled {}x)", n.backpressure_waits)?;
            }
        }
        Ok(())
    }
}

/// Why a job failed.
#[derive(Clone, Debug, thiserror::Error)]
#[error("job `{job}` failed: node `{node}` subtask {subtask}: {message}")]
pub struct JobError {
    /// Job name.
    pub job: String,
    /// The failing node.
    pub node: String,
    /// Its subtask.
    pub subtask: usize,
    /// The error.
    pub message: String,
}

/// Deploys and supervises one job.
pub struct Coordinator {
    graph: JobGraph,
    metrics: Arc<JobMetrics>,
    arbiters: Vec<ArbiterHandle>,
    tasks: Vec<Addr<TaskActor>>,
    running: usize,
    started: Instant,
    done: Option<oneshot::Sender<Result<JobSummary, JobError>>>,
}

impl Coordinator {
    fn new(
        graph: JobGraph,
        metrics: Arc<JobMetrics>,
        arbiters: Vec<ArbiterHandle>,
        done: oneshot::Sender<Result<JobSummary, JobError>>,
    ) -> Self {
        Coordinator {
            graph,
            metrics,
            arbiters,
            tasks: Vec::new(),
            running: 0,
            started: Instant::now(),
            done: Some(done),
        }
    }

    /// Creates the bounded channels and starts one task actor per subtask, spread over the arbiters.
    fn deploy(&mut self, me: Recipient<TaskEvent>) {
        let g = &self.graph;
        type Senders = Vec<Vec<Sender<StreamElement>>>; // per output edge, per target
        let mut outs: Vec<Vec<Senders>> =
            g.vertices.iter().map(|v| (0..v.parallelism).map(|_| Vec::new()).collect()).collect();
        let mut ins: Vec<Vec<Vec<Receiver<StreamElement>>>> =
            g.vertices.iter().map(|v| (0..v.parallelism).map(|_| Vec::new()).collect()).collect();
        for e in &g.edges {
            let (pa, pb) = (g.vertices[e.from].parallelism, g.vertices[e.to].parallelism);
            for (i, out) in outs[e.from].iter_mut().enumerate() {
                let mut senders = Vec::new();
                let targets = if matches!(e.partitioning, Partitioning::Forward) { i..i + 1 } else { 0..pb };
                debug_assert!(!matches!(e.partitioning, Partitioning::Forward) || pa == pb);
                for j in targets {
                    let (tx, rx) = channel(g.channel_capacity.max(1));
                    senders.push(tx);
                    ins[e.to][j].push(rx);
                }
                out.push(senders);
            }
        }
        let mut n = 0;
        for v in &g.vertices {
            let width = match (v.operators.last(), &v.head) {
                (Some(o), _) => o.builder.output_schema().len(),
                (None, Head::Source { builder, .. }) => builder.output_schema().len(),
                (None, Head::Input) => 0,
            };
            let edges: Vec<_> = g.outputs_of(v.id).map(|(_, e)| e.partitioning.clone()).collect();
            for subtask in (0..v.parallelism).rev() {
                let senders = outs[v.id].pop().unwrap_or_default();
                let outputs = edges
                    .iter()
                    .zip(senders)
                    .map(|(p, s)| OutputWriter::new(p.clone(), s, width, g.batch_size, g.max_parallelism))
                    .collect();
                let setup = TaskSetup {
                    id: TaskId { vertex: v.id, subtask },
                    job: g.job.clone(),
                    vertex: v.clone(),
                    max_parallelism: g.max_parallelism,
                    inputs: std::mem::take(&mut ins[v.id][subtask]),
                    outputs,
                    metrics: v.node_names().iter().map(|name| self.metrics.get(name, subtask)).collect(),
                    batch_size: g.batch_size,
                    buffer_timeout: g.buffer_timeout,
                    coordinator: me.clone(),
                };
                // Round robin over all tasks: each thread gets a share of every vertex (sources included).
                let arbiter = &self.arbiters[n % self.arbiters.len()];
                let addr = TaskActor::start_in_arbiter(arbiter, move |_| TaskActor::new(setup));
                self.tasks.push(addr);
                n += 1;
            }
        }
        self.running = n;
        info!(tasks = n, threads = self.arbiters.len(), "job deployed");
    }

    fn complete(&mut self, ctx: &mut Context<Self>, result: Result<JobSummary, JobError>) {
        if let Some(done) = self.done.take() {
            let _ = done.send(result);
        }
        ctx.stop();
    }
}

impl Actor for Coordinator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.started = Instant::now();
        self.deploy(ctx.address().recipient());
        if self.running == 0 {
            let summary = self.summary();
            self.complete(ctx, Ok(summary));
        }
    }
}

impl Coordinator {
    fn summary(&self) -> JobSummary {
        JobSummary { job: self.graph.job.to_string(), wall: self.started.elapsed(), nodes: self.metrics.totals() }
    }
}

impl Handler<TaskEvent> for Coordinator {
    type Result = ();

    fn handle(&mut self, ev: TaskEvent, ctx: &mut Context<Self>) {
        match ev {
            TaskEvent::Finished(_) => {
                self.running = self.running.saturating_sub(1);
                if self.running == 0 {
                    let summary = self.summary();
                    self.complete(ctx, Ok(summary));
                }
            }
            TaskEvent::Failed { task, node, error } => {
                for t in &self.tasks {
                    t.do_send(Cancel);
                }
                let err = JobError { job: self.graph.job.to_string(), node, subtask: task.subtask, message: error };
                self.complete(ctx, Err(err));
            }
        }
    }
}

/// Runs a job to completion on a fresh actix system with `graph.threads` arbiters.
pub fn run_job(graph: JobGraph, metrics: Arc<JobMetrics>) -> Result<JobSummary, JobError> {
    let span = info_span!("job", job = %graph.job);
    let _g = span.enter();
    let threads = graph.threads.max(1);
    let job = graph.job.to_string();
    let sys = actix_rt::System::new();
    let (result, arbiters) = sys.block_on(async move {
        let arbiters: Vec<Arbiter> = (0..threads).map(|_| Arbiter::new()).collect();
        let handles = arbiters.iter().map(Arbiter::handle).collect();
        let (tx, rx) = oneshot::channel();
        Coordinator::new(graph, metrics, handles, tx).start();
        let result = rx.await;
        (result, arbiters)
    });
    for a in arbiters {
        a.stop();
        let _ = a.join();
    }
    result.unwrap_or_else(|_| {
        Err(JobError { job, node: String::new(), subtask: 0, message: "the coordinator stopped unexpectedly".into() })
    })
}
