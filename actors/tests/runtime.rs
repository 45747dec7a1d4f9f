//! End-to-end runs of hand-built job graphs: delivery, hash partitioning, failure, backpressure.
use eddy_actors::graph::{ChainedOperator, ChainedSink};
use eddy_actors::{run_job, Edge, Head, JobGraph, JobMetrics, Partitioning, Vertex};
use eddy_api::key::FieldKeys;
use eddy_api::{
    Batch, Context, DataType, Datum, Field, Operator, OperatorBuilder, Result, Schema, SchemaRef, Sink, SinkBuilder,
    Source, SourceBuilder, SourcePoll, TaskInfo,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("v", DataType::Int)]))
}

/// Emits the integers below `n` whose index modulo parallelism is the subtask.
struct Ints {
    n: i64,
}
struct IntsSource {
    next: i64,
    step: i64,
    n: i64,
}
impl SourceBuilder for Ints {
    fn output_schema(&self) -> SchemaRef {
        schema()
    }
    fn bounded(&self) -> bool {
        true
    }
    fn build(&self, t: &TaskInfo) -> Result<Box<dyn Source>> {
        Ok(Box::new(IntsSource { next: t.subtask as i64, step: t.parallelism as i64, n: self.n }))
    }
}
impl Source for IntsSource {
    fn poll(&mut self, out: &mut Batch, max: usize) -> Result<SourcePoll> {
        for _ in 0..max {
            if self.next >= self.n {
                return Ok(SourcePoll::Finished);
            }
            out.push_int(self.next);
            self.next += self.step;
        }
        Ok(SourcePoll::Ready)
    }
}

/// Doubles values; panics on `panic_at`.
struct Double {
    panic_at: Option<i64>,
}
struct DoubleOp(Option<i64>);
impl OperatorBuilder for Double {
    fn output_schema(&self) -> SchemaRef {
        schema()
    }
    fn build(&self, _: &TaskInfo) -> Result<Box<dyn Operator>> {
        Ok(Box::new(DoubleOp(self.panic_at)))
    }
}
impl Operator for DoubleOp {
    fn process_batch(&mut self, input: &Batch, out: &mut Context<'_>) -> Result<()> {
        for row in input.rows() {
            let v = row.int(0).unwrap_or_default();
            assert!(Some(v) != self.0, "boom at {v}");
            out.emit(&[Datum::Int(v * 2)]);
        }
        Ok(())
    }
}

/// Collects values per subtask; optionally slow.
#[derive(Clone, Default)]
struct Collect {
    seen: Arc<Mutex<Vec<(usize, i64)>>>,
    delay: Duration,
    batches: Arc<AtomicU64>,
}
struct CollectSink(Collect, usize);
impl SinkBuilder for Collect {
    fn build(&self, t: &TaskInfo) -> Result<Box<dyn Sink>> {
        Ok(Box::new(CollectSink(self.clone(), t.subtask)))
    }
}
impl Sink for CollectSink {
    fn write_batch(&mut self, b: &Batch) -> Result<()> {
        self.0.batches.fetch_add(1, Ordering::Relaxed);
        if !self.0.delay.is_zero() {
            std::thread::sleep(self.0.delay);
        }
        let mut seen = self.0.seen.lock().map_err(|_| eddy_api::EddyError::internal("poisoned"))?;
        seen.extend(b.rows().map(|r| (self.1, r.int(0).unwrap_or_default())));
        Ok(())
    }
}

fn graph(n: i64, p_src: usize, p_sink: usize, double: Double, sink: Collect, partitioning: Partitioning) -> JobGraph {
    JobGraph {
        job: "test".into(),
        max_parallelism: 128,
        batch_size: 64,
        buffer_timeout: Duration::from_millis(5),
        channel_capacity: 2,
        threads: 2,
        checkpoints: None,
        first_checkpoint_id: 1,
        earlier_checkpoints: Vec::new(),
        restore: None,
        state_backend: std::sync::Arc::new(eddy_api::state::HeapBackend),
        supervision: Default::default(),
        vertices: vec![
            Vertex {
                id: 0,
                parallelism: p_src,
                head: Head::Source { name: "src".into(), builder: Arc::new(Ints { n }), event_time: None },
                operators: vec![ChainedOperator { name: "double".into(), builder: Arc::new(double) }],
                sink: None,
            },
            Vertex {
                id: 1,
                parallelism: p_sink,
                head: Head::Input,
                operators: vec![],
                sink: Some(ChainedSink { name: "sink".into(), builder: Arc::new(sink) }),
            },
        ],
        edges: vec![Edge { from: 0, to: 1, partitioning, side: None, port: 0 }],
    }
}

fn run(g: JobGraph) -> (Result<eddy_actors::JobSummary, eddy_actors::JobError>, Arc<JobMetrics>) {
    let metrics = Arc::new(JobMetrics::new(&g.nodes()));
    (run_job(g, metrics.clone()), metrics)
}

#[test]
fn every_record_arrives_once_and_equal_keys_share_a_subtask() {
    let sink = Collect::default();
    let keys = Partitioning::Hash(Arc::new(FieldKeys(vec![0])));
    let (res, _) = run(graph(10_000, 2, 3, Double { panic_at: None }, sink.clone(), keys));
    let summary = res.expect("job succeeds");
    let seen = sink.seen.lock().unwrap().clone();
    let mut values: Vec<i64> = seen.iter().map(|&(_, v)| v).collect();
    values.sort_unstable();
    assert_eq!(values, (0..10_000).map(|v| v * 2).collect::<Vec<_>>());
    assert!(seen.iter().map(|&(s, _)| s).any(|s| s == 2), "all three sink subtasks get keys");
    let sink_totals = summary.nodes.iter().find(|n| n.node == "sink").unwrap();
    assert_eq!(sink_totals.records_in, 10_000);
}

#[test]
fn a_panicking_operator_fails_the_job_with_its_name() {
    let (res, _) =
        run(graph(10_000, 2, 1, Double { panic_at: Some(4321) }, Collect::default(), Partitioning::Rebalance));
    let err = res.expect_err("job fails");
    assert_eq!(err.node, "double", "the failing operator is named");
    assert!(err.message.contains("panic: boom at 4321"), "{err}");
}

#[test]
fn a_slow_sink_throttles_the_source() {
    let sink = Collect { delay: Duration::from_micros(200), ..Default::default() };
    let (res, metrics) = run(graph(20_000, 1, 1, Double { panic_at: None }, sink.clone(), Partitioning::Rebalance));
    res.expect("job succeeds");
    assert_eq!(sink.seen.lock().unwrap().len(), 20_000);
    let totals = metrics.totals();
    let src = totals.iter().find(|t| t.node == "src").unwrap();
    assert!(src.backpressure_waits > 0, "the source waited for the sink: {src:?}");
}
