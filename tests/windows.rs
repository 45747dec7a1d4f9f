//! The `window` operator end to end: real jobs over small hand-written inputs, with expected outputs
//! worked out by hand in the comments; plus a property test against a direct computation and pinned
//! diagnostics.
//!
//! Most jobs read their input with `batch_size: 1` and punctuated watermarks (`watermark_interval: 0`)
//! from one source subtask, so the watermark after each record is `max timestamp - out-of-orderness -
//! 1 ms` and lateness is deterministic, also with the window at parallelism 2 (the watermark reaches
//! every window subtask after the records before it).
mod common;
use common::*;
use proptest::prelude::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Input rows `(key, ts, v)` as CSV in a fresh directory.
struct Case {
    dir: PathBuf,
}

impl Case {
    fn new(name: &str, rows: &[(&str, i64, i64)]) -> Case {
        let dir = temp_dir(name);
        let text: String = rows.iter().map(|(k, ts, v)| format!("{k},{ts},{v}\n")).collect();
        std::fs::write(dir.join("in.csv"), text).expect("write input");
        Case { dir }
    }

    fn out(&self) -> PathBuf {
        self.dir.join("out.jsonl")
    }

    fn late(&self) -> PathBuf {
        self.dir.join("late.jsonl")
    }

    /// A job: source `s` (event time `ts`, out-of-orderness `ooo`), window `w` with `config` at
    /// parallelism `p`, sink of the results, and a sink of `w.late` when `late` is set.
    fn yaml(&self, p: usize, ooo: &str, config: &str, late: bool) -> String {
        let late_sink = if late {
            format!(
                "  late: {{ type: file, parallelism: 1, inputs: [w.late], config: {{ path: {} }} }}\n",
                self.late().display()
            )
        } else {
            String::new()
        };
        format!(
            "name: windows\nparallelism: {p}\nbatch_size: 1\nsources:\n  s:\n    type: file\n    parallelism: 1\n    \
             event_time: {{ field: ts, max_out_of_orderness: {ooo}, watermark_interval: 0 }}\n    \
             config: {{ path: {}, format: csv, schema: {{ k: string, ts: timestamp_ms, v: int }} }}\n\
             operators:\n  w:\n    type: window\n    inputs: [s]\n    config: {config}\n\
             sinks:\n  out: {{ type: file, parallelism: 1, inputs: [w], config: {{ path: {} }} }}\n{late_sink}",
            self.dir.join("in.csv").display(),
            self.out().display(),
        )
    }

    fn run(&self, p: usize, ooo: &str, config: &str, late: bool) -> Vec<Value> {
        let _ = std::fs::remove_file(self.out());
        let _ = std::fs::remove_file(self.late());
        run_yaml(&self.yaml(p, ooo, config, late), &[]);
        read_json(&self.out())
    }
}

/// Rows as `key start end aggregates...` strings, sorted (one line per row, fields space-separated).
fn rows(json: &[Value], aggs: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = json
        .iter()
        .map(|r| {
            let mut s = format!("{} {} {}", r["k"].as_str().unwrap_or("-"), r["window_start"], r["window_end"]);
            for a in aggs {
                s.push(' ');
                s.push_str(&r[*a].to_string());
            }
            s
        })
        .collect();
    v.sort();
    v
}

