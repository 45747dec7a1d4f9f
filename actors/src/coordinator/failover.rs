//! Failover: what a task failure restarts (every task, or the pipelined region of the failed one), when
//! (the restart strategy's [`Decision`]), and from what (the newest completed checkpoint, read back from
//! the store; without one, the beginning or the checkpoint the job was started from).
//!
//! A restart gives the restarted tasks a new **epoch**. Reports of older epochs are dropped by the
//! coordinator, and a restarted region gets fresh channels, so nothing from a dead attempt (a late ack, a
//! failure cascading from the first one, a batch in flight) can reach or confuse the new one. The old
//! tasks are cancelled and awaited before the new ones open: they release their state files first.
use super::{Coordinator, FailureRecord, JobError, JobErrorKind, RecoveryRecord};
use crate::checkpoint::restore::read_completed;
use crate::checkpoint::{checkpoint_dir, RestoredCheckpoint};
use crate::graph::{self, JobGraph};
use crate::restart::{Decision, RestartTracker};
use crate::task::{Cancel, StopSource};
use actix::prelude::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

/// How long the cancelled tasks of a restart may take to stop before their replacements start anyway (a
/// task on a stuck thread never answers).
const CANCEL_TIMEOUT: Duration = Duration::from_secs(10);

/// The coordinator's failover state.
pub(super) struct Failover {
    tracker: RestartTracker,
    mode: graph::Failover,
    /// The region of each vertex: the connected components of the physical graph.
    regions: Vec<usize>,
    /// The last epoch handed out.
    epoch: u64,
    /// Restarts in flight: tasks being stopped, waiting out the delay, restoring or opening.
    in_flight: Vec<Recovery>,
    /// The checkpoint read for the last restart, reused while no newer one completes.
    loaded: Option<Arc<RestoredCheckpoint>>,
}

/// One restart in flight.
struct Recovery {
    epoch: u64,
    /// Task indexes restarted.
    tasks: Vec<usize>,
    /// Of those, not yet reported `Started`.
    waiting: usize,
    failed_at: Instant,
    /// Position in `JobStatus::recoveries`.
    record: usize,
}

impl Failover {
    pub(super) fn new(graph: &JobGraph) -> Self {
        let seed =
            graph.job.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        Failover {
            tracker: RestartTracker::new(graph.supervision.restart.clone(), seed),
            mode: graph.supervision.failover,
            regions: regions(graph),
            epoch: 0,
            in_flight: Vec::new(),
            loaded: None,
        }
    }

    /// True while some tasks are being restarted (no checkpoint can complete meanwhile).
    pub(super) fn recovering(&self) -> bool {
        !self.in_flight.is_empty()
    }
}

/// The pipelined regions of a job: vertex `v` is in region `regions[v]`, numbered from 0 in order of
/// their first vertex. Every edge connects two vertices of one region (Flink's pipelined regions: with
/// only pipelined exchanges, the connected components).
pub fn regions(graph: &JobGraph) -> Vec<usize> {
    let n = graph.vertices.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut v: usize) -> usize {
        while parent[v] != v {
            parent[v] = parent[parent[v]];
            v = parent[v];
        }
        v
    }
    for e in &graph.edges {
        let (a, b) = (root(&mut parent, e.from), root(&mut parent, e.to));
        if a != b {
            parent[a.max(b)] = a.min(b);
        }
    }
    let mut numbering: Vec<Option<usize>> = vec![None; n];
    let mut next = 0;
    (0..n)
        .map(|v| {
            let r = root(&mut parent, v);
            *numbering[r].get_or_insert_with(|| {
                next += 1;
                next - 1
            })
        })
        .collect()
}

impl Coordinator {
    /// A task of the current attempt failed: restart what the failover mode says after the strategy's
    /// delay, or fail the job when the strategy gives up.
    pub(super) fn task_failed(&mut self, ctx: &mut Context<Self>, i: usize, node: String, error: String) {
        self.fail_over(ctx, i, false, node, error);
    }

    /// Too many checkpoints failed in a row: like Flink, the job fails over (every task restarts from
    /// the last completed checkpoint) if the restart strategy allows, else it fails.
    pub(super) fn checkpoints_failed(&mut self, ctx: &mut Context<Self>, error: String) {
        if let Some(cp) = self.checkpoints.as_mut() {
            cp.tracker.reset_failures();
        }
        self.fail_over(ctx, 0, true, String::new(), error);
    }

