//! `restore --jobs N`: one dump loaded through N client sessions at once, with the same result
//! as one session (the tests compare `CHECKSUM TABLE` and the `information_schema` rows of every
//! object).
//!
//! The dump is read once, in order, and every statement the [`super::Guard`] allows is routed to
//! one of N+1 sessions: a *schema session* (session 0) and N *data sessions*:
//!
//! - the header (the sandbox line, `SET NAMES`, `SET FOREIGN_KEY_CHECKS=0`, … before the first
//!   table) goes to every session;
//! - `DROP TABLE`, `CREATE TABLE` and `CREATE SEQUENCE` go to the schema session, which runs
//!   them as soon as the reader gets there. The reader reads up to [`READ_AHEAD`] ahead of the
//!   data sessions, so the tables of a dump are mostly created before the rows of the first ones
//!   are loaded: a child table's rows then find their foreign key's parent table created (a
//!   dump lists tables by name, so `order_items` comes before `orders`). Rows inserted into a
//!   child whose parent does not exist yet are slower, even with `FOREIGN_KEY_CHECKS=0`, and
//!   more so through several sessions (measured on MariaDB 10.11: a two-session restore of
//!   the benchmark's shop took about 30 % longer);
//! - a table's data (`INSERT`s) goes to a data session behind a *gate*: a barrier sent to the
//!   schema session after its `CREATE TABLE`. A data session's writer holds the table's first
//!   bytes until the barrier's marker comes back, so no row is sent before its table exists,
//!   and the reader never waits for it. The `INSERT`s of a table that can be split (InnoDB with
//!   a primary key, so that row order is the key's whatever the order of the inserts) each go
//!   to the least busy data session, but only once the table's first `INSERT` has run alone
//!   (a barrier after it in its session is the gate of the others: see [`Table::opened`]);
//!   a table that cannot be split (MyISAM, no primary key) is loaded by one data session, in
//!   order;
//! - `LOCK TABLES`/`UNLOCK TABLES` are dropped (they would serialize the sessions), and so is
//!   `ALTER TABLE … DISABLE/ENABLE KEYS` of a split table (a no-op on InnoDB);
//! - views, triggers, routines, events and `ALTER DATABASE` are held (in memory, at most
//!   [`MAX_DEFERRED`]) and run by the schema session after every data session has finished, in
//!   dump order: a trigger created while another session still inserts into its table would
//!   fire;
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
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::StatementSink;
use crate::sqlscan::{Head, Kind};

/// SQL the reader may hold for the data sessions in all, beyond what their clients have read.
pub const READ_AHEAD: usize = 64 << 20;
/// Statements held for the end (views, triggers, routines, events), at most.
pub const MAX_DEFERRED: usize = 64 << 20;
/// Bytes of a `CREATE TABLE` kept to read its engine and keys.
const MAX_DDL: usize = 1 << 20;
/// Bytes gathered before they are handed to a session's writer.
const SEND_AT: usize = 1 << 20;
/// Hand-overs a session's writer may have queued, at least.
const QUEUE: usize = 4;
/// The schema session's index.
const SCHEMA: usize = 0;

/// The barriers a session has passed, as its output shows them, and whether its output ended.
#[derive(Debug, Default)]
struct Progress {
    state: Mutex<(u64, bool)>,
    changed: Condvar,
}

impl Progress {
    fn note(&self, n: u64) {
        if let Ok(mut s) = self.state.lock() {
            s.0 = s.0.max(n);
        }
        self.changed.notify_all();
    }

    fn end(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.1 = true;
        }
        self.changed.notify_all();
    }

    /// Waits up to `timeout` for barrier `n`: whether it has passed, or else whether the
    /// session's output ended (it never will).
    fn wait(&self, n: u64, timeout: Duration) -> Result<bool, ()> {
        let Ok(guard) = self.state.lock() else {
            return Err(());
        };
        let Ok((s, _)) = self
            .changed
            .wait_timeout_while(guard, timeout, |s| s.0 < n && !s.1)
        else {
            return Err(());
        };
        match *s {
            (passed, _) if passed >= n => Ok(true),
            (_, true) => Err(()),
            _ => Ok(false),
        }
    }
}

/// What a chunk of statements waits for before it is written: barrier `n` of session
/// `session` (`n` 0: nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Gate {
    session: usize,
    n: u64,
}

