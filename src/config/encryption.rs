//! The `encryption` section and each backup type's `encryption`: the age recipients backups
//! are encrypted to, and the identity file that decrypts them on restore hosts.
//!
//! Precedence: `SQLGUARD_AGE_RECIPIENTS[_FILE]` replace every list (like
//! `SQLGUARD_COMPRESSION`); else a type's own list replaces the global one for its backups.
//! The identity file is read once here (refused when others can read it), so that a restore
//! host with a bad key fails at `config check`, naming the key and the fix.

use std::path::PathBuf;

use serde::Serialize;

use super::env::EnvOverrides;
use super::file::{EncryptionFile, TypeEncryptionFile};
use super::values::Ctx;
use super::ConfigError;
use crate::crypt::{Identities, Recipients};
use crate::env_vars as ev;

/// The resolved `encryption` section.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EncryptionSettings {
    /// The recipients of every backup type that names none of its own (and of backups that
    /// belong to no type); `None`: not encrypted.
    pub recipients: Option<Recipients>,
    /// Whether the environment set `recipients`, which then apply to every type.
    #[serde(skip)]
    pub from_env: bool,
    /// The identity file, when this host decrypts.
    pub identity_file: Option<PathBuf>,
    /// Its identities, loaded and checked.
    #[serde(skip)]
    pub identities: Option<Identities>,
}

/// Recipients from a list and a file (both optional), checked; `None` when neither is given.
fn gather(
    list: Option<Vec<String>>,
    file: Option<PathBuf>,
) -> Result<Option<Recipients>, crate::crypt::CryptError> {
    if list.is_none() && file.is_none() {
        return Ok(None);
    }
    let mut all = list.unwrap_or_default();
    if let Some(f) = &file {
        all.extend(Recipients::read_file(f)?);
    }
    Recipients::parse(all).map(Some)
}

