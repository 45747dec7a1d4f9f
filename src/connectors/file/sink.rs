//! The `file` sink: JSON Lines or CSV into one file, or one part file per subtask; with checkpoints,
//! exactly-once part files published per completed checkpoint (two-phase commit, as Flink's FileSink).
//!
//! With checkpoints `path` is a directory. A subtask writes into a hidden in-progress file
//! `.part-<subtask>-<history>-<run>-<seq>.inprogress`. `<run>` is a fresh random id per subtask
//! instance, so names never collide across runs and restores; `<history>` is a random id of the job's
//! line of runs (made by a fresh start, inherited by restores), so files of other jobs, other sinks
//! or earlier fresh starts in the same directory are never touched. At a checkpoint's barrier
//! (`pre_commit`) the file is flushed, fsynced and closed and becomes *pending*; when the checkpoint
//! completes (`commit`) pending files are renamed (atomically) to `part-<subtask>-<history>-<run>-<seq>.<ext>`.
//!
//! The checkpointed state lists the pending files and the *lineage*: for every run instance of the
//! history that led to the checkpoint, the sequence number below which its files belong to it. A
//! restore publishes what the checkpoint had pending (it completed, even if the commit did not happen)
//! and deletes every file of the history outside the lineage: what the failed run wrote after the
//! checkpoint, and what runs restored from it (or from a newer one) wrote, committed or not, since
//! their records are replayed. Only `part-*` files are output: readers must skip hidden files, as the
//! `file` source does.
use crate::connectors::encode::{Encoder, SinkFormat, TimestampFormat};
use crate::connectors::sink_input_schema;
use eddy_api::schema::SchemaRef;
use eddy_api::snapshot;
use eddy_api::{
    Batch, Diagnostic, Diagnostics, EddyError, OutputFiles, PlanContext, Result, Sink, SinkBuilder, Spanned, TaskInfo,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Encoded bytes gathered before one write call.
const WRITE_AT: usize = 1 << 20;
/// The name prefix of published files (in-progress ones start with a dot before it).
const PREFIX: &str = "part";
const IN_PROGRESS: &str = ".inprogress";
/// Written into every state, so a future format can tell old ones apart.
const STATE_VERSION: u32 = 1;
/// Hex digits of the history and run ids in file names.
const ID_LEN: usize = 16;

/// Writes records to a file. Without checkpoints: with parallelism 1 it writes exactly `path`; with
/// more, `path` is a directory holding `part-<subtask>.<ext>` per subtask; existing files are replaced.
/// When the job takes checkpoints the output is exactly-once: `path` is always a directory, records go
/// to hidden in-progress files (`.part-*.inprogress`) that become visible
/// `part-<subtask>-<history>-<run>-<n>.<ext>` files when a checkpoint completes (and at the end of the
/// input); a restore deletes the files of the same job written after the restored checkpoint. Only
/// `part-*` files are output; readers of the directory must ignore hidden files (a `file` source
/// reading it does).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// The output file (parallelism 1) or directory (parallelism > 1, or any parallelism with
    /// checkpoints); parent directories are created.
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
    /// Exactly-once part files published per checkpoint.
    checkpointing: bool,
    /// The history id of a fresh start (one per planned job, shared by its subtasks).
    history: String,
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
        } else if ctx.checkpointing && path.is_file() {
            diags.push(Diagnostic::at(cfg.path.span, format!("{what}: `{}` is a file", cfg.path.value)).with_hint(
                "the job takes checkpoints, so the sink publishes part files into a directory: name a directory",
            ));
        } else if !ctx.checkpointing && ctx.parallelism <= 1 && path.is_dir() {
            diags.push(
                Diagnostic::at(cfg.path.span, format!("{what}: `{}` is a directory", cfg.path.value))
                    .with_hint("with parallelism 1 the sink writes one file: name the file"),
            );
        } else if !ctx.checkpointing && ctx.parallelism > 1 && path.is_file() {
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
                checkpointing: ctx.checkpointing,
                history: random_id(),
            }),
            _ => Err(diags),
        }
    }

    /// Where subtask `task` writes: its file, or with checkpoints the directory of its part files.
    pub fn target(&self, task: &TaskInfo) -> PathBuf {
        if task.parallelism > 1 && !self.checkpointing {
            self.path.join(format!("{PREFIX}-{}.{}", task.subtask, self.format.extension()))
        } else {
            self.path.clone()
        }
    }

    /// The concrete instance for a subtask (what [`SinkBuilder::build`] boxes).
    pub fn instance(&self, task: &TaskInfo) -> FileSink {
        let tx = self.checkpointing.then(|| Transaction {
            subtask: task.subtask,
            ext: self.format.extension(),
            history: self.history.clone(),
            // Per instance, never per builder: an instance built again after a failure gets a new one.
            run: random_id(),
            seq: 0,
            pending: Vec::new(),
            lineage: Vec::new(),
        });
        FileSink {
            what: self.what.clone(),
            subtask: task.subtask,
            parallelism: task.parallelism.max(1),
            target: self.target(task),
            encoder: Encoder::new(&self.schema, self.format, self.timestamps),
            header: self.header && self.format == SinkFormat::Csv,
            file: None,
            buf: Vec::with_capacity(WRITE_AT + (64 << 10)),
            tx,
        }
    }
}

