//! Metric snapshots taken at a fixed interval, the rates and time shares derived from successive
//! snapshots (the counters themselves only ever grow), and a ring buffer of node rates for the chart.
use eddy_actors::coordinator::GraphInfo;
use eddy_actors::metrics::{MetricsSnapshot, SubtaskSnapshot};
use std::collections::VecDeque;
use std::time::Instant;

/// One snapshot and when it was taken.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Monotonic time, for rates.
    pub at: Instant,
    /// Wall-clock time in ms since the epoch, for charts.
    pub time_ms: u64,
    /// The counters.
    pub metrics: MetricsSnapshot,
}

/// Node rates at one point in time, for the throughput chart.
#[derive(Clone, Debug)]
pub struct Point {
    /// When the later of the two samples was taken, ms since the epoch.
    pub time_ms: u64,
    /// Per node (in the order of [`History::node_names`]), rates between the two samples.
    pub nodes: Vec<Rates>,
}

/// The two most recent samples (for exact per-subtask rates) and the node rates between every pair of
/// successive samples over the last `capacity` intervals. Only node-level rates are kept for the chart,
/// so memory is `capacity * nodes` rates whatever the parallelism.
#[derive(Debug)]
pub struct History {
    last: VecDeque<Sample>,
    points: VecDeque<Point>,
    names: Vec<String>,
    capacity: usize,
}

/// Per-second rates and time shares of one subtask (or one node, summed or averaged over subtasks)
/// between two samples.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    /// Records received per second.
    pub records_in: f64,
    /// Records emitted per second.
    pub records_out: f64,
    /// Bytes received per second.
    pub bytes_in: f64,
    /// Bytes emitted per second.
    pub bytes_out: f64,
    /// Waits for downstream room per second.
    pub backpressure_waits: f64,
    /// Share of the interval the task was busy (0..=1).
    pub busy: f64,
    /// Share of the interval the task was idle (0..=1).
    pub idle: f64,
    /// Share of the interval the task was backpressured (0..=1).
    pub backpressured: f64,
}

impl History {
    /// An empty history keeping at most `capacity` points (at least 1).
    pub fn new(capacity: usize) -> Self {
        History {
            last: VecDeque::with_capacity(2),
            points: VecDeque::new(),
            names: Vec::new(),
            capacity: capacity.max(1),
        }
    }

    /// Adds a sample; with the previous one it makes a point, dropping the oldest point when full.
    pub fn push(&mut self, graph: &GraphInfo, sample: Sample) {
        if let Some(prev) = self.last.back() {
            let per_node = rates(graph, prev, &sample);
            if self.names.is_empty() {
                self.names = per_node.iter().map(|(n, _)| n.clone()).collect();
            }
            let nodes = self
                .names
                .iter()
                .map(|name| {
                    per_node.iter().find(|(n, _)| n == name).map_or_else(Rates::default, |(_, r)| node_rates(r))
                })
                .collect();
            if self.points.len() == self.capacity {
                self.points.pop_front();
            }
            self.points.push_back(Point { time_ms: sample.time_ms, nodes });
        }
        if self.last.len() == 2 {
            self.last.pop_front();
        }
        self.last.push_back(sample);
    }

    /// The points, oldest first.
    pub fn points(&self) -> impl ExactSizeIterator<Item = &Point> + '_ {
        self.points.iter()
    }

    /// Node names, in the order of [`Point::nodes`].
    pub fn node_names(&self) -> &[String] {
        &self.names
    }

    /// The two most recent samples, older first.
    pub fn last_two(&self) -> Option<(&Sample, &Sample)> {
        match (self.last.front(), self.last.back()) {
            (Some(a), Some(b)) if self.last.len() == 2 => Some((a, b)),
            _ => None,
        }
    }
}

