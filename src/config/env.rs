//! The environment: the process's variables as sqlguard reads them ([`Environment`]), and the
//! `SQLGUARD_*` variables that set or override config keys ([`EnvOverrides`]), read with envy and
//! typed here with errors that name the full variable. Which variable overrides which key, and
//! when several sections make that ambiguous, is decided by the section modules.

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;

use super::ConfigError;
use crate::env_vars as ev;

/// The process environment: every variable whose name and value are UTF-8, and the names of the
/// others (which sqlguard never uses, but names when it is asked to).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    vars: HashMap<String, String>,
    non_utf8: BTreeSet<String>,
    /// Variables whose values the config resolved as secrets (see [`Self::secret_names`]).
    secrets: std::cell::RefCell<BTreeSet<String>>,
}

impl Environment {
    /// This process's environment. Never fails: a variable that is not UTF-8 is remembered by
    /// (lossily decoded) name instead of panicking.
    pub fn from_process() -> Environment {
        let mut env = Environment::default();
        for (k, v) in std::env::vars_os() {
            match (k.into_string(), v.into_string()) {
                (Ok(k), Ok(v)) => {
                    env.vars.insert(k, v);
                }
                (Ok(k), Err(_)) => {
                    env.non_utf8.insert(k);
                }
                (Err(k), _) => {
                    env.non_utf8.insert(k.to_string_lossy().into_owned());
                }
            }
        }
        env
    }

    /// The value of `name`, when it is set and UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Whether `name` is set, UTF-8 or not.
    pub fn contains(&self, name: &str) -> bool {
        self.vars.contains_key(name) || self.non_utf8.contains(name)
    }

    /// Whether `name` is set to something that is not UTF-8.
    pub fn is_non_utf8(&self, name: &str) -> bool {
        self.non_utf8.contains(name)
    }

    /// Every UTF-8 variable.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.vars.iter()
    }

    /// Names of the variables that are not UTF-8.
    pub fn non_utf8(&self) -> impl Iterator<Item = &String> {
        self.non_utf8.iter()
    }

    /// Notes that `name`'s value was read as (part of) a secret.
    pub fn mark_secret(&self, name: &str) {
        self.secrets.borrow_mut().insert(name.to_string());
    }

    /// The variables that hold secrets: the ones sqlguard always reads as secrets (and
    /// `MYSQL_PWD`, which no child gets either), and every one the config resolved as (part of)
    /// a secret. Once the settings are resolved, the binary blanks them in its own environment
    /// block ([`crate::process::blank_environment`]).
    pub fn secret_names(&self) -> BTreeSet<String> {
        let mut names = self.secrets.borrow().clone();
        names.extend(
            [
                crate::env_vars::DB_PASSWORD,
                crate::env_vars::AWS_SECRET_ACCESS_KEY,
                crate::env_vars::PUSHGATEWAY_URL,
                crate::env_vars::NOTIFY_HEALTHCHECKS_URL,
                crate::env_vars::NOTIFY_UPTIME_KUMA_URL,
                crate::env_vars::NOTIFY_WEBHOOK_URL,
                "MYSQL_PWD",
            ]
            .map(String::from),
        );
        // What children inherit is read again for each of them: never blanked.
        names.retain(|n| !crate::process::PASSED.contains(&n.as_str()));
        names
    }
}

impl From<HashMap<String, String>> for Environment {
    fn from(vars: HashMap<String, String>) -> Self {
        Environment {
            vars,
            ..Environment::default()
        }
    }
}

/// Reads a boolean the way operators write one: `1/0`, `true/false`, `yes/no`, `on/off`, in any
/// case; `None` for anything else.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// The `SQLGUARD_*` variables exactly as set (envy maps `SQLGUARD_DB_HOST` to `db_host`).
#[derive(Debug, Default, Deserialize)]
struct Raw {
    config: Option<String>,
    server_name: Option<String>,
    db_host: Option<String>,
    db_port: Option<String>,
    db_socket: Option<String>,
    db_user: Option<String>,
    db_password: Option<String>,
    db_password_file: Option<String>,
    db_tls_mode: Option<String>,
    db_tls_ca: Option<String>,
    databases: Option<String>,
    exclude_databases: Option<String>,
    storage_path: Option<String>,
    s3_bucket: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    s3_prefix: Option<String>,
    s3_path_style: Option<String>,
    pushgateway_url: Option<String>,
    no_push: Option<String>,
    compression: Option<String>,
    compression_level: Option<String>,
    compression_threads: Option<String>,
    lock_dir: Option<String>,
    parallel: Option<String>,
    low_priority: Option<String>,
    notify_healthchecks_url: Option<String>,
    notify_uptime_kuma_url: Option<String>,
    notify_webhook_url: Option<String>,
    age_recipients: Option<String>,
    age_recipients_file: Option<String>,
    age_identity_file: Option<String>,
}

