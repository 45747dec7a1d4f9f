//! Ingestion time: a source wrapper that stamps every record with the wall clock when the source
//! produced it, in an extra `timestamp_ms` field appended to the source's records and marked as their
//! event time (Flink's ingestion time). The stamps never go backwards within a subtask, so watermarks
//! follow them with no allowance for disorder.
use eddy_api::source::SourceProgress;
use eddy_api::{Batch, DataType, Datum, Field, Result, Schema, SchemaRef, Source, SourceBuilder, SourcePoll, TaskInfo};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The default name of the stamped field.
pub const INGESTION_FIELD: &str = "ingestion_time";

/// A planned source whose records get an ingestion timestamp.
pub struct IngestionTime {
    inner: Arc<dyn SourceBuilder>,
    schema: SchemaRef,
}

impl IngestionTime {
    /// Wraps `inner`, appending the field `name` (the caller checked that it is free).
    pub fn new(inner: Arc<dyn SourceBuilder>, name: &str) -> Self {
        let base = inner.output_schema();
        let mut fields = base.fields().to_vec();
        fields.push(Field::new(name, DataType::Timestamp));
        let at = fields.len() - 1;
        IngestionTime { inner, schema: Arc::new(Schema::new(fields).with_event_time(Some(at))) }
    }

    /// Position of the stamped field.
    pub fn field(&self) -> usize {
        self.schema.len() - 1
    }
}

impl SourceBuilder for IngestionTime {
    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn bounded(&self) -> bool {
        self.inner.bounded()
    }

    fn build(&self, task: &TaskInfo) -> Result<Box<dyn Source>> {
        let width = self.schema.len() - 1;
        Ok(Box::new(Stamping { inner: self.inner.build(task)?, rows: Batch::new(width), last: i64::MIN }))
    }
}

struct Stamping {
    inner: Box<dyn Source>,
    /// What the wrapped source produced in one poll, before stamping.
    rows: Batch,
    last: i64,
}

/// Wall-clock milliseconds since the epoch.
fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Source for Stamping {
    fn open(&mut self, task: &TaskInfo) -> Result<()> {
        self.inner.open(task)
    }

    fn poll(&mut self, out: &mut Batch, max_rows: usize) -> Result<SourcePoll> {
        self.rows.clear();
        let poll = self.inner.poll(&mut self.rows, max_rows)?;
        if self.rows.is_empty() {
            return Ok(poll);
        }
        // One reading per poll: the records of a batch enter the job together. A clock stepping back
        // (NTP) must not make the stamps, and so the watermark, go backwards.
        self.last = self.last.max(now_ms());
        let width = self.rows.width();
        for row in self.rows.rows() {
            for i in 0..width {
                out.push_field_from(row, i);
            }
            out.push(Datum::Timestamp(self.last));
        }
        Ok(poll)
    }

    fn progress(&self) -> SourceProgress {
        self.inner.progress()
    }

    fn skipped_records(&self) -> u64 {
        self.inner.skipped_records()
    }

    fn snapshot_position(&mut self, checkpoint: u64) -> Result<Option<Vec<u8>>> {
        self.inner.snapshot_position(checkpoint)
    }

    fn restore_position(&mut self, positions: &[Vec<u8>]) -> Result<()> {
        self.inner.restore_position(positions)
    }

    fn on_checkpoint_complete(&mut self, checkpoint: u64) -> Result<()> {
        self.inner.on_checkpoint_complete(checkpoint)
    }

    fn close(&mut self) -> Result<()> {
        self.inner.close()
    }
}
