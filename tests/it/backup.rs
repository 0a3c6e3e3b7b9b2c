//! Backups of real databases restore with standard tools only, and are recorded faithfully.

use std::collections::BTreeSet;

use crate::support::{mariadb, sha256_file, Env};

/// Backs up a shop database with `compression`, restores it with only `<tool> -d | mariadb`
/// into a new database, and compares every table's CHECKSUM TABLE and every object.
fn round_trip(compression: &str, level: i32) {
    let db = mariadb();
    let name = db.create_shop("rt", 3000);
    let env = Env::new();
    env.write_config(
        "",
        &format!(
            "storage:\n  local:\n    type: local\n    path: {{storage}}\nbackup_types:\n  daily:\n    compression: {{algorithm: {compression}, level: {level}, threads: 2}}\n    retention: {{keep_last: 3}}\n"
        ),
    );
    env.run(&["backup", "--type", "daily", "--db", &name])
        .expect(0);
    let list = env.list(&["--db", &name]);
    assert_eq!(list.schema_version, 1);
    assert_eq!(list.backups.len(), 1);
    let r = &list.backups[0];
    assert_eq!(
        (
            r.status.as_str(),
            r.backup_type.as_str(),
            r.compression.as_str()
        ),
        ("success", "daily", compression)
    );
    let key = r.key.clone().unwrap();
    let ext = if compression == "zstd" {
        "sql.zst"
    } else {
        "sql.xz"
    };
    assert!(
        key.starts_with(&format!("main/{name}/daily/")) && key.ends_with(ext),
        "{key}"
    );
    let path = env.storage().join(&key);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), r.compressed_bytes);
    assert_eq!(
        Some(sha256_file(&path)),
        r.sha256,
        "index hash differs from sha256sum"
    );
    let plain = env.read_object(&key, compression);
    assert_eq!(plain.len() as u64, r.raw_bytes);
    assert!(r.server_version.as_deref().unwrap().contains("MariaDB"));

    let restored = db.create_db("rt_restored");
    db.restore(&restored, &plain);
    let (a, b) = (db.checksums(&name), db.checksums(&restored));
    assert_eq!(a.len(), 6, "{a:?}");
    assert_eq!(a, b, "CHECKSUM TABLE differs after restore");
    assert_eq!(db.objects(&name), db.objects(&restored));
    let objects: BTreeSet<String> = db.objects(&restored).into_iter().collect();
    for o in [
        "view:order_totals",
        "trigger:orders_status_audit",
        "function:order_count",
        "procedure:cancel_stale_orders",
        "event:purge_audit_log",
    ] {
        assert!(
            objects.contains(o),
            "{o} missing after restore: {objects:?}"
        );
    }
    // The manifest beside the object holds the same record.
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.storage().join(r.manifest_key.as_ref().unwrap())).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["id"], r.id.as_str());
    assert_eq!(manifest["sha256"], r.sha256.as_deref().unwrap());
}

#[test]
fn zstd_backup_restores_with_zstd_and_mysql() {
    round_trip("zstd", 3);
}

#[test]
fn xz_backup_restores_with_xz_and_mysql() {
    round_trip("xz", 1);
}

#[test]
fn hostile_database_names_back_up_restore_and_stay_in_their_directory() {
    let db = mariadb();
    let name = format!("we`ird db.ü-{:06x}", fastrand::u32(..0xffffff));
    let q = name.replace('`', "``");
    db.sql(None, &format!("CREATE DATABASE `{q}` CHARACTER SET utf8mb4; CREATE TABLE `{q}`.`t t` (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO `{q}`.`t t` VALUES (1, 'ünï ☃'), (2, NULL);"));
    let env = Env::new();
    env.write_local_config("");
    env.run(&["backup", "--db", &name]).expect(0);
    let list = env.list(&[]);
    let r = &list.backups[0];
    assert_eq!(r.database, name);
    let key = r.key.clone().unwrap();
    let dir = key.split('/').nth(1).unwrap();
    assert!(dir.starts_with("we%60ird%20db.%C3%BC-"), "{key}");
    assert!(env.storage().join(&key).is_file());
    let restored = db.create_db("weird_restored");
    db.restore(&restored, &env.read_object(&key, "zstd"));
    assert_eq!(
        db.checksums(&name).values().collect::<Vec<_>>(),
        db.checksums(&restored).values().collect::<Vec<_>>()
    );
    db.sql(None, &format!("DROP DATABASE `{q}`"));
}

