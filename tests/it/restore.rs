//! `restore --jobs N` against the real server: the same database as one session, a failing
//! session fails the restore, and `--no-binlog` keeps the load out of the binary log.

use std::time::{Duration, Instant};

use crate::support::{mariadb, Env};

/// A shop with the objects a restore must reproduce beside its tables: a MyISAM table without
/// a primary key (never split), an AUTO_INCREMENT table with BLOBs, and the shop's own view,
/// trigger, function, procedure and event.
fn rich_shop(prefix: &str, scale: u32) -> String {
    let db = mariadb();
    let name = db.create_shop(prefix, scale);
    db.sql(
        Some(&name),
        "CREATE TABLE notes (at DATETIME NOT NULL, body TEXT) ENGINE=MyISAM;
         INSERT INTO notes SELECT NOW() - INTERVAL seq MINUTE, CONCAT('note ', seq) FROM seq_1_to_3000;
         CREATE TABLE files (id INT AUTO_INCREMENT PRIMARY KEY, data LONGBLOB, hash CHAR(32)) ENGINE=InnoDB AUTO_INCREMENT=500;
         INSERT INTO files (data, hash) SELECT RANDOM_BYTES(1024), MD5(seq) FROM seq_1_to_400;",
    );
    name
}

/// `restore ID --to-server main --to-database TARGET EXTRA…`.
fn restore_into<'a>(id: &'a str, target: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "restore",
        id,
        "--to-server",
        "main",
        "--to-database",
        target,
    ];
    args.extend_from_slice(extra);
    args
}

fn backup(env: &Env, name: &str) -> String {
    env.run(&["backup", "--db", name]).expect(0);
    env.list(&["--db", name]).backups[0].id.clone()
}

/// Issue 12: a restore through three sessions, with the rows of the large tables spread over
/// them, gives the database a single session gives: every table's CHECKSUM TABLE and every
/// object's information_schema row (AUTO_INCREMENT, DEFINER, SQL_MODE, character sets and
/// collations included). `verify --restore-test --jobs 2` uses the same engine.
#[test]
fn parallel_restore_is_identical_to_a_single_session_restore() {
    let db = mariadb();
    let name = rich_shop("prest", 100_000);
    let env = Env::new();
    env.write_local_config("");
    let id = backup(&env, &name);
    let one = format!("{name}_one");
    let three = format!("{name}_three");
    env.run(&restore_into(&id, &one, &[])).expect(0);
    let r = env.run(&restore_into(&id, &three, &["--jobs", "3"]));
    r.expect(0);
    assert!(r.stderr.contains("3 sessions"), "{}", r.stderr);
    assert!(
        r.stderr.contains("rows spread over the sessions: ") && r.stderr.contains("order_items"),
        "the largest table was not split: {}",
        r.stderr
    );
    let sums = db.checksums(&one);
    assert_eq!(sums.len(), 8, "{sums:?}");
    assert_eq!(db.checksums(&three), sums);
    assert_eq!(
        db.checksums(&name),
        sums,
        "the restore differs from the source"
    );
    let schema = db.schema_snapshot(&one);
    assert!(schema.contains("orders_status_audit") && schema.contains("order_totals"));
    assert_eq!(db.schema_snapshot(&three), schema);
    assert_eq!(db.schema_snapshot(&name), schema);
    let r = env.run(&["verify", &id, "--restore-test", "--jobs", "2"]);
    r.expect(0);
}

/// What a real dump's CREATE TABLE may hold passes the guard, which reads each whole: a
/// foreign key to another database, a MERGE of its own tables, and a default from its own
/// sequence (which the server writes qualified with the database's name). Restored under its
/// own name it is the same database; restored elsewhere, that default would draw from the
/// source's sequence, and the restore is refused naming it. (The sequence's table holds no
/// rows: mariadb-dump locks only the table around its rows, and the server then refuses the
/// insert for want of a lock on the sequence, through the plain client too.)
/// A dump's own table options restore (a MERGE over its own tables, defaults from its own
/// sequence); a foreign key to another database's table is refused under another name.
#[test]
fn a_dumps_own_table_options_restore_and_a_foreign_key_is_refused_elsewhere() {
    let db = mariadb();
    let parent = db.create_db("parent");
    db.sql(
        Some(&parent),
        "CREATE TABLE p (id INT PRIMARY KEY); INSERT INTO p VALUES (1), (2);",
    );
    let name = db.create_db("options");
    db.sql(
        Some(&name),
        &format!(
            "CREATE SEQUENCE s;
             CREATE TABLE a_user (id INT DEFAULT NEXT VALUE FOR s, note TEXT);
             CREATE TABLE child (id INT, pid INT, FOREIGN KEY (pid) REFERENCES `{parent}`.p (id));
             INSERT INTO child VALUES (1, 1), (2, 2);
             CREATE TABLE m1 (a INT) ENGINE=MyISAM; CREATE TABLE m2 (a INT) ENGINE=MyISAM;
             INSERT INTO m1 VALUES (1); INSERT INTO m2 VALUES (2);
             CREATE TABLE m (a INT) ENGINE=MERGE UNION=(m1, m2) INSERT_METHOD=LAST;"
        ),
    );
    let before = db.checksums(&name);
    let env = Env::new();
    env.write_local_config("");
    let id = backup(&env, &name);
    let copy = format!("{name}_copy");
    let r = env.run(&restore_into(&id, &copy, &[]));
    r.expect(1);
    assert!(
        r.stderr.contains("refused")
            && r.stderr.contains("foreign key")
            && r.stderr.contains(&format!("`{parent}`.`p`")),
        "{}",
        r.stderr
    );
    db.sql(None, &format!("DROP DATABASE `{name}`"));
    for jobs in ["1", "2"] {
        let r = env.run(&restore_into(&id, &name, &["--jobs", jobs, "--force"]));
        r.expect(0);
        assert_eq!(db.checksums(&name), before, "--jobs {jobs}");
    }
    assert_eq!(
        db.sql(Some(&name), "SELECT COUNT(*) FROM m").trim(),
        "2",
        "the MERGE table reads its own tables"
    );
}

