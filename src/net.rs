//! Network errors in plain words: what an operator reads in a log should name the failure
//! ("connection refused", "no answer within 5 s") rather than a library's prefix or the OS's
//! "Resource temporarily unavailable (os error 11)" for a timeout. Shared by the S3 storage and
//! the Pushgateway client.

use std::io;
use std::time::Duration;

/// An I/O error in words; a timeout says so, with `timeout`.
pub fn plain_io(e: &io::Error, timeout: Duration) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("no answer within {} s (timed out)", timeout.as_secs())
        }
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset by the server".into(),
        io::ErrorKind::ConnectionAborted => "connection aborted".into(),
        io::ErrorKind::UnexpectedEof => "the connection closed early".into(),
        io::ErrorKind::NotFound | io::ErrorKind::AddrNotAvailable => {
            format!("address not available ({e})")
        }
        _ => e.to_string(),
    }
}

/// An HTTP answer that is not a success, in words. Redirects are not followed: a request that
/// carries credentials (basic auth, a token header) must not take them to another address.
pub fn status_text(status: http::StatusCode) -> String {
    if status.is_redirection() {
        format!("HTTP {status}: a redirect, which sqlguard does not follow (credentials would go along): configure the address it points to")
    } else {
        format!("HTTP {status}")
    }
}

/// An HTTP client error in words.
pub fn plain_http(e: &attohttpc::Error, timeout: Duration) -> String {
    match e.kind() {
        attohttpc::ErrorKind::Io(io) => plain_io(io, timeout),
        _ => e.to_string(),
    }
}

/// How long a run asked to stop still waits for answers over the network, counted once from
/// when it first waits after the signal, for every request together: a stopping run ends within
/// seconds, not after each receiver's timeout (up to five minutes per notifier).
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Runs `request` (an HTTP request) on a thread of its own and waits for its result; once the
/// run is asked to stop, only until [`STOP_GRACE`] after the first such wait of the run (the
/// request is then left to its thread, which the process's exit ends).
///
/// Fails when the thread cannot start, or the wait ends first.
pub fn until_stopped<T: Send + 'static>(
    request: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    use std::sync::mpsc::RecvTimeoutError;
    static DEADLINE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let (tx, rx) = std::sync::mpsc::channel();
    crate::threads::spawn("http-request", move || {
        let _ = tx.send(request());
    })
    .map_err(|e| e.to_string())?;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(answer) => return Ok(answer),
            Err(RecvTimeoutError::Timeout) if crate::signals::stopping() => {
                let until = *DEADLINE.get_or_init(|| std::time::Instant::now() + STOP_GRACE);
                if std::time::Instant::now() >= until {
                    return Err(format!(
                        "no answer within {} s of the signal to stop: not waited for",
                        STOP_GRACE.as_secs()
                    ));
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err("the request ended without an answer".into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_and_refusals_read_as_such() {
        let t = Duration::from_secs(5);
        assert_eq!(
            plain_io(&io::Error::from(io::ErrorKind::WouldBlock), t),
            "no answer within 5 s (timed out)"
        );
        assert_eq!(
            plain_io(&io::Error::from_raw_os_error(11), t),
            "no answer within 5 s (timed out)"
        );
        assert_eq!(
            plain_io(&io::Error::from_raw_os_error(111), t),
            "connection refused"
        );
    }
}
