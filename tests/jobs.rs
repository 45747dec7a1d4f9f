//! Real topologies end to end: the same results at parallelism 1, 2 and 4.
mod common;
use common::*;
use std::collections::HashMap;

fn file_job(name: &str, source: &str, operators: &str, sink_input: &str, out: &std::path::Path) -> String {
    format!(
        "name: {name}\nsources:\n  bids: {{ type: file, config: {{ path: {BIDS}, format: csv, schema: {BID_SCHEMA} }} }}\n\
         {source}operators:\n{operators}\nsinks:\n  out: {{ type: file, inputs: [{sink_input}], config: {{ path: {} }} }}\n",
        out.display()
    )
}

#[test]
fn word_count_is_exact_at_every_parallelism() {
    let text = std::fs::read_to_string(WORDS).unwrap();
    let mut expected: HashMap<String, i64> = HashMap::new();
    for w in text.split_whitespace() {
        *expected.entry(w.to_string()).or_default() += 1;
    }
    for p in [1, 2, 4] {
        let dir = temp_dir("wordcount");
        let out = dir.join("counts");
        let yaml = format!(
            "name: wc\nparallelism: {p}\nsources:\n  text: {{ type: file, config: {{ path: {WORDS}, format: lines }} }}\n\
             operators:\n  words: {{ type: flat_map, inputs: [text], config: {{ split: line, as: word }} }}\n\
             \x20 by_word: {{ type: key_by, inputs: [words], config: {{ key: [word] }} }}\n\
             \x20 counts: {{ type: aggregate, inputs: [by_word], config: {{ emit: {{ n: \"count(*)\" }}, mode: final }} }}\n\
             sinks:\n  out: {{ type: file, inputs: [counts], config: {{ path: {} }} }}\n",
            out.display()
        );
        run_yaml(&yaml, &[]);
        let got: HashMap<String, i64> = read_json(&out)
            .iter()
            .map(|r| (r["word"].as_str().unwrap().to_string(), r["n"].as_i64().unwrap()))
            .collect();
        assert_eq!(got, expected, "parallelism {p}");
    }
}

#[test]
fn q1_converts_every_bid_identically_at_every_parallelism() {
    let mut results = Vec::new();
    for p in [1, 2, 4] {
        let out = temp_dir("q1").join("q1");
        let ops = "  euros: { type: map, inputs: [bids], config: { set: { price: \"price * 0.908\" } } }";
        run_yaml(&file_job("q1", "", ops, "euros", &out), &[&format!("parallelism={p}")]);
        let rows = read_json(&out);
        assert_eq!(rows.len(), 2000, "parallelism {p}");
        results.push(canonical(&rows));
    }
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
    // Spot-check the arithmetic against the input.
    let (auction, bidder, price, _) = bids()[0].clone();
    let first = serde_json::json!({ "auction": auction, "bidder": bidder });
    let rows: Vec<serde_json::Value> = results[0].iter().map(|s| serde_json::from_str(s).unwrap()).collect();
    let row = rows
        .iter()
        .find(|r| {
            r["auction"] == first["auction"] && r["bidder"] == first["bidder"] && r["date_time"] == 1_700_000_000_000i64
        })
        .expect("first bid present");
    assert_eq!(row["price"].as_f64().unwrap(), price as f64 * 0.908);
}

#[test]
fn q2_keeps_exactly_the_matching_bids() {
    let expected: Vec<(i64, i64)> = {
        let mut v: Vec<_> = bids().into_iter().filter(|b| b.0 % 123 == 0).map(|b| (b.0, b.2)).collect();
        v.sort();
        v
    };
    assert!(!expected.is_empty(), "the bundled data has matching auctions");
    for p in [1, 2, 4] {
        let out = temp_dir("q2").join("q2");
        let ops = "  big: { type: filter, inputs: [bids], config: { where: \"auction % 123 = 0\" } }";
        run_yaml(&file_job("q2", "", ops, "big", &out), &[&format!("parallelism={p}")]);
        let mut got: Vec<(i64, i64)> =
            read_json(&out).iter().map(|r| (r["auction"].as_i64().unwrap(), r["price"].as_i64().unwrap())).collect();
        got.sort();
        assert_eq!(got, expected, "parallelism {p}");
    }
}

