//! A test harness for operators: drive one subtask by hand, without the runtime, and look inside.
//!
//! [`OperatorHarness`] plays the task actor for one operator (like Flink's
//! `KeyedOneInputStreamOperatorTestHarness`): it builds the instance from its [`OperatorBuilder`] for one
//! subtask, creates its keyed state the way the runtime does (the builder's
//! [`state_key`](OperatorBuilder::state_key), the subtask's key groups), opens it, and then lets a test
//! push batches, watermarks, processing time, the end of the input and checkpoint barriers, in any
//! order. Every hook runs with the same semantics as in `eddy-actors`' task actor:
//!
//! - a watermark is only delivered when it advances (the input gate drops the others); the event-time
//!   timers it makes due fire first, in time order, each with its key current, then
//!   [`Operator::on_watermark`] runs;
//! - processing time is a virtual clock that only the test moves ([`set_processing_time`]); moving it
//!   fires the processing-time timers that became due, and every hook sees it as
//!   [`Context::processing_time`] and as the clock of state TTL;
//! - the end of the input is the watermark `i64::MAX` (when not there yet), then
//!   [`Operator::on_end_of_input`];
//! - a barrier runs [`Operator::on_checkpoint`], snapshots the keyed state and timers, then calls
//!   [`Operator::snapshot_state`]; a restore rebuilds a fresh instance from such snapshots.
//!
//! What the operator emits (main output and side outputs) is collected as owned rows; the harness also
//! shows the pending timers with their keys, the keyed state for any key, and the late-record counts.
//! A hook's error is returned as it is; unlike the runtime, a panic is not caught (the test fails).
//!
//! [`set_processing_time`]: OperatorHarness::set_processing_time
//! [`Context::processing_time`]: crate::Context::processing_time
//!
//! # Example
//! A count per key that an event-time timer emits at the end of each 10 s window:
//! ```
//! use eddy_api::key::FieldKeys;
//! use eddy_api::operator::{InputPartitioning, OpenContext};
//! use eddy_api::state::{Namespace, StateDescriptor, Timer, ValueState};
//! use eddy_api::testing::{row, OperatorHarness};
//! use eddy_api::{Batch, Context, DataType, Datum, EddyError, Field, Operator, OperatorBuilder};
//! use eddy_api::{Result, Schema, SchemaRef, TaskInfo};
//! use std::sync::Arc;
//!
//! /// Input: (user: string, time: timestamp_ms); output: (user, window_end, count).
//! struct PerWindow;
//!
//! impl OperatorBuilder for PerWindow {
//!     fn output_schema(&self) -> SchemaRef {
//!         let f = |n: &str, t| Field::new(n, t);
//!         Arc::new(Schema::new(vec![
//!             f("user", DataType::String),
//!             f("window_end", DataType::Timestamp),
//!             f("count", DataType::Int),
//!         ]))
//!     }
//!     fn input_partitioning(&self) -> InputPartitioning {
//!         InputPartitioning::Hash(Arc::new(FieldKeys(vec![0])))
//!     }
//!     fn build(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
//!         Ok(Box::new(Counter { count: None }))
//!     }
//! }
//!
//! struct Counter {
//!     count: Option<ValueState<i64>>,
//! }
//!
//! impl Operator for Counter {
//!     fn open(&mut self, ctx: &mut OpenContext<'_>) -> Result<()> {
//!         self.count = Some(ctx.state()?.value(StateDescriptor::new("count"))?);
//!         Ok(())
//!     }
//!
//!     fn process_batch(&mut self, input: &Batch, ctx: &mut Context<'_>) -> Result<()> {
//!         let count = self.count.ok_or_else(|| EddyError::internal("not open"))?;
//!         let st = ctx.state()?;
//!         for r in input.rows() {
//!             let end = (r.int(1).unwrap_or(0).div_euclid(10_000) + 1) * 10_000;
//!             let window = Namespace::window(end - 10_000, end);
//!             st.set_current_key(r);
//!             *count.get_or_insert_with(st, window, || 0) += 1;
//!             st.register_event_timer(end - 1, window);
//!         }
//!         Ok(())
//!     }
//!
//!     fn on_timer(&mut self, timer: Timer, ctx: &mut Context<'_>) -> Result<()> {
//!         let count = self.count.ok_or_else(|| EddyError::internal("not open"))?;
//!         let (st, out) = ctx.state_and_batch()?;
//!         let n = count.take(st, timer.namespace).unwrap_or(0);
//!         out.push(st.current_key()[0].as_datum());
//!         out.push(Datum::Timestamp(timer.namespace.end));
//!         out.push_int(n);
//!         Ok(())
//!     }
//! }
//!
//! let mut h = OperatorHarness::new(&PerWindow)?;
//! h.process_rows(&[
//!     [Datum::Str("ann"), Datum::Timestamp(1_000)],
//!     [Datum::Str("bob"), Datum::Timestamp(2_000)],
//!     [Datum::Str("ann"), Datum::Timestamp(9_000)],
//!     [Datum::Str("ann"), Datum::Timestamp(12_000)],
//! ])?;
//! assert!(h.output().is_empty());
//! assert_eq!(h.event_timers().len(), 3, "ann's first window, bob's, ann's second");
//!
//! h.watermark(9_999)?; // fires the timers at 9 999
//! let mut fired = h.take_output();
//! fired.sort_by_key(|r| r[0].to_string());
//! assert_eq!(fired, [
//!     row(&[Datum::Str("ann"), Datum::Timestamp(10_000), Datum::Int(2)]),
//!     row(&[Datum::Str("bob"), Datum::Timestamp(10_000), Datum::Int(1)]),
//! ]);
//!
//! // The state of one key, read the way the operator reads it.
//! let window = Namespace::window(10_000, 20_000);
//! let count = h.state_for(&[Datum::Str("ann"), Datum::Timestamp(0)])?.value::<i64>(StateDescriptor::new("count"))?;
//! assert_eq!(count.get(h.state()?, window), Some(&1));
//!
//! h.end_of_input()?; // the watermark jumps to the end of time: the last window fires
//! assert_eq!(h.take_output(), [row(&[Datum::Str("ann"), Datum::Timestamp(20_000), Datum::Int(1)])]);
//! assert!(h.event_timers().is_empty());
//! # Ok::<(), EddyError>(())
//! ```
use crate::batch::Batch;
use crate::error::{EddyError, Result};
use crate::key::{owned_keys_eq, FieldKeys, KeySelector};
use crate::operator::{Context, LateCounts, OpenContext, Operator, OperatorBuilder, TaskInfo};
use crate::schema::SchemaRef;
use crate::state::{HeapBackend, KeyedState, Namespace, StateBackend, TimeDomain};
use crate::value::{Datum, OwnedDatum};
use std::sync::Arc;
use std::time::Duration;

