//! A local directory as storage: temp file + fsync + rename, files 0600, directories 0700.
//!
//! Every operation stays inside the storage root: keys are checked ([`crate::layout::check_key`]:
//! no absolute keys, no `.` or `..`), and paths are walked one directory at a time from a handle
//! on the root with `openat(O_NOFOLLOW)`, so a symbolic link anywhere below the root (a swapped
//! directory, a planted link) is refused instead of followed: nothing is read, written or
//! deleted outside the root. The root itself may be a link the operator made.
//!
//! Temp files are hidden (`.<name>.<random>.tmp`) in the object's own directory so that the final
//! rename is atomic; a killed run can leave one behind, which prune's orphan cleaning removes.

use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags};

use super::{
    check_key, ObjectMeta, ObjectWriter, Orphan, Storage, StorageError, StorageLock, Survey,
};

/// Suffix of the temp files that uncommitted writes use.
pub const TEMP_SUFFIX: &str = ".tmp";

/// How directories below the root are opened: never through a symbolic link.
const DIR: OFlags = OFlags::DIRECTORY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC)
    .union(OFlags::RDONLY);

/// A storage rooted at a local directory.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    name: String,
    root: PathBuf,
}

impl LocalStorage {
    /// A storage called `name` at `root`; the directory is created on first write.
    pub fn new(name: &str, root: &Path) -> Self {
        LocalStorage {
            name: name.to_string(),
            root: root.to_path_buf(),
        }
    }

    /// Where `key` is, for messages (the walk itself never uses this path).
    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn err(&self, op: &'static str, path: &Path, source: io::Error) -> StorageError {
        if source.kind() == io::ErrorKind::NotFound && op == "opening" {
            return StorageError::NotFound {
                storage: self.name.clone(),
                location: path.display().to_string(),
            };
        }
        // Directories are opened O_NOFOLLOW | O_DIRECTORY: a link where a directory belongs
        // gives ELOOP or ENOTDIR (so does a plain file there).
        let source = match source.raw_os_error() {
            Some(e) if e == rustix::io::Errno::LOOP.raw_os_error() => io::Error::other(
                "a symbolic link is in the way, and links below the storage root are never followed",
            ),
            Some(e) if e == rustix::io::Errno::NOTDIR.raw_os_error() => io::Error::other(
                "a file or a symbolic link stands where a directory belongs (links below the storage root are never followed): move it out of the storage",
            ),
            _ => source,
        };
        StorageError::Io {
            storage: self.name.clone(),
            op,
            location: path.display().to_string(),
            cause: source,
        }
    }

    fn check(&self, key: &str) -> Result<(), StorageError> {
        crate::layout::check_key(key).map_err(|reason| StorageError::InvalidKey {
            storage: self.name.clone(),
            key: key.to_string(),
            reason,
        })
    }

    fn open_root(&self) -> io::Result<OwnedFd> {
        Ok(rustix::fs::open(
            &self.root,
            OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::RDONLY,
            Mode::empty(),
        )?)
    }

    /// Opens the directory made of `components` below the root, one level at a time without
    /// following links; creates missing levels (0700) when `create`. `Ok(None)` when a level is
    /// missing and `create` is false.
    fn open_dir(&self, components: &[&str], create: bool) -> io::Result<Option<OwnedFd>> {
        if create {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.root)?;
        }
        let mut dir = match self.open_root() {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !create => return Ok(None),
            Err(e) => return Err(e),
        };
        for c in components {
            if create {
                match rustix::fs::mkdirat(&dir, *c, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            dir = match rustix::fs::openat(&dir, *c, DIR, Mode::empty()) {
                Ok(d) => d,
                Err(rustix::io::Errno::NOENT) if !create => return Ok(None),
                Err(e) => return Err(e.into()),
            };
        }
        Ok(Some(dir))
    }

    /// The directory holding `key` and the key's last component.
    fn parent<'k>(
        &self,
        key: &'k str,
        create: bool,
    ) -> Result<Option<(OwnedFd, &'k str)>, StorageError> {
        self.check(key)?;
        let (dirs, file) = match key.rsplit_once('/') {
            Some((d, f)) => (d.split('/').collect::<Vec<_>>(), f),
            None => (Vec::new(), key),
        };
        let dir = self.open_dir(&dirs, create).map_err(|e| {
            self.err(
                if create {
                    "creating directory for"
                } else {
                    "opening directory of"
                },
                &self.path(key),
                e,
            )
        })?;
        Ok(dir.map(|d| (d, file)))
    }

