//! Streaming compression: zstd (multi-threaded, the default), xz (liblzma, multi-threaded) or none.
//!
//! Owns the choice of encoder, its level and thread count, and the file extension each algorithm
//! gives an object. It never buffers a whole stream: encoders write through to the writer they wrap.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

/// A compression algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// Zstandard: fast, multi-threaded; `zstd -d` restores.
    Zstd,
    /// xz (LZMA2): slow, smaller at high levels, for long-kept tiers; `xz -d` restores.
    Xz,
    /// No compression.
    None,
}

impl Algorithm {
    /// The object name suffix, e.g. `sql.zst`.
    pub fn extension(self) -> &'static str {
        match self {
            Algorithm::Zstd => "sql.zst",
            Algorithm::Xz => "sql.xz",
            Algorithm::None => "sql",
        }
    }

    /// The level used when the config names none.
    pub fn default_level(self) -> i32 {
        match self {
            Algorithm::Zstd => 3,
            Algorithm::Xz => 6,
            Algorithm::None => 0,
        }
    }

    /// The accepted levels, inclusive.
    pub fn level_range(self) -> (i32, i32) {
        match self {
            Algorithm::Zstd => (1, 19),
            Algorithm::Xz => (0, 9),
            Algorithm::None => (0, 0),
        }
    }

    /// The lowercase name used in config, index and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Zstd => "zstd",
            Algorithm::Xz => "xz",
            Algorithm::None => "none",
        }
    }
}

impl std::str::FromStr for Algorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "zstd" => Ok(Algorithm::Zstd),
            "xz" => Ok(Algorithm::Xz),
            "none" => Ok(Algorithm::None),
            other => Err(format!(
                "unknown compression '{other}' (use zstd, xz or none)"
            )),
        }
    }
}

/// Resolved compression settings of a backup type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Compression {
    pub algorithm: Algorithm,
    pub level: i32,
    /// Worker threads; 0 means one per available core.
    pub threads: u32,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            algorithm: Algorithm::Zstd,
            level: Algorithm::Zstd.default_level(),
            threads: 0,
        }
    }
}

/// The most compressor threads a backup type may ask for (more is a typo, and both libraries
/// refuse or exhaust memory far below `u32::MAX`).
pub const MAX_THREADS: u32 = 128;

/// The uncompressed size of each xz block when several threads compress. liblzma's default
/// (three times the dictionary: 24 MiB at level 6) makes the encoder take input in bursts a
/// whole block per thread apart, tens of seconds at high levels, long enough for the server to
/// drop the dump's connection (`net_write_timeout`). Small blocks keep the dump read steadily,
/// at the cost of a slightly larger file.
pub const XZ_MT_BLOCK: u64 = 2 << 20;

impl Compression {
    /// Checks that the compressor can start with these settings on this machine, so that a
    /// config that passes `config check` does not fail every run.
    ///
    /// Fails naming the limit: more than [`MAX_THREADS`] threads, or an xz encoder that would
    /// need more than half of this machine's memory.
    pub fn check(&self) -> Result<(), String> {
        if self.threads > MAX_THREADS {
            return Err(format!(
                "{} threads is more than the {MAX_THREADS} sqlguard allows (0 means one per core)",
                self.threads
            ));
        }
        if self.algorithm == Algorithm::Xz && self.effective_threads() > 1 {
            let need = xz_mt_builder(self).memusage();
            if let Some(total) = total_memory() {
                if need > total / 2 {
                    return Err(format!(
                        "xz level {} with {} threads needs about {} MiB of memory, more than half of this machine's {} MiB: use fewer threads or a lower level",
                        self.level,
                        self.effective_threads(),
                        need >> 20,
                        total >> 20
                    ));
                }
            }
        }
        Ok(())
    }

    /// These settings for one of `jobs` compressions running at once: the threads the type
    /// asks for (one per core when 0) divided between them, at least one each.
    pub fn shared_by(&self, jobs: u32) -> Compression {
        if jobs <= 1 {
            return *self;
        }
        Compression {
            threads: (self.effective_threads() / jobs).max(1),
            ..*self
        }
    }

    /// The thread count to use, with 0 resolved to the number of cores.
    pub fn effective_threads(&self) -> u32 {
        if self.threads > 0 {
            return self.threads;
        }
        std::thread::available_parallelism()
            .map(|n| u32::try_from(n.get()).unwrap_or(1))
            .unwrap_or(1)
    }
}

/// A streaming encoder that hands back its inner writer when finished.
pub trait Encoder<W: Write>: Write {
    /// Flushes the final frame or block and returns the inner writer.
    fn finish(self: Box<Self>) -> io::Result<W>;
}

impl<W: Write> Encoder<W> for zstd::stream::write::Encoder<'static, W> {
    fn finish(self: Box<Self>) -> io::Result<W> {
        zstd::stream::write::Encoder::finish(*self)
    }
}

impl<W: Write> Encoder<W> for liblzma::write::XzEncoder<W> {
    fn finish(self: Box<Self>) -> io::Result<W> {
        liblzma::write::XzEncoder::finish(*self)
    }
}

/// The `none` algorithm: bytes pass through unchanged.
#[derive(Debug)]
struct Plain<W>(W);

impl<W: Write> Write for Plain<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> Encoder<W> for Plain<W> {
    fn finish(mut self: Box<Self>) -> io::Result<W> {
        self.0.flush()?;
        Ok(self.0)
    }
}

