//! Getting a backup back: which copy to read ([`select_copy`], pure), proving its bytes before
//! anything uses them ([`CheckedCopy`]), and loading proven bytes into a server ([`Target`]),
//! statement by statement under a [`Policy`], through the client in its sandbox mode.
//!
//! The order is the guarantee: nothing reaches a database, stdout or a file until the object's
//! size and SHA-256 match the index. A copy on a local storage is hashed through one open
//! handle and then read again through the same handle (a rename cannot swap it in between); a
//! copy on any other storage is downloaded once into an unlinked private temp file in the temp
//! directory (so it needs free space there equal to the compressed size, and a kill leaves
//! nothing), hashed on the way, then read from there. Checked bytes are still SQL from a
//! storage: the client runs with `--sandbox` when it has it, and sqlguard itself refuses any
//! client command and any statement a single-database dump never holds (see
//! [`crate::sqlscan::Policy`]).

use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::catalog::RecordFilter;
use crate::compress;
use crate::config::settings::Unknown;
use crate::config::ServerSettings;
use crate::index::{BackupRecord, Status};
use crate::inventory::Inventory;
use crate::mysql::{self, DefaultsFile, MysqlError};
use crate::pipeline::{CHUNK, TAIL};
use crate::process::OnSignal;
use crate::session::Session;
use crate::sqlscan::{self, Event, Head, Kind, Policy, Splitter, Verdict};

mod import;
pub mod sessions;
use crate::storage::{Storage, StorageError};
use crate::ui::human_bytes;
pub use import::{import, import_plan, ImportPlan, ImportRequest};

/// Why a fetch, restore or restore test did not happen or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// No successful copy matches the request (exit code 2).
    #[error("no successful copy of backup {id}{} (see `sqlguard list`)", .storage.as_ref().map(|s| format!(" on storage '{s}'")).unwrap_or_default())]
    NoSuchBackup { id: String, storage: Option<String> },
    /// A name the configuration does not define (exit code 2).
    #[error(transparent)]
    Unknown(#[from] Unknown),
    /// `--to-database` for an accounts backup, which goes to the server (exit code 2).
    #[error("an accounts backup restores users, roles and grants into the server, not into a database: drop --to-database")]
    AccountsHaveNoDatabase,
    /// A target database name the server would refuse (exit code 2).
    #[error("database name {name:?} cannot be used: {why} (MariaDB and MySQL refuse it)")]
    BadName { name: String, why: &'static str },
    /// The id names a binary log segment (exit code 2).
    #[error("{0} is a segment of the binary log archive, not a dump: restore a dump of the database and roll it forward with --to-time, --to-position or --to-gtid (`sqlguard fetch {0}` gets the segment's bytes)")]
    SegmentIsNoDump(String),
    /// The target database has tables, views, routines or events and `--force` was not given
    /// (exit code 2).
    #[error("database '{database}' on server '{server}' already holds {tables} tables, views, routines or events: restore into another with --to-database, or pass --force")]
    TargetNotEmpty {
        server: String,
        database: String,
        tables: u64,
    },
    /// Every copy of the backup `latest` chose failed its checks: the cause, and what to do.
    #[error("{cause}; {hint}")]
    LatestUnusable {
        cause: Box<RestoreError>,
        hint: String,
    },
    #[error("the copies of backup {id} disagree: {detail}; nothing was restored (run `sqlguard verify {id}` to find the good one, then pass --storage)")]
    CopiesDisagree { id: String, detail: String },
    #[error(
        "backup {id} on storage '{storage}' failed its checks, so nothing was {what}: {problems}"
    )]
    FailedChecks {
        id: String,
        storage: String,
        what: &'static str,
        problems: String,
    },
    #[error("checking backup {id}: the temp directory {dir} has {free} free, and the copy needs {need} (set TMPDIR to a larger one)")]
    NoSpace {
        id: String,
        dir: String,
        free: String,
        need: String,
    },
    #[error("checking backup {id} in the temp directory {dir}: {cause}")]
    Spool {
        id: String,
        dir: String,
        cause: io::Error,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Server(#[from] MysqlError),
    #[error("restoring backup {id} into {server}/{database} failed: {message}{}", match (.created, .dropped) {
        (true, true) => " (the database this restore created was dropped)".to_string(),
        (true, false) => format!("; the database this restore created could not be dropped: drop it by hand (DROP DATABASE {})", mysql::quote_ident(.database)),
        _ if .database == crate::backup::ACCOUNTS => String::new(),
        _ => "; the database may be incomplete".to_string(),
    })]
    Load {
        id: String,
        server: String,
        database: String,
        message: String,
        created: bool,
        dropped: bool,
    },
    /// Reading the copy failed part way (a cut connection, a disk error): nothing is known
    /// about the copy itself.
    #[error("reading backup {id} on storage '{storage}' failed: {cause}; nothing was checked or used (try again)")]
    Read {
        id: String,
        storage: String,
        cause: String,
    },
    #[error("writing the output: {0}")]
    Output(io::Error),
    #[error("interrupted by a signal")]
    Interrupted,
    /// `latest` matches backups of several databases (exit code 2).
    #[error("`latest` matches backups of {} databases: {}; name one with --server and --db", .0.len(), .0.join(", "))]
    Ambiguous(Vec<String>),
    /// What could hold a newer backup than the one `latest` found could not be read: taking
    /// it would quietly restore older data.
    #[error("`latest` cannot be told: {unread} could not be read and may hold a newer backup of {server}/{database} (said above); the newest good backup that could be read is {id} (started {started}): once you know nothing newer is lost, name it in place of `latest`, or pass --storage with a storage that could be read; a damaged index is repaired by `sqlguard index rebuild`")]
    LatestUncertain {
        unread: String,
        server: String,
        database: String,
        id: String,
        started: String,
    },
    /// `latest` matches no good copy (exit code 2).
    #[error("no good backup matches `latest` with these filters (a successful copy whose last verification did not fail; see `sqlguard list`)")]
    NoLatest,
    /// An encrypted backup, and no identity here that decrypts it (exit code 2).
    #[error("backup {id} cannot be decrypted on this host: {why}")]
    NoIdentity { id: String, why: String },
    /// `restore --file` names a file that cannot be read (exit code 2).
    #[error("cannot read {path}: {cause}")]
    ImportFile { path: String, cause: io::Error },
    /// `restore --file`: the file did not prove whole; nothing was written.
    #[error("{path} failed its checks, so nothing was restored: {problems}")]
    ImportRefused { path: String, problems: String },
    /// `restore --file` without `--to-database` (exit code 2).
    #[error("restore --file needs the database to restore into: add --to-database NAME")]
    ImportNeedsDatabase,
    /// The operator answered no on the terminal (exit code 2: nothing was done).
    #[error("not restored: the confirmation was declined (pass --yes to skip it)")]
    Declined,
    /// A point in time that no dump and archive reach as asked (exit code 2: nothing was done).
    #[error("cannot restore to {target}: {reason}; nothing was restored")]
    NotCovered { target: String, reason: String },
    /// A hole in the binary log archive between the dump and the target (nothing was done).
    #[error(
        "cannot restore to {target}: the binary log archive has a gap: {gap}; nothing was restored"
    )]
    ArchiveGap { target: String, gap: String },
    /// The dump was restored, and replaying the binary log onto it failed.
    #[error("replaying the binary log into {server}/{database} failed: {message}{}", if *.dropped { " (the database this restore created was dropped)".to_string() } else { format!(" (the database holds dump {} and part of the replay: drop it and restore again)", .id) })]
    Replay {
        id: String,
        server: String,
        database: String,
        message: String,
        dropped: bool,
    },
}

impl From<io::Error> for RestoreError {
    fn from(e: io::Error) -> Self {
        RestoreError::Output(e)
    }
}

impl From<crate::session::OpenError> for RestoreError {
    fn from(e: crate::session::OpenError) -> Self {
        match e {
            crate::session::OpenError::Unknown(u) => RestoreError::Unknown(u),
            crate::session::OpenError::Storage(s) => RestoreError::Storage(s),
        }
    }
}

impl RestoreError {
    /// Reading the stored copy of `record` failed with `e`: an object gone since it was
    /// opened (a prune meanwhile) is not there; any other read error says nothing about it.
    pub fn reading(record: &BackupRecord, e: &io::Error) -> RestoreError {
        if e.kind() == io::ErrorKind::NotFound {
            RestoreError::Storage(crate::storage::StorageError::NotFound {
                storage: record.storage.clone(),
                location: e.to_string(),
            })
        } else {
            RestoreError::Read {
                id: record.id.clone(),
                storage: record.storage.clone(),
                cause: e.to_string(),
            }
        }
    }

    /// Whether the error is the copy's own (it failed its checks, or its storage could not give
    /// it): nothing was used, and another copy of the same backup may serve instead.
    pub fn is_copy_fault(&self) -> bool {
        matches!(
            self,
            RestoreError::FailedChecks { .. }
                | RestoreError::Read { .. }
                | RestoreError::Storage(_)
                | RestoreError::NoSpace { .. }
                | RestoreError::Spool { .. }
        )
    }

    /// Whether the request itself was wrong (nothing was done): exit code 2.
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            RestoreError::NoSuchBackup { .. }
                | RestoreError::Unknown(_)
                | RestoreError::TargetNotEmpty { .. }
                | RestoreError::AccountsHaveNoDatabase
                | RestoreError::SegmentIsNoDump(_)
                | RestoreError::BadName { .. }
                | RestoreError::Ambiguous(_)
                | RestoreError::NoLatest
                | RestoreError::Declined
                | RestoreError::NotCovered { .. }
                | RestoreError::NoIdentity { .. }
                | RestoreError::ImportFile { .. }
                | RestoreError::ImportNeedsDatabase
        )
    }
}

/// Picks the copy of backup `id` to read: the one on `storage` when named, else the first
/// successful one. Every successful copy of a backup holds the same bytes, so their sizes and
/// SHA-256s must agree; copies that disagree are refused, naming them.
///
/// Fails with `NoSuchBackup` or `CopiesDisagree`.
pub fn select_copy<'a>(
    records: &'a [BackupRecord],
    id: &str,
    storage: Option<&str>,
) -> Result<&'a BackupRecord, RestoreError> {
    let copies: Vec<&BackupRecord> = records
        .iter()
        .filter(|r| r.id == id && r.status == Status::Success && r.key.is_some())
        .collect();
    let none = || RestoreError::NoSuchBackup {
        id: id.to_string(),
        storage: storage.map(String::from),
    };
    let chosen = *copies
        .iter()
        .find(|r| storage.is_none_or(|s| s == r.storage))
        .ok_or_else(none)?;
    let differ: Vec<String> = copies
        .iter()
        .filter(|r| (&r.sha256, r.compressed_bytes) != (&chosen.sha256, chosen.compressed_bytes))
        .map(|r| {
            format!(
                "'{}' has {} bytes with SHA-256 {}",
                r.storage,
                r.compressed_bytes,
                r.sha256.as_deref().unwrap_or("none")
            )
        })
        .collect();
    if !differ.is_empty() {
        return Err(RestoreError::CopiesDisagree {
            id: id.to_string(),
            detail: format!(
                "'{}' has {} bytes with SHA-256 {}, {}",
                chosen.storage,
                chosen.compressed_bytes,
                chosen.sha256.as_deref().unwrap_or("none"),
                differ.join(", ")
            ),
        });
    }
    Ok(chosen)
}

/// Every copy of backup `id` a read may use, in the order to try them: the copy on `storage`
/// alone when one is named; else every successful copy, those whose last verification failed
/// last (the index's order otherwise). The copies must agree, as [`select_copy`] checks.
///
/// Fails as [`select_copy`] does.
pub fn copies_to_try<'a>(
    records: &'a [BackupRecord],
    id: &str,
    storage: Option<&str>,
) -> Result<Vec<&'a BackupRecord>, RestoreError> {
    let pinned = select_copy(records, id, storage)?;
    if storage.is_some() {
        return Ok(vec![pinned]);
    }
    let mut copies: Vec<&BackupRecord> = records
        .iter()
        .filter(|r| r.id == id && r.status == Status::Success && r.key.is_some())
        .collect();
    copies.sort_by_key(|r| r.verification.as_deref().is_some_and(|v| !v.ok));
    Ok(copies)
}

/// Runs `attempt` on each of `copies` in turn until one succeeds, and returns that copy with
/// what `attempt` made of it. A copy that fails its checks or cannot be read is said (with the
/// copy tried next) and the next one is tried: nothing was used before a copy proved whole, so
/// another copy can take its place. Any other error (a signal, the output, the target) ends it.
///
/// Fails with the last copy's error when every copy failed.
pub fn first_good<T>(
    ui: &crate::ui::Ui,
    copies: &[&BackupRecord],
    mut attempt: impl FnMut(&BackupRecord) -> Result<T, RestoreError>,
) -> Result<(BackupRecord, T), RestoreError> {
    let mut copies = copies.iter().peekable();
    while let Some(record) = copies.next() {
        match attempt(record) {
            Ok(t) => return Ok(((*record).clone(), t)),
            Err(e) if e.is_copy_fault() => match copies.peek() {
                Some(next) => ui.warn(&format!(
                    "{e}: reading the copy on storage '{}' instead",
                    next.storage
                )),
                None => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
    Err(RestoreError::NoSuchBackup {
        id: String::new(),
        storage: None,
    })
}

/// A stored copy whose size and SHA-256 have been proven equal to its record, held open for
/// reading from its first byte.
#[derive(Debug)]
pub struct CheckedCopy {
    file: std::fs::File,
    pub size: u64,
    pub sha256: String,
    /// Where the bytes were read from: the storage itself, or a spooled temp copy.
    pub spooled: bool,
    /// The identities that decrypt it, when it is encrypted.
    identities: Option<crate::crypt::Identities>,
}

/// Copies `from` into `to` (when given) while hashing, checking `cancel` between chunks.
/// Reads `from` to its end, hashing it and writing it to `to`.
///
/// Fails with the read error, or with the write error wrapped as `Ok(Err(_))` (the copy is not
/// to blame for it).
fn hash_through(
    from: &mut dyn Read,
    mut to: Option<&mut dyn Write>,
    cancel: &AtomicBool,
) -> Result<Result<(u64, String), io::Error>, io::Error> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut n_total = 0u64;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other("interrupted by a signal"));
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        n_total += n as u64;
        if let Some(t) = to.as_mut() {
            if let Err(e) = t.write_all(&buf[..n]) {
                return Ok(Err(e));
            }
        }
    }
    Ok(Ok((n_total, hex::encode(hasher.finalize()))))
}

/// Why a record that names `bad`, a file not its own, is not read.
pub fn foreign_key_problem(bad: &str) -> String {
    format!("its record names {bad}, which is not a file of this backup: the index was edited or damaged (`sqlguard index rebuild` rebuilds it from the manifests)")
}

impl CheckedCopy {
    /// Reads the copy of `record` on `storage` once, hashing it, and proves it against the
    /// record (see the module docs for where the bytes are kept).
    ///
    /// Fails with `FailedChecks` when size or SHA-256 differ (nothing else has read a byte),
    /// `NoSpace` when the temp directory cannot hold a copy, and storage errors.
    /// `identities` decrypt the copy later ([`CheckedCopy::into_sql`]); callers choose them
    /// with [`decryption_for`] before anything is read.
    pub fn fetch(
        storage: &dyn Storage,
        record: &BackupRecord,
        what: &'static str,
        identities: Option<crate::crypt::Identities>,
        cancel: &AtomicBool,
    ) -> Result<CheckedCopy, RestoreError> {
        let key = record
            .key
            .as_deref()
            .ok_or_else(|| RestoreError::NoSuchBackup {
                id: record.id.clone(),
                storage: Some(record.storage.clone()),
            })?;
        let failed = |problems: String| RestoreError::FailedChecks {
            id: record.id.clone(),
            storage: record.storage.clone(),
            what,
            problems,
        };
        // A record that names a file not its own (an edited or damaged index) is not followed:
        // its key could be another server's or another backup's object (a hostile review's:
        // restore "matched its index" with another server's dump).
        if let Some(bad) = record.foreign_key(&record.server) {
            return Err(failed(foreign_key_problem(bad)));
        }
        // A read that fails (a cut connection, a disk error) proves nothing about the copy.
        let read_err = |e: io::Error| {
            if cancel.load(Ordering::Relaxed) {
                RestoreError::Interrupted
            } else {
                RestoreError::reading(record, &e)
            }
        };
        let (mut file, spooled) = match storage.open_file(key)? {
            Some(f) => (f, false),
            None => (Self::spool_file(storage, record, key)?, true),
        };
        // Writing the temp copy is the temp directory's failure, not the copy's.
        let spool_err = |cause: io::Error| RestoreError::Spool {
            id: record.id.clone(),
            dir: temp_dir().display().to_string(),
            cause,
        };
        let (size, sha256) = if spooled {
            let mut src = storage.get(key)?;
            let mut sink = io::BufWriter::with_capacity(CHUNK, &file);
            let r = hash_through(&mut src, Some(&mut sink), cancel)
                .map_err(read_err)?
                .map_err(spool_err)?;
            sink.flush().map_err(spool_err)?;
            r
        } else {
            hash_through(&mut file, None, cancel)
                .map_err(read_err)?
                .map_err(spool_err)?
        };
        let mut problems = Vec::new();
        if record.sha256.as_deref() != Some(sha256.as_str()) {
            problems.push(format!(
                "SHA-256 {sha256} differs from the index ({}): the stored object changed or is corrupt",
                record.sha256.as_deref().unwrap_or("none")
            ));
        }
        if size != record.compressed_bytes {
            problems.push(format!(
                "the object has {size} bytes, the index says {}",
                record.compressed_bytes
            ));
        }
        if !problems.is_empty() {
            return Err(failed(problems.join("; ")));
        }
        file.rewind().map_err(read_err)?;
        Ok(CheckedCopy {
            file,
            size,
            sha256,
            spooled,
            identities,
        })
    }

    /// An unlinked private file in the temp directory, after checking it has room.
    fn spool_file(
        storage: &dyn Storage,
        record: &BackupRecord,
        key: &str,
    ) -> Result<std::fs::File, RestoreError> {
        let dir = temp_dir();
        let need = storage
            .stat(key)?
            .map(|m| m.size)
            .unwrap_or(record.compressed_bytes);
        if let Ok(st) = rustix::fs::statvfs(&dir) {
            let free = st.f_bavail.saturating_mul(st.f_frsize);
            if free < need {
                return Err(RestoreError::NoSpace {
                    id: record.id.clone(),
                    dir: dir.display().to_string(),
                    free: human_bytes(free),
                    need: human_bytes(need),
                });
            }
        }
        tempfile::tempfile_in(&dir).map_err(|source| RestoreError::Spool {
            id: record.id.clone(),
            dir: dir.display().to_string(),
            cause: source,
        })
    }

    /// The proven bytes, from the first.
    pub fn into_reader(self) -> std::fs::File {
        self.file
    }

    /// The proven bytes decrypted (when `record` says they are encrypted) and decompressed:
    /// the dump's SQL. Decryption authenticates each chunk as it is read; a failure is an
    /// error whose text starts with "age decryption failed".
    ///
    /// Fails when the copy is encrypted and has no identities, or a decoder cannot start.
    pub fn into_sql(self, record: &BackupRecord) -> io::Result<Box<dyn Read + Send>> {
        let compressed = self.into_compressed(record)?;
        compress::decoder(record.compression, compressed)
    }

    /// The proven bytes decrypted when `record` says they are encrypted (still compressed).
    ///
    /// Fails when the copy is encrypted and has no identities.
    pub fn into_compressed(self, record: &BackupRecord) -> io::Result<Box<dyn Read + Send>> {
        let file = io::BufReader::with_capacity(CHUNK, self.file);
        match (&record.encryption, self.identities) {
            (None, _) => Ok(Box::new(file)),
            (Some(_), Some(ids)) => crate::crypt::decryptor(&ids, file)
                .map(|d| Box::new(Described(d)) as Box<dyn Read + Send>)
                .map_err(|e| io::Error::other(e.to_string())),
            (Some(_), None) => Err(io::Error::other(crate::crypt::no_identity_message())),
        }
    }
}

