//! An S3-compatible bucket as storage, through rust-s3's blocking rustls client (no OpenSSL).
//!
//! Objects are uploaded with multipart uploads whose part size is chosen from the estimated size
//! and grows as the upload goes on, so that objects up to S3's 5 TiB limit fit in 10,000 parts.
//! Parts go up in the background, [`IN_FLIGHT`] at a time, so that the dump never waits for a
//! part's upload unless all of them are busy; memory stays at [`IN_FLIGHT`] + 2 parts. Each part
//! is signed over its SHA-256, which the server checks. An upload that fails or is dropped is
//! aborted, so nothing is ever visible under the final key until `commit` completes it.
//! Transient failures (connection errors, timeouts, HTTP 5xx, 429, throttling, a part damaged on
//! the way) are retried with exponential backoff and jitter;
//! permanent ones fail at once with a message that names the bucket, the endpoint and the fix.
//! Index updates are serialized by a lock file on this host (in `lock_dir`).

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use s3::creds::Credentials;
use s3::error::S3Error;
use s3::request::Request;
use s3::serde_types::Part;
use s3::{Bucket, Region};
use sha2::{Digest, Sha256};

use super::RetrySettings;
use super::{ObjectMeta, ObjectWriter, Orphan, Storage, StorageError, StorageLock};
use crate::config::S3Settings;
use crate::ui::Ui;

/// Parts uploaded at once by one writer (each on its own connection).
pub const IN_FLIGHT: usize = 3;

/// Smallest part S3 accepts (except the last one).
const MIN_PART: usize = 5 << 20;
/// The part size sqlguard starts from when the estimate is small.
pub const DEFAULT_PART: usize = 8 << 20;
/// S3's limit on parts per upload.
const MAX_PARTS: u32 = 10_000;
/// S3's limit on one part.
const MAX_PART: usize = 5 << 30;
/// Parts uploaded before the part size doubles.
const PARTS_PER_TIER: u32 = 1_000;
/// Per-request timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest wait for a connection or for data within a request (attohttpc's default).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// Per-request timeout once a signal asked the run to stop: each request then gets one attempt
/// of at most this long, so that recording the failure and aborting uploads end in bounded time.
pub const STOPPING_TIMEOUT: Duration = Duration::from_secs(10);

/// The part size to start an upload with, from the estimated object size: the default 8 MiB
/// unless the estimate would need more than ~9,000 parts.
pub fn initial_part_size(estimate: Option<u64>) -> usize {
    let Some(est) = estimate else {
        return DEFAULT_PART;
    };
    let want = est.div_ceil(9_000);
    let mib = want.div_ceil(1 << 20).saturating_mul(1 << 20);
    usize::try_from(mib)
        .unwrap_or(MAX_PART)
        .clamp(DEFAULT_PART, MAX_PART)
}

/// The size of part `number` (1-based) for an upload that started at `initial`: doubles every
/// 1,000 parts, so that an underestimated dump still fits (8 MiB start → over 8 TiB in 10,000).
pub fn part_size(initial: usize, number: u32) -> usize {
    let tier = (number.saturating_sub(1)) / PARTS_PER_TIER;
    initial.saturating_mul(1usize << tier.min(20)).min(MAX_PART)
}

/// How a failed request should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Transient,
    Permanent,
}

/// Classifies a rust-s3 error: connection problems, timeouts, 5xx, 429 and throttling are
/// transient; everything else (403, 404, bad request, …) is permanent.
pub fn classify(e: &S3Error) -> Failure {
    match e {
        S3Error::HttpFailWithBody(status, body) => {
            if (*status >= 500 && *status != 501 && *status != 505)
                || *status == 429
                || *status == 408
                || body.contains("SlowDown")
                || body.contains("Throttl")
                // The bytes that arrived are not the ones signed (or summed): damaged on the
                // way, so sending them again from memory can succeed.
                || body.contains("<Code>XAmzContentSHA256Mismatch<")
                || body.contains("<Code>BadDigest<")
                // A CompleteMultipartUpload can answer 200 with an error document: AWS asks
                // for a retry (a repeated completion that had landed is checked by the caller).
                || (*status == 200 && body.contains("<Error>"))
                // The connection was too slow or cut while the body was on its way.
                || body.contains("<Code>RequestTimeout<")
                || body.contains("<Code>IncompleteBody<")
            {
                Failure::Transient
            } else {
                Failure::Permanent
            }
        }
        // An untrusted certificate will not become trusted by retrying.
        S3Error::Atto(e) if e.to_string().contains("certificate") => Failure::Permanent,
        S3Error::Atto(_) | S3Error::Io(_) => Failure::Transient,
        _ => Failure::Permanent,
    }
}

/// The clients of one bucket, with one request timeout.
#[derive(Debug, Clone)]
struct Clients {
    /// For reads, lists and deletes.
    bucket: Box<Bucket>,
    /// For backup objects: carries the storage class and encryption headers.
    upload: Box<Bucket>,
    /// For indexes and manifests: carries the encryption headers only.
    meta: Box<Bucket>,
}

