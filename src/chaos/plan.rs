//! The fault plan: the `chaos:` section (or `--fault` flags) read with located errors, and its seeded
//! expansion into concrete fault instances.
//!
//! ```yaml
//! chaos:
//!   seed: 42
//!   faults:
//!     - { kill_task: any, every: 2s }                   # or a node name; `count: N` caps it
//!     - { panic_in: per_auction, probability: 0.0001 }  # per record
//!     - { delay_task: euros, for: 500ms, every: 5s }
//!     - { fail_checkpoint_storage: 0.2 }                # probability per store write
//!     - { drop_checkpoint_ack: 0.1 }                    # probability per acknowledgement
//!     - { drop_record: euros, count: 1 }                # deliberate data loss, for negative tests
//! ```
//! Periodic faults (`kill_task`, `delay_task`) expand into instances: the k-th is due at `k * every`,
//! shifted by a seeded jitter of up to a quarter period, and targets phase `k mod 4` of processing,
//! snapshot, restore, commit, so that faults land in every phase. Probabilistic faults take every
//! decision from a hash of the seed and the site, never from a shared random stream.
use super::{mix, unit};
use eddy_actors::faults::Phase;
use eddy_api::config::{ConfigDuration, ConfigKind};
use eddy_api::{ConfigValue, Diagnostic, Diagnostics, Span};
use std::fmt;
use std::time::Duration;

/// The order periodic faults cycle through.
pub const PHASES: [Phase; 4] = [Phase::Processing, Phase::Snapshot, Phase::Restore, Phase::Commit];

/// Keys naming a fault's kind; each fault has exactly one.
const KINDS: [&str; 6] =
    ["kill_task", "panic_in", "delay_task", "fail_checkpoint_storage", "drop_checkpoint_ack", "drop_record"];

/// Which tasks a fault targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Whichever task reaches a matching site first.
    Any,
    /// The tasks running this node (its whole chain).
    Node(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Any => f.write_str("any"),
            Target::Node(n) => f.write_str(n),
        }
    }
}

/// One fault as written.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultSpec {
    /// Fail a task as if it panicked, periodically, cycling through the phases.
    KillTask {
        /// The task.
        target: Target,
        /// Period.
        every: Duration,
        /// At most this many (default: until the job ends).
        count: Option<u64>,
    },
    /// Panic in a node with this probability per record.
    PanicIn {
        /// The node.
        node: String,
        /// Per record.
        probability: f64,
        /// At most this many.
        count: Option<u64>,
    },
    /// Block a task's thread for `duration`, periodically, cycling through the phases.
    DelayTask {
        /// The task.
        target: Target,
        /// How long.
        duration: Duration,
        /// Period.
        every: Duration,
        /// At most this many.
        count: Option<u64>,
    },
    /// Fail checkpoint-store writes with this probability per write.
    FailCheckpointStorage {
        /// Per write.
        probability: f64,
        /// At most this many.
        count: Option<u64>,
    },
    /// Drop checkpoint acknowledgements with this probability per acknowledgement.
    DropCheckpointAck {
        /// Per acknowledgement.
        probability: f64,
        /// At most this many.
        count: Option<u64>,
    },
    /// Drop the last record of the first `count` batches of a node: a deliberate bug.
    DropRecord {
        /// The node.
        node: String,
        /// Batches to drop a record from.
        count: u64,
    },
    /// SIGKILL the whole `eddy` process `count` times (`--kill-process`).
    KillProcess {
        /// Kills.
        count: u64,
    },
}

