//! `window_join` and `interval_join`: hand-checked results over small out-of-order inputs.
//!
//! Two kinds of tests:
//! - **Operator tests** drive one join instance directly through the public operator API (records per
//!   input port, watermarks firing timers, then `on_watermark`), the way the task actor does, so
//!   watermarks, lateness and what is left in keyed state are exact and deterministic.
//! - **Job tests** run real jobs: two file sources with `event_time` (disorder within the bound, so
//!   nothing is late), the join at parallelism 1 and 2, a file sink; plus the bundled bids joined with
//!   themselves, checked against a brute-force join. And the plan-time diagnostics, pinned with their
//!   locations.
mod common;
use common::*;
use eddy::api::operator::LateCounts;
use eddy::api::registry::InputInfo;
use eddy::api::state::{KeyedState, TimeDomain};
use eddy::api::{
    Batch, Context, DataType, Datum, Field, KeyGroupRange, OpenContext, Operator, PlanContext, Schema, SchemaRef, Span,
    Spanned, TaskInfo,
};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

// ---------------------------------------------------------------------------------------------------
// Operator tests
// ---------------------------------------------------------------------------------------------------

/// `{k: int, <value>: string, ts: timestamp_ms}` with `ts` as event time.
fn side_schema(value: &str) -> SchemaRef {
    Arc::new(
        Schema::new(vec![
            Field::new("k", DataType::Int),
            Field::new(value, DataType::String),
            Field::new("ts", DataType::Timestamp),
        ])
        .with_event_time(Some(2)),
    )
}

/// One join instance (one subtask owning every key group), driven like the runtime drives it.
struct Harness {
    op: Box<dyn Operator>,
    state: KeyedState,
    schema: SchemaRef,
    watermark: i64,
    /// Every row emitted so far, rendered `a|b|c`.
    out: Vec<String>,
    /// Every row sent to a side output so far: (side output index, row rendered `a|b|c`).
    side: Vec<(usize, String)>,
    /// One batch per declared side output.
    sides: Vec<Batch>,
    late: LateCounts,
}

impl Harness {
    /// Plans `ty` with `config` (YAML) over inputs `left {k, lv, ts}` and `right {k, rv, ts}`.
    fn new(ty: &str, config: &str) -> Harness {
        let registry = eddy::builtin_registry();
        let cfg = eddy::config::parse_yaml(config).unwrap_or_else(|d| panic!("{d:?}"));
        let inputs = [
            InputInfo { name: "left".into(), schema: side_schema("lv"), key: None },
            InputInfo { name: "right".into(), schema: side_schema("rv"), key: None },
        ];
        let ctx = PlanContext {
            job: "t",
            node: "j",
            span: Span::new(1, 1),
            parallelism: 1,
            inputs: &inputs,
            checkpointing: false,
        };
        let builder = registry
            .plan_operator(&Spanned::new(Span::new(1, 1), ty.to_string()), &cfg, &ctx)
            .unwrap_or_else(|d| panic!("{d:?}"));
        let task = TaskInfo { job: "t".into(), node: "j".into(), subtask: 0, parallelism: 1, max_parallelism: 128 };
        let key = builder.state_key().expect("a join has keyed state");
        let mut state = KeyedState::new(key, KeyGroupRange { start: 0, end: 127 }, 128);
        let mut op = builder.build(&task).expect("build");
        op.open(&mut OpenContext::new(&task, Some(&mut state))).expect("open");
        Harness {
            op,
            state,
            schema: builder.output_schema(),
            watermark: i64::MIN,
            out: Vec::new(),
            side: Vec::new(),
            sides: builder.side_outputs().iter().map(|(_, s)| Batch::new(s.len())).collect(),
            late: LateCounts::default(),
        }
    }

