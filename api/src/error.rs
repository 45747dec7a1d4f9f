//! Errors raised by operators, sources, sinks and the runtime while a job runs.
use thiserror::Error;

/// Shorthand for results with [`EddyError`].
pub type Result<T, E = EddyError> = std::result::Result<T, E>;

/// An error while a job runs; its variant says whose fault it is.
#[derive(Debug, Error)]
pub enum EddyError {
    /// Bad user input: a malformed record, a failing expression, a missing file.
    #[error("{0}")]
    User(String),
    /// An external system failed (disk, network, store); a retry may help.
    #[error("{context}: {source}")]
    External {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A bug or broken invariant in Eddy or an extension.
    #[error("internal error: {0}")]
    Internal(String),
}

impl EddyError {
    /// A user-input error.
    pub fn user(msg: impl Into<String>) -> Self {
        EddyError::User(msg.into())
    }

    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        EddyError::External { context: context.into(), source }
    }

    /// An internal error.
    pub fn internal(msg: impl Into<String>) -> Self {
        EddyError::Internal(msg.into())
    }
}
