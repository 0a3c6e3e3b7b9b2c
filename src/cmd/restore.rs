//! `sqlguard restore`: stream a backup into a database, checked on the way.

use super::Context;
use crate::error::Error;
use crate::exit::ExitCode;
use crate::mysql::quote_ident;
use crate::verify::Target;

/// Restore a backup into a database of a configured server (streaming, no temp file).
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
    let record = super::fetch::find_copy(ctx, &args.id, args.storage.as_deref())?;
    let server = ctx
        .settings
        .servers
        .iter()
        .find(|s| s.name == args.to_server)
        .ok_or_else(|| {
            Error::Usage(format!(
                "unknown server '{}' (see `sqlguard config show`)",
                args.to_server
            ))
        })?;
    let database = args
        .to_database
        .clone()
        .unwrap_or_else(|| record.database.clone());
    let target = Target::new(server).map_err(Error::Usage)?;
    match target.table_count(&database).map_err(Error::Usage)? {
        Some(n) if n > 0 && !args.force => {
            return Err(Error::Usage(format!(
                "database '{database}' on server '{}' already has {n} tables: restore into another with --to-database, or pass --force",
                server.name
            )))
        }
        Some(_) => {}
        None => target
            .execute(
                "creating the database",
                &format!("CREATE DATABASE {} CHARACTER SET utf8mb4", quote_ident(&database)),
            )
            .map_err(Error::Usage)?,
    }
    let st = ctx
        .settings
        .storage(&record.storage)
        .expect("configured storage");
    let storage = crate::storage::open(
        st,
        &crate::storage::StorageContext::new(&ctx.settings, &ctx.ui),
    )?;
    ctx.ui.info(&format!(
        "restoring {} ({}/{}) from '{}' into {}/{database}",
        record.id, record.server, record.database, record.storage, server.name
    ));
    match target.restore(storage.as_ref(), &record, &database, &ctx.cancel) {
        Err(e) => {
            ctx.ui.error(&format!("restore failed: {e}"));
            Ok(ExitCode::Failure)
        }
        Ok(c) if !c.problems.is_empty() => {
            ctx.ui.error(&format!(
                "the restore ran, but the backup failed its checks, so '{database}' may be incomplete: {}",
                c.problems.join("; ")
            ));
            Ok(ExitCode::Failure)
        }
        Ok(c) => {
            ctx.ui.info(&format!(
                "restored {} bytes of SQL into {}/{database}; the backup matched its index",
                c.raw_bytes, server.name
            ));
            Ok(ExitCode::Success)
        }
    }
}
