//! The configured indexes, read lazily: each server's summary on each storage at once (what
//! metrics, the report's health table and `verify --latest` need), and records only for the
//! databases and times a command asks for, so that `list --db X` does not pay for the history of
//! other databases and the end of a backup does not read any history at all.
//!
//! An index that cannot be read (unreachable storage, damaged file) does not hide the others:
//! its error is collected beside the rest. A failure recorded as a witness on several storages
//! appears once.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::config::Settings;
use crate::index::{
    partition_of, BackupRecord, DatabaseSummary, IndexStore, Span, Status, Summary, TypeSummary,
};
use crate::storage::Storage;

/// The record filters that list, verify and friends share (`--server`, `--db`, `--type`,
/// `--storage`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RecordFilter {
    /// Only this server (repeatable)
    #[arg(long = "server", value_name = "NAME", add = crate::complete::server_arg())]
    pub servers: Vec<String>,
    /// Only this database (repeatable)
    #[arg(long = "db", value_name = "NAME", add = crate::complete::database_arg())]
    pub databases: Vec<String>,
    /// Only this backup type
    #[arg(long = "type", short = 't', value_name = "TYPE", add = crate::complete::type_arg())]
    pub backup_type: Option<String>,
    /// Only copies on this storage
    #[arg(long, value_name = "NAME", add = crate::complete::storage_arg())]
    pub storage: Option<String>,
}

impl RecordFilter {
    /// Checks that the servers and storage named are configured.
    ///
    /// Fails with [`Unknown`] naming the unknown one (exit code 2).
    pub fn validate(&self, settings: &Settings) -> Result<(), crate::config::settings::Unknown> {
        for name in &self.servers {
            settings.server(name)?;
        }
        if let Some(name) = &self.storage {
            settings.storage(name)?;
        }
        Ok(())
    }

    /// This filter, naming the binary log segments as a database when it asks for their type
    /// (`--type binlog`), so that the catalog reads them.
    pub fn with_segments(&self) -> RecordFilter {
        let mut f = self.clone();
        if f.backup_type.as_deref() == Some(crate::binlog::TYPE) && f.databases.is_empty() {
            f.databases.push(crate::binlog::DATABASE.to_string());
        }
        f
    }

    /// Whether `r` passes every filter given.
    pub fn matches(&self, r: &BackupRecord) -> bool {
        (self.servers.is_empty() || self.servers.contains(&r.server))
            && (self.databases.is_empty() || self.databases.contains(&r.database))
            && self
                .backup_type
                .as_ref()
                .is_none_or(|t| t == &r.backup_type)
            && self.storage.as_ref().is_none_or(|s| s == &r.storage)
    }
}

/// One server's index on one storage: its summary, and where to read its records.
#[derive(Debug)]
pub struct IndexView {
    pub storage: String,
    pub server: String,
    pub summary: Summary,
    /// Where the server's binary log archive stands on this storage (servers with a `binlog`
    /// section that archive to it).
    pub binlog: Option<crate::binlog::ArchiveState>,
    source: Source,
}

enum Source {
    Storage(Arc<dyn Storage>),
    /// Records held in memory (tests, fuzzing, the report's own unit tests).
    Records(Vec<BackupRecord>),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Storage(s) => write!(f, "Storage({})", s.name()),
            Source::Records(r) => write!(f, "Records({})", r.len()),
        }
    }
}

