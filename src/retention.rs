//! Retention: a pure planner that decides, for every record of one storage's index, whether it is
//! kept or removed, and says why. No I/O here; [`crate::prune`] applies a plan.
//!
//! Rules (per server, database, type and storage): a successful backup is kept when it is among
//! the `keep_last` newest good ones, or younger than `keep_within`, or the type keeps `forever`.
//! Only good copies (successful, and not failed at their last verification) count toward
//! `keep_last`, so failures and damaged copies never push good backups out. Floor: the newest
//! good backup of each server/database on a storage is always kept, whatever its type (the
//! newest successful one when none is good). Failed records, and copies whose last verification
//! failed, are kept for their type's `failed_keep_within` (and `keep_within`). Records from the
//! future (clock skew) and of types that are no longer configured are kept.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::duration::{compact, HumanDuration};
use crate::index::{BackupRecord, Status};

/// Retention rules of a backup type. At least one of `keep_last`, `keep_within`, `forever` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub keep_last: Option<u32>,
    pub keep_within: Option<HumanDuration>,
    pub forever: bool,
    pub failed_keep_within: HumanDuration,
}

/// Kept or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Keep,
    Remove,
}

/// The decision about one record, with its reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanItem {
    #[serde(flatten)]
    pub record: BackupRecord,
    pub decision: Decision,
    pub reason: String,
}

/// Decisions for every record given to [`plan`], in the order given.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    pub items: Vec<PlanItem>,
}

impl Plan {
    /// The plan of `records` with their `decisions` (decision and reason), in the same order.
    fn of(records: Vec<BackupRecord>, decisions: Vec<(Decision, String)>) -> Plan {
        Plan {
            items: records
                .into_iter()
                .zip(decisions)
                .map(|(record, (decision, reason))| PlanItem {
                    record,
                    decision,
                    reason,
                })
                .collect(),
        }
    }

    /// The records to remove.
    pub fn removals(&self) -> impl Iterator<Item = &PlanItem> {
        self.items.iter().filter(|i| i.decision == Decision::Remove)
    }

    /// Number of records removed and stored bytes freed.
    pub fn removed_totals(&self) -> (usize, u64) {
        self.removals().fold((0, 0u64), |(n, b), i| {
            (n + 1, b.saturating_add(i.record.compressed_bytes))
        })
    }
}

/// The policy that applies to a record, by its type and storage; `None` when the type is not
/// configured.
pub trait PolicyLookup {
    fn policy(&self, backup_type: &str, storage: &str) -> Option<&Retention>;
    /// How often a restore test of the type must pass (`restore_test_within`), if at all.
    fn restore_test_within(&self, backup_type: &str) -> Option<u64> {
        let _ = backup_type;
        None
    }
    /// The point-in-time window of `server` in seconds, where its binary log archive goes to
    /// `storage` (`binlog.window`), if it has one there.
    fn pitr_window(&self, server: &str, storage: &str) -> Option<u64> {
        let _ = (server, storage);
        None
    }
    /// Whether the config still expects backups of `database` of `server` (a server it names,
    /// a database it does not leave out): only then does the newest run's failure stay past
    /// `failed_keep_within` (a retired database's ages out, as before).
    fn expects(&self, server: &str, database: &str) -> bool {
        let _ = (server, database);
        true
    }
}

impl PolicyLookup for crate::config::Settings {
    fn policy(&self, backup_type: &str, storage: &str) -> Option<&Retention> {
        self.retention(backup_type, storage)
    }
    fn restore_test_within(&self, backup_type: &str) -> Option<u64> {
        self.backup_type(backup_type)
            .ok()
            .and_then(|t| t.restore_test_within)
            .map(|w| w.as_secs())
    }
    fn pitr_window(&self, server: &str, storage: &str) -> Option<u64> {
        self.server(server)
            .ok()
            .and_then(|s| s.binlog.as_ref())
            .filter(|b| b.storages.iter().any(|s| s == storage))
            .map(|b| b.window.as_secs())
    }
    fn expects(&self, server: &str, database: &str) -> bool {
        self.server(server)
            .is_ok_and(|s| crate::mysql::left_out(s, database).is_none())
    }
}

fn age(now: DateTime<Utc>, t: DateTime<Utc>) -> u64 {
    u64::try_from((now - t).num_seconds()).unwrap_or(0)
}

/// Decides every record. Pure: same input, same plan. The records move into the plan (a
/// prune plans every record of a database: no copy of them is made).
pub fn plan(entries: Vec<BackupRecord>, policies: &dyn PolicyLookup, now: DateTime<Utc>) -> Plan {
    plan_without(entries, policies, now, &|_| false)
}

/// [`plan`], where a success for which `gone` says so (its object is not on its storage: removed
/// by hand or by a lifecycle rule) counts as no copy: it takes no keep_last place, is no floor,
/// and stays a while as a damaged copy does, so that older copies keep its place.
///
/// A gone copy that the plan would remove anyway (were it there) is removed: its record is a
/// leftover, as a killed prune leaves them (the objects deleted, the index not yet written),
/// and the next prune finishes the job.
pub fn plan_without(
    entries: Vec<BackupRecord>,
    policies: &dyn PolicyLookup,
    now: DateTime<Utc>,
    gone: &dyn Fn(&BackupRecord) -> bool,
) -> Plan {
    let mut decisions = decide(&entries, policies, now, gone);
    if entries.iter().any(gone) {
        let present = decide(&entries, policies, now, &|_| false);
        for ((d, e), (p, why)) in decisions.iter_mut().zip(&entries).zip(present) {
            if gone(e) && p == Decision::Remove {
                *d = (
                    Decision::Remove,
                    format!("{why}; its object is already gone"),
                );
            }
        }
    }
    Plan::of(entries, decisions)
}

