//! Tests of the `file` source: planning diagnostics, exactly-once splits, errors and skip mode.
use super::*;
use crate::connectors::test_util::{ctx, task, temp_dir};
use eddy_api::Span;
use std::path::PathBuf;

fn spanned<T>(v: T) -> Spanned<T> {
    Spanned::new(Span::new(2, 9), v)
}

fn config(path: &Path, format: FileFormat, schema: &[(&str, &str)]) -> FileSourceConfig {
    FileSourceConfig {
        path: spanned(path.display().to_string()),
        format,
        schema: (!schema.is_empty()).then(|| SchemaSpec {
            fields: schema.iter().map(|(n, t)| (n.to_string(), spanned(t.to_string()))).collect(),
        }),
        header: None,
        delimiter: None,
        quote: None,
        on_error: OnError::Fail,
    }
}

fn plan(cfg: FileSourceConfig) -> Result<FileSourceBuilder, Diagnostics> {
    FileSourceBuilder::plan(cfg, &ctx("bids", 1, &[]))
}

/// Every record of subtask `s` of `p`, rendered, polling `max_rows` at a time.
fn read_subtask(b: &FileSourceBuilder, s: usize, p: usize, max_rows: usize) -> Result<Vec<String>> {
    let mut src = b.instance(&task(s, p));
    src.open(&task(s, p))?;
    let mut out = Batch::new(b.output_schema().len());
    let mut rows = Vec::new();
    for _ in 0..100_000 {
        let before = out.len();
        let poll = src.poll(&mut out, max_rows)?;
        assert!(out.len() - before <= max_rows, "poll exceeded max_rows");
        rows.extend(out.rows().map(|r| format!("{r:?}")));
        out.clear();
        if poll == SourcePoll::Finished {
            let prog = src.progress();
            assert_eq!(Some(prog.done), prog.total, "progress at the end");
            return Ok(rows);
        }
    }
    panic!("source never finished");
}

fn read_all(b: &FileSourceBuilder, p: usize) -> Vec<String> {
    (0..p).flat_map(|s| read_subtask(b, s, p, 3).unwrap()).collect()
}

const CONTENTS: [&str; 6] =
    ["1,a\n2,b\n3,c\n", "1,a\n2,b\n3,c", "1,a\r\n\r\n2,b\r\n3,c\r\n", "\n\n1,a\n\n2,bb\n\n\n3,ccc\n\n", "", "7,only"];

fn big_content() -> String {
    (0..300).map(|i| format!("{i},{}\n", "x".repeat(i % 17))).collect()
}

#[test]
fn splits_read_every_record_exactly_once() {
    let dir = temp_dir("splits");
    let mut contents: Vec<String> = CONTENTS.iter().map(|s| s.to_string()).collect();
    contents.push(big_content());
    for (i, text) in contents.iter().enumerate() {
        let path = dir.join(format!("f{i}.csv"));
        std::fs::write(&path, text).unwrap();
        for format in [FileFormat::Csv, FileFormat::Lines] {
            let schema: &[(&str, &str)] =
                if format == FileFormat::Csv { &[("id", "int"), ("s", "string")] } else { &[] };
            let b = plan(config(&path, format, schema)).unwrap();
            let expected = read_all(&b, 1);
            let lines: Vec<&str> = text.lines().collect();
            let non_empty = lines.iter().filter(|l| !l.is_empty()).count();
            assert_eq!(expected.len(), if format == FileFormat::Csv { non_empty } else { lines.len() }, "{text:?}");
            for p in 2..=5 {
                let mut got = read_all(&b, p);
                let mut want = expected.clone();
                got.sort();
                want.sort();
                assert_eq!(got, want, "file {i} {format:?} p={p}");
            }
        }
    }
}

