//! `fraud_detector`: the classic pattern of Flink's fraud-detection walkthrough, in event time. A small
//! transaction (below `small`, a card being tested) immediately followed, on the same account, by a large
//! one (above `threshold`) within `window` raises an alert.
//!
//! ```yaml
//! alerts: { type: fraud_detector, inputs: [txns], config: { threshold: 500 } }
//! ```
//!
//! Per account (the key) one value state holds the last small transaction, if the account's latest
//! transaction was small; an event-time timer at its time + `window` clears it, so state only lives as
//! long as it can matter. Any transaction after a small one disarms the detector (and deletes the
//! timer): the pattern is small *immediately* followed by large, as in Flink's `FraudDetector`.
//!
//! Input: any schema with event time (declared on the source), an account field and a numeric amount.
//! Output: `account` (its input type), `small_time`, `small_amount`, `large_time` (the output's event
//! time), `large_amount`.
use crate::fields;
use eddy_api::config::ConfigDuration;
use eddy_api::key::FieldKeys;
use eddy_api::operator::InputPartitioning;
use eddy_api::state::{Namespace, StateDescriptor, Timer, ValueState};
use eddy_api::{
    Batch, Context, DataType, Datum, Diagnostic, Diagnostics, EddyError, Field, OpenContext, Operator, OperatorBuilder,
    PlanContext, Result, Schema, SchemaRef, Spanned, TaskInfo,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Config of `fraud_detector`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FraudDetectorConfig {
    /// A transaction above this amount, right after a small one, raises an alert. Default 500.00.
    #[serde(default)]
    pub threshold: Option<Spanned<f64>>,
    /// A transaction below this amount is small: it arms the detector for its account. Default 1.00.
    #[serde(default)]
    pub small: Option<Spanned<f64>>,
    /// How long after a small transaction (in event time) a large one still counts. Default `1min`.
    #[serde(default)]
    pub window: Option<Spanned<ConfigDuration>>,
    /// The account field: the key. Default `account`.
    #[serde(default)]
    pub account: Option<Spanned<String>>,
    /// The amount field, `float` or `int`. Default `amount`.
    #[serde(default)]
    pub amount: Option<Spanned<String>>,
}

/// What every subtask needs, checked at plan time.
#[derive(Clone, Copy, Debug)]
struct Params {
    account: usize,
    amount: usize,
    time: usize,
    threshold: f64,
    small: f64,
    window: i64,
}

/// The planned `fraud_detector`.
pub struct FraudDetectorBuilder {
    output: SchemaRef,
    keys: Arc<FieldKeys>,
    params: Params,
}

/// Checks the config against the input: event time, the account and amount fields, the amounts and the
/// window; every problem is reported at once, at its place in the file.
pub fn plan(cfg: FraudDetectorConfig, ctx: &PlanContext<'_>) -> Result<FraudDetectorBuilder, Diagnostics> {
    let input = ctx.single_input()?;
    let schema = &input.schema;
    let mut diags = Diagnostics::new();
    let what = "fraud_detector";
    let account = fields::name_or(cfg.account, "account", ctx.span);
    let amount = fields::name_or(cfg.amount, "amount", ctx.span);
    let account_idx = fields::find(schema, &input.name, &account, what, &[], &mut diags);
    let amount_idx = fields::find(schema, &input.name, &amount, what, &[DataType::Float, DataType::Int], &mut diags);
    let time = schema.event_time();
    if time.is_none() {
        diags.push(
            Diagnostic::at(ctx.span, format!("{what}: the input `{}` has no event time", input.name)).with_hint(
                "declare it on the source, beside `type`: `event_time: { field: time, max_out_of_orderness: 1s }`",
            ),
        );
    }
    let threshold = cfg.threshold.unwrap_or_else(|| Spanned::new(ctx.span, 500.0));
    let small = cfg.small.unwrap_or_else(|| Spanned::new(ctx.span, 1.0));
    if !threshold.value.is_finite() || !small.value.is_finite() {
        diags.push(Diagnostic::at(threshold.span, format!("{what}: `threshold` and `small` must be finite numbers")));
    } else if small.value >= threshold.value {
        diags.push(
            Diagnostic::at(
                threshold.span,
                format!("{what}: `threshold` ({}) must be above `small` ({})", threshold.value, small.value),
            )
            .with_hint("a large transaction is above `threshold`, a small one below `small`"),
        );
    }
    let window = cfg.window.unwrap_or_else(|| Spanned::new(ctx.span, ConfigDuration(Duration::from_secs(60))));
    let window_ms = fields::millis(&window, &format!("{what}: `window`"), &mut diags);
    match (account_idx, amount_idx, time, window_ms, diags.is_empty()) {
        (Some(account), Some(amount), Some(time), Some(window), true) => {
            let key_type = schema.fields()[account].data_type;
            let output = Schema::new(vec![
                Field::new(schema.fields()[account].name.clone(), key_type),
                Field::new("small_time", DataType::Timestamp),
                Field::new("small_amount", DataType::Float),
                Field::new("large_time", DataType::Timestamp),
                Field::new("large_amount", DataType::Float),
            ])
            .with_event_time(Some(3));
            let params = Params { account, amount, time, threshold: threshold.value, small: small.value, window };
            Ok(FraudDetectorBuilder { output: Arc::new(output), keys: Arc::new(FieldKeys(vec![account])), params })
        }
        _ => Err(diags),
    }
}

impl OperatorBuilder for FraudDetectorBuilder {
    fn output_schema(&self) -> SchemaRef {
        self.output.clone()
    }

    /// Transactions of one account go to one subtask; the keyed state is keyed the same way.
    fn input_partitioning(&self) -> InputPartitioning {
        InputPartitioning::Hash(self.keys.clone())
    }

    fn build(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        Ok(Box::new(FraudDetector { params: self.params, armed: None }))
    }
}

/// The last transaction of an account, when it was small.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct Small {
    time: i64,
    amount: f64,
}

