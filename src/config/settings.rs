//! Resolves flags > environment > file > defaults into one [`Settings`] value, once per run.
//!
//! Owns: finding the config file, `${VAR}` expansion, reading `*_file` secrets, the environment
//! overrides (via envy), built-in defaults and every cross-check between sections. It must not
//! connect to anything: a config that resolves is valid, whether or not the servers are up.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::file::{self, FileConfig, StorageKindName, TlsMode};
use super::ConfigError;
use crate::compress::{Algorithm, Compression};
use crate::duration::HumanDuration;
use crate::env_vars as ev;
use crate::secret::Secret;

/// Places searched for a config file when neither `--config` nor `SQLGUARD_CONFIG` names one.
pub const DEFAULT_CONFIG_PATHS: &[&str] = &["sqlguard.yaml", "/etc/sqlguard/config.yaml"];

/// Databases that are never backed up unless named literally in `include` or `--db`.
pub const SYSTEM_DATABASES: &[&str] = &["information_schema", "performance_schema", "mysql", "sys"];

/// The built-in backup types used when the file has no `backup_types` section.
const DEFAULT_TYPES: &[(&str, Option<&str>, u32)] = &[
    ("hourly", Some("0 * * * *"), 24),
    ("daily", Some("30 2 * * *"), 7),
    ("weekly", Some("0 3 * * 0"), 4),
    ("monthly", Some("0 4 1 * *"), 12),
    ("manual", None, 10),
];

/// Age after which a temp file or incomplete upload is an orphan (its run is surely gone).
pub const DEFAULT_ORPHAN_MIN_AGE: HumanDuration = HumanDuration(6 * 3600);

/// When prune runs by default (daily, after the nightly backups).
pub const DEFAULT_PRUNE_SCHEDULE: &str = "15 5 * * *";

/// The lock directory used when the config names none.
pub fn default_lock_dir() -> PathBuf {
    std::env::temp_dir().join("sqlguard-locks")
}

/// How long records of failed runs stay in the index by default.
pub const DEFAULT_FAILED_KEEP_WITHIN: HumanDuration = HumanDuration(7 * 86_400);

/// The resolved configuration of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// The file that was read, if any.
    pub config_file: Option<PathBuf>,
    pub servers: Vec<ServerSettings>,
    pub storages: Vec<StorageSettings>,
    pub backup_types: Vec<BackupTypeSettings>,
    pub lock_dir: PathBuf,
    pub retry: RetrySettings,
    pub prune_after_backup: bool,
    /// When `sqlguard schedule` runs prune.
    pub prune_schedule: String,
    pub orphan_min_age: HumanDuration,
    /// Where runs push metrics; `None` when no Pushgateway is configured or pushing is off.
    pub metrics: Option<MetricsSettings>,
    /// The HTML report every backup and prune rewrites.
    pub report_html: Option<PathBuf>,
    /// Non-fatal findings (unknown `SQLGUARD_*` variables, …) for the caller to print.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// One database server, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct ServerSettings {
    pub name: String,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub socket: Option<PathBuf>,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub tls: TlsSettings,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub dump_options: Vec<String>,
    pub dump_tool: Option<PathBuf>,
    pub client_tool: Option<PathBuf>,
}

/// TLS towards a database server.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TlsSettings {
    pub mode: TlsMode,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// One storage target, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct StorageSettings {
    pub name: String,
    #[serde(flatten)]
    pub kind: StorageKind,
}

/// Where a storage keeps its objects.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StorageKind {
    Local { path: PathBuf },
    S3(Box<S3Settings>),
}

/// An S3-compatible bucket, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct S3Settings {
    /// `https://…` (or `http://…` only when the endpoint says so).
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    /// Key prefix without leading or trailing `/`; empty for the bucket root.
    pub prefix: String,
    pub path_style: bool,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub ca_file: Option<PathBuf>,
    pub storage_class: Option<String>,
    pub sse: Option<String>,
    pub sse_kms_key_id: Option<String>,
}

/// The Pushgateway and the grouping of pushed metrics.
#[derive(Debug, Clone, Serialize)]
pub struct MetricsSettings {
    pub pushgateway: String,
    pub job: String,
    pub instance: String,
    /// Extra grouping labels, in order.
    pub grouping: Vec<(String, String)>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub ca_file: Option<PathBuf>,
    pub timeout: HumanDuration,
    pub required: bool,
}

/// Labels sqlguard itself uses in grouping keys or metrics; extra grouping labels must differ.
pub const RESERVED_LABELS: &[&str] = &[
    "job", "instance", "server", "database", "type", "storage", "command",
];

/// This host's name, for the default `instance` label and lock holders.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

fn resolve_metrics(
    ctx: &Ctx,
    m: Option<&file::MetricsFile>,
    env: &EnvOverrides,
    no_push: bool,
) -> Result<Option<MetricsSettings>, ConfigError> {
    if no_push || env.no_push.unwrap_or(false) {
        return Ok(None);
    }
    let empty = file::MetricsFile::default();
    let m = m.unwrap_or(&empty);
    let url = match (&env.pushgateway_url, &m.pushgateway) {
        (Some(u), _) => u.clone(),
        (None, Some(u)) => ctx.expand("metrics.pushgateway", u)?,
        (None, None) => return Ok(None),
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ctx.invalid(
            "metrics.pushgateway",
            format!("'{url}' must start with http:// or https://"),
        ));
    }
    let label_ok = |l: &str| {
        l.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let mut grouping = Vec::new();
    for (k, v) in &m.grouping {
        if !label_ok(k) || RESERVED_LABELS.contains(&k.as_str()) {
            return Err(ctx.invalid(
                format!("metrics.grouping.{k}"),
                format!(
                    "'{k}' cannot be a grouping label: use [A-Za-z_][A-Za-z0-9_]* and none of {}",
                    RESERVED_LABELS.join(", ")
                ),
            ));
        }
        grouping.push((k.clone(), ctx.expand(&format!("metrics.grouping.{k}"), v)?));
    }
    let password = pick_secret(
        ctx,
        "metrics.password",
        m.password.as_ref(),
        "metrics.password_file",
        m.password_file.as_ref(),
        "",
    )?;
    let ca_file = ctx
        .expand_opt("metrics.ca_file", m.ca_file.as_ref())?
        .map(PathBuf::from);
    Ok(Some(MetricsSettings {
        pushgateway: url.trim_end_matches('/').to_string(),
        job: ctx
            .expand_opt("metrics.job", m.job.as_ref())?
            .unwrap_or_else(|| "sqlguard".into()),
        instance: ctx
            .expand_opt("metrics.instance", m.instance.as_ref())?
            .unwrap_or_else(hostname),
        grouping,
        username: ctx.expand_opt("metrics.username", m.username.as_ref())?,
        password,
        ca_file,
        timeout: m.timeout.unwrap_or(HumanDuration(5)),
        required: m.required.unwrap_or(false),
    }))
}

