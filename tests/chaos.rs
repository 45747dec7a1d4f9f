//! `eddy chaos` end to end: a windowed aggregate and a final aggregate written by exactly-once file
//! sinks, run clean and under injected faults (task kills in every phase, panics, checkpoint-store
//! failures, dropped acknowledgements; heap and redb state), must come out `exactly-once: OK`, and each
//! test asserts how many faults fired so a quiet run cannot pass. A dropped record must be caught and
//! named, a fault that cannot fire must make the run inconclusive, and whole-process SIGKILLs with
//! `--restore latest` go through the binary. A final checkpoint whose metadata write fails is taken again.
//!
//! The generator's `rate` gives every run a floor on its duration (it cannot finish faster), so the
//! periodic faults, due within the first few hundred milliseconds, always find the job running.
mod common;

use common::{read_lines, temp_dir};
use eddy::chaos::plan::FaultSpec;
use eddy::chaos::{self, ChaosError, ChaosOptions, Outcome, Verdict};
use eddy::job::StartOptions;
use eddy_actors::checkpoint::METADATA_FILE;
use eddy_actors::faults::{FaultAction, FaultInjector, Site};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The job: 60,000 generated bids at 100,000/s (at least 0.6 s per run), written as they are, in 1 s
/// windows per auction (JSON Lines), and as totals per auction to a CSV sink with a header line per part
/// file.
fn job(dir: &Path, backend: &str, chaos: &str) -> PathBuf {
    let yaml = format!(
        r#"
name: chaos-it
parallelism: 2
batch_size: 256
checkpoints: {{ interval: 20ms, retain: 2 }}
state: {{ backend: {backend} }}
sources:
  bids:
    type: generator
    config: {{ kind: bids, count: 60000, rate: 100000, seed: 11 }}
    event_time: {{ field: date_time, max_out_of_orderness: 2s, watermark_interval: 0 }}
operators:
  cheap:
    type: filter
    inputs: [bids]
    config: {{ where: "price > 0" }}
  per_auction:
    type: window
    inputs: [cheap]
    config: {{ key_by: [auction], window: {{ tumbling: 1s }}, aggregate: {{ bids: "count(*)", top: "max(price)" }} }}
  totals:
    type: aggregate
    inputs: [cheap]
    config: {{ key_by: [auction], mode: final, emit: {{ bids: "count(*)", total: "sum(price)" }} }}
sinks:
  rows: {{ type: file, inputs: [cheap], config: {{ path: out/rows }} }}
  windows: {{ type: file, inputs: [per_auction], config: {{ path: out/windows }} }}
  totals_csv: {{ type: file, inputs: [totals], config: {{ path: out/totals, format: csv, header: true }} }}
{chaos}
"#
    );
    let path = dir.join("job.yaml");
    std::fs::write(&path, yaml).expect("write job");
    path
}

fn options(dir: &Path, file: PathBuf) -> ChaosOptions {
    ChaosOptions { file, workdir: Some(dir.join("work")), ..ChaosOptions::default() }
}

fn run(opts: &ChaosOptions) -> chaos::ChaosReport {
    let registry = eddy::builtin_registry();
    chaos::run(&registry, opts).unwrap_or_else(|e| panic!("{e}"))
}

/// Kills cycling through the four phases (five instances: the restore-phase one fires in the restart
/// the fifth causes), capped panics, storage failures and dropped acknowledgements.
const EVERY_FAULT: &str = r#"
chaos:
  seed: 7
  faults:
    - { kill_task: any, every: 30ms, count: 5 }
    - { panic_in: per_auction, probability: 0.001, count: 2 }
    - { fail_checkpoint_storage: 0.2, count: 3 }
    - { drop_checkpoint_ack: 0.2, count: 2 }
"#;

fn survives_every_fault(backend: &str) {
    let dir = temp_dir(&format!("chaos-{backend}"));
    let report = run(&options(&dir, job(&dir, backend, EVERY_FAULT)));
    println!("{report}");
    for sink in ["rows", "windows", "totals_csv"] {
        let v = report.verdict(sink).expect("a verdict per file sink");
        assert_eq!(v.verdict, Verdict::ExactlyOnce, "{report}");
        assert!(v.clean_records > 0, "{sink} wrote nothing: {report}");
    }
    // The CSV header is a header per part file, not a record.
    assert!(report.verdict("totals_csv").is_some_and(|v| v.missing.is_empty() && v.extra.is_empty()));
    assert_eq!(report.fired_of("kill_task"), 5, "{report}");
    let phases: Vec<&str> = report.fired.iter().filter(|f| f.kind == "kill_task").map(|f| f.phase.as_str()).collect();
    for phase in ["processing", "snapshot", "restore", "commit"] {
        assert!(phases.contains(&phase), "no kill in the {phase} phase: {report}");
    }
    assert_eq!(report.fired_of("panic_in"), 2, "{report}");
    assert!(report.fired_of("fail_checkpoint_storage") >= 1, "{report}");
    assert!(report.fired_of("drop_checkpoint_ack") >= 1, "{report}");
    // Failures close together are recovered by one restart, so there are fewer recoveries than faults.
    assert!(report.restarts >= 3, "{report}");
    assert_eq!(report.recoveries.len() as u64, report.restarts, "a recovery record per restart: {report}");
    assert!(report.recovery_summary().is_some(), "{report}");
    assert_eq!(report.outcome(), Outcome::Ok, "{report}");
    assert_eq!(report.exit_code(), 0);
}