    fn run(&mut self, port: usize, f: impl FnOnce(&mut dyn Operator, &mut Context<'_>)) {
        let mut out = Batch::new(self.schema.len());
        let late = {
            let mut ctx = Context::new(&mut out, &mut self.sides, self.watermark, 0)
                .on_port(port)
                .with_state(Some(&mut self.state));
            f(&mut *self.op, &mut ctx);
            ctx.late_counts()
        };
        self.late.dropped += late.dropped;
        self.late.side_output += late.side_output;
        let render = |row: eddy::api::Row<'_>| row.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("|");
        self.out.extend(out.rows().map(render));
        for (i, side) in self.sides.iter_mut().enumerate() {
            self.side.extend(side.rows().map(|r| (i, render(r))));
            side.clear();
        }
    }

    /// Records `(key, value, time)` arriving on input `port` (0 left, 1 right), in this order.
    fn push(&mut self, port: usize, rows: &[(i64, &str, i64)]) {
        let mut batch = Batch::new(3);
        for &(k, v, ts) in rows {
            batch.push_row(&[Datum::Int(k), Datum::Str(v), Datum::Timestamp(ts)]);
        }
        self.run(port, |op, ctx| op.process_batch(&batch, ctx).expect("process_batch"));
    }

    /// One record with a NULL key on input `port`.
    fn push_null_key(&mut self, port: usize, v: &str, ts: i64) {
        let mut batch = Batch::new(3);
        batch.push_row(&[Datum::Null, Datum::Str(v), Datum::Timestamp(ts)]);
        self.run(port, |op, ctx| op.process_batch(&batch, ctx).expect("process_batch"));
    }

    /// The watermark advances: due timers fire (each with its key current), then `on_watermark`.
    fn watermark(&mut self, wm: i64) {
        self.watermark = wm;
        while let Some(timer) = self.state.pop_event_timer(wm) {
            self.run(0, |op, ctx| op.on_timer(timer, ctx).expect("on_timer"));
        }
        self.run(0, |op, ctx| op.on_watermark(wm, ctx).expect("on_watermark"));
    }

    /// The rows emitted since the last call, sorted.
    fn take(&mut self) -> Vec<String> {
        let mut v = std::mem::take(&mut self.out);
        v.sort();
        v
    }

    fn field_names(&self) -> Vec<&str> {
        self.schema.names().collect()
    }
}

fn sorted(rows: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = rows.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn window_join_pairs_equal_keys_of_the_same_tumbling_window_and_drops_late_records() {
    let mut h = Harness::new("window_join", "key_by: [k]\nwindow: { tumbling: 10s }");
    assert_eq!(h.field_names(), ["k", "window_start", "window_end", "lv", "left_ts", "rv", "right_ts"]);
    assert_eq!(h.schema.event_time(), Some(2), "window_end is the output's event time");
    // Out of order within each side; key 2 has rows on both sides but in different windows, key 3 only
    // on the right.
    h.push(0, &[(1, "d", 10_000), (1, "a", 1_000), (2, "c", 5_000)]);
    h.push(1, &[(2, "y", 12_000), (1, "x", 3_000), (3, "q", 4_000)]);
    h.push(0, &[(1, "b", 9_999)]);
    h.push(1, &[(1, "z", 10_500)]);
    h.watermark(9_998);
    assert_eq!(h.take(), Vec::<String>::new(), "window [0, 10s) fires at 9999, not before");
    // Not late yet: its window is still open.
    h.push(1, &[(1, "w", 9_999)]);
    assert_eq!(h.late.dropped, 0);
    h.watermark(9_999);
    assert_eq!(
        h.take(),
        sorted(&[
            "1|0|10000|a|1000|x|3000",
            "1|0|10000|a|1000|w|9999",
            "1|0|10000|b|9999|x|3000",
            "1|0|10000|b|9999|w|9999",
        ])
    );
    // Window [0, 10s) has fired: a record for it is late, whichever side; one for the next window is not.
    h.push(0, &[(1, "late", 9_000)]);
    h.push(1, &[(1, "late too", 0), (1, "ok", 10_001)]);
    assert_eq!(h.late.dropped, 2);
    h.watermark(i64::MAX);
    assert_eq!(h.take(), sorted(&["1|10000|20000|d|10000|z|10500", "1|10000|20000|d|10000|ok|10001"]));
    assert_eq!(h.state.entry_count(), 0, "every fired window's lists are cleared");
    assert_eq!(h.state.timer_count(TimeDomain::EventTime), 0);
    assert_eq!(h.state.key_count(), 1, "only the last current key stays pinned");
}

#[test]
fn window_join_allowed_lateness_joins_late_records_once_then_sends_them_to_the_side_output() {
    let mut h =
        Harness::new("window_join", "key_by: [k]\nwindow: { tumbling: 10s }\nallowed_lateness: 5s\nlate_output: late");
    h.push(0, &[(1, "a", 1_000)]);
    h.push(1, &[(1, "x", 3_000)]);
    h.watermark(9_999);
    assert_eq!(h.take(), sorted(&["1|0|10000|a|1000|x|3000"]), "fires at end - 1");
    // Within the lateness (fired at 9999, kept until 9999 + 5000): joined on arrival, new pairs only.
    h.push(1, &[(1, "y", 8_000)]);
    assert_eq!(h.take(), sorted(&["1|0|10000|a|1000|y|8000"]));
    h.push(0, &[(1, "b", 2_000)]);
    assert_eq!(h.take(), sorted(&["1|0|10000|b|2000|x|3000", "1|0|10000|b|2000|y|8000"]));
    // A window that had no rows when it fired still takes late ones, and cleans them up.
    h.push(0, &[(2, "c", 9_000)]);
    h.push(1, &[(2, "z", 500)]);
    assert_eq!(h.take(), sorted(&["2|0|10000|c|9000|z|500"]));
    assert_eq!(h.late, LateCounts::default());
    h.watermark(14_998);
    assert_eq!(h.take(), Vec::<String>::new(), "no second firing");
    h.watermark(14_999);
    assert_eq!(h.state.entry_count(), 0, "the window is gone at end - 1 + lateness");
    // Past the lateness: to the side output of its input, unchanged.
    h.push(0, &[(1, "too late", 9_000)]);
    h.push(1, &[(1, "also", 100), (1, "next window", 10_000)]);
    assert_eq!(h.take(), Vec::<String>::new());
    assert_eq!(h.side, [(0, "1|too late|9000".to_string()), (1, "1|also|100".to_string())]);
    assert_eq!((h.late.dropped, h.late.side_output), (0, 2));
    h.watermark(i64::MAX);
    assert_eq!(h.take(), Vec::<String>::new(), "next window has no left rows");
    assert_eq!(h.state.entry_count(), 0);
    assert_eq!(h.state.timer_count(TimeDomain::EventTime), 0);
}

#[test]
fn interval_join_allowed_lateness_keeps_rows_longer_and_routes_later_records() {
    let mut h = Harness::new("interval_join", "key_by: [k]\nbetween: [0, 1s]\nallowed_lateness: 2s\nlate_output: late");
    h.watermark(10_000);
    // 9000 + 2s lateness > 10000: still joins.
    h.push(0, &[(1, "L", 9_000)]);
    h.push(1, &[(1, "R", 9_500)]);
    assert_eq!(h.take(), sorted(&["1|L|9000|R|9500|9500"]));
    // 7999 + 2s <= 10000: late, on either side.
    h.push(0, &[(1, "old", 7_999)]);
    h.push(1, &[(1, "older", 8_000)]);
    assert_eq!(h.side, [(0, "1|old|7999".to_string()), (1, "1|older|8000".to_string())]);
    assert_eq!((h.late.dropped, h.late.side_output), (0, 2));
    // L's partners can come until 9000 + 1s, plus the lateness: at watermark 11999 a right row at 10000
    // (10000 + 2s > 11999) still meets it.
    h.watermark(11_999);
    h.push(1, &[(1, "R2", 10_000)]);
    assert_eq!(h.take(), sorted(&["1|L|9000|R2|10000|10000"]));
    h.watermark(12_000);
    h.push(1, &[(1, "R3", 10_001)]);
    assert_eq!(h.take(), Vec::<String>::new(), "L is gone at 9000 + 1s + 2s");
    h.watermark(i64::MAX);
    assert_eq!(h.state.entry_count(), 0);
}

#[test]
fn window_join_with_sliding_windows_meets_in_every_shared_window() {
    let mut h = Harness::new("window_join", "key_by: [k]\nwindow: { sliding: 10s, slide: 5s }");
    // a is in [0, 10s) and [5s, 15s); x in [5s, 15s) and [10s, 20s); y in [-5s, 5s) and [0, 10s).
    h.push(0, &[(1, "a", 7_000)]);
    h.push(1, &[(1, "x", 12_000), (1, "y", 2_000), (2, "other key", 7_000)]);
    h.watermark(i64::MAX);
    assert_eq!(h.take(), sorted(&["1|0|10000|a|7000|y|2000", "1|5000|15000|a|7000|x|12000"]));
    assert_eq!(h.late.dropped, 0);
    assert_eq!(h.state.entry_count(), 0);
}

#[test]
fn window_join_where_filters_the_joined_rows() {
    let mut h = Harness::new("window_join", "key_by: [k]\nwindow: { tumbling: 1s }\nwhere: \"left_ts < right_ts\"");
    h.push(0, &[(1, "a", 100), (1, "b", 500)]);
    h.push(1, &[(1, "x", 300)]);
    h.watermark(i64::MAX);
    assert_eq!(h.take(), sorted(&["1|0|1000|a|100|x|300"]));
}

#[test]
fn interval_join_bounds_are_inclusive_and_state_is_cleaned_up() {
    let mut h = Harness::new("interval_join", "key_by: [k]\nbetween: [-5s, 10s]");
    assert_eq!(h.field_names(), ["k", "lv", "left_ts", "rv", "right_ts", "event_time"]);
    assert_eq!(h.schema.event_time(), Some(5), "the joined time is the output's event time");
    // The left record at 10s matches right records in [5s, 20s]: some arrive before it, some after.
    h.push(1, &[(1, "r5000", 5_000), (1, "r4999", 4_999), (2, "other key", 10_000)]);
    h.push(0, &[(1, "L", 10_000)]);
    assert_eq!(h.take(), sorted(&["1|L|10000|r5000|5000|10000"]), "joined on arrival, lower bound inclusive");
    h.push(1, &[(1, "r20001", 20_001), (1, "r20000", 20_000)]);
    assert_eq!(h.take(), sorted(&["1|L|10000|r20000|20000|20000"]), "upper bound inclusive");

    // Watermark 20s: L (cleanup at 10s + 10s) and the right rows at 5s (cleanup at 10s) and 4.999s go;
    // key 2's right row (cleanup at 15s) too. Key 1 keeps r20000 and r20001 (cleanup at 25s and 25.001s).
    h.watermark(20_000);
    assert_eq!(h.state.entry_count(), 1, "only key 1 still buffers rows");
    assert_eq!(h.state.timer_count(TimeDomain::EventTime), 2);
    // At or behind the watermark: late on either side.
    h.push(0, &[(1, "late", 20_000)]);
    h.push(1, &[(1, "late", 19_999)]);
    assert_eq!(h.late.dropped, 2);
    // A new left record still finds the right rows that can match it: [16s, 31s] holds 20s and 20.001s.
    h.push(0, &[(1, "M", 21_000)]);
    assert_eq!(h.take(), sorted(&["1|M|21000|r20000|20000|21000", "1|M|21000|r20001|20001|21000"]));
    h.watermark(i64::MAX);
    assert_eq!(h.take(), Vec::<String>::new(), "cleanup emits nothing, and nothing twice");
    assert_eq!(h.state.entry_count(), 0, "every buffered row is gone at the end of time");
    assert_eq!(h.state.timer_count(TimeDomain::EventTime), 0);
}

#[test]
fn interval_join_with_a_window_in_the_past_and_a_predicate() {
    // A right record joins left records from 1s to 3s after it.
    let mut h = Harness::new(
        "interval_join",
        "key_by: [k]\nbetween: [-3s, -1s]\nwhere: \"rv <> 'skip'\"\ntime_field: joined_at",
    );
    assert_eq!(h.field_names().last(), Some(&"joined_at"));
    h.push(0, &[(1, "L", 10_000)]);
    h.push(
        1,
        &[(1, "r7000", 7_000), (1, "r6999", 6_999), (1, "r9000", 9_000), (1, "r9001", 9_001), (1, "skip", 8_000)],
    );
    assert_eq!(h.take(), sorted(&["1|L|10000|r7000|7000|10000", "1|L|10000|r9000|9000|10000"]));
    h.watermark(i64::MAX);
    assert_eq!(h.state.entry_count(), 0);
}

#[test]
fn null_keys_join_nothing() {
    for (ty, cfg) in [
        ("window_join", "key_by: [k]\nwindow: { tumbling: 10s }"),
        ("interval_join", "key_by: [k]\nbetween: [-1s, 1s]"),
    ] {
        let mut h = Harness::new(ty, cfg);
        h.push_null_key(0, "a", 1_000);
        h.push_null_key(1, "x", 1_000);
        h.watermark(i64::MAX);
        assert_eq!(h.take(), Vec::<String>::new(), "{ty}: NULL = NULL is not true");
        assert_eq!(h.late.dropped, 0, "{ty}: not late either");
        assert_eq!(h.state.entry_count(), 0, "{ty}: nothing buffered");
    }
}

#[test]
fn interval_join_with_zero_bounds_joins_equal_times_only() {
    let mut h = Harness::new("interval_join", "key_by: [k]\nbetween: [0, 0]");
    h.push(0, &[(1, "a", 100), (1, "b", 101)]);
    h.push(1, &[(1, "x", 100)]);
    h.push(0, &[(1, "c", 100)]);
    assert_eq!(h.take(), sorted(&["1|a|100|x|100|100", "1|c|100|x|100|100"]));
}

// ---------------------------------------------------------------------------------------------------
// Job tests
// ---------------------------------------------------------------------------------------------------

/// Writes `lines` to `dir/name`.
fn write(dir: &Path, name: &str, lines: &[&str]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").expect("write input");
    path.display().to_string()
}

/// A job joining `left.csv {k, lv, ts}` with `right.csv {ts, rv, k}` (the key at another position, on
/// purpose) at parallelism `p`, with a 2 s disorder bound; one output file.
fn two_file_job(dir: &Path, p: usize, left: &[&str], right: &[&str], join: &str) -> (String, std::path::PathBuf) {
    let l = write(dir, "left.csv", left);
    let r = write(dir, "right.csv", right);
    let out = dir.join("out.jsonl");
    let et = "{ field: ts, max_out_of_orderness: 2s, watermark_interval: 0 }";
    let yaml = format!(
        "name: join\nparallelism: {p}\nbatch_size: 2\n\
         sources:\n\
         \x20 lefts:\n    type: file\n    event_time: {et}\n\
         \x20   config: {{ path: {l}, format: csv, schema: {{ k: int, lv: string, ts: timestamp_ms }} }}\n\
         \x20 rights:\n    type: file\n    event_time: {et}\n\
         \x20   config: {{ path: {r}, format: csv, schema: {{ ts: timestamp_ms, rv: string, k: int }} }}\n\
         operators:\n  j:\n{join}\n\
         sinks:\n  out: {{ type: file, inputs: [j], parallelism: 1, config: {{ path: {} }} }}\n",
        out.display()
    );
    (yaml, out)
}

/// Output rows as `field=value` lists (fields sorted by name), sorted.
fn rendered(out: &Path) -> Vec<String> {
    let mut v: Vec<String> = read_json(out)
        .iter()
        .map(|row| {
            let obj = row.as_object().unwrap_or_else(|| panic!("not an object: {row}"));
            let fields: Vec<(&str, String)> =
                obj.iter().map(|(k, v)| (k.as_str(), v.as_str().map_or(v.to_string(), String::from))).collect();
            line(&fields)
        })
        .collect();
    v.sort();
    v
}

/// `name=value` pairs sorted by name, space separated.
fn line(fields: &[(&str, String)]) -> String {
    let mut f: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    f.sort();
    f.join(" ")
}

// Left and right inputs for the job tests: keys 1..3, times out of order by up to 1.5 s.
const LEFT: &[&str] = &["1,a,1000", "2,b,2000", "1,c,500", "3,d,9000", "2,f,8000", "1,e,10500", "1,g,11999"];
const RIGHT: &[&str] =
    &["1500,x,1", "3000,z,3", "9999,y,2", "8500,v,1", "10000,u,1", "12000,t,1", "16000,s,1", "21000,w,1"];

#[test]
fn window_join_job_at_parallelism_1_and_2() {
    let join =
        "    type: window_join\n    inputs: [lefts, rights]\n    config: { key_by: [k], window: { tumbling: 10s } }";
    // By hand: window [0, 10s): key 1 left a, c x right x, v; key 2 left b, f x right y; key 3 left d x
    // right z. Window [10s, 20s): key 1 left e, g x right u, t, s. Window [20s, 30s): w alone.
    let mut expected: Vec<String> = Vec::new();
    for (k, start, ls, rs) in [
        (1, 0, &[("a", 1000), ("c", 500)][..], &[("x", 1500), ("v", 8500)][..]),
        (2, 0, &[("b", 2000), ("f", 8000)], &[("y", 9999)]),
        (3, 0, &[("d", 9000)], &[("z", 3000)]),
        (1, 10_000, &[("e", 10500), ("g", 11999)], &[("u", 10000), ("t", 12000), ("s", 16000)]),
    ] {
        for (lv, lt) in ls {
            for (rv, rt) in rs {
                expected.push(line(&[
                    ("k", k.to_string()),
                    ("window_start", start.to_string()),
                    ("window_end", (start + 10_000).to_string()),
                    ("lv", lv.to_string()),
                    ("left_ts", lt.to_string()),
                    ("rv", rv.to_string()),
                    ("right_ts", rt.to_string()),
                ]));
            }
        }
    }
    expected.sort();
    assert_eq!(expected.len(), 4 + 2 + 1 + 6);
    for p in [1, 2] {
        let dir = temp_dir("window-join");
        let (yaml, out) = two_file_job(&dir, p, LEFT, RIGHT, join);
        run_yaml(&yaml, &[]);
        assert_eq!(rendered(&out), expected, "p={p}");
    }
}

#[test]
fn a_window_downstream_of_a_window_join_uses_window_end_as_event_time() {
    // The 13 pairs of `window_join_job_at_parallelism_1_and_2`: 7 with window_end 10 s, 6 with 20 s. A
    // 10 s tumbling window over the join's output puts them in [10 s, 20 s) and [20 s, 30 s).
    let join =
        "    type: window_join\n    inputs: [lefts, rights]\n    config: { key_by: [k], window: { tumbling: 10s } }\n  \
         per: { type: window, parallelism: 1, inputs: [j], config: { window: { tumbling: 10s }, aggregate: { pairs: \"count(*)\" } } }";
    for p in [1, 2] {
        let dir = temp_dir("window-join-window");
        let (yaml, out) = two_file_job(&dir, p, LEFT, RIGHT, join);
        run_yaml(&yaml.replace("inputs: [j], parallelism: 1", "inputs: [per], parallelism: 1"), &[]);
        assert_eq!(
            rendered(&out),
            [
                line(&[("window_start", "20000".into()), ("window_end", "30000".into()), ("pairs", "6".into())]),
                line(&[("window_start", "10000".into()), ("window_end", "20000".into()), ("pairs", "7".into())]),
            ],
            "p={p}"
        );
    }
}

#[test]
fn late_join_records_reach_a_sink_through_the_side_outputs() {
    // Rows without a time are late at any parallelism: with `late_output` they reach the sinks reading
    // `j.late_left` and `j.late_right`, unchanged, and count as side-output late records.
    let left = &["1,a,1000", "1,no time,"];
    let right = &["1000,x,1", ",right no time,2"];
    for join in [
        "    type: window_join\n    inputs: [lefts, rights]\n    config: { key_by: [k], window: { tumbling: 10s }, late_output: late }",
        "    type: interval_join\n    inputs: [lefts, rights]\n    config: { key_by: [k], between: [-1s, 1s], late_output: late }",
    ] {
        for p in [1, 2] {
            let dir = temp_dir("join-late-output");
            let (yaml, out) = two_file_job(&dir, p, left, right, join);
            let (ll, lr) = (dir.join("late_left.jsonl"), dir.join("late_right.jsonl"));
            let yaml = format!(
                "{yaml}  ll: {{ type: file, inputs: [j.late_left], parallelism: 1, config: {{ path: {} }} }}\n  \
                 lr: {{ type: file, inputs: [j.late_right], parallelism: 1, config: {{ path: {} }} }}\n",
                ll.display(),
                lr.display()
            );
            let registry = eddy::builtin_registry();
            let job = eddy::job::prepare_str("t.yaml", &yaml, &[], &registry).unwrap_or_else(|r| panic!("{r}"));
            let handle = job.handle();
            job.run_with(&handle).unwrap_or_else(|e| panic!("{e}"));
            let j = handle.metrics().snapshot().node("j").expect("node j").total();
            assert_eq!((j.late_records_dropped, j.late_records_side_output), (0, 2), "p={p}: {join}");
            assert_eq!(read_lines(&out).len(), 1, "p={p}: {join}");
            assert_eq!(rendered(&ll), [line(&[("k", "1".into()), ("lv", "no time".into()), ("ts", "null".into())])]);
            assert_eq!(rendered(&lr), [line(&[("k", "2".into()), ("rv", "right no time".into()), ("ts", "null".into())])]);
        }
    }
}

#[test]
fn interval_join_job_at_parallelism_1_and_2() {
    let join =
        "    type: interval_join\n    inputs: [lefts, rights]\n    config: { key_by: [k], between: [-1s, 1500ms] }";
    // By hand, right time in [left - 1s, left + 1.5s], same key:
    // a@1000 (k1): x@1500 | c@500 (k1): x@1500 | e@10500 (k1): u@10000, t@12000 | g@11999 (k1): t@12000
    // b@2000 (k2): none (y@9999) | f@8000 (k2): none | d@9000 (k3): none (z@3000).
    let mut expected: Vec<String> = [
        (1, "a", 1000, "x", 1500),
        (1, "c", 500, "x", 1500),
        (1, "e", 10500, "u", 10000),
        (1, "e", 10500, "t", 12000),
        (1, "g", 11999, "t", 12000),
    ]
    .iter()
    .map(|&(k, lv, lt, rv, rt): &(i64, &str, i64, &str, i64)| {
        line(&[
            ("k", k.to_string()),
            ("lv", lv.to_string()),
            ("left_ts", lt.to_string()),
            ("rv", rv.to_string()),
            ("right_ts", rt.to_string()),
            ("event_time", lt.max(rt).to_string()),
        ])
    })
    .collect();
    expected.sort();
    for p in [1, 2] {
        let dir = temp_dir("interval-join");
        let (yaml, out) = two_file_job(&dir, p, LEFT, RIGHT, join);
        run_yaml(&yaml, &[]);
        assert_eq!(rendered(&out), expected, "p={p}");
    }
}

#[test]
fn records_without_a_time_are_counted_late_in_a_running_job() {
    // Rows with an empty (NULL) time can never be placed in event time: dropped and counted, on both
    // sides, at any parallelism, deterministically (unlike a late time, whose lateness depends on how the
    // two inputs' watermarks interleave). A NULL key is not late: it just matches nothing.
    let left = &["1,a,1000", "1,no time,", "1,b,3000", ",no key,1000"];
    let right = &["1000,x,1", ",no time,1", "1000,no key,"];
    let joins = [
        "    type: interval_join\n    inputs: [lefts, rights]\n    config: { key_by: [k], between: [-1s, 1s] }",
        "    type: window_join\n    inputs: [lefts, rights]\n    config: { key_by: [k], window: { tumbling: 10s } }",
    ];
    for (join, matches) in joins.iter().zip([1, 2]) {
        for p in [1, 2] {
            let dir = temp_dir("join-late");
            let (yaml, out) = two_file_job(&dir, p, left, right, join);
            let registry = eddy::builtin_registry();
            let job = eddy::job::prepare_str("t.yaml", &yaml, &[], &registry).unwrap_or_else(|r| panic!("{r}"));
            let handle = job.handle();
            job.run_with(&handle).unwrap_or_else(|e| panic!("{e}"));
            let snapshot = handle.metrics().snapshot();
            let j = snapshot.node("j").expect("node j").total();
            assert_eq!(j.late_records_dropped, 2, "p={p}: {join}");
            assert_eq!(read_lines(&out).len(), matches, "p={p}: {join}");
        }
    }
}

/// A bundled bid: (auction, bidder, price, channel, date_time).
type Bid = (i64, i64, i64, String, i64);

/// The bundled bids.
fn bids_with_time() -> Vec<Bid> {
    std::fs::read_to_string(BIDS)
        .expect("bids")
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let n = |i: usize| f[i].parse::<i64>().unwrap_or_else(|e| panic!("{l}: {e}"));
            (n(0), n(1), n(2), f[3].to_string(), n(5))
        })
        .collect()
}

