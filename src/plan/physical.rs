//! The physical plan: routing nodes folded into edge partitionings, forward edges chained.
use super::logical::{InputRef, LogicalPlan, Planned};
use crate::config::Partition;
use eddy_actors::graph::{ChainedOperator, ChainedSink};
use eddy_actors::{Edge, Head, JobGraph, Partitioning, Vertex};
use eddy_api::operator::InputPartitioning;
use std::time::Duration;

/// Runtime settings that are not part of the topology.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Number of key groups.
    pub max_parallelism: usize,
    /// Records per batch.
    pub batch_size: usize,
    /// Flush interval for partly filled batches.
    pub buffer_timeout: Duration,
    /// Batches in flight per channel.
    pub channel_capacity: usize,
    /// Arbiter threads.
    pub threads: usize,
}

/// One resolved input of a node that runs: the upstream node that runs, which of its outputs, and the
/// partitioning.
struct PhysicalInput {
    from: usize,
    side: Option<usize>,
    partitioning: InputPartitioning,
    /// The consumer's logical input this comes through (routing nodes in between keep it).
    port: usize,
}

/// Follows routing nodes upstream; the partitioning closest to the consumer wins.
fn resolve(plan: &LogicalPlan, input: InputRef, wanted: InputPartitioning, port: usize, out: &mut Vec<PhysicalInput>) {
    let node = &plan.nodes[input.node];
    match &node.planned {
        Planned::Operator(b) if b.passthrough() => {
            let p = match wanted {
                InputPartitioning::Any => b.input_partitioning(),
                other => other,
            };
            for &u in &node.inputs {
                resolve(plan, u, p.clone(), port, out);
            }
        }
        _ => out.push(PhysicalInput { from: input.node, side: input.side, partitioning: wanted, port }),
    }
}

/// Builds the runtime graph.
pub fn build(plan: &LogicalPlan, settings: &Settings) -> JobGraph {
    let n = plan.nodes.len();
    let inputs: Vec<Vec<PhysicalInput>> = plan
        .nodes
        .iter()
        .map(|node| {
            let wanted = |port: usize| match (&node.planned, node.partition) {
                (Planned::Operator(b), _) if !matches!(b.input_partitioning_for(port), InputPartitioning::Any) => {
                    b.input_partitioning_for(port)
                }
                (_, Some(Partition::Rebalance)) => InputPartitioning::Rebalance,
                (_, Some(Partition::Broadcast)) => InputPartitioning::Broadcast,
                (Planned::Operator(b), _) => b.input_partitioning_for(port),
                _ => InputPartitioning::Any,
            };
            let mut out = Vec::new();
            if !node.is_passthrough() {
                for (port, &u) in node.inputs.iter().enumerate() {
                    resolve(plan, u, wanted(port), port, &mut out);
                }
            }
            out
        })
        .collect();
    let mut consumers = vec![0usize; n];
    for ins in &inputs {
        for i in ins {
            consumers[i.from] += 1;
        }
    }

    let mut vertices: Vec<Vertex> = Vec::new();
    let mut edges: Vec<Edge> = Vec::new();
    let mut vertex_of: Vec<Option<usize>> = vec![None; n];
    for (i, node) in plan.nodes.iter().enumerate() {
        if node.is_passthrough() {
            continue;
        }
        let partitionings: Vec<Partitioning> = inputs[i]
            .iter()
            .map(|inp| match &inp.partitioning {
                InputPartitioning::Hash(k) => Partitioning::Hash(k.clone()),
                InputPartitioning::Broadcast => Partitioning::Broadcast,
                InputPartitioning::Rebalance => Partitioning::Rebalance,
                InputPartitioning::Any if plan.nodes[inp.from].parallelism == node.parallelism => Partitioning::Forward,
                InputPartitioning::Any => Partitioning::Rebalance,
            })
            .collect();
        // An operator that assigns watermarks heads its own chain: its task replaces the watermarks from
        // upstream with ones generated from the records it receives.
        let assigns_watermarks = matches!(&node.planned, Planned::Operator(b) if b.watermarks().is_some());
        let chain_to = match (&inputs[i][..], &partitionings[..]) {
            ([only], [Partitioning::Forward])
                if only.side.is_none() && consumers[only.from] == 1 && !assigns_watermarks =>
            {
                vertex_of[only.from]
            }
            _ => None,
        };
        let v = match chain_to {
            Some(v) => v,
            None => {
                let id = vertices.len();
                let head = match &node.planned {
                    Planned::Source(b) => Head::Source {
                        name: node.name.clone(),
                        builder: b.clone(),
                        event_time: node.event_time.clone(),
                    },
                    _ => Head::Input,
                };
                vertices.push(Vertex { id, parallelism: node.parallelism, head, operators: Vec::new(), sink: None });
                for (inp, p) in inputs[i].iter().zip(partitionings) {
                    if let Some(from) = vertex_of[inp.from] {
                        edges.push(Edge { from, to: id, partitioning: p, side: inp.side, port: inp.port });
                    }
                }
                id
            }
        };
        match &node.planned {
            Planned::Operator(b) => {
                vertices[v].operators.push(ChainedOperator { name: node.name.clone(), builder: b.clone() })
            }
            Planned::Sink(b) => vertices[v].sink = Some(ChainedSink { name: node.name.clone(), builder: b.clone() }),
            Planned::Source(_) => {}
        }
        vertex_of[i] = Some(v);
    }
    JobGraph {
        job: plan.job.clone(),
        max_parallelism: settings.max_parallelism,
        batch_size: settings.batch_size,
        buffer_timeout: settings.buffer_timeout,
        channel_capacity: settings.channel_capacity,
        threads: settings.threads,
        checkpoints: None,
        first_checkpoint_id: 1,
        earlier_checkpoints: Vec::new(),
        restore: None,
        state_backend: std::sync::Arc::new(eddy_api::state::HeapBackend),
        supervision: Default::default(),
        vertices,
        edges,
    }
}
