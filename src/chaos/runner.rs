//! Runs a bounded job clean, then under the fault plan, and compares the outputs.
//!
//! The sinks compared are those whose builder says where their output is
//! ([`SinkBuilder::output_files`](eddy_api::SinkBuilder::output_files)): the built-in `file` sink and
//! any custom sink that implements it. Both runs get their own directory under the work directory: each
//! compared sink's path key and the checkpoint storage are overridden to `<workdir>/clean/...` and
//! `<workdir>/chaos/...` (and the redb state directory with them), so the runs never see each other's
//! files or the user's. The run under
//! faults is in-process, with a [`ChaosInjector`] on the job graph; with `--kill-process` it is a
//! sequence of child `eddy run` processes instead, each killed with SIGKILL at a seeded moment and
//! followed by one started with `--restore latest`, until one finishes.
use super::injector::{ChaosInjector, FiredFault, Tally};
use super::plan::{self, FaultSpec, Plan};
use super::report::{in_process_kinds, ChaosReport, Recovery, RunStats};
use super::verdict::{compare, read_output, SinkVerdict};
use crate::config::Report;
use crate::job::{self, SetupError, StartOptions};
use eddy_actors::coordinator::{now_ms, GraphInfo};
use eddy_actors::graph::ChainedSink;
use eddy_actors::restart::RestartStrategy;
use eddy_api::registry::NodeKind;
use eddy_api::{Diagnostics, OutputFiles, Registry};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Restarts under faults when the job has no `restart:`: many, quickly, so the plan rather than the
/// strategy decides how often the job fails.
pub const DEFAULT_RESTART: RestartStrategy =
    RestartStrategy::FixedDelay { attempts: 1000, delay: Duration::from_millis(10) };

/// Process kills with `--kill-process` and no count.
pub const DEFAULT_PROCESS_KILLS: u64 = 3;

/// Child processes started at most beyond the planned kills (each after a kill that landed).
const MAX_EXTRA_CHILDREN: u64 = 3;

/// What to run and how.
#[derive(Clone, Debug, Default)]
pub struct ChaosOptions {
    /// The job file.
    pub file: PathBuf,
    /// `--set` overrides, applied to both runs.
    pub overrides: Vec<String>,
    /// The seed (default: the section's, else one from the clock, printed).
    pub seed: Option<u64>,
    /// `--fault` flags; when given they replace the section's faults.
    pub faults: Vec<String>,
    /// Kill the whole process this many times instead of injecting faults in-process.
    pub kill_process: Option<u64>,
    /// Where both runs write (default: a fresh directory under the system's temp dir).
    pub workdir: Option<PathBuf>,
    /// The `eddy` binary for `--kill-process` children (default: the running executable).
    pub eddy_binary: Option<PathBuf>,
}

/// Why a chaos run could not be carried out (as opposed to a run whose verdict is bad).
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    /// The job file, overrides, `chaos:` section or `--fault` flags are wrong.
    #[error("{0}")]
    Config(Report),
    /// A source never ends, so there is no final output to compare.
    #[error("job `{job}` is unbounded (source {sources} never ends): `eddy chaos` compares the outputs of finished runs; bound the input (e.g. `count:` on a generator)")]
    Unbounded {
        /// Job name.
        job: String,
        /// The unbounded sources, comma-separated.
        sources: String,
    },
    /// Recovery needs checkpoints.
    #[error("job `{0}` has no `checkpoints:` section: the run under faults restores from checkpoints (add e.g. `checkpoints: {{ interval: 100ms }}`)")]
    NoCheckpoints(String),
    /// Nothing to compare: no sink says where its output is.
    #[error(
        "job `{job}` has no sink whose output can be compared (its sinks: {sinks}): `eddy chaos` compares the \
         sinks that say where their output is, such as `file`; a custom sink type becomes comparable by \
         implementing `SinkBuilder::output_files`"
    )]
    NoComparableSink {
        /// Job name.
        job: String,
        /// The job's sinks with their types, comma-separated.
        sinks: String,
    },
    /// Storage or restore setup of one run failed.
    #[error("{run} run: {source}")]
    Setup {
        /// `clean` or `chaos`.
        run: &'static str,
        /// The problem.
        source: SetupError,
    },
    /// The clean run failed, so there is no reference output.
    #[error("the clean run failed: {0}")]
    CleanRun(String),
    /// A file or process could not be handled.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: io::Error,
    },
}