/// An S3 bucket (and key prefix) as a [`Storage`].
#[derive(Debug, Clone)]
pub struct S3Storage {
    name: String,
    settings: S3Settings,
    normal: Clients,
    /// The same clients with [`STOPPING_TIMEOUT`], used once a signal came.
    stopping: Clients,
    retry: RetrySettings,
    lock_dir: PathBuf,
    ui: Ui,
    /// Whether the run was told that the server cannot list incomplete uploads (once, not
    /// once per server pruned).
    told_no_upload_listing: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl S3Storage {
    /// Prepares a client; no request is sent.
    ///
    /// Fails when the endpoint or the credentials cannot be used to build a client.
    pub fn new(
        name: &str,
        settings: &S3Settings,
        retry: RetrySettings,
        lock_dir: PathBuf,
        ui: Ui,
    ) -> Result<S3Storage, StorageError> {
        // sqlguard retries itself, with its own classification and log lines.
        s3::set_retries(0);
        let fail = |message: String| StorageError::Remote {
            storage: name.to_string(),
            location: location(settings),
            message,
        };
        let region = Region::Custom {
            region: settings.region.clone(),
            endpoint: settings.endpoint.clone(),
        };
        let creds = Credentials::new(
            Some(&settings.access_key_id),
            Some(settings.secret_access_key.expose()),
            None,
            None,
            None,
        )
        .map_err(|e| fail(format!("credentials: {e}")))?;
        let mut bucket = Bucket::new(&settings.bucket, region, creds)
            .map_err(|e| fail(format!("client: {e}")))?
            .with_request_timeout(REQUEST_TIMEOUT)
            .map_err(|e| fail(format!("client: {e}")))?;
        if settings.path_style {
            bucket = bucket.with_path_style();
        }
        let header = |k: &'static str,
                      v: &str|
         -> Result<(http::HeaderName, http::HeaderValue), StorageError> {
            let value = v
                .parse()
                .map_err(|_| fail(format!("invalid {k} header value '{v}'")))?;
            Ok((http::HeaderName::from_static(k), value))
        };
        // Encryption applies to everything written; the storage class only to backup objects,
        // so that an archive class never makes the index or a manifest slow or costly to read.
        let mut encryption = http::HeaderMap::new();
        for (k, v) in [
            ("x-amz-server-side-encryption", &settings.sse),
            (
                "x-amz-server-side-encryption-aws-kms-key-id",
                &settings.sse_kms_key_id,
            ),
        ] {
            if let Some(v) = v {
                let (k, v) = header(k, v)?;
                encryption.insert(k, v);
            }
        }
        let mut objects = encryption.clone();
        if let Some(class) = &settings.storage_class {
            let (k, v) = header("x-amz-storage-class", class)?;
            objects.insert(k, v);
        }
        let clients = |timeout: Duration| -> Result<Clients, StorageError> {
            let bucket = bucket
                .with_request_timeout(timeout)
                .map_err(|e| fail(format!("client: {e}")))?;
            let with = |headers| -> Result<Box<Bucket>, StorageError> {
                Ok(Box::new(
                    bucket
                        .with_extra_headers(headers)
                        .map_err(|e| fail(format!("client: {e}")))?,
                ))
            };
            Ok(Clients {
                upload: with(objects.clone())?,
                meta: with(encryption.clone())?,
                bucket,
            })
        };
        Ok(S3Storage {
            name: name.to_string(),
            settings: settings.clone(),
            normal: clients(REQUEST_TIMEOUT)?,
            stopping: clients(STOPPING_TIMEOUT)?,
            retry,
            lock_dir,
            ui,
            told_no_upload_listing: Default::default(),
        })
    }

    /// The request timeout in force.
    fn timeout(&self) -> Duration {
        if crate::signals::stopping() {
            STOPPING_TIMEOUT
        } else {
            REQUEST_TIMEOUT
        }
    }

    /// How long a request waits for a connection or for data before it times out: the HTTP
    /// client's read timeout (its default, which rust-s3's requests keep), or less once a
    /// signal came. Messages name this, the wait that actually ran out.
    fn answer_timeout(&self) -> Duration {
        self.timeout().min(ANSWER_TIMEOUT)
    }

    /// The clients to use now: short-timeout ones once a signal came.
    fn c(&self) -> &Clients {
        if crate::signals::stopping() {
            &self.stopping
        } else {
            &self.normal
        }
    }

    fn full_key(&self, key: &str) -> String {
        if self.settings.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.settings.prefix)
        }
    }

    /// The storage key of a bucket key the server sent, when it is under the storage's prefix
    /// (a listing is asked for that prefix; a key outside it is no key of this storage).
    fn strip(&self, full: &str) -> Option<String> {
        if self.settings.prefix.is_empty() {
            Some(full.to_string())
        } else {
            full.strip_prefix(&format!("{}/", self.settings.prefix))
                .map(str::to_string)
        }
    }

    /// A failure of the server's answer itself (not of the request), as a storage error.
    fn answer_error(&self, what: &str, problem: &str) -> StorageError {
        StorageError::Remote {
            storage: self.name.clone(),
            location: location(&self.settings),
            message: format!("{what}: {problem}"),
        }
    }

    /// A permanent or exhausted failure, with a message that says what to check.
    fn error(&self, op: &str, key: &str, e: &S3Error) -> StorageError {
        let s = &self.settings;
        let hint = match e {
            S3Error::HttpFailWithBody(403, body) if body.contains("SignatureDoesNotMatch") => format!(
                "the secret key does not match the access key '{}': check storage.{}.secret_access_key",
                s.access_key_id, self.name
            ),
            S3Error::HttpFailWithBody(403, _) => format!(
                "access denied: check the credentials of storage '{}' and that they may write to bucket '{}'",
                self.name, s.bucket
            ),
            S3Error::HttpFailWithBody(404, body) if body.contains("NoSuchBucket") => format!(
                "bucket '{}' does not exist at {}: create it, or fix storage.{}.bucket",
                s.bucket, s.endpoint, self.name
            ),
            S3Error::HttpFailWithBody(status, body) => {
                match (xml_tag(body, "Code"), xml_tag(body, "Message")) {
                    (Some(code), Some(msg)) => format!("HTTP {status} {code}: {msg}"),
                    (Some(code), None) => format!("HTTP {status} {code}"),
                    _ => format!("HTTP {status}: {}", body.chars().take(200).collect::<String>()),
                }
            }
            S3Error::Atto(err) if err.to_string().contains("certificate") => format!(
                "the TLS certificate of {} is not trusted ({}): set storage.{}.ca_file to the PEM file of its CA",
                s.endpoint, plain(e, self.answer_timeout()), self.name
            ),
            // Cut short by a signal: not a question of the endpoint.
            // A request sent before the signal waited its full answer timeout, one sent after
            // it the shorter one: which, the error does not tell, so no wait is named.
            S3Error::Atto(_) | S3Error::Io(_) if crate::signals::stopping() => {
                let cause = plain(e, self.answer_timeout());
                if cause.starts_with("no answer within") {
                    "stopped by a signal (no answer came in time)".to_string()
                } else {
                    format!("stopped by a signal ({cause})")
                }
            }
            S3Error::Atto(_) | S3Error::Io(_) => format!(
                "cannot reach {}: {} (is the endpoint right and the server up?)",
                s.endpoint,
                plain(e, self.answer_timeout())
            ),
            other => plain(other, self.answer_timeout()),
        };
        let what = if key.is_empty() {
            op.to_string()
        } else {
            format!("{op} {}", self.full_key(key))
        };
        StorageError::Remote {
            storage: self.name.clone(),
            location: location(s),
            message: format!("{what}: {hint}"),
        }
    }

    /// Runs `f` until it succeeds, fails permanently, or the attempts are used up; each retry
    /// is logged with its reason.
    fn with_retry<T>(
        &self,
        op: &str,
        key: &str,
        mut f: impl FnMut() -> Result<T, S3Error>,
    ) -> Result<T, StorageError> {
        let mut attempt = 1;
        loop {
            // The HTTP client starts a thread per request to enforce its deadline.
            let tried = crate::threads::spawning_inside("http-deadline", &mut f)
                .unwrap_or_else(|e| Err(S3Error::Io(io::Error::other(e.to_string()))));
            match tried {
                Ok(v) => return Ok(v),
                Err(e)
                    if classify(&e) == Failure::Transient
                        && attempt < self.retry.attempts
                        && !crate::signals::stopping() =>
                {
                    let delay = backoff(attempt, self.retry.max_backoff.as_secs());
                    self.ui.warn(&format!(
                        "storage '{}': {op} {}: {} — retrying in {:.1}s (attempt {} of {})",
                        self.name,
                        self.full_key(key),
                        short(&e, self.answer_timeout()),
                        delay.as_secs_f64(),
                        attempt + 1,
                        self.retry.attempts
                    ));
                    std::thread::sleep(delay);
                    attempt += 1;
                }
                Err(e) => return Err(self.error(op, key, &e)),
            }
        }
    }

    /// Uploads one part without rust-s3's abort-on-error, so that a transient failure can be
    /// retried within the same upload.
    ///
    /// The request is signed with rust-s3's SigV4 functions over one SHA-256 of the part, which
    /// the server checks against the bytes it receives. rust-s3's own part upload hashes each
    /// part three times (SHA-256 twice and MD5 once) and copies it, which cost more CPU than
    /// the dump itself when uncompressed parts share two cores with the server.
    fn put_part(
        &self,
        full: &str,
        upload_id: &str,
        number: u32,
        data: &[u8],
    ) -> Result<Part, S3Error> {
        use hmac::Mac;
        use s3::signing;
        let bucket = &self.c().bucket;
        // The URL (with partNumber and uploadId), the host and the time come from rust-s3, so
        // that they are exactly what its other requests use; the body is not part of them.
        let command = s3::command::Command::PutObject {
            content: &[],
            multipart: Some(s3::command::Multipart::new(number, upload_id)),
            custom_headers: None,
            content_type: "application/octet-stream",
        };
        let request = s3::request::blocking::AttoRequest::new(bucket, full, command)?;
        let url = request.url()?;
        let datetime = request.datetime();
        let sha256 = hex::encode(Sha256::digest(data));
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::HOST, request.host_header().parse()?);
        headers.insert(http::header::CONTENT_LENGTH, data.len().into());
        headers.insert("x-amz-content-sha256", sha256.parse()?);
        headers.insert("x-amz-date", request.long_date()?.parse()?);
        let canonical = signing::canonical_request("PUT", &url, &headers, &sha256)?;
        let region = bucket.region();
        let to_sign = signing::string_to_sign(&datetime, &region, &canonical)?;
        let key = signing::signing_key(
            &datetime,
            self.settings.secret_access_key.expose(),
            &region,
            "s3",
        )?;
        let mut mac = signing::HmacSha256::new_from_slice(&key)?;
        mac.update(to_sign.as_bytes());
        let authorization = signing::authorization_header(
            &self.settings.access_key_id,
            &datetime,
            &region,
            &signing::signed_header_string(&headers),
            &hex::encode(mac.finalize().into_bytes()),
        )?;
        // The request timeout bounds waiting (connecting, an answer that does not come), not
        // sending: a part gets as long as it takes at PART_MIN_RATE on top, so that a slow link
        // is slow, not failed; a signal ends the sending (see PartBody).
        let mut put = attohttpc::put(url.clone())
            .connect_timeout(self.answer_timeout())
            .read_timeout(self.answer_timeout())
            .timeout(part_deadline(data.len(), self.timeout()))
            .header(http::header::AUTHORIZATION, authorization);
        for (name, value) in &headers {
            put = put.header(name, value);
        }
        let response = put.body(PartBody(data)).send()?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            return Err(S3Error::HttpFailWithBody(status, response.text()?));
        }
        let etag = response
            .headers()
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .ok_or(S3Error::HttpFailWithBody(
                status,
                "the part upload's answer has no ETag".into(),
            ))?;
        Ok(Part {
            etag: etag.to_string(),
            part_number: number,
        })
    }
}