    /// Restarts the region of task `i` (or everything when `all` or in full failover), or fails the job.
    fn fail_over(&mut self, ctx: &mut Context<Self>, i: usize, all: bool, node: String, error: String) {
        let Some(task) = self.slots.get(i).map(|s| s.id) else { return };
        let decision = self.failover.tracker.on_failure(self.started.elapsed());
        let restarted = matches!(decision, Decision::Restart { .. });
        self.handle.update(|s| {
            s.failures.push(FailureRecord {
                time_ms: super::now_ms(),
                node: node.clone(),
                subtask: task.subtask,
                message: error.clone(),
                restarted,
            })
        });
        let (after, attempt) = match decision {
            Decision::Restart { after, attempt } => (after, attempt),
            Decision::GiveUp { reason } => {
                error!(%node, subtask = task.subtask, %error, %reason, "task failed; not restarting");
                self.cancel_tasks();
                let attempts = self.failover.tracker.attempts();
                let message = if attempts == 0 {
                    error
                } else {
                    format!("{error} (after {attempts} restart{}; {reason})", if attempts == 1 { "" } else { "s" })
                };
                let err = JobError {
                    job: self.graph.job.to_string(),
                    node,
                    subtask: task.subtask,
                    message,
                    kind: JobErrorKind::Failed,
                };
                return self.complete(ctx, Err(err));
            }
        };
        // What to restart: the failed task's region, or everything. After the final checkpoint was
        // triggered, tasks of every region wait on it, so the whole job restarts.
        let finishing = self.checkpoints.as_ref().is_some_and(|c| c.final_triggered);
        let region = self.failover.regions[task.vertex];
        let selected: Vec<bool> = match self.failover.mode {
            graph::Failover::Region if !finishing && !all => {
                self.failover.regions.iter().map(|r| *r == region).collect()
            }
            _ => vec![true; self.graph.vertices.len()],
        };
        let restart: Vec<usize> = (0..self.slots.len()).filter(|&t| selected[self.slots[t].id.vertex]).collect();
        self.failover.epoch += 1;
        let epoch = self.failover.epoch;
        for &t in &restart {
            self.slots[t].epoch = epoch;
            self.slots[t].finished = false;
        }
        // A restart in flight for tasks restarted again now is superseded.
        self.failover.in_flight.retain(|r| r.tasks.iter().all(|t| !restart.contains(t)));
        self.abort_checkpoints(&restart);
        let checkpoint = self.restore_point().map(|(id, _)| id);
        warn!(%node, subtask = task.subtask, %error, attempt, tasks = restart.len(), ?after, ?checkpoint,
            "task failed; restarting");
        let record = self.handle.status().recoveries.len();
        self.handle.update(|s| {
            s.restarts += 1;
            s.recoveries.push(RecoveryRecord {
                attempt: u64::from(attempt),
                failed_ms: super::now_ms(),
                node: node.clone(),
                subtask: task.subtask,
                cause: error.clone(),
                tasks: restart.len(),
                checkpoint,
                recovered_after_ms: None,
            })
        });
        self.failover.in_flight.push(Recovery {
            epoch,
            tasks: restart.clone(),
            waiting: restart.len(),
            failed_at: Instant::now(),
            record,
        });
        let old: Vec<_> = restart.iter().filter_map(|&t| self.tasks[t].take()).collect();
        let stop_old = async move {
            let deadline = Instant::now() + CANCEL_TIMEOUT;
            for addr in old {
                let left = deadline.saturating_duration_since(Instant::now());
                let _ = actix_rt::time::timeout(left, addr.send(Cancel)).await;
            }
            actix_rt::time::sleep(after).await;
        };
        ctx.spawn(stop_old.into_actor(self).map(move |(), act, ctx| act.redeploy(ctx, epoch, selected)));
    }

    /// Aborts the checkpoints in flight (the restarted tasks can never acknowledge them) and forgets what
    /// the restarted tasks had reported about the final checkpoint.
    fn abort_checkpoints(&mut self, restart: &[usize]) {
        let Some(cp) = self.checkpoints.as_mut() else { return };
        let now = cp.now();
        for (id, savepoint) in cp.tracker.abort_all(now) {
            info!(checkpoint = id, "checkpoint aborted by the restart");
            let store = cp.config.targets.remove(id).unwrap_or_else(|| cp.config.store.clone());
            let dir = checkpoint_dir(id, savepoint);
            actix::spawn(async move {
                let _ = store.delete_dir(dir).await;
            });
            if cp.stop_after == Some(id) {
                cp.stop_after = None;
                warn!(savepoint = id, "the savepoint for stopping was aborted by a restart: the job keeps running");
            }
        }
        cp.final_triggered = false;
        for &t in restart {
            cp.finished[t] = false;
            cp.closed[t] = false;
        }
        let in_progress = cp.tracker.pending().count();
        self.handle.update(|s| s.checkpoints.in_progress = in_progress);
    }

    /// The checkpoint a restart restores: the newest completed one, else the one the job started from.
    fn restore_point(&self) -> Option<(u64, bool)> {
        match self.checkpoints.as_ref().and_then(|c| c.latest.as_ref()) {
            Some(meta) => Some((meta.id, true)),
            None => self.graph.restore.as_ref().map(|r| (r.id, false)),
        }
    }