/// Retries of transient storage failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RetrySettings {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    /// Upper bound of the backoff between attempts.
    pub max_backoff: HumanDuration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            attempts: 5,
            max_backoff: HumanDuration(30),
        }
    }
}

/// One backup type, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct BackupTypeSettings {
    pub name: String,
    pub schedule: Option<String>,
    pub storages: Vec<String>,
    pub compression: Compression,
    pub retention: Retention,
    /// Retention that replaces `retention` on these storages.
    pub storage_retention: BTreeMap<String, Retention>,
}

/// Retention rules of a backup type. At least one of `keep_last`, `keep_within`, `forever` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub keep_last: Option<u32>,
    pub keep_within: Option<HumanDuration>,
    pub forever: bool,
    pub failed_keep_within: HumanDuration,
}

/// Settings that the environment may override, read with envy from `SQLGUARD_*`.
#[derive(Debug, Default, Deserialize)]
struct EnvOverrides {
    config: Option<String>,
    server_name: Option<String>,
    db_host: Option<String>,
    db_port: Option<u16>,
    db_socket: Option<String>,
    db_user: Option<String>,
    db_password: Option<String>,
    db_password_file: Option<String>,
    databases: Option<String>,
    exclude_databases: Option<String>,
    storage_path: Option<String>,
    s3_bucket: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    s3_prefix: Option<String>,
    s3_path_style: Option<bool>,
    pushgateway_url: Option<String>,
    no_push: Option<bool>,
    compression: Option<String>,
    compression_level: Option<i32>,
    compression_threads: Option<u32>,
    lock_dir: Option<String>,
}

impl EnvOverrides {
    fn sets_server(&self) -> bool {
        self.server_name.is_some()
            || self.db_host.is_some()
            || self.db_port.is_some()
            || self.db_socket.is_some()
            || self.db_user.is_some()
            || self.db_password.is_some()
            || self.db_password_file.is_some()
            || self.databases.is_some()
            || self.exclude_databases.is_some()
    }
}

/// Context for resolving values: the environment and where values came from, for messages.
struct Ctx<'a> {
    env: &'a HashMap<String, String>,
    origin: String,
}

impl Ctx<'_> {
    fn invalid(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.clone(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// Expands `${VAR}` references (`$${` writes a literal `${`). Fails on an unset variable.
    fn expand(&self, key: &str, value: &str) -> Result<String, ConfigError> {
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos..];
            if let Some(tail) = after.strip_prefix("$${") {
                out.push_str("${");
                rest = tail;
            } else if let Some(body) = after.strip_prefix("${") {
                let end = body.find('}').ok_or_else(|| {
                    self.invalid(
                        key,
                        "unterminated `${` (write `${NAME}`, or `$${` for a literal)",
                    )
                })?;
                let name = &body[..end];
                let v = self.env.get(name).ok_or_else(|| {
                    self.invalid(
                        key,
                        format!("refers to environment variable {name}, which is not set (export it, or change the value)"),
                    )
                })?;
                out.push_str(v);
                rest = &body[end + 1..];
            } else {
                out.push('$');
                rest = &after[1..];
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    fn expand_opt(&self, key: &str, value: Option<&String>) -> Result<Option<String>, ConfigError> {
        value.map(|v| self.expand(key, v)).transpose()
    }
}

/// Reads a secret from a file: the first line, without its line ending.
fn read_secret_file(path: &Path, key: &str, origin: &str) -> Result<Secret, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Invalid {
        origin: origin.to_string(),
        key: key.to_string(),
        message: format!("cannot read secret file {}: {e}", path.display()),
    })?;
    Ok(Secret::new(text.lines().next().unwrap_or("").to_string()))
}

/// Checks a name used in paths, metrics labels and flags.
fn check_name(ctx: &Ctx, key: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ctx.invalid(
            key,
            format!("name '{name}' is not allowed: use letters, digits, '_', '.', '-', starting with a letter or digit"),
        ))
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Dump options that would break sqlguard's guarantees, and why.
const FORBIDDEN_DUMP_OPTIONS: &[(&str, &str)] = &[
    ("--password", "a password on the command line is visible in ps; use password_file or SQLGUARD_DB_PASSWORD"),
    ("-p", "a password on the command line is visible in ps; use password_file or SQLGUARD_DB_PASSWORD"),
    ("--databases", "sqlguard dumps one database per backup so that it restores into any name"),
    ("-B", "sqlguard dumps one database per backup so that it restores into any name"),
    ("--all-databases", "sqlguard dumps one database per backup; select them with databases.include"),
    ("-A", "sqlguard dumps one database per backup; select them with databases.include"),
    ("--result-file", "sqlguard reads the dump from the tool's standard output"),
    ("-r", "sqlguard reads the dump from the tool's standard output"),
    ("--tab", "sqlguard reads the dump from the tool's standard output"),
    ("-T", "sqlguard reads the dump from the tool's standard output"),
    ("--skip-comments", "the completion trailer comment is how sqlguard knows a dump is whole"),
    ("--compact", "the completion trailer comment is how sqlguard knows a dump is whole"),
    ("--defaults-file", "sqlguard passes the connection through its own defaults file"),
    ("--defaults-extra-file", "sqlguard passes the connection through its own defaults file"),
    ("--no-defaults", "sqlguard passes the connection through its own defaults file"),
];

