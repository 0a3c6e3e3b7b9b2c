//! Point-in-time recovery: restore a dump, then replay the archived binary log from the dump's
//! exact position up to a target (a time, a position or a GTID, exclusive).
//!
//! [`plan_chain`] decides from the index alone (pure): the newest good dump before the target
//! whose position the archive covers, and the segments from the start of the dump's file up to
//! the target, contiguous (a missing range is a gap, named). [`restore_to`] then proves every
//! segment (size and SHA-256, into one private unlinked spool file) before anything is written,
//! finds the exact stop (the first transaction not committed before the target) in a first
//! pass, restores the dump, and replays in ONE client session: the segments' events from the
//! dump's position to the stop, as one binary log stream (the first file's header, then each
//! file's events), decoded by the client's own `mariadb-binlog` (filtered to the database,
//! renamed with `--rewrite-db`), with the GTID settings of each transaction dropped so that the
//! server gives the replayed transactions its own new GTIDs (gtid_strict_mode holds).

use std::io::{self, BufRead, Read, Write};
use std::os::unix::fs::FileExt;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::Serialize;

use super::events::{self, EventReader, Gtid, MAGIC};
use super::{file_order, ArchiveState, DATABASE};
use crate::compress::{self, Algorithm};
use crate::index::{BackupRecord, Segment, Status};
use crate::restore::{
    self, CheckedCopy, RestoreError, RestoreOutcome, RestorePlan, RestoreRequest,
};
use crate::session::Session;
use crate::ui::human_bytes;

/// Where a point-in-time restore stops: transactions committed before it are replayed, the
/// first one not committed before it and everything after are not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Point {
    Time(DateTime<Utc>),
    Position { file: String, position: u64 },
    Gtid(Gtid),
}

impl std::fmt::Display for Point {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Point::Time(t) => write!(
                f,
                "{}",
                t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            ),
            Point::Position { file, position } => write!(f, "{file}:{position}"),
            Point::Gtid(g) => write!(f, "GTID {g}"),
        }
    }
}

/// Parses a target time: RFC 3339 (`2026-11-29T14:31:59Z`, `…+01:00`), or a date and time
/// without an offset, which is UTC (never the machine's local time).
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    // The binary log stamps events to the second: within a second, which commits came before
    // a fraction cannot be told, so a fraction is refused rather than rounded.
    let whole = |t: DateTime<Utc>| {
        if t.timestamp_subsec_nanos() == 0 {
            Ok(t)
        } else {
            Err(format!(
                "'{s}' has a fraction of a second, and the binary log stamps transactions to the second: give a whole second (the restore includes what was committed before it)"
            ))
        }
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return whole(t.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return whole(t.and_utc());
        }
    }
    Err(format!(
        "'{s}' is not a time: write 2026-11-29T14:31:59Z (UTC), 2026-11-29 14:31:59 (UTC too) or 2026-11-29T15:31:59+01:00"
    ))
}

/// Parses `FILE:POS` (`binlog.000042:1234`).
pub fn parse_position(s: &str) -> Result<(String, u64), String> {
    let bad = || {
        format!("'{s}' is not a binary log position: write FILE:POS, e.g. binlog.000042:1234 (see `sqlguard list --type binlog --json`)")
    };
    let (f, p) = s.trim().rsplit_once(':').ok_or_else(bad)?;
    if f.is_empty() || f.contains('/') {
        return Err(bad());
    }
    Ok((f.to_string(), p.parse().map_err(|_| bad())?))
}

/// What a point-in-time restore reads: the dump, and the segments in replay order.
#[derive(Debug, Clone, Serialize)]
pub struct Chain {
    pub dump: BackupRecord,
    pub segments: Vec<BackupRecord>,
    /// Per segment, its copies on other storages (the same range), read in turn when the one
    /// before fails its checks or cannot be read.
    #[serde(skip)]
    pub spares: Vec<Vec<BackupRecord>>,
    /// Where the replay starts: the dump's position.
    pub from_file: String,
    pub from_position: u64,
    /// The lineages (see [`Segment::lineage`]) of the dump's position and of a position target.
    #[serde(skip)]
    pub from_lineage: u32,
    #[serde(skip)]
    pub point_lineage: u32,
}

/// A place in the archive: lineage, file (by base name and number), offset.
type Coord = (u32, (String, u64), u64);

fn pos_key(lineage: u32, file: &str, pos: u64) -> Coord {
    (lineage, file_order(file), pos)
}

fn next_file(s: &Segment) -> String {
    s.next_file.clone().unwrap_or_else(|| {
        let (base, n) = file_order(&s.file);
        let width = s.file.rsplit('.').next().map_or(6, str::len);
        format!("{base}.{:0width$}", n.saturating_add(1))
    })
}

/// Which lineage (see [`Segment::lineage`]) a position belongs to, indexed once over the
/// archived segments (a prune asks for every kept dump, a restore for every candidate).
#[derive(Debug)]
pub struct Lineages<'a> {
    /// The segments of each file name.
    by_file: std::collections::HashMap<&'a str, Vec<&'a Segment>>,
    /// Each lineage's start: the GTID position its link continues from.
    starts: std::collections::HashMap<u32, &'a str>,
}

