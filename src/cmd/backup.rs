//! `sqlguard backup`: one backup run of one type.

use serde::Serialize;

use super::{table, Context, Printer};
use crate::backup::{self, BackupRequest};
use crate::duration::{compact, HumanDuration};
use crate::error::Error;
use crate::exit::{ExitCode, Outcome};
use crate::index::{BackupRecord, Status, SCHEMA_VERSION};
use crate::prune::PruneRequest;
use crate::run::Run;
use crate::ui::human_bytes;

/// Dump the selected databases and store them on every storage of the backup type.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Backup type: its storages, compression and retention come from the config
    #[arg(
        long = "type",
        short = 't',
        value_name = "TYPE",
        default_value = "manual",
        add = crate::complete::type_arg()
    )]
    pub backup_type: String,
    /// Only this server (repeatable; default: every configured server)
    #[arg(long, value_name = "NAME", add = crate::complete::server_arg())]
    pub server: Vec<String>,
    /// Only this database (repeatable; default: the server's databases.include/exclude)
    #[arg(long = "db", value_name = "NAME", add = crate::complete::database_arg())]
    pub databases: Vec<String>,
    /// When the same job (server + backup + type) is running, wait up to this long instead of
    /// exiting 3
    #[arg(long, value_name = "DURATION")]
    pub wait: Option<HumanDuration>,
    /// Dump this many databases of each server at once (1-16; default: the server's
    /// `parallel`, else 1); the type's compressor threads are shared between them, and the
    /// largest databases start first
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u32).range(1..=16))]
    pub jobs: Option<u32>,
}

/// The JSON document of a backup run.
#[derive(Debug, Serialize)]
pub struct BackupReport<'a> {
    pub schema_version: u32,
    #[serde(rename = "type")]
    pub backup_type: &'a str,
    pub ok: bool,
    pub interrupted: bool,
    pub backups: &'a [BackupRecord],
    pub errors: &'a [String],
    /// Databases of the reached servers that the run left out, with the reason.
    pub excluded: &'a [crate::backup::ExcludedDatabase],
    /// The prune that followed, when `prune_after_backup` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prune: Option<super::render::PruneCollected<'a>>,
}

/// Runs the backup and prints one row per database and storage.
pub fn run(args: &Args, ctx: &Context) -> Result<ExitCode, Error> {
    let req = BackupRequest {
        backup_type: args.backup_type.clone(),
        servers: args.server.clone(),
        databases: args.databases.clone(),
        jobs: args.jobs,
    };
    backup::validate(&ctx.settings, &req)?;
    let _locks = ctx.lock_jobs(&args.server, "backup", Some(&args.backup_type), args.wait)?;
    let run = match ctx.begin("backup", Some(&args.backup_type), &args.server) {
        Ok(run) => run,
        Err(skipped) => {
            if ctx.json {
                Printer::json(&BackupReport {
                    schema_version: SCHEMA_VERSION,
                    backup_type: &args.backup_type,
                    ok: false,
                    interrupted: skipped.code == ExitCode::Interrupted,
                    backups: &[],
                    errors: &skipped.errors(),
                    excluded: &[],
                    prune: None,
                })?;
            }
            return Ok(skipped.code);
        }
    };
    ctx.work(&run, || work(args, ctx, &req, &run))
}