fn check_dump_option(ctx: &Ctx, key: &str, opt: &str) -> Result<(), ConfigError> {
    for (bad, why) in FORBIDDEN_DUMP_OPTIONS {
        let hit = if bad.starts_with("--") {
            opt == *bad || opt.starts_with(&format!("{bad}="))
        } else {
            opt.starts_with(bad) && !opt.starts_with("--")
        };
        if hit {
            // Name the option only: its value may be a secret.
            return Err(ctx.invalid(key, format!("option '{bad}' is not allowed: {why}")));
        }
    }
    if !opt.starts_with('-') {
        return Err(ctx.invalid(
            key,
            format!("'{opt}' is not an option; databases are chosen with databases.include"),
        ));
    }
    Ok(())
}

/// Checks a five-field cron expression.
fn check_schedule(ctx: &Ctx, key: &str, expr: &str) -> Result<(), ConfigError> {
    crate::schedule::parse(expr)
        .map(drop)
        .map_err(|m| ctx.invalid(key, m))
}

impl Settings {
    /// Resolves the settings of one run.
    ///
    /// `config_flag` is `--config`; `env` is the process environment. Fails with a
    /// [`ConfigError`] naming the file or variable and the key when anything is wrong.
    pub fn resolve(
        config_flag: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Settings, ConfigError> {
        Self::resolve_with(config_flag, false, env)
    }

    /// [`Settings::resolve`] with `--no-push`.
    pub fn resolve_with(
        config_flag: Option<&Path>,
        no_push: bool,
        env: &HashMap<String, String>,
    ) -> Result<Settings, ConfigError> {
        let mut warnings = Vec::new();
        let known: Vec<&str> = ev::ALL.iter().map(|(n, _)| *n).collect();
        for name in env.keys() {
            if name.starts_with(ev::PREFIX) && !known.contains(&name.as_str()) {
                warnings.push(format!(
                    "ignoring unknown environment variable {name} (see `sqlguard --help` for the list)"
                ));
            }
        }
        warnings.sort();
        let overrides: EnvOverrides = envy::prefixed(ev::PREFIX)
            .from_iter(env.iter().map(|(k, v)| (k.clone(), v.clone())))
            .map_err(|e| ConfigError::Env {
                var: format!("{}*", ev::PREFIX),
                message: e.to_string(),
            })?;

        let config_file = match (config_flag, &overrides.config) {
            (Some(p), _) => Some(p.to_path_buf()),
            (None, Some(p)) => Some(PathBuf::from(p)),
            (None, None) => DEFAULT_CONFIG_PATHS
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file()),
        };
        let file = match &config_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                parse_file(path, &text)?
            }
            None => FileConfig::default(),
        };
        let origin = config_file
            .as_ref()
            .map(|p| format!("config file {}", p.display()))
            .unwrap_or_else(|| "environment".to_string());
        let ctx = Ctx { env, origin };

        let servers = resolve_servers(&ctx, &file, &overrides)?;
        let storages = resolve_storages(&ctx, &file, &overrides)?;
        let retry = match &file.retry {
            None => RetrySettings::default(),
            Some(r) => {
                let d = RetrySettings::default();
                let attempts = r.attempts.unwrap_or(d.attempts);
                if attempts == 0 {
                    return Err(
                        ctx.invalid("retry.attempts", "must be at least 1 (1 means no retry)")
                    );
                }
                RetrySettings {
                    attempts,
                    max_backoff: r.max_backoff.unwrap_or(d.max_backoff),
                }
            }
        };
        let backup_types = resolve_types(&ctx, &file, &overrides, &storages)?;
        let lock_dir = match (&overrides.lock_dir, &file.lock_dir) {
            (Some(d), _) => PathBuf::from(d),
            (None, Some(d)) => PathBuf::from(ctx.expand("lock_dir", d)?),
            (None, None) => default_lock_dir(),
        };
        Ok(Settings {
            config_file,
            servers,
            storages,
            backup_types,
            lock_dir,
            retry,
            prune_after_backup: file.prune_after_backup.unwrap_or(false),
            prune_schedule: match &file.prune_schedule {
                Some(s) => {
                    check_schedule(&ctx, "prune_schedule", s)?;
                    s.clone()
                }
                None => DEFAULT_PRUNE_SCHEDULE.to_string(),
            },
            metrics: resolve_metrics(&ctx, file.metrics.as_ref(), &overrides, no_push)?,
            report_html: file
                .report
                .as_ref()
                .and_then(|r| r.html.as_ref())
                .map(|h| ctx.expand("report.html", h))
                .transpose()?
                .map(PathBuf::from),
            orphan_min_age: file.orphan_min_age.unwrap_or(DEFAULT_ORPHAN_MIN_AGE),
            warnings,
        })
    }

    /// The backup type called `name`.
    pub fn backup_type(&self, name: &str) -> Option<&BackupTypeSettings> {
        self.backup_types.iter().find(|t| t.name == name)
    }

    /// The retention of `backup_type` on `storage`: the storage's override, else the type's.
    pub fn retention(&self, backup_type: &str, storage: &str) -> Option<&Retention> {
        let t = self.backup_type(backup_type)?;
        Some(t.storage_retention.get(storage).unwrap_or(&t.retention))
    }

    /// The storage called `name`.
    pub fn storage(&self, name: &str) -> Option<&StorageSettings> {
        self.storages.iter().find(|s| s.name == name)
    }

    /// The one CA file that S3 storages and the Pushgateway ask to trust, if any.
    ///
    /// Fails when two storages name different files: the TLS client takes one for the process.
    pub fn s3_ca_file(&self) -> Result<Option<&Path>, ConfigError> {
        let mut found: Option<(&str, &Path)> = None;
        for st in &self.storages {
            if let StorageKind::S3(s3) = &st.kind {
                if let Some(ca) = &s3.ca_file {
                    match found {
                        Some((other, path)) if path != ca.as_path() => {
                            return Err(ConfigError::Invalid {
                                origin: "config".into(),
                                key: format!("storage.{}.ca_file", st.name),
                                message: format!(
                                    "differs from storage.{other}.ca_file: put both CAs in one PEM file and name it in both"
                                ),
                            })
                        }
                        _ => found = Some((&st.name, ca)),
                    }
                }
            }
        }
        if let Some(ca) = self.metrics.as_ref().and_then(|m| m.ca_file.as_deref()) {
            if let Some((other, path)) = found {
                if path != ca {
                    return Err(ConfigError::Invalid {
                        origin: "config".into(),
                        key: "metrics.ca_file".into(),
                        message: format!("differs from storage.{other}.ca_file: put both CAs in one PEM file and name it in both"),
                    });
                }
            }
            return Ok(Some(ca));
        }
        Ok(found.map(|(_, p)| p))
    }

    /// The settings as YAML, secrets shown as `***`.
    pub fn to_redacted_yaml(&self) -> String {
        yaml_serde::to_string(self).unwrap_or_else(|e| format!("# cannot render settings: {e}\n"))
    }
}

