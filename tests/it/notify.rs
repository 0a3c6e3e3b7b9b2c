//! Issue 15: hooks and notifications, against a real HTTP receiver (`scripts/http-receiver.py`)
//! that records every request: pings in order with their bodies, a `before` hook that skips the
//! run, a hook killed at its timeout, a receiver that is down, and hooks that see the run's facts
//! and no secret.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{free_port, mariadb, pushgateway, sample, scrape, Env, Receiver, Run};

/// A config whose one server is unreachable (port 1): enough for prune and verify, and for a
/// backup that fails, without a database server. `rest` follows the storage section.
fn offline_config(env: &Env, rest: &str) {
    std::fs::write(
        env.config(),
        format!(
            "servers:\n  main:\n    host: 127.0.0.1\n    port: 1\n    user: root\nstorage:\n  local:\n    type: local\n    path: {}\n{rest}",
            env.storage().display()
        ),
    )
    .unwrap();
}

fn run_with(env: &Env, vars: &[(&str, &str)], args: &[&str]) -> Run {
    let mut c = env.cmd();
    for (k, v) in vars {
        c.env(k, v);
    }
    Run::from(c.args(args).output().unwrap())
}

/// The run's JSON document as hooks and webhooks get it, typed.
#[allow(dead_code)]
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RunDoc {
    schema_version: u32,
    command: String,
    #[serde(rename = "type")]
    backup_type: Option<String>,
    status: String,
    exit_code: Option<i32>,
    host: String,
    started_at: String,
    finished_at: Option<String>,
    duration_seconds: Option<f64>,
    servers: Vec<String>,
    summary: Option<String>,
    skipped: Option<String>,
    failures: Vec<String>,
    sqlguard_version: String,
}

const TOKENS: &[(&str, &str)] = &[
    ("HC_TOKEN", "hc-token-5f1e"),
    ("KUMA_TOKEN", "kuma-token-77ab"),
    ("HOOK_TOKEN", "hook-token-c0de"),
];

fn notify_yaml(r: &Receiver) -> String {
    format!(
        "notify:\n  backup:\n    - healthchecks: \"{}/${{HC_TOKEN}}\"\n    - uptime_kuma: \"{}/${{KUMA_TOKEN}}?status=up&msg=OK&ping=\"\n    - webhook: {}\n      headers:\n        Authorization: \"Bearer ${{HOOK_TOKEN}}\"\n",
        r.url("/ping"),
        r.url("/api/push"),
        r.url("/hook")
    )
}

fn assert_no_token(text: &str, what: &str) {
    for (_, t) in TOKENS {
        assert!(!text.contains(t), "{what} shows a token ({t}):\n{text}");
    }
}

