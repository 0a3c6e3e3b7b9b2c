//! Client-side encryption of backup objects with age (<https://age-encryption.org/v1>): a
//! streaming stage of the data path, after compression and before hashing, and its reverse.
//!
//! Owns: parsing and checking recipients (public keys, all a backup host needs) and identities
//! (private keys, restore hosts only), [`encryptor`] and [`decryptor`], and turning age's
//! errors into words that name the problem and the fix. A stored object is a plain age file
//! (X25519 recipients, binary format): `age -d -i key.txt X.sql.zst.age | zstd -d` reads it.
//!
//! Must not: hold a whole stream (age works in 64 KiB chunks: memory stays at one chunk each
//! way), write a plaintext byte anywhere, print or log an identity, or pass one to a child
//! process. Binlog segments are meant to reuse [`encryptor`] and [`decryptor`] as they are.
//!
//! Only X25519 recipients (`age1…`, from `age-keygen`) are accepted: the crate's `ssh` feature
//! (SSH ed25519/RSA recipients) would bring 15 more crates, among them `rsa` 0.9 with its open
//! timing advisory (RUSTSEC-2023-0071), for a key type that `age-keygen` replaces.

use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The suffix an encrypted object's key gets after the compression's (`.sql.zst.age`).
pub const SUFFIX: &str = "age";

/// The first bytes of a binary age file.
pub const MAGIC: &[u8] = b"age-encryption.org/v1\n";
/// The first line of an armored (`age -a`) age file.
pub const ARMOR_MAGIC: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";

/// How an object is encrypted, as recorded in its index record and manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    /// The format: `age`.
    pub format: Format,
    /// The recipients (public keys) it was encrypted to, so that a restore host can say which
    /// identity it needs, and key rotation can see what old backups need.
    #[serde(default)]
    pub recipients: Vec<String>,
}

/// An encryption format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Age,
}

/// Why encrypting or decrypting could not start or finish. Each message names the fix.
#[derive(Debug, thiserror::Error)]
pub enum CryptError {
    #[error("recipient {position} is not an age X25519 recipient: {why} (a public key `age1…` as `age-keygen` prints it; SSH and plugin recipients are not supported)")]
    BadRecipient { position: usize, why: String },
    #[error("no recipients: name at least one age public key (`age1…`)")]
    NoRecipients,
    #[error("cannot read the age recipients file {path}: {cause}")]
    RecipientsFile { path: PathBuf, cause: io::Error },
    #[error("cannot read the age identity file {path}: {cause} (restore hosts need the private key `age-keygen` wrote; backup hosts need none)")]
    IdentityRead { path: PathBuf, cause: io::Error },
    #[error("the age identity file {path} is {who} (mode {mode:04o}): it holds a private key; run `chmod 600 {path}` (and make sqlguard's user its owner)")]
    IdentityPermissions {
        path: PathBuf,
        who: &'static str,
        mode: u32,
    },
    #[error("the age identity file {path}: line {line} is not an age identity (`AGE-SECRET-KEY-1…` as `age-keygen` writes it; SSH and plugin identities are not supported)")]
    IdentityLine { path: PathBuf, line: usize },
    #[error("the age identity file {path} is itself encrypted (a passphrase-protected key): sqlguard reads plain `AGE-SECRET-KEY-1…` lines; decrypt it once into a 0600 file (`age -d -o key.txt {path}`) that only the backup user reads, and point age_identity_file there")]
    IdentityEncrypted { path: PathBuf },
    #[error("the age identity file {path} holds no identity (`AGE-SECRET-KEY-1…` lines)")]
    NoIdentities { path: PathBuf },
    #[error("cannot start age encryption: {0}")]
    Encrypt(String),
    #[error("{0}")]
    Decrypt(String),
}

/// Validated age recipients (public keys) of a backup type, in their configured order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Recipients(Vec<String>);

