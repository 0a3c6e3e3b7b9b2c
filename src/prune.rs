//! Applies retention: plans with [`crate::retention::plan`] per storage and server, deletes the
//! exact object and manifest keys the index owns, updates the index, and removes orphans (temp
//! files and incomplete uploads of killed runs, older than `orphan_min_age`).
//!
//! It never deletes by glob or listing: backup objects are deleted only by the keys recorded in
//! the index, and only keys under the server's own prefix. Orphans are found by listing, but only
//! sqlguard's own temp names and uploads match. Deletions are recorded in the index in batches,
//! so a prune killed midway leaves records whose objects may be gone; the next prune plans the
//! same removals (deleting a missing key succeeds) and finishes the job.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::settings::Unknown;
use crate::config::Settings;
use crate::index::{BackupRecord, IndexStore};
use crate::layout;
use crate::retention::{self, Decision};
use crate::storage::{Orphan, Storage};
use crate::ui::{human_bytes, Ui};

/// Records removed from the index per write.
const BATCH: usize = 50;

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
/// copy and recording it leaves. Reported, never deleted; `index rebuild` adopts it when its
/// manifest and object are both there.
#[derive(Debug, Clone, Serialize)]
pub struct Unrecorded {
    pub storage: String,
    pub key: String,
    pub size: u64,
    pub modified: Option<DateTime<Utc>>,
}

/// What a prune did.
#[derive(Debug, Default, Serialize)]
pub struct PruneOutcome {
    pub dry_run: bool,
    pub entries: Vec<PruneEntry>,
    pub orphans: Vec<OrphanEntry>,
    /// Objects under a server's prefix that no record owns (left in place).
    pub unrecorded: Vec<Unrecorded>,
    /// Storages or indexes that could not be pruned, one message each.
    pub errors: Vec<String>,
    pub interrupted: bool,
}

impl PruneOutcome {
    /// Removed (or, in a dry run, to be removed) entries and their stored bytes.
    pub fn removed(&self) -> (usize, u64) {
        self.entries
            .iter()
            .filter(|e| e.decision == Decision::Remove && (e.done || self.dry_run))
            .fold((0, 0u64), |(n, b), e| {
                (n + 1, b.saturating_add(e.record.compressed_bytes))
            })
    }

    /// Removed entries, removed bytes and removed orphans, for the run's metrics.
    pub fn counts(&self) -> (usize, u64, usize) {
        let (entries, bytes) = self.removed();
        (
            entries,
            bytes,
            self.orphans.iter().filter(|o| o.done).count(),
        )
    }

    /// Whether everything planned was done.
    pub fn all_ok(&self) -> bool {
        self.errors.is_empty()
            && !self.interrupted
            && self.entries.iter().all(|e| e.prune_error.is_none())
            && self.orphans.iter().all(|o| o.error.is_none())
    }
}

/// Plans and (unless `dry_run`) applies retention on every selected storage and server.
///
/// Fails only for unknown names in the request; storage and index failures are in the outcome.
pub fn run(
    session: &crate::session::Session,
    req: &PruneRequest,
    now: DateTime<Utc>,
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
            .servers
            .iter()
            .filter(|s| req.servers.is_empty() || req.servers.contains(&s.name))
        {
            if cancel.load(Ordering::Relaxed) {
                out.interrupted = true;
                return Ok(out);
            }
            prune_index(
                settings,
                req,
                storage.as_ref(),
                &server.name,
                now,
                ui,
                cancel,
                &mut out,
            );
            clean_orphans(
                storage.as_ref(),
                &layout::server_prefix(&server.name),
                orphan_cutoff,
                req.dry_run,
                ui,
                &mut out,
            );
        }
    }
    Ok(out)
}

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
) {
    let store = IndexStore::new(storage, server);
    let index = match store.load() {
        Ok(i) => i,
        Err(e) => {
            ui.error(&e.to_string());
            out.errors.push(e.to_string());
            return;
        }
    };
    find_unrecorded(storage, server, &index, ui, out);
    let plan = retention::plan(&index.backups, settings, now);
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
    if !req.dry_run {
        apply(&store, storage, server, &mut entries, ui, cancel, out);
    }
    out.entries.extend(entries);
}

