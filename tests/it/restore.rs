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
    env.run(&["restore", &id, "--to-server", "main", "--to-database", &one])
        .expect(0);
    let r = env.run(&[
        "restore",
        &id,
        "--to-server",
        "main",
        "--to-database",
        &three,
        "--jobs",
        "3",
    ]);
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

/// Issue 12: a session that fails mid-restore (here its connection is killed on the server,
/// as a DBA would) fails the restore with that session's error, and the database the restore
/// created is dropped.
#[test]
fn a_session_failing_mid_restore_fails_the_restore() {
    let db = mariadb();
    let name = rich_shop("pkill", 60_000);
    let env = Env::new();
    env.write_local_config("");
    let id = backup(&env, &name);
    let target = format!("{name}_x");
    let mut child = env
        .cmd()
        .args([
            "restore",
            &id,
            "--to-server",
            "main",
            "--to-database",
            &target,
            "--jobs",
            "2",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
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
    assert!(
        r.stderr.contains("session") && r.stderr.contains("failed"),
        "{}",
        r.stderr
    );
    assert!(
        db.sql(None, &format!("SHOW DATABASES LIKE '{target}'"))
            .trim()
            .is_empty(),
        "the database the restore created was left"
    );
    assert!(r.stderr.contains("dropped"), "{}", r.stderr);
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
        let mut args = vec![
            "restore",
            &id,
            "--to-server",
            "main",
            "--to-database",
            &target,
            "--jobs",
            jobs,
        ];
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
