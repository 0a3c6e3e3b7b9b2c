//! The data path of one backup: source (the dump tool's stdout) → read-ahead → compressor →
//! age encryption (when the type has recipients) → SHA-256 and byte counters → every storage
//! writer at once, each on its own thread behind a bounded channel. The hash and the sizes are
//! those of the stored bytes, encrypted or not.
//!
//! The source is read on its own thread into at most [`READ_AHEAD`] chunks, so that the dump is
//! read steadily while the compressor works: a compressor that takes input in bursts (xz's
//! multi-threaded encoder takes a block per thread at a time) must never leave the dump tool's
//! socket unread long enough for the server to drop the connection (`net_write_timeout`).
//!
//! Memory is bounded: the read-ahead, the compressor's window, and at most [`LANE_DEPTH`] chunks
//! of [`CHUNK`] bytes queued per storage, whatever the size of the database. This module decides
//! nothing about success: it reports what happened, and the caller commits or aborts the writers.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

use crate::compress::{self, Compression};
use crate::storage::ObjectWriter;

/// Size of the chunks read from the source and handed to storage threads.
pub const CHUNK: usize = 1 << 20;
/// Chunks that may wait in each storage's queue.
pub const LANE_DEPTH: usize = 4;
/// Chunks read ahead of the compressor (8 MiB).
pub const READ_AHEAD: usize = 8;
/// Bytes of the source's end kept to check the dump's completion trailer.
pub const TAIL: usize = 512;

/// A storage writer to feed, with the storage's name.
pub struct Sink {
    pub storage: String,
    pub writer: Box<dyn ObjectWriter>,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sink({})", self.storage)
    }
}

/// What happened to one storage's copy of the stream.
pub struct LaneOutcome {
    pub storage: String,
    /// The writer, ready to commit, or why writing to it failed (it was aborted).
    pub result: Result<Box<dyn ObjectWriter>, String>,
}

impl std::fmt::Debug for LaneOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LaneOutcome({}, ok={})",
            self.storage,
            self.result.is_ok()
        )
    }
}

/// What the stream did.
#[derive(Debug)]
pub struct StreamOutcome {
    pub raw_bytes: u64,
    pub compressed_bytes: u64,
    /// SHA-256 of the compressed stream, lowercase hex.
    pub sha256: String,
    /// The last [`TAIL`] bytes of the source.
    pub tail: Vec<u8>,
    /// What the dump holds, counted from the stream.
    pub inventory: crate::inventory::Inventory,
    /// Where the dump's snapshot stands in the binary log, from its own comments.
    pub binlog: Option<crate::index::BinlogPosition>,
    /// Why the stream stopped early: a read, compression or all-storages failure.
    pub error: Option<String>,
    /// The cancel flag was seen.
    pub cancelled: bool,
    pub lanes: Vec<LaneOutcome>,
}

struct Lane {
    storage: String,
    tx: Option<SyncSender<Arc<[u8]>>>,
    handle: Option<JoinHandle<Result<Box<dyn ObjectWriter>, String>>>,
    /// Why the lane's thread did not start.
    refused: Option<String>,
}

/// Hashes, counts and fans compressed bytes out to the storage threads.
struct Fanout {
    hasher: Sha256,
    bytes: u64,
    buf: Vec<u8>,
    lanes: Vec<Lane>,
}

