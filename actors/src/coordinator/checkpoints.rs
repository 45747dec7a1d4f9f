//! The coordinator's side of checkpoints: triggering (periodic, savepoints, the final one), collecting
//! acknowledgements, writing the metadata last, notifying the tasks, retention, and failure handling
//! within `tolerable_failures`. The decisions are the [`Tracker`](crate::checkpoint::tracker::Tracker)'s;
//! this file does the messaging and the storage calls.
use super::{CompletedCheckpoint, Coordinator, JobSummary};
use crate::checkpoint::format::FORMAT_VERSION;
use crate::checkpoint::tracker::{AckOutcome, FailureVerdict, Pending};
use crate::checkpoint::{checkpoint_dir, CheckpointMetadata, CheckpointStore, TaskFile, METADATA_FILE};
use crate::task::{CheckpointComplete, TaskId, TriggerCheckpoint};
use actix::prelude::*;
use eddy_api::CheckpointBarrier;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// How often pending checkpoints are checked for their timeout.
const TIMEOUT_CHECK: Duration = Duration::from_millis(100);

impl Coordinator {
    /// Starts the periodic trigger and the timeout check.
    pub(super) fn start_checkpointing(&mut self, ctx: &mut Context<Self>) {
        let Some(cp) = &self.checkpoints else { return };
        let interval = cp.config.interval;
        ctx.run_interval(interval, |act, ctx| act.periodic_checkpoint(ctx));
        ctx.run_interval(TIMEOUT_CHECK, |act, ctx| act.expire_checkpoints(ctx));
    }

    fn periodic_checkpoint(&mut self, ctx: &mut Context<Self>) {
        let Some(cp) = &self.checkpoints else { return };
        if self.done.is_none() || cp.final_triggered || cp.stop_after.is_some() || self.stopping {
            return;
        }
        // Not while tasks are being restarted: they could not take part.
        if self.failover.recovering() {
            return;
        }
        if cp.tracker.may_trigger(cp.now()) {
            self.trigger(ctx, false, false, None);
        }
    }

    /// Triggers a checkpoint: sources inject its barrier, tasks that have ended snapshot directly. A
    /// savepoint with a `target` is written there instead of the job's checkpoint storage.
    pub(super) fn trigger(
        &mut self,
        _ctx: &mut Context<Self>,
        savepoint: bool,
        last: bool,
        target: Option<Arc<dyn CheckpointStore>>,
    ) -> Option<u64> {
        let cp = self.checkpoints.as_mut()?;
        let now = cp.now();
        let id = cp.tracker.trigger(now, savepoint, last);
        if let Some(store) = target {
            // Before any barrier: the tasks look the target up when they write.
            cp.config.targets.insert(id, store);
        }
        let barrier = CheckpointBarrier { id, savepoint };
        for (i, t) in self.tasks.iter().enumerate() {
            if let Some(t) = t.as_ref().filter(|_| last || self.slots[i].source || cp.finished[i]) {
                t.do_send(TriggerCheckpoint(barrier));
            }
        }
        if last {
            cp.final_triggered = true;
        }
        let in_progress = cp.tracker.pending().count();
        self.handle.update(|s| s.checkpoints.in_progress = in_progress);
        tracing::debug!(checkpoint = id, savepoint, last, "checkpoint triggered");
        Some(id)
    }

    /// A task finished its input: with checkpoints it waits for the final checkpoint, and it still owes
    /// acknowledgements for checkpoints whose barrier it will never see.
    pub(super) fn task_finished(&mut self, ctx: &mut Context<Self>, i: usize) {
        let Some(cp) = self.checkpoints.as_mut() else { return };
        cp.finished[i] = true;
        if let Some(t) = &self.tasks[i] {
            for p in cp.tracker.pending().filter(|p| !p.acked_by(i)) {
                t.do_send(TriggerCheckpoint(CheckpointBarrier { id: p.id, savepoint: p.savepoint }));
            }
        }
        if cp.finished.iter().all(|f| *f) && !cp.final_triggered {
            info!("every task has ended: taking the final checkpoint");
            self.trigger(ctx, false, true, None);
        }
    }

    pub(super) fn task_acked(&mut self, ctx: &mut Context<Self>, i: usize, checkpoint: u64, file: TaskFile) {
        if let Some(faults) = &self.graph.supervision.faults {
            let node = self.graph.vertices[self.slots[i].id.vertex].display_name();
            if faults.drop_ack(&node, self.slots[i].id.subtask, checkpoint) {
                return;
            }
        }
        let Some(cp) = self.checkpoints.as_mut() else { return };
        if let AckOutcome::AllAcked(p) = cp.tracker.ack(checkpoint, i, file) {
            self.commit_metadata(ctx, p);
        }
    }

