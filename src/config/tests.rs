//! End-to-end tests of job loading: the rendered messages are pinned here.
use super::*;
use eddy_api::config::{ConfigKind, Span};
use eddy_api::registry::NodeKind;
use std::time::Duration;

const GOOD: &str = "\
name: q1
parallelism: 2
buffer_timeout: 10ms
sinks:
  out: { type: stdout, inputs: [euros] }
sources:
  bids:
    type: csv
    config: { path: bids.csv }
operators:
  euros:
    type: map
    inputs: [bids, bids.late]
    parallelism: 4
    description: converts prices
checkpoints:
  interval: 10s
";

fn job(text: &str, sets: &[&str]) -> JobSpec {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    match parse_job("job.yaml", text, &sets) {
        Ok(job) => job,
        Err(report) => panic!("{report}"),
    }
}

/// The rendered report for a file that must fail.
fn report(text: &str, sets: &[&str]) -> String {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    match parse_job("job.yaml", text, &sets) {
        Ok(job) => panic!("parsed: {job:?}"),
        Err(report) => report.to_string(),
    }
}

#[test]
fn reads_a_job_with_defaults_and_file_order() {
    let job = job(GOOD, &[]);
    assert_eq!(job.name.value, "q1");
    assert_eq!(job.name.span, Span::new(1, 7));
    assert_eq!(job.parallelism.value, 2);
    assert_eq!(job.max_parallelism.value, 128);
    assert_eq!(job.max_parallelism.span, Span::default());
    assert_eq!(job.buffer_timeout, Duration::from_millis(10));
    assert_eq!(job.batch_size, 1024);
    let names: Vec<&str> = job.nodes.iter().map(|n| n.name.value.as_str()).collect();
    assert_eq!(names, ["bids", "euros", "out"]);
    let kinds: Vec<NodeKind> = job.nodes.iter().map(|n| n.kind).collect();
    assert_eq!(kinds, [NodeKind::Source, NodeKind::Operator, NodeKind::Sink]);

    let bids = &job.nodes[0];
    assert_eq!(bids.span, Span::new(7, 3));
    assert_eq!(bids.type_name.value, "csv");
    assert_eq!(bids.type_name.span, Span::new(8, 11));
    assert_eq!(bids.config.get("path").and_then(|p| p.as_str()), Some("bids.csv"));
    assert!(bids.inputs.is_empty());

    let euros = job.node("euros").unwrap_or_else(|| panic!("no euros"));
    let inputs: Vec<&str> = euros.inputs.iter().map(|i| i.value.as_str()).collect();
    assert_eq!(inputs, ["bids", "bids.late"]);
    assert_eq!(euros.inputs[1].span, Span::new(13, 20));
    assert_eq!(euros.parallelism.as_ref().map(|p| p.value), Some(4));
    assert_eq!(euros.config, eddy_api::ConfigValue::empty_map(Span::new(11, 3)));
    assert_eq!(euros.extra.len(), 1);
    assert_eq!(euros.extra[0].0.value, "description");

    assert_eq!(job.sections.len(), 1);
    assert_eq!(job.section("checkpoints").and_then(|c| c.get("interval")).and_then(|i| i.as_str()), Some("10s"));
    assert_eq!(&*job.file, "job.yaml");
    assert_eq!(&*job.source, GOOD);
}

#[test]
fn overrides_apply_before_the_model() {
    let job = job(GOOD, &["parallelism=3", "sources.bids.config.path=/tmp/x.csv", "buffer_timeout=0", "batch_size=1"]);
    assert_eq!(job.parallelism.value, 3);
    assert_eq!(job.buffer_timeout, Duration::ZERO);
    assert_eq!(job.batch_size, 1);
    let path = job.nodes[0].config.get("path");
    assert_eq!(path.and_then(|p| p.as_str()), Some("/tmp/x.csv"));
    assert_eq!(path.map(|p| p.span), Some(override_span(1)));
}

