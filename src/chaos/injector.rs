//! The [`FaultInjector`] of a chaos run: fires the plan at the runtime's fault sites and logs every fault
//! it fires (time since the start, kind, target, phase).
//!
//! Periodic faults: an instance becomes pending at its due time and fires at the next site of its phase
//! in a matching task; pending instances are independent, so a restore-phase kill waiting for the next
//! restart never holds back the kills after it. Probabilistic faults decide from a hash of the seed, the
//! fault and the site (task, attempt, how many sites it has passed), so a decision does not depend on how
//! threads interleave.
use super::plan::{FaultSpec, Instance, Plan, Target};
use super::{hash_str, mix, unit};
use eddy_actors::faults::{FaultAction, FaultInjector, Phase, Site};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A fault that fired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FiredFault {
    /// From the start of the chaos run.
    pub at: Duration,
    /// The plan entry (`#id`).
    pub fault: usize,
    /// Its kind (`kill_task`, ...).
    pub kind: &'static str,
    /// `node[subtask]`, a store path, or a process.
    pub target: String,
    /// `processing`, `snapshot`, `restore`, `commit`, `checkpoint write`, `checkpoint ack`, `process`.
    pub phase: String,
}

/// Per plan entry: how often it fired, and periodic instances that came due but found no site.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Instances fired.
    pub fired: u64,
    /// Periodic instances due but never fired (e.g. a restore-phase kill when nothing restarted after it).
    pub pending: u64,
}

#[derive(Default)]
struct Periodic {
    /// The next instance that is not due yet.
    next: u64,
    /// Due, not fired.
    pending: Vec<Instance>,
}

#[derive(Default)]
struct State {
    periodic: Vec<Periodic>,
    fired: Vec<u64>,
    /// Occurrences per decision key (a task's processing sites, a store path's writes).
    seen: HashMap<(usize, u64), u64>,
    log: Vec<FiredFault>,
}

/// Fires a [`Plan`] inside one job run. A task passes a site per node of its chain, so a fault naming a
/// node matches that node's sites exactly.
pub struct ChaosInjector {
    plan: Arc<Plan>,
    start: Instant,
    state: Mutex<State>,
}

impl ChaosInjector {
    /// An injector whose clock starts now.
    pub fn new(plan: Arc<Plan>) -> Self {
        let state = State {
            periodic: plan.faults.iter().map(|_| Periodic { next: 1, pending: Vec::new() }).collect(),
            fired: vec![0; plan.faults.len()],
            ..State::default()
        };
        ChaosInjector { plan, start: Instant::now(), state: Mutex::new(state) }
    }

    /// Every fault fired so far, oldest first.
    pub fn log(&self) -> Vec<FiredFault> {
        self.lock().log.clone()
    }