impl<'a> Lineages<'a> {
    pub fn new(segments: impl Iterator<Item = &'a Segment>) -> Lineages<'a> {
        let mut l = Lineages {
            by_file: Default::default(),
            starts: Default::default(),
        };
        for s in segments {
            if let Some(link) = &s.continues {
                l.starts.insert(s.lineage, link.gtid_pos.as_str());
            }
            l.by_file.entry(s.file.as_str()).or_default().push(s);
        }
        l
    }

    /// The lineage of a position (a dump's, or a target's): the lineages with a segment of
    /// `file` around `pos` (of the same server, where both ids are known); when several (a
    /// promoted replica's files often have the same names), the newest whose start the `gtid`
    /// position has reached (a dump's GTID position tells which server it was taken on), else
    /// the newest. 0 when none holds it.
    pub fn of(&self, file: &str, pos: u64, gtid: Option<&str>, server_id: Option<u32>) -> u32 {
        let mut holding: Vec<u32> = self
            .by_file
            .get(file)
            .into_iter()
            .flatten()
            .filter(|s| s.start <= pos && pos <= s.end)
            .filter(|s| server_id.is_none() || s.server_id.is_none() || s.server_id == server_id)
            .map(|s| s.lineage)
            .collect();
        holding.sort_unstable_by_key(|l| std::cmp::Reverse(*l));
        holding.dedup();
        let reached = |l: u32| match (gtid, self.starts.get(&l)) {
            (Some(g), Some(start)) => {
                events::GtidState::parse(g).covers(&events::GtidState::parse(start))
            }
            _ => true,
        };
        holding
            .iter()
            .copied()
            .find(|l| reached(*l))
            .or(holding.first().copied())
            .unwrap_or(0)
    }
}

/// Whether the dump (by its coordinates and time) is before `point`.
fn dump_before(d: &BackupRecord, lineage: u32, point: &Point, point_lineage: u32) -> bool {
    let Some(b) = &d.binlog else { return false };
    match point {
        Point::Time(t) => d.started_at < *t,
        Point::Position { file, position } => {
            pos_key(lineage, &b.file, b.position) <= pos_key(point_lineage, file, *position)
        }
        Point::Gtid(g) => {
            let list = b.gtid.as_deref().map(events::gtid_list).unwrap_or_default();
            list.iter()
                .find(|x| x.domain == g.domain)
                .is_none_or(|x| x.seq < g.seq)
        }
    }
}

/// Whether segment `s` reaches `point` (holds it, or lies after it).
fn reaches(s: &Segment, point: &Point, point_lineage: u32) -> bool {
    match point {
        Point::Time(t) => s.last_event_at.is_some_and(|e| e >= *t),
        Point::Position { file, position } => {
            pos_key(s.lineage, &s.file, s.end) >= pos_key(point_lineage, file, *position)
        }
        Point::Gtid(g) => s
            .last_gtid
            .as_deref()
            .and_then(|l| l.parse::<Gtid>().ok())
            .is_some_and(|l| l.domain == g.domain && l.seq >= g.seq),
    }
}

/// Decides the dump and the segments of a point-in-time restore, from the index alone. Pure.
///
/// `dumps` are the database's records, `segments` the server's segment records (any status,
/// any storage; only those on `storage` when one is named), `state` where the archive last
/// caught up. Each chained segment carries its copies of the very same range on other storages
/// ([`Chain::spares`]).
///
/// Fails with `NotCovered` (no dump before the point, or the archive does not reach it yet) or
/// `ArchiveGap` (a range of the binary log between the dump and the point is missing).
pub fn plan_chain(
    dumps: &[BackupRecord],
    segments: &[BackupRecord],
    point: &Point,
    state: Option<&ArchiveState>,
    storage: Option<&str>,
) -> Result<Chain, RestoreError> {
    let target = point.to_string();
    // Every copy by where it starts, the one to read first first: the longest, then one whose
    // last verification did not fail.
    let rank = |r: &BackupRecord| {
        (
            std::cmp::Reverse(r.segment.as_deref().map_or(0, |s| s.end)),
            r.verification.as_deref().is_some_and(|v| !v.ok),
        )
    };
    let mut copies: std::collections::BTreeMap<Coord, Vec<&BackupRecord>> = Default::default();
    for r in segments.iter().filter(|r| {
        r.status == Status::Success
            && r.key.is_some()
            && r.segment.as_deref().is_some_and(|s| s.problem().is_none())
            && storage.is_none_or(|p| r.storage == p)
    }) {
        let s = r.segment.as_deref().expect("filtered");
        copies
            .entry(pos_key(s.lineage, &s.file, s.start))
            .or_default()
            .push(r);
    }
    for v in copies.values_mut() {
        v.sort_by_key(|r| rank(r));
    }
    let by_start: std::collections::BTreeMap<Coord, &BackupRecord> =
        copies.iter().map(|(k, v)| (k.clone(), v[0])).collect();
    // The other copies of a chosen one's very range; a copy of the same id must hold the same
    // bytes (one that does not is never read in its place).
    let spares_of = |r: &BackupRecord| -> Vec<BackupRecord> {
        let s = r.segment.as_deref().expect("chained");
        copies[&pos_key(s.lineage, &s.file, s.start)]
            .iter()
            .filter(|x| {
                x.storage != r.storage
                    && x.segment.as_deref().is_some_and(|y| y.end == s.end)
                    && (x.id != r.id
                        || (&x.sha256, x.compressed_bytes) == (&r.sha256, r.compressed_bytes))
            })
            .map(|x| (*x).clone())
            .collect()
    };
    let lineages = Lineages::new(by_start.values().filter_map(|r| r.segment.as_deref()));
    let point_lineage = match point {
        Point::Position { file, position } => lineages.of(file, *position, None, None),
        _ => 0,
    };
    let mut candidates: Vec<(&BackupRecord, u32)> = dumps
        .iter()
        .filter(|d| d.status == Status::Success && d.key.is_some() && d.database != DATABASE)
        .filter_map(|d| {
            let b = d.binlog.as_deref()?;
            let l = lineages.of(&b.file, b.position, b.gtid.as_deref(), b.server_id);
            Some((d, l))
        })
        .collect();
    candidates.sort_by(|(a, _), (b, _)| (b.started_at, &b.id).cmp(&(a.started_at, &a.id)));
    let before: Vec<(&BackupRecord, u32)> = candidates
        .iter()
        .copied()
        .filter(|(d, l)| dump_before(d, *l, point, point_lineage))
        .collect();
    if before.is_empty() {
        return Err(RestoreError::NotCovered {
            target,
            reason: match candidates.last() {
                Some((oldest, _)) => format!(
                    "the oldest dump with binary log coordinates ({}, started {} at {}) is not before it in the binary log",
                    oldest.id,
                    oldest.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    oldest
                        .binlog
                        .as_ref()
                        .map(|b| match &b.gtid {
                            Some(g) if !g.is_empty() => format!("{}:{}, GTID {g}", b.file, b.position),
                            _ => format!("{}:{}", b.file, b.position),
                        })
                        .unwrap_or_default()
                ),
                None => "no good dump of this database (successful, and not failed at its last verification) records binary log coordinates (the server needs log_bin, and the backup account BINLOG MONITOR; `sqlguard list` shows each copy's verification)".to_string(),
            },
        });
    }
    let mut first_err = None;
    for (d, lineage) in before {
        match chain_from(d, lineage, &by_start, point, point_lineage, state) {
            Ok(mut c) => {
                c.spares = c.segments.iter().map(spares_of).collect();
                return Ok(c);
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.expect("at least one candidate"))
}

/// The first segment of the lineage after `s`'s that continues from `s`'s end (a failover).
fn continuation<'a>(
    by_start: &std::collections::BTreeMap<Coord, &'a BackupRecord>,
    s: &Segment,
) -> Option<&'a BackupRecord> {
    let next = s.lineage.checked_add(1)?;
    by_start
        .range((next, (String::new(), 0), 0)..)
        .map(|(_, r)| *r)
        .take_while(|r| r.segment.as_deref().is_some_and(|x| x.lineage == next))
        .find(|r| {
            r.segment
                .as_ref()
                .and_then(|x| x.continues.as_ref())
                .is_some_and(|c| c.file == s.file && c.end == s.end)
        })
}

fn chain_from(
    dump: &BackupRecord,
    from_lineage: u32,
    by_start: &std::collections::BTreeMap<Coord, &BackupRecord>,
    point: &Point,
    point_lineage: u32,
    state: Option<&ArchiveState>,
) -> Result<Chain, RestoreError> {
    let target = point.to_string();
    let b = dump.binlog.as_deref().expect("candidates have coordinates");
    let from = pos_key(from_lineage, &b.file, b.position);
    let newest_lineage = by_start.keys().next_back().map_or(0, |k| k.0);
    let mut lineage = from_lineage;
    let mut file = b.file.clone();
    let mut at = 0u64;
    let mut chain: Vec<BackupRecord> = Vec::new();
    let mut was: Option<Coord> = None;
    loop {
        let here = pos_key(lineage, &file, at);
        // Each step goes further into the log; records that lead back (edited or damaged) are
        // no chain, not a walk without end.
        if was.as_ref().is_some_and(|w| here <= *w) {
            return Err(RestoreError::ArchiveGap {
                target,
                gap: format!(
                    "the archive's segment records lead back to {file}:{at} (edited or damaged: `sqlguard index rebuild` drops such records); dump {} starts at {}:{}",
                    dump.id, b.file, b.position
                ),
            });
        }
        was = Some(here.clone());
        let found = by_start.get(&here).copied().or_else(|| {
            // The archive of this server ends here: a failover continues it by GTID.
            let last = chain.last()?.segment.as_deref()?;
            continuation(by_start, last)
        });
        let Some(r) = found else {
            // Nothing starts here: a gap when something later is archived, else the end.
            let later = by_start
                .range(here.clone()..)
                .map(|(_, r)| *r)
                .find(|r| r.segment.as_deref().is_some_and(|s| s.lineage == lineage));
            if let Some(l) = later {
                let s = l.segment.as_deref().expect("segment");
                let gap = if s.file == file {
                    format!(
                        "binary log {file} from position {at} to {} is not archived",
                        s.start
                    )
                } else if at == 0 {
                    format!(
                        "binary log {file} is not archived (the next archived file is {})",
                        s.file
                    )
                } else {
                    format!("binary log {file} is archived only up to position {at} (the next archived file is {})", s.file)
                };
                return Err(RestoreError::ArchiveGap {
                    target,
                    gap: format!(
                        "{gap}; dump {} starts at {}:{}",
                        dump.id, b.file, b.position
                    ),
                });
            }
            // The end of the archive: enough when the point is before what was caught up.
            let last = chain.last();
            let covered = match point {
                Point::Time(t) => {
                    last.is_some_and(|l| l.finished_at >= *t)
                        || state.is_some_and(|s| {
                            s.caught_up_at.is_some_and(|c| c >= *t)
                                && lineage == newest_lineage
                                && pos_key(lineage, &s.file, s.position) <= here
                        })
                }
                _ => false,
            };
            if covered && here >= from {
                break;
            }
            let reached = match last.and_then(|l| l.segment.as_deref()) {
                Some(s) => format!(
                    "reaches only {}:{}{}",
                    s.file,
                    s.end,
                    s.last_event_at
                        .map(|t| format!(", newest event {}", t.format("%Y-%m-%d %H:%M:%S UTC")))
                        .unwrap_or_default()
                ),
                None => format!("holds nothing of {file}"),
            };
            return Err(RestoreError::NotCovered {
                target,
                reason: format!(
                    "the binary log archive {reached} after dump {} ({}:{}): run `sqlguard binlog --server {}` and try again, or pick an earlier point",
                    dump.id, b.file, b.position, dump.server
                ),
            });
        };
        let s = r.segment.as_deref().expect("segment");
        if let (true, Some(d), Some(f)) = (
            s.lineage == from_lineage && s.file == b.file,
            b.file_created_at,
            s.file_created_at,
        ) {
            if d != f {
                return Err(RestoreError::ArchiveGap {
                    target,
                    gap: format!(
                        "dump {} starts in binary log {} created at {}, but the archive's {} was created at {}: the binary log was reset (RESET MASTER) between them, and the archive does not hold the dump's file (restore the dump without a point in time, or start a new archive)",
                        dump.id,
                        b.file,
                        d.format("%Y-%m-%d %H:%M:%S UTC"),
                        s.file,
                        created_text(s)
                    ),
                });
            }
        }
        if let Some(last) = chain.last().and_then(|l| l.segment.as_deref()) {
            if last.file == s.file && !super::same_file(last, s) {
                return Err(RestoreError::ArchiveGap {
                    target,
                    gap: format!(
                        "the segments of binary log {} before and from position {} were archived from two different files of that name (created at {} and at {}: the binary log was reset in between); dump {} starts at {}:{}",
                        s.file,
                        s.start,
                        created_text(last),
                        created_text(s),
                        dump.id,
                        b.file,
                        b.position
                    ),
                });
            }
        }
        chain.push(r.clone());
        lineage = s.lineage;
        let past_dump = pos_key(s.lineage, &s.file, s.end) > from;
        if past_dump && reaches(s, point, point_lineage) {
            break;
        }
        if s.closed {
            file = next_file(s);
            at = 0;
        } else {
            file = s.file.clone();
            at = s.end;
        }
    }
    Ok(Chain {
        dump: dump.clone(),
        segments: chain,
        spares: Vec::new(),
        from_file: b.file.clone(),
        from_position: b.position,
        from_lineage,
        point_lineage,
    })
}

/// When a segment's file was created, as a person reads it.
fn created_text(s: &Segment) -> String {
    s.file_created_at.map_or_else(
        || "?".into(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// Every proven segment, one after another in one private unlinked file.
struct Spool {
    file: std::fs::File,
    /// Per segment: offset in the spool, length, compression, the segment.
    parts: Vec<(u64, u64, Algorithm, Segment)>,
}

/// A byte range of the spool.
struct Region<'a> {
    file: &'a std::fs::File,
    at: u64,
    end: u64,
}

impl Read for Region<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end.saturating_sub(self.at);
        if left == 0 {
            return Ok(0);
        }
        let n = buf.len().min(left as usize);
        let got = self.file.read_at(&mut buf[..n], self.at)?;
        self.at += got as u64;
        Ok(got)
    }
}

/// Proves every segment of the chain (size and SHA-256) into one spool file.
fn spool(session: &Session, chain: &Chain) -> Result<Spool, RestoreError> {
    let dir = restore::temp_dir();
    let file = tempfile::tempfile_in(&dir).map_err(|cause| RestoreError::Spool {
        id: chain.dump.id.clone(),
        dir: dir.display().to_string(),
        cause,
    })?;
    let mut parts = Vec::new();
    let mut at = 0u64;
    let identities = session.settings.identities().ok();
    let mut buf = vec![0u8; crate::pipeline::CHUNK];
    for (i, first) in chain.segments.iter().enumerate() {
        let copies: Vec<&BackupRecord> = std::iter::once(first)
            .chain(chain.spares.get(i).into_iter().flatten())
            .collect();
        let (r, n) = restore::first_good(&session.ui, &copies, |r| {
            let storage = session.storage(&r.storage)?;
            let copy = CheckedCopy::fetch(
                storage.as_ref(),
                r,
                "replayed",
                restore::decryption_for(r, identities)?,
                session.cancel.as_ref(),
            )?;
            // Proven as stored; an encrypted segment is decrypted (and authenticated to its
            // last chunk) into the spool here, before anything is written anywhere. A copy
            // that fails part way leaves nothing: the spool is cut back to where it began.
            let failed = |e: io::Error| RestoreError::FailedChecks {
                id: r.id.clone(),
                storage: r.storage.clone(),
                what: "replayed",
                problems: e.to_string(),
            };
            let spool_error = |cause| RestoreError::Spool {
                id: r.id.clone(),
                dir: dir.display().to_string(),
                cause,
            };
            let copied = (|| {
                let mut reader = copy.into_compressed(r).map_err(failed)?;
                let mut n = 0u64;
                loop {
                    let got = reader.read(&mut buf).map_err(failed)?;
                    if got == 0 {
                        return Ok(n);
                    }
                    file.write_all_at(&buf[..got], at + n)
                        .map_err(spool_error)?;
                    n += got as u64;
                }
            })();
            if copied.is_err() {
                file.set_len(at).map_err(spool_error)?;
            }
            copied
        })?;
        parts.push((
            at,
            n,
            r.compression,
            r.segment.as_deref().cloned().expect("segment"),
        ));
        at += n;
    }
    Ok(Spool { file, parts })
}

/// One event of the chain, with the file it belongs to.
struct Located {
    lineage: u32,
    file: String,
    event: events::Event,
    /// The first event of a file's first segment (its format description).
    header: bool,
    /// The segment's events end with a CRC32.
    crc32: bool,
}

/// Walks the events of the spool in order, calling `f` for each; `f` returns false to stop.
fn walk(
    spool: &Spool,
    cancel: &AtomicBool,
    f: &mut dyn FnMut(Located) -> io::Result<bool>,
) -> io::Result<()> {
    for (at, len, algo, seg) in &spool.parts {
        let region = Region {
            file: &spool.file,
            at: *at,
            end: at + len,
        };
        let mut dec = compress::decoder(*algo, io::BufReader::with_capacity(1 << 20, region))?;
        if seg.start == 0 {
            let mut magic = [0u8; 4];
            dec.read_exact(&mut magic)?;
            if &magic != MAGIC {
                return Err(io::Error::other(format!(
                    "the segment of {} from 0 does not start with a binary log's magic",
                    seg.file
                )));
            }
        }
        let mut events = EventReader::new(dec);
        let mut first = seg.start == 0;
        // After a failover, the events before the link are the previous lineage's, again.
        let resumes_at = seg.continues.as_ref().map_or(0, |c| c.at);
        // The events must be the file's bytes from the segment's start to its end, each
        // where the one before ended: a record whose range lies (an edited index) would
        // otherwise leave events out of the replay unseen (a hostile review's).
        let mut pos = seg.start.max(4);
        let misplaced = |what: String| {
            io::Error::other(format!(
                "the segment of {} from {} to {} {what}: its record does not match its events (`sqlguard verify --type binlog` names the copy)",
                seg.file, seg.start, seg.end
            ))
        };
        while let Some(ev) = events.next_event()? {
            if cancel.load(Ordering::Relaxed) {
                return Err(io::Error::other("interrupted by a signal"));
            }
            if ev.header.start() != pos || u64::from(ev.header.log_pos) <= pos {
                return Err(misplaced(format!(
                    "holds an event at {} where {pos} was next",
                    ev.header.start()
                )));
            }
            pos = u64::from(ev.header.log_pos);
            let header = first;
            first = false;
            if ev.header.start() < resumes_at && ev.header.kind != events::FORMAT_DESCRIPTION {
                continue;
            }
            if !f(Located {
                lineage: seg.lineage,
                file: seg.file.clone(),
                event: ev,
                header,
                crc32: seg.crc32,
            })? {
                return Ok(());
            }
        }
        if pos != seg.end {
            return Err(misplaced(format!("ends its events at {pos}")));
        }
    }
    Ok(())
}

/// What the replay does with one statement-logged event (a query event: DDL always, DML in
/// STATEMENT/MIXED format).
#[derive(Debug, Clone, PartialEq, Eq)]
enum QueryVerdict {
    Replay,
    /// Not part of the database: left out of the stream (the tool's `--database` filter lets
    /// through statements written without a default database, `DROP DATABASE x` say).
    Skip,
    /// Cannot be replayed safely: the restore is refused before anything is written.
    Refuse(String),
}

/// What a replay may touch.
#[derive(Debug)]
pub struct Scope<'a> {
    /// The database the dump and the binary log hold.
    pub source: &'a str,
    /// The database the replay goes into (`source`, or `--to-database`).
    pub target: &'a str,
    /// The databases on the target server, in lower case: a dotted name whose first part is
    /// one of them reaches that database.
    pub databases: &'a std::collections::HashSet<String>,
}

