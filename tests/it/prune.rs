//! Prune on real storages: exactly the planned objects go, nothing else is touched, the index
//! matches the storage afterwards, and an interrupted prune is finished by the next one.

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::support::{mariadb, s3, Env, Run};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PruneDoc {
    schema_version: u32,
    ok: bool,
    dry_run: bool,
    entries: Vec<Entry>,
    orphans: Vec<OrphanDoc>,
    #[allow(dead_code)]
    unrecorded: Vec<serde_json::Value>,
    errors: Vec<String>,
    interrupted: bool,
    removed_entries: usize,
    removed_bytes: u64,
    kept_entries: usize,
    failed_entries: usize,
}

#[derive(Debug, Deserialize)]
struct Entry {
    id: String,
    storage: String,
    key: Option<String>,
    manifest_key: Option<String>,
    compressed_bytes: u64,
    decision: String,
    reason: String,
    done: bool,
    prune_error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct OrphanDoc {
    storage: String,
    kind: String,
    key: String,
    done: bool,
}

fn prune(env: &Env, args: &[&str]) -> (Run, PruneDoc) {
    let mut a = vec!["--json", "prune"];
    a.extend_from_slice(args);
    let r = env.run(&a);
    let doc: PruneDoc = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", r.stdout, r.stderr));
    assert_eq!(doc.schema_version, 1);
    assert_eq!(doc.ok, r.code == 0, "{}", r.stderr);
    (r, doc)
}

/// Where the test's objects live: a local directory or a bucket of the shared S3 server.
enum Place {
    Local,
    S3(String),
}

impl Place {
    fn storage_yaml(&self) -> String {
        match self {
            Place::Local => "  store:\n    type: local\n    path: {storage}\n".to_string(),
            Place::S3(bucket) => s3().storage_yaml("store", bucket),
        }
    }

    fn files(&self, env: &Env) -> BTreeSet<String> {
        match self {
            Place::Local => env.stored_files().into_iter().collect(),
            Place::S3(bucket) => s3().keys(bucket).into_iter().collect(),
        }
    }

    fn write(&self, env: &Env, key: &str, data: &[u8]) {
        let path = match self {
            Place::Local => env.storage().join(key),
            Place::S3(bucket) => s3().object_path(bucket, key),
        };
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }

    fn remove(&self, env: &Env, key: &str) {
        let path = match self {
            Place::Local => env.storage().join(key),
            Place::S3(bucket) => s3().object_path(bucket, key),
        };
        std::fs::remove_file(path).unwrap();
    }
}

fn setup(place: &Place, extra: &str) -> (Env, String) {
    let db = mariadb();
    let name = db.create_shop("prune", 50);
    let env = Env::new();
    env.write_config(
        "",
        &format!(
            "storage:\n{}backup_types:\n  daily:\n    retention: {{keep_last: 2}}\n  manual:\n    retention: {{keep_last: 1}}\n{extra}",
            place.storage_yaml()
        ),
    );
    (env, name)
}

/// Every successful record's object and manifest exist, and every backup object under the
/// server's prefix has a record.
fn assert_index_matches_storage(env: &Env, place: &Place) {
    let list = env.list(&[]);
    let files = place.files(env);
    let mut owned = BTreeSet::new();
    for r in list.backups.iter().filter(|r| r.status == "success") {
        for k in [r.key.clone().unwrap(), r.manifest_key.clone().unwrap()] {
            assert!(files.contains(&k), "index names {k}, which is gone");
            owned.insert(k);
        }
    }
    for f in files
        .iter()
        .filter(|f| f.starts_with("main/") && (f.contains(".sql") || f.ends_with(".manifest.json")))
    {
        assert!(owned.contains(f), "{f} is stored but not in the index");
    }
}

fn exactly_the_planned_objects_go(place: Place) {
    let (env, name) = setup(&place, "");
    for _ in 0..4 {
        env.run(&["backup", "--type", "daily", "--db", &name])
            .expect(0);
    }
    env.run(&["backup", "--db", &name]).expect(0);
    // Things prune must never touch: a file beside the backups, one at the root, another server.
    place.write(
        &env,
        &format!("main/{name}/daily/NOTES.txt"),
        b"operator notes",
    );
    place.write(&env, "README", b"hands off");
    place.write(
        &env,
        "other-server/db/daily/20200101T000000Z_00000000.sql.zst",
        b"not ours",
    );
    let before = place.files(&env);

    let (r, plan) = prune(&env, &["--dry-run"]);
    r.expect(0);
    assert!(plan.dry_run);
    assert_eq!(place.files(&env), before, "dry run changed the storage");
    let planned: Vec<&Entry> = plan
        .entries
        .iter()
        .filter(|e| e.decision == "remove")
        .collect();
    assert_eq!(planned.len(), 2, "{:?}", plan.entries);
    assert_eq!(plan.removed_entries, 2);
    assert_eq!(plan.kept_entries, 3);
    assert_eq!(plan.failed_entries, 0);
    assert!(planned
        .iter()
        .all(|e| e.reason.contains("beyond keep_last 2") && !e.done));
    assert_eq!(
        plan.removed_bytes,
        planned.iter().map(|e| e.compressed_bytes).sum::<u64>()
    );

    let (r, done) = prune(&env, &[]);
    r.expect(0);
    assert!(done.errors.is_empty() && !done.interrupted);
    let removed: Vec<&Entry> = done
        .entries
        .iter()
        .filter(|e| e.decision == "remove")
        .collect();
    let ids = |v: &[&Entry]| v.iter().map(|e| e.id.clone()).collect::<BTreeSet<_>>();
    assert_eq!(
        ids(&removed),
        ids(&planned),
        "prune did something else than the plan"
    );
    assert!(removed
        .iter()
        .all(|e| e.done && e.prune_error.is_none() && e.storage == "store"));
    let mut expected = before.clone();
    for e in &removed {
        expected.remove(e.key.as_ref().unwrap());
        expected.remove(e.manifest_key.as_ref().unwrap());
    }
    let after = place.files(&env);
    // The index itself is rewritten, not removed; everything else is exactly as before.
    assert_eq!(after, expected);
    assert_index_matches_storage(&env, &place);
    assert_eq!(env.list(&[]).backups.len(), 3);
    // A second prune has nothing to do.
    let (_, again) = prune(&env, &[]);
    assert_eq!(again.removed_entries, 0);
}

#[test]
fn local_prune_removes_exactly_the_planned_objects() {
    exactly_the_planned_objects_go(Place::Local);
}

#[test]
fn s3_prune_removes_exactly_the_planned_objects() {
    exactly_the_planned_objects_go(Place::S3(s3().bucket("prune")));
}

fn an_interrupted_prune_is_finished_by_the_next(place: Place) {
    let (env, name) = setup(&place, "");
    for _ in 0..5 {
        env.run(&["backup", "--type", "daily", "--db", &name])
            .expect(0);
    }
    let (_, plan) = prune(&env, &["--dry-run"]);
    let planned: Vec<&Entry> = plan
        .entries
        .iter()
        .filter(|e| e.decision == "remove")
        .collect();
    assert_eq!(planned.len(), 3);
    // The state a prune killed between deletes leaves: some objects gone, the index unchanged.
    place.remove(&env, planned[0].key.as_ref().unwrap());
    place.remove(&env, planned[0].manifest_key.as_ref().unwrap());
    place.remove(&env, planned[1].key.as_ref().unwrap());
    assert_eq!(env.list(&[]).backups.len(), 5, "list must still work");
    let (r, done) = prune(&env, &[]);
    r.expect(0);
    assert_eq!(done.removed_entries, 3, "{:?}", done.entries);
    assert_index_matches_storage(&env, &place);
    assert_eq!(env.list(&[]).backups.len(), 2);
}

#[test]
fn local_interrupted_prune_is_finished_by_the_next() {
    an_interrupted_prune_is_finished_by_the_next(Place::Local);
}

#[test]
fn s3_interrupted_prune_is_finished_by_the_next() {
    an_interrupted_prune_is_finished_by_the_next(Place::S3(s3().bucket("prune-kill")));
}

/// A kept copy whose object was deleted behind the index (by hand, by a lifecycle rule), or cut
/// short, stands in for nothing: the older copies keep its place, and nothing is removed on its
/// word.
fn a_kept_copy_whose_object_is_gone_keeps_no_place(place: Place) {
    let (env, name) = setup(&place, "");
    for _ in 0..5 {
        env.run(&["backup", "--type", "daily", "--db", &name])
            .expect(0);
    }
    // Oldest first, as the policy orders them.
    let mut backups = env.list(&[]).backups;
    let at = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap();
    backups.sort_by(|a, b| (at(&a.started_at), &a.id).cmp(&(at(&b.started_at), &b.id)));
    let mut ids: Vec<(String, String)> = backups
        .iter()
        .map(|r| (r.id.clone(), r.key.clone().unwrap()))
        .collect();
    let (newest, newest_key) = ids.pop().unwrap();
    place.remove(&env, &newest_key);
    let (cut, cut_key) = ids.pop().unwrap();
    place.write(&env, &cut_key, b"cut short");
    for args in [&["--dry-run"][..], &[]] {
        let (r, doc) = prune(&env, args);
        r.expect(0);
        assert!(
            r.stderr.contains(&format!("backup {newest}"))
                && r.stderr.contains("is not on the storage"),
            "{}",
            r.stderr
        );
        let decision = |id: &str| {
            let e = doc.entries.iter().find(|e| e.id == id).unwrap();
            (e.decision.clone(), e.reason.clone())
        };
        let (d, why) = decision(&newest);
        assert_eq!(d, "keep");
        assert!(why.contains("not on the storage"), "{why}");
        let (d, why) = decision(&cut);
        assert_eq!(d, "keep");
        assert!(why.contains("not at the size the index says"), "{why}");
        assert!(
            r.stderr.contains(&format!("backup {cut}")) && r.stderr.contains("has 9 bytes"),
            "{}",
            r.stderr
        );
        // keep_last 2: the two newest copies that are there stay, the oldest goes.
        assert_eq!(decision(&ids[2].0).0, "keep", "{:?}", doc.entries);
        assert_eq!(decision(&ids[1].0).0, "keep", "{:?}", doc.entries);
        assert_eq!(decision(&ids[0].0).0, "remove", "{:?}", doc.entries);
    }
    let left = place.files(&env);
    for (id, key) in &ids[1..] {
        assert!(left.contains(key), "{id} was removed: {left:?}");
    }
    assert!(!left.contains(&ids[0].1));
}

#[test]
fn local_kept_copy_whose_object_is_gone_keeps_no_place() {
    a_kept_copy_whose_object_is_gone_keeps_no_place(Place::Local);
}

#[test]
fn s3_kept_copy_whose_object_is_gone_keeps_no_place() {
    a_kept_copy_whose_object_is_gone_keeps_no_place(Place::S3(s3().bucket("prune-gone")));
}

#[test]
fn orphaned_temp_files_are_removed_only_when_old_and_ours() {
    let place = Place::Local;
    let (env, name) = setup(&place, "");
    env.run(&["backup", "--type", "daily", "--db", &name])
        .expect(0);
    let dir = format!("main/{name}/daily");
    let old = format!("{dir}/.20200101T000000Z_dead0000.sql.zst.ab3c0f12.tmp");
    let fresh = format!("{dir}/.20261128T000000Z_live0000.sql.zst.9e8d7c6b.tmp");
    let foreign = format!("{dir}/.keep");
    // Hidden files that look like temp names but are not sqlguard's, however old.
    let alike = [format!("{dir}/.my.notes.tmp"), "main/.x.y.tmp".to_string()];
    for k in [&old, &fresh, &foreign].into_iter().chain(&alike) {
        place.write(&env, k, b"partial");
    }
    for k in [&old].into_iter().chain(&alike) {
        let touched = std::process::Command::new("touch")
            .args(["-d", "2 days ago"])
            .arg(env.storage().join(k))
            .status()
            .unwrap();
        assert!(touched.success());
    }
    let (_, dry) = prune(&env, &["--dry-run"]);
    assert_eq!(dry.orphans.len(), 1, "{:?}", dry.orphans);
    assert!(
        env.storage().join(&old).exists(),
        "dry run removed an orphan"
    );
    let (r, done) = prune(&env, &[]);
    r.expect(0);
    assert_eq!(done.orphans.len(), 1);
    let o = &done.orphans[0];
    assert_eq!(
        (o.kind.as_str(), o.key.as_str(), o.storage.as_str(), o.done),
        ("temp_file", old.as_str(), "store", true)
    );
    assert!(!env.storage().join(&old).exists());
    assert!(
        env.storage().join(&fresh).exists(),
        "a fresh temp file may belong to a running backup"
    );
    assert!(env.storage().join(&foreign).exists(), "not sqlguard's file");
    for k in &alike {
        assert!(env.storage().join(k).exists(), "not sqlguard's file: {k}");
    }
}

#[test]
fn prune_after_backup_keeps_the_policy_with_one_timer() {
    let (env, name) = setup(&Place::Local, "prune_after_backup: true\n");
    for _ in 0..4 {
        let r = env.run(&["backup", "--type", "daily", "--db", &name]);
        r.expect(0);
    }
    let list = env.list(&["--type", "daily"]);
    assert_eq!(list.backups.len(), 2);
    assert_index_matches_storage(&env, &Place::Local);
    let r = env.run(&["--json", "backup", "--type", "daily", "--db", &name]);
    r.expect(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        v["prune"]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["decision"] == "remove")
            .count(),
        1
    );
    // A prune already running does the pruning: the backup stands (exit 0, a warning), not
    // "another run holds the lock" (exit 3).
    let lock = env.path("locks").join("job-main-prune.lock");
    let mut holder = std::process::Command::new("flock")
        .args(["--no-fork", lock.to_str().unwrap(), "sleep", "30"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !lock.exists() {
        assert!(std::time::Instant::now() < deadline, "flock did not start");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    let r = env.run(&["backup", "--type", "daily", "--db", &name]);
    let _ = holder.kill();
    let _ = holder.wait();
    r.expect(0);
    assert!(
        r.stderr.contains("prune_after_backup skipped"),
        "{}",
        r.stderr
    );
}

#[test]
fn type_filter_only_removes_that_type_and_unknown_names_exit_2() {
    let (env, name) = setup(&Place::Local, "");
    for _ in 0..3 {
        env.run(&["backup", "--type", "daily", "--db", &name])
            .expect(0);
        env.run(&["backup", "--db", &name]).expect(0);
    }
    let (_, doc) = prune(&env, &["--type", "manual"]);
    assert_eq!(doc.removed_entries, 2);
    assert_eq!(env.list(&["--type", "daily"]).backups.len(), 3);
    assert_eq!(env.list(&["--type", "manual"]).backups.len(), 1);
    env.run(&["prune", "--type", "yearly"]).expect(2);
    env.run(&["prune", "--storage", "nope"]).expect(2);
    // The type dropped from the config: its backups stay, and prune says so once, with the fix.
    env.write_config(
        "",
        &format!(
            "storage:\n{}backup_types:\n  daily:\n    retention: {{keep_last: 1}}\n",
            Place::Local.storage_yaml()
        ),
    );
    let (r, doc) = prune(&env, &[]);
    assert_eq!((r.code, doc.removed_entries), (0, 2), "{}", r.stderr);
    let said = "1 backup of server 'main' is of type 'manual', which the config no longer names, so no retention applies and prune keeps it for ever: add `backup_types.manual` back";
    assert_eq!(r.stderr.matches(said).count(), 1, "{}", r.stderr);
    assert_eq!(env.list(&["--type", "manual"]).backups.len(), 1);
}

#[test]
fn incomplete_uploads_of_killed_runs_are_aborted_by_prune() {
    use sqlguard::storage::Storage;
    use std::io::Write;
    // moto, because s3s-fs cannot list in-progress uploads.
    let endpoint = crate::support::moto();
    let bucket = format!("orphans-{:08x}", fastrand::u32(..));
    let created = std::process::Command::new("curl")
        .args(["-sf", "-X", "PUT", &format!("{endpoint}/{bucket}")])
        .status()
        .unwrap();
    assert!(created.success());
    let settings = sqlguard::config::S3Settings {
        endpoint: endpoint.to_string(),
        region: "us-east-1".into(),
        bucket: bucket.clone(),
        prefix: String::new(),
        path_style: true,
        access_key_id: "test".into(),
        secret_access_key: sqlguard::secret::Secret::new("test"),
        ca_file: None,
        storage_class: None,
        sse: None,
        sse_kms_key_id: None,
    };
    let locks = tempfile::tempdir().unwrap();
    let s3 = sqlguard::storage::s3::S3Storage::new(
        "store",
        &settings,
        Default::default(),
        locks.path().into(),
        sqlguard::ui::Ui::silent(),
    )
    .unwrap();
    // A run killed mid-upload: one part sent, then the process is gone (no abort, no drop).
    let mut w = s3
        .put_stream("main/shop/daily/20261128T000000Z_deadbeef.sql.zst", None)
        .unwrap();
    w.write_all(&vec![7u8; 9 << 20]).unwrap();
    std::mem::forget(w);
    let future = chrono::Utc::now() + chrono::Duration::hours(1);
    assert_eq!(
        s3.orphans("main/", future).unwrap().len(),
        1,
        "the upload is not open"
    );

    let env = Env::new();
    env.write_config(
        "",
        &format!(
            "storage:\n  store:\n    type: s3\n    endpoint: {endpoint}\n    bucket: {bucket}\n    path_style: true\n    access_key_id: test\n    secret_access_key: test\norphan_min_age: 2s\n"
        ),
    );
    // moto reports a fixed Initiated time (2010) for every upload, so the age cut-off cannot be
    // seen here; the local temp-file test and the storage behaviour suite cover it.
    // While a daily backup of `main` runs on this host, its upload is left alone.
    let lock = env.path("locks").join("job-main-backup-daily.lock");
    std::fs::create_dir_all(env.path("locks")).unwrap();
    let me = serde_json::json!({
        "pid": std::process::id(),
        "host": crate::support::hostname(),
        "started_at": chrono::Utc::now(),
        "command": "backup --type daily",
    });
    std::fs::write(&lock, me.to_string()).unwrap();
    let (r, left) = prune(&env, &[]);
    r.expect(0);
    assert!(left.orphans.is_empty(), "{:?}", left.orphans);
    assert!(
        r.stderr.contains("a backup of its type is running"),
        "{}",
        r.stderr
    );
    assert_eq!(s3.orphans("main/", future).unwrap().len(), 1);
    // A clean release empties the lock file: the upload is an orphan again.
    std::fs::write(&lock, "").unwrap();
    let (_, dry) = prune(&env, &["--dry-run"]);
    assert_eq!(dry.orphans.len(), 1, "{:?}", dry.orphans);
    assert_eq!(dry.orphans[0].kind, "upload");
    assert!(!dry.orphans[0].done);
    let (r, done) = prune(&env, &[]);
    r.expect(0);
    assert!(done.orphans[0].done, "{:?}", done.orphans);
    assert!(
        s3.orphans("main/", future).unwrap().is_empty(),
        "upload still open after prune"
    );
}

/// A database whose index cannot be read is a failure of the prune, and its backups are not
/// reported (nor, once old, removed) as files no record owns: their records are in that index.
#[test]
fn a_damaged_database_index_hides_its_backups_from_no_one() {
    let db = crate::support::mariadb();
    let name = db.create_db("prune_dmg");
    db.sql(Some(&name), "CREATE TABLE t (id INT PRIMARY KEY)");
    let env = crate::support::Env::new();
    env.write_local_config("");
    env.run(&["backup", "--db", &name]).expect(0);
    let month = env
        .stored_files()
        .into_iter()
        .find(|f| f.contains("/index/db/") && f.ends_with(".json"))
        .expect("a month file");
    std::fs::write(env.storage().join(&month), b"{\"damaged").unwrap();
    let r = env.run(&["prune", "--dry-run"]);
    r.expect(1);
    assert!(r.stderr.contains("damaged"), "{}", r.stderr);
    assert!(!r.stderr.contains("not in the index"), "{}", r.stderr);
    db.sql(None, &format!("DROP DATABASE `{name}`"));
}

/// A storage emptied behind its index (a lifecycle rule, a wiped directory): every copy is no
/// copy, found in one pass over the listing; the records the policy would remove anyway go
/// (as a killed prune's leftovers do), the ones it would keep stay as no copy, and the
/// warnings stop after ten copies of a database.
#[test]
fn a_storage_emptied_behind_its_index_keeps_what_it_would_keep_and_says_so_briefly() {
    let db = mariadb();
    let name = db.create_shop("prune_empty", 5);
    let env = Env::new();
    env.write_config(
        "",
        "storage:\n  store:\n    type: local\n    path: {storage}\nbackup_types:\n  daily:\n    retention: {keep_last: 12}\n",
    );
    for _ in 0..14 {
        env.run(&["backup", "--type", "daily", "--db", &name])
            .expect(0);
    }
    for r in env.list(&[]).backups {
        std::fs::remove_file(env.storage().join(r.key.as_ref().unwrap())).unwrap();
    }
    let (r, doc) = prune(&env, &[]);
    r.expect(0);
    assert_eq!(doc.removed_entries, 2, "{:?}", doc.entries);
    assert!(doc
        .entries
        .iter()
        .filter(|e| e.decision == "remove")
        .all(|e| e.reason.contains("its object is already gone")));
    assert_eq!(
        r.stderr.matches("is in the index, but").count(),
        10,
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("more copies of main/"), "{}", r.stderr);
    assert_eq!(env.list(&[]).backups.len(), 12);
}

/// A server that cannot list incomplete uploads (s3s-fs) is said once per run, not once per
/// server pruned (review 31: twice in one dry run).
#[test]
fn an_s3_server_without_upload_listing_is_told_once_per_run() {
    let db = mariadb();
    let name = db.create_shop("uploads", 5);
    let env = Env::new();
    let bucket = s3().bucket("uploads");
    env.write_config(
        "",
        &format!(
            "  other:\n    host: 127.0.0.1\n    port: {}\n    user: root\n    password_file: {}\nstorage:\n{}backup_types:\n  daily:\n    retention: {{keep_last: 2}}\n",
            db.port,
            db.password_file().display(),
            s3().storage_yaml("store", &bucket)
        ),
    );
    env.run(&["backup", "--type", "daily", "--db", &name])
        .expect(0);
    assert_eq!(env.list(&[]).backups.len(), 2);
    let r = env.run(&["prune", "--dry-run"]);
    r.expect(0);
    assert_eq!(
        r.stderr.matches("cannot list incomplete uploads").count(),
        1,
        "{}",
        r.stderr
    );
}
