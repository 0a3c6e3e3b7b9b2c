//! Exit codes, as documented in the README and the man page, and the one place where a run's
//! outcome becomes one: [`Outcome`] → [`ExitCode`] → the process status `main` returns.

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

/// How a run that could start ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything it was asked to do succeeded.
    Ok,
    /// It completed, but something failed.
    Failed,
    /// A signal stopped it.
    Interrupted,
}

impl Outcome {
    /// The outcome of a run that succeeded (`ok`) or not, unless a signal stopped it.
    /// A run that failed after a signal asked it to stop was interrupted: what failed, failed
    /// because of the signal (exit 130), not of its own.
    pub fn of(ok: bool, interrupted: bool) -> Outcome {
        match (interrupted, ok) {
            (true, _) => Outcome::Interrupted,
            (false, true) => Outcome::Ok,
            (false, false) if crate::signals::stopping() => Outcome::Interrupted,
            (false, false) => Outcome::Failed,
        }
    }

    /// Whether everything succeeded.
    pub fn is_ok(self) -> bool {
        self == Outcome::Ok
    }
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> ExitCode {
        match o {
            Outcome::Ok => ExitCode::Success,
            Outcome::Failed => ExitCode::Failure,
            Outcome::Interrupted => ExitCode::Interrupted,
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(c: ExitCode) -> std::process::ExitCode {
        std::process::ExitCode::from(c as u8)
    }
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
