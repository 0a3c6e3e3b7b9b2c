//! `sqlguard binlog`: archive each server's binary log since the last run (point-in-time
//! recovery), one-shot, from a timer.

use super::{Col, Context, Grid, Printer};
use crate::binlog::{self, BinlogRequest};
use crate::error::Error;
use crate::exit::{ExitCode, Outcome};
use crate::run::Run;
use crate::ui::human_bytes;

/// Archive the binary log of each server with a `binlog:` section: every event since the last
/// run, to the server's current end, as compressed and hashed segments beside the backups.
/// Run it every minute from a timer (`sqlguard schedule` writes one); `restore --to-time`
/// replays the segments onto a dump
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Only this server (repeatable)
    #[arg(long, value_name = "NAME", add = crate::complete::server_arg())]
    pub server: Vec<String>,
    /// When another archive run of the same server is running, wait up to this long instead of
    /// exiting 3
    #[arg(long, value_name = "DURATION")]
    pub wait: Option<crate::duration::HumanDuration>,
}

/// Runs the binlog subcommand.
pub fn run(args: &Args, ctx: &Context) -> Result<ExitCode, Error> {
    let req = BinlogRequest {
        servers: args.server.clone(),
    };
    let servers: Vec<String> = if args.server.is_empty() {
        ctx.settings
            .backed_up()
            .filter(|s| s.binlog.is_some())
            .map(|s| s.name.clone())
            .collect()
    } else {
        args.server.clone()
    };
    if servers.is_empty() {
        return Err(Error::invalid(
            "no server has a `binlog:` section, so there is nothing to archive: add one to the servers whose binary log to keep (see `Point-in-time recovery` in the README)",
        ));
    }
    let _locks = ctx.lock_jobs(&servers, "binlog", None, args.wait)?;
    let run = match ctx.begin("binlog", None, &args.server) {
        Ok(run) => run,
        Err(skipped) => {
            if ctx.json {
                print_json(
                    &binlog::BinlogOutcome {
                        interrupted: skipped.code == ExitCode::Interrupted,
                        ..Default::default()
                    },
                    false,
                    &skipped.errors(),
                )?;
            }
            return Ok(skipped.code);
        }
    };
    ctx.work(&run, || work(args, ctx, &req, &run))
}

/// Prints the JSON document of `binlog`: the outcome, whether the run succeeded, and what
/// failed besides the servers' own errors (a hook, a required notifier or push).
fn print_json(outcome: &binlog::BinlogOutcome, ok: bool, errors: &[String]) -> Result<(), Error> {
    #[derive(serde::Serialize)]
    struct BinlogReport<'a> {
        schema_version: u32,
        ok: bool,
        #[serde(flatten)]
        outcome: &'a binlog::BinlogOutcome,
        errors: &'a [String],
    }
    Printer::json(&BinlogReport {
        schema_version: crate::index::SCHEMA_VERSION,
        ok,
        outcome,
        errors,
    })?;
    Ok(())
}

fn work(args: &Args, ctx: &Context, req: &BinlogRequest, run: &Run) -> Result<ExitCode, Error> {
    let outcome = binlog::run(ctx, req)?;
    if !(ctx.json || ctx.ui.quiet() && outcome.all_ok()) {
        let mut grid = Grid::new(&[
            Col::name("SERVER"),
            Col::drop("STORAGE", 1),
            Col::keep("FILE"),
            Col::keep("FROM"),
            Col::keep("TO"),
            Col::drop("EVENTS", 2),
            Col::keep("STORED"),
        ]);
        let mut rows = 0;
        for r in outcome.segments() {
            let Some(s) = &r.segment else { continue };
            grid.row(
                vec![
                    r.server.clone(),
                    r.storage.clone(),
                    s.file.clone(),
                    s.start.to_string(),
                    s.end.to_string(),
                    s.events.to_string(),
                    human_bytes(r.compressed_bytes),
                ],
                false,
            );
            rows += 1;
        }
        if rows > 0 {
            Printer::line(grid.render(ctx).trim_end())?;
        }
        for s in &outcome.servers {
            if let Some(st) = &s.state {
                Printer::text(&format!(
                    "{}: archived to {}:{}{}",
                    s.server,
                    st.file,
                    st.position,
                    match st.last_event_at {
                        Some(t) => format!(", newest event {}", t.format("%Y-%m-%d %H:%M:%S UTC")),
                        None => String::new(),
                    }
                ))?;
            }
            for e in &s.errors {
                Printer::text(&format!("{}: FAILED: {e}", s.server))?;
            }
        }
    }
    let segments = outcome.segments().count();
    let bytes: u64 = outcome.segments().map(|r| r.compressed_bytes).sum();
    let failures: Vec<String> = outcome
        .servers
        .iter()
        .flat_map(|s| s.errors.iter().map(move |e| format!("{}: {e}", s.server)))
        .collect();
    let what = format!(
        "{segments} segment copies, {} stored{}",
        human_bytes(bytes),
        if failures.is_empty() {
            String::new()
        } else {
            format!(", {} FAILED", failures.len())
        }
    );
    ctx.summarize(what.clone());
    let result = Outcome::of(outcome.all_ok(), outcome.interrupted);
    let mut summary = run.summary(result, &args.server);
    summary.what = Some(what);
    summary.failures = failures;
    summary.binlog = outcome.facts(&ctx.settings);
    let ended = crate::run::publish(ctx, run, &[summary], result);
    if ctx.json {
        print_json(&outcome, ended.code == ExitCode::Success, &ended.failures)?;
    }
    Ok(ended.code)
}
