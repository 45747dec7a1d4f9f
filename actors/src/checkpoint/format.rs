//! The bytes of a checkpoint.
//!
//! A task writes one **snapshot file** per checkpoint with the state of every node of its chain:
//!
//! ```text
//! "EDDYSNAP" | version: u16 LE | header length: u32 LE | header (MessagePack) |
//! payload length: u64 LE | payload (MessagePack TaskSnapshot) | CRC-32 of all the above: u32 LE
//! ```
//!
//! The header repeats the job, checkpoint id, node ids and key-group ranges, so a file can be checked
//! against the metadata that names it. The coordinator then writes the checkpoint's **metadata**
//! (`_metadata`, JSON, so people can read it) last and atomically: a checkpoint is complete exactly when
//! its metadata exists and lists every task file.
use eddy_api::KeyGroupRange;
use serde::{Deserialize, Serialize};

/// The format version written by this build; files of a newer version are refused.
pub const FORMAT_VERSION: u16 = 1;
const MAGIC: &[u8; 8] = b"EDDYSNAP";

/// The state of one node of a task's chain.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct NodeState {
    /// Node name (its stable id across runs).
    pub node: String,
    /// The subtask that wrote it.
    pub subtask: usize,
    /// The node's parallelism in that run.
    pub parallelism: usize,
    /// A fingerprint of the node's output schema; a restore into a changed schema is refused.
    pub schema: String,
    /// Key groups of the keyed state, for a keyed node.
    pub key_groups: Option<KeyGroupRange>,
    /// Keyed state and timers (`KeyedState::snapshot`, encoded).
    #[serde(default, with = "serde_bytes")]
    pub keyed: Option<Vec<u8>>,
    /// An operator's own state (`Operator::snapshot_state`).
    #[serde(default, with = "serde_bytes")]
    pub operator: Option<Vec<u8>>,
    /// A source's position (`Source::snapshot_position`).
    #[serde(default, with = "serde_bytes")]
    pub source: Option<Vec<u8>>,
    /// A sink's pre-committed transaction (`Sink::pre_commit`).
    #[serde(default, with = "serde_bytes")]
    pub sink: Option<Vec<u8>>,
}

/// What one task file holds.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TaskSnapshot {
    /// One entry per node of the chain.
    pub nodes: Vec<NodeState>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    job: String,
    checkpoint: u64,
    nodes: Vec<(String, usize, Option<KeyGroupRange>)>,
}

/// A node's entry in the metadata.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeEntry {
    /// Node name.
    pub node: String,
    /// Subtask.
    pub subtask: usize,
    /// Parallelism of the node in the run that took the checkpoint.
    pub parallelism: usize,
    /// Key groups, for keyed nodes.
    pub key_groups: Option<KeyGroupRange>,
    /// Output schema fingerprint.
    pub schema: String,
}

/// One task file, as listed in the metadata.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TaskFile {
    /// Path relative to the checkpoint directory.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// The nodes whose state it holds.
    pub nodes: Vec<NodeEntry>,
}

/// The `_metadata` file of a complete checkpoint or savepoint.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CheckpointMetadata {
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u16,
    /// Job name.
    pub job: String,
    /// Checkpoint id (increasing within a job's history, across restores).
    pub id: u64,
    /// A savepoint (taken on request, never deleted by retention).
    pub savepoint: bool,
    /// The job's final checkpoint: every source had ended and every sink committed.
    pub finished: bool,
    /// When it was triggered (ms since the epoch).
    pub time_ms: u64,
    /// From trigger to the last acknowledgement, in ms.
    pub duration_ms: u64,
    /// Number of key groups of the job (restores must keep it).
    pub max_parallelism: usize,
    /// Every task file.
    pub tasks: Vec<TaskFile>,
}

impl CheckpointMetadata {
    /// Total size of the task files.
    pub fn size(&self) -> u64 {
        self.tasks.iter().map(|t| t.size).sum()
    }

    /// Encodes as pretty JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Decodes, naming `path` in errors.
    pub fn from_bytes(bytes: &[u8], path: &str) -> Result<Self, FormatError> {
        let m: CheckpointMetadata = serde_json::from_slice(bytes)
            .map_err(|e| FormatError::new(path, format!("not valid checkpoint metadata: {e}")))?;
        if m.format_version > FORMAT_VERSION {
            return Err(FormatError::new(
                path,
                format!("format version {} is newer than this eddy reads ({FORMAT_VERSION})", m.format_version),
            ));
        }
        Ok(m)
    }
}