/// A table whose default draws from the database's own sequence (MariaDB writes the sequence
/// qualified with the database's name) restores under another name, single-session and in
/// parallel, drawing from the copy's sequence; a restore test of it passes.
#[test]
fn a_default_from_the_own_sequence_restores_under_another_name() {
    let db = mariadb();
    let name = db.create_db("ownseq");
    db.sql(
        Some(&name),
        "CREATE SEQUENCE s START WITH 100;
         CREATE TABLE t (id INT PRIMARY KEY DEFAULT NEXTVAL(s), v INT);
         CREATE TABLE u (id BIGINT DEFAULT (NEXT VALUE FOR s), w INT);
         INSERT INTO t (v) VALUES (1), (2); INSERT INTO u (w) VALUES (3);",
    );
    let before = db.checksums(&name);
    let env = Env::new();
    env.write_local_config("");
    let id = backup(&env, &name);
    for jobs in ["1", "2"] {
        let copy = format!("{name}_c{jobs}");
        env.run(&restore_into(&id, &copy, &["--jobs", jobs]))
            .expect(0);
        assert_eq!(db.checksums(&copy), before, "--jobs {jobs}");
        for table in ["t", "u"] {
            let create = db.sql(Some(&copy), &format!("SHOW CREATE TABLE {table}"));
            assert!(
                create.contains(&format!("`{copy}`.`s`"))
                    && !create.contains(&format!("`{name}`.")),
                "{create}"
            );
        }
        // The copy draws from its own sequence; the original's is left as it was.
        let original = db.sql(Some(&name), "SELECT next_not_cached_value FROM s");
        db.sql(Some(&copy), "INSERT INTO t (v) VALUES (9)");
        assert_eq!(
            db.sql(Some(&name), "SELECT next_not_cached_value FROM s"),
            original
        );
    }
    let r = env.run(&["verify", "--restore-test", "--latest", "--db", &name]);
    r.expect(0);
}

/// Dumps with bare names restore: `--skip-quote-names` writes a routine's definer and an
/// INSERT's column list bare, and `--dump-history` writes a system-versioned table's rows with
/// their bare `row_start` and `row_end` (the guard refused all three before).
#[test]
fn dumps_with_bare_names_restore() {
    let db = mariadb();
    let name = db.create_db("bare");
    db.sql(
        Some(&name),
        "CREATE TABLE g (id INT PRIMARY KEY, a INT, b TEXT);
         INSERT INTO g VALUES (1, 2, 'x'), (2, 3, 'y');
         CREATE TABLE sv (id INT PRIMARY KEY, x INT) WITH SYSTEM VERSIONING;
         INSERT INTO sv VALUES (1, 1); UPDATE sv SET x = 2 WHERE id = 1;
         CREATE FUNCTION f() RETURNS INT DETERMINISTIC RETURN 1;",
    );
    let history = |db_name: &str| {
        db.sql(
            Some(db_name),
            "SELECT id, x FROM sv FOR SYSTEM_TIME ALL ORDER BY x; SELECT f();",
        )
    };
    let env = Env::new();
    env.write_local_config(
        "dump_options: [\"--skip-quote-names\", \"--complete-insert\", \"--dump-history\", \"--routines\"]",
    );
    let id = backup(&env, &name);
    let copy = format!("{name}_copy");
    for jobs in ["1", "2"] {
        let r = env.run(&restore_into(&id, &copy, &["--jobs", jobs, "--force"]));
        r.expect(0);
        assert_eq!(db.checksums(&copy), db.checksums(&name), "--jobs {jobs}");
        assert_eq!(history(&copy), history(&name), "--jobs {jobs}");
    }
}

/// Issue 12: a session that fails mid-restore (here its connection is killed on the server,
/// as a DBA would) fails the restore with that session's error, and the database the restore
/// created is dropped.
#[test]
fn a_session_failing_mid_restore_fails_the_restore() {
    let r = killed_mid_restore("pkill", &["--jobs", "2"]);
    assert!(r.stderr.contains("session"), "{}", r.stderr);
}

