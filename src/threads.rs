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

thread_local! {
    /// Set while [`spawning_inside`] runs `f` on this thread.
    static INSIDE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// What `std::thread::spawn` panics with when the kernel refuses the thread.
const SPAWN_PANIC: &str = "failed to spawn thread";

/// Runs `f`, which calls a library that starts threads with `std::thread::spawn` (the HTTP
/// client's watchdog that enforces a request's deadline, one per connection): when the kernel
/// refuses one, the library panics, and this returns that refusal as an error naming `what`
/// and the limit instead. Any other panic goes on as before.
pub fn spawning_inside<T>(what: &str, f: impl FnOnce() -> T) -> io::Result<T> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // The refusal is reported as an error by `spawning_inside`: not printed as a panic.
            if INSIDE.with(|c| c.get()) && panic_text(info.payload()).contains(SPAWN_PANIC) {
                return;
            }
            previous(info);
        }));
    });
    let was = INSIDE.with(|c| c.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    INSIDE.with(|c| c.set(was));
    match result {
        Ok(v) => Ok(v),
        Err(payload) if panic_text(payload.as_ref()).contains(SPAWN_PANIC) => {
            Err(refused(what, rustix::io::Errno::AGAIN.into()))
        }
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    /// A library's panic at a refused thread comes back as the refusal; any other panic goes
    /// on.
    #[test]
    fn a_refused_library_thread_is_an_error_and_other_panics_go_on() {
        let e = super::spawning_inside("http-deadline", || -> u32 {
            panic!("failed to spawn thread: Os {{ code: 11, kind: WouldBlock }}")
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("cannot start a thread (http-deadline)") && e.contains("ulimit -u"),
            "{e}"
        );
        assert_eq!(super::spawning_inside("x", || 7).unwrap(), 7);
        let other = std::panic::catch_unwind(|| super::spawning_inside("x", || panic!("a bug")));
        assert!(other.is_err());
    }
}