fn bids_job(p: usize, out: &Path, operators: &str) -> String {
    format!(
        "name: bids-join\nparallelism: {p}\n\
         sources:\n  bids:\n    type: file\n    event_time: {{ field: date_time, max_out_of_orderness: 2s }}\n\
         \x20   config: {{ path: {BIDS}, format: csv, schema: {BID_SCHEMA} }}\n\
         operators:\n{operators}\n\
         sinks:\n  out: {{ type: file, inputs: [j], parallelism: 1, config: {{ path: {} }} }}\n",
        out.display()
    )
}

/// Counts rows per rendered tuple.
fn multiset(rows: impl IntoIterator<Item = String>) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in rows {
        *m.entry(r).or_insert(0) += 1;
    }
    m
}

#[test]
fn bids_self_interval_join_equals_a_brute_force_join() {
    let ops = "  slim: { type: map, inputs: [bids], config: { select: [auction, bidder, price, date_time] } }\n\
               \x20 j:\n    type: interval_join\n    inputs: [slim, slim]\n\
               \x20   config:\n      key_by: [auction]\n      between: [1ms, 100ms]\n\
               \x20     where: \"right_price > left_price AND right_bidder <> left_bidder\"";
    let bids = bids_with_time();
    let mut by_auction: HashMap<i64, Vec<&Bid>> = HashMap::new();
    for b in &bids {
        by_auction.entry(b.0).or_default().push(b);
    }
    let mut expected = Vec::new();
    for rows in by_auction.values() {
        for l in rows {
            for r in rows {
                if (1..=100).contains(&(r.4 - l.4)) && r.2 > l.2 && r.1 != l.1 {
                    expected.push(format!("{} {} {} {} {} {} {}", l.0, l.1, l.2, l.4, r.1, r.2, r.4));
                }
            }
        }
    }
    assert!(expected.len() > 1000, "a meaningful amount of matches: {}", expected.len());
    let expected = multiset(expected);
    for p in [1, 2] {
        let out = temp_dir("bids-interval").join("out.jsonl");
        run_yaml(&bids_job(p, &out, ops), &[]);
        let got = multiset(read_json(&out).iter().map(|o| {
            assert_eq!(o["event_time"], o["right_date_time"], "the later time");
            format!(
                "{} {} {} {} {} {} {}",
                o["auction"],
                o["left_bidder"],
                o["left_price"],
                o["left_date_time"],
                o["right_bidder"],
                o["right_price"],
                o["right_date_time"]
            )
        }));
        assert!(got == expected, "p={p}: {} rows, expected {}", got.values().sum::<usize>(), bids_len(&expected));
    }
}

