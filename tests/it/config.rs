//! Config errors exit 2 and name the file, line and key; secrets never show.

use crate::support::Env;

#[test]
fn unknown_key_exits_2_naming_file_line_and_key() {
    let env = Env::new();
    env.write_local_config("pasword: x");
    let r = env.run(&["config", "check"]);
    r.expect(2);
    assert!(r.stderr.contains("sqlguard.yaml"), "{}", r.stderr);
    assert!(
        r.stderr.contains("pasword") && r.stderr.contains("line 7"),
        "{}",
        r.stderr
    );
}

#[test]
fn bad_duration_exits_2_naming_the_value_and_line() {
    let env = Env::new();
    env.write_config(
        "",
        "storage:\n  local:\n    type: local\n    path: {storage}\nbackup_types:\n  daily:\n    retention:\n      keep_within: 7dayz\n",
    );
    let r = env.run(&["config", "check"]);
    r.expect(2);
    assert!(
        r.stderr.contains("7dayz") && r.stderr.contains("line 14"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("e.g. 90m"), "{}", r.stderr);
}

#[test]
fn missing_config_file_exits_2_naming_it() {
    let env = Env::new();
    let r = env.run(&["list"]);
    r.expect(2);
    assert!(
        r.stderr.contains("sqlguard.yaml") && r.stderr.contains("No such file"),
        "{}",
        r.stderr
    );
}

#[test]
fn retention_typo_is_an_error_not_keep_forever() {
    let env = Env::new();
    env.write_config(
        "",
        "storage:\n  local:\n    type: local\n    path: {storage}\nbackup_types:\n  daily:\n    retention:\n      keep_lsat: 7\n",
    );
    let r = env.run(&["config", "check"]);
    r.expect(2);
    assert!(r.stderr.contains("keep_lsat"), "{}", r.stderr);
}

#[test]
fn environment_alone_configures_a_working_setup_and_show_redacts() {
    let env = Env::new();
    let db = crate::support::mariadb();
    let cmd = || {
        let mut c = std::process::Command::new(crate::support::BIN);
        c.current_dir(env.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("SQLGUARD_DB_HOST", "127.0.0.1")
            .env("SQLGUARD_DB_PORT", db.port.to_string())
            .env("SQLGUARD_DB_USER", "root")
            .env("SQLGUARD_DB_PASSWORD", db.password())
            .env("SQLGUARD_STORAGE_PATH", env.storage());
        c
    };
    let r = crate::support::Run::from(cmd().args(["--json", "config", "show"]).output().unwrap());
    r.expect(0);
    assert!(
        !r.stdout.contains(&db.password()),
        "password leaked into config show"
    );
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["servers"][0]["password"], "***");
    assert_eq!(v["servers"][0]["port"], db.port);
    assert_eq!(v["storages"][0]["path"], env.storage().to_str().unwrap());
    // The password and its file both set: refused, as in the config file, never one picked.
    let pw = env.path("pw");
    std::fs::write(&pw, "from-the-file\n").unwrap();
    let r = crate::support::Run::from(
        cmd()
            .env("SQLGUARD_DB_PASSWORD_FILE", &pw)
            .args(["config", "check"])
            .output()
            .unwrap(),
    );
    r.expect(2);
    assert!(
        r.stderr
            .contains("SQLGUARD_DB_PASSWORD or SQLGUARD_DB_PASSWORD_FILE, not both"),
        "{}",
        r.stderr
    );
}

#[test]
fn exit_code_2_for_unknown_type_and_usage_errors() {
    let env = Env::new();
    env.write_local_config("");
    let r = env.run(&["backup", "--type", "yearly"]);
    r.expect(2);
    assert!(
        r.stderr.contains("unknown backup type 'yearly'"),
        "{}",
        r.stderr
    );
    env.run(&["list", "--since", "yesterday"]).expect(2);
    env.run(&["frobnicate"]).expect(2);
}

#[test]
fn dump_options_with_a_password_are_refused() {
    let env = Env::new();
    env.write_local_config("dump_options: [\"--password=oops\"]");
    let r = env.run(&["config", "check"]);
    r.expect(2);
    assert!(
        r.stderr.contains("servers.main.dump_options"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("oops"),
        "the refused option's value leaked: {}",
        r.stderr
    );
}

/// Where state is kept (a local storage, the lock directory, the HTML report) must be an
/// absolute path, from the file or the environment: a relative one names another directory for
/// each working directory, so a timer and a run by hand would keep apart indexes and locks.
#[test]
fn relative_state_paths_are_refused_naming_the_key() {
    let env = Env::new();
    for (extra, key) in [
        ("storage:\n  local:\n    type: local\n    path: relative/dir\n", "storage.local.path"),
        (
            "storage:\n  local:\n    type: local\n    path: {storage}\nlock_dir: locks\n",
            "lock_dir",
        ),
        (
            "storage:\n  local:\n    type: local\n    path: {storage}\nreport:\n  html: out/report.html\n",
            "report.html",
        ),
    ] {
        env.write_config("", extra);
        // (The tests' own SQLGUARD_LOCK_DIR would stand in for the file's.)
        let r = crate::support::Run::from(
            env.cmd()
                .env_remove("SQLGUARD_LOCK_DIR")
                .args(["config", "check"])
                .output()
                .unwrap(),
        );
        r.expect(2);
        assert!(
            r.stderr.contains(key) && r.stderr.contains("is a relative path"),
            "{key}: {}",
            r.stderr
        );
    }
    env.write_config(
        "",
        "storage:\n  local:\n    type: local\n    path: {storage}\n",
    );
    for var in ["SQLGUARD_STORAGE_PATH", "SQLGUARD_LOCK_DIR"] {
        let r = env.run_with(&[(var, "relative/x")], &["config", "check"]);
        r.expect(2);
        assert!(
            r.stderr.contains(var) && r.stderr.contains("is a relative path"),
            "{var}: {}",
            r.stderr
        );
    }
    env.run(&["config", "check", "--no-push"]).expect(0);
}

/// A value from the environment is named by its variable, `config check --no-push` still reads
/// the metrics section (it pushes nothing anyway), and `list` of a type no config names says so.
#[test]
fn errors_name_where_the_value_came_from() {
    let env = Env::new();
    env.write_config(
        "",
        "storage:\n  local:\n    type: local\n    path: {storage}\n",
    );
    for (var, value) in [
        ("SQLGUARD_PARALLEL", "0"),
        ("SQLGUARD_COMPRESSION_LEVEL", "99"),
    ] {
        let r = env.run_with(&[(var, value)], &["config", "check"]);
        r.expect(2);
        assert!(
            r.stderr.contains(&format!("environment variable {var}"))
                && !r.stderr.contains("config file"),
            "{var}: {}",
            r.stderr
        );
    }
    env.write_config(
        "",
        "storage:\n  local:\n    type: local\n    path: {storage}\nmetrics:\n  pushgateway: ftp://x\n",
    );
    let r = env.run(&["--no-push", "config", "check"]);
    r.expect(2);
    assert!(r.stderr.contains("metrics.pushgateway"), "{}", r.stderr);
    env.write_config(
        "",
        "storage:\n  local:\n    type: local\n    path: {storage}\n",
    );
    let r = env.run(&["list", "-t", "nosuchtype"]);
    r.expect(0);
    assert!(
        r.stdout.contains("no backups match")
            && r.stdout.contains("type 'nosuchtype' is not configured"),
        "{}",
        r.stdout
    );
}
