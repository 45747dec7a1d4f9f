//! Generator -> file sink -> file source round trips (every format and timestamp style), and an
//! ignored throughput check (`cargo test --release -p eddy --lib roundtrip -- --ignored --nocapture`).
use super::file::{FileFormat, FileSinkBuilder, FileSinkConfig, FileSourceBuilder, FileSourceConfig, OnError};
use super::generator::{GeneratorBuilder, GeneratorConfig, GeneratorKind};
use super::test_util::{ctx, task, temp_dir};
use super::{SchemaSpec, SinkFormat, TimestampFormat};
use eddy_api::registry::InputInfo;
use eddy_api::{Batch, Sink, Source, SourceBuilder, SourcePoll, Span, Spanned};
use std::path::Path;
use std::time::Instant;

fn spanned<T>(v: T) -> Spanned<T> {
    Spanned::new(Span::new(1, 1), v)
}

fn generator(count: u64) -> GeneratorBuilder {
    let cfg = GeneratorConfig {
        kind: GeneratorKind::Bids,
        count: Some(count),
        rate: None,
        seed: 3,
        start_time_ms: None,
        keys: None,
    };
    GeneratorBuilder::plan(cfg, &ctx("gen", 1, &[])).unwrap()
}

fn drain(src: &mut dyn Source, width: usize, mut each: impl FnMut(&Batch)) {
    let mut out = Batch::new(width);
    loop {
        let poll = src.poll(&mut out, 1024).unwrap();
        each(&out);
        out.clear();
        if poll == SourcePoll::Finished {
            return;
        }
    }
}

fn write(gen: &GeneratorBuilder, path: &Path, format: SinkFormat, timestamps: TimestampFormat) {
    let inputs = [InputInfo { name: "gen".into(), schema: gen.output_schema(), key: None }];
    let cfg = FileSinkConfig { path: spanned(path.display().to_string()), format, timestamps, header: None };
    let sink_b = FileSinkBuilder::plan(cfg, &ctx("out", 1, &inputs)).unwrap();
    let mut sink = sink_b.instance(&task(0, 1));
    sink.open(&task(0, 1)).unwrap();
    drain(&mut gen.instance(&task(0, 1)), 7, |b| sink.write_batch(b).unwrap());
    sink.finish().unwrap();
}

fn reader(path: &Path, format: FileFormat) -> FileSourceBuilder {
    let schema = [
        ("auction", "int"),
        ("bidder", "int"),
        ("price", "int"),
        ("channel", "string"),
        ("url", "string"),
        ("date_time", "timestamp_ms"),
        ("extra", "string"),
    ];
    let cfg = FileSourceConfig {
        path: spanned(path.display().to_string()),
        format,
        schema: Some(SchemaSpec {
            fields: schema.iter().map(|(n, t)| (n.to_string(), spanned(t.to_string()))).collect(),
        }),
        header: None,
        delimiter: None,
        quote: None,
        on_error: OnError::Fail,
    };
    FileSourceBuilder::plan(cfg, &ctx("in", 1, &[])).unwrap()
}

fn rows(src: &mut dyn Source) -> Vec<String> {
    let mut v = Vec::new();
    drain(src, 7, |b| v.extend(b.rows().map(|r| format!("{r:?}"))));
    v
}

#[test]
fn generated_bids_survive_every_format() {
    let dir = temp_dir("roundtrip");
    let gen = generator(5000);
    let want = rows(&mut gen.instance(&task(0, 1)));
    for (format, read_as, ts) in [
        (SinkFormat::Csv, FileFormat::Csv, TimestampFormat::EpochMs),
        (SinkFormat::Csv, FileFormat::Csv, TimestampFormat::Rfc3339),
        (SinkFormat::Jsonl, FileFormat::Jsonl, TimestampFormat::EpochMs),
        (SinkFormat::Jsonl, FileFormat::Jsonl, TimestampFormat::Rfc3339),
    ] {
        let path = dir.join(format!("bids-{ts:?}.{}", format.extension()));
        write(&gen, &path, format, ts);
        let b = reader(&path, read_as);
        assert_eq!(rows(&mut b.instance(&task(0, 1))), want, "{format:?} {ts:?}");
        let mut got: Vec<String> = (0..3).flat_map(|s| rows(&mut b.instance(&task(s, 3)))).collect();
        got.sort();
        let mut sorted = want.clone();
        sorted.sort();
        assert_eq!(got, sorted, "{format:?} {ts:?} p=3");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "throughput check; run by hand in release"]
fn throughput() {
    let n = 2_000_000;
    let dir = temp_dir("throughput");
    let gen = generator(n);
    let rate = |what: &str, t: Instant| println!("{what}: {:.1}M rec/s", n as f64 / t.elapsed().as_secs_f64() / 1e6);
    let t = Instant::now();
    drain(&mut gen.instance(&task(0, 1)), 7, |_| {});
    rate("generate bids", t);
    for (format, read_as) in [(SinkFormat::Csv, FileFormat::Csv), (SinkFormat::Jsonl, FileFormat::Jsonl)] {
        let path = dir.join(format!("bids.{}", format.extension()));
        let t = Instant::now();
        write(&gen, &path, format, TimestampFormat::EpochMs);
        rate(&format!("generate + write {format:?}"), t);
        let b = reader(&path, read_as);
        // EDDY_READ_REPEAT=k re-reads k times, to profile reading alone.
        let repeat: usize = std::env::var("EDDY_READ_REPEAT").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
        for _ in 0..repeat {
            let t = Instant::now();
            let mut count = 0;
            drain(&mut b.instance(&task(0, 1)), 7, |b| count += b.len());
            assert_eq!(count, n as usize);
            rate(&format!("read {read_as:?}"), t);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
