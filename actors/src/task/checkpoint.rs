//! The task's part of a checkpoint: on a barrier (or, at a source, on the coordinator's trigger) it
//! lets its operators emit what must precede the barrier, captures every node's state, forwards the
//! barrier, and then encodes and writes its snapshot file off the hot path before acknowledging. On
//! completion it tells its operators, source and sink (which publishes its pre-committed output).
use super::{Result, TaskActor, TaskEventKind};
use crate::checkpoint::format::{encode_task_file, NodeEntry};
use crate::checkpoint::{checkpoint_dir, CheckpointStore, NodeState, SavepointTargets, TaskFile, TaskSnapshot};
use crate::faults::Phase;
use crate::panic::guard;
use actix::prelude::*;
use eddy_api::state::SnapshotJob;
use eddy_api::{CheckpointBarrier, StreamElement};
use std::sync::Arc;

/// A node's state with its keyed part still to be encoded.
struct Captured {
    state: NodeState,
    keyed: Option<SnapshotJob>,
}

/// Checkpointing as a task sees it.
#[derive(Clone)]
pub struct TaskCheckpointing {
    /// Where snapshot files go.
    pub store: Arc<dyn CheckpointStore>,
    /// Exactly-once: align barriers over the inputs.
    pub align: bool,
    /// Savepoints that go elsewhere.
    pub targets: SavepointTargets,
}

impl TaskCheckpointing {
    /// Where the snapshot file of checkpoint or savepoint `id` goes.
    fn store_for(&self, id: u64) -> Arc<dyn CheckpointStore> {
        self.targets.get(id).unwrap_or_else(|| self.store.clone())
    }
}

/// Asks a task to take checkpoint `0`: sources inject its barrier; a task that has ended snapshots its
/// final state at once.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct TriggerCheckpoint(pub CheckpointBarrier);

/// Checkpoint `id` is complete; `last`: it is the job's final one, so the task commits and closes.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct CheckpointComplete {
    /// The checkpoint.
    pub id: u64,
    /// The job's final checkpoint: close after committing.
    pub last: bool,
}

impl TaskActor {
    /// Takes checkpoint `barrier` now (barrier aligned, or triggered at a source or ended task).
    pub(super) fn checkpoint(&mut self, ctx: &mut Context<Self>, barrier: CheckpointBarrier) -> Result<()> {
        let Some(cp) = self.checkpointing.clone() else {
            // Barriers only exist when the job checkpoints; forward them anyway so nothing wedges.
            return if self.ended { Ok(()) } else { self.broadcast(|| StreamElement::Barrier(barrier)) };
        };
        if barrier.id <= self.last_checkpoint {
            return Ok(());
        }
        self.last_checkpoint = barrier.id;
        let id = barrier.id;
        self.fault_sites(Phase::Snapshot)?;
        if !self.ended {
            for i in 0..self.stages.len() {
                self.run_hook(i, |op, out| op.on_checkpoint(id, out))?;
            }
        }
        let capturing = std::time::Instant::now();
        let captured = self.capture(id)?;
        // The part of a checkpoint that holds up processing (Flink's "sync duration").
        tracing::debug!(checkpoint = id, sync_ms = capturing.elapsed().as_millis() as u64, "state captured");
        if !self.ended {
            self.broadcast(|| StreamElement::Barrier(barrier))?;
        }
        self.write_snapshot(ctx, cp.store_for(id), barrier, captured);
        Ok(())
    }

    fn node_state(&self, node: &Arc<str>, schema: String) -> NodeState {
        NodeState {
            node: node.to_string(),
            subtask: self.id.subtask,
            parallelism: self.parallelism,
            schema,
            ..NodeState::default()
        }
    }

    /// Captures the state of every node of the chain for checkpoint `id`.
    fn capture(&mut self, id: u64) -> Result<Vec<Captured>> {
        let mut out = Vec::new();
        if let Some(src) = self.source.as_mut() {
            let position = guard(&src.name, || src.source.snapshot_position(id))?;
            let mut state = NodeState {
                node: src.name.to_string(),
                subtask: self.id.subtask,
                parallelism: self.parallelism,
                schema: src.schema.clone(),
                ..NodeState::default()
            };
            state.source = position;
            out.push(Captured { state, keyed: None });
        }
        for i in 0..self.stages.len() {
            let mut state = self.node_state(&self.stages[i].name, self.stages[i].schema.clone());
            let stage = &mut self.stages[i];
            state.operator = guard(&stage.name, || stage.op.snapshot_state(id))?;
            let keyed = match stage.state.as_mut() {
                Some(st) => {
                    state.key_groups = Some(st.key_groups());
                    Some(guard(&stage.name, || st.snapshot())?)
                }
                None => None,
            };
            out.push(Captured { state, keyed });
        }
        if let Some(s) = self.sink.as_mut() {
            let pending = guard(&s.name, || s.sink.pre_commit(id))?;
            let mut state = NodeState {
                node: s.name.to_string(),
                subtask: self.id.subtask,
                parallelism: self.parallelism,
                ..NodeState::default()
            };
            state.sink = pending;
            out.push(Captured { state, keyed: None });
        }
        Ok(out)
    }

