//! verify, fetch and restore: intact copies pass, damaged ones are caught, restores match.

use serde::Deserialize;

use crate::support::{mariadb, pushgateway, s3, sample, scrape, Env};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyDoc {
    schema_version: u32,
    ok: bool,
    verified: Vec<Verified>,
}

#[derive(Debug, Deserialize)]
struct Verified {
    id: String,
    storage: String,
    ok: bool,
    restore_tested: bool,
    restored_tables: Option<u64>,
    scratch_database: Option<String>,
    problem: Option<String>,
    checked: Checked,
}

#[derive(Debug, Deserialize)]
struct Checked {
    compressed_bytes: u64,
    raw_bytes: u64,
    sha256: String,
}

/// The pushed `sqlguard_verify_last_status` of a database's copy on `storage`.
fn verify_status(instance: &str, db: &str, storage: &str) -> Option<f64> {
    sample(
        &scrape(instance),
        "sqlguard_verify_last_status",
        &[("database", db), ("storage", storage)],
    )
}

fn verify(env: &Env, args: &[&str]) -> (i32, VerifyDoc) {
    let mut a = vec!["--json", "verify"];
    a.extend_from_slice(args);
    let r = env.run(&a);
    let doc: VerifyDoc = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", r.stdout, r.stderr));
    assert_eq!(doc.schema_version, 1);
    (r.code, doc)
}

/// One local and one S3 storage, metrics to the shared Pushgateway.
fn setup(prefix: &str) -> (Env, String, String) {
    let db = mariadb();
    let name = db.create_shop(prefix, 500);
    let env = Env::new();
    let instance = format!("it-{:08x}", fastrand::u32(..));
    let bucket = s3().bucket("verify");
    env.write_config(
        "",
        &format!(
            "storage:\n  local:\n    type: local\n    path: {{storage}}\n{}metrics:\n  pushgateway: {}\n  instance: {instance}\n",
            s3().storage_yaml("offsite", &bucket),
            pushgateway()
        ),
    );
    env.run(&["backup", "--db", &name]).expect(0);
    (env, name, instance)
}

