//! `sqlguard prune`: apply retention, or show the plan with `--dry-run`.

use chrono::Utc;
use serde::Serialize;

use super::{table, Context, Printer};
use crate::duration::compact;
use crate::error::Error;
use crate::exit::ExitCode;
use crate::prune::{self, PruneOutcome, PruneRequest};
use crate::retention::Decision;
use crate::ui::human_bytes;

/// Apply retention: delete what the policy no longer keeps (exact keys the index owns only).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Show the plan, with a reason for every entry, and change nothing
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Only remove backups of this type (every type still counts for the newest-backup floor)
    #[arg(long = "type", short = 't', value_name = "TYPE")]
    pub backup_type: Option<String>,
    /// Only this server (repeatable)
    #[arg(long, value_name = "NAME")]
    pub server: Vec<String>,
    /// Only this storage
    #[arg(long, value_name = "NAME")]
    pub storage: Option<String>,
    /// When another prune of the same server is running, wait up to this long instead of
    /// exiting 3
    #[arg(long, value_name = "DURATION")]
    pub wait: Option<crate::duration::HumanDuration>,
}

/// The JSON document of `prune`.
#[derive(Debug, Serialize)]
pub struct PruneReport<'a> {
    pub schema_version: u32,
    #[serde(flatten)]
    pub outcome: &'a PruneOutcome,
    pub removed_entries: usize,
    pub removed_bytes: u64,
    pub kept_entries: usize,
}

/// Runs prune (also used after a backup when `prune_after_backup` is set).
pub fn execute(req: &PruneRequest, ctx: &Context) -> Result<PruneOutcome, Error> {
    Ok(prune::run(
        &ctx.settings,
        req,
        &ctx.ui,
        &ctx.cancel,
        Utc::now(),
    )?)
}

/// Prints the outcome as a table (every decision) or JSON.
pub fn print(outcome: &PruneOutcome, ctx: &Context) -> Result<(), Error> {
    let (removed, bytes) = outcome.removed();
    let kept = outcome
        .entries
        .iter()
        .filter(|e| e.decision == Decision::Keep)
        .count();
    if ctx.json {
        Printer::json(&PruneReport {
            schema_version: crate::index::SCHEMA_VERSION,
            outcome,
            removed_entries: removed,
            removed_bytes: bytes,
            kept_entries: kept,
        })?;
        return Ok(());
    }
    let now = Utc::now();
    if !outcome.entries.is_empty() {
        let mut t = table(
            &[
                "STORAGE", "SERVER", "DATABASE", "TYPE", "ID", "STATUS", "AGE", "SIZE", "DECISION",
                "REASON",
            ],
            ctx.ui.color(),
        );
        for e in &outcome.entries {
            let r = &e.record;
            let decision = match (e.decision, e.done, &e.prune_error) {
                (Decision::Keep, _, _) => "keep",
                (Decision::Remove, _, Some(_)) => "FAILED",
                (Decision::Remove, true, _) => "removed",
                (Decision::Remove, false, _) => "remove",
            };
            t.add_row(vec![
                r.storage.clone(),
                r.server.clone(),
                r.database.clone(),
                r.backup_type.clone(),
                r.id.clone(),
                r.status.as_str().to_string(),
                compact((now - r.started_at).num_seconds().max(0) as u64),
                human_bytes(r.compressed_bytes),
                decision.to_string(),
                e.prune_error.clone().unwrap_or_else(|| e.reason.clone()),
            ]);
        }
        Printer::line(&t.to_string())?;
    }
    for o in &outcome.orphans {
        Printer::line(&format!(
            "orphan {} on '{}': {} ({}){}",
            o.orphan.kind,
            o.storage,
            o.orphan.key,
            human_bytes(o.orphan.size),
            if o.done {
                " removed"
            } else if outcome.dry_run {
                " would be removed"
            } else {
                ""
            }
        ))?;
    }
    for u in &outcome.unrecorded {
        Printer::line(&format!(
            "not in the index on '{}': {} ({}); left in place, `sqlguard index rebuild` adopts it",
            u.storage,
            u.key,
            human_bytes(u.size)
        ))?;
    }
    Printer::line(&format!(
        "{}{removed} entries, {} freed; {kept} kept; {} orphans; {} not in the index",
        if outcome.dry_run {
            "dry run: would remove "
        } else {
            "removed "
        },
        human_bytes(bytes),
        outcome.orphans.len(),
        outcome.unrecorded.len()
    ))?;
    Ok(())
}

/// Runs the prune subcommand.
pub fn run(args: &Args, ctx: &Context) -> Result<ExitCode, Error> {
    let req = PruneRequest {
        dry_run: args.dry_run,
        backup_type: args.backup_type.clone(),
        servers: args.server.clone(),
        storage: args.storage.clone(),
    };
    // A dry run changes nothing and needs no lock.
    let _locks = if args.dry_run {
        Vec::new()
    } else {
        ctx.lock_jobs(&args.server, "prune", None, args.wait)?
    };
    let started = Utc::now();
    let clock = std::time::Instant::now();
    let outcome = execute(&req, ctx)?;
    print(&outcome, ctx)?;
    let code = if outcome.interrupted {
        ExitCode::Interrupted
    } else if outcome.all_ok() {
        ExitCode::Success
    } else {
        ExitCode::Failure
    };
    if args.dry_run {
        return Ok(code);
    }
    let (entries, bytes) = outcome.removed();
    let run = crate::metrics::RunSummary {
        command: "prune",
        backup_type: None,
        started,
        duration_seconds: clock.elapsed().as_secs_f64(),
        ok: outcome.all_ok(),
        servers: args.server.clone(),
        pruned: Some((
            entries,
            bytes,
            outcome.orphans.iter().filter(|o| o.done).count(),
        )),
        refresh_types: Vec::new(),
    };
    Ok(ctx.finish(&[run], code))
}
