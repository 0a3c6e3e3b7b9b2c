//! The report model: status at a glance, built once from the catalog; the table, JSON and HTML
//! renderers only render it.
//!
//! Per server, database and type: the last success and its age, stale when older than the type's
//! schedule allows ([`crate::schedule::stale_after`]), the last run's status, the last size and
//! its trend, the success rate over a window, and the failures with their errors. Per storage:
//! backups held and bytes. The HTML page is one self-contained file: the model is embedded as
//! JSON and drawn by inline script, with no request to any other host.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::config::Settings;
use crate::index::{BackupRecord, Status};

/// Version of the report document.
///
/// 2: `backups` holds the records of the window, no longer the whole history.
pub const REPORT_SCHEMA_VERSION: u32 = 2;

pub use crate::health::Health;

/// One row of the databases table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseStatus {
    pub server: String,
    pub database: String,
    #[serde(rename = "type")]
    pub backup_type: String,
    pub health: Health,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_success_age_seconds: Option<i64>,
    /// Age beyond which the last success is stale; absent for unscheduled types.
    pub stale_after_seconds: Option<i64>,
    pub last_run_at: DateTime<Utc>,
    pub last_run_status: Status,
    pub last_size_bytes: Option<u64>,
    /// Change of the last successful size against the one before, in percent.
    pub size_trend_percent: Option<f64>,
    /// Runs (by backup id) that started within the window, and how many succeeded everywhere.
    pub runs_in_window: usize,
    pub successes_in_window: usize,
    /// `successes_in_window / runs_in_window`, absent without runs in the window.
    pub success_rate: Option<f64>,
    pub last_error: Option<String>,
    /// The newest verification of any copy (any storage).
    #[serde(default)]
    pub last_verification: Option<crate::index::summary::NewestVerification>,
    /// The newest restore test of any copy, passed or not: its duration is the measured
    /// recovery time.
    #[serde(default)]
    pub last_restore_test: Option<crate::index::summary::NewestRestoreTest>,
    /// When a restore test last passed.
    #[serde(default)]
    pub last_restore_test_passed_at: Option<DateTime<Utc>>,
}

/// What one storage holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageUse {
    pub storage: String,
    pub backups: usize,
    pub bytes: u64,
    /// False when an index on it could not be read: then what it holds is unknown (the counts
    /// are 0), and the metrics keep their last known values.
    pub readable: bool,
}

/// Counts for the summary cards.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub healthy: usize,
    pub stale: usize,
    pub failing: usize,
    /// Databases whose every successful copy failed its last verification.
    #[serde(default)]
    pub damaged: usize,
    /// Databases the config now leaves out (never stale).
    #[serde(default)]
    pub retired: usize,
    pub backups: usize,
    pub bytes: u64,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub generated_at: DateTime<Utc>,
    pub window_seconds: i64,
    pub summary: Summary,
    pub databases: Vec<DatabaseStatus>,
    /// Failed copies that started within the window, newest first.
    pub failures: Vec<BackupRecord>,
    pub storages: Vec<StorageUse>,
    /// Every record that started within the window, newest first (the HTML page filters and
    /// charts them). Schema 1 held the whole history here.
    pub backups: Vec<BackupRecord>,
    /// Per server with a binary log archive: how much a restore to the present would lose.
    #[serde(default)]
    pub point_in_time: Vec<PointInTime>,
    /// Indexes that could not be read.
    pub errors: Vec<String>,
}

/// The point-in-time recovery state of one server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointInTime {
    pub server: String,
    /// When an archive run last reached the server's position, on any storage.
    pub caught_up_at: Option<DateTime<Utc>>,
    /// The achieved recovery point objective: how long ago that was (what a restore to now
    /// could lose at most).
    pub rpo_seconds: Option<i64>,
    /// The newest archived event's time.
    pub last_event_at: Option<DateTime<Utc>>,
    /// Where the archive stands (`binlog.000042:1234`).
    pub position: Option<String>,
    /// How far back a restore to any second reaches (the `window`).
    pub window_seconds: i64,
    /// Whether the archive is later than its schedule allows (twice its longest gap plus a
    /// minute), like the `SqlguardBinlogArchiveBehind` alert.
    pub late: bool,
    /// The first error of the newest archive run, when it failed (the archive may not be late
    /// yet, but it no longer moves: a reset refused, a server out of reach).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The point-in-time state of every server with a `binlog` section, from the catalog.