impl IndexView {
    /// The records of `database`, oldest first.
    fn database(&self, database: &str) -> Result<Vec<BackupRecord>, String> {
        let partitions: Vec<&str> = self
            .summary
            .databases
            .get(database)
            .map(|d| d.partitions.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let mut out = Vec::new();
        for p in partitions {
            out.extend(self.partition(database, p)?);
        }
        Ok(out)
    }

    /// The records of one partition of `database`, oldest first.
    fn partition(&self, database: &str, partition: &str) -> Result<Vec<BackupRecord>, String> {
        match &self.source {
            Source::Storage(s) => IndexStore::new(s.as_ref(), &self.server)
                .read_listed_partition(database, partition)
                .map_err(|e| e.to_string()),
            Source::Records(rs) => Ok(rs
                .iter()
                .filter(|r| r.database == database && partition_of(r.started_at) == partition)
                .cloned()
                .collect()),
        }
    }

    /// The partitions of the databases `select` names, with their spans, that may hold records
    /// it asks for.
    fn units<'s>(&'s self, select: &'s Select) -> impl Iterator<Item = Unit<'s>> + 's {
        self.summary
            .databases
            .iter()
            .filter(|(db, _)| asked(db, select.databases))
            .flat_map(move |(db, d)| {
                d.partitions.iter().map(move |(p, span)| Unit {
                    index: self,
                    database: db,
                    partition: p,
                    span: *span,
                })
            })
            .filter(|u| select.since.is_none_or(|t| u.span.newest >= t))
            .filter(|u| {
                // An id holds its start to the second; the record, to the nanosecond.
                select
                    .around
                    .is_none_or(|t| u.span.covers(t, chrono::Duration::seconds(1)))
            })
    }
}

impl IndexView {
    /// A successful copy lives on the storage whose index holds it. When the summary says
    /// otherwise somewhere (a tampered or copied index), the databases concerned are summarized
    /// again from their records without the foreign successes, and the error says so; the
    /// records themselves are filtered the same way whenever they are read ([`trusted`]).
    ///
    /// Fails when a database file it must read again cannot be read.
    fn distrust_foreign_successes(
        &mut self,
        errors: &mut Vec<(String, String)>,
    ) -> Result<(), String> {
        let suspect: Vec<String> = self
            .summary
            .databases
            .iter()
            .filter(|(_, d)| {
                d.types
                    .values()
                    .any(|t| t.claims_other_storage(&self.storage))
            })
            .map(|(n, _)| n.clone())
            .collect();
        for db in suspect {
            let records: Vec<BackupRecord> = self
                .database(&db)?
                .into_iter()
                .filter(|r| trusted(r, self, errors))
                .collect();
            if records.is_empty() {
                self.summary.databases.remove(&db);
            } else {
                self.summary
                    .databases
                    .insert(db, DatabaseSummary::of(&records));
            }
        }
        Ok(())
    }
}

/// One index file to read: a partition of a database in one index, and its span.
struct Unit<'a> {
    index: &'a IndexView,
    database: &'a str,
    partition: &'a str,
    span: Span,
}

impl Unit<'_> {
    /// Its records that pass `keep` and are trusted, each copy once (by `seen`).
    fn read_into(
        &self,
        out: &mut Vec<BackupRecord>,
        seen: &mut HashSet<(String, String)>,
        errors: &mut Vec<(String, String)>,
        keep: impl Fn(&BackupRecord) -> bool,
    ) {
        match self.index.partition(self.database, self.partition) {
            Ok(rs) => {
                for r in rs {
                    if !keep(&r) || !trusted(&r, self.index, errors) {
                        continue;
                    }
                    if seen.insert((r.id.clone(), r.storage.clone())) {
                        out.push(r);
                    } else {
                        // Damage (a record copied into another month), as prune finds it: said,
                        // never dropped quietly.
                        errors.push((
                            self.index.storage.clone(),
                            format!(
                                "index of server '{}' on storage '{}': backup {} of {} is in two of its month files (damaged; run `sqlguard index rebuild --storage {}`)",
                                self.index.server,
                                self.index.storage,
                                r.id,
                                self.database,
                                self.index.storage
                            ),
                        ));
                    }
                }
            }
            Err(e) => errors.push((self.index.storage.clone(), e)),
        }
    }
}

