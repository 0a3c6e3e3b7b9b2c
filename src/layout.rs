//! The storage layout: object keys, manifest keys, index keys, backup ids and name encoding.
//!
//! ```text
//! <server>/index.json
//! <server>/<database>/<type>/<UTC timestamp>_<short id>.sql.<zst|xz>[.age]
//! <server>/<database>/<type>/<UTC timestamp>_<short id>.manifest.json
//! ```
//! Keys are relative to a storage's root. Every component is encoded so that no database name can
//! escape its directory. Server and type names are config names (`[A-Za-z0-9_.-]`, at most 64
//! characters, distinct ignoring case: the config enforces it) and keep their plain spelling.
//! Database names are whatever the server allows, so [`database_component`] maps each one,
//! always the same way, to a component that every storage accepts: never longer than
//! [`MAX_DATABASE_COMPONENT`] bytes, and never equal, ignoring case, to another name's
//! component. This module does no I/O.

use chrono::{DateTime, Utc};

use crate::compress::Algorithm;

/// Name of the index object in each server directory.
pub const INDEX_FILE: &str = "index.json";
/// Suffix of a manifest object.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";

/// Encodes one path component: bytes outside `[A-Za-z0-9_.-]` become `%XX`, and so does a leading
/// `.` (no hidden files, no `.` or `..`). The result is never empty and never contains `/`.
pub fn encode_component(name: &str) -> String {
    escape(name, |b| b.is_ascii_alphanumeric())
}

/// `name` with every byte that is not `plain` (nor `_`, `-`, or a `.` after the first byte)
/// written as `%XX` (upper-case hex); `%00` for an empty name.
fn escape(name: &str, plain: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        if plain(b) || b == b'_' || b == b'-' || (b == b'.' && i > 0) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push_str("%00");
    }
    out
}

/// The longest directory name a database gets: well under the 255 bytes of a file name, so that
/// temp names beside it fit too, and under S3's 1,024-byte keys with the rest of the path.
pub const MAX_DATABASE_COMPONENT: usize = 128;

