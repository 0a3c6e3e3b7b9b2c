//! One backup run: for each selected server and database, run the dump tool, stream its output
//! through the [`crate::pipeline`] into every storage of the backup type, then commit, write the
//! manifest and record the outcome in each storage's index.
//!
//! A copy is recorded as a success only when the dump tool exited 0, its output ended with the
//! completion trailer, and the storage committed every byte. Anything else is recorded as failed
//! with the reason, and the storage writer is aborted so that no partial object is left behind.

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
use crate::storage::{self, Storage};
use crate::ui::{human_bytes, Ui};

/// What to back up.
#[derive(Debug, Clone)]
pub struct BackupRequest {
    pub backup_type: String,
    /// Only these servers; empty means all.
    pub servers: Vec<String>,
    /// Only these databases; empty means the servers' include/exclude selection.
    pub databases: Vec<String>,
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
    storage: Box<dyn Storage>,
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
    info: ServerInfo,
}

/// Template of a record; each storage gets a copy with its own status.
struct Attempt<'a> {
    id: String,
    server: &'a str,
    database: String,
    btype: &'a BackupTypeSettings,
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
            compression: self.btype.compression.algorithm,
            compression_level: self.btype.compression.level,
            key: None,
            manifest_key: None,
            server_version: None,
            dump_tool: None,
            dump_tool_version: None,
            sqlguard_version: crate::VERSION.to_string(),
            error,
            verification: None,
        }
    }
}

/// Runs one backup.
///
/// Fails only for a request that cannot start (unknown type or server); every other failure is
/// recorded in the outcome and the indexes. `cancel` is set by the signal handler.
/// Checks that the request names a configured type and servers; returns the type.
///
/// Fails with [`Unknown`] (exit code 2).
pub fn validate<'a>(
    settings: &'a Settings,
    req: &BackupRequest,
) -> Result<&'a BackupTypeSettings, Unknown> {
    let btype = settings.backup_type(&req.backup_type)?;
    for s in &req.servers {
        settings.server(s)?;
    }
    Ok(btype)
}

