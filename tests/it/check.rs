//! `sqlguard check`: every server and storage reached; what fails is named, exit 1.

use crate::support::{mariadb, s3, Env};

fn check(env: &Env, args: &[&str]) -> (i32, serde_json::Value, String) {
    let mut a = vec!["--json", "check"];
    a.extend_from_slice(args);
    let r = env.run(&a);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", r.stdout, r.stderr));
    (r.code, doc, r.stderr)
}

fn find<'a>(doc: &'a serde_json::Value, kind: &str, name: &str) -> &'a serde_json::Value {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == kind && c["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {doc}"))
}

#[test]
fn a_working_config_passes_and_leaves_nothing_behind() {
    let db = mariadb();
    let name = db.create_shop("check_ok", 5);
    let env = Env::new();
    let bucket = s3().bucket("check");
    env.write_config(
        &format!("databases: {{include: [{name}]}}"),
        &format!(
            "storage:\n  local:\n    type: local\n    path: {{storage}}\n{}",
            s3().storage_yaml("offsite", &bucket)
        ),
    );
    std::fs::create_dir_all(env.storage()).unwrap();
    let (code, doc, stderr) = check(&env, &[]);
    assert_eq!(code, 0, "{doc}\n{stderr}");
    assert_eq!(doc["ok"], true);
    let server = find(&doc, "server", "main");
    assert!(
        server["detail"].as_str().unwrap().contains("MariaDB"),
        "{server}"
    );
    for st in ["local", "offsite"] {
        assert_eq!(find(&doc, "storage", st)["ok"], true, "{doc}");
    }
    // The probes are gone.
    assert!(env.stored_files().is_empty(), "{:?}", env.stored_files());
    assert!(s3().keys(&bucket).is_empty(), "{:?}", s3().keys(&bucket));
    // The table on stdout, and --quiet keeps a success silent.
    let table = env.run(&["check"]);
    assert!(
        table.stdout.contains("storage") && table.stdout.contains("ok"),
        "{}",
        table.stdout
    );
    let quiet = env.run(&["--quiet", "check"]);
    assert_eq!(
        (quiet.code, quiet.stdout.as_str(), quiet.stderr.as_str()),
        (0, "", "")
    );
}

#[test]
fn missing_privileges_a_wrong_password_and_a_dead_storage_are_named() {
    let db = mariadb();
    let name = db.create_shop("check_priv", 5);
    let tag = format!("{:06x}", fastrand::u32(..0xffffff));
    let user = format!("chk_{tag}");
    db.sql(
        None,
        &format!(
            "CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY 'pw{tag}';
             GRANT SELECT, SHOW VIEW ON `{name}`.* TO '{user}'@'127.0.0.1';"
        ),
    );
    let env = Env::new();
    std::fs::write(env.path("pw"), format!("pw{tag}\n")).unwrap();
    std::fs::write(env.path("wrong"), "nope\n").unwrap();
    // A "storage directory" that is a file: nothing can be written under it.
    std::fs::write(env.path("not-a-dir"), "").unwrap();
    let text = format!(
        "servers:\n  main:\n    host: 127.0.0.1\n    port: {p}\n    user: {user}\n    password_file: {pw}\n    databases: {{include: [{name}]}}\n  other:\n    host: 127.0.0.1\n    port: {p}\n    user: {user}\n    password_file: {wrong}\nstorage:\n  local:\n    type: local\n    path: {dir}\n  broken:\n    type: local\n    path: {bad}\n",
        p = db.port,
        pw = env.path("pw").display(),
        wrong = env.path("wrong").display(),
        dir = env.storage().display(),
        bad = env.path("not-a-dir").display(),
    );
    std::fs::create_dir_all(env.storage()).unwrap();
    std::fs::write(env.config(), text).unwrap();
    let (code, doc, stderr) = check(&env, &[]);
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["ok"], false);
    let main = find(&doc, "server", "main");
    let detail = main["detail"].as_str().unwrap();
    assert_eq!(main["ok"], false);
    assert!(
        detail.contains("TRIGGER, EVENT, LOCK TABLES")
            && detail.contains(&name)
            && detail.contains(&user),
        "{detail}"
    );
    let other = find(&doc, "server", "other");
    assert_eq!(other["ok"], false);
    assert!(
        other["detail"].as_str().unwrap().contains("Access denied"),
        "{other}"
    );
    assert!(
        !other["detail"].as_str().unwrap().contains("nope"),
        "a password leaked: {other}"
    );
    assert_eq!(find(&doc, "storage", "local")["ok"], true);
    assert_eq!(find(&doc, "storage", "broken")["ok"], false);
    assert!(
        stderr.contains("storage 'broken'") && stderr.contains("server 'other'"),
        "{stderr}"
    );
    // Granting what was missing makes it pass.
    db.sql(
        None,
        &format!("GRANT TRIGGER, EVENT, LOCK TABLES ON `{name}`.* TO '{user}'@'127.0.0.1';"),
    );
    let (code, doc, _) = check(&env, &["--server", "main", "--storage", "local"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["checks"].as_array().unwrap().len(), 2);
    // An unknown name is a usage error.
    env.run(&["check", "--server", "nope"]).expect(2);
}

/// Every run pushes its metrics: `check` reaches the Pushgateway too, and a required one out of
/// reach fails it (a hostile review's: check said ok, and every run then failed).
#[test]
fn the_pushgateway_is_checked_when_metrics_are_configured() {
    let env = Env::new();
    let with = |url: &str| {
        env.write_config(
            "",
            &format!("storage:\n  local:\n    type: local\n    path: {{storage}}\nmetrics:\n  pushgateway: {url}\n  required: true\n  timeout: 2s\n"),
        );
    };
    std::fs::create_dir_all(env.storage()).unwrap();
    let up = crate::support::pushgateway();
    with(up);
    let (code, doc, stderr) = check(&env, &[]);
    assert_eq!(code, 0, "{doc}\n{stderr}");
    let row = find(&doc, "pushgateway", &format!("{up}/"));
    assert!(
        row["detail"].as_str().unwrap().contains("Pushgateway"),
        "{row}"
    );
    let down = crate::metrics::down_url();
    with(&down);
    let (code, doc, _) = check(&env, &[]);
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["ok"], false);
    let row = find(&doc, "pushgateway", &format!("{down}/"));
    assert_eq!(row["ok"], false, "{row}");
    assert!(
        row["detail"].as_str().unwrap().contains("metrics.required"),
        "{row}"
    );
    // Narrowed to a server or a storage, check probes only those.
    let (code, doc, _) = check(&env, &["--storage", "local"]);
    assert_eq!(code, 0, "{doc}");
}