    pub(super) fn task_declined(&mut self, ctx: &mut Context<Self>, task: TaskId, checkpoint: u64, error: String) {
        let Some(cp) = &self.checkpoints else { return };
        if !cp.tracker.is_pending(checkpoint) {
            return;
        }
        let kind = (cp.tracker.is_last(checkpoint), cp.tracker.is_savepoint(checkpoint));
        let reason = format!("task {} of vertex {} declined: {error}", task.subtask, task.vertex);
        self.checkpoint_failed(ctx, checkpoint, kind, reason);
    }

    /// Every task acknowledged: write the metadata (the commit point), then complete.
    fn commit_metadata(&mut self, ctx: &mut Context<Self>, p: Pending) {
        let Some(cp) = &self.checkpoints else { return };
        // Every task has acknowledged, so the tracker no longer holds it: whether it was the final
        // checkpoint (to try again if the write fails) has to come from here.
        let last = p.last;
        let dir = checkpoint_dir(p.id, p.savepoint);
        let meta = CheckpointMetadata {
            format_version: FORMAT_VERSION,
            job: self.graph.job.to_string(),
            id: p.id,
            savepoint: p.savepoint,
            finished: p.last,
            time_ms: super::now_ms().saturating_sub(cp.now().saturating_sub(p.started_ms)),
            duration_ms: cp.now().saturating_sub(p.started_ms),
            max_parallelism: self.graph.max_parallelism,
            tasks: p.acks.into_iter().flatten().collect(),
        };
        let store = cp.config.store_for(p.id);
        let path = format!("{dir}/{METADATA_FILE}");
        let bytes = meta.to_bytes();
        let fut = async move { store.write_atomic(path, bytes).await };
        ctx.spawn(fut.into_actor(self).map(move |r, act, ctx| match r {
            Ok(()) => act.checkpoint_completed(ctx, meta, last),
            Err(e) => act.checkpoint_failed(ctx, meta.id, (last, meta.savepoint), format!("metadata not written: {e}")),
        }));
    }

    fn checkpoint_completed(&mut self, ctx: &mut Context<Self>, meta: CheckpointMetadata, last: bool) {
        let Some(cp) = self.checkpoints.as_mut() else { return };
        let now = cp.now();
        let subsumed = cp.tracker.completed(meta.id, now);
        // A savepoint elsewhere belongs to the user: restarts keep restoring from the job's own storage.
        let elsewhere = cp.config.targets.remove(meta.id);
        if elsewhere.is_none() && cp.latest.as_ref().is_none_or(|l| l.id < meta.id) {
            cp.latest = Some(meta.clone());
        }
        let store = elsewhere.unwrap_or_else(|| cp.config.store.clone());
        let location = format!("{}/{}", store.describe(), checkpoint_dir(meta.id, meta.savepoint));
        info!(checkpoint = meta.id, savepoint = meta.savepoint, size = meta.size(), ms = meta.duration_ms, %location,
            "checkpoint complete");
        let done = CompletedCheckpoint {
            id: meta.id,
            location,
            size: meta.size(),
            duration_ms: meta.duration_ms,
            time_ms: super::now_ms(),
        };
        let in_progress = cp.tracker.pending().count();
        self.handle.update(|s| {
            let c = &mut s.checkpoints;
            c.completed += 1;
            c.in_progress = in_progress;
            if meta.savepoint {
                c.latest_savepoint = Some(done.clone());
            } else {
                c.latest = Some(done.clone());
            }
        });
        // Notify before deleting anything: a sink commits what the checkpoint covers.
        for t in self.tasks.iter().flatten() {
            t.do_send(CheckpointComplete { id: meta.id, last });
        }
        let mut victims: Vec<String> = subsumed.iter().map(|id| checkpoint_dir(*id, false)).collect();
        if !meta.savepoint {
            cp.retained.push(meta.id);
            let excess = cp.retained.len().saturating_sub(cp.config.retain.max(1));
            victims.extend(cp.retained.drain(..excess).map(|id| checkpoint_dir(id, false)));
            victims.extend(cp.stale.drain(..).map(|id| checkpoint_dir(id, false)));
        }
        for dir in victims {
            let store = cp.config.store.clone();
            actix::spawn(async move {
                if let Err(e) = store.delete_dir(dir.clone()).await {
                    warn!(%dir, error = %e, "old checkpoint not deleted");
                }
            });
        }
        if cp.stop_after == Some(meta.id) {
            info!(savepoint = meta.id, "savepoint complete: stopping the job");
            self.cancel_tasks();
            let summary = self.summary(true);
            self.complete(ctx, Ok(summary));
        }
    }

