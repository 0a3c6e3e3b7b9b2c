//! SIGINT and SIGTERM: the first asks the run to stop cleanly, and so does every later one.
//!
//! A second signal (what `timeout` and systemd send to a whole process group) used to exit at
//! once, skipping the failed record and the cleanup. Now no signal skips them: once one has come,
//! the run stops dumping, and every storage request from then on gets one short attempt (no
//! retries, no backoff; see [`stopping`]), so that the record and the cleanup happen in bounded
//! time. The flag returned by [`install`] is the run's cancel flag; [`stopping`] reads the same
//! flag for code that has none passed in (the storage clients).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Installs the handlers (once per process) and returns the cancel flag they set.
pub fn install() -> Arc<AtomicBool> {
    let flag = Arc::clone(FLAG.get_or_init(|| Arc::new(AtomicBool::new(false))));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
    }
    flag
}

/// Whether a signal asked the run to stop: storage requests then get one short attempt.
pub fn stopping() -> bool {
    FLAG.get().is_some_and(|f| f.load(Ordering::Relaxed))
}