    /// After the delay: read the checkpoint to restore (if not read already) and start the tasks.
    fn redeploy(&mut self, ctx: &mut Context<Self>, epoch: u64, selected: Vec<bool>) {
        if self.done.is_none() || !self.failover.in_flight.iter().any(|r| r.epoch == epoch) {
            return; // the job ended, or a newer failure superseded this restart
        }
        let meta = self.checkpoints.as_ref().and_then(|c| c.latest.clone());
        let cached = self.failover.loaded.clone().filter(|l| meta.as_ref().is_some_and(|m| m.id == l.id));
        match (meta, cached) {
            (None, _) => {
                let restore = self.graph.restore.clone();
                self.start_restarted(ctx, epoch, &selected, restore);
            }
            (Some(_), Some(loaded)) => self.start_restarted(ctx, epoch, &selected, Some(loaded)),
            (Some(meta), None) => {
                let Some(store) = self.checkpoints.as_ref().map(|c| c.config.store.clone()) else { return };
                let read = async move { read_completed(store, &meta).await };
                ctx.spawn(read.into_actor(self).map(move |r, act, ctx| match r {
                    Ok(restored) => {
                        let restored = Arc::new(restored);
                        act.failover.loaded = Some(restored.clone());
                        act.start_restarted(ctx, epoch, &selected, Some(restored));
                    }
                    Err(e) => act.restore_failed(ctx, epoch, e),
                }));
            }
        }
    }

    fn start_restarted(
        &mut self,
        ctx: &mut Context<Self>,
        epoch: u64,
        selected: &[bool],
        restore: Option<Arc<RestoredCheckpoint>>,
    ) {
        if self.done.is_none() || !self.failover.in_flight.iter().any(|r| r.epoch == epoch) {
            return;
        }
        if let Some(r) = &restore {
            info!(checkpoint = r.id, location = %r.location, epoch, "restoring the restarted tasks");
        }
        let n = self.deploy(ctx.address().recipient(), selected, restore);
        info!(tasks = n, epoch, "restarted tasks deployed");
        if self.stopping {
            // A graceful stop was under way: the new sources end their input too.
            for (t, addr) in self.tasks.iter().enumerate() {
                if let Some(a) = addr.as_ref().filter(|_| selected[self.slots[t].id.vertex]) {
                    a.do_send(StopSource);
                }
            }
        }
    }

    /// The checkpoint to restore could not be read: a failure like any other (the strategy decides).
    fn restore_failed(&mut self, ctx: &mut Context<Self>, epoch: u64, error: String) {
        let Some(r) = self.failover.in_flight.iter().find(|r| r.epoch == epoch) else { return };
        let Some(&first) = r.tasks.first() else { return };
        let node = self.graph.vertices[self.slots[first].id.vertex].display_name();
        self.task_failed(ctx, first, node, format!("restoring the checkpoint failed: {error}"));
    }

    /// A task of the current attempt opened: a restart completes when all its tasks have.
    pub(super) fn task_started(&mut self, i: usize) {
        let epoch = self.slots[i].epoch;
        let Some(pos) = self.failover.in_flight.iter().position(|r| r.epoch == epoch && r.tasks.contains(&i)) else {
            return;
        };
        let r = &mut self.failover.in_flight[pos];
        r.waiting = r.waiting.saturating_sub(1);
        if r.waiting > 0 {
            return;
        }
        let r = self.failover.in_flight.remove(pos);
        let ms = u64::try_from(r.failed_at.elapsed().as_millis()).unwrap_or(u64::MAX);
        info!(epoch, tasks = r.tasks.len(), ms, "restart complete: tasks running again");
        self.handle.update(|s| {
            if let Some(rec) = s.recoveries.get_mut(r.record) {
                rec.recovered_after_ms = Some(ms);
            }
        });
        let now = self.started.elapsed();
        self.failover.tracker.on_healthy(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Edge, Head, Partitioning, Vertex};

    fn graph(vertices: usize, edges: &[(usize, usize)]) -> JobGraph {
        JobGraph {
            job: "t".into(),
            max_parallelism: 128,
            batch_size: 16,
            buffer_timeout: Duration::ZERO,
            channel_capacity: 1,
            threads: 1,
            checkpoints: None,
            first_checkpoint_id: 1,
            earlier_checkpoints: Vec::new(),
            restore: None,
            state_backend: Arc::new(eddy_api::state::HeapBackend),
            supervision: Default::default(),
            vertices: (0..vertices)
                .map(|id| Vertex { id, parallelism: 1, head: Head::Input, operators: Vec::new(), sink: None })
                .collect(),
            edges: edges
                .iter()
                .map(|&(from, to)| Edge { from, to, partitioning: Partitioning::Rebalance, side: None, port: 0 })
                .collect(),
        }
    }

    #[test]
    fn regions_are_the_connected_components() {
        // Two pipelines (0 -> 1 -> 2 and 3 -> 4) and a lone vertex 5.
        assert_eq!(regions(&graph(6, &[(0, 1), (1, 2), (3, 4)])), vec![0, 0, 0, 1, 1, 2]);
        // A join of both pipelines makes one region; edge direction does not matter.
        assert_eq!(regions(&graph(4, &[(0, 2), (1, 2), (3, 1)])), vec![0, 0, 0, 0]);
        assert_eq!(regions(&graph(3, &[(2, 0)])), vec![0, 1, 0]);
    }
}