#[test]
fn intact_copies_pass_and_a_damaged_one_is_caught_and_recorded() {
    let (env, name, instance) = setup("verify");
    let (code, doc) = verify(&env, &["--latest"]);
    assert_eq!(code, 0);
    assert!(doc.ok);
    assert_eq!(doc.verified.len(), 2, "one per storage");
    let rec = env.list(&["--storage", "local"]).backups.remove(0);
    for v in &doc.verified {
        assert!(v.ok && v.problem.is_none() && !v.restore_tested);
        assert_eq!(v.checked.compressed_bytes, rec.compressed_bytes);
        assert_eq!(v.checked.raw_bytes, rec.raw_bytes);
        assert_eq!(Some(&v.checked.sha256), rec.sha256.as_ref());
    }
    assert_eq!(rec.verification.as_ref().unwrap()["ok"], true);
    assert_eq!(verify_status(&instance, &name, "local"), Some(1.0));

    // Flip one byte in the middle of the local copy.
    let path = env.storage().join(rec.key.as_ref().unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let (code, doc) = verify(&env, &[&rec.id]);
    assert_eq!(code, 1);
    assert!(!doc.ok);
    let local = doc.verified.iter().find(|v| v.storage == "local").unwrap();
    let offsite = doc
        .verified
        .iter()
        .find(|v| v.storage == "offsite")
        .unwrap();
    assert!(!local.ok && offsite.ok, "{doc:?}");
    let problem = local.problem.as_deref().unwrap();
    assert!(
        problem.contains("SHA-256") && problem.contains("decompression failed"),
        "{problem}"
    );
    assert_eq!(local.id, rec.id);
    let after = env.list(&["--storage", "local"]).backups.remove(0);
    assert_eq!(after.verification.as_ref().unwrap()["ok"], false);
    assert_eq!(verify_status(&instance, &name, "local"), Some(0.0));
    assert_eq!(verify_status(&instance, &name, "offsite"), Some(1.0));

    // A truncated copy (a disk that lost the end) is caught too.
    std::fs::write(&path, &bytes[..mid]).unwrap();
    let (code, doc) = verify(&env, &["--latest", "--storage", "local"]);
    assert_eq!(code, 1);
    let p = doc.verified[0].problem.as_deref().unwrap();
    assert!(p.contains("bytes, the index says"), "{p}");
}

#[test]
fn restore_test_restores_into_a_scratch_database_and_drops_it() {
    let (env, _name, _) = setup("verify_rt");
    // A scratch database a killed restore test left a day ago is swept; a fresh one is not.
    let stale = format!("sqlguard_verify_20200101000000_{:08x}", fastrand::u32(..));
    let fresh = format!(
        "sqlguard_verify_{}_{:08x}",
        chrono::Utc::now().format("%Y%m%d%H%M%S"),
        fastrand::u32(..)
    );
    mariadb().sql(
        None,
        &format!("CREATE DATABASE {stale}; CREATE DATABASE {fresh};"),
    );
    let (code, doc) = verify(
        &env,
        &["--latest", "--restore-test", "--storage", "offsite"],
    );
    assert_eq!(code, 0, "{doc:?}");
    let v = &doc.verified[0];
    assert!(v.ok && v.restore_tested);
    assert_eq!(v.restored_tables, Some(7), "six tables and a view");
    let scratch = v.scratch_database.as_deref().unwrap();
    assert!(scratch.starts_with("sqlguard_verify_"), "{scratch}");
    let left = mariadb().sql(
        None,
        &format!(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{scratch}'"
        ),
    );
    assert_eq!(left.trim(), "0", "scratch database left behind");
    let exists = |n: &str| {
        !mariadb()
            .sql(None, &format!("SHOW DATABASES LIKE '{n}'"))
            .trim()
            .is_empty()
    };
    assert!(!exists(&stale), "a stale scratch database was not swept");
    assert!(exists(&fresh), "a fresh scratch database was swept");
    mariadb().sql(None, &format!("DROP DATABASE {fresh}"));
    // Naming nothing is a usage error.
    env.run(&["verify"]).expect(2);
    env.run(&["verify", "20000101T000000Z_00000000"]).expect(2);
}

#[test]
fn fetch_writes_the_checked_object_or_nothing() {
    let (env, _name, _) = setup("fetch");
    let rec = env.list(&["--storage", "local"]).backups.remove(0);
    let stored = std::fs::read(env.storage().join(rec.key.as_ref().unwrap())).unwrap();
    let out = env.path("copy.sql.zst");
    env.run(&[
        "fetch",
        &rec.id,
        "--storage",
        "offsite",
        "-o",
        out.to_str().unwrap(),
    ])
    .expect(0);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        stored,
        "the S3 copy differs from the local one"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let sql = env.path("copy.sql");
    env.run(&[
        "fetch",
        &rec.id,
        "--decompress",
        "-o",
        sql.to_str().unwrap(),
    ])
    .expect(0);
    assert_eq!(
        std::fs::read(&sql).unwrap(),
        zstd::decode_all(stored.as_slice()).unwrap()
    );
    let raw = env.cmd().args(["fetch", &rec.id]).output().unwrap();
    assert!(raw.status.success());
    assert_eq!(raw.stdout, stored, "fetch to stdout");

    // A corrupt copy is refused and leaves no output file.
    let path = env.storage().join(rec.key.as_ref().unwrap());
    let mut bytes = stored.clone();
    bytes[10] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let bad = env.path("bad.sql.zst");
    let r = env.run(&[
        "fetch",
        &rec.id,
        "--storage",
        "local",
        "-o",
        bad.to_str().unwrap(),
    ]);
    r.expect(1);
    assert!(
        r.stderr.contains("SHA-256") && r.stderr.contains("nothing was written"),
        "{}",
        r.stderr
    );
    assert!(!bad.exists());
    let leftovers: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".sqlguard-fetch")
        })
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn restore_matches_the_source_and_refuses_a_non_empty_target() {
    let (env, name, _) = setup("restore");
    let db = mariadb();
    let rec = env.list(&["--storage", "offsite"]).backups.remove(0);
    let target = format!("{name}_restored");
    env.run(&[
        "restore",
        &rec.id,
        "--to-server",
        "main",
        "--to-database",
        &target,
        "--storage",
        "offsite",
    ])
    .expect(0);
    assert_eq!(db.checksums(&name), db.checksums(&target));
    assert_eq!(db.objects(&name), db.objects(&target));
    let r = env.run(&[
        "restore",
        &rec.id,
        "--to-server",
        "main",
        "--to-database",
        &target,
    ]);
    r.expect(2);
    assert!(
        r.stderr.contains("already has") && r.stderr.contains("--force"),
        "{}",
        r.stderr
    );
    env.run(&[
        "restore",
        &rec.id,
        "--to-server",
        "main",
        "--to-database",
        &target,
        "--force",
    ])
    .expect(0);
    assert_eq!(db.checksums(&name), db.checksums(&target));
    env.run(&["restore", &rec.id, "--to-server", "nope"])
        .expect(2);
}