/// Issue 15: a backup that succeeds pings `/start` then the URL itself, pushes `status=up` and
/// posts its JSON document; one that fails pings `/start` then `/fail`, pushes `status=down`, and
/// its document lists the failure. Tokens never reach the log or `config show`.
#[test]
fn notifications_report_start_and_end_in_order_with_their_bodies() {
    let db = mariadb().create_db("notify15");
    mariadb().sql(
        Some(&db),
        "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1);",
    );
    let env = Env::new();
    let r = Receiver::start(&env.path("receiver"));
    env.write_config(
        "",
        &format!(
            "storage:\n  local:\n    type: local\n    path: {{storage}}\n{}",
            notify_yaml(&r)
        ),
    );
    let ok = run_with(&env, TOKENS, &["-v", "backup", "--db", &db]);
    ok.expect(0);
    assert_no_token(&ok.stderr, "the log");
    let got = r.requests();
    let seen: Vec<(&str, &str)> = got
        .iter()
        .map(|q| (q.method.as_str(), q.path.split('?').next().unwrap_or("")))
        .collect();
    assert_eq!(
        seen,
        [
            ("POST", "/ping/hc-token-5f1e/start"),
            ("POST", "/ping/hc-token-5f1e"),
            ("GET", "/api/push/kuma-token-77ab"),
            ("POST", "/hook"),
        ]
    );
    assert!(got[0].body.contains("backup manual") && got[0].body.contains("started"));
    assert!(
        got[1].body.contains("success (exit 0)") && got[1].body.contains("1 of 1 copies stored"),
        "{}",
        got[1].body
    );
    assert!(got[1].headers["content-type"].starts_with("text/plain"));
    assert!(
        got[2].path.contains("status=up") && got[2].path.contains("msg=sqlguard+backup+manual"),
        "{}",
        got[2].path
    );
    assert_eq!(got[3].headers["authorization"], "Bearer hook-token-c0de");
    assert_eq!(got[3].headers["content-type"], "application/json");
    let doc: RunDoc = serde_json::from_str(&got[3].body).unwrap();
    assert_eq!(
        (
            doc.command.as_str(),
            doc.backup_type.as_deref(),
            doc.status.as_str(),
            doc.exit_code
        ),
        ("backup", Some("manual"), "success", Some(0))
    );
    assert!(
        doc.failures.is_empty() && doc.finished_at.is_some(),
        "{doc:?}"
    );

    // The same notifiers, a server that is down: start, then fail.
    offline_config(&env, &notify_yaml(&r));
    let failed = run_with(&env, TOKENS, &["-v", "backup"]);
    failed.expect(1);
    assert_no_token(&failed.stderr, "the log");
    let got = r.requests()[4..].to_vec();
    let seen: Vec<&str> = got
        .iter()
        .map(|q| q.path.split('?').next().unwrap_or(""))
        .collect();
    assert_eq!(
        seen,
        [
            "/ping/hc-token-5f1e/start",
            "/ping/hc-token-5f1e/fail",
            "/api/push/kuma-token-77ab",
            "/hook"
        ]
    );
    assert!(got[1].body.contains("failure (exit 1)"), "{}", got[1].body);
    assert!(
        got[1].body.lines().any(|l| l.starts_with("- ")),
        "{}",
        got[1].body
    );
    assert!(got[2].path.contains("status=down"), "{}", got[2].path);
    let doc: RunDoc = serde_json::from_str(&got[3].body).unwrap();
    assert_eq!((doc.status.as_str(), doc.exit_code), ("failure", Some(1)));
    assert!(!doc.failures.is_empty(), "{doc:?}");

    // config show: the notifiers in file shape, tokens as their references.
    let shown = run_with(&env, TOKENS, &["config", "show"]);
    shown.expect(0);
    assert_no_token(&shown.stdout, "config show");
    assert!(
        shown.stdout.contains("healthchecks: http://127.0.0.1:")
            && shown.stdout.contains("/ping/${HC_TOKEN}")
            && shown.stdout.contains("Authorization: Bearer ${HOOK_TOKEN}"),
        "{}",
        shown.stdout
    );
}

/// Issue 15: a `before` hook that fails skips the run: exit 1, the reason in the log and in the
/// run's metrics, no record; the failure hooks run (told the run was skipped), the success hook
/// does not, and the ping says fail.
#[test]
fn a_failing_before_hook_skips_the_run() {
    let env = Env::new();
    let r = Receiver::start(&env.path("receiver"));
    let instance = format!("hooks15-{:08x}", fastrand::u32(..));
    let mark = "[sh, -c, 'echo \"$SQLGUARD_HOOK $SQLGUARD_STATUS $SQLGUARD_EXIT_CODE\" >> marks']";
    offline_config(
        &env,
        &format!(
            "hooks:\n  backup:\n    before: [sh, -c, 'echo not today >&2; exit 3']\n    after_success: {mark}\n    after_failure: {mark}\n    finally: {mark}\nnotify:\n  backup:\n    - healthchecks: {}\nmetrics:\n  pushgateway: {}\n  instance: {instance}\n",
            r.url("/hc"),
            pushgateway()
        ),
    );
    let run = env.run(&["backup", "--type", "daily"]);
    run.expect(1);
    assert!(
        run.stderr.contains("backup daily skipped")
            && run.stderr.contains("hooks.backup.before")
            && run.stderr.contains("exit code 3")
            && run.stderr.contains("not today"),
        "{}",
        run.stderr
    );
    // No per-database record: nothing was written to the storage.
    assert!(env.stored_files().is_empty(), "{:?}", env.stored_files());
    assert_eq!(
        std::fs::read_to_string(env.path("marks")).unwrap(),
        "after_failure skipped 1\nfinally skipped 1\n"
    );
    let paths: Vec<String> = r.requests().into_iter().map(|q| q.path).collect();
    assert_eq!(paths, ["/hc/start", "/hc/fail"]);
    assert!(
        r.requests()[1].body.contains("skipped"),
        "{:?}",
        r.requests()
    );
    let samples = scrape(&instance);
    let labels = [("command", "backup"), ("type", "daily")];
    assert_eq!(
        sample(&samples, "sqlguard_run_last_skipped", &labels),
        Some(1.0)
    );
    assert_eq!(
        sample(&samples, "sqlguard_run_last_status", &labels),
        Some(0.0)
    );
}

