//! The backup index and the per-backup manifests: the single source of truth for list, prune,
//! report and metrics.
//!
//! One index per server and storage, kept as one file per database and month plus a summary:
//!
//! ```text
//! <server>/index/summary.json                   per database: its files' spans; per type: what
//!                                               the health model needs (see [`summary`])
//! <server>/index/db/<database>/<YYYY-MM>.json   the records of one database that started in
//!                                               that month (UTC), one per line
//! <server>/<database>/<type>/<id>.manifest.json the same record, beside its object
//! ```
//!
//! A backup rewrites its database's current month and the summary, so its cost does not grow
//! with any history; `list --db X` reads that database's files, `list --limit` and the report's
//! window only the months they need; metrics and the report's health table read the summary.
//! Updates are read-merge-write cycles under the storage's lock, written atomically, so
//! concurrent runs never lose a record ([`IndexStore`]). The summary is a cache, kept up to date
//! incrementally: a database being updated is marked dirty in it first, and a reader recomputes
//! a dirty entry from its files. A damaged index file is an error naming the file and the fix,
//! never silently reset.
//!
//! Indexes of sqlguard before this layout (one `<server>/index.json`, schema 1) are read as they
//! are and migrated on the first write: the old file is kept as `index.json.bak-<time>` and
//! replaced by a stub of schema 2, which older binaries refuse ("upgrade sqlguard") instead of
//! starting an empty index beside this one. An older binary can take over again through its own
//! `index rebuild` (from the manifests and that kept copy); should one write a schema 1 index
//! anyway, this version treats it as the truth again and migrates it on the next write.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::compress::Algorithm;
use crate::storage::StorageError;

mod rebuild;
mod store;
pub mod summary;

pub use rebuild::Rebuild;
pub use store::{scope_of, IndexStore, Scope};
pub use summary::{DatabaseSummary, Span, Summary, TypeSummary, SUMMARY_REVISION};

/// Version of the record shape in JSON output (`list --json`, manifests, the legacy index).
pub const SCHEMA_VERSION: u32 = 1;

/// Version of the index files (per-database files and the summary).
pub const INDEX_SCHEMA_VERSION: u32 = 2;

/// Outcome of one backup copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Success,
    Failed,
}

impl Status {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Failed => "failed",
        }
    }
}

/// One backup copy on one storage, as recorded in the index and its manifest.
/// Reads a time as sqlguard writes it (RFC 3339, `2026-11-28T02:30:00Z`) by chrono's strict
/// parser, and anything else as chrono's serde does (its relaxed parser): an index of 100,000
/// records holds 200,000 of them, and the relaxed parser was a twentieth of a prune's time.
fn rfc3339<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    struct Time;
    impl serde::de::Visitor<'_> for Time {
        type Value = DateTime<Utc>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an RFC 3339 date and time")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .or_else(|_| s.parse::<DateTime<Utc>>())
                .map_err(E::custom)
        }
    }
    d.deserialize_str(Time)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupRecord {
    pub id: String,
    pub server: String,
    pub database: String,
    #[serde(rename = "type")]
    pub backup_type: String,
    pub storage: String,
    pub status: Status,
    #[serde(deserialize_with = "rfc3339")]
    pub started_at: DateTime<Utc>,
    #[serde(deserialize_with = "rfc3339")]
    pub finished_at: DateTime<Utc>,
    pub duration_seconds: f64,
    /// Bytes the dump tool produced.
    pub raw_bytes: u64,
    /// Bytes stored (the object's size).
    pub compressed_bytes: u64,
    /// SHA-256 of the stored object, lowercase hex.
    pub sha256: Option<String>,
    pub compression: Algorithm,
    pub compression_level: i32,
    /// Object key relative to the storage root; absent for failures.
    pub key: Option<String>,
    pub manifest_key: Option<String>,
    pub server_version: Option<String>,
    pub dump_tool: Option<String>,
    pub dump_tool_version: Option<String>,
    pub sqlguard_version: String,
    /// Why the backup failed; absent on success.
    pub error: Option<String>,
    /// The last `sqlguard verify` of this copy; absent until verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Box<Verification>>,
    /// The database's default collation when it was dumped (a restore creates the target
    /// database with it, so that its routines and triggers keep it); absent in records of
    /// sqlguard 0.1 and for failures before discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_collation: Option<String>,
    /// The database's data bytes (information_schema) when it was dumped: with `raw_bytes`,
    /// the next backup's progress estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_data_bytes: Option<u64>,
    /// Where the dump's snapshot stands in the binary log; absent when the server writes none
    /// or the account cannot read its position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog: Option<Box<BinlogPosition>>,
    /// False when the dump holds tables of a non-transactional engine (MyISAM, Aria, …), which
    /// may change during a `--single-transaction` dump; absent in records of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistent: Option<bool>,
    /// For a binary log segment (database [`crate::binlog::DATABASE`]): which bytes of which
    /// file of the server's binary log it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<Box<Segment>>,
    /// How the object is encrypted (`{format: age, recipients: [...]}`); absent for plain
    /// objects. `compressed_bytes` and `sha256` are those of the stored, encrypted bytes, so
    /// that `verify` proves an object intact without any key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<crate::crypt::Encryption>,
}

