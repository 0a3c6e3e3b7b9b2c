//! The health model, built once from the indexes' summaries (merged across storages): per server,
//! database and type, the newest run and whether it succeeded on every storage, the last success
//! and the one before, the newest copy and the newest verification on each storage; per storage
//! and server, what is held. It reads no history, so it costs the same however long it is.
//!
//! `report` renders it and `metrics` maps it to gauges, so that the dashboard and the alerts
//! are two views of one computation and cannot disagree. Pure: no I/O, the clock is passed in.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::config::Settings;
use crate::index::{BackupRecord, TypeSummary};

/// The health of one server/database/type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// The last run succeeded and the last success is recent enough.
    Healthy,
    /// The last success is older than the schedule allows.
    Stale,
    /// The last run failed (on at least one storage).
    Failing,
    /// Every successful copy failed its last verification: nothing of it can be restored,
    /// however well the last run went.
    Damaged,
    /// The config now leaves the database out (of a scheduled type): no longer expected to be
    /// fresh, so never stale; a failure or a damaged copy still says so.
    Retired,
}

/// One server/database/type: its merged summary and its health.
#[derive(Debug, Clone)]
pub struct Row {
    pub server: String,
    pub database: String,
    pub backup_type: String,
    /// What the indexes say, merged across storages.
    pub summary: TypeSummary,
    /// Age beyond which the last success is stale, from the type's schedule.
    pub stale_after: Option<chrono::Duration>,
    pub health: Health,
    /// The config leaves the database out (see [`Health::Retired`]): its time-based signals (the
    /// last success's age, an overdue restore test) are not pushed.
    pub retired: bool,
    /// Why the row cannot be judged by its summary: its last run or success is dated past the
    /// clock's tolerance (see [`FUTURE_TOLERANCE_SECONDS`]); the row then reads failing.
    pub clock: Option<String>,
}

impl Row {
    /// The copies of the newest run.
    pub fn last_run(&self) -> &[BackupRecord] {
        &self.summary.last_run
    }

    /// Whether the newest run succeeded on every storage.
    pub fn last_run_ok(&self) -> bool {
        self.summary.last_run_ok()
    }

    pub fn last_success(&self) -> Option<&BackupRecord> {
        self.summary.last_success.as_ref()
    }

    pub fn previous_success(&self) -> Option<&BackupRecord> {
        self.summary.previous_success.as_ref()
    }

    /// When the newest run started.
    pub fn last_run_at(&self) -> DateTime<Utc> {
        self.summary
            .last_run
            .first()
            .map(|r| r.started_at)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// The error of the newest run, if it failed (or why its dates cannot be believed).
    pub fn last_error(&self) -> Option<&str> {
        self.clock.as_deref().or_else(|| {
            self.summary
                .last_run
                .iter()
                .find_map(|r| r.error.as_deref())
        })
    }
}

/// What one storage holds for one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub storage: String,
    pub server: String,
    /// Successful copies.
    pub backups: usize,
    /// Their stored bytes.
    pub bytes: u64,
}

/// The model; see the module docs.
#[derive(Debug, Clone)]
pub struct Model {
    pub rows: Vec<Row>,
    /// Per storage and server, for the storages whose indexes could all be read.
    pub held: Vec<Held>,
    /// Storages with an index that could not be read: what they hold is unknown.
    pub unreadable: Vec<String>,
}

/// The database name of a failure that is not about one database (the server could not be
/// reached or listed before any database was known).
pub const SERVER_WIDE: &str = "*";

/// Whether a server-wide failure (`*`) that started at `at` has been healed: a later run of the
/// same server and type finished with no failure.
fn healed(
    merged: &crate::catalog::Merged,
    server: &str,
    backup_type: &str,
    at: DateTime<Utc>,
) -> bool {
    merged.iter().any(|((s, d, t), ts)| {
        s == server
            && t == backup_type
            && d != SERVER_WIDE
            && ts.last_run_ok()
            && ts.last_run.first().is_some_and(|r| r.started_at > at)
    })
}

/// How far in the future a success may be dated (clocks of two hosts apart) and still count as
/// fresh; the shipped `SqlguardBackupClockAhead` alert uses the same bound.
pub const FUTURE_TOLERANCE_SECONDS: i64 = 300;

