//! Tests of the `file` source: planning diagnostics, exactly-once splits, errors and skip mode, and
//! positions that survive a failure and a change of parallelism.
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

/// Split sizes that put cuts everywhere (in the middle of records, on line ends), and the default.
const SPLIT_SIZES: [u64; 5] = [1, 3, 7, 16, 1 << 20];

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
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
            for size in SPLIT_SIZES {
                let b = plan(config(&path, format, schema)).unwrap().with_split_size(size);
                assert_eq!(read_all(&b, 1), expected, "file {i} {format:?} split size {size}: in order");
                for p in 2..=5 {
                    let got = read_all(&b, p);
                    assert_eq!(sorted(got), sorted(expected.clone()), "file {i} {format:?} size={size} p={p}");
                }
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
    for size in SPLIT_SIZES {
        let b = FileSourceBuilder { split_size: size, ..clone_builder(&b) };
        assert_eq!(read_all(&b, 1), expected, "size={size}");
        for p in 2..=5 {
            assert_eq!(sorted(read_all(&b, p)), sorted(expected.clone()), "size={size} p={p}");
        }
    }
}

/// The same planned source (the builder is not `Clone`: instances share its file list).
fn clone_builder(b: &FileSourceBuilder) -> FileSourceBuilder {
    FileSourceBuilder {
        what: b.what.clone(),
        files: b.files.clone(),
        schema: b.schema.clone(),
        format: b.format,
        header: b.header,
        on_error: b.on_error,
        split_size: b.split_size,
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
    for size in SPLIT_SIZES {
        let b = clone_builder(&b).with_split_size(size);
        for p in 1..=5 {
            assert_eq!(sorted(read_all(&b, p)), sorted(expected.clone()), "size={size} p={p}");
        }
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
    let b = b.with_split_size(4);
    let errs: Vec<String> = (0..3).filter_map(|s| read_subtask(&b, s, 3, 1024).err()).map(|e| e.to_string()).collect();
    assert!(errs.contains(&format!("{}:3: field `price` (column 2): expected int, found `12x4`", path.display())));
}

#[test]
fn skip_mode_drops_and_counts() {
    let dir = temp_dir("skip");
    let path = bad_file(&dir);
    let mut cfg = config(&path, FileFormat::Csv, &[("id", "int"), ("price", "int")]);
    cfg.on_error = OnError::Skip;
    let b = plan(cfg).unwrap().with_split_size(5);
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

/// One run of a job at parallelism `p`, restored from `positions` (`None`: a fresh start): each subtask
/// polls `polls` times (`None`: to the end), a checkpoint takes its position, and it polls once more:
/// those rows are lost in the failure that follows. Returns the rows up to the checkpoint, the
/// positions and the skipped count at the checkpoint.
fn run(
    b: &FileSourceBuilder,
    p: usize,
    positions: Option<&[Vec<u8>]>,
    polls: Option<usize>,
    max_rows: usize,
) -> (Vec<String>, Vec<Vec<u8>>, u64) {
    let width = b.output_schema().len();
    let (mut rows, mut taken, mut skipped) = (Vec::new(), Vec::new(), 0);
    for s in 0..p {
        let t = task(s, p);
        let mut src = b.instance(&t);
        src.open(&t).unwrap();
        if let Some(pos) = positions {
            src.restore_position(pos).unwrap();
        }
        let mut out = Batch::new(width);
        let mut n = 0;
        while polls != Some(n) {
            n += 1;
            if src.poll(&mut out, max_rows).unwrap() == SourcePoll::Finished {
                let prog = src.progress();
                assert_eq!(Some(prog.done), prog.total, "progress at the end");
                break;
            }
            assert!(src.progress().done <= src.progress().total.unwrap());
        }
        rows.extend(out.rows().map(|r| format!("{r:?}")));
        taken.push(src.snapshot_position(1).unwrap().unwrap());
        skipped += src.skipped_records();
        src.poll(&mut Batch::new(width), max_rows).unwrap();
    }
    (rows, taken, skipped)
}

/// Runs at the parallelisms of `chain`, each failing after `polls` polls and restored by the next,
/// the last one reading to the end; returns every row before a checkpoint, and the skipped total.
fn read_with_failures(b: &FileSourceBuilder, chain: &[usize], polls: usize, max_rows: usize) -> (Vec<String>, u64) {
    let mut rows = Vec::new();
    let mut positions: Option<Vec<Vec<u8>>> = None;
    let mut skipped = 0;
    for (i, &p) in chain.iter().enumerate() {
        let last = i + 1 == chain.len();
        let (r, pos, sk) = run(b, p, positions.as_deref(), (!last).then_some(polls), max_rows);
        rows.extend(r);
        positions = Some(pos);
        skipped = sk;
    }
    (rows, skipped)
}

const CHAINS: [&[usize]; 6] = [&[2, 3], &[3, 1], &[1, 2], &[2, 3, 1], &[1, 1], &[4, 2, 5]];

fn check_restores(b: &FileSourceBuilder, what: &str) {
    let expected = sorted(read_all(b, 1));
    assert!(expected.windows(2).all(|w| w[0] != w[1]), "{what}: the test data has distinct records");
    for chain in CHAINS {
        for (polls, max_rows) in [(0, 1), (1, 2), (3, 3), (7, 2), (2, 1000)] {
            let (got, _) = read_with_failures(b, chain, polls, max_rows);
            assert_eq!(sorted(got), expected, "{what}: chain {chain:?}, {polls} polls of {max_rows}");
        }
    }
}

/// Records of every length, some lines CRLF, blank lines between some (`blank`: lines makes them
/// records), no newline at the end.
fn record_lines(n: usize, blank: bool, each: impl Fn(usize) -> String) -> String {
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&each(i));
        text.push_str(match i % 7 {
            0 => "\r\n",
            3 if blank => "\n\n",
            _ => "\n",
        });
    }
    text.trim_end().to_string()
}

#[test]
fn positions_resume_every_format_at_any_parallelism() {
    let dir = temp_dir("restore");
    let csv = dir.join("x.csv");
    std::fs::write(&csv, record_lines(60, true, |i| format!("{i},\"{}\"", "a,".repeat(i % 9)))).unwrap();
    let jsonl = dir.join("x.jsonl");
    std::fs::write(&jsonl, record_lines(60, true, |i| format!("{{\"s\":\"{}\",\"id\":{i}}}", "y".repeat(i % 11))))
        .unwrap();
    let lines = dir.join("x.txt");
    std::fs::write(&lines, record_lines(60, false, |i| format!("line {i} {}", "z".repeat(i % 13)))).unwrap();
    let id_s: &[(&str, &str)] = &[("id", "int"), ("s", "string")];
    for size in [5, 23, 1 << 20] {
        for (path, format, schema) in
            [(&csv, FileFormat::Csv, id_s), (&jsonl, FileFormat::Jsonl, id_s), (&lines, FileFormat::Lines, &[])]
        {
            let b = plan(config(path, format, schema)).unwrap().with_split_size(size);
            check_restores(&b, &format!("{format:?} split size {size}"));
        }
    }
}

#[test]
fn positions_resume_a_directory_with_headers() {
    let dir = temp_dir("restore-dir");
    for f in 0..4 {
        let body = record_lines(10 + 7 * f, true, |i| format!("{},{}", f * 1000 + i, "q".repeat(i % 5)));
        std::fs::write(dir.join(format!("part-{f}.csv")), format!("\u{feff}id,s\n{body}")).unwrap();
    }
    std::fs::write(dir.join(".part-9.inprogress"), "999,hidden\n").unwrap();
    let mut cfg = config(&dir, FileFormat::Csv, &[("id", "int"), ("s", "string")]);
    cfg.header = Some(spanned(true));
    for size in [4, 1 << 20] {
        let b = plan(cfg.clone()).unwrap().with_split_size(size);
        assert_eq!(read_all(&b, 1).len(), 10 + 17 + 24 + 31);
        check_restores(&b, &format!("directory, split size {size}"));
    }
}

#[test]
fn restore_keeps_the_recorded_cuts_and_reads_new_files() {
    let dir = temp_dir("restore-grow");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.txt"), record_lines(40, false, |i| format!("a{i}"))).unwrap();
    let b = plan(config(&data, FileFormat::Lines, &[])).unwrap().with_split_size(9);
    let (before, positions, _) = run(&b, 2, None, Some(3), 2);
    // A new file appears, the split size changes, and a file is appended to (its last split reads on).
    std::fs::write(data.join("b.txt"), "b0\nb1\n").unwrap();
    let mut a = std::fs::OpenOptions::new().append(true).open(data.join("a.txt")).unwrap();
    std::io::Write::write_all(&mut a, b"\na40\n").unwrap();
    let b2 = plan(config(&data, FileFormat::Lines, &[])).unwrap().with_split_size(4);
    let (after, _, _) = run(&b2, 3, Some(&positions), None, 5);
    let mut want: Vec<String> = (0..=40).map(|i| format!("[Str(\"a{i}\")]")).collect();
    want.extend(["[Str(\"b0\")]".to_string(), "[Str(\"b1\")]".to_string()]);
    assert_eq!(sorted(before.into_iter().chain(after).collect()), sorted(want));
}

#[test]
fn skipped_counts_survive_restores() {
    let dir = temp_dir("restore-skip");
    let path = bad_file(&dir);
    let mut cfg = config(&path, FileFormat::Csv, &[("id", "int"), ("price", "int")]);
    cfg.on_error = OnError::Skip;
    for size in [3, 8, 1 << 20] {
        let b = plan(cfg.clone()).unwrap().with_split_size(size);
        for chain in CHAINS {
            let (rows, skipped) = read_with_failures(&b, chain, 1, 1);
            assert_eq!(sorted(rows), ["[Int(1), Int(10)]", "[Int(3), Int(30)]", "[Int(6), Int(60)]"]);
            assert_eq!(skipped, 3, "size={size} chain {chain:?}");
        }
    }
}

#[test]
fn positions_from_another_source_are_refused() {
    let dir = temp_dir("restore-bad");
    let path = dir.join("x.txt");
    std::fs::write(&path, "a\nb\n").unwrap();
    let b = plan(config(&path, FileFormat::Lines, &[])).unwrap();
    let mut src = b.instance(&task(0, 1));
    let err = src.restore_position(&[b"\x93junk".to_vec()]).unwrap_err().to_string();
    assert!(err.starts_with("cannot decode the position of file source `bids` from the snapshot"), "{err}");
    // No position at all (a subtask that recorded none): read from the start.
    src.restore_position(&[Vec::new()]).unwrap();
    let mut out = Batch::new(1);
    assert_eq!(src.poll(&mut out, 10).unwrap(), SourcePoll::Finished);
    assert_eq!(out.len(), 2);
}
