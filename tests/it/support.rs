//! Test support: the real `sqlguard` binary, a shared private MariaDB server, and temp workspaces.
//!
//! The MariaDB server is started once (by the project's own `scripts/mariadb.sh`) under a file
//! lock in the target directory and reused by every test process, so `cargo test` and
//! `cargo nextest` both work on a machine that has the Debian packages. Tests isolate themselves
//! by creating databases with unique names.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub const BIN: &str = env!("CARGO_BIN_EXE_sqlguard");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The shared MariaDB server.
pub struct MariaDb {
    pub dir: PathBuf,
    pub port: u16,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts (or reuses) a server shared by every test process: `scripts/<script> start DIR PORT`
/// under a file lock, reused while its pid lives. Returns its directory and port.
fn shared_service(name: &str, script: &str) -> (PathBuf, u16) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    fs::create_dir_all(&dir).unwrap();
    let lock = fs::File::create(dir.with_extension("lock")).unwrap();
    lock.lock().unwrap();
    let alive = fs::read_to_string(dir.join("pid"))
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
    let port = if alive {
        fs::read_to_string(dir.join("port"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    } else {
        let port = free_port();
        start_service(script, &dir, port);
        port
    };
    (dir, port)
}

/// Runs `scripts/<script> start DIR PORT`, panicking with its output on failure.
pub fn start_service(script: &str, dir: &Path, port: u16) {
    let out = Command::new("bash")
        .arg(format!("{ROOT}/scripts/{script}"))
        .args(["start", dir.to_str().unwrap(), &port.to_string()])
        // The shared server lives across runs: an hour of binary logs is all a test reads, and
        // a day's worth of test runs filled tens of GB.
        .env("MARIADB_BINLOG_EXPIRE_SECONDS", "3600")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run scripts/{script}: {e}"));
    assert!(
        out.status.success(),
        "scripts/{script} start failed (run scripts/install-deps.sh --test?): {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Flips one byte in the middle of the file at `path`: a stored copy damaged on disk.
pub fn damage(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(path, bytes).unwrap();
}

/// The shared server, started on first use.
pub fn mariadb() -> &'static MariaDb {
    static DB: OnceLock<MariaDb> = OnceLock::new();
    DB.get_or_init(|| {
        let (dir, port) = shared_service("it-mariadb", "mariadb.sh");
        MariaDb { dir, port }
    })
}

/// An S3-compatible server (s3s-fs): the shared one, or a private one a test may kill.
pub struct S3 {
    pub dir: PathBuf,
    pub port: u16,
    private: bool,
}

/// The shared Pushgateway, started on first use; returns its base URL. Tests isolate themselves
/// with a unique `instance` label.
pub fn pushgateway() -> &'static str {
    static P: OnceLock<String> = OnceLock::new();
    P.get_or_init(|| {
        let (_, port) = shared_service("it-pushgateway", "pushgateway.sh");
        format!("http://127.0.0.1:{port}")
    })
}

/// One sample scraped from the Pushgateway.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Scrapes the Pushgateway's `/metrics` and keeps the samples of `instance`.
pub fn scrape(instance: &str) -> Vec<Sample> {
    let out = Command::new("curl")
        .args(["-sf", &format!("{}/metrics", pushgateway())])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut samples = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (head, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match head.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (head, ""),
        };
        let mut map = BTreeMap::new();
        // Label values here never contain `",` or escapes; split on `",`.
        for pair in labels.split("\",").filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap();
            map.insert(k.to_string(), v.trim_matches('"').to_string());
        }
        if map.get("instance").map(String::as_str) == Some(instance) {
            samples.push(Sample {
                name: name.to_string(),
                labels: map,
                value: value.parse().unwrap(),
            });
        }
    }
    samples
}

/// The value of the one sample named `name` whose labels include `labels`.
pub fn sample(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert!(
        found.len() <= 1,
        "several samples match {name} {labels:?}: {found:?}"
    );
    found.first().map(|s| s.value)
}

/// The shared moto S3 server (for what s3s-fs cannot do), started on first use; returns its
/// endpoint.
pub fn moto() -> &'static str {
    static M: OnceLock<String> = OnceLock::new();
    M.get_or_init(|| {
        let (_, port) = shared_service("it-moto", "moto.sh");
        format!("http://127.0.0.1:{port}")
    })
}

