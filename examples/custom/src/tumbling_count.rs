//! `tumbling_count`: records per key and tumbling event-time window, with late records on a side output.
//! A hand-written twin of the built-in
//! `{ type: window, config: { window: { tumbling: SIZE }, aggregate: { count: "count(*)" }, late_output: late } }`
//! (allowed lateness 0), to show that a custom operator has everything a built-in window uses: keyed
//! state per window, event-time timers, side outputs and late-record metrics.
//!
//! ```yaml
//! per_auction:  { type: tumbling_count, inputs: [bids], config: { key_by: [auction], size: 1s, late_output: late } }
//! late_bids:    { type: file, inputs: [per_auction.late], config: { path: out/late.jsonl } }
//! ```
//!
//! A record with event time `t` belongs to the window `[t - t mod size, + size)`: its count lives in
//! value state under the window's namespace, and one event-time timer per key and window (registering it
//! again per record collapses into one) fires at `end - 1`, emits the count and clears it. A record whose
//! window has fired already (`end - 1 <= watermark`), or that has no event time, is late: it goes to the
//! side output, or is dropped when none is declared, and is counted either way.
//!
//! Output: the key fields, `window_start`, `window_end` (`timestamp_ms`; the output's event time), `count`.
use crate::fields;
use eddy_api::config::ConfigDuration;
use eddy_api::key::FieldKeys;
use eddy_api::operator::InputPartitioning;
use eddy_api::state::{Namespace, StateDescriptor, Timer, ValueState};
use eddy_api::{
    Batch, Context, DataType, Datum, Diagnostic, Diagnostics, EddyError, Field, OpenContext, Operator, OperatorBuilder,
    PlanContext, Result, Schema, SchemaRef, Spanned, TaskInfo,
};
use serde::Deserialize;
use std::sync::Arc;

/// Config of `tumbling_count`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TumblingCountConfig {
    /// The key fields, e.g. `[auction]`.
    pub key_by: Spanned<Vec<Spanned<String>>>,
    /// The window length, e.g. `10s`.
    pub size: Spanned<ConfigDuration>,
    /// Name of a side output for late records (input schema), read as `inputs: [node.NAME]`; without
    /// it late records are dropped (and counted in the metrics).
    #[serde(default)]
    pub late_output: Option<Spanned<String>>,
}

/// The planned `tumbling_count`.
pub struct TumblingCountBuilder {
    output: SchemaRef,
    input: SchemaRef,
    late: Option<String>,
    keys: Arc<FieldKeys>,
    time: usize,
    size: i64,
}

/// Checks the key fields, the event time and the size; derives the output schema.
pub fn plan(cfg: TumblingCountConfig, ctx: &PlanContext<'_>) -> Result<TumblingCountBuilder, Diagnostics> {
    let input = ctx.single_input()?;
    let schema = &input.schema;
    let mut diags = Diagnostics::new();
    let what = "tumbling_count";
    if cfg.key_by.value.is_empty() {
        diags.push(Diagnostic::at(cfg.key_by.span, format!("{what}: `key_by` is empty")));
    }
    let keys: Option<Vec<usize>> =
        cfg.key_by.value.iter().map(|k| fields::find(schema, &input.name, k, what, &[], &mut diags)).collect();
    let size = fields::millis(&cfg.size, &format!("{what}: `size`"), &mut diags);
    let time = schema.event_time();
    if time.is_none() {
        diags.push(
            Diagnostic::at(ctx.span, format!("{what}: the input `{}` has no event time", input.name))
                .with_hint("declare it on the source: `event_time: { field: date_time, max_out_of_orderness: 2s }`"),
        );
    }
    if let Some(l) = &cfg.late_output {
        if l.value.is_empty() || l.value.contains('.') || l.value.contains(char::is_whitespace) {
            diags.push(
                Diagnostic::at(l.span, format!("{what}: `late_output: {}` is not a usable name", l.value))
                    .with_hint("a side output is read as `inputs: [node.NAME]`: use a plain name such as `late`"),
            );
        }
    }
    match (keys, size, time, diags.is_empty()) {
        (Some(keys), Some(size), Some(time), true) => {
            let mut out: Vec<Field> = keys.iter().map(|&k| schema.fields()[k].clone()).collect();
            out.push(Field::new("window_start", DataType::Timestamp));
            out.push(Field::new("window_end", DataType::Timestamp));
            out.push(Field::new("count", DataType::Int));
            let end = out.len() - 2;
            Ok(TumblingCountBuilder {
                output: Arc::new(Schema::new(out).with_event_time(Some(end))),
                input: schema.clone(),
                late: cfg.late_output.map(|l| l.value),
                keys: Arc::new(FieldKeys(keys)),
                time,
                size,
            })
        }
        _ => Err(diags),
    }
}

impl OperatorBuilder for TumblingCountBuilder {
    fn output_schema(&self) -> SchemaRef {
        self.output.clone()
    }

    fn input_partitioning(&self) -> InputPartitioning {
        InputPartitioning::Hash(self.keys.clone())
    }

    fn side_outputs(&self) -> Vec<(String, SchemaRef)> {
        self.late.iter().map(|name| (name.clone(), self.input.clone())).collect()
    }

    fn build(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        Ok(Box::new(TumblingCount { time: self.time, size: self.size, late: self.late.is_some(), count: None }))
    }
}

/// One subtask of `tumbling_count`.
struct TumblingCount {
    time: usize,
    size: i64,
    /// Whether side output 0 (late records) is declared.
    late: bool,
    count: Option<ValueState<i64>>,
}

