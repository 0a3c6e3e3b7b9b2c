//! The binary log's event framing, as far as archiving and replay need it: the 19-byte v4
//! header of every event, the CRC32 trailer, and the few event kinds whose bodies matter
//! (format description, GTID, rotate, stop).
//!
//! A binary log file is the 4-byte magic `\xfebin` followed by events; each event's header says
//! its size and `log_pos`, the offset in the file just after it. `mariadb-binlog
//! --read-from-remote-server --raw --start-position=N` writes the magic, an artificial format
//! description event (`log_pos` 0) and then the server's events from N byte for byte; from the
//! start of a file it writes the file as the server has it (the format description's
//! "in use" flag cleared). [`SegmentReader`] turns either into the exact bytes `[start, end)`
//! of the server's file, checking every event on the way.

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// The first four bytes of every binary log file.
pub const MAGIC: &[u8; 4] = b"\xfebin";
/// The size of an event header (binlog format v4).
pub const HEADER: usize = 19;
/// The largest event accepted (MariaDB's `max_allowed_packet` limit is 1 GiB).
const MAX_EVENT: u32 = 1 << 30;

pub const QUERY: u8 = 2;
pub const STOP: u8 = 3;
pub const ROTATE: u8 = 4;
pub const FORMAT_DESCRIPTION: u8 = 15;
pub const GTID: u8 = 162;
pub const GTID_LIST: u8 = 163;

/// One event's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub timestamp: u32,
    pub kind: u8,
    pub server_id: u32,
    pub size: u32,
    /// The offset just after this event in its file; 0 for artificial events.
    pub log_pos: u32,
    pub flags: u16,
}

impl Header {
    /// Parses the 19 header bytes.
    pub fn parse(b: &[u8; HEADER]) -> Header {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Header {
            timestamp: u32_at(0),
            kind: b[4],
            server_id: u32_at(5),
            size: u32_at(9),
            log_pos: u32_at(13),
            flags: u16::from_le_bytes([b[17], b[18]]),
        }
    }

    /// The offset of the event's first byte in its file (real events only).
    pub fn start(&self) -> u64 {
        u64::from(self.log_pos).saturating_sub(u64::from(self.size))
    }
}

/// One whole event: header and bytes (header included).
#[derive(Debug, Clone)]
pub struct Event {
    pub header: Header,
    pub bytes: Vec<u8>,
}

impl Event {
    /// The GTID a GTID event starts (`domain-server-seq`).
    pub fn gtid(&self) -> Option<Gtid> {
        if self.header.kind != GTID || self.bytes.len() < HEADER + 12 {
            return None;
        }
        let b = &self.bytes[HEADER..];
        let seq = u64::from_le_bytes(b[0..8].try_into().ok()?);
        let domain = u32::from_le_bytes(b[8..12].try_into().ok()?);
        Some(Gtid {
            domain,
            server: self.header.server_id,
            seq,
        })
    }

    /// The GTID state a GTID list event (the second event of every MariaDB binary log file)
    /// says the server had before the file: one GTID per domain and server.
    pub fn gtid_list(&self) -> Option<Vec<Gtid>> {
        if self.header.kind != GTID_LIST {
            return None;
        }
        let b = self.bytes.get(HEADER..)?;
        let count = u32::from_le_bytes(b.get(0..4)?.try_into().ok()?) & 0x0fff_ffff;
        let mut out = Vec::new();
        for i in 0..count as usize {
            let at = 4usize.checked_add(i.checked_mul(16)?)?;
            let e = b.get(at..at.checked_add(16)?)?;
            out.push(Gtid {
                domain: u32::from_le_bytes(e[0..4].try_into().ok()?),
                server: u32::from_le_bytes(e[4..8].try_into().ok()?),
                seq: u64::from_le_bytes(e[8..16].try_into().ok()?),
            });
        }
        Some(out)
    }

    /// The file a rotate event names next.
    pub fn rotate_target(&self, checksum: bool) -> Option<String> {
        if self.header.kind != ROTATE {
            return None;
        }
        let end = self
            .bytes
            .len()
            .saturating_sub(if checksum { 4 } else { 0 });
        let name = self.bytes.get(HEADER + 8..end)?;
        String::from_utf8(name.to_vec()).ok()
    }

    /// A query event's default database and statement text (`checksum`: the event ends with a
    /// CRC32).
    pub fn query(&self, checksum: bool) -> Option<(String, Vec<u8>)> {
        if self.header.kind != QUERY {
            return None;
        }
        let end = self.bytes.len().checked_sub(if checksum { 4 } else { 0 })?;
        let body = self.bytes.get(HEADER..end)?;
        // Post-header: thread id (4), exec time (4), db length (1), error code (2), status
        // variables length (2); then the status variables, the database, a NUL, the query.
        let db_len = usize::from(*body.get(8)?);
        let vars = usize::from(u16::from_le_bytes([*body.get(11)?, *body.get(12)?]));
        let db_at = 13usize.checked_add(vars)?;
        let db = body.get(db_at..db_at.checked_add(db_len)?)?;
        let query = body.get(db_at + db_len + 1..)?;
        Some((String::from_utf8_lossy(db).into_owned(), query.to_vec()))
    }

