//! `sqlguard binlog`: archives each server's binary log for point-in-time recovery.
//!
//! One run fetches, per server with a `binlog:` section, every event the archive does not hold
//! yet, from where the archive stands (the newest segment on any of its storages: file and end
//! position) to the server's current end, one segment per binary log file touched. A segment is
//! the exact bytes `[start, end)` of the server's file ([`events::SegmentReader`]), fetched by
//! the client's own `mariadb-binlog --read-from-remote-server --raw` (its output file is a
//! symlink to its standard output: no copy on disk), each event's position and CRC32 checked,
//! then compressed, hashed and landed like a dump: manifest, commit, index record (database
//! [`DATABASE`], type [`TYPE`]). A run killed midway leaves at most an unrecorded object; the
//! next run starts again from the last recorded segment, so nothing is lost or recorded twice.
//!
//! A file the server purged before it was archived is a gap: a failed record naming it, a
//! failed run, and the archive continues from the oldest file the server still has. Where the
//! archive stands and when a run last reached the server's end is kept per storage in
//! `<server>/index/binlog.json` ([`ArchiveState`]), for metrics and the report.

pub mod events;
pub mod pitr;

use std::io::Read;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::server::BinlogSettings;
use crate::config::settings::Unknown;
use crate::config::ServerSettings;
use crate::index::{BackupRecord, IndexStore, Segment, SegmentLink, Status};
use crate::layout;
use crate::mysql::{self, DefaultsFile};
use crate::pipeline::{self, Sink};
use crate::session::Session;
use crate::storage::Storage;
use crate::ui::{human_bytes, Ui};
use events::GtidState;

/// What to do when the server's binary log no longer continues the archive.
pub const NEW_ARCHIVE: &str = "The archive cannot continue over it: if that was on purpose, start a new archive (give the server a new name in the config, or move its `*binlog` segments aside)";

/// The database name segment records carry (no real database can be named so: `*` is refused
/// in names sqlguard discovers, see [`crate::backup::ACCOUNTS`]).
pub const DATABASE: &str = "*binlog";
/// The type segment records carry.
pub const TYPE: &str = "binlog";

/// The binary log tools tried in order.
pub const TOOLS: &[&str] = &["mariadb-binlog", "mysqlbinlog"];

/// What to archive.
#[derive(Debug, Clone, Default)]
pub struct BinlogRequest {
    /// Servers to archive (empty: every server with a `binlog` section).
    pub servers: Vec<String>,
}

/// What a run did.
#[derive(Debug, Default, Serialize)]
pub struct BinlogOutcome {
    pub servers: Vec<ServerArchive>,
    pub interrupted: bool,
}

impl BinlogOutcome {
    /// Whether every server's archive went without an error.
    pub fn all_ok(&self) -> bool {
        !self.interrupted && self.servers.iter().all(|s| s.errors.is_empty())
    }

    /// Every segment copy stored.
    pub fn segments(&self) -> impl Iterator<Item = &BackupRecord> {
        self.servers.iter().flat_map(|s| s.segments.iter())
    }
}

/// One server's part of a run.
#[derive(Debug, Default, Serialize)]
pub struct ServerArchive {
    pub server: String,
    /// The segment copies stored (one record per storage).
    pub segments: Vec<BackupRecord>,
    /// What went wrong, one line each.
    pub errors: Vec<String>,
    /// Where the archive stands after the run.
    pub state: Option<ArchiveState>,
}

impl ServerArchive {
    /// Says `msg` as an error and counts it against the run.
    fn fail(&mut self, ui: &crate::ui::Ui, msg: String) {
        ui.error(&msg);
        self.errors.push(msg);
    }
}

/// Where a server's archive stands, kept on each storage beside the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveState {
    /// The newest archived file and the position just after its last archived event.
    pub file: String,
    pub position: u64,
    /// When a run last reached the server's current end (everything before it is archived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caught_up_at: Option<DateTime<Utc>>,
    /// The newest archived event's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// The first error of the run that wrote this state, when it failed (a run that went
    /// well clears it): `report` shows the archive failing before it is late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// What the metrics say of one server's archive after a run.
#[derive(Debug, Clone)]
pub struct ArchiveFacts {
    pub server: String,
    /// The run archived this server without an error.
    pub ok: bool,
    pub state: Option<ArchiveState>,
    /// How long the archive may lag before it is late: the schedule's longest gap plus a
    /// minute's grace, doubled (one missed run is not an alert).
    pub max_delay_seconds: f64,
}

impl BinlogOutcome {
    /// The facts the metrics need, per server.
    pub fn facts(&self, settings: &crate::config::Settings) -> Vec<ArchiveFacts> {
        self.servers
            .iter()
            .map(|s| {
                let schedule = settings
                    .server(&s.server)
                    .ok()
                    .and_then(|x| x.binlog.as_ref())
                    .map(|b| b.schedule.clone())
                    .unwrap_or_else(|| crate::config::server::DEFAULT_BINLOG_SCHEDULE.into());
                let gap = crate::schedule::max_interval(&schedule, Utc::now())
                    .map_or(60, |d| d.num_seconds().max(60));
                ArchiveFacts {
                    server: s.server.clone(),
                    ok: s.errors.is_empty(),
                    state: s.state.clone(),
                    max_delay_seconds: (2 * (gap + 60)) as f64,
                }
            })
            .collect()
    }
}

/// The key of a server's archive state.
pub fn state_key(server: &str) -> String {
    format!("{}index/binlog.json", layout::server_prefix(server))
}

/// Reads a server's archive state on `storage` (`Ok(None)` before the first run).
///
/// Fails when the storage cannot be read or the file is damaged.
pub fn read_state(storage: &dyn Storage, server: &str) -> Result<Option<ArchiveState>, String> {
    let key = state_key(server);
    let mut r = match storage.get(&key) {
        Ok(r) => r,
        Err(crate::storage::StorageError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut text = String::new();
    r.read_to_string(&mut text)
        .map_err(|e| format!("reading {key} on '{}': {e}", storage.name()))?;
    serde_json::from_str(&text).map(Some).map_err(|e| {
        format!(
            "{key} on '{}' is damaged ({e}): the next `sqlguard binlog` run rewrites it",
            storage.name()
        )
    })
}

/// Orders binary log file names: by base name, then by the number after the last dot.
pub fn file_order(name: &str) -> (String, u64) {
    let (base, n) = file_place(name);
    (base.to_string(), n)
}

/// [`file_order`] borrowed from `name`: for comparisons made for every record.
pub fn file_place(name: &str) -> (&str, u64) {
    match name.rsplit_once('.') {
        Some((base, n)) => (base, n.parse().unwrap_or(u64::MAX)),
        None => (name, 0),
    }
}

/// Whether a file name from the server is a plain file name (it becomes a path here).
pub(crate) fn plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.contains(['/', '\0'])
}

/// The newest segment (by file and end) of `server` on `storage`, from its index summary.
fn newest_segment(storage: &dyn Storage, server: &str) -> Result<Option<Segment>, String> {
    let summary = IndexStore::new(storage, server)
        .summary()
        .map_err(|e| e.to_string())?;
    let newest = summary
        .databases
        .get(DATABASE)
        .and_then(|d| d.types.get(TYPE))
        .and_then(|t| t.last_success_per_storage.get(storage.name()))
        .and_then(|r| r.segment.as_deref().cloned());
    if let Some(bad) = newest.as_ref().and_then(Segment::problem) {
        return Err(format!(
            "the newest segment record of '{server}' on '{}' is damaged ({bad}): the index was edited or damaged (`sqlguard index rebuild` rebuilds it from the manifests)",
            storage.name()
        ));
    }
    Ok(newest)
}

/// The newest dump position of `server` recorded on `storage` (from the summary: the newest
/// success of each database and type), to start a fresh archive where it is useful.
fn dump_files(storage: &dyn Storage, server: &str) -> Vec<String> {
    let Ok(summary) = IndexStore::new(storage, server).summary() else {
        return Vec::new();
    };
    summary
        .databases
        .iter()
        .filter(|(db, _)| db.as_str() != DATABASE)
        .flat_map(|(_, d)| d.types.values())
        .filter_map(|t| t.last_success.as_ref())
        .filter_map(|r| r.binlog.as_deref().map(|b| b.file.clone()))
        .collect()
}

/// The binary log tool: the first of [`TOOLS`] that runs (beside the configured client first).
fn binlog_tool(server: &ServerSettings) -> Result<PathBuf, String> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(dir) = server.client_tool.as_ref().and_then(|c| c.parent()) {
        candidates.extend(TOOLS.iter().map(|t| dir.join(t)));
    }
    candidates.extend(TOOLS.iter().map(PathBuf::from));
    for c in candidates {
        // A hanging probe (a broken wrapper) must not hold a run: a signal stops it, and so
        // does the probe's time limit.
        match crate::process::probe(
            crate::process::command(&c)
                .arg("--version")
                .stdin(Stdio::null()),
        ) {
            Ok(out) if out.status.success() => return Ok(c),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                return Err(format!("server '{}': {e}", server.name))
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(format!(
                    "server '{}': {} --version {e}: check the tool (a wrapper that waits?)",
                    server.name,
                    c.display()
                ))
            }
            _ => {}
        }
    }
    Err(format!(
        "server '{}': no binary log tool found ({}): install the MariaDB or MySQL client package",
        server.name,
        TOOLS.join(", ")
    ))
}