impl FaultSpec {
    /// The kind's name, as in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            FaultSpec::KillTask { .. } => "kill_task",
            FaultSpec::PanicIn { .. } => "panic_in",
            FaultSpec::DelayTask { .. } => "delay_task",
            FaultSpec::FailCheckpointStorage { .. } => "fail_checkpoint_storage",
            FaultSpec::DropCheckpointAck { .. } => "drop_checkpoint_ack",
            FaultSpec::DropRecord { .. } => "drop_record",
            FaultSpec::KillProcess { .. } => "kill_process",
        }
    }

    /// Whether it fires inside the job's process (everything but process kills).
    pub fn in_process(&self) -> bool {
        !matches!(self, FaultSpec::KillProcess { .. })
    }

    /// The most instances it may fire.
    pub fn cap(&self) -> Option<u64> {
        match self {
            FaultSpec::KillTask { count, .. }
            | FaultSpec::PanicIn { count, .. }
            | FaultSpec::DelayTask { count, .. }
            | FaultSpec::FailCheckpointStorage { count, .. }
            | FaultSpec::DropCheckpointAck { count, .. } => *count,
            FaultSpec::DropRecord { count, .. } | FaultSpec::KillProcess { count } => Some(*count),
        }
    }

    /// The period of a periodic fault.
    fn every(&self) -> Option<Duration> {
        match self {
            FaultSpec::KillTask { every, .. } | FaultSpec::DelayTask { every, .. } => Some(*every),
            _ => None,
        }
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cap = |c: &Option<u64>| c.map(|c| format!(", at most {c}")).unwrap_or_default();
        match self {
            FaultSpec::KillTask { target, every, count } => {
                write!(f, "kill_task {target} every {}{}", fmt_duration(*every), cap(count))
            }
            FaultSpec::PanicIn { node, probability, count } => {
                write!(f, "panic_in {node} with probability {probability} per record{}", cap(count))
            }
            FaultSpec::DelayTask { target, duration, every, count } => write!(
                f,
                "delay_task {target} for {} every {}{}",
                fmt_duration(*duration),
                fmt_duration(*every),
                cap(count)
            ),
            FaultSpec::FailCheckpointStorage { probability, count } => {
                write!(f, "fail_checkpoint_storage with probability {probability} per write{}", cap(count))
            }
            FaultSpec::DropCheckpointAck { probability, count } => {
                write!(f, "drop_checkpoint_ack with probability {probability} per acknowledgement{}", cap(count))
            }
            FaultSpec::DropRecord { node, count } => write!(f, "drop_record in {node}, {count} batch(es)"),
            FaultSpec::KillProcess { count } => write!(f, "kill_process (SIGKILL) {count} time(s)"),
        }
    }
}

/// A `chaos:` section: the seed and the faults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChaosSpec {
    /// The seed, when written.
    pub seed: Option<u64>,
    /// The faults, in order.
    pub faults: Vec<FaultSpec>,
}

/// One instance of a periodic fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// 1-based number of the instance.
    pub k: u64,
    /// When it becomes due, from the start of the chaos run.
    pub due: Duration,
    /// The phase it fires in.
    pub phase: Phase,
    /// For a fault targeting `any`: the node picked from the seed (`None`: the fault's own target).
    pub node: Option<String>,
}

/// A fault of the plan, with its expansion.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedFault {
    /// 1-based position in the plan, as in reports (`#1`).
    pub id: usize,
    /// The fault.
    pub spec: FaultSpec,
}

/// The expanded plan: a seed and the faults it drives.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The seed every decision derives from.
    pub seed: u64,
    /// The faults.
    pub faults: Vec<PlannedFault>,
    /// The nodes that run in tasks (routing nodes such as `key_by` do not), which `any` picks from.
    pub nodes: Vec<String>,
}

/// Instances of a periodic fault listed in the plan before `...`.
const SHOWN: u64 = 8;

impl Plan {
    /// Expands a spec with a seed.
    pub fn new(seed: u64, faults: Vec<FaultSpec>) -> Self {
        let faults = faults.into_iter().enumerate().map(|(i, spec)| PlannedFault { id: i + 1, spec }).collect();
        Plan { seed, faults, nodes: Vec::new() }
    }

    /// The same plan with the job's task nodes, so that each instance of a fault targeting `any`
    /// targets a node picked from the seed (every node then takes its share of faults, not just the
    /// first one to reach a site).
    pub fn with_nodes(mut self, nodes: Vec<String>) -> Self {
        self.nodes = nodes;
        self
    }

