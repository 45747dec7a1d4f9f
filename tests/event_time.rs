//! Event time end to end: watermarks from `event_time` sources, their minimum over parallel inputs,
//! idle splits, and the final watermark at the end of bounded input. A probe operator registered through
//! the public API (as a user's would be) records what it sees.
mod common;
use common::*;
use eddy::api::registry::PlanContext;
use eddy::api::{
    Batch, Context, DataType, Diagnostics, Field, Operator, OperatorBuilder, Result, Schema, SchemaRef, Source,
    SourceBuilder, SourcePoll, TaskInfo,
};
use serde::Deserialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Emits one row per watermark change: (watermark, records so far, late records so far).
struct Probe {
    ts: usize,
    seen: i64,
    late: i64,
    last: i64,
    on_progress: Option<Arc<AtomicBool>>,
}

#[derive(Deserialize)]
struct ProbeConfig {
    field: String,
}

struct ProbeBuilder {
    ts: usize,
    on_progress: Option<Arc<AtomicBool>>,
}

fn probe_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("watermark", DataType::Int),
        Field::new("seen", DataType::Int),
        Field::new("late", DataType::Int),
    ]))
}

impl OperatorBuilder for ProbeBuilder {
    fn output_schema(&self) -> SchemaRef {
        probe_schema()
    }
    fn fixed_parallelism(&self) -> Option<usize> {
        Some(1)
    }
    fn build(&self, _: &TaskInfo) -> Result<Box<dyn Operator>> {
        Ok(Box::new(Probe { ts: self.ts, seen: 0, late: 0, last: i64::MIN, on_progress: self.on_progress.clone() }))
    }
}

impl Operator for Probe {
    fn process_batch(&mut self, input: &Batch, ctx: &mut Context<'_>) -> Result<()> {
        for row in input.rows() {
            self.seen += 1;
            if row.int(self.ts).is_some_and(|t| t <= ctx.current_watermark()) {
                self.late += 1;
            }
        }
        Ok(())
    }
    fn on_watermark(&mut self, wm: i64, ctx: &mut Context<'_>) -> Result<()> {
        assert!(wm > self.last, "watermarks only advance: {} then {wm}", self.last);
        self.last = wm;
        ctx.batch().push_int(wm);
        ctx.batch().push_int(self.seen);
        ctx.batch().push_int(self.late);
        if let Some(flag) = &self.on_progress {
            if wm > i64::MIN && wm < i64::MAX {
                flag.store(true, Ordering::SeqCst);
            }
        }
        Ok(())
    }
}

fn registry(on_progress: Option<Arc<AtomicBool>>) -> eddy::api::Registry {
    let mut r = eddy::builtin_registry();
    r.operator("probe", move |cfg: ProbeConfig, ctx: &PlanContext<'_>| -> Result<ProbeBuilder, Diagnostics> {
        let ts = ctx.single_input()?.schema.index_of(&cfg.field).expect("probe field");
        Ok(ProbeBuilder { ts, on_progress: on_progress.clone() })
    });
    r
}

fn run_with(registry: &eddy::api::Registry, yaml: &str) {
    let job = eddy::job::prepare_str("t.yaml", yaml, &[], registry).unwrap_or_else(|r| panic!("{r}"));
    job.run().unwrap_or_else(|e| panic!("{e}"));
}

fn bids_job(out: &std::path::Path, ooo: &str, p: usize) -> String {
    format!(
        "name: wm\nparallelism: {p}\nsources:\n  bids:\n    type: file\n    event_time: {{ field: date_time, max_out_of_orderness: {ooo}, watermark_interval: 0 }}\n    config: {{ path: {BIDS}, format: csv, schema: {BID_SCHEMA} }}\n\
         operators:\n  probe: {{ type: probe, inputs: [bids], config: {{ field: date_time }} }}\n\
         sinks:\n  out: {{ type: file, inputs: [probe], parallelism: 1, config: {{ path: {} }} }}\n",
        out.display()
    )
}

