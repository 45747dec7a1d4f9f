//! The `file` source: config, planning (validation, file listing) and the per-subtask reader.
use super::csv::CsvDecoder;
use super::jsonl::JsonDecoder;
use super::lines::{line_number, LineReader, Next};
use super::split::{list_files, pieces_for, InputFile, Piece};
use crate::connectors::schema_spec::SchemaSpec;
use eddy_api::schema::{DataType, Field, Schema, SchemaRef};
use eddy_api::source::SourceProgress;
use eddy_api::{
    Batch, Diagnostic, Diagnostics, EddyError, PlanContext, Result, Source, SourceBuilder, SourcePoll, Spanned,
    TaskInfo,
};
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;

/// Bytes read per poll at most, so one poll never holds the task's thread for long.
const READ_BUDGET: usize = 1 << 20;
/// Skipped records logged individually before going quiet.
const WARN_LIMIT: u64 = 5;
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads records from a file, or from every file of a directory (bounded). With parallelism > 1 the
/// subtasks share the work: whole files when there are enough of them, byte ranges otherwise.
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
        diags.into_result(FileSourceBuilder {
            what: what.into(),
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
    /// The concrete instance for a subtask (what [`SourceBuilder::build`] boxes).
    pub fn instance(&self, task: &TaskInfo) -> FileSource {
        let pieces = pieces_for(&self.files, task.subtask, task.parallelism);
        let total_bytes = pieces.iter().map(|p| p.len(&self.files)).sum();
        let decoder = match self.format {
            Format::Csv { delimiter, quote } => Decoder::Csv(CsvDecoder::new(&self.schema, delimiter, quote)),
            Format::Jsonl => Decoder::Jsonl(JsonDecoder::new(&self.schema)),
            Format::Lines => Decoder::Lines,
        };
        FileSource {
            what: self.what.clone(),
            files: self.files.clone(),
            pieces,
            current: 0,
            reader: None,
            decoder,
            header: self.header,
            on_error: self.on_error,
            skipped: 0,
            done_bytes: 0,
            total_bytes,
        }
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

/// One subtask of a `file` source.
pub struct FileSource {
    what: Arc<str>,
    files: Arc<[InputFile]>,
    pieces: Vec<Piece>,
    /// Index into `pieces` of the piece being read.
    current: usize,
    reader: Option<LineReader>,
    decoder: Decoder,
    header: bool,
    on_error: OnError,
    skipped: u64,
    done_bytes: u64,
    total_bytes: u64,
}

impl FileSource {
    fn bad_record(&mut self, offset: u64, detail: String) -> Result<()> {
        let path = &self.files[self.pieces[self.current].file].path;
        let located = || match line_number(path, offset) {
            Ok(line) => format!("{}:{line}: {detail}", path.display()),
            Err(_) => format!("{} (byte {offset}): {detail}", path.display()),
        };
        match self.on_error {
            OnError::Fail => Err(EddyError::user(located())),
            OnError::Skip => {
                self.skipped += 1;
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
}

impl Source for FileSource {
    fn poll(&mut self, out: &mut Batch, max_rows: usize) -> Result<SourcePoll> {
        let target = out.len().saturating_add(max_rows.max(1));
        let mut budget = READ_BUDGET;
        while out.len() < target {
            let Some(reader) = &mut self.reader else {
                let Some(piece) = self.pieces.get(self.current) else {
                    return Ok(SourcePoll::Finished);
                };
                let path = &self.files[piece.file].path;
                let reader = LineReader::open(path, piece.lo, piece.hi)
                    .map_err(|e| EddyError::io(format!("{}: opening `{}`", self.what, path.display()), e))?;
                self.reader = Some(reader);
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
                        let path = &self.files[self.pieces[self.current].file].path;
                        EddyError::io(format!("{}: reading `{}`", self.what, path.display()), e)
                    })?;
                    budget = budget.saturating_sub(n);
                }
                Next::Done => {
                    self.done_bytes += self.pieces[self.current].len(&self.files);
                    self.reader = None;
                    self.current += 1;
                }
            }
        }
        Ok(SourcePoll::Ready)
    }

    fn progress(&self) -> SourceProgress {
        let partial = match (&self.reader, self.pieces.get(self.current)) {
            (Some(r), Some(p)) => r.consumed().min(p.len(&self.files)),
            _ => 0,
        };
        SourceProgress { done: self.done_bytes + partial, total: Some(self.total_bytes) }
    }

    fn skipped_records(&self) -> u64 {
        self.skipped
    }

    fn close(&mut self) -> Result<()> {
        self.reader = None;
        Ok(())
    }
}

#[cfg(test)]
#[path = "source_tests.rs"]
mod tests;