/// Wraps `inner` in the encoder that `c` describes.
///
/// Fails when the compression library rejects the level or cannot start its worker threads.
pub fn encoder<W: Write + Send + 'static>(
    c: &Compression,
    inner: W,
) -> io::Result<Box<dyn Encoder<W> + Send>> {
    let threads = c.effective_threads();
    Ok(match c.algorithm {
        Algorithm::Zstd => {
            let mut e = zstd::stream::write::Encoder::new(inner, c.level)?;
            e.include_checksum(true)?;
            if threads > 1 {
                e.multithread(threads)?;
            }
            Box::new(e)
        }
        Algorithm::Xz if threads <= 1 => {
            // The single-threaded encoder takes input continuously, never in bursts.
            let stream = liblzma::stream::Stream::new_easy_encoder(
                u32::try_from(c.level).unwrap_or(6),
                liblzma::stream::Check::Crc64,
            )
            .map_err(io::Error::other)?;
            Box::new(liblzma::write::XzEncoder::new_stream(inner, stream))
        }
        Algorithm::Xz => {
            let stream = xz_mt_builder(c).encoder().map_err(io::Error::other)?;
            Box::new(liblzma::write::XzEncoder::new_stream(inner, stream))
        }
        Algorithm::None => Box::new(Plain(inner)),
    })
}

/// The multi-threaded xz encoder's settings for `c`.
fn xz_mt_builder(c: &Compression) -> liblzma::stream::MtStreamBuilder {
    let mut b = liblzma::stream::MtStreamBuilder::new();
    b.threads(c.effective_threads())
        .preset(u32::try_from(c.level).unwrap_or(6))
        .block_size(XZ_MT_BLOCK)
        .check(liblzma::stream::Check::Crc64);
    b
}

/// This machine's memory, from `/proc/meminfo`.
fn total_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

impl<W: Write> Encoder<W> for zstd::stream::write::Decoder<'static, W> {
    fn finish(mut self: Box<Self>) -> io::Result<W> {
        self.flush()?;
        Ok(self.into_inner())
    }
}

impl<W: Write> Encoder<W> for liblzma::write::XzDecoder<W> {
    fn finish(self: Box<Self>) -> io::Result<W> {
        liblzma::write::XzDecoder::finish(*self)
    }
}

/// A decoder that is written compressed bytes and writes the plain SQL into `inner`: the
/// push-side twin of [`decoder`], for streams whose every compressed byte must also be hashed.
///
/// Fails when the compression library cannot start.
pub fn write_decoder<W: Write + Send + 'static>(
    algorithm: Algorithm,
    inner: W,
) -> io::Result<Box<dyn Encoder<W> + Send>> {
    Ok(match algorithm {
        Algorithm::Zstd => Box::new(zstd::stream::write::Decoder::new(inner)?),
        Algorithm::Xz => Box::new(liblzma::write::XzDecoder::new_multi_decoder(inner)),
        Algorithm::None => Box::new(Plain(inner)),
    })
}

/// Wraps `inner` in the decoder for `algorithm`; reading it yields the plain SQL.
pub fn decoder<'a, R: Read + Send + 'a>(
    algorithm: Algorithm,
    inner: R,
) -> io::Result<Box<dyn Read + Send + 'a>> {
    Ok(match algorithm {
        Algorithm::Zstd => Box::new(zstd::stream::read::Decoder::new(inner)?),
        Algorithm::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(inner)),
        Algorithm::None => Box::new(inner),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(algorithm: Algorithm, threads: u32) {
        let data: Vec<u8> = (0..300_000u32)
            .flat_map(|i| format!("INSERT INTO t VALUES ({i},'row {i}');\n").into_bytes())
            .collect();
        let c = Compression {
            algorithm,
            level: algorithm.default_level().min(3),
            threads,
        };
        let mut enc = encoder(&c, Vec::new()).unwrap();
        for chunk in data.chunks(65_536) {
            enc.write_all(chunk).unwrap();
        }
        let compressed = enc.finish().unwrap();
        if algorithm != Algorithm::None {
            assert!(
                compressed.len() < data.len() / 3,
                "{algorithm:?} did not compress"
            );
        }
        let mut out = Vec::new();
        decoder(algorithm, compressed.as_slice())
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
        let mut pushed = write_decoder(algorithm, Vec::new()).unwrap();
        for chunk in compressed.chunks(10_000) {
            pushed.write_all(chunk).unwrap();
        }
        assert_eq!(pushed.finish().unwrap(), data);
    }

    #[test]
    fn every_algorithm_round_trips_single_and_multi_threaded() {
        for a in [Algorithm::Zstd, Algorithm::Xz, Algorithm::None] {
            round_trip(a, 1);
            round_trip(a, 2);
        }
    }

    /// Issue 10: settings the libraries would refuse fail the config, not every run.
    #[test]
    fn impossible_thread_counts_and_memory_are_refused() {
        for algorithm in [Algorithm::Zstd, Algorithm::Xz] {
            let c = Compression {
                algorithm,
                level: algorithm.default_level(),
                threads: u32::MAX,
            };
            assert!(c.check().unwrap_err().contains("threads"), "{algorithm:?}");
        }
        let fine = Compression {
            algorithm: Algorithm::Xz,
            level: 6,
            threads: 2,
        };
        fine.check().unwrap();
        let huge = Compression {
            algorithm: Algorithm::Xz,
            level: 9,
            threads: MAX_THREADS,
        };
        if total_memory().is_some_and(|t| t < 64 << 30) {
            assert!(huge.check().unwrap_err().contains("memory"));
        }
    }

    #[test]
    fn names_parse_and_reject() {
        assert_eq!("ZSTD".parse::<Algorithm>().unwrap(), Algorithm::Zstd);
        assert!("gzip"
            .parse::<Algorithm>()
            .unwrap_err()
            .contains("zstd, xz or none"));
    }
}
