//! `window_join`: joins two keyed inputs on equal keys within the same event-time window, as Flink's
//! `a.join(b).where(..).equalTo(..).window(..)`: an inner join per key and window.
//!
//! ```yaml
//! same_window:
//!   type: window_join
//!   inputs: [google, apple]            # left, right; both need `event_time` upstream
//!   config:
//!     key_by: [auction]                # fields or expressions both inputs have, with equal types
//!     window: { tumbling: 100ms }      # or { sliding: 10s, slide: 5s }
//!     where: "left_price < right_price"  # optional, over the output fields
//!     allowed_lateness: 50ms           # default 0: a fired window still joins records this much later
//!     late_output: late                # side outputs late_left / late_right for records later than that
//! ```
//!
//! Output: the key fields, `window_start`, `window_end` (timestamps, end exclusive), the left non-key
//! fields, then the right non-key fields (see the [module](super) doc for the naming rule).
//! `window_end` is the output's event-time attribute, as for `window`: a downstream window or join can
//! use it, and it is never late there when the pair came out at the window's firing.
//!
//! Each side's rows are buffered in list state per key and window (their non-key fields, owned); an
//! event-time timer at window end - 1 emits every left x right pair of the window. Without allowed
//! lateness it clears both lists too, so nothing stays behind once the window has fired. With
//! `allowed_lateness`, the lists stay until a second timer at end - 1 + lateness, and a record arriving
//! for a fired window in between is joined on arrival with the other side's rows of that window and
//! kept for later arrivals. Unlike Flink, which fires the whole window again (repeating every pair), a
//! late firing emits only the new pairs: every pair comes out exactly once. A record all of whose
//! windows are past their lateness is late: counted, and dropped or sent to `late_output`.
use super::{
    compile_where, duration_millis, plan_join, state_selector, Emitter, JoinPlan, KeyRow, Lateness, Side, StoredRow,
};
use eddy_api::config::ConfigDuration;
use eddy_api::operator::InputPartitioning;
use eddy_api::registry::PlanContext;
use eddy_api::state::{ListState, Namespace, StateDescriptor, Timer};
use eddy_api::{
    Batch, Context, DataType, Datum, Diagnostic, Diagnostics, EddyError, Field, KeySelector, OpenContext, Operator,
    OperatorBuilder, Result, SchemaRef, Spanned, TaskInfo,
};
use serde::Deserialize;
use std::sync::Arc;

/// Most windows one record may belong to (`sliding` / `slide`); more is almost surely a typo.
pub const MAX_WINDOWS_PER_RECORD: i64 = 1000;

/// Config of `window_join`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowJoinConfig {
    /// Key fields or expressions that both inputs have, with equal types; omit when both inputs come
    /// from `key_by` nodes with the same key.
    #[serde(default)]
    pub key_by: Option<Vec<Spanned<String>>>,
    /// The windows: `{ tumbling: 10s }` or `{ sliding: 10s, slide: 5s }`.
    pub window: Spanned<WindowSpec>,
    /// An optional condition over the output fields; pairs for which it is not true are not emitted.
    #[serde(default, rename = "where")]
    pub predicate: Option<Spanned<String>>,
    /// How long after a window fired (in event time) records may still join in it (default 0); each
    /// such record emits its new pairs at once.
    #[serde(default)]
    pub allowed_lateness: Option<Spanned<ConfigDuration>>,
    /// Name of the side outputs for records later than the allowed lateness: `NAME_left` and
    /// `NAME_right` (each with its input's schema), read as `inputs: [node.NAME_left]`; without it such
    /// records are dropped and counted in the metrics.
    #[serde(default)]
    pub late_output: Option<Spanned<String>>,
}

/// `window:` of a window join.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// Size of tumbling (back-to-back) windows.
    #[serde(default)]
    pub tumbling: Option<Spanned<ConfigDuration>>,
    /// Size of sliding windows (with `slide`).
    #[serde(default)]
    pub sliding: Option<Spanned<ConfigDuration>>,
    /// How far apart sliding windows start.
    #[serde(default)]
    pub slide: Option<Spanned<ConfigDuration>>,
}

