//! Bounded memory under backpressure, and bad input records: failing with a location, or skipped and
//! counted.
mod common;
use common::*;
use std::process::Command;

/// Parses `node a->b` and the flags after it from the run summary line.
fn node_field<'a>(summary: &'a str, node: &str) -> &'a str {
    let start = summary.find(&format!(" {node} ")).unwrap_or_else(|| panic!("{node} in {summary}")) + 1;
    let rest = &summary[start..];
    &rest[..rest.find(", ").unwrap_or(rest.len())]
}

#[test]
fn a_slow_sink_throttles_ten_million_records_in_bounded_memory() {
    let dir = temp_dir("backpressure");
    let job = dir.join("job.yaml");
    std::fs::write(
        &job,
        "name: backpressure\nsources:\n  gen: { type: generator, parallelism: 2, config: { kind: bids, count: 10000000 } }\n\
         sinks:\n  slow: { type: blackhole, parallelism: 1, inputs: [gen], config: { delay_per_batch: 500us } }\n",
    )
    .unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_eddy")).args(["run", job.to_str().unwrap(), "--no-http"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let summary = stderr.lines().find(|l| l.contains("finished in")).expect("summary line");
    assert!(node_field(summary, "slow").starts_with("slow 10000000->10000000"), "{summary}");
    // The source was held back by the full channel: it waited many times rather than buffering ahead.
    let gen = node_field(summary, "gen");
    let waits: u64 = gen
        .split("throttled ")
        .nth(1)
        .and_then(|s| s.trim_end_matches([')', 'x']).parse().ok())
        .unwrap_or_else(|| panic!("gen was never throttled: {summary}"));
    assert!(waits > 100, "{summary}");
    let rss: u64 = summary
        .split("peak RSS ")
        .nth(1)
        .and_then(|s| s.trim_end_matches(" MB").parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in {summary}"));
    eprintln!("backpressure run: {summary}");
    assert!(rss < 200, "peak RSS {rss} MB: {summary}");
}

fn bad_csv(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("bad.csv");
    std::fs::write(&path, "1,10,100\n2,20,200\n3,thirty,300\n4,40,400\n").unwrap();
    path
}

#[test]
fn a_malformed_record_fails_the_job_with_file_line_and_field() {
    let dir = temp_dir("badcsv");
    let csv = bad_csv(&dir);
    let yaml = format!(
        "name: bad\nsources:\n  nums: {{ type: file, config: {{ path: {}, format: csv, schema: {{ a: int, b: int, c: int }} }} }}\n\
         sinks:\n  out: {{ type: blackhole, inputs: [nums] }}\n",
        csv.display()
    );
    let err = try_run_yaml(&yaml, &[]).expect_err("the job fails");
    assert!(err.contains("bad.csv:3"), "{err}");
    assert!(err.contains("`b`"), "{err}");
    assert!(err.contains("thirty"), "{err}");
    assert!(err.contains("node `nums`"), "{err}");
}

#[test]
fn skipped_records_are_counted() {
    let dir = temp_dir("skipcsv");
    let csv = bad_csv(&dir);
    let out = dir.join("out.jsonl");
    let yaml = format!(
        "name: skip\nsources:\n  nums: {{ type: file, config: {{ path: {}, format: csv, on_error: skip, schema: {{ a: int, b: int, c: int }} }} }}\n\
         sinks:\n  out: {{ type: file, inputs: [nums], config: {{ path: {} }} }}\n",
        csv.display(),
        out.display()
    );
    let summary = run_yaml(&yaml, &[]);
    let src = summary.nodes.iter().find(|n| n.node == "nums").unwrap();
    assert_eq!((src.records_out, src.records_skipped), (3, 1));
    assert_eq!(read_lines(&out).len(), 3);
}