    /// Whether a format description event announces CRC32 checksums (the byte before its own
    /// checksum: 1 is CRC32, 0 none).
    pub fn announces_crc32(&self) -> bool {
        self.header.kind == FORMAT_DESCRIPTION
            && self.bytes.len() >= HEADER + 5
            && self.bytes[self.bytes.len() - 5] == 1
    }
}

/// A MariaDB GTID: domain, server id, sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gtid {
    pub domain: u32,
    pub server: u32,
    pub seq: u64,
}

impl std::fmt::Display for Gtid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

impl std::str::FromStr for Gtid {
    type Err = String;
    fn from_str(s: &str) -> Result<Gtid, String> {
        let bad = || format!("'{s}' is not a GTID (domain-server-sequence, e.g. 0-1-42)");
        let mut p = s.trim().split('-');
        let (Some(d), Some(sv), Some(q), None) = (p.next(), p.next(), p.next(), p.next()) else {
            return Err(bad());
        };
        Ok(Gtid {
            domain: d.parse().map_err(|_| bad())?,
            server: sv.parse().map_err(|_| bad())?,
            seq: q.parse().map_err(|_| bad())?,
        })
    }
}

/// A server's GTID position: per replication domain, the last transaction applied (MariaDB's
/// `gtid_binlog_pos`). Transactions of a domain are ordered by sequence number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidState {
    domains: std::collections::BTreeMap<u32, Gtid>,
}

impl GtidState {
    /// Parses `0-1-5,1-2-3` (the newest of each domain counts; unparsable parts are skipped).
    pub fn parse(s: &str) -> GtidState {
        let mut st = GtidState::default();
        for g in gtid_list(s) {
            st.apply(g);
        }
        st
    }

    /// The state a GTID list event gives: the newest GTID of each domain.
    pub fn from_list(list: &[Gtid]) -> GtidState {
        let mut st = GtidState::default();
        for g in list {
            if st.domains.get(&g.domain).is_none_or(|o| g.seq >= o.seq) {
                st.domains.insert(g.domain, *g);
            }
        }
        st
    }

    /// Records transaction `g` as applied.
    pub fn apply(&mut self, g: Gtid) {
        self.domains.insert(g.domain, g);
    }

    /// The GTID of `domain` (the last transaction applied in it).
    pub fn get(&self, domain: u32) -> Option<&Gtid> {
        self.domains.get(&domain)
    }

    /// Whether transaction `g` is at or before this state in its domain.
    pub fn holds(&self, g: &Gtid) -> bool {
        self.domains.get(&g.domain).is_some_and(|o| g.seq <= o.seq)
    }

    /// Whether this state has every transaction of `other` (each of its domains at least as far).
    pub fn covers(&self, other: &GtidState) -> bool {
        other.domains.values().all(|g| self.holds(g))
    }

    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }
}

impl std::fmt::Display for GtidState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.domains.values().map(Gtid::to_string).collect();
        write!(f, "{}", parts.join(","))
    }
}

/// Parses a GTID list (`0-1-5,1-2-3`) into one GTID per domain; unparsable parts are skipped.
pub fn gtid_list(s: &str) -> Vec<Gtid> {
    s.split(',').filter_map(|p| p.trim().parse().ok()).collect()
}

/// Reads whole events from a stream that starts at an event boundary (after the magic).
#[derive(Debug)]
pub struct EventReader<R> {
    inner: R,
}

impl<R: Read> EventReader<R> {
    pub fn new(inner: R) -> EventReader<R> {
        EventReader { inner }
    }

    /// The next event; `Ok(None)` at a clean end (between events).
    ///
    /// Fails on a read error, an event cut short, or an impossible size.
    pub fn next_event(&mut self) -> io::Result<Option<Event>> {
        let mut head = [0u8; HEADER];
        let mut got = 0;
        while got < HEADER {
            match self.inner.read(&mut head[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the binary log ends inside an event header",
                    ))
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let header = Header::parse(&head);
        if (header.size as usize) < HEADER || header.size > MAX_EVENT {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "an event claims {} bytes: this is not a binary log",
                    header.size
                ),
            ));
        }
        let mut bytes = vec![0u8; header.size as usize];
        bytes[..HEADER].copy_from_slice(&head);
        self.inner.read_exact(&mut bytes[HEADER..]).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the binary log ends inside an event",
                )
            } else {
                e
            }
        })?;
        Ok(Some(Event { header, bytes }))
    }
}

