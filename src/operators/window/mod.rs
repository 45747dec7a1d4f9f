//! `window`: aggregates per key and window, in event or processing time, with Flink's semantics.
//!
//! ```yaml
//! per_auction:
//!   type: window
//!   inputs: [bids]
//!   config:
//!     key_by: [auction]                 # omit after a key_by (inherited) or for one global window stream
//!     window: { tumbling: 10s }         # | { sliding: 10s, slide: 2s } | { session: 10s } | { count: 100, slide: 10 } | global
//!     time: event                       # event (default) | ingestion | processing
//!     aggregate: { bids: "count(*)", max_price: "max(price)" }
//!     allowed_lateness: 5s              # late firings update the result
//!     late_output: late                 # side output for records later than that: `inputs: [per_auction.late]`
//!     trigger: { every: 1s }            # early firings: { every: 1s } (processing time) | { count: 1000 }, purge: false
//! ```
//!
//! Output rows: the key fields, `window_start` and `window_end` (`timestamp_ms`; NULL for count and global
//! windows), then the aggregates; `window_end` is the output's event-time field for time windows.
//!
//! Everything lives in the operator's keyed state ([`eddy_api::state::KeyedState`]) and its timers, as a
//! user's operator would do it: one accumulator list per key and window (never the records), an
//! event-time timer at `window_end - 1` that fires the window and one at `window_end - 1 +
//! allowed_lateness` that clears it. The submodules: [`assigner`] (which windows a record belongs to),
//! [`trigger`] (early firings), [`operator`] (tumbling, sliding and global windows), [`session`] (merging
//! session windows), [`count`] (count windows, tumbling and sliding), [`emit`] (output rows) and
//! [`group`] (rows of a batch grouped by key, so a key is made current once per batch).
pub mod assigner;
pub mod count;
pub mod emit;
pub mod group;
pub mod operator;
pub mod session;
pub mod trigger;

use crate::expr::{AggregateCall, KeyExprs};
use assigner::Assigner;
use eddy_api::config::{ConfigDuration, Entries};
use eddy_api::key::{FieldKeys, KeySelector};
use eddy_api::operator::InputPartitioning;
use eddy_api::registry::{InputInfo, PlanContext};
use eddy_api::{
    DataType, Diagnostic, Diagnostics, Field, Operator, OperatorBuilder, Result, Schema, SchemaRef, Span, Spanned,
    TaskInfo,
};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::sync::Arc;
use trigger::{Early, Trigger};

/// Config of `window`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// Key fields or SQL expressions; omit after a `key_by` (inherits its key), or for one window stream
    /// over all records (then the operator runs at parallelism 1).
    #[serde(default)]
    pub key_by: Option<Vec<Spanned<String>>>,
    /// The windows: `{ tumbling: 10s }`, `{ sliding: 10s, slide: 2s }`, `{ session: 10s }` (gap),
    /// `{ count: 100 }` or `{ count: 100, slide: 10 }` (records), or `global` (one window per key, fired
    /// at the end of the input and by the trigger).
    pub window: Spanned<WindowSpec>,
    /// The clock of time windows: `event` (default; the input's event-time field, watermarks),
    /// `ingestion` (event time that is the wall clock at the source: the input's event time must be the
    /// `ingestion_time` stamped by a source with `event_time: { ingestion: true }` or the job's
    /// `time: ingestion`) or `processing` (the operator's wall clock). Count and global windows do not
    /// use time.
    #[serde(default)]
    pub time: Option<Spanned<TimeMode>>,
    /// Output fields: `name: "aggregate(expression)"`, e.g. `bids: "count(*)"`, `max_price: "max(price)"`;
    /// count, sum, min, max, avg, first, last and count(distinct ...), computed incrementally.
    pub aggregate: Entries<Spanned<String>>,
    /// How long after a window fired (in event time) records may still update it (default 0): each such
    /// record fires the window again with the updated result; the window is cleared after that.
    #[serde(default)]
    pub allowed_lateness: Option<Spanned<ConfigDuration>>,
    /// Name of a side output that receives the records later than the allowed lateness (input schema),
    /// read as `inputs: [node.NAME]`; without it such records are dropped and counted in the metrics.
    #[serde(default)]
    pub late_output: Option<Spanned<String>>,
    /// Early firings before the window's end: `{ every: 1s }` (processing-time interval) or
    /// `{ count: 1000 }` (records since the last firing), with `purge: true` to emit only what arrived
    /// since the previous firing (default false: every firing emits the whole window so far).
    #[serde(default)]
    pub trigger: Option<Spanned<TriggerConfig>>,
}

