//! The coordinator's checkpoint bookkeeping, as pure logic: when a checkpoint may start, which tasks
//! have acknowledged it, when it is complete, timed out or failed, and when failures fail the job.
//!
//! Time is passed in (milliseconds on any monotonic clock), so the rules are unit-tested with a fake
//! clock and the coordinator only does the I/O and the messaging.
use super::format::TaskFile;
use std::collections::BTreeMap;

/// The limits the tracker enforces (from [`super::CheckpointConfig`]).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Abort a checkpoint that is not complete after this many ms.
    pub timeout_ms: u64,
    /// Checkpoints in flight at once.
    pub max_concurrent: usize,
    /// Least ms between the end of a checkpoint and the start of the next.
    pub min_pause_ms: u64,
    /// Failed checkpoints in a row that are tolerated.
    pub tolerable_failures: usize,
}

/// One checkpoint in flight.
#[derive(Debug)]
pub struct Pending {
    /// Its id.
    pub id: u64,
    /// A savepoint rather than a periodic checkpoint.
    pub savepoint: bool,
    /// The job's final checkpoint (every task has ended).
    pub last: bool,
    /// When it was triggered.
    pub started_ms: u64,
    /// Acknowledgements, one slot per task.
    pub acks: Vec<Option<TaskFile>>,
    acked: usize,
}

impl Pending {
    /// Whether task `t` has acknowledged.
    pub fn acked_by(&self, t: usize) -> bool {
        self.acks.get(t).is_some_and(Option::is_some)
    }
}

/// What an acknowledgement led to.
#[derive(Debug)]
pub enum AckOutcome {
    /// Still waiting for other tasks.
    Waiting,
    /// Every task has acknowledged: write the metadata, then call [`Tracker::completed`].
    AllAcked(Pending),
    /// The checkpoint is no longer pending (aborted, or a duplicate ack): ignore.
    Stale,
}

/// What a failed checkpoint means for the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureVerdict {
    /// Tolerated: this many failures in a row so far.
    Tolerated(usize),
    /// More failures in a row than tolerated: fail the job.
    FailJob(usize),
}

/// The checkpoints of one job.
#[derive(Debug)]
pub struct Tracker {
    limits: Limits,
    tasks: usize,
    next_id: u64,
    pending: BTreeMap<u64, Pending>,
    last_end_ms: Option<u64>,
    failures_in_a_row: usize,
    /// Completed ids, oldest first.
    completed: Vec<u64>,
}

impl Tracker {
    /// A tracker for `tasks` tasks whose first checkpoint gets id `first_id`.
    pub fn new(limits: Limits, tasks: usize, first_id: u64) -> Self {
        Tracker {
            limits,
            tasks,
            next_id: first_id.max(1),
            pending: BTreeMap::new(),
            last_end_ms: None,
            failures_in_a_row: 0,
            completed: Vec::new(),
        }
    }

    /// Whether a periodic checkpoint may start now (concurrency and pause limits).
    pub fn may_trigger(&self, now_ms: u64) -> bool {
        self.pending.len() < self.limits.max_concurrent.max(1)
            && self.last_end_ms.is_none_or(|end| now_ms >= end.saturating_add(self.limits.min_pause_ms))
    }

