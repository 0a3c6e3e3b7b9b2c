//! `sqlguard config check` and `sqlguard config show`.
//!
//! Resolution itself happened in `main` (a bad config exits 2 before any command runs); these
//! commands report what was resolved.

use serde::Serialize;

use super::{Context, Printer};
use crate::error::Error;
use crate::exit::ExitCode;

/// Config subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Validate the config file and environment; exit 2 with the file, line and key on error
    Check,
    /// Print the resolved configuration as a config file (defaults filled in; secrets as their
    /// file or ${VAR}, an inline one as *** which config check refuses); --json: the resolved
    /// settings
    Show,
}

/// The JSON document of `config check`.
#[derive(Debug, Serialize)]
struct CheckReport<'a> {
    schema_version: u32,
    valid: bool,
    config_file: Option<String>,
    servers: Vec<&'a str>,
    storages: Vec<&'a str>,
    backup_types: Vec<&'a str>,
    warnings: &'a [String],
}

/// Runs the config subcommand.
pub fn run(cmd: &Command, ctx: &Context) -> Result<ExitCode, Error> {
    let s = &ctx.settings;
    match cmd {
        Command::Check => {
            let report = CheckReport {
                schema_version: 1,
                valid: true,
                config_file: s.config_file.as_ref().map(|p| p.display().to_string()),
                servers: s.servers.iter().map(|x| x.name.as_str()).collect(),
                storages: s.storages.iter().map(|x| x.name.as_str()).collect(),
                backup_types: s.backup_types.iter().map(|x| x.name.as_str()).collect(),
                warnings: &s.warnings,
            };
            if ctx.json {
                Printer::json(&report)?;
            } else {
                Printer::text(&format!(
                    "config OK ({}): servers: {}; storages: {}; backup types: {}",
                    report.config_file.as_deref().unwrap_or("environment only"),
                    report.servers.join(", "),
                    report.storages.join(", "),
                    report.backup_types.join(", "),
                ))?;
            }
        }
        Command::Show => {
            if ctx.json {
                #[derive(Serialize)]
                struct Doc<'a> {
                    schema_version: u32,
                    #[serde(flatten)]
                    settings: &'a crate::config::Settings,
                }
                Printer::json(&Doc {
                    schema_version: 1,
                    settings: s,
                })?;
            } else {
                Printer::line(crate::config::show::file_yaml(s).trim_end())?;
            }
        }
    }
    Ok(ExitCode::Success)
}
