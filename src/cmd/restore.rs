//! `sqlguard restore`: prove a backup against the index, then load it into a database.

use super::{Context, Printer};
use crate::error::Error;
use crate::exit::ExitCode;
use crate::restore::{self, RestoreRequest};
use crate::ui::human_bytes;

/// Restore a backup into a database of a configured server. The stored copy is proven (size and
/// SHA-256 against the index) before any byte reaches the server; the client runs in its
/// sandbox mode, and statements a single-database dump never holds are refused.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The backup id (from `sqlguard list`), or `latest`: the newest good backup (successful,
    /// and not failed at its last verification) of the database that --db (and --server,
    /// --type, --storage) name
    #[arg(value_name = "ID", add = crate::complete::id_arg())]
    pub id: String,
    /// The server to restore into (a configured server name)
    #[arg(long, value_name = "NAME", add = crate::complete::server_arg())]
    pub to_server: String,
    /// The database to restore into (default: the backup's database); created when missing
    #[arg(long, value_name = "NAME")]
    pub to_database: Option<String>,
    /// Restore even into a database that already has tables
    #[arg(long)]
    pub force: bool,
    /// Filters for `latest`; --storage also picks the copy to read (default: the first that
    /// holds a good copy)
    #[command(flatten)]
    pub filter: crate::catalog::RecordFilter,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Show what would be read, checked and written where, and do nothing
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Do not ask for confirmation (a terminal asks before anything is written)
    #[arg(long, short = 'y')]
    pub yes: bool,
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

/// The JSON document of `restore` (and of `restore --dry-run`).
#[derive(Debug, serde::Serialize)]
struct RestoreReport<'a> {
    schema_version: u32,
    dry_run: bool,
    plan: Option<&'a restore::RestorePlan>,
    restored: Option<&'a restore::RestoreOutcome>,
    duration_seconds: f64,
}

/// Asks on the terminal whether to go ahead with `plan`; true for yes.
fn ask(plan: &restore::RestorePlan) -> bool {
    use std::io::{BufRead, Write};
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "sqlguard restore will:");
    for line in plan.describe() {
        let _ = writeln!(err, "  - {line}");
    }
    let _ = write!(err, "Go ahead? [y/N] ");
    let _ = err.flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Runs the restore subcommand.
pub fn run(args: &Args, ctx: &Context) -> Result<ExitCode, Error> {
    use std::io::IsTerminal;
    let started = std::time::Instant::now();
    let req = RestoreRequest {
        id: args.id.clone(),
        filter: args.filter.clone(),
        to_server: args.to_server.clone(),
        to_database: args.to_database.clone(),
        force: args.force,
        load: args.load.options(),
    };
    if args.dry_run {
        let plan = restore::plan(ctx, &req)?;
        if ctx.json {
            Printer::json(&RestoreReport {
                schema_version: crate::index::SCHEMA_VERSION,
                dry_run: true,
                plan: Some(&plan),
                restored: None,
                duration_seconds: started.elapsed().as_secs_f64(),
            })?;
        } else {
            Printer::line("dry run: sqlguard restore would")?;
            for line in plan.describe() {
                Printer::line(&format!("  - {line}"))?;
            }
            Printer::line("nothing was read or written")?;
        }
        return Ok(ExitCode::Success);
    }
    // On a terminal a person confirms what will be written where; scripts and timers do not.
    let interactive =
        !args.yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let out = restore::restore(ctx, &req, &mut |plan| !interactive || ask(plan))?;
    let took = started.elapsed().as_secs_f64();
    if ctx.json {
        Printer::json(&RestoreReport {
            schema_version: crate::index::SCHEMA_VERSION,
            dry_run: false,
            plan: None,
            restored: Some(&out),
            duration_seconds: took,
        })?;
    }
    ctx.ui.info(&format!(
        "restored {} of SQL ({} statements, {} session{}) into {}/{} in {}; the backup matched its index",
        human_bytes(out.loaded.raw_bytes),
        out.loaded.statements,
        out.loaded.sessions,
        if out.loaded.sessions == 1 { "" } else { "s" },
        out.server,
        out.database,
        crate::duration::took(took)
    ));
    if !out.loaded.spread.is_empty() {
        ctx.ui.info(&format!(
            "rows spread over the sessions: {}",
            out.loaded.spread.join(", ")
        ));
    }
    ctx.summarize(format!(
        "backup {} into {}/{}, {} of SQL",
        out.record.id,
        out.server,
        out.database,
        human_bytes(out.loaded.raw_bytes)
    ));
    Ok(ExitCode::Success)
}
