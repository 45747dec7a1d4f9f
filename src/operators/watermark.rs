//! `watermark`: assigns event time and watermarks mid-stream, like Flink's
//! `assignTimestampsAndWatermarks` after a map. Same keys as a source's `event_time`:
//!
//! ```yaml
//! stamped:
//!   type: watermark
//!   inputs: [parsed]
//!   config: { field: ts, max_out_of_orderness: 2s, idle_timeout: 30s, watermark_interval: 200ms }
//! ```
//!
//! Records pass through unchanged, with `field` marked as their event time. The operator only declares
//! its [`WatermarkStrategy`] ([`OperatorBuilder::watermarks`]): the planner starts a chain at it, and its
//! task derives watermarks from the records it receives (bounded out-of-orderness, periodic or per batch,
//! idle after `idle_timeout`) and drops the upstream watermarks, except the end of input.
use eddy_api::config::ConfigDuration;
use eddy_api::registry::PlanContext;
use eddy_api::watermark::DEFAULT_WATERMARK_INTERVAL;
use eddy_api::{
    Batch, Context, DataType, Diagnostic, Diagnostics, Operator, OperatorBuilder, Result, Schema, SchemaRef, Spanned,
    TaskInfo, WatermarkStrategy,
};
use serde::Deserialize;
use std::sync::Arc;

/// Config of `watermark` (the keys of a source's `event_time`, without `ingestion`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatermarkConfig {
    /// The timestamp field (type `timestamp_ms` or `int`, milliseconds).
    pub field: Spanned<String>,
    /// How late a record may be relative to the largest timestamp seen (default 0).
    #[serde(default)]
    pub max_out_of_orderness: Option<Spanned<ConfigDuration>>,
    /// Mark a silent subtask idle after this long, so it does not hold the watermark back downstream.
    #[serde(default)]
    pub idle_timeout: Option<ConfigDuration>,
    /// How often watermarks are emitted (default 200ms); `0` emits after every batch (punctuated).
    #[serde(default)]
    pub watermark_interval: Option<ConfigDuration>,
}

/// Resolves the timestamp field of an event-time declaration (`what`: `event_time` or `watermark`) in
/// `schema` (of `whose`: "the source", "the input"): it must exist and hold milliseconds.
pub fn timestamp_field(schema: &Schema, field: &Spanned<String>, what: &str, whose: &str) -> Result<usize, Diagnostic> {
    let Some(i) = schema.index_of(&field.value) else {
        return Err(Diagnostic::at(
            field.span,
            format!("{what}: unknown field `{}`; {whose} has {schema}", field.value),
        )
        .did_you_mean(&field.value, schema.names()));
    };
    let ty = schema.fields()[i].data_type;
    if !matches!(ty, DataType::Timestamp | DataType::Int) {
        return Err(Diagnostic::at(
            field.span,
            format!("{what}: `{}` is {ty}; it must be a timestamp_ms or an int of milliseconds", field.value),
        ));
    }
    Ok(i)
}

/// The watermark strategy of an event-time declaration.
pub fn strategy(
    field: usize,
    max_out_of_orderness: Option<&Spanned<ConfigDuration>>,
    idle_timeout: Option<ConfigDuration>,
    watermark_interval: Option<ConfigDuration>,
) -> WatermarkStrategy {
    WatermarkStrategy {
        field,
        max_out_of_orderness: max_out_of_orderness.map(|d| d.value.0).unwrap_or_default(),
        idle_timeout: idle_timeout.map(|d| d.0).filter(|d| !d.is_zero()),
        interval: watermark_interval.map_or(DEFAULT_WATERMARK_INTERVAL, |d| d.0),
    }
}

/// The planned `watermark`.
pub struct WatermarkBuilder {
    schema: SchemaRef,
    strategy: WatermarkStrategy,
}

/// Checks the field against the input schema.
pub fn plan(cfg: WatermarkConfig, ctx: &PlanContext<'_>) -> Result<WatermarkBuilder, Diagnostics> {
    let input = ctx.single_input()?;
    let field = timestamp_field(&input.schema, &cfg.field, "watermark", "the input")?;
    let strategy = strategy(field, cfg.max_out_of_orderness.as_ref(), cfg.idle_timeout, cfg.watermark_interval);
    let schema = Arc::new(input.schema.as_ref().clone().with_event_time(Some(field)));
    Ok(WatermarkBuilder { schema, strategy })
}

impl OperatorBuilder for WatermarkBuilder {
    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn watermarks(&self) -> Option<WatermarkStrategy> {
        Some(self.strategy.clone())
    }

    fn build(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        Ok(Box::new(PassThrough))
    }
}

/// The records go on unchanged; the watermarks are the task's work.
struct PassThrough;

impl Operator for PassThrough {
    fn process_batch(&mut self, input: &Batch, out: &mut Context<'_>) -> Result<()> {
        for row in input.rows() {
            out.emit_row(row);
        }
        Ok(())
    }
}
