//! Proving backups: re-read a stored copy, check its SHA-256 and size against the index,
//! decompress it whole, and check the dump's size and completion trailer; optionally restore it
//! into a scratch database. Also the streaming behind `fetch` and `restore`.
//!
//! One pass over the object: every compressed byte is hashed and fed to a push-side decoder
//! whose output is counted, its tail kept for the trailer check, and (for restores) piped into
//! the client. Memory stays at one read buffer plus the decompressor's window.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::Utc;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::compress;
use crate::config::{ServerSettings, Settings};
use crate::index::{BackupRecord, IndexStore, Status, Verification};
use crate::mysql::{self, DefaultsFile};
use crate::pipeline::{CHUNK, TAIL};
use crate::storage::{self, Storage, StorageContext};
use crate::ui::Ui;

/// What streaming one copy found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Checked {
    pub compressed_bytes: u64,
    pub raw_bytes: u64,
    pub sha256: String,
    /// Every failed check, in words; empty when the copy is intact.
    pub problems: Vec<String>,
}

/// Counts the plain SQL, keeps its tail, and forwards it.
struct SqlSink {
    count: u64,
    tail: Vec<u8>,
    out: Option<Box<dyn Write + Send>>,
}

impl Write for SqlSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(out) = &mut self.out {
            out.write_all(buf)?;
        }
        self.count += buf.len() as u64;
        self.tail.extend_from_slice(buf);
        if self.tail.len() > 2 * TAIL {
            self.tail.drain(..self.tail.len() - TAIL);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.out {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

/// Streams the stored copy of `record` once, checking it against the record. `compressed`
/// receives the stored bytes as read; `sql`, when given, the plain SQL (then the object is
/// decompressed even when `decode` is false).
///
/// Fails only when the object cannot be opened; every other problem is in `problems`.
pub fn check_copy(
    storage: &dyn Storage,
    record: &BackupRecord,
    mut compressed: Option<&mut dyn Write>,
    sql: Option<Box<dyn Write + Send>>,
    decode: bool,
    cancel: &AtomicBool,
) -> Result<Checked, String> {
    let key = record
        .key
        .as_ref()
        .ok_or_else(|| format!("backup {} has no stored object (it failed)", record.id))?;
    let mut src = storage.get(key).map_err(|e| e.to_string())?;
    let decode = decode || sql.is_some();
    let mut decoder = if decode {
        let sink = SqlSink {
            count: 0,
            tail: Vec::new(),
            out: sql,
        };
        Some(compress::write_decoder(record.compression, sink).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let mut checked = Checked::default();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut decode_error: Option<String> = None;
    loop {
        if cancel.load(Ordering::Relaxed) {
            checked.problems.push("interrupted by a signal".into());
            return Ok(checked);
        }
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                checked
                    .problems
                    .push(format!("reading the object failed: {e}"));
                break;
            }
        };
        hasher.update(&buf[..n]);
        checked.compressed_bytes += n as u64;
        if let Some(out) = compressed.as_mut() {
            out.write_all(&buf[..n])
                .map_err(|e| format!("writing the output: {e}"))?;
        }
        if let (Some(d), None) = (decoder.as_mut(), &decode_error) {
            if let Err(e) = d.write_all(&buf[..n]) {
                decode_error = Some(e.to_string());
            }
        }
    }
    checked.sha256 = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if record.sha256.as_deref() != Some(checked.sha256.as_str()) {
        checked.problems.push(format!(
            "SHA-256 {} differs from the index ({}): the stored object changed or is corrupt",
            checked.sha256,
            record.sha256.as_deref().unwrap_or("none")
        ));
    }
    if checked.compressed_bytes != record.compressed_bytes {
        checked.problems.push(format!(
            "the object has {} bytes, the index says {}",
            checked.compressed_bytes, record.compressed_bytes
        ));
    }
    if let Some(d) = decoder {
        let finished = match decode_error {
            Some(e) => Err(e),
            None => d.finish().map_err(|e| e.to_string()),
        };
        match finished {
            Err(e) => checked.problems.push(format!(
                "{} decompression failed: {e}",
                record.compression.as_str()
            )),
            Ok(mut sink) => {
                if let Err(e) = sink.flush() {
                    checked
                        .problems
                        .push(format!("writing the SQL failed: {e}"));
                }
                checked.raw_bytes = sink.count;
                if sink.count != record.raw_bytes {
                    checked.problems.push(format!(
                        "the dump has {} bytes, the index says {}",
                        sink.count, record.raw_bytes
                    ));
                }
                if !mysql::has_completion_trailer(&sink.tail) {
                    checked
                        .problems
                        .push("the dump ends without its completion trailer".into());
                }
            }
        }
    }
    Ok(checked)
}

/// Connection to a server for restores: its defaults file and client.
pub struct Target<'a> {
    pub server: &'a ServerSettings,
    defaults: DefaultsFile,
    client: mysql::ToolInfo,
}

impl std::fmt::Debug for Target<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({})", self.server.name)
    }
}