    /// Per plan entry: fired and pending counts.
    pub fn tallies(&self) -> Vec<Tally> {
        let mut st = self.lock();
        let now = self.start.elapsed();
        (0..self.plan.faults.len())
            .map(|i| {
                self.promote(&mut st, i, now);
                Tally { fired: st.fired[i], pending: st.periodic[i].pending.len() as u64 }
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn matches(target: &Target, node: &str) -> bool {
        match target {
            Target::Any => true,
            Target::Node(n) => n == node,
        }
    }

    /// Moves instances of periodic fault `i` that are due by `now` to its pending list.
    fn promote(&self, st: &mut State, i: usize, now: Duration) {
        let id = i + 1;
        let p = &mut st.periodic[i];
        while let Some(inst) = self.plan.instance(id, p.next).filter(|inst| inst.due <= now) {
            p.pending.push(inst);
            p.next += 1;
        }
    }

    /// Whether fault `i` may still fire (below its cap).
    fn below_cap(&self, st: &State, i: usize) -> bool {
        self.plan.faults[i].spec.cap().is_none_or(|c| st.fired[i] < c)
    }

    /// The next occurrence number of a decision key.
    fn occurrence(st: &mut State, i: usize, key: u64) -> u64 {
        let n = st.seen.entry((i, key)).or_insert(0);
        *n += 1;
        *n
    }

    fn record(&self, st: &mut State, i: usize, target: String, phase: &str) {
        st.fired[i] += 1;
        let f = FiredFault {
            at: self.start.elapsed(),
            fault: i + 1,
            kind: self.plan.faults[i].spec.kind(),
            target,
            phase: phase.to_string(),
        };
        tracing::info!(fault = f.fault, kind = f.kind, target = %f.target, phase = %f.phase,
            at_ms = f.at.as_millis() as u64, "chaos: fault fired");
        st.log.push(f);
    }

    /// Decides a site; at most one fault fires per site, the first in plan order.
    fn decide(&self, site: &Site<'_>) -> FaultAction {
        let mut st = self.lock();
        let now = self.start.elapsed();
        let task = format!("{}[{}]", site.node, site.subtask);
        let task_key = mix(hash_str(site.node), &[site.subtask as u64, site.attempt]);
        for (i, fault) in self.plan.faults.iter().enumerate() {
            if !self.below_cap(&st, i) {
                continue;
            }
            match &fault.spec {
                FaultSpec::KillTask { target, .. } | FaultSpec::DelayTask { target, .. } => {
                    if !Self::matches(target, site.node) {
                        continue;
                    }
                    self.promote(&mut st, i, now);
                    let pending = &mut st.periodic[i].pending;
                    let fits = |inst: &Instance| {
                        inst.phase == site.phase && inst.node.as_deref().is_none_or(|n| n == site.node)
                    };
                    let Some(pos) = pending.iter().position(fits) else { continue };
                    let inst = pending.remove(pos);
                    self.record(&mut st, i, task, site.phase.as_str());
                    return match &fault.spec {
                        FaultSpec::DelayTask { duration, .. } => FaultAction::Delay(*duration),
                        _ => FaultAction::Panic(format!(
                            "chaos: kill_task #{} (instance {}, {} phase)",
                            fault.id,
                            inst.k,
                            site.phase.as_str()
                        )),
                    };
                }
                FaultSpec::PanicIn { node, probability, .. } => {
                    if site.phase != Phase::Processing || site.records == 0 || node != site.node {
                        continue;
                    }
                    let n = Self::occurrence(&mut st, i, task_key);
                    let p_batch = 1.0 - (1.0 - probability).powf(site.records as f64);
                    if unit(mix(self.plan.seed, &[fault.id as u64, task_key, n])) < p_batch {
                        self.record(&mut st, i, task, site.phase.as_str());
                        return FaultAction::Panic(format!("chaos: panic_in #{} in `{node}`", fault.id));
                    }
                }
                FaultSpec::DropRecord { node, .. } => {
                    if site.phase == Phase::Processing && site.records > 0 && node == site.node {
                        self.record(&mut st, i, task, site.phase.as_str());
                        return FaultAction::DropRecord;
                    }
                }
                FaultSpec::FailCheckpointStorage { .. }
                | FaultSpec::DropCheckpointAck { .. }
                | FaultSpec::KillProcess { .. } => {}
            }
        }
        FaultAction::None
    }
}

impl FaultInjector for ChaosInjector {
    fn at(&self, site: Site<'_>) -> FaultAction {
        self.decide(&site)
    }

    fn fail_storage_write(&self, path: &str) -> Option<String> {
        let mut st = self.lock();
        for (i, fault) in self.plan.faults.iter().enumerate() {
            let FaultSpec::FailCheckpointStorage { probability, .. } = fault.spec else { continue };
            if !self.below_cap(&st, i) {
                continue;
            }
            // Per path and attempt, so a retried write gets a fresh decision.
            let key = hash_str(path);
            let n = Self::occurrence(&mut st, i, key);
            if unit(mix(self.plan.seed, &[fault.id as u64, key, n])) < probability {
                self.record(&mut st, i, path.to_string(), "checkpoint write");
                return Some(format!("chaos: fail_checkpoint_storage #{} (injected write failure)", fault.id));
            }
        }
        None
    }

    fn drop_ack(&self, node: &str, subtask: usize, checkpoint: u64) -> bool {
        let mut st = self.lock();
        for (i, fault) in self.plan.faults.iter().enumerate() {
            let FaultSpec::DropCheckpointAck { probability, .. } = fault.spec else { continue };
            if !self.below_cap(&st, i) {
                continue;
            }
            let key = mix(hash_str(node), &[subtask as u64, checkpoint]);
            let n = Self::occurrence(&mut st, i, key);
            if unit(mix(self.plan.seed, &[fault.id as u64, key, n])) < probability {
                self.record(&mut st, i, format!("{node}[{subtask}]"), &format!("checkpoint {checkpoint} ack"));
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::plan::FaultSpec;

    fn site(node: &str, phase: Phase, records: usize) -> Site<'_> {
        Site { node, subtask: 0, phase, records, attempt: 0 }
    }

    fn injector(faults: Vec<FaultSpec>) -> ChaosInjector {
        ChaosInjector::new(Arc::new(Plan::new(42, faults)))
    }

    #[test]
    fn kills_fire_in_their_phase_once_due_and_cycle_through_phases() {
        // `every: 0ns` is refused in files; here it makes every instance due at once.
        let inj = injector(vec![FaultSpec::KillTask {
            target: Target::Node("euros".into()),
            every: Duration::from_nanos(1),
            count: Some(4),
        }]);
        // Another node never matches, even in the same chain.
        assert_eq!(inj.at(site("bids", Phase::Processing, 10)), FaultAction::None);
        assert!(matches!(inj.at(site("euros", Phase::Processing, 10)), FaultAction::Panic(_)));
        assert_eq!(inj.at(site("euros", Phase::Processing, 10)), FaultAction::None, "one processing instance");
        // The restore instance waits for a restore while the commit one fires meanwhile.
        assert!(matches!(inj.at(site("euros", Phase::Commit, 0)), FaultAction::Panic(_)));
        assert!(matches!(inj.at(site("euros", Phase::Snapshot, 0)), FaultAction::Panic(_)));
        assert_eq!(inj.tallies()[0], Tally { fired: 3, pending: 1 });
        assert!(matches!(inj.at(site("euros", Phase::Restore, 0)), FaultAction::Panic(_)));
        assert_eq!(inj.at(site("euros", Phase::Restore, 0)), FaultAction::None, "capped at 4");
        let phases: Vec<String> = inj.log().into_iter().map(|f| f.phase).collect();
        assert_eq!(phases, ["processing", "commit", "snapshot", "restore"]);
        assert_eq!(inj.tallies()[0], Tally { fired: 4, pending: 0 });
    }

    #[test]
    fn an_instance_for_a_picked_node_fires_only_there() {
        let plan = Plan::new(
            42,
            vec![FaultSpec::KillTask { target: Target::Any, every: Duration::from_nanos(1), count: Some(1) }],
        )
        .with_nodes(vec!["bids".into(), "totals".into()]);
        let picked = plan.instance(1, 1).unwrap().node.unwrap();
        let other = if picked == "bids" { "totals" } else { "bids" };
        let inj = ChaosInjector::new(Arc::new(plan));
        assert_eq!(inj.at(site(other, Phase::Processing, 5)), FaultAction::None);
        assert!(matches!(inj.at(site(&picked, Phase::Processing, 5)), FaultAction::Panic(_)));
    }

    #[test]
    fn instances_not_due_yet_do_not_fire() {
        let inj =
            injector(vec![FaultSpec::KillTask { target: Target::Any, every: Duration::from_secs(3600), count: None }]);
        assert_eq!(inj.at(site("bids", Phase::Processing, 100)), FaultAction::None);
        assert_eq!(inj.tallies()[0], Tally::default());
    }

    #[test]
    fn delays_and_dropped_records() {
        let inj = injector(vec![
            FaultSpec::DelayTask {
                target: Target::Any,
                duration: Duration::from_millis(5),
                every: Duration::from_nanos(1),
                count: Some(1),
            },
            FaultSpec::DropRecord { node: "totals".into(), count: 2 },
        ]);
        assert_eq!(inj.at(site("bids", Phase::Processing, 3)), FaultAction::Delay(Duration::from_millis(5)));
        assert_eq!(inj.at(site("totals", Phase::Processing, 0)), FaultAction::None, "empty batches keep their records");
        assert_eq!(inj.at(site("out", Phase::Processing, 3)), FaultAction::None, "only the named node");
        assert_eq!(inj.at(site("totals", Phase::Processing, 3)), FaultAction::DropRecord);
        assert_eq!(inj.at(site("totals", Phase::Processing, 3)), FaultAction::DropRecord);
        assert_eq!(inj.at(site("totals", Phase::Processing, 3)), FaultAction::None);
        assert_eq!(inj.tallies().iter().map(|t| t.fired).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn probabilistic_decisions_are_reproducible_and_near_their_probability() {
        let run = || {
            let inj = injector(vec![
                FaultSpec::PanicIn { node: "totals".into(), probability: 0.001, count: None },
                FaultSpec::FailCheckpointStorage { probability: 0.2, count: None },
                FaultSpec::DropCheckpointAck { probability: 0.1, count: None },
            ]);
            let panics: Vec<bool> = (0..1000)
                .map(|_| matches!(inj.at(site("totals", Phase::Processing, 100)), FaultAction::Panic(_)))
                .collect();
            let writes: Vec<bool> =
                (0..1000).map(|i| inj.fail_storage_write(&format!("chk-{i}/totals-0")).is_some()).collect();
            let acks: Vec<bool> = (0..1000).map(|c| inj.drop_ack("totals", 0, c)).collect();
            (panics, writes, acks)
        };
        let a = run();
        assert_eq!(a, run(), "same seed, same decisions");
        let share = |v: &[bool]| v.iter().filter(|&&b| b).count() as f64 / v.len() as f64;
        // A batch of 100 records at 0.001 per record: about 9.5%.
        assert!((0.06..0.14).contains(&share(&a.0)), "{}", share(&a.0));
        assert!((0.15..0.25).contains(&share(&a.1)), "{}", share(&a.1));
        assert!((0.07..0.13).contains(&share(&a.2)), "{}", share(&a.2));
    }

    #[test]
    fn probability_zero_never_fires_and_caps_hold() {
        let inj = injector(vec![
            FaultSpec::FailCheckpointStorage { probability: 0.0, count: None },
            FaultSpec::DropCheckpointAck { probability: 1.0, count: Some(2) },
        ]);
        assert!((0..100).all(|i| inj.fail_storage_write(&format!("p{i}")).is_none()));
        assert_eq!((0..10).filter(|&c| inj.drop_ack("out", 0, c)).count(), 2);
        let log = inj.log();
        assert_eq!(log.len(), 2);
        assert_eq!(
            (log[0].kind, log[0].target.as_str(), log[0].phase.as_str()),
            ("drop_checkpoint_ack", "out[0]", "checkpoint 0 ack")
        );
    }
}
