//! The summary of one server's index on one storage: per database, how many records it has and
//! when they start and end; per database and type, what the health model needs (the newest
//! run's copies, the last success and the one before, the newest copy and verification per
//! storage, what each storage holds). It is kept beside the per-database index files and
//! rewritten with them, so that metrics, the report's health table, `verify --latest` and the
//! end of a backup cost the same whatever the history.
//!
//! It is kept up to date incrementally ([`DatabaseSummary::apply`]): an update folds in the
//! records it added, changed or removed, and only a change that moves what the summary names (a
//! removed last success, say) needs the database's whole history again.
//!
//! A cache, never the truth: a database whose entry is marked dirty (an update was under way) is
//! recomputed from its own index files by whoever reads it. Pure: no I/O here.

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

    fn sub(&mut self, other: Held) {
        self.backups = self.backups.saturating_sub(other.backups);
        self.bytes = self.bytes.saturating_sub(other.bytes);
    }
}

/// The newest copy on a storage: when its run started, its id, and whether it succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewestCopy {
    pub started_at: DateTime<Utc>,
    pub id: String,
    pub status: Status,
}

/// The last verification of the newest verified copy on a storage: a later check of an older
/// copy does not speak for the newest one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewestVerification {
    /// The backup verified.
    #[serde(default)]
    pub id: String,
    /// When that backup started (absent in summaries of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    pub verified_at: DateTime<Utc>,
    pub ok: bool,
    pub restore_tested: bool,
}

impl NewestVerification {
    /// Whether `self` replaces `other`: a newer copy's verification, or a later one of the same.
    fn replaces(&self, other: &NewestVerification) -> bool {
        if self.id == other.id {
            return self.verified_at >= other.verified_at;
        }
        (self.started_at, &self.id) > (other.started_at, &other.id)
    }
}

/// A restore test in the summary: of which copy, when, how it went and how long it took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewestRestoreTest {
    pub id: String,
    pub storage: String,
    pub tested_at: DateTime<Utc>,
    pub ok: bool,
    pub duration_seconds: f64,
}

impl NewestRestoreTest {
    fn of(r: &BackupRecord) -> Option<NewestRestoreTest> {
        let t = r.verification.as_deref()?.restore_test.as_ref()?;
        Some(NewestRestoreTest {
            id: r.id.clone(),
            storage: r.storage.clone(),
            tested_at: t.tested_at,
            ok: t.ok,
            duration_seconds: t.duration_seconds,
        })
    }

    fn newer_than(&self, other: &NewestRestoreTest) -> bool {
        (self.tested_at, &self.id, &self.storage) > (other.tested_at, &other.id, &other.storage)
    }

    fn is_of(&self, r: &BackupRecord) -> bool {
        self.id == r.id && self.storage == r.storage
    }
}

/// Keeps the newer of `slot` and `candidate`.
fn keep_newer(slot: &mut Option<NewestRestoreTest>, candidate: &NewestRestoreTest) {
    if slot.as_ref().is_none_or(|s| candidate.newer_than(s)) {
        *slot = Some(candidate.clone());
    }
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
    /// The newest restore test of any copy, passed or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_tested: Option<NewestRestoreTest>,
    /// The newest restore test that passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_test_passed: Option<NewestRestoreTest>,
    /// Copies whose last verification failed, per storage (every one, not only the newest
    /// verified: a damaged older backup or binary log segment still counts).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failed_verifications: BTreeMap<String, usize>,
    /// Successful copies per storage.
    pub held: BTreeMap<String, Held>,
    pub records: usize,
}

/// Which of two records of one database and type is the newer: by time, except that binary
/// log segments go by their place in the log (a segment copied from another storage keeps its
/// own, earlier, time, yet may lie past one archived since).
fn newer(a: &BackupRecord, b: &BackupRecord) -> bool {
    rank(a) > rank(b)
}

/// A segment's place in the log: lineage, file (base name, number), end.
type LogPlace<'a> = (u32, (&'a str, u64), u64);