/// A server timestamp (seconds since the epoch) as a person reads it.
pub fn seconds_text(t: u32) -> String {
    chrono::DateTime::from_timestamp(i64::from(t), 0).map_or_else(
        || t.to_string(),
        |d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// Checks an event's CRC32 trailer.
pub fn crc_ok(event: &Event) -> bool {
    let n = event.bytes.len();
    if n < HEADER + 4 {
        return false;
    }
    let want = u32::from_le_bytes(event.bytes[n - 4..].try_into().expect("4 bytes"));
    crc32fast::hash(&event.bytes[..n - 4]) == want
}

/// What the events of one segment are, gathered while it streams through.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentFacts {
    /// Offset of the segment's first byte in the server's file (0: the file's start).
    pub start: u64,
    /// Offset just after its last complete event.
    pub end: u64,
    pub events: u64,
    /// Timestamps of the first and last event (seconds since the epoch, the server's clock).
    pub first_event: Option<u32>,
    pub last_event: Option<u32>,
    pub first_gtid: Option<String>,
    pub last_gtid: Option<String>,
    /// The file ended here: a rotate (naming the next file) or stop event.
    pub closed: bool,
    pub next_file: Option<String>,
    /// Every event carried a CRC32 that matched.
    pub checksums: bool,
    /// The GTID position at `end`, when the state at the start was known (given, or a GTID
    /// list event in the stream).
    #[serde(default)]
    pub gtid_pos: Option<String>,
    /// Why the stream is not a good segment.
    pub error: Option<String>,
    /// When the server created the file: its format description's timestamp, which a read
    /// from mid-file gets too (the server sends the file's own ahead of the events).
    #[serde(default)]
    pub file_created: Option<u32>,
}

/// A reader over `mariadb-binlog --raw` output that yields exactly the server file's bytes from
/// `start` (see the module docs), checking each event's position and CRC32, and gathering
/// [`SegmentFacts`] into `facts` as it goes.
pub struct SegmentReader<R> {
    events: EventReader<R>,
    facts: Arc<Mutex<SegmentFacts>>,
    started: bool,
    pos: u64,
    crc32: Option<bool>,
    /// The GTID state at `pos`, when known.
    gtid: Option<GtidState>,
    /// The state the previous segment ended with, until the first transaction is read: that
    /// transaction must be new to it, or the file was reset or replaced, not continued.
    continues: Option<GtidState>,
    out: Vec<u8>,
    out_at: usize,
    /// Where to end (an event boundary of the file), when not at the tool's end.
    stop: Option<u64>,
    /// The creation time the archive recorded for the file this read continues: the file's
    /// format description must carry it, or the server's file is another one of the same name.
    created: Option<u32>,
    /// The state the archive ended with before this file (see [`SegmentReader::new_to`]): the
    /// file's GTID list, the server's state when it opened the file, must hold it.
    list_after: Option<GtidState>,
}

impl<R> std::fmt::Debug for SegmentReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SegmentReader(at {})", self.pos)
    }
}

impl<R: Read> SegmentReader<R> {
    /// Reads `inner` (the tool's output from `start`); the facts land in `facts`.
    pub fn new(inner: R, start: u64, facts: Arc<Mutex<SegmentFacts>>) -> SegmentReader<R> {
        if let Ok(mut f) = facts.lock() {
            *f = SegmentFacts {
                start,
                end: start,
                checksums: true,
                ..Default::default()
            };
        }
        SegmentReader {
            events: EventReader::new(inner),
            facts,
            started: false,
            pos: start,
            crc32: None,
            gtid: None,
            continues: None,
            out: Vec::new(),
            out_at: 0,
            stop: None,
            created: None,
            list_after: None,
        }
    }

    /// The read continues a file the archive recorded as created at `created` (see
    /// [`SegmentFacts::file_created`]): a file created at another time, after a RESET MASTER
    /// or on a replaced server, is refused before any of its events pass.
    pub fn same_file(mut self, created: Option<u32>) -> SegmentReader<R> {
        self.created = created;
        self
    }

    /// Ends the segment at `stop`, an event boundary of the file (where another storage's
    /// segment starts or ends), instead of at the tool's end.
    pub fn stop_at(mut self, stop: Option<u64>) -> SegmentReader<R> {
        self.stop = stop;
        self
    }

    /// The GTID state at `start` (from the previous segment), so the facts give the state at
    /// the end. A segment from a file's start finds it in the file's GTID list event.
    pub fn with_gtid_state(mut self, state: Option<GtidState>) -> SegmentReader<R> {
        if let (Some(st), Ok(mut f)) = (&state, self.facts.lock()) {
            f.gtid_pos = Some(st.to_string());
        }
        self.continues.clone_from(&state);
        self.gtid = state;
        self
    }

