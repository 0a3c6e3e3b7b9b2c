//! Several databases dumped at once (`parallel: N`, `--jobs N`) and low-priority runs.

use crate::support::{mariadb, write_script, Env};

/// Issue 12: eight databases dumped four at a time into two storages lose no record: every
/// database has one verified copy on each storage, the index summary (report) agrees with the
/// records, and a database whose dump fails fails alone.
#[test]
fn parallel_backups_into_one_index_lose_no_record() {
    let db = mariadb();
    let names: Vec<String> = (0..8)
        .map(|i| db.create_shop(&format!("par{i}"), 200))
        .collect();
    let env = Env::new();
    let failing = names[5].clone();
    write_script(
        &env.path("dump"),
        &format!(
            "for last; do :; done\n[ \"$last\" = '{failing}' ] && {{ echo 'mariadb-dump: Got error: 1044' >&2; exit 2; }}\nexec mariadb-dump \"$@\""
        ),
    );
    env.write_config(
        &format!("parallel: 4\ndump_tool: {}", env.path("dump").display()),
        "storage:\n  a:\n    type: local\n    path: {storage}/a\n  b:\n    type: local\n    path: {storage}/b\nbackup_types:\n  daily:\n    schedule: \"30 2 * * *\"\n    retention: {keep_last: 3}\n",
    );
    let mut args = vec!["-v", "--json", "backup", "--type", "daily"];
    for n in &names {
        args.extend(["--db", n.as_str()]);
    }
    let r = env.run(&args);
    assert_eq!(r.code, 1, "one database fails: {}", r.stderr);
    assert!(
        r.stderr.contains("4 databases at once"),
        "not parallel: {}",
        r.stderr
    );
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let order: Vec<&str> = doc["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["database"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = names
        .iter()
        .flat_map(|n| [n.as_str(), n.as_str()])
        .collect();
    assert_eq!(
        order, expected,
        "the outcome lists databases in selection order"
    );

    let list = env.list(&[]);
    assert_eq!(list.backups.len(), 16, "{:?}", list.backups);
    for n in &names {
        for storage in ["a", "b"] {
            let copies: Vec<_> = list
                .backups
                .iter()
                .filter(|b| &b.database == n && b.storage == storage)
                .collect();
            assert_eq!(copies.len(), 1, "{n} on {storage}");
            let want = if n == &failing { "failed" } else { "success" };
            assert_eq!(copies[0].status, want, "{n} on {storage}");
        }
    }
    // Every successful copy is intact, and the summaries agree with the records.
    env.run(&["verify", "--latest"]).expect(0);
    let r = env.run(&["report", "--json"]);
    r.expect(0);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["summary"]["healthy"], 7, "{report}");
    assert_eq!(report["summary"]["failing"], 1, "{report}");
    assert_eq!(report["summary"]["backups"], 14, "{report}");
}

/// `--jobs` overrides the server's `parallel`, and a value out of range is refused before
/// anything runs, in the config as on the command line.
#[test]
fn jobs_flag_and_parallel_setting_are_checked() {
    let db = mariadb();
    let a = db.create_shop("jobs", 5);
    let b = db.create_shop("jobs", 5);
    let env = Env::new();
    env.write_local_config("parallel: 0");
    let r = env.run(&["backup", "--db", &a]);
    r.expect(2);
    assert!(
        r.stderr.contains("servers.main.parallel") && r.stderr.contains("1-16"),
        "{}",
        r.stderr
    );
    env.write_local_config("parallel: 2");
    let r = env.run(&["backup", "--db", &a, "--jobs", "17"]);
    r.expect(2);
    let r = env.run(&["-v", "backup", "--db", &a, "--db", &b, "--jobs", "1"]);
    r.expect(0);
    assert!(!r.stderr.contains("at once"), "{}", r.stderr);
    let r = env.run(&["-v", "backup", "--db", &a, "--db", &b]);
    r.expect(0);
    assert!(r.stderr.contains("2 databases at once"), "{}", r.stderr);
}

/// `--low-priority` (and `low_priority: true`) runs the dump tool at nice 10 and best-effort
/// I/O level 7: the dump tool, a child, reports both.
#[test]
fn low_priority_reaches_the_dump_tool() {
    let db = mariadb();
    let a = db.create_shop("lowprio", 5);
    let env = Env::new();
    let seen = env.path("seen");
    write_script(
        &env.path("dump"),
        &format!(
            "case \"$1\" in --version) exec mariadb-dump --version;; esac\n{{ nice; ionice; }} > {}\nexec mariadb-dump \"$@\"",
            seen.display()
        ),
    );
    env.write_local_config(&format!("dump_tool: {}", env.path("dump").display()));
    for how in [vec!["--low-priority"], vec![]] {
        if how.is_empty() {
            let cfg = std::fs::read_to_string(env.config()).unwrap();
            std::fs::write(env.config(), format!("low_priority: true\n{cfg}")).unwrap();
        }
        let _ = std::fs::remove_file(&seen);
        let mut args = how.clone();
        args.extend(["backup", "--db", a.as_str()]);
        env.run(&args).expect(0);
        let text = std::fs::read_to_string(&seen).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0].trim(), "10", "{how:?}: {text}");
        assert_eq!(lines[1].trim(), "best-effort: prio 7", "{how:?}: {text}");
    }
    // Without it, nothing is lowered.
    let cfg = std::fs::read_to_string(env.config()).unwrap();
    std::fs::write(env.config(), cfg.replace("low_priority: true\n", "")).unwrap();
    env.run(&["backup", "--db", &a]).expect(0);
    let text = std::fs::read_to_string(&seen).unwrap();
    assert_eq!(text.lines().next().unwrap().trim(), "0", "{text}");
}

