//! The task actor: runs one subtask of a chain (source or input gate -> operators -> sink or outputs).
//!
//! Data arrives through the [`InputGate`] attached as an actix stream, or from the source, pumped by
//! self-messages one batch at a time so tasks sharing an arbiter interleave. After each input the task
//! delivers what it produced; if a downstream channel is full, it parks the rest and `ctx.wait`s until
//! it is delivered, taking no input meanwhile: that is the backpressure path. User code runs inside
//! [`guard`] so a panic fails this task, not the arbiter.
use crate::gate::{GateEvent, InputGate};
use crate::graph::{Head, Vertex};
use crate::metrics::NodeMetrics;
use crate::output::{OutputWriter, Parked};
use crate::panic::{guard, Failure};
use actix::prelude::*;
use eddy_api::{Batch, EddyError, Operator, Output, Sink, Source, SourcePoll, StreamElement, TaskInfo};

type Result<T, E = Failure> = std::result::Result<T, E>;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::Receiver;
use tracing::{debug, Span};

/// Identifies a subtask of a vertex.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TaskId {
    /// Vertex index.
    pub vertex: usize,
    /// Subtask index.
    pub subtask: usize,
}

/// What a task tells the coordinator.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub enum TaskEvent {
    /// All input processed and delivered; the task has stopped.
    Finished(TaskId),
    /// The task failed and stopped.
    Failed {
        /// Which task.
        task: TaskId,
        /// The node in the chain that failed.
        node: String,
        /// What happened.
        error: String,
    },
}

/// Asks a task to stop at once (job cancelled or failed elsewhere).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Cancel;

#[derive(Message)]
#[rtype(result = "()")]
struct Pump;

/// Everything a task needs, prepared by the coordinator.
pub struct TaskSetup {
    /// Which task.
    pub id: TaskId,
    /// Job name.
    pub job: Arc<str>,
    /// The chain it runs.
    pub vertex: Vertex,
    /// Number of key groups.
    pub max_parallelism: usize,
    /// Input channels (empty for a source chain).
    pub inputs: Vec<Receiver<StreamElement>>,
    /// One writer per output edge.
    pub outputs: Vec<OutputWriter>,
    /// Counters per node of the chain, in chain order.
    pub metrics: Vec<Arc<NodeMetrics>>,
    /// Records per source poll.
    pub batch_size: usize,
    /// Flush interval for partly filled batches (zero: after every input).
    pub buffer_timeout: Duration,
    /// Where to report.
    pub coordinator: Recipient<TaskEvent>,
}

struct Stage {
    name: Arc<str>,
    op: Box<dyn Operator>,
    buf: Batch,
    metrics: Arc<NodeMetrics>,
}

struct SourceStage {
    name: Arc<str>,
    source: Box<dyn Source>,
    batch: Batch,
    metrics: Arc<NodeMetrics>,
    skipped_reported: u64,
}

struct SinkStage {
    name: Arc<str>,
    sink: Box<dyn Sink>,
    metrics: Arc<NodeMetrics>,
}

/// The actor running one subtask.
pub struct TaskActor {
    id: TaskId,
    setup: Option<TaskSetup>,
    source: Option<SourceStage>,
    stages: Vec<Stage>,
    sink: Option<SinkStage>,
    outputs: Vec<OutputWriter>,
    parked: Parked,
    head_metrics: Arc<NodeMetrics>,
    /// The first node of the chain, blamed for errors that belong to the task as a whole.
    head: Arc<str>,
    coordinator: Option<Recipient<TaskEvent>>,
    batch_size: usize,
    buffer_timeout: Duration,
    ended: bool,
    stopped: bool,
    span: Span,
}