    /// The GTID state the archive reached before this segment, which starts a later file: its
    /// first transaction must be new to it, as with [`SegmentReader::with_gtid_state`] (that
    /// state, when given, takes precedence).
    pub fn new_to(mut self, state: Option<GtidState>) -> SegmentReader<R> {
        if self.continues.is_none() {
            self.continues = state;
        }
        self
    }

    /// The file is the one right after the archive's end (no gap between them), which ended
    /// with `state`: the file's GTID list, the server's state when it opened the file, must
    /// hold it.
    pub fn next_after(mut self, state: Option<GtidState>) -> SegmentReader<R> {
        self.list_after = state;
        self
    }

    fn fail(&self, msg: String) -> io::Error {
        if let Ok(mut f) = self.facts.lock() {
            f.error.get_or_insert(msg.clone());
        }
        io::Error::new(io::ErrorKind::InvalidData, msg)
    }

    /// Fills `out` with the next bytes to pass on; false at the end.
    fn refill(&mut self) -> io::Result<bool> {
        self.out.clear();
        self.out_at = 0;
        if !self.started {
            self.started = true;
            let mut magic = [0u8; 4];
            self.events
                .inner
                .read_exact(&mut magic)
                .map_err(|e| self.fail(format!("reading the binary log's magic: {e}")))?;
            if &magic != MAGIC {
                return Err(self.fail("the tool's output is not a binary log (no magic)".into()));
            }
            if self.pos == 0 {
                self.out.extend_from_slice(MAGIC);
                self.pos = 4;
                self.note_end();
                return Ok(true);
            }
        }
        loop {
            if self.stop.is_some_and(|s| self.pos >= s) {
                return Ok(false);
            }
            let ev = match self.events.next_event() {
                Ok(Some(e)) => e,
                Ok(None) => return Ok(false),
                Err(e) => return Err(self.fail(e.to_string())),
            };
            if ev.header.kind == FORMAT_DESCRIPTION {
                self.crc32 = Some(ev.announces_crc32());
                let created = ev.header.timestamp;
                if let Some(want) = self.created.take().filter(|w| *w != created) {
                    return Err(self.fail(format!(
                        "the server's file was created at {}, but the archive holds a file of that name created at {}: the binary log was reset (RESET MASTER) or the server replaced, not continued. {}",
                        seconds_text(created),
                        seconds_text(want),
                        super::NEW_ARCHIVE
                    )));
                }
                if let Ok(mut f) = self.facts.lock() {
                    f.file_created.get_or_insert(created);
                }
            }
            let crc32 = self.crc32.unwrap_or(false);
            if crc32 && !crc_ok(&ev) {
                return Err(self.fail(format!(
                    "the event at offset {} fails its CRC32 check",
                    ev.header.start()
                )));
            }
            if ev.header.log_pos == 0 {
                // Artificial (the tool's own format description when starting mid-file).
                continue;
            }
            if let Some(want) = self.created.take() {
                return Err(self.fail(format!(
                    "the server sent no format description before offset {}, so its file cannot be told from another of the same name (the archive's was created at {})",
                    ev.header.start(),
                    seconds_text(want)
                )));
            }
            if ev.header.start() != self.pos {
                return Err(self.fail(format!(
                    "an event claims to start at offset {} where {} was expected: the copy is not contiguous",
                    ev.header.start(),
                    self.pos
                )));
            }
            // The first transaction in a domain the archive holds, not the first event (a
            // format description, a GTID list or a checkpoint may come before it), nor the first
            // transaction of a domain new to the archive.
            let held = ev.gtid().and_then(|g| {
                let before = self.continues.as_ref()?;
                Some((g, *before.get(g.domain)?, before.to_string()))
            });
            if let Some((g, o, before)) = held {
                self.continues = None;
                // The same server numbering a transaction at or below what the archive holds
                // of it is a history that went back. Another server's lower number in the
                // domain is how replication without gtid_strict_mode looks, and is fine.
                let went_back = o.server == g.server && g.seq <= o.seq;
                if went_back {
                    return Err(self.fail(format!(
                        "the transaction at offset {} is {g}, which the archive already holds (it reaches {before}): the binary log was reset or the server replaced, not continued. {}",
                        ev.header.start(),
                        super::NEW_ARCHIVE
                    )));
                }
            }
            // The file's GTID list is the server's state when it opened the file: continuing the
            // archive, it holds each server's last transaction the archive ends with, never a
            // later one (a RESET MASTER and a new history that numbered past the archive's).
            if let Some(after) = &self.list_after {
                if let Some(list) = ev.gtid_list() {
                    let missing = after.domains.values().find(|g| {
                        !list
                            .iter()
                            .any(|x| x.domain == g.domain && x.server == g.server && x.seq <= g.seq)
                    });
                    if let Some(g) = missing {
                        let listed: Vec<String> = list.iter().map(Gtid::to_string).collect();
                        return Err(self.fail(format!(
                            "the file starts from GTID state {}, which does not continue the archive's end ({after}: {g} is not where it stands): the binary log was reset or the server replaced, not continued. {}",
                            if listed.is_empty() { "(empty)".to_string() } else { listed.join(",") },
                            super::NEW_ARCHIVE
                        )));
                    }
                    self.list_after = None;
                } else if ev.gtid().is_some() {
                    // No list before the first transaction: nothing to compare.
                    self.list_after = None;
                }
            }
            self.pos = u64::from(ev.header.log_pos);
            if let Some(s) = self.stop.filter(|s| self.pos > *s) {
                return Err(self.fail(format!(
                    "the event at offset {} ends at {}, past {s}, where this segment must end (the other storages' segment starts there): the server's file is not the one they archived",
                    ev.header.start(),
                    self.pos
                )));
            }
            if let Ok(mut f) = self.facts.lock() {
                f.events += 1;
                f.first_event.get_or_insert(ev.header.timestamp);
                f.last_event = Some(ev.header.timestamp);
                if !crc32 {
                    f.checksums = false;
                }
                // The state changes only at GTID and GTID list events (not on every event).
                if let Some(g) = ev.gtid() {
                    f.first_gtid.get_or_insert_with(|| g.to_string());
                    f.last_gtid = Some(g.to_string());
                    if let Some(st) = self.gtid.as_mut() {
                        st.apply(g);
                        f.gtid_pos = Some(st.to_string());
                    }
                } else if let Some(list) = ev.gtid_list() {
                    let st = GtidState::from_list(&list);
                    f.gtid_pos = Some(st.to_string());
                    self.gtid = Some(st);
                }
                f.closed = matches!(ev.header.kind, ROTATE | STOP);
                f.next_file = ev.rotate_target(crc32);
                f.end = self.pos;
            }
            self.out = ev.bytes;
            return Ok(true);
        }
    }

