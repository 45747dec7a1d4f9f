//! The task actor: runs one subtask of a chain (source or input gate -> operators -> sink or outputs).
//!
//! Data arrives through the [`InputGate`] attached as an actix stream, or from the source, pumped by
//! self-messages one batch at a time so tasks sharing an arbiter interleave. After each input the task
//! delivers what it produced; if a downstream channel is full, it parks the rest and `ctx.wait`s until
//! it is delivered, taking no input meanwhile: that is the backpressure path. User code runs inside
//! [`guard`] so a panic fails this task, not the arbiter.
mod checkpoint;

pub use checkpoint::{CheckpointComplete, TaskCheckpointing, TriggerCheckpoint};

use crate::checkpoint::{RestoredCheckpoint, TaskFile};
use crate::faults::{FaultAction, FaultInjector, Phase, Site};
use crate::gate::{GateEvent, InputGate};
use crate::graph::EventTimeSpec;
use crate::graph::{Head, Vertex};
use crate::metrics::NodeMetrics;
use crate::output::{OutputWriter, Parked};
use crate::panic::{guard, Failure};
use actix::prelude::*;
use eddy_api::operator::{Context as OpContext, OpenContext};
use eddy_api::state::{KeyedState, TimeDomain};
use eddy_api::{Batch, EddyError, Operator, Sink, Source, SourcePoll, StreamElement, TaskInfo};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

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

/// What a task tells the coordinator, stamped with the task and its restart epoch: the coordinator drops
/// reports of an older attempt, so a slow message from a dead attempt never corrupts a new one.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct TaskEvent {
    /// Which task.
    pub task: TaskId,
    /// The attempt (deployment) of the task that reports.
    pub epoch: u64,
    /// What happened.
    pub kind: TaskEventKind,
}

/// The reports of a task.
#[derive(Debug)]
pub enum TaskEventKind {
    /// Opened (state restored) and running.
    Started,
    /// All input processed and delivered. Without checkpoints the task has stopped; with checkpoints it
    /// waits for the job's final checkpoint (its sink commits then) and reports [`TaskEventKind::Closed`].
    Finished,
    /// The task wrote its snapshot for a checkpoint.
    Acked {
        /// The checkpoint.
        checkpoint: u64,
        /// What it wrote.
        file: TaskFile,
    },
    /// The task could not take or write its snapshot for a checkpoint (the checkpoint fails; the task
    /// goes on).
    Declined {
        /// The checkpoint.
        checkpoint: u64,
        /// Why.
        error: String,
    },
    /// After the job's final checkpoint: the task committed and closed.
    Closed,
    /// The task failed and stopped.
    Failed {
        /// The node in the chain that failed.
        node: String,
        /// What happened.
        error: String,
    },
}

/// Asks a task to stop at once (job cancelled, or its region restarting). The reply comes once the
/// task has closed its nodes and released their state (a redb file, an open part file), so a new attempt
/// may open them.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Cancel;

/// Asks a source task to end its input now, as if it were exhausted (a graceful stop); other tasks
/// ignore it and finish when their inputs end.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopSource;

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
    /// Input channels with the input port each feeds (empty for a source chain).
    pub inputs: Vec<(Receiver<StreamElement>, usize)>,
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
    /// Checkpointing, when the job checkpoints.
    pub checkpointing: Option<TaskCheckpointing>,
    /// The checkpoint to restore state from.
    pub restore: Option<Arc<RestoredCheckpoint>>,
    /// Where keyed state lives.
    pub state_backend: Arc<dyn eddy_api::state::StateBackend>,
    /// The restart attempt this task belongs to (0: the first deployment).
    pub epoch: u64,
    /// Injected faults (chaos runs only).
    pub faults: Option<Arc<dyn FaultInjector>>,
}

struct Stage {
    name: Arc<str>,
    /// Output schema fingerprint, recorded in snapshots.
    schema: String,
    op: Box<dyn Operator>,
    buf: Batch,
    /// One batch per declared side output.
    sides: Vec<Batch>,
    /// Keyed state and timers, for operators on a keyed stream.
    state: Option<KeyedState>,
    metrics: Arc<NodeMetrics>,
}

