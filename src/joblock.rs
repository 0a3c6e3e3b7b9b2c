//! Overlap protection: one lock per job (server + command + type) on this host, so that a slow
//! daily backup and the next timer tick never run the same job twice at once.
//!
//! The lock is an exclusive `flock` on `<lock_dir>/job-<server>-<command>[-<type>].lock`, which
//! the kernel releases when the process dies, however it dies. The file holds who took it (pid,
//! host, start time, command) so that a refused run can name the holder, and is emptied on a
//! clean release: a lock file that still names a holder but is not locked was left by a killed
//! run, and taking it over is reported.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::layout::encode_component;
use crate::ui::Ui;

/// The lock directory used when the config names none.
pub fn default_lock_dir() -> PathBuf {
    std::env::temp_dir().join("sqlguard-locks")
}

/// Creates `dir` (0700) if needed and checks it: a real directory (not a link), and not one
/// that anyone may write unless it is sticky (like /tmp and /run/lock, where others cannot
/// remove or rename what is ours). Lock files are then opened by [`open_lock_file`], which
/// refuses a link, a FIFO, a device or a second hard link put where a lock file goes, so that
/// whoever else can write in the directory can at most hold a lock, never make sqlguard
/// truncate a file of their choosing.
///
/// Fails naming the directory and the fix.
pub fn secure_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let meta = std::fs::symlink_metadata(dir)?;
    let mode = meta.permissions().mode();
    let why = if !meta.is_dir() {
        Some("it is not a directory (a symbolic link?)")
    } else if mode & 0o002 != 0 && mode & 0o1000 == 0 {
        Some("anyone may write in it, and it is not sticky")
    } else {
        None
    };
    match why {
        None => Ok(()),
        Some(why) => Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "lock directory {} is not safe: {why}; set lock_dir (or SQLGUARD_LOCK_DIR) to a directory others cannot write, e.g. `mkdir -m 700`",
                dir.display()
            ),
        )),
    }
}

/// Opens (creating, 0600) a lock file in a directory [`secure_dir`] checked, never through a
/// symbolic link and never blocking on a FIFO planted there; anything but a regular file with
/// one link is refused.
pub fn open_lock_file(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::MetadataExt;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.nlink() != 1 {
        return Err(std::io::Error::other(format!(
            "{} is not a plain lock file (another kind of file, or a hard link to one elsewhere): remove it",
            path.display()
        )));
    }
    Ok(file)
}

/// Who holds (or held) a job lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub started_at: DateTime<Utc>,
    pub command: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on {} since {} ({})",
            self.pid,
            self.host,
            self.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
            self.command
        )
    }
}

/// Why a job lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another run holds the lock of job '{job}': {} (lock file {}); wait for it, or pass --wait DURATION", .holder.as_ref().map(|h| h.to_string()).unwrap_or_else(|| "holder unknown".into()), .path.display())]
    Held {
        job: String,
        path: PathBuf,
        holder: Option<Holder>,
    },
    #[error("cannot use lock file {}: {cause} (set lock_dir or SQLGUARD_LOCK_DIR to a writable directory)", .path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("a signal came while this run waited for the lock of job '{job}' (lock file {}): nothing was done", .path.display())]
    Interrupted { job: String, path: PathBuf },
}

/// A held job lock; released (and its file emptied) on drop.
#[derive(Debug)]
pub struct JobLock {
    file: File,
}

impl Drop for JobLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// The name of a job: `backup daily on main`.
pub fn job_name(server: &str, command: &str, backup_type: Option<&str>) -> String {
    match backup_type {
        Some(t) => format!("{command} {t} on {server}"),
        None => format!("{command} on {server}"),
    }
}

fn path_for(dir: &Path, server: &str, command: &str, backup_type: Option<&str>) -> PathBuf {
    let mut name = format!(
        "job-{}-{}",
        encode_component(server),
        encode_component(command)
    );
    if let Some(t) = backup_type {
        name.push('-');
        name.push_str(&encode_component(t));
    }
    dir.join(format!("{name}.lock"))
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

/// The live holder of a job's lock on this host, read without taking the lock (taking it, even
/// for an instant, could make that job's own start fail): its lock file names a process of this
/// host that is still there. A clean release empties the file.
pub fn running(
    dir: &Path,
    server: &str,
    command: &str,
    backup_type: Option<&str>,
) -> Option<Holder> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path_for(dir, server, command, backup_type))
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let holder = read_holder(&mut file)?;
    (holder.host == crate::host::hostname() && Path::new(&format!("/proc/{}", holder.pid)).exists())
        .then_some(holder)
}

