//! `sqlguard list`: the backups recorded in the indexes, newest first.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::{Col, Context, Grid, Printer};
use crate::catalog::RecordFilter;
use crate::duration::{compact, HumanDuration};
use crate::error::Error;
use crate::exit::ExitCode;
use crate::index::{BackupRecord, Status, SCHEMA_VERSION};
use crate::ui::human_bytes;

/// List backups with filters.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub filter: RecordFilter,
    /// Only backups with this status
    #[arg(long, value_enum)]
    pub status: Option<Status>,
    /// Only backups started since: a duration back from now (36h, 7d) or a date (2026-11-01,
    /// 2026-11-01T00:00:00Z)
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    pub since: Option<DateTime<Utc>>,
    /// At most this many rows (the newest)
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

/// Parses `--since`: a duration back from now, an RFC 3339 time or a `YYYY-MM-DD` date (UTC).
pub fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(d) = s.parse::<HumanDuration>() {
        return Ok(d.before(Utc::now()));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    Err(format!(
        "'{s}' is neither a duration (36h, 7d) nor a date (2026-11-01 or 2026-11-01T00:00:00Z)"
    ))
}

/// The JSON document of `list`.
#[derive(Debug, Serialize)]
pub struct ListReport {
    pub schema_version: u32,
    pub backups: Vec<BackupRecord>,
    /// Indexes that could not be read (unreachable storage, damaged index), one message each.
    pub errors: Vec<String>,
}

/// Records from the readable indexes, and an error for each index that could not be read.
#[derive(Debug, Default)]
pub struct Collected {
    pub rows: Vec<BackupRecord>,
    pub errors: Vec<String>,
}

/// Reads the index of every selected server on every selected storage and filters it. An index
/// that cannot be read does not hide the others: its error is collected.
///
/// Fails for an unknown `--server` or `--storage`.
pub fn collect(args: &Args, ctx: &Context) -> Result<Collected, Error> {
    let s = &ctx.settings;
    args.filter.validate(s)?;
    let filter = args.filter.with_segments();
    let catalog = ctx.catalog(&filter.servers);
    let select = crate::catalog::Select {
        databases: &filter.databases,
        since: args.since,
        around: None,
    };
    let keep = |r: &BackupRecord| filter.matches(r) && args.status.is_none_or(|st| st == r.status);
    // Only the databases asked for are read; with --limit, only as many as hold the newest rows.
    let (rows, read_errors) = match args.limit {
        Some(n) => catalog.newest(n, &select, keep),
        None => {
            let (mut rows, errors) = catalog.records(&select);
            rows.retain(keep);
            crate::catalog::sort_newest_first(&mut rows);
            (rows, errors)
        }
    };
    // Only the named storage's own errors count with --storage: a failure of a copy on an
    // unreachable storage is recorded (as a witness) in the other storages' indexes.
    let mut errors = Vec::new();
    for (storage, e) in catalog.errors.into_iter().chain(read_errors) {
        if args.filter.storage.as_ref().is_none_or(|n| n == &storage) {
            errors.push(e);
        } else {
            ctx.ui.debug(&e);
        }
    }
    Ok(Collected { rows, errors })
}

/// Prints the list as a table or JSON.
pub fn run(args: &Args, ctx: &Context) -> Result<ExitCode, Error> {
    let Collected { rows, errors } = collect(args, ctx)?;
    for e in &errors {
        ctx.ui.error(e);
    }
    let code = if errors.is_empty() {
        ExitCode::Success
    } else {
        ExitCode::Failure
    };
    if ctx.json {
        Printer::json(&ListReport {
            schema_version: SCHEMA_VERSION,
            backups: rows,
            errors,
        })?;
        return Ok(code);
    }
    if rows.is_empty() {
        // A type no config names may still be in the indexes (a type taken out): searched for
        // all the same, and said when nothing has it.
        let hint = match &args.filter.backup_type {
            Some(t) if t != crate::binlog::TYPE && ctx.settings.backup_type(t).is_err() => {
                format!(
                    " (type '{t}' is not configured: the types are {})",
                    ctx.settings
                        .backup_types
                        .iter()
                        .map(|b| b.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
            _ => String::new(),
        };
        Printer::line(&format!("no backups match{hint}"))?;
        return Ok(code);
    }
    let now = Utc::now();
    let any_failed = rows.iter().any(|r| r.status == Status::Failed);
    // On a narrow terminal the least useful columns go first (see `Grid`); the id never does.
    let mut cols = vec![
        Col::keep("ID"),
        Col::drop("SERVER", 4),
        Col::name("DATABASE"),
        Col::drop("TYPE", 3),
        Col::drop("STORAGE", 3),
        Col::keep("STATUS"),
        Col::drop("STARTED (UTC)", 2),
        Col::drop("AGE", 5),
        Col::drop("TIME", 6),
        Col::drop("SIZE", 4),
        Col::drop("RAW", 7),
        Col::drop("CHECKED", 5),
    ];
    if any_failed {
        cols.push(Col::cut("ERROR"));
    }
    let mut t = Grid::new(&cols);
    for r in &rows {
        let ok = r.status == Status::Success;
        let mut row = vec![
            r.id.clone(),
            r.server.clone(),
            r.database.clone(),
            r.backup_type.clone(),
            r.storage.clone(),
            r.status.as_str().to_string(),
            r.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            compact((now - r.started_at).num_seconds().max(0) as u64),
            compact(r.duration_seconds.round() as u64),
            if ok {
                human_bytes(r.compressed_bytes)
            } else {
                "-".into()
            },
            human_bytes(r.raw_bytes),
            checked(r, now),
        ];
        let failed = !ok || r.verification.as_deref().is_some_and(|v| !v.ok);
        if any_failed {
            row.push(r.error.clone().unwrap_or_default());
        }
        t.row(row, failed);
    }
    Printer::line(&t.render(ctx))?;
    Ok(code)
}

/// The last verification and restore test of a copy, in a few characters: `intact 2d`,
/// `restored 3h (12s)`, `FAILED 1d`, `-`.
pub fn checked(r: &BackupRecord, now: DateTime<Utc>) -> String {
    let Some(v) = &r.verification else {
        return "-".into();
    };
    let age = |t: DateTime<Utc>| compact((now - t).num_seconds().max(0) as u64);
    if !v.ok {
        return format!("FAILED {}", age(v.verified_at));
    }
    match &v.restore_test {
        Some(t) if t.ok && t.tested_at >= v.verified_at => format!(
            "restored {} ({})",
            age(t.tested_at),
            compact(t.duration_seconds.round() as u64)
        ),
        Some(t) if t.ok => format!(
            "intact {}, restored {}",
            age(v.verified_at),
            age(t.tested_at)
        ),
        _ => format!("intact {}", age(v.verified_at)),
    }
}
