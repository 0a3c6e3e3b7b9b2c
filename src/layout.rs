//! The storage layout: object keys, manifest keys, index keys, backup ids and name encoding.
//!
//! ```text
//! <server>/index.json
//! <server>/<database>/<type>/<UTC timestamp>_<short id>.sql.<zst|xz>
//! <server>/<database>/<type>/<UTC timestamp>_<short id>.manifest.json
//! ```
//! Keys are relative to a storage's root. Every component is encoded so that no database name can
//! escape its directory. This module does no I/O.

use chrono::{DateTime, Utc};

use crate::compress::Algorithm;

/// Name of the index object in each server directory.
pub const INDEX_FILE: &str = "index.json";
/// Suffix of a manifest object.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";

/// Encodes one path component: bytes outside `[A-Za-z0-9_.-]` become `%XX`, and so does a leading
/// `.` (no hidden files, no `.` or `..`). The result is never empty and never contains `/`.
pub fn encode_component(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if plain {
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

/// The key of a server's index.
pub fn index_key(server: &str) -> String {
    format!("{}/{INDEX_FILE}", encode_component(server))
}

/// The key prefix of everything that belongs to a server (ends with `/`).
pub fn server_prefix(server: &str) -> String {
    format!("{}/", encode_component(server))
}

/// Whether `key` may be deleted on behalf of `server`'s index: it lies under the server's prefix
/// and has no empty, `.` or `..` component, so a tampered index cannot point outside.
pub fn is_owned_key(server: &str, key: &str) -> bool {
    key.starts_with(&server_prefix(server))
        && key
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
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

/// The key of a backup object.
pub fn object_key(
    server: &str,
    database: &str,
    backup_type: &str,
    id: &str,
    algorithm: Algorithm,
) -> String {
    format!(
        "{}/{}/{}/{}.{}",
        encode_component(server),
        encode_component(database),
        encode_component(backup_type),
        id,
        algorithm.extension()
    )
}

/// The key of the manifest that sits beside a backup object.
pub fn manifest_key(server: &str, database: &str, backup_type: &str, id: &str) -> String {
    format!(
        "{}/{}/{}/{id}{MANIFEST_SUFFIX}",
        encode_component(server),
        encode_component(database),
        encode_component(backup_type),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
            object_key("main", "my shop", "daily", &id, Algorithm::Zstd),
            format!("main/my%20shop/daily/{id}.sql.zst")
        );
        assert_eq!(
            manifest_key("main", "db", "daily", "X"),
            "main/db/daily/X.manifest.json"
        );
        assert_eq!(index_key("main"), "main/index.json");
    }

    #[test]
    fn owned_keys_stay_under_the_server() {
        assert!(is_owned_key("main", "main/shop/daily/x.sql.zst"));
        for k in [
            "other/shop/x",
            "main/../etc/passwd",
            "main//x",
            "/main/x",
            "main/./x",
            "mainx/y",
        ] {
            assert!(!is_owned_key("main", k), "{k}");
        }
    }
}