impl SinkBuilder for FileSinkBuilder {
    fn build(&self, task: &TaskInfo) -> Result<Box<dyn Sink>> {
        Ok(Box::new(self.instance(task)))
    }

    /// `path`: the file, or the directory of `part-*` files; a CSV header starts every file.
    fn output_files(&self) -> Option<OutputFiles> {
        let header = self.header && self.format == SinkFormat::Csv;
        Some(OutputFiles::new("path").with_header_lines(usize::from(header)))
    }
}

/// A random id for file names (64 bits of a v4 UUID, in hex).
fn random_id() -> String {
    let (hi, lo) = uuid::Uuid::new_v4().as_u64_pair();
    format!("{:0ID_LEN$x}", hi ^ lo)
}

/// A file pre-committed at a checkpoint and not yet published (names relative to the directory).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Pending {
    checkpoint: u64,
    in_progress: String,
    part: String,
}

/// What `pre_commit` returns: everything a restore needs to publish the pending files of one subtask
/// and to tell the files of the checkpoint's history from those written after it.
#[derive(Debug, Serialize, Deserialize)]
struct SinkState {
    version: u32,
    /// The directory of the files, as configured then.
    dir: String,
    history: String,
    subtask: usize,
    run: String,
    /// Files of this run with a smaller sequence number are part of the checkpoint.
    bound: u64,
    pending: Vec<Pending>,
    /// The same for the run instances of the history before this run: `(run, bound)`.
    lineage: Vec<(String, u64)>,
}

/// The two-phase-commit bookkeeping of a subtask when the job takes checkpoints.
#[derive(Debug)]
struct Transaction {
    subtask: usize,
    ext: &'static str,
    history: String,
    /// This instance's run id: part of every file name.
    run: String,
    /// Sequence number of the file being written (or the next one).
    seq: u64,
    pending: Vec<Pending>,
    /// Inherited from the checkpoint restored (see [`SinkState::lineage`]).
    lineage: Vec<(String, u64)>,
}

impl Transaction {
    fn stem(&self, seq: u64) -> String {
        format!("{PREFIX}-{}-{}-{}-{seq}", self.subtask, self.history, self.run)
    }

    fn in_progress(&self, seq: u64) -> String {
        format!(".{}{IN_PROGRESS}", self.stem(seq))
    }

    fn part(&self, seq: u64) -> String {
        format!("{}.{}", self.stem(seq), self.ext)
    }
}

/// A file name written with checkpoints, taken apart: `(subtask, history, run, seq)`.
fn parse_name(name: &str) -> Option<(usize, &str, &str, u64)> {
    let stem = match name.strip_prefix('.') {
        Some(hidden) => hidden.strip_suffix(IN_PROGRESS)?,
        None => name.rsplit_once('.')?.0,
    };
    let mut parts = stem.strip_prefix(PREFIX)?.strip_prefix('-')?.split('-');
    let subtask = parts.next()?.parse().ok()?;
    let (history, run) = (parts.next()?, parts.next()?);
    let seq = parts.next()?.parse().ok()?;
    let is_id = |s: &str| s.len() == ID_LEN && s.bytes().all(|b| b.is_ascii_hexdigit());
    (parts.next().is_none() && is_id(history) && is_id(run)).then_some((subtask, history, run, seq))
}

