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
pub const REPORT_SCHEMA_VERSION: u32 = 1;

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
}

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
}

/// What one storage holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageUse {
    pub storage: String,
    pub backups: usize,
    pub bytes: u64,
}

/// Counts for the summary cards.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub healthy: usize,
    pub stale: usize,
    pub failing: usize,
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
    /// Every record, newest first (the HTML page filters and charts them).
    pub backups: Vec<BackupRecord>,
    /// Indexes that could not be read.
    pub errors: Vec<String>,
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
    let mut groups: BTreeMap<(&str, &str, &str), Vec<&BackupRecord>> = BTreeMap::new();
    for r in &catalog.records {
        groups
            .entry((
                r.server.as_str(),
                r.database.as_str(),
                r.backup_type.as_str(),
            ))
            .or_default()
            .push(r);
    }
    let mut databases = Vec::new();
    for ((server, database, btype), records) in groups {
        // Records are oldest first; a run is all copies of one backup id.
        let newest = records.last().expect("group has records");
        let last_run: Vec<&&BackupRecord> = records.iter().filter(|r| r.id == newest.id).collect();
        let last_run_ok = last_run.iter().all(|r| r.status == Status::Success);
        let successes: Vec<&&BackupRecord> = records
            .iter()
            .filter(|r| r.status == Status::Success)
            .collect();
        let last_success = successes.last();
        let previous_success = successes
            .iter()
            .rev()
            .find(|r| last_success.is_some_and(|l| r.id != l.id));
        let stale_after = settings
            .backup_type(btype)
            .ok()
            .and_then(|t| t.schedule.as_deref())
            .and_then(|s| crate::schedule::stale_after(s, now));
        let age = last_success.map(|s| (now - s.finished_at).num_seconds().max(0));
        let stale = match (stale_after, age) {
            (Some(limit), Some(a)) => a > limit.num_seconds(),
            (Some(_), None) => true,
            (None, _) => false,
        };
        let health = if !last_run_ok {
            Health::Failing
        } else if stale {
            Health::Stale
        } else {
            Health::Healthy
        };
        let mut runs: BTreeMap<&str, bool> = BTreeMap::new();
        for r in records.iter().filter(|r| r.started_at >= since) {
            let ok = runs.entry(r.id.as_str()).or_insert(true);
            *ok &= r.status == Status::Success;
        }
        let successes_in_window = runs.values().filter(|ok| **ok).count();
        let trend = match (last_success, previous_success) {
            (Some(l), Some(p)) if p.compressed_bytes > 0 => Some(
                (l.compressed_bytes as f64 - p.compressed_bytes as f64) * 100.0
                    / p.compressed_bytes as f64,
            ),
            _ => None,
        };
        databases.push(DatabaseStatus {
            server: server.to_string(),
            database: database.to_string(),
            backup_type: btype.to_string(),
            health,
            last_success_at: last_success.map(|s| s.finished_at),
            last_success_age_seconds: age,
            stale_after_seconds: stale_after.map(|d| d.num_seconds()),
            last_run_at: newest.started_at,
            last_run_status: if last_run_ok {
                Status::Success
            } else {
                Status::Failed
            },
            last_size_bytes: last_success.map(|s| s.compressed_bytes),
            size_trend_percent: trend,
            runs_in_window: runs.len(),
            successes_in_window,
            success_rate: (!runs.is_empty())
                .then(|| successes_in_window as f64 / runs.len() as f64),
            last_error: last_run.iter().find_map(|r| r.error.clone()),
        });
    }
    let mut storages: BTreeMap<&str, StorageUse> = settings
        .storages
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                StorageUse {
                    storage: s.name.clone(),
                    backups: 0,
                    bytes: 0,
                },
            )
        })
        .collect();
    for r in catalog
        .records
        .iter()
        .filter(|r| r.status == Status::Success)
    {
        if let Some(u) = storages.get_mut(r.storage.as_str()) {
            u.backups += 1;
            // Saturating: sizes come from an index, which may say anything.
            u.bytes = u.bytes.saturating_add(r.compressed_bytes);
        }
    }
    let storages: Vec<StorageUse> = storages.into_values().collect();
    let summary = Summary {
        healthy: databases
            .iter()
            .filter(|d| d.health == Health::Healthy)
            .count(),
        stale: databases
            .iter()
            .filter(|d| d.health == Health::Stale)
            .count(),
        failing: databases
            .iter()
            .filter(|d| d.health == Health::Failing)
            .count(),
        backups: storages.iter().map(|s| s.backups).sum(),
        bytes: storages.iter().fold(0u64, |a, s| a.saturating_add(s.bytes)),
    };
    let mut backups: Vec<BackupRecord> = catalog.records.clone();
    backups.reverse();
    let failures = backups
        .iter()
        .filter(|r| r.status == Status::Failed && r.started_at >= since)
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
        errors: catalog.errors.iter().map(|(_, e)| e.clone()).collect(),
    }
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

/// Writes the HTML page to `path` atomically (temp file in the same directory, fsync, rename).
///
/// Fails when the directory cannot be written.
pub fn write_html(report: &Report, path: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".sqlguard-report.")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(html(report).as_bytes())?;
    tmp.as_file().sync_all()?;
    // Reports are for people: readable like any web page.
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::collections::HashMap;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
    }

    fn settings() -> Settings {
        let yaml = "servers:\n  main: {}\nstorage:\n  local: {type: local, path: /x}\n  s3: {type: local, path: /y}\nbackup_types:\n  daily:\n    schedule: \"30 2 * * *\"\n    retention: {keep_last: 7}\n  manual:\n    retention: {keep_last: 7}\n";
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, yaml.as_bytes()).unwrap();
        Settings::resolve(Some(f.path()), &HashMap::new().into()).unwrap()
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
        let mut records = records;
        records.sort_by_key(|r| r.started_at);
        let catalog = Catalog {
            records,
            errors: vec![],
        };
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
