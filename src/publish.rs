//! Publishing a file atomically: written to an unnamed file in the target's directory
//! (`O_TMPFILE`; a hidden named temp file where the filesystem has none), synced, given its
//! mode, linked in under a hidden name once whole and renamed over the target, and the
//! directory synced. A reader sees the old file or the whole new one, never a half-written one;
//! a writer that fails (or a caller that refuses the content) leaves the old file as it was and
//! no temp file behind, and so does a SIGKILL while the file is written (a fetched backup's
//! decrypted SQL is never left half-written under a hidden name). Used for everything sqlguard
//! writes outside a storage: the HTML report, `schedule` output, `fetch`.

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where an output path leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A regular file (or none yet) to replace atomically: the path itself, or where its
    /// symbolic links lead, so that a link stays a link.
    File(PathBuf),
    /// Something to write into as it is, never to replace: a device (`/dev/stdout`), a FIFO, a
    /// socket.
    Stream(PathBuf),
}

/// Names `path` in an I/O error about it.
pub fn named(path: &Path, e: io::Error) -> io::Error {
    let shown = path.display().to_string();
    if e.to_string().contains(&shown) {
        return e;
    }
    io::Error::new(e.kind(), format!("{shown}: {e}"))
}

/// Finds where `path` leads, following symbolic links (also to a file that does not exist yet).
///
/// Fails, naming the path, for a directory (or a path ending in `/`), a loop of links, or a
/// path that cannot be inspected.
pub fn destination(path: &Path) -> io::Result<Destination> {
    let directory = || {
        io::Error::new(
            io::ErrorKind::IsADirectory,
            format!(
                "{} is a directory: name a file (in it or elsewhere)",
                path.display()
            ),
        )
    };
    if path.as_os_str().is_empty() || path.as_os_str().as_encoded_bytes().ends_with(b"/") {
        return Err(directory());
    }
    // The process's own descriptors (`/dev/stdout`, `/dev/fd/N`, `/proc/self/fd/N`) lead
    // through magic links to whatever the descriptor is (a file opened to append, a pipe):
    // written into as they are, never replaced.
    let own_fd = |p: &Path| {
        [
            "/dev/stdout",
            "/dev/stderr",
            "/dev/fd/",
            "/proc/self/",
            "/proc/thread-self/",
        ]
        .iter()
        .any(|prefix| {
            p.as_os_str()
                .as_encoded_bytes()
                .starts_with(prefix.as_bytes())
        })
    };
    if own_fd(path) {
        return Ok(Destination::Stream(path.to_path_buf()));
    }
    let mut at = path.to_path_buf();
    for _ in 0..40 {
        let meta = match std::fs::symlink_metadata(&at) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Destination::File(at)),
            Err(e) => return Err(named(path, e)),
        };
        let kind = meta.file_type();
        if kind.is_symlink() {
            let to = std::fs::read_link(&at).map_err(|e| named(path, e))?;
            if own_fd(&to) || to.as_os_str().as_encoded_bytes().starts_with(b"/proc/") {
                return Ok(Destination::Stream(path.to_path_buf()));
            }
            at = match at.parent() {
                Some(dir) if to.is_relative() => dir.join(to),
                _ => to,
            };
        } else if kind.is_dir() {
            return Err(directory());
        } else if kind.is_file() {
            return Ok(Destination::File(at));
        } else {
            return Ok(Destination::Stream(at));
        }
    }
    Err(named(
        path,
        io::Error::other("too many levels of symbolic links"),
    ))
}

/// Writes `path` with `write`, atomically, with `mode` (e.g. 0o644 for a report, 0o600 for a
/// fetched backup). A symbolic link is followed: what it leads to is replaced.
///
/// Fails, leaving `path` untouched, when it is a directory or not a regular file (a device,
/// a FIFO: see [`destination`]), when the directory cannot be written, or when `write` fails
/// (its error is returned as is, so a caller can refuse the content by failing). I/O errors
/// name the path.
pub fn atomically<T, E: From<io::Error>>(
    path: &Path,
    mode: u32,
    write: impl FnOnce(&mut std::fs::File) -> Result<T, E>,
) -> Result<T, E> {
    let path = match destination(path)? {
        Destination::File(p) => p,
        Destination::Stream(p) => {
            return Err(named(
                &p,
                io::Error::other("not a regular file, and this output is only ever replaced whole"),
            )
            .into())
        }
    };
    let path = path.as_path();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let done = |r: io::Result<()>| r.map_err(|e| named(path, e));
    match unnamed_in(dir) {
        Ok(mut file) => {
            let value = write(&mut file)?;
            done(file.flush())?;
            done(file.sync_all())?;
            done(file.set_permissions(std::fs::Permissions::from_mode(mode)))?;
            done(link_over(&file, dir, &name, path))?;
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| named(dir, e))?;
            return Ok(value);
        }
        // A filesystem without unnamed files: a named temp file, as below.
        Err(e)
            if matches!(
                rustix::io::Errno::from_io_error(&e),
                Some(
                    rustix::io::Errno::OPNOTSUPP
                        | rustix::io::Errno::ISDIR
                        | rustix::io::Errno::INVAL
                )
            ) => {}
        Err(e) => return Err(named(dir, e).into()),
    }
    // tempfile creates it 0600 and removes it when dropped unpersisted.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| named(dir, e))?;
    let value = write(tmp.as_file_mut())?;
    done(tmp.as_file_mut().flush())?;
    done(tmp.as_file().sync_all())?;
    done(
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode)),
    )?;
    done(tmp.persist(path).map(drop).map_err(|e| e.error))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| named(dir, e))?;
    Ok(value)
}

