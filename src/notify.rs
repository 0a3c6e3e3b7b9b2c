//! Sends one notification: a healthchecks.io ping, an Uptime Kuma push, or a JSON webhook, with
//! the notifier's timeout and retries, over the same HTTP client as the Pushgateway (attohttpc,
//! already brought by rust-s3; no second HTTP or TLS stack).
//!
//! | convention | start | success | failure |
//! | --- | --- | --- | --- |
//! | `healthchecks` | POST `<url>/start` | POST `<url>` | POST `<url>/fail` (plain-text summary body) |
//! | `uptime_kuma` | — | GET `<url>?status=up&msg=…` | GET `<url>?status=down&msg=…` |
//! | `webhook` | — | POST the run's JSON document | the same |
//!
//! It decides nothing about the run: [`crate::run`] says when to send and what a failure means.
//! Its messages name the notifier by [`Notifier::label`], never by its URL, which holds a token.

use std::time::Duration;

use crate::config::notify::{Notifier, NotifyKind};
use crate::secret::REDACTED;

/// The moment of a run a notification reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Start,
    Success,
    Failure,
}

/// What a notification carries.
#[derive(Debug)]
pub struct Message<'a> {
    /// A short plain-text summary (healthchecks body; Uptime Kuma's `msg`, cut to one line).
    pub text: &'a str,
    /// The run's JSON document (webhooks).
    pub json: &'a str,
}

/// The longest `msg` sent to Uptime Kuma.
const KUMA_MSG_MAX: usize = 200;

/// Sends `event` to `n`; `Ok(false)` when its convention has nothing to send for the event.
///
/// Fails with a message naming the notifier (without its token) when every attempt failed: a
/// connection error, a timeout, or an HTTP status other than 2xx (4xx other than 408 and 429 are
/// not retried).
pub fn send(n: &Notifier, event: Event, msg: &Message) -> Result<bool, String> {
    let base = n.url.expose();
    let timeout = Duration::from_secs(n.timeout.as_secs().max(1));
    let request = match (n.kind, event) {
        (NotifyKind::Healthchecks, _) => {
            let url = match event {
                Event::Start => with_segment(base, "start"),
                Event::Success => Ok(base.to_string()),
                Event::Failure => with_segment(base, "fail"),
            }
            .map_err(|e| format!("{}: {e}", n.label()))?;
            let body = msg.text.to_string();
            Box::new(move || {
                attohttpc::post(&url)
                    .timeout(timeout)
                    .follow_redirects(false)
                    .header("Content-Type", "text/plain; charset=utf-8")
                    .text(body.clone())
            })
                as Box<dyn Fn() -> attohttpc::RequestBuilder<attohttpc::body::Text<String>>>
        }
        (NotifyKind::UptimeKuma, Event::Start) | (NotifyKind::Webhook, Event::Start) => {
            return Ok(false)
        }
        (NotifyKind::UptimeKuma, _) => {
            let line = msg.text.lines().next().unwrap_or_default();
            let short: String = line.chars().take(KUMA_MSG_MAX).collect();
            let status = if event == Event::Success {
                "up"
            } else {
                "down"
            };
            let url = kuma_url(base, status, &short).map_err(|e| format!("{}: {e}", n.label()))?;
            Box::new(move || {
                attohttpc::get(&url)
                    .timeout(timeout)
                    .follow_redirects(false)
                    .text(String::new())
            })
        }
        (NotifyKind::Webhook, _) => {
            let url = base.to_string();
            let body = msg.json.to_string();
            let mut headers = Vec::new();
            for (k, v) in &n.headers {
                let name = http::HeaderName::from_bytes(k.as_bytes());
                let value = http::HeaderValue::from_str(v.expose());
                match (name, value) {
                    (Ok(name), Ok(mut value)) => {
                        value.set_sensitive(true);
                        headers.push((name, value));
                    }
                    _ => {
                        return Err(format!(
                            "{}: header {k} is not a valid HTTP header",
                            n.label()
                        ))
                    }
                }
            }
            Box::new(move || {
                let mut req = attohttpc::post(&url)
                    .timeout(timeout)
                    .follow_redirects(false)
                    .header("Content-Type", "application/json");
                for (k, v) in &headers {
                    req = req.header(k.clone(), v.clone());
                }
                req.text(body.clone())
            })
        }
    };
    let attempts = n.retries + 1;
    let mut made = 0;
    let mut last = String::new();
    for attempt in 0..attempts {
        if attempt > 0 {
            // A run asked to stop sends once, and does not wait to retry.
            if crate::signals::stopping() {
                break;
            }
            std::thread::sleep(Duration::from_secs((1u64 << (attempt - 1).min(3)).min(8)));
        }
        made += 1;
        match answer(request(), timeout) {
            Ok(status) if status.is_success() => return Ok(true),
            Ok(status) => {
                last = crate::net::status_text(status);
                let retry = status.is_server_error() || matches!(status.as_u16(), 408 | 429);
                if !retry {
                    break;
                }
            }
            Err(e) => last = e,
        }
    }
    Err(format!(
        "{}: {}{}",
        n.label(),
        hide_token(&last, base),
        if made > 1 {
            format!(" (after {made} attempts)")
        } else {
            String::new()
        }
    ))
}

