//! An in-memory [`Storage`] for unit tests of the layers above storage. Never used by the binary.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

use super::{ObjectMeta, ObjectWriter, Orphan, Storage, StorageError, StorageLock};

/// Objects in a shared map; clones see the same objects.
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    name: String,
    objects: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    lock_dir: Arc<Option<tempfile::TempDir>>,
    /// A write to fail: (text its key contains, writes of such keys to let through first,
    /// whether as a remote write whose answer was lost).
    fail_put: Arc<Mutex<Option<(String, usize, bool)>>>,
    /// The next commit lands its object, then reports a lost answer.
    lose_commit_answer: Arc<std::sync::atomic::AtomicBool>,
}

impl MemoryStorage {
    /// An empty storage called `name`.
    pub fn new(name: &str) -> Self {
        MemoryStorage {
            name: name.to_string(),
            objects: Arc::default(),
            lock_dir: Arc::new(tempfile::tempdir().ok()),
            fail_put: Arc::default(),
            lose_commit_answer: Arc::default(),
        }
    }

    /// Makes the next commit land its object and then fail, as a remote commit whose answer
    /// is lost does.
    pub fn lose_commit_answer(&self) {
        self.lose_commit_answer
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Makes the write of a small object whose key contains `key_part` fail (as a full disk
    /// would), after `after` such writes went through; once.
    pub fn fail_put_bytes(&self, key_part: &str, after: usize) {
        *self.fail_put.lock().expect("poisoned") = Some((key_part.to_string(), after, false));
    }

    /// [`MemoryStorage::fail_put_bytes`] as a remote storage fails when a request's answer is
    /// lost (a timeout): the write is not done here, but the error does not say so.
    pub fn lose_put_bytes_answer(&self, key_part: &str, after: usize) {
        *self.fail_put.lock().expect("poisoned") = Some((key_part.to_string(), after, true));
    }

    /// Every key held, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.objects
            .lock()
            .expect("poisoned")
            .keys()
            .cloned()
            .collect()
    }
}

#[derive(Debug)]
struct MemoryWriter {
    storage: MemoryStorage,
    key: String,
    buf: Vec<u8>,
}

impl Write for MemoryWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ObjectWriter for MemoryWriter {
    fn commit(self: Box<Self>) -> Result<(), StorageError> {
        let w = *self;
        w.storage
            .objects
            .lock()
            .expect("poisoned")
            .insert(w.key.clone(), w.buf);
        if w.storage
            .lose_commit_answer
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            return Err(StorageError::Remote {
                storage: w.storage.name.clone(),
                location: "memory".into(),
                message: format!("completing {}: no answer", w.key),
            });
        }
        Ok(())
    }
    fn abort(self: Box<Self>) {}
}

impl Storage for MemoryStorage {
    fn name(&self) -> &str {
        &self.name
    }
    fn location(&self) -> String {
        format!("memory:{}", self.name)
    }
    fn put_stream(
        &self,
        key: &str,
        _size_hint: Option<u64>,
    ) -> Result<Box<dyn ObjectWriter>, StorageError> {
        super::check_key(&self.name, key)?;
        Ok(Box::new(MemoryWriter {
            storage: self.clone(),
            key: key.to_string(),
            buf: Vec::new(),
        }))
    }
    fn put_bytes(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        super::check_key(&self.name, key)?;
        {
            let mut fail = self.fail_put.lock().expect("poisoned");
            if let Some((part, after, remote)) = fail.as_mut() {
                if key.contains(part.as_str()) {
                    if *after == 0 {
                        let remote = *remote;
                        *fail = None;
                        return Err(if remote {
                            StorageError::Remote {
                                storage: self.name.clone(),
                                location: "memory".into(),
                                message: format!("uploading {key}: no answer"),
                            }
                        } else {
                            StorageError::Io {
                                storage: self.name.clone(),
                                op: "writing",
                                location: key.to_string(),
                                cause: io::Error::from_raw_os_error(28),
                            }
                        });
                    }
                    *after -= 1;
                }
            }
        }
        self.objects
            .lock()
            .expect("poisoned")
            .insert(key.to_string(), data.to_vec());
        Ok(())
    }
    fn get(&self, key: &str) -> Result<Box<dyn Read + Send>, StorageError> {
        super::check_key(&self.name, key)?;
        match self.objects.lock().expect("poisoned").get(key) {
            Some(v) => Ok(Box::new(io::Cursor::new(v.clone()))),
            None => Err(StorageError::NotFound {
                storage: self.name.clone(),
                location: key.to_string(),
            }),
        }
    }
    fn stat(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        super::check_key(&self.name, key)?;
        Ok(self
            .objects
            .lock()
            .expect("poisoned")
            .get(key)
            .map(|v| ObjectMeta {
                key: key.to_string(),
                size: v.len() as u64,
                modified: None,
            }))
    }
    fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        super::check_prefix(&self.name, prefix)?;
        Ok(self
            .objects
            .lock()
            .expect("poisoned")
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| ObjectMeta {
                key: k.clone(),
                size: v.len() as u64,
                modified: None,
            })
            .collect())
    }
    fn delete(&self, key: &str) -> Result<(), StorageError> {
        super::check_key(&self.name, key)?;
        self.objects.lock().expect("poisoned").remove(key);
        Ok(())
    }
    fn orphans(
        &self,
        prefix: &str,
        _older_than: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Orphan>, StorageError> {
        super::check_prefix(&self.name, prefix)?;
        // Uncommitted writes live in their writer only: nothing is ever left behind.
        Ok(Vec::new())
    }
    fn remove_orphan(&self, _orphan: &Orphan) -> Result<(), StorageError> {
        Ok(())
    }
    fn preflight(&self) -> Result<(), StorageError> {
        Ok(())
    }
    fn lock(&self, name: &str) -> Result<StorageLock, StorageError> {
        let dir = (*self.lock_dir).as_ref().expect("temp dir for locks");
        let path = dir.path().join(name.replace('/', "%2F"));
        StorageLock::acquire(&path).map_err(|source| StorageError::Io {
            storage: self.name.clone(),
            op: "locking",
            location: path.display().to_string(),
            cause: source,
        })
    }
}

#[cfg(test)]
mod tests {
    mod behaviour {
        crate::storage_behaviour_tests!(crate::storage::behaviour::Subject {
            storage: Box::new(crate::storage::memory::MemoryStorage::new("mem")),
            base: "srv/".into(),
            keep: Box::new(()),
        });
    }
}