impl ChaosError {
    /// 2 for problems with the job file or flags (as `eddy run`), 1 for failures while running.
    pub fn exit_code(&self) -> u8 {
        match self {
            ChaosError::Config(_)
            | ChaosError::Unbounded { .. }
            | ChaosError::NoCheckpoints(_)
            | ChaosError::NoComparableSink { .. } => 2,
            _ => 1,
        }
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> ChaosError {
    let what = what.into();
    move |source| ChaosError::Io { what, source }
}

/// A sink whose output is compared.
#[derive(Clone, Debug)]
struct ComparedSink {
    name: String,
    output: OutputFiles,
}

/// A checked chaos run, ready to execute: its plan can be printed first.
pub struct ChaosRun<'r> {
    registry: &'r Registry,
    opts: ChaosOptions,
    plan: Arc<Plan>,
    job: String,
    file: String,
    workdir: PathBuf,
    sinks: Vec<ComparedSink>,
    sources: Vec<String>,
    has_restart: bool,
    notes: Vec<String>,
}

/// Checks the job and reads the plan; nothing runs yet.
pub fn prepare<'r>(registry: &'r Registry, opts: &ChaosOptions) -> Result<ChaosRun<'r>, ChaosError> {
    let prepared = job::prepare(&opts.file, &opts.overrides, registry).map_err(ChaosError::Config)?;
    let spec = &prepared.spec;
    let report = |d: Diagnostics| ChaosError::Config(Report::new(spec.file.clone(), spec.source.clone(), d));
    let nodes: Vec<&str> = spec.nodes.iter().map(|n| n.name.value.as_str()).collect();
    let section = match spec.section("chaos") {
        Some(v) => plan::read_section(v, &nodes).map_err(report)?,
        None => plan::ChaosSpec::default(),
    };
    let flags = plan::read_flags(&opts.faults, &nodes).map_err(report)?;
    let job = spec.name.value.clone();
    let info = GraphInfo::of(&prepared.graph);
    if !info.bounded() {
        let sources = info
            .vertices
            .iter()
            .filter(|v| v.bounded == Some(false))
            .filter_map(|v| v.nodes.first().cloned())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ChaosError::Unbounded { job, sources });
    }
    if prepared.checkpoints.is_none() {
        return Err(ChaosError::NoCheckpoints(job));
    }
    // Comparable are the sinks whose planned builder says where its output is: built-in or not, every
    // sink goes through the same public hook.
    let planned: HashMap<&str, &ChainedSink> =
        prepared.graph.vertices.iter().filter_map(|v| v.sink.as_ref()).map(|s| (&*s.name, s)).collect();
    let mut sinks = Vec::new();
    let mut opaque = Vec::new();
    for n in spec.nodes.iter().filter(|n| n.kind == NodeKind::Sink) {
        let name = n.name.value.clone();
        match planned.get(name.as_str()).and_then(|s| s.builder.output_files()) {
            Some(output) => sinks.push(ComparedSink { name, output }),
            None => opaque.push(format!("`{name}` ({})", n.type_name.value)),
        }
    }
    if sinks.is_empty() {
        return Err(ChaosError::NoComparableSink { job, sinks: opaque.join(", ") });
    }
    let mut notes = Vec::new();
    if !opaque.is_empty() {
        notes.push(format!(
            "not compared: {} (the sink type does not implement `SinkBuilder::output_files`)",
            opaque.join(", ")
        ));
    }
    let mut faults = if flags.is_empty() { section.faults } else { flags };
    if let Some(kills) = opts.kill_process {
        let plan = Plan::new(0, faults.clone());
        let dropped = in_process_kinds(&plan);
        if !dropped.is_empty() {
            notes.push(format!(
                "--kill-process runs plain `eddy run` children: the plan's in-process faults ({}) are not injected",
                dropped.join(", ")
            ));
        }
        faults = vec![FaultSpec::KillProcess { count: kills.max(1) }];
    }
    let seed = opts.seed.or(section.seed).unwrap_or_else(|| now_ms() ^ u64::from(std::process::id()));
    let workdir = match &opts.workdir {
        Some(w) => w.clone(),
        None => std::env::temp_dir().join(format!("eddy-chaos-{job}-{}-{}", std::process::id(), now_ms())),
    };
    let task_nodes = prepared.graph.vertices.iter().flat_map(|v| v.node_names()).map(|n| n.to_string()).collect();
    Ok(ChaosRun {
        registry,
        opts: opts.clone(),
        plan: Arc::new(Plan::new(seed, faults).with_nodes(task_nodes)),
        file: opts.file.display().to_string(),
        job,
        workdir,
        sinks,
        sources: spec.nodes.iter().filter(|n| n.kind == NodeKind::Source).map(|n| n.name.value.clone()).collect(),
        has_restart: spec.section("restart").is_some(),
        notes,
    })
}