pub fn run(
    settings: &Settings,
    req: &BackupRequest,
    ui: &Ui,
    cancel: &Arc<AtomicBool>,
) -> Result<BackupOutcome, Unknown> {
    let btype = validate(settings, req)?;
    let sctx = storage::StorageContext::new(settings, ui);
    let mut outcome = BackupOutcome::default();
    // Open and check every storage first: a storage that is down, or whose bucket or
    // credentials are wrong, fails fast and alone, before any dump runs.
    let mut storages: Vec<Target> = Vec::new();
    for st in btype
        .storages
        .iter()
        .filter_map(|n| settings.storage(n).ok())
    {
        match storage::open(st, &sctx) {
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
        .servers
        .iter()
        .filter(|s| req.servers.is_empty() || req.servers.contains(&s.name))
    {
        if cancel.load(Ordering::Relaxed) {
            outcome.interrupted = true;
            break;
        }
        backup_server(server, btype, req, &storages, ui, cancel, &mut outcome);
    }
    if outcome.records.is_empty() && !outcome.interrupted {
        let msg = "nothing was backed up: no database matched the selection (check databases.include/exclude and --db)".to_string();
        ui.error(&msg);
        outcome.errors.push(msg);
    }
    Ok(outcome)
}

/// Writes the defaults file, finds the tools, connects, and lists the databases.
fn prepare_server<'a>(
    server: &'a ServerSettings,
    ui: &Ui,
) -> Result<(ServerContext<'a>, Vec<mysql::Database>), mysql::MysqlError> {
    let defaults = DefaultsFile::create(server)?;
    let dump_tool = mysql::detect_tool(
        &server.name,
        server.dump_tool.as_deref(),
        mysql::DUMP_TOOLS,
        "dump_tool",
    )?;
    let client = mysql::detect_tool(
        &server.name,
        server.client_tool.as_deref(),
        mysql::CLIENT_TOOLS,
        "client_tool",
    )?;
    let info = mysql::server_info(server, &client, &defaults)?;
    ui.debug(&format!(
        "server '{}': {} ({:?}); dump tool {} ({})",
        server.name,
        info.version_string,
        info.flavor,
        dump_tool.program.display(),
        dump_tool.banner
    ));
    let all = mysql::list_databases(server, &client, &defaults)?;
    Ok((
        ServerContext {
            server,
            defaults,
            dump_tool,
            info,
        },
        all,
    ))
}

fn backup_server(
    server: &ServerSettings,
    btype: &BackupTypeSettings,
    req: &BackupRequest,
    storages: &[Target],
    ui: &Ui,
    cancel: &Arc<AtomicBool>,
    outcome: &mut BackupOutcome,
) {
    let attempt_for = |database: &str| Attempt {
        id: layout::new_id(Utc::now()),
        server: &server.name,
        database: database.to_string(),
        btype,
        started_at: Utc::now(),
        started: Instant::now(),
    };
    // Connecting and discovery; a failure fails every database this run was asked for.
    let (ctx, all) = match prepare_server(server, ui) {
        Ok(v) => v,
        Err(e) => {
            let mut names: Vec<String> = if req.databases.is_empty() {
                server
                    .include
                    .iter()
                    .filter(|p| !p.contains(['*', '?', '[']))
                    .cloned()
                    .collect()
            } else {
                req.databases.clone()
            };
            if names.is_empty() {
                names.push("*".to_string());
            }
            ui.error(&e.to_string());
            for name in names {
                let attempt = attempt_for(&name);
                record_everywhere(
                    &attempt,
                    storages,
                    Status::Failed,
                    Some(e.to_string()),
                    ui,
                    outcome,
                );
            }
            return;
        }
    };
    let selection = mysql::select_databases(&all, server, &req.databases);
    let patterned: Vec<String> = selection
        .excluded
        .iter()
        .filter(|e| {
            req.databases.is_empty() && !mysql::SYSTEM_DATABASES.contains(&e.database.as_str())
        })
        .map(|e| format!("{} ({})", e.database, e.reason))
        .collect();
    if !patterned.is_empty() {
        ui.info(&format!(
            "server '{}': not backed up: {}",
            server.name,
            patterned.join(", ")
        ));
    }
    outcome
        .excluded
        .extend(selection.excluded.iter().map(|e| ExcludedDatabase {
            server: server.name.clone(),
            database: e.database.clone(),
            reason: e.reason.clone(),
        }));
    for name in &selection.missing {
        let attempt = attempt_for(name);
        let msg = format!(
            "server '{}': database '{name}' does not exist (check the name, or databases.include)",
            server.name
        );
        ui.error(&msg);
        record_everywhere(&attempt, storages, Status::Failed, Some(msg), ui, outcome);
    }
    if selection.selected.is_empty() && selection.missing.is_empty() {
        ui.warn(&format!(
            "server '{}': no database matches the selection",
            server.name
        ));
    }
    for db in &selection.selected {
        if cancel.load(Ordering::Relaxed) {
            outcome.interrupted = true;
            return;
        }
        let attempt = attempt_for(&db.name);
        backup_database(
            &ctx,
            &attempt,
            db.estimated_bytes,
            storages,
            ui,
            cancel,
            outcome,
        );
    }
}

/// Records the same status for `attempt` in every storage's index.
fn record_everywhere(
    attempt: &Attempt,
    storages: &[Target],
    status: Status,
    error: Option<String>,
    ui: &Ui,
    outcome: &mut BackupOutcome,
) {
    for t in storages {
        let error = match (&t.broken, &error) {
            (Some(b), None) => Some(b.clone()),
            _ => error.clone(),
        };
        let status = if t.broken.is_some() {
            Status::Failed
        } else {
            status
        };
        save(
            t,
            storages,
            attempt.record(t.name(), status, error),
            ui,
            outcome,
        );
    }
}

/// Writes the manifest (successes) and the index record of one copy on its own storage. When a
/// failure cannot be recorded there (the storage is unreachable), it is recorded in the indexes
/// of the run's other storages instead, so that `list` and the metrics still show it.
fn save(
    target: &Target,
    all: &[Target],
    record: BackupRecord,
    ui: &Ui,
    outcome: &mut BackupOutcome,
) {
    let own = match &target.broken {
        Some(why) => Err(why.clone()),
        None => {
            let store = IndexStore::new(target.storage.as_ref(), &record.server);
            store
                .write_manifest(&record)
                .and_then(|()| store.update(|i| i.upsert(record.clone())))
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    };
    if let Err(e) = own {
        if target.broken.is_none() {
            let msg = format!(
                "backup {} of '{}' could not be recorded on storage '{}': {e}",
                record.id,
                record.database,
                target.name()
            );
            ui.error(&msg);
            outcome.errors.push(msg);
        }
        if record.status == Status::Failed {
            for other in all
                .iter()
                .filter(|o| o.name() != target.name() && o.broken.is_none())
            {
                let witness = IndexStore::new(other.storage.as_ref(), &record.server);
                if let Err(e) = witness.update(|i| i.upsert(record.clone())) {
                    ui.debug(&format!(
                        "could not record the failure on '{}' either: {e}",
                        other.name()
                    ));
                }
            }
        }
    }
    outcome.records.push(record);
}

fn backup_database(
    ctx: &ServerContext,
    attempt: &Attempt,
    estimate: u64,
    storages: &[Target],
    ui: &Ui,
    cancel: &Arc<AtomicBool>,
    outcome: &mut BackupOutcome,
) {
    let server = ctx.server;
    let db = &attempt.database;
    let algo = attempt.btype.compression.algorithm;
    let key = layout::object_key(&server.name, db, &attempt.btype.name, &attempt.id, algo);
    ui.info(&format!(
        "{}/{db}: dumping ({}) to {}",
        server.name,
        attempt.btype.name,
        attempt.btype.storages.join(", ")
    ));

    // Open a writer on every storage; one that cannot open fails alone.
    let mut sinks = Vec::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    for t in storages {
        if let Some(why) = &t.broken {
            failed.push((t.name().to_string(), why.clone()));
            continue;
        }
        match t
            .storage
            .put_stream(&key, (estimate > 0).then_some(estimate))
        {
            Ok(writer) => sinks.push(Sink {
                storage: t.name().to_string(),
                writer,
            }),
            Err(e) => failed.push((t.name().to_string(), e.to_string())),
        }
    }
    if sinks.is_empty() {
        record_unopened(attempt, storages, failed, ui, outcome);
        return;
    }

    let mut args = vec![ctx.defaults.arg()];
    args.extend(mysql::tls_args(ctx.dump_tool.flavor, server));
    args.extend(mysql::dump_flags(&ctx.dump_tool, &ctx.info));
    args.extend(server.dump_options.iter().cloned());
    args.push("--".to_string());
    args.push(db.clone());
    ui.debug(&format!(
        "running {} {}",
        ctx.dump_tool.program.display(),
        args.join(" ")
    ));

    let redact = |s: String| match &server.password {
        Some(p) => p.redact_in(&s),
        None => s,
    };
    let spawned = crate::process::command(&ctx.dump_tool.program)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            for s in sinks {
                s.writer.abort();
            }
            let msg = format!("cannot run {}: {e}", ctx.dump_tool.program.display());
            ui.error(&format!("{}/{db}: {msg}", server.name));
            record_everywhere(attempt, storages, Status::Failed, Some(msg), ui, outcome);
            return;
        }
    };
    let stderr = mysql::drain_stderr(&mut child);
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let stop = Arc::new(AtomicBool::new(false));
    let reaper = reap(child, Arc::clone(&stop), Arc::clone(cancel));
    let bar = ui.bytes_bar(&format!("{}/{db}", server.name), estimate);
    let streamed = pipeline::stream(
        &mut stdout,
        &attempt.btype.compression,
        sinks,
        &mut |n| bar.set_position(n),
        cancel,
    );
    bar.finish_and_clear();
    if streamed.error.is_some() || streamed.cancelled {
        stop.store(true, Ordering::Relaxed);
    }
    drop(stdout);
    let status = reaper
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("reaper panicked")));
    let stderr_text = redact(stderr.and_then(|h| h.join().ok()).unwrap_or_default());
    let cancelled = streamed.cancelled || cancel.load(Ordering::Relaxed);

    // Decide whether the dump as a whole is good.
    let dump_error: Option<String> =
        if cancelled {
            outcome.interrupted = true;
            Some("interrupted by a signal".to_string())
        } else if let Some(e) = &streamed.error {
            Some(e.clone())
        } else {
            match &status {
                Err(e) => Some(format!("waiting for the dump tool: {e}")),
                Ok(st) if !st.success() => Some(format!(
                    "{} failed ({}){}",
                    ctx.dump_tool.program.display(),
                    describe_exit(st),
                    if stderr_text.is_empty() {
                        String::new()
                    } else {
                        format!(": {stderr_text}")
                    }
                )),
                Ok(_) if !mysql::has_completion_trailer(&streamed.tail) => Some(format!(
                "the dump ended without its completion trailer after {} bytes: it was cut short{}",
                streamed.raw_bytes,
                if stderr_text.is_empty() { String::new() } else { format!(" ({stderr_text})") }
            )),
                Ok(_) => None,
            }
        };
    if dump_error.is_none() && !stderr_text.is_empty() {
        ui.warn(&format!(
            "{}/{db}: dump tool said: {stderr_text}",
            server.name
        ));
    }

    let manifest_key = layout::manifest_key(&server.name, db, &attempt.btype.name, &attempt.id);
    for lane in streamed.lanes {
        let target = storages
            .iter()
            .find(|t| t.name() == lane.storage)
            .expect("lane of a known storage");
        let storage = &target.storage;
        let result: Result<(), String> = match (lane.result, &dump_error) {
            (Ok(writer), None) => writer.commit().map_err(|e| e.to_string()),
            (Ok(writer), Some(e)) => {
                writer.abort();
                Err(e.clone())
            }
            (Err(e), _) => Err(format!("writing to storage '{}': {e}", lane.storage)),
        };
        let mut record = match &result {
            Ok(()) => attempt.record(storage.name(), Status::Success, None),
            Err(e) => attempt.record(storage.name(), Status::Failed, Some(e.clone())),
        };
        record.raw_bytes = streamed.raw_bytes;
        record.server_version = Some(ctx.info.version_string.clone());
        record.dump_tool = Some(ctx.dump_tool.program.display().to_string());
        record.dump_tool_version = Some(ctx.dump_tool.banner.clone());
        if result.is_ok() {
            record.compressed_bytes = streamed.compressed_bytes;
            record.sha256 = Some(streamed.sha256.clone());
            record.key = Some(key.clone());
            record.manifest_key = Some(manifest_key.clone());
            ui.info(&format!(
                "{}/{db}: stored on '{}': {} ({} raw) in {:.1}s",
                server.name,
                storage.name(),
                human_bytes(record.compressed_bytes),
                human_bytes(record.raw_bytes),
                record.duration_seconds
            ));
        } else {
            ui.error(&format!(
                "{}/{db}: backup to storage '{}' failed: {}",
                server.name,
                storage.name(),
                record.error.as_deref().unwrap_or("")
            ));
        }
        save(target, storages, record, ui, outcome);
    }
    record_unopened(attempt, storages, failed, ui, outcome);
}

