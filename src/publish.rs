//! Publishing a file atomically: written to a hidden temp file in the target's directory,
//! synced, given its mode, renamed over the target, and the directory synced. A reader sees the
//! old file or the whole new one, never a half-written one; a writer that fails (or a caller
//! that refuses the content) leaves the old file as it was and no temp file behind. Used for
//! everything sqlguard writes outside a storage: the HTML report, `schedule` output, `fetch`.

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `path` with `write`, atomically, with `mode` (e.g. 0o644 for a report, 0o600 for a
/// fetched backup).
///
/// Fails, leaving `path` untouched, when the directory cannot be written or `write` fails (its
/// error is returned as is, so a caller can refuse the content by failing).
pub fn atomically<T, E: From<io::Error>>(
    path: &Path,
    mode: u32,
    write: impl FnOnce(&mut std::fs::File) -> Result<T, E>,
) -> Result<T, E> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // tempfile creates it 0600 and removes it when dropped unpersisted.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    let value = write(tmp.as_file_mut())?;
    tmp.as_file_mut().flush()?;
    tmp.as_file().sync_all()?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(value)
}

/// Writes `bytes` to `path` atomically with `mode`.
///
/// Fails as [`atomically`] does.
pub fn bytes(path: &Path, mode: u32, bytes: &[u8]) -> io::Result<()> {
    atomically(path, mode, |f| f.write_all(bytes))
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
            Err(io::Error::other("refused"))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