impl Fanout {
    fn new(sinks: Vec<Sink>) -> Fanout {
        let lanes = sinks
            .into_iter()
            .map(|sink| {
                let (tx, rx) = sync_channel::<Arc<[u8]>>(LANE_DEPTH);
                let storage = sink.storage;
                let writer = sink.writer;
                // The writer goes to the thread once it runs: a thread that cannot start
                // leaves it here, to be aborted (no temp file or open upload left).
                let (give, take) = sync_channel::<Box<dyn ObjectWriter>>(1);
                let started = crate::threads::spawn(&format!("store-{storage}"), move || {
                    let mut writer = take.recv().map_err(|_| "no writer".to_string())?;
                    for chunk in rx {
                        if let Err(e) = writer.write_all(&chunk) {
                            writer.abort();
                            return Err(e.to_string());
                        }
                    }
                    Ok(writer)
                });
                match started {
                    Ok(handle) => {
                        // The thread holds `take` until it has the writer.
                        let _ = give.send(writer);
                        Lane {
                            storage,
                            tx: Some(tx),
                            handle: Some(handle),
                            refused: None,
                        }
                    }
                    Err(e) => {
                        writer.abort();
                        Lane {
                            storage,
                            tx: None,
                            handle: None,
                            refused: Some(e.to_string()),
                        }
                    }
                }
            })
            .collect();
        Fanout {
            hasher: Sha256::new(),
            bytes: 0,
            buf: Vec::with_capacity(CHUNK),
            lanes,
        }
    }

    /// Sends the buffered bytes to every live lane; fails when no lane is left.
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk: Arc<[u8]> = Arc::from(std::mem::take(&mut self.buf).into_boxed_slice());
        self.buf.reserve(CHUNK);
        for lane in &mut self.lanes {
            if let Some(tx) = &lane.tx {
                if tx.send(Arc::clone(&chunk)).is_err() {
                    lane.tx = None;
                }
            }
        }
        if self.lanes.iter().all(|l| l.tx.is_none()) {
            return Err(io::Error::other("every storage failed"));
        }
        Ok(())
    }

    fn finish(&mut self) -> Vec<LaneOutcome> {
        let _ = self.send();
        self.lanes
            .iter_mut()
            .map(|lane| {
                lane.tx = None;
                let result = match lane.handle.take().map(JoinHandle::join) {
                    Some(Ok(r)) => r,
                    Some(Err(_)) => Err("storage thread panicked".to_string()),
                    None => Err(lane
                        .refused
                        .clone()
                        .unwrap_or_else(|| "storage already finished".to_string())),
                };
                LaneOutcome {
                    storage: lane.storage.clone(),
                    result,
                }
            })
            .collect()
    }
}

/// The encoder's inner writer: a handle on the shared fan-out, so that the fan-out can be
/// finished even when the encoder failed.
#[derive(Clone)]
struct FanoutHandle(Arc<Mutex<Fanout>>);

impl Write for FanoutHandle {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut f = self.0.lock().map_err(|_| io::Error::other("poisoned"))?;
        f.hasher.update(data);
        f.bytes += data.len() as u64;
        let mut rest = data;
        while !rest.is_empty() {
            let room = CHUNK - f.buf.len();
            let n = room.min(rest.len());
            f.buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if f.buf.len() >= CHUNK {
                f.send()?;
            }
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What the compressor writes into: the fan-out itself, or an age encryption stage in front of
/// it (which holds one 64 KiB chunk).
enum Stage {
    Plain(FanoutHandle),
    Age(crate::crypt::Encrypting<FanoutHandle>),
}

impl Write for Stage {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Stage::Plain(f) => f.write(data),
            Stage::Age(e) => e.write(data),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stage::Plain(f) => f.flush(),
            Stage::Age(e) => e.flush(),
        }
    }
}

impl Stage {
    /// Writes what the stage still holds (age's last chunk).
    fn finish(self) -> io::Result<()> {
        match self {
            Stage::Plain(_) => Ok(()),
            Stage::Age(e) => e.finish().map(|_| ()),
        }
    }
}

/// Slows the compressor, for tests only: it sleeps this long per MiB it takes (from
/// `SQLGUARD_TEST_COMPRESS_DELAY_MS`), as a slow compressor on a slow machine would.
#[derive(Debug, Clone, Copy, Default)]
pub struct Throttle(pub Option<std::time::Duration>);