    /// Encodes the captured state on the blocking pool, writes the file and acknowledges (or declines).
    fn write_snapshot(
        &mut self,
        ctx: &mut Context<Self>,
        store: Arc<dyn CheckpointStore>,
        barrier: CheckpointBarrier,
        captured: Vec<Captured>,
    ) {
        let id = barrier.id;
        let file_name = format!("{}.{}.snap", self.head, self.id.subtask);
        let path = format!("{}/{file_name}", checkpoint_dir(id, barrier.savepoint));
        let job = self.job.clone();
        let entries: Vec<NodeEntry> = captured
            .iter()
            .map(|c| NodeEntry {
                node: c.state.node.clone(),
                subtask: c.state.subtask,
                parallelism: c.state.parallelism,
                key_groups: c.state.key_groups,
                schema: c.state.schema.clone(),
            })
            .collect();
        let work = async move {
            let encode = tokio::task::spawn_blocking(move || -> std::result::Result<Vec<u8>, String> {
                let mut nodes = Vec::with_capacity(captured.len());
                for Captured { mut state, keyed } in captured {
                    if let Some(job) = keyed {
                        state.keyed = Some(job().map_err(|e| format!("node `{}`: {e}", state.node))?);
                    }
                    nodes.push(state);
                }
                encode_task_file(&job, id, &TaskSnapshot { nodes }).map_err(|e| e.to_string())
            });
            let bytes = match encode.await {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(e)) => return Err(e),
                Err(e) => return Err(format!("snapshot encoding panicked: {e}")),
            };
            let size = bytes.len() as u64;
            store.write(path, bytes).await.map_err(|e| e.to_string())?;
            Ok(TaskFile { path: file_name, size, nodes: entries })
        };
        ctx.spawn(work.into_actor(self).map(move |r, act, _| match r {
            Ok(file) => act.report(TaskEventKind::Acked { checkpoint: id, file }),
            Err(error) => {
                tracing::warn!(checkpoint = id, %error, "snapshot not written");
                act.report(TaskEventKind::Declined { checkpoint: id, error })
            }
        }));
    }

    /// Checkpoint `id` is complete: notify every node (the sink commits).
    pub(super) fn checkpoint_complete(&mut self, id: u64) -> Result<()> {
        self.fault_sites(Phase::Commit)?;
        if let Some(src) = self.source.as_mut() {
            guard(&src.name, || src.source.on_checkpoint_complete(id))?;
        }
        for s in &mut self.stages {
            guard(&s.name, || s.op.on_checkpoint_complete(id))?;
        }
        if let Some(s) = self.sink.as_mut() {
            guard(&s.name, || s.sink.commit(id))?;
        }
        Ok(())
    }
}

impl Handler<TriggerCheckpoint> for TaskActor {
    type Result = ();
    fn handle(&mut self, TriggerCheckpoint(barrier): TriggerCheckpoint, ctx: &mut Context<Self>) {
        if self.stopped || (self.source.is_none() && !self.ended) {
            return; // non-source tasks checkpoint on the barrier, not on the trigger
        }
        let span = self.span.clone();
        let _g = span.enter();
        match self.checkpoint(ctx, barrier) {
            Ok(()) => self.settle(ctx, false),
            Err(e) => self.fail(ctx, e),
        }
    }
}

impl Handler<CheckpointComplete> for TaskActor {
    type Result = ();
    fn handle(&mut self, msg: CheckpointComplete, ctx: &mut Context<Self>) {
        if self.stopped {
            return;
        }
        let span = self.span.clone();
        let _g = span.enter();
        if let Err(e) = self.checkpoint_complete(msg.id) {
            return self.fail(ctx, e);
        }
        if msg.last {
            self.release(ctx, Some(TaskEventKind::Closed));
        }
    }
}
