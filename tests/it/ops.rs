//! The operations kit: examples pass config check, schedules convert and verify with systemd's
//! own tools, overlapping runs exit 3, and the generated man pages, completions and contrib files
//! are current and load.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{mariadb, write_script, Env, Run, BIN};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Set UPDATE_SNAPSHOTS=1 to rewrite the committed generated files instead of failing.
fn update() -> bool {
    std::env::var_os("UPDATE_SNAPSHOTS").is_some()
}

/// A copy of an example whose /etc/sqlguard/ and /run/secrets/sqlguard/ files live in a temp dir
/// (with dummy secrets).
fn example(name: &str, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(format!("{ROOT}/examples/{name}")).unwrap();
    for f in ["db-password", "db-ca.pem", "s3-access-key", "s3-secret-key"] {
        std::fs::write(dir.join(f), "dummy\n").unwrap();
    }
    let path = dir.join(name);
    std::fs::write(
        &path,
        text.replace("/etc/sqlguard/", &format!("{}/", dir.display()))
            .replace(SECRETS_DIR, &dir.display().to_string()),
    )
    .unwrap();
    path
}

/// Where the Kubernetes example's pods mount their Secret.
const SECRETS_DIR: &str = "/run/secrets/sqlguard";

/// Runs the binary on a copy of `examples/local-s3.yaml` (dummy secrets) with `args` after
/// `--config FILE`.
fn on_typical_example(dir: &Path, args: &[&str]) -> (PathBuf, Run) {
    let cfg = example("local-s3.yaml", dir);
    let mut all = vec!["--config", cfg.to_str().unwrap()];
    all.extend_from_slice(args);
    let r = sqlguard(DUMMY_SECRETS, &all);
    (cfg, r)
}

/// The binary with a clean environment plus `vars`.
fn sqlguard(vars: &[(&str, &str)], args: &[&str]) -> Run {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .stdin(Stdio::null());
    for (k, v) in vars {
        c.env(k, v);
    }
    Run::from(c.args(args).output().unwrap())
}

const DUMMY_SECRETS: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
    ("AWS_SECRET_ACCESS_KEY", "example-secret"),
    ("PRIMARY_DB_PASSWORD", "p"),
    ("REPLICA_DB_PASSWORD", "r"),
    ("HC_DAILY_UUID", "hc-daily-uuid"),
    ("HC_PRUNE_UUID", "hc-prune-uuid"),
    ("KUMA_PUSH_TOKEN", "kuma-token"),
    ("WEBHOOK_TOKEN", "webhook-token"),
    ("CHAT_HOOK_ID", "chat-hook-id"),
];

#[test]
fn every_example_passes_config_check() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(format!("{ROOT}/examples")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let r = if name.ends_with(".yaml") {
            let path = example(&name, dir.path());
            sqlguard(
                DUMMY_SECRETS,
                &["--config", path.to_str().unwrap(), "config", "check"],
            )
        } else if name.ends_with(".env") {
            // Environment only: the variables of the file, and no config file at all.
            let text = std::fs::read_to_string(format!("{ROOT}/examples/{name}")).unwrap();
            std::fs::write(dir.path().join("pw"), "x\n").unwrap();
            let pw = dir.path().join("pw");
            let mut vars: Vec<(String, String)> = text
                .lines()
                .filter(|l| !l.starts_with('#') && l.contains('='))
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap();
                    (
                        k.to_string(),
                        v.replace("/run/secrets/db-password", pw.to_str().unwrap()),
                    )
                })
                .collect();
            vars.extend(
                DUMMY_SECRETS
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string())),
            );
            let refs: Vec<(&str, &str)> =
                vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let mut c = Command::new(BIN);
            c.env_clear()
                .env("PATH", std::env::var("PATH").unwrap())
                .current_dir(dir.path());
            for (k, v) in &refs {
                c.env(k, v);
            }
            let r = Run::from(c.args(["config", "check"]).output().unwrap());
            assert!(r.stdout.contains("environment only"), "{}", r.stdout);
            assert!(!r.stderr.contains("warning"), "{name}: {}", r.stderr);
            r
        } else {
            continue;
        };
        assert_eq!(r.code, 0, "examples/{name}: {}", r.stderr);
        // Examples show good practice: no warning (issue 10: remote servers verify identity).
        assert!(
            !r.stderr.contains("warning"),
            "examples/{name}: {}",
            r.stderr
        );
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} examples");
}