/// The backup run and its printing, after its `before` hooks.
fn work(args: &Args, ctx: &Context, req: &BackupRequest, run: &Run) -> Result<ExitCode, Error> {
    let mut outcome = backup::run(ctx, req)?;
    let pruned = if ctx.settings.prune_after_backup && !outcome.interrupted {
        ctx.ui.info("pruning (prune_after_backup)");
        let req = PruneRequest {
            servers: args.server.clone(),
            ..Default::default()
        };
        match ctx.lock_jobs(&args.server, "prune", None, args.wait) {
            Ok(_prune_locks) => {
                let mut entries = Vec::new();
                let outcome =
                    crate::prune::run(ctx, &req, chrono::Utc::now(), &mut |e| entries.push(e))?;
                Some((outcome, entries))
            }
            // A prune that is running already does this one's work: the backup stands as it
            // went, not as "another run holds the lock" (exit 3).
            Err(Error::Locked(e @ crate::joblock::LockError::Held { .. })) => {
                ctx.ui.warn(&format!("prune_after_backup skipped: {e}"));
                None
            }
            // The backups stand, and are published as any run's: the prune that could not
            // start fails the run with them.
            Err(e) => {
                let e = format!("prune_after_backup: {e}");
                ctx.ui.error(&e);
                outcome.errors.push(e);
                None
            }
        }
    } else {
        None
    };
    let backed_up = Outcome::of(outcome.all_ok(), outcome.interrupted);
    let stored: Vec<&BackupRecord> = outcome
        .records
        .iter()
        .filter(|r| r.status == Status::Success)
        .collect();
    let mut databases: Vec<(&str, &str)> = outcome
        .records
        .iter()
        .map(|r| (r.server.as_str(), r.database.as_str()))
        .collect();
    databases.sort_unstable();
    databases.dedup();
    let what = format!(
        "{}: {} of {} copies stored ({} database{}), {}{}",
        args.backup_type,
        stored.len(),
        outcome.records.len(),
        databases.len(),
        if databases.len() == 1 { "" } else { "s" },
        human_bytes(stored.iter().map(|r| r.compressed_bytes).sum()),
        match &pruned {
            Some((p, _)) => format!(
                "; pruned {} entries, {} freed",
                p.removed_entries,
                human_bytes(p.removed_bytes)
            ),
            None => String::new(),
        }
    );
    ctx.summarize(what.clone());
    let mut summary = run.summary(backed_up, &args.server);
    summary.what = Some(what);
    summary.failures = outcome
        .records
        .iter()
        .filter(|r| r.status != Status::Success)
        .map(|r| {
            format!(
                "{}/{} on {}: {}",
                r.server,
                r.database,
                r.storage,
                r.error.as_deref().unwrap_or("failed")
            )
        })
        .chain(outcome.errors.iter().cloned())
        .collect();
    let mut runs = vec![summary];
    let mut result = backed_up;
    if let Some((p, _)) = &pruned {
        let pruned = Outcome::of(p.all_ok(), p.interrupted);
        let mut summary = run.summary(pruned, &args.server);
        summary.command = "prune";
        summary.backup_type = None;
        summary.refresh_every_type(&ctx.settings);
        summary.pruned = Some(p.counts());
        runs.push(summary);
        if result == Outcome::Ok {
            result = pruned;
        }
        runs[0]
            .failures
            .extend(p.errors.iter().map(|e| format!("prune: {e}")));
    }
    // The results are printed once the run is decided (hooks, notifications, a required
    // push), so that the document's `ok` is the run's.
    let ended = crate::run::publish(ctx, run, &runs, result);
    let code = ended.code;
    if ctx.json {
        let errors = ended.errors(&outcome.errors);
        Printer::json(&BackupReport {
            schema_version: SCHEMA_VERSION,
            backup_type: &args.backup_type,
            ok: code == ExitCode::Success,
            // What the exit code says (130): a failure after a signal is an interruption.
            interrupted: code == ExitCode::Interrupted,
            backups: &outcome.records,
            errors: &errors,
            excluded: &outcome.excluded,
            prune: pruned
                .as_ref()
                .map(|(outcome, entries)| super::render::PruneCollected { entries, outcome }),
        })?;
    } else if ctx.ui.quiet() && outcome.all_ok() && pruned.as_ref().is_none_or(|(p, _)| p.all_ok())
    {
        // --quiet: a run that succeeds prints nothing (cron mails only on failure).
    } else {
        if !outcome.records.is_empty() {
            let mut t = table(
                &[
                    "SERVER",
                    "DATABASE",
                    "STORAGE",
                    "STATUS",
                    "SIZE",
                    "RAW",
                    "TIME",
                    "ID / ERROR",
                ],
                ctx.ui.color(),
            );
            for r in &outcome.records {
                let ok = r.status == Status::Success;
                t.add_row(super::cells(vec![
                    r.server.clone(),
                    r.database.clone(),
                    r.storage.clone(),
                    r.status.as_str().to_string(),
                    if ok {
                        human_bytes(r.compressed_bytes)
                    } else {
                        "-".into()
                    },
                    human_bytes(r.raw_bytes),
                    compact(r.duration_seconds.round() as u64),
                    if ok {
                        r.id.clone()
                    } else {
                        r.error.clone().unwrap_or_default()
                    },
                ]));
            }
            Printer::line(&t.to_string())?;
        }
        if let Some((outcome, entries)) = &pruned {
            let mut t = super::render::PruneTable::new(ctx.ui.verbose());
            t.add_all(entries);
            t.print(outcome, ctx)?;
        }
    }
    Ok(code)
}