/// Parses the file text; the error carries the YAML library's line and column.
fn parse_file(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    yaml_serde::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn resolve_servers(
    ctx: &Ctx,
    file: &FileConfig,
    env: &EnvOverrides,
) -> Result<Vec<ServerSettings>, ConfigError> {
    let mut entries: Vec<(String, Option<&file::ServerFile>)> = file
        .servers
        .iter()
        .map(|(n, s)| (n.clone(), Some(s)))
        .collect();
    if env.sets_server() {
        match entries.len() {
            0 => entries.push((
                env.server_name.clone().unwrap_or_else(|| "default".into()),
                None,
            )),
            1 => {
                if let Some(n) = &env.server_name {
                    entries[0].0 = n.clone();
                }
            }
            n => {
                return Err(ConfigError::Env {
                    var: "SQLGUARD_DB_*".into(),
                    message: format!(
                        "the config file has {n} servers and the environment can only configure one; set these keys in the file instead"
                    ),
                })
            }
        }
    }
    if entries.is_empty() {
        return Err(ctx.invalid(
            "servers",
            format!(
                "no database server configured: add a `servers:` section or set {} (and {})",
                ev::DB_HOST,
                ev::DB_USER
            ),
        ));
    }
    let empty = file::ServerFile::default();
    let mut out = Vec::new();
    for (name, sf) in entries {
        let apply_env = env.sets_server();
        let sf = sf.unwrap_or(&empty);
        let key = |k: &str| format!("servers.{name}.{k}");
        check_name(ctx, &format!("servers.{name}"), &name)?;
        let pick = |env_v: &Option<String>,
                    file_v: Option<&String>,
                    k: &str|
         -> Result<Option<String>, ConfigError> {
            match env_v {
                Some(v) if apply_env => Ok(Some(v.clone())),
                _ => ctx.expand_opt(&key(k), file_v),
            }
        };
        let socket = pick(&env.db_socket, sf.socket.as_ref(), "socket")?.map(PathBuf::from);
        let mut host = pick(&env.db_host, sf.host.as_ref(), "host")?;
        let mut port = if apply_env {
            env.db_port.or(sf.port)
        } else {
            sf.port
        };
        if socket.is_none() {
            host.get_or_insert_with(|| "127.0.0.1".to_string());
            port.get_or_insert(3306);
        }
        let user = pick(&env.db_user, sf.user.as_ref(), "user")?;
        if sf.password.is_some() && sf.password_file.is_some() {
            return Err(ctx.invalid(key("password"), "set password or password_file, not both"));
        }
        let password = if let (true, Some(p)) = (apply_env, &env.db_password) {
            Some(Secret::new(p.clone()))
        } else if let (true, Some(f)) = (apply_env, &env.db_password_file) {
            Some(read_secret_file(
                Path::new(f),
                ev::DB_PASSWORD_FILE,
                "environment",
            )?)
        } else if let Some(p) = &sf.password {
            Some(Secret::new(ctx.expand(&key("password"), p)?))
        } else if let Some(f) = &sf.password_file {
            let path = PathBuf::from(ctx.expand(&key("password_file"), f)?);
            Some(read_secret_file(&path, &key("password_file"), &ctx.origin)?)
        } else {
            None
        };
        let tls = match &sf.tls {
            Some(t) => TlsSettings {
                mode: t.mode.unwrap_or_default(),
                ca: ctx
                    .expand_opt(&key("tls.ca"), t.ca.as_ref())?
                    .map(PathBuf::from),
                cert: ctx
                    .expand_opt(&key("tls.cert"), t.cert.as_ref())?
                    .map(PathBuf::from),
                key: ctx
                    .expand_opt(&key("tls.key"), t.key.as_ref())?
                    .map(PathBuf::from),
            },
            None => TlsSettings::default(),
        };
        let dbs = sf.databases.as_ref();
        let mut include = dbs
            .and_then(|d| d.include.clone())
            .unwrap_or_else(|| vec!["*".to_string()]);
        let mut exclude = dbs.and_then(|d| d.exclude.clone()).unwrap_or_default();
        if apply_env {
            if let Some(v) = &env.databases {
                include = split_list(v);
            }
            if let Some(v) = &env.exclude_databases {
                exclude = split_list(v);
            }
        }
        if include.is_empty() {
            return Err(ctx.invalid(
                key("databases.include"),
                "is empty: nothing would be backed up (use [\"*\"] for all)",
            ));
        }
        for p in include.iter().chain(&exclude) {
            glob::Pattern::new(p).map_err(|e| {
                ctx.invalid(key("databases"), format!("'{p}' is not a valid glob: {e}"))
            })?;
        }
        for o in &sf.dump_options {
            check_dump_option(ctx, &key("dump_options"), o)?;
        }
        out.push(ServerSettings {
            name: name.clone(),
            host,
            port,
            socket,
            user,
            password,
            tls,
            include,
            exclude,
            dump_options: sf.dump_options.clone(),
            dump_tool: ctx
                .expand_opt(&key("dump_tool"), sf.dump_tool.as_ref())?
                .map(PathBuf::from),
            client_tool: ctx
                .expand_opt(&key("client_tool"), sf.client_tool.as_ref())?
                .map(PathBuf::from),
        });
    }
    Ok(out)
}

/// Keys of a storage section that only one kind accepts, to name a misplaced one.
fn misplaced_keys(sf: &file::StorageFile, kind: StorageKindName) -> Vec<&'static str> {
    let s3_keys: [(&str, bool); 13] = [
        ("endpoint", sf.endpoint.is_some()),
        ("region", sf.region.is_some()),
        ("bucket", sf.bucket.is_some()),
        ("prefix", sf.prefix.is_some()),
        ("path_style", sf.path_style.is_some()),
        ("access_key_id", sf.access_key_id.is_some()),
        ("access_key_id_file", sf.access_key_id_file.is_some()),
        ("secret_access_key", sf.secret_access_key.is_some()),
        (
            "secret_access_key_file",
            sf.secret_access_key_file.is_some(),
        ),
        ("ca_file", sf.ca_file.is_some()),
        ("storage_class", sf.storage_class.is_some()),
        ("sse", sf.sse.is_some()),
        ("sse_kms_key_id", sf.sse_kms_key_id.is_some()),
    ];
    match kind {
        StorageKindName::Local => s3_keys
            .iter()
            .filter(|(_, set)| *set)
            .map(|(k, _)| *k)
            .collect(),
        StorageKindName::S3 => {
            if sf.path.is_some() {
                vec!["path"]
            } else {
                vec![]
            }
        }
    }
}

