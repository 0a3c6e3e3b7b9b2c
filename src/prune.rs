//! Applies retention: plans with [`crate::retention::plan`] per storage and server, deletes the
//! exact object and manifest keys the index owns, updates the index, and removes orphans (temp
//! files and incomplete uploads of killed runs, older than `orphan_min_age`).
//!
//! It never deletes by glob or listing: backup objects are deleted only by the keys recorded in
//! the index, and only keys under the server's own prefix. Orphans are found by listing, but only
//! sqlguard's own temp names and uploads match. Deletions are recorded in the index in batches,
//! so a prune killed midway leaves records whose objects may be gone; the next prune plans the
//! same removals (deleting a missing key succeeds) and finishes the job.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::settings::Unknown;
use crate::config::Settings;
use crate::index::{BackupRecord, IndexError, IndexStore};
use crate::layout;
use crate::retention::{self, Decision};
use crate::storage::{Orphan, Storage};
use crate::ui::{human_bytes, Ui};

/// The fewest records removed from the index per write (see [`batch_size`]).
const BATCH: usize = 1000;

/// Databases whose index files are read ahead, on their own threads, while one is planned.
const READ_AHEAD: usize = 2;

/// Copies per database that a prune names one by one when they are not as the index says
/// (a bucket emptied by a lifecycle rule would name every one); `-v` lists each decision.
const MAX_COPY_WARNINGS: usize = 10;

/// What to prune.
#[derive(Debug, Clone, Default)]
pub struct PruneRequest {
    pub dry_run: bool,
    /// Only entries of this type are removed (all types still count for the floor).
    pub backup_type: Option<String>,
    pub servers: Vec<String>,
    pub storage: Option<String>,
}

/// One planned (and, unless dry-run, applied) decision.
#[derive(Debug, Clone, Serialize)]
pub struct PruneEntry {
    #[serde(flatten)]
    pub record: BackupRecord,
    pub decision: Decision,
    pub reason: String,
    /// Whether a removal was carried out (false in dry-run and on failure).
    pub done: bool,
    /// Why a planned removal failed (the record's own `error` is about its backup run).
    pub prune_error: Option<String>,
}

/// One orphan found, and what happened to it.
#[derive(Debug, Clone, Serialize)]
pub struct OrphanEntry {
    pub storage: String,
    #[serde(flatten)]
    pub orphan: Orphan,
    pub done: bool,
    pub error: Option<String>,
}

/// A backup object or manifest that no index record owns: what a run killed between storing a
/// copy and recording it leaves. Reported, never deleted (but for a manifest whose object never
/// came, which describes nothing: an orphan once older than `orphan_min_age`); `index rebuild`
/// adopts it when its manifest and object are both there (`adoptable`).
#[derive(Debug, Clone, Serialize)]
pub struct Unrecorded {
    pub storage: String,
    pub key: String,
    pub size: u64,
    pub modified: Option<DateTime<Utc>>,
    pub adoptable: bool,
}

/// What a prune did. Its entries went to the caller's sink, one database at a time (so that
/// memory holds one database's records however long the history); the outcome counts them.
#[derive(Debug, Default, Serialize)]
pub struct PruneOutcome {
    pub dry_run: bool,
    pub orphans: Vec<OrphanEntry>,
    /// Objects under a server's prefix that no record owns (left in place).
    pub unrecorded: Vec<Unrecorded>,
    /// Storages or indexes that could not be pruned, one message each.
    pub errors: Vec<String>,
    pub interrupted: bool,
    /// Entries removed (in a dry run: to be removed), and their stored bytes.
    pub removed_entries: usize,
    pub removed_bytes: u64,
    pub kept_entries: usize,
    /// Planned removals that failed (each entry says why).
    pub failed_entries: usize,
    /// Entries removed and their stored bytes, by server (for the run's metrics).
    #[serde(skip)]
    pub removed_per_server: std::collections::BTreeMap<String, (usize, u64)>,
}

impl PruneOutcome {
    /// Removed (or, in a dry run, to be removed) entries and their stored bytes.
    pub fn removed(&self) -> (usize, u64) {
        (self.removed_entries, self.removed_bytes)
    }

    /// Counts one entry.
    fn count(&mut self, e: &PruneEntry) {
        match e.decision {
            Decision::Keep => self.kept_entries += 1,
            Decision::Remove if e.prune_error.is_some() => self.failed_entries += 1,
            Decision::Remove if e.done || self.dry_run => {
                self.removed_entries += 1;
                self.removed_bytes = self.removed_bytes.saturating_add(e.record.compressed_bytes);
                let server = self
                    .removed_per_server
                    .entry(e.record.server.clone())
                    .or_default();
                server.0 += 1;
                server.1 = server.1.saturating_add(e.record.compressed_bytes);
            }
            Decision::Remove => {}
        }
    }

    /// Removed entries, removed bytes and removed orphans of each server, for the run's
    /// metrics (an orphan belongs to the server whose directory held it).
    pub fn counts(&self) -> crate::run::PruneCounts {
        let mut counts = crate::run::PruneCounts::new();
        for (server, (entries, bytes)) in &self.removed_per_server {
            let c = counts.entry(server.clone()).or_default();
            (c.0, c.1) = (*entries, *bytes);
        }
        for o in self.orphans.iter().filter(|o| o.done) {
            let server = o
                .orphan
                .key
                .split('/')
                .next()
                .and_then(layout::decode_component)
                .unwrap_or_default();
            counts.entry(server).or_default().2 += 1;
        }
        counts
    }

    /// Whether everything planned was done.
    pub fn all_ok(&self) -> bool {
        self.errors.is_empty()
            && !self.interrupted
            && self.failed_entries == 0
            && self.orphans.iter().all(|o| o.error.is_none())
    }
}

/// Where a prune's entries go, as each database is done.
pub type Sink<'s> = &'s mut dyn FnMut(PruneEntry);