/// Builds the model from the catalog's summaries. Pure but for reading them.
pub fn build(settings: &Settings, catalog: &Catalog, now: DateTime<Utc>) -> Model {
    let merged = catalog.merged();
    let mut rows = Vec::new();
    for ((server, database, backup_type), summary) in &merged {
        let Some(first) = summary.last_run.first() else {
            continue;
        };
        // An outage of the whole server stops counting once the server backs up again.
        if database == SERVER_WIDE && healed(&merged, server, backup_type, first.started_at) {
            continue;
        }
        let stale_after = settings
            .backup_type(backup_type)
            .ok()
            .and_then(|t| t.schedule.as_deref())
            .and_then(|s| crate::schedule::stale_after(s, now));
        // A database the config now leaves out (excluded, or taken out of `include`, as one
        // retires a database dropped from the server) is no longer expected of a scheduled
        // type: retired, never stale (not for ever). Its backups stay, under retention, for
        // `list` and `restore`, and a failed run or a damaged copy of it still says so. Types
        // without a schedule are never stale anyway; sqlguard's own names (`*…`: accounts, the
        // binary log, server-wide failures) are not databases.
        let retired = stale_after.is_some()
            && !database.starts_with('*')
            && settings
                .server(server)
                .is_ok_and(|s| crate::mysql::left_out(s, database).is_some());
        // A success dated past the clock's tolerance (a host whose clock was ahead, an edited
        // record) says nothing of how fresh the backups are: counted as stale, not as fresh
        // until that date comes.
        // A run or success dated past the clock's tolerance (a host whose clock was ahead, an
        // edited record) outranks every later one in the summary (runs rank by start): until its
        // date comes, the row's freshness and its last run's outcome cannot be read from it, so
        // it reads failing and says why, rather than fresh (a lie) or stale (a guess).
        let tolerance = chrono::Duration::seconds(FUTURE_TOLERANCE_SECONDS);
        let ahead = summary
            .last_run
            .first()
            .map(|r| r.started_at)
            .into_iter()
            .chain(summary.last_success.as_ref().map(|s| s.finished_at))
            .filter(|t| now.signed_duration_since(*t) < -tolerance)
            .max();
        let clock = ahead.map(|t| {
            format!(
                "its newest backup is dated {}, in the future: the clock of the host that ran it was ahead, and the runs since rank behind it until then (fix that host's time; `sqlguard list` shows the runs)",
                t.format("%Y-%m-%d %H:%M:%S UTC")
            )
        });
        let stale = match (stale_after, &summary.last_success) {
            (Some(limit), Some(s)) => now.signed_duration_since(s.finished_at) > limit,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let held: usize = summary.held.values().map(|h| h.backups).sum();
        let failed: usize = summary.failed_verifications.values().sum();
        // Damaged only when every storage of the type was read: an intact copy may sit on one
        // that could not be (then it is unknown, not damaged).
        let all_read = settings
            .backup_type(backup_type)
            .map_or(catalog.errors.is_empty(), |t| {
                t.storages.iter().all(|st| !catalog.unreadable(st))
            });
        let health = if held > 0 && failed >= held && all_read {
            Health::Damaged
        } else if !summary.last_run_ok() || clock.is_some() {
            Health::Failing
        } else if retired {
            Health::Retired
        } else if stale {
            Health::Stale
        } else {
            Health::Healthy
        };
        rows.push(Row {
            server: server.clone(),
            database: database.clone(),
            backup_type: backup_type.clone(),
            summary: summary.clone(),
            stale_after,
            health,
            retired,
            clock,
        });
    }
    let unreadable: Vec<String> = settings
        .storages
        .iter()
        .filter(|st| catalog.unreadable(&st.name))
        .map(|st| st.name.clone())
        .collect();
    let mut held = Vec::new();
    for st in settings
        .storages
        .iter()
        .filter(|st| !unreadable.contains(&st.name))
    {
        for server in settings.backed_up() {
            let mut h = Held {
                storage: st.name.clone(),
                server: server.name.clone(),
                backups: 0,
                bytes: 0,
            };
            for ((srv, _, _), summary) in &merged {
                if srv != &server.name {
                    continue;
                }
                if let Some(x) = summary.held.get(&st.name) {
                    h.backups += x.backups;
                    h.bytes = h.bytes.saturating_add(x.bytes);
                }
            }
            held.push(h);
        }
    }
    Model {
        rows,
        held,
        unreadable,
    }
}