/// Watermark generation of a source with `event_time` (bounded out-of-orderness, like Flink's).
struct WatermarkGen {
    spec: EventTimeSpec,
    max_ts: i64,
    emitted: i64,
    last_data: Instant,
    idle: bool,
}

impl WatermarkGen {
    /// The generator of a chain that starts at an input with an operator that assigns watermarks
    /// mid-stream (`OperatorBuilder::watermarks`); a source chain's comes from its `event_time` instead.
    fn for_input(vertex: &Vertex) -> Option<WatermarkGen> {
        if !matches!(vertex.head, Head::Input) {
            return None;
        }
        let spec = vertex.operators.first()?.builder.watermarks()?;
        Some(WatermarkGen { spec, max_ts: i64::MIN, emitted: i64::MIN, last_data: Instant::now(), idle: false })
    }

    /// The watermark the data seen so far allows.
    fn current(&self) -> i64 {
        let ooo = i64::try_from(self.spec.max_out_of_orderness.as_millis()).unwrap_or(i64::MAX);
        self.max_ts.saturating_sub(ooo).saturating_sub(1)
    }
}

fn count_late(metrics: &NodeMetrics, late: eddy_api::operator::LateCounts) {
    if late.dropped > 0 {
        NodeMetrics::add(&metrics.late_records_dropped, late.dropped);
    }
    if late.side_output > 0 {
        NodeMetrics::add(&metrics.late_records_side_output, late.side_output);
    }
}

/// Obeys the fault injector at a site: a panic fires inside the task boundary (exactly as a panic in user
/// code would), a delay blocks this thread, a dropped record leaves `batch`.
fn at_site(
    faults: &Arc<dyn FaultInjector>,
    node: &Arc<str>,
    subtask: usize,
    attempt: u64,
    phase: Phase,
    batch: &mut Batch,
) -> Result<()> {
    let site = Site { node, subtask, phase, records: batch.len(), attempt };
    match faults.at(site) {
        FaultAction::None => Ok(()),
        FaultAction::Panic(message) => guard(node, || -> eddy_api::Result<()> { panic!("{message}") }),
        FaultAction::Delay(d) => {
            std::thread::sleep(d);
            Ok(())
        }
        FaultAction::DropRecord => {
            batch.pop_row();
            Ok(())
        }
    }
}

/// Wall-clock milliseconds since the epoch.
fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

struct SourceStage {
    name: Arc<str>,
    schema: String,
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
    /// The watermark the chain has seen (minimum over its inputs, or generated by its source).
    watermark: i64,
    /// While a watermark moves down the chain: the stages from this index on have not seen it yet and
    /// still work with the previous one (what an upstream stage emits on the watermark reaches them
    /// before it, as it would through a channel).
    lagging: Option<(usize, i64)>,
    /// The input port of the batch being processed (for the chain's first operator).
    port: usize,
    /// When the scheduled processing-time wake-up is due, if one is scheduled.
    timer_wakeup: Option<i64>,
    /// When the task last finished handling something (the start of its idle time).
    idle_since: Instant,
    watermarks: Option<WatermarkGen>,
    ended: bool,
    stopped: bool,
    /// `Finished` was reported (with checkpoints the task then waits for the final checkpoint).
    reported_finished: bool,
    checkpointing: Option<TaskCheckpointing>,
    /// The newest checkpoint this task has snapshotted.
    last_checkpoint: u64,
    job: Arc<str>,
    parallelism: usize,
    epoch: u64,
    faults: Option<Arc<dyn FaultInjector>>,
    span: Span,
}