/// The readable indexes, and why the others could not be read.
#[derive(Debug, Default)]
pub struct Catalog {
    pub indexes: Vec<IndexView>,
    /// One message per unreadable index (or database file), with the storage it belongs to.
    pub errors: Vec<(String, String)>,
    /// When the reading of the indexes began (absent in a catalog built from records).
    pub read_at: Option<DateTime<Utc>>,
}

/// Which records to read.
#[derive(Debug, Clone, Default)]
pub struct Select<'a> {
    /// Only these databases (all when empty).
    pub databases: &'a [String],
    /// Only records started at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only databases whose records span this time (a backup id's start, say).
    pub around: Option<DateTime<Utc>>,
}

/// What `latest` found: the record, nothing, or (`Err`) the databases it could mean.
pub type Latest = Result<Option<BackupRecord>, Vec<String>>;

/// The per (server, database, type) summaries of a catalog, merged across storages.
pub type Merged = BTreeMap<(String, String, String), TypeSummary>;

impl Catalog {
    /// A catalog over records held in memory, one index per (server, storage) as the records
    /// say: for tests and fuzzing.
    pub fn from_records(records: Vec<BackupRecord>) -> Catalog {
        let mut by_index: BTreeMap<(String, String), Vec<BackupRecord>> = BTreeMap::new();
        for r in records {
            by_index
                .entry((r.storage.clone(), r.server.clone()))
                .or_default()
                .push(r);
        }
        Catalog {
            indexes: by_index
                .into_iter()
                .map(|((storage, server), rs)| {
                    let mut by_db: BTreeMap<String, Vec<BackupRecord>> = BTreeMap::new();
                    for r in &rs {
                        by_db.entry(r.database.clone()).or_default().push(r.clone());
                    }
                    IndexView {
                        summary: Summary {
                            schema_version: crate::index::INDEX_SCHEMA_VERSION,
                            server: server.clone(),
                            databases: by_db
                                .iter()
                                .map(|(db, rs)| (db.clone(), DatabaseSummary::of(rs)))
                                .collect(),
                        },
                        storage,
                        server,
                        binlog: None,
                        source: Source::Records(rs),
                    }
                })
                .collect(),
            errors: Vec::new(),
            read_at: None,
        }
    }

    /// The summaries of every (server, database, type), merged across storages.
    pub fn merged(&self) -> Merged {
        let mut out: Merged = BTreeMap::new();
        for ix in &self.indexes {
            for (db, d) in &ix.summary.databases {
                if db == crate::binlog::DATABASE {
                    continue;
                }
                for (t, ts) in &d.types {
                    match out.entry((ix.server.clone(), db.clone(), t.clone())) {
                        std::collections::btree_map::Entry::Vacant(v) => {
                            v.insert(ts.clone());
                        }
                        std::collections::btree_map::Entry::Occupied(mut o) => {
                            o.get_mut().merge(ts);
                        }
                    }
                }
            }
        }
        out
    }

    /// The summary of `server`'s binary log segments, merged across storages (the segments are
    /// left out of [`Catalog::merged`], which holds the databases).
    pub fn segments_of(&self, server: &str) -> Option<crate::index::TypeSummary> {
        let mut out: Option<crate::index::TypeSummary> = None;
        for ts in self
            .indexes
            .iter()
            .filter(|ix| ix.server == server)
            .filter_map(|ix| ix.summary.databases.get(crate::binlog::DATABASE))
            .filter_map(|d| d.types.get(crate::binlog::TYPE))
        {
            match &mut out {
                Some(o) => o.merge(ts),
                None => out = Some(ts.clone()),
            }
        }
        out
    }

    /// Whether an index on `storage` could not be read.
    pub fn unreadable(&self, storage: &str) -> bool {
        self.errors.iter().any(|(s, _)| s == storage)
    }

