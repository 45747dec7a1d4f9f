//! What a chaos run found, and its text form: the seed and plan, each fault as it fired, each recovery,
//! recovery times, throughput under faults versus clean, and a verdict per sink.
use super::injector::{FiredFault, Tally};
use super::plan::{fmt_duration, FaultSpec, Plan};
use super::verdict::{SinkVerdict, Verdict};
use std::fmt::{self, Write as _};
use std::path::PathBuf;
use std::time::Duration;

/// One run of the job.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// From start to end (for `--kill-process`: from the first child's start to the last one's exit).
    pub wall: Duration,
    /// Records the sources read in the clean run: the input, whatever was replayed.
    pub input_records: u64,
}

impl RunStats {
    /// Input records per second.
    pub fn throughput(&self) -> f64 {
        let s = self.wall.as_secs_f64();
        if s > 0.0 {
            self.input_records as f64 / s
        } else {
            0.0
        }
    }
}

/// One recovery under faults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// The restart attempt (1 for the first).
    pub attempt: u64,
    /// When the failure happened, from the start of the chaos run.
    pub failed_at: Option<Duration>,
    /// The failed task (`node[subtask]`) or process.
    pub task: String,
    /// Why it failed.
    pub cause: String,
    /// The checkpoint restored (`None`: from the beginning).
    pub checkpoint: Option<u64>,
    /// From the failure to the restarted tasks running again, when known.
    pub recovered_after: Option<Duration>,
}

/// How a chaos run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every sink exactly-once and every planned fault fired.
    Ok,
    /// A sink's output differs, or the job under faults failed.
    Failed(String),
    /// The outputs match, but a planned fault never fired: the run proves nothing about it.
    Inconclusive(String),
}

/// The findings of `eddy chaos`.
#[derive(Clone, Debug)]
pub struct ChaosReport {
    /// Job name.
    pub job: String,
    /// The job file.
    pub file: String,
    /// The expanded plan.
    pub plan: Plan,
    /// Where both runs wrote.
    pub workdir: PathBuf,
    /// Whether the faulty run was child processes killed with SIGKILL.
    pub kill_process: bool,
    /// Settings the runner changed for the chaos run, and other remarks.
    pub notes: Vec<String>,
    /// The clean run.
    pub clean: RunStats,
    /// The run under faults.
    pub chaos: RunStats,
    /// Why the run under faults failed, if it did.
    pub chaos_error: Option<String>,
    /// Restarts of the run under faults.
    pub restarts: u64,
    /// Checkpoints completed and failed under faults (in-process runs).
    pub checkpoints: (u64, u64),
    /// Every fault fired, oldest first.
    pub fired: Vec<FiredFault>,
    /// Per plan entry.
    pub tallies: Vec<Tally>,
    /// Every recovery, oldest first.
    pub recoveries: Vec<Recovery>,
    /// One verdict per compared sink.
    pub sinks: Vec<SinkVerdict>,
}

impl ChaosReport {
    /// The outcome: failed beats inconclusive beats OK.
    pub fn outcome(&self) -> Outcome {
        if let Some(e) = &self.chaos_error {
            return Outcome::Failed(format!("the job failed under faults: {e}"));
        }
        let bad: Vec<String> = self
            .sinks
            .iter()
            .filter(|s| s.verdict != Verdict::ExactlyOnce)
            .map(|s| format!("{} {}", s.sink, s.verdict))
            .collect();
        if !bad.is_empty() {
            return Outcome::Failed(bad.join(", "));
        }
        if self.plan.faults.is_empty() {
            return Outcome::Inconclusive("the plan has no faults".into());
        }
        let silent: Vec<String> = self
            .plan
            .faults
            .iter()
            .zip(&self.tallies)
            .filter(|(_, t)| t.fired == 0)
            .map(|(f, _)| format!("#{} {} never fired", f.id, f.spec.kind()))
            .collect();
        if silent.is_empty() {
            Outcome::Ok
        } else {
            Outcome::Inconclusive(silent.join(", "))
        }
    }