/// One record, owned: what the harness collects from the outputs.
pub type OwnedRow = Vec<OwnedDatum>;

/// An owned row from borrowed values, to compare with what the harness collected.
pub fn row(values: &[Datum<'_>]) -> OwnedRow {
    values.iter().map(Datum::to_owned).collect()
}

/// A [`TaskInfo`] for subtask `subtask` of `parallelism` over `max_parallelism` key groups, in a job
/// and node named `test`.
pub fn task_info(subtask: usize, parallelism: usize, max_parallelism: usize) -> TaskInfo {
    TaskInfo {
        job: "test".into(),
        node: "test".into(),
        subtask,
        parallelism: parallelism.max(1),
        max_parallelism: max_parallelism.max(1),
    }
}

/// The number of key groups the harness uses unless told otherwise (the job default).
pub const DEFAULT_MAX_PARALLELISM: usize = 128;

/// A registered timer that has not fired yet.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingTimer {
    /// When it fires (ms): a watermark or a processing time at or past it.
    pub time: i64,
    /// The key it fires for.
    pub key: OwnedRow,
    /// Its namespace (e.g. a window).
    pub namespace: Namespace,
    /// Its clock.
    pub domain: TimeDomain,
}

/// What a checkpoint barrier produced for one subtask: the keyed state and timers, and the operator's
/// own state. [`OperatorHarness::restore`] builds a new instance from a list of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperatorSnapshot {
    /// The checkpoint id.
    pub checkpoint: u64,
    /// The subtask that took it.
    pub subtask: usize,
    /// Keyed state and timers, for operators with keyed state.
    pub keyed: Option<Vec<u8>>,
    /// What [`Operator::snapshot_state`] returned.
    pub operator: Option<Vec<u8>>,
}

/// One operator subtask driven by hand; see the [module docs](self).
pub struct OperatorHarness {
    task: TaskInfo,
    op: Box<dyn Operator>,
    state: Option<KeyedState>,
    output_schema: SchemaRef,
    side_names: Vec<String>,
    /// Scratch batches the hooks write into, drained after each hook.
    out: Batch,
    sides: Vec<Batch>,
    output: Vec<OwnedRow>,
    side_output: Vec<Vec<OwnedRow>>,
    watermark: i64,
    processing_time: i64,
    late: LateCounts,
    ended: bool,
    last_checkpoint: Option<u64>,
    closed: bool,
}

impl std::fmt::Debug for OperatorHarness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorHarness")
            .field("task", &self.task)
            .field("watermark", &self.watermark)
            .field("processing_time", &self.processing_time)
            .field("state", &self.state)
            .field("output", &self.output.len())
            .finish()
    }
}

impl OperatorHarness {
    /// Builds and opens the operator as subtask 0 of 1 over [`DEFAULT_MAX_PARALLELISM`] key groups.
    pub fn new(builder: &dyn OperatorBuilder) -> Result<Self> {
        Self::for_subtask(builder, task_info(0, 1, DEFAULT_MAX_PARALLELISM))
    }

    /// Builds and opens the operator as the subtask `task` describes (its key groups follow from
    /// `subtask`, `parallelism` and `max_parallelism`, as in a job).
    pub fn for_subtask(builder: &dyn OperatorBuilder, task: TaskInfo) -> Result<Self> {
        Self::with_backend(builder, task, &HeapBackend)
    }

    /// Like [`for_subtask`](Self::for_subtask), with keyed state from `backend` (e.g.
    /// [`MemorySpillBackend`](crate::state::MemorySpillBackend) to run the operator over the spill path).
    /// As the runtime does, the harness lets the state spill after every hook.
    pub fn with_backend(builder: &dyn OperatorBuilder, task: TaskInfo, backend: &dyn StateBackend) -> Result<Self> {
        let mut h = Self::create(builder, task, backend)?;
        h.open()?;
        Ok(h)
    }

    /// Drives an operator instance directly, for operators without a builder: `output` and
    /// `side_outputs` are its schemas, `state_key` the key of its keyed state (`None`: no keyed state).
    pub fn from_operator(
        op: Box<dyn Operator>,
        output: SchemaRef,
        side_outputs: Vec<(String, SchemaRef)>,
        state_key: Option<Arc<dyn KeySelector>>,
        task: TaskInfo,
    ) -> Result<Self> {
        // Exactly what the task actor does: one KeyedState over the subtask's key groups.
        let state = state_key.map(|keys| KeyedState::new(keys, task.key_groups(), task.max_parallelism));
        let mut h = Self::assemble(op, output, side_outputs, state, task);
        h.open()?;
        Ok(h)
    }

    /// A fresh instance restored from the snapshots of every subtask of the run that took a checkpoint
    /// (indexed by that run's subtask, as [`checkpoint`](Self::checkpoint) returned them), as the
    /// runtime does after a failure or a rescale: build, open, restore the keyed state (each subtask
    /// keeps the key groups it owns), then [`Operator::restore_state`] with every subtask's state.
    pub fn restore(builder: &dyn OperatorBuilder, task: TaskInfo, snapshots: &[OperatorSnapshot]) -> Result<Self> {
        Self::restore_with_backend(builder, task, &HeapBackend, snapshots)
    }

