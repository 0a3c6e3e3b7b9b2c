//! `config show`: the resolved configuration in the shape a user writes it (maps by name, the
//! config file's keys, every default filled in), so that it can be pasted back as a config file.
//!
//! A secret prints as its source: a `*_file` key, the `${VAR}` reference it was written as (the
//! text around the reference only where it cannot be secret, else `***`), or a `${VAR}`
//! reference to the environment variable it came from. A secret written inline prints as `***`,
//! which `config check` refuses, so a pasted-back config never runs with a placeholder.

use std::path::PathBuf;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::backup_types::BackupTypeSettings;
use super::hooks::HookSet;
use super::notify::{redact_token_url, Notifier};
use super::server::ServerSettings;
use super::storage::{StorageKind, StorageSettings};
use super::Settings;
use crate::duration::HumanDuration;
use crate::retention::Retention;
use crate::secret::{Secret, Source, REDACTED};

/// Named entries serialized as a map in their configured order.
struct Named<T>(Vec<(String, T)>);

impl<T: Serialize> Serialize for Named<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// A secret under `key` (or `<key>_file`), as its source says; nothing when absent.
struct SecretField<'a> {
    key: &'static str,
    secret: Option<&'a Secret>,
}

impl Serialize for SecretField<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if let Some(secret) = self.secret {
            match secret.source() {
                Source::File(path) => {
                    m.serialize_entry(&format!("{}_file", self.key), path)?;
                }
                Source::Reference(raw) => {
                    m.serialize_entry(self.key, &crate::secret::shown_reference(raw))?
                }
                Source::Env(var) => m.serialize_entry(self.key, &format!("${{{var}}}"))?,
                Source::Inline => m.serialize_entry(self.key, REDACTED)?,
            }
        }
        m.end()
    }
}

#[derive(Serialize)]
struct Tls<'a> {
    mode: super::file::TlsMode,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca: Option<&'a PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cert: Option<&'a PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a PathBuf>,
}

#[derive(Serialize)]
struct Databases<'a> {
    include: &'a [String],
    exclude: &'a [String],
}

#[derive(Serialize)]
struct RestoreAccount<'a> {
    user: &'a str,
    #[serde(flatten)]
    password: SecretField<'a>,
}

#[derive(Serialize)]
struct Server<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    socket: Option<&'a PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(flatten)]
    password: SecretField<'a>,
    tls: Tls<'a>,
    databases: Databases<'a>,
    dump_options: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    dump_tool: Option<&'a PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_tool: Option<&'a PathBuf>,
    parallel: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    restore: Option<RestoreAccount<'a>>,
    restore_only: bool,
    accounts: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    binlog: Option<&'a super::server::BinlogSettings>,
}

fn server(s: &ServerSettings) -> Server<'_> {
    Server {
        host: s.host.as_deref(),
        port: s.port,
        socket: s.socket.as_ref(),
        user: s.user.as_deref(),
        password: SecretField {
            key: "password",
            secret: s.password.as_ref(),
        },
        tls: Tls {
            mode: s.tls.mode,
            ca: s.tls.ca.as_ref(),
            cert: s.tls.cert.as_ref(),
            key: s.tls.key.as_ref(),
        },
        databases: Databases {
            include: &s.include,
            exclude: &s.exclude,
        },
        dump_options: &s.dump_options,
        dump_tool: s.dump_tool.as_ref(),
        client_tool: s.client_tool.as_ref(),
        parallel: s.parallel,
        restore: s.restore_user.as_deref().map(|user| RestoreAccount {
            user,
            password: SecretField {
                key: "password",
                secret: s.restore_password.as_ref(),
            },
        }),
        restore_only: s.restore_only,
        accounts: s.accounts,
        binlog: s.binlog.as_ref(),
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Storage<'a> {
    Local {
        path: &'a PathBuf,
    },
    S3 {
        endpoint: &'a str,
        region: &'a str,
        bucket: &'a str,
        prefix: &'a str,
        path_style: bool,
        access_key_id: &'a str,
        #[serde(flatten)]
        secret_access_key: SecretField<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        ca_file: Option<&'a PathBuf>,
        #[serde(skip_serializing_if = "Option::is_none")]
        storage_class: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sse: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sse_kms_key_id: Option<&'a str>,
    },
}