#[test]
fn unknown_top_level_key() {
    let text = "name: q1\nsources: {}\nsink:\n  out: { type: stdout, inputs: [a] }\n";
    assert_eq!(
        report(text, &[]),
        "\
error: unknown top-level key `sink`
 --> job.yaml:3:1
  |
3 | sink:
  | ^
  = hint: did you mean `sinks`?

error: 1 problem in job.yaml"
    );
}

#[test]
fn unknown_node_key() {
    let text = "name: q1\nsources:\n  bids: { typ: csv, path: x.csv }\n";
    assert_eq!(
        report(text, &[]),
        "\
error: missing key `type` in node `bids`
 --> job.yaml:3:3
  |
3 |   bids: { typ: csv, path: x.csv }
  |   ^
  = hint: every node needs a `type:` naming the source to run

error: unknown key `typ` in node `bids`
 --> job.yaml:3:11
  |
3 |   bids: { typ: csv, path: x.csv }
  |           ^
  = hint: did you mean `type`?

error: unknown key `path` in node `bids`
 --> job.yaml:3:21
  |
3 |   bids: { typ: csv, path: x.csv }
  |                     ^
  = hint: settings of the node's type go under `config:`

error: 3 problems in job.yaml"
    );
}

#[test]
fn duplicate_key() {
    let text = "name: q1\nparallelism: 2\nname: q2\n";
    assert_eq!(
        report(text, &[]),
        "\
error: duplicate key `name` (first defined at line 1)
 --> job.yaml:3:1
  |
3 | name: q2
  | ^

error: 1 problem in job.yaml"
    );
}