    /// 0 for OK, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.outcome() != Outcome::Ok)
    }

    /// Faults fired in all.
    pub fn faults_fired(&self) -> u64 {
        self.tallies.iter().map(|t| t.fired).sum()
    }

    /// Faults fired of one kind (`kill_task`, `panic_in`, ...).
    pub fn fired_of(&self, kind: &str) -> u64 {
        self.fired.iter().filter(|f| f.kind == kind).count() as u64
    }

    /// The verdict of a sink.
    pub fn verdict(&self, sink: &str) -> Option<&SinkVerdict> {
        self.sinks.iter().find(|s| s.sink == sink)
    }

    /// Recovery times that are known, sorted.
    pub fn recovery_times(&self) -> Vec<Duration> {
        let mut v: Vec<Duration> = self.recoveries.iter().filter_map(|r| r.recovered_after).collect();
        v.sort();
        v
    }

    /// Median and worst recovery time.
    pub fn recovery_summary(&self) -> Option<(Duration, Duration)> {
        let v = self.recovery_times();
        let worst = *v.last()?;
        let median = if v.len() % 2 == 1 { v[v.len() / 2] } else { (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2 };
        Some((median, worst))
    }

    /// What `eddy chaos` prints before running: the job, the seed and the expanded plan.
    pub fn header(job: &str, file: &str, plan: &Plan, workdir: &std::path::Path) -> String {
        format!("eddy chaos: job `{job}` ({file}), outputs under {}\n{plan}", workdir.display())
    }

    /// Everything after the header.
    pub fn body(&self) -> String {
        let mut out = String::new();
        self.write_body(&mut out).unwrap_or_default();
        out
    }

    fn write_body(&self, out: &mut String) -> fmt::Result {
        for n in &self.notes {
            writeln!(out, "note: {n}")?;
        }
        writeln!(
            out,
            "clean run: {} input records in {:.3}s ({})",
            self.clean.input_records,
            self.clean.wall.as_secs_f64(),
            rate(self.clean.throughput())
        )?;
        let how = match &self.chaos_error {
            Some(e) => format!("FAILED after {:.3}s: {e}", self.chaos.wall.as_secs_f64()),
            None => format!("finished in {:.3}s", self.chaos.wall.as_secs_f64()),
        };
        write!(out, "run under faults: {how}")?;
        if self.kill_process {
            writeln!(out, " ({} process kills)", self.fired_of("kill_process"))?;
        } else {
            writeln!(
                out,
                "; {} restarts, {} checkpoints completed, {} failed",
                self.restarts, self.checkpoints.0, self.checkpoints.1
            )?;
        }
        writeln!(out, "\nfaults fired ({}):", self.fired.len())?;
        if self.fired.is_empty() {
            writeln!(out, "  (none)")?;
        }
        let width = self.fired.iter().map(|f| f.target.len()).max().unwrap_or(0);
        for f in &self.fired {
            writeln!(
                out,
                "  +{:>8.3}s  #{} {:<23} {:<width$}  {}",
                f.at.as_secs_f64(),
                f.fault,
                f.kind,
                f.target,
                f.phase
            )?;
        }
        writeln!(out, "\nrecoveries ({}):", self.recoveries.len())?;
        if self.recoveries.is_empty() {
            writeln!(out, "  (none)")?;
        }
        for r in &self.recoveries {
            let at = r.failed_at.map_or_else(|| "?".to_string(), |d| format!("+{:.3}s", d.as_secs_f64()));
            let from = r.checkpoint.map_or_else(|| "from the beginning".to_string(), |c| format!("checkpoint {c}"));
            let took = r
                .recovered_after
                .map_or_else(|| "not recovered".to_string(), |d| format!("recovered in {}", fmt_duration(d)));
            writeln!(out, "  attempt {:>3}  {at:>9}  {}: restored {from}, {took}  ({})", r.attempt, r.task, r.cause)?;
        }
        match self.recovery_summary() {
            Some((median, worst)) => writeln!(
                out,
                "recovery time: median {}, worst {} ({} recoveries)",
                fmt_duration(median),
                fmt_duration(worst),
                self.recovery_times().len()
            )?,
            None => writeln!(out, "recovery time: no recoveries")?,
        }
        let share =
            if self.clean.throughput() > 0.0 { 100.0 * self.chaos.throughput() / self.clean.throughput() } else { 0.0 };
        writeln!(
            out,
            "throughput under faults: {} vs {} clean ({share:.0}%)",
            rate(self.chaos.throughput()),
            rate(self.clean.throughput())
        )?;
        writeln!(out, "\nfaults by plan entry:")?;
        for (f, t) in self.plan.faults.iter().zip(&self.tallies) {
            let mut phases: Vec<(String, u64)> = Vec::new();
            for e in self.fired.iter().filter(|e| e.fault == f.id) {
                let phase = if e.phase.starts_with("checkpoint ") && e.phase.ends_with(" ack") {
                    "checkpoint ack"
                } else {
                    &e.phase
                };
                match phases.iter_mut().find(|(p, _)| p == phase) {
                    Some((_, n)) => *n += 1,
                    None => phases.push((phase.to_string(), 1)),
                }
            }
            let by_phase = phases.iter().map(|(p, n)| format!("{p} {n}")).collect::<Vec<_>>().join(", ");
            let pending = if t.pending > 0 {
                format!("; {} came due but found no site before the end", t.pending)
            } else {
                String::new()
            };
            let silent = if t.fired == 0 { "  <- NEVER FIRED" } else { "" };
            let by_phase = if by_phase.is_empty() { String::new() } else { format!(" ({by_phase})") };
            writeln!(out, "  #{} {}: fired {}{by_phase}{pending}{silent}", f.id, f.spec.kind(), t.fired)?;
        }
        writeln!(out, "\nverdicts:")?;
        let inconclusive = matches!(self.outcome(), Outcome::Inconclusive(_));
        for s in &self.sinks {
            if inconclusive && s.verdict == Verdict::ExactlyOnce {
                writeln!(out, "  {}: inconclusive (outputs match, but not every planned fault fired)", s.sink)?;
            } else {
                for line in s.to_string().lines() {
                    writeln!(out, "  {line}")?;
                }
            }
        }
        match self.outcome() {
            Outcome::Ok => {
                writeln!(out, "\nresult: OK ({} faults fired, every sink exactly-once)", self.faults_fired())
            }
            Outcome::Failed(why) => writeln!(out, "\nresult: FAILED: {why}"),
            Outcome::Inconclusive(why) => writeln!(out, "\nresult: INCONCLUSIVE: {why}"),
        }
    }
}