    /// The `k`-th (1-based) instance of periodic fault `id`, or `None` for other faults or beyond the cap.
    pub fn instance(&self, id: usize, k: u64) -> Option<Instance> {
        let fault = self.faults.get(id.checked_sub(1)?)?;
        let every = fault.spec.every()?;
        if k == 0 || fault.spec.cap().is_some_and(|c| k > c) {
            return None;
        }
        // Jitter in [-1/4, +1/4) of a period keeps instances in order and away from each other.
        let jitter = unit(mix(self.seed, &[id as u64, k])) - 0.5;
        let nominal = every.as_secs_f64() * k as f64;
        let due = Duration::from_secs_f64((nominal + jitter * 0.5 * every.as_secs_f64()).max(0.0));
        let phase = PHASES[((k - 1) % PHASES.len() as u64) as usize];
        let any = matches!(
            fault.spec,
            FaultSpec::KillTask { target: Target::Any, .. } | FaultSpec::DelayTask { target: Target::Any, .. }
        );
        let node = (any && !self.nodes.is_empty()).then(|| {
            let pick = mix(self.seed, &[id as u64, k, 0x6e6f_6465]) % self.nodes.len() as u64;
            self.nodes[pick as usize].clone()
        });
        Some(Instance { k, due, phase, node })
    }

    /// The seeded moment of the `k`-th process kill, as a fraction of the clean run's wall time into a
    /// child process's life: in `[0.1, 0.6)`.
    pub fn kill_fraction(&self, id: usize, k: u64) -> f64 {
        0.1 + 0.5 * unit(mix(self.seed, &[id as u64, k, 0x6b69_6c6c]))
    }

    /// Whether any fault fires inside the job's process.
    pub fn has_in_process_faults(&self) -> bool {
        self.faults.iter().any(|f| f.spec.in_process())
    }

    /// Whether checkpoint acknowledgements may be dropped.
    pub fn drops_acks(&self) -> bool {
        self.faults.iter().any(|f| matches!(f.spec, FaultSpec::DropCheckpointAck { .. }))
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seed {}; fault plan:", self.seed)?;
        if self.faults.is_empty() {
            writeln!(f, "  (no faults)")?;
        }
        for fault in &self.faults {
            writeln!(f, "  #{} {}", fault.id, fault.spec)?;
            if fault.spec.every().is_some() {
                let shown: Vec<String> = (1..=SHOWN)
                    .map_while(|k| self.instance(fault.id, k))
                    .map(|i| match &i.node {
                        Some(n) => format!("{} {n} @{}", i.phase.as_str(), fmt_duration(i.due)),
                        None => format!("{} @{}", i.phase.as_str(), fmt_duration(i.due)),
                    })
                    .collect();
                let more = if self.instance(fault.id, SHOWN + 1).is_some() { ", ..." } else { "" };
                writeln!(f, "       {}{more}", shown.join(", "))?;
            }
            if let FaultSpec::KillProcess { count } = fault.spec {
                let shown: Vec<String> = (1..=count.min(SHOWN))
                    .map(|k| format!("{:.0}%", 100.0 * self.kill_fraction(fault.id, k)))
                    .collect();
                let more = if count > SHOWN { ", ..." } else { "" };
                writeln!(f, "       into each child, of the clean run's wall time: {}{more}", shown.join(", "))?;
            }
        }
        Ok(())
    }
}