/// Records a failed copy for each storage that could not even take the stream (broken in its
/// preflight check, or refusing to open a writer).
fn record_unopened(
    attempt: &Attempt,
    storages: &[Target],
    failed: Vec<(String, String)>,
    ui: &Ui,
    outcome: &mut BackupOutcome,
) {
    for (name, err) in failed {
        let target = storages
            .iter()
            .find(|t| t.name() == name)
            .expect("known storage");
        ui.error(&format!(
            "{}/{}: storage '{name}' failed: {err}",
            attempt.server, attempt.database
        ));
        let record = attempt.record(&name, Status::Failed, Some(err));
        save(target, storages, record, ui, outcome);
    }
}

/// Waits for the dump tool on its own thread, killing it as soon as `stop` or `cancel` is set, so
/// that a signal ends a dump that is stalled (waiting on a lock, say) without waiting for output.
fn reap(
    mut child: Child,
    stop: Arc<AtomicBool>,
    cancel: Arc<AtomicBool>,
) -> JoinHandle<std::io::Result<std::process::ExitStatus>> {
    std::thread::spawn(move || loop {
        if stop.load(Ordering::Relaxed) || cancel.load(Ordering::Relaxed) {
            let _ = child.kill();
            return child.wait();
        }
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(50)),
            Err(e) => return Err(e),
        }
    })
}

/// "exit code 2" or "killed by signal 9".
fn describe_exit(st: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => st.to_string(),
    }
}