/// The identities to decrypt `record` with: none for a plain copy; for an encrypted one,
/// `identities` when one of them is a recipient of it (as its record says).
///
/// Fails with `NoIdentity` naming what to configure, or which key is missing.
pub fn decryption_for(
    record: &BackupRecord,
    identities: Option<&crate::crypt::Identities>,
) -> Result<Option<crate::crypt::Identities>, RestoreError> {
    let Some(enc) = &record.encryption else {
        return Ok(None);
    };
    let no = |why: String| RestoreError::NoIdentity {
        id: record.id.clone(),
        why,
    };
    let ids = identities.ok_or_else(|| no(crate::crypt::no_identity_message()))?;
    if !ids.can_decrypt(enc) {
        return Err(no(ids.mismatch(enc)));
    }
    Ok(Some(ids.clone()))
}

/// A decrypting reader whose errors say what went wrong in words (truncated, altered).
struct Described<R>(R);

impl<R: Read> Read for Described<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|e| io::Error::other(crate::crypt::describe_read_error(&e)))
    }
}

/// Where checked copies of remote objects are spooled: `$TMPDIR`, else `/tmp`.
pub fn temp_dir() -> PathBuf {
    std::env::temp_dir()
}

/// Where the [`Guard`] sends the statements it allows: each statement's kind (and head) first,
/// then its bytes, then its end. Anything that writes is one client session taking them in
/// order; [`sessions::Dispatcher`] spreads them over several.
pub trait StatementSink {
    /// A statement starts.
    fn begin(&mut self, kind: &Kind, head: &Head) -> io::Result<()>;
    /// Bytes of the current statement, in order.
    fn bytes(&mut self, b: &[u8]) -> io::Result<()>;
    /// The current statement ended.
    fn end(&mut self) -> io::Result<()>;
    /// The dump ended: send what is buffered, and end.
    fn done(&mut self) -> io::Result<()>;
}

impl<W: Write> StatementSink for W {
    fn begin(&mut self, _: &Kind, _: &Head) -> io::Result<()> {
        Ok(())
    }
    fn bytes(&mut self, b: &[u8]) -> io::Result<()> {
        self.write_all(b)
    }
    fn end(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn done(&mut self) -> io::Result<()> {
        Write::flush(self)
    }
}

/// How many chunks of [`CHUNK`] bytes a [`WriteAhead`] holds at most.
const WRITE_AHEAD: usize = 8;

/// Writes to a client's input on a thread of its own, through a queue of at most
/// [`WRITE_AHEAD`] chunks. The client sends a statement and waits for the server's answer
/// before it reads on: without the queue, sqlguard's reading, decoding and checking of the
/// next statement would wait for that answer too and add to the load's time, where with it
/// they run on the other core while the server works.
///
/// The client runs what its input holds when the input ends, even a statement cut short: when
/// the load fails, the writer keeps the input open until `release` is dropped, which the caller
/// does once it has killed the client.
struct WriteAhead {
    out: Vec<u8>,
    tx: Option<SyncSender<Vec<u8>>>,
    writer: Option<JoinHandle<io::Result<()>>>,
}

impl WriteAhead {
    fn start(mut to: impl Write + Send + 'static, release: Receiver<()>) -> io::Result<WriteAhead> {
        let (tx, rx) = sync_channel::<Vec<u8>>(WRITE_AHEAD);
        let writer = crate::threads::spawn("restore-writer", move || {
            // An empty chunk ends the input; the queue closing without one is a failed load.
            for chunk in rx {
                if chunk.is_empty() {
                    return to.flush();
                }
                to.write_all(&chunk)?;
            }
            let _ = release.recv();
            Err(io::Error::other("the load stopped"))
        })?;
        Ok(WriteAhead {
            out: Vec::with_capacity(CHUNK),
            tx: Some(tx),
            writer: Some(writer),
        })
    }

    fn send(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.out, Vec::with_capacity(CHUNK));
        match self.tx.as_ref().map(|tx| tx.send(chunk)) {
            Some(Ok(())) => Ok(()),
            // The writer stopped: its error says why.
            _ => self.stop().and(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the client's input closed",
            ))),
        }
    }

    /// Closes the queue and waits until the writer has written it all: the writer's error.
    fn stop(&mut self) -> io::Result<()> {
        self.tx = None;
        match self.writer.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(io::Error::other("the restore's writer thread panicked")),
        }
    }
}

impl StatementSink for WriteAhead {
    fn begin(&mut self, _: &Kind, _: &Head) -> io::Result<()> {
        Ok(())
    }
    fn bytes(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.extend_from_slice(b);
        if self.out.len() >= CHUNK {
            self.send()?;
        }
        Ok(())
    }
    fn end(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Sends the rest, and returns once the client has taken everything and its input is
    /// closed.
    fn done(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.send()?;
        }
        self.send()?;
        self.stop()
    }
}

/// Counts the decoded SQL, keeps its tail, and runs it through the statement policy into the
/// client, statement by statement: a statement's first bytes wait until its head is known, then
/// it streams. Memory stays bounded by the head (and by [`MAX_PENDING`] of leading comments).
pub struct Guard<W: StatementSink> {
    inner: W,
    splitter: Splitter,
    policy: Policy,
    pending: Vec<u8>,
    mode: Mode,
    /// The kind and head of an `ALTER DATABASE` held to be retargeted.
    held: Option<(Kind, Head)>,
    /// The rows of the `INSERT` being sent, read as they go (see [`InsertCheck`]).
    insert_check: Option<InsertCheck>,
    /// Tables a trigger was created on, and views: a dump loads a table's rows before its
    /// triggers and views, so an `INSERT` into one of them could only be there to fire a
    /// trigger or to write through a view (maybe into another database's table).
    triggered: std::collections::HashSet<String>,
    /// Tables of the target with triggers, and its views, from before the restore.
    existing: sqlscan::Reached,
    /// A function or procedure was created: a dump creates them after all rows, and nothing
    /// after them may call one (a body can reach any database).
    routines: bool,
    /// Tables whose CREATE TABLE draws a value from a sequence (a `nextval` default): the
    /// dump's LOCK TABLES of one is left out (see Mode::Whole).
    sequenced: std::collections::HashSet<String>,
    /// The client's delimiter, which ends a statement sqlguard writes anew. When it is not
    /// `;`, the client sends the text up to it as one query, and the server runs each statement
    /// in it: every statement but an `INSERT` (whose check reads past a `;`) is then held whole
    /// and must be one statement to the server ([`sqlscan::statements_refusal`]).
    delimiter: Vec<u8>,
    /// Plain SQL bytes seen.
    pub count: u64,
    /// Statements sent.
    pub statements: u64,
    /// An accounts backup: the existing accounts whose statements were left out, `user@host`.
    pub accounts_left: Vec<String>,
    tail: Vec<u8>,
}

impl<W: StatementSink> std::fmt::Debug for Guard<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Guard({} statements)", self.statements)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The statement's head is not known yet: hold its bytes.
    Holding,
    /// Allowed: bytes go through.
    Passing,
    /// An `ALTER DATABASE` of the dump's own database: held whole, then aimed at the target.
    Retarget,
    /// A `CREATE EVENT` to create disabled: held whole, then rewritten.
    Event,
    /// A statement [`sqlscan::read_whole`] names: held whole, checked, then sent.
    Whole,
    /// Left out (the policy's `Skip`): its bytes go nowhere.
    Skipping,
}

/// Bytes of a statement that may wait for its head (leading comments, mostly).
pub const MAX_PENDING: usize = 16 << 20;

fn refused(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("refused: {why}"))
}

impl<W: StatementSink> Guard<W> {
    /// A guard in front of `inner`.
    pub fn new(inner: W, policy: Policy) -> Guard<W> {
        Guard {
            inner,
            splitter: match policy.server {
                Some(s) => Splitter::for_server(s),
                None => Splitter::new(),
            },
            existing: policy.reached.clone(),
            policy,
            pending: Vec::new(),
            mode: Mode::Holding,
            held: None,
            triggered: std::collections::HashSet::new(),
            routines: false,
            sequenced: std::collections::HashSet::new(),
            delimiter: b";".to_vec(),
            insert_check: None,
            count: 0,
            statements: 0,
            accounts_left: Vec::new(),
            tail: Vec::with_capacity(2 * TAIL),
        }
    }

    /// The last bytes of the SQL seen, for the trailer check.
    pub fn tail(&self) -> &[u8] {
        &self.tail
    }

    /// Ends the stream: the last statement (usually the trailer comment) goes through.
    ///
    /// Fails when it is refused or cannot be written.
    pub fn finish(mut self) -> io::Result<W> {
        let mut splitter = std::mem::take(&mut self.splitter);
        splitter.finish(&mut |e| self.handle(e))?;
        self.inner.done()?;
        Ok(self.inner)
    }

    fn handle(&mut self, e: Event) -> io::Result<()> {
        match e {
            Event::Bytes(b) => match self.mode {
                Mode::Passing => {
                    if let Some(check) = self.insert_check.as_mut() {
                        check.feed(b).map_err(refused)?;
                    }
                    self.inner.bytes(b)?
                }
                Mode::Skipping => {}
                Mode::Holding | Mode::Retarget | Mode::Event | Mode::Whole => {
                    if self.pending.len() + b.len() > MAX_PENDING {
                        return Err(refused(format!(
                            "a statement with more than {} {}",
                            human_bytes(MAX_PENDING as u64),
                            if self.mode == Mode::Holding {
                                "before any code"
                            } else {
                                "that sqlguard reads whole before it sends it (a CREATE TABLE or SEQUENCE, a SET, a LOCK TABLES, a CREATE EVENT or an ALTER DATABASE)"
                            }
                        )));
                    }
                    self.pending.extend_from_slice(b);
                }
            },
            Event::Head(h) => {
                let kind = sqlscan::classify(h);
                if let Some(d) = &h.delimiter {
                    self.delimiter = d.clone();
                }
                self.check_order(&kind, h)?;
                let event = matches!(&kind, Kind::Object { verb, object, .. } if verb == "CREATE" && object == "EVENT");
                match self.policy.check(&kind) {
                    Verdict::Allow if event && self.policy.disable_events => {
                        self.held = Some((kind, h.clone()));
                        self.mode = Mode::Event;
                    }
                    // What the statement reaches can stand past its head: it is read whole
                    // first. So is an accounts backup's statement that changes an account,
                    // which is left out when the account was there before the restore.
                    Verdict::Allow
                        if sqlscan::read_whole(&kind)
                            || (self.policy.accounts && sqlscan::accounts_read_whole(&kind))
                            || drops_a_function(&kind).is_some()
                            || (self.delimiter != b";"
                                && !matches!(kind, Kind::Insert { .. } | Kind::Delimiter)) =>
                    {
                        self.held = Some((kind, h.clone()));
                        self.mode = Mode::Whole;
                    }
                    Verdict::Allow => {
                        if matches!(kind, Kind::Insert { .. }) {
                            let mut check = InsertCheck::new(h.no_backslash_escapes, h.code_from);
                            check.feed(&self.pending).map_err(refused)?;
                            self.insert_check = Some(check);
                        }
                        self.inner.begin(&kind, h)?;
                        self.inner.bytes(&self.pending)?;
                        self.pending.clear();
                        self.mode = Mode::Passing;
                    }
                    Verdict::RetargetDatabase => {
                        self.held = Some((kind, h.clone()));
                        self.mode = Mode::Retarget;
                    }
                    Verdict::Skip => {
                        self.pending.clear();
                        self.mode = Mode::Skipping;
                    }
                    Verdict::Refuse(why) => {
                        let start = sqlscan::excerpt(&h.text, 12);
                        return Err(refused(format!("{why}: {start}")));
                    }
                }
            }
            Event::End => {
                if self.delimiter != b";"
                    && matches!(self.mode, Mode::Whole | Mode::Event | Mode::Retarget)
                {
                    if let Some((kind, h)) = &self.held {
                        sqlscan::statements_refusal(
                            kind,
                            &self.pending,
                            !h.no_backslash_escapes,
                            self.policy.server,
                        )
                        .map_err(|why| {
                            refused(format!("{why}: {}", sqlscan::excerpt(&h.text, 12)))
                        })?;
                    }
                }
                if let (true, Mode::Whole, Some((kind, h))) =
                    (self.policy.accounts, self.mode, &self.held)
                {
                    if let Some(why) = sqlscan::accounts_statement_refusal(kind, &self.pending) {
                        return Err(refused(format!("{why}: {}", sqlscan::excerpt(&h.text, 12))));
                    }
                }
                let left_alone = self.mode == Mode::Whole
                    && self.policy.accounts
                    && self
                        .held
                        .as_ref()
                        .is_some_and(|(k, _)| sqlscan::changes_an_account(k))
                    && self.leaves_an_account_as_it_is()?;
                let held = match self.mode {
                    Mode::Retarget => {
                        let code_from = self.held.as_ref().map_or(0, |(_, h)| h.code_from);
                        Some(
                            retarget(
                                &self.pending,
                                code_from,
                                &self.policy.source,
                                &self.policy.target,
                            )
                            .map_err(refused)?,
                        )
                    }
                    Mode::Event => {
                        let nbe = self.held.as_ref().is_some_and(|(_, h)| h.no_backslash_escapes);
                        Some(
                            sqlscan::event_disabled(&self.pending, self.policy.server, nbe)
                                .map_err(|why| {
                                    refused(format!("{why}: cannot create it disabled"))
                                })?,
                        )
                    }
                    Mode::Whole if left_alone => {
                        self.held = None;
                        self.mode = Mode::Skipping;
                        None
                    }
                    // A dump's LOCK TABLES of a table whose default draws from a sequence, once
                    // checked, is left out (as the parallel sessions leave out every one): under
                    // it the table's rows cannot be loaded (MariaDB: "Table 's' was not locked
                    // with LOCK TABLES", the sequence being left unlocked), and what it keeps
                    // out is other sessions, from a database the restore is writing anyway.
                    // Other tables keep theirs, which makes InnoDB's load cheaper.
                    Mode::Whole
                        if matches!(self.held, Some((Kind::Lock, _)))
                            && sqlscan::names_any(&self.pending, &self.sequenced) =>
                    {
                        self.check_whole()?;
                        self.held = None;
                        self.mode = Mode::Skipping;
                        None
                    }
                    Mode::Whole => {
                        if let Some((Kind::CreateTable { table }, h)) = &self.held {
                            if sqlscan::uses_sequences(
                                &self.pending,
                                !h.no_backslash_escapes,
                                self.policy.server,
                            ) {
                                self.sequenced.insert(table.name.clone());
                            }
                            if self.policy.source != self.policy.target {
                                // Its sequence defaults name the dump's database: aimed at
                                // the target's copy of the sequence (and then checked).
                                self.pending = sqlscan::sequences_retargeted(
                                    &self.pending,
                                    !h.no_backslash_escapes,
                                    self.policy.server,
                                    (&self.policy.source, &self.policy.target),
                                );
                            }
                        }
                        self.check_whole()?;
                        let pending = std::mem::take(&mut self.pending);
                        Some(match self.held.as_ref().and_then(|(k, h)| {
                            drops_a_function(k).map(|name| (name, h))
                        }) {
                            // An unqualified DROP FUNCTION drops a server-wide function (a
                            // UDF) of that name when there is one: it is aimed at the
                            // target's stored function only. classify has read the statement
                            // whole (one name, nothing after it), so it is written anew.
                            Some((name, h)) => {
                                let if_exists = String::from_utf8_lossy(&h.text)
                                    .to_ascii_uppercase()
                                    .contains(" IF EXISTS ");
                                let mut text = format!(
                                    "DROP FUNCTION {}{}.{}",
                                    if if_exists { "IF EXISTS " } else { "" },
                                    mysql::quote_ident(&self.policy.target),
                                    mysql::quote_ident(name)
                                )
                                .into_bytes();
                                text.extend_from_slice(&self.delimiter);
                                text
                            }
                            None => pending,
                        })
                    }
                    _ => None,
                };
                if let (Some(text), Some((kind, head))) = (held, self.held.take()) {
                    self.inner.begin(&kind, &head)?;
                    self.inner.bytes(&text)?;
                }
                if !matches!(self.mode, Mode::Holding | Mode::Skipping) {
                    self.inner.end()?;
                }

                self.pending.clear();
                self.mode = Mode::Holding;
                self.insert_check = None;
                self.statements += 1;
            }
            Event::Unfollowable(why) => {
                return Err(refused(format!(
                    "{why}: the statements after it could be read otherwise than the client reads them"
                )))
            }
            Event::ClientCommand(_) => {
                return Err(refused(
                    "a client command (a backslash outside quotes, e.g. \\! to run a shell), which a dump never holds".into(),
                ))
            }
        }
        Ok(())
    }
}

impl<W: StatementSink> Guard<W> {
    /// The whole statement held (a CREATE TABLE or SEQUENCE, a SET, a LOCK TABLES, …) checked
    /// for what it reaches past its head ([`sqlscan::whole_statement_refusal`]).
    fn check_whole(&self) -> io::Result<()> {
        let Some((kind, h)) = &self.held else {
            return Ok(());
        };
        sqlscan::whole_statement_refusal(
            kind,
            &self.pending,
            !h.no_backslash_escapes,
            self.policy.server,
            (&self.policy.source, &self.policy.target),
            self.policy.no_binlog,
        )
        .map_err(|why| refused(format!("{why}: {}", sqlscan::excerpt(&h.text, 12))))
    }

    /// Whether the account statement held whole changes an account the server had before the
    /// restore, which the restore leaves as it is (its password, limits and grants): a dump's
    /// `GRANT … IDENTIFIED BY PASSWORD` would set them back to the backup's. Notes the account.
    ///
    /// Fails, refusing the statement, when no single account can be read from it.
    fn leaves_an_account_as_it_is(&mut self) -> io::Result<bool> {
        let account = sqlscan::account_changed(&self.pending).map_err(|why| {
            refused(format!(
                "an account statement whose account sqlguard cannot read ({why})"
            ))
        })?;
        let Some((user, host)) = account else {
            return Ok(false);
        };
        let existing = self
            .policy
            .existing_accounts
            .iter()
            .any(|(u, h)| *u == user && h.eq_ignore_ascii_case(&host));
        let shown = if host.is_empty() {
            user
        } else {
            format!("{user}@{host}")
        };
        if existing && !self.accounts_left.contains(&shown) {
            self.accounts_left.push(shown);
        }
        Ok(existing)
    }

    /// Trigger and routine bodies are not read (they may rightly reach other databases), so
    /// nothing of the dump may run one: rows go in before their table's triggers and before
    /// any function or procedure, as a dump writes them, and no statement after a routine
    /// calls a function (a `SET` with parentheses, a sequence's `SELECT`/`DO`).
    ///
    /// Fails, refusing the statement, when it would run a trigger or a routine.
    fn check_order(&mut self, kind: &Kind, h: &Head) -> io::Result<()> {
        match kind {
            Kind::Object { verb, object, .. } if verb == "CREATE" => match object.as_str() {
                "TRIGGER" => match sqlscan::trigger_table(h) {
                    Some(t) => {
                        self.triggered.insert(t.name);
                    }
                    None => {
                        return Err(refused(
                            "a CREATE TRIGGER whose table sqlguard cannot read".into(),
                        ))
                    }
                },
                "FUNCTION" | "PROCEDURE" => self.routines = true,
                // A view may be an updatable window on another database's table.
                "VIEW" => {
                    if let Kind::Object { name, .. } = kind {
                        self.triggered.insert(name.name.clone());
                    }
                }
                _ => {}
            },
            Kind::Insert { table } if self.triggered.contains(&table.name) => {
                return Err(refused(format!(
                    "rows for `{}` after a trigger on it or a view of that name, which they would fire or write through (a dump loads rows before triggers and views)",
                    table.name
                )))
            }
            Kind::Insert { table } if self.existing.reaching.contains(&table.name) => {
                return Err(refused(format!(
                    "rows for `{}`, a table the target database already holds that writes into or draws from another database (a MERGE, FEDERATED, CONNECT or SPIDER table, a column whose default names another database, or the parent of another database's foreign key) (restore into an empty database, or drop it first)",
                    table.name
                )));
            }
            Kind::Insert { table }
                if self.existing.triggered.contains(&table.name)
                    || self.existing.views.contains(&table.name) =>
            {
                let jobs = if self.existing.views_dropped_after_rows {
                    "; several sessions drop views only after the rows, so a DROP VIEW in the dump does not help: restore with --jobs 1"
                } else {
                    ""
                };
                return Err(refused(format!(
                    "rows for `{}`, which already has a trigger or is a view in the target database, which they would fire or write through (restore into an empty database, or drop it first{jobs})",
                    table.name
                )));
            }
            // Dropping a table drops its triggers; a view goes with DROP VIEW only.
            Kind::DropTable { table } => {
                self.existing.triggered.retain(|t| *t != table.name);
                self.existing.reaching.retain(|t| *t != table.name);
            }
            Kind::Object { verb, object, name }
                if verb == "DROP" && object == "VIEW" && !self.existing.views_dropped_after_rows =>
            {
                self.existing.views.retain(|v| *v != name.name)
            }
            Kind::Session
                if self.routines
                    && !(h.text.starts_with(b"COMMIT")
                        || h.text.starts_with(b"ROLLBACK")
                        || h.text.starts_with(b"BEGIN")
                        || h.text.starts_with(b"START")) =>
            {
                return Err(refused(
                    "a statement that could call a function, after the dump's functions and procedures (a dump creates them last)"
                        .into(),
                ))
            }
            Kind::Insert { .. } | Kind::CreateTable { .. } if self.routines => {
                return Err(refused(
                    "a statement that could call a function, after the dump's functions and procedures (a dump creates them last)"
                        .into(),
                ))
            }
            Kind::Set if self.routines && h.text.contains(&b'(') => {
                return Err(refused(
                    "a SET that could call a function, after the dump's functions and procedures".into(),
                ))
            }
            _ => {}
        }
        Ok(())
    }
}

