//! One backup run: for each selected server and database, run the dump tool, stream its output
//! through the [`crate::pipeline`] into every storage of the backup type, then commit, write the
//! manifest and record the outcome in each storage's index.
//!
//! A copy is recorded as a success only when the dump tool exited 0, its output ended with the
//! completion trailer, and the storage committed every byte. Anything else is recorded as failed
//! with the reason, and the storage writer is aborted so that no partial object is left behind.

use std::collections::HashMap;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::config::settings::Unknown;
use crate::config::{BackupTypeSettings, ServerSettings, Settings};
use crate::index::{BackupRecord, IndexStore, Status};
use crate::layout;
use crate::mysql::{self, DefaultsFile, ServerInfo, ToolInfo};
use crate::pipeline::{self, Sink};
use crate::session::Session;
use crate::storage::Storage;
use crate::ui::{human_bytes, Ui};

/// What to back up.
#[derive(Debug, Clone)]
pub struct BackupRequest {
    pub backup_type: String,
    /// Only these servers; empty means all.
    pub servers: Vec<String>,
    /// Only these databases; empty means the servers' include/exclude selection.
    pub databases: Vec<String>,
    /// Databases of each server dumped at once; `None` means each server's `parallel`.
    pub jobs: Option<u32>,
}

/// What a run did: one record per database and storage, as written to the indexes.
#[derive(Debug, Default)]
pub struct BackupOutcome {
    pub records: Vec<BackupRecord>,
    /// Problems that are not one copy's failure (an index that could not be written, …).
    pub errors: Vec<String>,
    /// Every database of a reached server that the run left out, and why.
    pub excluded: Vec<ExcludedDatabase>,
    pub interrupted: bool,
    /// `--db` names a server has not and never had, each with its error: an error of the run
    /// when no server of the run has it.
    unmatched: Vec<(String, String)>,
    /// The databases reached servers have, of those the run selected.
    matched: std::collections::HashSet<String>,
}

/// A database of a server that the run did not back up, by its exact name, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExcludedDatabase {
    pub server: String,
    pub database: String,
    pub reason: String,
}

impl BackupOutcome {
    /// Whether every copy succeeded and nothing else went wrong.
    pub fn all_ok(&self) -> bool {
        self.errors.is_empty()
            && !self.interrupted
            && self.records.iter().all(|r| r.status == Status::Success)
    }
}

/// A storage of the run, and why it cannot be used (its preflight check failed), if it cannot.
struct Target {
    storage: Arc<dyn Storage>,
    broken: Option<String>,
}

impl Target {
    fn name(&self) -> &str {
        self.storage.name()
    }
}

/// Facts shared by every database of one server in a run.
struct ServerContext<'a> {
    server: &'a ServerSettings,
    defaults: DefaultsFile,
    dump_tool: ToolInfo,
    client: ToolInfo,
    info: ServerInfo,
    /// Dumps record where their snapshot stands in the binary log (MariaDB writing one, and
    /// the account allowed to read its position).
    coordinates: bool,
    /// The server's `@@server_id`, recorded with the coordinates.
    server_id: Option<u32>,
    /// Whether reading when a dump's binary log file was created failed already (said once).
    file_time_warned: std::sync::atomic::AtomicBool,
}

impl ServerContext<'_> {
    /// When binary log `file` was created, for servers whose binary log is archived (see
    /// [`crate::binlog::file_created_at`]), read right after each dump: never remembered from
    /// an earlier dump of the run, since a RESET MASTER between two dumps makes another file of
    /// the same name. A failure is warned about once per run.
    fn file_created_at(&self, file: &str, ui: &Ui) -> Option<DateTime<Utc>> {
        self.server.binlog.as_ref()?;
        match crate::binlog::file_created_at(self.server, &self.defaults, &self.client, file) {
            Ok(t) => Some(t),
            Err(e) => {
                if !self
                    .file_time_warned
                    .swap(true, std::sync::atomic::Ordering::Relaxed)
                {
                    ui.warn(&format!(
                        "server '{}': when binary log {file} was created cannot be read ({e}): a point-in-time restore from the dumps that start in it cannot tell that file from another of the same name after a RESET MASTER",
                        self.server.name
                    ));
                }
                None
            }
        }
    }
}

/// Template of a record; each storage gets a copy with its own status.
struct Attempt<'a> {
    id: String,
    server: &'a str,
    database: String,
    btype: &'a BackupTypeSettings,
    /// The type's compression, with its threads shared between the databases dumped at once.
    compression: crate::compress::Compression,
    /// The database's default collation, as discovered.
    collation: Option<String>,
    /// The database's data bytes (information_schema), 0 when unknown.
    data_bytes: u64,
    /// The progress bar's estimate of the dump's size (0: unknown), and which database of how
    /// many this is.
    bar_estimate: u64,
    position: (usize, usize),
    started_at: DateTime<Utc>,
    started: Instant,
}

impl Attempt<'_> {
    fn record(&self, storage: &str, status: Status, error: Option<String>) -> BackupRecord {
        let finished_at = Utc::now();
        BackupRecord {
            id: self.id.clone(),
            server: self.server.to_string(),
            database: self.database.clone(),
            backup_type: self.btype.name.clone(),
            storage: storage.to_string(),
            status,
            started_at: self.started_at,
            finished_at,
            duration_seconds: self.started.elapsed().as_secs_f64(),
            raw_bytes: 0,
            compressed_bytes: 0,
            sha256: None,
            compression: self.compression.algorithm,
            compression_level: self.compression.level,
            key: None,
            manifest_key: None,
            server_version: None,
            dump_tool: None,
            dump_tool_version: None,
            sqlguard_version: crate::VERSION.to_string(),
            error,
            verification: None,
            database_collation: self.collation.clone(),
            source_data_bytes: (self.data_bytes > 0).then_some(self.data_bytes),
            binlog: None,
            consistent: None,
            segment: None,
            encryption: self.btype.encryption.as_ref().map(|r| r.encryption()),
        }
    }
}

