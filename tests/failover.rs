//! Supervision end to end: a task that panics, errors or blocks its thread is restarted under the job's
//! restart strategy, restores the last completed checkpoint, and the committed output is the same as a
//! run without the failure; region failover restarts only the failed pipeline; a strategy that gives up
//! fails the job with the cause. The failing operator is registered through the public API, as a user's.
mod common;

use common::{read_lines, temp_dir};
use eddy::api::registry::PlanContext;
use eddy::api::{Batch, Context, Diagnostics, Operator, OperatorBuilder, Result, SchemaRef, TaskInfo};
use eddy::job::{prepare_str, StartOptions};
use eddy_actors::coordinator::{JobHandle, JobStatus};
use eddy_actors::metrics::NodeTotals;
use serde::Deserialize;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How the `trouble` operator fails.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Panic,
    Error,
    /// Blocks its thread until the test releases it.
    Block,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TroubleConfig {
    mode: Mode,
    /// Fail this many times in all (over every attempt).
    times: usize,
    /// Fail only after a checkpoint has completed (so the restart restores one).
    #[serde(default)]
    after_checkpoint: bool,
}

/// Shared between the test and every attempt of the operator.
#[derive(Default)]
struct Shared {
    failed: AtomicUsize,
    released: Mutex<bool>,
    release: Condvar,
}

impl Shared {
    fn release(&self) {
        *self.released.lock().unwrap() = true;
        self.release.notify_all();
    }
}

struct TroubleBuilder {
    schema: SchemaRef,
    mode: Mode,
    times: usize,
    after_checkpoint: bool,
    shared: Arc<Shared>,
}

impl OperatorBuilder for TroubleBuilder {
    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn build(&self, info: &TaskInfo) -> Result<Box<dyn Operator>> {
        Ok(Box::new(Trouble {
            mode: self.mode,
            // Only subtask 0 fails, so that failures happen one after another.
            times: if info.subtask == 0 { self.times } else { 0 },
            armed: AtomicBool::new(!self.after_checkpoint),
            shared: self.shared.clone(),
        }))
    }
}

struct Trouble {
    mode: Mode,
    times: usize,
    armed: AtomicBool,
    shared: Arc<Shared>,
}

impl Operator for Trouble {
    fn process_batch(&mut self, input: &Batch, ctx: &mut Context<'_>) -> Result<()> {
        if self.armed.load(Ordering::SeqCst) && self.shared.failed.load(Ordering::SeqCst) < self.times {
            let n = self.shared.failed.fetch_add(1, Ordering::SeqCst) + 1;
            match self.mode {
                Mode::Panic => panic!("trouble #{n}"),
                Mode::Error => return Err(eddy::api::EddyError::user(format!("trouble #{n}"))),
                Mode::Block => {
                    let mut released = self.shared.released.lock().unwrap();
                    while !*released {
                        released = self.shared.release.wait(released).unwrap();
                    }
                }
            }
        }
        for row in input.rows() {
            ctx.batch().push_row_from(row);
        }
        Ok(())
    }

    fn on_checkpoint_complete(&mut self, _: u64) -> Result<()> {
        self.armed.store(true, Ordering::SeqCst);
        Ok(())
    }
}

fn registry(shared: &Arc<Shared>) -> eddy::api::Registry {
    let mut r = eddy::builtin_registry();
    let shared = shared.clone();
    r.operator("trouble", move |cfg: TroubleConfig, ctx: &PlanContext<'_>| -> Result<TroubleBuilder, Diagnostics> {
        Ok(TroubleBuilder {
            schema: ctx.single_input()?.schema.clone(),
            mode: cfg.mode,
            times: cfg.times,
            after_checkpoint: cfg.after_checkpoint,
            shared: shared.clone(),
        })
    });
    r
}

