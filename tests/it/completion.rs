//! Shell completion with live values, asked of real bash, zsh and fish through the committed
//! registration scripts (`completions/`), which call the binary back from `PATH`: names from
//! the config, databases and backup ids from the index of a local storage, and no wait and no
//! noise when a storage cannot be reached.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use sqlguard::index::{BackupRecord, IndexStore, Status};

use crate::support::BIN;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A Tab must answer within this, whatever the storages do.
const WITHIN: Duration = Duration::from_secs(1);

/// A workspace: the binary as `sqlguard` on a `PATH` directory, a config whose local storage
/// holds an index, and a home of its own for the shells.
struct Fixture {
    dir: tempfile::TempDir,
    /// What an ID is offered: `latest`, then the ids of the successful backups, newest first.
    ids: Vec<String>,
}

impl Fixture {
    /// Servers `main` and `other`, storage `local` (after the storages in `storage_first`),
    /// types `daily` and `weekly`; the index holds shop and crm of main and billing of other,
    /// and a failed backup.
    fn new(storage_first: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("home")).unwrap();
        std::os::unix::fs::symlink(BIN, root.join("bin/sqlguard")).unwrap();
        let store = root.join("store");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::write(
            root.join("config.yaml"),
            format!(
                "servers:\n  main:\n    host: 127.0.0.1\n    user: backup\n  other:\n    host: 127.0.0.1\n    port: 3441\n    user: backup\n\
                 storage:\n{storage_first}  local:\n    type: local\n    path: {}\n\
                 backup_types:\n  daily:\n    storages: [local]\n    retention: {{keep_last: 7}}\n  weekly:\n    storages: [local]\n    retention: {{keep_last: 4}}\n",
                store.display()
            ),
        )
        .unwrap();
        let now = Utc::now();
        let record = |server: &str, mins: i64, n: u32, db: &str, t: &str, status: Status| {
            let started = now - chrono::Duration::minutes(mins);
            let id = format!("{}_{n:08x}", started.format("%Y%m%dT%H%M%SZ"));
            let mut r = BackupRecord::sample(&id, db, t, "local", status, started);
            r.server = server.to_string();
            r
        };
        let main = vec![
            record("main", 60, 1, "shop", "daily", Status::Success),
            record("main", 120, 2, "crm", "daily", Status::Success),
            record("main", 180, 3, "shop", "weekly", Status::Failed),
            // What an edited index could offer a shell to insert unquoted: never offered.
            {
                let mut r = record(
                    "main",
                    90,
                    5,
                    "sh$(touch pwned)op",
                    "daily",
                    Status::Success,
                );
                r.id = format!("{}$(touch pwned)", r.id);
                r
            },
        ];
        let other = vec![record("other", 30, 4, "billing", "daily", Status::Success)];
        let storage = sqlguard::storage::local::LocalStorage::new("local", &store);
        IndexStore::new(&storage, "main").upsert(&main).unwrap();
        IndexStore::new(&storage, "other").upsert(&other).unwrap();
        let ids = vec![
            "latest".to_string(),
            other[0].id.clone(),
            main[0].id.clone(),
            main[1].id.clone(),
        ];
        Fixture { dir, ids }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn config(&self) -> String {
        self.path("config.yaml").display().to_string()
    }

    /// A shell with this workspace's `PATH`, home and config (`SQLGUARD_CONFIG`, unless
    /// `config_env` is false), and nothing of the caller's sqlguard or completion variables.
    fn shell(&self, program: &str, config_env: bool) -> Command {
        let mut c = Command::new(program);
        for (k, _) in std::env::vars() {
            if k.starts_with("SQLGUARD_") || k == "COMPLETE" || k.starts_with("_CLAP_") {
                c.env_remove(k);
            }
        }
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        c.env("PATH", path)
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("home/.config"))
            .env("XDG_DATA_HOME", self.path("home/.local/share"))
            .env("XDG_CACHE_HOME", self.path("home/.cache"))
            .env("LC_ALL", "C")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        if config_env {
            c.env("SQLGUARD_CONFIG", self.config());
        }
        c
    }
}

/// What one Tab offered: the candidates in order, how long the completion took (measured in the
/// shell), and what the shell printed on stderr.
#[derive(Debug)]
struct Answer {
    candidates: Vec<String>,
    elapsed: Duration,
    stderr: String,
}

