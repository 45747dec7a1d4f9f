//! `part_files`: a sink that writes JSON lines into part files in a directory and publishes them by
//! two-phase commit, so that with checkpoints every record shows up exactly once, even across failures
//! (the scheme of Flink's `FileSink`).
//!
//! ```yaml
//! sinks:
//!   out: { type: part_files, inputs: [alerts], config: { path: out/alerts } }
//! ```
//!
//! Subtask `i` writes into a hidden in-progress file `.part-i.inprogress`. Then:
//! - **with checkpoints**, at a barrier [`Sink::pre_commit`] syncs it and renames it to a hidden pending
//!   file `.part-i-CKPT.pending` (durable, not yet visible) and returns the list of pending files; when
//!   the checkpoint is complete [`Sink::commit`] renames them to `part-i-CKPT.jsonl` (visible). A rename
//!   is atomic, and repeating one that happened finds the pending file gone and the part file there, so
//!   a commit can be repeated after a failure ([`Sink::restore`] does exactly that, and deletes what the
//!   failed run left in progress);
//! - **without checkpoints**, at the end of the input [`Sink::finish`] renames it to `part-i.jsonl`.
//!
//! Readers take every `part-*.jsonl` of the directory in name order. Checkpoint numbers are zero-padded
//! so that name order is checkpoint order.
//!
//! A restore may go back further than the newest commit: `eddy run --restore` of an older checkpoint or
//! savepoint, or a newest checkpoint that cannot be read. What was published for later checkpoints holds
//! records that are now replayed, so the restore deletes it. Eddy numbers checkpoints in increasing order
//! across runs of one checkpoint storage (a restored run continues above the highest number there), so the
//! number in a file's name is its lineage: every `part-i-CKPT.jsonl` with `CKPT` above the restored
//! checkpoint was written after it, by this run or by another restored from it or from a later one.
//!
//! [`SinkBuilder::output_files`] tells tools (`eddy chaos`) that the output is the `part-*` files under
//! `path`, so that the sink is compared record for record like the built-in `file` sink.
use eddy_api::snapshot::{decode, encode};
use eddy_api::{
    Batch, Datum, Diagnostic, Diagnostics, EddyError, OutputFiles, PlanContext, Result, SchemaRef, Sink, SinkBuilder,
    Spanned, TaskInfo,
};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Config of `part_files`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartFilesConfig {
    /// The directory of the part files; created when missing.
    pub path: Spanned<String>,
}

/// The planned `part_files` sink.
#[derive(Debug)]
pub struct PartFilesBuilder {
    dir: PathBuf,
    schema: SchemaRef,
}

/// Checks the path and that every input has the same schema.
pub fn plan(cfg: PartFilesConfig, ctx: &PlanContext<'_>) -> Result<PartFilesBuilder, Diagnostics> {
    let what = format!("part_files sink `{}`", ctx.node);
    let mut diags = Diagnostics::new();
    let Some(first) = ctx.inputs.first() else {
        return Err(Diagnostic::at(ctx.span, format!("{what} has no inputs")).into());
    };
    if let Some(other) = ctx.inputs.iter().find(|i| i.schema != first.schema) {
        diags.push(Diagnostic::at(
            ctx.span,
            format!("{what}: inputs `{}` and `{}` have different schemas", first.name, other.name),
        ));
    }
    let dir = PathBuf::from(&cfg.path.value);
    if cfg.path.value.is_empty() {
        diags.push(Diagnostic::at(cfg.path.span, format!("{what}: `path` is empty")));
    } else if dir.is_file() {
        diags.push(
            Diagnostic::at(cfg.path.span, format!("{what}: `{}` is a file", cfg.path.value))
                .with_hint("`path` is the directory that holds the part files"),
        );
    }
    diags.into_result(PartFilesBuilder { dir, schema: first.schema.clone() })
}

impl SinkBuilder for PartFilesBuilder {
    fn build(&self, task: &TaskInfo) -> Result<Box<dyn Sink>> {
        Ok(Box::new(PartFiles::new(&self.dir, &self.schema, task)))
    }

