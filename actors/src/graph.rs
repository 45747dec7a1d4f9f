//! The physical job graph: chains of operators (vertices) with a parallelism, connected by edges with a
//! partitioning. Built by the planner, deployed by the coordinator.
use eddy_api::{KeySelector, OperatorBuilder, SinkBuilder, SourceBuilder};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// How records of an edge are distributed over the downstream subtasks.
#[derive(Clone)]
pub enum Partitioning {
    /// Subtask i sends to subtask i (same parallelism on both sides).
    Forward,
    /// Whole batches round robin over every downstream subtask.
    Rebalance,
    /// By key group of the key hash.
    Hash(Arc<dyn KeySelector>),
    /// Every record to every downstream subtask.
    Broadcast,
}

impl fmt::Debug for Partitioning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Partitioning {
    /// A short name for plans and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Partitioning::Forward => "forward",
            Partitioning::Rebalance => "rebalance",
            Partitioning::Hash(_) => "hash",
            Partitioning::Broadcast => "broadcast",
        }
    }
}

/// How a task derives watermarks from the event-time field of its records (a source's `event_time`, or
/// the head operator's [`OperatorBuilder::watermarks`](eddy_api::OperatorBuilder::watermarks)).
pub type EventTimeSpec = eddy_api::WatermarkStrategy;

/// What starts a chain.
#[derive(Clone)]
pub enum Head {
    /// A source node.
    Source {
        /// Node name.
        name: Arc<str>,
        /// The planned source.
        builder: Arc<dyn SourceBuilder>,
        /// Watermark generation, when the source declares `event_time`.
        event_time: Option<EventTimeSpec>,
    },
    /// Input channels from upstream vertices.
    Input,
}

/// An operator inside a chain.
#[derive(Clone)]
pub struct ChainedOperator {
    /// Node name.
    pub name: Arc<str>,
    /// The planned operator.
    pub builder: Arc<dyn OperatorBuilder>,
}

/// A sink ending a chain.
#[derive(Clone)]
pub struct ChainedSink {
    /// Node name.
    pub name: Arc<str>,
    /// The planned sink.
    pub builder: Arc<dyn SinkBuilder>,
}

/// A chain of nodes run by one task per subtask.
#[derive(Clone)]
pub struct Vertex {
    /// Position in [`JobGraph::vertices`].
    pub id: usize,
    /// Parallelism of every node in the chain.
    pub parallelism: usize,
    /// Source or input channels.
    pub head: Head,
    /// Operators applied in order.
    pub operators: Vec<ChainedOperator>,
    /// Sink at the end, if any.
    pub sink: Option<ChainedSink>,
}

impl Vertex {
    /// Names of the nodes in the chain, in order.
    pub fn node_names(&self) -> Vec<Arc<str>> {
        let mut names = Vec::new();
        if let Head::Source { name, .. } = &self.head {
            names.push(name.clone());
        }
        names.extend(self.operators.iter().map(|o| o.name.clone()));
        names.extend(self.sink.iter().map(|s| s.name.clone()));
        names
    }

    /// Fields per record of the chain's main output (`side: None`) or of a side output of its last node.
    pub fn output_width(&self, side: Option<usize>) -> usize {
        match (side, self.operators.last(), &self.head) {
            (Some(i), Some(o), _) => o.builder.side_outputs().get(i).map_or(0, |(_, s)| s.len()),
            (None, Some(o), _) => o.builder.output_schema().len(),
            (None, None, Head::Source { builder, .. }) => builder.output_schema().len(),
            _ => 0,
        }
    }

    /// A readable name: the chained node names joined by `->`.
    pub fn display_name(&self) -> String {
        self.node_names().iter().map(|n| &**n).collect::<Vec<_>>().join(" -> ")
    }
}

