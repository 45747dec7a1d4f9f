//! The `file` sink: JSON Lines or CSV into one file, or one part file per subtask.
use crate::connectors::encode::{Encoder, SinkFormat, TimestampFormat};
use crate::connectors::sink_input_schema;
use eddy_api::schema::SchemaRef;
use eddy_api::{Batch, Diagnostic, Diagnostics, EddyError, PlanContext, Result, Sink, SinkBuilder, Spanned, TaskInfo};
use serde::Deserialize;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Encoded bytes gathered before one write call.
const WRITE_AT: usize = 1 << 20;

/// Writes records to a file. With parallelism 1 it writes exactly `path`; with more, `path` is a
/// directory holding `part-<subtask>.<ext>` per subtask. Existing files are replaced.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// The output file (parallelism 1) or directory (parallelism > 1); parent directories are created.
    pub path: Spanned<String>,
    /// `jsonl` (default: one JSON object per line, keys in schema order) or `csv`.
    #[serde(default)]
    pub format: SinkFormat,
    /// `epoch_ms` (default: integer milliseconds) or `rfc3339` (`2023-11-14T22:13:20.000Z`).
    #[serde(default)]
    pub timestamps: TimestampFormat,
    /// csv: start each file with a line of field names. Default false.
    #[serde(default)]
    pub header: Option<Spanned<bool>>,
}

/// A planned `file` sink.
#[derive(Debug)]
pub struct FileSinkBuilder {
    what: Arc<str>,
    path: PathBuf,
    schema: SchemaRef,
    format: SinkFormat,
    timestamps: TimestampFormat,
    header: bool,
}

impl FileSinkBuilder {
    /// Validates the config against the input schema (registered as sink `file`).
    pub fn plan(cfg: FileSinkConfig, ctx: &PlanContext<'_>) -> Result<FileSinkBuilder, Diagnostics> {
        let what = format!("file sink `{}`", ctx.node);
        let mut diags = Diagnostics::new();
        let schema = sink_input_schema(&what, ctx).map_err(|d| diags.extend(d.0)).ok();
        let path = PathBuf::from(&cfg.path.value);
        if cfg.path.value.is_empty() {
            diags.push(Diagnostic::at(cfg.path.span, format!("{what}: `path` is empty")));
        } else if ctx.parallelism <= 1 && path.is_dir() {
            diags.push(
                Diagnostic::at(cfg.path.span, format!("{what}: `{}` is a directory", cfg.path.value))
                    .with_hint("with parallelism 1 the sink writes one file: name the file"),
            );
        } else if ctx.parallelism > 1 && path.is_file() {
            diags.push(
                Diagnostic::at(cfg.path.span, format!("{what}: `{}` is a file", cfg.path.value))
                    .with_hint("with parallelism > 1 `path` is a directory of part files"),
            );
        }
        if let (Some(h), SinkFormat::Jsonl) = (&cfg.header, cfg.format) {
            diags.push(Diagnostic::at(h.span, format!("{what}: `header` only applies to format csv")));
        }
        match (schema, diags.is_empty()) {
            (Some(schema), true) => Ok(FileSinkBuilder {
                what: what.into(),
                path,
                schema,
                format: cfg.format,
                timestamps: cfg.timestamps,
                header: cfg.header.is_some_and(|h| h.value),
            }),
            _ => Err(diags),
        }
    }

    /// Where subtask `task` writes.
    pub fn target(&self, task: &TaskInfo) -> PathBuf {
        if task.parallelism > 1 {
            self.path.join(format!("part-{}.{}", task.subtask, self.format.extension()))
        } else {
            self.path.clone()
        }
    }

    /// The concrete instance for a subtask (what [`SinkBuilder::build`] boxes).
    pub fn instance(&self, task: &TaskInfo) -> FileSink {
        FileSink {
            what: self.what.clone(),
            target: self.target(task),
            encoder: Encoder::new(&self.schema, self.format, self.timestamps),
            header: self.header && self.format == SinkFormat::Csv,
            file: None,
            buf: Vec::with_capacity(WRITE_AT + (64 << 10)),
        }
    }
}

impl SinkBuilder for FileSinkBuilder {
    fn build(&self, task: &TaskInfo) -> Result<Box<dyn Sink>> {
        Ok(Box::new(self.instance(task)))
    }
}

/// One subtask of a `file` sink.
pub struct FileSink {
    what: Arc<str>,
    target: PathBuf,
    encoder: Encoder,
    header: bool,
    file: Option<File>,
    /// Encoded, not yet written bytes (our own buffer: records are encoded straight into it).
    buf: Vec<u8>,
}

impl FileSink {
    fn io(&self, doing: &str, e: std::io::Error) -> EddyError {
        EddyError::io(format!("{}: {doing} `{}`", self.what, self.target.display()), e)
    }

    fn ensure_open(&mut self) -> Result<()> {
        if self.file.is_some() {
            return Ok(());
        }
        if let Some(dir) = self.target.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| self.io("creating the directory of", e))?;
        }
        let file = File::create(&self.target).map_err(|e| self.io("creating", e))?;
        self.file = Some(file);
        if self.header {
            self.encoder.header(&mut self.buf);
        }
        Ok(())
    }

    fn write_out(&mut self) -> Result<()> {
        if let Some(file) = &mut self.file {
            if let Err(e) = file.write_all(&self.buf) {
                return Err(self.io("writing", e));
            }
        }
        self.buf.clear();
        Ok(())
    }

    /// The file this subtask writes.
    pub fn path(&self) -> &Path {
        &self.target
    }
}

impl Sink for FileSink {
    fn open(&mut self, _task: &TaskInfo) -> Result<()> {
        self.ensure_open()
    }

