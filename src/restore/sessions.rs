//! `restore --jobs N`: one dump loaded through N client sessions at once, with the same result
//! as one session (the tests compare `CHECKSUM TABLE` and the `information_schema` rows of every
//! object).
//!
//! The dump is read once, in order, and every statement the [`super::Guard`] allows is routed:
//!
//! - the header (the sandbox line, `SET NAMES`, `SET FOREIGN_KEY_CHECKS=0`, … before the first
//!   table) goes to every session;
//! - a table's `DROP TABLE`/`CREATE TABLE` goes to its *home* session, the least busy one when
//!   the table first appears, and so does its data at first. Once a table that can be split
//!   (InnoDB with a primary key, so that row order is the key's whatever the order of the
//!   inserts) has [`SPREAD_AFTER`] bytes of data, a barrier proves that its home session has run
//!   everything sent so far (the `CREATE TABLE` included), and from then on each of its
//!   `INSERT` statements goes to the least busy session. A table that cannot be split (MyISAM,
//!   no primary key) is loaded by its home session alone, in order;
//! - `LOCK TABLES`/`UNLOCK TABLES` are dropped (they would serialize the sessions), and so is
//!   `ALTER TABLE … DISABLE/ENABLE KEYS` of a split table (a no-op on InnoDB);
//! - views, triggers, routines, events and `ALTER DATABASE` are held (in memory, at most
//!   [`MAX_DEFERRED`]) and run by session 0 after every session has finished its data, in dump
//!   order: a trigger created while another session still inserts into its table would fire;
//! - a `SET` or `DELIMITER` travels with the statement it belongs to: one that saves or sets a
//!   variable (`SET @saved_cs_client = @@character_set_client`, `SET sql_mode = '…'`,
//!   `DELIMITER ;;`) goes with the next statement, one that restores it (`SET sql_mode =
//!   @saved_sql_mode`, `DELIMITER ;`) with the previous one.
//!
//! Every session first gets the session-only settings of a bulk load: `max_statement_time=0`
//! on MariaDB (a server-wide limit must not abort a long `INSERT`) and, with `--no-binlog`,
//! `sql_log_bin=0`. Nothing global is ever set. A session that fails stops the load: the others
//! are killed and the error names the session and the client's message.

use std::collections::HashMap;
use std::io::{self, BufRead, Write};
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::StatementSink;
use crate::sqlscan::{Head, Kind};

/// Data bytes of a table after which its `INSERT`s are spread over the sessions.
pub const SPREAD_AFTER: u64 = 4 << 20;
/// Statements held for the end (views, triggers, routines, events), at most.
pub const MAX_DEFERRED: usize = 64 << 20;
/// Bytes of a `CREATE TABLE` kept to read its engine and keys.
const MAX_DDL: usize = 1 << 20;
/// Bytes gathered before they are handed to a session's writer.
const SEND_AT: usize = 1 << 20;
/// Hand-overs a session's writer may have queued before the dispatcher waits for it.
const QUEUE: usize = 4;

/// One client session: its process, the thread that writes its input, the thread that reads
/// its output (barrier markers), and what is waiting to be written.
struct Session {
    child: Child,
    tx: Option<SyncSender<Vec<u8>>>,
    writer: Option<JoinHandle<io::Result<()>>>,
    stderr: Option<JoinHandle<String>>,
    lines: Receiver<String>,
    /// Bytes handed over or gathered and not yet written to the client.
    backlog: Arc<AtomicU64>,
    out: Vec<u8>,
    /// The highest barrier whose marker this session has printed.
    passed: u64,
}

/// Why a session stopped taking statements.
fn ended() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the session ended")
}