/// Prepares and executes in one call.
pub fn run(registry: &Registry, opts: &ChaosOptions) -> Result<ChaosReport, ChaosError> {
    prepare(registry, opts)?.execute()
}

/// What the run under faults produced.
struct FaultyRun {
    stats: RunStats,
    error: Option<String>,
    restarts: u64,
    checkpoints: (u64, u64),
    fired: Vec<FiredFault>,
    tallies: Vec<Tally>,
    recoveries: Vec<Recovery>,
}

impl ChaosRun<'_> {
    /// The expanded plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Where both runs write.
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// The job, seed and plan, as printed before running.
    pub fn header(&self) -> String {
        ChaosReport::header(&self.job, &self.file, &self.plan, &self.workdir)
    }

    /// Runs the job clean, then under faults, and compares.
    pub fn execute(mut self) -> Result<ChaosReport, ChaosError> {
        for run in ["clean", "chaos"] {
            let dir = self.workdir.join(run);
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(io_err(format!("cannot clear {}", dir.display())))?;
            }
            std::fs::create_dir_all(&dir).map_err(io_err(format!("cannot create {}", dir.display())))?;
        }
        tracing::info!(job = %self.job, seed = self.plan.seed, "chaos: clean run");
        let clean = self.run_clean()?;
        tracing::info!(job = %self.job, "chaos: run under faults");
        let faulty = match self.opts.kill_process {
            Some(_) => self.run_processes(clean.wall)?,
            None => self.run_faulty()?,
        };
        let mut sinks: Vec<SinkVerdict> = Vec::new();
        for s in &self.sinks {
            let read = |run: &str| {
                let path = self.workdir.join(run).join(&s.name);
                read_output(&path, s.output.header_lines).map_err(io_err(format!("cannot read {}", path.display())))
            };
            sinks.push(compare(&s.name, &read("clean")?, &read("chaos")?));
        }
        Ok(ChaosReport {
            job: self.job.clone(),
            file: self.file.clone(),
            plan: (*self.plan).clone(),
            workdir: self.workdir.clone(),
            kill_process: self.opts.kill_process.is_some(),
            notes: std::mem::take(&mut self.notes),
            chaos: RunStats { wall: faulty.stats.wall, input_records: clean.input_records },
            clean,
            chaos_error: faulty.error,
            restarts: faulty.restarts,
            checkpoints: faulty.checkpoints,
            fired: faulty.fired,
            tallies: faulty.tallies,
            recoveries: faulty.recoveries,
            sinks,
        })
    }

    /// The overrides of one run: the user's, then the run's own output and checkpoint locations.
    fn overrides(&self, run: &str) -> Vec<String> {
        let dir = self.workdir.join(run);
        let mut o = self.opts.overrides.clone();
        for s in &self.sinks {
            o.push(format!("sinks.{}.config.{}={}", s.name, s.output.path_key, dir.join(&s.name).display()));
        }
        o.push(format!("checkpoints.storage=file://{}", dir.join("checkpoints").display()));
        o.push(format!("state.dir={}", dir.join("state").display()));
        o
    }

    fn prepare_run(&self, run: &'static str) -> Result<job::PreparedJob, ChaosError> {
        let mut job = job::prepare(&self.opts.file, &self.overrides(run), self.registry).map_err(ChaosError::Config)?;
        job.start(&StartOptions::default()).map_err(|source| ChaosError::Setup { run, source })?;
        Ok(job)
    }

    fn run_clean(&self) -> Result<RunStats, ChaosError> {
        let job = self.prepare_run("clean")?;
        let started = Instant::now();
        let summary = job.run().map_err(|e| ChaosError::CleanRun(e.to_string()))?;
        let wall = started.elapsed();
        let input_records =
            summary.nodes.iter().filter(|n| self.sources.contains(&n.node)).map(|n| n.records_out).sum();
        Ok(RunStats { wall, input_records })
    }

    /// The run under faults, in this process.
    fn run_faulty(&mut self) -> Result<FaultyRun, ChaosError> {
        let mut job = self.prepare_run("chaos")?;
        if !self.has_restart {
            job.graph.supervision.restart = DEFAULT_RESTART.clone();
            self.notes.push(format!("the job has no `restart:`; under faults it restarts with {DEFAULT_RESTART:?}"));
        }
        if self.plan.drops_acks() {
            if let Some(c) = job.graph.checkpoints.as_mut() {
                // A dropped acknowledgement fails its checkpoint only at the timeout: keep that short.
                let short = (c.interval * 10).clamp(Duration::from_millis(500), Duration::from_secs(5));
                if short < c.timeout {
                    self.notes.push(format!(
                        "checkpoints.timeout shortened from {} to {} so that dropped acknowledgements fail checkpoints quickly",
                        plan::fmt_duration(c.timeout),
                        plan::fmt_duration(short)
                    ));
                    c.timeout = short;
                }
            }
        }
        let handle = job.handle();
        let started_ms = now_ms();
        let injector = Arc::new(ChaosInjector::new(self.plan.clone()));
        job.graph.supervision.faults = Some(injector.clone());
        let started = Instant::now();
        let result = job.run_with(&handle);
        let wall = started.elapsed();
        let status = handle.status();
        let recoveries = status
            .recoveries
            .iter()
            .map(|r| Recovery {
                attempt: r.attempt,
                failed_at: r.failed_ms.checked_sub(started_ms).map(Duration::from_millis),
                task: format!("{}[{}]", r.node, r.subtask),
                cause: r.cause.clone(),
                checkpoint: r.checkpoint,
                recovered_after: r.recovered_after_ms.map(Duration::from_millis),
            })
            .collect();
        Ok(FaultyRun {
            stats: RunStats { wall, input_records: 0 },
            error: result.err().map(|e| e.to_string()),
            restarts: status.restarts,
            checkpoints: (status.checkpoints.completed, status.checkpoints.failed),
            fired: injector.log(),
            tallies: injector.tallies(),
            recoveries,
        })
    }

    /// The run under faults as child `eddy run` processes, SIGKILLed at seeded moments.
    fn run_processes(&mut self, clean_wall: Duration) -> Result<FaultyRun, ChaosError> {
        let (id, kills) = match self.plan.faults.first() {
            Some(f) => (f.id, f.spec.cap().unwrap_or(DEFAULT_PROCESS_KILLS)),
            None => (1, DEFAULT_PROCESS_KILLS),
        };
        let exe = match &self.opts.eddy_binary {
            Some(b) => b.clone(),
            None => std::env::current_exe().map_err(io_err("cannot find the eddy executable"))?,
        };
        let dir = self.workdir.join("chaos");
        let overrides = self.overrides("chaos");
        let started = Instant::now();
        let mut fired: Vec<FiredFault> = Vec::new();
        let mut recoveries: Vec<Recovery> = Vec::new();
        let mut error = None;
        for child_no in 1..=kills + MAX_EXTRA_CHILDREN {
            let log_path = dir.join(format!("child-{child_no}.log"));
            let log =
                std::fs::File::create(&log_path).map_err(io_err(format!("cannot create {}", log_path.display())))?;
            let mut cmd = Command::new(&exe);
            cmd.arg("run").arg("--no-http").arg(&self.opts.file);
            for o in &overrides {
                cmd.arg("--set").arg(o);
            }
            if child_no > 1 {
                cmd.args(["--restore", "latest"]);
            }
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
            let spawned = Instant::now();
            let mut child = cmd.spawn().map_err(io_err(format!("cannot start {}", exe.display())))?;
            let pid = child.id();
            let done = fired.len() as u64;
            // The moment is seeded; the floor leaves the process time to start.
            let deadline = (done < kills).then(|| {
                spawned + Duration::from_millis(30) + clean_wall.mul_f64(self.plan.kill_fraction(id, done + 1))
            });
            let status = loop {
                if let Some(status) = child.try_wait().map_err(io_err("cannot wait for a child"))? {
                    break Some(status);
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break None;
                }
                std::thread::sleep(Duration::from_millis(2));
            };
            let restored = restore_note(&log_path);
            if let (Some(kill_at), Some(prev)) = (fired.last().map(|f| f.at), recoveries.last_mut()) {
                // The previous kill's recovery: to this child started and its checkpoint loaded.
                if prev.recovered_after.is_none() {
                    let loaded = restored.map_or(Duration::ZERO, |(_, ms)| Duration::from_millis(ms));
                    prev.checkpoint = restored.and_then(|(c, _)| c);
                    prev.recovered_after = Some((spawned - started).saturating_sub(kill_at) + loaded);
                }
            }
            match status {
                Some(s) if s.success() => break,
                Some(s) => {
                    error = Some(format!("child `eddy run` (pid {pid}) exited with {s}: {}", tail(&log_path)));
                    break;
                }
                None => {
                    // SIGKILL: no chance to flush, commit or clean up.
                    let _ = child.kill();
                    child.wait().map_err(io_err("cannot reap a killed child"))?;
                    let at = started.elapsed();
                    tracing::info!(pid, at_ms = at.as_millis() as u64, "chaos: process killed");
                    fired.push(FiredFault {
                        at,
                        fault: id,
                        kind: "kill_process",
                        target: format!("eddy run (pid {pid})"),
                        phase: "process".into(),
                    });
                    recoveries.push(Recovery {
                        attempt: fired.len() as u64,
                        failed_at: Some(at),
                        task: format!("process {pid}"),
                        cause: "SIGKILL".into(),
                        checkpoint: None,
                        recovered_after: None,
                    });
                }
            }
        }
        self.notes.push(format!("the children's logs are {}/child-*.log", dir.display()));
        let tallies = vec![Tally { fired: fired.len() as u64, pending: 0 }];
        Ok(FaultyRun {
            stats: RunStats { wall: started.elapsed(), input_records: 0 },
            error,
            restarts: fired.len() as u64,
            checkpoints: (0, 0),
            fired,
            tallies,
            recoveries,
        })
    }
}