/// Issue 16: `contrib/kubernetes/cronjob.yaml` is what `schedule --format kubernetes` writes for
/// `examples/kubernetes.yaml`; its ConfigMap holds that config (which passes `config check`), a
/// CronJob per scheduled job runs on the type's schedule, and the pod matches the image.
/// (`contrib::kubernetes_manifests_pass_strict_schema_validation` checks it against the schemas.)
#[test]
fn kubernetes_manifests_are_generated_from_the_example_and_match_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = example("kubernetes.yaml", dir.path());
    let secrets = dir.path().display().to_string();
    let r = sqlguard(
        &[],
        &[
            "--config",
            cfg.to_str().unwrap(),
            "schedule",
            "--format",
            "kubernetes",
            "--secrets-dir",
            &secrets,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The temp dir stands for the Secret's mount: put its path back.
    let generated = format!("{}\n", r.stdout.trim_end()).replace(&secrets, SECRETS_DIR);
    let contrib = format!("{ROOT}/contrib/kubernetes/cronjob.yaml");
    if update() {
        std::fs::write(&contrib, &generated).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&contrib).unwrap(),
        generated,
        "contrib/kubernetes/cronjob.yaml is stale: run UPDATE_SNAPSHOTS=1 cargo test ops::"
    );

    let docs: Vec<serde_json::Value> = generated
        .split("\n---\n")
        .map(|d| yaml_serde::from_str(&format!("{d}\n")).unwrap_or_else(|e| panic!("{e}\n{d}")))
        .collect();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "CronJob",
            "CronJob",
            "CronJob",
            "CronJob",
            "CronJob"
        ]
    );
    // The ConfigMap holds the example as it is, and that config checks.
    let config = docs[0]["data"]["config.yaml"].as_str().unwrap().to_string();
    assert_eq!(
        config,
        std::fs::read_to_string(format!("{ROOT}/examples/kubernetes.yaml")).unwrap()
    );
    let copy = dir.path().join("from-configmap.yaml");
    std::fs::write(&copy, config.replace(SECRETS_DIR, &secrets)).unwrap();
    let r = sqlguard(
        &[],
        &["--config", copy.to_str().unwrap(), "config", "check"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);

    let mut names = Vec::new();
    for d in &docs[1..] {
        names.push(d["metadata"]["name"].as_str().unwrap().to_string());
        let cron = &d["spec"];
        assert_eq!(cron["concurrencyPolicy"], "Forbid");
        assert_eq!(cron["timeZone"], "Etc/UTC");
        assert!(cron["startingDeadlineSeconds"].as_u64().unwrap() <= 3600);
        assert!(cron["successfulJobsHistoryLimit"].is_u64());
        assert!(cron["failedJobsHistoryLimit"].is_u64());
        let job = &cron["jobTemplate"]["spec"];
        assert_eq!(job["backoffLimit"], 0);
        let pod = &job["template"]["spec"];
        // One host name for every run: the metrics' owner and default instance stay the same.
        assert_eq!(pod["hostname"], "sqlguard");
        // Ends before the next run of the same job starts.
        let gap = sqlguard::schedule::min_interval(
            cron["schedule"].as_str().unwrap(),
            chrono::Utc::now(),
        )
        .unwrap()
        .num_seconds();
        assert!(job["activeDeadlineSeconds"].as_i64().unwrap() < gap);
        // Longer than sqlguard's bounded shutdown after SIGTERM.
        assert!(
            pod["terminationGracePeriodSeconds"].as_u64().unwrap()
                > 6 * sqlguard::storage::s3::STOPPING_TIMEOUT.as_secs()
        );
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["securityContext"]["runAsUser"], 10001);
        let c = &pod["containers"][0];
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert!(c["resources"]["requests"]["cpu"].is_string());
        assert!(c["resources"]["requests"]["memory"].is_string());
        let tmp = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "tmp")
            .unwrap();
        assert_eq!(tmp["emptyDir"]["sizeLimit"], "10Gi");
        let mounts: Vec<&str> = c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["mountPath"].as_str().unwrap())
            .collect();
        assert_eq!(mounts, ["/etc/sqlguard", SECRETS_DIR, "/tmp"]);
        let args: Vec<&str> = c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(
            args[..3],
            ["--config", "/etc/sqlguard/config.yaml", "--no-progress"]
        );
        // The CronJob's schedule is the type's schedule in the config.
        if let Some(i) = args.iter().position(|a| *a == "--type") {
            let t = args[i + 1];
            let in_config = config
                .lines()
                .skip_while(|l| l.trim() != format!("{t}:"))
                .nth(1)
                .unwrap();
            assert!(
                in_config.contains(cron["schedule"].as_str().unwrap()),
                "{t}: {in_config}"
            );
        }
    }
    assert_eq!(
        names,
        [
            "sqlguard-backup-daily",
            "sqlguard-backup-hourly",
            "sqlguard-backup-monthly",
            "sqlguard-backup-weekly",
            "sqlguard-prune"
        ]
    );
    // The Pushgateway is a Service's name, not an address of the pod.
    assert!(config.contains("pushgateway: http://pushgateway.monitoring.svc.cluster.local:9091"));

    // `schedule --format kubernetes` of a config file, the secrets under the temp dir.
    let kubernetes = |config: &Path| {
        sqlguard(
            &[],
            &[
                "--config",
                config.to_str().unwrap(),
                "schedule",
                "--format",
                "kubernetes",
                "--secrets-dir",
                &secrets,
            ],
        )
    };
    // A loopback Pushgateway would be the pod itself: a warning, and a note in the header.
    let local = dir.path().join("local-push.yaml");
    std::fs::write(
        &local,
        std::fs::read_to_string(&cfg).unwrap().replace(
            "http://pushgateway.monitoring.svc.cluster.local:9091",
            "http://127.0.0.1:9091",
        ),
    )
    .unwrap();
    let r = kubernetes(&local);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("warning") && r.stderr.contains("is the pod itself"),
        "{}",
        r.stderr
    );
    assert!(r
        .stdout
        .contains("# the Pushgateway URL http://127.0.0.1:9091/ is the pod itself"));

    // Metrics without an instance would push under the pods' one host name in every
    // deployment: refused, naming the key.
    let anonymous = dir.path().join("anonymous.yaml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let without: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("instance:"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(without, text, "no metrics.instance to remove");
    std::fs::write(&anonymous, without).unwrap();
    // Refused, naming the key, with nothing printed.
    let no_instance = |config: &Path| {
        let r = kubernetes(config);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(
            r.stderr.contains("metrics.instance is not set"),
            "{}",
            r.stderr
        );
        assert!(r.stdout.is_empty(), "{}", r.stdout);
    };
    no_instance(&anonymous);
    // Nor with the key there and no value.
    let text = std::fs::read_to_string(&anonymous)
        .unwrap()
        .replace("metrics:\n", "metrics:\n  instance:\n");
    std::fs::write(&anonymous, text).unwrap();
    no_instance(&anonymous);
    // A number is a name like any other.
    let text = std::fs::read_to_string(&anonymous)
        .unwrap()
        .replace("  instance:\n", "  instance: 42\n");
    std::fs::write(&anonymous, text).unwrap();
    let r = kubernetes(&anonymous);
    assert_eq!(r.code, 0, "{}", r.stderr);

    // A password written inline would land in the ConfigMap: refused, nothing printed.
    let inline = dir.path().join("inline.yaml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let with_password: String = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("password_file:") {
                "    password: Hunter2Inline".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        with_password.contains("Hunter2Inline"),
        "no password_file to replace"
    );
    std::fs::write(&inline, with_password).unwrap();
    let r = kubernetes(&inline);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("written inline"), "{}", r.stderr);
    assert!(!r.stdout.contains("Hunter2Inline") && !r.stderr.contains("Hunter2Inline"));
    // An override that hides the inline secret from this run's settings does not hide it from
    // the ConfigMap, which holds the file as written.
    for (env, flag) in [
        (vec![("SQLGUARD_DB_PASSWORD", "from-env")], None),
        (vec![], Some("--no-push")),
    ] {
        let mut args = vec!["--config", inline.to_str().unwrap()];
        args.extend(flag);
        args.extend([
            "schedule",
            "--format",
            "kubernetes",
            "--secrets-dir",
            &secrets,
        ]);
        let r = sqlguard(&env, &args);
        assert_eq!(r.code, 2, "{env:?} {flag:?}: {}", r.stderr);
        assert!(r.stderr.contains("written inline"), "{}", r.stderr);
        assert!(!r.stdout.contains("Hunter2Inline"));
    }
    // Half inline, half a ${VAR}: the written half is as secret as the rest. `config show`
    // prints it as ***, and the ConfigMap refuses it.
    let half = dir.path().join("half.yaml");
    let text = std::fs::read_to_string(&inline).unwrap();
    std::fs::write(
        &half,
        text.replace("Hunter2Inline", "Hunter2Half-${HALF_SUFFIX}"),
    )
    .unwrap();
    let half = half.to_str().unwrap();
    let vars = [("HALF_SUFFIX", "x")];
    let args = [
        "--config",
        half,
        "schedule",
        "--format",
        "kubernetes",
        "--secrets-dir",
        &secrets,
    ];
    let r = sqlguard(&vars, &args);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("written inline"), "{}", r.stderr);
    assert!(!r.stdout.contains("Hunter2Half") && !r.stderr.contains("Hunter2Half"));
    let r = sqlguard(&vars, &["--config", half, "config", "show"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("***${HALF_SUFFIX}"), "{}", r.stdout);
    assert!(!r.stdout.contains("Hunter2Half"), "{}", r.stdout);

    // Environment only: nothing to put in the ConfigMap, said plainly.
    let r = sqlguard(
        &[("SQLGUARD_DB_HOST", "db"), ("SQLGUARD_STORAGE_PATH", "/b")],
        &["schedule", "--format", "kubernetes"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("pass --config FILE"), "{}", r.stderr);
}

fn systemd_analyze(args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .args(args)
        .current_dir(dir)
        .env("TZ", "UTC")
        .output()
        .expect("systemd-analyze (Debian package systemd) is installed by scripts/install-deps.sh --test");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The next `n` run times of a cron expression, by croner, in systemd-analyze's format.
fn croner_next(expr: &str, from: chrono::DateTime<chrono::Utc>, n: usize) -> Vec<String> {
    use std::str::FromStr;
    let cron = croner::Cron::from_str(expr).unwrap();
    cron.iter_after(from)
        .take(n)
        .map(|t| t.format("%a %Y-%m-%d %H:%M:%S UTC").to_string())
        .collect()
}

#[test]
fn systemd_analyze_calendar_agrees_with_the_conversion_table() {
    let dir = tempfile::tempdir().unwrap();
    for (cron, calendar) in sqlguard::schedule::CONVERSION_TABLE {
        let mut last = String::new();
        let mut agreed = false;
        for _ in 0..2 {
            // Retry once in case a minute boundary passes between the two computations.
            let now = chrono::Utc::now();
            let (ok, text) = systemd_analyze(&["calendar", "--iterations=6", calendar], dir.path());
            assert!(
                ok,
                "systemd-analyze rejects {calendar:?} (from {cron:?}):\n{text}"
            );
            let theirs: Vec<String> = text
                .lines()
                .filter_map(|l| l.split_once(": ").map(|(k, v)| (k.trim(), v.trim())))
                .filter(|(k, _)| *k == "Next elapse" || k.starts_with("Iter."))
                .map(|(_, v)| v.to_string())
                .collect();
            let ours = croner_next(cron, now, 6);
            if theirs == ours {
                agreed = true;
                break;
            }
            last = format!("{cron} -> {calendar}\nsystemd: {theirs:?}\ncroner:  {ours:?}");
        }
        assert!(agreed, "{last}");
    }
}

/// Replaces the binary path of units with the built binary so that verify finds it.
fn units_for_verify(src: &Path, dst: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("/usr/local/bin/sqlguard", BIN);
        std::fs::write(dst.join(&name), text).unwrap();
        names.push(format!("./{name}"));
    }
    names.sort();
    names
}

#[test]
fn generated_and_contrib_systemd_units_pass_systemd_analyze_verify() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("units");
    let (_, r) = on_typical_example(
        dir.path(),
        &[
            "schedule",
            "--format",
            "systemd",
            "--config-path",
            "/etc/sqlguard/config.yaml",
            "--randomized-delay",
            "5m",
            "--output-dir",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The committed contrib units are exactly what the generator writes for the example.
    let contrib = PathBuf::from(format!("{ROOT}/contrib/systemd"));
    for e in std::fs::read_dir(&out).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_owned();
        let generated = std::fs::read_to_string(&p).unwrap();
        if update() {
            std::fs::write(contrib.join(&name), &generated).unwrap();
        }
        let committed = std::fs::read_to_string(contrib.join(&name)).unwrap_or_default();
        assert_eq!(
            committed, generated,
            "contrib/systemd/{name:?} is stale: run UPDATE_SNAPSHOTS=1 cargo test ops::"
        );
    }
    for src in [&out, &contrib] {
        let verify_dir = tempfile::tempdir().unwrap();
        let units = units_for_verify(src, verify_dir.path());
        assert_eq!(units.len(), 12, "{units:?}");
        let mut args = vec!["verify", "--man=no"];
        args.extend(units.iter().map(String::as_str));
        let (ok, text) = systemd_analyze(&args, verify_dir.path());
        assert!(
            ok && text.trim().is_empty(),
            "systemd-analyze verify on {}:\n{text}",
            src.display()
        );
    }
    let daily = std::fs::read_to_string(out.join("sqlguard-backup-daily.service")).unwrap();
    for line in [
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "User=sqlguard",
        "ReadWritePaths=/var/backups/sqlguard",
        "ReadWritePaths=/var/www/backups",
    ] {
        assert!(daily.contains(line), "missing {line}:\n{daily}");
    }
    // Paths with a space, `%` and `$`: each stays one path, as systemd reads the unit.
    let odd = tempfile::tempdir().unwrap();
    let cfg = example("local-s3.yaml", odd.path());
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("/var/backups/sqlguard", "/var/backups/my sqlguard%1");
    std::fs::write(&cfg, text).unwrap();
    let odd_out = odd.path().join("units");
    let r = sqlguard(
        DUMMY_SECRETS,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "schedule",
            "--format",
            "systemd",
            "--config-path",
            "/etc/sql guard/%c$x.yaml",
            "--output-dir",
            odd_out.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let service = std::fs::read_to_string(odd_out.join("sqlguard-backup-daily.service")).unwrap();
    assert!(
        service.contains("ReadWritePaths=\"/var/backups/my sqlguard%%1\"")
            && service.contains("--config \"/etc/sql guard/%%c$$x.yaml\""),
        "{service}"
    );
    let verify_dir = tempfile::tempdir().unwrap();
    let units = units_for_verify(&odd_out, verify_dir.path());
    let mut args = vec!["verify", "--man=no"];
    args.extend(units.iter().map(String::as_str));
    let (ok, text) = systemd_analyze(&args, verify_dir.path());
    assert!(ok && text.trim().is_empty(), "{text}");

    let timer = std::fs::read_to_string(out.join("sqlguard-backup-daily.timer")).unwrap();
    assert!(
        timer.contains("OnCalendar=*-*-* 02:30:00")
            && timer.contains("Persistent=true")
            && timer.contains("RandomizedDelaySec=300"),
        "{timer}"
    );
}

#[test]
fn cron_output_matches_contrib_and_unconvertible_schedules_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, r) = on_typical_example(
        dir.path(),
        &[
            "schedule",
            "--format",
            "cron",
            "--config-path",
            "/etc/sqlguard/config.yaml",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let contrib = format!("{ROOT}/contrib/cron/sqlguard");
    if update() {
        std::fs::write(&contrib, format!("{}\n", r.stdout.trim_end())).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&contrib).unwrap().trim_end(),
        r.stdout.trim_end(),
        "contrib/cron/sqlguard is stale"
    );
    assert!(r.stdout.contains("30 2 * * * sqlguard /usr/local/bin/sqlguard --config /etc/sqlguard/config.yaml --no-progress --quiet backup --type daily"));
    assert!(r.stdout.contains("15 5 * * * sqlguard ") && r.stdout.contains(" prune"));
    let crontab = sqlguard(
        DUMMY_SECRETS,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "schedule",
            "--format",
            "crontab",
        ],
    );
    assert!(
        crontab.stdout.contains(&format!(
            "30 2 * * * /usr/local/bin/sqlguard --config {}",
            cfg.display()
        )),
        "{}",
        crontab.stdout
    );

    let env = Env::new();
    env.write_config("", "storage:\n  l:\n    type: local\n    path: {storage}\nbackup_types:\n  odd:\n    schedule: \"0 4 1 * 1\"\n    retention: {keep_last: 1}\n");
    let r = env.run(&["schedule", "--format", "systemd"]);
    r.expect(2);
    assert!(
        r.stderr.contains("backup-odd") && r.stderr.contains("either matches"),
        "{}",
        r.stderr
    );
}