/// Takes the lock of a job, waiting up to `wait` for a running holder to finish.
///
/// Fails with `Held` (exit code 3) when another process holds it after the wait, and with `Io`
/// when the lock directory cannot be used.
pub fn acquire(
    dir: &Path,
    server: &str,
    command: &str,
    backup_type: Option<&str>,
    me: &Holder,
    wait: Option<Duration>,
    ui: &Ui,
) -> Result<JobLock, LockError> {
    let path = path_for(dir, server, command, backup_type);
    let io = |source| LockError::Io {
        path: path.clone(),
        cause: source,
    };
    secure_dir(dir).map_err(io)?;
    let mut file = open_lock_file(&path).map_err(io)?;
    let deadline = wait.map(|w| Instant::now() + w);
    let mut announced = false;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = read_holder(&mut file);
                match deadline {
                    Some(_) if crate::signals::stopping() => {
                        return Err(LockError::Interrupted {
                            job: job_name(server, command, backup_type),
                            path,
                        })
                    }
                    Some(d) if Instant::now() < d => {
                        if !announced {
                            ui.info(&format!(
                                "waiting for {} to finish job '{}'",
                                holder
                                    .as_ref()
                                    .map(|h| h.to_string())
                                    .unwrap_or_else(|| "another run".into()),
                                job_name(server, command, backup_type)
                            ));
                            announced = true;
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    _ => {
                        return Err(LockError::Held {
                            job: job_name(server, command, backup_type),
                            path,
                            holder,
                        })
                    }
                }
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
    }
    if let Some(previous) = read_holder(&mut file) {
        ui.warn(&format!(
            "taking over the lock of job '{}' left by {}, which is gone",
            job_name(server, command, backup_type),
            previous
        ));
    }
    let text = serde_json::to_string(me).expect("holder serializes");
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.flush().map_err(io)?;
    Ok(JobLock { file })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me(pid: u32) -> Holder {
        Holder {
            pid,
            host: "h".into(),
            started_at: Utc::now(),
            command: "backup --type daily".into(),
        }
    }

    #[test]
    fn a_lock_directory_others_can_write_and_planted_links_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("locks");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = acquire(&open, "main", "backup", None, &me(1), None, &Ui::silent())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("anyone may write") && e.contains("mkdir -m 700"),
            "{e}"
        );
        // Sticky, as /tmp and /run/lock: fine.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        acquire(&open, "main", "backup", None, &me(1), None, &Ui::silent()).unwrap();
        // A hard link planted where a lock file goes: refused, the other file left alone.
        let other = dir.path().join("other-file");
        std::fs::write(&other, b"keep too").unwrap();
        std::fs::hard_link(&other, path_for(&open, "main", "prune", None)).unwrap();
        assert!(acquire(&open, "main", "prune", None, &me(1), None, &Ui::silent()).is_err());
        assert_eq!(std::fs::read(&other).unwrap(), b"keep too");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&open, &link).unwrap();
        assert!(secure_dir(&link).is_err());
        // A link planted where a lock file goes: the file it points to is left alone.
        let safe = dir.path().join("safe");
        secure_dir(&safe).unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, path_for(&safe, "main", "backup", None)).unwrap();
        assert!(acquire(&safe, "main", "backup", None, &me(1), None, &Ui::silent()).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }

    #[test]
    fn a_held_lock_names_its_holder_and_is_free_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let ui = Ui::silent();
        let first = acquire(
            dir.path(),
            "main",
            "backup",
            Some("daily"),
            &me(1),
            None,
            &ui,
        )
        .unwrap();
        let e = acquire(
            dir.path(),
            "main",
            "backup",
            Some("daily"),
            &me(2),
            None,
            &ui,
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("pid 1 on h")
                && msg.contains("backup daily on main")
                && msg.contains("--wait"),
            "{msg}"
        );
        // Other jobs are independent.
        let _hourly = acquire(
            dir.path(),
            "main",
            "backup",
            Some("hourly"),
            &me(3),
            None,
            &ui,
        )
        .unwrap();
        let _prune = acquire(dir.path(), "main", "prune", None, &me(4), None, &ui).unwrap();
        drop(first);
        let again = acquire(
            dir.path(),
            "main",
            "backup",
            Some("daily"),
            &me(5),
            None,
            &ui,
        )
        .unwrap();
        drop(again);
        let content =
            std::fs::read_to_string(path_for(dir.path(), "main", "backup", Some("daily"))).unwrap();
        assert!(content.is_empty(), "a clean release empties the file");
    }

    #[test]
    fn wait_gives_up_after_the_duration() {
        let dir = tempfile::tempdir().unwrap();
        let ui = Ui::silent();
        let _held = acquire(dir.path(), "m", "prune", None, &me(1), None, &ui).unwrap();
        let t = Instant::now();
        let e = acquire(
            dir.path(),
            "m",
            "prune",
            None,
            &me(2),
            Some(Duration::from_millis(500)),
            &ui,
        );
        assert!(e.is_err());
        assert!(t.elapsed() >= Duration::from_millis(500));
    }
}