impl Answer {
    fn parse(out: std::process::Output, shell: &str) -> Answer {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{shell}: {stdout}{stderr}");
        let mut lines = stdout.lines();
        let elapsed = lines
            .next()
            .and_then(|l| l.strip_prefix("elapsed_us "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{shell}: no timing in {stdout}"));
        Answer {
            candidates: lines.map(String::from).collect(),
            elapsed: Duration::from_micros(elapsed),
            stderr,
        }
    }

    /// The candidates that are not options, in the order offered.
    fn values(&self) -> Vec<&str> {
        self.candidates
            .iter()
            .map(String::as_str)
            .filter(|c| !c.starts_with('-'))
            .collect()
    }

    /// [`Answer::values`] sorted: zsh lists the names that share a description (the types on
    /// the same storages) together, in an order of its own.
    fn names(&self) -> Vec<&str> {
        let mut v = self.values();
        v.sort_unstable();
        v
    }
}

/// bash: sources `completions/sqlguard.bash`, then calls the function it registered for
/// `sqlguard` as bash does on a Tab, with the cursor at the end of `words` (the last is the word
/// being completed).
fn bash(fx: &Fixture, words: &[&str], config_env: bool) -> Answer {
    let script = format!(
        r#"source {ROOT}/completions/sqlguard.bash || exit 3
spec=$(complete -p sqlguard) || exit 4
fn=${{spec##* -F }}; fn=${{fn%% *}}
COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
COMP_LINE="$*"; COMP_POINT=${{#COMP_LINE}}; COMP_TYPE=9; COMP_KEY=9
t0=$EPOCHREALTIME
"$fn" sqlguard "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
t1=$EPOCHREALTIME
echo "elapsed_us $(( ${{t1/./}} - ${{t0/./}} ))"
[[ ${{#COMPREPLY[@]}} -eq 0 ]] || printf '%s\n' "${{COMPREPLY[@]}}""#
    );
    let out = fx
        .shell("bash", config_env)
        .args(["--norc", "--noprofile", "-c", &script, "bash"])
        .args(words)
        .output()
        .unwrap();
    Answer::parse(out, "bash")
}

/// zsh: a real interactive zsh in a pseudo-terminal with `completions/` on its `fpath` (as
/// installed: autoloaded on the first Tab), typing `line` and a Tab.
fn zsh(fx: &Fixture, line: &str) -> Answer {
    let out = fx
        .shell("zsh", true)
        .args([
            "-f",
            &format!("{ROOT}/tests/fixtures/complete.zsh"),
            &format!("{ROOT}/completions"),
            fx.path("zsh-matches").to_str().unwrap(),
            line,
        ])
        .output()
        .unwrap();
    Answer::parse(out, "zsh")
}

/// fish: `completions/` on `fish_complete_path` (as installed: autoloaded), then `complete -C`
/// of `line`; the candidates without their descriptions.
fn fish(fx: &Fixture, line: &str) -> Answer {
    let quoted = format!("'{}'", line.replace('\\', "\\\\").replace('\'', "\\'"));
    let script = format!(
        r#"set -p fish_complete_path {ROOT}/completions
set -l t0 (date +%s%N)
set -l found (complete -C {quoted})
set -l t1 (date +%s%N)
echo "elapsed_us "(math --scale=0 "($t1 - $t0) / 1000")
for f in $found
    string split -f1 \t -- $f
end
exit 0"#
    );
    let out = fx
        .shell("fish", true)
        .args(["--no-config", "-c", &script])
        .output()
        .unwrap();
    Answer::parse(out, "fish")
}

/// Asks every shell to complete `line` and checks each answer.
fn in_every_shell(fx: &Fixture, line: &str, check: impl Fn(&str, &Answer)) {
    let mut words: Vec<&str> = line.split_whitespace().collect();
    if line.ends_with(' ') {
        words.push("");
    }
    check("bash", &bash(fx, &words, true));
    check("zsh", &zsh(fx, line));
    check("fish", &fish(fx, line));
}

fn quick_and_quiet(shell: &str, a: &Answer) {
    assert!(a.elapsed < WITHIN, "{shell} took {:?}", a.elapsed);
    assert!(a.stderr.is_empty(), "{shell} printed: {}", a.stderr);
}

#[test]
fn completion_offers_config_names_index_databases_and_backup_ids() {
    let fx = Fixture::new("");
    let ids: Vec<&str> = fx.ids.iter().map(String::as_str).collect();
    in_every_shell(&fx, "sqlguard list --server ", |sh, a| {
        quick_and_quiet(sh, a);
        assert_eq!(a.values(), ["main", "other"], "{sh}: {a:?}");
    });
    in_every_shell(&fx, "sqlguard restore --to-server o", |sh, a| {
        assert_eq!(a.values(), ["other"], "{sh}: {a:?}");
    });
    in_every_shell(&fx, "sqlguard backup --type ", |sh, a| {
        assert_eq!(a.names(), ["daily", "weekly"], "{sh}: {a:?}");
    });
    in_every_shell(&fx, "sqlguard fetch --storage ", |sh, a| {
        assert_eq!(a.values(), ["local"], "{sh}: {a:?}");
    });
    in_every_shell(&fx, "sqlguard list --db ", |sh, a| {
        quick_and_quiet(sh, a);
        assert_eq!(a.values(), ["billing", "crm", "shop"], "{sh}: {a:?}");
    });
    // A --server on the line narrows the databases to its own.
    in_every_shell(&fx, "sqlguard list --server main --db ", |sh, a| {
        assert_eq!(a.values(), ["crm", "shop"], "{sh}: {a:?}");
    });
    // Backup ids: the successful ones, newest first.
    in_every_shell(&fx, "sqlguard restore ", |sh, a| {
        quick_and_quiet(sh, a);
        assert_eq!(a.values(), ids, "{sh}: {a:?}");
    });
    in_every_shell(&fx, "sqlguard verify --restore-test ", |sh, a| {
        assert_eq!(a.values(), ids, "{sh}: {a:?}");
    });
    let prefix = &ids[2][..ids[2].len() - 2];
    in_every_shell(&fx, &format!("sqlguard fetch {prefix}"), |sh, a| {
        assert_eq!(a.values(), [ids[2]], "{sh}: {a:?}");
    });
    in_every_shell(&fx, "sqlguard restore la", |sh, a| {
        assert_eq!(a.values(), ["latest"], "{sh}: {a:?}");
    });
    // fetch and restore take the record filters too (for `latest`).
    in_every_shell(&fx, "sqlguard restore latest --db s", |sh, a| {
        assert_eq!(a.values(), ["shop"], "{sh}: {a:?}");
    });
}

#[test]
fn completion_reads_the_config_the_line_names() {
    let fx = Fixture::new("");
    let config = fx.config();
    // No SQLGUARD_CONFIG and no ./sqlguard.yaml: only the line says where the config is.
    let a = bash(
        &fx,
        &["sqlguard", "--config", &config, "list", "--server", ""],
        false,
    );
    assert_eq!(a.values(), ["main", "other"], "{a:?}");
    let a = bash(
        &fx,
        &["sqlguard", &format!("-c{config}"), "list", "--db", ""],
        false,
    );
    assert_eq!(a.values(), ["billing", "crm", "shop"], "{a:?}");
    let a = bash(&fx, &["sqlguard", "list", "--server", ""], false);
    assert_eq!(a.values(), Vec::<&str>::new(), "{a:?}");
    quick_and_quiet("bash", &a);
}

#[test]
fn completion_without_the_secrets_still_offers_the_names() {
    let fx = Fixture::new("");
    // A password file that only the service could read: the settings do not resolve, the names
    // are still in the file.
    let text = std::fs::read_to_string(fx.path("config.yaml"))
        .unwrap()
        .replace(
            "    user: backup\n  other:",
            "    user: backup\n    password_file: /nonexistent/db-password\n  other:",
        );
    std::fs::write(fx.path("config.yaml"), text).unwrap();
    in_every_shell(&fx, "sqlguard list --server ", |sh, a| {
        quick_and_quiet(sh, a);
        assert_eq!(a.values(), ["main", "other"], "{sh}: {a:?}");
    });
    // The index needs the resolved storages: nothing, quietly.
    let a = bash(&fx, &["sqlguard", "list", "--db", ""], true);
    quick_and_quiet("bash", &a);
    assert_eq!(a.values(), Vec::<&str>::new(), "{a:?}");
    // A config that does not parse: nothing, quietly.
    std::fs::write(fx.path("config.yaml"), "servers: [\n").unwrap();
    in_every_shell(&fx, "sqlguard list --server ", |sh, a| {
        quick_and_quiet(sh, a);
        assert_eq!(a.values(), Vec::<&str>::new(), "{sh}: {a:?}");
    });
}

/// An S3 storage, listed before the local one, whose endpoint is `endpoint`.
fn s3_storage(endpoint: &str) -> String {
    format!(
        "  offsite:\n    type: s3\n    endpoint: {endpoint}\n    region: us-east-1\n    bucket: bkt\n    path_style: true\n    access_key_id: test\n    secret_access_key: test\n"
    )
}

#[test]
fn an_unreachable_storage_does_not_hold_up_or_disturb_a_completion() {
    // A port that accepts connections and never answers: no error, only waiting (a plain
    // `sqlguard list` waits there for the S3 client's request timeout).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let fx = Fixture::new(&s3_storage(&format!(
        "http://127.0.0.1:{}",
        silent.local_addr().unwrap().port()
    )));
    let ids: Vec<&str> = fx.ids.iter().map(String::as_str).collect();
    // The local storage still answers; the S3 one is left out.
    in_every_shell(&fx, "sqlguard list --db ", |sh, a| {
        quick_and_quiet(sh, a);
        assert_eq!(a.values(), ["billing", "crm", "shop"], "{sh}: {a:?}");
    });
    in_every_shell(&fx, "sqlguard restore ", |sh, a| {
        quick_and_quiet(sh, a);
        assert_eq!(a.values(), ids, "{sh}: {a:?}");
    });
    // Only the unreachable one: no candidates, no wait, no message.
    let a = bash(
        &fx,
        &["sqlguard", "list", "--storage", "offsite", "--db", ""],
        true,
    );
    quick_and_quiet("bash", &a);
    assert_eq!(a.values(), Vec::<&str>::new(), "{a:?}");
    // Names need no storage.
    let a = bash(&fx, &["sqlguard", "prune", "--storage", ""], true);
    quick_and_quiet("bash", &a);
    assert_eq!(a.names(), ["local", "offsite"], "{a:?}");
    drop(silent);

    // A port that refuses them: retried with backoff (seconds) by the S3 client.
    let refusing = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = refusing.local_addr().unwrap().port();
    drop(refusing);
    let fx = Fixture::new(&s3_storage(&format!("http://127.0.0.1:{port}")));
    in_every_shell(&fx, "sqlguard list --db ", |sh, a| {
        quick_and_quiet(sh, a);
        assert_eq!(a.values(), ["billing", "crm", "shop"], "{sh}: {a:?}");
    });
}

#[test]
fn backup_ids_are_the_newest_two_hundred() {
    let fx = Fixture::new("");
    let storage = sqlguard::storage::local::LocalStorage::new("local", &fx.path("store"));
    let now = Utc::now();
    let records: Vec<BackupRecord> = (0..300)
        .map(|i| {
            let started = now - chrono::Duration::days(1) - chrono::Duration::minutes(i * 10);
            let id = format!("{}_{:08x}", started.format("%Y%m%dT%H%M%SZ"), 1000 + i);
            BackupRecord::sample(&id, "shop", "daily", "local", Status::Success, started)
        })
        .collect();
    IndexStore::new(&storage, "main").upsert(&records).unwrap();
    let a = bash(&fx, &["sqlguard", "verify", ""], true);
    quick_and_quiet("bash", &a);
    let values = a.values();
    // `latest`, then 200 ids.
    assert_eq!(values.len(), 1 + sqlguard::complete::MAX_IDS, "{a:?}");
    assert_eq!(&values[..4], fx.ids.as_slice());
    assert_eq!(values[4], records[0].id);
    assert_eq!(values[200], records[196].id);
    // A prefix reaches older ones.
    let old = &records[299].id;
    let a = bash(&fx, &["sqlguard", "verify", &old[..old.len() - 1]], true);
    assert_eq!(a.values(), [old.as_str()], "{a:?}");
}

#[test]
fn the_registration_scripts_are_what_the_binary_prints() {
    // `source <(COMPLETE=bash sqlguard)` and the installed files are the same script.
    for (shell, file) in sqlguard::complete::SCRIPTS {
        let out = Command::new(BIN)
            .env("COMPLETE", shell)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
        let committed = std::fs::read(Path::new(ROOT).join("completions").join(file)).unwrap();
        let printed = String::from_utf8(out.stdout)
            .unwrap()
            .replace(BIN, "sqlguard");
        assert_eq!(printed.as_bytes(), committed, "{shell}");
    }
}