/// Picks a secret from an inline value, a `*_file`, or an environment variable, in that order.
fn pick_secret(
    ctx: &Ctx,
    key: &str,
    inline: Option<&String>,
    file_key: &str,
    file: Option<&String>,
    env_var: &str,
) -> Result<Option<Secret>, ConfigError> {
    if inline.is_some() && file.is_some() {
        return Err(ctx.invalid(key, format!("set {key} or {file_key}, not both")));
    }
    if let Some(v) = inline {
        return Ok(Some(Secret::new(ctx.expand(key, v)?)));
    }
    if let Some(f) = file {
        let path = PathBuf::from(ctx.expand(file_key, f)?);
        return read_secret_file(&path, file_key, &ctx.origin).map(Some);
    }
    if env_var.is_empty() {
        return Ok(None);
    }
    Ok(ctx.env.get(env_var).map(|v| Secret::new(v.clone())))
}

fn resolve_s3(ctx: &Ctx, name: &str, sf: &file::StorageFile) -> Result<S3Settings, ConfigError> {
    let key = |k: &str| format!("storage.{name}.{k}");
    let bucket = ctx
        .expand_opt(&key("bucket"), sf.bucket.as_ref())?
        .ok_or_else(|| ctx.invalid(key("bucket"), "is required for an s3 storage"))?;
    let region = ctx
        .expand_opt(&key("region"), sf.region.as_ref())?
        .unwrap_or_else(|| "us-east-1".to_string());
    let endpoint = ctx
        .expand_opt(&key("endpoint"), sf.endpoint.as_ref())?
        .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
    if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
        return Err(ctx.invalid(
            key("endpoint"),
            format!("'{endpoint}' must start with https:// (or http:// for a server without TLS)"),
        ));
    }
    let prefix = ctx
        .expand_opt(&key("prefix"), sf.prefix.as_ref())?
        .unwrap_or_default()
        .trim_matches('/')
        .to_string();
    let access = pick_secret(
        ctx,
        &key("access_key_id"),
        sf.access_key_id.as_ref(),
        &key("access_key_id_file"),
        sf.access_key_id_file.as_ref(),
        ev::AWS_ACCESS_KEY_ID,
    )?;
    let secret = pick_secret(
        ctx,
        &key("secret_access_key"),
        sf.secret_access_key.as_ref(),
        &key("secret_access_key_file"),
        sf.secret_access_key_file.as_ref(),
        ev::AWS_SECRET_ACCESS_KEY,
    )?;
    let (Some(access), Some(secret)) = (access, secret) else {
        return Err(ctx.invalid(
            key("secret_access_key"),
            format!(
                "no credentials: set access_key_id and secret_access_key (or their *_file keys), or export {} and {}",
                ev::AWS_ACCESS_KEY_ID,
                ev::AWS_SECRET_ACCESS_KEY
            ),
        ));
    };
    let sse = ctx.expand_opt(&key("sse"), sf.sse.as_ref())?;
    if let Some(v) = &sse {
        if v != "AES256" && v != "aws:kms" {
            return Err(ctx.invalid(key("sse"), format!("'{v}' is not AES256 or aws:kms")));
        }
    }
    if sf.sse_kms_key_id.is_some() && sse.as_deref() != Some("aws:kms") {
        return Err(ctx.invalid(key("sse_kms_key_id"), "needs `sse: aws:kms`"));
    }
    let ca_file = ctx
        .expand_opt(&key("ca_file"), sf.ca_file.as_ref())?
        .map(PathBuf::from);
    if let Some(ca) = &ca_file {
        std::fs::metadata(ca).map_err(|e| {
            ctx.invalid(key("ca_file"), format!("cannot read {}: {e}", ca.display()))
        })?;
    }
    Ok(S3Settings {
        endpoint: endpoint.trim_end_matches('/').to_string(),
        region,
        bucket,
        prefix,
        path_style: sf.path_style.unwrap_or(false),
        access_key_id: access.expose().to_string(),
        secret_access_key: secret,
        ca_file,
        storage_class: ctx.expand_opt(&key("storage_class"), sf.storage_class.as_ref())?,
        sse,
        sse_kms_key_id: ctx.expand_opt(&key("sse_kms_key_id"), sf.sse_kms_key_id.as_ref())?,
    })
}

