//! Every example in `examples/custom/` survives `eddy chaos`: each `*_chaos.yaml` runs through the real
//! `eddy-custom chaos` with a fixed seed, and must exit 0 with every sink `exactly-once: OK`, having
//! fired the faults it planned (kills in every phase, panics inside the custom operators, failed
//! checkpoint writes, lost acknowledgements), so a quiet run cannot pass. The fraud example also survives
//! whole-process SIGKILLs (`--kill-process`), and the TCP word count reads a loopback server that serves
//! the same lines to every connection, as `tcp_lines` needs to restore.
//!
//! Each job's generator (or the TCP server) is paced, so a run lasts about 1.5 s whatever the machine,
//! and the periodic faults, due within its first second, find it running.
mod support;

use eddy_examples::part_files;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use support::{eddy_custom, temp_dir};

/// `eddy-custom chaos FILE --seed 42 --workdir DIR ARGS...`: (exit code, the report, the work directory).
fn chaos(file: &str, args: &[&str]) -> (i32, String, PathBuf) {
    let work = temp_dir("chaos").join("work");
    let work_arg = work.display().to_string();
    let mut all = vec!["chaos", file, "--seed", "42", "--workdir", &work_arg];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = eddy_custom(&all);
    println!("{stdout}");
    // The report is what a failure needs; the log tail says why a run could not be carried out.
    let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
    (code, format!("{stdout}\n--- stderr (last lines, newest first):\n{}", tail.join("\n")), work)
}

/// From the report's "faults by plan entry" section: how often plan entry `entry` (`#1 kill_task`) fired
/// and in which phases (`processing 3, snapshot 2, ...`).
fn fired(report: &str, entry: &str) -> (u64, String) {
    let prefix = format!("  {entry}: fired ");
    let Some(line) = report.lines().find(|l| l.starts_with(&prefix)) else {
        panic!("no `{entry}` in the report:\n{report}")
    };
    let rest = &line[prefix.len()..];
    let n = rest.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
    (n, rest.to_string())
}

/// The restarts of an in-process run under faults.
fn restarts(report: &str) -> u64 {
    report
        .lines()
        .find(|l| l.starts_with("run under faults: finished in "))
        .and_then(|l| l.split("; ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no restarts in the report:\n{report}"))
}

/// Exit 0, the overall result and every sink listed as exactly-once with some records.
fn assert_ok(code: i32, report: &str, sinks: &[&str]) {
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("\nresult: OK ("), "{report}");
    for sink in sinks {
        let line = format!("  {sink}: exactly-once: OK (");
        assert!(report.contains(&line), "{sink} is not exactly-once:\n{report}");
        assert!(!report.contains(&format!("{line}0 records clean")), "{sink} wrote nothing:\n{report}");
    }
}

/// Every phase a periodic kill cycles through shows up among those it fired in.
fn assert_every_phase(entry: &str, report: &str) {
    let (n, phases) = fired(report, entry);
    assert!(n >= 4, "{entry} fired {n} times:\n{report}");
    for phase in ["processing", "snapshot", "restore", "commit"] {
        assert!(phases.contains(phase), "{entry}: no kill in the {phase} phase:\n{report}");
    }
}

/// The lines of the visible part files of a directory, sorted.
fn records(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("list the output").path();
        if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("part")) {
            let text = std::fs::read_to_string(&path).expect("read a part file");
            lines.extend(text.lines().map(String::from));
        }
    }
    lines.sort();
    lines
}

#[test]
fn fraud_detector_and_part_files_survive_kills_panics_and_checkpoint_failures() {
    let (code, report, _) = chaos("examples/custom/fraud_chaos.yaml", &[]);
    assert_ok(code, &report, &["out"]);
    assert_every_phase("#1 kill_task", &report);
    assert_eq!(fired(&report, "#2 panic_in").0, 2, "panics inside fraud_detector:\n{report}");
    assert!(report.lines().any(|l| l.contains("#2 panic_in") && l.contains(" alerts[")), "{report}");
    assert!(fired(&report, "#3 fail_checkpoint_storage").0 >= 1, "{report}");
    assert!(fired(&report, "#4 drop_checkpoint_ack").0 >= 1, "{report}");
    assert!(restarts(&report) >= 6, "{report}");
}

