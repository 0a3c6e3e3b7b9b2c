//! Renderers more than one command prints with (a prune's outcome is printed by `prune` and by
//! `backup` with `prune_after_backup`). Commands call these instead of each other.

use chrono::Utc;
use serde::Serialize;

use super::{table, Context, Printer};
use crate::duration::compact;
use crate::error::Error;
use std::io::Write;

use crate::prune::{PruneEntry, PruneOutcome};
use crate::retention::Decision;
use crate::ui::human_bytes;

/// The most rows a prune table lists one by one; beyond that it shows one row per database and
/// type (every entry is in `--json`).
const MAX_ROWS: usize = 100;

/// The JSON document of `prune`, streamed: the header first, each entry as its database is done,
/// the outcome's fields last (`{schema_version, entries: [...], dry_run, orphans, unrecorded,
/// errors, interrupted, removed_entries, removed_bytes, kept_entries, failed_entries}`).
#[derive(Debug)]
pub struct PruneJson {
    out: std::io::BufWriter<crate::ui::Results>,
    entries: usize,
    error: Option<std::io::Error>,
}

/// `text` with every line after the first indented by `n` spaces.
fn indent(text: &str, n: usize) -> String {
    text.replace('\n', &format!("\n{}", " ".repeat(n)))
}

impl PruneJson {
    /// Starts the document on stdout.
    pub fn start() -> Result<PruneJson, Error> {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, crate::ui::results()?);
        write!(
            out,
            "{{\n  \"schema_version\": {},\n  \"entries\": [",
            crate::index::SCHEMA_VERSION
        )?;
        Ok(PruneJson {
            out,
            entries: 0,
            error: None,
        })
    }

    /// Writes one entry (a write error is kept for [`PruneJson::finish`]).
    pub fn entry(&mut self, e: &PruneEntry) {
        if self.error.is_some() {
            return;
        }
        // One entry per line: 100,000 of them stay quick to write and to grep.
        let sep: &[u8] = if self.entries == 0 {
            b"\n    "
        } else {
            b",\n    "
        };
        self.entries += 1;
        let written = self
            .out
            .write_all(sep)
            .and_then(|()| serde_json::to_writer(&mut self.out, e).map_err(std::io::Error::other));
        if let Err(err) = written {
            self.error = Some(err);
        }
    }

    /// Ends the document with the outcome's fields.
    pub fn finish(mut self, outcome: &PruneOutcome) -> Result<(), Error> {
        if let Some(e) = self.error.take() {
            return Err(e.into());
        }
        write!(self.out, "{}]", if self.entries > 0 { "\n  " } else { "" })?;
        // What the exit code says, as in the other commands' documents.
        write!(self.out, ",\n  \"ok\": {}", outcome.all_ok())?;
        let fields = serde_json::to_value(outcome).expect("the outcome serializes");
        for (k, v) in fields.as_object().into_iter().flatten() {
            let text = serde_json::to_string_pretty(v).expect("values serialize");
            write!(
                self.out,
                ",\n  {}: {}",
                serde_json::Value::from(k.as_str()),
                indent(&text, 2)
            )?;
        }
        self.out.write_all(b"\n}\n")?;
        self.out.flush()?;
        Ok(())
    }
}

/// The table of a prune: its removals and failures one by one (keeps only with `verbose`), or
/// one row per storage, server, database and type when they are more than [`MAX_ROWS`].
#[derive(Debug, Default)]
pub struct PruneTable {
    verbose: bool,
    rows: Vec<PruneEntry>,
    overflow: bool,
    failures: Vec<PruneEntry>,
    /// By storage, server, database and type: removals, their bytes, and keeps.
    groups: std::collections::BTreeMap<[String; 4], Counts>,
    /// The groups of the database whose entries come now (they come one database at a time):
    /// an entry finds its group among these few without building a key.
    current: Vec<([String; 4], Counts)>,
}

/// Removals, their bytes, and keeps.
type Counts = (usize, u64, usize);