/// The recipients in a recipients file's text: one per line, `#` comments and blank lines
/// skipped (the format `age -R` reads).
pub fn recipients_in(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

impl Recipients {
    /// Checks every recipient of `list`, dropping duplicates.
    ///
    /// Fails naming the first recipient that is not an X25519 public key by its position and
    /// shape, never by its text (a recipients file pointed at a password file must not print
    /// the password), or an empty list. The caller names the key or variable.
    pub fn parse(list: Vec<String>) -> Result<Recipients, CryptError> {
        let mut out: Vec<String> = Vec::new();
        for (i, r) in list.into_iter().enumerate() {
            let r = r.trim().to_string();
            if r.parse::<age::x25519::Recipient>().is_err() {
                let upper = r.to_ascii_uppercase();
                let why = if upper.starts_with("AGE-SECRET-KEY-") {
                    "it is a private key: give its public key (`age-keygen -y`)".to_string()
                } else if r.starts_with("ssh-") || r.starts_with("ecdsa-") {
                    "it is an SSH key".to_string()
                } else if r.starts_with("age1") {
                    format!(
                        "it starts with age1 but is not a valid key ({} characters; a key has 62)",
                        r.chars().count()
                    )
                } else {
                    format!(
                        "it does not start with age1 ({} characters)",
                        r.chars().count()
                    )
                };
                return Err(CryptError::BadRecipient {
                    position: i + 1,
                    why,
                });
            }
            if !out.contains(&r) {
                out.push(r);
            }
        }
        if out.is_empty() {
            return Err(CryptError::NoRecipients);
        }
        Ok(Recipients(out))
    }

    /// Reads a recipients file.
    ///
    /// Fails when it cannot be read.
    pub fn read_file(path: &Path) -> Result<Vec<String>, CryptError> {
        crate::config::read_text(path, crate::config::MAX_SECRET_BYTES)
            .map(|t| recipients_in(&t))
            .map_err(|cause| CryptError::RecipientsFile {
                path: path.to_path_buf(),
                cause,
            })
    }

    /// The public keys, as configured.
    pub fn as_strings(&self) -> &[String] {
        &self.0
    }

    /// What a record says about an object encrypted to these recipients.
    pub fn encryption(&self) -> Encryption {
        Encryption {
            format: Format::Age,
            recipients: self.0.clone(),
        }
    }
}

/// Identities (private keys) from an identity file, for decrypting. Prints as its path only.
#[derive(Clone)]
pub struct Identities {
    path: PathBuf,
    keys: Arc<Vec<age::x25519::Identity>>,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Identities({}, {} key(s))",
            self.path.display(),
            self.keys.len()
        )
    }
}

impl Identities {
    /// Loads the identity file at `path`: one `AGE-SECRET-KEY-1…` per line (several for key
    /// rotation), `#` comments and blank lines skipped, as `age-keygen` writes it.
    ///
    /// Fails when the file cannot be read, is readable by its group or others, holds a line
    /// that is not an identity (named by number, never by content), or holds none.
    pub fn load(path: &Path) -> Result<Identities, CryptError> {
        use std::os::unix::fs::MetadataExt;
        let read_err = |cause| CryptError::IdentityRead {
            path: path.to_path_buf(),
            cause,
        };
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => {
                return Err(read_err(io::Error::other(
                    "it is a directory: name the key file in it",
                )))
            }
            // A FIFO or a device would hold every command at its open, waiting for a writer.
            Ok(m) if !m.is_file() => {
                return Err(read_err(io::Error::other(
                    "it is not a regular file (a pipe or a device): name the key file itself",
                )))
            }
            _ => {}
        }
        let file = std::fs::File::open(path).map_err(read_err)?;
        let mode = file.metadata().map_err(read_err)?.mode() & 0o7777;
        // Read by others, the key is theirs; written by others, the keys this host trusts are.
        let who = match mode {
            m if m & 0o004 != 0 => Some("readable by everyone"),
            m if m & 0o040 != 0 => Some("readable by its group"),
            m if m & 0o002 != 0 => Some("writable by everyone"),
            m if m & 0o020 != 0 => Some("writable by its group"),
            _ => None,
        };
        if let Some(who) = who {
            return Err(CryptError::IdentityPermissions {
                path: path.to_path_buf(),
                who,
                mode,
            });
        }
        let mut keys = Vec::new();
        // At most 1 MiB: an identity file is a few lines.
        let reader = io::BufReader::new(file.take(1 << 20));
        for (n, line) in reader.lines().enumerate() {
            let line = zeroize::Zeroizing::new(line.map_err(read_err)?);
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            if n == 0
                && (t == "age-encryption.org/v1" || t.starts_with("-----BEGIN AGE ENCRYPTED FILE"))
            {
                return Err(CryptError::IdentityEncrypted {
                    path: path.to_path_buf(),
                });
            }
            match t.parse::<age::x25519::Identity>() {
                Ok(k) => keys.push(k),
                Err(_) => {
                    return Err(CryptError::IdentityLine {
                        path: path.to_path_buf(),
                        line: n + 1,
                    })
                }
            }
        }
        if keys.is_empty() {
            return Err(CryptError::NoIdentities {
                path: path.to_path_buf(),
            });
        }
        Ok(Identities {
            path: path.to_path_buf(),
            keys: Arc::new(keys),
        })
    }

    /// The identity file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The public keys of these identities.
    pub fn recipients(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| k.to_public().to_string())
            .collect()
    }

    /// Whether one of these identities can decrypt an object encrypted to `recipients` (true
    /// when the record does not say).
    pub fn can_decrypt(&self, encryption: &Encryption) -> bool {
        let mine = self.recipients();
        encryption.recipients.is_empty() || encryption.recipients.iter().any(|r| mine.contains(r))
    }

    /// Why these identities cannot decrypt an object encrypted to `encryption`'s recipients.
    pub fn mismatch(&self, encryption: &Encryption) -> String {
        format!(
            "none of the {} identit{} in {} matches the recipients it was encrypted to ({}): add the matching private key to that file (keep old keys there after a rotation)",
            self.keys.len(),
            if self.keys.len() == 1 { "y" } else { "ies" },
            self.path.display(),
            encryption.recipients.join(", ")
        )
    }
}

