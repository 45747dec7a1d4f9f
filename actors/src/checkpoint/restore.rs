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

/// Why a checkpoint cannot be restored into a job.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestoreMismatch {
    /// The job's key-group count differs from the checkpoint's.
    #[error("the checkpoint has {checkpoint} key groups and the job {job}: `max_parallelism` must stay the same")]
    MaxParallelism {
        /// In the checkpoint.
        checkpoint: usize,
        /// In the job.
        job: usize,
    },
    /// State of a node that the job no longer has.
    #[error("the checkpoint has state of node `{0}`, which the job does not have (pass --allow-non-restored-state to drop it)")]
    Unmapped(String),
    /// A stateful node's output schema changed.
    #[error("node `{node}` changed its schema: the checkpoint has ({was}), the job has ({now}); its state cannot be restored")]
    SchemaChanged {
        /// The node.
        node: String,
        /// Before.
        was: String,
        /// Now.
        now: String,
    },
}

impl RestoredCheckpoint {
    /// Checks that this checkpoint fits `graph`: same key groups, every node with state still present
    /// (unless `allow_non_restored`, which drops their state) and stateful nodes with the same schema.
    /// Returns the nodes whose state is dropped.
    pub fn check(
        &self,
        graph: &crate::graph::JobGraph,
        allow_non_restored: bool,
    ) -> Result<Vec<String>, RestoreMismatch> {
        if self.max_parallelism != graph.max_parallelism {
            return Err(RestoreMismatch::MaxParallelism {
                checkpoint: self.max_parallelism,
                job: graph.max_parallelism,
            });
        }
        let mut schemas: HashMap<String, String> = HashMap::new();
        for v in &graph.vertices {
            if let crate::graph::Head::Source { name, builder, .. } = &v.head {
                schemas.insert(name.to_string(), builder.output_schema().to_string());
            }
            for o in &v.operators {
                schemas.insert(o.name.to_string(), o.builder.output_schema().to_string());
            }
            if let Some(s) = &v.sink {
                schemas.insert(s.name.to_string(), String::new());
            }
        }
        let mut dropped = Vec::new();
        let mut names: Vec<&String> = self.nodes.keys().collect();
        names.sort();
        for name in names {
            let states = &self.nodes[name];
            let stateful = states
                .iter()
                .any(|s| s.keyed.is_some() || s.operator.is_some() || s.source.is_some() || s.sink.is_some());
            match schemas.get(name) {
                None if !stateful => {}
                None if allow_non_restored => dropped.push(name.clone()),
                None => return Err(RestoreMismatch::Unmapped(name.clone())),
                Some(now) => {
                    let was = states.first().map(|s| s.schema.as_str()).unwrap_or_default();
                    let keyed_or_op = states.iter().any(|s| s.keyed.is_some() || s.operator.is_some());
                    if keyed_or_op && was != now {
                        return Err(RestoreMismatch::SchemaChanged {
                            node: name.clone(),
                            was: was.to_string(),
                            now: now.clone(),
                        });
                    }
                }
            }
        }
        Ok(dropped)
    }
}

/// Reads back the checkpoint described by `meta` (which this job completed) for a restart: every task
/// file, checksummed and decoded on the blocking pool. Errors name the file.
pub async fn read_completed(
    store: std::sync::Arc<dyn super::CheckpointStore>,
    meta: &CheckpointMetadata,
) -> Result<RestoredCheckpoint, String> {
    let dir = super::checkpoint_dir(meta.id, meta.savepoint);
    let mut files = Vec::with_capacity(meta.tasks.len());
    for task in &meta.tasks {
        let path = format!("{dir}/{}", task.path);
        let bytes = store.read(path.clone()).await.map_err(|e| e.to_string())?;
        let (id, name) = (meta.id, path.clone());
        let decoded = tokio::task::spawn_blocking(move || super::format::decode_task_file(&bytes, &name, id))
            .await
            .map_err(|e| format!("{path}: decoding failed: {e}"))?;
        files.push(decoded.map_err(|e| e.to_string())?);
    }
    Ok(RestoredCheckpoint::new(format!("{}/{dir}", store.describe()), meta, files))
}
