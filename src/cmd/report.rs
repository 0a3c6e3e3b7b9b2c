//! `sqlguard report`: status at a glance as a table, JSON, or a self-contained HTML dashboard.

use std::path::PathBuf;

use chrono::Utc;
use comfy_table::Color;

use super::{table, Col, Context, Grid, Printer};
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

fn health_text(h: Health) -> (&'static str, Color) {
    match h {
        Health::Healthy => ("healthy", Color::Green),
        Health::Stale => ("STALE", Color::Yellow),
        Health::Failing => ("FAILING", Color::Red),
        Health::Damaged => ("DAMAGED", Color::Red),
        Health::Retired => ("retired", Color::Reset),
    }
}

/// The newest verification of a row: `ok 2d`, `FAILED 3h`, `-`.
fn verified_text(d: &crate::report::DatabaseStatus, now: chrono::DateTime<Utc>) -> String {
    let age = |t: chrono::DateTime<Utc>| compact((now - t).num_seconds().max(0) as u64);
    match &d.last_verification {
        None => "-".into(),
        Some(v) if v.ok => format!("ok {}", age(v.verified_at)),
        Some(v) => format!("FAILED {}", age(v.verified_at)),
    }
}

/// The newest restore test of a row, with its measured recovery time: `ok 2d (14s)`.
fn restore_test_text(d: &crate::report::DatabaseStatus, now: chrono::DateTime<Utc>) -> String {
    let age = |t: chrono::DateTime<Utc>| compact((now - t).num_seconds().max(0) as u64);
    match &d.last_restore_test {
        None => "-".into(),
        Some(t) => format!(
            "{} {} ({})",
            if t.ok { "ok" } else { "FAILED" },
            age(t.tested_at),
            compact(t.duration_seconds.round() as u64)
        ),
    }
}

fn render_table(r: &Report, ctx: &Context) -> String {
    let color = ctx.ui.color();
    let unreadable: Vec<&str> = r
        .storages
        .iter()
        .filter(|s| !s.readable)
        .map(|s| s.storage.as_str())
        .collect();
    let mut out = format!(
        "{} healthy, {} stale, {} failing{}; {} backups, {} stored{}\n\n",
        r.summary.healthy,
        r.summary.stale,
        r.summary.failing,
        [
            (r.summary.damaged, " DAMAGED (no copy passes verification)"),
            (r.summary.retired, " retired"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!(", {n}{what}"))
        .collect::<String>(),
        r.summary.backups,
        human_bytes(r.summary.bytes),
        if unreadable.is_empty() {
            String::new()
        } else {
            format!(
                " (not counting {}: its index cannot be read)",
                unreadable.join(", ")
            )
        }
    );
    if r.databases.is_empty() {
        out.push_str("no backups recorded yet\n");
    } else {
        let now = r.generated_at;
        let mut t = Grid::new(&[
            Col::drop("SERVER", 4),
            Col::name("DATABASE"),
            Col::keep("TYPE"),
            Col::keep("HEALTH"),
            Col::drop("LAST SUCCESS (UTC)", 3),
            Col::drop("AGE", 1),
            Col::drop("SIZE", 2),
            Col::drop("TREND", 6),
            Col::drop("SUCCESS RATE", 5),
            Col::drop("VERIFIED", 2),
            Col::drop("RESTORE TEST", 2),
        ]);
        for d in &r.databases {
            let (health, c) = health_text(d.health);
            t.row_in(
                vec![
                    d.server.clone(),
                    d.database.clone(),
                    d.backup_type.clone(),
                    health.to_string(),
                    d.last_success_at
                        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_else(|| "never".into()),
                    d.last_success_age_seconds
                        .map(|a| compact(a as u64))
                        .unwrap_or_else(|| "-".into()),
                    d.last_size_bytes
                        .map(human_bytes)
                        .unwrap_or_else(|| "-".into()),
                    d.size_trend_percent
                        .map(|p| format!("{p:+.1}%"))
                        .unwrap_or_else(|| "-".into()),
                    d.success_rate
                        .map(|s| format!("{:.0}% of {}", s * 100.0, d.runs_in_window))
                        .unwrap_or_else(|| "-".into()),
                    verified_text(d, now),
                    restore_test_text(d, now),
                ],
                (d.health != Health::Healthy).then_some(c),
            );
        }
        out.push_str(&t.render(ctx));
        out.push('\n');
    }
    if !r.failures.is_empty() {
        out.push_str(&format!(
            "\nfailures in the last {}:\n",
            compact(r.window_seconds as u64)
        ));
        let mut t = Grid::new(&[
            Col::drop("STARTED (UTC)", 1),
            Col::drop("SERVER", 2),
            Col::name("DATABASE"),
            Col::drop("TYPE", 1),
            Col::drop("STORAGE", 1),
            Col::cut("ERROR"),
        ]);
        for f in r.failures.iter().take(20) {
            t.row(
                vec![
                    f.started_at.format("%Y-%m-%d %H:%M").to_string(),
                    f.server.clone(),
                    f.database.clone(),
                    f.backup_type.clone(),
                    f.storage.clone(),
                    f.error.clone().unwrap_or_default(),
                ],
                true,
            );
        }
        out.push_str(&t.render(ctx));
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
        // What an unreadable index holds is unknown, not nothing.
        let (backups, bytes) = if s.readable {
            (s.backups.to_string(), human_bytes(s.bytes))
        } else {
            ("unreadable".to_string(), "?".to_string())
        };
        t.add_row(super::cells(vec![s.storage.clone(), backups, bytes]));
    }
    out.push_str(&t.to_string());
    if !r.point_in_time.is_empty() {
        out.push_str("\n\n");
        let mut t = table(
            &[
                "SERVER",
                "POINT-IN-TIME",
                "RPO",
                "CAUGHT UP (UTC)",
                "NEWEST EVENT (UTC)",
                "ARCHIVED TO",
                "WINDOW",
            ],
            color,
        );
        let at = |t: Option<chrono::DateTime<Utc>>| {
            t.map_or("-".to_string(), |t| {
                t.format("%Y-%m-%d %H:%M:%S").to_string()
            })
        };
        for p in &r.point_in_time {
            let state = if p.caught_up_at.is_none() {
                "never archived"
            } else if p.late {
                "LATE"
            } else if p.last_error.is_some() {
                "FAILING"
            } else {
                "ok"
            };
            let cell = comfy_table::Cell::new(state);
            let cell = if color && (p.late || p.last_error.is_some()) {
                cell.fg(Color::Red)
            } else {
                cell
            };
            t.add_row(vec![
                comfy_table::Cell::new(crate::ui::cell_text(&p.server)),
                cell,
                comfy_table::Cell::new(p.rpo_seconds.map_or("-".into(), |s| compact(s as u64))),
                comfy_table::Cell::new(at(p.caught_up_at)),
                comfy_table::Cell::new(at(p.last_event_at)),
                comfy_table::Cell::new(crate::ui::cell_text(p.position.as_deref().unwrap_or("-"))),
                comfy_table::Cell::new(compact(p.window_seconds as u64)),
            ]);
        }
        out.push_str(&t.to_string());
        for p in &r.point_in_time {
            if let Some(e) = &p.last_error {
                out.push_str(&format!(
                    "\n{}: the last binary log archive run failed: {}",
                    crate::ui::cell_text(&p.server),
                    crate::ui::cell_text(e)
                ));
            }
        }
    }
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
                ctx.settings
                    .refuse_inside_a_storage(path)
                    .map_err(Error::invalid)?;
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