    /// The records that `select` asks for, oldest first, each copy once; an index file that
    /// cannot be read is an error beside them. Reads only the files that may hold them.
    pub fn records(&self, select: &Select) -> (Vec<BackupRecord>, Vec<(String, String)>) {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        let mut seen = HashSet::new();
        for ix in &self.indexes {
            for unit in ix.units(select) {
                unit.read_into(&mut out, &mut seen, &mut errors, |r| {
                    select.since.is_none_or(|t| r.started_at >= t)
                });
            }
        }
        out.sort_by(|a, b| {
            a.started_at
                .cmp(&b.started_at)
                .then_with(|| a.id.cmp(&b.id))
                .then_with(|| a.storage.cmp(&b.storage))
        });
        (out, errors)
    }

    /// The copies of backup `id`, found through the start time in its id, so that only
    /// databases whose records span it are read; every database when that finds none (an id
    /// that is not one of ours, a record whose start disagrees with its id).
    pub fn copies_of(&self, id: &str) -> (Vec<BackupRecord>, Vec<(String, String)>) {
        let segments = [crate::binlog::DATABASE.to_string()];
        let mut select = Select {
            around: crate::layout::id_time(id),
            ..Default::default()
        };
        loop {
            let (rs, errors) = self.records(&select);
            let copies: Vec<BackupRecord> = rs.into_iter().filter(|r| r.id == id).collect();
            if !copies.is_empty() || !select.databases.is_empty() {
                return (copies, errors);
            }
            if select.around.is_some() {
                select.around = None;
            } else {
                // Not a backup: a binary log segment's id, perhaps.
                select.around = crate::layout::id_time(id);
                select.databases = &segments;
            }
        }
    }

    /// The newest successful copy of each server and database on each storage, among the types
    /// and names that `filter` lets through (what `verify --latest` checks), oldest first:
    /// chosen from the summaries, then read from the database files, which are the truth (a
    /// summary that disagrees with its file is an error beside them).
    pub fn latest_successes(
        &self,
        filter: &RecordFilter,
    ) -> (Vec<BackupRecord>, Vec<(String, String)>) {
        let mut newest: BTreeMap<(&str, &str, &str), (usize, &BackupRecord)> = BTreeMap::new();
        for (i, ix) in self.indexes.iter().enumerate() {
            for (db, d) in &ix.summary.databases {
                if !asked(db, &filter.databases) {
                    continue;
                }
                for (t, ts) in &d.types {
                    if filter.backup_type.as_ref().is_some_and(|want| want != t) {
                        continue;
                    }
                    // Only this storage's own copy: an index never vouches for another storage.
                    let Some(r) = ts.last_success_per_storage.get(&ix.storage) else {
                        continue;
                    };
                    if r.storage != ix.storage || &r.database != db || !filter.matches(r) {
                        continue;
                    }
                    let slot = (ix.server.as_str(), db.as_str(), ix.storage.as_str());
                    match newest.get(&slot) {
                        Some((_, old)) if (old.started_at, &old.id) >= (r.started_at, &r.id) => {}
                        _ => {
                            newest.insert(slot, (i, r));
                        }
                    }
                }
            }
        }
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for ((_, db, _), (i, picked)) in newest {
            let ix = &self.indexes[i];
            match ix.partition(db, &partition_of(picked.started_at)) {
                Ok(rs) => match rs.into_iter().find(|r| {
                    r.id == picked.id && r.storage == picked.storage && r.status == Status::Success
                }) {
                    Some(r) => out.push(r),
                    None => errors.push((
                        ix.storage.clone(),
                        format!(
                            "the index summary of server '{}' on storage '{}' names backup {} of '{}', which its file does not hold: run `sqlguard index rebuild --server {} --storage {}`",
                            ix.server, ix.storage, picked.id, db, ix.server, ix.storage
                        ),
                    )),
                },
                Err(e) => errors.push((ix.storage.clone(), e)),
            }
        }
        out.sort_by(|a, b| {
            (a.started_at, &a.id, &a.storage).cmp(&(b.started_at, &b.id, &b.storage))
        });
        (out, errors)
    }

