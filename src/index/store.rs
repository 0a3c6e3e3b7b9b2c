//! Reading and updating one server's index on one storage (see the module docs of
//! [`crate::index`] for the layout).

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use serde::Deserialize;

use super::{
    month_of, partition_of, sort_records, upsert_all, BackupRecord, DatabaseIndex, DatabaseSummary,
    Index, IndexError, Summary, VersionProbe, Versioned, INDEX_SCHEMA_VERSION, SCHEMA_VERSION,
    SUMMARY_REVISION,
};
use crate::layout;
use crate::storage::Storage;

/// Reads and updates the index of one server on one storage.
#[derive(Debug)]
pub struct IndexStore<'a> {
    pub(super) storage: &'a dyn Storage,
    pub(super) server: String,
}

/// Only what identifies an index file: its database and partition.
#[derive(Deserialize)]
struct FileProbe {
    database: String,
}

/// The records an update reads and may change: by database, the partitions.
pub type Scope = BTreeMap<String, BTreeSet<String>>;

impl<'a> IndexStore<'a> {
    /// The index of `server` on `storage`.
    pub fn new(storage: &'a dyn Storage, server: &str) -> Self {
        IndexStore {
            storage,
            server: server.to_string(),
        }
    }

    pub(super) fn legacy_key(&self) -> String {
        layout::index_key(&self.server)
    }

    pub(super) fn summary_key(&self) -> String {
        layout::summary_key(&self.server)
    }

    pub(super) fn partition_key(&self, database: &str, partition: &str) -> String {
        layout::partition_key(&self.server, database, partition)
    }

    pub(super) fn damaged(&self, key: &str, message: String) -> IndexError {
        IndexError::Damaged {
            storage: self.storage.name().to_string(),
            location: self.storage.location(),
            key: key.to_string(),
            server: self.server.clone(),
            message,
        }
    }

    /// Parses a document of schema `max` or older at `key`. A newer one is refused as newer
    /// whether or not it still parses; the version alone is read only when the whole does
    /// not parse (a prune parses every month file once, not twice).
    fn parse<T: serde::de::DeserializeOwned + Versioned>(
        &self,
        key: &str,
        bytes: &[u8],
        max: u32,
    ) -> Result<T, IndexError> {
        // The whole file checked as UTF-8 once (fast), rather than each string as it is read;
        // a file that is not UTF-8 is read as bytes, for the error to say where.
        let parsed = match std::str::from_utf8(bytes) {
            Ok(text) => serde_json::from_str::<T>(text),
            Err(_) => serde_json::from_slice::<T>(bytes),
        };
        let found = match parsed {
            Ok(doc) if doc.schema_version() <= max => return Ok(doc),
            Ok(doc) => doc.schema_version(),
            Err(e) => match serde_json::from_slice::<VersionProbe>(bytes) {
                Ok(p) if p.schema_version > max => p.schema_version,
                _ => return Err(self.damaged(key, e.to_string())),
            },
        };
        Err(IndexError::Newer {
            storage: self.storage.name().to_string(),
            key: key.to_string(),
            found,
        })
    }

