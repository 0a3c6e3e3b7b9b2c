//! What a dump holds, counted from its own stream: each table (engine, and the rows actually
//! dumped), view, routine, trigger, event and sequence.
//!
//! The inventory is taken from the bytes the dump tool wrote, so it describes exactly the
//! snapshot the dump holds (no second query that could see a later state). It is recorded in the
//! backup's manifest, and a restore test compares the restored database with it (names and kinds
//! exactly, row counts exactly).
//!
//! [`Scanner`] reads the dump as the `mariadb` client would ([`crate::sqlscan::Splitter`]) and
//! counts the row tuples of each `INSERT … VALUES (…),(…)`. Memory is bounded: a statement's
//! first [`KEEP`] bytes are kept (a `CREATE TABLE` is read whole for its engine), never a whole
//! `INSERT`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::sqlscan::{classify, Event, Kind, Splitter};

/// Bytes of a statement kept to read a `CREATE TABLE`'s engine.
const KEEP: usize = 256 * 1024;

/// One table of a dump.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    /// `InnoDB`, `MyISAM`, … as the `CREATE TABLE` says; absent when it does not say.
    pub engine: Option<String>,
    /// Rows the dump inserts.
    pub rows: u64,
}

/// A stored routine.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Routine {
    pub name: String,
    /// `PROCEDURE` or `FUNCTION`.
    pub kind: String,
}

/// Everything a dump creates, by kind, names sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub tables: Vec<Table>,
    pub views: Vec<String>,
    pub routines: Vec<Routine>,
    pub triggers: Vec<String>,
    pub events: Vec<String>,
    #[serde(default)]
    pub sequences: Vec<String>,
}

impl Inventory {
    /// The differences between this inventory (what was dumped) and `restored`, one line each
    /// (`table 'orders': 1200 rows dumped, 1199 restored`); empty when they agree.
    pub fn differences(&self, restored: &Inventory) -> Vec<String> {
        let mut out = Vec::new();
        let dumped: BTreeMap<&str, &Table> =
            self.tables.iter().map(|t| (t.name.as_str(), t)).collect();
        let got: BTreeMap<&str, &Table> = restored
            .tables
            .iter()
            .map(|t| (t.name.as_str(), t))
            .collect();
        for (name, t) in &dumped {
            match got.get(name) {
                None => out.push(format!("table '{name}' is missing")),
                Some(r) => {
                    if t.rows != r.rows {
                        out.push(format!(
                            "table '{name}': {} rows dumped, {} restored",
                            t.rows, r.rows
                        ));
                    }
                    if let (Some(a), Some(b)) = (&t.engine, &r.engine) {
                        if !a.eq_ignore_ascii_case(b) {
                            out.push(format!("table '{name}': engine {a} dumped, {b} restored"));
                        }
                    }
                }
            }
        }
        for name in got.keys().filter(|n| !dumped.contains_key(*n)) {
            out.push(format!("table '{name}' was not in the dump"));
        }
        let mut names = |kind: &str, a: &[String], b: &[String]| {
            for n in a.iter().filter(|n| !b.contains(n)) {
                out.push(format!("{kind} '{n}' is missing"));
            }
            for n in b.iter().filter(|n| !a.contains(n)) {
                out.push(format!("{kind} '{n}' was not in the dump"));
            }
        };
        names("view", &self.views, &restored.views);
        names("trigger", &self.triggers, &restored.triggers);
        names("event", &self.events, &restored.events);
        names("sequence", &self.sequences, &restored.sequences);
        let routine = |r: &Routine| format!("{} {}", r.kind.to_lowercase(), r.name);
        let a: Vec<String> = self.routines.iter().map(routine).collect();
        let b: Vec<String> = restored.routines.iter().map(routine).collect();
        for n in a.iter().filter(|n| !b.contains(n)) {
            out.push(format!("{n} is missing"));
        }
        for n in b.iter().filter(|n| !a.contains(n)) {
            out.push(format!("{n} was not in the dump"));
        }
        out
    }

    /// Sorts every list by name, so that equal inventories compare equal.
    pub fn normalize(&mut self) {
        self.tables.sort_by(|a, b| a.name.cmp(&b.name));
        self.views.sort();
        self.routines.sort();
        self.triggers.sort();
        self.events.sort();
        self.sequences.sort();
    }

