//! Session windows: per key, activity separated by gaps; windows merge as records fill the gaps.
//!
//! A record at `t` opens the window `[t, t + gap)`; windows of a key that overlap or touch merge into one
//! (Flink's `MergingWindowSet`), their accumulators folded together with `AggregateCall::merge`, so a
//! session keeps accumulators, never records. A key's sessions (few, sorted by start, pairwise apart) sit
//! in one [`Sessions`] value of keyed state, so a record costs one state probe.
//!
//! Timers: Flink moves a session's timer whenever the session grows, i.e. nearly every record. Here a
//! key has at most one firing timer, at the earliest moment one of its sessions is due (`end - 1` to
//! fire, `end - 1 + allowed_lateness` to be cleared); a session that grows leaves the timer where it is.
//! When it goes off, every session of the key that is due fires (or is cleared) and the timer is set for
//! the next one. A record only moves the timer when its session is due earlier than the timer (e.g. an
//! out-of-order record opening an earlier session). Results are the same as Flink's; only the number of
//! timer operations differs.
//!
//! Lateness as in Flink: a record is late when its window `[t, t + gap)` is past the allowed lateness
//! and merges with no live session. A record that merges into a session which has fired (still kept for
//! the allowed lateness) fires it again at once, when the merged session's end has passed.
use super::assigner::{sessions_merge, Assigner};
use super::emit::{new_accumulators, reset, send_late, Emitter};
use super::group::{KeyGroups, FIRST};
use super::trigger::next_every;
use super::{TimeMode, WindowSpecPlan};
use crate::expr::{Accumulator, KeyExprs};
use eddy_api::state::{KeyedState, Namespace, StateDescriptor, TimeDomain, Timer, ValueState};
use eddy_api::{Batch, Context, EddyError, OpenContext, Operator, Result};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One session of one key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Session {
    /// First timestamp.
    pub start: i64,
    /// Last timestamp plus the gap (exclusive).
    pub end: i64,
    /// Records added since the last firing.
    pub pending: u64,
    /// Whether its end-of-window firing happened (it is then only kept for the allowed lateness).
    pub fired: bool,
    /// One accumulator per aggregate.
    pub accs: Vec<Accumulator>,
}

/// All sessions of one key, and its timers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Sessions {
    /// Sorted by start; no two merge.
    pub list: Vec<Session>,
    /// The registered firing timer.
    pub timer: Option<i64>,
    /// The registered early-firing timer (`every` trigger), in processing time.
    pub early: Option<i64>,
}

/// Namespace of the state and the firing timer of a key.
const FIRE: Namespace = Namespace::NONE;
/// Namespace of the early-firing timer of a key.
const EARLY: Namespace = Namespace::window(i64::MIN, i64::MIN);

/// The `window` operator for session windows.
pub struct SessionWindows {
    spec: Arc<WindowSpecPlan>,
    gap: i64,
    /// Event time (else processing time).
    event: bool,
    sessions: Option<ValueState<Sessions>>,
    emitter: Emitter,
    late_rows: Vec<usize>,
    groups: KeyGroups,
    order: Vec<u32>,
    /// Emptied accumulator lists and session lists, reused (no allocation per session or key).
    acc_pool: Vec<Vec<Accumulator>>,
    list_pool: Vec<Vec<Session>>,
    ending: bool,
}

/// At most this many lists of each kind wait in the pools.
const POOL: usize = 256;

impl SessionWindows {
    /// An instance for one subtask.
    pub fn new(spec: Arc<WindowSpecPlan>, keys: Option<Arc<KeyExprs>>) -> Self {
        let gap = match spec.assigner {
            Assigner::Session { gap } => gap,
            _ => 1,
        };
        let event = spec.time != Some(TimeMode::Processing);
        let emitter = Emitter::new(spec.key_len);
        SessionWindows {
            spec,
            gap,
            event,
            sessions: None,
            emitter,
            late_rows: Vec::new(),
            groups: KeyGroups::new(keys),
            order: Vec::new(),
            acc_pool: Vec::new(),
            list_pool: Vec::new(),
            ending: false,
        }
    }

    fn handle(&self) -> Result<ValueState<Sessions>> {
        self.sessions.ok_or_else(|| EddyError::internal("window used before open"))
    }

    fn register(&self, st: &mut KeyedState, time: i64) {
        if self.event {
            st.register_event_timer(time, FIRE);
        } else {
            st.register_processing_timer(time, FIRE);
        }
    }

    fn delete(&self, st: &mut KeyedState, time: i64) {
        if self.event {
            st.delete_event_timer(time, FIRE);
        } else {
            st.delete_processing_timer(time, FIRE);
        }
    }