/// Plans and (unless `dry_run`) applies retention on every selected storage and server, giving
/// every entry to `sink`.
///
/// Fails only for unknown names in the request; storage and index failures are in the outcome.
pub fn run(
    session: &crate::session::Session,
    req: &PruneRequest,
    now: DateTime<Utc>,
    sink: Sink,
) -> Result<PruneOutcome, Unknown> {
    let (settings, ui, cancel) = (&session.settings, &session.ui, session.cancel.as_ref());
    if let Some(t) = &req.backup_type {
        settings.backup_type(t)?;
    }
    if let Some(s) = &req.storage {
        settings.storage(s)?;
    }
    for s in &req.servers {
        settings.server(s)?;
    }
    let mut out = PruneOutcome {
        dry_run: req.dry_run,
        ..Default::default()
    };
    let orphan_cutoff = settings.orphan_min_age.before(now);
    for st in settings
        .storages
        .iter()
        .filter(|s| req.storage.as_ref().is_none_or(|n| n == &s.name))
    {
        let storage = match session.storage(&st.name) {
            Ok(s) => s,
            Err(e) => {
                out.errors.push(e.to_string());
                continue;
            }
        };
        for server in settings
            .backed_up()
            .filter(|s| req.servers.is_empty() || req.servers.contains(&s.name))
        {
            if cancel.load(Ordering::Relaxed) {
                out.interrupted = true;
                return Ok(out);
            }
            let orphans = prune_index(
                settings,
                req,
                storage.as_ref(),
                &server.name,
                now,
                ui,
                cancel,
                &mut out,
                sink,
            );
            // A run asked to stop starts nothing more (its orphans wait for the next prune).
            if out.interrupted || cancel.load(Ordering::Relaxed) {
                out.interrupted = true;
                return Ok(out);
            }
            // An upload begun long ago may be a backup that is still running (a large dump to
            // S3 takes hours): what a running backup of that type on this host writes is left.
            let running = |o: &Orphan| {
                let component = o.key.split('/').nth(2)?;
                let backup_type = settings
                    .backup_types
                    .iter()
                    .find(|t| layout::encode_component(&t.name) == component)?;
                crate::joblock::running(
                    &settings.lock_dir,
                    &server.name,
                    "backup",
                    Some(&backup_type.name),
                )
            };
            clean_orphans(
                storage.as_ref(),
                &layout::server_prefix(&server.name),
                orphans,
                orphan_cutoff,
                req.dry_run,
                &running,
                ui,
                &mut out,
            );
        }
    }
    Ok(out)
}

/// Plans and applies retention for one server's index on one storage, one database at a time
/// (retention never looks across databases), so memory holds one database's records and each
/// index write rewrites only the months a batch touches.
///
/// Returns the orphans the storage's listing found, when it finds them ([`Storage::survey`]).
#[allow(clippy::too_many_arguments)]
fn prune_index(
    settings: &Settings,
    req: &PruneRequest,
    storage: &dyn Storage,
    server: &str,
    now: DateTime<Utc>,
    ui: &Ui,
    cancel: &AtomicBool,
    out: &mut PruneOutcome,
    sink: Sink,
) -> Option<Vec<Orphan>> {
    let store = IndexStore::new(storage, server);
    let (summary, legacy) = match store.snapshot() {
        Ok(s) => s,
        Err(e) => {
            ui.error(&e.to_string());
            out.errors.push(e.to_string());
            return None;
        }
    };
    let orphan_cutoff = settings.orphan_min_age.before(now);
    // Binary log segments last: which ones the point-in-time window needs depends on the
    // dumps that stay.
    let mut databases: Vec<&String> = summary
        .databases
        .keys()
        .filter(|d| d.as_str() != crate::binlog::DATABASE)
        .collect();
    let segments_db = crate::binlog::DATABASE.to_string();
    if summary.databases.contains_key(&segments_db) {
        databases.push(&segments_db);
    }
    let window = settings
        .server(server)
        .ok()
        .and_then(|s| s.binlog.as_ref())
        .map(|b| b.window);
    // A legacy index is in memory already, read whole once (and migrated by the first removal).
    let mut legacy: Option<HashMap<String, Vec<BackupRecord>>> = legacy.map(|all| {
        let mut by_db: HashMap<String, Vec<BackupRecord>> = HashMap::default();
        for r in all {
            by_db.entry(r.database.clone()).or_default().push(r);
        }
        by_db
    });
    let stored: std::sync::OnceLock<Option<Stored>> = std::sync::OnceLock::new();
    let mut bases: Vec<retention::Base> = Vec::new();
    // The directories of the databases whose index could not be read: their files are
    // recorded in an index that cannot be read now, not files that no record owns (to be
    // reported, or removed as left by a killed run).
    let mut unread: Vec<[String; 2]> = Vec::new();
    // Reading a database's month files and planning it is most of a prune's time: both are done
    // on threads of their own, up to READ_AHEAD databases ahead of the one applied here, in
    // order; the first ones are read while the storage is listed.
    // Records of a type the config no longer names, by type: kept whatever their age.
    let mut unconfigured: std::collections::BTreeMap<String, usize> = Default::default();
    let stopped = std::thread::scope(|scope| {
        let listing = crate::threads::spawn_scoped(scope, "storage-listing", || {
            stored_backups(storage, server, orphan_cutoff)
        });
        let mut ahead: std::collections::VecDeque<Pending> = std::collections::VecDeque::new();
        if legacy.is_none() {
            for &db in databases.iter().take(READ_AHEAD + 1) {
                let (store, summary) = (&store, &summary);
                ahead.push_back(
                    crate::threads::spawn_scoped(scope, "index-read", move || {
                        store.read_summarized(db, summary)
                    })
                    .map_or(Pending::Here, Pending::Reading),
                );
            }
        }
        let listed = match listing {
            Ok(thread) => joined(thread),
            Err(_) => stored_backups(storage, server, orphan_cutoff),
        };
        let listed = listed
            .map_err(|e| {
                ui.error(&e.to_string());
                out.errors.push(e.to_string());
            })
            .ok();
        let stored = stored.get_or_init(|| listed).as_ref();
        let plan = move |records: Vec<BackupRecord>| {
            Planned::Settled(plan_database(
                records, req, settings, now, storage, server, stored,
            ))
        };
        // The reads begun during the listing go on to their plans (the segments' is made here).
        for (pending, &db) in ahead.iter_mut().zip(&databases) {
            if db == &segments_db {
                continue;
            }
            if let Pending::Reading(thread) = std::mem::replace(pending, Pending::Here) {
                *pending = match crate::threads::spawn_scoped(scope, "index-plan", move || {
                    joined(thread).map(plan)
                }) {
                    Ok(t) => Pending::Planning(t),
                    // The read is lost with its handle: read again here.
                    Err(_) => Pending::Here,
                };
            }
        }
        let mut queued = ahead.len();
        for (i, db) in databases.iter().copied().enumerate() {
            while queued < databases.len() && queued <= i + READ_AHEAD {
                let next = databases[queued];
                let records = legacy
                    .as_mut()
                    .map(|by_db| by_db.remove(next.as_str()).unwrap_or_default());
                let pending = match records {
                    Some(r) => Pending::Ready(r),
                    // Planned here, from the bases the dumps' plans leave.
                    None if next == &segments_db => Pending::Here,
                    None => {
                        let (store, summary) = (&store, &summary);
                        crate::threads::spawn_scoped(scope, "index-plan", move || {
                            store.read_summarized(next, summary).map(plan)
                        })
                        .map_or(Pending::Here, Pending::Planning)
                    }
                };
                ahead.push_back(pending);
                queued += 1;
            }
            if cancel.load(Ordering::Relaxed) {
                out.interrupted = true;
                return true;
            }
            let planned = match ahead.pop_front().unwrap_or(Pending::Here) {
                Pending::Planning(thread) => joined(thread),
                Pending::Reading(thread) => joined(thread).map(Planned::Read),
                Pending::Ready(records) => Ok(Planned::Read(records)),
                Pending::Here => store.read_summarized(db, &summary).map(Planned::Read),
            };
            let settled = planned.map(|p| match p {
                Planned::Read(records) if db == &segments_db => {
                    let plan = retention::plan_segments(
                        records,
                        &bases,
                        window,
                        crate::config::backup_types::DEFAULT_FAILED_KEEP_WITHIN,
                        now,
                    );
                    settle(plan, None, Vec::new(), req, storage, server, stored)
                }
                Planned::Read(records) => {
                    plan_database(records, req, settings, now, storage, server, stored)
                }
                Planned::Settled(s) => s,
            });
            let Settled {
                total,
                mut entries,
                bases: database_bases,
                said,
            } = match settled {
                Ok(s) => s,
                Err(e) => {
                    ui.error(&e.to_string());
                    out.errors.push(e.to_string());
                    unread.push(database_dirs(server, db));
                    continue;
                }
            };
            for s in said {
                match s {
                    Said::Warning(w) => ui.warn(&w),
                    Said::Error(e) => ui.error(&e),
                }
            }
            bases.extend(database_bases);
            if !req.dry_run {
                apply(&store, storage, total, &mut entries, ui, cancel, out);
            }
            for e in entries {
                if db != &segments_db
                    && settings
                        .retention(&e.record.backup_type, storage.name())
                        .is_none()
                {
                    *unconfigured
                        .entry(e.record.backup_type.clone())
                        .or_default() += 1;
                }
                out.count(&e);
                sink(e);
            }
        }
        false
    });
    // Said once per type, not once per record: they stay until a person decides.
    for (t, n) in &unconfigured {
        let (s, are, them) = if *n == 1 {
            ("", "is", "it")
        } else {
            ("s", "are", "them")
        };
        ui.warn(&format!(
            "storage '{}': {n} backup{s} of server '{server}' {are} of type '{t}', which the config no longer names, so no retention applies and prune keeps {them} for ever: add `backup_types.{t}` back with its retention to prune {them}",
            storage.name(),
        ));
    }
    let orphans = stored.into_inner().flatten().map(|s| {
        let Stored { keys, orphans, .. } = s;
        (keys, orphans)
    });
    let (keys, orphans) = match orphans {
        Some((k, o)) => (Some(k), o),
        None => (None, None),
    };
    if stopped {
        return orphans;
    }
    if let Some(keys) = keys {
        let mut unowned: HashSet<String> = keys
            .iter()
            .filter(|(k, l)| {
                !l.owned.load(Ordering::Relaxed)
                    && !unread.iter().flatten().any(|d| k.starts_with(d.as_str()))
            })
            .map(|(k, _)| k.clone())
            .collect();
        if let Err(e) = cross_off_late(&store, server, &mut unowned) {
            // Not knowing what the index holds now, nothing is called unrecorded.
            ui.error(&e.to_string());
            out.errors.push(e.to_string());
            unowned.clear();
        }
        // What lies beside each, from the same listing: one pass over it, not one listing per
        // file (39,000 unrecorded files took minutes); none when every file is recorded.
        let stems: HashSet<&str> = unowned.iter().map(|k| stem_of(k)).collect();
        let mut siblings: HashMap<String, Siblings> = HashMap::default();
        let beside = if stems.is_empty() {
            None
        } else {
            Some(keys.keys())
        };
        for k in beside
            .into_iter()
            .flatten()
            .filter(|k| stems.contains(stem_of(k)))
        {
            let s = siblings.entry(stem_of(k).to_string()).or_default();
            if k.ends_with(layout::MANIFEST_SUFFIX) {
                s.manifest = true;
            } else {
                s.object = true;
            }
        }
        drop(stems);
        report_unrecorded(
            storage,
            unowned,
            &siblings,
            orphan_cutoff,
            req.dry_run,
            cancel,
            ui,
            out,
        );
    }
    orphans
}