/// Reads the bytes of an `INSERT` as a dump writes it, rows of literals only: quoted strings
/// (with a `_charset`, `x` or `b` before them), numbers, `NULL`, `TRUE`, `FALSE`. A function
/// call, a variable (`@v := 1`), a qualified name, a subquery or an `ON DUPLICATE KEY UPDATE`
/// could reach another database or a server setting from inside an allowed statement, past
/// the head the guard classifies: any of them is refused.
#[derive(Debug)]
struct InsertCheck {
    no_backslash_escapes: bool,
    quote: Option<u8>,
    escape: bool,
    /// A word is being read, and whether it is a number (`12`, `1.5e`, `0x1f`).
    in_word: bool,
    number: bool,
    /// The part of the number being read, and how many bytes that part has so far.
    num: Num,
    num_part: usize,
    /// The word being read, when it is no number (its first 64 bytes).
    word: Vec<u8>,
    /// A `(` right after the last word would call it: it was no `VALUES` and no table name
    /// (whose `(` opens rows or the column list). The word stays in `word` until the next.
    call: bool,
    /// The next word is the table's name (after `INTO`).
    table_next: bool,
    /// `VALUES` was read: the statement's own words are behind.
    rows: bool,
    /// In the column list (the one `(` before `VALUES`): a bare word there is a column's
    /// name (`--skip-quote-names`, and `row_start` of `--dump-history`).
    columns: bool,
    /// The column list was read: another `(` before `VALUES` would open a subquery
    /// (`INSERT INTO t (a) (SELECT …)`).
    columns_read: bool,
    /// Leading bytes still to pass over: the comments before the statement's code.
    skip: usize,
    /// The last write ended with a `-` outside quotes.
    dash: bool,
}

/// The parts of a number as the server reads them: a word that starts with a digit and goes on
/// otherwise (`1db`, `1e`, `0xg`) is a name to it, which could be qualified or called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Num {
    Int,
    Frac,
    Exp,
    Hex,
    Bin,
}

/// What a byte outside quotes is to [`InsertCheck`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Byte {
    /// Between values: `,`, `)`, blanks, signs, `;`, … (a `(` after a word is a call).
    Plain,
    Open,
    Quote,
    Digit,
    /// A letter, `_` or `$`: a word's first byte.
    Letter,
    /// `)`: ends a row, or the column list.
    Close,
    /// `@`, `:` or `.` outside a number: a variable or a qualified name.
    Refused,
    /// `#` or `/`: a comment may start here (and a dump writes neither between values).
    Comment,
    /// `-`: a sign, or with another a comment.
    Dash,
}

const fn byte_classes() -> [Byte; 256] {
    let mut t = [Byte::Plain; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_digit() {
            Byte::Digit
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c >= 0x80 {
            // The server reads a byte of a multi-byte character as part of a name.
            Byte::Letter
        } else {
            match c {
                b'\'' | b'"' | b'`' => Byte::Quote,
                b'(' => Byte::Open,
                b')' => Byte::Close,
                b'@' | b':' | b'.' => Byte::Refused,
                b'#' | b'/' => Byte::Comment,
                b'-' => Byte::Dash,
                _ => Byte::Plain,
            }
        };
        b += 1;
    }
    t
}
static BYTE: [Byte; 256] = byte_classes();

/// Why an `INSERT` holding `1db`, `1e` or `0xg` is refused: to the server, a name.
const INSERT_DIGIT_NAME: &str =
    "an INSERT holding a name that starts with a digit, where a dump writes only values";

/// Why an `INSERT` with a comment after its start is refused.
const INSERT_COMMENT: &str = "an INSERT with a comment between its values, where a dump writes none (a comment's quotes could hide values from this check)";

impl InsertCheck {
    /// A check of the statement whose code starts after `skip` bytes of whitespace and comments
    /// ([`Head::code_from`]).
    fn new(no_backslash_escapes: bool, skip: usize) -> InsertCheck {
        InsertCheck {
            no_backslash_escapes,
            quote: None,
            escape: false,
            in_word: false,
            number: false,
            num: Num::Int,
            num_part: 0,
            word: Vec::with_capacity(64),
            call: false,
            table_next: false,
            rows: false,
            columns: false,
            columns_read: false,
            skip,
            dash: false,
        }
    }

    /// Fails naming what is no literal. It reads every byte of every row, so it takes runs
    /// (a quote's body, a word, the bytes between values) at a time and allocates nothing.
    fn feed(&mut self, bytes: &[u8]) -> Result<(), String> {
        let skipped = self.skip.min(bytes.len());
        self.skip -= skipped;
        let bytes = &bytes[skipped..];
        if self.dash && !bytes.is_empty() {
            self.dash = false;
            if bytes[0] == b'-' {
                return Err(INSERT_COMMENT.into());
            }
        }
        let mut i = 0;
        while i < bytes.len() {
            if let Some(q) = self.quote {
                if std::mem::take(&mut self.escape) {
                    i += 1;
                    continue;
                }
                let escapes = q != b'`' && !self.no_backslash_escapes;
                let rest = &bytes[i..];
                // Most values are short: a plain look at the first bytes beats a memchr call.
                let found = match rest
                    .iter()
                    .take(16)
                    .position(|&b| b == q || (b == b'\\' && escapes))
                {
                    Some(k) => Some(k),
                    None if rest.len() <= 16 => None,
                    None if escapes => memchr::memchr2(q, b'\\', &rest[16..]).map(|k| k + 16),
                    None => memchr::memchr(q, &rest[16..]).map(|k| k + 16),
                };
                match found {
                    Some(k) if rest[k] == q => self.quote = None,
                    Some(_) => self.escape = true,
                    None => return Ok(()),
                }
                i += found.map_or(rest.len(), |k| k + 1);
                continue;
            }
            let mut ended = false;
            if self.in_word {
                let start = i;
                let number = self.number;
                if number {
                    while i < bytes.len() && self.number_goes_on(bytes[i])? {
                        i += 1;
                    }
                } else {
                    while i < bytes.len()
                        && matches!(BYTE[usize::from(bytes[i])], Byte::Digit | Byte::Letter)
                    {
                        i += 1;
                    }
                }
                if !number {
                    let room = 64usize.saturating_sub(self.word.len());
                    self.word
                        .extend_from_slice(&bytes[start..i.min(start + room)]);
                }
                if i == bytes.len() {
                    // The word may go on in the next write.
                    break;
                }
                self.in_word = false;
                ended = true;
                self.end_word(bytes[i])?;
            } else {
                while i < bytes.len() && BYTE[usize::from(bytes[i])] == Byte::Plain {
                    i += 1;
                }
                if i == bytes.len() {
                    break;
                }
            }
            let b = bytes[i];
            i += 1;
            match BYTE[usize::from(b)] {
                Byte::Plain => {}
                // To the server, a name in backquotes among the values is a column or, with a `(`
                // after it, a function (`load_file`, or one the target already holds).
                Byte::Quote if b == b'`' && self.rows => {
                    return Err("an INSERT whose values hold a name in backquotes, where a dump writes only values".into())
                }
                Byte::Quote => {
                    // A quoted table name is the table's name.
                    self.table_next = false;
                    self.quote = Some(b);
                }
                Byte::Dash => match bytes.get(i) {
                    Some(b'-') => return Err(INSERT_COMMENT.into()),
                    Some(_) => {}
                    None => self.dash = true,
                },
                Byte::Comment => return Err(INSERT_COMMENT.into()),
                Byte::Digit | Byte::Letter => {
                    self.in_word = true;
                    self.number = b.is_ascii_digit();
                    self.word.clear();
                    self.word.push(b);
                    (self.num, self.num_part) = (Num::Int, 1);
                }
                Byte::Open if ended && self.call => {
                    let call = match self.number {
                        true => "a number".into(),
                        false => String::from_utf8_lossy(&self.word).to_lowercase(),
                    };
                    return Err(format!(
                        "an INSERT that calls {call}(…), where a dump writes only values"
                    ));
                }
                Byte::Open if !self.rows => {
                    // Names only in the column list, and one list: a `(` in it or after it
                    // would open an expression or a subquery, where bare words run.
                    if self.columns || self.columns_read {
                        return Err("an INSERT with a parenthesis inside or after its column list, where a dump writes names only".into());
                    }
                    self.columns = true;
                }
                Byte::Open => {}
                Byte::Close if self.columns => {
                    self.columns = false;
                    self.columns_read = true;
                }
                Byte::Close => {}
                Byte::Refused => {
                    return Err("an INSERT whose values hold a variable or a qualified name, where a dump writes only values".into())
                }
            }
        }
        Ok(())
    }

    /// Whether `c` goes on the number being read; fails when it makes the word a name.
    fn number_goes_on(&mut self, c: u8) -> Result<bool, String> {
        let name = || Err(INSERT_DIGIT_NAME.to_string());
        if !(matches!(BYTE[usize::from(c)], Byte::Digit | Byte::Letter) || c == b'.') {
            return Ok(false);
        }
        let first_zero = self.num_part == 1 && self.word.first() == Some(&b'0');
        let was = self.num;
        self.num = match (self.num, c) {
            (Num::Bin, b'0' | b'1') => Num::Bin,
            (Num::Bin, _) => return name(),
            (Num::Hex, c) if c.is_ascii_hexdigit() => Num::Hex,
            (Num::Int | Num::Frac | Num::Exp, c) if c.is_ascii_digit() => self.num,
            (Num::Int, b'x') if first_zero => Num::Hex,
            (Num::Int, b'b') if first_zero => Num::Bin,
            (Num::Int, b'.') => Num::Frac,
            (Num::Int | Num::Frac, b'e' | b'E') => Num::Exp,
            _ => return name(),
        };
        // A new part starts empty: `0x`, `1e` and `1.` are not yet numbers of their kind.
        self.num_part = if self.num == was {
            self.num_part + 1
        } else {
            0
        };
        Ok(true)
    }

    /// The word being read ended at `next`.
    fn end_word(&mut self, next: u8) -> Result<(), String> {
        let before_quote = BYTE[usize::from(next)] == Byte::Quote;
        let table = std::mem::take(&mut self.table_next);
        if self.number {
            // `0x`, `0b` and `1e` with nothing after are names, not numbers (`1e-5` and
            // `1e+5` go on after their sign).
            let empty =
                self.num_part == 0 && !(self.num == Num::Exp && matches!(next, b'-' | b'+'));
            if empty && self.num != Num::Frac {
                return Err(INSERT_DIGIT_NAME.into());
            }
            self.call = true;
            return Ok(());
        }
        let mut upper = [0u8; 8];
        let word = match self.word.get(..8.min(self.word.len())) {
            Some(w) if w.len() == self.word.len() => {
                upper[..w.len()].copy_from_slice(w);
                upper.make_ascii_uppercase();
                &upper[..w.len()]
            }
            // Longer than any word allowed here.
            _ => &[][..],
        };
        let allowed = match word {
            // A string's character set (`_binary '…'`), or `x'…'`, `b'…'`, `N'…'`.
            b"_BINARY" | b"_UTF8MB4" | b"_UTF8MB3" | b"_UTF8" | b"_LATIN1" | b"_ASCII" => true,
            b"X" | b"B" | b"N" => before_quote,
            b"INSERT" | b"REPLACE" | b"DELAYED" | b"INTO" | b"IGNORE" | b"VALUES" | b"VALUE" => {
                !self.rows
            }
            b"NULL" | b"TRUE" | b"FALSE" => true,
            _ => false,
        } || (self.columns && !self.rows); // a column's name, bare (a `(` after it is refused)
        if !(allowed || table) {
            return Err(format!(
                "an INSERT holding `{}`, where a dump writes only values",
                String::from_utf8_lossy(&self.word).to_lowercase()
            ));
        }
        self.call = !(table || matches!(word, b"VALUES" | b"VALUE"));
        self.table_next = word == b"INTO";
        self.rows |= matches!(word, b"VALUES" | b"VALUE");
        Ok(())
    }
}

/// The name an unqualified `DROP FUNCTION` drops, if `kind` is one.
fn drops_a_function(kind: &Kind) -> Option<&str> {
    match kind {
        Kind::Object { verb, object, name }
            if verb == "DROP" && object == "FUNCTION" && name.database.is_none() =>
        {
            Some(&name.name)
        }
        _ => None,
    }
}

/// `ALTER DATABASE <source> …` aimed at `target` instead, in the form a dump writes it: the
/// source's name, quoted or bare, right after `ALTER DATABASE ` (or `SCHEMA `) at the start of
/// the statement's code (`code_from`: see [`Head::code_from`]). That name, and only it, is
/// replaced. Any other form is refused: the same name elsewhere (in a comment, say) is not the
/// one the server alters.
fn retarget(
    statement: &[u8],
    code_from: usize,
    source: &str,
    target: &str,
) -> Result<Vec<u8>, String> {
    let lead = statement.get(code_from..).unwrap_or_default();
    let at = code_from + (lead.len() - lead.trim_ascii_start().len());
    let code = &statement[at..];
    let verb = [&b"ALTER DATABASE "[..], b"ALTER SCHEMA "]
        .into_iter()
        .find(|v| {
            code.get(..v.len())
                .is_some_and(|c| c.eq_ignore_ascii_case(v))
        });
    let quoted = mysql::quote_ident(source);
    let name = verb.and_then(|v| {
        let rest = &code[v.len()..];
        [quoted.as_bytes(), source.as_bytes()]
            .into_iter()
            .find(|n| {
                rest.starts_with(n)
                    && rest
                        .get(n.len())
                        .is_some_and(|b| b.is_ascii_whitespace() || *b == b';')
            })
            .map(|n| (at + v.len(), at + v.len() + n.len()))
    });
    let Some((start, end)) = name else {
        return Err(format!(
            "an ALTER DATABASE of the dump's own database (`{source}`) that is not written as a dump writes it (its name right after ALTER DATABASE), so that it cannot be aimed at `{target}` alone"
        ));
    };
    let mut out = statement[..start].to_vec();
    out.extend_from_slice(mysql::quote_ident(target).as_bytes());
    out.extend_from_slice(&statement[end..]);
    Ok(out)
}

impl<W: StatementSink> Write for Guard<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.count += buf.len() as u64;
        if buf.len() >= TAIL {
            self.tail.clear();
            self.tail.extend_from_slice(&buf[buf.len() - TAIL..]);
        } else {
            self.tail.extend_from_slice(buf);
            if self.tail.len() > 2 * TAIL {
                self.tail.drain(..self.tail.len() - TAIL);
            }
        }
        let mut splitter = std::mem::take(&mut self.splitter);
        let r = splitter.feed(buf, &mut |e| self.handle(e));
        self.splitter = splitter;
        r.map(|()| buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How the client is kept from acting outside the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientSandbox {
    /// MariaDB's `--sandbox`: no `\!`, `source`, `tee` or other client commands.
    Sandbox,
    /// MySQL's `--system-command=OFF`.
    NoSystemCommand,
    /// Neither: sqlguard's own statement check is the only guard.
    None,
}

/// A connection to a server for restores, with its restore account: its option file and client.
pub struct Target {
    pub server: ServerSettings,
    defaults: DefaultsFile,
    client: mysql::ToolInfo,
    sandbox: ClientSandbox,
    opts: LoadOptions,
    /// Its version, which decides the executable comments it runs (`None`: not reached yet).
    version: Option<sqlscan::ServerVersion>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({})", self.server.name)
    }
}

/// What loading a backup did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Loaded {
    pub raw_bytes: u64,
    pub statements: u64,
    /// Client sessions that loaded it.
    pub sessions: usize,
    /// Tables whose rows were spread over the sessions (with several).
    pub spread: Vec<String>,
    /// An accounts backup: the accounts the server already had, left as they were
    /// (`user@host`; a role by its name).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accounts_left: Vec<String>,
}

impl Target {
    /// Prepares the client for `server`.
    ///
    /// Fails when the option file cannot be written or no client tool runs.
    pub fn new(server: &ServerSettings, opts: LoadOptions) -> Result<Target, MysqlError> {
        let server = server.for_restore();
        let defaults = DefaultsFile::create(&server)?;
        let client = mysql::client_tool(&server)?;
        let help = mysql::tool_help(&client);
        let sandbox = if help.contains("--sandbox") {
            ClientSandbox::Sandbox
        } else if help.contains("--system-command") {
            ClientSandbox::NoSystemCommand
        } else {
            ClientSandbox::None
        };
        // A server that cannot be reached now fails the first statement, with its own error.
        let version = mysql::server_info(&server, &client, &defaults)
            .ok()
            .map(|info| sqlscan::ServerVersion {
                mariadb: info.flavor == mysql::Flavor::MariaDb,
                number: info.version.0 * 10_000 + info.version.1 * 100 + info.version.2,
            });
        Ok(Target {
            server,
            defaults,
            client,
            sandbox,
            opts,
            version,
        })
    }

    /// How the client is sandboxed.
    pub fn sandbox(&self) -> ClientSandbox {
        self.sandbox
    }

    /// Tables, views, routines and events in `database`, `None` when it does not exist.
    pub fn table_count(&self, database: &str) -> Result<Option<u64>, MysqlError> {
        mysql::table_count(&self.server, &self.client, &self.defaults, database)
    }

