//! The library's top-level error: one variant per module error, and the exit code each maps to.

use crate::exit::ExitCode;

/// Why a command could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),
    #[error(transparent)]
    Index(#[from] crate::index::IndexError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error(transparent)]
    Locked(#[from] crate::joblock::LockError),
    /// A flag or argument that makes no sense with the configuration.
    #[error("{0}")]
    Usage(String),
    /// Writing the command's result failed.
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

impl Error {
    /// The exit code this error ends the run with.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Config(_) | Error::Backup(_) | Error::Usage(_) => ExitCode::Usage,
            Error::Locked(crate::joblock::LockError::Held { .. }) => ExitCode::Locked,
            _ => ExitCode::Failure,
        }
    }
}
