//! The connectors planned from YAML through the registry, as a job file reaches them.
use super::register;
use super::test_util::temp_dir;
use crate::config::parse_yaml;
use eddy_api::registry::InputInfo;
use eddy_api::schema::{DataType, Field, Schema};
use eddy_api::{Diagnostic, PlanContext, Registry, Span, Spanned};
use std::sync::Arc;

fn registry() -> Registry {
    let mut r = Registry::new();
    register(&mut r);
    r
}

fn ty(name: &str) -> Spanned<String> {
    Spanned::new(Span::new(1, 1), name.to_string())
}

fn source(yaml: &str) -> Result<Arc<dyn eddy_api::SourceBuilder>, Vec<Diagnostic>> {
    let (kind, rest) = yaml.split_once('\n').unwrap();
    let cfg = parse_yaml(rest).unwrap();
    let ctx = PlanContext {
        job: "j",
        node: "bids",
        span: Span::new(1, 1),
        parallelism: 1,
        inputs: &[],
        checkpointing: false,
    };
    registry().plan_source(&ty(kind), &cfg, &ctx).map_err(|d| d.0)
}

fn sink(yaml: &str) -> Result<Arc<dyn eddy_api::SinkBuilder>, Vec<Diagnostic>> {
    let (kind, rest) = yaml.split_once('\n').unwrap();
    let cfg = parse_yaml(rest).unwrap();
    let inputs = [InputInfo {
        name: "in".into(),
        schema: Arc::new(Schema::new(vec![Field::new("id", DataType::Int)])),
        key: None,
    }];
    let ctx = PlanContext {
        job: "j",
        node: "out",
        span: Span::new(1, 1),
        parallelism: 1,
        inputs: &inputs,
        checkpointing: false,
    };
    registry().plan_sink(&ty(kind), &cfg, &ctx).map_err(|d| d.0)
}

#[test]
fn registers_every_connector() {
    use eddy_api::registry::NodeKind;
    let r = registry();
    assert_eq!(r.names(NodeKind::Source), ["file", "generator"]);
    assert_eq!(r.names(NodeKind::Sink), ["blackhole", "file", "stdout"]);
}

#[test]
fn file_source_from_yaml_keeps_schema_order() {
    let dir = temp_dir("yaml");
    let path = dir.join("bids.csv");
    std::fs::write(&path, "1,x\n").unwrap();
    let b = source(&format!(
        "file\npath: {}\nformat: csv\nschema:\n  zeta: long\n  alpha: string\ndelimiter: ','\non_error: skip\nheader: false\n",
        path.display()
    ))
    .unwrap();
    assert_eq!(b.output_schema().to_string(), "{zeta: int, alpha: string}");
    let b = source(&format!("file\n{{ path: {}, format: jsonl, schema: {{ b: int, a: float }} }}", path.display()))
        .unwrap();
    assert_eq!(b.output_schema().to_string(), "{b: int, a: float}");
    let b = source(&format!("file\npath: {}\nformat: lines", path.display())).unwrap();
    assert_eq!(b.output_schema().to_string(), "{line: string}");
}

#[test]
fn file_source_yaml_diagnostics_are_located() {
    let d = source("file\npath: data/nope.csv\nformat: csv\nschema:\n  id: int\n  price: integr\n").err().unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].message, "file source `bids`: `data/nope.csv` does not exist");
    assert_eq!(d[0].span, Some(Span::new(1, 7)));
    assert_eq!(d[1].span, Some(Span::new(5, 10)));
    assert!(
        d[1].message.starts_with("file source `bids`: unknown type `integr` for field `price`"),
        "{}",
        d[1].message
    );
    let d = source("file\npath: x.csv\nformat: csv\ndelimter: ';'\n").err().unwrap();
    assert!(d[0].message.contains("delimter"), "{}", d[0].message);
    let d = source("file\npath: x.csv\nformat: parquet\n").err().unwrap();
    assert!(d[0].message.contains("parquet"), "{}", d[0].message);
}

#[test]
fn generator_and_sinks_from_yaml() {
    let b = source("generator\nkind: bids\ncount: 10\nrate: 1000\nseed: 7\nstart_time_ms: 0\n").unwrap();
    assert!(b.bounded());
    assert_eq!(b.output_schema().len(), 7);
    let b = source("generator\nkind: sequence\nkeys: 5\n").unwrap();
    assert!(!b.bounded());
    let d = source("generator\nkind: sequence\nrate: 0\n").err().unwrap();
    assert_eq!(d[0].span, Some(Span::new(2, 7)));
    let dir = temp_dir("yamlsink");
    sink(&format!("file\npath: {}\nformat: csv\nheader: true\ntimestamps: rfc3339\n", dir.join("o.csv").display()))
        .unwrap();
    sink("stdout\n{}").unwrap();
    sink("stdout\nformat: csv\n").unwrap();
    sink("blackhole\ndelay_per_batch: 5ms\n").unwrap();
    sink("blackhole\n{}").unwrap();
    assert!(sink("blackhole\ndelay: 5ms\n").is_err());
    let d = sink("stdout\nheader: true\n").err().unwrap();
    assert_eq!(d[0].message, "stdout sink `out`: `header` only applies to format csv");
    assert_eq!(d[0].span, Some(Span::new(1, 9)));
}
