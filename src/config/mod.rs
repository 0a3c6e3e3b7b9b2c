//! Configuration: the YAML file ([`file`]), the environment ([`env`]), and the one place where
//! they are merged into [`Settings`] ([`settings`]), one module per section.
//!
//! | module | owns |
//! | --- | --- |
//! | [`file`] | the YAML schema as written; every struct rejects unknown keys |
//! | [`env`] | the `SQLGUARD_*` overrides, read and typed |
//! | [`values`] | one value: `${VAR}`, `*_file` secrets, names, lists, cron expressions |
//! | [`server`], [`dump_options`] | `servers` |
//! | [`storage`] | `storage` |
//! | [`backup_types`] | `backup_types` |
//! | [`metrics`] | `metrics` |
//! | [`hooks`], [`notify`] | `hooks`, `notify` (and the same keys of a backup type) |
//! | [`encryption`] | `encryption` (and a backup type's `encryption`): age recipients, identity file |
//! | [`settings`] | the whole: file discovery, top-level keys, lookups, `config show` |
//!
//! Commands receive a resolved `Settings`; they never read the file or the environment themselves.

pub mod backup_types;
pub mod dump_options;
pub mod encryption;
pub mod env;
pub mod file;
pub mod hooks;
pub mod metrics;
pub mod notify;
pub mod server;
pub mod settings;
pub mod show;
pub mod storage;
pub mod values;

use std::path::{Path, PathBuf};

/// The most a config file may hold.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;
/// The most a secret, recipients or identity file may hold.
pub const MAX_SECRET_BYTES: u64 = 1 << 20;

/// Reads a text file of at most `max` bytes. A file that goes on (`/dev/zero`, a runaway
/// generator behind a pipe) is refused at `max`, not read into memory to the end.
///
/// Fails with the I/O error, or one naming the limit.
pub fn read_text(path: &Path, max: u64) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > max {
        return Err(std::io::Error::other(format!(
            "it holds more than {} KiB, more than such a file ever needs: is it the right file?",
            max >> 10
        )));
    }
    Ok(text)
}

pub use backup_types::BackupTypeSettings;
pub use metrics::MetricsSettings;
pub use server::{ServerSettings, TlsSettings};
pub use settings::Settings;
pub use storage::{S3Settings, StorageKind, StorageSettings};

/// Everything that can be wrong with the configuration. Each variant names the file or variable
/// and the key involved, and the message says how to fix it. Maps to exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {cause} (pass an existing file with --config or {var})", var = crate::env_vars::CONFIG)]
    Read {
        path: PathBuf,
        cause: std::io::Error,
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
    #[error("no configuration: no config file (looked for {searched}) and no {host} in the environment; write a config file (see `man sqlguard`) or pass one with --config", host = crate::env_vars::DB_HOST)]
    NoConfig { searched: String },
}

#[cfg(test)]
pub(crate) mod test_support {
    pub use std::collections::HashMap;
    pub use std::io::Write;
    pub use std::path::Path;

    pub use super::{ConfigError, Settings, StorageKind};
    pub use crate::env_vars as ev;

    pub fn env(pairs: &[(&str, &str)]) -> super::env::Environment {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<String, String>>()
            .into()
    }

    pub fn from_yaml(yaml: &str, e: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(yaml.as_bytes()).unwrap();
        Settings::resolve(Some(f.path()), &env(e))
    }

    pub const MINIMAL: &str = "servers:\n  main:\n    user: backup\nstorage:\n  local:\n    type: local\n    path: /tmp/x\n";
}