    /// Like [`restore`](Self::restore), with keyed state from `backend` (snapshots of any backend restore
    /// into any other).
    pub fn restore_with_backend(
        builder: &dyn OperatorBuilder,
        task: TaskInfo,
        backend: &dyn StateBackend,
        snapshots: &[OperatorSnapshot],
    ) -> Result<Self> {
        let mut h = Self::create(builder, task, backend)?;
        h.open()?;
        h.restore_from(snapshots)?;
        Ok(h)
    }

    fn create(builder: &dyn OperatorBuilder, task: TaskInfo, backend: &dyn StateBackend) -> Result<Self> {
        let op = builder.build(&task)?;
        // As the runtime does: keyed state for operators with a state key, over the subtask's key groups.
        let state = match builder.state_key() {
            Some(keys) => Some(backend.create(&task, keys, task.key_groups(), task.max_parallelism)?),
            None => None,
        };
        Ok(Self::assemble(op, builder.output_schema(), builder.side_outputs(), state, task))
    }

    fn assemble(
        op: Box<dyn Operator>,
        output: SchemaRef,
        side_outputs: Vec<(String, SchemaRef)>,
        state: Option<KeyedState>,
        task: TaskInfo,
    ) -> Self {
        OperatorHarness {
            out: Batch::new(output.len()),
            sides: side_outputs.iter().map(|(_, s)| Batch::new(s.len())).collect(),
            side_output: vec![Vec::new(); side_outputs.len()],
            side_names: side_outputs.into_iter().map(|(n, _)| n).collect(),
            output_schema: output,
            task,
            op,
            state,
            output: Vec::new(),
            watermark: i64::MIN,
            processing_time: 0,
            late: LateCounts::default(),
            ended: false,
            last_checkpoint: None,
            closed: false,
        }
    }

    fn open(&mut self) -> Result<()> {
        let now = self.processing_time;
        if let Some(st) = self.state.as_mut() {
            st.set_processing_time(now);
        }
        self.op.open(&mut OpenContext::new(&self.task, self.state.as_mut()))
    }

    // ---- inputs ----

    /// Delivers a batch on input port 0 ([`Operator::process_batch`]; empty batches are skipped, as in
    /// the runtime).
    pub fn process_batch(&mut self, input: &Batch) -> Result<()> {
        self.process_batch_on(0, input)
    }

    /// Delivers a batch on input `port` (its position in the node's `inputs:`).
    pub fn process_batch_on(&mut self, port: usize, input: &Batch) -> Result<()> {
        if input.is_empty() {
            return Ok(());
        }
        self.run(port, |op, ctx| op.process_batch(input, ctx))
    }