/// The bytes `[start, end)` of one file of a server's binary log, as archived by `sqlguard
/// binlog`. The segments of one file, decompressed and concatenated in order, are the file
/// (`zstd -dc` of them one after another); the first starts at 0 with the file's magic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// The server's binary log file (`binlog.000015`).
    pub file: String,
    pub start: u64,
    pub end: u64,
    pub events: u64,
    /// The first and last event's time (the server's clock, to the second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_event_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event_at: Option<DateTime<Utc>>,
    /// The first and last GTID it holds (`domain-server-seq`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_gtid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_gtid: Option<String>,
    /// The file ends with this segment (a rotate or stop event): the next file follows.
    #[serde(default)]
    pub closed: bool,
    /// The file the server rotated to, as the rotate event names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_file: Option<String>,
    /// Every event carries a CRC32 (the server's `binlog_checksum`), checked by `verify`.
    #[serde(default)]
    pub crc32: bool,
    /// The `@@server_id` of the server the bytes were read from (absent in segments archived
    /// before failovers were followed): a different one means a failover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<u32>,
    /// The server's GTID position at `end` (one `domain-server-seq` per domain, as
    /// `BINLOG_GTID_POS(file, end)` gives it), where the archive knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid_pos: Option<String>,
    /// Which server's history the segment belongs to: 0 for the first, one more after each
    /// failover the archive continued by GTID. File names and positions compare only within a
    /// lineage (a promoted replica has its own files, often with the same names).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lineage: u32,
    /// On the first segment of a lineage after a failover: where the previous lineage's archive
    /// ended, the transactions this segment follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continues: Option<SegmentLink>,
    /// When the server created the file (its format description's time, to the second; absent
    /// in segments archived before it was recorded): a segment that continues the file must
    /// come from the file created then, not from another of the same name after RESET MASTER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_created_at: Option<DateTime<Utc>>,
}