/// The clock of time windows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeMode {
    /// The record's event-time field; windows fire when the watermark passes their end.
    #[default]
    Event,
    /// Event time stamped by the source's wall clock (checked at planning, then the same as `Event`).
    Ingestion,
    /// The operator's wall clock when the record arrives; windows fire when the clock passes their end.
    Processing,
}

/// The `window:` value as written: `global`, or a map checked by the planner.
#[derive(Debug)]
pub enum WindowSpec {
    /// `global`.
    Global,
    /// `{ tumbling: .. }`, `{ sliding: .., slide: .. }`, `{ session: .. }`, `{ count: .., slide: .. }`.
    Map(WindowMap),
}

/// The map form of `window:`; exactly one of `tumbling`, `sliding`, `session`, `count` is set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowMap {
    /// Size of tumbling windows.
    #[serde(default)]
    pub tumbling: Option<Spanned<ConfigDuration>>,
    /// Size of sliding windows (with `slide`).
    #[serde(default)]
    pub sliding: Option<Spanned<ConfigDuration>>,
    /// Gap of session windows.
    #[serde(default)]
    pub session: Option<Spanned<ConfigDuration>>,
    /// Number of records of count windows.
    #[serde(default)]
    pub count: Option<Spanned<u64>>,
    /// Slide: a duration for sliding windows, a number of records for count windows.
    #[serde(default)]
    pub slide: Option<Spanned<Slide>>,
}

/// A `slide:` value: a duration (`2s`) or a number of records (`10`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slide {
    /// A number of records (count windows).
    Records(u64),
    /// A duration (sliding time windows).
    Time(ConfigDuration),
}

