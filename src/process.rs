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

/// What a signal asking the run to stop does to a child of [`output`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnSignal {
    /// Work (a probe, a query, creating a database): not started once the run is stopping,
    /// killed when a signal comes while it runs, so that a hanging one does not hold the run.
    Stop,
    /// A stopping run's cleanup (dropping what a restore created): started and run to its end
    /// whatever the signals; its own timeouts bound it.
    Finish,
}

/// Runs `cmd` to its end and collects its output, as `Command::output` does, except for what
/// a signal does (see [`OnSignal`]): a stopped child is an error of kind `Interrupted`.
///
/// Fails when the child cannot start, its output cannot be read, or a signal stopped it.
pub fn output(cmd: &mut Command, on_signal: OnSignal) -> std::io::Result<std::process::Output> {
    run_to_end(cmd, on_signal, None)
}

/// How long a local tool's `--version` or `--help` may take: it reads no network, so one that
/// has not answered by then (a broken wrapper) never will.
pub const PROBE_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs a local tool's probe (`--version`, `--help`) as [`output`] does with
/// [`OnSignal::Stop`], and kills it after [`PROBE_LIMIT`], so that a hanging tool cannot hold a
/// scheduled run for ever.
///
/// Fails as [`output`] does, and with kind `TimedOut` when the probe did not end in time.
pub fn probe(cmd: &mut Command) -> std::io::Result<std::process::Output> {
    run_to_end(cmd, OnSignal::Stop, Some(PROBE_LIMIT))
}

fn run_to_end(
    cmd: &mut Command,
    on_signal: OnSignal,
    limit: Option<std::time::Duration>,
) -> std::io::Result<std::process::Output> {
    use std::io::Read;
    use std::process::Stdio;
    use std::sync::mpsc;
    let interrupted =
        || std::io::Error::new(std::io::ErrorKind::Interrupted, "interrupted by a signal");
    let stoppable = on_signal == OnSignal::Stop;
    if stoppable && crate::signals::stopping() {
        return Err(interrupted());
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    // Readers of their own (not scoped): a grandchild may hold the pipes open after the child
    // is killed, and a stopping run does not wait for it.
    let reader = |name: &str, pipe: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = mpsc::channel();
        let started = crate::threads::spawn(name, move || {
            let mut bytes = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut bytes);
            }
            let _ = tx.send(bytes);
        });
        started.map(|_| rx)
    };
    let out = reader(
        "child-stdout",
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = reader(
        "child-stderr",
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let (out, err) = match (out, err) {
        (Ok(o), Ok(e)) => (o, e),
        (Err(e), _) | (_, Err(e)) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    let started = std::time::Instant::now();
    let mut stopped = false;
    let mut timed_out = false;
    let mut polls = 0u32;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if !stopped && stoppable && crate::signals::stopping() {
            let _ = child.kill();
            stopped = true;
        }
        if !stopped && !timed_out && limit.is_some_and(|l| started.elapsed() >= l) {
            let _ = child.kill();
            timed_out = true;
        }
        // Short waits first: most children (a version probe, a query) end within a few ms.
        polls += 1;
        std::thread::sleep(std::time::Duration::from_millis(if polls < 50 {
            1
        } else {
            10
        }));
    };
    if stopped {
        return Err(interrupted());
    }
    if timed_out {
        return Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "did not answer within {} s, and was stopped",
                limit.unwrap_or_default().as_secs()
            ),
        ));
    }
    Ok(std::process::Output {
        status,
        stdout: out.recv().unwrap_or_default(),
        stderr: err.recv().unwrap_or_default(),
    })
}