fn resolve_storages(
    ctx: &Ctx,
    file: &FileConfig,
    env: &EnvOverrides,
) -> Result<Vec<StorageSettings>, ConfigError> {
    let mut out = Vec::new();
    let mut sections: Vec<(String, file::StorageFile)> = Vec::new();
    for (name, sf) in &file.storage {
        sections.push((name.clone(), sf.clone()));
    }
    // SQLGUARD_S3_*: create the storage `s3`, or override the one S3 storage.
    if env.s3_bucket.is_some() || env.s3_endpoint.is_some() || env.s3_prefix.is_some() {
        let s3: Vec<usize> = sections
            .iter()
            .enumerate()
            .filter(|(_, (_, s))| s.kind == Some(StorageKindName::S3))
            .map(|(i, _)| i)
            .collect();
        let i = match s3.as_slice() {
            [] => {
                sections.push((
                    "s3".to_string(),
                    file::StorageFile {
                        kind: Some(StorageKindName::S3),
                        ..Default::default()
                    },
                ));
                sections.len() - 1
            }
            [i] => *i,
            _ => {
                return Err(ConfigError::Env {
                    var: "SQLGUARD_S3_*".into(),
                    message: "the config file has several S3 storages; set their keys in the file"
                        .into(),
                })
            }
        };
        let sf = &mut sections[i].1;
        if let Some(v) = &env.s3_bucket {
            sf.bucket = Some(v.clone());
        }
        if let Some(v) = &env.s3_endpoint {
            sf.endpoint = Some(v.clone());
        }
        if let Some(v) = &env.s3_region {
            sf.region = Some(v.clone());
        }
        if let Some(v) = &env.s3_prefix {
            sf.prefix = Some(v.clone());
        }
        if let Some(v) = env.s3_path_style {
            sf.path_style = Some(v);
        }
    }
    for (name, sf) in &sections {
        let key = |k: &str| format!("storage.{name}.{k}");
        check_name(ctx, &format!("storage.{name}"), name)?;
        let Some(kind_name) = sf.kind else {
            return Err(ctx.invalid(key("type"), "is required: local or s3"));
        };
        if let Some(k) = misplaced_keys(sf, kind_name).first() {
            return Err(ctx.invalid(
                key(k),
                format!(
                    "is not a key of a {} storage",
                    if kind_name == StorageKindName::S3 {
                        "s3"
                    } else {
                        "local"
                    }
                ),
            ));
        }
        let kind = match kind_name {
            StorageKindName::Local => {
                let path = sf
                    .path
                    .as_ref()
                    .ok_or_else(|| ctx.invalid(key("path"), "is required for a local storage"))?;
                StorageKind::Local {
                    path: PathBuf::from(ctx.expand(&key("path"), path)?),
                }
            }
            StorageKindName::S3 => StorageKind::S3(Box::new(resolve_s3(ctx, name, sf)?)),
        };
        out.push(StorageSettings {
            name: name.clone(),
            kind,
        });
    }
    if let Some(p) = &env.storage_path {
        let locals: Vec<usize> = out
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s.kind, StorageKind::Local { .. }))
            .map(|(i, _)| i)
            .collect();
        match locals.as_slice() {
            [] => out.push(StorageSettings {
                name: "local".into(),
                kind: StorageKind::Local { path: p.into() },
            }),
            [i] => out[*i].kind = StorageKind::Local { path: p.into() },
            _ => {
                return Err(ConfigError::Env {
                    var: ev::STORAGE_PATH.into(),
                    message:
                        "the config file has several local storages; set their paths in the file"
                            .into(),
                })
            }
        }
    }
    if out.is_empty() {
        return Err(ctx.invalid(
            "storage",
            format!(
                "no storage configured: add a `storage:` section or set {} or {}",
                ev::STORAGE_PATH,
                ev::S3_BUCKET
            ),
        ));
    }
    Ok(out)
}

fn resolve_retention(
    ctx: &Ctx,
    key: &str,
    r: Option<&file::RetentionFile>,
) -> Result<Retention, ConfigError> {
    let r = r.cloned().unwrap_or_default();
    let forever = r.forever.unwrap_or(false);
    if r.keep_last.is_none() && r.keep_within.is_none() && !forever {
        return Err(ctx.invalid(
            key,
            "has no rule: set keep_last, keep_within, or `forever: true` to keep every backup",
        ));
    }
    if forever && (r.keep_last.is_some() || r.keep_within.is_some()) {
        return Err(ctx.invalid(
            key,
            "`forever: true` cannot be combined with keep_last or keep_within",
        ));
    }
    if r.keep_last == Some(0) {
        return Err(ctx.invalid(format!("{key}.keep_last"), "must be at least 1"));
    }
    Ok(Retention {
        keep_last: r.keep_last,
        keep_within: r.keep_within,
        forever,
        failed_keep_within: r.failed_keep_within.unwrap_or(DEFAULT_FAILED_KEEP_WITHIN),
    })
}