/// A connection from one vertex's output to another's input.
#[derive(Clone, Debug)]
pub struct Edge {
    /// Upstream vertex.
    pub from: usize,
    /// Downstream vertex.
    pub to: usize,
    /// Distribution over the downstream subtasks.
    pub partitioning: Partitioning,
    /// `None` for the main output of the upstream chain, `Some(i)` for side output `i` of its last node.
    pub side: Option<usize>,
    /// Which input of the downstream chain's first node this edge feeds (its position in `inputs:`),
    /// so that two-input operators such as joins can tell their inputs apart.
    pub port: usize,
}

/// What a failure restarts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Failover {
    /// Every task of the job.
    #[default]
    Full,
    /// Only the pipelined region of the failed task (its connected component of the physical graph).
    Region,
}

/// How the coordinator supervises the tasks of a job.
#[derive(Clone)]
pub struct Supervision {
    /// Whether and when to restart after a failure.
    pub restart: crate::restart::RestartStrategy,
    /// What to restart.
    pub failover: Failover,
    /// A worker thread that does not answer a heartbeat for this long is declared stuck and its tasks
    /// failed.
    pub heartbeat_timeout: Duration,
    /// Injected faults (chaos runs only).
    pub faults: Option<Arc<dyn crate::faults::FaultInjector>>,
}

impl Default for Supervision {
    fn default() -> Self {
        Supervision {
            restart: crate::restart::RestartStrategy::None,
            failover: Failover::Full,
            heartbeat_timeout: Duration::from_secs(30),
            faults: None,
        }
    }
}

impl fmt::Debug for Supervision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervision")
            .field("restart", &self.restart)
            .field("failover", &self.failover)
            .field("heartbeat_timeout", &self.heartbeat_timeout)
            .field("faults", &self.faults.is_some())
            .finish()
    }
}

/// Everything the coordinator needs to run a job.
#[derive(Clone)]
pub struct JobGraph {
    /// Job name.
    pub job: Arc<str>,
    /// Number of key groups.
    pub max_parallelism: usize,
    /// Records per batch before a partly filled batch is sent.
    pub batch_size: usize,
    /// Longest time a partly filled batch waits before it is sent (zero: send after every input).
    pub buffer_timeout: Duration,
    /// Batches in flight per channel (the backpressure bound).
    pub channel_capacity: usize,
    /// Number of arbiters (threads) tasks are spread over.
    pub threads: usize,
    /// Checkpointing, if the job checkpoints.
    pub checkpoints: Option<crate::checkpoint::CheckpointConfig>,
    /// The id of the first checkpoint (above every id already in the store).
    pub first_checkpoint_id: u64,
    /// Periodic checkpoints that earlier runs left in the store (id, complete), by id: the complete ones
    /// count toward `retain`, so retention deletes them oldest first as this run completes newer ones; the
    /// incomplete ones (a run killed while taking them) can never be restored and are deleted when this
    /// run completes its first.
    pub earlier_checkpoints: Vec<(u64, bool)>,
    /// The checkpoint to restore from.
    pub restore: Option<Arc<crate::checkpoint::RestoredCheckpoint>>,
    /// Where keyed state lives (heap or redb).
    pub state_backend: Arc<dyn eddy_api::state::StateBackend>,
    /// Supervision: restart strategy, failover scope, heartbeat and (for chaos runs) fault injection.
    pub supervision: Supervision,
    /// The chains.
    pub vertices: Vec<Vertex>,
    /// Their connections.
    pub edges: Vec<Edge>,
}

impl JobGraph {
    /// Edges leaving a vertex, in order.
    pub fn outputs_of(&self, vertex: usize) -> impl Iterator<Item = (usize, &Edge)> {
        self.edges.iter().enumerate().filter(move |(_, e)| e.from == vertex)
    }

    /// Edges entering a vertex, in order.
    pub fn inputs_of(&self, vertex: usize) -> impl Iterator<Item = (usize, &Edge)> {
        self.edges.iter().enumerate().filter(move |(_, e)| e.to == vertex)
    }

    /// Every node name with its parallelism, in vertex order.
    pub fn nodes(&self) -> Vec<(Arc<str>, usize)> {
        self.vertices.iter().flat_map(|v| v.node_names().into_iter().map(move |n| (n, v.parallelism))).collect()
    }
}
