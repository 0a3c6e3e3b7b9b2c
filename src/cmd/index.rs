//! `sqlguard index rebuild`: recreate a lost or damaged index from the per-backup manifests.

use chrono::Utc;
use serde::Serialize;

use super::{Context, Printer};
use crate::error::Error;
use crate::exit::ExitCode;
use crate::index::IndexStore;

/// Index subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Rebuild the index from the manifests beside the backups, merging what the old index
    /// files knew (each is kept as <file>.bak-<time>)
    ///
    /// The index of a server is index/summary.json and index/db/<database>/<YYYY-MM>.json under its
    /// directory; index.json there is a stub that sqlguard 0.1 refuses. To go back to 0.1, run
    /// 0.1's `index rebuild`: it merges the kept 0.1 index with the manifests.
    Rebuild {
        /// Only this server (default: every configured server)
        #[arg(long, value_name = "NAME", add = crate::complete::server_arg())]
        server: Option<String>,
        /// Only this storage (default: every configured storage)
        #[arg(long, value_name = "NAME", add = crate::complete::storage_arg())]
        storage: Option<String>,
    },
}

/// One rebuilt index.
#[derive(Debug, Serialize)]
struct Rebuilt {
    server: String,
    storage: String,
    #[serde(flatten)]
    report: crate::index::Rebuild,
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
        let storage = ctx.storage(&st.name).map_err(|e| match e {
            crate::session::OpenError::Unknown(u) => Error::from(u),
            crate::session::OpenError::Storage(e) => Error::from(e),
        })?;
        for sv in s
            .backed_up()
            .filter(|x| server.as_ref().is_none_or(|n| n == &x.name))
        {
            let report = IndexStore::new(storage.as_ref(), &sv.name).rebuild(Utc::now())?;
            let say = |what: &str, items: &[String]| {
                for k in items {
                    ctx.ui.warn(&format!(
                        "storage '{}', server '{}': {what} {k}",
                        st.name, sv.name
                    ));
                }
            };
            say("dropped (object gone):", &report.dropped);
            say("could not use", &report.unreadable);
            say("not accounted for (left in place):", &report.unaccounted);
            for k in &report.adopted {
                ctx.ui.info(&format!(
                    "storage '{}', server '{}': adopted {k}",
                    st.name, sv.name
                ));
            }
            done.push(Rebuilt {
                server: sv.name.clone(),
                storage: st.name.clone(),
                report,
            });
        }
    }
    if ctx.json {
        #[derive(Serialize)]
        struct Doc {
            schema_version: u32,
            /// As in every command's document; a rebuild that cannot finish prints an error
            /// instead (exit 1), so a printed document is always `ok`.
            ok: bool,
            rebuilt: Vec<Rebuilt>,
        }
        Printer::json(&Doc {
            schema_version: 1,
            ok: true,
            rebuilt: done,
        })?;
    } else {
        for r in &done {
            let p = &r.report;
            Printer::text(&format!(
                "rebuilt index of server '{}' on storage '{}': {} records ({} kept from {}, {} failures kept, {} adopted from manifests); {} dropped, {} unusable, {} not accounted for",
                r.server,
                r.storage,
                p.backups,
                p.from_index,
                p.old_index.as_deref().unwrap_or("no readable old index"),
                p.kept_failures,
                p.adopted.len(),
                p.dropped.len(),
                p.unreadable.len(),
                p.unaccounted.len()
            ))?;
        }
    }
    Ok(ExitCode::Success)
}