/// The same with one session, whose input a thread writes ahead of the client: the client's
/// error, not a broken pipe, is what the restore reports.
#[test]
fn a_single_session_killed_mid_restore_fails_the_restore() {
    let r = killed_mid_restore("skill", &[]);
    assert!(
        r.stderr.contains("mariadb failed") && r.stderr.contains("ERROR"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("Broken pipe"), "{}", r.stderr);
}

/// Restores a fresh database with `extra` and kills the connection of an `INSERT`: the run,
/// which must have failed with exit code 1 and dropped the database it created.
fn killed_mid_restore(prefix: &str, extra: &[&str]) -> crate::support::Run {
    let db = mariadb();
    let name = rich_shop(prefix, 60_000);
    let env = Env::new();
    env.write_local_config("");
    let id = backup(&env, &name);
    let target = format!("{name}_x");
    let mut child = env.spawn(&restore_into(&id, &target, extra));
    // Kill one session's connection while it inserts.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut killed = false;
    while Instant::now() < deadline && !killed {
        let ids = db.sql(
            None,
            &format!(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '{target}' AND INFO LIKE 'INSERT%'"
            ),
        );
        if let Some(conn) = ids.lines().next() {
            db.sql(None, &format!("KILL CONNECTION {conn}"));
            killed = true;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let r = crate::support::Run::from(child.wait_with_output().unwrap());
    assert!(killed, "no INSERT seen to kill: {}", r.stderr);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("failed"), "{}", r.stderr);
    assert!(
        db.sql(None, &format!("SHOW DATABASES LIKE '{target}'"))
            .trim()
            .is_empty(),
        "the database the restore created was left"
    );
    assert!(r.stderr.contains("dropped"), "{}", r.stderr);
    r
}

/// A signal ends a parallel restore whose sessions are still loading what they were given:
/// the clients are stopped, the run exits 130 promptly, and the database it created is
/// dropped. (Each client here lingers after its input, as a slow load would.)
#[test]
fn a_signal_ends_a_parallel_restore_while_its_sessions_load() {
    let db = mariadb();
    let name = db.create_shop("psig", 200);
    let env = Env::new();
    env.write_local_config("");
    let id = backup(&env, &name);
    let marker = env.path("loaded");
    let slow = env.path("slow-client");
    crate::support::write_script(
        &slow,
        &format!(
            "case \"$*\" in *--database=*) mariadb \"$@\"; s=$?; touch {m}; sleep 60; exit $s;; esac\nexec mariadb \"$@\"",
            m = marker.display()
        ),
    );
    env.write_local_config(&format!("client_tool: {}", slow.display()));
    let target = format!("{name}_sig");
    let child = env.spawn(&restore_into(&id, &target, &["--jobs", "2"]));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "no session finished loading");
        std::thread::sleep(Duration::from_millis(20));
    }
    let signalled = Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let r = crate::support::Run::from(child.wait_with_output().unwrap());
    assert!(
        signalled.elapsed() < Duration::from_secs(20),
        "the restore waited {:?} after the signal",
        signalled.elapsed()
    );
    assert_eq!(r.code, 130, "{}", r.stderr);
    assert!(
        r.stderr.contains("interrupted by a signal") && r.stderr.contains("dropped"),
        "{}",
        r.stderr
    );
    assert!(db
        .sql(None, &format!("SHOW DATABASES LIKE '{target}'"))
        .trim()
        .is_empty());
}

/// Issue 12: the schema session failing fails the restore too, and the data sessions waiting
/// for its tables stop instead of hanging: here a view in the target (restored into with
/// `--force`) has the name of a table of the dump, so `CREATE TABLE` fails.
#[test]
fn the_schema_session_failing_fails_a_parallel_restore() {
    let db = mariadb();
    let name = rich_shop("pschema", 2_000);
    // A table without rows: rows for a table the target already has as a view are refused
    // before they are sent, so the view that makes the schema session fail is of an empty one.
    db.sql(Some(&name), "CREATE TABLE empty_t (a int)");
    let env = Env::new();
    env.write_local_config("");
    let id = backup(&env, &name);
    let target = db.create_db("pschema_t");
    db.sql(Some(&target), "CREATE VIEW empty_t AS SELECT 1 AS id");
    let r = env.run(&restore_into(&id, &target, &["--jobs", "2", "--force"]));
    r.expect(1);
    assert!(
        r.stderr.contains("the schema session failed") && r.stderr.contains("empty_t"),
        "{}",
        r.stderr
    );
}

/// The binary log position now, as `file:position`, and the events since `from`.
fn binlog_events_since(from: &str) -> String {
    let db = mariadb();
    let (file, pos) = from.split_once(':').unwrap();
    let files = db.sql(None, "SHOW BINARY LOGS");
    let mut out = String::new();
    let mut started = false;
    for f in files.lines().filter_map(|l| l.split('\t').next()) {
        if f == file {
            started = true;
            out.push_str(&db.sql(None, &format!("SHOW BINLOG EVENTS IN '{f}' FROM {pos}")));
        } else if started {
            out.push_str(&db.sql(None, &format!("SHOW BINLOG EVENTS IN '{f}'")));
        }
    }
    out
}

