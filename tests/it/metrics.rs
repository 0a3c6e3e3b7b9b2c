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
    let cfg = std::fs::read_to_string(env.config())
        .unwrap()
        .replace("{wrapper}", env.path("wrapper").to_str().unwrap());
    std::fs::write(env.config(), cfg).unwrap();

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
    assert!(sample(
        &s,
        "push_time_seconds",
        &[("type", "daily"), ("server", "main")]
    )
    .is_some());

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

fn down_url() -> String {
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