/// With several databases at once, the largest starts first: listed last, it would otherwise
/// start last and run alone while the other workers idle.
#[test]
fn several_at_once_start_with_the_largest_database() {
    let db = mariadb();
    let small: Vec<String> = (0..2)
        .map(|i| db.create_shop(&format!("lpt_small{i}"), 20))
        .collect();
    let big = db.create_shop("lpt_z_big", 20_000);
    let env = Env::new();
    env.write_local_config("");
    let r = env.run(&[
        "-v", "backup", "--jobs", "2", "--db", &small[0], "--db", &small[1], "--db", &big,
    ]);
    r.expect(0);
    let started: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains(": dumping ("))
        .collect();
    assert_eq!(started.len(), 3, "{}", r.stderr);
    assert!(
        !started[2].contains(&format!("/{big}:")),
        "the largest database started last:\n{}",
        r.stderr
    );
}

/// A thread limit (`ulimit -u`, systemd's `TasksMax`, a container's pids limit) fails the
/// databases whose dump needs the refused thread, each with a message that names the limit,
/// and never panics: the run ends with its outcome and exit 1, no dump tool is left running,
/// nothing is stored, and the next run works. A worker that cannot start only makes the run
/// less parallel; a prune whose read-ahead threads are refused reads inline.
#[test]
fn a_thread_limit_fails_what_needs_the_thread_and_never_panics() {
    let db = mariadb();
    let names: Vec<String> = (0..3)
        .map(|i| db.create_shop(&format!("thr{i}"), 50))
        .collect();
    let env = Env::new();
    env.write_config(
        "parallel: 3",
        "storage:\n  local:\n    type: local\n    path: {storage}\nbackup_types:\n  daily:\n    retention: {keep_last: 1}\n",
    );
    let mut args = vec!["--json", "backup", "--type", "daily"];
    for n in &names {
        args.extend(["--db", n.as_str()]);
    }
    let refusing = |threads: &str, args: &[&str]| {
        env.run_with(&[("SQLGUARD_TEST_REFUSE_THREADS", threads)], args)
    };
    for thread in ["store-", "dump-reader", "dump-reaper", "child-stderr"] {
        let r = refusing(thread, &args);
        r.expect(1);
        assert!(!r.stderr.contains("panicked"), "{thread}: {}", r.stderr);
        let doc: serde_json::Value = serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("{thread}: no outcome ({e}): {}", r.stderr));
        let backups = doc["backups"].as_array().unwrap();
        assert_eq!(backups.len(), 3, "{thread}: {doc}");
        for b in backups {
            assert_eq!(b["status"], "failed", "{thread}: {b}");
            let error = b["error"].as_str().unwrap_or_default();
            assert!(
                error.contains(&format!("cannot start a thread ({thread}"))
                    && error.contains("ulimit -u"),
                "{thread}: {error}"
            );
        }
        // Nothing stored but the index, and no dump tool left behind.
        let stored: Vec<String> = env
            .stored_files()
            .into_iter()
            .filter(|f| !crate::support::is_index_file(f) && !f.contains("/index/"))
            .collect();
        assert!(stored.is_empty(), "{thread}: {stored:?}");
        for n in &names {
            let running = std::process::Command::new("pgrep")
                .args(["-f", &format!("dump.* -- {n}$")])
                .output()
                .unwrap();
            assert!(
                running.stdout.is_empty(),
                "{thread}: a dump of {n} is still running"
            );
        }
    }
    // Workers that cannot start: the databases are dumped one after another, all of them.
    let r = refusing("backup-worker", &args);
    r.expect(0);
    assert!(
        r.stderr.contains("1 of 3 databases at once") && r.stderr.contains("backup-worker"),
        "{}",
        r.stderr
    );
    let list = env.list(&[]);
    let ok = list.backups.iter().filter(|b| b.status == "success");
    assert_eq!(ok.count(), 3, "{:?}", list.backups);
    // A second run, then a prune without read-ahead or delete threads: the same result as
    // with them (keep_last 1 leaves the newest copy of each database).
    env.run(&args).expect(0);
    let r = refusing("index-read-ahead,delete", &["prune"]);
    r.expect(0);
    let list = env.list(&[]);
    let ok: Vec<_> = list
        .backups
        .iter()
        .filter(|b| b.status == "success")
        .collect();
    assert_eq!(ok.len(), 3, "{:?}", list.backups);
    for n in &names {
        assert_eq!(ok.iter().filter(|b| &b.database == n).count(), 1, "{n}");
    }
    // A restore whose session threads are refused fails with the reason, and the database it
    // created is gone.
    let target = format!("{}_back", names[0]);
    for thread in ["restore-writer", "restore-reader", "child-stderr"] {
        let r = refusing(
            thread,
            &[
                "restore",
                &ok[0].id,
                "--to-server",
                "main",
                "--to-database",
                &target,
                "--jobs",
                "2",
            ],
        );
        assert!(r.code != 0 && r.code != 101, "{thread}: {}", r.stderr);
        assert!(
            r.stderr
                .contains(&format!("cannot start a thread ({thread})")),
            "{thread}: {}",
            r.stderr
        );
        let exists = db.sql(
            None,
            &format!(
                "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{target}'"
            ),
        );
        assert_eq!(exists.trim(), "0", "{thread}: the restore left {target}");
    }
}