impl TaskActor {
    /// A task that builds its operators when started.
    pub fn new(setup: TaskSetup) -> Self {
        let span = tracing::info_span!("task", job = %setup.job, node = %setup.vertex.display_name(),
            subtask = setup.id.subtask, attempt = setup.epoch);
        TaskActor {
            id: setup.id,
            head_metrics: setup.metrics.first().cloned().unwrap_or_default(),
            head: setup.vertex.node_names().first().cloned().unwrap_or_else(|| "task".into()),
            coordinator: Some(setup.coordinator.clone()),
            checkpointing: setup.checkpointing.clone(),
            last_checkpoint: 0,
            job: setup.job.clone(),
            parallelism: setup.vertex.parallelism,
            epoch: setup.epoch,
            faults: setup.faults.clone(),
            reported_finished: false,
            batch_size: setup.batch_size.max(1),
            buffer_timeout: setup.buffer_timeout,
            watermarks: WatermarkGen::for_input(&setup.vertex),
            setup: Some(setup),
            source: None,
            stages: Vec::new(),
            sink: None,
            outputs: Vec::new(),
            parked: Parked::default(),
            watermark: i64::MIN,
            lagging: None,
            port: 0,
            timer_wakeup: None,
            idle_since: Instant::now(),
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
        if let Head::Source { name, builder, event_time } = &setup.vertex.head {
            self.watermarks = event_time.clone().map(|spec| WatermarkGen {
                spec,
                max_ts: i64::MIN,
                emitted: i64::MIN,
                last_data: Instant::now(),
                idle: false,
            });
            let ti = info(name);
            let mut source = guard(name, || builder.build(&ti))?;
            guard(name, || source.open(&ti))?;
            if let Some(r) = &setup.restore {
                let positions = r.blobs(name, |n| n.source.as_ref());
                if !positions.is_empty() {
                    guard(name, || source.restore_position(&positions))?;
                }
            }
            let width = builder.output_schema().len();
            self.source = Some(SourceStage {
                name: name.clone(),
                schema: builder.output_schema().to_string(),
                source,
                batch: Batch::new(width),
                metrics: next_metrics(),
                skipped_reported: 0,
            });
        }
        for o in &setup.vertex.operators {
            let ti = info(&o.name);
            let mut op = guard(&o.name, || o.builder.build(&ti))?;
            let mut state: Option<KeyedState> = match o.builder.state_key() {
                Some(keys) => Some(guard(&o.name, || {
                    setup.state_backend.create(&ti, keys, ti.key_groups(), setup.max_parallelism)
                })?),
                None => None,
            };
            if let Some(st) = state.as_mut() {
                st.set_processing_time(now_ms());
            }
            guard(&o.name, || op.open(&mut OpenContext::new(&ti, state.as_mut())))?;
            if let Some(r) = &setup.restore {
                if let Some(st) = state.as_mut() {
                    let parts: Vec<&[u8]> = r.node(&o.name).iter().filter_map(|n| n.keyed.as_deref()).collect();
                    if !parts.is_empty() {
                        let started = Instant::now();
                        guard(&o.name, || st.restore(&parts))?;
                        let ms = started.elapsed().as_millis() as u64;
                        tracing::info!(node = %o.name, keys = st.key_count(), ms, "keyed state restored");
                    }
                }
                let states = r.blobs(&o.name, |n| n.operator.as_ref());
                if !states.is_empty() {
                    guard(&o.name, || op.restore_state(&states))?;
                }
            }
            let width = o.builder.output_schema().len();
            let sides = o.builder.side_outputs().iter().map(|(_, schema)| Batch::new(schema.len())).collect();
            self.stages.push(Stage {
                name: o.name.clone(),
                schema: o.builder.output_schema().to_string(),
                op,
                buf: Batch::new(width),
                sides,
                state,
                metrics: next_metrics(),
            });
        }
        if let Some(s) = &setup.vertex.sink {
            let ti = info(&s.name);
            let mut sink = guard(&s.name, || s.builder.build(&ti))?;
            guard(&s.name, || sink.open(&ti))?;
            if let Some(r) = &setup.restore {
                let states = r.blobs(&s.name, |n| n.sink.as_ref());
                if !states.is_empty() {
                    guard(&s.name, || sink.restore(&states))?;
                }
            }
            self.sink = Some(SinkStage { name: s.name.clone(), sink, metrics: next_metrics() });
        }
        self.outputs = setup.outputs;
        if setup.restore.is_some() {
            self.fault_sites(Phase::Restore)?;
        }
        let align = self.checkpointing.as_ref().is_none_or(|c| c.align);
        Ok((!setup.inputs.is_empty()).then(|| InputGate::new(setup.inputs, align)))
    }

    /// Starts timing a handler: the time since the last one was idle.
    fn begin_busy(&mut self) -> Instant {
        let now = Instant::now();
        NodeMetrics::add_time(&self.head_metrics.idle_ns, now - self.idle_since);
        now
    }

    /// Ends timing a handler.
    fn end_busy(&mut self, started: Instant) {
        let now = Instant::now();
        NodeMetrics::add_time(&self.head_metrics.busy_ns, now - started);
        self.idle_since = now;
    }

    fn pump(&mut self, ctx: &mut Context<Self>) {
        if self.stopped || self.ended {
            return;
        }
        let started = self.begin_busy();
        let polled = self.poll_source();
        self.end_busy(started);
        match polled {
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
        NodeMetrics::add(&src.metrics.bytes_out, batch.size_bytes() as u64);
        let progress = src.source.progress();
        NodeMetrics::set(&src.metrics.progress_done, progress.done);
        NodeMetrics::set(&src.metrics.progress_total, progress.total.unwrap_or(0));
        let skipped = src.source.skipped_records();
        NodeMetrics::add(&src.metrics.records_skipped, skipped.saturating_sub(src.skipped_reported));
        src.skipped_reported = skipped;
        if let Some(f) = self.faults.as_ref().filter(|_| !batch.is_empty()) {
            if let Some(src) = self.source.as_ref() {
                at_site(f, &src.name, self.id.subtask, self.epoch, Phase::Processing, &mut batch)?;
            }
        }
        let punctuated = self.observe_timestamps(&batch)?;
        let mut r = self.push_through(0, &mut batch);
        if r.is_ok() && punctuated {
            r = self.emit_generated_watermark();
        }
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

    /// A batch from the input gate: through the chain, generating watermarks from it first when the
    /// chain's head operator assigns them.
    fn on_input_batch(&mut self, batch: &mut Batch) -> Result<()> {
        let punctuated = self.observe_timestamps(batch)?;
        self.push_through(0, batch)?;
        if punctuated {
            self.emit_generated_watermark()?;
        }
        Ok(())
    }

    /// Tracks the largest event timestamp of a source batch (or, for a chain that assigns watermarks
    /// mid-stream, of an input batch); announces that an idle split is active again before its data
    /// goes out. True when watermarks are punctuated (emitted per batch).
    fn observe_timestamps(&mut self, batch: &Batch) -> Result<bool> {
        let Some(gen) = self.watermarks.as_mut() else { return Ok(false) };
        if batch.is_empty() {
            return Ok(false);
        }
        let field = gen.spec.field;
        if let Some(max) = batch.rows().filter_map(|r| r.int(field)).max() {
            gen.max_ts = gen.max_ts.max(max);
        }
        gen.last_data = Instant::now();
        let punctuated = gen.spec.interval.is_zero();
        if std::mem::take(&mut gen.idle) {
            self.broadcast(|| StreamElement::Idle(false))?;
        }
        Ok(punctuated)
    }

    /// Periodic watermark tick of a source: emit the watermark if it advanced, or mark the split idle.
    fn watermark_tick(&mut self) -> Result<()> {
        let Some(gen) = self.watermarks.as_mut() else { return Ok(()) };
        if gen.idle {
            return Ok(());
        }
        if gen.spec.idle_timeout.is_some_and(|t| gen.last_data.elapsed() >= t) {
            gen.idle = true;
            return self.broadcast(|| StreamElement::Idle(true));
        }
        self.emit_generated_watermark()
    }

    fn emit_generated_watermark(&mut self) -> Result<()> {
        let Some(gen) = self.watermarks.as_mut() else { return Ok(()) };
        let wm = gen.current();
        if wm > gen.emitted {
            gen.emitted = wm;
            self.advance_watermark(wm)?;
        }
        Ok(())
    }

    /// Flushes every output and sends a control element (made by `make`) down every edge.
    fn broadcast(&mut self, make: impl Fn() -> StreamElement) -> Result<()> {
        for w in &mut self.outputs {
            w.broadcast(&make, &mut self.parked).map_err(|e| Failure { node: self.head.clone(), error: e })?;
        }
        Ok(())
    }

    /// Runs `input` through stages `from..` and delivers the result.
    fn push_through(&mut self, from: usize, input: &mut Batch) -> Result<()> {
        let (current, now, lagging) = (self.watermark, now_ms(), self.lagging);
        let mut cur = input;
        for (k, stage) in self.stages[from..].iter_mut().enumerate() {
            if cur.is_empty() {
                break;
            }
            let wm = match lagging {
                Some((first, prev)) if from + k >= first => prev,
                _ => current,
            };
            let Stage { name, op, buf, sides, state, metrics, .. } = stage;
            if let Some(f) = self.faults.as_ref() {
                at_site(f, name, self.id.subtask, self.epoch, Phase::Processing, cur)?;
            }
            NodeMetrics::add(&metrics.records_in, cur.len() as u64);
            NodeMetrics::add(&metrics.bytes_in, cur.size_bytes() as u64);
            buf.clear();
            let input: &Batch = cur;
            // Only the chain's first operator has several inputs; the rest read their predecessor.
            let port = if from + k == 0 { self.port } else { 0 };
            if let Some(st) = state.as_mut() {
                st.set_processing_time(now);
            }
            let mut ctx = OpContext::new(buf, sides, wm, now).on_port(port).with_state(state.as_mut());
            guard(name, || op.process_batch(input, &mut ctx))?;
            count_late(metrics, ctx.late_counts());
            if let Some(st) = state.as_mut() {
                guard(name, || st.spill_if_needed())?;
            }
            NodeMetrics::add(&metrics.records_out, buf.len() as u64);
            NodeMetrics::add(&metrics.bytes_out, buf.size_bytes() as u64);
            cur = buf;
        }
        if let (Some(f), Some(s)) = (self.faults.as_ref(), self.sink.as_ref()) {
            if !cur.is_empty() {
                at_site(f, &s.name, self.id.subtask, self.epoch, Phase::Processing, cur)?;
            }
        }
        Self::deliver(&self.head, &mut self.sink, &mut self.outputs, &mut self.parked, None, cur)?;
        self.deliver_sides()
    }

    /// Asks the fault injector (chaos runs only) about a site of the chain outside the processing path.
    fn fault_site(&self, node: &Arc<str>, phase: Phase) -> Result<()> {
        match self.faults.as_ref() {
            Some(f) => at_site(f, node, self.id.subtask, self.epoch, phase, &mut Batch::default()),
            None => Ok(()),
        }
    }

    /// Fault sites of `phase` for every node of the chain, in chain order.
    pub(super) fn fault_sites(&self, phase: Phase) -> Result<()> {
        if self.faults.is_none() {
            return Ok(());
        }
        let names = self.source.iter().map(|s| &s.name).chain(self.stages.iter().map(|s| &s.name));
        for name in names.chain(self.sink.iter().map(|s| &s.name)) {
            self.fault_site(name, phase)?;
        }
        Ok(())
    }

    /// Calls a hook of stage `i` and pushes what it emitted through the rest of the chain.
    fn run_hook(
        &mut self,
        i: usize,
        hook: impl FnOnce(&mut dyn Operator, &mut OpContext<'_>) -> eddy_api::Result<()>,
    ) -> Result<()> {
        let (wm, now) = (self.watermark, now_ms());
        let (head, _) = self.stages.split_at_mut(i + 1);
        let Stage { name, op, buf, sides, state, metrics, .. } = &mut head[i];
        buf.clear();
        if let Some(st) = state.as_mut() {
            st.set_processing_time(now);
        }
        let mut ctx = OpContext::new(buf, sides, wm, now).with_state(state.as_mut());
        guard(name, || hook(op.as_mut(), &mut ctx))?;
        count_late(metrics, ctx.late_counts());
        if let Some(st) = state.as_mut() {
            guard(name, || st.spill_if_needed())?;
        }
        NodeMetrics::add(&metrics.records_out, buf.len() as u64);
        NodeMetrics::add(&metrics.bytes_out, buf.size_bytes() as u64);
        let mut out = std::mem::take(buf);
        let width = out.width();
        let r = self.push_through(i + 1, &mut out);
        out.clear();
        self.stages[i].buf = if out.width() == width { out } else { Batch::new(width) };
        r
    }

    /// Fires every processing-time timer that is due.
    fn fire_processing_timers(&mut self) -> Result<()> {
        let now = now_ms();
        for i in 0..self.stages.len() {
            while let Some(timer) = self.stages[i].state.as_mut().and_then(|st| st.pop_processing_timer(now)) {
                debug_assert_eq!(timer.domain, TimeDomain::ProcessingTime);
                self.run_hook(i, |op, ctx| op.on_timer(timer, ctx))?;
            }
        }
        Ok(())
    }

    /// The earliest processing-time timer of any stage.
    fn next_processing_timer(&self) -> Option<i64> {
        self.stages.iter().filter_map(|s| s.state.as_ref()?.next_processing_timer()).min()
    }

    /// Makes sure a wake-up is scheduled for the earliest processing-time timer.
    fn schedule_processing_timers(&mut self, ctx: &mut Context<Self>) {
        let Some(due) = self.next_processing_timer() else { return };
        if self.timer_wakeup.is_some_and(|at| at <= due) {
            return;
        }
        self.timer_wakeup = Some(due);
        let wait = Duration::from_millis(u64::try_from(due.saturating_sub(now_ms())).unwrap_or(0));
        ctx.run_later(wait, move |act, ctx| {
            if act.timer_wakeup == Some(due) {
                act.timer_wakeup = None;
            }
            if act.stopped {
                return;
            }
            match act.fire_processing_timers() {
                Ok(()) => act.settle(ctx, false),
                Err(e) => act.fail(ctx, e),
            }
        });
    }

    /// Side outputs of the chain's last node go to their edges; those of inner nodes have no consumer
    /// (the planner ends a chain at a node whose side output is read) and are dropped.
    fn deliver_sides(&mut self) -> Result<()> {
        let last = self.stages.len().saturating_sub(1);
        for (j, stage) in self.stages.iter_mut().enumerate() {
            for (i, side) in stage.sides.iter_mut().enumerate() {
                if side.is_empty() {
                    continue;
                }
                if j == last {
                    Self::deliver(&self.head, &mut None, &mut self.outputs, &mut self.parked, Some(i), side)?;
                }
                side.clear();
            }
        }
        Ok(())
    }

    /// Hands a batch of one chain output (`side`) to the sink or to the edges fed by that output.
    fn deliver(
        head: &Arc<str>,
        sink: &mut Option<SinkStage>,
        outputs: &mut [OutputWriter],
        parked: &mut Parked,
        side: Option<usize>,
        batch: &mut Batch,
    ) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        if let Some(s) = sink {
            let (n, bytes) = (batch.len() as u64, batch.size_bytes() as u64);
            NodeMetrics::add(&s.metrics.records_in, n);
            NodeMetrics::add(&s.metrics.bytes_in, bytes);
            let b: &Batch = batch;
            guard(&s.name, || s.sink.write_batch(b))?;
            NodeMetrics::add(&s.metrics.records_out, n);
            NodeMetrics::add(&s.metrics.bytes_out, bytes);
            return Ok(());
        }
        let n = outputs.iter().filter(|w| w.side() == side).count();
        for (i, w) in outputs.iter_mut().filter(|w| w.side() == side).enumerate() {
            let r = if i + 1 == n { w.emit(batch, parked) } else { w.emit(&mut batch.clone(), parked) };
            r.map_err(|e| Failure { node: head.clone(), error: e })?;
        }
        Ok(())
    }

    /// A watermark from upstream (or the end of input). A chain that generates watermarks from its input
    /// data replaces the upstream ones, as Flink's timestamp assigner does: only the end of event time
    /// passes.
    fn on_watermark(&mut self, wm: i64) -> Result<()> {
        if self.source.is_none() && self.watermarks.is_some() && wm < i64::MAX {
            return Ok(());
        }
        self.advance_watermark(wm)
    }

    /// Moves the chain's event time to `wm`: due timers, operators, then every output.
    fn advance_watermark(&mut self, wm: i64) -> Result<()> {
        let prev = std::mem::replace(&mut self.watermark, wm);
        if let Some(src) = &self.source {
            NodeMetrics::set_watermark(&src.metrics.output_watermark, wm);
        }
        let r = self.watermark_through_stages(prev, wm);
        self.lagging = None;
        r?;
        if let Some(s) = &self.sink {
            NodeMetrics::set_watermark(&s.metrics.input_watermark, wm);
        }
        self.broadcast(|| StreamElement::Watermark(wm))
    }

    /// Stage by stage: the stages after the one at hand still see `prev`, so records its timers emit
    /// (a window's results, stamped with its end) are not late for a chained window after it.
    fn watermark_through_stages(&mut self, prev: i64, wm: i64) -> Result<()> {
        for i in 0..self.stages.len() {
            self.lagging = Some((i + 1, prev));
            NodeMetrics::set_watermark(&self.stages[i].metrics.input_watermark, wm);
            // Timers first, as in Flink: results of windows ending at or before `wm` go out ahead of it.
            while let Some(timer) = self.stages[i].state.as_mut().and_then(|st| st.pop_event_timer(wm)) {
                self.run_hook(i, |op, ctx| op.on_timer(timer, ctx))?;
            }
            self.run_hook(i, |op, out| op.on_watermark(wm, out))?;
            NodeMetrics::set_watermark(&self.stages[i].metrics.output_watermark, wm);
        }
        Ok(())
    }

    fn end_of_input(&mut self) -> Result<()> {
        // The end of a bounded input is the end of event time: every pending window and timer fires.
        if self.watermark < i64::MAX {
            self.on_watermark(i64::MAX)?;
        }
        for i in 0..self.stages.len() {
            self.run_hook(i, |op, out| op.on_end_of_input(out))?;
        }
        // With checkpoints the sink's last output is committed by the job's final checkpoint instead.
        if let Some(s) = self.sink.as_mut().filter(|_| self.checkpointing.is_none()) {
            guard(&s.name, || s.sink.finish())?;
        }
        self.broadcast(|| StreamElement::EndOfInput)?;
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
            let waiting_since = Instant::now();
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
                    let now = Instant::now();
                    NodeMetrics::add_time(&act.head_metrics.backpressured_ns, now - waiting_since);
                    act.idle_since = now;
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
        self.schedule_processing_timers(ctx);
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

    /// Stops for good: closes every node and drops it with its state (releasing files such as a redb
    /// database) before the coordinator is told (`last_word`), so a restarted attempt can open them
    /// again. The outputs go last: downstream tasks see the disconnect only after the report is on its
    /// way, so the coordinator hears of a failure before the failures it causes downstream.
    pub(super) fn release(&mut self, ctx: &mut Context<Self>, last_word: Option<TaskEventKind>) {
        self.stopped = true;
        self.close_all();
        self.source = None;
        self.stages.clear();
        self.sink = None;
        if let Some(kind) = last_word {
            self.report(kind);
        }
        self.coordinator = None;
        self.outputs.clear();
        self.parked = Parked::default();
        ctx.stop();
    }

    /// Reports to the coordinator (if still attached).
    pub(super) fn report(&self, kind: TaskEventKind) {
        if let Some(c) = self.coordinator.as_ref() {
            c.do_send(TaskEvent { task: self.id, epoch: self.epoch, kind });
        }
    }

    fn finish(&mut self, ctx: &mut Context<Self>) {
        if self.checkpointing.is_some() {
            // Stay up for the final checkpoint: its completion commits the sink and closes the task.
            if !std::mem::replace(&mut self.reported_finished, true) {
                debug!("finished; waiting for the final checkpoint");
                self.report(TaskEventKind::Finished);
            }
            return;
        }
        debug!("finished");
        self.release(ctx, Some(TaskEventKind::Finished));
    }

    fn fail(&mut self, ctx: &mut Context<Self>, failure: Failure) {
        if self.stopped {
            return;
        }
        let Failure { node, error } = failure;
        tracing::error!(%node, %error, "task failed");
        self.release(ctx, Some(TaskEventKind::Failed { node: node.to_string(), error: error.to_string() }));
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
                if let Some(interval) = self.watermarks.as_ref().map(|g| g.spec.interval).filter(|i| !i.is_zero()) {
                    ctx.run_interval(interval, |act, ctx| {
                        if act.stopped || act.ended {
                            return;
                        }
                        match act.watermark_tick() {
                            Ok(()) => act.settle(ctx, false),
                            Err(e) => act.fail(ctx, e),
                        }
                    });
                }
                if self.stages.iter().any(|s| s.state.is_some()) {
                    // Incremental TTL cleanup: a bounded amount of work per second per stage.
                    ctx.run_interval(Duration::from_secs(1), |act, _| {
                        let now = now_ms();
                        for st in act.stages.iter_mut().filter_map(|s| s.state.as_mut()) {
                            st.set_processing_time(now);
                            st.cleanup_expired(4096);
                        }
                    });
                }
                if self.source.is_some() {
                    ctx.notify(Pump);
                }
                self.report(TaskEventKind::Started);
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

impl Handler<StopSource> for TaskActor {
    type Result = ();
    fn handle(&mut self, _: StopSource, ctx: &mut Context<Self>) {
        if self.source.is_none() || self.ended || self.stopped {
            return;
        }
        let span = self.span.clone();
        let _g = span.enter();
        match self.end_of_input() {
            Ok(()) => self.settle(ctx, false),
            Err(e) => self.fail(ctx, e),
        }
    }
}

impl Handler<Cancel> for TaskActor {
    type Result = ();
    fn handle(&mut self, _: Cancel, ctx: &mut Context<Self>) {
        self.coordinator = None;
        if !self.stopped {
            self.release(ctx, None);
        }
    }
}

impl StreamHandler<GateEvent> for TaskActor {
    fn handle(&mut self, ev: GateEvent, ctx: &mut Context<Self>) {
        if self.stopped {
            return;
        }
        let span = self.span.clone();
        let _g = span.enter();
        let started = self.begin_busy();
        let r = match ev {
            GateEvent::Data(port, mut batch) => {
                self.port = port;
                self.on_input_batch(&mut batch)
            }
            GateEvent::Watermark(w) => self.on_watermark(w),
            GateEvent::Idle(idle) => self.broadcast(|| StreamElement::Idle(idle)),
            GateEvent::Barrier(b) => self.checkpoint(ctx, b),
            GateEvent::EndOfInput => self.end_of_input(),
            GateEvent::Disconnected => Err(Failure {
                node: self.head.clone(),
                error: EddyError::internal("an upstream task stopped without ending its output"),
            }),
        };
        self.end_busy(started);
        match r {
            Ok(()) => self.settle(ctx, false),
            Err(e) => self.fail(ctx, e),
        }
    }

    fn finished(&mut self, _ctx: &mut Context<Self>) {
        // The gate ends after end-of-input or a disconnect, both handled above.
    }
}