    fn writer(&self, key: &str, replace: bool) -> Result<LocalWriter, StorageError> {
        let path = self.path(key);
        let (dir, name) = self.parent(key, true)?.expect("a created directory exists");
        // A random hidden name beside the object, created exclusively (0600), never through a
        // link.
        let mut last = None;
        for _ in 0..16 {
            let tmp = format!(".{name}.{:08x}{TEMP_SUFFIX}", fastrand::u32(..));
            match rustix::fs::openat(
                &dir,
                tmp.as_str(),
                OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::from_raw_mode(0o600),
            ) {
                Ok(fd) => {
                    return Ok(LocalWriter {
                        storage: self.clone(),
                        dir,
                        tmp,
                        name: name.to_string(),
                        file: Some(fs::File::from(fd)),
                        path,
                        replace,
                    })
                }
                Err(rustix::io::Errno::EXIST) => last = Some(rustix::io::Errno::EXIST),
                Err(e) => return Err(self.err("creating temp file for", &path, e.into())),
            }
        }
        Err(self.err(
            "creating temp file for",
            &path,
            last.map(io::Error::from)
                .unwrap_or_else(|| io::Error::other("no free temp name")),
        ))
    }

    fn meta(&self, key: String, st: &rustix::fs::Stat) -> ObjectMeta {
        let secs = st.st_mtime;
        ObjectMeta {
            key,
            size: u64::try_from(st.st_size).unwrap_or(0),
            modified: DateTime::<Utc>::from_timestamp(secs, 0),
        }
    }

