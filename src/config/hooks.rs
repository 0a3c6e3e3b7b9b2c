//! The `hooks` section (per command) and `backup_types.<T>.hooks` (per backup type): programs
//! run before and after a run, each an argv list taken literally (no shell, no `${VAR}`
//! expansion, so that nothing from the environment, a secret least of all, lands on a command
//! line), with a timeout.
//!
//! The commands that take hooks (and notifications) are [`COMMANDS`]; a new one (`binlog`) is a
//! field of [`super::file::HooksFile`] and [`super::file::NotifyFile`] and a name here.

use serde::Serialize;

use super::file::HookSetFile;
use super::values::Ctx;
use super::ConfigError;
use crate::duration::HumanDuration;

/// The commands whose runs take hooks and notifications, in documentation order.
pub const COMMANDS: &[&str] = &["backup", "prune", "verify", "binlog"];

/// How long a hook may run when its set names no `timeout`.
pub const DEFAULT_HOOK_TIMEOUT: HumanDuration = HumanDuration(300);

/// The longest `timeout` a hook may have.
const MAX_HOOK_TIMEOUT: u64 = 24 * 3600;

/// The points of a run where a hook runs, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookPoint {
    /// Before the run's work; a failure skips the run.
    Before,
    /// After a run that succeeded.
    AfterSuccess,
    /// After a run that failed, was interrupted, or was skipped.
    AfterFailure,
    /// After every run, last.
    Finally,
}

impl HookPoint {
    /// The config key (and `SQLGUARD_HOOK` value).
    pub fn as_str(self) -> &'static str {
        match self {
            HookPoint::Before => "before",
            HookPoint::AfterSuccess => "after_success",
            HookPoint::AfterFailure => "after_failure",
            HookPoint::Finally => "finally",
        }
    }
}

/// One program to run: its argv and where the config defines it (for messages).
#[derive(Debug, Clone, Serialize)]
pub struct Hook {
    pub argv: Vec<String>,
    /// The dotted key, e.g. `hooks.backup.before`.
    #[serde(skip)]
    pub key: String,
}

/// The hooks of one command or one backup type.
#[derive(Debug, Clone, Serialize)]
pub struct HookSet {
    pub before: Option<Hook>,
    pub after_success: Option<Hook>,
    pub after_failure: Option<Hook>,
    pub finally: Option<Hook>,
    pub timeout: HumanDuration,
}

impl HookSet {
    /// The hook at `point`, if the set has one.
    pub fn at(&self, point: HookPoint) -> Option<&Hook> {
        match point {
            HookPoint::Before => self.before.as_ref(),
            HookPoint::AfterSuccess => self.after_success.as_ref(),
            HookPoint::AfterFailure => self.after_failure.as_ref(),
            HookPoint::Finally => self.finally.as_ref(),
        }
    }
}

/// Resolves a hook set written at `key` (`hooks.backup`, `backup_types.daily.hooks`).
///
/// Fails naming the key when an argv is empty or its program is blank, or the timeout is
/// outside 1s to 24h.
pub(super) fn resolve_hook_set(
    ctx: &Ctx,
    key: &str,
    f: &HookSetFile,
) -> Result<HookSet, ConfigError> {
    let hook = |point: HookPoint,
                argv: &Option<Vec<String>>|
     -> Result<Option<Hook>, ConfigError> {
        let Some(argv) = argv else { return Ok(None) };
        let k = format!("{key}.{}", point.as_str());
        match argv.first() {
            None => Err(ctx.invalid(
                &k,
                "is an empty list: write the program and its arguments, e.g. [/usr/local/bin/notify-start, --quiet], or remove the key",
            )),
            Some(p) if p.trim().is_empty() => Err(ctx.invalid(
                &k,
                "names an empty program: its first element is the program to run",
            )),
            Some(_) => Ok(Some(Hook {
                argv: argv.clone(),
                key: k,
            })),
        }
    };
    let timeout = f.timeout.unwrap_or(DEFAULT_HOOK_TIMEOUT);
    if !(1..=MAX_HOOK_TIMEOUT).contains(&timeout.as_secs()) {
        return Err(ctx.invalid(
            format!("{key}.timeout"),
            format!("{timeout} is outside 1s to 24h"),
        ));
    }
    Ok(HookSet {
        before: hook(HookPoint::Before, &f.before)?,
        after_success: hook(HookPoint::AfterSuccess, &f.after_success)?,
        after_failure: hook(HookPoint::AfterFailure, &f.after_failure)?,
        finally: hook(HookPoint::Finally, &f.finally)?,
        timeout,
    })
}

/// Resolves the `hooks` section: one set per command that has one.
pub(super) fn resolve_hooks(
    ctx: &Ctx,
    f: Option<&super::file::HooksFile>,
) -> Result<Vec<(String, HookSet)>, ConfigError> {
    let Some(f) = f else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for (command, set) in f.by_command() {
        if let Some(set) = set {
            out.push((
                command.to_string(),
                resolve_hook_set(ctx, &format!("hooks.{command}"), set)?,
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn hooks_resolve_per_command_and_type_and_bad_ones_name_the_key() {
        let s = from_yaml(
            &format!("{MINIMAL}hooks:\n  backup:\n    before: [/bin/true]\n    finally: [sh, -c, 'echo ${{X}}']\n    timeout: 30s\nbackup_types:\n  daily:\n    retention: {{keep_last: 1}}\n    hooks:\n      after_failure: [/usr/bin/logger, failed]\n"),
            &[],
        )
        .unwrap();
        let (cmd, set) = &s.hooks[0];
        assert_eq!(cmd, "backup");
        assert_eq!(set.before.as_ref().unwrap().argv, ["/bin/true"]);
        // Taken literally: no expansion.
        assert_eq!(
            set.finally.as_ref().unwrap().argv,
            ["sh", "-c", "echo ${X}"]
        );
        assert_eq!(set.timeout.as_secs(), 30);
        let t = s.backup_type("daily").unwrap();
        assert_eq!(
            t.hooks
                .as_ref()
                .unwrap()
                .after_failure
                .as_ref()
                .unwrap()
                .key,
            "backup_types.daily.hooks.after_failure"
        );
        for (yaml, key) in [
            ("hooks:\n  prune:\n    before: []\n", "hooks.prune.before"),
            (
                "hooks:\n  verify:\n    finally: ['']\n",
                "hooks.verify.finally",
            ),
            (
                "hooks:\n  backup:\n    before: [x]\n    timeout: 2d\n",
                "hooks.backup.timeout",
            ),
        ] {
            let e = from_yaml(&format!("{MINIMAL}{yaml}"), &[])
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{key}: {e}");
        }
        let e = from_yaml(
            &format!("{MINIMAL}hooks:\n  restore:\n    before: [x]\n"),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("restore") && e.contains("line"), "{e}");
    }
}