/// Starts a backup of `db` whose dump stalls for `seconds` first (as a big database would), and
/// returns once it holds its job lock.
fn start_slow_backup(env: &Env, db: &str, backup_type: &str, seconds: u32) -> std::process::Child {
    write_script(
        &env.path("slow"),
        &format!("[ \"$1\" = --version ] && exec mariadb-dump --version\nsleep {seconds}\nexec mariadb-dump \"$@\""),
    );
    env.write_config(
        &format!("dump_tool: {}", env.path("slow").display()),
        "storage:\n  local:\n    type: local\n    path: {storage}\n",
    );
    let child = env
        .cmd()
        .args(["backup", "--type", backup_type, "--db", db])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = env.path(&format!("locks/job-main-backup-{backup_type}.lock"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&lock)
        .map(|s| s.is_empty())
        .unwrap_or(true)
    {
        assert!(
            Instant::now() < deadline,
            "the first run never took its lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn overlapping_runs_of_the_same_job_exit_3_and_a_stale_lock_is_taken_over() {
    let db = mariadb();
    let name = db.create_shop("overlap", 50);
    let env = Env::new();
    let mut first = start_slow_backup(&env, &name, "daily", 30);
    let started = Instant::now();
    let second = env.run(&["backup", "--type", "daily", "--db", &name]);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    second.expect(3);
    assert!(
        second.stderr.contains(&format!("pid {}", first.id())),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains(&crate::support::hostname()) && second.stderr.contains(" UTC"),
        "{}",
        second.stderr
    );
    // Other jobs are not blocked (prune takes its own lock).
    env.run(&["prune"]).expect(0);
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first run ended too early for this test"
    );

    // The first run is killed (no clean release): the next run takes the lock over and says so.
    first.kill().unwrap();
    first.wait().unwrap();
    env.edit_config(
        &format!("    dump_tool: {}\n", env.path("slow").display()),
        "",
    );
    let r = env.run(&["backup", "--type", "daily", "--db", &name]);
    r.expect(0);
    assert!(
        r.stderr
            .contains("taking over the lock of job 'backup daily on main'"),
        "{}",
        r.stderr
    );
}

#[test]
fn wait_lets_the_second_run_follow_the_first() {
    let db = mariadb();
    let name = db.create_shop("waiting", 20);
    let env = Env::new();
    let first = start_slow_backup(&env, &name, "manual", 2);
    let second = env.run(&["backup", "--db", &name, "--wait", "1m"]);
    second.expect(0);
    assert!(
        second.stderr.contains("waiting for pid"),
        "{}",
        second.stderr
    );
    assert_eq!(Run::from(first.wait_with_output().unwrap()).code, 0);
    assert_eq!(env.list(&[]).backups.len(), 2);
}

/// A signal while a run waits for a job lock ends the wait at once, and says so (not "set
/// lock_dir to a writable directory").
#[test]
fn a_signal_ends_a_lock_wait_and_says_so() {
    let db = mariadb();
    let name = db.create_shop("lockwait", 20);
    let env = Env::new();
    let mut first = start_slow_backup(&env, &name, "manual", 30);
    let waiting = env.spawn(&["backup", "--db", &name, "--wait", "1m"]);
    std::thread::sleep(Duration::from_millis(800));
    let signalled = Instant::now();
    Command::new("kill")
        .args(["-TERM", &waiting.id().to_string()])
        .status()
        .unwrap();
    let r = Run::from(waiting.wait_with_output().unwrap());
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "{:?}",
        signalled.elapsed()
    );
    assert_eq!(r.code, 130, "{}", r.stderr);
    assert!(
        r.stderr.contains("while this run waited for the lock")
            && !r.stderr.contains("writable directory"),
        "{}",
        r.stderr
    );
}

#[test]
fn man_pages_and_completions_are_current_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let r = sqlguard(&[], &["generate", "--out", dir.path().to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut count = 0;
    for sub in ["man", "completions"] {
        for e in std::fs::read_dir(dir.path().join(sub)).unwrap() {
            let p = e.unwrap().path();
            let rel = format!("{sub}/{}", p.file_name().unwrap().to_string_lossy());
            let generated = std::fs::read(&p).unwrap();
            if update() {
                std::fs::write(format!("{ROOT}/{rel}"), &generated).unwrap();
            }
            let committed = std::fs::read(format!("{ROOT}/{rel}")).unwrap_or_default();
            assert!(
                committed == generated,
                "{rel} is stale: run `cargo run -- generate --out .`"
            );
            count += 1;
        }
    }
    assert!(count >= 10, "{count} files");
    // The man page renders.
    let man = Command::new("man")
        .args(["-l", &format!("{ROOT}/man/sqlguard.1")])
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&man.stdout);
    assert!(
        man.status.success()
            && text.contains("Exit codes")
            && text.contains("SQLGUARD_DB_PASSWORD"),
        "{text}"
    );
    let sub = Command::new("man")
        .args(["-l", &format!("{ROOT}/man/sqlguard-backup.1")])
        .env("MANPAGER", "cat")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&sub.stdout).contains("--type"));
    // The completion scripts parse in their shells, and bash registers the completion.
    for (shell, file) in [
        ("bash", "sqlguard.bash"),
        ("zsh", "_sqlguard"),
        ("fish", "sqlguard.fish"),
    ] {
        let st = Command::new(shell)
            .args(["-n", &format!("{ROOT}/completions/{file}")])
            .status()
            .unwrap_or_else(|e| panic!("{shell}: {e}"));
        assert!(st.success(), "{shell} -n {file}");
    }
    let out = Command::new("bash")
        .args([
            "-c",
            &format!("source {ROOT}/completions/sqlguard.bash && complete -p sqlguard"),
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("sqlguard"),
        "{out:?}"
    );
}

