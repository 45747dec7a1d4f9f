//! Event time end to end: watermarks from `event_time` sources, their minimum over parallel inputs,
//! idle splits (also making a window fire while a split is silent), the final watermark at the end of
//! bounded input, ingestion time, and the `watermark` operator that replaces watermarks mid-stream. A
//! probe operator and a recording sink registered through the public API (as a user's would be) record
//! what they see.
mod common;
use common::*;
use eddy::api::registry::PlanContext;
use eddy::api::{
    Batch, Context, DataType, Diagnostics, Field, Operator, OperatorBuilder, Result, Schema, SchemaRef, Sink,
    SinkBuilder, Source, SourceBuilder, SourcePoll, TaskInfo,
};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    /// Set when a split finishes (so a consumer can tell whether it saw data before the end of input).
    ended: Arc<AtomicBool>,
}
struct SilentSplitSource {
    subtask: usize,
    next: i64,
    progress: Arc<AtomicBool>,
    ended: Arc<AtomicBool>,
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
            ended: self.ended.clone(),
            deadline: Instant::now() + Duration::from_secs(60),
        }))
    }
}
impl SilentSplitSource {
    fn finished(&self) -> Result<SourcePoll> {
        self.ended.store(true, Ordering::SeqCst);
        Ok(SourcePoll::Finished)
    }
}
impl Source for SilentSplitSource {
    fn poll(&mut self, out: &mut Batch, max: usize) -> Result<SourcePoll> {
        if self.subtask == 1 {
            let done = self.progress.load(Ordering::SeqCst) || Instant::now() > self.deadline;
            return if done { self.finished() } else { Ok(SourcePoll::Idle(Duration::from_millis(5))) };
        }
        // Subtask 0 keeps producing (slowly) until the watermark has moved, so the only thing that can
        // move it is subtask 1 being marked idle.
        if self.progress.load(Ordering::SeqCst) || Instant::now() > self.deadline {
            return self.finished();
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
    register_silent_split(&mut r, progress.clone(), Arc::new(AtomicBool::new(false)));
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

fn register_silent_split(r: &mut eddy::api::Registry, progress: Arc<AtomicBool>, ended: Arc<AtomicBool>) {
    r.source("silent_split", move |_: serde::de::IgnoredAny, _: &PlanContext<'_>| -> Result<_, Diagnostics> {
        Ok(SilentSplit { progress: progress.clone(), ended: ended.clone() })
    });
}

/// A sink that keeps the rows it gets as (field 0, field 2) integer pairs, notes whether the sources had
/// already ended when the first rows came, and raises a flag when they do.
struct Recording {
    rows: Arc<Mutex<Vec<(i64, i64)>>>,
    first_before_end: Arc<Mutex<Option<bool>>>,
    ended: Arc<AtomicBool>,
    arrived: Arc<AtomicBool>,
}
impl SinkBuilder for Recording {
    fn build(&self, _: &TaskInfo) -> Result<Box<dyn Sink>> {
        Ok(Box::new(Recording {
            rows: self.rows.clone(),
            first_before_end: self.first_before_end.clone(),
            ended: self.ended.clone(),
            arrived: self.arrived.clone(),
        }))
    }
}
impl Sink for Recording {
    fn write_batch(&mut self, batch: &Batch) -> Result<()> {
        let mut first = self.first_before_end.lock().unwrap();
        first.get_or_insert(!self.ended.load(Ordering::SeqCst));
        self.rows.lock().unwrap().extend(batch.rows().map(|r| (r.int(0).unwrap_or(-1), r.int(2).unwrap_or(-1))));
        self.arrived.store(true, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn a_window_fires_while_one_split_is_silent() {
    // Split 0 emits ts = 0, 100, 200, ... ms until rows reach the sink; split 1 says nothing until then.
    // Without idleness the window's watermark (the minimum over both splits) would stay at its start
    // until the end of input; with `idle_timeout` split 1 is left out and [0 s, 1 s) fires with the 10
    // records 0..=900 ms while the source still runs.
    let (arrived, ended) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let mut r = eddy::builtin_registry();
    register_silent_split(&mut r, arrived.clone(), ended.clone());
    let rows = Arc::new(Mutex::new(Vec::new()));
    let first_before_end = Arc::new(Mutex::new(None));
    let sink = Recording { rows: rows.clone(), first_before_end: first_before_end.clone(), ended, arrived };
    let sink = Arc::new(sink);
    r.sink("recording", move |_: serde::de::IgnoredAny, _: &PlanContext<'_>| -> Result<_, Diagnostics> {
        Ok(Recording {
            rows: sink.rows.clone(),
            first_before_end: sink.first_before_end.clone(),
            ended: sink.ended.clone(),
            arrived: sink.arrived.clone(),
        })
    });
    let yaml = "name: idle-window\nbuffer_timeout: 0\nsources:\n  s:\n    type: silent_split\n    parallelism: 2\n    \
                event_time: { field: ts, watermark_interval: 10ms, idle_timeout: 50ms }\n\
                operators:\n  w: { type: window, inputs: [s], config: { window: { tumbling: 1s }, aggregate: { n: \"count(*)\" } } }\n\
                sinks:\n  out: { type: recording, inputs: [w] }\n";
    run_with(&r, yaml);
    assert_eq!(
        *first_before_end.lock().unwrap(),
        Some(true),
        "the first window reached the sink before the end of input"
    );
    let rows = rows.lock().unwrap();
    assert_eq!(rows.first(), Some(&(0, 10)), "window [0 s, 1 s) holds ts 0..=900 ms: {rows:?}");
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

#[test]
fn ingestion_time_stamps_records_at_the_source() {
    let out = temp_dir("ingest-raw").join("out.jsonl");
    let yaml = format!(
        "name: ingest\nsources:\n  seq:\n    type: generator\n    event_time: {{ ingestion: true, watermark_interval: 0 }}\n    \
         config: {{ kind: sequence, count: 3000, keys: 3 }}\n\
         sinks:\n  out: {{ type: file, inputs: [seq], config: {{ path: {}, timestamps: epoch_ms }} }}\n",
        out.display()
    );
    let before = now_ms();
    run_with(&registry(None), &yaml);
    let after = now_ms();
    let rows = read_json(&out);
    assert_eq!(rows.len(), 3000);
    let stamps: Vec<i64> = rows.iter().map(|r| r["ingestion_time"].as_i64().expect("an ingestion_time")).collect();
    // Bounds, not values: stamped by the wall clock while the job ran, never going backwards.
    assert!(stamps.iter().all(|&t| (before..=after).contains(&t)), "{before}..{after}: {:?}", &stamps[..3]);
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(rows[0]["id"], 0, "the source's own fields come first");
}

#[test]
fn ingestion_time_windows_take_every_record_exactly_once_and_fire_at_the_end() {
    for p in [1, 2] {
        let out = temp_dir("ingest-window").join("out.jsonl");
        let yaml = format!(
            "name: ingest\nparallelism: {p}\ntime: ingestion\nsources:\n  seq: {{ type: generator, config: {{ kind: sequence, count: 5000, keys: 3 }} }}\n\
             operators:\n  w: {{ type: window, inputs: [seq], config: {{ key_by: [key], window: {{ tumbling: 100ms }}, time: ingestion, \
             aggregate: {{ n: \"count(*)\", ids: \"count(distinct id)\", lo: \"min(id)\" }} }} }}\n\
             sinks:\n  out: {{ type: file, inputs: [w], parallelism: 1, config: {{ path: {}, timestamps: epoch_ms }} }}\n",
            out.display()
        );
        run_with(&registry(None), &yaml);
        let rows = read_json(&out);
        let n: i64 = rows.iter().map(|r| r["n"].as_i64().unwrap()).sum();
        let ids: i64 = rows.iter().map(|r| r["ids"].as_i64().unwrap()).sum();
        // Every record in exactly one window: the counts add up, with no id counted twice.
        assert_eq!((n, ids), (5000, 5000), "p={p}");
        let mut fired = HashSet::new();
        for r in &rows {
            let (start, end) = (r["window_start"].as_i64().unwrap(), r["window_end"].as_i64().unwrap());
            assert_eq!((end - start, start % 100), (100, 0), "p={p}: {r}");
            assert!(fired.insert((r["key"].as_i64().unwrap(), start)), "p={p}: each window fires once: {r}");
        }
        assert!(rows.iter().all(|r| (0..3).contains(&r["key"].as_i64().unwrap())));
    }
}

/// The window counts of the bundled bids per `size_ms` window of `date_time`, computed directly.
fn bid_windows(size_ms: i64) -> BTreeMap<i64, i64> {
    let mut counts = BTreeMap::new();
    for line in std::fs::read_to_string(BIDS).unwrap().lines() {
        let ts: i64 = line.split(',').nth(5).unwrap().parse().unwrap();
        *counts.entry(ts - ts.rem_euclid(size_ms)).or_insert(0) += 1;
    }
    counts
}

#[test]
fn the_watermark_operator_replaces_upstream_watermarks() {
    // The source's watermark has no allowance for disorder (some bids would be late after it); the
    // `watermark` operator after a map generates its own with 2 s, which the data respects, so a window
    // after it takes every record and counts exactly what sorting the input would.
    for p in [1, 2] {
        let out = temp_dir("wm-op").join("out.jsonl");
        let yaml = format!(
            "name: wm-op\nparallelism: {p}\nsources:\n  bids:\n    type: file\n    event_time: {{ field: date_time, max_out_of_orderness: 0 }}\n    \
             config: {{ path: {BIDS}, format: csv, schema: {BID_SCHEMA} }}\n\
             operators:\n  cents: {{ type: map, inputs: [bids], config: {{ select: [auction, price, date_time] }} }}\n  \
             stamped: {{ type: watermark, inputs: [cents], config: {{ field: date_time, max_out_of_orderness: 2s, watermark_interval: 0 }} }}\n  \
             w: {{ type: window, inputs: [stamped], config: {{ window: {{ tumbling: 500ms }}, aggregate: {{ n: \"count(*)\" }} }} }}\n\
             sinks:\n  out: {{ type: file, inputs: [w], config: {{ path: {}, timestamps: epoch_ms }} }}\n",
            out.display()
        );
        let registry = eddy::builtin_registry();
        let job = eddy::job::prepare_str("t.yaml", &yaml, &[], &registry).unwrap_or_else(|r| panic!("{r}"));
        let handle = job.handle();
        job.run_with(&handle).unwrap_or_else(|e| panic!("{e}"));
        let got: BTreeMap<i64, i64> =
            read_json(&out).iter().map(|r| (r["window_start"].as_i64().unwrap(), r["n"].as_i64().unwrap())).collect();
        let expected = bid_windows(500);
        assert_eq!(expected.values().sum::<i64>(), 2000);
        assert_eq!(got, expected, "p={p}");
        let w = handle.metrics().snapshot().nodes.iter().find(|n| n.node == "w").expect("node w").total();
        assert_eq!(w.late_records_dropped, 0, "p={p}");
    }
}

#[test]
fn without_the_watermark_operator_the_tight_source_bound_makes_late_records() {
    // The control for the test above: the same job without `stamped` drops late bids.
    let out = temp_dir("wm-op-control").join("out.jsonl");
    let yaml = format!(
        "name: wm-op\nsources:\n  bids:\n    type: file\n    event_time: {{ field: date_time, max_out_of_orderness: 0, watermark_interval: 0 }}\n    \
         config: {{ path: {BIDS}, format: csv, schema: {BID_SCHEMA} }}\n\
         operators:\n  w: {{ type: window, inputs: [bids], config: {{ window: {{ tumbling: 500ms }}, aggregate: {{ n: \"count(*)\" }} }} }}\n\
         sinks:\n  out: {{ type: file, inputs: [w], config: {{ path: {} }} }}\n",
        out.display()
    );
    let registry = eddy::builtin_registry();
    let job = eddy::job::prepare_str("t.yaml", &yaml, &[], &registry).unwrap_or_else(|r| panic!("{r}"));
    let handle = job.handle();
    job.run_with(&handle).unwrap_or_else(|e| panic!("{e}"));
    let w = handle.metrics().snapshot().nodes.iter().find(|n| n.node == "w").expect("node w").total();
    assert!(w.late_records_dropped > 0);
}

#[test]
fn the_watermark_operator_trails_its_own_field_and_ends_at_the_maximum() {
    let max_ts = 1_700_000_000_000i64 + 1999;
    let out = temp_dir("wm-op-probe").join("probe.jsonl");
    let yaml = format!(
        "name: wm\nsources:\n  bids: {{ type: file, config: {{ path: {BIDS}, format: csv, schema: {BID_SCHEMA} }} }}\n\
         operators:\n  stamped: {{ type: watermark, inputs: [bids], config: {{ field: date_time, max_out_of_orderness: 2s, watermark_interval: 0 }} }}\n  \
         probe: {{ type: probe, inputs: [stamped], config: {{ field: date_time }} }}\n\
         sinks:\n  out: {{ type: file, inputs: [probe], config: {{ path: {} }} }}\n",
        out.display()
    );
    run_with(&registry(None), &yaml);
    let rows = read_json(&out);
    let wms: Vec<i64> = rows.iter().map(|r| r["watermark"].as_i64().unwrap()).collect();
    assert!(wms.len() >= 2, "{wms:?}");
    assert_eq!(*wms.last().unwrap(), i64::MAX);
    assert!(wms[..wms.len() - 1].iter().all(|&w| w < max_ts - 2000), "{wms:?}");
    assert_eq!(rows.last().unwrap()["seen"], 2000);
    assert_eq!(rows.last().unwrap()["late"], 0);
}
