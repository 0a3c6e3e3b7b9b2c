//! `sqlguard restore`: prove a backup against the index, then load it into a database.

use super::{Context, Printer};
use crate::binlog::pitr;
use crate::error::Error;
use crate::exit::ExitCode;
use crate::restore::{self, RestoreRequest};
use crate::ui::human_bytes;

/// Restore a backup into a database of a configured server. The stored copy is proven (size and
/// SHA-256 against the index) before any byte reaches the server, and decrypted when it is
/// encrypted (encryption.age_identity_file); the client runs in its sandbox mode, and
/// statements a single-database dump never holds are refused. With --file, a dump file from
/// anywhere (the age CLI's included) is proven whole first, then loaded the same way.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The backup id (from `sqlguard list`), or `latest`: the newest good backup (successful,
    /// and not failed at its last verification) of the database that --db (and --server,
    /// --type, --storage) name. When no copy of it passes its checks, the error names the next
    /// newest good backup and the command that restores it; while an index that may hold a
    /// newer backup cannot be read, `latest` is refused, naming the newest it could read
    #[arg(value_name = "ID", add = crate::complete::id_arg(), required_unless_present_any = ["all", "file", "to_time", "to_position", "to_gtid"])]
    pub id: Option<String>,
    /// Restore a dump file instead of a stored backup: plain, zstd or xz SQL, or an age file
    /// (`age -r …` or `-a`; decrypted with encryption.age_identity_file). No index vouches for
    /// it, so the whole file is first copied to a private temp file while it is decrypted to
    /// its last chunk, decompressed and its trailer checked; nothing reaches the server before.
    /// Needs --to-database
    #[arg(long, value_name = "FILE", conflicts_with_all = ["id", "all", "to_time", "to_position", "to_gtid"])]
    pub file: Option<std::path::PathBuf>,
    /// Point-in-time recovery: restore the newest good dump before this time (or the dump ID
    /// names), then replay the archived binary log up to it, exclusive: transactions committed
    /// before it. UTC unless it carries an offset: 2026-11-29T14:31:59Z,
    /// "2026-11-29 14:31:59", 2026-11-29T15:31:59+01:00. Needs --server and --db
    #[arg(long, value_name = "TIME", value_parser = crate::binlog::pitr::parse_time, conflicts_with_all = ["all", "to_position", "to_gtid"])]
    pub to_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Point-in-time recovery up to this binary log position, exclusive (FILE:POS, e.g. the
    /// `# at` position of an accidental DROP in `mariadb-binlog` output)
    #[arg(long, value_name = "FILE:POS", value_parser = crate::binlog::pitr::parse_position, conflicts_with_all = ["all", "to_gtid"])]
    pub to_position: Option<(String, u64)>,
    /// Point-in-time recovery up to this GTID, exclusive: the transaction with this GTID and
    /// everything after it are not replayed (domain-server-sequence, e.g. 0-1-4711)
    #[arg(long, value_name = "GTID", value_parser = parse_gtid, conflicts_with = "all")]
    pub to_gtid: Option<crate::binlog::events::Gtid>,
    /// Restore a whole server: the newest good backup of every database that --server names
    /// (with --type, --storage), each into the database of the same name, then the server's
    /// accounts (when backed up, with `accounts: true`); every target is checked before
    /// anything is written
    #[arg(long, conflicts_with_all = ["id", "to_database"])]
    pub all: bool,
    /// The server to restore into (a configured server name)
    #[arg(long, value_name = "NAME", add = crate::complete::server_arg())]
    pub to_server: String,
    /// The database to restore into (default: the backup's database); created when missing
    #[arg(long, value_name = "NAME")]
    pub to_database: Option<String>,
    /// Restore even into a database that already has tables, views, routines or events
    #[arg(long)]
    pub force: bool,
    /// Filters for `latest`; --storage also picks the copy to read (default: the first good
    /// copy, then the others should it fail its checks or not be readable)
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
    /// Load the rows through this many client sessions at once (1-16), and the schema through
    /// one more: tables are created ahead of their rows, an InnoDB table's rows spread over
    /// all the sessions, and views, triggers, routines and events created after all data; the
    /// result is the same as with one
    #[arg(long, short = 'j', value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub jobs: u32,
    /// Do not write the load to the server's binary log (sql_log_bin=0 in each session; needs
    /// the BINLOG ADMIN privilege on MariaDB), so that it reaches neither replicas nor a
    /// binlog archive
    #[arg(long)]
    pub no_binlog: bool,
    /// Create the dump's events disabled (ALTER EVENT … ENABLE turns one back on), so that none
    /// runs on the target server: for a copy restored beside its source (a restore test always
    /// does this)
    #[arg(long)]
    pub disable_events: bool,
}

