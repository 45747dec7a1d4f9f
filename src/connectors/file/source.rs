//! The `file` source: config, planning (validation, file listing) and the per-subtask reader.
//!
//! The input is cut into byte-range splits that do not depend on the parallelism (see
//! [`split`](super::split)); a subtask reads the splits `k % parallelism == subtask`. Its checkpointed
//! position is, per split, the start of the next line to read, taken from the reader only when asked
//! (nothing is tracked per record), so a restore resumes every split exactly after the last row
//! returned, at any parallelism.
use super::csv::CsvDecoder;
use super::jsonl::JsonDecoder;
use super::lines::{line_number, LineReader, Next};
use super::split::{
    list_files, owned, restored_splits, split_size, splits, InputFile, Position, Split, SplitPos, DONE,
};
use crate::connectors::schema_spec::SchemaSpec;
use eddy_api::schema::{DataType, Field, Schema, SchemaRef};
use eddy_api::snapshot;
use eddy_api::source::SourceProgress;
use eddy_api::{
    Batch, Diagnostic, Diagnostics, EddyError, PlanContext, Result, Source, SourceBuilder, SourcePoll, Spanned,
    TaskInfo,
};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Bytes read per poll at most, so one poll never holds the task's thread for long.
const READ_BUDGET: usize = 1 << 20;
/// Skipped records logged individually before going quiet.
const WARN_LIMIT: u64 = 5;
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads records from a file, or from every file of a directory (bounded). The files are cut into
/// byte ranges (about 1/128 of the input each, 1 to 128 MiB; smaller files whole) that the subtasks
/// share round robin. With checkpoints, a restore resumes each range after its last record read, also
/// at another parallelism. Hidden files (`.name`) of a directory are ignored, so the in-progress files
/// of a `file` sink writing into it are never read.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// A file, or a directory whose non-hidden regular files are read in name order.
    pub path: Spanned<String>,
    /// `csv`, `jsonl` (one JSON object per line, fields matched by name) or `lines` (each line is a
    /// record `{ line: string }`).
    pub format: FileFormat,
    /// Field names and types in column order, e.g. `{ auction: int, price: float, url: string }`.
    /// Types: bool, int, float, string, timestamp_ms (epoch milliseconds or RFC 3339 text).
    /// Required for csv and jsonl; not allowed for lines.
    #[serde(default)]
    pub schema: Option<SchemaSpec>,
    /// csv: skip the first line of each file (a header row). Default false.
    #[serde(default)]
    pub header: Option<Spanned<bool>>,
    /// csv: the field delimiter, one character. Default `,`.
    #[serde(default)]
    pub delimiter: Option<Spanned<String>>,
    /// csv: the quote character, one character. Default `"`.
    #[serde(default)]
    pub quote: Option<Spanned<String>>,
    /// A malformed record `fail`s the job (default), or is `skip`ped: dropped, counted and logged.
    #[serde(default)]
    pub on_error: OnError,
}

/// How a file's lines become records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// Comma-separated values (RFC 4180, one record per line).
    Csv,
    /// JSON Lines: one JSON object per line.
    Jsonl,
    /// Plain text: each line is a record `{ line: string }`.
    Lines,
}

/// What to do with a malformed record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Stop the job with an error naming the file, line and field.
    #[default]
    Fail,
    /// Drop the record, count it, and log the first few.
    Skip,
}

#[derive(Clone, Copy, Debug)]
enum Format {
    Csv { delimiter: u8, quote: u8 },
    Jsonl,
    Lines,
}

/// A planned `file` source.
#[derive(Debug)]
pub struct FileSourceBuilder {
    what: Arc<str>,
    files: Arc<[InputFile]>,
    schema: SchemaRef,
    format: Format,
    header: bool,
    on_error: OnError,
    /// Size of the splits the files are cut into.
    split_size: u64,
}

/// One ASCII character from a config string, else a diagnostic.
fn one_char(what: &str, key: &str, v: &Option<Spanned<String>>, default: u8, diags: &mut Diagnostics) -> u8 {
    let Some(v) = v else { return default };
    match v.value.as_bytes() {
        [c] if c.is_ascii() && !matches!(c, b'\n' | b'\r') => *c,
        _ => {
            diags.push(Diagnostic::at(
                v.span,
                format!(
                    "{what}: `{key}` must be one ASCII character other than a newline, got `{}`",
                    v.value.escape_debug()
                ),
            ));
            default
        }
    }
}

