//! Failures are recorded as failures with a useful error, leave no partial object, and never
//! stop the other databases; secrets never reach argv or output.

use std::time::Duration;

use crate::support::{mariadb, read, write_script, Env, Run};

/// Files in the storage other than the index, its lock and its backups' manifests and objects
/// of successful records: there must be none (no temp files, no partial objects).
pub fn assert_no_partial_files(env: &Env) {
    let list = env.list(&[]);
    let owned: Vec<String> = list
        .backups
        .iter()
        .filter(|r| r.status == "success")
        .flat_map(|r| [r.key.clone().unwrap(), r.manifest_key.clone().unwrap()])
        .collect();
    for f in env.stored_files() {
        let known = crate::support::is_index_file(&f) || owned.contains(&f);
        assert!(known, "unexpected file in storage: {f}");
    }
}

#[test]
fn wrong_password_fails_with_access_denied_and_no_object() {
    let db = mariadb();
    let name = db.create_shop("badpw", 50);
    let env = Env::new();
    std::fs::write(env.path("pw"), "definitely-wrong\n").unwrap();
    let cfg = format!(
        "servers:\n  main:\n    host: 127.0.0.1\n    port: {}\n    user: root\n    password_file: {}\n    databases:\n      include: [\"{name}\"]\nstorage:\n  local:\n    type: local\n    path: {}\n",
        db.port,
        env.path("pw").display(),
        env.storage().display()
    );
    std::fs::write(env.config(), cfg).unwrap();
    let r = env.run(&["backup"]);
    r.expect(1);
    assert!(r.stderr.contains("Access denied"), "{}", r.stderr);
    assert!(!r.stderr.contains("definitely-wrong") && !r.stdout.contains("definitely-wrong"));
    let list = env.list(&[]);
    assert_eq!(list.backups.len(), 1);
    let rec = &list.backups[0];
    assert_eq!(
        (rec.status.as_str(), rec.database.as_str()),
        ("failed", name.as_str())
    );
    assert!(rec.error.as_deref().unwrap().contains("Access denied"));
    assert!(rec.key.is_none());
    assert_no_partial_files(&env);
}

/// A server that cannot be reached fails each requested database the config names literally or
/// that has backups on record; a `--db` name it cannot vouch for (a typo, for all it knows) is
/// no record of its own: the run fails as a server-wide failure (`*`), which the server's next
/// good run heals.
#[test]
fn server_down_fails_the_databases_it_knows_else_the_server() {
    let env = Env::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let write = |include: &str| {
        std::fs::write(
            env.config(),
            format!(
                "servers:\n  main:\n    host: 127.0.0.1\n    port: {port}\n    user: root\n{include}storage:\n  local:\n    type: local\n    path: {}\n",
                env.storage().display()
            ),
        )
        .unwrap()
    };
    write("");
    let r = env.run(&["backup", "--db", "shop", "--db", "crm"]);
    r.expect(1);
    assert!(r.stderr.contains("Can't connect"), "{}", r.stderr);
    let failed = |env: &Env| {
        let mut dbs: Vec<_> = env
            .list(&["--status", "failed"])
            .backups
            .iter()
            .map(|r| r.database.clone())
            .collect();
        dbs.sort();
        dbs
    };
    assert_eq!(failed(&env), ["*"]);
    write("    databases:\n      include: [shop, crm]\n");
    env.run(&["backup"]).expect(1);
    assert_eq!(failed(&env), ["*", "crm", "shop"]);
    let list = env.list(&["--status", "failed", "--db", "shop"]);
    assert!(list.backups[0]
        .error
        .as_deref()
        .unwrap()
        .contains("server 'main'"));
    // Now on record, a --db name is failed by name even without the config naming it.
    write("");
    env.run(&["backup", "--db", "crm"]).expect(1);
    assert_eq!(failed(&env), ["*", "crm", "crm", "shop"]);
    assert_no_partial_files(&env);
}

