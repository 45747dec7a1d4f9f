//! Helpers shared by the integration tests: temp dirs, running jobs in-process, reading outputs.
#![allow(dead_code)]
use eddy::api::Registry;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const BIDS: &str = "examples/data/bids.csv";
pub const WORDS: &str = "examples/data/words.txt";
pub const BID_SCHEMA: &str =
    "{ auction: int, bidder: int, price: int, channel: string, url: string, date_time: timestamp_ms, extra: string }";

/// A fresh, empty directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "eddy-it-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Validates, plans and runs a job from YAML text; panics with the rendered report on failure.
pub fn run_yaml(yaml: &str, overrides: &[&str]) -> eddy_actors::JobSummary {
    try_run_yaml(yaml, overrides).unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`run_yaml`], returning the error text instead.
pub fn try_run_yaml(yaml: &str, overrides: &[&str]) -> Result<eddy_actors::JobSummary, String> {
    let registry: Registry = eddy::builtin_registry();
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let job = eddy::job::prepare_str("test.yaml", yaml, &overrides, &registry).map_err(|r| r.to_string())?;
    job.run().map_err(|e| e.to_string())
}

/// Every line of a file, or of every part file in a directory.
pub fn read_lines(path: &Path) -> Vec<String> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut v: Vec<PathBuf> =
            std::fs::read_dir(path).expect("read dir").map(|e| e.expect("entry").path()).collect();
        v.sort();
        v
    } else {
        vec![path.to_path_buf()]
    };
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_else(|e| panic!("read {}: {e}", f.display()))
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// JSON lines parsed.
pub fn read_json(path: &Path) -> Vec<serde_json::Value> {
    read_lines(path).iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad json {l}: {e}"))).collect()
}

/// The bundled bids as (auction, bidder, price, channel) tuples.
pub fn bids() -> Vec<(i64, i64, i64, String)> {
    std::fs::read_to_string(BIDS)
        .expect("bids")
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].parse().unwrap(), f[1].parse().unwrap(), f[2].parse().unwrap(), f[3].to_string())
        })
        .collect()
}

/// Sorted canonical text of JSON rows, for order-insensitive comparison.
pub fn canonical(rows: &[serde_json::Value]) -> Vec<String> {
    let mut v: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    v.sort();
    v
}