impl TaskActor {
    /// A task that builds its operators when started.
    pub fn new(setup: TaskSetup) -> Self {
        let span = tracing::info_span!("task", job = %setup.job, node = %setup.vertex.display_name(), subtask = setup.id.subtask);
        TaskActor {
            id: setup.id,
            head_metrics: setup.metrics.first().cloned().unwrap_or_default(),
            head: setup.vertex.node_names().first().cloned().unwrap_or_else(|| "task".into()),
            coordinator: Some(setup.coordinator.clone()),
            batch_size: setup.batch_size.max(1),
            buffer_timeout: setup.buffer_timeout,
            setup: Some(setup),
            source: None,
            stages: Vec::new(),
            sink: None,
            outputs: Vec::new(),
            parked: Parked::default(),
            ended: false,
            stopped: false,
            span,
        }
    }

    /// Builds and opens every node of the chain; returns the input gate, if the chain has one.
    fn open(&mut self, setup: TaskSetup) -> Result<Option<InputGate>> {
        let info = |name: &Arc<str>| TaskInfo {
            job: setup.job.clone(),
            node: name.clone(),
            subtask: setup.id.subtask,
            parallelism: setup.vertex.parallelism,
            max_parallelism: setup.max_parallelism,
        };
        let mut metrics = setup.metrics.into_iter();
        let mut next_metrics = || metrics.next().unwrap_or_default();
        if let Head::Source { name, builder } = &setup.vertex.head {
            let ti = info(name);
            let mut source = guard(name, || builder.build(&ti))?;
            guard(name, || source.open(&ti))?;
            let width = builder.output_schema().len();
            self.source = Some(SourceStage {
                name: name.clone(),
                source,
                batch: Batch::new(width),
                metrics: next_metrics(),
                skipped_reported: 0,
            });
        }
        for o in &setup.vertex.operators {
            let ti = info(&o.name);
            let mut op = guard(&o.name, || o.builder.build(&ti))?;
            guard(&o.name, || op.open(&ti))?;
            let width = o.builder.output_schema().len();
            self.stages.push(Stage { name: o.name.clone(), op, buf: Batch::new(width), metrics: next_metrics() });
        }
        if let Some(s) = &setup.vertex.sink {
            let ti = info(&s.name);
            let mut sink = guard(&s.name, || s.builder.build(&ti))?;
            guard(&s.name, || sink.open(&ti))?;
            self.sink = Some(SinkStage { name: s.name.clone(), sink, metrics: next_metrics() });
        }
        self.outputs = setup.outputs;
        Ok((!setup.inputs.is_empty()).then(|| InputGate::new(setup.inputs)))
    }

    fn pump(&mut self, ctx: &mut Context<Self>) {
        if self.stopped || self.ended {
            return;
        }
        match self.poll_source() {
            Ok(Some(wait)) => {
                ctx.run_later(wait, |act, ctx| act.pump(ctx));
                self.settle(ctx, false);
            }
            Ok(None) => self.settle(ctx, true),
            Err(e) => self.fail(ctx, e),
        }
    }

    /// Polls the source once and pushes what it produced; `Some(wait)` when it is idle.
    fn poll_source(&mut self) -> Result<Option<Duration>> {
        let Some(src) = self.source.as_mut() else { return Ok(None) };
        let mut batch = std::mem::take(&mut src.batch);
        let width = batch.width();
        batch.clear();
        let poll = guard(&src.name, || src.source.poll(&mut batch, self.batch_size))?;
        NodeMetrics::add(&src.metrics.records_out, batch.len() as u64);
        let skipped = src.source.skipped_records();
        NodeMetrics::add(&src.metrics.records_skipped, skipped.saturating_sub(src.skipped_reported));
        src.skipped_reported = skipped;
        let r = self.push_through(0, &mut batch);
        if let Some(src) = self.source.as_mut() {
            src.batch = if batch.width() == width { batch } else { Batch::new(width) };
        }
        r?;
        match poll {
            SourcePoll::Ready => Ok(None),
            SourcePoll::Idle(wait) => {
                self.flush_outputs()?;
                Ok(Some(wait))
            }
            SourcePoll::Finished => self.end_of_input().map(|_| None),
        }
    }