    /// The `part-*.jsonl` files under `path`, one JSON object per line, no header.
    fn output_files(&self) -> Option<OutputFiles> {
        Some(OutputFiles::new("path"))
    }
}

/// What `pre_commit` hands to the checkpoint: the pending files of one subtask, not yet published.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Pending {
    subtask: usize,
    /// `(checkpoint, pending file name)`, in checkpoint order.
    files: Vec<(u64, String)>,
    /// The checkpoint this state was taken for: a restore deletes what was published for later ones.
    /// (Last and optional, so that states written before it existed still decode.)
    #[serde(default)]
    checkpoint: Option<u64>,
}

/// A file of the directory, by its name.
#[derive(Debug, PartialEq, Eq)]
enum FileName {
    /// `.part-i.inprogress`.
    InProgress { subtask: usize },
    /// `.part-i-CKPT.pending`.
    Pending { subtask: usize },
    /// `part-i-CKPT.jsonl`.
    Published { subtask: usize, checkpoint: u64 },
}

impl FileName {
    /// Takes a name apart; `None` for anything else (`part-i.jsonl` of a run without checkpoints,
    /// foreign files).
    fn parse(name: &str) -> Option<FileName> {
        let split = |stem: &str| -> Option<(usize, Option<u64>)> {
            let rest = stem.strip_prefix("part-")?;
            match rest.split_once('-') {
                Some((i, c)) => Some((i.parse().ok()?, Some(c.parse().ok()?))),
                None => Some((rest.parse().ok()?, None)),
            }
        };
        if let Some(hidden) = name.strip_prefix('.') {
            if let Some(stem) = hidden.strip_suffix(".inprogress") {
                return match split(stem)? {
                    (subtask, None) => Some(FileName::InProgress { subtask }),
                    _ => None,
                };
            }
            return match split(hidden.strip_suffix(".pending")?)? {
                (subtask, Some(_)) => Some(FileName::Pending { subtask }),
                _ => None,
            };
        }
        match split(name.strip_suffix(".jsonl")?)? {
            (subtask, Some(checkpoint)) => Some(FileName::Published { subtask, checkpoint }),
            _ => None,
        }
    }

    fn subtask(&self) -> usize {
        match self {
            FileName::InProgress { subtask } | FileName::Pending { subtask } | FileName::Published { subtask, .. } => {
                *subtask
            }
        }
    }
}

/// One subtask of `part_files`.
pub struct PartFiles {
    dir: PathBuf,
    subtask: usize,
    parallelism: usize,
    /// `"name":` per field, JSON-escaped once (timestamps are written as epoch milliseconds, so the
    /// values need no types).
    keys: Vec<String>,
    file: Option<File>,
    buf: Vec<u8>,
    pending: Pending,
}

impl PartFiles {
    /// The writer of subtask `task` into `dir`, for records of `schema`.
    pub fn new(dir: &Path, schema: &SchemaRef, task: &TaskInfo) -> Self {
        let keys = schema.fields().iter().map(|f| format!("{}:", serde_json::Value::String(f.name.clone()))).collect();
        let subtask = task.subtask;
        PartFiles {
            dir: dir.to_path_buf(),
            subtask,
            parallelism: task.parallelism.max(1),
            keys,
            file: None,
            buf: Vec::new(),
            pending: Pending { subtask, files: Vec::new(), checkpoint: None },
        }
    }

    fn in_progress(&self, subtask: usize) -> PathBuf {
        self.dir.join(format!(".part-{subtask}.inprogress"))
    }

    fn pending_name(&self, checkpoint: u64) -> String {
        format!(".part-{}-{checkpoint:08}.pending", self.subtask)
    }

    fn published(&self, pending: &str) -> PathBuf {
        // `.part-i-CKPT.pending` -> `part-i-CKPT.jsonl`
        let stem = pending.trim_start_matches('.').trim_end_matches(".pending");
        self.dir.join(format!("{stem}.jsonl"))
    }