/// Checks that the request names a configured type and servers; returns the type.
///
/// Fails with [`Unknown`] (exit code 2).
pub fn validate<'a>(
    settings: &'a Settings,
    req: &BackupRequest,
) -> Result<&'a BackupTypeSettings, Unknown> {
    let btype = settings.backup_type(&req.backup_type)?;
    for s in &req.servers {
        if settings.server(s)?.restore_only {
            return Err(Unknown {
                kind: "server to back up",
                name: s.clone(),
                configured: format!(
                    "{}; '{s}' is restore_only, a restore target",
                    settings
                        .backed_up()
                        .map(|x| x.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    Ok(btype)
}

/// Runs one backup.
///
/// Fails only for a request that cannot start (unknown type or server); every other failure is
/// recorded in the outcome and the indexes.
pub fn run(session: &Session, req: &BackupRequest) -> Result<BackupOutcome, Unknown> {
    let (settings, ui, cancel) = (&session.settings, &session.ui, &session.cancel);
    let btype = validate(settings, req)?;
    let mut outcome = BackupOutcome::default();
    // Open and check every storage first: a storage that is down, or whose bucket or
    // credentials are wrong, fails fast and alone, before any dump runs.
    let mut storages: Vec<Target> = Vec::new();
    for name in &btype.storages {
        match session.storage(name) {
            Ok(s) => {
                let broken = s.preflight().err().map(|e| e.to_string());
                if let Some(e) = &broken {
                    ui.error(e);
                }
                storages.push(Target { storage: s, broken });
            }
            Err(e) => {
                ui.error(&e.to_string());
                outcome.errors.push(e.to_string());
            }
        }
    }
    for server in settings
        .backed_up()
        .filter(|s| req.servers.is_empty() || req.servers.contains(&s.name))
    {
        if cancel.load(Ordering::Relaxed) {
            outcome.interrupted = true;
            break;
        }
        backup_server(session, server, btype, req, &storages, &mut outcome);
    }
    // A name one server has is not another's typo: only where it is, it is backed up.
    for (name, msg) in std::mem::take(&mut outcome.unmatched) {
        if outcome.matched.contains(&name) {
            ui.debug(&msg);
        } else {
            ui.error(&msg);
            outcome.errors.push(msg);
        }
    }
    if outcome.records.is_empty() && !outcome.interrupted {
        let msg = "nothing was backed up: no database matched the selection (check databases.include/exclude and --db)".to_string();
        ui.error(&msg);
        outcome.errors.push(msg);
    }
    Ok(outcome)
}

/// The raw size and data bytes of the newest successful dump of each database of `server`, from
/// the first storage whose index can be read (nothing when none can: estimates are optional).
fn previous_dumps(storages: &[Target], server: &str) -> HashMap<String, (u64, Option<u64>)> {
    for t in storages.iter().filter(|t| t.broken.is_none()) {
        let Ok(summary) = IndexStore::new(t.storage.as_ref(), server).summary() else {
            continue;
        };
        return summary
            .databases
            .iter()
            .filter_map(|(db, d)| {
                let newest = d
                    .types
                    .values()
                    .filter_map(|ts| ts.last_success.as_ref())
                    .max_by_key(|r| r.finished_at)?;
                Some((db.clone(), (newest.raw_bytes, newest.source_data_bytes)))
            })
            .collect();
    }
    HashMap::new()
}

/// Which of `names` (given by `--db`, missing on the server or not known because it cannot
/// be reached) must be recorded as failed backups: those the config names literally, and those
/// with records of the server on a storage of this run (any type); every one when a storage of
/// the backup type could not be opened or reached, or its index read (a failed record is the
/// safe side of not knowing). The others are typos. Only the backup type's storages are read,
/// each once: a storage of another type that is down costs nothing here.
fn to_record(
    storages: &[Target],
    btype: &BackupTypeSettings,
    server: &ServerSettings,
    names: &[String],
) -> Vec<bool> {
    let literal = |n: &str| {
        server
            .include
            .iter()
            .any(|p| mysql::is_literal(p) && p == n)
    };
    if names.iter().all(|n| literal(n)) {
        return vec![true; names.len()];
    }
    let unknown = vec![true; names.len()];
    if storages.len() < btype.storages.len() || storages.iter().any(|t| t.broken.is_some()) {
        return unknown;
    }
    let mut known = std::collections::HashSet::new();
    for t in storages {
        match IndexStore::new(t.storage.as_ref(), &server.name).summary() {
            Ok(s) => known.extend(s.databases.into_keys()),
            Err(_) => return unknown,
        }
    }
    names
        .iter()
        .map(|n| literal(n) || known.contains(n.as_str()))
        .collect()
}

/// The error for `--db NAME` naming no database of the server and none on record: what the
/// server has instead (a name that differs in case first).
fn unknown_database(server: &str, name: &str, all: &[mysql::Database]) -> String {
    const NAMED: usize = 10;
    let hint = match all.iter().find(|d| d.name.eq_ignore_ascii_case(name)) {
        Some(d) => format!("did you mean '{}'? Names compare byte for byte", d.name),
        None => {
            let theirs: Vec<&str> = all
                .iter()
                .map(|d| d.name.as_str())
                .filter(|n| !mysql::SYSTEM_DATABASES.contains(n))
                .collect();
            format!(
                "its databases: {}{}",
                if theirs.is_empty() {
                    "none but the system ones".to_string()
                } else {
                    theirs[..theirs.len().min(NAMED)].join(", ")
                },
                match theirs.len().saturating_sub(NAMED) {
                    0 => String::new(),
                    more => format!(" and {more} more"),
                }
            )
        }
    };
    format!(
        "server '{server}': there is no database '{name}', and the storages of this backup type hold no backup of it, so nothing was recorded: check the name; {hint}"
    )
}

/// The progress bar's estimate of a dump's size: the last dump's size; scaled by the growth of
/// the database's data bytes only when they changed more than twofold (a bulk load or purge:
/// information_schema's data bytes move in steps as InnoDB allocates extents, +59% for a few
/// hundred rows here, so small changes are noise); without a last dump, the data bytes alone
/// (index bytes are never dumped).
fn dump_estimate(db: &mysql::Database, previous: Option<&(u64, Option<u64>)>) -> u64 {
    match previous {
        Some(&(raw, Some(then))) if raw > 0 && then > 0 && db.data_bytes > 0 => {
            let growth = db.data_bytes as f64 / then as f64;
            if (0.5..=2.0).contains(&growth) {
                raw
            } else {
                (raw as f64 * growth) as u64
            }
        }
        Some(&(raw, _)) if raw > 0 => raw,
        _ => db.data_bytes,
    }
}

/// The order in which `workers` workers take databases of these estimated dump sizes: the
/// selection's order for one worker; largest first for several, so that a big database does
/// not start last and run alone while the other workers idle (ties keep the selection order).
fn take_order(estimates: &[u64], workers: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..estimates.len()).collect();
    if workers > 1 {
        order.sort_by_key(|&i| std::cmp::Reverse(estimates[i]));
    }
    order
}

/// Writes the option file, finds the tools, connects, and lists the databases.
fn prepare_server<'a>(
    server: &'a ServerSettings,
    ui: &Ui,
) -> Result<(ServerContext<'a>, Vec<mysql::Database>), mysql::MysqlError> {
    let defaults = DefaultsFile::create(server)?;
    let dump_tool = mysql::dump_tool(server)?;
    let client = mysql::client_tool(server)?;
    let info = mysql::server_info(server, &client, &defaults)?;
    ui.debug(&format!(
        "server '{}': {} ({:?}); dump tool {} ({})",
        server.name,
        info.version_string,
        info.flavor,
        dump_tool.program.display(),
        dump_tool.banner
    ));
    let mut coordinates = false;
    let mut server_id = None;
    if info.flavor == mysql::Flavor::MariaDb && dump_tool.flavor == mysql::Flavor::MariaDb {
        let binlog = mysql::binlog_status(server, &client, &defaults)?;
        coordinates = binlog.enabled && binlog.position_readable;
        server_id = binlog.server_id;
        if binlog.enabled && !binlog.position_readable {
            ui.warn(&format!(
                "server '{}' writes a binary log, but its user cannot read the log's position: backups record no binlog coordinates, so point-in-time recovery cannot start from them (GRANT BINLOG MONITOR ON *.* TO the account)",
                server.name
            ));
        }
    }
    let all = mysql::list_databases(server, &client, &defaults)?;
    Ok((
        ServerContext {
            server,
            defaults,
            dump_tool,
            client,
            info,
            coordinates,
            server_id,
            file_time_warned: Default::default(),
        },
        all,
    ))
}

#[allow(clippy::too_many_arguments)]
fn backup_server(
    session: &Session,
    server: &ServerSettings,
    btype: &BackupTypeSettings,
    req: &BackupRequest,
    storages: &[Target],
    outcome: &mut BackupOutcome,
) {
    let (ui, cancel) = (&session.ui, &session.cancel);
    let throttle = session.settings.compress_throttle;
    let jobs = req.jobs.unwrap_or(server.parallel).max(1);
    let compression = btype.compression.shared_by(jobs);
    let attempt_for = |database: &str| {
        // The id's time and the start time agree (the id sorts and reads as the start).
        let now = Utc::now();
        Attempt {
            id: layout::new_id(now),
            server: &server.name,
            database: database.to_string(),
            btype,
            compression,
            collation: None,
            data_bytes: 0,
            bar_estimate: 0,
            position: (0, 0),
            started_at: now,
            started: Instant::now(),
        }
    };
    // Connecting and discovery; a failure fails every database this run was asked for.
    let (ctx, all) = match prepare_server(server, ui) {
        Ok(v) => v,
        Err(e) => {
            let mut names: Vec<String> = if req.databases.is_empty() {
                server
                    .include
                    .iter()
                    .filter(|p| mysql::is_literal(p))
                    .cloned()
                    .collect()
            } else {
                // A `--db` name this server may never have had is recorded only when known.
                let keep = to_record(storages, btype, server, &req.databases);
                req.databases
                    .iter()
                    .zip(keep)
                    .filter(|(_, k)| *k)
                    .map(|(n, _)| n.clone())
                    .collect()
            };
            if names.is_empty() {
                names.push(crate::health::SERVER_WIDE.to_string());
            }
            ui.error(&e.to_string());
            for name in names {
                let attempt = attempt_for(&name);
                record_failed_everywhere(&attempt, storages, &e.to_string(), ui, outcome);
            }
            return;
        }
    };
    let mut selection = mysql::select_databases(&all, server, &req.databases);
    // Sizes only for what this run dumps (they size the progress bars).
    if let Err(e) =
        mysql::estimate_sizes(server, &ctx.client, &ctx.defaults, &mut selection.selected)
    {
        ui.debug(&format!("no size estimates: {e}"));
    }
    let patterned: Vec<String> = selection
        .excluded
        .iter()
        .filter(|e| {
            req.databases.is_empty() && !mysql::SYSTEM_DATABASES.contains(&e.database.as_str())
        })
        .map(|e| format!("{} ({})", e.database, e.reason))
        .collect();
    if !patterned.is_empty() {
        // Every one is in `--json`'s `excluded`; the log names the first few.
        const NAMED: usize = 10;
        let more = patterned.len().saturating_sub(NAMED);
        ui.info(&format!(
            "server '{}': not backed up: {}{}",
            server.name,
            patterned[..patterned.len().min(NAMED)].join(", "),
            if more > 0 {
                format!(" and {more} more (`--json` lists them)")
            } else {
                String::new()
            }
        ));
    }
    outcome
        .excluded
        .extend(selection.excluded.iter().map(|e| ExcludedDatabase {
            server: server.name.clone(),
            database: e.database.clone(),
            reason: e.reason.clone(),
        }));
    // A missing database the config names, or one with backups on record, is a failed backup
    // of it; any other name (a typo in `--db`) fails the run without a record, so that it
    // leaves no database in the index, the report and the metrics that never existed.
    outcome
        .matched
        .extend(selection.selected.iter().map(|d| d.name.clone()));
    let recorded = if selection.missing.is_empty() {
        Vec::new()
    } else {
        to_record(storages, btype, server, &selection.missing)
    };
    for (name, record) in selection.missing.iter().zip(recorded) {
        if record {
            let attempt = attempt_for(name);
            let msg = format!(
                "server '{}': database '{name}' does not exist (check the name, or databases.include)",
                server.name
            );
            ui.error(&msg);
            record_failed_everywhere(&attempt, storages, &msg, ui, outcome);
        } else {
            outcome
                .unmatched
                .push((name.clone(), unknown_database(&server.name, name, &all)));
        }
    }
    if selection.selected.is_empty() && selection.missing.is_empty() {
        ui.warn(&format!(
            "server '{}': no database matches the selection",
            server.name
        ));
    }
    // The last dump of each database sizes its progress bar.
    let previous = previous_dumps(storages, &server.name);
    // `jobs` workers take the databases in turn; each database's copies are landed and
    // recorded by its worker as soon as its dump ends (index updates are serialized by the
    // storage's lock), and the outcome lists them in selection order.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done: std::sync::Mutex<Vec<(usize, BackupOutcome)>> = Default::default();
    let workers = (jobs as usize).min(selection.selected.len());
    let estimates: Vec<u64> = selection
        .selected
        .iter()
        .map(|db| dump_estimate(db, previous.get(&db.name)))
        .collect();
    let order = take_order(&estimates, workers);
    if workers > 1 {
        ui.debug(&format!(
            "server '{}': {workers} databases at once, {} compressor thread(s) each",
            server.name,
            compression.effective_threads()
        ));
    }
    let work = || loop {
        let k = next.fetch_add(1, Ordering::SeqCst);
        let Some((i, db)) = order
            .get(k)
            .and_then(|&i| Some((i, selection.selected.get(i)?)))
        else {
            break;
        };
        let mut mine = BackupOutcome::default();
        if cancel.load(Ordering::Relaxed) {
            mine.interrupted = true;
        } else {
            let attempt = Attempt {
                collation: db.collation.clone(),
                data_bytes: db.data_bytes,
                bar_estimate: estimates[i],
                position: (k + 1, selection.selected.len()),
                ..attempt_for(&db.name)
            };
            backup_database(
                &ctx,
                &attempt,
                db.estimated_bytes,
                storages,
                throttle,
                ui,
                cancel,
                &mut mine,
            );
        }
        done.lock().expect("no worker panics").push((i, mine));
    };
    if workers <= 1 {
        work();
    } else {
        // One worker runs on this thread, the others on as many threads as start: a thread
        // limit makes the run slower, never a panic.
        std::thread::scope(|s| {
            for started in 1..workers {
                if let Err(e) = crate::threads::spawn_scoped(s, "backup-worker", work) {
                    ui.warn(&format!(
                        "server '{}': {started} of {workers} databases at once: {e}",
                        server.name
                    ));
                    break;
                }
            }
            work();
        });
    }
    let mut done = done.into_inner().expect("no worker panics");
    done.sort_by_key(|(i, _)| *i);
    for (_, mine) in done {
        outcome.records.extend(mine.records);
        outcome.errors.extend(mine.errors);
        outcome.interrupted |= mine.interrupted;
    }
    // The server's accounts, last: in runs of the whole server only (not `--db X`).
    if server.accounts && req.databases.is_empty() && !cancel.load(Ordering::Relaxed) {
        let attempt = Attempt {
            bar_estimate: previous.get(ACCOUNTS).map_or(0, |p| p.0),
            ..attempt_for(ACCOUNTS)
        };
        if ctx.dump_tool.flavor != mysql::Flavor::MariaDb {
            let msg = format!(
                "server '{}': accounts: true needs MariaDB's dump tool (--system=users); {} is not one",
                server.name,
                ctx.dump_tool.program.display()
            );
            ui.error(&msg);
            record_failed_everywhere(&attempt, storages, &msg, ui, outcome);
        } else if all.iter().any(|d| d.name == ACCOUNTS) {
            let msg = format!(
                "server '{}': a database is named '{ACCOUNTS}', the name sqlguard gives the accounts backup; the accounts were not backed up (rename the database, or set accounts: false)",
                server.name
            );
            ui.error(&msg);
            record_failed_everywhere(&attempt, storages, &msg, ui, outcome);
        } else {
            backup_database(&ctx, &attempt, 0, storages, throttle, ui, cancel, outcome);
        }
    }
}

/// The name under which a server's accounts (users, roles, grants) are backed up, listed and
/// restored. A `*` starts no name sqlguard itself discovers from a server's databases in
/// practice; a real database so named is refused loudly rather than mixed with it.
pub const ACCOUNTS: &str = "*accounts";

/// Records `attempt` as failed with `error` in every storage's index (a broken storage's own
/// fault is beside the point: the attempt failed before any copy could be written).
fn record_failed_everywhere(
    attempt: &Attempt,
    storages: &[Target],
    error: &str,
    ui: &Ui,
    outcome: &mut BackupOutcome,
) {
    for t in storages {
        let record = attempt.record(t.name(), Status::Failed, Some(error.to_string()));
        save_failure(t, storages, record, ui, outcome);
    }
}

/// Records a copy that did not land (a failure) in its storage's index. When that storage
/// cannot take it (it is unreachable, or it is the one that failed), the failure is recorded in
/// the indexes of the run's other storages instead, so that `list` and the metrics still show
/// it; when it can be recorded nowhere, the run says so: the index was not changed.
fn save_failure(
    target: &Target,
    all: &[Target],
    record: BackupRecord,
    ui: &Ui,
    outcome: &mut BackupOutcome,
) {
    debug_assert_eq!(record.status, Status::Failed);
    let own = match &target.broken {
        Some(why) => Err(why.clone()),
        None => IndexStore::new(target.storage.as_ref(), &record.server)
            .upsert(std::slice::from_ref(&record))
            .map_err(|e| e.to_string()),
    };
    if let Err(e) = own {
        let mut witnessed = false;
        for other in all
            .iter()
            .filter(|o| o.name() != target.name() && o.broken.is_none())
        {
            let witness = IndexStore::new(other.storage.as_ref(), &record.server);
            match witness.upsert(std::slice::from_ref(&record)) {
                Ok(_) => witnessed = true,
                Err(e) => ui.debug(&format!(
                    "could not record the failure on '{}' either: {e}",
                    other.name()
                )),
            }
        }
        if target.broken.is_none() || !witnessed {
            let msg = format!(
                "the failure of backup {} of '{}' on storage '{}' could not be recorded in its index ({e}){}",
                record.id,
                record.database,
                target.name(),
                if witnessed {
                    "; it is recorded in the other storages' indexes"
                } else {
                    "; no index was changed"
                }
            );
            ui.error(&msg);
            outcome.errors.push(msg);
        }
    }
    outcome.records.push(record);
}

/// Lands a copy whose dump was good: its manifest, then the object (commit), then its index
/// record. A step that fails undoes the ones before it, so that what the run leaves is either
/// recorded or gone: a manifest whose object never came is deleted, and an object this run
/// committed but could not record is removed again (it is provably this run's own: nothing
/// else can hold its fresh id). An index update can fail after it began writing records (its
/// last step, the summary, failing: `IndexError::Incomplete`): the index is read again then,
/// and an object it names, or may name when it cannot be read, is never removed. A kill between the steps leaves a
/// manifest and an object that no index owns: `prune --dry-run` reports them and `index
/// rebuild` adopts them.
///
/// Returns a warning when the record landed although the update reported a failure. Fails
/// with the reason, after undoing.
pub(crate) fn land(
    storage: &dyn Storage,
    writer: Box<dyn crate::storage::ObjectWriter>,
    record: &BackupRecord,
    inventory: Option<&crate::inventory::Inventory>,
) -> Result<Option<String>, String> {
    let store = IndexStore::new(storage, &record.server);
    if let Err(e) = store.write_manifest_with(record, inventory) {
        writer.abort();
        // A write can fail after it landed (its answer lost, or an error sent after the
        // server stored it): the manifest would then claim a success with no object. Its key
        // holds this run's fresh id, so it is this run's own to remove.
        if let Some(m) = record.manifest_key.as_deref() {
            let _ = storage.delete(m);
        }
        return Err(format!("writing its manifest: {e}"));
    }
    let manifest = record.manifest_key.as_deref().unwrap_or_default();
    if let Err(e) = writer.commit() {
        // A commit can fail after the object landed (a lost answer, the directory's sync):
        // then the manifest stays with it, so that `index rebuild` can adopt the pair.
        let landed = storage
            .stat(record.key.as_deref().unwrap_or_default())
            .map_or(true, |m| m.is_some());
        if landed {
            return Err(format!(
                "{e}; the object may have landed all the same: it is kept with its manifest (`sqlguard prune --dry-run` reports them, `sqlguard index rebuild` adopts them)"
            ));
        }
        let _ = storage.delete(manifest);
        return Err(e.to_string());
    }
    use crate::index::IndexError;
    // Whether the record is in the index after an update that failed: unknown when the index
    // cannot be read, or when a remote write's answer was lost (it may land after this read).
    let (e, landed) = match store.upsert(std::slice::from_ref(record)) {
        Ok(()) => return Ok(None),
        Err(IndexError::Incomplete(inner)) => {
            let unsure = matches!(&*inner, IndexError::Storage(s) if s.may_have_landed());
            let landed = match store.holds(record) {
                Ok(true) => Ok(true),
                Ok(false) if unsure => {
                    Err("the index write's answer was lost, so the record may still land".into())
                }
                Ok(false) => Ok(false),
                Err(r) => Err(format!("the index cannot be read again: {r}")),
            };
            (IndexError::Incomplete(inner), landed)
        }
        // Failed before it wrote a record: nothing landed.
        Err(e) => (e, Ok(false)),
    };
    match landed {
        Ok(true) => Ok(Some(format!(
            "the index update ended with an error after writing the record ({e}): the record stands, and the next run that reads the index brings its summary up to date"
        ))),
        Ok(false) => {
            let key = record.key.as_deref().unwrap_or_default();
            let removed = storage.delete(key).and_then(|()| storage.delete(manifest));
            Err(format!(
                "recording it in the index failed ({e}); {}",
                match removed {
                    Ok(()) => "the object this run stored was removed again".to_string(),
                    Err(d) => format!("removing the unrecorded object failed too ({d}): `sqlguard index rebuild` adopts it"),
                }
            ))
        }
        Err(why) => Err(format!(
            "recording it in the index failed ({e}), and whether the record landed is unknown ({why}): the object and its manifest are kept; `sqlguard prune --dry-run` reports them if no record names them, and `sqlguard index rebuild` adopts them"
        )),
    }
}

/// How the dump tool's run ended, as the pipeline and the reaper saw it.
#[derive(Debug)]
pub struct DumpFacts {
    /// The dump tool's program, for messages.
    pub tool: String,
    pub cancelled: bool,
    /// Why the stream stopped early (read, compression, every storage failing).
    pub stream_error: Option<String>,
    /// The tool's exit status, or why it could not be read.
    pub exit: Result<std::process::ExitStatus, String>,
    /// The tool's stderr (secrets redacted).
    pub stderr: String,
    /// Whether the output ended with the completion trailer.
    pub trailer: bool,
    pub raw_bytes: u64,
}

/// Whether the dump as a whole is good: only when nothing interrupted it, the stream carried
/// every byte, the tool exited 0, and its output ended with the completion trailer (a dump cut
/// short with exit 0 has no trailer). Pure.
///
/// Fails with the reason, in words.
pub fn verdict(f: &DumpFacts) -> Result<(), String> {
    if f.cancelled {
        return Err("interrupted by a signal".into());
    }
    if let Some(e) = &f.stream_error {
        return Err(e.clone());
    }
    match &f.exit {
        Err(e) => Err(format!("waiting for the dump tool: {e}")),
        Ok(st) if !st.success() => Err(format!(
            "{} failed ({}){}",
            f.tool,
            crate::process::describe_exit(st),
            if f.stderr.is_empty() {
                String::new()
            } else {
                format!(": {}", f.stderr)
            }
        )),
        Ok(_) if !f.trailer => Err(format!(
            "the dump ended without its completion trailer after {} bytes: it was cut short{}",
            f.raw_bytes,
            if f.stderr.is_empty() {
                String::new()
            } else {
                format!(" ({})", f.stderr)
            }
        )),
        Ok(_) => Ok(()),
    }
}

/// Runs the dump tool of `attempt` into `sinks`; returns the stream and the facts of the run,
/// or the sinks back with the reason when the tool cannot even start.
#[allow(clippy::too_many_arguments)]
fn run_dump(
    ctx: &ServerContext,
    attempt: &Attempt,
    sinks: Vec<Sink>,
    throttle: pipeline::Throttle,
    ui: &Ui,
    cancel: &Arc<AtomicBool>,
) -> Result<(pipeline::StreamOutcome, DumpFacts), (Vec<Sink>, String)> {
    let server = ctx.server;
    let db = &attempt.database;
    let mut args = vec![ctx.defaults.arg()];
    args.extend(mysql::tls_args(ctx.dump_tool.flavor, server));
    if db == ACCOUNTS {
        // Users, roles and grants as CREATE USER IF NOT EXISTS / GRANT statements (MariaDB's
        // dump tool; `restore` replays them), and no database.
        args.extend(mysql::dump_flags(&ctx.dump_tool, &ctx.info, false));
        args.push("--system=users".into());
        args.push("--insert-ignore".into());
    } else {
        args.extend(mysql::dump_flags(
            &ctx.dump_tool,
            &ctx.info,
            ctx.coordinates,
        ));
        args.extend(server.dump_options.iter().cloned());
        args.push("--".to_string());
        args.push(db.clone());
    }
    ui.debug(&format!(
        "running {} {}",
        ctx.dump_tool.program.display(),
        args.join(" ")
    ));
    let spawned = crate::process::command(&ctx.dump_tool.program)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return Err((
                sinks,
                format!(
                    "cannot run {}: {}",
                    ctx.dump_tool.program.display(),
                    crate::threads::spawn_error(&e)
                ),
            ))
        }
    };
    let stderr = match mysql::drain_stderr(&mut child) {
        Ok(h) => h,
        Err(e) => return Err((sinks, e.to_string())),
    };
    let stdout = child.stdout.take().expect("stdout is piped");
    let stop = Arc::new(AtomicBool::new(false));
    let reaper = match reap(child, Arc::clone(&stop), Arc::clone(cancel)) {
        Ok(h) => h,
        Err(e) => return Err((sinks, e.to_string())),
    };
    let (n, of) = attempt.position;
    let label = if of > 1 {
        format!("{}/{db} ({n}/{of})", server.name)
    } else {
        format!("{}/{db}", server.name)
    };
    let bar = ui.bytes_bar(&label, attempt.bar_estimate);
    let streamed = pipeline::stream(
        pipeline::batched(stdout),
        &attempt.compression,
        attempt.btype.encryption.as_ref(),
        sinks,
        &mut |raw, stored| {
            bar.set_position(raw);
            bar.set_message(format!("→ {} stored", human_bytes(stored)));
        },
        cancel,
        throttle,
    );
    bar.finish_and_clear();
    if streamed.error.is_some() || streamed.cancelled {
        // Ends the tool, and with it the reading thread.
        stop.store(true, Ordering::Relaxed);
    }
    let exit = reaper
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("reaper panicked")))
        .map_err(|e| e.to_string());
    let stderr_text = mysql::stderr_of(stderr, server);
    let facts = DumpFacts {
        tool: ctx.dump_tool.program.display().to_string(),
        cancelled: streamed.cancelled || cancel.load(Ordering::Relaxed),
        stream_error: streamed.error.clone(),
        exit,
        stderr: stderr_text,
        trailer: mysql::has_completion_trailer(&streamed.tail),
        raw_bytes: streamed.raw_bytes,
    };
    Ok((streamed, facts))
}

