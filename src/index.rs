//! The backup index and the per-backup manifests: the single source of truth for list, prune,
//! report and metrics.
//!
//! One index per server and storage, at `<server>/index.json`, with one [`BackupRecord`] per
//! backup copy held (or attempted) there; a manifest beside each object holds the same record so
//! that [`IndexStore::rebuild`] can recreate a lost index. Updates are read-merge-write cycles
//! under the storage's lock, written atomically, so concurrent runs never lose a record. A damaged
//! index is an error naming the file and the fix, never silently reset.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::compress::Algorithm;
use crate::layout;
use crate::storage::{Storage, StorageError};

/// Version of the index document and of the record shape in JSON output.
pub const SCHEMA_VERSION: u32 = 1;

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

/// The index document.
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
        self.backups
            .retain(|r| !(r.id == record.id && r.storage == record.storage));
        self.backups.push(record);
        self.backups.sort_by(|a, b| {
            a.started_at
                .cmp(&b.started_at)
                .then_with(|| a.id.cmp(&b.id))
        });
    }
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
    #[error("index {key} on storage '{storage}' has schema version {found}, newer than this sqlguard understands ({SCHEMA_VERSION}); upgrade sqlguard")]
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

impl<'a> IndexStore<'a> {
    /// The index of `server` on `storage`.
    pub fn new(storage: &'a dyn Storage, server: &str) -> Self {
        IndexStore {
            storage,
            server: server.to_string(),
        }
    }

    fn key(&self) -> String {
        layout::index_key(&self.server)
    }

    fn damaged(&self, message: String) -> IndexError {
        IndexError::Damaged {
            storage: self.storage.name().to_string(),
            location: self.storage.location(),
            key: self.key(),
            server: self.server.clone(),
            message,
        }
    }

    /// Reads the index; a missing index is empty.
    ///
    /// Fails when the storage cannot be read, when the document does not parse (`Damaged`) or
    /// when it was written by a newer sqlguard (`Newer`).
    pub fn load(&self) -> Result<Index, IndexError> {
        let Some(bytes) = self.storage.get_bytes(&self.key())? else {
            return Ok(Index::empty(&self.server));
        };
        let probe: VersionProbe =
            serde_json::from_slice(&bytes).map_err(|e| self.damaged(e.to_string()))?;
        if probe.schema_version > SCHEMA_VERSION {
            return Err(IndexError::Newer {
                storage: self.storage.name().to_string(),
                key: self.key(),
                found: probe.schema_version,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| self.damaged(e.to_string()))
    }

    /// Reads the index, lets `change` modify it, and writes it back atomically, all under the
    /// storage's lock so that concurrent runs serialize. Returns the index as written.
    ///
    /// Fails, writing nothing, when the index cannot be read or is damaged; fails when it cannot
    /// be written.
    pub fn update(&self, change: impl FnOnce(&mut Index)) -> Result<Index, IndexError> {
        let _lock = self
            .storage
            .lock(&format!("{}index", layout::server_prefix(&self.server)))?;
        let mut index = self.load()?;
        change(&mut index);
        self.write(&index)?;
        Ok(index)
    }

    fn write(&self, index: &Index) -> Result<(), IndexError> {
        let mut bytes = serde_json::to_vec_pretty(index).expect("index serializes");
        bytes.push(b'\n');
        self.storage.put_bytes(&self.key(), &bytes)?;
        Ok(())
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

    /// Rebuilds the index from what the storage holds, merging what the old index knew: the
    /// current index when it parses, else the newest `index.json.bak-*` copy that parses. Every
    /// old record whose object still exists is kept as it was (with its verification), every
    /// failed record is kept (history), a manifest whose backup the old index did not know is
    /// adopted when its object exists, a kept record whose manifest is missing gets it back, and
    /// whatever cannot be accounted for is listed, never deleted. The old index is kept beside
    /// it as `index.json.bak-<time>`.
    ///
    /// Fails when the storage cannot be listed, read or written.
    pub fn rebuild(&self, now: DateTime<Utc>) -> Result<Rebuild, IndexError> {
        let _lock = self
            .storage
            .lock(&format!("{}index", layout::server_prefix(&self.server)))?;
        let mut report = Rebuild::default();
        let listing = self.storage.list(&layout::server_prefix(&self.server))?;
        let present: std::collections::HashMap<&str, u64> =
            listing.iter().map(|m| (m.key.as_str(), m.size)).collect();
        let old = self.old_index(&listing, &mut report)?;
        let mut index = Index::empty(&self.server);
        let mut accounted: std::collections::HashSet<String> = std::collections::HashSet::new();
        for r in old.map(|i| i.backups).unwrap_or_default() {
            match (r.status, r.key.as_deref()) {
                (Status::Failed, _) => {
                    report.kept_failures += 1;
                    index.upsert(r);
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
                    index.upsert(r);
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
                            index.upsert(r);
                        }
                        _ => report
                            .unreadable
                            .push(format!("{} (its object is missing)", meta.key)),
                    }
                }
                _ => report.unreadable.push(meta.key.clone()),
            }
        }
        let index_key = self.key();
        for m in &listing {
            let name = m.key.rsplit('/').next().unwrap_or("");
            let ours = m.key == index_key
                || m.key.starts_with(&format!("{index_key}.bak-"))
                || name.starts_with('.')
                || accounted.contains(&m.key);
            if !ours && !report.unreadable.iter().any(|u| u.starts_with(&m.key)) {
                report.unaccounted.push(m.key.clone());
            }
        }
        if let Some(old) = self.storage.get_bytes(&index_key)? {
            let backup = format!("{index_key}.bak-{}", now.format("%Y%m%dT%H%M%SZ"));
            self.storage.put_bytes(&backup, &old)?;
        }
        self.write(&index)?;
        report.backups = index.backups.len();
        Ok(report)
    }

    /// The index to merge: the current one when it parses, else the newest backup copy that
    /// does (noted in `report.old_index`).
    fn old_index(
        &self,
        listing: &[crate::storage::ObjectMeta],
        report: &mut Rebuild,
    ) -> Result<Option<Index>, IndexError> {
        match self.load() {
            Ok(i) => {
                report.old_index = Some(self.key());
                return Ok(Some(i));
            }
            Err(IndexError::Storage(e)) => return Err(IndexError::Storage(e)),
            Err(e) => report.unreadable.push(format!("{} ({e})", self.key())),
        }
        let prefix = format!("{}.bak-", self.key());
        let mut copies: Vec<&str> = listing
            .iter()
            .map(|m| m.key.as_str())
            .filter(|k| k.starts_with(&prefix))
            .collect();
        copies.sort_unstable();
        for k in copies.into_iter().rev() {
            if let Some(i) = self
                .storage
                .get_bytes(k)?
                .and_then(|b| serde_json::from_slice::<Index>(&b).ok())
                .filter(|i| i.schema_version <= SCHEMA_VERSION)
            {
                report.old_index = Some(k.to_string());
                return Ok(Some(i));
            }
        }
        Ok(None)
    }
}

/// What `index rebuild` did, for one server on one storage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Rebuild {
    /// Records in the new index.
    pub backups: usize,
    /// The old index merged (the current one, or the backup copy used), if any parsed.
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

