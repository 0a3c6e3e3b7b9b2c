//! The `servers` section: connection, credentials, TLS, database selection and extra dump
//! options of each database server, with the single-server `SQLGUARD_DB_*` overrides.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::dump_options::check_dump_option;
use super::env::EnvOverrides;
use super::file::{self, FileConfig, TlsMode};
use super::values::{check_distinct_ignoring_case, check_name, read_secret_file, split_list, Ctx};
use super::ConfigError;
use crate::env_vars as ev;
use crate::secret::Secret;

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
    /// Databases dumped at once.
    pub parallel: u32,
    /// The account of restores and restore tests, when it is not the backup account.
    pub restore_user: Option<String>,
    pub restore_password: Option<Secret>,
    /// A restore target only: never backed up, scheduled or counted in metrics.
    pub restore_only: bool,
    /// Every run that backs up the whole server also dumps its accounts (users, roles, grants:
    /// `mariadb-dump --system=users`) as the backup of [`crate::backup::ACCOUNTS`].
    pub accounts: bool,
    /// The binary log archive (`servers.X.binlog`), when enabled.
    pub binlog: Option<BinlogSettings>,
}

/// A server's binary log archive, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct BinlogSettings {
    pub storages: Vec<String>,
    pub compression: crate::compress::Compression,
    /// The `sqlguard binlog` timer's cron expression.
    pub schedule: String,
    /// Point-in-time recovery must reach this far back: prune keeps every segment needed to
    /// roll forward from the newest dump at least this old.
    pub window: crate::duration::HumanDuration,
}

/// The default schedule of the binlog archiver: every minute.
pub const DEFAULT_BINLOG_SCHEDULE: &str = "* * * * *";
/// The default point-in-time window.
pub const DEFAULT_BINLOG_WINDOW: crate::duration::HumanDuration =
    crate::duration::HumanDuration(7 * 86_400);

impl ServerSettings {
    /// These settings with the restore account in place of the backup account (when the
    /// server names one): what restores and restore tests connect with.
    pub fn for_restore(&self) -> ServerSettings {
        let mut s = self.clone();
        if let Some(u) = &self.restore_user {
            s.user = Some(u.clone());
            s.password = self.restore_password.clone();
        }
        s
    }
}

/// The most databases of one server dumped at once (each is a dump tool, a connection and a
/// compressor; more is a typo on any machine sqlguard runs on).
pub const MAX_PARALLEL: u32 = 16;

/// TLS towards a database server.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TlsSettings {
    pub mode: TlsMode,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// Whether `host` is this machine (the password never leaves it).
pub fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A warning when `server` sends its password over the network without checking who answers.
fn identity_warning(server: &ServerSettings) -> Option<String> {
    let host = server.host.as_deref().filter(|_| server.socket.is_none())?;
    if is_loopback(host) || matches!(server.tls.mode, TlsMode::VerifyCa | TlsMode::VerifyIdentity) {
        return None;
    }
    Some(format!(
        "servers.{}: the password goes to {host}:{} without checking the server's identity (tls.mode is {}): set servers.{}.tls.mode to verify_identity (with tls.ca) so that an impostor cannot receive it",
        server.name,
        server.port.unwrap_or(3306),
        match server.tls.mode {
            TlsMode::Default => "default",
            TlsMode::Disabled => "disabled",
            _ => "required",
        },
        server.name
    ))
}

/// Resolves a server's `binlog` section.
fn resolve_binlog(
    ctx: &Ctx,
    key: &str,
    b: &file::BinlogFile,
    storages: &[String],
) -> Result<BinlogSettings, ConfigError> {
    let names = b.storages.clone().unwrap_or_else(|| storages.to_vec());
    if names.is_empty() {
        return Err(ctx.invalid(
            format!("{key}.storages"),
            "is empty: name at least one storage",
        ));
    }
    for s in &names {
        if !storages.contains(s) {
            return Err(ctx.invalid(
                format!("{key}.storages"),
                format!(
                    "unknown storage '{s}' (configured: {})",
                    storages.join(", ")
                ),
            ));
        }
    }
    let schedule = b
        .schedule
        .clone()
        .unwrap_or_else(|| DEFAULT_BINLOG_SCHEDULE.to_string());
    super::values::check_schedule(ctx, &format!("{key}.schedule"), &schedule)?;
    let window = b.window.unwrap_or(DEFAULT_BINLOG_WINDOW);
    if window.as_secs() == 0 {
        return Err(ctx.invalid(
            format!("{key}.window"),
            "must be longer than 0 (how far back a restore to a point in time reaches, e.g. 14d)",
        ));
    }
    Ok(BinlogSettings {
        storages: names,
        compression: super::backup_types::resolve_compression(
            ctx,
            &format!("{key}.compression"),
            b.compression.as_ref(),
            &EnvOverrides::default(),
        )?,
        schedule,
        window,
    })
}

