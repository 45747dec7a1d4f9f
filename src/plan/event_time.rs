//! Event time where records enter the job: a source's `event_time:` (a timestamp field of its records,
//! or `ingestion: true`) and the job-level `time:` default, planned into the runtime's watermark spec.
//!
//! ```yaml
//! time: ingestion                   # job level: event (default) | ingestion: every source without its own
//!                                   # `event_time` stamps its records with the wall clock
//! sources:
//!   bids:
//!     type: file
//!     event_time: { field: date_time, max_out_of_orderness: 2s, idle_timeout: 30s, watermark_interval: 200ms }
//!     # or: event_time: { ingestion: true, idle_timeout: 30s }   (adds `ingestion_time: timestamp_ms`)
//! ```
use super::logical::Planned;
use crate::config::{JobSpec, NodeSpec};
use crate::connectors::ingestion::{IngestionTime, INGESTION_FIELD};
use crate::operators::watermark::{strategy, timestamp_field};
use eddy_actors::EventTimeSpec;
use eddy_api::config::{from_config, ConfigDuration, ConfigValue};
use eddy_api::{Diagnostic, Diagnostics, SchemaRef, SourceBuilder, Span, Spanned};
use serde::Deserialize;
use std::sync::Arc;

/// `event_time:` of a source node.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventTimeConfig {
    /// The timestamp field (type `timestamp_ms` or `int`, milliseconds).
    #[serde(default)]
    field: Option<Spanned<String>>,
    /// Stamp records with the wall clock at the source instead (ingestion time), in a new field
    /// `ingestion_time`.
    #[serde(default)]
    ingestion: Option<Spanned<bool>>,
    /// How late a record may be relative to the largest timestamp seen (default 0).
    #[serde(default)]
    max_out_of_orderness: Option<Spanned<ConfigDuration>>,
    /// Mark a silent split idle after this long, so it does not hold the watermark back.
    #[serde(default)]
    idle_timeout: Option<ConfigDuration>,
    /// How often watermarks are emitted (default 200ms); `0` emits after every batch (punctuated).
    #[serde(default)]
    watermark_interval: Option<ConfigDuration>,
}

/// The job-level `time:`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobTime {
    /// Event time comes from the sources' `event_time` declarations (default).
    #[default]
    Event,
    /// Sources without `event_time` stamp their records with the wall clock.
    Ingestion,
    /// Not a job-wide setting in Eddy: rejected with a pointer to the window's `time`.
    Processing,
}

/// Reads the job-level `time:` section.
pub fn job_time(spec: &JobSpec, diags: &mut Diagnostics) -> JobTime {
    let Some(value) = spec.section("time") else { return JobTime::Event };
    match from_config::<Spanned<JobTime>>(value) {
        Ok(Spanned { value: JobTime::Processing, span }) => {
            diags.push(Diagnostic::at(span, "`time: processing` is chosen per window, not for the job").with_hint(
                "set `time: processing` in the window's config; the job-level `time` is `event` or `ingestion`",
            ));
            JobTime::Event
        }
        Ok(t) => t.value,
        Err(mut d) => {
            d.message = format!("`time`: {}", d.message);
            diags.push(d);
            JobTime::Event
        }
    }
}

/// The event time of a planned node: from its `event_time:`, or ingestion time for a source when the job
/// says `time: ingestion`. Returns the watermark spec and the source's schema with its event-time field
/// marked; for ingestion time `p` becomes the stamping wrapper of the source.
pub fn event_time(
    node: &NodeSpec,
    p: &mut Planned,
    job: JobTime,
    diags: &mut Diagnostics,
) -> Option<(EventTimeSpec, SchemaRef)> {
    let declared = node.extra.iter().find(|(k, _)| k.value == "event_time");
    let Planned::Source(builder) = p else {
        if let Some((key, _)) = declared {
            diags.push(
                Diagnostic::at(key.span, format!("`event_time` is set on sources; `{}` is not one", node.name.value))
                    .with_hint("declare event time where the records enter the job, or use a `watermark` operator"),
            );
        }
        return None;
    };
    let Some((key, value)) = declared else {
        return (job == JobTime::Ingestion).then(|| ingestion(builder, node.name.span, None, None, diags)).flatten();
    };
    let cfg = parse(value, diags)?;
    match (&cfg.field, cfg.ingestion.as_ref().filter(|i| i.value)) {
        (Some(f), Some(i)) => {
            diags.push(
                Diagnostic::at(i.span, "event_time: `ingestion: true` and `field` exclude each other").with_hint(
                    format!(
                        "`field` names a timestamp of the records; ingestion time is stamped into a new field \
                         `{INGESTION_FIELD}` (remove `field: {}`)",
                        f.value
                    ),
                ),
            );
            None
        }
        (None, Some(i)) => {
            if let Some(m) = &cfg.max_out_of_orderness {
                diags.push(
                    Diagnostic::at(m.span, "event_time: ingestion time has no disorder to allow for").with_hint(
                        "the wall-clock stamps of a source never go backwards: remove `max_out_of_orderness`",
                    ),
                );
                return None;
            }
            ingestion(builder, i.span, cfg.idle_timeout, cfg.watermark_interval, diags)
        }
        (Some(f), None) => {
            let schema = builder.output_schema();
            let field = timestamp_field(&schema, f, "event_time", "the source").map_err(|d| diags.push(d)).ok()?;
            let spec = strategy(field, cfg.max_out_of_orderness.as_ref(), cfg.idle_timeout, cfg.watermark_interval);
            Some((spec, Arc::new(schema.as_ref().clone().with_event_time(Some(field)))))
        }
        (None, None) => {
            let at = cfg.ingestion.as_ref().map_or(key.span, |i| i.span);
            diags.push(
                Diagnostic::at(at, "event_time: say where event time comes from")
                    .with_hint("`field: <timestamp field>` for a time in the records, or `ingestion: true` for the wall clock at the source"),
            );
            None
        }
    }
}

fn parse(value: &ConfigValue, diags: &mut Diagnostics) -> Option<EventTimeConfig> {
    match from_config(value) {
        Ok(c) => Some(c),
        Err(mut d) => {
            d.message = format!("`event_time`: {}", d.message);
            diags.push(d);
            None
        }
    }
}

/// Wraps the source so that it stamps ingestion time; the watermark follows the stamps exactly.
fn ingestion(
    builder: &mut Arc<dyn SourceBuilder>,
    at: Span,
    idle_timeout: Option<ConfigDuration>,
    watermark_interval: Option<ConfigDuration>,
    diags: &mut Diagnostics,
) -> Option<(EventTimeSpec, SchemaRef)> {
    if builder.output_schema().index_of(INGESTION_FIELD).is_some() {
        diags.push(
            Diagnostic::at(at, format!("ingestion time: the source already has a field `{INGESTION_FIELD}`"))
                .with_hint("ingestion time is stamped into a new field of that name: rename the source's field"),
        );
        return None;
    }
    let stamped = IngestionTime::new(builder.clone(), INGESTION_FIELD);
    let spec = strategy(stamped.field(), None, idle_timeout, watermark_interval);
    let schema = stamped.output_schema();
    *builder = Arc::new(stamped);
    Some((spec, schema))
}