/// Settings that the environment may override, typed.
#[derive(Debug, Default)]
pub(super) struct EnvOverrides {
    pub(super) server_name: Option<String>,
    pub(super) db_host: Option<String>,
    pub(super) db_port: Option<u16>,
    pub(super) db_socket: Option<String>,
    pub(super) db_user: Option<String>,
    pub(super) db_password: Option<String>,
    pub(super) db_password_file: Option<String>,
    pub(super) db_tls_mode: Option<super::file::TlsMode>,
    pub(super) db_tls_ca: Option<String>,
    pub(super) databases: Option<String>,
    pub(super) exclude_databases: Option<String>,
    pub(super) storage_path: Option<String>,
    pub(super) s3_bucket: Option<String>,
    pub(super) s3_endpoint: Option<String>,
    pub(super) s3_region: Option<String>,
    pub(super) s3_prefix: Option<String>,
    pub(super) s3_path_style: Option<bool>,
    pub(super) pushgateway_url: Option<String>,
    pub(super) no_push: Option<bool>,
    pub(super) compression: Option<String>,
    pub(super) compression_level: Option<i32>,
    pub(super) compression_threads: Option<u32>,
    pub(super) parallel: Option<u32>,
    pub(super) low_priority: Option<bool>,
    pub(super) lock_dir: Option<String>,
    pub(super) notify_healthchecks_url: Option<String>,
    pub(super) notify_uptime_kuma_url: Option<String>,
    pub(super) notify_webhook_url: Option<String>,
    pub(super) age_recipients: Option<String>,
    pub(super) age_recipients_file: Option<String>,
    pub(super) age_identity_file: Option<String>,
}

fn env_error(var: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Env {
        var: var.to_string(),
        message: message.into(),
    }
}

/// A value that must not be empty.
fn present(var: &str, v: Option<String>) -> Result<Option<String>, ConfigError> {
    match v {
        Some(s) if s.trim().is_empty() => Err(env_error(
            var,
            "is empty: give it a value, or unset it to use the config file or the default",
        )),
        other => Ok(other),
    }
}

fn number<T: std::str::FromStr>(
    var: &str,
    v: Option<String>,
    what: &str,
) -> Result<Option<T>, ConfigError> {
    present(var, v)?
        .map(|s| {
            s.trim()
                .parse::<T>()
                .map_err(|_| env_error(var, format!("'{s}' is not {what}")))
        })
        .transpose()
}

fn boolean(var: &str, v: Option<String>) -> Result<Option<bool>, ConfigError> {
    present(var, v)?
        .map(|s| {
            parse_bool(&s).ok_or_else(|| {
                env_error(
                    var,
                    format!("'{s}' is not a boolean: use 1/0, true/false, yes/no or on/off"),
                )
            })
        })
        .transpose()
}

impl EnvOverrides {
    /// Reads and types the `SQLGUARD_*` variables of `env`.
    ///
    /// Fails naming the variable when one is not UTF-8, is empty (except `SQLGUARD_S3_PREFIX`,
    /// where empty means the bucket root) or does not parse.
    pub(super) fn read(env: &Environment) -> Result<EnvOverrides, ConfigError> {
        if let Some(bad) = env
            .non_utf8()
            .find(|n| n.starts_with(ev::PREFIX) || n.starts_with("AWS_"))
        {
            return Err(env_error(bad, "is not valid UTF-8"));
        }
        let raw: Raw = envy::prefixed(ev::PREFIX)
            .from_iter(env.iter().map(|(k, v)| (k.clone(), v.clone())))
            .map_err(|e| env_error(&format!("{}*", ev::PREFIX), e.to_string()))?;
        // The config file's path is used before the rest is read; here it is only checked.
        present(ev::CONFIG, raw.config)?;
        Ok(EnvOverrides {
            server_name: present(ev::SERVER_NAME, raw.server_name)?,
            db_host: present(ev::DB_HOST, raw.db_host)?,
            db_port: number(ev::DB_PORT, raw.db_port, "a TCP port (1-65535)")?
                .map(|p: u16| {
                    if p == 0 {
                        Err(env_error(ev::DB_PORT, "0 is not a TCP port (1-65535)"))
                    } else {
                        Ok(p)
                    }
                })
                .transpose()?,
            db_socket: present(ev::DB_SOCKET, raw.db_socket)?,
            db_user: present(ev::DB_USER, raw.db_user)?,
            db_password: present(ev::DB_PASSWORD, raw.db_password)?,
            db_password_file: present(ev::DB_PASSWORD_FILE, raw.db_password_file)?,
            db_tls_mode: present(ev::DB_TLS_MODE, raw.db_tls_mode)?
                .map(|m| {
                    super::file::TlsMode::parse(&m).ok_or_else(|| {
                        env_error(
                            ev::DB_TLS_MODE,
                            format!("'{m}' is not one of default, disabled, required, verify_ca, verify_identity"),
                        )
                    })
                })
                .transpose()?,
            db_tls_ca: present(ev::DB_TLS_CA, raw.db_tls_ca)?,
            databases: present(ev::DATABASES, raw.databases)?,
            exclude_databases: present(ev::EXCLUDE_DATABASES, raw.exclude_databases)?,
            storage_path: present(ev::STORAGE_PATH, raw.storage_path)?,
            s3_bucket: present(ev::S3_BUCKET, raw.s3_bucket)?,
            s3_endpoint: present(ev::S3_ENDPOINT, raw.s3_endpoint)?,
            s3_region: present(ev::S3_REGION, raw.s3_region)?,
            s3_prefix: raw.s3_prefix,
            s3_path_style: boolean(ev::S3_PATH_STYLE, raw.s3_path_style)?,
            pushgateway_url: present(ev::PUSHGATEWAY_URL, raw.pushgateway_url)?,
            no_push: boolean(ev::NO_PUSH, raw.no_push)?,
            compression: present(ev::COMPRESSION, raw.compression)?,
            compression_level: number(ev::COMPRESSION_LEVEL, raw.compression_level, "a level")?,
            compression_threads: number(
                ev::COMPRESSION_THREADS,
                raw.compression_threads,
                "a thread count",
            )?,
            lock_dir: present(ev::LOCK_DIR, raw.lock_dir)?,
            parallel: number(ev::PARALLEL, raw.parallel, "a number of databases (1-16)")?,
            low_priority: boolean(ev::LOW_PRIORITY, raw.low_priority)?,
            notify_healthchecks_url: present(
                ev::NOTIFY_HEALTHCHECKS_URL,
                raw.notify_healthchecks_url,
            )?,
            notify_uptime_kuma_url: present(
                ev::NOTIFY_UPTIME_KUMA_URL,
                raw.notify_uptime_kuma_url,
            )?,
            notify_webhook_url: present(ev::NOTIFY_WEBHOOK_URL, raw.notify_webhook_url)?,
            age_recipients: present(ev::AGE_RECIPIENTS, raw.age_recipients)?,
            age_recipients_file: present(ev::AGE_RECIPIENTS_FILE, raw.age_recipients_file)?,
            age_identity_file: present(ev::AGE_IDENTITY_FILE, raw.age_identity_file)?,
        })
    }

