//! Resolves flags > environment > file > defaults into one [`Settings`] value, once per run.
//!
//! Owns: finding and parsing the config file, the settings that belong to no section (locks,
//! retry, prune, report), the lookups every command uses, and `config show`. Each section is
//! resolved by its own module. It must not connect to anything: a config that resolves is
//! valid, whether or not the servers are up.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::backup_types::{resolve_types, BackupTypeSettings};
use super::env::{EnvOverrides, Environment};
use super::file::FileConfig;
use super::metrics::{resolve_metrics, MetricsSettings};
use super::server::{resolve_servers, ServerSettings};
use super::storage::{resolve_storages, StorageKind, StorageSettings};
use super::values::{check_schedule, Ctx};
use super::ConfigError;
use crate::duration::HumanDuration;
use crate::env_vars as ev;
use crate::retention::Retention;
use crate::storage::RetrySettings;

/// Places searched for a config file when neither `--config` nor `SQLGUARD_CONFIG` names one.
pub const DEFAULT_CONFIG_PATHS: &[&str] = &["sqlguard.yaml", "/etc/sqlguard/config.yaml"];

/// Age after which a temp file or incomplete upload is an orphan (its run is surely gone).
pub const DEFAULT_ORPHAN_MIN_AGE: HumanDuration = HumanDuration(6 * 3600);

/// When prune runs by default (daily, after the nightly backups).
pub const DEFAULT_PRUNE_SCHEDULE: &str = "15 5 * * *";

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
    /// Run at low CPU and I/O priority.
    pub low_priority: bool,
    /// When `sqlguard schedule` runs prune.
    pub prune_schedule: String,
    pub orphan_min_age: HumanDuration,
    /// Where runs push metrics; `None` when no Pushgateway is configured or pushing is off.
    pub metrics: Option<MetricsSettings>,
    /// The HTML report every backup and prune rewrites.
    pub report_html: Option<PathBuf>,
    /// Hooks by command (`hooks`), in [`super::hooks::COMMANDS`] order.
    pub hooks: Vec<(String, super::hooks::HookSet)>,
    /// Notifiers by command (`notify` and the `SQLGUARD_NOTIFY_*_URL` variables).
    pub notify: Vec<(String, Vec<super::notify::Notifier>)>,
    /// Client-side encryption: the global recipients and this host's identities.
    pub encryption: super::encryption::EncryptionSettings,
    /// The test suite's compressor throttle (`SQLGUARD_TEST_COMPRESS_DELAY_MS`).
    #[serde(skip)]
    pub compress_throttle: crate::pipeline::Throttle,
    /// Non-fatal findings (unknown `SQLGUARD_*` variables, …) for the caller to print.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// A name that the configuration does not define: a request error (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} '{name}' (configured: {configured}; see `sqlguard config show`)")]
pub struct Unknown {
    pub kind: &'static str,
    pub name: String,
    pub configured: String,
}

