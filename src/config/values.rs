//! Resolving one value of the configuration: `${VAR}` expansion, secrets read from `*_file` keys
//! or the environment, names, lists and cron expressions, with errors that name the key.
//!
//! Knows nothing of sections: each section's module calls these with its own keys.

use std::path::{Path, PathBuf};

use super::env::Environment;
use super::ConfigError;
use crate::secret::Secret;

/// Context for resolving values: the environment and where values came from, for messages.
pub(super) struct Ctx<'a> {
    pub(super) env: &'a Environment,
    pub(super) origin: String,
}

impl Ctx<'_> {
    pub(super) fn invalid(
        &self,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.clone(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// A secret written in the config at `key`: expanded, and remembered as a `${VAR}`
    /// reference when it holds one (`Bearer ${TOKEN}`; `config show` prints the text around it
    /// only where it cannot be secret, see [`crate::secret::shown_reference`]); a literal `$${`
    /// is no reference, and a value without one is inline. The mark `config show` prints for
    /// what it hides (`***`) is refused where `config show` prints it (the whole value, or
    /// beside a reference), so that a pasted-back config cannot run with it.
    pub(super) fn secret(&self, key: &str, value: &str) -> Result<Secret, ConfigError> {
        let mark = crate::secret::REDACTED;
        if value.trim() == mark || (has_reference(value) && value.contains(mark)) {
            return Err(self.invalid(
                key,
                "holds `***`, the placeholder `config show` prints for a secret (or the part of one) it hides: write the secret here, or better its file (the `*_file` key) or a ${VAR} reference to all of it",
            ));
        }
        let expanded = self.expand(key, value)?;
        self.mark_secret_references(value);
        let source = if has_reference(value) {
            crate::secret::Source::Reference(value.to_string())
        } else {
            crate::secret::Source::Inline
        };
        Ok(Secret::from(expanded, source))
    }

    /// A path where sqlguard keeps or writes state (a local storage, the lock directory, the
    /// HTML report) at `key`, expanded; refused when relative: it would name another directory
    /// for each working directory, and timers and cron jobs start in `/` or `$HOME`, so they
    /// and a run by hand would keep apart indexes, or locks that do not exclude each other.
    pub(super) fn state_path(&self, key: &str, value: &str) -> Result<PathBuf, ConfigError> {
        let path = PathBuf::from(self.expand(key, value)?);
        relative_refusal(&path).map_or(Ok(path), |m| Err(self.invalid(key, m)))
    }

    /// Notes the variables a secret's value refers to as secrets.
    pub(super) fn mark_secret_references(&self, value: &str) {
        for name in reference_names(value) {
            self.env.mark_secret(name);
        }
    }

    /// Expands `${VAR}` references (`$${` writes a literal `${`). Fails on an unset variable, and
    /// on a value that is empty (or blank) once expanded: an empty path would silently mean the
    /// current directory, an empty host the default one.
    pub(super) fn expand(&self, key: &str, value: &str) -> Result<String, ConfigError> {
        let out = self.expand_allow_empty(key, value)?;
        if out.trim().is_empty() {
            return Err(self.invalid(
                key,
                if value.trim().is_empty() {
                    "is empty: give it a value, or remove the key to use the default".to_string()
                } else {
                    format!("'{value}' expands to an empty value: set the variable it names")
                },
            ));
        }
        Ok(out)
    }

    /// [`Ctx::expand`] for the few keys where empty means something (an S3 prefix: the bucket
    /// root).
    pub(super) fn expand_allow_empty(&self, key: &str, value: &str) -> Result<String, ConfigError> {
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
                if self.env.is_non_utf8(name) {
                    return Err(self.invalid(
                        key,
                        format!("refers to environment variable {name}, which is not valid UTF-8"),
                    ));
                }
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

    pub(super) fn expand_opt(
        &self,
        key: &str,
        value: Option<&String>,
    ) -> Result<Option<String>, ConfigError> {
        value.map(|v| self.expand(key, v)).transpose()
    }
}

/// Reads a secret from a file: the first line, without its line ending.
pub(super) fn read_secret_file(
    path: &Path,
    key: &str,
    origin: &str,
) -> Result<Secret, ConfigError> {
    let text =
        super::read_text(path, super::MAX_SECRET_BYTES).map_err(|e| ConfigError::Invalid {
            origin: origin.to_string(),
            key: key.to_string(),
            message: format!("cannot read secret file {}: {e}", path.display()),
        })?;
    let first = text.lines().next().unwrap_or("");
    if first.is_empty() {
        return Err(ConfigError::Invalid {
            origin: origin.to_string(),
            key: key.to_string(),
            message: format!(
                "secret file {} is empty (its first line is the secret)",
                path.display()
            ),
        });
    }
    Ok(Secret::from(
        first.to_string(),
        crate::secret::Source::File(path.to_path_buf()),
    ))
}

/// The longest name of a server, storage or backup type: it is a path component and a label.
pub const MAX_NAME_LEN: usize = 64;

/// Checks a name used in paths, metrics labels and flags.
pub(super) fn check_name(ctx: &Ctx, key: &str, name: &str) -> Result<(), ConfigError> {
    if name.len() > MAX_NAME_LEN {
        return Err(ctx.invalid(
            key,
            format!("name '{name}' is longer than {MAX_NAME_LEN} characters"),
        ));
    }
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

/// Checks that no two names of a section differ only in case: each is a directory of the storage
/// layout, and on a case-insensitive filesystem or bucket console two such directories are one.
pub(super) fn check_distinct_ignoring_case<'a>(
    ctx: &Ctx,
    section: &str,
    names: impl IntoIterator<Item = &'a String>,
) -> Result<(), ConfigError> {
    let mut seen: std::collections::BTreeMap<String, &String> = Default::default();
    for n in names {
        if let Some(other) = seen.insert(n.to_ascii_lowercase(), n) {
            return Err(ctx.invalid(
                format!("{section}.{n}"),
                format!("differs from `{other}` only in case; on a case-insensitive filesystem both would be one directory: rename one"),
            ));
        }
    }
    Ok(())
}

pub(super) fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Picks a secret from an inline value, a `*_file`, or an environment variable, in that order.
pub(super) fn pick_secret(
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
        return ctx.secret(key, v).map(Some);
    }
    if let Some(f) = file {
        let path = PathBuf::from(ctx.expand(file_key, f)?);
        return read_secret_file(&path, file_key, &ctx.origin).map(Some);
    }
    if env_var.is_empty() {
        return Ok(None);
    }
    ctx.env.mark_secret(env_var);
    Ok(ctx
        .env
        .get(env_var)
        .map(|v| Secret::from(v, crate::secret::Source::Env(env_var.to_string()))))
}

/// Checks a five-field cron expression.
pub(super) fn check_schedule(ctx: &Ctx, key: &str, expr: &str) -> Result<(), ConfigError> {
    crate::schedule::parse(expr)
        .map(drop)
        .map_err(|m| ctx.invalid(key, m))
}

/// Whether `value` holds a `${NAME}` reference (`$${`, a literal `${`, is none).
/// Why `path` cannot be where state is kept: it is relative (see [`Ctx::state_path`]).
pub(super) fn relative_refusal(path: &std::path::Path) -> Option<String> {
    path.is_relative().then(|| {
        format!(
            "'{}' is a relative path: give an absolute one (a relative path names another directory for each working directory, and timers and cron jobs do not start where a run by hand does)",
            path.display()
        )
    })
}

/// The variables `${NAME}` references in `value` name (a `$${` is no reference).
fn reference_names(value: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = value;
    while let Some(pos) = rest.find('$') {
        let after = &rest[pos..];
        if let Some(tail) = after.strip_prefix("$${") {
            rest = tail;
        } else if let Some(body) = after.strip_prefix("${") {
            let Some(end) = body.find('}') else {
                break;
            };
            names.push(&body[..end]);
            rest = &body[end + 1..];
        } else {
            rest = &after[1..];
        }
    }
    names
}

fn has_reference(value: &str) -> bool {
    let mut rest = value;
    while let Some(pos) = rest.find('$') {
        let after = &rest[pos..];
        if let Some(tail) = after.strip_prefix("$${") {
            rest = tail;
        } else if after.starts_with("${") {
            return true;
        } else {
            rest = &after[1..];
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

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
    fn only_a_secret_holding_a_reference_is_shown_as_written() {
        for (written, shown) in [
            ("${DBPW}", true),
            ("${A}${DBPW}", true),
            ("Bearer ${DBPW}", true),
            ("Pa$${ss}word-Literal", false),
            ("$$${DBPW}", false),
        ] {
            let s = from_yaml(
                &format!("servers:\n  main:\n    password: \"{written}\"\nstorage:\n  l:\n    type: local\n    path: /b\n"),
                &[("DBPW", "x"), ("A", "y")],
            )
            .unwrap();
            let out = crate::config::show::file_yaml(&s);
            assert_eq!(out.contains(written), shown, "{written}: {out}");
            assert_eq!(
                out.contains("password: '***'")
                    || out.contains("password: \"***\"")
                    || out.contains("password: ***"),
                !shown,
                "{written}: {out}"
            );
        }
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
        let shown = crate::config::show::file_yaml(&s);
        assert!(
            !shown.contains("topsecret")
                && shown.contains(&format!("password_file: {}", pw.path().display())),
            "{shown}"
        );
    }
}
