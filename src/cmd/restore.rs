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
        },
    )?;
    ctx.ui.info(&format!(
        "restored {} of SQL ({} statements) into {}/{} in {:.1}s; the backup matched its index",
        human_bytes(out.loaded.raw_bytes),
        out.loaded.statements,
        out.server,
        out.database,
        started.elapsed().as_secs_f64()
    ));
    Ok(ExitCode::Success)
}
