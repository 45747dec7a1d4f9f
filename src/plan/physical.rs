//! The physical plan: routing nodes folded into edge partitionings, forward edges chained.
use super::logical::{LogicalPlan, Planned};
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

/// One resolved input of a node that runs: the upstream node that runs, and the partitioning.
struct PhysicalInput {
    from: usize,
    partitioning: InputPartitioning,
}

/// Follows routing nodes upstream; the partitioning closest to the consumer wins.
fn resolve(plan: &LogicalPlan, input: usize, wanted: InputPartitioning, out: &mut Vec<PhysicalInput>) {
    let node = &plan.nodes[input];
    match &node.planned {
        Planned::Operator(b) if b.passthrough() => {
            let p = match wanted {
                InputPartitioning::Any => b.input_partitioning(),
                other => other,
            };
            for &u in &node.inputs {
                resolve(plan, u, p.clone(), out);
            }
        }
        _ => out.push(PhysicalInput { from: input, partitioning: wanted }),
    }
}

/// Builds the runtime graph.
pub fn build(plan: &LogicalPlan, settings: &Settings) -> JobGraph {
    let n = plan.nodes.len();
    let inputs: Vec<Vec<PhysicalInput>> = plan
        .nodes
        .iter()
        .map(|node| {
            let wanted = match (&node.planned, node.partition) {
                (Planned::Operator(b), _) if !matches!(b.input_partitioning(), InputPartitioning::Any) => {
                    b.input_partitioning()
                }
                (_, Some(Partition::Rebalance)) => InputPartitioning::Rebalance,
                (_, Some(Partition::Broadcast)) => InputPartitioning::Broadcast,
                (Planned::Operator(b), _) => b.input_partitioning(),
                _ => InputPartitioning::Any,
            };
            let mut out = Vec::new();
            if !node.is_passthrough() {
                for &u in &node.inputs {
                    resolve(plan, u, wanted.clone(), &mut out);
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
        let chain_to = match (&inputs[i][..], &partitionings[..]) {
            ([only], [Partitioning::Forward]) if consumers[only.from] == 1 => vertex_of[only.from],
            _ => None,
        };
        let v = match chain_to {
            Some(v) => v,
            None => {
                let id = vertices.len();
                let head = match &node.planned {
                    Planned::Source(b) => Head::Source { name: node.name.clone(), builder: b.clone() },
                    _ => Head::Input,
                };
                vertices.push(Vertex { id, parallelism: node.parallelism, head, operators: Vec::new(), sink: None });
                for (inp, p) in inputs[i].iter().zip(partitionings) {
                    if let Some(from) = vertex_of[inp.from] {
                        edges.push(Edge { from, to: id, partitioning: p });
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
        vertices,
        edges,
    }
}
