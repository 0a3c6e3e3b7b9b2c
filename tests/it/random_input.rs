//! Issue 10, item 10: no input makes sqlguard panic. The real binary gets random argv,
//! environment, config and index (mutations of valid ones, and hostile values: non-UTF-8 bytes,
//! huge numbers and durations, absolute and `..` keys, storages that are not configured, dates
//! off the calendar), and must never exit 101 or print a panic.
//!
//! The seed is printed; `SQLGUARD_TEST_SEED=<seed>` replays a run and
//! `SQLGUARD_TEST_RANDOM_RUNS=<n>` runs more (scripts/fuzz.sh does).

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::process::{Command, Stdio};

use crate::support::{Env, BIN};

fn pick<'a>(rng: &mut fastrand::Rng, items: &[&'a str]) -> &'a str {
    items[rng.usize(..items.len())]
}

/// `text` cut at a random place (on a character boundary).
fn cut_somewhere(rng: &mut fastrand::Rng, text: &mut String) {
    let cut = rng.usize(..=text.len());
    let cut = (0..=cut)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    text.truncate(cut);
}

/// A value that tends to break parsers.
fn hostile_value(rng: &mut fastrand::Rng) -> String {
    let pool = [
        "",
        " ",
        "0",
        "-1",
        "4294967295",
        "18446744073709551616",
        "9999999999999w",
        "300000000w",
        "1.5",
        "7x",
        "true",
        "yes",
        "${NOPE}",
        "$${",
        "${",
        "/",
        "/etc/passwd",
        "../../x",
        "a/../../b",
        "ü日\u{1F600}",
        "\u{0}",
        "http://user:pw@127.0.0.1:9",
        "https://[::1",
        "* * * * *",
        "61 25 32 13 8",
        "*/0 * * * *",
        "0 0 31 2 *",
        "@reboot",
        "--password=x",
        "-Br",
        "'; DROP DATABASE x; --",
        "9223372036854775807",
        "-9223372036854775808",
        "1e309",
        "NaN",
    ];
    if rng.bool() {
        pick(rng, &pool).to_string()
    } else {
        (0..rng.usize(0..40))
            .map(|_| char::from_u32(rng.u32(0x20..0x2FF)).unwrap_or('x'))
            .collect()
    }
}

/// A YAML config: half the time a valid one (so that runs reach the index), else a valid one
/// with parts replaced by hostile values and keys.
fn random_config(rng: &mut fastrand::Rng, storage: &str) -> String {
    if rng.bool() {
        return format!(
            "servers:\n  main:\n    host: 127.0.0.1\n    port: 9\n    user: u\n    password: p\nstorage:\n  local:\n    type: local\n    path: {storage}\nbackup_types:\n  daily:\n    schedule: \"30 2 * * *\"\n    retention: {{keep_last: 2, keep_within: 1d}}\n  manual:\n    retention: {{keep_last: 1}}\nretry: {{attempts: 1, max_backoff: 1s}}\n"
        );
    }
    let keys = [
        "host",
        "port",
        "user",
        "password",
        "password_file",
        "socket",
        "dump_options",
        "dump_tool",
        "client_tool",
    ];
    let mut text = format!(
        "servers:\n  main:\n    host: 127.0.0.1\n    port: 9\n    user: u\n    password: p\n    {}: {}\n",
        pick(rng, &keys),
        serde_json::to_string(&hostile_value(rng)).unwrap()
    );
    text.push_str(&format!(
        "storage:\n  local:\n    type: local\n    path: {storage}\n"
    ));
    if rng.bool() {
        text.push_str(&format!(
            "  s3x:\n    type: s3\n    bucket: {}\n    endpoint: {}\n    access_key_id: a\n    secret_access_key: b\n",
            serde_json::to_string(&hostile_value(rng)).unwrap(),
            serde_json::to_string(&hostile_value(rng)).unwrap(),
        ));
    }
    let retention = ["keep_last", "keep_within", "forever", "failed_keep_within"];
    text.push_str(&format!(
        "backup_types:\n  daily:\n    schedule: {}\n    compression: {{algorithm: {}, level: {}, threads: {}}}\n    retention: {{{}: {}}}\n",
        serde_json::to_string(&hostile_value(rng)).unwrap(),
        pick(rng, &["zstd", "xz", "none", "gzip"]),
        pick(rng, &["0", "3", "19", "99", "-5", "x"]),
        pick(rng, &["0", "1", "2", "4294967295", "-1"]),
        pick(rng, &retention),
        serde_json::to_string(&hostile_value(rng)).unwrap(),
    ));
    for (k, v) in [
        ("orphan_min_age", hostile_value(rng)),
        ("prune_schedule", hostile_value(rng)),
        ("lock_dir", hostile_value(rng)),
    ] {
        if rng.u8(..4) == 0 {
            text.push_str(&format!("{k}: {}\n", serde_json::to_string(&v).unwrap()));
        }
    }
    text.push_str("retry: {attempts: 1, max_backoff: 1s}\n");
    if rng.u8(..4) == 0 {
        text.push_str(&format!(
            "metrics:\n  pushgateway: {}\n  timeout: 1s\n",
            serde_json::to_string(&hostile_value(rng)).unwrap()
        ));
    }
    if rng.u8(..8) == 0 {
        cut_somewhere(rng, &mut text);
    }
    text
}

