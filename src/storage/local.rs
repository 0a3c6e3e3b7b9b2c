//! A local directory as storage: temp file + fsync + rename, files 0600, directories 0700.
//!
//! Temp files are hidden (`.<name>.<random>.tmp`) in the object's own directory so that the final
//! rename is atomic; a killed run can leave one behind, which prune's orphan cleaning removes.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::{ObjectMeta, ObjectWriter, Orphan, Storage, StorageError, StorageLock};

/// Suffix of the temp files that uncommitted writes use.
pub const TEMP_SUFFIX: &str = ".tmp";

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
        StorageError::Io {
            storage: self.name.clone(),
            op,
            location: path.display().to_string(),
            source,
        }
    }

    /// Creates the parent directory of `path` (mode 0700) and returns it.
    fn ensure_parent(&self, path: &Path) -> Result<PathBuf, StorageError> {
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| self.err("creating directory", &dir, e))?;
        Ok(dir)
    }

    fn writer(&self, key: &str, replace: bool) -> Result<LocalWriter, StorageError> {
        let path = self.path(key);
        let dir = self.ensure_parent(&path)?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // tempfile creates the file 0600 with a random name, and removes it when dropped.
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{file_name}."))
            .suffix(TEMP_SUFFIX)
            .tempfile_in(&dir)
            .map_err(|e| self.err("creating temp file in", &dir, e))?;
        Ok(LocalWriter {
            storage: self.clone(),
            tmp: Some(tmp),
            path,
            dir,
            replace,
        })
    }

    fn meta(&self, key: String, md: &fs::Metadata) -> ObjectMeta {
        ObjectMeta {
            key,
            size: md.len(),
            modified: md.modified().ok().map(DateTime::<Utc>::from),
        }
    }

    fn walk(
        &self,
        dir: &Path,
        prefix: &str,
        out: &mut Vec<ObjectMeta>,
    ) -> Result<(), StorageError> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.err("listing", dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| self.err("listing", dir, e))?;
            let path = entry.path();
            let md = entry
                .metadata()
                .map_err(|e| self.err("reading metadata of", &path, e))?;
            let Ok(rel) = path.strip_prefix(&self.root) else {
                continue;
            };
            let key = rel.to_string_lossy().into_owned();
            if md.is_dir() {
                if prefix.starts_with(&format!("{key}/"))
                    || key.starts_with(prefix)
                    || prefix.is_empty()
                {
                    self.walk(&path, prefix, out)?;
                }
            } else if md.is_file() && key.starts_with(prefix) {
                out.push(self.meta(key, &md));
            }
        }
        Ok(())
    }
}

/// Whether a file name is one of sqlguard's temp names: `.<name>.<random>.tmp`.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(TEMP_SUFFIX) && name.matches('.').count() >= 3
}

/// Syncs a directory so that a rename in it survives a crash.
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// An uncommitted local object.
#[derive(Debug)]
pub struct LocalWriter {
    storage: LocalStorage,
    tmp: Option<tempfile::NamedTempFile>,
    path: PathBuf,
    dir: PathBuf,
    replace: bool,
}

impl Write for LocalWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.tmp {
            Some(t) => t.as_file_mut().write(buf),
            None => Err(io::Error::other("write after commit")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ObjectWriter for LocalWriter {
    fn commit(mut self: Box<Self>) -> Result<(), StorageError> {
        let tmp = self.tmp.take().expect("committed once");
        tmp.as_file()
            .sync_all()
            .map_err(|e| self.storage.err("syncing", tmp.path(), e))?;
        let persisted = if self.replace {
            tmp.persist(&self.path)
        } else {
            tmp.persist_noclobber(&self.path)
        };
        persisted.map_err(|e| self.storage.err("renaming into", &self.path, e.error))?;
        sync_dir(&self.dir).map_err(|e| self.storage.err("syncing directory", &self.dir, e))?;
        Ok(())
    }

    fn abort(mut self: Box<Self>) {
        // Dropping the NamedTempFile removes it.
        self.tmp.take();
    }
}

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
        let path = self.path(key);
        let f = fs::File::open(&path).map_err(|e| self.err("opening", &path, e))?;
        Ok(Box::new(io::BufReader::with_capacity(1 << 20, f)))
    }

    fn stat(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        let path = self.path(key);
        match fs::metadata(&path) {
            Ok(md) if md.is_file() => Ok(Some(self.meta(key.to_string(), &md))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err("reading metadata of", &path, e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        let mut out = Vec::new();
        self.walk(&self.root, prefix, &mut out)?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.path(key);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err("deleting", &path, e)),
        }
    }

    fn orphans(
        &self,
        prefix: &str,
        older_than: DateTime<Utc>,
    ) -> Result<Vec<Orphan>, StorageError> {
        Ok(self
            .list(prefix)?
            .into_iter()
            .filter(|m| is_temp_name(m.key.rsplit('/').next().unwrap_or("")))
            .filter(|m| m.modified.is_some_and(|t| t < older_than))
            .map(|m| Orphan {
                kind: "temp_file",
                key: m.key,
                upload_id: None,
                size: m.size,
                modified: m.modified,
            })
            .collect())
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
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(|e| self.err("creating directory", &self.root, e))?;
        tempfile::Builder::new()
            .prefix(".sqlguard-preflight.")
            .suffix(TEMP_SUFFIX)
            .tempfile_in(&self.root)
            .map(drop)
            .map_err(|e| self.err("writing a test file in", &self.root, e))
    }

    fn lock(&self, name: &str) -> Result<StorageLock, StorageError> {
        let path = self.path(&format!("{name}.lock"));
        let path = match (path.parent(), path.file_name()) {
            (Some(dir), Some(file)) => dir.join(format!(".{}", file.to_string_lossy())),
            _ => path,
        };
        self.ensure_parent(&path)?;
        StorageLock::acquire(&path).map_err(|e| self.err("locking", &path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn behaviour_suite() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new("local", dir.path());
        super::super::behaviour::run_all(&s, "srv/");
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
}
