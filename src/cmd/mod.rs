//! One module per subcommand: an `Args` (or `Command`) clap definition and a `run` that calls the
//! library and prints the result as a table or as JSON. Shared here: the run [`Context`] and the
//! stdout [`Printer`].

pub mod backup;
pub mod config;
pub mod index;
pub mod list;
pub mod prune;
pub mod report;

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde::Serialize;

use crate::config::Settings;
use crate::ui::Ui;

/// Everything a command needs: resolved settings, output settings, the cancel flag.
#[derive(Debug)]
pub struct Context {
    pub settings: Settings,
    pub ui: Ui,
    pub json: bool,
    pub cancel: Arc<AtomicBool>,
}

impl Context {
    /// Pushes the run's metrics; turns a failed push into a failure only when metrics are
    /// required.
    pub fn push_metrics(
        &self,
        run: &crate::metrics::RunSummary,
        code: crate::exit::ExitCode,
    ) -> crate::exit::ExitCode {
        let pushed = crate::metrics::push_run(&self.settings, &self.ui, run);
        let required = self.settings.metrics.as_ref().is_some_and(|m| m.required);
        if !pushed && required && code == crate::exit::ExitCode::Success {
            crate::exit::ExitCode::Failure
        } else {
            code
        }
    }
}

/// Writes results to stdout.
#[derive(Debug, Clone, Copy)]
pub struct Printer;

impl Printer {
    /// Writes `text` and a newline.
    pub fn line(text: &str) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.write_all(b"\n")?;
        out.flush()
    }

    /// Writes `value` as pretty JSON.
    pub fn json<T: Serialize>(value: &T) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
        Self::line(&text)
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