impl FileSourceBuilder {
    /// Validates the config and lists the input files (registered as source `file`).
    pub fn plan(cfg: FileSourceConfig, ctx: &PlanContext<'_>) -> Result<FileSourceBuilder, Diagnostics> {
        let what = format!("file source `{}`", ctx.node);
        let mut diags = Diagnostics::new();
        let files = match list_files(Path::new(&cfg.path.value)) {
            Ok(f) if f.is_empty() => {
                diags.push(Diagnostic::at(
                    cfg.path.span,
                    format!("{what}: directory `{}` has no files", cfg.path.value),
                ));
                f
            }
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                diags.push(
                    Diagnostic::at(cfg.path.span, format!("{what}: `{}` does not exist", cfg.path.value))
                        .with_hint("relative paths are resolved from the directory eddy runs in"),
                );
                Vec::new()
            }
            Err(e) => {
                diags.push(Diagnostic::at(cfg.path.span, format!("{what}: cannot read `{}`: {e}", cfg.path.value)));
                Vec::new()
            }
        };
        let csv = cfg.format == FileFormat::Csv;
        for (key, span) in [
            ("header", cfg.header.as_ref().map(|h| h.span)),
            ("delimiter", cfg.delimiter.as_ref().map(|d| d.span)),
            ("quote", cfg.quote.as_ref().map(|q| q.span)),
        ] {
            if let (Some(span), false) = (span, csv) {
                diags.push(Diagnostic::at(span, format!("{what}: `{key}` only applies to format csv")));
            }
        }
        let delimiter = one_char(&what, "delimiter", &cfg.delimiter, b',', &mut diags);
        let quote = one_char(&what, "quote", &cfg.quote, b'"', &mut diags);
        if csv && delimiter == quote {
            let span = cfg.delimiter.as_ref().or(cfg.quote.as_ref()).map_or(ctx.span, |s| s.span);
            diags.push(Diagnostic::at(span, format!("{what}: `delimiter` and `quote` must differ")));
        }
        let format = match cfg.format {
            FileFormat::Csv => Format::Csv { delimiter, quote },
            FileFormat::Jsonl => Format::Jsonl,
            FileFormat::Lines => Format::Lines,
        };
        let schema = match (cfg.format, &cfg.schema) {
            (FileFormat::Lines, None) => Schema::new(vec![Field::new("line", DataType::String)]),
            (FileFormat::Lines, Some(s)) => {
                diags.push(
                    Diagnostic::at(s.span().unwrap_or(ctx.span), format!("{what}: format lines has a fixed schema"))
                        .with_hint("remove `schema`: each record is `{ line: string }`"),
                );
                Schema::default()
            }
            (_, None) => {
                diags.push(
                    Diagnostic::at(
                        ctx.span,
                        format!("{what}: `schema` is required for format {}", format_name(cfg.format)),
                    )
                    .with_hint("e.g. `schema: { id: int, name: string }`, in column order"),
                );
                Schema::default()
            }
            (_, Some(s)) => s.resolve(&what, ctx.span).unwrap_or_else(|d| {
                diags.extend(d.0);
                Schema::default()
            }),
        };
        let split_size = split_size(&files);
        diags.into_result(FileSourceBuilder {
            what: what.into(),
            split_size,
            files: files.into(),
            schema: Arc::new(schema),
            format,
            header: cfg.header.is_some_and(|h| h.value),
            on_error: cfg.on_error,
        })
    }
}

fn format_name(f: FileFormat) -> &'static str {
    match f {
        FileFormat::Csv => "csv",
        FileFormat::Jsonl => "jsonl",
        FileFormat::Lines => "lines",
    }
}

impl SourceBuilder for FileSourceBuilder {
    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn bounded(&self) -> bool {
        true
    }

    fn build(&self, task: &TaskInfo) -> Result<Box<dyn Source>> {
        Ok(Box::new(self.instance(task)))
    }
}

impl FileSourceBuilder {
    /// The same source cut into splits of `bytes` (tests: many splits from small files).
    #[cfg(test)]
    pub(crate) fn with_split_size(mut self, bytes: u64) -> Self {
        self.split_size = bytes;
        self
    }

    /// The concrete instance for a subtask (what [`SourceBuilder::build`] boxes).
    pub fn instance(&self, task: &TaskInfo) -> FileSource {
        let table = splits(&self.files, self.split_size);
        let decoder = match self.format {
            Format::Csv { delimiter, quote } => Decoder::Csv(CsvDecoder::new(&self.schema, delimiter, quote)),
            Format::Jsonl => Decoder::Jsonl(JsonDecoder::new(&self.schema)),
            Format::Lines => Decoder::Lines,
        };
        let mut src = FileSource {
            what: self.what.clone(),
            files: self.files.clone(),
            split_size: self.split_size,
            subtask: task.subtask,
            parallelism: task.parallelism.max(1),
            splits: Vec::new(),
            current: 0,
            reader: None,
            spare: Vec::new(),
            decoder,
            header: self.header,
            on_error: self.on_error,
            skipped: 0,
            done_bytes: 0,
            total_bytes: 0,
        };
        src.assign(table.into_iter().map(|s| (s, None)).collect());
        src
    }
}

