//! Running user code at the task boundary: a panic becomes an error, and every error remembers the node
//! of the chain it came from, so a failure never takes down the arbiter and always names its culprit.
use eddy_api::EddyError;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// An error of one node of a chain.
#[derive(Debug)]
pub(crate) struct Failure {
    pub node: Arc<str>,
    pub error: EddyError,
}

/// Runs `f` for `node`, converting a panic into an internal error that carries the panic message.
pub(crate) fn guard<T>(node: &Arc<str>, f: impl FnOnce() -> eddy_api::Result<T>) -> Result<T, Failure> {
    let fail = |error| Failure { node: node.clone(), error };
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(fail),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_string());
            Err(fail(EddyError::internal(format!("panic: {msg}"))))
        }
    }
}