    /// The newest good copy of what `filter` selects (`latest`): successful, and not failed at
    /// its last verification. The selection must name one server and database: when the
    /// summaries show good copies of several, `Err` lists them (`server/database`, newest
    /// first). `Ok(None)` when nothing matches.
    pub fn newest_good(&self, filter: &RecordFilter) -> (Latest, Vec<(String, String)>) {
        let mut candidates: BTreeMap<(String, String), DateTime<Utc>> = BTreeMap::new();
        // The newest good success each summary names: what the month files must hold.
        let mut named: BTreeMap<(String, String), &BackupRecord> = BTreeMap::new();
        for ix in self
            .indexes
            .iter()
            .filter(|ix| filter.servers.is_empty() || filter.servers.contains(&ix.server))
        {
            for (db, d) in &ix.summary.databases {
                if !asked(db, &filter.databases) {
                    continue;
                }
                for (t, ts) in &d.types {
                    if filter.backup_type.as_ref().is_some_and(|want| want != t) {
                        continue;
                    }
                    for (storage, r) in &ts.last_success_per_storage {
                        if storage != &ix.storage
                            || filter.storage.as_ref().is_some_and(|s| s != storage)
                        {
                            continue;
                        }
                        let slot = candidates
                            .entry((ix.server.clone(), db.clone()))
                            .or_insert(r.started_at);
                        *slot = (*slot).max(r.started_at);
                        if r.verification.as_deref().is_none_or(|v| v.ok) {
                            let n = named.entry((ix.server.clone(), db.clone())).or_insert(r);
                            if r.started_at > n.started_at {
                                *n = r;
                            }
                        }
                    }
                }
            }
        }
        if candidates.len() > 1 {
            let mut list: Vec<_> = candidates.into_iter().collect();
            list.sort_by_key(|c| std::cmp::Reverse(c.1));
            return (
                Err(list
                    .into_iter()
                    .map(|((s, d), at)| {
                        format!("{s}/{d} (newest {})", at.format("%Y-%m-%d %H:%M UTC"))
                    })
                    .collect()),
                Vec::new(),
            );
        }
        let Some(((server, db), _)) = candidates.into_iter().next() else {
            return (Ok(None), Vec::new());
        };
        let expected = named.remove(&(server.clone(), db.clone()));
        let dbs = [db];
        let select = Select {
            databases: &dbs,
            ..Default::default()
        };
        let (found, mut errors) = self.newest(1, &select, |r| {
            r.server == server
                && r.status == Status::Success
                && r.key.is_some()
                && filter.matches(r)
                && r.verification.as_deref().is_none_or(|v| v.ok)
        });
        let found = found.into_iter().next();
        // A summary that names a newer good success than its month files hold: a month file
        // put back from an older copy (or cut short), never a reason to take older data.
        if let Some(e) =
            expected.filter(|e| found.as_ref().is_none_or(|f| f.started_at < e.started_at))
        {
            let (copies, read) = self.copies_of(&e.id);
            errors.extend(read);
            if !copies.iter().any(|c| c.storage == e.storage) {
                errors.push((
                    e.storage.clone(),
                    format!(
                        "index of server '{server}' on storage '{}': its summary names backup {} (started {}) as the newest success of {}, and its month file does not hold it (an older copy put back, or damage; run `sqlguard index rebuild --storage {}`)",
                        e.storage,
                        e.id,
                        e.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
                        e.database,
                        e.storage
                    ),
                ));
            }
        }
        (Ok(found), errors)
    }

    /// The newest success of `picked`'s server and database that `filter` matches, newer than
    /// `picked` and passed over by [`Catalog::newest_good`] because its last verification
    /// failed: what `restore latest` says it did not take.
    pub fn passed_over(
        &self,
        picked: &BackupRecord,
        filter: &RecordFilter,
    ) -> Option<BackupRecord> {
        self.newest_beside(picked, filter, |r| {
            r.started_at > picked.started_at && r.verification.as_deref().is_some_and(|v| !v.ok)
        })
    }