/// Event-time windows `[start, start + size)` starting at every multiple of `slide` (from the epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Windows {
    /// Window length in ms.
    pub size: i64,
    /// Distance between window starts in ms (= size for tumbling windows).
    pub slide: i64,
}

impl Windows {
    /// The windows that contain `ts`, latest first, as namespaces `[start, end)`.
    pub fn of(&self, ts: i64) -> impl Iterator<Item = Namespace> + '_ {
        let last = ts - ts.rem_euclid(self.slide);
        let floor = ts.saturating_sub(self.size);
        std::iter::successors(Some(last), move |s| s.checked_sub(self.slide))
            .take_while(move |&s| s > floor)
            .map(move |s| Namespace::window(s, s.saturating_add(self.size)))
    }

    /// Parses and checks `window:`.
    fn plan(spec: &Spanned<WindowSpec>) -> Result<Windows, Diagnostics> {
        let w = &spec.value;
        let positive = |d: &Spanned<ConfigDuration>, what: &str| -> Result<i64, Diagnostic> {
            let ms = duration_millis(d.value, d.span)?;
            if ms <= 0 {
                return Err(Diagnostic::at(d.span, format!("window_join: `{what}` must be longer than 0")));
            }
            Ok(ms)
        };
        let hint = "write `window: { tumbling: 10s }` or `window: { sliding: 10s, slide: 5s }`";
        let windows = match (&w.tumbling, &w.sliding, &w.slide) {
            (Some(size), None, None) => {
                let size = positive(size, "tumbling")?;
                Windows { size, slide: size }
            }
            (None, Some(size), Some(slide)) => {
                let (size, slide_ms) = (positive(size, "sliding"), positive(slide, "slide"));
                let (size, slide_ms) = match (size, slide_ms) {
                    (Ok(a), Ok(b)) => (a, b),
                    (a, b) => return Err(Diagnostics(a.err().into_iter().chain(b.err()).collect())),
                };
                let per_record = size / slide_ms + i64::from(size % slide_ms != 0);
                if per_record > MAX_WINDOWS_PER_RECORD {
                    let d = Diagnostic::at(
                        slide.span,
                        format!(
                            "window_join: every record would be in {per_record} windows (more than \
                             {MAX_WINDOWS_PER_RECORD})"
                        ),
                    )
                    .with_hint("make `slide` a larger fraction of the window");
                    return Err(d.into());
                }
                Windows { size, slide: slide_ms }
            }
            (None, Some(_), None) => {
                return Err(Diagnostic::at(spec.span, "window_join: sliding windows need `slide`")
                    .with_hint(hint)
                    .into())
            }
            (Some(_), Some(_), _) => {
                let d = Diagnostic::at(spec.span, "window_join: `tumbling` and `sliding` exclude each other");
                return Err(d.with_hint(hint).into());
            }
            (Some(_), None, Some(s)) => {
                let d = Diagnostic::at(s.span, "window_join: `slide` belongs to sliding windows");
                return Err(d.with_hint(hint).into());
            }
            (None, None, _) => {
                return Err(Diagnostic::at(spec.span, "window_join: `window` needs a kind").with_hint(hint).into())
            }
        };
        Ok(windows)
    }
}

/// What every subtask shares.
struct Shared {
    join: JoinPlan,
    windows: Windows,
    predicate: Option<crate::expr::Expr>,
    lateness: Lateness,
}

/// The planned `window_join`.
pub struct WindowJoinBuilder {
    shared: Arc<Shared>,
}