#[test]
fn files_are_0600_and_directories_0700() {
    use std::os::unix::fs::PermissionsExt;
    let db = mariadb();
    let name = db.create_shop("perm", 100);
    let env = Env::new();
    env.write_local_config("");
    env.run(&["backup", "--db", &name]).expect(0);
    for f in env.stored_files() {
        let p = env.storage().join(&f);
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600,
            "{f}"
        );
        let mut d = p.parent().unwrap().to_path_buf();
        while d != env.storage() {
            assert_eq!(
                std::fs::metadata(&d).unwrap().permissions().mode() & 0o777,
                0o700,
                "{}",
                d.display()
            );
            d = d.parent().unwrap().to_path_buf();
        }
    }
}

#[test]
fn concurrent_runs_both_land_in_the_index() {
    let db = mariadb();
    let a = db.create_shop("conc_a", 2000);
    let b = db.create_shop("conc_b", 2000);
    let env = Env::new();
    env.write_local_config("");
    // Four jobs at once into one index (the hourly, daily, weekly and monthly at midnight), on
    // two databases: every record must survive the read-merge-write.
    let children: Vec<_> = ["hourly", "daily", "weekly", "monthly"]
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let db = if i % 2 == 0 { &a } else { &b };
            env.cmd()
                .args(["backup", "--type", t, "--db", db])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let list = env.list(&[]);
    assert_eq!(list.backups.len(), 4, "{:?}", list.backups);
    let ids: BTreeSet<_> = list.backups.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids.len(), 4);
    for r in &list.backups {
        assert!(env.storage().join(r.key.as_ref().unwrap()).is_file());
    }
}

#[test]
fn list_filters_sorts_and_json_agrees_with_the_table() {
    let db = mariadb();
    let a = db.create_shop("lst_a", 100);
    let b = db.create_shop("lst_b", 100);
    let env = Env::new();
    env.write_local_config("");
    env.run(&["backup", "--type", "daily", "--db", &a])
        .expect(0);
    env.run(&["backup", "--type", "hourly", "--db", &a, "--db", &b])
        .expect(0);
    // A database backed up, then dropped: its next backup is a failed record.
    let c = db.create_shop("lst_c", 10);
    env.run(&["backup", "--db", &c]).expect(0);
    db.sql(None, &format!("DROP DATABASE {c}"));
    env.run(&["backup", "--db", &c]).expect(1);
    let all = env.list(&[]);
    assert_eq!(all.backups.len(), 5);
    let starts: Vec<_> = all.backups.iter().map(|r| r.started_at.clone()).collect();
    let mut sorted = starts.clone();
    sorted.sort_by(|x, y| y.cmp(x));
    assert_eq!(starts, sorted, "not newest first");
    assert_eq!(env.list(&["--db", &a]).backups.len(), 2);
    assert_eq!(env.list(&["--type", "hourly"]).backups.len(), 2);
    assert_eq!(env.list(&["--status", "failed"]).backups.len(), 1);
    assert_eq!(env.list(&["--limit", "1"]).backups.len(), 1);
    assert_eq!(env.list(&["--since", "1h"]).backups.len(), 5);
    assert_eq!(env.list(&["--since", "2999-01-01"]).backups.len(), 0);
    // The table shows the same rows, in the same order.
    let table = env.run(&["list"]);
    table.expect(0);
    let ids: Vec<&str> = table
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    let json_ids: Vec<&str> = all.backups.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, json_ids);
    assert!(table.stdout.contains("does not exist"), "{}", table.stdout);
}