#[test]
fn config_show_of_the_typical_example_matches_its_snapshot() {
    // A snapshot that changes is reviewed (`cargo insta review`), never accepted blindly.
    let dir = tempfile::tempdir().unwrap();
    let (cfg, r) = on_typical_example(dir.path(), &["config", "show"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let shown = r
        .stdout
        .replace(&cfg.display().to_string(), "/etc/sqlguard/config.yaml")
        .replace(&format!("{}/", dir.path().display()), "/etc/sqlguard/")
        .replace(
            &std::env::temp_dir()
                .join("sqlguard-locks")
                .display()
                .to_string(),
            "<temp>/sqlguard-locks",
        )
        .replace(
            &format!("instance: {}\n", crate::support::hostname()),
            "instance: <hostname>\n",
        );
    assert!(!shown.contains("example-secret"), "a secret in config show");
    insta::assert_snapshot!("config-show-local-s3", shown);
}

/// `--help` of every subcommand, pinned: a change to the interface is reviewed.
#[test]
fn help_texts_match_their_snapshots() {
    for sub in [
        "", "backup", "list", "report", "verify", "fetch", "restore", "prune", "schedule",
        "config", "index",
    ] {
        let mut args: Vec<&str> = sub.split_whitespace().collect();
        args.push("--help");
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert!(out.status.success());
        let name = if sub.is_empty() {
            "help".to_string()
        } else {
            format!("help-{sub}")
        };
        insta::assert_snapshot!(name, String::from_utf8_lossy(&out.stdout));
    }
}

/// Issue 13: `config show` prints a config file that can be pasted back: every example's shown
/// config resolves to the same shown config again; secrets print as their source (a file, a
/// `${VAR}`), never their value; an inline secret prints as `***`, which `config check` refuses
/// naming the key; without any config the error lists the paths searched.
#[test]
fn config_show_prints_a_config_that_can_be_pasted_back() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "local-s3.yaml",
        "minimal-local.yaml",
        "multi-server.yaml",
        "archival-xz.yaml",
        "hooks-notify.yaml",
    ] {
        let cfg = example(name, dir.path());
        let r = sqlguard(
            DUMMY_SECRETS,
            &["--config", cfg.to_str().unwrap(), "config", "show"],
        );
        r.expect(0);
        for (_, value) in DUMMY_SECRETS
            .iter()
            .filter(|(k, _)| k.contains("SECRET") || k.contains("PASSWORD"))
        {
            assert!(
                !r.stdout.contains(&format!(": {value}\n")),
                "{name}: a secret in config show"
            );
        }
        // Issue 15: notifier tokens live inside URLs and headers.
        for (_, value) in DUMMY_SECRETS
            .iter()
            .filter(|(k, _)| k.contains("TOKEN") || k.contains("UUID"))
        {
            assert!(!r.stdout.contains(value), "{name}: a token in config show");
        }
        let pasted = dir.path().join(format!("shown-{name}"));
        std::fs::write(&pasted, &r.stdout).unwrap();
        let again = sqlguard(
            DUMMY_SECRETS,
            &["--config", pasted.to_str().unwrap(), "config", "show"],
        );
        again.expect(0);
        let body = |t: &str| t.lines().skip(2).collect::<Vec<_>>().join("\n");
        assert_eq!(
            body(&again.stdout),
            body(&r.stdout),
            "{name}: not stable when pasted back"
        );
    }
    // Secrets by source.
    std::fs::write(dir.path().join("pw"), "filepw\n").unwrap();
    let cfg = dir.path().join("secrets.yaml");
    std::fs::write(
        &cfg,
        format!(
            "servers:\n  a:\n    password_file: {}\n  b:\n    password: \"${{B_PW}}\"\n  c:\n    password: inline-pw\nstorage:\n  l:\n    type: local\n    path: /tmp/x\n",
            dir.path().join("pw").display()
        ),
    )
    .unwrap();
    let r = sqlguard(
        &[("B_PW", "bpw")],
        &["--config", cfg.to_str().unwrap(), "config", "show"],
    );
    r.expect(0);
    assert!(
        r.stdout.contains(&format!(
            "password_file: {}",
            dir.path().join("pw").display()
        )),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("password: ${B_PW}"), "{}", r.stdout);
    assert!(r.stdout.contains("password: '***'"), "{}", r.stdout);
    for secret in ["filepw", "bpw", "inline-pw"] {
        assert!(!r.stdout.contains(secret), "{secret} in config show");
    }
    let pasted = dir.path().join("pasted.yaml");
    std::fs::write(&pasted, &r.stdout).unwrap();
    let check = sqlguard(
        &[("B_PW", "bpw")],
        &["--config", pasted.to_str().unwrap(), "config", "check"],
    );
    check.expect(2);
    assert!(
        check.stderr.contains("servers.c.password") && check.stderr.contains("placeholder"),
        "{}",
        check.stderr
    );
    // No config anywhere: the paths searched are named.
    let empty = tempfile::tempdir().unwrap();
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .current_dir(empty.path())
        .args(["list"]);
    let r = Run::from(c.output().unwrap());
    r.expect(2);
    assert!(
        r.stderr.contains("--config (not given)")
            && r.stderr.contains("$SQLGUARD_CONFIG (not set)")
            && r.stderr
                .contains(&empty.path().join("sqlguard.yaml").display().to_string())
            && r.stderr.contains("/etc/sqlguard/config.yaml"),
        "{}",
        r.stderr
    );
}