fn bids_len(m: &HashMap<String, usize>) -> usize {
    m.values().sum()
}

#[test]
fn bids_sliding_window_join_of_two_channels_equals_a_brute_force_join() {
    let ops = "  google: { type: filter, inputs: [bids], config: { where: \"channel = 'Google'\" } }\n\
               \x20 apple: { type: filter, inputs: [bids], config: { where: \"channel = 'Apple'\" } }\n\
               \x20 a2: { type: map, inputs: [apple], config: { select: [date_time, price, auction] } }\n\
               \x20 j:\n    type: window_join\n    inputs: [google, a2]\n\
               \x20   config: { key_by: [auction], window: { sliding: 100ms, slide: 50ms } }";
    let bids = bids_with_time();
    let windows = |ts: i64| {
        let last = ts - ts.rem_euclid(50);
        [last, last - 50]
    };
    let mut expected = Vec::new();
    for l in bids.iter().filter(|b| b.3 == "Google") {
        for r in bids.iter().filter(|b| b.3 == "Apple" && b.0 == l.0) {
            for s in windows(l.4) {
                if windows(r.4).contains(&s) {
                    expected.push(format!("{} {} {} {} {} {} {}", l.0, s, s + 100, l.1, l.2, l.4, r.4));
                }
            }
        }
    }
    assert!(expected.len() > 1000, "{}", expected.len());
    let expected = multiset(expected);
    for p in [1, 2] {
        let out = temp_dir("bids-window").join("out.jsonl");
        run_yaml(&bids_job(p, &out, ops), &[]);
        let rows = read_json(&out);
        let got = multiset(rows.iter().map(|o| {
            format!(
                "{} {} {} {} {} {} {}",
                o["auction"],
                o["window_start"],
                o["window_end"],
                o["bidder"],
                o["left_price"],
                o["left_date_time"],
                o["right_date_time"]
            )
        }));
        assert!(got == expected, "p={p}: {} rows, expected {}", rows.len(), bids_len(&expected));
    }
}

