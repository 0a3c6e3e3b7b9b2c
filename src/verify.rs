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
use crate::config::Settings;
use crate::index::{BackupRecord, IndexStore, RestoreTest, Status, Verification};
use crate::mysql;
use crate::pipeline::{CHUNK, TAIL};
use crate::restore::RestoreError;
use crate::storage::Storage;
use crate::ui::Ui;

/// What streaming one copy found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Checked {
    pub compressed_bytes: u64,
    pub raw_bytes: u64,
    pub sha256: String,
    /// Every failed check, in words; empty when the copy is intact.
    pub problems: Vec<String>,
    /// For an encrypted object: whether it was decrypted (and so its content checked), or
    /// only its SHA-256 and size (no identity on this host). Absent for plain objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decrypted: Option<bool>,
    /// Bytes of the compressed stream (decrypted), as passed to the outputs.
    #[serde(skip)]
    pub plain_bytes: u64,
}

/// Counts the plain SQL, keeps its tail, and forwards it.
struct SqlSink {
    count: u64,
    /// The size the index gives the SQL: more is the copy's fault, found before a disk that
    /// the surplus fills could be blamed for it.
    limit: u64,
    tail: Vec<u8>,
    out: Option<Box<dyn Write + Send>>,
    /// The first error writing to `out`: the output's, not the copy's (a full disk says
    /// nothing about the backup), where the decoder would report it as its own.
    out_error: std::sync::Arc<std::sync::Mutex<Option<std::io::Error>>>,
    /// For a binary log segment: its events, checked as they pass.
    segment: Option<crate::binlog::events::SegmentCheck>,
}

impl SqlSink {
    fn output_failed(&self, e: std::io::Error) -> std::io::Error {
        let copy = std::io::Error::new(e.kind(), e.to_string());
        if let Ok(mut slot) = self.out_error.lock() {
            slot.get_or_insert(e);
        }
        copy
    }
}

impl Write for SqlSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.count + buf.len() as u64 > self.limit {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "it decompresses to more than the {} bytes the index says",
                    self.limit
                ),
            ));
        }
        if let Some(out) = &mut self.out {
            if let Err(e) = out.write_all(buf) {
                return Err(self.output_failed(e));
            }
        }
        if let Some(s) = &mut self.segment {
            s.write_all(buf)?;
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
            Some(out) => out.flush().map_err(|e| self.output_failed(e)),
            None => Ok(()),
        }
    }
}

/// What [`check_copy`] passes on while it checks, and with which keys.
#[derive(Default)]
pub struct CopyOutputs<'a> {
    /// Receives the object's bytes as stored (encrypted when the object is).
    pub stored: Option<&'a mut (dyn Write + Send)>,
    /// Receives the compressed stream, decrypted (needs `identities` for an encrypted object).
    pub compressed: Option<&'a mut (dyn Write + Send)>,
    /// Receives the plain SQL (then the object is decompressed even when `decode` is false).
    pub sql: Option<Box<dyn Write + Send>>,
    /// Decrypt (when encrypted and `identities` are given) and decompress the whole object,
    /// and check the dump's size and completion trailer.
    pub decode: bool,
    /// The identities that decrypt an encrypted object; without them, an encrypted object's
    /// check is its SHA-256 and size only (`Checked::decrypted` false).
    pub identities: Option<&'a crate::crypt::Identities>,
}

impl std::fmt::Debug for CopyOutputs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CopyOutputs(decode={})", self.decode)
    }
}

/// Hashes and counts the object's bytes as they are read (below any decryption), passes them
/// on, and remembers a read failure, so that it is told apart from a decryption failure.
struct Tee<'a> {
    inner: Box<dyn Read + Send>,
    hasher: Sha256,
    count: u64,
    copy: Option<&'a mut (dyn Write + Send)>,
    read_error: Option<std::io::Error>,
    copy_error: Option<std::io::Error>,
    cancel: &'a AtomicBool,
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("interrupted by a signal"));
        }
        let n = loop {
            match self.inner.read(buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let passed = std::io::Error::new(e.kind(), e.to_string());
                    self.read_error = Some(e);
                    return Err(passed);
                }
            }
        };
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        if let Some(out) = self.copy.as_mut() {
            if let Err(e) = out.write_all(&buf[..n]) {
                let msg = e.to_string();
                self.copy_error = Some(e);
                return Err(std::io::Error::other(msg));
            }
        }
        Ok(n)
    }
}

