//! Talking to MySQL and MariaDB through their own client tools: tool and server detection, the
//! private in-memory option file that carries the connection and password, database discovery
//! (byte-exact), and the dump command line chosen by flavour and version.
//!
//! It must never put a password on a command line or in a child's environment: every tool gets
//! `--defaults-file=/proc/<pid>/fd/<n>` (a memfd, see [`DefaultsFile`]) as its first argument
//! and nothing secret after it, and runs with a scrubbed environment ([`crate::process`]). It
//! does not read or write backups.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Serialize;

use crate::config::file::TlsMode;
use crate::config::ServerSettings;
use crate::process::OnSignal;

/// Databases that are never backed up unless named literally in `include` or `--db`.
pub const SYSTEM_DATABASES: &[&str] = &["information_schema", "performance_schema", "mysql", "sys"];

/// Which family a tool or server belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    MariaDb,
    MySql,
}

/// A `major.minor.patch` version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// Parses the leading `x.y[.z]` of `s`.
    fn parse_prefix(s: &str) -> Option<Version> {
        let end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let mut parts = s[..end].split('.').map(|p| p.parse::<u32>().ok());
        let major = parts.next()??;
        let minor = parts.next()??;
        let patch = parts.next().flatten().unwrap_or(0);
        Some(Version(major, minor, patch))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// A detected client tool (dump tool or SQL client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolInfo {
    pub program: PathBuf,
    pub flavor: Flavor,
    pub version: Version,
    /// The tool's own `--version` line.
    pub banner: String,
}

/// A detected server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerInfo {
    pub flavor: Flavor,
    pub version: Version,
    /// `SELECT VERSION()` as the server reports it.
    pub version_string: String,
}

/// A database of a server with its estimated size from information_schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Database {
    pub name: String,
    /// Data and index bytes (information_schema): an upper bound for the stored size.
    pub estimated_bytes: u64,
    /// Data bytes alone: the first estimate of the dump's size.
    pub data_bytes: u64,
    /// Its default collation (`utf8mb4_unicode_ci`).
    pub collation: Option<String>,
}

/// Failures talking to a server or running its tools; each names the server.
#[derive(Debug, thiserror::Error)]
pub enum MysqlError {
    #[error("server '{server}': cannot run {program}: {cause} (install mariadb-client, or set servers.{server}.{key})")]
    ToolMissing {
        server: String,
        program: String,
        key: &'static str,
        cause: std::io::Error,
    },
    #[error("server '{server}': cannot run {program}: {cause}")]
    ToolRefused {
        server: String,
        program: String,
        cause: String,
    },
    #[error("server '{server}': cannot understand `{program} --version` output: {output:?}")]
    ToolVersion {
        server: String,
        program: String,
        output: String,
    },
    #[error("server '{server}' ({at}): {what} failed: {message}")]
    Query {
        server: String,
        /// Where the server was reached: `host:port` or the socket.
        at: String,
        what: &'static str,
        message: String,
    },
    #[error("server '{server}': cannot create the private client option file: {cause}")]
    DefaultsFile {
        server: String,
        cause: std::io::Error,
    },
}

/// Where `server` is reached, for messages: `host:port`, or the socket path.
pub fn address(server: &ServerSettings) -> String {
    match &server.socket {
        Some(s) => format!("socket {}", s.display()),
        None => format!(
            "{}:{}",
            server.host.as_deref().unwrap_or("127.0.0.1"),
            server.port.unwrap_or(3306)
        ),
    }
}

/// Parses a tool's `--version` banner into flavour and version.
pub fn parse_tool_banner(banner: &str) -> Option<(Flavor, Version)> {
    if let Some(pos) = banner.find("-MariaDB") {
        let start = banner[..pos]
            .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
            .map(|i| i + 1)
            .unwrap_or(0);
        return Version::parse_prefix(&banner[start..pos]).map(|v| (Flavor::MariaDb, v));
    }
    if let Some(pos) = banner.find("Distrib ") {
        return Version::parse_prefix(&banner[pos + 8..]).map(|v| (Flavor::MySql, v));
    }
    let pos = banner.find("Ver ")?;
    Version::parse_prefix(&banner[pos + 4..]).map(|v| (Flavor::MySql, v))
}

/// Parses `SELECT VERSION()` output.
pub fn parse_server_version(s: &str) -> Option<ServerInfo> {
    let version = Version::parse_prefix(s.trim())?;
    let flavor = if s.contains("MariaDB") {
        Flavor::MariaDb
    } else {
        Flavor::MySql
    };
    Some(ServerInfo {
        flavor,
        version,
        version_string: s.trim().to_string(),
    })
}