fn point_in_time(settings: &Settings, catalog: &Catalog, now: DateTime<Utc>) -> Vec<PointInTime> {
    settings
        .backed_up()
        .filter_map(|s| Some((s, s.binlog.as_ref()?)))
        .map(|(s, b)| {
            // The archive's state on each storage: the furthest caught up says the RPO, the
            // newest written says how the last run went.
            let states: Vec<&crate::binlog::ArchiveState> = catalog
                .indexes
                .iter()
                .filter(|ix| ix.server == s.name)
                .filter_map(|ix| ix.binlog.as_ref())
                .collect();
            let best = states.iter().copied().max_by_key(|st| st.caught_up_at);
            let gap = crate::schedule::max_interval(&b.schedule, now)
                .map_or(60, |d| d.num_seconds().max(60));
            let newest_run = states.iter().copied().max_by_key(|st| st.updated_at);
            let rpo = best
                .and_then(|st| st.caught_up_at)
                .map(|t| (now - t).num_seconds().max(0));
            PointInTime {
                server: s.name.clone(),
                caught_up_at: best.and_then(|st| st.caught_up_at),
                rpo_seconds: rpo,
                last_event_at: best.and_then(|st| st.last_event_at),
                position: best.map(|st| format!("{}:{}", st.file, st.position)),
                window_seconds: b.window.as_secs() as i64,
                late: rpo.is_none_or(|r| r > 2 * (gap + 60)),
                last_error: newest_run.and_then(|st| st.last_error.clone()),
            }
        })
        .collect()
}