/// One database: open a writer per storage, run the dump, judge it, land each copy.
#[allow(clippy::too_many_arguments)]
fn backup_database(
    ctx: &ServerContext,
    attempt: &Attempt,
    estimate: u64,
    storages: &[Target],
    throttle: pipeline::Throttle,
    ui: &Ui,
    cancel: &Arc<AtomicBool>,
    outcome: &mut BackupOutcome,
) {
    let server = ctx.server;
    let db = &attempt.database;
    let algo = attempt.compression.algorithm;
    let key = layout::object_key(
        &server.name,
        db,
        &attempt.btype.name,
        &attempt.id,
        algo,
        attempt.btype.encryption.is_some(),
    );
    let manifest_key = layout::manifest_key(&server.name, db, &attempt.btype.name, &attempt.id);
    ui.info(&format!(
        "{}/{db}: dumping ({}{}) to {}",
        server.name,
        attempt.btype.name,
        match &attempt.btype.encryption {
            Some(r) => format!(
                ", encrypted to {} age recipient{}",
                r.as_strings().len(),
                if r.as_strings().len() == 1 { "" } else { "s" }
            ),
            None => String::new(),
        },
        attempt.btype.storages.join(", ")
    ));

    // A writer on every storage (by its place in `storages`); one that cannot open fails alone.
    let mut sinks = Vec::new();
    let mut lane_target = Vec::new();
    let mut failed: Vec<(usize, String)> = Vec::new();
    for (i, t) in storages.iter().enumerate() {
        if let Some(why) = &t.broken {
            failed.push((i, why.clone()));
            continue;
        }
        match t
            .storage
            .put_stream(&key, (estimate > 0).then_some(estimate))
        {
            Ok(writer) => {
                lane_target.push(i);
                sinks.push(Sink {
                    storage: t.name().to_string(),
                    writer,
                })
            }
            Err(e) => failed.push((i, e.to_string())),
        }
    }
    if sinks.is_empty() {
        record_unopened(attempt, storages, failed, ui, outcome);
        return;
    }

    let (streamed, facts) = match run_dump(ctx, attempt, sinks, throttle, ui, cancel) {
        Ok(r) => r,
        Err((sinks, msg)) => {
            for s in sinks {
                s.writer.abort();
            }
            ui.error(&format!("{}/{db}: {msg}", server.name));
            record_failed_everywhere(attempt, storages, &msg, ui, outcome);
            return;
        }
    };
    if attempt.bar_estimate > 0 {
        ui.debug(&format!(
            "{}/{db}: dumped {} raw, estimated {} ({:+.0}%)",
            server.name,
            streamed.raw_bytes,
            attempt.bar_estimate,
            (attempt.bar_estimate as f64 / streamed.raw_bytes.max(1) as f64 - 1.0) * 100.0
        ));
    }
    let verdict = verdict(&facts);
    if facts.cancelled {
        outcome.interrupted = true;
    }
    if verdict.is_ok() && !facts.stderr.is_empty() {
        ui.warn(&format!(
            "{}/{db}: dump tool said: {}",
            server.name, facts.stderr
        ));
    }

    // A dump of MyISAM/Aria/… tables is not a consistent snapshot: say so, and record it.
    let non_transactional: Vec<String> = streamed
        .inventory
        .tables
        .iter()
        .filter(|t| {
            t.engine
                .as_deref()
                .is_some_and(|e| !crate::inventory::is_transactional(e))
        })
        .map(|t| format!("{} ({})", t.name, t.engine.as_deref().unwrap_or("")))
        .collect();
    if verdict.is_ok() && !non_transactional.is_empty() {
        ui.warn(&format!(
            "{}/{db}: not a consistent snapshot: {} may have changed during the dump (a non-transactional engine); recorded as consistent: false",
            server.name,
            non_transactional.join(", ")
        ));
    }
    let file_created_at = streamed
        .binlog
        .as_ref()
        .and_then(|b| ctx.file_created_at(&b.file, ui));
    // Lanes come back in the order the sinks went in.
    for (lane, &i) in streamed.lanes.into_iter().zip(&lane_target) {
        let target = &storages[i];
        let mut record = attempt.record(target.name(), Status::Success, None);
        record.raw_bytes = streamed.raw_bytes;
        record.binlog = streamed.binlog.clone().map(|mut b| {
            b.server_id = ctx.server_id;
            b.file_created_at = file_created_at;
            Box::new(b)
        });
        record.consistent = Some(non_transactional.is_empty());
        record.server_version = Some(ctx.info.version_string.clone());
        record.dump_tool = Some(ctx.dump_tool.program.display().to_string());
        record.dump_tool_version = Some(ctx.dump_tool.banner.clone());
        let landed = match (lane.result, &verdict) {
            (Ok(writer), Ok(())) => {
                record.compressed_bytes = streamed.compressed_bytes;
                record.sha256 = Some(streamed.sha256.clone());
                record.key = Some(key.clone());
                record.manifest_key = Some(manifest_key.clone());
                land(
                    target.storage.as_ref(),
                    writer,
                    &record,
                    Some(&streamed.inventory),
                )
            }
            (Ok(writer), Err(e)) => {
                writer.abort();
                Err(e.clone())
            }
            (Err(e), _) => Err(format!("writing to storage '{}': {e}", lane.storage)),
        };
        match landed {
            Ok(warning) => {
                if let Some(w) = warning {
                    ui.warn(&format!(
                        "{}/{db}: storage '{}': {w}",
                        server.name,
                        target.name()
                    ));
                }
                ui.info(&format!(
                    "{}/{db}: stored on '{}': {} ({} raw) in {:.1}s",
                    server.name,
                    target.name(),
                    human_bytes(record.compressed_bytes),
                    human_bytes(record.raw_bytes),
                    record.duration_seconds
                ));
                outcome.records.push(record);
            }
            Err(e) => {
                // A signal while the copy was being stored interrupted the run (exit 130),
                // as one during the dump does.
                if cancel.load(Ordering::Relaxed) {
                    outcome.interrupted = true;
                }
                ui.error(&format!(
                    "{}/{db}: backup to storage '{}' failed: {e}",
                    server.name,
                    target.name(),
                ));
                record.status = Status::Failed;
                record.error = Some(e);
                record.compressed_bytes = 0;
                record.sha256 = None;
                record.key = None;
                record.manifest_key = None;
                save_failure(target, storages, record, ui, outcome);
            }
        }
    }
    record_unopened(attempt, storages, failed, ui, outcome);
}

