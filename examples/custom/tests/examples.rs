//! The examples end to end, through the real `eddy-custom` binary: each YAML topology runs on its bundled
//! input (or a loopback TCP server) and its output is checked; `validate` reports the custom operators'
//! config errors with file, line and column like the built-ins'.
mod support;

use eddy_examples::part_files;
use serde_json::json;
use std::io::Write;
use std::net::TcpListener;
use support::{eddy_custom, read_jsonl, root, run_job, sorted, temp_dir};

/// 2024-03-01T00:00:00Z in epoch milliseconds.
const MARCH_1: i64 = 1_709_251_200_000;

fn at(h: i64, m: i64, s: i64, ms: i64) -> i64 {
    MARCH_1 + ((h * 60 + m) * 60 + s) * 1000 + ms
}

/// The four frauds planted in `data/transactions.csv` (between near misses that must not alert).
fn planted_frauds() -> Vec<serde_json::Value> {
    let alert = |account: &str, small: (i64, f64), large: (i64, f64)| {
        json!({ "account": account, "small_time": small.0, "small_amount": small.1,
                "large_time": large.0, "large_amount": large.1 })
    };
    vec![
        alert("acct-03", (at(9, 5, 0, 123), 0.42), (at(9, 5, 25, 123), 742.1)),
        alert("acct-05", (at(9, 9, 0, 500), 0.99), (at(9, 10, 0, 500), 501.0)),
        alert("acct-06", (at(9, 22, 0, 0), 0.75), (at(9, 22, 40, 0), 520.0)),
        alert("acct-04", (at(9, 27, 5, 900), 0.3), (at(9, 27, 30, 900), 777.77)),
    ]
}

#[test]
fn fraud_detector_finds_the_planted_frauds_at_any_parallelism() {
    for parallelism in ["1", "2", "3"] {
        let out = temp_dir("fraud").join("alerts");
        run_job(
            "examples/custom/fraud.yaml",
            &[
                format!("sinks.out.config.path={}", out.display()),
                format!("operators.alerts.parallelism={parallelism}"),
            ],
        );
        let alerts = part_files::read_dir(&out).unwrap();
        assert_eq!(sorted(&alerts), sorted(&planted_frauds()), "parallelism {parallelism}");
        // Without checkpoints the sink publishes one part file per subtask at the end, nothing else.
        let names: Vec<String> =
            std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert!(names.iter().all(|n| n.starts_with("part-") && n.ends_with(".jsonl")), "{names:?}");
    }
}

#[test]
fn dedup_keeps_the_first_click_of_each_user_and_page() {
    let out = temp_dir("dedup").join("first.jsonl");
    run_job("examples/custom/dedup.yaml", &[format!("sinks.out.config.path={}", out.display())]);
    let text = std::fs::read_to_string(root().join("examples/custom/data/clicks.csv")).unwrap();
    let mut seen = std::collections::HashSet::new();
    let mut expected = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if seen.insert((f[0].to_string(), f[1].to_string())) {
            expected.push(json!({ "user": f[0], "url": f[1], "time": f[2].parse::<i64>().unwrap() }));
        }
    }
    assert_eq!(expected.len(), 40);
    // Parallelism 1: the output keeps the input order.
    assert_eq!(read_jsonl(&out), expected);
}

#[test]
fn tcp_source_reads_a_loopback_server_to_its_end() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        for i in 0..2_000 {
            // Many small writes: lines arrive split across reads.
            writeln!(conn, "the quick fox {} jumps", if i % 2 == 0 { "Red" } else { "brown" }).unwrap();
        }
        conn.write_all(b"last line without newline").unwrap();
        // Dropping the connection ends the source's input, and the job.
    });
    let out = temp_dir("tcp").join("counts");
    run_job(
        "examples/custom/tcp_wordcount.yaml",
        &[format!("sources.lines.config.address={addr}"), format!("sinks.out.config.path={}", out.display())],
    );
    server.join().unwrap();
    let counts: std::collections::BTreeMap<String, i64> = part_files::read_dir(&out)
        .unwrap()
        .iter()
        .map(|r| (r["word"].as_str().unwrap().to_string(), r["count"].as_i64().unwrap()))
        .collect();
    let expected: std::collections::BTreeMap<String, i64> = [
        ("the", 2_000),
        ("quick", 2_000),
        ("fox", 2_000),
        ("jumps", 2_000),
        ("red", 1_000),
        ("brown", 1_000),
        ("last", 1),
        ("line", 1),
        ("without", 1),
        ("newline", 1),
    ]
    .iter()
    .map(|(w, n)| (w.to_string(), *n))
    .collect();
    assert_eq!(counts, expected);
}

