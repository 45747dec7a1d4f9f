//! `interval_join`: joins a left record at time `t` with every right record of the same key whose time
//! lies in `[t + lower, t + upper]` (bounds inclusive), as Flink's `a.intervalJoin(b).between(..)`.
//!
//! ```yaml
//! outbid:
//!   type: interval_join
//!   inputs: [bids, bids]               # left, right; both need `event_time` upstream
//!   config:
//!     key_by: [auction]                # fields or expressions both inputs have, with equal types
//!     between: [1ms, 100ms]            # lower <= upper; negative bounds look back: [-5s, 10s]
//!     where: "right_price > left_price"  # optional, over the output fields
//!     time_field: event_time           # the joined record's time: max(left time, right time)
//!     allowed_lateness: 1s             # default 0: records up to this far behind the watermark still join
//!     late_output: late                # side outputs late_left / late_right for records later than that
//! ```
//!
//! Output: the key fields, the left non-key fields, the right non-key fields (see the [module](super)
//! doc for the naming rule), then `time_field` (default `event_time`), a timestamp holding the later of
//! the two records' times; it is the output's event-time attribute, and never late downstream without
//! `allowed_lateness` (the later record was not late here); with it, a pair made by a record within
//! the lateness may be behind the watermark downstream too.
//!
//! State per key: each side's rows (non-key fields, owned) in a `BTreeMap` by time, so a record probes
//! the other side with one range lookup. A record is joined on arrival with the other side's buffered
//! rows in range, then buffered itself with a cleanup timer at the last time a partner can still come:
//! `t + upper` for a left row, `t - lower` for a right row, plus the allowed lateness. A record at or
//! behind the watermark minus the allowed lateness is late (counted, and dropped or sent to
//! `late_output`), so once the watermark reaches that time no future partner can match, and the timer
//! removes the row. Every matching pair is emitted exactly once, by whichever record arrives
//! second.
use super::{
    compile_where, plan_join, signed_millis, state_selector, Emitter, JoinPlan, KeyRow, Lateness, Side, StoredRow,
};
use eddy_api::config::ConfigDuration;
use eddy_api::operator::InputPartitioning;
use eddy_api::registry::PlanContext;
use eddy_api::state::{Namespace, StateDescriptor, Timer, ValueState};
use eddy_api::{
    Batch, Context, DataType, Datum, Diagnostic, Diagnostics, EddyError, Field, KeySelector, OpenContext, Operator,
    OperatorBuilder, Result, SchemaRef, Spanned, TaskInfo,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Config of `interval_join`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntervalJoinConfig {
    /// Key fields or expressions that both inputs have, with equal types; omit when both inputs come
    /// from `key_by` nodes with the same key.
    #[serde(default)]
    pub key_by: Option<Vec<Spanned<String>>>,
    /// `[lower, upper]`: a right record joins a left record at `t` when its time is in
    /// `[t + lower, t + upper]`, e.g. `[-5s, 10s]`.
    pub between: Spanned<Vec<Spanned<String>>>,
    /// An optional condition over the output fields; pairs for which it is not true are not emitted.
    #[serde(default, rename = "where")]
    pub predicate: Option<Spanned<String>>,
    /// Name of the output field with the joined record's time (default `event_time`).
    #[serde(default)]
    pub time_field: Option<Spanned<String>>,
    /// How far behind the watermark (in event time) a record may be and still join (default 0); rows
    /// are kept that much longer.
    #[serde(default)]
    pub allowed_lateness: Option<Spanned<ConfigDuration>>,
    /// Name of the side outputs for records later than that: `NAME_left` and `NAME_right` (each with its
    /// input's schema), read as `inputs: [node.NAME_left]`; without it such records are dropped and
    /// counted in the metrics.
    #[serde(default)]
    pub late_output: Option<Spanned<String>>,
}

/// What every subtask shares.
struct Shared {
    join: JoinPlan,
    lower: i64,
    upper: i64,
    predicate: Option<crate::expr::Expr>,
    lateness: Lateness,
}

/// The planned `interval_join`.
pub struct IntervalJoinBuilder {
    shared: Arc<Shared>,
}

impl IntervalJoinBuilder {
    /// The bounds `(lower, upper)` in ms.
    pub fn bounds(&self) -> (i64, i64) {
        (self.shared.lower, self.shared.upper)
    }
}

fn bounds(between: &Spanned<Vec<Spanned<String>>>) -> Result<(i64, i64), Diagnostics> {
    let [lower, upper] = between.value.as_slice() else {
        let d = Diagnostic::at(
            between.span,
            format!("interval_join: `between` takes two durations, [lower, upper], got {}", between.value.len()),
        );
        return Err(d.with_hint("e.g. `between: [-5s, 10s]`").into());
    };
    let (lo, hi) = match (signed_millis(lower), signed_millis(upper)) {
        (Ok(lo), Ok(hi)) => (lo, hi),
        (a, b) => return Err(Diagnostics(a.err().into_iter().chain(b.err()).collect())),
    };
    if lo > hi {
        let d = Diagnostic::at(
            between.span,
            format!("interval_join: the lower bound `{}` is above the upper bound `{}`", lower.value, upper.value),
        );
        return Err(d.with_hint("write `between: [lower, upper]` with lower <= upper").into());
    }
    Ok((lo, hi))
}

/// Checks the inputs, key and bounds, and derives the output schema.
pub fn plan(cfg: IntervalJoinConfig, ctx: &PlanContext<'_>) -> Result<IntervalJoinBuilder, Diagnostics> {
    let mut diags = Diagnostics::new();
    let bounds = bounds(&cfg.between).map_err(|d| diags.extend(d.0)).ok();
    let time_name = cfg.time_field.as_ref().map_or("event_time", |t| t.value.as_str());
    if time_name.trim().is_empty() {
        let span = cfg.time_field.as_ref().map_or(ctx.span, |t| t.span);
        diags.push(Diagnostic::at(span, "interval_join: `time_field` is empty"));
    }
    let last = Field::new(time_name, DataType::Timestamp);
    let join = plan_join("interval_join", cfg.key_by, &[], Some(last), ctx).map_err(|d| diags.extend(d.0)).ok();
    let lateness = Lateness::plan("interval_join", cfg.allowed_lateness.as_ref(), cfg.late_output.as_ref(), ctx)
        .map_err(|d| diags.extend(d.0))
        .ok();
    let (Some((lower, upper)), Some(join), Some(lateness)) = (bounds, join, lateness) else { return Err(diags) };
    diags.into_result(())?;
    let predicate = compile_where(cfg.predicate.as_ref(), &join.schema)?;
    Ok(IntervalJoinBuilder { shared: Arc::new(Shared { join, lower, upper, predicate, lateness }) })
}

impl OperatorBuilder for IntervalJoinBuilder {
    fn output_schema(&self) -> SchemaRef {
        self.shared.join.schema.clone()
    }

    fn input_partitioning(&self) -> InputPartitioning {
        InputPartitioning::Hash(self.shared.join.left.keys.clone())
    }

    fn input_partitioning_for(&self, port: usize) -> InputPartitioning {
        let side = if port == 0 { &self.shared.join.left } else { &self.shared.join.right };
        InputPartitioning::Hash(side.keys.clone())
    }

    fn state_key(&self) -> Option<Arc<dyn KeySelector>> {
        Some(state_selector(self.shared.join.key_len))
    }

    fn side_outputs(&self) -> Vec<(String, SchemaRef)> {
        self.shared.lateness.sides.clone()
    }

    fn build(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        let width = self.shared.join.schema.len();
        Ok(Box::new(IntervalJoin {
            shared: self.shared.clone(),
            buffers: None,
            key: KeyRow::new(self.shared.join.key_len),
            emitter: Emitter::new(self.shared.predicate.clone(), width),
            late_rows: Vec::new(),
        }))
    }
}

/// The rows of one key still waiting for partners, per side, by event time.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Buffers {
    left: BTreeMap<i64, Vec<StoredRow>>,
    right: BTreeMap<i64, Vec<StoredRow>>,
}