fn find<'a, T>(
    items: &'a [T],
    name_of: impl Fn(&T) -> &String,
    kind: &'static str,
    name: &str,
) -> Result<&'a T, Unknown> {
    items
        .iter()
        .find(|i| name_of(i) == name)
        .ok_or_else(|| Unknown {
            kind,
            name: name.to_string(),
            configured: items
                .iter()
                .map(|i| name_of(i).as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

impl Settings {
    /// Resolves the settings of one run.
    ///
    /// `config_flag` is `--config`; `env` is the process environment. Fails with a
    /// [`ConfigError`] naming the file or variable and the key when anything is wrong.
    pub fn resolve(config_flag: Option<&Path>, env: &Environment) -> Result<Settings, ConfigError> {
        Self::resolve_with(config_flag, false, env)
    }

    /// Resolves the settings from config `text` (as if read from a file called `name`) and
    /// `env`, without touching the filesystem for the config itself: for tests and fuzzing.
    ///
    /// Fails as [`Settings::resolve`] does.
    pub fn resolve_text(
        name: &str,
        text: &str,
        env: &Environment,
    ) -> Result<Settings, ConfigError> {
        Self::resolve_from(Some((PathBuf::from(name), text.to_string())), false, env)
    }

    /// [`Settings::resolve`] with `--no-push`.
    pub fn resolve_with(
        config_flag: Option<&Path>,
        no_push: bool,
        env: &Environment,
    ) -> Result<Settings, ConfigError> {
        let file = match config_path(config_flag, env) {
            Some(path) => {
                let text = super::read_text(&path, super::MAX_CONFIG_BYTES).map_err(|source| {
                    ConfigError::Read {
                        path: path.clone(),
                        cause: source,
                    }
                })?;
                Some((path, text))
            }
            None => None,
        };
        if file.is_none() && !EnvOverrides::read(env)?.sets_server() {
            let searched = std::iter::once(match config_flag {
                Some(p) => format!("--config {}", p.display()),
                None => "--config (not given)".to_string(),
            })
            .chain(std::iter::once(format!(
                "${} ({})",
                ev::CONFIG,
                env.get(ev::CONFIG)
                    .filter(|p| !p.trim().is_empty())
                    .map(|p| format!("{p}, absent"))
                    .unwrap_or_else(|| "not set".into())
            )))
            .chain(DEFAULT_CONFIG_PATHS.iter().map(|p| {
                std::path::absolute(p)
                    .map(|a| a.display().to_string())
                    .unwrap_or_else(|_| p.to_string())
            }))
            .collect::<Vec<_>>()
            .join(", ");
            return Err(ConfigError::NoConfig { searched });
        }
        Self::resolve_from(file, no_push, env)
    }

    /// The server, storage and backup type names the config defines, read from the file alone
    /// (the built-in types when it has no `backup_types`): for shell completion, where what a
    /// full [`Settings::resolve`] needs is often missing (a password file only the service user
    /// may read, a variable set only in the service's environment).
    ///
    /// `None` when no config file is found or it cannot be read or parsed.
    pub fn names_in_file(config_flag: Option<&Path>, env: &Environment) -> Option<ConfigNames> {
        let path = config_path(config_flag, env)?;
        let text = super::read_text(&path, super::MAX_CONFIG_BYTES).ok()?;
        let file = parse_file(&path, &text).ok()?;
        Some(ConfigNames {
            backed_up: file
                .servers
                .iter()
                .filter(|(_, s)| s.restore_only != Some(true))
                .map(|(n, _)| n.clone())
                .collect(),
            archived: file
                .servers
                .iter()
                .filter(|(_, s)| s.binlog.is_some() && s.restore_only != Some(true))
                .map(|(n, _)| n.clone())
                .collect(),
            servers: file.servers.keys().cloned().collect(),
            storages: file.storage.keys().cloned().collect(),
            backup_types: match &file.backup_types {
                Some(t) => t.keys().cloned().collect(),
                None => super::backup_types::default_type_names(),
            },
        })
    }

    fn resolve_from(
        config: Option<(PathBuf, String)>,
        no_push: bool,
        env: &Environment,
    ) -> Result<Settings, ConfigError> {
        let mut warnings = Vec::new();
        let known: Vec<&str> = ev::ALL
            .iter()
            .chain(ev::TESTING)
            .chain(ev::HOOK_FACTS)
            .map(|(n, _)| *n)
            .collect();
        for (name, _) in env.iter() {
            if name.starts_with(ev::PREFIX) && !known.contains(&name.as_str()) {
                warnings.push(format!(
                    "ignoring unknown environment variable {name} (see `sqlguard --help` for the list)"
                ));
            }
        }
        warnings.sort();
        let overrides = EnvOverrides::read(env)?;
        let config_file = config.as_ref().map(|(p, _)| p.clone());
        let file = match &config {
            Some((path, text)) => parse_file(path, text)?,
            None => FileConfig::default(),
        };
        let origin = config_file
            .as_ref()
            .map(|p| format!("config file {}", p.display()))
            .unwrap_or_else(|| "environment".to_string());
        let ctx = Ctx { env, origin };

        let storages = resolve_storages(&ctx, &file, &overrides)?;
        let storage_names: Vec<String> = storages.iter().map(|s| s.name.clone()).collect();
        let servers = resolve_servers(&ctx, &file, &overrides, &storage_names, &mut warnings)?;
        let retry = match &file.retry {
            None => RetrySettings::default(),
            Some(r) => {
                let d = RetrySettings::default();
                let attempts = r.attempts.unwrap_or(d.attempts);
                if !(1..=100).contains(&attempts) {
                    return Err(
                        ctx.invalid("retry.attempts", "must be 1 to 100 (1 means no retry)")
                    );
                }
                let max_backoff = r.max_backoff.unwrap_or(d.max_backoff);
                if max_backoff.as_secs() > 3600 {
                    return Err(ctx.invalid(
                        "retry.max_backoff",
                        format!("{max_backoff} is longer than the 1h sqlguard allows between two attempts"),
                    ));
                }
                RetrySettings {
                    attempts,
                    max_backoff,
                }
            }
        };
        let encryption =
            super::encryption::resolve_encryption(&ctx, file.encryption.as_ref(), &overrides)?;
        let backup_types = resolve_types(&ctx, &file, &overrides, &storages, &encryption)?;
        let lock_dir = match (&overrides.lock_dir, &file.lock_dir) {
            (Some(d), _) => {
                let d = PathBuf::from(d);
                if let Some(m) = super::values::relative_refusal(&d) {
                    return Err(ConfigError::Env {
                        var: ev::LOCK_DIR.to_string(),
                        message: m,
                    });
                }
                d
            }
            (None, Some(d)) => ctx.state_path("lock_dir", d)?,
            (None, None) => crate::joblock::default_lock_dir(),
        };
        let mut settings = Settings {
            config_file,
            servers,
            storages,
            backup_types,
            lock_dir,
            retry,
            prune_after_backup: file.prune_after_backup.unwrap_or(false),
            low_priority: overrides
                .low_priority
                .or(file.low_priority)
                .unwrap_or(false),
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
                .map(|h| ctx.state_path("report.html", h))
                .transpose()?,
            orphan_min_age: file.orphan_min_age.unwrap_or(DEFAULT_ORPHAN_MIN_AGE),
            hooks: super::hooks::resolve_hooks(&ctx, file.hooks.as_ref())?,
            notify: super::notify::resolve_notify(&ctx, file.notify.as_ref(), &overrides)?,
            encryption,
            compress_throttle: crate::pipeline::Throttle(
                env.get(ev::TEST_COMPRESS_DELAY_MS)
                    .and_then(|v| v.trim().parse().ok())
                    .map(std::time::Duration::from_millis),
            ),
            warnings,
        };
        let plain = plain_http_warnings(&settings);
        settings.warnings.extend(plain);
        if let Some(html) = &settings.report_html {
            settings
                .refuse_inside_a_storage(html)
                .map_err(|message| ConfigError::Invalid {
                    origin: "config".into(),
                    key: "report.html".into(),
                    message,
                })?;
        }
        Ok(settings)
    }

    /// Refuses a file to write (`path`) inside a local storage's directory: there it could
    /// replace one of its backups, manifests or index files, which the storage then no longer
    /// holds intact. Where the file lands counts: the path as its links resolve, or, for what
    /// does not exist yet, its nearest existing directory's (directories made below one inside
    /// a storage are inside it too).
    pub fn refuse_inside_a_storage(&self, path: &Path) -> Result<(), String> {
        let Ok(mut probe) = std::path::absolute(path) else {
            return Ok(());
        };
        let landing = loop {
            match probe.canonicalize() {
                Ok(p) => break p,
                Err(_) if probe.pop() => {}
                Err(_) => return Ok(()),
            }
        };
        for s in &self.storages {
            if let StorageKind::Local { path: root } = &s.kind {
                // A root not made yet is compared as written.
                let root_at = root.canonicalize().or_else(|_| std::path::absolute(root));
                if root_at.is_ok_and(|root| landing.starts_with(&root)) {
                    return Err(format!(
                        "{} is inside storage '{}' ({}): a file written there could replace one of its backups or its index; write it outside the storage",
                        path.display(),
                        s.name,
                        root.display()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The servers that are backed up: every one but those marked `restore_only`.
    pub fn backed_up(&self) -> impl Iterator<Item = &ServerSettings> {
        self.servers.iter().filter(|s| !s.restore_only)
    }

    /// The backup type called `name`.
    ///
    /// Fails with [`Unknown`] (a request error, exit code 2) naming the configured ones.
    pub fn backup_type(&self, name: &str) -> Result<&BackupTypeSettings, Unknown> {
        find(&self.backup_types, |t| &t.name, "backup type", name)
    }

    /// The retention of `backup_type` on `storage`: the storage's override, else the type's;
    /// `None` for a type that is not configured.
    pub fn retention(&self, backup_type: &str, storage: &str) -> Option<&Retention> {
        let t = self.backup_type(backup_type).ok()?;
        Some(t.storage_retention.get(storage).unwrap_or(&t.retention))
    }

    /// The hook sets of a run of `command` (of `backup_type`), outermost first: the command's
    /// (`hooks.<command>`), then the type's (`backup_types.<T>.hooks`).
    pub fn hook_sets(
        &self,
        command: &str,
        backup_type: Option<&str>,
    ) -> Vec<&super::hooks::HookSet> {
        let by_command = self
            .hooks
            .iter()
            .filter(|(c, _)| c == command)
            .map(|(_, h)| h);
        let by_type = backup_type
            .and_then(|t| self.backup_type(t).ok())
            .filter(|_| command == "backup")
            .and_then(|t| t.hooks.as_ref());
        by_command.chain(by_type).collect()
    }

    /// The notifiers of a run of `command` (of `backup_type`): the command's, then the type's.
    pub fn notifiers_for(
        &self,
        command: &str,
        backup_type: Option<&str>,
    ) -> Vec<&super::notify::Notifier> {
        let by_command = self
            .notify
            .iter()
            .filter(|(c, _)| c == command)
            .flat_map(|(_, n)| n);
        let by_type = backup_type
            .and_then(|t| self.backup_type(t).ok())
            .filter(|_| command == "backup")
            .into_iter()
            .flat_map(|t| &t.notify);
        by_command.chain(by_type).collect()
    }

    /// The age recipients that objects of `backup_type` are encrypted to: the type's own, else
    /// the global ones (`None` for the type: objects of no backup type, such as binlog
    /// segments); `None` when they are not encrypted. An unknown type has none.
    pub fn recipients(&self, backup_type: Option<&str>) -> Option<&crate::crypt::Recipients> {
        match backup_type {
            Some(t) => self.backup_type(t).ok()?.encryption.as_ref(),
            None => self.encryption.recipients.as_ref(),
        }
    }

    /// The identities that decrypt backups on this host, or why there are none (the message
    /// for an encrypted object that must be decrypted).
    ///
    /// Fails naming the keys to set when no identity file is configured.
    pub fn identities(&self) -> Result<&crate::crypt::Identities, String> {
        self.encryption
            .identities
            .as_ref()
            .ok_or_else(crate::crypt::no_identity_message)
    }

    /// The storage called `name`.
    ///
    /// Fails with [`Unknown`] naming the configured ones.
    pub fn storage(&self, name: &str) -> Result<&StorageSettings, Unknown> {
        find(&self.storages, |s| &s.name, "storage", name)
    }

    /// The server called `name`.
    ///
    /// Fails with [`Unknown`] naming the configured ones.
    pub fn server(&self, name: &str) -> Result<&ServerSettings, Unknown> {
        find(&self.servers, |s| &s.name, "server", name)
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
}

/// The config file to read: `--config`, else `$SQLGUARD_CONFIG`, else the first of
/// [`DEFAULT_CONFIG_PATHS`] that exists; `None` when there is none (the environment alone).
fn config_path(config_flag: Option<&Path>, env: &Environment) -> Option<PathBuf> {
    let configured = match config_flag {
        Some(p) => Some(p.to_path_buf()),
        None => match env.get(ev::CONFIG) {
            // An empty SQLGUARD_CONFIG is reported by the environment check of the resolve.
            Some(p) if !p.trim().is_empty() => Some(PathBuf::from(p)),
            _ => None,
        },
    };
    configured.or_else(|| {
        DEFAULT_CONFIG_PATHS
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
    })
}

/// The names a config file defines: see [`Settings::names_in_file`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigNames {
    pub servers: Vec<String>,
    pub storages: Vec<String>,
    pub backup_types: Vec<String>,
    /// The servers backed up (not `restore_only`).
    pub backed_up: Vec<String>,
    /// The servers whose binary log is archived (with a `binlog` section).
    pub archived: Vec<String>,
}

/// Parses the file text; the error carries the YAML library's line and column.
fn parse_file(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    yaml_serde::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: without_values(&e.to_string()),
    })
}

/// A parser message without the values it quotes (`invalid type: string "…"`, `integer \`…\``,
/// `unknown variant \`…\``): a password or key written one level off is such a value. The
/// key, the kind of value, what was expected, the line and the column stay.
fn without_values(message: &str) -> String {
    const MARKERS: [&str; 3] = ["invalid type: ", "invalid value: ", "unknown variant "];
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some((at, marker)) = MARKERS
        .iter()
        .filter_map(|m| rest.find(m).map(|i| (i, *m)))
        .min_by_key(|(i, _)| *i)
    {
        out.push_str(&rest[..at + marker.len()]);
        let value = &rest[at + marker.len()..];
        // The kind of value (`string`, `integer`, `floating point`, …) comes before its quote.
        let quote = value
            .find(['"', '`'])
            .filter(|&q| !value[..q].contains(','));
        let Some(q) = quote else {
            rest = value;
            continue;
        };
        let kind = value[..q].trim_end();
        out.push_str(if kind.is_empty() { "value" } else { kind });
        let quoted = &value[q + 1..];
        let end = if value[q..].starts_with('"') {
            // The first quote that is not escaped.
            let mut escaped = false;
            quoted
                .char_indices()
                .find(|&(_, c)| {
                    let end = c == '"' && !escaped;
                    escaped = c == '\\' && !escaped;
                    end
                })
                .map_or(quoted.len(), |(i, _)| i + 1)
        } else {
            quoted
                .find("`, expected")
                .or_else(|| quoted.find('`'))
                .map_or(quoted.len(), |i| i + 1)
        };
        rest = &quoted[end..];
    }
    out.push_str(rest);
    out
}

/// Credentials that would cross the network unencrypted, one warning each: a notifier's token
/// (its URL) and headers, and the Pushgateway's password, sent over `http://` to another host.
fn plain_http_warnings(s: &Settings) -> Vec<String> {
    let remote_http = |url: &str| {
        url::Url::parse(url)
            .ok()
            .filter(|u| u.scheme() == "http")
            .and_then(|u| u.host_str().map(String::from))
            .filter(|h| !super::server::is_loopback(h))
    };
    let mut out = std::collections::BTreeSet::new();
    if let Some(m) = s.metrics.as_ref().filter(|m| m.password.is_some()) {
        if let Some(host) = remote_http(&m.pushgateway) {
            out.insert(format!(
                "metrics.password goes to {host} over plain http, readable on the way: use an https:// pushgateway"
            ));
        }
    }
    let notifiers = s
        .notify
        .iter()
        .flat_map(|(_, list)| list)
        .chain(s.backup_types.iter().flat_map(|t| &t.notify));
    for n in notifiers {
        if let Some(host) = remote_http(n.url.expose()) {
            out.insert(format!(
                "{}: its URL{} go{} to {host} over plain http, readable on the way (a ping URL is its token): use an https:// URL",
                n.key,
                if n.headers.is_empty() { "" } else { " and headers" },
                if n.headers.is_empty() { "es" } else { "" },
            ));
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    /// Every variable a secret came from is one to blank, wherever the secret is written: a
    /// password field, a token in a URL, the basic auth of the Pushgateway's URL.
    #[test]
    fn the_variables_secrets_come_from_are_named_for_blanking() {
        let env = crate::config::env::Environment::from(std::collections::HashMap::from(
            [
                ("DBPW", "a"),
                ("PGPW", "b"),
                ("HOOKTOK", "c"),
                ("WHERE", "/b"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        ));
        super::Settings::resolve_text(
            "c.yaml",
            "servers:\n  main:\n    password: \"${DBPW}\"\nstorage:\n  l:\n    type: local\n    path: ${WHERE}\nmetrics:\n  pushgateway: \"http://u:${PGPW}@127.0.0.1:9091\"\nnotify:\n  backup:\n    - webhook: \"http://127.0.0.1:1/x\"\n      headers: {X-Token: \"${HOOKTOK}\"}\n",
            &env,
        )
        .unwrap();
        let names = env.secret_names();
        for secret in ["DBPW", "PGPW", "HOOKTOK", "SQLGUARD_DB_PASSWORD"] {
            assert!(names.contains(secret), "{secret}: {names:?}");
        }
        assert!(!names.contains("WHERE"), "{names:?}");
    }

    #[test]
    fn a_password_longer_than_an_option_file_line_is_refused() {
        let long = "p".repeat(3990) + "\\\\\\\\\\";
        let e = from_yaml(
            &format!("servers:\n  main:\n    password: '{long}'\nstorage:\n  l:\n    type: local\n    path: /b\n"),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("servers.main.password")
                && e.contains("option file line")
                && !e.contains("ppp"),
            "{e}"
        );
        let fits = "p".repeat(3000);
        assert!(from_yaml(
            &format!("servers:\n  main:\n    password: {fits}\nstorage:\n  l:\n    type: local\n    path: /b\n"),
            &[],
        )
        .is_ok());
    }

    #[test]
    fn a_parse_error_never_quotes_a_value() {
        for (yaml, secret) in [
            (
                "servers:\n  main:\n    user: x\n  password: \"IndentSecret-1\"\n",
                "IndentSecret-1",
            ),
            (
                "servers:\n  main: {}\nencryption:\n  age_recipients: AGE-SECRET-KEY-1QQQ\n",
                "AGE-SECRET-KEY-1QQQ",
            ),
            (
                "servers:\n  main: \"a \\\" b\\\" SECRETTAIL\"\n",
                "SECRETTAIL",
            ),
            (
                "servers:\n  main:\n    user: x\n  password: 83920174551\n",
                "83920174551",
            ),
        ] {
            let e = from_yaml(yaml, &[]).unwrap_err().to_string();
            assert!(!e.contains(secret) && e.contains("line"), "{e}");
        }
        for (message, shown) in [
            (
                r#"x: invalid type: string "a\"b, expected c", expected y at line 2"#,
                "x: invalid type: string, expected y at line 2",
            ),
            (
                "x: invalid type: integer `83920174551`, expected a map at line 3",
                "x: invalid type: integer, expected a map at line 3",
            ),
            (
                "x: invalid type: floating point `3.14`, expected a string",
                "x: invalid type: floating point, expected a string",
            ),
            (
                "x: unknown variant `S3cr3t`, expected one of `zstd`, `xz`",
                "x: unknown variant value, expected one of `zstd`, `xz`",
            ),
            (
                "x: invalid type: map, expected a string at line 1",
                "x: invalid type: map, expected a string at line 1",
            ),
            (
                "unknown field `enabled`, expected one of `a`",
                "unknown field `enabled`, expected one of `a`",
            ),
        ] {
            assert_eq!(super::without_values(message), shown);
        }
    }

    #[test]
    fn names_come_from_the_file_even_when_it_does_not_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        let text = "servers:\n  b:\n    user: x\n    password_file: /nonexistent\n  a:\n    user: x\nstorage:\n  s3:\n    type: s3\n    bucket: bkt\n    endpoint: https://${MISSING_HOST}\n";
        std::fs::write(&path, text).unwrap();
        assert!(Settings::resolve(Some(&path), &env(&[])).is_err());
        let names = Settings::names_in_file(Some(&path), &env(&[])).unwrap();
        assert_eq!(names.servers, ["a", "b"]);
        assert_eq!(names.storages, ["s3"]);
        assert_eq!(
            names.backup_types,
            ["hourly", "daily", "weekly", "monthly", "manual"]
        );
        // The variable, as the resolve reads it.
        let names = Settings::names_in_file(None, &env(&[(ev::CONFIG, path.to_str().unwrap())]));
        assert_eq!(names.unwrap().servers, ["a", "b"]);
        std::fs::write(&path, "servers: [\n").unwrap();
        assert_eq!(Settings::names_in_file(Some(&path), &env(&[])), None);
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

    /// Issue 10: an empty string where a value is expected is an error naming the key, never
    /// "the current directory".
    #[test]
    fn empty_values_are_errors_naming_the_key() {
        let base = "servers:\n  main: {}\nstorage:\n  l: {type: local, path: /b}\n";
        for (yaml, key) in [
            (
                "servers:\n  main: {}\nstorage:\n  l: {type: local, path: \"\"}\n".to_string(),
                "storage.l.path",
            ),
            (
                "servers:\n  main: {socket: \" \"}\nstorage:\n  l: {type: local, path: /b}\n"
                    .to_string(),
                "servers.main.socket",
            ),
            (
                "servers:\n  main: {password_file: \"\"}\nstorage:\n  l: {type: local, path: /b}\n"
                    .to_string(),
                "servers.main.password_file",
            ),
            (
                "servers:\n  main: {host: \"${EMPTY}\"}\nstorage:\n  l: {type: local, path: /b}\n"
                    .to_string(),
                "servers.main.host",
            ),
            (format!("{base}lock_dir: \"\"\n"), "lock_dir"),
            (format!("{base}report:\n  html: \"\"\n"), "report.html"),
        ] {
            let e = from_yaml(&yaml, &[("EMPTY", "")]).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains("empty"), "{key}: {e}");
        }
    }

    /// Issue 10: a name written twice is an error naming it and the line, not "the last wins".
    #[test]
    fn duplicate_names_are_errors() {
        for yaml in [
            "servers:\n  main: {user: a}\n  main: {user: b}\nstorage:\n  l: {type: local, path: /b}\n",
            "servers:\n  main: {}\nstorage:\n  l: {type: local, path: /b}\n  l: {type: local, path: /c}\n",
            "servers:\n  main: {}\nstorage:\n  l: {type: local, path: /b}\nbackup_types:\n  d: {retention: {keep_last: 1}}\n  d: {retention: {keep_last: 2}}\n",
        ] {
            let e = from_yaml(yaml, &[]).unwrap_err().to_string();
            assert!(e.contains("defined twice") && e.contains("line"), "{e}");
        }
    }

    /// Issue 10: names that differ only in case would share a directory on a case-insensitive
    /// filesystem; names longer than a path component allows are refused too.
    #[test]
    fn names_differing_only_in_case_or_too_long_are_refused() {
        let e = from_yaml(
            "servers:\n  main: {}\n  Main: {}\nstorage:\n  l: {type: local, path: /b}\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("only in case"), "{e}");
        let long = "s".repeat(65);
        let e = from_yaml(
            &format!("servers:\n  {long}: {{}}\nstorage:\n  l: {{type: local, path: /b}}\n"),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("longer than 64"), "{e}");
    }

    /// Issue 10: credentials in a URL move to basic auth and never print; a password sent to a
    /// remote server without an identity check is warned about, naming the key.
    #[test]
    fn url_credentials_are_taken_out_and_remote_servers_without_identity_checks_warn() {
        let s = from_yaml(
            "servers:\n  main: {host: db.example}\n  local: {host: 127.0.0.1}\n  safe: {host: db2.example, tls: {mode: verify_identity}}\nstorage:\n  l: {type: local, path: /b}\nmetrics:\n  pushgateway: http://bob:p%40ss@gw.example:9091\n",
            &[],
        )
        .unwrap();
        let m = s.metrics.as_ref().unwrap();
        assert_eq!(m.pushgateway, "http://gw.example:9091");
        assert_eq!(m.username.as_deref(), Some("bob"));
        assert_eq!(m.password.as_ref().unwrap().expose(), "p@ss");
        let shown = crate::config::show::file_yaml(&s);
        assert!(
            !shown.contains("p@ss")
                && !shown.contains("p%40ss")
                && shown.contains("password: '***'"),
            "{shown}"
        );
        assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
        assert!(
            s.warnings[0].contains("servers.main.tls.mode")
                && s.warnings[0].contains("db.example:3306"),
            "{:?}",
            s.warnings
        );
        // The Pushgateway's password over plain http to another host, and a notifier's token
        // and headers; never one to this host.
        assert!(
            s.warnings[1].contains("metrics.password") && s.warnings[1].contains("gw.example"),
            "{:?}",
            s.warnings
        );
        let s = from_yaml(
            "servers:\n  main: {}\nstorage:\n  l: {type: local, path: /b}\nnotify:\n  backup:\n    - webhook: http://chat.example/x\n      headers: {Authorization: \"Bearer ${T}\"}\n    - healthchecks: http://127.0.0.1:8000/p\n    - healthchecks: https://hc.example/p\n",
            &[("T", "t")],
        )
        .unwrap();
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(
            s.warnings[0].contains("notify.backup[0]")
                && s.warnings[0].contains("URL and headers go to chat.example"),
            "{:?}",
            s.warnings
        );
        let e = from_yaml(
            "servers:\n  main: {}\nstorage:\n  o: {type: s3, bucket: bkt, endpoint: \"https://AK:SK@s3.example\", access_key_id: a, secret_access_key: b}\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("carries credentials") && !e.contains("SK@"),
            "{e}"
        );
    }

    /// The endpoint is kept in the form a client sends as Host (a request signed for
    /// `LocalHost:80` but sent to `localhost` is refused as a bad signature), and a prefix whose
    /// components a URL would drop or resolve is refused.
    #[test]
    fn s3_endpoint_is_normalized_and_a_prefix_with_empty_or_dot_parts_is_refused() {
        let s3 = |endpoint: &str, prefix: &str| {
            from_yaml(
                &format!("servers:\n  main: {{}}\nstorage:\n  o: {{type: s3, bucket: bkt, endpoint: \"{endpoint}\", prefix: \"{prefix}\", access_key_id: a, secret_access_key: b}}\n"),
                &[],
            )
        };
        for (given, kept) in [
            ("http://LocalHost:80/", "http://localhost"),
            ("https://S3.Example:443", "https://s3.example"),
            ("http://127.0.0.1:9000//", "http://127.0.0.1:9000"),
            (
                "https://s3.example:8443/base/",
                "https://s3.example:8443/base",
            ),
        ] {
            let st = s3(given, "x").unwrap();
            let StorageKind::S3(s) = &st.storages[0].kind else {
                panic!("not s3")
            };
            assert_eq!(s.endpoint, kept, "{given}");
        }
        for bad in ["a//b", "a/./b", "..", "a/../b", "./a"] {
            let e = s3("http://127.0.0.1:9000", bad).unwrap_err().to_string();
            assert!(
                e.contains("storage.o.prefix") && e.contains("component"),
                "{bad}: {e}"
            );
        }
        let st = s3("http://127.0.0.1:9000", "/a/b c/ü/").unwrap();
        let StorageKind::S3(s) = &st.storages[0].kind else {
            panic!("not s3")
        };
        assert_eq!(s.prefix, "a/b c/ü");
    }
}
