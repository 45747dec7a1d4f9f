//! Tumbling, sliding and global windows: one [`Pane`] of accumulators per key and window in keyed state.
//!
//! Per batch, rows are grouped by key ([`group`](super::group)) so each key is made current once; per
//! record, its windows are assigned from its timestamp ([`assigner`]) and each window's accumulators are
//! updated in place (one state probe per window, no allocation: a new window takes an emptied
//! accumulator list from a small pool that cleared windows return theirs to). A new window registers
//! its timers:
//! - event time: a timer at `end - 1` fires it when the watermark gets there, and one at `end - 1 +
//!   allowed_lateness` clears it (the same timer when the lateness is 0). A record for a window that has
//!   fired but is not yet cleared updates it and fires it again at once (a late firing). A record whose
//!   windows are all past `end - 1 + allowed_lateness` is late: it goes to the late side output, or is
//!   dropped, and is counted either way;
//! - processing time: a processing-time timer at `end - 1` fires and clears it;
//! - global windows: a timer at the end of time, which the final watermark of a bounded input fires.
//!
//! Early firings ([`trigger`](super::trigger)) come from a per-window count, or a processing-time timer
//! per window. At the end of a bounded input, pending processing-time windows fire too.
use super::assigner::{self, max_timestamp, Assigner};
use super::emit::{new_accumulators, reset, send_late, Emitter};
use super::group::{KeyGroups, FIRST};
use super::trigger::next_every;
use super::{TimeMode, WindowSpecPlan};
use crate::expr::{Accumulator, KeyExprs};
use eddy_api::state::{KeyedState, Namespace, StateDescriptor, TimeDomain, Timer, ValueState};
use eddy_api::{Batch, Context, EddyError, OpenContext, Operator, Result, Row};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The state of one window of one key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pane {
    /// One accumulator per aggregate.
    pub accs: Vec<Accumulator>,
    /// Records added since the last firing.
    pub pending: u64,
    /// The pending early-firing timer (`every` trigger), in processing time.
    pub early: Option<i64>,
}

/// What drives the windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Clock {
    Event,
    Processing,
    Global,
}

/// The `window` operator for tumbling, sliding and global windows.
pub struct TimeWindows {
    spec: Arc<WindowSpecPlan>,
    clock: Clock,
    panes: Option<ValueState<Pane>>,
    emitter: Emitter,
    /// Rows of the current batch that are late, sent on after the state is released.
    late_rows: Vec<usize>,
    /// The batch's rows grouped by key, and the order to process them in.
    groups: KeyGroups,
    order: Vec<u32>,
    /// Emptied accumulator lists of cleared windows, reused by new ones (no allocation per window).
    pool: Vec<Vec<Accumulator>>,
    /// Set while the end of the input drains the processing-time timers.
    ending: bool,
}

/// At most this many accumulator lists wait in the pool.
const POOL: usize = 256;

/// How a firing treats the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Firing {
    /// Early, or late (within the allowed lateness): emits if something is new.
    Update,
    /// The end-of-window firing; the window stays for late records.
    Final,
    /// The end-of-window firing, and the window is cleared.
    FinalAndClear,
}

impl TimeWindows {
    /// An instance for one subtask.
    pub fn new(spec: Arc<WindowSpecPlan>, keys: Option<Arc<KeyExprs>>) -> Self {
        let clock = match (spec.assigner, spec.time) {
            (Assigner::Global, _) => Clock::Global,
            (_, Some(TimeMode::Processing)) => Clock::Processing,
            _ => Clock::Event,
        };
        let emitter = Emitter::new(spec.key_len);
        TimeWindows {
            spec,
            clock,
            panes: None,
            emitter,
            late_rows: Vec::new(),
            groups: KeyGroups::new(keys),
            order: Vec::new(),
            pool: Vec::new(),
            ending: false,
        }
    }

    fn handle(&self) -> Result<ValueState<Pane>> {
        self.panes.ok_or_else(|| EddyError::internal("window used before open"))
    }

    /// Whether window `ns` no longer takes records (event time only).
    #[inline]
    fn is_late(&self, ns: Namespace, wm: i64) -> bool {
        self.clock == Clock::Event && max_timestamp(ns).saturating_add(self.spec.lateness) <= wm
    }