/// A snapshot or metadata file that cannot be read.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error("{path}: {message}")]
pub struct FormatError {
    /// The file.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl FormatError {
    fn new(path: &str, message: impl Into<String>) -> Self {
        FormatError { path: path.to_string(), message: message.into() }
    }
}

/// Encodes a task's snapshot file.
pub fn encode_task_file(job: &str, checkpoint: u64, snap: &TaskSnapshot) -> Result<Vec<u8>, FormatError> {
    let header = Header {
        job: job.to_string(),
        checkpoint,
        nodes: snap.nodes.iter().map(|n| (n.node.clone(), n.subtask, n.key_groups)).collect(),
    };
    let enc = |e: rmp_serde::encode::Error| FormatError::new("(snapshot)", format!("cannot encode: {e}"));
    let header = rmp_serde::to_vec(&header).map_err(enc)?;
    let payload = rmp_serde::to_vec(snap).map_err(enc)?;
    let mut out = Vec::with_capacity(8 + 2 + 4 + header.len() + 8 + payload.len() + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Decodes and verifies a task's snapshot file (magic, version, length, checksum, and the header
/// against `checkpoint`); every error names `path`.
pub fn decode_task_file(bytes: &[u8], path: &str, checkpoint: u64) -> Result<TaskSnapshot, FormatError> {
    let err = |m: String| FormatError::new(path, m);
    if bytes.len() < 8 + 2 + 4 + 8 + 4 || &bytes[..8] != MAGIC {
        return Err(err(if bytes.len() >= 8 && &bytes[..8] == MAGIC {
            format!("truncated ({} bytes)", bytes.len())
        } else {
            "not an Eddy snapshot file (bad magic bytes)".into()
        }));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let version = u16::from_le_bytes([body[8], body[9]]);
    if version > FORMAT_VERSION {
        return Err(err(format!("format version {version} is newer than this eddy reads ({FORMAT_VERSION})")));
    }
    let header_len = u32::from_le_bytes([body[10], body[11], body[12], body[13]]) as usize;
    let payload_at = 14usize.saturating_add(header_len);
    if payload_at.saturating_add(8) > body.len() {
        return Err(err(format!("truncated ({} bytes, header says more)", bytes.len())));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&body[payload_at..payload_at + 8]);
    let payload_len = usize::try_from(u64::from_le_bytes(len)).unwrap_or(usize::MAX);
    if payload_at + 8 + payload_len.min(body.len()) != body.len() || payload_len > body.len() {
        return Err(err(format!("truncated or padded ({} bytes, expected a {payload_len}-byte payload)", bytes.len())));
    }
    let actual = crc32fast::hash(body);
    if actual != stored {
        return Err(err(format!(
            "checksum mismatch (stored {stored:08x}, computed {actual:08x}): the file is corrupt"
        )));
    }
    let header: Header = rmp_serde::from_slice(&body[14..payload_at]).map_err(|e| err(format!("bad header: {e}")))?;
    if header.checkpoint != checkpoint {
        return Err(err(format!("belongs to checkpoint {}, not {checkpoint}", header.checkpoint)));
    }
    rmp_serde::from_slice(&body[payload_at + 8..]).map_err(|e| err(format!("bad payload: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TaskSnapshot {
        TaskSnapshot {
            nodes: vec![NodeState {
                node: "agg".into(),
                subtask: 1,
                parallelism: 2,
                schema: "a:int".into(),
                key_groups: Some(KeyGroupRange { start: 64, end: 127 }),
                keyed: Some(vec![1, 2, 3]),
                ..NodeState::default()
            }],
        }
    }

    #[test]
    fn round_trips_and_detects_damage() {
        let bytes = encode_task_file("job", 7, &sample()).unwrap();
        assert_eq!(decode_task_file(&bytes, "f", 7).unwrap(), sample());
        assert!(decode_task_file(&bytes, "f", 8).unwrap_err().message.contains("checkpoint 7"));
        for cut in [0, 5, 20, bytes.len() - 1] {
            let e = decode_task_file(&bytes[..cut], "chk-7/agg.1", 7).unwrap_err();
            assert_eq!(e.path, "chk-7/agg.1");
        }
        for i in [0, 9, 15, bytes.len() / 2, bytes.len() - 2] {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(decode_task_file(&bad, "f", 7).is_err(), "flipped byte {i} went unnoticed");
        }
    }
}
