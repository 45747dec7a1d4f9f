//! Which bytes of which files a subtask reads, and the checkpointed position of a subtask.
//!
//! The input is cut into **splits** that do not depend on the parallelism, so a position taken at one
//! parallelism can be resumed at any other: the files, in name order, are cut into byte ranges of one
//! size for the whole listing ([`split_size`]: about 1/128 of the input, within 1..128 MiB; a smaller
//! file is one split), and split `k` of that table belongs to subtask `k % p`, which spreads the work
//! evenly. A split reads the lines that *start* in its range (Hadoop's TextInputFormat rule), so every
//! line is read exactly once, wherever the cuts fall.
//!
//! A position lists, per split a subtask owns, where reading resumes: the start of the next line not yet
//! returned, or [`DONE`]. On restore the splits recorded by the old run are authoritative for the files
//! they cover (the cut does not move if a file grew or the listing changed), so every subtask of the new
//! run rebuilds the same table from the positions of all old subtasks ([`restored_splits`]).
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

/// Splits per listing the size aims at (the default number of key groups: every subtask gets work).
const TARGET_SPLITS: u64 = 128;
/// Smaller splits cost more in opens and partial lines at the cuts than they gain in balance.
const MIN_SPLIT: u64 = 1 << 20;
const MAX_SPLIT: u64 = 128 << 20;
/// [`SplitPos::next`] of a split read to its end.
pub(crate) const DONE: u64 = u64::MAX;
/// Written into every position, so a future format can tell old ones apart.
const POSITION_VERSION: u32 = 1;

/// One input file, with its size when the job was planned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InputFile {
    pub path: PathBuf,
    pub size: u64,
}

impl InputFile {
    /// The name positions record the file under.
    pub fn key(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }
}

/// Lines of `file` starting at a byte offset in `lo..hi` (`hi == u64::MAX`: up to the end, so the last
/// split of a file also owns lines appended since planning).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Split {
    pub file: usize,
    pub lo: u64,
    pub hi: u64,
}

impl Split {
    /// Bytes of the split, for progress.
    pub fn len(&self, files: &[InputFile]) -> u64 {
        self.hi.min(files[self.file].size).saturating_sub(self.lo)
    }

    /// Bytes done when reading resumes at `next`.
    pub fn done(&self, files: &[InputFile], next: u64) -> u64 {
        next.saturating_sub(self.lo).min(self.len(files))
    }
}

/// The file itself, or the non-hidden regular files of a directory in name order.
pub(crate) fn list_files(path: &Path) -> io::Result<Vec<InputFile>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_dir() {
        return Ok(vec![InputFile { path: path.to_path_buf(), size: meta.len() }]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        // Follows symlinks, so a linked file counts as a file.
        let meta = std::fs::metadata(entry.path())?;
        if meta.is_file() {
            files.push(InputFile { path: entry.path(), size: meta.len() });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// The split size for a listing: a function of the input alone, never of the parallelism.
pub(crate) fn split_size(files: &[InputFile]) -> u64 {
    let total: u64 = files.iter().map(|f| f.size).sum();
    total.div_ceil(TARGET_SPLITS).clamp(MIN_SPLIT, MAX_SPLIT)
}

/// Appends the splits of `file` from byte `from` on, cut every `size` bytes from the start of the file.
fn cut(out: &mut Vec<Split>, files: &[InputFile], file: usize, from: u64, to: u64, size: u64) {
    let size = size.max(1);
    let end = to.min(files[file].size);
    let mut lo = from;
    loop {
        let hi = (lo / size + 1).saturating_mul(size);
        if hi >= end {
            out.push(Split { file, lo, hi: to });
            return;
        }
        out.push(Split { file, lo, hi });
        lo = hi;
    }
}

/// The split table of a fresh run.
pub(crate) fn splits(files: &[InputFile], size: u64) -> Vec<Split> {
    let mut out = Vec::new();
    for file in 0..files.len() {
        cut(&mut out, files, file, 0, u64::MAX, size);
    }
    out
}

/// Indexes into the split table of the splits subtask `subtask` of `parallelism` owns, in order.
pub(crate) fn owned(n_splits: usize, subtask: usize, parallelism: usize) -> impl Iterator<Item = usize> {
    (subtask..n_splits).step_by(parallelism.max(1))
}

/// One subtask's position: the splits it owns, grouped by file.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Position {
    pub version: u32,
    pub files: Vec<FilePos>,
}

impl Position {
    pub fn new() -> Position {
        Position { version: POSITION_VERSION, files: Vec::new() }
    }

    /// Adds a split of the file named `key` (splits of one file arrive together, in order).
    pub fn push(&mut self, key: impl FnOnce() -> String, file: usize, pos: SplitPos, last_file: &mut Option<usize>) {
        if *last_file != Some(file) || self.files.is_empty() {
            self.files.push(FilePos { path: key(), splits: Vec::new() });
            *last_file = Some(file);
        }
        if let Some(f) = self.files.last_mut() {
            f.splits.push(pos);
        }
    }

    /// Whether this build can read it.
    pub fn check_version(&self) -> Result<(), String> {
        if self.version == POSITION_VERSION {
            Ok(())
        } else {
            Err(format!("position format {} is not supported (this build writes {POSITION_VERSION})", self.version))
        }
    }
}

/// The splits of one file in a position.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct FilePos {
    pub path: String,
    pub splits: Vec<SplitPos>,
}

/// One split in a position: its range, where reading resumes (a line start, or [`DONE`]) and how many
/// malformed records of it were skipped so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SplitPos {
    pub lo: u64,
    pub hi: u64,
    pub next: u64,
    pub skipped: u64,
}