/// The decision and reason for each of `entries`, in their order: see [`plan_without`].
fn decide(
    entries: &[BackupRecord],
    policies: &dyn PolicyLookup,
    now: DateTime<Utc>,
    gone: &dyn Fn(&BackupRecord) -> bool,
) -> Vec<(Decision, String)> {
    // Newest first, ties broken by id so that equal timestamps decide the same way every time.
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|&a, &b| {
        entries[b]
            .started_at
            .cmp(&entries[a].started_at)
            .then_with(|| entries[b].id.cmp(&entries[a].id))
    });

    // Floor: the newest good copy per (server, database, storage), whatever its type and age;
    // where none is good, the newest success (a damaged copy may still hold what no other
    // does). One dated in the future (a clock that jumped) is kept anyway, and does not take
    // the floor: the newest copy taken at a believable time stays too.
    let mut floor_of: HashMap<(&str, &str, &str), (usize, bool)> = HashMap::default();
    for &i in &order {
        let r = &entries[i];
        if r.status != Status::Success || r.started_at > now || gone(r) {
            continue;
        }
        let good = !r.failed_verification();
        let group = (r.server.as_str(), r.database.as_str(), r.storage.as_str());
        match floor_of.get(&group) {
            Some(&(_, true)) => {}
            Some(&(_, false)) if !good => {}
            _ => {
                floor_of.insert(group, (i, good));
            }
        }
    }
    let floor: HashSet<usize> = floor_of.into_values().map(|(i, _)| i).collect();

    // Drill floor: where a type expects restore tests, the newest copy per (server, database,
    // type, storage) whose restore test passed within `restore_test_within` stays while that
    // pass counts: the proof of a restorable backup is not pruned away before the next drill
    // (the restore-test alert reads it).
    let mut drilled: HashSet<usize> = HashSet::default();
    let mut drill_seen: HashSet<(&str, &str, &str, &str)> = HashSet::default();
    for &i in &order {
        let r = &entries[i];
        let passed_at = r
            .verification
            .as_ref()
            .and_then(|v| v.restore_test.as_ref())
            .filter(|t| t.ok)
            .map(|t| t.tested_at);
        let counts = passed_at.zip(policies.restore_test_within(&r.backup_type));
        if r.status == Status::Success
            && !r.failed_verification()
            && !gone(r)
            && counts.is_some_and(|(t, w)| age(now, t) <= w)
            && drill_seen.insert((
                r.server.as_str(),
                r.database.as_str(),
                r.backup_type.as_str(),
                r.storage.as_str(),
            ))
        {
            drilled.insert(i);
        }
    }

    // Window floor: where the server's binary log archive goes to this storage, the newest good
    // dump with binary log coordinates started before its point-in-time window stays: a
    // restore to the window's first second rolls forward from it (without it, keep_last could
    // leave only dumps newer than the window's start, and the window would be a promise kept
    // by none).
    let mut window_floor: HashMap<usize, u64> = HashMap::default();
    let mut window_seen: HashSet<(&str, &str, &str)> = HashSet::default();
    for &i in &order {
        let r = &entries[i];
        let Some(w) = policies.pitr_window(&r.server, &r.storage) else {
            continue;
        };
        if r.status == Status::Success
            && !r.failed_verification()
            && !gone(r)
            && r.binlog.is_some()
            && r.started_at <= now
            && age(now, r.started_at) >= w
            && window_seen.insert((r.server.as_str(), r.database.as_str(), r.storage.as_str()))
        {
            window_floor.insert(i, w);
        }
    }

    // The newest run of each (server, database, type): a failure of it is what report and the
    // metrics say of that row, so it stays until a newer run replaces it, however old (else a
    // database that never succeeded, or whose last run failed on one storage, would read
    // healthy once failed_keep_within had passed).
    let mut newest_run: HashMap<(&str, &str, &str), usize> = HashMap::default();
    for &i in &order {
        let r = &entries[i];
        newest_run
            .entry((
                r.server.as_str(),
                r.database.as_str(),
                r.backup_type.as_str(),
            ))
            .or_insert(i);
    }
    // A server out of reach (`*`) is healed by the server's next good run, not replaced: its
    // failures age out as before. sqlguard's other own names (`*accounts`) are always expected.
    let newest_id = |r: &BackupRecord| {
        r.database != crate::health::SERVER_WIDE
            && (r.database.starts_with('*') || policies.expects(&r.server, &r.database))
            && newest_run
                .get(&(
                    r.server.as_str(),
                    r.database.as_str(),
                    r.backup_type.as_str(),
                ))
                .is_some_and(|&n| entries[n].id == r.id)
    };
    let mut rank: HashMap<(&str, &str, &str, &str), usize> = HashMap::default();
    let mut decisions: Vec<Option<(Decision, String)>> = vec![None; entries.len()];
    for &i in &order {
        let r = &entries[i];
        let a = age(now, r.started_at);
        let decided = if r.started_at > now {
            (
                Decision::Keep,
                "started in the future (clock skew?): kept".to_string(),
            )
        } else if let Some(p) = policies.policy(&r.backup_type, &r.storage) {
            match r.status {
                Status::Failed if newest_id(r) => (
                    Decision::Keep,
                    "the newest run of this database and type, and it failed: kept until a newer run (failed_keep_within does not apply)".to_string(),
                ),
                Status::Failed => {
                    if a <= p.failed_keep_within.as_secs() {
                        (
                            Decision::Keep,
                            format!(
                                "failed run, within failed_keep_within {} (age {})",
                                p.failed_keep_within,
                                compact(a)
                            ),
                        )
                    } else {
                        (
                            Decision::Remove,
                            format!(
                                "failed run older than failed_keep_within {} (age {})",
                                p.failed_keep_within,
                                compact(a)
                            ),
                        )
                    }
                }
                // A damaged copy takes no keep_last place; it stays a while, as a failed run
                // does, for a person to look at (and as the floor when no copy is good).
                Status::Success if gone(r) => damaged(
                    p,
                    a,
                    false,
                    "its object is not on the storage, or not at the size the index says: it takes no keep_last place",
                ),
                Status::Success if r.failed_verification() => damaged(
                    p,
                    a,
                    floor.contains(&i),
                    "last verification failed: it takes no keep_last place",
                ),
                Status::Success => {
                    let n = rank
                        .entry((
                            r.server.as_str(),
                            r.database.as_str(),
                            r.backup_type.as_str(),
                            r.storage.as_str(),
                        ))
                        .or_insert(0);
                    *n += 1;
                    let position = *n;
                    match decide_success(p, position, a, floor.contains(&i)) {
                        (Decision::Remove, _) if drilled.contains(&i) => (
                            Decision::Keep,
                            "newest copy whose restore test passed within restore_test_within (kept while that pass counts)".to_string(),
                        ),
                        (Decision::Remove, _) if window_floor.contains_key(&i) => (
                            Decision::Keep,
                            format!(
                                "newest dump from before the point-in-time window {} starts: a restore to its first second rolls forward from it",
                                HumanDuration(window_floor[&i])
                            ),
                        ),
                        d => d,
                    }
                }
            }
        } else {
            (
                Decision::Keep,
                format!("type '{}' is not configured: kept", r.backup_type),
            )
        };
        decisions[i] = Some(decided);
    }
    decisions
        .into_iter()
        .map(|d| d.expect("every entry decided"))
        .collect()
}

