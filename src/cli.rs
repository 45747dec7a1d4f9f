//! The `eddy` command line. [`Cli`] is also the entry point for a custom binary that registers its own
//! operators: `fn main() -> ExitCode { eddy::Cli::new().with(|r| { r.operator(...); }).run() }`.
mod chaos;
mod checkpoints;
mod progress;

use crate::http::{self, client, LogicalNodeInfo, Server};
use crate::job;
use clap::{Parser, Subcommand, ValueEnum};
use eddy_actors::coordinator::JobHandle;
use eddy_api::Registry;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

const EXAMPLES: &str = "\
Examples:
  eddy run examples/quickstart.yaml
  eddy run job.yaml --set parallelism=4 --set sources.bids.config.path=data/bids.csv
  eddy run job.yaml --listen 0.0.0.0:8081        (with EDDY_TOKEN set: a token is required off loopback)
  eddy list;  eddy stop;  eddy cancel --url http://10.0.0.5:8081
  eddy validate job.yaml
  eddy graph job.yaml --dot | dot -Tsvg > job.svg
  eddy chaos examples/chaos.yaml --seed 7          (clean run vs run under injected faults)

A running job serves its dashboard and API on http://127.0.0.1:8081/ (see --listen, --no-http).
Logs go to stderr; set EDDY_LOG (e.g. EDDY_LOG=info or EDDY_LOG=eddy_actors=debug) for more.";

/// The URL `eddy list|stop|cancel|savepoint` talk to unless told otherwise.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8081";

