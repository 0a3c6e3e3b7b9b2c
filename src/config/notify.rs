//! The `notify` section (per command) and `backup_types.<T>.notify` (per backup type): where a
//! run reports its start and end over HTTP, in one of three conventions (healthchecks.io pings,
//! Uptime Kuma pushes, JSON webhooks), plus the `SQLGUARD_NOTIFY_*_URL` variables that add a
//! notifier to every command for environment-only containers.
//!
//! A notifier's URL is a [`Secret`]: ping URLs carry their token in the path or the query, so
//! they print as `scheme://host/***` ([`redact_token_url`]) everywhere but in the request itself.

use serde::Serialize;

use super::env::EnvOverrides;
use super::file::NotifierFile;
use super::values::Ctx;
use super::ConfigError;
use crate::duration::HumanDuration;
use crate::env_vars as ev;
use crate::secret::{Secret, Source, REDACTED};

/// How long each request may take by default.
pub const DEFAULT_NOTIFY_TIMEOUT: HumanDuration = HumanDuration(10);

/// Retries of a failed request by default (3 attempts in all).
pub const DEFAULT_NOTIFY_RETRIES: u32 = 2;

/// The conventions a notifier speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyKind {
    /// healthchecks.io: POST `<url>/start`, `<url>` on success, `<url>/fail` on failure, with a
    /// plain-text summary body.
    Healthchecks,
    /// Uptime Kuma push monitor: GET `<url>?status=up|down&msg=…` at the end.
    UptimeKuma,
    /// POST of the run's JSON document at the end, with optional headers.
    Webhook,
}

impl NotifyKind {
    /// The config key that names it.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyKind::Healthchecks => "healthchecks",
            NotifyKind::UptimeKuma => "uptime_kuma",
            NotifyKind::Webhook => "webhook",
        }
    }
}

/// One resolved notifier.
#[derive(Debug, Clone, Serialize)]
pub struct Notifier {
    pub kind: NotifyKind,
    pub url: Secret,
    /// Extra request headers (webhooks only); every value is treated as a secret.
    pub headers: Vec<(String, Secret)>,
    pub timeout: HumanDuration,
    pub retries: u32,
    pub required: bool,
    /// Where it is defined, e.g. `notify.backup[0]` or `SQLGUARD_NOTIFY_WEBHOOK_URL`.
    #[serde(skip)]
    pub key: String,
}

impl Notifier {
    /// How it prints in logs: its kind and its URL without the token.
    pub fn label(&self) -> String {
        format!(
            "{} {}",
            self.kind.as_str(),
            redact_token_url(self.url.expose())
        )
    }
}

/// A URL as `scheme://host[:port]/***`: the path and query of ping URLs hold their token.
/// Anything that does not parse prints as `***`.
pub fn redact_token_url(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(u) if u.host_str().is_some() => {
            let host = u.host_str().unwrap_or_default();
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let hidden = (u.path() != "/" && !u.path().is_empty()) || u.query().is_some();
            format!(
                "{}://{host}{port}/{}",
                u.scheme(),
                if hidden { REDACTED } else { "" }
            )
        }
        _ => REDACTED.to_string(),
    }
}