/// The slowest sending a part upload waits for (64 KiB/s per connection, about 1.5 Mbit/s for
/// the parts in flight together) before the request is given up.
const PART_MIN_RATE: u64 = 64 << 10;

/// How long one part upload may take in all: the request timeout, plus the part sent at
/// [`PART_MIN_RATE`] (8 MiB: 2 min more; a 1 TB dump's 111 MiB parts: 30 min more).
fn part_deadline(len: usize, timeout: Duration) -> Duration {
    timeout + Duration::from_secs(u64::try_from(len).unwrap_or(u64::MAX) / PART_MIN_RATE)
}

/// A part's bytes as a request body of known length, written 64 KiB at a time so that a
/// signal ends the sending within a slice, not at the part's deadline.
struct PartBody<'a>(&'a [u8]);

impl attohttpc::body::Body for PartBody<'_> {
    fn kind(&mut self) -> std::io::Result<attohttpc::body::BodyKind> {
        Ok(attohttpc::body::BodyKind::KnownLength(self.0.len() as u64))
    }

    fn write<W: std::io::Write>(&mut self, mut w: W) -> std::io::Result<()> {
        for slice in self.0.chunks(64 << 10) {
            if crate::signals::stopping() {
                return Err(std::io::Error::other("stopped by a signal"));
            }
            w.write_all(slice)?;
        }
        Ok(())
    }
}

