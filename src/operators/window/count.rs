//! Count windows: per key, a result every `slide` records over the last `size` records (Flink's
//! `countWindow(size, slide)`: a count trigger with a count evictor).
//!
//! The evictor needs the last `size` records, but only through their aggregates: the records of a key
//! are cut into panes of `gcd(size, slide)` records, each pane one list of accumulators, and a firing
//! merges the last `size / gcd` panes (`AggregateCall::merge`). So a key keeps at most `size / gcd`
//! accumulator lists and never a record; tumbling count windows (`slide == size`) keep one. As in Flink,
//! a window fires when its count is reached: an incomplete tumbling window is not emitted at the end of
//! the input, and a sliding one emits over fewer records until `size` have arrived. Rows carry NULL
//! window bounds.
use super::assigner::{gcd, Assigner};
use super::emit::{new_accumulators, reset, Emitter};
use super::group::{KeyGroups, FIRST};
use super::WindowSpecPlan;
use crate::expr::{Accumulator, KeyExprs};
use eddy_api::state::{Namespace, StateDescriptor, ValueState};
use eddy_api::{Batch, Context, EddyError, OpenContext, Operator, Result};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;

/// The recent records of one key, as panes of accumulators.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CountPanes {
    /// Oldest first; the last one is being filled.
    pub panes: VecDeque<Vec<Accumulator>>,
    /// Records in the last pane.
    pub in_pane: u64,
    /// Records since the last firing.
    pub since_fire: u64,
}

/// The `window` operator for count windows.
pub struct CountWindows {
    spec: Arc<WindowSpecPlan>,
    slide: u64,
    pane_size: u64,
    max_panes: usize,
    state: Option<ValueState<CountPanes>>,
    emitter: Emitter,
    /// Scratch accumulators for merging panes.
    merged: Vec<Accumulator>,
    groups: KeyGroups,
    order: Vec<u32>,
}

impl CountWindows {
    /// An instance for one subtask.
    pub fn new(spec: Arc<WindowSpecPlan>, keys: Option<Arc<KeyExprs>>) -> Self {
        let (size, slide) = match spec.assigner {
            Assigner::Count { size, slide } => (size.max(1), slide.clamp(1, size.max(1))),
            _ => (1, 1),
        };
        let pane_size = gcd(size, slide);
        let max_panes = usize::try_from(size / pane_size).unwrap_or(usize::MAX);
        let emitter = Emitter::new(spec.key_len);
        let merged = new_accumulators(&spec.calls);
        CountWindows {
            spec,
            slide,
            pane_size,
            max_panes,
            state: None,
            emitter,
            merged,
            groups: KeyGroups::new(keys),
            order: Vec::new(),
        }
    }

    fn handle(&self) -> Result<ValueState<CountPanes>> {
        self.state.ok_or_else(|| EddyError::internal("window used before open"))
    }
}

impl Operator for CountWindows {
    fn open(&mut self, ctx: &mut OpenContext<'_>) -> Result<()> {
        self.state = Some(ctx.state()?.value(StateDescriptor::new("count_panes"))?);
        Ok(())
    }

    fn process_batch(&mut self, input: &Batch, ctx: &mut Context<'_>) -> Result<()> {
        let handle = self.handle()?;
        let spec = self.spec.clone();
        let calls = &*spec.calls;
        let mut order = std::mem::take(&mut self.order);
        self.groups.order(input, &mut order);
        let (st, out) = ctx.state_and_batch()?;
        let mut key_set = false;
        for &e in &order {
            let i = (e & !FIRST) as usize;
            key_set &= e & FIRST == 0;
            let row = input.row(i);
            if !key_set {
                st.set_current_key(row);
                key_set = true;
            }
            let s = handle.get_or_insert_with(st, Namespace::NONE, CountPanes::default);
            if s.panes.is_empty() || s.in_pane >= self.pane_size {
                if s.panes.len() >= self.max_panes {
                    // The evictor: the oldest pane leaves, its buffers are reused.
                    if let Some(mut old) = s.panes.pop_front() {
                        reset(calls, &mut old);
                        s.panes.push_back(old);
                    }
                } else {
                    s.panes.push_back(new_accumulators(calls));
                }
                s.in_pane = 0;
            }
            if let Some(pane) = s.panes.back_mut() {
                for (c, a) in calls.iter().zip(pane.iter_mut()) {
                    c.update(a, row);
                }
            }
            s.in_pane += 1;
            s.since_fire += 1;
            if s.since_fire < self.slide {
                continue;
            }
            self.emitter.set_key(st.current_key());
            if self.max_panes == 1 {
                // Tumbling: the window is complete and goes.
                if let Some(pane) = handle.take(st, Namespace::NONE).and_then(|mut s| s.panes.pop_back()) {
                    self.emitter.row(out, None, calls, &pane);
                }
                continue;
            }
            let Some(s) = handle.get_mut(st, Namespace::NONE) else { continue };
            s.since_fire = 0;
            reset(calls, &mut self.merged);
            for pane in &s.panes {
                for (c, (a, b)) in calls.iter().zip(self.merged.iter_mut().zip(pane)) {
                    c.merge(a, b);
                }
            }
            self.emitter.row(out, None, calls, &self.merged);
        }
        self.order = order;
        Ok(())
    }
}
