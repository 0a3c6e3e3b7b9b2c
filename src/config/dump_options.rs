//! Extra dump-tool options from the config (`servers.<name>.dump_options`): an allowlist.
//!
//! The dump tools accept any unambiguous prefix of a long option (`--pass` is `--password`),
//! `_` for `-`, the `--skip-`/`--enable-`/`--disable-`/`--loose-`/`--maximum-` prefixes, short
//! options clustered with their values (`-Br`, `-rFILE`), and a value in the next argument. A
//! denylist cannot follow all of that, so this module accepts only options it knows to be safe,
//! written in full as `--name` or `--name=value` in one item, and refuses everything else, naming
//! the option (never its value, which may be a secret). What the allowlist keeps out: anything
//! that puts a password in argv, writes the dump anywhere but sqlguard's pipe (`--result-file`,
//! `--tab`, `--log-error`, `--debug`), dumps several databases into one stream, removes the
//! completion trailer (`--compact`, `--skip-comments`), changes the format (`--xml`), loads code
//! or other option files (`--plugin-dir`, `--default-auth`, `--defaults-*`), or changes what
//! sqlguard sets itself (connection, TLS, binary-log coordinates).

use super::values::Ctx;
use super::ConfigError;

/// Whether an allowed option is a switch or takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Takes {
    /// `--name`, or `--skip-name` to turn it off.
    Flag,
    /// `--name=value`, in one item.
    Value,
}

/// The options sqlguard passes on, by their full name. Each is harmless to the guarantees: the
/// dump still goes to the pipe, still ends with the trailer, still holds one database.
const ALLOWED: &[(&str, Takes)] = &[
    ("add-drop-table", Takes::Flag),
    ("add-drop-trigger", Takes::Flag),
    ("add-locks", Takes::Flag),
    ("allow-keywords", Takes::Flag),
    ("as-of", Takes::Value),
    ("complete-insert", Takes::Flag),
    ("compress", Takes::Flag),
    ("create-options", Takes::Flag),
    ("default-character-set", Takes::Value),
    ("disable-keys", Takes::Flag),
    ("dump-date", Takes::Flag),
    ("dump-history", Takes::Flag),
    ("events", Takes::Flag),
    ("extended-insert", Takes::Flag),
    ("flush-logs", Takes::Flag),
    ("hex-blob", Takes::Flag),
    ("ignore-table", Takes::Value),
    ("ignore-table-data", Takes::Value),
    ("insert-ignore", Takes::Flag),
    ("lock-all-tables", Takes::Flag),
    ("lock-tables", Takes::Flag),
    ("max-allowed-packet", Takes::Value),
    ("max-statement-time", Takes::Value),
    ("net-buffer-length", Takes::Value),
    ("no-autocommit", Takes::Flag),
    ("no-create-info", Takes::Flag),
    ("no-data", Takes::Flag),
    ("opt", Takes::Flag),
    ("order-by-primary", Takes::Flag),
    ("quick", Takes::Flag),
    ("quote-names", Takes::Flag),
    ("replace", Takes::Flag),
    ("routines", Takes::Flag),
    ("set-charset", Takes::Flag),
    ("single-transaction", Takes::Flag),
    ("triggers", Takes::Flag),
    ("tz-utc", Takes::Flag),
    ("verbose", Takes::Flag),
    ("where", Takes::Value),
];

/// Why some well-known options are refused, for a message that says more than "not allowed".
const REASONS: &[(&str, &str)] = &[
    ("password", "a password on the command line is visible in ps; use password_file or SQLGUARD_DB_PASSWORD"),
    ("databases", "sqlguard dumps one database per backup so that it restores into any name"),
    ("all-databases", "sqlguard dumps one database per backup; select them with databases.include"),
    ("tables", "sqlguard dumps whole databases; leave tables out with --ignore-table=db.table"),
    ("result-file", "the dump must go to sqlguard's pipe, nowhere else"),
    ("tab", "the dump must go to sqlguard's pipe, nowhere else"),
    ("log-error", "the tool must not write files; sqlguard keeps its error output"),
    ("debug", "the tool must not write files"),
    ("xml", "a backup is SQL that the client restores"),
    ("compact", "the completion trailer comment is how sqlguard knows a dump is whole"),
    ("comments", "the completion trailer comment is how sqlguard knows a dump is whole"),
    ("force", "a dump that hit an error must fail, not continue"),
    ("defaults-file", "sqlguard passes the connection through its own option file"),
    ("defaults-extra-file", "sqlguard passes the connection through its own option file"),
    ("defaults-group-suffix", "sqlguard passes the connection through its own option file"),
    ("no-defaults", "sqlguard passes the connection through its own option file"),
    ("plugin-dir", "the dump tool must not load code from elsewhere"),
    ("default-auth", "the dump tool must not load code from elsewhere"),
    ("master-data", "sqlguard records the binary-log position itself"),
    ("dump-slave", "sqlguard records the binary-log position itself"),
    ("gtid", "sqlguard records the binary-log position itself"),
    ("delete-master-logs", "a backup must never delete the server's binary logs"),
];