/// The pipe capacity [`batched`] asks for.
const BATCH_PIPE: usize = 1 << 20;
/// A read that returns less than this found the pipe nearly empty: the next one waits first.
const BATCH_LOW: usize = 256 << 10;
/// How long a reader waits for the pipe to fill (a dump tool writes 100-200 MB/s, so about
/// 100-200 KiB of a 1 MiB pipe, and never enough to block it).
const BATCH_WAIT: std::time::Duration = std::time::Duration::from_millis(1);

/// A dump tool's stdout, read in batches.
///
/// The tool writes through stdio, 4 KiB per `write` into the pipe; a reader that waits in
/// `read` is woken by every one of them, which cost the tool and the reader about 15% of a
/// backup's CPU in context switches (the perf profile of a 166 MiB dump). With the pipe widened
/// to 1 MiB, a read that found it nearly empty waits 1 ms before the next: the tool's writes
/// then land in a pipe that is not empty, which wakes nobody, and each read takes what a
/// millisecond brought. When the pipe cannot be widened, it is read as it is (waiting on a
/// 64 KiB pipe would block the tool).
pub fn batched(pipe: std::process::ChildStdout) -> Box<dyn Read + Send> {
    if widen(&pipe) {
        Box::new(Batched { pipe, wait: false })
    } else {
        Box::new(pipe)
    }
}

/// Widens `pipe` to [`BATCH_PIPE`]; whether it now holds that much.
fn widen(pipe: &impl std::os::fd::AsFd) -> bool {
    rustix::pipe::fcntl_setpipe_size(pipe, BATCH_PIPE).is_ok_and(|size| size >= BATCH_PIPE)
}

/// See [`batched`].
struct Batched<R> {
    pipe: R,
    /// The last read found the pipe nearly empty.
    wait: bool,
}

impl<R: Read> Read for Batched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.wait {
            std::thread::sleep(BATCH_WAIT);
        }
        let n = self.pipe.read(buf)?;
        self.wait = n > 0 && n < BATCH_LOW.min(buf.len());
        Ok(n)
    }
}

/// Reads `source` on its own thread into a bounded channel of chunks of [`CHUNK`] bytes (the
/// last may be shorter); ends at EOF, at a read error (sent as the last item) or when the
/// receiver is gone. A chunk is filled by several reads (a pipe gives 64 KiB at a time) into
/// memory that is not zeroed first: zeroing a fresh chunk per read cost 14% of a backup's CPU.
fn read_ahead(
    mut source: Box<dyn Read + Send>,
) -> io::Result<std::sync::mpsc::Receiver<io::Result<Vec<u8>>>> {
    let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(READ_AHEAD);
    crate::threads::spawn("dump-reader", move || loop {
        let mut buf = Vec::with_capacity(CHUNK);
        match (&mut source).take(CHUNK as u64).read_to_end(&mut buf) {
            Ok(0) => break,
            Ok(_) => {
                if tx.send(Ok(buf)).is_err() {
                    break;
                }
            }
            Err(e) => {
                // What was read before the error still goes through, then the error.
                if !buf.is_empty() && tx.send(Ok(buf)).is_err() {
                    break;
                }
                let _ = tx.send(Err(e));
                break;
            }
        }
    })?;
    Ok(rx)
}

/// Streams `source` through `compression` (and age encryption to `recipients`, when given)
/// into every sink.
///
/// Never fails as a whole: read, compression and storage failures are reported in the outcome.
/// `progress` is called with the raw bytes read and the compressed bytes written so far; `cancel` is checked between chunks (and
/// while waiting for one, every 100 ms). The reading thread ends by itself once the source ends,
/// which the caller ensures by ending the dump tool when the stream stopped early.
pub fn stream(
    source: Box<dyn Read + Send>,
    compression: &Compression,
    recipients: Option<&crate::crypt::Recipients>,
    sinks: Vec<Sink>,
    progress: &mut dyn FnMut(u64, u64),
    cancel: &AtomicBool,
    throttle: Throttle,
) -> StreamOutcome {
    stream_inner(
        source,
        true,
        compression,
        recipients,
        sinks,
        progress,
        cancel,
        throttle,
    )
}