fn sorted(expected: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn late_rows(path: &Path) -> Vec<String> {
    if !path.exists() {
        return Vec::new();
    }
    read_json(path).iter().map(|r| format!("{} {} {}", r["k"].as_str().unwrap_or("-"), r["ts"], r["v"])).collect()
}

/// Out-of-order input for the tumbling and sliding tests; out-of-orderness 5 ms.
///
/// watermark after each record: -5, -3, 6, 6, 6, 10, 10, 19 (then the maximum at the end).
const DISORDERED: &[(&str, i64, i64)] = &[
    ("a", 1, 5),
    ("b", 3, 1),
    ("a", 12, 7),
    ("a", 8, 2),   // behind the largest timestamp, but its window [0, 10) has not fired (wm 6 < 9)
    ("b", 9, 4),   // same
    ("a", 16, 1),  // wm 10: [0, 10) fires for a and b
    ("b", 4, 100), // window [0, 10) fired and is gone: late
    ("a", 25, 3),  // wm 19: [10, 20) fires for a
];

const AGGS: &str = "{ n: \"count(*)\", total: \"sum(v)\", top: \"max(v)\" }";

#[test]
fn tumbling_event_time_windows_over_out_of_order_input() {
    let case = Case::new("tumbling", DISORDERED);
    for p in [1, 2] {
        let cfg = format!("{{ key_by: [k], window: {{ tumbling: 10ms }}, aggregate: {AGGS}, late_output: late }}");
        let out = case.run(p, "5ms", &cfg, true);
        assert_eq!(
            rows(&out, &["n", "total", "top"]),
            sorted(&[
                "a 0 10 2 7 5",  // ts 1, 8
                "b 0 10 2 5 4",  // ts 3, 9 (not the late ts 4)
                "a 10 20 2 8 7", // ts 12, 16
                "a 20 30 1 3 3", // ts 25, fired by the final watermark
            ]),
            "p={p}"
        );
        assert_eq!(late_rows(&case.late()), ["b 4 100"], "p={p}");
        // The output's fields in order: key, window bounds, aggregates.
        let line = &read_lines(&case.out())[0];
        let at: Vec<usize> = ["\"k\"", "\"window_start\"", "\"window_end\"", "\"n\"", "\"total\"", "\"top\""]
            .iter()
            .map(|f| line.find(f).unwrap_or_else(|| panic!("{f} in {line}")))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{line}");
    }
}

#[test]
fn late_records_without_a_side_output_are_dropped_and_counted() {
    let case = Case::new("dropped", DISORDERED);
    let cfg = format!("{{ key_by: [k], window: {{ tumbling: 10ms }}, aggregate: {AGGS} }}");
    let yaml = case.yaml(1, "5ms", &cfg, false);
    let registry = eddy::builtin_registry();
    let job = eddy::job::prepare_str("t.yaml", &yaml, &[], &registry).unwrap_or_else(|r| panic!("{r}"));
    let handle = job.handle();
    job.run_with(&handle).unwrap_or_else(|e| panic!("{e}"));
    let snap = handle.metrics().snapshot();
    let w = snap.nodes.iter().find(|n| n.node == "w").expect("node w").total();
    assert_eq!((w.late_records_dropped, w.late_records_side_output), (1, 0));
    assert_eq!(read_json(&case.out()).len(), 4);
}

#[test]
fn sliding_event_time_windows_over_out_of_order_input() {
    let case = Case::new("sliding", DISORDERED);
    for p in [1, 2] {
        let cfg =
            format!("{{ key_by: [k], window: {{ sliding: 10ms, slide: 5ms }}, aggregate: {AGGS}, late_output: late }}");
        let out = case.run(p, "5ms", &cfg, true);
        // Each record is in the two windows starting at a multiple of 5 that hold it.
        assert_eq!(
            rows(&out, &["n", "total", "top"]),
            sorted(&[
                "a -5 5 1 5 5",  // ts 1 (fired at wm 6)
                "b -5 5 1 1 1",  // ts 3
                "a 0 10 2 7 5",  // ts 1, 8 (fired at wm 10)
                "b 0 10 2 5 4",  // ts 3, 9
                "a 5 15 2 9 7",  // ts 12, 8 (fired at wm 19)
                "b 5 15 1 4 4",  // ts 9
                "a 10 20 2 8 7", // ts 12, 16
                "a 15 25 1 1 1", // ts 16
                "a 20 30 1 3 3", // ts 25
                "a 25 35 1 3 3", // ts 25
            ]),
            "p={p}"
        );
        // ts 4 belongs to [0, 10) and [-5, 5), both fired by wm 10: late.
        assert_eq!(late_rows(&case.late()), ["b 4 100"], "p={p}");
    }
}

#[test]
fn session_windows_merge_when_a_record_bridges_the_gap() {
    // Gap 10 ms; nothing is late (out-of-orderness 100 ms).
    let case = Case::new(
        "sessions",
        &[
            ("a", 1, 1),  // [1, 11)
            ("a", 20, 2), // [20, 30): apart from [1, 11)
            ("b", 5, 3),  // [5, 15)
            ("a", 10, 4), // [10, 20) touches both: they merge into [1, 30)
            ("b", 40, 5), // [40, 50)
            ("a", 45, 6), // [45, 55): apart from [1, 30)
        ],
    );
    for p in [1, 2] {
        let cfg = "{ key_by: [k], window: { session: 10ms }, aggregate: { n: \"count(*)\", total: \"sum(v)\", \
                   first: \"first(v)\", last: \"last(v)\" } }";
        let out = case.run(p, "100ms", cfg, false);
        assert_eq!(
            rows(&out, &["n", "total", "first", "last"]),
            sorted(&[
                // Merged parts fold in time order: first(v) is the first of the earliest part.
                "a 1 30 3 7 1 4",
                "a 45 55 1 6 6 6",
                "b 5 15 1 3 3 3",
                "b 40 50 1 5 5 5",
            ]),
            "p={p}"
        );
    }
}

#[test]
fn a_late_session_record_is_accepted_when_it_merges_with_a_live_session() {
    // Gap 10 ms, out-of-orderness 0: the watermark is the largest timestamp - 1.
    let case = Case::new(
        "session-late",
        &[
            ("a", 1, 1),  // [1, 11)                                      wm 0
            ("a", 5, 1),  // [1, 15)                                      wm 4
            ("a", 30, 1), // [30, 40); wm 29 fires [1, 15) with 2 records
            ("a", 12, 1), // [12, 22) ends by 21 <= 29 and merges with nothing live: late
            ("a", 20, 1), // [20, 30) ends by 29 <= 29, but touches [30, 40): merged into [20, 40)
        ],
    );
    let cfg = "{ key_by: [k], window: { session: 10ms }, aggregate: { n: \"count(*)\" }, late_output: late }";
    let out = case.run(1, "0", cfg, true);
    assert_eq!(rows(&out, &["n"]), sorted(&["a 1 15 2", "a 20 40 2"]));
    assert_eq!(late_rows(&case.late()), ["a 12 1"]);
}

#[test]
fn sessions_fire_again_within_the_allowed_lateness_and_early_by_count() {
    // Gap 10 ms, out-of-orderness 0, allowed lateness 20 ms.
    let case = Case::new(
        "session-lateness",
        &[
            ("a", 1, 1),  // [1, 11)                                                      wm 0
            ("a", 30, 1), // [30, 40); wm 29: [1, 11) fires with 1, kept until wm 30 (10 + 20)
            ("a", 5, 1),  // merges into the fired [1, 11): [1, 15) has ended (14 <= 29): fires with 2
            ("a", 36, 1), // [30, 46); wm 35: [1, 15) is cleared (14 + 20 = 34 <= 35)
            ("a", 2, 1),  // [2, 12) is past its lateness (31 <= 35) and merges with nothing live
        ],
    );
    for p in [1, 2] {
        let cfg = "{ key_by: [k], window: { session: 10ms }, aggregate: { n: \"count(*)\" }, allowed_lateness: 20ms, \
                   late_output: late }";
        let out = case.run(p, "0", cfg, true);
        let seq: Vec<String> =
            out.iter().map(|r| format!("{} {} {}", r["window_start"], r["window_end"], r["n"])).collect();
        assert_eq!(seq, ["1 11 1", "1 15 2", "30 46 2"], "p={p}");
        assert_eq!(late_rows(&case.late()), ["a 2 1"], "p={p}");
    }

    // Early firings by count on a session (nothing fires before the end: out-of-orderness 100 ms).
    let case = Case::new("session-early", &[("a", 1, 1), ("a", 2, 2), ("b", 50, 5), ("a", 3, 3), ("a", 30, 4)]);
    let cfg = "{ key_by: [k], window: { session: 10ms }, aggregate: { n: \"count(*)\", total: \"sum(v)\" }, \
               trigger: { count: 2 } }";
    let out = case.run(1, "100ms", cfg, false);
    let seq: Vec<String> = out
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} {}",
                r["k"].as_str().unwrap_or("-"),
                r["window_start"],
                r["window_end"],
                r["n"],
                r["total"]
            )
        })
        .collect();
    // a: 1, 2 fire early ([1, 12) with 2); 3 joins; at the end [1, 13) with 3, [30, 40) with 1.
    assert_eq!(seq[0], "a 1 12 2 3");
    assert_eq!(seq[1..].iter().cloned().collect::<std::collections::BTreeSet<_>>().len(), 3);
    assert_eq!(rows(&out[1..], &["n", "total"]), sorted(&["a 1 13 3 6", "a 30 40 1 4", "b 50 60 1 5"]));
}

