//! The summary of one server's index on one storage: per database, how many records it has and
//! when they start and end; per database and type, what the health model needs (the newest
//! run's copies, the last success and the one before, the newest copy and verification per
//! storage, what each storage holds). It is kept beside the per-database index files and
//! rewritten with them, so that metrics, the report's health table, `verify --latest` and the
//! end of a backup cost the same whatever the history.
//!
//! A cache, never the truth: a database whose entry is marked dirty (an update was under way) is
//! recomputed from its own index file by whoever reads it. Pure: no I/O here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{BackupRecord, Status};

/// Successful copies a storage holds, and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub backups: usize,
    pub bytes: u64,
}

impl Held {
    fn add(&mut self, other: Held) {
        self.backups += other.backups;
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

/// The newest copy on a storage: when its run started, its id, and whether it succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewestCopy {
    pub started_at: DateTime<Utc>,
    pub id: String,
    pub status: Status,
}

/// The newest verification on a storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewestVerification {
    pub verified_at: DateTime<Utc>,
    pub ok: bool,
    pub restore_tested: bool,
}

/// What the health model needs of one database and type, from the records of one index (or
/// merged across indexes with [`TypeSummary::merge`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TypeSummary {
    /// The copies of the newest run (one backup id).
    pub last_run: Vec<BackupRecord>,
    pub last_success: Option<BackupRecord>,
    /// The newest success of another run than `last_success`.
    pub previous_success: Option<BackupRecord>,
    pub newest_per_storage: BTreeMap<String, NewestCopy>,
    /// The newest successful copy on each storage (what `verify --latest` checks).
    #[serde(default)]
    pub last_success_per_storage: BTreeMap<String, BackupRecord>,
    pub verified_per_storage: BTreeMap<String, NewestVerification>,
    /// Successful copies per storage.
    pub held: BTreeMap<String, Held>,
    pub records: usize,
}

fn newer(a: &BackupRecord, b: &BackupRecord) -> bool {
    (a.started_at, &a.id) > (b.started_at, &b.id)
}

impl TypeSummary {
    /// The summary of `records` (of one database and type), in any order.
    pub fn of<'a>(records: impl IntoIterator<Item = &'a BackupRecord>) -> TypeSummary {
        let mut s = TypeSummary::default();
        for r in records {
            s.add(r);
        }
        s
    }

    /// Folds one more record in.
    fn add(&mut self, r: &BackupRecord) {
        self.records += 1;
        match self.last_run.first() {
            Some(first) if first.id == r.id => self.last_run.push(r.clone()),
            Some(first) if !newer(r, first) => {}
            _ => self.last_run = vec![r.clone()],
        }
        if r.status == Status::Success {
            match self.last_success_per_storage.get(&r.storage) {
                Some(l) if !newer(r, l) => {}
                _ => {
                    self.last_success_per_storage
                        .insert(r.storage.clone(), r.clone());
                }
            }
            let held = self.held.entry(r.storage.clone()).or_default();
            held.add(Held {
                backups: 1,
                bytes: r.compressed_bytes,
            });
            match &self.last_success {
                Some(l) if l.id == r.id => {}
                Some(l) if newer(r, l) => {
                    let old = self.last_success.replace(r.clone());
                    self.previous_success = old;
                }
                Some(_) => {
                    if self.previous_success.as_ref().is_none_or(|p| newer(r, p)) {
                        self.previous_success = Some(r.clone());
                    }
                }
                None => self.last_success = Some(r.clone()),
            }
        }
        let copy = NewestCopy {
            started_at: r.started_at,
            id: r.id.clone(),
            status: r.status,
        };
        match self.newest_per_storage.get(&r.storage) {
            Some(c) if (c.started_at, &c.id) >= (copy.started_at, &copy.id) => {}
            _ => {
                self.newest_per_storage.insert(r.storage.clone(), copy);
            }
        }
        if let Some(v) = &r.verification {
            let nv = NewestVerification {
                verified_at: v.verified_at,
                ok: v.ok,
                restore_tested: v.restore_tested,
            };
            match self.verified_per_storage.get(&r.storage) {
                Some(old) if old.verified_at > nv.verified_at => {}
                _ => {
                    self.verified_per_storage.insert(r.storage.clone(), nv);
                }
            }
        }
    }

    /// Whether a success on another storage than `storage` is summarized here (only a tampered
    /// or copied index of `storage` holds one).
    pub fn claims_other_storage(&self, storage: &str) -> bool {
        self.held.keys().any(|k| k != storage)
            || self.last_success_per_storage.keys().any(|k| k != storage)
            || [&self.last_success, &self.previous_success]
                .into_iter()
                .flatten()
                .chain(&self.last_run)
                .any(|r| r.status == Status::Success && r.storage != storage)
    }

    /// Merges the summary of another index (another storage's) of the same database and type.
    /// Each copy lives in one index, so counts add up; the newest run is the newest of both.
    pub fn merge(&mut self, other: &TypeSummary) {
        self.records += other.records;
        match (self.last_run.first(), other.last_run.first()) {
            (Some(a), Some(b)) if a.id == b.id => {
                for r in &other.last_run {
                    if !self.last_run.iter().any(|x| x.storage == r.storage) {
                        self.last_run.push(r.clone());
                    }
                }
            }
            (Some(a), Some(b)) if newer(b, a) => self.last_run = other.last_run.clone(),
            (None, Some(_)) => self.last_run = other.last_run.clone(),
            _ => {}
        }
        let mut successes: Vec<&BackupRecord> = [
            &self.last_success,
            &self.previous_success,
            &other.last_success,
            &other.previous_success,
        ]
        .into_iter()
        .flatten()
        .collect();
        successes.sort_by(|a, b| (b.started_at, &b.id).cmp(&(a.started_at, &a.id)));
        let last = successes.first().map(|r| (*r).clone());
        let previous = successes
            .iter()
            .find(|r| last.as_ref().is_some_and(|l| l.id != r.id))
            .map(|r| (*r).clone());
        self.last_success = last;
        self.previous_success = previous;
        for (k, c) in &other.newest_per_storage {
            match self.newest_per_storage.get(k) {
                Some(mine) if (mine.started_at, &mine.id) >= (c.started_at, &c.id) => {}
                _ => {
                    self.newest_per_storage.insert(k.clone(), c.clone());
                }
            }
        }
        for (k, r) in &other.last_success_per_storage {
            match self.last_success_per_storage.get(k) {
                Some(mine) if !newer(r, mine) => {}
                _ => {
                    self.last_success_per_storage.insert(k.clone(), r.clone());
                }
            }
        }
        for (k, v) in &other.verified_per_storage {
            match self.verified_per_storage.get(k) {
                Some(mine) if mine.verified_at >= v.verified_at => {}
                _ => {
                    self.verified_per_storage.insert(k.clone(), v.clone());
                }
            }
        }
        for (k, h) in &other.held {
            self.held.entry(k.clone()).or_default().add(*h);
        }
    }

    /// Whether the newest run succeeded on every storage.
    pub fn last_run_ok(&self) -> bool {
        self.last_run.iter().all(|r| r.status == Status::Success)
    }
}

