//! Where backups live: a small [`Storage`] trait with a written contract, its implementations
//! (local directory, S3; an in-memory one for tests, with the behaviour suite, only under the
//! `testkit` feature) and the one factory that picks them.
//!
//! Keys are `/`-separated paths relative to the storage root (see [`crate::layout`]). This module
//! knows nothing of indexes, retention or dumps; it moves bytes and reports failures by key.

#[cfg(any(test, feature = "testkit"))]
pub mod behaviour;
pub mod local;
#[cfg(any(test, feature = "testkit"))]
pub mod memory;
pub mod s3;

use std::fmt;
use std::io::{Read, Write};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::{StorageKind, StorageSettings};

/// Metadata of one stored object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    pub modified: Option<DateTime<Utc>>,
}

/// Something a killed run left behind: a temp file, or an incomplete multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Orphan {
    /// `temp_file` or `upload`.
    pub kind: &'static str,
    pub key: String,
    /// The upload id, for incomplete uploads.
    pub upload_id: Option<String>,
    pub size: u64,
    pub modified: Option<DateTime<Utc>>,
}

/// What one pass over a prefix finds ([`Storage::survey`]).
#[derive(Debug, Default)]
pub struct Survey {
    /// Every key under the prefix, in no particular order, with its size where the listing
    /// gives it at no cost (an S3 listing carries sizes; a local one would read every inode).
    pub keys: Vec<(String, Option<u64>)>,
    /// The orphans under the prefix, as [`Storage::orphans`] gives them, when the same pass
    /// finds them (a local storage's temp files); `None`: ask [`Storage::orphans`].
    pub orphans: Option<Vec<Orphan>>,
}

/// The largest object [`Storage::get_bytes`] reads: an index of a million records is far less.
pub const MAX_SMALL_OBJECT: u64 = 1 << 30;

/// Reads `r` whole, failing (`InvalidData`) once it holds more than `max` bytes.
fn read_capped(r: impl Read, max: u64) -> std::io::Result<Vec<u8>> {
    read_capped_into(r, max, Vec::new())
}

/// [`read_capped`] into `buf` (whose capacity may be the size expected, plus one byte).
fn read_capped_into(r: impl Read, max: u64, mut buf: Vec<u8>) -> std::io::Result<Vec<u8>> {
    r.take(max + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(too_large(max));
    }
    Ok(buf)
}

/// The error of an object over the cap `max` of [`Storage::get_bytes_at_most`].
fn too_large(max: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "larger than any index, manifest or state file sqlguard writes ({}): move it aside",
            crate::ui::human_bytes(max)
        ),
    )
}

/// A writer that keeps what it is given in memory, up to `max` bytes: one more fails the write
/// (and marks it `over`), so a download into it stops there.
struct CappedBuffer {
    buf: Vec<u8>,
    max: u64,
    over: bool,
}

impl std::io::Write for CappedBuffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() as u64 + b.len() as u64 > self.max {
            self.over = true;
            return Err(too_large(self.max));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A storage failure, naming the storage, the key and what was being done.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage '{storage}': {op} {location}: {cause}")]
    Io {
        storage: String,
        op: &'static str,
        location: String,
        cause: std::io::Error,
    },
    #[error("storage '{storage}': {location} does not exist")]
    NotFound { storage: String, location: String },
    /// A key that would leave the storage root or is not a key at all (from a tampered index,
    /// say); refused before any I/O.
    #[error("storage '{storage}': refusing key '{key}': {reason}")]
    InvalidKey {
        storage: String,
        key: String,
        reason: String,
    },
    #[error("storage '{storage}' ({location}): {message}")]
    Remote {
        storage: String,
        location: String,
        message: String,
    },
}

/// Checks `key` for `storage` ([`crate::layout::check_key`]); every implementation calls it
/// before any I/O.
pub fn check_key(storage: &str, key: &str) -> Result<(), StorageError> {
    crate::layout::check_key(key).map_err(|reason| StorageError::InvalidKey {
        storage: storage.to_string(),
        key: key.to_string(),
        reason,
    })
}

/// Checks a listing prefix: empty (everything) or a key, optionally ending with `/`.
pub fn check_prefix(storage: &str, prefix: &str) -> Result<(), StorageError> {
    if prefix.is_empty() {
        return Ok(());
    }
    check_key(storage, prefix.strip_suffix('/').unwrap_or(prefix))
}

impl StorageError {
    /// Whether the error says the object is missing.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }

    /// Whether a write that failed with this error may still have landed: a remote request
    /// whose answer was lost (a timeout, a dropped connection) may be carried out after the
    /// client gave up. A local write that failed did not happen.
    pub fn may_have_landed(&self) -> bool {
        matches!(self, StorageError::Remote { .. })
    }
}

