//! Live counters per node and subtask, shared between tasks (writers) and the coordinator and the web
//! server (readers).
//!
//! Tasks add per batch, not per record, with relaxed atomics: the figures are for people and tests, and
//! cost nothing measurable on the hot path. Everything is a monotonic counter or a last value; rates and
//! time shares are derived by the reader from two [`MetricsSnapshot`]s (see [`SubtaskSnapshot::delta`]).
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The value of a watermark counter before any watermark was seen.
pub const NO_WATERMARK: i64 = i64::MIN;

/// Counters of one subtask of one node.
///
/// Time counters (`busy_ns`, `idle_ns`, `backpressured_ns`) belong to the task running the node's chain;
/// a task may add them to the chain's first node only: readers take the largest value over the nodes of
/// a chain.
#[derive(Debug)]
pub struct NodeMetrics {
    /// Records received.
    pub records_in: AtomicU64,
    /// Records emitted.
    pub records_out: AtomicU64,
    /// Bytes received ([`Batch::size_bytes`](eddy_api::Batch::size_bytes) of the input batches).
    pub bytes_in: AtomicU64,
    /// Bytes emitted ([`Batch::size_bytes`](eddy_api::Batch::size_bytes) of the output batches).
    pub bytes_out: AtomicU64,
    /// Times the task had to wait for room in a full downstream channel.
    pub backpressure_waits: AtomicU64,
    /// Malformed input records skipped (sources configured to skip).
    pub records_skipped: AtomicU64,
    /// Nanoseconds spent processing (source polls, operator and sink calls, delivering output).
    pub busy_ns: AtomicU64,
    /// Nanoseconds spent waiting for input (or for a rate-limited source's next slot).
    pub idle_ns: AtomicU64,
    /// Nanoseconds spent waiting for room downstream (parked output).
    pub backpressured_ns: AtomicU64,
    /// The last watermark received (event time, ms since the epoch); [`NO_WATERMARK`] before the first.
    pub input_watermark: AtomicI64,
    /// The last watermark emitted; [`NO_WATERMARK`] before the first.
    pub output_watermark: AtomicI64,
    /// Records dropped for arriving after the watermark had passed their time.
    pub late_records_dropped: AtomicU64,
    /// Late records sent to a side output instead of being dropped.
    pub late_records_side_output: AtomicU64,
    /// Times this subtask was restarted after a failure.
    pub restarts: AtomicU64,
    /// Sources: units (bytes or records) of the input done, from `Source::progress`.
    pub progress_done: AtomicU64,
    /// Sources: units in total, from `Source::progress`; 0 when unknown.
    pub progress_total: AtomicU64,
}

impl Default for NodeMetrics {
    fn default() -> Self {
        NodeMetrics {
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            backpressure_waits: AtomicU64::new(0),
            records_skipped: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            idle_ns: AtomicU64::new(0),
            backpressured_ns: AtomicU64::new(0),
            input_watermark: AtomicI64::new(NO_WATERMARK),
            output_watermark: AtomicI64::new(NO_WATERMARK),
            late_records_dropped: AtomicU64::new(0),
            late_records_side_output: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            progress_done: AtomicU64::new(0),
            progress_total: AtomicU64::new(0),
        }
    }
}