fn binlog_position() -> String {
    let row = mariadb().sql(None, "SHOW MASTER STATUS");
    let mut cols = row.split('\t');
    format!("{}:{}", cols.next().unwrap(), cols.next().unwrap().trim())
}

/// Issue 12: `--no-binlog` keeps a restore (its CREATE DATABASE, tables, rows and objects) and a
/// restore test (its scratch database) out of the server's binary log, so they reach neither
/// replicas nor a binlog archive; without it the restore is logged.
#[test]
fn no_binlog_keeps_the_restore_out_of_the_binary_log() {
    let db = mariadb();
    assert_eq!(
        db.sql(None, "SELECT @@log_bin").trim(),
        "1",
        "the test server needs --log-bin"
    );
    let name = db.create_shop("nobin", 50);
    let env = Env::new();
    env.write_local_config("");
    let id = backup(&env, &name);
    for (jobs, logged) in [("1", false), ("2", false), ("1", true)] {
        let target = format!("{name}_{jobs}_{logged}");
        let before = binlog_position();
        let mut args = restore_into(&id, &target, &["--jobs", jobs]);
        if !logged {
            args.push("--no-binlog");
        }
        env.run(&args).expect(0);
        assert_eq!(db.checksums(&target), db.checksums(&name));
        let events = binlog_events_since(&before);
        assert_eq!(
            events.contains(&target),
            logged,
            "jobs {jobs}, logged {logged}: {}",
            events
                .lines()
                .filter(|l| l.contains(&target))
                .take(3)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    // A dump that turns logging back on itself (`SET sql_log_bin=1`) does not beat --no-binlog:
    // it is refused, and nothing reaches the binary log.
    let file = env.path("log-bin.sql");
    std::fs::write(
        &file,
        "-- MariaDB dump 10.19\nCREATE TABLE t (id INT PRIMARY KEY);\nSET sql_log_bin=1;\nINSERT INTO t VALUES (1);\n-- Dump completed on 2026-11-30 11:00:00\n",
    )
    .unwrap();
    for jobs in ["1", "2"] {
        let target = format!("{name}_setbin_{jobs}");
        let before = binlog_position();
        let r = env.run(&[
            "restore",
            "--file",
            file.to_str().unwrap(),
            "--to-server",
            "main",
            "--to-database",
            &target,
            "--yes",
            "--no-binlog",
            "--jobs",
            jobs,
        ]);
        r.expect(1);
        assert!(
            r.stderr.contains("a SET of sql_log_bin to 1"),
            "{}",
            r.stderr
        );
        let events = binlog_events_since(&before);
        assert!(!events.contains(&target), "jobs {jobs}: logged");
    }
    let before = binlog_position();
    let r = env.run(&["--json", "verify", &id, "--restore-test", "--no-binlog"]);
    r.expect(0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let scratch = doc["verified"][0]["scratch_database"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(scratch.starts_with("sqlguard_verify_"), "{scratch}");
    let events = binlog_events_since(&before);
    assert!(
        !events.contains(&scratch),
        "the scratch database was logged: {}",
        events
            .lines()
            .filter(|l| l.contains(&scratch))
            .take(3)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A backup account with only what a dump needs, and a restore account with what loading a
/// dump with routines, triggers and other definers needs (SUPER because the server writes a
/// binary log); both dropped with the guard.
struct Accounts {
    backup: String,
    restore: String,
}

impl Accounts {
    fn create(env: &Env) -> Accounts {
        let db = mariadb();
        let tag = format!("{:06x}", fastrand::u32(..0xffffff));
        let a = Accounts {
            backup: format!("bk_{tag}"),
            restore: format!("rs_{tag}"),
        };
        db.sql(
            None,
            &format!(
                "CREATE USER '{b}'@'127.0.0.1' IDENTIFIED BY 'bkpw{tag}';
                 GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON *.* TO '{b}'@'127.0.0.1';
                 CREATE USER '{r}'@'127.0.0.1' IDENTIFIED BY 'rspw{tag}';
                 GRANT CREATE, DROP, ALTER, INDEX, INSERT, SELECT, REFERENCES, CREATE VIEW, SHOW VIEW,
                   CREATE ROUTINE, ALTER ROUTINE, TRIGGER, EVENT, LOCK TABLES, SET USER, SUPER
                   ON *.* TO '{r}'@'127.0.0.1';",
                b = a.backup,
                r = a.restore
            ),
        );
        std::fs::write(env.path("bkpw"), format!("bkpw{tag}\n")).unwrap();
        std::fs::write(env.path("rspw"), format!("rspw{tag}\n")).unwrap();
        a
    }

    /// A config whose backups use the backup account and restores the restore account.
    fn config(&self, env: &Env) {
        let db = mariadb();
        let text = format!(
            "servers:\n  main:\n    host: 127.0.0.1\n    port: {}\n    user: {}\n    password_file: {}\n    restore:\n      user: {}\n      password_file: {}\nstorage:\n  local:\n    type: local\n    path: {}\n",
            db.port,
            self.backup,
            env.path("bkpw").display(),
            self.restore,
            env.path("rspw").display(),
            env.storage().display()
        );
        std::fs::write(env.config(), text).unwrap();
    }
}

impl Drop for Accounts {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| {
            mariadb().sql(
                None,
                &format!(
                    "DROP USER IF EXISTS '{}'@'127.0.0.1', '{}'@'127.0.0.1'",
                    self.backup, self.restore
                ),
            )
        });
    }
}

/// Issue 13: the newest good backup of one database comes back with one command, through the
/// server's restore account (the backup account could not create anything). `latest` skips a
/// newer copy whose verification failed, is an error naming the candidates when the selection
/// holds several databases, and `--dry-run` says what would happen and does nothing.
#[test]
fn restore_latest_with_a_restore_account_in_one_command() {
    let db = mariadb();
    let shop = db.create_shop("latest", 200);
    let other = db.create_shop("latest_other", 5);
    let env = Env::new();
    let accounts = Accounts::create(&env);
    accounts.config(&env);
    env.run(&["backup", "--db", &shop, "--db", &other])
        .expect(0);
    let good = env.list(&["--db", &shop]).backups[0].clone();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    env.run(&["backup", "--db", &shop]).expect(0);
    let newest = env.list(&["--db", &shop]).backups[0].clone();
    assert_ne!(newest.id, good.id);
    // The newest copy rots on disk. Before a verify records it, `latest` still picks it, and
    // fails naming the next good backup and the command that restores it (never taken quietly).
    std::fs::write(env.storage().join(newest.key.as_deref().unwrap()), b"rot").unwrap();
    let target = format!("{shop}_copy");
    let r = env.run(&[
        "restore",
        "latest",
        "--db",
        &shop,
        "--to-server",
        "main",
        "--to-database",
        &target,
    ]);
    r.expect(1);
    assert!(
        r.stderr.contains(&format!(
            "the next newest good backup of main/{shop} is {}",
            good.id
        )) && r.stderr.contains(&format!(
            "`sqlguard restore {} --to-server main --to-database {target}`",
            good.id
        )) && r
            .stderr
            .contains(&format!("`sqlguard verify {}`", newest.id)),
        "{}",
        r.stderr
    );
    assert!(db
        .sql(None, &format!("SHOW DATABASES LIKE '{target}'"))
        .trim()
        .is_empty());
    env.run(&["verify", &newest.id]).expect(1);

    let r = env.run(&["restore", "latest", "--to-server", "main"]);
    r.expect(2);
    assert!(
        r.stderr.contains("matches backups of 2 databases")
            && r.stderr.contains(&format!("main/{shop}"))
            && r.stderr.contains(&format!("main/{other}")),
        "{}",
        r.stderr
    );
    let r = env.run(&[
        "restore",
        "latest",
        "--db",
        &shop,
        "--to-server",
        "main",
        "--to-database",
        &target,
        "--dry-run",
    ]);
    r.expect(0);
    assert!(
        r.stdout.contains(&good.id)
            && r.stdout
                .contains(&format!("main/{target} as {}", accounts.restore))
            && r.stdout.contains("a new database (utf8mb4_unicode_ci)")
            && r.stdout.contains("nothing was read or written"),
        "{}",
        r.stdout
    );
    assert!(db
        .sql(None, &format!("SHOW DATABASES LIKE '{target}'"))
        .trim()
        .is_empty());

    let r = env.run(&[
        "--json",
        "restore",
        "latest",
        "--db",
        &shop,
        "--to-server",
        "main",
        "--to-database",
        &target,
    ]);
    r.expect(0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["restored"]["record"]["id"], good.id.as_str(), "{doc}");
    // Older data is never taken quietly: the newer copy left out is named, with why.
    assert!(
        r.stderr
            .contains(&format!("passing over the newer backup {}", newest.id))
            && r.stderr.contains("SHA-256"),
        "{}",
        r.stderr
    );
    assert_eq!(doc["restored"]["created"], true);
    assert!(doc["duration_seconds"].as_f64().unwrap() > 0.0);
    assert!(
        r.stderr.contains("restored ") && r.stderr.contains(" in "),
        "{}",
        r.stderr
    );
    assert_eq!(db.checksums(&target), db.checksums(&shop));
    assert_eq!(db.schema_snapshot(&target), db.schema_snapshot(&shop));

    // The backup account alone cannot restore: the restore account is what made it work.
    let cfg = std::fs::read_to_string(env.config()).unwrap();
    let without: String = cfg
        .lines()
        .filter(|l| !l.starts_with("    restore:") && !l.starts_with("      "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(env.config(), without).unwrap();
    let r = env.run(&[
        "restore",
        "latest",
        "--db",
        &shop,
        "--to-server",
        "main",
        "--to-database",
        &format!("{shop}_nope"),
    ]);
    r.expect(1);
    assert!(r.stderr.contains("denied"), "{}", r.stderr);
}

/// `latest` is never told from part of the history: while a storage's index that may hold a
/// newer backup cannot be read, it names the newest it could read and restores nothing;
/// `--storage` of the readable one (or the id) is the operator's choice.
#[test]
fn latest_is_refused_while_an_index_that_may_hold_a_newer_backup_is_unreadable() {
    let db = mariadb();
    let shop = db.create_shop("uncertain", 20);
    let env = Env::new();
    env.write_config(
        "",
        "storage:\n  a:\n    type: local\n    path: {storage}/a\n  b:\n    type: local\n    path: {storage}/b\n  unused:\n    type: local\n    path: {storage}/unused\nbackup_types:\n  daily:\n    storages: [a, b]\n    retention: {keep_last: 3}\n  manual:\n    storages: [b]\n    retention: {keep_last: 3}\n  weekly:\n    storages: [a]\n    retention: {keep_last: 3}\n",
    );
    // A storage no type writes to cannot hold a newer backup: that it cannot be read is said,
    // and `latest` is still told.
    std::fs::create_dir_all(env.storage()).unwrap();
    std::fs::write(
        env.storage().join("unused"),
        b"a file where a directory belongs",
    )
    .unwrap();
    env.run(&["backup", "--type", "daily", "--db", &shop])
        .expect(0);
    let both = env.list(&["--db", &shop]).backups[0].clone();
    std::thread::sleep(Duration::from_millis(1100));
    env.run(&["backup", "--db", &shop]).expect(0);
    let only_b = env.list(&["--db", &shop, "--storage", "b"]).backups[0].clone();
    assert_ne!(only_b.id, both.id);
    let target = format!("{shop}_uncertain");
    let r = env.run(&restore_into(
        "latest",
        &target,
        &["--db", &shop, "--dry-run"],
    ));
    r.expect(0);
    assert!(
        r.stdout.contains(&only_b.id) && r.stderr.contains("unused"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    // The month file on b that holds the newer backup, then b's whole index.
    let index = env.storage().join("b/main/index");
    let month = index.join(format!("db/{shop}/{}.json", &only_b.started_at[..7]));
    let saved = std::fs::read(&month).unwrap();
    std::fs::write(&month, b"{damaged").unwrap();
    for unread in ["part of the index", "the index on 1 storage"] {
        if unread != "part of the index" {
            std::fs::write(&month, &saved).unwrap();
            std::fs::rename(&index, index.with_extension("moved")).unwrap();
            std::os::unix::fs::symlink(index.with_extension("moved"), &index).unwrap();
        }
        let r = env.run(&restore_into("latest", &target, &["--db", &shop]));
        r.expect(1);
        assert!(
            r.stderr.contains(&format!(
                "`latest` cannot be told: {unread} could not be read"
            )) && r.stderr.contains(&format!(
                "the newest good backup that could be read is {}",
                both.id
            )),
            "{}",
            r.stderr
        );
        assert!(db
            .sql(None, &format!("SHOW DATABASES LIKE '{target}'"))
            .trim()
            .is_empty());
        // verify checks what it found, and fails all the same.
        let r = env.run(&["verify", "latest", "--db", &shop]);
        r.expect(1);
        assert!(r.stdout.contains(&both.id), "{}{}", r.stdout, r.stderr);
    }
    // A type that does not write to b is told as before.
    env.run(&["backup", "--type", "weekly", "--db", &shop])
        .expect(0);
    let weekly = env.list(&["--db", &shop, "--type", "weekly"]).backups[0].clone();
    let r = env.run(&restore_into(
        "latest",
        &target,
        &["--db", &shop, "--type", "weekly", "--dry-run"],
    ));
    r.expect(0);
    assert!(r.stdout.contains(&weekly.id), "{}{}", r.stdout, r.stderr);
    let r = env.run(&restore_into(
        "latest",
        &target,
        &["--db", &shop, "--storage", "a"],
    ));
    r.expect(0);
    assert!(r.stderr.contains(&weekly.id), "{}", r.stderr);
}

/// Issue 13: the README's standard-tools recipe, run as written (paths and names substituted),
/// restores a backup without sqlguard, and its SHA-256 step agrees with the index.
#[test]
fn the_readme_standard_tools_recipe_restores_a_backup() {
    let db = mariadb();
    let shop = db.create_shop("recipe", 100);
    let env = Env::new();
    env.write_local_config("");
    env.run(&["backup", "--type", "daily", "--db", &shop])
        .expect(0);
    let rec = env.list(&[]).backups.remove(0);
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("## Restore with standard tools")
        .nth(1)
        .and_then(|s| s.split("```sh\n").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("the README has the recipe")
        .to_string();
    let example = "/var/backups/sqlguard/main/shop/daily/20261128T023000Z_9f3a61c2.sql.zst";
    assert!(section.contains(example), "{section}");
    let restored = format!("{shop}_std");
    let client = format!(
        "mariadb --defaults-file={}",
        db.dir.join("client.cnf").display()
    );
    let object = env.storage().join(rec.key.as_deref().unwrap());
    let script: String = section
        .lines()
        .filter(|l| !l.contains('…'))
        .map(|l| {
            l.replace(example, object.to_str().unwrap())
                .replace("shop_restored", &restored)
                .replace("mysql ", &format!("{client} "))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let out = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains(rec.sha256.as_deref().unwrap()),
        "the SHA-256 step: {printed}"
    );
    assert_eq!(db.checksums(&restored), db.checksums(&shop));
}

/// Issue 13: `fetch … | head` is not corruption: the reader closing the pipe ends the fetch
/// quietly with exit 0, whichever way the backup is named.
#[test]
fn fetch_into_a_closed_pipe_ends_quietly() {
    let db = mariadb();
    let shop = db.create_shop("headpipe", 2000);
    let env = Env::new();
    env.write_local_config("");
    env.run(&["backup", "--db", &shop]).expect(0);
    for id in ["latest", &env.list(&[]).backups[0].id.clone()] {
        for extra in [&["--decompress"][..], &[]] {
            let mut cmd = env.cmd();
            cmd.args(["fetch", id, "--db", &shop])
                .args(extra)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = cmd.spawn().unwrap();
            let mut first = [0u8; 100];
            std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
            drop(child.stdout.take());
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{id} {extra:?}: {stderr}");
            assert!(
                !stderr.contains("error") && !stderr.contains("fetched"),
                "{stderr}"
            );
        }
    }
}

/// Issue 13: a server marked `restore_only` is a restore target: `backup` leaves it out (and
/// refuses it by name), the report and metrics do not count it, and `restore --to-server`
/// writes into it.
#[test]
fn a_restore_only_server_is_only_a_restore_target() {
    let db = mariadb();
    let shop = db.create_shop("ronly", 20);
    let env = Env::new();
    env.write_config(
        "",
        &format!(
            "  dr:\n    host: 127.0.0.1\n    port: {}\n    user: root\n    password_file: {}\n    restore_only: true\nstorage:\n  local:\n    type: local\n    path: {{storage}}\n",
            db.port,
            db.password_file().display()
        ),
    );
    let r = env.run(&["--json", "backup", "--db", &shop]);
    r.expect(0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let servers: Vec<&str> = doc["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["server"].as_str().unwrap())
        .collect();
    assert_eq!(servers, ["main"], "{doc}");
    let r = env.run(&["backup", "--server", "dr", "--db", &shop]);
    r.expect(2);
    assert!(r.stderr.contains("restore_only"), "{}", r.stderr);
    let target = format!("{shop}_dr");
    env.run(&[
        "restore",
        "latest",
        "--db",
        &shop,
        "--to-server",
        "dr",
        "--to-database",
        &target,
    ])
    .expect(0);
    assert_eq!(db.checksums(&target), db.checksums(&shop));
    let r = env.run(&["report", "--json"]);
    r.expect(0);
    assert!(!r.stdout.contains("\"dr\""), "{}", r.stdout);
}

/// Issue 13, item 13: with `accounts: true` a whole-server backup also dumps the server's users,
/// roles and grants; `restore --all` brings back every database of the server and then its
/// accounts, each checked against the index first.
#[test]
fn accounts_are_backed_up_and_restore_all_brings_back_a_server() {
    let db = mariadb();
    let name = db.create_shop("acct", 10);
    let tag = format!("{:06x}", fastrand::u32(..0xffffff));
    let user = format!("app_{tag}");
    db.sql(
        None,
        &format!(
            "CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY 'pw{tag}';
             GRANT SELECT, INSERT ON `{name}`.* TO '{user}'@'127.0.0.1';
             GRANT UPDATE (email) ON `{name}`.`customers` TO '{user}'@'127.0.0.1';"
        ),
    );
    let grants = |db: &crate::support::MariaDb| {
        db.sql(None, &format!("SHOW GRANTS FOR '{user}'@'127.0.0.1'"))
    };
    let before = grants(db);
    let checksums = db.checksums(&name);
    // A second database whose only copy rots: `restore --all` cannot bring it back, and says so.
    let rotten = db.create_shop("acct_rot", 2);
    let env = Env::new();
    env.write_config(
        &format!("accounts: true\ndatabases: {{include: [{name}, {rotten}]}}"),
        "storage:\n  local:\n    type: local\n    path: {storage}\n",
    );
    env.run(&["backup"]).expect(0);
    let rot = env.list(&["--db", &rotten]).backups.remove(0);
    std::fs::write(env.storage().join(rot.key.as_deref().unwrap()), b"rot").unwrap();
    env.run(&["verify", &rot.id]).expect(1);
    let list = env.list(&[]);
    let acc = list
        .backups
        .iter()
        .find(|b| b.database == "*accounts")
        .unwrap_or_else(|| panic!("no accounts backup in {list:?}"));
    assert_eq!(acc.status, "success");
    // A `--db` run is not a whole-server run: no accounts.
    env.run(&["backup", "--db", &name]).expect(0);
    assert_eq!(
        env.list(&["--db", "*accounts"]).backups.len(),
        1,
        "a --db run dumped the accounts"
    );
    // The accounts copy verifies; it is not restore-tested (no scratch database can hold it).
    let v = env.run(&["--json", "verify", &acc.id, "--restore-test"]);
    v.expect(0);
    assert!(
        v.stdout.contains("\"restore_tested\": false"),
        "{}",
        v.stdout
    );
    // Into a database it cannot go.
    env.run(&[
        "restore",
        &acc.id,
        "--to-server",
        "main",
        "--to-database",
        "x",
    ])
    .expect(2);

    // The server is lost: the database and the account are gone.
    db.sql(
        None,
        &format!(
            "DROP DATABASE `{name}`; DROP DATABASE `{rotten}`; DROP USER '{user}'@'127.0.0.1';"
        ),
    );
    let dry = env.run(&[
        "restore",
        "--all",
        "--server",
        "main",
        "--to-server",
        "main",
        "--dry-run",
    ]);
    // The dry run foresees the database left out, and fails as the run will.
    dry.expect(1);
    assert!(
        dry.stdout.contains(&name)
            && dry.stdout.contains("create the accounts")
            && dry.stdout.contains(&format!("leave out main/{rotten}")),
        "{}",
        dry.stdout
    );
    let r = env.run(&[
        "--json",
        "restore",
        "--all",
        "--server",
        "main",
        "--to-server",
        "main",
        "--yes",
    ]);
    r.expect(1);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["skipped"][0]["database"], rotten.as_str(), "{doc}");
    assert_eq!(doc["restored"].as_array().map(Vec::len), Some(2), "{doc}");
    assert!(
        r.stderr
            .contains(&format!("LEFT OUT (no good backup): {rotten}")),
        "{}",
        r.stderr
    );
    assert_eq!(db.checksums(&name), checksums);
    assert_eq!(grants(db), before, "the account and its grants are back");
    // Every target is checked before anything is written: a second run finds the database full.
    env.run(&[
        "restore",
        "--all",
        "--server",
        "main",
        "--to-server",
        "main",
        "--yes",
    ])
    .expect(2);
}

/// A routine created under NO_BACKSLASH_ESCAPES (its body ends a string with a lone backslash)
/// restores in one session and in several, and passes a restore test: the dump is split as the
/// client splits it, following the sql_mode the dump sets around the routine.
#[test]
fn a_routine_made_without_backslash_escapes_restores() {
    let db = mariadb();
    let name = db.create_db("nbe");
    db.sql(
        Some(&name),
        "CREATE TABLE t (id INT PRIMARY KEY, s VARCHAR(50));
         INSERT INTO t VALUES (1, 'a\\\\b'), (2, 'quote''s');
         SET sql_mode = 'NO_BACKSLASH_ESCAPES';
         CREATE PROCEDURE p() SELECT 'C:\\' AS path;",
    );
    let env = Env::new();
    env.write_local_config("");
    env.run(&["backup", "--db", &name]).expect(0);
    let routine = |database: &str| {
        db.sql(
            None,
            &format!(
                "SELECT ROUTINE_DEFINITION, SQL_MODE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '{database}'"
            ),
        )
    };
    assert!(routine(&name).contains("C:\\"), "{}", routine(&name));
    for jobs in ["1", "2"] {
        let copy = format!("{name}_j{jobs}");
        let args = ["restore", "latest", "--db", &name, "--to-server", "main"];
        env.run(
            &[
                &args[..],
                &["--to-database", &copy, "--jobs", jobs, "--yes"],
            ]
            .concat(),
        )
        .expect(0);
        assert_eq!(routine(&copy), routine(&name), "--jobs {jobs}");
        assert_eq!(db.checksums(&copy), db.checksums(&name), "--jobs {jobs}");
        db.sql(None, &format!("DROP DATABASE `{copy}`"));
    }
    env.run(&["verify", "--latest", "--db", &name, "--restore-test"])
        .expect(0);
    db.sql(None, &format!("DROP DATABASE `{name}`"));
}

/// A `CREATE DATABASE` whose answer is lost (the connection drops after the server ran it)
/// leaves no empty database behind: one that was not there before the restore is dropped, so
/// that a later restore does not take it for one that was there. One the server refused
/// (another session made it meanwhile) is not the restore's, and stays.
#[test]
fn a_create_whose_answer_is_lost_leaves_no_database() {
    let db = mariadb();
    let name = db.create_shop("lostcreate", 5);
    let env = Env::new();
    let target = format!("{name}_copy");
    // The real client, which then reports a lost connection for the CREATE of the target.
    let wrapper = env.path("client-wrapper");
    crate::support::write_script(
        &wrapper,
        &format!(
            "for a; do case \"$a\" in *'CREATE DATABASE `{target}`'*)\n\
               mariadb \"$@\"\n\
               echo 'ERROR 2013 (HY000) at line 1: Lost connection to server during query' >&2; exit 1;;\n\
             esac; done\n\
             exec mariadb \"$@\""
        ),
    );
    env.write_local_config(&format!("client_tool: {}", wrapper.display()));
    env.run(&["backup", "--db", &name]).expect(0);
    let args = ["restore", "latest", "--db", &name, "--to-server", "main"];
    let r = env.run(&[&args[..], &["--to-database", &target, "--yes"]].concat());
    r.expect(1);
    assert!(r.stderr.contains("Lost connection"), "{}", r.stderr);
    let left = db.sql(None, &format!("SHOW DATABASES LIKE '{target}'"));
    assert!(left.trim().is_empty(), "the lost create left {left}");
    db.sql(None, &format!("DROP DATABASE `{name}`"));
}