#[test]
fn allowed_lateness_fires_again_then_late_records_go_to_the_side_output() {
    // Tumbling 10 ms, out-of-orderness 0, allowed lateness 5 ms: [0, 10) fires at wm 9 and is kept
    // until wm 14.
    let case = Case::new(
        "lateness",
        &[
            ("a", 1, 1),  // wm 0
            ("a", 12, 1), // wm 11: [0, 10) fires with 1 record
            ("a", 3, 1),  // behind the watermark but within the lateness: [0, 10) fires again with 2
            ("a", 17, 1), // wm 16: [0, 10) is cleared (its cleanup time 9 + 5 = 14 has passed)
            ("a", 5, 1),  // later than the allowed lateness: to the side output
        ],
    );
    for p in [1, 2] {
        let cfg = "{ key_by: [k], window: { tumbling: 10ms }, aggregate: { n: \"count(*)\" }, allowed_lateness: 5ms, \
                   late_output: late }";
        let out = case.run(p, "0", cfg, true);
        // Output in order: the first firing, the late firing, then [10, 20) at the end.
        let seq: Vec<String> =
            out.iter().map(|r| format!("{} {} {}", r["window_start"], r["window_end"], r["n"])).collect();
        assert_eq!(seq, ["0 10 1", "0 10 2", "10 20 2"], "p={p}");
        assert_eq!(late_rows(&case.late()), ["a 5 1"], "p={p}");
    }
}

