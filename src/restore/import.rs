//! `restore --file`: a dump file from outside sqlguard's storages (one the age CLI encrypted,
//! one fetched earlier, a plain `mariadb-dump | zstd` file), which no index vouches for.
//!
//! Since nothing records its hash, the file itself is proven in full before any byte reaches a
//! server: one pass copies it into a private, already-unlinked temp file while it is hashed,
//! decrypted (age: every chunk authenticated, up to the final one, which is what proves the
//! file was not cut short), decompressed (zstd, xz or plain SQL, told by its first bytes) and
//! its dump checked for the completion trailer. Only then is the private copy loaded, through
//! the same statement guard and sandboxed client as any restore. The file is read once; what
//! is loaded is exactly what was proven, whatever happens to the file meanwhile.

use std::io::{self, BufRead, Read, Seek, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{load_proven, CheckedCopy, LoadOptions, RestoreError, RestoreOutcome};
use crate::compress::Algorithm;
use crate::index::{BackupRecord, Status};
use crate::pipeline::CHUNK;
use crate::session::Session;
use crate::ui::human_bytes;

/// The storage name of the record a restore from `--file` makes: no storage holds it, and the
/// database it was dumped from is unknown.
pub(crate) const FILE_STORAGE: &str = "file";

/// An import: `file` into `to_database` on `to_server`.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub file: PathBuf,
    pub to_server: String,
    pub to_database: Option<String>,
    pub force: bool,
    pub load: LoadOptions,
}

/// What an import will do, found without loading anything.
#[derive(Debug, Clone, Serialize)]
pub struct ImportPlan {
    pub file: PathBuf,
    pub size: u64,
    /// The file is an age file (binary or armored).
    pub encrypted: bool,
    /// The identity file that decrypts it.
    pub identity_file: Option<PathBuf>,
    pub server: String,
    pub database: String,
    /// Tables the target database has now; `None` when the import creates it.
    pub existing_tables: Option<u64>,
}

impl ImportPlan {
    /// The plan in words, one line per step.
    pub fn describe(&self) -> Vec<String> {
        vec![
            format!(
                "read {} ({}){}",
                self.file.display(),
                human_bytes(self.size),
                match &self.identity_file {
                    Some(k) => format!(", an age file, decrypted with {}", k.display()),
                    None => String::new(),
                }
            ),
            "prove it whole before loading: copy it into a private temp file while decrypting every chunk to the last, decompressing it and checking the dump's completion trailer".to_string(),
            format!(
                "write into {}/{}: {}",
                self.server,
                self.database,
                match self.existing_tables {
                    None => "a new database".to_string(),
                    Some(0) => "an existing empty database".to_string(),
                    Some(n) => format!(
                        "an existing database with {n} tables, views, routines or events (--force: the file runs on top of them)"
                    ),
                }
            ),
        ]
    }
}

fn open(req: &ImportRequest) -> Result<(std::fs::File, u64, bool), RestoreError> {
    let err = |cause| RestoreError::ImportFile {
        path: req.file.display().to_string(),
        cause,
    };
    let mut file = std::fs::File::open(&req.file).map_err(err)?;
    let meta = file.metadata().map_err(err)?;
    if !meta.is_file() {
        return Err(err(io::Error::other("not a regular file")));
    }
    let mut head = [0u8; 64];
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(err(e)),
        }
    }
    file.rewind().map_err(err)?;
    Ok((file, meta.len(), crate::crypt::is_age(&head[..n])))
}

/// Finds what `req` would do: the file is readable, an age file has an identity here, the
/// target is checked; nothing is loaded.
///
/// Fails with a request error (no `--to-database`, an unreadable file, no identity for an age
/// file, unknown server, a target with tables without `force`) or a server error.
pub fn import_plan(session: &Session, req: &ImportRequest) -> Result<ImportPlan, RestoreError> {
    let settings = &session.settings;
    let database = req
        .to_database
        .clone()
        .ok_or(RestoreError::ImportNeedsDatabase)?;
    super::check_database_name(&database)?;
    let server = settings.server(&req.to_server)?;
    let (_, size, encrypted) = open(req)?;
    let identity_file = if encrypted {
        let ids = settings
            .identities()
            .map_err(|why| RestoreError::NoIdentity {
                id: req.file.display().to_string(),
                why,
            })?;
        Some(ids.path().to_path_buf())
    } else {
        None
    };
    let target = super::Target::new(server, req.load)?;
    let existing_tables = target.table_count(&database)?;
    if let Some(n) = existing_tables.filter(|n| *n > 0 && !req.force) {
        return Err(RestoreError::TargetNotEmpty {
            server: server.name.clone(),
            database,
            tables: n,
        });
    }
    Ok(ImportPlan {
        file: req.file.clone(),
        size,
        encrypted,
        identity_file,
        server: server.name.clone(),
        database,
        existing_tables,
    })
}

