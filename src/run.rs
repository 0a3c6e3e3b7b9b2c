//! One run's lifecycle: [`Run::start`] notes when a run began; [`publish`] hands what it did to
//! every subscriber (the configured HTML report and the Pushgateway; hooks and notifications
//! plug in here too), reading the indexes once for all of them, and turns the outcome into the
//! exit code. A command that changes the indexes calls these two and nothing else to publish
//! its run, so a new subscriber needs no new call site.

use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::catalog::Catalog;
use crate::config::Settings;
use crate::exit::{ExitCode, Outcome};
use crate::ui::Ui;

/// What one run did, as its subscribers see it.
#[derive(Debug, Clone)]
pub struct Summary {
    /// `backup`, `prune` or `verify`.
    pub command: &'static str,
    /// The backup type, for backups.
    pub backup_type: Option<String>,
    pub started: DateTime<Utc>,
    pub duration_seconds: f64,
    pub outcome: Outcome,
    /// Servers the run covered (empty: all).
    pub servers: Vec<String>,
    /// Prune only: removed entries, removed bytes, removed orphans.
    pub pruned: Option<(usize, u64, usize)>,
    /// Backup types whose `server`/`type` groups this run refreshes (from the index).
    pub refresh_types: Vec<String>,
}

impl Summary {
    /// Whether the run succeeded.
    pub fn ok(&self) -> bool {
        self.outcome.is_ok()
    }
}

/// A run in progress: when it started.
#[derive(Debug)]
pub struct Run {
    pub command: &'static str,
    pub backup_type: Option<String>,
    started: DateTime<Utc>,
    clock: Instant,
}

impl Run {
    /// Starts a run of `command` (of `backup_type`, for backups).
    pub fn start(command: &'static str, backup_type: Option<&str>) -> Run {
        Run {
            command,
            backup_type: backup_type.map(String::from),
            started: Utc::now(),
            clock: Instant::now(),
        }
    }

    /// What the run did, for [`publish`].
    pub fn summary(&self, outcome: Outcome, servers: &[String]) -> Summary {
        Summary {
            command: self.command,
            backup_type: self.backup_type.clone(),
            started: self.started,
            duration_seconds: self.clock.elapsed().as_secs_f64(),
            outcome,
            servers: servers.to_vec(),
            pruned: None,
            refresh_types: self.backup_type.iter().cloned().collect(),
        }
    }
}

/// Something told about every run that changed the indexes.
pub trait Subscriber: std::fmt::Debug {
    /// Tells it about `runs`; `catalog` holds every index as the runs left them.
    ///
    /// Fails with a message; the failure changes the exit status only when [`Subscriber::required`].
    fn publish(
        &self,
        settings: &Settings,
        runs: &[Summary],
        catalog: &Catalog,
        ui: &Ui,
    ) -> Result<(), String>;

    /// Whether its failure fails the run.
    fn required(&self) -> bool {
        false
    }
}

/// The `report.html` of the config, rewritten from the indexes.
#[derive(Debug)]
pub struct HtmlReport(pub std::path::PathBuf);

impl Subscriber for HtmlReport {
    fn publish(
        &self,
        settings: &Settings,
        _runs: &[Summary],
        catalog: &Catalog,
        ui: &Ui,
    ) -> Result<(), String> {
        let r = crate::report::build(settings, catalog, chrono::Duration::days(30), Utc::now());
        crate::report::write_html(&r, &self.0)
            .map(|()| ui.debug(&format!("report written to {}", self.0.display())))
            .map_err(|e| format!("could not write the report {}: {e}", self.0.display()))
    }
}

/// The Pushgateway of the config.
#[derive(Debug)]
pub struct Pushgateway {
    pub required: bool,
}

impl Subscriber for Pushgateway {
    fn publish(
        &self,
        settings: &Settings,
        runs: &[Summary],
        catalog: &Catalog,
        ui: &Ui,
    ) -> Result<(), String> {
        for run in runs {
            crate::metrics::push_run(settings, ui, run, catalog)?;
        }
        Ok(())
    }

    fn required(&self) -> bool {
        self.required
    }
}

/// The subscribers the configuration asks for.
pub fn subscribers(settings: &Settings) -> Vec<Box<dyn Subscriber>> {
    let mut out: Vec<Box<dyn Subscriber>> = Vec::new();
    if let Some(path) = &settings.report_html {
        out.push(Box::new(HtmlReport(path.clone())));
    }
    if let Some(m) = &settings.metrics {
        out.push(Box::new(Pushgateway {
            required: m.required,
        }));
    }
    out
}

/// Tells every subscriber about `runs` (the indexes are read once, and only when there is a
/// subscriber), and maps `outcome` to the exit code: a failed subscriber warns, and fails a run
/// that otherwise succeeded only when it is required (`metrics.required`).
pub fn publish(session: &crate::session::Session, runs: &[Summary], outcome: Outcome) -> ExitCode {
    let (settings, ui) = (&session.settings, &session.ui);
    let subs = subscribers(settings);
    if subs.is_empty() || runs.is_empty() {
        return outcome.into();
    }
    let catalog = session.catalog(&[]);
    let mut outcome = outcome;
    for s in &subs {
        if let Err(e) = s.publish(settings, runs, &catalog, ui) {
            ui.warn(&e);
            if s.required() && outcome == Outcome::Ok {
                outcome = Outcome::Failed;
            }
        }
    }
    outcome.into()
}