    fn io(&self, doing: &str, path: &Path, e: std::io::Error) -> EddyError {
        EddyError::io(format!("part_files: {doing} `{}`", path.display()), e)
    }

    fn encode(&mut self, batch: &Batch) {
        for r in batch.rows() {
            self.buf.push(b'{');
            for (i, (key, v)) in self.keys.iter().zip(r.iter()).enumerate() {
                if i > 0 {
                    self.buf.push(b',');
                }
                self.buf.extend_from_slice(key.as_bytes());
                let value = match v {
                    Datum::Null => serde_json::Value::Null,
                    Datum::Bool(b) => b.into(),
                    Datum::Int(n) | Datum::Timestamp(n) => n.into(),
                    // NaN and infinities have no JSON form: null.
                    Datum::Float(x) => serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, Into::into),
                    Datum::Str(s) => s.into(),
                };
                self.buf.extend_from_slice(value.to_string().as_bytes());
            }
            self.buf.extend_from_slice(b"}\n");
        }
    }

    /// Writes what is buffered to the in-progress file, creating it first when needed.
    fn write_out(&mut self) -> Result<()> {
        if self.file.is_none() {
            let path = self.in_progress(self.subtask);
            self.file = Some(File::create(&path).map_err(|e| self.io("creating", &path, e))?);
        }
        if let Some(f) = self.file.as_mut() {
            if let Err(e) = f.write_all(&self.buf) {
                return Err(self.io("writing", &self.in_progress(self.subtask), e));
            }
        }
        self.buf.clear();
        Ok(())
    }

    /// Syncs and closes the in-progress file and renames it to `to`; false when there was none.
    fn seal(&mut self, to: &Path) -> Result<bool> {
        if !self.buf.is_empty() {
            self.write_out()?;
        }
        let Some(file) = self.file.take() else { return Ok(false) };
        let from = self.in_progress(self.subtask);
        file.sync_all().map_err(|e| self.io("syncing", &from, e))?;
        std::fs::rename(&from, to).map_err(|e| self.io("renaming", &from, e))?;
        Ok(true)
    }

    /// Publishes one pending file; done already when it is gone and its part file exists.
    fn publish(&self, pending: &str) -> Result<()> {
        let from = self.dir.join(pending);
        let to = self.published(pending);
        match std::fs::rename(&from, &to) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && to.exists() => Ok(()),
            Err(e) => Err(self.io("publishing", &from, e)),
        }
    }

    /// Deletes, among the files of the (old) subtasks this one takes over (`j % parallelism ==
    /// subtask`, whatever parallelism wrote them), what is not part of checkpoint `restored`: files in
    /// progress or pending (those the checkpoint listed are published already), and files published for
    /// later checkpoints. Without a checkpoint number (a state from before it was recorded) published
    /// files stay.
    fn discard_after(&self, restored: Option<u64>) -> Result<()> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| self.io("listing", &self.dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| self.io("listing", &self.dir, e))?;
            let Some(file) = entry.file_name().to_str().and_then(FileName::parse) else { continue };
            if file.subtask() % self.parallelism != self.subtask {
                continue;
            }
            let stale = match file {
                FileName::InProgress { .. } | FileName::Pending { .. } => true,
                FileName::Published { checkpoint, .. } => restored.is_some_and(|r| checkpoint > r),
            };
            if stale {
                let path = entry.path();
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(self.io("deleting", &path, e)),
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

impl Sink for PartFiles {
    fn open(&mut self, _task: &TaskInfo) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.io("creating the directory", &self.dir, e))
    }

    fn write_batch(&mut self, batch: &Batch) -> Result<()> {
        self.encode(batch);
        if self.buf.len() >= 1 << 20 {
            self.write_out()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        // Without checkpoints: publish everything at the end (an empty part file when nothing came).
        self.write_out()?;
        let to = self.dir.join(format!("part-{}.jsonl", self.subtask));
        self.seal(&to).map(|_| ())
    }

    fn pre_commit(&mut self, checkpoint: u64) -> Result<Option<Vec<u8>>> {
        let name = self.pending_name(checkpoint);
        if self.seal(&self.dir.join(&name))? {
            self.pending.files.push((checkpoint, name));
        }
        self.pending.checkpoint = Some(checkpoint);
        // Everything not yet committed: a checkpoint whose commit never came is published with this one.
        encode(&self.pending).map(Some)
    }

    fn commit(&mut self, checkpoint: u64) -> Result<()> {
        let files = std::mem::take(&mut self.pending.files);
        let (due, later): (Vec<_>, Vec<_>) = files.into_iter().partition(|(c, _)| *c <= checkpoint);
        self.pending.files = later;
        for (_, name) in &due {
            self.publish(name)?;
        }
        Ok(())
    }

    fn restore(&mut self, states: &[Vec<u8>]) -> Result<()> {
        // Old subtask j is this one's when j % parallelism == subtask (the runtime's rule): publish what it
        // pre-committed for the checkpoint (its commit may not have happened), then drop everything of
        // those subtasks written after the checkpoint: in progress, pending for checkpoints that never
        // completed, or published for later checkpoints than the one restored.
        let mut restored = None;
        for (j, bytes) in states.iter().enumerate().filter(|(_, b)| !b.is_empty()) {
            let state: Pending = decode(bytes, "part_files pending files")?;
            // Every state of a checkpoint names it; any one will do, including other subtasks'.
            restored = restored.or(state.checkpoint);
            if j % self.parallelism == self.subtask {
                for (_, name) in &state.files {
                    self.publish(name)?;
                }
            }
        }
        self.discard_after(restored)
    }

    fn close(&mut self) -> Result<()> {
        // After a failure the in-progress file stays (restore deletes it): it shows how far the run got.
        let r = if self.buf.is_empty() { Ok(()) } else { self.write_out() };
        self.file = None;
        r
    }
}