impl<'a> Target<'a> {
    /// Prepares the client for `server`.
    ///
    /// Fails when the defaults file cannot be written or no client tool runs.
    pub fn new(server: &'a ServerSettings) -> Result<Target<'a>, String> {
        let defaults = DefaultsFile::create(server).map_err(|e| e.to_string())?;
        let client = mysql::detect_tool(
            &server.name,
            server.client_tool.as_deref(),
            mysql::CLIENT_TOOLS,
            "client_tool",
        )
        .map_err(|e| e.to_string())?;
        Ok(Target {
            server,
            defaults,
            client,
        })
    }

    /// Tables in `database`, `None` when it does not exist.
    pub fn table_count(&self, database: &str) -> Result<Option<u64>, String> {
        mysql::table_count(self.server, &self.client, &self.defaults, database)
            .map_err(|e| e.to_string())
    }

    /// Runs one statement.
    pub fn execute(&self, what: &'static str, sql: &str) -> Result<(), String> {
        mysql::execute(self.server, &self.client, &self.defaults, what, sql)
            .map_err(|e| e.to_string())
    }

    /// Streams `record`'s copy on `storage` into `database` (which must exist), checking the
    /// copy on the way. Returns the checks; an error when the restore itself failed.
    pub fn restore(
        &self,
        storage: &dyn Storage,
        record: &BackupRecord,
        database: &str,
        cancel: &AtomicBool,
    ) -> Result<Checked, String> {
        let mut child = mysql::restore_child(self.server, &self.client, &self.defaults, database)
            .map_err(|e| e.to_string())?;
        let stderr = mysql::drain_stderr(&mut child);
        let stdin = child.stdin.take().expect("stdin is piped");
        let checked = check_copy(storage, record, None, Some(Box::new(stdin)), true, cancel);
        let status = child.wait().map_err(|e| e.to_string())?;
        let mut err = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
        if let Some(p) = &self.server.password {
            err = p.redact_in(&err);
        }
        let checked = checked?;
        if !status.success() {
            return Err(format!(
                "{} failed ({status}){}",
                self.client.program.display(),
                if err.is_empty() {
                    String::new()
                } else {
                    format!(": {err}")
                }
            ));
        }
        Ok(checked)
    }
}

/// Which copies to verify.
#[derive(Debug, Clone, Default)]
pub struct VerifyRequest {
    /// Backup ids; empty with `latest` means the newest copy of each database.
    pub ids: Vec<String>,
    pub latest: bool,
    pub filter: crate::catalog::RecordFilter,
    pub restore_test: bool,
}

/// The verification of one copy.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyResult {
    #[serde(flatten)]
    pub record: BackupRecord,
    pub ok: bool,
    pub checked: Checked,
    pub restore_tested: bool,
    /// Tables restored into the scratch database (with `--restore-test`).
    pub restored_tables: Option<u64>,
    pub problem: Option<String>,
}

/// Picks the successful copies a request names.
pub fn select(records: &[BackupRecord], req: &VerifyRequest) -> Vec<BackupRecord> {
    let mut picked: Vec<BackupRecord> = records
        .iter()
        .filter(|r| r.status == Status::Success && r.key.is_some())
        .filter(|r| req.ids.is_empty() || req.ids.iter().any(|id| id == &r.id))
        .filter(|r| req.filter.matches(r))
        .cloned()
        .collect();
    if req.latest {
        // Records are oldest first: keep the last of each server/database/storage.
        let mut seen = std::collections::HashSet::new();
        let mut newest: Vec<BackupRecord> = picked
            .into_iter()
            .rev()
            .filter(|r| seen.insert((r.server.clone(), r.database.clone(), r.storage.clone())))
            .collect();
        newest.reverse();
        picked = newest;
    }
    picked
}

