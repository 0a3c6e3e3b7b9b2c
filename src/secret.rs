//! A secret string (password, secret key) that never prints itself.
//!
//! `Debug`, `Display` and `Serialize` all write `***`, so a secret cannot leak through logs,
//! errors, `config show` or JSON output by accident. The only way to the value is [`Secret::expose`],
//! and the only callers are the writers of the 0600 client defaults file and the storage signers.

use std::fmt;

use serde::{Serialize, Serializer};

/// What every secret prints as.
pub const REDACTED: &str = "***";

/// A secret value; see the module docs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String, Source);

/// Where a secret came from: what `config show` prints in its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Written in the config as it is (`config show` prints a placeholder that `config check`
    /// refuses).
    Inline,
    /// Written as a `${VAR}` reference (printed as written).
    Reference(String),
    /// The first line of this file (printed as the `*_file` key).
    File(std::path::PathBuf),
    /// This environment variable (printed as a `${VAR}` reference to it).
    Env(String),
}

impl Secret {
    /// Wraps a value written inline.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into(), Source::Inline)
    }

    /// Wraps a value that came from `source`.
    pub fn from(value: impl Into<String>, source: Source) -> Self {
        Secret(value.into(), source)
    }

    /// Where it came from.
    pub fn source(&self) -> &Source {
        &self.1
    }

    /// The value itself. Call only to hand it to the place that needs it, never to print it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Replaces every occurrence of the secret in `text` with `***` (for child-process stderr).
    pub fn redact_in(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.0, REDACTED)
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

/// How a secret written around `${VAR}` references prints (`config show`, and so what
/// `schedule --format kubernetes` would copy into a ConfigMap): the references as written, and
/// of the text around them only what cannot be secret; everything else prints as `***`.
///
/// Kept: in an `http(s)://` URL, its scheme and host (a `user:password@` as `***@`), and the
/// words of its path and query of at most 8 lowercase letters (`api`, `push`, `status`) or at
/// most 3 characters (`OK`), with the `/ ? & = #` between them; elsewhere, a leading HTTP
/// authorization scheme (`Bearer `). Any other text, whatever its characters, is `***`: the
/// `pw-` of `pw-${SUFFIX}`, a token in `https://${HOST}/hooks/T0K3N`.
pub fn shown_reference(raw: &str) -> String {
    let lower = raw.to_ascii_lowercase();
    let url = ["http://", "https://"]
        .into_iter()
        .find(|s| lower.starts_with(s))
        .map(str::len);
    let mut out = String::new();
    let mut rest = raw;
    if let Some(scheme) = url {
        out.push_str(&raw[..scheme]);
        let after = &raw[scheme..];
        let end = after.find('/').unwrap_or(after.len());
        let (authority, path) = after.split_at(end);
        let host = match authority.rsplit_once('@') {
            Some((_, host)) => {
                out.push_str(REDACTED);
                out.push('@');
                host
            }
            None => authority,
        };
        let plain_host = |h: &str| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        };
        out.push_str(&mask(host, plain_host));
        // Path and query, part by part, each separator kept.
        let mut start = 0;
        for (i, c) in path.char_indices() {
            if "/?&=#".contains(c) {
                out.push_str(&mask(&path[start..i], harmless_word));
                out.push(c);
                start = i + c.len_utf8();
            }
        }
        out.push_str(&mask(&path[start..], harmless_word));
        return out;
    }
    let scheme = ["bearer ", "basic ", "token ", "bot ", "apikey "]
        .into_iter()
        .find(|s| lower.starts_with(s))
        .map(str::len);
    if let Some(n) = scheme {
        out.push_str(&raw[..n]);
        rest = &raw[n..];
    }
    out.push_str(&mask(rest, |_| false));
    out
}

/// A word of a URL's path or query that is no token: at most 8 lowercase letters (and `-`,
/// `_`), or at most 3 characters of any kind but a separator.
fn harmless_word(w: &str) -> bool {
    w.chars().count() <= 3
        || (w.len() <= 8
            && w.chars()
                .all(|c| c.is_ascii_lowercase() || c == '-' || c == '_'))
}

/// `text` with its `${VAR}` references as written and each run of other text between them
/// kept when `keep` says so (given the run), else `***`.
fn mask(text: &str, keep: impl Fn(&str) -> bool) -> String {
    let mut out = String::new();
    let mut literal = String::new();
    let flush = |literal: &mut String, out: &mut String| {
        if !literal.is_empty() {
            if keep(literal) {
                out.push_str(literal);
            } else {
                out.push_str(REDACTED);
            }
            literal.clear();
        }
    };
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(body) = rest.strip_prefix("${") {
            if let Some(end) = body.find('}') {
                flush(&mut literal, &mut out);
                out.push_str(&rest[..end + 3]);
                rest = &body[end + 1..];
                continue;
            }
        }
        if let Some(tail) = rest.strip_prefix("$${") {
            // A literal `${`, part of the text around.
            literal.push_str("$${");
            rest = tail;
            continue;
        }
        let c = rest.chars().next().unwrap_or_default();
        literal.push(c);
        rest = &rest[c.len_utf8()..];
    }
    flush(&mut literal, &mut out);
    out
}