#[test]
fn count_windows_tumbling_and_sliding() {
    // Arrival order is what counts; timestamps play no part.
    let case = Case::new(
        "count",
        &[("a", 9, 1), ("b", 8, 2), ("a", 7, 3), ("a", 6, 4), ("b", 5, 5), ("a", 4, 6), ("b", 3, 7)],
    );
    let aggs = "{ total: \"sum(v)\", first: \"first(v)\", last: \"last(v)\" }";
    let seq = |out: &[Value]| -> Vec<String> {
        let mut v: Vec<String> = out
            .iter()
            .map(|r| {
                assert!(r["window_start"].is_null() && r["window_end"].is_null(), "{r}");
                format!("{} {} {} {}", r["k"].as_str().unwrap_or("-"), r["total"], r["first"], r["last"])
            })
            .collect();
        v.sort();
        v
    };
    for p in [1, 2] {
        // Every 2 records of a key; b's third record never completes a window (as in Flink).
        let out = case.run(p, "0", &format!("{{ key_by: [k], window: {{ count: 2 }}, aggregate: {aggs} }}"), false);
        assert_eq!(seq(&out), sorted(&["a 4 1 3", "a 10 4 6", "b 7 2 5"]), "p={p}");
        // The last 3 records, after every record.
        let cfg = format!("{{ key_by: [k], window: {{ count: 3, slide: 1 }}, aggregate: {aggs} }}");
        let out = case.run(p, "0", &cfg, false);
        assert_eq!(
            seq(&out),
            sorted(&["a 1 1 1", "a 4 1 3", "a 8 1 4", "a 13 3 6", "b 2 2 2", "b 7 2 5", "b 14 2 7"]),
            "p={p}"
        );
        // The last 4 records, every 2 (panes of 2).
        let cfg = format!("{{ key_by: [k], window: {{ count: 4, slide: 2 }}, aggregate: {aggs} }}");
        let out = case.run(p, "0", &cfg, false);
        assert_eq!(seq(&out), sorted(&["a 4 1 3", "a 14 1 6", "b 7 2 5"]), "p={p}");
    }
    // Sliding by 2 over 3: panes of 1; a: 1,3 -> 4; 1,3,4,6 -> the last 3: 3,4,6 = 13.
    let cfg = format!("{{ key_by: [k], window: {{ count: 3, slide: 2 }}, aggregate: {aggs} }}");
    let out = case.run(1, "0", &cfg, false);
    assert_eq!(seq(&out), sorted(&["a 4 1 3", "a 13 3 6", "b 7 2 5"]));
}