/// The directory of a database: bytes outside `[a-z0-9_.-]`, upper-case letters included, become
/// `%XX` (upper-case hex), and a leading `.` too. The result has no upper-case letter except in
/// `%XX` escapes, so lower-casing it loses nothing: two databases that differ only in case
/// (`shop` and `Shop`, real on a server with `lower_case_table_names=0`) get directories that
/// stay distinct on a case-insensitive filesystem. A name whose encoding is longer than
/// [`MAX_DATABASE_COMPONENT`] is cut at an escape boundary and gets `~` and the first 128 bits
/// of its name's SHA-256 (lower-case hex) instead. The same name always gets the same
/// component, whatever other databases exist; the real name is in every record and manifest.
pub fn database_component(name: &str) -> String {
    let mut out = escape(name, |b| b.is_ascii_lowercase() || b.is_ascii_digit());
    // Beside the databases' directories lie the index's own: `index/` and `index.json` (with
    // its `.bak-<time>` copies). A database called so gets its first byte escaped.
    if out == "index" || out.starts_with("index.") {
        out.replace_range(..1, "%69");
    }
    if out.len() <= MAX_DATABASE_COMPONENT {
        return out;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(name.as_bytes());
    let hash = hex::encode(&digest[..16]);
    let mut cut = MAX_DATABASE_COMPONENT - 1 - hash.len();
    // Never split a `%XX` escape (the encoding is ASCII: every other byte stands alone).
    if let Some(p) = out[..cut].rfind('%') {
        if p + 3 > cut {
            cut = p;
        }
    }
    format!("{}~{hash}", &out[..cut])
}

/// Reverses [`encode_component`]; `None` when the text is not a valid encoding.
pub fn decode_component(encoded: &str) -> Option<String> {
    if encoded == "%00" {
        return Some(String::new());
    }
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = encoded.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The key of a server's legacy (schema 1) index, from before the per-database layout.
pub fn index_key(server: &str) -> String {
    format!("{}/{INDEX_FILE}", encode_component(server))
}

/// The prefix of a server's index files (ends with `/`).
pub fn index_prefix(server: &str) -> String {
    format!("{}/index/", encode_component(server))
}

/// The key of a server's index summary.
pub fn summary_key(server: &str) -> String {
    format!("{}summary.json", index_prefix(server))
}

/// Whether `key` is one of the index's own files on `server`: the summary, the stub (or legacy
/// index) `index.json`, a database's month file `index/db/<dir>/<YYYY-MM>.json`, or a
/// `.bak-<time>` copy of one. Nothing else under those names is the index's to rewrite or
/// remove (a backup of a database that older versions stored as `index` lies there).
pub fn is_index_key(server: &str, key: &str) -> bool {
    let key = bak_base(key).unwrap_or(key);
    if key == summary_key(server) || key == index_key(server) {
        return true;
    }
    key.strip_prefix(&database_index_prefix(server))
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(dir, file)| {
            let month = file.strip_suffix(".json").unwrap_or("");
            !dir.is_empty()
                && month.len() == 7
                && month.as_bytes()[4] == b'-'
                && month
                    .bytes()
                    .enumerate()
                    .all(|(i, b)| i == 4 || b.is_ascii_digit())
        })
}

/// The key a `.bak-<time>` copy was made of, when `key` is one: its last component ends in
/// `.bak-` and a UTC stamp (`20261130T041500Z`). A database or server name holding `.bak-`
/// is no copy.
pub fn bak_base(key: &str) -> Option<&str> {
    let (base, stamp) = key.rsplit_once(".bak-")?;
    let stamp_ok = stamp.len() == 16
        && stamp.bytes().enumerate().all(|(i, b)| match i {
            8 => b == b'T',
            15 => b == b'Z',
            _ => b.is_ascii_digit(),
        });
    (stamp_ok && !stamp.contains('/')).then_some(base)
}

/// The prefix of a server's per-database index files (ends with `/`).
pub fn database_index_prefix(server: &str) -> String {
    format!("{}db/", index_prefix(server))
}

/// The prefix of the index files of one database (ends with `/`).
pub fn database_index_dir(server: &str, database: &str) -> String {
    format!(
        "{}{}/",
        database_index_prefix(server),
        database_component(database)
    )
}

/// The key of the index file of one database and partition (a month: `2026-11`).
pub fn partition_key(server: &str, database: &str, partition: &str) -> String {
    format!("{}{partition}.json", database_index_dir(server, database))
}

/// The key prefix of everything that belongs to a server (ends with `/`).
pub fn server_prefix(server: &str) -> String {
    format!("{}/", encode_component(server))
}

/// The longest key sqlguard uses (S3's limit).
pub const MAX_KEY: usize = 1024;

/// Checks that `key` is a key relative to a storage root: not empty, not absolute, no empty,
/// `.` or `..` component, no NUL byte, at most [`MAX_KEY`] bytes. Every storage calls this
/// before any I/O, so a record from a tampered index cannot reach outside the root.
///
/// Fails with the reason.
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("it is empty".into());
    }
    if key.len() > MAX_KEY {
        return Err(format!("it is longer than {MAX_KEY} bytes"));
    }
    if key.starts_with('/') {
        return Err("it is absolute".into());
    }
    if key.contains('\0') {
        return Err("it contains a NUL byte".into());
    }
    if key
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err("it has an empty, '.' or '..' component".into());
    }
    Ok(())
}

/// Whether `key` is a file of backup `id` of `server`/`database` (`backup_type`): directly in
/// the directory the layout gives them (the database directory as written now, or as sqlguard
/// wrote it before database names were case-safe), named `<id>.` and a suffix. The only keys a
/// record may have deleted, read as its manifest, or written: an edited or damaged index cannot
/// make sqlguard touch another backup's object, an index file, or anything else.
pub fn is_backup_file(
    server: &str,
    database: &str,
    backup_type: &str,
    id: &str,
    key: &str,
) -> bool {
    if id.is_empty() || id.contains('/') || check_key(key).is_err() {
        return false;
    }
    // Component by component, without building the names: a prune checks every record it
    // removes, and a read every record of the index.
    let mut parts = key.split('/');
    let (Some(s), Some(d), Some(t), Some(file), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let alphanumeric = |b: u8| b.is_ascii_alphanumeric();
    escapes_to(server, s, alphanumeric)
        && escapes_to(backup_type, t, alphanumeric)
        && (escapes_to(database, d, alphanumeric) || is_database_component(database, d))
        && file
            .strip_prefix(id)
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(is_backup_suffix)
}

/// Whether `dir` is [`database_component`]`(name)`; builds it only for the rare names that
/// are cut short with a hash or escaped beside the index's own directory.
fn is_database_component(name: &str, dir: &str) -> bool {
    if dir.len() < MAX_DATABASE_COMPONENT && !dir.starts_with('%') && !dir.starts_with("index") {
        escapes_to(name, dir, |b| b.is_ascii_lowercase() || b.is_ascii_digit())
    } else {
        dir == database_component(name)
    }
}

/// Whether [`escape`]`(name, plain)` is `expected`, without building it.
fn escapes_to(name: &str, expected: &str, plain: impl Fn(u8) -> bool) -> bool {
    if name.is_empty() {
        return expected == "%00";
    }
    let mut rest = expected.as_bytes();
    for (i, b) in name.bytes().enumerate() {
        if plain(b) || b == b'_' || b == b'-' || (b == b'.' && i > 0) {
            match rest.split_first() {
                Some((&c, tail)) if c == b => rest = tail,
                _ => return false,
            }
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            let code = [b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]];
            match rest.strip_prefix(&code[..]) {
                Some(tail) => rest = tail,
                None => return false,
            }
        }
    }
    rest.is_empty()
}

