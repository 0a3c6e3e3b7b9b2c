//! `sqlguard prune`: apply retention, or show the plan with `--dry-run`.

use chrono::Utc;

use super::Context;
use crate::error::Error;
use crate::exit::{ExitCode, Outcome};
use crate::prune::{self, PruneRequest};
use crate::run::Run;

/// Apply retention: delete what the policy no longer keeps (exact keys the index owns only).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Show the plan, with a reason for every removal (every entry with -v or --json), and
    /// change nothing
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Only remove backups of this type (every type still counts for the newest-backup floor)
    #[arg(long = "type", short = 't', value_name = "TYPE", add = crate::complete::type_arg())]
    pub backup_type: Option<String>,
    /// Only this server (repeatable)
    #[arg(long, value_name = "NAME", add = crate::complete::server_arg())]
    pub server: Vec<String>,
    /// Only this storage
    #[arg(long, value_name = "NAME", add = crate::complete::storage_arg())]
    pub storage: Option<String>,
    /// When another prune of the same server is running, wait up to this long instead of
    /// exiting 3
    #[arg(long, value_name = "DURATION")]
    pub wait: Option<crate::duration::HumanDuration>,
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
    if args.dry_run {
        // A dry run changes nothing: no hooks, no notifications, no metrics.
        return work(args, ctx, &req, &Run::start("prune", None));
    }
    let run = match ctx.begin("prune", None, &args.server) {
        Ok(run) => run,
        Err(skipped) => {
            if ctx.json {
                let doc = super::render::PruneJson::start()?;
                doc.finish(&prune::PruneOutcome {
                    errors: skipped.errors(),
                    interrupted: skipped.code == ExitCode::Interrupted,
                    ..Default::default()
                })?;
            }
            return Ok(skipped.code);
        }
    };
    ctx.work(&run, || work(args, ctx, &req, &run))
}

/// The prune and its printing (after its `before` hooks, unless a dry run).
fn work(args: &Args, ctx: &Context, req: &PruneRequest, run: &Run) -> Result<ExitCode, Error> {
    let (mut outcome, doc) = if ctx.json {
        let mut doc = super::render::PruneJson::start()?;
        let outcome = prune::run(ctx, req, Utc::now(), &mut |e| doc.entry(&e))?;
        (outcome, Some(doc))
    } else {
        let mut t = super::render::PruneTable::new(ctx.ui.verbose());
        let outcome = prune::run(ctx, req, Utc::now(), &mut |e| t.add(e))?;
        // --quiet: a run that succeeds prints nothing (cron mails only on failure).
        if !(ctx.ui.quiet() && outcome.all_ok()) {
            t.print(&outcome, ctx)?;
        }
        (outcome, None)
    };
    let what = format!(
        "{}{} entries, {} freed, {} kept, {} orphans{}",
        if args.dry_run {
            "would remove "
        } else {
            "removed "
        },
        outcome.removed_entries,
        crate::ui::human_bytes(outcome.removed_bytes),
        outcome.kept_entries,
        outcome
            .orphans
            .iter()
            .filter(|o| o.done || args.dry_run)
            .count(),
        if outcome.failed_entries > 0 {
            format!(", {} FAILED", outcome.failed_entries)
        } else {
            String::new()
        }
    );
    ctx.summarize(what.clone());
    let result = Outcome::of(outcome.all_ok(), outcome.interrupted);
    let ended = if args.dry_run {
        crate::run::Ended {
            code: result.into(),
            failures: Vec::new(),
        }
    } else {
        publish(ctx, run, &args.server, &outcome, what, result)
    };
    if let Some(doc) = doc {
        // The document ends once the run is decided: its errors are the run's, and
        // `interrupted` says what the exit code says (130).
        outcome.errors.extend(ended.failures);
        outcome.interrupted = ended.code == ExitCode::Interrupted;
        doc.finish(&outcome)?;
    }
    Ok(ended.code)
}

/// Ends the run of a prune that changed the indexes (see [`crate::run::publish`]).
fn publish(
    ctx: &Context,
    run: &Run,
    servers: &[String],
    outcome: &prune::PruneOutcome,
    what: String,
    result: Outcome,
) -> crate::run::Ended {
    let mut summary = run.summary(result, servers);
    summary.refresh_every_type(&ctx.settings);
    summary.pruned = Some(outcome.counts());
    summary.what = Some(what);
    summary.failures = outcome.errors.clone();
    if outcome.failed_entries > 0 {
        summary.failures.push(format!(
            "{} planned removals failed",
            outcome.failed_entries
        ));
    }
    crate::run::publish(ctx, run, &[summary], result)
}
