//! `sqlguard restore`: prove a backup against the index, then load it into a database.

use super::Context;
use crate::error::Error;
use crate::exit::ExitCode;
use crate::restore::{self, RestoreRequest};
use crate::ui::human_bytes;

/// Restore a backup into a database of a configured server. The stored copy is proven (size and
/// SHA-256 against the index) before any byte reaches the server; the client runs in its
/// sandbox mode, and statements a single-database dump never holds are refused.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The backup id (from `sqlguard list`)
    #[arg(value_name = "ID")]
    pub id: String,
    /// The server to restore into (a configured server name)
    #[arg(long, value_name = "NAME")]
    pub to_server: String,
    /// The database to restore into (default: the backup's database); created when missing
    #[arg(long, value_name = "NAME")]
    pub to_database: Option<String>,
    /// Restore even into a database that already has tables
    #[arg(long)]
    pub force: bool,
    /// The storage to read from (default: the first that holds a good copy)
    #[arg(long, value_name = "NAME")]
    pub storage: Option<String>,
    #[command(flatten)]
    pub load: LoadArgs,
}

/// How a backup is loaded (restore, and verify's restore test).
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Load through this many client sessions at once (1-16): tables are created and filled
    /// side by side, a large InnoDB table's rows spread over all of them, and views, triggers,
    /// routines and events created after all data; the result is the same as with one
    #[arg(long, short = 'j', value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub jobs: u32,
    /// Do not write the load to the server's binary log (sql_log_bin=0 in each session; needs
    /// the BINLOG ADMIN privilege on MariaDB), so that it reaches neither replicas nor a
    /// binlog archive
    #[arg(long)]
    pub no_binlog: bool,
}

impl LoadArgs {
    /// The options these flags ask for.
    pub fn options(&self) -> restore::LoadOptions {
        restore::LoadOptions {
            jobs: self.jobs as usize,
            no_binlog: self.no_binlog,
        }
    }
}

/// Runs the restore subcommand.
pub fn run(args: &Args, ctx: &Context) -> Result<ExitCode, Error> {
    let started = std::time::Instant::now();
    let out = restore::restore(
        ctx,
        &RestoreRequest {
            id: args.id.clone(),
            storage: args.storage.clone(),
            to_server: args.to_server.clone(),
            to_database: args.to_database.clone(),
            force: args.force,
            load: args.load.options(),
        },
    )?;
    ctx.ui.info(&format!(
        "restored {} of SQL ({} statements, {} session{}) into {}/{} in {:.1}s; the backup matched its index",
        human_bytes(out.loaded.raw_bytes),
        out.loaded.statements,
        out.loaded.sessions,
        if out.loaded.sessions == 1 { "" } else { "s" },
        out.server,
        out.database,
        started.elapsed().as_secs_f64()
    ));
    if !out.loaded.spread.is_empty() {
        ctx.ui.info(&format!(
            "rows spread over the sessions: {}",
            out.loaded.spread.join(", ")
        ));
    }
    Ok(ExitCode::Success)
}