/// Finds and identifies a tool: `configured`, else the first of `candidates` that runs.
///
/// Fails when none runs or its banner cannot be parsed.
pub fn detect_tool(
    server: &str,
    configured: Option<&Path>,
    candidates: &[&str],
    key: &'static str,
) -> Result<ToolInfo, MysqlError> {
    let programs: Vec<PathBuf> = match configured {
        Some(p) => vec![p.to_path_buf()],
        None => candidates.iter().map(PathBuf::from).collect(),
    };
    let mut last_err = None;
    for program in programs {
        match crate::process::probe(
            crate::process::command(&program)
                .arg("--version")
                .stdin(Stdio::null()),
        ) {
            Ok(out) => {
                let banner = String::from_utf8_lossy(&out.stdout).trim().to_string();
                let (flavor, version) =
                    parse_tool_banner(&banner).ok_or_else(|| MysqlError::ToolVersion {
                        server: server.to_string(),
                        program: program.display().to_string(),
                        output: banner.clone(),
                    })?;
                return Ok(ToolInfo {
                    program,
                    flavor,
                    version,
                    banner,
                });
            }
            // A signal stopped the run (before or while the probe ran), or the tool hung: say
            // so, not "missing".
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(MysqlError::ToolRefused {
                    server: server.to_string(),
                    program: program.display().to_string(),
                    cause: e.to_string(),
                })
            }
            // Refused for want of room, not missing: installing the tool would not help.
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::AGAIN.raw_os_error()) => {
                return Err(MysqlError::ToolRefused {
                    server: server.to_string(),
                    program: program.display().to_string(),
                    cause: crate::threads::spawn_error(&e),
                })
            }
            Err(e) => last_err = Some((program, e)),
        }
    }
    let (program, source) = last_err.expect("at least one candidate");
    Err(MysqlError::ToolMissing {
        server: server.to_string(),
        program: program.display().to_string(),
        key,
        cause: source,
    })
}

/// The server's SQL client: `client_tool`, else the first of [`CLIENT_TOOLS`] that runs.
///
/// Fails as [`detect_tool`] does.
pub fn client_tool(server: &ServerSettings) -> Result<ToolInfo, MysqlError> {
    detect_tool(
        &server.name,
        server.client_tool.as_deref(),
        CLIENT_TOOLS,
        "client_tool",
    )
}

/// The server's dump tool: `dump_tool`, else the first of [`DUMP_TOOLS`] that runs.
///
/// Fails as [`detect_tool`] does.
pub fn dump_tool(server: &ServerSettings) -> Result<ToolInfo, MysqlError> {
    detect_tool(
        &server.name,
        server.dump_tool.as_deref(),
        DUMP_TOOLS,
        "dump_tool",
    )
}

/// The dump tools tried in order when none is configured.
pub const DUMP_TOOLS: &[&str] = &["mariadb-dump", "mysqldump"];
/// The SQL clients tried in order when none is configured.
pub const CLIENT_TOOLS: &[&str] = &["mariadb", "mysql"];

/// Quotes a value for a MySQL/MariaDB option file: double quotes, with `\`, `"` and control
/// characters escaped the way both parsers read them back.
pub fn quote_option_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The connection and password for a client tool, in a private in-memory option file.
///
/// The text lives in a memfd (RAM only, mode 0600) that this process holds open with
/// close-on-exec: no child inherits it, and it vanishes with the process however it ends,
/// SIGKILL included, so no plaintext secret is ever left on disk. The tool reads it through
/// `--defaults-file=/proc/<our pid>/fd/<n>`, which only the same user may open; the path goes on
/// the command line, the content never does.
#[derive(Debug)]
pub struct DefaultsFile {
    file: std::fs::File,
    path: String,
}

impl DefaultsFile {
    /// Writes the `[client]` group for `server`.
    ///
    /// Fails when the in-memory file cannot be created (no memfd support) or `/proc` is not
    /// mounted, so that a tool could not read it.
    pub fn create(server: &ServerSettings) -> Result<DefaultsFile, MysqlError> {
        let mut text = String::from("[client]\n");
        let mut line = |k: &str, v: &str| {
            text.push_str(&format!("{k}={}\n", quote_option_value(v)));
        };
        if let Some(s) = &server.socket {
            line("socket", &s.to_string_lossy());
            line("protocol", "socket");
        } else {
            if let Some(h) = &server.host {
                line("host", h);
            }
            if let Some(p) = server.port {
                line("port", &p.to_string());
            }
            line("protocol", "tcp");
        }
        if let Some(u) = &server.user {
            line("user", u);
        }
        if let Some(p) = &server.password {
            line("password", p.expose());
        }
        Self::from_text(&server.name, &text)
    }

    /// An option file holding `text`.
    ///
    /// Fails as [`DefaultsFile::create`] does.
    pub fn from_text(server: &str, text: &str) -> Result<DefaultsFile, MysqlError> {
        use std::os::fd::AsRawFd;
        let err = |source: std::io::Error| MysqlError::DefaultsFile {
            server: server.to_string(),
            cause: source,
        };
        let fd = rustix::fs::memfd_create("sqlguard-client.cnf", rustix::fs::MemfdFlags::CLOEXEC)
            .map_err(|e| err(e.into()))?;
        // memfds start 0777; the client tools ignore a world-writable option file.
        rustix::fs::fchmod(&fd, rustix::fs::Mode::from_raw_mode(0o600))
            .map_err(|e| err(e.into()))?;
        let mut file = std::fs::File::from(fd);
        file.write_all(text.as_bytes()).map_err(err)?;
        let path = format!("/proc/{}/fd/{}", std::process::id(), file.as_raw_fd());
        if !Path::new(&path).exists() {
            return Err(err(std::io::Error::other(
                "/proc is not mounted, so the client tools cannot read the in-memory option file",
            )));
        }
        Ok(DefaultsFile { file, path })
    }

