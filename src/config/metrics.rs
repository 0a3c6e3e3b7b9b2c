//! The `metrics` section: the Pushgateway, the grouping of pushed metrics, basic auth and TLS,
//! and the `SQLGUARD_PUSHGATEWAY_URL` / `SQLGUARD_NO_PUSH` overrides.

use std::path::PathBuf;

use serde::Serialize;

use super::env::EnvOverrides;
use super::file;
use super::values::{pick_secret, Ctx};
use super::ConfigError;
use crate::duration::HumanDuration;
use crate::secret::{redact_url, Secret};

/// The Pushgateway and the grouping of pushed metrics.
#[derive(Debug, Clone, Serialize)]
pub struct MetricsSettings {
    pub pushgateway: String,
    pub job: String,
    pub instance: String,
    /// Extra grouping labels, in order.
    pub grouping: Vec<(String, String)>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub ca_file: Option<PathBuf>,
    pub timeout: HumanDuration,
    pub required: bool,
}

/// Labels sqlguard itself uses in grouping keys or metrics; extra grouping labels must differ.
pub const RESERVED_LABELS: &[&str] = &[
    "job", "instance", "server", "database", "type", "storage", "command", "config",
];

pub(super) fn resolve_metrics(
    ctx: &Ctx,
    m: Option<&file::MetricsFile>,
    env: &EnvOverrides,
    no_push: bool,
) -> Result<Option<MetricsSettings>, ConfigError> {
    // The URL may carry the basic auth password (`http://user:${PW}@host`): what it names is
    // a secret's, pushed or not.
    if let Some(u) = m.and_then(|m| m.pushgateway.as_ref()) {
        ctx.mark_secret_references(u);
    }
    if no_push || env.no_push.unwrap_or(false) {
        return Ok(None);
    }
    let empty = file::MetricsFile::default();
    let m = m.unwrap_or(&empty);
    let url = match (&env.pushgateway_url, &m.pushgateway) {
        (Some(u), _) => u.clone(),
        (None, Some(u)) => ctx.expand("metrics.pushgateway", u)?,
        (None, None) => return Ok(None),
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ctx.invalid(
            "metrics.pushgateway",
            format!("'{}' must start with http:// or https://", redact_url(&url)),
        ));
    }
    // Credentials written into the URL move to basic auth, so the URL prints safely.
    let mut parsed = url::Url::parse(&url).map_err(|e| {
        ctx.invalid(
            "metrics.pushgateway",
            format!("'{}' is not a URL: {e}", redact_url(&url)),
        )
    })?;
    let mut url_user = None;
    let mut url_password = None;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        if m.username.is_some() || m.password.is_some() || m.password_file.is_some() {
            return Err(ctx.invalid(
                "metrics.pushgateway",
                "has credentials in the URL and in metrics.username/password: keep one",
            ));
        }
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        url_user = Some(decode(parsed.username()));
        url_password = parsed.password().map(|p| Secret::new(decode(p)));
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
    }
    // The group's path is appended to the URL: a query or fragment would end up before it.
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(ctx.invalid(
            "metrics.pushgateway",
            format!(
                "'{}' has a query or fragment (?…, #…), which the Pushgateway's push path cannot follow: give the base URL, and credentials in metrics.username/password",
                redact_url(&url)
            ),
        ));
    }
    let url = parsed.to_string();
    // Names that start with `__` are Prometheus's own: the Pushgateway refuses them.
    let label_ok = |l: &str| {
        l.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !l.starts_with("__")
    };
    let mut grouping = Vec::new();
    for (k, v) in &m.grouping {
        if !label_ok(k) || RESERVED_LABELS.contains(&k.as_str()) {
            return Err(ctx.invalid(
                format!("metrics.grouping.{k}"),
                format!(
                    "'{k}' cannot be a grouping label: use [A-Za-z_][A-Za-z0-9_]*, not starting with __, and none of {}",
                    RESERVED_LABELS.join(", ")
                ),
            ));
        }
        grouping.push((k.clone(), ctx.expand(&format!("metrics.grouping.{k}"), v)?));
    }
    let password = match url_password {
        Some(p) => Some(p),
        None => pick_secret(
            ctx,
            "metrics.password",
            m.password.as_ref(),
            "metrics.password_file",
            m.password_file.as_ref(),
            "",
        )?,
    };
    let ca_file = ctx
        .expand_opt("metrics.ca_file", m.ca_file.as_ref())?
        .map(PathBuf::from);
    Ok(Some(MetricsSettings {
        pushgateway: url.trim_end_matches('/').to_string(),
        job: ctx
            .expand_opt("metrics.job", m.job.as_ref())?
            .unwrap_or_else(|| "sqlguard".into()),
        instance: ctx
            .expand_opt("metrics.instance", m.instance.as_ref())?
            .unwrap_or_else(crate::host::hostname),
        grouping,
        username: match url_user {
            Some(u) => Some(u),
            None => ctx.expand_opt("metrics.username", m.username.as_ref())?,
        },
        password,
        ca_file,
        timeout: match m.timeout.unwrap_or(HumanDuration(5)) {
            t if (1..=600).contains(&t.as_secs()) => t,
            t => return Err(ctx.invalid("metrics.timeout", format!("{t} is outside 1s to 10m"))),
        },
        required: m.required.unwrap_or(false),
    }))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn settings_that_would_fail_every_push_are_refused() {
        for (metrics, key) in [
            (
                "pushgateway: http://gw:9091\n  grouping: {__env: prod}",
                "metrics.grouping.__env",
            ),
            (
                "pushgateway: \"http://gw:9091/?tenant=a\"",
                "metrics.pushgateway",
            ),
            ("pushgateway: \"http://gw:9091/#x\"", "metrics.pushgateway"),
        ] {
            let e = from_yaml(&format!("{MINIMAL}metrics:\n  {metrics}\n"), &[])
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{metrics}: {e}");
        }
        assert!(from_yaml(
            &format!("{MINIMAL}metrics:\n  pushgateway: http://gw:9091/base/\n  grouping: {{_env: prod}}\n"),
            &[]
        )
        .is_ok());
    }
}
