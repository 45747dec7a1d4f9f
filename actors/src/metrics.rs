//! Live counters per node and subtask, shared between tasks (writers) and the coordinator (reader).
//!
//! Tasks add per batch, not per record, with relaxed atomics: the figures are for people and tests, and
//! cost nothing measurable on the hot path.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counters of one subtask of one node.
#[derive(Debug, Default)]
pub struct NodeMetrics {
    /// Records received.
    pub records_in: AtomicU64,
    /// Records emitted.
    pub records_out: AtomicU64,
    /// Times the task had to wait for room in a full downstream channel.
    pub backpressure_waits: AtomicU64,
    /// Malformed input records skipped (sources configured to skip).
    pub records_skipped: AtomicU64,
}

impl NodeMetrics {
    /// Adds to a counter.
    #[inline]
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// All counters of a job, by node name then subtask.
#[derive(Debug, Default)]
pub struct JobMetrics {
    nodes: BTreeMap<Arc<str>, Vec<Arc<NodeMetrics>>>,
    order: Vec<Arc<str>>,
}

/// Totals of one node over its subtasks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeTotals {
    /// Node name.
    pub node: String,
    /// Records received.
    pub records_in: u64,
    /// Records emitted.
    pub records_out: u64,
    /// Waits for downstream room.
    pub backpressure_waits: u64,
    /// Malformed records skipped.
    pub records_skipped: u64,
}

impl JobMetrics {
    /// Counters for every (node, parallelism) pair, in plan order.
    pub fn new(nodes: &[(Arc<str>, usize)]) -> Self {
        let mut m = JobMetrics::default();
        for (name, p) in nodes {
            m.order.push(name.clone());
            m.nodes.insert(name.clone(), (0..*p).map(|_| Arc::new(NodeMetrics::default())).collect());
        }
        m
    }

    /// The counters of one subtask.
    pub fn get(&self, node: &str, subtask: usize) -> Arc<NodeMetrics> {
        self.nodes.get(node).and_then(|v| v.get(subtask)).cloned().unwrap_or_default()
    }

    /// Per-node totals in plan order.
    pub fn totals(&self) -> Vec<NodeTotals> {
        self.order
            .iter()
            .map(|name| {
                let mut t = NodeTotals { node: name.to_string(), ..Default::default() };
                for m in self.nodes.get(name).into_iter().flatten() {
                    t.records_in += m.records_in.load(Ordering::Relaxed);
                    t.records_out += m.records_out.load(Ordering::Relaxed);
                    t.backpressure_waits += m.backpressure_waits.load(Ordering::Relaxed);
                    t.records_skipped += m.records_skipped.load(Ordering::Relaxed);
                }
                t
            })
            .collect()
    }
}