    #[test]
    fn missing_index_is_empty_and_updates_land() {
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        assert!(store.load().unwrap().backups.is_empty());
        store
            .update(|i| i.upsert(record("a", "shop", Status::Success)))
            .unwrap();
        store
            .update(|i| i.upsert(record("b", "shop", Status::Failed)))
            .unwrap();
        let ids: Vec<_> = store
            .load()
            .unwrap()
            .backups
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["a", "b"]);
    }

    #[test]
    fn damaged_index_is_reported_and_left_alone() {
        let s = MemoryStorage::new("mem");
        s.put_bytes(
            "main/index.json",
            b"{\"schema_version\": 1, \"backups\": [tru",
        )
        .unwrap();
        let store = IndexStore::new(&s, "main");
        let e = store.update(|i| i.backups.clear()).unwrap_err().to_string();
        assert!(e.contains("damaged") && e.contains("index rebuild"), "{e}");
        assert_eq!(
            s.get_bytes("main/index.json").unwrap().unwrap(),
            b"{\"schema_version\": 1, \"backups\": [tru"
        );
    }

    #[test]
    fn newer_schema_is_refused() {
        let s = MemoryStorage::new("mem");
        s.put_bytes("main/index.json", b"{\"schema_version\": 99}")
            .unwrap();
        let e = IndexStore::new(&s, "main").load().unwrap_err().to_string();
        assert!(e.contains("upgrade sqlguard"), "{e}");
    }

    #[test]
    fn rebuild_recreates_the_index_from_manifests() {
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        for id in ["a", "b"] {
            let r = record(id, "shop", Status::Success);
            s.put_bytes(r.key.as_ref().unwrap(), b"data").unwrap();
            store.write_manifest(&r).unwrap();
            store.update(|i| i.upsert(r)).unwrap();
        }
        let orphan = record("c", "shop", Status::Success);
        store.write_manifest(&orphan).unwrap();
        let before = store.load().unwrap();
        s.put_bytes("main/index.json", b"garbage").unwrap();
        let report = store.rebuild(Utc::now()).unwrap();
        assert_eq!(store.load().unwrap().backups, before.backups);
        assert_eq!(report.adopted.len(), 2, "{report:?}");
        assert_eq!(report.unreadable.len(), 2, "{report:?}");
        assert!(s
            .keys()
            .iter()
            .any(|k| k.starts_with("main/index.json.bak-")));
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
            .update(|i| {
                i.upsert(kept.clone());
                i.upsert(failed.clone());
                i.upsert(gone.clone());
            })
            .unwrap();
        s.put_bytes("main/stray.sql.zst", b"?").unwrap();
        // The current index is damaged; its last good copy is what the old index knew.
        let good = s.get_bytes("main/index.json").unwrap().unwrap();
        s.put_bytes("main/index.json.bak-20261101T000000Z", b"older garbage")
            .unwrap();
        s.put_bytes("main/index.json.bak-20261128T000000Z", &good)
            .unwrap();
        s.put_bytes("main/index.json", b"{ damaged").unwrap();
        let report = store.rebuild(Utc::now()).unwrap();
        assert_eq!(
            report.old_index.as_deref(),
            Some("main/index.json.bak-20261128T000000Z")
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
