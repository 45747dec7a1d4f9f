//! Exactly-once end to end: a bounded job (file source -> key_by -> aggregate and window -> exactly-once
//! file sinks) is interrupted at many points (cancelled after k source records, or the whole process
//! killed with SIGKILL), restored from the latest checkpoint and run to the end; its committed output
//! must equal that of an uninterrupted run, record for record. Heap and redb, parallelism 1 and 3;
//! also: restoring one checkpoint twice, a corrupt newest checkpoint, and rescaling 2 -> 4 and 4 -> 1.
mod common;

use common::temp_dir;
use eddy::api::Registry;
use eddy::job::{prepare_str, StartOptions};
use eddy_actors::coordinator::JobHandle;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ROWS: u64 = 120_000;

/// A deterministic bid file: 500 auctions, event time 1 ms apart with every tenth record up to 1.5 s
/// late (so a 2 s out-of-orderness watermark never drops one).
fn write_input(dir: &Path) -> PathBuf {
    let path = dir.join("bids.csv");
    let mut text = String::with_capacity(ROWS as usize * 40);
    for i in 0..ROWS {
        let auction = (i * 7919) % 500;
        let price = (i * 31) % 1000;
        let late = if i % 10 == 0 { (i * 13) % 1500 } else { 0 };
        let ts = 1_700_000_000_000 + i as i64 - late as i64;
        text.push_str(&format!("{auction},{},{price},web,u,{ts},x\n", i % 97));
    }
    std::fs::write(&path, text).expect("write input");
    path
}

struct Setup {
    dir: PathBuf,
    input: PathBuf,
}

impl Setup {
    fn new(name: &str) -> Self {
        let dir = temp_dir(name);
        let input = write_input(&dir);
        Setup { dir, input }
    }

    fn yaml(&self, run: &str, backend: &str, parallelism: usize, storage: &str) -> String {
        let out = self.dir.join(run);
        format!(
            r#"
name: exactly-once
parallelism: {parallelism}
batch_size: 256
checkpoints:
  interval: 5ms
  storage: {storage}
  retain: 2
state:
  backend: {backend}
  dir: {state}
sources:
  bids:
    type: file
    config:
      path: {input}
      format: csv
      schema: {schema}
    event_time: {{ field: date_time, max_out_of_orderness: 2s, watermark_interval: 0 }}
operators:
  totals:
    type: aggregate
    inputs: [bids]
    config:
      key_by: [auction]
      mode: final
      emit: {{ bids: "count(*)", total: "sum(price)" }}
  per_second:
    type: window
    inputs: [bids]
    config:
      key_by: [auction]
      window: {{ tumbling: 1s }}
      aggregate: {{ bids: "count(*)", top: "max(price)" }}
sinks:
  totals_out:
    type: file
    inputs: [totals]
    config: {{ path: {out}/totals }}
  windows_out:
    type: file
    inputs: [per_second]
    config: {{ path: {out}/windows }}
"#,
            state = self.dir.join("state").display(),
            input = self.input.display(),
            schema = common::BID_SCHEMA,
            out = out.display(),
        )
    }

    fn storage(&self, name: &str) -> String {
        format!("file://{}", self.dir.join(name).display())
    }
}

fn registry() -> Registry {
    eddy::builtin_registry()
}

/// Runs a job in-process; `cancel_after` cancels it once the source has emitted that many records.
/// Returns the notes of the start (which checkpoint was restored, which were skipped).
fn run(yaml: &str, restore: Option<&str>, cancel_after: Option<u64>) -> Result<Vec<String>, String> {
    let registry = registry();
    let mut job = prepare_str("job.yaml", yaml, &[], &registry).map_err(|r| r.to_string())?;
    let notes = job
        .start(&StartOptions { restore: restore.map(String::from), allow_non_restored_state: false })
        .map_err(|e| e.to_string())?;
    let handle = job.handle();
    let watcher = cancel_after.map(|k| {
        let h = handle.clone();
        std::thread::spawn(move || cancel_when(&h, k))
    });
    let r = job.run_with(&handle).map(|_| notes).map_err(|e| e.to_string());
    if let Some(w) = watcher {
        let _ = w.join();
    }
    r
}