impl Buffers {
    fn is_empty(&self) -> bool {
        self.left.is_empty() && self.right.is_empty()
    }
}

/// Removes the entries at or before `last`.
fn drop_through(map: &mut BTreeMap<i64, Vec<StoredRow>>, last: i64) {
    match last.checked_add(1) {
        Some(first_kept) => *map = map.split_off(&first_kept),
        None => map.clear(),
    }
}

struct IntervalJoin {
    shared: Arc<Shared>,
    /// Declared in `open`.
    buffers: Option<ValueState<Buffers>>,
    key: KeyRow,
    emitter: Emitter,
    /// Scratch: positions of the late rows of the batch at hand.
    late_rows: Vec<usize>,
}

impl Operator for IntervalJoin {
    fn open(&mut self, ctx: &mut OpenContext<'_>) -> Result<()> {
        self.buffers = Some(ctx.state()?.value(StateDescriptor::new("buffers"))?);
        Ok(())
    }

    fn process_batch(&mut self, input: &Batch, ctx: &mut Context<'_>) -> Result<()> {
        let state = self.buffers.ok_or_else(|| EddyError::internal("interval_join used before open"))?;
        let shared = self.shared.clone();
        let (lower, upper) = (shared.lower, shared.upper);
        let port = ctx.input_port();
        let side = Side::of_port(port)?;
        let lateness = shared.lateness.allowed;
        let me = match side {
            Side::Left => &shared.join.left,
            Side::Right => &shared.join.right,
        };
        let wm = ctx.current_watermark();
        self.late_rows.clear();
        for (i, row) in input.rows().enumerate() {
            let ts = me.time_of(row);
            if ts == i64::MIN || ts.saturating_add(lateness) <= wm {
                self.late_rows.push(i);
                continue;
            }
            let mut buf = {
                let st = ctx.state()?;
                if !self.key.set_current(&me.keys, row, st) {
                    continue;
                }
                state.take(st, Namespace::NONE).unwrap_or_default()
            };
            // The other side's times that match, and the last time a partner of this row can come.
            let (lo, hi, last) = match side {
                Side::Left => (ts.saturating_add(lower), ts.saturating_add(upper), ts.saturating_add(upper)),
                Side::Right => (ts.saturating_sub(upper), ts.saturating_sub(lower), ts.saturating_sub(lower)),
            };
            let cleanup = last.saturating_add(lateness);
            let (others, mine) = match side {
                Side::Left => (&buf.right, &mut buf.left),
                Side::Right => (&buf.left, &mut buf.right),
            };
            let out = ctx.batch();
            for (&other_ts, rows) in others.range(lo..=hi) {
                let time = ts.max(other_ts);
                for other in rows {
                    let b = self.emitter.target(out);
                    self.key.row().iter().for_each(|k| b.push(k));
                    let this = me.cols.iter().map(|&i| row.get(i));
                    match side {
                        Side::Left => {
                            this.for_each(|v| b.push(v));
                            other.iter().for_each(|v| b.push(v.as_datum()));
                        }
                        Side::Right => {
                            other.iter().for_each(|v| b.push(v.as_datum()));
                            this.for_each(|v| b.push(v));
                        }
                    }
                    b.push(Datum::Timestamp(time));
                    self.emitter.finish(out);
                }
            }
            let keep = cleanup > wm;
            if keep {
                mine.entry(ts).or_default().push(me.store(row));
            }
            let st = ctx.state()?;
            if !buf.is_empty() {
                state.set(st, Namespace::NONE, buf);
            }
            if keep {
                st.register_event_timer(cleanup, Namespace::NONE);
            }
        }
        let late = std::mem::take(&mut self.late_rows);
        let r = shared.lateness.send(ctx, input, port, &late);
        self.late_rows = late;
        r
    }

    fn on_timer(&mut self, timer: Timer, ctx: &mut Context<'_>) -> Result<()> {
        let state = self.buffers.ok_or_else(|| EddyError::internal("interval_join used before open"))?;
        let st = ctx.state()?;
        let Some(mut buf) = state.take(st, Namespace::NONE) else { return Ok(()) };
        // The timer is at a row's last partner time plus the lateness.
        let t = timer.time.saturating_sub(self.shared.lateness.allowed);
        // Left rows at l can still meet right rows up to l + upper; right rows at r left rows up to r - lower.
        drop_through(&mut buf.left, t.saturating_sub(self.shared.upper));
        drop_through(&mut buf.right, t.saturating_add(self.shared.lower));
        if !buf.is_empty() {
            state.set(st, Namespace::NONE, buf);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_through_keeps_later_times() {
        let mut m: BTreeMap<i64, Vec<StoredRow>> = [(1, vec![]), (5, vec![]), (9, vec![])].into_iter().collect();
        drop_through(&mut m, 5);
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), [9]);
        drop_through(&mut m, i64::MAX);
        assert!(m.is_empty());
    }
}