/// A duration the short way: `250ms`, `2s`, `1.5s`.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 1000.0 {
        format!("{}ms", ms.round())
    } else {
        let s = format!("{:.3}", d.as_secs_f64());
        format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// Reads a `chaos:` section; `nodes` are the job's node names, which targets must name.
pub fn read_section(value: &ConfigValue, nodes: &[&str]) -> Result<ChaosSpec, Diagnostics> {
    let mut diags = Diagnostics::new();
    let ConfigKind::Map(entries) = &value.kind else {
        return Err(Diagnostic::at(
            value.span,
            format!("`chaos`: expected a map with `seed` and `faults`, got {}", value.kind_name()),
        )
        .with_hint("e.g. `chaos: { seed: 42, faults: [ { kill_task: any, every: 2s } ] }`")
        .into());
    };
    let mut spec = ChaosSpec::default();
    for (key, v) in entries {
        match key.value.as_str() {
            "seed" => match &v.kind {
                ConfigKind::Int(n) if *n >= 0 => spec.seed = Some(n.unsigned_abs()),
                _ => diags.push(Diagnostic::at(
                    v.span,
                    format!("`chaos.seed`: expected a non-negative integer, got {}", describe(v)),
                )),
            },
            "faults" => match &v.kind {
                ConfigKind::Seq(items) => {
                    for (i, item) in items.iter().enumerate() {
                        match read_fault(item, &format!("chaos.faults[{i}]"), nodes) {
                            Ok(f) => spec.faults.push(f),
                            Err(d) => diags.extend(d.0),
                        }
                    }
                }
                ConfigKind::Null => {}
                _ => diags.push(
                    Diagnostic::at(v.span, format!("`chaos.faults`: expected a list of faults, got {}", v.kind_name()))
                        .with_hint("e.g. `faults: [ { kill_task: any, every: 2s } ]`"),
                ),
            },
            other => diags.push(
                Diagnostic::at(key.span, format!("`chaos`: unknown key `{other}` (expected `seed` or `faults`)"))
                    .did_you_mean(other, ["seed", "faults"]),
            ),
        }
    }
    diags.into_result(spec)
}

/// Reads `--fault` flags: each is a fault in YAML flow syntax, braces optional
/// (`kill_task: any, every: 2s`). Problems name the flag (they have no place in the file).
pub fn read_flags(flags: &[String], nodes: &[&str]) -> Result<Vec<FaultSpec>, Diagnostics> {
    let mut diags = Diagnostics::new();
    let mut faults = Vec::new();
    for flag in flags {
        let text = flag.trim();
        let text = if text.starts_with('{') { text.to_string() } else { format!("{{ {text} }}") };
        let located = |d: Diagnostic| {
            let mut d = d;
            d.message = format!("--fault `{flag}`: {}", d.message);
            d.span = None;
            d
        };
        match crate::config::parse_yaml(&text) {
            Ok(v) => match read_fault(&v, "fault", nodes) {
                Ok(f) => faults.push(f),
                Err(d) => diags.extend(d.0.into_iter().map(located)),
            },
            Err(d) => diags.extend(d.0.into_iter().map(located)),
        }
    }
    diags.into_result(faults)
}

/// A value as a user would recognise it in a message.
fn describe(v: &ConfigValue) -> String {
    match &v.kind {
        ConfigKind::Int(n) => format!("`{n}`"),
        ConfigKind::Float(x) => format!("`{x}`"),
        ConfigKind::Str(s) => format!("`{s}`"),
        ConfigKind::Bool(b) => format!("`{b}`"),
        _ => v.kind_name().to_string(),
    }
}

/// Reads one fault map; `path` names it in messages (`chaos.faults[2]`).
fn read_fault(value: &ConfigValue, path: &str, nodes: &[&str]) -> Result<FaultSpec, Diagnostics> {
    let ConfigKind::Map(entries) = &value.kind else {
        return Err(Diagnostic::at(value.span, format!("`{path}`: expected a fault map, got {}", value.kind_name()))
            .with_hint(format!("one of {}, e.g. `{{ kill_task: any, every: 2s }}`", KINDS.join(", ")))
            .into());
    };
    let kinds: Vec<_> = entries.iter().filter(|(k, _)| KINDS.contains(&k.value.as_str())).collect();
    let (kind_key, kind_value) = match kinds.as_slice() {
        [one] => (one.0.value.as_str(), &one.1),
        [] => {
            let mut d = Diagnostic::at(value.span, format!("`{path}`: no fault kind (one of {})", KINDS.join(", ")));
            if let Some((k, _)) =
                entries.iter().find(|(k, _)| crate::api::diagnostic::did_you_mean(&k.value, KINDS).is_some())
            {
                d = Diagnostic::at(k.span, format!("`{path}`: unknown fault kind `{}`", k.value))
                    .did_you_mean(&k.value, KINDS);
            }
            return Err(d.into());
        }
        [_, second, ..] => {
            return Err(Diagnostic::at(
                second.0.span,
                format!("`{path}`: one fault kind per entry, found `{}` and `{}`", kinds[0].0.value, second.0.value),
            )
            .with_hint("write each fault as its own list item")
            .into())
        }
    };
    let allowed: &[&str] = match kind_key {
        "kill_task" => &["every", "count"],
        "panic_in" => &["probability", "count"],
        "delay_task" => &["for", "every", "count"],
        "fail_checkpoint_storage" | "drop_checkpoint_ack" => &["count"],
        _ => &["count"],
    };
    let mut diags = Diagnostics::new();
    for (k, _) in entries {
        if k.value != kind_key && !allowed.contains(&k.value.as_str()) {
            diags.push(
                Diagnostic::at(
                    k.span,
                    format!("`{path}`: unknown key `{}` for `{kind_key}` (expected {})", k.value, list(allowed)),
                )
                .did_you_mean(&k.value, allowed.iter().copied()),
            );
        }
    }
    let r = Fields { entries: value, path, kind: kind_key };
    let count = r.count(&mut diags);
    let spec = match kind_key {
        "kill_task" => {
            let target = r.target(kind_value, nodes, true, &mut diags);
            let every = r.duration("every", &mut diags);
            FaultSpec::KillTask { target, every, count }
        }
        "panic_in" => {
            let target = r.target(kind_value, nodes, false, &mut diags);
            let probability = r.probability(value.get("probability"), "probability", value.span, &mut diags);
            FaultSpec::PanicIn { node: target.to_string(), probability, count }
        }
        "delay_task" => {
            let target = r.target(kind_value, nodes, true, &mut diags);
            let duration = r.duration("for", &mut diags);
            let every = r.duration("every", &mut diags);
            FaultSpec::DelayTask { target, duration, every, count }
        }
        "fail_checkpoint_storage" => {
            let probability = r.probability(Some(kind_value), kind_key, kind_value.span, &mut diags);
            FaultSpec::FailCheckpointStorage { probability, count }
        }
        "drop_checkpoint_ack" => {
            let probability = r.probability(Some(kind_value), kind_key, kind_value.span, &mut diags);
            FaultSpec::DropCheckpointAck { probability, count }
        }
        _ => {
            let target = r.target(kind_value, nodes, false, &mut diags);
            FaultSpec::DropRecord { node: target.to_string(), count: count.unwrap_or(1) }
        }
    };
    diags.into_result(spec)
}

fn list(keys: &[&str]) -> String {
    keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
}

/// Typed reads of one fault's settings, each problem located at the value (or the fault when missing).
struct Fields<'a> {
    entries: &'a ConfigValue,
    path: &'a str,
    kind: &'a str,
}

