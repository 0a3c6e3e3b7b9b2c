//! The library's top-level error: one variant per module error, and the exit code each maps to.
//!
//! The exit code follows from the type, never from a message: a request that cannot be carried
//! out as asked (an unknown name, no such backup, a flag that makes no sense with the config) is
//! exit 2 and did nothing; a failure while doing the work (a server that is down, a storage that
//! cannot be reached, a check that fails) is exit 1; another run holding the lock is exit 3.

use crate::exit::ExitCode;

/// A request that cannot be carried out as asked: nothing was done (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Unknown(#[from] crate::config::settings::Unknown),
    /// A flag or argument that makes no sense with the configuration.
    #[error("{0}")]
    Invalid(String),
}

/// Why a command could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Index(#[from] crate::index::IndexError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error(transparent)]
    Locked(#[from] crate::joblock::LockError),
    #[error(transparent)]
    Restore(#[from] crate::restore::RestoreError),
    #[error(transparent)]
    Verify(#[from] crate::verify::VerifyError),
    /// Writing the command's result failed. (Its cause is in the message, not a source too:
    /// a message that walks the sources would say it twice.)
    #[error("writing output: {0}")]
    Output(std::io::Error),
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Output(e)
    }
}

impl From<crate::config::settings::Unknown> for Error {
    fn from(e: crate::config::settings::Unknown) -> Self {
        Error::Request(RequestError::Unknown(e))
    }
}

impl Error {
    /// A request error with this message.
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::Request(RequestError::Invalid(message.into()))
    }

    /// The exit code this error ends the run with.
    pub fn exit_code(&self) -> ExitCode {
        use crate::restore::RestoreError;
        // A signal asked the run to stop: whatever failed after it failed because of it, and
        // the run ends as interrupted (130), as the README promises.
        if crate::signals::stopping() {
            return ExitCode::Interrupted;
        }
        match self {
            Error::Config(_) | Error::Request(_) | Error::Verify(_) => ExitCode::Usage,
            Error::Restore(RestoreError::Interrupted) => ExitCode::Interrupted,
            Error::Restore(e) if e.is_request() => ExitCode::Usage,
            Error::Locked(crate::joblock::LockError::Held { .. }) => ExitCode::Locked,
            _ => ExitCode::Failure,
        }
    }
}