    /// The code of `database` that a replayed statement runs: its triggers and stored
    /// routines, each named (``trigger `t` ``, ``function `f` ``) with its body.
    pub fn code_bodies(&self, database: &str) -> Result<Vec<(String, String)>, MysqlError> {
        let db = mysql::quote_literal(database);
        let rows = mysql::query(
            &self.server,
            &self.client,
            &self.defaults,
            "reading the triggers and routines",
            &format!(
                "SELECT CONCAT('trigger `', TRIGGER_NAME, '`'), ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE BINARY TRIGGER_SCHEMA = BINARY {db} \
                 UNION ALL SELECT CONCAT(LOWER(ROUTINE_TYPE), ' `', ROUTINE_NAME, '`'), COALESCE(ROUTINE_DEFINITION, '') FROM information_schema.ROUTINES WHERE BINARY ROUTINE_SCHEMA = BINARY {db}"
            ),
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|mut r| {
                let body = r.pop()?;
                Some((r.pop()?, body))
            })
            .collect())
    }

    /// The server's accounts and roles, as `(user, host)` (a role's host is empty).
    fn accounts(&self) -> Result<Vec<(String, String)>, MysqlError> {
        let rows = mysql::query(
            &self.server,
            &self.client,
            &self.defaults,
            "reading the server's accounts",
            "SELECT HEX(User), HEX(Host) FROM mysql.user",
        )?;
        let text =
            |h: &str| String::from_utf8_lossy(&hex::decode(h).unwrap_or_default()).into_owned();
        Ok(rows
            .iter()
            .filter_map(|r| match &r[..] {
                [user, host] => Some((text(user), text(host))),
                [user] => Some((text(user), String::new())),
                _ => None,
            })
            .collect())
    }

    /// The tables of `database` that fire a trigger, its views, and its tables that reach
    /// another database by themselves: what a row inserted there would run or write (a restore
    /// with `--force` into a database that has them). A table reaches elsewhere through its
    /// engine (MERGE over other tables, FEDERATED, CONNECT, SPIDER), through a column's
    /// default or generated expression that names another database (`NEXTVAL(other.s)`), or
    /// as the parent of another database's foreign key (a `REPLACE` of its rows cascades).
    fn reached(&self, database: &str) -> Result<sqlscan::Reached, MysqlError> {
        let db = mysql::quote_literal(database);
        let rows = mysql::query(
            &self.server,
            &self.client,
            &self.defaults,
            "reading the target's triggers, views and the tables that reach elsewhere",
            &format!(
                "SELECT 'trigger', EVENT_OBJECT_TABLE, '' FROM information_schema.TRIGGERS WHERE BINARY TRIGGER_SCHEMA = BINARY {db} \
                 UNION SELECT 'view', TABLE_NAME, '' FROM information_schema.VIEWS WHERE BINARY TABLE_SCHEMA = BINARY {db} \
                 UNION SELECT 'engine', TABLE_NAME, '' FROM information_schema.TABLES WHERE BINARY TABLE_SCHEMA = BINARY {db} AND UPPER(ENGINE) IN ('MRG_MYISAM', 'MERGE', 'FEDERATED', 'CONNECT', 'SPIDER') \
                 UNION SELECT 'engine', REFERENCED_TABLE_NAME, '' FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE BINARY UNIQUE_CONSTRAINT_SCHEMA = BINARY {db} AND BINARY CONSTRAINT_SCHEMA <> BINARY {db} \
                 UNION SELECT 'expression', TABLE_NAME, HEX(CONCAT_WS(' ', COLUMN_DEFAULT, GENERATION_EXPRESSION)) FROM information_schema.COLUMNS WHERE BINARY TABLE_SCHEMA = BINARY {db} AND CONCAT_WS(' ', COLUMN_DEFAULT, GENERATION_EXPRESSION) LIKE '%.%'"
            ),
        )?;
        let mut reached = sqlscan::Reached::default();
        for r in rows {
            let [kind, name, expression] = &r[..] else {
                continue;
            };
            let name = name.clone();
            match kind.as_str() {
                "view" => reached.views.push(name),
                "trigger" => reached.triggered.push(name),
                "engine" => reached.reaching.push(name),
                _ => {
                    let text = hex::decode(expression).unwrap_or_default();
                    if sqlscan::qualifiers(&text).iter().any(|q| q != database) {
                        reached.reaching.push(name);
                    }
                }
            }
        }
        Ok(reached)
    }

    /// The names of every database on the server.
    pub fn databases(&self) -> Result<Vec<String>, MysqlError> {
        let rows = mysql::query(
            &self.server,
            &self.client,
            &self.defaults,
            "listing the databases",
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA",
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.into_iter().next())
            .collect())
    }

    /// What `database` holds now, in the shape of a dump's inventory: every table (engine and
    /// rows, counted), view, routine, trigger, event and sequence. Names are compared byte for
    /// byte (`BINARY`): information_schema's collation would let `Shop` answer for `shop`.
    pub fn inventory(&self, database: &str) -> Result<Inventory, MysqlError> {
        let l = mysql::quote_literal(database);
        let q = |what, sql: String| {
            mysql::query(&self.server, &self.client, &self.defaults, what, &sql)
        };
        let mut inv = Inventory::default();
        let tables = q(
            "reading the restored tables",
            format!(
                "SELECT TABLE_NAME, TABLE_TYPE, IFNULL(ENGINE, '') FROM information_schema.TABLES \
                 WHERE BINARY TABLE_SCHEMA = BINARY {l}"
            ),
        )?;
        for row in tables {
            let [name, kind, engine] = <[String; 3]>::try_from(row).unwrap_or_default();
            match kind.as_str() {
                "VIEW" => inv.views.push(name),
                "SEQUENCE" => inv.sequences.push(name),
                _ => inv.tables.push(crate::inventory::Table {
                    name,
                    engine: (!engine.is_empty()).then_some(engine),
                    rows: 0,
                }),
            }
        }
        for row in q(
            "reading the restored routines",
            format!(
                "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES \
                 WHERE BINARY ROUTINE_SCHEMA = BINARY {l}"
            ),
        )? {
            let [name, kind] = <[String; 2]>::try_from(row).unwrap_or_default();
            inv.routines.push(crate::inventory::Routine { name, kind });
        }
        for (what, sql, list) in [
            (
                "reading the restored triggers",
                format!("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE BINARY TRIGGER_SCHEMA = BINARY {l}"),
                &mut inv.triggers,
            ),
            (
                "reading the restored events",
                format!("SELECT EVENT_NAME FROM information_schema.EVENTS WHERE BINARY EVENT_SCHEMA = BINARY {l}"),
                &mut inv.events,
            ),
        ] {
            list.extend(q(what, sql)?.into_iter().filter_map(|r| r.into_iter().next()));
        }
        // Rows, exactly: COUNT(*) of every table, a few hundred tables per query.
        let db = mysql::quote_ident(database);
        for part in inv.tables.chunks_mut(200) {
            let sql = part
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    format!(
                        "SELECT {i}, COUNT(*) FROM {db}.{}",
                        mysql::quote_ident(&t.name)
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL ");
            for row in q("counting the restored rows", sql)? {
                if let (Some(i), Some(n)) = (
                    row.first().and_then(|v| v.parse::<usize>().ok()),
                    row.get(1).and_then(|v| v.parse::<u64>().ok()),
                ) {
                    if let Some(t) = part.get_mut(i) {
                        t.rows = n;
                    }
                }
            }
        }
        inv.normalize();
        Ok(inv)
    }

    /// Runs `CHECK TABLE` on every table of `inventory` in `database`; returns what it found
    /// wrong, one line per table (empty when all are OK).
    pub fn check_tables(
        &self,
        database: &str,
        inventory: &Inventory,
    ) -> Result<Vec<String>, MysqlError> {
        let db = mysql::quote_ident(database);
        let mut problems = Vec::new();
        for part in inventory.tables.chunks(200) {
            let names: Vec<String> = part
                .iter()
                .map(|t| format!("{db}.{}", mysql::quote_ident(&t.name)))
                .collect();
            let rows = mysql::query(
                &self.server,
                &self.client,
                &self.defaults,
                "checking the restored tables",
                &format!("CHECK TABLE {}", names.join(", ")),
            )?;
            // Rows: table, op, message type, message text; the last `status` row says OK.
            for row in rows {
                let [table, _, kind, text] = <[String; 4]>::try_from(row).unwrap_or_default();
                let table = table
                    .strip_prefix(&format!("{database}."))
                    .unwrap_or(&table)
                    .to_string();
                let bad = match kind.to_ascii_lowercase().as_str() {
                    "error" => true,
                    "status" => !matches!(text.as_str(), "OK" | "Table is already up to date"),
                    _ => false,
                };
                if bad {
                    problems.push(format!("table '{table}': {text}"));
                }
            }
        }
        Ok(problems)
    }

    /// The names of the databases matching the `LIKE` pattern `like`.
    pub fn databases_like(&self, like: &str) -> Result<Vec<String>, MysqlError> {
        Ok(mysql::query(
            &self.server,
            &self.client,
            &self.defaults,
            "listing databases",
            &format!("SHOW DATABASES LIKE {}", mysql::quote_literal(like)),
        )?
        .into_iter()
        .filter_map(|r| r.into_iter().next())
        .collect())
    }

    /// Runs one statement of the work (unlogged with `no_binlog`: the database a restore or
    /// restore test creates and drops stays out of the binary log like its content); none once
    /// a signal asked the run to stop.
    pub fn execute(&self, what: &'static str, sql: &str) -> Result<(), MysqlError> {
        self.statement(what, sql, OnSignal::Stop)
    }

    /// Creates `database`, which is not there, with `sql` (its `CREATE DATABASE`). A create that
    /// fails without the server's refusal may still have landed (a signal or a lost connection
    /// cut the answer short): an empty database of that name is then dropped, so that no later
    /// run takes it for one that was there. One the server refused (`ERROR 1007`: another
    /// session created it meanwhile) is not ours, and stays.
    ///
    /// Fails with the create's error.
    pub fn create_database(&self, database: &str, sql: &str) -> Result<(), MysqlError> {
        let created = self.execute("creating the database", sql);
        let refused = |e: &MysqlError| {
            let text = e.to_string();
            text.match_indices("ERROR 1")
                .any(|(i, _)| text[i + 6..].chars().take(4).all(|c| c.is_ascii_digit()))
        };
        if created.as_ref().is_err_and(|e| !refused(e))
            && matches!(self.table_count(database), Ok(Some(0)))
        {
            let _ = self.cleanup(
                "dropping the database a failed create left",
                &format!("DROP DATABASE {}", mysql::quote_ident(database)),
            );
        }
        created
    }

    /// Runs one statement of the cleanup a failed or stopped run owes (dropping what it
    /// created), signal or not; a metadata lock held by another session is waited for 30 s at
    /// most, so that a stopping run ends.
    pub fn cleanup(&self, what: &'static str, sql: &str) -> Result<(), MysqlError> {
        self.statement(
            what,
            &format!("SET SESSION lock_wait_timeout=30; {sql}"),
            OnSignal::Finish,
        )
    }

    fn statement(&self, what: &'static str, sql: &str, on: OnSignal) -> Result<(), MysqlError> {
        let sql = if self.opts.no_binlog {
            format!("SET SESSION sql_log_bin=0; {sql}")
        } else {
            sql.to_string()
        };
        mysql::execute(&self.server, &self.client, &self.defaults, what, &sql, on).map_err(|e| {
            match e {
                MysqlError::Query {
                    server,
                    at,
                    what,
                    message,
                } if self.opts.no_binlog && needs_binlog_admin(&message) => MysqlError::Query {
                    server,
                    at,
                    what,
                    message: format!("{message} ({NO_BINLOG_HINT})"),
                },
                e => e,
            }
        })
    }

    /// Decodes `copy` (of `record`) and loads it into `database`, which must exist, through the
    /// statement guard, in one client session or (with `jobs` > 1) several; checks the
    /// dump's size and completion trailer too.
    ///
    /// Fails with the client's error, the refused statement, or a failed check, as a message.
    pub fn load(
        &self,
        copy: CheckedCopy,
        record: &BackupRecord,
        database: &str,
        cancel: &AtomicBool,
    ) -> Result<Loaded, String> {
        let opts = &self.opts;
        // An accounts backup goes to the server, not into a database, in one session.
        let accounts = is_accounts(record);
        let mut extra = vec![
            "--default-character-set=utf8mb4".to_string(),
            "--max-allowed-packet=1G".to_string(),
        ];
        if !accounts {
            extra.push(format!("--database={database}"));
        }
        match self.sandbox {
            ClientSandbox::Sandbox => extra.push("--sandbox".into()),
            ClientSandbox::NoSystemCommand => extra.push("--system-command=OFF".into()),
            ClientSandbox::None => {}
        }
        let policy = Policy {
            // A file's source database is unknown: nothing is allowed as the dump's own name
            // (a foreign key to another database, say) but the target.
            source: if record.storage == import::FILE_STORAGE {
                String::new()
            } else {
                record.database.clone()
            },
            target: database.to_string(),
            accounts,
            disable_events: opts.disable_events,
            no_binlog: opts.no_binlog,
            server: self.version,
            reached: if accounts {
                sqlscan::Reached::default()
            } else {
                sqlscan::Reached {
                    views_dropped_after_rows: opts.jobs > 1,
                    ..self.reached(database).map_err(|e| e.to_string())?
                }
            },
            existing_accounts: if accounts {
                self.accounts().map_err(|e| e.to_string())?
            } else {
                Vec::new()
            },
        };
        // The dump tool's helper role of an accounts dump: created, granted to the restoring
        // account and dropped by the dump itself. One left by a load that stopped makes every
        // later one fail on its GRANT.
        let import_role = (IMPORT_ROLE.to_string(), String::new());
        if accounts && policy.existing_accounts.contains(&import_role) {
            return Err(format!(
                "the server has a role {IMPORT_ROLE}, which an accounts restore that stopped midway left behind (the dump creates, uses and drops it): drop it (DROP ROLE {IMPORT_ROLE}) and restore again"
            ));
        }
        let prefix = session_settings(opts);
        let loaded = if opts.jobs > 1 && !accounts {
            self.load_sessions(copy, record, &extra, policy, &prefix, cancel, opts.jobs)
        } else {
            self.load_one(copy, record, &extra, policy, &prefix, cancel)
        };
        let loaded = loaded.map_err(|e| {
            if !accounts {
                return e;
            }
            let dropped = self
                .cleanup(
                    "dropping the dump tool's role after an accounts restore that stopped",
                    &format!("DROP ROLE IF EXISTS {IMPORT_ROLE}"),
                )
                .is_ok();
            if dropped {
                format!("{e} (the dump tool's role {IMPORT_ROLE} was dropped; the statements before the failing one were applied)")
            } else {
                format!("{e} (drop the dump tool's role by hand: DROP ROLE IF EXISTS {IMPORT_ROLE}; the statements before the failing one were applied)")
            }
        });
        loaded.map_err(|e| {
            if e.contains("log_bin_trust_function_creators") {
                format!("{e} (creating routines and triggers while the server writes a binary log needs SUPER for the restore account, or log_bin_trust_function_creators=1 on the server; see the README's privileges)")
            } else if opts.no_binlog && needs_binlog_admin(&e) {
                format!("{e} ({NO_BINLOG_HINT})")
            } else {
                e
            }
        })
    }

    /// One client session.
    fn load_one(
        &self,
        copy: CheckedCopy,
        record: &BackupRecord,
        extra: &[String],
        policy: Policy,
        prefix: &[u8],
        cancel: &AtomicBool,
    ) -> Result<Loaded, String> {
        let mut child = mysql::client_child(
            &self.server,
            &self.client,
            &self.defaults,
            extra,
            "restoring",
        )
        .map_err(|e| e.to_string())?;
        let stderr = mysql::drain_stderr(&mut child).map_err(|e| e.to_string())?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let (hold, release) = sync_channel::<()>(0);
        let fed = WriteAhead::start(stdin, release).and_then(|mut ahead| {
            ahead.bytes(prefix)?;
            feed(copy, record, Guard::new(ahead, policy), cancel).map(|(loaded, _)| loaded)
        });
        if fed.is_err() {
            let _ = child.kill();
        }
        // Only now may a failed load's input close.
        drop(hold);
        let status = child.wait().map_err(|e| e.to_string())?;
        let mut err = client_error(&stderr.and_then(|h| h.join().ok()).unwrap_or_default());
        if let Some(p) = &self.server.password {
            err = p.redact_in(&err);
        }
        let loaded = match fed {
            Err(e)
                if !status.success()
                    && !err.is_empty()
                    && e.kind() == io::ErrorKind::BrokenPipe =>
            {
                return Err(format!(
                    "{} failed ({}): {err}",
                    self.client.program.display(),
                    crate::process::describe_exit(&status)
                ))
            }
            Err(e) => return Err(e.to_string()),
            Ok(l) => l,
        };
        if !status.success() {
            return Err(format!(
                "{} failed ({}){}",
                self.client.program.display(),
                crate::process::describe_exit(&status),
                if err.is_empty() {
                    String::new()
                } else {
                    format!(": {err}")
                }
            ));
        }
        Ok(loaded)
    }

    /// Feeds `sql` (SQL text from the binary log tool) into one client session on `database`
    /// (point-in-time replay: one session, so that temporary tables live across files), with
    /// the session settings of a load. Returns the bytes fed.
    ///
    /// Fails with the client's error, as a message.
    pub fn replay(
        &self,
        database: &str,
        sql: &mut dyn Read,
        cancel: &AtomicBool,
    ) -> Result<u64, String> {
        let mut extra = vec![
            "--default-character-set=utf8mb4".to_string(),
            "--max-allowed-packet=1G".to_string(),
            "--binary-mode".to_string(),
            format!("--database={database}"),
        ];
        match self.sandbox {
            ClientSandbox::Sandbox => extra.push("--sandbox".into()),
            ClientSandbox::NoSystemCommand => extra.push("--system-command=OFF".into()),
            ClientSandbox::None => {}
        }
        let mut child = mysql::client_child(
            &self.server,
            &self.client,
            &self.defaults,
            &extra,
            "replaying the binary log",
        )
        .map_err(|e| e.to_string())?;
        let stderr = mysql::drain_stderr(&mut child).map_err(|e| e.to_string())?;
        let mut stdin =
            io::BufWriter::with_capacity(CHUNK, child.stdin.take().expect("stdin is piped"));
        let mut fed = 0u64;
        let mut buf = vec![0u8; CHUNK];
        let result: io::Result<()> = (|| {
            stdin.write_all(&session_settings(&self.opts))?;
            loop {
                if cancel.load(Ordering::Relaxed) {
                    return Err(io::Error::other("interrupted by a signal"));
                }
                let n = match sql.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                stdin.write_all(&buf[..n])?;
                fed += n as u64;
            }
            stdin.flush()
        })();
        // The client runs what its input holds when the input ends, even a statement cut
        // short (`DELETE … WHERE id = 1` of `id = 123`): a failed replay's client is killed
        // before its input closes.
        if result.is_err() {
            let _ = child.kill();
        }
        drop(stdin);
        let status = child.wait().map_err(|e| e.to_string())?;
        let mut err = client_error(&stderr.and_then(|h| h.join().ok()).unwrap_or_default());
        if let Some(p) = &self.server.password {
            err = p.redact_in(&err);
        }
        if !status.success() {
            return Err(format!(
                "{} failed ({}){}",
                self.client.program.display(),
                crate::process::describe_exit(&status),
                if err.is_empty() {
                    String::new()
                } else {
                    format!(": {err}")
                }
            ));
        }
        result.map_err(|e| e.to_string())?;
        Ok(fed)
    }

    /// `jobs` client sessions loading the data at once, and one for the schema (see
    /// [`sessions`]).
    #[allow(clippy::too_many_arguments)]
    fn load_sessions(
        &self,
        copy: CheckedCopy,
        record: &BackupRecord,
        extra: &[String],
        policy: Policy,
        prefix: &[u8],
        cancel: &AtomicBool,
        jobs: usize,
    ) -> Result<Loaded, String> {
        let mut args = extra.to_vec();
        args.extend(["--batch", "--skip-column-names", "--unbuffered"].map(String::from));
        let mut children = Vec::new();
        for _ in 0..=jobs {
            match mysql::client_process(
                &self.server,
                &self.client,
                &self.defaults,
                &args,
                "restoring",
                std::process::Stdio::piped(),
            ) {
                Ok(c) => children.push(c),
                Err(e) => {
                    for mut c in children {
                        let _ = c.kill();
                        let _ = c.wait();
                    }
                    return Err(e.to_string());
                }
            }
        }
        let dispatcher = sessions::Dispatcher::new(children, prefix).map_err(|e| e.to_string())?;
        let loaded = feed(copy, record, Guard::new(dispatcher, policy), cancel);
        let (mut loaded, dispatcher) = loaded.map_err(|e| match &self.server.password {
            Some(p) => p.redact_in(&e.to_string()),
            None => e.to_string(),
        })?;
        loaded.sessions = jobs;
        loaded.spread = dispatcher.spread_tables();
        Ok(loaded)
    }
}

/// How a backup is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// Client sessions at once (1: the dump as it is, through one client).
    pub jobs: usize,
    /// Do not write the load to the server's binary log (`sql_log_bin=0` in every session).
    pub no_binlog: bool,
    /// Create the dump's events disabled, so that none runs where it is restored.
    pub disable_events: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            jobs: 1,
            no_binlog: false,
            disable_events: false,
        }
    }
}

/// What `--no-binlog` needs, said when the server refuses it.
const NO_BINLOG_HINT: &str = "--no-binlog sets sql_log_bin=0 for the restore's sessions, which needs the BINLOG ADMIN privilege on MariaDB, SUPER or SYSTEM_VARIABLES_ADMIN on MySQL";

/// Whether a client error is the server refusing `SET sql_log_bin`.
fn needs_binlog_admin(message: &str) -> bool {
    message.contains("sql_log_bin") || message.contains("BINLOG ADMIN")
}

/// The session-only settings every session of a load starts with: no statement time limit on
/// MariaDB (a server-wide `max_statement_time` must not abort a long `INSERT`; MySQL's limit
/// applies to `SELECT` only), and no binary logging with `no_binlog`. Never a global one.
fn session_settings(opts: &LoadOptions) -> Vec<u8> {
    let mut s = String::from("/*M!100108 SET SESSION max_statement_time=0 */;\n");
    // The statement guard reads quotes with backslash escapes until the dump's own `SET
    // sql_mode` says otherwise; a server whose default mode has NO_BACKSLASH_ESCAPES must not
    // read them otherwise from the first statement on.
    s.push_str("SET SESSION sql_mode = TRIM(BOTH ',' FROM REPLACE(CONCAT(',', @@SESSION.sql_mode, ','), ',NO_BACKSLASH_ESCAPES,', ','));\n");
    if opts.no_binlog {
        s.push_str("SET SESSION sql_log_bin=0;\n");
    }
    s.into_bytes()
}