/// Verifies every selected copy and records the outcome in its index.
///
/// Fails only for a request that names nothing to verify; each copy's outcome is in the results.
pub fn run(
    settings: &Settings,
    req: &VerifyRequest,
    ui: &Ui,
    cancel: &AtomicBool,
) -> Result<Vec<VerifyResult>, String> {
    if req.ids.is_empty() && !req.latest {
        return Err(
            "name the backups to verify (ids from `sqlguard list`), or pass --latest".into(),
        );
    }
    req.filter.validate(settings)?;
    let catalog = crate::catalog::load(settings, ui, &req.filter.servers);
    for (_, e) in &catalog.errors {
        ui.error(e);
    }
    let chosen = select(&catalog.records, req);
    for id in &req.ids {
        if !chosen.iter().any(|r| &r.id == id) {
            return Err(format!(
                "no successful backup with id {id} (see `sqlguard list`)"
            ));
        }
    }
    let sctx = StorageContext::new(settings, ui);
    let mut results = Vec::new();
    for record in chosen {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let started = std::time::Instant::now();
        // One client per copy, for the check and for recording its outcome.
        let storage = settings
            .storage(&record.storage)
            .ok_or_else(|| format!("storage '{}' is not configured", record.storage))
            .and_then(|st| storage::open(st, &sctx).map_err(|e| e.to_string()));
        let outcome = storage
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|s| verify_one(settings, s.as_ref(), &record, req.restore_test, cancel));
        let (checked, restored_tables, problem) = match outcome {
            Ok((c, t)) => {
                let p = (!c.problems.is_empty()).then(|| c.problems.join("; "));
                (c, t, p)
            }
            Err(e) => (Checked::default(), None, Some(e)),
        };
        let ok = problem.is_none();
        let line = format!(
            "{}/{} {} on '{}': {} in {:.1}s",
            record.server,
            record.database,
            record.id,
            record.storage,
            if ok {
                "intact".to_string()
            } else {
                format!("FAILED: {}", problem.as_deref().unwrap_or(""))
            },
            started.elapsed().as_secs_f64()
        );
        if ok {
            ui.info(&line);
        } else {
            ui.error(&line);
        }
        let verification = Verification {
            verified_at: Utc::now(),
            ok,
            restore_tested: req.restore_test,
            error: problem.clone(),
        };
        if let Ok(storage) = &storage {
            let stored = IndexStore::new(storage.as_ref(), &record.server)
                .update(|i| {
                    for r in i
                        .backups
                        .iter_mut()
                        .filter(|r| r.id == record.id && r.storage == record.storage)
                    {
                        r.verification = Some(verification.clone());
                    }
                })
                .map(drop);
            if let Err(e) = stored {
                ui.warn(&format!(
                    "could not record the verification in the index: {e}"
                ));
            }
        }
        let mut record = record;
        record.verification = Some(verification);
        results.push(VerifyResult {
            record,
            ok,
            checked,
            restore_tested: req.restore_test,
            restored_tables,
            problem,
        });
    }
    Ok(results)
}

fn verify_one(
    settings: &Settings,
    storage: &dyn Storage,
    record: &BackupRecord,
    restore_test: bool,
    cancel: &AtomicBool,
) -> Result<(Checked, Option<u64>), String> {
    if !restore_test {
        return check_copy(storage, record, None, None, true, cancel).map(|c| (c, None));
    }
    let server = settings
        .servers
        .iter()
        .find(|s| s.name == record.server)
        .ok_or_else(|| {
            format!(
                "server '{}' is not configured: cannot restore-test",
                record.server
            )
        })?;
    let target = Target::new(server)?;
    let scratch = format!("sqlguard_verify_{:08x}", fastrand::u32(..));
    target.execute(
        "creating the scratch database",
        &format!(
            "CREATE DATABASE {} CHARACTER SET utf8mb4",
            mysql::quote_ident(&scratch)
        ),
    )?;
    let restored = target
        .restore(storage, record, &scratch, cancel)
        .and_then(|c| target.table_count(&scratch).map(|n| (c, n)));
    let dropped = target.execute(
        "dropping the scratch database",
        &format!("DROP DATABASE {}", mysql::quote_ident(&scratch)),
    );
    let (checked, tables) =
        restored.map_err(|e| format!("restore into scratch database {scratch} failed: {e}"))?;
    dropped?;
    Ok((checked, tables))
}