/// Every record of a `part_files` directory, in name order of the part files (for tests and tools).
pub fn read_dir(dir: &Path) -> Result<Vec<serde_json::Value>> {
    let io = |e| EddyError::io(format!("part_files: reading `{}`", dir.display()), e);
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with("part-") && name.ends_with(".jsonl") {
            names.push(path);
        }
    }
    names.sort();
    let mut rows = Vec::new();
    for p in names {
        let text = std::fs::read_to_string(&p).map_err(io)?;
        for line in text.lines() {
            let v = serde_json::from_str(line)
                .map_err(|e| EddyError::user(format!("part_files: `{}`: bad JSON line: {e}", p.display())))?;
            rows.push(v);
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_api::testing::task_info;
    use eddy_api::{DataType, Field, Schema};
    use std::sync::Arc;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("eddy-part-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn sink(dir: &Path, subtask: usize, parallelism: usize) -> PartFiles {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int), Field::new("s", DataType::String)]));
        let task = task_info(subtask, parallelism, 128);
        let mut s = PartFiles::new(dir, &schema, &task);
        s.open(&task).unwrap();
        s
    }

    fn batch(ns: &[i64]) -> Batch {
        let mut b = Batch::new(2);
        for &n in ns {
            b.push_row(&[Datum::Int(n), Datum::Str("x")]);
        }
        b
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    fn numbers(dir: &Path) -> Vec<i64> {
        read_dir(dir).unwrap().iter().map(|v| v["n"].as_i64().unwrap()).collect()
    }

    #[test]
    fn without_checkpoints_the_end_publishes_one_part() {
        let dir = temp_dir("plain");
        let mut s = sink(&dir, 0, 1);
        s.write_batch(&batch(&[1, 2])).unwrap();
        assert!(numbers(&dir).is_empty(), "nothing is visible before the end");
        s.finish().unwrap();
        s.close().unwrap();
        assert_eq!(files(&dir), ["part-0.jsonl"]);
        assert_eq!(
            std::fs::read_to_string(dir.join("part-0.jsonl")).unwrap(),
            "{\"n\":1,\"s\":\"x\"}\n{\"n\":2,\"s\":\"x\"}\n"
        );
    }

    #[test]
    fn values_are_json() {
        let dir = temp_dir("json");
        let schema = Arc::new(Schema::new(
            ["a", "b \"q\"", "c", "d", "e"].iter().map(|n| Field::new(*n, DataType::String)).collect(),
        ));
        let mut s = PartFiles::new(&dir, &schema, &task_info(0, 1, 128));
        s.open(&task_info(0, 1, 128)).unwrap();
        let mut b = Batch::new(5);
        b.push_row(&[
            Datum::Str("line\n\"x\""),
            Datum::Float(f64::NAN),
            Datum::Float(1.5),
            Datum::Null,
            Datum::Bool(true),
        ]);
        s.write_batch(&b).unwrap();
        s.finish().unwrap();
        let text = std::fs::read_to_string(dir.join("part-0.jsonl")).unwrap();
        assert_eq!(text, "{\"a\":\"line\\n\\\"x\\\"\",\"b \\\"q\\\"\":null,\"c\":1.5,\"d\":null,\"e\":true}\n");
    }

    #[test]
    fn two_phase_commit_publishes_completed_checkpoints_only() {
        let dir = temp_dir("2pc");
        let mut s = sink(&dir, 0, 1);
        s.write_batch(&batch(&[1, 2])).unwrap();
        s.pre_commit(1).unwrap().unwrap();
        s.write_batch(&batch(&[3])).unwrap();
        let _state2 = s.pre_commit(2).unwrap().unwrap();
        let state3 = s.pre_commit(3).unwrap().unwrap(); // nothing new: no file for 3
        s.write_batch(&batch(&[4])).unwrap();
        assert!(numbers(&dir).is_empty(), "pre-committed is durable but not visible");
        s.commit(1).unwrap();
        assert_eq!(numbers(&dir), [1, 2]);
        s.commit(1).unwrap();
        assert_eq!(numbers(&dir), [1, 2], "a repeated commit changes nothing");
        let pending: Pending = decode(&state3, "test").unwrap();
        let listed: Vec<u64> = pending.files.iter().map(|f| f.0).collect();
        assert_eq!(listed, [1, 2], "not committed when 3 was pre-committed; 3 had no data");

        // The process dies before checkpoint 3's commit (4 is in progress). The restore publishes what
        // checkpoint 3 pre-committed and drops the rest.
        s.close().unwrap();
        drop(s);
        let mut r = sink(&dir, 0, 1);
        r.restore(std::slice::from_ref(&state3)).unwrap();
        assert_eq!(numbers(&dir), [1, 2, 3]);
        assert_eq!(files(&dir), ["part-0-00000001.jsonl", "part-0-00000002.jsonl"]);
        // Restoring again (a failure during the restore) is harmless.
        r.restore(&[state3]).unwrap();
        assert_eq!(numbers(&dir), [1, 2, 3]);
        r.write_batch(&batch(&[5])).unwrap();
        r.pre_commit(4).unwrap();
        r.commit(4).unwrap();
        assert_eq!(numbers(&dir), [1, 2, 3, 5]);
    }

    #[test]
    fn a_restore_from_an_older_checkpoint_deletes_what_was_published_after_it() {
        let dir = temp_dir("older");
        let mut s = sink(&dir, 0, 2);
        s.write_batch(&batch(&[1])).unwrap();
        let state1 = s.pre_commit(1).unwrap().unwrap();
        s.commit(1).unwrap();
        s.write_batch(&batch(&[2])).unwrap();
        s.pre_commit(2).unwrap();
        s.commit(2).unwrap();
        s.write_batch(&batch(&[3])).unwrap();
        s.pre_commit(3).unwrap(); // never completed
        s.write_batch(&batch(&[4])).unwrap(); // in progress
        s.close().unwrap();
        // A run at another parallelism, restored from checkpoint 2, published checkpoint 5 too.
        let mut other = sink(&dir, 2, 3);
        other.write_batch(&batch(&[9])).unwrap();
        other.pre_commit(5).unwrap();
        other.commit(5).unwrap();
        // Subtask 1 of 2 at checkpoint 1 had written nothing: only its checkpoint number says which.
        let mut quiet = sink(&dir, 1, 2);
        let quiet1 = quiet.pre_commit(1).unwrap().unwrap();
        assert_eq!(numbers(&dir), [1, 2, 9]);

        // `--restore` of checkpoint 1 at parallelism 1: everything after it goes, whoever wrote it.
        let mut r = sink(&dir, 0, 1);
        r.restore(&[state1.clone(), quiet1]).unwrap();
        assert_eq!(files(&dir), ["part-0-00000001.jsonl"]);
        // The replay writes 2, 3 and 4 again, under a checkpoint number above every earlier one.
        r.write_batch(&batch(&[2, 3, 4])).unwrap();
        r.pre_commit(6).unwrap();
        r.commit(6).unwrap();
        assert_eq!(numbers(&dir), [1, 2, 3, 4]);
        // A state of a version without the checkpoint number cannot tell what is later: it deletes only
        // what was in progress or pending.
        let old_format = encode(&(0usize, Vec::<(u64, String)>::new())).unwrap();
        r.write_batch(&batch(&[5])).unwrap();
        r.pre_commit(7).unwrap();
        sink(&dir, 0, 1).restore(&[old_format]).unwrap();
        assert_eq!(files(&dir), ["part-0-00000001.jsonl", "part-0-00000006.jsonl"]);
        // Restoring checkpoint 1 again is idempotent.
        sink(&dir, 0, 1).restore(&[state1]).unwrap();
        assert_eq!(files(&dir), ["part-0-00000001.jsonl"]);
    }

    #[test]
    fn file_names_are_taken_apart() {
        assert_eq!(FileName::parse(".part-3.inprogress"), Some(FileName::InProgress { subtask: 3 }));
        assert_eq!(FileName::parse(".part-3-00000012.pending"), Some(FileName::Pending { subtask: 3 }));
        assert_eq!(FileName::parse("part-3-00000012.jsonl"), Some(FileName::Published { subtask: 3, checkpoint: 12 }));
        for other in ["part-3.jsonl", "part-x-1.jsonl", ".part-3-1.inprogress", ".part-3.pending", "notes.txt"] {
            assert_eq!(FileName::parse(other), None, "{other}");
        }
    }

    #[test]
    fn after_a_rescale_each_subtask_publishes_the_old_subtasks_it_takes_over() {
        let dir = temp_dir("rescale");
        let mut states = Vec::new();
        for i in 0..3 {
            let mut s = sink(&dir, i, 3);
            s.write_batch(&batch(&[10 + i as i64])).unwrap();
            states.push(s.pre_commit(7).unwrap().unwrap());
            s.write_batch(&batch(&[99])).unwrap(); // in progress: lost
            s.close().unwrap();
        }
        states[1].clear(); // old subtask 1 had no state: its leftovers still go
        for i in 0..2 {
            sink(&dir, i, 2).restore(&states).unwrap();
        }
        assert_eq!(numbers(&dir), [10, 12]);
        assert_eq!(files(&dir), ["part-0-00000007.jsonl", "part-2-00000007.jsonl"]);
    }

    #[test]
    fn the_path_must_not_be_a_file() {
        use eddy_api::registry::InputInfo;
        use eddy_api::Span;
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int)]));
        let inputs = [InputInfo { name: "a".into(), schema, key: None }];
        let ctx = PlanContext {
            job: "t",
            node: "out",
            span: Span::new(1, 1),
            parallelism: 1,
            inputs: &inputs,
            checkpointing: true,
        };
        let cfg = PartFilesConfig { path: Spanned::new(Span::new(2, 5), "Cargo.toml".into()) };
        let e = plan(cfg, &ctx).unwrap_err();
        assert_eq!(
            e.0[0].to_string(),
            "2:5: part_files sink `out`: `Cargo.toml` is a file (`path` is the directory that holds the part files)"
        );
    }
}