/// A value that holds a line break would be a line of its own in a scheduler file (an
/// `ExecStartPre=`, a cron entry, a YAML key): refused, whatever carries it; a `$` in a path
/// setting is no expansion and stays single.
#[test]
fn schedule_refuses_values_that_would_start_a_line_of_their_own() {
    let env = Env::new();
    env.write_config(
        "",
        "storage:\n  l:\n    type: local\n    path: \"/srv/x\\nExecStartPre=/bin/true\\n#\"\n",
    );
    for format in ["systemd", "cron", "kubernetes"] {
        let r = env.run(&["schedule", "--format", format]);
        assert_eq!(r.code, 2, "{format}: {}", r.stdout);
        assert!(
            r.stderr.contains("storage.l.path") && r.stderr.contains("line break"),
            "{}",
            r.stderr
        );
        assert!(!r.stdout.contains("ExecStartPre"), "{}", r.stdout);
    }
    env.write_config(
        "",
        "storage:\n  l:\n    type: local\n    path: \"/srv/st$x\"\n",
    );
    for (flag, value) in [
        ("--user", "root\n* * * * * root evil"),
        ("--time-zone", "UTC\u{2028}kind: Secret"),
    ] {
        let r = env.run(&["schedule", "--format", "cron", flag, value]);
        assert_eq!(r.code, 2, "{flag}: {}", r.stdout);
        assert!(r.stderr.contains(flag), "{}", r.stderr);
    }
    let r = env.run(&["schedule", "--format", "systemd"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("ReadWritePaths=\"/srv/st$x\""),
        "{}",
        r.stdout
    );
    // A config reached through a link is written as resolved: the resolved path is checked.
    let odd = env.path("x\n* * * * * root touch /tmp/pwned\n");
    std::fs::create_dir_all(&odd).unwrap();
    std::fs::copy(env.config(), odd.join("config.yaml")).unwrap();
    let link = env.path("link.yaml");
    std::os::unix::fs::symlink(odd.join("config.yaml"), &link).unwrap();
    let r = sqlguard(
        &[],
        &[
            "--config",
            link.to_str().unwrap(),
            "schedule",
            "--format",
            "cron",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(!r.stdout.contains("touch /tmp/pwned"), "{}", r.stdout);
}