#[test]
fn fraud_detector_and_part_files_survive_process_kills() {
    let (code, report, _) = chaos("examples/custom/fraud_chaos.yaml", &["--kill-process=2"]);
    assert_ok(code, &report, &["out"]);
    assert!(report.contains("#1 kill_process (SIGKILL) 2 time(s)"), "{report}");
    // The first kill lands for sure: a child cannot get through the paced input before it.
    let kills = report.lines().filter(|l| l.contains(" kill_process ") && l.contains("eddy run (pid")).count();
    assert!(kills >= 1, "{report}");
    assert!(report.contains(": restored checkpoint "), "a child restored a checkpoint:\n{report}");
}

#[test]
fn dedup_survives_kills_panics_delays_and_checkpoint_failures() {
    let (code, report, _) = chaos("examples/custom/dedup_chaos.yaml", &[]);
    assert_ok(code, &report, &["out"]);
    assert_every_phase("#1 kill_task", &report);
    assert_eq!(fired(&report, "#2 panic_in").0, 2, "panics inside dedup:\n{report}");
    assert_eq!(fired(&report, "#3 delay_task").0, 2, "{report}");
    assert!(fired(&report, "#4 fail_checkpoint_storage").0 >= 1, "{report}");
}

#[test]
fn a_custom_window_survives_like_the_builtin_one() {
    let (code, report, work) = chaos("examples/custom/windows_chaos.yaml", &[]);
    assert_ok(code, &report, &["custom_counts", "builtin_counts"]);
    assert_every_phase("#1 kill_task", &report);
    assert_eq!(fired(&report, "#2 kill_task").0, 3, "kills of tumbling_count:\n{report}");
    assert_eq!(fired(&report, "#3 panic_in").0, 2, "panics inside tumbling_count:\n{report}");
    assert!(fired(&report, "#4 drop_checkpoint_ack").0 >= 1, "{report}");
    // Under faults too, the hand-written window wrote exactly what the built-in one did.
    let chaos = work.join("chaos");
    let custom = records(&chaos.join("custom_counts"));
    assert!(custom.len() > 1000, "{} windows", custom.len());
    assert_eq!(custom, records(&chaos.join("builtin_counts")));
}

/// Lines sent to every connection, then the connection is closed.
const LINES: usize = 30_000;
/// They go out in this many writes, with a pause between two: about 1.2 s per connection.
const WRITES: usize = 100;
const PACE: Duration = Duration::from_millis(12);

fn line(i: usize) -> String {
    format!("w{} v{} the Quick fox\n", i % 97, (i * 7) % 101)
}

/// A loopback server that sends the same paced lines to every connection, as `tcp_lines` expects of a
/// server (a restored source reconnects and skips the lines it had consumed). Dropping it stops it.
struct LineServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl LineServer {
    fn start() -> LineServer {
        let text: Arc<Vec<u8>> = Arc::new((0..LINES).map(line).collect::<String>().into_bytes());
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("the server's address");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let acceptor = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let text = text.clone();
                std::thread::spawn(move || {
                    // Writes split lines anywhere; a write fails once a killed source's socket is gone.
                    for chunk in text.chunks(text.len().div_ceil(WRITES)) {
                        if conn.write_all(chunk).is_err() {
                            return;
                        }
                        std::thread::sleep(PACE);
                    }
                });
            }
        });
        LineServer { addr, stop, acceptor: Some(acceptor) }
    }
}

impl Drop for LineServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the acceptor, which then sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

#[test]
fn tcp_source_and_part_files_survive_kills_and_checkpoint_failures() {
    let server = LineServer::start();
    let address = format!("sources.lines.config.address={}", server.addr);
    let (code, report, work) = chaos("examples/custom/tcp_wordcount_chaos.yaml", &["--set", &address]);
    drop(server);
    assert_ok(code, &report, &["out"]);
    assert_eq!(fired(&report, "#1 kill_task").0, 2, "kills of the tcp_lines source:\n{report}");
    assert_eq!(fired(&report, "#2 kill_task").0, 2, "{report}");
    assert!(fired(&report, "#3 fail_checkpoint_storage").0 >= 1, "{report}");
    // Not only equal to the clean run: right.
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for i in 0..LINES {
        for word in line(i).split_whitespace() {
            *expected.entry(word.to_lowercase()).or_default() += 1;
        }
    }
    let counts: BTreeMap<String, i64> = part_files::read_dir(&work.join("chaos/out"))
        .expect("read the output under faults")
        .iter()
        .map(|r| (r["word"].as_str().unwrap_or_default().to_string(), r["count"].as_i64().unwrap_or(-1)))
        .collect();
    assert_eq!(counts, expected);
}