/// When the server created binary log `file`: its format description's time, read with the
/// binary log tool (the account needs REPLICATION SLAVE, as the archive does). A dump records
/// it with its coordinates, so that a point-in-time restore never rolls it forward with
/// another file of that name (one the archive holds from before a RESET MASTER).
///
/// Fails when the tool cannot be run or the file read.
pub fn file_created_at(
    server: &ServerSettings,
    defaults: &DefaultsFile,
    client: &mysql::ToolInfo,
    file: &str,
) -> Result<DateTime<Utc>, String> {
    if !plain_file_name(file) {
        return Err(format!("{file:?} is not a plain file name"));
    }
    let tool = binlog_tool(server)?;
    let dir = tool_dir()?;
    let mut child = spawn_raw(server, defaults, client, &tool, dir.path(), file, 4)?;
    let stderr = mysql::drain_stderr(&mut child).map_err(|e| e.to_string())?;
    let mut out = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = crate::threads::spawn("binlog-created", move || {
        let first = (|| -> std::io::Result<Option<events::Event>> {
            let mut magic = [0u8; 4];
            out.read_exact(&mut magic)?;
            if &magic != events::MAGIC {
                return Ok(None);
            }
            events::EventReader::new(&mut out).next_event()
        })();
        let _ = tx.send(first);
    });
    if let Err(e) = reader {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e.to_string());
    }
    // A server that stalls, or a signal, does not hold the backup: a minute at most.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let first = loop {
        match rx.recv_timeout(std::time::Duration::from_millis(100)) {
            Ok(first) => break first,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                break Err(std::io::Error::other("the reader ended"))
            }
            Err(_) if crate::signals::stopping() => {
                break Err(std::io::Error::new(
                    std::io::ErrorKind::Interrupted,
                    "interrupted by a signal",
                ))
            }
            Err(_) if std::time::Instant::now() > deadline => {
                break Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no answer within a minute",
                ))
            }
            Err(_) => {}
        }
    };
    // The first event is all it takes: the tool is stopped, not read to the end.
    let _ = child.kill();
    let _ = child.wait();
    let err_text = mysql::stderr_of(stderr, server);
    match first {
        Ok(Some(ev)) if ev.header.kind == events::FORMAT_DESCRIPTION => {
            time_of(Some(ev.header.timestamp)).ok_or_else(|| "no valid time".to_string())
        }
        Ok(_) => Err(format!(
            "{} gave no format description for {file}",
            tool.display()
        )),
        Err(e) => Err(format!(
            "{} could not read {file}: {e}{}",
            tool.display(),
            if err_text.trim().is_empty() {
                String::new()
            } else {
                format!(" ({})", err_text.trim())
            }
        )),
    }
}

/// Archives the binary logs of the servers `req` names.
///
/// Fails with [`Unknown`] (exit code 2) for a server that is not configured or has no `binlog`
/// section; everything else is reported in the outcome.
pub fn run(session: &Session, req: &BinlogRequest) -> Result<BinlogOutcome, Unknown> {
    let settings = &session.settings;
    let mut servers = Vec::new();
    for name in &req.servers {
        let s = settings.server(name)?;
        if s.binlog.is_none() || s.restore_only {
            return Err(Unknown {
                kind: "server with a binlog section",
                name: name.clone(),
                configured: archived_servers(settings),
            });
        }
    }
    for s in settings.backed_up() {
        if let Some(b) = &s.binlog {
            if req.servers.is_empty() || req.servers.contains(&s.name) {
                servers.push((s, b));
            }
        }
    }
    let mut out = BinlogOutcome::default();
    for (server, cfg) in servers {
        if session.cancel.load(Ordering::Relaxed) {
            out.interrupted = true;
            break;
        }
        let a = archive_server(session, server, cfg);
        out.servers.push(a);
    }
    if session.cancel.load(Ordering::Relaxed) {
        out.interrupted = true;
    }
    Ok(out)
}

/// The servers whose binary log is archived (for messages).
pub fn archived_servers(settings: &crate::config::Settings) -> String {
    let names: Vec<&str> = settings
        .backed_up()
        .filter(|s| s.binlog.is_some())
        .map(|s| s.name.as_str())
        .collect();
    if names.is_empty() {
        "none: add a `binlog:` section to a server".to_string()
    } else {
        names.join(", ")
    }
}

/// One piece of work: a file from a position.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Piece {
    file: String,
    from: u64,
    /// The size `SHOW BINARY LOGS` gave, and whether a later file exists (so this one is
    /// complete at that size).
    size: u64,
    last: bool,
    /// Where to end in this file, when not at its end (see [`SegmentReader::stop_at`]).
    until: Option<u64>,
}

/// What to fetch, from where the archive stands and the server's list of files. Pure.
///
/// Fails with a gap (a file the archive needs is no longer on the server), returning also
/// where to continue.
fn plan_pieces(
    frontier: Option<&Segment>,
    start_file: Option<&str>,
    listed: &[(String, u64)],
) -> (Vec<Piece>, Option<String>) {
    let piece = |i: usize, from: u64| Piece {
        file: listed[i].0.clone(),
        from,
        size: listed[i].1,
        last: i + 1 == listed.len(),
        until: None,
    };
    if listed.is_empty() {
        return (Vec::new(), None);
    }
    let (first, from, gap) = match frontier {
        None => {
            let i = start_file
                .and_then(|f| listed.iter().position(|(n, _)| n == f))
                .unwrap_or(listed.len() - 1);
            (i, 0, None)
        }
        Some(seg) => {
            let (want, from) = if seg.closed {
                let next = seg.next_file.clone().unwrap_or_else(|| {
                    let (base, n) = file_order(&seg.file);
                    let width = seg.file.rsplit('.').next().map_or(6, str::len);
                    format!("{base}.{:0width$}", n.saturating_add(1))
                });
                (next, 0)
            } else {
                (seg.file.clone(), seg.end)
            };
            match listed.iter().position(|(n, _)| *n == want) {
                Some(i) => (i, from, None),
                // Every file the server has comes before the one the archive wants: the
                // numbering went back, as after RESET MASTER; a purge leaves the newer ones.
                None if listed
                    .iter()
                    .all(|(n, _)| file_order(n) < file_order(&want)) =>
                {
                    let newest = listed.last().map_or("", |(n, _)| n.as_str());
                    return (
                        Vec::new(),
                        Some(format!(
                            "the archive continues with binary log {want}, but the server's newest is {newest}: was the binary log reset (RESET MASTER)? {NEW_ARCHIVE}"
                        )),
                    );
                }
                None => {
                    // Continue from the first listed file after the one that is gone.
                    let after = listed
                        .iter()
                        .position(|(n, _)| file_order(n) > file_order(&want))
                        .unwrap_or(listed.len());
                    let gap = format!(
                        "binary log {want} was purged from the server before it was archived{}: point-in-time recovery cannot cross this gap (restores to a time after it start from a dump taken after it); keep binary logs longer on the server (binlog_expire_logs_seconds) or run `sqlguard binlog` more often",
                        if from > 0 { format!(" past position {from}") } else { String::new() }
                    );
                    if after == listed.len() {
                        return (Vec::new(), Some(gap));
                    }
                    (after, 0, Some(gap))
                }
            }
        }
    };
    let mut pieces = vec![piece(first, from)];
    for i in first + 1..listed.len() {
        pieces.push(piece(i, 0));
    }
    (pieces, gap)
}

/// Archives one server, then keeps the run's first error (or none) in each storage's archive
/// state, wherever the run failed: a server that could not be reached, a reset refused.
fn archive_server(
    session: &Session,
    server: &ServerSettings,
    cfg: &BinlogSettings,
) -> ServerArchive {
    let mut a = archive_server_once(session, server, cfg);
    if a.errors.is_empty() {
        return a;
    }
    let error = a.errors.first().cloned();
    for name in &cfg.storages {
        let Ok(s) = session.storage(name) else {
            continue;
        };
        // A state that cannot be read is left for the next run that archives to rewrite.
        let Ok(Some(mut state)) = read_state(s.as_ref(), &server.name) else {
            continue;
        };
        if state.last_error != error {
            state.last_error.clone_from(&error);
            state.updated_at = Utc::now();
            write_state(server, s.as_ref(), &state, &mut a);
        }
    }
    a
}