/// Checks one item of `dump_options`.
///
/// Fails naming the option (not its value) unless it is on the allowlist, written in full.
pub(super) fn check_dump_option(ctx: &Ctx, key: &str, opt: &str) -> Result<(), ConfigError> {
    let refuse = |what: &str, why: &str| {
        Err(ctx.invalid(key, format!("option '{what}' is not allowed: {why}")))
    };
    let Some(body) = opt.strip_prefix("--") else {
        if opt.starts_with('-') && opt.len() > 1 {
            // Name the option letters only: `-pSECRET` must not print the secret.
            let letter: String = opt.chars().take(2).collect();
            return refuse(
                &letter,
                "short options cannot be checked (they cluster, and take values from what follows); write the long form, e.g. --max-allowed-packet=1G",
            );
        }
        return Err(ctx.invalid(
            key,
            format!("'{opt}' is not an option; databases are chosen with databases.include"),
        ));
    };
    let (raw_name, value) = match body.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (body, None),
    };
    let name = raw_name.replace('_', "-");
    let shown = format!("--{raw_name}");
    for prefix in ["loose-", "maximum-"] {
        if name.starts_with(prefix) {
            return refuse(
                &shown,
                &format!("the '--{prefix}' prefix is not accepted; write the option itself"),
            );
        }
    }
    let (base, negated) = if let Some(rest) = name
        .strip_prefix("skip-")
        .or_else(|| name.strip_prefix("disable-"))
    {
        (rest.to_string(), true)
    } else if let Some(rest) = name.strip_prefix("enable-") {
        (rest.to_string(), false)
    } else {
        (name.clone(), false)
    };
    let Some((_, takes)) = ALLOWED.iter().find(|(n, _)| *n == base) else {
        let why = REASONS
            .iter()
            .find(|(n, _)| *n == base)
            .map(|(_, w)| w.to_string())
            .unwrap_or_else(|| {
                "sqlguard passes on only options it knows to be safe, written in full (abbreviations are refused); see the README for the list".to_string()
            });
        return refuse(&shown, &why);
    };
    match (takes, negated, value) {
        (Takes::Flag, _, Some(_)) => refuse(
            &shown,
            &format!("it is a switch: write --{base} or --skip-{base}, without a value"),
        ),
        (Takes::Value, true, _) => refuse(
            &shown,
            &format!("--{base} takes a value; it cannot be negated"),
        ),
        (Takes::Value, false, None) => refuse(
            &shown,
            &format!("write its value in the same item: --{base}=VALUE"),
        ),
        (Takes::Value, false, Some("")) => refuse(&shown, &format!("--{base}= has an empty value")),
        _ => Ok(()),
    }
}

/// The allowed options, for the README and `--help`.
pub fn allowed() -> impl Iterator<Item = String> {
    ALLOWED.iter().map(|(n, t)| match t {
        Takes::Flag => format!("--{n}"),
        Takes::Value => format!("--{n}=…"),
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    fn check(opt: &str) -> Result<Settings, ConfigError> {
        from_yaml(
            &format!("servers:\n  main:\n    dump_options: [\"{}\"]\nstorage:\n  l:\n    type: local\n    path: /b\n", opt.replace('\\', "\\\\").replace('"', "\\\"")),
            &[],
        )
    }

    #[test]
    fn dangerous_dump_options_are_refused() {
        for opt in [
            "--password=x",
            "-psecret",
            "--databases",
            "--skip-comments",
            "-A",
            "shop",
        ] {
            let e = check(opt).unwrap_err().to_string();
            assert!(e.contains("dump_options"), "{opt}: {e}");
        }
    }

    /// Issue 10: the guard follows the tool's own option rules, not one spelling. Each of these
    /// would reach a password, a file, several databases or the trailer through a spelling the
    /// tool accepts.
    #[test]
    fn every_spelling_the_tool_accepts_is_refused() {
        for opt in [
            "--pass=secret",
            "--passw=secret",
            "--password",
            "--PASSWORD=x",
            "--loose-password=secret",
            "--maximum-max-allowed-packet=1G",
            "--result_file=/tmp/x",
            "--result=/tmp/x",
            "--res=/tmp/x",
            "-r/tmp/x",
            "-Br",
            "-B",
            "--database",
            "--all",
            "--tab=/tmp",
            "--compact",
            "--skip-comments",
            "--skip_comments",
            "--disable-comments",
            "--comments=0",
            "--plugin-dir=/tmp",
            "--plugin_dir=/tmp",
            "--default-auth=x",
            "--defaults-extra-file=/tmp/x",
            "--defaults-group-suffix=x",
            "--log-error=/tmp/x",
            "--debug=d:o,/tmp/x",
            "--xml",
            "--force",
            "--where",
            "--single-transaction=0",
            "--skip-where=x",
            "--master-data=2",
            "--",
        ] {
            let e = check(opt).unwrap_err().to_string();
            assert!(
                e.contains("is not allowed") || e.contains("not an option"),
                "{opt}: {e}"
            );
            assert!(!e.contains("secret"), "the value was printed: {e}");
        }
    }

    #[test]
    fn safe_options_pass_in_every_documented_form() {
        for opt in [
            "--max-allowed-packet=1G",
            "--max_allowed_packet=512M",
            "--skip-extended-insert",
            "--disable-extended-insert",
            "--enable-triggers",
            "--skip-triggers",
            "--ignore-table=shop.sessions",
            "--where=id > 10",
            "--skip-dump-date",
            "--order-by-primary",
        ] {
            check(opt).unwrap_or_else(|e| panic!("{opt}: {e}"));
        }
        assert!(super::allowed().any(|o| o == "--where=…"));
    }
}