    /// The newest good backup of `picked`'s database older than it (under `filter`): what a
    /// `latest` whose every copy failed its checks names in its place.
    pub fn next_good_before(
        &self,
        picked: &BackupRecord,
        filter: &RecordFilter,
    ) -> Option<BackupRecord> {
        self.newest_beside(picked, filter, |r| {
            r.id != picked.id
                && r.segment.is_none()
                && !r.failed_verification()
                && r.started_at <= picked.started_at
        })
    }

    /// The newest stored success of `picked`'s server and database that `filter` matches and
    /// `keep` accepts.
    fn newest_beside(
        &self,
        picked: &BackupRecord,
        filter: &RecordFilter,
        keep: impl Fn(&BackupRecord) -> bool,
    ) -> Option<BackupRecord> {
        let dbs = [picked.database.clone()];
        let select = Select {
            databases: &dbs,
            ..Default::default()
        };
        let (found, _) = self.newest(1, &select, |r| {
            r.server == picked.server
                && r.status == Status::Success
                && r.key.is_some()
                && filter.matches(r)
                && keep(r)
        });
        found.into_iter().next()
    }

    /// The newest `limit` records that pass `keep` (newest first), reading index files from
    /// the newest down and stopping as soon as no older file can place a record.
    pub fn newest(
        &self,
        limit: usize,
        select: &Select,
        keep: impl Fn(&BackupRecord) -> bool,
    ) -> (Vec<BackupRecord>, Vec<(String, String)>) {
        let mut units: Vec<Unit> = self
            .indexes
            .iter()
            .flat_map(|ix| ix.units(select))
            .collect();
        units.sort_by_key(|u| std::cmp::Reverse(u.span.newest));
        let mut best: Vec<BackupRecord> = Vec::new();
        let mut errors = Vec::new();
        let mut seen = HashSet::new();
        for unit in units {
            if best.len() >= limit && best.last().is_some_and(|f| unit.span.newest < f.started_at) {
                break;
            }
            unit.read_into(&mut best, &mut seen, &mut errors, |r| {
                select.since.is_none_or(|t| r.started_at >= t) && keep(r)
            });
            sort_newest_first(&mut best);
            best.truncate(limit);
        }
        (best, errors)
    }
}

/// Whether a command that names `databases` (none: all) asks for `db`. Binary log segments
/// ([`crate::binlog::DATABASE`]) are not backups of a database: only a command that names them
/// (`--db '*binlog'`, or `--type binlog` through [`RecordFilter::with_segments`]) sees them.
fn asked(db: &str, databases: &[String]) -> bool {
    if db == crate::binlog::DATABASE {
        databases.iter().any(|d| d == db)
    } else {
        databases.is_empty() || databases.iter().any(|d| d == db)
    }
}

/// Sorts records newest first (by start, then id descending, then storage): the order of `list`.
pub fn sort_newest_first(records: &mut [BackupRecord]) {
    records.sort_by(|a, b| {
        b.started_at
            .cmp(&a.started_at)
            .then_with(|| b.id.cmp(&a.id))
            .then_with(|| a.storage.cmp(&b.storage))
    });
}

/// A successful copy lives on the storage whose index holds it; one that claims another (a
/// tampered or copied index) is not trusted, and said so.
fn trusted(r: &BackupRecord, ix: &IndexView, errors: &mut Vec<(String, String)>) -> bool {
    if r.status == Status::Success && r.storage != ix.storage {
        errors.push((
            ix.storage.clone(),
            format!(
                "index of server '{}' on storage '{}' holds backup {} as stored on '{}': ignored (run `sqlguard index rebuild --storage {}`)",
                ix.server, ix.storage, r.id, r.storage, ix.storage
            ),
        ));
        return false;
    }
    true
}