#[derive(Parser)]
#[command(name = "eddy", version, about = "Stateful stream processing: run YAML dataflow topologies", after_help = EXAMPLES)]
struct Args {
    /// Log format on stderr: `human` (coloured on a terminal) or `json` (one object per line).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

/// Where a running job's web server is, for the client commands.
#[derive(clap::Args)]
struct Remote {
    /// Base URL of the job's web server.
    #[arg(long, default_value = DEFAULT_URL)]
    url: String,
    /// Bearer token, if the job requires one (default: $EDDY_TOKEN).
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a job until its inputs end (bounded) or it is stopped.
    Run {
        /// The job file (YAML).
        file: PathBuf,
        /// Override a value of the job file, e.g. `parallelism=4` or `sources.bids.config.path=x.csv`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Print nothing on success.
        #[arg(long, short)]
        quiet: bool,
        /// Serve the dashboard and API on this address [default: 127.0.0.1:8081, or a free port if that
        /// one is taken]; port 0 picks a free port. A non-loopback address requires a token.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Do not start the web server.
        #[arg(long, conflicts_with_all = ["listen", "linger"])]
        no_http: bool,
        /// Bearer token every HTTP request must carry (default: $EDDY_TOKEN; prefer the variable, since
        /// command lines are visible to other users).
        #[arg(long, value_name = "TOKEN")]
        token: Option<String>,
        /// After the job ends, keep serving its final state until `eddy stop` or `eddy cancel`.
        #[arg(long)]
        linger: bool,
        /// Resume from a checkpoint or savepoint: `latest` (the newest complete checkpoint in the job's
        /// `checkpoints.storage`), a directory under it (`chk-0000000007`), or an absolute path or URL (e.g.
        /// a savepoint taken with `eddy savepoint --dir`).
        #[arg(long, value_name = "PATH|latest")]
        restore: Option<String>,
        /// With --restore: drop the state of nodes the job no longer has instead of refusing.
        #[arg(long, requires = "restore")]
        allow_non_restored_state: bool,
    },
    /// Check a job file: every problem is reported with its line and column.
    Validate {
        /// The job file (YAML).
        file: PathBuf,
        /// Override a value of the job file.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Print the physical plan: task chains, parallelism and edge partitioning.
    Graph {
        /// The job file (YAML).
        file: PathBuf,
        /// Print Graphviz DOT instead of text.
        #[arg(long)]
        dot: bool,
        /// Override a value of the job file.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// List the job served at --url: id, name, state, start, duration.
    List(Remote),
    /// Stop the job served at --url: sources end their input and the job drains; with --savepoint it
    /// takes a savepoint and stops there, to be resumed with `eddy run --restore <savepoint>`.
    Stop {
        #[command(flatten)]
        remote: Remote,
        /// Take a savepoint first and stop right after it.
        #[arg(long)]
        savepoint: bool,
        /// With --savepoint: write it under this location (file:///path, s3://bucket/prefix or a path)
        /// instead of the job's checkpoint storage.
        #[arg(long, value_name = "URL", requires = "savepoint")]
        dir: Option<String>,
    },
    /// Cancel the job served at --url: its tasks stop at once and `eddy run` exits with an error.
    Cancel(Remote),
    /// Take a savepoint of the job served at --url and print where it is.
    Savepoint {
        #[command(flatten)]
        remote: Remote,
        /// Write it under this location (file:///path, s3://bucket/prefix or a path) instead of the
        /// job's checkpoint storage; it is self-contained and is restored with `eddy run --restore`.
        #[arg(long, value_name = "URL")]
        dir: Option<String>,
    },
    /// List the checkpoints and savepoints in a storage location, or verify one against a job.
    Checkpoints {
        /// The storage: a URL (file:///path, s3://bucket/prefix, memory://name) or a path.
        storage: String,
        /// Check that this checkpoint or savepoint (a directory under the storage, or `latest`) can be
        /// restored into --job, without running anything.
        #[arg(long, value_name = "PATH|latest", requires = "job")]
        verify: Option<String>,
        /// The job file to verify against.
        #[arg(long, value_name = "FILE")]
        job: Option<PathBuf>,
        /// Store options for s3, e.g. `endpoint=http://127.0.0.1:9000` or `region=eu-west-1`.
        #[arg(long = "option", value_name = "KEY=VALUE")]
        options: Vec<String>,
    },
    /// Run a bounded job clean, then under seeded injected faults (the `chaos:` section or --fault),
    /// and compare the outputs of its sinks (`file`, and custom sinks that implement `output_files`);
    /// exit 0 only when they match and every fault fired.
    Chaos {
        /// The job file (YAML); it needs `checkpoints:` and a bounded input.
        file: PathBuf,
        /// Seed of the fault plan (default: `chaos.seed`, else a fresh one, printed).
        #[arg(long)]
        seed: Option<u64>,
        /// A fault, replacing the file's `chaos.faults`, e.g. `--fault "kill_task: any, every: 2s"`;
        /// repeatable.
        #[arg(long = "fault", value_name = "SPEC")]
        fault: Vec<String>,
        /// Kill the whole `eddy run` process with SIGKILL at seeded moments (N times, default 3) and
        /// restart it with `--restore latest`, instead of injecting faults in-process.
        #[arg(long, value_name = "N", num_args = 0..=1, require_equals = true,
              default_missing_value = "3")]
        kill_process: Option<u64>,
        /// Override a value of the job file (both runs).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Where both runs write their outputs and checkpoints [default: a fresh temp directory].
        #[arg(long, value_name = "DIR")]
        workdir: Option<PathBuf>,
    },
}

/// The `eddy` command line over a registry of node types.
pub struct Cli {
    registry: Registry,
}

impl Default for Cli {
    fn default() -> Self {
        Self::new()
    }
}

struct RunOptions {
    file: PathBuf,
    set: Vec<String>,
    quiet: bool,
    listen: Option<String>,
    no_http: bool,
    token: Option<String>,
    linger: bool,
    start: job::StartOptions,
}

impl Cli {
    /// A command line with every built-in operator and connector.
    pub fn new() -> Self {
        Cli { registry: crate::builtin_registry() }
    }

