//! The `stdout` sink: JSON Lines or CSV on standard output.
use super::encode::{Encoder, SinkFormat, TimestampFormat};
use super::sink_input_schema;
use eddy_api::schema::SchemaRef;
use eddy_api::{Batch, Diagnostic, Diagnostics, EddyError, PlanContext, Result, Sink, SinkBuilder, Spanned, TaskInfo};
use serde::Deserialize;
use std::io::Write;

/// Prints records to standard output, one per line (each batch is written under one lock, so
/// lines of parallel subtasks never mix).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutConfig {
    /// `jsonl` (default: one JSON object per line) or `csv`.
    #[serde(default)]
    pub format: SinkFormat,
    /// `epoch_ms` (default: integer milliseconds) or `rfc3339` (`2023-11-14T22:13:20.000Z`).
    #[serde(default)]
    pub timestamps: TimestampFormat,
    /// csv: print a line of field names first (from subtask 0 only). Default false.
    #[serde(default)]
    pub header: Option<Spanned<bool>>,
}

/// A planned `stdout` sink.
#[derive(Debug)]
pub struct StdoutBuilder {
    schema: SchemaRef,
    format: SinkFormat,
    timestamps: TimestampFormat,
    header: bool,
}

impl StdoutBuilder {
    /// Validates the config against the input schema (registered as sink `stdout`).
    pub fn plan(cfg: StdoutConfig, ctx: &PlanContext<'_>) -> Result<StdoutBuilder, Diagnostics> {
        let what = format!("stdout sink `{}`", ctx.node);
        let mut diags = Diagnostics::new();
        let schema = sink_input_schema(&what, ctx).map_err(|d| diags.extend(d.0)).ok();
        if let (Some(h), SinkFormat::Jsonl) = (&cfg.header, cfg.format) {
            diags.push(Diagnostic::at(h.span, format!("{what}: `header` only applies to format csv")));
        }
        match (schema, diags.is_empty()) {
            (Some(schema), true) => Ok(StdoutBuilder {
                schema,
                format: cfg.format,
                timestamps: cfg.timestamps,
                header: cfg.header.is_some_and(|h| h.value) && cfg.format == SinkFormat::Csv,
            }),
            _ => Err(diags),
        }
    }
}

impl SinkBuilder for StdoutBuilder {
    fn build(&self, task: &TaskInfo) -> Result<Box<dyn Sink>> {
        let encoder = Encoder::new(&self.schema, self.format, self.timestamps);
        let mut buf = Vec::new();
        if self.header && task.subtask == 0 {
            encoder.header(&mut buf);
        }
        Ok(Box::new(StdoutSink { encoder, buf }))
    }
}

/// One subtask of a `stdout` sink.
pub struct StdoutSink {
    encoder: Encoder,
    buf: Vec<u8>,
}

impl StdoutSink {
    fn write_out(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut out = std::io::stdout().lock();
        out.write_all(&self.buf).and_then(|()| out.flush()).map_err(|e| EddyError::io("writing to stdout", e))?;
        self.buf.clear();
        Ok(())
    }
}

impl Sink for StdoutSink {
    fn write_batch(&mut self, batch: &Batch) -> Result<()> {
        self.encoder.batch(batch, &mut self.buf);
        self.write_out()
    }

    fn finish(&mut self) -> Result<()> {
        self.write_out()
    }
}