/// An age encryption stage: write plaintext into it, ciphertext comes out of `W`.
pub struct Encrypting<W: Write>(age::stream::StreamWriter<W>);

impl<W: Write> std::fmt::Debug for Encrypting<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Encrypting")
    }
}

impl<W: Write> Write for Encrypting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> Encrypting<W> {
    /// Writes the last chunk (without it, the file fails to decrypt: "truncated") and returns
    /// the inner writer.
    ///
    /// Fails when the inner writer does.
    pub fn finish(self) -> io::Result<W> {
        self.0.finish()
    }
}

/// Starts encrypting to `recipients` into `writer`: the age header is written at once.
///
/// Fails when a recipient does not parse (never after [`Recipients::parse`]) or the writer
/// fails on the header.
pub fn encryptor<W: Write>(
    recipients: &Recipients,
    writer: W,
) -> Result<Encrypting<W>, CryptError> {
    let parsed = recipients
        .0
        .iter()
        .map(|r| {
            r.parse::<age::x25519::Recipient>()
                .map_err(|e| CryptError::Encrypt(format!("recipient {r}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let enc = age::Encryptor::with_recipients(parsed.iter().map(|r| r as &dyn age::Recipient))
        .map_err(|e| CryptError::Encrypt(e.to_string()))?;
    enc.wrap_output(writer)
        .map(Encrypting)
        .map_err(|e| CryptError::Encrypt(e.to_string()))
}

/// A reader of the plaintext of the age file that `reader` yields (binary or armored).
pub type Decrypting<R> = age::stream::StreamReader<age::armor::ArmoredReader<io::BufReader<R>>>;

/// Reads the age header from `reader` and unwraps its file key with one of `identities`; the
/// returned reader yields the plaintext, each 64 KiB chunk authenticated as it is read. A
/// truncated or altered payload fails the read that reaches it: only reading to the end proves
/// the whole file (see [`describe_read_error`]).
///
/// Fails, in words, when the header is not age's, is damaged, or no identity matches.
pub fn decryptor<R: Read>(identities: &Identities, reader: R) -> Result<Decrypting<R>, CryptError> {
    let armored = age::armor::ArmoredReader::new(reader);
    let d =
        age::Decryptor::new(armored).map_err(|e| CryptError::Decrypt(describe(&e, identities)))?;
    // age answers "no matching keys" for a passphrase file and X25519 identities: say what it is.
    if d.is_scrypt() {
        return Err(CryptError::Decrypt(PASSPHRASE_FILE.into()));
    }
    d.decrypt(identities.keys.iter().map(|k| k as &dyn age::Identity))
        .map_err(|e| CryptError::Decrypt(describe(&e, identities)))
}

const PASSPHRASE_FILE: &str = "age decryption failed: the file is encrypted with a passphrase, which sqlguard does not use: encrypt to a recipient (`age -r age1…`)";

fn describe(e: &age::DecryptError, identities: &Identities) -> String {
    use age::DecryptError as D;
    match e {
        D::NoMatchingKeys => format!(
            "age decryption failed: none of the {} identit{} in {} ({}) is a recipient of this file: use the identity file that holds its private key",
            identities.keys.len(),
            if identities.keys.len() == 1 { "y" } else { "ies" },
            identities.path.display(),
            identities.recipients().join(", ")
        ),
        D::InvalidMac | D::DecryptionFailed | D::KeyDecryptionFailed => {
            "age decryption failed: the file's header does not authenticate (it was altered or damaged)".into()
        }
        D::InvalidHeader | D::UnknownFormat => {
            "age decryption failed: this is not an age file, or its header is damaged".into()
        }
        D::ExcessiveWork { .. } => PASSPHRASE_FILE.into(),
        D::Io(io) if io.kind() == io::ErrorKind::UnexpectedEof => {
            "age decryption failed: the file ends inside its header (truncated)".into()
        }
        D::Io(io) => format!("age decryption failed: reading the file: {io}"),
        #[allow(unreachable_patterns)]
        _ => "age decryption failed".into(),
    }
}

/// Words for an error a [`Decrypting`] reader returned: truncation and tampering are told apart
/// from other read errors.
pub fn describe_read_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            "age decryption failed: the file is truncated (its last chunk is missing)".into()
        }
        io::ErrorKind::InvalidData => format!(
            "age decryption failed: a chunk does not authenticate ({e}): the file was altered, damaged or cut short"
        ),
        _ => format!("age decryption failed: {e}"),
    }
}

/// What to do about an encrypted object on a host without identities.
pub fn no_identity_message() -> String {
    format!(
        "it is encrypted with age and this host has no identity to decrypt it: set encryption.age_identity_file (or {}) to the age-keygen key file (mode 0600) that holds the private key of one of its recipients",
        crate::env_vars::AGE_IDENTITY_FILE
    )
}

/// Whether `head` (the first bytes of a file) starts an age file, binary or armored.
pub fn is_age(head: &[u8]) -> bool {
    head.starts_with(MAGIC) || head.starts_with(ARMOR_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn keypair() -> (String, String) {
        let id = age::x25519::Identity::generate();
        let public = id.to_public().to_string();
        use age::secrecy::ExposeSecret;
        (id.to_string().expose_secret().to_string(), public)
    }

    fn identity_file(dir: &Path, secrets: &[&str], mode: u32) -> PathBuf {
        let p = dir.join("key.txt");
        let text: String = secrets
            .iter()
            .map(|s| format!("# created: now\n{s}\n"))
            .collect();
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn encrypt(recipients: &Recipients, data: &[u8]) -> Vec<u8> {
        let mut e = encryptor(recipients, Vec::new()).unwrap();
        for c in data.chunks(100_000) {
            e.write_all(c).unwrap();
        }
        e.finish().unwrap()
    }

    fn decrypt(ids: &Identities, data: &[u8]) -> Result<Vec<u8>, String> {
        let mut r = decryptor(ids, data).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        r.read_to_end(&mut out)
            .map_err(|e| describe_read_error(&e))?;
        Ok(out)
    }

    /// Round trip to several recipients; each identity alone decrypts; memory is a chunk.
    #[test]
    fn several_recipients_each_decrypt() {
        let dir = tempfile::tempdir().unwrap();
        let (s1, p1) = keypair();
        let (s2, p2) = keypair();
        let r = Recipients::parse(vec![p1.clone(), p2, p1]).unwrap();
        assert_eq!(r.as_strings().len(), 2, "duplicates dropped");
        let data: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let ct = encrypt(&r, &data);
        assert!(is_age(&ct));
        for s in [&s1, &s2] {
            let ids = Identities::load(&identity_file(dir.path(), &[s], 0o600)).unwrap();
            assert!(ids.can_decrypt(&r.encryption()));
            assert_eq!(decrypt(&ids, &ct).unwrap(), data);
        }
    }

    /// Issue 15: a wrong identity, a truncated file and a flipped byte each fail in words.
    #[test]
    fn wrong_key_truncation_and_a_flipped_byte_fail_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let (_, p1) = keypair();
        let (s2, p2) = keypair();
        let r = Recipients::parse(vec![p1]).unwrap();
        let data = vec![7u8; 200_000];
        let ct = encrypt(&r, &data);
        let other = Identities::load(&identity_file(dir.path(), &[&s2], 0o400)).unwrap();
        assert!(!other.can_decrypt(&r.encryption()));
        let e = decrypt(&other, &ct).unwrap_err();
        assert!(
            e.contains("none of the 1 identity") && e.contains(&p2),
            "{e}"
        );
        let right = Recipients::parse(vec![p2]).unwrap();
        let ct = encrypt(&right, &data);
        let cut = &ct[..ct.len() - 100];
        let e = decrypt(&other, cut).unwrap_err();
        assert!(e.contains("age decryption failed"), "{e}");
        let cut = &ct[..ct.len() - (ct.len() - 200) % 65_552];
        let e = decrypt(&other, cut).unwrap_err();
        assert!(e.contains("truncated") || e.contains("cut short"), "{e}");
        let mut flipped = ct.clone();
        let n = flipped.len() / 2;
        flipped[n] ^= 1;
        let e = decrypt(&other, &flipped).unwrap_err();
        assert!(e.contains("does not authenticate"), "{e}");
        let mut header = ct.clone();
        header[40] ^= 1;
        assert!(decrypt(&other, &header)
            .unwrap_err()
            .contains("age decryption failed"));
        let e = decrypt(&other, b"plain text").unwrap_err();
        assert!(e.contains("age decryption failed"), "{e}");
        // A file encrypted with a passphrase (`age -p`) is said to be one, not a wrong key.
        let mut pass = age::scrypt::Recipient::new(age::secrecy::SecretString::from(
            "a passphrase".to_string(),
        ));
        pass.set_work_factor(2);
        let enc =
            age::Encryptor::with_recipients(std::iter::once(&pass as &dyn age::Recipient)).unwrap();
        let mut ct = Vec::new();
        let mut w = enc.wrap_output(&mut ct).unwrap();
        w.write_all(b"SELECT 1;").unwrap();
        w.finish().unwrap();
        let e = decrypt(&other, &ct).unwrap_err();
        assert!(e.contains("encrypted with a passphrase"), "{e}");
    }

    #[test]
    fn identity_files_readable_by_others_or_with_junk_are_refused_without_echoing_them() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = keypair();
        for mode in [0o640, 0o644, 0o604, 0o620, 0o602] {
            let e = Identities::load(&identity_file(dir.path(), &[&s], mode))
                .unwrap_err()
                .to_string();
            assert!(e.contains("chmod 600") && !e.contains(&s), "{mode:o}: {e}");
        }
        // A directory is named as one, not given a chmod to try; a FIFO is refused, not waited on.
        let e = Identities::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("is a directory") && !e.contains("chmod"), "{e}");
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let e = Identities::load(&fifo).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let p = identity_file(dir.path(), &[&s, "AGE-SECRET-KEY-1NOTAKEY"], 0o600);
        let e = Identities::load(&p).unwrap_err().to_string();
        assert!(e.contains("line 4") && !e.contains("NOTAKEY"), "{e}");
        let p = identity_file(dir.path(), &[], 0o600);
        assert!(Identities::load(&p)
            .unwrap_err()
            .to_string()
            .contains("no identity"));
        let e = Identities::load(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing") && e.contains("restore hosts"), "{e}");
        let id = Identities::load(&identity_file(dir.path(), &[&s], 0o600)).unwrap();
        assert!(!format!("{id:?}").contains(&s));
        // A passphrase-protected key file (`age -p`, armored or not) is named as such.
        for head in [
            "age-encryption.org/v1\n-> scrypt x 18\n",
            "-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n",
        ] {
            let p = dir.path().join("protected.txt");
            std::fs::write(&p, head).unwrap();
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
            let e = Identities::load(&p).unwrap_err().to_string();
            assert!(
                e.contains("itself encrypted") && e.contains("age -d"),
                "{e}"
            );
        }
    }

    #[test]
    fn recipients_must_be_public_keys_and_a_private_key_is_never_echoed() {
        let (s, p) = keypair();
        assert!(Recipients::parse(vec![])
            .unwrap_err()
            .to_string()
            .contains("no recipients"));
        let e = Recipients::parse(vec![s.clone()]).unwrap_err().to_string();
        assert!(e.contains("private key") && !e.contains(&s), "{e}");
        let e = Recipients::parse(vec!["ssh-ed25519 AAAA".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an age X25519 recipient"), "{e}");
        assert_eq!(
            recipients_in(&format!("# team\n\n  {p}  \n")),
            vec![p.clone()]
        );
    }
}