fn rank(r: &BackupRecord) -> (Option<LogPlace<'_>>, DateTime<Utc>, &str) {
    let place = r
        .segment
        .as_ref()
        .map(|g| (g.lineage, crate::binlog::file_place(&g.file), g.end));
    (place, r.started_at, &r.id)
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
        self.count_failed(r, 1);
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
        self.note_verification(r);
    }

    /// Counts `r` (`by` 1) or stops counting it (`by` -1) among the failed verifications.
    fn count_failed(&mut self, r: &BackupRecord, by: isize) {
        if r.verification.as_deref().is_none_or(|v| v.ok) {
            return;
        }
        let n = self
            .failed_verifications
            .entry(r.storage.clone())
            .or_default();
        *n = n.saturating_add_signed(by);
        if *n == 0 {
            self.failed_verifications.remove(&r.storage);
        }
    }

    fn note_verification(&mut self, r: &BackupRecord) {
        if let Some(t) = NewestRestoreTest::of(r) {
            keep_newer(&mut self.restore_tested, &t);
            if t.ok {
                keep_newer(&mut self.restore_test_passed, &t);
            }
        }
        if let Some(v) = &r.verification {
            let nv = NewestVerification {
                id: r.id.clone(),
                started_at: Some(r.started_at),
                verified_at: v.verified_at,
                ok: v.ok,
                restore_tested: v.restore_tested,
            };
            match self.verified_per_storage.get(&r.storage) {
                Some(old) if !nv.replaces(old) => {}
                _ => {
                    self.verified_per_storage.insert(r.storage.clone(), nv);
                }
            }
        }
    }

    /// Whether the summary names this copy: in the newest run, as a last success, or as the
    /// newest copy, success or verification of its storage.
    fn names(&self, r: &BackupRecord) -> bool {
        let is = |x: &BackupRecord| x.id == r.id && x.storage == r.storage;
        self.last_run.iter().any(is)
            || self.last_success.as_ref().is_some_and(is)
            || self.previous_success.as_ref().is_some_and(is)
            || self
                .last_success_per_storage
                .get(&r.storage)
                .is_some_and(is)
            || self
                .newest_per_storage
                .get(&r.storage)
                .is_some_and(|c| c.id == r.id)
            || self
                .verified_per_storage
                .get(&r.storage)
                .is_some_and(|v| v.id == r.id)
            || [&self.restore_tested, &self.restore_test_passed]
                .into_iter()
                .flatten()
                .any(|t| t.is_of(r))
    }

    /// Folds one change into the summary: `old` replaced by `new` (an addition without `old`, a
    /// removal without `new`; both of this type). Returns false when that needs the whole
    /// history (removing or moving a copy the summary names); the summary is then to be
    /// recomputed, whatever this left in it.
    pub fn apply(&mut self, old: Option<&BackupRecord>, new: Option<&BackupRecord>) -> bool {
        let Some(o) = old else {
            if let Some(n) = new {
                self.add(n);
            }
            return true;
        };
        let success = |r: &BackupRecord| Held {
            backups: usize::from(r.status == Status::Success),
            bytes: if r.status == Status::Success {
                r.compressed_bytes
            } else {
                0
            },
        };
        match new {
            // Changed where it stands (a verification recorded): the same runs stay newest.
            Some(n)
                if n.id == o.id
                    && n.storage == o.storage
                    && n.status == o.status
                    && n.started_at == o.started_at =>
            {
                self.count_failed(o, -1);
                self.count_failed(n, 1);
                let is = |x: &BackupRecord| x.id == o.id && x.storage == o.storage;
                for slot in self
                    .last_run
                    .iter_mut()
                    .chain(self.last_success.iter_mut())
                    .chain(self.previous_success.iter_mut())
                    .chain(self.last_success_per_storage.values_mut())
                {
                    if is(slot) {
                        *slot = n.clone();
                    }
                }
                if o.status == Status::Success {
                    let held = self.held.entry(o.storage.clone()).or_default();
                    held.sub(success(o));
                    held.add(success(n));
                }
                let was_newest = self
                    .verified_per_storage
                    .get(&o.storage)
                    .is_some_and(|v| v.id == o.id);
                let still = match (&o.verification, &n.verification) {
                    (_, None) => false,
                    (Some(a), Some(b)) => b.verified_at >= a.verified_at,
                    (None, Some(_)) => true,
                };
                if was_newest && !still {
                    return false;
                }
                let test = |r: &BackupRecord| {
                    r.verification
                        .as_deref()
                        .and_then(|v| v.restore_test.clone())
                };
                let holds = [&self.restore_tested, &self.restore_test_passed]
                    .into_iter()
                    .flatten()
                    .any(|t| t.is_of(o));
                if holds && test(o) != test(n) {
                    return false;
                }
                self.note_verification(n);
                true
            }
            _ => {
                if self.names(o) {
                    return false;
                }
                self.records = self.records.saturating_sub(1);
                self.count_failed(o, -1);
                if o.status == Status::Success {
                    if let Some(h) = self.held.get_mut(&o.storage) {
                        h.sub(success(o));
                        if h.backups == 0 {
                            self.held.remove(&o.storage);
                        }
                    }
                }
                if let Some(n) = new {
                    self.add(n);
                }
                true
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
        successes.sort_by(|a, b| rank(b).cmp(&rank(a)));
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
                Some(mine) if !v.replaces(mine) => {}
                _ => {
                    self.verified_per_storage.insert(k.clone(), v.clone());
                }
            }
        }
        for (k, h) in &other.held {
            self.held.entry(k.clone()).or_default().add(*h);
        }
        for (k, n) in &other.failed_verifications {
            *self.failed_verifications.entry(k.clone()).or_default() += n;
        }
        if let Some(t) = &other.restore_tested {
            keep_newer(&mut self.restore_tested, t);
        }
        if let Some(t) = &other.restore_test_passed {
            keep_newer(&mut self.restore_test_passed, t);
        }
    }

    /// Whether the newest run succeeded on every storage.
    pub fn last_run_ok(&self) -> bool {
        self.last_run.iter().all(|r| r.status == Status::Success)
    }
}