    /// Delivers rows (each a slice of field values of the input schema) as one batch on port 0.
    pub fn process_rows<'a, R: AsRef<[Datum<'a>]>>(&mut self, rows: &[R]) -> Result<()> {
        self.process_rows_on(0, rows)
    }

    /// Delivers rows as one batch on input `port`.
    pub fn process_rows_on<'a, R: AsRef<[Datum<'a>]>>(&mut self, port: usize, rows: &[R]) -> Result<()> {
        let batch = batch_of(rows)?;
        self.process_batch_on(port, &batch)
    }

    /// Event time advances to `watermark`: the event-time timers at or before it fire (each with its key
    /// current; timers they register that are already due fire in the same round), then
    /// [`Operator::on_watermark`] runs. A watermark at or behind the current one is ignored, as the input
    /// gate never delivers one.
    pub fn watermark(&mut self, watermark: i64) -> Result<()> {
        if watermark <= self.watermark {
            return Ok(());
        }
        self.watermark = watermark;
        // Timers first, as in the runtime: results of windows ending at or before `watermark` go out
        // ahead of it.
        while let Some(timer) = self.state.as_mut().and_then(|st| st.pop_event_timer(watermark)) {
            self.run(0, |op, ctx| op.on_timer(timer, ctx))?;
        }
        self.run(0, |op, ctx| op.on_watermark(watermark, ctx))
    }

    /// Sets the processing-time clock (ms) and fires the processing-time timers at or before it. The
    /// clock starts at 0 and moves only when told; it may be set back (the wall clock can jump too), in
    /// which case nothing fires.
    pub fn set_processing_time(&mut self, now: i64) -> Result<()> {
        self.processing_time = now;
        if let Some(st) = self.state.as_mut() {
            // Also for reads through `state_for` before the next hook: TTL is measured on this clock.
            st.set_processing_time(now);
        }
        while let Some(timer) = self.state.as_mut().and_then(|st| st.pop_processing_timer(now)) {
            self.run(0, |op, ctx| op.on_timer(timer, ctx))?;
        }
        Ok(())
    }

    /// Moves the processing-time clock forward by `by` (see [`set_processing_time`](Self::set_processing_time)).
    pub fn advance_processing_time(&mut self, by: Duration) -> Result<()> {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.set_processing_time(self.processing_time.saturating_add(ms))
    }

    /// Every input has ended: the watermark jumps to the end of time (firing every event-time timer)
    /// unless it is there already, then [`Operator::on_end_of_input`] runs.
    pub fn end_of_input(&mut self) -> Result<()> {
        if self.watermark < i64::MAX {
            self.watermark(i64::MAX)?;
        }
        self.ended = true;
        self.run(0, |op, ctx| op.on_end_of_input(ctx))
    }

    /// Checkpoint `checkpoint`'s barrier: [`Operator::on_checkpoint`] (whatever it emits goes out ahead of
    /// the barrier; not after the end of the input, as in the runtime), then [`Operator::snapshot_state`],
    /// then the snapshot of the keyed state and timers. Checkpoint ids must increase.
    pub fn checkpoint(&mut self, checkpoint: u64) -> Result<OperatorSnapshot> {
        if self.last_checkpoint.is_some_and(|last| checkpoint <= last) {
            return Err(EddyError::user(format!(
                "checkpoint {checkpoint} after checkpoint {}: ids must increase (the runtime ignores such a \
                 barrier)",
                self.last_checkpoint.unwrap_or_default()
            )));
        }
        self.last_checkpoint = Some(checkpoint);
        if !self.ended {
            self.run(0, |op, ctx| op.on_checkpoint(checkpoint, ctx))?;
        }
        let operator = self.op.snapshot_state(checkpoint)?;
        let keyed = match self.state.as_mut() {
            // The runtime runs the returned job on a blocking thread; its result is the same.
            Some(st) => Some(st.snapshot()?()?),
            None => None,
        };
        Ok(OperatorSnapshot { checkpoint, subtask: self.task.subtask, keyed, operator })
    }

    /// Checkpoint `checkpoint` is complete: [`Operator::on_checkpoint_complete`].
    pub fn notify_checkpoint_complete(&mut self, checkpoint: u64) -> Result<()> {
        self.op.on_checkpoint_complete(checkpoint)
    }

    /// Stops the subtask: [`Operator::close`] (once; later calls do nothing).
    pub fn close(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.closed, true) {
            return Ok(());
        }
        self.op.close()
    }

    fn restore_from(&mut self, snapshots: &[OperatorSnapshot]) -> Result<()> {
        let keyed: Vec<&[u8]> = snapshots.iter().filter_map(|s| s.keyed.as_deref()).collect();
        match self.state.as_mut() {
            Some(st) if !keyed.is_empty() => st.restore(&keyed)?,
            None if !keyed.is_empty() => {
                return Err(EddyError::user("the snapshots hold keyed state, but the operator has none"));
            }
            _ => {}
        }
        // As the runtime hands them over: indexed by the old subtask, empty where one had nothing, and
        // no call at all when none had anything.
        let n = snapshots.iter().map(|s| s.subtask + 1).max().unwrap_or(0);
        let mut states = vec![Vec::new(); n];
        for s in snapshots {
            if let Some(b) = &s.operator {
                states[s.subtask].clone_from(b);
            }
        }
        if states.iter().any(|s| !s.is_empty()) {
            self.op.restore_state(&states)?;
        }
        Ok(())
    }

    /// Runs one hook with a context like the runtime's (watermark, processing time, port, state), then
    /// collects what it emitted.
    fn run(&mut self, port: usize, hook: impl FnOnce(&mut dyn Operator, &mut Context<'_>) -> Result<()>) -> Result<()> {
        let OperatorHarness { op, state, out, sides, watermark, processing_time, .. } = self;
        out.clear();
        if let Some(st) = state.as_mut() {
            st.set_processing_time(*processing_time);
        }
        let mut ctx = Context::new(out, sides, *watermark, *processing_time).on_port(port).with_state(state.as_mut());
        let mut result = hook(op.as_mut(), &mut ctx);
        let late = ctx.late_counts();
        if let (Ok(()), Some(st)) = (&result, state.as_mut()) {
            // A safe point: no handle borrows into the state (the runtime does the same).
            result = st.spill_if_needed();
        }
        self.late.dropped += late.dropped;
        self.late.side_output += late.side_output;
        // Keep what was emitted before an error too: it helps to see how far the operator got.
        drain(&mut self.out, &mut self.output);
        for (batch, rows) in self.sides.iter_mut().zip(&mut self.side_output) {
            drain(batch, rows);
        }
        result
    }

    // ---- inspection ----

    /// Where the subtask sits (its key groups: [`TaskInfo::key_groups`]).
    pub fn task(&self) -> &TaskInfo {
        &self.task
    }

    /// The operator's output schema.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.output_schema
    }

    /// The rows emitted on the main output since the last [`take_output`](Self::take_output).
    pub fn output(&self) -> &[OwnedRow] {
        &self.output
    }

    /// Takes the rows emitted on the main output so far.
    pub fn take_output(&mut self) -> Vec<OwnedRow> {
        std::mem::take(&mut self.output)
    }

    /// The rows emitted on side output `name` since the last take; an error names the declared ones.
    pub fn side_output(&self, name: &str) -> Result<&[OwnedRow]> {
        let i = self.side_index(name)?;
        Ok(&self.side_output[i])
    }

    /// Takes the rows emitted on side output `name` so far.
    pub fn take_side_output(&mut self, name: &str) -> Result<Vec<OwnedRow>> {
        let i = self.side_index(name)?;
        Ok(std::mem::take(&mut self.side_output[i]))
    }

    fn side_index(&self, name: &str) -> Result<usize> {
        self.side_names.iter().position(|n| n == name).ok_or_else(|| {
            EddyError::user(format!("no side output `{name}`; declared: [{}]", self.side_names.join(", ")))
        })
    }

    /// The current watermark (`i64::MIN` before the first).
    pub fn current_watermark(&self) -> i64 {
        self.watermark
    }

    /// The processing-time clock (ms).
    pub fn processing_time(&self) -> i64 {
        self.processing_time
    }

    /// Late records the operator counted so far ([`Context::record_late`]).
    pub fn late_counts(&self) -> LateCounts {
        self.late
    }

    /// The operator's keyed state, as the hooks left it (an error for an operator without keyed state).
    /// Reading state needs a current key: see [`state_for`](Self::state_for).
    pub fn state(&mut self) -> Result<&mut KeyedState> {
        self.state
            .as_mut()
            .ok_or_else(|| EddyError::user("the operator has no keyed state (its builder's `state_key` is None)"))
    }

    /// The keyed state with the key of `input_row` (a row of the input schema) made current, to read or
    /// change that key's state through handles declared again by name (`state.value::<T>(descriptor)`
    /// returns the operator's own handle).
    pub fn state_for(&mut self, input_row: &[Datum<'_>]) -> Result<&mut KeyedState> {
        let batch = batch_of(&[input_row])?;
        let st = self.state()?;
        st.set_current_key(batch.row(0));
        Ok(st)
    }

    /// The pending event-time timers, in firing order (empty without keyed state).
    pub fn event_timers(&mut self) -> Vec<PendingTimer> {
        self.timers(TimeDomain::EventTime)
    }

    /// The pending processing-time timers, in firing order (empty without keyed state).
    pub fn processing_timers(&mut self) -> Vec<PendingTimer> {
        self.timers(TimeDomain::ProcessingTime)
    }

    fn timers(&mut self, domain: TimeDomain) -> Vec<PendingTimer> {
        let Some(st) = self.state.as_mut() else { return Vec::new() };
        let mut all = list_timers(st);
        all.retain(|t| t.domain == domain);
        all
    }
}