#[test]
fn early_firings_by_count_accumulate_or_purge() {
    // Out-of-orderness 100 ms: [0, 10) only fires at the end of the input.
    let case = Case::new("early", &[("a", 1, 1), ("a", 2, 2), ("a", 3, 3), ("a", 4, 4), ("a", 5, 5)]);
    let seq = |out: &[Value]| -> Vec<String> { out.iter().map(|r| format!("{} {}", r["n"], r["total"])).collect() };
    let base = "key_by: [k], window: { tumbling: 10ms }, aggregate: { n: \"count(*)\", total: \"sum(v)\" }";
    let out = case.run(1, "100ms", &format!("{{ {base}, trigger: {{ count: 2 }} }}"), false);
    assert_eq!(seq(&out), ["2 3", "4 10", "5 15"], "accumulate: the window so far, then the final result");
    let out = case.run(1, "100ms", &format!("{{ {base}, trigger: {{ count: 2, purge: true }} }}"), false);
    assert_eq!(seq(&out), ["2 3", "2 7", "1 5"], "purge: what arrived since the previous firing");

    // A global window (no key: one stream, parallelism 1 even in a parallel job) fires by its trigger
    // and at the end of the input.
    let cfg = "{ window: global, aggregate: { n: \"count(*)\", total: \"sum(v)\" }, trigger: { count: 2 } }";
    let out = case.run(2, "100ms", cfg, false);
    assert_eq!(seq(&out), ["2 3", "4 10", "5 15"]);
    assert!(out.iter().all(|r| r["window_start"].is_null() && r.get("k").is_none()), "{out:?}");
}

#[test]
fn the_key_is_inherited_from_a_key_by_input() {
    let case = Case::new("inherit", DISORDERED);
    let yaml = case
        .yaml(2, "5ms", "{ window: { tumbling: 10ms }, aggregate: { n: \"count(*)\" } }", false)
        .replace("inputs: [s]", "inputs: [by_k]")
        .replace("operators:\n", "operators:\n  by_k: { type: key_by, inputs: [s], config: { key: [k] } }\n");
    run_yaml(&yaml, &[]);
    let out = read_json(&case.out());
    assert_eq!(rows(&out, &["n"]), sorted(&["a 0 10 2", "b 0 10 2", "a 10 20 2", "a 20 30 1"]));
}

#[test]
fn processing_time_windows_fire_at_the_end_of_a_bounded_input() {
    // Processing time is the wall clock: with 1 h windows, a quick job's records share one window (or
    // two, across an hour boundary); all of them are counted once, in windows around the run.
    let case = Case::new("processing", DISORDERED);
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let out = case.run(
        2,
        "0",
        "{ key_by: [k], window: { tumbling: 1h }, time: processing, aggregate: { n: \"count(*)\" } }",
        false,
    );
    let after = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let total: i64 = out.iter().map(|r| r["n"].as_i64().unwrap_or(0)).sum();
    assert_eq!(total, DISORDERED.len() as i64, "nothing is late in processing time: {out:?}");
    for r in &out {
        let (start, end) = (r["window_start"].as_i64().unwrap_or(0), r["window_end"].as_i64().unwrap_or(0));
        assert_eq!(end - start, 3_600_000);
        assert!(start <= after && end > before, "{r}");
    }
    // Sessions in processing time: one per key for a run much shorter than the gap.
    let out = case.run(
        1,
        "0",
        "{ key_by: [k], window: { session: 1h }, time: processing, aggregate: { n: \"count(*)\" } }",
        false,
    );
    let mut n: Vec<(String, i64)> =
        out.iter().map(|r| (r["k"].as_str().unwrap_or("-").to_string(), r["n"].as_i64().unwrap_or(0))).collect();
    n.sort();
    assert_eq!(n, [("a".to_string(), 5), ("b".to_string(), 3)]);
}