    /// Rows of every table.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

/// Which bytes matter to [`Tuples`] outside quotes once `VALUES` was seen.
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'\'' as usize] = true;
    t[b'"' as usize] = true;
    t[b'`' as usize] = true;
    t[b'(' as usize] = true;
    t[b')' as usize] = true;
    t[b';' as usize] = true;
    t
};

/// Counts the row tuples of an `INSERT … VALUES (…),(…)` from its bytes: each `(` at depth 0
/// after the word `VALUES`, quotes and backslash escapes honoured; a `;` at depth 0 outside
/// quotes ends it.
#[derive(Debug, Default)]
struct Tuples {
    depth: u32,
    /// In a quote: the byte that closes it.
    quote: Option<u8>,
    escape: bool,
    /// `VALUES` was seen: parentheses at depth 0 are rows.
    values: bool,
    /// The last letters seen outside quotes at depth 0 (upper-cased), to find `VALUES`.
    word: [u8; 6],
    count: u64,
}

impl Tuples {
    /// Reads `bytes`; returns the length up to and including the `;` that ends the statement,
    /// or `None` when it did not end in them.
    fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < bytes.len() {
            if let Some(q) = self.quote {
                if self.escape {
                    self.escape = false;
                    i += 1;
                    continue;
                }
                // Jump to the next byte that can end the quote.
                let rest = &bytes[i..];
                let next = if q == b'`' {
                    memchr::memchr(q, rest)
                } else {
                    memchr::memchr2(q, b'\\', rest)
                };
                i += next?;
                if bytes[i] == q {
                    self.quote = None;
                } else {
                    self.escape = true;
                }
                i += 1;
                continue;
            }
            if self.values {
                // Digits, commas, NULLs: skip to the next byte that matters.
                while i < bytes.len() && !SPECIAL[bytes[i] as usize] {
                    i += 1;
                }
                if i == bytes.len() {
                    return None;
                }
            }
            let b = bytes[i];
            match b {
                b'\'' | b'"' | b'`' => self.quote = Some(b),
                b'(' => {
                    if self.depth == 0 {
                        if !self.values && (self.word == *b"VALUES" || self.word[1..] == *b"VALUE")
                        {
                            self.values = true;
                        }
                        if self.values {
                            self.count += 1;
                        }
                    }
                    self.depth += 1;
                }
                b')' => self.depth = self.depth.saturating_sub(1),
                b';' if self.depth == 0 => return Some(i + 1),
                b if !self.values && self.depth == 0 && b.is_ascii_alphabetic() => {
                    self.word.rotate_left(1);
                    self.word[5] = b.to_ascii_uppercase();
                }
                b if !self.values && self.depth == 0 && !b.is_ascii_whitespace() => {
                    self.word = [0; 6];
                }
                _ => {}
            }
            i += 1;
        }
        None
    }
}

/// The start of a dump tool's `INSERT` statement, which the scanner reads itself.
const INSERT_INTO: &[u8] = b"INSERT INTO `";

/// Reads a dump's stream and takes its [`Inventory`]; see the module docs.
///
/// Statements go through the [`Splitter`], except the `INSERT INTO \`t\` VALUES …;` statements
/// a dump tool writes (almost all of its bytes): at a statement's start the scanner recognizes
/// them and counts their rows itself, several times faster.
#[derive(Debug, Default)]
pub struct Scanner {
    splitter: Splitter,
    /// The splitter stands at the start of a statement.
    at_start: bool,
    /// Reading an `INSERT` itself: into this table.
    insert: Option<String>,
    found: Found,
}

/// What the scan found so far, and the statement it is in.
#[derive(Debug, Default)]
struct Found {
    /// The current statement's first bytes (up to [`KEEP`]).
    kept: Vec<u8>,
    tuples: Tuples,
    kind: Option<Kind>,
    tables: BTreeMap<String, Table>,
    inventory: Inventory,
    /// The binary log file and position, and the GTID position, from the dump's comments.
    coordinates: Coordinates,
}

/// The binary log coordinates a dump tool writes as comments with `--master-data=2 --gtid`.
#[derive(Debug, Default)]
struct Coordinates {
    file: Option<(String, u64)>,
    gtid: Option<String>,
}