enum Decoder {
    Csv(CsvDecoder),
    Jsonl(JsonDecoder),
    Lines,
}

impl Decoder {
    fn decode(&mut self, line: &[u8], out: &mut Batch) -> Result<(), String> {
        match self {
            Decoder::Csv(d) => d.decode(line, out),
            Decoder::Jsonl(d) => d.decode(line, out),
            Decoder::Lines => match std::str::from_utf8(line) {
                Ok(s) => {
                    out.push_str(s);
                    Ok(())
                }
                Err(e) => Err(format!("invalid UTF-8 at byte {}", e.valid_up_to() + 1)),
            },
        }
    }
}

/// A split this subtask owns, and how far it got.
#[derive(Clone, Copy, Debug)]
struct Owned {
    split: Split,
    /// Where reading resumes when the split is opened: `lo`, a line start (restored) or [`DONE`].
    next: u64,
    /// Malformed records of this split skipped so far (kept per split so totals survive rescaling).
    skipped: u64,
}

/// One subtask of a `file` source.
pub struct FileSource {
    what: Arc<str>,
    files: Arc<[InputFile]>,
    /// Size of fresh splits (files new since a checkpoint, ranges nobody recorded).
    split_size: u64,
    subtask: usize,
    parallelism: usize,
    splits: Vec<Owned>,
    /// Index into `splits` of the split being read.
    current: usize,
    reader: Option<LineReader>,
    /// The buffer of the last reader, for the next one.
    spare: Vec<u8>,
    decoder: Decoder,
    header: bool,
    on_error: OnError,
    skipped: u64,
    /// Bytes done in every owned split except the one an open reader is reading.
    done_bytes: u64,
    total_bytes: u64,
}

impl FileSource {
    /// Takes the splits of `table` this subtask owns (`k % parallelism == subtask`), each with what a
    /// checkpoint recorded for it, and resets reading and counters to match.
    fn assign(&mut self, table: Vec<(Split, Option<SplitPos>)>) {
        let n = table.len();
        self.splits = owned(n, self.subtask, self.parallelism)
            .map(|k| {
                let (split, rec) = table[k];
                let (next, skipped) = rec.map_or((split.lo, 0), |r| (r.next.max(split.lo), r.skipped));
                Owned { split, next, skipped }
            })
            .collect();
        self.current = 0;
        if let Some(r) = self.reader.take() {
            self.spare = r.into_buf();
        }
        self.skipped = self.splits.iter().map(|o| o.skipped).sum();
        self.total_bytes = self.splits.iter().map(|o| o.split.len(&self.files)).sum();
        self.done_bytes = self.splits.iter().map(|o| o.split.done(&self.files, o.next)).sum();
    }

    /// Where the split at `idx` resumes now.
    fn resume_offset(&self, idx: usize) -> u64 {
        match &self.reader {
            Some(r) if idx == self.current => r.resume_offset(),
            _ => self.splits[idx].next,
        }
    }

    fn bad_record(&mut self, offset: u64, detail: String) -> Result<()> {
        let path = &self.files[self.splits[self.current].split.file].path;
        let located = || match line_number(path, offset) {
            Ok(line) => format!("{}:{line}: {detail}", path.display()),
            Err(_) => format!("{} (byte {offset}): {detail}", path.display()),
        };
        match self.on_error {
            OnError::Fail => Err(EddyError::user(located())),
            OnError::Skip => {
                self.skipped += 1;
                self.splits[self.current].skipped += 1;
                if self.skipped <= WARN_LIMIT {
                    tracing::warn!(source = %self.what, "skipping malformed record: {}", located());
                    if self.skipped == WARN_LIMIT {
                        tracing::warn!(source = %self.what, "further malformed records are skipped without a log line");
                    }
                }
                Ok(())
            }
        }
    }

    /// Opens the reader of the current split, or moves past it when it is already done; false when
    /// every split is done.
    fn open_current(&mut self) -> Result<bool> {
        while let Some(o) = self.splits.get(self.current) {
            let Owned { split, next, .. } = *o;
            if next == DONE || (split.hi != u64::MAX && next >= split.hi) {
                self.current += 1;
                continue;
            }
            let path = &self.files[split.file].path;
            let reader = LineReader::open_with(path, next, split.hi, std::mem::take(&mut self.spare))
                .map_err(|e| EddyError::io(format!("{}: opening `{}`", self.what, path.display()), e))?;
            // From now on the reader tells how far the split is.
            self.done_bytes -= split.done(&self.files, next);
            self.reader = Some(reader);
            return Ok(true);
        }
        Ok(false)
    }