/// The revision of what a database's summary holds: 1 added
/// [`TypeSummary::failed_verifications`].
pub const SUMMARY_REVISION: u32 = 1;

/// The records of one index file (a partition of a database's records): how many, and when the
/// first and the last started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub records: usize,
    pub oldest: DateTime<Utc>,
    pub newest: DateTime<Utc>,
}

impl Span {
    /// The span of `records`; none when there are none.
    pub fn of(records: &[BackupRecord]) -> Option<Span> {
        Some(Span {
            records: records.len(),
            oldest: records.iter().map(|r| r.started_at).min()?,
            newest: records.iter().map(|r| r.started_at).max()?,
        })
    }

    /// Whether a record started at `t` may be in this span, give or take `slack`.
    pub fn covers(&self, t: DateTime<Utc>, slack: chrono::Duration) -> bool {
        self.oldest <= t + slack && t <= self.newest + slack
    }
}

/// One database in the summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DatabaseSummary {
    /// An update of this database was under way: recompute it from its index files.
    #[serde(default)]
    pub dirty: bool,
    /// What this summary knows ([`SUMMARY_REVISION`]): one an older version wrote lacks what
    /// was added since, and is recomputed from its files as if dirty (and so written anew by the
    /// next update).
    #[serde(default)]
    pub revision: u32,
    pub records: usize,
    pub newest: Option<DateTime<Utc>>,
    pub oldest: Option<DateTime<Utc>>,
    /// Its index files, by partition (see [`super::partition_of`]).
    #[serde(default)]
    pub partitions: BTreeMap<String, Span>,
    pub types: BTreeMap<String, TypeSummary>,
}

impl DatabaseSummary {
    /// Whether it must be recomputed from its files before it is read: an update was cut short,
    /// or an older version wrote it.
    pub fn stale(&self) -> bool {
        self.dirty || self.revision < SUMMARY_REVISION
    }