/// Streams the stored copy of `record` once, checking it against the record: SHA-256 and size
/// of the stored bytes always; with `decode` (or an SQL output), decryption of an encrypted
/// object (every chunk authenticated, to the end), decompression, and the dump's size and
/// trailer. The outputs receive the bytes as they pass, before the checks are complete.
///
/// Fails when the object cannot be opened, an output cannot be written, or decrypted bytes
/// are asked for without identities; every other problem is in `problems`.
pub fn check_copy<'a>(
    storage: &dyn Storage,
    record: &BackupRecord,
    outputs: CopyOutputs<'a>,
    cancel: &'a AtomicBool,
) -> Result<Checked, RestoreError> {
    let key = record
        .key
        .as_ref()
        .ok_or_else(|| RestoreError::NoSuchBackup {
            id: record.id.clone(),
            storage: Some(record.storage.clone()),
        })?;
    if let Some(bad) = record.foreign_key(&record.server) {
        return Err(RestoreError::FailedChecks {
            id: record.id.clone(),
            storage: record.storage.clone(),
            what: "read",
            problems: crate::restore::foreign_key_problem(bad),
        });
    }
    let CopyOutputs {
        stored,
        mut compressed,
        sql,
        decode,
        identities,
    } = outputs;
    let encrypted = record.encryption.is_some();
    let wants_plain = compressed.is_some() || sql.is_some();
    if encrypted && wants_plain && identities.is_none() {
        return Err(RestoreError::NoIdentity {
            id: record.id.clone(),
            why: crate::crypt::no_identity_message(),
        });
    }
    let mut tee = Tee {
        inner: storage.get(key)?,
        hasher: Sha256::new(),
        count: 0,
        copy: stored,
        read_error: None,
        copy_error: None,
        cancel,
    };
    let decode = decode || sql.is_some();
    // An encrypted object whose content is not needed, or that this host cannot decrypt, is
    // read for its hash and size alone.
    let decrypt_with = identities.filter(|_| encrypted && (decode || wants_plain));
    let content = !encrypted || decrypt_with.is_some();
    let out_error = std::sync::Arc::new(std::sync::Mutex::new(None));
    let output_error = || out_error.lock().ok().and_then(|mut e| e.take());
    let mut decoder = if decode && content {
        let sink = SqlSink {
            count: 0,
            limit: record.raw_bytes,
            tail: Vec::new(),
            out: sql,
            out_error: std::sync::Arc::clone(&out_error),
            segment: record
                .segment
                .as_ref()
                .map(|s| crate::binlog::events::SegmentCheck::new(s.start, s.crc32)),
        };
        Some(compress::write_decoder(record.compression, sink).map_err(RestoreError::Output)?)
    } else {
        None
    };
    let mut checked = Checked {
        decrypted: encrypted.then_some(decrypt_with.is_some()),
        ..Default::default()
    };
    let mut decode_error: Option<String> = None;
    let mut decrypt_error: Option<String> = None;
    {
        let mut reader: Box<dyn Read + '_> = match decrypt_with {
            Some(ids) => match crate::crypt::decryptor(ids, &mut tee) {
                Ok(d) => Box::new(d),
                Err(e) => {
                    decrypt_error = Some(e.to_string());
                    Box::new(std::io::empty())
                }
            },
            None => Box::new(&mut tee),
        };
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if decrypt_with.is_some() {
                        decrypt_error = Some(crate::crypt::describe_read_error(&e));
                    }
                    break;
                }
            };
            checked.plain_bytes += n as u64;
            if let Some(out) = compressed.as_mut() {
                out.write_all(&buf[..n]).map_err(RestoreError::Output)?;
            }
            if let (Some(d), None) = (decoder.as_mut(), &decode_error) {
                if let Err(e) = d.write_all(&buf[..n]) {
                    decode_error = Some(e.to_string());
                }
            }
        }
    }
    if let Some(e) = tee.copy_error.take().or_else(output_error) {
        return Err(RestoreError::Output(e));
    }
    // Neither a signal nor a read that failed part way says anything about the copy.
    if cancel.load(Ordering::Relaxed) {
        return Err(RestoreError::Interrupted);
    }
    // Whatever the decryptor did not need is still hashed: the SHA-256 covers every byte.
    if tee.read_error.is_none() {
        let _ = std::io::copy(&mut tee, &mut std::io::sink());
    }
    if let Some(e) = tee.copy_error.take() {
        return Err(RestoreError::Output(e));
    }
    if let Some(e) = tee.read_error.take() {
        return Err(RestoreError::reading(record, &e));
    }
    checked.compressed_bytes = tee.count;
    checked.sha256 = hex::encode(std::mem::take(&mut tee.hasher).finalize());
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
    if let Some(e) = decrypt_error {
        checked.problems.push(e);
        return Ok(checked);
    }
    if let Some(d) = decoder {
        let finished = match decode_error {
            Some(e) => Err(e),
            None => d.finish().map_err(|e| e.to_string()),
        };
        let finished =
            finished.and_then(|mut sink| sink.flush().map(|()| sink).map_err(|e| e.to_string()));
        if let Some(e) = output_error() {
            return Err(RestoreError::Output(e));
        }
        match finished {
            Err(e) => checked.problems.push(format!(
                "{} decompression failed: {e}",
                record.compression.as_str()
            )),
            Ok(sink) => {
                checked.raw_bytes = sink.count;
                if sink.count != record.raw_bytes {
                    checked.problems.push(format!(
                        "the dump has {} bytes, the index says {}",
                        sink.count, record.raw_bytes
                    ));
                }
                match (&sink.segment, &record.segment) {
                    (Some(check), Some(seg)) => checked.problems.extend(check.problems(seg)),
                    _ => {
                        if !mysql::has_completion_trailer(&sink.tail) {
                            checked
                                .problems
                                .push("the dump ends without its completion trailer".into());
                        }
                    }
                }
            }
        }
    }
    Ok(checked)
}