#[test]
fn a_custom_window_equals_the_builtin_window_with_late_side_output() {
    let dir = temp_dir("windows");
    let path = |name: &str| dir.join(format!("{name}.jsonl"));
    let sets: Vec<String> = ["custom_counts", "custom_late", "builtin_counts", "builtin_late"]
        .iter()
        .map(|s| format!("sinks.{s}.config.path={}", path(s).display()))
        .collect();
    run_job("examples/custom/windows.yaml", &sets);
    let (custom, builtin) = (read_jsonl(&path("custom_counts")), read_jsonl(&path("builtin_counts")));
    let (custom_late, builtin_late) = (read_jsonl(&path("custom_late")), read_jsonl(&path("builtin_late")));
    assert!(custom.len() > 100, "{} windows", custom.len());
    assert!(!custom_late.is_empty(), "the input has late bids");
    assert_eq!(sorted(&custom), sorted(&builtin));
    assert_eq!(custom_late, builtin_late, "the same bids are late, in the same order");
    // Every bid is counted in a window or is late.
    let counted: i64 = custom.iter().map(|r| r["count"].as_i64().unwrap()).sum();
    assert_eq!(counted + custom_late.len() as i64, 2_000);
}

#[test]
fn the_examples_validate() {
    for file in [
        "fraud.yaml",
        "dedup.yaml",
        "tcp_wordcount.yaml",
        "windows.yaml",
        "fraud_chaos.yaml",
        "dedup_chaos.yaml",
        "tcp_wordcount_chaos.yaml",
        "windows_chaos.yaml",
    ] {
        let path = format!("examples/custom/{file}");
        let (code, stdout, stderr) = eddy_custom(&["validate", &path]);
        assert_eq!(code, 0, "{path}: {stderr}");
        assert!(stdout.contains(": ok"), "{stdout}");
    }
}