    /// Adds a record at `ts` to the current key's sessions, or returns false when it is late.
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        st: &mut KeyedState,
        out: &mut Batch,
        handle: ValueState<Sessions>,
        row: eddy_api::Row<'_>,
        ts: i64,
        wm: i64,
        now: i64,
    ) -> bool {
        let spec = &*self.spec;
        let calls = &*spec.calls;
        let (start, end) = (ts, ts.saturating_add(self.gap));
        if self.event && end.saturating_sub(1).saturating_add(spec.lateness) <= wm {
            // Late, unless it merges with a session that is still kept.
            let merges = handle
                .get(st, FIRE)
                .is_some_and(|set| set.list.iter().any(|s| sessions_merge((s.start, s.end), (start, end))));
            if !merges {
                return false;
            }
        }
        let mut created = false;
        let list_pool = &mut self.list_pool;
        let set = handle.get_or_insert_with(st, FIRE, || {
            created = true;
            Sessions { list: list_pool.pop().unwrap_or_default(), timer: None, early: None }
        });
        // The sessions that merge with the new window are contiguous in start order.
        let (mut first, mut last) = (None, 0);
        for (j, s) in set.list.iter().enumerate() {
            if s.start > end {
                break;
            }
            if s.end >= start {
                first.get_or_insert(j);
                last = j;
            }
        }
        let idx = match first {
            None => {
                let pos = set.list.partition_point(|s| s.start < start);
                let accs = self.acc_pool.pop().unwrap_or_else(|| new_accumulators(calls));
                set.list.insert(pos, Session { start, end, pending: 0, fired: false, accs });
                pos
            }
            Some(f) => {
                if last > f {
                    let (head, tail) = set.list.split_at_mut(f + 1);
                    let target = &mut head[f];
                    for other in &tail[..last - f] {
                        for (c, (a, b)) in calls.iter().zip(target.accs.iter_mut().zip(&other.accs)) {
                            c.merge(a, b);
                        }
                        target.pending += other.pending;
                        target.end = target.end.max(other.end);
                    }
                    for gone in set.list.drain(f + 1..=last) {
                        recycle_accs(&mut self.acc_pool, calls, gone.accs);
                    }
                }
                let s = &mut set.list[f];
                s.start = s.start.min(start);
                s.end = s.end.max(end);
                f
            }
        };
        let s = &mut set.list[idx];
        for (c, a) in calls.iter().zip(s.accs.iter_mut()) {
            c.update(a, row);
        }
        s.pending += 1;
        // The merged session is a new window: it fires at its end, or at once if the watermark is past it
        // (a record within the allowed lateness).
        s.fired = false;
        let fire_now = self.event && s.end.saturating_sub(1) <= wm;
        let early = spec.trigger.count().is_some_and(|n| s.pending >= n);
        let due =
            if fire_now { s.end.saturating_sub(1).saturating_add(spec.lateness) } else { s.end.saturating_sub(1) };
        let old = set.timer;
        let move_timer = old.is_none_or(|t| due < t);
        if move_timer {
            set.timer = Some(due);
        }
        let early_timer = match spec.trigger.every() {
            Some(interval) if created => {
                let t = next_every(now, interval);
                set.early = Some(t);
                Some(t)
            }
            _ => None,
        };
        if move_timer {
            if let Some(o) = old {
                self.delete(st, o);
            }
            self.register(st, due);
        }
        if let Some(t) = early_timer {
            st.register_processing_timer(t, EARLY);
        }
        if fire_now || early {
            self.emitter.set_key(st.current_key());
            if let Some(s) = handle.get_mut(st, FIRE).and_then(|set| set.list.get_mut(idx)) {
                if spec.trigger.emits(s.pending, fire_now) {
                    self.emitter.row(out, Some((s.start, s.end)), calls, &s.accs);
                    s.pending = 0;
                    if spec.trigger.purge {
                        reset(calls, &mut s.accs);
                    }
                }
                s.fired |= fire_now;
            }
        }
        true
    }

    /// The firing timer of the current key: fires and clears its due sessions, sets the next timer.
    fn fire_due(&mut self, st: &mut KeyedState, out: &mut Batch, popped: i64, clock: i64) -> Result<()> {
        let handle = self.handle()?;
        let spec = &*self.spec;
        let calls = &*spec.calls;
        let lateness = spec.lateness;
        self.emitter.set_key(st.current_key());
        let Some(set) = handle.get_mut(st, FIRE) else { return Ok(()) };
        if set.timer == Some(popped) {
            set.timer = None;
        }
        let mut next: Option<i64> = None;
        let mut j = 0;
        while j < set.list.len() {
            let s = &mut set.list[j];
            let last = s.end.saturating_sub(1);
            if !s.fired && last <= clock {
                if spec.trigger.emits(s.pending, true) {
                    self.emitter.row(out, Some((s.start, s.end)), calls, &s.accs);
                }
                s.pending = 0;
                if spec.trigger.purge {
                    reset(calls, &mut s.accs);
                }
                s.fired = true;
            }
            if s.fired && last.saturating_add(lateness) <= clock {
                let gone = set.list.remove(j);
                recycle_accs(&mut self.acc_pool, calls, gone.accs);
                continue;
            }
            let due = if s.fired { last.saturating_add(lateness) } else { last };
            next = Some(next.map_or(due, |n| n.min(due)));
            j += 1;
        }
        if set.list.is_empty() {
            let early = set.early;
            let timer = set.timer;
            if let Some(gone) = handle.take(st, FIRE) {
                if self.list_pool.len() < POOL {
                    self.list_pool.push(gone.list);
                }
            }
            if let Some(t) = early {
                st.delete_processing_timer(t, EARLY);
            }
            if let Some(t) = timer {
                self.delete(st, t);
            }
            return Ok(());
        }
        let Some(n) = next else { return Ok(()) };
        match set.timer {
            Some(t) if t <= n => {}
            old => {
                set.timer = Some(n);
                if let Some(o) = old {
                    self.delete(st, o);
                }
                self.register(st, n);
            }
        }
        Ok(())
    }

    /// The early-firing timer of the current key: emits its open sessions that have news.
    fn fire_early(&mut self, st: &mut KeyedState, out: &mut Batch, popped: i64) -> Result<()> {
        let handle = self.handle()?;
        let Some(interval) = self.spec.trigger.every() else { return Ok(()) };
        let spec = &*self.spec;
        self.emitter.set_key(st.current_key());
        let Some(set) = handle.get_mut(st, FIRE) else { return Ok(()) };
        if set.early != Some(popped) {
            return Ok(()); // superseded
        }
        if self.ending {
            set.early = None;
            return Ok(());
        }
        for s in set.list.iter_mut().filter(|s| !s.fired && s.pending > 0) {
            self.emitter.row(out, Some((s.start, s.end)), &spec.calls, &s.accs);
            s.pending = 0;
            if spec.trigger.purge {
                reset(&spec.calls, &mut s.accs);
            }
        }
        let next = popped.saturating_add(interval);
        set.early = Some(next);
        st.register_processing_timer(next, EARLY);
        Ok(())
    }

    fn timer(&mut self, timer: Timer, st: &mut KeyedState, out: &mut Batch, wm: i64, now: i64) -> Result<()> {
        match (timer.domain, timer.namespace == EARLY) {
            (TimeDomain::ProcessingTime, true) => self.fire_early(st, out, timer.time),
            (TimeDomain::EventTime, false) if self.event => {
                let clock = if self.ending { i64::MAX } else { wm.max(timer.time) };
                self.fire_due(st, out, timer.time, clock)
            }
            (TimeDomain::ProcessingTime, false) if !self.event => {
                let clock = if self.ending { i64::MAX } else { now.max(timer.time) };
                self.fire_due(st, out, timer.time, clock)
            }
            _ => Ok(()),
        }
    }
}