/// Which copies to verify.
#[derive(Debug, Clone, Default)]
pub struct VerifyRequest {
    /// Backup ids; empty with `latest` means the newest copy of each database.
    pub ids: Vec<String>,
    pub latest: bool,
    pub filter: crate::catalog::RecordFilter,
    pub restore_test: bool,
    /// How the restore test loads the backup (sessions, binary log).
    pub load: crate::restore::LoadOptions,
    /// Verify this many copies, least recently verified first (never verified before all).
    pub sample: Option<usize>,
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
    /// Rows the restored tables hold, counted (with `--restore-test`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored_rows: Option<u64>,
    /// Whether the restored database was compared with the dump's inventory (absent from
    /// manifests of backups made before sqlguard recorded it).
    pub inventory_compared: bool,
    /// Seconds from the first byte read to the last statement loaded (the measured recovery
    /// time), with `--restore-test`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_seconds: Option<f64>,
    /// The scratch database of the restore test (dropped afterwards).
    pub scratch_database: Option<String>,
    pub problem: Option<String>,
    /// The check could not be done for a reason outside the copy (a storage or server that
    /// did not answer, a signal): `ok` is false, and nothing was recorded in the index.
    pub not_checked: bool,
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
    if let Some(n) = req.sample {
        // Least recently verified first: never verified, then by the time of the last one;
        // ties (never verified) oldest backup first, so that a timer walks the whole store.
        picked.sort_by(|a, b| {
            let at = |r: &BackupRecord| r.verification.as_deref().map(|v| v.verified_at);
            (at(a), a.started_at, &a.id, &a.storage).cmp(&(at(b), b.started_at, &b.id, &b.storage))
        });
        picked.truncate(n);
        return picked;
    }
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

/// Why a verify run could not start (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "name the backups to verify (ids from `sqlguard list`), or pass --latest or --sample N"
    )]
    NothingNamed,
    #[error(transparent)]
    Unknown(#[from] crate::config::settings::Unknown),
    #[error("no successful backup with id {0} (see `sqlguard list`)")]
    NoSuchBackup(String),
    #[error("`latest` matches backups of {} databases: {}; name one with --server and --db", .0.len(), .0.join(", "))]
    Ambiguous(Vec<String>),
    #[error("no good backup matches `latest` with these filters (see `sqlguard list`)")]
    NoLatest,
    /// A restore test of an encrypted backup on a host that cannot decrypt it: nothing is
    /// tested or recorded, so that good backups are not marked failed for a missing key.
    #[error("cannot restore-test: {0}")]
    NoIdentity(String),
}