    /// Adds `row` to window `ns` of the current key; registers the timers of a new window and fires an
    /// early or late firing when one is due.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        st: &mut KeyedState,
        out: &mut Batch,
        panes: ValueState<Pane>,
        row: Row<'_>,
        ns: Namespace,
        wm: i64,
        now: i64,
    ) {
        let spec = &*self.spec;
        let calls = &*spec.calls;
        let clock = self.clock;
        let max_ts = max_timestamp(ns);
        let every = spec.trigger.every();
        let mut created = false;
        let pool = &mut self.pool;
        let pane = panes.get_or_insert_with(st, ns, || {
            created = true;
            let early = every.map(|i| next_every(now, i)).filter(|&t| clock != Clock::Processing || t < max_ts);
            Pane { accs: pool.pop().unwrap_or_else(|| new_accumulators(calls)), pending: 0, early }
        });
        for (c, a) in calls.iter().zip(pane.accs.iter_mut()) {
            c.update(a, row);
        }
        pane.pending += 1;
        let early_fire = spec.trigger.count().is_some_and(|n| pane.pending >= n);
        let early_at = pane.early;
        if created {
            match clock {
                Clock::Event => {
                    if max_ts > wm {
                        st.register_event_timer(max_ts, ns);
                    }
                    let cleanup = max_ts.saturating_add(spec.lateness);
                    if cleanup != max_ts {
                        st.register_event_timer(cleanup, ns);
                    }
                }
                Clock::Processing => st.register_processing_timer(max_ts, ns),
                Clock::Global => st.register_event_timer(max_ts, ns),
            }
            if let Some(t) = early_at {
                st.register_processing_timer(t, ns);
            }
        }
        // A window the watermark has passed fired already: this record is within the allowed lateness
        // and fires it again with the updated result.
        let late_fire = clock == Clock::Event && max_ts <= wm;
        if early_fire || late_fire {
            self.fire(st, out, panes, ns, Firing::Update);
        }
    }

    /// Emits window `ns` of the current key if the trigger says so, and resets or clears it.
    fn fire(&mut self, st: &mut KeyedState, out: &mut Batch, panes: ValueState<Pane>, ns: Namespace, how: Firing) {
        let spec = &*self.spec;
        let bounds = (self.clock != Clock::Global).then_some((ns.start, ns.end));
        let last = how != Firing::Update;
        self.emitter.set_key(st.current_key());
        if how == Firing::FinalAndClear {
            let Some(pane) = panes.take(st, ns) else { return };
            if let Some(t) = pane.early {
                st.delete_processing_timer(t, ns);
            }
            if spec.trigger.emits(pane.pending, last) {
                self.emitter.row(out, bounds, &spec.calls, &pane.accs);
            }
            self.recycle(pane.accs);
            return;
        }
        let Some(pane) = panes.get_mut(st, ns) else { return };
        if !spec.trigger.emits(pane.pending, last) {
            return;
        }
        self.emitter.row(out, bounds, &spec.calls, &pane.accs);
        pane.pending = 0;
        if spec.trigger.purge {
            reset(&spec.calls, &mut pane.accs);
        }
    }

    /// Keeps the accumulator list of a cleared window for a new one.
    #[inline]
    fn recycle(&mut self, mut accs: Vec<Accumulator>) {
        if self.pool.len() < POOL {
            reset(&self.spec.calls, &mut accs);
            self.pool.push(accs);
        }
    }

    /// Adds the rows of a batch, in grouped `order`, noting the late ones.
    #[allow(clippy::too_many_arguments)]
    fn add_batch(
        &mut self,
        input: &Batch,
        order: &[u32],
        ctx: &mut Context<'_>,
        panes: ValueState<Pane>,
        spec: &WindowSpecPlan,
        wm: i64,
        now: i64,
    ) -> Result<()> {
        let (st, out) = ctx.state_and_batch()?;
        let mut key_set = false;
        for &e in order {
            let i = (e & !FIRST) as usize;
            key_set &= e & FIRST == 0;
            let row = input.row(i);
            let ts = match self.clock {
                Clock::Event => match row.int(spec.ts_field) {
                    Some(ts) => ts,
                    None => {
                        // No event time: the record cannot be placed in any window.
                        self.late_rows.push(i);
                        continue;
                    }
                },
                Clock::Processing => now,
                Clock::Global => 0,
            };
            match spec.assigner {
                Assigner::Tumbling { size } => {
                    let ns = assigner::tumbling(ts, size);
                    if self.is_late(ns, wm) {
                        self.late_rows.push(i);
                        continue;
                    }
                    if !key_set {
                        st.set_current_key(row);
                        key_set = true;
                    }
                    self.add(st, out, panes, row, ns, wm, now);
                }
                Assigner::Sliding { size, slide } => {
                    // The latest window ends last: when even it is late, all are.
                    let latest = assigner::last_sliding_start(ts, slide);
                    if self.is_late(Namespace::window(latest, latest.saturating_add(size)), wm) {
                        self.late_rows.push(i);
                        continue;
                    }
                    if !key_set {
                        st.set_current_key(row);
                        key_set = true;
                    }
                    assigner::sliding(ts, size, slide, |ns| {
                        if !self.is_late(ns, wm) {
                            self.add(st, out, panes, row, ns, wm, now);
                        }
                    });
                }
                Assigner::Global => {
                    if !key_set {
                        st.set_current_key(row);
                        key_set = true;
                    }
                    self.add(st, out, panes, row, Namespace::NONE, wm, now);
                }
                Assigner::Session { .. } | Assigner::Count { .. } => {
                    return Err(EddyError::internal("time window operator built for another window kind"));
                }
            }
        }
        Ok(())
    }

    /// A due timer of the current key.
    fn timer(&mut self, timer: Timer, st: &mut KeyedState, out: &mut Batch, wm: i64) -> Result<()> {
        let panes = self.handle()?;
        let ns = timer.namespace;
        let max_ts = max_timestamp(ns);
        match (timer.domain, self.clock) {
            (TimeDomain::EventTime, Clock::Event | Clock::Global) => {
                let cleanup = max_ts.saturating_add(self.spec.lateness);
                if timer.time == max_ts {
                    let how = if cleanup == max_ts { Firing::FinalAndClear } else { Firing::Final };
                    self.fire(st, out, panes, ns, how);
                } else if timer.time == cleanup {
                    if let Some(pane) = panes.take(st, ns) {
                        if let Some(t) = pane.early {
                            st.delete_processing_timer(t, ns);
                        }
                        self.recycle(pane.accs);
                    }
                }
            }
            (TimeDomain::ProcessingTime, Clock::Processing) if timer.time == max_ts => {
                self.fire(st, out, panes, ns, Firing::FinalAndClear);
            }
            (TimeDomain::ProcessingTime, _) => {
                let Some(interval) = self.spec.trigger.every() else { return Ok(()) };
                let Some(pane) = panes.get_mut(st, ns) else { return Ok(()) };
                if pane.early != Some(timer.time) {
                    return Ok(()); // superseded
                }
                let next = timer.time.saturating_add(interval);
                let keep = !self.ending
                    && match self.clock {
                        Clock::Event => max_ts > wm,
                        Clock::Processing => next < max_ts,
                        Clock::Global => true,
                    };
                pane.early = keep.then_some(next);
                if keep {
                    st.register_processing_timer(next, ns);
                }
                if !self.ending {
                    self.fire(st, out, panes, ns, Firing::Update);
                }
            }
            (TimeDomain::EventTime, Clock::Processing) => {}
        }
        Ok(())
    }
}

