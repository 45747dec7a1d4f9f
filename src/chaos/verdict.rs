//! The verdict for one sink: its output under faults compared with the clean run's, as multisets of
//! records (lines), with a readable diff of the first differing records.
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Differing records shown per category.
pub const SHOWN: usize = 5;

/// How an output compares with the clean one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The same multiset of records.
    ExactlyOnce,
    /// Only extra copies of records the clean run also wrote.
    Duplicates,
    /// Only records missing.
    Lost,
    /// Anything else: records the clean run never wrote, or some lost and some extra.
    Incorrect,
}

impl Verdict {
    /// As printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::ExactlyOnce => "exactly-once: OK",
            Verdict::Duplicates => "duplicates",
            Verdict::Lost => "lost",
            Verdict::Incorrect => "incorrect",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record whose count differs between the runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// The record (one output line).
    pub record: String,
    /// Copies in the clean output.
    pub clean: u64,
    /// Copies in the output under faults.
    pub chaos: u64,
}

/// The comparison of one sink's outputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkVerdict {
    /// The sink node.
    pub sink: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Records in the clean output.
    pub clean_records: usize,
    /// Records in the output under faults.
    pub chaos_records: usize,
    /// Records with fewer copies under faults (sorted).
    pub missing: Vec<Difference>,
    /// Records with more copies under faults (sorted), including ones the clean run never wrote.
    pub extra: Vec<Difference>,
}

impl SinkVerdict {
    /// Records lost in all (counting copies).
    pub fn lost(&self) -> u64 {
        self.missing.iter().map(|d| d.clean - d.chaos).sum()
    }

    /// Extra copies in all.
    pub fn surplus(&self) -> u64 {
        self.extra.iter().map(|d| d.chaos - d.clean).sum()
    }
}

/// Compares two outputs as multisets.
pub fn compare(sink: &str, clean: &[String], chaos: &[String]) -> SinkVerdict {
    let mut counts: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for r in clean {
        counts.entry(r).or_default().0 += 1;
    }
    for r in chaos {
        counts.entry(r).or_default().1 += 1;
    }
    let mut missing = Vec::new();
    let mut extra = Vec::new();
    for (record, (a, b)) in counts {
        let d = Difference { record: record.to_string(), clean: a, chaos: b };
        if a > b {
            missing.push(d);
        } else if b > a {
            extra.push(d);
        }
    }
    let verdict = match (missing.is_empty(), extra.is_empty()) {
        (true, true) => Verdict::ExactlyOnce,
        (true, false) if extra.iter().all(|d| d.clean > 0) => Verdict::Duplicates,
        (false, true) => Verdict::Lost,
        _ => Verdict::Incorrect,
    };
    SinkVerdict {
        sink: sink.to_string(),
        verdict,
        clean_records: clean.len(),
        chaos_records: chaos.len(),
        missing,
        extra,
    }
}

impl fmt::Display for SinkVerdict {
    /// The verdict line and, when it is not OK, the first differing records of each kind.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} ({} records clean, {} under faults",
            self.sink, self.verdict, self.clean_records, self.chaos_records
        )?;
        if self.verdict != Verdict::ExactlyOnce {
            write!(f, "; {} lost, {} extra", self.lost(), self.surplus())?;
        }
        writeln!(f, ")")?;
        let duplicated: Vec<&Difference> = self.extra.iter().filter(|d| d.clean > 0).collect();
        let unexpected: Vec<&Difference> = self.extra.iter().filter(|d| d.clean == 0).collect();
        let groups: [(&str, char, Vec<&Difference>); 3] = [
            ("lost (in the clean output, missing under faults)", '-', self.missing.iter().collect()),
            ("duplicated", '+', duplicated),
            ("unexpected (never in the clean output)", '+', unexpected),
        ];
        for (title, sign, diffs) in groups {
            if diffs.is_empty() {
                continue;
            }
            writeln!(f, "    {title}: {}", diffs.len())?;
            for d in diffs.iter().take(SHOWN) {
                writeln!(f, "      {sign} {}    (clean x{}, under faults x{})", d.record, d.clean, d.chaos)?;
            }
            if diffs.len() > SHOWN {
                writeln!(f, "      ... and {} more", diffs.len() - SHOWN)?;
            }
        }
        Ok(())
    }
}