impl Operator for TumblingCount {
    fn open(&mut self, ctx: &mut OpenContext<'_>) -> Result<()> {
        self.count = Some(ctx.state()?.value(StateDescriptor::new("count"))?);
        Ok(())
    }

    fn process_batch(&mut self, input: &Batch, ctx: &mut Context<'_>) -> Result<()> {
        let count = self.count.ok_or_else(|| EddyError::internal("tumbling_count used before open"))?;
        let wm = ctx.current_watermark();
        for r in input.rows() {
            let window = r.int(self.time).map(|t| {
                let start = t - t.rem_euclid(self.size);
                Namespace::window(start, start.saturating_add(self.size))
            });
            match window {
                Some(w) if w.end - 1 > wm => {
                    let st = ctx.state()?;
                    st.set_current_key(r);
                    *count.get_or_insert_with(st, w, || 0) += 1;
                    st.register_event_timer(w.end - 1, w);
                }
                // Its window has fired (or it has no event time): late.
                _ if self.late => {
                    ctx.side_output(0)?.push_row_from(r);
                    ctx.record_late(0, 1);
                }
                _ => ctx.record_late(1, 0),
            }
        }
        Ok(())
    }

    fn on_timer(&mut self, timer: Timer, ctx: &mut Context<'_>) -> Result<()> {
        let count = self.count.ok_or_else(|| EddyError::internal("tumbling_count used before open"))?;
        let (st, out) = ctx.state_and_batch()?;
        let Some(n) = count.take(st, timer.namespace) else { return Ok(()) };
        for k in st.current_key() {
            out.push(k.as_datum());
        }
        out.push(Datum::Timestamp(timer.namespace.start));
        out.push(Datum::Timestamp(timer.namespace.end));
        out.push_int(n);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_api::operator::LateCounts;
    use eddy_api::registry::InputInfo;
    use eddy_api::testing::{row, OperatorHarness};
    use eddy_api::Span;
    use std::time::Duration;

    fn builder(late: bool) -> TumblingCountBuilder {
        let f = Field::new;
        let schema = Schema::new(vec![f("auction", DataType::Int), f("date_time", DataType::Timestamp)])
            .with_event_time(Some(1));
        let inputs = [InputInfo { name: "bids".into(), schema: Arc::new(schema), key: None }];
        let ctx = PlanContext {
            job: "test",
            node: "per_auction",
            span: Span::new(1, 1),
            parallelism: 1,
            inputs: &inputs,
            checkpointing: false,
        };
        let cfg = TumblingCountConfig {
            key_by: Spanned::new(Span::new(2, 2), vec![Spanned::new(Span::new(2, 3), "auction".into())]),
            size: Spanned::new(Span::new(3, 3), ConfigDuration(Duration::from_secs(1))),
            late_output: late.then(|| Spanned::new(Span::new(4, 4), "late".into())),
        };
        plan(cfg, &ctx).unwrap_or_else(|d| panic!("{d:?}"))
    }

    fn bid(auction: i64, t: i64) -> [Datum<'static>; 2] {
        [Datum::Int(auction), Datum::Timestamp(t)]
    }

    fn count(auction: i64, start: i64, n: i64) -> Vec<eddy_api::OwnedDatum> {
        row(&[Datum::Int(auction), Datum::Timestamp(start), Datum::Timestamp(start + 1_000), Datum::Int(n)])
    }

    #[test]
    fn counts_per_key_and_window_fire_at_the_window_end() {
        let mut h = OperatorHarness::new(&builder(true)).unwrap();
        h.process_rows(&[bid(1, 100), bid(1, 900), bid(2, 999), bid(1, 1_000), bid(1, 1_500)]).unwrap();
        assert_eq!(h.event_timers().len(), 3, "one timer per key and window, however many records");
        h.watermark(998).unwrap();
        assert!(h.output().is_empty());
        h.watermark(999).unwrap();
        let mut out = h.take_output();
        out.sort_by_key(|r| r[0].to_string());
        assert_eq!(out, [count(1, 0, 2), count(2, 0, 1)]);
        h.end_of_input().unwrap();
        assert_eq!(h.take_output(), [count(1, 1_000, 2)]);
        assert_eq!(h.state().unwrap().entry_count(), 0);
    }

    #[test]
    fn records_for_fired_windows_go_to_the_late_output() {
        let mut h = OperatorHarness::new(&builder(true)).unwrap();
        h.process_rows(&[bid(1, 100)]).unwrap();
        h.watermark(1_200).unwrap();
        h.take_output();
        h.process_rows(&[bid(1, 999), bid(1, 1_999), bid(3, 50), [Datum::Int(4), Datum::Null]]).unwrap();
        assert_eq!(
            h.take_side_output("late").unwrap(),
            [row(&bid(1, 999)), row(&bid(3, 50)), row(&[Datum::Int(4), Datum::Null])]
        );
        assert_eq!(h.late_counts(), LateCounts { dropped: 0, side_output: 3 });
        h.end_of_input().unwrap();
        assert_eq!(h.take_output(), [count(1, 1_000, 1)]);

        let mut h = OperatorHarness::new(&builder(false)).unwrap();
        h.watermark(5_000).unwrap();
        h.process_rows(&[bid(1, 100)]).unwrap();
        assert_eq!(h.late_counts(), LateCounts { dropped: 1, side_output: 0 });
        assert!(h.side_output("late").is_err());
    }
}
