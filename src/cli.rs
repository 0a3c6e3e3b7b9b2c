//! The command line: global flags and the subcommands, as clap derive definitions.
//!
//! Lives in the library so that the man page and completions can be generated from it and
//! `Cli::command().debug_assert()` can be tested. It parses; it does not act.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::cmd;

/// Exit codes and where the config comes from, for `--help`.
fn after_help() -> String {
    let mut s = String::from("Exit codes:\n");
    for (code, meaning) in crate::exit::ExitCode::TABLE {
        s.push_str(&format!("  {code:<4} {meaning}\n"));
    }
    s.push_str("\nConfig: --config FILE, else $SQLGUARD_CONFIG, else ./sqlguard.yaml, else /etc/sqlguard/config.yaml.");
    s
}

/// `after_help` plus every environment variable, for `--help` and the man page.
fn after_long_help() -> String {
    let mut s = after_help();
    s.push_str(
        "\n\nEnvironment variables override the file (flags > environment > file > defaults):\n",
    );
    for (name, doc) in crate::env_vars::ALL.iter().chain(crate::env_vars::FOREIGN) {
        s.push_str(&format!("  {name}\n      {}\n", doc.replace('`', "")));
    }
    s
}

/// Boringly reliable MySQL/MariaDB backups.
///
/// Each invocation loads the config, performs exactly one run (backup, list, ...), and exits with
/// a meaningful code. Passwords never appear on a command line.
#[derive(Debug, Parser)]
#[command(name = "sqlguard", version, after_help = after_help(), after_long_help = after_long_help(), max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags accepted by every subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// YAML config file [env: SQLGUARD_CONFIG]
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the result as a versioned JSON document on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// Show every column of a table, however wide (on a terminal, tables otherwise drop their
    /// least useful columns to fit its width)
    #[arg(long, global = true)]
    pub wide: bool,
    /// Log only errors
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log more detail (tools, versions, commands without secrets)
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
    /// Never draw progress bars (they are drawn only when stderr is a terminal)
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Do not push metrics to the Pushgateway [env: SQLGUARD_NO_PUSH]
    #[arg(long, global = true)]
    pub no_push: bool,
    /// Run at low CPU and I/O priority (nice 10, best-effort I/O level 7), children included
    /// [config: low_priority; env: SQLGUARD_LOW_PRIORITY]
    #[arg(long, global = true)]
    pub low_priority: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Dump databases, compress, and store them on every storage of the backup type
    Backup(cmd::backup::Args),
    /// List backups from the index, newest first
    List(cmd::list::Args),
    /// Status at a glance: a table, JSON, or a self-contained HTML dashboard
    Report(cmd::report::Args),
    /// Prove backups intact: SHA-256, sizes, full decompression, trailer; --restore-test too
    Verify(cmd::verify::Args),
    /// Download a backup to a file or stdout, checked against the index
    #[command(
        after_help = "A copy that fails its checks or cannot be read is replaced by the same backup's copy on another storage, said on stderr; --storage reads that storage's copy alone."
    )]
    Fetch(cmd::fetch::Args),
    /// Restore a backup into a database, proven against the index before any byte is sent
    #[command(
        after_help = "A copy that fails its checks or cannot be read is replaced by the same backup's copy on another storage, said on stderr (--storage reads that storage's copy alone), and so is each binary log segment of a point-in-time restore."
    )]
    Restore(cmd::restore::Args),
    /// Apply retention: delete what the policy no longer keeps (--dry-run shows the plan)
    Prune(cmd::prune::Args),
    /// Archive each server's binary log since the last run (point-in-time recovery)
    Binlog(cmd::binlog::Args),
    /// Write crontab lines or systemd timer + service units from the config's schedules
    Schedule(cmd::schedule::Args),
    /// Reach every server and storage of the config: versions, missing privileges, a probe
    /// object written, read and deleted; and the Pushgateway when metrics are configured; exit 1
    /// naming what failed
    Check(cmd::check::Args),
    /// Validate the configuration or show it resolved
    #[command(subcommand)]
    Config(cmd::config::Command),
    /// Maintain the backup index
    #[command(subcommand)]
    Index(cmd::index::Command),
    /// Write the man pages and shell completions (for packagers and the repository)
    #[command(hide = true)]
    Generate(cmd::generate::Args),
}

impl Command {
    /// The subcommand's name, for the summary line.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Backup(_) => "backup",
            Command::List(_) => "list",
            Command::Report(_) => "report",
            Command::Verify(_) => "verify",
            Command::Fetch(_) => "fetch",
            Command::Restore(_) => "restore",
            Command::Check(_) => "check",
            Command::Prune(_) => "prune",
            Command::Binlog(_) => "binlog",
            Command::Schedule(_) => "schedule",
            Command::Config(_) => "config",
            Command::Index(_) => "index",
            Command::Generate(_) => "generate",
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
