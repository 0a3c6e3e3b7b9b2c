//! `index rebuild`: the index of one server on one storage recreated from what the storage
//! holds, merging what the old index knew.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{is_stub, records_of, upsert_all, BackupRecord, IndexError, IndexStore, Status};
use crate::layout;

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

/// How many `.bak-*` copies of an index file a rebuild keeps (the newest).
pub const KEEP_COPIES: usize = 3;

impl IndexStore<'_> {
    /// Rebuilds the index from what the storage holds, merging what the old index knew: each
    /// index file (or the legacy index) that parses, else the newest `.bak-*` copy of it that
    /// does. Every old record whose object still exists is kept as it was (with its
    /// verification), every failed record is kept (history), a manifest whose backup the old
    /// index did not know is adopted when its object exists, a kept record whose manifest is
    /// missing gets it back, and whatever cannot be accounted for is listed, never deleted. The
    /// old files are kept beside the new ones as `….bak-<time>` (the newest [`KEEP_COPIES`] of
    /// each).
    ///
    /// Fails when the storage cannot be listed, read or written, and when an old record's object
    /// that the listing does not show cannot be looked up by its key.
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
            if let Some(bad) = r.damage(&self.server) {
                // An edited or damaged record: its files are not where its backup's are, or
                // its segment is no range of a binary log.
                report.dropped.push(format!(
                    "{} ({}/{} on '{}'): {bad}",
                    r.id, r.database, r.backup_type, r.storage
                ));
                continue;
            }
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
                // Not listed is not yet gone: asked for by its key, an object the listing could
                // not show (behind a symbolic link in a local storage, say) fails the rebuild
                // with that error, and one that is there after all stays.
                (Status::Success, Some(k)) if self.storage.stat(k)?.is_some() => {
                    accounted.insert(k.to_string());
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
            let parsed = match self.storage.get_bytes(&meta.key) {
                Ok(b) => b.and_then(|b| serde_json::from_slice::<BackupRecord>(&b).ok()),
                Err(e) => {
                    report.unreadable.push(format!("{} ({e})", meta.key));
                    continue;
                }
            };
            match parsed {
                Some(r)
                    if r.server == self.server
                        && (r.damage(&self.server).is_some()
                            || r.times_problem().is_some()
                            || r.manifest_key.as_deref() != Some(meta.key.as_str())) =>
                {
                    report.unreadable.push(format!(
                        "{} ({})",
                        meta.key,
                        r.damage(&self.server)
                            .or_else(|| r.times_problem())
                            .unwrap_or_else(|| "it describes files that are not its own".into())
                    ));
                }
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
        let legacy_key = self.legacy_key();
        let index_file = |k: &str| layout::is_index_key(&self.server, k);
        for m in &listing {
            let name = m.key.rsplit('/').next().unwrap_or("");
            let ours = index_file(&m.key)
                || m.key == crate::binlog::state_key(&self.server)
                || name.starts_with('.')
                || accounted.contains(&m.key);
            if !ours && !report.unreadable.iter().any(|u| u.starts_with(&m.key)) {
                report.unaccounted.push(m.key.clone());
            }
        }
        // Keep a copy of what was there, write the new layout over it (each file replaced
        // whole), and only then remove the old files it has no place for: at every moment,
        // and after a kill at any moment, each file the summary lists is there and whole.
        let old_files: Vec<&str> = listing
            .iter()
            .map(|m| m.key.as_str())
            .filter(|k| index_file(k) && layout::bak_base(k).is_none())
            .collect();
        for key in &old_files {
            if let Some(old) = self.storage.get_bytes(key)? {
                if *key == legacy_key && is_stub(&old) {
                    continue;
                }
                self.keep_copy(key, &old, now)?;
            }
        }
        let mut new_files: std::collections::HashSet<String> = records
            .iter()
            .map(|r| self.partition_key(&r.database, &super::partition_of(r.started_at)))
            .collect();
        new_files.extend([self.summary_key(), legacy_key.clone()]);
        let stale: Vec<&str> = old_files
            .iter()
            .copied()
            .filter(|k| !new_files.contains(*k))
            .collect();
        // No summary while the files change: a reader (or the index a kill leaves) recomputes
        // it from the files, never trusts the old one; the new one comes last.
        self.storage.delete(&self.summary_key())?;
        report.backups = self.write_all(records, &stale)?;
        // Best effort: the rebuild is done, and a copy left over is only a file too many.
        let _ = self.drop_old_copies(&old_files);
        Ok(report)
    }

    /// Removes all but the newest [`KEEP_COPIES`] `.bak-*` copies of each of `files`, so that
    /// rebuilds do not pile them up.
    fn drop_old_copies(&self, files: &[&str]) -> Result<(), IndexError> {
        for key in files {
            let mut copies = self.storage.list_keys(&format!("{key}.bak-"))?;
            copies.sort_unstable();
            let surplus = copies.len().saturating_sub(KEEP_COPIES);
            for c in &copies[..surplus] {
                self.storage.delete(c)?;
            }
        }
        Ok(())
    }

    /// What the old index knew: the legacy index and every index file, each falling back to
    /// its newest `.bak-*` copy that parses when it is damaged (noted in `report.old_index`).
    fn old_records(
        &self,
        listing: &[crate::storage::ObjectMeta],
        report: &mut Rebuild,
    ) -> Result<Vec<BackupRecord>, IndexError> {
        let legacy_key = self.legacy_key();
        let summary_key = self.summary_key();
        let mut current: Vec<&str> = listing
            .iter()
            .map(|m| m.key.as_str())
            .filter(|k| {
                layout::is_index_key(&self.server, k)
                    && layout::bak_base(k).is_none()
                    && *k != summary_key
            })
            .collect();
        // A month file the summary (as written) lists but that is gone: its newest readable
        // `.bak` copy stands in, as for a damaged one. A month a prune emptied is not listed.
        let listed: std::collections::BTreeSet<String> = self
            .storage
            .get_bytes(&summary_key)
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice::<super::Summary>(&b).ok())
            .map(|s| {
                // A database marked dirty was being changed: a month may be gone for good.
                s.databases
                    .iter()
                    .filter(|(_, d)| !d.dirty)
                    .flat_map(|(db, d)| d.partitions.keys().map(|p| self.partition_key(db, p)))
                    .collect()
            })
            .unwrap_or_default();
        let missing: Vec<&str> = listed
            .iter()
            .map(String::as_str)
            .filter(|k| !current.contains(k))
            .collect();
        current.extend(missing);
        let mut sources = Vec::new();
        let mut out = Vec::new();
        for key in current {
            let bytes = self.storage.get_bytes(key)?;
            if key == legacy_key && bytes.as_deref().is_some_and(is_stub) {
                continue;
            }
            let gone = bytes.is_none();
            let parsed = bytes.and_then(|b| records_of(&b));
            let parsed = match parsed {
                Some(rs) => {
                    sources.push(key.to_string());
                    Some(rs)
                }
                None => {
                    report.unreadable.push(format!(
                        "{key} ({})",
                        if gone { "missing" } else { "damaged" }
                    ));
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
        report.old_index = match sources.len() {
            0 => None,
            1..=3 => Some(sources.join(", ")),
            n => Some(format!("{}, … and {} more", sources[..3].join(", "), n - 3)),
        };
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Verification;
    use crate::storage::memory::MemoryStorage;
    use crate::storage::Storage;

    fn record(id: &str, db: &str, status: Status) -> BackupRecord {
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 28, 2, 30, 0).unwrap();
        BackupRecord::sample(id, db, "daily", "mem", status, at)
    }

    #[test]
    fn a_rebuild_that_fails_midway_leaves_a_whole_index_and_copies_do_not_pile_up() {
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        let mut failed = record("f", "shop", Status::Failed);
        failed.error = Some("history".into());
        store.upsert(&[failed]).unwrap();
        let r = record("a", "shop", Status::Success);
        s.put_bytes(r.key.as_ref().unwrap(), b"data").unwrap();
        store.write_manifest(&r).unwrap();
        store.upsert(&[r]).unwrap();
        let before = store.load().unwrap().backups;
        // The new summary cannot be written: what readers see is still the old index, whole.
        s.fail_put_bytes("summary.json", 0);
        let t = |d: u32| chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, d, 0, 0, 0).unwrap();
        assert!(store.rebuild(t(29)).is_err());
        assert_eq!(store.load().unwrap().backups, before);
        for day in 1..=5 {
            store.rebuild(t(day)).unwrap();
        }
        assert_eq!(store.load().unwrap().backups, before);
        let copies = s
            .keys()
            .into_iter()
            .filter(|k| k.starts_with("main/index/db/shop/2026-11.json.bak-"))
            .count();
        assert_eq!(copies, KEEP_COPIES);
    }

    #[test]
    fn a_month_file_lost_from_under_its_summary_comes_back_from_its_copy() {
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        let mut failed = record("f", "shop", Status::Failed);
        failed.error = Some("history".into());
        store.upsert(&[failed]).unwrap();
        let t = |d: u32| chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, d, 0, 0, 0).unwrap();
        store.rebuild(t(28)).unwrap();
        s.delete("main/index/db/shop/2026-11.json").unwrap();
        let report = store.rebuild(t(29)).unwrap();
        assert_eq!(report.kept_failures, 1, "{report:?}");
        assert!(report
            .unreadable
            .iter()
            .any(|u| u.contains("2026-11.json (missing)")));
        assert_eq!(store.load().unwrap().backups.len(), 1);
    }

    /// A manifest whose start is not its id's time was edited (dated into the future, it
    /// would keep its database fresh for years): refused, not adopted.
    #[test]
    fn a_manifest_whose_start_contradicts_its_id_is_not_adopted() {
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 28, 2, 30, 0).unwrap()
            + chrono::Duration::milliseconds(250);
        let mut good = record("x", "shop", Status::Success);
        good.id = crate::layout::new_id(at);
        good.started_at = at;
        let mut edited = good.clone();
        edited.id = crate::layout::new_id(at);
        edited.started_at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2030, 1, 1, 0, 0, 0).unwrap();
        for r in [&mut good, &mut edited] {
            r.key = Some(crate::layout::object_key(
                "main",
                "shop",
                "daily",
                &r.id,
                crate::compress::Algorithm::Zstd,
                false,
            ));
            r.manifest_key = Some(crate::layout::manifest_key("main", "shop", "daily", &r.id));
            s.put_bytes(r.key.as_ref().unwrap(), b"data").unwrap();
            store.write_manifest(r).unwrap();
        }
        let report = store.rebuild(Utc::now()).unwrap();
        assert_eq!(report.adopted.len(), 1, "{report:?}");
        assert!(report.adopted[0].starts_with(&good.id), "{report:?}");
        assert!(
            report
                .unreadable
                .iter()
                .any(|u| u.contains(&edited.id) && u.contains("is not the time its id names")),
            "{report:?}"
        );
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
        s.put_bytes("main/index/db/shop/2026-11.json", b"garbage")
            .unwrap();
        s.put_bytes("main/index/summary.json", b"garbage").unwrap();
        let report = store.rebuild(Utc::now()).unwrap();
        assert_eq!(store.load().unwrap().backups, before.backups);
        assert_eq!(report.adopted.len(), 2, "{report:?}");
        assert_eq!(report.unreadable.len(), 2, "{report:?}");
        assert!(s
            .keys()
            .iter()
            .any(|k| k.starts_with("main/index/db/shop/2026-11.json.bak-")));
        // A second rebuild in the same second keeps its own copy: the damaged file's stays.
        let at = Utc::now();
        s.put_bytes("main/index/db/shop/2026-11.json", b"damaged again")
            .unwrap();
        store.rebuild(at).unwrap();
        store.rebuild(at).unwrap();
        let copies: Vec<Vec<u8>> = s
            .keys()
            .iter()
            .filter(|k| k.starts_with("main/index/db/shop/2026-11.json.bak-"))
            .map(|k| s.get_bytes(k).unwrap().unwrap())
            .collect();
        assert!(
            copies.iter().any(|c| c == b"damaged again"),
            "{} copies",
            copies.len()
        );
    }

    /// A segment record or manifest that names no plain binary log file, or a range that ends
    /// before it starts, is no backup: dropped from the index, refused from its manifest.
    #[test]
    fn a_segment_that_is_no_range_of_a_binary_log_is_not_rebuilt() {
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        let seg = |id: &str, file: &str, start: u64, end: u64| {
            let mut r = record(id, crate::binlog::DATABASE, Status::Success);
            r.backup_type = crate::binlog::TYPE.into();
            r.key = Some(crate::layout::segment_key(
                "main",
                crate::binlog::DATABASE,
                id,
                r.compression,
                false,
            ));
            r.manifest_key = Some(crate::layout::manifest_key(
                "main",
                crate::binlog::DATABASE,
                crate::binlog::TYPE,
                id,
            ));
            r.segment = Some(Box::new(crate::index::Segment {
                file: file.into(),
                start,
                end,
                ..Default::default()
            }));
            s.put_bytes(r.key.as_ref().unwrap(), b"data").unwrap();
            r
        };
        let good = seg("20261128T023000Z_00000001", "binlog.000001", 0, 100);
        let escape = seg("20261128T023000Z_00000002", "../../etc/passwd", 0, 100);
        let backwards = seg("20261128T023000Z_00000003", "binlog.000002", 100, 4);
        let beyond = seg("20261128T023000Z_00000004", "binlog.000003", 4, u64::MAX);
        for r in [&good, &escape, &backwards, &beyond] {
            store.write_manifest(r).unwrap();
        }
        store
            .upsert(&[good.clone(), backwards.clone(), beyond.clone()])
            .unwrap();
        let report = store.rebuild(Utc::now()).unwrap();
        let ids: Vec<String> = store
            .load()
            .unwrap()
            .backups
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, std::slice::from_ref(&good.id), "{report:?}");
        assert!(
            report
                .dropped
                .iter()
                .any(|d| d.contains("ends before it starts"))
                && report.dropped.iter().any(|d| d.contains("32-bit")),
            "{report:?}"
        );
        assert!(
            report
                .unreadable
                .iter()
                .any(|u| u.contains("\"../../etc/passwd\" is not a plain file name")),
            "{report:?}"
        );
    }

    /// Issue 10, item 14: rebuild merges what the old index knew. An intact backup whose
    /// manifest is gone, failed records and verification results survive; a damaged index
    /// falls back to its newest readable backup copy; what nothing accounts for is listed.
    #[test]
    fn rebuild_keeps_what_the_old_index_knew() {
        let s = MemoryStorage::new("mem");
        let store = IndexStore::new(&s, "main");
        let mut kept = record("a", "shop", Status::Success);
        kept.verification = Some(Box::new(Verification {
            verified_at: Utc::now(),
            ok: true,
            restore_tested: true,
            error: None,
            restore_test: None,
        }));
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
        let key = "main/index/db/shop/2026-11.json";
        let good = s.get_bytes(key).unwrap().unwrap();
        s.put_bytes(&format!("{key}.bak-20261101T000000Z"), b"older garbage")
            .unwrap();
        s.put_bytes(&format!("{key}.bak-20261128T000000Z"), &good)
            .unwrap();
        s.put_bytes(key, b"{ damaged").unwrap();
        let report = store.rebuild(Utc::now()).unwrap();
        assert_eq!(
            report.old_index.as_deref(),
            Some("main/index/db/shop/2026-11.json.bak-20261128T000000Z")
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