/// Decides a query event written with default database `db` for a replay into `scope`.
///
/// The binary log tool renames only the default database and row events (`--rewrite-db`),
/// never a name written in a statement, so a statement is replayed only when every dotted name
/// in it (anywhere, not only in its head) stays inside the target: its first part is neither
/// the source (when renamed) nor any other database on the target server. Names that are
/// tables or aliases (`t.column`) pass; a table or alias named like a database on that server
/// is refused with the rest, as it cannot be told apart without the schema.
fn query_verdict(db: &str, query: &[u8], scope: &Scope) -> QueryVerdict {
    let source = scope.source;
    // Decisions read the statement's code: a comment cannot hide its verb or its target.
    let code = crate::sqlscan::code_text(query);
    let upper: Vec<String> = String::from_utf8_lossy(&code[..code.len().min(4096)])
        .split(|c: char| c.is_whitespace() || c == '(' || c == ';')
        .filter(|w| !w.is_empty())
        .take(16)
        .map(str::to_ascii_uppercase)
        .collect();
    // `SET STATEMENT … FOR s` and MariaDB's `ANALYZE s` (run and explain) are `s`.
    let mut from = 0;
    if upper.first().map(String::as_str) == Some("SET")
        && upper.get(1).map(String::as_str) == Some("STATEMENT")
    {
        from = upper
            .iter()
            .position(|w| w == "FOR")
            .map_or(upper.len(), |p| p + 1);
    } else if upper.first().map(String::as_str) == Some("ANALYZE")
        && upper.get(1).is_some_and(|w| {
            matches!(
                w.as_str(),
                "UPDATE" | "DELETE" | "INSERT" | "REPLACE" | "SELECT"
            )
        })
    {
        from = 1;
    }
    let verb_text: Vec<u8> = if from == 0 {
        code.clone()
    } else {
        // The words before the inner statement, skipped in the code text.
        let mut seen = 0;
        let mut at = 0;
        let text = &code;
        while seen < from && at < text.len() {
            while at < text.len() && (text[at].is_ascii_whitespace() || text[at] == b'(') {
                at += 1;
            }
            // A quoted value (`sql_mode='…'`) is one word with what surrounds it.
            let mut quote = None;
            while at < text.len() {
                let c = text[at];
                match quote {
                    Some(q) if c == q => quote = None,
                    Some(_) => {}
                    None if matches!(c, b'\'' | b'"' | b'`') => quote = Some(c),
                    None if c.is_ascii_whitespace() || c == b'(' => break,
                    None => {}
                }
                at += 1;
            }
            seen += 1;
        }
        text[at.min(text.len())..].to_vec()
    };
    let upper: Vec<String> = upper[from.min(upper.len())..].to_vec();
    let head = crate::sqlscan::Head {
        text: verb_text.iter().take(4096).copied().collect(),
        delimiter: None,
        no_backslash_escapes: false,
        code_from: 0,
    };
    let kind = crate::sqlscan::classify(&head);
    use crate::sqlscan::Kind;
    if from == 0 && matches!(kind, Kind::Session | Kind::Empty | Kind::Set) {
        return QueryVerdict::Replay;
    }
    // A name the head's kind qualifies is a database for certain; any other dotted name may be.
    let certain: Option<&String> = match &kind {
        Kind::Insert { table }
        | Kind::CreateTable { table }
        | Kind::DropTable { table }
        | Kind::AlterTable { table }
        | Kind::Object { name: table, .. } => table.database.as_ref(),
        _ => None,
    };
    let mut qualifiers: Vec<String> = crate::sqlscan::qualifiers(query);
    qualifiers.extend(certain.cloned());
    let words = |n: usize| crate::sqlscan::excerpt(&query[..query.len().min(n)], 6);
    // The source by its exact name; another case of it is another database on a server that
    // tells them apart, and is checked as one.
    let is_source = |q: &str| q == source;
    // information_schema cannot be written: naming it (reading it) changes nothing.
    qualifiers.retain(|q| !q.eq_ignore_ascii_case("information_schema"));
    let word = |i: usize| upper.get(i).map(String::as_str).unwrap_or("");
    let (a, b) = (word(0), word(1));
    // What CREATE, ALTER or DROP acts on: the first object kind among its next words
    // (`CREATE OR REPLACE DATABASE`, `DROP TEMPORARY TABLE IF EXISTS`, `CREATE DEFINER=… VIEW`).
    let object = upper
        .iter()
        .skip(1)
        .map(String::as_str)
        .find(|w| {
            *w == "TABLE"
                || crate::sqlscan::OBJECTS.contains(w)
                || crate::sqlscan::FOREIGN_OBJECTS.contains(w)
        })
        .unwrap_or("");
    if db != source {
        // The tool leaves out what ran in another database, but not what ran in none; what
        // ran elsewhere yet changes this database would be lost silently. What cannot change
        // it is left out: privileges and table maintenance (a restore brings back data, not
        // grants), and an INSERT whose target, from its head, is elsewhere (it may read this
        // database).
        let maintenance = matches!(a, "ANALYZE" | "OPTIMIZE" | "REPAIR" | "CHECK" | "CHECKSUM")
            && matches!(b, "TABLE" | "TABLES" | "NO_WRITE_TO_BINLOG" | "LOCAL");
        let harmless = matches!(a, "GRANT" | "REVOKE" | "FLUSH")
            || maintenance
            || matches!(&kind, Kind::Insert { table }
                if table.database.as_deref().is_some_and(|d| !is_source(d))
                    || (table.database.is_none() && !db.is_empty()));
        if !harmless && qualifiers.iter().any(|q| q.eq_ignore_ascii_case(source)) {
            return QueryVerdict::Refuse(format!(
                "`{}` names database `{source}` but ran while {} was the default: the binary log tool cannot replay it into `{source}`",
                words(120),
                if db.is_empty() { "no database".to_string() } else { format!("`{db}`") }
            ));
        }
        return QueryVerdict::Skip;
    }
    let renamed = scope.target != source;
    for q in &qualifiers {
        if is_source(q) && renamed {
            return QueryVerdict::Refuse(format!(
                "`{}` names database `{source}` in its text: replayed into `{}`, it would change `{source}` itself (the binary log tool renames only the default database and row events); restore under the name `{source}` on another server",
                words(120),
                scope.target
            ));
        }
        if !is_source(q) && (scope.databases.contains(&q.to_lowercase()) || Some(q) == certain) {
            return QueryVerdict::Refuse(format!(
                "`{}` names database `{q}` although it ran in `{source}`: replaying it would change that database too",
                words(120)
            ));
        }
    }
    if a == "FLUSH" {
        // Server housekeeping (FLUSH TABLES, LOGS, …): nothing of the database's data; not
        // replayed (FLUSH LOGS would rotate the target's binary log).
        return QueryVerdict::Skip;
    }
    // A table option that reaches another server or database, or puts the table's files in a
    // directory of its own choosing, is refused as it is in a dump (a twelfth review's: DATA
    // DIRECTORY was replayed).
    if matches!(a, "CREATE" | "ALTER") && object == "TABLE" {
        let what = format!("`{}`", words(120));
        if let Some(why) = crate::sqlscan::replayed_table_refusal(&what, query) {
            return QueryVerdict::Refuse(why);
        }
    }
    // A trigger, routine or event the replay creates runs on the target later: one whose body
    // acts beyond the database without naming another (a global variable, a file, the
    // server's accounts) is refused (a twelfth review's: a trigger's SET GLOBAL was replayed,
    // then fired).
    if matches!(a, "CREATE" | "ALTER")
        && matches!(object, "TRIGGER" | "FUNCTION" | "PROCEDURE" | "EVENT")
    {
        if let Some(why) = crate::sqlscan::body_refusal(query) {
            return QueryVerdict::Refuse(format!(
                "`{}` creates a {} that {why}: sqlguard does not replay it",
                words(120),
                object.to_ascii_lowercase()
            ));
        }
    }
    let safe = match a {
        "INSERT" | "REPLACE" | "UPDATE" | "DELETE" | "TRUNCATE" | "DO" | "SELECT" => true,
        // Transactions: savepoints and XA.
        "SAVEPOINT" | "RELEASE" | "ROLLBACK" | "XA" => true,
        // Table maintenance of the database's own tables: harmless on the copy.
        "ANALYZE" | "OPTIMIZE" | "REPAIR" => matches!(b, "TABLE" | "NO_WRITE_TO_BINLOG" | "LOCAL"),
        "RENAME" => b == "TABLE",
        // Tables and what a dump of one database holds; never databases, accounts, servers.
        "CREATE" | "ALTER" | "DROP" => {
            object == "TABLE" || crate::sqlscan::OBJECTS.contains(&object)
        }
        _ => false,
    };
    if safe {
        QueryVerdict::Replay
    } else {
        QueryVerdict::Refuse(format!(
            "`{}` ran in `{source}` but reaches beyond a database: sqlguard does not replay it",
            words(120)
        ))
    }
}

