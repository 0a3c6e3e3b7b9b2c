//! The `servers` section: connection, credentials, TLS, database selection and extra dump
//! options of each database server, with the single-server `SQLGUARD_DB_*` overrides.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::dump_options::check_dump_option;
use super::env::EnvOverrides;
use super::file::{self, FileConfig, TlsMode};
use super::values::{check_name, read_secret_file, split_list, Ctx};
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
}

/// TLS towards a database server.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TlsSettings {
    pub mode: TlsMode,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

pub(super) fn resolve_servers(
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
