//! Metrics against a real Pushgateway: values and labels after real runs, and that no run erases
//! another's metrics.

use crate::support::{mariadb, pushgateway, sample, scrape, write_script, Env, Run};

/// A config whose metrics go to the shared Pushgateway under a unique instance label.
fn setup(extra_server: &str, metrics_extra: &str) -> (Env, String) {
    let env = Env::new();
    let instance = format!("it-{:08x}", fastrand::u32(..));
    env.write_config(
        extra_server,
        &format!(
            "storage:\n  local:\n    type: local\n    path: {{storage}}\nbackup_types:\n  hourly:\n    schedule: \"0 * * * *\"\n    retention: {{keep_last: 1}}\n  daily:\n    schedule: \"30 2 * * *\"\n    retention: {{keep_last: 1}}\nmetrics:\n  pushgateway: {}\n  instance: {instance}\n  grouping: {{env: test}}\n{metrics_extra}",
            pushgateway()
        ),
    );
    (env, instance)
}

#[test]
fn a_failed_backup_keeps_the_last_success_timestamp() {
    let db = mariadb();
    let name = db.create_shop("metrics", 100);
    // The dump fails only when the flag file exists.
    let (env, instance) = setup("dump_tool: {wrapper}", "");
    let flag = env.path("fail-now");
    write_script(
        &env.path("wrapper"),
        &format!("[ -f {} ] && [ \"$1\" != --version ] && {{ echo 'mariadb-dump: Got error: 2013: Lost connection' >&2; exit 2; }}\nexec mariadb-dump \"$@\"", flag.display()),
    );
    env.edit_config("{wrapper}", env.path("wrapper").to_str().unwrap());

    env.run(&["backup", "--type", "daily", "--db", &name])
        .expect(0);
    let s = scrape(&instance);
    let l = [
        ("server", "main"),
        ("database", name.as_str()),
        ("type", "daily"),
        ("env", "test"),
    ];
    let success = sample(&s, "sqlguard_backup_last_success_timestamp_seconds", &l)
        .expect("last success pushed");
    let rec = env.list(&[]).backups.remove(0);
    let finished = chrono::DateTime::parse_from_rfc3339(&rec.finished_at)
        .unwrap()
        .timestamp_millis() as f64
        / 1000.0;
    assert!((success - finished).abs() < 0.01, "{success} vs {finished}");
    assert_eq!(sample(&s, "sqlguard_backup_last_status", &l), Some(1.0));
    assert_eq!(
        sample(&s, "sqlguard_backup_last_size_bytes", &l),
        Some(rec.compressed_bytes as f64)
    );
    assert_eq!(
        sample(&s, "sqlguard_backup_last_raw_size_bytes", &l),
        Some(rec.raw_bytes as f64)
    );
    assert_eq!(
        sample(
            &s,
            "sqlguard_backup_storage_last_status",
            &[("storage", "local"), ("database", name.as_str())]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &s,
            "sqlguard_backup_expected_interval_seconds",
            &[("type", "daily")]
        ),
        Some(86_400.0)
    );
    assert_eq!(
        sample(
            &s,
            "sqlguard_run_last_status",
            &[("command", "backup"), ("type", "daily")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &s,
            "sqlguard_storage_backups",
            &[("storage", "local"), ("server", "main")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &s,
            "sqlguard_storage_bytes",
            &[("storage", "local"), ("server", "main")]
        ),
        Some(rec.compressed_bytes as f64)
    );
    // The server/type group's push time (the run's group has a `command` label too).
    assert!(s.iter().any(|x| x.name == "push_time_seconds"
        && x.labels.get("type").map(String::as_str) == Some("daily")
        && !x.labels.contains_key("command")));

    std::fs::write(&flag, "").unwrap();
    env.run(&["backup", "--type", "daily", "--db", &name])
        .expect(1);
    let s = scrape(&instance);
    assert_eq!(sample(&s, "sqlguard_backup_last_status", &l), Some(0.0));
    assert_eq!(
        sample(&s, "sqlguard_backup_last_success_timestamp_seconds", &l),
        Some(success),
        "the failed run erased the last success"
    );
    assert_eq!(
        sample(
            &s,
            "sqlguard_backup_storage_last_status",
            &[("storage", "local"), ("database", name.as_str())]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &s,
            "sqlguard_run_last_status",
            &[("command", "backup"), ("type", "daily")]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(&s, "sqlguard_storage_backups", &[("storage", "local")]),
        Some(1.0)
    );
}

#[test]
fn hourly_then_daily_and_prune_do_not_erase_each_other() {
    let db = mariadb();
    let name = db.create_shop("metrics2", 50);
    let (env, instance) = setup("", "");
    env.run(&["backup", "--type", "hourly", "--db", &name])
        .expect(0);
    env.run(&["backup", "--type", "hourly", "--db", &name])
        .expect(0);
    env.run(&["backup", "--type", "daily", "--db", &name])
        .expect(0);
    let s = scrape(&instance);
    for t in ["hourly", "daily"] {
        let l = [("database", name.as_str()), ("type", t)];
        assert!(
            sample(&s, "sqlguard_backup_last_success_timestamp_seconds", &l).is_some(),
            "{t} erased"
        );
        assert!(
            sample(
                &s,
                "sqlguard_run_last_status",
                &[("command", "backup"), ("type", t)]
            )
            .is_some(),
            "{t} run erased"
        );
    }
    assert_eq!(
        sample(&s, "sqlguard_storage_backups", &[("storage", "local")]),
        Some(3.0)
    );

    let r = env.run(&["prune"]);
    r.expect(0);
    let s = scrape(&instance);
    assert_eq!(sample(&s, "sqlguard_prune_removed_backups", &[]), Some(1.0));
    assert!(sample(&s, "sqlguard_prune_removed_bytes", &[]).unwrap() > 0.0);
    assert_eq!(
        sample(&s, "sqlguard_run_last_status", &[("command", "prune")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&s, "sqlguard_storage_backups", &[("storage", "local")]),
        Some(2.0)
    );
    for t in ["hourly", "daily"] {
        let l = [("database", name.as_str()), ("type", t)];
        assert!(
            sample(&s, "sqlguard_backup_last_success_timestamp_seconds", &l).is_some(),
            "prune erased {t}"
        );
    }
}

pub fn down_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}

#[test]
fn pushgateway_down_warns_once_and_keeps_the_exit_status() {
    let db = mariadb();
    let name = db.create_shop("metrics_down", 20);
    let env = Env::new();
    let url = down_url();
    env.write_config("", &format!("storage:\n  local:\n    type: local\n    path: {{storage}}\nmetrics:\n  pushgateway: {url}\n"));
    let r = env.run(&["backup", "--db", &name]);
    r.expect(0);
    let warnings: Vec<&str> = r.stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{}", r.stderr);
    assert!(
        warnings[0].contains(&url),
        "the warning names the URL: {}",
        warnings[0]
    );
    // --no-push: not even a warning.
    let r = env.run(&["--no-push", "backup", "--db", &name]);
    r.expect(0);
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
    let r = Run::from(
        env.cmd()
            .env("SQLGUARD_NO_PUSH", "true")
            .args(["backup", "--db", &name])
            .output()
            .unwrap(),
    );
    r.expect(0);
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
}

#[test]
fn required_metrics_turn_a_failed_push_into_exit_1() {
    let db = mariadb();
    let name = db.create_shop("metrics_req", 20);
    let env = Env::new();
    env.write_config("", &format!("storage:\n  local:\n    type: local\n    path: {{storage}}\nmetrics:\n  pushgateway: {}\n  required: true\n", down_url()));
    env.run(&["backup", "--db", &name]).expect(1);
}

/// Issue 13: a run that cannot reach the server records a failure for database `*`; once a later
/// run of that server and type succeeds, the report shows nothing failing and the `*` series is
/// gone from the Pushgateway (so the shipped alert resolves; promtool tests that sequence).
#[test]
fn a_server_outage_clears_after_the_next_successful_run() {
    let db = mariadb();
    let tag = format!("outage{:06x}", fastrand::u32(..0xffffff));
    db.sql(None, &format!("CREATE DATABASE {tag}_a"));
    db.sql(
        Some(&format!("{tag}_a")),
        "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1)",
    );
    let (env, instance) = setup(&format!("databases: {{include: [\"{tag}_*\"]}}"), "");
    let good = std::fs::read_to_string(env.config()).unwrap();
    let closed = crate::support::free_port();
    std::fs::write(
        env.config(),
        good.replace(&format!("port: {}", db.port), &format!("port: {closed}")),
    )
    .unwrap();
    env.run(&["backup", "--type", "daily"]).expect(1);
    let star = [
        ("server", "main"),
        ("database", "*"),
        ("type", "daily"),
        ("env", "test"),
    ];
    assert_eq!(
        sample(&scrape(&instance), "sqlguard_backup_last_status", &star),
        Some(0.0)
    );
    let report = |env: &Env| -> serde_json::Value {
        let r = env.run(&["report", "--json"]);
        r.expect(0);
        serde_json::from_str(&r.stdout).unwrap()
    };
    assert_eq!(report(&env)["summary"]["failing"], 1);

    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(env.config(), &good).unwrap();
    env.run(&["backup", "--type", "daily"]).expect(0);
    let doc = report(&env);
    assert_eq!(doc["summary"]["failing"], 0, "{doc}");
    assert_eq!(doc["summary"]["healthy"], 1, "{doc}");
    let s = scrape(&instance);
    assert_eq!(
        sample(&s, "sqlguard_backup_last_status", &star),
        None,
        "the * series stayed"
    );
    let a = [
        ("server", "main"),
        ("database", &format!("{tag}_a")[..]),
        ("type", "daily"),
        ("env", "test"),
    ];
    assert_eq!(sample(&s, "sqlguard_backup_last_status", &a), Some(1.0));
}

/// Adds server `name` to the config: the same MariaDB as `main`, under another name.
fn add_server(env: &Env, name: &str) {
    let text = std::fs::read_to_string(env.config()).unwrap();
    let (servers, rest) = text.split_once("storage:\n").unwrap();
    let more = servers
        .replacen("  main:", &format!("  {name}:"), 1)
        .replacen("servers:\n", "", 1);
    std::fs::write(env.config(), format!("{servers}{more}storage:\n{rest}")).unwrap();
}

/// Run metrics are per server: a prune of one server that fails is not hidden by a prune of
/// another that succeeds, and the server-less group of older versions is deleted.
#[test]
fn runs_over_different_servers_keep_their_own_status() {
    let db = mariadb();
    let name = db.create_shop("metrics_servers", 20);
    let (env, instance) = setup("", "");
    add_server(&env, "second");
    // What an older version pushed: one prune group for every server.
    let legacy = format!(
        "{}/metrics/job/sqlguard/instance/{instance}/env/test/command/prune",
        pushgateway()
    );
    let put = std::process::Command::new("curl")
        .args([
            "-sf",
            "-X",
            "PUT",
            "--data-binary",
            "# TYPE sqlguard_run_last_status gauge\nsqlguard_run_last_status{command=\"prune\"} 1\n",
            &legacy,
        ])
        .status()
        .unwrap();
    assert!(put.success());
    let prune_status = |s: &[crate::support::Sample], server: Option<&str>| {
        let mut l = vec![("command", "prune")];
        l.extend(server.map(|s| ("server", s)));
        sample(s, "sqlguard_run_last_status", &l)
    };
    assert_eq!(prune_status(&scrape(&instance), None), Some(1.0));

    for server in ["main", "second"] {
        env.run(&[
            "backup", "--type", "daily", "--server", server, "--db", &name,
        ])
        .expect(0);
    }
    // A verify of one copy of main says nothing about second.
    let main_copy = env.list(&["--server", "main"]).backups.remove(0).id;
    env.run(&["verify", &main_copy]).expect(0);
    let verify_status = |s: &[crate::support::Sample], server: &str| {
        sample(
            s,
            "sqlguard_run_last_status",
            &[("command", "verify"), ("server", server)],
        )
    };
    let s = scrape(&instance);
    assert_eq!(verify_status(&s, "main"), Some(1.0));
    assert_eq!(verify_status(&s, "second"), None, "{s:?}");
    // The second server's index is damaged: its prune fails; the main one's succeeds after.
    let dir = env.storage().join("second/index/db").join(&name);
    let month = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    std::fs::write(&month, b"{\"schema_version\": 2, \"backups\": [tru").unwrap();
    env.run(&["prune", "--server", "second"]).expect(1);
    env.run(&["prune", "--server", "main"]).expect(0);
    let s = scrape(&instance);
    assert_eq!(prune_status(&s, Some("second")), Some(0.0), "{s:?}");
    assert_eq!(prune_status(&s, Some("main")), Some(1.0));
    assert!(
        !s.iter()
            .any(|x| x.name == "sqlguard_run_last_status" && !x.labels.contains_key("server")),
        "the server-less group of an older version stays: {s:?}"
    );
    // A backup's run status is per server too.
    assert_eq!(
        sample(
            &s,
            "sqlguard_run_last_status",
            &[
                ("command", "backup"),
                ("type", "daily"),
                ("server", "second")
            ]
        ),
        Some(1.0)
    );
}

/// Every copy whose last verification failed is counted, not only the newest verified one, and
/// the count falls back to 0 once the damaged copy is pruned.
#[test]
fn a_damaged_older_copy_is_counted_until_it_is_pruned() {
    let db = mariadb();
    let name = db.create_shop("metrics_verify", 20);
    let (env, instance) = setup("", "");
    for _ in 0..2 {
        env.run(&["backup", "--type", "daily", "--db", &name])
            .expect(0);
    }
    let mut copies = env.list(&[]).backups;
    copies.sort_by(|a, b| a.started_at.cmp(&b.started_at));
    crate::support::damage(&env.storage().join(copies[0].key.as_ref().unwrap()));
    env.run(&["verify", "--sample", "10", "--db", &name])
        .expect(1);
    let l = [
        ("database", name.as_str()),
        ("type", "daily"),
        ("storage", "local"),
    ];
    let s = scrape(&instance);
    assert_eq!(sample(&s, "sqlguard_verify_failed_copies", &l), Some(1.0));
    // The newest verified copy is intact: the metric the older alert reads misses the damage.
    assert_eq!(sample(&s, "sqlguard_verify_last_status", &l), Some(1.0));
    assert_eq!(
        sample(
            &s,
            "sqlguard_run_last_status",
            &[("command", "verify"), ("server", "main")]
        ),
        Some(0.0)
    );
    // A damaged copy takes no keep_last place, and stays for failed_keep_within (7d here) for a
    // person to look at: the prune's own push still counts it.
    env.run(&["prune"]).expect(0);
    assert_eq!(env.list(&[]).backups.len(), 2);
    let s = scrape(&instance);
    assert_eq!(sample(&s, "sqlguard_verify_failed_copies", &l), Some(1.0));
    // Once failed_keep_within is over, prune removes it: its push says so, and the next verify
    // finds nothing failed.
    let config = std::fs::read_to_string(env.config()).unwrap().replace(
        "daily:\n    schedule: \"30 2 * * *\"\n    retention: {keep_last: 1}",
        "daily:\n    schedule: \"30 2 * * *\"\n    retention: {keep_last: 1, failed_keep_within: 0s}",
    );
    assert!(config.contains("failed_keep_within: 0s"));
    std::fs::write(env.config(), config).unwrap();
    // Older than 0s: a second at least.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    env.run(&["prune"]).expect(0);
    assert_eq!(env.list(&[]).backups.len(), 1);
    let s = scrape(&instance);
    assert_eq!(sample(&s, "sqlguard_verify_failed_copies", &l), Some(0.0));
    env.run(&["verify", "--sample", "10", "--db", &name])
        .expect(0);
    let s = scrape(&instance);
    assert_eq!(sample(&s, "sqlguard_verify_failed_copies", &l), Some(0.0));
}

/// The groups of a server or a backup type removed from the config are deleted by its next run
/// (their alerts would fire for ever), and only the groups this config file pushed.
#[test]
fn groups_of_what_the_config_no_longer_has_are_deleted() {
    let db = mariadb();
    let name = db.create_shop("metrics_removed", 20);
    let (env, instance) = setup("", "");
    // Another config file with the same instance label and storage name, and a server of its own.
    let other = Env::new();
    std::fs::write(
        other.config(),
        std::fs::read_to_string(env.config())
            .unwrap()
            .replace("  main:", "  elsewhere:")
            .replace(
                env.storage().to_str().unwrap(),
                other.storage().to_str().unwrap(),
            ),
    )
    .unwrap();
    add_server(&env, "second");
    for (t, server) in [("hourly", "main"), ("daily", "main"), ("daily", "second")] {
        env.run(&["backup", "--type", t, "--server", server, "--db", &name])
            .expect(0);
    }
    other
        .run(&[
            "backup",
            "--type",
            "daily",
            "--server",
            "elsewhere",
            "--db",
            &name,
        ])
        .expect(0);
    let s = scrape(&instance);
    // Both files' figures of their storage `local` stay: one group per storage and server.
    for server in ["main", "elsewhere"] {
        assert_eq!(
            sample(
                &s,
                "sqlguard_storage_backups",
                &[("storage", "local"), ("server", server)]
            ),
            Some(if server == "main" { 2.0 } else { 1.0 }),
            "{server}: {s:?}"
        );
    }
    let has = |s: &[crate::support::Sample], k: &str, v: &str| {
        s.iter()
            .any(|x| x.labels.get(k).map(String::as_str) == Some(v))
    };
    assert!(has(&s, "type", "hourly") && has(&s, "server", "second"));

    // `hourly` and `second` leave the config; its next run deletes their groups.
    let text = std::fs::read_to_string(env.config()).unwrap();
    let (servers, rest) = text.split_once("storage:\n").unwrap();
    let main_only = servers.split("  second:").next().unwrap();
    let rest = rest.replace(
        "  hourly:\n    schedule: \"0 * * * *\"\n    retention: {keep_last: 1}\n",
        "",
    );
    let reduced = format!("{main_only}storage:\n{rest}");
    let daily = [
        "backup", "--type", "daily", "--server", "main", "--db", &name,
    ];
    // A run that loaded the reduced file while an edit put them back (its before hook stands in
    // for the editor) deletes nothing: the file as it is now still has them.
    let full = env.path("full.yaml");
    std::fs::write(&full, &text).unwrap();
    let config = env.config();
    std::fs::write(
        &config,
        format!(
            "{reduced}hooks:\n  backup:\n    before: [cp, {}, {}]\n",
            full.display(),
            config.display()
        ),
    )
    .unwrap();
    let r = env.run(&daily);
    r.expect(0);
    assert!(
        !r.stderr.contains("deleted the Pushgateway group"),
        "{}",
        r.stderr
    );
    let s = scrape(&instance);
    assert!(
        has(&s, "type", "hourly") && has(&s, "server", "second"),
        "{s:?}"
    );
    std::fs::write(&config, &reduced).unwrap();
    let r = env.run(&daily);
    r.expect(0);
    assert!(
        r.stderr.contains("deleted the Pushgateway group"),
        "{}",
        r.stderr
    );
    let s = scrape(&instance);
    assert!(!has(&s, "type", "hourly"), "{s:?}");
    assert!(!has(&s, "server", "second"), "{s:?}");
    // What this config still has, and what the other config pushed, stay.
    assert!(has(&s, "server", "main") && has(&s, "type", "daily"));
    assert!(
        has(&s, "server", "elsewhere"),
        "another config's group was deleted"
    );
}

/// A Pushgateway that refuses deletions and answers the listing with something else: every group
/// of the run is still pushed (before any deletion), each refusal is a warning, and the exit
/// status stays 0 even with `metrics.required`.
#[test]
fn refused_deletions_and_a_bad_listing_are_warnings() {
    let db = mariadb();
    let name = db.create_shop("metrics_refusing", 10);
    let dir = tempfile::tempdir().unwrap();
    let (port_file, log) = (dir.path().join("port"), dir.path().join("log"));
    let mut child = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/refusing_pushgateway.py"
        ))
        .args([&port_file, &log])
        .spawn()
        .expect("python3 runs the refusing Pushgateway");
    let port = crate::support::port_from_file(&mut child, &port_file, "the refusing Pushgateway");
    let env = Env::new();
    env.write_config(
        "",
        &format!("storage:\n  local:\n    type: local\n    path: {{storage}}\nmetrics:\n  pushgateway: http://127.0.0.1:{port}\n  instance: refusing\n  required: true\n"),
    );
    let r = env.run(&["backup", "--db", &name]);
    let _ = child.kill();
    let _ = child.wait();
    r.expect(0);
    for warning in [
        "could not delete the Pushgateway group command=backup type=manual that earlier versions pushed",
        "could not list the Pushgateway's groups",
    ] {
        assert!(r.stderr.contains(warning), "{warning}: {}", r.stderr);
    }
    let log = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let first_delete = lines.iter().position(|l| l.starts_with("DELETE")).unwrap();
    let last_push = lines.iter().rposition(|l| l.starts_with("PUT")).unwrap();
    assert!(last_push < first_delete, "{log}");
    assert!(
        log.contains(
            "PUT /metrics/job/sqlguard/instance/refusing/command/backup/type/manual/server/main\n"
        ),
        "{log}"
    );
}

/// A hostile review's: with one storage's index out of reach, a prune pushed what the other
/// storage held alone, and the series of a damaged copy on the unreachable one vanished, and
/// its alerts resolved. A storage that cannot be read keeps its series as last pushed, and so
/// does a type's group while one of its storages cannot be read.
#[test]
fn a_storage_out_of_reach_keeps_its_signals() {
    let db = mariadb();
    let name = db.create_shop("metrics_reach", 20);
    let env = Env::new();
    let instance = format!("it-{:08x}", fastrand::u32(..));
    let second = env.path("second");
    env.write_config(
        "",
        &format!(
            "storage:\n  local:\n    type: local\n    path: {{storage}}\n  second:\n    type: local\n    path: {}\nbackup_types:\n  daily:\n    schedule: \"30 2 * * *\"\n    retention: {{keep_last: 1}}\n    restore_test_within: 7d\nmetrics:\n  pushgateway: {}\n  instance: {instance}\n",
            second.display(),
            pushgateway()
        ),
    );
    env.run(&["backup", "--type", "daily", "--db", &name])
        .expect(0);
    // A restore test passes on the second storage (only its index records it).
    env.run(&[
        "verify",
        "--latest",
        "--restore-test",
        "--storage",
        "second",
        "--db",
        &name,
    ])
    .expect(0);
    let tested = |s: &[crate::support::Sample]| {
        sample(
            s,
            "sqlguard_restore_test_last_success_timestamp_seconds",
            &[("database", name.as_str()), ("type", "daily")],
        )
    };
    let passed = tested(&scrape(&instance));
    assert!(passed.is_some_and(|t| t > 0.0), "{passed:?}");
    let copy = env.list(&["--storage", "second"]).backups.remove(0);
    crate::support::damage(&second.join(copy.key.as_ref().unwrap()));
    env.run(&["verify", "--latest", "--db", &name]).expect(1);
    let on = |storage: &'static str| {
        [
            ("database", name.clone()),
            ("type", "daily".to_string()),
            ("storage", storage.to_string()),
        ]
    };
    let signals = |s: &[crate::support::Sample]| {
        let l = on("second");
        let l: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
        (
            sample(s, "sqlguard_verify_failed_copies", &l),
            sample(s, "sqlguard_verify_last_status", &l),
            sample(s, "sqlguard_backup_storage_last_status", &l),
        )
    };
    let before = signals(&scrape(&instance));
    assert_eq!(before, (Some(1.0), Some(0.0), Some(1.0)));
    // What an earlier version pushed: the verifications in the server/type group, which the
    // prune below leaves as it is. The storage groups' verifications must not collide with it
    // (the Pushgateway refuses a push that repeats another group's series).
    let legacy = format!(
        "{}/metrics/job/sqlguard/instance/{instance}/server/main/type/daily",
        pushgateway()
    );
    let put = std::process::Command::new("curl")
        .args([
            "-sf",
            "-X",
            "POST",
            "--data-binary",
            &format!("# TYPE sqlguard_verify_last_status gauge\nsqlguard_verify_last_status{{database=\"{name}\",storage=\"local\"}} 1\n"),
            &legacy,
        ])
        .status()
        .unwrap();
    assert!(put.success());
    // The second storage's index out of reach: a file where its server directory was.
    let moved = env.path("moved");
    std::fs::rename(second.join("main"), &moved).unwrap();
    std::fs::write(second.join("main"), "not a directory").unwrap();
    let r = env.run(&["prune"]);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("could not push"), "{}", r.stderr);
    assert_eq!(signals(&scrape(&instance)), before, "{}", r.stderr);
    // A backup of the type meanwhile says its own failure there, and leaves the restore test
    // (which only the second storage's index holds) as it was, not overdue.
    let r = env.run(&["backup", "--type", "daily", "--db", &name]);
    assert_ne!(r.code, 0, "{}", r.stderr);
    let s = scrape(&instance);
    assert_eq!(tested(&s), passed);
    let l = on("second");
    let l: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        sample(&s, "sqlguard_backup_storage_last_status", &l),
        Some(0.0)
    );
    assert_eq!(sample(&s, "sqlguard_verify_failed_copies", &l), Some(1.0));
    std::fs::remove_file(second.join("main")).unwrap();
    std::fs::rename(&moved, second.join("main")).unwrap();
    // Within reach again, the next run pushes what it holds.
    env.run(&["prune"]).expect(0);
    let after = signals(&scrape(&instance));
    assert_eq!((after.0, after.1), (before.0, before.1));
}