/// Where the replay stops, and what it replays.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stop {
    /// The first event not replayed (`None`: the whole chain from the dump's position).
    pub file: Option<String>,
    pub position: Option<u64>,
    /// Transactions replayed, and the newest commit time among them.
    pub transactions: u64,
    pub last_commit: Option<DateTime<Utc>>,
    /// Statements left out of the replay (they belong to no database, or to another one).
    pub skipped_statements: u64,
    /// Where they stand (lineage, file, offset), for the second pass.
    #[serde(skip)]
    pub skip: std::collections::HashSet<(u32, String, u64)>,
    /// The lineage of the stop's file.
    #[serde(skip)]
    pub lineage: u32,
    /// Whether a replayed statement writes rows (statement-logged DML): replayed, it fires the
    /// restored database's triggers, which row events do not.
    #[serde(skip)]
    pub statement_writes: bool,
}

/// Event kinds that are not part of a transaction.
fn outside_transactions(kind: u8) -> bool {
    // 161: binlog checkpoint, 163: GTID list (MariaDB).
    matches!(
        kind,
        events::FORMAT_DESCRIPTION | events::ROTATE | events::STOP | 161 | 163
    )
}

/// Finds the stop (first pass): groups are a GTID event and what follows up to the next
/// event outside transactions; a group is replayed when it was committed before `point`.
fn find_stop(
    spool: &Spool,
    chain: &Chain,
    point: &Point,
    scope: &Scope,
    cancel: &AtomicBool,
) -> io::Result<Stop> {
    struct Group {
        lineage: u32,
        file: String,
        start: u64,
        end: u64,
        commit: u32,
        gtid: Option<Gtid>,
        /// Query events to leave out, and the first one that cannot be replayed.
        skip: Vec<(u32, String, u64)>,
        refuse: Option<String>,
        writes: bool,
    }
    let from = pos_key(chain.from_lineage, &chain.from_file, chain.from_position);
    let mut stop = Stop::default();
    let mut open: Option<Group> = None;
    let mut found: Option<(u32, String, u64)> = None;
    let mut before_dump_commit: Option<u32> = None;
    let mut refused: Option<String> = None;
    let included = |g: &Group| -> bool {
        match point {
            Point::Time(t) => (i64::from(g.commit) + 1) * 1000 <= t.timestamp_millis(),
            Point::Position { file, position } => {
                pos_key(g.lineage, &g.file, g.end) <= pos_key(chain.point_lineage, file, *position)
            }
            Point::Gtid(target) => g.gtid != Some(*target),
        }
    };
    let close = |g: Group,
                 stop: &mut Stop,
                 found: &mut Option<(u32, String, u64)>,
                 bdc: &mut Option<u32>,
                 refused: &mut Option<String>| {
        if pos_key(g.lineage, &g.file, g.start) < from {
            *bdc = Some(bdc.map_or(g.commit, |c| c.max(g.commit)));
            return;
        }
        if found.is_some() {
            return;
        }
        if included(&g) {
            if let Some(why) = &g.refuse {
                refused.get_or_insert_with(|| format!("{}:{}: {why}", g.file, g.start));
            }
            stop.transactions += 1;
            stop.skipped_statements += g.skip.len() as u64;
            stop.statement_writes |= g.writes;
            stop.skip.extend(g.skip);
            let t = Utc.timestamp_opt(i64::from(g.commit), 0).single();
            stop.last_commit = stop.last_commit.max(t);
        } else {
            *found = Some((g.lineage, g.file.clone(), g.start));
        }
    };
    walk(spool, cancel, &mut |l: Located| {
        let h = l.event.header;
        if h.kind == events::GTID || outside_transactions(h.kind) {
            if let Some(g) = open.take() {
                close(
                    g,
                    &mut stop,
                    &mut found,
                    &mut before_dump_commit,
                    &mut refused,
                );
            }
        }
        if found.is_some() {
            return Ok(false);
        }
        if h.kind == events::GTID {
            open = Some(Group {
                lineage: l.lineage,
                file: l.file.clone(),
                start: h.start(),
                end: u64::from(h.log_pos),
                commit: h.timestamp,
                gtid: l.event.gtid(),
                skip: Vec::new(),
                refuse: None,
                writes: false,
            });
        } else if let Some(g) = open.as_mut() {
            g.commit = g.commit.max(h.timestamp);
            g.end = u64::from(h.log_pos);
            // Statements the check cannot read: compressed (log_bin_compress) and LOAD DATA
            // (its rows travel in other events).
            if matches!(h.kind, 165 | 17 | 18) {
                g.refuse.get_or_insert(format!(
                    "an event of type {} ({}) whose statement sqlguard cannot check",
                    h.kind,
                    if h.kind == 165 {
                        "a compressed statement: log_bin_compress is on"
                    } else {
                        "LOAD DATA in statement format"
                    }
                ));
            }
            if let Some((db, query)) = l.event.query(l.crc32) {
                match query_verdict(&db, &query, scope) {
                    QueryVerdict::Replay => {
                        let code = crate::sqlscan::code_text(&query[..query.len().min(256)]);
                        let verb = String::from_utf8_lossy(&code)
                            .split_whitespace()
                            .find(|w| !w.eq_ignore_ascii_case("SET"))
                            .map(str::to_ascii_uppercase)
                            .unwrap_or_default();
                        // `DO f()`, `SELECT f()` and `CREATE TABLE … SELECT f()` run a
                        // function of the database, which row events never do.
                        g.writes |= matches!(
                            verb.as_str(),
                            "INSERT"
                                | "UPDATE"
                                | "DELETE"
                                | "REPLACE"
                                | "STATEMENT"
                                | "ANALYZE"
                                | "DO"
                                | "SELECT"
                                | "CREATE"
                        );
                    }
                    QueryVerdict::Skip => g.skip.push((l.lineage, l.file.clone(), h.start())),
                    QueryVerdict::Refuse(why) => {
                        g.refuse.get_or_insert(why);
                    }
                }
            }
        }
        Ok(true)
    })?;
    if let Some(g) = open.take() {
        close(
            g,
            &mut stop,
            &mut found,
            &mut before_dump_commit,
            &mut refused,
        );
    }
    if let Some(why) = refused {
        return Err(io::Error::other(format!(
            "the binary log between the dump and the target holds a statement sqlguard cannot replay safely, at {why}; restore to a point before it (--to-position)"
        )));
    }
    if let (Point::Time(t), Some(c)) = (point, before_dump_commit) {
        if i64::from(c) * 1000 >= t.timestamp_millis() {
            return Err(io::Error::other(format!(
                "dump {} holds a transaction committed at {} or later, after the target: pick a later point, or an older dump by id",
                chain.dump.id,
                Utc.timestamp_opt(i64::from(c), 0).single().map(|t| t.to_rfc3339()).unwrap_or_default()
            )));
        }
    }
    if let Point::Gtid(g) = point {
        if found.is_none() {
            return Err(io::Error::other(format!(
                "GTID {g} is not in the archived binary log after dump {}",
                chain.dump.id
            )));
        }
    }
    if let Some((l, f, p)) = found {
        stop.lineage = l;
        stop.file = Some(f);
        stop.position = Some(p);
    }
    Ok(stop)
}