/// Keeps the accumulator list of a finished or merged-away session for a new one.
#[inline]
fn recycle_accs(pool: &mut Vec<Vec<Accumulator>>, calls: &[crate::expr::AggregateCall], mut accs: Vec<Accumulator>) {
    if pool.len() < POOL {
        reset(calls, &mut accs);
        pool.push(accs);
    }
}

impl Operator for SessionWindows {
    fn open(&mut self, ctx: &mut OpenContext<'_>) -> Result<()> {
        self.sessions = Some(ctx.state()?.value(StateDescriptor::new("sessions"))?);
        Ok(())
    }

    fn process_batch(&mut self, input: &Batch, ctx: &mut Context<'_>) -> Result<()> {
        let handle = self.handle()?;
        let (wm, now) = (ctx.current_watermark(), ctx.processing_time());
        let spec = self.spec.clone();
        self.late_rows.clear();
        let mut order = std::mem::take(&mut self.order);
        self.groups.order(input, &mut order);
        {
            let (st, out) = ctx.state_and_batch()?;
            let mut key_set = false;
            for &e in &order {
                let i = (e & !FIRST) as usize;
                key_set &= e & FIRST == 0;
                let row = input.row(i);
                let ts = if self.event {
                    match row.int(spec.ts_field) {
                        Some(ts) => ts,
                        None => {
                            self.late_rows.push(i);
                            continue;
                        }
                    }
                } else {
                    now
                };
                if !key_set {
                    st.set_current_key(row);
                    key_set = true;
                }
                if !self.add(st, out, handle, row, ts, wm, now) {
                    self.late_rows.push(i);
                }
            }
        }
        self.order = order;
        send_late(ctx, input, &mut self.late_rows, spec.late_output)
    }

    fn on_timer(&mut self, timer: Timer, ctx: &mut Context<'_>) -> Result<()> {
        let (wm, now) = (ctx.current_watermark(), ctx.processing_time());
        let (st, out) = ctx.state_and_batch()?;
        self.timer(timer, st, out, wm, now)
    }

    fn on_end_of_input(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        // Event-time sessions fired on the final watermark; processing-time sessions fire now.
        self.ending = true;
        let (st, out) = ctx.state_and_batch()?;
        while let Some(timer) = st.pop_processing_timer(i64::MAX) {
            self.timer(timer, st, out, i64::MAX, i64::MAX)?;
        }
        Ok(())
    }
}
