//! A line reader over one [`Split`](super::split::Split) of a file (or the rest of one, when resuming
//! from a checkpoint), reading in large chunks into a reusable buffer so records are parsed straight
//! from it.
use memchr::memchr;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

const INITIAL_BUFFER: usize = 1 << 20;
/// Once past the end of the split only the rest of the last line is needed: read in small steps.
const TAIL_READ: usize = 64 << 10;
/// A longer line is almost certainly not a text file of records; fail rather than eat all memory.
pub(crate) const MAX_LINE: usize = 256 << 20;

/// What [`LineReader::next_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// A line (without its `\n` or `\r\n`) at `buf()[start..end]`, starting at byte `offset`.
    Line { offset: u64, start: usize, end: usize },
    /// Call [`LineReader::fill`] first.
    NeedData,
    /// The split is done.
    Done,
}

pub(crate) struct LineReader {
    file: File,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// File offset of `buf[0]`.
    buf_pos: u64,
    lo: u64,
    hi: u64,
    eof: bool,
    /// The range starts mid-file: the line in progress at `lo - 1` belongs to the previous split.
    skip_partial: bool,
}

impl LineReader {
    /// Opens the lines of `path` that start in `lo..hi`.
    #[cfg(test)]
    pub fn open(path: &Path, lo: u64, hi: u64) -> io::Result<LineReader> {
        Self::open_with(path, lo, hi, Vec::new())
    }

    /// [`open`](Self::open), reusing the buffer of a previous reader ([`into_buf`](Self::into_buf)).
    pub fn open_with(path: &Path, lo: u64, hi: u64, mut buf: Vec<u8>) -> io::Result<LineReader> {
        let mut file = File::open(path)?;
        let pos = lo.saturating_sub(1);
        if pos > 0 {
            file.seek(SeekFrom::Start(pos))?;
        }
        if buf.len() < INITIAL_BUFFER {
            buf.resize(INITIAL_BUFFER, 0);
        }
        Ok(LineReader { file, buf, start: 0, end: 0, buf_pos: pos, lo, hi, eof: false, skip_partial: lo > 0 })
    }

    /// The buffer that [`Next::Line`] indexes into.
    pub fn buf(&self) -> &[u8] {
        &self.buf
    }

    /// The buffer, for the next reader.
    pub fn into_buf(self) -> Vec<u8> {
        self.buf
    }

    /// Where reading would resume: the start of the next line not yet returned (a line start, so a
    /// reader opened there with [`open_with`](Self::open_with) returns exactly the remaining lines), or
    /// `lo` while the line in progress at `lo - 1` is still being skipped.
    pub fn resume_offset(&self) -> u64 {
        if self.skip_partial {
            self.lo
        } else {
            self.buf_pos + self.start as u64
        }
    }

    pub fn next_line(&mut self) -> Next {
        if self.skip_partial {
            match memchr(b'\n', &self.buf[self.start..self.end]) {
                Some(k) => {
                    self.start += k + 1;
                    self.skip_partial = false;
                }
                None => {
                    self.start = self.end;
                    return if self.eof { Next::Done } else { Next::NeedData };
                }
            }
        }
        let offset = self.buf_pos + self.start as u64;
        if offset >= self.hi {
            return Next::Done;
        }
        let s = self.start;
        let mut e = match memchr(b'\n', &self.buf[s..self.end]) {
            Some(k) => {
                self.start = s + k + 1;
                s + k
            }
            None if self.eof && s < self.end => {
                self.start = self.end;
                self.end
            }
            None if self.eof => return Next::Done,
            None => return Next::NeedData,
        };
        if e > s && self.buf[e - 1] == b'\r' {
            e -= 1;
        }
        Next::Line { offset, start: s, end: e }
    }

    /// Reads up to `budget` more bytes (at least one unless at end of file); returns how many.
    pub fn fill(&mut self, budget: usize) -> io::Result<usize> {
        if self.start > 0 {
            // The carried-over tail is at most one partial line, so this copy is small.
            self.buf.copy_within(self.start..self.end, 0);
            self.buf_pos += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            if self.buf.len() >= MAX_LINE {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a line at byte {} is longer than {} MiB", self.buf_pos, MAX_LINE >> 20),
                ));
            }
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let end_pos = self.buf_pos + self.end as u64;
        let mut want = (self.buf.len() - self.end).min(budget.max(1));
        if end_pos >= self.hi {
            want = want.min(TAIL_READ);
        } else {
            want = want.min(usize::try_from(self.hi - end_pos).unwrap_or(usize::MAX));
        }
        loop {
            match self.file.read(&mut self.buf[self.end..self.end + want]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(0);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// The 1-based line number of the line starting at `offset` (only computed when reporting an error).
pub(crate) fn line_number(path: &Path, offset: u64) -> io::Result<u64> {
    let mut file = File::open(path)?.take(offset);
    let mut buf = vec![0u8; 64 << 10];
    let mut lines = 1u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok(lines),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::test_util::temp_dir;

    /// All lines of a range, with tiny budgets to exercise buffer refills.
    fn read_all(path: &Path, lo: u64, hi: u64, budget: usize) -> Vec<(u64, String)> {
        let mut r = LineReader::open(path, lo, hi).unwrap();
        let mut out = Vec::new();
        loop {
            match r.next_line() {
                Next::Line { offset, start, end } => {
                    out.push((offset, String::from_utf8(r.buf()[start..end].to_vec()).unwrap()))
                }
                Next::NeedData => {
                    r.fill(budget).unwrap();
                }
                Next::Done => return out,
            }
        }
    }

    #[test]
    fn lines_with_offsets_crlf_and_partial_last_line() {
        let dir = temp_dir("lines");
        let p = dir.join("a.txt");
        std::fs::write(&p, "ab\r\n\ncd\nlast").unwrap();
        let want = vec![(0, "ab".into()), (4, "".into()), (5, "cd".into()), (8, "last".into())];
        assert_eq!(read_all(&p, 0, u64::MAX, 3), want);
        assert_eq!(read_all(&p, 0, u64::MAX, 1 << 20), want);
        // Lines starting in 1..5: the partial first line is skipped, the one at 4 is ours.
        assert_eq!(read_all(&p, 1, 5, 2), vec![(4, "".into())]);
        assert_eq!(read_all(&p, 4, 9, 2), vec![(4, "".into()), (5, "cd".into()), (8, "last".into())]);
        assert_eq!(read_all(&p, 9, u64::MAX, 2), vec![]);
        assert_eq!(line_number(&p, 5).unwrap(), 3);
        assert_eq!(line_number(&p, 0).unwrap(), 1);
    }

    #[test]
    fn reopening_at_the_resume_offset_returns_exactly_the_rest() {
        let dir = temp_dir("lines-resume");
        let p = dir.join("a.txt");
        std::fs::write(&p, "one\r\ntwo\n\nthree\nfour").unwrap();
        let all = read_all(&p, 2, 16, 3);
        assert_eq!(all.iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>(), ["two", "", "three"]);
        for k in 0..=all.len() {
            let mut r = LineReader::open(&p, 2, 16).unwrap();
            assert_eq!(r.resume_offset(), 2, "before the partial first line is skipped");
            let mut got = 0;
            while got < k {
                match r.next_line() {
                    Next::Line { .. } => got += 1,
                    Next::NeedData => {
                        r.fill(2).unwrap();
                    }
                    Next::Done => break,
                }
            }
            let at = r.resume_offset();
            assert_eq!(read_all(&p, at, 16, 4), all[k..], "after {k} lines, resuming at {at}");
        }
    }
}
