//! Exit codes, as documented in the README and the man page. Only `main` calls `process::exit`.

/// The exit status of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything succeeded.
    Success = 0,
    /// The run completed but something failed (a database, a storage, a verification).
    Failure = 1,
    /// Usage or configuration error: nothing was done.
    Usage = 2,
    /// Another run holds the lock.
    Locked = 3,
    /// Interrupted by SIGINT or SIGTERM.
    Interrupted = 130,
}

impl ExitCode {
    /// The process exit status.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The table printed in `--help` and the README.
    pub const TABLE: &'static [(i32, &'static str)] = &[
        (0, "everything succeeded"),
        (
            1,
            "the run completed but something failed (a database, a storage, a verification)",
        ),
        (2, "usage or configuration error; nothing was done"),
        (3, "another run holds the lock"),
        (
            130,
            "interrupted (SIGINT or SIGTERM); the interrupted backup is recorded as failed",
        ),
    ];
}