/// What a thread returned (its panic goes on here).
fn joined<T>(thread: std::thread::ScopedJoinHandle<'_, T>) -> T {
    thread
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// A database on its way through [`prune_index`].
enum Pending<'scope> {
    /// Being read, on its thread (begun while the storage is listed).
    Reading(std::thread::ScopedJoinHandle<'scope, Result<Vec<BackupRecord>, IndexError>>),
    /// Being read and planned, on its thread.
    Planning(std::thread::ScopedJoinHandle<'scope, Result<Planned, IndexError>>),
    /// Its records, in memory (a legacy index), to be planned here.
    Ready(Vec<BackupRecord>),
    /// To be read and planned here (no thread would start).
    Here,
}

/// A database read, or read and planned.
enum Planned {
    Read(Vec<BackupRecord>),
    Settled(Settled),
}

/// A database's entries, decided and checked: what is left is to say and apply them.
struct Settled {
    /// Its records.
    total: usize,
    entries: Vec<PruneEntry>,
    /// The dumps a point-in-time restore can start from that the plan keeps.
    bases: Vec<retention::Base>,
    /// What to say about it, in order.
    said: Vec<Said>,
}

/// A message a planning thread leaves for the run to say, in the databases' order.
enum Said {
    Warning(String),
    Error(String),
}

/// One backup object or manifest that a storage's listing gave when the prune began.
struct Listed {
    /// Its size, where the listing gives it at no cost ([`Storage::survey`]).
    size: Option<u64>,
    /// Whether a record read owns it (set by the threads that plan the databases).
    owned: AtomicBool,
}

/// What a storage's listing of a server's prefix gives a prune ([`stored_backups`]).
struct Stored {
    /// When it was listed.
    at: DateTime<Utc>,
    /// The backup objects and manifests, by key.
    keys: HashMap<String, Listed>,
    /// The orphans older than the cut-off, where the same pass finds them.
    orphans: Option<Vec<Orphan>>,
}

/// Plans one database's dumps ([`plan_stored`]) and settles its entries ([`settle`]); on a
/// planning thread.
fn plan_database(
    records: Vec<BackupRecord>,
    req: &PruneRequest,
    settings: &Settings,
    now: DateTime<Utc>,
    storage: &dyn Storage,
    server: &str,
    stored: Option<&Stored>,
) -> Settled {
    let (plan, unchecked, gone, said) =
        plan_stored(records, settings, now, storage, server, stored);
    let no_copy = |r: &BackupRecord| r.storage == storage.name() && gone.contains(&r.id);
    let bases: Vec<retention::Base> = plan
        .items
        .iter()
        // Only copies that are copies: a damaged or gone dump kept for a person to look at is
        // no base a restore can roll forward from.
        .filter(|i| {
            i.decision == Decision::Keep
                && i.record.status == crate::index::Status::Success
                && i.record.key.is_some()
                && !i.record.failed_verification()
                && !no_copy(&i.record)
        })
        .filter_map(|i| {
            let b = i.record.binlog.as_deref()?;
            Some(retention::Base {
                database: i.record.database.clone(),
                id: i.record.id.clone(),
                started_at: i.record.started_at,
                file: b.file.clone(),
                position: b.position,
                gtid: b.gtid.clone(),
            })
        })
        .collect();
    Settled {
        bases,
        ..settle(plan, unchecked, said, req, storage, server, stored)
    }
}

/// Turns a database's plan into its entries: crosses the keys its records own off the
/// listing, keeps what `--type` does not select, and marks the removals that must not happen
/// (those [`refuse_unsafe`] finds, and every one when a kept copy could not be checked:
/// `unchecked` says why).
#[allow(clippy::too_many_arguments)]
fn settle(
    plan: retention::Plan,
    unchecked: Option<String>,
    mut said: Vec<Said>,
    req: &PruneRequest,
    storage: &dyn Storage,
    server: &str,
    stored: Option<&Stored>,
) -> Settled {
    if let Some(stored) = stored {
        for k in plan
            .items
            .iter()
            .flat_map(|i| i.record.key.iter().chain(i.record.manifest_key.iter()))
        {
            if let Some(l) = stored.keys.get(k.as_str()) {
                l.owned.store(true, Ordering::Relaxed);
            }
        }
    }
    let total = plan.items.len();
    let mut entries: Vec<PruneEntry> = plan
        .items
        .into_iter()
        .map(|item| {
            let selected = req
                .backup_type
                .as_ref()
                .is_none_or(|t| t == &item.record.backup_type);
            let (decision, reason) = if selected || item.decision == Decision::Keep {
                (item.decision, item.reason)
            } else {
                (
                    Decision::Keep,
                    format!(
                        "not selected (--type {})",
                        req.backup_type.as_deref().unwrap_or("")
                    ),
                )
            };
            PruneEntry {
                record: item.record,
                decision,
                reason,
                done: false,
                prune_error: None,
            }
        })
        .collect();
    // A dry run says what the real prune would refuse, not only what it plans.
    said.extend(
        refuse_unsafe(storage, server, &mut entries)
            .into_iter()
            .map(Said::Error),
    );
    if let Some(problem) = unchecked {
        said.push(Said::Error(format!(
            "storage '{}': {problem}",
            storage.name()
        )));
        for e in entries
            .iter_mut()
            .filter(|e| e.decision == Decision::Remove)
        {
            e.prune_error.get_or_insert_with(|| problem.clone());
        }
    }
    Settled {
        total,
        entries,
        bases: Vec::new(),
        said,
    }
}

/// The directories a database's backups are stored in, under `server`'s prefix (its current
/// component and the plain encoding older versions wrote).
fn database_dirs(server: &str, database: &str) -> [String; 2] {
    let server_dir = layout::server_prefix(server);
    [
        format!("{server_dir}{}/", layout::database_component(database)),
        format!("{server_dir}{}/", layout::encode_component(database)),
    ]
}

/// Crosses off `unowned` the keys of the records the index gained while the storage was
/// listed: the listing runs beside the reading of the first databases, so a backup recorded
/// meanwhile may be listed and not read. Only when keys are left (rarely: each is reported)
/// is the index read again, and only the databases whose directories hold them.
fn cross_off_late(
    store: &IndexStore,
    server: &str,
    unowned: &mut HashSet<String>,
) -> Result<(), crate::index::IndexError> {
    if unowned.is_empty() {
        return Ok(());
    }
    let (summary, legacy) = store.snapshot()?;
    let records = match legacy {
        Some(all) => all,
        None => {
            let mut records = Vec::new();
            for db in summary.databases.keys() {
                let dirs = database_dirs(server, db);
                if unowned
                    .iter()
                    .any(|k| dirs.iter().any(|d| k.starts_with(d.as_str())))
                {
                    records.extend(store.read_summarized(db, &summary)?);
                }
            }
            records
        }
    };
    for k in records
        .iter()
        .flat_map(|r| r.key.iter().chain(r.manifest_key.iter()))
    {
        unowned.remove(k.as_str());
    }
    Ok(())
}

/// Plans one database's records ([`retention::plan_without`]) and checks that every copy on
/// this storage that the plan keeps is there: a kept copy stands in for the older ones the plan
/// removes, so one whose object is gone (deleted by hand, a lifecycle rule) must count as no
/// copy, and the database is planned again without it until each copy kept is one that is
/// stored, at the size the index records (one cut short or emptied is no copy either).
/// `stored` holds the keys the storage's listing gave when the prune began (`None` when it
/// could not be listed): every copy of this database it lacks is gone, in one pass, so that a
/// storage emptied behind the index costs one plan, not one per kept copy. A copy whose record
/// names a file that is not its own (an edited or damaged index: another database's object,
/// which that database's plan may remove in this very run) is no copy either, whatever order
/// the databases are planned and applied in.
///
/// Returns the plan, why nothing of the database may be removed when a kept copy could not be
/// looked up, and the ids of this storage's copies that count as no copy.
fn plan_stored(
    records: Vec<BackupRecord>,
    settings: &Settings,
    now: DateTime<Utc>,
    storage: &dyn Storage,
    server: &str,
    stored: Option<&Stored>,
) -> (retention::Plan, Option<String>, HashSet<String>, Vec<Said>) {
    let own = |r: &BackupRecord| r.storage == storage.name();
    let good = |r: &BackupRecord| {
        own(r) && r.status == crate::index::Status::Success && !r.failed_verification()
    };
    // Each copy of this storage that counts as no copy, by id, with why; said in words only for
    // the few that are warned about.
    let mut gone: HashMap<String, NoCopy> = HashMap::default();
    let mut said = Vec::new();
    let mut warned = 0usize;
    let mut say = |r: &BackupRecord, why: &str| {
        if warned < MAX_COPY_WARNINGS {
            said.push(Said::Warning(format!(
                "storage '{}': backup {} of {}/{} ({}) is in the index, but {why}: it counts as no copy, and older copies keep its place (`sqlguard verify --db {}` records it as failed)",
                storage.name(),
                r.id,
                r.server,
                r.database,
                r.backup_type,
                r.database
            )));
        } else if warned == MAX_COPY_WARNINGS {
            said.push(Said::Warning(format!(
                "storage '{}': more copies of {}/{} are not as the index says; `sqlguard prune --dry-run -v` lists each",
                storage.name(),
                r.server,
                r.database
            )));
        }
        warned += 1;
    };
    let cannot = |r: &BackupRecord, e: &crate::storage::StorageError| {
        format!(
            "cannot check that backup {} of {}/{} ({}), which the policy keeps, is stored ({e}): nothing of this database is removed, since the copy kept in their place may be gone",
            r.id, r.server, r.database, r.backup_type
        )
    };
    // Every copy the listing lacks is gone, in one pass before any plan (one that finished
    // since shortly before the listing is looked up: it may have landed after it). A copy
    // that has no place in the listing cannot be judged this way; the plan's kept ones are
    // looked up below.
    if let Some(stored) = stored {
        for r in records.iter().filter(|r| good(r)) {
            let Some(key) = r.key.as_ref() else {
                continue;
            };
            if stored.keys.contains_key(key.as_str()) {
                continue;
            }
            if r.finished_at >= stored.at - chrono::Duration::minutes(10) {
                match storage.stat(key) {
                    Ok(Some(_)) => continue,
                    Ok(None) => {}
                    Err(e) => {
                        let problem = cannot(r, &e);
                        let plan = retention::plan(records, settings, now);
                        return (plan, Some(problem), HashSet::default(), said);
                    }
                }
            }
            gone.insert(r.id.clone(), NoCopy::Missing);
        }
    }
    // Then each copy the plan keeps: its own files (a record edited to name another's file,
    // which may be removed in this very run, is no copy), at the size the index says (from the
    // listing where it carries sizes, else looked up: one lookup per kept copy); a copy that is
    // not stands in for nothing, and the database is planned again.
    let mut checked: HashSet<String> = HashSet::default();
    let mut records = records;
    loop {
        let plan = retention::plan_without(records, settings, now, &|r| {
            own(r) && gone.contains_key(&r.id)
        });
        let mut found = false;
        for item in &plan.items {
            let r = &item.record;
            let Some(key) = r.key.as_ref() else {
                continue;
            };
            if item.decision != Decision::Keep
                || !good(r)
                || gone.contains_key(&r.id)
                || !checked.insert(r.id.clone())
            {
                continue;
            }
            if let Some(k) = r.foreign_key(server) {
                gone.insert(r.id.clone(), NoCopy::NotItsOwn(k.to_string()));
                found = true;
                continue;
            }
            let listed = stored.and_then(|s| s.keys.get(key.as_str())?.size);
            let size = match listed {
                Some(s) => Ok(Some(s)),
                None => storage.stat(key).map(|m| m.map(|m| m.size)),
            };
            let size = match size {
                Ok(Some(s)) if s == r.compressed_bytes => continue,
                Ok(s) => s,
                Err(e) => {
                    let problem = cannot(r, &e);
                    return (plan, Some(problem), gone.into_keys().collect(), said);
                }
            };
            gone.insert(
                r.id.clone(),
                size.map_or(NoCopy::Missing, NoCopy::WrongSize),
            );
            found = true;
        }
        if !found {
            // Said of the copies that stay as no copy (those that would go anyway are a
            // killed prune's leftovers, and go now).
            for item in plan.items.iter().filter(|i| i.decision == Decision::Keep) {
                let r = &item.record;
                let (Some(no_copy), Some(key)) = (gone.get(&r.id).filter(|_| own(r)), &r.key)
                else {
                    continue;
                };
                let why = match no_copy {
                    NoCopy::WrongSize(s) => format!(
                        "its object '{key}' has {s} bytes, the index says {}",
                        r.compressed_bytes
                    ),
                    NoCopy::Missing => format!("its object '{key}' is not on the storage"),
                    NoCopy::NotItsOwn(k) => format!(
                        "'{k}' is not a file of this backup (the index was edited or damaged; `sqlguard index rebuild` rebuilds it from the manifests)"
                    ),
                };
                say(r, &why);
            }
            return (plan, None, gone.into_keys().collect(), said);
        }
        records = plan.items.into_iter().map(|i| i.record).collect();
    }
}

/// Why a copy the index records counts as no copy ([`plan_stored`]).
enum NoCopy {
    /// Its object is not on the storage.
    Missing,
    /// Its object has this many bytes, not the index's.
    WrongSize(u64),
    /// Its record names this file, which is not one of the backup's own.
    NotItsOwn(String),
}

/// Records removed per index write: at least [`BATCH`], else a tenth of the database, so that a
/// database is rewritten a bounded number of times whatever it holds (a prune is linear in what
/// it removes), and a killed prune redoes at most one batch (deleting a missing key succeeds).
fn batch_size(records: usize) -> usize {
    BATCH.max(records / 10)
}

/// Marks the removals of one database whose files must not be deleted, with why: a file that is
/// not one of the backup's own (an edited or damaged record), or one that a record the policy
/// keeps names too (a record copied under another time or id). Nothing is deleted for them.
///
/// Returns what to say of each, in order.
fn refuse_unsafe(storage: &dyn Storage, server: &str, entries: &mut [PruneEntry]) -> Vec<String> {
    // Only this storage's own copies have objects here; other records are index entries.
    let own = |r: &BackupRecord| r.storage == storage.name();
    fn files(r: &BackupRecord) -> impl Iterator<Item = &String> {
        r.key.iter().chain(r.manifest_key.iter())
    }
    let kept: HashMap<String, String> = entries
        .iter()
        .filter(|e| e.decision != Decision::Remove && own(&e.record))
        .flat_map(|e| files(&e.record).map(|k| (k.clone(), e.record.id.clone())))
        .collect();
    let mut said = Vec::new();
    for e in entries.iter_mut() {
        let r = &e.record;
        if e.decision != Decision::Remove || !own(r) {
            continue;
        }
        let refusal = if let Some(bad) = r.foreign_key(server) {
            format!(
                "refusing to delete '{bad}': it is not a file of backup {} of {server}/{} ({}); the index names it, so it was edited or damaged (`sqlguard index rebuild` rebuilds it from the manifests)",
                r.id, r.database, r.backup_type
            )
        } else if let Some((k, keeper)) = files(r).find_map(|k| kept.get(k).map(|id| (k, id))) {
            format!(
                "refusing to delete '{k}': backup {keeper}, which the policy keeps, names it too; the index was edited or damaged (`sqlguard index rebuild` rebuilds it from the manifests)"
            )
        } else {
            continue;
        };
        said.push(format!("storage '{}': {refusal}", storage.name()));
        e.prune_error = Some(refusal);
    }
    said
}

/// Deletes the objects and manifests of one database's removals (in batches, through the
/// storage's batch delete), and drops their records from its index after each batch.
#[allow(clippy::too_many_arguments)]
fn apply(
    store: &IndexStore,
    storage: &dyn Storage,
    records: usize,
    entries: &mut [PruneEntry],
    ui: &Ui,
    cancel: &AtomicBool,
    out: &mut PruneOutcome,
) {
    let removals: Vec<usize> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.decision == Decision::Remove && e.prune_error.is_none())
        .map(|(i, _)| i)
        .collect();
    for batch in removals.chunks(batch_size(records)) {
        if cancel.load(Ordering::Relaxed) {
            out.interrupted = true;
            return;
        }
        let keys: Vec<String> = batch
            .iter()
            .map(|&i| &entries[i].record)
            .filter(|r| r.storage == storage.name())
            .flat_map(|r| r.key.iter().chain(r.manifest_key.iter()).cloned())
            .collect();
        let failed: std::collections::HashMap<String, String> = match storage.delete_many(&keys) {
            Ok(f) => f.into_iter().map(|(k, e)| (k, e.to_string())).collect(),
            Err(e) => {
                ui.error(&e.to_string());
                for &i in batch {
                    entries[i].prune_error = Some(e.to_string());
                }
                continue;
            }
        };
        let mut dropped: HashSet<(String, String)> = HashSet::default();
        for &i in batch {
            let e = &mut entries[i];
            let r = &e.record;
            let problem = r
                .key
                .iter()
                .chain(r.manifest_key.iter())
                .filter(|_| r.storage == storage.name())
                .find_map(|k| failed.get(k));
            match problem {
                Some(err) => {
                    ui.error(err);
                    e.prune_error = Some(err.clone());
                }
                None => {
                    ui.debug(&format!(
                        "storage '{}': removed {} of {}/{} ({}): {}",
                        storage.name(),
                        r.id,
                        r.database,
                        r.backup_type,
                        human_bytes(r.compressed_bytes),
                        e.reason
                    ));
                    e.done = true;
                    dropped.insert((r.id.clone(), r.storage.clone()));
                }
            }
        }
        if dropped.is_empty() {
            continue;
        }
        let scope = crate::index::scope_of(
            batch
                .iter()
                .map(|&i| &entries[i].record)
                .filter(|r| dropped.contains(&(r.id.clone(), r.storage.clone()))),
        );
        // Only records still in the index under its lock count as this run's removals: another
        // prune (another host's, with its own job lock) may have removed some since the plan
        // was read, and deleting what is gone succeeds for both.
        let mut present: HashSet<(String, String)> = HashSet::default();
        let updated = store.update(&scope, |records| {
            records.retain(|r| {
                let key = (r.id.clone(), r.storage.clone());
                let drop = dropped.contains(&key);
                if drop {
                    present.insert(key);
                }
                !drop
            });
        });
        if updated.is_ok() {
            for &i in batch {
                let en = &mut entries[i];
                let key = (en.record.id.clone(), en.record.storage.clone());
                if dropped.contains(&key) && !present.contains(&key) {
                    en.done = false;
                    en.reason
                        .push_str("; already removed by another prune meanwhile");
                }
            }
        }
        if let Err(e) = updated {
            // The objects are gone and their records may stay: said per entry, not "done".
            let msg = format!(
                "its files were removed, but the index update failed ({e}): its record stays until the next prune removes it"
            );
            for &i in batch {
                let en = &mut entries[i];
                if dropped.contains(&(en.record.id.clone(), en.record.storage.clone())) {
                    en.done = false;
                    en.prune_error = Some(msg.clone());
                }
            }
            ui.error(&e.to_string());
            out.errors.push(e.to_string());
            return;
        }
    }
}

/// Lists the backup objects and manifests under `server`'s prefix, in one pass with what else
/// it gives ([`Storage::survey`]).
///
/// Fails when the storage cannot be listed.
fn stored_backups(
    storage: &dyn Storage,
    server: &str,
    orphan_cutoff: DateTime<Utc>,
) -> Result<Stored, crate::storage::StorageError> {
    let at = Utc::now();
    let survey = storage.survey(&layout::server_prefix(server), orphan_cutoff)?;
    let mut keys = HashMap::with_capacity_and_hasher(survey.keys.len(), Default::default());
    for (key, size) in survey.keys {
        let name = memchr::memrchr(b'/', key.as_bytes()).map_or(key.as_str(), |i| &key[i + 1..]);
        let backup = (name.ends_with(layout::MANIFEST_SUFFIX)
            || name.contains(".sql")
            || name.contains(".binlog"))
            && !name.starts_with('.');
        if backup {
            let owned = AtomicBool::new(false);
            keys.insert(key, Listed { size, owned });
        }
    }
    Ok(Stored {
        at,
        keys,
        orphans: survey.orphans,
    })
}

/// Reports the stored backups no record owns, into `out.unrecorded`, in key order; one gone
/// since the listing is not reported. A manifest whose object is not there describes nothing
/// (a run killed between writing it and storing the object): once older than `cutoff` it is
/// an orphan, removed (unless `dry_run`).
#[allow(clippy::too_many_arguments)]
fn report_unrecorded(
    storage: &dyn Storage,
    unowned: HashSet<String>,
    siblings: &HashMap<String, Siblings>,
    cutoff: DateTime<Utc>,
    dry_run: bool,
    cancel: &AtomicBool,
    ui: &Ui,
    out: &mut PruneOutcome,
) {
    let mut left: Vec<String> = unowned.into_iter().collect();
    left.sort_unstable();
    let stopped = || cancel.load(Ordering::Relaxed);
    // Each as it is now: one gone since the listing is not reported.
    let mut found = Vec::with_capacity(left.len());
    for key in left {
        if stopped() {
            out.interrupted = true;
            return;
        }
        match storage.stat(&key) {
            Ok(Some(m)) => found.push(m),
            Ok(None) => {}
            Err(e) => {
                ui.error(&e.to_string());
                out.errors.push(e.to_string());
            }
        }
    }
    let listed = |key: &str| siblings.get(stem_of(key)).copied().unwrap_or_default();
    let lone = |m: &crate::storage::ObjectMeta| {
        m.key.ends_with(layout::MANIFEST_SUFFIX)
            && !listed(&m.key).object
            && m.modified.is_some_and(|t| t < cutoff)
    };
    // A manifest to be removed for want of its object: its directory is listed again now (once
    // per directory, however many), in case the object landed since the first listing; any
    // file of its stem but the manifest counts as the object. One that cannot be looked up
    // is left.
    let mut landed: HashSet<String> = HashSet::default();
    let mut unsure: HashSet<String> = HashSet::default();
    if !dry_run {
        let dirs: std::collections::BTreeSet<&str> = found
            .iter()
            .filter(|m| lone(m))
            .map(|m| m.key.rsplit_once('/').map_or("", |(d, _)| d))
            .collect();
        for dir in dirs {
            if stopped() {
                out.interrupted = true;
                return;
            }
            match storage.list_keys(&format!("{dir}/")) {
                Ok(keys) => landed.extend(
                    keys.iter()
                        .filter(|k| !k.ends_with(layout::MANIFEST_SUFFIX))
                        .map(|k| stem_of(k).to_string()),
                ),
                Err(e) => {
                    ui.error(&e.to_string());
                    out.errors.push(e.to_string());
                    unsure.insert(dir.to_string());
                }
            }
        }
    }
    for m in found {
        if stopped() {
            out.interrupted = true;
            return;
        }
        let is_manifest = m.key.ends_with(layout::MANIFEST_SUFFIX);
        let has_manifest = listed(&m.key).manifest;
        let dir = m.key.rsplit_once('/').map_or("", |(d, _)| d);
        let has_object = listed(&m.key).object || landed.contains(stem_of(&m.key));
        let orphaned = lone(&m) && !has_object && !unsure.contains(dir);
        if orphaned {
            let mut entry = OrphanEntry {
                storage: storage.name().to_string(),
                orphan: Orphan {
                    kind: "manifest",
                    key: m.key,
                    upload_id: None,
                    size: m.size,
                    modified: m.modified,
                },
                done: false,
                error: None,
            };
            if !dry_run {
                match storage.delete(&entry.orphan.key) {
                    Ok(()) => {
                        entry.done = true;
                        ui.info(&format!(
                            "storage '{}': removed manifest {}, whose object was never stored",
                            storage.name(),
                            entry.orphan.key
                        ));
                    }
                    Err(e) => {
                        ui.error(&e.to_string());
                        entry.error = Some(e.to_string());
                    }
                }
            }
            out.orphans.push(entry);
            continue;
        }
        let adoptable = has_manifest && has_object;
        ui.warn(&format!(
            "storage '{}': {} is not in the index (a run killed before recording it?): left in place; {}",
            storage.name(),
            m.key,
            unrecorded_fix(is_manifest, adoptable)
        ));
        out.unrecorded.push(Unrecorded {
            storage: storage.name().to_string(),
            key: m.key,
            size: m.size,
            modified: m.modified,
            adoptable,
        });
    }
}

/// The files a listing holds beside an unrecorded one (of the same stem, [`stem_of`]).
#[derive(Debug, Default, Clone, Copy)]
struct Siblings {
    manifest: bool,
    object: bool,
}

/// The stem `<dir>/<id>` a backup's files share (an id holds no dot).
fn stem_of(key: &str) -> &str {
    let start = key.rfind('/').map_or(0, |i| i + 1);
    key[start..].find('.').map_or(key, |d| &key[..start + d])
}

/// What to do about a stored backup file no record owns.
pub fn unrecorded_fix(is_manifest: bool, adoptable: bool) -> &'static str {
    match (adoptable, is_manifest) {
        (true, _) => "`sqlguard index rebuild` adopts it",
        (false, true) => "its object was never stored: prune removes it once older than orphan_min_age",
        (false, false) => "no manifest describes it, so `sqlguard index rebuild` cannot adopt it: remove it by hand once you know it is not needed",
    }
}