fn process_gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie waits only for its (new) parent to reap it: it runs no more.
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

/// Issue 15: a hook that hangs is killed at its timeout, with the processes it started (its
/// process group), and the run goes on to its end: skipped for a `before` hook, failed for an
/// `after_success` one.
#[test]
fn a_hanging_hook_is_killed_at_its_timeout() {
    let env = Env::new();
    let hang = "[sh, -c, 'sleep 300 & echo $! > child.pid; wait']";
    offline_config(
        &env,
        &format!("hooks:\n  prune:\n    before: {hang}\n    timeout: 1s\n"),
    );
    let started = Instant::now();
    let run = env.run(&["prune"]);
    run.expect(1);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        run.stderr.contains("hooks.prune.before")
            && run.stderr.contains("timeout of 1s")
            && run.stderr.contains("killed"),
        "{}",
        run.stderr
    );
    let pid = std::fs::read_to_string(env.path("child.pid")).unwrap();
    assert!(process_gone(pid.trim()), "the hook's child {pid} survived");

    std::fs::remove_file(env.path("child.pid")).unwrap();
    offline_config(
        &env,
        &format!("hooks:\n  prune:\n    after_success: {hang}\n    timeout: 1s\n"),
    );
    let run = env.run(&["prune"]);
    run.expect(1);
    assert!(
        run.stderr.contains("hooks.prune.after_success"),
        "{}",
        run.stderr
    );
    let pid = std::fs::read_to_string(env.path("child.pid")).unwrap();
    assert!(process_gone(pid.trim()), "the hook's child {pid} survived");
}

