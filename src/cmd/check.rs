//! `sqlguard check`: reach every server and storage of the config (and the Pushgateway), exit 1
//! naming what failed.

use serde::Serialize;

use super::{Col, Context, Grid, Printer};
use crate::check::Check;
use crate::error::Error;
use crate::exit::ExitCode;

/// Reach every server (version, tools, privileges a backup lacks; the restore account) and
/// every storage (write, read back and delete a probe object): the thing to run after writing a
/// config, before the first night
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Only this server (repeatable)
    #[arg(long, value_name = "NAME", add = crate::complete::server_arg())]
    pub server: Vec<String>,
    /// Only this storage (repeatable)
    #[arg(long, value_name = "NAME", add = crate::complete::storage_arg())]
    pub storage: Vec<String>,
}

#[derive(Serialize)]
struct CheckReport<'a> {
    schema_version: u32,
    ok: bool,
    checks: &'a [Check],
}

/// Runs the check subcommand.
pub fn run(args: &Args, ctx: &Context) -> Result<ExitCode, Error> {
    for s in &args.server {
        ctx.settings.server(s)?;
    }
    for s in &args.storage {
        ctx.settings.storage(s)?;
    }
    let checks = crate::check::run(&ctx.session, &args.server, &args.storage);
    let ok = checks.iter().all(|c| c.ok);
    for c in checks.iter().filter(|c| !c.ok) {
        ctx.ui
            .error(&format!("{} '{}': {}", c.kind, c.name, c.detail));
    }
    if ctx.json {
        Printer::json(&CheckReport {
            schema_version: 1,
            ok,
            checks: &checks,
        })?;
    } else if !(ok && ctx.ui.quiet()) {
        let mut t = Grid::new(&[
            Col::keep("CHECK"),
            Col::keep("NAME"),
            Col::keep("RESULT"),
            Col::cut("DETAIL"),
        ]);
        for c in &checks {
            t.row(
                vec![
                    c.kind.to_string(),
                    c.name.clone(),
                    if c.ok { "ok" } else { "FAILED" }.to_string(),
                    c.detail.clone(),
                ],
                !c.ok,
            );
        }
        Printer::line(&t.render(ctx))?;
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    ctx.summarize(format!(
        "{} of {} checks passed",
        checks.len() - failed,
        checks.len()
    ));
    Ok(if ok {
        ExitCode::Success
    } else {
        ExitCode::Failure
    })
}
