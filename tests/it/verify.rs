//! verify, fetch and restore: intact copies pass, damaged ones are caught, restores match.

use serde::Deserialize;

use crate::support::{mariadb, pushgateway, s3, sample, scrape, Env};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyDoc {
    schema_version: u32,
    ok: bool,
    verified: Vec<Verified>,
    errors: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Verified {
    id: String,
    storage: String,
    ok: bool,
    restore_tested: bool,
    restored_tables: Option<u64>,
    #[serde(default)]
    restored_rows: Option<u64>,
    inventory_compared: bool,
    #[serde(default)]
    restore_seconds: Option<f64>,
    scratch_database: Option<String>,
    problem: Option<String>,
    #[serde(default)]
    not_checked: bool,
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

/// Points the config's server at `port` (a closed port, a server that never answers);
/// returns the config as it was, to write back.
fn point_server_at(env: &Env, port: u16) -> String {
    let good = std::fs::read_to_string(env.config()).unwrap();
    std::fs::write(
        env.config(),
        good.replace(
            &format!("port: {}", mariadb().port),
            &format!("port: {port}"),
        ),
    )
    .unwrap();
    good
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
    // A server that does not answer says nothing about the copy: NOT CHECKED, exit 1, and the
    // copy keeps its passed restore test (so `restore latest` still picks it).
    let good = point_server_at(&env, crate::support::free_port());
    let (code, doc) = verify(
        &env,
        &["--latest", "--restore-test", "--storage", "offsite"],
    );
    std::fs::write(env.config(), good).unwrap();
    assert_eq!(code, 1, "{doc:?}");
    assert!(
        doc.verified[0].not_checked && !doc.verified[0].ok,
        "{doc:?}"
    );
    let kept = env.list(&["--storage", "offsite"]).backups.remove(0);
    assert_eq!(kept.verification.as_ref().unwrap()["ok"], true, "{kept:?}");
    let r = env.run(&[
        "restore",
        "latest",
        "--storage",
        "offsite",
        "--to-server",
        "main",
        "--to-database",
        "never_made",
        "--dry-run",
    ]);
    r.expect(0);
    assert!(
        r.stderr.contains(&kept.id) || r.stdout.contains(&kept.id),
        "{}{}",
        r.stdout,
        r.stderr
    );
    // Naming nothing is a usage error.
    env.run(&["verify"]).expect(2);
    env.run(&["verify", "20000101T000000Z_00000000"]).expect(2);
}

/// A signal while a restore test waits on its server says nothing about the copy: the run ends
/// with 130, promptly, and records no verdict (a later `restore latest` still picks the copy).
#[test]
fn a_signal_during_a_restore_test_records_nothing() {
    let (env, _name, _) = setup("verify_sig");
    // A server that takes the connection and never greets: the restore test waits on it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let good = point_server_at(&env, silent.local_addr().unwrap().port());
    let stopped = |args: &[&str]| {
        let child = env.spawn(args);
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let signalled = std::time::Instant::now();
        std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let r = crate::support::Run::from(child.wait_with_output().unwrap());
        // Each step after the signal would wait out the client's 10 s connect timeout.
        assert!(
            signalled.elapsed() < std::time::Duration::from_secs(8),
            "{args:?} waited {:?} after the signal: {}",
            signalled.elapsed(),
            r.stderr
        );
        assert_eq!(r.code, 130, "{args:?}: {}", r.stderr);
    };
    stopped(&["--json", "verify", "--latest", "--restore-test"]);
    stopped(&[
        "restore",
        "latest",
        "--to-server",
        "main",
        "--to-database",
        "never_made",
    ]);
    std::fs::write(env.config(), good).unwrap();
    drop(silent);
    for b in env.list(&[]).backups {
        assert!(b.verification.is_none(), "a verdict was recorded: {b:?}");
    }
}

/// A copy that a prune removes while a verify of several copies is under way is no verdict:
/// the prune took it from the index, and a drill overlapping the prune timer must not report
/// it FAILED.
#[test]
fn a_copy_pruned_during_a_verify_is_not_a_failure() {
    let name = mariadb().create_shop("verify_prune", 50);
    let env = Env::new();
    env.write_config(
        "",
        "storage:\n  local:\n    type: local\n    path: {storage}\nbackup_types:\n  manual:\n    retention: {keep_last: 10}\n  daily:\n    retention: {keep_last: 1}\n",
    );
    let mut ids = Vec::new();
    for t in ["manual", "daily", "daily"] {
        env.run(&["backup", "--db", &name, "--type", t]).expect(0);
        ids.push(env.list(&["--type", t]).backups.remove(0).id);
    }
    // The manual copy, checked first (it is the oldest), waits on a restore test server that
    // never answers, while a prune removes the older daily copy, checked next.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let good = point_server_at(&env, silent.local_addr().unwrap().port());
    let child = env.spawn(&["--json", "verify", &ids[0], &ids[1], "--restore-test"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    std::fs::write(env.config(), &good).unwrap();
    env.run(&["prune"]).expect(0);
    let r = crate::support::Run::from(child.wait_with_output().unwrap());
    drop(silent);
    assert!(
        r.stderr.contains(&ids[1])
            && r.stderr
                .contains("removed from the index while this run checked it"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("FAILED"), "{}", r.stderr);
    let doc: VerifyDoc = serde_json::from_str(&r.stdout).unwrap();
    assert!(doc.verified.iter().all(|v| v.id != ids[1]), "{doc:?}");
    // The manual copy was not checked (its server did not answer): exit 1 for that alone.
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(doc.verified.iter().any(|v| v.id == ids[0] && v.not_checked));
}

/// A prune removes a batch's objects before their records: a verify that finds an object gone
/// while the record is still there and a prune of the server runs waits for the prune to say
/// whether it removed the copy, instead of calling it FAILED.
#[test]
fn a_copy_whose_object_a_running_prune_removed_waits_for_its_record() {
    let name = mariadb().create_shop("verify_window", 20);
    let env = Env::new();
    env.write_config(
        "",
        "storage:\n  local:\n    type: local\n    path: {storage}\nbackup_types:\n  daily:\n    retention: {keep_last: 1}\n",
    );
    for _ in 0..2 {
        env.run(&["backup", "--db", &name, "--type", "daily"])
            .expect(0);
    }
    let older = env.list(&["--type", "daily"]).backups.pop().unwrap();
    // Where a running prune stands: the object removed, the record not yet, the job's lock
    // held by a live process of this host.
    std::fs::remove_file(env.storage().join(older.key.as_deref().unwrap())).unwrap();
    let mut holder = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let locks = env.path("locks");
    std::fs::create_dir_all(&locks).unwrap();
    std::fs::write(
        locks.join("job-main-prune.lock"),
        serde_json::json!({
            "pid": holder.id(),
            "host": crate::support::hostname(),
            "started_at": chrono::Utc::now(),
            "command": "prune",
        })
        .to_string(),
    )
    .unwrap();
    let child = env.spawn(&["--json", "verify", &older.id]);
    std::thread::sleep(std::time::Duration::from_millis(1000));
    // The prune goes on and removes the record.
    env.run(&["prune"]).expect(0);
    let r = crate::support::Run::from(child.wait_with_output().unwrap());
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(
        r.stderr
            .contains("removed from the index while this run checked it"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("FAILED"), "{}", r.stderr);
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
    // Never into a local storage: there it could replace a backup's object, here its own.
    let into_store = env.storage().join(rec.key.as_ref().unwrap());
    let r = env.run(&["fetch", &rec.id, "-o", into_store.to_str().unwrap()]);
    r.expect(2);
    assert!(r.stderr.contains("inside storage 'local'"), "{}", r.stderr);
    assert_eq!(std::fs::read(&into_store).unwrap(), stored);
    // Nor through a link outside it that names a file inside it.
    let link = env.path("innocent.sql.zst");
    std::os::unix::fs::symlink(&into_store, &link).unwrap();
    let r = env.run(&["fetch", &rec.id, "-o", link.to_str().unwrap()]);
    r.expect(2);
    assert!(r.stderr.contains("inside storage 'local'"), "{}", r.stderr);
    assert_eq!(std::fs::read(&into_store).unwrap(), stored);
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
        r.stderr.contains("already holds") && r.stderr.contains("--force"),
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
    // A database with no table but a routine is not empty: its code would be replaced.
    let code_only = db.create_db("code_only");
    db.sql(
        Some(&code_only),
        "CREATE PROCEDURE precious() SELECT 'production code'",
    );
    let r = env.run(&[
        "restore",
        &rec.id,
        "--to-server",
        "main",
        "--to-database",
        &code_only,
    ]);
    r.expect(2);
    assert!(
        r.stderr
            .contains("already holds 1 tables, views, routines or events"),
        "{}",
        r.stderr
    );
    assert_eq!(
        db.sql(
            None,
            &format!(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{code_only}'"
            )
        )
        .trim(),
        "0"
    );
    env.run(&["restore", &rec.id, "--to-server", "nope"])
        .expect(2);
}

/// The pushed value of a restore-test metric of `db`.
fn restore_metric(instance: &str, name: &str, db: &str) -> Option<f64> {
    sample(&scrape(instance), name, &[("database", db)])
}

#[test]
fn restore_drills_compare_the_dumped_inventory_and_walk_the_store() {
    let db = mariadb();
    let name = db.create_shop("drill", 300);
    // Every kind the inventory names, and engines besides InnoDB.
    db.sql(
        Some(&name),
        "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT) ENGINE=MyISAM;
         INSERT INTO notes VALUES (1, 'it''s (a) note; with \\\\ and ),( inside'), (2, NULL), (3, '');
         CREATE TABLE audit (id INT) ENGINE=Aria;
         CREATE TABLE nothing (id INT) ENGINE=InnoDB;
         CREATE PROCEDURE touch_notes() UPDATE notes SET body = body;
         CREATE FUNCTION answer() RETURNS INT DETERMINISTIC RETURN 42;
         CREATE TRIGGER notes_audit AFTER INSERT ON notes FOR EACH ROW INSERT INTO audit VALUES (NEW.id);
         CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM audit;
         CREATE SEQUENCE ticket_seq;",
    );
    let env = Env::new();
    let instance = format!("it-{:08x}", fastrand::u32(..));
    env.write_config(
        "",
        &format!(
            "storage:\n  local:\n    type: local\n    path: {{storage}}\nbackup_types:\n  daily:\n    retention:\n      keep_last: 5\n    restore_test_within: 8d\nmetrics:\n  pushgateway: {}\n  instance: {instance}\n",
            pushgateway()
        ),
    );
    env.run(&["backup", "--type", "daily", "--db", &name])
        .expect(0);
    env.run(&["backup", "--type", "daily", "--db", &name])
        .expect(0);
    let list = env.list(&[]);
    let (newer, older) = (&list.backups[0], &list.backups[1]);
    // Never restore-tested: the window makes the alert's series say "never" (0).
    env.run(&["verify", "--latest"]).expect(0);
    assert_eq!(
        restore_metric(
            &instance,
            "sqlguard_restore_test_last_success_timestamp_seconds",
            &name
        ),
        Some(0.0)
    );

    // The manifest holds the inventory, counted from the stream: rows exactly as the server
    // has them, each engine, each kind of object.
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.storage().join(older.manifest_key.as_ref().unwrap())).unwrap(),
    )
    .unwrap();
    let inv = &manifest["inventory"];
    let tables = inv["tables"].as_array().unwrap();
    for t in tables {
        let table = t["name"].as_str().unwrap();
        let count = db.sql(Some(&name), &format!("SELECT COUNT(*) FROM `{table}`"));
        assert_eq!(
            t["rows"].as_u64().unwrap().to_string(),
            count.trim(),
            "rows of {table}"
        );
    }
    let engine = |t: &str| {
        tables.iter().find(|x| x["name"] == t).unwrap()["engine"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        (engine("notes"), engine("audit"), engine("nothing")),
        ("MyISAM".into(), "Aria".into(), "InnoDB".into())
    );
    // As many of each kind as the server says, and the ones made here by name.
    let count = |sql: &str| {
        db.sql(None, &sql.replace("{db}", &name))
            .trim()
            .parse::<usize>()
            .unwrap()
    };
    let names = |k: &str| {
        inv[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names("views").len(),
        count("SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = '{db}'")
    );
    assert_eq!(
        names("triggers").len(),
        count("SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '{db}'")
    );
    assert_eq!(
        inv["routines"].as_array().unwrap().len(),
        count("SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '{db}'")
    );
    assert!(
        names("triggers").contains(&"notes_audit".to_string()),
        "{inv}"
    );
    assert_eq!(
        names("events").len(),
        count("SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '{db}'")
    );
    assert!(names("events").contains(&"nightly".to_string()), "{inv}");
    assert!(
        names("sequences").contains(&"ticket_seq".to_string()),
        "{inv}"
    );
    let total: u64 = tables.iter().map(|t| t["rows"].as_u64().unwrap()).sum();

    // --sample 1: the least recently verified copy first: --latest verified the newer only, so
    // the older (never verified) goes first.
    let (code, doc) = verify(&env, &["--sample", "1", "--restore-test"]);
    assert_eq!(code, 0, "{doc:?}");
    assert_eq!(doc.verified.len(), 1);
    assert_eq!(doc.verified[0].id, older.id);
    assert_eq!(doc.verified[0].restored_rows, Some(total));
    assert!(doc.verified[0].inventory_compared);
    assert!(doc.verified[0].restore_seconds.unwrap() > 0.0);
    let (_, doc) = verify(&env, &["--sample", "1"]);
    assert_eq!(doc.verified[0].id, newer.id, "then the other one");
    let (_, doc) = verify(&env, &["--sample", "5"]);
    assert_eq!(
        doc.verified.len(),
        2,
        "--sample never repeats a copy within a run"
    );
    // The last restore test is kept when later verifications do not restore.
    let after = env.list(&[]);
    let kept = after.backups.iter().find(|b| b.id == older.id).unwrap();
    assert_eq!(
        kept.verification.as_ref().unwrap()["restore_test"]["ok"],
        true,
        "{kept:?}"
    );
    assert_eq!(
        restore_metric(&instance, "sqlguard_restore_test_last_status", &name),
        Some(1.0)
    );
    assert!(
        restore_metric(
            &instance,
            "sqlguard_restore_test_last_duration_seconds",
            &name
        )
        .unwrap()
            > 0.0
    );
    assert!(
        restore_metric(
            &instance,
            "sqlguard_restore_test_last_success_timestamp_seconds",
            &name
        )
        .unwrap()
            > 1.0e9
    );
    assert_eq!(
        sample(
            &scrape(&instance),
            "sqlguard_restore_test_window_seconds",
            &[("type", "daily")]
        ),
        Some(8.0 * 86400.0)
    );
    let report = env.run(&["report", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&report.stdout).unwrap();
    let row = &report["databases"][0];
    assert_eq!(row["last_restore_test"]["ok"], true, "{row}");
    assert!(row["last_restore_test_passed_at"].is_string(), "{row}");

    // A restore that does not give back what was dumped fails, naming what differs: here the
    // manifest says one more row than the object holds.
    let path = env.storage().join(newer.manifest_key.as_ref().unwrap());
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let t = m["inventory"]["tables"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|t| t["name"] == "notes")
        .unwrap();
    t["rows"] = serde_json::json!(4);
    m["inventory"]["triggers"] = serde_json::json!(["notes_audit", "gone"]);
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    let (code, doc) = verify(&env, &[&newer.id, "--restore-test"]);
    assert_eq!(code, 1, "{doc:?}");
    let p = doc.verified[0].problem.as_deref().unwrap();
    assert!(
        p.contains("table 'notes': 4 rows dumped, 3 restored")
            && p.contains("trigger 'gone' is missing"),
        "{p}"
    );
    assert_eq!(
        restore_metric(&instance, "sqlguard_restore_test_last_status", &name),
        Some(0.0)
    );
    let listed = env.run(&["list"]);
    assert!(listed.stdout.contains("FAILED"), "{}", listed.stdout);
}

/// A passed restore drill is not pruned away before its window ends: the tested copy stays
/// (the drill floor), and the pushed time of the newest passed restore test survives the next
/// backup and prune, so `SqlguardRestoreTestOverdue` does not fire right after a drill.
#[test]
fn a_passed_drill_survives_the_prune_that_follows_it() {
    let name = mariadb().create_shop("drill_floor", 20);
    let env = Env::new();
    let instance = format!("it-{:08x}", fastrand::u32(..));
    env.write_config(
        "",
        &format!(
            "storage:\n  local:\n    type: local\n    path: {{storage}}\nbackup_types:\n  daily:\n    retention: {{keep_last: 1}}\n    restore_test_within: 8d\nmetrics:\n  pushgateway: {}\n  instance: {instance}\n",
            pushgateway()
        ),
    );
    env.run(&["backup", "--db", &name, "--type", "daily"])
        .expect(0);
    let tested = env.list(&[]).backups.remove(0).id;
    env.run(&["verify", "--latest", "--db", &name, "--restore-test"])
        .expect(0);
    env.run(&["backup", "--db", &name, "--type", "daily"])
        .expect(0);
    let r = env.run(&["-v", "prune"]);
    r.expect(0);
    assert!(
        env.list(&[]).backups.iter().any(|b| b.id == tested),
        "the tested copy was pruned: {}",
        r.stderr
    );
    env.run(&["backup", "--db", &name, "--type", "daily"])
        .expect(0);
    let passed = restore_metric(
        &instance,
        "sqlguard_restore_test_last_success_timestamp_seconds",
        &name,
    );
    assert!(passed.is_some_and(|t| t > 0.0), "{passed:?}");
}

/// A verdict the index cannot hold (its disk is full) is lost to every later reader: the run
/// fails, says so, and the copy keeps its last verification; with room again, it is recorded.
#[test]
fn a_verdict_the_index_cannot_record_fails_the_run() {
    let name = mariadb().create_shop("unrecorded", 20);
    let env = Env::new();
    let disk = crate::failures::SmallDisk::mount(env.path("small"));
    env.write_config(
        "",
        &format!(
            "storage:\n  local:\n    type: local\n    path: {}\n",
            disk.path.join("backups").display()
        ),
    );
    env.run(&["backup", "--db", &name]).expect(0);
    // Fill what is left of the disk.
    let filler = disk.path.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let block = vec![0u8; 64 << 10];
    while std::io::Write::write_all(&mut f, &block).is_ok() {}
    drop(f);
    let r = env.run(&["verify", "--latest"]);
    r.expect(1);
    assert!(
        r.stderr
            .contains("the verification could not be recorded in the index"),
        "{}",
        r.stderr
    );
    assert!(env.list(&[]).backups[0].verification.is_none());
    std::fs::remove_file(&filler).unwrap();
    env.run(&["verify", "--latest"]).expect(0);
    let v = env.list(&[]).backups.remove(0).verification.unwrap();
    assert_eq!(v["ok"], true, "{v}");
}

/// A restore never lets the dump's events loose where they do not belong: a restore test
/// creates them disabled in its scratch database (an enabled event that writes to another
/// database would reach live data during a drill), and so does `restore --disable-events`;
/// a plain restore keeps them as they were dumped.
#[test]
fn a_restore_test_never_runs_the_dumps_events() {
    let db = mariadb();
    let name = db.create_db("events_rt");
    let sink = db.create_db("events_sink");
    db.sql(None, "SET GLOBAL event_scheduler = ON");
    db.sql(
        Some(&name),
        &format!(
            "CREATE TABLE big (id INT PRIMARY KEY, pad CHAR(100)) SELECT seq AS id, 'x' AS pad FROM seq_1_to_20000;
             CREATE TABLE `{sink}`.log (db VARCHAR(100));
             CREATE EVENT tick ON SCHEDULE EVERY 1 SECOND DO INSERT INTO `{sink}`.log VALUES (DATABASE());"
        ),
    );
    let env = Env::new();
    env.write_local_config("");
    env.run(&["backup", "--db", &name]).expect(0);
    // The source's own event has done its work: it stops now, and only a copy's would write.
    db.sql(Some(&name), "ALTER EVENT tick DISABLE");
    let (code, doc) = verify(&env, &["--latest", "--db", &name, "--restore-test"]);
    assert_eq!(code, 0, "{doc:?}");
    assert!(
        doc.verified[0].restore_tested && doc.errors.is_empty(),
        "{doc:?}"
    );
    let copies = format!("SELECT COUNT(*) FROM `{sink}`.log WHERE db <> '{name}'");
    let status = |database: &str| {
        db.sql(
            None,
            &format!(
                "SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '{database}'"
            ),
        )
        .trim()
        .to_string()
    };
    for (flag, want) in [(Some("--disable-events"), "DISABLED"), (None, "ENABLED")] {
        let copy = format!("{name}_copy{}", if flag.is_some() { "_off" } else { "_on" });
        let mut args = vec!["restore", "latest", "--db", &name, "--to-server", "main"];
        args.extend(["--to-database", &copy, "--yes"]);
        args.extend(flag);
        env.run(&args).expect(0);
        assert_eq!(status(&copy), want, "{flag:?}");
        db.sql(None, &format!("ALTER EVENT `{copy}`.tick DISABLE"));
        db.sql(None, &format!("DROP DATABASE `{copy}`"));
    }
    // The enabled copy of the plain restore may have written; the drill's never did.
    let from_drills = db.sql(
        None,
        &format!("SELECT COUNT(*) FROM `{sink}`.log WHERE db LIKE 'sqlguard\\_verify\\_%'"),
    );
    assert_eq!(from_drills.trim(), "0", "{copies}");
    db.sql(
        None,
        &format!("DROP DATABASE `{name}`; DROP DATABASE `{sink}`"),
    );
}

/// A restore test that the server's account, not the dump, stopped (here: no TRIGGER privilege
/// for the dump's trigger) says nothing about the copy: NOT CHECKED, exit 1, nothing recorded,
/// and `restore latest` still picks the copy. A dump that the server refuses for what it says
/// (a syntax error) is still recorded as failed.
#[test]
fn a_restore_test_stopped_by_the_account_records_nothing() {
    let db = mariadb();
    let name = db.create_db("rt_priv");
    db.sql(
        Some(&name),
        "CREATE TABLE t (id INT PRIMARY KEY, n INT); CREATE TABLE audit (n INT);
         CREATE TRIGGER t_ai AFTER INSERT ON t FOR EACH ROW INSERT INTO audit VALUES (NEW.n);
         INSERT INTO t VALUES (1, 1);",
    );
    let user = format!("rt_{:06x}", fastrand::u32(..0xffffff));
    db.sql(
        None,
        &format!(
            "CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY 'pw{user}';
             GRANT CREATE, DROP, ALTER, INDEX, INSERT, SELECT, REFERENCES, CREATE VIEW, SHOW VIEW,
               CREATE ROUTINE, ALTER ROUTINE, EVENT, LOCK TABLES, SET USER, SUPER
               ON *.* TO '{user}'@'127.0.0.1';"
        ),
    );
    let env = Env::new();
    std::fs::write(env.path("rtpw"), format!("pw{user}\n")).unwrap();
    env.write_local_config(&format!(
        "restore:\n  user: {user}\n  password_file: {}",
        env.path("rtpw").display()
    ));
    env.run(&["backup", "--db", &name]).expect(0);
    let (code, doc) = verify(&env, &["--latest", "--db", &name, "--restore-test"]);
    db.sql(None, &format!("DROP USER '{user}'@'127.0.0.1'"));
    assert_eq!(code, 1, "{doc:?}");
    let v = &doc.verified[0];
    assert!(v.not_checked && !v.ok, "{doc:?}");
    assert!(
        v.problem.as_deref().is_some_and(|p| p.contains("TRIGGER")),
        "{doc:?}"
    );
    let rec = env.list(&["--db", &name]).backups.remove(0);
    assert!(rec.verification.is_none(), "{rec:?}");
    db.sql(None, &format!("DROP DATABASE `{name}`"));
}