/// Issue 15: a receiver that is down costs one warning and leaves the exit status alone, unless
/// the notifier is `required`; a receiver that answers 500 is retried; the token never shows.
#[test]
fn a_receiver_that_is_down_warns_and_fails_the_run_only_when_required() {
    let env = Env::new();
    let down = format!("http://127.0.0.1:{}/ping/down-token-1234", free_port());
    offline_config(
        &env,
        &format!("notify:\n  prune:\n    - healthchecks: {down}\n      retries: 0\n"),
    );
    let run = env.run(&["prune"]);
    run.expect(0);
    assert!(
        run.stderr.contains("warning")
            && run.stderr.contains("notification failed")
            && run.stderr.contains("connection refused")
            && run.stderr.contains("exit status unchanged"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("down-token-1234"), "{}", run.stderr);
    // One warning for the start ping, one for the end: never more than one per notification.
    assert_eq!(
        run.stderr.matches("notification failed").count(),
        2,
        "{}",
        run.stderr
    );

    offline_config(
        &env,
        &format!("notify:\n  prune:\n    - healthchecks: {down}\n      retries: 0\n      required: true\n"),
    );
    let run = env.run(&["prune"]);
    run.expect(1);
    assert!(
        run.stderr.contains("notify.prune[0]") && run.stderr.contains("required"),
        "{}",
        run.stderr
    );

    // HTTP 500 is retried (2 attempts each for start and end), then warned about.
    let r = Receiver::start(&env.path("receiver"));
    offline_config(
        &env,
        &format!(
            "notify:\n  prune:\n    - healthchecks: {}\n      retries: 1\n",
            r.url("/status-500/hc")
        ),
    );
    let run = env.run(&["prune"]);
    run.expect(0);
    assert!(
        run.stderr.contains("HTTP 500") && run.stderr.contains("after 2 attempts"),
        "{}",
        run.stderr
    );
    let paths: Vec<String> = r.requests().into_iter().map(|q| q.path).collect();
    assert_eq!(
        paths,
        [
            "/status-500/hc/start",
            "/status-500/hc/start",
            "/status-500/hc",
            "/status-500/hc"
        ]
    );
}

/// A reader that stops reading (`sqlguard backup | true`, a log pipe that died) changes nothing
/// about the run: it ends with the exit code of its work, runs its hooks and sends its pings,
/// and a closed stderr is no panic (exit 101).
#[test]
fn a_closed_output_changes_nothing_about_the_run() {
    let env = Env::new();
    let r = Receiver::start(&env.path("receiver"));
    let mark = "[sh, -c, 'echo \"$SQLGUARD_HOOK $SQLGUARD_STATUS $SQLGUARD_EXIT_CODE\" >> marks']";
    offline_config(
        &env,
        &format!(
            "hooks:\n  backup:\n    after_failure: {mark}\n    finally: {mark}\nnotify:\n  backup:\n    - healthchecks: {}\n",
            r.url("/hc")
        ),
    );
    for closed in ["stdout", "stderr", "both"] {
        let _ = std::fs::remove_file(env.path("marks"));
        let mut child = env.spawn(&["backup", "--type", "daily"]);
        if closed != "stderr" {
            drop(child.stdout.take());
        }
        if closed != "stdout" {
            drop(child.stderr.take());
        }
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(1), "{closed} closed");
        assert_eq!(
            std::fs::read_to_string(env.path("marks")).unwrap_or_default(),
            "after_failure failure 1\nfinally failure 1\n",
            "{closed} closed"
        );
    }
    let fails = r
        .requests()
        .into_iter()
        .filter(|q| q.path == "/hc/fail")
        .count();
    assert_eq!(fails, 3);
}

/// A notifier or Pushgateway that answers with a redirect is a failure, never followed: the
/// request carries credentials (a token header, basic auth), and a redirect may lead anywhere.
#[test]
fn a_redirect_is_a_failure_and_credentials_stay_where_they_were_sent() {
    let env = Env::new();
    let r = Receiver::start(&env.path("receiver"));
    let mut gateway = url::Url::parse(&r.url("/status-307/gw")).unwrap();
    gateway.set_username("pguser").unwrap();
    gateway.set_password(Some("pg-secret-9d1e")).unwrap();
    offline_config(
        &env,
        &format!(
            "notify:
  prune:
    - webhook: {}
      headers: {{Authorization: Bearer hook-token-c0de}}
      retries: 0
      required: true
metrics:
  pushgateway: {gateway}
  required: true
",
            r.url("/status-307/hook")
        ),
    );
    let run = env.run(&["prune"]);
    run.expect(1);
    assert!(
        run.stderr.contains("HTTP 307") && run.stderr.contains("does not follow"),
        "{}",
        run.stderr
    );
    let paths: Vec<String> = r.requests().into_iter().map(|q| q.path).collect();
    assert!(
        !paths.is_empty() && paths.iter().all(|p| p.starts_with("/status-307/")),
        "a redirect was followed: {paths:?}"
    );
    for leak in ["hook-token-c0de", "pg-secret-9d1e"] {
        assert!(!run.stderr.contains(leak), "{}", run.stderr);
    }
}

