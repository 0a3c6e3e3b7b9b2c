//! The `backup_types` section: schedule, storages, compression and retention of each type, and
//! the built-in hourly/daily/weekly/monthly/manual set used when the section is absent.

use std::collections::BTreeMap;

use serde::Serialize;

use super::env::EnvOverrides;
use super::file::{self, FileConfig};
use super::storage::StorageSettings;
use super::values::{check_distinct_ignoring_case, check_name, check_schedule, Ctx};
use super::ConfigError;
use crate::compress::{Algorithm, Compression};
use crate::duration::HumanDuration;
use crate::env_vars as ev;
use crate::retention::Retention;

/// The built-in backup types used when the file has no `backup_types` section.
const DEFAULT_TYPES: &[(&str, Option<&str>, u32)] = &[
    ("hourly", Some("0 * * * *"), 24),
    ("daily", Some("30 2 * * *"), 7),
    ("weekly", Some("0 3 * * 0"), 4),
    ("monthly", Some("0 4 1 * *"), 12),
    ("manual", None, 10),
];

/// The names of the built-in backup types, in their order.
pub fn default_type_names() -> Vec<String> {
    DEFAULT_TYPES
        .iter()
        .map(|(n, _, _)| n.to_string())
        .collect()
}

/// How long records of failed runs stay in the index by default.
pub const DEFAULT_FAILED_KEEP_WITHIN: HumanDuration = HumanDuration(7 * 86_400);

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
    /// A restore test must have passed within this long (`restore_test_within`).
    pub restore_test_within: Option<HumanDuration>,
    /// Hooks of this type's backups (inside the `hooks.backup` ones).
    pub hooks: Option<super::hooks::HookSet>,
    /// Notifiers of this type's backups (besides `notify.backup`).
    pub notify: Vec<super::notify::Notifier>,
    /// The age recipients this type's objects are encrypted to; `None`: not encrypted.
    pub encryption: Option<crate::crypt::Recipients>,
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

pub(super) fn resolve_compression(
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
    // A value the environment gave is named by its variable, not by a key the file lacks.
    let blame = |var: &str, from_env: bool, field: &str, message: String| {
        if from_env {
            ConfigError::Env {
                var: var.into(),
                message,
            }
        } else {
            ctx.invalid(format!("{key}.{field}"), message)
        }
    };
    let level_from_env = env.compression_level.is_some();
    if algorithm == Algorithm::None && level.is_some_and(|l| l != 0) {
        return Err(blame(
            ev::COMPRESSION_LEVEL,
            level_from_env,
            "level",
            "compression `none` takes no level: remove it, or pick zstd or xz".into(),
        ));
    }
    let level = level.unwrap_or(algorithm.default_level());
    let (lo, hi) = algorithm.level_range();
    if level < lo || level > hi {
        return Err(blame(
            ev::COMPRESSION_LEVEL,
            level_from_env,
            "level",
            format!(
                "{level} is out of range for {}: use {lo} to {hi}",
                algorithm.as_str()
            ),
        ));
    }
    let c = Compression {
        algorithm,
        level,
        threads,
    };
    c.check().map_err(|m| {
        blame(
            ev::COMPRESSION_THREADS,
            env.compression_threads.is_some(),
            "threads",
            m,
        )
    })?;
    Ok(c)
}

pub(super) fn resolve_types(
    ctx: &Ctx,
    file: &FileConfig,
    env: &EnvOverrides,
    storages: &[StorageSettings],
    encryption: &super::encryption::EncryptionSettings,
) -> Result<Vec<BackupTypeSettings>, ConfigError> {
    let all_storages: Vec<String> = storages.iter().map(|s| s.name.clone()).collect();
    let defaults: file::UniqueMap<file::BackupTypeFile>;
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
    check_distinct_ignoring_case(ctx, "backup_types", types.keys())?;
    let mut out = Vec::new();
    for (name, t) in types {
        let key = |k: &str| format!("backup_types.{name}.{k}");
        check_name(ctx, &format!("backup_types.{name}"), name)?;
        // `binlog` is what the archive's segments are recorded as (`list --type binlog`, their
        // metrics): a backup type of that name would be taken for them.
        if name.eq_ignore_ascii_case(crate::binlog::TYPE) {
            return Err(ctx.invalid(
                format!("backup_types.{name}"),
                "is reserved for the binary log archive's segments (servers.NAME.binlog): name the type otherwise",
            ));
        }
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
            restore_test_within: t.restore_test_within,
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
            hooks: t
                .hooks
                .as_ref()
                .map(|h| super::hooks::resolve_hook_set(ctx, &key("hooks"), h))
                .transpose()?,
            notify: super::notify::resolve_notifiers(ctx, &key("notify"), &t.notify)?,
            encryption: super::encryption::resolve_type_recipients(
                ctx,
                &format!("backup_types.{name}"),
                t.encryption.as_ref(),
                encryption,
            )?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

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

    /// `binlog` names the archive's segments everywhere (list, metrics): not a backup type.
    #[test]
    fn binlog_is_not_a_backup_type_name() {
        for name in ["binlog", "BinLog"] {
            let e = from_yaml(
                &format!("{MINIMAL}backup_types:\n  {name}:\n    retention: {{keep_last: 3}}\n"),
                &[],
            )
            .unwrap_err()
            .to_string();
            assert!(
                e.contains(&format!("backup_types.{name}")) && e.contains("reserved"),
                "{e}"
            );
        }
    }
}
