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
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
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
}