/// `s3://bucket/prefix`.
fn location(s: &S3Settings) -> String {
    if s.prefix.is_empty() {
        format!("s3://{}", s.bucket)
    } else {
        format!("s3://{}/{}", s.bucket, s.prefix)
    }
}

/// Exponential backoff with full jitter: up to 0.5 s × 2^(attempt-1), capped.
fn backoff(attempt: u32, max_secs: u64) -> Duration {
    let cap = Duration::from_secs(max_secs.max(1));
    let base = Duration::from_millis(500).saturating_mul(1u32 << attempt.min(16).saturating_sub(1));
    let ceiling = base.min(cap);
    ceiling.mul_f64(0.5 + fastrand::f64() / 2.0)
}

fn short(e: &S3Error, timeout: Duration) -> String {
    match e {
        S3Error::HttpFailWithBody(status, body) => {
            format!(
                "HTTP {status} {}",
                xml_tag(body, "Code").unwrap_or_default()
            )
        }
        other => plain(other, timeout),
    }
}

/// A rust-s3 error in words, without the library names it prefixes its messages with.
fn plain(e: &S3Error, timeout: Duration) -> String {
    match e {
        S3Error::Io(io) => crate::net::plain_io(io, timeout),
        S3Error::Atto(err) => crate::net::plain_http(err, timeout),
        other => {
            let text = other.to_string();
            for prefix in ["attohttpc: ", "io: ", "http: "] {
                if let Some(rest) = text.strip_prefix(prefix) {
                    return rest.to_string();
                }
            }
            text
        }
    }
}

/// The text of the first `<tag>…</tag>` in an S3 XML error body.
fn xml_tag(body: &str, tag: &str) -> Option<String> {
    let start = body.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    Some(body[start..end].to_string())
}

/// The body of a download, streamed from the thread that fetches it. The end of the stream is
/// an error, not a clean end, when the download failed or came up short.
struct DownloadReader {
    pipe: io::PipeReader,
    handle: Option<std::thread::JoinHandle<io::Result<()>>>,
    read: u64,
    expected: Option<u64>,
    what: String,
}

impl Read for DownloadReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.pipe.read(buf)?;
        self.read += n as u64;
        if n == 0 && !buf.is_empty() {
            if let Some(h) = self.handle.take() {
                let outcome = h
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("download thread panicked")));
                // The kind travels: an object gone since it was opened is NotFound.
                outcome.map_err(|e| {
                    io::Error::new(e.kind(), format!("downloading {}: {e}", self.what))
                })?;
                if let Some(size) = self.expected.filter(|s| *s != self.read) {
                    return Err(io::Error::other(format!(
                        "downloading {}: got {} of {size} bytes",
                        self.what, self.read
                    )));
                }
            }
        }
        Ok(n)
    }
}

/// The parts of one multipart upload, uploaded in the background by [`IN_FLIGHT`] threads that
/// take them from a queue of one: the writer hands a part over and goes on filling the next.
#[derive(Debug)]
struct Uploader {
    tx: Option<std::sync::mpsc::SyncSender<(u32, Vec<u8>)>>,
    workers: Vec<std::thread::JoinHandle<()>>,
    parts: std::sync::Arc<std::sync::Mutex<Vec<Part>>>,
    /// The first part that failed for good; later parts are skipped.
    failed: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    /// Set when the upload is given up: queued parts are dropped.
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Buffers of parts that are done, for the writer to fill again: reusing them spares the
    /// kernel zeroing fresh pages for every part.
    spare: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
}