/// Resolves every server; a server that will send its password over the network without
/// verifying the server's identity adds a warning (once per run).
pub(super) fn resolve_servers(
    ctx: &Ctx,
    file: &FileConfig,
    env: &EnvOverrides,
    storages: &[String],
    warnings: &mut Vec<String>,
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
                    var: env.server_vars().join(", "),
                    message: format!(
                        "the config file has {n} servers and these variables can only configure one; set the keys in the file instead"
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
    check_distinct_ignoring_case(ctx, "servers", entries.iter().map(|(n, _)| n))?;
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
        if port == Some(0) {
            return Err(ctx.invalid(key("port"), "0 is not a TCP port (1-65535)"));
        }
        if socket.is_none() {
            host.get_or_insert_with(|| "127.0.0.1".to_string());
            port.get_or_insert(3306);
        }
        let user = pick(&env.db_user, sf.user.as_ref(), "user")?;
        if sf.password.is_some() && sf.password_file.is_some() {
            return Err(ctx.invalid(key("password"), "set password or password_file, not both"));
        }
        if apply_env && env.db_password.is_some() && env.db_password_file.is_some() {
            return Err(ConfigError::Invalid {
                origin: "environment".into(),
                key: ev::DB_PASSWORD.to_string(),
                message: format!(
                    "set {} or {}, not both",
                    ev::DB_PASSWORD,
                    ev::DB_PASSWORD_FILE
                ),
            });
        }
        // A password the environment overrides is still a secret of the config's: the
        // variables it names are blanked with the others (see `Environment::secret_names`).
        if let Some(p) = &sf.password {
            ctx.mark_secret_references(p);
        }
        let password = if let (true, Some(p)) = (apply_env, &env.db_password) {
            Some(Secret::from(
                p.clone(),
                crate::secret::Source::Env(ev::DB_PASSWORD.to_string()),
            ))
        } else if let (true, Some(f)) = (apply_env, &env.db_password_file) {
            Some(read_secret_file(
                Path::new(f),
                ev::DB_PASSWORD_FILE,
                "environment",
            )?)
        } else if let Some(p) = &sf.password {
            Some(ctx.secret(&key("password"), p)?)
        } else if let Some(f) = &sf.password_file {
            let path = PathBuf::from(ctx.expand(&key("password_file"), f)?);
            Some(read_secret_file(&path, &key("password_file"), &ctx.origin)?)
        } else {
            None
        };
        let password_key = match (apply_env, &env.db_password, &env.db_password_file) {
            (true, Some(_), _) => ev::DB_PASSWORD.to_string(),
            (true, None, Some(_)) => ev::DB_PASSWORD_FILE.to_string(),
            _ => key("password"),
        };
        fits_option_line(ctx, &password_key, password.as_ref())?;
        let mut tls = match &sf.tls {
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
        if apply_env {
            if let Some(m) = env.db_tls_mode {
                tls.mode = m;
            }
            if let Some(ca) = &env.db_tls_ca {
                tls.ca = Some(PathBuf::from(ca));
            }
        }
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
        let (restore_user, restore_password) = match &sf.restore {
            None => (None, None),
            Some(r) => {
                if r.password.is_some() && r.password_file.is_some() {
                    return Err(ctx.invalid(
                        key("restore.password"),
                        "set password or password_file, not both",
                    ));
                }
                let Some(user) = ctx.expand_opt(&key("restore.user"), r.user.as_ref())? else {
                    return Err(ctx.invalid(
                        key("restore.user"),
                        "a restore account needs its user (and password or password_file)",
                    ));
                };
                let password = if let Some(p) = &r.password {
                    Some(ctx.secret(&key("restore.password"), p)?)
                } else if let Some(f) = &r.password_file {
                    let path = PathBuf::from(ctx.expand(&key("restore.password_file"), f)?);
                    Some(read_secret_file(
                        &path,
                        &key("restore.password_file"),
                        &ctx.origin,
                    )?)
                } else {
                    None
                };
                fits_option_line(ctx, &key("restore.password"), password.as_ref())?;
                (Some(user), password)
            }
        };
        let parallel = env.parallel.or(sf.parallel).unwrap_or(1);
        if !(1..=MAX_PARALLEL).contains(&parallel) {
            let message = format!(
                "{parallel} is not a number of databases to dump at once (1-{MAX_PARALLEL})"
            );
            return Err(if env.parallel.is_some() {
                ConfigError::Env {
                    var: ev::PARALLEL.to_string(),
                    message,
                }
            } else {
                ctx.invalid(key("parallel"), message)
            });
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
            parallel,
            restore_user,
            restore_password,
            restore_only: sf.restore_only.unwrap_or(false),
            accounts: sf.accounts.unwrap_or(false),
            binlog: sf
                .binlog
                .as_ref()
                .map(|b| resolve_binlog(ctx, &key("binlog"), b, storages))
                .transpose()?,
        });
    }
    warnings.extend(out.iter().filter_map(identity_warning));
    Ok(out)
}

/// The client tools read an option file line by line into a 4 KiB buffer: a longer password
/// line is cut, and its tail read as an option of its own, printed in the tool's error.
fn fits_option_line(ctx: &Ctx, key: &str, password: Option<&Secret>) -> Result<(), ConfigError> {
    const MAX: usize = 4000;
    match password {
        Some(p) if crate::mysql::quote_option_value(p.expose()).len() > MAX => Err(ctx.invalid(
            key,
            format!("is longer than the {MAX} bytes (once quoted) a client option file line holds: use a shorter password"),
        )),
        _ => Ok(()),
    }
}