    /// The summary of one database's records (all of them).
    pub fn of(records: &[BackupRecord]) -> DatabaseSummary {
        let mut by_type: BTreeMap<&str, Vec<&BackupRecord>> = BTreeMap::new();
        let mut by_partition: BTreeMap<String, Vec<BackupRecord>> = BTreeMap::new();
        for r in records {
            by_type.entry(r.backup_type.as_str()).or_default().push(r);
            by_partition
                .entry(super::partition_of(r.started_at))
                .or_default()
                .push(r.clone());
        }
        let mut d = DatabaseSummary {
            types: by_type
                .into_iter()
                .map(|(t, rs)| (t.to_string(), TypeSummary::of(rs)))
                .collect(),
            revision: SUMMARY_REVISION,
            ..Default::default()
        };
        for (p, rs) in by_partition {
            d.set_partition(&p, &rs);
        }
        d
    }

    /// Records the new content of one partition (its span; removed when empty) and updates the
    /// totals.
    pub fn set_partition(&mut self, partition: &str, records: &[BackupRecord]) {
        match Span::of(records) {
            Some(span) => {
                self.partitions.insert(partition.to_string(), span);
            }
            None => {
                self.partitions.remove(partition);
            }
        }
        self.records = self.partitions.values().map(|s| s.records).sum();
        self.oldest = self.partitions.values().map(|s| s.oldest).min();
        self.newest = self.partitions.values().map(|s| s.newest).max();
    }

    /// Folds the change of some records (`before` → `after`, matched by id and storage) into
    /// the type summaries. Returns false when that needs the whole history (see
    /// [`TypeSummary::apply`]).
    pub fn apply(&mut self, before: &[BackupRecord], after: &[BackupRecord]) -> bool {
        use std::collections::HashMap;
        let key = |r: &BackupRecord| (r.id.clone(), r.storage.clone());
        let old: HashMap<_, &BackupRecord> = before.iter().map(|r| (key(r), r)).collect();
        let new: HashMap<_, &BackupRecord> = after.iter().map(|r| (key(r), r)).collect();
        let mut changes: Vec<(Option<&BackupRecord>, Option<&BackupRecord>)> = Vec::new();
        for (k, o) in &old {
            match new.get(k) {
                None => changes.push((Some(o), None)),
                Some(n) if n != o => changes.push((Some(o), Some(n))),
                Some(_) => {}
            }
        }
        for (k, n) in &new {
            if !old.contains_key(k) {
                changes.push((None, Some(n)));
            }
        }
        // Removals first, so that an addition never meets a copy that is on its way out.
        changes.sort_by_key(|(o, n)| (n.is_some(), o.is_none()));
        for (o, n) in changes {
            let ok = match (o, n) {
                (Some(o), Some(n)) if o.backup_type != n.backup_type => {
                    self.types
                        .entry(o.backup_type.clone())
                        .or_default()
                        .apply(Some(o), None)
                        && self
                            .types
                            .entry(n.backup_type.clone())
                            .or_default()
                            .apply(None, Some(n))
                }
                _ => {
                    let t = o.or(n).map(|r| r.backup_type.clone()).unwrap_or_default();
                    self.types.entry(t).or_default().apply(o, n)
                }
            };
            if !ok {
                return false;
            }
        }
        self.types.retain(|_, t| t.records > 0);
        true
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

    #[test]
    fn a_later_check_of_an_older_copy_does_not_speak_for_the_newest() {
        let verified = |r: &mut BackupRecord, hour: u32, ok: bool| {
            r.verification = Some(Box::new(crate::index::Verification {
                verified_at: Utc.with_ymd_and_hms(2026, 11, 29, hour, 0, 0).unwrap(),
                ok,
                restore_tested: false,
                error: None,
                restore_test: None,
            }));
        };
        let mut newest = rec("b2", "local", true, 10);
        let mut older = rec("b1", "local", true, 9);
        verified(&mut newest, 1, false);
        verified(&mut older, 2, true);
        let s = TypeSummary::of([&newest, &older]);
        let v = &s.verified_per_storage["local"];
        assert_eq!((v.id.as_str(), v.ok), ("b2", false));
        // The newest copy checked again, and passing, speaks for it.
        verified(&mut newest, 3, true);
        let s = TypeSummary::of([&newest, &older]);
        assert!(s.verified_per_storage["local"].ok);
    }

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