/// Whether `key` has the form of a backup object's key (`<server>/<database>/<type>/<id>.sql…`
/// or `….binlog…`; not a manifest), whoever's: the only keys sqlguard uploads in parts, so the
/// only incomplete uploads a prune may abort.
pub fn is_object_name(key: &str) -> bool {
    if check_key(key).is_err() || key.split('/').count() != 4 {
        return false;
    }
    let file = key.rsplit('/').next().unwrap_or("");
    file.split_once('.')
        .is_some_and(|(id, rest)| is_id(id) && rest != "manifest.json" && is_backup_suffix(rest))
}

/// Whether `rest`, what follows `<id>.` in a file name, names one of a backup's own files: its
/// manifest, or its object (a dump or a binary log segment; compressed or not; encrypted or
/// not). Nothing else: with any suffix allowed, a record whose id is another's plus `.sql`
/// would own that backup's `<id>.sql.zst`.
fn is_backup_suffix(rest: &str) -> bool {
    if rest == "manifest.json" {
        return true;
    }
    let object = rest
        .strip_suffix(crate::crypt::SUFFIX)
        .and_then(|r| r.strip_suffix('.'))
        .unwrap_or(rest);
    ["sql", "binlog"].iter().any(|kind| {
        object
            .strip_prefix(kind)
            .is_some_and(|c| ["", ".zst", ".xz"].contains(&c))
    })
}

/// A new backup id: UTC start time to the second plus 8 random hex digits, e.g.
/// `20261128T024500Z_9f3a61c2`. Ids sort by start time.
pub fn new_id(started: DateTime<Utc>) -> String {
    format!(
        "{}_{:08x}",
        started.format("%Y%m%dT%H%M%SZ"),
        fastrand::u32(..)
    )
}