/// Archives one server: see [`archive_server`].
fn archive_server_once(
    session: &Session,
    server: &ServerSettings,
    cfg: &BinlogSettings,
) -> ServerArchive {
    let ui = &session.ui;
    let mut a = ServerArchive {
        server: server.name.clone(),
        ..Default::default()
    };
    let mut storages: Vec<Arc<dyn Storage>> = Vec::new();
    for name in &cfg.storages {
        match session.storage(name) {
            Ok(s) => storages.push(s),
            Err(e) => a.errors.push(format!("{}: {e}", server.name)),
        }
    }
    if storages.is_empty() {
        return a;
    }
    // The archive as the last run left it on each storage, read once: what the metrics repeat
    // when this run fails early, and what a run that does not catch up keeps.
    let old_states: Vec<Option<ArchiveState>> = storages
        .iter()
        .map(|s| read_state(s.as_ref(), &server.name).ok().flatten())
        .collect();
    a.state = old_states.iter().flatten().next().cloned();
    // Where the archive stands on each storage: its newest segment. A storage that cannot be
    // read is left out of this run (an error; it catches up on a later one), so that one
    // outage does not stop the archive on the others.
    let mut frontiers: Vec<Option<Segment>> = Vec::new();
    let mut readable: Vec<Arc<dyn Storage>> = Vec::new();
    let mut states: Vec<Option<ArchiveState>> = Vec::new();
    for (s, old) in storages.iter().zip(old_states) {
        match newest_segment(s.as_ref(), &server.name) {
            Ok(seg) => {
                frontiers.push(seg);
                readable.push(s.clone());
                states.push(old);
            }
            Err(e) => {
                let msg = format!(
                    "{}: storage '{}' left out of this run (it catches up on a later one): {e}",
                    server.name,
                    s.name()
                );
                a.fail(ui, msg);
            }
        }
    }
    if readable.is_empty() {
        return a;
    }
    let (storages, old_states) = (readable, states);
    let defaults = match DefaultsFile::create(server) {
        Ok(d) => d,
        Err(e) => {
            a.errors.push(e.to_string());
            return a;
        }
    };
    let (client, tool) = match (mysql::client_tool(server), binlog_tool(server)) {
        (Ok(c), Ok(t)) => (c, t),
        (Err(e), _) => {
            a.errors.push(e.to_string());
            return a;
        }
        (_, Err(e)) => {
            a.errors.push(e);
            return a;
        }
    };
    let asked = Utc::now();
    // One round trip: the server's id (a different one than the archive's means a failover),
    // then its files.
    let (server_id, listed): (Option<u32>, Vec<(String, u64)>) = match mysql::query(
        server,
        &client,
        &defaults,
        "listing the binary logs",
        "SELECT @@server_id; SHOW BINARY LOGS",
    ) {
        Ok(rows) => {
            let mut rows = rows.into_iter();
            let id = rows
                .next()
                .and_then(|r| r.first().and_then(|x| x.parse().ok()));
            let listed = rows
                .filter_map(|r| Some((r.first()?.clone(), r.get(1)?.parse().ok()?)))
                .collect();
            (id, listed)
        }
        Err(e) => {
            let msg = e.to_string();
            a.errors.push(if msg.contains("not enabled") || msg.contains("1381") {
                format!("{msg} (server '{}' writes no binary log: start it with log_bin, or remove servers.{}.binlog)", server.name, server.name)
            } else if msg.contains("denied") {
                format!("{msg} (the archive needs BINLOG MONITOR and REPLICATION SLAVE on MariaDB, REPLICATION CLIENT and REPLICATION SLAVE on MySQL: GRANT them ON *.* TO the account)")
            } else {
                msg
            });
            return a;
        }
    };
    if let Some(bad) = listed.iter().find(|(n, _)| !plain_file_name(n)) {
        a.errors.push(format!(
            "server '{}' lists a binary log named {:?}, which is not a plain file name: refused",
            server.name, bad.0
        ));
        return a;
    }
    // The storages whose archive stands furthest are archived from the server, once; one that
    // fell behind (a write that failed, a kill between storages, a storage just added) then
    // gets the segments it misses copied from one of them: the same bytes under the same ids,
    // from storage to storage, so that the storages meet again whatever the server writes
    // meanwhile, and the server is read once.
    let at = |f: &Option<Segment>| f.as_ref().map(|g| (g.lineage, file_order(&g.file), g.end));
    let furthest = frontiers.iter().map(at).max().flatten();
    let (leaders, laggards): (Vec<usize>, Vec<usize>) =
        (0..storages.len()).partition(|&i| at(&frontiers[i]) == furthest);
    let source = Source {
        session,
        server,
        cfg,
        defaults: &defaults,
        client: &client,
        tool: &tool,
        listed: &listed,
        server_id,
        asked,
    };
    let members: Vec<Arc<dyn Storage>> = leaders.iter().map(|&i| storages[i].clone()).collect();
    let olds: Vec<Option<ArchiveState>> = leaders.iter().map(|&i| old_states[i].clone()).collect();
    let complete = archive_group(
        &source,
        &members,
        &olds,
        frontiers[leaders[0]].clone(),
        None,
        &mut a,
    );
    if complete.is_empty() {
        return a;
    }
    for &i in &laggards {
        if session.cancel.load(Ordering::Relaxed) {
            break;
        }
        let to = &storages[i];
        let behind = frontiers[i]
            .as_ref()
            .map_or("nothing".to_string(), |g| format!("{}:{}", g.file, g.end));
        ui.warn(&format!(
            "{}: storage '{}' holds the archive up to {behind}, behind '{}': bringing it up to date",
            server.name,
            to.name(),
            complete[0].name()
        ));
        let before = a.errors.len();
        let old = old_states[i].clone();
        match catch_up(&source, &complete, to, frontiers[i].as_ref(), old, &mut a) {
            Ok(()) => {
                if let Some(state) = a.state.clone().filter(|_| a.errors.len() == before) {
                    write_state(server, to.as_ref(), &state, &mut a);
                }
            }
            Err(e) => {
                let msg = format!(
                    "{}: bringing storage '{}' up to date: {e}",
                    server.name,
                    to.name()
                );
                a.fail(ui, msg);
            }
        }
    }
    a
}

/// Whether two segments of one file name are of the same file: not told apart by their
/// recorded creation times (a segment archived before those were recorded has none).
pub fn same_file(a: &Segment, b: &Segment) -> bool {
    match (a.file_created_at, b.file_created_at) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}

/// Whether segment `next` continues exactly where `last` ends.
fn continues(last: &Segment, next: &Segment) -> bool {
    if next.lineage != last.lineage {
        return last.lineage.checked_add(1) == Some(next.lineage)
            && next
                .continues
                .as_ref()
                .is_some_and(|l| l.file == last.file && l.end == last.end);
    }
    // The file after a closed one: the one its rotate event names, else the next number.
    let following = || {
        let (base, n) = file_order(&last.file);
        let (next_base, m) = file_order(&next.file);
        base == next_base && m == n.saturating_add(1)
    };
    (next.file == last.file && next.start == last.end && same_file(last, next))
        || (last.closed
            && next.start <= 4
            && match &last.next_file {
                Some(f) => *f == next.file,
                None => following(),
            })
}

/// Brings `to`, whose archive ends at `frontier`, up to the storages in `complete` (which hold
/// everything archived): the segments that continue it are copied from them (the same bytes
/// under the same ids, each checked against its record's SHA-256 and size, from the next
/// storage when one's copy is bad); where none continues it (their segments are cut at other
/// places, or they lost the range to a prune), the range up to where theirs resume is read
/// from the server for `to` alone, ending exactly at their boundary so that the storages meet.
/// An empty `to` gets what they hold from the oldest dump it holds on.
///
/// Fails with the first segment that cannot be copied; what was copied before it stays,
/// recorded (and is in `a.segments`).
fn catch_up(
    src: &Source,
    complete: &[Arc<dyn Storage>],
    to: &Arc<dyn Storage>,
    frontier: Option<&Segment>,
    old_state: Option<ArchiveState>,
    a: &mut ServerArchive,
) -> Result<(), String> {
    let server = src.server;
    let session = src.session;
    let mut chain: Vec<BackupRecord> = IndexStore::new(complete[0].as_ref(), &server.name)
        .read_database(DATABASE)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|r| r.status == Status::Success && r.segment.is_some() && r.key.is_some())
        .collect();
    let place = |g: &Segment| (g.lineage, file_order(&g.file), g.start);
    chain.sort_by_key(|r| r.segment.as_deref().map(place));
    let seg = |r: &BackupRecord| r.segment.clone().unwrap_or_default();
    let first = match frontier {
        Some(f) => match chain.iter().position(|r| continues(f, &seg(r))) {
            Some(k) => k,
            None => {
                // Where theirs resume after `f`, in its lineage: the start of their first
                // segment past its end, or the end of the one that straddles it.
                let after = |r: &BackupRecord| {
                    let g = seg(r);
                    g.lineage == f.lineage
                        && (file_order(&g.file), g.end) > (file_order(&f.file), f.end)
                };
                let Some(k) = chain.iter().position(after) else {
                    return Err(format!(
                        "'{}' holds nothing that continues {}:{}",
                        complete[0].name(),
                        f.file,
                        f.end
                    ));
                };
                let g = seg(&chain[k]);
                let straddles = (file_order(&g.file), g.start) < (file_order(&f.file), f.end);
                let (meet, next) = if straddles {
                    ((g.file.clone(), g.end), k + 1)
                } else {
                    ((g.file.clone(), g.start), k)
                };
                // The range is on the server that wrote `f`; after a failover the server now
                // answering has other files under the same names. The hole is said once, and
                // the storage goes on from the meeting point (not stuck behind for good).
                if f.server_id.is_some() && src.server_id.is_some() && f.server_id != src.server_id
                {
                    let msg = format!(
                        "{}: storage '{}' misses {}:{} to {}:{}, written by server id {} before the failover; server id {} answers now and cannot give it: point-in-time recovery from this storage alone cannot cross that range",
                        server.name,
                        to.name(),
                        f.file,
                        f.end,
                        meet.0,
                        meet.1,
                        f.server_id.unwrap_or_default(),
                        src.server_id.unwrap_or_default()
                    );
                    a.fail(&session.ui, msg);
                    return copy_from(src, complete, to, &old_state, chain, next, a);
                }
                read_range(src, to, &old_state, f.clone(), (&meet.0, meet.1), a)?;
                next
            }
        },
        None => {
            // An empty storage: from the oldest dump it holds, by its position (file and the
            // server that wrote it), else from their newest file.
            let from_dump = oldest_dump(to.as_ref(), &server.name).and_then(|(file, pos, id)| {
                chain.iter().position(|r| {
                    let g = seg(r);
                    g.file == file
                        && g.start <= pos
                        && pos <= g.end
                        && id.is_none_or(|i| g.server_id == Some(i))
                })
            });
            match from_dump {
                Some(k) => k,
                None => {
                    let Some(newest) = chain.last().map(seg) else {
                        return Ok(());
                    };
                    chain
                        .iter()
                        .position(|r| {
                            let g = seg(r);
                            g.lineage == newest.lineage && g.file == newest.file
                        })
                        .unwrap_or(chain.len() - 1)
                }
            }
        }
    };
    copy_from(src, complete, to, &old_state, chain, first, a)
}