/// One database in the summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DatabaseSummary {
    /// An update of this database was under way: recompute it from its index file.
    #[serde(default)]
    pub dirty: bool,
    pub records: usize,
    pub newest: Option<DateTime<Utc>>,
    pub oldest: Option<DateTime<Utc>>,
    pub types: BTreeMap<String, TypeSummary>,
}

impl DatabaseSummary {
    /// The summary of one database's records.
    pub fn of(records: &[BackupRecord]) -> DatabaseSummary {
        let mut by_type: BTreeMap<&str, Vec<&BackupRecord>> = BTreeMap::new();
        for r in records {
            by_type.entry(r.backup_type.as_str()).or_default().push(r);
        }
        DatabaseSummary {
            dirty: false,
            records: records.len(),
            newest: records.iter().map(|r| r.started_at).max(),
            oldest: records.iter().map(|r| r.started_at).min(),
            types: by_type
                .into_iter()
                .map(|(t, rs)| (t.to_string(), TypeSummary::of(rs)))
                .collect(),
        }
    }
}

/// The summary document of one server's index on one storage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub schema_version: u32,
    pub server: String,
    /// By database name (the real one; the file is named by the layout's rule).
    pub databases: BTreeMap<String, DatabaseSummary>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn rec(id: &str, storage: &str, ok: bool, hour: u32) -> BackupRecord {
        let status = if ok { Status::Success } else { Status::Failed };
        let mut r = BackupRecord::sample(
            id,
            "shop",
            "daily",
            storage,
            status,
            Utc.with_ymd_and_hms(2026, 11, 28, hour, 0, 0).unwrap(),
        );
        r.compressed_bytes = if ok { 100 + u64::from(hour) } else { 0 };
        r
    }

    /// Summarising two storages' records apart and merging equals summarising them together,
    /// in any order: the summary is a faithful cache of the records.
    #[test]
    fn merged_summaries_equal_the_summary_of_all_records() {
        let a = vec![
            rec("r1", "local", true, 1),
            rec("r2", "local", true, 2),
            rec("r3", "local", false, 3),
        ];
        let b = vec![
            rec("r1", "s3", true, 1),
            rec("r2", "s3", false, 2),
            rec("r3", "s3", true, 3),
        ];
        let all: Vec<&BackupRecord> = a.iter().chain(&b).collect();
        let together = TypeSummary::of(all.iter().copied());
        let mut merged = TypeSummary::of(&a);
        merged.merge(&TypeSummary::of(&b));
        let mut reversed: Vec<&BackupRecord> = all.clone();
        reversed.reverse();
        for s in [&merged, &TypeSummary::of(reversed)] {
            assert_eq!(s.records, together.records);
            assert_eq!(s.last_run.len(), 2);
            assert!(s.last_run.iter().all(|r| r.id == "r3"));
            assert!(!s.last_run_ok());
            assert_eq!(s.last_success.as_ref().unwrap().id, "r3");
            assert_eq!(s.previous_success.as_ref().unwrap().id, "r2");
            assert_eq!(s.held, together.held);
            assert_eq!(s.newest_per_storage, together.newest_per_storage);
            assert_eq!(s.last_success_per_storage["s3"].id, "r3");
            assert_eq!(s.last_success_per_storage["local"].id, "r2");
        }
        assert_eq!(together.held["local"].backups, 2);
        assert_eq!(together.held["s3"].bytes, 101 + 103);
    }
}