impl Session {
    fn start(mut child: Child) -> Session {
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = crate::mysql::drain_stderr(&mut child);
        let backlog = Arc::new(AtomicU64::new(0));
        let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE);
        let written = Arc::clone(&backlog);
        let writer = std::thread::spawn(move || -> io::Result<()> {
            for chunk in rx {
                stdin.write_all(&chunk)?;
                written.fetch_sub(chunk.len() as u64, Ordering::Relaxed);
            }
            stdin.flush()
        });
        let (line_tx, lines) = sync_channel::<String>(16);
        std::thread::spawn(move || {
            for line in io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with(MARKER) && line_tx.send(line).is_err() {
                    break;
                }
            }
        });
        Session {
            child,
            tx: Some(tx),
            writer: Some(writer),
            stderr,
            lines,
            backlog,
            out: Vec::new(),
            passed: 0,
        }
    }

    fn push(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.extend_from_slice(b);
        self.backlog.fetch_add(b.len() as u64, Ordering::Relaxed);
        if self.out.len() >= SEND_AT {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::take(&mut self.out);
        match &self.tx {
            Some(tx) => tx.send(chunk).map_err(|_| ended()),
            None => Err(ended()),
        }
    }

    /// Sends barrier `n`: once its marker comes back, everything sent before it has run.
    fn barrier(&mut self, n: u64) -> io::Result<()> {
        self.push(format!("SELECT '{MARKER}{n}';\n").as_bytes())?;
        self.send()
    }

    fn note(&mut self, line: &str) {
        if let Some(n) = line.strip_prefix(MARKER).and_then(|n| n.parse().ok()) {
            self.passed = self.passed.max(n);
        }
    }

    /// Whether barrier `n` has passed, without waiting.
    fn passed(&mut self, n: u64) -> bool {
        while self.passed < n {
            match self.lines.try_recv() {
                Ok(line) => self.note(&line),
                Err(_) => break,
            }
        }
        self.passed >= n
    }

    /// Waits until barrier `n` has passed (or a signal asks the run to stop).
    fn wait(&mut self, n: u64) -> io::Result<()> {
        while self.passed < n {
            if crate::signals::stopping() {
                return Err(io::Error::other("interrupted by a signal"));
            }
            match self
                .lines
                .recv_timeout(std::time::Duration::from_millis(100))
            {
                Ok(line) => self.note(&line),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if matches!(self.child.try_wait(), Ok(Some(_))) {
                        return Err(ended());
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Err(ended()),
            }
        }
        Ok(())
    }

    /// Sends what is gathered and closes the session's input; returns how it ended.
    fn close(&mut self) -> Result<(), String> {
        let sent = self.send();
        self.tx = None;
        let written = self
            .writer
            .take()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(io::Error::other("panicked")))
            })
            .unwrap_or(Ok(()));
        let status = self.child.wait().map_err(|e| e.to_string())?;
        let err = self.error_text();
        if !status.success() {
            return Err(format!(
                "{}{}",
                crate::process::describe_exit(&status),
                if err.is_empty() {
                    String::new()
                } else {
                    format!(": {err}")
                }
            ));
        }
        sent.and(written).map_err(|e| e.to_string())
    }

    fn error_text(&mut self) -> String {
        super::client_error(
            &self
                .stderr
                .take()
                .and_then(|h| h.join().ok())
                .unwrap_or_default(),
        )
    }

    /// Ends the session at once.
    fn kill(&mut self) {
        self.tx = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the line a barrier prints starts with.
const MARKER: &str = "sqlguard-barrier-";

/// Where a statement goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dest {
    /// Every session (the header).
    All,
    One(usize),
    /// Held for session 0 at the end.
    Deferred,
    Drop,
    /// Held until the next statement says where it goes.
    Hold,
}

#[derive(Debug, Clone, Copy)]
struct Table {
    home: usize,
    splittable: bool,
    spread: bool,
    bytes: u64,
    /// The barrier sent to the home session after which the table may be spread.
    barrier: Option<u64>,
}

/// What the statement in progress is, for its end.
#[derive(Debug, Default)]
struct Current {
    dest: Option<Dest>,
    /// A `CREATE TABLE` whose text is kept to read its engine and keys.
    create: Option<(String, Vec<u8>)>,
    /// An `INSERT` into this table.
    insert: Option<String>,
    bytes: u64,
}