/// A database with backups on record that is gone from the server is a failed backup of it; a
/// name the server never had (a typo) fails the run naming what the server has, and leaves no
/// record: no database appears in the index, the report or the metrics that never existed.
#[test]
fn a_vanished_database_fails_alone_and_a_typo_records_nothing() {
    let db = mariadb();
    let good = db.create_shop("known", 50);
    let gone = db.create_shop("vanished", 10);
    let env = Env::new();
    env.write_local_config("");
    env.run(&["backup", "--db", &gone]).expect(0);
    db.sql(None, &format!("DROP DATABASE {gone}"));
    let r = env.run(&[
        "backup",
        "--db",
        "no_such_db_x",
        "--db",
        &gone,
        "--db",
        &good,
    ]);
    r.expect(1);
    assert!(
        r.stderr.contains("there is no database 'no_such_db_x'")
            && r.stderr.contains("nothing was recorded")
            && r.stderr.contains(&good),
        "{}",
        r.stderr
    );
    let list = env.list(&[]);
    let newest = |n: &str| list.backups.iter().find(|r| r.database == n).cloned();
    assert_eq!(newest(&good).unwrap().status, "success");
    let bad = newest(&gone).unwrap();
    assert_eq!(bad.status, "failed");
    assert!(bad.error.unwrap().contains("does not exist"));
    assert!(newest("no_such_db_x").is_none(), "{:?}", list.backups);
    // A name that differs in case only gets the server's spelling.
    let r = env.run(&["backup", "--db", &good.to_uppercase()]);
    r.expect(1);
    assert!(
        r.stderr.contains(&format!("did you mean '{good}'?")),
        "{}",
        r.stderr
    );
    assert_eq!(env.list(&[]).backups.len(), list.backups.len());

    // A glob in --db is a name like any other, even one databases.include holds.
    env.write_local_config("databases:\n  include: [\"known*\"]");
    env.run(&["backup", "--db", "known*"]).expect(1);
    assert_eq!(env.list(&[]).backups.len(), list.backups.len());

    // A second server that cannot be reached: a typo is no record of it either (its failure
    // is the server's), and a name the first server has is not an error of the run there.
    env.edit_config(
        "storage:\n",
        "  down:\n    host: 127.0.0.1\n    port: 1\n    user: root\nstorage:\n",
    );
    let r = env.run(&["backup", "--db", "no_such_db_y"]);
    r.expect(1);
    assert!(
        r.stderr.contains("there is no database 'no_such_db_y'"),
        "{}",
        r.stderr
    );
    let r = env.run(&["backup", "--db", &good]);
    r.expect(1);
    assert!(!r.stderr.contains("there is no database"), "{}", r.stderr);
    let list = env.list(&[]);
    assert!(
        list.backups
            .iter()
            .all(|r| r.database != "no_such_db_y" && (r.server == "main" || r.database != good)),
        "{:?}",
        list.backups
    );

    // A storage the backup type does not use is not read, whatever its state.
    let blocked = env.path("blocked");
    std::fs::write(&blocked, b"a file").unwrap();
    env.edit_config("storage:\n",
        &format!(
            "backup_types:\n  manual:\n    storages: [local]\n    retention: {{keep_last: 50}}\nstorage:\n  other:\n    type: local\n    path: {}/x\n",
            blocked.display()
        ));
    let before = env.list(&["--storage", "local"]).backups.len();
    let r = env.run(&["backup", "--server", "main", "--db", "no_such_db_w"]);
    r.expect(1);
    assert!(r.stderr.contains("nothing was recorded"), "{}", r.stderr);
    assert_eq!(env.list(&["--storage", "local"]).backups.len(), before);
    // One of the type's own storages down: it may hold what says the name is real, so the
    // name is recorded (on the storage that works).
    env.edit_config("storages: [local]", "storages: [local, other]");
    let r = env.run(&["backup", "--server", "main", "--db", "no_such_db_v"]);
    r.expect(1);
    assert!(!r.stderr.contains("nothing was recorded"), "{}", r.stderr);
    assert_eq!(env.list(&["--storage", "local"]).backups.len(), before + 1);
    env.edit_config("storages: [local, other]", "storages: [local]");

    // An index that cannot be read: a missing name is recorded, since nothing says it is new.
    std::fs::write(env.storage().join("main/index/summary.json"), b"{damaged").unwrap();
    for f in std::fs::read_dir(env.storage().join(format!("main/index/db/{good}"))).unwrap() {
        std::fs::write(f.unwrap().path(), b"{damaged").unwrap();
    }
    let r = env.run(&["backup", "--server", "main", "--db", "no_such_db_z"]);
    r.expect(1);
    assert!(!r.stderr.contains("nothing was recorded"), "{}", r.stderr);
}

/// A dump tool wrapper around the real mariadb-dump that misbehaves for one database.
pub fn misbehaving_tool(env: &Env, victim: &str, behaviour: &str) -> String {
    let path = env.path("dump-wrapper");
    write_script(
        &path,
        &format!(
            "[ \"$1\" = --version ] && exec mariadb-dump --version\n\
             for last; do :; done\n\
             if [ \"$last\" = '{victim}' ]; then\n{behaviour}\nfi\n\
             exec mariadb-dump \"$@\""
        ),
    );
    path.display().to_string()
}