/// The split table of a restored run, with what was recorded for each split. `recorded[f]` holds the
/// recorded splits of file `f` of the current listing, in any order: they are kept as they were cut, the
/// byte ranges nobody recorded (an old subtask without a position) and files not in the checkpoint are
/// cut afresh with `size` and start from the beginning. Overlapping records are an error.
pub(crate) fn restored_splits(
    files: &[InputFile],
    size: u64,
    recorded: &mut [Vec<SplitPos>],
) -> Result<Vec<(Split, Option<SplitPos>)>, String> {
    let mut out = Vec::new();
    let mut fresh = Vec::new();
    for (file, rec) in recorded.iter_mut().enumerate().take(files.len()) {
        rec.sort_by_key(|s| s.lo);
        let mut at = 0u64;
        for s in rec.iter() {
            if s.lo < at || s.hi <= s.lo {
                return Err(format!(
                    "the position of `{}` has overlapping or empty splits (bytes {}..{})",
                    files[file].path.display(),
                    s.lo,
                    s.hi
                ));
            }
            if s.lo > at {
                fresh.clear();
                cut(&mut fresh, files, file, at, s.lo, size);
                out.extend(fresh.iter().map(|&sp| (sp, None)));
            }
            out.push((Split { file, lo: s.lo, hi: s.hi }, Some(*s)));
            at = s.hi;
        }
        if at != u64::MAX {
            fresh.clear();
            cut(&mut fresh, files, file, at, u64::MAX, size);
            out.extend(fresh.iter().map(|&sp| (sp, None)));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(sizes: &[u64]) -> Vec<InputFile> {
        sizes.iter().enumerate().map(|(i, &size)| InputFile { path: PathBuf::from(format!("f{i}")), size }).collect()
    }

    fn ranges(s: &[Split]) -> Vec<(usize, u64, u64)> {
        s.iter().map(|s| (s.file, s.lo, s.hi)).collect()
    }

    #[test]
    fn cut_at_multiples_of_the_size_last_split_open() {
        let f = files(&[10, 0, 7, 4]);
        assert_eq!(
            ranges(&splits(&f, 4)),
            [(0, 0, 4), (0, 4, 8), (0, 8, u64::MAX), (1, 0, u64::MAX), (2, 0, 4), (2, 4, u64::MAX), (3, 0, u64::MAX)]
        );
        assert_eq!(split_size(&f), MIN_SPLIT);
        assert_eq!(split_size(&files(&[1 << 30, 1 << 30])), 16 << 20);
        assert_eq!(split_size(&files(&[1 << 40])), MAX_SPLIT);
    }

    #[test]
    fn owners_round_robin_and_cover_every_byte_once() {
        let f = files(&[10, 0, 7]);
        for size in [1, 2, 3, 5, 100] {
            let table = splits(&f, size);
            for p in 1..=9 {
                let mut covered = [0u8; 17];
                for s in 0..p {
                    for k in owned(table.len(), s, p) {
                        assert_eq!(k % p, s);
                        let sp = table[k];
                        let base = if sp.file == 0 { 0 } else { 10 };
                        for b in sp.lo..sp.hi.min(f[sp.file].size) {
                            covered[(base + b) as usize] += 1;
                        }
                    }
                }
                assert!(covered.iter().all(|&c| c == 1), "size={size} p={p}: {covered:?}");
            }
        }
    }

    #[test]
    fn restored_table_keeps_recorded_cuts_and_fills_gaps() {
        // File 0 grew from 10 to 20 bytes and was cut every 4 bytes; one old subtask (bytes 4..8) left
        // no position. File 1 is new.
        let f = files(&[20, 5]);
        let pos = |lo, hi, next| SplitPos { lo, hi, next, skipped: 0 };
        let mut rec = vec![vec![pos(8, u64::MAX, 9), pos(0, 4, DONE)], vec![]];
        let t = restored_splits(&f, 3, &mut rec).unwrap();
        let got: Vec<_> = t.iter().map(|(s, r)| (s.file, s.lo, s.hi, r.map(|r| r.next))).collect();
        assert_eq!(
            got,
            [
                (0, 0, 4, Some(DONE)),
                (0, 4, 6, None),
                (0, 6, 8, None),
                (0, 8, u64::MAX, Some(9)),
                (1, 0, 3, None),
                (1, 3, u64::MAX, None)
            ]
        );
        let mut bad = vec![vec![pos(0, 6, 0), pos(4, 8, 4)], vec![]];
        assert!(restored_splits(&f, 3, &mut bad).unwrap_err().contains("overlapping"));
        // Nothing recorded: the fresh table.
        let mut none = vec![vec![], vec![]];
        let t: Vec<Split> = restored_splits(&f, 3, &mut none).unwrap().into_iter().map(|(s, _)| s).collect();
        assert_eq!(t, splits(&f, 3));
    }
}