/// Copies `chain[first..]` to `to`, each segment from the first of `complete` that holds a
/// good copy (a bad one is a warning naming it). When none does, the segment's range is read
/// from the server for `to` alone, ending exactly where the segment ends, so that the copies go
/// on after it: the server still holding the file heals what every storage's copy lost.
fn copy_from(
    src: &Source,
    complete: &[Arc<dyn Storage>],
    to: &Arc<dyn Storage>,
    old_state: &Option<ArchiveState>,
    chain: Vec<BackupRecord>,
    first: usize,
    a: &mut ServerArchive,
) -> Result<(), String> {
    let (session, server) = (src.session, src.server);
    let warn = |w: &str| {
        session
            .ui
            .warn(&format!("{}: storage '{}': {w}", server.name, to.name()))
    };
    // The segment just declared lost, when the one before this was: `to` stands at its end as
    // far as reading on is concerned (the hole is said).
    let mut after_hole: Option<Segment> = None;
    for (i, r) in chain.iter().enumerate().skip(first) {
        let before = i.checked_sub(1).and_then(|k| chain[k].segment.as_deref());
        if session.cancel.load(Ordering::Relaxed) {
            return Err("interrupted by a signal".into());
        }
        let hole = after_hole.take();
        let mut bad = Vec::new();
        let mut copied = None;
        let mut target_failed = false;
        for from in complete {
            match copy_segment(from.as_ref(), to.as_ref(), r) {
                Ok(done) => {
                    copied = Some(done);
                    break;
                }
                // `to` itself failed: no other source, nor the server, would do better.
                Err(CopyError::Target(e)) => {
                    bad.push(e);
                    target_failed = true;
                    break;
                }
                Err(CopyError::Source(e)) => {
                    warn(&format!(
                        "segment {} cannot be copied from there: {e}",
                        r.id
                    ));
                    bad.push(e);
                }
            }
        }
        match copied {
            Some((rec, warning)) => {
                if let Some(w) = warning {
                    warn(&w);
                }
                a.segments.push(rec);
            }
            None if target_failed => return Err(bad.join("; ")),
            None => match read_from_server(src, to, old_state, r, hole, before, a) {
                Ok(()) => {}
                // Gone for good: the hole is said once (the run fails), and the storage goes
                // on after it rather than stay behind for ever.
                Err(Reread::Lost(why)) => {
                    let msg = format!(
                        "{}: storage '{}' misses {}:{} to {}:{} for good: {why}; no storage holds it intact ({}); point-in-time recovery from this storage alone cannot cross that range",
                        server.name,
                        to.name(),
                        r.segment.as_deref().map_or("", |g| g.file.as_str()),
                        r.segment.as_deref().map_or(0, |g| g.start),
                        r.segment.as_deref().map_or("", |g| g.file.as_str()),
                        r.segment.as_deref().map_or(0, |g| g.end),
                        bad.join("; ")
                    );
                    a.fail(&session.ui, msg);
                    after_hole = r.segment.as_deref().cloned();
                }
                Err(Reread::Failed(e)) => return Err(format!("{} ({e})", bad.join("; "))),
            },
        }
    }
    Ok(())
}

/// Reads the range of segment `r` from the server onto `to` alone, from where `to` stands (its
/// newest segment, or `after_hole`, the segment before `r` just declared lost; `r` continues
/// it; an empty `to` stands at the end of `before`, the segment before `r` in the archive, with
/// its GTID state, else where `r` starts) to exactly where `r` ends. Not across a failover: the
/// server now answering has other files under the same names.
///
/// Fails with [`Reread::Lost`] when the server cannot give the range again (another server
/// answers since a failover, or the file was purged), with [`Reread::Failed`] when `to` does not
/// stand where `r` starts or the read did not reach the end of `r` (said above; the next run
/// tries again).
fn read_from_server(
    src: &Source,
    to: &Arc<dyn Storage>,
    old_state: &Option<ArchiveState>,
    r: &BackupRecord,
    after_hole: Option<Segment>,
    before: Option<&Segment>,
    a: &mut ServerArchive,
) -> Result<(), Reread> {
    let g = r.segment.clone().unwrap_or_default();
    if g.server_id.is_some() && src.server_id.is_some() && g.server_id != src.server_id {
        return Err(Reread::Lost(format!(
            "server id {} wrote it and {} answers now",
            g.server_id.unwrap_or_default(),
            src.server_id.unwrap_or_default()
        )));
    }
    if !src.listed.iter().any(|(n, _)| *n == g.file) {
        return Err(Reread::Lost(format!(
            "the server no longer has {} (purged)",
            g.file
        )));
    }
    let stands = match after_hole {
        Some(lost) => Some(lost),
        // A storage that holds no segment yet (its catch-up starts at `r`) stands where `r`
        // starts.
        None => newest_segment(to.as_ref(), &src.server.name)
            .map_err(Reread::Failed)?
            .or_else(|| {
                // After the segment before it, which carries the GTID state there; else from
                // where it starts: a file's start needs none (its GTID list gives it), and
                // mid-file (the segments before it pruned) the range is read all the same, as
                // the server is its only intact source, with the cost said.
                before.filter(|b| continues(b, &g)).cloned().or_else(|| {
                    if g.start > 4 {
                        src.session.ui.warn(&format!(
                            "{}: storage '{}': the GTID state at {}:{} is not archived (what came before is pruned): the segments read for it until the next binary log file record no GTID position, and a failover before then cannot be followed by GTID",
                            src.server.name,
                            to.name(),
                            g.file,
                            g.start
                        ));
                    }
                    Some(Segment {
                        file: g.file.clone(),
                        start: g.start,
                        end: g.start,
                        lineage: g.lineage,
                        server_id: g.server_id,
                        closed: false,
                        // The read must come from the file the segment was archived from.
                        file_created_at: g.file_created_at,
                        ..Default::default()
                    })
                })
            }),
    };
    let Some(f) = stands.filter(|f| continues(f, &g)) else {
        return Err(Reread::Failed(format!(
            "storage '{}' does not stand where {}:{} starts, so it cannot be read from the server for it",
            to.name(),
            g.file,
            g.start
        )));
    };
    src.session.ui.warn(&format!(
        "{}: storage '{}': reading {}:{} to {}:{} from the server instead, as no storage holds a good copy of it",
        src.server.name,
        to.name(),
        g.file,
        g.start,
        g.file,
        g.end
    ));
    read_range(src, to, old_state, f, (&g.file, g.end), a).map_err(Reread::Failed)
}

/// Reads from the server onto `to` alone, from `from` (where `to` stands) to exactly `until`:
/// the run's state stays the furthest storages' (this read ends behind them).
///
/// Fails unless the read reached `until`: anything short of it would leave a hole behind the
/// copies that go on from there (the reason is said above; the next run tries again).
fn read_range(
    src: &Source,
    to: &Arc<dyn Storage>,
    old_state: &Option<ArchiveState>,
    from: Segment,
    until: (&str, u64),
    a: &mut ServerArchive,
) -> Result<(), String> {
    let what = format!("{}:{} to {}:{}", from.file, from.end, until.0, until.1);
    let state = a.state.clone();
    let live = archive_group(
        src,
        std::slice::from_ref(to),
        std::slice::from_ref(old_state),
        Some(from),
        Some(until),
        a,
    );
    a.state = state;
    let reached = newest_segment(to.as_ref(), &src.server.name)
        .ok()
        .flatten()
        .is_some_and(|n| n.file == until.0 && n.end == until.1);
    if live.is_empty() || !reached {
        return Err(format!(
            "reading {what} from the server did not get there (see above); the next run tries again"
        ));
    }
    Ok(())
}

/// Why a segment could not be read again from the server.
#[derive(Debug)]
enum Reread {
    /// The server cannot give it any more: the range is lost to the storage.
    Lost(String),
    /// Not this time (the storage, the connection): the next run tries again.
    Failed(String),
}

/// The position of the oldest successful dump `storage` holds of `server`: binary log file,
/// position, and the id of the server that wrote it, when recorded.
fn oldest_dump(storage: &dyn Storage, server: &str) -> Option<(String, u64, Option<u32>)> {
    let store = IndexStore::new(storage, server);
    let summary = store.summary().ok()?;
    summary
        .databases
        .keys()
        .filter(|db| db.as_str() != DATABASE)
        .filter_map(|db| store.read_database(db).ok())
        .flatten()
        .filter(|r| r.status == Status::Success)
        .filter_map(|r| r.binlog.map(|b| (r.started_at, b)))
        .min_by_key(|(t, _)| *t)
        .map(|(_, b)| (b.file, b.position, b.server_id))
}

/// Copies segment `r` from `from` to `to` under the same key and id, checked against its
/// record's SHA-256 and size, and records it on `to`. An object already at the key that no
/// record of `to` names (a copy a killed run left) is adopted when it matches, replaced when
/// it does not.
///
/// Fails when the copy cannot be read, does not match, or cannot be stored or recorded.
fn copy_segment(
    from: &dyn Storage,
    to: &dyn Storage,
    r: &BackupRecord,
) -> Result<(BackupRecord, Option<String>), CopyError> {
    let target = CopyError::Target;
    // A record that names a file not its own (an edited or damaged index) is not followed:
    // the key could be another backup's, which the leftover check below would delete or
    // overwrite (a hostile review's: another server's dump was deleted).
    if let Some(bad) = r.foreign_key(&r.server) {
        return Err(CopyError::Source(format!(
            "its record names {bad}, which is not a file of this segment"
        )));
    }
    let key = r.key.clone().unwrap_or_default();
    let mut rec = r.clone();
    rec.storage = to.name().to_string();
    // Read errors are the reader's storage's, write errors `to`'s.
    let digest = |mut reader: Box<dyn Read + Send>,
                  mut out: Option<&mut Box<dyn crate::storage::ObjectWriter>>|
     -> Result<(String, u64), (bool, std::io::Error)> {
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader.read(&mut buf).map_err(|e| (true, e))?;
            if n == 0 {
                return Ok((hex::encode(hasher.finalize()), size));
            }
            hasher.update(&buf[..n]);
            if let Some(w) = out.as_mut() {
                w.write_all(&buf[..n]).map_err(|e| (false, e))?;
            }
            size += n as u64;
        }
    };
    let matches = |found: &(String, u64)| {
        Some(&found.0) == r.sha256.as_ref() && found.1 == r.compressed_bytes
    };
    // A leftover at the key: this segment's own copy, whole or cut short.
    if to.stat(&key).map_err(|e| target(e.to_string()))?.is_some() {
        let found = to
            .get(&key)
            .map_err(|e| e.to_string())
            .and_then(|rd| digest(rd, None).map_err(|(_, e)| format!("reading {key}: {e}")))
            .map_err(target)?;
        if matches(&found) {
            let store = IndexStore::new(to, &rec.server);
            store
                .write_manifest(&rec)
                .map_err(|e| target(e.to_string()))?;
            store
                .upsert(std::slice::from_ref(&rec))
                .map_err(|e| target(e.to_string()))?;
            return Ok((rec, None));
        }
        to.delete(&key).map_err(|e| target(e.to_string()))?;
    }
    let reader = from
        .get(&key)
        .map_err(|e| CopyError::Source(e.to_string()))?;
    let mut writer = to
        .put_stream(&key, Some(r.compressed_bytes))
        .map_err(|e| target(e.to_string()))?;
    match digest(reader, Some(&mut writer)) {
        Err((source, e)) => {
            writer.abort();
            let msg = format!("copying {key} from '{}': {e}", from.name());
            return Err(if source {
                CopyError::Source(msg)
            } else {
                CopyError::Target(msg)
            });
        }
        Ok(found) if !matches(&found) => {
            writer.abort();
            return Err(CopyError::Source(format!(
                "{key} on '{}' does not match its record (SHA-256 or size): `sqlguard verify --type binlog --storage {}` checks it",
                from.name(),
                from.name()
            )));
        }
        Ok(_) => {}
    }
    let warning = crate::backup::land(to, writer, &rec, None).map_err(target)?;
    Ok((rec, warning))
}