/// Runs a job in-process; `watch` sees the live handle on another thread.
fn run(
    yaml: &str,
    shared: &Arc<Shared>,
    watch: impl FnOnce(JobHandle) + Send + 'static,
) -> (std::result::Result<(), String>, JobStatus) {
    let registry = registry(shared);
    let mut job = prepare_str("job.yaml", yaml, &[], &registry).unwrap_or_else(|r| panic!("{r}"));
    job.start(&StartOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let handle = job.handle();
    let h = handle.clone();
    let watcher = std::thread::spawn(move || watch(h));
    let result = job.run_with(&handle).map(|_| ()).map_err(|e| e.to_string());
    watcher.join().expect("watcher");
    (result, handle.status())
}

/// Like [`run`], also returning the per-node counters.
fn run_counting(yaml: &str, shared: &Arc<Shared>) -> (std::result::Result<(), String>, JobStatus, Vec<NodeTotals>) {
    let registry = registry(shared);
    let mut job = prepare_str("job.yaml", yaml, &[], &registry).unwrap_or_else(|r| panic!("{r}"));
    job.start(&StartOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let handle = job.handle();
    let result = job.run_with(&handle).map(|_| ()).map_err(|e| e.to_string());
    (result, handle.status(), handle.metrics().totals())
}

/// Waits (polling the job's status) until `cond` holds; panics after a generous deadline.
fn wait_for(handle: &JobHandle, what: &str, cond: impl Fn(&JobStatus) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = handle.status();
        if cond(&s) || s.state.is_terminal() {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Generator -> trouble -> keyed aggregate -> exactly-once file sink.
fn aggregate_job(dir: &Path, name: &str, trouble: &str, extra: &str) -> String {
    format!(
        r#"
name: {name}
parallelism: 2
checkpoints: {{ interval: 20ms, storage: "file://{dir}/chk-{name}" }}
state: {{ dir: "{dir}/state-{name}" }}
{extra}
sources:
  gen: {{ type: generator, config: {{ kind: sequence, count: 60000, rate: 60000, keys: 50 }} }}
operators:
  trouble: {{ type: trouble, inputs: [gen], config: {trouble} }}
  totals:
    type: aggregate
    inputs: [trouble]
    config: {{ key_by: [key], mode: final, emit: {{ n: "count(*)", total: "sum(value)" }} }}
sinks:
  out: {{ type: file, inputs: [totals], config: {{ path: "{dir}/out-{name}" }} }}
"#,
        dir = dir.display()
    )
}

fn sorted_lines(path: &Path) -> Vec<String> {
    let mut lines = read_lines(path);
    lines.sort();
    lines
}

#[test]
fn a_panicking_task_is_restarted_from_the_last_checkpoint_and_the_output_is_exactly_once() {
    let dir = temp_dir("failover-panic");
    let quiet = Arc::new(Shared::default());
    let clean = aggregate_job(&dir, "clean", "{ mode: panic, times: 0 }", "");
    let (r, _) = run(&clean, &quiet, |_| {});
    r.unwrap();
    for (name, mode) in [("panic", "panic"), ("error", "error")] {
        let shared = Arc::new(Shared::default());
        let yaml = aggregate_job(
            &dir,
            name,
            &format!("{{ mode: {mode}, times: 2, after_checkpoint: true }}"),
            "restart: { strategy: fixed-delay, attempts: 5, delay: 10ms }",
        );
        let (r, status) = run(&yaml, &shared, |_| {});
        r.unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert_eq!(shared.failed.load(Ordering::SeqCst), 2, "{mode}: both planned failures fired");
        assert_eq!(status.restarts, 2, "{mode}");
        assert_eq!(status.failures.len(), 2, "{mode}: {:?}", status.failures);
        assert!(status.failures.iter().all(|f| f.node == "trouble" && f.restarted), "{:?}", status.failures);
        assert!(status.failures[0].message.contains("trouble #1"), "{:?}", status.failures[0]);
        for rec in &status.recoveries {
            assert!(rec.checkpoint.is_some(), "{mode}: a checkpoint had completed before the failure: {rec:?}");
            assert!(rec.recovered_after_ms.is_some(), "{mode}: the restarted tasks came back: {rec:?}");
        }
        let (want, got) = (sorted_lines(&dir.join("out-clean")), sorted_lines(&dir.join(format!("out-{name}"))));
        assert_eq!(want.len(), 50, "one total per key");
        assert_eq!(got, want, "{mode}: the committed output equals the clean run's");
    }
}

/// Two independent pipelines: `a` (with the failing operator) and `b`.
fn two_pipelines(dir: &Path, name: &str, failover: &str) -> String {
    format!(
        r#"
name: {name}
checkpoints: {{ interval: 20ms, storage: "file://{dir}/chk-{name}" }}
restart: {{ strategy: fixed-delay, attempts: 3, delay: 10ms }}
failover: {failover}
sources:
  a: {{ type: generator, config: {{ kind: sequence, count: 30000, rate: 30000 }} }}
  b: {{ type: generator, config: {{ kind: sequence, count: 30000, rate: 30000 }} }}
operators:
  trouble: {{ type: trouble, inputs: [a], config: {{ mode: panic, times: 1, after_checkpoint: true }} }}
sinks:
  a_out: {{ type: file, inputs: [trouble], config: {{ path: "{dir}/{name}-a" }} }}
  b_out: {{ type: file, inputs: [b], config: {{ path: "{dir}/{name}-b" }} }}
"#,
        dir = dir.display()
    )
}

#[test]
fn region_failover_restarts_only_the_failed_pipeline() {
    let dir = temp_dir("failover-region");
    for mode in ["region", "full"] {
        let shared = Arc::new(Shared::default());
        let (r, status, totals) = run_counting(&two_pipelines(&dir, mode, mode), &shared);
        r.unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert_eq!(status.restarts, 1, "{mode}");
        let rec = &status.recoveries[0];
        let emitted = |node: &str| totals.iter().find(|t| t.node == node).map_or(0, |t| t.records_out);
        match mode {
            // Each pipeline is one chained task: only `a`'s restarts, and `b` never rewinds.
            "region" => {
                assert_eq!(rec.tasks, 1, "{rec:?}");
                assert_eq!(emitted("b"), 30000, "the untouched pipeline kept its progress");
            }
            _ => assert_eq!(rec.tasks, 2, "{rec:?}"),
        }
        assert!(emitted("a") > 30000, "{mode}: the failed pipeline rewound to its checkpoint and replayed");
        for side in ["a", "b"] {
            let lines = read_lines(&dir.join(format!("{mode}-{side}")));
            assert_eq!(lines.len(), 30000, "{mode}: pipeline {side} committed every record once");
            let mut ids: Vec<&str> = lines.iter().map(|l| l.split(',').next().unwrap_or("")).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), 30000, "{mode}: pipeline {side} has no duplicates");
        }
    }
}

#[test]
fn a_strategy_that_gives_up_fails_the_job_with_the_cause() {
    let dir = temp_dir("failover-give-up");
    let shared = Arc::new(Shared::default());
    let yaml = aggregate_job(
        &dir,
        "give-up",
        "{ mode: error, times: 1000 }",
        "restart: { strategy: fixed-delay, attempts: 2, delay: 0ms }",
    );
    let (r, status) = run(&yaml, &shared, |_| {});
    let e = r.expect_err("the job fails");
    assert!(e.contains("trouble") && e.contains("fixed-delay"), "{e}");
    assert!(e.contains("2 restarts"), "{e}");
    assert_eq!(shared.failed.load(Ordering::SeqCst), 3, "the first run and two restarts");
    assert_eq!(status.restarts, 2);
    assert_eq!(status.failures.iter().filter(|f| f.restarted).count(), 2);
}

#[test]
fn a_stuck_thread_is_detected_by_heartbeats_and_its_tasks_restarted() {
    let dir = temp_dir("failover-stuck");
    let shared = Arc::new(Shared::default());
    let clean_shared = Arc::new(Shared::default());
    let (r, _) = run(&aggregate_job(&dir, "unstuck", "{ mode: block, times: 0 }", ""), &clean_shared, |_| {});
    r.unwrap();
    let yaml = aggregate_job(
        &dir,
        "stuck",
        "{ mode: block, times: 1, after_checkpoint: true }",
        "restart: { strategy: fixed-delay, attempts: 3, delay: 0ms }\nfailover: { mode: region, heartbeat_timeout: 300ms }",
    );
    let release = shared.clone();
    let (r, status) = run(&yaml, &shared, move |h| {
        wait_for(&h, "the stuck thread to be detected", |s| !s.failures.is_empty());
        release.release();
    });
    r.unwrap();
    assert_eq!(status.restarts, 1);
    assert!(status.failures[0].message.contains("heartbeats"), "{:?}", status.failures[0]);
    assert_eq!(sorted_lines(&dir.join("out-stuck")), sorted_lines(&dir.join("out-unstuck")));
}