/// Resolves one notifier written at `key`.
fn resolve_notifier(ctx: &Ctx, key: &str, f: &NotifierFile) -> Result<Notifier, ConfigError> {
    let given: Vec<(NotifyKind, &String)> = [
        (NotifyKind::Healthchecks, f.healthchecks.as_ref()),
        (NotifyKind::UptimeKuma, f.uptime_kuma.as_ref()),
        (NotifyKind::Webhook, f.webhook.as_ref()),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let (kind, raw) = match given.as_slice() {
        [one] => *one,
        [] => {
            return Err(ctx.invalid(
                key,
                "names no target: set one of healthchecks, uptime_kuma or webhook to a URL",
            ))
        }
        _ => {
            return Err(ctx.invalid(
                key,
                "sets more than one of healthchecks, uptime_kuma, webhook: write one notifier per list entry",
            ))
        }
    };
    let url_key = format!("{key}.{}", kind.as_str());
    let url = check_url(ctx, &url_key, ctx.secret(&url_key, raw)?, raw)?;
    if kind != NotifyKind::Webhook && !f.headers.is_empty() {
        return Err(ctx.invalid(
            format!("{key}.headers"),
            "only webhooks take headers: remove them, or make this a webhook",
        ));
    }
    let mut headers = Vec::new();
    for (name, value) in &f.headers {
        let hk = format!("{key}.headers.{name}");
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !valid {
            return Err(ctx.invalid(&hk, format!("'{name}' is not an HTTP header name")));
        }
        let secret = ctx.secret(&hk, value)?;
        if secret.expose().contains(['\r', '\n']) {
            return Err(ctx.invalid(&hk, "contains a line break"));
        }
        // What a request could not carry fails every notification: refused here, once.
        if http::HeaderValue::from_str(secret.expose()).is_err() {
            return Err(ctx.invalid(
                &hk,
                "contains a control character, which an HTTP header value cannot carry",
            ));
        }
        headers.push((name.clone(), secret));
    }
    let timeout = f.timeout.unwrap_or(DEFAULT_NOTIFY_TIMEOUT);
    if !(1..=300).contains(&timeout.as_secs()) {
        return Err(ctx.invalid(
            format!("{key}.timeout"),
            format!("{timeout} is outside 1s to 5m"),
        ));
    }
    let retries = f.retries.unwrap_or(DEFAULT_NOTIFY_RETRIES);
    if retries > 10 {
        return Err(ctx.invalid(format!("{key}.retries"), "must be 0 to 10"));
    }
    Ok(Notifier {
        kind,
        url,
        headers,
        timeout,
        retries,
        required: f.required.unwrap_or(false),
        key: key.to_string(),
    })
}

/// Checks a notifier URL: http(s), a host, no credentials, not the placeholder `config show`
/// prints for an inline one.
fn check_url(ctx: &Ctx, key: &str, url: Secret, raw: &str) -> Result<Secret, ConfigError> {
    if raw.contains(REDACTED) {
        return Err(ctx.invalid(
            key,
            "holds `***`, the placeholder `config show` prints for a URL written inline: write the URL, or better a ${VAR} reference to it",
        ));
    }
    let parsed = url::Url::parse(url.expose()).map_err(|e| {
        ctx.invalid(
            key,
            format!("'{}' is not a URL: {e}", redact_token_url(url.expose())),
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ctx.invalid(
            key,
            format!(
                "'{}' must be an http:// or https:// URL with a host",
                redact_token_url(url.expose())
            ),
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ctx.invalid(
            key,
            "carries credentials (user:password@): put a token in the URL's path as the service gives it, or (webhooks) an Authorization header",
        ));
    }
    Ok(url)
}

/// Resolves a list of notifiers written at `key` (`notify.backup`, `backup_types.daily.notify`).
pub(super) fn resolve_notifiers(
    ctx: &Ctx,
    key: &str,
    list: &[NotifierFile],
) -> Result<Vec<Notifier>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, n)| resolve_notifier(ctx, &format!("{key}[{i}]"), n))
        .collect()
}