/// Why a segment could not be copied: the source's copy (missing, unreadable, not matching its
/// record: another source, or the server, may give it) or the storage it goes to.
#[derive(Debug)]
enum CopyError {
    Source(String),
    Target(String),
}

/// What every group of storages of one server's archive run reads from.
struct Source<'a> {
    session: &'a Session,
    server: &'a ServerSettings,
    cfg: &'a BinlogSettings,
    defaults: &'a DefaultsFile,
    client: &'a mysql::ToolInfo,
    tool: &'a std::path::Path,
    /// The server's binary logs and their sizes.
    listed: &'a [(String, u64)],
    server_id: Option<u32>,
    /// When the server was asked for them.
    asked: chrono::DateTime<Utc>,
}

/// Archives what the server holds past `frontier` onto `storages` (which all stand there), up
/// to `until` (a file and an event boundary in it) when given, else to the server's end, and
/// writes their archive state. Returns the storages that hold every piece archived.
fn archive_group(
    src: &Source,
    storages: &[Arc<dyn Storage>],
    old_states: &[Option<ArchiveState>],
    frontier: Option<Segment>,
    until: Option<(&str, u64)>,
    a: &mut ServerArchive,
) -> Vec<Arc<dyn Storage>> {
    let Source {
        session,
        server,
        cfg,
        defaults,
        client,
        tool,
        listed,
        server_id,
        asked,
    } = *src;
    let ui = &session.ui;
    let errors_before = a.errors.len();
    let start_file = if frontier.is_none() {
        // A fresh archive starts with the file of the newest dump the server still has, so
        // that dump can be rolled forward; else with the current file.
        let mut files: Vec<String> = storages
            .iter()
            .flat_map(|s| dump_files(s.as_ref(), &server.name))
            .filter(|f| listed.iter().any(|(n, _)| n == f))
            .collect();
        files.sort_by_key(|f| file_order(f));
        files.pop()
    } else {
        None
    };
    let mut origin = Origin {
        server_id,
        lineage: frontier.as_ref().map_or(0, |f| f.lineage),
        continues: None,
        gtid: None,
        after: None,
        created: None,
        next_after: None,
    };
    let failover = frontier
        .as_ref()
        .filter(|f| f.server_id.is_some() && server_id.is_some() && f.server_id != server_id);
    let (pieces, gap) = match failover {
        None => {
            let planned = plan_pieces(frontier.as_ref(), start_file.as_deref(), listed);
            // A piece that continues the newest segment's file starts from its GTID state; one
            // that starts a later file must begin with transactions new to that state.
            if let (Some(f), Some(p)) = (&frontier, planned.0.first()) {
                let state = f.gtid_pos.as_deref().map(GtidState::parse);
                if p.file == f.file && p.from == f.end && p.from > 0 {
                    origin.gtid = state;
                    origin.created = f
                        .file_created_at
                        .and_then(|t| u32::try_from(t.timestamp()).ok());
                } else if p.from == 0 {
                    if planned.1.is_none() && f.closed {
                        origin.next_after.clone_from(&state);
                    }
                    origin.after = state;
                }
            }
            planned
        }
        Some(f) => {
            let resumed = resume_after_failover(server, defaults, client, tool, listed, f);
            match resumed {
                Ok(Some(r)) => {
                    ui.warn(&format!(
                        "{}: server id {} where the archive was read from server id {}: a failover; the archive continues by GTID after {} at {}:{}",
                        server.name,
                        server_id.unwrap_or_default(),
                        f.server_id.unwrap_or_default(),
                        r.state,
                        listed[r.file].0,
                        r.position
                    ));
                    origin.lineage = f.lineage.saturating_add(1);
                    origin.continues = Some(SegmentLink {
                        file: f.file.clone(),
                        end: f.end,
                        gtid_pos: f.gtid_pos.clone().unwrap_or_default(),
                        at: r.position,
                    });
                    // From the file's start: its format description travels with the events
                    // (the promoted server may differ in version or checksums), and its GTID
                    // list gives the state.
                    let mut pieces = vec![Piece {
                        file: listed[r.file].0.clone(),
                        from: 0,
                        size: listed[r.file].1,
                        last: r.file + 1 == listed.len(),
                        until: None,
                    }];
                    for (i, (file, size)) in listed.iter().enumerate().skip(r.file + 1) {
                        pieces.push(Piece {
                            file: file.clone(),
                            from: 0,
                            size: *size,
                            last: i + 1 == listed.len(),
                            until: None,
                        });
                    }
                    (pieces, None)
                }
                // The promoted server has every archived transaction and nothing new yet.
                Ok(None) => (Vec::new(), None),
                Err(e) => {
                    let msg = format!(
                        "server id {} where the archive was read from server id {} (a failover?): {e}",
                        server_id.unwrap_or_default(),
                        f.server_id.unwrap_or_default()
                    );
                    (Vec::new(), Some(msg))
                }
            }
        }
    };
    if let Some(g) = &gap {
        ui.error(&format!("{}: {g}", server.name));
        record_failure(server, cfg, storages, g, ui, a);
    }
    let pieces: Vec<Piece> = match until {
        None => pieces,
        Some((file, pos)) => pieces
            .into_iter()
            .filter(|p| file_order(&p.file) <= file_order(file))
            .filter_map(|mut p| {
                if p.file == file {
                    if pos <= p.from {
                        return None;
                    }
                    p.until = Some(pos);
                }
                Some(p)
            })
            .collect(),
    };
    let mut position = frontier.as_ref().map(|f| (f.file.clone(), f.end));
    let mut last_event_at = None;
    let mut caught_up = gap.is_none() || !pieces.is_empty();
    // The storages that hold every piece so far: one whose write fails drops out, so that its
    // archive ends before the piece it missed (the next run copies it over).
    let mut live: Vec<Arc<dyn Storage>> = storages.to_vec();
    for p in pieces {
        if session.cancel.load(Ordering::Relaxed) {
            caught_up = false;
            break;
        }
        // Nothing new in the current file; but where the archive knows when the file it reads
        // on was created, the read goes ahead all the same (it yields no event) so that the
        // file is proven the same: after a RESET MASTER the new file may have grown exactly to
        // where the archive stands.
        let prove = p.from == p.size && origin.created.is_some();
        if p.last && p.from >= p.size && p.from > 0 && !prove {
            if p.from > p.size {
                let msg = format!(
                    "binary log {} on server '{}' has {} bytes, but the archive holds it up to {}: was the binary log reset (RESET MASTER)? {NEW_ARCHIVE}",
                    p.file, server.name, p.size, p.from
                );
                a.fail(ui, msg);
                caught_up = false;
            }
            continue;
        }
        let fetched = fetch_piece(
            session, server, cfg, defaults, client, tool, &live, &p, &origin,
        );
        // Later pieces start at a file's start (its GTID list gives the state) and within the
        // lineage the first one opened.
        origin.continues = None;
        origin.gtid = None;
        origin.after = None;
        origin.created = None;
        origin.next_after = None;
        match fetched {
            Ok(Some(records)) => {
                if let Some(seg) = records.first().and_then(|r| r.segment.clone()) {
                    position = Some((seg.file.clone(), seg.end));
                    if seg.last_event_at.is_some() {
                        last_event_at = seg.last_event_at;
                    }
                    if !p.last && !seg.closed && seg.end < p.size && p.until.is_none() {
                        let msg = format!(
                            "binary log {} of server '{}': archived up to {} of its {} bytes; the next run continues",
                            p.file, server.name, seg.end, p.size
                        );
                        ui.warn(&msg);
                    }
                }
                for r in records {
                    if r.status == Status::Failed {
                        a.errors.push(format!(
                            "{}/{} on '{}': {}",
                            server.name,
                            p.file,
                            r.storage,
                            r.error.as_deref().unwrap_or("failed")
                        ));
                        live.retain(|s| s.name() != r.storage);
                    } else {
                        a.segments.push(r);
                    }
                }
                if live.is_empty() {
                    caught_up = false;
                    break;
                }
            }
            Ok(None) => {}
            Err(e) => {
                // A file read on from where the last run left it, that the server does not give
                // from there, may be another file under the same name.
                let continued = frontier.as_ref().is_some_and(|f| {
                    !f.closed && f.file == p.file && f.end == p.from && p.from > 0
                });
                // Only bytes unlike the file's, as the server or sqlguard's reader found them
                // there (garbage read as an event, or as its length), not a privilege, a
                // connection or the tool.
                let unlike = [
                    // MariaDB's server
                    "bogus data",
                    "exceeded max_allowed_packet",
                    "Wrong offset",
                    // MySQL's server
                    "binlog truncated in the middle of event",
                    "did not pass crc check",
                    // sqlguard's reader
                    "fails its CRC32 check",
                    "is not contiguous",
                ]
                .iter()
                .any(|m| e.contains(m));
                let hint = if continued && unlike && !e.contains(NEW_ARCHIVE) {
                    format!(
                        " (the archive holds {} up to {}: if the binary log was reset (RESET MASTER) since, the server's {} is another file. {NEW_ARCHIVE})",
                        p.file, p.from, p.file
                    )
                } else {
                    String::new()
                };
                let msg = format!(
                    "{}: archiving {} from {}: {e}{hint}",
                    server.name, p.file, p.from
                );
                ui.error(&msg);
                record_failure(server, cfg, &live, &msg, ui, a);
                caught_up = false;
                break;
            }
        }
    }
    // The state: where the archive stands, and whether this run reached the server's end; on
    // the storages that hold it (one that dropped out keeps its last state).
    let mut fresh = None;
    for (s, old) in storages.iter().zip(old_states) {
        let Some((file, pos)) = position.clone() else {
            continue;
        };
        if !live.iter().any(|l| l.name() == s.name()) {
            continue;
        }
        let state = ArchiveState {
            file,
            position: pos,
            // A read that ends at a meeting point is not the server's end: the storage is
            // caught up only once its copies land (the caller writes that state then).
            caught_up_at: if caught_up && a.errors.len() == errors_before && until.is_none() {
                Some(asked)
            } else {
                old.as_ref().and_then(|o| o.caught_up_at)
            },
            last_event_at: last_event_at.or(old.as_ref().and_then(|o| o.last_event_at)),
            updated_at: Utc::now(),
            last_error: a.errors[errors_before..].first().cloned(),
        };
        write_state(server, s.as_ref(), &state, a);
        fresh.get_or_insert(state);
    }
    if fresh.is_some() {
        a.state = fresh;
    }
    live
}