/// One subtask of `fraud_detector`.
struct FraudDetector {
    params: Params,
    armed: Option<ValueState<Small>>,
}

impl Operator for FraudDetector {
    fn open(&mut self, ctx: &mut OpenContext<'_>) -> Result<()> {
        self.armed = Some(ctx.state()?.value(StateDescriptor::new("small"))?);
        Ok(())
    }

    fn process_batch(&mut self, input: &Batch, ctx: &mut Context<'_>) -> Result<()> {
        let armed = self.armed.ok_or_else(|| EddyError::internal("fraud_detector used before open"))?;
        let p = self.params;
        let (st, out) = ctx.state_and_batch()?;
        for r in input.rows() {
            // A transaction without an amount or a time cannot be judged: it leaves the account as it is.
            let (Some(amount), Some(time)) = (r.float(p.amount), r.int(p.time)) else { continue };
            st.set_current_key(r);
            if let Some(prev) = armed.take(st, Namespace::NONE) {
                st.delete_event_timer(prev.time.saturating_add(p.window), Namespace::NONE);
                let gap = time.saturating_sub(prev.time);
                if amount > p.threshold && (0..=p.window).contains(&gap) {
                    out.push(r.get(p.account));
                    out.push(Datum::Timestamp(prev.time));
                    out.push_float(prev.amount);
                    out.push(Datum::Timestamp(time));
                    out.push_float(amount);
                }
            }
            if amount < p.small {
                armed.set(st, Namespace::NONE, Small { time, amount });
                // Once the watermark passes this, no large transaction can still be within the window.
                st.register_event_timer(time.saturating_add(p.window), Namespace::NONE);
            }
        }
        Ok(())
    }

    fn on_timer(&mut self, timer: Timer, ctx: &mut Context<'_>) -> Result<()> {
        let armed = self.armed.ok_or_else(|| EddyError::internal("fraud_detector used before open"))?;
        armed.clear(ctx.state()?, timer.namespace);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_api::registry::InputInfo;
    use eddy_api::testing::{row, OperatorHarness};
    use eddy_api::Span;

    fn input() -> InputInfo {
        let f = Field::new;
        let schema = Schema::new(vec![
            f("account", DataType::String),
            f("amount", DataType::Float),
            f("time", DataType::Timestamp),
        ])
        .with_event_time(Some(2));
        InputInfo { name: "txns".into(), schema: Arc::new(schema), key: None }
    }

    fn ctx(inputs: &[InputInfo]) -> PlanContext<'_> {
        PlanContext { job: "test", node: "alerts", span: Span::new(3, 3), parallelism: 1, inputs, checkpointing: false }
    }

    fn harness() -> OperatorHarness {
        let inputs = [input()];
        let builder = plan(FraudDetectorConfig::default(), &ctx(&inputs)).unwrap();
        OperatorHarness::new(&builder).unwrap()
    }

    fn txn(account: &'static str, amount: f64, time: i64) -> [Datum<'static>; 3] {
        [Datum::Str(account), Datum::Float(amount), Datum::Timestamp(time)]
    }

    fn alert(account: &str, small: (i64, f64), large: (i64, f64)) -> Vec<eddy_api::OwnedDatum> {
        row(&[
            Datum::Str(account),
            Datum::Timestamp(small.0),
            Datum::Float(small.1),
            Datum::Timestamp(large.0),
            Datum::Float(large.1),
        ])
    }

    #[test]
    fn small_then_large_within_a_minute_alerts() {
        let mut h = harness();
        h.process_rows(&[txn("a", 0.5, 1_000), txn("b", 0.7, 2_000), txn("a", 600.0, 30_000)]).unwrap();
        assert_eq!(h.take_output(), [alert("a", (1_000, 0.5), (30_000, 600.0))]);
        // a's flag and timer are gone; b's wait for the watermark.
        let timers = h.event_timers();
        assert_eq!(timers.len(), 1);
        assert_eq!((timers[0].time, timers[0].key[0].to_string()), (62_000, "b".to_string()));
    }

