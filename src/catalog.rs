//! Every record of every configured index, read once: what list, report and metrics derive
//! their figures from.
//!
//! An index that cannot be read (unreachable storage, damaged file) does not hide the others:
//! its error is collected beside the records. A failure recorded as a witness on several
//! storages appears once.

use std::collections::HashSet;

use crate::config::Settings;
use crate::index::{BackupRecord, IndexStore};

/// The record filters that list, verify and friends share (`--server`, `--db`, `--type`,
/// `--storage`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RecordFilter {
    /// Only this server (repeatable)
    #[arg(long = "server", value_name = "NAME")]
    pub servers: Vec<String>,
    /// Only this database (repeatable)
    #[arg(long = "db", value_name = "NAME")]
    pub databases: Vec<String>,
    /// Only this backup type
    #[arg(long = "type", short = 't', value_name = "TYPE")]
    pub backup_type: Option<String>,
    /// Only copies on this storage
    #[arg(long, value_name = "NAME")]
    pub storage: Option<String>,
}

impl RecordFilter {
    /// Checks that the servers and storage named are configured.
    ///
    /// Fails with [`Unknown`] naming the unknown one (exit code 2).
    pub fn validate(&self, settings: &Settings) -> Result<(), crate::config::settings::Unknown> {
        for name in &self.servers {
            settings.server(name)?;
        }
        if let Some(name) = &self.storage {
            settings.storage(name)?;
        }
        Ok(())
    }

    /// Whether `r` passes every filter given.
    pub fn matches(&self, r: &BackupRecord) -> bool {
        (self.servers.is_empty() || self.servers.contains(&r.server))
            && (self.databases.is_empty() || self.databases.contains(&r.database))
            && self
                .backup_type
                .as_ref()
                .is_none_or(|t| t == &r.backup_type)
            && self.storage.as_ref().is_none_or(|s| s == &r.storage)
    }
}

/// Records from the readable indexes, and why the others could not be read.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Sorted by start time, oldest first.
    pub records: Vec<BackupRecord>,
    /// One message per unreadable index, with the storage it belongs to.
    pub errors: Vec<(String, String)>,
}

/// Reads the index of every configured server (or only `servers`, when not empty) on every
/// configured storage.
pub fn load(session: &crate::session::Session, servers: &[String]) -> Catalog {
    let settings = &session.settings;
    let mut out = Catalog::default();
    let mut seen = HashSet::new();
    for st in &settings.storages {
        let storage = match session.storage(&st.name) {
            Ok(s) => s,
            Err(e) => {
                out.errors.push((st.name.clone(), e.to_string()));
                continue;
            }
        };
        for server in settings
            .servers
            .iter()
            .filter(|s| servers.is_empty() || servers.contains(&s.name))
        {
            match IndexStore::new(storage.as_ref(), &server.name).load() {
                Ok(index) => {
                    for r in index.backups {
                        // A successful copy lives on the storage whose index holds it; one
                        // that claims another (a tampered or copied index) is not trusted.
                        if r.status == crate::index::Status::Success && r.storage != st.name {
                            out.errors.push((
                                st.name.clone(),
                                format!(
                                    "index of server '{}' on storage '{}' holds backup {} as stored on '{}': ignored (run `sqlguard index rebuild --storage {}`)",
                                    server.name, st.name, r.id, r.storage, st.name
                                ),
                            ));
                            continue;
                        }
                        if seen.insert((r.id.clone(), r.storage.clone())) {
                            out.records.push(r);
                        }
                    }
                }
                Err(e) => out.errors.push((st.name.clone(), e.to_string())),
            }
        }
    }
    out.records.sort_by(|a, b| {
        a.started_at
            .cmp(&b.started_at)
            .then_with(|| a.id.cmp(&b.id))
    });
    out
}