impl LoadArgs {
    /// The options these flags ask for.
    pub fn options(&self) -> restore::LoadOptions {
        restore::LoadOptions {
            jobs: self.jobs as usize,
            no_binlog: self.no_binlog,
            disable_events: self.disable_events,
        }
    }
}

/// The JSON document of a restore, `--to-time` and `--file` alike (and of their `--dry-run`):
/// the plan, or what was restored.
#[derive(Debug, serde::Serialize)]
struct RestoreReport<'a, P, O> {
    schema_version: u32,
    dry_run: bool,
    plan: Option<&'a P>,
    restored: Option<&'a O>,
    duration_seconds: f64,
}

/// `--dry-run`: prints the plan (its steps, or the JSON document) and does nothing.
fn print_plan<P: serde::Serialize>(
    ctx: &Context,
    plan: &P,
    steps: Vec<String>,
    started: std::time::Instant,
) -> Result<ExitCode, Error> {
    if ctx.json {
        Printer::json(&RestoreReport::<P, ()> {
            schema_version: crate::index::SCHEMA_VERSION,
            dry_run: true,
            plan: Some(plan),
            restored: None,
            duration_seconds: started.elapsed().as_secs_f64(),
        })?;
    } else {
        Printer::line("dry run: sqlguard restore would")?;
        for line in steps {
            Printer::text(&format!("  - {line}"))?;
        }
        Printer::line("nothing was read or written")?;
    }
    Ok(ExitCode::Success)
}

/// With `--json`, prints what was restored.
fn print_restored<O: serde::Serialize>(ctx: &Context, out: &O, took: f64) -> Result<(), Error> {
    if ctx.json {
        Printer::json(&RestoreReport::<(), O> {
            schema_version: crate::index::SCHEMA_VERSION,
            dry_run: false,
            plan: None,
            restored: Some(out),
            duration_seconds: took,
        })?;
    }
    Ok(())
}

/// Whether a person confirms on the terminal: stdin and stderr are one, and no `--yes`
/// (scripts and timers are never asked).
fn interactive(args: &Args) -> bool {
    use std::io::IsTerminal;
    !args.yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks on the terminal whether to go ahead with `plan`; true for yes.
fn ask(plan: &restore::RestorePlan) -> bool {
    ask_lines(&plan.describe())
}

/// The JSON document of `restore --all`.
#[derive(Debug, serde::Serialize)]
struct ServerRestoreReport<'a> {
    schema_version: u32,
    dry_run: bool,
    plans: &'a [restore::RestorePlan],
    restored: &'a [restore::RestoreOutcome],
    /// Databases with no good backup to restore (the run exits 1).
    skipped: &'a [Unrestored],
    /// The restore that failed and stopped the run, and the databases it left unrestored.
    failed: Option<Unrestored>,
    not_restored: &'a [String],
    duration_seconds: f64,
}

/// A database `restore --all` did not restore, and why.
#[derive(Debug, serde::Serialize)]
struct Unrestored {
    database: String,
    reason: String,
}

