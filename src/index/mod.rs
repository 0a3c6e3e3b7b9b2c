//! The backup index and the per-backup manifests: the single source of truth for list, prune,
//! report and metrics.
//!
//! One index per server and storage, kept as one file per database plus a summary:
//!
//! ```text
//! <server>/index/summary.json           per database: counts, first and last start; per type:
//!                                       what the health model needs (see [`summary`])
//! <server>/index/db/<database>.json     the records of one database, one per line
//! <server>/<database>/<type>/<id>.manifest.json   the same record, beside its object
//! ```
//!
//! A backup rewrites one database's file and the summary, so its cost does not grow with the
//! history of other databases; `list --db X` reads one file; metrics and the report's health
//! table read the summary. Updates are read-merge-write cycles under the storage's lock, written
//! atomically, so concurrent runs never lose a record. The summary is a cache: a database being
//! updated is marked dirty in it first, and a reader recomputes a dirty entry from its file. A
//! damaged index file is an error naming the file and the fix, never silently reset.
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
use crate::layout;
use crate::storage::{Storage, StorageError};

pub mod summary;

use std::collections::BTreeMap;

pub use summary::{DatabaseSummary, Summary, TypeSummary};

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupRecord {
    pub id: String,
    pub server: String,
    pub database: String,
    #[serde(rename = "type")]
    pub backup_type: String,
    pub storage: String,
    pub status: Status,
    pub started_at: DateTime<Utc>,
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
    pub verification: Option<Verification>,
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
}

impl BackupRecord {
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
            key: ok.then(|| layout::object_key("main", database, backup_type, id, Algorithm::Zstd)),
            manifest_key: ok.then(|| layout::manifest_key("main", database, backup_type, id)),
            server_version: None,
            dump_tool: None,
            dump_tool_version: None,
            sqlguard_version: crate::VERSION.into(),
            error: (!ok).then(|| "boom".to_string()),
            verification: None,
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

/// The index file of one database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseIndex {
    pub schema_version: u32,
    pub server: String,
    pub database: String,
    pub backups: Vec<BackupRecord>,
}

/// Orders records by start time, then id, then storage.
fn sort_records(records: &mut [BackupRecord]) {
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
    #[error("index {key} on storage '{storage}' has schema version {found}, newer than this sqlguard understands ({INDEX_SCHEMA_VERSION}); upgrade sqlguard")]
    Newer {
        storage: String,
        key: String,
        found: u32,
    },
}

/// Reads and updates the index of one server on one storage.
#[derive(Debug)]
pub struct IndexStore<'a> {
    storage: &'a dyn Storage,
    server: String,
}

/// Only the version, to refuse newer documents before parsing the rest.
#[derive(Deserialize)]
struct VersionProbe {
    schema_version: u32,
}

/// Only the database of a database index file (to find which database a file holds).
#[derive(Deserialize)]
struct DatabaseProbe {
    database: String,
}

impl<'a> IndexStore<'a> {
    /// The index of `server` on `storage`.
    pub fn new(storage: &'a dyn Storage, server: &str) -> Self {
        IndexStore {
            storage,
            server: server.to_string(),
        }
    }

    fn legacy_key(&self) -> String {
        layout::index_key(&self.server)
    }

    fn summary_key(&self) -> String {
        layout::summary_key(&self.server)
    }

    fn database_key(&self, database: &str) -> String {
        layout::database_index_key(&self.server, database)
    }

    fn damaged(&self, key: &str, message: String) -> IndexError {
        IndexError::Damaged {
            storage: self.storage.name().to_string(),
            location: self.storage.location(),
            key: key.to_string(),
            server: self.server.clone(),
            message,
        }
    }