/// A hostile review's: a prune that read the indexes, then waited minutes on a storage that
/// hung, pushed its older view over the groups a backup had pushed meanwhile (a failure became
/// a success). A group pushed by a run that began reading the indexes later is left as it is.
#[test]
fn an_older_view_of_the_indexes_never_replaces_a_newer_one() {
    let db = mariadb();
    let name = db.create_shop("metrics_view", 20);
    let (env, instance) = setup("", "");
    env.run(&["backup", "--type", "daily", "--db", &name])
        .expect(0);
    let group = format!(
        "{}/metrics/job/sqlguard/instance/{instance}/env/test/server/main/type/daily",
        pushgateway()
    );
    // What a run that read the indexes at `at` pushed: this database's status at 0.
    let pushed_by = |at: f64| {
        let body = format!(
            "# TYPE sqlguard_index_read_timestamp_seconds gauge\nsqlguard_index_read_timestamp_seconds {at}\n# TYPE sqlguard_backup_last_status gauge\nsqlguard_backup_last_status{{database=\"{name}\",server=\"main\",type=\"daily\"}} 0\n"
        );
        let post = std::process::Command::new("curl")
            .args(["-sf", "-X", "POST", "--data-binary", &body, &group])
            .status()
            .unwrap();
        assert!(post.success());
    };
    let status = || {
        sample(
            &scrape(&instance),
            "sqlguard_backup_last_status",
            &[("database", name.as_str()), ("type", "daily")],
        )
    };
    // Read 30 s after the prune below begins reading: newer.
    let now = || chrono::Utc::now().timestamp() as f64;
    pushed_by(now() + 30.0);
    env.run(&["prune"]).expect(0);
    assert_eq!(status(), Some(0.0), "a newer view was replaced");
    pushed_by(now() - 3600.0);
    env.run(&["prune"]).expect(0);
    assert_eq!(status(), Some(1.0), "an older view was kept");
    // A view from the future (a run with its clock a day ahead) holds nothing.
    pushed_by(now() + 86_400.0);
    env.run(&["prune"]).expect(0);
    assert_eq!(status(), Some(1.0), "a view from the future held the group");
}