fn storage(s: &StorageSettings) -> Storage<'_> {
    match &s.kind {
        StorageKind::Local { path } => Storage::Local { path },
        StorageKind::S3(s3) => Storage::S3 {
            endpoint: &s3.endpoint,
            region: &s3.region,
            bucket: &s3.bucket,
            prefix: &s3.prefix,
            path_style: s3.path_style,
            access_key_id: &s3.access_key_id,
            secret_access_key: SecretField {
                key: "secret_access_key",
                secret: Some(&s3.secret_access_key),
            },
            ca_file: s3.ca_file.as_ref(),
            storage_class: s3.storage_class.as_deref(),
            sse: s3.sse.as_deref(),
            sse_kms_key_id: s3.sse_kms_key_id.as_deref(),
        },
    }
}

#[derive(Serialize)]
struct RetentionShape {
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_last: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_within: Option<HumanDuration>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    forever: bool,
    failed_keep_within: HumanDuration,
}

fn retention(r: &Retention) -> RetentionShape {
    RetentionShape {
        keep_last: r.keep_last,
        keep_within: r.keep_within,
        forever: r.forever,
        failed_keep_within: r.failed_keep_within,
    }
}

#[derive(Serialize)]
struct BackupType<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule: Option<&'a str>,
    storages: &'a [String],
    compression: &'a crate::compress::Compression,
    retention: RetentionShape,
    #[serde(skip_serializing_if = "Named::is_empty")]
    storage_retention: Named<RetentionShape>,
    #[serde(skip_serializing_if = "Option::is_none")]
    restore_test_within: Option<crate::duration::HumanDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hooks: Option<Hooks<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notify: Vec<NotifierShape>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption: Option<Encryption<'a>>,
}

/// `encryption` (and a type's): recipients resolved (files read), the identity file's path.
#[derive(Serialize)]
struct Encryption<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    age_recipients: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    age_identity_file: Option<&'a PathBuf>,
}

#[derive(Serialize)]
struct Hooks<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    before: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    after_success: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    after_failure: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finally: Option<&'a [String]>,
    timeout: HumanDuration,
}

fn hooks(h: &HookSet) -> Hooks<'_> {
    Hooks {
        before: h.before.as_ref().map(|x| x.argv.as_slice()),
        after_success: h.after_success.as_ref().map(|x| x.argv.as_slice()),
        after_failure: h.after_failure.as_ref().map(|x| x.argv.as_slice()),
        finally: h.finally.as_ref().map(|x| x.argv.as_slice()),
        timeout: h.timeout,
    }
}

/// A value that may hold a secret, as its source says: a `${VAR}` reference as written, the
/// variable it came from, or (written inline) `inline` — a placeholder that `config check`
/// refuses.
fn by_source(secret: &Secret, inline: impl FnOnce(&str) -> String) -> String {
    match secret.source() {
        Source::Reference(raw) => crate::secret::shown_reference(raw),
        Source::Env(var) => format!("${{{var}}}"),
        Source::File(path) => path.display().to_string(),
        Source::Inline => inline(secret.expose()),
    }
}

#[derive(Serialize)]
struct NotifierShape {
    #[serde(flatten)]
    url: Named<String>,
    #[serde(skip_serializing_if = "Named::is_empty")]
    headers: Named<String>,
    timeout: HumanDuration,
    retries: u32,
    required: bool,
}

fn notifier(n: &Notifier) -> NotifierShape {
    NotifierShape {
        url: Named(vec![(
            n.kind.as_str().to_string(),
            by_source(&n.url, redact_token_url),
        )]),
        headers: Named(
            n.headers
                .iter()
                .map(|(k, v)| (k.clone(), by_source(v, |_| REDACTED.to_string())))
                .collect(),
        ),
        timeout: n.timeout,
        retries: n.retries,
        required: n.required,
    }
}