/// The client's error without the statement it echoes (which can be a megabyte of INSERT): its
/// `ERROR …` lines when there are any, else its last 2,000 characters.
fn client_error(stderr: &str) -> String {
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("ERROR") || l.contains("error"))
        .collect();
    if !errors.is_empty() {
        return errors.join("; ");
    }
    let chars: Vec<char> = stderr.chars().collect();
    chars[chars.len().saturating_sub(2000)..].iter().collect()
}

/// Decodes the proven copy into `guard`, checking the dump's size and trailer.
fn feed<W: StatementSink>(
    copy: CheckedCopy,
    record: &BackupRecord,
    mut guard: Guard<W>,
    cancel: &AtomicBool,
) -> io::Result<(Loaded, W)> {
    let mut dec = copy.into_sql(record)?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other("interrupted by a signal"));
        }
        let n = match dec.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.to_string().starts_with("age decryption failed") => return Err(e),
            Err(e) => {
                return Err(io::Error::other(format!(
                    "{} decompression failed: {e}",
                    record.compression.as_str()
                )))
            }
        };
        guard.write_all(&buf[..n])?;
    }
    let raw = guard.count;
    let trailer = mysql::has_completion_trailer(guard.tail());
    let statements = guard.statements;
    let accounts_left = std::mem::take(&mut guard.accounts_left);
    let sink = guard.finish()?;
    if raw != record.raw_bytes {
        return Err(io::Error::other(format!(
            "the dump has {raw} bytes, the index says {}",
            record.raw_bytes
        )));
    }
    if !trailer {
        return Err(io::Error::other(
            "the dump ends without its completion trailer",
        ));
    }
    Ok((
        Loaded {
            raw_bytes: raw,
            statements,
            sessions: 1,
            spread: Vec::new(),
            accounts_left,
        },
        sink,
    ))
}

/// The role `mariadb-dump --system=users` creates, grants to the restoring account and drops.
const IMPORT_ROLE: &str = "mariadb_dump_import_role";

/// A restore request: backup `id` (its copy on `storage`, or the first good one) into
/// `to_database` (default: the backup's own) on `to_server`.
#[derive(Debug, Clone, Default)]
pub struct RestoreRequest {
    /// A backup id, or [`LATEST`].
    pub id: String,
    /// Which copies may be read (`--storage`), and what `latest` chooses from.
    pub filter: RecordFilter,
    pub to_server: String,
    pub to_database: Option<String>,
    /// Restore into a database that already has tables.
    pub force: bool,
    pub load: LoadOptions,
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreOutcome {
    pub record: BackupRecord,
    pub server: String,
    pub database: String,
    /// Whether the restore created the database.
    pub created: bool,
    pub loaded: Loaded,
    pub sandbox: bool,
    /// Seconds the load took (checking the copy and creating the database excluded).
    pub load_seconds: f64,
}

/// The keyword that names the newest good backup of a selection instead of an id.
pub const LATEST: &str = "latest";

/// The copies of the backup that `id` names (an id, or [`LATEST`] resolved under `filter`) that
/// pass `filter`, with unreadable indexes warned about.
///
/// Fails for an ambiguous or empty `latest`, or names the filter does not know.
pub fn copies_of(
    session: &Session,
    id: &str,
    filter: &RecordFilter,
) -> Result<(String, Vec<BackupRecord>), RestoreError> {
    filter.validate(&session.settings)?;
    let catalog = session.catalog(&filter.servers);
    for (_, e) in &catalog.errors {
        session.ui.warn(e);
    }
    let id = if id == LATEST {
        let (picked, errors) = catalog.newest_good(filter);
        for (_, e) in &errors {
            session.ui.warn(e);
        }
        match picked {
            Ok(Some(r)) => {
                // Never quietly older data: an index file that may hold a newer backup (read
                // on the way to this one), or a whole index of the server that could not be
                // read, leaves `latest` unknown.
                // A storage the selected types (all, without --type) do not write to holds no
                // newer backup.
                let used = |s: &str| {
                    session
                        .settings
                        .backup_types
                        .iter()
                        .filter(|t| filter.backup_type.as_ref().is_none_or(|f| f == &t.name))
                        .any(|t| t.storages.iter().any(|n| n == s))
                };
                let whole = catalog
                    .errors
                    .iter()
                    .filter(|(s, _)| filter.storage.as_ref().is_none_or(|f| f == s) && used(s))
                    .filter(|(s, _)| {
                        !catalog
                            .indexes
                            .iter()
                            .any(|ix| &ix.storage == s && ix.server == r.server)
                    })
                    .count();
                let indexes = format!(
                    "the index on {whole} storage{}",
                    if whole == 1 { "" } else { "s" }
                );
                let unread = match (errors.is_empty(), whole) {
                    (true, 0) => None,
                    (true, _) => Some(indexes),
                    (false, 0) => Some("part of the index".to_string()),
                    (false, _) => Some(format!("part of the index and {indexes}")),
                };
                if let Some(unread) = unread {
                    return Err(RestoreError::LatestUncertain {
                        unread,
                        server: r.server.clone(),
                        database: r.database.clone(),
                        id: r.id.clone(),
                        started: r.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                    });
                }
                session.ui.info(&format!(
                    "latest: backup {} of {}/{} ({}, started {})",
                    r.id,
                    r.server,
                    r.database,
                    r.backup_type,
                    r.started_at.format("%Y-%m-%d %H:%M:%S UTC")
                ));
                // Never quietly older data: a newer copy left out is named, with why.
                if let Some(newer) = catalog.passed_over(&r, filter) {
                    session.ui.warn(&format!(
                        "latest: passing over the newer backup {} (started {}) on '{}': its last verification failed ({}); restore it by its id if that failure was not the copy's",
                        newer.id,
                        newer.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
                        newer.storage,
                        newer
                            .verification
                            .as_ref()
                            .and_then(|v| v.error.as_deref())
                            .unwrap_or("no reason recorded")
                    ));
                }
                r.id
            }
            Ok(None) => return Err(RestoreError::NoLatest),
            Err(candidates) => return Err(RestoreError::Ambiguous(candidates)),
        }
    } else {
        id.to_string()
    };
    let (copies, errors) = catalog.copies_of(&id);
    for (_, e) in &errors {
        session.ui.warn(e);
    }
    let copies = copies.into_iter().filter(|r| filter.matches(r)).collect();
    Ok((id, copies))
}

/// What a restore will do, found without changing anything: the copy it reads, where it writes,
/// and how (`restore --dry-run` prints it; a terminal asks before it goes ahead).
#[derive(Debug, Clone, Serialize)]
pub struct RestorePlan {
    pub record: BackupRecord,
    /// Where the copy is read from, and what proves it first.
    pub storage_location: String,
    pub check: String,
    pub server: String,
    /// The account the restore connects as.
    pub user: Option<String>,
    pub database: String,
    /// Tables the target database has now; `None` when the restore creates it.
    pub existing_tables: Option<u64>,
    pub sessions: usize,
    pub binary_log: bool,
    /// How an encrypted copy is decrypted (the identity file); absent for plain copies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decryption: Option<String>,
    /// The storages whose copies are read in turn when the copy before fails its checks or
    /// cannot be read (none with --storage).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fallback: Vec<String>,
    /// Those copies.
    #[serde(skip)]
    pub spares: Vec<BackupRecord>,
}

impl RestorePlan {
    /// The plan in words, one line per step.
    pub fn describe(&self) -> Vec<String> {
        let r = &self.record;
        vec![
            format!(
                "read backup {} ({}/{}, type {}, started {}, {} stored, {} of SQL) from storage '{}' ({})",
                r.id,
                r.server,
                r.database,
                r.backup_type,
                r.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
                human_bytes(r.compressed_bytes),
                human_bytes(r.raw_bytes),
                r.storage,
                self.storage_location
            ),
            if self.fallback.is_empty() {
                format!("check {}", self.check)
            } else {
                format!(
                    "check {}; should it fail them or not be readable, read the copy on {} instead",
                    self.check,
                    self.fallback
                        .iter()
                        .map(|s| format!("'{s}'"))
                        .collect::<Vec<_>>()
                        .join(", then ")
                )
            },
            match &self.decryption {
                Some(d) => format!("decrypt it with {d}, each chunk authenticated as it is read"),
                None => "it is not encrypted".to_string(),
            },
            if is_accounts(r) {
                format!(
                    "create the accounts it holds on server {} as {} (an account or role the server already has is left as it is, password, limits and grants; the others are created with their GRANTs), through 1 session{}",
                    self.server,
                    self.user.as_deref().unwrap_or("the configured user"),
                    if self.binary_log { "" } else { ", not written to the binary log" }
                )
            } else {
            format!(
                "write into {}/{} as {}: {}, through {} session{}{}",
                self.server,
                self.database,
                self.user.as_deref().unwrap_or("the configured user"),
                match self.existing_tables {
                    None => format!(
                        "a new database ({})",
                        r.database_collation.as_deref().unwrap_or("utf8mb4")
                    ),
                    Some(0) => "an existing empty database".to_string(),
                    Some(n) => format!(
                        "an existing database with {n} tables, views, routines or events (--force: those the backup holds too are replaced, the others stay)"
                    ),
                },
                self.sessions,
                if self.sessions == 1 { "" } else { "s" },
                if self.binary_log {
                    ""
                } else {
                    ", not written to the binary log"
                }
            )
            },
        ]
    }
}

/// Checks a database name against what the server accepts (at most 64 characters, none
/// outside the Basic Multilingual Plane, no NUL, no trailing space), before anything is done.
///
/// Fails with `BadName` (exit 2).
pub fn check_database_name(name: &str) -> Result<(), RestoreError> {
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name.chars().count() > 64 {
        Some("it is longer than 64 characters")
    } else if name.ends_with(' ') {
        Some("it ends with a space")
    } else if name.contains('\0') {
        Some("it holds a NUL character")
    } else if name.chars().any(|c| u32::from(c) > 0xFFFF) {
        Some("it holds a character outside the Basic Multilingual Plane (an emoji, say)")
    } else if ["information_schema", "performance_schema", "mysql", "sys"]
        .iter()
        .any(|s| name.eq_ignore_ascii_case(s))
    {
        Some("it is one of the server's own schemas; restore into another name with --to-database (accounts come back through their own backup)")
    } else if name.to_ascii_lowercase().starts_with("#mysql50#") {
        Some("`#mysql50#` is how the server writes names of very old versions")
    } else {
        None
    };
    match why {
        Some(why) => Err(RestoreError::BadName {
            name: name.to_string(),
            why,
        }),
        None => Ok(()),
    }
}

/// Finds what `req` would do without changing anything: the copy, the target and its state.
///
/// Fails with a request error (unknown names, no such backup, an ambiguous `latest`, a
/// non-empty target without `force`), or when the index or the target server cannot be read.
pub fn plan(session: &Session, req: &RestoreRequest) -> Result<RestorePlan, RestoreError> {
    let settings = &session.settings;
    let server = settings.server(&req.to_server)?;
    let (id, records) = copies_of(session, &req.id, &req.filter)?;
    let mut copies = copies_to_try(&records, &id, req.filter.storage.as_deref())?
        .into_iter()
        .cloned();
    let record = copies.next().expect("copies_to_try has one at least");
    let spares: Vec<BackupRecord> = copies.collect();
    if is_accounts(&record) && req.to_database.is_some() {
        return Err(RestoreError::AccountsHaveNoDatabase);
    }
    if record.segment.is_some() {
        return Err(RestoreError::SegmentIsNoDump(id));
    }
    let decryption = decryption_for(&record, settings.encryption.identities.as_ref())?
        .map(|ids| format!("the age identity file {}", ids.path().display()));
    let database = req
        .to_database
        .clone()
        .unwrap_or_else(|| record.database.clone());
    check_database_name(&database)?;
    let storage = session.storage(&record.storage)?;
    let target = Target::new(server, req.load)?;
    let existing_tables = if is_accounts(&record) {
        None
    } else {
        target.table_count(&database)?
    };
    if let Some(n) = existing_tables.filter(|n| *n > 0 && !req.force) {
        return Err(RestoreError::TargetNotEmpty {
            server: server.name.clone(),
            database,
            tables: n,
        });
    }
    Ok(RestorePlan {
        storage_location: format!(
            "{} key {}",
            storage.location(),
            record.key.as_deref().unwrap_or("-")
        ),
        check: format!(
            "its size ({} bytes) and SHA-256 ({}) against the index before any byte is used",
            record.compressed_bytes,
            record.sha256.as_deref().unwrap_or("-")
        ),
        server: server.name.clone(),
        user: target.server.user.clone(),
        database,
        existing_tables,
        sessions: req.load.jobs.max(1),
        binary_log: !req.load.no_binlog,
        decryption,
        fallback: spares.iter().map(|r| r.storage.clone()).collect(),
        spares,
        record,
    })
}

/// Restores a backup: plans it, lets `confirm` see the plan (false stops it, changing
/// nothing), proves the copy, prepares the target database and loads it.
///
/// Fails as [`plan`] does, with `Declined` when `confirm` says no, or with a runtime error
/// (storage, server, checks, the load itself).
pub fn restore(
    session: &Session,
    req: &RestoreRequest,
    confirm: &mut dyn FnMut(&RestorePlan) -> bool,
) -> Result<RestoreOutcome, RestoreError> {
    let (settings, ui, cancel) = (&session.settings, &session.ui, session.cancel.as_ref());
    let planned = plan(session, req)?;
    if !confirm(&planned) {
        return Err(RestoreError::Declined);
    }
    let RestorePlan {
        record,
        spares,
        database,
        ..
    } = planned;
    let server = settings.server(&req.to_server)?;
    let copies: Vec<&BackupRecord> = std::iter::once(&record).chain(&spares).collect();
    let proven = first_good(ui, &copies, |record| {
        let storage = session.storage(&record.storage)?;
        ui.info(&format!(
            "checking {} ({}/{}, {}) on '{}' before restoring it",
            record.id,
            record.server,
            record.database,
            human_bytes(record.compressed_bytes),
            record.storage
        ));
        let identities = decryption_for(record, settings.encryption.identities.as_ref())?;
        CheckedCopy::fetch(storage.as_ref(), record, "restored", identities, cancel)
    });
    let (record, copy) = match proven {
        Err(e) if req.id == LATEST && e.is_copy_fault() => {
            // In a disaster the operator needs the next restorable backup, named, not a
            // search: never taken quietly in its place (older data is the operator's call).
            let next = session
                .catalog(&req.filter.servers)
                .next_good_before(&record, &req.filter);
            let hint = match next {
                Some(n) => format!(
                    "latest: no copy of backup {} could be used; the next newest good backup of {}/{} is {} (started {}): `sqlguard restore {} --to-server {}{}` restores it, and `sqlguard verify {}` records {} as failed, so that `latest` passes over it",
                    record.id,
                    record.server,
                    record.database,
                    n.id,
                    n.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    n.id,
                    req.to_server,
                    req.to_database
                        .as_ref()
                        .map(|d| format!(" --to-database {d}"))
                        .unwrap_or_default(),
                    record.id,
                    record.id
                ),
                None => format!(
                    "latest: no copy of backup {} could be used, and {}/{} has no older good backup",
                    record.id, record.server, record.database
                ),
            };
            return Err(RestoreError::LatestUnusable {
                cause: Box::new(e),
                hint,
            });
        }
        p => p?,
    };
    load_proven(session, server, copy, record, database, req.force, req.load)
}

/// Loads a proven copy (of `record`) into `database` on `server`: refuses a database with
/// tables unless `force`, creates a missing one (and drops it again when the load fails).
///
/// Fails with `TargetNotEmpty`, a server error, or `Load` naming what failed.
fn load_proven(
    session: &Session,
    server: &ServerSettings,
    copy: CheckedCopy,
    record: BackupRecord,
    database: String,
    force: bool,
    load: LoadOptions,
) -> Result<RestoreOutcome, RestoreError> {
    let (ui, cancel) = (&session.ui, session.cancel.as_ref());
    let target = Target::new(server, load)?;
    let existing = if is_accounts(&record) {
        Some(0)
    } else {
        target.table_count(&database)?
    };
    let created = match existing {
        Some(n) if n > 0 && !force => {
            return Err(RestoreError::TargetNotEmpty {
                server: server.name.clone(),
                database,
                tables: n,
            })
        }
        Some(_) => false,
        None => {
            target.create_database(&database, &create_database_sql(&database, &record))?;
            true
        }
    };
    if target.sandbox() == ClientSandbox::None {
        ui.warn("the SQL client has no sandbox mode (MariaDB --sandbox, MySQL --system-command=OFF): sqlguard's own statement check is the only guard against client commands");
    }
    ui.info(&format!(
        "restoring {} into {}/{database}",
        record.id, server.name
    ));
    let started = std::time::Instant::now();
    match target.load(copy, &record, &database, cancel) {
        Ok(loaded) => Ok(RestoreOutcome {
            record,
            server: server.name.clone(),
            database,
            created,
            loaded,
            sandbox: target.sandbox() != ClientSandbox::None,
            load_seconds: started.elapsed().as_secs_f64(),
        }),
        Err(message) => {
            // Interrupted or failed, the message says what is left (exit 130 after a signal).
            let dropped = created
                && target
                    .cleanup(
                        "dropping the incomplete database",
                        &format!("DROP DATABASE {}", mysql::quote_ident(&database)),
                    )
                    .is_ok();
            Err(RestoreError::Load {
                id: record.id.clone(),
                server: server.name.clone(),
                database,
                message,
                created,
                dropped,
            })
        }
    }
}

/// The databases `server` has backups of (on `storage` when named), sorted, with its accounts
/// last (table grants need their tables): what `restore --all` restores, in order. Indexes
/// that cannot be read are warned about.
pub fn server_databases(session: &Session, server: &str, storage: Option<&str>) -> Vec<String> {
    let catalog = session.catalog(&[server.to_string()]);
    for (_, e) in &catalog.errors {
        session.ui.warn(e);
    }
    let mut databases: Vec<String> = catalog
        .indexes
        .iter()
        .filter(|ix| storage.is_none_or(|s| s == ix.storage))
        .flat_map(|ix| ix.summary.databases.keys().cloned())
        .filter(|d| d != crate::health::SERVER_WIDE)
        .collect();
    databases.sort();
    databases.dedup();
    let accounts = databases.iter().any(|d| d == crate::backup::ACCOUNTS);
    databases.retain(|d| d != crate::backup::ACCOUNTS);
    if accounts {
        databases.push(crate::backup::ACCOUNTS.to_string());
    }
    databases
}

/// Whether `record` is the backup of a server's accounts (users, roles, grants).
pub fn is_accounts(record: &BackupRecord) -> bool {
    record.database == crate::backup::ACCOUNTS
}

/// `CREATE DATABASE` for restoring `record` into `database`: with the collation the source
/// database had (so that its routines, triggers and events keep their database collation),
/// utf8mb4's default for records that do not say.
pub fn create_database_sql(database: &str, record: &BackupRecord) -> String {
    match record
        .database_collation
        .as_deref()
        .filter(|c| mysql::is_collation_name(c))
    {
        Some(c) => format!(
            "CREATE DATABASE {} COLLATE {c}",
            mysql::quote_ident(database)
        ),
        None => format!(
            "CREATE DATABASE {} CHARACTER SET utf8mb4",
            mysql::quote_ident(database)
        ),
    }
}

/// Where `fetch` writes.
#[derive(Debug, Clone, Copy)]
pub enum FetchTo<'a> {
    /// A file, written under a temp name and renamed only when every check passed.
    File(&'a Path),
    /// Standard output, written only after the copy was proven.
    Stdout,
}

/// What a fetch wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Fetched {
    pub record: BackupRecord,
    pub bytes: u64,
    /// The reader of stdout closed it before the end (`| head`): not an error.
    pub reader_closed: bool,
}

/// What `fetch` writes: the object as stored, decrypted (still compressed), or the SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchForm {
    /// The bytes as stored (encrypted when the backup is).
    Stored,
    /// Decrypted, still compressed (the same as `Stored` for a plain backup).
    Decrypted,
    /// Decrypted and decompressed: the dump's SQL.
    Sql,
}