/// From a child's log: the checkpoint it restored (`None`: none yet, it started from the beginning) and
/// how long loading it took; `None` when it had not got that far.
fn restore_note(log: &Path) -> Option<(Option<u64>, u64)> {
    let text = std::fs::read_to_string(log).ok()?;
    if text.contains("starting from the beginning") {
        return Some((None, 0));
    }
    let line = text.lines().find(|l| l.contains("restoring from checkpoint "))?;
    let id = line.split("restoring from checkpoint ").nth(1)?.split_whitespace().next()?.parse().ok()?;
    let ms = line.split("read and verified in ").nth(1)?.split_whitespace().next()?.parse().unwrap_or(0);
    Some((Some(id), ms))
}

/// The last lines of a log, for an error message.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_restore_notes_of_child_logs() {
        let dir = std::env::temp_dir().join(format!("eddy-chaos-notes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("child.log");
        std::fs::write(
            &log,
            "eddy: restoring from checkpoint 12 at file:///x/chk-0000000012 (read and verified in 7 ms)\n",
        )
        .unwrap();
        assert_eq!(restore_note(&log), Some((Some(12), 7)));
        std::fs::write(&log, "eddy: no complete checkpoint under file:///x yet: starting from the beginning\n")
            .unwrap();
        assert_eq!(restore_note(&log), Some((None, 0)));
        std::fs::write(&log, "").unwrap();
        assert_eq!(restore_note(&log), None);
        assert_eq!(tail(&dir.join("missing")), "");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