/// Writes the archive state on `storage`; a failure is one of the run's errors.
fn write_state(
    server: &ServerSettings,
    storage: &dyn Storage,
    state: &ArchiveState,
    a: &mut ServerArchive,
) {
    let body = serde_json::to_vec_pretty(state).expect("state serializes");
    if let Err(e) = storage.put_bytes(&state_key(&server.name), &body) {
        a.errors.push(format!(
            "{}: writing the archive state on '{}': {e}",
            server.name,
            storage.name()
        ));
    }
}

/// Records a failure of the archive in every storage's index (a failed segment record).
fn record_failure(
    server: &ServerSettings,
    cfg: &BinlogSettings,
    storages: &[Arc<dyn Storage>],
    error: &str,
    ui: &Ui,
    a: &mut ServerArchive,
) {
    let now = Utc::now();
    let id = layout::new_id(now);
    for s in storages {
        let r = record(
            server,
            cfg,
            &id,
            s.name(),
            now,
            Status::Failed,
            Some(error.to_string()),
        );
        if let Err(e) = IndexStore::new(s.as_ref(), &server.name).upsert(std::slice::from_ref(&r)) {
            ui.debug(&format!(
                "could not record the failure on '{}': {e}",
                s.name()
            ));
        }
    }
    a.errors.push(error.to_string());
}

/// A segment record's template.
fn record(
    server: &ServerSettings,
    cfg: &BinlogSettings,
    id: &str,
    storage: &str,
    started_at: DateTime<Utc>,
    status: Status,
    error: Option<String>,
) -> BackupRecord {
    let finished_at = Utc::now();
    BackupRecord {
        id: id.to_string(),
        server: server.name.clone(),
        database: DATABASE.to_string(),
        backup_type: TYPE.to_string(),
        storage: storage.to_string(),
        status,
        started_at,
        finished_at,
        duration_seconds: (finished_at - started_at).num_milliseconds() as f64 / 1000.0,
        raw_bytes: 0,
        compressed_bytes: 0,
        sha256: None,
        compression: cfg.compression.algorithm,
        compression_level: cfg.compression.level,
        key: None,
        manifest_key: None,
        server_version: None,
        dump_tool: None,
        dump_tool_version: None,
        sqlguard_version: crate::VERSION.to_string(),
        error,
        verification: None,
        database_collation: None,
        source_data_bytes: None,
        binlog: None,
        consistent: None,
        segment: None,
        encryption: None,
    }
}

fn time_of(ts: Option<u32>) -> Option<DateTime<Utc>> {
    ts.and_then(|t| Utc.timestamp_opt(i64::from(t), 0).single())
}

/// Whose history the segments of a run belong to (see [`Segment::lineage`]).
#[derive(Debug, Clone, Default)]
struct Origin {
    server_id: Option<u32>,
    lineage: u32,
    /// Set on the first segment after a failover.
    continues: Option<SegmentLink>,
    /// The GTID state where the first piece starts, when known.
    gtid: Option<GtidState>,
    /// The GTID state the archive reached, when the first piece starts a file after it: that
    /// file's first transaction must be new to it (a reset makes it old).
    after: Option<GtidState>,
    /// When the file the first piece continues was created, as the archive recorded it.
    created: Option<u32>,
    /// The GTID state the archive ended with, when the first piece is the file right after its
    /// end (no gap): that file's GTID list must hold it.
    next_after: Option<GtidState>,
}

/// A private directory for the tool's output "file" (a symlink to its standard output): mode
/// 0700 whatever the umask, since whoever can swap that link gets the binary log. Those that
/// killed runs left (two days old, this user's, holding nothing but links) are removed first.
fn tool_dir() -> Result<tempfile::TempDir, String> {
    sweep_tool_dirs(
        &crate::restore::temp_dir(),
        std::time::Duration::from_secs(2 * 86_400),
    );
    fn sweep_tool_dirs(tmp: &std::path::Path, age: std::time::Duration) {
        crate::process::sweep_dirs(tmp, "sqlguard-binlog-", age, |f| {
            f.file_type().is_ok_and(|t| t.is_symlink())
        });
    }
    tempfile::Builder::new()
        .prefix("sqlguard-binlog-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir_in(crate::restore::temp_dir())
        .map_err(|e| {
            format!(
                "making a private directory in {}: {e}",
                crate::restore::temp_dir().display()
            )
        })
}

/// Starts the tool copying `file` from `from` raw to its standard output (through `dir`).
fn spawn_raw(
    server: &ServerSettings,
    defaults: &DefaultsFile,
    client: &mysql::ToolInfo,
    tool: &std::path::Path,
    dir: &std::path::Path,
    file: &str,
    from: u64,
) -> Result<std::process::Child, String> {
    let link = dir.join(file);
    if !link.exists() {
        std::os::unix::fs::symlink("/dev/stdout", &link)
            .map_err(|e| format!("preparing the tool's output: {e}"))?;
    }
    crate::process::command(tool)
        .arg(defaults.arg())
        .args(mysql::tls_args(client.flavor, server))
        .arg("--read-from-remote-server")
        .arg("--raw")
        .arg(format!("--start-position={}", from.max(4)))
        .arg(format!("--result-file={}/", dir.display()))
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot run {}: {}",
                tool.display(),
                crate::threads::spawn_error(&e)
            )
        })
}

/// Where a promoted server's binary log continues the archive's history.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resumed {
    /// Index in the server's list of files, and the offset of the first transaction the
    /// archive does not hold.
    file: usize,
    position: u64,
    /// The GTID state there (the archive's end state).
    state: GtidState,
}

/// What one event of a promoted server's log says about where the archive continues.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ResumeStep {
    Next,
    /// This event starts the first transaction the archive does not hold; the state before it.
    Here(GtidState),
    Refuse(String),
}

/// Follows a promoted server's log (from a file's start) against the archive's end state.
/// Pure: fed one event at a time.
#[derive(Debug)]
struct ResumeScan {
    archived: GtidState,
    state: GtidState,
}

impl ResumeScan {
    fn new(archived: GtidState) -> ResumeScan {
        ResumeScan {
            archived,
            state: GtidState::default(),
        }
    }

    fn event(&mut self, ev: &events::Event) -> ResumeStep {
        if let Some(list) = ev.gtid_list() {
            self.state = GtidState::from_list(&list);
            return ResumeStep::Next;
        }
        let Some(g) = ev.gtid() else {
            return ResumeStep::Next;
        };
        if self.archived.holds(&g) {
            if let Some(a) = self.archived.get(g.domain) {
                if a.seq == g.seq && a.server != g.server {
                    return ResumeStep::Refuse(format!(
                        "the archive's transaction {a} is {g} on this server: two different histories"
                    ));
                }
            }
            self.state.apply(g);
            return ResumeStep::Next;
        }
        if self.state.covers(&self.archived) {
            ResumeStep::Here(self.state.clone())
        } else {
            ResumeStep::Refuse(self.missing(&format!("logs {g}")))
        }
    }

    /// The refusal when the server lacks archived transactions.
    fn missing(&self, then: &str) -> String {
        format!(
            "the archive holds transactions this server never had (archived up to {}, the server has {} and then {then}): continuing would mix two histories",
            self.archived,
            if self.state.is_empty() { "none".to_string() } else { self.state.to_string() }
        )
    }
}

