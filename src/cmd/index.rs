//! `sqlguard index rebuild`: recreate a lost or damaged index from the per-backup manifests.

use chrono::Utc;
use serde::Serialize;

use super::{Context, Printer};
use crate::error::Error;
use crate::exit::ExitCode;
use crate::index::IndexStore;
use crate::storage;

/// Index subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Rebuild the index from the manifests beside the backups (the old index is kept as
    /// index.json.bak-<time>)
    Rebuild {
        /// Only this server (default: every configured server)
        #[arg(long, value_name = "NAME")]
        server: Option<String>,
        /// Only this storage (default: every configured storage)
        #[arg(long, value_name = "NAME")]
        storage: Option<String>,
    },
}

/// One rebuilt index.
#[derive(Debug, Serialize)]
struct Rebuilt {
    server: String,
    storage: String,
    backups: usize,
    skipped_manifests: Vec<String>,
}

/// Runs the index subcommand.
pub fn run(cmd: &Command, ctx: &Context) -> Result<ExitCode, Error> {
    let Command::Rebuild {
        server,
        storage: only_storage,
    } = cmd;
    let s = &ctx.settings;
    if let Some(n) = server {
        s.server(n)?;
    }
    if let Some(n) = only_storage {
        s.storage(n)?;
    }
    let mut done = Vec::new();
    for st in s
        .storages
        .iter()
        .filter(|x| only_storage.as_ref().is_none_or(|n| n == &x.name))
    {
        let storage = storage::open(st, &storage::StorageContext::new(s, &ctx.ui))?;
        for sv in s
            .servers
            .iter()
            .filter(|x| server.as_ref().is_none_or(|n| n == &x.name))
        {
            let (index, skipped) =
                IndexStore::new(storage.as_ref(), &sv.name).rebuild(Utc::now())?;
            for k in &skipped {
                ctx.ui
                    .warn(&format!("storage '{}': skipped manifest {k}", st.name));
            }
            done.push(Rebuilt {
                server: sv.name.clone(),
                storage: st.name.clone(),
                backups: index.backups.len(),
                skipped_manifests: skipped,
            });
        }
    }
    if ctx.json {
        #[derive(Serialize)]
        struct Doc {
            schema_version: u32,
            rebuilt: Vec<Rebuilt>,
        }
        Printer::json(&Doc {
            schema_version: 1,
            rebuilt: done,
        })?;
    } else {
        for r in &done {
            Printer::line(&format!(
                "rebuilt index of server '{}' on storage '{}': {} backups ({} manifests skipped)",
                r.server,
                r.storage,
                r.backups,
                r.skipped_manifests.len()
            ))?;
        }
    }
    Ok(ExitCode::Success)
}
