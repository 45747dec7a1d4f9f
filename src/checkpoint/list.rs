//! Listing what a store holds (checkpoints and savepoints, complete or not, with sizes), printing it as
//! a table, and choosing which checkpoints retention may delete ([`retention_victims`], pure).
use super::load::METADATA_FILE;
use super::store::OpendalStore;
use eddy_actors::checkpoint::{CheckpointMetadata, StoreError};
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};
use tokio::task::JoinSet;

/// Checkpoint or savepoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckpointKind {
    /// Taken periodically; retention deletes old ones.
    Checkpoint,
    /// Taken on request; never deleted by retention.
    Savepoint,
}

impl CheckpointKind {
    /// `checkpoint` or `savepoint`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointKind::Checkpoint => "checkpoint",
            CheckpointKind::Savepoint => "savepoint",
        }
    }
}

/// The directory name of checkpoint `id`: `chk-0000000007`.
pub fn checkpoint_dir(id: u64) -> String {
    format!("chk-{id:010}")
}

/// The directory name of savepoint `id` taken at `time_ms`: `savepoint-7-1700000000000`.
pub fn savepoint_dir(id: u64, time_ms: u64) -> String {
    format!("savepoint-{id}-{time_ms}")
}

/// The id and kind a directory name stands for (`chk-<id>`, `savepoint-<id>-<ms>` or `savepoint-<id>`),
/// if any.
pub fn parse_dir_name(name: &str) -> Option<(u64, CheckpointKind)> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(id) = name.strip_prefix("chk-") {
        return digits(id).then(|| id.parse().ok()).flatten().map(|id| (id, CheckpointKind::Checkpoint));
    }
    let rest = name.strip_prefix("savepoint-")?;
    let (id, ms) = rest.split_once('-').unwrap_or((rest, "0"));
    if !digits(id) || !digits(ms) {
        return None;
    }
    id.parse().ok().map(|id| (id, CheckpointKind::Savepoint))
}

/// One checkpoint or savepoint directory of a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointListing {
    /// Checkpoint id.
    pub id: u64,
    /// Checkpoint or savepoint.
    pub kind: CheckpointKind,
    /// Directory name, relative to the store's root.
    pub dir: String,
    /// When it was triggered (from the metadata; else the newest file's modification), ms since the epoch.
    pub time_ms: Option<u64>,
    /// Bytes of every file in the directory.
    pub size: u64,
    /// Task files: as listed in the metadata when complete, else the files present.
    pub task_files: usize,
    /// Has a readable `_metadata`.
    pub complete: bool,
    /// The job's final checkpoint (every source ended).
    pub finished: bool,
    /// Why the metadata could not be read, when it exists but is damaged.
    pub problem: Option<String>,
}

/// Lists the checkpoints and savepoints under the store's root, sorted by id (checkpoints before
/// savepoints of the same id). One recursive listing plus one read per `_metadata`.
pub async fn list_checkpoints(store: &OpendalStore) -> Result<Vec<CheckpointListing>, StoreError> {
    let mut dirs: BTreeMap<String, CheckpointListing> = BTreeMap::new();
    for f in store.list_files_recursive("").await? {
        let Some((dir, file)) = f.name.split_once('/') else { continue };
        let Some((id, kind)) = parse_dir_name(dir) else { continue };
        let l = dirs.entry(dir.to_string()).or_insert_with(|| CheckpointListing {
            id,
            kind,
            dir: dir.to_string(),
            time_ms: None,
            size: 0,
            task_files: 0,
            complete: false,
            finished: false,
            problem: None,
        });
        l.size += f.size;
        l.time_ms = l.time_ms.max(f.modified_ms);
        if file == METADATA_FILE {
            l.complete = true;
        } else {
            l.task_files += 1;
        }
    }

    let mut set = JoinSet::new();
    for l in dirs.values().filter(|l| l.complete) {
        let (store, dir) = (store.clone(), l.dir.clone());
        set.spawn(async move {
            let read = store.read_if_exists(&format!("{dir}/{METADATA_FILE}")).await;
            (dir, read)
        });
    }
    while let Some(joined) = set.join_next().await {
        let Ok((dir, read)) = joined else { continue };
        let Some(l) = dirs.get_mut(&dir) else { continue };
        let Some(bytes) = read? else {
            l.complete = false; // deleted since the listing
            continue;
        };
        match CheckpointMetadata::from_bytes(&bytes.to_bytes(), METADATA_FILE) {
            Ok(meta) => {
                l.time_ms = Some(meta.time_ms);
                l.task_files = meta.tasks.len();
                l.finished = meta.finished;
            }
            Err(e) => {
                l.complete = false;
                l.problem = Some(e.to_string());
            }
        }
    }
    let mut out: Vec<CheckpointListing> = dirs.into_values().collect();
    out.sort_by(|a, b| (a.id, a.kind, &a.dir).cmp(&(b.id, b.kind, &b.dir)));
    Ok(out)
}