impl Operator for TimeWindows {
    fn open(&mut self, ctx: &mut OpenContext<'_>) -> Result<()> {
        self.panes = Some(ctx.state()?.value(StateDescriptor::new("window"))?);
        Ok(())
    }

    fn process_batch(&mut self, input: &Batch, ctx: &mut Context<'_>) -> Result<()> {
        let panes = self.handle()?;
        let (wm, now) = (ctx.current_watermark(), ctx.processing_time());
        let spec = self.spec.clone();
        self.late_rows.clear();
        let mut order = std::mem::take(&mut self.order);
        self.groups.order(input, &mut order);
        let r = self.add_batch(input, &order, ctx, panes, &spec, wm, now);
        self.order = order;
        r?;
        send_late(ctx, input, &mut self.late_rows, spec.late_output)
    }

    fn on_timer(&mut self, timer: Timer, ctx: &mut Context<'_>) -> Result<()> {
        let wm = ctx.current_watermark();
        let (st, out) = ctx.state_and_batch()?;
        self.timer(timer, st, out, wm)
    }

    fn on_end_of_input(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        // Event-time and global windows fired on the final watermark; processing-time windows that are
        // still open fire now, and early-firing timers are dropped.
        self.ending = true;
        let (st, out) = ctx.state_and_batch()?;
        while let Some(timer) = st.pop_processing_timer(i64::MAX) {
            self.timer(timer, st, out, i64::MAX)?;
        }
        Ok(())
    }
}