    /// The `SQLGUARD_DB_*`-family variables that are set, by name (for messages).
    pub(super) fn server_vars(&self) -> Vec<&'static str> {
        [
            (ev::SERVER_NAME, self.server_name.is_some()),
            (ev::DB_HOST, self.db_host.is_some()),
            (ev::DB_PORT, self.db_port.is_some()),
            (ev::DB_SOCKET, self.db_socket.is_some()),
            (ev::DB_USER, self.db_user.is_some()),
            (ev::DB_PASSWORD, self.db_password.is_some()),
            (ev::DB_PASSWORD_FILE, self.db_password_file.is_some()),
            (ev::DB_TLS_MODE, self.db_tls_mode.is_some()),
            (ev::DB_TLS_CA, self.db_tls_ca.is_some()),
            (ev::DATABASES, self.databases.is_some()),
            (ev::EXCLUDE_DATABASES, self.exclude_databases.is_some()),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(n, _)| n)
        .collect()
    }

    pub(super) fn sets_server(&self) -> bool {
        !self.server_vars().is_empty()
    }

    /// The `SQLGUARD_S3_*` variables that are set, by name (for messages).
    pub(super) fn s3_vars(&self) -> Vec<&'static str> {
        [
            (ev::S3_BUCKET, self.s3_bucket.is_some()),
            (ev::S3_ENDPOINT, self.s3_endpoint.is_some()),
            (ev::S3_REGION, self.s3_region.is_some()),
            (ev::S3_PREFIX, self.s3_prefix.is_some()),
            (ev::S3_PATH_STYLE, self.s3_path_style.is_some()),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(n, _)| n)
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::parse_bool;

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
        assert!(e.contains("2 servers") && e.contains(ev::DB_HOST), "{e}");
    }

    /// Issue 10: environment errors name the full variable; booleans read like an operator writes.
    #[test]
    fn variables_are_named_in_full_and_booleans_read_every_common_spelling() {
        for (var, value) in [
            (ev::DB_PORT, "abc"),
            (ev::DB_PORT, "0"),
            (ev::NO_PUSH, "maybe"),
            (ev::S3_PATH_STYLE, "2"),
            (ev::COMPRESSION_LEVEL, "high"),
            (ev::STORAGE_PATH, ""),
            (ev::LOCK_DIR, " "),
            (ev::CONFIG, ""),
        ] {
            let e = from_yaml(MINIMAL, &[(var, value)]).unwrap_err().to_string();
            assert!(e.contains(var), "{var}={value:?}: {e}");
            assert!(!e.contains("SQLGUARD_*"), "{e}");
        }
        for (value, want) in [
            ("1", true),
            ("TRUE", true),
            ("Yes", true),
            ("on", true),
            ("0", false),
            ("False", false),
            ("NO", false),
            ("off", false),
        ] {
            assert_eq!(parse_bool(value), Some(want), "{value}");
            let s = from_yaml(
                "servers:\n  m: {}\nstorage:\n  l: {type: local, path: /x}\nmetrics:\n  pushgateway: http://127.0.0.1:9\n",
                &[(ev::NO_PUSH, value)],
            )
            .unwrap();
            assert_eq!(s.metrics.is_none(), want, "{value}");
        }
    }
}