    /// Registers more node types (custom operators, sources, sinks).
    pub fn with(mut self, register: impl FnOnce(&mut Registry)) -> Self {
        register(&mut self.registry);
        self
    }

    /// Parses `std::env::args` and runs the command.
    pub fn run(self) -> ExitCode {
        let args = Args::parse();
        init_logging(args.log_format);
        // A panic in user code is caught at its task's boundary and fails (and restarts) the task; say
        // where it happened in the log, in the log's format, instead of the default stderr dump.
        std::panic::set_hook(Box::new(|info| tracing::error!(panic = %info, "panic")));
        match args.command {
            Command::Run { file, set, quiet, listen, no_http, token, linger, restore, allow_non_restored_state } => {
                let start = job::StartOptions { restore, allow_non_restored_state };
                self.run_job(RunOptions { file, set, quiet, listen, no_http, token, linger, start })
            }
            Command::Validate { file, set } => {
                match job::prepare(&file, &set, &self.registry).and_then(chaos_section) {
                    Ok(p) => {
                        println!("{}: ok ({} nodes, {} tasks)", file.display(), p.plan.nodes.len(), task_count(&p));
                        ExitCode::SUCCESS
                    }
                    Err(report) => {
                        eprintln!("{report}");
                        ExitCode::from(2)
                    }
                }
            }
            Command::Graph { file, dot, set } => match job::prepare(&file, &set, &self.registry) {
                Ok(p) => {
                    let out =
                        if dot { crate::plan::explain::dot(&p.graph) } else { crate::plan::explain::text(&p.graph) };
                    print!("{out}");
                    ExitCode::SUCCESS
                }
                Err(report) => {
                    eprintln!("{report}");
                    ExitCode::from(2)
                }
            },
            Command::List(r) => remote(&r, "GET", "api/v1/jobs", print_jobs),
            Command::Stop { remote: r, savepoint: false, .. } => remote(&r, "POST", "api/v1/job/stop", print_action),
            Command::Stop { remote: r, savepoint: true, dir } => {
                savepoint(&r, &with_dir("api/v1/job/stop?savepoint=true", dir.as_deref()))
            }
            Command::Cancel(r) => remote(&r, "POST", "api/v1/job/cancel", print_action),
            Command::Savepoint { remote: r, dir } => savepoint(&r, &with_dir("api/v1/job/savepoints", dir.as_deref())),
            Command::Checkpoints { storage, verify, job, options } => {
                checkpoints::command(&self.registry, &storage, &options, verify.as_deref(), job.as_deref())
            }
            Command::Chaos { file, seed, fault, kill_process, set, workdir } => {
                let opts = crate::chaos::ChaosOptions {
                    file,
                    overrides: set,
                    seed,
                    faults: fault,
                    kill_process,
                    workdir,
                    eddy_binary: None,
                };
                chaos::command(&self.registry, opts)
            }
        }
    }