#[test]
fn yaml_syntax_error() {
    let text = "name: q1\nsources:\n  bids: { type: csv, inputs: [a }\n";
    assert_eq!(
        report(text, &[]),
        "\
error: YAML syntax error: expected `,` or `]` in a `[...]` list
 --> job.yaml:3:33
  |
3 |   bids: { type: csv, inputs: [a }
  |                                 ^

error: 1 problem in job.yaml"
    );
}

#[test]
fn bad_duration() {
    let text = "name: q1\nbuffer_timeout: 5\n";
    assert_eq!(
        report(text, &[]),
        "\
error: `buffer_timeout`: invalid duration `5`: a duration needs a unit (e.g. `5ms` or `5s`)
 --> job.yaml:2:17
  |
2 | buffer_timeout: 5
  |                 ^

error: 1 problem in job.yaml"
    );
    let text = "name: q1\nbuffer_timeout: [5ms]\n";
    assert!(report(text, &[])
        .starts_with("error: `buffer_timeout`: expected a duration such as `5ms` or `2s`, found a list\n"));
}

#[test]
fn missing_type() {
    let text = "name: q1\nsinks:\n  out:\n    inputs: [a]\n";
    assert_eq!(
        report(text, &[]),
        "\
error: missing key `type` in node `out`
 --> job.yaml:3:3
  |
3 |   out:
  |   ^
  = hint: every node needs a `type:` naming the sink to run

error: 1 problem in job.yaml"
    );
}

#[test]
fn source_with_inputs() {
    let text = "name: q1\nsources:\n  bids: { type: csv, inputs: [other] }\n";
    assert_eq!(
        report(text, &[]),
        "\
error: source `bids` cannot have `inputs`
 --> job.yaml:3:22
  |
3 |   bids: { type: csv, inputs: [other] }
  |                      ^
  = hint: sources read from outside the job; to consume another node, move it under `operators:`

error: 1 problem in job.yaml"
    );
}

#[test]
fn sink_without_inputs() {
    let text = "name: q1\nsinks:\n  out: { type: stdout }\n  log: { type: stdout, inputs: [] }\n";
    assert_eq!(
        report(text, &[]),
        "\
error: sink `out` has no `inputs`
 --> job.yaml:3:3
  |
3 |   out: { type: stdout }
  |   ^
  = hint: add `inputs: [<upstream node>]`

error: sink `log` has an empty `inputs` list
 --> job.yaml:4:32
  |
4 |   log: { type: stdout, inputs: [] }
  |                                ^
  = hint: name at least one upstream node

error: 2 problems in job.yaml"
    );
}

#[test]
fn parallelism_zero() {
    let text = "name: q1\nparallelism: 0\noperators:\n  m: { type: map, inputs: [a], parallelism: 0 }\n";
    assert_eq!(
        report(text, &[]),
        "\
error: `parallelism` must be at least 1, found 0
 --> job.yaml:2:14
  |
2 | parallelism: 0
  |              ^

error: `operators.m.parallelism` must be at least 1, found 0
 --> job.yaml:4:45
  |
4 |   m: { type: map, inputs: [a], parallelism: 0 }
  |                                             ^

error: 2 problems in job.yaml"
    );
}

#[test]
fn bad_set() {
    assert_eq!(
        report(GOOD, &["sources.bids.type.path=/x", "foo"]),
        "\
error: --set sources.bids.type.path: `sources.bids.type` is not a map

error: --set foo: expected key=value

error: 2 problems in job.yaml"
    );
    // A value that is well-formed but wrong for the model names the override.
    assert_eq!(
        report(GOOD, &["parallelism=0"]),
        "error: --set parallelism=0: `parallelism` must be at least 1, found 0\n\nerror: 1 problem in job.yaml"
    );
}

#[test]
fn problems_are_collected_not_fail_fast() {
    let text = "\
parallelism: x
max_parallelism: 4
sources:
  a: { type: csv }
  'bad name': { type: csv }
operators:
  a: { type: map, inputs: ['no good'] }
  big: { type: map, inputs: [a], parallelism: 8 }
sinks: [out]
";
    let out = report(text, &[]);
    let errors: Vec<&str> = out.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(
        errors,
        [
            "error: missing key `name`",
            "error: `parallelism`: expected an integer, found a string",
            "error: invalid node name `bad name`",
            "error: node name `a` is used twice (first defined at line 4)",
            "error: invalid input `no good`",
            "error: the parallelism of `big` (8) is above `max_parallelism` (4)",
            "error: `sinks` must be a map of node names to nodes, found a list",
            "error: 7 problems in job.yaml",
        ]
    );
}

#[test]
fn odd_top_levels() {
    assert!(report("", &[]).starts_with("error: the job file is empty\n --> job.yaml:1:1\n"));
    assert!(report("- a\n", &[]).starts_with("error: expected a map of job settings at the top level, found a list\n"));
    assert!(report("name: ''\n", &[]).starts_with("error: `name` must not be empty\n"));
}

#[test]
fn empty_sections_and_null_config() {
    let job = job("name: q1\noperators:\nsources:\n  s:\n    type: gen\n    config:\n", &[]);
    assert_eq!(job.nodes.len(), 1);
    assert_eq!(job.nodes[0].config.kind, ConfigKind::Map(Vec::new()));
}

#[test]
fn load_job_reads_files_and_reports_unreadable_ones() {
    let dir = std::env::temp_dir().join(format!("eddy-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join("q1.yaml");
    std::fs::write(&path, GOOD).unwrap_or_else(|e| panic!("{e}"));
    let loaded = load_job(&path, &["parallelism=5".to_string()]).unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(loaded.parallelism.value, 5);
    assert_eq!(&*loaded.file, path.display().to_string());

    let missing = dir.join("missing.yaml");
    let err = load_job(&missing, &[]).map(|_| ()).err().unwrap_or_else(|| panic!("loaded a missing file"));
    let text = err.to_string();
    assert!(text.starts_with(&format!("error: cannot read {}: ", missing.display())), "{text}");
    assert!(text.ends_with(&format!("error: 1 problem in {}", missing.display())), "{text}");

    let binary = dir.join("binary.yaml");
    std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap_or_else(|e| panic!("{e}"));
    let err = load_job(&binary, &[]).map(|_| ()).err().unwrap_or_else(|| panic!("loaded a binary file"));
    assert!(err.to_string().contains("it is not UTF-8 text"));
    let _ = std::fs::remove_dir_all(&dir);
}