#[test]
fn heap_state_is_exactly_once_under_kills_panics_storage_failures_and_dropped_acks() {
    survives_every_fault("heap");
}

#[test]
fn redb_state_is_exactly_once_under_kills_panics_storage_failures_and_dropped_acks() {
    survives_every_fault("redb");
}

#[test]
fn a_dropped_record_is_reported_as_lost_and_named() {
    let dir = temp_dir("chaos-drop");
    let file = job(&dir, "heap", "chaos: { seed: 3, faults: [ { drop_record: cheap, count: 1 } ] }");
    let report = run(&options(&dir, file));
    println!("{report}");
    assert_eq!(report.fired_of("drop_record"), 1, "{report}");
    let rows = report.verdict("rows").expect("rows verdict");
    assert_eq!(rows.verdict, Verdict::Lost, "{report}");
    assert_eq!((rows.lost(), rows.surplus()), (1, 0), "{report}");
    assert!(report.to_string().contains(&format!("- {}    (clean x1, under faults x0)", rows.missing[0].record)));
    // One bid fewer: its auction's total is wrong and its window's count too.
    let totals = report.verdict("totals_csv").expect("totals verdict");
    assert_eq!(totals.verdict, Verdict::Incorrect, "{report}");
    assert_eq!((totals.missing.len(), totals.extra.len()), (1, 1), "{report}");
    let text = report.to_string();
    assert!(text.contains(&format!("- {}", totals.missing[0].record)), "the lost total is named: {text}");
    assert!(text.contains(&format!("+ {}", totals.extra[0].record)), "the wrong total is named: {text}");
    assert!(matches!(report.outcome(), Outcome::Failed(_)), "{report}");
    assert_eq!(report.exit_code(), 1);
}

#[test]
fn a_fault_that_cannot_fire_is_inconclusive() {
    let dir = temp_dir("chaos-quiet");
    let file = job(&dir, "heap", "chaos: { seed: 1, faults: [ { fail_checkpoint_storage: 0 } ] }");
    let report = run(&options(&dir, file));
    assert_eq!(report.faults_fired(), 0, "{report}");
    assert!(report.sinks.iter().all(|s| s.verdict == Verdict::ExactlyOnce), "{report}");
    assert_eq!(report.outcome(), Outcome::Inconclusive("#1 fail_checkpoint_storage never fired".into()));
    assert_eq!(report.exit_code(), 1);
    assert!(report.to_string().contains("windows: inconclusive"), "{report}");
}

#[test]
fn the_plan_is_printed_and_the_same_seed_gives_the_same_plan() {
    let dir = temp_dir("chaos-plan");
    let file = job(&dir, "heap", EVERY_FAULT);
    let registry = eddy::builtin_registry();
    let a = chaos::prepare(&registry, &options(&dir, file.clone())).expect("prepare");
    let b = chaos::prepare(&registry, &options(&dir, file.clone())).expect("prepare");
    assert_eq!(a.plan(), b.plan());
    assert!(a.header().contains("seed 7; fault plan:"), "{}", a.header());
    assert!(a.header().contains("#1 kill_task any every 30ms, at most 5"), "{}", a.header());
    // --seed and --fault take precedence over the section.
    let opts = ChaosOptions { seed: Some(8), faults: vec!["drop_checkpoint_ack: 0.5".into()], ..options(&dir, file) };
    let c = chaos::prepare(&registry, &opts).expect("prepare");
    assert_eq!(c.plan().seed, 8);
    assert_eq!(c.plan().faults.len(), 1);
    assert_eq!(c.plan().faults[0].spec, FaultSpec::DropCheckpointAck { probability: 0.5, count: None });
}

