//! The YAML config file, exactly as written: every struct rejects unknown keys.
//!
//! This module only describes and parses the file. Defaults, environment overrides, `${VAR}`
//! expansion, secret files and cross-checks happen once, in [`super::settings`].

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::duration::HumanDuration;

/// A map of named sections (servers, storages, types, labels) that refuses a name written twice:
/// serde's own maps keep the last one silently, so two `main:` servers would quietly become one.
#[derive(Debug, Clone, PartialEq)]
pub struct UniqueMap<V>(pub BTreeMap<String, V>);

impl<V> Default for UniqueMap<V> {
    fn default() -> Self {
        UniqueMap(BTreeMap::new())
    }
}

impl<V> std::ops::Deref for UniqueMap<V> {
    type Target = BTreeMap<String, V>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<V> std::ops::DerefMut for UniqueMap<V> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<V> FromIterator<(String, V)> for UniqueMap<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        UniqueMap(iter.into_iter().collect())
    }
}

impl<'a, V> IntoIterator for &'a UniqueMap<V> {
    type Item = (&'a String, &'a V);
    type IntoIter = std::collections::btree_map::Iter<'a, String, V>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for UniqueMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Unique<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Unique<V> {
            type Value = UniqueMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of names")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    if out.contains_key(&key) {
                        return Err(serde::de::Error::custom(format!(
                            "`{key}` is defined twice in this map (the second would silently replace the first)"
                        )));
                    }
                    let value = map.next_value()?;
                    out.insert(key, value);
                }
                Ok(UniqueMap(out))
            }
        }
        d.deserialize_map(Unique(PhantomData))
    }
}

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Database servers by name.
    #[serde(default)]
    pub servers: UniqueMap<ServerFile>,
    /// Storages by name.
    #[serde(default)]
    pub storage: UniqueMap<StorageFile>,
    /// Backup types by name; absent means the built-in hourly/daily/weekly/monthly/manual set.
    pub backup_types: Option<UniqueMap<BackupTypeFile>>,
    /// Directory for lock files of non-local storages.
    pub lock_dir: Option<String>,
    /// Retries of transient storage failures.
    pub retry: Option<RetryFile>,
    /// Run a prune after every backup run (one timer for both).
    pub prune_after_backup: Option<bool>,
    /// Cron expression for `sqlguard schedule`'s prune entry (default `15 5 * * *`).
    pub prune_schedule: Option<String>,
    /// Temp files and incomplete uploads older than this are orphans that prune removes.
    pub orphan_min_age: Option<HumanDuration>,
    /// Prometheus Pushgateway.
    pub metrics: Option<MetricsFile>,
    /// The HTML report that every backup and prune rewrites.
    pub report: Option<ReportFile>,
    /// Run sqlguard and its children at low CPU and I/O priority (nice 10, best-effort I/O 7).
    pub low_priority: Option<bool>,
    /// Programs run before and after the runs of each command.
    pub hooks: Option<HooksFile>,
    /// Where the runs of each command report their start and end.
    pub notify: Option<NotifyFile>,
    /// Client-side encryption of every backup object with age.
    pub encryption: Option<EncryptionFile>,
}

/// The `encryption` section: who can read backups (recipients: public keys, all a backup host
/// needs) and, on restore hosts, the private keys that decrypt them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionFile {
    /// age public keys (`age1…`) every backup type is encrypted to, unless it names its own.
    pub age_recipients: Option<Vec<String>>,
    /// A file of age public keys, one per line (`#` comments); adds to `age_recipients`.
    pub age_recipients_file: Option<String>,
    /// The age identity file (private keys) that decrypts backups; restore hosts only.
    pub age_identity_file: Option<String>,
}

/// A backup type's own recipients, which replace the global ones for its backups.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeEncryptionFile {
    pub age_recipients: Option<Vec<String>>,
    pub age_recipients_file: Option<String>,
}

/// Hooks by command; each command is opted in by its key. A new command that takes hooks is a
/// field here and a name in [`super::hooks::COMMANDS`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksFile {
    pub backup: Option<HookSetFile>,
    pub prune: Option<HookSetFile>,
    pub verify: Option<HookSetFile>,
    pub binlog: Option<HookSetFile>,
}

impl HooksFile {
    /// Each command's set, in [`super::hooks::COMMANDS`] order.
    pub fn by_command(&self) -> [(&'static str, Option<&HookSetFile>); 4] {
        [
            ("backup", self.backup.as_ref()),
            ("prune", self.prune.as_ref()),
            ("verify", self.verify.as_ref()),
            ("binlog", self.binlog.as_ref()),
        ]
    }
}

/// The hooks of one command or backup type: each an argv list, taken literally.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookSetFile {
    /// Runs before the run's work; a non-zero exit skips the run (exit 1).
    pub before: Option<Vec<String>>,
    pub after_success: Option<Vec<String>>,
    pub after_failure: Option<Vec<String>>,
    /// Runs after every run, last.
    pub finally: Option<Vec<String>>,
    /// How long each hook may run before its process group is killed (default 5m).
    pub timeout: Option<HumanDuration>,
}