/// The shared S3 server, started on first use.
pub fn s3() -> &'static S3 {
    static S: OnceLock<S3> = OnceLock::new();
    S.get_or_init(|| {
        let (dir, port) = shared_service("it-s3", "s3.sh");
        S3 {
            dir,
            port,
            private: false,
        }
    })
}

impl S3 {
    /// A server of this test's own, in `dir`, stopped when dropped.
    pub fn private(dir: &Path) -> S3 {
        let port = free_port();
        start_service("s3.sh", dir, port);
        S3 {
            dir: dir.to_path_buf(),
            port,
            private: true,
        }
    }

    /// Starts a stopped private server again on the same port.
    pub fn restart(&self) {
        start_service("s3.sh", &self.dir, self.port);
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&self) {
        if let Ok(pid) = fs::read_to_string(self.dir.join("pid")) {
            Command::new("kill")
                .args(["-9", pid.trim()])
                .status()
                .unwrap();
            let _ = fs::remove_file(self.dir.join("pid"));
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn access_key(&self) -> String {
        fs::read_to_string(self.dir.join("access-key"))
            .unwrap()
            .trim()
            .to_string()
    }

    pub fn secret_key(&self) -> String {
        fs::read_to_string(self.dir.join("secret-key"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Creates a bucket with a unique name.
    pub fn bucket(&self, prefix: &str) -> String {
        let name = format!("{prefix}-{:08x}", fastrand::u32(..));
        fs::create_dir_all(self.dir.join("data").join(&name)).unwrap();
        name
    }

    /// Where s3s-fs keeps an object's bytes.
    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.dir.join("data").join(bucket).join(key)
    }

    /// Every object key in a bucket (s3s-fs's internal files left out), sorted.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let root = self.dir.join("data").join(bucket);
        let mut out = Vec::new();
        walk(&root, &root, &mut out);
        out.retain(|k| !k.split('/').any(|c| c.starts_with('.')));
        out.sort();
        out
    }

    /// Multipart uploads that s3s-fs holds open (their part and info files).
    pub fn open_uploads(&self) -> Vec<String> {
        fs::read_dir(self.dir.join("data"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(".upload"))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A storage section for `bucket` (YAML, indented under `storage:`).
    pub fn storage_yaml(&self, name: &str, bucket: &str) -> String {
        format!(
            "  {name}:\n    type: s3\n    endpoint: {}\n    bucket: {bucket}\n    path_style: true\n    access_key_id: {}\n    secret_access_key: {}\n",
            self.endpoint(),
            self.access_key(),
            self.secret_key()
        )
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        if self.private {
            self.kill();
        }
    }
}

impl MariaDb {
    pub fn password_file(&self) -> PathBuf {
        self.dir.join("root-password")
    }

    pub fn password(&self) -> String {
        fs::read_to_string(self.password_file())
            .unwrap()
            .trim()
            .to_string()
    }

    /// Runs SQL as root through the socket; panics on failure. Returns tab-separated rows.
    pub fn sql(&self, db: Option<&str>, sql: &str) -> String {
        let mut cmd = Command::new("mariadb");
        cmd.arg(format!(
            "--defaults-file={}",
            self.dir.join("client.cnf").display()
        ))
        .args([
            "--batch",
            "--skip-column-names",
            "--default-character-set=utf8mb4",
        ]);
        if let Some(db) = db {
            cmd.arg(format!("--database={db}"));
        }
        let out = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(sql.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        assert!(
            out.status.success(),
            "SQL failed: {sql}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Pipes `input` (a plain SQL dump) into `db`, as `mysql` would restore it.
    pub fn restore(&self, db: &str, input: &[u8]) {
        let mut child = Command::new("mariadb")
            .arg(format!(
                "--defaults-file={}",
                self.dir.join("client.cnf").display()
            ))
            .arg(format!("--database={db}"))
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(input).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "restore failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Creates an empty database with a unique name starting with `prefix`.
    pub fn create_db(&self, prefix: &str) -> String {
        let name = format!("{prefix}_{:08x}", fastrand::u32(..));
        self.sql(
            None,
            &format!("CREATE DATABASE `{}`", name.replace('`', "``")),
        );
        name
    }

    /// Creates a database filled by scripts/shop.sql with `scale` orders.
    pub fn create_shop(&self, prefix: &str, scale: u32) -> String {
        let name = self.create_db(prefix);
        let script = fs::read_to_string(format!("{ROOT}/scripts/shop.sql")).unwrap();
        self.sql(Some(&name), &format!("SET @scale={scale};\n{script}"));
        name
    }

    /// `CHECKSUM TABLE` of every base table, by table name.
    pub fn checksums(&self, db: &str) -> BTreeMap<String, String> {
        let q = |s: &str| s.replace('`', "``");
        let tables = self.sql(
            None,
            &format!(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{}' AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1",
                db.replace('\'', "''")
            ),
        );
        tables
            .lines()
            .map(|t| {
                let row = self.sql(None, &format!("CHECKSUM TABLE `{}`.`{}`", q(db), q(t)));
                let sum = row.trim().rsplit('\t').next().unwrap().to_string();
                (t.to_string(), sum)
            })
            .collect()
    }

    /// The `information_schema` rows of every object of `db` that a restore must reproduce:
    /// tables (engine, AUTO_INCREMENT, collation, options), columns, indexes, constraints,
    /// views, triggers, routines and events (definer, SQL mode, character sets), with the
    /// database's name written as `DB` so that two databases compare.
    pub fn schema_snapshot(&self, db: &str) -> String {
        let d = db.replace('\'', "''");
        let queries = [
            format!("SELECT TABLE_NAME, TABLE_TYPE, ENGINE, ROW_FORMAT, AUTO_INCREMENT, TABLE_COLLATION, CREATE_OPTIONS, TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA='{d}' ORDER BY 1"),
            format!("SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_DEFAULT, IS_NULLABLE, COLUMN_TYPE, CHARACTER_SET_NAME, COLLATION_NAME, EXTRA, GENERATION_EXPRESSION FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='{d}' ORDER BY 1, 3"),
            format!("SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE, INDEX_TYPE FROM information_schema.STATISTICS WHERE TABLE_SCHEMA='{d}' ORDER BY 1, 2, 3"),
            format!("SELECT CONSTRAINT_NAME, TABLE_NAME, UNIQUE_CONSTRAINT_NAME, UPDATE_RULE, DELETE_RULE, REFERENCED_TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA='{d}' ORDER BY 1"),
            format!("SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, DEFINER, SECURITY_TYPE, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, ALGORITHM FROM information_schema.VIEWS WHERE TABLE_SCHEMA='{d}' ORDER BY 1"),
            format!("SELECT TRIGGER_NAME, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_ORDER, ACTION_STATEMENT, ACTION_TIMING, SQL_MODE, DEFINER, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, DATABASE_COLLATION FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA='{d}' ORDER BY 1"),
            format!("SELECT ROUTINE_NAME, ROUTINE_TYPE, DATA_TYPE, ROUTINE_DEFINITION, IS_DETERMINISTIC, SQL_DATA_ACCESS, SECURITY_TYPE, SQL_MODE, DEFINER, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, DATABASE_COLLATION FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA='{d}' ORDER BY 1"),
            format!("SELECT EVENT_NAME, DEFINER, TIME_ZONE, EVENT_DEFINITION, EVENT_TYPE, INTERVAL_VALUE, INTERVAL_FIELD, SQL_MODE, STATUS, ON_COMPLETION, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, DATABASE_COLLATION FROM information_schema.EVENTS WHERE EVENT_SCHEMA='{d}' ORDER BY 1"),
        ];
        let mut out = String::new();
        for q in queries {
            out.push_str(&self.sql(None, &q));
            out.push_str("\n--\n");
        }
        out.replace(db, "DB")
    }

    /// Names of the views, triggers, routines and events of `db`.
    pub fn objects(&self, db: &str) -> Vec<String> {
        let d = db.replace('\'', "''");
        let out = self.sql(
            None,
            &format!(
                "SELECT CONCAT('view:', TABLE_NAME) FROM information_schema.VIEWS WHERE TABLE_SCHEMA='{d}'
                 UNION ALL SELECT CONCAT('trigger:', TRIGGER_NAME) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA='{d}'
                 UNION ALL SELECT CONCAT(LOWER(ROUTINE_TYPE), ':', ROUTINE_NAME) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA='{d}'
                 UNION ALL SELECT CONCAT('event:', EVENT_NAME) FROM information_schema.EVENTS WHERE EVENT_SCHEMA='{d}'
                 ORDER BY 1"
            ),
        );
        out.lines().map(String::from).collect()
    }
}

/// A temp workspace with a config file and a local storage directory.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::Builder::new()
                .prefix("sqlguard-it-")
                .tempdir()
                .unwrap(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn storage(&self) -> PathBuf {
        self.path("backups")
    }

    pub fn config(&self) -> PathBuf {
        self.path("sqlguard.yaml")
    }

    /// Writes the config: a server block for the shared MariaDB (`server_extra` indented under it)
    /// plus `rest` (storage and types), with `{storage}` replaced by the storage directory.
    pub fn write_config(&self, server_extra: &str, rest: &str) {
        let db = mariadb();
        let mut text = format!(
            "servers:\n  main:\n    host: 127.0.0.1\n    port: {}\n    user: root\n    password_file: {}\n",
            db.port,
            db.password_file().display()
        );
        for line in server_extra.lines() {
            text.push_str(&format!("    {line}\n"));
        }
        text.push_str(&rest.replace("{storage}", self.storage().to_str().unwrap()));
        fs::write(self.config(), text).unwrap();
    }

    /// A config with one local storage and the built-in types.
    pub fn write_local_config(&self, server_extra: &str) {
        self.write_config(
            server_extra,
            "storage:\n  local:\n    type: local\n    path: {storage}\n",
        );
    }

    /// Replaces `from` with `to` in the config file; `from` must be there (an edit that
    /// changes nothing would let a test pass for the wrong reason).
    pub fn edit_config(&self, from: &str, to: &str) {
        let text = fs::read_to_string(self.config()).unwrap();
        assert!(
            text.contains(from),
            "{from:?} is not in the config:\n{text}"
        );
        fs::write(self.config(), text.replace(from, to)).unwrap();
    }

    /// The binary with a clean environment (no SQLGUARD_* from the caller), this config, and
    /// this workspace's lock directory.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        for (k, _) in std::env::vars() {
            if k.starts_with("SQLGUARD_") || k == "NO_COLOR" || k == "JOURNAL_STREAM" {
                c.env_remove(k);
            }
        }
        // Job locks per workspace: tests of different workspaces never contend.
        c.env("SQLGUARD_LOCK_DIR", self.path("locks"));
        c.current_dir(self.dir.path())
            .arg("--config")
            .arg(self.config())
            .stdin(Stdio::null());
        c
    }

    /// Runs the binary with `args`, stdout on a pseudo-terminal `cols` wide
    /// (tests/fixtures/in_pty.py); stdout is what the terminal received.
    pub fn run_in_pty(&self, cols: u16, args: &[&str]) -> Run {
        let mut inner = self.cmd();
        inner.args(args);
        let mut c = Command::new("python3");
        c.arg(format!("{ROOT}/tests/fixtures/in_pty.py"))
            .arg(cols.to_string())
            .arg(inner.get_program())
            .args(inner.get_args())
            .current_dir(self.dir.path());
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        Run::from(c.output().unwrap())
    }

    /// Runs the binary with `args`.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd().args(args).output().unwrap())
    }

    /// Runs the binary with `args` and the environment variables `vars` set.
    pub fn run_with(&self, vars: &[(&str, &str)], args: &[&str]) -> Run {
        Run::from(
            self.cmd()
                .envs(vars.iter().copied())
                .args(args)
                .output()
                .unwrap(),
        )
    }

    /// Starts the binary with `args`, its stdout and stderr piped (for `wait_with_output`).
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.cmd()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The newest index file (month) of database `db` of server `main` on the default local
    /// storage.
    pub fn db_index(&self, db: &str) -> PathBuf {
        newest_index_file(&self.storage().join(format!("main/index/db/{db}")))
    }

    /// Every file under the storage directory, relative, sorted.
    pub fn stored_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.storage(), &self.storage(), &mut out);
        out.sort();
        out
    }

    /// The list as typed JSON.
    pub fn list(&self, extra: &[&str]) -> ListDoc {
        let mut args = vec!["list", "--json"];
        args.extend_from_slice(extra);
        let r = self.run(&args);
        let doc: ListDoc = serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("list --json: {e}\n{}\n{}", r.stdout, r.stderr));
        // Exit 1 exactly when some index could not be read, and then the document says which.
        assert_eq!(
            r.code,
            if doc.errors.is_empty() { 0 } else { 1 },
            "{}",
            r.stderr
        );
        doc
    }

    /// Reads and decompresses a stored object.
    pub fn read_object(&self, key: &str, compression: &str) -> Vec<u8> {
        let tool = match compression {
            "zstd" => "zstd",
            "xz" => "xz",
            _ => "cat",
        };
        let path = self.storage().join(key);
        let out = Command::new(tool)
            .args(if tool == "cat" { vec![] } else { vec!["-dc"] })
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{tool} -d {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
        }
    }
}

/// A finished run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Asserts the exit code, showing the output when it differs.
    pub fn expect(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit code {}, wanted {code}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// The `list --json` document, typed.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListDoc {
    pub schema_version: u32,
    pub backups: Vec<Record>,
    pub errors: Vec<String>,
}

/// One record as scripts see it (every field, so that a new or renamed one fails the tests).
#[allow(dead_code)]
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub id: String,
    pub server: String,
    pub database: String,
    #[serde(rename = "type")]
    pub backup_type: String,
    pub storage: String,
    pub status: String,
    pub started_at: String,
    pub finished_at: String,
    pub duration_seconds: f64,
    pub raw_bytes: u64,
    pub compressed_bytes: u64,
    pub sha256: Option<String>,
    pub compression: String,
    pub compression_level: i32,
    pub key: Option<String>,
    pub manifest_key: Option<String>,
    pub server_version: Option<String>,
    pub dump_tool: Option<String>,
    pub dump_tool_version: Option<String>,
    pub sqlguard_version: String,
    pub error: Option<String>,
    #[serde(default)]
    pub verification: Option<serde_json::Value>,
    #[serde(default)]
    pub database_collation: Option<String>,
    pub source_data_bytes: Option<u64>,
    pub binlog: Option<serde_json::Value>,
    pub consistent: Option<bool>,
    pub segment: Option<serde_json::Value>,
    #[serde(default)]
    pub encryption: Option<serde_json::Value>,
}

/// SHA-256 of a file, via the system's sha256sum (independent of sqlguard's own hashing).
pub fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Writes an executable shell script.
pub fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// This host's name, as sqlguard reports it.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

/// Reads a whole file as a string ("" when missing).
pub fn read(path: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = fs::File::open(path) {
        f.read_to_string(&mut s).unwrap();
    }
    s
}

/// Whether a stored file (its path under the storage root) belongs to an index: the stub where
/// the legacy index was, the summary, a database's file, or the lock.
pub fn is_index_file(path: &str) -> bool {
    path.ends_with("/index.json")
        || path == "index.json"
        || path.ends_with(".index.lock")
        || path.contains("index/summary.json")
        || path.contains("index/db/")
}

/// The newest month's index file in a database's index directory.
pub fn newest_index_file(dir: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .pop()
        .unwrap_or_else(|| panic!("no index file in {}", dir.display()))
}

/// A private HTTP receiver (`scripts/http-receiver.py`) that records every request; stopped when
/// dropped.
pub struct Receiver {
    child: std::process::Child,
    pub port: u16,
    record: PathBuf,
}

/// One request the receiver got.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// The port a helper `child` (named `what` in failures) writes to `port_file` once it listens;
/// fails the test when the child exits first or takes more than 30 s.
pub fn port_from_file(child: &mut std::process::Child, port_file: &Path, what: &str) -> u16 {
    let started = std::time::Instant::now();
    loop {
        if let Some(p) = fs::read_to_string(port_file)
            .ok()
            .and_then(|p| p.trim().parse().ok())
        {
            return p;
        }
        assert!(child.try_wait().unwrap().is_none(), "{what} exited");
        assert!(started.elapsed().as_secs() < 30, "{what} did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

impl Receiver {
    /// Starts one in `dir`, on a free port it picks itself.
    pub fn start(dir: &Path) -> Receiver {
        fs::create_dir_all(dir).unwrap();
        let record = dir.join("requests.jsonl");
        let port_file = dir.join("receiver.port");
        let mut child = Command::new("python3")
            .arg(format!("{ROOT}/scripts/http-receiver.py"))
            .arg("--record")
            .arg(&record)
            .arg("--port-file")
            .arg(&port_file)
            .stdin(Stdio::null())
            .spawn()
            .expect("python3 runs the HTTP receiver");
        let port = port_from_file(&mut child, &port_file, "the HTTP receiver");
        Receiver {
            child,
            port,
            record,
        }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every request so far, in the order they came.
    pub fn requests(&self) -> Vec<Received> {
        read(&self.record)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