/// Sends `request` and gives its status; once the run is asked to stop, the wait is bounded
/// ([`crate::net::until_stopped`]).
fn answer(
    request: attohttpc::RequestBuilder<attohttpc::body::Text<String>>,
    timeout: Duration,
) -> Result<http::StatusCode, String> {
    crate::net::until_stopped(move || {
        // The HTTP client starts a thread per request to enforce its deadline.
        match crate::threads::spawning_inside("http-deadline", || request.send()) {
            Ok(Ok(resp)) => Ok(resp.status()),
            Ok(Err(e)) => Err(crate::net::plain_http(&e, timeout)),
            Err(e) => Err(e.to_string()),
        }
    })?
}

/// `base` with one more path segment (`…/start`), its query kept.
fn with_segment(base: &str, segment: &str) -> Result<String, String> {
    let mut url = url::Url::parse(base).map_err(|e| format!("not a URL: {e}"))?;
    url.path_segments_mut()
        .map_err(|()| "not a URL with a path".to_string())?
        .pop_if_empty()
        .push(segment);
    Ok(url.to_string())
}

/// `base` with `status` and `msg` set (replacing any the push URL was copied with).
fn kuma_url(base: &str, status: &str, msg: &str) -> Result<String, String> {
    let mut url = url::Url::parse(base).map_err(|e| format!("not a URL: {e}"))?;
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !matches!(k.as_ref(), "status" | "msg" | "ping"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair("status", status)
        .append_pair("msg", msg)
        .append_pair("ping", "");
    Ok(url.to_string())
}

/// `text` with the URL and its path (where ping tokens live) replaced by `***`.
fn hide_token(text: &str, url: &str) -> String {
    let mut out = text.replace(url, REDACTED);
    if let Ok(u) = url::Url::parse(url) {
        if u.path().len() > 1 {
            out = out.replace(u.path(), REDACTED);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_urls_follow_each_convention() {
        assert_eq!(
            with_segment("https://hc.example/abc", "start").unwrap(),
            "https://hc.example/abc/start"
        );
        assert_eq!(
            with_segment("https://hc.example/key/slug/?create=1", "fail").unwrap(),
            "https://hc.example/key/slug/fail?create=1"
        );
        assert_eq!(
            kuma_url(
                "http://k:3001/api/push/T?status=up&msg=OK&ping=",
                "down",
                "2 of 3 & more"
            )
            .unwrap(),
            "http://k:3001/api/push/T?status=down&msg=2+of+3+%26+more&ping="
        );
        assert_eq!(
            hide_token("error at http://h/p/TOKEN: /p/TOKEN", "http://h/p/TOKEN"),
            "error at ***: ***"
        );
    }
}