impl PruneTable {
    pub fn new(verbose: bool) -> PruneTable {
        PruneTable {
            verbose,
            ..Default::default()
        }
    }

    /// Takes one entry.
    pub fn add(&mut self, e: PruneEntry) {
        let r = &e.record;
        let same_database = |[storage, server, db, _]: &[String; 4]| {
            *storage == r.storage && *server == r.server && *db == r.database
        };
        if !self.current.first().is_some_and(|(k, _)| same_database(k)) {
            self.fold_current();
        }
        let i = match self.current.iter().position(|(k, _)| k[3] == r.backup_type) {
            Some(i) => i,
            None => {
                let key = [
                    r.storage.clone(),
                    r.server.clone(),
                    r.database.clone(),
                    r.backup_type.clone(),
                ];
                self.current.push((key, Counts::default()));
                self.current.len() - 1
            }
        };
        let g = &mut self.current[i].1;
        match e.decision {
            Decision::Remove => {
                g.0 += 1;
                g.1 = g.1.saturating_add(r.compressed_bytes);
            }
            Decision::Keep => g.2 += 1,
        }
        if e.prune_error.is_some() {
            self.failures.push(e.clone());
        }
        if (e.decision == Decision::Remove || self.verbose) && !self.overflow {
            if self.rows.len() < MAX_ROWS {
                self.rows.push(e);
            } else {
                self.overflow = true;
                self.rows = Vec::new();
            }
        }
    }

    /// Adds the current database's groups to the others.
    fn fold_current(&mut self) {
        for (key, (rm, bytes, keep)) in self.current.drain(..) {
            let g = self.groups.entry(key).or_default();
            g.0 += rm;
            g.1 = g.1.saturating_add(bytes);
            g.2 += keep;
        }
    }

    /// Takes every entry of a prune that collected them.
    pub fn add_all(&mut self, entries: &[PruneEntry]) {
        for e in entries {
            self.add(e.clone());
        }
    }

    /// Prints the table, the orphans, what no index owns, and the totals.
    pub fn print(&mut self, outcome: &PruneOutcome, ctx: &Context) -> Result<(), Error> {
        self.fold_current();
        let now = Utc::now();
        let (removed, bytes) = outcome.removed();
        let entry_row = |e: &PruneEntry| {
            let r = &e.record;
            let decision = match (e.decision, e.done, &e.prune_error) {
                (Decision::Keep, _, _) => "keep",
                (Decision::Remove, _, Some(_)) => "FAILED",
                (Decision::Remove, true, _) => "removed",
                (Decision::Remove, false, _) => "remove",
            };
            vec![
                r.storage.clone(),
                r.server.clone(),
                r.database.clone(),
                r.backup_type.clone(),
                r.id.clone(),
                r.status.as_str().to_string(),
                compact((now - r.started_at).num_seconds().max(0) as u64),
                human_bytes(r.compressed_bytes),
                decision.to_string(),
                e.prune_error.clone().unwrap_or_else(|| e.reason.clone()),
            ]
        };
        let header = [
            "STORAGE", "SERVER", "DATABASE", "TYPE", "ID", "STATUS", "AGE", "SIZE", "DECISION",
            "REASON",
        ];
        if !self.overflow && !self.rows.is_empty() {
            let mut t = table(&header, ctx.ui.color());
            for e in &self.rows {
                t.add_row(super::cells(entry_row(e)));
            }
            Printer::line(&t.to_string())?;
        } else if self.overflow {
            let mut t = table(
                &[
                    "STORAGE", "SERVER", "DATABASE", "TYPE", "REMOVE", "SIZE", "KEEP",
                ],
                ctx.ui.color(),
            );
            for ([storage, server, db, ty], (rm, b, keep)) in &self.groups {
                t.add_row(super::cells(vec![
                    storage.clone(),
                    server.clone(),
                    db.clone(),
                    ty.clone(),
                    rm.to_string(),
                    human_bytes(*b),
                    keep.to_string(),
                ]));
            }
            Printer::line(&t.to_string())?;
            if !self.failures.is_empty() {
                let mut t = table(&header, ctx.ui.color());
                for e in &self.failures {
                    t.add_row(super::cells(entry_row(e)));
                }
                Printer::line(&t.to_string())?;
            }
            Printer::line(&format!(
                "(more than {MAX_ROWS} entries: one row per database and type; `--json` lists each with its reason)"
            ))?;
        }
        for o in &outcome.orphans {
            Printer::text(&format!(
                "orphan {} on '{}': {} ({}){}",
                o.orphan.kind,
                o.storage,
                o.orphan.key,
                human_bytes(o.orphan.size),
                if o.done {
                    " removed"
                } else if outcome.dry_run {
                    " would be removed"
                } else {
                    ""
                }
            ))?;
        }
        for u in &outcome.unrecorded {
            Printer::text(&format!(
                "not in the index on '{}': {} ({}); left in place, {}",
                u.storage,
                u.key,
                human_bytes(u.size),
                crate::prune::unrecorded_fix(
                    u.key.ends_with(crate::layout::MANIFEST_SUFFIX),
                    u.adoptable
                )
            ))?;
        }
        Printer::line(&format!(
            "{}{removed} entries, {} freed; {} kept; {}{} orphans; {} not in the index",
            if outcome.dry_run {
                "dry run: would remove "
            } else {
                "removed "
            },
            human_bytes(bytes),
            outcome.kept_entries,
            if outcome.failed_entries > 0 {
                format!("{} FAILED; ", outcome.failed_entries)
            } else {
                String::new()
            },
            outcome.orphans.len(),
            outcome.unrecorded.len()
        ))?;
        Ok(())
    }
}