#[test]
fn running_aggregate_ends_at_the_exact_totals_per_key() {
    let mut expected: HashMap<i64, (i64, i64)> = HashMap::new();
    for (auction, _, price, _) in bids() {
        let e = expected.entry(auction).or_insert((0, i64::MIN));
        e.0 += 1;
        e.1 = e.1.max(price);
    }
    for p in [1, 2, 4] {
        let out = temp_dir("agg").join("agg");
        let ops = "  per_auction: { type: aggregate, inputs: [bids], config: { key_by: [auction], emit: { bids: \"count(*)\", max_price: \"max(price)\" } } }";
        let summary = run_yaml(&file_job("agg", "", ops, "per_auction", &out), &[&format!("parallelism={p}")]);
        let rows = read_json(&out);
        assert_eq!(rows.len(), 2000, "one update per record at parallelism {p}");
        let mut last: HashMap<i64, (i64, i64)> = HashMap::new();
        for r in &rows {
            let (a, n, m) =
                (r["auction"].as_i64().unwrap(), r["bids"].as_i64().unwrap(), r["max_price"].as_i64().unwrap());
            let e = last.entry(a).or_insert((0, 0));
            if n > e.0 {
                *e = (n, m);
            }
        }
        assert_eq!(last, expected, "parallelism {p}");
        let agg = summary.nodes.iter().find(|n| n.node == "per_auction").unwrap();
        assert_eq!((agg.records_in, agg.records_out), (2000, 2000));
    }
}

#[test]
fn union_merges_two_sources() {
    let out = temp_dir("union").join("u");
    let yaml = format!(
        "name: u\nparallelism: 2\nsources:\n  a: {{ type: generator, config: {{ kind: sequence, count: 1000 }} }}\n  b: {{ type: generator, config: {{ kind: sequence, count: 500, seed: 9 }} }}\n\
         operators:\n  both: {{ type: union, inputs: [a, b] }}\n  total: {{ type: aggregate, inputs: [both], config: {{ emit: {{ n: \"count(*)\", s: \"sum(id)\" }}, mode: final }} }}\n\
         sinks:\n  out: {{ type: file, inputs: [total], config: {{ path: {} }} }}\n",
        out.display()
    );
    run_yaml(&yaml, &[]);
    let rows = read_json(&out);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["n"], 1500);
    assert_eq!(rows[0]["s"], (0..1000).sum::<i64>() + (0..500).sum::<i64>());
}

#[test]
fn generator_results_do_not_depend_on_parallelism() {
    let mut results = Vec::new();
    for p in [1, 2, 4] {
        let out = temp_dir("gen").join("g");
        let yaml = format!(
            "name: g\nparallelism: {p}\nsources:\n  bids: {{ type: generator, config: {{ kind: bids, count: 20000, seed: 3 }} }}\n\
             operators:\n  per_channel: {{ type: aggregate, inputs: [bids], config: {{ key_by: [channel], emit: {{ n: \"count(*)\", total: \"sum(price)\" }}, mode: final }} }}\n\
             sinks:\n  out: {{ type: file, inputs: [per_channel], config: {{ path: {} }} }}\n",
            out.display()
        );
        run_yaml(&yaml, &[]);
        results.push(canonical(&read_json(&out)));
    }
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
}

#[test]
fn buffer_timeout_zero_still_delivers_everything() {
    let out = temp_dir("bt0").join("q2");
    let ops = "  big: { type: filter, inputs: [bids], config: { where: \"price > 100000\" } }";
    run_yaml(&file_job("bt0", "", ops, "big", &out), &["buffer_timeout=0", "parallelism=2"]);
    let expected = bids().iter().filter(|b| b.2 > 100000).count();
    assert_eq!(read_lines(&out).len(), expected);
}

#[test]
fn broadcast_and_rebalance_edges_deliver_as_asked() {
    let dir = temp_dir("partition");
    let (bc, rb) = (dir.join("bc"), dir.join("rb"));
    let yaml = format!(
        "name: p\nsources:\n  seq: {{ type: generator, parallelism: 2, config: {{ kind: sequence, count: 1000 }} }}\n\
         operators:\n  everywhere: {{ type: filter, inputs: [seq], parallelism: 3, partition: broadcast, config: {{ where: \"id >= 0\" }} }}\n\
         \x20 spread: {{ type: filter, inputs: [seq], parallelism: 2, partition: rebalance, config: {{ where: \"id >= 0\" }} }}\n\
         sinks:\n  a: {{ type: file, inputs: [everywhere], parallelism: 3, config: {{ path: {} }} }}\n\
         \x20 b: {{ type: file, inputs: [spread], parallelism: 2, config: {{ path: {} }} }}\n",
        bc.display(),
        rb.display()
    );
    let job = eddy::job::prepare_str("p.yaml", &yaml, &[], &eddy::builtin_registry()).unwrap_or_else(|r| panic!("{r}"));
    let plan = eddy::plan::explain::text(&job.graph);
    assert!(plan.contains("--broadcast-->") && plan.contains("--rebalance-->"), "{plan}");
    job.run().expect("job runs");
    // Broadcast: each of the 3 subtasks sees all 1000 records.
    assert_eq!(read_lines(&bc).len(), 3000);
    for part in 0..3 {
        assert_eq!(read_lines(&bc.join(format!("part-{part}.jsonl"))).len(), 1000, "part {part}");
    }
    assert_eq!(read_lines(&rb).len(), 1000);
}