/// Hashes and counts the file's bytes as they are read, and copies them into the spool.
struct Spooling<'a> {
    file: std::fs::File,
    spool: io::BufWriter<&'a std::fs::File>,
    hasher: Sha256,
    count: u64,
    read_error: Option<String>,
    cancel: &'a AtomicBool,
}

impl Read for Spooling<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other("interrupted by a signal"));
        }
        let n = loop {
            match self.file.read(buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.read_error = Some(e.to_string());
                    return Err(e);
                }
            }
        };
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        self.spool.write_all(&buf[..n]).inspect_err(|e| {
            self.read_error = Some(format!("writing the private temp copy: {e}"));
        })?;
        Ok(n)
    }
}

/// The compression a stream starts with.
fn sniff(head: &[u8]) -> Algorithm {
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Algorithm::Zstd
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Algorithm::Xz
    } else {
        Algorithm::None
    }
}

/// What the proving pass found.
struct Proven {
    size: u64,
    sha256: String,
    raw_bytes: u64,
    compression: Algorithm,
}

/// How many of the SQL's first bytes are kept to tell what the file is.
const HEAD: usize = 64;

/// Why a file whose SQL begins with `head` and ends with `tail` is not a whole dump the
/// restore can load, if it is not.
fn not_a_whole_dump(head: &[u8], tail: &[u8]) -> Option<&'static str> {
    if head.trim_ascii_start().starts_with(b"<?xml") {
        return Some(
            "it is an XML dump (`--xml`), not SQL: restore loads SQL dumps; dump the database again without --xml",
        );
    }
    (!crate::mysql::has_completion_trailer(tail)).then_some(
        "the dump ends without its completion trailer (`-- Dump completed`): it was cut short, or written with --compact or --skip-comments, which leave the trailer out (dump the database again without them)",
    )
}

/// The proving pass: see the module docs. `problems` say why the file is refused.
fn prove(
    file: std::fs::File,
    spool: &std::fs::File,
    identities: Option<&crate::crypt::Identities>,
    cancel: &AtomicBool,
) -> Result<Proven, Vec<String>> {
    let mut tee = Spooling {
        file,
        spool: io::BufWriter::with_capacity(CHUNK, spool),
        hasher: Sha256::new(),
        count: 0,
        read_error: None,
        cancel,
    };
    let mut problems = Vec::new();
    let mut raw_bytes = 0u64;
    let mut tail: Vec<u8> = Vec::new();
    // The first bytes of the SQL, to name a file that is not SQL.
    let mut head: Vec<u8> = Vec::new();
    let mut compression = Algorithm::None;
    {
        let plain: Box<dyn Read + Send + '_> = match identities {
            Some(ids) => match crate::crypt::decryptor(ids, &mut tee) {
                Ok(d) => Box::new(super::Described(d)),
                Err(e) => return Err(vec![e.to_string()]),
            },
            None => Box::new(&mut tee),
        };
        let mut plain = io::BufReader::with_capacity(CHUNK, plain);
        let decoded = plain.fill_buf().map(sniff).and_then(|algo| {
            compression = algo;
            crate::compress::decoder(algo, plain)
        });
        let result = decoded.and_then(|mut dec| {
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = match dec.read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                raw_bytes += n as u64;
                if head.len() < HEAD {
                    head.extend_from_slice(&buf[..n.min(HEAD - head.len())]);
                }
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > 2 * crate::pipeline::TAIL {
                    tail.drain(..tail.len() - crate::pipeline::TAIL);
                }
            }
        });
        if let Err(e) = result {
            let msg = e.to_string();
            problems.push(if msg.starts_with("age decryption failed") {
                msg
            } else {
                format!("{} decompression failed: {msg}", compression.as_str())
            });
        }
    }
    if let Some(e) = tee.read_error.take() {
        return Err(vec![format!("reading the file failed: {e}")]);
    }
    if cancel.load(Ordering::Relaxed) {
        return Err(vec!["interrupted by a signal".into()]);
    }
    // The rest of the file (nothing, for a whole age file) is copied and hashed too.
    if problems.is_empty() {
        if let Err(e) = io::copy(&mut tee, &mut io::sink()) {
            problems.push(format!("reading the file failed: {e}"));
        }
    }
    if let Err(e) = tee.spool.flush() {
        problems.push(format!("writing the private temp copy: {e}"));
    }
    if problems.is_empty() {
        if raw_bytes == 0 {
            problems.push("it holds no SQL".into());
        } else if let Some(problem) = not_a_whole_dump(&head, &tail) {
            problems.push(problem.into());
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Proven {
        size: tee.count,
        sha256: hex::encode(tee.hasher.finalize()),
        raw_bytes,
        compression,
    })
}