    /// Runs `input` through stages `from..` and delivers the result.
    fn push_through(&mut self, from: usize, input: &mut Batch) -> Result<()> {
        let mut cur = input;
        for stage in self.stages[from..].iter_mut() {
            if cur.is_empty() {
                return Ok(());
            }
            let Stage { name, op, buf, metrics } = stage;
            NodeMetrics::add(&metrics.records_in, cur.len() as u64);
            buf.clear();
            let input: &Batch = cur;
            guard(name, || op.process_batch(input, &mut Output::new(buf)))?;
            NodeMetrics::add(&metrics.records_out, buf.len() as u64);
            cur = buf;
        }
        Self::deliver(&self.head, &mut self.sink, &mut self.outputs, &mut self.parked, cur)
    }

    /// Calls a hook of stage `i` and pushes what it emitted through the rest of the chain.
    fn run_hook(
        &mut self,
        i: usize,
        hook: impl FnOnce(&mut dyn Operator, &mut Output<'_>) -> eddy_api::Result<()>,
    ) -> Result<()> {
        let (head, _) = self.stages.split_at_mut(i + 1);
        let Stage { name, op, buf, metrics } = &mut head[i];
        buf.clear();
        guard(name, || hook(op.as_mut(), &mut Output::new(buf)))?;
        NodeMetrics::add(&metrics.records_out, buf.len() as u64);
        let mut out = std::mem::take(buf);
        let width = out.width();
        let r = self.push_through(i + 1, &mut out);
        out.clear();
        self.stages[i].buf = if out.width() == width { out } else { Batch::new(width) };
        r
    }

    fn deliver(
        head: &Arc<str>,
        sink: &mut Option<SinkStage>,
        outputs: &mut [OutputWriter],
        parked: &mut Parked,
        batch: &mut Batch,
    ) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        if let Some(s) = sink {
            NodeMetrics::add(&s.metrics.records_in, batch.len() as u64);
            let b: &Batch = batch;
            guard(&s.name, || s.sink.write_batch(b))?;
            NodeMetrics::add(&s.metrics.records_out, batch.len() as u64);
            return Ok(());
        }
        let n = outputs.len();
        for (i, w) in outputs.iter_mut().enumerate() {
            if i + 1 == n {
                w.emit(batch, parked).map_err(|e| Failure { node: head.clone(), error: e })?;
            } else {
                w.emit(&mut batch.clone(), parked).map_err(|e| Failure { node: head.clone(), error: e })?;
            }
        }
        Ok(())
    }

    fn on_watermark(&mut self, wm: i64) -> Result<()> {
        for i in 0..self.stages.len() {
            self.run_hook(i, |op, out| op.on_watermark(wm, out))?;
        }
        for w in &mut self.outputs {
            w.broadcast(|| StreamElement::Watermark(wm), &mut self.parked)
                .map_err(|e| Failure { node: self.head.clone(), error: e })?;
        }
        Ok(())
    }

    fn end_of_input(&mut self) -> Result<()> {
        for i in 0..self.stages.len() {
            self.run_hook(i, |op, out| op.on_end_of_input(out))?;
        }
        if let Some(s) = &mut self.sink {
            guard(&s.name, || s.sink.finish())?;
        }
        for w in &mut self.outputs {
            w.broadcast(|| StreamElement::EndOfInput, &mut self.parked)
                .map_err(|e| Failure { node: self.head.clone(), error: e })?;
        }
        self.ended = true;
        Ok(())
    }

    fn flush_outputs(&mut self) -> Result<()> {
        for w in &mut self.outputs {
            w.flush(&mut self.parked).map_err(|e| Failure { node: self.head.clone(), error: e })?;
        }
        Ok(())
    }