impl Fields<'_> {
    fn count(&self, diags: &mut Diagnostics) -> Option<u64> {
        let v = self.entries.get("count")?;
        match v.kind {
            ConfigKind::Int(n) if n >= 1 => Some(n.unsigned_abs()),
            _ => {
                diags.push(Diagnostic::at(
                    v.span,
                    format!("`{}.count`: expected a positive integer, got {}", self.path, describe(v)),
                ));
                None
            }
        }
    }

    fn target(&self, v: &ConfigValue, nodes: &[&str], any: bool, diags: &mut Diagnostics) -> Target {
        let expected = if any { "a node name or `any`" } else { "a node name" };
        let Some(name) = v.as_str() else {
            diags.push(
                Diagnostic::at(
                    v.span,
                    format!("`{}.{}`: expected {expected}, got {}", self.path, self.kind, describe(v)),
                )
                .with_hint(format!("the job's nodes: {}", nodes.join(", "))),
            );
            return Target::Any;
        };
        if any && name == "any" {
            return Target::Any;
        }
        if !nodes.contains(&name) {
            let d = Diagnostic::at(v.span, format!("`{}.{}`: unknown node `{name}`", self.path, self.kind));
            let d = match crate::api::diagnostic::did_you_mean(name, nodes.iter().copied()) {
                Some(c) => d.with_hint(format!("did you mean `{c}`?")),
                None => d.with_hint(format!("expected {expected}; the job's nodes: {}", nodes.join(", "))),
            };
            diags.push(d);
        }
        Target::Node(name.to_string())
    }

    fn duration(&self, key: &str, diags: &mut Diagnostics) -> Duration {
        let Some(v) = self.entries.get(key) else {
            diags.push(
                Diagnostic::at(self.entries.span, format!("`{}`: `{}` needs `{key}`", self.path, self.kind))
                    .with_hint(format!("e.g. `{key}: 2s`")),
            );
            return Duration::from_secs(1);
        };
        let parsed = match &v.kind {
            ConfigKind::Str(s) => ConfigDuration::parse(s).map(|d| d.0),
            ConfigKind::Int(0) => Ok(Duration::ZERO),
            _ => Err(format!("expected a duration such as `2s`, got {}", describe(v))),
        };
        match parsed {
            Ok(d) if d.is_zero() && key == "every" => {
                diags.push(
                    Diagnostic::at(v.span, format!("`{}.every` must be more than 0", self.path))
                        .with_hint("e.g. `every: 2s`"),
                );
                Duration::from_secs(1)
            }
            Ok(d) => d,
            Err(e) => {
                diags.push(Diagnostic::at(v.span, format!("`{}.{key}`: {e}", self.path)));
                Duration::from_secs(1)
            }
        }
    }

    fn probability(&self, v: Option<&ConfigValue>, key: &str, at: Span, diags: &mut Diagnostics) -> f64 {
        let Some(v) = v else {
            diags.push(
                Diagnostic::at(at, format!("`{}`: `{}` needs `{key}`", self.path, self.kind))
                    .with_hint(format!("a probability between 0 and 1, e.g. `{key}: 0.001`")),
            );
            return 0.0;
        };
        let p = match v.kind {
            ConfigKind::Int(n) => Some(n as f64),
            ConfigKind::Float(x) => Some(x),
            _ => None,
        };
        match p {
            Some(p) if (0.0..=1.0).contains(&p) => p,
            _ => {
                diags.push(
                    Diagnostic::at(
                        v.span,
                        format!("`{}.{key}`: expected a probability between 0 and 1, got {}", self.path, describe(v)),
                    )
                    .with_hint("e.g. `0.1` for one in ten"),
                );
                0.0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_yaml;

    const NODES: &[&str] = &["bids", "euros", "per_auction", "out"];

    fn read(text: &str) -> Result<ChaosSpec, Diagnostics> {
        let v = parse_yaml(text).unwrap();
        read_section(v.get("chaos").unwrap(), NODES)
    }

    fn error(text: &str) -> Diagnostic {
        let e = read(text).unwrap_err();
        assert_eq!(e.0.len(), 1, "{:?}", e.0);
        e.0.into_iter().next().unwrap()
    }

    #[test]
    fn reads_the_issue_example() {
        let spec = read(
            "chaos:\n  seed: 42\n  faults:\n    - { kill_task: any, every: 2s }\n    - { panic_in: per_auction, \
             probability: 0.0001 }\n    - { delay_task: euros, for: 500ms, every: 5s }\n    - { \
             fail_checkpoint_storage: 0.2 }\n    - { drop_checkpoint_ack: 0.1 }\n    - { drop_record: euros, count: 1 \
             }\n",
        )
        .unwrap();
        assert_eq!(spec.seed, Some(42));
        assert_eq!(
            spec.faults,
            vec![
                FaultSpec::KillTask { target: Target::Any, every: Duration::from_secs(2), count: None },
                FaultSpec::PanicIn { node: "per_auction".into(), probability: 0.0001, count: None },
                FaultSpec::DelayTask {
                    target: Target::Node("euros".into()),
                    duration: Duration::from_millis(500),
                    every: Duration::from_secs(5),
                    count: None
                },
                FaultSpec::FailCheckpointStorage { probability: 0.2, count: None },
                FaultSpec::DropCheckpointAck { probability: 0.1, count: None },
                FaultSpec::DropRecord { node: "euros".into(), count: 1 },
            ]
        );
        // `1` and `0` are probabilities too.
        assert!(read("chaos: { faults: [ { fail_checkpoint_storage: 0 }, { drop_checkpoint_ack: 1 } ] }\n").is_ok());
    }

    #[test]
    fn errors_are_located_with_the_key_and_what_was_expected() {
        let e = error("chaos:\n  faults:\n    - { kill_task: eruos, every: 2s }\n");
        assert!(e.message.contains("`chaos.faults[0].kill_task`: unknown node `eruos`"), "{e:?}");
        assert_eq!(e.hint.as_deref(), Some("did you mean `euros`?"));
        assert_eq!(e.span.map(|s| (s.line, s.col)), Some((3, 20)));

        let e = error("chaos:\n  faults:\n    - { kill_task: any }\n");
        assert!(e.message.contains("`kill_task` needs `every`"), "{e:?}");
        assert_eq!(e.span.map(|s| s.line), Some(3));

        let e = error("chaos:\n  faults:\n    - { kill_task: any, every: often }\n");
        assert!(e.message.contains("`chaos.faults[0].every`: invalid duration `often`"), "{e:?}");

        let e = error("chaos:\n  faults:\n    - { fail_checkpoint_storage: 1.5 }\n");
        assert!(e.message.contains("expected a probability between 0 and 1, got `1.5`"), "{e:?}");
        assert_eq!(e.span.map(|s| (s.line, s.col)), Some((3, 34)));

        let e = read("chaos:\n  faults:\n    - { panic_in: euros, probabilty: 0.1 }\n").unwrap_err();
        assert!(e.0.iter().any(|d| d.message.contains("unknown key `probabilty`")
            && d.hint.as_deref() == Some("did you mean `probability`?")));
        assert!(e.0.iter().any(|d| d.message.contains("`panic_in` needs `probability`")), "{:?}", e.0);

        let e = error("chaos:\n  faults:\n    - { kil_task: any, every: 1s }\n");
        assert!(e.message.contains("unknown fault kind `kil_task`"), "{e:?}");
        assert_eq!(e.hint.as_deref(), Some("did you mean `kill_task`?"));

        let e = error("chaos:\n  faults:\n    - { kill_task: any, panic_in: euros, every: 1s }\n");
        assert!(e.message.contains("one fault kind per entry"), "{e:?}");

        let e = error("chaos:\n  sed: 3\n");
        assert!(e.message.contains("unknown key `sed`"), "{e:?}");
        assert_eq!(e.hint.as_deref(), Some("did you mean `seed`?"));

        let e = error("chaos:\n  seed: -1\n");
        assert!(e.message.contains("`chaos.seed`: expected a non-negative integer, got `-1`"), "{e:?}");

        let e = error("chaos:\n  faults:\n    - { drop_record: euros, count: 0 }\n");
        assert!(e.message.contains("`chaos.faults[0].count`: expected a positive integer"), "{e:?}");

        let e = error("chaos: [1]\n");
        assert!(e.message.contains("expected a map with `seed` and `faults`"), "{e:?}");

        // `any` is only for kills and delays.
        let e = error("chaos:\n  faults:\n    - { panic_in: any, probability: 0.1 }\n");
        assert!(e.message.contains("unknown node `any`"), "{e:?}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let e = read("chaos:\n  faults:\n    - { kill_task: nope, every: 0 }\n    - { drop_checkpoint_ack: x }\n")
            .unwrap_err();
        assert_eq!(e.0.len(), 3, "{:?}", e.0);
    }

    #[test]
    fn flags_are_read_with_or_without_braces_and_named_in_errors() {
        let f = read_flags(&["kill_task: any, every: 250ms".to_string(), "{ drop_record: euros }".to_string()], NODES)
            .unwrap();
        assert_eq!(f[0], FaultSpec::KillTask { target: Target::Any, every: Duration::from_millis(250), count: None });
        assert_eq!(f[1], FaultSpec::DropRecord { node: "euros".into(), count: 1 });
        let e = read_flags(&["kill_task: nowhere, every: 1s".to_string()], NODES).unwrap_err();
        assert!(e.0[0].message.starts_with("--fault `kill_task: nowhere, every: 1s`: "), "{:?}", e.0);
        assert!(e.0[0].span.is_none());
    }

    fn kills(count: Option<u64>) -> Vec<FaultSpec> {
        vec![
            FaultSpec::KillTask { target: Target::Any, every: Duration::from_secs(2), count },
            FaultSpec::DelayTask {
                target: Target::Node("euros".into()),
                duration: Duration::from_millis(500),
                every: Duration::from_secs(5),
                count: Some(3),
            },
        ]
    }

    #[test]
    fn the_same_seed_gives_the_same_plan() {
        let a = Plan::new(42, kills(None));
        let b = Plan::new(42, kills(None));
        let c = Plan::new(43, kills(None));
        let list = |p: &Plan| (1..=20).map(|k| p.instance(1, k).unwrap()).collect::<Vec<_>>();
        assert_eq!(list(&a), list(&b));
        assert_eq!(a.to_string(), b.to_string());
        assert_ne!(list(&a), list(&c), "another seed moves the instances");
        assert_ne!(a.to_string(), c.to_string());
        assert_eq!(a.kill_fraction(1, 3), b.kill_fraction(1, 3));
    }

    #[test]
    fn periodic_faults_cycle_through_every_phase_in_order() {
        let p = Plan::new(7, kills(None));
        let phases: Vec<Phase> = (1..=8).map(|k| p.instance(1, k).unwrap().phase).collect();
        assert_eq!(phases, [PHASES, PHASES].concat());
        // Due times stay within a quarter period of k * every, so they are increasing.
        let mut last = Duration::ZERO;
        for k in 1..=100 {
            let i = p.instance(1, k).unwrap();
            let nominal = 2.0 * k as f64;
            assert!((i.due.as_secs_f64() - nominal).abs() <= 0.5 + 1e-9, "{i:?}");
            assert!(i.due > last);
            last = i.due;
        }
        // The cap ends the expansion; non-periodic faults have no instances.
        assert!(p.instance(2, 3).is_some());
        assert!(p.instance(2, 4).is_none());
        assert!(p.instance(1, 0).is_none());
        let q = Plan::new(7, vec![FaultSpec::DropCheckpointAck { probability: 0.1, count: None }]);
        assert!(q.instance(1, 1).is_none());
        assert!(q.drops_acks());
    }

    #[test]
    fn any_picks_a_node_per_instance_from_the_seed() {
        let nodes: Vec<String> = NODES.iter().map(|n| n.to_string()).collect();
        let a = Plan::new(42, kills(None)).with_nodes(nodes.clone());
        let b = Plan::new(42, kills(None)).with_nodes(nodes.clone());
        let picks: Vec<String> = (1..=40).map(|k| a.instance(1, k).unwrap().node.unwrap()).collect();
        assert_eq!(picks, (1..=40).map(|k| b.instance(1, k).unwrap().node.unwrap()).collect::<Vec<_>>());
        for n in NODES {
            assert!(picks.iter().any(|p| p == n), "{n} never picked: {picks:?}");
        }
        // A named target keeps its own node.
        assert_eq!(a.instance(2, 1).unwrap().node, None);
        assert!(a.to_string().contains(&format!("processing {} @", picks[0])), "{a}");
    }

    #[test]
    fn the_plan_prints_instances_and_fractions() {
        let mut faults = kills(Some(2));
        faults.push(FaultSpec::KillProcess { count: 2 });
        let text = Plan::new(1, faults).to_string();
        assert!(text.starts_with("seed 1; fault plan:\n  #1 kill_task any every 2s, at most 2\n"), "{text}");
        assert!(text.contains("processing @"), "{text}");
        assert!(text.contains("#3 kill_process (SIGKILL) 2 time(s)"), "{text}");
        assert!(!text.contains("..."), "{text}");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(fmt_duration(Duration::from_millis(250)), "250ms");
    }
}
