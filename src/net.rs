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