#[test]
fn the_example_runs_and_finds_what_a_brute_force_join_finds() {
    let dir = temp_dir("joins-example");
    let (outbid, versus) = (dir.join("outbid.jsonl"), dir.join("versus.jsonl"));
    let yaml = std::fs::read_to_string("examples/joins.yaml").expect("examples/joins.yaml");
    let sets = [
        format!("sinks.outbid_out.config.path={}", outbid.display()),
        format!("sinks.google_vs_apple_out.config.path={}", versus.display()),
    ];
    run_yaml(&yaml, &sets.iter().map(String::as_str).collect::<Vec<_>>());
    // Counted by brute force over examples/data/bids.csv (see the bids tests above for the method).
    assert_eq!(read_lines(&outbid).len(), 20_070);
    let bids = bids_with_time();
    let expected = bids
        .iter()
        .filter(|l| l.3 == "Google")
        .flat_map(|l| bids.iter().filter(move |r| r.3 == "Apple" && r.0 == l.0).map(move |r| (l, r)))
        .filter(|(l, r)| l.4.div_euclid(100) == r.4.div_euclid(100) && l.2 > r.2)
        .count();
    assert_eq!(read_lines(&versus).len(), expected);
}

// ---------------------------------------------------------------------------------------------------
// Diagnostics
// ---------------------------------------------------------------------------------------------------