/// After a failover (the server's id differs from the archive's), finds where the promoted
/// server's binary log continues the archive: the newest file that starts at or before the
/// archive's end state, then the first transaction after it. `Ok(None)`: the server has every
/// archived transaction and nothing new yet.
///
/// Fails, so that two histories are never mixed, when the archive's end has no GTID position,
/// the server lacks archived transactions, logged a different transaction under an archived
/// GTID, or no longer has the files that follow the archive's end.
fn resume_after_failover(
    server: &ServerSettings,
    defaults: &DefaultsFile,
    client: &mysql::ToolInfo,
    tool: &std::path::Path,
    listed: &[(String, u64)],
    frontier: &Segment,
) -> Result<Option<Resumed>, String> {
    let advice = "if this is not the same replication history, archive it as a new server (a new name in the config)";
    let Some(archived) = frontier.gtid_pos.as_deref().map(GtidState::parse) else {
        return Err(format!(
            "the archive's newest segment ({} up to {}) records no GTID position, so the archive cannot continue by GTID; {advice}",
            frontier.file, frontier.end
        ));
    };
    if listed.is_empty() {
        return Err("the server lists no binary log".to_string());
    }
    let sql = format!(
        "SELECT {}",
        listed
            .iter()
            .map(|(f, _)| format!("BINLOG_GTID_POS({}, 4)", mysql::quote_literal(f)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let starts = mysql::query(
        server,
        client,
        defaults,
        "reading where each binary log starts",
        &sql,
    )
    .map_err(|e| e.to_string())?;
    let starts: Vec<Option<GtidState>> = (0..listed.len())
        .map(|i| {
            starts
                .first()
                .and_then(|r| r.get(i))
                .filter(|v| v.as_str() != "NULL")
                .map(|v| GtidState::parse(v))
        })
        .collect();
    let Some(first) = starts
        .iter()
        .rposition(|s| s.as_ref().is_some_and(|s| archived.covers(s)))
    else {
        return Err(format!(
            "its oldest binary log ({}) starts after the archive's end ({archived}): the transactions between are not on it; {advice}",
            listed[0].0
        ));
    };
    let mut scan = ResumeScan::new(archived);
    let dir = tool_dir()?;
    for (i, (file, _)) in listed.iter().enumerate().skip(first) {
        let mut child = spawn_raw(server, defaults, client, tool, dir.path(), file, 0)?;
        let stderr = mysql::drain_stderr(&mut child).map_err(|e| e.to_string())?;
        let mut out = child.stdout.take().expect("stdout is piped");
        let mut found = Ok(None);
        let mut magic = [0u8; 4];
        let mut read = out.read_exact(&mut magic).map_err(|e| e.to_string());
        if read.is_ok() && &magic != events::MAGIC {
            read = Err("the tool's output is not a binary log".to_string());
        }
        let mut reader = events::EventReader::new(out);
        while read.is_ok() {
            match reader.next_event() {
                Ok(Some(ev)) => match scan.event(&ev) {
                    ResumeStep::Next => {}
                    ResumeStep::Here(state) => {
                        found = Ok(Some(Resumed {
                            file: i,
                            position: ev.header.start(),
                            state,
                        }));
                        break;
                    }
                    ResumeStep::Refuse(why) => {
                        found = Err(why);
                        break;
                    }
                },
                Ok(None) => break,
                Err(e) => read = Err(e.to_string()),
            }
        }
        let _ = child.kill();
        let status = child.wait();
        let err_text = mysql::stderr_of(stderr, server);
        match (found, read) {
            (Ok(None), Ok(())) => {
                if !status.is_ok_and(|s| s.success()) {
                    return Err(format!(
                        "reading binary log {file}: {} failed: {}",
                        tool.display(),
                        err_text.trim()
                    ));
                }
            }
            (Ok(None), Err(e)) => return Err(format!("reading binary log {file}: {e}")),
            (r, _) => return r.map_err(|e| format!("{e}; {advice}")),
        }
    }
    if scan.state.covers(&scan.archived) {
        Ok(None)
    } else {
        Err(format!("{}; {advice}", scan.missing("nothing more")))
    }
}

/// Fetches one piece into a segment on every storage and lands it. `Ok(None)` when the server
/// had nothing new; `Ok(records)` one per storage (failed copies included).
///
/// Fails when the fetch itself failed (tool, connection, a bad event): nothing is recorded.
#[allow(clippy::too_many_arguments)]
fn fetch_piece(
    session: &Session,
    server: &ServerSettings,
    cfg: &BinlogSettings,
    defaults: &DefaultsFile,
    client: &mysql::ToolInfo,
    tool: &std::path::Path,
    storages: &[Arc<dyn Storage>],
    p: &Piece,
    origin: &Origin,
) -> Result<Option<Vec<BackupRecord>>, String> {
    let ui = &session.ui;
    let started_at = Utc::now();
    let id = layout::new_id(started_at);
    // Segments are encrypted like dumps, to the global recipients (issue 15).
    let recipients = session.settings.recipients(None);
    let key = layout::segment_key(
        &server.name,
        DATABASE,
        &id,
        cfg.compression.algorithm,
        recipients.is_some(),
    );
    let manifest_key = layout::manifest_key(&server.name, DATABASE, TYPE, &id);
    let dir = tool_dir()?;
    let mut child = spawn_raw(server, defaults, client, tool, dir.path(), &p.file, p.from)?;
    let stderr = mysql::drain_stderr(&mut child).map_err(|e| e.to_string())?;
    let facts = Arc::new(Mutex::new(events::SegmentFacts::default()));
    let source = events::SegmentReader::new(
        child.stdout.take().expect("stdout is piped"),
        p.from,
        Arc::clone(&facts),
    )
    .with_gtid_state(origin.gtid.clone())
    .new_to(origin.after.clone())
    .same_file(origin.created)
    .next_after(origin.next_after.clone())
    .stop_at(p.until);
    let mut sinks = Vec::new();
    let mut failed = Vec::new();
    for s in storages {
        match s.put_stream(&key, None) {
            Ok(writer) => sinks.push(Sink {
                storage: s.name().to_string(),
                writer,
            }),
            Err(e) => failed.push((s.name().to_string(), e.to_string())),
        }
    }
    if sinks.is_empty() {
        let _ = child.kill();
        let _ = child.wait();
        return Err(failed
            .into_iter()
            .map(|(s, e)| format!("'{s}': {e}"))
            .collect::<Vec<_>>()
            .join("; "));
    }
    let cancel: &AtomicBool = session.cancel.as_ref();
    // Not a dump: no inventory scan of the bytes.
    let streamed = pipeline::stream_raw(
        Box::new(source),
        &cfg.compression,
        recipients,
        sinks,
        &mut |_, _| {},
        cancel,
        session.settings.compress_throttle,
    );
    // Ended where it was asked to, before the tool's end: the tool is stopped, not waited for.
    let stopped = p
        .until
        .is_some_and(|u| facts.lock().is_ok_and(|f| f.end >= u));
    if streamed.error.is_some() || streamed.cancelled || stopped {
        let _ = child.kill();
    }
    let status = child.wait();
    let err_text = mysql::stderr_of(stderr, server);
    let facts = facts.lock().map(|f| f.clone()).unwrap_or_default();
    let tool_failed = match &status {
        Ok(s) if s.success() || stopped => None,
        Ok(s) => Some(format!(
            "{} failed ({}){}",
            tool.display(),
            crate::process::describe_exit(s),
            if err_text.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", err_text.trim())
            }
        )),
        Err(e) => Some(format!("waiting for {}: {e}", tool.display())),
    };
    let problem = if streamed.cancelled {
        Some("interrupted by a signal".to_string())
    } else if let Some(e) = facts.error.clone().or(streamed.error.clone()) {
        // What the reader saw, and why: a tool that ended with an error of its own (a missing
        // privilege), not killed after the reader failed, cut its output short.
        Some(match tool_failed {
            Some(t) if status.as_ref().is_ok_and(|s| s.code().is_some()) => format!("{e} ({t})"),
            _ => e,
        })
    } else {
        tool_failed
    };
    if let Some(problem) = problem {
        for lane in streamed.lanes {
            if let Ok(w) = lane.result {
                w.abort();
            }
        }
        return Err(problem);
    }
    if facts.end <= p.from.max(4) && facts.events == 0 {
        for lane in streamed.lanes {
            if let Ok(w) = lane.result {
                w.abort();
            }
        }
        return Ok(None);
    }
    let segment = Segment {
        file: p.file.clone(),
        start: p.from,
        end: facts.end,
        events: facts.events,
        first_event_at: time_of(facts.first_event),
        last_event_at: time_of(facts.last_event),
        first_gtid: facts.first_gtid.clone(),
        last_gtid: facts.last_gtid.clone(),
        // A file that is not the server's newest is complete at its listed size, even without
        // a rotate event (a crash ends a file without one).
        closed: facts.closed || (!p.last && facts.end >= p.size),
        next_file: facts.next_file.clone(),
        crc32: facts.checksums && facts.events > 0,
        server_id: origin.server_id,
        gtid_pos: facts.gtid_pos.clone(),
        lineage: origin.lineage,
        continues: origin.continues.clone(),
        file_created_at: time_of(facts.file_created),
    };
    let mut records = Vec::new();
    for (name, e) in failed {
        records.push(record(
            server,
            cfg,
            &id,
            &name,
            started_at,
            Status::Failed,
            Some(e),
        ));
    }
    for lane in streamed.lanes {
        let storage = storages
            .iter()
            .find(|s| s.name() == lane.storage)
            .expect("a lane per storage");
        let mut r = record(
            server,
            cfg,
            &id,
            storage.name(),
            started_at,
            Status::Success,
            None,
        );
        r.raw_bytes = streamed.raw_bytes;
        r.dump_tool = Some(tool.display().to_string());
        r.segment = Some(Box::new(segment.clone()));
        r.encryption = recipients.map(|x| x.encryption());
        let landed = match lane.result {
            Ok(writer) => {
                r.compressed_bytes = streamed.compressed_bytes;
                r.sha256 = Some(streamed.sha256.clone());
                r.key = Some(key.clone());
                r.manifest_key = Some(manifest_key.clone());
                crate::backup::land(storage.as_ref(), writer, &r, None)
            }
            Err(e) => Err(format!("writing to storage '{}': {e}", lane.storage)),
        };
        match landed {
            Ok(warning) => {
                if let Some(w) = warning {
                    ui.warn(&format!(
                        "{}: storage '{}': {w}",
                        server.name,
                        storage.name()
                    ));
                }
                ui.info(&format!(
                    "{}: {} {}..{} ({} events, {}) stored on '{}'",
                    server.name,
                    segment.file,
                    segment.start,
                    segment.end,
                    segment.events,
                    human_bytes(r.compressed_bytes),
                    storage.name()
                ));
            }
            Err(e) => {
                r.status = Status::Failed;
                r.error = Some(e);
                r.compressed_bytes = 0;
                r.sha256 = None;
                r.key = None;
                r.manifest_key = None;
                let _ = IndexStore::new(storage.as_ref(), &server.name)
                    .upsert(std::slice::from_ref(&r));
            }
        }
        records.push(r);
    }
    Ok(Some(records))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A segment record whose key is not its own file is not copied, and what sits at that
    /// key on the lagging storage stays (a hostile review's: another server's dump there was
    /// deleted as a leftover that did not match).
    #[test]
    fn a_segment_record_naming_another_file_is_never_copied() {
        use crate::storage::memory::MemoryStorage;
        use crate::storage::Storage;
        let (from, to) = (MemoryStorage::new("a"), MemoryStorage::new("b"));
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 30, 21, 0, 0).unwrap();
        let mut r = BackupRecord::sample(
            "20261130T210000Z_0000000a",
            DATABASE,
            TYPE,
            "a",
            Status::Success,
            at,
        );
        let own = layout::segment_key(
            "main",
            DATABASE,
            &r.id,
            crate::compress::Algorithm::Zstd,
            false,
        );
        r.key = Some(own);
        r.manifest_key = Some(layout::manifest_key("main", DATABASE, TYPE, &r.id));
        assert_eq!(r.foreign_key("main"), None);
        let other = "other/shop/manual/20261130T211936Z_d3907bf0.sql.zst";
        r.key = Some(other.to_string());
        to.put_bytes(other, b"another server's dump").unwrap();
        from.put_bytes(other, b"another server's dump").unwrap();
        assert!(matches!(
            copy_segment(&from, &to, &r),
            Err(CopyError::Source(_))
        ));
        assert_eq!(
            to.get_bytes(other).unwrap().as_deref(),
            Some(&b"another server's dump"[..])
        );
    }

    #[test]
    fn a_segment_continues_only_the_exact_end_or_the_very_next_file() {
        let s = |file: &str, start: u64, end: u64, closed: bool| Segment {
            file: file.into(),
            start,
            end,
            closed,
            ..Default::default()
        };
        let last = s("binlog.000005", 4, 900, false);
        assert!(continues(&last, &s("binlog.000005", 900, 1000, false)));
        assert!(!continues(&last, &s("binlog.000005", 800, 1000, false)));
        assert!(!continues(&last, &s("binlog.000006", 0, 100, false)));
        // Closed by a server stop (no rotate event names the next file): only the next number.
        let stopped = s("binlog.000005", 4, 900, true);
        assert!(continues(&stopped, &s("binlog.000006", 0, 100, false)));
        assert!(!continues(&stopped, &s("binlog.000007", 0, 100, false)));
        // Of another file of the same name (created at another time): no continuation; a
        // segment recorded without the time continues as before.
        let created = |mut g: Segment, t: i64| {
            g.file_created_at = Utc.timestamp_opt(t, 0).single();
            g
        };
        let last = created(s("binlog.000005", 4, 900, false), 100);
        let next = s("binlog.000005", 900, 1000, false);
        assert!(continues(&last, &created(next.clone(), 100)));
        assert!(!continues(&last, &created(next.clone(), 101)));
        assert!(continues(&last, &next));
    }

    #[test]
    fn old_tool_directories_of_killed_runs_are_swept_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let made = |name: &str, link: bool, file: bool| {
            let d = tmp.path().join(name);
            std::fs::create_dir(&d).unwrap();
            if link {
                std::os::unix::fs::symlink("/dev/stdout", d.join("binlog.000001")).unwrap();
            }
            if file {
                std::fs::write(d.join("data"), b"x").unwrap();
            }
            d
        };
        let left = made("sqlguard-binlog-abc", true, false);
        let holding = made("sqlguard-binlog-def", true, true);
        let other = made("other-dir", true, false);
        let sweep = |age| {
            crate::process::sweep_dirs(tmp.path(), "sqlguard-binlog-", age, |f| {
                f.file_type().is_ok_and(|t| t.is_symlink())
            })
        };
        sweep(std::time::Duration::ZERO);
        assert!(!left.exists() && holding.exists() && other.exists());
        let fresh = made("sqlguard-binlog-new", true, false);
        sweep(std::time::Duration::from_secs(3600));
        assert!(fresh.exists());
    }

    #[test]
    fn the_tool_directory_is_private_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tool_dir().unwrap();
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    }

    fn seg(file: &str, end: u64, closed: bool) -> Segment {
        Segment {
            file: file.into(),
            start: 0,
            end,
            events: 1,
            first_event_at: None,
            last_event_at: None,
            first_gtid: None,
            last_gtid: None,
            closed,
            next_file: None,
            crc32: true,
            ..Default::default()
        }
    }

    fn listed(files: &[(&str, u64)]) -> Vec<(String, u64)> {
        files.iter().map(|(n, s)| (n.to_string(), *s)).collect()
    }

    #[test]
    fn a_fresh_archive_starts_at_the_dumps_file_or_the_current_one() {
        let l = listed(&[("b.000001", 100), ("b.000002", 50)]);
        let (p, gap) = plan_pieces(None, None, &l);
        assert!(gap.is_none());
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].file.as_str(), p[0].from, p[0].last),
            ("b.000002", 0, true)
        );
        let (p, _) = plan_pieces(None, Some("b.000001"), &l);
        assert_eq!(p.len(), 2);
        assert!(!p[0].last && p[1].last);
    }

    #[test]
    fn the_archive_continues_where_it_stands_across_rotations() {
        let l = listed(&[("b.000001", 100), ("b.000002", 50), ("b.000003", 10)]);
        let (p, gap) = plan_pieces(Some(&seg("b.000001", 80, false)), None, &l);
        assert!(gap.is_none());
        assert_eq!(p.iter().map(|p| p.from).collect::<Vec<_>>(), vec![80, 0, 0]);
        let (p, _) = plan_pieces(Some(&seg("b.000001", 100, true)), None, &l);
        assert_eq!(p[0].file, "b.000002");
    }

    #[test]
    fn a_purged_file_is_a_gap_and_the_archive_goes_on() {
        let l = listed(&[("b.000003", 100), ("b.000004", 50)]);
        let (p, gap) = plan_pieces(Some(&seg("b.000001", 80, false)), None, &l);
        assert!(gap.unwrap().contains("b.000001 was purged"));
        assert_eq!(p[0].file, "b.000003");
        let (p, gap) = plan_pieces(Some(&seg("b.000002", 80, true)), None, &l);
        assert!(
            gap.is_none(),
            "b.000002 was archived whole: b.000003 follows"
        );
        assert_eq!(p[0].file, "b.000003");
    }

    #[test]
    fn numbering_that_went_back_is_a_reset_not_a_purge() {
        let l = listed(&[("b.000001", 300)]);
        for frontier in [seg("b.000004", 80, false), seg("b.000004", 80, true)] {
            let (p, gap) = plan_pieces(Some(&frontier), None, &l);
            let gap = gap.unwrap();
            assert!(p.is_empty());
            assert!(
                gap.contains("RESET MASTER") && !gap.contains("purged"),
                "{gap}"
            );
        }
    }

    /// Feeds a scan a promoted server's file: a GTID list, then one transaction per GTID.
    fn scan(archived: &str, list: &[&str], gtids: &[&str]) -> (ResumeStep, u64) {
        use events::tests::{event, gtid_body, gtid_list_body};
        let g = |s: &&str| s.parse::<events::Gtid>().unwrap();
        let mut scan = ResumeScan::new(GtidState::parse(archived));
        let list: Vec<events::Gtid> = list.iter().map(g).collect();
        let mut at = 256u32;
        let mut evs = vec![event(events::GTID_LIST, 1, 9, at, &gtid_list_body(&list))];
        at += evs[0].len() as u32;
        for x in gtids {
            let x = g(x);
            let e = event(events::GTID, 1, x.server, at, &gtid_body(x.seq, x.domain));
            at += e.len() as u32;
            evs.push(e);
        }
        for e in evs {
            let ev = events::EventReader::new(&e[..])
                .next_event()
                .unwrap()
                .unwrap();
            match scan.event(&ev) {
                ResumeStep::Next => {}
                step => return (step, ev.header.start()),
            }
        }
        let end = if scan.state.covers(&scan.archived) {
            ResumeStep::Next
        } else {
            ResumeStep::Refuse(scan.missing("nothing more"))
        };
        (end, u64::from(at))
    }

    #[test]
    fn a_promoted_replica_continues_after_the_archives_last_transaction() {
        // The replica logged the primary's transactions (log_slave_updates), then its own.
        let (step, at) = scan(
            "0-1-5",
            &["0-1-2"],
            &["0-1-3", "0-1-4", "0-1-5", "0-2-6", "0-2-7"],
        );
        assert_eq!(step, ResumeStep::Here(GtidState::parse("0-1-5")));
        assert!(at > 256, "the position of 0-2-6's event");
        // Caught up, nothing new yet.
        let (step, _) = scan("0-1-5", &[], &["0-1-4", "0-1-5"]);
        assert_eq!(step, ResumeStep::Next);
        // Two domains: the archive's state is reached when both are.
        let (step, _) = scan("0-1-5,1-1-2", &["0-1-5"], &["1-1-1", "1-1-2", "0-2-6"]);
        assert_eq!(step, ResumeStep::Here(GtidState::parse("0-1-5,1-1-2")));
    }

    #[test]
    fn a_server_without_the_archived_history_is_refused() {
        // The archive got further than the replica before the primary died.
        let (step, _) = scan("0-1-7", &[], &["0-1-5", "0-2-6", "0-2-8"]);
        let ResumeStep::Refuse(why) = step else {
            panic!("{step:?}")
        };
        assert!(
            why.contains(
                "never had (archived up to 0-1-7, the server has 0-2-6 and then logs 0-2-8)"
            ),
            "{why}"
        );
        // The archive's last GTID is another transaction on this server.
        let (step, _) = scan("0-1-5", &[], &["0-1-4", "0-3-5"]);
        let ResumeStep::Refuse(why) = step else {
            panic!("{step:?}")
        };
        assert!(why.contains("0-1-5 is 0-3-5 on this server"), "{why}");
        // A domain the server never saw.
        let (step, _) = scan("0-1-5,1-1-2", &[], &["0-1-5", "0-2-6"]);
        assert!(matches!(step, ResumeStep::Refuse(_)), "{step:?}");
        // Nothing more, and behind.
        let (step, _) = scan("0-1-5", &[], &["0-1-4"]);
        assert!(matches!(step, ResumeStep::Refuse(_)), "{step:?}");
    }

    #[test]
    fn file_names_order_by_number() {
        assert!(file_order("binlog.000010") > file_order("binlog.000009"));
        assert!(
            !plain_file_name("../x") && !plain_file_name("") && plain_file_name("binlog.000001")
        );
    }
}