    /// Starts a checkpoint and returns its id.
    pub fn trigger(&mut self, now_ms: u64, savepoint: bool, last: bool) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let acks = (0..self.tasks).map(|_| None).collect();
        self.pending.insert(id, Pending { id, savepoint, last, started_ms: now_ms, acks, acked: 0 });
        id
    }

    /// The checkpoints in flight, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &Pending> {
        self.pending.values()
    }

    /// Whether checkpoint `id` is in flight.
    pub fn is_pending(&self, id: u64) -> bool {
        self.pending.contains_key(&id)
    }

    /// Whether checkpoint `id` is in flight and the job's final checkpoint.
    pub fn is_last(&self, id: u64) -> bool {
        self.pending.get(&id).is_some_and(|p| p.last)
    }

    /// Whether checkpoint `id` is in flight and a savepoint.
    pub fn is_savepoint(&self, id: u64) -> bool {
        self.pending.get(&id).is_some_and(|p| p.savepoint)
    }

    /// Task `task` acknowledged checkpoint `id` with its file.
    pub fn ack(&mut self, id: u64, task: usize, file: TaskFile) -> AckOutcome {
        let Some(p) = self.pending.get_mut(&id) else { return AckOutcome::Stale };
        match p.acks.get_mut(task) {
            Some(slot @ None) => {
                *slot = Some(file);
                p.acked += 1;
            }
            _ => return AckOutcome::Stale,
        }
        if p.acked < self.tasks {
            return AckOutcome::Waiting;
        }
        match self.pending.remove(&id) {
            Some(p) => AckOutcome::AllAcked(p),
            None => AckOutcome::Stale,
        }
    }

    /// Checkpoint `id`'s metadata is written: it is complete. Older pending checkpoints are subsumed
    /// and dropped (returned, so their partial files can be deleted).
    pub fn completed(&mut self, id: u64, now_ms: u64) -> Vec<u64> {
        self.failures_in_a_row = 0;
        self.last_end_ms = Some(now_ms);
        self.completed.push(id);
        let older: Vec<u64> = self.pending.range(..id).map(|(k, _)| *k).collect();
        for k in &older {
            self.pending.remove(k);
        }
        older
    }

    /// Checkpoint `id` failed (a task declined, the metadata could not be written, or it timed out).
    pub fn failed(&mut self, id: u64, now_ms: u64) -> FailureVerdict {
        self.pending.remove(&id);
        self.last_end_ms = Some(now_ms);
        self.failures_in_a_row += 1;
        if self.failures_in_a_row > self.limits.tolerable_failures {
            FailureVerdict::FailJob(self.failures_in_a_row)
        } else {
            FailureVerdict::Tolerated(self.failures_in_a_row)
        }
    }

    /// Aborts every checkpoint in flight because tasks are restarting (they can never complete); unlike a
    /// failure this does not count against `tolerable_failures`. Returns their ids.
    pub fn abort_all(&mut self, now_ms: u64) -> Vec<(u64, bool)> {
        let aborted: Vec<(u64, bool)> = self.pending.values().map(|p| (p.id, p.savepoint)).collect();
        self.pending.clear();
        if !aborted.is_empty() {
            self.last_end_ms = Some(now_ms);
        }
        aborted
    }

    /// Forgets the failures in a row (the job is failing over because of them).
    pub fn reset_failures(&mut self) {
        self.failures_in_a_row = 0;
    }

    /// Checkpoints that have timed out by `now_ms` (still pending: call [`failed`](Self::failed)).
    pub fn timed_out(&self, now_ms: u64) -> Vec<u64> {
        self.pending
            .values()
            .filter(|p| now_ms.saturating_sub(p.started_ms) >= self.limits.timeout_ms)
            .map(|p| p.id)
            .collect()
    }

    /// Completed checkpoint ids, oldest first.
    pub fn completed_ids(&self) -> &[u64] {
        &self.completed
    }

    /// The id the next checkpoint will get.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits { timeout_ms: 1000, max_concurrent: 1, min_pause_ms: 100, tolerable_failures: 2 }
    }

    fn file(t: usize) -> TaskFile {
        TaskFile { path: format!("t{t}"), size: 10, nodes: Vec::new() }
    }

    #[test]
    fn completes_when_every_task_acked_once() {
        let mut t = Tracker::new(limits(), 2, 5);
        assert!(t.may_trigger(0));
        let id = t.trigger(0, false, false);
        assert_eq!(id, 5);
        assert!(!t.may_trigger(10), "one in flight at most");
        assert!(matches!(t.ack(id, 0, file(0)), AckOutcome::Waiting));
        assert!(matches!(t.ack(id, 0, file(0)), AckOutcome::Stale), "a duplicate ack is ignored");
        let AckOutcome::AllAcked(p) = t.ack(id, 1, file(1)) else { panic!("expected completion") };
        assert_eq!(p.acks.iter().flatten().count(), 2);
        assert!(t.completed(id, 50).is_empty());
        assert!(!t.may_trigger(120), "min pause after the end");
        assert!(t.may_trigger(150));
        assert!(matches!(t.ack(id, 1, file(1)), AckOutcome::Stale));
    }

    #[test]
    fn the_final_checkpoint_is_known_while_pending_and_by_what_all_acked_hands_over() {
        let mut t = Tracker::new(limits(), 1, 1);
        let periodic = t.trigger(0, false, false);
        assert!(!t.is_last(periodic));
        t.completed(periodic, 10);
        let last = t.trigger(200, false, true);
        assert!(t.is_last(last));
        // Once every task acknowledged it, the tracker lets go: its metadata write holds `last` now.
        let AckOutcome::AllAcked(p) = t.ack(last, 0, file(0)) else { panic!("expected completion") };
        assert!(p.last && !t.is_last(last));
    }

    #[test]
    fn a_restart_aborts_what_is_in_flight_without_counting_a_failure() {
        let mut t = Tracker::new(limits(), 1, 1);
        let a = t.trigger(0, false, false);
        assert_eq!(t.abort_all(10), vec![(a, false)]);
        assert!(!t.is_pending(a));
        assert!(matches!(t.ack(a, 0, file(0)), AckOutcome::Stale), "a late ack of an aborted one is stale");
        // Two real failures are still tolerated (the abort did not count).
        for now in [200, 400] {
            let id = t.trigger(now, false, false);
            assert!(matches!(t.failed(id, now + 1), FailureVerdict::Tolerated(_)));
        }
    }

    #[test]
    fn failures_are_tolerated_until_the_limit_and_reset_by_success() {
        let mut t = Tracker::new(limits(), 1, 1);
        let a = t.trigger(0, false, false);
        assert_eq!(t.timed_out(999), Vec::<u64>::new());
        assert_eq!(t.timed_out(1000), vec![a]);
        assert_eq!(t.failed(a, 1000), FailureVerdict::Tolerated(1));
        let b = t.trigger(2000, false, false);
        assert_eq!(t.failed(b, 2001), FailureVerdict::Tolerated(2));
        let c = t.trigger(3000, false, false);
        assert!(matches!(t.ack(c, 0, file(0)), AckOutcome::AllAcked(_)));
        t.completed(c, 3001);
        let d = t.trigger(4000, false, false);
        assert_eq!(t.failed(d, 4001), FailureVerdict::Tolerated(1), "success resets the count");
        let e = t.trigger(5000, false, false);
        t.failed(e, 5001);
        let f = t.trigger(6000, false, false);
        assert_eq!(t.failed(f, 6001), FailureVerdict::FailJob(3));
        assert!(matches!(t.ack(f, 0, file(0)), AckOutcome::Stale), "acks of a failed checkpoint are stale");
    }

    #[test]
    fn completion_subsumes_older_pending_checkpoints() {
        let mut t = Tracker::new(Limits { max_concurrent: 3, ..limits() }, 1, 1);
        let a = t.trigger(0, false, false);
        let b = t.trigger(1, false, false);
        assert!(matches!(t.ack(b, 0, file(0)), AckOutcome::AllAcked(_)));
        assert_eq!(t.completed(b, 2), vec![a]);
        assert!(!t.is_pending(a));
        assert_eq!(t.completed_ids(), &[b]);
    }
}