#[test]
fn directories_split_by_file_or_range_with_headers() {
    let dir = temp_dir("dir");
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join(".hidden.csv"), "id,s\n99,hidden\n").unwrap();
    std::fs::write(data.join("sub/nested.csv"), "id,s\n98,nested\n").unwrap();
    std::fs::write(data.join("b.csv"), "id,s\r\n3,c\r\n4,d").unwrap();
    std::fs::write(data.join("a.csv"), "id,s\n1,a\n\n2,b\n").unwrap();
    std::fs::write(data.join("c.csv"), format!("id,s\n{}", big_content())).unwrap();
    let mut cfg = config(&data, FileFormat::Csv, &[("id", "int"), ("s", "string")]);
    cfg.header = Some(spanned(true));
    let b = plan(cfg).unwrap();
    let expected = read_all(&b, 1);
    assert_eq!(expected.len(), 304);
    assert_eq!(
        expected[..4],
        ["[Int(1), Str(\"a\")]", "[Int(2), Str(\"b\")]", "[Int(3), Str(\"c\")]", "[Int(4), Str(\"d\")]"]
    );
    for p in 2..=5 {
        let mut got = read_all(&b, p);
        let mut want = expected.clone();
        got.sort();
        want.sort();
        assert_eq!(got, want, "p={p}");
    }
}

#[test]
fn jsonl_splits_and_bom() {
    let dir = temp_dir("jsonl");
    let path = dir.join("x.jsonl");
    let mut text = String::from("\u{feff}{\"id\":0,\"s\":\"zero\"}\r\n\n");
    for i in 1..50 {
        text.push_str(&format!("{{\"s\":\"v{i}\\n\",\"id\":{i},\"other\":[1,{{}}]}}\n"));
    }
    std::fs::write(&path, text.trim_end()).unwrap();
    let b = plan(config(&path, FileFormat::Jsonl, &[("id", "int"), ("s", "string")])).unwrap();
    let expected = read_all(&b, 1);
    assert_eq!(expected.len(), 50);
    assert_eq!(expected[0], "[Int(0), Str(\"zero\")]");
    assert_eq!(expected[49], "[Int(49), Str(\"v49\\n\")]");
    for p in 2..=5 {
        let mut got = read_all(&b, p);
        got.sort();
        let mut want = expected.clone();
        want.sort();
        assert_eq!(got, want, "p={p}");
    }
}

fn bad_file(dir: &Path) -> PathBuf {
    let path = dir.join("bids.csv");
    std::fs::write(&path, "1,10\n\n2,12x4\n3,30\n4\n5,50,extra\n6,60").unwrap();
    path
}

#[test]
fn fail_mode_names_file_line_field_and_column() {
    let dir = temp_dir("fail");
    let path = bad_file(&dir);
    let b = plan(config(&path, FileFormat::Csv, &[("id", "int"), ("price", "int")])).unwrap();
    let err = read_subtask(&b, 0, 1, 1024).unwrap_err();
    assert!(matches!(err, EddyError::User(_)));
    assert_eq!(err.to_string(), format!("{}:3: field `price` (column 2): expected int, found `12x4`", path.display()));
    // The error is found by whichever subtask owns the line.
    let errs: Vec<String> = (0..3).filter_map(|s| read_subtask(&b, s, 3, 1024).err()).map(|e| e.to_string()).collect();
    assert_eq!(errs[0], format!("{}:3: field `price` (column 2): expected int, found `12x4`", path.display()));
}

#[test]
fn skip_mode_drops_and_counts() {
    let dir = temp_dir("skip");
    let path = bad_file(&dir);
    let mut cfg = config(&path, FileFormat::Csv, &[("id", "int"), ("price", "int")]);
    cfg.on_error = OnError::Skip;
    let b = plan(cfg).unwrap();
    for p in 1..=4 {
        let mut rows = Vec::new();
        let mut skipped = 0;
        for s in 0..p {
            let mut src = b.instance(&task(s, p));
            let mut out = Batch::new(2);
            while src.poll(&mut out, 2).unwrap() != SourcePoll::Finished {}
            rows.extend(out.rows().map(|r| r.int(0).unwrap()));
            skipped += src.skipped_records();
        }
        rows.sort();
        assert_eq!(rows, vec![1, 3, 6], "p={p}");
        assert_eq!(skipped, 3, "p={p}");
    }
}

