//! Point-in-time recovery (issue 14) against a private MariaDB started with binary logging:
//! `sqlguard binlog` archives, `restore --to-time / --to-position` rolls a dump forward, the same
//! recovery by hand with standard tools, gaps and early targets refused before anything is
//! touched, and a killed archive run that loses and duplicates nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{
    damage, free_port, pushgateway, s3, sample, scrape, start_service, Env, MariaDb, Record, Run,
};

/// A MariaDB of its own (binary logs are server-wide: FLUSH and PURGE must not reach other
/// tests' servers), stopped when dropped.
struct Private {
    db: MariaDb,
}

impl Private {
    fn start(name: &str) -> Private {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{name}-{:08x}", fastrand::u32(..)));
        let port = free_port();
        start_service("mariadb.sh", &dir, port);
        Private {
            db: MariaDb { dir, port },
        }
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        stop_server(&self.db.dir);
        let _ = std::fs::remove_dir_all(&self.db.dir);
    }
}

/// Stops the private server in `dir`; whether it stopped.
fn stop_server(dir: &Path) -> bool {
    Command::new("bash")
        .arg(format!("{}/scripts/mariadb.sh", env!("CARGO_MANIFEST_DIR")))
        .args(["stop", dir.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The README recipe's filter: drops the replayed transactions' original GTID settings.
const DROP_GTID_LINES: &str =
    "grep -v -E '^/\\*M!100001 SET @@session\\.(gtid_seq_no|server_id|gtid_domain_id)='";

/// Runs a recovery by hand (bash in the store; `$OUT` is `dir`, `$CNF` the server's client
/// options) and checks that it leaves `shop_hand` with the checksums `want`.
fn by_hand(env: &Env, db: &MariaDb, dir: &Path, script: &str, want: &BTreeMap<String, String>) {
    let out = Command::new("bash")
        .args(["-c", script])
        .env("STORE", env.storage())
        .env("OUT", dir)
        .env("CNF", db.dir.join("client.cnf"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        db.checksums("shop_hand"),
        *want,
        "the recipe by hand differs"
    );
}

fn config(env: &Env, db: &MariaDb, extra: &str) {
    let text = format!(
        "servers:\n  main:\n    host: 127.0.0.1\n    port: {}\n    user: root\n    password_file: {}\n    binlog: {{window: 14d}}\nstorage:\n  local:\n    type: local\n    path: {}\n{extra}",
        db.port,
        db.password_file().display(),
        env.storage().display()
    );
    std::fs::write(env.config(), text).unwrap();
}

/// [`config`] with a second local storage at `second` and the binary log archived to
/// `binlog_storages` (a YAML list's items, e.g. `local, second`).
fn two_storages(env: &Env, db: &MariaDb, second: &Path, binlog_storages: &str) {
    config(
        env,
        db,
        &format!(
            "  second:\n    type: local\n    path: {}\n",
            second.display()
        ),
    );
    env.edit_config(
        "binlog: {window: 14d}",
        &format!("binlog: {{window: 14d, storages: [{binlog_storages}]}}"),
    );
}

/// Database `name` (table `t` holding row 1) on `db`, archived to `local` and `second`: the
/// config of [`two_storages`] with both, a backup of it and a first binlog run.
fn archived_on_two(env: &Env, db: &MariaDb, second: &Path, name: &str) {
    two_storages(env, db, second, "local, second");
    db.sql(
        None,
        &format!("CREATE DATABASE {name}; CREATE TABLE {name}.t (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO {name}.t VALUES (1);"),
    );
    env.run(&["backup", "--db", name]).expect(0);
    env.run(&["binlog"]).expect(0);
}

/// The ids of the successful segment records on `storage`, sorted.
fn segment_ids(env: &Env, storage: &str) -> Vec<String> {
    let mut v: Vec<String> = env
        .list(&["--type", "binlog", "--storage", storage])
        .backups
        .into_iter()
        .filter(|r| r.status == "success")
        .map(|r| r.id)
        .collect();
    v.sort();
    v
}

/// The successful segment records, by file and start.
fn segments(env: &Env) -> Vec<Record> {
    let mut s: Vec<Record> = env
        .list(&["--type", "binlog"])
        .backups
        .into_iter()
        .filter(|r| r.status == "success")
        .collect();
    s.sort_by_key(|r| {
        let seg = r.segment.as_ref().unwrap();
        (
            seg["file"].as_str().unwrap().to_string(),
            seg["start"].as_u64().unwrap(),
        )
    });
    s
}

/// The next whole second (UTC, RFC 3339), after waiting for it to begin.
/// `restore --server main --db DB FLAG VALUE --to-server main --to-database INTO EXTRA…`: a
/// point-in-time restore of `db` to the target `to` (`["--to-time", t]`, …).
fn restore_to(env: &Env, db: &str, to: [&str; 2], into: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "restore",
        "--server",
        "main",
        "--db",
        db,
        to[0],
        to[1],
        "--to-server",
        "main",
        "--to-database",
        into,
    ];
    args.extend_from_slice(extra);
    env.run(&args)
}

fn next_second() -> String {
    let now = chrono::Utc::now();
    let next =
        now + chrono::Duration::milliseconds(1050 - i64::from(now.timestamp_subsec_millis()));
    std::thread::sleep((next - now).to_std().unwrap());
    next.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The ids of table `t` in `database`, in order, comma-separated.
fn rows_of(db: &MariaDb, database: &str) -> String {
    db.sql(
        None,
        &format!("SELECT GROUP_CONCAT(id ORDER BY id) FROM {database}.t"),
    )
    .trim()
    .to_string()
}

fn database_exists(db: &MariaDb, name: &str) -> bool {
    !db.sql(None, &format!("SHOW DATABASES LIKE '{name}'"))
        .trim()
        .is_empty()
}

/// Issue 14, must show: a dump at T0; inserts, updates, deletes and DDL with FLUSH BINARY LOGS
/// between them and a temporary table (logged as statements) used across a flush; checksums at
/// T1; more writes; an accidental DROP TABLE at T2; `sqlguard binlog`. `restore --to-time T1`
/// gives every table's CHECKSUM TABLE of T1; `--to-position` just before the DROP keeps the table
/// with its last rows; the README's recovery with standard tools gives T1 too; a time before the
/// oldest dump, and a restore across a purged file, fail before touching any database.
#[test]
fn restore_to_a_time_and_a_position_from_archived_binary_logs() {
    let p = Private::start("pitr");
    let db = &p.db;
    let env = Env::new();
    config(&env, db, "");
    db.sql(None, "CREATE DATABASE shop");
    db.sql(
        Some("shop"),
        "CREATE TABLE shop.items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40), qty INT, pic BLOB) ENGINE=InnoDB;
         INSERT INTO shop.items (name, qty, pic) SELECT CONCAT('item', seq), seq, RANDOM_BYTES(64) FROM seq_1_to_200;
         CREATE TABLE shop.notes (id INT PRIMARY KEY, body TEXT) ENGINE=InnoDB;
         INSERT INTO shop.notes VALUES (1, 'first');
         CREATE DATABASE other; CREATE TABLE other.t (x INT);",
    );
    env.run(&["backup", "--type", "daily", "--db", "shop"])
        .expect(0);
    let dump = env.list(&["--db", "shop"]).backups[0].clone();
    let coords = dump
        .binlog
        .clone()
        .expect("the dump records its binlog position");
    // Writes after the dump: DML, DDL, rotations, and a temporary table across a rotation.
    db.sql(
        Some("shop"),
        "INSERT INTO items (name, qty) VALUES ('new', 1);
         UPDATE items SET qty = qty + 1 WHERE id <= 50;
         DELETE FROM items WHERE id BETWEEN 60 AND 70;
         INSERT INTO other.t VALUES (1);
         CREATE TABLE extra (k INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB;
         INSERT INTO extra VALUES (1, 'a'), (2, 'b');
         FLUSH BINARY LOGS;
         ALTER TABLE items ADD COLUMN note VARCHAR(20) DEFAULT 'x';
         SET SESSION binlog_format = STATEMENT;
         CREATE TEMPORARY TABLE scratch (k INT);
         INSERT INTO scratch VALUES (10), (11);
         FLUSH BINARY LOGS;
         INSERT INTO extra (k, v) SELECT k, 'from scratch' FROM scratch;
         SET SESSION binlog_format = ROW;
         UPDATE notes SET body = 'second' WHERE id = 1;",
    );
    // Statements without a default database are not the database's: a replay leaves them out
    // (replayed, this DROP would remove the database re-created below).
    db.sql(
        None,
        "CREATE DATABASE side_effect; DROP DATABASE side_effect;",
    );
    let t1 = next_second();
    let at_t1 = db.checksums("shop");
    assert_eq!(at_t1.len(), 3, "{at_t1:?}");
    std::thread::sleep(Duration::from_millis(1100));
    db.sql(
        None,
        "CREATE DATABASE side_effect; CREATE TABLE side_effect.keep (x INT);",
    );
    db.sql(
        Some("shop"),
        "INSERT INTO extra VALUES (3, 'last before the drop'); UPDATE items SET qty = 0 WHERE id = 1;",
    );
    let status = db.sql(None, "SHOW MASTER STATUS");
    let mut f = status.split('\t');
    let (file, pos) = (f.next().unwrap().to_string(), f.next().unwrap().to_string());
    db.sql(Some("shop"), "DROP TABLE extra");
    // A statement on another database written while `shop` was the default: no replay past it.
    db.sql(Some("shop"), "CREATE TABLE other.t3 (x INT)");

    let r = env.run(&["binlog"]);
    r.expect(0);
    let segs = segments(&env);
    assert!(segs.len() >= 3, "{} segments: {}", segs.len(), r.stderr);
    // Contiguous per file, each file after the first from 0.
    for pair in segs.windows(2) {
        let (a, b) = (
            pair[0].segment.as_ref().unwrap(),
            pair[1].segment.as_ref().unwrap(),
        );
        if a["file"] == b["file"] {
            assert_eq!(a["end"], b["start"], "{a} / {b}");
        } else {
            assert_eq!(a["closed"], true, "{a}");
            assert_eq!(b["start"], 0, "{b}");
        }
    }
    // `verify` checks each segment's hash and every event's CRC32.
    let v = env.run(&["verify", "--sample", "100", "--type", "binlog"]);
    v.expect(0);
    assert!(v.stdout.contains("intact"), "{}", v.stdout);

    // --dry-run: the plan, and nothing written.
    let r = restore_to(&env, "shop", ["--to-time", &t1], "shop_t1", &["--dry-run"]);
    r.expect(0);
    assert!(
        r.stdout.contains(&format!(
            "replay the binary log from {}:{}",
            coords["file"].as_str().unwrap(),
            coords["position"]
        )),
        "{}",
        r.stdout
    );
    assert!(!database_exists(db, "shop_t1"));

    // Replaying into the origin server under gtid_strict_mode: the replayed transactions get
    // new GTIDs (their old ones would be out of order and refused).
    db.sql(None, "SET GLOBAL gtid_strict_mode = 1");
    // To the time: identical to the snapshot at T1, the rotated-in temporary table's rows too.
    let r = restore_to(&env, "shop", ["--to-time", &t1], "shop_t1", &["--yes"]);
    r.expect(0);
    assert_eq!(db.checksums("shop_t1"), at_t1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("statements of no or another database left out"),
        "{}",
        r.stderr
    );
    assert_eq!(
        db.sql(
            None,
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'side_effect'"
        )
        .trim(),
        "1",
        "the replay reached another database"
    );
    assert_eq!(
        db.sql(
            None,
            "SELECT COUNT(*) FROM shop_t1.extra WHERE v = 'from scratch'"
        )
        .trim(),
        "2"
    );
    assert!(
        db.sql(None, "SELECT COUNT(*) FROM other.t").trim() == "1"
            && !database_exists(db, "other_t1"),
        "another database's events stay out of the replay"
    );

    // To the position of the DROP: the table is back with its last rows.
    let r = restore_to(
        &env,
        "shop",
        ["--to-position", &format!("{file}:{pos}")],
        "shop_pos",
        &["--yes"],
    );
    r.expect(0);
    assert_eq!(
        db.sql(None, "SELECT v FROM shop_pos.extra WHERE k = 3")
            .trim(),
        "last before the drop"
    );
    assert_eq!(
        db.sql(None, "SELECT qty FROM shop_pos.items WHERE id = 1")
            .trim(),
        "0"
    );

    // A restore account without BINLOG REPLAY: the dump loads, the replay fails, and the
    // database the restore created is dropped again.
    db.sql(
        None,
        "CREATE USER pitr_limited@'127.0.0.1' IDENTIFIED BY 'limited-pw'; GRANT ALL ON `shop\\_lim`.* TO pitr_limited@'127.0.0.1';",
    );
    let pw = env.path("limited-pw");
    std::fs::write(&pw, "limited-pw").unwrap();
    let full = std::fs::read_to_string(env.config()).unwrap();
    std::fs::write(
        env.config(),
        full.replace(
            "    binlog: {window: 14d}\n",
            &format!("    binlog: {{window: 14d}}\n    restore: {{user: pitr_limited, password_file: {}}}\n", pw.display()),
        ),
    )
    .unwrap();
    let r = restore_to(&env, "shop", ["--to-time", &t1], "shop_lim", &["--yes"]);
    std::fs::write(env.config(), &full).unwrap();
    r.expect(1);
    assert!(
        r.stderr
            .contains("replaying the binary log into main/shop_lim failed")
            && r.stderr.contains("was dropped"),
        "{}",
        r.stderr
    );
    assert!(!database_exists(db, "shop_lim"));

    // Past the statement on `other`: refused before anything is written. (A run with nothing
    // new after the target proves the archive covers it: an idle server stays restorable.)
    let late = next_second();
    env.run(&["binlog"]).expect(0);
    let r = restore_to(&env, "shop", ["--to-time", &late], "shop_late", &["--yes"]);
    r.expect(2);
    assert!(r.stderr.contains("names database `other`"), "{}", r.stderr);
    assert!(!database_exists(db, "shop_late"));

    // The same recovery by hand, with standard tools and the positions from `list --json`.
    let dir = env.path("by-hand");
    std::fs::create_dir_all(&dir).unwrap();
    let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in &segs {
        let seg = s.segment.as_ref().unwrap();
        let f = seg["file"].as_str().unwrap().to_string();
        if f.as_str() >= coords["file"].as_str().unwrap() {
            files.entry(f).or_default().push(s.key.clone().unwrap());
        }
    }
    let mut script = String::from("set -euo pipefail\ncd \"$STORE\"\n");
    for (f, keys) in &files {
        script.push_str(&format!("zstd -dc {} > \"$OUT/{f}\"\n", keys.join(" ")));
    }
    let names: Vec<String> = files.keys().map(|f| format!("\"$OUT/{f}\"")).collect();
    script.push_str(&format!(
        "mariadb --defaults-file=\"$CNF\" -e 'CREATE DATABASE shop_hand'\n\
         zstd -dc {key} | mariadb --defaults-file=\"$CNF\" shop_hand\n\
         TZ=UTC mariadb-binlog --skip-gtid-strict-mode --database=shop --rewrite-db='shop->shop_hand' \
         --start-position={pos} --stop-datetime='{stop}' {names} \
         | {DROP_GTID_LINES} \
         | mariadb --defaults-file=\"$CNF\" shop_hand\n",
        key = dump.key.clone().unwrap(),
        pos = coords["position"],
        stop = t1.replace('T', " ").trim_end_matches('Z'),
        names = names.join(" "),
    ));
    by_hand(&env, db, &dir, &script, &at_t1);

    // Before the oldest dump: refused, nothing created.
    let early = (dump_time(&dump) - chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let r = restore_to(
        &env,
        "shop",
        ["--to-time", &early],
        "shop_early",
        &["--yes"],
    );
    r.expect(2);
    assert!(r.stderr.contains("is not before it"), "{}", r.stderr);
    assert!(!database_exists(db, "shop_early"));

    // A purged file: the archive run fails loudly and goes on; a restore across it is refused.
    let archived_to = segs.last().unwrap().segment.clone().unwrap();
    db.sql(
        Some("shop"),
        "INSERT INTO notes VALUES (2, 'lost'); FLUSH BINARY LOGS; INSERT INTO notes VALUES (3, 'lost too'); FLUSH BINARY LOGS;",
    );
    let newest = db.sql(None, "SHOW MASTER STATUS");
    let newest = newest.split('\t').next().unwrap().to_string();
    db.sql(None, &format!("PURGE BINARY LOGS TO '{newest}'"));
    let r = env.run(&["binlog"]);
    r.expect(1);
    assert!(
        r.stderr.contains(&format!(
            "{} was purged",
            archived_to["file"].as_str().unwrap()
        )),
        "{}",
        r.stderr
    );
    db.sql(Some("shop"), "INSERT INTO notes VALUES (4, 'after')");
    env.run(&["binlog"]).expect(0);
    let later = next_second();
    let r = restore_to(&env, "shop", ["--to-time", &later], "shop_gap", &["--yes"]);
    r.expect(1);
    assert!(
        r.stderr.contains("has a gap") && r.stderr.contains(archived_to["file"].as_str().unwrap()),
        "{}",
        r.stderr
    );
    assert!(!database_exists(db, "shop_gap"));
}

/// A replay renames only the default database and row events, never a name written in a
/// statement: a statement that names another database on the target server (one the
/// statement's head does not show too: TRUNCATE, RENAME), or the source's own name when the
/// restore goes into a copy, is refused before anything is written, and the databases it names
/// keep their rows. A copy's name the binary log tool would cut is refused the same way.
#[test]
fn a_replay_never_runs_a_statement_on_a_database_it_names() {
    let p = Private::start("pitr-names");
    let db = &p.db;
    let env = Env::new();
    config(&env, db, "");
    db.sql(
        None,
        "CREATE DATABASE src; CREATE TABLE src.t (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO src.t VALUES (1, 'one');
         CREATE DATABASE src2; CREATE TABLE src2.t (id INT PRIMARY KEY);
         CREATE DATABASE victim; CREATE TABLE victim.t (id INT PRIMARY KEY, v VARCHAR(30));
         INSERT INTO victim.t VALUES (1, 'old');",
    );
    env.run(&["backup", "--db", "src", "--db", "src2"])
        .expect(0);
    let before = next_second();
    db.sql(
        Some("src"),
        "INSERT INTO t VALUES (2, 'two'); ALTER TABLE src.t ADD COLUMN extra INT DEFAULT 5;",
    );
    db.sql(
        Some("src2"),
        "INSERT INTO t VALUES (7); TRUNCATE TABLE victim.t;",
    );
    db.sql(None, "INSERT INTO victim.t VALUES (99, 'written later')");
    env.run(&["binlog"]).expect(0);
    let after = next_second();
    env.run(&["binlog"]).expect(0);

    let r = restore_to(&env, "src", ["--to-time", &after], "src_copy", &["--yes"]);
    r.expect(2);
    assert!(
        r.stderr.contains("names database `src` in its text") && r.stderr.contains("ALTER TABLE"),
        "{}",
        r.stderr
    );
    let r = restore_to(&env, "src2", ["--to-time", &after], "src2_copy", &["--yes"]);
    r.expect(2);
    assert!(
        r.stderr.contains("names database `victim`") && r.stderr.contains("TRUNCATE"),
        "{}",
        r.stderr
    );
    assert_eq!(
        db.sql(None, "SELECT v FROM victim.t").trim(),
        "written later",
        "a refused replay reached the database it names"
    );
    let r = restore_to(&env, "src", ["--to-time", &before], "src copy", &["--yes"]);
    r.expect(2);
    assert!(
        r.stderr.contains("--rewrite-db cannot rename"),
        "{}",
        r.stderr
    );
    for name in ["src_copy", "src2_copy", "src copy"] {
        assert!(!database_exists(db, name), "{name}");
    }
    // A segment is no dump.
    let seg = segments(&env).remove(0);
    let r = env.run(&[
        "restore",
        &seg.id,
        "--to-server",
        "main",
        "--to-database",
        "segx",
        "--yes",
    ]);
    r.expect(2);
    assert!(
        r.stderr.contains("is a segment of the binary log archive"),
        "{}",
        r.stderr
    );
    assert!(!database_exists(db, "segx"));
    // `binlog --json` is versioned; with no server to archive, `binlog` says so (exit 2).
    let r = env.run(&["--json", "binlog"]);
    r.expect(0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["schema_version"], 1, "{}", r.stdout);
    let full = std::fs::read_to_string(env.config()).unwrap();
    std::fs::write(
        env.config(),
        full.replace("    binlog: {window: 14d}\n", ""),
    )
    .unwrap();
    let r = env.run(&["binlog"]);
    std::fs::write(env.config(), &full).unwrap();
    r.expect(2);
    assert!(
        r.stderr.contains("no server has a `binlog:` section"),
        "{}",
        r.stderr
    );
    // Up to a point before them, the copy is made.
    restore_to(&env, "src", ["--to-time", &before], "src_copy", &["--yes"]).expect(0);
    assert_eq!(db.sql(None, "SELECT COUNT(*) FROM src_copy.t").trim(), "1");
}

/// A trigger restored with the dump fires on a replayed statement-logged write (row events do
/// not fire triggers): one whose body writes to another database would write there, so the
/// replay is refused and the database the restore created is dropped; the other database keeps
/// its rows.
#[test]
fn a_dump_trigger_that_writes_elsewhere_stops_a_statement_replay() {
    let p = Private::start("pitr-trigger");
    let db = &p.db;
    let env = Env::new();
    config(&env, db, "");
    db.sql(
        None,
        "CREATE DATABASE src; CREATE TABLE src.t (id INT PRIMARY KEY);
         CREATE DATABASE victim; CREATE TABLE victim.t (v VARCHAR(40)); INSERT INTO victim.t VALUES ('old');",
    );
    db.sql(
        Some("src"),
        "CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW UPDATE victim.t SET v = CONCAT(v, '+trigger');",
    );
    env.run(&["backup", "--db", "src"]).expect(0);
    db.sql(
        Some("src"),
        "SET SESSION binlog_format = STATEMENT; INSERT INTO t VALUES (1);",
    );
    db.sql(None, "UPDATE victim.t SET v = 'after'");
    env.run(&["binlog"]).expect(0);
    let at = next_second();
    env.run(&["binlog"]).expect(0);
    let r = restore_to(&env, "src", ["--to-time", &at], "src_copy", &["--yes"]);
    r.expect(1);
    assert!(
        r.stderr.contains("trigger `tr`")
            && r.stderr.contains("victim")
            && r.stderr.contains("dropped"),
        "{}",
        r.stderr
    );
    assert_eq!(db.sql(None, "SELECT v FROM victim.t").trim(), "after");
    assert!(!database_exists(db, "src_copy"));
}

/// What a replay would run beyond the database without naming another is refused, and nothing
/// is replayed (a twelfth review's three): a function of the dump that a statement-logged write
/// calls and that writes elsewhere; a trigger the binary log creates whose body sets a global
/// variable; a table the binary log creates with its files in a directory of its choosing.
#[test]
fn a_replay_runs_nothing_that_reaches_beyond_the_database() {
    let p = Private::start("pitr-reach");
    let db = &p.db;
    let env = Env::new();
    config(&env, db, "");
    let outside = env.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    db.sql(
        None,
        "CREATE DATABASE fa; CREATE TABLE fa.t (id INT PRIMARY KEY);
         CREATE DATABASE tb; CREATE TABLE tb.t (id INT PRIMARY KEY);
         CREATE DATABASE dc; CREATE TABLE dc.t (id INT PRIMARY KEY);
         CREATE DATABASE victim; CREATE TABLE victim.t (v VARCHAR(40));
         DELIMITER ;;
         CREATE FUNCTION fa.f() RETURNS int DETERMINISTIC MODIFIES SQL DATA BEGIN INSERT INTO victim.t VALUES ('f'); RETURN 1; END;;
         DELIMITER ;",
    );
    for d in ["fa", "tb", "dc"] {
        env.run(&["backup", "--db", d]).expect(0);
    }
    db.sql(
        Some("fa"),
        "SET SESSION binlog_format = STATEMENT; INSERT INTO t VALUES (f());",
    );
    db.sql(
        Some("tb"),
        "CREATE TRIGGER trg BEFORE INSERT ON t FOR EACH ROW SET GLOBAL max_connections = 321;",
    );
    db.sql(
        Some("dc"),
        &format!(
            "CREATE TABLE dd (a int) ENGINE=InnoDB DATA DIRECTORY='{}';",
            outside.display()
        ),
    );
    db.sql(None, "DELETE FROM victim.t; DROP TABLE dc.dd");
    for f in std::fs::read_dir(&outside).unwrap() {
        let f = f.unwrap().path();
        if f.is_dir() {
            std::fs::remove_dir_all(f).unwrap();
        } else {
            std::fs::remove_file(f).unwrap();
        }
    }
    env.run(&["binlog"]).expect(0);
    let at = next_second();
    env.run(&["binlog"]).expect(0);
    // Refused while the replay is planned (exit 2, nothing restored), or once the dump is
    // restored and its routines read (exit 1, the database dropped).
    for (src, code, why) in [
        (
            "fa",
            1,
            "function `f` of the dump writes to database `victim`",
        ),
        ("tb", 2, "creates a trigger that sets a global variable"),
        ("dc", 2, "DATA DIRECTORY"),
    ] {
        let copy = format!("{src}_copy");
        let r = restore_to(&env, src, ["--to-time", &at], &copy, &["--yes"]);
        r.expect(code);
        assert!(r.stderr.contains(why), "{src}: {}", r.stderr);
        assert!(!database_exists(db, &copy), "{src}");
    }
    assert_eq!(db.sql(None, "SELECT COUNT(*) FROM victim.t").trim(), "0");
    assert_eq!(
        db.sql(None, "SELECT @@global.max_connections").trim(),
        "151"
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    // A catch-up time in the future (a clock ahead, an edited state) covers nothing the
    // segments do not hold: a row written after the last archive run is not claimed.
    db.sql(
        None,
        "CREATE DATABASE fut; CREATE TABLE fut.t (id INT PRIMARY KEY);",
    );
    env.run(&["backup", "--db", "fut"]).expect(0);
    db.sql(Some("fut"), "INSERT INTO t VALUES (1);");
    env.run(&["binlog"]).expect(0);
    db.sql(Some("fut"), "INSERT INTO t VALUES (2);");
    let after = next_second();
    let state = env.storage().join("main/index/binlog.json");
    let original_state = std::fs::read(&state).unwrap();
    let mut doc: serde_json::Value = serde_json::from_slice(&original_state).unwrap();
    doc["caught_up_at"] = "2099-01-01T00:00:00Z".into();
    std::fs::write(&state, serde_json::to_vec(&doc).unwrap()).unwrap();
    let r = restore_to(&env, "fut", ["--to-time", &after], "fut_copy", &["--yes"]);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("cannot restore to"), "{}", r.stderr);
    assert!(!database_exists(db, "fut_copy"));
    // A segment record whose range lies (an edited index: it claims the file from its start)
    // is caught by its events, before anything is replayed (a fourteenth review's: events
    // were left out, exit 0).
    std::fs::write(&state, original_state).unwrap();
    db.sql(Some("fut"), "INSERT INTO t VALUES (3);");
    env.run(&["binlog"]).expect(0);
    let after = next_second();
    env.run(&["binlog"]).expect(0);
    let month = std::fs::read_dir(env.storage().join("main/index/db/%2Abinlog"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&month).unwrap()).unwrap();
    // One segment claims to end where the next one ends: the next one's events would be
    // skipped, as the review did it.
    let records = doc["backups"].as_array_mut().unwrap();
    let mut by_end: Vec<usize> = (0..records.len())
        .filter(|&i| records[i]["segment"]["end"].is_u64())
        .collect();
    by_end.sort_by_key(|&i| records[i]["segment"]["end"].as_u64());
    let (second, last) = (by_end[by_end.len() - 2], by_end[by_end.len() - 1]);
    let end = records[last]["segment"]["end"].clone();
    records[second]["segment"]["end"] = end;
    std::fs::write(&month, serde_json::to_vec(&doc).unwrap()).unwrap();
    let r = restore_to(&env, "fut", ["--to-time", &after], "fut_copy", &["--yes"]);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("does not match its events"),
        "{}",
        r.stderr
    );
    assert!(!database_exists(db, "fut_copy"));
}

fn dump_time(r: &Record) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(&r.started_at)
        .unwrap()
        .to_utc()
}

/// Issue 14: an archive run killed mid-transfer loses nothing and records nothing twice: the
/// next run continues from the last recorded segment, and the segments of each file, in
/// order, are the server's file byte for byte (as `mariadb-binlog --raw` copies it). Also:
/// `check` fails naming a row image that cannot replay, and the archive's metrics and the
/// report's achieved RPO follow the runs.
#[test]
fn a_killed_archive_run_loses_and_duplicates_nothing() {
    let p = Private::start("pitr-kill");
    let db = &p.db;
    let env = Env::new();
    let instance = format!("it-{:08x}", fastrand::u32(..));
    config(
        &env,
        db,
        &format!(
            "metrics:\n  pushgateway: {}\n  instance: {instance}\n",
            pushgateway()
        ),
    );
    db.sql(None, "CREATE DATABASE big; CREATE TABLE big.t (id INT PRIMARY KEY, pad VARCHAR(255)) ENGINE=InnoDB;");
    env.run(&["check", "--no-push"]).expect(0);
    db.sql(None, "SET GLOBAL binlog_row_image = MINIMAL");
    let r = env.run(&["check", "--no-push"]);
    db.sql(None, "SET GLOBAL binlog_row_image = FULL");
    r.expect(1);
    assert!(
        r.stdout.contains("binlog_row_image is MINIMAL"),
        "{}",
        r.stdout
    );
    let started = chrono::Utc::now().timestamp() as f64;
    env.run(&["binlog"]).expect(0);
    let m = scrape(&instance);
    let caught_up = sample(
        &m,
        "sqlguard_binlog_caught_up_timestamp_seconds",
        &[("server", "main")],
    )
    .expect("caught-up time pushed");
    assert!(caught_up >= started - 1.0, "{caught_up} < {started}");
    assert_eq!(
        sample(&m, "sqlguard_binlog_last_status", &[("server", "main")]),
        Some(1.0)
    );
    let report: serde_json::Value =
        serde_json::from_str(&env.run(&["report", "--json"]).expect(0).stdout).unwrap();
    let pit = &report["point_in_time"][0];
    assert_eq!(pit["server"], "main");
    assert!(
        pit["rpo_seconds"].as_i64().unwrap() < 60
            && pit["late"] == false
            && pit.get("last_error").is_none(),
        "{pit}"
    );
    // The HTML page draws the same row, without a script error.
    let page = env.path("report.html");
    env.run(&["report", "--format", "html", "-o", page.to_str().unwrap()])
        .expect(0);
    let b = crate::browser::Browser::start();
    b.goto(&format!("file://{}", page.display()));
    b.wait_ready();
    assert_eq!(
        b.js("return document.querySelectorAll('#pitr tbody tr').length;"),
        1
    );
    assert_eq!(
        b.js("return document.querySelector('#pitr tbody tr td').textContent;"),
        "main"
    );
    assert!(b.console_errors().is_empty(), "{:?}", b.console_errors());
    db.sql(
        Some("big"),
        "INSERT INTO t SELECT seq, REPEAT('x', 250) FROM seq_1_to_120000",
    );
    // About 33 MiB of events, shipped at 40 ms per MiB: killed in the middle.
    let mut child = env
        .cmd()
        .arg("binlog")
        .env("SQLGUARD_TEST_COMPRESS_DELAY_MS", "40")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before the kill"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let before = segments(&env).len();
    db.sql(Some("big"), "INSERT INTO t VALUES (0, 'after the kill'); FLUSH BINARY LOGS; INSERT INTO t VALUES (-1, 'next file')");
    env.run(&["binlog"]).expect(0);
    let segs = segments(&env);
    assert!(segs.len() > before, "the next run stored nothing");
    let mut by_file: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
    for s in &segs {
        by_file
            .entry(
                s.segment.as_ref().unwrap()["file"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
            .or_default()
            .push(s);
    }
    let cnf = db.dir.join("client.cnf");
    for (file, parts) in by_file {
        let mut at = parts[0].segment.as_ref().unwrap()["start"]
            .as_u64()
            .unwrap();
        let mut bytes = Vec::new();
        for s in &parts {
            let seg = s.segment.as_ref().unwrap();
            assert_eq!(
                seg["start"].as_u64().unwrap(),
                at,
                "{file}: a hole or an overlap at {at}"
            );
            at = seg["end"].as_u64().unwrap();
            bytes.extend(env.read_object(s.key.as_deref().unwrap(), "zstd"));
        }
        if parts[0].segment.as_ref().unwrap()["start"] != 0 {
            continue;
        }
        let copy = raw_copy(&cnf, db, &file, &env.path("raw"));
        assert_eq!(bytes.len() as u64, at);
        assert!(
            copy.starts_with(&bytes),
            "{file}: the archived bytes differ from the server's file"
        );
    }
}

/// The server's binary log `file` as `mariadb-binlog --read-from-remote-server --raw` copies it.
fn raw_copy(cnf: &Path, db: &MariaDb, file: &str, dir: &Path) -> Vec<u8> {
    std::fs::create_dir_all(dir).unwrap();
    let out = Command::new("mariadb-binlog")
        .arg(format!("--defaults-file={}", cnf.display()))
        .args(["--read-from-remote-server", "--raw", "--host=127.0.0.1"])
        .arg(format!("--port={}", db.port))
        .arg(format!("--result-file={}/", dir.display()))
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(dir.join(file)).unwrap()
}

/// Issue 15 item 4: with `encryption`, binary log segments are encrypted like dumps (`.age`,
/// readable with the stock `age` CLI), stored on local and S3 storage alike, and a restore to a
/// time from the S3 copies decrypts and authenticates each one before anything is written.
#[test]
fn encrypted_segments_restore_to_a_time() {
    crate::encrypt::require_age();
    let p = Private::start("pitr-age");
    let db = &p.db;
    let env = Env::new();
    let (identity, public) = crate::encrypt::keygen(env.dir.path(), "key.txt");
    let s3 = s3();
    let bucket = s3.bucket("pitr");
    config(
        &env,
        db,
        &format!(
            "{}encryption:\n  age_recipients: [\"{public}\"]\n  age_identity_file: {}\n",
            s3.storage_yaml("offsite", &bucket),
            identity.display()
        ),
    );
    db.sql(None, "CREATE DATABASE crm");
    db.sql(
        Some("crm"),
        "CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(40)) ENGINE=InnoDB;
         INSERT INTO people SELECT seq, CONCAT('p', seq) FROM seq_1_to_100;",
    );
    env.run(&["backup", "--type", "daily", "--db", "crm"])
        .expect(0);
    db.sql(
        Some("crm"),
        "UPDATE people SET name = 'renamed' WHERE id < 10; FLUSH BINARY LOGS; DELETE FROM people WHERE id > 90;",
    );
    let t1 = next_second();
    let at_t1 = db.checksums("crm");
    std::thread::sleep(Duration::from_millis(1100));
    db.sql(Some("crm"), "TRUNCATE TABLE people");
    env.run(&["binlog"]).expect(0);
    let segs = segments(&env);
    assert!(!segs.is_empty());
    assert!(
        s3.keys(&bucket)
            .iter()
            .any(|k| k.ends_with(".binlog.zst.age")),
        "{:?}",
        s3.keys(&bucket)
    );
    for s in &segs {
        let key = s.key.as_deref().unwrap();
        assert!(key.ends_with(".binlog.zst.age"), "{key}");
        assert!(s.encryption.is_some(), "{key}");
    }
    // The stock CLI decrypts the first segment of a file to a binary log's magic.
    let first = segs
        .iter()
        .find(|s| s.segment.as_ref().unwrap()["start"] == 0)
        .unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "age -d -i '{}' '{}' | zstd -dc | head -c 4 | od -An -tx1",
            identity.display(),
            env.storage().join(first.key.as_deref().unwrap()).display()
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "fe 62 69 6e");
    let r = restore_to(
        &env,
        "crm",
        ["--to-time", &t1],
        "crm_t1",
        &["--storage", "offsite", "--yes"],
    );
    r.expect(0);
    assert_eq!(db.checksums("crm_t1"), at_t1, "{}", r.stderr);
}

/// Waits until `replica` has applied everything `primary` logged.
fn wait_replicated(primary: &MariaDb, replica: &MariaDb) {
    let want = primary.sql(None, "SELECT @@gtid_binlog_pos");
    for _ in 0..200 {
        if replica.sql(None, "SELECT @@gtid_slave_pos") == want {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "the replica did not catch up with {want}: {}",
        replica.sql(None, "SHOW SLAVE STATUS")
    );
}

/// Issue 14: after a failover to a promoted replica, `sqlguard binlog` continues the archive by
/// GTID on the replica's own binary log (other positions, the same file names), from the first
/// transaction the archive lacks, so transactions the primary logged but the archive never
/// fetched are taken from the replica. `restore --to-time` from a dump of the old primary
/// crosses over to exactly the state at that second. A server lacking archived transactions
/// (the old primary, back with an older history) is refused loudly, not mixed in.
#[test]
fn after_a_failover_the_archive_continues_on_the_promoted_replica_by_gtid() {
    let a = Private::start("pitr-primary");
    let b = Private::start("pitr-replica");
    let (pa, pb) = (&a.db, &b.db);
    // One replication history from here on (each server's set-up statements are its own).
    pa.sql(None, "RESET MASTER");
    pb.sql(None, "RESET MASTER; SET GLOBAL gtid_slave_pos = ''");
    pb.sql(
        None,
        &format!(
            "CHANGE MASTER TO master_host = '127.0.0.1', master_port = {}, master_user = 'root', master_password = '{}', master_use_gtid = slave_pos; START SLAVE",
            pa.port,
            pa.password()
        ),
    );
    let env = Env::new();
    config(&env, pa, "");
    pa.sql(None, "CREATE DATABASE shop");
    pa.sql(
        Some("shop"),
        "CREATE TABLE shop.items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40), qty INT, pic BLOB) ENGINE=InnoDB;
         INSERT INTO shop.items (name, qty, pic) SELECT CONCAT('item', seq), seq, RANDOM_BYTES(64) FROM seq_1_to_300;",
    );
    env.run(&["backup", "--type", "daily", "--db", "shop"])
        .expect(0);
    // Archived from the primary.
    pa.sql(
        Some("shop"),
        "UPDATE items SET qty = qty * 2 WHERE id <= 100; FLUSH BINARY LOGS; DELETE FROM items WHERE id > 290;",
    );
    env.run(&["binlog"]).expect(0);
    // Logged by the primary and replicated, never archived from it: the primary dies.
    pa.sql(
        Some("shop"),
        "INSERT INTO items (name, qty) VALUES ('unarchived', 7); CREATE TABLE notes (k INT PRIMARY KEY, v TEXT);",
    );
    wait_replicated(pa, pb);
    assert!(stop_server(&pa.dir), "stopping the primary");
    // The replica is promoted and the config points at it.
    pb.sql(None, "STOP SLAVE; RESET SLAVE ALL");
    config(&env, pb, "");
    pb.sql(
        Some("shop"),
        "INSERT INTO notes VALUES (1, 'written on the new primary'); FLUSH BINARY LOGS; UPDATE items SET name = 'renamed' WHERE id = 5;",
    );
    let t1 = next_second();
    let at_t1 = pb.checksums("shop");
    std::thread::sleep(Duration::from_millis(1100));
    pb.sql(Some("shop"), "DROP TABLE items");

    let r = env.run(&["binlog"]);
    r.expect(0);
    assert!(
        r.stderr
            .contains("a failover; the archive continues by GTID"),
        "{}",
        r.stderr
    );
    let segs = segments(&env);
    let lineage = |r: &Record| r.segment.as_ref().unwrap()["lineage"].as_u64().unwrap_or(0);
    let links: Vec<&Record> = segs
        .iter()
        .filter(|r| r.segment.as_ref().unwrap().get("continues").is_some())
        .collect();
    assert_eq!(
        links.len(),
        1,
        "one segment links the two servers' archives"
    );
    let link = links[0].segment.as_ref().unwrap();
    assert_eq!(lineage(links[0]), 1, "{link}");
    assert_eq!(
        link["start"], 0,
        "from the file's start, for its header: {link}"
    );
    assert!(link["continues"]["at"].as_u64().unwrap() > 0, "{link}");
    assert!(
        segs.iter().any(|r| lineage(r) == 0),
        "the primary's segments stay"
    );

    // From the old primary's dump, across the failover, to T1 on the new primary.
    let r = restore_to(&env, "shop", ["--to-time", &t1], "shop_t1", &["--yes"]);
    r.expect(0);
    assert_eq!(pb.checksums("shop_t1"), at_t1, "{}", r.stderr);
    assert_eq!(
        pb.sql(
            None,
            "SELECT COUNT(*) FROM shop_t1.items WHERE name = 'unarchived'"
        )
        .trim(),
        "1",
        "the transaction the archive never fetched from the old primary came from the replica"
    );

    // The same by hand, as the README says: the old server's files from the dump's position,
    // then the promoted server's from the link's `at`, through one client session.
    let dump = env.list(&["--db", "shop"]).backups[0].clone();
    let coords = dump.binlog.clone().unwrap();
    let dir = env.path("by-hand");
    std::fs::create_dir_all(&dir).unwrap();
    let mut files: BTreeMap<(u64, String), Vec<(u64, String)>> = BTreeMap::new();
    for r in &segs {
        let seg = r.segment.as_ref().unwrap();
        let f = seg["file"].as_str().unwrap().to_string();
        if lineage(r) == 1 || f.as_str() >= coords["file"].as_str().unwrap() {
            files
                .entry((lineage(r), f))
                .or_default()
                .push((seg["start"].as_u64().unwrap(), r.key.clone().unwrap()));
        }
    }
    let mut script = String::from("set -euo pipefail\ncd \"$STORE\"\n");
    let mut names: [Vec<String>; 2] = Default::default();
    for ((l, f), keys) in &mut files {
        keys.sort();
        let keys: Vec<&str> = keys.iter().map(|(_, k)| k.as_str()).collect();
        script.push_str(&format!("zstd -dc {} > \"$OUT/{l}-{f}\"\n", keys.join(" ")));
        names[*l as usize].push(format!("\"$OUT/{l}-{f}\""));
    }
    let binlog = "TZ=UTC mariadb-binlog --skip-gtid-strict-mode --database=shop --rewrite-db='shop->shop_hand'";
    script.push_str(&format!(
        "mariadb --defaults-file=\"$CNF\" -e 'CREATE DATABASE shop_hand'\n\
         zstd -dc {key} | mariadb --defaults-file=\"$CNF\" shop_hand\n\
         {{ {binlog} --start-position={pos} {old}; {binlog} --start-position={at} --stop-datetime='{stop}' {new}; }} \
         | {DROP_GTID_LINES} \
         | mariadb --defaults-file=\"$CNF\" shop_hand\n",
        key = dump.key.clone().unwrap(),
        pos = coords["position"],
        at = link["continues"]["at"],
        stop = t1.replace('T', " ").trim_end_matches('Z'),
        old = names[0].join(" "),
        new = names[1].join(" "),
    ));
    by_hand(&env, pb, &dir, &script, &at_t1);

    // The old primary comes back with a shorter history: refused, and said so.
    start_service("mariadb.sh", &pa.dir, pa.port);
    config(&env, pa, "");
    let r = env.run(&["binlog"]);
    r.expect(1);
    assert!(
        r.stderr
            .contains("the archive holds transactions this server never had"),
        "{}",
        r.stderr
    );
    assert_eq!(
        segments(&env).len(),
        segs.len(),
        "nothing was archived from the other history"
    );
}

/// A storage that missed part of an archive run (its write failed while the other storage's
/// went on, or a storage was left out of a run) is caught up by the next run: the segments it
/// misses are copied from a storage that holds them, under the same ids, so a restore from it
/// alone reaches the end, and the storages meet again however busy the server is.
#[test]
fn a_storage_that_missed_a_run_catches_up_from_where_it_stands() {
    let p = Private::start("pitr-lag");
    let db = &p.db;
    let env = Env::new();
    let second = env.path("second");
    let write = |binlog_storages: &str| two_storages(&env, db, &second, binlog_storages);
    archived_on_two(&env, db, &second, "lag");
    let ids = |storage: &str| segment_ids(&env, storage);
    // A run that reaches only `local`, as a storage left out of it.
    db.sql(None, "INSERT INTO lag.t VALUES (2); FLUSH BINARY LOGS;");
    write("local");
    env.run(&["binlog"]).expect(0);
    // A run whose writes to `second` fail (its segment directory is a file) while `local`'s
    // go on, across two binary log files.
    write("local, second");
    db.sql(
        None,
        "INSERT INTO lag.t VALUES (3); FLUSH BINARY LOGS; INSERT INTO lag.t VALUES (4);",
    );
    let key = env
        .list(&["--type", "binlog", "--storage", "second"])
        .backups
        .into_iter()
        .find_map(|r| r.key)
        .unwrap();
    let dir = second.join(&key).parent().unwrap().to_path_buf();
    let aside = dir.with_extension("aside");
    std::fs::rename(&dir, &aside).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();
    env.run(&["binlog"]).expect(1);
    std::fs::remove_file(&dir).unwrap();
    std::fs::rename(&aside, &dir).unwrap();
    db.sql(None, "INSERT INTO lag.t VALUES (5);");
    let to = next_second();
    let r = env.run(&["binlog"]);
    r.expect(0);
    assert!(r.stderr.contains("bringing it up to date"), "{}", r.stderr);
    // Caught up: the same segments under the same ids, and the next run has nothing to say.
    assert_eq!(ids("second"), ids("local"));
    let r = env.run(&["binlog"]);
    r.expect(0);
    assert!(!r.stderr.contains("behind"), "{}", r.stderr);
    let r = restore_to(
        &env,
        "lag",
        ["--to-time", &to],
        "lag_from_second",
        &["--storage", "second"],
    );
    r.expect(0);
    assert_eq!(rows_of(db, "lag_from_second"), "1,2,3,4,5");
}

/// Storages whose segments are cut at different places (each archived alone for a while) meet
/// again: the range where none of the furthest storage's segments continues the other's is
/// read from the server for it alone, ending exactly at their boundary, and the rest copied; a
/// segment copy a killed run left at its key is adopted; a storage whose index cannot be read
/// is left out of a run without stopping the archive on the others.
#[test]
fn storages_cut_at_different_places_meet_again() {
    let p = Private::start("pitr-meet");
    let db = &p.db;
    let env = Env::new();
    let second = env.path("second");
    let write = |binlog_storages: &str| two_storages(&env, db, &second, binlog_storages);
    archived_on_two(&env, db, &second, "meet");
    // Each storage archived alone once, at different moments: their segments straddle.
    db.sql(None, "INSERT INTO meet.t VALUES (2);");
    write("second");
    env.run(&["binlog"]).expect(0);
    db.sql(None, "INSERT INTO meet.t VALUES (3);");
    write("local");
    env.run(&["binlog"]).expect(0);
    db.sql(None, "INSERT INTO meet.t VALUES (4);");
    write("local, second");
    let r = env.run(&["binlog"]);
    r.expect(0);
    assert!(r.stderr.contains("bringing it up to date"), "{}", r.stderr);
    let first = r.stderr.clone();
    let r = env.run(&["-v", "binlog"]);
    r.expect(0);
    assert!(
        !r.stderr.contains("behind"),
        "they did not meet: {first}\n---\n{}",
        r.stderr
    );
    // Contiguous on `second` alone: a restore from it to the end has every row.
    db.sql(None, "INSERT INTO meet.t VALUES (5);");
    let to = next_second();
    env.run(&["binlog"]).expect(0);
    let r = restore_to(
        &env,
        "meet",
        ["--to-time", &to],
        "meet_second",
        &["--storage", "second"],
    );
    r.expect(0);
    assert_eq!(rows_of(db, "meet_second"), "1,2,3,4,5");

    // A copy left at its key by a killed catch-up (object, no record) is adopted.
    write("local");
    db.sql(None, "INSERT INTO meet.t VALUES (6);");
    env.run(&["binlog"]).expect(0);
    let newest = segments(&env).pop().unwrap();
    let key = newest.key.clone().unwrap();
    std::fs::create_dir_all(second.join(&key).parent().unwrap()).unwrap();
    std::fs::copy(env.storage().join(&key), second.join(&key)).unwrap();
    write("local, second");
    env.run(&["binlog"]).expect(0);
    let on_second: Vec<String> = env
        .list(&["--type", "binlog", "--storage", "second"])
        .backups
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert!(on_second.contains(&newest.id), "{on_second:?}");

    // A storage whose archive index cannot be read is left out; the other goes on.
    let month = std::fs::read_dir(second.join("main/index/db/%2Abinlog"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&month, b"{ damaged").unwrap();
    std::fs::write(second.join("main/index/summary.json"), b"{ damaged").unwrap();
    let before = segments(&env).len();
    db.sql(None, "INSERT INTO meet.t VALUES (7); FLUSH BINARY LOGS;");
    let r = env.run(&["binlog"]);
    r.expect(1);
    assert!(r.stderr.contains("left out of this run"), "{}", r.stderr);
    assert!(
        segments(&env).len() > before,
        "the other storage was not archived"
    );
}

/// A binlog run that cannot open its storage pushes its failure and leaves the caught-up time
/// of the last good run in the Pushgateway, so that the archive-behind alert keeps its input.
#[test]
fn a_binlog_run_without_its_storage_keeps_the_caught_up_time_it_cannot_read() {
    let p = Private::start("pitr-metrics");
    let db = &p.db;
    let env = Env::new();
    let instance = format!("it-{:08x}", fastrand::u32(..));
    let extra = format!(
        "metrics:\n  pushgateway: {}\n  instance: {instance}\n",
        pushgateway()
    );
    config(&env, db, &extra);
    db.sql(
        None,
        "CREATE DATABASE m; CREATE TABLE m.t (id INT PRIMARY KEY); INSERT INTO m.t VALUES (1);",
    );
    env.run(&["backup", "--db", "m"]).expect(0);
    env.run(&["binlog"]).expect(0);
    db.sql(None, "INSERT INTO m.t VALUES (2); FLUSH BINARY LOGS;");
    env.run(&["binlog"]).expect(0);
    let caught_up = |m: &[crate::support::Sample]| {
        sample(
            m,
            "sqlguard_binlog_caught_up_timestamp_seconds",
            &[("server", "main")],
        )
    };
    let m = scrape(&instance);
    let before = caught_up(&m).expect("caught-up time pushed");
    // The run's own status shares the server's binlog group, and erases nothing of it.
    let run_status = |m: &[crate::support::Sample], command: &str| {
        sample(
            m,
            "sqlguard_run_last_status",
            &[("command", command), ("server", "main")],
        )
    };
    assert_eq!(run_status(&m, "binlog"), Some(1.0));
    // An older segment damaged on disk: verify says so, although the newest verified segment,
    // which `sqlguard_verify_last_status` speaks for, is intact.
    let segs = segments(&env);
    assert!(segs.len() >= 2, "{segs:?}");
    damage(&env.storage().join(segs[0].key.as_ref().unwrap()));
    env.run(&["verify", "--sample", "100", "--type", "binlog"])
        .expect(1);
    let m = scrape(&instance);
    let l = [("type", "binlog"), ("storage", "local"), ("server", "main")];
    assert_eq!(
        sample(&m, "sqlguard_verify_failed_copies", &l),
        Some(1.0),
        "the damaged segment is counted: {m:?}"
    );
    assert_eq!(sample(&m, "sqlguard_verify_last_status", &l), Some(1.0));
    assert_eq!(run_status(&m, "verify"), Some(0.0));
    assert_eq!(caught_up(&m), Some(before), "verify erased the archive's");
    // The storage's path becomes a file: nothing can be opened there.
    let blocked = env.path("blocked");
    std::fs::write(&blocked, b"a file").unwrap();
    env.edit_config(
        &format!("path: {}", env.storage().display()),
        &format!("path: {}/x", blocked.display()),
    );
    env.run(&["binlog"]).expect(1);
    let m = scrape(&instance);
    assert_eq!(
        sample(&m, "sqlguard_binlog_last_status", &[("server", "main")]),
        Some(0.0)
    );
    assert_eq!(run_status(&m, "binlog"), Some(0.0));
    assert_eq!(caught_up(&m), Some(before));
}

/// A segment a lagging storage misses, whose only other copy is damaged, is read again from the
/// server (which still has the file) for that storage alone: it catches up, and a restore from
/// it alone has every row. The damaged copy is named.
#[test]
fn a_segment_no_storage_holds_intact_is_read_again_from_the_server() {
    let p = Private::start("pitr-heal");
    let db = &p.db;
    let env = Env::new();
    let second = env.path("second");
    let write = |binlog_storages: &str| two_storages(&env, db, &second, binlog_storages);
    archived_on_two(&env, db, &second, "heal");
    // Damages on `local` every copy `second` does not hold; how many.
    let damage_what_second_misses = || {
        let held = segment_ids(&env, "second");
        let missed: Vec<Record> = env
            .list(&["--type", "binlog", "--storage", "local"])
            .backups
            .into_iter()
            .filter(|r| r.status == "success" && !held.contains(&r.id))
            .collect();
        for r in &missed {
            damage(&env.storage().join(r.key.as_ref().unwrap()));
        }
        missed.len()
    };
    // A run that reaches only `local`.
    db.sql(None, "INSERT INTO heal.t VALUES (2);");
    write("local");
    env.run(&["binlog"]).expect(0);
    assert!(damage_what_second_misses() > 0);
    write("local, second");
    db.sql(None, "INSERT INTO heal.t VALUES (3);");
    let to = next_second();
    let r = env.run(&["binlog"]);
    r.expect(0);
    assert!(
        r.stderr.contains("does not match its record")
            && r.stderr.contains("from the server instead"),
        "{}",
        r.stderr
    );
    let r = restore_to(
        &env,
        "heal",
        ["--to-time", &to],
        "heal_from_second",
        &["--storage", "second"],
    );
    r.expect(0);
    assert_eq!(rows_of(db, "heal_from_second"), "1,2,3");

    // Missed again, damaged again, and this time its file is purged from the server: the hole
    // is said once (exit 1), and the storage goes on after it instead of staying behind.
    write("local");
    // Two flushes: the file written to is then checkpointed, and a purge takes it.
    db.sql(
        None,
        "INSERT INTO heal.t VALUES (4); FLUSH BINARY LOGS; FLUSH BINARY LOGS;",
    );
    env.run(&["binlog"]).expect(0);
    damage_what_second_misses();
    let current = db.sql(None, "SHOW MASTER STATUS");
    let current = current.split_whitespace().next().unwrap().to_string();
    // A file a binlog dump still reads (the run's connection may linger a moment) is not purged:
    // purge until the server lists nothing older.
    let oldest = || {
        db.sql(None, "SHOW BINARY LOGS")
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    for _ in 0..100 {
        db.sql(None, &format!("PURGE BINARY LOGS TO '{current}'"));
        if oldest() == current {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(oldest(), current, "the server kept the files to purge");
    write("local, second");
    db.sql(None, "INSERT INTO heal.t VALUES (5);");
    let r = env.run(&["binlog"]);
    r.expect(1);
    assert!(
        r.stderr.contains("for good") && r.stderr.contains("purged"),
        "{}",
        r.stderr
    );
    let r = env.run(&["binlog"]);
    r.expect(0);
    assert!(!r.stderr.contains("for good"), "{}", r.stderr);
    let newest = |storage: &str| {
        env.list(&["--type", "binlog", "--storage", storage])
            .backups
            .into_iter()
            .filter_map(|r| r.segment)
            .map(|g| {
                (
                    g["file"].as_str().unwrap().to_string(),
                    g["end"].as_u64().unwrap(),
                )
            })
            .max()
    };
    assert_eq!(newest("second"), newest("local"));
}

/// A copy that fails its checks on one storage is replaced by the same backup's copy on
/// another, each swap said: a plain restore, a fetch and a point-in-time restore (its dump and
/// every segment) all succeed from `second` when every copy on `local` is damaged. Pinned with
/// --storage local, nothing is read elsewhere and the restore fails, changing nothing.
#[test]
fn a_damaged_copy_is_replaced_by_another_storages_copy() {
    let p = Private::start("pitr-spare");
    let db = &p.db;
    let env = Env::new();
    let second = env.path("second");
    archived_on_two(&env, db, &second, "spare");
    db.sql(None, "INSERT INTO spare.t VALUES (2); FLUSH BINARY LOGS;");
    db.sql(None, "INSERT INTO spare.t VALUES (3);");
    env.run(&["binlog"]).expect(0);
    let to = next_second();
    db.sql(None, "INSERT INTO spare.t VALUES (4);");
    env.run(&["binlog"]).expect(0);
    let on_local = env.list(&["--storage", "local"]).backups;
    let dump = on_local
        .iter()
        .find(|r| r.database == "spare" && r.status == "success")
        .expect("the dump on local");
    let segs: Vec<Record> = env
        .list(&["--type", "binlog", "--storage", "local"])
        .backups
        .into_iter()
        .filter(|r| r.status == "success")
        .collect();
    assert!(segs.len() >= 2, "{segs:?}");
    for r in std::iter::once(dump).chain(&segs) {
        damage(&env.storage().join(r.key.as_ref().unwrap()));
    }
    let swapped = |stderr: &str| {
        stderr.contains("failed its checks")
            && stderr.contains("reading the copy on storage 'second' instead")
    };

    // The plan says which copy stands in.
    let r = env.run(&[
        "restore",
        &dump.id,
        "--to-server",
        "main",
        "--to-database",
        "plain_back",
        "--dry-run",
    ]);
    r.expect(0);
    assert!(
        r.stdout.contains("read the copy on 'second' instead"),
        "{}",
        r.stdout
    );
    // Pinned to the damaged storage: refused, nothing created.
    let r = env.run(&[
        "restore",
        &dump.id,
        "--storage",
        "local",
        "--to-server",
        "main",
        "--to-database",
        "plain_back",
    ]);
    r.expect(1);
    assert!(
        r.stderr.contains("failed its checks") && !swapped(&r.stderr),
        "{}",
        r.stderr
    );
    assert!(!database_exists(db, "plain_back"));
    let r = env.run(&[
        "restore",
        &dump.id,
        "--to-server",
        "main",
        "--to-database",
        "plain_back",
    ]);
    r.expect(0);
    assert!(swapped(&r.stderr), "{}", r.stderr);
    assert_eq!(rows_of(db, "plain_back"), "1");

    let out = env.path("fetched.sql");
    let r = env.run(&[
        "fetch",
        &dump.id,
        "--decompress",
        "-o",
        out.to_str().unwrap(),
    ]);
    r.expect(0);
    assert!(swapped(&r.stderr), "{}", r.stderr);
    let sql = std::fs::read_to_string(&out).unwrap();
    assert!(sql.contains("INSERT INTO `t` VALUES\n(1)"), "{sql}");

    // A point-in-time restore pinned to `local`: its damaged segments are not read elsewhere.
    let r = restore_to(
        &env,
        "spare",
        ["--to-time", &to],
        "pitr_back",
        &["--storage", "local"],
    );
    r.expect(1);
    assert!(
        r.stderr.contains("failed its checks") && !swapped(&r.stderr),
        "{}",
        r.stderr
    );
    assert!(!database_exists(db, "pitr_back"));
    // Unpinned: the dump and each segment from `second`.
    let r = restore_to(
        &env,
        "spare",
        ["--to-time", &to],
        "pitr_back",
        &["--dry-run"],
    );
    r.expect(0);
    assert!(
        r.stdout.contains("have a copy on another storage"),
        "{}",
        r.stdout
    );
    let r = restore_to(&env, "spare", ["--to-time", &to], "pitr_back", &[]);
    r.expect(0);
    assert!(
        r.stderr
            .matches("reading the copy on storage 'second' instead")
            .count()
            >= 2,
        "the dump's swap and the segments' are said: {}",
        r.stderr
    );
    assert_eq!(rows_of(db, "pitr_back"), "1,2,3");
}

/// A storage added to the archive empty, whose first segments have no intact copy anywhere, gets
/// them read from the server (which still has the files) instead of staying empty run after
/// run; a point-in-time restore from it alone then has every row.
#[test]
fn an_empty_storage_gets_what_no_storage_holds_intact_from_the_server() {
    let p = Private::start("pitr-empty");
    let db = &p.db;
    let env = Env::new();
    let second = env.path("second");
    two_storages(&env, db, &second, "local");
    db.sql(
        None,
        "CREATE DATABASE fresh; CREATE TABLE fresh.t (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO fresh.t VALUES (1);",
    );
    env.run(&["backup", "--db", "fresh"]).expect(0);
    env.run(&["binlog"]).expect(0);
    db.sql(None, "INSERT INTO fresh.t VALUES (2); FLUSH BINARY LOGS;");
    db.sql(None, "INSERT INTO fresh.t VALUES (3);");
    let then = next_second();
    env.run(&["binlog"]).expect(0);
    assert!(segment_ids(&env, "second").is_empty());
    let on_local = segment_ids(&env, "local");
    assert!(on_local.len() >= 2, "{on_local:?}");
    // `second` holds dumps but no archive: --storage second pins the dump alone.
    let r = restore_to(
        &env,
        "fresh",
        ["--to-time", &then],
        "fresh_plan",
        &["--storage", "second", "--dry-run"],
    );
    r.expect(0);
    for r in env
        .list(&["--type", "binlog", "--storage", "local"])
        .backups
    {
        damage(&env.storage().join(r.key.as_ref().unwrap()));
    }
    two_storages(&env, db, &second, "local, second");
    db.sql(None, "INSERT INTO fresh.t VALUES (4);");
    let to = next_second();
    let r = env.run(&["binlog"]);
    r.expect(0);
    assert!(r.stderr.contains("from the server instead"), "{}", r.stderr);
    assert!(!segment_ids(&env, "second").is_empty());
    let r = restore_to(
        &env,
        "fresh",
        ["--to-time", &to],
        "fresh_from_second",
        &["--storage", "second"],
    );
    r.expect(0);
    assert_eq!(rows_of(db, "fresh_from_second"), "1,2,3,4");
}

/// RESET MASTER, then enough rotations that the file the archive reads on exists again: its name
/// continues the archive, its content does not. The run fails naming the reset and records
/// nothing of the new history (which would hide the lost files behind a chain that looks whole).
#[test]
fn a_reset_binary_log_whose_names_run_on_is_not_taken_for_a_continuation() {
    let p = Private::start("pitr-reset");
    let db = &p.db;
    let env = Env::new();
    config(&env, db, "");
    db.sql(
        None,
        "CREATE DATABASE rst; CREATE TABLE rst.t (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO rst.t VALUES (1);",
    );
    env.run(&["backup", "--db", "rst"]).expect(0);
    for i in 2..6 {
        db.sql(None, &format!("INSERT INTO rst.t VALUES ({i});"));
    }
    db.sql(None, "FLUSH BINARY LOGS;");
    env.run(&["binlog"]).expect(0);
    let before = segment_ids(&env, "local");
    // First an account that may list the binary logs but not read them: the tool's own
    // complaint is said, and no reset is suggested for what is a missing privilege.
    db.sql(
        None,
        "INSERT INTO rst.t VALUES (100); CREATE USER nolog@'127.0.0.1' IDENTIFIED BY 'nolog-pw'; GRANT BINLOG MONITOR, SELECT ON *.* TO nolog@'127.0.0.1';",
    );
    let pw = env.path("nolog-pw");
    std::fs::write(&pw, "nolog-pw").unwrap();
    let root = std::fs::read_to_string(env.config()).unwrap();
    env.edit_config(
        &format!(
            "user: root\n    password_file: {}",
            db.password_file().display()
        ),
        &format!("user: nolog\n    password_file: {}", pw.display()),
    );
    let r = env.run(&["binlog"]);
    std::fs::write(env.config(), root).unwrap();
    r.expect(1);
    assert!(
        r.stderr.contains("REPLICATION SLAVE") && !r.stderr.contains("RESET MASTER"),
        "{}",
        r.stderr
    );
    assert_eq!(segment_ids(&env, "local"), before);
    let newest_file = |db: &MariaDb| {
        db.sql(None, "SHOW MASTER STATUS")
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let archived_up_to = newest_file(db);
    db.sql(None, "RESET MASTER;");
    // Rotate until the server's current file is the one the archive reads on.
    while newest_file(db) < archived_up_to {
        db.sql(None, "FLUSH BINARY LOGS;");
    }
    db.sql(None, "INSERT INTO rst.t VALUES (6);");
    let r = env.run(&["binlog"]);
    r.expect(1);
    assert!(
        r.stderr.contains("RESET MASTER") && r.stderr.contains("start a new archive"),
        "{}",
        r.stderr
    );
    assert_eq!(
        segment_ids(&env, "local"),
        before,
        "nothing of the new history is recorded"
    );
}

/// RESET MASTER, then the same statements again, so that the new file's events fall on the very
/// offsets of the archived one and its transactions soon number past the archived ones: by name,
/// offset and GTID the new file reads as a continuation. Its creation time (the format
/// description each read starts with) tells it apart: the run fails naming the reset and records
/// nothing, instead of splicing the new file's tail onto the old file's head.
#[test]
fn a_reset_binary_log_on_the_archived_offsets_is_told_by_its_creation_time() {
    let p = Private::start("pitr-reset-aligned");
    let db = &p.db;
    let env = Env::new();
    config(&env, db, "");
    // A database kept across the reset (made outside the binary log), which each history writes.
    db.sql(
        None,
        "SET sql_log_bin=0; CREATE DATABASE kept; CREATE TABLE kept.t (v INT) ENGINE=InnoDB; SET sql_log_bin=1;",
    );
    // The same statements in the same order make events of the same sizes: only timestamps,
    // GTID sequence numbers and the one-digit value written to `kept` differ.
    let reset = "DROP DATABASE IF EXISTS al; RESET MASTER;";
    let history = |v: u8| {
        format!("CREATE DATABASE al; CREATE TABLE al.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB; INSERT INTO al.t (v) VALUES (7); INSERT INTO al.t (v) VALUES (7); INSERT INTO al.t (v) VALUES (7); INSERT INTO kept.t VALUES ({v});")
    };
    db.sql(None, reset);
    db.sql(None, &history(7));
    env.run(&["binlog"]).expect(0);
    let before = segment_ids(&env, "local");
    assert!(!before.is_empty());
    // The report says when the newest archive run failed, before the archive is late: here
    // a server out of reach (a wrong password), then a run that goes well clears it.
    let pit = |env: &Env| -> serde_json::Value {
        let r = env.run(&["report", "--json"]);
        serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap()["point_in_time"][0].clone()
    };
    let config_text = std::fs::read_to_string(env.config()).unwrap();
    let wrong = env.path("wrong-pw");
    std::fs::write(&wrong, "not-the-password").unwrap();
    env.edit_config(
        &db.password_file().display().to_string(),
        &wrong.display().to_string(),
    );
    env.run(&["binlog"]).expect(1);
    std::fs::write(env.config(), &config_text).unwrap();
    let p = pit(&env);
    assert!(
        p["late"] == false
            && p["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("Access denied")),
        "{p}"
    );
    let table = env.run(&["report"]).stdout;
    assert!(
        table.contains("FAILING") && table.contains("the last binary log archive run failed"),
        "{table}"
    );
    env.run(&["binlog"]).expect(0);
    let p = pit(&env);
    assert!(p.get("last_error").is_none() && p["late"] == false, "{p}");
    let status = |db: &MariaDb| db.sql(None, "SHOW MASTER STATUS");
    let archived = status(db);
    // A second later (a file's creation time is to the second), the same history again, with a
    // dump of `kept` taken just after the reset: its coordinates name the new file.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    db.sql(None, reset);
    env.run(&["backup", "--db", "kept"]).expect(0);
    db.sql(None, &history(8));
    assert_eq!(
        status(db),
        archived,
        "the new file ends where the archive stands"
    );
    // Standing exactly at its end, the archive still proves the file before it says caught up.
    let r = env.run(&["binlog"]);
    r.expect(1);
    assert!(r.stderr.contains("created at"), "{}", r.stderr);
    for _ in 0..4 {
        db.sql(None, "INSERT INTO al.t (v) VALUES (7);");
    }
    let r = env.run(&["binlog"]);
    r.expect(1);
    assert!(
        r.stderr.contains("created at")
            && r.stderr.contains("RESET MASTER")
            && r.stderr.contains("start a new archive"),
        "{}",
        r.stderr
    );
    assert_eq!(
        segment_ids(&env, "local"),
        before,
        "nothing of the new history is recorded"
    );
    let p = pit(&env);
    assert!(
        p["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("created at")),
        "{p}"
    );
    // The dump taken after the reset is never rolled forward with the archive's file of the
    // same name (it would add the old history's 7 to the dump's 7; the new history wrote 8).
    let position = archived
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(":");
    let r = restore_to(
        &env,
        "kept",
        ["--to-position", &position],
        "kept_r",
        &["--yes"],
    );
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("reset") && r.stderr.contains("does not hold the dump's file"),
        "{}",
        r.stderr
    );
    assert!(!database_exists(db, "kept_r"));
}

/// A hostile review's: the archive stood at a closed file (rotated between listing and reading,
/// so nothing of the next file was read), then RESET MASTER, a new history that numbered past
/// the archive's, and rotations up to the next file's name: its first transaction is new to
/// the archive, yet the file does not continue it. Its GTID list (the server's state when it
/// opened the file) tells: the run fails naming the reset and records nothing.
#[test]
fn a_next_file_after_a_reset_is_told_by_its_gtid_list() {
    let p = Private::start("pitr-reset-closed");
    let db = &p.db;
    let env = Env::new();
    // Client tools of a directory of their own: the binary log tool rotates the log just
    // before it reads while the flag file exists (a rotation between listing and reading).
    let tools = env.path("tools");
    std::fs::create_dir(&tools).unwrap();
    let flag = env.path("rotate-first");
    crate::support::write_script(&tools.join("mariadb"), "exec mariadb \"$@\"");
    crate::support::write_script(
        &tools.join("mariadb-binlog"),
        &format!(
            "if [ \"$1\" != --version ] && [ -f {} ]; then mariadb \"$1\" -e 'FLUSH BINARY LOGS'; fi\nexec mariadb-binlog \"$@\"",
            flag.display()
        ),
    );
    config(&env, db, "");
    env.edit_config(
        "    binlog: {window: 14d}\n",
        &format!(
            "    binlog: {{window: 14d}}\n    client_tool: {}\n",
            tools.join("mariadb").display()
        ),
    );
    db.sql(
        None,
        "RESET MASTER; CREATE DATABASE rc; CREATE TABLE rc.t (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO rc.t VALUES (1), (2);",
    );
    std::fs::write(&flag, "").unwrap();
    env.run(&["binlog"]).expect(0);
    std::fs::remove_file(&flag).unwrap();
    let before = segment_ids(&env, "local");
    let newest = env
        .list(&["--type", "binlog"])
        .backups
        .into_iter()
        .filter_map(|r| r.segment)
        .max_by_key(|s| {
            (
                s["file"].as_str().unwrap_or("").to_string(),
                s["end"].as_u64(),
            )
        })
        .unwrap();
    assert_eq!(newest["closed"], true, "{newest}");
    assert_eq!(newest["file"], "binlog.000001", "{newest}");
    // A new history that numbers past the archive's, rotated to the next file's name.
    let mut sql = String::from("RESET MASTER; DROP DATABASE rc; CREATE DATABASE rc; CREATE TABLE rc.t (id INT PRIMARY KEY) ENGINE=InnoDB;");
    for i in 10..20 {
        sql.push_str(&format!("INSERT INTO rc.t VALUES ({i});"));
    }
    sql.push_str("FLUSH BINARY LOGS; INSERT INTO rc.t VALUES (99);");
    db.sql(None, &sql);
    let r = env.run(&["binlog"]);
    r.expect(1);
    assert!(
        r.stderr.contains("does not continue the archive's end")
            && r.stderr.contains("start a new archive"),
        "{}",
        r.stderr
    );
    assert_eq!(
        segment_ids(&env, "local"),
        before,
        "nothing of the new history is recorded"
    );
}

/// A dump kept only for a person to look at (its object gone behind the index) is no base for
/// the point-in-time window: prune keeps the segments that the real base, the newest good dump
/// from before the window, rolls forward with, and a restore to a second before the gone dump
/// still works.
#[test]
fn a_dump_whose_object_is_gone_is_no_base_for_the_window() {
    let p = Private::start("pitrgone");
    let db = &p.db;
    let env = Env::new();
    config(
        &env,
        db,
        "backup_types:\n  daily:\n    retention: {keep_last: 1}\n",
    );
    env.edit_config("binlog: {window: 14d}", "binlog: {window: 3s}");
    let name = db.create_db("pitr_gone");
    db.sql(
        Some(&name),
        "CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO t VALUES (1);",
    );
    let daily = ["backup", "--type", "daily", "--db", &name];
    env.run(&daily).expect(0);
    db.sql(Some(&name), "INSERT INTO t VALUES (2);");
    let between = next_second();
    db.sql(None, "FLUSH BINARY LOGS");
    env.run(&["binlog"]).expect(0);
    env.run(&daily).expect(0);
    db.sql(Some(&name), "INSERT INTO t VALUES (3); FLUSH BINARY LOGS;");
    env.run(&["binlog"]).expect(0);
    std::thread::sleep(std::time::Duration::from_secs(4));
    env.run(&daily).expect(0);
    env.run(&["binlog"]).expect(0);
    let mut dumps: Vec<Record> = env
        .list(&["--db", &name])
        .backups
        .into_iter()
        .filter(|r| r.status == "success")
        .collect();
    dumps.sort_by(|a, b| (&a.started_at, &a.id).cmp(&(&b.started_at, &b.id)));
    assert_eq!(dumps.len(), 3);
    std::fs::remove_file(env.storage().join(dumps[1].key.as_ref().unwrap())).unwrap();
    let r = env.run(&["prune"]);
    r.expect(0);
    assert!(r.stderr.contains("is not on the storage"), "{}", r.stderr);
    let copy = format!("{name}_at");
    let r = restore_to(&env, &name, ["--to-time", &between], &copy, &["--yes"]);
    r.expect(0);
    assert_eq!(db.sql(Some(&copy), "SELECT COUNT(*) FROM t").trim(), "2");
}
