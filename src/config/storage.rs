//! The `storage` section: local directories and S3-compatible buckets, their credentials, and
//! the `SQLGUARD_STORAGE_PATH` / `SQLGUARD_S3_*` overrides.

use std::path::PathBuf;

use serde::Serialize;

use super::env::EnvOverrides;
use super::file::{self, FileConfig, StorageKindName};
use super::values::{check_distinct_ignoring_case, check_name, pick_secret, Ctx};
use super::ConfigError;
use crate::env_vars as ev;
use crate::secret::{redact_url, Secret};

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

/// S3's bucket naming rules, widened to what older (us-east-1) buckets and S3-compatible servers
/// allow: up to 255 characters, capitals and underscores; never a separator, a dot pair or space.
fn is_bucket_name(b: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    (3..=255).contains(&b.len())
        && b.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && edge(b.chars().next())
        && edge(b.chars().last())
        && !b.contains("..")
}

fn resolve_s3(ctx: &Ctx, name: &str, sf: &file::StorageFile) -> Result<S3Settings, ConfigError> {
    let key = |k: &str| format!("storage.{name}.{k}");
    let bucket = ctx
        .expand_opt(&key("bucket"), sf.bucket.as_ref())?
        .ok_or_else(|| ctx.invalid(key("bucket"), "is required for an s3 storage"))?;
    // The bucket becomes a host label or the first path segment of every request: a `/`, `..`
    // or space there would address another bucket, or another path, than the one configured.
    if !is_bucket_name(&bucket) {
        return Err(ctx.invalid(
            key("bucket"),
            format!(
                "'{}' is not a bucket name: write 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit (an older bucket may also hold capitals and underscores)",
                crate::ui::plain_text(&bucket)
            ),
        ));
    }
    let region = ctx
        .expand_opt(&key("region"), sf.region.as_ref())?
        .unwrap_or_else(|| "us-east-1".to_string());
    let endpoint = ctx
        .expand_opt(&key("endpoint"), sf.endpoint.as_ref())?
        .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
    if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
        return Err(ctx.invalid(
            key("endpoint"),
            format!(
                "'{}' must start with https:// (or http:// for a server without TLS)",
                redact_url(&endpoint)
            ),
        ));
    }
    let parsed = match url::Url::parse(&endpoint) {
        Err(e) => {
            return Err(ctx.invalid(
                key("endpoint"),
                format!("'{}' is not a URL: {e}", redact_url(&endpoint)),
            ))
        }
        Ok(u) if !u.username().is_empty() || u.password().is_some() => {
            return Err(ctx.invalid(
                key("endpoint"),
                format!(
                    "'{}' carries credentials: put them in access_key_id and secret_access_key (or their *_file keys) instead",
                    redact_url(&endpoint)
                ),
            ))
        }
        Ok(u) => u,
    };
    // The form a client sends as Host (host lower-cased, a default port dropped), so that the
    // Host a request is signed with is the one that goes out.
    let endpoint = parsed.as_str().trim_end_matches('/').to_string();
    let prefix = sf
        .prefix
        .as_ref()
        .map(|p| ctx.expand_allow_empty(&key("prefix"), p))
        .transpose()?
        .unwrap_or_default()
        .trim_matches('/')
        .to_string();
    // An empty, `.` or `..` component is dropped or resolved by the URL a request is sent to,
    // so keys would land elsewhere than where listing (prune, index rebuild) looks.
    if !prefix.is_empty()
        && prefix
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(ctx.invalid(
            key("prefix"),
            format!("'{prefix}' has an empty, '.' or '..' component: write it as a/b/c"),
        ));
    }
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
        endpoint,
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

pub(super) fn resolve_storages(
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
                    var: env.s3_vars().join(", "),
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
    check_distinct_ignoring_case(ctx, "storage", sections.iter().map(|(n, _)| n))?;
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
                    path: ctx.state_path(&key("path"), path)?,
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
        if let Some(m) = super::values::relative_refusal(std::path::Path::new(p)) {
            return Err(ConfigError::Env {
                var: crate::env_vars::STORAGE_PATH.to_string(),
                message: m,
            });
        }
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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

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
        assert!(!crate::config::show::file_yaml(&s).contains("SK\n"));
    }

    #[test]
    fn a_bucket_name_that_would_address_another_path_is_refused() {
        for bad in [
            "b",
            "a/../other",
            "bkt/x",
            "my bucket",
            "-bkt",
            "bkt.",
            "a..b",
            "bkt?x",
        ] {
            let e = from_yaml(
                &format!("servers:\n  m: {{}}\nstorage:\n  o:\n    type: s3\n    bucket: \"{bad}\"\n    access_key_id: a\n    secret_access_key: b\n"),
                &[],
            )
            .unwrap_err()
            .to_string();
            assert!(
                e.contains("storage.o.bucket") && e.contains("is not a bucket name"),
                "{bad}: {e}"
            );
        }
        for good in ["bkt", "my-backups.2026", "Legacy_Bucket"] {
            assert!(is_bucket_name(good), "{good}");
        }
    }

    #[test]
    fn s3_without_credentials_or_with_local_keys_is_refused() {
        let e = from_yaml(
            "servers:\n  m: {}\nstorage:\n  o:\n    type: s3\n    bucket: bkt\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("no credentials") && e.contains("AWS_ACCESS_KEY_ID"),
            "{e}"
        );
        let e = from_yaml(
            "servers:\n  m: {}\nstorage:\n  o:\n    type: local\n    path: /x\n    bucket: bkt\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("storage.o.bucket") && e.contains("not a key of a local storage"),
            "{e}"
        );
        let e = from_yaml("servers:\n  m: {}\nstorage:\n  o:\n    type: s3\n    bucket: bkt\n    endpoint: s3.example.com\n", &[(ev::AWS_ACCESS_KEY_ID, "a"), (ev::AWS_SECRET_ACCESS_KEY, "b")]).unwrap_err().to_string();
        assert!(e.contains("https://"), "{e}");
    }
}