    /// The current split is read to its end.
    fn finish_current(&mut self) {
        let o = &mut self.splits[self.current];
        o.next = DONE;
        self.done_bytes += o.split.len(&self.files);
        if let Some(r) = self.reader.take() {
            self.spare = r.into_buf();
        }
        self.current += 1;
    }
}

impl Source for FileSource {
    fn poll(&mut self, out: &mut Batch, max_rows: usize) -> Result<SourcePoll> {
        let target = out.len().saturating_add(max_rows.max(1));
        let mut budget = READ_BUDGET;
        while out.len() < target {
            let Some(reader) = &mut self.reader else {
                if !self.open_current()? {
                    return Ok(SourcePoll::Finished);
                }
                continue;
            };
            match reader.next_line() {
                Next::Line { offset, start, end } => {
                    let mut line = &reader.buf()[start..end];
                    if offset == 0 {
                        if self.header {
                            continue;
                        }
                        line = line.strip_prefix(BOM).unwrap_or(line);
                    }
                    if line.is_empty() && !matches!(self.decoder, Decoder::Lines) {
                        continue;
                    }
                    if let Err(detail) = self.decoder.decode(line, out) {
                        out.abandon_row();
                        self.bad_record(offset, detail)?;
                    }
                }
                Next::NeedData => {
                    if budget == 0 {
                        return Ok(SourcePoll::Ready);
                    }
                    let n = reader.fill(budget).map_err(|e| {
                        let path = &self.files[self.splits[self.current].split.file].path;
                        EddyError::io(format!("{}: reading `{}`", self.what, path.display()), e)
                    })?;
                    budget = budget.saturating_sub(n);
                }
                Next::Done => self.finish_current(),
            }
        }
        Ok(SourcePoll::Ready)
    }

    fn progress(&self) -> SourceProgress {
        let partial = match (&self.reader, self.splits.get(self.current)) {
            (Some(r), Some(o)) => o.split.done(&self.files, r.resume_offset()),
            _ => 0,
        };
        SourceProgress { done: self.done_bytes + partial, total: Some(self.total_bytes) }
    }

    fn skipped_records(&self) -> u64 {
        self.skipped
    }

    /// Per owned split: its byte range, the start of the next line to read (or done) and its skipped
    /// records; see [`Position`]. Taken between polls, so it covers exactly the rows returned so far.
    fn snapshot_position(&mut self, _checkpoint: u64) -> Result<Option<Vec<u8>>> {
        let mut pos = Position::new();
        let mut last_file = None;
        for (idx, o) in self.splits.iter().enumerate() {
            let sp = SplitPos { lo: o.split.lo, hi: o.split.hi, next: self.resume_offset(idx), skipped: o.skipped };
            pos.push(|| self.files[o.split.file].key(), o.split.file, sp, &mut last_file);
        }
        Ok(Some(snapshot::encode(&pos)?))
    }

    /// Gathers the splits recorded by every old subtask, rebuilds the split table from them (files no
    /// longer listed are dropped with a warning; new files and unrecorded ranges start from the
    /// beginning) and resumes the splits this subtask owns in it.
    fn restore_position(&mut self, positions: &[Vec<u8>]) -> Result<()> {
        let index: HashMap<String, usize> = self.files.iter().enumerate().map(|(i, f)| (f.key(), i)).collect();
        let mut recorded = vec![Vec::new(); self.files.len()];
        let mut gone = Vec::new();
        for bytes in positions.iter().filter(|b| !b.is_empty()) {
            let pos: Position = snapshot::decode(bytes, &format!("the position of {}", self.what))?;
            pos.check_version().map_err(|e| EddyError::user(format!("{}: {e}", self.what)))?;
            for f in pos.files {
                match index.get(&f.path) {
                    Some(&i) => recorded[i].extend(f.splits),
                    None => gone.push(f.path),
                }
            }
        }
        if self.subtask == 0 && !gone.is_empty() {
            gone.sort();
            gone.dedup();
            tracing::warn!(
                source = %self.what,
                "files of the checkpoint are no longer in the input and are not read again: {}",
                gone.join(", ")
            );
        }
        let table = restored_splits(&self.files, self.split_size, &mut recorded)
            .map_err(|e| EddyError::user(format!("{}: cannot restore: {e}", self.what)))?;
        self.assign(table);
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        self.reader = None;
        Ok(())
    }
}

#[cfg(test)]
#[path = "source_tests.rs"]
mod tests;
