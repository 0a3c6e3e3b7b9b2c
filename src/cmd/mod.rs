//! One module per subcommand: an `Args` (or `Command`) clap definition and a `run` that calls the
//! library and prints the result as a table or as JSON. Shared here: the run [`Context`] and the
//! stdout [`Printer`].

pub mod backup;
pub mod binlog;
pub mod check;
pub mod config;
pub mod fetch;
pub mod generate;
mod grid;
pub mod index;
pub mod list;
pub mod prune;
pub mod render;
pub mod report;
pub mod restore;
pub mod schedule;
pub mod verify;

pub use grid::{Col, Grid};

use std::io::Write;

use serde::Serialize;

use crate::session::Session;

/// Everything a command needs: the run's [`Session`] (settings, output, cancel flag, storages)
/// and how to print results.
#[derive(Debug)]
pub struct Context {
    pub session: Session,
    pub json: bool,
    /// `--wide`: tables keep every column, whatever the terminal's width.
    pub wide: bool,
    /// What the run did, in a few words, for its summary line ("3 of 3 copies stored, 1.2 GiB").
    pub summary: std::cell::RefCell<Option<String>>,
}

impl std::ops::Deref for Context {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

impl Context {
    /// Records what the run did, for the summary line that ends its log.
    pub fn summarize(&self, what: impl Into<String>) {
        *self.summary.borrow_mut() = Some(what.into());
    }

    /// Begins a run of `command` (of `backup_type`) over `servers`: its start notifications and
    /// `before` hooks ([`crate::run::begin`]). `Err` is a run that a `before` hook skipped
    /// (already published and logged; the command prints its document, then exits with its
    /// code).
    pub fn begin(
        &self,
        command: &'static str,
        backup_type: Option<&str>,
        servers: &[String],
    ) -> Result<crate::run::Run, crate::run::Skipped> {
        match crate::run::begin(self, command, backup_type, servers) {
            crate::run::Begun::Started(run) => Ok(run),
            crate::run::Begun::Skipped(skipped) => {
                self.summarize(format!("skipped: {}", skipped.reason));
                Err(skipped)
            }
        }
    }

    /// Runs `work` for `run`; when it fails, ends the run with [`crate::run::abort`] (its
    /// failure hooks and notifications) before handing the error on.
    pub fn work<T>(
        &self,
        run: &crate::run::Run,
        work: impl FnOnce() -> Result<T, crate::error::Error>,
    ) -> Result<T, crate::error::Error> {
        work().inspect_err(|e| match e {
            // `sqlguard backup --json | head`: the run itself went as it went.
            crate::error::Error::Output(io) if io.kind() == std::io::ErrorKind::BrokenPipe => {}
            e => crate::run::abort(self, run, &format!("{e}")),
        })
    }

    /// Takes the job lock of `command` (and `backup_type`) for each of `servers` (all configured
    /// servers when empty), waiting up to `wait`. The locks are held until dropped.
    ///
    /// Fails with exit code 3 when another run holds one of them.
    pub fn lock_jobs(
        &self,
        servers: &[String],
        command: &str,
        backup_type: Option<&str>,
        wait: Option<crate::duration::HumanDuration>,
    ) -> Result<Vec<crate::joblock::JobLock>, crate::error::Error> {
        let me = crate::joblock::Holder {
            pid: std::process::id(),
            host: crate::host::hostname(),
            started_at: chrono::Utc::now(),
            command: match backup_type {
                Some(t) => format!("{command} --type {t}"),
                None => command.to_string(),
            },
        };
        let mut names: Vec<&str> = self
            .settings
            .servers
            .iter()
            .map(|s| s.name.as_str())
            .filter(|n| servers.is_empty() || servers.iter().any(|s| s == n))
            .collect();
        names.sort_unstable();
        let mut held = Vec::new();
        for server in names {
            held.push(crate::joblock::acquire(
                &self.settings.lock_dir,
                server,
                command,
                backup_type,
                &me,
                wait.map(|w| std::time::Duration::from_secs(w.as_secs())),
                &self.ui,
            )?);
        }
        Ok(held)
    }
}

/// Table cells made safe to print ([`crate::ui::cell_text`]).
pub fn cells(row: Vec<String>) -> Vec<String> {
    row.iter().map(|c| crate::ui::cell_text(c)).collect()
}

/// Writes results to stdout.
#[derive(Debug, Clone, Copy)]
pub struct Printer;

impl Printer {
    /// Writes `text` and a newline.
    pub fn line(text: &str) -> std::io::Result<()> {
        let mut out = crate::ui::results()?;
        out.write_all(text.as_bytes())?;
        out.write_all(b"\n")?;
        out.flush()
    }

    /// Writes one line of text that carries names and keys from configs, indexes or servers,
    /// every unprintable character in it escaped ([`crate::ui::cell_text`]): a database name
    /// cannot send a terminal escape or forge a line.
    pub fn text(text: &str) -> std::io::Result<()> {
        Self::line(&crate::ui::cell_text(text))
    }

    /// Writes `value` as pretty JSON, streamed (a 100,000-record list is never held as text).
    pub fn json<T: Serialize>(value: &T) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, crate::ui::results()?);
        serde_json::to_writer_pretty(&mut out, value).map_err(|e| match e.io_error_kind() {
            Some(kind) => std::io::Error::new(kind, e),
            None => std::io::Error::other(e),
        })?;
        out.write_all(b"\n")?;
        out.flush()
    }
}

/// A new table in the house style.
pub fn table(header: &[&str], color: bool) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t.set_content_arrangement(comfy_table::ContentArrangement::Disabled);
    if !color {
        t.force_no_tty();
    }
    t.set_header(header.iter().copied());
    t
}
