//! Extra dump-tool options from the config (`servers.<name>.dump_options`): which are refused
//! because they would break sqlguard's guarantees.

use super::values::Ctx;
use super::ConfigError;

/// Dump options that would break sqlguard's guarantees, and why.
const FORBIDDEN_DUMP_OPTIONS: &[(&str, &str)] = &[
    ("--password", "a password on the command line is visible in ps; use password_file or SQLGUARD_DB_PASSWORD"),
    ("-p", "a password on the command line is visible in ps; use password_file or SQLGUARD_DB_PASSWORD"),
    ("--databases", "sqlguard dumps one database per backup so that it restores into any name"),
    ("-B", "sqlguard dumps one database per backup so that it restores into any name"),
    ("--all-databases", "sqlguard dumps one database per backup; select them with databases.include"),
    ("-A", "sqlguard dumps one database per backup; select them with databases.include"),
    ("--result-file", "sqlguard reads the dump from the tool's standard output"),
    ("-r", "sqlguard reads the dump from the tool's standard output"),
    ("--tab", "sqlguard reads the dump from the tool's standard output"),
    ("-T", "sqlguard reads the dump from the tool's standard output"),
    ("--skip-comments", "the completion trailer comment is how sqlguard knows a dump is whole"),
    ("--compact", "the completion trailer comment is how sqlguard knows a dump is whole"),
    ("--defaults-file", "sqlguard passes the connection through its own defaults file"),
    ("--defaults-extra-file", "sqlguard passes the connection through its own defaults file"),
    ("--no-defaults", "sqlguard passes the connection through its own defaults file"),
];

pub(super) fn check_dump_option(ctx: &Ctx, key: &str, opt: &str) -> Result<(), ConfigError> {
    for (bad, why) in FORBIDDEN_DUMP_OPTIONS {
        let hit = if bad.starts_with("--") {
            opt == *bad || opt.starts_with(&format!("{bad}="))
        } else {
            opt.starts_with(bad) && !opt.starts_with("--")
        };
        if hit {
            // Name the option only: its value may be a secret.
            return Err(ctx.invalid(key, format!("option '{bad}' is not allowed: {why}")));
        }
    }
    if !opt.starts_with('-') {
        return Err(ctx.invalid(
            key,
            format!("'{opt}' is not an option; databases are chosen with databases.include"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

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
            let e = from_yaml(
                &format!("servers:\n  main:\n    dump_options: [\"{opt}\"]\nstorage:\n  l:\n    type: local\n    path: /b\n"),
                &[],
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains("dump_options"), "{opt}: {e}");
        }
    }
}