/// Rates of every subtask of every node between `a` and `b` (same job, `a` older), nodes and subtasks in
/// the order of `b`. Time shares are the task's: the largest over the nodes chained in one vertex, since
/// a task may book its time on the chain's first node only.
pub fn rates(graph: &GraphInfo, a: &Sample, b: &Sample) -> Vec<(String, Vec<Rates>)> {
    let secs = b.at.saturating_duration_since(a.at).as_secs_f64();
    let deltas: Vec<(String, Vec<SubtaskSnapshot>)> = b
        .metrics
        .nodes
        .iter()
        .map(|nb| {
            let old = a.metrics.node(&nb.node);
            let d = nb
                .subtasks
                .iter()
                .map(|sb| match old.and_then(|o| o.subtasks.get(sb.subtask)) {
                    Some(sa) => sb.delta(sa),
                    None => sb.delta(&SubtaskSnapshot::default()),
                })
                .collect();
            (nb.node.clone(), d)
        })
        .collect();
    let task_time = |node: &str, subtask: usize| -> (u64, u64, u64) {
        let chain: Vec<&str> = match graph.vertex_of(node) {
            Some(v) => v.nodes.iter().map(String::as_str).collect(),
            None => vec![node],
        };
        let mut t = (0, 0, 0);
        for (name, subtasks) in &deltas {
            if chain.contains(&name.as_str()) {
                if let Some(d) = subtasks.get(subtask) {
                    t = (t.0.max(d.busy_ns), t.1.max(d.idle_ns), t.2.max(d.backpressured_ns));
                }
            }
        }
        t
    };
    deltas
        .iter()
        .map(|(node, subtasks)| {
            let r = subtasks
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let per_s = |v: u64| if secs > 0.0 { v as f64 / secs } else { 0.0 };
                    let share = |ns: u64| if secs > 0.0 { (ns as f64 / 1e9 / secs).clamp(0.0, 1.0) } else { 0.0 };
                    let (busy, idle, bp) = task_time(node, i);
                    Rates {
                        records_in: per_s(d.records_in),
                        records_out: per_s(d.records_out),
                        bytes_in: per_s(d.bytes_in),
                        bytes_out: per_s(d.bytes_out),
                        backpressure_waits: per_s(d.backpressure_waits),
                        busy: share(busy),
                        idle: share(idle),
                        backpressured: share(bp),
                    }
                })
                .collect();
            (node.clone(), r)
        })
        .collect()
}

/// A node's rates from its subtasks': per-second figures add up, time shares average, except the
/// backpressured share, which takes the worst subtask (as Flink does: one stuck subtask stalls the node).
pub fn node_rates(subtasks: &[Rates]) -> Rates {
    let n = subtasks.len().max(1) as f64;
    let mut t = Rates::default();
    for r in subtasks {
        t.records_in += r.records_in;
        t.records_out += r.records_out;
        t.bytes_in += r.bytes_in;
        t.bytes_out += r.bytes_out;
        t.backpressure_waits += r.backpressure_waits;
        t.busy += r.busy / n;
        t.idle += r.idle / n;
        t.backpressured = t.backpressured.max(r.backpressured);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_actors::coordinator::VertexInfo;
    use eddy_actors::metrics::NodeSnapshot;
    use std::time::Duration;

    fn sample(at: Instant, out: u64, busy_head: u64) -> Sample {
        let sub = |records_out, busy_ns| SubtaskSnapshot { records_out, busy_ns, ..Default::default() };
        Sample {
            at,
            time_ms: 0,
            metrics: MetricsSnapshot {
                nodes: vec![
                    NodeSnapshot { node: "src".into(), subtasks: vec![sub(out, busy_head)] },
                    NodeSnapshot { node: "map".into(), subtasks: vec![sub(out, 0)] },
                ],
            },
        }
    }

    #[test]
    fn rates_are_per_second_and_chained_nodes_share_their_task_time() {
        let graph = GraphInfo {
            vertices: vec![VertexInfo {
                id: 0,
                name: "src -> map".into(),
                nodes: vec!["src".into(), "map".into()],
                parallelism: 1,
                bounded: Some(true),
            }],
            edges: vec![],
            max_parallelism: 128,
            batch_size: 1024,
            buffer_timeout: Duration::ZERO,
            channel_capacity: 4,
            threads: 1,
        };
        let t0 = Instant::now();
        let a = sample(t0, 100, 0);
        let b = sample(t0 + Duration::from_secs(2), 300, 500_000_000);
        let r = rates(&graph, &a, &b);
        assert_eq!(r[0].1[0].records_out, 100.0);
        assert_eq!(r[0].1[0].busy, 0.25);
        assert_eq!(r[1].1[0].busy, 0.25, "map runs in the same task as src");
        let mut h = History::new(2);
        h.push(&graph, a.clone());
        assert!(h.last_two().is_none() && h.points().len() == 0);
        h.push(&graph, b.clone());
        let c = Sample { at: b.at + Duration::from_secs(1), ..b.clone() };
        h.push(&graph, c.clone());
        h.push(&graph, Sample { at: c.at + Duration::from_secs(1), ..b.clone() });
        assert_eq!(h.points().len(), 2, "capacity");
        assert_eq!(h.node_names(), ["src", "map"]);
        let first = h.points().next().expect("a point");
        assert_eq!(first.nodes[0].records_out, 0.0, "b -> c: no new records");
        assert_eq!(h.last_two().map(|(x, y)| (x.at, y.at)), Some((c.at, c.at + Duration::from_secs(1))));
        let node = node_rates(&[r[0].1[0], Rates { backpressured: 0.5, ..Default::default() }]);
        assert_eq!(node.records_out, 100.0);
        assert_eq!(node.busy, 0.125);
        assert_eq!(node.backpressured, 0.5);
    }
}