/// Builds the report from the catalog. Pure: the clock is `now`.
pub fn build(
    settings: &Settings,
    catalog: &Catalog,
    window: Duration,
    now: DateTime<Utc>,
) -> Report {
    let since = now
        .checked_sub_signed(window)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let model = crate::health::build(settings, catalog, now);
    let (window_records, read_errors) = catalog.records(&crate::catalog::Select {
        since: Some(since),
        ..Default::default()
    });
    // Per server, database and type: each run in the window and whether it succeeded everywhere.
    let mut runs: BTreeMap<(&str, &str, &str), BTreeMap<&str, bool>> = BTreeMap::new();
    for r in &window_records {
        let ok = runs
            .entry((&r.server, &r.database, &r.backup_type))
            .or_default()
            .entry(r.id.as_str())
            .or_insert(true);
        *ok &= r.status == Status::Success;
    }
    let succeeded: std::collections::HashSet<(&str, &str)> = window_records
        .iter()
        .filter(|r| r.status == Status::Success)
        .map(|r| (r.server.as_str(), r.id.as_str()))
        .collect();
    let mut errors: Vec<String> = catalog
        .errors
        .iter()
        .chain(read_errors.iter())
        .map(|(_, e)| e.clone())
        .collect();
    let mut databases = Vec::new();
    for row in &model.rows {
        let no_runs = BTreeMap::new();
        let runs = runs
            .get(&(
                row.server.as_str(),
                row.database.as_str(),
                row.backup_type.as_str(),
            ))
            .unwrap_or(&no_runs);
        // The summary is a cache of the records: where the window's records say otherwise of a
        // run it names (an edited or damaged summary.json), the row is not believed. Only the
        // outcome of runs both hold counts (records land and go while the report reads).
        let contradiction = if errors.is_empty() {
            summary_contradiction(&row.summary, runs, &succeeded, since)
        } else {
            None
        };
        let (health, contradiction) = match contradiction {
            Some(why) => {
                let message = format!(
                    "server '{}': the index summary of {}/{} disagrees with its records ({why}): `sqlguard index rebuild --server {}` rewrites it from the manifests",
                    row.server, row.database, row.backup_type, row.server
                );
                errors.push(message.clone());
                (Health::Failing, Some(message))
            }
            None => (row.health, None),
        };
        let successes_in_window = runs.values().filter(|ok| **ok).count();
        let trend = match (row.last_success(), row.previous_success()) {
            (Some(l), Some(p)) if p.compressed_bytes > 0 => Some(
                (l.compressed_bytes as f64 - p.compressed_bytes as f64) * 100.0
                    / p.compressed_bytes as f64,
            ),
            _ => None,
        };
        databases.push(DatabaseStatus {
            server: row.server.to_string(),
            database: row.database.to_string(),
            backup_type: row.backup_type.to_string(),
            health,
            last_success_at: row.last_success().map(|s| s.finished_at),
            last_success_age_seconds: row.last_success().map(|s| {
                now.signed_duration_since(s.finished_at)
                    .num_seconds()
                    .max(0)
            }),
            stale_after_seconds: row.stale_after.map(|d| d.num_seconds()),
            last_run_at: row.last_run_at(),
            last_run_status: if row.last_run_ok() {
                Status::Success
            } else {
                Status::Failed
            },
            last_size_bytes: row.last_success().map(|s| s.compressed_bytes),
            size_trend_percent: trend,
            runs_in_window: runs.len(),
            successes_in_window,
            success_rate: (!runs.is_empty())
                .then(|| successes_in_window as f64 / runs.len() as f64),
            last_error: contradiction.or_else(|| row.last_error().map(String::from)),
            last_verification: last_verification(&row.summary.verified_per_storage),
            last_restore_test: row.summary.restore_tested.clone(),
            last_restore_test_passed_at: row
                .summary
                .restore_test_passed
                .as_ref()
                .map(|t| t.tested_at),
        });
    }
    let storages: Vec<StorageUse> = settings
        .storages
        .iter()
        .map(|st| {
            let held = model.held.iter().filter(|h| h.storage == st.name);
            StorageUse {
                storage: st.name.clone(),
                backups: held.clone().map(|h| h.backups).sum(),
                bytes: held.fold(0u64, |a, h| a.saturating_add(h.bytes)),
                readable: !model.unreadable.contains(&st.name),
            }
        })
        .collect();
    let count = |h: Health| databases.iter().filter(|d| d.health == h).count();
    let summary = Summary {
        healthy: count(Health::Healthy),
        stale: count(Health::Stale),
        failing: count(Health::Failing),
        damaged: count(Health::Damaged),
        retired: count(Health::Retired),
        backups: storages.iter().map(|s| s.backups).sum(),
        bytes: storages.iter().fold(0u64, |a, s| a.saturating_add(s.bytes)),
    };
    let mut backups = window_records;
    backups.reverse();
    let failures = backups
        .iter()
        .filter(|r| r.status == Status::Failed)
        .cloned()
        .collect();
    Report {
        schema_version: REPORT_SCHEMA_VERSION,
        generated_at: now,
        window_seconds: window.num_seconds(),
        summary,
        databases,
        failures,
        storages,
        backups,
        point_in_time: point_in_time(settings, catalog, now),
        errors,
    }
}

/// What the window's records say against a summary's claims about the runs it names: its last
/// run, where the records hold it, must have the same outcome, and its last success, where the
/// records hold that run, must have a successful copy. A run the records do not hold is not
/// judged: a prune may have removed it between the reads of the summary and of the records.
/// `runs` holds the window's runs of the row (id: whether it succeeded on every storage),
/// `succeeded` every successful copy's server and id.
fn summary_contradiction(
    summary: &crate::index::TypeSummary,
    runs: &BTreeMap<&str, bool>,
    succeeded: &std::collections::HashSet<(&str, &str)>,
    since: DateTime<Utc>,
) -> Option<String> {
    if let Some(last) = summary.last_run.first().filter(|l| l.started_at >= since) {
        let claimed = summary.last_run_ok();
        match runs.get(last.id.as_str()) {
            Some(&ok) if ok != claimed => {
                let word = |ok: bool| if ok { "succeeded" } else { "failed" };
                return Some(format!(
                    "run {} {} by the records, {} by the summary",
                    last.id,
                    word(ok),
                    word(claimed)
                ));
            }
            _ => {}
        }
    }
    let success = summary
        .last_success
        .as_ref()
        .filter(|s| s.started_at >= since)?;
    (runs.contains_key(success.id.as_str())
        && !succeeded.contains(&(success.server.as_str(), success.id.as_str())))
    .then(|| format!("its last success {} failed by the records", success.id))
}