/// Cancels the job once its source has emitted `k` records (or lets it end).
fn cancel_when(h: &JobHandle, k: u64) {
    loop {
        if h.state().is_terminal() {
            return;
        }
        let emitted = h.metrics().totals().iter().find(|n| n.node == "bids").map_or(0, |n| n.records_out);
        // Also wait for completed checkpoints: on a loaded machine the source can get to `k` first,
        // and a restore (or a fallback past a damaged checkpoint) needs something to restore.
        if emitted >= k && h.status().checkpoints.completed >= 2 {
            let _ = h.cancel();
            return;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// The committed output of a sink directory: every line of its `part-*` files, sorted.
fn output(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return lines };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with("part-") {
            let text = std::fs::read_to_string(e.path()).expect("read part file");
            lines.extend(text.lines().map(String::from));
        }
    }
    lines.sort();
    lines
}

fn outputs(s: &Setup, run: &str) -> (Vec<String>, Vec<String>) {
    (output(&s.dir.join(run).join("totals")), output(&s.dir.join(run).join("windows")))
}

fn assert_same(s: &Setup, expected: &(Vec<String>, Vec<String>), run: &str, what: &str) {
    let got = outputs(s, run);
    assert_eq!(got.0.len(), 500, "{what}: one total per auction");
    assert!(got.0 == expected.0, "{what}: totals differ from the uninterrupted run");
    assert_eq!(got.1.len(), expected.1.len(), "{what}: number of window results");
    assert!(got.1 == expected.1, "{what}: window results differ from the uninterrupted run");
}

/// Cancels at several points, restores from the latest checkpoint each time, and runs to the end.
fn interrupted_runs_match(backend: &str, parallelism: usize) {
    let s = Setup::new(&format!("eo-{backend}-{parallelism}"));
    run(&s.yaml("clean", backend, parallelism, &s.storage("clean-chk")), None, None).expect("clean run");
    let expected = outputs(&s, "clean");
    assert_eq!(expected.0.len(), 500);
    let mut restored = 0;
    for (i, k) in [1_000, 20_000, 47_000, 90_000].into_iter().enumerate() {
        let run_name = format!("cut{i}");
        let yaml = s.yaml(&run_name, backend, parallelism, &s.storage(&format!("chk{i}")));
        // The first attempt may finish before the cancel lands: then restoring it is a no-op, still checked.
        let _ = run(&yaml, None, Some(k));
        let notes = run(&yaml, Some("latest"), None).unwrap_or_else(|e| panic!("restore after {k} records: {e}"));
        restored += notes.iter().filter(|n| n.starts_with("restoring from checkpoint")).count();
        assert_same(&s, &expected, &run_name, &format!("{backend} p{parallelism} cancelled after {k}"));
    }
    assert!(restored >= 2, "only {restored} of 4 cuts restored from a checkpoint: the test did not interrupt the job");
}

#[test]
fn heap_parallelism_1_is_exactly_once_across_cancels() {
    interrupted_runs_match("heap", 1);
}

#[test]
fn heap_parallelism_3_is_exactly_once_across_cancels() {
    interrupted_runs_match("heap", 3);
}

#[test]
fn redb_parallelism_1_is_exactly_once_across_cancels() {
    interrupted_runs_match("redb", 1);
}

#[test]
fn redb_parallelism_3_is_exactly_once_across_cancels() {
    interrupted_runs_match("redb", 3);
}

/// The newest checkpoint directory with `_metadata`.
fn newest_checkpoint(storage_dir: &Path) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(storage_dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("chk-")))
        .filter(|p| p.join("_metadata").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

#[test]
fn restoring_one_checkpoint_twice_is_still_exactly_once() {
    let s = Setup::new("eo-twice");
    run(&s.yaml("clean", "heap", 2, &s.storage("clean-chk")), None, None).expect("clean run");
    let expected = outputs(&s, "clean");
    let storage = s.storage("chk");
    let yaml = s.yaml("twice", "heap", 2, &storage);
    let _ = run(&yaml, None, Some(40_000));
    let chk = newest_checkpoint(&s.dir.join("chk")).expect("a checkpoint before the cancel");
    let name = chk.file_name().unwrap().to_string_lossy().to_string();
    // First restore: cancelled again part of the way; second restore from the same checkpoint runs to the end.
    let _ = run(&yaml, Some(&name), Some(60_000));
    run(&yaml, Some(&name), None).expect("second restore of the same checkpoint");
    assert_same(&s, &expected, "twice", "restored twice from one checkpoint");
}

#[test]
fn a_corrupt_newest_checkpoint_falls_back_to_the_previous_one() {
    let s = Setup::new("eo-corrupt");
    run(&s.yaml("clean", "heap", 1, &s.storage("clean-chk")), None, None).expect("clean run");
    let expected = outputs(&s, "clean");
    let yaml = s.yaml("corrupt", "heap", 1, &s.storage("chk"));
    let _ = run(&yaml, None, Some(80_000));
    let newest = newest_checkpoint(&s.dir.join("chk")).expect("a checkpoint before the cancel");
    // Flip bytes in the middle of every task file of the newest checkpoint.
    for f in std::fs::read_dir(&newest).unwrap().flatten() {
        if f.file_name() != "_metadata" {
            let mut bytes = std::fs::read(f.path()).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
            std::fs::write(f.path(), bytes).unwrap();
        }
    }
    let notes = run(&yaml, Some("latest"), None).expect("restore falls back");
    assert!(notes.iter().any(|n| n.starts_with("skipped damaged checkpoint")), "{notes:?}");
    assert!(notes.iter().any(|n| n.starts_with("restoring from checkpoint")), "{notes:?}");
    assert_same(&s, &expected, "corrupt", "after falling back from a corrupt checkpoint");
}

#[test]
fn retention_deletes_what_earlier_runs_left_but_never_the_restored_checkpoint() {
    let s = Setup::new("eo-retain");
    let yaml = s.yaml("retain", "heap", 1, &s.storage("chk"));
    let _ = run(&yaml, None, Some(40_000));
    let chk = s.dir.join("chk");
    let restored = newest_checkpoint(&chk).expect("a checkpoint before the cancel");
    // What a run killed while taking a checkpoint leaves: task files without `_metadata`.
    let stale = chk.join("chk-0000000000");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("0.0.snap"), b"half").unwrap();
    let notes = run(&yaml, Some("latest"), None).expect("restore to the end");
    assert!(notes.iter().any(|n| n.starts_with("restoring from checkpoint")), "{notes:?}");
    let mut left: Vec<PathBuf> = std::fs::read_dir(&chk).unwrap().flatten().map(|e| e.path()).collect();
    left.sort();
    assert!(!stale.exists(), "the incomplete checkpoint of the killed run is deleted: {left:?}");
    assert!(restored.join("_metadata").exists(), "the restored checkpoint is kept: {left:?}");
    // What the final checkpoint retires is deleted in the background and may outlive the job (the next
    // run counts it as a leftover), so the number of newer checkpoints is not asserted here.
    let newer = left.iter().filter(|p| **p > restored).count();
    assert!(newer >= 1, "this run's checkpoints are there: {left:?}");
    assert_eq!(left.len(), newer + 1, "nothing older than the restored checkpoint is left: {left:?}");
}