/// Resolves the `notify` section, one list per command, plus the notifiers of the
/// `SQLGUARD_NOTIFY_*_URL` variables, which every command gets (unless the file already names
/// the same URL for that command, as a pasted-back `config show` does).
pub(super) fn resolve_notify(
    ctx: &Ctx,
    f: Option<&super::file::NotifyFile>,
    env: &EnvOverrides,
) -> Result<Vec<(String, Vec<Notifier>)>, ConfigError> {
    let empty = super::file::NotifyFile::default();
    let f = f.unwrap_or(&empty);
    let from_env: Vec<Notifier> = [
        (
            NotifyKind::Healthchecks,
            ev::NOTIFY_HEALTHCHECKS_URL,
            &env.notify_healthchecks_url,
        ),
        (
            NotifyKind::UptimeKuma,
            ev::NOTIFY_UPTIME_KUMA_URL,
            &env.notify_uptime_kuma_url,
        ),
        (
            NotifyKind::Webhook,
            ev::NOTIFY_WEBHOOK_URL,
            &env.notify_webhook_url,
        ),
    ]
    .into_iter()
    .filter_map(|(kind, var, v)| v.as_ref().map(|v| (kind, var, v)))
    .map(|(kind, var, v)| {
        let url = Secret::from(v.clone(), Source::Env(var.to_string()));
        let url = check_url(ctx, var, url, v).map_err(|e| match e {
            ConfigError::Invalid { message, .. } => ConfigError::Env {
                var: var.to_string(),
                message,
            },
            other => other,
        })?;
        Ok(Notifier {
            kind,
            url,
            headers: Vec::new(),
            timeout: DEFAULT_NOTIFY_TIMEOUT,
            retries: DEFAULT_NOTIFY_RETRIES,
            required: false,
            key: var.to_string(),
        })
    })
    .collect::<Result<_, ConfigError>>()?;
    let mut out = Vec::new();
    for (command, list) in f.by_command() {
        let mut resolved = resolve_notifiers(ctx, &format!("notify.{command}"), list)?;
        // The environment's notifiers are for the runs whose outcome a check watches: a
        // `binlog` run every minute would ping a daily backup's failed check green again.
        let from_env = if command == "binlog" {
            &[][..]
        } else {
            &from_env[..]
        };
        for n in from_env {
            let named = resolved
                .iter()
                .any(|r| r.kind == n.kind && r.url.expose() == n.url.expose());
            if !named {
                resolved.push(n.clone());
            }
        }
        if !resolved.is_empty() {
            out.push((command.to_string(), resolved));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn token_urls_print_without_path_or_query() {
        assert_eq!(
            redact_token_url("https://hc-ping.com/1f2e3d4c-aaaa"),
            "https://hc-ping.com/***"
        );
        assert_eq!(
            redact_token_url("http://kuma:3001/api/push/TOK?status=up"),
            "http://kuma:3001/***"
        );
        assert_eq!(redact_token_url("https://h.example/"), "https://h.example/");
        assert_eq!(redact_token_url("garbage TOKEN"), "***");
    }

    #[test]
    fn notifiers_resolve_and_bad_ones_name_the_key() {
        let s = from_yaml(
            &format!("{MINIMAL}notify:\n  backup:\n    - healthchecks: https://hc.example/${{HC}}\n    - webhook: https://hook.example/x\n      headers: {{Authorization: \"Bearer ${{TOKEN}}\"}}\n      required: true\n      retries: 0\n"),
            &[("HC", "uuid-1"), ("TOKEN", "t0k"), (ev::NOTIFY_UPTIME_KUMA_URL, "http://kuma/api/push/K")],
        )
        .unwrap();
        let backup = s.notifiers_for("backup", None);
        assert_eq!(backup.len(), 3);
        assert_eq!(backup[0].url.expose(), "https://hc.example/uuid-1");
        assert_eq!(backup[1].headers[0].1.expose(), "Bearer t0k");
        assert!(backup[1].required && backup[1].retries == 0);
        assert_eq!(backup[2].kind, NotifyKind::UptimeKuma);
        // The variable's notifier serves every command.
        assert_eq!(s.notifiers_for("prune", None).len(), 1);
        let shown = crate::config::show::file_yaml(&s);
        assert!(
            !shown.contains("uuid-1") && !shown.contains("t0k") && !shown.contains("push/K"),
            "{shown}"
        );
        assert!(
            shown.contains("healthchecks: https://hc.example/${HC}")
                && shown.contains("Authorization: Bearer ${TOKEN}")
                && shown.contains("uptime_kuma: ${SQLGUARD_NOTIFY_UPTIME_KUMA_URL}"),
            "{shown}"
        );
        for (yaml, key) in [
            ("notify:\n  prune:\n    - {}\n", "notify.prune[0]"),
            (
                "notify:\n  prune:\n    - {healthchecks: http://a/b, webhook: http://a/c}\n",
                "notify.prune[0]",
            ),
            (
                "notify:\n  prune:\n    - {healthchecks: ftp://a/b}\n",
                "notify.prune[0].healthchecks",
            ),
            (
                "notify:\n  prune:\n    - {healthchecks: 'https://a/***'}\n",
                "holds `***`",
            ),
            (
                "notify:\n  prune:\n    - {webhook: 'https://u:p@a/x'}\n",
                "credentials",
            ),
            (
                "notify:\n  prune:\n    - {healthchecks: 'https://a/x', headers: {A: b}}\n",
                "notify.prune[0].headers",
            ),
            (
                "notify:\n  prune:\n    - {webhook: 'https://a/x', headers: {'A B': b}}\n",
                "header name",
            ),
            (
                "notify:\n  prune:\n    - {webhook: 'https://a/x', headers: {A: \"x\\x01y\"}}\n",
                "control character",
            ),
            (
                "notify:\n  verify:\n    - {webhook: 'https://a/x', retries: 11}\n",
                "notify.verify[0].retries",
            ),
        ] {
            let e = from_yaml(&format!("{MINIMAL}{yaml}"), &[])
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{key}: {e}");
            assert!(!e.contains("u:p@"), "{e}");
        }
        let e = from_yaml(MINIMAL, &[(ev::NOTIFY_WEBHOOK_URL, "nope")])
            .unwrap_err()
            .to_string();
        assert!(e.contains(ev::NOTIFY_WEBHOOK_URL), "{e}");
    }
}