/// What a verify run found: each copy's result, and the indexes it could not read (a damaged
/// index is a failure, never "nothing to verify").
#[derive(Debug, Default)]
pub struct VerifyOutcome {
    pub results: Vec<VerifyResult>,
    pub errors: Vec<String>,
}

/// Verifies every selected copy and records the outcome in its index.
///
/// Fails only for a request that names nothing to verify, an unknown name, or an id without a
/// successful copy; each copy's outcome, and each unreadable index, is in the outcome.
pub fn run(
    session: &crate::session::Session,
    req: &VerifyRequest,
) -> Result<VerifyOutcome, VerifyError> {
    let (settings, ui, cancel) = (&session.settings, &session.ui, session.cancel.as_ref());
    if req.ids.is_empty() && !req.latest && req.sample.is_none() {
        return Err(VerifyError::NothingNamed);
    }
    req.filter.validate(settings)?;
    let catalog = session.catalog(&req.filter.servers);
    let mut errors = Vec::new();
    for (storage, e) in &catalog.errors {
        if req.filter.storage.as_ref().is_none_or(|s| s == storage) {
            ui.error(e);
            errors.push(e.clone());
        }
    }
    // `latest` names the newest good backup of the filter's one database.
    let mut ids = Vec::new();
    for id in &req.ids {
        if id != crate::restore::LATEST {
            ids.push(id.clone());
            continue;
        }
        let (picked, e) = catalog.newest_good(&req.filter);
        // What may hold a newer backup could not be read: what is found is verified, and the
        // run still fails (never an exit 0 over part of the history).
        for (_, e) in e {
            ui.error(&e);
            errors.push(e);
        }
        match picked {
            Ok(Some(r)) => ids.push(r.id),
            Ok(None) => return Err(VerifyError::NoLatest),
            Err(candidates) => return Err(VerifyError::Ambiguous(candidates)),
        }
    }
    let req = &VerifyRequest {
        ids,
        filter: req.filter.with_segments(),
        ..req.clone()
    };
    // Only what the request names is read: each id's copies, or the summaries' newest copies.
    let mut read_errors = Vec::new();
    let candidates = if req.sample.is_some() {
        // Every copy the filter matches: the least recently verified can be any of them.
        let select = crate::catalog::Select {
            databases: &req.filter.databases,
            since: None,
            around: None,
        };
        let (all, e) = catalog.records(&select);
        read_errors.extend(e);
        all
    } else if req.ids.is_empty() {
        let (latest, e) = catalog.latest_successes(&req.filter);
        read_errors.extend(e);
        latest
    } else {
        let mut all = Vec::new();
        for id in &req.ids {
            let (copies, e) = catalog.copies_of(id);
            read_errors.extend(e);
            all.extend(copies);
        }
        all.sort_by(|a, b| {
            (a.started_at, &a.id, &a.storage).cmp(&(b.started_at, &b.id, &b.storage))
        });
        all.dedup_by(|a, b| a.id == b.id && a.storage == b.storage);
        all
    };
    for (storage, e) in read_errors {
        if req.filter.storage.as_ref().is_none_or(|s| s == &storage) {
            ui.error(&e);
            errors.push(e);
        }
    }
    let chosen = select(&candidates, req);
    if req.restore_test {
        for r in chosen.iter().filter(|r| !crate::restore::is_accounts(r)) {
            crate::restore::decryption_for(r, settings.encryption.identities.as_ref())
                .map_err(|e| VerifyError::NoIdentity(e.to_string()))?;
        }
    }
    for id in &req.ids {
        if !chosen.iter().any(|r| &r.id == id) && errors.is_empty() {
            return Err(VerifyError::NoSuchBackup(id.clone()));
        }
    }
    let mut results = Vec::new();
    for record in chosen {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let started = std::time::Instant::now();
        // One client per copy, for the check and for recording its outcome.
        let storage = session.storage(&record.storage).map_err(|e| e.to_string());
        let outcome = storage
            .as_ref()
            .map_err(|e| NotChecked::elsewhere(e.clone()))
            .and_then(|s| {
                let test = req.restore_test.then_some(&req.load);
                verify_one(settings, s.as_ref(), &record, test, ui, cancel)
            });
        let (checked, drill, scratch_database, problem) = match outcome {
            Ok((c, d, scratch)) => {
                let p = (!c.problems.is_empty()).then(|| c.problems.join("; "));
                (c, d, scratch, p)
            }
            Err(e) if !e.about_copy => {
                // Not a verdict: said, counted as not verified, and not recorded.
                ui.error(&format!(
                    "{}/{} {} on '{}': NOT CHECKED: {} (nothing recorded: the copy keeps its last verification)",
                    record.server, record.database, record.id, record.storage, e.message
                ));
                results.push(VerifyResult {
                    ok: false,
                    checked: Checked::default(),
                    restore_tested: false,
                    restored_tables: None,
                    restored_rows: None,
                    inventory_compared: false,
                    restore_seconds: None,
                    scratch_database: e.scratch,
                    problem: Some(e.message),
                    not_checked: true,
                    record,
                });
                continue;
            }
            Err(e) => {
                // A copy pruned while this run read it (a drill overlapping the prune timer)
                // is gone from the index too: no verdict on a backup that is no longer kept.
                // A prune removes the objects of a batch before their records: while one of
                // this server runs, its outcome is waited for (up to a minute).
                let pruned = storage.as_ref().is_ok_and(|s| {
                    let store = IndexStore::new(s.as_ref(), &record.server);
                    let gone = || store.holds(&record).is_ok_and(|held| !held);
                    let pruning = || {
                        crate::joblock::running(&settings.lock_dir, &record.server, "prune", None)
                            .is_some()
                    };
                    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
                    loop {
                        if gone() {
                            break true;
                        }
                        if !pruning()
                            || std::time::Instant::now() > until
                            || cancel.load(Ordering::Relaxed)
                        {
                            break gone();
                        }
                        std::thread::sleep(std::time::Duration::from_millis(200));
                    }
                });
                if pruned {
                    ui.info(&format!(
                        "{}/{} {} on '{}': removed from the index while this run checked it (a prune): not verified, nothing recorded",
                        record.server, record.database, record.id, record.storage
                    ));
                    continue;
                }
                (Checked::default(), None, e.scratch, Some(e.message))
            }
        };
        let ok = problem.is_none();
        let line = format!(
            "{}/{} {} on '{}': {} in {:.1}s",
            record.server,
            record.database,
            record.id,
            record.storage,
            if ok && checked.decrypted == Some(false) {
                "intact as stored (SHA-256 and size; encrypted, and this host has no age identity to check its content)".to_string()
            } else if ok {
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
        let now = Utc::now();
        let tested =
            req.restore_test && !crate::restore::is_accounts(&record) && record.segment.is_none();
        let test = tested.then(|| RestoreTest {
            tested_at: now,
            ok,
            duration_seconds: drill
                .as_ref()
                .map_or(started.elapsed().as_secs_f64(), |d| d.seconds),
            error: problem.clone(),
        });
        let verification = |previous: Option<&Verification>| Verification {
            verified_at: now,
            ok,
            restore_tested: tested,
            error: problem.clone(),
            // A verification that does not restore keeps the copy's last restore test.
            restore_test: test
                .clone()
                .or_else(|| previous.and_then(|v| v.restore_test.clone())),
        };
        if let Ok(storage) = &storage {
            let stored = IndexStore::new(storage.as_ref(), &record.server).update(
                &crate::index::scope_of([&record]),
                |records| {
                    for r in records
                        .iter_mut()
                        .filter(|r| r.id == record.id && r.storage == record.storage)
                    {
                        r.verification = Some(Box::new(verification(r.verification.as_deref())));
                    }
                },
            );
            // A verdict the index does not hold is lost to every later reader (`restore
            // latest`, the drill's overdue alert): the run fails.
            if let Err(e) = stored {
                let msg = format!(
                    "{}/{} {} on '{}': the verification could not be recorded in the index: {e}",
                    record.server, record.database, record.id, record.storage
                );
                ui.error(&msg);
                errors.push(msg);
            }
        }
        let mut record = record;
        record.verification = Some(Box::new(verification(record.verification.as_deref())));
        results.push(VerifyResult {
            record,
            ok,
            checked,
            restore_tested: tested,
            restored_tables: drill.as_ref().map(|d| d.tables),
            restored_rows: drill.as_ref().and_then(|d| d.rows),
            inventory_compared: drill.as_ref().is_some_and(|d| d.rows.is_some()),
            restore_seconds: drill.as_ref().map(|d| d.seconds),
            scratch_database,
            problem,
            not_checked: false,
        });
    }
    Ok(VerifyOutcome { results, errors })
}

/// Scratch databases of restore tests are named `sqlguard_verify_<UTC time>_<random>`.
pub const SCRATCH_PREFIX: &str = "sqlguard_verify_";

/// How long a scratch database may stay before a later restore test drops it as left behind by
/// a killed run (a restore test that takes longer than this is not expected).
pub const SCRATCH_MAX_AGE_HOURS: i64 = 24;

/// A new scratch database name.
fn scratch_name(now: chrono::DateTime<Utc>) -> String {
    format!(
        "{SCRATCH_PREFIX}{}_{:08x}",
        now.format("%Y%m%d%H%M%S"),
        fastrand::u32(..)
    )
}

/// The time in the name of a scratch database as [`scratch_name`] makes it
/// (`sqlguard_verify_20261130110639_3072c113`, exactly); `None` for any other name, which a
/// restore test did not make and never drops.
fn scratch_stamp(name: &str) -> Option<chrono::DateTime<Utc>> {
    let (stamp, suffix) = name.strip_prefix(SCRATCH_PREFIX)?.split_once('_')?;
    let ours = stamp.len() == 14
        && suffix.len() == 8
        && suffix
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ours.then(|| chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%d%H%M%S").ok())
        .flatten()
        .map(|t| t.and_utc())
}

/// Drops the scratch databases that killed restore tests left behind (older than
/// [`SCRATCH_MAX_AGE_HOURS`], by the time in their name); only names exactly as
/// [`scratch_name`] makes them.
fn sweep_scratch(target: &crate::restore::Target, ui: &Ui) {
    let now = Utc::now();
    let Ok(names) = target.databases_like(&format!("{SCRATCH_PREFIX}%")) else {
        return;
    };
    for name in names {
        let stamp = scratch_stamp(&name);
        if stamp.is_some_and(|t| (now - t).num_hours() >= SCRATCH_MAX_AGE_HOURS) {
            match target.execute(
                "dropping a scratch database left behind",
                &format!("DROP DATABASE {}", mysql::quote_ident(&name)),
            ) {
                Ok(()) => ui.warn(&format!(
                    "server '{}': dropped scratch database {name}, left behind by a killed restore test",
                    target.server.name
                )),
                Err(e) => ui.warn(&e.to_string()),
            }
        }
    }
}

/// What a restore test measured: the tables restored, their rows (when the dump's inventory
/// was there to compare with), and the seconds from the first byte read to the last statement
/// loaded.
#[derive(Debug, Clone)]
struct Drill {
    tables: u64,
    rows: Option<u64>,
    seconds: f64,
}

/// Why one copy's check could not be done, with the scratch database, if one was made.
#[derive(Debug)]
struct NotChecked {
    message: String,
    scratch: Option<String>,
    /// The reason is the copy's own (its object is gone, its key is refused, its dump does not
    /// load into a server that answers): a verdict, recorded. Else it is the run's surroundings
    /// (a storage or server that did not answer, a signal, a missing tool or identity): nothing
    /// is recorded, and the copy keeps its last verification.
    about_copy: bool,
}

impl NotChecked {
    /// A reason outside the copy.
    fn elsewhere(message: impl Into<String>) -> NotChecked {
        NotChecked {
            message: message.into(),
            scratch: None,
            about_copy: false,
        }
    }

    /// From reading the copy: a missing object, a refused key, or something that is not a
    /// file where the object belongs is the copy's; the rest (I/O, a remote error, a read cut
    /// short, the temp directory, a signal) is not.
    fn reading(e: &RestoreError) -> NotChecked {
        use crate::storage::StorageError;
        NotChecked {
            message: e.to_string(),
            scratch: None,
            about_copy: match e {
                RestoreError::NoSuchBackup { .. }
                | RestoreError::Storage(
                    StorageError::NotFound { .. } | StorageError::InvalidKey { .. },
                ) => true,
                RestoreError::Storage(StorageError::Io { cause, .. }) => {
                    cause.kind() == std::io::ErrorKind::InvalidData
                }
                _ => false,
            },
        }
    }
}

/// The check (and, with `restore_test`, the restore test) of one copy: what was found (a
/// restore test's differences from the dump's inventory are problems), what the restore test
/// measured, and the scratch database used; or why it could not be done.
type VerifiedOne = Result<(Checked, Option<Drill>, Option<String>), NotChecked>;

fn verify_one(
    settings: &Settings,
    storage: &dyn Storage,
    record: &BackupRecord,
    restore_test: Option<&crate::restore::LoadOptions>,
    ui: &Ui,
    cancel: &AtomicBool,
) -> VerifiedOne {
    // Accounts cannot go into a scratch database: their copy is checked, not restore-tested.
    // Accounts and binary log segments have no database to restore into a scratch one.
    let restore_test =
        restore_test.filter(|_| !crate::restore::is_accounts(record) && record.segment.is_none());
    let Some(load) = restore_test else {
        // An identity that is not a recipient of this copy cannot check its content: the copy
        // is then checked as stored (its hash and size), and that is said, not failed.
        let identities = settings.encryption.identities.as_ref().filter(|ids| {
            record
                .encryption
                .as_ref()
                .is_none_or(|e| ids.can_decrypt(e))
        });
        if let (Some(enc), Some(ids), None) = (
            &record.encryption,
            settings.encryption.identities.as_ref(),
            identities,
        ) {
            ui.warn(&format!(
                "{}/{} {}: checked as stored only: {}",
                record.server,
                record.database,
                record.id,
                ids.mismatch(enc)
            ));
        }
        let outputs = CopyOutputs {
            decode: true,
            identities,
            ..Default::default()
        };
        return check_copy(storage, record, outputs, cancel)
            .map_err(|e| NotChecked::reading(&e))
            .map(|c| (c, None, None));
    };
    let server = settings.server(&record.server).map_err(|e| {
        NotChecked::elsewhere(format!(
            "{e}: cannot restore-test a backup of a server that is not configured"
        ))
    })?;
    // What the dump holds, from its manifest (backups of sqlguard 0.1 have none: the restore
    // test then only counts tables).
    let inventory = match IndexStore::new(storage, &record.server).read_manifest(record) {
        Ok(m) => m.and_then(|m| m.inventory),
        Err(e) => return Err(NotChecked::elsewhere(e)),
    };
    if inventory.is_none() {
        ui.warn(&format!(
            "{}/{} {}: its manifest has no inventory (a backup of an older sqlguard): the restore test cannot compare tables and rows",
            record.server, record.database, record.id
        ));
    }
    let started = std::time::Instant::now();
    // The copy is proven before the scratch database exists, let alone receives a byte.
    let identities =
        crate::restore::decryption_for(record, settings.encryption.identities.as_ref())
            .map_err(|e| NotChecked::elsewhere(e.to_string()))?;
    let copy =
        match crate::restore::CheckedCopy::fetch(storage, record, "restored", identities, cancel) {
            Ok(c) => c,
            Err(crate::restore::RestoreError::FailedChecks { problems, .. }) => {
                return Ok((
                    Checked {
                        problems: vec![problems],
                        ..Default::default()
                    },
                    None,
                    None,
                ))
            }
            Err(e) => return Err(NotChecked::reading(&e)),
        };
    let mut checked = Checked {
        compressed_bytes: copy.size,
        sha256: copy.sha256.clone(),
        ..Default::default()
    };
    // The dump's events must not run in the scratch database: one that writes elsewhere would
    // reach live data during a drill.
    let load = crate::restore::LoadOptions {
        disable_events: true,
        ..*load
    };
    let target = crate::restore::Target::new(server, load)
        .map_err(|e| NotChecked::elsewhere(e.to_string()))?;
    sweep_scratch(&target, ui);
    let scratch = scratch_name(Utc::now());
    target
        .create_database(
            &scratch,
            &crate::restore::create_database_sql(&scratch, record),
        )
        .map_err(|e| NotChecked::elsewhere(e.to_string()))?;
    let restored = target.load(copy, record, &scratch, cancel).and_then(|l| {
        let seconds = started.elapsed().as_secs_f64();
        let found = target.inventory(&scratch).map_err(|e| e.to_string())?;
        let damaged = target
            .check_tables(&scratch, &found)
            .map_err(|e| e.to_string())?;
        Ok((l, found, damaged, seconds))
    });
    let dropped = target.cleanup(
        "dropping the scratch database",
        &format!("DROP DATABASE {}", mysql::quote_ident(&scratch)),
    );
    let (loaded, found, damaged, seconds) = restored.map_err(|e| NotChecked {
        message: format!("restore into scratch database {scratch} failed: {e}"),
        scratch: Some(scratch.clone()),
        // A load that a signal ended, on a server that no longer answers, or that the server,
        // the connection or the account stopped (a lost or killed session, a missing
        // privilege, a full disk) says nothing about the copy; one whose statements a working
        // server refused does.
        about_copy: !cancel.load(Ordering::Relaxed)
            && !mysql::is_environment_error(&e)
            && target.databases().is_ok(),
    })?;
    dropped.map_err(|e| NotChecked {
        scratch: Some(scratch.clone()),
        ..NotChecked::elsewhere(e.to_string())
    })?;
    checked.raw_bytes = loaded.raw_bytes;
    if let Some(dumped) = &inventory {
        let differences = dumped.differences(&found);
        if !differences.is_empty() {
            checked.problems.push(format!(
                "the restored database differs from the dump: {}",
                differences.join(", ")
            ));
        }
    }
    for d in damaged {
        checked.problems.push(format!("CHECK TABLE: {d}"));
    }
    let drill = Drill {
        tables: (found.tables.len() + found.views.len() + found.sequences.len()) as u64,
        rows: inventory.is_some().then(|| found.rows()),
        seconds,
    };
    Ok((checked, Some(drill), Some(scratch)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sweep drops only names a restore test makes: a database called
    /// `sqlguard_verify_20200101000000_archive` is somebody's, whatever its age.
    #[test]
    fn only_scratch_names_as_made_are_swept() {
        let made = scratch_name(Utc::now());
        assert!(scratch_stamp(&made).is_some(), "{made}");
        assert!(scratch_stamp("sqlguard_verify_20200101000000_0a1b2c3d").is_some());
        for not_ours in [
            "sqlguard_verify_20200101000000_archive",
            "sqlguard_verify_20200101000000_0A1B2C3D",
            "sqlguard_verify_20200101000000_0a1b2c3d_x",
            "sqlguard_verify_2020010100000_0a1b2c3d",
            "sqlguard_verify_20200101000000",
            "sqlguard_verify_x",
        ] {
            assert!(scratch_stamp(not_ours).is_none(), "{not_ours}");
        }
    }
}