/// Deletes the objects and manifests of the removals, and drops their records from the index.
fn apply(
    store: &IndexStore,
    storage: &dyn Storage,
    server: &str,
    entries: &mut [PruneEntry],
    ui: &Ui,
    cancel: &AtomicBool,
    out: &mut PruneOutcome,
) {
    let mut pending: HashSet<(String, String)> = HashSet::new();
    let flush = |pending: &mut HashSet<(String, String)>, out: &mut PruneOutcome| -> bool {
        if pending.is_empty() {
            return true;
        }
        let drop_set = std::mem::take(pending);
        match store.update(|i| {
            i.backups
                .retain(|r| !drop_set.contains(&(r.id.clone(), r.storage.clone())))
        }) {
            Ok(_) => true,
            Err(e) => {
                ui.error(&e.to_string());
                out.errors.push(e.to_string());
                false
            }
        }
    };
    for e in entries
        .iter_mut()
        .filter(|e| e.decision == Decision::Remove)
    {
        if cancel.load(Ordering::Relaxed) {
            out.interrupted = true;
            break;
        }
        let r = &e.record;
        // Only this storage's own copies have objects here; other records are index entries.
        let keys: Vec<&String> = if r.storage == storage.name() {
            r.key.iter().chain(r.manifest_key.iter()).collect()
        } else {
            Vec::new()
        };
        if let Some(bad) = keys.iter().find(|k| !layout::is_owned_key(server, k)) {
            e.prune_error = Some(format!(
                "refusing to delete '{bad}': it is not under server '{server}'s prefix"
            ));
            ui.error(&format!(
                "storage '{}': {}",
                storage.name(),
                e.prune_error.as_deref().unwrap_or("")
            ));
            continue;
        }
        let mut failed = None;
        for k in keys {
            if let Err(err) = storage.delete(k) {
                failed = Some(err.to_string());
                break;
            }
        }
        match failed {
            Some(err) => {
                ui.error(&err);
                e.prune_error = Some(err);
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
                pending.insert((r.id.clone(), r.storage.clone()));
                if pending.len() >= BATCH && !flush(&mut pending, out) {
                    return;
                }
            }
        }
    }
    flush(&mut pending, out);
}

/// Lists the backup objects and manifests under `server`'s prefix that no record of `index`
/// owns, into `out.unrecorded`.
fn find_unrecorded(
    storage: &dyn Storage,
    server: &str,
    index: &crate::index::Index,
    ui: &Ui,
    out: &mut PruneOutcome,
) {
    let listing = match storage.list(&layout::server_prefix(server)) {
        Ok(l) => l,
        Err(e) => {
            ui.error(&e.to_string());
            out.errors.push(e.to_string());
            return;
        }
    };
    let owned: HashSet<&str> = index
        .backups
        .iter()
        .flat_map(|r| r.key.iter().chain(r.manifest_key.iter()))
        .map(String::as_str)
        .collect();
    for m in listing {
        let name = m.key.rsplit('/').next().unwrap_or("");
        let backup_like = name.ends_with(layout::MANIFEST_SUFFIX) || name.contains(".sql");
        if backup_like && !name.starts_with('.') && !owned.contains(m.key.as_str()) {
            ui.warn(&format!(
                "storage '{}': {} is not in the index (a run killed before recording it?): left in place; `sqlguard index rebuild` adopts it",
                storage.name(),
                m.key
            ));
            out.unrecorded.push(Unrecorded {
                storage: storage.name().to_string(),
                key: m.key,
                size: m.size,
                modified: m.modified,
            });
        }
    }
}

fn clean_orphans(
    storage: &dyn Storage,
    prefix: &str,
    cutoff: DateTime<Utc>,
    dry_run: bool,
    ui: &Ui,
    out: &mut PruneOutcome,
) {
    let found = match storage.orphans(prefix, cutoff) {
        Ok(f) => f,
        Err(e) => {
            ui.error(&e.to_string());
            out.errors.push(e.to_string());
            return;
        }
    };
    for orphan in found {
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