/// The comment near the top of a dump with the file and position of its snapshot.
const CHANGE_MASTER: &[u8] = b"\n-- CHANGE MASTER TO MASTER_LOG_FILE='";
/// The comment near the end of a dump with the GTID position of its snapshot.
const GTID_POS: &[u8] = b"\n-- SET GLOBAL gtid_slave_pos='";

impl Coordinates {
    /// Looks for the coordinate comments in the first bytes of a statement (its leading
    /// comments); only at a line's start, the file position only once (the dump tool writes it
    /// before any table), the GTID the last time (it writes it after every routine).
    fn find(&mut self, kept: &[u8]) {
        if self.file.is_none() {
            if let Some(at) = memchr::memmem::find(kept, CHANGE_MASTER) {
                let rest = &kept[at + CHANGE_MASTER.len()..];
                let line = &rest[..memchr::memchr(b'\n', rest).unwrap_or(rest.len())];
                let line = String::from_utf8_lossy(line);
                // binlog.000015', MASTER_LOG_POS=195368773;
                if let Some((file, pos)) = line.split_once("', MASTER_LOG_POS=") {
                    if let Ok(p) = pos.trim_end_matches(';').trim().parse::<u64>() {
                        if !file.is_empty() && !file.contains(['\'', '/']) {
                            self.file = Some((file.to_string(), p));
                        }
                    }
                }
            }
        }
        if let Some(at) = memchr::memmem::rfind(kept, GTID_POS) {
            let rest = &kept[at + GTID_POS.len()..];
            if let Some(end) = memchr::memchr(b'\'', rest) {
                let gtid = String::from_utf8_lossy(&rest[..end]).to_string();
                if gtid
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'-' || b == b',')
                {
                    self.gtid = Some(gtid);
                }
            }
        }
    }
}

/// Whether `engine` keeps a `--single-transaction` dump consistent.
pub fn is_transactional(engine: &str) -> bool {
    [
        "InnoDB",
        "XtraDB",
        "RocksDB",
        "TokuDB",
        "NDB",
        "NDBCLUSTER",
        "SEQUENCE",
    ]
    .iter()
    .any(|e| e.eq_ignore_ascii_case(engine))
}

impl Scanner {
    /// Where the dump's snapshot stands in the binary log, when its comments say (a dump made
    /// with `--master-data=2 --gtid`).
    pub fn binlog(&self) -> Option<crate::index::BinlogPosition> {
        let c = &self.found.coordinates;
        let (file, position) = c.file.clone()?;
        Some(crate::index::BinlogPosition {
            file,
            position,
            gtid: c.gtid.clone(),
            server_id: None,
            file_created_at: None,
        })
    }

    /// A scanner at the start of a dump.
    pub fn new() -> Scanner {
        Scanner {
            at_start: true,
            ..Scanner::default()
        }
    }

    /// Reads the next chunk of the dump.
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        while !rest.is_empty() {
            if let Some(table) = &self.insert {
                let f = &mut self.found;
                match f.tuples.feed(rest) {
                    Some(n) => {
                        add_rows(&mut f.tables, table, f.tuples.count);
                        f.tuples = Tuples::default();
                        self.insert = None;
                        rest = &rest[n..];
                        continue;
                    }
                    None => return,
                }
            }
            if self.at_start && self.splitter.delimiter() == b";" {
                let body = rest.trim_ascii_start();
                if let Some((table, used)) = insert_head(body) {
                    self.insert = Some(table);
                    rest = &body[used..];
                    continue;
                }
            }
            let found = &mut self.found;
            let ended = self
                .splitter
                .feed_statement::<()>(rest, &mut |e| {
                    found.on_event(e);
                    Ok(())
                })
                .unwrap_or(None);
            match ended {
                Some(n) => {
                    self.at_start = true;
                    rest = &rest[n..];
                }
                None => {
                    self.at_start = false;
                    return;
                }
            }
        }
    }

    /// Ends the dump and returns what it holds.
    pub fn finish(mut self) -> Inventory {
        let f = &mut self.found;
        if let Some(table) = self.insert.take() {
            // A dump cut short in an INSERT: the rows begun count.
            add_rows(&mut f.tables, &table, f.tuples.count);
        }
        let _ = self.splitter.finish::<()>(&mut |e| {
            f.on_event(e);
            Ok(())
        });
        let mut inv = std::mem::take(&mut f.inventory);
        inv.tables = std::mem::take(&mut f.tables).into_values().collect();
        inv.normalize();
        inv
    }
}