    /// The first argument to give every client tool.
    pub fn arg(&self) -> String {
        let _ = &self.file;
        format!("--defaults-file={}", self.path)
    }
}

/// TLS arguments for a tool of `flavor`.
pub fn tls_args(flavor: Flavor, server: &ServerSettings) -> Vec<String> {
    let tls = &server.tls;
    let mut args = Vec::new();
    match (flavor, tls.mode) {
        (_, TlsMode::Default) => {}
        (Flavor::MariaDb, TlsMode::Disabled) => args.push("--skip-ssl".into()),
        (Flavor::MariaDb, TlsMode::Required) => args.push("--ssl".into()),
        (Flavor::MariaDb, TlsMode::VerifyCa | TlsMode::VerifyIdentity) => {
            args.push("--ssl".into());
            args.push("--ssl-verify-server-cert".into());
        }
        (Flavor::MySql, m) => {
            let mode = match m {
                TlsMode::Disabled => "DISABLED",
                TlsMode::Required => "REQUIRED",
                TlsMode::VerifyCa => "VERIFY_CA",
                _ => "VERIFY_IDENTITY",
            };
            args.push(format!("--ssl-mode={mode}"));
        }
    }
    for (flag, path) in [
        ("--ssl-ca", &tls.ca),
        ("--ssl-cert", &tls.cert),
        ("--ssl-key", &tls.key),
    ] {
        if let Some(p) = path {
            args.push(format!("{flag}={}", p.display()));
        }
    }
    args
}

/// The dump options sqlguard always uses, chosen by the dump tool's and the server's flavour and
/// version (the flag matrix). The database name and the defaults file are added by the caller.
pub fn dump_flags(tool: &ToolInfo, server: &ServerInfo, coordinates: bool) -> Vec<String> {
    let mut f: Vec<String> = [
        "--single-transaction",
        "--skip-lock-tables",
        "--quick",
        "--routines",
        "--triggers",
        "--events",
        "--hex-blob",
        "--default-character-set=utf8mb4",
        "--no-tablespaces",
        "--max-allowed-packet=1G",
        "--comments",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if coordinates && tool.flavor == Flavor::MariaDb && server.flavor == Flavor::MariaDb {
        // Where the snapshot stands in the binary log, as comments (`=2`): the file and position
        // near the top, the GTID position near the end. With --single-transaction MariaDB reads
        // them from the snapshot itself (Binlog_snapshot_file/position): no global lock, no
        // RELOAD; the account needs BINLOG MONITOR.
        f.push("--master-data=2".into());
        f.push("--gtid".into());
    }
    if tool.flavor == Flavor::MySql {
        // GTID statements would make the dump unrestorable into a server with its own GTIDs.
        if tool.version >= Version(5, 6, 9) {
            f.push("--set-gtid-purged=OFF".into());
        }
        // MySQL 8 clients read COLUMN_STATISTICS, which MariaDB and MySQL < 8 do not have.
        if tool.version >= Version(8, 0, 2)
            && (server.flavor == Flavor::MariaDb || server.version < Version(8, 0, 0))
        {
            f.push("--column-statistics=0".into());
        }
    }
    f
}

/// The trailer every complete dump ends with (the dump tools write it when comments are on).
pub const COMPLETION_TRAILER: &str = "-- Dump completed";

/// Whether the last bytes of a dump carry the completion trailer.
pub fn has_completion_trailer(tail: &[u8]) -> bool {
    let text = String::from_utf8_lossy(tail);
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.starts_with(COMPLETION_TRAILER))
}