/// Reads the summary of every configured server (or only `servers`, when not empty) on every
/// configured storage.
pub fn load(session: &crate::session::Session, servers: &[String]) -> Catalog {
    let settings = &session.settings;
    let mut out = Catalog {
        read_at: Some(Utc::now()),
        ..Catalog::default()
    };
    for st in &settings.storages {
        let storage = match session.storage(&st.name) {
            Ok(s) => s,
            Err(e) => {
                out.errors.push((st.name.clone(), e.to_string()));
                continue;
            }
        };
        for server in settings
            .backed_up()
            .filter(|s| servers.is_empty() || servers.contains(&s.name))
        {
            let store = IndexStore::new(storage.as_ref(), &server.name);
            match store.snapshot() {
                Ok((summary, legacy)) => {
                    let binlog = server
                        .binlog
                        .as_ref()
                        .filter(|b| b.storages.contains(&st.name))
                        .and_then(|_| {
                            crate::binlog::read_state(storage.as_ref(), &server.name)
                                .map_err(|e| out.errors.push((st.name.clone(), e)))
                                .ok()
                                .flatten()
                        });
                    let mut view = IndexView {
                        storage: st.name.clone(),
                        server: server.name.clone(),
                        summary,
                        binlog,
                        source: match legacy {
                            Some(records) => Source::Records(records),
                            None => Source::Storage(Arc::clone(&storage)),
                        },
                    };
                    if let Err(e) = view.distrust_foreign_successes(&mut out.errors) {
                        out.errors.push((st.name.clone(), e));
                        continue;
                    }
                    out.indexes.push(view);
                }
                Err(e) => out.errors.push((st.name.clone(), e.to_string())),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// A copy in two month files is damage, said to every reader as prune says it, never
    /// dropped quietly (a hostile review's: `list`, `report` and `verify` exited 0 over it).
    #[test]
    fn a_copy_in_two_month_files_is_an_error_beside_the_records() {
        let at = |m, d| Utc.with_ymd_and_hms(2026, m, d, 2, 30, 0).unwrap();
        let id = "20261120T023000Z_0000000a";
        let nov = BackupRecord::sample(id, "shop", "daily", "local", Status::Success, at(11, 20));
        let dec = BackupRecord::sample(id, "shop", "daily", "local", Status::Success, at(12, 1));
        let catalog = Catalog::from_records(vec![nov, dec]);
        let (records, errors) = catalog.records(&Select::default());
        assert_eq!(records.len(), 1);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0]
                .1
                .contains(&format!("backup {id} of shop is in two of its month files")),
            "{errors:?}"
        );
        let (_, errors) = catalog.newest(5, &Select::default(), |_| true);
        assert_eq!(errors.len(), 1, "{errors:?}");
    }

    /// A month file put back from an older copy lacks the newest success its summary names:
    /// `latest` is then an error beside the older pick, never the older pick alone (review 30:
    /// `restore latest` restored the older backup, exit 0).
    #[test]
    fn latest_is_an_error_when_the_month_lacks_what_the_summary_names() {
        let at = |d| Utc.with_ymd_and_hms(2026, 11, d, 2, 30, 0).unwrap();
        let older = BackupRecord::sample("a", "shop", "daily", "local", Status::Success, at(20));
        let newer = BackupRecord::sample("b", "shop", "daily", "local", Status::Success, at(21));
        let mut catalog = Catalog::from_records(vec![older.clone(), newer]);
        let filter = RecordFilter {
            databases: vec!["shop".into()],
            ..Default::default()
        };
        let (picked, errors) = catalog.newest_good(&filter);
        assert_eq!((picked.unwrap().unwrap().id, errors.len()), ("b".into(), 0));
        catalog.indexes[0].source = Source::Records(vec![older]);
        let (picked, errors) = catalog.newest_good(&filter);
        assert_eq!(picked.unwrap().unwrap().id, "a");
        assert!(
            errors.len() == 1
                && errors[0].1.contains("its summary names backup b")
                && errors[0].1.contains("does not hold it"),
            "{errors:?}"
        );
    }
}