impl Segment {
    /// What makes the record no range of a server's binary log (an edited or damaged record):
    /// a file name that is not a plain one, a file that follows itself, an empty range or one
    /// that ends before it starts, or an end past what an event's 32-bit position can name.
    pub fn problem(&self) -> Option<String> {
        let names = std::iter::once(&self.file).chain(self.next_file.iter());
        if let Some(bad) = names
            .chain(self.continues.iter().map(|c| &c.file))
            .find(|n| !crate::binlog::plain_file_name(n))
        {
            return Some(format!("binary log file {bad:?} is not a plain file name"));
        }
        if self.end > u64::from(u32::MAX) {
            return Some(format!(
                "its end {}:{} is past any binary log position (events name 32-bit positions)",
                self.file, self.end
            ));
        }
        // A lineage per failover the archive followed: a million is no archive's history.
        if self.lineage > 1_000_000 {
            return Some(format!("its lineage {} is past any history", self.lineage));
        }
        if self.next_file.as_ref() == Some(&self.file) {
            return Some(format!("{} names itself as the file after it", self.file));
        }
        // The archive records no empty segment (a read that gets no event records nothing).
        (self.start >= self.end).then(|| {
            format!(
                "its range {}:{} to {} ends before it starts",
                self.file, self.start, self.end
            )
        })
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The end of the archive a failover continued from: the previous lineage's file, position
/// and GTID position there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentLink {
    pub file: String,
    pub end: u64,
    pub gtid_pos: String,
    /// Where in this segment the transactions after `gtid_pos` start. The segment starts at its
    /// file's start (for the file's format description); the events before `at` are the
    /// previous lineage's transactions, as the replica logged them, and are not replayed again.
    pub at: u64,
}

/// Where in the server's binary log a dump's snapshot stands: transactions committed before
/// it are in the dump, those after it are not. Point-in-time recovery replays from here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinlogPosition {
    /// The binary log file (`binlog.000015`).
    pub file: String,
    /// The byte offset in it of the first event not in the dump.
    pub position: u64,
    /// The GTID position (MariaDB's `gtid_binlog_pos`, one `domain-server-seq` per domain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid: Option<String>,
    /// The dumped server's `@@server_id` (which server's files `file` names, after a failover).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<u32>,
    /// When the server created `file` (see [`Segment::file_created_at`]), where the backup
    /// could read it (servers with a `binlog` section): a point-in-time restore rolls the dump
    /// forward only with segments of the file created then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_created_at: Option<DateTime<Utc>>,
}

/// The manifest stored beside each object: its record, and what the dump holds (absent in
/// manifests of sqlguard 0.1 and in those `index rebuild` restored from the index).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(flatten)]
    pub record: BackupRecord,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<crate::inventory::Inventory>,
}

/// The outcome of verifying one stored copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    pub verified_at: DateTime<Utc>,
    pub ok: bool,
    /// Whether the copy was also restored into a scratch database.
    pub restore_tested: bool,
    /// What failed; absent when `ok`.
    pub error: Option<String>,
    /// The newest restore test of this copy (kept when a later verification does not restore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_test: Option<RestoreTest>,
}

