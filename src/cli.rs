//! The command line: global flags and the subcommands, as clap derive definitions.
//!
//! Lives in the library so that the man page and completions can be generated from it and
//! `Cli::command().debug_assert()` can be tested. It parses; it does not act.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::cmd;

const AFTER_HELP: &str = "\
Exit codes:
  0    everything succeeded
  1    the run completed but something failed (a database, a storage, a verification)
  2    usage or configuration error; nothing was done
  3    another run holds the lock
  130  interrupted (SIGINT or SIGTERM)

Config: --config FILE, else $SQLGUARD_CONFIG, else ./sqlguard.yaml, else /etc/sqlguard/config.yaml;
environment variables SQLGUARD_* override the file (see the README or `man sqlguard`).";

/// Boringly reliable MySQL/MariaDB backups.
///
/// Each invocation loads the config, performs exactly one run (backup, list, ...), and exits with
/// a meaningful code. Passwords never appear on a command line.
#[derive(Debug, Parser)]
#[command(name = "sqlguard", version, after_help = AFTER_HELP, max_term_width = 100)]
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
    /// Apply retention: delete what the policy no longer keeps (--dry-run shows the plan)
    Prune(cmd::prune::Args),
    /// Validate the configuration or show it resolved
    #[command(subcommand)]
    Config(cmd::config::Command),
    /// Maintain the backup index
    #[command(subcommand)]
    Index(cmd::index::Command),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