/// `INSERT INTO \`name\` ` at the start of `body`: the table's name and the bytes up to after
/// its closing quote; `None` when `body` does not start so or ends before the name does.
fn insert_head(body: &[u8]) -> Option<(String, usize)> {
    let after = body.strip_prefix(INSERT_INTO)?;
    let mut name = Vec::new();
    let mut i = 0;
    loop {
        let n = memchr::memchr(b'`', &after[i..])?;
        name.extend_from_slice(&after[i..i + n]);
        i += n + 1;
        match after.get(i) {
            Some(b'`') => {
                name.push(b'`');
                i += 1;
            }
            Some(_) => break,
            None => return None,
        }
    }
    // No identifier is longer (64 characters of up to 4 bytes): a longer "name" is left to
    // the splitter, which reads every statement the same way whatever the chunks.
    if name.len() > 256 {
        return None;
    }
    Some((
        String::from_utf8_lossy(&name).into_owned(),
        INSERT_INTO.len() + i,
    ))
}

fn add_rows(tables: &mut BTreeMap<String, Table>, table: &str, rows: u64) {
    tables
        .entry(table.to_string())
        .or_insert_with(|| Table {
            name: table.to_string(),
            engine: None,
            rows: 0,
        })
        .rows += rows;
}

impl Found {
    fn on_event(&mut self, e: Event) {
        let Found {
            kept,
            tuples,
            kind,
            tables,
            inventory: inv,
            coordinates,
        } = self;
        match e {
            Event::Bytes(b) => {
                if kept.len() < KEEP {
                    kept.extend_from_slice(&b[..b.len().min(KEEP - kept.len())]);
                }
                tuples.feed(b);
            }
            Event::Head(h) => *kind = Some(classify(h)),
            Event::ClientCommand(_) | Event::Unfollowable(_) => {}
            Event::End => {
                if !matches!(kind, Some(Kind::Insert { .. })) {
                    coordinates.find(kept);
                }
                let add = |list: &mut Vec<String>, name: String| {
                    if !list.contains(&name) {
                        list.push(name);
                    }
                };
                match kind.take() {
                    Some(Kind::CreateTable { table }) => {
                        let engine = (kept.len() < KEEP).then(|| engine_of(kept)).flatten();
                        tables.insert(
                            table.name.clone(),
                            Table {
                                name: table.name,
                                engine,
                                rows: 0,
                            },
                        );
                    }
                    // A view's placeholder table is dropped before the view is made.
                    Some(Kind::DropTable { table }) => {
                        tables.remove(&table.name);
                    }
                    Some(Kind::Insert { table }) => add_rows(tables, &table.name, tuples.count),
                    Some(Kind::Object { verb, object, name }) => {
                        let create = verb == "CREATE";
                        let name = name.name;
                        let list = match object.as_str() {
                            "VIEW" => Some(&mut inv.views),
                            "TRIGGER" => Some(&mut inv.triggers),
                            "EVENT" => Some(&mut inv.events),
                            "SEQUENCE" => Some(&mut inv.sequences),
                            _ => None,
                        };
                        match (list, create) {
                            (Some(list), true) => add(list, name),
                            (Some(list), false) => list.retain(|n| n != &name),
                            (None, _) if object == "PROCEDURE" || object == "FUNCTION" => {
                                let r = Routine { name, kind: object };
                                if create && !inv.routines.contains(&r) {
                                    inv.routines.push(r);
                                } else if !create {
                                    inv.routines.retain(|x| x != &r);
                                }
                            }
                            _ => {}
                        }
                    }
                    _ => {}
                }
                kept.clear();
                *tuples = Tuples::default();
            }
        }
    }
}