fn rescale(from: usize, to: usize) {
    let s = Setup::new(&format!("eo-rescale-{from}-{to}"));
    run(&s.yaml("clean", "heap", 1, &s.storage("clean-chk")), None, None).expect("clean run");
    let expected = outputs(&s, "clean");
    let storage = s.storage("chk");
    let _ = run(&s.yaml("rescaled", "heap", from, &storage), None, Some(50_000));
    let notes = run(&s.yaml("rescaled", "heap", to, &storage), Some("latest"), None).expect("restore rescaled");
    assert!(notes.iter().any(|n| n.starts_with("restoring from checkpoint")), "{notes:?}");
    assert_same(&s, &expected, "rescaled", &format!("rescaled {from} -> {to}"));
}

#[test]
fn rescaling_2_to_4_keeps_results_identical() {
    rescale(2, 4);
}

#[test]
fn rescaling_4_to_1_keeps_results_identical() {
    rescale(4, 1);
}

#[test]
fn sigkill_of_the_process_and_restore_latest_is_exactly_once() {
    let s = Setup::new("eo-kill");
    run(&s.yaml("clean", "heap", 2, &s.storage("clean-chk")), None, None).expect("clean run");
    let expected = outputs(&s, "clean");
    let yaml = s.yaml("killed", "heap", 2, &s.storage("chk"));
    let job = s.dir.join("job.yaml");
    std::fs::write(&job, yaml).unwrap();
    let eddy = env!("CARGO_BIN_EXE_eddy");
    for round in 0..3 {
        let mut child = std::process::Command::new(eddy)
            .args(["run", "--no-http", "-q"])
            .arg(&job)
            .args(if round == 0 { vec![] } else { vec!["--restore", "latest"] })
            .spawn()
            .expect("start eddy");
        // Kill once a checkpoint exists (or the run ended by itself).
        for _ in 0..2000 {
            if newest_checkpoint(&s.dir.join("chk")).is_some() || child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    let status = std::process::Command::new(eddy)
        .args(["run", "--no-http", "-q"])
        .arg(&job)
        .args(["--restore", "latest"])
        .status()
        .expect("run eddy");
    assert!(status.success(), "the final restore runs to the end");
    assert_same(&s, &expected, "killed", "after SIGKILLs");
}

/// Starts the local S3 server (moto) with the repo's script; panics with its output when it cannot.
fn ensure_s3() -> u16 {
    let port: u16 = std::env::var("EDDY_S3_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(9000);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/start-s3");
    let out = std::process::Command::new("bash")
        .arg(script)
        .env("EDDY_S3_PORT", port.to_string())
        .output()
        .expect("run .ci/start-s3");
    assert!(out.status.success(), "{script} failed: {}", String::from_utf8_lossy(&out.stderr));
    port
}

#[test]
fn s3_checkpoints_are_exactly_once_across_cancels() {
    let port = ensure_s3();
    let s = Setup::new("eo-s3");
    run(&s.yaml("clean", "heap", 2, &s.storage("clean-chk")), None, None).expect("clean run");
    let expected = outputs(&s, "clean");
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let storage = format!(
        "{{ url: \"s3://eddy-test/eo-{}-{nanos}\", endpoint: \"http://127.0.0.1:{port}\", region: us-east-1, \
         access_key_id: test, secret_access_key: test, disable_config_load: \"true\" }}",
        std::process::id()
    );
    // Object stores are slower per write: a longer interval keeps checkpoints from queueing up.
    let yaml = s.yaml("s3", "heap", 2, &storage).replace("interval: 5ms", "interval: 50ms");
    for k in [30_000, 70_000] {
        let _ = run(&yaml, if k == 30_000 { None } else { Some("latest") }, Some(k));
    }
    run(&yaml, Some("latest"), None).expect("restore from S3");
    assert_same(&s, &expected, "s3", "checkpointed to S3");
}
