//! Child processes: every program sqlguard runs (dump tool, SQL client, binlog tool, hooks) is
//! started through [`command`], with a scrubbed environment.
//!
//! A child never inherits sqlguard's environment: `SQLGUARD_DB_PASSWORD`, `AWS_SECRET_ACCESS_KEY`,
//! `MYSQL_PWD` and every other variable are dropped, and only [`PASSED`] (what a program needs to
//! find its libraries, its locale and a temp directory) is handed on. Connection secrets reach
//! the client tools through [`crate::mysql::DefaultsFile`] only. This module must not add a
//! secret to any child's environment or argv.

use std::ffi::OsStr;
use std::process::Command;

/// The variables a child inherits, when set. Nothing here can carry a secret.
pub const PASSED: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "TZ",
    "TMPDIR",
];

/// A command for `program` whose environment holds only [`PASSED`] (plus what the caller adds).
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut c = Command::new(program);
    c.env_clear();
    for name in PASSED {
        if let Some(v) = std::env::var_os(name) {
            c.env(name, v);
        }
    }
    c
}

/// "exit code 2" or "killed by signal 9".
pub fn describe_exit(st: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => st.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn children_get_only_the_passed_variables() {
        let cmd = super::command("env");
        let names: Vec<String> = cmd
            .get_envs()
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        for n in &names {
            assert!(super::PASSED.contains(&n.as_str()), "{n} passed on");
        }
        let out = super::command("env").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        for line in text.lines() {
            let name = line.split('=').next().unwrap_or("");
            assert!(
                super::PASSED.contains(&name) || name.is_empty(),
                "child saw {name}"
            );
        }
    }
}