/// The `ENGINE=` table option of a `CREATE TABLE` statement: read after the column list (the
/// first parenthesis at depth 0 and its match), quotes honoured, so that a column comment
/// saying `ENGINE=` does not count.
fn engine_of(stmt: &[u8]) -> Option<String> {
    let mut depth = 0u32;
    let mut quote: Option<u8> = None;
    let mut escape = false;
    let mut seen_open = false;
    let mut options_at = None;
    for (i, &b) in stmt.iter().enumerate() {
        if let Some(q) = quote {
            if escape {
                escape = false;
            } else if b == b'\\' && q != b'`' {
                escape = true;
            } else if b == q {
                quote = None;
            }
            continue;
        }
        match b {
            b'\'' | b'"' | b'`' => quote = Some(b),
            b'(' => {
                depth += 1;
                seen_open = true;
            }
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 && seen_open {
                    options_at = Some(i + 1);
                    break;
                }
            }
            _ => {}
        }
    }
    let rest = String::from_utf8_lossy(&stmt[options_at?..]);
    let upper = rest.to_ascii_uppercase();
    let at = upper.find("ENGINE")?;
    let after = rest[at + "ENGINE".len()..].trim_start();
    let after = after.strip_prefix('=').unwrap_or(after).trim_start();
    let engine: String = after
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!engine.is_empty()).then_some(engine)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "-- MariaDB dump 10.19\n\
/*!40101 SET NAMES utf8mb4 */;\n\
DROP TABLE IF EXISTS `orders`;\n\
CREATE TABLE `orders` (\n  `id` int(11) NOT NULL,\n  `note` varchar(20) DEFAULT NULL COMMENT 'x) ENGINE=MyISAM',\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n\
INSERT INTO `orders` VALUES (1,'a (b), c'),(2,'it''s'),(3,'back\\\\slash\\')'),(4,NULL);\n\
INSERT INTO `orders` VALUES (5,'x');\n\
CREATE TABLE `empty` (`a` int) ENGINE=MyISAM;\n\
/*!50001 CREATE VIEW `v_orders` AS SELECT 1 AS `id` */;\n\
/*!50001 DROP VIEW IF EXISTS `v_orders`*/;\n\
/*!50001 CREATE ALGORITHM=UNDEFINED */\n/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */\n/*!50001 VIEW `v_orders` AS select `orders`.`id` AS `id` from `orders` */;\n\
DELIMITER ;;\n\
/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER `trg` BEFORE INSERT ON `orders` FOR EACH ROW SET NEW.note = 'a;b' */;;\n\
DELIMITER ;\n\
DELIMITER ;;\n\
CREATE DEFINER=`root`@`localhost` PROCEDURE `p`()\nBEGIN\n  SELECT 1;\nEND ;;\n\
CREATE DEFINER=`root`@`localhost` FUNCTION `f`() RETURNS int(11)\nRETURN 1 ;;\n\
/*!50106 CREATE*/ /*!50117 DEFINER=`root`@`localhost`*/ /*!50106 EVENT `ev` ON SCHEDULE EVERY 1 DAY DO SELECT 1 */ ;;\n\
DELIMITER ;\n\
CREATE SEQUENCE `s` start with 1 minvalue 1 maxvalue 9 increment by 1 cache 1000 nocycle ENGINE=InnoDB;\n\
SELECT SETVAL(`s`, 1, 0);\n\
-- Dump completed on 2026-11-29 10:00:00\n";

    fn scan(dump: &[u8], chunk: usize) -> Inventory {
        let mut s = Scanner::new();
        for c in dump.chunks(chunk) {
            s.feed(c);
        }
        s.finish()
    }

    #[test]
    fn counts_every_kind_and_the_rows_dumped() {
        let inv = scan(DUMP.as_bytes(), 1 << 20);
        assert_eq!(
            inv.tables,
            vec![
                Table {
                    name: "empty".into(),
                    engine: Some("MyISAM".into()),
                    rows: 0
                },
                Table {
                    name: "orders".into(),
                    engine: Some("InnoDB".into()),
                    rows: 5
                },
            ]
        );
        assert_eq!(inv.views, vec!["v_orders"]);
        assert_eq!(inv.triggers, vec!["trg"]);
        assert_eq!(inv.events, vec!["ev"]);
        assert_eq!(inv.sequences, vec!["s"]);
        assert_eq!(
            inv.routines,
            vec![
                Routine {
                    name: "f".into(),
                    kind: "FUNCTION".into()
                },
                Routine {
                    name: "p".into(),
                    kind: "PROCEDURE".into()
                }
            ]
        );
    }

    #[test]
    fn any_chunking_gives_the_same_inventory() {
        let whole = scan(DUMP.as_bytes(), 1 << 20);
        for size in [1, 2, 3, 7, 64, 511] {
            assert_eq!(scan(DUMP.as_bytes(), size), whole, "chunks of {size}");
        }
    }

    #[test]
    fn binlog_coordinates_come_from_the_dump_tool_comments_only() {
        let dump = "/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;\n\
-- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;\n\n\
-- CHANGE MASTER TO MASTER_LOG_FILE='binlog.000015', MASTER_LOG_POS=195368773;\n\n\
DROP TABLE IF EXISTS `t`;\n\
CREATE TABLE `t` (`a` text COMMENT '\n-- CHANGE MASTER TO MASTER_LOG_FILE=''x'', MASTER_LOG_POS=1;') ENGINE=InnoDB;\n\
INSERT INTO `t` VALUES ('\n-- SET GLOBAL gtid_slave_pos=''9-9-9'';');\n\
\n-- SET GLOBAL gtid_slave_pos='0-37309-43520,1-2-3';\n\
/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;\n\
-- Dump completed on 2026-11-29 10:51:41\n";
        for chunk in [1, 7, 1 << 20] {
            let mut s = Scanner::new();
            for c in dump.as_bytes().chunks(chunk) {
                s.feed(c);
            }
            let b = s.binlog().unwrap();
            assert_eq!(
                (b.file.as_str(), b.position, b.gtid.as_deref()),
                ("binlog.000015", 195368773, Some("0-37309-43520,1-2-3")),
                "chunks of {chunk}"
            );
        }
        let mut s = Scanner::new();
        s.feed(DUMP.as_bytes());
        assert!(s.binlog().is_none(), "no comments, no coordinates");
        assert!(
            is_transactional("InnoDB") && !is_transactional("MyISAM") && !is_transactional("Aria")
        );
    }

    /// Found by the fuzz target: a name with a tab or two spaces came out with one space when
    /// the statement was read through the splitter (chunks too short for the INSERT fast path).
    #[test]
    fn names_keep_their_whitespace_whatever_the_chunks() {
        let dump = "CREATE TABLE `a\tb  c` (`x` int) ENGINE=InnoDB;\nINSERT INTO `a\tb  c` VALUES (1),(2);\n";
        for size in [1, 3, 1 << 20] {
            let inv = scan(dump.as_bytes(), size);
            assert_eq!(inv.tables.len(), 1, "chunks of {size}: {inv:?}");
            assert_eq!(inv.tables[0].name, "a\tb  c", "chunks of {size}");
            assert_eq!(inv.tables[0].rows, 2, "chunks of {size}");
        }
    }

    #[test]
    fn column_lists_and_one_row_inserts_count_rows_not_columns() {
        let dump = "CREATE TABLE `t` (`a` int, `b` text) ENGINE=Aria;\n\
INSERT INTO `t` (`a`, `b`) VALUES (1,'(x)');\n\
INSERT INTO `t` (`a`, `b`) VALUES (2,')'),(3,'(');\n";
        let inv = scan(dump.as_bytes(), 5);
        assert_eq!(inv.tables[0].rows, 3);
        assert_eq!(inv.tables[0].engine.as_deref(), Some("Aria"));
    }

    #[test]
    fn differences_name_what_differs() {
        let dumped = scan(DUMP.as_bytes(), 4096);
        assert!(dumped.differences(&dumped).is_empty());
        let mut restored = dumped.clone();
        restored.tables[1].rows = 4;
        restored.views.clear();
        restored.triggers.push("extra".into());
        restored.routines.pop();
        let d = restored.differences(&dumped);
        let d2 = dumped.differences(&restored);
        assert_eq!(
            d2,
            vec![
                "table 'orders': 5 rows dumped, 4 restored",
                "view 'v_orders' is missing",
                "trigger 'extra' was not in the dump",
                "procedure p is missing",
            ]
        );
        assert_eq!(d.len(), 4);
    }
}