/// One subtask of a `file` sink.
pub struct FileSink {
    what: Arc<str>,
    subtask: usize,
    parallelism: usize,
    /// The file written, or with checkpoints the directory of the part files.
    target: PathBuf,
    encoder: Encoder,
    header: bool,
    /// The open file; with checkpoints the in-progress file, opened by the first records after a
    /// checkpoint, so it always holds some.
    file: Option<File>,
    /// Encoded, not yet written bytes (our own buffer: records are encoded straight into it).
    buf: Vec<u8>,
    /// Set when the job takes checkpoints.
    tx: Option<Transaction>,
}

impl FileSink {
    fn io_at(&self, doing: &str, path: &Path, e: io::Error) -> EddyError {
        EddyError::io(format!("{}: {doing} `{}`", self.what, path.display()), e)
    }

    fn io(&self, doing: &str, e: io::Error) -> EddyError {
        self.io_at(doing, &self.target, e)
    }

    /// The path of the file being written.
    fn file_path(&self) -> PathBuf {
        match &self.tx {
            Some(tx) => self.target.join(tx.in_progress(tx.seq)),
            None => self.target.clone(),
        }
    }

    fn ensure_open(&mut self) -> Result<()> {
        if self.file.is_some() {
            return Ok(());
        }
        let dir = if self.tx.is_some() { Some(self.target.as_path()) } else { self.target.parent() };
        if let Some(dir) = dir.filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| self.io_at("creating the directory", dir, e))?;
        }
        let path = self.file_path();
        let file = if self.tx.is_some() {
            // A fresh name per run: an existing file would be a bug, never overwrite it.
            OpenOptions::new().write(true).create_new(true).open(&path)
        } else {
            File::create(&path)
        };
        self.file = Some(file.map_err(|e| self.io_at("creating", &path, e))?);
        if self.header {
            self.encoder.header(&mut self.buf);
        }
        Ok(())
    }

    fn write_out(&mut self) -> Result<()> {
        if let Some(file) = &mut self.file {
            if let Err(e) = file.write_all(&self.buf) {
                let path = self.file_path();
                return Err(self.io_at("writing", &path, e));
            }
        }
        self.buf.clear();
        Ok(())
    }

    /// The file this subtask writes (with checkpoints: the directory of its part files).
    pub fn path(&self) -> &Path {
        &self.target
    }

    /// Publishes a pending file of `dir` by renaming it to its final name; fine if that happened before.
    /// Returns whether it renamed.
    fn publish(&self, dir: &Path, p: &Pending) -> Result<bool> {
        let (from, to) = (dir.join(&p.in_progress), dir.join(&p.part));
        match std::fs::rename(&from, &to) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if std::fs::symlink_metadata(&to).is_ok() {
                    return Ok(false);
                }
                Err(EddyError::user(format!(
                    "{}: cannot publish `{}` of checkpoint {}: neither it nor its in-progress file `{}` exists, \
                     so its records would be lost",
                    self.what,
                    to.display(),
                    p.checkpoint,
                    from.display()
                )))
            }
            Err(e) => Err(self.io_at("publishing", &from, e)),
        }
    }

    /// Deletes the files of `history` in `dir` that subtask `self.subtask` is responsible for (written
    /// by a subtask `j % parallelism == self.subtask`) and that are not part of `lineage`. Files of
    /// this run are safe: only this subtask looks at its index, and it has not written yet.
    fn delete_after(&self, dir: &Path, history: &str, lineage: &HashMap<String, u64>) -> Result<()> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.io_at("listing", dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| self.io_at("listing", dir, e))?;
            let name = entry.file_name();
            let Some((j, h, run, seq)) = name.to_str().and_then(parse_name) else { continue };
            if h != history || j % self.parallelism != self.subtask || lineage.get(run).is_some_and(|&b| seq < b) {
                continue;
            }
            let path = entry.path();
            tracing::info!(sink = %self.what, "deleting `{}`: written after the checkpoint restored", path.display());
            remove_if_exists(&path).map_err(|e| self.io_at("deleting", &path, e))?;
        }
        // Durable renames and deletions before new output follows.
        sync_dir(dir).map_err(|e| self.io_at("syncing the directory", dir, e))
    }
}