#[test]
fn custom_config_errors_are_located_like_builtin_ones() {
    let dir = temp_dir("validate");
    let file = dir.join("bad.yaml");
    std::fs::write(
        &file,
        "name: bad\n\
         sources:\n  \
           txns:\n    \
             type: file\n    \
             event_time: { field: time }\n    \
             config: { path: examples/custom/data/transactions.csv, format: csv, header: true, schema: { account: string, amount: float, time: timestamp_ms } }\n\
         operators:\n  \
           alerts: { type: fraud_detector, inputs: [txns], config: { threshold: lots } }\n  \
           dupes: { type: dedup, inputs: [txns], config: { key: [acount], ttl: 1h } }\n  \
           odd: { type: filter, inputs: [txns], config: { where: \"amout > 1\" } }\n\
         sinks:\n  \
           out: { type: part_files, inputs: [alerts], config: { path: out/x } }\n  \
           more: { type: blackhole, inputs: [dupes, odd] }\n",
    )
    .unwrap();
    let name = file.display().to_string();
    let (code, _, stderr) = eddy_custom(&["validate", &name]);
    assert_eq!(code, 2, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The wrong type of `threshold`, at its value, with the line shown and a caret under it: the same
    // rendering as the built-in filter's unknown field below.
    let threshold = [
        "error: `threshold`: expected a number, found a string".to_string(),
        format!(" --> {name}:8:72"),
        "  |".into(),
        "8 |   alerts: { type: fraud_detector, inputs: [txns], config: { threshold: lots } }".into(),
        format!("  |{}^", " ".repeat(72)),
    ]
    .join("\n");
    assert!(stderr.contains(&threshold), "expected\n{threshold}\nin:\n{stderr}");
    // An unknown key field of `dedup`, with a did-you-mean, like the built-in filter's.
    assert!(stderr.contains(&format!(" --> {name}:9:57")), "{stderr}");
    assert!(stderr.contains("error: dedup: the input `txns` has no field `acount`"), "{stderr}");
    assert!(stderr.contains("= hint: did you mean `account`?"), "{stderr}");
    assert!(stderr.contains(&format!(" --> {name}:10:58")), "{stderr}");
    assert!(stderr.contains("= hint: did you mean `amount`?"), "{stderr}");
    assert!(stderr.contains(&format!("3 problems in {name}")), "{stderr}");
}

#[test]
fn the_custom_binary_has_every_builtin_too() {
    let (code, stdout, stderr) = eddy_custom(&["validate", "examples/quickstart.yaml"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(": ok"), "{stdout}");
    let (code, stdout, _) = eddy_custom(&["graph", "examples/custom/fraud.yaml"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("alerts") && stdout.contains("hash"), "{stdout}");
}

#[test]
fn with_checkpoints_the_sink_publishes_by_two_phase_commit() {
    let dir = temp_dir("checkpointed");
    let job = dir.join("fraud.yaml");
    let text = std::fs::read_to_string(root().join("examples/custom/fraud.yaml")).unwrap();
    let storage = dir.join("checkpoints");
    std::fs::write(&job, format!("{text}checkpoints:\n  interval: 10ms\n  storage: file://{}\n", storage.display()))
        .unwrap();
    let out = dir.join("alerts");
    run_job(&job.display().to_string(), &[format!("sinks.out.config.path={}", out.display())]);
    assert_eq!(sorted(&part_files::read_dir(&out).unwrap()), sorted(&planted_frauds()));
    // Published per checkpoint (`part-SUBTASK-CHECKPOINT.jsonl`), nothing left pending or in progress.
    for e in std::fs::read_dir(&out).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        let parts: Vec<&str> = name.trim_end_matches(".jsonl").split('-').collect();
        assert!(name.ends_with(".jsonl") && parts.len() == 3 && parts[0] == "part", "{name}");
    }
}

#[test]
fn restoring_an_older_checkpoint_keeps_part_files_exactly_once() {
    // A run to the end that keeps every checkpoint, then a run restored from an early one (as
    // `--restore` of an older checkpoint or savepoint does): its replay must replace what was published
    // after that checkpoint, not add to it.
    let dir = temp_dir("older");
    let out = dir.join("alerts");
    let sets = [
        format!("checkpoints.storage=file://{}", dir.join("checkpoints").display()),
        "checkpoints.retain=1000".to_string(),
        format!("sinks.out.config.path={}", out.display()),
    ];
    run_job("examples/custom/fraud_chaos.yaml", &sets);
    let complete = sorted(&part_files::read_dir(&out).unwrap());
    assert!(complete.len() > 100, "{} alerts", complete.len());
    let mut checkpoints: Vec<String> = std::fs::read_dir(dir.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("chk-"))
        .collect();
    checkpoints.sort();
    assert!(checkpoints.len() > 5, "{checkpoints:?}");
    let early = &checkpoints[2];
    let id: u64 = early.trim_start_matches("chk-").parse().unwrap();
    let later = std::fs::read_dir(&out)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name().to_string_lossy().into_owned();
            name.trim_end_matches(".jsonl")
                .rsplit('-')
                .next()
                .and_then(|c| c.parse::<u64>().ok())
                .is_some_and(|c| c > id)
        })
        .count();
    assert!(later > 0, "nothing was published after checkpoint {id}: the restore would prove nothing");

    let restore = dir.join("checkpoints").join(early).display().to_string();
    let mut args = vec!["run", "examples/custom/fraud_chaos.yaml", "--no-http", "--quiet", "--restore", &restore];
    for s in &sets {
        args.extend(["--set", s]);
    }
    let (code, stdout, stderr) = eddy_custom(&args);
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    assert_eq!(sorted(&part_files::read_dir(&out).unwrap()), complete, "every alert exactly once");
}