    /// Calls `found(dir, name, key)` for each regular file below `dir` (whose key is `rel`)
    /// whose key starts with `prefix`; links are neither followed nor listed. File types come
    /// from the directory entries (a stat only where the filesystem does not give them), so
    /// that listing 200,000 objects reads no inode the caller does not ask for. With `defer`,
    /// the subdirectories of `dir` itself are put there (name and key) rather than walked.
    /// With `strict` (see [`Storage::list_keys_strict`]), an entry on the way to `prefix` or
    /// under it that is neither a regular file nor a directory (a link, a FIFO, a socket, a
    /// device), or a directory under it whose key `strict` says is a file's, fails the walk,
    /// naming it.
    fn walk(
        &self,
        dir: &OwnedFd,
        rel: &str,
        prefix: &str,
        strict: Option<&dyn Fn(&str) -> bool>,
        found: &mut dyn FnMut(&OwnedFd, &str, String) -> Result<(), StorageError>,
        mut defer: Option<&mut Vec<(String, String)>>,
    ) -> Result<(), StorageError> {
        let here = || self.path(rel);
        let entries =
            rustix::fs::Dir::read_from(dir).map_err(|e| self.err("listing", &here(), e.into()))?;
        for entry in entries {
            let entry = entry.map_err(|e| self.err("listing", &here(), e.into()))?;
            let Ok(name) = entry.file_name().to_str() else {
                continue;
            };
            if name == "." || name == ".." {
                continue;
            }
            let key = if rel.is_empty() {
                name.to_string()
            } else {
                let mut key = String::with_capacity(rel.len() + 1 + name.len());
                key.push_str(rel);
                key.push('/');
                key.push_str(name);
                key
            };
            let kind = match entry.file_type() {
                FileType::Unknown => match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
                {
                    Ok(st) => FileType::from_raw_mode(st.st_mode),
                    Err(rustix::io::Errno::NOENT) => continue,
                    Err(e) => {
                        return Err(self.err("reading metadata of", &self.path(&key), e.into()))
                    }
                },
                kind => kind,
            };
            match kind {
                FileType::Directory
                    if key.starts_with(prefix)
                        && strict.is_some_and(|file_like| file_like(&key)) =>
                {
                    return Err(self.misplaced(
                        "listing",
                        &self.path(&key),
                        "a directory where a file belongs, and would hide what belongs there",
                    ));
                }
                FileType::Directory
                    if prefix.starts_with(&format!("{key}/")) || key.starts_with(prefix) =>
                {
                    match defer.as_mut() {
                        Some(later) => later.push((name.to_string(), key)),
                        None => self.walk_into(dir, name, &key, prefix, strict, found)?,
                    }
                }
                FileType::RegularFile if key.starts_with(prefix) => found(dir, name, key)?,
                FileType::RegularFile | FileType::Directory => {}
                odd if strict.is_some()
                    && (key.starts_with(prefix) || prefix.starts_with(&format!("{key}/"))) =>
                {
                    return Err(self.misplaced(
                        "listing",
                        &self.path(&key),
                        &format!(
                            "{}, not a regular file or a directory, and would hide what belongs there",
                            odd_kind(odd)
                        ),
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The metadata of the regular file `name` in `dir` (key `key`); `None` when it is gone or
    /// no longer a regular file.
    fn meta_at(
        &self,
        dir: &OwnedFd,
        name: &str,
        key: String,
    ) -> Result<Option<ObjectMeta>, StorageError> {
        match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => {
                Ok(Some(self.meta(key, &st)))
            }
            Ok(_) | Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(self.err("reading metadata of", &self.path(&key), e.into())),
        }
    }

    /// Walks the regular files under `prefix` from the root (nothing when the root is missing).
    fn walk_root(
        &self,
        prefix: &str,
        strict: Option<&dyn Fn(&str) -> bool>,
        found: &mut dyn FnMut(&OwnedFd, &str, String) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let root = match self.open_root() {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.err("listing", &self.root, e)),
        };
        self.walk(&root, "", prefix, strict, found, None)
    }

    /// The error for `path`, which is `what` where sqlguard's own file or directory belongs:
    /// the fix is to move it out of the storage.
    fn misplaced(&self, op: &'static str, path: &Path, what: &str) -> StorageError {
        self.err(
            op,
            path,
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("it is {what}: move it out of the storage"),
            ),
        )
    }

    /// The keys under `prefix`, sorted; `strict` as in [`Self::walk`].
    fn keys_under(
        &self,
        prefix: &str,
        strict: Option<&dyn Fn(&str) -> bool>,
    ) -> Result<Vec<String>, StorageError> {
        let mut out = Vec::new();
        self.walk_root(prefix, strict, &mut |_, _, key| {
            out.push(key);
            Ok(())
        })?;
        out.sort_unstable();
        Ok(out)
    }

    /// Walks the subdirectory `name` of `dir` (key `key`); one gone or become a link is empty.
    fn walk_into(
        &self,
        dir: &OwnedFd,
        name: &str,
        key: &str,
        prefix: &str,
        strict: Option<&dyn Fn(&str) -> bool>,
        found: &mut dyn FnMut(&OwnedFd, &str, String) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        match rustix::fs::openat(dir, name, DIR, Mode::empty()) {
            Ok(sub) => self.walk(&sub, key, prefix, strict, found, None),
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::LOOP) => Ok(()),
            Err(e) => Err(self.err("listing", &self.path(key), e.into())),
        }
    }

    /// Walks as [`Self::walk_root`] does, with the directories just below `prefix` (when it
    /// names a directory: `a/b/`) spread over up to `threads` threads: reading directories
    /// waits on the kernel, and a prune lists 200,000 files before it plans. Each thread
    /// gathers into a `T` of its own; they are returned in no particular order.
    fn walk_spread<T, G>(
        &self,
        prefix: &str,
        threads: usize,
        gather: &G,
    ) -> Result<Vec<T>, StorageError>
    where
        T: Default + Send,
        G: Fn(&OwnedFd, &str, String, &mut T) -> Result<(), StorageError> + Sync,
    {
        let mut here = T::default();
        let components: Option<Vec<&str>> = prefix
            .strip_suffix('/')
            .map(|d| d.split('/').collect())
            .filter(|c: &Vec<&str>| {
                threads > 1 && c.iter().all(|c| !c.is_empty() && *c != "." && *c != "..")
            });
        let Some(components) = components else {
            self.walk_root(prefix, None, &mut |d, n, k| gather(d, n, k, &mut here))?;
            return Ok(vec![here]);
        };
        let rel = components.join("/");
        let dir = match self.open_dir(&components, false) {
            Ok(Some(d)) => d,
            Ok(None) => return Ok(vec![here]),
            // A link, or not a directory: nothing under it is listed (as by a walk).
            Err(e)
                if matches!(
                    rustix::io::Errno::from_io_error(&e),
                    Some(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR)
                ) =>
            {
                return Ok(vec![here])
            }
            Err(e) => return Err(self.err("listing", &self.path(&rel), e)),
        };
        let mut subdirs = Vec::new();
        self.walk(
            &dir,
            &rel,
            prefix,
            None,
            &mut |d, n, k| gather(d, n, k, &mut here),
            Some(&mut subdirs),
        )?;
        let next = std::sync::atomic::AtomicUsize::new(0);
        let work = || -> Result<T, StorageError> {
            let mut mine = T::default();
            while let Some((name, key)) =
                subdirs.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
            {
                self.walk_into(&dir, name, key, prefix, None, &mut |d, n, k| {
                    gather(d, n, k, &mut mine)
                })?;
            }
            Ok(mine)
        };
        let mut out = vec![here];
        std::thread::scope(|scope| {
            let spread: Vec<_> = (1..threads.min(subdirs.len()))
                .filter_map(|_| crate::threads::spawn_scoped(scope, "storage-walk", work).ok())
                .collect();
            // This thread takes its share, and what a thread that did not start would have.
            out.push(work()?);
            for thread in spread {
                out.push(
                    thread
                        .join()
                        .unwrap_or_else(|p| std::panic::resume_unwind(p))?,
                );
            }
            Ok(out)
        })
    }
}

/// Whether a file name is one of sqlguard's temp names, exactly: `.<name>.<8 hex>.tmp`, where
/// `<name>` is a file sqlguard writes (a dump or binary log segment, a manifest, an index file
/// or its `.bak-` copy, or the preflight probe). Only these are orphans a prune may remove: a
/// hidden file of someone else's that merely looks alike stays.
/// What a directory entry that is neither a regular file nor a directory is, in words.
fn odd_kind(kind: FileType) -> &'static str {
    match kind {
        FileType::Symlink => "a symbolic link (a storage's links are never followed)",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice | FileType::BlockDevice => "a device",
        _ => "of an unknown type",
    }
}

pub fn is_temp_name(name: &str) -> bool {
    let Some((object, random)) = name
        .strip_prefix('.')
        .and_then(|n| n.strip_suffix(TEMP_SUFFIX))
        .and_then(|n| n.rsplit_once('.'))
    else {
        return false;
    };
    let plain = object.strip_suffix(".age").unwrap_or(object);
    random.len() == 8
        && random
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && (object == PREFLIGHT
            || plain.ends_with(".json")
            || plain.contains(".json.bak-")
            || [
                ".sql",
                ".sql.zst",
                ".sql.xz",
                ".binlog",
                ".binlog.zst",
                ".binlog.xz",
            ]
            .iter()
            .any(|s| plain.len() > s.len() && plain.ends_with(s)))
}

/// The orphan a temp file is, once last touched before `older_than`.
fn orphan(m: ObjectMeta, older_than: DateTime<Utc>) -> Option<Orphan> {
    let old = m.modified.is_some_and(|t| t < older_than);
    old.then_some(Orphan {
        kind: "temp_file",
        key: m.key,
        upload_id: None,
        size: m.size,
        modified: m.modified,
    })
}

/// The name of the preflight probe (`.sqlguard-preflight.<8 hex>.tmp`).
const PREFLIGHT: &str = "sqlguard-preflight";

/// An uncommitted local object: a temp file in its directory, held by handle.
#[derive(Debug)]
pub struct LocalWriter {
    storage: LocalStorage,
    dir: OwnedFd,
    tmp: String,
    name: String,
    file: Option<fs::File>,
    /// For messages.
    path: PathBuf,
    replace: bool,
}

impl LocalWriter {
    fn remove_temp(&mut self) {
        if self.file.take().is_some() {
            let _ = rustix::fs::unlinkat(&self.dir, self.tmp.as_str(), AtFlags::empty());
        }
    }