    /// Checkpoint `id` failed (`was_final`: it was the final checkpoint, which is then tried again;
    /// `savepoint`: its directory is `savepoint-<id>`); more than `tolerable_failures` in a row fail the
    /// job over (restart strategy).
    fn checkpoint_failed(
        &mut self,
        ctx: &mut Context<Self>,
        id: u64,
        (was_final, savepoint): (bool, bool),
        reason: String,
    ) {
        let Some(cp) = self.checkpoints.as_mut() else { return };
        let now = cp.now();
        let verdict = cp.tracker.failed(id, now);
        warn!(checkpoint = id, %reason, ?verdict, "checkpoint failed");
        let store = cp.config.targets.remove(id).unwrap_or_else(|| cp.config.store.clone());
        let dir = checkpoint_dir(id, savepoint);
        actix::spawn(async move {
            let _ = store.delete_dir(dir).await;
        });
        let in_progress = cp.tracker.pending().count();
        self.handle.update(|s| {
            s.checkpoints.failed += 1;
            s.checkpoints.in_progress = in_progress;
            s.checkpoints.last_failure = Some(format!("checkpoint {id}: {reason}"));
        });
        if cp.stop_after == Some(id) {
            cp.stop_after = None;
            warn!("the savepoint for stopping failed: the job keeps running");
        }
        let tolerable = cp.config.tolerable_failures;
        let pause = cp.config.min_pause.max(Duration::from_millis(100));
        if was_final && matches!(verdict, FailureVerdict::Tolerated(_)) {
            cp.final_triggered = false;
        }
        match verdict {
            FailureVerdict::FailJob(n) => {
                let message = format!(
                    "{n} checkpoints failed in a row (tolerable_failures: {tolerable}); the last: checkpoint {id}: {reason}"
                );
                self.checkpoints_failed(ctx, message);
            }
            FailureVerdict::Tolerated(_) if was_final => {
                // Every task has ended; try the final checkpoint again after a pause.
                ctx.run_later(pause, |act, ctx| {
                    if act.done.is_some() {
                        act.trigger(ctx, false, true, None);
                    }
                });
            }
            FailureVerdict::Tolerated(_) => {}
        }
    }

    fn expire_checkpoints(&mut self, ctx: &mut Context<Self>) {
        let Some(cp) = &self.checkpoints else { return };
        let (expired, timeout) = (cp.tracker.timed_out(cp.now()), cp.config.timeout);
        let expired: Vec<(u64, (bool, bool))> =
            expired.into_iter().map(|id| (id, (cp.tracker.is_last(id), cp.tracker.is_savepoint(id)))).collect();
        for (id, kind) in expired {
            self.checkpoint_failed(ctx, id, kind, format!("not complete within the timeout of {timeout:?}"));
        }
    }

    /// After the final checkpoint, tasks commit and close; the job ends when all have.
    pub(super) fn task_closed(&mut self, ctx: &mut Context<Self>, i: usize) {
        let Some(cp) = self.checkpoints.as_mut() else { return };
        cp.closed[i] = true;
        self.tasks[i] = None;
        if cp.closed.iter().all(|c| *c) {
            let summary: JobSummary = self.summary(self.stopping);
            self.complete(ctx, Ok(summary));
        }
    }

    /// A savepoint on request (to `target`, else the job's checkpoint storage), optionally followed by a stop.
    pub(super) fn savepoint(
        &mut self,
        ctx: &mut Context<Self>,
        then_stop: bool,
        target: Option<Arc<dyn CheckpointStore>>,
    ) {
        let Some(cp) = &self.checkpoints else { return };
        if cp.final_triggered {
            warn!("savepoint refused: the job is finishing");
            return;
        }
        if let Some(id) = self.trigger(ctx, true, false, target) {
            info!(savepoint = id, then_stop, "savepoint triggered");
            if then_stop {
                if let Some(cp) = self.checkpoints.as_mut() {
                    cp.stop_after = Some(id);
                }
            }
        }
    }
}