/// One client session: its process, the thread that writes its input, the thread that reads
/// its output (barrier markers), and what is waiting to be written.
struct Session {
    child: Child,
    /// Chunks for the writer, each with the gate it waits for.
    tx: Option<SyncSender<(Gate, Vec<u8>)>>,
    writer: Option<JoinHandle<io::Result<()>>>,
    stderr: Option<JoinHandle<String>>,
    progress: Arc<Progress>,
    /// Bytes handed over or gathered and not yet written to the client.
    backlog: Arc<AtomicU64>,
    out: Vec<u8>,
    /// The gate of the bytes in `out`.
    gate: Gate,
    /// The barriers sent to this session so far.
    barriers: u64,
}

/// Why a session stopped taking statements.
fn ended() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the session ended")
}

impl Session {
    /// Starts the threads of a client process with piped stdin, stdout and stderr, as session
    /// `index` of those whose progress `all` holds. Its writer holds each chunk until the
    /// session the chunk's gate names has passed the gate's barrier.
    fn start(
        mut child: Child,
        queue: usize,
        index: usize,
        all: Arc<Vec<Arc<Progress>>>,
    ) -> io::Result<Session> {
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other(
                "a client session without piped input and output",
            ));
        };
        let stderr = crate::mysql::drain_stderr(&mut child)?;
        let backlog = Arc::new(AtomicU64::new(0));
        let (tx, rx) = sync_channel::<(Gate, Vec<u8>)>(queue);
        let written = Arc::clone(&backlog);
        let progress = Arc::clone(&all[index]);
        let writer = crate::threads::spawn("restore-writer", move || -> io::Result<()> {
            for (gate, chunk) in rx {
                if let Some(other) = all.get(gate.session).filter(|_| gate.n > 0) {
                    loop {
                        match other.wait(gate.n, Duration::from_millis(100)) {
                            Ok(true) => break,
                            Ok(false) if !crate::signals::stopping() => {}
                            _ => return Err(ended()),
                        }
                    }
                }
                stdin.write_all(&chunk)?;
                written.fetch_sub(chunk.len() as u64, Ordering::Relaxed);
            }
            stdin.flush()
        });
        let seen = Arc::clone(&progress);
        let reader = writer.and_then(|writer| {
            crate::threads::spawn("restore-reader", move || {
                for line in io::BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(n) = line.strip_prefix(MARKER).and_then(|n| n.parse().ok()) {
                        seen.note(n);
                    }
                }
                seen.end();
            })
            .map(|_| writer)
        });
        // A thread that did not start: the session ends here (its input closes with the
        // writer's channel, or with the writer that never ran).
        let writer = match reader {
            Ok(writer) => writer,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        Ok(Session {
            child,
            tx: Some(tx),
            writer: Some(writer),
            stderr,
            progress,
            backlog,
            out: Vec::new(),
            gate: Gate::default(),
            barriers: 0,
        })
    }

    /// Gathers `b`, to be written once `gate` has opened.
    fn push(&mut self, b: &[u8], gate: Gate) -> io::Result<()> {
        if gate != self.gate {
            self.send()?;
            self.gate = gate;
        }
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
            Some(tx) => tx.send((self.gate, chunk)).map_err(|_| ended()),
            None => Err(ended()),
        }
    }

    /// Sends the next barrier: once its marker comes back, everything sent before it has run.
    /// Returns the gate that opens then.
    fn barrier(&mut self, index: usize) -> io::Result<Gate> {
        let n = self.barriers + 1;
        self.push(
            format!("SELECT '{MARKER}{n}';\n").as_bytes(),
            Gate::default(),
        )?;
        self.send()?;
        self.barriers = n;
        Ok(Gate { session: index, n })
    }

    /// Sends what is gathered and closes the session's input; returns how it ended.
    fn close(&mut self) -> Result<(), String> {
        let sent = self.send();
        self.tx = None;
        // The writer hands the rest to the client, which loads it and ends. A signal meanwhile
        // kills the client, so that a restore asked to stop does not load its queue first.
        loop {
            let writing = self.writer.as_ref().is_some_and(|w| !w.is_finished());
            if !writing && matches!(self.child.try_wait(), Ok(Some(_)) | Err(_)) {
                break;
            }
            if crate::signals::stopping() {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err("interrupted by a signal".into());
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
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

    /// Ends the session at once: the client is killed before its input closes, since at the
    /// end of its input it would run a statement cut short.
    fn kill(&mut self) {
        let _ = self.child.kill();
        self.tx = None;
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
    /// One session: [`SCHEMA`] or a data session, whose bytes wait for the current gate.
    One(usize),
    /// Held for the schema session at the end.
    Deferred,
    Drop,
    /// Held until the next statement says where it goes.
    Hold,
}

#[derive(Debug, Clone, Copy, Default)]
struct Table {
    splittable: bool,
    /// The data session that loads a table that cannot be split.
    home: Option<usize>,
    /// The data session that took the table's first rows.
    first: Option<usize>,
    /// What opens once that first `INSERT` has run: until then no other session may insert
    /// into the table. The first `INSERT` into an empty InnoDB table under the dump's
    /// `UNIQUE_CHECKS=0, FOREIGN_KEY_CHECKS=0` takes the bulk path (MDEV-515), which needs an
    /// exclusive table lock: two sessions starting on the empty table at once would both hold
    /// the intention lock and deadlock wanting it (seen on MariaDB 10.11).
    opened: Option<Gate>,
    /// Whether its rows went to more than one session.
    spread: bool,
}

/// What the statement in progress is, for its end.
#[derive(Debug, Default)]
struct Current {
    dest: Option<Dest>,
    /// A `CREATE TABLE` whose text is kept to read its engine and keys.
    create: Option<(String, Vec<u8>)>,
    /// The table whose first `INSERT` this is, when it may be split.
    opens: Option<String>,
}

/// Spreads the statements of one dump over several sessions; see the module docs.
pub struct Dispatcher {
    /// The schema session, then the data sessions.
    sessions: Vec<Session>,
    header: bool,
    held: Vec<u8>,
    prev: Dest,
    cur: Current,
    tables: HashMap<String, Table>,
    deferred: Vec<u8>,
    /// Whether the schema session has been sent statements since the last barrier.
    schema_dirty: bool,
    /// The gate of the data statement in progress.
    gate: Gate,
    /// The splittable table whose first `INSERT` is being routed.
    opening: Option<String>,
    /// The first session that failed, and how.
    failure: Option<String>,
    /// Whether each session runs under `NO_BACKSLASH_ESCAPES` (the mode decides where a quote
    /// ends), as the guard, which reads the dump in its order, takes it: see
    /// [`Dispatcher::follow_modes`].
    modes: Vec<bool>,
    /// The same along the held views, triggers and routines, and the mode they start from
    /// (the schema session's when it runs them at the end).
    deferred_mode: Option<(bool, bool)>,
    /// Where the `SET`s just sent went: their sessions' mode is the one the next statement is
    /// read in.
    set_to: Vec<Dest>,
    /// The mode the first held statement was read in.
    held_from: Option<bool>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dispatcher({} data sessions)", self.data_sessions())
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

/// Whether a table can be split: InnoDB with a primary key, from the words of its
/// `CREATE TABLE` outside quotes and comments (a `COMMENT 'PRIMARY KEY'` or a MyISAM table's
/// `COMMENT 'ENGINE=InnoDB'` is not one).
fn splittable(create: &[u8]) -> bool {
    let words: Vec<String> = crate::sqlscan::code_words(create, None, false)
        .into_iter()
        .map(|(_, w)| w)
        .collect();
    let innodb = words
        .windows(2)
        .rfind(|w| w[0] == "ENGINE")
        .is_some_and(|w| w[1] == "INNODB");
    innodb && words.windows(2).any(|w| w[0] == "PRIMARY" && w[1] == "KEY")
}

impl Dispatcher {
    /// A dispatcher over client processes started with piped stdin, stdout and stderr: the
    /// first is the schema session, the others load the data (at least one). Each first gets
    /// `prefix` (the session settings).
    ///
    /// Fails when fewer than two are given or one cannot take its prefix.
    pub fn new(children: Vec<Child>, prefix: &[u8]) -> io::Result<Self> {
        if children.len() < 2 {
            return Err(io::Error::other(
                "a parallel load needs a schema session and a data session",
            ));
        }
        let data = children.len() - 1;
        let queue = (READ_AHEAD / SEND_AT / data).max(QUEUE);
        let all: Arc<Vec<Arc<Progress>>> =
            Arc::new(children.iter().map(|_| Arc::default()).collect());
        let mut sessions: Vec<Session> = Vec::with_capacity(children.len());
        let mut children = children.into_iter().enumerate();
        while let Some((i, child)) = children.next() {
            let depth = if i == SCHEMA { QUEUE } else { queue };
            match Session::start(child, depth, i, Arc::clone(&all)) {
                Ok(s) => sessions.push(s),
                Err(e) => {
                    for s in &mut sessions {
                        s.kill();
                    }
                    // The clients not started yet end too, before the caller drops the
                    // database they are connected to.
                    for (_, mut rest) in children {
                        let _ = rest.kill();
                        let _ = rest.wait();
                    }
                    return Err(e);
                }
            }
        }
        for s in &mut sessions {
            s.push(prefix, Gate::default())?;
        }
        Ok(Dispatcher {
            sessions,
            header: true,
            held: Vec::new(),
            prev: Dest::One(SCHEMA),
            cur: Current::default(),
            tables: HashMap::new(),
            deferred: Vec::new(),
            schema_dirty: false,
            gate: Gate::default(),
            opening: None,
            failure: None,
            modes: vec![false; data + 1],
            deferred_mode: None,
            set_to: Vec::new(),
            held_from: None,
        })
    }

    /// Keeps every session's `NO_BACKSLASH_ESCAPES` as the guard read the statement it is
    /// given. The guard reads the dump in order, as one session; here a `SET` of the mode goes
    /// with the statement after it (or to the session of the one before it), so a mode set
    /// for one statement and reset before another could stay set in the first one's session,
    /// and a quote there would end elsewhere than the guard read it.
    ///
    /// After a `SET`, its sessions are in the mode the next statement is read in (the splitter
    /// follows what the `SET` does). Fails when a statement would go to a session in another
    /// mode than it was read in.
    fn follow_modes(&mut self, kind: &Kind, head: &Head, dest: Dest) -> io::Result<()> {
        let nbe = head.no_backslash_escapes;
        for d in std::mem::take(&mut self.set_to) {
            self.set_mode(d, nbe);
        }
        if matches!(dest, Dest::Drop) {
            return Ok(());
        }
        if matches!(dest, Dest::Hold) {
            self.held_from.get_or_insert(nbe);
            return Ok(());
        }
        if let Some(from) = self.held_from.take() {
            // The held statements go first, read in `from`; after them, this one's mode.
            self.check_mode(dest, from)?;
            self.set_mode(dest, nbe);
        }
        self.check_mode(dest, nbe)?;
        if matches!(kind, Kind::Set) {
            self.set_to.push(dest);
        }
        Ok(())
    }

    fn check_mode(&mut self, dest: Dest, nbe: bool) -> io::Result<()> {
        let ok = match dest {
            Dest::All => self.modes.iter().all(|&m| m == nbe),
            Dest::One(i) => self.modes.get(i) == Some(&nbe),
            Dest::Deferred => self.deferred_mode.get_or_insert((nbe, nbe)).1 == nbe,
            Dest::Drop | Dest::Hold => true,
        };
        if ok {
            return Ok(());
        }
        Err(io::Error::other(
            "the dump changes NO_BACKSLASH_ESCAPES in a way the sessions of a parallel restore cannot follow (a mode set for one statement and reset before another that goes elsewhere): restore it with --jobs 1",
        ))
    }

    fn set_mode(&mut self, dest: Dest, nbe: bool) {
        match dest {
            Dest::All => self.modes.iter_mut().for_each(|m| *m = nbe),
            Dest::One(i) => {
                if let Some(m) = self.modes.get_mut(i) {
                    *m = nbe;
                }
            }
            Dest::Deferred => self.deferred_mode.get_or_insert((nbe, nbe)).1 = nbe,
            Dest::Drop | Dest::Hold => {}
        }
    }

    fn data_sessions(&self) -> usize {
        self.sessions.len().saturating_sub(1)
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

    /// The data session with the fewest bytes waiting.
    fn least_busy(&self) -> usize {
        (1..self.sessions.len())
            .min_by_key(|&i| self.sessions[i].backlog.load(Ordering::Relaxed))
            .unwrap_or(1)
    }

    /// The gate for data routed now: a barrier after everything sent to the schema session so
    /// far (sent when something was sent since the last one).
    fn data_gate(&mut self) -> io::Result<Gate> {
        let schema = &mut self.sessions[SCHEMA];
        if self.schema_dirty {
            self.schema_dirty = false;
            return schema.barrier(SCHEMA);
        }
        Ok(Gate {
            session: SCHEMA,
            n: schema.barriers,
        })
    }

    /// The data session for a data statement of `table`, which is recorded as having gone
    /// there, and the gate it waits for.
    fn data_dest(&mut self, table: &crate::sqlscan::Name) -> io::Result<Dest> {
        self.gate = self.data_gate()?;
        let least = self.least_busy();
        let key = table_key(table);
        let t = self.tables.entry(key.clone()).or_default();
        let i = match (t.splittable, t.first, t.opened) {
            (false, _, _) => *t.home.get_or_insert(least),
            (true, None, _) => {
                self.opening = Some(key);
                least
            }
            // Another session only once the first INSERT has run; its own session runs
            // what it is sent in order.
            (true, Some(_), Some(opened)) if opened.session != least => {
                self.gate = opened;
                least
            }
            (true, Some(first), _) => first,
        };
        match t.first {
            None => t.first = Some(i),
            Some(f) if f != i => t.spread = true,
            Some(_) => {}
        }
        Ok(Dest::One(i))
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
            Kind::CreateTable { .. } | Kind::DropTable { .. } => Dest::One(SCHEMA),
            Kind::Object { object, .. } if object == "SEQUENCE" => Dest::One(SCHEMA),
            Kind::Insert { table } => self.data_dest(table)?,
            Kind::AlterTable { table } => {
                let keys = String::from_utf8_lossy(&head.text)
                    .to_ascii_uppercase()
                    .contains(" KEYS");
                let t = self
                    .tables
                    .get(&table_key(table))
                    .copied()
                    .unwrap_or_default();
                if t.splittable && keys {
                    Dest::Drop
                } else if t.splittable {
                    Dest::Deferred
                } else {
                    self.data_dest(table)?
                }
            }
            _ => Dest::Deferred,
        })
    }

    fn emit(&mut self, dest: Dest, b: &[u8]) -> io::Result<()> {
        match dest {
            Dest::All => {
                self.schema_dirty = true;
                for s in &mut self.sessions {
                    s.push(b, Gate::default())?;
                }
            }
            Dest::One(SCHEMA) => {
                self.schema_dirty = true;
                self.sessions[SCHEMA].push(b, Gate::default())?;
            }
            Dest::One(i) => {
                let gate = self.gate;
                self.sessions[i].push(b, gate)?;
            }
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

    /// Passes `r` on; when a session has gone, stops everything and says which and why.
    fn checked<T>(&mut self, r: io::Result<T>) -> io::Result<T> {
        match r {
            Ok(v) => Ok(v),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(self.fail()),
            Err(e) => Err(e),
        }
    }

    /// How the error messages name session `i`.
    fn name(&self, i: usize) -> String {
        if i == SCHEMA {
            "the schema session".to_string()
        } else {
            format!("session {i} of {}", self.data_sessions())
        }
    }

    /// The first session other than `skip` whose client failed, and its message. A session
    /// whose output has ended is waited for (its client is exiting); the others are only
    /// looked at.
    fn culprit(&mut self, skip: Option<usize>) -> Option<String> {
        for i in 0..self.sessions.len() {
            if Some(i) == skip {
                continue;
            }
            let name = self.name(i);
            let s = &mut self.sessions[i];
            let status = if s.progress.wait(u64::MAX, Duration::ZERO).is_err() {
                s.child.wait().ok()
            } else {
                s.child.try_wait().ok().flatten()
            };
            if let Some(st) = status.filter(|st| !st.success()) {
                return Some(format!(
                    "{name} failed ({}): {}",
                    crate::process::describe_exit(&st),
                    s.error_text()
                ));
            }
        }
        None
    }

    /// Stops every session; the error names the first one that failed and its message.
    fn fail(&mut self) -> io::Error {
        if self.failure.is_none() {
            let n = self.sessions.len();
            let found = self.culprit(None);
            self.failure = Some(found.unwrap_or_else(|| format!("a session of {n} ended early")));
        }
        for s in &mut self.sessions {
            s.kill();
        }
        io::Error::other(self.failure.clone().unwrap_or_default())
    }

    /// Closes session `i`; a failure stops the others and names it, or the session whose
    /// failure ended it (a data session waiting for a schema session that failed).
    fn close(&mut self, i: usize) -> io::Result<()> {
        if let Err(e) = self.sessions[i].close() {
            let own = format!("{} failed ({e})", self.name(i));
            let msg = if i == SCHEMA {
                own
            } else {
                self.culprit(Some(i)).unwrap_or(own)
            };
            self.failure = Some(msg);
            return Err(self.fail());
        }
        Ok(())
    }
}

impl StatementSink for Dispatcher {
    fn begin(&mut self, kind: &Kind, head: &Head) -> io::Result<()> {
        if self.failure.is_some() {
            return Err(io::Error::other(self.failure.clone().unwrap_or_default()));
        }
        let dest = self.route(kind, head);
        let dest = self.checked(dest)?;
        let r = self.follow_modes(kind, head, dest);
        self.checked(r)?;
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
            opens: self.opening.take(),
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
        let r = self.emit(dest, b);
        self.checked(r)
    }

    fn end(&mut self) -> io::Result<()> {
        let cur = std::mem::take(&mut self.cur);
        // A whole statement goes to its session at once: gathered bytes would keep it idle.
        if let Some(Dest::One(i)) = cur.dest {
            let r = self.sessions[i].send();
            self.checked(r)?;
            if let Some(name) = cur.opens {
                let r = self.sessions[i].barrier(i);
                let gate = self.checked(r)?;
                if let Some(t) = self.tables.get_mut(&name) {
                    t.opened = Some(gate);
                }
            }
        }
        if let Some((name, text)) = cur.create {
            // A table created again starts over (its rows so far went to the dropped one).
            self.tables.insert(
                name,
                Table {
                    splittable: splittable(&text),
                    ..Table::default()
                },
            );
        }
        Ok(())
    }

    /// Ends the load: waits for every data session to finish, then has the schema session run
    /// what was held (views, triggers, routines, events) and end.
    fn done(&mut self) -> io::Result<()> {
        let held = std::mem::take(&mut self.held);
        if let Some(from) = self.held_from.take() {
            let r = self.check_mode(Dest::Deferred, from);
            self.checked(r)?;
        }
        // The held statements run on the schema session, in the mode its last statement left.
        if let Some((start, _)) = self.deferred_mode {
            let r = self.check_mode(Dest::One(SCHEMA), start);
            self.checked(r)?;
        }
        if !self.set_to.is_empty() && self.deferred_mode.is_some() {
            // A dump ends with its trailer comment, which settles what the last `SET`s did.
            let r = Err(io::Error::other("the dump ends with a SET whose mode the held views, triggers and routines would run in: restore it with --jobs 1"));
            self.checked(r)?;
        }
        let r = self.emit(Dest::Deferred, &held);
        self.checked(r)?;
        for i in 1..self.sessions.len() {
            self.close(i)?;
        }
        let deferred = std::mem::take(&mut self.deferred);
        let r = self.sessions[SCHEMA].push(&deferred, Gate::default());
        self.checked(r)?;
        self.close(SCHEMA)
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
    use std::process::{Command, Stdio};

    /// A stand-in for the client: it answers barriers, and logs each `INSERT` it starts and
    /// ends (taking 0.3 s over it) to a log shared by every session.
    const FAKE_CLIENT: &str = r#"
import sys, time
me, log = sys.argv[1], sys.argv[2]
def note(what):
    with open(log, "a") as f:
        f.write(f"{me} {what}\n")
for line in sys.stdin:
    for statement in line.split(";"):
        statement = statement.strip()
        if statement.startswith("SELECT 'sqlguard-barrier-"):
            print(statement.split("'")[1], flush=True)
        elif statement.startswith("INSERT"):
            note("start")
            time.sleep(0.3)
            note("end")
"#;

    /// The first `INSERT` into an empty table runs alone: no other session inserts into it
    /// until that statement has run (MariaDB's bulk path of the first `INSERT` takes an
    /// exclusive table lock, and two sessions starting at once deadlock).
    /// Only an InnoDB table with a primary key has its rows spread; what quotes and comments
    /// say does not count.
    #[test]
    fn only_innodb_tables_with_a_primary_key_are_split() {
        for (create, split) in [
            ("CREATE TABLE `t` (\n  `id` int NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4", true),
            ("CREATE TABLE `t` (\n  `a` int COMMENT 'PRIMARY KEY'\n) ENGINE=InnoDB", false),
            ("CREATE TABLE `t` (\n  `id` int NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=MyISAM COMMENT='ENGINE=InnoDB PRIMARY KEY'", false),
            ("CREATE TABLE `primary key` (\n  `engine=innodb` int\n) ENGINE=Aria", false),
            ("/*!40101 SET x */ CREATE TABLE `t` (`id` int, PRIMARY KEY (`id`)) /* ENGINE=MyISAM */ ENGINE=InnoDB", true),
        ] {
            assert_eq!(splittable(create.as_bytes()), split, "{create}");
        }
    }

    /// A schema session and two data sessions of [`FAKE_CLIENT`], logging to `log`.
    fn fake_dispatcher(log: &std::path::Path) -> Dispatcher {
        let children: Vec<Child> = (0..3)
            .map(|i| {
                Command::new("python3")
                    .args(["-c", FAKE_CLIENT, &i.to_string()])
                    .arg(log)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        Dispatcher::new(children, b"").unwrap()
    }

    #[test]
    fn no_session_inserts_into_a_table_before_its_first_insert_has_run() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let dispatcher = fake_dispatcher(&log);
        let mut dump = String::from(
            "SET NAMES utf8mb4;\nCREATE TABLE `t` (id INT PRIMARY KEY) ENGINE=InnoDB;\n",
        );
        let rows = vec!["(1)"; 30_000].join(",");
        for _ in 0..4 {
            dump.push_str(&format!("INSERT INTO `t` VALUES {rows};\n"));
        }
        dump.push_str("-- Dump completed\n");
        let policy = crate::sqlscan::Policy::plain("shop", "shop");
        let mut g = super::super::Guard::new(dispatcher, policy);
        g.write_all(dump.as_bytes()).unwrap();
        let dispatcher = g.finish().unwrap();
        assert_eq!(
            dispatcher.spread_tables(),
            ["t"],
            "the rows were not spread"
        );
        let log = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<(&str, &str)> = log.lines().filter_map(|l| l.split_once(' ')).collect();
        assert_eq!(lines.len(), 8, "{log}");
        let (first, _) = lines[0];
        let first_end = lines
            .iter()
            .position(|&(s, what)| s == first && what == "end")
            .unwrap();
        let other_start = lines
            .iter()
            .position(|&(s, what)| s != first && what == "start")
            .unwrap();
        assert!(
            first_end < other_start,
            "another session inserted before the first INSERT had run:\n{log}"
        );
    }

    /// A mode set for one statement and reset before another that goes to another session
    /// would stay set in the first session: refused (a ninth review's). A dump's own
    /// setting and resetting around a trigger made under the mode is followed.
    #[test]
    fn every_session_keeps_the_backslash_mode_the_guard_read_its_statements_in() {
        let run = |dump: &str| -> Result<(), String> {
            let dir = tempfile::tempdir().unwrap();
            let dispatcher = fake_dispatcher(&dir.path().join("log"));
            let policy = crate::sqlscan::Policy::plain("shop", "shop");
            let mut g = super::super::Guard::new(dispatcher, policy);
            g.write_all(dump.as_bytes()).map_err(|e| e.to_string())?;
            g.finish().map(|_| ()).map_err(|e| e.to_string())
        };
        let hostile = "CREATE TABLE a (x text) ENGINE=MyISAM;\nSET sql_mode='NO_BACKSLASH_ESCAPES';\nCREATE TABLE b (x text) ENGINE=MyISAM;\nSET sql_mode='';\nINSERT INTO a VALUES ('2');\nCREATE TABLE y (a int) COMMENT 'a\\'; INSERT INTO victim.t VALUES (9); -- ';\n-- Dump completed\n";
        let e = run(hostile).unwrap_err();
        assert!(e.contains("--jobs 1"), "{e}");
        let dump = "CREATE TABLE a (x text) ENGINE=InnoDB;\nINSERT INTO a VALUES ('1');\nSET @saved_sql_mode = @@sql_mode;\nSET sql_mode = 'NO_BACKSLASH_ESCAPES';\nDELIMITER ;;\nCREATE TRIGGER tr BEFORE INSERT ON a FOR EACH ROW SET NEW.x = 'a\\' ;;\nDELIMITER ;\nSET sql_mode = @saved_sql_mode;\nCREATE TABLE b (x text);\nINSERT INTO b VALUES ('x\\'y');\n-- Dump completed\n";
        run(dump).unwrap();
    }

    fn head(text: &str) -> Head {
        Head {
            text: text.as_bytes().to_vec(),
            delimiter: None,
            no_backslash_escapes: false,
            code_from: 0,
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