/// A restore test of one copy: restored into a scratch database and compared with the dump's
/// inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestoreTest {
    pub tested_at: DateTime<Utc>,
    pub ok: bool,
    /// From the first byte read to the last statement loaded: the measured recovery time.
    pub duration_seconds: f64,
    /// What failed; absent when `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl BackupRecord {
    /// Whether the copy's last verification failed: the copy is damaged (a verification that
    /// could not check it, because the server or the storage was out, records no failure).
    /// A successful copy that did not fail its last verification is a good one.
    pub fn failed_verification(&self) -> bool {
        self.verification.as_deref().is_some_and(|v| !v.ok)
    }

    /// What makes the record another backup's or no backup at all (see [`Self::foreign_key`]
    /// and [`Segment::problem`]).
    pub fn damage(&self, server: &str) -> Option<String> {
        if let Some(k) = self.foreign_key(server) {
            return Some(format!("it names {k}, which is not a file of that backup"));
        }
        self.segment.as_deref().and_then(Segment::problem)
    }

    /// What makes the record's start impossible for the backup its id names: the id is the
    /// start's second, so a start at another time was edited (a manifest dated into the future
    /// would keep its database fresh). An id of another form (old tests' samples) is not read.
    /// (A finish before the start is left alone: a clock stepped back during a run gives one.)
    pub fn times_problem(&self) -> Option<String> {
        use chrono::Timelike;
        let at = crate::layout::id_time(&self.id).filter(|_| crate::layout::is_id(&self.id))?;
        (self.started_at.with_nanosecond(0) != Some(at)).then(|| {
            format!(
                "its start {} is not the time its id names ({at})",
                self.started_at.to_rfc3339()
            )
        })
    }

    /// The first of the record's keys (object, manifest) that is not a file of this backup in
    /// the index of `server` ([`crate::layout::is_backup_file`]): a record that names one was
    /// edited or damaged, and nothing may be deleted, read or written for it there.
    pub fn foreign_key(&self, server: &str) -> Option<&str> {
        self.key
            .iter()
            .chain(self.manifest_key.iter())
            .map(String::as_str)
            .find(|k| {
                !crate::layout::is_backup_file(
                    server,
                    &self.database,
                    &self.backup_type,
                    &self.id,
                    k,
                )
            })
    }

    /// A record with plausible values (server `main`, 100 raw and 10 stored bytes for a success,
    /// keys under the layout, one minute long), for tests and benchmarks.
    #[cfg(any(test, feature = "testkit"))]
    pub fn sample(
        id: &str,
        database: &str,
        backup_type: &str,
        storage: &str,
        status: Status,
        started_at: DateTime<Utc>,
    ) -> BackupRecord {
        let ok = status == Status::Success;
        BackupRecord {
            id: id.into(),
            server: "main".into(),
            database: database.into(),
            backup_type: backup_type.into(),
            storage: storage.into(),
            status,
            started_at,
            finished_at: started_at + chrono::Duration::minutes(1),
            duration_seconds: 60.0,
            raw_bytes: 100,
            compressed_bytes: if ok { 10 } else { 0 },
            sha256: None,
            compression: Algorithm::Zstd,
            compression_level: 3,
            key: ok.then(|| {
                crate::layout::object_key("main", database, backup_type, id, Algorithm::Zstd, false)
            }),
            manifest_key: ok
                .then(|| crate::layout::manifest_key("main", database, backup_type, id)),
            server_version: None,
            dump_tool: None,
            dump_tool_version: None,
            sqlguard_version: crate::VERSION.into(),
            error: (!ok).then(|| "boom".to_string()),
            verification: None,
            database_collation: None,
            source_data_bytes: None,
            binlog: None,
            consistent: None,
            segment: None,
            encryption: None,
        }
    }
}

/// Every record of one server's index, oldest first; also the document of the legacy (schema 1)
/// index file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub schema_version: u32,
    pub server: String,
    pub backups: Vec<BackupRecord>,
}

impl Index {
    /// An empty index for `server`.
    pub fn empty(server: &str) -> Self {
        Index {
            schema_version: SCHEMA_VERSION,
            server: server.to_string(),
            backups: Vec::new(),
        }
    }

    /// Adds or replaces (by id and storage) a record, keeping records ordered by start time
    /// then id.
    pub fn upsert(&mut self, record: BackupRecord) {
        upsert_into(&mut self.backups, record);
    }
}

/// One index file: the records of one database that started in one partition (month).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseIndex {
    pub schema_version: u32,
    pub server: String,
    pub database: String,
    pub partition: String,
    pub backups: Vec<BackupRecord>,
}

/// The partition of a record that started at `t`: its month in UTC (`2026-11`). Years outside
/// 0–9999 (only a damaged or hostile record has one) go to the first or last partition.
pub fn partition_of(t: DateTime<Utc>) -> String {
    let (year, month) = month_of(t);
    format!("{year:04}-{month:02}")
}

/// The year and month of [`partition_of`]`(t)`.
pub(crate) fn month_of(t: DateTime<Utc>) -> (i32, u32) {
    use chrono::Datelike;
    match t.year() {
        y if y < 0 => (0, 1),
        y if y > 9999 => (9999, 12),
        y => (y, t.month()),
    }
}

/// Orders records by start time, then id, then storage.
pub(crate) fn sort_records(records: &mut [BackupRecord]) {
    records.sort_by(|a, b| {
        a.started_at
            .cmp(&b.started_at)
            .then_with(|| a.id.cmp(&b.id))
            .then_with(|| a.storage.cmp(&b.storage))
    });
}

/// Adds or replaces (by id and storage) a record in `records`, keeping the order.
pub fn upsert_into(records: &mut Vec<BackupRecord>, record: BackupRecord) {
    upsert_all(records, vec![record]);
}

