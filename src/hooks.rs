//! Runs one hook: the user's program, started through [`crate::process::command`] (so it
//! inherits nothing of sqlguard's environment but the harmless [`crate::process::PASSED`]
//! variables), given the run's facts as `SQLGUARD_*` variables, in a process group of its own
//! that is killed when the hook outlives its timeout.
//!
//! It decides nothing about the run: [`crate::run`] says which hooks run when, and what their
//! failure means. It must not hand a hook a secret: the facts are names, times, a status, an exit
//! code and the path of the run's JSON document, which holds no secret either.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};

use crate::config::hooks::{Hook, HookPoint};
use crate::env_vars as ev;
use crate::ui::Ui;

/// How long a hook's process group has between SIGTERM and SIGKILL once its timeout passed.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// What a hook is told about its run.
#[derive(Debug)]
pub struct Facts<'a> {
    pub command: &'a str,
    pub backup_type: Option<&'a str>,
    /// `running`, `success`, `failure`, `interrupted` or `skipped`.
    pub status: &'a str,
    /// The exit code the run ends with (after hooks only).
    pub exit_code: Option<i32>,
    pub run_json: &'a Path,
    pub started_at: DateTime<Utc>,
    pub servers: &'a [String],
}

impl Facts<'_> {
    /// The variables a hook at `point` gets, besides [`crate::process::PASSED`].
    pub fn vars(&self, point: HookPoint) -> Vec<(&'static str, String)> {
        let mut v = vec![
            (ev::HOOK_COMMAND, self.command.to_string()),
            (ev::HOOK_POINT, point.as_str().to_string()),
            (ev::HOOK_STATUS, self.status.to_string()),
            (ev::HOOK_RUN_JSON, self.run_json.display().to_string()),
            (
                ev::HOOK_STARTED_AT,
                self.started_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            ),
            (ev::HOOK_SERVERS, self.servers.join(",")),
        ];
        if let Some(t) = self.backup_type {
            v.push((ev::HOOK_TYPE, t.to_string()));
        }
        if let Some(c) = self.exit_code {
            v.push((ev::HOOK_EXIT_CODE, c.to_string()));
        }
        v
    }
}

/// Runs `hook` at `point` with `facts`, for at most `timeout`. Its stdout and stderr go to
/// sqlguard's stderr (stdout stays the command's result); its stdin is empty.
///
/// A signal that arrives while the hook runs (`cancel` turning true) stops it the same way as
/// its timeout; one that came before it started does not (the failure hooks of an interrupted
/// run still run).
///
/// Fails with the message to log, naming the hook's key and program: when it cannot start,
/// exits non-zero or is killed by a signal, outlives `timeout` or is stopped by a signal (its
/// whole process group is then sent SIGTERM and, 5 s later, SIGKILL).
pub fn run(
    hook: &Hook,
    point: HookPoint,
    timeout: Duration,
    facts: &Facts,
    cancel: &AtomicBool,
    ui: &Ui,
) -> Result<(), String> {
    use std::os::fd::AsFd;
    use std::os::unix::process::CommandExt;

    let program = &hook.argv[0];
    let what = format!("{} (`{program}`)", hook.key);
    let mut cmd = crate::process::command(program);
    cmd.args(&hook.argv[1..])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .process_group(0);
    match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => cmd.stdout(Stdio::from(fd)),
        Err(_) => cmd.stdout(Stdio::null()),
    };
    for (k, v) in facts.vars(point) {
        cmd.env(k, v);
    }
    ui.debug(&format!("hook {what}: starting"));
    let mut child = cmd.spawn().map_err(|e| {
        format!("{what} could not start: {e} (give the program's full path, or install it)")
    })?;
    let started = Instant::now();
    let cancelled_before = cancel.load(Ordering::Relaxed);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => return Err(format!("{what}: waiting for it failed: {e}")),
        }
        if !cancelled_before && cancel.load(Ordering::Relaxed) {
            kill_group(&mut child);
            return Err(format!(
                "{what} was stopped: sqlguard was interrupted (SIGINT or SIGTERM)"
            ));
        }
        if started.elapsed() >= timeout {
            kill_group(&mut child);
            return Err(format!(
                "{what} did not finish within its timeout of {}: its process group was killed (raise the hook set's `timeout`, or make the hook faster)",
                crate::duration::HumanDuration(timeout.as_secs())
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    ui.debug(&format!(
        "hook {what}: {} after {:.1} s",
        crate::process::describe_exit(&status),
        started.elapsed().as_secs_f64()
    ));
    check(&what, status)
}

fn check(what: &str, status: ExitStatus) -> Result<(), String> {
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed: {}",
            crate::process::describe_exit(&status)
        ))
    }
}

/// SIGTERM to the child's process group, SIGKILL after [`KILL_GRACE`], and the child reaped.
fn kill_group(child: &mut std::process::Child) {
    use rustix::process::{kill_process_group, Pid, Signal};
    let Some(pid) = i32::try_from(child.id()).ok().and_then(Pid::from_raw) else {
        let _ = child.kill();
        let _ = child.wait();
        return;
    };
    let _ = kill_process_group(pid, Signal::TERM);
    let deadline = Instant::now() + KILL_GRACE;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The group may outlive its leader: SIGKILL whatever is left of it.
    let _ = kill_process_group(pid, Signal::KILL);
    let _ = child.wait();
}
