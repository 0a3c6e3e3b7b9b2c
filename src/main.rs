//! The `sqlguard` binary: parse, resolve settings once, dispatch, map the result to an exit code.

use clap::Parser;

use sqlguard::cli::{Cli, Command};
use sqlguard::cmd::{self, Context};
use sqlguard::config::Settings;
use sqlguard::exit::ExitCode;
use sqlguard::ui::Ui;

fn main() -> std::process::ExitCode {
    // A shell asking for completions (`COMPLETE=bash sqlguard -- …`): answer and exit.
    sqlguard::complete::run_if_requested();
    let cli = Cli::parse();
    run(cli).into()
}

fn run(cli: Cli) -> ExitCode {
    if let Command::Generate(a) = &cli.command {
        // Needs no config: it only renders the command-line definitions.
        return match cmd::generate::write_all(&a.out) {
            Ok(files) => {
                for f in files {
                    sqlguard::ui::stderr_line(&format!("sqlguard: wrote {}", f.display()));
                }
                ExitCode::Success
            }
            Err(e) => {
                sqlguard::ui::stderr_line(&format!(
                    "sqlguard: error: writing to {}: {e}",
                    a.out.display()
                ));
                ExitCode::Failure
            }
        };
    }
    let env = sqlguard::config::env::Environment::from_process();
    let g = &cli.global;
    // No colour for NO_COLOR, nor for a terminal that says it has none.
    let no_color = env.contains("NO_COLOR") || env.get("TERM") == Some("dumb");
    let ui = Ui::new(g.quiet, g.verbose, g.no_progress, no_color);
    // `config` pushes nothing: its checks read the metrics section whatever --no-push says.
    let no_push = g.no_push && !matches!(cli.command, Command::Config(_));
    let settings = match Settings::resolve_with(g.config.as_deref(), no_push, &env) {
        Ok(s) => s,
        Err(e) => {
            ui.error(&format!("{e:#}"));
            return ExitCode::Usage;
        }
    };
    // The secrets are read: out of the environment block, where /proc/<pid>/environ shows them
    // to the same user's processes (a hook reading its parent's) while the run lasts.
    if let Err(e) = sqlguard::process::blank_environment(&env.secret_names()) {
        ui.debug(&format!(
            "the secrets in sqlguard's own environment could not be blanked ({e}); other processes of this user can read them in /proc/{}/environ while it runs",
            std::process::id()
        ));
    }
    for w in &settings.warnings {
        ui.warn(w);
    }
    // Before any thread or child starts, so that all of them inherit it.
    if g.low_priority || settings.low_priority {
        match sqlguard::process::lower_priority() {
            Ok(()) => ui.debug(&format!(
                "running at low priority: nice {}, best-effort I/O level 7",
                sqlguard::process::LOW_NICE
            )),
            Err(e) => ui.warn(&e),
        }
    }
    // A custom CA for S3 endpoints reaches the TLS client through SSL_CERT_FILE, which it reads
    // (with the system store) on each connection. Set here, before any thread starts.
    match settings.s3_ca_file() {
        Ok(Some(ca)) => std::env::set_var("SSL_CERT_FILE", ca),
        Ok(None) => {}
        Err(e) => {
            ui.error(&format!("{e:#}"));
            return ExitCode::Usage;
        }
    }
    // Every signal asks the run to stop cleanly; none skips the record or the cleanup.
    let cancel = sqlguard::signals::install();
    let ctx = Context {
        session: sqlguard::session::Session::new(settings, ui, cancel),
        json: g.json,
        wide: g.wide,
        summary: Default::default(),
    };
    let started = std::time::Instant::now();
    let result = match &cli.command {
        Command::Backup(a) => cmd::backup::run(a, &ctx),
        Command::List(a) => cmd::list::run(a, &ctx),
        Command::Prune(a) => cmd::prune::run(a, &ctx),
        Command::Binlog(a) => cmd::binlog::run(a, &ctx),
        Command::Report(a) => cmd::report::run(a, &ctx),
        Command::Verify(a) => cmd::verify::run(a, &ctx),
        Command::Fetch(a) => cmd::fetch::run(a, &ctx),
        Command::Restore(a) => cmd::restore::run(a, &ctx),
        Command::Check(a) => cmd::check::run(a, &ctx),
        Command::Schedule(a) => cmd::schedule::run(a, &ctx),
        Command::Config(c) => cmd::config::run(c, &ctx),
        Command::Index(c) => cmd::index::run(c, &ctx),
        Command::Generate(_) => unreachable!("handled before the config is read"),
    };
    let code = match result {
        // Whatever failed after a signal failed because of it: the run was interrupted (130),
        // as every command's outcome says (a read-only one, such as list, included).
        Ok(ExitCode::Failure) => sqlguard::exit::Outcome::of(false, false).into(),
        Ok(code) => code,
        Err(sqlguard::error::Error::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::Success
        }
        Err(e) => {
            let err = anyhow::Error::new(e);
            ctx.ui.error(&format!("{err:#}"));
            err.downcast_ref::<sqlguard::error::Error>()
                .map(|e| e.exit_code())
                .unwrap_or(ExitCode::Failure)
        }
    };
    // The run's last line: what, how many, how long, how it ended.
    if let Some(what) = ctx.summary.borrow().as_deref() {
        ctx.ui.summary(
            &format!(
                "{} {what}; {}; exit {}",
                cli.command.name(),
                sqlguard::duration::took(started.elapsed().as_secs_f64()),
                code.code()
            ),
            code == ExitCode::Success,
        );
    }
    code
}