/// `url` with any credential in it printed as `***`: the user name and password of its authority
/// and the values of its query parameters. Text that does not parse as a URL with a host (a bad
/// port, a missing scheme) may still carry them: everything up to its last `@` and after its first `?`
/// is `***` then.
pub fn redact_url(text: &str) -> String {
    let parsed = url::Url::parse(text).ok().filter(|u| u.has_host());
    let Some(mut url) = parsed else {
        let (scheme, rest) = match text.split_once("://") {
            Some((s, r)) => (format!("{s}://"), r),
            None => (String::new(), text),
        };
        let rest = match rest.rsplit_once('@') {
            Some((_, host)) => format!("{REDACTED}@{host}"),
            None => rest.to_string(),
        };
        return match rest.split_once('?') {
            Some((before, _)) => format!("{scheme}{before}?{REDACTED}"),
            None => format!("{scheme}{rest}"),
        };
    };
    if !url.username().is_empty() || url.password().is_some() {
        let _ = url.set_username(REDACTED);
        let _ = url.set_password(None);
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, _)| (k.into_owned(), REDACTED.to_string()))
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    let out = url.to_string();
    // The `url` crate percent-encodes `*` in user names; keep the mark readable.
    out.replace("%2A%2A%2A", REDACTED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_itself() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"***\"");
        assert_eq!(s.redact_in("bad hunter2 here"), "bad *** here");
        assert_eq!(s.expose(), "hunter2");
    }

    /// A secret written around references shows the references, and of the text around them
    /// only what cannot be secret.
    #[test]
    fn text_around_a_reference_shows_only_when_it_cannot_be_secret() {
        for (raw, shown) in [
            ("${PW}", "${PW}"),
            ("pw-INLINEPW-${SUFFIX}", "***${SUFFIX}"),
            ("secret${X}", "***${X}"),
            ("${USER}:${PASS}", "${USER}***${PASS}"),
            ("Bearer ${TOKEN}", "Bearer ${TOKEN}"),
            ("Bearer INLINEBEARER-${X}", "Bearer ***${X}"),
            ("Correcthorsebattery ${SUF}", "***${SUF}"),
            ("пароль€${SUF}", "***${SUF}"),
            ("#!%&(*)=?${SUF}", "***${SUF}"),
            ("MyS3cretPa55://${SUF}", "***${SUF}"),
            (
                "https://hc-ping.com/${HC_UUID}",
                "https://hc-ping.com/${HC_UUID}",
            ),
            (
                "https://${CHAT_HOST}/hooks/T0INLINETOKEN/B0INLINE",
                "https://${CHAT_HOST}/hooks/***/***",
            ),
            (
                "https://kuma.example/api/push/${KUMA_TOKEN}?status=up&msg=OK&ping=",
                "https://kuma.example/api/push/${KUMA_TOKEN}?status=up&msg=OK&ping=",
            ),
            ("https://u:p4ss@${HOST}/x", "https://***@${HOST}/x"),
            ("https://admin:hunter2#x@${SUF}/", "https://***@${SUF}/"),
            (
                "https://${HOST}/ping/abcdefghijklmnop",
                "https://${HOST}/ping/***",
            ),
            (
                "http://h/hook?token=abcdefghijkl&k=${SUF}",
                "http://h/hook?token=***&k=${SUF}",
            ),
            ("http://h/ping/s3.cr.et7/${SUF}", "http://h/ping/***/${SUF}"),
            ("$${LITERAL}${X}", "***${X}"),
            ("${UNTERMINATED", "***"),
        ] {
            assert_eq!(shown_reference(raw), shown, "{raw}");
        }
    }

    /// Issue 10: any credential in any URL prints as `***`.
    #[test]
    fn urls_print_without_credentials() {
        assert_eq!(
            redact_url("http://user:pa%40ss@gw.example:9091/path"),
            "http://***@gw.example:9091/path"
        );
        assert_eq!(
            redact_url("https://hc.example/ping?token=abc&x=1"),
            "https://hc.example/ping?token=***&x=***"
        );
        assert_eq!(redact_url("http://gw:9091"), "http://gw:9091/");
        assert_eq!(redact_url("not a url"), "not a url");
        // What does not parse still hides what would be credentials in a URL.
        assert_eq!(
            redact_url("http://AKIAX:TOPSECRET@127.0.0.1:99999"),
            "http://***@127.0.0.1:99999"
        );
        assert_eq!(redact_url("pgu:TOPSECRET@gw:9091"), "***@gw:9091");
        assert_eq!(redact_url("http://u:p@[::1"), "http://***@[::1");
        assert_eq!(redact_url("gw:99999/x?token=T0K"), "gw:99999/x?***");
    }
}