    /// Moves the temp file onto the object's name: refusing to replace an existing object
    /// unless `replace`.
    fn rename(&self) -> io::Result<()> {
        if self.replace {
            return Ok(rustix::fs::renameat(
                &self.dir,
                self.tmp.as_str(),
                &self.dir,
                self.name.as_str(),
            )?);
        }
        match rustix::fs::renameat_with(
            &self.dir,
            self.tmp.as_str(),
            &self.dir,
            self.name.as_str(),
            RenameFlags::NOREPLACE,
        ) {
            Ok(()) => Ok(()),
            // Filesystems without RENAME_NOREPLACE: a hard link also refuses an existing name.
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
                rustix::fs::linkat(
                    &self.dir,
                    self.tmp.as_str(),
                    &self.dir,
                    self.name.as_str(),
                    AtFlags::empty(),
                )?;
                let _ = rustix::fs::unlinkat(&self.dir, self.tmp.as_str(), AtFlags::empty());
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl Write for LocalWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(io::Error::other("write after commit")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ObjectWriter for LocalWriter {
    fn commit(mut self: Box<Self>) -> Result<(), StorageError> {
        let s = self.storage.clone();
        let path = self.path.clone();
        let synced = match &self.file {
            Some(f) => f.sync_all(),
            None => Err(io::Error::other("committed twice")),
        };
        if let Err(e) = synced {
            self.remove_temp();
            return Err(s.err("syncing", &path, e));
        }
        if let Err(e) = self.rename() {
            self.remove_temp();
            return Err(s.err("renaming into", &path, e));
        }
        // The temp name is gone: nothing to remove on drop.
        self.file = None;
        rustix::fs::fsync(self.dir.as_fd())
            .map_err(|e| s.err("syncing directory of", &path, e.into()))?;
        Ok(())
    }

    fn abort(mut self: Box<Self>) {
        self.remove_temp();
    }
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        self.remove_temp();
    }
}

/// Threads of a local `delete_many`.
const DELETE_THREADS: usize = 8;

impl Storage for LocalStorage {
    fn name(&self) -> &str {
        &self.name
    }

    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn put_stream(
        &self,
        key: &str,
        _size_hint: Option<u64>,
    ) -> Result<Box<dyn ObjectWriter>, StorageError> {
        Ok(Box::new(self.writer(key, false)?))
    }

    fn put_bytes(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        let mut w = Box::new(self.writer(key, true)?);
        w.write_all(data)
            .map_err(|e| self.err("writing", &self.path(key), e))?;
        w.commit()
    }

    fn get(&self, key: &str) -> Result<Box<dyn Read + Send>, StorageError> {
        let f = self.open_file(key)?.ok_or_else(|| StorageError::NotFound {
            storage: self.name.clone(),
            location: self.path(key).display().to_string(),
        })?;
        Ok(Box::new(io::BufReader::with_capacity(1 << 20, f)))
    }

    /// Straight into a buffer of the file's size, with no buffered reader between and no
    /// regrowth: a prune reads the index's month files this way, a hundred megabytes of them
    /// at 100,000 records.
    fn get_bytes_at_most(&self, key: &str, max: u64) -> Result<Option<Vec<u8>>, StorageError> {
        let Some(file) = self.open_file(key)? else {
            return Ok(None);
        };
        let expected = file.metadata().map_or(0, |m| m.len()).min(max);
        let buf = Vec::with_capacity(usize::try_from(expected).unwrap_or(0).saturating_add(1));
        super::read_capped_into(file, max, buf)
            .map(Some)
            .map_err(|e| self.err("reading", &self.path(key), e))
    }

    fn open_file(&self, key: &str) -> Result<Option<fs::File>, StorageError> {
        let Some((dir, name)) = self.parent(key, false)? else {
            return Ok(None);
        };
        // Non-blocking, so that a FIFO (or a device) put where a file belongs cannot hold the
        // run in open(2); anything but a regular file is then refused. Reads of a regular file
        // do not block either way.
        let fd = match rustix::fs::openat(
            &dir,
            name,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(e) => return Err(self.err("opening", &self.path(key), e.into())),
        };
        let st =
            rustix::fs::fstat(&fd).map_err(|e| self.err("opening", &self.path(key), e.into()))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(self.misplaced(
                "opening",
                &self.path(key),
                "not a regular file (a FIFO, a device or a directory stands there)",
            ));
        }
        Ok(Some(fs::File::from(fd)))
    }

    fn stat(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        let Some((dir, name)) = self.parent(key, false)? else {
            return Ok(None);
        };
        match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => {
                Ok(Some(self.meta(key.to_string(), &st)))
            }
            Ok(_) | Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(self.err("reading metadata of", &self.path(key), e.into())),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        let mut out = Vec::new();
        self.walk_root(prefix, None, &mut |dir, name, key| {
            out.extend(self.meta_at(dir, name, key)?);
            Ok(())
        })?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// One walk for the keys and the temp files, reading the inodes of the temp files only: a
    /// listing with sizes would read every file's, and looking up the few needed is cheaper.
    fn survey(&self, prefix: &str, older_than: DateTime<Utc>) -> Result<Survey, StorageError> {
        type Found = (Vec<(String, Option<u64>)>, Vec<Orphan>);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        let parts = self.walk_spread(prefix, threads, &|dir, name, key, found: &mut Found| {
            if is_temp_name(name) {
                let meta = self.meta_at(dir, name, key.clone())?;
                found.1.extend(meta.and_then(|m| orphan(m, older_than)));
            }
            found.0.push((key, None));
            Ok(())
        })?;
        let (mut keys, mut orphans): Found = (Vec::new(), Vec::new());
        for (k, o) in parts {
            keys.extend(k);
            orphans.extend(o);
        }
        orphans.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Survey {
            keys,
            orphans: Some(orphans),
        })
    }

    /// Reads the directories only: no file's inode is read.
    fn list_keys(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.keys_under(prefix, None)
    }

    fn list_keys_strict(
        &self,
        prefix: &str,
        file_like: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<String>, StorageError> {
        self.keys_under(prefix, Some(file_like))
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        let Some((dir, name)) = self.parent(key, false)? else {
            return Ok(());
        };
        match rustix::fs::unlinkat(&dir, name, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(self.err("deleting", &self.path(key), e.into())),
        }
    }

    /// Deletes on up to [`DELETE_THREADS`] threads: an unlink waits on the disk (about 0.2 ms
    /// here, mostly the directory's journal), and overlapping them is what makes a prune of
    /// 100,000 backups take seconds rather than minutes.
    fn delete_many(&self, keys: &[String]) -> Result<Vec<(String, StorageError)>, StorageError> {
        for k in keys {
            check_key(self.name(), k)?;
        }
        let threads = DELETE_THREADS.min(keys.len().div_ceil(64)).max(1);
        if threads == 1 {
            return Ok(keys
                .iter()
                .filter_map(|k| self.delete(k).err().map(|e| (k.clone(), e)))
                .collect());
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let failed = std::sync::Mutex::new(Vec::new());
        let drain = || loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(k) = keys.get(i) else { break };
            if let Err(e) = self.delete(k) {
                failed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((i, k.clone(), e));
            }
        };
        // This thread deletes too; fewer helpers when threads cannot start.
        std::thread::scope(|s| {
            for _ in 1..threads {
                if crate::threads::spawn_scoped(s, "delete", drain).is_err() {
                    break;
                }
            }
            drain();
        });
        let mut failed = failed.into_inner().unwrap_or_else(|p| p.into_inner());
        failed.sort_by_key(|(i, _, _)| *i);
        Ok(failed.into_iter().map(|(_, k, e)| (k, e)).collect())
    }

    fn orphans(
        &self,
        prefix: &str,
        older_than: DateTime<Utc>,
    ) -> Result<Vec<Orphan>, StorageError> {
        // Only temp names are stat'ed: the objects beside them are not read.
        let mut out = Vec::new();
        self.walk_root(prefix, None, &mut |dir, name, key| {
            if is_temp_name(name) {
                out.extend(
                    self.meta_at(dir, name, key)?
                        .and_then(|m| orphan(m, older_than)),
                );
            }
            Ok(())
        })?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn remove_orphan(&self, orphan: &Orphan) -> Result<(), StorageError> {
        if !is_temp_name(orphan.key.rsplit('/').next().unwrap_or("")) {
            return Err(self.err(
                "refusing to remove",
                &self.path(&orphan.key),
                io::Error::other("not a sqlguard temp file"),
            ));
        }
        self.delete(&orphan.key)
    }

    fn preflight(&self) -> Result<(), StorageError> {
        let root = self
            .open_dir(&[], true)
            .map_err(|e| self.err("creating directory", &self.root, e))?
            .expect("created");
        let probe = format!(".{PREFLIGHT}.{:08x}{TEMP_SUFFIX}", fastrand::u32(..));
        rustix::fs::openat(
            &root,
            probe.as_str(),
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| self.err("writing a test file in", &self.root, e.into()))?;
        let _ = rustix::fs::unlinkat(&root, probe.as_str(), AtFlags::empty());
        Ok(())
    }

    fn lock(&self, name: &str) -> Result<StorageLock, StorageError> {
        // `main/index` locks `main/.index.lock`.
        let key = match name.rsplit_once('/') {
            Some((d, f)) => format!("{d}/.{f}.lock"),
            None => format!(".{name}.lock"),
        };
        let path = self.path(&key);
        let (dir, file) = self.parent(&key, true)?.expect("created");
        // Non-blocking, and then a regular file only, as for reads (see `open_file`).
        let not_a_file = || {
            self.misplaced(
                "locking",
                &path,
                "not a regular file (a FIFO, a device or a directory stands there)",
            )
        };
        let fd = match rustix::fs::openat(
            &dir,
            file,
            OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK,
            Mode::from_raw_mode(0o600),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::ISDIR) => return Err(not_a_file()),
            Err(e) => return Err(self.err("locking", &path, e.into())),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| self.err("locking", &path, e.into()))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(not_a_file());
        }
        StorageLock::from_file(fs::File::from(fd)).map_err(|e| self.err("locking", &path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Only the temp names sqlguard makes are orphans (a hostile review's: any hidden
    /// `.a.b.tmp` under a server's prefix was removed by prune).
    #[test]
    fn only_sqlguards_own_temp_names_are_orphans() {
        for own in [
            ".20261130T193500Z_4a5d738b.sql.zst.0a1b2c3d.tmp",
            ".20261130T193500Z_4a5d738b.sql.xz.age.0a1b2c3d.tmp",
            ".20261130T193500Z_4a5d738b.manifest.json.ffffffff.tmp",
            ".2026-11.json.00000000.tmp",
            ".summary.json.12345678.tmp",
            ".index.json.bak-20261130T000000Z.abcdef01.tmp",
            ".20261130T193500Z_4a5d738b.binlog.zst.abcdef01.tmp",
            ".sqlguard-preflight.abcdef01.tmp",
        ] {
            assert!(is_temp_name(own), "{own}");
        }
        for other in [
            ".my.notes.tmp",
            ".x.y.tmp",
            ".report.html.0a1b2c3d.tmp",
            ".a.json.0A1B2C3D.tmp",
            ".a.json.0a1b2c3.tmp",
            ".a.json.0a1b2c3d0.tmp",
            "..0a1b2c3d.tmp",
            "..sql.0a1b2c3d.tmp",
            "a.json.0a1b2c3d.tmp",
            ".a.json.0a1b2c3d.tmp.x",
        ] {
            assert!(!is_temp_name(other), "{other}");
        }
    }

    mod behaviour {
        crate::storage_behaviour_tests!({
            let dir = tempfile::tempdir().unwrap();
            crate::storage::behaviour::Subject {
                storage: Box::new(super::LocalStorage::new("local", dir.path())),
                base: "srv/".into(),
                keep: Box::new(dir),
            }
        });
    }

    #[test]
    fn files_are_0600_and_directories_0700() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new("local", &dir.path().join("root"));
        let mut w = s.put_stream("srv/db/daily/x.sql.zst", None).unwrap();
        w.write_all(b"x").unwrap();
        w.commit().unwrap();
        let mode = |p: PathBuf| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir.path().join("root/srv/db/daily/x.sql.zst")), 0o600);
        assert_eq!(mode(dir.path().join("root/srv/db/daily")), 0o700);
        assert_eq!(mode(dir.path().join("root/srv")), 0o700);
    }

    #[test]
    fn a_committed_object_is_never_overwritten_by_a_stream() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new("local", dir.path());
        for _ in 0..2 {
            let mut w = s.put_stream("k", None).unwrap();
            w.write_all(b"first").unwrap();
            let r = w.commit();
            if r.is_err() {
                assert_eq!(s.get_bytes("k").unwrap().unwrap(), b"first");
                return;
            }
        }
        panic!("second commit replaced the object");
    }

    /// A lock file is a regular file: a directory or a FIFO in its place is refused, naming it
    /// and the fix (a directory gave a bare "Is a directory").
    #[test]
    fn a_lock_is_taken_on_a_regular_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new("local", dir.path());
        drop(s.lock("main/index").unwrap());
        let path = dir.path().join("main/.index.lock");
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        let e = s.lock("main/index").err().unwrap().to_string();
        assert!(
            e.contains(".index.lock") && e.contains("not a regular file"),
            "{e}"
        );
        fs::remove_dir(&path).unwrap();
        assert!(std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap()
            .success());
        let e = s.lock("main/index").err().unwrap().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }

    /// Issue 10, item 4: no read, write or delete leaves the root, through a key or a link.
    #[test]
    fn nothing_leaves_the_root_through_keys_or_links() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir_all(outside.join("daily")).unwrap();
        fs::write(outside.join("secret"), b"not yours").unwrap();
        fs::write(outside.join("daily/x.sql.zst"), b"not yours").unwrap();
        let root = dir.path().join("root");
        let s = LocalStorage::new("local", &root);
        s.preflight().unwrap();
        for key in [
            "/etc/passwd",
            "../outside/secret",
            "main/../../outside/secret",
            "main//x",
            "main/./x",
            "",
            "main/x/",
        ] {
            assert!(
                matches!(s.get(key), Err(StorageError::InvalidKey { .. })),
                "{key}"
            );
            assert!(s.delete(key).is_err(), "{key}");
            assert!(s.put_bytes(key, b"x").is_err(), "{key}");
            assert!(s.stat(key).is_err(), "{key}");
        }
        // A directory inside the root that is a link to somewhere else.
        fs::create_dir_all(root.join("main")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("main/db")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), root.join("main/file")).unwrap();
        assert!(s.delete("main/db/daily/x.sql.zst").is_err());
        assert!(s.get("main/db/daily/x.sql.zst").is_err());
        assert!(s.get("main/file").is_err());
        assert!(s.put_bytes("main/db/new", b"x").is_err());
        assert_eq!(s.stat("main/file").unwrap(), None);
        assert!(s.list("main/").unwrap().is_empty());
        assert!(s.list_keys("main/").unwrap().is_empty());
        s.delete("main/file").unwrap();
        assert_eq!(
            fs::read(outside.join("daily/x.sql.zst")).unwrap(),
            b"not yours"
        );
        assert_eq!(fs::read(outside.join("secret")).unwrap(), b"not yours");
        assert!(!outside.join("new").exists());
    }
}