    /// Parses a document of schema `max` or older at `key`.
    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        bytes: &[u8],
        max: u32,
    ) -> Result<T, IndexError> {
        let probe: VersionProbe =
            serde_json::from_slice(bytes).map_err(|e| self.damaged(key, e.to_string()))?;
        if probe.schema_version > max {
            return Err(IndexError::Newer {
                storage: self.storage.name().to_string(),
                key: key.to_string(),
                found: probe.schema_version,
            });
        }
        serde_json::from_slice(bytes).map_err(|e| self.damaged(key, e.to_string()))
    }

    /// What `<server>/index.json` holds: nothing, the stub of this layout, or a legacy index
    /// (schema 1; written before this layout, or by an older binary since).
    ///
    /// Fails when it cannot be read, or is damaged and no summary says the layout is current.
    fn legacy(&self) -> Result<Option<Index>, IndexError> {
        let key = self.legacy_key();
        let Some(bytes) = self.storage.get_bytes(&key)? else {
            return Ok(None);
        };
        match serde_json::from_slice::<VersionProbe>(&bytes) {
            Ok(p) if p.schema_version > SCHEMA_VERSION => {
                if p.schema_version > INDEX_SCHEMA_VERSION {
                    return Err(IndexError::Newer {
                        storage: self.storage.name().to_string(),
                        key,
                        found: p.schema_version,
                    });
                }
                Ok(None)
            }
            // A damaged stub beside a summary is harmless: the summary says where the index is.
            Err(_) if self.storage.stat(&self.summary_key())?.is_some() => Ok(None),
            _ => {
                let mut i: Index = self.parse(&key, &bytes, SCHEMA_VERSION)?;
                sort_records(&mut i.backups);
                Ok(Some(i))
            }
        }
    }

    /// Writes the stub that stands where the legacy index was (see the module docs).
    fn write_stub(&self) -> Result<(), IndexError> {
        let stub = serde_json::json!({
            "schema_version": INDEX_SCHEMA_VERSION,
            "server": self.server,
            "moved_to": layout::index_prefix(&self.server),
            "note": "this server's index is index/summary.json and index/db/<database>.json; sqlguard older than 0.2 must not write here (see `sqlguard index --help`)",
        });
        let mut bytes = serde_json::to_vec_pretty(&stub).expect("stub serializes");
        bytes.push(b'\n');
        self.storage.put_bytes(&self.legacy_key(), &bytes)?;
        Ok(())
    }

    /// The records of `database`, oldest first (empty when it has none).
    ///
    /// Fails when the storage cannot be read or the file is damaged or newer.
    pub fn database(&self, database: &str) -> Result<Vec<BackupRecord>, IndexError> {
        if let Some(legacy) = self.legacy()? {
            return Ok(legacy
                .backups
                .into_iter()
                .filter(|r| r.database == database)
                .collect());
        }
        self.read_database(database)
    }

    /// The summary and, for a legacy index (read whole anyway), its records: what a reader
    /// needs to read records later without asking again which layout this is.
    ///
    /// Fails as [`IndexStore::summary`] does.
    pub fn snapshot(&self) -> Result<(Summary, Option<Vec<BackupRecord>>), IndexError> {
        if let Some(legacy) = self.legacy()? {
            return Ok((
                summarize(&self.server, legacy.backups.clone()),
                Some(legacy.backups),
            ));
        }
        Ok((self.summary()?, None))
    }

    /// The records of `database` in the current layout's file, oldest first (empty when it has
    /// none). For readers that know from [`IndexStore::snapshot`] that this is not a legacy index.
    ///
    /// Fails when the storage cannot be read or the file is damaged or newer.
    pub fn read_database(&self, database: &str) -> Result<Vec<BackupRecord>, IndexError> {
        let key = self.database_key(database);
        match self.storage.get_bytes(&key)? {
            Some(bytes) => {
                let mut doc: DatabaseIndex = self.parse(&key, &bytes, INDEX_SCHEMA_VERSION)?;
                sort_records(&mut doc.backups);
                Ok(doc.backups)
            }
            None => Ok(Vec::new()),
        }
    }

    /// The summary. Dirty entries are recomputed from their files; a missing or unreadable
    /// summary is recomputed from the database files (or from a legacy index).
    ///
    /// Fails when the storage cannot be read or a database file it needs is damaged.
    pub fn summary(&self) -> Result<Summary, IndexError> {
        if let Some(legacy) = self.legacy()? {
            return Ok(summarize(&self.server, legacy.backups));
        }
        let key = self.summary_key();
        let parsed = match self.storage.get_bytes(&key)? {
            Some(bytes) => match self.parse::<Summary>(&key, &bytes, INDEX_SCHEMA_VERSION) {
                Ok(s) => Some(s),
                Err(e @ IndexError::Newer { .. }) => return Err(e),
                Err(_) => None,
            },
            None => None,
        };
        let mut summary = match parsed {
            Some(s) => s,
            None => self.recompute_summary()?,
        };
        let dirty: Vec<String> = summary
            .databases
            .iter()
            .filter(|(_, d)| d.dirty)
            .map(|(n, _)| n.clone())
            .collect();
        for db in dirty {
            let records = self.read_database(&db)?;
            if records.is_empty() {
                summary.databases.remove(&db);
            } else {
                summary.databases.insert(db, DatabaseSummary::of(&records));
            }
        }
        Ok(summary)
    }

    /// The summary from every database file (listed), when the summary itself is missing or
    /// unreadable.
    fn recompute_summary(&self) -> Result<Summary, IndexError> {
        let mut summary = Summary {
            schema_version: INDEX_SCHEMA_VERSION,
            server: self.server.clone(),
            databases: BTreeMap::new(),
        };
        for meta in self
            .storage
            .list(&layout::database_index_prefix(&self.server))?
        {
            if !meta.key.ends_with(".json")
                || meta
                    .key
                    .rsplit('/')
                    .next()
                    .is_some_and(|n| n.starts_with('.'))
            {
                continue;
            }
            let Some(bytes) = self.storage.get_bytes(&meta.key)? else {
                continue;
            };
            let probe: DatabaseProbe = serde_json::from_slice(&bytes)
                .map_err(|e| self.damaged(&meta.key, e.to_string()))?;
            let records = self.read_database(&probe.database)?;
            if !records.is_empty() {
                summary
                    .databases
                    .insert(probe.database, DatabaseSummary::of(&records));
            }
        }
        Ok(summary)
    }

    /// Every record, oldest first (reads every database file: O(history)).
    ///
    /// Fails when the storage cannot be read or a file is damaged or newer.
    pub fn load(&self) -> Result<Index, IndexError> {
        if let Some(legacy) = self.legacy()? {
            return Ok(legacy);
        }
        let mut backups = Vec::new();
        for db in self.summary()?.databases.keys() {
            backups.extend(self.read_database(db)?);
        }
        sort_records(&mut backups);
        Ok(Index {
            schema_version: SCHEMA_VERSION,
            server: self.server.clone(),
            backups,
        })
    }

    fn lock(&self) -> Result<crate::storage::StorageLock, IndexError> {
        Ok(self
            .storage
            .lock(&format!("{}index", layout::server_prefix(&self.server)))?)
    }

    fn write_summary(&self, summary: &Summary) -> Result<(), IndexError> {
        let mut bytes = serde_json::to_vec(summary).expect("summary serializes");
        bytes.push(b'\n');
        self.storage.put_bytes(&self.summary_key(), &bytes)?;
        Ok(())
    }

    /// Writes one database's file (one record per line), or removes it when it has none.
    fn write_database(&self, database: &str, records: &[BackupRecord]) -> Result<(), IndexError> {
        let key = self.database_key(database);
        if records.is_empty() {
            self.storage.delete(&key)?;
            return Ok(());
        }
        let mut out = Vec::with_capacity(records.len() * 800);
        out.extend_from_slice(
            format!(
                "{{\"schema_version\":{INDEX_SCHEMA_VERSION},\"server\":{},\"database\":{},\"backups\":[\n",
                serde_json::to_string(&self.server).expect("string serializes"),
                serde_json::to_string(database).expect("string serializes"),
            )
            .as_bytes(),
        );
        for (i, r) in records.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b",\n");
            }
            serde_json::to_writer(&mut out, r).expect("record serializes");
        }
        out.extend_from_slice(b"\n]}\n");
        self.storage.put_bytes(&key, &out)?;
        Ok(())
    }

    /// Moves a legacy index to the new layout (under the lock): one file per database (files of
    /// databases it does not hold are removed: it is the truth), the summary, the old file kept
    /// as `index.json.bak-<time>` and the stub in its place. Writes the stub where there is none.
    fn migrate(&self) -> Result<(), IndexError> {
        let Some(legacy) = self.legacy()? else {
            if self.storage.stat(&self.legacy_key())?.is_none() {
                self.write_stub()?;
            }
            return Ok(());
        };
        let mut by_db: BTreeMap<String, Vec<BackupRecord>> = BTreeMap::new();
        for r in legacy.backups {
            by_db.entry(r.database.clone()).or_default().push(r);
        }
        let keep: std::collections::HashSet<String> =
            by_db.keys().map(|db| self.database_key(db)).collect();
        for meta in self
            .storage
            .list(&layout::database_index_prefix(&self.server))?
        {
            if meta.key.ends_with(".json") && !keep.contains(&meta.key) {
                self.storage.delete(&meta.key)?;
            }
        }
        let mut summary = Summary {
            schema_version: INDEX_SCHEMA_VERSION,
            server: self.server.clone(),
            databases: BTreeMap::new(),
        };
        for (db, records) in &by_db {
            self.write_database(db, records)?;
            summary
                .databases
                .insert(db.clone(), DatabaseSummary::of(records));
        }
        self.write_summary(&summary)?;
        let key = self.legacy_key();
        if let Some(old) = self.storage.get_bytes(&key)? {
            let kept = format!("{key}.bak-{}", Utc::now().format("%Y%m%dT%H%M%SZ"));
            self.storage.put_bytes(&kept, &old)?;
        }
        self.write_stub()
    }

    /// Changes the records of `databases` with `change` (which gets them by database and may
    /// add, change or remove records, and add databases), under the storage's lock: the summary
    /// marks them dirty first, their files are rewritten, then the summary is rewritten clean.
    /// Other databases' files are not read.
    ///
    /// Fails, writing nothing, when an index file cannot be read or is damaged; fails when one
    /// cannot be written (a summary left dirty is recomputed by its readers).
    pub fn update_databases(
        &self,
        databases: &[&str],
        change: impl FnOnce(&mut BTreeMap<String, Vec<BackupRecord>>),
    ) -> Result<(), IndexError> {
        let _lock = self.lock()?;
        self.migrate()?;
        let mut summary = self.summary()?;
        let mut records: BTreeMap<String, Vec<BackupRecord>> = BTreeMap::new();
        for db in databases {
            records.insert(db.to_string(), self.read_database(db)?);
        }
        change(&mut records);
        for db in records.keys() {
            summary.databases.entry(db.clone()).or_default().dirty = true;
        }
        self.write_summary(&summary)?;
        for (db, rs) in &mut records {
            sort_records(rs);
            self.write_database(db, rs)?;
            if rs.is_empty() {
                summary.databases.remove(db);
            } else {
                summary
                    .databases
                    .insert(db.clone(), DatabaseSummary::of(rs));
            }
        }
        summary.schema_version = INDEX_SCHEMA_VERSION;
        summary.server = self.server.clone();
        self.write_summary(&summary)?;
        Ok(())
    }

    /// Adds or replaces `records` (by id and storage), each in its database's file.
    ///
    /// Fails as [`IndexStore::update_databases`] does.
    pub fn upsert(&self, records: &[BackupRecord]) -> Result<(), IndexError> {
        let dbs: Vec<&str> = records.iter().map(|r| r.database.as_str()).collect();
        self.update_databases(&dbs, |by_db| {
            let mut new: BTreeMap<&str, Vec<BackupRecord>> = BTreeMap::new();
            for r in records {
                new.entry(&r.database).or_default().push(r.clone());
            }
            for (db, rs) in new {
                upsert_all(by_db.entry(db.to_string()).or_default(), rs);
            }
        })
    }

    /// Writes the manifest of a successful record beside its object.
    pub fn write_manifest(&self, record: &BackupRecord) -> Result<(), IndexError> {
        if let Some(key) = &record.manifest_key {
            let mut bytes = serde_json::to_vec_pretty(record).expect("record serializes");
            bytes.push(b'\n');
            self.storage.put_bytes(key, &bytes)?;
        }
        Ok(())
    }

    /// Rebuilds the index from what the storage holds, merging what the old index knew: each
    /// database file (or the legacy index) that parses, else the newest `.bak-*` copy of it that
    /// does. Every old record whose object still exists is kept as it was (with its
    /// verification), every failed record is kept (history), a manifest whose backup the old
    /// index did not know is adopted when its object exists, a kept record whose manifest is
    /// missing gets it back, and whatever cannot be accounted for is listed, never deleted. The
    /// old files are kept beside the new ones as `….bak-<time>`.
    ///
    /// Fails when the storage cannot be listed, read or written.
    pub fn rebuild(&self, now: DateTime<Utc>) -> Result<Rebuild, IndexError> {
        let _lock = self.lock()?;
        let mut report = Rebuild::default();
        let listing = self.storage.list(&layout::server_prefix(&self.server))?;
        let present: std::collections::HashMap<&str, u64> =
            listing.iter().map(|m| (m.key.as_str(), m.size)).collect();
        let old = self.old_records(&listing, &mut report)?;
        let mut found: Vec<BackupRecord> = Vec::new();
        let mut accounted: std::collections::HashSet<String> = std::collections::HashSet::new();
        for r in old {
            match (r.status, r.key.as_deref()) {
                (Status::Failed, _) => {
                    report.kept_failures += 1;
                    found.push(r);
                }
                (Status::Success, Some(k)) if present.contains_key(k) => {
                    accounted.insert(k.to_string());
                    if let Some(m) = r.manifest_key.as_deref() {
                        accounted.insert(m.to_string());
                        if !present.contains_key(m) {
                            self.write_manifest(&r)?;
                            report.manifests_restored.push(m.to_string());
                        }
                    }
                    report.from_index += 1;
                    found.push(r);
                }
                (Status::Success, k) => report.dropped.push(format!(
                    "{} ({}/{} on '{}'): its object {} is gone",
                    r.id,
                    r.database,
                    r.backup_type,
                    r.storage,
                    k.unwrap_or("(none)")
                )),
            }
        }
        let manifests: Vec<&crate::storage::ObjectMeta> = listing
            .iter()
            .filter(|m| m.key.ends_with(layout::MANIFEST_SUFFIX) && !accounted.contains(&m.key))
            .collect();
        for meta in manifests {
            let parsed = self
                .storage
                .get_bytes(&meta.key)?
                .and_then(|b| serde_json::from_slice::<BackupRecord>(&b).ok());
            match parsed {
                Some(mut r) if r.server == self.server => {
                    r.storage = self.storage.name().to_string();
                    match r.key.as_deref() {
                        Some(k) if present.contains_key(k) => {
                            accounted.insert(k.to_string());
                            accounted.insert(meta.key.clone());
                            report.adopted.push(format!("{} ({})", r.id, meta.key));
                            found.push(r);
                        }
                        _ => report
                            .unreadable
                            .push(format!("{} (its object is missing)", meta.key)),
                    }
                }
                _ => report.unreadable.push(meta.key.clone()),
            }
        }
        let mut records = Vec::new();
        upsert_all(&mut records, found);
        let index_prefix = layout::index_prefix(&self.server);
        let legacy_key = self.legacy_key();
        for m in &listing {
            let name = m.key.rsplit('/').next().unwrap_or("");
            let ours = m.key.starts_with(&index_prefix)
                || m.key.starts_with(&legacy_key)
                || name.starts_with('.')
                || accounted.contains(&m.key);
            if !ours && !report.unreadable.iter().any(|u| u.starts_with(&m.key)) {
                report.unaccounted.push(m.key.clone());
            }
        }
        // Keep what was there, then write the new layout.
        let stamp = now.format("%Y%m%dT%H%M%SZ");
        for m in listing.iter().filter(|m| {
            (m.key == legacy_key || m.key.starts_with(&index_prefix))
                && !m.key.contains(".bak-")
                && !m.key.rsplit('/').next().unwrap_or("").starts_with('.')
        }) {
            if let Some(old) = self.storage.get_bytes(&m.key)? {
                if m.key == legacy_key && is_stub(&old) {
                    continue;
                }
                self.storage
                    .put_bytes(&format!("{}.bak-{stamp}", m.key), &old)?;
            }
            self.storage.delete(&m.key)?;
        }
        let mut by_db: BTreeMap<String, Vec<BackupRecord>> = BTreeMap::new();
        for r in records {
            by_db.entry(r.database.clone()).or_default().push(r);
        }
        let mut summary = Summary {
            schema_version: INDEX_SCHEMA_VERSION,
            server: self.server.clone(),
            databases: BTreeMap::new(),
        };
        for (db, rs) in &by_db {
            self.write_database(db, rs)?;
            summary
                .databases
                .insert(db.clone(), DatabaseSummary::of(rs));
        }
        self.write_summary(&summary)?;
        self.write_stub()?;
        report.backups = by_db.values().map(Vec::len).sum();
        Ok(report)
    }

    /// What the old index knew: the legacy index, or every database file, each falling back to
    /// its newest `.bak-*` copy that parses when it is damaged (noted in `report.old_index`).
    fn old_records(
        &self,
        listing: &[crate::storage::ObjectMeta],
        report: &mut Rebuild,
    ) -> Result<Vec<BackupRecord>, IndexError> {
        let legacy_key = self.legacy_key();
        let index_prefix = layout::database_index_prefix(&self.server);
        let current: Vec<&str> = listing
            .iter()
            .map(|m| m.key.as_str())
            .filter(|k| {
                *k == legacy_key
                    || (k.starts_with(&index_prefix)
                        && k.ends_with(".json")
                        && !k.rsplit('/').next().unwrap_or("").starts_with('.'))
            })
            .collect();
        let mut sources = Vec::new();
        let mut out = Vec::new();
        for key in current {
            let bytes = self.storage.get_bytes(key)?;
            if key == legacy_key && bytes.as_deref().is_some_and(is_stub) {
                continue;
            }
            let parsed = bytes.and_then(|b| records_of(&b));
            let parsed = match parsed {
                Some(rs) => {
                    sources.push(key.to_string());
                    Some(rs)
                }
                None => {
                    report.unreadable.push(format!("{key} (damaged)"));
                    let mut copies: Vec<&str> = listing
                        .iter()
                        .map(|m| m.key.as_str())
                        .filter(|k| k.starts_with(&format!("{key}.bak-")))
                        .collect();
                    copies.sort_unstable();
                    let mut found = None;
                    for c in copies.into_iter().rev() {
                        if let Some(rs) = self.storage.get_bytes(c)?.and_then(|b| records_of(&b)) {
                            sources.push(c.to_string());
                            found = Some(rs);
                            break;
                        }
                    }
                    found
                }
            };
            out.extend(parsed.unwrap_or_default());
        }
        report.old_index = (!sources.is_empty()).then(|| sources.join(", "));
        Ok(out)
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

/// The summary of `records` (a legacy index read as is).
fn summarize(server: &str, records: Vec<BackupRecord>) -> Summary {
    let mut by_db: BTreeMap<String, Vec<BackupRecord>> = BTreeMap::new();
    for r in records {
        by_db.entry(r.database.clone()).or_default().push(r);
    }
    Summary {
        schema_version: INDEX_SCHEMA_VERSION,
        server: server.to_string(),
        databases: by_db
            .iter()
            .map(|(db, rs)| (db.clone(), DatabaseSummary::of(rs)))
            .collect(),
    }
}

/// What `index rebuild` did, for one server on one storage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Rebuild {
    /// Records in the new index.
    pub backups: usize,
    /// The old index files merged (current ones, or the backup copies used), if any parsed.
    pub old_index: Option<String>,
    /// Successful records kept from the old index (their objects exist).
    pub from_index: usize,
    /// Failed records kept from the old index.
    pub kept_failures: usize,
    /// Backups adopted from manifests the old index did not hold.
    pub adopted: Vec<String>,
    /// Manifests written back for kept records that had lost theirs.
    pub manifests_restored: Vec<String>,
    /// Old records dropped because their object is gone.
    pub dropped: Vec<String>,
    /// Manifests (or indexes) that could not be used, and why.
    pub unreadable: Vec<String>,
    /// Objects under the server's prefix that no record accounts for (left in place).
    pub unaccounted: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStorage;

    fn record(id: &str, db: &str, status: Status) -> BackupRecord {
        BackupRecord::sample(id, db, "daily", "mem", status, Utc::now())
    }

    fn ids(store: &IndexStore) -> Vec<String> {
        store
            .load()
            .unwrap()
            .backups
            .into_iter()
            .map(|r| r.id)
            .collect()
    }

    #[test]
    fn missing_index_is_empty_and_updates_land() {
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        assert!(store.load().unwrap().backups.is_empty());
        store
            .upsert(&[record("a", "shop", Status::Success)])
            .unwrap();
        store
            .upsert(&[record("b", "shop", Status::Failed)])
            .unwrap();
        store
            .upsert(&[record("c", "crm", Status::Success)])
            .unwrap();
        assert_eq!(ids(&store), ["a", "b", "c"]);
        assert!(s.get_bytes("main/index/db/shop.json").unwrap().is_some());
        assert!(s.get_bytes("main/index/db/crm.json").unwrap().is_some());
        let summary = store.summary().unwrap();
        assert_eq!(summary.databases["shop"].records, 2);
        assert!(!summary.databases["shop"].dirty);
        let daily = &summary.databases["shop"].types["daily"];
        assert_eq!(daily.last_run[0].id, "b");
        assert_eq!(daily.last_success.as_ref().unwrap().id, "a");
    }

    /// One database's damaged file fails updates of that database, names the fix, and leaves
    /// the file as it was; other databases are not affected.
    #[test]
    fn damaged_index_is_reported_and_left_alone() {
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        store
            .upsert(&[record("a", "shop", Status::Success)])
            .unwrap();
        let damaged = b"{\"schema_version\": 2, \"backups\": [tru";
        s.put_bytes("main/index/db/shop.json", damaged).unwrap();
        let e = store
            .upsert(&[record("b", "shop", Status::Success)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("damaged") && e.contains("index rebuild"), "{e}");
        assert!(e.contains("main/index/db/shop.json"), "{e}");
        assert_eq!(
            s.get_bytes("main/index/db/shop.json").unwrap().unwrap(),
            damaged
        );
        store
            .upsert(&[record("c", "crm", Status::Success)])
            .unwrap();
        assert_eq!(store.read_database("crm").unwrap()[0].id, "c");
    }

    #[test]
    fn newer_schema_is_refused() {
        for key in ["main/index.json", "main/index/summary.json"] {
            let s = MemoryStorage::new("mem");
            s.put_bytes(key, b"{\"schema_version\": 99}").unwrap();
            let e = IndexStore::new(&s, "main").load().unwrap_err().to_string();
            assert!(e.contains("upgrade sqlguard"), "{key}: {e}");
        }
    }

    /// A legacy (schema 1) index is read as it is, and moved to the current layout by the
    /// first update, which keeps the old file beside it.
    #[test]
    fn legacy_index_is_read_then_migrated_on_first_write() {
        let s = MemoryStorage::new("mem");
        let mut legacy = Index::empty("main");
        legacy.upsert(record("a", "shop", Status::Success));
        legacy.upsert(record("b", "crm", Status::Failed));
        s.put_bytes("main/index.json", &serde_json::to_vec(&legacy).unwrap())
            .unwrap();
        let store = IndexStore::new(&s, "main");
        assert_eq!(ids(&store), ["a", "b"]);
        assert_eq!(store.database("shop").unwrap()[0].id, "a");
        let (summary, records) = store.snapshot().unwrap();
        assert_eq!(summary.databases.len(), 2);
        assert_eq!(records.unwrap().len(), 2);
        store
            .upsert(&[record("c", "shop", Status::Success)])
            .unwrap();
        assert_eq!(ids(&store), ["a", "b", "c"]);
        let kept = s
            .keys()
            .into_iter()
            .find(|k| k.starts_with("main/index.json.bak-"))
            .expect("the legacy index is kept");
        let kept: Index = serde_json::from_slice(&s.get_bytes(&kept).unwrap().unwrap()).unwrap();
        assert_eq!(kept, legacy);
        assert_eq!(store.read_database("crm").unwrap()[0].id, "b");
        assert!(store.snapshot().unwrap().1.is_none());
        // What an older binary reads there now: a newer schema, which it refuses.
        let stub = s.get_bytes("main/index.json").unwrap().unwrap();
        let probe: VersionProbe = serde_json::from_slice(&stub).unwrap();
        assert_eq!(probe.schema_version, INDEX_SCHEMA_VERSION);
        assert!(serde_json::from_slice::<Index>(&stub).is_err());
        // An older binary that wrote a schema 1 index since is the truth again.
        let mut again = Index::empty("main");
        again.upsert(record("x", "shop", Status::Success));
        s.put_bytes("main/index.json", &serde_json::to_vec(&again).unwrap())
            .unwrap();
        assert_eq!(ids(&store), ["x"]);
        store
            .upsert(&[record("y", "shop", Status::Success)])
            .unwrap();
        assert_eq!(ids(&store), ["x", "y"]);
        assert!(store.read_database("crm").unwrap().is_empty());
    }

    /// The summary is a cache: a dirty entry (an update was cut short) and a missing or
    /// damaged summary are recomputed from the database files.
    #[test]
    fn summary_is_recomputed_when_dirty_missing_or_damaged() {
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        store
            .upsert(&[
                record("a", "shop", Status::Success),
                record("b", "crm", Status::Success),
            ])
            .unwrap();
        let good = store.summary().unwrap();
        // An update that stopped after marking the summary dirty and writing the file.
        let mut dirty = good.clone();
        dirty.databases.get_mut("shop").unwrap().dirty = true;
        s.put_bytes(
            "main/index/summary.json",
            &serde_json::to_vec(&dirty).unwrap(),
        )
        .unwrap();
        let mut shop = store.read_database("shop").unwrap();
        shop.push(record("z", "shop", Status::Failed));
        store.write_database("shop", &shop).unwrap();
        let read = store.summary().unwrap();
        assert_eq!(read.databases["shop"].records, 2);
        assert!(!read.databases["shop"].dirty);
        for bytes in [None, Some(&b"{ damaged"[..])] {
            match bytes {
                None => s.delete("main/index/summary.json").unwrap(),
                Some(b) => s.put_bytes("main/index/summary.json", b).unwrap(),
            }
            let again = store.summary().unwrap();
            assert_eq!(again.databases["shop"].records, 2);
            assert_eq!(again.databases["crm"], good.databases["crm"]);
        }
    }

    #[test]
    fn rebuild_recreates_the_index_from_manifests() {
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        for id in ["a", "b"] {
            let r = record(id, "shop", Status::Success);
            s.put_bytes(r.key.as_ref().unwrap(), b"data").unwrap();
            store.write_manifest(&r).unwrap();
            store.upsert(&[r]).unwrap();
        }
        let orphan = record("c", "shop", Status::Success);
        store.write_manifest(&orphan).unwrap();
        let before = store.load().unwrap();
        s.put_bytes("main/index/db/shop.json", b"garbage").unwrap();
        s.put_bytes("main/index/summary.json", b"garbage").unwrap();
        let report = store.rebuild(Utc::now()).unwrap();
        assert_eq!(store.load().unwrap().backups, before.backups);
        assert_eq!(report.adopted.len(), 2, "{report:?}");
        assert_eq!(report.unreadable.len(), 2, "{report:?}");
        assert!(s
            .keys()
            .iter()
            .any(|k| k.starts_with("main/index/db/shop.json.bak-")));
    }

    /// Issue 10, item 14: rebuild merges what the old index knew. An intact backup whose
    /// manifest is gone, failed records and verification results survive; a damaged index
    /// falls back to its newest readable backup copy; what nothing accounts for is listed.
    #[test]
    fn rebuild_keeps_what_the_old_index_knew() {
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        let mut kept = record("a", "shop", Status::Success);
        kept.verification = Some(Verification {
            verified_at: Utc::now(),
            ok: true,
            restore_tested: true,
            error: None,
        });
        s.put_bytes(kept.key.as_ref().unwrap(), b"data").unwrap();
        let failed = record("b", "shop", Status::Failed);
        let gone = record("c", "shop", Status::Success);
        let adopted = record("d", "crm", Status::Success);
        s.put_bytes(adopted.key.as_ref().unwrap(), b"data").unwrap();
        store.write_manifest(&adopted).unwrap();
        store
            .upsert(&[kept.clone(), failed.clone(), gone.clone()])
            .unwrap();
        s.put_bytes("main/stray.sql.zst", b"?").unwrap();
        // The current file is damaged; its last good copy is what the old index knew.
        let key = "main/index/db/shop.json";
        let good = s.get_bytes(key).unwrap().unwrap();
        s.put_bytes(&format!("{key}.bak-20261101T000000Z"), b"older garbage")
            .unwrap();
        s.put_bytes(&format!("{key}.bak-20261128T000000Z"), &good)
            .unwrap();
        s.put_bytes(key, b"{ damaged").unwrap();
        let report = store.rebuild(Utc::now()).unwrap();
        assert_eq!(
            report.old_index.as_deref(),
            Some("main/index/db/shop.json.bak-20261128T000000Z")
        );
        let ids: Vec<String> = store
            .load()
            .unwrap()
            .backups
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids.len(), 3, "{ids:?}");
        for id in ["a", "b", "d"] {
            assert!(ids.contains(&id.to_string()), "{id} missing: {ids:?}");
        }
        let a = store
            .load()
            .unwrap()
            .backups
            .into_iter()
            .find(|r| r.id == "a")
            .unwrap();
        assert!(a.verification.is_some(), "verification lost");
        assert_eq!(
            report.manifests_restored,
            vec![kept.manifest_key.clone().unwrap()]
        );
        assert!(s
            .get_bytes(kept.manifest_key.as_ref().unwrap())
            .unwrap()
            .is_some());
        assert_eq!(report.kept_failures, 1);
        assert_eq!(report.dropped.len(), 1, "{report:?}");
        assert_eq!(report.unaccounted, vec!["main/stray.sql.zst".to_string()]);
    }
}