impl NodeMetrics {
    /// Adds to a counter.
    #[inline]
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds a duration (in nanoseconds, saturating) to a time counter.
    #[inline]
    pub fn add_time(counter: &AtomicU64, d: Duration) {
        counter.fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Sets a last-value gauge (source progress).
    #[inline]
    pub fn set(gauge: &AtomicU64, v: u64) {
        gauge.store(v, Ordering::Relaxed);
    }

    /// Records a watermark (input or output).
    #[inline]
    pub fn set_watermark(gauge: &AtomicI64, wm: i64) {
        gauge.store(wm, Ordering::Relaxed);
    }

    /// A copy of every counter of this subtask.
    pub fn snapshot(&self, subtask: usize) -> SubtaskSnapshot {
        let ld = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let wm = |c: &AtomicI64| Some(c.load(Ordering::Relaxed)).filter(|&w| w != NO_WATERMARK);
        SubtaskSnapshot {
            subtask,
            records_in: ld(&self.records_in),
            records_out: ld(&self.records_out),
            bytes_in: ld(&self.bytes_in),
            bytes_out: ld(&self.bytes_out),
            backpressure_waits: ld(&self.backpressure_waits),
            records_skipped: ld(&self.records_skipped),
            busy_ns: ld(&self.busy_ns),
            idle_ns: ld(&self.idle_ns),
            backpressured_ns: ld(&self.backpressured_ns),
            input_watermark: wm(&self.input_watermark),
            output_watermark: wm(&self.output_watermark),
            late_records_dropped: ld(&self.late_records_dropped),
            late_records_side_output: ld(&self.late_records_side_output),
            restarts: ld(&self.restarts),
            progress_done: ld(&self.progress_done),
            progress_total: Some(ld(&self.progress_total)).filter(|&t| t > 0),
        }
    }
}

/// A copy of the counters of one subtask of one node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubtaskSnapshot {
    /// Subtask index.
    pub subtask: usize,
    /// Records received.
    pub records_in: u64,
    /// Records emitted.
    pub records_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes emitted.
    pub bytes_out: u64,
    /// Waits for downstream room.
    pub backpressure_waits: u64,
    /// Malformed records skipped.
    pub records_skipped: u64,
    /// Nanoseconds busy.
    pub busy_ns: u64,
    /// Nanoseconds idle.
    pub idle_ns: u64,
    /// Nanoseconds backpressured.
    pub backpressured_ns: u64,
    /// Last input watermark, if any.
    pub input_watermark: Option<i64>,
    /// Last output watermark, if any.
    pub output_watermark: Option<i64>,
    /// Late records dropped.
    pub late_records_dropped: u64,
    /// Late records sent to a side output.
    pub late_records_side_output: u64,
    /// Restarts of this subtask.
    pub restarts: u64,
    /// Source progress done.
    pub progress_done: u64,
    /// Source progress total, when known.
    pub progress_total: Option<u64>,
}

impl SubtaskSnapshot {
    /// Counter increases from `earlier` to `self` (saturating, so a restarted counter reads as zero).
    pub fn delta(&self, earlier: &SubtaskSnapshot) -> SubtaskSnapshot {
        SubtaskSnapshot {
            subtask: self.subtask,
            records_in: self.records_in.saturating_sub(earlier.records_in),
            records_out: self.records_out.saturating_sub(earlier.records_out),
            bytes_in: self.bytes_in.saturating_sub(earlier.bytes_in),
            bytes_out: self.bytes_out.saturating_sub(earlier.bytes_out),
            backpressure_waits: self.backpressure_waits.saturating_sub(earlier.backpressure_waits),
            records_skipped: self.records_skipped.saturating_sub(earlier.records_skipped),
            busy_ns: self.busy_ns.saturating_sub(earlier.busy_ns),
            idle_ns: self.idle_ns.saturating_sub(earlier.idle_ns),
            backpressured_ns: self.backpressured_ns.saturating_sub(earlier.backpressured_ns),
            input_watermark: self.input_watermark,
            output_watermark: self.output_watermark,
            late_records_dropped: self.late_records_dropped.saturating_sub(earlier.late_records_dropped),
            late_records_side_output: self.late_records_side_output.saturating_sub(earlier.late_records_side_output),
            restarts: self.restarts.saturating_sub(earlier.restarts),
            progress_done: self.progress_done.saturating_sub(earlier.progress_done),
            progress_total: self.progress_total,
        }
    }

    /// Adds the counters of `other` (for node totals); watermarks take the minimum, and are unknown
    /// when either side's is.
    fn accumulate(&mut self, other: &SubtaskSnapshot) {
        self.records_in += other.records_in;
        self.records_out += other.records_out;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.backpressure_waits += other.backpressure_waits;
        self.records_skipped += other.records_skipped;
        self.busy_ns += other.busy_ns;
        self.idle_ns += other.idle_ns;
        self.backpressured_ns += other.backpressured_ns;
        self.late_records_dropped += other.late_records_dropped;
        self.late_records_side_output += other.late_records_side_output;
        self.restarts += other.restarts;
        self.progress_done += other.progress_done;
        self.progress_total = match (self.progress_total, other.progress_total) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        self.input_watermark = min_known(self.input_watermark, other.input_watermark);
        self.output_watermark = min_known(self.output_watermark, other.output_watermark);
    }
}

