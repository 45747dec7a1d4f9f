//! The snapshot codec: how operators, sources and sinks turn their checkpointed state into bytes.
//!
//! Everything Eddy checkpoints is encoded with MessagePack in its compact form (rmp-serde, fields by
//! position), which is several times smaller and faster than named fields. Use [`encode`] in
//! `snapshot_state` / `snapshot_position` / `pre_commit` and [`decode`] when restoring; a decode error
//! names what was being read, so a snapshot from an incompatible version says which part broke.
//!
//! ```
//! use eddy_api::snapshot::{decode, encode};
//! let bytes = encode(&(42u64, "split-3".to_string()))?;
//! let (offset, split): (u64, String) = decode(&bytes, "file source position")?;
//! assert_eq!((offset, split.as_str()), (42, "split-3"));
//! # Ok::<(), eddy_api::EddyError>(())
//! ```
use crate::error::{EddyError, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Encodes a value for a snapshot.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    rmp_serde::to_vec(value).map_err(|e| EddyError::internal(format!("cannot encode snapshot state: {e}")))
}

/// Decodes a value written by [`encode`]; `what` names it in the error (e.g. "window state").
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    rmp_serde::from_slice(bytes).map_err(|e| EddyError::user(format!("cannot decode {what} from the snapshot: {e}")))
}

/// Appends the encoding of a value to `out` (to build one buffer from many parts).
pub fn encode_into<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<()> {
    rmp_serde::encode::write(out, value).map_err(|e| EddyError::internal(format!("cannot encode snapshot state: {e}")))
}
