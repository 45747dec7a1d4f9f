//! Which bytes of which files a subtask reads.
//!
//! Computed by every subtask from its index alone, so no coordination is needed: with at least as
//! many files as subtasks each subtask reads whole files (`i, i+p, ...`); otherwise the files,
//! taken end to end, are cut into `p` byte ranges and a subtask reads the lines that *start* in its
//! range (Hadoop's TextInputFormat rule), so every line is read exactly once for any `p`.
use std::io;
use std::path::{Path, PathBuf};

/// One input file, with its size when the job was planned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InputFile {
    pub path: PathBuf,
    pub size: u64,
}

/// Lines of `file` starting at a byte offset in `lo..hi` (`hi == u64::MAX`: up to the end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Piece {
    pub file: usize,
    pub lo: u64,
    pub hi: u64,
}

impl Piece {
    /// Bytes of the piece, for progress.
    pub fn len(&self, files: &[InputFile]) -> u64 {
        self.hi.min(files[self.file].size).saturating_sub(self.lo)
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

/// The pieces subtask `subtask` of `parallelism` reads, in order.
pub(crate) fn pieces_for(files: &[InputFile], subtask: usize, parallelism: usize) -> Vec<Piece> {
    let p = parallelism.max(1);
    if files.len() >= p {
        return (subtask..files.len()).step_by(p).map(|file| Piece { file, lo: 0, hi: u64::MAX }).collect();
    }
    let total: u64 = files.iter().map(|f| f.size).sum();
    let cut = |i: usize| (u128::from(total) * i as u128 / p as u128) as u64;
    let (g_lo, g_hi) = (cut(subtask), cut(subtask + 1));
    let mut pieces = Vec::new();
    let mut base = 0u64;
    for (file, f) in files.iter().enumerate() {
        let (lo, hi) = (g_lo.max(base), g_hi.min(base + f.size));
        if lo < hi {
            // The piece that reaches the end of the file also owns lines appended since planning.
            let hi = if hi == base + f.size { u64::MAX } else { hi - base };
            pieces.push(Piece { file, lo: lo - base, hi });
        }
        base += f.size;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(sizes: &[u64]) -> Vec<InputFile> {
        sizes.iter().enumerate().map(|(i, &size)| InputFile { path: PathBuf::from(format!("f{i}")), size }).collect()
    }

    #[test]
    fn whole_files_round_robin() {
        let f = files(&[10, 20, 30]);
        assert_eq!(pieces_for(&f, 0, 2).iter().map(|p| p.file).collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(pieces_for(&f, 1, 2), vec![Piece { file: 1, lo: 0, hi: u64::MAX }]);
    }

    #[test]
    fn byte_ranges_cover_every_byte_once() {
        let f = files(&[10, 0, 7]);
        for p in 4..=9 {
            let mut covered = [0u8; 17];
            for s in 0..p {
                for piece in pieces_for(&f, s, p) {
                    let base = if piece.file == 0 { 0 } else { 10 };
                    let hi = piece.hi.min(f[piece.file].size);
                    for b in piece.lo..hi {
                        covered[(base + b) as usize] += 1;
                    }
                }
            }
            assert!(covered.iter().all(|&c| c == 1), "p={p}: {covered:?}");
        }
    }
}