#[test]
fn lines_and_jsonl_errors_are_located() {
    let dir = temp_dir("errs");
    let path = dir.join("x.txt");
    std::fs::write(&path, b"ok\n\xff\n").unwrap();
    let b = plan(config(&path, FileFormat::Lines, &[])).unwrap();
    assert_eq!(
        read_subtask(&b, 0, 1, 10).unwrap_err().to_string(),
        format!("{}:2: invalid UTF-8 at byte 1", path.display())
    );
    std::fs::write(&path, "{\"n\":1}\n{\"n\":\"one\"}\n").unwrap();
    let b = plan(config(&path, FileFormat::Jsonl, &[("n", "int")])).unwrap();
    assert_eq!(
        read_subtask(&b, 0, 1, 10).unwrap_err().to_string(),
        format!("{}:2: field `n`: expected int, found `\"one\"`", path.display())
    );
}

#[test]
fn plan_diagnostics() {
    let dir = temp_dir("plan");
    let missing = dir.join("data/bids.csv");
    let d = plan(config(&missing, FileFormat::Csv, &[("id", "int")])).unwrap_err().0;
    assert_eq!(d[0].message, format!("file source `bids`: `{}` does not exist", missing.display()));
    assert_eq!(d[0].span, Some(Span::new(2, 9)));

    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let d = plan(config(&empty, FileFormat::Lines, &[])).unwrap_err().0;
    assert_eq!(d[0].message, format!("file source `bids`: directory `{}` has no files", empty.display()));

    let file = dir.join("f.csv");
    std::fs::write(&file, "1\n").unwrap();
    let d = plan(config(&file, FileFormat::Lines, &[("x", "int")])).unwrap_err().0;
    assert_eq!(d[0].message, "file source `bids`: format lines has a fixed schema");
    let d = plan(config(&file, FileFormat::Jsonl, &[])).unwrap_err().0;
    assert_eq!(d[0].message, "file source `bids`: `schema` is required for format jsonl");

    let mut cfg = config(&file, FileFormat::Jsonl, &[("x", "integr")]);
    cfg.header = Some(spanned(true));
    cfg.delimiter = Some(spanned(";".into()));
    let msgs: Vec<String> = plan(cfg).unwrap_err().0.into_iter().map(|d| d.message).collect();
    assert_eq!(
        msgs,
        [
            "file source `bids`: `header` only applies to format csv",
            "file source `bids`: `delimiter` only applies to format csv",
            "file source `bids`: unknown type `integr` for field `x`; valid types: bool, int, float, string, timestamp_ms",
        ]
    );

    let mut cfg = config(&file, FileFormat::Csv, &[("x", "int")]);
    cfg.delimiter = Some(spanned("ab".into()));
    cfg.quote = Some(spanned(",".into()));
    let msgs: Vec<String> = plan(cfg).unwrap_err().0.into_iter().map(|d| d.message).collect();
    assert_eq!(
        msgs,
        [
            "file source `bids`: `delimiter` must be one ASCII character other than a newline, got `ab`",
            "file source `bids`: `delimiter` and `quote` must differ",
        ]
    );

    let mut cfg = config(&file, FileFormat::Csv, &[("x", "int"), ("y", "string")]);
    cfg.delimiter = Some(spanned("\t".into()));
    std::fs::write(&file, "1\t\"a\tb\"\n").unwrap();
    let b = plan(cfg).unwrap();
    assert_eq!(b.output_schema().to_string(), "{x: int, y: string}");
    assert!(b.bounded());
    assert_eq!(read_all(&b, 1), ["[Int(1), Str(\"a\\tb\")]"]);
}