/// Every timer of `st`, in firing order per domain. The state has no read-only view of its timers, so
/// they are all popped and registered again, with the same result: the same timers, and the same
/// [`KeyId`](crate::state::KeyId)s for their keys (an operator may keep the id of a key that has a timer).
fn list_timers(st: &mut KeyedState) -> Vec<PendingTimer> {
    let mut popped = Vec::new();
    // Keys released while popping: a popped timer's key becomes current, and the key current before it
    // is released when nothing refers to it any more (its id goes on the free list).
    let mut released: Vec<OwnedRow> = Vec::new();
    for domain in [TimeDomain::EventTime, TimeDomain::ProcessingTime] {
        loop {
            let (before, previous) = (st.key_count(), st.current_key().to_vec());
            let timer = match domain {
                TimeDomain::EventTime => st.pop_event_timer(i64::MAX),
                TimeDomain::ProcessingTime => st.pop_processing_timer(i64::MAX),
            };
            let Some(timer) = timer else { break };
            if st.key_count() < before {
                released.push(previous);
            }
            popped.push(PendingTimer {
                time: timer.time,
                key: st.current_key().to_vec(),
                namespace: timer.namespace,
                domain,
            });
        }
    }
    // Register them again key by key. First the current key (switching away from it would release it),
    // then the released keys in reverse order, since freed ids are reused last in, first out: each gets
    // its id back. Keys with state never left.
    let mut order: Vec<OwnedRow> = vec![st.current_key().to_vec()];
    order.extend(released.into_iter().rev());
    for t in &popped {
        if !order.iter().any(|k| owned_keys_eq(k, &t.key)) {
            order.push(t.key.clone());
        }
    }
    for key in &order {
        let mut timers = popped.iter().filter(|t| owned_keys_eq(&t.key, key)).peekable();
        if timers.peek().is_none() {
            continue; // the key that was current before, with nothing: it stays released
        }
        if !owned_keys_eq(st.current_key(), key) {
            let mut row = Batch::new(key.len());
            row.push_row(&key.iter().map(OwnedDatum::as_datum).collect::<Vec<_>>());
            st.set_current_key_with(&FieldKeys((0..key.len()).collect()), row.row(0));
        }
        for t in timers {
            match t.domain {
                TimeDomain::EventTime => st.register_event_timer(t.time, t.namespace),
                TimeDomain::ProcessingTime => st.register_processing_timer(t.time, t.namespace),
            }
        }
    }
    popped
}

/// Moves the rows of `batch` into `rows`, owned, and clears the batch.
fn drain(batch: &mut Batch, rows: &mut Vec<OwnedRow>) {
    rows.extend(batch.rows().map(|r| r.iter().map(|d| d.to_owned()).collect::<OwnedRow>()));
    batch.clear();
}