/// Fetches backup `id` (its copy on `storage`, or the first good one) to `to`, in `form`. A
/// closed stdout (`sqlguard fetch … | head`) ends the fetch quietly.
///
/// Fails with a request error (no such backup, unknown storage) or a runtime one; a file is
/// left untouched unless every check passed.
pub fn fetch(
    session: &Session,
    id: &str,
    filter: &RecordFilter,
    to: FetchTo,
    form: FetchForm,
) -> Result<Fetched, RestoreError> {
    let cancel = session.cancel.as_ref();
    let (id, records) = copies_of(session, id, filter)?;
    let copies = copies_to_try(&records, &id, filter.storage.as_deref())?;
    let identities = |record: &BackupRecord| {
        if form == FetchForm::Stored {
            Ok(None)
        } else {
            decryption_for(record, session.settings.encryption.identities.as_ref())
        }
    };
    // Every copy's decryption is known before anything is read or written.
    for record in &copies {
        identities(record)?;
    }
    let mut reader_closed = false;
    // A device or FIFO (`-o /dev/stdout`) is written into like stdout, never replaced.
    let (file, stream) = match to {
        FetchTo::File(path) => match crate::publish::destination(path)? {
            crate::publish::Destination::File(p) => (Some(p), None),
            crate::publish::Destination::Stream(p) => (None, Some(p)),
        },
        FetchTo::Stdout => (None, None),
    };
    let (record, bytes) = match file {
        Some(path) => first_good(&session.ui, &copies, |record| {
            let storage = session.storage(&record.storage)?;
            fetch_to_file(
                storage.as_ref(),
                record,
                &path,
                form,
                identities(record)?.as_ref(),
                cancel,
            )
        })?,
        None => {
            let mut out: Box<dyn Write> = match &stream {
                Some(p) => Box::new(crate::publish::open_stream(p)?),
                None => Box::new(crate::ui::stdout()?),
            };
            let (record, copy) = first_good(&session.ui, &copies, |record| {
                let storage = session.storage(&record.storage)?;
                CheckedCopy::fetch(
                    storage.as_ref(),
                    record,
                    "written",
                    identities(record)?,
                    cancel,
                )
            })?;
            let r = match form {
                FetchForm::Sql => copy
                    .into_sql(&record)
                    .and_then(|mut d| io::copy(&mut d, &mut out)),
                FetchForm::Decrypted => copy
                    .into_compressed(&record)
                    .and_then(|mut d| io::copy(&mut d, &mut out)),
                FetchForm::Stored => io::copy(&mut copy.into_reader(), &mut out),
            };
            let n = match r.and_then(|n| out.flush().map(|()| n)) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                    reader_closed = true;
                    0
                }
                Err(e) => return Err(RestoreError::Output(e)),
            };
            (record, n)
        }
    };
    Ok(Fetched {
        record,
        bytes,
        reader_closed,
    })
}

