//! The `blackhole` sink: discards records, counting them; optionally slow, for backpressure tests.
use super::sink_input_schema;
use eddy_api::config::ConfigDuration;
use eddy_api::{Batch, Diagnostics, PlanContext, Result, Sink, SinkBuilder, TaskInfo};
use serde::Deserialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Discards every record (for benchmarks and tests); counts what it received.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlackholeConfig {
    /// Sleep this long for every batch (e.g. `5ms`), to make a deliberately slow sink that exerts
    /// backpressure. Default 0.
    #[serde(default)]
    pub delay_per_batch: ConfigDuration,
}

/// A planned `blackhole` sink.
#[derive(Debug)]
pub struct BlackholeBuilder {
    delay: Duration,
    records: Arc<AtomicU64>,
}

impl BlackholeBuilder {
    /// Registered as sink `blackhole`.
    pub fn plan(cfg: BlackholeConfig, ctx: &PlanContext<'_>) -> Result<BlackholeBuilder, Diagnostics> {
        sink_input_schema(&format!("blackhole sink `{}`", ctx.node), ctx)?;
        Ok(BlackholeBuilder { delay: cfg.delay_per_batch.0, records: Arc::default() })
    }

    /// Records received so far by all subtasks.
    pub fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }
}

impl SinkBuilder for BlackholeBuilder {
    fn build(&self, _task: &TaskInfo) -> Result<Box<dyn Sink>> {
        Ok(Box::new(BlackholeSink { delay: self.delay, records: self.records.clone(), local: 0 }))
    }
}

/// One subtask of a `blackhole` sink.
pub struct BlackholeSink {
    delay: Duration,
    records: Arc<AtomicU64>,
    local: u64,
}

impl BlackholeSink {
    /// Records this subtask received.
    pub fn records(&self) -> u64 {
        self.local
    }
}

impl Sink for BlackholeSink {
    fn write_batch(&mut self, batch: &Batch) -> Result<()> {
        self.local += batch.len() as u64;
        self.records.fetch_add(batch.len() as u64, Ordering::Relaxed);
        if !self.delay.is_zero() {
            // Blocking is the point: the task stalls and upstream channels fill up.
            std::thread::sleep(self.delay);
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        tracing::debug!(records = self.local, "blackhole finished");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::test_util::{ctx, task};
    use eddy_api::registry::InputInfo;
    use eddy_api::schema::Schema;

    #[test]
    fn counts_records() {
        let inputs = [InputInfo { name: "a".into(), schema: Arc::new(Schema::default()), key: None }];
        let b = BlackholeBuilder::plan(BlackholeConfig::default(), &ctx("bh", 2, &inputs)).unwrap();
        let mut batch = Batch::new(1);
        for i in 0..10 {
            batch.push_int(i);
        }
        let mut s0 = b.build(&task(0, 2)).unwrap();
        let mut s1 = b.build(&task(1, 2)).unwrap();
        s0.write_batch(&batch).unwrap();
        s1.write_batch(&batch).unwrap();
        s1.finish().unwrap();
        assert_eq!(b.records(), 20);
        assert!(BlackholeBuilder::plan(BlackholeConfig::default(), &ctx("bh", 1, &[])).is_err());
    }
}