/// Checks the inputs, key and window, and derives the output schema.
pub fn plan(cfg: WindowJoinConfig, ctx: &PlanContext<'_>) -> Result<WindowJoinBuilder, Diagnostics> {
    let windows = Windows::plan(&cfg.window);
    let middle = [Field::new("window_start", DataType::Timestamp), Field::new("window_end", DataType::Timestamp)];
    let join = plan_join("window_join", cfg.key_by, &middle, None, ctx);
    let lateness = Lateness::plan("window_join", cfg.allowed_lateness.as_ref(), cfg.late_output.as_ref(), ctx);
    let (windows, mut join, lateness) = match (windows, join, lateness) {
        (Ok(w), Ok(j), Ok(l)) => (w, j, l),
        (w, j, l) => {
            let mut d = Diagnostics::new();
            d.extend(w.err().into_iter().flat_map(|d| d.0));
            d.extend(j.err().into_iter().flat_map(|d| d.0));
            d.extend(l.err().into_iter().flat_map(|d| d.0));
            return Err(d);
        }
    };
    // `window_end` (after the key fields and `window_start`) is the output's event time.
    join.schema = Arc::new(join.schema.as_ref().clone().with_event_time(Some(join.key_len + 1)));
    let predicate = compile_where(cfg.predicate.as_ref(), &join.schema)?;
    Ok(WindowJoinBuilder { shared: Arc::new(Shared { join, windows, predicate, lateness }) })
}

impl WindowJoinBuilder {
    /// The window assignment.
    pub fn windows(&self) -> Windows {
        self.shared.windows
    }
}

impl OperatorBuilder for WindowJoinBuilder {
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
        Ok(Box::new(WindowJoin {
            shared: self.shared.clone(),
            lists: None,
            key: KeyRow::new(self.shared.join.key_len),
            windows: Vec::new(),
            fired: Vec::new(),
            late_rows: Vec::new(),
            emitter: Emitter::new(self.shared.predicate.clone(), width),
        }))
    }
}

struct WindowJoin {
    shared: Arc<Shared>,
    /// Left and right rows per key and window (declared in `open`).
    lists: Option<(ListState<StoredRow>, ListState<StoredRow>)>,
    key: KeyRow,
    /// Scratch: the open windows of the record at hand.
    windows: Vec<Namespace>,
    /// Scratch: its windows that fired but are within the allowed lateness.
    fired: Vec<Namespace>,
    /// Scratch: positions of the late rows of the batch at hand.
    late_rows: Vec<usize>,
    emitter: Emitter,
}

impl WindowJoin {
    fn lists(&self) -> Result<(ListState<StoredRow>, ListState<StoredRow>)> {
        self.lists.ok_or_else(|| EddyError::internal("window_join used before open"))
    }
}

impl Operator for WindowJoin {
    fn open(&mut self, ctx: &mut OpenContext<'_>) -> Result<()> {
        let st = ctx.state()?;
        self.lists = Some((st.list(StateDescriptor::new("left"))?, st.list(StateDescriptor::new("right"))?));
        Ok(())
    }