#[test]
fn dump_killed_mid_stream_is_a_failure_with_no_partial_object() {
    let db = mariadb();
    let victim = db.create_shop("killed", 3000);
    let good = db.create_shop("survivor", 100);
    let env = Env::new();
    // The real dump streams ~100 KB, then the dump process is killed with SIGKILL.
    let tool = misbehaving_tool(
        &env,
        &victim,
        "mariadb-dump \"$@\" | head -c 100000\nkill -9 $$",
    );
    env.write_local_config(&format!("dump_tool: {tool}"));
    let r = env.run(&["backup", "--db", &victim, "--db", &good]);
    r.expect(1);
    let list = env.list(&[]);
    let rec = list.backups.iter().find(|r| r.database == victim).unwrap();
    assert_eq!(rec.status, "failed");
    assert!(
        rec.error.as_deref().unwrap().contains("killed by signal 9"),
        "{:?}",
        rec.error
    );
    assert!(rec.raw_bytes > 0 && rec.key.is_none());
    assert_eq!(
        list.backups
            .iter()
            .find(|r| r.database == good)
            .unwrap()
            .status,
        "success"
    );
    assert_no_partial_files(&env);
}

#[test]
fn dump_cut_short_with_exit_0_is_a_failure() {
    let db = mariadb();
    let victim = db.create_shop("truncated", 3000);
    let env = Env::new();
    // Exit status 0 but no completion trailer: only the trailer check can catch this.
    let tool = misbehaving_tool(&env, &victim, "mariadb-dump \"$@\" | head -c 50000\nexit 0");
    env.write_local_config(&format!("dump_tool: {tool}"));
    let r = env.run(&["backup", "--db", &victim]);
    r.expect(1);
    let rec = env.list(&[]).backups.remove(0);
    assert_eq!(rec.status, "failed");
    assert!(
        rec.error.as_deref().unwrap().contains("completion trailer"),
        "{:?}",
        rec.error
    );
    assert_no_partial_files(&env);
}

#[test]
fn dump_tool_error_text_reaches_the_record() {
    let db = mariadb();
    let victim = db.create_shop("stderr", 10);
    let env = Env::new();
    let tool = misbehaving_tool(
        &env,
        &victim,
        "echo 'mariadb-dump: Got error: 1044: Access denied to database' >&2\nexit 2",
    );
    env.write_local_config(&format!("dump_tool: {tool}"));
    env.run(&["backup", "--db", &victim]).expect(1);
    let rec = env.list(&[]).backups.remove(0);
    let e = rec.error.unwrap();
    assert!(
        e.contains("exit code 2") && e.contains("Got error: 1044"),
        "{e}"
    );
}

#[test]
fn sigterm_stops_a_stalled_dump_records_it_and_exits_130() {
    let db = mariadb();
    let victim = db.create_shop("sigterm", 100);
    let env = Env::new();
    // Sends part of the dump, then stalls (as a dump waiting on a lock would).
    let tool = misbehaving_tool(
        &env,
        &victim,
        "mariadb-dump \"$@\" | head -c 20000\nexec sleep 60",
    );
    env.write_local_config(&format!("dump_tool: {tool}"));
    let child = env.spawn(&["backup", "--db", &victim]);
    // Wait until the dump has started writing (a temp file appears), then stop sqlguard.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !env.stored_files().iter().any(|f| f.ends_with(".tmp")) {
        assert!(std::time::Instant::now() < deadline, "dump never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let started = std::time::Instant::now();
    let r = Run::from(child.wait_with_output().unwrap());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?} to stop",
        started.elapsed()
    );
    r.expect(130);
    let rec = env.list(&[]).backups.remove(0);
    assert_eq!(rec.status, "failed");
    assert!(rec.error.unwrap().contains("interrupted"));
    assert_no_partial_files(&env);
}