/// An object being written. Nothing is visible under its key until [`ObjectWriter::commit`]
/// returns `Ok`; [`ObjectWriter::abort`], or dropping the writer, leaves nothing under the key.
pub trait ObjectWriter: Write + Send {
    /// Makes every written byte durable and visible under the key.
    fn commit(self: Box<Self>) -> Result<(), StorageError>;
    /// Discards what was written. Never fails: leftovers are the orphan cleaner's job.
    fn abort(self: Box<Self>);
}

/// An exclusive lock held until dropped.
pub struct StorageLock {
    _file: std::fs::File,
}

impl fmt::Debug for StorageLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StorageLock")
    }
}

impl StorageLock {
    /// Blocks until the lock file at `path` is exclusively locked, creating it (0600) if needed.
    pub fn acquire(path: &std::path::Path) -> std::io::Result<StorageLock> {
        Self::from_file(crate::joblock::open_lock_file(path)?)
    }

    /// Waits until `file` is exclusively locked, or a signal asks the run to stop (an error of
    /// kind `Interrupted`: a run waiting for another's index update still ends at SIGTERM).
    pub fn from_file(file: std::fs::File) -> std::io::Result<StorageLock> {
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(StorageLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if crate::signals::stopping() => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::Interrupted,
                        "interrupted by a signal while waiting for another run's index update",
                    ))
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(e),
            }
        }
    }
}