/// Issue 15: hooks get the run's facts (`SQLGUARD_*`, the run's JSON document in a private
/// directory removed after the run) and nothing secret: no password or key of sqlguard's, by
/// name or by value, whatever the config resolved as a secret.
#[test]
fn hooks_get_the_run_facts_and_no_secret() {
    let env = Env::new();
    let r = Receiver::start(&env.path("receiver"));
    let pw = env.path("db-password");
    std::fs::write(&pw, "file-secret-31\n").unwrap();
    let capture = "[sh, -c, 'env > hook.env; cat /proc/$PPID/environ > parent.env; cat \"$SQLGUARD_RUN_JSON\" > run.json; stat -c %a \"$(dirname \"$SQLGUARD_RUN_JSON\")\" > dir.mode; echo \"$SQLGUARD_RUN_JSON\" > run.path']";
    std::fs::write(
        env.config(),
        format!(
            "servers:\n  main:\n    host: 127.0.0.1\n    port: 1\n    user: root\n    password: \"${{MY_DB_PW}}\"\n    restore:\n      user: r\n      password_file: {}\nstorage:\n  local:\n    type: local\n    path: {}\nmetrics:\n  pushgateway: http://127.0.0.1:{}\n  password: \"${{PGW_PW}}\"\n  required: false\nhooks:\n  prune:\n    finally: {capture}\nnotify:\n  prune:\n    - webhook: {}\n      headers: {{X-Token: \"${{HOOK_TOKEN}}\"}}\n",
            pw.display(),
            env.storage().display(),
            free_port(),
            r.url("/hook"),
        ),
    )
    .unwrap();
    let secrets = [
        ("MY_DB_PW", "db-secret-11"),
        ("PGW_PW", "pgw-secret-22"),
        ("HOOK_TOKEN", "hook-secret-33"),
        ("AWS_SECRET_ACCESS_KEY", "aws-secret-44"),
        ("AWS_ACCESS_KEY_ID", "aws-id-55"),
        ("MYSQL_PWD", "mysql-secret-66"),
        ("SQLGUARD_DB_PASSWORD", "sqlguard-secret-77"),
    ];
    let run = run_with(&env, &secrets, &["prune"]);
    run.expect(0);
    let hook_env = std::fs::read_to_string(env.path("hook.env")).unwrap();
    for (name, value) in secrets
        .iter()
        .chain(&[("DB_PASSWORD_FILE", "file-secret-31")])
    {
        assert!(
            !hook_env.contains(value),
            "{name}'s value reached the hook:\n{hook_env}"
        );
        assert!(
            !hook_env.lines().any(|l| l.starts_with(&format!("{name}="))),
            "{name} reached the hook"
        );
    }
    // Nor in sqlguard's own environment block, which the same user's processes can read: the
    // values the run resolved as secrets are blanked there once read.
    let parent = std::fs::read(env.path("parent.env")).unwrap();
    let parent = String::from_utf8_lossy(&parent);
    assert!(
        parent.contains("AWS_ACCESS_KEY_ID=aws-id-55"),
        "not sqlguard's environment: {parent}"
    );
    let readable: Vec<&str> = secrets
        .iter()
        .filter(|(n, v)| *n != "AWS_ACCESS_KEY_ID" && parent.contains(v))
        .map(|(n, _)| *n)
        .collect();
    assert!(
        readable.is_empty(),
        "still readable in /proc/<sqlguard>/environ: {readable:?}\n{}",
        run.stderr
    );
    for line in hook_env.lines() {
        let name = line.split('=').next().unwrap_or("");
        assert!(
            !(name.contains("PASSWORD") || name.contains("SECRET") || name.contains("TOKEN")),
            "{name} reached the hook"
        );
    }
    for fact in [
        "SQLGUARD_COMMAND=prune",
        "SQLGUARD_HOOK=finally",
        "SQLGUARD_STATUS=success",
        "SQLGUARD_EXIT_CODE=0",
        "SQLGUARD_SERVERS=",
        "SQLGUARD_STARTED_AT=",
    ] {
        assert!(
            hook_env.lines().any(|l| l.starts_with(fact)),
            "{fact} missing:\n{hook_env}"
        );
    }
    assert!(!hook_env.contains("SQLGUARD_TYPE="), "{hook_env}");
    let doc: RunDoc =
        serde_json::from_str(&std::fs::read_to_string(env.path("run.json")).unwrap()).unwrap();
    assert_eq!(
        (
            doc.schema_version,
            doc.command.as_str(),
            doc.status.as_str(),
            doc.exit_code
        ),
        (1, "prune", "success", Some(0))
    );
    assert!(
        doc.summary
            .as_deref()
            .is_some_and(|s| s.contains("entries")),
        "{doc:?}"
    );
    assert_eq!(
        std::fs::read_to_string(env.path("dir.mode"))
            .unwrap()
            .trim(),
        "700"
    );
    let path = std::fs::read_to_string(env.path("run.path")).unwrap();
    assert!(
        !Path::new(path.trim()).exists(),
        "the run's directory outlived the run: {path}"
    );
    // The webhook got the same document; the Pushgateway that is down only warned.
    let got = r.requests();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].headers["x-token"], "hook-secret-33");
    assert!(run.stderr.contains("Pushgateway"), "{}", run.stderr);
}