/// Imports a dump file: plans it, lets `confirm` see the plan, proves the whole file (see the
/// module docs), then loads the proven private copy.
///
/// Fails as [`import_plan`] does, with `Declined`, with `ImportRefused` when the file does not
/// prove whole (nothing was written to any database), `NoSpace`/`Spool` for the temp copy, or
/// a load error.
pub fn import(
    session: &Session,
    req: &ImportRequest,
    confirm: &mut dyn FnMut(&ImportPlan) -> bool,
) -> Result<RestoreOutcome, RestoreError> {
    let (settings, ui, cancel) = (&session.settings, &session.ui, session.cancel.as_ref());
    let plan = import_plan(session, req)?;
    if !confirm(&plan) {
        return Err(RestoreError::Declined);
    }
    let name = req
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| req.file.display().to_string());
    let (file, size, encrypted) = open(req)?;
    let identities = if encrypted {
        settings.encryption.identities.clone()
    } else {
        None
    };
    // A private, unlinked copy in the temp directory (checked for room first).
    let dir = super::temp_dir();
    let spool_err = |cause| RestoreError::Spool {
        id: name.clone(),
        dir: dir.display().to_string(),
        cause,
    };
    if let Ok(st) = rustix::fs::statvfs(&dir) {
        let free = st.f_bavail.saturating_mul(st.f_frsize);
        if free < size {
            return Err(RestoreError::NoSpace {
                id: name.clone(),
                dir: dir.display().to_string(),
                free: human_bytes(free),
                need: human_bytes(size),
            });
        }
    }
    let mut spool = tempfile::tempfile_in(&dir).map_err(spool_err)?;
    ui.info(&format!(
        "proving {} ({}) before restoring it: {}decompressing it whole and checking its trailer",
        req.file.display(),
        human_bytes(size),
        if encrypted {
            "decrypting every chunk, "
        } else {
            ""
        }
    ));
    let proven = prove(file, &spool, identities.as_ref(), cancel).map_err(|problems| {
        if cancel.load(Ordering::Relaxed) {
            RestoreError::Interrupted
        } else {
            RestoreError::ImportRefused {
                path: req.file.display().to_string(),
                problems: problems.join("; "),
            }
        }
    })?;
    spool.rewind().map_err(spool_err)?;
    let database = plan.database.clone();
    let now = chrono::Utc::now();
    let record = BackupRecord {
        id: name,
        server: plan.server.clone(),
        // The source database is unknown: statements may name the target only.
        database: database.clone(),
        backup_type: "file".into(),
        storage: FILE_STORAGE.into(),
        status: Status::Success,
        started_at: now,
        finished_at: now,
        duration_seconds: 0.0,
        raw_bytes: proven.raw_bytes,
        compressed_bytes: proven.size,
        sha256: Some(proven.sha256.clone()),
        compression: proven.compression,
        compression_level: 0,
        key: None,
        manifest_key: None,
        server_version: None,
        dump_tool: None,
        dump_tool_version: None,
        sqlguard_version: crate::VERSION.to_string(),
        error: None,
        verification: None,
        database_collation: None,
        source_data_bytes: None,
        binlog: None,
        consistent: None,
        segment: None,
        encryption: encrypted.then(|| crate::crypt::Encryption {
            format: crate::crypt::Format::Age,
            recipients: Vec::new(),
        }),
    };
    let copy = CheckedCopy {
        file: spool,
        size: proven.size,
        sha256: proven.sha256,
        spooled: true,
        identities,
    };
    let server = settings.server(&req.to_server)?;
    ui.info(&format!(
        "{} proved whole ({} of SQL); restoring it into {}/{database}",
        req.file.display(),
        human_bytes(proven.raw_bytes),
        server.name
    ));
    load_proven(session, server, copy, record, database, req.force, req.load)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An XML dump and a dump without its trailer are each named for what they are.
    #[test]
    fn a_file_that_is_not_a_whole_dump_says_what_it_is() {
        let whole = b"-- MariaDB dump 10.19\n\n-- Dump completed on 2026-11-30 10:00:00\n";
        assert_eq!(not_a_whole_dump(b"-- MariaDB dump 10.19", whole), None);
        let xml = not_a_whole_dump(b"\n<?xml version=\"1.0\"?>\n<mysqldump", b"</mysqldump>\n");
        assert!(xml.unwrap().contains("XML dump (`--xml`)"), "{xml:?}");
        let compact = not_a_whole_dump(b"/*!40101 SET", b"INSERT INTO `t` VALUES (1);\n");
        let compact = compact.unwrap();
        assert!(
            compact.contains("cut short, or written with --compact"),
            "{compact}"
        );
    }

    #[test]
    fn compression_is_told_by_the_first_bytes() {
        let z = zstd::encode_all(&b"SELECT 1;\n"[..], 3).unwrap();
        assert_eq!(sniff(&z), Algorithm::Zstd);
        assert_eq!(sniff(&[0xfd, b'7', b'z', b'X', b'Z', 0, 1]), Algorithm::Xz);
        assert_eq!(sniff(b"-- MariaDB dump"), Algorithm::None);
        assert_eq!(sniff(b""), Algorithm::None);
    }
}