    fn process_batch(&mut self, input: &Batch, ctx: &mut Context<'_>) -> Result<()> {
        let (left, right) = self.lists()?;
        let shared = self.shared.clone();
        let port = ctx.input_port();
        let this = Side::of_port(port)?;
        let (side, list, other) = match this {
            Side::Left => (&shared.join.left, left, right),
            Side::Right => (&shared.join.right, right, left),
        };
        let lateness = shared.lateness.allowed;
        let wm = ctx.current_watermark();
        self.late_rows.clear();
        for (i, row) in input.rows().enumerate() {
            let ts = side.time_of(row);
            if ts == i64::MIN {
                self.late_rows.push(i);
                continue;
            }
            self.windows.clear();
            self.fired.clear();
            let mut any = false;
            for ns in shared.windows.of(ts) {
                any = true;
                // A window fires at end - 1 and is gone once the watermark is past that plus the lateness.
                let fire = ns.end - 1;
                if fire > wm {
                    self.windows.push(ns);
                } else if fire.saturating_add(lateness) > wm {
                    self.fired.push(ns);
                }
            }
            if self.windows.is_empty() && self.fired.is_empty() {
                if any {
                    self.late_rows.push(i);
                }
                continue;
            }
            let (st, out) = ctx.state_and_batch()?;
            if !self.key.set_current(&side.keys, row, st) {
                continue;
            }
            let stored = side.store(row);
            for &ns in &self.windows {
                list.add(st, ns, stored.clone());
                st.register_event_timer(ns.end - 1, ns);
                if lateness > 0 {
                    st.register_event_timer((ns.end - 1).saturating_add(lateness), ns);
                }
            }
            let key: StoredRow = if self.fired.is_empty() { StoredRow::default() } else { st.current_key().into() };
            for &ns in &self.fired {
                // A late firing: only the pairs this record makes (the rest came out already). The
                // window may have had no rows when it fired, hence no cleanup timer yet.
                st.register_event_timer((ns.end - 1).saturating_add(lateness), ns);
                for partner in other.get(st, ns) {
                    let (l, r) = match this {
                        Side::Left => (&stored, partner),
                        Side::Right => (partner, &stored),
                    };
                    emit_pair(&mut self.emitter, out, &key, ns, l, r);
                }
                list.add(st, ns, stored.clone());
            }
        }
        let late = std::mem::take(&mut self.late_rows);
        let r = shared.lateness.send(ctx, input, port, &late);
        self.late_rows = late;
        r
    }

    fn on_timer(&mut self, timer: Timer, ctx: &mut Context<'_>) -> Result<()> {
        let (left, right) = self.lists()?;
        let ns = timer.namespace;
        let lateness = self.shared.lateness.allowed;
        let (st, out) = ctx.state_and_batch()?;
        if timer.time != ns.end - 1 {
            // The end of the allowed lateness: the window is gone.
            left.clear(st, ns);
            right.clear(st, ns);
            return Ok(());
        }
        let key: StoredRow = st.current_key().into();
        // Without lateness the firing is the window's last moment; with it the rows stay for late ones.
        let (lrows, rrows) = if lateness == 0 {
            (left.take(st, ns), right.take(st, ns))
        } else {
            (left.get(st, ns).to_vec(), right.get(st, ns).to_vec())
        };
        for l in &lrows {
            for r in &rrows {
                emit_pair(&mut self.emitter, out, &key, ns, l, r);
            }
        }
        Ok(())
    }
}

/// Writes one joined row: key, window bounds, left fields, right fields (through the `where`).
fn emit_pair(emitter: &mut Emitter, out: &mut Batch, key: &StoredRow, ns: Namespace, l: &StoredRow, r: &StoredRow) {
    let b = emitter.target(out);
    key.iter().for_each(|k| b.push(k.as_datum()));
    b.push(Datum::Timestamp(ns.start));
    b.push(Datum::Timestamp(ns.end));
    l.iter().chain(r.iter()).for_each(|v| b.push(v.as_datum()));
    emitter.finish(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts(w: Windows, ts: i64) -> Vec<(i64, i64)> {
        w.of(ts).map(|n| (n.start, n.end)).collect()
    }

    #[test]
    fn windows_contain_their_records() {
        let t = Windows { size: 10, slide: 10 };
        assert_eq!(starts(t, 0), [(0, 10)]);
        assert_eq!(starts(t, 9), [(0, 10)]);
        assert_eq!(starts(t, 10), [(10, 20)]);
        assert_eq!(starts(t, -1), [(-10, 0)]);
        let s = Windows { size: 10, slide: 5 };
        assert_eq!(starts(s, 7), [(5, 15), (0, 10)]);
        assert_eq!(starts(s, 5), [(5, 15), (0, 10)]);
        assert_eq!(starts(s, 4), [(0, 10), (-5, 5)]);
        let gaps = Windows { size: 5, slide: 10 };
        assert_eq!(starts(gaps, 3), [(0, 5)]);
        assert!(starts(gaps, 7).is_empty(), "between windows");
        assert_eq!(starts(t, i64::MAX).len(), 1, "no overflow at the end of time");
    }
}