/// Issue 15: SIGTERM while a `before` hook runs stops the hook's process group at once and ends
/// the run as interrupted (exit 130), not after the hook's timeout.
#[test]
fn a_signal_stops_a_running_hook() {
    let env = Env::new();
    offline_config(
        &env,
        "hooks:\n  prune:\n    before: [sh, -c, 'sleep 300 & echo $! > child.pid; wait']\n    timeout: 1h\n",
    );
    let child = env
        .cmd()
        .arg("prune")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !env.path("child.pid").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the hook never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let run = Run::from(out);
    run.expect(130);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    assert!(run.stderr.contains("interrupted"), "{}", run.stderr);
    let pid = std::fs::read_to_string(env.path("child.pid")).unwrap();
    assert!(process_gone(pid.trim()), "the hook's child {pid} survived");
}

/// Issue 15: in an environment-only container, `SQLGUARD_NOTIFY_HEALTHCHECKS_URL` pings for every
/// backup, prune and verify run, and `config show` prints it as a reference to the variable.
/// Not for `binlog`: a run every minute would ping a failed daily backup's check green again.
#[test]
fn the_notify_variable_pings_for_backup_prune_and_verify() {
    let env = Env::new();
    let r = Receiver::start(&env.path("receiver"));
    offline_config(&env, "");
    let url = r.url("/env-token-9d2f");
    let vars = [("SQLGUARD_NOTIFY_HEALTHCHECKS_URL", url.as_str())];
    run_with(&env, &vars, &["prune"]).expect(0);
    run_with(&env, &vars, &["verify", "--latest"]).expect(0);
    let paths: Vec<String> = r.requests().into_iter().map(|q| q.path).collect();
    assert_eq!(
        paths,
        [
            "/env-token-9d2f/start",
            "/env-token-9d2f",
            "/env-token-9d2f/start",
            "/env-token-9d2f"
        ]
    );
    env.edit_config(
        "    user: root\n",
        "    user: root\n    binlog: {window: 14d}\n",
    );
    // The server is not there: the archive run fails, and still pings nothing.
    run_with(&env, &vars, &["binlog"]).expect(1);
    assert_eq!(r.requests().len(), 4, "{:?}", r.requests());
    let shown = run_with(&env, &vars, &["config", "show"]);
    shown.expect(0);
    assert!(!shown.stdout.contains("env-token-9d2f"), "{}", shown.stdout);
    assert!(
        shown
            .stdout
            .contains("healthchecks: ${SQLGUARD_NOTIFY_HEALTHCHECKS_URL}"),
        "{}",
        shown.stdout
    );
}