impl<T> Named<T> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn backup_type(t: &BackupTypeSettings) -> BackupType<'_> {
    BackupType {
        schedule: t.schedule.as_deref(),
        storages: &t.storages,
        compression: &t.compression,
        retention: retention(&t.retention),
        storage_retention: Named(
            t.storage_retention
                .iter()
                .map(|(k, r)| (k.clone(), retention(r)))
                .collect(),
        ),
        restore_test_within: t.restore_test_within,
        hooks: t.hooks.as_ref().map(hooks),
        notify: t.notify.iter().map(notifier).collect(),
        encryption: t.encryption.as_ref().map(|r| Encryption {
            age_recipients: Some(r.as_strings()),
            age_identity_file: None,
        }),
    }
}

#[derive(Serialize)]
struct Metrics<'a> {
    pushgateway: &'a str,
    job: &'a str,
    instance: &'a str,
    grouping: Named<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(flatten)]
    password: SecretField<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_file: Option<&'a PathBuf>,
    timeout: HumanDuration,
    required: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    html: &'a PathBuf,
}

#[derive(Serialize)]
struct Retry {
    attempts: u32,
    max_backoff: HumanDuration,
}

/// The whole document.
#[derive(Serialize)]
struct Shape<'a> {
    servers: Named<Server<'a>>,
    storage: Named<Storage<'a>>,
    backup_types: Named<BackupType<'a>>,
    retry: Retry,
    prune_after_backup: bool,
    prune_schedule: &'a str,
    orphan_min_age: HumanDuration,
    low_priority: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics: Option<Metrics<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<Report<'a>>,
    #[serde(skip_serializing_if = "Named::is_empty")]
    hooks: Named<Hooks<'a>>,
    #[serde(skip_serializing_if = "Named::is_empty")]
    notify: Named<Vec<NotifierShape>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption: Option<Encryption<'a>>,
    lock_dir: &'a PathBuf,
}

/// The configuration as a config file (YAML), secrets as their sources.
pub fn file_yaml(s: &Settings) -> String {
    let shape = Shape {
        servers: Named(
            s.servers
                .iter()
                .map(|x| (x.name.clone(), server(x)))
                .collect(),
        ),
        storage: Named(
            s.storages
                .iter()
                .map(|x| (x.name.clone(), storage(x)))
                .collect(),
        ),
        backup_types: Named(
            s.backup_types
                .iter()
                .map(|t| (t.name.clone(), backup_type(t)))
                .collect(),
        ),
        retry: Retry {
            attempts: s.retry.attempts,
            max_backoff: s.retry.max_backoff,
        },
        prune_after_backup: s.prune_after_backup,
        prune_schedule: &s.prune_schedule,
        orphan_min_age: s.orphan_min_age,
        low_priority: s.low_priority,
        metrics: s.metrics.as_ref().map(|m| Metrics {
            pushgateway: &m.pushgateway,
            job: &m.job,
            instance: &m.instance,
            grouping: Named(
                m.grouping
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str()))
                    .collect(),
            ),
            username: m.username.as_deref(),
            password: SecretField {
                key: "password",
                secret: m.password.as_ref(),
            },
            ca_file: m.ca_file.as_ref(),
            timeout: m.timeout,
            required: m.required,
        }),
        report: s.report_html.as_ref().map(|html| Report { html }),
        hooks: Named(s.hooks.iter().map(|(c, h)| (c.clone(), hooks(h))).collect()),
        notify: Named(
            s.notify
                .iter()
                .map(|(c, list)| (c.clone(), list.iter().map(notifier).collect()))
                .collect(),
        ),
        encryption: (s.encryption.recipients.is_some() || s.encryption.identity_file.is_some())
            .then(|| Encryption {
                age_recipients: s.encryption.recipients.as_ref().map(|r| r.as_strings()),
                age_identity_file: s.encryption.identity_file.as_ref(),
            }),
        lock_dir: &s.lock_dir,
    };
    let mut text = format!(
        "# sqlguard config show{}: the resolved configuration, defaults filled in.\n# Secrets print as their source; one written inline prints as *** (write it, or its *_file).\n",
        s.config_file
            .as_ref()
            .map(|p| format!(" of {}", p.display()))
            .unwrap_or_default()
    );
    text.push_str(
        &yaml_serde::to_string(&shape)
            .unwrap_or_else(|e| format!("# cannot render the configuration: {e}\n")),
    );
    text
}