/// Writes the replay stream (second pass): the magic, the first file's format description,
/// then every event from the dump's position up to the stop.
fn write_stream(
    spool: &Spool,
    chain: &Chain,
    stop: &Stop,
    out: &mut dyn Write,
    cancel: &AtomicBool,
) -> io::Result<()> {
    let from = pos_key(chain.from_lineage, &chain.from_file, chain.from_position);
    let stop_at = match (&stop.file, stop.position) {
        (Some(f), Some(p)) => Some(pos_key(stop.lineage, f, p)),
        _ => None,
    };
    out.write_all(MAGIC)?;
    let mut header_written = false;
    walk(spool, cancel, &mut |l: Located| {
        let h = l.event.header;
        let at = pos_key(l.lineage, &l.file, h.start());
        if stop_at.as_ref().is_some_and(|s| at >= *s) {
            return Ok(false);
        }
        if at < from {
            // Before the dump: only the first file's format description is needed.
            if l.header && !header_written && h.kind == events::FORMAT_DESCRIPTION {
                out.write_all(&l.event.bytes)?;
                header_written = true;
            }
            return Ok(true);
        }
        if !header_written {
            return Err(io::Error::other(format!(
                "the archive holds no format description for {}",
                l.file
            )));
        }
        if !stop.skip.contains(&(l.lineage, l.file.clone(), h.start())) {
            out.write_all(&l.event.bytes)?;
        }
        Ok(true)
    })?;
    out.flush()
}

/// Drops the lines of the tool's SQL that would replay a transaction under its original GTID
/// (the server gives it a new one), passing everything else through.
struct DropGtidLines<R> {
    inner: io::BufReader<R>,
    line: Vec<u8>,
    at: usize,
    /// The lines since the tool's comment on a GTID event are its `/*M!…*/` settings: only
    /// there is a line dropped (never inside a statement's text).
    after_gtid: bool,
}

const GTID_LINES: &[&[u8]] = &[
    b"/*M!100001 SET @@session.gtid_seq_no=",
    b"/*M!100001 SET @@session.server_id=",
    b"/*M!100001 SET @@session.gtid_domain_id=",
];

