//! `sqlguard report`: status at a glance as a table, JSON, or a self-contained HTML dashboard.

use std::path::PathBuf;

use chrono::Utc;
use comfy_table::{Cell, Color};

use super::{table, Context, Printer};
use crate::duration::{compact, HumanDuration};
use crate::error::Error;
use crate::exit::ExitCode;
use crate::report::{self, Health, Report};
use crate::ui::human_bytes;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Html,
}

/// Status at a glance: last success and its age per database and type, failures, storage use.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Output format (--json is the same as --format json)
    #[arg(long, short = 'f', value_enum, default_value = "table")]
    pub format: Format,
    /// Write to this file instead of stdout (atomically, for html)
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Window for success rates, the failure list and the backups the JSON and HTML hold
    #[arg(long, value_name = "DURATION", default_value = "30d")]
    pub window: HumanDuration,
}

/// Builds the report from every index.
pub fn build(ctx: &Context, window: HumanDuration) -> Report {
    let catalog = ctx.catalog(&[]);
    report::build(&ctx.settings, &catalog, window.to_chrono(), Utc::now())
}

fn health_cell(h: Health, color: bool) -> Cell {
    let (text, c) = match h {
        Health::Healthy => ("healthy", Color::Green),
        Health::Stale => ("STALE", Color::Yellow),
        Health::Failing => ("FAILING", Color::Red),
    };
    let cell = Cell::new(text);
    if color {
        cell.fg(c)
    } else {
        cell
    }
}

fn render_table(r: &Report, ctx: &Context) -> String {
    let color = ctx.ui.color();
    let mut out = format!(
        "{} healthy, {} stale, {} failing; {} backups, {} stored\n\n",
        r.summary.healthy,
        r.summary.stale,
        r.summary.failing,
        r.summary.backups,
        human_bytes(r.summary.bytes)
    );
    if r.databases.is_empty() {
        out.push_str("no backups recorded yet\n");
    } else {
        let mut t = table(
            &[
                "SERVER",
                "DATABASE",
                "TYPE",
                "HEALTH",
                "LAST SUCCESS (UTC)",
                "AGE",
                "SIZE",
                "TREND",
                "SUCCESS RATE",
            ],
            color,
        );
        for d in &r.databases {
            t.add_row(vec![
                Cell::new(&d.server),
                Cell::new(&d.database),
                Cell::new(&d.backup_type),
                health_cell(d.health, color),
                Cell::new(
                    d.last_success_at
                        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_else(|| "never".into()),
                ),
                Cell::new(
                    d.last_success_age_seconds
                        .map(|a| compact(a as u64))
                        .unwrap_or_else(|| "-".into()),
                ),
                Cell::new(
                    d.last_size_bytes
                        .map(human_bytes)
                        .unwrap_or_else(|| "-".into()),
                ),
                Cell::new(
                    d.size_trend_percent
                        .map(|p| format!("{p:+.1}%"))
                        .unwrap_or_else(|| "-".into()),
                ),
                Cell::new(
                    d.success_rate
                        .map(|s| format!("{:.0}% of {}", s * 100.0, d.runs_in_window))
                        .unwrap_or_else(|| "-".into()),
                ),
            ]);
        }
        out.push_str(&t.to_string());
        out.push('\n');
    }
    if !r.failures.is_empty() {
        out.push_str(&format!(
            "\nfailures in the last {}:\n",
            compact(r.window_seconds as u64)
        ));
        let mut t = table(
            &[
                "STARTED (UTC)",
                "SERVER",
                "DATABASE",
                "TYPE",
                "STORAGE",
                "ERROR",
            ],
            color,
        );
        for f in r.failures.iter().take(20) {
            let e: String = f
                .error
                .clone()
                .unwrap_or_default()
                .chars()
                .take(100)
                .collect();
            t.add_row(vec![
                f.started_at.format("%Y-%m-%d %H:%M").to_string(),
                f.server.clone(),
                f.database.clone(),
                f.backup_type.clone(),
                f.storage.clone(),
                e,
            ]);
        }
        out.push_str(&t.to_string());
        out.push('\n');
        if r.failures.len() > 20 {
            out.push_str(&format!(
                "… and {} more (sqlguard list --status failed)\n",
                r.failures.len() - 20
            ));
        }
    }
    out.push('\n');
    let mut t = table(&["STORAGE", "BACKUPS", "BYTES"], color);
    for s in &r.storages {
        t.add_row(vec![
            s.storage.clone(),
            s.backups.to_string(),
            human_bytes(s.bytes),
        ]);
    }
    out.push_str(&t.to_string());
    out
}

/// Runs the report subcommand.
pub fn run(args: &Args, ctx: &Context) -> Result<ExitCode, Error> {
    let r = build(ctx, args.window);
    for e in &r.errors {
        ctx.ui.error(e);
    }
    let format = if ctx.json { Format::Json } else { args.format };
    let text = match format {
        Format::Table => render_table(&r, ctx),
        Format::Json => serde_json::to_string_pretty(&r).map_err(std::io::Error::other)?,
        Format::Html => {
            if let Some(path) = &args.output {
                report::write_html(&r, path)?;
                ctx.ui
                    .info(&format!("report written to {}", path.display()));
                String::new()
            } else {
                report::html(&r)
            }
        }
    };
    if !text.is_empty() {
        match &args.output {
            Some(path) => std::fs::write(path, format!("{}\n", text.trim_end()))?,
            None => Printer::line(text.trim_end())?,
        }
    }
    Ok(if r.errors.is_empty() {
        ExitCode::Success
    } else {
        ExitCode::Failure
    })
}