    fn note_end(&self) {
        if let Ok(mut f) = self.facts.lock() {
            f.end = self.pos;
        }
    }
}

impl<R: Read> Read for SegmentReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.out_at >= self.out.len() {
            if !self.refill()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.out.len() - self.out_at);
        buf[..n].copy_from_slice(&self.out[self.out_at..self.out_at + n]);
        self.out_at += n;
        Ok(n)
    }
}

/// Checks a segment's bytes pushed through it (`verify`): contiguous events from the segment's
/// start to its end, each CRC32 right when the segment was archived with checksums.
#[derive(Debug)]
pub struct SegmentCheck {
    pos: u64,
    expect_magic: bool,
    crc32: bool,
    buf: Vec<u8>,
    events: u64,
    error: Option<String>,
}

impl SegmentCheck {
    pub fn new(start: u64, crc32: bool) -> SegmentCheck {
        SegmentCheck {
            pos: start,
            expect_magic: start == 0,
            crc32,
            buf: Vec::new(),
            events: 0,
            error: None,
        }
    }

    fn parse(&mut self) {
        loop {
            if self.error.is_some() {
                self.buf.clear();
                return;
            }
            if self.expect_magic {
                if self.buf.len() < 4 {
                    return;
                }
                if &self.buf[..4] != MAGIC {
                    self.error =
                        Some("the segment does not start with a binary log's magic".into());
                    continue;
                }
                self.buf.drain(..4);
                self.pos = 4;
                self.expect_magic = false;
            }
            if self.buf.len() < HEADER {
                return;
            }
            let h = Header::parse(self.buf[..HEADER].try_into().expect("header bytes"));
            if (h.size as usize) < HEADER || h.size > MAX_EVENT {
                self.error = Some(format!(
                    "an event at offset {} claims {} bytes",
                    self.pos, h.size
                ));
                continue;
            }
            if self.buf.len() < h.size as usize {
                return;
            }
            let bytes: Vec<u8> = self.buf.drain(..h.size as usize).collect();
            let ev = Event { header: h, bytes };
            if self.crc32 && !crc_ok(&ev) {
                self.error = Some(format!(
                    "the event at offset {} fails its CRC32 check",
                    self.pos
                ));
                continue;
            }
            if h.start() != self.pos {
                self.error = Some(format!(
                    "an event claims to start at offset {} where {} was expected",
                    h.start(),
                    self.pos
                ));
                continue;
            }
            self.pos = u64::from(h.log_pos);
            self.events += 1;
        }
    }

    /// What is wrong with the segment as `segment` records it (empty: intact).
    pub fn problems(&self, segment: &crate::index::Segment) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(e) = &self.error {
            out.push(e.clone());
            return out;
        }
        if !self.buf.is_empty() {
            out.push(format!(
                "the segment ends inside an event after offset {}",
                self.pos
            ));
        }
        if self.pos != segment.end {
            out.push(format!(
                "the segment's events end at offset {}, the index says {}",
                self.pos, segment.end
            ));
        }
        if self.events != segment.events {
            out.push(format!(
                "the segment holds {} events, the index says {}",
                self.events, segment.events
            ));
        }
        out
    }
}