/// Spreads the statements of one dump over several sessions; see the module docs.
pub struct Dispatcher {
    sessions: Vec<Session>,
    header: bool,
    held: Vec<u8>,
    prev: Dest,
    cur: Current,
    tables: HashMap<String, Table>,
    deferred: Vec<u8>,
    barriers: u64,
    /// The first session that failed, and how.
    failure: Option<String>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dispatcher({} sessions)", self.sessions.len())
    }
}

/// Whether a `SET` puts back a value saved before (`SET sql_mode = @saved_sql_mode`,
/// `SET TIME_ZONE=@OLD_TIME_ZONE`): it belongs to the statement before it.
fn restores(head: &Head) -> bool {
    let text = String::from_utf8_lossy(&head.text);
    let Some((_, value)) = text.split_once('=') else {
        return false;
    };
    let value = value.trim_start();
    value.starts_with('@') && !value.starts_with("@@")
}

fn table_key(name: &crate::sqlscan::Name) -> String {
    name.name.clone()
}

impl Dispatcher {
    /// A dispatcher over client processes started with piped stdin, stdout and stderr; each
    /// first gets `prefix` (the session settings).
    pub fn new(children: Vec<Child>, prefix: &[u8]) -> io::Result<Self> {
        let mut sessions: Vec<Session> = children.into_iter().map(Session::start).collect();
        for s in &mut sessions {
            s.push(prefix)?;
        }
        Ok(Dispatcher {
            sessions,
            header: true,
            held: Vec::new(),
            prev: Dest::One(0),
            cur: Current::default(),
            tables: HashMap::new(),
            deferred: Vec::new(),
            barriers: 0,
            failure: None,
        })
    }

    /// The tables whose rows were spread over the sessions, sorted.
    pub fn spread_tables(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .tables
            .iter()
            .filter(|(_, t)| t.spread)
            .map(|(n, _)| n.clone())
            .collect();
        v.sort();
        v
    }