/// Blanks (with NUL bytes) the values of the variables `names` in this process's environment
/// block, which `/proc/<pid>/environ` shows to every process of the same user for as long as
/// the run lasts: a hook reading its parent's, say. Call it once the values were read (the
/// settings resolved): nothing reads them from the environment again, and a child never got
/// them ([`command`]). Through `/proc/self/mem`, so no unsafe code: the block's place is in
/// `/proc/self/stat`, its text in `/proc/self/environ`.
///
/// Returns how many values were blanked; fails (best effort: the run goes on) where the block
/// cannot be read or written, as under a kernel that refuses writes to `/proc/self/mem`.
pub fn blank_environment(names: &std::collections::BTreeSet<String>) -> Result<usize, String> {
    use std::os::unix::fs::FileExt;
    let stat = std::fs::read_to_string("/proc/self/stat").map_err(|e| e.to_string())?;
    // Fields after the command name (in parentheses, which may hold anything): the 3rd field
    // first, so env_start (50th) and env_end (51st) are the 48th and 49th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    let (Some(start), Some(end)) = (field(47), field(48)) else {
        return Err("cannot read where the environment is from /proc/self/stat".into());
    };
    let block = std::fs::read("/proc/self/environ").map_err(|e| e.to_string())?;
    if u64::try_from(block.len()).ok() != end.checked_sub(start) {
        return Err("the environment block is not where /proc/self/stat says".into());
    }
    let mut at = 0u64;
    let mut places = Vec::new();
    for entry in block.split(|b| *b == 0) {
        if let Some(eq) = entry.iter().position(|b| *b == b'=') {
            let secret = names.iter().any(|n| n.as_bytes() == &entry[..eq]);
            if secret && entry.len() > eq + 1 {
                places.push((start + at + eq as u64 + 1, entry.len() - eq - 1));
            }
        }
        at += entry.len() as u64 + 1;
    }
    if places.is_empty() {
        return Ok(0);
    }
    let mem = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/mem")
        .map_err(|e| format!("/proc/self/mem: {e}"))?;
    for &(offset, len) in &places {
        mem.write_all_at(&vec![0u8; len], offset)
            .map_err(|e| format!("/proc/self/mem: {e}"))?;
    }
    Ok(places.len())
}

/// Removes the directories in `tmp` named `prefix…`, older than `age`, that this user owns and
/// whose every entry `holds` accepts: the private directories that killed runs leave (a run
/// removes its own when it ends). Anything else is left, and so is whatever cannot be read.
pub fn sweep_dirs(
    tmp: &std::path::Path,
    prefix: &str,
    age: std::time::Duration,
    holds: impl Fn(&std::fs::DirEntry) -> bool,
) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    let me = rustix::process::geteuid().as_raw();
    for e in entries.flatten() {
        let path = e.path();
        let ours = e.file_name().to_string_lossy().starts_with(prefix)
            && std::fs::symlink_metadata(&path).is_ok_and(|m| {
                m.is_dir()
                    && m.uid() == me
                    && m.modified()
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|d| d > age)
            });
        let left = ours && std::fs::read_dir(&path).is_ok_and(|d| d.flatten().all(|f| holds(&f)));
        if left {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// The CPU priority (nice value) of a low-priority run.
pub const LOW_NICE: i32 = 10;

/// Lowers this process's CPU priority to nice [`LOW_NICE`] (never raises it) and its I/O
/// priority to best-effort level 7 (the lowest that still always progresses; the idle class
/// could starve a backup on a busy server), for itself and for every thread and child started
/// afterwards: both are inherited. Call it before any thread starts (on Linux both belong to the
/// calling thread). The I/O priority is set through util-linux's `ionice`, which every Debian
/// system has, since the syscall has no safe wrapper.
///
/// Fails with what could not be lowered; the CPU priority may have been lowered all the same.
pub fn lower_priority() -> Result<(), String> {
    let nice = rustix::process::getpriority_process(None)
        .map_err(|e| format!("reading the CPU priority: {e}"))?;
    if nice < LOW_NICE {
        rustix::process::setpriority_process(None, LOW_NICE)
            .map_err(|e| format!("lowering the CPU priority: {e}"))?;
    }
    let pid = std::process::id().to_string();
    let out = command("ionice")
        .args(["-c", "2", "-n", "7", "-p", &pid])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| {
            format!("cannot run ionice to lower the I/O priority: {e} (install util-linux)")
        })?;
    if !out.status.success() {
        return Err(format!(
            "ionice could not lower the I/O priority: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
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
    fn a_probe_that_hangs_is_stopped_at_its_limit() {
        let started = std::time::Instant::now();
        let e = super::run_to_end(
            super::command("sleep").arg("20"),
            super::OnSignal::Stop,
            Some(std::time::Duration::from_millis(200)),
        )
        .expect_err("a hanging child is stopped");
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
        assert!(e.to_string().contains("did not answer"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        // One that ends in time is read as before.
        let out = super::run_to_end(
            super::command("echo").arg("hello"),
            super::OnSignal::Stop,
            Some(std::time::Duration::from_secs(20)),
        )
        .expect("echo runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello");
    }

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

    #[test]
    fn output_collects_both_streams_of_any_size() {
        let out = super::output(
            super::command("sh").args(["-c", "head -c 300000 /dev/zero; echo err >&2; exit 3"]),
            super::OnSignal::Stop,
        )
        .unwrap();
        assert_eq!(out.stdout.len(), 300_000);
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.status.code(), Some(3));
    }
}