    /// What `<server>/index.json` holds: nothing, the stub of this layout, or a legacy index
    /// (schema 1; written before this layout, or by an older binary since).
    ///
    /// Fails when it cannot be read, or is damaged and no summary says the layout is current.
    pub(super) fn legacy(&self) -> Result<Option<Index>, IndexError> {
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
                self.legacy_holds_the_layout(&key, &i)?;
                Ok(Some(i))
            }
        }
    }

    /// A legacy index beside the current layout is taken as the truth (going back to 0.1 and
    /// returning: 0.1's `index rebuild` wrote it from every manifest, and 0.1's runs since
    /// went on from there). One whose every record is older than a newest success the
    /// layout's summary names, and that lacks it, is an older copy put back: refused, not read
    /// as the whole history (review 30: `restore latest` took an older backup, and the next
    /// backup dropped the newer records).
    fn legacy_holds_the_layout(&self, key: &str, legacy: &Index) -> Result<(), IndexError> {
        let summary_key = self.summary_key();
        let Some(bytes) = self.storage.get_bytes(&summary_key)? else {
            return Ok(());
        };
        // A summary that cannot be read names nothing to hold.
        let Ok(summary) = serde_json::from_slice::<Summary>(&bytes) else {
            return Ok(());
        };
        let held: BTreeSet<(&str, &str)> = legacy
            .backups
            .iter()
            .map(|r| (r.id.as_str(), r.storage.as_str()))
            .collect();
        let newest = legacy.backups.iter().map(|r| r.started_at).max();
        // Successes only: going back to 0.1 keeps failed runs and verifications only up to the
        // upgrade (README), so lacking newer ones is no proof of an older copy.
        let lacking = summary
            .databases
            .values()
            .flat_map(|d| d.types.values())
            .flat_map(|t| t.last_success_per_storage.values())
            .find(|r| {
                !held.contains(&(r.id.as_str(), r.storage.as_str()))
                    && newest.is_none_or(|n| r.started_at > n)
            });
        match lacking {
            Some(r) => Err(self.damaged(
                key,
                format!(
                    "this 0.1 index lacks backup {} of {}, which the current index ({summary_key}) holds: an older copy put back? Move it aside to read the current index, or run `sqlguard index rebuild`",
                    r.id, r.database
                ),
            )),
            None => Ok(()),
        }
    }

    /// Writes the stub that stands where the legacy index was (see the module docs).
    pub(super) fn write_stub(&self) -> Result<(), IndexError> {
        let stub = serde_json::json!({
            "schema_version": INDEX_SCHEMA_VERSION,
            "server": self.server,
            "moved_to": layout::index_prefix(&self.server),
            "note": "this server's index is index/summary.json and index/db/<database>/<YYYY-MM>.json; sqlguard older than 0.2 must not write here (see `sqlguard index --help`)",
        });
        let mut bytes = serde_json::to_vec_pretty(&stub).expect("stub serializes");
        bytes.push(b'\n');
        self.storage.put_bytes(&self.legacy_key(), &bytes)?;
        Ok(())
    }

    /// The summary and, for a legacy index (read whole anyway), its records: what a reader
    /// needs to read records later without asking again which layout this is.
    ///
    /// Fails as [`IndexStore::summary`] does.
    pub fn snapshot(&self) -> Result<(Summary, Option<Vec<BackupRecord>>), IndexError> {
        if let Some(legacy) = self.legacy()? {
            return Ok((
                summarize(&self.server, &legacy.backups),
                Some(legacy.backups),
            ));
        }
        Ok((self.current_summary()?, None))
    }

    /// The summary. Dirty entries are recomputed from their files; a missing or unreadable
    /// summary is recomputed from every index file (or from a legacy index).
    ///
    /// Fails when the storage cannot be read or an index file it needs is damaged.
    pub fn summary(&self) -> Result<Summary, IndexError> {
        Ok(self.snapshot()?.0)
    }

    fn current_summary(&self) -> Result<Summary, IndexError> {
        let key = self.summary_key();
        let parsed = match self.storage.get_bytes(&key)? {
            Some(bytes) => match self.parse::<Summary>(&key, &bytes, INDEX_SCHEMA_VERSION) {
                // A partition that is not a month (`2026-11`) is not one this layout writes:
                // the summary is damaged, and recomputed from the files.
                Ok(s)
                    if s.databases.values().all(|d| {
                        d.partitions.keys().all(|p| {
                            p.len() == 7
                                && p.as_bytes()[4] == b'-'
                                && p.bytes()
                                    .enumerate()
                                    .all(|(i, b)| i == 4 || b.is_ascii_digit())
                        })
                    }) =>
                {
                    Some(s)
                }
                Ok(_) => None,
                Err(e @ IndexError::Newer { .. }) => return Err(e),
                Err(_) => None,
            },
            None => None,
        };
        // A summary that parses but does not list every month file (edited, or an update
        // lost between two writers) would hide a database from list, report and prune: it is
        // recomputed from the files then.
        let parsed = match parsed {
            Some(s) if self.lists_every_file(&s)? => Some(s),
            _ => None,
        };
        let mut summary = match parsed {
            Some(s) => s,
            None => {
                let s = self.recompute_summary()?;
                // The stub stands once a summary was written: none and no file at all is an
                // index lost, not an empty one (review 30: `index/` deleted, every command read
                // no backups, exit 0).
                if s.databases.is_empty() && self.storage.stat(&self.legacy_key())?.is_some() {
                    return Err(self.damaged(
                        &layout::index_prefix(&self.server),
                        format!(
                            "{} says this server's index is here, and neither its summary nor any of its files is left",
                            self.legacy_key()
                        ),
                    ));
                }
                s
            }
        };
        let stale: Vec<(String, bool)> = summary
            .databases
            .iter()
            .filter(|(_, d)| d.stale())
            .map(|(n, d)| (n.clone(), d.dirty))
            .collect();
        for (db, dirty) in stale {
            let records = match self.read_database(&db) {
                Ok(r) => r,
                Err(e) if dirty => return Err(e),
                // Only older than this version (not cut short): what it says still holds, and a
                // damaged file of this database must not stop every other database's reads and
                // updates. It lacks the newer counts until its files can be read.
                Err(_) => continue,
            };
            if records.is_empty() {
                summary.databases.remove(&db);
            } else {
                summary.databases.insert(db, DatabaseSummary::of(&records));
            }
        }
        Ok(summary)
    }

    /// Whether `summary` lists every month file there is (one of a database being changed,
    /// marked dirty, is read from its files anyway).
    fn lists_every_file(&self, summary: &Summary) -> Result<bool, IndexError> {
        let listed: BTreeSet<String> = summary
            .databases
            .iter()
            .flat_map(|(db, d)| d.partitions.keys().map(|p| self.partition_key(db, p)))
            .collect();
        let changing: Vec<String> = summary
            .databases
            .iter()
            .filter(|(_, d)| d.dirty)
            .map(|(db, _)| layout::database_index_dir(&self.server, db))
            .collect();
        Ok(self
            .index_files(&layout::database_index_prefix(&self.server))?
            .iter()
            .all(|k| listed.contains(k) || changing.iter().any(|dir| k.starts_with(dir.as_str()))))
    }

    /// The summary from every index file (listed), when the summary itself is missing or
    /// unreadable. Each file's records are checked to belong there, and counted under their
    /// own database, whatever the file's header says.
    fn recompute_summary(&self) -> Result<Summary, IndexError> {
        let mut by_db: BTreeMap<String, Vec<BackupRecord>> = BTreeMap::new();
        for key in self.index_files(&layout::database_index_prefix(&self.server))? {
            let Some(bytes) = self.storage.get_bytes(&key)? else {
                continue;
            };
            let probe: FileProbe =
                serde_json::from_slice(&bytes).map_err(|e| self.damaged(&key, e.to_string()))?;
            if layout::database_index_dir(&self.server, &probe.database)
                != key[..=key.rfind('/').unwrap_or(0)]
            {
                return Err(self.damaged(
                    &key,
                    format!(
                        "it says it holds database {}, whose files are elsewhere",
                        probe.database
                    ),
                ));
            }
            for r in self.records_in(&key, &bytes)? {
                by_db.entry(r.database.clone()).or_default().push(r);
            }
        }
        // Each copy once across a database's months, as `read_database` reads them.
        for (db, records) in &by_db {
            let mut seen = BTreeSet::new();
            if let Some(r) = records
                .iter()
                .find(|r| !seen.insert((r.id.as_str(), r.storage.as_str())))
            {
                return Err(self.damaged(
                    &layout::database_index_dir(&self.server, db),
                    format!(
                        "backup {} on '{}' is in two of {db}'s month files",
                        r.id, r.storage
                    ),
                ));
            }
        }
        let mut summary = empty_summary(&self.server);
        for (db, mut records) in by_db {
            sort_records(&mut records);
            summary.databases.insert(db, DatabaseSummary::of(&records));
        }
        Ok(summary)
    }

    /// The current index files under `prefix` (not backup copies, not hidden files), sorted.
    /// A link, FIFO or device where the index's files stand fails the read rather than
    /// hiding the records it stands for.
    pub(super) fn index_files(&self, prefix: &str) -> Result<Vec<String>, IndexError> {
        let mut keys: Vec<String> = self
            .storage
            .list_keys_strict(prefix, &|k| layout::is_index_key(&self.server, k))?
            .into_iter()
            .filter(|k| layout::is_index_key(&self.server, k) && layout::bak_base(k).is_none())
            .collect();
        keys.sort_unstable();
        Ok(keys)
    }

    /// The records of `database` (either layout), oldest first; empty when it has none.
    ///
    /// Fails when the storage cannot be read or a file is damaged or newer.
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

    /// The records of `database` in the current layout (every file of it, listed), oldest
    /// first. For readers that know from [`IndexStore::snapshot`] that this is not a legacy
    /// index.
    ///
    /// Fails when the storage cannot be read or a file is damaged or newer.
    pub fn read_database(&self, database: &str) -> Result<Vec<BackupRecord>, IndexError> {
        let keys = self.index_files(&layout::database_index_dir(&self.server, database))?;
        self.read_files(database, keys, &|_| None)
    }

    /// [`IndexStore::read_database`], failing when a file `summary` lists for the database
    /// is not among its files (gone, or hidden by what stands in its place), or holds fewer
    /// records than it counts (rolled back to an older copy, or cut short): for a prune,
    /// which would call those backups unrecorded. Only a prune removes records (one prune
    /// at a time, under the lock), so a file never holds fewer than its summary counts but by
    /// damage, or by a prune beside a dry run, which the second look below tells apart.
    ///
    /// A file that disagrees is checked again against the summary as it is now: a dry run
    /// takes no lock, and a real prune may have removed records (or a whole month) since its
    /// summary was read (review 31: 1 dry run in 7 called such an index damaged).
    pub fn read_summarized(
        &self,
        database: &str,
        summary: &Summary,
    ) -> Result<Vec<BackupRecord>, IndexError> {
        match self.read_against(database, summary) {
            Err(IndexError::Damaged { .. }) => self.read_against(database, &self.snapshot()?.0),
            read => read,
        }
    }

    fn read_against(
        &self,
        database: &str,
        summary: &Summary,
    ) -> Result<Vec<BackupRecord>, IndexError> {
        let keys = self.index_files(&layout::database_index_dir(&self.server, database))?;
        // What the summary counts in each file it lists, each of which must be there.
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for (partition, span) in summary
            .databases
            .get(database)
            .into_iter()
            .flat_map(|d| d.partitions.iter())
        {
            let key = self.partition_key(database, partition);
            if keys.binary_search(&key).is_err() {
                self.missing_partition(summary, database, partition)?;
            }
            counts.insert(key, span.records);
        }
        self.read_files(database, keys, &|key| counts.get(key).copied())
    }

    /// The records of `database`'s files `keys` (sorted), each copy once, oldest first; a file
    /// holding fewer than `counted` says (the summary's count) is damage.
    fn read_files(
        &self,
        database: &str,
        keys: Vec<String>,
        counted: &dyn Fn(&str) -> Option<usize>,
    ) -> Result<Vec<BackupRecord>, IndexError> {
        let mut read = Vec::with_capacity(keys.len());
        for key in &keys {
            let records = self.read_file(key)?;
            if let Some(n) = counted(key).filter(|n| records.len() < *n) {
                return Err(self.damaged(
                    key,
                    format!(
                        "it holds {} records of {database}, and the summary counts {n} (an older copy put back, or cut short)",
                        records.len()
                    ),
                ));
            }
            read.push(records);
        }
        // Gathered once, at their number: records are large to move.
        let mut out = Vec::with_capacity(read.iter().map(Vec::len).sum());
        // Where each file's records end in `out`.
        let mut files = Vec::new();
        for (records, key) in read.into_iter().zip(keys) {
            out.extend(records);
            files.push((out.len(), key));
        }
        // Each copy once across the database's files too (a record copied into another month
        // under another start time): prune keeps and removes by id and storage. Each file has
        // its records once already.
        let mut seen =
            rustc_hash::FxHashSet::with_capacity_and_hasher(out.len(), Default::default());
        for (i, r) in out.iter().enumerate() {
            if !seen.insert((r.id.as_str(), r.storage.as_str())) {
                let key = files.iter().find(|(end, _)| i < *end).map(|(_, k)| k);
                return Err(self.damaged(
                    key.map_or("", String::as_str),
                    format!(
                        "it holds backup {} on '{}', which another month's file of {database} holds too",
                        r.id, r.storage
                    ),
                ));
            }
        }
        drop(seen);
        sort_records(&mut out);
        Ok(out)
    }

    /// Whether the index holds `record` (its id and storage, with its status, object and hash): what a caller whose update
    /// failed reads to learn whether the failure came after the record was written.
    ///
    /// Fails when the index cannot be read.
    pub fn holds(&self, record: &BackupRecord) -> Result<bool, IndexError> {
        let partition = super::partition_of(record.started_at);
        Ok(self
            .read_listed_partition(&record.database, &partition)?
            .iter()
            .any(|r| {
                r.id == record.id
                    && r.storage == record.storage
                    && r.status == record.status
                    && r.key == record.key
                    && r.sha256 == record.sha256
            }))
    }

    /// The records of a partition the summary lists, oldest first: its file must be there (a
    /// file gone from under its summary is a damaged index, not an empty month).
    ///
    /// Fails when the storage cannot be read, the file is damaged or newer, or it is missing.
    pub fn read_listed_partition(
        &self,
        database: &str,
        partition: &str,
    ) -> Result<Vec<BackupRecord>, IndexError> {
        let key = self.partition_key(database, partition);
        match self.storage.get_bytes(&key)? {
            Some(bytes) => self.records_in(&key, &bytes),
            // A prune may have emptied the month since the summary was read: only a summary
            // that still lists it makes the missing file damage.
            None => self.missing_partition(&self.current_summary()?, database, partition),
        }
    }

    /// The records of a partition, read to be rewritten under the lock with `summary` (the
    /// current one): a file the summary lists must be there, or the rewrite would replace the
    /// month's lost history with the change alone.
    fn read_partition_to_update(
        &self,
        summary: &Summary,
        database: &str,
        partition: &str,
    ) -> Result<Vec<BackupRecord>, IndexError> {
        let key = self.partition_key(database, partition);
        match self.storage.get_bytes(&key)? {
            Some(bytes) => self.records_in(&key, &bytes),
            None => self.missing_partition(summary, database, partition),
        }
    }

    /// A partition file that is not there: empty, unless `summary` lists it (damage).
    fn missing_partition(
        &self,
        summary: &Summary,
        database: &str,
        partition: &str,
    ) -> Result<Vec<BackupRecord>, IndexError> {
        let listed = summary
            .databases
            .get(database)
            .is_some_and(|d| d.partitions.contains_key(partition));
        if listed {
            Err(self.damaged(
                &self.partition_key(database, partition),
                format!("the summary lists {partition} of {database}, and its file is missing"),
            ))
        } else {
            Ok(Vec::new())
        }
    }

    fn read_file(&self, key: &str) -> Result<Vec<BackupRecord>, IndexError> {
        match self.storage.get_bytes(key)? {
            Some(bytes) => self.records_in(key, &bytes),
            None => Ok(Vec::new()),
        }
    }

    /// The records of index file `key`, checked to belong there, oldest first.
    fn records_in(&self, key: &str, bytes: &[u8]) -> Result<Vec<BackupRecord>, IndexError> {
        let mut doc: DatabaseIndex = self.parse(key, bytes, INDEX_SCHEMA_VERSION)?;
        // Every record where the layout puts it, once: an update rewrites the file of the
        // record's own database and month, and prune keeps records by id and storage, so a
        // record elsewhere or twice would be updated or removed wrongly.
        let mut seen = BTreeSet::new();
        // A file's records share a database and a month: its place is built once per run of
        // them, not once per record.
        let mut placed: Option<(&str, (i32, u32))> = None;
        for r in &doc.backups {
            let month = month_of(r.started_at);
            let at_home = placed.is_some_and(|(db, m)| db == r.database && m == month);
            if !at_home || r.server != self.server {
                let home = self.partition_key(&r.database, &partition_of(r.started_at));
                if home != key || r.server != self.server {
                    return Err(self.damaged(
                        key,
                        format!(
                            "it holds backup {} of {}/{} started {}, whose place is {home}",
                            r.id, r.server, r.database, r.started_at
                        ),
                    ));
                }
                placed = Some((r.database.as_str(), month));
            }
            if !seen.insert((r.id.as_str(), r.storage.as_str())) {
                return Err(self.damaged(
                    key,
                    format!("it holds backup {} on '{}' twice", r.id, r.storage),
                ));
            }
        }
        sort_records(&mut doc.backups);
        Ok(doc.backups)
    }

    /// Every record, oldest first (reads every index file: O(history)).
    ///
    /// Fails when the storage cannot be read or a file is damaged or newer.
    pub fn load(&self) -> Result<Index, IndexError> {
        if let Some(legacy) = self.legacy()? {
            return Ok(legacy);
        }
        let mut backups = Vec::new();
        for db in self.current_summary()?.databases.keys() {
            backups.extend(self.read_database(db)?);
        }
        sort_records(&mut backups);
        Ok(Index {
            schema_version: SCHEMA_VERSION,
            server: self.server.clone(),
            backups,
        })
    }

    pub(super) fn lock(&self) -> Result<crate::storage::StorageLock, IndexError> {
        Ok(self
            .storage
            .lock(&format!("{}index", layout::server_prefix(&self.server)))?)
    }

    pub(super) fn write_summary(&self, summary: &Summary) -> Result<(), IndexError> {
        let mut bytes = serde_json::to_vec(summary).expect("summary serializes");
        bytes.push(b'\n');
        self.storage.put_bytes(&self.summary_key(), &bytes)?;
        Ok(())
    }

    /// Writes one partition's file (one record per line), or removes it when it has none.
    pub(super) fn write_partition(
        &self,
        database: &str,
        partition: &str,
        records: &[BackupRecord],
    ) -> Result<(), IndexError> {
        let key = self.partition_key(database, partition);
        if records.is_empty() {
            self.storage.delete(&key)?;
            return Ok(());
        }
        let mut out = Vec::with_capacity(records.len() * 800);
        out.extend_from_slice(
            format!(
                "{{\"schema_version\":{INDEX_SCHEMA_VERSION},\"server\":{},\"database\":{},\"partition\":{},\"backups\":[\n",
                serde_json::to_string(&self.server).expect("string serializes"),
                serde_json::to_string(database).expect("string serializes"),
                serde_json::to_string(partition).expect("string serializes"),
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

    /// Writes every record of a server in the current layout (for migration and rebuild):
    /// one file per database and partition, then the summary and the stub.
    pub(super) fn write_all(
        &self,
        records: Vec<BackupRecord>,
        stale: &[&str],
    ) -> Result<usize, IndexError> {
        let mut files: BTreeMap<(String, String), Vec<BackupRecord>> = BTreeMap::new();
        let total = records.len();
        for r in records {
            files
                .entry((r.database.clone(), partition_of(r.started_at)))
                .or_default()
                .push(r);
        }
        let mut by_db: BTreeMap<String, Vec<BackupRecord>> = BTreeMap::new();
        for ((db, p), mut rs) in files {
            sort_records(&mut rs);
            self.write_partition(&db, &p, &rs)?;
            by_db.entry(db).or_default().extend(rs);
        }
        for key in stale {
            self.storage.delete(key)?;
        }
        let mut summary = empty_summary(&self.server);
        for (db, rs) in by_db {
            summary.databases.insert(db, DatabaseSummary::of(&rs));
        }
        self.write_summary(&summary)?;
        self.write_stub()?;
        Ok(total)
    }

    /// Writes `bytes`, the content of index file `key`, as its copy `<key>.bak-<time>`: at `at`,
    /// or the first second after it whose copy is not there yet, so that a second rebuild
    /// within the same second never writes over the copy of what the first one found.
    pub(super) fn keep_copy(
        &self,
        key: &str,
        bytes: &[u8],
        at: chrono::DateTime<Utc>,
    ) -> Result<(), IndexError> {
        let mut at = at;
        loop {
            let copy = format!("{key}.bak-{}", at.format("%Y%m%dT%H%M%SZ"));
            if self.storage.stat(&copy)?.is_none() {
                self.storage.put_bytes(&copy, bytes)?;
                return Ok(());
            }
            at += chrono::Duration::seconds(1);
        }
    }

    /// Moves a legacy index to the current layout (under the lock): its records written anew
    /// (files of databases or months it does not hold are removed: it is the truth), the old
    /// file kept as `index.json.bak-<time>` and the stub in its place. (A new index gets its
    /// stub after its first summary: see [`IndexStore::update`].)
    fn migrate(&self) -> Result<(), IndexError> {
        let Some(legacy) = self.legacy()? else {
            return Ok(());
        };
        let keep: BTreeSet<String> = legacy
            .backups
            .iter()
            .map(|r| self.partition_key(&r.database, &partition_of(r.started_at)))
            .collect();
        // What the current layout held is kept as `.bak-<time>` copies, every file the legacy
        // index replaces or removes: a legacy index put back by mistake loses nothing (`index
        // rebuild` reads the manifests, and the copies stay for a person to compare).
        let now = Utc::now();
        let keep_copy = |key: &str| -> Result<(), IndexError> {
            if let Some(old) = self.storage.get_bytes(key)? {
                self.keep_copy(key, &old, now)?;
            }
            Ok(())
        };
        for key in self.index_files(&layout::database_index_prefix(&self.server))? {
            keep_copy(&key)?;
            if !keep.contains(&key) {
                self.storage.delete(&key)?;
            }
        }
        keep_copy(&self.summary_key())?;
        keep_copy(&self.legacy_key())?;
        self.write_all(legacy.backups, &[])?;
        Ok(())
    }

    /// Changes the records of the partitions in `scope` with `change`, which gets them all (in
    /// one list, oldest first) and may add, change or remove records; a record it adds outside
    /// the scope joins its own partition. Under the storage's lock: the summary marks the
    /// databases dirty first, only their touched files are rewritten, then the summary is
    /// brought up to date (incrementally; from the database's files when that cannot be done)
    /// and written clean.
    ///
    /// Fails, writing nothing, when an index file cannot be read or is damaged; fails when one
    /// cannot be written (a summary left dirty is recomputed by its readers).
    pub fn update(
        &self,
        scope: &Scope,
        change: impl FnOnce(&mut Vec<BackupRecord>),
    ) -> Result<(), IndexError> {
        let _lock = self.lock()?;
        self.migrate()?;
        let mut summary = self.current_summary()?;
        let mut before: BTreeMap<(String, String), Vec<BackupRecord>> = BTreeMap::new();
        for (db, parts) in scope {
            for p in parts {
                before.insert(
                    (db.clone(), p.clone()),
                    self.read_partition_to_update(&summary, db, p)?,
                );
            }
        }
        let mut records: Vec<BackupRecord> = before.values().flatten().cloned().collect();
        change(&mut records);
        let mut after: BTreeMap<(String, String), Vec<BackupRecord>> =
            before.keys().map(|k| (k.clone(), Vec::new())).collect();
        for r in records {
            after
                .entry((r.database.clone(), partition_of(r.started_at)))
                .or_default()
                .push(r);
        }
        // Records moved into a partition outside the scope join what it holds.
        let outside: Vec<(String, String)> = after
            .keys()
            .filter(|k| !before.contains_key(*k))
            .cloned()
            .collect();
        for k in outside {
            let existing = self.read_partition_to_update(&summary, &k.0, &k.1)?;
            let mut merged = existing.clone();
            if let Some(moved) = after.get_mut(&k) {
                upsert_all(&mut merged, std::mem::take(moved));
                *moved = merged;
            }
            before.insert(k, existing);
        }
        for rs in after.values_mut() {
            sort_records(rs);
        }
        let databases: BTreeSet<String> = after.keys().map(|(db, _)| db.clone()).collect();
        // A change that changes nothing writes nothing (on S3, each write is a request).
        let unchanged = after.iter().all(|(k, rs)| before.get(k) == Some(rs))
            && databases.iter().all(|db| {
                summary
                    .databases
                    .get(db)
                    .is_some_and(|e| !e.dirty && e.revision >= SUMMARY_REVISION)
            });
        if unchanged {
            return Ok(());
        }
        for db in &databases {
            summary.databases.entry(db.clone()).or_default().dirty = true;
        }
        self.write_summary(&summary)?;
        // From here on, a failure may come after records landed: said so (`Incomplete`), so
        // that a caller does not take the change for undone.
        let incomplete = |e: IndexError| IndexError::Incomplete(Box::new(e));
        for ((db, p), rs) in &after {
            if before.get(&(db.clone(), p.clone())) != Some(rs) {
                self.write_partition(db, p, rs).map_err(incomplete)?;
            }
        }
        for db in databases {
            let entry = summary.databases.entry(db.clone()).or_default();
            // An older entry whose files could not all be read stays older: what it lacks is not
            // made up by folding this change in.
            let complete = entry.revision >= SUMMARY_REVISION || entry.partitions.is_empty();
            let mut old: Vec<BackupRecord> = Vec::new();
            let mut new: Vec<BackupRecord> = Vec::new();
            for ((d, p), rs) in &after {
                if d != &db {
                    continue;
                }
                old.extend(
                    before
                        .get(&(d.clone(), p.clone()))
                        .into_iter()
                        .flatten()
                        .cloned(),
                );
                new.extend(rs.iter().cloned());
                entry.set_partition(p, rs);
            }
            entry.dirty = false;
            if !entry.apply(&old, &new) {
                *entry = DatabaseSummary::of(&self.read_database(&db).map_err(incomplete)?);
            } else if complete {
                entry.revision = SUMMARY_REVISION;
            }
            if entry.partitions.is_empty() {
                summary.databases.remove(&db);
            }
        }
        summary.schema_version = INDEX_SCHEMA_VERSION;
        summary.server = self.server.clone();
        self.write_summary(&summary).map_err(incomplete)?;
        // A new index's stub, once its summary stands: a stub is then proof that an index was
        // written here, so that one found with no summary and no file is one lost.
        if self
            .storage
            .stat(&self.legacy_key())
            .map_err(|e| incomplete(e.into()))?
            .is_none()
        {
            self.write_stub().map_err(incomplete)?;
        }
        Ok(())
    }

    /// Adds or replaces `records` (by id and storage), each in its database's partition.
    ///
    /// Fails as [`IndexStore::update`] does.
    pub fn upsert(&self, records: &[BackupRecord]) -> Result<(), IndexError> {
        let scope = scope_of(records);
        self.update(&scope, |all| upsert_all(all, records.to_vec()))
    }

    /// Writes the manifest of a successful record beside its object (without an inventory: the
    /// record alone, as `index rebuild` restores a lost manifest).
    pub fn write_manifest(&self, record: &BackupRecord) -> Result<(), IndexError> {
        self.write_manifest_with(record, None)
    }

    /// Writes the manifest of a successful record beside its object, with what the dump holds.
    pub fn write_manifest_with(
        &self,
        record: &BackupRecord,
        inventory: Option<&crate::inventory::Inventory>,
    ) -> Result<(), IndexError> {
        if let Some(key) = &record.manifest_key {
            if let Some(bad) = record.foreign_key(&self.server) {
                return Err(IndexError::ForeignKey(format!(
                    "not writing the manifest of backup {} to '{bad}': it is not a file of that backup (the index was edited or damaged)",
                    record.id
                )));
            }
            let manifest = super::Manifest {
                record: record.clone(),
                inventory: inventory.cloned(),
            };
            let mut bytes = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
            bytes.push(b'\n');
            self.storage.put_bytes(key, &bytes)?;
        }
        Ok(())
    }

    /// Reads the manifest of `record` (`None` when it has none or it is gone).
    ///
    /// Fails, saying why, when the storage cannot be read or the manifest is damaged.
    pub fn read_manifest(&self, record: &BackupRecord) -> Result<Option<super::Manifest>, String> {
        let Some(key) = &record.manifest_key else {
            return Ok(None);
        };
        if let Some(bad) = record.foreign_key(&self.server) {
            return Err(format!(
                "not reading '{bad}' as the manifest of backup {}: it is not a file of that backup (the index was edited or damaged; `sqlguard index rebuild` rebuilds it)",
                record.id
            ));
        }
        let Some(bytes) = self
            .storage
            .get_bytes(key)
            .map_err(|e| format!("reading manifest {key}: {e}"))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("manifest {key} is damaged: {e}"))
    }
}

/// The partitions that hold `records` (or would).
pub fn scope_of<'r>(records: impl IntoIterator<Item = &'r BackupRecord>) -> Scope {
    let mut scope = Scope::new();
    for r in records {
        scope
            .entry(r.database.clone())
            .or_default()
            .insert(partition_of(r.started_at));
    }
    scope
}