impl fmt::Display for ChaosReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&Self::header(&self.job, &self.file, &self.plan, &self.workdir))?;
        f.write_str(&self.body())
    }
}

/// Records per second, short.
fn rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2}M input records/s", per_s / 1e6)
    } else if per_s >= 1e3 {
        format!("{:.1}k input records/s", per_s / 1e3)
    } else {
        format!("{per_s:.0} input records/s")
    }
}

/// Whether a plan entry kind can fire in a process the runner does not watch (used for notes).
pub(crate) fn in_process_kinds(plan: &Plan) -> Vec<&'static str> {
    plan.faults.iter().filter(|f| !matches!(f.spec, FaultSpec::KillProcess { .. })).map(|f| f.spec.kind()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::plan::Target;
    use crate::chaos::verdict::compare;

    fn report(fired: u64, sinks: Vec<SinkVerdict>) -> ChaosReport {
        ChaosReport {
            job: "j".into(),
            file: "j.yaml".into(),
            plan: Plan::new(
                1,
                vec![FaultSpec::KillTask { target: Target::Any, every: Duration::from_millis(10), count: None }],
            ),
            workdir: PathBuf::from("/tmp/w"),
            kill_process: false,
            notes: vec![],
            clean: RunStats { wall: Duration::from_secs(2), input_records: 1000 },
            chaos: RunStats { wall: Duration::from_secs(4), input_records: 1000 },
            chaos_error: None,
            restarts: fired,
            checkpoints: (10, 1),
            fired: (0..fired)
                .map(|i| FiredFault {
                    at: Duration::from_millis(10 * i),
                    fault: 1,
                    kind: "kill_task",
                    target: "a[0]".into(),
                    phase: "processing".into(),
                })
                .collect(),
            tallies: vec![Tally { fired, pending: 0 }],
            recoveries: [30, 10, 20]
                .iter()
                .enumerate()
                .map(|(i, ms)| Recovery {
                    attempt: i as u64 + 1,
                    failed_at: Some(Duration::from_millis(5)),
                    task: "a[0]".into(),
                    cause: "chaos".into(),
                    checkpoint: Some(3),
                    recovered_after: Some(Duration::from_millis(*ms)),
                })
                .collect(),
            sinks,
        }
    }

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn outcomes() {
        let ok = report(3, vec![compare("out", &v(&["a"]), &v(&["a"]))]);
        assert_eq!(ok.outcome(), Outcome::Ok);
        assert_eq!(ok.exit_code(), 0);
        assert_eq!(ok.recovery_summary(), Some((Duration::from_millis(20), Duration::from_millis(30))));
        let text = ok.to_string();
        assert!(text.contains("result: OK (3 faults fired"), "{text}");
        assert!(text.contains("recovery time: median 20ms, worst 30ms (3 recoveries)"), "{text}");
        assert!(
            text.contains("throughput under faults: 250 input records/s vs 500 input records/s clean (50%)"),
            "{text}"
        );

        let quiet = report(0, vec![compare("out", &v(&["a"]), &v(&["a"]))]);
        assert_eq!(quiet.outcome(), Outcome::Inconclusive("#1 kill_task never fired".into()));
        assert_eq!(quiet.exit_code(), 1);
        assert!(quiet.to_string().contains("out: inconclusive"), "{quiet}");

        // A wrong output fails even when no fault fired.
        let lost = report(0, vec![compare("out", &v(&["a", "b"]), &v(&["a"]))]);
        assert_eq!(lost.outcome(), Outcome::Failed("out lost".into()));
        let text = lost.to_string();
        assert!(text.contains("- b    (clean x1, under faults x0)"), "{text}");
        assert!(text.contains("result: FAILED: out lost"), "{text}");

        let mut failed = report(2, vec![compare("out", &v(&["a"]), &v(&["a"]))]);
        failed.chaos_error = Some("gave up".into());
        assert!(matches!(failed.outcome(), Outcome::Failed(_)));
    }
}