impl Uploader {
    fn start(storage: &S3Storage, key: &str, full: &str, upload_id: &str) -> Uploader {
        use std::sync::{atomic::AtomicBool, Arc, Mutex};
        let (tx, rx) = std::sync::mpsc::sync_channel::<(u32, Vec<u8>)>(1);
        let rx = Arc::new(Mutex::new(rx));
        let parts: Arc<Mutex<Vec<Part>>> = Arc::default();
        let failed: Arc<Mutex<Option<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let spare: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let workers = (0..IN_FLIGHT)
            .map(|_| {
                let (rx, parts, failed, stop, spare) = (
                    Arc::clone(&rx),
                    Arc::clone(&parts),
                    Arc::clone(&failed),
                    Arc::clone(&stop),
                    Arc::clone(&spare),
                );
                let (s, key, full, id) = (
                    storage.clone(),
                    key.to_string(),
                    full.to_string(),
                    upload_id.to_string(),
                );
                crate::threads::spawn("s3-part", move || loop {
                    let job = rx.lock().map(|r| r.recv());
                    let Ok(Ok((number, mut data))) = job else {
                        return;
                    };
                    let given_up = stop.load(std::sync::atomic::Ordering::Relaxed)
                        || failed.lock().map(|f| f.is_some()).unwrap_or(true);
                    if given_up {
                        continue;
                    }
                    let done = s.with_retry(&format!("uploading part {number} of"), &key, || {
                        // Once the upload is given up, a part in its retries stops too.
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            return Err(S3Error::HttpFailWithBody(
                                0,
                                "the upload was given up".into(),
                            ));
                        }
                        s.put_part(&full, &id, number, &data)
                    });
                    match done {
                        Ok(part) => {
                            s.ui.debug(&format!(
                                "storage '{}': uploaded part {number} ({} bytes) of {full}",
                                s.name,
                                data.len()
                            ));
                            if let Ok(mut p) = parts.lock() {
                                p.push(part);
                            }
                        }
                        Err(e) => {
                            // The writer names the storage itself.
                            let why = match e {
                                StorageError::Remote { message, .. } => message,
                                other => other.to_string(),
                            };
                            if let Ok(mut f) = failed.lock() {
                                f.get_or_insert(why);
                            }
                        }
                    }
                    data.clear();
                    if let Ok(mut spare) = spare.lock() {
                        spare.push(data);
                    }
                })
            })
            .collect::<Vec<_>>();
        // Fewer threads when some cannot start; none fails the upload with the reason.
        let mut refused = None;
        let workers: Vec<_> = workers
            .into_iter()
            .filter_map(|w| w.map_err(|e| refused = Some(e.to_string())).ok())
            .collect();
        if let (true, Some(e), Ok(mut f)) = (workers.is_empty(), refused, failed.lock()) {
            f.get_or_insert(e);
        }
        Uploader {
            tx: Some(tx),
            workers,
            parts,
            failed,
            stop,
            spare,
        }
    }

    /// An empty buffer for the next part: a done part's, or a new one.
    fn buffer(&self, size: usize) -> Vec<u8> {
        let reused = self.spare.lock().ok().and_then(|mut s| s.pop());
        match reused {
            Some(mut b) => {
                b.reserve(size);
                b
            }
            None => Vec::with_capacity(size),
        }
    }

    /// Why the upload cannot succeed, if a part failed for good.
    fn failure(&self) -> Option<String> {
        self.failed
            .lock()
            .map(|f| f.clone())
            .unwrap_or_else(|_| Some("a part upload thread panicked".into()))
    }

    /// Queues one part; waits while the queue is full (every thread busy).
    ///
    /// The wait ends at a signal too: every thread may be stuck sending to a server that
    /// stopped reading, which only the part's deadline would end.
    fn send(&self, number: u32, data: Vec<u8>) -> Result<(), String> {
        use std::sync::mpsc::TrySendError;
        let tx = self.tx.as_ref().expect("not finished");
        let mut job = (number, data);
        loop {
            if let Some(e) = self.failure() {
                return Err(e);
            }
            if crate::signals::stopping() {
                self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
                return Err("stopped by a signal".into());
            }
            match tx.try_send(job) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(back)) => {
                    job = back;
                    // Short: a slot freed is taken at once when uploads set the pace.
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(TrySendError::Disconnected(_)) => {
                    return Err("the part upload threads are gone".into())
                }
            }
        }
    }

    /// Waits for every queued part (or, with `give_up`, only for those in flight); returns the
    /// uploaded parts in order, or why one failed.
    fn finish(&mut self, give_up: bool) -> Result<Vec<Part>, String> {
        if give_up {
            self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        self.tx = None;
        let workers = std::mem::take(&mut self.workers);
        for w in workers {
            // A part waiting for its answer cannot be interrupted: after a signal the run
            // does not wait for it (its thread ends with the process; the upload is aborted,
            // and a part landing after that leaves an upload that prune removes).
            while !w.is_finished() {
                if crate::signals::stopping() {
                    self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    return Err("stopped by a signal".into());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if w.join().is_err() {
                return Err("a part upload thread panicked".into());
            }
        }
        if let Some(e) = self.failure() {
            return Err(e);
        }
        let mut parts = std::mem::take(&mut *self.parts.lock().map_err(|_| "poisoned")?);
        parts.sort_by_key(|p| p.part_number);
        Ok(parts)
    }
}

/// An object being uploaded.
#[derive(Debug)]
struct S3Writer {
    storage: S3Storage,
    key: String,
    full: String,
    buf: Vec<u8>,
    initial_part: usize,
    upload_id: Option<String>,
    uploader: Option<Uploader>,
    /// Parts handed to the uploader so far.
    queued: u32,
    written: u64,
    done: bool,
}

impl S3Writer {
    fn next_part_size(&self) -> usize {
        part_size(self.initial_part, self.queued.saturating_add(1))
    }

    fn io_err(e: StorageError) -> io::Error {
        io::Error::other(e.to_string())
    }

    fn remote(&self, message: String) -> StorageError {
        StorageError::Remote {
            storage: self.storage.name.clone(),
            location: location(&self.storage.settings),
            message,
        }
    }

    /// Hands `buf` over as the next part, starting the multipart upload (and its uploader)
    /// first if needed. Fails when a part before it failed for good.
    fn flush_part(&mut self) -> Result<(), StorageError> {
        let number = self.queued.saturating_add(1);
        if number > MAX_PARTS {
            return Err(self.remote(format!("{} is larger than 10,000 parts allow", self.full)));
        }
        if self.upload_id.is_none() {
            let s = &self.storage;
            let r = s.with_retry("starting upload of", &self.key, || {
                s.c()
                    .upload
                    .initiate_multipart_upload(&self.full, "application/octet-stream")
            })?;
            self.uploader = Some(Uploader::start(s, &self.key, &self.full, &r.upload_id));
            self.upload_id = Some(r.upload_id);
        }
        let data = std::mem::take(&mut self.buf);
        let uploader = self.uploader.as_ref().expect("upload started");
        if let Err(e) = uploader.send(number, data) {
            return Err(self.remote(e));
        }
        self.queued = number;
        self.buf = uploader.buffer(self.next_part_size().min(64 << 20));
        Ok(())
    }

    /// Gives the upload up: drops the queued parts, waits for those in flight, aborts it.
    fn abort_upload(&mut self) {
        if let Some(mut u) = self.uploader.take() {
            let _ = u.finish(true);
        }
        if let Some(id) = self.upload_id.take() {
            let s = self.storage.clone();
            if let Err(e) = s.with_retry("aborting upload of", &self.key, || {
                s.c().bucket.abort_upload(&self.full, &id)
            }) {
                s.ui.warn(&format!("{e} (prune removes the leftover upload later)"));
            }
        }
    }
}

impl Write for S3Writer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(e) = self.uploader.as_ref().and_then(Uploader::failure) {
            return Err(Self::io_err(self.remote(e)));
        }
        let mut rest = data;
        while !rest.is_empty() {
            let room = self.next_part_size().saturating_sub(self.buf.len());
            let n = room.min(rest.len());
            self.buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if self.buf.len() >= self.next_part_size() {
                self.flush_part().map_err(Self::io_err)?;
            }
        }
        self.written += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ObjectWriter for S3Writer {
    fn commit(mut self: Box<Self>) -> Result<(), StorageError> {
        let s = self.storage.clone();
        if self.upload_id.is_none() && self.buf.len() < MIN_PART.max(DEFAULT_PART) {
            // Small object: one PUT.
            let data = std::mem::take(&mut self.buf);
            s.with_retry("uploading", &self.key, || {
                s.c().upload.put_object(&self.full, &data).map(|_| ())
            })?;
            self.done = true;
            return Ok(());
        }
        if !self.buf.is_empty() {
            if let Err(e) = self.flush_part() {
                self.abort_upload();
                return Err(e);
            }
        }
        let finished = self.uploader.take().expect("upload started").finish(false);
        let parts = match finished {
            Ok(p) => p,
            Err(e) => {
                self.abort_upload();
                return Err(self.remote(e));
            }
        };
        let id = self.upload_id.clone().expect("upload started");
        let started = std::time::Instant::now();
        let completed = s.with_retry("completing upload of", &self.key, || {
            s.c()
                .bucket
                .complete_multipart_upload(&self.full, &id, parts.clone())
                .map(|_| ())
        });
        if let Err(e) = completed {
            // The completion may have landed before the connection dropped: accept it only
            // when the object is there with every byte.
            if s.stat(&self.key)?.is_some_and(|m| m.size == self.written) {
                self.done = true;
                return Ok(());
            }
            self.abort_upload();
            return Err(e);
        }
        s.ui.debug(&format!(
            "storage '{}': completed the upload of {} ({} parts) in {:.3}s",
            s.name,
            self.full,
            parts.len(),
            started.elapsed().as_secs_f64()
        ));
        self.done = true;
        self.upload_id = None;
        Ok(())
    }

    fn abort(mut self: Box<Self>) {
        self.abort_upload();
        self.done = true;
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        if !self.done {
            self.abort_upload();
        }
    }
}

impl Storage for S3Storage {
    fn name(&self) -> &str {
        &self.name
    }

    fn location(&self) -> String {
        location(&self.settings)
    }

    fn put_stream(
        &self,
        key: &str,
        size_hint: Option<u64>,
    ) -> Result<Box<dyn ObjectWriter>, StorageError> {
        super::check_key(&self.name, key)?;
        let initial = initial_part_size(size_hint);
        Ok(Box::new(S3Writer {
            storage: self.clone(),
            key: key.to_string(),
            full: self.full_key(key),
            buf: Vec::with_capacity(initial.min(64 << 20)),
            initial_part: initial,
            upload_id: None,
            uploader: None,
            queued: 0,
            written: 0,
            done: false,
        }))
    }

    fn put_bytes(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        super::check_key(&self.name, key)?;
        let full = self.full_key(key);
        self.with_retry("uploading", key, || {
            self.c().meta.put_object(&full, data).map(|_| ())
        })
    }

    fn get(&self, key: &str) -> Result<Box<dyn Read + Send>, StorageError> {
        super::check_key(&self.name, key)?;
        // Fail early (and clearly) on a missing object, then stream the body through a pipe.
        let Some(meta) = self.stat(key)? else {
            return Err(StorageError::NotFound {
                storage: self.name.clone(),
                location: format!("{} key {}", self.location(), self.full_key(key)),
            });
        };
        let (reader, mut writer) = io::pipe().map_err(|source| StorageError::Io {
            storage: self.name.clone(),
            op: "creating a pipe for",
            location: key.to_string(),
            cause: source,
        })?;
        let bucket = self.c().bucket.clone();
        let full = self.full_key(key);
        let timeout = self.answer_timeout();
        let handle = crate::threads::spawn("s3-download", move || -> io::Result<()> {
            let gone = |status: u16, text: String| {
                if status == 404 {
                    io::Error::new(io::ErrorKind::NotFound, text)
                } else {
                    io::Error::other(text)
                }
            };
            let status = crate::threads::spawning_inside("http-deadline", || {
                bucket.get_object_to_writer(&full, &mut writer)
            })
            .map_err(|e| io::Error::other(e.to_string()))?
            .map_err(|e| match &e {
                S3Error::HttpFailWithBody(status, _) => gone(*status, plain(&e, timeout)),
                _ => io::Error::other(plain(&e, timeout)),
            })?;
            if !(200..300).contains(&status) {
                return Err(gone(status, format!("HTTP {status}")));
            }
            Ok(())
        })
        .map_err(|cause| StorageError::Io {
            storage: self.name.clone(),
            op: "starting the download of",
            location: key.to_string(),
            cause,
        })?;
        let reader = DownloadReader {
            pipe: reader,
            handle: Some(handle),
            read: 0,
            expected: Some(meta.size),
            what: format!("{} key {}", self.location(), self.full_key(key)),
        };
        Ok(Box::new(reader))
    }

    fn get_bytes_at_most(&self, key: &str, max: u64) -> Result<Option<Vec<u8>>, StorageError> {
        super::check_key(&self.name, key)?;
        let full = self.full_key(key);
        // The body streams into a capped buffer: an object over the cap stops the download
        // there, and is not retried.
        let mut over = false;
        let r = self.with_retry("reading", key, || {
            let mut body = super::CappedBuffer {
                buf: Vec::new(),
                max,
                over: false,
            };
            let failed = match self.c().bucket.get_object_to_writer(&full, &mut body) {
                _ if body.over => {
                    over = true;
                    return Ok(None);
                }
                Ok(status) if (200..300).contains(&status) => return Ok(Some(body.buf)),
                Ok(status) => S3Error::HttpFailWithBody(
                    status,
                    String::from_utf8_lossy(&body.buf).into_owned(),
                ),
                Err(e) => e,
            };
            match failed {
                S3Error::HttpFailWithBody(404, text)
                    if text.contains("NoSuchKey") || text.is_empty() =>
                {
                    Ok(None)
                }
                e => Err(e),
            }
        })?;
        if over {
            return Err(StorageError::Io {
                storage: self.name.clone(),
                op: "reading",
                location: format!("{} key {full}", self.location()),
                cause: super::too_large(max),
            });
        }
        Ok(r)
    }

    fn stat(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        super::check_key(&self.name, key)?;
        let full = self.full_key(key);
        self.with_retry("reading metadata of", key, || {
            match self.c().bucket.head_object(&full) {
                Ok((head, _)) => Ok(Some(ObjectMeta {
                    key: key.to_string(),
                    size: head
                        .content_length
                        .and_then(|l| u64::try_from(l).ok())
                        .unwrap_or(0),
                    modified: head
                        .last_modified
                        .as_deref()
                        .and_then(|t| DateTime::parse_from_rfc2822(t).ok())
                        .map(|t| t.with_timezone(&Utc)),
                })),
                Err(S3Error::HttpFailWithBody(404, _)) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        super::check_prefix(&self.name, prefix)?;
        let full = self.full_key(prefix);
        // Page by page, not with rust-s3's `list`, which follows whatever continuation token
        // the server sends: one that repeats would loop (and grow) for ever, past signals.
        let mut out: Vec<ObjectMeta> = Vec::new();
        let mut token: Option<String> = None;
        let mut seen: HashSet<String> = HashSet::new();
        let what = format!("listing {full}");
        loop {
            if crate::signals::stopping() {
                return Err(self.answer_error(&what, "stopped by a signal"));
            }
            let (page, _) = self.with_retry("listing", prefix, || {
                self.c()
                    .bucket
                    .list_page(full.clone(), None, token.clone(), None, None)
            })?;
            out.extend(page.contents.into_iter().filter_map(|o| {
                // Only keys under what was asked for: a key outside it is none of this listing's.
                let key = self.strip(&o.key).filter(|k| k.starts_with(prefix))?;
                Some(ObjectMeta {
                    key,
                    size: o.size,
                    modified: DateTime::parse_from_rfc3339(&o.last_modified)
                        .ok()
                        .map(|t| t.with_timezone(&Utc)),
                })
            }));
            if !page.is_truncated {
                break;
            }
            match page.next_continuation_token {
                Some(t) if !t.is_empty() && seen.insert(t.clone()) => token = Some(t),
                Some(_) => {
                    return Err(self.answer_error(
                        &what,
                        "the server sent a continuation token it had sent before, so the listing would never end (a bug of the S3 server or of a proxy in between)",
                    ))
                }
                None => {
                    return Err(self.answer_error(
                        &what,
                        "the server said the listing goes on but sent no continuation token, so the rest cannot be read (a bug of the S3 server or of a proxy in between)",
                    ))
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out.dedup_by(|a, b| a.key == b.key);
        Ok(out)
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        super::check_key(&self.name, key)?;
        let full = self.full_key(key);
        self.with_retry("deleting", key, || {
            match self.c().bucket.delete_object(&full) {
                Ok(_) | Err(S3Error::HttpFailWithBody(404, _)) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    fn delete_many(&self, keys: &[String]) -> Result<Vec<(String, StorageError)>, StorageError> {
        for k in keys {
            super::check_key(&self.name, k)?;
        }
        let mut failed = Vec::new();
        for chunk in keys.chunks(1000) {
            let objects: Vec<s3::serde_types::ObjectIdentifier> = chunk
                .iter()
                .map(|k| s3::serde_types::ObjectIdentifier::new(self.full_key(k)))
                .collect();
            let result = self.with_retry("deleting a batch under", "", || {
                self.c().bucket.delete_objects(objects.clone())
            })?;
            // The request asks for every key's outcome: a key the answer neither says deleted
            // nor failed is not taken for deleted (an answer that confirms nothing, from a
            // server or proxy that did not do the work).
            let mut unanswered: HashSet<String> = chunk.iter().cloned().collect();
            for d in &result.deleted {
                if let Some(k) = self.strip(&d.key) {
                    unanswered.remove(&k);
                }
            }
            for e in &result.errors {
                let Some(key) = self.strip(&e.key) else {
                    continue;
                };
                if !unanswered.remove(&key) || e.code == "NoSuchKey" {
                    continue;
                }
                failed.push((
                    key,
                    self.answer_error(
                        &format!("deleting {}", e.key),
                        &format!("{} {}", e.code, e.message),
                    ),
                ));
            }
            // Each key the answer left out is looked up: gone, it was deleted (a server that
            // answers as if asked for quiet mode); there still, or not to be looked up, it failed.
            let mut unanswered: Vec<String> = unanswered.into_iter().collect();
            unanswered.sort();
            for key in unanswered {
                let what = format!("deleting {}", self.full_key(&key));
                match self.stat(&key) {
                    Ok(None) => {}
                    Ok(Some(_)) => failed.push((
                        key,
                        self.answer_error(
                            &what,
                            "the server's answer to the batch delete did not name this key, and it is still there",
                        ),
                    )),
                    Err(e) => failed.push((
                        key,
                        self.answer_error(
                            &what,
                            &format!("the server's answer to the batch delete did not name this key, and looking it up failed ({e})"),
                        ),
                    )),
                }
            }
        }
        Ok(failed)
    }

    fn orphans(
        &self,
        prefix: &str,
        older_than: DateTime<Utc>,
    ) -> Result<Vec<Orphan>, StorageError> {
        super::check_prefix(&self.name, prefix)?;
        let full = self.full_key(prefix);
        let listed = self.with_retry("listing incomplete uploads under", prefix, || {
            self.c().bucket.list_multiparts_uploads(Some(&full), None)
        });
        let pages = match listed {
            Ok(p) => p,
            Err(e)
                if e.to_string().contains("NotImplemented")
                    || e.to_string().contains("HTTP 501") =>
            {
                if !self
                    .told_no_upload_listing
                    .swap(true, std::sync::atomic::Ordering::Relaxed)
                {
                    self.ui.warn(&format!(
                        "storage '{}': the server cannot list incomplete uploads; add a lifecycle rule (AbortIncompleteMultipartUpload) to the bucket instead",
                        self.name
                    ));
                }
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        Ok(pages
            .into_iter()
            .flat_map(|p| p.uploads)
            .filter_map(|u| {
                // Only sqlguard's own uploads: a backup object's name under what was asked for.
                let key = self
                    .strip(&u.key)
                    .filter(|k| k.starts_with(prefix) && crate::layout::is_object_name(k))?;
                let initiated = DateTime::parse_from_rfc3339(&u.initiated)
                    .ok()?
                    .with_timezone(&Utc);
                (initiated < older_than).then_some(Orphan {
                    kind: "upload",
                    key,
                    upload_id: Some(u.id),
                    size: 0,
                    modified: Some(initiated),
                })
            })
            .collect())
    }

    fn remove_orphan(&self, orphan: &Orphan) -> Result<(), StorageError> {
        super::check_key(&self.name, &orphan.key)?;
        let Some(id) = &orphan.upload_id else {
            return Ok(());
        };
        let full = self.full_key(&orphan.key);
        self.with_retry("aborting upload of", &orphan.key, || {
            match self.c().bucket.abort_upload(&full, id) {
                Ok(()) | Err(S3Error::HttpFailWithBody(404, _)) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    fn preflight(&self) -> Result<(), StorageError> {
        let prefix = self.full_key("");
        self.with_retry("checking bucket", "", || {
            self.c()
                .bucket
                .list_page(prefix.clone(), None, None, None, Some(1))
                .map(|_| ())
        })
    }

    fn lock(&self, name: &str) -> Result<StorageLock, StorageError> {
        // Named by where the index is (bucket and prefix), never by the storage's name in one
        // config, nor by the endpoint: two configs on this host that name the same bucket
        // differently, or reach it by another spelling of the endpoint (`localhost` and
        // `127.0.0.1`, a trailing slash), still take the same lock. Two services with a bucket
        // and prefix of the same names only wait for each other.
        let digest = Sha256::digest(self.location().as_bytes());
        let id = hex::encode(&digest[..8]);
        let file = format!("s3-{id}-{}.lock", name.replace('/', "_"));
        let path = self.lock_dir.join(file);
        let io_err = |source| StorageError::Io {
            storage: self.name.clone(),
            op: "locking",
            location: path.display().to_string(),
            cause: source,
        };
        crate::joblock::secure_dir(&self.lock_dir).map_err(io_err)?;
        StorageLock::acquire(&path).map_err(io_err)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_object_gone_before_its_download_is_not_found() {
        use std::io::Read;
        let (pipe, writer) = std::io::pipe().unwrap();
        drop(writer);
        let handle = std::thread::spawn(|| -> std::io::Result<()> {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "HTTP 404 NoSuchKey",
            ))
        });
        let mut r = super::DownloadReader {
            pipe,
            handle: Some(handle),
            read: 0,
            expected: Some(10),
            what: "k".into(),
        };
        let e = r.read(&mut [0u8; 16]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
    }

    use super::*;

    #[test]
    fn part_sizes_fit_five_tebibytes_in_ten_thousand_parts() {
        assert_eq!(initial_part_size(None), DEFAULT_PART);
        assert_eq!(initial_part_size(Some(1 << 30)), DEFAULT_PART);
        let big = initial_part_size(Some(2 << 40));
        assert!(big > DEFAULT_PART && big.is_multiple_of(1 << 20), "{big}");
        // Even starting at 8 MiB (an estimate far too low), 10,000 growing parts hold 5 TiB.
        let total: u64 = (1..=MAX_PARTS)
            .map(|n| part_size(DEFAULT_PART, n) as u64)
            .sum();
        assert!(total >= 5 << 40, "{total}");
        assert_eq!(part_size(DEFAULT_PART, 1), DEFAULT_PART);
        assert_eq!(part_size(DEFAULT_PART, 1000), DEFAULT_PART);
        assert_eq!(part_size(DEFAULT_PART, 1001), 2 * DEFAULT_PART);
        assert!(part_size(DEFAULT_PART, 10_000) <= MAX_PART);
    }

    /// A part may take the request timeout plus its sending at 64 KiB/s: a slow link that
    /// still moves its bytes is not failed at a fixed 120 s whatever the part's size.
    #[test]
    fn a_part_gets_time_for_its_size() {
        let t = Duration::from_secs(120);
        assert_eq!(part_deadline(0, t), t);
        assert_eq!(
            part_deadline(DEFAULT_PART, t),
            Duration::from_secs(120 + 128)
        );
        assert_eq!(
            part_deadline(111 << 20, t),
            Duration::from_secs(120 + 111 * 16)
        );
        assert!(part_deadline(MAX_PART, STOPPING_TIMEOUT) > STOPPING_TIMEOUT);
    }

    #[test]
    fn failures_are_classified() {
        let http = |s, b: &str| S3Error::HttpFailWithBody(s, b.to_string());
        for e in [
            http(500, ""),
            http(503, "<Code>SlowDown</Code>"),
            http(429, ""),
            http(400, "<Code>Throttling</Code>"),
            http(400, "<Code>XAmzContentSHA256Mismatch</Code>"),
            http(400, "<Code>BadDigest</Code>"),
            http(400, "<Code>RequestTimeout</Code>"),
            http(400, "<Code>IncompleteBody</Code>"),
            // CompleteMultipartUpload's "200 OK" with an error document.
            http(
                200,
                "<?xml version=\"1.0\"?><Error><Code>InternalError</Code></Error>",
            ),
        ] {
            assert_eq!(classify(&e), Failure::Transient, "{e}");
        }
        for e in [
            http(403, "<Code>SignatureDoesNotMatch</Code>"),
            http(404, "<Code>NoSuchBucket</Code>"),
            http(400, ""),
            http(501, "<Code>NotImplemented</Code>"),
            // What a part whose upload was given up answers itself: never retried.
            http(0, "the upload was given up"),
        ] {
            assert_eq!(classify(&e), Failure::Permanent, "{e}");
        }
        assert_eq!(
            classify(&S3Error::Io(io::Error::other("reset"))),
            Failure::Transient
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..10 {
            let d = backoff(attempt, 5);
            assert!(d <= Duration::from_secs(5), "{d:?}");
        }
        assert!(backoff(1, 30) <= Duration::from_millis(500));
    }

    #[test]
    fn xml_error_codes_are_read() {
        assert_eq!(
            xml_tag("<Error><Code>NoSuchBucket</Code></Error>", "Code").as_deref(),
            Some("NoSuchBucket")
        );
        assert_eq!(xml_tag("nothing", "Code"), None);
    }
}