pub(super) fn empty_summary(server: &str) -> Summary {
    Summary {
        schema_version: INDEX_SCHEMA_VERSION,
        server: server.to_string(),
        databases: BTreeMap::new(),
    }
}

/// The summary of `records` (a legacy index read as is).
fn summarize(server: &str, records: &[BackupRecord]) -> Summary {
    let mut by_db: BTreeMap<&str, Vec<BackupRecord>> = BTreeMap::new();
    for r in records {
        by_db.entry(&r.database).or_default().push(r.clone());
    }
    let mut summary = empty_summary(server);
    for (db, rs) in by_db {
        summary
            .databases
            .insert(db.to_string(), DatabaseSummary::of(&rs));
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{Status, Verification};
    use crate::storage::memory::MemoryStorage;

    fn record(id: &str, db: &str, status: Status) -> BackupRecord {
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 28, 2, 30, 0).unwrap();
        BackupRecord::sample(id, db, "daily", "mem", status, at)
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

    /// A link, FIFO or socket where a month file or a database's index directory stands
    /// fails every read, naming it: skipped, its records read as never made (a hostile
    /// review's: a FIFO month file left its backups unrecorded, exit 0).
    #[test]
    fn what_stands_where_index_files_belong_fails_the_read() {
        use crate::storage::local::LocalStorage;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let s = LocalStorage::new("local", &root);
        let store = IndexStore::new(&s, "main");
        let mut r = record("a", "shop", Status::Success);
        r.storage = "local".into();
        let mut other = record("b", "crm", Status::Success);
        other.storage = "local".into();
        store.upsert(&[r, other]).unwrap();
        assert_eq!(store.database("shop").unwrap().len(), 1);
        let month = root.join("main/index/db/shop/2026-11.json");
        assert!(month.is_file());
        let saved = dir.path().join("saved.json");
        std::fs::rename(&month, &saved).unwrap();
        for what in ["a FIFO", "a symbolic link", "a socket", "a directory"] {
            match what {
                "a directory" => std::fs::create_dir(&month).unwrap(),
                "a FIFO" => assert!(std::process::Command::new("mkfifo")
                    .arg(&month)
                    .status()
                    .unwrap()
                    .success()),
                "a symbolic link" => std::os::unix::fs::symlink("/etc/hostname", &month).unwrap(),
                _ => drop(std::os::unix::net::UnixListener::bind(&month).unwrap()),
            }
            for e in [
                store.database("shop").unwrap_err(),
                store.load().unwrap_err(),
            ] {
                let e = e.to_string();
                assert!(
                    e.contains("2026-11.json") && e.contains(what),
                    "{what}: {e}"
                );
            }
            // Another database's records are read as before.
            assert_eq!(store.database("crm").unwrap().len(), 1);
            if what == "a directory" {
                std::fs::remove_dir(&month).unwrap();
            } else {
                std::fs::remove_file(&month).unwrap();
            }
        }
        // Put back from an older copy, it holds fewer records than its summary counts.
        std::fs::rename(&saved, &month).unwrap();
        let older = std::fs::read(&month).unwrap();
        let mut late = record("c", "shop", Status::Success);
        late.storage = "local".into();
        store.upsert(&[late]).unwrap();
        let summary = store.snapshot().unwrap().0;
        assert_eq!(store.read_summarized("shop", &summary).unwrap().len(), 2);
        std::fs::write(&month, &older).unwrap();
        let e = store
            .read_summarized("shop", &summary)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("it holds 1 records of shop, and the summary counts 2"),
            "{e}"
        );
        std::fs::rename(&month, &saved).unwrap();
        // Gone altogether, the month file its summary lists is missed by what prune reads.
        let summary = store.snapshot().unwrap().0;
        let e = store
            .read_summarized("shop", &summary)
            .unwrap_err()
            .to_string();
        assert!(e.contains("the summary lists 2026-11 of shop"), "{e}");
        std::fs::rename(&saved, &month).unwrap();
        // A database's directory replaced by a link to a copy elsewhere.
        let copy = dir.path().join("copy");
        std::fs::rename(root.join("main/index/db/shop"), &copy).unwrap();
        std::os::unix::fs::symlink(&copy, root.join("main/index/db/shop")).unwrap();
        let e = store.database("shop").unwrap_err().to_string();
        assert!(
            e.contains("index/db/shop") && e.contains("symbolic link"),
            "{e}"
        );
        // A plain listing still skips them: a backup directory's stray link is no object.
        assert!(s.list_keys("main/index/db/shop/").unwrap().is_empty());
    }

    #[test]
    fn an_update_never_rewrites_a_month_file_gone_from_under_its_summary() {
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        store
            .upsert(&[
                record("a", "shop", Status::Success),
                record("b", "shop", Status::Success),
            ])
            .unwrap();
        let month = "main/index/db/shop/2026-11.json";
        s.delete(month).unwrap();
        let e = store
            .upsert(&[record("c", "shop", Status::Success)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("its file is missing"), "{e}");
        assert!(
            s.get_bytes(month).unwrap().is_none(),
            "the month was rewritten"
        );
    }

    /// The same copy in two months' files (a record copied under another start time) is damage:
    /// named, and `index rebuild` keeps one of them.
    #[test]
    fn a_copy_in_two_months_is_damage_that_rebuild_repairs() {
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        let a = record("a", "shop", Status::Success);
        s.put_bytes(a.key.as_deref().unwrap(), b"x").unwrap();
        store
            .upsert(&[a.clone(), record("b", "shop", Status::Success)])
            .unwrap();
        let mut copy = a.clone();
        copy.started_at -= chrono::Duration::days(400);
        let old = crate::index::partition_of(copy.started_at);
        store.write_partition("shop", &old, &[copy]).unwrap();
        s.delete("main/index/summary.json").unwrap();
        let e = store.read_database("shop").unwrap_err().to_string();
        assert!(e.contains("another month's file of shop"), "{e}");
        // The summary, recomputed from the files, does not count it twice either.
        let e = store.summary().unwrap_err().to_string();
        assert!(e.contains("in two of shop's month files"), "{e}");
        store.rebuild(Utc::now()).unwrap();
        let ids: Vec<String> = store
            .read_database("shop")
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids.iter().filter(|i| *i == "a").count(), 1, "{ids:?}");
    }

    /// A summary that parses but leaves out a database whose files are there is not trusted:
    /// the database is not hidden. A file whose header names another database is damage.
    #[test]
    fn a_summary_that_hides_a_database_is_recomputed() {
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        store
            .upsert(&[
                record("a", "shop", Status::Success),
                record("b", "crm", Status::Success),
            ])
            .unwrap();
        let mut summary = store.summary().unwrap();
        summary.databases.remove("shop");
        store.write_summary(&summary).unwrap();
        assert!(store.summary().unwrap().databases.contains_key("shop"));
        assert_eq!(ids(&store), ["a", "b"]);
        // The header of shop's month names crm.
        let key = "main/index/db/shop/2026-11.json";
        let text = String::from_utf8(s.get_bytes(key).unwrap().unwrap()).unwrap();
        s.put_bytes(
            key,
            text.replace("\"database\":\"shop\"", "\"database\":\"crm\"")
                .as_bytes(),
        )
        .unwrap();
        s.delete("main/index/summary.json").unwrap();
        let e = store.summary().unwrap_err().to_string();
        assert!(e.contains("it says it holds database crm"), "{e}");
    }

    /// An update that changes nothing writes nothing: on S3 every write is a request.
    #[test]
    fn an_update_that_changes_nothing_writes_nothing() {
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        let a = record("a", "shop", Status::Success);
        store
            .upsert(&[a.clone(), record("b", "shop", Status::Success)])
            .unwrap();
        s.fail_put_bytes("main/index", 0);
        store.upsert(std::slice::from_ref(&a)).unwrap();
        store
            .update(&scope_of(std::slice::from_ref(&a)), |_| {})
            .unwrap();
        // The armed failure is still there for the first real change.
        let e = store
            .upsert(&[record("c", "shop", Status::Success)])
            .unwrap_err();
        assert!(e.to_string().contains("main/index"), "{e}");
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
        assert!(s
            .get_bytes("main/index/db/shop/2026-11.json")
            .unwrap()
            .is_some());
        assert!(s
            .get_bytes("main/index/db/crm/2026-11.json")
            .unwrap()
            .is_some());
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
        s.put_bytes("main/index/db/shop/2026-11.json", damaged)
            .unwrap();
        let e = store
            .upsert(&[record("b", "shop", Status::Success)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("damaged") && e.contains("index rebuild"), "{e}");
        assert!(e.contains("main/index/db/shop/2026-11.json"), "{e}");
        assert_eq!(
            s.get_bytes("main/index/db/shop/2026-11.json")
                .unwrap()
                .unwrap(),
            damaged
        );
        store
            .upsert(&[record("c", "crm", Status::Success)])
            .unwrap();
        assert_eq!(store.read_database("crm").unwrap()[0].id, "c");
    }

    /// A month file gone from under its summary is damage, named, not an empty month; a
    /// summary naming partitions that are not months is recomputed from the files.
    #[test]
    fn a_listed_file_that_is_gone_is_damage_and_odd_partitions_are_recomputed() {
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        store
            .upsert(&[record("a", "shop", Status::Success)])
            .unwrap();
        let key = "main/index/db/shop/2026-11.json";
        let kept = s.get_bytes(key).unwrap().unwrap();
        s.delete(key).unwrap();
        let e = store
            .read_listed_partition("shop", "2026-11")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("its file is missing") && e.contains("index rebuild"),
            "{e}"
        );
        s.put_bytes(key, &kept).unwrap();
        let summary = String::from_utf8(s.get_bytes("main/index/summary.json").unwrap().unwrap())
            .unwrap()
            .replace("\"2026-11\"", "\"../../crm/2026-11\"");
        assert!(summary.contains("../../crm/2026-11"), "{summary}");
        s.put_bytes("main/index/summary.json", summary.as_bytes())
            .unwrap();
        let (summary, _) = store.snapshot().unwrap();
        assert_eq!(
            summary.databases["shop"]
                .partitions
                .keys()
                .collect::<Vec<_>>(),
            ["2026-11"]
        );
    }

    #[test]
    fn newer_schema_is_refused() {
        for key in ["main/index.json", "main/index/summary.json"] {
            let s = MemoryStorage::new("mem");
            s.put_bytes(key, b"{\"schema_version\": 99}").unwrap();
            let e = IndexStore::new(&s, "main").load().unwrap_err().to_string();
            assert!(e.contains("upgrade sqlguard"), "{key}: {e}");
        }
        // A newer document whose shape this version still parses is newer all the same.
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        store
            .upsert(&[record("a", "shop", Status::Success)])
            .unwrap();
        let month = store.partition_key("shop", "2026-11");
        let newer = |key: &str| {
            let text = String::from_utf8(s.get_bytes(key).unwrap().unwrap()).unwrap();
            let bumped = text.replacen(
                &format!("\"schema_version\":{INDEX_SCHEMA_VERSION}"),
                "\"schema_version\":99",
                1,
            );
            assert_ne!(bumped, text, "{key}");
            s.put_bytes(key, bumped.as_bytes()).unwrap();
        };
        newer(&month);
        let e = store.read_database("shop").unwrap_err().to_string();
        assert!(e.contains("upgrade sqlguard"), "{month}: {e}");
        newer(&store.summary_key());
        let e = store.summary().unwrap_err().to_string();
        assert!(e.contains("upgrade sqlguard"), "summary: {e}");
    }

    /// What prune reads is checked against the summary as it is now when the one it read
    /// first disagrees: a real prune removing records (or a whole month) beside a dry run is
    /// no damage (review 31).
    #[test]
    fn a_prune_beside_a_read_is_not_damage() {
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        let mut old = record("a", "shop", Status::Success);
        old.started_at -= chrono::Duration::days(31);
        let records = [
            old,
            record("b", "shop", Status::Success),
            record("c", "shop", Status::Success),
        ];
        store.upsert(&records).unwrap();
        let before = store.snapshot().unwrap().0;
        assert_eq!(before.databases["shop"].partitions.len(), 2);
        store
            .update(&scope_of(&records), |rs| rs.retain(|r| r.id == "c"))
            .unwrap();
        let read = store.read_summarized("shop", &before).unwrap();
        assert_eq!(
            read.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["c"]
        );
        assert!(store.read_against("shop", &before).is_err());
    }

    /// A new index has no stub until its first summary stands; then the stub with neither the
    /// summary nor any file beside it is an index lost, not an empty one (review 30: `index/`
    /// deleted, list, report and prune read no backups, exit 0).
    #[test]
    fn an_index_gone_from_beside_its_stub_is_damage() {
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        assert!(store.snapshot().unwrap().0.databases.is_empty());
        s.fail_put_bytes("summary", 0);
        assert!(store
            .upsert(&[record("a", "shop", Status::Success)])
            .is_err());
        assert!(s.get_bytes("main/index.json").unwrap().is_none());
        store
            .upsert(&[record("a", "shop", Status::Success)])
            .unwrap();
        assert!(s.get_bytes("main/index.json").unwrap().is_some());
        for k in s.keys() {
            if k.starts_with("main/index/") {
                s.delete(&k).unwrap();
            }
        }
        let e = store.snapshot().unwrap_err().to_string();
        assert!(
            e.contains("neither its summary nor any of its files is left"),
            "{e}"
        );
    }

    /// A 0.1 index put back beside the layout that every record of is older than the newest
    /// success the layout holds, and that lacks it, is refused (review 30: read as the whole
    /// history, `restore latest` took older data and the next backup dropped newer records);
    /// one that went on past it (0.1 ran since going back) is the truth.
    #[test]
    fn an_older_legacy_index_put_back_beside_the_layout_is_refused() {
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        let day = chrono::Duration::days(1);
        let mut old = record("a", "shop", Status::Success);
        old.started_at -= day;
        let mut legacy = Index::empty("main");
        legacy.upsert(old);
        let bytes = serde_json::to_vec(&legacy).unwrap();
        s.put_bytes("main/index.json", &bytes).unwrap();
        store
            .upsert(&[record("b", "shop", Status::Success)])
            .unwrap();
        s.put_bytes("main/index.json", &bytes).unwrap();
        let e = store.snapshot().unwrap_err().to_string();
        assert!(e.contains("this 0.1 index lacks backup b of shop"), "{e}");
        assert!(store.load().is_err());
        let mut later = record("c", "shop", Status::Success);
        later.started_at += day;
        legacy.upsert(later);
        s.put_bytes("main/index.json", &serde_json::to_vec(&legacy).unwrap())
            .unwrap();
        assert_eq!(ids(&store), ["a", "c"]);
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
        // What that replaced is kept, never only deleted: crm's file, and shop's as it was.
        let copies: Vec<String> = s
            .keys()
            .into_iter()
            .filter(|k| k.starts_with("main/index/db/") && k.contains(".json.bak-"))
            .collect();
        assert!(
            copies.iter().any(|k| k.starts_with("main/index/db/crm/"))
                && copies.iter().any(|k| k.starts_with("main/index/db/shop/")),
            "{copies:?}"
        );
    }

    /// A summary an older version wrote lacks what was added since (the failed verifications):
    /// readers recompute it from the files, and the next update writes it whole.
    #[test]
    fn an_older_summary_is_recomputed_and_rewritten() {
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        let mut failed = record("a", "shop", Status::Success);
        failed.verification = Some(Box::new(Verification {
            verified_at: Utc::now(),
            ok: false,
            restore_tested: false,
            error: Some("sha256 mismatch".into()),
            restore_test: None,
        }));
        store.upsert(&[failed]).unwrap();
        let good = store.summary().unwrap();
        assert_eq!(
            good.databases["shop"].types["daily"].failed_verifications["mem"],
            1
        );
        // As an older version wrote it: no revision, no count.
        let mut old = serde_json::to_value(&good).unwrap();
        let shop = &mut old["databases"]["shop"];
        shop.as_object_mut().unwrap().remove("revision");
        shop["types"]["daily"]
            .as_object_mut()
            .unwrap()
            .remove("failed_verifications");
        s.put_bytes(
            "main/index/summary.json",
            &serde_json::to_vec(&old).unwrap(),
        )
        .unwrap();
        assert_eq!(store.summary().unwrap(), good);
        store
            .upsert(&[record("b", "crm", Status::Success)])
            .unwrap();
        let written: Summary =
            serde_json::from_slice(&s.get_bytes("main/index/summary.json").unwrap().unwrap())
                .unwrap();
        assert_eq!(written.databases["shop"], good.databases["shop"]);
    }

    /// An older entry whose files are damaged does not stop the other databases: reads and
    /// updates go on with it as it was, and it stays older until its files can be read.
    #[test]
    fn a_damaged_older_entry_does_not_stop_the_others() {
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        store
            .upsert(&[
                record("a", "shop", Status::Success),
                record("b", "crm", Status::Success),
            ])
            .unwrap();
        let mut old = serde_json::to_value(store.summary().unwrap()).unwrap();
        for db in ["shop", "crm"] {
            old["databases"][db]
                .as_object_mut()
                .unwrap()
                .remove("revision");
        }
        s.put_bytes(
            "main/index/summary.json",
            &serde_json::to_vec(&old).unwrap(),
        )
        .unwrap();
        s.put_bytes("main/index/db/crm/2026-11.json", b"{\"garbage")
            .unwrap();
        let read = store.summary().unwrap();
        assert_eq!(read.databases["crm"].revision, 0);
        assert_eq!(read.databases["shop"].revision, SUMMARY_REVISION);
        store
            .upsert(&[record("c", "shop", Status::Success)])
            .unwrap();
        let read = store.summary().unwrap();
        assert_eq!(read.databases["shop"].records, 2);
        assert_eq!(read.databases["crm"].revision, 0);
        // An update that needs the damaged file still refuses it.
        let dirty = store.update(&scope_of([&record("b", "crm", Status::Success)]), |_| {});
        assert!(
            dirty.is_err(),
            "the damaged file is still refused where it is needed"
        );
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
        store.write_partition("shop", "2026-11", &shop).unwrap();
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

    /// The incrementally kept summary always equals the summary of every record, through
    /// additions, verifications, removals (of named and unnamed copies) and moves, across
    /// months and storages.
    #[test]
    fn the_kept_summary_equals_the_summary_of_all_records() {
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        let mut rng = fastrand::Rng::with_seed(7);
        let base = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 9, 1, 0, 0, 0).unwrap();
        let mut n = 0;
        for round in 0..300 {
            let all = store.load().unwrap().backups;
            match rng.u8(..10) {
                0..=4 => {
                    n += 1;
                    let status = if rng.u8(..4) == 0 {
                        Status::Failed
                    } else {
                        Status::Success
                    };
                    let mut r = BackupRecord::sample(
                        &format!("r{n:04}"),
                        ["shop", "crm"][rng.usize(..2)],
                        ["daily", "hourly"][rng.usize(..2)],
                        ["mem", "s3"][rng.usize(..2)],
                        status,
                        base + chrono::Duration::hours(rng.i64(0..24 * 90)),
                    );
                    r.compressed_bytes = rng.u64(1..1000);
                    store.upsert(&[r]).unwrap();
                }
                5..=6 if !all.is_empty() => {
                    let mut r = all[rng.usize(..all.len())].clone();
                    r.verification = Some(Box::new(Verification {
                        verified_at: base + chrono::Duration::hours(24 * 100 + round),
                        ok: rng.bool(),
                        restore_tested: rng.bool(),
                        error: None,
                        restore_test: rng.bool().then(|| crate::index::RestoreTest {
                            tested_at: base + chrono::Duration::hours(24 * 100 + round),
                            ok: rng.bool(),
                            duration_seconds: 1.5,
                            error: None,
                        }),
                    }));
                    store.upsert(&[r]).unwrap();
                }
                7..=8 if !all.is_empty() => {
                    let gone = all[rng.usize(..all.len())].clone();
                    store
                        .update(&scope_of([&gone]), |rs| {
                            rs.retain(|r| !(r.id == gone.id && r.storage == gone.storage))
                        })
                        .unwrap();
                }
                _ if !all.is_empty() => {
                    // A record moved to another month (its start corrected).
                    let old = all[rng.usize(..all.len())].clone();
                    let mut moved = old.clone();
                    moved.started_at = base + chrono::Duration::hours(rng.i64(0..24 * 90));
                    store
                        .update(&scope_of([&old]), |rs| {
                            rs.retain(|r| !(r.id == old.id && r.storage == old.storage));
                            rs.push(moved);
                        })
                        .unwrap();
                }
                _ => {}
            }
            let kept = store.summary().unwrap();
            let all = store.load().unwrap().backups;
            let mut by_db: BTreeMap<String, Vec<BackupRecord>> = BTreeMap::new();
            for r in all {
                by_db.entry(r.database.clone()).or_default().push(r);
            }
            let fresh: BTreeMap<String, DatabaseSummary> = by_db
                .iter()
                .map(|(db, rs)| (db.clone(), DatabaseSummary::of(rs)))
                .collect();
            assert_eq!(kept.databases, fresh, "round {round}");
        }
    }
}