    /// The session with the fewest bytes waiting.
    fn least_busy(&self) -> usize {
        (0..self.sessions.len())
            .min_by_key(|&i| self.sessions[i].backlog.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    fn table(&mut self, name: &crate::sqlscan::Name) -> Table {
        let home = self.least_busy();
        let key = table_key(name);
        let t = self.tables.entry(key.clone()).or_insert(Table {
            home,
            splittable: false,
            spread: false,
            bytes: 0,
            barrier: None,
        });
        // A pending barrier that has passed lets the table spread from now on.
        if let (false, Some(n)) = (t.spread, t.barrier) {
            let home = t.home;
            if self.sessions[home].passed(n) {
                if let Some(t) = self.tables.get_mut(&key) {
                    t.spread = true;
                }
            }
        }
        self.tables[&key]
    }

    fn route(&mut self, kind: &Kind, head: &Head) -> io::Result<Dest> {
        Ok(match kind {
            Kind::Set | Kind::Delimiter | Kind::Empty if self.header => Dest::All,
            Kind::Set if restores(head) => self.prev,
            Kind::Set => Dest::Hold,
            Kind::Delimiter if head.delimiter.as_deref() == Some(b";") => self.prev,
            Kind::Delimiter => Dest::Hold,
            Kind::Empty | Kind::Lock => Dest::Drop,
            Kind::Session => {
                let word = head.text.split(|b| *b == b' ').next().unwrap_or_default();
                if [&b"COMMIT"[..], b"ROLLBACK", b"BEGIN", b"START"]
                    .iter()
                    .any(|w| word.eq_ignore_ascii_case(w))
                {
                    Dest::All
                } else {
                    self.prev
                }
            }
            Kind::CreateTable { table } | Kind::DropTable { table } => {
                Dest::One(self.table(table).home)
            }
            Kind::Object { object, name, .. } if object == "SEQUENCE" => {
                Dest::One(self.table(name).home)
            }
            Kind::Insert { table } => {
                let t = self.table(table);
                match (t.spread, t.barrier) {
                    (true, _) => Dest::One(self.least_busy()),
                    // Waiting for the barrier: the home session takes more while it keeps up;
                    // once it has a backlog, the reader waits for the barrier, then spreads.
                    (false, Some(n))
                        if self.sessions[t.home].backlog.load(Ordering::Relaxed)
                            >= SEND_AT as u64 =>
                    {
                        self.sessions[t.home].wait(n)?;
                        if let Some(t) = self.tables.get_mut(&table_key(table)) {
                            t.spread = true;
                        }
                        Dest::One(self.least_busy())
                    }
                    _ => Dest::One(t.home),
                }
            }
            Kind::AlterTable { table } => {
                let t = self.table(table);
                let keys = String::from_utf8_lossy(&head.text)
                    .to_ascii_uppercase()
                    .contains(" KEYS");
                if t.splittable && keys {
                    Dest::Drop
                } else if t.spread {
                    Dest::Deferred
                } else {
                    Dest::One(t.home)
                }
            }
            _ => Dest::Deferred,
        })
    }

    fn emit(&mut self, dest: Dest, b: &[u8]) -> io::Result<()> {
        match dest {
            Dest::All => {
                for s in &mut self.sessions {
                    s.push(b)?;
                }
            }
            Dest::One(i) => self.sessions[i].push(b)?,
            Dest::Deferred => {
                if self.deferred.len() + b.len() > MAX_DEFERRED {
                    return Err(io::Error::other(format!(
                        "the views, triggers, routines and events of this dump take more than {} to hold until the data is loaded: restore it with --jobs 1",
                        crate::ui::human_bytes(MAX_DEFERRED as u64)
                    )));
                }
                self.deferred.extend_from_slice(b);
            }
            Dest::Hold => self.held.extend_from_slice(b),
            Dest::Drop => {}
        }
        Ok(())
    }

    /// Runs `f`, and when a session has gone, stops everything and says which and why.
    fn checked<T>(&mut self, r: io::Result<T>) -> io::Result<T> {
        match r {
            Ok(v) => Ok(v),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(self.fail()),
            Err(e) => Err(e),
        }
    }

    /// Stops every session; the error names the first one that failed and its message.
    fn fail(&mut self) -> io::Error {
        if self.failure.is_none() {
            let n = self.sessions.len();
            let mut found = None;
            for (i, s) in self.sessions.iter_mut().enumerate() {
                if let Ok(Some(st)) = s.child.try_wait() {
                    if !st.success() && found.is_none() {
                        found = Some(format!(
                            "session {} of {n} failed ({}): {}",
                            i + 1,
                            crate::process::describe_exit(&st),
                            s.error_text()
                        ));
                    }
                }
            }
            self.failure = Some(found.unwrap_or_else(|| format!("a session of {n} ended early")));
        }
        for s in &mut self.sessions {
            s.kill();
        }
        io::Error::other(self.failure.clone().unwrap_or_default())
    }
}

impl StatementSink for Dispatcher {
    fn begin(&mut self, kind: &Kind, head: &Head) -> io::Result<()> {
        if self.failure.is_some() {
            return Err(io::Error::other(self.failure.clone().unwrap_or_default()));
        }
        let dest = self.route(kind, head);
        let dest = self.checked(dest)?;
        let context = matches!(
            kind,
            Kind::Set | Kind::Delimiter | Kind::Empty | Kind::Lock | Kind::Session
        );
        if !context {
            self.header = false;
        }
        if !matches!(dest, Dest::Hold | Dest::Drop) && !self.held.is_empty() {
            let held = std::mem::take(&mut self.held);
            let r = self.emit(dest, &held);
            self.checked(r)?;
        }
        if !context && dest != Dest::Drop {
            self.prev = dest;
        }
        self.cur = Current {
            dest: Some(dest),
            create: match kind {
                Kind::CreateTable { table } => Some((table_key(table), Vec::new())),
                _ => None,
            },
            insert: match kind {
                Kind::Insert { table } => Some(table_key(table)),
                _ => None,
            },
            bytes: 0,
        };
        Ok(())
    }

    fn bytes(&mut self, b: &[u8]) -> io::Result<()> {
        let dest = self.cur.dest.unwrap_or(Dest::Drop);
        if let Some((_, text)) = &mut self.cur.create {
            if text.len() < MAX_DDL {
                text.extend_from_slice(&b[..b.len().min(MAX_DDL - text.len())]);
            }
        }
        self.cur.bytes += b.len() as u64;
        let r = self.emit(dest, b);
        self.checked(r)
    }

    fn end(&mut self) -> io::Result<()> {
        let cur = std::mem::take(&mut self.cur);
        // A whole statement goes to its session at once: gathered bytes would keep it idle.
        if let Some(Dest::One(i)) = cur.dest {
            let r = self.sessions[i].send();
            self.checked(r)?;
        }
        if let Some((name, text)) = cur.create {
            let upper = String::from_utf8_lossy(&text).to_ascii_uppercase();
            let splittable = upper.contains("ENGINE=INNODB") && upper.contains("PRIMARY KEY");
            if let Some(t) = self.tables.get_mut(&name) {
                t.splittable = splittable;
            }
        }
        if let Some(name) = cur.insert {
            let Some(t) = self.tables.get_mut(&name) else {
                return Ok(());
            };
            t.bytes += cur.bytes;
            let ready = t.splittable && !t.spread && t.barrier.is_none();
            if ready && t.bytes >= SPREAD_AFTER && self.sessions.len() > 1 {
                // Everything sent to the home session so far, its CREATE TABLE included, must
                // have run before another session inserts into the table: a barrier is sent,
                // and the table keeps going to its home session until the barrier comes back.
                let home = t.home;
                self.barriers += 1;
                let n = self.barriers;
                t.barrier = Some(n);
                let r = self.sessions[home].barrier(n);
                self.checked(r)?;
            }
        }
        Ok(())
    }

    /// Ends the load: waits for every session but the first to finish its data, then has the
    /// first run what was held (views, triggers, routines, events) and end.
    fn done(&mut self) -> io::Result<()> {
        let held = std::mem::take(&mut self.held);
        let r = self.emit(Dest::Deferred, &held);
        self.checked(r)?;
        let n = self.sessions.len();
        for i in 1..n {
            if let Err(e) = self.sessions[i].close() {
                let msg = format!("session {} of {n} failed ({e})", i + 1);
                self.failure = Some(msg);
                return Err(self.fail());
            }
        }
        let deferred = std::mem::take(&mut self.deferred);
        let r = self.sessions[0].push(&deferred);
        self.checked(r)?;
        if let Err(e) = self.sessions[0].close() {
            let msg = format!("session 1 of {n} failed ({e})");
            self.failure = Some(msg);
            return Err(self.fail());
        }
        Ok(())
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        for s in &mut self.sessions {
            if s.tx.is_some() {
                s.kill();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        Head {
            text: text.as_bytes().to_vec(),
            delimiter: None,
        }
    }

    #[test]
    fn a_set_that_restores_a_saved_value_belongs_to_the_statement_before() {
        for t in [
            "SET character_set_client = @saved_cs_client",
            "SET sql_mode = @saved_sql_mode",
            "SET TIME_ZONE=@OLD_TIME_ZONE",
            "SET TIME_ZONE= @save_time_zone",
        ] {
            assert!(restores(&head(t)), "{t}");
        }
        for t in [
            "SET @saved_cs_client = @@character_set_client",
            "SET character_set_client = utf8mb4",
            "SET sql_mode = 'STRICT_TRANS_TABLES'",
            "SET NAMES utf8mb4",
        ] {
            assert!(!restores(&head(t)), "{t}");
        }
    }
}