impl<'de> Deserialize<'de> for WindowSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WindowSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`global` or a map such as `{ tumbling: 10s }`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<WindowSpec, E> {
                match s {
                    "global" => Ok(WindowSpec::Global),
                    "tumbling" | "sliding" | "session" | "count" => Err(E::custom(format!(
                        "`{s}` needs a size: write e.g. `{{ {s}: {} }}`",
                        if s == "count" { "100" } else { "10s" }
                    ))),
                    _ => Err(E::custom(format!(
                        "unknown window `{s}`: write `global`, or one of `{{ tumbling: 10s }}`, `{{ sliding: 10s, \
                         slide: 2s }}`, `{{ session: 10s }}`, `{{ count: 100 }}`"
                    ))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<WindowSpec, A::Error> {
                WindowMap::deserialize(de::value::MapAccessDeserializer::new(map)).map(WindowSpec::Map)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Slide {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Slide;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as `2s` (sliding windows) or a number of records (count windows)")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> std::result::Result<Slide, E> {
                Ok(Slide::Records(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> std::result::Result<Slide, E> {
                u64::try_from(n)
                    .map(Slide::Records)
                    .map_err(|_| E::custom(format!("`slide` must be positive, not {n}")))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<Slide, E> {
                ConfigDuration::parse(s).map(Slide::Time).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// `trigger:` early firings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerConfig {
    /// Fire every this long in processing time (aligned to multiples of the interval).
    #[serde(default)]
    pub every: Option<Spanned<ConfigDuration>>,
    /// Fire whenever this many records arrived in a window since its last firing.
    #[serde(default)]
    pub count: Option<Spanned<u64>>,
    /// Emit only what arrived since the previous firing (default false: the whole window so far).
    #[serde(default)]
    pub purge: bool,
}

/// What a planned window needs at run time; shared by all subtasks.
#[derive(Debug)]
pub struct WindowSpecPlan {
    /// Which windows records go to.
    pub assigner: Assigner,
    /// The clock of time windows (`None` for count and global windows).
    pub time: Option<TimeMode>,
    /// Position of the event-time field (event-time windows).
    pub ts_field: usize,
    /// Allowed lateness in ms (event-time windows).
    pub lateness: i64,
    /// Whether late records go to side output 0.
    pub late_output: bool,
    /// Early firings.
    pub trigger: Trigger,
    /// The aggregates, in output order.
    pub calls: Arc<[AggregateCall]>,
    /// Number of key fields (0: one window stream for all records).
    pub key_len: usize,
}

/// The planned `window`.
pub struct WindowBuilder {
    schema: SchemaRef,
    late: Option<(String, SchemaRef)>,
    keys: Option<Arc<KeyExprs>>,
    spec: Arc<WindowSpecPlan>,
}

/// A duration in whole milliseconds, at least 1 ms; a diagnostic naming `what` otherwise.
fn millis(d: &Spanned<ConfigDuration>, what: &str, diags: &mut Diagnostics) -> Option<i64> {
    match i64::try_from(d.value.0.as_millis()) {
        Ok(ms) if ms >= 1 => Some(ms),
        Ok(_) => {
            diags.push(Diagnostic::at(d.span, format!("window: {what} must be at least 1ms")));
            None
        }
        Err(_) => {
            diags.push(Diagnostic::at(d.span, format!("window: {what} is too large")));
            None
        }
    }
}

/// A positive record count; a diagnostic naming `what` otherwise.
fn positive(n: &Spanned<u64>, what: &str, diags: &mut Diagnostics) -> Option<u64> {
    if n.value == 0 || n.value > i64::MAX as u64 {
        diags.push(Diagnostic::at(n.span, format!("window: {what} must be a positive number of records")));
        return None;
    }
    Some(n.value)
}

/// Checks the `window:` map: one kind, a positive size, `slide` only where it fits.
fn assigner(spec: &Spanned<WindowSpec>, diags: &mut Diagnostics) -> Option<Assigner> {
    let map = match &spec.value {
        WindowSpec::Global => return Some(Assigner::Global),
        WindowSpec::Map(m) => m,
    };
    let set: Vec<&str> = [
        ("tumbling", map.tumbling.is_some()),
        ("sliding", map.sliding.is_some()),
        ("session", map.session.is_some()),
        ("count", map.count.is_some()),
    ]
    .iter()
    .filter(|(_, on)| *on)
    .map(|(k, _)| *k)
    .collect();
    const FORMS: &str = "`{ tumbling: 10s }`, `{ sliding: 10s, slide: 2s }`, `{ session: 10s }`, `{ count: 100 }`, \
                         `{ count: 100, slide: 10 }` or `global`";
    match set.as_slice() {
        [] => {
            diags.push(
                Diagnostic::at(spec.span, "window: say which windows: `tumbling`, `sliding`, `session` or `count`")
                    .with_hint(format!("e.g. {FORMS}")),
            );
            return None;
        }
        [_] => {}
        many => {
            diags.push(
                Diagnostic::at(spec.span, format!("window: choose one kind of window, not {}", many.join(" and ")))
                    .with_hint(format!("e.g. {FORMS}")),
            );
            return None;
        }
    }
    let slide_span = map.slide.as_ref().map(|s| s.span);
    let no_slide = |kind: &str, diags: &mut Diagnostics| {
        if let Some(at) = slide_span {
            let d = Diagnostic::at(at, format!("window: `slide` does not apply to {kind} windows"));
            diags.push(d.with_hint("only sliding and count windows slide: `{ sliding: 10s, slide: 2s }`"));
        }
    };
    if let Some(size) = &map.tumbling {
        no_slide("tumbling", diags);
        return millis(size, "the window size", diags).map(|size| Assigner::Tumbling { size });
    }
    if let Some(gap) = &map.session {
        no_slide("session", diags);
        return millis(gap, "the session gap", diags).map(|gap| Assigner::Session { gap });
    }
    if let Some(size) = &map.sliding {
        let size_ms = millis(size, "the window size", diags);
        let slide = match &map.slide {
            None => {
                diags.push(
                    Diagnostic::at(size.span, "window: sliding windows need a `slide`")
                        .with_hint("e.g. `{ sliding: 10s, slide: 2s }`; without one, write `{ tumbling: 10s }`"),
                );
                None
            }
            Some(Spanned { value: Slide::Records(n), span }) => {
                diags.push(Diagnostic::at(
                    *span,
                    format!("window: the slide of a sliding time window is a duration: write e.g. `{n}s` or `{n}ms`"),
                ));
                None
            }
            Some(Spanned { value: Slide::Time(d), span }) => millis(&Spanned::new(*span, *d), "the slide", diags),
        };
        let (size, slide) = (size_ms?, slide?);
        if slide > size {
            let at = slide_span.unwrap_or(spec.span);
            diags.push(
                Diagnostic::at(at, format!("window: the slide ({slide}ms) is longer than the window ({size}ms)"))
                    .with_hint("records between two windows would belong to none; use a slide up to the size"),
            );
            return None;
        }
        return Some(if slide == size { Assigner::Tumbling { size } } else { Assigner::Sliding { size, slide } });
    }
    let count = map.count.as_ref()?;
    let size = positive(count, "`count`", diags);
    let slide = match &map.slide {
        None => size,
        Some(Spanned { value: Slide::Records(n), span }) => positive(&Spanned::new(*span, *n), "`slide`", diags),
        Some(Spanned { span, .. }) => {
            diags.push(
                Diagnostic::at(*span, "window: the slide of a count window is a number of records")
                    .with_hint("e.g. `{ count: 100, slide: 10 }`"),
            );
            None
        }
    };
    let (size, slide) = (size?, slide?);
    if slide > size {
        let at = slide_span.unwrap_or(spec.span);
        diags.push(
            Diagnostic::at(at, format!("window: the slide ({slide} records) is more than the window ({size} records)"))
                .with_hint("records between two windows would belong to none; use a slide up to the count"),
        );
        return None;
    }
    Some(Assigner::Count { size, slide })
}

/// Checks `trigger:`.
fn trigger(cfg: Option<&Spanned<TriggerConfig>>, assigner: Option<&Assigner>, diags: &mut Diagnostics) -> Trigger {
    let Some(t) = cfg else { return Trigger::default() };
    if matches!(assigner, Some(Assigner::Count { .. })) {
        diags.push(
            Diagnostic::at(t.span, "window: count windows fire by their count and take no `trigger`")
                .with_hint("use `{ count: 100, slide: 10 }` for a result every 10 records"),
        );
        return Trigger::default();
    }
    let early = match (&t.every, &t.count) {
        (Some(every), None) => millis(every, "`trigger.every`", diags).map(Early::Every),
        (None, Some(n)) => positive(n, "`trigger.count`", diags).map(Early::Count),
        (None, None) => {
            diags.push(
                Diagnostic::at(t.span, "window: `trigger` needs `every` (a processing-time interval) or `count`")
                    .with_hint("e.g. `trigger: { every: 1s }` or `trigger: { count: 1000, purge: true }`"),
            );
            None
        }
        (Some(_), Some(_)) => {
            diags.push(Diagnostic::at(t.span, "window: `trigger` takes `every` or `count`, not both"));
            None
        }
    };
    Trigger { early, purge: t.purge }
}

/// `time: ingestion` needs input whose event time is the `ingestion_time` a source stamped.
fn check_ingestion(at: Span, input: &InputInfo, diags: &mut Diagnostics) {
    let field = crate::connectors::ingestion::INGESTION_FIELD;
    let schema = &input.schema;
    let d = match schema.event_time().map(|i| schema.fields()[i].name.as_str()) {
        Some(name) if name == field => return,
        Some(name) => Diagnostic::at(
            at,
            format!("window: `time: ingestion`, but the event time of `{}` is its field `{name}`", input.name),
        )
        .with_hint(format!(
            "ingestion time is the `{field}` stamped at a source with `event_time: {{ ingestion: true }}`; for the \
             records' own time write `time: event`"
        )),
        None => {
            Diagnostic::at(at, format!("window: `time: ingestion`, but the input `{}` has no event time", input.name))
                .with_hint(
                "stamp it at the source: `event_time: { ingestion: true }` beside `type`, or `time: ingestion` at the \
                 top of the job",
            )
        }
    };
    diags.push(d);
}

/// Resolves the key, checks the window, time and lateness settings, compiles the aggregates and derives
/// the output schema (and the late side output's).
pub fn plan(cfg: WindowConfig, ctx: &PlanContext<'_>) -> Result<WindowBuilder, Diagnostics> {
    let input = ctx.single_input()?;
    let schema = &input.schema;
    let mut diags = Diagnostics::new();

    let key_texts = cfg
        .key_by
        .clone()
        .or_else(|| input.key.as_ref().map(|k| k.iter().map(|t| Spanned::new(ctx.span, t.clone())).collect()));
    let keys = match key_texts {
        Some(k) if k.is_empty() => {
            let at = cfg.key_by.as_ref().and_then(|k| k.first().map(|s| s.span)).unwrap_or(ctx.span);
            diags.push(Diagnostic::at(at, "window: `key_by` is empty; omit it for one window stream over all records"));
            None
        }
        Some(k) => KeyExprs::compile(&k, schema).map_err(|d| diags.extend(d.0)).ok(),
        None => None,
    };

    let assigner = assigner(&cfg.window, &mut diags);
    let time_windows =
        matches!(assigner, Some(Assigner::Tumbling { .. } | Assigner::Sliding { .. } | Assigner::Session { .. }));
    let kind_word = match assigner {
        Some(Assigner::Count { .. }) => "count",
        _ => "global",
    };
    let time = match (&cfg.time, time_windows) {
        (Some(t), false) if assigner.is_some() => {
            diags.push(
                Diagnostic::at(t.span, format!("window: {kind_word} windows do not use time; remove `time`"))
                    .with_hint("`time` applies to tumbling, sliding and session windows"),
            );
            None
        }
        (t, true) => Some(t.as_ref().map_or(TimeMode::Event, |t| t.value)),
        // The window is invalid (reported): check the rest against the `time` as written.
        (t, false) if assigner.is_none() => t.as_ref().map(|t| t.value),
        _ => None,
    };
    if time == Some(TimeMode::Ingestion) && assigner.is_some() {
        check_ingestion(cfg.time.as_ref().map_or(cfg.window.span, |t| t.span), input, &mut diags);
    }
    // Past that check, ingestion time is event time.
    let time = time.map(|t| if t == TimeMode::Ingestion { TimeMode::Event } else { t });
    let event = time == Some(TimeMode::Event);
    let ts_field = match (event, schema.event_time()) {
        (true, Some(i)) => i,
        (true, None) if assigner.is_some() && cfg.time.as_ref().is_none_or(|t| t.value != TimeMode::Ingestion) => {
            let at = cfg.time.as_ref().map_or(cfg.window.span, |t| t.span);
            diags.push(
                Diagnostic::at(
                    at,
                    format!("window: event-time windows need event time, and the input `{}` has none", input.name),
                )
                .with_hint(
                    "declare it on the source, beside `type`: `event_time: { field: date_time, max_out_of_orderness: \
                     2s }`, or set `time: processing`",
                ),
            );
            0
        }
        _ => 0,
    };

    let not_event = |what: &str, at: Span, diags: &mut Diagnostics| {
        let why = match (time, assigner.as_ref()) {
            (Some(TimeMode::Processing), _) => "processing-time windows are never late".to_string(),
            (_, Some(_)) => format!("records are never late for {kind_word} windows"),
            _ => return,
        };
        diags.push(
            Diagnostic::at(at, format!("window: `{what}` only applies to event-time windows ({why})"))
                .with_hint(format!("remove `{what}`")),
        );
    };
    let lateness = match &cfg.allowed_lateness {
        Some(l) if !event => {
            not_event("allowed_lateness", l.span, &mut diags);
            0
        }
        Some(l) => match i64::try_from(l.value.0.as_millis()) {
            Ok(ms) => ms,
            Err(_) => {
                diags.push(Diagnostic::at(l.span, "window: `allowed_lateness` is too large"));
                0
            }
        },
        None => 0,
    };
    let late = match &cfg.late_output {
        Some(l) if !event => {
            not_event("late_output", l.span, &mut diags);
            None
        }
        Some(l) if l.value.is_empty() || l.value.contains('.') || l.value.contains(char::is_whitespace) => {
            diags.push(
                Diagnostic::at(l.span, format!("window: `late_output: {}` is not a usable name", l.value))
                    .with_hint("a side output is read as `inputs: [node.NAME]`: use a plain name such as `late`"),
            );
            None
        }
        Some(l) => Some((l.value.clone(), schema.clone())),
        None => None,
    };
    let trigger = trigger(cfg.trigger.as_ref(), assigner.as_ref(), &mut diags);

    if cfg.aggregate.is_empty() {
        let d =
            Diagnostic::at(cfg.aggregate.span().unwrap_or(ctx.span), "window: `aggregate` needs at least one field")
                .with_hint("e.g. `aggregate: { bids: \"count(*)\", max_price: \"max(price)\" }`");
        diags.push(d);
    }
    let mut fields: Vec<Field> = keys.as_ref().map(|k| k.fields()).unwrap_or_default();
    let key_len = fields.len();
    for f in &fields {
        if f.name == "window_start" || f.name == "window_end" {
            let at = cfg.key_by.as_ref().and_then(|k| k.first().map(|s| s.span)).unwrap_or(ctx.span);
            diags.push(Diagnostic::at(at, format!("window: key field `{}` clashes with the window bounds", f.name)));
        }
    }
    fields.push(Field::new("window_start", DataType::Timestamp));
    fields.push(Field::new("window_end", DataType::Timestamp));
    let mut calls = Vec::new();
    for (name, text) in cfg.aggregate.iter() {
        if fields.iter().any(|f| f.name == name.value) {
            diags.push(
                Diagnostic::at(name.span, format!("window: output field `{}` is defined twice", name.value))
                    .with_hint("the output has the key fields, `window_start`, `window_end`, then the aggregates"),
            );
        }
        match AggregateCall::compile(text, schema) {
            Ok(call) => {
                fields.push(Field::new(name.value.clone(), call.output_type()));
                calls.push(call);
            }
            Err(d) => diags.extend(d.0),
        }
    }
    let Some(assigner) = assigner else {
        diags.into_result(())?;
        return Err(Diagnostic::at(cfg.window.span, "window: invalid `window`").into());
    };
    let end_field = key_len + 1;
    let out = Schema::new(fields).with_event_time(time.is_some().then_some(end_field));
    diags.into_result(WindowBuilder {
        schema: Arc::new(out),
        late: late.clone(),
        keys: keys.map(Arc::new),
        spec: Arc::new(WindowSpecPlan {
            assigner,
            time,
            ts_field,
            lateness,
            late_output: late.is_some(),
            trigger,
            calls: calls.into(),
            key_len,
        }),
    })
}

impl WindowBuilder {
    /// The planned settings (for tests and tools).
    pub fn spec(&self) -> &WindowSpecPlan {
        &self.spec
    }
}

impl OperatorBuilder for WindowBuilder {
    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn input_partitioning(&self) -> InputPartitioning {
        match &self.keys {
            Some(k) => InputPartitioning::Hash(k.clone()),
            None => InputPartitioning::Any,
        }
    }

    fn state_key(&self) -> Option<Arc<dyn KeySelector>> {
        match &self.keys {
            Some(k) => Some(k.clone()),
            // One window stream for all records: state and timers under the empty key.
            None => Some(Arc::new(FieldKeys(vec![]))),
        }
    }

    fn side_outputs(&self) -> Vec<(String, SchemaRef)> {
        self.late.iter().cloned().collect()
    }

    fn fixed_parallelism(&self) -> Option<usize> {
        self.keys.is_none().then_some(1)
    }

    fn build(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        let (spec, keys) = (self.spec.clone(), self.keys.clone());
        Ok(match spec.assigner {
            Assigner::Session { .. } => Box::new(session::SessionWindows::new(spec, keys)),
            Assigner::Count { .. } => Box::new(count::CountWindows::new(spec, keys)),
            _ => Box::new(operator::TimeWindows::new(spec, keys)),
        })
    }
}