/// A dump that a point-in-time restore can start from: its database, start and binary log
/// position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    pub database: String,
    pub id: String,
    pub started_at: DateTime<Utc>,
    pub file: String,
    pub position: u64,
    /// The dump's GTID position (which server's history its file belongs to after a failover).
    pub gtid: Option<String>,
}

/// Decides the binary log segments of one server and storage. Pure.
///
/// For each database, the base is the newest kept dump started at least `window` ago (else its
/// oldest kept dump): any point of the window rolls forward from it. A segment is kept when its
/// file is that of the oldest base or later (the whole file: its start holds the format
/// description a replay needs); older ones are removed. Without any base, or without a window
/// (the server's `binlog` section is gone), every segment is kept. Failed records go after
/// `failed_keep_within`.
pub fn plan_segments(
    segments: Vec<BackupRecord>,
    bases: &[Base],
    window: Option<crate::duration::HumanDuration>,
    failed_keep_within: crate::duration::HumanDuration,
    now: DateTime<Utc>,
) -> Plan {
    use crate::binlog::file_order;
    let lineages =
        crate::binlog::pitr::Lineages::new(segments.iter().filter_map(|r| r.segment.as_deref()));
    let lineage = |b: &Base| lineages.of(&b.file, b.position, b.gtid.as_deref(), None);

    let oldest: Option<&Base> = window.and_then(|w| {
        let edge = w.before(now);
        let mut by_db: HashMap<&str, Vec<&Base>> = HashMap::default();
        for b in bases {
            by_db.entry(b.database.as_str()).or_default().push(b);
        }
        by_db
            .into_values()
            .filter_map(|mut bs| {
                bs.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
                bs.iter()
                    .rev()
                    .find(|b| b.started_at <= edge)
                    .or(bs.first())
                    .copied()
            })
            .min_by_key(|b| (lineage(b), file_order(&b.file), b.position))
    });
    let oldest_at = oldest.map(|b| (lineage(b), file_order(&b.file)));
    let decisions: Vec<(Decision, String)> = segments
        .iter()
        .map(|r| {
            let (decision, reason) = if r.status == Status::Failed {
                let a = age(now, r.started_at);
                if a <= failed_keep_within.as_secs() {
                    (Decision::Keep, format!("failed run, within failed_keep_within {failed_keep_within} (age {})", compact(a)))
                } else {
                    (Decision::Remove, format!("failed run older than failed_keep_within {failed_keep_within} (age {})", compact(a)))
                }
            } else {
                match (window, oldest, r.segment.as_deref()) {
                    (None, _, _) => (Decision::Keep, "the server has no binlog section: segments are kept".to_string()),
                    (Some(_), None, _) => (Decision::Keep, "no kept dump records binary log coordinates: every segment is kept".to_string()),
                    (_, _, None) => (Decision::Keep, "not a segment: kept".to_string()),
                    (Some(w), Some(b), Some(seg)) => {
                        if Some((seg.lineage, file_order(&seg.file))) >= oldest_at {
                            (Decision::Keep, format!("needed to roll dump {} of '{}' ({}:{}) forward: the point-in-time window {w} starts from it", b.id, b.database, b.file, b.position))
                        } else {
                            (Decision::Remove, format!("before {}, where dump {} of '{}' (the oldest the point-in-time window {w} needs) starts", b.file, b.id, b.database))
                        }
                    }
                }
            };
            (decision, reason)
        })
        .collect();
    Plan::of(segments, decisions)
}