fn resolve_compression(
    ctx: &Ctx,
    key: &str,
    c: Option<&file::CompressionFile>,
    env: &EnvOverrides,
) -> Result<Compression, ConfigError> {
    let mut algorithm = c.and_then(|c| c.algorithm).unwrap_or(Algorithm::Zstd);
    let mut level = c.and_then(|c| c.level);
    let mut threads = c.and_then(|c| c.threads).unwrap_or(0);
    if let Some(a) = &env.compression {
        algorithm = a.parse().map_err(|m| ConfigError::Env {
            var: ev::COMPRESSION.into(),
            message: m,
        })?;
        level = None;
    }
    if let Some(l) = env.compression_level {
        level = Some(l);
    }
    if let Some(t) = env.compression_threads {
        threads = t;
    }
    if algorithm == Algorithm::None && level.is_some_and(|l| l != 0) {
        return Err(ctx.invalid(
            format!("{key}.level"),
            "compression `none` takes no level: remove it, or pick zstd or xz",
        ));
    }
    let level = level.unwrap_or(algorithm.default_level());
    let (lo, hi) = algorithm.level_range();
    if level < lo || level > hi {
        return Err(ctx.invalid(
            format!("{key}.level"),
            format!(
                "{level} is out of range for {}: use {lo} to {hi}",
                algorithm.as_str()
            ),
        ));
    }
    Ok(Compression {
        algorithm,
        level,
        threads,
    })
}