#[test]
fn watermarks_trail_the_data_by_the_bound_and_end_at_the_maximum() {
    let max_ts = 1_700_000_000_000i64 + 1999;
    for p in [1, 2] {
        let out = temp_dir("wm").join("probe.jsonl");
        run_with(&registry(None), &bids_job(&out, "2s", p));
        let rows = read_json(&out);
        let wms: Vec<i64> = rows.iter().map(|r| r["watermark"].as_i64().unwrap()).collect();
        assert!(wms.len() >= 2, "p={p}: {wms:?}");
        assert_eq!(*wms.last().unwrap(), i64::MAX, "end of input releases everything");
        for w in &wms[..wms.len() - 1] {
            assert!(*w < max_ts - 2000, "p={p}: watermark {w} beyond the bound (largest timestamp - 2 s - 1 ms)");
        }
        let last = rows.last().unwrap();
        assert_eq!(last["seen"], 2000);
        // The data is at most 2 s out of order: with a 2 s bound nothing is late.
        assert_eq!(last["late"], 0, "p={p}");
    }
}

#[test]
fn a_tighter_bound_than_the_disorder_makes_late_records() {
    let out = temp_dir("wm-late").join("probe.jsonl");
    run_with(&registry(None), &bids_job(&out, "0", 1));
    let late = read_json(&out).last().unwrap()["late"].as_i64().unwrap();
    assert!(late > 0, "with no allowance for disorder, some of the 10% delayed bids are late");
}

/// Subtask 0 emits timestamped rows and finishes; subtask 1 stays silent (idle) until a watermark has
/// gone past the probe, or a generous deadline passes (then the test fails on the flag).
struct SilentSplit {
    progress: Arc<AtomicBool>,
}
struct SilentSplitSource {
    subtask: usize,
    next: i64,
    progress: Arc<AtomicBool>,
    deadline: Instant,
}
impl SourceBuilder for SilentSplit {
    fn output_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("ts", DataType::Timestamp)]))
    }
    fn bounded(&self) -> bool {
        true
    }
    fn build(&self, t: &TaskInfo) -> Result<Box<dyn Source>> {
        Ok(Box::new(SilentSplitSource {
            subtask: t.subtask,
            next: 0,
            progress: self.progress.clone(),
            deadline: Instant::now() + Duration::from_secs(60),
        }))
    }
}
impl Source for SilentSplitSource {
    fn poll(&mut self, out: &mut Batch, max: usize) -> Result<SourcePoll> {
        if self.subtask == 1 {
            let done = self.progress.load(Ordering::SeqCst) || Instant::now() > self.deadline;
            return Ok(if done { SourcePoll::Finished } else { SourcePoll::Idle(Duration::from_millis(5)) });
        }
        // Subtask 0 keeps producing (slowly) until the watermark has moved, so the only thing that can
        // move it is subtask 1 being marked idle.
        if self.progress.load(Ordering::SeqCst) || Instant::now() > self.deadline {
            return Ok(SourcePoll::Finished);
        }
        for _ in 0..max.min(10) {
            out.push(eddy::api::Datum::Timestamp(self.next));
            self.next += 100;
        }
        Ok(SourcePoll::Idle(Duration::from_millis(5)))
    }
}

#[test]
fn an_idle_split_does_not_hold_the_watermark_back() {
    let progress = Arc::new(AtomicBool::new(false));
    let mut r = registry(Some(progress.clone()));
    let p2 = progress.clone();
    r.source("silent_split", move |_: serde::de::IgnoredAny, _: &PlanContext<'_>| -> Result<_, Diagnostics> {
        Ok(SilentSplit { progress: p2.clone() })
    });
    let out = temp_dir("idle").join("probe.jsonl");
    let yaml = format!(
        "name: idle\nsources:\n  s:\n    type: silent_split\n    parallelism: 2\n    event_time: {{ field: ts, watermark_interval: 10ms, idle_timeout: 50ms }}\n\
         operators:\n  probe: {{ type: probe, inputs: [s], config: {{ field: ts }} }}\n\
         sinks:\n  out: {{ type: file, inputs: [probe], parallelism: 1, config: {{ path: {} }} }}\n",
        out.display()
    );
    run_with(&r, &yaml);
    assert!(progress.load(Ordering::SeqCst), "the watermark advanced while one split was silent");
    let wms: Vec<i64> = read_json(&out).iter().map(|r| r["watermark"].as_i64().unwrap()).collect();
    assert!(wms.iter().any(|&w| w > i64::MIN && w < i64::MAX), "{wms:?}");
}
