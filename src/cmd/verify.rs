//! `sqlguard verify`: prove stored backups are intact (and, with `--restore-test`, restorable).

use serde::Serialize;

use super::{Col, Context, Grid, Printer};
use crate::error::Error;
use crate::exit::{ExitCode, Outcome};
use crate::run::Run;
use crate::ui::human_bytes;
use crate::verify::{self, VerifyRequest, VerifyResult};

/// Re-read stored copies: SHA-256 and size against the index, full decompression, dump size and
/// completion trailer; optionally restore each into a scratch database and drop it.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Backup ids to verify (from `sqlguard list`); every copy of each
    #[arg(value_name = "ID", add = crate::complete::id_arg())]
    pub ids: Vec<String>,
    /// Verify the newest backup of each database on each storage
    #[arg(long, conflicts_with = "ids")]
    pub latest: bool,
    /// Verify N copies, least recently verified first (never verified ones before all): run
    /// from a timer, it walks the whole store over time
    #[arg(long, value_name = "N", conflicts_with_all = ["ids", "latest"], value_parser = clap::value_parser!(u32).range(1..))]
    pub sample: Option<u32>,
    /// Also restore each copy into a scratch database on its server, then drop it (with the
    /// restore engine: --jobs and --no-binlog apply)
    #[arg(long)]
    pub restore_test: bool,
    #[command(flatten)]
    pub load: super::restore::LoadArgs,
    #[command(flatten)]
    pub filter: crate::catalog::RecordFilter,
}

/// The JSON document of `verify`.
#[derive(Debug, Serialize)]
struct VerifyReport<'a> {
    schema_version: u32,
    ok: bool,
    verified: &'a [VerifyResult],
    /// What failed besides the copies: an index or storage that could not be read, a hook or
    /// a required notifier or push.
    errors: &'a [String],
}

/// Runs the verify subcommand.
pub fn run(args: &Args, ctx: &Context) -> Result<ExitCode, Error> {
    let req = VerifyRequest {
        ids: args.ids.clone(),
        latest: args.latest,
        filter: args.filter.clone(),
        restore_test: args.restore_test,
        load: args.load.options(),
        sample: args.sample.map(|n| n as usize),
    };
    let run = match ctx.begin("verify", None, &args.filter.servers) {
        Ok(run) => run,
        Err(skipped) => {
            if ctx.json {
                Printer::json(&VerifyReport {
                    schema_version: crate::index::SCHEMA_VERSION,
                    ok: false,
                    verified: &[],
                    errors: &skipped.errors(),
                })?;
            }
            return Ok(skipped.code);
        }
    };
    ctx.work(&run, || work(args, ctx, &req, &run))
}

/// The verification and its printing, after its `before` hooks.
fn work(args: &Args, ctx: &Context, req: &VerifyRequest, run: &Run) -> Result<ExitCode, Error> {
    let outcome = verify::run(ctx, req)?;
    let results = outcome.results;
    // A damaged or unreachable index is a failure, never "nothing to verify" (issue 10).
    let ok = results.iter().all(|r| r.ok) && outcome.errors.is_empty();
    let interrupted = ctx.cancel.load(std::sync::atomic::Ordering::Relaxed);
    let result = Outcome::of(ok, interrupted);
    let intact = results.iter().filter(|r| r.ok).count();
    let tested = results.iter().filter(|r| r.ok && r.restore_tested).count();
    let what = format!(
        "{intact} of {} copies intact{}",
        results.len(),
        if tested > 0 {
            format!(" ({tested} restore-tested)")
        } else {
            String::new()
        }
    );
    ctx.summarize(what.clone());
    let mut types: Vec<String> = results
        .iter()
        .map(|r| r.record.backup_type.clone())
        .collect();
    types.sort();
    types.dedup();
    // The servers it worked on: those of the copies it checked, unless something it could not
    // attribute (an unreadable index or storage) failed, which counts for every server asked for.
    let mut covered: Vec<String> = results.iter().map(|r| r.record.server.clone()).collect();
    covered.sort();
    covered.dedup();
    let servers = if outcome.errors.is_empty() && !covered.is_empty() {
        &covered
    } else {
        &args.filter.servers
    };
    let mut summary = run.summary(result, servers);
    summary.refresh_types = types;
    summary.what = Some(what);
    summary.failures = results
        .iter()
        .filter(|r| !r.ok)
        .map(|r| {
            format!(
                "{} ({}/{}) on {}: {}",
                r.record.id,
                r.record.server,
                r.record.database,
                r.record.storage,
                r.problem.as_deref().unwrap_or("failed")
            )
        })
        .chain(outcome.errors.iter().cloned())
        .collect();
    // Printed once the run is decided, so that the document's `ok` is the run's.
    let ended = crate::run::publish(ctx, run, &[summary], result);
    let code = ended.code;
    if ctx.json {
        let errors = ended.errors(&outcome.errors);
        Printer::json(&VerifyReport {
            schema_version: crate::index::SCHEMA_VERSION,
            ok: code == ExitCode::Success,
            verified: &results,
            errors: &errors,
        })?;
    } else if ok && ctx.ui.quiet() {
        // --quiet: a run that succeeds prints nothing (cron mails only on failure).
    } else if results.is_empty() && outcome.errors.is_empty() {
        Printer::line("no backup matches")?;
    } else if results.is_empty() {
        Printer::line("nothing verified: an index could not be read (see above)")?;
    } else {
        let mut t = Grid::new(&[
            Col::keep("ID"),
            Col::drop("SERVER", 3),
            Col::name("DATABASE"),
            Col::drop("TYPE", 2),
            Col::drop("STORAGE", 2),
            Col::drop("SIZE", 4),
            Col::cut("RESULT"),
        ]);
        for r in &results {
            let result = match (&r.problem, r.restored_tables, r.restored_rows) {
                (Some(p), _, _) if r.not_checked => format!("NOT CHECKED: {p}"),
                (Some(p), _, _) => format!("FAILED: {p}"),
                (None, Some(n), Some(rows)) => format!(
                    "intact, restored in {} ({n} tables, {rows} rows as dumped, CHECK TABLE ok)",
                    crate::duration::took(r.restore_seconds.unwrap_or(0.0))
                ),
                (None, Some(n), None) => format!(
                    "intact, restored in {} ({n} tables)",
                    crate::duration::took(r.restore_seconds.unwrap_or(0.0))
                ),
                (None, None, _) => "intact".to_string(),
            };
            t.row(
                vec![
                    r.record.id.clone(),
                    r.record.server.clone(),
                    r.record.database.clone(),
                    r.record.backup_type.clone(),
                    r.record.storage.clone(),
                    human_bytes(r.record.compressed_bytes),
                    result,
                ],
                !r.ok,
            );
        }
        Printer::line(&t.render(ctx))?;
    }
    Ok(code)
}