#[test]
fn list_into_a_closed_pipe_is_not_an_error() {
    let db = mariadb();
    let a = db.create_shop("pipe", 50);
    let env = Env::new();
    env.write_local_config("");
    for _ in 0..3 {
        env.run(&["backup", "--db", &a]).expect(0);
    }
    let mut child = env
        .cmd()
        .arg("list")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn index_rebuild_recreates_a_lost_index() {
    let db = mariadb();
    let a = db.create_shop("rebuild", 50);
    let env = Env::new();
    env.write_local_config("");
    env.run(&["backup", "--db", &a]).expect(0);
    env.run(&["backup", "--type", "daily", "--db", &a])
        .expect(0);
    let before = env.list(&[]);
    let index = env.db_index(&a);
    std::fs::write(&index, b"{ not json").unwrap();
    let r = env.run(&["list"]);
    r.expect(1);
    let file = index
        .strip_prefix(env.storage())
        .unwrap()
        .display()
        .to_string();
    assert!(
        r.stderr.contains(&file) && r.stderr.contains("index rebuild"),
        "{}",
        r.stderr
    );
    env.run(&["index", "rebuild"]).expect(0);
    let after = env.list(&[]);
    let ids =
        |d: &crate::support::ListDoc| d.backups.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&before), ids(&after));
    assert!(env
        .stored_files()
        .iter()
        .any(|f| f.starts_with(&format!("{file}.bak-"))));
    // A lost index (every file of it) comes back from the manifests alone.
    std::fs::remove_dir_all(env.storage().join("main/index")).unwrap();
    std::fs::remove_file(env.storage().join("main/index.json")).unwrap();
    assert!(env.list(&[]).backups.is_empty());
    env.run(&["index", "rebuild"]).expect(0);
    assert_eq!(ids(&before), ids(&env.list(&[])));
    // Backups the listing cannot show (their directory swapped for a symbolic link, which a
    // local storage never follows) are not taken for gone: the rebuild fails naming the link,
    // and the index keeps them (a hostile review's: three were dropped with exit 0).
    let daily = env.storage().join(format!("main/{a}/daily"));
    let moved = env.path("moved-daily");
    std::fs::rename(&daily, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &daily).unwrap();
    let r = env.run(&["index", "rebuild"]);
    r.expect(1);
    assert!(r.stderr.contains("symbolic link"), "{}", r.stderr);
    assert_eq!(ids(&before), ids(&env.list(&[])));
}

#[test]
fn progress_bar_only_on_a_terminal() {
    let db = mariadb();
    let name = db.create_shop("progress", 2000);
    let env = Env::new();
    // The dump pauses half-way so that the bar is drawn mid-stream.
    crate::support::write_script(
        &env.path("slowish"),
        "[ \"$1\" = --version ] && exec mariadb-dump --version\nmariadb-dump \"$@\" > \"$0.out\" || exit $?\nhead -c 100000 \"$0.out\"\nsleep 1\ntail -c +100001 \"$0.out\"",
    );
    env.write_local_config(&format!("dump_tool: {}", env.path("slowish").display()));
    // Off a terminal (cron): plain lines, no escape sequences.
    let plain = env.run(&["backup", "--db", &name]);
    plain.expect(0);
    assert!(!plain.stderr.contains('\u{1b}'), "{:?}", plain.stderr);
    // On a terminal (script(1) gives the run a pty): a bar with the database and byte counts.
    let cmd = format!(
        "SQLGUARD_LOCK_DIR={} {} --config {} backup --db {name}",
        env.path("locks").display(),
        crate::support::BIN,
        env.config().display()
    );
    let out = std::process::Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .output()
        .expect("script(1) from util-linux");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains('\u{1b}') && text.contains(&format!("main/{name} [")),
        "no progress bar drawn: {text:?}"
    );
    assert!(text.contains("eta"), "{text:?}");
    // --no-progress turns it off on a terminal too.
    let out = std::process::Command::new("script")
        .args(["-qfec", &format!("{cmd} --no-progress"), "/dev/null"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains(&format!("main/{name} [")), "{text:?}");
}