/// Whether `s` has the form of a backup id (`20261128T024500Z_9f3a61c2`).
pub fn is_id(s: &str) -> bool {
    s.len() == 25
        && id_time(s).is_some()
        && s.as_bytes()[16] == b'_'
        && s[17..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// The start time written in a backup id (`20261128T024500Z_9f3a61c2`), if it is one.
pub fn id_time(id: &str) -> Option<DateTime<Utc>> {
    let stamp = id.split('_').next()?;
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// The key of a backup object: `<id>.sql.zst`, with `.age` after it when `encrypted`.
pub fn object_key(
    server: &str,
    database: &str,
    backup_type: &str,
    id: &str,
    algorithm: Algorithm,
    encrypted: bool,
) -> String {
    format!(
        "{}/{}/{}/{}.{}{}",
        encode_component(server),
        database_component(database),
        encode_component(backup_type),
        id,
        algorithm.extension(),
        if encrypted {
            format!(".{}", crate::crypt::SUFFIX)
        } else {
            String::new()
        }
    )
}

/// The key of a binary log segment (`<server>/%2Abinlog/binlog/<id>.binlog.zst`).
pub fn segment_key(
    server: &str,
    database: &str,
    id: &str,
    algorithm: Algorithm,
    encrypted: bool,
) -> String {
    let ext = algorithm.extension().trim_start_matches("sql");
    format!(
        "{}/{}/binlog/{id}.binlog{ext}{}",
        encode_component(server),
        database_component(database),
        if encrypted { ".age" } else { "" }
    )
}

/// The key of the manifest that sits beside a backup object.
pub fn manifest_key(server: &str, database: &str, backup_type: &str, id: &str) -> String {
    format!(
        "{}/{}/{}/{id}{MANIFEST_SUFFIX}",
        encode_component(server),
        database_component(database),
        encode_component(backup_type),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_backup_object_names_are_object_names() {
        let id = "20261128T024500Z_9f3a61c2";
        for ok in [
            format!("main/shop/daily/{id}.sql.zst"),
            format!("main/shop/daily/{id}.sql.xz.age"),
            format!("main/%2Abinlog/binlog/{id}.binlog.zst"),
        ] {
            assert!(super::is_object_name(&ok), "{ok}");
        }
        for not in [
            format!("main/shop/daily/{id}.manifest.json"),
            format!("main/shop/{id}.sql.zst"),
            format!("x/main/shop/daily/{id}.sql.zst"),
            "main/shop/daily/mine.sql".to_string(),
            "main/notmine.bin".to_string(),
            format!("main/shop/daily/{id}.sql.zst.bak"),
            format!("main/../daily/{id}.sql"),
            "main/index/db/shop/2026-11.json".to_string(),
        ] {
            assert!(!super::is_object_name(&not), "{not}");
        }
    }

    use super::*;

    #[test]
    fn ids_have_one_form() {
        assert!(is_id(&new_id(Utc::now())));
        for not in [
            "2$(touch x)",
            "20261128T024500Z_9f3a61c",
            "20261128T024500Z_9f3a61cg",
            "20261128T024500Z-9f3a61c2",
            "",
        ] {
            assert!(!is_id(not), "{not}");
        }
    }

    #[test]
    fn a_backups_files_are_only_its_own() {
        let id = "20261130T005714Z_0a89240d";
        let own = |key: &str| is_backup_file("main", "Shop", "manual", id, key);
        assert!(own(&object_key(
            "main",
            "Shop",
            "manual",
            id,
            Algorithm::Zstd,
            true
        )));
        assert!(own(&manifest_key("main", "Shop", "manual", id)));
        // The directory an older sqlguard wrote for `Shop`.
        assert!(own(&format!("main/Shop/manual/{id}.sql.zst")));
        for other in [
            "main/crm/manual/20261130T005714Z_0776e61f.sql.zst".to_string(),
            format!("main/%53hop/manual/{id}x.sql.zst"),
            format!("main/%53hop/daily/{id}.sql.zst"),
            format!("main/%53hop/manual/{id}./x"),
            format!("main/%53hop/manual/{id}."),
            "main/index/summary.json".to_string(),
            "main/index.json".to_string(),
            format!("other/%53hop/manual/{id}.sql.zst"),
            format!("main/%53hop/manual/../manual/{id}.sql.zst"),
            format!("main/%53hop/manual/{id}.sql.zst.tmp"),
            format!("main/%53hop/manual/{id}.zst"),
            format!("main/%53hop/manual/{id}.manifest.json.age"),
        ] {
            assert!(!own(&other), "{other}");
        }
        for suffix in ["sql", "sql.xz", "sql.age", "binlog.zst", "binlog.xz.age"] {
            assert!(
                own(&format!("main/%53hop/manual/{id}.{suffix}")),
                "{suffix}"
            );
        }
        // An id that is another's plus a dot and more owns nothing of that other backup.
        let longer = format!("{id}.sql");
        for of_the_other in [
            format!("main/%53hop/manual/{id}.sql.zst"),
            format!("main/%53hop/manual/{id}.manifest.json"),
        ] {
            assert!(
                !is_backup_file("main", "Shop", "manual", &longer, &of_the_other),
                "{of_the_other}"
            );
        }
        assert!(!is_backup_file(
            "main",
            "Shop",
            "manual",
            &format!("{id}.manifest"),
            &format!("main/%53hop/manual/{id}.manifest.json")
        ));
        assert!(!is_backup_file(
            "main",
            "shop",
            "manual",
            "a/b",
            "main/shop/manual/a/b.sql"
        ));
    }

    #[test]
    fn hostile_names_stay_in_their_directory_and_round_trip() {
        for name in [
            "shop",
            "..",
            ".",
            "a/b",
            "we ird`name",
            "ünï",
            "x%y",
            "-dash",
            "a.b-c_d",
            "",
        ] {
            let enc = encode_component(name);
            assert!(
                !enc.contains('/') && !enc.starts_with('.') && !enc.is_empty(),
                "{name} -> {enc}"
            );
            assert!(enc
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-%".contains(&b)));
            assert_eq!(decode_component(&enc).as_deref(), Some(name));
        }
        assert_eq!(encode_component("a.b-c_d"), "a.b-c_d");
        assert_eq!(encode_component(".."), "%2E.");
    }

    /// Random database names, including case variants of each other and long non-ASCII ones.
    fn random_names(rng: &mut fastrand::Rng, n: usize) -> Vec<String> {
        let alphabet: Vec<char> = "aAbBsShHoOpP0_-. `%~ü日ß\u{1F600}İı".chars().collect();
        let mut names = Vec::new();
        for _ in 0..n {
            let len = rng.usize(0..=64);
            let name: String = (0..len)
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            names.push(name.to_lowercase());
            names.push(name.to_uppercase());
            names.push(name);
        }
        names.sort();
        names.dedup();
        names
    }

    /// Issue 10: the layout property. Every name maps to one component a storage accepts, and
    /// lower-casing the components of two distinct names never makes them equal (so they stay
    /// apart on a case-insensitive filesystem, which no test here can mount). The seed is
    /// printed so that a failure can be replayed with SQLGUARD_TEST_SEED.
    #[test]
    fn a_database_named_like_the_index_gets_its_own_directory() {
        assert_eq!(database_component("index"), "%69ndex");
        assert_eq!(database_component("index.json"), "%69ndex.json");
        assert_eq!(database_component("index.json.bak-1"), "%69ndex.json.bak-1");
        assert_eq!(database_component("indexes"), "indexes");
        assert_eq!(decode_component("%69ndex").as_deref(), Some("index"));
        assert!(is_index_key("main", "main/index/summary.json"));
        assert!(is_index_key("main", "main/index.json"));
        assert!(is_index_key("main", "main/index.json.bak-20261130T000000Z"));
        assert!(is_index_key("main", "main/index/db/shop/2026-11.json"));
        assert!(is_index_key(
            "main",
            "main/index/db/shop/2026-11.json.bak-20261130T000000Z"
        ));
        // What older versions stored for a database called `index`, and anything else there.
        assert!(!is_index_key(
            "main",
            "main/index/manual/20261130T000000Z_0000000a.sql.zst"
        ));
        assert!(!is_index_key(
            "main",
            "main/index/db/20261130T000000Z_0000000a.manifest.json"
        ));
        assert!(!is_index_key("main", "main/index/db/shop/notes.json"));
        // `.bak-` in a database's name is no copy.
        assert!(is_index_key(
            "main",
            "main/index/db/shop.bak-1/2026-11.json"
        ));
        assert_eq!(bak_base("main/index/db/shop.bak-1/2026-11.json"), None);
        assert_eq!(
            bak_base("main/index/db/shop/2026-11.json.bak-20261130T000000Z"),
            Some("main/index/db/shop/2026-11.json")
        );
    }

    #[test]
    fn database_components_are_bounded_stable_and_distinct_ignoring_case() {
        let seed = std::env::var("SQLGUARD_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| fastrand::u64(..));
        println!("seed {seed}");
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut names = random_names(&mut rng, 3000);
        names.extend(
            [
                "shop", "Shop", "SHOP", "", ".", "..", "a/b", "%41", "A", "~x",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        // 64 characters the server allows, each 2-4 bytes of UTF-8: 384+ bytes once encoded.
        names.push("ü".repeat(64));
        names.push("Ü".repeat(64));
        names.push("日".repeat(64));
        names.push(format!("{}x", "ü".repeat(63)));
        let mut seen = std::collections::HashMap::new();
        for name in &names {
            let c = database_component(name);
            assert_eq!(c, database_component(name), "not stable: {name:?}");
            assert!(
                !c.is_empty() && c.len() <= MAX_DATABASE_COMPONENT,
                "{name:?} -> {c} ({} bytes)",
                c.len()
            );
            assert!(!c.contains('/') && !c.starts_with('.'), "{name:?} -> {c}");
            assert!(
                c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-%~".contains(&b)),
                "{name:?} -> {c}"
            );
            if let Some(other) = seen.insert(c.to_lowercase(), name.clone()) {
                assert_eq!(
                    &other, name,
                    "seed {seed}: {other:?} and {name:?} collide as {c}"
                );
            }
        }
        assert_eq!(database_component("shop"), "shop");
        assert_eq!(database_component("Shop"), "%53hop");
        assert!(database_component(&"ü".repeat(64)).contains('~'));
    }

    #[test]
    fn keys_follow_the_layout() {
        let t = DateTime::parse_from_rfc3339("2026-11-28T02:45:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let id = new_id(t);
        assert!(
            id.starts_with("20261128T024500Z_") && id.len() == 25,
            "{id}"
        );
        assert_eq!(
            object_key("main", "my Shop", "daily", &id, Algorithm::Zstd, false),
            format!("main/my%20%53hop/daily/{id}.sql.zst")
        );
        assert_eq!(
            object_key("main", "shop", "daily", &id, Algorithm::Xz, true),
            format!("main/shop/daily/{id}.sql.xz.age")
        );
        assert_eq!(
            manifest_key("main", "db", "daily", "X"),
            "main/db/daily/X.manifest.json"
        );
        assert_eq!(index_key("main"), "main/index.json");
    }

    /// A backup's own files, and nothing that merely looks like one.
    #[test]
    fn only_a_backups_own_suffixes_are_its_files() {
        for ok in [
            "manifest.json",
            "sql",
            "sql.zst",
            "sql.xz",
            "binlog",
            "binlog.zst",
            "binlog.xz",
            "sql.age",
            "sql.zst.age",
            "binlog.xz.age",
        ] {
            assert!(is_backup_suffix(ok), "{ok}");
        }
        for bad in [
            "",
            "age",
            ".age",
            "sqlage",
            "sql.zstage",
            "sql.zst.agex",
            "sql.zst.age.age",
            "manifest.json.age",
            "sql.gz",
            "sql.zst/x",
            "sql.",
        ] {
            assert!(!is_backup_suffix(bad), "{bad}");
        }
    }

    /// The component-by-component check says what building each name and comparing did, for
    /// names plain, escaped, empty, long (cut with a hash) and beside the index's directory.
    #[test]
    fn is_backup_file_agrees_with_the_names_it_would_build() {
        let built = |server: &str, database: &str, backup_type: &str, id: &str, key: &str| {
            if id.is_empty() || id.contains('/') || check_key(key).is_err() {
                return false;
            }
            let (server, backup_type) = (encode_component(server), encode_component(backup_type));
            [database_component(database), encode_component(database)]
                .iter()
                .any(|dir| {
                    key.strip_prefix(&format!("{server}/{dir}/{backup_type}/{id}."))
                        .is_some_and(is_backup_suffix)
                })
        };
        let long = "Ab".repeat(70);
        let names = [
            "shop", "Shop", "", "index", "index.x", "Index", "%41", "a.b", ".a", "a b", "é", "a/b",
            "_-", &long, "x~y",
        ];
        let id = "20261130T005714Z_0a89240d";
        for server in ["main", "Main"] {
            for name in names {
                for other in names {
                    for dir in [
                        database_component(name),
                        encode_component(name),
                        name.to_string(),
                        database_component(other),
                    ] {
                        for key in [
                            format!("{}/{dir}/daily/{id}.sql.zst", encode_component(server)),
                            format!("{server}/{dir}/daily/{id}.manifest.json"),
                            format!("{server}/{dir}/daily/{id}.sql.zst/x"),
                            format!("{server}/{dir}/Daily/{id}.sql"),
                        ] {
                            assert_eq!(
                                is_backup_file(server, name, "daily", id, &key),
                                built(server, name, "daily", id, &key),
                                "{server} {name:?} {key}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn owned_keys_stay_under_the_server() {
        let own = |k: &str| is_backup_file("main", "shop", "daily", "x", k);
        assert!(own("main/shop/daily/x.sql.zst"));
        for k in [
            "other/shop/daily/x.sql.zst",
            "main/../etc/passwd",
            "main//shop/daily/x.sql.zst",
            "/main/shop/daily/x.sql.zst",
            "main/./shop/daily/x.sql.zst",
            "mainx/shop/daily/x.sql.zst",
        ] {
            assert!(!own(k), "{k}");
        }
    }
}