#[test]
fn jobs_that_cannot_be_compared_are_refused() {
    let dir = temp_dir("chaos-refused");
    let registry = eddy::builtin_registry();
    let refuse = |yaml: String| {
        let file = dir.join("bad.yaml");
        std::fs::write(&file, yaml).unwrap();
        match chaos::prepare(&registry, &options(&dir, file)) {
            Err(e) => e,
            Ok(_) => panic!("accepted"),
        }
    };
    let base = std::fs::read_to_string(job(&dir, "heap", "")).unwrap();
    let e = refuse(base.replace("count: 60000, ", ""));
    assert!(matches!(e, ChaosError::Unbounded { .. }), "{e}");
    assert!(e.to_string().contains("source bids never ends"), "{e}");
    let e = refuse(base.replace("checkpoints: { interval: 20ms, retain: 2 }\n", ""));
    assert!(matches!(e, ChaosError::NoCheckpoints(_)), "{e}");
    let e = refuse(
        base.replace("type: file", "type: blackhole")
            .replace(", config: { path: out/rows }", "")
            .replace(", config: { path: out/windows }", "")
            .replace(", config: { path: out/totals, format: csv, header: true }", ""),
    );
    assert!(matches!(e, ChaosError::NoComparableSink { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("(its sinks: `rows` (blackhole), `windows` (blackhole), `totals_csv` (blackhole))"),
        "{text}"
    );
    assert!(text.contains("implementing `SinkBuilder::output_files`"), "{text}");
    assert_eq!(e.exit_code(), 2);
    let e = refuse(format!("{base}chaos:\n  faults:\n    - {{ kill_task: per_auctoin, every: 1s }}\n"));
    let text = e.to_string();
    assert!(text.contains("unknown node `per_auctoin`"), "{text}");
    assert!(text.contains("bad.yaml:32:20"), "located in the file: {text}");
    assert!(text.contains("did you mean `per_auction`?"), "{text}");
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn binary_kill_process_is_exactly_once_and_validate_knows_the_chaos_section() {
    let dir = temp_dir("chaos-bin");
    let file = job(&dir, "heap", EVERY_FAULT);
    let eddy = env!("CARGO_BIN_EXE_eddy");
    let out = Command::new(eddy).arg("validate").arg(&file).output().expect("run eddy validate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bad = dir.join("bad.yaml");
    let text = std::fs::read_to_string(&file).unwrap().replace("probability: 0.001", "probability: 2");
    std::fs::write(&bad, text).unwrap();
    let out = Command::new(eddy).arg("validate").arg(&bad).output().expect("run eddy validate");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("`chaos.faults[1].probability`: expected a probability between 0 and 1, got `2`"), "{err}");
    assert!(err.contains("bad.yaml:34:45"), "{err}");

    let out = Command::new(eddy)
        .args(["chaos", "--kill-process=2", "--seed", "5", "--workdir"])
        .arg(dir.join("work"))
        .arg(&file)
        .output()
        .expect("run eddy chaos");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(stdout.contains("seed 5; fault plan:\n  #1 kill_process (SIGKILL) 2 time(s)"), "{stdout}");
    assert!(stdout.contains("note: --kill-process runs plain `eddy run` children"), "{stdout}");
    assert!(stdout.contains("windows: exactly-once: OK"), "{stdout}");
    assert!(stdout.contains("totals_csv: exactly-once: OK"), "{stdout}");
    // The first kill lands for sure: a child cannot finish in less than the input's 0.6 s.
    let kills = stdout.lines().filter(|l| l.contains(" kill_process ") && l.contains("eddy run (pid")).count();
    assert!(kills >= 1, "{stdout}");
    assert!(stdout.contains("result: OK"), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0));
}

/// Fails the first write of a checkpoint's metadata, and nothing else.
#[derive(Default)]
struct FailFirstMetadata {
    metadata_writes: AtomicU64,
}

impl FaultInjector for FailFirstMetadata {
    fn at(&self, _site: Site<'_>) -> FaultAction {
        FaultAction::None
    }

    fn fail_storage_write(&self, path: &str) -> Option<String> {
        let first = path.ends_with(METADATA_FILE) && self.metadata_writes.fetch_add(1, Ordering::SeqCst) == 0;
        first.then(|| "injected metadata write failure".to_string())
    }

    fn drop_ack(&self, _node: &str, _subtask: usize, _checkpoint: u64) -> bool {
        false
    }
}

#[test]
fn a_final_checkpoint_whose_metadata_write_fails_is_taken_again() {
    // Found by `eddy chaos` on examples/custom/tcp_wordcount_chaos.yaml: every task had acknowledged the
    // final checkpoint, its metadata write failed, and the job waited for it forever.
    let dir = temp_dir("chaos-final-metadata");
    let yaml = format!(
        r#"
name: final-metadata
parallelism: 2
checkpoints: {{ interval: 1h, tolerable_failures: 3, storage: "file://{}" }}
sources:
  seq: {{ type: generator, config: {{ kind: sequence, count: 5000 }} }}
sinks:
  out: {{ type: file, inputs: [seq], config: {{ path: "{}" }} }}
"#,
        dir.join("checkpoints").display(),
        dir.join("out").display()
    );
    let registry = eddy::builtin_registry();
    let mut job = eddy::job::prepare_str("final.yaml", &yaml, &[], &registry).unwrap_or_else(|r| panic!("{r}"));
    job.start(&StartOptions::default()).expect("set up the checkpoint storage");
    let injector = Arc::new(FailFirstMetadata::default());
    job.graph.supervision.faults = Some(injector.clone());
    let handle = job.handle();
    job.run_with(&handle).expect("the job finishes");
    let status = handle.status();
    // The periodic checkpoints never come (1h): the only ones are the final checkpoint and its retry.
    assert_eq!(injector.metadata_writes.load(Ordering::SeqCst), 2);
    assert_eq!((status.checkpoints.completed, status.checkpoints.failed), (1, 1));
    assert_eq!(status.restarts, 0, "retried within tolerable_failures, without a restart");
    assert_eq!(read_lines(&dir.join("out")).len(), 5000);
}