    fn run_job(&self, o: RunOptions) -> ExitCode {
        let mut prepared = match job::prepare(&o.file, &o.set, &self.registry) {
            Ok(p) => p,
            Err(report) => {
                eprintln!("{report}");
                return ExitCode::from(2);
            }
        };
        match prepared.start(&o.start) {
            Ok(notes) => {
                for n in notes {
                    tracing::warn!("{n}");
                    if !o.quiet {
                        eprintln!("eddy: {n}");
                    }
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
        let handle = prepared.handle();
        let token = o.token.or_else(|| std::env::var("EDDY_TOKEN").ok()).filter(|t| !t.is_empty());
        let server = if o.no_http {
            None
        } else {
            let logical = LogicalNodeInfo::of_plan(&prepared.plan, &handle.status().graph);
            match start_server(o.listen.as_deref(), token, o.linger, handle.clone(), logical) {
                Ok(s) => {
                    tracing::info!(url = %format!("http://{}/", s.addr()), "web UI listening");
                    if !o.quiet {
                        eprintln!("eddy: web UI on http://{}/", s.addr());
                    }
                    Some(s)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            }
        };
        let bar = (!o.quiet && std::io::stderr().is_terminal() && handle.status().graph.bounded())
            .then(|| progress::Progress::start(handle.clone()));
        let result = prepared.run_with(&handle);
        drop(bar);
        let code = match result {
            Ok(summary) => {
                if !o.quiet {
                    let rss = peak_rss_mb().map(|mb| format!(", peak RSS {mb} MB")).unwrap_or_default();
                    eprintln!("{summary}{rss}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
        if let Some(server) = server {
            if o.linger {
                eprintln!(
                    "eddy: job {}; serving its final state on http://{}/ until `eddy stop` (--linger)",
                    handle.state(),
                    server.addr()
                );
                server.wait_for_release();
            }
            server.shutdown();
        }
        code
    }
}

/// Binds the listen address (falling back to a free port when the default one is taken) and starts the
/// web server.
fn start_server(
    listen: Option<&str>,
    token: Option<String>,
    linger: bool,
    handle: JobHandle,
    logical: Vec<LogicalNodeInfo>,
) -> Result<Server, http::HttpError> {
    let listener = match listen {
        Some(addr) => http::bind(addr, token.as_deref())?,
        None => match http::bind(http::DEFAULT_LISTEN, token.as_deref()) {
            Err(http::HttpError::Bind { source, .. }) if source.kind() == std::io::ErrorKind::AddrInUse => {
                tracing::warn!("{} is in use (another job?); serving on a free port instead", http::DEFAULT_LISTEN);
                http::bind("127.0.0.1:0", token.as_deref())?
            }
            other => other?,
        },
    };
    let options = http::Options { token, linger, ..http::Options::default() };
    Server::start(listener, handle, logical, options)
}

/// Sends one request to a job's server and prints the answer with `print`; exit 1 on any error.
fn remote(r: &Remote, method: &str, path: &str, print: fn(&serde_json::Value)) -> ExitCode {
    let token = r.token.clone().or_else(|| std::env::var("EDDY_TOKEN").ok()).filter(|t| !t.is_empty());
    let url = client::join(&r.url, path);
    let resp = match client::request(method, &url, token.as_deref(), None) {
        Ok(resp) => resp,
        Err(e) => {
            eprintln!("error: {e} (is a job running? `eddy run` serves on {DEFAULT_URL} unless told otherwise)");
            return ExitCode::FAILURE;
        }
    };
    let body = resp.json().unwrap_or(serde_json::Value::Null);
    if !(200..300).contains(&resp.status) {
        let msg = body.get("error").and_then(|e| e.as_str()).map_or_else(|| resp.body.trim().to_string(), String::from);
        eprintln!("error: {} ({})", msg, resp.status);
        return ExitCode::FAILURE;
    }
    print(&body);
    ExitCode::SUCCESS
}

/// `path` with `dir=<dir>` added to its query. A relative local path is made absolute first: the server
/// may run elsewhere.
fn with_dir(path: &str, dir: Option<&str>) -> String {
    let Some(dir) = dir else { return path.to_string() };
    let absolute = match std::path::Path::new(dir) {
        p if p.is_relative() && !dir.contains("://") => {
            std::env::current_dir().map(|cwd| cwd.join(p).display().to_string()).unwrap_or_else(|_| dir.to_string())
        }
        _ => dir.to_string(),
    };
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}dir={}", form_urlencoded::byte_serialize(absolute.as_bytes()).collect::<String>())
}

/// Triggers a savepoint (or a stop with one) and waits until it is complete; prints its location.
fn savepoint(r: &Remote, path: &str) -> ExitCode {
    let token = r.token.clone().or_else(|| std::env::var("EDDY_TOKEN").ok()).filter(|t| !t.is_empty());
    let latest =
        |body: &serde_json::Value| body.get("latest_savepoint").and_then(|s| s.get("id")).and_then(|v| v.as_u64());
    let get = || {
        client::request("GET", &client::join(&r.url, "api/v1/job/savepoints"), token.as_deref(), None)
            .ok()
            .and_then(|resp| resp.json().ok())
    };
    let before = get().as_ref().and_then(latest);
    let code = remote(r, "POST", path, print_action);
    if code != ExitCode::SUCCESS {
        return code;
    }
    for _ in 0..600 {
        std::thread::sleep(Duration::from_millis(100));
        let Some(body) = get() else {
            // A stopped job's server goes away once the savepoint is complete and the job has ended.
            println!("the job has ended; its savepoint is listed by `eddy checkpoints <storage>`");
            return ExitCode::SUCCESS;
        };
        if let Some(sp) = body.get("latest_savepoint").filter(|_| latest(&body) != before && latest(&body).is_some()) {
            let loc = sp.get("location").and_then(|v| v.as_str()).unwrap_or("-");
            println!("savepoint {} complete: {loc}", latest(&body).unwrap_or_default());
            return ExitCode::SUCCESS;
        }
    }
    eprintln!("error: the savepoint did not complete within 60s (see the job's log)");
    ExitCode::FAILURE
}

fn print_jobs(body: &serde_json::Value) {
    let jobs = body.get("jobs").and_then(|j| j.as_array()).cloned().unwrap_or_default();
    println!("{:<16}  {:<24}  {:<10}  {:<20}  {:>10}  {:>5}", "ID", "NAME", "STATE", "STARTED", "DURATION", "TASKS");
    for j in jobs {
        let s = |k: &str| j.get(k).and_then(|v| v.as_str()).unwrap_or("-").to_string();
        let started = j
            .get("start_time")
            .and_then(|v| v.as_u64())
            .map(|ms| humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string())
            .unwrap_or_else(|| "-".into());
        let duration = j
            .get("duration_ms")
            .and_then(|v| v.as_u64())
            .map(|ms| format!("{:.1}s", ms as f64 / 1e3))
            .unwrap_or_else(|| "-".into());
        let tasks = j.get("tasks").and_then(|v| v.as_u64()).unwrap_or(0);
        println!(
            "{:<16}  {:<24}  {:<10}  {:<20}  {:>10}  {:>5}",
            s("id"),
            s("name"),
            s("state"),
            started,
            duration,
            tasks
        );
    }
}

fn print_action(body: &serde_json::Value) {
    let s = |k: &str| body.get(k).and_then(|v| v.as_str()).unwrap_or("-").to_string();
    if body.get("released").and_then(|v| v.as_bool()) == Some(true) {
        println!("job `{}` had already {}; its lingering `eddy run` exits now", s("job"), s("state"));
    } else {
        println!("job `{}` ({}): {}", s("job"), s("id"), s("state"));
    }
    if let Some(note) = body.get("note").and_then(|v| v.as_str()) {
        println!("note: {note}");
    }
}

/// Checks a job's `chaos:` section (only `eddy chaos` uses it, but `eddy validate` reports its problems).
fn chaos_section(p: job::PreparedJob) -> Result<job::PreparedJob, crate::config::Report> {
    let Some(section) = p.spec.section("chaos") else { return Ok(p) };
    let nodes: Vec<&str> = p.spec.nodes.iter().map(|n| n.name.value.as_str()).collect();
    match crate::chaos::plan::read_section(section, &nodes) {
        Ok(_) => Ok(p),
        Err(d) => Err(crate::config::Report::new(p.spec.file.clone(), p.spec.source.clone(), d)),
    }
}

fn task_count(p: &job::PreparedJob) -> usize {
    p.graph.vertices.iter().map(|v| v.parallelism).sum()
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EDDY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
        LogFormat::Human => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
    };
}

/// Peak resident memory of this process (Linux), for the run summary.
pub fn peak_rss_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}