/// An unnamed file (mode 0600) in `dir`, which vanishes if the process dies before
/// [`link_over`] gives it a name. Fails with `EOPNOTSUPP` (the caller then uses a named temp
/// file) where it could not be given a name: no `/proc` to link it through.
fn unnamed_in(dir: &Path) -> io::Result<std::fs::File> {
    use rustix::fs::{Mode, OFlags};
    use std::os::fd::AsRawFd;
    let file = rustix::fs::open(
        dir,
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map(std::fs::File::from)?;
    if !Path::new(&format!("/proc/self/fd/{}", file.as_raw_fd())).exists() {
        return Err(rustix::io::Errno::OPNOTSUPP.into());
    }
    Ok(file)
}

/// Gives the whole, synced unnamed `file` the name `path`, replacing what is there: linked in
/// under a fresh hidden name in `dir`, then renamed over `path`.
fn link_over(file: &std::fs::File, dir: &Path, name: &str, path: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let own = format!("/proc/self/fd/{}", file.as_raw_fd());
    for _ in 0..100 {
        let tmp = dir.join(format!(".{name}.{:08x}.tmp", fastrand::u32(..)));
        match rustix::fs::linkat(
            rustix::fs::CWD,
            own.as_str(),
            rustix::fs::CWD,
            &tmp,
            rustix::fs::AtFlags::SYMLINK_FOLLOW,
        ) {
            Ok(()) => {
                return std::fs::rename(&tmp, path).inspect_err(|_| {
                    let _ = std::fs::remove_file(&tmp);
                });
            }
            Err(rustix::io::Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::other("no free temp name in the directory"))
}

/// Opens a [`Destination::Stream`] for writing: appending (a file behind `/dev/stdout` that the
/// shell opened with `>>` keeps what it held), and, for a FIFO, waiting for its reader without
/// blocking in open(2), so that a signal ends the wait.
///
/// Fails naming the path, or when a signal came before a reader did.
pub fn open_stream(path: &Path) -> io::Result<std::fs::File> {
    use rustix::fs::OFlags;
    loop {
        match rustix::fs::open(
            path,
            OFlags::WRONLY | OFlags::APPEND | OFlags::CLOEXEC | OFlags::NONBLOCK,
            rustix::fs::Mode::empty(),
        ) {
            Ok(fd) => {
                // Blocking again for the writes (a slow reader is waited for).
                let flags = rustix::fs::fcntl_getfl(&fd).map_err(|e| named(path, e.into()))?;
                rustix::fs::fcntl_setfl(&fd, flags - OFlags::NONBLOCK)
                    .map_err(|e| named(path, e.into()))?;
                return Ok(std::fs::File::from(fd));
            }
            // A FIFO without a reader yet.
            Err(rustix::io::Errno::NXIO) if !crate::signals::stopping() => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(rustix::io::Errno::NXIO) => {
                return Err(named(
                    path,
                    io::Error::new(
                        io::ErrorKind::Interrupted,
                        "interrupted by a signal while waiting for a reader",
                    ),
                ))
            }
            Err(e) => return Err(named(path, e.into())),
        }
    }
}

/// Writes `bytes` to `path` atomically with `mode`; into a device or FIFO as it is (the bytes
/// are whole before the first is written).
///
/// Fails as [`atomically`] does.
pub fn bytes(path: &Path, mode: u32, bytes: &[u8]) -> io::Result<()> {
    match destination(path)? {
        Destination::Stream(p) => {
            let mut f = open_stream(&p)?;
            f.write_all(bytes)
                .and_then(|()| f.flush())
                .map_err(|e| named(&p, e))
        }
        Destination::File(p) => atomically(&p, mode, |f| f.write_all(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_write_leaves_the_old_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("report.html");
        bytes(&p, 0o644, b"old").unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
        let r: Result<(), io::Error> = atomically(&p, 0o644, |f| {
            f.write_all(b"half")?;
            // Unnamed while written: a SIGKILL now would leave nothing behind.
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
            Err(io::Error::other("refused"))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn links_are_followed_and_devices_written_into_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.html");
        bytes(&real, 0o644, b"old").unwrap();
        let link = dir.path().join("link.html");
        std::os::unix::fs::symlink("real.html", &link).unwrap();
        bytes(&link, 0o644, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&real).unwrap(), b"new");
        // A link to a file that does not exist yet creates that file.
        let dangling = dir.path().join("later");
        std::os::unix::fs::symlink("made.html", &dangling).unwrap();
        bytes(&dangling, 0o644, b"made").unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("made.html")).unwrap(),
            b"made"
        );
        // The process's own descriptors are streams, whatever they lead to.
        for own in ["/dev/stdout", "/proc/self/fd/1", "/dev/fd/2"] {
            assert_eq!(
                destination(Path::new(own)).unwrap(),
                Destination::Stream(own.into())
            );
        }
        let to_fd = dir.path().join("to-fd");
        std::os::unix::fs::symlink("/proc/self/fd/1", &to_fd).unwrap();
        assert_eq!(
            destination(&to_fd).unwrap(),
            Destination::Stream(to_fd.clone())
        );
        // /dev/null stays a device.
        bytes(Path::new("/dev/null"), 0o644, b"gone").unwrap();
        assert!(!std::fs::metadata("/dev/null").unwrap().is_file());
        let r: io::Result<()> = atomically(Path::new("/dev/null"), 0o644, |_| Ok(()));
        assert!(r.unwrap_err().to_string().contains("/dev/null"));
        // Directories are named, not written.
        for d in [dir.path().to_path_buf(), dir.path().join("sub/")] {
            let e = bytes(&d, 0o644, b"x").unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::IsADirectory, "{e}");
        }
        let e = bytes(&dir.path().join("missing/x.html"), 0o644, b"x").unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }
}