/// The report for a job whose `j` node is `join` over `l {k: int, v: string, ts}` (event time unless
/// `l_time` is false) and `r {k: <r_key_type>, w: string, ts}` with event time.
fn report(join: &str, l_time: bool, r_key_type: &str) -> String {
    let dir = temp_dir("join-diag");
    let l = write(&dir, "l.csv", &["1,a,1"]);
    let r = write(&dir, "r.csv", &["1,b,1"]);
    let l_event_time = if l_time { "    event_time: { field: ts }\n" } else { "" };
    let yaml = format!(
        "name: diag\nsources:\n  l:\n    type: file\n{l_event_time}\
         \x20   config: {{ path: {l}, format: csv, schema: {{ k: int, v: string, ts: timestamp_ms }} }}\n\
         \x20 r:\n    type: file\n    event_time: {{ field: ts }}\n\
         \x20   config: {{ path: {r}, format: csv, schema: {{ k: {r_key_type}, w: string, ts: timestamp_ms }} }}\n\
         operators:\n  j:\n{join}\n\
         sinks:\n  out: {{ type: stdout, inputs: [j] }}\n"
    );
    match try_run_yaml(&yaml, &[]) {
        Ok(_) => panic!("expected a validation error for\n{yaml}"),
        Err(e) => e,
    }
}