/// Adds or replaces (by id and storage; the last of `new` wins) many records at once, in time
/// linear in both plus one sort.
pub fn upsert_all(records: &mut Vec<BackupRecord>, new: Vec<BackupRecord>) {
    let mut latest: std::collections::HashMap<(String, String), BackupRecord> =
        std::collections::HashMap::with_capacity(new.len());
    for r in new {
        latest.insert((r.id.clone(), r.storage.clone()), r);
    }
    records.retain(|r| !latest.contains_key(&(r.id.clone(), r.storage.clone())));
    records.extend(latest.into_values());
    sort_records(records);
}

/// Index failures; each names the storage and the object.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("index {key} on storage '{storage}' ({location}) is damaged: {message}; nothing was changed. Run `sqlguard index rebuild --server {server} --storage {storage}` to rebuild it from the manifests")]
    Damaged {
        storage: String,
        location: String,
        key: String,
        server: String,
        message: String,
    },
    /// A record that names a key that is not its own (see [`BackupRecord::foreign_key`]).
    #[error("{0}")]
    ForeignKey(String),
    #[error("index {key} on storage '{storage}' has schema version {found}, newer than this sqlguard understands ({INDEX_SCHEMA_VERSION}); upgrade sqlguard")]
    Newer {
        storage: String,
        key: String,
        found: u32,
    },
    /// An update that failed after it began to write the records: some may have landed.
    #[error("{0} (after the update began writing records)")]
    Incomplete(Box<IndexError>),
}

/// Only the version, to tell a newer document that does not parse from a damaged one.
#[derive(Deserialize)]
struct VersionProbe {
    schema_version: u32,
}

/// A document of the index that says its schema version.
trait Versioned {
    fn schema_version(&self) -> u32;
}

impl Versioned for Index {
    fn schema_version(&self) -> u32 {
        self.schema_version
    }
}

impl Versioned for DatabaseIndex {
    fn schema_version(&self) -> u32 {
        self.schema_version
    }
}

impl Versioned for Summary {
    fn schema_version(&self) -> u32 {
        self.schema_version
    }
}

/// Whether `bytes` are the stub of the current layout at the legacy index's place.
fn is_stub(bytes: &[u8]) -> bool {
    serde_json::from_slice::<VersionProbe>(bytes).is_ok_and(|p| p.schema_version > SCHEMA_VERSION)
}

/// The records of an index document of any schema (legacy or per database), if it parses.
fn records_of(bytes: &[u8]) -> Option<Vec<BackupRecord>> {
    #[derive(Deserialize)]
    struct Any {
        backups: Vec<BackupRecord>,
    }
    serde_json::from_slice::<Any>(bytes).ok().map(|a| a.backups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn partitions_are_utc_months_and_odd_years_are_clamped() {
        let t = |y, m, d, h| Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap();
        assert_eq!(partition_of(t(2026, 11, 30, 23)), "2026-11");
        assert_eq!(partition_of(t(2026, 12, 1, 0)), "2026-12");
        assert_eq!(partition_of(DateTime::<Utc>::MIN_UTC), "0000-01");
        assert_eq!(partition_of(DateTime::<Utc>::MAX_UTC), "9999-12");
    }

    #[test]
    fn upsert_all_replaces_by_id_and_storage_and_keeps_the_order() {
        let at = |h| Utc.with_ymd_and_hms(2026, 11, 28, h, 0, 0).unwrap();
        let r = |id: &str, st: &str, h| {
            BackupRecord::sample(id, "shop", "daily", st, Status::Success, at(h))
        };
        let mut all = vec![r("a", "local", 1), r("b", "local", 2)];
        let mut changed = r("a", "local", 1);
        changed.raw_bytes = 7;
        upsert_all(
            &mut all,
            vec![r("c", "local", 0), changed.clone(), r("a", "s3", 1)],
        );
        let got: Vec<(&str, &str)> = all
            .iter()
            .map(|r| (r.id.as_str(), r.storage.as_str()))
            .collect();
        assert_eq!(
            got,
            [("c", "local"), ("a", "local"), ("a", "s3"), ("b", "local")]
        );
        assert_eq!(all[1], changed);
    }
}