fn resolve_types(
    ctx: &Ctx,
    file: &FileConfig,
    env: &EnvOverrides,
    storages: &[StorageSettings],
) -> Result<Vec<BackupTypeSettings>, ConfigError> {
    let all_storages: Vec<String> = storages.iter().map(|s| s.name.clone()).collect();
    let defaults: BTreeMap<String, file::BackupTypeFile>;
    let types = match &file.backup_types {
        Some(t) => t,
        None => {
            defaults = DEFAULT_TYPES
                .iter()
                .map(|(n, sched, keep)| {
                    let t = file::BackupTypeFile {
                        schedule: sched.map(String::from),
                        retention: Some(file::RetentionFile {
                            keep_last: Some(*keep),
                            ..Default::default()
                        }),
                        ..Default::default()
                    };
                    (n.to_string(), t)
                })
                .collect();
            &defaults
        }
    };
    if types.is_empty() {
        return Err(ctx.invalid("backup_types", "is empty: define at least one type, or remove the section to use the built-in hourly/daily/weekly/monthly/manual"));
    }
    let mut out = Vec::new();
    for (name, t) in types {
        let key = |k: &str| format!("backup_types.{name}.{k}");
        check_name(ctx, &format!("backup_types.{name}"), name)?;
        if let Some(s) = &t.schedule {
            check_schedule(ctx, &key("schedule"), s)?;
        }
        let names = t.storages.clone().unwrap_or_else(|| all_storages.clone());
        if names.is_empty() {
            return Err(ctx.invalid(key("storages"), "is empty: name at least one storage"));
        }
        for s in &names {
            if !all_storages.contains(s) {
                return Err(ctx.invalid(
                    key("storages"),
                    format!(
                        "unknown storage '{s}' (configured: {})",
                        all_storages.join(", ")
                    ),
                ));
            }
        }
        out.push(BackupTypeSettings {
            name: name.clone(),
            schedule: t.schedule.clone(),
            storages: names,
            compression: resolve_compression(
                ctx,
                &key("compression"),
                t.compression.as_ref(),
                env,
            )?,
            retention: resolve_retention(ctx, &key("retention"), t.retention.as_ref())?,
            storage_retention: t
                .storage_retention
                .iter()
                .map(|(st, r)| {
                    if !all_storages.contains(st) {
                        return Err(ctx.invalid(
                            key(&format!("storage_retention.{st}")),
                            format!(
                                "unknown storage '{st}' (configured: {})",
                                all_storages.join(", ")
                            ),
                        ));
                    }
                    Ok((
                        st.clone(),
                        resolve_retention(ctx, &key(&format!("storage_retention.{st}")), Some(r))?,
                    ))
                })
                .collect::<Result<_, _>>()?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn from_yaml(yaml: &str, e: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(yaml.as_bytes()).unwrap();
        Settings::resolve(Some(f.path()), &env(e))
    }

    const MINIMAL: &str = "servers:\n  main:\n    user: backup\nstorage:\n  local:\n    type: local\n    path: /tmp/x\n";

    #[test]
    fn environment_alone_configures_one_server_and_local_storage() {
        let s = Settings::resolve(
            None,
            &env(&[
                (ev::DB_HOST, "db.example"),
                (ev::DB_PORT, "3307"),
                (ev::DB_USER, "bk"),
                (ev::DB_PASSWORD, "pw"),
                (ev::STORAGE_PATH, "/var/backups/sql"),
                (ev::DATABASES, "shop, crm_*"),
            ]),
        )
        .unwrap();
        assert_eq!(s.servers.len(), 1);
        let srv = &s.servers[0];
        assert_eq!(srv.name, "default");
        assert_eq!(srv.host.as_deref(), Some("db.example"));
        assert_eq!(srv.port, Some(3307));
        assert_eq!(srv.password.as_ref().unwrap().expose(), "pw");
        assert_eq!(srv.include, vec!["shop", "crm_*"]);
        assert_eq!(s.storages[0].name, "local");
        let names: Vec<_> = s.backup_types.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["daily", "hourly", "manual", "monthly", "weekly"]);
    }

    #[test]
    fn environment_beats_file_and_file_beats_defaults() {
        let s = from_yaml(
            "servers:\n  main:\n    host: filehost\n    port: 3310\n    user: u\nstorage:\n  local:\n    type: local\n    path: /from/file\n",
            &[(ev::DB_HOST, "envhost"), (ev::STORAGE_PATH, "/from/env")],
        )
        .unwrap();
        assert_eq!(s.servers[0].name, "main");
        assert_eq!(s.servers[0].host.as_deref(), Some("envhost"));
        assert_eq!(s.servers[0].port, Some(3310));
        assert!(
            matches!(&s.storages[0].kind, StorageKind::Local { path } if path == Path::new("/from/env"))
        );
    }

    #[test]
    fn unknown_key_names_the_key_and_line() {
        let e = from_yaml("servers:\n  main:\n    hots: x\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("hots"), "{e}");
        assert!(e.contains("line 3"), "{e}");
    }

    #[test]
    fn bad_duration_names_the_line() {
        let e = from_yaml(
            &format!("{MINIMAL}backup_types:\n  daily:\n    retention:\n      keep_within: 7x\n"),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("7x") && e.contains("line 11"), "{e}");
    }

    #[test]
    fn a_type_without_retention_is_an_error() {
        let e = from_yaml(
            &format!("{MINIMAL}backup_types:\n  daily:\n    schedule: \"0 2 * * *\"\n"),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("backup_types.daily.retention") && e.contains("forever"),
            "{e}"
        );
    }

    #[test]
    fn variable_references_expand_and_missing_ones_are_named() {
        let s = from_yaml(
            "servers:\n  main:\n    password: \"${DBPW}\"\n    user: \"u$${x}\"\nstorage:\n  l:\n    type: local\n    path: /b\n",
            &[("DBPW", "s3cr$t")],
        )
        .unwrap();
        assert_eq!(s.servers[0].password.as_ref().unwrap().expose(), "s3cr$t");
        assert_eq!(s.servers[0].user.as_deref(), Some("u${x}"));
        let e = from_yaml("servers:\n  main:\n    password: \"${NOPE}\"\nstorage:\n  l:\n    type: local\n    path: /b\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("NOPE") && e.contains("servers.main.password"),
            "{e}"
        );
    }

    #[test]
    fn password_file_reads_the_first_line_and_is_redacted_in_show() {
        let mut pw = tempfile::NamedTempFile::new().unwrap();
        writeln!(pw, "topsecret\nignored").unwrap();
        let s = from_yaml(
            &format!("servers:\n  main:\n    password_file: {}\nstorage:\n  l:\n    type: local\n    path: /b\n", pw.path().display()),
            &[],
        )
        .unwrap();
        assert_eq!(
            s.servers[0].password.as_ref().unwrap().expose(),
            "topsecret"
        );
        let shown = s.to_redacted_yaml();
        assert!(
            !shown.contains("topsecret") && shown.contains("***"),
            "{shown}"
        );
    }

    #[test]
    fn dangerous_dump_options_are_refused() {
        for opt in [
            "--password=x",
            "-psecret",
            "--databases",
            "--skip-comments",
            "-A",
            "shop",
        ] {
            let e = from_yaml(
                &format!("servers:\n  main:\n    dump_options: [\"{opt}\"]\nstorage:\n  l:\n    type: local\n    path: /b\n"),
                &[],
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains("dump_options"), "{opt}: {e}");
        }
    }

    #[test]
    fn types_name_known_storages_and_valid_levels() {
        let e = from_yaml(&format!("{MINIMAL}backup_types:\n  daily:\n    storages: [s3]\n    retention: {{keep_last: 3}}\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown storage 's3'"), "{e}");
        let e = from_yaml(&format!("{MINIMAL}backup_types:\n  daily:\n    compression: {{algorithm: xz, level: 12}}\n    retention: {{keep_last: 3}}\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("0 to 9"), "{e}");
    }

    #[test]
    fn environment_alone_configures_s3_with_aws_credentials() {
        let s = Settings::resolve(
            None,
            &env(&[
                (ev::DB_USER, "bk"),
                (ev::S3_BUCKET, "backups"),
                (ev::S3_ENDPOINT, "http://127.0.0.1:9000/"),
                (ev::S3_PATH_STYLE, "true"),
                (ev::S3_PREFIX, "/prod/"),
                (ev::AWS_ACCESS_KEY_ID, "AK"),
                (ev::AWS_SECRET_ACCESS_KEY, "SK"),
            ]),
        )
        .unwrap();
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        let StorageKind::S3(s3) = &s.storages[0].kind else {
            panic!("not s3")
        };
        assert_eq!(
            (s3.bucket.as_str(), s3.prefix.as_str(), s3.endpoint.as_str()),
            ("backups", "prod", "http://127.0.0.1:9000")
        );
        assert!(s3.path_style);
        assert_eq!(s3.secret_access_key.expose(), "SK");
        assert!(!s.to_redacted_yaml().contains("SK\n"));
    }

    #[test]
    fn s3_without_credentials_or_with_local_keys_is_refused() {
        let e = from_yaml(
            "servers:\n  m: {}\nstorage:\n  o:\n    type: s3\n    bucket: b\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("no credentials") && e.contains("AWS_ACCESS_KEY_ID"),
            "{e}"
        );
        let e = from_yaml(
            "servers:\n  m: {}\nstorage:\n  o:\n    type: local\n    path: /x\n    bucket: b\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("storage.o.bucket") && e.contains("not a key of a local storage"),
            "{e}"
        );
        let e = from_yaml("servers:\n  m: {}\nstorage:\n  o:\n    type: s3\n    bucket: b\n    endpoint: s3.example.com\n", &[(ev::AWS_ACCESS_KEY_ID, "a"), (ev::AWS_SECRET_ACCESS_KEY, "b")]).unwrap_err().to_string();
        assert!(e.contains("https://"), "{e}");
    }

    #[test]
    fn unknown_prefixed_variables_warn() {
        let s = from_yaml(MINIMAL, &[("SQLGUARD_DB_PASWORD", "x")]).unwrap();
        assert!(s.warnings[0].contains("SQLGUARD_DB_PASWORD"));
    }

    #[test]
    fn several_servers_refuse_single_server_environment() {
        let e = from_yaml(
            "servers:\n  a: {}\n  b: {}\nstorage:\n  l:\n    type: local\n    path: /b\n",
            &[(ev::DB_HOST, "h")],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("2 servers"), "{e}");
    }
}