/// One pass into a temp file beside `path`, renamed into place only when every check passed.
fn fetch_to_file(
    storage: &dyn Storage,
    record: &BackupRecord,
    path: &Path,
    form: FetchForm,
    identities: Option<&crate::crypt::Identities>,
    cancel: &AtomicBool,
) -> Result<u64, RestoreError> {
    use crate::verify::{check_copy, CopyOutputs};
    let out = RestoreError::Output;
    // Published only when every check passed; a backup stays private (0600).
    let checked = crate::publish::atomically(path, 0o600, |file| {
        let checked = match form {
            FetchForm::Sql => {
                let sql = file.try_clone().map_err(out)?;
                let outputs = CopyOutputs {
                    sql: Some(Box::new(io::BufWriter::new(sql))),
                    decode: true,
                    identities,
                    ..Default::default()
                };
                check_copy(storage, record, outputs, cancel)
            }
            FetchForm::Decrypted | FetchForm::Stored => {
                let mut w = io::BufWriter::new(&mut *file);
                let decrypted = form == FetchForm::Decrypted && record.encryption.is_some();
                let outputs = if decrypted {
                    // Decrypted to the end and decompressed too: every check before publishing.
                    CopyOutputs {
                        compressed: Some(&mut w),
                        decode: true,
                        identities,
                        ..Default::default()
                    }
                } else {
                    CopyOutputs {
                        stored: Some(&mut w),
                        ..Default::default()
                    }
                };
                let c = check_copy(storage, record, outputs, cancel);
                w.flush().map_err(out)?;
                c
            }
        }?;
        if cancel.load(Ordering::Relaxed) {
            return Err(RestoreError::Interrupted);
        }
        if !checked.problems.is_empty() {
            return Err(RestoreError::FailedChecks {
                id: record.id.clone(),
                storage: record.storage.clone(),
                what: "written",
                problems: checked.problems.join("; "),
            });
        }
        Ok(checked)
    })?;
    Ok(match form {
        FetchForm::Sql => checked.raw_bytes,
        FetchForm::Decrypted if record.encryption.is_some() => checked.plain_bytes,
        _ => checked.compressed_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStorage;
    use chrono::Utc;

    fn rec(id: &str, storage: &str, sha: &str, size: u64) -> BackupRecord {
        let mut r = BackupRecord::sample(id, "shop", "daily", storage, Status::Success, Utc::now());
        r.sha256 = Some(sha.into());
        r.compressed_bytes = size;
        r
    }

    /// `latest` never quietly takes older data: while a month file that may hold a newer
    /// backup cannot be read, it names the newest it could read and restores nothing (a
    /// hostile review's: a December file gone, `latest` restored November's backup, exit 0).
    #[test]
    fn latest_is_not_told_while_a_newer_month_cannot_be_read() {
        use crate::index::IndexStore;
        use chrono::TimeZone;
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "servers:\n  main: {{host: 127.0.0.1}}\nstorage:\n  local: {{type: local, path: {}}}\nbackup_types:\n  daily:\n    retention: {{keep_last: 3}}\n",
            dir.path().display()
        );
        let settings = crate::config::test_support::from_yaml(&yaml, &[]).unwrap();
        let storage = crate::storage::local::LocalStorage::new("local", dir.path());
        let at = |m, d| Utc.with_ymd_and_hms(2026, m, d, 2, 30, 0).unwrap();
        let (nov, dec) = ("20261120T023000Z_0000000a", "20261201T023000Z_0000000b");
        IndexStore::new(&storage, "main")
            .upsert(&[
                BackupRecord::sample(nov, "shop", "daily", "local", Status::Success, at(11, 20)),
                BackupRecord::sample(dec, "shop", "daily", "local", Status::Success, at(12, 1)),
            ])
            .unwrap();
        let session = Session::new(settings, crate::ui::Ui::silent(), Default::default());
        let filter = RecordFilter {
            databases: vec!["shop".into()],
            ..Default::default()
        };
        assert_eq!(copies_of(&session, LATEST, &filter).unwrap().0, dec);
        std::fs::remove_file(dir.path().join("main/index/db/shop/2026-12.json")).unwrap();
        let e = copies_of(&session, LATEST, &filter).unwrap_err();
        assert!(
            matches!(&e, RestoreError::LatestUncertain { id, .. } if id == nov),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("part of the index could not be read"),
            "{e}"
        );
        // Named by its id, the older backup is the operator's call.
        assert_eq!(copies_of(&session, nov, &filter).unwrap().1.len(), 1);
    }

    #[test]
    fn copies_are_chosen_and_must_agree() {
        let records = vec![rec("a", "local", "11", 5), rec("a", "s3", "11", 5)];
        assert_eq!(select_copy(&records, "a", None).unwrap().storage, "local");
        assert_eq!(
            select_copy(&records, "a", Some("s3")).unwrap().storage,
            "s3"
        );
        assert!(select_copy(&records, "b", None).unwrap_err().is_request());
        let bad = vec![rec("a", "local", "11", 5), rec("a", "s3", "22", 5)];
        let e = select_copy(&bad, "a", Some("s3")).unwrap_err();
        assert!(matches!(e, RestoreError::CopiesDisagree { .. }), "{e}");
        assert!(
            e.to_string().contains("'local'") && e.to_string().contains("22"),
            "{e}"
        );
    }

    #[test]
    fn a_copy_that_fails_is_replaced_by_the_next_and_a_pinned_one_is_alone() {
        let good = hex::encode(Sha256::digest(b"good"));
        let mut failed = rec("a", "first", &good, 4);
        failed.verification = Some(Box::new(crate::index::Verification {
            verified_at: Utc::now(),
            ok: false,
            restore_tested: false,
            error: Some("damaged".into()),
            restore_test: None,
        }));
        let records = vec![
            failed,
            rec("a", "second", &good, 4),
            rec("a", "third", &good, 4),
        ];
        let order = |storage| -> Vec<String> {
            copies_to_try(&records, "a", storage)
                .unwrap()
                .iter()
                .map(|r| r.storage.clone())
                .collect()
        };
        assert_eq!(order(None), ["second", "third", "first"]);
        assert_eq!(order(Some("first")), ["first"]);

        let stores: Vec<MemoryStorage> = ["first", "second", "third"]
            .into_iter()
            .map(MemoryStorage::new)
            .collect();
        let key = records[0].key.clone().unwrap();
        stores[0].put_bytes(&key, b"good").unwrap();
        stores[1].put_bytes(&key, b"evil").unwrap();
        stores[2].put_bytes(&key, b"good").unwrap();
        let ui = crate::ui::Ui::new(true, false, true, true);
        let no = AtomicBool::new(false);
        let copies = copies_to_try(&records, "a", None).unwrap();
        let mut tried = Vec::new();
        let fetch = |r: &BackupRecord, tried: &mut Vec<String>| {
            tried.push(r.storage.clone());
            let s = stores.iter().find(|s| s.name() == r.storage).unwrap();
            CheckedCopy::fetch(s, r, "restored", None, &no)
        };
        let (chosen, _) = first_good(&ui, &copies, |r| fetch(r, &mut tried)).unwrap();
        assert_eq!((chosen.storage.as_str(), tried.len()), ("third", 2));
        // A record whose key is not its own file is not read, whatever that file holds (a
        // hostile review's: another server's dump, with its hash, "matched its index").
        let mut foreign = records[2].clone();
        foreign.key = Some("other/shop/manual/20261130T211936Z_d3907bf0.sql.zst".into());
        stores[2]
            .put_bytes(foreign.key.as_deref().unwrap(), b"good")
            .unwrap();
        let e = CheckedCopy::fetch(&stores[2], &foreign, "restored", None, &no).unwrap_err();
        assert!(e.to_string().contains("not a file of this backup"), "{e}");
        // Only the copy's own faults move on: a signal ends it at once.
        let mut calls = 0;
        let e = first_good(&ui, &copies, |_| -> Result<(), _> {
            calls += 1;
            Err(RestoreError::Interrupted)
        })
        .unwrap_err();
        assert!(matches!(e, RestoreError::Interrupted) && calls == 1);
        // Every copy failing: the last one's error.
        stores[2].put_bytes(&key, b"evil").unwrap();
        stores[0].put_bytes(&key, b"evil").unwrap();
        let e = first_good(&ui, &copies, |r| fetch(r, &mut Vec::new())).unwrap_err();
        assert!(
            e.to_string().contains("'first'") && e.is_copy_fault(),
            "{e}"
        );
    }

    #[test]
    fn a_changed_object_is_refused_before_anything_reads_it() {
        let s = MemoryStorage::new("mem");
        let r = rec("a", "mem", &hex::encode(Sha256::digest(b"good")), 4);
        s.put_bytes(r.key.as_deref().unwrap(), b"evil").unwrap();
        let e = CheckedCopy::fetch(&s, &r, "restored", None, &AtomicBool::new(false)).unwrap_err();
        assert!(
            e.to_string().contains("SHA-256") && e.to_string().contains("nothing was restored"),
            "{e}"
        );
        s.put_bytes(r.key.as_deref().unwrap(), b"good").unwrap();
        let c = CheckedCopy::fetch(&s, &r, "restored", None, &AtomicBool::new(false)).unwrap();
        assert!(c.spooled);
        let mut back = Vec::new();
        c.into_reader().read_to_end(&mut back).unwrap();
        assert_eq!(back, b"good");
    }

    /// The collation comes from an index, which may be tampered with: anything but a plain
    /// collation name is not written into SQL.
    #[test]
    fn target_names_the_server_refuses_are_refused_first() {
        for good in ["shop", "we ird`name", "ünï", &"x".repeat(64)] {
            assert!(check_database_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "trailing ",
            "a\0b",
            "emoji\u{1F600}",
            &"x".repeat(65),
            "PERFORMANCE_SCHEMA",
            "information_schema",
            "mysql",
            "Sys",
            "#mysql50#x",
        ] {
            assert!(check_database_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_target_database_gets_the_source_collation_when_it_is_a_plain_name() {
        let mut r = rec("a", "local", "00", 1);
        assert_eq!(
            create_database_sql("x`y", &r),
            "CREATE DATABASE `x``y` CHARACTER SET utf8mb4"
        );
        r.database_collation = Some("utf8mb4_unicode_ci".into());
        assert_eq!(
            create_database_sql("db", &r),
            "CREATE DATABASE `db` COLLATE utf8mb4_unicode_ci"
        );
        for bad in ["latin1; DROP DATABASE x", "", "utf8mb4_bin`", "a b"] {
            r.database_collation = Some(bad.into());
            assert!(
                create_database_sql("db", &r).ends_with("CHARACTER SET utf8mb4"),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_guard_passes_a_dump_through_unchanged_and_stops_at_a_refused_statement() {
        let dump = b"-- head\nSET NAMES utf8mb4;\nCREATE TABLE `t` (a int);\nINSERT INTO `t` VALUES (1),(2);\nALTER DATABASE `shop` CHARACTER SET latin1 ;\n-- Dump completed\n";
        let policy = || Policy::plain("shop", "copy");
        for size in [1, 5, 1000] {
            let mut g = Guard::new(Vec::new(), policy());
            for c in dump.chunks(size) {
                g.write_all(c).unwrap();
            }
            let out = String::from_utf8(g.finish().unwrap()).unwrap();
            assert_eq!(
                out,
                String::from_utf8_lossy(dump)
                    .replace("ALTER DATABASE `shop`", "ALTER DATABASE `copy`")
            );
        }
        let mut g = Guard::new(Vec::new(), policy());
        let e = g
            .write_all(
                b"INSERT INTO `t` VALUES (1);\nDROP DATABASE victim;\nINSERT INTO `t` VALUES (2);",
            )
            .unwrap_err();
        assert!(e.to_string().contains("refused"), "{e}");
        assert_eq!(g.inner, b"INSERT INTO `t` VALUES (1);");
        let mut g = Guard::new(Vec::new(), policy());
        assert!(g.write_all(b"SET @a=1;\n\\! touch /tmp/x\n").is_err());
        // The dump's own database is altered as the target by its name's place, not by the
        // first text that spells it (an eleventh review's: a comment's copy was replaced and
        // the source database itself altered).
        let retarget = |sql: &str| {
            let mut g = Guard::new(Vec::new(), policy());
            g.write_all(sql.as_bytes())
                .and_then(|()| g.finish())
                .map(|out| String::from_utf8(out).unwrap())
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            retarget("/* `shop` */ \nalter schema shop COLLATE latin1_bin;\n").unwrap(),
            "/* `shop` */ \nalter schema `copy` COLLATE latin1_bin;\n"
        );
        for hostile in [
            "ALTER DATABASE /* `shop` */ `shop` CHARACTER SET latin1;\n",
            "ALTER DATABASE /*!99999 `shop` */ `shop` CHARACTER SET latin1;\n",
            "ALTER  DATABASE `shop` CHARACTER SET latin1;\n",
            "ALTER DATABASE `shopx` CHARACTER SET latin1;\n",
        ] {
            let e = retarget(hostile).unwrap_err();
            assert!(e.contains("refused"), "{hostile}: {e}");
        }
    }
    /// Executable comments are code to the client (quotes, delimiters and client commands
    /// count in them) and run on the server only from their version: a dump cannot hide a
    /// statement from the guard in one, nor hide the guard's view of one behind a version the
    /// server skips.
    #[test]
    fn executable_comments_hide_nothing_from_the_guard() {
        let mariadb = crate::sqlscan::ServerVersion {
            mariadb: true,
            number: 101_119,
        };
        let policy = |server| Policy {
            disable_events: true,
            server,
            ..Policy::plain("shop", "copy")
        };
        for (hostile, servers) in [
            (
                "/*!40101 SET @a='*/' */; DROP TABLE victim.v; -- '\nCREATE TABLE t2 (a int);\n",
                &[Some(mariadb), None][..],
            ),
            (
                "/*!40101 SET @a='*/' */; use victim;\nDROP TABLE v;\n",
                &[Some(mariadb), None],
            ),
            // Only the server's version tells that this comment is skipped.
            (
                "/*M!800000 CREATE TABLE t3 (a int) */ DROP DATABASE victim2;\n",
                &[Some(mariadb)],
            ),
            (
                "/*!40101 SET @a=1 \\! touch /tmp/x */;\n",
                &[Some(mariadb), None],
            ),
            (
                "/*M!999999\\! touch /tmp/x */\nSELECT 1;\n",
                &[Some(mariadb), None],
            ),
        ] {
            for &server in servers {
                let mut g = Guard::new(Vec::new(), policy(server));
                let sent = g
                    .write_all(hostile.as_bytes())
                    .and_then(|()| g.finish().map(drop));
                assert!(sent.is_err(), "{server:?} passed: {hostile}");
            }
        }
        // The dump's own forms pass unchanged: the sandbox line, and a trigger whose body
        // holds '*/' in a string, with an event after it that is then created disabled.
        let dump = "/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump\nCREATE TABLE `t` (a varchar(10));\nDELIMITER ;;\n/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a='*/' */;;\n/*!50106 CREATE*/ /*!50117 DEFINER=`root`@`localhost`*/ /*!50106 EVENT `ev` ON SCHEDULE EVERY 1 HOUR STARTS '2026-11-30 11:00:00' ON COMPLETION NOT PRESERVE ENABLE DO SELECT 1 */ ;;\nDELIMITER ;\n-- Dump completed\n";
        let mut g = Guard::new(Vec::new(), policy(Some(mariadb)));
        g.write_all(dump.as_bytes()).unwrap();
        let out = String::from_utf8(g.finish().unwrap()).unwrap();
        assert_eq!(
            out,
            dump.replace("PRESERVE ENABLE DO", "PRESERVE DISABLE DO")
        );
    }

    /// What the splitter cannot follow, and what --no-binlog forbids, is refused before it
    /// runs: a change of sql_mode it cannot read (so a backslash could end a string for the
    /// client and not for the guard), `SET STATEMENT`, and a `SET` of sql_log_bin to anything
    /// but 0 or a value saved from it.
    #[test]
    fn the_guard_refuses_what_it_cannot_follow() {
        let policy = |no_binlog| Policy {
            no_binlog,
            ..Policy::plain("shop", "copy")
        };
        let run = |sql: &str, no_binlog| {
            let mut g = Guard::new(Vec::new(), policy(no_binlog));
            g.write_all(sql.as_bytes())
                .and_then(|()| g.finish().map(drop))
                .map_err(|e| e.to_string())
        };
        let tail = "INSERT INTO t VALUES ('a\\'); DROP TABLE victim.v; -- ');\n";
        for mode in [
            "SET sql_mode = ('NO_BACKSLASH_ESCAPES');\n",
            "SET sql_mode = _latin1'NO_BACKSLASH_ESCAPES';\n",
            "SET sql_mode = CONCAT('NO_BACKSLASH','_ESCAPES');\n",
            "SET sql_mode = '' OR 'NO_BACKSLASH_ESCAPES';\n",
            "SET STATEMENT max_statement_time=0, sql_mode='NO_BACKSLASH_ESCAPES' FOR SELECT 1;\n",
            "SET sql_mode = @never_set;\n",
            &format!(
                "SET @pad='{}', sql_mode='NO_BACKSLASH_ESCAPES';\n",
                "x".repeat(600)
            ),
        ] {
            let e = run(&format!("{mode}{tail}"), false).unwrap_err();
            // Refused at the change of mode, before the statements it would make unreadable.
            assert!(
                e.contains("refused") && !e.contains("victim"),
                "{mode}: {e}"
            );
        }
        for (sql, ok) in [
            ("SET sql_log_bin=1;\n", false),
            ("SET @@session.sql_log_bin = ON;\n", false),
            ("SET @one = 1;\nSET sql_log_bin = @one;\n", false),
            (&format!("SET @pad='{}', sql_log_bin=1;\n", "x".repeat(600)), false),
            ("SET STATEMENT sql_log_bin=1 FOR INSERT INTO t VALUES (1);\n", false),
            ("SET @@SESSION.SQL_LOG_BIN= 0;\n", true),
            // A variable saved from it could be changed since by `@v := 1` anywhere: only 0.
            (
                "SET @MYSQLDUMP_TEMP_LOG_BIN = @@SESSION.SQL_LOG_BIN;\nSET @@SESSION.SQL_LOG_BIN= 0;\nSET @@SESSION.SQL_LOG_BIN = @MYSQLDUMP_TEMP_LOG_BIN;\n",
                false,
            ),
        ] {
            assert_eq!(run(sql, true).is_ok(), ok, "{sql}: {:?}", run(sql, true));
        }
        // Without --no-binlog the load reaches the binary log whatever the dump says (an
        // eleventh review's: a dump's `sql_log_bin=0` kept it from replicas and the archive).
        for off in [
            "SET @@SESSION.SQL_LOG_BIN= 0;\n",
            "SET sql_log_bin = OFF, @a = 1;\n",
            "/*!40101 SET SESSION sql_log_bin/**/:=0 */;\n",
            "SET @saved = 0;\nSET `sql_log_bin` = @saved;\n",
            &format!("SET @pad='{}', sql_log_bin=0;\n", "x".repeat(600)),
        ] {
            let e = run(off, false).unwrap_err();
            assert!(e.contains("restore with --no-binlog"), "{off}: {e}");
        }
        for on in [
            "SET sql_log_bin=1;\n",
            "SET @saved = @@SESSION.SQL_LOG_BIN;\n",
        ] {
            assert!(run(on, false).is_ok(), "{on}: {:?}", run(on, false));
        }
    }

    /// A third review's bypasses, each a way the server would read the SQL otherwise than the
    /// client and the guard: all refused before the statement they hide is sent.
    #[test]
    fn the_server_reads_nothing_the_guard_did_not() {
        let mariadb = crate::sqlscan::ServerVersion {
            mariadb: true,
            number: 101_119,
        };
        let policy = |no_binlog| Policy {
            disable_events: true,
            no_binlog,
            server: Some(mariadb),
            ..Policy::plain("shop", "copy")
        };
        for (hostile, no_binlog) in [
            ("INSERT INTO t1 VALUES (1) /*!110000 '*/; DROP TABLE victim.t; -- ' */;\n", false),
            ("SELECT 16 /*!1000000 +1 */;\n", false),
            ("CREATE TABLE t1 (a varchar(50));\nSET NAMES gbk;\nINSERT INTO t1 VALUES ('\u{bf}\\'); DROP TABLE victim.t; -- ');\n", false),
            ("SET character_set_client = 'big5';\n", false),
            ("SET character_set_client = @never_saved;\n", false),
            ("INSERT INTO t1 VALUES (1) --\u{1} ; DROP TABLE victim.t ;\n", false),
            ("DELIMITER ;; x\nINSERT INTO t1 VALUES (1);;\nDROP TABLE victim.t;;\n", false),
            ("SET `sql_mode`='NO_BACKSLASH_ESCAPES';\nINSERT INTO t1 VALUES ('a\\'); DROP TABLE victim.t; SELECT ('b');\n", false),
            ("SET @@session . `sql_log_bin` = ON;\n", true),
            ("SET `sql_log_bin`=1;\n", true),
            ("SET sql_mode='ANSI_QUOTES';\nDROP TABLE \"victim\".\"t\";\n", false),
            ("DROP TABLE t1, victim.t;\n", false),
            ("ALTER TABLE t1 RENAME TO victim.moved;\n", false),
            ("CREATE INDEX i ON victim.t (a);\n", false),
            ("DROP VIEW v, victim.v;\n", false),
        ] {
            let mut g = Guard::new(Vec::new(), policy(no_binlog));
            let (e, out) = match g.write_all(hostile.as_bytes()) {
                Err(e) => (e.to_string(), String::from_utf8_lossy(&g.inner).into_owned()),
                Ok(()) => match g.finish() {
                    Ok(inner) => panic!("{hostile}: passed as {}", String::from_utf8_lossy(&inner)),
                    Err(e) => (e.to_string(), String::new()),
                },
            };
            assert!(e.contains("refused"), "{hostile}: {e}");
            assert!(!out.contains("victim"), "{hostile}: sent {out}");
        }
        // A fourth review's: a MySQL-only version MariaDB skips, bodies run by the dump itself,
        // a sequence statement that reads elsewhere, a dotted variable in an event.
        for (hostile, disable) in [
            ("INSERT INTO `t` VALUES (1,'x') /*!80000 , (2,'*/; DROP TABLE victim.t; -- ') */;\n", false),
            ("CREATE EVENT e ON SCHEDULE EVERY 1 SECOND /*!80000 DISABLE */ DO INSERT INTO victim.t VALUES (669);\n", true),
            ("CREATE TABLE `t` (a int);\nDELIMITER ;;\nCREATE TRIGGER tr AFTER INSERT ON `t` FOR EACH ROW BEGIN DELETE FROM victim.t; END ;;\nDELIMITER ;\nINSERT INTO `t` VALUES (1);\n", false),
            ("DELIMITER ;;\nCREATE FUNCTION f() RETURNS int DETERMINISTIC MODIFIES SQL DATA BEGIN DELETE FROM victim.t; RETURN 1; END ;;\nDELIMITER ;\nDO f();\n", false),
            ("DELIMITER ;;\nCREATE FUNCTION f() RETURNS int RETURN 1 ;;\nDELIMITER ;\nSET @x = f();\n", false),
            ("SELECT NEXTVAL(s), User, Password FROM mysql.user INTO OUTFILE '/tmp/users.txt';\n", false),
            ("SET @x.disable.do = 1;\nCREATE EVENT e ON SCHEDULE EVERY @x.disable.do SECOND DO INSERT INTO victim.t VALUES (668);\n", true),
            ("CREATE VIEW v AS SELECT * FROM victim.t;\nINSERT INTO v VALUES (1);\n", false),
            // A fifth review's: a vertical tab before the dot, and what an INSERT can do
            // past its head.
            ("CREATE TABLE victim\u{b}.t2 (a int);\n", false),
            ("INSERT INTO victim\u{b}.t VALUES (99);\n", false),
            ("INSERT INTO t VALUES (NEXTVAL(victim.s));\n", false),
            ("INSERT INTO t VALUES ((SELECT SETVAL(victim.s, 5000)));\n", false),
            ("INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = NEXTVAL(victim.s);\n", false),
            ("INSERT INTO t VALUES ((@OLD_LOG_BIN := 1));\n", false),
            (&format!("INSERT INTO t VALUES {}(victim.f());\n", "(1),".repeat(400)), false),
            ("INSERT INTO t SELECT * FROM victim.t;\n", false),
            ("DELIMITER ;;\nCREATE FUNCTION f() RETURNS int RETURN 1 ;;\nDELIMITER ;\nCREATE TABLE t2 AS SELECT f() AS x;\n", false),
            ("CREATE TABLE t2 AS SELECT * FROM victim.t;\n", false),
            ("CREATE TABLE t (a int DEFAULT NEXTVAL(victim.s), b int);\n", false),
            // A sixth review's: quotes in a comment of a version no server has (code to the
            // client), modes that bring ANSI_QUOTES, and an escaped quote in a SET's value.
            ("CREATE TABLE t (a int);\n/*M!999999 ' */ SET @a = '\n\\u victim\n';\nINSERT INTO t VALUES (7777);\n", false),
            ("CREATE TABLE t (`\\` int, b bigint);\nSET sql_mode = 'POSTGRESQL';\nINSERT INTO t VALUES (\"\\\", NEXTVAL(victim.s)) #\"\n;\n", false),
            ("SET @m='ANSI_QUOTES';\nSET sql_mode=@m;\nINSERT INTO t VALUES (\"\\\", NEXTVAL(victim.s)) #\"\n;\n", false),
            ("SET @x = 'q\\', sql_mode = \"NO_BACKSLASH_ESCAPES\", @y = ';\nINSERT INTO t VALUES ('a\\'b', NEXTVAL(victim.s)) #'\n;\n", false),
            ("INSERT INTO t VALUES (1, INTO f(1));\n", false),
        ] {
            let mut p = policy(false);
            p.disable_events = disable;
            let mut g = Guard::new(Vec::new(), p);
            let refused = match g.write_all(hostile.as_bytes()) {
                Err(_) => true,
                Ok(()) => match g.finish() {
                    Err(_) => true,
                    // An event passes only as created disabled.
                    Ok(out) => {
                        let out = String::from_utf8_lossy(&out).into_owned();
                        assert!(disable && out.contains("DISABLE DO"), "{hostile}: passed as {out}");
                        false
                    }
                },
            };
            let _ = refused;
        }
        // A sequence as a dump sets it still passes.
        let mut g = Guard::new(Vec::new(), policy(false));
        g.write_all(b"SELECT SETVAL(`s`, 1001, 0);\nDO SETVAL(`s`, 1001, 0);\n")
            .unwrap();
        g.finish().unwrap();
        // A dump's rows of every kind pass the INSERT check.
        let mut g = Guard::new(Vec::new(), policy(false));
        g.write_all(b"INSERT INTO `t` VALUES (1,-2.5e-3,NULL,'it''s \\' ; DROP',_binary 'x',X'0f',0x1F,b'101',TRUE),(2,0.5,'a(b)@c.d',NULL,NULL,NULL,0,0,FALSE);\nINSERT IGNORE INTO `t` (`a`, `b`) VALUES (3,4);\nREPLACE INTO `t` VALUES (5);\nINSERT INTO t VALUES(6);\n").unwrap();
        g.finish().unwrap();
        // The dump's own charset and mode switching still passes.
        let dump = "/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n/*!40101 SET NAMES utf8mb4 */;\n/*!40101 SET @saved_cs_client     = @@character_set_client */;\n/*!50003 SET character_set_client  = utf8mb4 */ ;\n/*!50003 SET character_set_client = @saved_cs_client */ ;\n/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;\nALTER TABLE `t` DISABLE KEYS;\nDROP TABLE IF EXISTS `t`;\n";
        let mut g = Guard::new(Vec::new(), policy(false));
        g.write_all(dump.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(g.finish().unwrap()).unwrap(), dump);
    }

    /// A CREATE TABLE or SEQUENCE, a SET and a LOCK TABLES are read whole before any of it is
    /// sent: what they reach can stand past their head (a long column or variable list), and a
    /// sequence can be named without NEXTVAL. A dump's own tables (long ones, foreign keys to
    /// other databases, decimal defaults, a MERGE of its own tables, the target's sequence) and
    /// settings pass unchanged.
    #[test]
    fn statements_that_reach_past_their_head_are_read_whole_before_they_are_sent() {
        let mariadb = sqlscan::ServerVersion {
            mariadb: true,
            number: 101_119,
        };
        let load_as = |target: &str, sql: &[u8], size: usize| -> Result<Vec<u8>, String> {
            let policy = Policy {
                server: Some(mariadb),
                ..Policy::plain("shop", target)
            };
            let mut g = Guard::new(Vec::new(), policy);
            sql.chunks(size)
                .try_for_each(|c| g.write_all(c))
                .map_err(|e| e.to_string())?;
            g.finish().map_err(|e| e.to_string())
        };
        let load = |sql: &str, size: usize| load_as("copy", sql.as_bytes(), size);
        let cols: String = (0..40)
            .map(|i| format!("  `column_number_{i}` decimal(5,2) DEFAULT 1.50,\n"))
            .collect();
        let pad: String = (0..60).map(|i| format!("@variable_{i} = {i}, ")).collect();
        let locks: String = (0..60).map(|i| format!("`table_{i}` WRITE, ")).collect();
        let hostile = [
            "CREATE TABLE t (a int DEFAULT NEXT VALUE FOR victim.s, b int);\n".to_string(),
            "CREATE TABLE t (a int DEFAULT PREVIOUS VALUE FOR `victim`.`s`);\n".to_string(),
            format!("CREATE TABLE t (\n{cols}  `z` int DEFAULT NEXTVAL(victim.s)\n);\n"),
            format!("CREATE TABLE t (\n{cols}  `z` int\n) AS SELECT * FROM victim.t;\n"),
            format!("CREATE TABLE t (\n{cols}  `z` int CHECK (`z` > (SELECT 1))\n);\n"),
            "CREATE TABLE m (a int) ENGINE=MERGE UNION=(`victim`.`t`) INSERT_METHOD=LAST;\n".to_string(),
            "CREATE TABLE f (a int) ENGINE=FEDERATED CONNECTION='mysql://root@127.0.0.1/victim/t';\n".to_string(),
            "CREATE TABLE f (a int) ENGINE = `CONNECT` TABLE_TYPE=MYSQL DBNAME='victim' TABNAME='t';\n".to_string(),
            "CREATE TABLE f (a int) ENGINE=SPIDER COMMENT='table \"victim.t\"';\n".to_string(),
            "CREATE TABLE t (a int) DATA DIRECTORY='/tmp/x';\n".to_string(),
            "CREATE TABLE t (a int) /*!50100 PARTITION BY HASH (a) (PARTITION p0 INDEX DIRECTORY='/tmp/y') */;\n".to_string(),
            "CREATE TABLE t LIKE victim.t;\n".to_string(),
            "CREATE TABLE t (a int DEFAULT NEXT VALUE FOR victim /* x */ . s);\n".to_string(),
            "CREATE TABLE t (a int DEFAULT NEXT VALUE FOR victim\u{b}.s);\n".to_string(),
            "CREATE TABLE t (a int DEFAULT NEXT VALUE FOR \u{e9}copy.s);\n".to_string(),
            "CREATE TABLE t (a int) /*!50100 UNION=(victim.t) */;\n".to_string(),
            // The session's escapes decide where the comment ends, for the check as for the
            // server.
            "SET sql_mode = 'NO_BACKSLASH_ESCAPES';\nCREATE TABLE t (a int COMMENT 'x\\', b int DEFAULT NEXT VALUE FOR victim.s, c int COMMENT '');\n".to_string(),
            "CREATE SEQUENCE s2 ENGINE=FEDERATED CONNECTION='mysql://x/victim/s';\n".to_string(),
            // A SET sets the session to literals and variables only.
            "SET @x = NEXTVAL(victim.s);\n".to_string(),
            "SET @x = victim.f();\n".to_string(),
            "SET NAMES utf8mb4, @x = NEXT VALUE FOR victim.s;\n".to_string(),
            "SET TIME_ZONE = (SELECT tz FROM victim.t LIMIT 1);\n".to_string(),
            format!("SET {pad} @x := NEXTVAL(victim.s);\n"),
            format!("SET {pad} GLOBAL max_connections = 1;\n"),
            format!("SET {pad} @@global.max_connections = 1;\n"),
            format!("LOCK TABLES {locks} victim.t WRITE;\n"),
            // A seventh review's: the executable comment a MariaDB 10.11 server skips hid the
            // dot before another database's name (the check read its code), and a foreign
            // key to another database's table holds that table's rows.
            "CREATE TABLE `x` (`id` int NOT NULL DEFAULT NEXTVAL(/*!110000 copy.*/victim.s), `b` int);\n".to_string(),
            "CREATE TABLE `mm` (`a` int) ENGINE=MRG_MyISAM UNION=(/*!110000 copy.*/victim.m1) INSERT_METHOD=LAST;\n".to_string(),
            "SET @x = NEXT VALUE FOR /*!110000 ,.*/victim.s, @y = 1;\n".to_string(),
            "CREATE TABLE `c` (`id` int, KEY (`id`), CONSTRAINT `fk` FOREIGN KEY (`id`) REFERENCES `victim`.`t` (`id`)) ENGINE=InnoDB;\n".to_string(),
            // A ninth review's: a compound statement, a character set or mode set where the
            // splitter did not see it (in a list, after a comment or a quote, through a
            // quoted variable name), a server-wide function, replication settings, and an
            // engine named in quotes.
            "DELIMITER ;;\nBEGIN NOT ATOMIC DO victim.f(); END;;\nDELIMITER ;\n".to_string(),
            "SET autocommit=1, NAMES gbk;\nCREATE TABLE y (a int) COMMENT '\u{bf}\\'; INSERT INTO victim.t VALUES (14); -- ';\n".to_string(),
            "SET NAMES/**/gbk;\n".to_string(),
            "SET NAMES'gbk';\n".to_string(),
            "SET @a=1, CHARACTER SET gbk;\n".to_string(),
            "SET @c=@@character_set_client;\nSET @'c'='gbk';\nSET character_set_client=@c;\n".to_string(),
            "SET SESSION/**/sql_mode='NO_BACKSLASH_ESCAPES';\nCREATE TABLE y (a int) COMMENT 'a\\'; INSERT INTO victim.t VALUES (17); -- ';\n".to_string(),
            "SET SESSION# x\nsql_mode='NO_BACKSLASH_ESCAPES';\nCREATE TABLE y (a int) COMMENT 'a\\'; INSERT INTO victim.t VALUES (17); -- ';\n".to_string(),
            "SET @m='';\nSET @'m'='NO_BACKSLASH_ESCAPES';\nSET sql_mode=@m;\n".to_string(),
            "CREATE FUNCTION ed25519_password RETURNS STRING SONAME 'auth_ed25519.so';\n".to_string(),
            "SET gtid_domain_id=77, server_id=4242, gtid_seq_no=999999999;\n".to_string(),
            "SET @@session.skip_replication=1;\n".to_string(),
            "SET SESSION sql_log_off=1;\n".to_string(),
            "CREATE TABLE z (a int) ENGINE='FEDERATED' COMMENT='mysql://x/victim/t';\n".to_string(),
            // A tenth review's: under another delimiter the client sends several statements
            // as one, and the server runs each; and `@@name` without a scope.
            "DELIMITER ;;\nCREATE PROCEDURE p() SELECT 1; DELETE FROM victim.t WHERE b=1; SELECT victim.f() ;;\nDELIMITER ;\n".to_string(),
            "DELIMITER $$\nCREATE PROCEDURE p() BEGIN SELECT 1; END; USE victim; DELETE FROM t $$\nDELIMITER ;\n".to_string(),
            "DELIMITER ;;\nCREATE PROCEDURE p(begin int) SELECT 1; DELETE FROM t; END ;;\nDELIMITER ;\n".to_string(),
            "DELIMITER ;;\nCREATE PROCEDURE p() BEGIN SELECT 1 begin UNION SELECT 2; END; DELETE FROM t; END ;;\nDELIMITER ;\n".to_string(),
            "DELIMITER ;;\nCREATE PROCEDURE p() BEGIN SELECT 1 AS end; END; DELETE FROM t; BEGIN END ;;\nDELIMITER ;\n".to_string(),
            "DELIMITER ;;\nCREATE VIEW vz AS SELECT 1; USE victim ;;\nDELIMITER ;\n".to_string(),
            "DELIMITER ;;\nCREATE TABLE y (a int); USE victim ;;\nDELIMITER ;\n".to_string(),
            "DELIMITER ;;\nLOCK TABLES x WRITE; USE victim ;;\nDELIMITER ;\n".to_string(),
            "DELIMITER ;;\nCREATE EVENT e ON SCHEDULE EVERY 1 DAY DO SELECT 1; USE victim ;;\nDELIMITER ;\n".to_string(),
            "SET @@server_id=77;\n".to_string(),
            "SET @@gtid_domain_id=9;\n".to_string(),
            "SET timestamp=1000000000;\n".to_string(),
        ];
        for sql in &hostile {
            for size in [1, 7, 100, 1 << 20] {
                let e = load(sql, size).expect_err(sql);
                assert!(e.contains("refused"), "{sql}: {e}");
            }
        }
        let dump = [
            format!("CREATE TABLE `t` (\n{cols}  `p` int DEFAULT NULL,\n  `select` int, `connection` int, `data` int,\n  CONSTRAINT `fk` FOREIGN KEY (`p`) REFERENCES `copy`.`parent` (`id`) ON DELETE CASCADE\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='a.b SELECT, CONNECTION, DATA DIRECTORY'\n/*!50100 PARTITION BY RANGE (`p`) (PARTITION `p0` VALUES LESS THAN (10) ENGINE = InnoDB) */;\n"),
            "CREATE TABLE `s_user` (`a` int DEFAULT nextval(`copy`.`s`), `b` int DEFAULT NEXT VALUE FOR s);\n".to_string(),
            "CREATE TABLE `m` (`a` int) ENGINE=MRG_MyISAM UNION=(`t1`,`t2`) INSERT_METHOD=LAST;\n".to_string(),
            "CREATE TABLE `copy`.`n` (`a` double DEFAULT -2.5e-3, `b` decimal(9,3) DEFAULT 0.125);\n".to_string(),
            "CREATE SEQUENCE `s` start with 1 minvalue 1 maxvalue 9223372036854775806 increment by 1 cache 1000 nocycle ENGINE=InnoDB;\n".to_string(),
            format!("SET {} @x = 1.5, @@SESSION.SQL_LOG_BIN= 1, @@session . `unique_checks` = DEFAULT, @saved_cs_client     = @@character_set_client, TIME_ZONE='+00:00';\n", &pad[..200]),
            "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;\n/*!50503 SET NAMES utf8mb4 */;\n".to_string(),
            // Compound bodies, as a dump writes routines, triggers and events.
            "DELIMITER ;;\nCREATE DEFINER=`root`@`localhost` PROCEDURE `p`()\nBEGIN\n  DECLARE done INT DEFAULT 0;\n  DECLARE CONTINUE HANDLER FOR NOT FOUND BEGIN SET done = 1; END;\n  lbl: LOOP\n    IF done THEN LEAVE lbl; END IF;\n    SET done = CASE WHEN done THEN 1 ELSE 0 END;\n    WHILE done < 0 DO BEGIN SET done = done + 1; END; END WHILE;\n  END LOOP lbl;\n  BEGIN END;\nEND ;;\nDELIMITER ;\n".to_string(),
            "DELIMITER ;;\n/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER tr BEFORE INSERT ON `t` FOR EACH ROW BEGIN SET NEW.a = 1; SET NEW.b = 'x;;y'; END */;;\nDELIMITER ;\n".to_string(),
            "DELIMITER ;;\nCREATE DEFINER=`root`@`localhost` FUNCTION `f`(x int) RETURNS int(11)\n    DETERMINISTIC\nBEGIN\n  RETURN x + 1;\nEND ;;\nDELIMITER ;\n".to_string(),
            "DELIMITER ;;\n/*!50106 CREATE*/ /*!50117 DEFINER=`root`@`localhost`*/ /*!50106 EVENT `ev` ON SCHEDULE EVERY 1 HOUR STARTS '2026-11-30 11:00:00' ON COMPLETION NOT PRESERVE ENABLE DO BEGIN INSERT INTO `t` VALUES (1); DELETE FROM `t`; END */ ;;\nDELIMITER ;\n".to_string(),
        ];
        for sql in &dump {
            for size in [1, 7, 100, 1 << 20] {
                assert_eq!(load(sql, size).as_deref(), Ok(sql.as_bytes()), "{sql}");
            }
        }
        // A dump's own LOCK TABLES passes as it is; one of a table whose default draws from a
        // sequence passes its check and is left out (see Mode::Whole).
        let lock = format!("LOCK TABLES {locks} `t` WRITE;\nUNLOCK TABLES;\n");
        let sequenced = "CREATE TABLE `q` (`a` int DEFAULT nextval(`s`));\n";
        for size in [1, 7, 100, 1 << 20] {
            assert_eq!(load(&lock, size).as_deref(), Ok(lock.as_bytes()), "{lock}");
            let dump = format!(
                "{sequenced}LOCK TABLES `q` WRITE;\nINSERT INTO `q` VALUES (1);\nUNLOCK TABLES;\n"
            );
            let out = String::from_utf8(load(&dump, size).expect(&dump)).unwrap();
            assert!(
                out.starts_with(sequenced)
                    && !out.contains("LOCK TABLES `q`")
                    && out.contains("INSERT INTO `q` VALUES (1);")
                    && out.contains("UNLOCK TABLES;"),
                "{out}"
            );
        }
        // Under its own name, a dump keeps its foreign key to another database's table.
        let fk = b"CREATE TABLE `c` (`id` int, CONSTRAINT `fk` FOREIGN KEY (`id`) REFERENCES `other`.`t` (`id`));\n";
        assert_eq!(load_as("shop", fk, 7).as_deref(), Ok(&fk[..]));
        // In latin1 the server reads `--` and 0xA0 as a comment, the client as code: the
        // statement would end for one and not the other.
        let latin1 = b"SET NAMES latin1;\nSET @a = 1 --\xa0 '\n; UPDATE victim.t SET v=1; #'\n;\n";
        for size in [1, 7, 1000] {
            let e = load_as("copy", latin1, size).unwrap_err();
            assert!(e.contains("outside ASCII"), "{e}");
        }
        // Nor is 0xA0 anywhere else outside quotes once the client's character set was latin1:
        // it glued a keyword or a dotted name to a word the checks let pass.
        for hostile in [
            &b"SET NAMES latin1;\nCREATE TABLE x (a int);\nSET @a=1,\xa0GLOBAL max_connections=77;\n"[..],
            b"SET NAMES latin1;\nSET @a = @x\xa0OR\xa0NEXT\xa0VALUE\xa0FOR\xa0victim.s;\n",
            b"SET NAMES latin1;\nCREATE TABLE x\xa0SELECT a, b, @x\xa0FROM\xa0victim.t;\n",
            b"/*!40101 SET character_set_client = latin1 */;\nCREATE TABLE y (a int) ENGINE=MyISAM\xa0DATA DIRECTORY='/tmp/x';\n",
            b"SET NAMES 'LATIN1';\nINSERT INTO `t` VALUES (1)\xa0;\n",
            // Past the head, where the splitter skips plain code in runs.
            &[
                b"SET NAMES latin1;\nCREATE TABLE y (\n".as_slice(),
                cols.as_bytes(),
                b"  `z` int) ENGINE=MyISAM\xa0DATA DIRECTORY='/tmp/x';\n",
            ]
            .concat(),
        ] {
            for size in [1, 7, 1000] {
                let e = load_as("copy", hostile, size).unwrap_err();
                assert!(e.contains("0xA0"), "{}: {e}", String::from_utf8_lossy(hostile));
            }
        }
        // Inside quotes it is a character like any other; and before latin1 (utf8mb4), a
        // byte of a name.
        let fine =
            b"SET NAMES latin1;\nINSERT INTO `t\xa0x` VALUES ('a\xa0b');\nSET NAMES utf8mb4;\n";
        assert_eq!(load_as("copy", fine, 7).as_deref(), Ok(&fine[..]));
    }

    /// A restore with `--force` into a database that already has triggers or views: rows for
    /// those tables and views are refused (a tenth review's: they fired a trigger and wrote
    /// through a view into another database), until the dump drops the table or the view.
    #[test]
    fn rows_never_go_into_what_the_target_already_triggers_or_views() {
        let policy = |views_dropped_after_rows| Policy {
            reached: sqlscan::Reached {
                triggered: vec!["t3".into()],
                views: vec!["vv".into()],
                reaching: vec!["mt".into()],
                views_dropped_after_rows,
            },
            ..Policy::plain("shop", "shop")
        };
        let run = |sql: &str, sessions| {
            let mut g = Guard::new(Vec::new(), policy(sessions));
            g.write_all(sql.as_bytes())
                .and_then(|()| g.finish().map(|_| ()))
                .map_err(|e| e.to_string())
        };
        let load = |sql: &str| run(sql, false);
        for hostile in [
            "INSERT INTO `t3` VALUES (1);\n",
            "INSERT INTO `vv` VALUES ('pwn', 99);\n",
            "DROP TABLE IF EXISTS `vv`;\nINSERT INTO `vv` VALUES ('pwn', 99);\n",
        ] {
            let e = load(hostile).unwrap_err();
            assert!(
                e.contains("already has a trigger or is a view"),
                "{hostile}: {e}"
            );
        }
        // A table of the target that writes elsewhere by itself (a twelfth review's: a MERGE
        // table over another database's table, a default drawing another database's
        // sequence), until the dump drops it.
        let e = load("INSERT INTO `mt` VALUES (5);\n").unwrap_err();
        assert!(
            e.contains("writes into or draws from another database"),
            "{e}"
        );
        load("DROP TABLE IF EXISTS `mt`;\nCREATE TABLE `mt` (a int);\nINSERT INTO `mt` VALUES (5);\n")
            .unwrap();
        let dropped_view =
            "/*!50001 DROP VIEW IF EXISTS `vv`*/;\nCREATE TABLE `vv` (a int);\nINSERT INTO `vv` VALUES (1);\n";
        for fine in [
            "DROP TABLE IF EXISTS `t3`;\nCREATE TABLE `t3` (a int);\nINSERT INTO `t3` VALUES (1);\n",
            dropped_view,
        ] {
            load(fine).unwrap();
        }
        // An eleventh review's: several sessions run a DROP VIEW after the rows, which went
        // through the view; and a temporary table's drop dropped no trigger.
        let e = run(dropped_view, true).unwrap_err();
        assert!(e.contains("restore with --jobs 1"), "{e}");
        for hostile in [
            "DROP TEMPORARY TABLE IF EXISTS `t3`;\nINSERT INTO `t3` VALUES (1);\n",
            "CREATE TEMPORARY TABLE `t3` (a int);\nDROP TABLE `t3`;\nINSERT INTO `t3` VALUES (1);\n",
            "/*!32312 CREATE TEMPORARY*/ TABLE `t9` (a int);\n",
        ] {
            let e = load(hostile).unwrap_err();
            assert!(e.contains("TEMPORARY TABLE …` is not a statement"), "{hostile}: {e}");
        }
    }

    /// A dump's `DROP FUNCTION IF EXISTS f` would drop a server-wide function (a UDF) named `f`
    /// if there is one: it is aimed at the target's stored function only (a tenth review's).
    #[test]
    fn a_dropped_function_is_the_targets_own() {
        let load = |sql: &str| {
            let mut g = Guard::new(Vec::new(), Policy::plain("shop", "copy"));
            g.write_all(sql.as_bytes()).unwrap();
            String::from_utf8(g.finish().unwrap()).unwrap()
        };
        assert_eq!(
            load("/*!50003 DROP FUNCTION IF EXISTS `ed25519_password` */;\n"),
            "DROP FUNCTION IF EXISTS `copy`.`ed25519_password`;\n"
        );
        assert_eq!(
            load("DELIMITER ;;\nDROP FUNCTION f;;\nDELIMITER ;\n"),
            "DELIMITER ;;\nDROP FUNCTION `copy`.`f`;;\nDELIMITER ;\n"
        );
        let qualified = "DROP FUNCTION IF EXISTS `copy`.`f`;\n";
        assert_eq!(load(qualified), qualified);
    }

    /// A failed load's client input stays open until the caller releases it (having killed
    /// the client, which would otherwise run a statement cut short at the end of its input); a
    /// finished load's input is written whole and closed.
    #[test]
    fn the_write_ahead_closes_a_failed_load_only_when_released() {
        use std::sync::{Arc, Mutex};
        /// Records what it is given, and whether it was dropped (the input closed).
        struct Input(Arc<Mutex<(Vec<u8>, bool)>>);
        impl Write for Input {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().0.extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        impl Drop for Input {
            fn drop(&mut self) {
                self.0.lock().unwrap().1 = true;
            }
        }
        let wait_closed = |seen: &Arc<Mutex<(Vec<u8>, bool)>>| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while !seen.lock().unwrap().1 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the input never closed"
                );
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        };
        let big = vec![b'x'; CHUNK + 10];
        // Finished: everything arrives, then the input closes.
        let seen = Arc::new(Mutex::new((Vec::new(), false)));
        let (_hold, release) = sync_channel::<()>(0);
        let mut ahead = WriteAhead::start(Input(Arc::clone(&seen)), release).unwrap();
        ahead.bytes(&big).unwrap();
        ahead.bytes(b"INSERT INTO t VALUES (1);").unwrap();
        ahead.done().unwrap();
        assert_eq!(seen.lock().unwrap().0.len(), big.len() + 25);
        wait_closed(&seen);
        // Failed: what was queued may arrive, but the input stays open until released.
        let seen = Arc::new(Mutex::new((Vec::new(), false)));
        let (hold, release) = sync_channel::<()>(0);
        let mut ahead = WriteAhead::start(Input(Arc::clone(&seen)), release).unwrap();
        ahead.bytes(&big).unwrap();
        ahead.bytes(b"DELETE FROM t WHERE id = 1").unwrap();
        drop(ahead);
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(
            !seen.lock().unwrap().1,
            "a failed load's input closed before its release"
        );
        drop(hold);
        wait_closed(&seen);
        assert!(seen.lock().unwrap().0.len() <= big.len());
    }

    /// The INSERT check reads runs at a time (a quote's body, a word, the bytes between
    /// values): whatever the writes, it passes the rows a dump writes and refuses the rest.
    #[test]
    fn the_insert_check_reads_the_same_whatever_the_writes() {
        let long = "a value longer than sixteen bytes, \\' still quoted; NEXTVAL(victim.s)";
        let cases: &[(&str, bool, bool)] = &[
            ("INSERT INTO `t` VALUES (1,-2.5e-3,NULL,'it''s \\' ; DROP',_binary 'x',X'0f',0x1F,b'101',TRUE),(2,0.5,'a(b)@c.d',NULL,N'n',1.7976931348623157e308,0,0,FALSE);", false, true),
            (&format!("INSERT IGNORE INTO `t` (`a`, `b\\`) VALUES ('{long}',\"{}\");", long.replace('"', "")), false, true),
            (&format!("REPLACE INTO `{}` VALUE (1);", "long_table_name_".repeat(6)), false, true),
            ("INSERT INTO t VALUES ('a\\', 2);", true, true),
            ("INSERT INTO t VALUES (NEXTVAL(victim.s));", false, false),
            ("INSERT INTO t VALUES ((@v := 1));", false, false),
            ("INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = 1;", false, false),
            ("INSERT INTO t VALUES ((SELECT 1));", false, false),
            ("INSERT INTO t VALUES (1(2));", false, false),
            ("INSERT INTO t VALUES (.5);", false, false),
            ("INSERT INTO victim.t VALUES (1);", false, false),
            ("INSERT INTO t VALUES (x '0f');", false, false),
            (&format!("INSERT INTO t VALUES ({});", "nul".repeat(30)), false, false),
            ("INSERT INTO t VALUES ('a\\', NEXTVAL(s));", true, false),
            (&format!("INSERT INTO t VALUES ('{long}', f(1));"), false, false),
            ("INSERT DELAYED INTO t VALUES (-1,-2.5e-3);", false, true),
            // A comment's quote would hide what follows from the check, not from the server.
            ("INSERT INTO t VALUES (1) /* ' */, (NEXTVAL(victim.s)) /* ' */;", false, false),
            ("INSERT INTO t VALUES (1) # '\n, (NEXTVAL(victim.s)) # '\n;", false, false),
            ("INSERT INTO t VALUES (1) -- '\n, (NEXTVAL(victim.s)) -- '\n;", false, false),
            ("INSERT INTO t VALUES (1,--2);", false, false),
            ("INSERT INTO `t` SELECT 1;", false, false),
            // A sixth review's: bytes of a multi-byte character are part of a name to the
            // server, and a word that starts with a digit can be a name too.
            ("INSERT INTO t VALUES ('x', \u{e9}INTO || LOAD_FILE('/etc/passwd'));", false, false),
            ("INSERT INTO t VALUES (\u{e9}(1));", false, false),
            ("INSERT INTO t VALUES (\u{e9} (1));", false, false),
            ("INSERT INTO t VALUES (1db.f (1));", false, false),
            ("INSERT INTO t VALUES (1e (1));", false, false),
            ("INSERT INTO t VALUES (0x (1));", false, false),
            ("INSERT INTO t VALUES (0xg);", false, false),
            ("INSERT INTO t VALUES (0b12);", false, false),
            ("INSERT INTO t VALUES (1e5e);", false, false),
            ("INSERT INTO t VALUES (1.5.f);", false, false),
            ("INSERT INTO t VALUES (1e-5,1E+300,1.,0.5e3,0xDEADbeef,0b1010,-0.0,12345678901234567890);", false, true),
            ("INSERT INTO t VALUES ('\u{e9}t\u{e9}',_utf8mb4'\u{e9}');", false, true),
            // Bare column names: `--skip-quote-names --complete-insert`, and the history
            // columns of `--dump-history`; still no call, qualified name or word in the rows.
            ("INSERT INTO `sv` (`id`, `x`, row_start, row_end) VALUES (1,2,'2026-01-01 00:00:00.000000','2038-01-19 03:14:07.999999');", false, true),
            ("INSERT INTO g (id, a, b, c) VALUES (1,2,3,4),(5,6,7,8);", false, true),
            ("INSERT INTO g (id, f(1)) VALUES (1);", false, false),
            ("INSERT INTO g (victim.t) VALUES (1);", false, false),
            ("INSERT INTO g (a) SELECT 1;", false, false),
            ("INSERT INTO g (a) VALUES (a);", false, false),
            ("INSERT INTO g (a) VALUES (1) ON DUPLICATE KEY UPDATE a = 2;", false, false),
            // An eighth review's: a second `(` before the rows opened a subquery whose words
            // passed as column names.
            ("INSERT INTO x (a) (SELECT LOAD_FILE ('/etc/hostname'));", false, false),
            ("INSERT INTO x (a, (SELECT 1)) VALUES (1);", false, false),
            ("INSERT INTO x (a, f (1)) VALUES (1);", false, false),
            ("INSERT INTO `x` (`a`) (SELECT 1);", false, false),
            ("INSERT INTO x(a) VALUES(1);", false, true),
            // An eleventh review's: a name in backquotes among the values is a column or a
            // function call to the server (`load_file` read a server file into the table).
            ("INSERT INTO `loot` VALUES (1,`load_file`('/etc/passwd'));", false, false),
            ("INSERT INTO `t` VALUES (3,`hook`());", false, false),
            ("INSERT INTO `t` VALUES (3,`hook` ());", false, false),
            ("INSERT INTO `t` VALUES (`id`);", false, false),
            ("INSERT INTO `t` (`a`, `b`) VALUES ('`x`', \"`y`\");", false, true),
        ];
        for (sql, nbe, ok) in cases {
            for size in [1, 2, 3, 7, 17, 1000] {
                let mut check = InsertCheck::new(*nbe, 0);
                let read = sql.as_bytes().chunks(size).try_for_each(|c| check.feed(c));
                assert_eq!(read.is_ok(), *ok, "{sql} in writes of {size}: {read:?}");
            }
        }
        // Comments before the statement's code are no part of its values: a dump made without
        // `LOCK TABLES` writes its "Dumping data" comment right before the first INSERT.
        let lead =
            "--\n-- Dumping data for table `t`\n--\n\n/* it's a comment */ # and 'another'\n";
        let dump = format!("CREATE TABLE `t` (a int);\n{lead}INSERT INTO `t` VALUES (1);\n{lead}INSERT INTO `t` VALUES (2) /* ' */, (NEXTVAL(victim.s)) /* ' */;\n");
        let policy = || Policy::plain("shop", "shop");
        for size in [1, 3, 7, 1000] {
            let mut g = Guard::new(Vec::new(), policy());
            let e = dump
                .as_bytes()
                .chunks(size)
                .try_for_each(|c| g.write_all(c))
                .unwrap_err();
            assert!(
                e.to_string().contains("a comment between its values"),
                "{e}"
            );
            let sent = String::from_utf8_lossy(&g.inner);
            assert!(
                sent.contains("VALUES (1);") && !sent.contains("victim"),
                "{sent}"
            );
        }
    }

    /// With `disable_events`, the dump's events reach the server disabled, however the dump
    /// splits into writes; everything else passes unchanged.
    #[test]
    fn the_guard_creates_events_disabled_when_asked() {
        let dump = "CREATE TABLE `t` (a int);\nDELIMITER ;;\n/*!50106 CREATE*/ /*!50117 DEFINER=`root`@`localhost`*/ /*!50106 EVENT `tick` ON SCHEDULE EVERY 1 SECOND STARTS '2026-11-30 11:00:00' ON COMPLETION NOT PRESERVE ENABLE DO INSERT INTO `t` VALUES (1) */ ;;\nDELIMITER ;\n-- Dump completed\n";
        for (disable, want) in [
            (
                true,
                dump.replace("PRESERVE ENABLE DO", "PRESERVE DISABLE DO"),
            ),
            (false, dump.to_string()),
        ] {
            for size in [1, 7, 1000] {
                let mut g = Guard::new(
                    Vec::new(),
                    Policy {
                        disable_events: disable,
                        ..Policy::plain("shop", "shop")
                    },
                );
                for c in dump.as_bytes().chunks(size) {
                    g.write_all(c).unwrap();
                }
                assert_eq!(String::from_utf8(g.finish().unwrap()).unwrap(), want);
            }
        }
    }
}
