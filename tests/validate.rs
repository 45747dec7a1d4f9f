//! `eddy validate` on broken topologies: every problem, with line and column, pinned as snapshots.
//!
//! Each `tests/broken/NAME.yaml` has its expected stderr in `tests/broken/NAME.stderr`. To update the
//! snapshots after an intended change of wording: `EDDY_BLESS=1 cargo test --release --test validate`,
//! then review the diff.
use std::path::Path;
use std::process::Command;

fn eddy(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_eddy")).args(args).env("NO_COLOR", "1").output().expect("run eddy");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn broken_topologies_report_every_problem_with_its_location() {
    let dir = Path::new("tests/broken");
    let mut cases: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 9);
    let bless = std::env::var_os("EDDY_BLESS").is_some();
    let mut failures = Vec::new();
    for case in cases {
        let file = case.to_str().unwrap();
        let (code, stdout, stderr) = eddy(&["validate", file]);
        assert_eq!(code, 2, "{file}: exit code; stdout: {stdout}");
        assert!(!stderr.contains("panicked"), "{file} panicked: {stderr}");
        let snap = case.with_extension("stderr");
        if bless {
            std::fs::write(&snap, &stderr).unwrap();
        } else {
            let expected = std::fs::read_to_string(&snap).unwrap_or_default();
            if expected != stderr {
                failures.push(format!("--- {}\n{}\n+++ actual\n{}", snap.display(), expected, stderr));
            }
        }
    }
    assert!(failures.is_empty(), "snapshot mismatch (EDDY_BLESS=1 to update):\n{}", failures.join("\n"));
}

#[test]
fn the_examples_validate() {
    for ex in [
        "examples/quickstart.yaml",
        "examples/wordcount.yaml",
        "examples/generator.yaml",
        "examples/joins.yaml",
        "examples/time.yaml",
    ] {
        let (code, stdout, stderr) = eddy(&["validate", ex]);
        assert_eq!(code, 0, "{ex}: {stderr}");
        assert!(stdout.contains(": ok"), "{stdout}");
    }
    for q in ["q1", "q2", "count"] {
        let f = format!("bench/topologies/{q}.yaml");
        let (code, _, stderr) = eddy(&["validate", &f, "--set", "sources.bids.config.path=examples/data/bids.csv"]);
        assert_eq!(code, 0, "{f}: {stderr}");
    }
}

#[test]
fn a_missing_file_and_bad_flags_are_reported_not_panicked() {
    let (code, _, stderr) = eddy(&["validate", "no/such/job.yaml"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no/such/job.yaml"), "{stderr}");
    let (code, _, stderr) = eddy(&["run", "examples/quickstart.yaml", "--set", "parallelism"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--set parallelism"), "{stderr}");
}

#[test]
fn graph_prints_chains_and_dot() {
    let (code, stdout, stderr) = eddy(&["graph", "examples/quickstart.yaml"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("bids -> euros -> big"), "{stdout}");
    assert!(stdout.contains("--hash-->"), "{stdout}");
    let (code, stdout, _) = eddy(&["graph", "examples/quickstart.yaml", "--dot"]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("digraph"), "{stdout}");
}
