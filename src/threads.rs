//! Threads that may fail to start.
//!
//! `std::thread::spawn` (and `Scope::spawn`) panic when the kernel refuses a thread, which a
//! process or thread limit does: `ulimit -u`, systemd's `TasksMax`, a container's pids limit.
//! These return the error instead, named after the thread and saying what to raise, so that the
//! database, storage or restore that needed the thread fails alone and the run ends with its
//! summary and exit code, never with a panic.

use std::io;
use std::thread::{Builder, JoinHandle, Scope, ScopedJoinHandle};

/// Starts a thread named `name`.
pub fn spawn<F, T>(name: &str, f: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    test_refusal(name)?;
    Builder::new()
        .name(name.to_string())
        .spawn(f)
        .map_err(|e| refused(name, e))
}

/// Starts a thread named `name` in `scope`.
pub fn spawn_scoped<'scope, 'env, F, T>(
    scope: &'scope Scope<'scope, 'env>,
    name: &str,
    f: F,
) -> io::Result<ScopedJoinHandle<'scope, T>>
where
    F: FnOnce() -> T + Send + 'scope,
    T: Send + 'scope,
{
    test_refusal(name)?;
    Builder::new()
        .name(name.to_string())
        .spawn_scoped(scope, f)
        .map_err(|e| refused(name, e))
}

/// What to do when the kernel refuses a thread or a process for want of room.
const LIMIT_HINT: &str = "the process or thread limit is reached (ulimit -u, systemd TasksMax, \
                          a container's pids limit): raise it, or lower parallel / --jobs";

fn refused(name: &str, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("cannot start a thread ({name}): {e}; {LIMIT_HINT}"),
    )
}

/// `e`, from starting a process, with what to do when a process limit refused it.
pub fn spawn_error(e: &io::Error) -> String {
    if e.raw_os_error() == Some(rustix::io::Errno::AGAIN.raw_os_error()) {
        format!("{e}; {LIMIT_HINT}")
    } else {
        e.to_string()
    }
}

/// The refusal the test suite asks for (`SQLGUARD_TEST_REFUSE_THREADS`): what the kernel says
/// when a pids limit is reached.
fn test_refusal(name: &str) -> io::Result<()> {
    static PREFIXES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let prefixes = PREFIXES.get_or_init(|| {
        std::env::var(crate::env_vars::TEST_REFUSE_THREADS)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    });
    if prefixes.iter().any(|p| name.starts_with(p.as_str())) {
        return Err(refused(name, rustix::io::Errno::AGAIN.into()));
    }
    Ok(())
}