    /// After an input: deliver parked elements (waiting, i.e. backpressure, if needed), then finish or
    /// continue pumping the source.
    fn settle(&mut self, ctx: &mut Context<Self>, pump_again: bool) {
        if self.stopped {
            return;
        }
        if self.buffer_timeout.is_zero() {
            if let Err(e) = self.flush_outputs() {
                return self.fail(ctx, e);
            }
        }
        if !self.parked.is_empty() {
            NodeMetrics::add(&self.head_metrics.backpressure_waits, 1);
            let items = std::mem::take(&mut self.parked.0);
            ctx.wait(
                async move {
                    for (tx, el) in items {
                        if tx.send(el).await.is_err() {
                            return false;
                        }
                    }
                    true
                }
                .into_actor(self)
                .map(move |delivered, act, ctx| {
                    act.outputs.iter_mut().for_each(OutputWriter::unblock);
                    if delivered {
                        act.settle(ctx, pump_again);
                    } else {
                        let node = act.head.clone();
                        act.fail(ctx, Failure { node, error: EddyError::internal("downstream task is gone") });
                    }
                }),
            );
            return;
        }
        if self.ended {
            self.finish(ctx);
        } else if pump_again && self.source.is_some() {
            ctx.notify(Pump);
        }
    }

    fn close_all(&mut self) {
        if let Some(s) = &mut self.source {
            let _ = guard(&s.name, || s.source.close());
        }
        for s in &mut self.stages {
            let _ = guard(&s.name, || s.op.close());
        }
        if let Some(s) = &mut self.sink {
            let _ = guard(&s.name, || s.sink.close());
        }
    }

    fn finish(&mut self, ctx: &mut Context<Self>) {
        self.close_all();
        self.stopped = true;
        debug!("finished");
        if let Some(c) = self.coordinator.take() {
            c.do_send(TaskEvent::Finished(self.id));
        }
        ctx.stop();
    }

    fn fail(&mut self, ctx: &mut Context<Self>, failure: Failure) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        self.close_all();
        let Failure { node, error } = failure;
        tracing::error!(%node, %error, "task failed");
        if let Some(c) = self.coordinator.take() {
            c.do_send(TaskEvent::Failed { task: self.id, node: node.to_string(), error: error.to_string() });
        }
        ctx.stop();
    }
}

impl Actor for TaskActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let span = self.span.clone();
        let _g = span.enter();
        let Some(setup) = self.setup.take() else { return };
        match self.open(setup) {
            Ok(gate) => {
                if let Some(gate) = gate {
                    ctx.add_stream(gate);
                }
                if !self.buffer_timeout.is_zero() {
                    ctx.run_interval(self.buffer_timeout, |act, ctx| {
                        if let Err(e) = act.flush_outputs() {
                            return act.fail(ctx, e);
                        }
                        act.settle(ctx, false);
                    });
                }
                if self.source.is_some() {
                    ctx.notify(Pump);
                }
            }
            Err(e) => self.fail(ctx, e),
        }
    }
}

impl Handler<Pump> for TaskActor {
    type Result = ();
    fn handle(&mut self, _: Pump, ctx: &mut Context<Self>) {
        let span = self.span.clone();
        let _g = span.enter();
        self.pump(ctx);
    }
}

impl Handler<Cancel> for TaskActor {
    type Result = ();
    fn handle(&mut self, _: Cancel, ctx: &mut Context<Self>) {
        self.stopped = true;
        self.coordinator = None;
        self.close_all();
        ctx.stop();
    }
}

impl StreamHandler<GateEvent> for TaskActor {
    fn handle(&mut self, ev: GateEvent, ctx: &mut Context<Self>) {
        if self.stopped {
            return;
        }
        let span = self.span.clone();
        let _g = span.enter();
        let r = match ev {
            GateEvent::Data(mut batch) => self.push_through(0, &mut batch),
            GateEvent::Watermark(w) => self.on_watermark(w),
            GateEvent::EndOfInput => self.end_of_input(),
            GateEvent::Disconnected => Err(Failure {
                node: self.head.clone(),
                error: EddyError::internal("an upstream task stopped without ending its output"),
            }),
        };
        match r {
            Ok(()) => self.settle(ctx, false),
            Err(e) => self.fail(ctx, e),
        }
    }

    fn finished(&mut self, _ctx: &mut Context<Self>) {
        // The gate ends after end-of-input or a disconnect, both handled above.
    }
}