#[allow(clippy::too_many_arguments)]
fn clean_orphans(
    storage: &dyn Storage,
    prefix: &str,
    listed: Option<Vec<Orphan>>,
    cutoff: DateTime<Utc>,
    dry_run: bool,
    running: &dyn Fn(&Orphan) -> Option<crate::joblock::Holder>,
    ui: &Ui,
    out: &mut PruneOutcome,
) {
    let found = match listed.map_or_else(|| storage.orphans(prefix, cutoff), Ok) {
        Ok(f) => f,
        Err(e) => {
            ui.error(&e.to_string());
            out.errors.push(e.to_string());
            return;
        }
    };
    for orphan in found {
        if let Some(holder) = running(&orphan) {
            ui.info(&format!(
                "storage '{}': left {} {}: a backup of its type is running ({holder})",
                storage.name(),
                orphan.kind,
                orphan.key
            ));
            continue;
        }
        let mut entry = OrphanEntry {
            storage: storage.name().to_string(),
            orphan,
            done: false,
            error: None,
        };
        if !dry_run {
            match storage.remove_orphan(&entry.orphan) {
                Ok(()) => {
                    entry.done = true;
                    ui.info(&format!(
                        "storage '{}': removed orphan {} {}",
                        storage.name(),
                        entry.orphan.kind,
                        entry.orphan.key
                    ));
                }
                Err(e) => {
                    ui.error(&e.to_string());
                    entry.error = Some(e.to_string());
                }
            }
        }
        out.orphans.push(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Status;
    use crate::storage::memory::MemoryStorage;

    /// Nothing is deleted for a removal whose record names a file that is not its own, or one a
    /// kept record names too; said before any delete, so a dry run says it as well.
    #[test]
    fn removals_that_would_delete_what_is_kept_or_not_theirs_are_refused() {
        let s = MemoryStorage::new("mem");
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 28, 2, 30, 0).unwrap();
        let sample =
            |id: &str| BackupRecord::sample(id, "shop", "daily", "mem", Status::Success, at);
        let entry = |record: BackupRecord, decision: Decision| PruneEntry {
            record,
            decision,
            reason: "test".into(),
            done: false,
            prune_error: None,
        };
        let kept = sample("20261128T023000Z_0000000a");
        // The same backup copied under another start time: the same files.
        let mut copy = kept.clone();
        copy.started_at -= chrono::Duration::days(400);
        let mut foreign = sample("20261128T023000Z_0000000b");
        foreign.key = Some("main/index/summary.json".into());
        let fine = sample("20261128T023000Z_0000000c");
        let mut entries = vec![
            entry(kept, Decision::Keep),
            entry(copy, Decision::Remove),
            entry(foreign, Decision::Remove),
            entry(fine, Decision::Remove),
        ];
        let said = refuse_unsafe(&s, "main", &mut entries);
        assert_eq!(said.len(), 2, "{said:?}");
        let errors: Vec<Option<&str>> = entries.iter().map(|e| e.prune_error.as_deref()).collect();
        assert!(errors[0].is_none() && errors[3].is_none(), "{errors:?}");
        assert!(
            errors[1].is_some_and(|e| e.contains("which the policy keeps, names it too")),
            "{errors:?}"
        );
        assert!(
            errors[2].is_some_and(|e| e.contains("not a file of backup")),
            "{errors:?}"
        );
    }

    /// Two prunes planned from the same index (two hosts, each with its own job lock): the
    /// removals are counted once, by the run that took the records out of the index.
    #[test]
    fn removals_another_prune_made_meanwhile_are_not_counted_twice() {
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 28, 2, 30, 0).unwrap();
        let r = BackupRecord::sample("a", "shop", "daily", "mem", Status::Success, at);
        s.put_bytes(r.key.as_deref().unwrap(), b"x").unwrap();
        store.upsert(std::slice::from_ref(&r)).unwrap();
        let planned = || {
            vec![PruneEntry {
                record: r.clone(),
                decision: Decision::Remove,
                reason: "test".into(),
                done: false,
                prune_error: None,
            }]
        };
        let ui = Ui::new(true, false, true, true);
        let (mut first, mut second) = (planned(), planned());
        let mut outs = [PruneOutcome::default(), PruneOutcome::default()];
        for (entries, out) in [&mut first, &mut second].into_iter().zip(outs.iter_mut()) {
            apply(&store, &s, 1, entries, &ui, &AtomicBool::new(false), out);
            for e in entries.iter() {
                out.count(e);
            }
        }
        assert!(first[0].done && first[0].prune_error.is_none());
        assert!(!second[0].done && second[0].prune_error.is_none());
        assert!(second[0]
            .reason
            .contains("already removed by another prune"));
        assert_eq!(outs[0].removed(), (1, r.compressed_bytes));
        assert_eq!(outs[1].removed(), (0, 0));
        assert!(outs[1].all_ok());
    }

    /// A copy whose record names another database's object (an edited index) stands in for
    /// nothing: that object may be removed by the other database's plan in this very run, and
    /// the older copies of this database must keep its place, whatever order the databases are
    /// planned and applied in.
    #[test]
    fn a_kept_copy_naming_a_file_not_its_own_is_no_copy() {
        let yaml = "servers:\n  main: {}\nstorage:\n  mem: {type: local, path: /x}\nbackup_types:\n  daily:\n    retention: {keep_last: 1}\n";
        let settings = crate::config::test_support::from_yaml(yaml, &[]).unwrap();
        let s = MemoryStorage::new("mem");
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 20, 2, 30, 0).unwrap();
        let older = BackupRecord::sample(
            "20261120T023000Z_0000000a",
            "shop",
            "daily",
            "mem",
            Status::Success,
            at,
        );
        let mut edited = BackupRecord::sample(
            "20261121T023000Z_0000000b",
            "shop",
            "daily",
            "mem",
            Status::Success,
            at + chrono::Duration::days(1),
        );
        let crm = BackupRecord::sample(
            "20261121T023000Z_0000000c",
            "crm",
            "daily",
            "mem",
            Status::Success,
            at,
        );
        edited.key = crm.key.clone();
        for r in [&older, &crm] {
            s.put_bytes(r.key.as_deref().unwrap(), b"0123456789")
                .unwrap();
            s.put_bytes(r.manifest_key.as_deref().unwrap(), b"{}")
                .unwrap();
        }
        let now = at + chrono::Duration::days(2);
        let (plan, unchecked, gone, said) = plan_stored(
            vec![older.clone(), edited.clone()],
            &settings,
            now,
            &s,
            "main",
            None,
        );
        assert!(unchecked.is_none());
        assert_eq!(gone, HashSet::from_iter([edited.id.clone()]));
        let kept: Vec<&str> = plan
            .items
            .iter()
            .filter(|i| i.decision == Decision::Keep)
            .map(|i| i.record.id.as_str())
            .collect();
        assert!(kept.contains(&older.id.as_str()), "{kept:?}");
        assert!(
            said.iter().any(
                |s| matches!(s, Said::Warning(w) if w.contains("is not a file of this backup"))
            ),
            "no warning"
        );
    }

    /// A manifest whose object the listing lacked is removed only when its directory, listed
    /// again at removal time, still has no object of its stem; one that landed since is kept
    /// and adoptable. A dry run goes by the listing alone. Unrecorded files are told apart by
    /// the listing, with no listing per file.
    #[test]
    fn a_lone_manifest_is_looked_for_again_before_it_goes() {
        let root = tempfile::tempdir().unwrap();
        let s = crate::storage::local::LocalStorage::new("local", root.path());
        let dir = "main/shop/daily";
        let landed = format!("{dir}/20261128T023000Z_0000000a");
        let lone = format!("{dir}/20261128T023000Z_0000000b");
        for stem in [&landed, &lone] {
            s.put_bytes(&format!("{stem}{}", layout::MANIFEST_SUFFIX), b"{}")
                .unwrap();
        }
        let unowned: HashSet<String> = [&landed, &lone]
            .iter()
            .map(|stem| format!("{stem}{}", layout::MANIFEST_SUFFIX))
            .collect();
        // The listing saw the manifests only; then one object landed.
        let siblings: HashMap<String, Siblings> = [&landed, &lone]
            .iter()
            .map(|stem| {
                let only = Siblings {
                    manifest: true,
                    object: false,
                };
                (stem.to_string(), only)
            })
            .collect();
        s.put_bytes(&format!("{landed}.sql.zst"), b"x").unwrap();
        let cutoff = Utc::now() + chrono::Duration::hours(1);
        let ui = Ui::new(true, false, true, true);
        let never = AtomicBool::new(false);
        for dry_run in [true, false] {
            let mut out = PruneOutcome::default();
            report_unrecorded(
                &s,
                unowned.clone(),
                &siblings,
                cutoff,
                dry_run,
                &never,
                &ui,
                &mut out,
            );
            let orphans: Vec<&str> = out.orphans.iter().map(|o| o.orphan.key.as_str()).collect();
            let lone_manifest = format!("{lone}{}", layout::MANIFEST_SUFFIX);
            let landed_manifest = format!("{landed}{}", layout::MANIFEST_SUFFIX);
            if dry_run {
                assert_eq!(orphans.len(), 2, "{orphans:?}");
            } else {
                assert_eq!(orphans, [lone_manifest.as_str()]);
                assert!(out
                    .unrecorded
                    .iter()
                    .any(|u| u.key == landed_manifest && u.adoptable));
                assert!(s.stat(&landed_manifest).unwrap().is_some());
                assert!(s.stat(&lone_manifest).unwrap().is_none());
            }
        }
        // Asked to stop: nothing more is looked at or removed.
        s.put_bytes(&format!("{lone}{}", layout::MANIFEST_SUFFIX), b"{}")
            .unwrap();
        let mut out = PruneOutcome::default();
        report_unrecorded(
            &s,
            unowned,
            &siblings,
            cutoff,
            false,
            &AtomicBool::new(true),
            &ui,
            &mut out,
        );
        assert!(out.interrupted && out.orphans.is_empty() && out.unrecorded.is_empty());
    }

    /// The listing runs beside the first reads: a backup recorded after its database was read
    /// is no unrecorded object, and the index is read again only for the databases whose
    /// directories hold what is left.
    #[test]
    fn what_the_index_gained_while_listing_is_crossed_off() {
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 28, 2, 30, 0).unwrap();
        let late = BackupRecord::sample(
            "20261128T023000Z_0000000a",
            "shop",
            "daily",
            "mem",
            Status::Success,
            at,
        );
        let other = BackupRecord::sample(
            "20261128T023000Z_0000000b",
            "crm",
            "daily",
            "mem",
            Status::Success,
            at,
        );
        store.upsert(&[late.clone(), other]).unwrap();
        // Another database's damaged files are not read.
        for k in s
            .list_keys(&layout::database_index_dir("main", "crm"))
            .unwrap()
        {
            s.put_bytes(&k, b"{").unwrap();
        }
        let stray = "main/shop/daily/20200101T000000Z_00000001.sql.zst".to_string();
        let keys = |r: &BackupRecord| [r.key.clone().unwrap(), r.manifest_key.clone().unwrap()];
        let mut unowned: HashSet<String> = keys(&late).into_iter().collect();
        unowned.insert(stray.clone());
        cross_off_late(&store, "main", &mut unowned).unwrap();
        assert_eq!(unowned, HashSet::from_iter([stray.clone()]));
        // Nothing left: the index is not read at all.
        for k in s.list_keys("main/index/").unwrap() {
            s.put_bytes(&k, b"{").unwrap();
        }
        let mut none = HashSet::default();
        cross_off_late(&store, "main", &mut none).unwrap();
        assert!(cross_off_late(&store, "main", &mut unowned).is_err());
    }

    #[test]
    fn removals_whose_records_stay_are_not_reported_done() {
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 28, 2, 30, 0).unwrap();
        let r = BackupRecord::sample("a", "shop", "daily", "mem", Status::Success, at);
        s.put_bytes(r.key.as_deref().unwrap(), b"x").unwrap();
        store.upsert(std::slice::from_ref(&r)).unwrap();
        let mut entries = vec![PruneEntry {
            record: r.clone(),
            decision: Decision::Remove,
            reason: "test".into(),
            done: false,
            prune_error: None,
        }];
        // The index update after the objects went fails (a full disk at the summary).
        s.fail_put_bytes("summary", 0);
        let mut out = PruneOutcome::default();
        let ui = Ui::new(true, false, true, true);
        apply(
            &store,
            &s,
            1,
            &mut entries,
            &ui,
            &AtomicBool::new(false),
            &mut out,
        );
        assert!(!entries[0].done);
        assert!(
            entries[0]
                .prune_error
                .as_deref()
                .is_some_and(|e| e.contains("record stays until the next prune")),
            "{:?}",
            entries[0].prune_error
        );
        assert!(!out.errors.is_empty());
    }
}