/// [`stream`] for bytes that are not a dump (binary log segments): no inventory scan.
pub fn stream_raw(
    source: Box<dyn Read + Send>,
    compression: &Compression,
    recipients: Option<&crate::crypt::Recipients>,
    sinks: Vec<Sink>,
    progress: &mut dyn FnMut(u64, u64),
    cancel: &AtomicBool,
    throttle: Throttle,
) -> StreamOutcome {
    stream_inner(
        source,
        false,
        compression,
        recipients,
        sinks,
        progress,
        cancel,
        throttle,
    )
}

#[allow(clippy::too_many_arguments)]
fn stream_inner(
    source: Box<dyn Read + Send>,
    scan: bool,
    compression: &Compression,
    recipients: Option<&crate::crypt::Recipients>,
    sinks: Vec<Sink>,
    progress: &mut dyn FnMut(u64, u64),
    cancel: &AtomicBool,
    throttle: Throttle,
) -> StreamOutcome {
    let fanout = Arc::new(Mutex::new(Fanout::new(sinks)));
    let mut raw_bytes = 0u64;
    let mut tail: Vec<u8> = Vec::with_capacity(2 * TAIL);
    let mut scanner = crate::inventory::Scanner::new();
    let mut error = None;
    let mut cancelled = false;
    let handle = FanoutHandle(Arc::clone(&fanout));
    let stage = match recipients {
        None => Ok(Stage::Plain(handle)),
        Some(r) => crate::crypt::encryptor(r, handle)
            .map(Stage::Age)
            .map_err(|e| e.to_string()),
    };
    let encoder = stage.and_then(|stage| {
        compress::encoder(compression, stage).map_err(|e| {
            format!(
                "cannot start the {} compressor: {e}",
                compression.algorithm.as_str()
            )
        })
    });
    match encoder {
        Err(e) => error = Some(e),
        Ok(mut enc) => match read_ahead(source) {
            Err(e) => error = Some(e.to_string()),
            Ok(chunks) => {
                loop {
                    if cancel.load(Ordering::Relaxed) {
                        cancelled = true;
                        break;
                    }
                    let chunk = match chunks.recv_timeout(std::time::Duration::from_millis(100)) {
                        Ok(Ok(c)) => c,
                        Ok(Err(e)) => {
                            error = Some(format!("reading the dump: {e}"));
                            break;
                        }
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                    };
                    raw_bytes += chunk.len() as u64;
                    if chunk.len() >= TAIL {
                        tail.clear();
                        tail.extend_from_slice(&chunk[chunk.len() - TAIL..]);
                    } else {
                        tail.extend_from_slice(&chunk);
                        if tail.len() > TAIL {
                            tail.drain(..tail.len() - TAIL);
                        }
                    }
                    if scan {
                        scanner.feed(&chunk);
                    }
                    if let Err(e) = enc.write_all(&chunk) {
                        error = Some(format!("writing the compressed stream: {e}"));
                        break;
                    }
                    if let Some(per_mib) = throttle.0 {
                        std::thread::sleep(per_mib.mul_f64(chunk.len() as f64 / CHUNK as f64));
                    }
                    let stored = fanout.lock().map_or(0, |f| f.bytes);
                    progress(raw_bytes, stored);
                }
                if error.is_none() && !cancelled {
                    match enc.finish() {
                        Err(e) => error = Some(format!("finishing the compressed stream: {e}")),
                        Ok(stage) => {
                            if let Err(e) = stage.finish() {
                                error = Some(format!("finishing the encrypted stream: {e}"));
                            }
                        }
                    }
                }
            }
        },
    }
    let mut f = fanout.lock().expect("fan-out not poisoned");
    let lanes = f.finish();
    let hasher = std::mem::take(&mut f.hasher);
    StreamOutcome {
        raw_bytes,
        compressed_bytes: f.bytes,
        sha256: hex::encode(hasher.finalize()),
        tail,
        binlog: scanner.binlog(),
        inventory: scanner.finish(),
        error,
        cancelled,
        lanes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress::Algorithm;
    use crate::storage::memory::MemoryStorage;
    use crate::storage::Storage;

    /// A batched pipe delivers every byte, in order, from a writer that writes small pieces
    /// fast and from one that pauses between them.
    #[test]
    fn a_batched_pipe_delivers_every_byte_of_fast_and_slow_writers() {
        for script in [
            "seq 1 300000",
            "for i in $(seq 1 40); do seq $i 1000; sleep 0.005; done",
        ] {
            let want = std::process::Command::new("sh")
                .args(["-c", script])
                .output()
                .unwrap()
                .stdout;
            let mut child = std::process::Command::new("sh")
                .args(["-c", script])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let stdout = child.stdout.take().unwrap();
            assert!(widen(&stdout));
            assert!(rustix::pipe::fcntl_getpipe_size(&stdout).unwrap() >= BATCH_PIPE);
            let mut pipe = Batched {
                pipe: stdout,
                wait: false,
            };
            let mut got = Vec::new();
            pipe.read_to_end(&mut got).unwrap();
            drop(pipe);
            child.wait().unwrap();
            assert!(
                got == want,
                "{script}: {} of {} bytes",
                got.len(),
                want.len()
            );
        }
    }

    fn sql(rows: u32) -> Vec<u8> {
        let mut v: Vec<u8> = (0..rows)
            .flat_map(|i| format!("INSERT INTO t VALUES ({i},'{}');\n", i * 7919).into_bytes())
            .collect();
        v.extend_from_slice(b"-- Dump completed on 2026-11-28\n");
        v
    }

    #[test]
    fn fans_out_identical_bytes_with_matching_hash() {
        let a = MemoryStorage::new("a");
        let b = MemoryStorage::new("b");
        let data = sql(200_000);
        let sinks = vec![
            Sink {
                storage: "a".into(),
                writer: a.put_stream("k", None).unwrap(),
            },
            Sink {
                storage: "b".into(),
                writer: b.put_stream("k", None).unwrap(),
            },
        ];
        let mut last = 0;
        let out = stream(
            Box::new(std::io::Cursor::new(data.clone())),
            &Compression::default(),
            None,
            sinks,
            &mut |n, _| last = n,
            &AtomicBool::new(false),
            Throttle::default(),
        );
        assert!(out.error.is_none() && !out.cancelled);
        assert_eq!(out.raw_bytes, data.len() as u64);
        assert_eq!(last, out.raw_bytes);
        assert!(crate::mysql::has_completion_trailer(&out.tail));
        for lane in out.lanes {
            lane.result.unwrap().commit().unwrap();
        }
        let (ga, gb) = (
            a.get_bytes("k").unwrap().unwrap(),
            b.get_bytes("k").unwrap().unwrap(),
        );
        assert_eq!(ga, gb);
        assert_eq!(ga.len() as u64, out.compressed_bytes);
        let hex = hex::encode(Sha256::digest(&ga));
        assert_eq!(hex, out.sha256);
        let mut plain = Vec::new();
        compress::decoder(Algorithm::Zstd, ga.as_slice())
            .unwrap()
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, data);
    }

    /// Issue 15: with recipients the stored bytes are an age file; the hash and size are
    /// theirs; decrypting and decompressing gives the dump back.
    #[test]
    fn encrypts_after_compression_and_hashes_what_is_stored() {
        use age::secrecy::ExposeSecret;
        let id = age::x25519::Identity::generate();
        let recipients = crate::crypt::Recipients::parse(vec![id.to_public().to_string()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.txt");
        std::fs::write(&key, format!("{}\n", id.to_string().expose_secret())).unwrap();
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let ids = crate::crypt::Identities::load(&key).unwrap();
        let m = MemoryStorage::new("m");
        let data = sql(200_000);
        let out = stream(
            Box::new(std::io::Cursor::new(data.clone())),
            &Compression::default(),
            Some(&recipients),
            vec![Sink {
                storage: "m".into(),
                writer: m.put_stream("k", None).unwrap(),
            }],
            &mut |_, _| {},
            &AtomicBool::new(false),
            Throttle::default(),
        );
        assert!(out.error.is_none(), "{:?}", out.error);
        for lane in out.lanes {
            lane.result.unwrap().commit().unwrap();
        }
        let stored = m.get_bytes("k").unwrap().unwrap();
        assert!(stored.starts_with(crate::crypt::MAGIC));
        assert_eq!(stored.len() as u64, out.compressed_bytes);
        assert_eq!(hex::encode(Sha256::digest(&stored)), out.sha256);
        let mut plain = Vec::new();
        compress::decoder(
            Algorithm::Zstd,
            crate::crypt::decryptor(&ids, stored.as_slice()).unwrap(),
        )
        .unwrap()
        .read_to_end(&mut plain)
        .unwrap();
        assert_eq!(plain, data);
    }

    /// A writer that fails after `ok` bytes.
    struct Failing {
        ok: usize,
    }
    impl Write for Failing {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if b.len() > self.ok {
                return Err(io::Error::other("disk full"));
            }
            self.ok -= b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl ObjectWriter for Failing {
        fn commit(self: Box<Self>) -> Result<(), crate::storage::StorageError> {
            Ok(())
        }
        fn abort(self: Box<Self>) {}
    }

    #[test]
    fn one_failed_storage_does_not_stop_the_others() {
        let good = MemoryStorage::new("good");
        let data = sql(300_000);
        let sinks = vec![
            Sink {
                storage: "bad".into(),
                writer: Box::new(Failing { ok: 10 }),
            },
            Sink {
                storage: "good".into(),
                writer: good.put_stream("k", None).unwrap(),
            },
        ];
        let none = Compression {
            algorithm: Algorithm::None,
            level: 0,
            threads: 1,
        };
        let out = stream(
            Box::new(std::io::Cursor::new(data.clone())),
            &none,
            None,
            sinks,
            &mut |_, _| {},
            &AtomicBool::new(false),
            Throttle::default(),
        );
        assert!(out.error.is_none(), "{:?}", out.error);
        assert!(out.lanes[0]
            .result
            .as_ref()
            .err()
            .unwrap()
            .contains("disk full"));
        out.lanes
            .into_iter()
            .nth(1)
            .unwrap()
            .result
            .unwrap()
            .commit()
            .unwrap();
        assert_eq!(good.get_bytes("k").unwrap().unwrap(), data);
    }

    #[test]
    fn every_storage_failing_stops_the_stream() {
        let data = sql(300_000);
        let sinks = vec![Sink {
            storage: "bad".into(),
            writer: Box::new(Failing { ok: 10 }),
        }];
        let none = Compression {
            algorithm: Algorithm::None,
            level: 0,
            threads: 1,
        };
        let out = stream(
            Box::new(std::io::Cursor::new(data.clone())),
            &none,
            None,
            sinks,
            &mut |_, _| {},
            &AtomicBool::new(false),
            Throttle::default(),
        );
        assert!(out.error.unwrap().contains("every storage failed"));
        assert!(out.raw_bytes < data.len() as u64);
    }

    #[test]
    fn cancel_stops_before_reading() {
        let m = MemoryStorage::new("m");
        let sinks = vec![Sink {
            storage: "m".into(),
            writer: m.put_stream("k", None).unwrap(),
        }];
        let out = stream(
            Box::new(std::io::Cursor::new(sql(10))),
            &Compression::default(),
            None,
            sinks,
            &mut |_, _| {},
            &AtomicBool::new(true),
            Throttle::default(),
        );
        assert!(out.cancelled);
        assert_eq!(out.raw_bytes, 0);
    }
}