fn assert_has(report: &str, needles: &[&str]) {
    for n in needles {
        assert!(report.contains(n), "missing `{n}` in:\n{report}");
    }
}

#[test]
fn diagnostics_point_at_the_problem() {
    // Line numbers: `j:` is line 11 when `l` has no event_time, 12 otherwise; its config three lines on.
    let r = report(
        "    type: interval_join\n    inputs: [l, r]\n    config: { key_by: [k], between: [-5s, 10s] }",
        false,
        "int",
    );
    assert_has(&r, &["test.yaml:11:3", "its input `l` has no event time", "declare `event_time:"]);

    let r = report(
        "    type: interval_join\n    inputs: [l, r]\n    config: { key_by: [k], between: [10s, -5s] }",
        true,
        "int",
    );
    assert_has(&r, &["test.yaml:15:37", "the lower bound `10s` is above the upper bound `-5s`"]);

    let r =
        report("    type: interval_join\n    inputs: [l, r]\n    config: { key_by: [k], between: [5s] }", true, "int");
    assert_has(&r, &["test.yaml:15:37", "`between` takes two durations"]);

    let r = report(
        "    type: window_join\n    inputs: [l, r]\n    config: { key_by: [k], window: { tumbling: 10s } }",
        true,
        "string",
    );
    assert_has(&r, &["test.yaml:15:24", "key `k` is int on `l` but string on `r`", "CAST(k AS int)"]);

    let r = report(
        "    type: window_join\n    inputs: [l, r]\n    config: { key_by: [v], window: { tumbling: 10s } }",
        true,
        "int",
    );
    assert_has(&r, &["test.yaml:15:24", "right input `r`: unknown field `v`"]);

    let r = report(
        "    type: window_join\n    inputs: [l]\n    config: { key_by: [k], window: { sliding: 10s } }",
        true,
        "int",
    );
    assert_has(&r, &["test.yaml:12:3", "takes exactly two inputs", "test.yaml:15:36", "sliding windows need `slide`"]);

    let r = report("    type: window_join\n    inputs: [l, r]\n    config: { window: { tumbling: 0 } }", true, "int");
    assert_has(&r, &["`tumbling` must be longer than 0", "needs `key_by`"]);
}