#[test]
fn early_firings_every_interval_end_with_the_final_result() {
    // How many early firings happen depends on timing; the sequence per key only grows and ends with
    // the whole count.
    let rows_in: Vec<(&str, i64, i64)> = (0..3000).map(|i| (if i % 3 == 0 { "a" } else { "b" }, 5, 1)).collect();
    let case = Case::new("every", &rows_in);
    let cfg = "{ key_by: [k], window: global, aggregate: { n: \"count(*)\" }, trigger: { every: 1ms } }";
    let out = case.run(1, "0", cfg, false);
    for (k, total) in [("a", 1000), ("b", 2000)] {
        let seq: Vec<i64> = out.iter().filter(|r| r["k"] == k).map(|r| r["n"].as_i64().unwrap_or(0)).collect();
        assert_eq!(seq.last(), Some(&total), "{k}: {seq:?}");
        assert!(seq.windows(2).all(|w| w[0] <= w[1]), "{k}: {seq:?}");
    }
}

/// Per key and window: (count, sum), as `key start end count sum` lines, sorted.
fn lines(acc: std::collections::BTreeMap<(String, i64, i64), (i64, i64)>) -> Vec<String> {
    let mut out: Vec<String> = acc.into_iter().map(|((k, s, e), (n, t))| format!("{k} {s} {e} {n} {t}")).collect();
    out.sort();
    out
}

/// Event-time windows computed directly from the sorted input: sliding windows of `size` every `slide`
/// (tumbling when equal), counting and summing per key and window.
fn direct(rows_in: &[(String, i64, i64)], size: i64, slide: i64) -> Vec<String> {
    let mut sorted_in: Vec<&(String, i64, i64)> = rows_in.iter().collect();
    sorted_in.sort_by_key(|r| r.1);
    let mut acc: std::collections::BTreeMap<(String, i64, i64), (i64, i64)> = Default::default();
    for (k, ts, v) in sorted_in {
        let mut start = ts - ts.rem_euclid(slide);
        while start > ts - size {
            let e = acc.entry((k.clone(), start, start + size)).or_default();
            e.0 += 1;
            e.1 += v;
            start -= slide;
        }
    }
    lines(acc)
}

/// Session windows computed directly: per key, in timestamp order, a record joins the current session
/// when it is at most `gap` after the session's last record (windows that touch merge, as in Flink).
fn direct_sessions(rows_in: &[(String, i64, i64)], gap: i64) -> Vec<String> {
    let mut sorted_in: Vec<&(String, i64, i64)> = rows_in.iter().collect();
    sorted_in.sort_by_key(|r| (r.0.clone(), r.1));
    let mut acc: std::collections::BTreeMap<(String, i64, i64), (i64, i64)> = Default::default();
    let mut cur: Option<(String, i64, i64, i64, i64)> = None; // key, start, end, count, sum
    for (k, ts, v) in sorted_in {
        cur = match cur {
            Some((ck, s, e, n, t)) if ck == *k && *ts <= e => Some((ck, s, e.max(ts + gap), n + 1, t + v)),
            other => {
                if let Some((ck, s, e, n, t)) = other {
                    acc.insert((ck, s, e), (n, t));
                }
                Some((k.clone(), *ts, ts + gap, 1, *v))
            }
        };
    }
    if let Some((ck, s, e, n, t)) = cur {
        acc.insert((ck, s, e), (n, t));
    }
    lines(acc)
}

/// Records whose timestamps are at most `bound` behind the largest one before them.
fn disordered(bound: i64) -> impl Strategy<Value = Vec<(String, i64, i64)>> {
    proptest::collection::vec((0u8..4, 0i64..40, -bound..=0, -50i64..50), 1..60).prop_map(move |steps| {
        let mut max = 0i64;
        steps
            .into_iter()
            .map(|(k, advance, back, v)| {
                max += advance;
                (format!("k{k}"), (max + back).max(max - bound), v)
            })
            .collect()
    })
}

/// Runs `config` over `input` with the source and the window at parallelism `p` (each split of the file
/// has its own watermarks); nothing is late for a 30 ms bound.
fn run_parallel(case: &Case, p: usize, config: &str) -> Vec<String> {
    let yaml = case
        .yaml(p, "30ms", config, false)
        .replace("    parallelism: 1\n    event_time", &format!("    parallelism: {p}\n    event_time"));
    let _ = std::fs::remove_file(case.out());
    run_yaml(&yaml, &[]);
    rows(&read_json(&case.out()), &["n", "total"])
}