/// Notifiers by command, each a list.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyFile {
    #[serde(default)]
    pub backup: Vec<NotifierFile>,
    #[serde(default)]
    pub prune: Vec<NotifierFile>,
    #[serde(default)]
    pub verify: Vec<NotifierFile>,
    #[serde(default)]
    pub binlog: Vec<NotifierFile>,
}

impl NotifyFile {
    /// Each command's list, in [`super::hooks::COMMANDS`] order.
    pub fn by_command(&self) -> [(&'static str, &[NotifierFile]); 4] {
        [
            ("backup", &self.backup),
            ("prune", &self.prune),
            ("verify", &self.verify),
            ("binlog", &self.binlog),
        ]
    }
}

/// One notifier: exactly one of `healthchecks`, `uptime_kuma`, `webhook` (a URL).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifierFile {
    pub healthchecks: Option<String>,
    pub uptime_kuma: Option<String>,
    pub webhook: Option<String>,
    /// Request headers of a webhook; values may be `${VAR}` references.
    #[serde(default)]
    pub headers: UniqueMap<String>,
    /// Timeout of each request (default 10s).
    pub timeout: Option<HumanDuration>,
    /// Retries of a failed request (default 2).
    pub retries: Option<u32>,
    /// When true, a notification that fails makes the run exit 1.
    pub required: Option<bool>,
}

/// The report kept up to date by every run.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportFile {
    /// Path of the HTML dashboard to rewrite (atomically) after every backup and prune.
    pub html: Option<String>,
}

/// Where and how each run pushes its metrics.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsFile {
    /// Pushgateway base URL, e.g. `http://pushgateway:9091`.
    pub pushgateway: Option<String>,
    /// `job` grouping label (default `sqlguard`).
    pub job: Option<String>,
    /// `instance` grouping label (default: this host's name).
    pub instance: Option<String>,
    /// Extra grouping labels, e.g. `{env: prod}`.
    #[serde(default)]
    pub grouping: UniqueMap<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<String>,
    /// PEM file of CAs for an https Pushgateway.
    pub ca_file: Option<String>,
    /// Timeout of each push (default 5s).
    pub timeout: Option<HumanDuration>,
    /// When true, a failed push makes the run exit 1.
    pub required: Option<bool>,
}

/// Retries of transient storage failures (connection errors, timeouts, HTTP 5xx, 429).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryFile {
    /// Attempts in all, the first included.
    pub attempts: Option<u32>,
    /// Upper bound of the exponential backoff between attempts.
    pub max_backoff: Option<HumanDuration>,
}

/// One database server.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub socket: Option<String>,
    pub user: Option<String>,
    /// Inline password; `${VAR}` references are expanded. Prefer `password_file` or the environment.
    pub password: Option<String>,
    pub password_file: Option<String>,
    pub tls: Option<TlsFile>,
    pub databases: Option<DatabasesFile>,
    /// Extra options appended to the dump tool's command line.
    #[serde(default)]
    pub dump_options: Vec<String>,
    /// Dump tool to run instead of `mariadb-dump`/`mysqldump` found on PATH.
    pub dump_tool: Option<String>,
    /// Client to run instead of `mariadb`/`mysql` found on PATH (for discovery).
    pub client_tool: Option<String>,
    /// Databases of this server dumped at once (1-16, default 1).
    pub parallel: Option<u32>,
    /// The account restores and restore tests use instead of the backup account.
    pub restore: Option<RestoreAccountFile>,
    /// A restore target only: never backed up, scheduled or counted in metrics.
    pub restore_only: Option<bool>,
    /// Also back up the server's accounts (users, roles, grants) in every whole-server run.
    pub accounts: Option<bool>,
    /// Archive the server's binary log (`sqlguard binlog`) for point-in-time recovery.
    pub binlog: Option<BinlogFile>,
}

/// The binary log archive of a server.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinlogFile {
    /// Storage names; absent means every storage.
    pub storages: Option<Vec<String>>,
    pub compression: Option<CompressionFile>,
    /// Cron expression of the `sqlguard binlog` timer (default every minute).
    pub schedule: Option<String>,
    /// How far back a restore to any point in time must stay possible (default 7d).
    pub window: Option<crate::duration::HumanDuration>,
}

/// The account that restores into a server.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreAccountFile {
    pub user: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<String>,
}

/// TLS towards the database server.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    pub mode: Option<TlsMode>,
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
}

/// How strictly the connection to the database server uses TLS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// Whatever the client tool does by default.
    #[default]
    Default,
    Disabled,
    Required,
    VerifyCa,
    VerifyIdentity,
}

impl TlsMode {
    /// Parses the config spelling (`verify_identity`, …); `None` for anything else.
    pub fn parse(s: &str) -> Option<TlsMode> {
        Some(
            match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
                "default" => TlsMode::Default,
                "disabled" => TlsMode::Disabled,
                "required" => TlsMode::Required,
                "verify_ca" => TlsMode::VerifyCa,
                "verify_identity" => TlsMode::VerifyIdentity,
                _ => return None,
            },
        )
    }
}

/// Which databases of a server to back up.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabasesFile {
    pub include: Option<Vec<String>>,
    pub exclude: Option<Vec<String>>,
}