/// A prune's outcome with every entry, for documents that embed it (`backup --json` with
/// `prune_after_backup`).
#[derive(Debug, Serialize)]
pub struct PruneCollected<'a> {
    pub entries: &'a [PruneEntry],
    #[serde(flatten)]
    pub outcome: &'a PruneOutcome,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{BackupRecord, Status};

    fn entry(i: usize, db: &str, ty: &str, storage: &str, remove: bool) -> PruneEntry {
        let started = chrono::DateTime::UNIX_EPOCH + chrono::Duration::hours(i as i64);
        PruneEntry {
            record: BackupRecord::sample(
                &format!("b{i}"),
                db,
                ty,
                storage,
                Status::Success,
                started,
            ),
            decision: if remove {
                Decision::Remove
            } else {
                Decision::Keep
            },
            reason: String::new(),
            done: false,
            prune_error: None,
        }
    }

    /// The groups equal those counted one key at a time, whatever order the databases and
    /// types come in (a database's entries come together from prune, but two storages or a
    /// caller may bring a database back).
    #[test]
    fn the_table_counts_each_group_once_past_its_row_limit() {
        let mut entries = Vec::new();
        for (n, (db, storage)) in [("a", "local"), ("b", "local"), ("a", "s3"), ("a", "local")]
            .into_iter()
            .enumerate()
        {
            for i in 0..90 {
                let ty = ["hourly", "daily", "weekly"][i % 3];
                entries.push(entry(n * 1000 + i, db, ty, storage, i % 4 != 0));
            }
        }
        let mut expected: std::collections::BTreeMap<[String; 4], Counts> = Default::default();
        for e in &entries {
            let r = &e.record;
            let g = expected
                .entry([
                    r.storage.clone(),
                    r.server.clone(),
                    r.database.clone(),
                    r.backup_type.clone(),
                ])
                .or_default();
            match e.decision {
                Decision::Remove => {
                    g.0 += 1;
                    g.1 += r.compressed_bytes;
                }
                Decision::Keep => g.2 += 1,
            }
        }
        let mut t = PruneTable::new(false);
        for e in entries {
            t.add(e);
        }
        t.fold_current();
        assert!(t.overflow);
        assert!(t.rows.is_empty());
        assert_eq!(expected.len(), 9);
        assert_eq!(t.groups, expected);
    }
}
