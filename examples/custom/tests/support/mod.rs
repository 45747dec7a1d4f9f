//! Helpers for the end-to-end tests: the `eddy-custom` binary run from the workspace root (where the
//! example YAMLs' relative paths point), temp dirs and JSON-lines output.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The workspace root: the examples' paths (`examples/custom/data/...`) are relative to it.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `eddy-custom` with `args` from the workspace root: (exit code, stdout, stderr).
pub fn eddy_custom(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_eddy-custom"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env_remove("EDDY_LOG")
        .output()
        .expect("run eddy-custom");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Runs a job with `eddy-custom run FILE --no-http --quiet --set ...`; panics with its stderr on failure.
pub fn run_job(file: &str, sets: &[String]) {
    let mut args = vec!["run", file, "--no-http", "--quiet"];
    for s in sets {
        args.push("--set");
        args.push(s);
    }
    let (code, stdout, stderr) = eddy_custom(&args);
    assert_eq!(code, 0, "eddy-custom run {file} failed:\n{stderr}\n{stdout}");
}

/// A fresh, empty directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "eddy-examples-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// The JSON lines of a file.
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
        .collect()
}

/// Rows as sorted text, for comparisons that do not depend on order.
pub fn sorted(rows: &[serde_json::Value]) -> Vec<String> {
    let mut v: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    v.sort();
    v
}