fn min_known(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    Some(a?.min(b?))
}

/// A copy of the counters of every subtask of one node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeSnapshot {
    /// Node name.
    pub node: String,
    /// One entry per subtask, in subtask order.
    pub subtasks: Vec<SubtaskSnapshot>,
}

impl NodeSnapshot {
    /// The sum over subtasks (watermarks: the minimum, known only when every subtask has one; progress
    /// total: known only when every subtask knows it).
    pub fn total(&self) -> SubtaskSnapshot {
        let mut it = self.subtasks.iter();
        let Some(first) = it.next() else { return SubtaskSnapshot::default() };
        let mut t = first.clone();
        for s in it {
            t.accumulate(s);
        }
        t.subtask = 0;
        t
    }
}

/// A copy of every counter of a job, nodes in plan order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Per node, in plan order.
    pub nodes: Vec<NodeSnapshot>,
}

impl MetricsSnapshot {
    /// The snapshot of one node.
    pub fn node(&self, name: &str) -> Option<&NodeSnapshot> {
        self.nodes.iter().find(|n| n.node == name)
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

    /// Node names in plan order.
    pub fn node_names(&self) -> &[Arc<str>] {
        &self.order
    }

    /// Per-node totals in plan order.
    pub fn totals(&self) -> Vec<NodeTotals> {
        self.snapshot()
            .nodes
            .iter()
            .map(|n| {
                let t = n.total();
                NodeTotals {
                    node: n.node.clone(),
                    records_in: t.records_in,
                    records_out: t.records_out,
                    backpressure_waits: t.backpressure_waits,
                    records_skipped: t.records_skipped,
                }
            })
            .collect()
    }

    /// A copy of every counter, nodes in plan order. Each counter is read atomically, the whole is not:
    /// a snapshot taken while the job runs may be a few batches apart between nodes.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            nodes: self
                .order
                .iter()
                .map(|name| NodeSnapshot {
                    node: name.to_string(),
                    subtasks: self
                        .nodes
                        .get(name)
                        .into_iter()
                        .flatten()
                        .enumerate()
                        .map(|(i, m)| m.snapshot(i))
                        .collect(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_sum_subtasks_and_take_the_lowest_watermark() {
        let m = JobMetrics::new(&[("a".into(), 2), ("b".into(), 1)]);
        NodeMetrics::add(&m.get("a", 0).records_out, 5);
        NodeMetrics::add(&m.get("a", 1).records_out, 7);
        NodeMetrics::add_time(&m.get("a", 1).busy_ns, Duration::from_millis(3));
        NodeMetrics::set_watermark(&m.get("a", 0).output_watermark, 100);
        let snap = m.snapshot();
        let a = snap.node("a").expect("node a").total();
        assert_eq!(a.records_out, 12);
        assert_eq!(a.busy_ns, 3_000_000);
        assert_eq!(a.output_watermark, None, "subtask 1 has no watermark yet");
        NodeMetrics::set_watermark(&m.get("a", 1).output_watermark, 90);
        assert_eq!(m.snapshot().node("a").expect("node a").total().output_watermark, Some(90));
        assert_eq!(m.totals()[0].records_out, 12);
        assert_eq!(m.node_names().len(), 2);
    }

    #[test]
    fn deltas_are_counter_increases() {
        let m = NodeMetrics::default();
        let before = m.snapshot(0);
        NodeMetrics::add(&m.records_in, 10);
        NodeMetrics::set(&m.progress_total, 50);
        let d = m.snapshot(0).delta(&before);
        assert_eq!(d.records_in, 10);
        assert_eq!(d.progress_total, Some(50));
        assert_eq!(before.delta(&m.snapshot(0)).records_in, 0, "saturates");
    }
}
