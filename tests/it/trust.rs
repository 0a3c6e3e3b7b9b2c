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

/// Rewrites the `key` of every record (and manifest key) of the index at `index` with `f`.
fn tamper_keys(index: &std::path::Path, f: impl Fn(&str) -> String) {
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(index).unwrap()).unwrap();
    for r in doc["backups"].as_array_mut().unwrap() {
        if let Some(k) = r["key"].as_str().map(&f) {
            r["key"] = k.into();
        }
    }
    std::fs::write(index, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
}

/// Issue 10, item 4: a record's key is data, not a path. fetch, verify and restore refuse an
/// absolute key or one with `..` (they read from outside the root before), and prune does not
/// delete through a symbolic link planted inside the root.
#[test]
fn keys_and_links_never_lead_outside_the_storage_root() {
    let db = mariadb();
    let name = db.create_shop("escape", 20);
    let env = Env::new();
    env.write_config(
        "",
        "storage:\n  local:\n    type: local\n    path: {storage}\nbackup_types:\n  manual:\n    retention: {keep_last: 1}\n",
    );
    env.run(&["backup", "--db", &name]).expect(0);
    let first = env.list(&[]).backups[0].clone();
    let outside = env.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let bait = outside.join("bait.sql.zst");
    std::fs::copy(env.storage().join(first.key.as_deref().unwrap()), &bait).unwrap();
    let index = env.db_index(&name);
    for evil in [
        bait.display().to_string(),
        "main/../../outside/bait.sql.zst".into(),
    ] {
        let original = std::fs::read(&index).unwrap();
        tamper_keys(&index, |_| evil.clone());
        for args in [
            vec!["fetch", first.id.as_str(), "-o", "out.sql.zst"],
            vec!["verify", first.id.as_str()],
            vec![
                "restore",
                first.id.as_str(),
                "--to-server",
                "main",
                "--to-database",
                "escape_x",
            ],
        ] {
            let r = env.run(&args);
            assert_eq!(
                r.code, 1,
                "{args:?} with key {evil}: {}{}",
                r.stdout, r.stderr
            );
            // Refused as a key that is not the record's own file, before the storage's own
            // refusal of a key outside its root would come.
            assert!(
                r.stderr.contains("not a file of this backup") || r.stderr.contains("refusing key"),
                "{args:?}: {}",
                r.stderr
            );
        }
        assert!(!env.path("out.sql.zst").exists());
        std::fs::write(&index, original).unwrap();
    }
    assert!(db
        .sql(None, "SHOW DATABASES LIKE 'escape_x'")
        .trim()
        .is_empty());
    // Prune through a planted link: the database directory now points outside.
    env.run(&["backup", "--db", &name]).expect(0);
    let dir = env.storage().join("main").join(&name);
    let moved = env.path("moved");
    std::fs::rename(&dir, &moved).unwrap();
    std::fs::create_dir_all(outside.join("manual")).unwrap();
    let target = outside.join("manual").join(
        std::path::Path::new(first.key.as_deref().unwrap())
            .file_name()
            .unwrap(),
    );
    std::fs::write(&target, b"not sqlguard's").unwrap();
    std::os::unix::fs::symlink(&outside, &dir).unwrap();
    let r = env.run(&["prune"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(std::fs::read(&target).unwrap(), b"not sqlguard's");
    // The record stays: its object was not proven gone.
    assert!(env.list(&[]).backups.iter().any(|r| r.id == first.id));
}

/// A record may only name its own files: an edited index whose record names another
/// database's newest backup, or an index file, as its object or manifest makes prune refuse
/// that record (the other backup and the index stay), and `index rebuild` neither keeps it nor
/// writes a manifest over another backup's object.
#[test]
fn a_record_naming_another_backups_files_deletes_and_overwrites_nothing() {
    let db = mariadb();
    let (a, b) = (db.create_shop("own_a", 5), db.create_shop("own_b", 5));
    let env = Env::new();
    env.write_config(
        "",
        "storage:\n  local:\n    type: local\n    path: {storage}\nbackup_types:\n  manual:\n    retention: {keep_last: 1}\n",
    );
    env.run(&["backup", "--db", &a, "--db", &b]).expect(0);
    let victim = env.list(&["--db", &b]).backups[0].clone();
    let victim_key = victim.key.clone().unwrap();
    let victim_bytes = std::fs::read(env.storage().join(&victim_key)).unwrap();
    let index = env.db_index(&a);
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index).unwrap()).unwrap();
    let original = std::fs::read(&index).unwrap();
    let mut planted = doc["backups"][0].clone();
    planted["id"] = "20200101T000000Z_0badf00d".into();
    planted["key"] = victim_key.clone().into();
    planted["manifest_key"] = "main/index/summary.json".into();
    // A record in a month file that is not its own month's: the file is damaged.
    let mut elsewhere = planted.clone();
    elsewhere["started_at"] = "2020-01-01T00:00:00Z".into();
    doc["backups"].as_array_mut().unwrap().insert(0, elsewhere);
    std::fs::write(&index, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let r = env.run(&["prune"]);
    r.expect(1);
    assert!(
        r.stderr.contains("damaged") && r.stderr.contains("whose place is"),
        "{}",
        r.stderr
    );
    // The same record in its own month (older than the backup it was copied from, by its id).
    let mut doc: serde_json::Value = serde_json::from_slice(&original).unwrap();
    doc["backups"].as_array_mut().unwrap().insert(0, planted);
    std::fs::write(&index, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();

    let r = env.run(&["prune"]);
    r.expect(1);
    assert!(
        r.stderr.contains("refusing to delete") && r.stderr.contains("not a file of backup"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read(env.storage().join(&victim_key)).unwrap(),
        victim_bytes
    );
    assert!(env.storage().join("main/index/summary.json").exists());

    // A manifest key pointing at the other backup's object: rebuild drops the record and
    // writes nothing there.
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index).unwrap()).unwrap();
    for r in doc["backups"].as_array_mut().unwrap() {
        if r["id"] == "20200101T000000Z_0badf00d" {
            r["key"] = doc_key_of_own(r);
            r["manifest_key"] = victim_key.clone().into();
        }
    }
    std::fs::write(&index, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let r = env.run(&["index", "rebuild"]);
    assert!(r.code == 0 || r.code == 1, "{}", r.stderr);
    assert_eq!(
        std::fs::read(env.storage().join(&victim_key)).unwrap(),
        victim_bytes
    );
    assert!(!env
        .list(&[])
        .backups
        .iter()
        .any(|r| r.id == "20200101T000000Z_0badf00d"));
    env.run(&["verify", &victim.id]).expect(0);
}

/// The object key the planted record of the test above would have as its own: the same
/// directory as the record it was copied from, under its own id.
fn doc_key_of_own(r: &serde_json::Value) -> serde_json::Value {
    let key = r["key"].as_str().unwrap_or_default();
    let dir = key.rsplit_once('/').map_or("", |(d, _)| d).to_string();
    let dir = if dir.contains("/manual") {
        dir
    } else {
        String::new()
    };
    format!("{dir}/20200101T000000Z_0badf00d.sql.zst").into()
}

/// Replaces the stored object of `rec` with `sql` compressed by zstd. With `fix_index`, the
/// attacker also rewrites the index (size, SHA-256, raw size), so that only sqlguard's own
/// statement guard and the client's sandbox stand between the SQL and the server.
fn forge(env: &Env, rec: &crate::support::Record, sql: &[u8], fix_index: bool) {
    use std::io::Write;
    let path = env.storage().join(rec.key.as_deref().unwrap());
    let mut z = std::process::Command::new("zstd")
        .args(["-q", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    z.stdin.take().unwrap().write_all(sql).unwrap();
    let out = z.wait_with_output().unwrap();
    std::fs::write(&path, &out.stdout).unwrap();
    if fix_index {
        let index = env.db_index(&rec.database);
        let mut doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&index).unwrap()).unwrap();
        for r in doc["backups"].as_array_mut().unwrap() {
            if r["id"] == rec.id.as_str() {
                r["sha256"] = crate::support::sha256_file(&path).into();
                r["compressed_bytes"] = out.stdout.len().into();
                r["raw_bytes"] = sql.len().into();
            }
        }
        std::fs::write(&index, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    }
}

/// Issue 10, item 3: a replaced object never reaches a database. Restore, restore tests and
/// fetch to stdout prove size and SHA-256 first: the swapped-in `DROP DATABASE victim` (which
/// ran before) is refused before anything is sent, and the victim keeps its tables.
#[test]
fn a_replaced_object_is_refused_before_any_byte_reaches_a_database() {
    let db = mariadb();
    let name = db.create_shop("swap", 20);
    let victim = db.create_shop("victim", 5);
    let before = db.checksums(&victim);
    let env = Env::new();
    env.write_local_config("");
    env.run(&["backup", "--db", &name]).expect(0);
    let rec = env.list(&[]).backups.remove(0);
    forge(
        &env,
        &rec,
        format!("DROP DATABASE `{victim}`;\n-- Dump completed on 2026-11-29\n").as_bytes(),
        false,
    );
    for args in [
        vec![
            "restore",
            rec.id.as_str(),
            "--to-server",
            "main",
            "--to-database",
            "swap_target",
        ],
        vec!["verify", rec.id.as_str(), "--restore-test"],
        vec!["fetch", rec.id.as_str(), "--decompress"],
    ] {
        let r = env.run(&args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("SHA-256"), "{args:?}: {}", r.stderr);
        assert!(
            !r.stdout.contains("DROP DATABASE"),
            "{args:?} wrote unchecked bytes"
        );
    }
    assert_eq!(db.checksums(&victim), before, "the victim was touched");
    assert!(db
        .sql(None, "SHOW DATABASES LIKE 'swap_target'")
        .trim()
        .is_empty());
}

/// Issue 10, item 3: checked bytes are still SQL from a storage. Even with the index rewritten
/// to match, a client command (`\! touch FILE`), a `USE other_db`, a statement on another
/// database or a global setting is refused; the restore fails naming it, the file is not
/// created, the other database keeps its data, and the database the restore created is dropped.
#[test]
fn client_commands_and_statements_outside_the_dump_are_refused() {
    let db = mariadb();
    let name = db.create_shop("hostile", 5);
    let other = db.create_shop("bystander", 5);
    let before = db.checksums(&other);
    let env = Env::new();
    // The client records its arguments: the restore must run it in its sandbox mode.
    let argv = env.path("client-argv");
    crate::support::write_script(
        &env.path("client"),
        &format!("echo \"$@\" >> {}\nexec mariadb \"$@\"", argv.display()),
    );
    env.write_local_config(&format!("client_tool: {}", env.path("client").display()));
    env.run(&["backup", "--db", &name]).expect(0);
    let rec = env.list(&[]).backups.remove(0);
    let plain = env.read_object(rec.key.as_deref().unwrap(), "zstd");
    let marker = env.path("pwned");
    let trailer = b"-- Dump completed on 2026-11-29\n";
    for (evil, why) in [
        (
            format!("\\! touch {}\n", marker.display()),
            "client command",
        ),
        (
            format!("USE `{other}`;\nDROP TABLE customers;\n"),
            "switches to database",
        ),
        (
            format!("DROP TABLE `{other}`.`customers`;\n"),
            "names another database",
        ),
        ("SET GLOBAL max_connections = 1;\n".to_string(), "global"),
        (
            format!("DROP DATABASE `{other}`;\n"),
            "not a statement a database dump holds",
        ),
    ] {
        // Cut after a statement, so that the injected line stands alone.
        let half = &plain[..plain.len() / 2];
        let cut = half.windows(2).rposition(|w| w == b";\n").unwrap() + 2;
        let mut sql = plain[..cut].to_vec();
        sql.extend_from_slice(evil.as_bytes());
        sql.extend_from_slice(trailer);
        forge(&env, &rec, &sql, true);
        let target = format!("hostile_t_{:08x}", fastrand::u32(..));
        let r = env.run(&[
            "restore",
            &rec.id,
            "--to-server",
            "main",
            "--to-database",
            &target,
        ]);
        assert_eq!(r.code, 1, "{why}: {}", r.stderr);
        assert!(
            r.stderr.contains("refused") && r.stderr.contains(why),
            "{why}: {}",
            r.stderr
        );
        assert!(r.stderr.contains("was dropped"), "{why}: {}", r.stderr);
        assert!(db
            .sql(None, &format!("SHOW DATABASES LIKE '{target}'"))
            .trim()
            .is_empty());
        let r = env.run(&["verify", &rec.id, "--restore-test"]);
        assert_eq!(r.code, 1, "{why}: {}", r.stderr);
        assert!(r.stderr.contains("refused"), "{why}: {}", r.stderr);
    }
    assert!(!marker.exists(), "a client command ran");
    let runs = crate::support::read(&argv);
    assert!(
        runs.lines()
            .any(|l| l.contains("--database=hostile_t_") && l.contains("--sandbox")),
        "{runs}"
    );
    assert_eq!(db.checksums(&other), before, "another database was touched");
}

/// The bypasses hostile reviews found in the statement guard, each first shown to be a real
/// attack (through the plain client it changes another database's sequence or table), then
/// appended to a dump whose index is rewritten to match: a restore, single-session and with
/// `--jobs 2`, refuses it before it reaches the server, drops the database it created, and
/// the other database is as it was.
#[test]
fn the_reviews_bypasses_are_refused_by_a_real_restore() {
    let db = mariadb();
    let name = db.create_shop("hostile", 2);
    let victim = db.create_db("victim");
    let reset = || {
        db.sql(
            Some(&victim),
            "DROP TABLE IF EXISTS t, mt; DROP SEQUENCE IF EXISTS s;
             CREATE TABLE t (a text, b bigint); CREATE SEQUENCE s NOCACHE;
             CREATE TABLE mt (a int) ENGINE=MyISAM;",
        );
    };
    let state = || {
        db.sql(
            Some(&victim),
            "SELECT next_not_cached_value FROM s; SELECT COUNT(*), COALESCE(SUM(b), 0) FROM t;
             SELECT COUNT(*) FROM mt;",
        )
    };
    reset();
    let baseline = state();
    let env = Env::new();
    env.write_local_config("");
    env.run(&["backup", "--db", &name]).expect(0);
    let rec = env.list(&[]).backups.remove(0);
    let plain = env.read_object(rec.key.as_deref().unwrap(), "zstd");
    let v = format!("`{victim}`");
    let cases = [
        // A comment's quote read as a string hid a row (c73a45f).
        format!("CREATE TABLE t (a text, b bigint);\nINSERT INTO t VALUES ('a', 1) /* ' */, ('b', NEXTVAL({v}.s)) /* ' */;\n"),
        // The bytes of a multi-byte character are part of a name.
        format!("CREATE TABLE t (a text, b bigint, `\u{e9}INTO` int);\nINSERT INTO t VALUES ('x', \u{e9}INTO || NEXTVAL({v}.s), 1);\n"),
        // ANSI_QUOTES through another mode, and through a variable.
        format!("CREATE TABLE t (`\\` int, b bigint);\nSET sql_mode = 'POSTGRESQL';\nINSERT INTO t VALUES (\"\\\", NEXTVAL({v}.s)) #\"\n;\n"),
        format!("CREATE TABLE t (`\\` int, b bigint);\nSET @m = 'ANSI_QUOTES';\nSET sql_mode = @m;\nINSERT INTO t VALUES (\"\\\", NEXTVAL({v}.s)) #\"\n;\n"),
        // A SET's value split where the server does not split it.
        format!("CREATE TABLE t (a text, b bigint);\nSET @x = 'q\\', sql_mode = \"NO_BACKSLASH_ESCAPES\", @y = ';\nINSERT INTO t VALUES ('a\\'b', NEXTVAL({v}.s)) #'\n;\n"),
        // Quotes in a comment of a version no server has hid a client command.
        format!("CREATE TABLE t (a text, b bigint);\n/*M!999999 ' */ SET @a = '\n\\u {victim}\n';\nINSERT INTO t VALUES ('d', 7777);\n"),
        // A value that calls into another database.
        format!("CREATE TABLE t (a text, b bigint);\nINSERT INTO t VALUES ('h', (SELECT SETVAL({v}.s, 5000)));\n"),
        // A CREATE TABLE reaches past its head: a default from another database's sequence
        // without NEXTVAL, or after 512 bytes of columns; a MERGE table over another
        // database's table, which its rows are written into.
        format!("CREATE TABLE t (a text, b bigint DEFAULT NEXT VALUE FOR {v}.s);\nINSERT INTO `t` (`a`) VALUES ('n');\n"),
        format!(
            "CREATE TABLE t (\n{}  b bigint DEFAULT nextval({v}.s),\n  a text\n);\nINSERT INTO `t` (`a`) VALUES ('l');\n",
            (0..30).map(|i| format!("  `column_number_{i}` int DEFAULT NULL,\n")).collect::<String>()
        ),
        format!("CREATE TABLE m (a int) ENGINE=MERGE UNION=({v}.mt) INSERT_METHOD=LAST;\nINSERT INTO `m` VALUES (5);\n"),
        // A SET sets the session to literals: a call reaches anywhere.
        format!("SET @x = NEXTVAL({v}.s);\n"),
        // A seventh review's: the dot before another database's name in an executable
        // comment the server skips (11.99.99 is above the test server's version), which the
        // check read as code, chaining the name to the target's.
        format!("CREATE TABLE x (id int NOT NULL DEFAULT NEXTVAL(/*!119999 TARGET.*/{v}.s), b int);\nINSERT INTO `x` (`b`) VALUES (1);\n"),
        format!("SET @x = NEXT VALUE FOR /*!119999 ,.*/{v}.s;\n"),
    ]
    .map(String::into_bytes);
    // In latin1 the server reads `--` before 0xA0 (a no-break space) as a comment, the client
    // as code, so the two split the statements differently.
    let mut latin1 = b"SET NAMES latin1;\nSET @a = 1 --\xa0 '\n; INSERT INTO ".to_vec();
    latin1.extend_from_slice(format!("{v}.t VALUES ('x', 1); #'\n;\n").as_bytes());
    // And anywhere else outside quotes once the character set was latin1: 0xA0 glued the
    // other database's name to a variable's.
    let mut glued =
        b"/*!40101 SET character_set_client = latin1 */;\nSET @a = @x\xa0OR\xa0NEXT\xa0VALUE\xa0FOR\xa0"
            .to_vec();
    glued.extend_from_slice(format!("{v}.s;\n").as_bytes());
    // A ninth review's: a compound statement, and a mode or character set set where the
    // splitter did not follow it (after a comment, inside a list).
    let compound =
        format!("DELIMITER ;;\nBEGIN NOT ATOMIC DO NEXTVAL({v}.s); END;;\nDELIMITER ;\n");
    let mode = format!("SET SESSION/**/sql_mode='NO_BACKSLASH_ESCAPES';\nCREATE TABLE y (a int) COMMENT 'a\\'; INSERT INTO {v}.t VALUES ('n', 17); -- ';\n");
    let mut gbk =
        b"SET autocommit=1, NAMES gbk;\nCREATE TABLE y (a int) COMMENT '\xbf\\'; INSERT INTO "
            .to_vec();
    gbk.extend_from_slice(
        format!("{v}.t VALUES ('g', 14); -- ';\nSET NAMES utf8mb4;\n").as_bytes(),
    );
    let cases = cases
        .into_iter()
        .chain([latin1, glued, compound.into_bytes(), mode.into_bytes(), gbk])
        .chain([format!(
            // A tenth review's: under another delimiter the client sends several
            // statements as one, and the server runs each.
            "DELIMITER ;;\nCREATE PROCEDURE p() SELECT 1; DO NEXTVAL({v}.s) ;;\nDELIMITER ;\n"
        )
        .into_bytes()]);
    for (n, hostile) in cases.enumerate() {
        let target = format!("hostile_t_{:08x}", fastrand::u32(..));
        let hostile = match hostile.windows(6).position(|w| w == b"TARGET") {
            Some(k) => [&hostile[..k], target.as_bytes(), &hostile[k + 6..]].concat(),
            None => hostile,
        };
        let shown = String::from_utf8_lossy(&hostile).into_owned();
        // The attack is real: the plain client, given the same SQL, changes the victim.
        let scratch = db.create_db("scratch");
        db.restore(&scratch, &hostile);
        assert_ne!(state(), baseline, "not an attack: {shown}");
        db.sql(None, &format!("DROP DATABASE `{scratch}`"));
        reset();
        assert_eq!(state(), baseline);

        let mut sql = plain.clone();
        sql.extend_from_slice(&hostile);
        forge(&env, &rec, &sql, true);
        let jobs = if n % 2 == 0 { "1" } else { "2" };
        let r = env.run(&[
            "restore",
            &rec.id,
            "--to-server",
            "main",
            "--to-database",
            &target,
            "--jobs",
            jobs,
        ]);
        assert_eq!(r.code, 1, "{shown}: {}", r.stderr);
        assert!(r.stderr.contains("refused"), "{shown}: {}", r.stderr);
        assert!(r.stderr.contains("was dropped"), "{shown}: {}", r.stderr);
        assert!(db
            .sql(None, &format!("SHOW DATABASES LIKE '{target}'"))
            .trim()
            .is_empty());
        assert_eq!(state(), baseline, "the victim changed: {shown}");
    }
    // A file's source database is unknown, so no name is its own but the target's: a foreign
    // key to another database's table is refused.
    let file = env.path("dump.sql");
    let restore_file = |sql: &str, extra: &[&str]| {
        std::fs::write(
            &file,
            format!("-- MariaDB dump 10.19\n{sql}-- Dump completed on 2026-11-30 10:00:00\n"),
        )
        .unwrap();
        let mut args = vec![
            "restore",
            "--file",
            file.to_str().unwrap(),
            "--to-server",
            "main",
        ];
        args.extend_from_slice(extra);
        env.run(&args)
    };
    let r = restore_file(
        &format!("CREATE TABLE c (a text, b bigint, FOREIGN KEY (b) REFERENCES {v}.t (b));\n"),
        &["--to-database", &format!("fk_{:08x}", fastrand::u32(..))],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("foreign key"), "{}", r.stderr);
    assert_eq!(state(), baseline);
    // With --force into a database that already has a trigger reaching the victim, the dump's
    // rows for that table are refused (a tenth review's: they fired it).
    let armed = db.create_db("armed");
    db.sql(
        Some(&armed),
        &format!("CREATE TABLE t3 (a int); CREATE TRIGGER trg AFTER INSERT ON t3 FOR EACH ROW INSERT INTO {v}.t VALUES ('trg', NEW.a);"),
    );
    let r = restore_file(
        "INSERT INTO `t3` VALUES (5);\n",
        &["--to-database", &armed, "--force"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("already has a trigger"), "{}", r.stderr);
    assert_eq!(state(), baseline);
    // An eleventh review's: a temporary table's drop dropped no trigger; a function the target
    // holds, called by its name in backquotes among the values; and with several sessions, a
    // DROP VIEW that ran after the rows it was to keep from the view. Each is real first.
    db.sql(
        Some(&armed),
        &format!(
            "DELIMITER ;;
             CREATE FUNCTION hook() RETURNS int DETERMINISTIC MODIFIES SQL DATA BEGIN INSERT INTO {v}.t VALUES ('hook', 7); RETURN 7; END;;
             DELIMITER ;
             CREATE TABLE t4 (a int); CREATE VIEW vv AS SELECT a, b FROM {v}.t;"
        ),
    );
    let attacks = [
        (
            "DROP TEMPORARY TABLE IF EXISTS `t3`;\nINSERT INTO `t3` VALUES (6);\n",
            "1",
            "`DROP TEMPORARY TABLE …` is not a statement",
        ),
        (
            "INSERT INTO `t4` VALUES (`hook`());\n",
            "1",
            "a name in backquotes",
        ),
        (
            "/*!50001 DROP VIEW IF EXISTS `vv`*/;\nCREATE TABLE IF NOT EXISTS `vv` (a text, b bigint);\nINSERT INTO `vv` VALUES ('vv', 9);\n",
            "2",
            "restore with --jobs 1",
        ),
    ];
    for (sql, jobs, why) in attacks {
        // Through the plain client, the rows alone change the victim.
        let rows = &sql[sql.find("INSERT").unwrap()..];
        db.sql(Some(&armed), rows);
        assert_ne!(state(), baseline, "not an attack: {rows}");
        reset();
        let r = restore_file(sql, &["--to-database", &armed, "--force", "--jobs", jobs]);
        assert_eq!(r.code, 1, "{sql}: {}", r.stderr);
        assert!(r.stderr.contains(why), "{sql}: {}", r.stderr);
        assert_eq!(state(), baseline, "the victim changed: {sql}");
        assert!(db.sql(Some(&armed), "SHOW FULL TABLES").contains("VIEW"));
    }
    // A twelfth review's: tables of the target that write elsewhere by themselves, a MERGE over
    // another database's table and a default drawing another database's sequence.
    db.sql(
        Some(&armed),
        &format!(
            "CREATE TABLE m (a int) ENGINE=MRG_MyISAM UNION=({v}.mt) INSERT_METHOD=LAST;
             CREATE TABLE x (a text, b bigint DEFAULT NEXTVAL({v}.s));
             CREATE TABLE own (a int, b decimal(5,2) DEFAULT 1.50);"
        ),
    );
    for rows in [
        "INSERT INTO `m` VALUES (5);\n",
        "INSERT INTO `x` (`a`) VALUES ('seq');\n",
    ] {
        db.sql(Some(&armed), rows);
        assert_ne!(state(), baseline, "not an attack: {rows}");
        reset();
        for jobs in ["1", "2"] {
            let r = restore_file(rows, &["--to-database", &armed, "--force", "--jobs", jobs]);
            assert_eq!(r.code, 1, "{rows}: {}", r.stderr);
            assert!(
                r.stderr
                    .contains("writes into or draws from another database"),
                "{rows}: {}",
                r.stderr
            );
            assert_eq!(state(), baseline, "the victim changed: {rows}");
        }
    }
    // A table whose default is a plain number is no such table.
    restore_file(
        "INSERT INTO `own` (`a`) VALUES (1);\n",
        &["--to-database", &armed, "--force"],
    )
    .expect(0);
    // A dump that takes the load out of the binary log is refused unless the restore says so.
    let r = restore_file(
        "SET sql_log_bin=0;\nCREATE TABLE nb (a int);\nINSERT INTO nb VALUES (1);\n",
        &["--to-database", &format!("nb_{:08x}", fastrand::u32(..))],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("restore with --no-binlog"),
        "{}",
        r.stderr
    );
}

/// Issue 10, item 3: a backup held on two storages must be the same bytes on both; when the
/// index says otherwise, restore refuses and names both copies.
#[test]
fn copies_that_disagree_are_refused() {
    let db = mariadb();
    let name = db.create_shop("twins", 5);
    let env = Env::new();
    env.write_config(
        "",
        "storage:\n  a:\n    type: local\n    path: {storage}/a\n  b:\n    type: local\n    path: {storage}/b\n",
    );
    env.run(&["backup", "--db", &name]).expect(0);
    let index =
        crate::support::newest_index_file(&env.storage().join(format!("b/main/index/db/{name}")));
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index).unwrap()).unwrap();
    doc["backups"][0]["sha256"] = "00".repeat(32).into();
    std::fs::write(&index, serde_json::to_vec(&doc).unwrap()).unwrap();
    let id = env.list(&[]).backups[0].id.clone();
    let r = env.run(&[
        "restore",
        &id,
        "--to-server",
        "main",
        "--to-database",
        "twins_x",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("disagree") && r.stderr.contains("'b'"),
        "{}",
        r.stderr
    );
}

/// Issue 11: exit 2 means "nothing was done, fix the request"; a server that is down during a
/// restore, or a storage that cannot be read during fetch, is a failure of the run (exit 1).
#[test]
fn runtime_failures_of_restore_and_fetch_exit_1_and_request_errors_exit_2() {
    let db = mariadb();
    let name = db.create_shop("exits", 5);
    let env = Env::new();
    env.write_local_config("");
    env.run(&["backup", "--db", &name]).expect(0);
    let id = env.list(&[]).backups[0].id.clone();
    // A second server entry that points at a closed port.
    let cfg = std::fs::read_to_string(env.config()).unwrap();
    let down = cfg.replacen(
        "servers:\n",
        "servers:\n  down:\n    host: 127.0.0.1\n    port: 9\n    user: root\n    password: x\n",
        1,
    );
    std::fs::write(env.config(), down).unwrap();
    let r = env.run(&["restore", &id, "--to-server", "down", "--to-database", "x"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("127.0.0.1"), "{}", r.stderr);
    // The storage directory becomes unreadable: a file where the server directory was.
    let moved = env.path("moved");
    std::fs::rename(env.storage().join("main").join(&name), &moved).unwrap();
    let r = env.run(&["fetch", &id, "-o", "x.sql.zst"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    for (args, want) in [
        (
            vec![
                "restore",
                "20200101T000000Z_00000000",
                "--to-server",
                "main",
            ],
            "no successful copy",
        ),
        (
            vec!["restore", &id, "--to-server", "nope"],
            "unknown server 'nope'",
        ),
        (
            vec!["fetch", &id, "--storage", "nope"],
            "unknown storage 'nope'",
        ),
        (vec!["verify"], "name the backups"),
    ] {
        let r = env.run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{args:?}: {}", r.stderr);
    }
}

/// Starts `args` in its own process group (as cron, systemd and `timeout` run it), waits until
/// `ready` holds, then sends `signal` to the whole group `times` times, 20 ms apart.
pub(crate) fn run_and_signal(
    env: &Env,
    args: &[&str],
    extra_env: &[(&str, &std::path::Path)],
    ready: impl Fn() -> bool,
    signal: &str,
    times: usize,
) -> (crate::support::Run, std::time::Duration) {
    use std::os::unix::process::CommandExt;
    let mut cmd = env.cmd();
    cmd.args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !ready() {
        assert!(std::time::Instant::now() < deadline, "never got ready");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let started = std::time::Instant::now();
    for _ in 0..times {
        std::process::Command::new("kill")
            .args([&format!("-{signal}"), "--", &format!("-{}", child.id())])
            .status()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let r = crate::support::Run::from(child.wait_with_output().unwrap());
    (r, started.elapsed())
}

/// Issue 10, item 13: two SIGTERMs in a row to the whole process group (what `timeout` and
/// systemd send) hurry the shutdown but skip nothing: the failure is recorded, the temp object
/// is gone, and the run exits 130 promptly.
#[test]
fn two_sigterms_to_the_process_group_still_record_and_clean_up() {
    let db = mariadb();
    let victim = db.create_shop("twice", 100);
    let env = Env::new();
    let tool = crate::failures::misbehaving_tool(
        &env,
        &victim,
        "mariadb-dump \"$@\" | head -c 20000\nexec sleep 60",
    );
    env.write_local_config(&format!("dump_tool: {tool}"));
    let (r, took) = run_and_signal(
        &env,
        &["backup", "--db", &victim],
        &[],
        || env.stored_files().iter().any(|f| f.ends_with(".tmp")),
        "TERM",
        2,
    );
    assert!(took < std::time::Duration::from_secs(10), "took {took:?}");
    r.expect(130);
    let rec = env.list(&[]).backups.remove(0);
    assert_eq!(rec.status, "failed");
    assert!(rec.error.unwrap().contains("interrupted"));
    crate::failures::assert_no_partial_files(&env);
}

/// Every file under `dir` (recursively) that contains `needle`.
fn files_containing(dir: &std::path::Path, needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_containing(&p, needle));
        } else if std::fs::read(&p)
            .map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            .unwrap_or(false)
        {
            out.push(p.display().to_string());
        }
    }
    out
}

/// Issue 10, item 7: the password reaches the client tools through memory only, so a SIGKILL at
/// any moment of a backup, a restore or a restore test leaves no plaintext secret on disk (in
/// the temp directory, the storage or the lock directory).
#[test]
fn a_sigkill_at_any_moment_leaves_no_secret_on_disk() {
    let db = mariadb();
    let name = db.create_shop("killsecret", 300);
    let env = Env::new();
    let password = db.password();
    let tmp = env.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    // The tools touch a marker and stall once started, so the kill lands while they hold
    // the connection.
    let marker = env.path("started");
    let slow_client = env.path("slow-client");
    crate::support::write_script(
        &slow_client,
        &format!(
            "case \"$*\" in *--database=*) echo \"$*\" > {m}; sleep 60;; esac\nexec mariadb \"$@\"",
            m = marker.display()
        ),
    );
    let slow_dump = crate::failures::misbehaving_tool(
        &env,
        &name,
        &format!(
            "mariadb-dump \"$@\" | head -c 20000\ntouch {}\nexec sleep 60",
            marker.display()
        ),
    );
    env.write_local_config("");
    env.run(&["backup", "--db", &name]).expect(0);
    let id = env.list(&[]).backups[0].id.clone();
    env.write_local_config(&format!(
        "dump_tool: {slow_dump}\nclient_tool: {}",
        slow_client.display()
    ));
    let target = format!("killsecret_r_{:08x}", fastrand::u32(..));
    for args in [
        vec!["backup", "--db", name.as_str()],
        vec![
            "restore",
            id.as_str(),
            "--to-server",
            "main",
            "--to-database",
            target.as_str(),
        ],
        vec!["verify", id.as_str(), "--restore-test"],
    ] {
        let _ = std::fs::remove_file(&marker);
        let (r, _) = run_and_signal(
            &env,
            &args,
            &[("TMPDIR", tmp.as_path())],
            || marker.exists(),
            "KILL",
            1,
        );
        assert_eq!(r.code, -1, "{args:?} was not killed: {}", r.stderr);
        let found = files_containing(env.dir.path(), &password);
        assert!(found.is_empty(), "{args:?} left the password in {found:?}");
        // What a SIGKILL cannot clean up (the half-restored database), the test does.
        let started = crate::support::read(&marker);
        if let Some(db_name) = started
            .split_whitespace()
            .find_map(|a| a.strip_prefix("--database="))
        {
            db.sql(None, &format!("DROP DATABASE IF EXISTS `{db_name}`"));
        }
    }
}

/// Issue 10, item 12: a copy that was stored but cannot be recorded (here: the index was damaged
/// between two runs) is removed again by the run that stored it; the printed status, the exit
/// code and the index agree, and nothing is left that no index owns.
#[test]
fn an_object_that_cannot_be_recorded_is_removed_and_the_run_says_so() {
    let db = mariadb();
    let name = db.create_shop("unrecorded", 20);
    let env = Env::new();
    env.write_local_config("");
    env.run(&["backup", "--db", &name]).expect(0);
    let before = env.stored_files();
    let index = env.db_index(&name);
    let good = std::fs::read(&index).unwrap();
    std::fs::write(&index, b"{\"schema_version\": 2, \"backups\": [").unwrap();
    let r = env.run(&["--json", "backup", "--db", &name]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let rec = &doc["backups"][0];
    assert_eq!(rec["status"], "failed", "{}", r.stdout);
    assert!(
        rec["error"].as_str().unwrap().contains("removed again"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("no index was changed"), "{}", r.stderr);
    assert_eq!(env.stored_files(), before, "a file no index owns was left");
    std::fs::write(&index, good).unwrap();
}

/// A MariaDB server of this test's own (its globals can be changed), stopped when dropped.
struct PrivateServer(crate::support::MariaDb);

impl PrivateServer {
    fn start(dir: &std::path::Path) -> PrivateServer {
        let port = crate::support::free_port();
        crate::support::start_service("mariadb.sh", dir, port);
        PrivateServer(crate::support::MariaDb {
            dir: dir.to_path_buf(),
            port,
        })
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(format!("{}/scripts/mariadb.sh", env!("CARGO_MANIFEST_DIR")))
            .args(["stop", self.0.dir.to_str().unwrap()])
            .output();
    }
}

/// Issue 10, item 18: a compressor slower than the dump must not make the server drop the dump's
/// connection (`net_write_timeout`, here 2 s instead of 60 s): the dump is read steadily while
/// the compressor works. And a signal stops a run inside the xz encoder within 5 s.
#[test]
fn a_slow_compressor_keeps_the_dump_connection_and_a_signal_stops_it_promptly() {
    let env = Env::new();
    let server = PrivateServer::start(&env.path("mariadb"));
    let db = &server.0;
    db.sql(None, "CREATE DATABASE slow");
    db.sql(
        Some("slow"),
        "CREATE TABLE t (id INT PRIMARY KEY, pad VARCHAR(200)) \
         SELECT seq AS id, REPEAT(MD5(seq), 6) AS pad FROM seq_1_to_100000;",
    );
    db.sql(None, "SET GLOBAL net_write_timeout = 2");
    let config = |level: u32| {
        format!(
            "servers:\n  main:\n    host: 127.0.0.1\n    port: {}\n    user: root\n    password_file: {}\nstorage:\n  local:\n    type: local\n    path: {}\nbackup_types:\n  manual:\n    compression: {{algorithm: xz, level: {level}, threads: 2}}\n    retention: {{keep_last: 5}}\n",
            db.port,
            db.password_file().display(),
            env.storage().display()
        )
    };
    // xz's fastest preset: the throttle, not the CPU, is what holds the compressor (on a
    // machine busy with other tests, preset 6 itself fell below the rate the server's 2 s
    // timeout needs, whatever the pipeline does).
    std::fs::write(env.config(), config(0)).unwrap();
    // About 20 MB of dump through a compressor held to ~4 MB/s: several seconds in which the
    // old pipeline left the socket unread for longer than the 2 s timeout.
    let r = crate::support::Run::from(
        env.cmd()
            .args(["backup", "--db", "slow"])
            .env("SQLGUARD_TEST_COMPRESS_DELAY_MS", "250")
            .output()
            .unwrap(),
    );
    r.expect(0);
    let rec = env.list(&[]).backups.remove(0);
    assert_eq!(rec.status, "success", "{:?}", rec.error);
    assert!(rec.raw_bytes > 15_000_000, "{}", rec.raw_bytes);
    // A signal while the xz encoder works on the biggest level: out within 5 s, recorded.
    std::fs::write(env.config(), config(9)).unwrap();
    let (r, took) = run_and_signal(
        &env,
        &["backup", "--db", "slow"],
        &[],
        || env.stored_files().iter().any(|f| f.ends_with(".tmp")),
        "TERM",
        1,
    );
    r.expect(130);
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    assert_eq!(env.list(&[]).backups[0].status, "failed");
}

/// Issue 10, items 12 and 14: what a kill leaves between storing a copy and recording it (an
/// object and its manifest, no record) is reported by `prune --dry-run`, never deleted, and
/// adopted by `index rebuild`, which also keeps what the old index knew: failed records,
/// verifications, and a backup whose manifest was lost (written back).
#[test]
fn what_a_kill_leaves_is_reported_by_prune_and_adopted_by_rebuild() {
    let db = mariadb();
    let name = db.create_shop("adopt", 10);
    let env = Env::new();
    // A configured database the server lacks: its backups are failed records.
    env.write_local_config("databases:\n  include: [no_such_db_here]");
    env.run(&["backup", "--db", &name]).expect(0);
    env.run(&["backup", "--db", "no_such_db_here"]).expect(1);
    let rec = env.list(&["--db", &name]).backups.remove(0);
    env.run(&["verify", &rec.id]).expect(0);
    // A second copy as a killed run leaves it: object and manifest under a new id, no record.
    let new_id = format!("{}_{:08x}", &rec.id[..16], fastrand::u32(..));
    let key = rec.key.clone().unwrap().replace(&rec.id, &new_id);
    let manifest_key = rec.manifest_key.clone().unwrap().replace(&rec.id, &new_id);
    std::fs::copy(
        env.storage().join(rec.key.as_deref().unwrap()),
        env.storage().join(&key),
    )
    .unwrap();
    let mut m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.storage().join(rec.manifest_key.as_deref().unwrap())).unwrap(),
    )
    .unwrap();
    m["id"] = new_id.clone().into();
    m["key"] = key.clone().into();
    m["manifest_key"] = manifest_key.clone().into();
    std::fs::write(env.storage().join(&manifest_key), m.to_string()).unwrap();
    // And the first backup's manifest is lost.
    std::fs::remove_file(env.storage().join(rec.manifest_key.as_deref().unwrap())).unwrap();
    // Manifests whose object never came (a kill between writing the manifest and storing the
    // object): one older than orphan_min_age (24 h by default), one fresh.
    let lone = |age_hours: u64| {
        let id = format!("{}_{:08x}", &rec.id[..16], fastrand::u32(..));
        let k = manifest_key.replace(&new_id, &id);
        std::fs::write(env.storage().join(&k), m.to_string()).unwrap();
        let f = std::fs::File::options()
            .write(true)
            .open(env.storage().join(&k))
            .unwrap();
        f.set_modified(
            std::time::SystemTime::now() - std::time::Duration::from_secs(age_hours * 3600),
        )
        .unwrap();
        k
    };
    let (stale, fresh) = (lone(48), lone(0));
    let r = env.run(&["--json", "prune", "--dry-run"]);
    r.expect(0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let reported: Vec<(&str, bool)> = doc["unrecorded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["key"].as_str().unwrap(),
                u["adoptable"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(
        reported.contains(&(key.as_str(), true))
            && reported.contains(&(manifest_key.as_str(), true))
            && reported.contains(&(fresh.as_str(), false)),
        "{reported:?}"
    );
    assert!(
        r.stderr.contains("its object was never stored"),
        "{}",
        r.stderr
    );
    let orphan = |doc: &serde_json::Value| {
        doc["orphans"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["key"] == stale.as_str() && o["kind"] == "manifest")
    };
    assert!(orphan(&doc), "{}", r.stdout);
    let r = env.run(&["--json", "prune"]);
    r.expect(0);
    assert!(
        orphan(&serde_json::from_str(&r.stdout).unwrap()),
        "{}",
        r.stdout
    );
    assert!(
        env.storage().join(&key).exists() && env.storage().join(&fresh).exists(),
        "prune deleted what the index does not own"
    );
    assert!(
        !env.storage().join(&stale).exists(),
        "a stale lone manifest stayed"
    );
    let r = env.run(&["--json", "index", "rebuild"]);
    r.expect(0);
    let list = env.list(&[]);
    let ids: Vec<&str> = list.backups.iter().map(|r| r.id.as_str()).collect();
    assert!(ids.contains(&new_id.as_str()), "not adopted: {ids:?}");
    let old = list
        .backups
        .iter()
        .find(|r| r.id == rec.id)
        .expect("intact backup dropped");
    assert!(old.verification.is_some(), "its verification was dropped");
    assert!(
        list.backups.iter().any(|r| r.status == "failed"),
        "the failure was dropped"
    );
    assert!(env
        .storage()
        .join(rec.manifest_key.as_deref().unwrap())
        .exists());
}

/// Issue 10, items 9 and 17: messages name the thing in plain words (the server's port, the
/// path, "connection refused" rather than a library's prefix), say each cause once, and never
/// print a credential, even one written into a URL.
#[test]
fn messages_name_the_thing_in_plain_words_and_never_print_a_credential() {
    let env = Env::new();
    let afile = env.path("afile");
    std::fs::write(&afile, "x").unwrap();
    std::fs::write(
        env.config(),
        format!(
            "servers:\n  main:\n    host: 127.0.0.1\n    port: 9\n    user: u\n    password: p\nstorage:\n  local:\n    type: local\n    path: {}/sub\n  s3:\n    type: s3\n    endpoint: http://127.0.0.1:9\n    bucket: bkt\n    path_style: true\n    access_key_id: AKIA\n    secret_access_key: s3cr3tKey\nretry: {{attempts: 1, max_backoff: 1s}}\nmetrics:\n  pushgateway: http://bob:pushS3cret@127.0.0.1:9\n  timeout: 1s\n",
            afile.display()
        ),
    )
    .unwrap();
    let r = env.run(&["backup"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let e = &r.stderr;
    assert!(e.contains("(127.0.0.1:9)"), "no port: {e}");
    assert!(
        e.contains(&format!("{}/sub", afile.display())),
        "no path: {e}"
    );
    assert_eq!(
        e.matches("Not a directory (os error 20): Not a directory")
            .count(),
        0,
        "{e}"
    );
    assert!(e.contains("connection refused"), "{e}");
    for internal in [
        "attohttpc",
        "io: ",
        "Io Error",
        "(os error 11)",
        "Resource temporarily",
    ] {
        assert!(!e.contains(internal), "'{internal}' in: {e}");
    }
    for secret in ["pushS3cret", "s3cr3tKey"] {
        assert!(
            !e.contains(secret) && !r.stdout.contains(secret),
            "{secret} printed: {e}"
        );
    }
    assert!(
        e.contains("http://127.0.0.1:9"),
        "the Pushgateway is not named: {e}"
    );
    let show = env.run(&["config", "show"]);
    assert!(
        !show.stdout.contains("pushS3cret") && !show.stdout.contains("bob:"),
        "{}",
        show.stdout
    );
}

/// A database name is data: the text lines that carry one (a restore's plan, a prune's lines)
/// print a terminal escape, a line break or a bidirectional override escaped, never raw.
#[test]
fn a_database_name_sends_no_terminal_escape_through_plain_lines() {
    let db = mariadb();
    let name = db.create_db("esc\u{1b}]0;pwned\u{7}\u{202e}\u{2028}x");
    db.sql(
        Some(&name),
        "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1);",
    );
    let env = Env::new();
    env.write_local_config("");
    env.run(&["backup", "--db", &name]).expect(0);
    let target = format!("plain_{:08x}", fastrand::u32(..));
    let r = env.run(&[
        "restore",
        "latest",
        "--db",
        &name,
        "--to-server",
        "main",
        "--to-database",
        &target,
        "--dry-run",
    ]);
    r.expect(0);
    for bad in ['\u{1b}', '\u{7}', '\u{202e}', '\u{2028}'] {
        assert!(!r.stdout.contains(bad), "{bad:?} in {:?}", r.stdout);
    }
    assert!(r.stdout.contains("\\u{1b}]0;pwned"), "{}", r.stdout);
    db.sql(None, &format!("DROP DATABASE `{name}`"));
}

/// Databases called like the index's own files (`index`, `index.json`) are backed up beside
/// it, never into it: every backup of every database goes on, and `index rebuild` neither
/// removes their backups nor takes them for index files.
#[test]
fn a_database_named_like_the_index_is_backed_up_beside_it() {
    let db = mariadb();
    for name in ["index", "index.json"] {
        db.sql(
            None,
            &format!("DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}`"),
        );
        db.sql(
            Some(name),
            "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1);",
        );
    }
    let other = db.create_shop("beside_index", 5);
    let env = Env::new();
    env.write_local_config("");
    for name in ["index", "index.json", other.as_str()] {
        env.run(&["backup", "--db", name]).expect(0);
    }
    env.run(&["backup", "--db", "index"]).expect(0);
    let r = env.run(&["--json", "index", "rebuild"]);
    r.expect(0);
    for name in ["index", "index.json", other.as_str()] {
        let records = env.list(&["--db", name]).backups;
        assert!(!records.is_empty(), "{name}: no records after the rebuild");
        env.run(&["verify", "--latest", "--db", name]).expect(0);
    }
    for name in ["index", "index.json"] {
        db.sql(None, &format!("DROP DATABASE `{name}`"));
    }
}

/// An accounts restore leaves an account the server already has as it is (a hostile review's:
/// the dump's `GRANT … IDENTIFIED BY PASSWORD` set a rotated password and limits back to the
/// backup's, root's included), brings back the accounts that are gone, and says which it left.
/// A helper role left by a restore that stopped is named, and one this restore leaves is
/// dropped.
#[test]
fn an_accounts_restore_leaves_existing_accounts_as_they_are() {
    let env = Env::new();
    let server = PrivateServer::start(&env.path("mariadb"));
    let db = &server.0;
    db.sql(
        None,
        "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY);
         CREATE USER kept@'%' IDENTIFIED BY 'old-pw' WITH MAX_QUERIES_PER_HOUR 5;
         GRANT SELECT ON app.* TO kept@'%';
         CREATE USER gone@'%' IDENTIFIED BY 'gone-pw'; GRANT INSERT ON app.* TO gone@'%';",
    );
    std::fs::write(
        env.config(),
        format!(
            "servers:\n  main:\n    host: 127.0.0.1\n    port: {}\n    user: root\n    password_file: {}\n    accounts: true\n    databases: {{include: [app]}}\nstorage:\n  local:\n    type: local\n    path: {}\n",
            db.port,
            db.password_file().display(),
            env.storage().display()
        ),
    )
    .unwrap();
    env.run(&["backup"]).expect(0);
    let acc = env.list(&["--db", "*accounts"]).backups.remove(0);
    // Since the backup: a rotated password and new limits, and an account dropped.
    db.sql(
        None,
        "ALTER USER kept@'%' IDENTIFIED BY 'new-pw' WITH MAX_QUERIES_PER_HOUR 100;
         GRANT INSERT ON app.* TO kept@'%';
         DROP USER gone@'%';",
    );
    let kept = db.sql(None, "SHOW GRANTS FOR kept@'%'");
    let root = db.sql(None, "SHOW GRANTS FOR root@localhost");
    let r = env.run(&["restore", &acc.id, "--to-server", "main", "--yes"]);
    r.expect(0);
    assert!(
        r.stderr.contains("left as they were") && r.stderr.contains("kept@%"),
        "{}",
        r.stderr
    );
    assert_eq!(db.sql(None, "SHOW GRANTS FOR kept@'%'"), kept);
    assert_eq!(db.sql(None, "SHOW GRANTS FOR root@localhost"), root);
    assert!(
        db.sql(None, "SHOW GRANTS FOR gone@'%'")
            .contains("INSERT ON `app`"),
        "the dropped account is back"
    );
    // A helper role left behind by a restore that stopped is named, and nothing is loaded.
    db.sql(
        None,
        "DROP USER gone@'%'; CREATE ROLE mariadb_dump_import_role;",
    );
    let r = env.run(&["restore", &acc.id, "--to-server", "main", "--yes"]);
    r.expect(1);
    assert!(
        r.stderr.contains("DROP ROLE mariadb_dump_import_role"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("database may be incomplete"),
        "{}",
        r.stderr
    );
    assert_eq!(
        db.sql(None, "SELECT COUNT(*) FROM mysql.user WHERE User = 'gone'")
            .trim(),
        "0"
    );
    // A restore that stops midway (its account may not grant what `gone` had) drops the role
    // the dump created, so that the next one is not stopped by it.
    db.sql(
        None,
        "DROP ROLE mariadb_dump_import_role; CREATE USER gone@'%'; GRANT RELOAD ON *.* TO gone@'%';",
    );
    env.run(&["backup"]).expect(0);
    let acc = env.list(&["--db", "*accounts"]).backups.remove(0);
    let pw = env.path("restorer-pw");
    std::fs::write(&pw, "restorer-pw").unwrap();
    db.sql(
        None,
        "DROP USER gone@'%';
         CREATE USER restorer@'%' IDENTIFIED BY 'restorer-pw';
         GRANT CREATE USER ON *.* TO restorer@'%';
         GRANT SELECT ON mysql.* TO restorer@'%';
         GRANT SELECT, INSERT ON app.* TO restorer@'%' WITH GRANT OPTION;",
    );
    let config = std::fs::read_to_string(env.config()).unwrap().replace(
        "    accounts: true\n",
        &format!(
            "    accounts: true\n    restore:\n      user: restorer\n      password_file: {}\n",
            pw.display()
        ),
    );
    std::fs::write(env.config(), config).unwrap();
    let r = env.run(&["restore", &acc.id, "--to-server", "main", "--yes"]);
    r.expect(1);
    assert!(
        r.stderr.contains("mariadb_dump_import_role was dropped"),
        "{}",
        r.stderr
    );
    assert_eq!(
        db.sql(
            None,
            "SELECT COUNT(*) FROM mysql.user WHERE User = 'mariadb_dump_import_role'"
        )
        .trim(),
        "0"
    );
}