/// Records a failed copy for each storage that could not even take the stream (broken in its
/// preflight check, or refusing to open a writer).
fn record_unopened(
    attempt: &Attempt,
    storages: &[Target],
    failed: Vec<(usize, String)>,
    ui: &Ui,
    outcome: &mut BackupOutcome,
) {
    for (i, err) in failed {
        let target = &storages[i];
        ui.error(&format!(
            "{}/{}: storage '{}' failed: {err}",
            attempt.server,
            attempt.database,
            target.name()
        ));
        let record = attempt.record(target.name(), Status::Failed, Some(err));
        save_failure(target, storages, record, ui, outcome);
    }
}

/// Waits for the dump tool on its own thread, killing it as soon as `stop` or `cancel` is set, so
/// that a signal ends a dump that is stalled (waiting on a lock, say) without waiting for output.
/// It sleeps on the child's pidfd, so that it sees the exit at once (a small database's dump takes
/// 10 ms; a fixed poll interval cost 50 ms per database) and looks at the flags every 50 ms.
///
/// When the thread cannot start, the tool is killed and the error says why.
fn reap(
    mut child: Child,
    stop: Arc<AtomicBool>,
    cancel: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<std::io::Result<std::process::ExitStatus>>> {
    // The child goes to the thread once it runs, so that it is still here to kill otherwise.
    let (give, take) = std::sync::mpsc::sync_channel::<Child>(1);
    let started = crate::threads::spawn("dump-reaper", move || {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let Ok(mut child) = take.recv() else {
            return Err(std::io::Error::other("no child to wait for"));
        };
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_child(&child),
            rustix::process::PidfdFlags::empty(),
        )
        .ok();
        let tick = Timespec {
            tv_sec: 0,
            tv_nsec: 50_000_000,
        };
        loop {
            if stop.load(Ordering::Relaxed) || cancel.load(Ordering::Relaxed) {
                let _ = child.kill();
                return child.wait();
            }
            match child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) => match &pidfd {
                    Some(fd) => {
                        let _ = poll(&mut [PollFd::new(fd, PollFlags::IN)], Some(&tick));
                    }
                    None => std::thread::sleep(std::time::Duration::from_millis(5)),
                },
                Err(e) => return Err(e),
            }
        }
    });
    match started {
        Ok(h) => {
            let _ = give.send(child);
            Ok(h)
        }
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    /// A record and its stored object on `s`, ready to land.
    fn landing(
        s: &crate::storage::memory::MemoryStorage,
    ) -> (
        crate::index::BackupRecord,
        Box<dyn crate::storage::ObjectWriter>,
    ) {
        use crate::storage::Storage;
        let at = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 28, 2, 30, 0).unwrap();
        let r = crate::index::BackupRecord::sample(
            "20261128T023000Z_0000000a",
            "shop",
            "daily",
            "mem",
            crate::index::Status::Success,
            at,
        );
        let mut w = s.put_stream(r.key.as_deref().unwrap(), None).unwrap();
        std::io::Write::write_all(&mut w, b"dump").unwrap();
        (r, w)
    }

    #[test]
    fn an_index_update_failing_after_its_record_landed_keeps_the_object() {
        use crate::storage::Storage;
        let s = crate::storage::memory::MemoryStorage::new("mem");
        let store = crate::index::IndexStore::new(&s, "main");
        // The summary is written twice (dirty, then clean): the second write fails.
        s.fail_put_bytes("summary", 1);
        let (r, w) = landing(&s);
        let warning = super::land(&s, w, &r, None).unwrap();
        assert!(warning.is_some_and(|w| w.contains("record stands")));
        assert!(s.get_bytes(r.key.as_deref().unwrap()).unwrap().is_some());
        assert_eq!(store.load().unwrap().backups.len(), 1);

        // A month file that cannot be written: nothing recorded, the object goes again.
        let s = crate::storage::memory::MemoryStorage::new("mem");
        s.fail_put_bytes("/db/", 0);
        let (r, w) = landing(&s);
        let e = super::land(&s, w, &r, None).unwrap_err();
        assert!(e.contains("removed again"), "{e}");
        assert!(s.get_bytes(r.key.as_deref().unwrap()).unwrap().is_none());
        let store = crate::index::IndexStore::new(&s, "main");
        assert!(store.load().unwrap().backups.is_empty());

        // A commit whose answer was lost after the object landed: object and manifest stay.
        let s = crate::storage::memory::MemoryStorage::new("mem");
        s.lose_commit_answer();
        let (r, w) = landing(&s);
        let e = super::land(&s, w, &r, None).unwrap_err();
        assert!(e.contains("kept with its manifest"), "{e}");
        for k in [&r.key, &r.manifest_key] {
            assert!(s.get_bytes(k.as_deref().unwrap()).unwrap().is_some());
        }

        // A manifest write whose answer was lost after it landed: no manifest claims a
        // success that has no object (a hostile review's, on a real S3 server's error).
        let s = crate::storage::memory::MemoryStorage::new("mem");
        s.lose_put_bytes_answer("manifest", 0);
        let (r, w) = landing(&s);
        let e = super::land(&s, w, &r, None).unwrap_err();
        assert!(e.contains("writing its manifest"), "{e}");
        assert!(s.keys().is_empty(), "{:?}", s.keys());

        // A remote month write whose answer was lost may still land: the object stays.
        let s = crate::storage::memory::MemoryStorage::new("mem");
        s.lose_put_bytes_answer("/db/", 0);
        let (r, w) = landing(&s);
        let e = super::land(&s, w, &r, None).unwrap_err();
        assert!(
            e.contains("may still land") && e.contains("are kept"),
            "{e}"
        );
        assert!(s.get_bytes(r.key.as_deref().unwrap()).unwrap().is_some());
    }

    #[test]
    fn several_workers_take_the_largest_databases_first() {
        let sizes = [10, 300, 0, 300, 50];
        assert_eq!(super::take_order(&sizes, 1), vec![0, 1, 2, 3, 4]);
        assert_eq!(super::take_order(&sizes, 2), vec![1, 3, 4, 0, 2]);
        assert_eq!(super::take_order(&[], 4), Vec::<usize>::new());
    }

    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    use super::{verdict, DumpFacts};

    fn facts() -> DumpFacts {
        DumpFacts {
            tool: "mariadb-dump".into(),
            cancelled: false,
            stream_error: None,
            exit: Ok(ExitStatus::from_raw(0)),
            stderr: String::new(),
            trailer: true,
            raw_bytes: 1234,
        }
    }

    /// The verdict's table of cases, without a server: only a whole dump is good.
    #[test]
    fn only_a_whole_dump_is_good() {
        assert_eq!(verdict(&facts()), Ok(()));
        let cases: Vec<(DumpFacts, &str)> = vec![
            (
                DumpFacts {
                    cancelled: true,
                    ..facts()
                },
                "interrupted by a signal",
            ),
            (
                DumpFacts {
                    stream_error: Some("every storage failed".into()),
                    ..facts()
                },
                "every storage failed",
            ),
            (
                DumpFacts {
                    exit: Ok(ExitStatus::from_raw(2 << 8)),
                    stderr: "Got error: 1045: Access denied".into(),
                    ..facts()
                },
                "mariadb-dump failed (exit code 2): Got error: 1045: Access denied",
            ),
            (
                DumpFacts {
                    exit: Ok(ExitStatus::from_raw(9)),
                    ..facts()
                },
                "mariadb-dump failed (killed by signal 9)",
            ),
            (
                DumpFacts {
                    trailer: false,
                    ..facts()
                },
                "the dump ended without its completion trailer after 1234 bytes: it was cut short",
            ),
            (
                DumpFacts {
                    exit: Err("no child".into()),
                    ..facts()
                },
                "waiting for the dump tool: no child",
            ),
            (
                // A signal wins over everything it caused.
                DumpFacts {
                    cancelled: true,
                    exit: Ok(ExitStatus::from_raw(15)),
                    trailer: false,
                    ..facts()
                },
                "interrupted by a signal",
            ),
        ];
        for (f, want) in cases {
            assert_eq!(verdict(&f), Err(want.to_string()), "{f:?}");
        }
    }
}
