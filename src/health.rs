//! The health model, built once from the catalog: per server, database and type, the newest run
//! and whether it succeeded on every storage, the last success and the one before, the newest
//! copy and the newest verification on each storage; per storage and server, what is held.
//!
//! `report` renders it and `metrics` maps it to gauges, so that the dashboard and the alerts
//! are two views of one computation and cannot disagree. Pure: no I/O, the clock is passed in.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::config::Settings;
use crate::index::{BackupRecord, Status};

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

/// One server/database/type.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    pub server: &'a str,
    pub database: &'a str,
    pub backup_type: &'a str,
    /// Every record, oldest first.
    pub records: Vec<&'a BackupRecord>,
    /// The copies of the newest run (one backup id).
    pub last_run: Vec<&'a BackupRecord>,
    /// Whether the newest run succeeded on every storage.
    pub last_run_ok: bool,
    pub last_success: Option<&'a BackupRecord>,
    /// The successful run before the last one (for the size trend).
    pub previous_success: Option<&'a BackupRecord>,
    /// The newest copy on each storage.
    pub newest_per_storage: BTreeMap<&'a str, &'a BackupRecord>,
    /// The newest verification on each storage: when, and whether it passed.
    pub verified_per_storage: BTreeMap<&'a str, (DateTime<Utc>, bool)>,
    /// Age beyond which the last success is stale, from the type's schedule.
    pub stale_after: Option<chrono::Duration>,
    pub health: Health,
}

impl Row<'_> {
    /// When the newest run started.
    pub fn last_run_at(&self) -> DateTime<Utc> {
        self.last_run
            .first()
            .map(|r| r.started_at)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// The error of the newest run, if it failed.
    pub fn last_error(&self) -> Option<&str> {
        self.last_run.iter().find_map(|r| r.error.as_deref())
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
pub struct Model<'a> {
    pub rows: Vec<Row<'a>>,
    /// Per storage and server, for the storages whose indexes could all be read.
    pub held: Vec<Held>,
    /// Storages with an index that could not be read: what they hold is unknown.
    pub unreadable: Vec<String>,
}

/// Builds the model from `catalog` (records oldest first). Pure.
pub fn build<'a>(settings: &Settings, catalog: &'a Catalog, now: DateTime<Utc>) -> Model<'a> {
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
    let mut rows = Vec::new();
    for ((server, database, backup_type), records) in groups {
        // A run is all copies of one backup id; records are oldest first.
        let Some(newest) = records.last() else {
            continue;
        };
        let last_run: Vec<&BackupRecord> = records
            .iter()
            .copied()
            .filter(|r| r.id == newest.id)
            .collect();
        let last_run_ok = last_run.iter().all(|r| r.status == Status::Success);
        let successes: Vec<&BackupRecord> = records
            .iter()
            .copied()
            .filter(|r| r.status == Status::Success)
            .collect();
        let last_success = successes.last().copied();
        let previous_success = successes
            .iter()
            .rev()
            .copied()
            .find(|r| last_success.is_some_and(|l| r.id != l.id));
        let mut newest_per_storage = BTreeMap::new();
        let mut verified_per_storage: BTreeMap<&str, (DateTime<Utc>, bool)> = BTreeMap::new();
        for r in &records {
            newest_per_storage.insert(r.storage.as_str(), *r);
            if let Some(v) = &r.verification {
                let e = verified_per_storage
                    .entry(r.storage.as_str())
                    .or_insert((v.verified_at, v.ok));
                if v.verified_at >= e.0 {
                    *e = (v.verified_at, v.ok);
                }
            }
        }
        let stale_after = settings
            .backup_type(backup_type)
            .ok()
            .and_then(|t| t.schedule.as_deref())
            .and_then(|s| crate::schedule::stale_after(s, now));
        let stale = match (stale_after, last_success) {
            (Some(limit), Some(s)) => now.signed_duration_since(s.finished_at) > limit,
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
        rows.push(Row {
            server,
            database,
            backup_type,
            records,
            last_run,
            last_run_ok,
            last_success,
            previous_success,
            newest_per_storage,
            verified_per_storage,
            stale_after,
            health,
        });
    }
    let unreadable: Vec<String> = settings
        .storages
        .iter()
        .filter(|st| catalog.errors.iter().any(|(s, _)| s == &st.name))
        .map(|st| st.name.clone())
        .collect();
    let mut held = Vec::new();
    for st in settings
        .storages
        .iter()
        .filter(|st| !unreadable.contains(&st.name))
    {
        for server in &settings.servers {
            let mut h = Held {
                storage: st.name.clone(),
                server: server.name.clone(),
                backups: 0,
                bytes: 0,
            };
            for r in catalog.records.iter().filter(|r| {
                r.storage == st.name && r.server == server.name && r.status == Status::Success
            }) {
                h.backups += 1;
                // Saturating: sizes come from an index, which may say anything.
                h.bytes = h.bytes.saturating_add(r.compressed_bytes);
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