const COUNT_SUM: &str = "{ n: \"count(*)\", total: \"sum(v)\" }";

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    /// For input out of order within the bound, event-time tumbling windows give what sorting the input
    /// and computing the windows directly gives, at parallelism 1, 2 and 4.
    #[test]
    fn tumbling_windows_equal_the_sorted_computation(input in disordered(30), size in 5i64..60) {
        let refs: Vec<(&str, i64, i64)> = input.iter().map(|(k, t, v)| (k.as_str(), *t, *v)).collect();
        let case = Case::new("prop", &refs);
        let expected = direct(&input, size, size);
        for p in [1, 2, 4] {
            let cfg = format!("{{ key_by: [k], window: {{ tumbling: {size}ms }}, aggregate: {COUNT_SUM} }}");
            prop_assert_eq!(run_parallel(&case, p, &cfg), expected.clone(), "p={}", p);
        }
    }

    /// The same for sliding windows and for session windows (whose merging must not depend on the
    /// arrival order).
    #[test]
    fn sliding_and_session_windows_equal_the_sorted_computation(
        input in disordered(30),
        slide in 2i64..20,
        panes in 1i64..4,
        gap in 1i64..25,
    ) {
        let refs: Vec<(&str, i64, i64)> = input.iter().map(|(k, t, v)| (k.as_str(), *t, *v)).collect();
        let case = Case::new("prop-sliding", &refs);
        let size = slide * panes + slide / 2;
        let sliding = format!("{{ key_by: [k], window: {{ sliding: {size}ms, slide: {slide}ms }}, aggregate: {COUNT_SUM} }}");
        let session = format!("{{ key_by: [k], window: {{ session: {gap}ms }}, aggregate: {COUNT_SUM} }}");
        for p in [1, 2] {
            prop_assert_eq!(run_parallel(&case, p, &sliding), direct(&input, size, slide), "sliding p={}", p);
            prop_assert_eq!(run_parallel(&case, p, &session), direct_sessions(&input, gap), "session p={}", p);
        }
    }
}

fn problems(config: &str, event_time: bool) -> String {
    let et = if event_time { "    event_time: { field: date_time }\n" } else { "" };
    let yaml = format!(
        "name: bad\nsources:\n  bids:\n    type: file\n{et}    config: {{ path: {BIDS}, format: csv, schema: {BID_SCHEMA} }}\n\
         operators:\n  w:\n    type: window\n    inputs: [bids]\n    config: {config}\n\
         sinks:\n  out: {{ type: blackhole, inputs: [w] }}\n"
    );
    match try_run_yaml(&yaml, &[]) {
        Ok(_) => panic!("`{config}` was accepted"),
        Err(e) => e,
    }
}