/// Reads a sink's committed output as [`OutputFiles`](eddy_api::OutputFiles) describes it: the file
/// itself, or every visible `part*` file of a directory (hidden in-progress and pending files are not
/// output), without the first `header_lines` lines of each file.
pub fn read_output(path: &Path, header_lines: usize) -> io::Result<Vec<String>> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut v = Vec::new();
        for e in std::fs::read_dir(path)? {
            let e = e?;
            if e.file_name().to_string_lossy().starts_with("part") && e.file_type()?.is_file() {
                v.push(e.path());
            }
        }
        v.sort();
        v
    } else if path.exists() {
        vec![path.to_path_buf()]
    } else {
        Vec::new()
    };
    let mut lines = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        lines.extend(text.lines().skip(header_lines).filter(|l| !l.is_empty()).map(String::from));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn equal_multisets_in_any_order_are_exactly_once() {
        let r = compare("out", &v(&["a", "b", "b", "c"]), &v(&["b", "c", "a", "b"]));
        assert_eq!(r.verdict, Verdict::ExactlyOnce);
        assert_eq!(r.to_string(), "out: exactly-once: OK (4 records clean, 4 under faults)\n");
    }

    #[test]
    fn extra_copies_are_duplicates_and_named() {
        let r = compare("out", &v(&["a", "b"]), &v(&["a", "b", "b", "a", "a"]));
        assert_eq!(r.verdict, Verdict::Duplicates);
        assert_eq!(r.surplus(), 3);
        let text = r.to_string();
        assert!(text.contains("out: duplicates (2 records clean, 5 under faults; 0 lost, 3 extra)"), "{text}");
        assert!(text.contains("duplicated: 2\n      + a    (clean x1, under faults x3)\n      + b"), "{text}");
    }

    #[test]
    fn missing_records_are_lost_and_named() {
        let r = compare("out", &v(&["a", "b", "b", "c"]), &v(&["a", "b"]));
        assert_eq!(r.verdict, Verdict::Lost);
        assert_eq!(r.lost(), 2);
        let text = r.to_string();
        assert!(text.contains("lost (in the clean output, missing under faults): 2"), "{text}");
        assert!(text.contains("- b    (clean x2, under faults x1)"), "{text}");
        assert!(text.contains("- c    (clean x1, under faults x0)"), "{text}");
    }

    #[test]
    fn changed_records_are_incorrect() {
        // An aggregate that lost an input: its result changed.
        let r = compare("totals", &v(&[r#"{"k":1,"n":3}"#]), &v(&[r#"{"k":1,"n":2}"#]));
        assert_eq!(r.verdict, Verdict::Incorrect);
        let text = r.to_string();
        assert!(text.contains(r#"- {"k":1,"n":3}"#), "{text}");
        assert!(text.contains("unexpected (never in the clean output): 1"), "{text}");
        // Only unexpected records (nothing lost) is incorrect too.
        assert_eq!(compare("o", &v(&["a"]), &v(&["a", "z"])).verdict, Verdict::Incorrect);
        // Lost and duplicated at once.
        assert_eq!(compare("o", &v(&["a", "b"]), &v(&["a", "a"])).verdict, Verdict::Incorrect);
    }

    #[test]
    fn long_diffs_are_cut() {
        let clean: Vec<String> = (0..20).map(|i| format!("r{i:02}")).collect();
        let r = compare("o", &clean, &[]);
        let text = r.to_string();
        assert!(text.contains("- r00") && text.contains("- r04") && !text.contains("- r05"), "{text}");
        assert!(text.contains("... and 15 more"), "{text}");
    }

    #[test]
    fn reads_part_files_and_skips_hidden_files_and_csv_headers() {
        let dir = std::env::temp_dir().join(format!("eddy-verdict-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("part-0-a.csv"), "k,n\n1,2\n3,4\n").unwrap();
        std::fs::write(dir.join("part-1-b.csv"), "k,n\n5,6\n").unwrap();
        std::fs::write(dir.join(".part-1-c.csv.inprogress"), "k,n\n7,8\n").unwrap();
        let mut got = read_output(&dir, 1).unwrap();
        got.sort();
        assert_eq!(got, v(&["1,2", "3,4", "5,6"]));
        assert_eq!(read_output(&dir, 0).unwrap().len(), 5);
        assert!(read_output(&dir.join("missing"), 0).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