/// The decision for a successful copy that counts as no copy (`why`: its last verification
/// failed, or its object is gone), `age` seconds old.
fn damaged(p: &Retention, age: u64, is_floor: bool, why: &str) -> (Decision, String) {
    if p.forever {
        return (Decision::Keep, format!("{why}; forever"));
    }
    if is_floor {
        return (
            Decision::Keep,
            format!("{why}; the newest successful backup of this database on this storage, and none is good (never removed)"),
        );
    }
    if let Some(w) = p.keep_within.filter(|w| age <= w.as_secs()) {
        return (
            Decision::Keep,
            format!("{why}; keep_within {w} (age {})", compact(age)),
        );
    }
    if age <= p.failed_keep_within.as_secs() {
        return (
            Decision::Keep,
            format!(
                "{why}; within failed_keep_within {} (age {})",
                p.failed_keep_within,
                compact(age)
            ),
        );
    }
    (
        Decision::Remove,
        format!(
            "{why}; older than failed_keep_within {} (age {})",
            p.failed_keep_within,
            compact(age)
        ),
    )
}

/// The decision for the `position`-th newest success (1-based) of its group, `age` seconds old.
fn decide_success(p: &Retention, position: usize, age: u64, is_floor: bool) -> (Decision, String) {
    if p.forever {
        return (Decision::Keep, "forever".to_string());
    }
    let mut kept_by = Vec::new();
    if let Some(n) = p.keep_last {
        if position <= n as usize {
            kept_by.push(format!("keep_last {n} (#{position} newest)"));
        }
    }
    if let Some(w) = p.keep_within {
        if age <= w.as_secs() {
            kept_by.push(format!("keep_within {w} (age {})", compact(age)));
        }
    }
    if !kept_by.is_empty() {
        return (Decision::Keep, kept_by.join(", "));
    }
    if is_floor {
        return (
            Decision::Keep,
            "newest good backup of this database on this storage (never removed)".to_string(),
        );
    }
    let mut why = Vec::new();
    if let Some(n) = p.keep_last {
        why.push(format!("beyond keep_last {n} (#{position} newest)"));
    }
    if let Some(w) = p.keep_within {
        why.push(format!(
            "older than keep_within {} (age {})",
            HumanDuration(w.as_secs()),
            compact(age)
        ));
    }
    (Decision::Remove, why.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
    }

    fn rec(
        id: &str,
        db: &str,
        t: &str,
        storage: &str,
        status: Status,
        hours_ago: i64,
    ) -> BackupRecord {
        BackupRecord::sample(
            id,
            db,
            t,
            storage,
            status,
            now() - chrono::Duration::hours(hours_ago),
        )
    }

    fn ok(id: &str, hours_ago: i64) -> BackupRecord {
        rec(id, "shop", "daily", "local", Status::Success, hours_ago)
    }

    fn failed(id: &str, hours_ago: i64) -> BackupRecord {
        rec(id, "shop", "daily", "local", Status::Failed, hours_ago)
    }

    fn policy(keep_last: Option<u32>, within: Option<&str>) -> Retention {
        Retention {
            keep_last,
            keep_within: within.map(|w| w.parse().unwrap()),
            forever: false,
            failed_keep_within: "7d".parse().unwrap(),
        }
    }

    /// Policies by (type, storage); `("daily", "*")` applies to every storage.
    struct Table(Vec<((&'static str, &'static str), Retention)>);

    impl PolicyLookup for Table {
        fn policy(&self, t: &str, s: &str) -> Option<&Retention> {
            self.0
                .iter()
                .find(|((pt, ps), _)| *pt == t && *ps == s)
                .or_else(|| self.0.iter().find(|((pt, ps), _)| *pt == t && *ps == "*"))
                .map(|(_, p)| p)
        }
    }

    fn daily(p: Retention) -> Table {
        Table(vec![(("daily", "*"), p)])
    }

    /// A copy whose last verification failed is no good backup: it takes no keep_last place
    /// and is no floor while a good copy is left, and goes after failed_keep_within (a hostile
    /// review's: prune removed the only intact backup and kept the two damaged newer ones).
    #[test]
    fn damaged_copies_never_push_the_last_good_backup_out() {
        let damaged = |id: &str, hours_ago| {
            let mut r = ok(id, hours_ago);
            r.verification = Some(Box::new(crate::index::Verification {
                verified_at: now(),
                ok: false,
                restore_tested: false,
                error: Some("SHA-256 differs".into()),
                restore_test: None,
            }));
            r
        };
        let decided = |records: Vec<BackupRecord>, p: Retention| {
            plan(records, &daily(p), now())
                .items
                .into_iter()
                .map(|i| (i.record.id, i.decision, i.reason))
                .collect::<Vec<_>>()
        };
        let d = decided(
            vec![
                damaged("new", 1),
                damaged("mid", 2),
                ok("old", 3),
                ok("older", 4),
            ],
            policy(Some(2), None),
        );
        let kept: Vec<&str> = d
            .iter()
            .filter(|(_, k, _)| *k == Decision::Keep)
            .map(|(id, _, _)| id.as_str())
            .collect();
        assert_eq!(kept, ["new", "mid", "old", "older"], "{d:?}");
        assert!(
            d[0].2
                .contains("takes no keep_last place; within failed_keep_within"),
            "{d:?}"
        );
        assert!(d[2].2.contains("keep_last 2 (#1 newest)"), "{d:?}");
        // Once failed_keep_within is over, the damaged copies go and the good ones stay.
        let d = decided(
            vec![
                damaged("new", 200),
                damaged("mid", 201),
                ok("old", 202),
                ok("older", 203),
                ok("oldest", 204),
            ],
            policy(Some(2), None),
        );
        let decisions: Vec<Decision> = d.iter().map(|(_, k, _)| *k).collect();
        use Decision::{Keep, Remove};
        assert_eq!(decisions, [Remove, Remove, Keep, Keep, Remove], "{d:?}");
        // No good copy left: the newest success stays, damaged or not.
        let d = decided(
            vec![damaged("a", 300), damaged("b", 301)],
            policy(Some(1), None),
        );
        assert_eq!(d[0].1, Keep, "{d:?}");
        assert!(d[0].2.contains("none is good (never removed)"), "{d:?}");
        assert_eq!(d[1].1, Remove, "{d:?}");
    }

    /// The point-in-time window is a promise kept by a dump: the newest good dump with binary
    /// log coordinates from before the window starts stays, whatever keep_last says (a hostile
    /// review's: keep_last left only dumps newer than the window's start).
    #[test]
    fn the_dump_the_point_in_time_window_starts_from_stays() {
        /// `daily` with a 3-day window on `local`.
        struct Windowed(Table);
        impl PolicyLookup for Windowed {
            fn policy(&self, t: &str, s: &str) -> Option<&Retention> {
                self.0.policy(t, s)
            }
            fn pitr_window(&self, _: &str, storage: &str) -> Option<u64> {
                (storage == "local").then_some(3 * 86_400)
            }
        }
        let dump = |id: &str, hours_ago, coordinates: bool| {
            let mut r = ok(id, hours_ago);
            r.binlog = coordinates.then(|| {
                Box::new(crate::index::BinlogPosition {
                    file: "binlog.000001".into(),
                    position: 4,
                    gtid: None,
                    server_id: None,
                    file_created_at: None,
                })
            });
            r
        };
        let entries = vec![
            dump("d1", 24, true),
            dump("d2", 48, true),
            dump("d3", 80, false), // no coordinates: no dump to roll forward from
            dump("d4", 96, true),  // the newest with coordinates before the window
            dump("d5", 120, true),
        ];
        let windowed = Windowed(daily(policy(Some(2), None)));
        let plan = plan(entries.clone(), &windowed, now());
        let gone: Vec<&str> = plan.removals().map(|i| i.record.id.as_str()).collect();
        assert_eq!(gone, ["d3", "d5"]);
        let d4 = plan.items.iter().find(|i| i.record.id == "d4").unwrap();
        assert!(
            d4.reason.contains("point-in-time window 3d"),
            "{}",
            d4.reason
        );
        // Not where the archive goes, nor without a window.
        let mut elsewhere = entries.clone();
        elsewhere.iter_mut().for_each(|r| r.storage = "s3".into());
        let mut ids: Vec<String> = super::plan(elsewhere, &windowed, now())
            .removals()
            .map(|i| i.record.id.clone())
            .collect();
        ids.sort();
        assert_eq!(ids, ["d3", "d4", "d5"]);
        assert_eq!(
            removed(&entries, &daily(policy(Some(2), None))),
            ["d3", "d4", "d5"]
        );
    }

    #[test]
    fn the_newest_copy_whose_restore_test_passed_stays_while_that_pass_counts() {
        /// `daily` with `restore_test_within: 8d`.
        struct Drilled(Table);
        impl PolicyLookup for Drilled {
            fn policy(&self, t: &str, s: &str) -> Option<&Retention> {
                self.0.policy(t, s)
            }
            fn restore_test_within(&self, _: &str) -> Option<u64> {
                Some(8 * 86_400)
            }
        }
        let tested = |id: &str, hours_ago: i64, tested_hours_ago: i64, passed: bool| {
            let mut r = ok(id, hours_ago);
            r.verification = Some(Box::new(crate::index::Verification {
                verified_at: now() - chrono::Duration::hours(tested_hours_ago),
                ok: passed,
                restore_tested: true,
                error: None,
                restore_test: Some(crate::index::RestoreTest {
                    tested_at: now() - chrono::Duration::hours(tested_hours_ago),
                    ok: passed,
                    duration_seconds: 1.0,
                    error: None,
                }),
            }));
            r
        };
        let entries = vec![
            ok("b1", 1),
            ok("b2", 25),
            tested("b3", 49, 2, true),    // passed 2 h ago: kept
            tested("b4", 73, 3, true),    // passed too, but b3 is newer
            tested("b5", 97, 1, false),   // failed: damaged, kept within failed_keep_within
            tested("b6", 400, 300, true), // passed outside the window
        ];
        let p = Drilled(daily(policy(Some(1), None)));
        let mut ids: Vec<String> = plan(entries.clone(), &p, now())
            .removals()
            .map(|i| i.record.id.clone())
            .collect();
        ids.sort();
        assert_eq!(ids, ["b2", "b4", "b6"]);
        // Without restore_test_within, no drill floor.
        assert_eq!(
            removed(&entries, &daily(policy(Some(1), None))),
            ["b2", "b3", "b4", "b6"]
        );
    }

    fn removed(entries: &[BackupRecord], t: &Table) -> Vec<String> {
        let mut ids: Vec<String> = plan(entries.to_vec(), t, now())
            .removals()
            .map(|i| i.record.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// (name, entries, policies, expected removed ids)
    type Case = (&'static str, Vec<BackupRecord>, Table, Vec<&'static str>);

    fn cases() -> Vec<Case> {
        let days = |n: i64| n * 24;
        vec![
            ("empty index", vec![], daily(policy(Some(3), None)), vec![]),
            (
                "keep_last 3 of 5",
                (1..=5).map(|i| ok(&format!("b{i}"), days(i))).collect(),
                daily(policy(Some(3), None)),
                vec!["b4", "b5"],
            ),
            (
                "keep_last larger than count",
                (1..=2).map(|i| ok(&format!("b{i}"), days(i))).collect(),
                daily(policy(Some(7), None)),
                vec![],
            ),
            (
                "keep_last 1",
                (1..=4).map(|i| ok(&format!("b{i}"), days(i))).collect(),
                daily(policy(Some(1), None)),
                vec!["b2", "b3", "b4"],
            ),
            (
                "keep_within 3d",
                (1..=5).map(|i| ok(&format!("b{i}"), days(i))).collect(),
                daily(policy(None, Some("3d"))),
                vec!["b4", "b5"],
            ),
            (
                "keep_within boundary is inclusive",
                vec![ok("b1", 1), ok("b2", 72), ok("b3", 73)],
                daily(policy(None, Some("3d"))),
                vec!["b3"],
            ),
            (
                "either rule keeps",
                (1..=6).map(|i| ok(&format!("b{i}"), days(i))).collect(),
                daily(policy(Some(2), Some("4d"))),
                vec!["b5", "b6"],
            ),
            (
                "keep_last beyond window",
                (1..=6).map(|i| ok(&format!("b{i}"), days(i))).collect(),
                daily(policy(Some(5), Some("1d"))),
                vec!["b6"],
            ),
            (
                "forever keeps all",
                (1..=6)
                    .map(|i| ok(&format!("b{i}"), days(i * 100)))
                    .collect(),
                daily(Retention {
                    forever: true,
                    ..policy(None, None)
                }),
                vec![],
            ),
            (
                "failures do not count toward keep_last",
                vec![
                    failed("f1", 1),
                    failed("f2", 2),
                    ok("b1", 3),
                    ok("b2", 4),
                    ok("b3", 30),
                ],
                daily(policy(Some(2), None)),
                vec!["b3"],
            ),
            (
                "failures age out after 7d",
                vec![
                    failed("f1", days(2)),
                    failed("f2", days(8)),
                    ok("b1", days(9)),
                ],
                daily(policy(Some(2), None)),
                vec!["f2"],
            ),
            (
                "15 failed nights with a 14-day window keep the last good backup",
                (1..=15)
                    .map(|i| failed(&format!("f{i:02}"), days(i)))
                    .chain([ok("good", days(16))])
                    .collect(),
                daily(policy(None, Some("14d"))),
                vec!["f08", "f09", "f10", "f11", "f12", "f13", "f14", "f15"],
            ),
            (
                "floor keeps the newest success even beyond every rule",
                vec![ok("old1", days(40)), ok("old2", days(50))],
                daily(policy(None, Some("7d"))),
                vec!["old2"],
            ),
            (
                "floor is per database",
                vec![
                    rec("a", "shop", "daily", "local", Status::Success, days(30)),
                    rec("b", "crm", "daily", "local", Status::Success, days(30)),
                    rec("c", "crm", "daily", "local", Status::Success, days(31)),
                ],
                daily(policy(None, Some("7d"))),
                vec!["c"],
            ),
            (
                "floor is per storage",
                vec![
                    rec("l", "shop", "daily", "local", Status::Success, days(30)),
                    rec("s", "shop", "daily", "s3", Status::Success, days(30)),
                    rec("s-old", "shop", "daily", "s3", Status::Success, days(31)),
                ],
                daily(policy(None, Some("7d"))),
                vec!["s-old"],
            ),
            (
                "floor spans types: a newer hourly makes an old daily removable",
                vec![
                    rec("h", "shop", "hourly", "local", Status::Success, 1),
                    rec("d", "shop", "daily", "local", Status::Success, days(30)),
                ],
                Table(vec![
                    (("daily", "*"), policy(None, Some("7d"))),
                    (("hourly", "*"), policy(Some(24), None)),
                ]),
                vec!["d"],
            ),
            (
                "groups are per type",
                vec![
                    rec("h1", "shop", "hourly", "local", Status::Success, 1),
                    rec("h2", "shop", "hourly", "local", Status::Success, 2),
                    rec("d1", "shop", "daily", "local", Status::Success, 3),
                    rec("d2", "shop", "daily", "local", Status::Success, 27),
                ],
                Table(vec![
                    (("daily", "*"), policy(Some(2), None)),
                    (("hourly", "*"), policy(Some(1), None)),
                ]),
                vec!["h2"],
            ),
            (
                "per-storage override",
                (1..=4)
                    .flat_map(|i| {
                        [
                            rec(
                                &format!("l{i}"),
                                "shop",
                                "daily",
                                "local",
                                Status::Success,
                                days(i),
                            ),
                            rec(
                                &format!("s{i}"),
                                "shop",
                                "daily",
                                "s3",
                                Status::Success,
                                days(i),
                            ),
                        ]
                    })
                    .collect(),
                Table(vec![
                    (("daily", "local"), policy(Some(1), None)),
                    (("daily", "*"), policy(Some(3), None)),
                ]),
                vec!["l2", "l3", "l4", "s4"],
            ),
            (
                "equal timestamps break ties by id",
                vec![ok("b", 5), ok("a", 5), ok("c", 5)],
                daily(policy(Some(2), None)),
                vec!["a"],
            ),
            (
                "entries from the future are kept",
                vec![ok("future", -48), ok("b1", days(1)), ok("b2", days(2))],
                daily(policy(Some(1), None)),
                vec!["b2"],
            ),
            (
                "an entry from the future does not take the floor",
                vec![ok("future", -48), ok("b1", days(10)), ok("b2", days(11))],
                daily(policy(None, Some("1d"))),
                vec!["b2"],
            ),
            (
                "unconfigured type is kept",
                vec![rec(
                    "x",
                    "shop",
                    "yearly",
                    "local",
                    Status::Success,
                    days(900),
                )],
                daily(policy(Some(1), None)),
                vec![],
            ),
            (
                "failed record of an unconfigured type is kept",
                vec![rec(
                    "x",
                    "shop",
                    "yearly",
                    "local",
                    Status::Failed,
                    days(900),
                )],
                daily(policy(Some(1), None)),
                vec![],
            ),
            (
                "witness failure of another storage ages out",
                vec![
                    rec("w", "shop", "daily", "s3", Status::Failed, days(10)),
                    ok("b1", 1),
                ],
                daily(policy(Some(1), None)),
                vec!["w"],
            ),
            (
                "one success, older than everything, is the floor",
                vec![ok("only", days(3650))],
                daily(policy(Some(1), Some("1d"))),
                vec![],
            ),
            (
                "many backups, keep_within 36h hourly",
                (0..72)
                    .map(|h| {
                        rec(
                            &format!("h{h:02}"),
                            "shop",
                            "hourly",
                            "local",
                            Status::Success,
                            h,
                        )
                    })
                    .collect(),
                Table(vec![(("hourly", "*"), policy(None, Some("36h")))]),
                (37..72)
                    .map(|h| Box::leak(format!("h{h:02}").into_boxed_str()) as &str)
                    .collect(),
            ),
            (
                "mixed failures and successes in a run of nights",
                vec![
                    ok("n1", 24),
                    failed("n2", 48),
                    ok("n3", 72),
                    failed("n4", 96),
                    ok("n5", 120),
                    failed("n6", 24 * 9),
                ],
                daily(policy(Some(2), None)),
                vec!["n5", "n6"],
            ),
        ]
    }

    #[test]
    fn planner_table() {
        let all = cases();
        assert!(all.len() >= 25, "{} cases", all.len());
        for (name, entries, table, want) in all {
            assert_eq!(removed(&entries, &table), want, "case: {name}");
        }
    }

    /// Every decision and reason of every case, pinned: a change to the planner's words or
    /// choices shows up as a snapshot diff to review (`cargo insta review`), never silently.
    #[test]
    fn planner_decisions_and_reasons_are_pinned() {
        let decisions: Vec<String> = cases()
            .into_iter()
            .flat_map(|(name, entries, table, _)| {
                let p = plan(entries.clone(), &table, now());
                let mut lines = vec![format!("# {name}")];
                lines.extend(p.items.into_iter().map(|i| {
                    format!(
                        "{} {} {}/{}: {:?}, {}",
                        i.record.id,
                        i.record.status.as_str(),
                        i.record.backup_type,
                        i.record.storage,
                        i.decision,
                        i.reason
                    )
                }));
                lines
            })
            .collect();
        insta::assert_snapshot!(decisions.join("\n"));
    }

    #[test]
    fn every_decision_has_a_reason_and_the_plan_keeps_order() {
        let entries: Vec<_> = (1..=5)
            .map(|i| ok(&format!("b{i}"), i * 24))
            .chain([failed("f", 1)])
            .collect();
        let p = plan(entries.clone(), &daily(policy(Some(2), Some("3d"))), now());
        assert_eq!(p.items.len(), entries.len());
        for (item, e) in p.items.iter().zip(&entries) {
            assert_eq!(item.record.id, e.id);
            assert!(!item.reason.is_empty());
        }
        let reasons: Vec<_> = p.items.iter().map(|i| i.reason.as_str()).collect();
        assert!(
            reasons[0].contains("keep_last 2 (#1 newest)"),
            "{reasons:?}"
        );
        assert!(
            reasons[4].contains("beyond keep_last 2")
                && reasons[4].contains("older than keep_within 3d"),
            "{reasons:?}"
        );
        assert!(reasons[5].contains("the newest run"), "{reasons:?}");
        assert_eq!(p.removed_totals(), (2, 20));
    }

    /// The newest run's failure is what report and the metrics say of its row: it stays past
    /// failed_keep_within until a newer run replaces it; older failures go as before.
    #[test]
    fn the_newest_runs_failure_stays_until_a_newer_run() {
        let never = vec![failed("f2", 30 * 24), failed("f1", 20 * 24)];
        let p = plan(never, &daily(policy(Some(2), None)), now());
        let d: Vec<_> = p
            .items
            .iter()
            .map(|i| (i.record.id.as_str(), i.decision))
            .collect();
        assert_eq!(
            d,
            [("f2", Decision::Remove), ("f1", Decision::Keep)],
            "{d:?}"
        );
        let replaced = vec![failed("f1", 20 * 24), ok("b1", 24)];
        let p = plan(replaced, &daily(policy(Some(2), None)), now());
        assert_eq!(
            p.items[0].decision,
            Decision::Remove,
            "{:?}",
            p.items[0].reason
        );
        // A database the config no longer expects (retired): its failure ages out as before.
        struct Retired(Table);
        impl PolicyLookup for Retired {
            fn policy(&self, t: &str, s: &str) -> Option<&Retention> {
                self.0.policy(t, s)
            }
            fn expects(&self, _: &str, _: &str) -> bool {
                false
            }
        }
        let retired = Retired(daily(policy(Some(2), None)));
        let p = plan(vec![failed("f1", 20 * 24)], &retired, now());
        assert_eq!(
            p.items[0].decision,
            Decision::Remove,
            "{:?}",
            p.items[0].reason
        );
        // sqlguard's own accounts backup is always expected; a server out of reach (`*`) is
        // healed by its next good run, and ages out.
        let mut accounts = failed("fa", 20 * 24);
        accounts.database = "*accounts".into();
        let mut server_wide = failed("fs", 20 * 24);
        server_wide.database = crate::health::SERVER_WIDE.into();
        let p = plan(vec![accounts, server_wide], &retired, now());
        let d: Vec<_> = p.items.iter().map(|i| i.decision).collect();
        assert_eq!(d, [Decision::Keep, Decision::Remove], "{:?}", p.items);
    }

    #[test]
    fn ages_are_utc_so_dst_changes_do_not_matter() {
        // Europe switched from summer time on 2026-10-25 01:00 UTC: a local-time planner would see
        // 25 hours between these two; in UTC they are exactly 24 hours apart.
        let now = Utc.with_ymd_and_hms(2026, 10, 25, 12, 0, 0).unwrap();
        let mut before = ok("before", 0);
        before.started_at = Utc.with_ymd_and_hms(2026, 10, 24, 12, 0, 0).unwrap();
        let mut newest = ok("newest", 0);
        newest.started_at = now;
        let p = plan(vec![newest, before], &daily(policy(None, Some("1d"))), now);
        assert!(p.removals().next().is_none(), "{p:?}");
        assert!(
            p.items[1].reason.contains("age 1d0h"),
            "{:?}",
            p.items[1].reason
        );
    }

    #[test]
    fn planning_is_deterministic() {
        let entries: Vec<_> = (0..200)
            .map(|i| ok(&format!("b{i:03}"), (i * 7) % 50))
            .collect();
        let t = daily(policy(Some(10), Some("1d")));
        assert_eq!(
            plan(entries.clone(), &t, now()),
            plan(entries.clone(), &t, now())
        );
    }

    /// After a failover the promoted server's files (often the same names, lower numbers) come
    /// after the old server's: a base on the old server keeps them all.
    #[test]
    fn segments_after_a_failover_follow_the_old_servers() {
        let seg = |id: &str, file: &str, lineage: u32| {
            let mut r = ok(id, 300);
            r.database = crate::binlog::DATABASE.into();
            r.backup_type = crate::binlog::TYPE.into();
            r.segment = Some(Box::new(crate::index::Segment {
                file: file.into(),
                end: 100,
                closed: true,
                lineage,
                ..Default::default()
            }));
            r
        };
        let segments = vec![
            seg("a8", "b.000008", 0),
            seg("a9", "b.000009", 0),
            seg("b1", "b.000001", 1),
            seg("b2", "b.000002", 1),
        ];
        let base = |file: &str| Base {
            database: "shop".into(),
            id: "d".into(),
            started_at: now() - chrono::Duration::hours(400),
            file: file.into(),
            position: 50,
            gtid: None,
        };
        let w = Some(HumanDuration(7 * 86_400));
        let kept = |b: Base| -> Vec<String> {
            plan_segments(segments.clone(), &[b], w, HumanDuration(1), now())
                .items
                .iter()
                .filter(|i| i.decision == Decision::Keep)
                .map(|i| i.record.id.clone())
                .collect()
        };
        assert_eq!(kept(base("b.000009")), ["a9", "b1", "b2"]);
        assert_eq!(kept(base("b.000002")), ["b2"]);
    }

    /// Issue 14: the point-in-time window keeps every file from the one where the oldest base
    /// it needs starts (per database: the newest dump at least a window old), removes older
    /// segments with that reason, keeps everything without a base or a window, and lets failed
    /// records go after `failed_keep_within`.
    #[test]
    fn segments_follow_the_oldest_base_the_window_needs() {
        let seg = |id: &str, hours_ago: i64, file: &str| {
            let mut r = ok(id, hours_ago);
            r.database = crate::binlog::DATABASE.into();
            r.backup_type = crate::binlog::TYPE.into();
            r.segment = Some(Box::new(crate::index::Segment {
                file: file.into(),
                start: 0,
                end: 100,
                events: 1,
                first_event_at: None,
                last_event_at: None,
                first_gtid: None,
                last_gtid: None,
                closed: true,
                next_file: None,
                crc32: true,
                ..Default::default()
            }));
            r
        };
        let base = |db: &str, id: &str, hours_ago: i64, file: &str| Base {
            database: db.into(),
            id: id.into(),
            started_at: now() - chrono::Duration::hours(hours_ago),
            file: file.into(),
            position: 500,
            gtid: None,
        };
        let segments = vec![
            seg("s8", 400, "b.000008"),
            seg("s9", 300, "b.000009"),
            seg("s10", 200, "b.000010"),
            seg("s11", 10, "b.000011"),
        ];
        let mut failed = failed("f", 24 * 30);
        failed.database = crate::binlog::DATABASE.into();
        let mut all = segments.clone();
        all.push(failed);
        // A 7-day window: shop's base is the dump of 250h ago (newest at least 168h old), in
        // b.000009; crm's only dump (20h ago) is its base, later. The older base decides.
        let bases = vec![
            base("shop", "d1", 350, "b.000008"),
            base("shop", "d2", 250, "b.000009"),
            base("shop", "d3", 20, "b.000011"),
            base("crm", "c1", 20, "b.000011"),
        ];
        let w = Some(HumanDuration(7 * 86_400));
        let p = plan_segments(all.clone(), &bases, w, HumanDuration(7 * 86_400), now());
        let decided: Vec<(&str, Decision)> = p
            .items
            .iter()
            .map(|i| (i.record.id.as_str(), i.decision))
            .collect();
        assert_eq!(
            decided,
            vec![
                ("s8", Decision::Remove),
                ("s9", Decision::Keep),
                ("s10", Decision::Keep),
                ("s11", Decision::Keep),
                ("f", Decision::Remove),
            ]
        );
        assert!(
            p.items[0]
                .reason
                .contains("before b.000009, where dump d2 of 'shop'"),
            "{}",
            p.items[0].reason
        );
        assert!(
            p.items[1].reason.contains("needed to roll dump d2"),
            "{}",
            p.items[1].reason
        );
        // No base, or no window: everything stays.
        let p = plan_segments(segments.clone(), &[], w, HumanDuration(1), now());
        assert!(p.items.iter().all(|i| i.decision == Decision::Keep));
        let p = plan_segments(segments.clone(), &bases, None, HumanDuration(1), now());
        assert!(p.items.iter().all(|i| i.decision == Decision::Keep));
    }
}