#[test]
fn config_mistakes_are_located_diagnostics() {
    // The window's `config:` is on line 10 (11 with `event_time`); columns point at the value in question.
    let e = problems("{ key_by: [auction], window: { tumbling: 10s }, aggregate: { n: \"count(*)\" } }", false);
    assert!(e.contains("event-time windows need event time, and the input `bids` has none"), "{e}");
    assert!(e.contains("event_time: { field: date_time"), "the hint shows how to declare it: {e}");
    assert!(e.contains(":10:42"), "{e}");

    let e = problems("{ window: { tumbling: 10s, session: 5s }, aggregate: { n: \"count(*)\" } }", true);
    assert!(e.contains("choose one kind of window, not tumbling and session") && e.contains(":11:23"), "{e}");

    let e = problems("{ window: { sliding: 10s, slide: 20s }, aggregate: { n: \"count(*)\" } }", true);
    assert!(e.contains("the slide (20000ms) is longer than the window (10000ms)") && e.contains(":11:46"), "{e}");

    let e = problems("{ window: { tumbling: 10s, slide: 2s }, aggregate: { n: \"count(*)\" } }", true);
    assert!(e.contains("`slide` does not apply to tumbling windows"), "{e}");

    let e = problems("{ window: { count: 10 }, trigger: { count: 5 }, aggregate: { n: \"count(*)\" } }", true);
    assert!(e.contains("count windows fire by their count and take no `trigger`"), "{e}");

    let e = problems(
        "{ window: { tumbling: 1s }, time: processing, allowed_lateness: 1s, late_output: late, aggregate: { n: \"count(*)\" } }",
        false,
    );
    assert!(
        e.contains("`allowed_lateness` only applies to event-time windows (processing-time windows are never late)"),
        "{e}"
    );
    assert!(e.contains("`late_output` only applies to event-time windows"), "{e}");

    let e = problems("{ window: globl, aggregate: { n: \"count(*)\" } }", true);
    assert!(e.contains("unknown window `globl`: write `global`"), "{e}");

    let e = problems("{ window: { tumbling: 10 }, aggregate: { n: \"count(*)\" } }", true);
    assert!(e.contains("a duration needs a unit"), "{e}");

    let e = problems("{ window: { tumbling: 1s }, aggregate: { window_end: \"count(*)\", m: \"max(prise)\" } }", true);
    assert!(e.contains("output field `window_end` is defined twice"), "{e}");
    assert!(e.contains("prise"), "the aggregate's own diagnostics come too: {e}");

    let e = problems("{ window: { tumbling: 1s }, aggregate: { n: \"count(*)\" }, late_output: a.b }", true);
    assert!(e.contains("`late_output: a.b` is not a usable name"), "{e}");

    let e = problems("{ window: { tumbling: 1s }, trigger: { purge: true }, aggregate: { n: \"count(*)\" } }", true);
    assert!(e.contains("`trigger` needs `every`"), "{e}");

    let e = problems("{ window: { tumbling: 1s }, aggregate: { n: \"count(*)\" }, lateness: 1s }", true);
    assert!(
        e.contains("lateness") && e.contains("allowed_lateness"),
        "unknown keys are refused with a suggestion: {e}"
    );
}

#[test]
fn a_late_side_output_can_only_be_read_when_declared() {
    let case = Case::new("no-side", DISORDERED);
    let yaml = case.yaml(1, "5ms", "{ key_by: [k], window: { tumbling: 10ms }, aggregate: { n: \"count(*)\" } }", true);
    let e = try_run_yaml(&yaml, &[]).expect_err("w.late without late_output");
    assert!(e.contains("`w` has no side output `late`"), "{e}");
}

#[test]
fn the_example_and_the_bench_topologies_validate() {
    let eddy = env!("CARGO_BIN_EXE_eddy");
    let run = |args: &[&str]| std::process::Command::new(eddy).args(args).output().expect("run eddy");
    let o = run(&["validate", "examples/windows.yaml"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for q in ["window", "session"] {
        let f = format!("bench/topologies/{q}.yaml");
        let o = run(&["validate", &f, "--set", "sources.bids.config.path=examples/data/bids.csv"]);
        assert!(o.status.success(), "{f}: {}", String::from_utf8_lossy(&o.stderr));
    }
}

#[test]
fn the_example_writes_windows_and_late_bids() {
    let dir = temp_dir("example");
    let (out, late) = (dir.join("windows.jsonl"), dir.join("late.jsonl"));
    let yaml = std::fs::read_to_string("examples/windows.yaml").expect("example");
    run_yaml(
        &yaml,
        &[
            &format!("sinks.windows.config.path={}", out.display()),
            &format!("sinks.late_bids.config.path={}", late.display()),
        ],
    );
    let windows = read_json(&out);
    let late = read_json(&late);
    assert!(!windows.is_empty() && !late.is_empty(), "{} windows, {} late", windows.len(), late.len());
    // Every bid is in the last firing of its window (late firings repeat a window with a higher count),
    // or in the late output.
    let mut last: std::collections::HashMap<(i64, String), i64> = Default::default();
    for r in &windows {
        let n = last.entry((r["auction"].as_i64().unwrap_or(0), r["window_start"].to_string())).or_default();
        *n = (*n).max(r["bids"].as_i64().unwrap_or(0));
    }
    assert_eq!(last.values().sum::<i64>() + late.len() as i64, 2000);
}