/// Undoes the escaping of the client's `--batch` output (`\\`, `\n`, `\t`, `\0`).
fn unescape_batch(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('0') => out.push('\0'),
            Some('\\') => out.push('\\'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Runs one query through the SQL client and returns its rows as unescaped fields.
///
/// Fails with the client's stderr (secrets redacted) when it exits non-zero.
pub fn query(
    server: &ServerSettings,
    client: &ToolInfo,
    defaults: &DefaultsFile,
    what: &'static str,
    sql: &str,
) -> Result<Vec<Vec<String>>, MysqlError> {
    run_sql(server, client, defaults, what, sql, OnSignal::Stop)
}

fn run_sql(
    server: &ServerSettings,
    client: &ToolInfo,
    defaults: &DefaultsFile,
    what: &'static str,
    sql: &str,
    on_signal: OnSignal,
) -> Result<Vec<Vec<String>>, MysqlError> {
    let out = crate::process::output(
        crate::process::command(&client.program)
            .arg(defaults.arg())
            .args(tls_args(client.flavor, server))
            .args([
                "--batch",
                "--skip-column-names",
                "--connect-timeout=10",
                "--default-character-set=utf8mb4",
                "-e",
                sql,
            ])
            .stdin(Stdio::null()),
        on_signal,
    )
    .map_err(|e| cannot_run(server, client, what, &e))?;
    if !out.status.success() {
        let mut message = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if let Some(p) = &server.password {
            message = p.redact_in(&message);
        }
        if message.is_empty() {
            message = format!("{} exited with {}", client.program.display(), out.status);
        }
        return Err(MysqlError::Query {
            server: server.name.clone(),
            at: address(server),
            what,
            message,
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(unescape_batch).collect())
        .collect())
}

/// The client could not be run (or a signal stopped it) while doing `what`.
fn cannot_run(
    server: &ServerSettings,
    client: &ToolInfo,
    what: &'static str,
    e: &std::io::Error,
) -> MysqlError {
    MysqlError::Query {
        server: server.name.clone(),
        at: address(server),
        what,
        message: format!(
            "cannot run {}: {}",
            client.program.display(),
            crate::threads::spawn_error(e)
        ),
    }
}

/// Connects and reads the server's version.
pub fn server_info(
    server: &ServerSettings,
    client: &ToolInfo,
    defaults: &DefaultsFile,
) -> Result<ServerInfo, MysqlError> {
    let rows = query(server, client, defaults, "connecting", "SELECT VERSION()")?;
    let v = rows
        .first()
        .and_then(|r| r.first())
        .cloned()
        .unwrap_or_default();
    parse_server_version(&v).ok_or_else(|| MysqlError::Query {
        server: server.name.clone(),
        at: address(server),
        what: "reading the server version",
        message: format!("unexpected VERSION() result {v:?}"),
    })
}

/// How a server writes its binary log, as far as point-in-time recovery cares.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BinlogStatus {
    /// `@@log_bin`: the server writes a binary log.
    pub enabled: bool,
    /// `@@binlog_format` (ROW, MIXED, STATEMENT).
    pub format: String,
    /// `@@binlog_row_image` (FULL, MINIMAL, NOBLOB).
    pub row_image: String,
    /// `@@expire_logs_days` (0: never).
    pub expire_days: String,
    /// How long the server keeps its binary logs, in seconds (`binlog_expire_logs_seconds`
    /// where the server has it, else the days); 0: forever.
    pub expire_seconds: u64,
    /// The account may read the binary log's position (`SHOW MASTER STATUS`: `BINLOG MONITOR`
    /// on MariaDB), which a dump needs to record where its snapshot stands.
    pub position_readable: bool,
    /// `@@server_id`: whose binary log a dump's coordinates are in.
    pub server_id: Option<u32>,
}

/// Reads how the server writes its binary log, and whether the account can read its position.
///
/// Fails only when the server cannot be queried at all.
pub fn binlog_status(
    server: &ServerSettings,
    client: &ToolInfo,
    defaults: &DefaultsFile,
) -> Result<BinlogStatus, MysqlError> {
    let rows = query(
        server,
        client,
        defaults,
        "reading the binary log settings",
        "SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@expire_logs_days, @@server_id",
    )?;
    let row = rows.into_iter().next().unwrap_or_default();
    let field = |i: usize| row.get(i).cloned().unwrap_or_default();
    let mut s = BinlogStatus {
        enabled: field(0) == "1",
        format: field(1),
        row_image: field(2),
        expire_days: field(3),
        expire_seconds: 0,
        position_readable: false,
        server_id: field(4).parse().ok(),
    };
    s.expire_seconds = query(
        server,
        client,
        defaults,
        "reading the binary log expiry",
        "SELECT @@binlog_expire_logs_seconds",
    )
    .ok()
    .and_then(|rows| rows.first()?.first()?.parse().ok())
    .unwrap_or_else(|| {
        s.expire_days
            .parse::<f64>()
            .map_or(0, |d| (d * 86_400.0) as u64)
    });
    if s.enabled {
        s.position_readable = query(
            server,
            client,
            defaults,
            "reading the binary log position",
            "SHOW MASTER STATUS",
        )
        .is_ok_and(|rows| !rows.is_empty());
    }
    Ok(s)
}

/// Lists the server's databases, every schema byte-exactly, without sizes (see
/// [`estimate_sizes`]): on a server with thousands of schemas, sizing them all reads every
/// table's metadata (0.4 s for 1,500 schemas here) although a run backs up a few.
pub fn list_databases(
    server: &ServerSettings,
    client: &ToolInfo,
    defaults: &DefaultsFile,
) -> Result<Vec<Database>, MysqlError> {
    let sql = "SELECT SCHEMA_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA";
    let rows = query(server, client, defaults, "listing databases", sql)?;
    let mut dbs: Vec<Database> = rows
        .into_iter()
        .filter(|r| !r.is_empty())
        .map(|mut r| {
            let collation = r.get(1).filter(|c| is_collation_name(c)).cloned();
            Database {
                name: r.swap_remove(0),
                estimated_bytes: 0,
                data_bytes: 0,
                collation,
            }
        })
        .collect();
    dbs.sort_by(|a, b| a.name.cmp(&b.name));
    dbs.dedup_by(|a, b| a.name == b.name);
    Ok(dbs)
}

/// Fills in the estimated sizes of `databases` (data and index bytes, from information_schema),
/// asking only about them when they are few.
///
/// information_schema compares names with a case-insensitive collation, so `IN ('shop')` also
/// finds `Shop` (both real with `lower_case_table_names=0`): sizes are grouped by the binary
/// name and matched here byte for byte.
pub fn estimate_sizes(
    server: &ServerSettings,
    client: &ToolInfo,
    defaults: &DefaultsFile,
    databases: &mut [Database],
) -> Result<(), MysqlError> {
    if databases.is_empty() {
        return Ok(());
    }
    let filter = if databases.len() <= 500 {
        let names: Vec<String> = databases.iter().map(|d| quote_literal(&d.name)).collect();
        format!("WHERE TABLE_SCHEMA IN ({}) ", names.join(","))
    } else {
        String::new()
    };
    let sql = format!(
        "SELECT MIN(TABLE_SCHEMA), COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0), \
         COALESCE(SUM(DATA_LENGTH), 0) \
         FROM information_schema.TABLES {filter}GROUP BY BINARY TABLE_SCHEMA"
    );
    let rows = query(server, client, defaults, "estimating database sizes", &sql)?;
    let sizes: std::collections::HashMap<&str, (u64, u64)> = rows
        .iter()
        .filter(|r| r.len() == 3)
        .map(|r| {
            (
                r[0].as_str(),
                (r[1].parse().unwrap_or(0), r[2].parse().unwrap_or(0)),
            )
        })
        .collect();
    for d in databases {
        (d.estimated_bytes, d.data_bytes) = sizes.get(d.name.as_str()).copied().unwrap_or((0, 0));
    }
    Ok(())
}

/// What a child of [`drain_stderr`] said, once it ended, with `server`'s password redacted.
pub fn stderr_of(
    handle: Option<std::thread::JoinHandle<String>>,
    server: &ServerSettings,
) -> String {
    let text = handle.and_then(|h| h.join().ok()).unwrap_or_default();
    match &server.password {
        Some(pw) => pw.redact_in(&text),
        None => text,
    }
}

/// Drains a child's stderr on a thread, keeping its last 64 KiB.
///
/// `Ok(None)` when the child's stderr is not piped. When the thread cannot start, the child is
/// killed (nobody would read what it writes there) and the error says why.
pub fn drain_stderr(
    child: &mut std::process::Child,
) -> std::io::Result<Option<std::thread::JoinHandle<String>>> {
    use std::io::Read;
    let Some(mut err) = child.stderr.take() else {
        return Ok(None);
    };
    let started = crate::threads::spawn("child-stderr", move || {
        let mut kept: Vec<u8> = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            kept.extend_from_slice(&buf[..n]);
            if kept.len() > 65_536 {
                kept.drain(..kept.len() - 65_536);
            }
        }
        String::from_utf8_lossy(&kept).trim().to_string()
    });
    match started {
        Ok(h) => Ok(Some(h)),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

/// Whether `s` looks like a collation name (`utf8mb4_unicode_ci`): letters, digits and `_`
/// only, so that one read from an index can be written into SQL as it is.
pub fn is_collation_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Quotes an identifier for SQL: backticks, with backticks doubled.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Quotes a string literal for SQL.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// Number of objects in `database` a restore would overwrite (tables, views, sequences,
/// routines and events), or `None` when it does not exist.
pub fn table_count(
    server: &ServerSettings,
    client: &ToolInfo,
    defaults: &DefaultsFile,
    database: &str,
) -> Result<Option<u64>, MysqlError> {
    let sql = format!(
        "SELECT (SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE BINARY SCHEMA_NAME = BINARY {l}), \
         (SELECT COUNT(*) FROM information_schema.TABLES WHERE BINARY TABLE_SCHEMA = BINARY {l}) \
         + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE BINARY ROUTINE_SCHEMA = BINARY {l}) \
         + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE BINARY EVENT_SCHEMA = BINARY {l})",
        l = quote_literal(database)
    );
    let rows = query(
        server,
        client,
        defaults,
        "inspecting the target database",
        &sql,
    )?;
    let row = rows.first().cloned().unwrap_or_default();
    let exists = row.first().is_some_and(|v| v != "0");
    Ok(exists.then(|| row.get(1).and_then(|v| v.parse().ok()).unwrap_or(0)))
}

/// Runs one statement (CREATE/DROP DATABASE) through the client: work that a signal stops, or
/// (`on_signal` [`OnSignal::Finish`]) the cleanup a stopping run still owes.
pub fn execute(
    server: &ServerSettings,
    client: &ToolInfo,
    defaults: &DefaultsFile,
    what: &'static str,
    sql: &str,
    on_signal: OnSignal,
) -> Result<(), MysqlError> {
    run_sql(server, client, defaults, what, sql, on_signal).map(drop)
}

/// Starts the client reading SQL from its stdin, with `extra` options after the connection's
/// (`--database=…`, `--sandbox`, …). `what` names the job in errors.
///
/// Fails when the client cannot be started.
pub fn client_child(
    server: &ServerSettings,
    client: &ToolInfo,
    defaults: &DefaultsFile,
    extra: &[String],
    what: &'static str,
) -> Result<std::process::Child, MysqlError> {
    client_process(server, client, defaults, extra, what, Stdio::null())
}

/// [`client_child`] whose standard output is piped too (a restore session, whose barriers
/// print a line).
pub fn client_process(
    server: &ServerSettings,
    client: &ToolInfo,
    defaults: &DefaultsFile,
    extra: &[String],
    what: &'static str,
    stdout: Stdio,
) -> Result<std::process::Child, MysqlError> {
    crate::process::command(&client.program)
        .arg(defaults.arg())
        .args(tls_args(client.flavor, server))
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| cannot_run(server, client, what, &e))
}

/// A tool's `--help` text (empty when it cannot be run), to learn which options it has.
pub fn tool_help(tool: &ToolInfo) -> String {
    crate::process::probe(
        crate::process::command(&tool.program)
            .args(["--no-defaults", "--help"])
            .stdin(Stdio::null()),
    )
    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    .unwrap_or_default()
}

/// A database of the server that a run does not back up, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Excluded {
    pub database: String,
    pub reason: String,
}

/// The databases to back up, the explicitly requested ones that do not exist, and every other
/// database of the server with the reason it is left out (so that each database is either
/// backed up or reported, by its exact name).
#[derive(Debug, PartialEq, Eq)]
pub struct Selection {
    pub selected: Vec<Database>,
    pub missing: Vec<String>,
    pub excluded: Vec<Excluded>,
}

/// Server and client error codes that speak of the server, the connection or the account, not
/// of the SQL sent: a lost or killed connection, a shutdown, a missing privilege or definer,
/// a server setting (read-only, binary logging of routines, the packet limit), a full disk or
/// table, too many connections, no memory, a lock timeout or deadlock.
#[rustfmt::skip]
const ENVIRONMENT_ERRORS: &[u32] = &[
    // The connection.
    2002, 2003, 2005, 2006, 2008, 2013, 2026, 2055, 2059, 1152, 1153, 1184, 4031, 1129, 1130,
    // Killed, interrupted, shut down.
    1053, 1317, 1927,
    // The account and its privileges; a definer the server lacks.
    1044, 1045, 1142, 1143, 1227, 1370, 1419, 1449, 1211,
    // Server settings (an engine it lacks among them).
    1418, 1290, 1836, 1792, 1286,
    // Resources and the account's limits.
    1021, 1030, 1037, 1038, 1040, 1041, 1114, 1197, 1203, 1205, 1206, 1213, 1226,
];

/// Whether the client's error message `message` (`ERROR 2013 (HY000) at line 4: …`) holds an
/// error of the server, the connection or the account rather than of the statements sent (see
/// [`ENVIRONMENT_ERRORS`]): a load that failed so says nothing about the dump. Only the first
/// code counts, the one the client puts before the server's message (the client stops at its
/// first error), never an `ERROR NNNN` that the message quotes from the dump after it (a
/// constraint's name, a value).
pub fn is_environment_error(message: &str) -> bool {
    message
        .match_indices("ERROR ")
        .find_map(|(i, m)| {
            let rest = &message[i + m.len()..];
            let (code, after) = rest.split_once(' ')?;
            after.starts_with('(').then(|| code.parse::<u32>().ok())?
        })
        .is_some_and(|code| ENVIRONMENT_ERRORS.contains(&code))
}

/// Whether an include or exclude pattern names one database (no glob characters).
pub fn is_literal(pattern: &str) -> bool {
    !pattern.contains(['*', '?', '['])
}

/// Why the server's include/exclude globs leave database `name` out, if they do (a system
/// database only when named literally). Names compare byte for byte.
pub fn left_out(server: &ServerSettings, name: &str) -> Option<String> {
    let first_match = |pats: &[String]| {
        pats.iter()
            .find(|p| glob::Pattern::new(p).is_ok_and(|g| g.matches(name)))
            .cloned()
    };
    let literal = server.include.iter().any(|p| is_literal(p) && p == name);
    if SYSTEM_DATABASES.contains(&name) && !literal {
        return Some("system database (name it in databases.include to back it up)".into());
    }
    match (first_match(&server.include), first_match(&server.exclude)) {
        (Some(_), None) => None,
        (Some(_), Some(p)) => Some(format!("excluded by '{p}'")),
        (None, _) => Some("not matched by databases.include".into()),
    }
}

/// Applies `--db` (when given, exactly those) or the server's include/exclude globs. System
/// databases are skipped unless named literally. Names compare byte for byte.
pub fn select_databases(all: &[Database], server: &ServerSettings, only: &[String]) -> Selection {
    let mut selected = Vec::new();
    let mut missing = Vec::new();
    let mut excluded = Vec::new();
    let mut exclude = |d: &Database, reason: String| {
        excluded.push(Excluded {
            database: d.name.clone(),
            reason,
        })
    };
    if !only.is_empty() {
        // A name given twice is one database: dumped once, recorded once per storage.
        let mut seen = std::collections::HashSet::new();
        for name in only.iter().filter(|n| seen.insert(n.as_str())) {
            match all.iter().find(|d| &d.name == name) {
                Some(d) => selected.push(d.clone()),
                None => missing.push(name.clone()),
            }
        }
        for d in all.iter().filter(|d| !only.contains(&d.name)) {
            exclude(d, "not named by --db".into());
        }
        return Selection {
            selected,
            missing,
            excluded,
        };
    }
    for d in all {
        match left_out(server, &d.name) {
            None => selected.push(d.clone()),
            Some(reason) => exclude(d, reason),
        }
    }
    for p in server.include.iter().filter(|p| is_literal(p)) {
        if !all.iter().any(|d| &d.name == p) {
            missing.push(p.clone());
        }
    }
    Selection {
        selected,
        missing,
        excluded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(flavor: Flavor, v: Version) -> ToolInfo {
        ToolInfo {
            program: "x".into(),
            flavor,
            version: v,
            banner: String::new(),
        }
    }

    fn srv(flavor: Flavor, v: Version) -> ServerInfo {
        ServerInfo {
            flavor,
            version: v,
            version_string: String::new(),
        }
    }

    /// A load that the server, the connection or the account stopped is told apart from one
    /// whose statements the server refused.
    #[test]
    fn environment_errors_are_told_from_errors_of_the_sql() {
        for env in [
            "ERROR 2013 (HY000) at line 40: Lost connection to server during query",
            "ERROR 1227 (42000) at line 12: Access denied; you need (at least one of) the SUPER, SET USER privilege(s) for this operation",
            "ERROR 1419 (HY000) at line 9: You do not have the SUPER privilege and binary logging is enabled",
            "mariadb: warning; ERROR 1927 (70100) at line 3: Connection was killed",
            "ERROR 1197 (HY000) at line 9: Multi-statement transaction required more than 'max_binlog_cache_size' bytes of storage",
        ] {
            assert!(is_environment_error(env), "{env}");
        }
        // A code the server's message quotes from the dump is not the error's.
        for quoted in [
            "ERROR 4025 (23000) at line 12: CONSTRAINT `ERROR 2013 (x)` failed for `envx`.`t`",
            "ERROR 4025 (23000) at line 12: CONSTRAINT `x; ERROR 2013 (y` failed",
        ] {
            assert!(!is_environment_error(quoted), "{quoted}");
        }
        for sql in [
            "ERROR 1064 (42000) at line 3: You have an error in your SQL syntax",
            "ERROR 1146 (42S02) at line 8: Table 'x.t' doesn't exist",
            "refused: a client command",
            "ERROR 20130: no such code",
        ] {
            assert!(!is_environment_error(sql), "{sql}");
        }
    }

    #[test]
    fn banners_of_known_tools_parse() {
        let cases = [
            ("mysqldump  Ver 10.19 Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)", Flavor::MariaDb, Version(10, 11, 6)),
            ("mariadb-dump from 11.4.2-MariaDB, client 10.19 for debian-linux-gnu (x86_64)", Flavor::MariaDb, Version(11, 4, 2)),
            ("mariadb  Ver 15.1 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64) using  EditLine wrapper", Flavor::MariaDb, Version(10, 11, 19)),
            ("mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)", Flavor::MySql, Version(8, 0, 36)),
            ("mysqldump  Ver 8.4.0 for Linux on x86_64 (MySQL Community Server - GPL)", Flavor::MySql, Version(8, 4, 0)),
            ("mysqldump  Ver 10.13 Distrib 5.7.44, for Linux (x86_64)", Flavor::MySql, Version(5, 7, 44)),
        ];
        for (banner, flavor, version) in cases {
            assert_eq!(
                parse_tool_banner(banner),
                Some((flavor, version)),
                "{banner}"
            );
        }
        assert_eq!(parse_tool_banner("something else"), None);
    }

    #[test]
    fn server_versions_parse() {
        let m = parse_server_version("10.11.19-MariaDB-0+deb12u1").unwrap();
        assert_eq!(
            (m.flavor, m.version),
            (Flavor::MariaDb, Version(10, 11, 19))
        );
        let o = parse_server_version("8.0.36\n").unwrap();
        assert_eq!((o.flavor, o.version), (Flavor::MySql, Version(8, 0, 36)));
    }

    /// The flag matrix: (tool, server) -> flags that must and must not appear.
    #[test]
    fn flag_matrix() {
        let mariadb_tool = tool(Flavor::MariaDb, Version(10, 11, 6));
        let mysql8_tool = tool(Flavor::MySql, Version(8, 0, 36));
        let mysql84_tool = tool(Flavor::MySql, Version(8, 4, 0));
        let mysql57_tool = tool(Flavor::MySql, Version(5, 7, 44));
        let mariadb_srv = srv(Flavor::MariaDb, Version(10, 11, 19));
        let mysql8_srv = srv(Flavor::MySql, Version(8, 0, 36));
        let mysql57_srv = srv(Flavor::MySql, Version(5, 7, 44));
        type Case<'a> = (&'a ToolInfo, &'a ServerInfo, &'a [&'a str], &'a [&'a str]);
        let cases: &[Case] = &[
            (
                &mariadb_tool,
                &mariadb_srv,
                &["--master-data=2", "--gtid"],
                &["--set-gtid-purged=OFF", "--column-statistics=0"],
            ),
            (
                &mariadb_tool,
                &mysql8_srv,
                &[],
                &[
                    "--set-gtid-purged=OFF",
                    "--column-statistics=0",
                    "--master-data=2",
                ],
            ),
            (
                &mysql8_tool,
                &mysql8_srv,
                &["--set-gtid-purged=OFF"],
                &[
                    "--column-statistics=0",
                    "--master-data=2",
                    "--source-data=2",
                ],
            ),
            (
                &mysql8_tool,
                &mariadb_srv,
                &["--set-gtid-purged=OFF", "--column-statistics=0"],
                &[],
            ),
            (&mysql8_tool, &mysql57_srv, &["--column-statistics=0"], &[]),
            (
                &mysql84_tool,
                &mysql8_srv,
                &["--set-gtid-purged=OFF"],
                &["--column-statistics=0"],
            ),
            (
                &mysql57_tool,
                &mysql57_srv,
                &["--set-gtid-purged=OFF"],
                &["--column-statistics=0"],
            ),
        ];
        for (t, s, must, must_not) in cases {
            let flags = dump_flags(t, s, true);
            for common in [
                "--single-transaction",
                "--routines",
                "--triggers",
                "--events",
                "--hex-blob",
                "--comments",
            ] {
                assert!(
                    flags.iter().any(|f| f == common),
                    "{t:?} {s:?}: missing {common}"
                );
            }
            assert!(!flags
                .iter()
                .any(|f| f == "--databases" || f.starts_with("--password")));
            for m in *must {
                assert!(flags.iter().any(|f| f == m), "{t:?} {s:?}: missing {m}");
            }
            for m in *must_not {
                assert!(!flags.iter().any(|f| f == m), "{t:?} {s:?}: has {m}");
            }
            // Without a readable binary log position, no coordinates are asked for.
            assert!(!dump_flags(t, s, false)
                .iter()
                .any(|f| f.starts_with("--master-data")));
        }
    }

    #[test]
    fn option_values_are_quoted_for_option_files() {
        assert_eq!(quote_option_value(r#"a"b\c#d e"#), r#""a\"b\\c#d e""#);
        assert_eq!(quote_option_value("x\ny"), "\"x\\ny\"");
    }

    #[test]
    fn trailer_detection() {
        assert!(has_completion_trailer(
            b"...\n-- Dump completed on 2026-11-28  2:45:00\n"
        ));
        assert!(has_completion_trailer(b"-- Dump completed\n\n"));
        assert!(!has_completion_trailer(
            b"INSERT INTO t VALUES (1,'-- Dump completed')"
        ));
        assert!(!has_completion_trailer(b"INSERT INTO t VALUES (1"));
    }

    #[test]
    fn batch_fields_unescape() {
        assert_eq!(unescape_batch(r"a\tb\nc\\d\0"), "a\tb\nc\\d\0");
    }

    #[test]
    fn selection_skips_system_databases_and_reports_missing_literals() {
        let db = |n: &str| Database {
            name: n.into(),
            estimated_bytes: 0,
            data_bytes: 0,
            collation: None,
        };
        let all = vec![
            db("mysql"),
            db("shop"),
            db("shop_test"),
            db("crm"),
            db("sys"),
        ];
        let mut s = ServerSettings {
            name: "m".into(),
            host: None,
            port: None,
            socket: None,
            user: None,
            password: None,
            tls: Default::default(),
            include: vec!["*".into()],
            exclude: vec!["*_test".into()],
            dump_options: vec![],
            dump_tool: None,
            client_tool: None,
            parallel: 1,
            restore_user: None,
            restore_password: None,
            restore_only: false,
            accounts: false,
            binlog: None,
        };
        let names = |sel: &Selection| {
            sel.selected
                .iter()
                .map(|d| d.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&select_databases(&all, &s, &[])), ["shop", "crm"]);
        s.include = vec!["mysql".into(), "gone".into(), "sh*".into()];
        let sel = select_databases(&all, &s, &[]);
        assert_eq!(names(&sel), ["mysql", "shop"]);
        assert_eq!(sel.missing, ["gone"]);
        let excluded = |sel: &Selection| {
            sel.excluded
                .iter()
                .map(|e| format!("{}: {}", e.database, e.reason))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            excluded(&sel),
            [
                "shop_test: excluded by '*_test'",
                "crm: not matched by databases.include",
                "sys: system database (name it in databases.include to back it up)"
            ]
        );
        let sel = select_databases(&all, &s, &["crm".into(), "nope".into()]);
        assert_eq!(
            (names(&sel), sel.missing.clone()),
            (vec!["crm".to_string()], vec!["nope".to_string()])
        );
        assert_eq!(sel.excluded.len() + sel.selected.len(), all.len());
        // A name given twice is dumped once (two dumps of it at once, with --jobs, would
        // record two copies of one database in one run).
        let twice: Vec<String> = ["crm", "shop", "crm", "nope", "nope"]
            .iter()
            .map(|n| n.to_string())
            .collect();
        let sel = select_databases(&all, &s, &twice);
        assert_eq!(
            (names(&sel), sel.missing.clone()),
            (
                vec!["crm".to_string(), "shop".to_string()],
                vec!["nope".to_string()]
            )
        );
    }
}