/// Issue 13: under cron (`--quiet`), a run that succeeds prints nothing at all, so cron mails only
/// failures; a failing run prints its error and a summary line with the exit code. Off a
/// terminal every log line starts with its UTC time and the log ends with the summary line.
#[test]
fn quiet_success_is_silent_and_logs_end_with_a_summary() {
    let db = mariadb();
    let shop = db.create_shop("quiet", 20);
    let env = Env::new();
    env.write_local_config("");
    for args in [
        vec!["--quiet", "backup", "--db", shop.as_str()],
        vec!["--quiet", "prune"],
        vec!["--quiet", "verify", "--latest"],
    ] {
        let r = env.run(&args);
        r.expect(0);
        assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", ""), "{args:?}");
    }
    let r = env.run(&["--quiet", "backup", "--db", "no_such_db_here"]);
    r.expect(1);
    let last = r.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("sqlguard: backup manual: 0 of 0 copies stored") && last.ends_with("exit 1"),
        "{}",
        r.stderr
    );
    let r = env.run(&["backup", "--db", &shop]);
    r.expect(0);
    for line in r.stderr.lines() {
        let stamp = line.split(' ').next().unwrap_or_default();
        assert!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
            "no timestamp: {line}"
        );
    }
    let last = r.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("backup manual: 1 of 1 copies stored (1 database)")
            && last.ends_with("exit 0"),
        "{}",
        r.stderr
    );
}

/// The estimate printed for a database by `backup -v`, as a fraction of the dumped size.
fn estimate_error(stderr: &str, db: &str) -> f64 {
    let line = stderr
        .lines()
        .find(|l| l.contains(&format!("/{db}: dumped")))
        .unwrap_or_else(|| panic!("no estimate for {db}:\n{stderr}"));
    let num = |after: &str| -> f64 {
        let rest = &line[line.find(after).unwrap() + after.len()..];
        rest.split_whitespace().next().unwrap().parse().unwrap()
    };
    num("estimated ") / num("dumped ") - 1.0
}

/// Issue 13 item 11: the progress estimate is within ±25% of the dump: the last dump scaled by
/// the data's growth (shop), or, for a first dump, the data bytes (a numeric table).
#[test]
fn progress_estimates_are_within_a_quarter_of_the_dump() {
    let db = mariadb();
    let shop = db.create_shop("est_shop", 2000);
    let seq = db.create_db("est_seq");
    db.sql(
        Some(&seq),
        "CREATE TABLE t (id INT PRIMARY KEY, a INT, b VARCHAR(40), c DOUBLE, d DATETIME);
         INSERT INTO t SELECT seq, seq * 7, MD5(seq), seq / 3, '2026-01-01' + INTERVAL seq SECOND FROM seq_1_to_50000;
         ANALYZE TABLE t;",
    );
    let env = Env::new();
    env.write_local_config("");
    let first = env.run(&["-v", "backup", "--db", &shop, "--db", &seq]);
    first.expect(0);
    let e = estimate_error(&first.stderr, &seq);
    assert!(e.abs() <= 0.25, "first dump of {seq}: {:+.0}%", e * 100.0);
    // The shop grows by a quarter; the next estimate follows from the last dump.
    db.sql(
        Some(&shop),
        "INSERT INTO customers SELECT id + 1000000, CONCAT(name, 'x'), CONCAT('x', email), city, created_at FROM customers LIMIT 500; ANALYZE TABLE customers;",
    );
    let second = env.run(&["-v", "backup", "--db", &shop]);
    second.expect(0);
    let e = estimate_error(&second.stderr, &shop);
    assert!(e.abs() <= 0.25, "second dump of {shop}: {:+.0}%", e * 100.0);
}