/// `restore --all`: every database of one server, then its accounts. Every plan is made (and
/// every target checked) before anything is written; one confirmation covers them all.
fn run_all(args: &Args, ctx: &Context) -> Result<ExitCode, Error> {
    let started = std::time::Instant::now();
    let [server] = args.filter.servers.as_slice() else {
        return Err(Error::invalid(
            "restore --all restores one server's backups: name it with --server",
        ));
    };
    if !args.filter.databases.is_empty() {
        return Err(Error::invalid(
            "restore --all takes every database: drop --db",
        ));
    }
    args.filter.validate(&ctx.settings)?;
    let databases = restore::server_databases(ctx, server, args.filter.storage.as_deref());
    let accounts = databases.iter().any(|d| d == crate::backup::ACCOUNTS);
    let mut plans = Vec::new();
    let mut requests = Vec::new();
    let mut skipped = Vec::new();
    for db in &databases {
        let mut filter = args.filter.clone();
        filter.databases = vec![db.clone()];
        let req = RestoreRequest {
            id: restore::LATEST.to_string(),
            filter,
            to_server: args.to_server.clone(),
            to_database: None,
            force: args.force,
            load: args.load.options(),
        };
        match restore::plan(ctx, &req) {
            Ok(p) => {
                plans.push(p);
                requests.push(req);
            }
            // A database with no good backup (only failures) is said, not restored, and fails
            // the run: a server brought back without one of its databases is not brought back.
            Err(restore::RestoreError::NoLatest) => {
                ctx.ui
                    .error(&format!("{server}/{db}: no good backup to restore"));
                skipped.push(Unrestored {
                    database: db.clone(),
                    reason: "no good backup (every copy failed, or failed its verification)".into(),
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    if plans.is_empty() {
        return Err(Error::invalid(format!(
            "server '{server}' has no good backup to restore (see `sqlguard list --server {server}`)"
        )));
    }
    let mut lines: Vec<String> = plans.iter().flat_map(|p| p.describe()).collect();
    lines.extend(
        skipped
            .iter()
            .map(|s| format!("leave out {server}/{}: {}", s.database, s.reason)),
    );
    // A run that leaves a database out fails, and so does the dry run that foresees it.
    let code = if skipped.is_empty() {
        ExitCode::Success
    } else {
        ExitCode::Failure
    };
    if args.dry_run {
        if ctx.json {
            Printer::json(&ServerRestoreReport {
                schema_version: crate::index::SCHEMA_VERSION,
                dry_run: true,
                plans: &plans,
                restored: &[],
                skipped: &skipped,
                failed: None,
                not_restored: &[],
                duration_seconds: started.elapsed().as_secs_f64(),
            })?;
        } else {
            Printer::line("dry run: sqlguard restore would")?;
            for line in &lines {
                Printer::text(&format!("  - {line}"))?;
            }
            Printer::line("nothing was read or written")?;
        }
        return Ok(code);
    }
    let interactive = interactive(args);
    if interactive && !ask_lines(&lines) {
        return Err(restore::RestoreError::Declined.into());
    }
    let mut restored = Vec::new();
    let mut failed = None;
    let mut not_restored = Vec::new();
    for (i, req) in requests.iter().enumerate() {
        match restore::restore(ctx, req, &mut |_| true) {
            Ok(out) => {
                ctx.ui.info(&format!(
                    "restored {} into {}/{} ({} of SQL)",
                    out.record.id,
                    out.server,
                    out.database,
                    human_bytes(out.loaded.raw_bytes)
                ));
                restored.push(out);
            }
            // The first failure stops the run; what is done and what is left is said.
            Err(e) => {
                not_restored = requests[i + 1..]
                    .iter()
                    .flat_map(|r| r.filter.databases.clone())
                    .collect();
                failed = Some((req.filter.databases.join(","), e));
                break;
            }
        }
    }
    let took = started.elapsed().as_secs_f64();
    if ctx.json {
        Printer::json(&ServerRestoreReport {
            schema_version: crate::index::SCHEMA_VERSION,
            dry_run: false,
            plans: &[],
            restored: &restored,
            skipped: &skipped,
            failed: failed.as_ref().map(|(database, e)| Unrestored {
                database: database.clone(),
                reason: e.to_string(),
            }),
            not_restored: &not_restored,
            duration_seconds: took,
        })?;
    }
    if let Some((database, e)) = failed {
        if !restored.is_empty() || !not_restored.is_empty() {
            ctx.ui.error(&format!(
                "restore --all stopped at {server}/{database}: restored {}; not restored: {}",
                if restored.is_empty() {
                    "nothing".to_string()
                } else {
                    restored
                        .iter()
                        .map(|o| o.database.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                if not_restored.is_empty() {
                    database.clone()
                } else {
                    format!("{database}, {}", not_restored.join(", "))
                }
            ));
        }
        return Err(e.into());
    }
    let bytes: u64 = restored.iter().map(|o| o.loaded.raw_bytes).sum();
    ctx.summarize(format!(
        "server {server} into {}: {} backups{}, {} of SQL{}",
        args.to_server,
        restored.len(),
        if accounts { " (accounts included)" } else { "" },
        human_bytes(bytes),
        if skipped.is_empty() {
            String::new()
        } else {
            format!(
                "; LEFT OUT (no good backup): {}",
                skipped
                    .iter()
                    .map(|s| s.database.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    ));
    Ok(code)
}

/// Asks on the terminal whether to go ahead with the steps `lines`; true for yes.
fn ask_lines(lines: &[String]) -> bool {
    use std::io::{BufRead, Write};
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "sqlguard restore will:");
    for line in lines {
        let _ = writeln!(err, "  - {}", crate::ui::cell_text(line));
    }
    let _ = write!(err, "Go ahead? [y/N] ");
    let _ = err.flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

fn parse_gtid(s: &str) -> Result<crate::binlog::events::Gtid, String> {
    s.parse()
}

/// `restore --to-time | --to-position | --to-gtid`.
fn run_pitr(args: &Args, ctx: &Context, point: pitr::Point) -> Result<ExitCode, Error> {
    let started = std::time::Instant::now();
    let req = pitr::PitrRequest {
        restore: RestoreRequest {
            id: args.id.clone().unwrap_or_default(),
            filter: args.filter.clone(),
            to_server: args.to_server.clone(),
            to_database: args.to_database.clone(),
            force: args.force,
            load: args.load.options(),
        },
        point,
    };
    if args.dry_run {
        let (plan, _) = pitr::plan(ctx, &req)?;
        return print_plan(ctx, &plan, plan.describe(), started);
    }
    let interactive = interactive(args);
    let out = pitr::restore_to(ctx, &req, &mut |plan| {
        !interactive || ask_lines(&plan.describe())
    })?;
    let took = started.elapsed().as_secs_f64();
    print_restored(ctx, &out, took)?;
    let to = match (&out.stop.file, out.stop.position) {
        (Some(f), Some(p)) => format!("{f}:{p}"),
        _ => "the end of the archive".to_string(),
    };
    ctx.ui.info(&format!(
        "restored {} into {}/{} and replayed {} transactions ({} segments) from {} to {} in {}",
        out.restored.record.id,
        out.restored.server,
        out.restored.database,
        out.stop.transactions,
        out.segments,
        out.replay_from,
        to,
        crate::duration::took(took)
    ));
    ctx.summarize(format!(
        "backup {} into {}/{} rolled forward to {}",
        out.restored.record.id, out.restored.server, out.restored.database, req.point
    ));
    Ok(ExitCode::Success)
}

/// `restore --file`: a dump file proven whole, then loaded.
fn run_file(args: &Args, file: &std::path::Path, ctx: &Context) -> Result<ExitCode, Error> {
    let started = std::time::Instant::now();
    let req = restore::ImportRequest {
        file: file.to_path_buf(),
        to_server: args.to_server.clone(),
        to_database: args.to_database.clone(),
        force: args.force,
        load: args.load.options(),
    };
    if args.dry_run {
        let plan = restore::import_plan(ctx, &req)?;
        return print_plan(ctx, &plan, plan.describe(), started);
    }
    let interactive = interactive(args);
    let out = restore::import(ctx, &req, &mut |plan| {
        !interactive || ask_lines(&plan.describe())
    })?;
    let took = started.elapsed().as_secs_f64();
    print_restored(ctx, &out, took)?;
    ctx.ui.info(&format!(
        "restored {} of SQL ({} statements) from {} into {}/{} in {}",
        human_bytes(out.loaded.raw_bytes),
        out.loaded.statements,
        file.display(),
        out.server,
        out.database,
        crate::duration::took(took)
    ));
    ctx.summarize(format!(
        "file {} into {}/{}, {} of SQL",
        file.display(),
        out.server,
        out.database,
        human_bytes(out.loaded.raw_bytes)
    ));
    Ok(ExitCode::Success)
}

/// Runs the restore subcommand.
pub fn run(args: &Args, ctx: &Context) -> Result<ExitCode, Error> {
    if args.all {
        return run_all(args, ctx);
    }
    let point = if let Some(t) = args.to_time {
        Some(pitr::Point::Time(t))
    } else if let Some((file, position)) = &args.to_position {
        Some(pitr::Point::Position {
            file: file.clone(),
            position: *position,
        })
    } else {
        args.to_gtid.map(pitr::Point::Gtid)
    };
    if let Some(point) = point {
        return run_pitr(args, ctx, point);
    }
    if let Some(file) = &args.file {
        return run_file(args, file, ctx);
    }
    let started = std::time::Instant::now();
    let req = RestoreRequest {
        id: args.id.clone().unwrap_or_default(),
        filter: args.filter.clone(),
        to_server: args.to_server.clone(),
        to_database: args.to_database.clone(),
        force: args.force,
        load: args.load.options(),
    };
    if args.dry_run {
        let plan = restore::plan(ctx, &req)?;
        return print_plan(ctx, &plan, plan.describe(), started);
    }
    // On a terminal a person confirms what will be written where; scripts and timers do not.
    let interactive = interactive(args);
    let out = restore::restore(ctx, &req, &mut |plan| !interactive || ask(plan))?;
    let took = started.elapsed().as_secs_f64();
    print_restored(ctx, &out, took)?;
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
    if !out.loaded.accounts_left.is_empty() {
        ctx.ui.info(&format!(
            "left as they were (the server already had them): {}",
            out.loaded.accounts_left.join(", ")
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