/// An index for server `main`: valid records with fields replaced by hostile ones.
fn random_index(rng: &mut fastrand::Rng) -> String {
    let mut records = Vec::new();
    for i in 0..rng.usize(0..6) {
        let mut r = serde_json::json!({
            "id": format!("20261128T0{i}0000Z_0000000{i}"),
            "server": "main",
            "database": "shop",
            "type": "daily",
            "storage": "local",
            "status": "success",
            "started_at": "2026-11-28T02:00:00Z",
            "finished_at": "2026-11-28T02:01:00Z",
            "duration_seconds": 60.0,
            "raw_bytes": 100,
            "compressed_bytes": 10,
            "sha256": "00",
            "compression": "zstd",
            "compression_level": 3,
            "key": format!("main/shop/daily/20261128T0{i}0000Z_0000000{i}.sql.zst"),
            "manifest_key": null,
            "server_version": null,
            "dump_tool": null,
            "dump_tool_version": null,
            "sqlguard_version": "0.1.0",
            "error": null
        });
        let field = pick(
            rng,
            &[
                "id",
                "database",
                "type",
                "storage",
                "status",
                "started_at",
                "finished_at",
                "duration_seconds",
                "raw_bytes",
                "compressed_bytes",
                "key",
                "compression",
                "compression_level",
                "server",
            ],
        );
        r[field] = match rng.u8(..6) {
            0 => serde_json::json!(u64::MAX),
            1 => serde_json::json!(-1),
            2 => serde_json::json!("/etc/passwd"),
            3 => serde_json::json!("+262143-12-31T23:59:59Z"),
            4 => serde_json::json!(1e300),
            _ => serde_json::json!(hostile_value(rng)),
        };
        records.push(r);
    }
    // Either layout's document: the legacy index, or a database's file of the current one.
    let doc = match rng.u8(..3) {
        0 => serde_json::json!({"schema_version": 1, "server": "main", "backups": records}),
        1 => {
            serde_json::json!({"schema_version": 2, "server": "main", "database": "shop", "partition": "2026-11", "backups": records})
        }
        _ => {
            serde_json::json!({"schema_version": rng.u32(..), "server": hostile_value(rng), "databases": {"shop": {"dirty": rng.bool(), "records": rng.u64(..), "types": {"daily": {"last_run": records}}}}})
        }
    };
    let mut text = doc.to_string();
    if rng.u8(..6) == 0 {
        cut_somewhere(rng, &mut text);
    }
    text
}