/// Deletes a file; one already gone is fine (a repeated restore, a concurrent cleanup).
fn remove_if_exists(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Makes renames and new names in `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

impl Sink for FileSink {
    fn open(&mut self, _task: &TaskInfo) -> Result<()> {
        if self.tx.is_some() {
            // In-progress files are opened by the first records; fail early if the directory cannot be made.
            return std::fs::create_dir_all(&self.target).map_err(|e| self.io("creating the directory", e));
        }
        self.ensure_open()
    }

    fn write_batch(&mut self, batch: &Batch) -> Result<()> {
        if self.tx.is_some() && batch.is_empty() {
            return Ok(());
        }
        self.ensure_open()?;
        self.encoder.batch(batch, &mut self.buf);
        if self.buf.len() >= WRITE_AT {
            self.write_out()?;
        }
        Ok(())
    }

    /// Without checkpoints: flush and sync the file. With checkpoints the runtime publishes the end of
    /// the input through a final `pre_commit` and `commit` instead, so this does nothing.
    fn finish(&mut self) -> Result<()> {
        if self.tx.is_some() {
            return Ok(());
        }
        self.ensure_open()?;
        self.write_out()?;
        if let Some(file) = &self.file {
            file.sync_all().map_err(|e| self.io("syncing", e))?;
        }
        Ok(())
    }

    /// Closes the in-progress file (if it holds records), durably, as pending for `checkpoint`, and
    /// returns the pending files not yet committed.
    fn pre_commit(&mut self, checkpoint: u64) -> Result<Option<Vec<u8>>> {
        if self.tx.is_none() {
            return Ok(None);
        }
        if self.file.is_some() {
            self.write_out()?;
            let path = self.file_path();
            if let Some(file) = self.file.take() {
                file.sync_all().map_err(|e| self.io_at("syncing", &path, e))?;
            }
            sync_dir(&self.target).map_err(|e| self.io("syncing the directory", e))?;
            if let Some(tx) = &mut self.tx {
                let (in_progress, part) = (tx.in_progress(tx.seq), tx.part(tx.seq));
                tx.pending.push(Pending { checkpoint, in_progress, part });
                tx.seq += 1;
            }
        }
        let Some(tx) = &self.tx else { return Ok(None) };
        let state = SinkState {
            version: STATE_VERSION,
            dir: self.target.to_string_lossy().into_owned(),
            history: tx.history.clone(),
            subtask: tx.subtask,
            run: tx.run.clone(),
            bound: tx.seq,
            pending: tx.pending.clone(),
            lineage: tx.lineage.clone(),
        };
        Ok(Some(snapshot::encode(&state)?))
    }

    /// Renames the files pending for checkpoints up to `checkpoint` to their final names.
    fn commit(&mut self, checkpoint: u64) -> Result<()> {
        let Some(tx) = &self.tx else { return Ok(()) };
        let mut renamed = false;
        for p in tx.pending.iter().filter(|p| p.checkpoint <= checkpoint) {
            renamed |= self.publish(&self.target, p)?;
        }
        if renamed {
            sync_dir(&self.target).map_err(|e| self.io("syncing the directory", e))?;
        }
        if let Some(tx) = &mut self.tx {
            tx.pending.retain(|p| p.checkpoint > checkpoint);
        }
        Ok(())
    }

    /// Publishes the files the old subtasks `j % parallelism == subtask` had pending, deletes the
    /// files of the history those subtasks' indexes wrote outside the checkpoint's lineage, and carries
    /// the history and lineage on.
    fn restore(&mut self, states: &[Vec<u8>]) -> Result<()> {
        let mut decoded = Vec::new();
        for (j, bytes) in states.iter().enumerate().filter(|(_, b)| !b.is_empty()) {
            let st: SinkState = snapshot::decode(bytes, &format!("the state of {}", self.what))?;
            if st.version != STATE_VERSION {
                return Err(EddyError::user(format!(
                    "{}: sink state format {} is not supported (this build writes {STATE_VERSION})",
                    self.what, st.version
                )));
            }
            decoded.push((j, st));
        }
        let Some(history) = decoded.first().map(|(_, st)| st.history.clone()) else { return Ok(()) };
        if let Some((_, other)) = decoded.iter().find(|(_, st)| st.history != history) {
            return Err(EddyError::user(format!(
                "{}: cannot restore: the checkpoint mixes the output of two jobs (histories {history} and {})",
                self.what, other.history
            )));
        }
        // Every subtask reads every state: the lineage is needed to judge files of any index.
        let mut lineage: HashMap<String, u64> = HashMap::new();
        for (_, st) in &decoded {
            for (run, bound) in st.lineage.iter().chain(std::iter::once(&(st.run.clone(), st.bound))) {
                let b = lineage.entry(run.clone()).or_insert(*bound);
                *b = (*b).max(*bound);
            }
        }
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (j, st) in &decoded {
            let dir = PathBuf::from(&st.dir);
            if j % self.parallelism == self.subtask {
                for p in &st.pending {
                    self.publish(&dir, p)?;
                }
            }
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        if self.tx.is_some() && !dirs.contains(&self.target) {
            dirs.push(self.target.clone());
        }
        for dir in &dirs {
            self.delete_after(dir, &history, &lineage)?;
        }
        if let Some(tx) = &mut self.tx {
            tx.history = history;
            let mut lineage: Vec<(String, u64)> = lineage.into_iter().collect();
            lineage.sort();
            tx.lineage = lineage;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        if self.tx.is_some() {
            // The in-progress file holds records after the last checkpoint only: never published by
            // this run (a restore replays them), so it goes.
            self.buf.clear();
            if self.file.take().is_some() {
                let path = self.file_path();
                remove_if_exists(&path).map_err(|e| self.io_at("deleting the uncommitted", &path, e))?;
            }
            return Ok(());
        }
        // After a failure, keep what was produced: it helps to see how far the job got.
        let res = self.write_out();
        self.file = None;
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::test_util::{checkpointed_ctx, ctx, task, temp_dir};
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
        assert_eq!(b.output_files(), Some(OutputFiles { path_key: "path".into(), header_lines: 1 }));
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
        assert_eq!(b.output_files(), Some(OutputFiles::new("path")), "JSON Lines have no header");
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

    /// Names in `dir` that readers see (`part-*`) and the hidden ones, sorted.
    fn listing(dir: &Path) -> (Vec<String>, Vec<String>) {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names.into_iter().partition(|n| !n.starts_with('.'))
    }

    fn read(dir: &Path, name: &str) -> String {
        std::fs::read_to_string(dir.join(name)).unwrap()
    }

    fn exactly_once(dir: &Path, parallelism: usize, format: SinkFormat, header: bool) -> FileSinkBuilder {
        let inputs = [input("a", &[("id", DataType::Int), ("s", DataType::String)])];
        let mut c = cfg(dir, format);
        c.header = header.then(|| Spanned::new(Span::new(5, 1), true));
        FileSinkBuilder::plan(c, &checkpointed_ctx("out", parallelism, &inputs)).unwrap()
    }

    fn opened(b: &FileSinkBuilder, s: usize, p: usize) -> FileSink {
        let mut sink = b.instance(&task(s, p));
        sink.open(&task(s, p)).unwrap();
        sink
    }

    #[test]
    fn two_phase_commit_publishes_per_checkpoint_and_restores_after_a_crash() {
        let dir = temp_dir("sink2pc").join("out");
        let b = exactly_once(&dir, 1, SinkFormat::Csv, true);
        let mut sink = opened(&b, 0, 1);
        sink.write_batch(&batch(0, 3)).unwrap();
        sink.pre_commit(1).unwrap();
        sink.write_batch(&batch(3, 2)).unwrap();
        let state2 = sink.pre_commit(2).unwrap().unwrap();
        // Nothing is visible before a commit; the pending files are hidden.
        let (visible, hidden) = listing(&dir);
        assert!(visible.is_empty(), "{visible:?}");
        assert_eq!(hidden.len(), 2);
        assert!(hidden.iter().all(|n| n.starts_with(".part-0-") && n.ends_with(".inprogress")), "{hidden:?}");
        sink.commit(1).unwrap();
        let (visible, _) = listing(&dir);
        assert_eq!(visible.len(), 1);
        let first = visible[0].clone();
        assert!(first.starts_with("part-0-") && first.ends_with("-0.csv"), "{first}");
        assert_eq!(read(&dir, &first), "id,s\n0,\"a,b\"\n1,c\n2,\"a,b\"\n");
        // Records after checkpoint 2, then a crash before checkpoint 2's commit (no close either).
        sink.write_batch(&batch(5, 1)).unwrap();
        sink.write_out().unwrap();
        drop(sink);
        assert_eq!(listing(&dir).1.len(), 2, "checkpoint 2's pending file and the uncommitted one");

        let mut restored = opened(&b, 0, 1);
        restored.restore(std::slice::from_ref(&state2)).unwrap();
        let (visible, hidden) = listing(&dir);
        assert!(hidden.is_empty(), "the crashed run's uncommitted file is deleted: {hidden:?}");
        assert_eq!(visible.len(), 2);
        assert!(visible.contains(&first));
        let second = visible.iter().find(|n| **n != first).unwrap().clone();
        let (pa, pb) = (parse_name(&first).unwrap(), parse_name(&second).unwrap());
        assert_eq!(pb, (0, pa.1, pa.2, 1), "same run, next file: {second}");
        assert_eq!(read(&dir, &second), "id,s\n3,c\n4,\"a,b\"\n");

        // Restoring again from the same state (a failure during the restore) changes nothing.
        opened(&b, 0, 1).restore(std::slice::from_ref(&state2)).unwrap();
        assert_eq!(listing(&dir), (visible.clone(), vec![]));

        // The restored run goes on with files of its own.
        restored.write_batch(&batch(5, 1)).unwrap();
        restored.pre_commit(3).unwrap();
        restored.commit(3).unwrap();
        restored.close().unwrap();
        let (now, hidden) = listing(&dir);
        assert!(hidden.is_empty());
        assert_eq!(now.len(), 3);
        let third = now.iter().find(|n| !visible.contains(n)).unwrap();
        let c = parse_name(third).unwrap();
        assert!(c.1 == pa.1 && c.2 != pa.2 && c.3 == 0, "the same history, a new run: {third}");
        assert_eq!(read(&dir, third), "id,s\n5,c\n");
    }

    #[test]
    fn empty_checkpoints_publish_nothing_and_commit_is_idempotent() {
        let dir = temp_dir("sink2pc-empty").join("out");
        let b = exactly_once(&dir, 1, SinkFormat::Jsonl, false);
        let mut sink = opened(&b, 0, 1);
        sink.write_batch(&Batch::new(2)).unwrap();
        let state = sink.pre_commit(1).unwrap().unwrap();
        sink.commit(1).unwrap();
        assert_eq!(listing(&dir), (vec![], vec![]));
        let st: SinkState = snapshot::decode(&state, "state").unwrap();
        assert!(st.pending.is_empty());
        // The end of the input with checkpoints: a final pre_commit and commit, no finish.
        sink.write_batch(&batch(0, 2)).unwrap();
        sink.pre_commit(2).unwrap();
        sink.commit(2).unwrap();
        sink.commit(2).unwrap();
        sink.close().unwrap();
        let (visible, hidden) = listing(&dir);
        assert!(hidden.is_empty());
        assert_eq!(read(&dir, &visible[0]), "{\"id\":0,\"s\":\"a,b\"}\n{\"id\":1,\"s\":\"c\"}\n");
        // A failed subtask's close drops its uncommitted file.
        let mut failed = opened(&b, 0, 1);
        failed.write_batch(&batch(9, 1)).unwrap();
        failed.close().unwrap();
        assert_eq!(listing(&dir), (visible, vec![]));
    }

    #[test]
    fn restore_at_another_parallelism_publishes_every_old_subtask_once() {
        for (old_p, new_p) in [(2, 3), (3, 1), (2, 2)] {
            let dir = temp_dir("sink2pc-rescale").join("out");
            let b = exactly_once(&dir, old_p, SinkFormat::Csv, true);
            let mut states = Vec::new();
            for s in 0..old_p {
                let mut sink = opened(&b, s, old_p);
                sink.write_batch(&batch(10 * s as i64, 2)).unwrap();
                states.push(sink.pre_commit(7).unwrap().unwrap());
                sink.write_batch(&batch(100, 1)).unwrap();
                sink.write_out().unwrap();
            }
            assert_eq!(listing(&dir).1.len(), 2 * old_p);
            let b2 = exactly_once(&dir, new_p, SinkFormat::Csv, true);
            let mut new_sinks: Vec<FileSink> = (0..new_p).map(|s| opened(&b2, s, new_p)).collect();
            // A subtask of the new run already writes while the others restore: its file stays.
            new_sinks[0].restore(&states).unwrap();
            new_sinks[0].write_batch(&batch(200, 1)).unwrap();
            for sink in &mut new_sinks[1..] {
                sink.restore(&states).unwrap();
            }
            let (visible, hidden) = listing(&dir);
            assert_eq!(visible.len(), old_p, "{old_p} -> {new_p}: {visible:?}");
            assert_eq!(hidden.len(), 1, "only the new run's in-progress file: {hidden:?}");
            for s in 0..old_p {
                let name = visible.iter().find(|n| n.starts_with(&format!("part-{s}-"))).unwrap();
                let (a, b) = (10 * s, 10 * s + 1);
                let rows = if a % 2 == 0 { format!("{a},\"a,b\"\n{b},c\n") } else { format!("{a},c\n{b},\"a,b\"\n") };
                assert_eq!(read(&dir, name), format!("id,s\n{rows}"));
            }
            new_sinks[0].pre_commit(8).unwrap();
            new_sinks[0].commit(8).unwrap();
            assert_eq!(listing(&dir).0.len(), old_p + 1);
        }
    }

    #[test]
    fn restore_fails_when_pending_data_is_gone() {
        let dir = temp_dir("sink2pc-lost").join("out");
        let b = exactly_once(&dir, 1, SinkFormat::Jsonl, false);
        let mut sink = opened(&b, 0, 1);
        sink.write_batch(&batch(0, 1)).unwrap();
        let state = sink.pre_commit(4).unwrap().unwrap();
        let (_, hidden) = listing(&dir);
        std::fs::remove_file(dir.join(&hidden[0])).unwrap();
        let err = opened(&b, 0, 1).restore(&[state]).unwrap_err().to_string();
        let part = format!("{}.jsonl", hidden[0].trim_start_matches('.').trim_end_matches(".inprogress"));
        assert_eq!(
            err,
            format!(
                "file sink `out`: cannot publish `{}` of checkpoint 4: neither it nor its in-progress file `{}` \
                 exists, so its records would be lost",
                dir.join(part).display(),
                dir.join(&hidden[0]).display()
            )
        );
        let err = opened(&b, 0, 1).restore(&[b"\xc1".to_vec()]).unwrap_err().to_string();
        assert!(err.starts_with("cannot decode the state of file sink `out` from the snapshot"), "{err}");
    }

    #[test]
    fn checkpointed_path_is_a_directory() {
        let dir = temp_dir("sink2pc-plan");
        let inputs = [input("a", &[("id", DataType::Int)])];
        let file = dir.join("f.jsonl");
        std::fs::write(&file, "").unwrap();
        for p in [1, 2] {
            let d = FileSinkBuilder::plan(cfg(&file, SinkFormat::Jsonl), &checkpointed_ctx("out", p, &inputs))
                .unwrap_err()
                .0;
            assert_eq!(d[0].message, format!("file sink `out`: `{}` is a file", file.display()));
            assert_eq!(d[0].span, Some(Span::new(4, 11)));
            assert!(d[0].hint.as_deref().unwrap_or_default().contains("checkpoints"));
            // An existing directory is fine at any parallelism.
            let b = FileSinkBuilder::plan(cfg(&dir, SinkFormat::Jsonl), &checkpointed_ctx("out", p, &inputs)).unwrap();
            assert_eq!(b.target(&task(0, p)), dir);
        }
    }

    #[test]
    fn restoring_an_older_checkpoint_deletes_what_was_committed_after_it() {
        let dir = temp_dir("sink2pc-older").join("out");
        let b = exactly_once(&dir, 1, SinkFormat::Jsonl, false);
        // Output of another job (another history) and files that are not part files stay.
        let other = exactly_once(&dir, 1, SinkFormat::Jsonl, false);
        let mut foreign = opened(&other, 0, 1);
        foreign.write_batch(&batch(900, 1)).unwrap();
        foreign.pre_commit(1).unwrap();
        foreign.commit(1).unwrap();
        std::fs::write(dir.join("part-0.jsonl"), "{}\n").unwrap();
        std::fs::write(dir.join("notes.txt"), "hi\n").unwrap();
        let untouched = listing(&dir).0;
        assert_eq!(untouched.len(), 3);

        let mut a = opened(&b, 0, 1);
        let mut state = Vec::new();
        for cp in 1..=3 {
            a.write_batch(&batch(cp * 10, 1)).unwrap();
            state.push(a.pre_commit(cp as u64).unwrap().unwrap());
            a.commit(cp as u64).unwrap();
        }
        drop(a);
        assert_eq!(listing(&dir).0.len(), 3 + 3);
        let rows = |dir: &Path| -> Vec<String> {
            let (visible, _) = listing(dir);
            let mine = visible.iter().filter(|n| parse_name(n).is_some() && !untouched.contains(n));
            let mut rows: Vec<String> =
                mine.flat_map(|n| read(dir, n).lines().map(String::from).collect::<Vec<_>>()).collect();
            rows.sort();
            rows
        };
        // Fall back to checkpoint 2 (say 3 was corrupt): checkpoint 3's file goes.
        let mut b1 = opened(&b, 0, 1);
        b1.restore(std::slice::from_ref(&state[1])).unwrap();
        assert_eq!(rows(&dir), ["{\"id\":10,\"s\":\"a,b\"}", "{\"id\":20,\"s\":\"a,b\"}"]);
        // The restored run commits more, then checkpoint 2 is restored once more: its output goes too.
        b1.write_batch(&batch(31, 1)).unwrap();
        b1.pre_commit(3).unwrap();
        b1.commit(3).unwrap();
        b1.write_batch(&batch(41, 1)).unwrap();
        b1.pre_commit(4).unwrap();
        b1.commit(4).unwrap();
        drop(b1);
        assert_eq!(rows(&dir).len(), 4);
        let mut b2 = opened(&b, 0, 2);
        let mut b3 = opened(&b, 1, 2);
        b2.restore(std::slice::from_ref(&state[1])).unwrap();
        b3.restore(std::slice::from_ref(&state[1])).unwrap();
        assert_eq!(rows(&dir), ["{\"id\":10,\"s\":\"a,b\"}", "{\"id\":20,\"s\":\"a,b\"}"]);
        assert!(listing(&dir).1.is_empty());
        assert!(untouched.iter().all(|n| dir.join(n).exists()));
        // The lineage is carried on: a checkpoint of the new run keeps the files of the first one.
        b3.write_batch(&batch(51, 1)).unwrap();
        let s3 = b3.pre_commit(3).unwrap().unwrap();
        let s2 = b2.pre_commit(3).unwrap().unwrap();
        b3.commit(3).unwrap();
        let mut c = opened(&b, 0, 1);
        c.restore(&[s2, s3]).unwrap();
        assert_eq!(rows(&dir), ["{\"id\":10,\"s\":\"a,b\"}", "{\"id\":20,\"s\":\"a,b\"}", "{\"id\":51,\"s\":\"c\"}"]);
        assert!(untouched.iter().all(|n| dir.join(n).exists()));
    }
}
