//! A checkpoint loaded for a restore: the state of every node, by node name and old subtask.
use super::format::{CheckpointMetadata, NodeState, TaskSnapshot};
use std::collections::HashMap;

/// A complete checkpoint or savepoint, read and verified, ready to hand to the tasks.
#[derive(Clone, Debug, Default)]
pub struct RestoredCheckpoint {
    /// Where it was read from (for messages).
    pub location: String,
    /// Its id; the restored job numbers its checkpoints after it.
    pub id: u64,
    /// Number of key groups of the job that wrote it.
    pub max_parallelism: usize,
    /// State per node, sorted by the subtask that wrote it.
    pub nodes: HashMap<String, Vec<NodeState>>,
}

impl RestoredCheckpoint {
    /// Assembles a checkpoint from its metadata and decoded task files.
    pub fn new(location: String, meta: &CheckpointMetadata, files: Vec<TaskSnapshot>) -> Self {
        let mut nodes: HashMap<String, Vec<NodeState>> = HashMap::new();
        for f in files {
            for n in f.nodes {
                nodes.entry(n.node.clone()).or_default().push(n);
            }
        }
        for v in nodes.values_mut() {
            v.sort_by_key(|n| n.subtask);
        }
        RestoredCheckpoint { location, id: meta.id, max_parallelism: meta.max_parallelism, nodes }
    }

    /// The state of a node, one entry per subtask of the run that wrote it (empty when the checkpoint
    /// has none, e.g. a node added since).
    pub fn node(&self, name: &str) -> &[NodeState] {
        self.nodes.get(name).map_or(&[], Vec::as_slice)
    }

    /// The blobs of one kind (`pick`) of a node's subtasks, indexed by old subtask (missing ones empty).
    pub fn blobs(&self, name: &str, pick: impl Fn(&NodeState) -> Option<&Vec<u8>>) -> Vec<Vec<u8>> {
        let states = self.node(name);
        let n = states.iter().map(|s| s.subtask + 1).max().unwrap_or(0);
        let mut out = vec![Vec::new(); n];
        for s in states {
            if let Some(b) = pick(s) {
                out[s.subtask] = b.clone();
            }
        }
        if out.iter().all(Vec::is_empty) {
            out.clear();
        }
        out
    }
}
