//! Issue 10: never lie, never leak, never touch what is not ours. Each test reproduces one hole a
//! hostile pass found (or a sibling of it) on the real servers.

use crate::support::{mariadb, Env};

/// Issue 10, item 1: `shop` and `Shop` are two databases; both are backed up, each into its own
/// directory (distinct even ignoring case), `--db Shop` finds the right one, and each backup
/// holds its own database's data.
#[test]
fn databases_differing_only_in_case_are_both_backed_up_apart() {
    let db = mariadb();
    let lower = format!("case_{:08x}", fastrand::u32(..));
    let upper = lower.to_uppercase();
    for (name, n) in [(&lower, 1), (&upper, 2)] {
        db.sql(
            None,
            &format!("CREATE DATABASE `{name}`; CREATE TABLE `{name}`.t (v INT); INSERT INTO `{name}`.t VALUES ({n});"),
        );
    }
    let env = Env::new();
    env.write_local_config(&format!(
        "databases:\n  include: [\"{lower}\", \"{upper}\"]"
    ));
    env.run(&["backup"]).expect(0);
    let list = env.list(&[]);
    assert_eq!(list.backups.len(), 2, "{:?}", list.backups);
    let keys: Vec<String> = list
        .backups
        .iter()
        .map(|r| r.key.clone().unwrap().to_lowercase())
        .collect();
    assert_ne!(
        keys[0], keys[1],
        "one directory on a case-insensitive filesystem"
    );
    for r in &list.backups {
        assert_eq!(r.status, "success");
        let sql = String::from_utf8(env.read_object(r.key.as_deref().unwrap(), "zstd")).unwrap();
        let want = if r.database == lower { "(1)" } else { "(2)" };
        assert!(
            sql.contains(&format!("VALUES\n{want}")),
            "{}: {sql}",
            r.database
        );
    }
    // --db names a database byte-exactly, and the other one is reported as left out, by its
    // exact name (invariant 11).
    let r = env.run(&["--json", "backup", "--db", &upper]);
    r.expect(0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let left_out: Vec<&str> = doc["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["database"].as_str().unwrap())
        .collect();
    assert!(left_out.contains(&lower.as_str()) && !left_out.contains(&upper.as_str()));
    let only = env.list(&["--db", &upper]);
    assert_eq!(only.backups.len(), 2);
    assert!(only.backups.iter().all(|r| r.database == upper));
    for name in [&lower, &upper] {
        db.sql(None, &format!("DROP DATABASE `{name}`"));
    }
}

/// Issue 10, item 2: a legal 64-character non-ASCII name (384 bytes once percent-encoded) gets a
/// shortened, hash-suffixed directory, and the real name is in the index and the manifest.
#[test]
fn a_64_character_non_ascii_name_is_backed_up_under_a_short_key() {
    let db = mariadb();
    let name = format!("{}{:04x}", "ü".repeat(60), fastrand::u16(..));
    db.sql(
        None,
        &format!("CREATE DATABASE `{name}`; CREATE TABLE `{name}`.t (v INT); INSERT INTO `{name}`.t VALUES (7);"),
    );
    let env = Env::new();
    env.write_local_config("");
    env.run(&["backup", "--db", &name]).expect(0);
    let r = &env.list(&["--db", &name]).backups[0];
    assert_eq!(
        (r.status.as_str(), r.database.as_str()),
        ("success", name.as_str())
    );
    let key = r.key.clone().unwrap();
    let dir = key.split('/').nth(1).unwrap();
    assert!(dir.len() <= 128 && dir.contains('~'), "{dir}");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.storage().join(r.manifest_key.as_deref().unwrap())).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["database"], name.as_str());
    let sql = String::from_utf8(env.read_object(&key, "zstd")).unwrap();
    assert!(sql.contains("VALUES\n(7)"), "{sql}");
    db.sql(None, &format!("DROP DATABASE `{name}`"));
}