    fn write_batch(&mut self, batch: &Batch) -> Result<()> {
        self.ensure_open()?;
        self.encoder.batch(batch, &mut self.buf);
        if self.buf.len() >= WRITE_AT {
            self.write_out()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.ensure_open()?;
        self.write_out()?;
        if let Some(file) = &self.file {
            file.sync_all().map_err(|e| self.io("syncing", e))?;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        // After a failure, keep what was produced: it helps to see how far the job got.
        let res = self.write_out();
        self.file = None;
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::test_util::{ctx, task, temp_dir};
    use eddy_api::registry::InputInfo;
    use eddy_api::schema::{DataType, Field, Schema};
    use eddy_api::value::Datum;
    use eddy_api::Span;

    fn input(name: &str, fields: &[(&str, DataType)]) -> InputInfo {
        InputInfo {
            name: name.into(),
            schema: Arc::new(Schema::new(fields.iter().map(|(n, t)| Field::new(*n, *t)).collect())),
            key: None,
        }
    }

    fn cfg(path: &Path, format: SinkFormat) -> FileSinkConfig {
        FileSinkConfig {
            path: Spanned::new(Span::new(4, 11), path.display().to_string()),
            format,
            timestamps: TimestampFormat::EpochMs,
            header: None,
        }
    }

    fn batch(from: i64, n: i64) -> Batch {
        let mut b = Batch::new(2);
        for i in from..from + n {
            b.push_int(i);
            b.push(Datum::Str(if i % 2 == 0 { "a,b" } else { "c" }));
        }
        b
    }

    #[test]
    fn single_file_with_parent_dirs_and_header() {
        let dir = temp_dir("sink1");
        let path = dir.join("deep/er/out.csv");
        let inputs = [input("a", &[("id", DataType::Int), ("s", DataType::String)])];
        let mut c = cfg(&path, SinkFormat::Csv);
        c.header = Some(Spanned::new(Span::new(5, 1), true));
        let b = FileSinkBuilder::plan(c, &ctx("out", 1, &inputs)).unwrap();
        let mut sink = b.build(&task(0, 1)).unwrap();
        sink.open(&task(0, 1)).unwrap();
        sink.write_batch(&batch(0, 3)).unwrap();
        sink.write_batch(&batch(3, 1)).unwrap();
        sink.finish().unwrap();
        sink.close().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "id,s\n0,\"a,b\"\n1,c\n2,\"a,b\"\n3,c\n");
    }

    #[test]
    fn part_files_per_subtask() {
        let dir = temp_dir("sinkp");
        let path = dir.join("out");
        let inputs = [input("a", &[("id", DataType::Int), ("s", DataType::String)])];
        let b = FileSinkBuilder::plan(cfg(&path, SinkFormat::Jsonl), &ctx("out", 2, &inputs)).unwrap();
        for s in 0..2 {
            let mut sink = b.instance(&task(s, 2));
            sink.open(&task(s, 2)).unwrap();
            sink.write_batch(&batch(s as i64 * 10, 2)).unwrap();
            sink.finish().unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(path.join("part-0.jsonl")).unwrap(),
            "{\"id\":0,\"s\":\"a,b\"}\n{\"id\":1,\"s\":\"c\"}\n"
        );
        assert_eq!(
            std::fs::read_to_string(path.join("part-1.jsonl")).unwrap(),
            "{\"id\":10,\"s\":\"a,b\"}\n{\"id\":11,\"s\":\"c\"}\n"
        );
    }

    #[test]
    fn large_output_is_complete() {
        let dir = temp_dir("sinkbig");
        let path = dir.join("big.jsonl");
        let inputs = [input("a", &[("id", DataType::Int), ("s", DataType::String)])];
        let b = FileSinkBuilder::plan(cfg(&path, SinkFormat::Jsonl), &ctx("out", 1, &inputs)).unwrap();
        let mut sink = b.instance(&task(0, 1));
        for i in 0..200 {
            sink.write_batch(&batch(i * 1000, 1000)).unwrap();
        }
        sink.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 200_000);
        assert_eq!(text.lines().last(), Some("{\"id\":199999,\"s\":\"c\"}"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn plan_diagnostics() {
        let dir = temp_dir("sinkplan");
        let a = input("a", &[("id", DataType::Int)]);
        let b = input("b", &[("id", DataType::String)]);
        let inputs = [a.clone(), a.clone(), b];
        let d = FileSinkBuilder::plan(cfg(&dir.join("x"), SinkFormat::Jsonl), &ctx("out", 1, &inputs)).unwrap_err().0;
        assert_eq!(d[0].message, "file sink `out`: inputs `a` {id: int} and `b` {id: string} have different schemas");
        let same = [a.clone(), a.clone()];
        assert!(FileSinkBuilder::plan(cfg(&dir.join("x"), SinkFormat::Jsonl), &ctx("out", 1, &same)).is_ok());
        let d = FileSinkBuilder::plan(cfg(&dir, SinkFormat::Jsonl), &ctx("out", 1, &same)).unwrap_err().0;
        assert_eq!(d[0].message, format!("file sink `out`: `{}` is a directory", dir.display()));
        assert_eq!(d[0].span, Some(Span::new(4, 11)));
        let mut c = cfg(&dir.join("y"), SinkFormat::Jsonl);
        c.header = Some(Spanned::new(Span::new(5, 1), true));
        let d = FileSinkBuilder::plan(c, &ctx("out", 1, &[])).unwrap_err().0;
        let msgs: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(msgs, ["file sink `out` has no inputs", "file sink `out`: `header` only applies to format csv"]);
    }
}