/// Issue 14, item 1: every dump of a server writing a binary log records where its snapshot
/// stands (file, position, GTID), read from the dump's own comments; a dump holding MyISAM
/// tables is recorded `consistent: false`; an account that cannot read the log's position
/// still backs up, without coordinates, and is told what to grant.
#[test]
fn dumps_record_their_binlog_coordinates_and_whether_they_are_consistent() {
    let db = mariadb();
    let name = db.create_shop("coords", 20);
    let env = Env::new();
    env.write_local_config("");
    let before = db.sql(None, "SHOW MASTER STATUS");
    let file_before = before.split_whitespace().next().unwrap().to_string();
    env.run(&["backup", "--db", &name]).expect(0);
    let rec = env.list(&[]).backups.remove(0);
    let b = rec
        .binlog
        .clone()
        .unwrap_or_else(|| panic!("no binlog in {rec:?}"));
    let file = b["file"].as_str().unwrap();
    assert!(
        file.starts_with("binlog.") && file >= file_before.as_str(),
        "{b}"
    );
    assert!(b["position"].as_u64().unwrap() > 0, "{b}");
    let gtid = b["gtid"].as_str().unwrap();
    assert!(gtid.split(',').all(|g| g.split('-').count() == 3), "{gtid}");
    assert_eq!(rec.consistent, Some(true));
    // The position is the snapshot's: a write after the dump is past it.
    db.sql(Some(&name), "INSERT INTO customers SELECT id + 1000000, name, CONCAT('n', email), city, created_at FROM customers LIMIT 1");
    let after = db.sql(None, "SHOW MASTER STATUS");
    let mut it = after.split_whitespace();
    let (f2, p2) = (
        it.next().unwrap(),
        it.next().unwrap().parse::<u64>().unwrap(),
    );
    assert!(f2 > file || p2 > b["position"].as_u64().unwrap());

    // A MyISAM table: not a consistent snapshot, said and recorded.
    db.sql(
        Some(&name),
        "CREATE TABLE legacy (id INT) ENGINE=MyISAM; INSERT INTO legacy VALUES (1)",
    );
    let r = env.run(&["backup", "--db", &name]);
    r.expect(0);
    assert!(
        r.stderr.contains("not a consistent snapshot") && r.stderr.contains("legacy (MyISAM)"),
        "{}",
        r.stderr
    );
    assert_eq!(env.list(&[]).backups[0].consistent, Some(false));

    // An account without BINLOG MONITOR: a backup without coordinates, and a warning.
    let tag = format!("{:06x}", fastrand::u32(..0xffffff));
    let user = format!("nobl_{tag}");
    db.sql(
        None,
        &format!(
            "CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY 'pw{tag}';
             GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON *.* TO '{user}'@'127.0.0.1';"
        ),
    );
    std::fs::write(env.path("pw"), format!("pw{tag}\n")).unwrap();
    let text = format!(
        "servers:\n  main:\n    host: 127.0.0.1\n    port: {}\n    user: {user}\n    password_file: {}\nstorage:\n  local:\n    type: local\n    path: {}\n",
        db.port,
        env.path("pw").display(),
        env.storage().display()
    );
    std::fs::write(env.config(), text).unwrap();
    let r = env.run(&["backup", "--db", &name]);
    r.expect(0);
    assert!(r.stderr.contains("GRANT BINLOG MONITOR"), "{}", r.stderr);
    let rec = env.list(&[]).backups.remove(0);
    assert!(rec.binlog.is_none() && rec.status == "success", "{rec:?}");
    // check says so too.
    let c = env.run(&["check", "--storage", "local"]);
    assert!(
        c.stdout.contains("cannot read its position")
            || c.stderr.contains("cannot read its position"),
        "{}\n{}",
        c.stdout,
        c.stderr
    );
}