/// The HTML page for `report`: the template with the report embedded as JSON. Safe against
/// markup in names and errors: the JSON escapes `<`, and the page sets text, never HTML.
pub fn html(report: &Report) -> String {
    let data = serde_json::to_string(report)
        .expect("report serializes")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    HTML_TEMPLATE.replace("/*REPORT_DATA*/null", &data)
}

const HTML_TEMPLATE: &str = include_str!("report.html");

/// Writes the HTML page to `path` atomically, readable by all like any web page (0644).
///
/// Fails when the directory cannot be written.
pub fn write_html(report: &Report, path: &std::path::Path) -> std::io::Result<()> {
    crate::publish::bytes(path, 0o644, html(report).as_bytes())
}

/// The verification a database's row shows, of each storage's newest verified copy: the newest
/// backup's, and of its copies a failed one before any that passed (a hostile review's: the
/// one checked last was shown, so a damaged copy read "ok" when another storage's came after).
fn last_verification(
    per_storage: &std::collections::BTreeMap<String, crate::index::summary::NewestVerification>,
) -> Option<crate::index::summary::NewestVerification> {
    per_storage
        .values()
        .max_by_key(|v| (v.started_at, &v.id, !v.ok, v.verified_at))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row shows the newest verified backup's verification, and a failed copy of it before
    /// one that passed, whichever storage was checked last.
    #[test]
    fn a_failed_copy_of_the_newest_backup_is_what_the_row_shows() {
        use crate::index::summary::NewestVerification;
        let at = |h: u32| Utc.with_ymd_and_hms(2026, 11, 30, h, 0, 0).unwrap();
        let v = |id: &str, started: u32, verified: u32, ok: bool| NewestVerification {
            id: id.into(),
            started_at: Some(at(started)),
            verified_at: at(verified),
            ok,
            restore_tested: false,
        };
        let map = |vs: Vec<(&str, NewestVerification)>| {
            vs.into_iter()
                .map(|(s, v)| (s.to_string(), v))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let shown = last_verification(&map(vec![
            ("local", v("b2", 2, 5, false)),
            ("s3", v("b2", 2, 6, true)),
        ]))
        .unwrap();
        assert!(!shown.ok, "{shown:?}");
        // An older backup checked later does not stand for the newest one.
        let shown = last_verification(&map(vec![
            ("local", v("b2", 2, 5, true)),
            ("s3", v("b1", 1, 9, false)),
        ]))
        .unwrap();
        assert_eq!((shown.id.as_str(), shown.ok), ("b2", true));
    }
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
    }

    fn settings() -> Settings {
        let yaml = "servers:\n  main: {}\nstorage:\n  local: {type: local, path: /x}\n  s3: {type: local, path: /y}\nbackup_types:\n  daily:\n    schedule: \"30 2 * * *\"\n    retention: {keep_last: 7}\n  manual:\n    retention: {keep_last: 7}\n";
        crate::config::test_support::from_yaml(yaml, &[]).unwrap()
    }

    fn rec(
        id: &str,
        db: &str,
        t: &str,
        storage: &str,
        ok: bool,
        hours_ago: i64,
        size: u64,
    ) -> BackupRecord {
        let status = if ok { Status::Success } else { Status::Failed };
        let mut r = BackupRecord::sample(
            id,
            db,
            t,
            storage,
            status,
            now() - Duration::hours(hours_ago),
        );
        r.compressed_bytes = if ok { size } else { 0 };
        r
    }

    fn build_from(records: Vec<BackupRecord>) -> Report {
        let catalog = Catalog::from_records(records);
        build(&settings(), &catalog, Duration::days(30), now())
    }

    fn row<'a>(r: &'a Report, db: &str, t: &str) -> &'a DatabaseStatus {
        r.databases
            .iter()
            .find(|d| d.database == db && d.backup_type == t)
            .unwrap()
    }

    #[test]
    fn staleness_follows_the_schedule() {
        let r = build_from(vec![
            rec("a", "fresh", "daily", "local", true, 20, 100),
            rec("b", "stale", "daily", "local", true, 26, 100),
            rec("c", "manual_old", "manual", "local", true, 24 * 400, 100),
        ]);
        // Daily: the longest gap is 24h, plus 1h of grace; finished 1 minute after the start.
        assert_eq!(row(&r, "fresh", "daily").health, Health::Healthy);
        assert_eq!(row(&r, "stale", "daily").health, Health::Stale);
        assert_eq!(
            row(&r, "stale", "daily").stale_after_seconds,
            Some(25 * 3600)
        );
        assert_eq!(
            row(&r, "manual_old", "manual").health,
            Health::Healthy,
            "no schedule: never stale"
        );
        assert_eq!(
            (r.summary.healthy, r.summary.stale, r.summary.failing),
            (2, 1, 0)
        );
    }

    /// A database the config now leaves out (dropped from the server, then excluded) is retired
    /// for a scheduled type: never stale (not for ever), its age not pushed; a failure still
    /// says so. A type without a schedule is never stale anyway.
    #[test]
    fn a_database_the_config_leaves_out_is_retired_from_scheduled_types() {
        let yaml = "servers:\n  main:\n    databases: {exclude: [gone, failed]}\nstorage:\n  local: {type: local, path: /x}\nbackup_types:\n  daily:\n    schedule: \"30 2 * * *\"\n    retention: {keep_last: 7}\n  manual:\n    retention: {keep_last: 7}\n";
        let catalog = Catalog::from_records(vec![
            rec("a", "gone", "daily", "local", true, 24 * 5, 100),
            rec("b", "gone", "manual", "local", true, 24 * 5, 100),
            rec("c", "shop", "daily", "local", true, 24 * 5, 100),
            rec("d", "failed", "daily", "local", true, 24 * 5, 100),
            rec("e", "failed", "daily", "local", false, 1, 0),
        ]);
        let settings = crate::config::test_support::from_yaml(yaml, &[]).unwrap();
        let r = build(&settings, &catalog, Duration::days(30), now());
        assert_eq!(row(&r, "gone", "daily").health, Health::Retired);
        assert_eq!(row(&r, "gone", "manual").health, Health::Healthy);
        assert_eq!(row(&r, "failed", "daily").health, Health::Failing);
        assert_eq!(row(&r, "shop", "daily").health, Health::Stale);
        assert_eq!((r.summary.retired, r.summary.stale), (1, 1));
        // Its age is not pushed (the stale alert would fire for ever); its status is.
        let mut run = crate::run::Run::start("prune", None).summary(crate::exit::Outcome::Ok, &[]);
        run.refresh_every_type(&settings);
        let text: String = crate::metrics::groups(&settings, &catalog, &run, now())
            .iter()
            .map(|g| g.encode())
            .collect();
        let has = |metric: &str, db: &str| {
            text.lines().any(|l| {
                l.starts_with(metric)
                    && l.contains(&format!("database=\"{db}\""))
                    && l.contains("type=\"daily\"")
            })
        };
        assert!(!has(
            "sqlguard_backup_last_success_timestamp_seconds",
            "gone"
        ));
        assert!(has("sqlguard_backup_last_status", "gone"));
        assert!(has(
            "sqlguard_backup_last_success_timestamp_seconds",
            "shop"
        ));
        assert!(!has(
            "sqlguard_backup_last_success_timestamp_seconds",
            "failed"
        ));
        assert!(has("sqlguard_backup_last_status", "failed"));
    }

    /// A database whose every successful copy failed its last verification has nothing to
    /// restore: damaged, not healthy, however well its last run went; one good copy left on
    /// any storage is enough.
    #[test]
    fn a_database_whose_every_copy_failed_verification_is_damaged() {
        let damaged = |mut r: BackupRecord| {
            r.verification = Some(Box::new(crate::index::Verification {
                verified_at: now(),
                ok: false,
                restore_tested: false,
                error: Some("SHA-256 differs".into()),
                restore_test: None,
            }));
            r
        };
        let r = build_from(vec![
            damaged(rec("a", "shop", "daily", "local", true, 30, 100)),
            damaged(rec("b", "shop", "daily", "local", true, 5, 100)),
            damaged(rec("b", "shop", "daily", "s3", true, 5, 100)),
            damaged(rec("c", "crm", "daily", "local", true, 5, 100)),
            rec("c", "crm", "daily", "s3", true, 5, 100),
        ]);
        assert_eq!(row(&r, "shop", "daily").health, Health::Damaged);
        assert_eq!(row(&r, "crm", "daily").health, Health::Healthy);
        assert_eq!(
            (r.summary.healthy, r.summary.damaged, r.summary.failing),
            (1, 1, 0)
        );
        // With a storage of the type out of reach, an intact copy may be there: not damaged.
        let mut catalog = Catalog::from_records(vec![damaged(rec(
            "a", "shop", "daily", "local", true, 5, 100,
        ))]);
        catalog.errors.push(("s3".into(), "out of reach".into()));
        let r = build(&settings(), &catalog, Duration::days(30), now());
        assert_eq!(row(&r, "shop", "daily").health, Health::Healthy);
    }

    #[test]
    fn a_failed_copy_makes_the_run_failing_but_keeps_the_last_success() {
        let r = build_from(vec![
            rec("a", "shop", "daily", "local", true, 30, 100),
            rec("b", "shop", "daily", "local", true, 5, 120),
            rec("b", "shop", "daily", "s3", false, 5, 0),
        ]);
        let d = row(&r, "shop", "daily");
        assert_eq!(d.health, Health::Failing);
        assert_eq!(d.last_run_status, Status::Failed);
        assert_eq!(d.last_error.as_deref(), Some("boom"));
        assert_eq!(d.last_size_bytes, Some(120));
        assert_eq!(d.size_trend_percent, Some(20.0));
        assert_eq!(r.failures.len(), 1);
    }

    #[test]
    fn success_rate_counts_runs_within_the_window() {
        let mut v = Vec::new();
        for i in 0..10 {
            v.push(rec(
                &format!("r{i}"),
                "shop",
                "daily",
                "local",
                i % 5 != 0,
                24 * i + 1,
                100,
            ));
        }
        v.push(rec("old", "shop", "daily", "local", false, 24 * 40, 100));
        let r = build_from(v);
        let d = row(&r, "shop", "daily");
        assert_eq!(d.runs_in_window, 10);
        assert_eq!(d.successes_in_window, 8);
        assert_eq!(d.success_rate, Some(0.8));
        assert_eq!(
            r.failures.len(),
            2,
            "the failure outside the window is not listed"
        );
    }

    #[test]
    fn storage_sums_count_successful_copies_per_storage() {
        let r = build_from(vec![
            rec("a", "shop", "daily", "local", true, 3, 100),
            rec("a", "shop", "daily", "s3", true, 3, 100),
            rec("b", "crm", "daily", "local", true, 2, 50),
            rec("c", "crm", "daily", "s3", false, 1, 0),
        ]);
        let by: BTreeMap<&str, (usize, u64)> = r
            .storages
            .iter()
            .map(|s| (s.storage.as_str(), (s.backups, s.bytes)))
            .collect();
        assert_eq!(by["local"], (2, 150));
        assert_eq!(by["s3"], (1, 100));
        assert_eq!((r.summary.backups, r.summary.bytes), (3, 250));
    }

    #[test]
    fn html_embeds_the_data_without_breaking_out_of_the_script() {
        let mut bad = rec(
            "a",
            "</script><img src=x onerror=alert(1)>",
            "daily",
            "local",
            false,
            1,
            0,
        );
        bad.error = Some("<b>&".into());
        let page = html(&build_from(vec![bad]));
        assert_eq!(
            page.matches("</script>").count(),
            page.matches("<script").count()
        );
        assert!(!page.contains("<img src=x"));
        assert!(!page.contains("/*REPORT_DATA*/"));
    }
}