/// A place that holds backup objects, manifests and indexes.
///
/// The contract each implementation keeps (tested by one behaviour suite against all of them):
/// - every key is checked with [`crate::layout::check_key`] before any I/O: an absolute key, a
///   `.` or `..` component or an empty one is refused with `InvalidKey`, and nothing is ever
///   read, written or deleted outside the storage root;
/// - `put_stream` writes atomically: the key shows either nothing or the whole committed object;
/// - `put_bytes` replaces an existing object atomically;
/// - `get` and `get_bytes` of a missing key give `NotFound` and `Ok(None)` respectively;
/// - `list` of a prefix that matches nothing is empty, and returns keys in ascending order;
/// - `delete` of a missing key succeeds;
/// - `lock` serializes read-modify-write cycles between processes on this host.
pub trait Storage: Send + Sync + fmt::Debug {
    /// The configured name.
    fn name(&self) -> &str;
    /// Where it is, for messages: a directory or `s3://bucket/prefix`.
    fn location(&self) -> String;
    /// Starts writing `key`; `size_hint` is the expected size, if known.
    fn put_stream(
        &self,
        key: &str,
        size_hint: Option<u64>,
    ) -> Result<Box<dyn ObjectWriter>, StorageError>;
    /// Writes a small object at once, replacing any previous one atomically.
    fn put_bytes(&self, key: &str, data: &[u8]) -> Result<(), StorageError>;
    /// Opens `key` for reading.
    fn get(&self, key: &str) -> Result<Box<dyn Read + Send>, StorageError>;
    /// The object as a local file handle, when the storage keeps objects in local files
    /// (`Ok(None)` otherwise, or when it does not exist): a restore reads such a copy twice
    /// through one handle instead of spooling it, and a rename cannot swap it between the two.
    fn open_file(&self, key: &str) -> Result<Option<std::fs::File>, StorageError> {
        let _ = key;
        Ok(None)
    }
    /// Reads a small object whole; `Ok(None)` when it does not exist.
    ///
    /// Fails on an object over [`MAX_SMALL_OBJECT`], which sqlguard never writes: a file
    /// planted or damaged at an index or manifest key is an error, not memory exhausted.
    fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.get_bytes_at_most(key, MAX_SMALL_OBJECT)
    }
    /// [`Storage::get_bytes`] with the cap `max`: never holds more than `max + 1` bytes of the
    /// object, and fails when it has more than `max`.
    fn get_bytes_at_most(&self, key: &str, max: u64) -> Result<Option<Vec<u8>>, StorageError> {
        match self.get(key) {
            Ok(r) => {
                let buf = read_capped(r, max).map_err(|cause| StorageError::Io {
                    storage: self.name().to_string(),
                    op: "reading",
                    location: key.to_string(),
                    cause,
                })?;
                Ok(Some(buf))
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
    /// Size and time of `key`; `Ok(None)` when it does not exist.
    fn stat(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError>;
    /// Every object whose key starts with `prefix`, sorted by key.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError>;
    /// The keys [`Storage::list`] gives, sorted, without their metadata: for callers that need
    /// the metadata of a few keys at most (and a local storage then reads no file's inode).
    fn list_keys(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        Ok(self.list(prefix)?.into_iter().map(|m| m.key).collect())
    }
    /// The keys [`Storage::list_keys`] gives; fails, naming it, on an entry on the way to
    /// `prefix` or under it that a listing would skip as neither an object nor a directory
    /// (a local link, FIFO, socket or device), or on a directory under it whose key
    /// `file_like` says is a file's. For the index, where skipping it would hide the records
    /// it stands for.
    fn list_keys_strict(
        &self,
        prefix: &str,
        file_like: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<String>, StorageError> {
        let _ = file_like;
        self.list_keys(prefix)
    }
    /// The keys under `prefix` in one pass, with what else that pass gives at no cost: sizes
    /// where the listing carries them, the orphans last touched before `older_than` where it
    /// finds them. For a prune, which needs every key, the sizes of a few and the orphans.
    fn survey(&self, prefix: &str, older_than: DateTime<Utc>) -> Result<Survey, StorageError> {
        let _ = older_than;
        Ok(Survey {
            keys: self
                .list(prefix)?
                .into_iter()
                .map(|m| (m.key, Some(m.size)))
                .collect(),
            orphans: None,
        })
    }
    /// Deletes `key`; a missing key succeeds.
    fn delete(&self, key: &str) -> Result<(), StorageError>;
    /// Deletes `keys`, in as few requests as the storage allows (S3: `DeleteObjects`, 1,000 a
    /// request); a missing key succeeds. Returns the keys that could not be deleted, each with
    /// its error.
    ///
    /// Fails as a whole, deleting nothing, for a key that leaves the root; fails as a whole
    /// when a request itself failed (then what it covered is not known to be deleted).
    fn delete_many(&self, keys: &[String]) -> Result<Vec<(String, StorageError)>, StorageError> {
        for k in keys {
            check_key(self.name(), k)?;
        }
        Ok(keys
            .iter()
            .filter_map(|k| self.delete(k).err().map(|e| (k.clone(), e)))
            .collect())
    }
    /// Takes the exclusive lock called `name` (e.g. `main/index`), blocking until it is free.
    fn lock(&self, name: &str) -> Result<StorageLock, StorageError>;
    /// Leftovers of killed runs under `prefix` last touched before `older_than`: temp files of
    /// uncommitted writes, incomplete multipart uploads. Only sqlguard's own temp names match.
    fn orphans(&self, prefix: &str, older_than: DateTime<Utc>)
        -> Result<Vec<Orphan>, StorageError>;
    /// Removes an orphan found by [`Storage::orphans`]; one already gone succeeds.
    fn remove_orphan(&self, orphan: &Orphan) -> Result<(), StorageError>;
    /// Checks, before any dump runs, that the storage can be used: the directory can be created
    /// and written, or the bucket exists and the credentials are accepted. Cheap: at most one
    /// small request or file.
    fn preflight(&self) -> Result<(), StorageError>;
}

/// Retries of transient storage failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RetrySettings {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    /// Upper bound of the backoff between attempts.
    pub max_backoff: crate::duration::HumanDuration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            attempts: 5,
            max_backoff: crate::duration::HumanDuration(30),
        }
    }
}

/// What every storage of a run shares: where host-side locks live, the retry policy, the log.
#[derive(Debug, Clone)]
pub struct StorageContext {
    pub lock_dir: std::path::PathBuf,
    pub retry: RetrySettings,
    pub ui: crate::ui::Ui,
}

impl StorageContext {
    /// The context of a run with these settings.
    pub fn new(settings: &crate::config::Settings, ui: &crate::ui::Ui) -> Self {
        StorageContext {
            lock_dir: settings.lock_dir.clone(),
            retry: settings.retry,
            ui: ui.clone(),
        }
    }
}

/// Opens the storage that `settings` describes. Opening sends no request; failures surface on use.
///
/// Fails only when a client cannot be built from the settings (an unusable endpoint, say).
pub fn open(
    settings: &StorageSettings,
    ctx: &StorageContext,
) -> Result<Box<dyn Storage>, StorageError> {
    Ok(match &settings.kind {
        StorageKind::Local { path } => Box::new(local::LocalStorage::new(&settings.name, path)),
        StorageKind::S3(s3) => Box::new(s3::S3Storage::new(
            &settings.name,
            s3,
            ctx.retry,
            ctx.lock_dir.clone(),
            ctx.ui.clone(),
        )?),
    })
}

#[cfg(test)]
mod tests {
    /// A small object is read whole; one over the cap is an error that says what to do, read no
    /// further than the cap.
    #[test]
    fn small_objects_are_read_whole_and_big_ones_refused() {
        assert_eq!(
            super::read_capped(&b"0123456789"[..], 10).unwrap().len(),
            10
        );
        let e = super::read_capped(std::io::repeat(0), 10 << 20).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("(10.00 MiB): move it aside"), "{e}");
    }
}
