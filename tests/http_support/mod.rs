//! Helpers for the web server tests: start `eddy run` as a child process on an ephemeral port, find the
//! address it prints, talk to it with `eddy::http::client`, and wait for conditions with a bounded number
//! of polls.
#![allow(dead_code)]
use eddy::http::client::{self, Response};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// Polls between tries of a condition.
pub const POLL: Duration = Duration::from_millis(100);
/// Tries before giving up (with [`POLL`]: 30 s).
pub const TRIES: usize = 300;

/// A fresh, empty directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "eddy-http-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Writes a job file and returns its path.
pub fn job_file(dir: &Path, yaml: &str) -> PathBuf {
    let path = dir.join("job.yaml");
    std::fs::write(&path, yaml).expect("write job file");
    path
}

/// An `eddy` command with a clean environment for tokens.
pub fn eddy() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_eddy"));
    c.env_remove("EDDY_TOKEN").env_remove("EDDY_LOG").env("NO_COLOR", "1");
    c
}

/// A running `eddy run` and the base URL of its web server.
pub struct RunningJob {
    child: Child,
    /// `http://127.0.0.1:PORT` (also when it listens on 0.0.0.0).
    pub url: String,
    stderr: Arc<Mutex<String>>,
    stderr_done: mpsc::Receiver<()>,
}

impl RunningJob {
    /// Starts `eddy run FILE ARGS...` and waits for its `web UI on` line.
    pub fn start(file: &Path, args: &[&str], env: &[(&str, &str)]) -> RunningJob {
        let mut cmd = eddy();
        cmd.arg("run").arg(file).args(args).stdout(Stdio::null()).stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start eddy run");
        let stderr = child.stderr.take().expect("stderr is piped");
        let text = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        let (done_tx, stderr_done) = mpsc::channel();
        let sink = text.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("web UI on http://").nth(1) {
                    let _ = addr_tx.send(rest.trim_end_matches('/').to_string());
                }
                let mut t = sink.lock().unwrap();
                t.push_str(&line);
                t.push('\n');
            }
            let _ = done_tx.send(());
        });
        let addr = match addr_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("eddy run printed no web UI address; stderr:\n{}", text.lock().unwrap());
            }
        };
        let port = addr.rsplit(':').next().expect("port in address");
        RunningJob { child, url: format!("http://127.0.0.1:{port}"), stderr: text, stderr_done }
    }

    /// The full URL of a path.
    pub fn at(&self, path: &str) -> String {
        client::join(&self.url, path)
    }

    /// GET a path.
    pub fn get(&self, path: &str, token: Option<&str>) -> Response {
        client::get(&self.at(path), token).unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// GET a path and parse the JSON body, expecting 200.
    pub fn json(&self, path: &str, token: Option<&str>) -> Value {
        let r = self.get(path, token);
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        r.json().unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {}", r.body))
    }

    /// POST to a path.
    pub fn post(&self, path: &str, token: Option<&str>) -> Response {
        client::post(&self.at(path), token).unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// Polls `f` until it returns Some, at most [`TRIES`] times.
    pub fn until<T>(&mut self, what: &str, mut f: impl FnMut(&RunningJob) -> Option<T>) -> T {
        for _ in 0..TRIES {
            if let Some(v) = f(self) {
                return v;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("eddy run exited ({status}) while waiting for {what}; stderr:\n{}", self.stderr());
            }
            std::thread::sleep(POLL);
        }
        panic!("gave up waiting for {what}; stderr:\n{}", self.stderr());
    }

    /// Waits until the job reports `state`.
    pub fn until_state(&mut self, state: &str, token: Option<&str>) -> Value {
        self.until(&format!("state {state}"), |j| {
            let v = j.json("api/v1/job", token);
            (v["state"] == state).then_some(v)
        })
    }

    /// Everything printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for the process to exit (bounded) and returns its status and complete stderr.
    pub fn wait(mut self) -> (ExitStatus, String) {
        for _ in 0..TRIES {
            if let Some(status) = self.child.try_wait().expect("poll child") {
                let _ = self.stderr_done.recv_timeout(Duration::from_secs(10));
                return (status, self.stderr());
            }
            std::thread::sleep(POLL);
        }
        let _ = self.child.kill();
        panic!("eddy run did not exit; stderr:\n{}", self.stderr());
    }
}

impl Drop for RunningJob {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The metrics of one node from `/api/v1/job/metrics`.
pub fn node<'a>(metrics: &'a Value, name: &str) -> &'a Value {
    metrics["nodes"]
        .as_array()
        .and_then(|ns| ns.iter().find(|n| n["node"] == name))
        .unwrap_or_else(|| panic!("node {name} in {metrics}"))
}