    #[test]
    fn the_timer_clears_the_flag_when_the_minute_is_over() {
        let mut h = harness();
        h.process_rows(&[txn("a", 0.5, 1_000)]).unwrap();
        let small = h.state_for(&txn("a", 0.0, 0)).unwrap().value::<Small>(StateDescriptor::new("small")).unwrap();
        assert!(small.get(h.state().unwrap(), Namespace::NONE).is_some());
        h.watermark(60_999).unwrap();
        assert_eq!(h.event_timers().len(), 1, "not yet: the window ends at 61 000");
        h.watermark(61_000).unwrap();
        assert!(h.event_timers().is_empty());
        h.state_for(&txn("a", 0.0, 0)).unwrap();
        assert_eq!(small.get(h.state().unwrap(), Namespace::NONE), None, "cleared by the timer");
        // A large transaction now is not an alert, even though it arrives before any record was late.
        h.process_rows(&[txn("a", 900.0, 61_001)]).unwrap();
        assert!(h.output().is_empty());
        h.close().unwrap();
    }

    #[test]
    fn the_window_is_checked_in_event_time_even_before_the_watermark_gets_there() {
        let mut h = harness();
        // The watermark lags (out-of-orderness): the timer has not fired, but 61 s have passed.
        h.process_rows(&[txn("a", 0.5, 0), txn("a", 700.0, 60_001)]).unwrap();
        assert!(h.output().is_empty());
        h.process_rows(&[txn("c", 0.5, 0), txn("c", 700.0, 60_000)]).unwrap();
        assert_eq!(h.take_output(), [alert("c", (0, 0.5), (60_000, 700.0))], "the window end is inclusive");
    }

    #[test]
    fn only_the_next_transaction_counts_and_accounts_are_separate() {
        let mut h = harness();
        h.process_rows(&[
            txn("a", 0.5, 1_000),
            txn("a", 20.0, 2_000), // disarms: not small, not large
            txn("a", 800.0, 3_000),
            txn("b", 0.1, 4_000),
            txn("c", 900.0, 5_000), // another account
            txn("b", 0.2, 6_000),   // re-arms with the later small one
            txn("b", 501.0, 7_000),
        ])
        .unwrap();
        assert_eq!(h.take_output(), [alert("b", (6_000, 0.2), (7_000, 501.0))]);
        assert!(h.event_timers().is_empty(), "every flag was consumed, so every timer was deleted");
        h.end_of_input().unwrap();
        assert!(h.output().is_empty());
    }

    #[test]
    fn flags_and_timers_survive_a_checkpoint_and_restore() {
        let inputs = [input()];
        let builder = plan(FraudDetectorConfig::default(), &ctx(&inputs)).unwrap();
        let mut h = OperatorHarness::new(&builder).unwrap();
        h.process_rows(&[txn("a", 0.5, 1_000), txn("b", 0.5, 1_000)]).unwrap();
        let snap = h.checkpoint(1).unwrap();
        let mut r = OperatorHarness::restore(&builder, eddy_api::testing::task_info(0, 1, 128), &[snap]).unwrap();
        // The same timers (their order at equal times follows internal key ids).
        let keys = |timers: Vec<eddy_api::testing::PendingTimer>| {
            let mut v: Vec<(i64, String)> = timers.iter().map(|t| (t.time, t.key[0].to_string())).collect();
            v.sort();
            v
        };
        assert_eq!(keys(r.event_timers()), [(61_000, "a".to_string()), (61_000, "b".to_string())]);
        assert_eq!(keys(r.event_timers()), keys(h.event_timers()));
        r.process_rows(&[txn("a", 501.0, 2_000)]).unwrap();
        assert_eq!(r.take_output(), [alert("a", (1_000, 0.5), (2_000, 501.0))]);
        r.watermark(61_000).unwrap();
        assert!(r.event_timers().is_empty());
    }

    #[test]
    fn config_problems_are_located() {
        let inputs = [input()];
        let span = Span::new(9, 20);
        let cfg = FraudDetectorConfig {
            threshold: Some(Spanned::new(span, 0.5)),
            amount: Some(Spanned::new(Span::new(9, 40), "amout".into())),
            window: Some(Spanned::new(Span::new(9, 60), ConfigDuration(Duration::ZERO))),
            ..FraudDetectorConfig::default()
        };
        let Err(d) = plan(cfg, &ctx(&inputs)) else { panic!("invalid config accepted") };
        let text: Vec<String> = d.0.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            text,
            [
                "9:40: fraud_detector: the input `txns` has no field `amout` (did you mean `amount`?)",
                "9:20: fraud_detector: `threshold` (0.5) must be above `small` (1) (a large transaction is above \
             `threshold`, a small one below `small`)",
                "9:60: fraud_detector: `window` must be at least 1ms",
            ]
        );
        let mut no_time = input();
        no_time.schema = Arc::new(Schema::new(no_time.schema.fields().to_vec()));
        let Err(d) = plan(FraudDetectorConfig::default(), &ctx(&[no_time])) else { panic!("no event time") };
        assert!(d.0[0].to_string().starts_with("3:3: fraud_detector: the input `txns` has no event time"), "{d:?}");
    }
}