/// Issue 15: an `after_success` hook that fails fails the run it followed: exit 1, `finally` is
/// told so, and the end ping is `/fail`, naming the hook.
#[test]
fn a_failing_after_hook_fails_the_run() {
    let env = Env::new();
    let r = Receiver::start(&env.path("receiver"));
    offline_config(
        &env,
        &format!(
            "hooks:\n  prune:\n    after_success: [sh, -c, 'exit 4']\n    finally: [sh, -c, 'echo \"$SQLGUARD_STATUS $SQLGUARD_EXIT_CODE\" > marks']\nnotify:\n  prune:\n    - healthchecks: {}\n",
            r.url("/hc")
        ),
    );
    let run = env.run(&["prune"]);
    run.expect(1);
    assert!(
        run.stderr.contains("hooks.prune.after_success") && run.stderr.contains("exit code 4"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(env.path("marks")).unwrap(),
        "failure 1\n"
    );
    let got = r.requests();
    let paths: Vec<&str> = got.iter().map(|q| q.path.as_str()).collect();
    assert_eq!(paths, ["/hc/start", "/hc/fail"]);
    assert!(
        got[1].body.contains("- hooks.prune.after_success"),
        "{}",
        got[1].body
    );
}

/// `backup --json` is printed once the run is decided: a failing `after_success` hook makes
/// the run fail (exit 1), and the document says `ok: false` while its copies are stored.
#[test]
fn the_json_document_says_how_the_run_ended() {
    let name = mariadb().create_db("jsonok");
    let env = Env::new();
    env.write_config(
        "",
        "storage:\n  local:\n    type: local\n    path: {storage}\nhooks:\n  backup:\n    after_success: [sh, -c, 'exit 4']\n",
    );
    let r = env.run(&["--json", "backup", "--db", &name]);
    r.expect(1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ok"], false, "{}", r.stdout);
    assert_eq!(v["backups"][0]["status"], "success", "{}", r.stdout);
    // And it says why: the hook's failure is one of its errors.
    assert!(
        v["errors"]
            .to_string()
            .contains("hooks.backup.after_success"),
        "{}",
        r.stdout
    );
}

/// A required notifier that fails fails the run, and everything that reports the run after it
/// says so: the `finally` hooks (told exit 1), the Pushgateway, the other notifiers (`/fail`)
/// and the JSON document (its `errors` name it). One that fails at the start fails the run
/// before any hook, so `after_failure` runs. An answer that is not retried (404) is one attempt.
#[test]
fn a_required_notifier_that_fails_is_what_every_later_report_says() {
    let env = Env::new();
    let r = Receiver::start(&env.path("receiver"));
    let instance = format!("required15-{:08x}", fastrand::u32(..));
    let mark = "[sh, -c, 'echo \"$SQLGUARD_HOOK $SQLGUARD_STATUS $SQLGUARD_EXIT_CODE\" >> marks']";
    let config = |required: &str| {
        offline_config(
            &env,
            &format!(
                "hooks:\n  prune:\n    after_success: {mark}\n    after_failure: {mark}\n    finally: {mark}\nnotify:\n  prune:\n    - {required}\n      retries: 1\n      required: true\n    - healthchecks: {}\nmetrics:\n  pushgateway: {}\n  instance: {instance}\n",
                r.url("/hc"),
                pushgateway()
            ),
        )
    };
    let paths = || -> Vec<String> { r.requests().into_iter().map(|q| q.path).collect() };
    let check = |marks: &str, wanted_paths: &[&str], error: &str| {
        let run = env.run(&["--json", "prune"]);
        run.expect(1);
        let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        // A failure after the work still makes the document say what the exit code says.
        assert_eq!(v["ok"], false, "{}", run.stdout);
        let errors = v["errors"].to_string();
        assert!(
            errors.contains("notification failed") && errors.contains(error),
            "{}",
            run.stdout
        );
        assert_eq!(std::fs::read_to_string(env.path("marks")).unwrap(), marks);
        std::fs::remove_file(env.path("marks")).unwrap();
        assert_eq!(paths(), wanted_paths);
        let samples = scrape(&instance);
        assert_eq!(
            sample(
                &samples,
                "sqlguard_run_last_status",
                &[("command", "prune")]
            ),
            Some(0.0)
        );
        run
    };
    // At the end: a webhook (which has no start notification) answered 404, not retried.
    config(&format!("webhook: {}", r.url("/status-404/hook")));
    let run = check(
        "after_success success 0\nfinally failure 1\n",
        &["/hc/start", "/status-404/hook", "/hc/fail"],
        "HTTP 404",
    );
    assert!(!run.stderr.contains("attempts"), "{}", run.stderr);
    // At the start: a check answered 500 at every ping, retried once.
    config(&format!("healthchecks: {}", r.url("/status-500/req")));
    let run = check(
        "after_failure failure 1\nfinally failure 1\n",
        &[
            "/hc/start",
            "/status-404/hook",
            "/hc/fail",
            "/status-500/req/start",
            "/status-500/req/start",
            "/hc/start",
            "/status-500/req/fail",
            "/status-500/req/fail",
            "/hc/fail",
        ],
        "HTTP 500",
    );
    assert!(run.stderr.contains("after 2 attempts"), "{}", run.stderr);
}

/// A run that a `before` hook skips still prints its JSON document, whatever the command:
/// nothing done, `ok: false`, and the reason in `errors` (a script reading stdout never gets
/// an empty one).
#[test]
fn a_skipped_run_prints_its_json_document() {
    let env = Env::new();
    let skip = "    before: [sh, -c, 'exit 7']\n";
    offline_config(
        &env,
        &format!("hooks:\n  backup:\n{skip}  prune:\n{skip}  verify:\n{skip}  binlog:\n{skip}"),
    );
    env.edit_config(
        "    user: root\n",
        "    user: root\n    binlog: {window: 14d}\n",
    );
    for args in [
        &["backup", "--type", "daily"][..],
        &["prune"],
        &["verify", "--latest"],
        &["binlog"],
    ] {
        let run = env.run(&[&["--json"], args].concat());
        run.expect(1);
        let v: serde_json::Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {:?}", run.stdout));
        let first = v["errors"][0].as_str().unwrap_or_default();
        assert!(
            first.starts_with("skipped: ") && first.contains("exit code 7"),
            "{args:?}: {}",
            run.stdout
        );
        // `prune`'s document has no `ok`; every other one says the run failed.
        assert!(
            v["ok"] == false || (args == ["prune"] && v["ok"].is_null()),
            "{args:?}: {}",
            run.stdout
        );
    }
}

/// A signal while receivers hang ends the run within seconds, not after each notifier's
/// timeout and retries: every request of the run shares 5 s more, counted from the first wait
/// after the signal. And every report says the run was interrupted (exit 130), as the exit code
/// does: the `finally` hook, the JSON document.
#[test]
fn a_signal_is_not_held_up_by_hanging_receivers() {
    let env = Env::new();
    let r = Receiver::start(&env.path("receiver"));
    let hanging = |n: u32| {
        format!(
            "    - healthchecks: {}\n      timeout: 60s\n      retries: 3\n",
            r.url(&format!("/sleep-120/hc{n}"))
        )
    };
    offline_config(
        &env,
        &format!(
            "hooks:\n  prune:\n    finally: [sh, -c, 'echo \"$SQLGUARD_STATUS $SQLGUARD_EXIT_CODE\" > marks']\nnotify:\n  prune:\n{}{}{}",
            hanging(1),
            hanging(2),
            hanging(3)
        ),
    );
    let (run, took) = crate::trust::run_and_signal(
        &env,
        &["--json", "prune"],
        &[],
        || !r.requests().is_empty(),
        "TERM",
        1,
    );
    run.expect(130);
    assert!(
        took < Duration::from_secs(15),
        "took {took:?}: {}",
        run.stderr
    );
    assert!(run.stderr.contains("not waited for"), "{}", run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["interrupted"], true, "{doc}");
    assert_eq!(
        std::fs::read_to_string(env.path("marks")).unwrap(),
        "interrupted 130\n"
    );
    let paths: Vec<String> = r.requests().into_iter().map(|q| q.path).collect();
    assert_eq!(paths[0], "/sleep-120/hc1/start", "{paths:?}");
    // Nothing is retried once the run is asked to stop.
    assert!(paths.len() <= 6, "{paths:?}");
}

/// A required notifier told the run succeeded is told again when a `finally` hook then fails
/// the run: its check ends red, as the exit code says.
#[test]
fn a_required_notifier_hears_of_a_failure_that_came_after_it() {
    let env = Env::new();
    let r = Receiver::start(&env.path("receiver"));
    offline_config(
        &env,
        &format!(
            "hooks:\n  prune:\n    finally: [sh, -c, 'exit 5']\nnotify:\n  prune:\n    - healthchecks: {}\n      required: true\n",
            r.url("/req")
        ),
    );
    env.run(&["prune"]).expect(1);
    let paths: Vec<String> = r.requests().into_iter().map(|q| q.path).collect();
    assert_eq!(paths, ["/req/start", "/req", "/req/fail"]);
}
