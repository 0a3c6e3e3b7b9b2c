//! Configuration: the YAML file ([`file`]), the environment, and the one place where they are merged
//! into [`Settings`] ([`settings`]).
//!
//! Commands receive a resolved `Settings`; they never read the file or the environment themselves.

pub mod file;
pub mod settings;

use std::path::PathBuf;

pub use settings::{
    BackupTypeSettings, Retention, ServerSettings, Settings, StorageKind, StorageSettings,
    TlsSettings,
};

/// Everything that can be wrong with the configuration. Each variant names the file or variable
/// and the key involved, and the message says how to fix it. Maps to exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source} (pass an existing file with --config or {var})", var = crate::env_vars::CONFIG)]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{origin}: `{key}`: {message}")]
    Invalid {
        /// The file, or "environment".
        origin: String,
        /// The dotted key, e.g. `servers.main.port`.
        key: String,
        message: String,
    },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
}