/// Random argv: a command and flags with ordinary and hostile values.
fn random_args(rng: &mut fastrand::Rng) -> Vec<OsString> {
    let commands: &[&[&str]] = &[
        &["config", "check"],
        &["config", "show"],
        &["list"],
        &["list", "--json"],
        &["report"],
        &["report", "--format", "html", "-o", "report.html"],
        &["report", "--json"],
        &["prune", "--dry-run"],
        &["prune"],
        &["verify", "--latest"],
        &["fetch", "20261128T000000Z_00000000", "-o", "out"],
        &[
            "restore",
            "20261128T000000Z_00000000",
            "--to-server",
            "main",
        ],
        &["index", "rebuild"],
        &["schedule", "--format", "systemd"],
        &["schedule", "--format", "cron"],
        &["backup", "--type", "daily"],
    ];
    let mut args: Vec<OsString> = commands[rng.usize(..commands.len())]
        .iter()
        .map(OsString::from)
        .collect();
    let flags = [
        "--since",
        "--limit",
        "--window",
        "--db",
        "--server",
        "--storage",
        "--type",
        "--wait",
        "--status",
    ];
    let extra = if rng.u8(..3) == 0 { rng.usize(1..3) } else { 0 };
    for _ in 0..extra {
        args.push(pick(rng, &flags).into());
        if rng.u8(..5) == 0 {
            args.push(OsString::from_vec(vec![0xff, 0xfe, b'x']));
        } else {
            // argv cannot carry a NUL byte.
            args.push(hostile_value(rng).replace('\0', "").into());
        }
    }
    args
}

#[test]
fn no_input_makes_sqlguard_panic() {
    let seed: u64 = std::env::var("SQLGUARD_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let runs: usize = std::env::var("SQLGUARD_TEST_RANDOM_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    println!("random input: seed {seed}, {runs} runs (replay with SQLGUARD_TEST_SEED={seed})");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut codes: std::collections::BTreeMap<i32, usize> = Default::default();
    let env = Env::new();
    let storage = env.storage();
    std::fs::create_dir_all(storage.join("main")).unwrap();
    for run in 0..runs {
        let config = random_config(&mut rng, storage.to_str().unwrap());
        std::fs::write(env.config(), &config).unwrap();
        let index = random_index(&mut rng);
        // Random bytes where any index file of either layout may be.
        if rng.bool() {
            let _ = std::fs::remove_dir_all(storage.join("main/index"));
            let _ = std::fs::remove_file(storage.join("main/index.json"));
        }
        let at = pick(
            &mut rng,
            &[
                "main/index.json",
                "main/index/summary.json",
                "main/index/db/shop/2026-11.json",
            ],
        );
        std::fs::create_dir_all(storage.join("main/index/db/shop")).unwrap();
        std::fs::write(storage.join(at), &index).unwrap();
        let args = random_args(&mut rng);
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("SQLGUARD_LOCK_DIR", env.path("locks"))
            .env("SQLGUARD_NO_PUSH", "1")
            .current_dir(env.dir.path())
            .stdin(Stdio::null());
        let hostile_env = if rng.u8(..4) == 0 { rng.usize(1..3) } else { 0 };
        for _ in 0..hostile_env {
            let name = pick(
                &mut rng,
                &[
                    "SQLGUARD_DB_PORT",
                    "SQLGUARD_DB_HOST",
                    "SQLGUARD_STORAGE_PATH",
                    "SQLGUARD_COMPRESSION_THREADS",
                    "SQLGUARD_S3_PATH_STYLE",
                    "SQLGUARD_NO_PUSH",
                    "SQLGUARD_SERVER_NAME",
                    "SQLGUARD_DB_TLS_MODE",
                    "SQLGUARD_X",
                    "NO_COLOR",
                ],
            );
            if rng.u8(..4) == 0 {
                cmd.env(name, OsString::from_vec(vec![b'a', 0xff, 0xc3]));
            } else {
                cmd.env(name, hostile_value(&mut rng).replace('\0', ""));
            }
        }
        if rng.u8(..10) == 0 {
            cmd.env(OsString::from_vec(vec![b'Z', 0xff]), "x");
        }
        cmd.arg("--config").arg(env.config()).args(&args);
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code();
        assert!(
            code != Some(101) && !stderr.contains("panicked"),
            "run {run} (seed {seed}) panicked: exit {code:?}\nargs: {args:?}\nconfig:\n{config}\nindex:\n{index}\nstderr:\n{stderr}"
        );
        assert!(
            code.is_some(),
            "run {run} (seed {seed}) was killed: {args:?}"
        );
        *codes.entry(code.unwrap_or(-1)).or_default() += 1;
    }
    println!("exit codes: {codes:?}");
    // The inputs reach past the config: some runs succeed, some fail at the index or later.
    assert!(codes.get(&0).is_some_and(|n| *n > runs / 20), "{codes:?}");
    assert!(codes.get(&1).is_some_and(|n| *n > runs / 20), "{codes:?}");
}