#[test]
fn password_never_appears_in_argv_ps_environment_or_output() {
    let db = mariadb();
    let name = db.create_shop("secret", 200);
    let password = format!("S3cr\"et'#{:x} ;\\x", fastrand::u32(..));
    let user = format!("bk{:x}", fastrand::u32(..));
    let sql_pw = password.replace('\\', "\\\\").replace('\'', "\\'");
    db.sql(None, &format!("CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{sql_pw}'; GRANT ALL ON *.* TO '{user}'@'127.0.0.1';"));
    let env = Env::new();
    // Wrappers record their own argv and environment, the whole process table and their defaults
    // file's mode (issue 10: children get a scrubbed environment).
    let log = env.path("argv.log");
    for (tool, real) in [("dump", "mariadb-dump"), ("client", "mariadb")] {
        write_script(
            &env.path(tool),
            &format!(
                "printf '%s\\n' \"{tool}: $*\" >> {log}\n\
                 ps -eo args >> {log}\n\
                 env | sed 's/^/env: /' >> {log}\n\
                 for a; do case \"$a\" in --defaults-file=*) f=${{a#--defaults-file=}}; echo \"defaults=$f mode=$(stat -L -c %a \"$f\")\" >> {log};; esac; done\n\
                 exec {real} \"$@\"",
                log = log.display()
            ),
        );
    }
    std::fs::write(env.path("pw"), format!("{password}\n")).unwrap();
    std::fs::write(
        env.config(),
        format!(
            "servers:\n  main:\n    host: 127.0.0.1\n    port: {}\n    user: {user}\n    password_file: {}\n    dump_tool: {}\n    client_tool: {}\n    dump_options: [\"--skip-dump-date\"]\nstorage:\n  local:\n    type: local\n    path: {}\n",
            db.port,
            env.path("pw").display(),
            env.path("dump").display(),
            env.path("client").display(),
            env.storage().display()
        ),
    )
    .unwrap();
    let aws_secret = format!("awsSecret{:x}", fastrand::u32(..));
    let r = Run::from(
        env.cmd()
            .args(["-v", "backup", "--db", &name])
            .env("AWS_SECRET_ACCESS_KEY", &aws_secret)
            .env("MYSQL_PWD", &aws_secret)
            .env("SQLGUARD_DB_PASSWORD_FILE", env.path("pw"))
            .output()
            .unwrap(),
    );
    r.expect(0);
    let logged = read(&log);
    let child_env: Vec<&str> = logged.lines().filter(|l| l.starts_with("env: ")).collect();
    assert!(
        child_env.iter().any(|l| l.starts_with("env: PATH=")),
        "{logged}"
    );
    for l in &child_env {
        assert!(
            !l.contains(&aws_secret) && !l.contains("SQLGUARD_") && !l.contains("AWS_"),
            "a secret variable reached a child: {l}"
        );
    }
    assert!(
        logged.contains("dump: --defaults-file="),
        "wrapper did not run: {logged}"
    );
    assert!(
        logged.contains("client: --defaults-file="),
        "wrapper did not run: {logged}"
    );
    // Extra dump options from the config reach the tool, after sqlguard's own.
    let dump_line = logged
        .lines()
        .find(|l| l.starts_with("dump: --defaults-file="))
        .unwrap();
    let extra = dump_line
        .find("--skip-dump-date")
        .expect("dump_options passed");
    assert!(dump_line.find("--comments").unwrap() < extra, "{dump_line}");
    let modes: Vec<&str> = logged
        .lines()
        .filter(|l| l.starts_with("defaults="))
        .collect();
    assert!(
        modes.len() >= 2 && modes.iter().all(|l| l.ends_with("mode=600")),
        "{modes:?}"
    );
    for needle in [password.as_str(), "S3cr"] {
        assert!(!logged.contains(needle), "password in argv or ps: {logged}");
        assert!(
            !r.stderr.contains(needle) && !r.stdout.contains(needle),
            "password in output"
        );
    }
    let show = env.run(&["config", "show"]);
    assert!(!show.stdout.contains("S3cr") && show.stdout.contains("***"));
    // Every defaults file is gone after the run.
    for line in logged.lines().filter(|l| l.starts_with("defaults=")) {
        let f = line
            .trim_start_matches("defaults=")
            .split(" mode=")
            .next()
            .unwrap();
        assert!(
            !std::path::Path::new(f).exists(),
            "defaults file left behind: {f}"
        );
    }
    // And the password really worked (the wrappers ran the real tools through the file).
    assert_eq!(env.list(&[]).backups[0].status, "success");
}

/// A 1 MiB tmpfs, unmounted when dropped (the tests run as root, as CI does).
pub struct SmallDisk {
    pub path: std::path::PathBuf,
}

impl SmallDisk {
    pub fn mount(path: std::path::PathBuf) -> SmallDisk {
        std::fs::create_dir_all(&path).unwrap();
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(
            st.success(),
            "mounting a tmpfs needs root (CI runs as root)"
        );
        SmallDisk { path }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.path)
            .status();
    }
}