impl std::io::Write for SegmentCheck {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        self.parse();
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// An event of `kind` with `body`, at `start` in its file, with a CRC32 trailer.
    pub fn event(kind: u8, ts: u32, server: u32, start: u32, body: &[u8]) -> Vec<u8> {
        let size = (HEADER + body.len() + 4) as u32;
        let mut b = Vec::new();
        b.extend_from_slice(&ts.to_le_bytes());
        b.push(kind);
        b.extend_from_slice(&server.to_le_bytes());
        b.extend_from_slice(&size.to_le_bytes());
        b.extend_from_slice(&(if start == 0 { 0 } else { start + size }).to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(body);
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// A format description body announcing CRC32.
    pub fn fde_body() -> Vec<u8> {
        let mut b = vec![0u8; 90];
        b.push(1);
        b
    }

    pub fn gtid_body(seq: u64, domain: u32) -> Vec<u8> {
        let mut b = seq.to_le_bytes().to_vec();
        b.extend_from_slice(&domain.to_le_bytes());
        b.push(0);
        b
    }

    /// A GTID list body: the state before the file.
    pub fn gtid_list_body(list: &[Gtid]) -> Vec<u8> {
        let mut b = (list.len() as u32).to_le_bytes().to_vec();
        for g in list {
            b.extend_from_slice(&g.domain.to_le_bytes());
            b.extend_from_slice(&g.server.to_le_bytes());
            b.extend_from_slice(&g.seq.to_le_bytes());
        }
        b
    }

    #[test]
    fn a_gtid_state_follows_lists_and_transactions_per_domain() {
        let g = |s: &str| s.parse::<Gtid>().unwrap();
        let ev = event(
            GTID_LIST,
            1,
            2,
            4,
            &gtid_list_body(&[g("0-2-1"), g("0-1-5"), g("1-1-3")]),
        );
        let list = EventReader::new(&ev[..])
            .next_event()
            .unwrap()
            .unwrap()
            .gtid_list()
            .unwrap();
        let mut st = GtidState::from_list(&list);
        assert_eq!(st.to_string(), "0-1-5,1-1-3");
        assert!(st.holds(&g("0-9-4")) && !st.holds(&g("0-1-6")) && !st.holds(&g("2-1-1")));
        st.apply(g("0-2-6"));
        assert!(st.covers(&GtidState::parse("0-1-5,1-1-3")));
        assert!(!GtidState::parse("0-1-5").covers(&st));
        assert_eq!(GtidState::parse(&st.to_string()), st);
        // A damaged list is no list, not a panic.
        let mut short = ev.clone();
        short[9..13].copy_from_slice(&((HEADER + 8) as u32).to_le_bytes());
        short.truncate(HEADER + 8);
        assert!(EventReader::new(&short[..])
            .next_event()
            .unwrap()
            .unwrap()
            .gtid_list()
            .is_none());
    }

    fn read_all(input: &[u8], start: u64) -> (io::Result<Vec<u8>>, SegmentFacts) {
        let facts = Arc::new(Mutex::new(SegmentFacts::default()));
        let mut r = SegmentReader::new(input, start, Arc::clone(&facts));
        let mut out = Vec::new();
        let res = r.read_to_end(&mut out).map(|_| out);
        let f = facts.lock().unwrap().clone();
        (res, f)
    }

    /// A file: magic, format description, a GTID and a query, a rotate.
    fn file() -> Vec<u8> {
        let mut f = MAGIC.to_vec();
        let fde = event(FORMAT_DESCRIPTION, 100, 7, 4, &fde_body());
        let at = 4 + fde.len() as u32;
        f.extend(fde);
        let g = event(GTID, 101, 7, at, &gtid_body(42, 0));
        let at2 = at + g.len() as u32;
        f.extend(g);
        let q = event(2, 102, 7, at2, b"insert into t values (1)");
        let at3 = at2 + q.len() as u32;
        f.extend(q);
        let mut rot = 4u64.to_le_bytes().to_vec();
        rot.extend_from_slice(b"binlog.000002");
        f.extend(event(ROTATE, 103, 7, at3, &rot));
        f
    }

    #[test]
    fn a_whole_file_passes_unchanged_with_its_facts() {
        let f = file();
        let (out, facts) = read_all(&f, 0);
        assert_eq!(out.unwrap(), f);
        assert_eq!(facts.end, f.len() as u64);
        assert_eq!(facts.events, 4);
        assert_eq!(facts.first_gtid.as_deref(), Some("0-7-42"));
        assert!(facts.closed && facts.checksums);
        assert_eq!(facts.next_file.as_deref(), Some("binlog.000002"));
        assert_eq!(
            (facts.first_event, facts.last_event),
            (Some(100), Some(103))
        );
    }

    #[test]
    fn a_mid_file_copy_loses_the_tools_header_and_keeps_the_servers_bytes() {
        let f = file();
        // The tool's output from the GTID event on: magic, artificial FDE, then the events.
        let fde_len = event(FORMAT_DESCRIPTION, 100, 7, 4, &fde_body()).len();
        let start = 4 + fde_len;
        let mut raw = MAGIC.to_vec();
        raw.extend(event(FORMAT_DESCRIPTION, 100, 7, 0, &fde_body()));
        raw.extend_from_slice(&f[start..]);
        let (out, facts) = read_all(&raw, start as u64);
        assert_eq!(out.unwrap(), &f[start..]);
        assert_eq!((facts.start, facts.end), (start as u64, f.len() as u64));
        assert_eq!(facts.events, 3);
        assert_eq!(facts.file_created, Some(100));
    }

    #[test]
    fn a_read_on_from_mid_file_must_come_from_the_file_created_when_the_archive_says() {
        let f = file();
        let start = 4 + event(FORMAT_DESCRIPTION, 100, 7, 4, &fde_body()).len();
        let on = |created: u32, with_fde: bool| {
            let mut raw = MAGIC.to_vec();
            if with_fde {
                raw.extend(event(FORMAT_DESCRIPTION, created, 7, 0, &fde_body()));
            }
            raw.extend_from_slice(&f[start..]);
            let facts = Arc::new(Mutex::new(SegmentFacts::default()));
            let mut r =
                SegmentReader::new(&raw[..], start as u64, Arc::clone(&facts)).same_file(Some(100));
            let mut out = Vec::new();
            r.read_to_end(&mut out).map(|_| out)
        };
        assert_eq!(on(100, true).unwrap(), &f[start..]);
        let other = on(101, true).unwrap_err().to_string();
        assert!(
            other.contains("created at 1970-01-01 00:01:41 UTC") && other.contains("RESET MASTER"),
            "{other}"
        );
        let none = on(100, false).unwrap_err().to_string();
        assert!(none.contains("no format description"), "{none}");
        // A whole file is its own proof: its format description's time is recorded.
        let (_, facts) = read_all(&f, 0);
        assert_eq!(facts.file_created, Some(100));
    }

    /// A file read after the archive's end starts from the server's state (its GTID list): it
    /// must hold each server's last transaction the archive ends with, never a later one (a
    /// RESET MASTER, then a new history that numbered past the archive's and rotated).
    #[test]
    fn a_next_file_must_start_from_the_state_the_archive_ends_with() {
        let g = |s: &str| s.parse::<Gtid>().unwrap();
        let file_from = |list: &[Gtid]| {
            let mut f = MAGIC.to_vec();
            let fde = event(FORMAT_DESCRIPTION, 100, 7, 4, &fde_body());
            let at = 4 + fde.len() as u32;
            f.extend(fde);
            let l = event(GTID_LIST, 100, 7, at, &gtid_list_body(list));
            let at2 = at + l.len() as u32;
            f.extend(l);
            f.extend(event(GTID, 101, 7, at2, &gtid_body(42, 0)));
            f
        };
        let read = |f: &[u8], after: &str| {
            let facts = Arc::new(Mutex::new(SegmentFacts::default()));
            let mut r = SegmentReader::new(f, 0, Arc::clone(&facts))
                .new_to(Some(GtidState::parse(after)))
                .next_after(Some(GtidState::parse(after)));
            let mut out = Vec::new();
            r.read_to_end(&mut out).map(|_| ())
        };
        // The state the archive ends with, other servers of the domain beside it: a continuation.
        assert!(read(&file_from(&[g("0-2-3"), g("0-7-41")]), "0-7-41").is_ok());
        // Numbered past it, or without it (an empty state after RESET MASTER): refused.
        for list in [vec![g("0-7-45")], vec![]] {
            let e = read(&file_from(&list), "0-7-41").unwrap_err().to_string();
            assert!(e.contains("does not continue the archive's end"), "{e}");
        }
    }

    #[test]
    fn a_continuation_must_begin_with_a_transaction_the_archive_lacks() {
        let f = file();
        let fde_len = event(FORMAT_DESCRIPTION, 100, 7, 4, &fde_body()).len();
        let start = 4 + fde_len;
        let mut raw = MAGIC.to_vec();
        raw.extend(event(FORMAT_DESCRIPTION, 100, 7, 0, &fde_body()));
        raw.extend_from_slice(&f[start..]);
        let read_after = |state: &str| {
            let facts = Arc::new(Mutex::new(SegmentFacts::default()));
            let mut r = SegmentReader::new(&raw[..], start as u64, Arc::clone(&facts))
                .with_gtid_state(Some(GtidState::parse(state)));
            let mut out = Vec::new();
            r.read_to_end(&mut out)
                .map(|_| facts.lock().unwrap().clone())
        };
        // The file's transaction is 0-7-42: new after 0-7-41, or in another domain.
        assert_eq!(
            read_after("0-7-41").unwrap().gtid_pos.as_deref(),
            Some("0-7-42")
        );
        assert!(read_after("1-7-90").is_ok());
        // Another server's number in the domain, lower or not: replication without
        // gtid_strict_mode.
        assert!(read_after("0-3-60").is_ok());
        // A reset or replaced server that reached the same offset replays old numbers.
        for held in ["0-7-42", "0-7-52"] {
            let e = read_after(held).unwrap_err().to_string();
            assert!(e.contains("0-7-42") && e.contains("reset"), "{held}: {e}");
        }
        // A whole later file is held to the state the archive reached before it, too.
        // A whole file read after the archive reached `state`: the bytes it passed on.
        let read_file_after = |file: &[u8], state: &str| {
            let facts = Arc::new(Mutex::new(SegmentFacts::default()));
            let mut r = SegmentReader::new(file, 0, Arc::clone(&facts))
                .new_to(Some(GtidState::parse(state)));
            let mut out = Vec::new();
            r.read_to_end(&mut out).map(|_| out.len())
        };
        assert_eq!(read_file_after(&f, "0-7-41").unwrap(), f.len());
        let e = read_file_after(&f, "0-7-50").unwrap_err().to_string();
        assert!(e.contains("already holds") && e.contains("reset"), "{e}");
        // A first transaction in a domain new to the archive does not end the check: the
        // first one in a domain it holds still must be new.
        let mut two = MAGIC.to_vec();
        let fde = event(FORMAT_DESCRIPTION, 100, 7, 4, &fde_body());
        let mut at = 4 + fde.len() as u32;
        two.extend(fde);
        for (seq, domain) in [(5, 1), (42, 0)] {
            let g = event(GTID, 101, 7, at, &gtid_body(seq, domain));
            at += g.len() as u32;
            two.extend(g);
            let q = event(2, 102, 7, at, b"insert into t values (1)");
            at += q.len() as u32;
            two.extend(q);
        }
        assert_eq!(read_file_after(&two, "0-7-41").unwrap(), two.len());
        let e = read_file_after(&two, "0-7-50").unwrap_err().to_string();
        assert!(e.contains("0-7-42") && e.contains("already holds"), "{e}");
    }

    #[test]
    fn a_flipped_byte_a_cut_and_a_jump_are_errors() {
        let f = file();
        let mut flipped = f.clone();
        let n = flipped.len();
        flipped[n - 10] ^= 1;
        let (out, facts) = read_all(&flipped, 0);
        assert!(out.is_err());
        assert!(facts.error.unwrap().contains("CRC32"));

        let (out, facts) = read_all(&f[..f.len() - 3], 0);
        assert!(out.is_err());
        assert!(facts.error.unwrap().contains("ends inside an event"));

        let (out, facts) = read_all(&f, 8);
        assert!(out.is_err(), "{:?}", facts);
        assert!(facts.error.unwrap().contains("not contiguous"));

        let (out, _) = read_all(b"nope", 0);
        assert!(out.is_err());
    }

    #[test]
    fn the_verify_check_finds_what_the_archiver_wrote_and_nothing_else() {
        use std::io::Write;
        let f = file();
        let (_, facts) = read_all(&f, 0);
        let seg = crate::index::Segment {
            file: "binlog.000001".into(),
            start: 0,
            end: facts.end,
            events: facts.events,
            first_event_at: None,
            last_event_at: None,
            first_gtid: None,
            last_gtid: None,
            closed: true,
            next_file: None,
            crc32: true,
            ..Default::default()
        };
        for chunk in [1, 7, 4096] {
            let mut c = SegmentCheck::new(0, true);
            for part in f.chunks(chunk) {
                c.write_all(part).unwrap();
            }
            assert!(c.problems(&seg).is_empty(), "{:?}", c.problems(&seg));
        }
        let mut flipped = f.clone();
        flipped[40] ^= 0x10;
        let mut c = SegmentCheck::new(0, true);
        c.write_all(&flipped).unwrap();
        assert!(c.problems(&seg)[0].contains("CRC32"));
        let mut c = SegmentCheck::new(0, true);
        c.write_all(&f[..f.len() - 5]).unwrap();
        assert!(!c.problems(&seg).is_empty());
    }

    #[test]
    fn gtids_parse_and_print() {
        let g: Gtid = "0-1-42".parse().unwrap();
        assert_eq!(g.to_string(), "0-1-42");
        assert!("0-1".parse::<Gtid>().is_err());
        assert!("a-b-c".parse::<Gtid>().is_err());
        assert_eq!(gtid_list("0-1-5, 1-2-3").len(), 2);
    }
}