/// An aligned text table of a listing (one line per directory, with a header).
pub fn format_listing(listing: &[CheckpointListing]) -> String {
    let header = ["ID", "KIND", "STATUS", "TIME (UTC)", "SIZE", "FILES", "DIRECTORY"];
    let rows: Vec<[String; 7]> = listing
        .iter()
        .map(|l| {
            let status = match (&l.problem, l.complete, l.finished) {
                (Some(_), _, _) => "damaged",
                (None, true, true) => "finished",
                (None, true, false) => "complete",
                (None, false, _) => "incomplete",
            };
            let time = l.time_ms.map_or_else(
                || "-".to_string(),
                |ms| humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string(),
            );
            [
                l.id.to_string(),
                l.kind.as_str().to_string(),
                status.to_string(),
                time,
                human_size(l.size),
                l.task_files.to_string(),
                l.dir.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 7]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            // Numbers right-aligned, text left-aligned; no trailing spaces on the last column.
            match i {
                0 | 4 | 5 => s.push_str(&format!("{c:>w$}  ")),
                6 => s.push_str(c),
                _ => s.push_str(&format!("{c:<w$}  ")),
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(header);
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5], &r[6]]);
    }
    out
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// The directories retention may delete: complete checkpoints older than the newest `retain` complete
/// ones (at least the newest is always kept), and incomplete checkpoint directories older than the
/// newest complete checkpoint (abandoned attempts). Never savepoints, never an id in `protected`
/// (e.g. a checkpoint being restored from or still pending). Sorted by id.
pub fn retention_victims(listing: &[CheckpointListing], retain: usize, protected: &[u64]) -> Vec<String> {
    let mut complete: Vec<&CheckpointListing> =
        listing.iter().filter(|l| l.kind == CheckpointKind::Checkpoint && l.complete).collect();
    complete.sort_by_key(|l| std::cmp::Reverse(l.id));
    let Some(newest) = complete.first().map(|l| l.id) else { return Vec::new() };
    let mut victims: Vec<&CheckpointListing> = complete.into_iter().skip(retain.max(1)).collect();
    victims.extend(listing.iter().filter(|l| l.kind == CheckpointKind::Checkpoint && !l.complete && l.id < newest));
    victims.retain(|l| !protected.contains(&l.id));
    victims.sort_by_key(|l| l.id);
    victims.into_iter().map(|l| l.dir.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, kind: CheckpointKind, complete: bool) -> CheckpointListing {
        CheckpointListing {
            id,
            kind,
            dir: match kind {
                CheckpointKind::Checkpoint => checkpoint_dir(id),
                CheckpointKind::Savepoint => savepoint_dir(id, 1_700_000_000_000),
            },
            time_ms: Some(1_700_000_000_000 + id * 1000),
            size: id * 1000,
            task_files: 2,
            complete,
            finished: false,
            problem: None,
        }
    }

    #[test]
    fn parses_directory_names() {
        assert_eq!(checkpoint_dir(7), "chk-0000000007");
        assert_eq!(parse_dir_name("chk-0000000007"), Some((7, CheckpointKind::Checkpoint)));
        assert_eq!(parse_dir_name("savepoint-7-1700000000000"), Some((7, CheckpointKind::Savepoint)));
        assert_eq!(parse_dir_name("savepoint-0000000007"), Some((7, CheckpointKind::Savepoint)));
        for bad in
            ["chk-", "chk-x1", "chk-1.tmp", "savepoint-", "savepoint--1", "savepoint-1-x", "savepoint-1-", "other"]
        {
            assert_eq!(parse_dir_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn retention_keeps_the_newest_savepoints_and_protected() {
        use CheckpointKind::*;
        let listing = vec![
            entry(1, Checkpoint, true),
            entry(2, Checkpoint, false), // abandoned
            entry(3, Checkpoint, true),
            entry(3, Savepoint, true),
            entry(4, Checkpoint, true),
            entry(5, Checkpoint, true),
            entry(6, Checkpoint, false), // in progress: newer than the newest complete
        ];
        assert_eq!(retention_victims(&listing, 2, &[]), ["chk-0000000001", "chk-0000000002", "chk-0000000003"]);
        assert_eq!(retention_victims(&listing, 2, &[1, 2]), ["chk-0000000003"]);
        assert_eq!(retention_victims(&listing, 10, &[]), ["chk-0000000002"]);
        // retain 0 still keeps the newest complete checkpoint.
        assert_eq!(retention_victims(&listing, 0, &[]).len(), 4);
        assert!(!retention_victims(&listing, 0, &[]).contains(&"chk-0000000005".to_string()));
        // Nothing complete: nothing is deleted (an incomplete one may be in progress).
        assert!(retention_victims(&[entry(1, Checkpoint, false), entry(2, Savepoint, true)], 1, &[]).is_empty());
    }

    #[test]
    fn formats_an_aligned_table() {
        let mut a = entry(3, CheckpointKind::Checkpoint, true);
        a.finished = true;
        let b = entry(12, CheckpointKind::Savepoint, true);
        let mut c = entry(13, CheckpointKind::Checkpoint, false);
        c.time_ms = None;
        let t = format_listing(&[a, b, c]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("ID  KIND        STATUS"), "{t}");
        assert!(lines[1].contains("finished") && lines[1].contains("2023-11-14T22:13:23Z"), "{t}");
        assert!(lines[1].contains("2.9 KiB"), "{t}");
        assert!(lines[3].contains("incomplete") && lines[3].contains(" - "), "{t}");
        let col = lines[0].find("DIRECTORY").unwrap();
        assert!(lines[1..].iter().all(|l| l[col..].starts_with("chk-") || l[col..].starts_with("savepoint-")), "{t}");
        assert!(lines.iter().all(|l| !l.ends_with(' ')));
    }
}