#[test]
fn a_full_disk_fails_that_storage_leaves_nothing_and_keeps_the_other_copy() {
    let db = mariadb();
    let name = db.create_shop("fulldisk", 10_000);
    let env = Env::new();
    let disk = SmallDisk::mount(env.path("small"));
    env.write_config(
        "",
        &format!(
            "storage:\n  local:\n    type: local\n    path: {{storage}}\n  tiny:\n    type: local\n    path: {}\nbackup_types:\n  manual:\n    compression: {{algorithm: none}}\n    retention: {{keep_last: 3}}\n",
            disk.path.join("backups").display()
        ),
    );
    let r = env.run(&["backup", "--db", &name]);
    r.expect(1);
    assert!(
        r.stderr.contains("No space left on device") && r.stderr.contains("tiny"),
        "{}",
        r.stderr
    );
    let list = env.list(&[]);
    let tiny = list
        .backups
        .iter()
        .find(|b| b.storage == "tiny")
        .expect("the failure is recorded");
    assert_eq!(tiny.status, "failed");
    assert!(
        tiny.error
            .as_deref()
            .unwrap()
            .contains("No space left on device"),
        "{:?}",
        tiny.error
    );
    let local = list.backups.iter().find(|b| b.storage == "local").unwrap();
    assert_eq!(local.status, "success");
    assert!(
        local.raw_bytes > 1 << 20,
        "the dump must not fit the small disk"
    );
    // Nothing partial stays on the full disk: at most the index and its lock.
    let mut left = Vec::new();
    let mut stack = vec![disk.path.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                left.push(p.strip_prefix(&disk.path).unwrap().display().to_string());
            }
        }
    }
    assert!(
        left.iter().all(|f| crate::support::is_index_file(f)),
        "{left:?}"
    );
}

/// A dump tool that hangs when asked its version (a broken wrapper, a stuck NFS mount) does not
/// hold a run that is asked to stop: SIGTERM ends it with 130, promptly.
#[test]
fn a_signal_stops_a_hanging_tool_probe() {
    let name = mariadb().create_db("probe");
    let env = Env::new();
    let tool = env.path("hanging-dump");
    write_script(
        &tool,
        // Not `exec`: the wrapper's own child holds the output pipes when the wrapper is killed.
        "if [ \"$1\" = --version ]; then sleep 60; exit 0; fi\nexec mariadb-dump \"$@\"",
    );
    env.write_local_config(&format!("dump_tool: {}", tool.display()));
    let child = env.spawn(&["--json", "backup", "--db", &name]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let signalled = std::time::Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let r = Run::from(child.wait_with_output().unwrap());
    assert!(
        signalled.elapsed() < std::time::Duration::from_secs(10),
        "the run waited {:?} after the signal: {}",
        signalled.elapsed(),
        r.stderr
    );
    assert_eq!(r.code, 130, "{}", r.stderr);
    // The document says what the exit code says.
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["interrupted"], true, "{doc}");
}

/// A full output disk is the output's failure, not the copy's: `fetch --decompress` says so
/// once, blames no copy, reads no other storage's copy, and leaves no file behind.
#[test]
fn a_full_output_disk_blames_no_copy() {
    let db = mariadb();
    let name = db.create_shop("fulloutput", 10_000);
    let env = Env::new();
    let disk = SmallDisk::mount(env.path("small"));
    env.write_config(
        "",
        &format!(
            "storage:\n  local:\n    type: local\n    path: {{storage}}\n  second:\n    type: local\n    path: {}\n",
            env.path("second").display()
        ),
    );
    env.run(&["backup", "--db", &name]).expect(0);
    let id = env.list(&["--db", &name]).backups[0].id.clone();
    let out = disk.path.join("dump.sql");
    let r = env.run(&["fetch", &id, "--decompress", "-o", out.to_str().unwrap()]);
    r.expect(1);
    assert!(
        r.stderr.contains("writing the output")
            && !r.stderr.contains("failed its checks")
            && !r.stderr.contains("instead"),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read_dir(&disk.path).unwrap().count(), 0);

    // A copy that decompresses to more than its record says is the copy's fault, found before
    // the surplus fills a disk: the other copy is read, and only then does the disk fill.
    let month = std::fs::read_dir(env.storage().join(format!("main/index/db/{name}")))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&month).unwrap()).unwrap();
    doc["backups"][0]["raw_bytes"] = 100.into();
    std::fs::write(&month, doc.to_string()).unwrap();
    let r = env.run(&["fetch", &id, "--decompress", "-o", out.to_str().unwrap()]);
    r.expect(1);
    assert!(
        r.stderr.contains("decompresses to more than the 100 bytes")
            && r.stderr
                .contains("reading the copy on storage 'second' instead")
            && r.stderr.contains("writing the output"),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read_dir(&disk.path).unwrap().count(), 0);
}