/// Recipients written in the file at `key` (`age_recipients` and `age_recipients_file`).
fn from_file(
    ctx: &Ctx,
    key: &str,
    list: Option<&Vec<String>>,
    file: Option<&String>,
) -> Result<Option<Recipients>, ConfigError> {
    let list = list
        .map(|l| {
            l.iter()
                .enumerate()
                .map(|(i, r)| ctx.expand(&format!("{key}.age_recipients[{i}]"), r))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let file_key = format!("{key}.age_recipients_file");
    let file = ctx.expand_opt(&file_key, file)?.map(PathBuf::from);
    let origin = if file.is_some() && list.is_none() {
        file_key.clone()
    } else {
        format!("{key}.age_recipients")
    };
    gather(list, file).map_err(|e| ctx.invalid(origin, e.to_string()))
}

/// Resolves the global section and the environment.
pub(super) fn resolve_encryption(
    ctx: &Ctx,
    file: Option<&EncryptionFile>,
    env: &EnvOverrides,
) -> Result<EncryptionSettings, ConfigError> {
    let env_list = env.age_recipients.as_deref().map(|v| {
        v.split([',', ' ', '\n', '\t'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect::<Vec<_>>()
    });
    let env_file = env.age_recipients_file.as_ref().map(PathBuf::from);
    let (recipients, from_env) = if env_list.is_some() || env_file.is_some() {
        let var = if env_list.is_some() {
            ev::AGE_RECIPIENTS
        } else {
            ev::AGE_RECIPIENTS_FILE
        };
        let r = gather(env_list, env_file).map_err(|e| ConfigError::Env {
            var: var.to_string(),
            message: e.to_string(),
        })?;
        (r, true)
    } else {
        (
            from_file(
                ctx,
                "encryption",
                file.and_then(|f| f.age_recipients.as_ref()),
                file.and_then(|f| f.age_recipients_file.as_ref()),
            )?,
            false,
        )
    };
    let (identity_file, identities) = match &env.age_identity_file {
        Some(p) => {
            let path = PathBuf::from(p);
            let ids = Identities::load(&path).map_err(|e| ConfigError::Env {
                var: ev::AGE_IDENTITY_FILE.to_string(),
                message: e.to_string(),
            })?;
            (Some(path), Some(ids))
        }
        None => {
            let key = "encryption.age_identity_file";
            match ctx.expand_opt(key, file.and_then(|f| f.age_identity_file.as_ref()))? {
                Some(p) => {
                    let path = PathBuf::from(p);
                    let ids =
                        Identities::load(&path).map_err(|e| ctx.invalid(key, e.to_string()))?;
                    (Some(path), Some(ids))
                }
                None => (None, None),
            }
        }
    };
    Ok(EncryptionSettings {
        recipients,
        from_env,
        identity_file,
        identities,
    })
}

/// The recipients of one backup type (`key` is `backup_types.<name>`): the environment's, else
/// its own, else the global ones.
pub(super) fn resolve_type_recipients(
    ctx: &Ctx,
    key: &str,
    own: Option<&TypeEncryptionFile>,
    global: &EncryptionSettings,
) -> Result<Option<Recipients>, ConfigError> {
    let own = from_file(
        ctx,
        &format!("{key}.encryption"),
        own.and_then(|o| o.age_recipients.as_ref()),
        own.and_then(|o| o.age_recipients_file.as_ref()),
    )?;
    if global.from_env {
        return Ok(global.recipients.clone());
    }
    Ok(own.or_else(|| global.recipients.clone()))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use std::os::unix::fs::PermissionsExt;

    fn keypair() -> (String, String) {
        use age::secrecy::ExposeSecret;
        let id = age::x25519::Identity::generate();
        (
            id.to_string().expose_secret().to_string(),
            id.to_public().to_string(),
        )
    }

    /// Issue 15: a type's list replaces the global one; the environment replaces both; a type
    /// without either is not encrypted; `recipients(None)` is the global list (binlog segments).
    #[test]
    fn recipients_resolve_per_type_globally_and_from_the_environment() {
        let (_, g) = keypair();
        let (_, t) = keypair();
        let (_, e) = keypair();
        let yaml = format!("{MINIMAL}encryption:\n  age_recipients: [\"{g}\"]\nbackup_types:\n  daily:\n    retention: {{keep_last: 3}}\n    encryption: {{age_recipients: [\"{t}\"]}}\n  weekly:\n    retention: {{keep_last: 3}}\n");
        let s = from_yaml(&yaml, &[]).unwrap();
        let of = |s: &Settings, ty: Option<&str>| {
            s.recipients(ty)
                .map(|r| r.as_strings().to_vec())
                .unwrap_or_default()
        };
        assert_eq!(of(&s, Some("daily")), vec![t.clone()]);
        assert_eq!(of(&s, Some("weekly")), vec![g.clone()]);
        assert_eq!(of(&s, None), vec![g.clone()]);
        let s = from_yaml(&yaml, &[(ev::AGE_RECIPIENTS, &format!("{e}, {g}"))]).unwrap();
        assert_eq!(of(&s, Some("daily")), [e.clone(), g.clone()]);
        assert_eq!(of(&s, Some("weekly")), [e.clone(), g.clone()]);
        let s = from_yaml(MINIMAL, &[]).unwrap();
        assert!(s.recipients(Some("daily")).is_none() && s.recipients(None).is_none());
    }

    #[test]
    fn bad_recipients_and_identity_files_name_the_key_and_the_fix() {
        let (secret, public) = keypair();
        let e = from_yaml(
            &format!("{MINIMAL}encryption:\n  age_recipients: [\"age1nope\"]\n"),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("encryption.age_recipients")
                && e.contains("recipient 1 ")
                && e.contains("starts with age1"),
            "{e}"
        );
        // A recipients file pointed at a password file never prints the password, and the key
        // is named once.
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("root-password");
        std::fs::write(&pw, "Sup3rSecretPw\n").unwrap();
        let e = from_yaml(
            &format!(
                "{MINIMAL}encryption:\n  age_recipients_file: {}\n",
                pw.display()
            ),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(!e.contains("Sup3rSecretPw"), "{e}");
        assert_eq!(
            e.matches("encryption.age_recipients_file").count(),
            1,
            "{e}"
        );
        assert!(
            e.contains("does not start with age1 (13 characters)"),
            "{e}"
        );
        let e = from_yaml(
            &format!("{MINIMAL}encryption:\n  age_recipients: []\n"),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no recipients"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.txt");
        std::fs::write(&key, format!("{secret}\n")).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let yaml = format!(
            "{MINIMAL}encryption:\n  age_recipients: [\"{public}\"]\n  age_identity_file: {}\n",
            key.display()
        );
        let e = from_yaml(&yaml, &[]).unwrap_err().to_string();
        assert!(
            e.contains("encryption.age_identity_file") && e.contains("chmod 600"),
            "{e}"
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let s = from_yaml(&yaml, &[]).unwrap();
        let ids = s.encryption.identities.as_ref().unwrap();
        assert_eq!(ids.recipients(), vec![public.clone()]);
        let shown = crate::config::show::file_yaml(&s);
        assert!(
            !shown.contains(&secret) && shown.contains("age_identity_file"),
            "{shown}"
        );
        let e = from_yaml(MINIMAL, &[(ev::AGE_IDENTITY_FILE, "/nonexistent/key.txt")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(ev::AGE_IDENTITY_FILE) && e.contains("restore hosts"),
            "{e}"
        );
        let list = dir.path().join("recipients.txt");
        std::fs::write(&list, format!("# ops\n{public}\n")).unwrap();
        let s = from_yaml(
            MINIMAL,
            &[(ev::AGE_RECIPIENTS_FILE, list.to_str().unwrap())],
        )
        .unwrap();
        assert_eq!(s.recipients(Some("manual")).unwrap().as_strings(), [public]);
    }
}