/// One batch of the given rows; they must all have the same number of fields.
fn batch_of<'a, R: AsRef<[Datum<'a>]>>(rows: &[R]) -> Result<Batch> {
    let width = rows.first().map_or(0, |r| r.as_ref().len());
    let mut batch = Batch::new(width);
    for (i, r) in rows.iter().enumerate() {
        let r = r.as_ref();
        if r.len() != width {
            return Err(EddyError::user(format!("row {i} has {} fields, the first row {width}", r.len())));
        }
        batch.push_row(r);
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    //! The harness against hand-written operators that record what the runtime would show them.
    use super::*;
    use crate::key::FieldKeys;
    use crate::operator::InputPartitioning;
    use crate::schema::{DataType, Field, Schema};
    use crate::state::{StateDescriptor, StateTtl, Timer, ValueState};

    fn schema(fields: &[(&str, DataType)]) -> SchemaRef {
        Arc::new(Schema::new(fields.iter().map(|(n, t)| Field::new(*n, *t)).collect()))
    }

    /// Input (key: int, time: int). Emits `("rec", key, time)` per record, `("timer", key, time)` per
    /// timer, `("wm", -, wm)` per watermark, `("end", -, -)` at the end; counts records per key in
    /// state; registers an event timer at `time` and a processing timer at `time + 1000`; records
    /// behind the watermark go to side output `late`.
    struct Probe {
        late_side: bool,
    }

    impl OperatorBuilder for Probe {
        fn output_schema(&self) -> SchemaRef {
            schema(&[("what", DataType::String), ("key", DataType::Int), ("time", DataType::Int)])
        }
        fn input_partitioning(&self) -> InputPartitioning {
            InputPartitioning::Hash(Arc::new(FieldKeys(vec![0])))
        }
        fn side_outputs(&self) -> Vec<(String, SchemaRef)> {
            if self.late_side {
                vec![("late".into(), schema(&[("key", DataType::Int), ("time", DataType::Int)]))]
            } else {
                Vec::new()
            }
        }
        fn build(&self, task: &TaskInfo) -> Result<Box<dyn Operator>> {
            Ok(Box::new(ProbeOp { count: None, opened_as: task.subtask, snapshots: Vec::new(), restored: None }))
        }
    }

    struct ProbeOp {
        count: Option<ValueState<i64>>,
        opened_as: usize,
        snapshots: Vec<u64>,
        restored: Option<Vec<Vec<u8>>>,
    }

    /// The probe's count per key: kept 10 s after its last write.
    fn count_desc() -> StateDescriptor {
        StateDescriptor::new("count").with_ttl(StateTtl::new(Duration::from_secs(10)))
    }

    fn emit(ctx: &mut Context<'_>, what: &str, key: Option<i64>, time: i64) {
        ctx.emit(&[Datum::Str(what), key.map_or(Datum::Null, Datum::Int), Datum::Int(time)]);
    }

    impl Operator for ProbeOp {
        fn open(&mut self, ctx: &mut OpenContext<'_>) -> Result<()> {
            self.count = Some(ctx.state()?.value(count_desc())?);
            Ok(())
        }

        fn process_batch(&mut self, input: &Batch, ctx: &mut Context<'_>) -> Result<()> {
            let count = self.count.ok_or_else(|| EddyError::internal("not open"))?;
            let (wm, now, port) = (ctx.current_watermark(), ctx.processing_time(), ctx.input_port());
            for r in input.rows() {
                let (k, t) = (r.int(0).unwrap_or(0), r.int(1).unwrap_or(0));
                if t <= wm {
                    if let Ok(side) = ctx.side_output(0) {
                        side.push_row_from(r);
                        ctx.record_late(0, 1);
                    } else {
                        ctx.record_late(1, 0);
                    }
                    continue;
                }
                let st = ctx.state()?;
                st.set_current_key(r);
                *count.get_or_insert_with(st, Namespace::NONE, || 0) += 1;
                st.register_event_timer(t, Namespace::NONE);
                st.register_processing_timer(now + 1000, Namespace::window(t, t + 1));
                emit(ctx, if port == 0 { "rec" } else { "rec1" }, Some(k), t);
            }
            Ok(())
        }

        fn on_timer(&mut self, timer: Timer, ctx: &mut Context<'_>) -> Result<()> {
            let key = ctx.state()?.current_key()[0].as_datum().as_int();
            let what = match timer.domain {
                TimeDomain::EventTime => "timer",
                TimeDomain::ProcessingTime => "ptimer",
            };
            assert_eq!(ctx.state()?.current_key_id(), timer.key, "the timer's key is current");
            if timer.domain == TimeDomain::EventTime && timer.time == 50 {
                // A timer registered while firing that is already due fires in the same round.
                ctx.state()?.register_event_timer(40, Namespace::window(0, 1));
            }
            emit(ctx, what, key, timer.time);
            Ok(())
        }

        fn on_watermark(&mut self, wm: i64, ctx: &mut Context<'_>) -> Result<()> {
            emit(ctx, "wm", None, wm);
            Ok(())
        }

        fn on_end_of_input(&mut self, ctx: &mut Context<'_>) -> Result<()> {
            emit(ctx, "end", None, 0);
            Ok(())
        }

        fn on_checkpoint(&mut self, checkpoint: u64, ctx: &mut Context<'_>) -> Result<()> {
            emit(ctx, "barrier", None, checkpoint as i64);
            Ok(())
        }

        fn snapshot_state(&mut self, checkpoint: u64) -> Result<Option<Vec<u8>>> {
            self.snapshots.push(checkpoint);
            crate::snapshot::encode(&(self.opened_as, checkpoint)).map(Some)
        }

        fn restore_state(&mut self, states: &[Vec<u8>]) -> Result<()> {
            self.restored = Some(states.to_vec());
            Ok(())
        }

        fn on_checkpoint_complete(&mut self, checkpoint: u64) -> Result<()> {
            if checkpoint == 99 {
                return Err(EddyError::user("refused"));
            }
            Ok(())
        }
    }

    fn texts(rows: &[OwnedRow]) -> Vec<String> {
        rows.iter().map(|r| r.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(" ")).collect()
    }

    fn rec(k: i64, t: i64) -> [Datum<'static>; 2] {
        [Datum::Int(k), Datum::Int(t)]
    }

    #[test]
    fn records_timers_and_watermarks_in_runtime_order() {
        let mut h = OperatorHarness::new(&Probe { late_side: true }).unwrap();
        h.process_rows(&[rec(1, 50), rec(2, 30), rec(1, 30), rec(1, 50)]).unwrap();
        assert_eq!(texts(&h.take_output()), ["rec 1 50", "rec 2 30", "rec 1 30", "rec 1 50"]);
        let timers = h.event_timers();
        assert_eq!(timers.len(), 3, "registering (1, 50) twice collapses into one timer");
        assert_eq!(timers[0].time, 30);
        assert_eq!(
            timers[2],
            PendingTimer {
                time: 50,
                key: vec![OwnedDatum::Int(1)],
                namespace: Namespace::NONE,
                domain: TimeDomain::EventTime
            }
        );
        // Timers at or before the watermark fire first, in time order, then `on_watermark`; the timer
        // registered at 40 while firing at 50 is due and fires in the same round.
        h.watermark(50).unwrap();
        let mut out = texts(&h.take_output());
        out[..2].sort();
        assert_eq!(out, ["timer 1 30", "timer 2 30", "timer 1 50", "timer 1 40", "wm NULL 50"]);
        assert!(h.event_timers().is_empty());
        // Watermarks that do not advance are not delivered.
        h.watermark(50).unwrap();
        h.watermark(10).unwrap();
        assert!(h.output().is_empty());
        assert_eq!(h.current_watermark(), 50);
    }

    #[test]
    fn late_records_go_to_the_side_output_and_are_counted() {
        let mut h = OperatorHarness::new(&Probe { late_side: true }).unwrap();
        h.watermark(100).unwrap();
        h.take_output();
        h.process_rows(&[rec(1, 100), rec(2, 101), rec(3, 7)]).unwrap();
        assert_eq!(texts(&h.take_output()), ["rec 2 101"]);
        assert_eq!(texts(h.side_output("late").unwrap()), ["1 100", "3 7"]);
        assert_eq!(h.late_counts(), LateCounts { dropped: 0, side_output: 2 });
        assert_eq!(texts(&h.take_side_output("late").unwrap()).len(), 2);
        assert!(h.side_output("late").unwrap().is_empty());
        let e = h.side_output("early").unwrap_err().to_string();
        assert!(e.contains("`early`") && e.contains("[late]"), "{e}");

        let mut h = OperatorHarness::new(&Probe { late_side: false }).unwrap();
        h.watermark(100).unwrap();
        h.process_rows(&[rec(1, 1)]).unwrap();
        assert_eq!(h.late_counts(), LateCounts { dropped: 1, side_output: 0 });
    }

    #[test]
    fn processing_time_fires_processing_timers_and_drives_ttl() {
        let mut h = OperatorHarness::new(&Probe { late_side: false }).unwrap();
        h.set_processing_time(1_000).unwrap();
        h.process_rows(&[rec(1, 5)]).unwrap();
        h.advance_processing_time(Duration::from_millis(500)).unwrap();
        h.process_rows(&[rec(2, 6)]).unwrap();
        h.take_output();
        let pt = h.processing_timers();
        assert_eq!(
            pt.iter().map(|t| (t.time, t.key.clone())).collect::<Vec<_>>(),
            [(2_000, vec![OwnedDatum::Int(1)]), (2_500, vec![OwnedDatum::Int(2)])]
        );
        assert_eq!(pt[0].namespace, Namespace::window(5, 6));
        h.set_processing_time(1_999).unwrap();
        assert!(h.output().is_empty());
        h.set_processing_time(2_000).unwrap();
        assert_eq!(texts(&h.take_output()), ["ptimer 1 2000"]);
        assert_eq!(h.processing_time(), 2_000);

        // The state keeps the count for 10 s of processing time after its last write.
        let count = h.state_for(&rec(1, 0)).unwrap().value::<i64>(count_desc()).unwrap();
        assert_eq!(count.get(h.state().unwrap(), Namespace::NONE), Some(&1));
        h.set_processing_time(11_000).unwrap();
        h.state_for(&rec(1, 0)).unwrap();
        assert_eq!(count.get(h.state().unwrap(), Namespace::NONE), None, "expired");
        h.state_for(&rec(2, 0)).unwrap();
        assert_eq!(count.get(h.state().unwrap(), Namespace::NONE), Some(&1), "written at 1 500: alive until 11 500");
    }

    #[test]
    fn end_of_input_fires_every_event_timer_then_ends() {
        let mut h = OperatorHarness::new(&Probe { late_side: false }).unwrap();
        h.process_rows(&[rec(1, i64::MAX - 1)]).unwrap();
        h.take_output();
        h.end_of_input().unwrap();
        let max = i64::MAX;
        assert_eq!(
            texts(&h.take_output()),
            [format!("timer 1 {}", max - 1), format!("wm NULL {max}"), "end NULL 0".into()]
        );
        // The end of a job whose watermark is already at the end of time: no second watermark.
        h.end_of_input().unwrap();
        assert_eq!(texts(&h.take_output()), ["end NULL 0"]);
        h.close().unwrap();
        h.close().unwrap();
    }

    #[test]
    fn ports_subtasks_and_key_groups() {
        let task = task_info(1, 2, 16);
        let mut h = OperatorHarness::for_subtask(&Probe { late_side: false }, task).unwrap();
        assert_eq!(h.task().key_groups(), crate::KeyGroupRange { start: 8, end: 15 });
        assert_eq!(h.state().unwrap().key_groups(), h.task().key_groups());
        // A key of this subtask's groups (the runtime only sends it those).
        let group = |k: i64| crate::key::key_group(crate::key::hash_key(&[OwnedDatum::Int(k)]), 16);
        let k = (0..).find(|&k| group(k) >= 8).unwrap_or(0);
        let mut b = Batch::new(2);
        b.push_row(&[Datum::Int(k), Datum::Int(1)]);
        h.process_batch_on(1, &b).unwrap();
        h.process_batch(&Batch::new(2)).unwrap();
        assert_eq!(texts(&h.take_output()), [format!("rec1 {k} 1")]);
        assert_eq!(h.output_schema().len(), 3);
        let e = h.process_rows(&[vec![Datum::Int(1)], vec![Datum::Int(1), Datum::Int(2)]]).unwrap_err();
        assert!(e.to_string().contains("row 1 has 2 fields"), "{e}");
    }

    #[test]
    fn an_operator_without_keyed_state_and_hook_errors() {
        struct Plain;
        impl Operator for Plain {
            fn process_batch(&mut self, input: &Batch, ctx: &mut Context<'_>) -> Result<()> {
                for r in input.rows() {
                    ctx.emit_row(r);
                }
                if ctx.state().is_ok() {
                    return Err(EddyError::internal("a plain operator has no state"));
                }
                Err(EddyError::user("stop here"))
            }
        }
        let s = schema(&[("x", DataType::Int)]);
        let mut h = OperatorHarness::from_operator(Box::new(Plain), s, Vec::new(), None, task_info(0, 1, 4)).unwrap();
        let e = h.process_rows(&[[Datum::Int(7)]]).unwrap_err();
        assert_eq!(e.to_string(), "stop here");
        assert_eq!(h.take_output(), [row(&[Datum::Int(7)])], "rows emitted before the error are kept");
        assert!(h.state().is_err());
        assert!(h.event_timers().is_empty());
        let snap = h.checkpoint(1).unwrap();
        assert_eq!(snap, OperatorSnapshot { checkpoint: 1, subtask: 0, keyed: None, operator: None });
        h.notify_checkpoint_complete(1).unwrap();
    }

    #[test]
    fn checkpoints_snapshot_state_and_timers_and_restore_them() {
        let builder = Probe { late_side: false };
        let mut h = OperatorHarness::new(&builder).unwrap();
        h.process_rows(&[rec(1, 10), rec(2, 20), rec(1, 30)]).unwrap();
        h.take_output();
        let snap = h.checkpoint(7).unwrap();
        assert_eq!(texts(&h.take_output()), ["barrier NULL 7"], "on_checkpoint emits ahead of the barrier");
        assert_eq!((snap.checkpoint, snap.subtask), (7, 0));
        assert!(snap.keyed.is_some());
        assert!(h.notify_checkpoint_complete(7).is_ok());
        assert_eq!(h.notify_checkpoint_complete(99).unwrap_err().to_string(), "refused");

        // After the checkpoint: more input, which the restored instance must not see.
        h.process_rows(&[rec(3, 40)]).unwrap();

        let mut r = OperatorHarness::restore(&builder, task_info(0, 1, DEFAULT_MAX_PARALLELISM), &[snap]).unwrap();
        assert_eq!(r.event_timers(), h.event_timers()[..3].to_vec());
        let count = r.state_for(&rec(1, 0)).unwrap().value::<i64>(count_desc()).unwrap();
        assert_eq!(count.get(r.state().unwrap(), Namespace::NONE), Some(&2));
        r.state_for(&rec(3, 0)).unwrap();
        assert_eq!(count.get(r.state().unwrap(), Namespace::NONE), None);
        r.watermark(100).unwrap();
        let mut fired = texts(&r.take_output());
        fired.sort();
        assert_eq!(fired, ["timer 1 10", "timer 1 30", "timer 2 20", "wm NULL 100"]);
    }

    #[test]
    fn a_rescaled_restore_keeps_the_key_groups_of_the_new_subtask() {
        let builder = Probe { late_side: false };
        let mut h = OperatorHarness::new(&builder).unwrap();
        let rows: Vec<[Datum<'static>; 2]> = (0..40).map(|k| rec(k, 1_000 + k)).collect();
        h.process_rows(&rows).unwrap();
        let snap = h.checkpoint(3).unwrap();
        let mut seen = 0;
        for subtask in 0..2 {
            let task = task_info(subtask, 2, DEFAULT_MAX_PARALLELISM);
            let mut r = OperatorHarness::restore(&builder, task, std::slice::from_ref(&snap)).unwrap();
            let groups = r.task().key_groups();
            for t in r.event_timers() {
                let group = crate::key::key_group(crate::key::hash_key(&t.key), DEFAULT_MAX_PARALLELISM);
                assert!(groups.contains(group), "subtask {subtask} got key {:?} of group {group}", t.key);
                seen += 1;
            }
        }
        assert_eq!(seen, 40, "every timer is restored exactly once");
    }

    #[test]
    fn listing_timers_keeps_them_and_their_key_ids() {
        /// Keys that live through their timers alone (no state).
        struct TimersOnly;
        impl Operator for TimersOnly {
            fn process_batch(&mut self, input: &Batch, ctx: &mut Context<'_>) -> Result<()> {
                let st = ctx.state()?;
                for r in input.rows() {
                    st.set_current_key(r);
                    let t = r.int(1).unwrap_or(0);
                    st.register_event_timer(t, Namespace::NONE);
                    st.register_processing_timer(t + 5, Namespace::window(0, 1));
                }
                Ok(())
            }
            fn on_timer(&mut self, timer: Timer, ctx: &mut Context<'_>) -> Result<()> {
                let key = ctx.state()?.current_key()[0].as_datum().as_int();
                ctx.emit(&[key.map_or(Datum::Null, Datum::Int), Datum::Int(timer.time)]);
                Ok(())
            }
        }
        let s = schema(&[("key", DataType::Int), ("time", DataType::Int)]);
        let keys: Arc<dyn KeySelector> = Arc::new(FieldKeys(vec![0]));
        let mut h =
            OperatorHarness::from_operator(Box::new(TimersOnly), s, Vec::new(), Some(keys), task_info(0, 1, 128))
                .unwrap();
        h.process_rows(&[rec(1, 30), rec(2, 10), rec(3, 20), rec(1, 10), rec(4, 40)]).unwrap();
        let ids = |h: &mut OperatorHarness| -> Vec<u32> {
            (1..=4).map(|k| h.state_for(&rec(k, 0)).unwrap().current_key_id()).collect()
        };
        let before = ids(&mut h);
        let timers = h.event_timers();
        let listed: Vec<(i64, i64)> =
            timers.iter().map(|t| (t.time, t.key[0].as_datum().as_int().unwrap_or(0))).collect();
        assert_eq!(listed.iter().map(|t| t.0).collect::<Vec<_>>(), [10, 10, 20, 30, 40]);
        assert_eq!(h.processing_timers().len(), 5);
        assert_eq!(h.event_timers(), timers, "listing changes nothing");
        assert_eq!(ids(&mut h), before, "every key keeps its id");
        assert_eq!(h.state().unwrap().timer_count(TimeDomain::EventTime), 5);
        h.watermark(25).unwrap();
        let fired: Vec<i64> = h.take_output().iter().map(|r| r[1].as_datum().as_int().unwrap_or(0)).collect();
        assert_eq!(fired, [10, 10, 20]);
        h.set_processing_time(100).unwrap();
        assert_eq!(h.take_output().len(), 5);
        assert_eq!(h.event_timers().len(), 2);
        assert!(h.processing_timers().is_empty());
    }

    #[test]
    fn a_spilling_backend_gives_the_same_results() {
        use crate::state::MemorySpillBackend;
        let run = |backend: &dyn StateBackend| {
            let task = task_info(0, 1, DEFAULT_MAX_PARALLELISM);
            let mut h = OperatorHarness::with_backend(&Probe { late_side: false }, task, backend).unwrap();
            for round in 0..5 {
                let rows: Vec<[Datum<'static>; 2]> = (0..50).map(|k| rec(k, 100 * round + k)).collect();
                h.process_rows(&rows).unwrap();
                h.watermark(100 * round + 25).unwrap();
            }
            h.end_of_input().unwrap();
            let mut out = texts(&h.take_output());
            out.sort();
            out
        };
        assert_eq!(run(&MemorySpillBackend { cache_entries: 8 }), run(&HeapBackend));
    }

    #[test]
    fn checkpoint_ids_must_increase_and_none_emits_after_the_end() {
        let mut h = OperatorHarness::new(&Probe { late_side: false }).unwrap();
        h.checkpoint(2).unwrap();
        assert!(h.checkpoint(2).unwrap_err().to_string().contains("ids must increase"));
        h.end_of_input().unwrap();
        h.take_output();
        h.checkpoint(3).unwrap();
        assert!(h.output().is_empty(), "no on_checkpoint after the end of the input, as in the runtime");
    }
}