impl<R: Read> Read for DropGtidLines<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at >= self.line.len() {
            self.line.clear();
            self.at = 0;
            if self.inner.read_until(b'\n', &mut self.line)? == 0 {
                return Ok(0);
            }
            if self.line.starts_with(b"#") {
                self.after_gtid = memchr::memmem::find(&self.line, b"GTID ").is_some();
            } else if !self.line.starts_with(b"/*M!") {
                self.after_gtid = false;
            } else if self.after_gtid && GTID_LINES.iter().any(|p| self.line.starts_with(p)) {
                self.line.clear();
            }
        }
        let n = buf.len().min(self.line.len() - self.at);
        buf[..n].copy_from_slice(&self.line[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A point-in-time restore request.
#[derive(Debug, Clone)]
pub struct PitrRequest {
    /// The restore of the dump (`id`: a dump id, or empty / `latest` for the newest good dump
    /// before the point); `filter` names the server and database.
    pub restore: RestoreRequest,
    pub point: Point,
}

/// What a point-in-time restore will do.
#[derive(Debug, Clone, Serialize)]
pub struct PitrPlan {
    pub target: String,
    pub dump: RestorePlan,
    pub replay_from: String,
    pub segments: Vec<SegmentRef>,
    pub rename: Option<(String, String)>,
}

/// One segment of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentRef {
    pub id: String,
    pub storage: String,
    pub file: String,
    pub start: u64,
    pub end: u64,
    pub compressed_bytes: u64,
    pub last_event_at: Option<DateTime<Utc>>,
    /// The storages whose copies of the same range are read in turn when this one fails its
    /// checks or cannot be read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fallback: Vec<String>,
}

impl PitrPlan {
    /// The plan in words.
    pub fn describe(&self) -> Vec<String> {
        let mut out = self.dump.describe();
        let bytes: u64 = self.segments.iter().map(|s| s.compressed_bytes).sum();
        let (first, last) = (self.segments.first(), self.segments.last());
        let spared = self
            .segments
            .iter()
            .filter(|s| !s.fallback.is_empty())
            .count();
        out.push(format!(
            "check {} binary log segment{} ({}{}) against the index before anything is written{}",
            self.segments.len(),
            if self.segments.len() == 1 { "" } else { "s" },
            human_bytes(bytes),
            match (first, last) {
                (Some(f), Some(l)) => format!(", {}:{} to {}:{}", f.file, f.start, l.file, l.end),
                _ => String::new(),
            },
            match spared {
                0 => String::new(),
                n => format!("; {n} of them have a copy on another storage, read instead should the first fail its checks or not be readable"),
            }
        ));
        out.push(format!(
            "then replay the binary log from {} up to {} (exclusive) in one session{}",
            self.replay_from,
            self.target,
            match &self.rename {
                Some((a, b)) => format!(", statements on `{a}` rewritten to `{b}`"),
                None => String::new(),
            }
        ));
        out
    }
}

/// What a point-in-time restore did.
#[derive(Debug, Clone, Serialize)]
pub struct PitrOutcome {
    pub restored: RestoreOutcome,
    pub replay_from: String,
    pub stop: Stop,
    pub segments: usize,
    pub sql_bytes: u64,
    pub replay_seconds: f64,
}

/// The dumps of the database and the server's segments, from the index, and where the archive
/// last caught up (on `storage` alone when one is named).
fn records(
    session: &Session,
    server: &str,
    database: &str,
    storage: Option<&str>,
) -> (Vec<BackupRecord>, Vec<BackupRecord>, Option<ArchiveState>) {
    let catalog = session.catalog(&[server.to_string()]);
    for (_, e) in &catalog.errors {
        session.ui.warn(e);
    }
    let read = |db: &str| {
        let dbs = [db.to_string()];
        let (rs, errors) = catalog.records(&crate::catalog::Select {
            databases: &dbs,
            ..Default::default()
        });
        for (_, e) in &errors {
            session.ui.warn(e);
        }
        rs.into_iter()
            .filter(|r| r.server == server)
            .collect::<Vec<_>>()
    };
    let mut state: Option<ArchiveState> = None;
    if let Ok(s) = session.settings.server(server) {
        for name in s
            .binlog
            .iter()
            .flat_map(|b| b.storages.iter())
            .filter(|n| storage.is_none_or(|p| p == n.as_str()))
        {
            if let Ok(st) = session.storage(name) {
                if let Ok(Some(mut x)) = super::read_state(st.as_ref(), server) {
                    // A catch-up time after now (the archiving host's clock ahead, or an
                    // edited state file) proves nothing: the archive then covers only what
                    // its segments hold (a hostile review's: a time in 2099 made a gap count
                    // as covered).
                    if x.caught_up_at.is_some_and(|c| c > chrono::Utc::now()) {
                        x.caught_up_at = None;
                    }
                    if state
                        .as_ref()
                        .is_none_or(|o| x.caught_up_at > o.caught_up_at)
                    {
                        state = Some(x);
                    }
                }
            }
        }
    }
    (read(database), read(DATABASE), state)
}

/// Plans a point-in-time restore without changing anything.
///
/// Fails as [`restore::plan`] does, and with `NotCovered` / `ArchiveGap`.
pub fn plan(session: &Session, req: &PitrRequest) -> Result<(PitrPlan, Chain), RestoreError> {
    let f = &req.restore.filter;
    let (Some(server), Some(database)) = (f.servers.first(), f.databases.first()) else {
        return Err(RestoreError::NotCovered {
            target: req.point.to_string(),
            reason: "a point-in-time restore names the server and database: add --server and --db"
                .into(),
        });
    };
    if f.servers.len() > 1 || f.databases.len() > 1 {
        return Err(RestoreError::NotCovered {
            target: req.point.to_string(),
            reason: "name one server and one database".into(),
        });
    }
    f.validate(&session.settings)?;
    // --storage pins the segments too when that storage holds the server's archive; a storage
    // of dumps alone pins the dump.
    let segment_storage = f.storage.as_deref().filter(|st| {
        session.settings.server(server).is_ok_and(|s| {
            s.binlog
                .as_ref()
                .is_some_and(|b| b.storages.iter().any(|n| n == st))
        })
    });
    let (mut dumps, segments, state) = records(session, server, database, segment_storage);
    let id = req.restore.id.as_str();
    if !id.is_empty() && id != restore::LATEST {
        dumps.retain(|d| d.id == id);
        if dumps.is_empty() {
            return Err(RestoreError::NoSuchBackup {
                id: id.to_string(),
                storage: None,
            });
        }
    }
    if let Some(st) = &f.storage {
        dumps.retain(|d| &d.storage == st);
    }
    dumps.retain(|d| d.verification.as_deref().is_none_or(|v| v.ok));
    let chain = plan_chain(
        &dumps,
        &segments,
        &req.point,
        state.as_ref(),
        segment_storage,
    )?;
    let mut dump_req = req.restore.clone();
    dump_req.id = chain.dump.id.clone();
    let dump = restore::plan(session, &dump_req)?;
    let target_db = dump.database.clone();
    Ok((
        PitrPlan {
            target: req.point.to_string(),
            replay_from: format!("{}:{}", chain.from_file, chain.from_position),
            segments: chain
                .segments
                .iter()
                .zip(&chain.spares)
                .map(|(r, spares)| {
                    let s = r.segment.as_deref().expect("segment");
                    SegmentRef {
                        id: r.id.clone(),
                        storage: r.storage.clone(),
                        file: s.file.clone(),
                        start: s.start,
                        end: s.end,
                        compressed_bytes: r.compressed_bytes,
                        last_event_at: s.last_event_at,
                        fallback: spares.iter().map(|x| x.storage.clone()).collect(),
                    }
                })
                .collect(),
            rename: (target_db != *database).then(|| (database.clone(), target_db)),
            dump,
        },
        chain,
    ))
}

/// Restores to a point in time: plans, lets `confirm` see the plan, proves every segment,
/// finds the stop, restores the dump and replays.
///
/// Fails as [`plan`] does (nothing touched), as the dump's restore does, or with `Replay`.
pub fn restore_to(
    session: &Session,
    req: &PitrRequest,
    confirm: &mut dyn FnMut(&PitrPlan) -> bool,
) -> Result<PitrOutcome, RestoreError> {
    let cancel = session.cancel.as_ref();
    let (planned, chain) = plan(session, req)?;
    if !confirm(&planned) {
        return Err(RestoreError::Declined);
    }
    let source_db = chain.dump.database.clone();
    let mut target_db = source_db.clone();
    if let Some((_, to)) = &planned.rename {
        // The tool reads `--rewrite-db=FROM->TO` by cutting at `->` and at whitespace.
        let unfit = |n: &str| n.contains("->") || n.chars().any(char::is_whitespace);
        if unfit(&source_db) || unfit(to) {
            return Err(RestoreError::NotCovered {
                target: planned.target.clone(),
                reason: format!(
                    "the binary log tool's --rewrite-db cannot rename `{source_db}` to `{to}` (a name holding `->` or whitespace is cut there): pick a --to-database without them, or restore under the same name on another server"
                ),
            });
        }
        target_db = to.clone();
    }
    let server = session.settings.server(&req.restore.to_server)?;
    let target = restore::Target::new(server, req.restore.load)?;
    let databases: std::collections::HashSet<String> = target
        .databases()?
        .into_iter()
        .map(|d| d.to_lowercase())
        .collect();
    let scope = Scope {
        source: &source_db,
        target: &target_db,
        databases: &databases,
    };
    let tool = super::binlog_tool(server).map_err(|message| RestoreError::NotCovered {
        target: planned.target.clone(),
        reason: message,
    })?;
    session.ui.info(&format!(
        "checking {} binary log segments before restoring",
        chain.segments.len()
    ));
    let spooled = spool(session, &chain)?;
    let stop = find_stop(&spooled, &chain, &req.point, &scope, cancel).map_err(|e| {
        if cancel.load(Ordering::Relaxed) {
            RestoreError::Interrupted
        } else {
            RestoreError::NotCovered {
                target: planned.target.clone(),
                reason: e.to_string(),
            }
        }
    })?;
    // The dump, as a plain restore would.
    let mut dump_req = req.restore.clone();
    dump_req.id = chain.dump.id.clone();
    let restored = restore::restore(session, &dump_req, &mut |_| true)?;
    let database = restored.database.clone();
    session.ui.info(&format!(
        "replaying the binary log from {}:{} to {} ({} transactions{}) into {}/{database}",
        chain.from_file,
        chain.from_position,
        match (&stop.file, stop.position) {
            (Some(f), Some(p)) => format!("{f}:{p}"),
            _ => "the end of the archive".into(),
        },
        stop.transactions,
        if stop.skipped_statements > 0 {
            format!(
                "; {} statements of no or another database left out",
                stop.skipped_statements
            )
        } else {
            String::new()
        },
        server.name
    ));
    // Statement-logged writes fire the restored database's triggers on replay, and run the
    // functions they call (row events do neither): a trigger or routine that writes to
    // another database, or acts beyond it, would do so on the target (a twelfth review's: a
    // restored function wrote another database's table).
    if stop.statement_writes {
        let reaching = target
            .code_bodies(&database)?
            .into_iter()
            .find_map(|(what, body)| {
                let other = crate::sqlscan::qualifiers(body.as_bytes())
                    .into_iter()
                    .find(|q| {
                        q != &database
                            && (databases.contains(&q.to_lowercase())
                                || q.eq_ignore_ascii_case(&source_db))
                    })
                    .map(|q| format!("writes to database `{q}`"));
                let hidden = body
                    .trim()
                    .is_empty()
                    .then(|| "has a body the restore account cannot read".to_string());
                other
                    .or(hidden)
                    .or_else(|| crate::sqlscan::body_refusal(body.as_bytes()))
                    .map(|why| (what, why))
            });
        if let Some((what, why)) = reaching {
            let dropped = restored.created
                && target
                    .cleanup(
                        "dropping the database before the replay",
                        &format!("DROP DATABASE {}", crate::mysql::quote_ident(&database)),
                    )
                    .is_ok();
            return Err(RestoreError::Replay {
                id: chain.dump.id.clone(),
                server: server.name.clone(),
                database,
                message: format!(
                    "{what} of the dump {why}, and the replay holds statement-logged writes that would fire or call it on the target; nothing was replayed: restore to a point before them, or drop it from a restored copy and replay by hand"
                ),
                dropped,
            });
        }
    }
    let started = std::time::Instant::now();
    let replayed = replay(
        &tool, &source_db, &database, &target, &spooled, &chain, &stop, cancel,
    );
    let sql_bytes = match replayed {
        Ok(n) => n,
        Err(message) => {
            // What the restore created goes, as after any failed restore.
            let dropped = restored.created
                && target
                    .cleanup(
                        "dropping the incomplete database",
                        &format!("DROP DATABASE {}", crate::mysql::quote_ident(&database)),
                    )
                    .is_ok();
            return Err(RestoreError::Replay {
                id: chain.dump.id.clone(),
                server: server.name.clone(),
                database,
                message,
                dropped,
            });
        }
    };
    Ok(PitrOutcome {
        restored,
        replay_from: planned.replay_from.clone(),
        stop,
        segments: chain.segments.len(),
        sql_bytes,
        replay_seconds: started.elapsed().as_secs_f64(),
    })
}

/// Runs the replay: the stream into the binary log tool, its SQL (GTID lines dropped) into one
/// client session on `database`. Returns the SQL bytes fed.
#[allow(clippy::too_many_arguments)]
fn replay(
    tool: &std::path::Path,
    source_db: &str,
    database: &str,
    target: &restore::Target,
    spooled: &Spool,
    chain: &Chain,
    stop: &Stop,
    cancel: &AtomicBool,
) -> Result<u64, String> {
    let mut cmd = crate::process::command(tool);
    cmd.arg("--no-defaults")
        .arg("--skip-gtid-strict-mode")
        .arg(format!("--database={source_db}"));
    if database != source_db {
        cmd.arg(format!("--rewrite-db={source_db}->{database}"));
    }
    let mut child = cmd
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot run {}: {}",
                tool.display(),
                crate::threads::spawn_error(&e)
            )
        })?;
    let stderr = crate::mysql::drain_stderr(&mut child).map_err(|e| e.to_string())?;
    let stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    let (fed, written) = std::thread::scope(|scope| {
        let writer = crate::threads::spawn_scoped(scope, "binlog-feed", move || {
            // The tool's stdin closes when this thread ends: its end of input.
            let mut w = io::BufWriter::with_capacity(1 << 20, stdin);
            write_stream(spooled, chain, stop, &mut w, cancel)
        });
        let writer = match writer {
            Ok(w) => w,
            Err(e) => {
                // Nothing is replayed: the tool would have read an empty input.
                let _ = child.kill();
                return (Err(e.to_string()), Ok(()));
            }
        };
        let mut sql = DropGtidLines {
            inner: io::BufReader::with_capacity(1 << 20, stdout),
            line: Vec::new(),
            at: 0,
            after_gtid: false,
        };
        let fed = target.replay(database, &mut sql, cancel);
        if fed.is_err() {
            let _ = child.kill();
        }
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the writer panicked")));
        (fed, written)
    });
    let status = child.wait();
    let tool_err = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    if cancel.load(Ordering::Relaxed) && (fed.is_err() || written.is_err()) {
        // The clients were stopped because of the signal, not the other way round.
        return Err("interrupted by a signal".into());
    }
    let sql_bytes = fed?;
    written.map_err(|e| format!("feeding the binary log tool: {e}"))?;
    match status {
        Ok(s) if s.success() => Ok(sql_bytes),
        Ok(s) => Err(format!(
            "{} failed ({}): {}",
            tool.display(),
            crate::process::describe_exit(&s),
            tool_err.trim()
        )),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::BinlogPosition;

    fn rec(id: &str, minutes: i64) -> BackupRecord {
        let t = Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap()
            + chrono::Duration::minutes(minutes);
        let mut r =
            crate::index::BackupRecord::sample(id, "shop", "daily", "local", Status::Success, t);
        r.key = Some(format!("k/{id}"));
        r
    }

    fn dump(id: &str, minutes: i64, file: &str, pos: u64) -> BackupRecord {
        let mut r = rec(id, minutes);
        r.binlog = Some(Box::new(BinlogPosition {
            file: file.into(),
            position: pos,
            gtid: Some(format!("0-1-{pos}")),
            server_id: None,
            file_created_at: None,
        }));
        r
    }

    fn seg(id: &str, minutes: i64, file: &str, start: u64, end: u64, closed: bool) -> BackupRecord {
        let mut r = rec(id, minutes);
        r.database = DATABASE.into();
        r.backup_type = super::super::TYPE.into();
        r.segment = Some(Box::new(Segment {
            file: file.into(),
            start,
            end,
            events: 1,
            first_event_at: Some(r.started_at - chrono::Duration::seconds(30)),
            last_event_at: Some(r.started_at - chrono::Duration::seconds(1)),
            first_gtid: None,
            last_gtid: None,
            closed,
            next_file: None,
            crc32: true,
            ..Default::default()
        }));
        r
    }

    fn at(minutes: i64) -> Point {
        Point::Time(
            Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap()
                + chrono::Duration::minutes(minutes),
        )
    }

    /// With no good dump (the only one failed its last verification, so the caller left it
    /// out), the refusal says why a dump that exists does not count.
    #[test]
    fn no_good_dump_says_what_counts() {
        match plan_chain(
            &[],
            &[seg("s1", 1, "b.000002", 0, 600, false)],
            &at(2),
            None,
            None,
        ) {
            Err(RestoreError::NotCovered { reason, .. }) => {
                assert!(
                    reason.contains("not failed at its last verification"),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_chain_starts_at_the_dumps_file_and_crosses_rotations() {
        let dumps = [
            dump("d1", 0, "b.000002", 500),
            dump("d0", -60, "b.000001", 100),
        ];
        let segs = [
            seg("s1", 1, "b.000002", 0, 600, false),
            seg("s2", 2, "b.000002", 600, 900, true),
            seg("s3", 3, "b.000003", 0, 300, false),
            seg("s4", 4, "b.000003", 300, 400, false),
        ];
        let c = plan_chain(&dumps, &segs, &at(2), None, None).unwrap();
        assert_eq!(c.dump.id, "d1");
        let ids: Vec<_> = c.segments.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["s1", "s2", "s3"]);
        let c = plan_chain(
            &dumps,
            &segs,
            &Point::Position {
                file: "b.000003".into(),
                position: 350,
            },
            None,
            None,
        )
        .unwrap();
        assert_eq!(c.segments.len(), 4);
    }

    /// Two segments that meet by name and offset but were read from two files created at other
    /// times (a RESET MASTER between them) are no chain: a gap naming both times.
    #[test]
    fn a_chain_never_joins_two_files_of_one_name() {
        let dumps = [dump("d1", 0, "b.000002", 500)];
        let created = |mut r: BackupRecord, minute: u32| {
            r.segment.as_mut().unwrap().file_created_at =
                Some(Utc.with_ymd_and_hms(2026, 11, 29, 11, minute, 0).unwrap());
            r
        };
        let segs = [
            created(seg("s1", 1, "b.000002", 0, 600, false), 1),
            created(seg("s2", 2, "b.000002", 600, 900, false), 2),
        ];
        match plan_chain(&dumps, &segs, &at(2), None, None) {
            Err(RestoreError::ArchiveGap { gap, .. }) => assert!(
                gap.contains("two different files") && gap.contains("11:01:00"),
                "{gap}"
            ),
            other => panic!("{other:?}"),
        }
        // The same time, or none recorded (older segments): a chain.
        let segs = [
            created(seg("s1", 1, "b.000002", 0, 600, false), 1),
            created(seg("s2", 2, "b.000002", 600, 900, false), 1),
            seg("s3", 3, "b.000002", 900, 950, false),
        ];
        let c = plan_chain(&dumps, &segs, &at(3), None, None).unwrap();
        assert_eq!(c.segments.len(), 3);
        // A dump whose file was created at another time than the archive's file of that name
        // (taken after a RESET MASTER) is not rolled forward with it.
        let mut after_reset = dump("d2", 0, "b.000002", 600);
        after_reset.binlog.as_mut().unwrap().file_created_at =
            Some(Utc.with_ymd_and_hms(2026, 11, 29, 11, 30, 0).unwrap());
        match plan_chain(&[after_reset.clone()], &segs, &at(3), None, None) {
            Err(RestoreError::ArchiveGap { gap, .. }) => {
                assert!(gap.contains("reset") && gap.contains("11:30:00"), "{gap}")
            }
            other => panic!("{other:?}"),
        }
        after_reset.binlog.as_mut().unwrap().file_created_at =
            Some(Utc.with_ymd_and_hms(2026, 11, 29, 11, 1, 0).unwrap());
        assert!(plan_chain(&[after_reset], &segs, &at(3), None, None).is_ok());
    }

    /// Edited records that lead back (a closed segment naming an earlier file, itself, or an
    /// empty range) end the walk with a gap, never a walk without end.
    #[test]
    fn a_chain_of_records_that_lead_back_ends() {
        let dumps = [dump("d1", 0, "b.000002", 500)];
        let mut back = seg("s2", 2, "b.000002", 600, 900, true);
        back.segment.as_mut().unwrap().next_file = Some("b.000001".into());
        let segs = [
            seg("s0", 0, "b.000001", 0, 900, true),
            seg("s1", 1, "b.000002", 0, 600, false),
            back,
        ];
        match plan_chain(&dumps, &segs, &at(30), None, None) {
            Err(RestoreError::ArchiveGap { gap, .. }) => {
                assert!(gap.contains("lead back"), "{gap}")
            }
            other => panic!("{other:?}"),
        }
        let mut itself = seg("s2", 2, "b.000002", 600, 900, true);
        itself.segment.as_mut().unwrap().next_file = Some("b.000002".into());
        let empty = seg("s3", 3, "b.000002", 600, 600, false);
        let mut far = seg("s4", 4, "b.000002", 600, 900, false);
        far.segment.as_mut().unwrap().lineage = u32::MAX;
        for bad in [itself, empty, far] {
            assert!(bad.segment.as_deref().unwrap().problem().is_some());
            let segs = [seg("s1", 1, "b.000002", 0, 600, false), bad];
            assert!(plan_chain(&dumps, &segs, &at(30), None, None).is_err());
        }
    }

    /// Each chained segment carries its copies of the very same range on other storages, the
    /// longest copy is read first, then one not failed at its last verification; a named
    /// storage is the only one read.
    #[test]
    fn a_chained_segment_carries_the_other_storages_copies_of_its_range() {
        let dumps = [dump("d1", 0, "b.000002", 500)];
        let on = |storage: &str, mut r: BackupRecord, failed: bool| {
            r.storage = storage.into();
            r.verification = failed.then(|| {
                Box::new(crate::index::Verification {
                    verified_at: r.started_at,
                    ok: false,
                    restore_tested: false,
                    error: Some("damaged".into()),
                    restore_test: None,
                })
            });
            r
        };
        let segs = [
            on("a", seg("s1", 1, "b.000002", 0, 600, false), true),
            on("b", seg("s1", 1, "b.000002", 0, 600, false), false),
            on("c", seg("s1", 1, "b.000002", 0, 600, false), false),
            // Shorter: never a spare for the longer range, which it does not hold.
            on("d", seg("s1x", 1, "b.000002", 0, 550, false), false),
        ];
        let storages = |c: &Chain| -> (String, Vec<String>) {
            (
                c.segments[0].storage.clone(),
                c.spares[0].iter().map(|r| r.storage.clone()).collect(),
            )
        };
        let c = plan_chain(&dumps, &segs, &at(1), None, None).unwrap();
        assert_eq!(
            storages(&c),
            ("b".to_string(), vec!["c".into(), "a".into()])
        );
        // Pinned: that storage's copy alone.
        let c = plan_chain(&dumps, &segs, &at(1), None, Some("c")).unwrap();
        assert_eq!(storages(&c), ("c".to_string(), vec![]));
        assert_eq!(c.spares.len(), c.segments.len());
        // A copy of the same id with other bytes never stands in.
        let mut odd = segs.clone();
        odd[2].sha256 = Some("other".into());
        let c = plan_chain(&dumps, &odd, &at(1), None, None).unwrap();
        assert_eq!(storages(&c), ("b".to_string(), vec!["a".into()]));
    }

    /// A segment of lineage `lineage` (`link`: the end of the previous lineage it continues).
    fn lseg(
        id: &str,
        minutes: i64,
        (file, start, end, closed): (&str, u64, u64, bool),
        lineage: u32,
        link: Option<(&str, u64, &str)>,
    ) -> BackupRecord {
        let mut r = seg(id, minutes, file, start, end, closed);
        let s = r.segment.as_mut().unwrap();
        s.lineage = lineage;
        s.continues = link.map(|(file, end, gtid)| crate::index::SegmentLink {
            file: file.into(),
            end,
            gtid_pos: gtid.into(),
            at: 300,
        });
        r
    }

    #[test]
    fn a_chain_crosses_a_failover_by_its_link_and_never_mixes_same_named_files() {
        // Primary A archived b.000001 up to 400 (GTID 0-1-7), then died; replica B, promoted,
        // has files of the same names: its b.000001 continues from 300 (its first transaction
        // after 0-1-7; the segment starts at 0 for the file's header), then b.000002.
        let segs = [
            lseg("a1", 1, ("b.000001", 0, 200, false), 0, None),
            lseg("a2", 2, ("b.000001", 200, 400, false), 0, None),
            lseg(
                "b1",
                4,
                ("b.000001", 0, 500, true),
                1,
                Some(("b.000001", 400, "0-1-7")),
            ),
            lseg("b2", 5, ("b.000002", 0, 100, false), 1, None),
        ];
        let mut on_a = dump("da", 0, "b.000001", 100);
        on_a.binlog.as_mut().unwrap().gtid = Some("0-1-3".into());
        let c = plan_chain(std::slice::from_ref(&on_a), &segs, &at(5), None, None).unwrap();
        let ids: Vec<_> = c.segments.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a1", "a2", "b1", "b2"]);
        assert_eq!(c.from_lineage, 0);
        // A dump on B at b.000001:350 is inside both lineages' b.000001: its GTID position says B.
        let mut on_b = dump("db", 3, "b.000001", 350);
        on_b.binlog.as_mut().unwrap().gtid = Some("0-2-8".into());
        let c = plan_chain(std::slice::from_ref(&on_b), &segs, &at(5), None, None).unwrap();
        let ids: Vec<_> = c.segments.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["b1", "b2"]);
        assert_eq!(c.from_lineage, 1);
        // The same position with A's GTID position is A's.
        on_b.binlog.as_mut().unwrap().gtid = Some("0-1-6".into());
        let all = Lineages::new(segs.iter().filter_map(|r| r.segment.as_deref()));
        assert_eq!(all.of("b.000001", 350, Some("0-1-6"), None), 0);
        assert_eq!(all.of("b.000001", 350, Some("0-2-8"), None), 1);
        assert_eq!(all.of("b.000002", 50, None, None), 1);
        // A dump that records its server's id needs no GTID to tell.
        let mut by_id = segs.clone();
        for r in &mut by_id {
            let s = r.segment.as_mut().unwrap();
            s.server_id = Some(if s.lineage == 0 { 1 } else { 2 });
        }
        let all = Lineages::new(by_id.iter().filter_map(|r| r.segment.as_deref()));
        assert_eq!(all.of("b.000001", 350, Some("0-1-7"), Some(1)), 0);
        assert_eq!(all.of("b.000001", 350, Some("0-1-7"), Some(2)), 1);
        // A position target names the newest lineage holding it: B's b.000002.
        let p = Point::Position {
            file: "b.000002".into(),
            position: 50,
        };
        let c = plan_chain(std::slice::from_ref(&on_a), &segs, &p, None, None).unwrap();
        assert_eq!(c.segments.len(), 4);
        assert_eq!(c.point_lineage, 1);
        // Without the link, the end of A's archive is the end: never B's same-named file.
        let unlinked = [
            segs[0].clone(),
            segs[1].clone(),
            lseg(
                "b1",
                4,
                ("b.000001", 0, 500, true),
                1,
                Some(("b.000001", 399, "0-1-7")),
            ),
        ];
        let e = plan_chain(std::slice::from_ref(&on_a), &unlinked, &at(5), None, None).unwrap_err();
        assert!(e.to_string().contains("reaches only b.000001:400"), "{e}");
    }

    #[test]
    fn a_missing_range_is_a_gap_and_an_early_point_has_no_dump() {
        let dumps = [dump("d1", 0, "b.000002", 500)];
        let segs = [
            seg("s1", 1, "b.000002", 0, 600, false),
            seg("s3", 3, "b.000002", 700, 800, false),
        ];
        let e = plan_chain(&dumps, &segs, &at(3), None, None).unwrap_err();
        assert!(matches!(e, RestoreError::ArchiveGap { .. }), "{e}");
        assert!(e.to_string().contains("from position 600 to 700"), "{e}");
        let e = plan_chain(&dumps, &segs, &at(-5), None, None).unwrap_err();
        assert!(matches!(e, RestoreError::NotCovered { .. }), "{e}");
        let e = plan_chain(&dumps, &segs[..1], &at(30), None, None).unwrap_err();
        assert!(e.to_string().contains("reaches only b.000002:600"), "{e}");
    }

    #[test]
    fn times_are_utc_unless_they_carry_an_offset() {
        let a = parse_time("2026-11-29T14:31:59Z").unwrap();
        assert_eq!(parse_time("2026-11-29 14:31:59").unwrap(), a);
        assert_eq!(parse_time("2026-11-29T15:31:59+01:00").unwrap(), a);
        assert!(parse_time("yesterday").is_err());
        assert_eq!(parse_time("2026-11-29T14:31:59.000Z").unwrap(), a);
        for fraction in ["2026-11-29T14:31:59.5Z", "2026-11-29 14:31:59.25"] {
            let e = parse_time(fraction).unwrap_err();
            assert!(e.contains("whole second"), "{e}");
        }
        assert_eq!(
            parse_position("binlog.000002:1234").unwrap(),
            ("binlog.000002".into(), 1234)
        );
        assert!(parse_position("x").is_err() && parse_position("../a:1").is_err());
    }

    #[test]
    fn statements_of_no_or_other_databases_are_left_out_or_refused() {
        let databases: std::collections::HashSet<String> =
            ["shop", "crm", "mysql"].map(String::from).into();
        let same = Scope {
            source: "shop",
            target: "shop",
            databases: &databases,
        };
        let v = |db: &str, q: &str| query_verdict(db, q.as_bytes(), &same);
        assert_eq!(v("shop", "BEGIN"), QueryVerdict::Replay);
        assert_eq!(v("shop", "UPDATE items SET qty = 1"), QueryVerdict::Replay);
        assert_eq!(
            v("shop", "ALTER TABLE items ADD COLUMN n INT"),
            QueryVerdict::Replay
        );
        assert_eq!(
            v("shop", "CREATE TABLE `shop`.`x` (a INT)"),
            QueryVerdict::Replay
        );
        assert_eq!(v("", "DROP DATABASE staging"), QueryVerdict::Skip);
        assert_eq!(
            v("crm", "INSERT INTO people VALUES (1)"),
            QueryVerdict::Skip
        );
        for (db, q) in [
            ("shop", "CREATE TABLE other.t3 (x INT)"),
            ("shop", "DROP TABLE `other`.`t`"),
            ("shop", "DROP DATABASE staging"),
            ("shop", "GRANT ALL ON *.* TO x"),
            ("shop", "CREATE USER x"),
            ("", "INSERT INTO shop.items VALUES (1)"),
            // Names the head does not carry, and names past the head.
            ("shop", "TRUNCATE TABLE crm.people"),
            ("shop", "RENAME TABLE items TO crm.items"),
            ("shop", "UPDATE items, crm.people SET items.qty = people.n"),
            ("shop", "DELETE FROM `CRM`.people WHERE 1"),
            ("crm", "TRUNCATE TABLE shop.items"),
            ("crm", "RENAME TABLE shop.r TO shop.s"),
        ] {
            assert!(matches!(v(db, q), QueryVerdict::Refuse(_)), "{db}: {q}");
        }
        let long = format!(
            "INSERT INTO items VALUES {}(2) ON DUPLICATE KEY UPDATE qty = (SELECT n FROM mysql.user)",
            "(1),".repeat(2000)
        );
        assert!(matches!(v("shop", &long), QueryVerdict::Refuse(_)));
        // Tables and aliases are not databases.
        assert_eq!(
            v("shop", "UPDATE items i SET i.qty = items.qty + 1"),
            QueryVerdict::Replay
        );
        // What cannot change `shop` from elsewhere is left out: grants, table maintenance, an
        // INSERT into another database that reads `shop`.
        for (db, q) in [
            ("", "GRANT SELECT ON shop.items TO rep@localhost"),
            ("", "ANALYZE TABLE shop.items"),
            ("crm", "INSERT INTO log SELECT id FROM shop.items"),
        ] {
            assert_eq!(v(db, q), QueryVerdict::Skip, "{db}: {q}");
        }
        // What comments, modifiers and wrappers hid.
        for (db, q) in [
            ("shop", "CREATE OR REPLACE DATABASE shop"),
            ("shop", "DROP /**/ DATABASE shop"),
            ("shop", "DROP /*!DATABASE*/ shop"),
            ("shop", "CREATE OR REPLACE USER app@'%' IDENTIFIED BY 'x'"),
            ("shop", "ALTER /**/ USER app IDENTIFIED BY 'x'"),
            ("shop", "SET STATEMENT sql_mode='' FOR UPDATE crm.t SET a=1"),
            (
                "",
                "SET STATEMENT sql_mode='' FOR INSERT INTO shop.t VALUES (1)",
            ),
            ("shop", "UPDATE crm\x0b.people SET n = 1"),
            ("", "INSERT /* c */ INTO shop.items VALUES (1)"),
            ("crm", "ANALYZE UPDATE shop.items SET qty = 1"),
        ] {
            assert!(matches!(v(db, q), QueryVerdict::Refuse(_)), "{db}: {q}");
        }
        for q in [
            "SAVEPOINT `s1`",
            "RELEASE SAVEPOINT `s1`",
            "XA END X'7831',X'',1",
            "/* app */ UPDATE items SET qty = 1",
            "CREATE OR REPLACE TABLE t (a INT)",
            "DROP TEMPORARY TABLE IF EXISTS t",
            "SET STATEMENT max_statement_time=5 FOR UPDATE items SET qty = 2",
        ] {
            assert_eq!(v("shop", q), QueryVerdict::Replay, "{q}");
        }
        assert_eq!(v("shop", "FLUSH TABLES"), QueryVerdict::Skip);
        // Reading information_schema, and maintaining its own tables, stay in the database.
        for q in [
            "INSERT INTO t SELECT COUNT(*) FROM information_schema.tables",
            "ANALYZE TABLE items",
            "UPDATE items SET qty = 1 -- copied from crm.people",
        ] {
            assert_eq!(v("shop", q), QueryVerdict::Replay, "{q}");
        }
        // Into a copy, the source's own name in a statement would reach the source.
        let copy = Scope {
            source: "shop",
            target: "shop_copy",
            databases: &databases,
        };
        for q in [
            "TRUNCATE TABLE shop.items",
            "ALTER TABLE `shop`.items ADD COLUMN n INT",
            "CREATE TABLE shop.x (a INT)",
        ] {
            assert!(
                matches!(
                    query_verdict("shop", q.as_bytes(), &copy),
                    QueryVerdict::Refuse(_)
                ),
                "{q}"
            );
        }
        assert_eq!(
            query_verdict("shop", b"TRUNCATE TABLE items", &copy),
            QueryVerdict::Replay
        );
    }

    #[test]
    fn gtid_lines_are_dropped_and_the_rest_passes() {
        let sql = b"a\n#261129 12:52:28 server id 1  end_log_pos 1343 CRC32 0x0\tGTID 0-1-6 trans\n/*M!100001 SET @@session.gtid_seq_no=6*//*!*/;\nb\n/*M!100001 SET @@session.server_id=3*//*!*/;\nc";
        let mut r = DropGtidLines {
            inner: io::BufReader::new(&sql[..]),
            line: Vec::new(),
            at: 0,
            after_gtid: false,
        };
        let mut out = String::new();
        r.read_to_string(&mut out).unwrap();
        // Only the settings after a GTID comment go; the same text elsewhere (inside a
        // statement, say) stays.
        assert_eq!(
            out,
            "a\n#261129 12:52:28 server id 1  end_log_pos 1343 CRC32 0x0\tGTID 0-1-6 trans\nb\n/*M!100001 SET @@session.server_id=3*//*!*/;\nc"
        );
    }
}