/// One storage target.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageFile {
    #[serde(rename = "type")]
    pub kind: Option<StorageKindName>,
    /// Local directory (type `local`).
    pub path: Option<String>,
    /// S3 endpoint URL, e.g. `https://s3.eu-central-1.amazonaws.com` (type `s3`).
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub bucket: Option<String>,
    /// Key prefix inside the bucket.
    pub prefix: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`) instead of virtual-host style.
    pub path_style: Option<bool>,
    pub access_key_id: Option<String>,
    pub access_key_id_file: Option<String>,
    pub secret_access_key: Option<String>,
    pub secret_access_key_file: Option<String>,
    /// PEM file of extra CA certificates to trust for this endpoint.
    pub ca_file: Option<String>,
    /// `x-amz-storage-class` of uploaded backups, e.g. `STANDARD_IA`.
    pub storage_class: Option<String>,
    /// `x-amz-server-side-encryption` of uploads: `AES256` or `aws:kms`.
    pub sse: Option<String>,
    /// KMS key id for `sse: aws:kms`.
    pub sse_kms_key_id: Option<String>,
}

/// The kinds of storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageKindName {
    Local,
    S3,
}

/// One backup type (hourly, daily, … or a custom name).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupTypeFile {
    /// Cron expression (5 fields) saying how often this type runs.
    pub schedule: Option<String>,
    /// Storage names; absent means every storage.
    pub storages: Option<Vec<String>>,
    pub compression: Option<CompressionFile>,
    pub retention: Option<RetentionFile>,
    /// Retention for some storages instead of `retention`, by storage name.
    #[serde(default)]
    pub storage_retention: UniqueMap<RetentionFile>,
    /// A restore test of this type's backups must have passed within this long (metric and
    /// alert); absent means restore tests are not expected.
    pub restore_test_within: Option<crate::duration::HumanDuration>,
    /// Hooks of this type's backups, run inside the `hooks.backup` ones.
    pub hooks: Option<HookSetFile>,
    /// Notifiers of this type's backups, besides `notify.backup`.
    #[serde(default)]
    pub notify: Vec<NotifierFile>,
    /// The recipients this type's backups are encrypted to, instead of the global ones.
    pub encryption: Option<TypeEncryptionFile>,
}

/// Compression of a backup type.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressionFile {
    pub algorithm: Option<crate::compress::Algorithm>,
    pub level: Option<i32>,
    pub threads: Option<u32>,
}

/// Retention of a backup type.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionFile {
    pub keep_last: Option<u32>,
    pub keep_within: Option<HumanDuration>,
    pub forever: Option<bool>,
    pub failed_keep_within: Option<HumanDuration>,
}

#[cfg(test)]
mod tests {
    use super::FileConfig;

    /// The keys a section accepts, as the parser lists them for an unknown one.
    fn keys_of(yaml_with_bogus: &str) -> Vec<String> {
        let err = yaml_serde::from_str::<FileConfig>(yaml_with_bogus)
            .unwrap_err()
            .to_string();
        let list = err
            .split("expected one of ")
            .nth(1)
            .or_else(|| err.split("expected ").nth(1))
            .unwrap_or_else(|| panic!("{err}"));
        list.split([',', ' '])
            .filter_map(|k| k.split('`').nth(1).map(String::from))
            .collect()
    }

    /// Every key of every section is documented in the README's configuration reference, so the
    /// docs cannot fall behind the schema.
    #[test]
    fn readme_documents_every_config_key() {
        let readme = include_str!("../../README.md");
        let reference = readme
            .split("## Configuration")
            .nth(1)
            .and_then(|s| s.split("### Environment").next())
            .expect("README has a configuration reference");
        let sections = [
            "bogus: 1",
            "servers: {m: {bogus: 1}}",
            "servers: {m: {tls: {bogus: 1}}}",
            "servers: {m: {databases: {bogus: 1}}}",
            "servers: {m: {binlog: {bogus: 1}}}",
            "storage: {s: {bogus: 1}}",
            "backup_types: {t: {bogus: 1}}",
            "backup_types: {t: {compression: {bogus: 1}}}",
            "backup_types: {t: {retention: {bogus: 1}}}",
            "retry: {bogus: 1}",
            "metrics: {bogus: 1}",
            "report: {bogus: 1}",
            "hooks: {bogus: 1}",
            "hooks: {backup: {bogus: 1}}",
            "notify: {bogus: 1}",
            "notify: {backup: [{bogus: 1}]}",
            "encryption: {bogus: 1}",
            "backup_types: {t: {encryption: {bogus: 1}}}",
        ];
        let mut total = 0;
        for s in sections {
            for key in keys_of(s) {
                total += 1;
                let documented = reference.contains(&format!("`{key}`"))
                    || reference.contains(&format!(".{key}`"))
                    || reference.contains(&format!(".{key},"))
                    || reference.contains(&format!("`.{key}"))
                    || reference.contains(&format!("{key}:"));
                assert!(
                    documented,
                    "README's configuration reference does not document `{key}` (section {s})"
                );
            }
        }
        assert!(total > 50, "only {total} keys found");
    }
}
