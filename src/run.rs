//! One run's lifecycle: [`begin`] notes when a run began, sends the start notifications and
//! runs the `before` hooks (one that fails skips the run); [`publish`] runs the `after_*` and
//! `finally` hooks, hands what the run did to every subscriber (the configured HTML report and
//! the Pushgateway), reading the indexes once for all of them, sends the end notifications, and
//! turns the outcome into the exit code; [`abort`] ends a run that stopped on an error with its
//! failure hooks and notifications. A command calls these and nothing else to announce its run,
//! so a new subscriber, hook point or notifier needs no new call site.
//!
//! | step | failure |
//! | --- | --- |
//! | start notifications | a warning; a `required` notifier fails the run |
//! | `before` hooks (command's, then type's) | the run is skipped: exit 1, reason logged and pushed |
//! | the work | the command's outcome |
//! | `after_success` / `after_failure` (type's, then command's) | exit 1 |
//! | subscribers (report, Pushgateway) | a warning; exit 1 when `metrics.required` |
//! | `required` notifiers' end notifications | exit 1 |
//! | `finally` hooks (type's, then command's) | exit 1 |
//! | subscribers again, when a step since changed the outcome | as above |
//! | other notifiers' end notifications | a warning |
//!
//! Whatever can still fail the run comes before what only reports it: the `finally` hooks get
//! the exit code the run ends with (unless the second push, after them, fails), and the metrics
//! and the last notifications tell the same outcome as the exit code.

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::catalog::Catalog;
use crate::config::hooks::HookPoint;
use crate::config::Settings;
use crate::exit::{ExitCode, Outcome};
use crate::session::Session;
use crate::ui::Ui;

/// The version of the run's JSON document (hooks' `SQLGUARD_RUN_JSON`, webhooks).
pub const RUN_SCHEMA_VERSION: u32 = 1;

/// The most failures a run's document and notifications list.
const MAX_FAILURES: usize = 50;

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
    /// Prune only: removed entries, removed bytes, removed orphans, by server.
    pub pruned: Option<PruneCounts>,
    /// Backup types whose `server`/`type` groups this run refreshes (from the index).
    pub refresh_types: Vec<String>,
    /// What the run did, in a few words (the summary line of its log).
    pub what: Option<String>,
    /// What failed, one line each ("main/shop on local: …").
    pub failures: Vec<String>,
    /// Why the run was skipped (a `before` hook failed).
    pub skipped: Option<String>,
    /// Binlog runs: each server's archive after the run (its metrics group is refreshed).
    pub binlog: Vec<crate::binlog::ArchiveFacts>,
}

/// Removed entries, removed bytes and removed orphans, by server.
pub type PruneCounts = std::collections::BTreeMap<String, (usize, u64, usize)>;

impl Summary {
    /// Has the run refresh the `server`/`type` groups of every configured type, and of the
    /// binary log archives: a prune changes what any of them holds (a removed copy that failed
    /// its verification stops counting only when its group is pushed again).
    pub fn refresh_every_type(&mut self, settings: &crate::config::Settings) {
        self.refresh_types = settings
            .backup_types
            .iter()
            .map(|t| t.name.clone())
            .chain(
                settings
                    .backed_up()
                    .any(|s| s.binlog.is_some())
                    .then(|| crate::binlog::TYPE.to_string()),
            )
            .collect();
    }

    /// Whether the run succeeded.
    pub fn ok(&self) -> bool {
        self.outcome.is_ok()
    }
}

/// A run in progress: when it started, and what its hooks and notifications need.
#[derive(Debug)]
pub struct Run {
    pub command: &'static str,
    pub backup_type: Option<String>,
    started: DateTime<Utc>,
    clock: Instant,
    servers: Vec<String>,
    /// What a `required` notifier said when it failed at the start: the run fails.
    start_failed: RefCell<Vec<String>>,
    /// The private directory of the run's JSON document, made for the first hook.
    workdir: RefCell<Option<tempfile::TempDir>>,
}

impl Run {
    /// Starts a run of `command` (of `backup_type`, for backups), without hooks or
    /// notifications (a dry run); see [`begin`].
    pub fn start(command: &'static str, backup_type: Option<&str>) -> Run {
        Run {
            command,
            backup_type: backup_type.map(String::from),
            started: Utc::now(),
            clock: Instant::now(),
            servers: Vec::new(),
            start_failed: RefCell::default(),
            workdir: RefCell::new(None),
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
            what: None,
            failures: Vec::new(),
            skipped: None,
            binlog: Vec::new(),
        }
    }

    /// The run's document as of now, with `status` and (at the end) `summary` and `exit_code`.
    fn document<'a>(
        &'a self,
        status: &'a str,
        summary: Option<&'a Summary>,
        exit_code: Option<ExitCode>,
    ) -> RunDocument<'a> {
        let finished = exit_code.map(|_| Utc::now());
        RunDocument {
            schema_version: RUN_SCHEMA_VERSION,
            command: self.command,
            backup_type: self.backup_type.as_deref(),
            status,
            exit_code: exit_code.map(ExitCode::code),
            host: crate::host::hostname(),
            started_at: self.started,
            finished_at: finished,
            duration_seconds: finished.map(|_| self.clock.elapsed().as_secs_f64()),
            servers: &self.servers,
            summary: summary.and_then(|s| s.what.as_deref()),
            skipped: summary.and_then(|s| s.skipped.as_deref()),
            failures: summary
                .map(|s| &s.failures[..s.failures.len().min(MAX_FAILURES)])
                .unwrap_or(&[]),
            sqlguard_version: env!("CARGO_PKG_VERSION"),
        }
    }

    /// Writes `doc` as `run.json` in the run's private directory (0700, made on first use, removed
    /// with the run) and returns its path.
    fn write_document(&self, doc: &RunDocument) -> Result<PathBuf, String> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut dir = self.workdir.borrow_mut();
        if dir.is_none() {
            // Those that killed runs left (a week old, this user's, holding only the document).
            crate::process::sweep_dirs(
                &std::env::temp_dir(),
                "sqlguard-run-",
                std::time::Duration::from_secs(7 * 86_400),
                |f| f.file_name() == "run.json" && f.file_type().is_ok_and(|t| t.is_file()),
            );
            *dir = Some(
                tempfile::Builder::new()
                    .prefix("sqlguard-run-")
                    .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
                    .tempdir()
                    .map_err(|e| {
                        format!("cannot make a private directory for the run's JSON document: {e} (check TMPDIR)")
                    })?,
            );
        }
        let path = dir
            .as_ref()
            .map(|d| d.path().join("run.json"))
            .unwrap_or_default();
        let text = serde_json::to_vec_pretty(doc).map_err(|e| e.to_string())?;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(&text))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    }

    /// Runs `hook` of `set` at `point`, with the run's facts as of `status`.
    fn hook(
        &self,
        session: &Session,
        set: &crate::config::hooks::HookSet,
        point: HookPoint,
        status: &str,
        summary: Option<&Summary>,
        exit_code: Option<ExitCode>,
    ) -> Result<(), String> {
        let Some(hook) = set.at(point) else {
            return Ok(());
        };
        let path = self.write_document(&self.document(status, summary, exit_code))?;
        crate::hooks::run(
            hook,
            point,
            std::time::Duration::from_secs(set.timeout.as_secs()),
            &crate::hooks::Facts {
                command: self.command,
                backup_type: self.backup_type.as_deref(),
                status,
                exit_code: exit_code.map(ExitCode::code),
                run_json: &path,
                started_at: self.started,
                servers: &self.servers,
            },
            &session.cancel,
            &session.ui,
        )
    }
}

/// The JSON document of a run: what hooks find at `SQLGUARD_RUN_JSON` and webhooks receive.
/// Every field is always present (`null` when it does not apply yet).
#[derive(Debug, Serialize)]
pub struct RunDocument<'a> {
    pub schema_version: u32,
    pub command: &'a str,
    #[serde(rename = "type")]
    pub backup_type: Option<&'a str>,
    /// `running` (before hooks), `success`, `failure`, `interrupted` or `skipped`.
    pub status: &'a str,
    pub exit_code: Option<i32>,
    pub host: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_seconds: Option<f64>,
    /// The servers the run was asked for (empty: every configured one).
    pub servers: &'a [String],
    /// What the run did, in a few words.
    pub summary: Option<&'a str>,
    /// Why the run was skipped.
    pub skipped: Option<&'a str>,
    /// What failed, one line each (at most 50).
    pub failures: &'a [String],
    pub sqlguard_version: &'static str,
}

/// How a run began.
#[derive(Debug)]
pub enum Begun {
    /// Do the work, then [`publish`] (or [`abort`]).
    Started(Run),
    /// A `before` hook failed: the run was skipped and published.
    Skipped(Skipped),
}

/// A run that a `before` hook skipped: exit with `code`; `reason` is what the hook said.
#[derive(Debug)]
pub struct Skipped {
    pub code: ExitCode,
    pub reason: String,
}

impl Skipped {
    /// The run's failures as a command's JSON document lists them.
    pub fn errors(&self) -> Vec<String> {
        vec![format!("skipped: {}", self.reason)]
    }
}

/// Begins a run of `command` (of `backup_type`) over `servers` (empty: all): sends the start
/// notifications, then runs the `before` hooks, the command's then the type's. A hook that
/// fails skips the run: the reason is logged, the run is published as failed and skipped (its
/// `after_failure` and `finally` hooks run, metrics and notifications say so), and nothing of the
/// work is done.
pub fn begin(
    session: &Session,
    command: &'static str,
    backup_type: Option<&str>,
    servers: &[String],
) -> Begun {
    let mut run = Run::start(command, backup_type);
    run.servers = servers.to_vec();
    let settings = &session.settings;
    let text = format!(
        "sqlguard {} on {}: started",
        run_name(command, backup_type),
        crate::host::hostname()
    );
    for n in settings.notifiers_for(command, backup_type) {
        notify(session, n, crate::notify::Event::Start, &text, "", |e| {
            run.start_failed.borrow_mut().push(e)
        });
    }
    for set in settings.hook_sets(command, backup_type) {
        if let Err(reason) = run.hook(session, set, HookPoint::Before, "running", None, None) {
            session.ui.error(&format!(
                "{} skipped: {reason}",
                run_name(command, backup_type)
            ));
            // A signal during the hook: the run was interrupted rather than refused.
            let outcome = Outcome::of(false, session.cancelled());
            let mut summary = run.summary(outcome, servers);
            summary.what = Some(format!("skipped: {reason}"));
            summary.skipped = Some(reason.clone());
            summary.failures = vec![reason.clone()];
            let code = publish(session, &run, &[summary], outcome).code;
            return Begun::Skipped(Skipped { code, reason });
        }
    }
    Begun::Started(run)
}

/// "backup daily", "prune".
fn run_name(command: &str, backup_type: Option<&str>) -> String {
    match backup_type {
        Some(t) => format!("{command} {t}"),
        None => command.to_string(),
    }
}

/// Sends one notification; a failure is one warning (an error when `required`, and then
/// `failed` is called with it).
fn notify(
    session: &Session,
    n: &crate::config::notify::Notifier,
    event: crate::notify::Event,
    text: &str,
    json: &str,
    failed: impl FnOnce(String),
) {
    let msg = crate::notify::Message { text, json };
    match crate::notify::send(n, event, &msg) {
        Ok(true) => session
            .ui
            .debug(&format!("notified {} ({event:?})", n.label())),
        Ok(false) => {}
        Err(e) if n.required => {
            let at = if event == crate::notify::Event::Start {
                "start"
            } else {
                "end"
            };
            let e = format!(
                "notification failed at the run's {at}: {e} ({} is required)",
                n.key
            );
            session.ui.error(&format!("{e}: the run fails"));
            failed(e);
        }
        Err(e) => session.ui.warn(&format!(
            "notification failed: {e} ({} is not required: exit status unchanged)",
            n.key
        )),
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

/// Ends `run`: its `after_*` and `finally` hooks (with the first of `runs`, the command's own),
/// every subscriber told about `runs` (the indexes are read once, and only when there is a
/// subscriber), its end notifications; and maps `outcome` to the exit code. A hook that fails
/// fails the run; a failed subscriber or notifier warns, and fails a run that otherwise
/// succeeded only when it is required (`metrics.required`, a notifier's `required`). The order
/// is [`finish`]'s.
pub fn publish(session: &Session, run: &Run, runs: &[Summary], outcome: Outcome) -> Ended {
    finish(session, run, runs.to_vec(), outcome, true)
}

/// Ends `run`, which stopped on `error` before it could [`publish`]: its `after_failure` and
/// `finally` hooks run and its failure is notified; no subscriber is told (the command reports
/// the error and its exit code).
pub fn abort(session: &Session, run: &Run, error: &str) {
    let mut summary = run.summary(Outcome::Failed, &run.servers);
    summary.what = Some(format!("stopped: {error}"));
    summary.failures = vec![error.to_string()];
    finish(session, run, vec![summary], Outcome::Failed, false);
}

/// The word a run's status is, for hooks and notifications.
fn status_word(outcome: Outcome, summary: Option<&Summary>) -> &'static str {
    match outcome {
        Outcome::Ok => "success",
        Outcome::Interrupted => "interrupted",
        Outcome::Failed if summary.is_some_and(|s| s.skipped.is_some()) => "skipped",
        Outcome::Failed => "failure",
    }
}

/// How a run ended: its exit code, and the failures its end added to what the command
/// reported (a hook, a required subscriber or notifier that failed), for the command's JSON.
#[derive(Debug)]
pub struct Ended {
    pub code: ExitCode,
    pub failures: Vec<String>,
}

impl Ended {
    /// A command's own `errors` followed by the failures the run's end added: what its
    /// `--json` document lists.
    pub fn errors(&self, own: &[String]) -> Vec<String> {
        own.iter().chain(&self.failures).cloned().collect()
    }
}

/// The end of a run as it is decided, step by step.
struct Ending {
    runs: Vec<Summary>,
    outcome: Outcome,
    added: Vec<String>,
}

impl Ending {
    /// `why` fails the run; after a signal, a failure is an interruption (exit 130), as the
    /// exit code says.
    fn fail(&mut self, why: String) {
        if crate::signals::stopping() {
            self.outcome = Outcome::Interrupted;
        } else if self.outcome == Outcome::Ok {
            self.outcome = Outcome::Failed;
        }
        self.runs[0].outcome = self.outcome;
        self.runs[0].failures.push(why.clone());
        self.added.push(why);
    }

    fn status(&self) -> &'static str {
        status_word(self.outcome, self.runs.first())
    }

    /// Runs the hooks of `sets` at `point`, innermost first (the type's, then the command's),
    /// told the run as decided so far; a hook that fails fails the run, and one that a signal
    /// stopped makes it interrupted.
    fn hooks(
        &mut self,
        session: &Session,
        run: &Run,
        sets: &[&crate::config::hooks::HookSet],
        point: HookPoint,
    ) {
        let mut failed = false;
        for set in sets.iter().rev() {
            let (status, code) = (self.status(), ExitCode::from(self.outcome));
            if let Err(e) = run.hook(session, set, point, status, self.runs.first(), Some(code)) {
                session.ui.error(&e);
                self.fail(e);
                failed = true;
            }
        }
        if failed && crate::signals::stopping() {
            self.outcome = Outcome::Interrupted;
            self.runs[0].outcome = Outcome::Interrupted;
        }
    }

    /// Tells every subscriber about the runs; a required one that fails fails the run.
    fn tell(&mut self, session: &Session, subs: &[Box<dyn Subscriber>]) {
        if subs.is_empty() {
            return;
        }
        let catalog = session.catalog(&[]);
        for s in subs {
            if let Err(e) = s.publish(&session.settings, &self.runs, &catalog, &session.ui) {
                // A required subscriber's failure fails the run: an error, shown under
                // --quiet, not a warning.
                if s.required() {
                    session.ui.error(&e);
                    self.fail(e);
                } else {
                    session.ui.warn(&e);
                }
            }
        }
    }

    /// Sends the end notification to `notifiers`, told the run as decided so far; a required
    /// one that fails fails the run. Returns those that took it.
    fn notify<'n>(
        &mut self,
        session: &Session,
        run: &Run,
        notifiers: &[&'n crate::config::notify::Notifier],
    ) -> Vec<&'n crate::config::notify::Notifier> {
        if notifiers.is_empty() {
            return Vec::new();
        }
        let doc = run.document(
            self.status(),
            self.runs.first(),
            Some(ExitCode::from(self.outcome)),
        );
        let json = serde_json::to_string(&doc).unwrap_or_default();
        let text = end_text(&doc);
        let event = if self.outcome.is_ok() {
            crate::notify::Event::Success
        } else {
            crate::notify::Event::Failure
        };
        let mut failed = Vec::new();
        let mut took = Vec::new();
        for &n in notifiers {
            let mut ok = true;
            notify(session, n, event, &text, &json, |e| {
                ok = false;
                failed.push(e)
            });
            if ok {
                took.push(n);
            }
        }
        for e in failed {
            self.fail(e);
        }
        took
    }
}

/// Ends a run. Everything that can still fail it comes before what only reports it, so that
/// hooks, metrics, notifications and the exit code tell the same outcome:
/// 1. a required notifier that failed at the start fails the run;
/// 2. the `after_success` or `after_failure` hooks;
/// 3. the subscribers (the report, the Pushgateway);
/// 4. the required notifiers' end notifications;
/// 5. the `finally` hooks, told the exit code the run ends with;
/// 6. the subscribers again, and the required notifiers that took the end notification, when
///    4 or 5 changed the outcome they were told (a check left green by a success that the run
///    then lost turns red);
/// 7. the other notifiers, told the final outcome (their failure changes nothing).
fn finish(
    session: &Session,
    run: &Run,
    runs: Vec<Summary>,
    outcome: Outcome,
    tell_subscribers: bool,
) -> Ended {
    let settings = &session.settings;
    if runs.is_empty() {
        return Ended {
            code: outcome.into(),
            failures: Vec::new(),
        };
    }
    // A run that fails after a signal was interrupted (exit 130): every report says so.
    let outcome = if outcome == Outcome::Failed && crate::signals::stopping() {
        Outcome::Interrupted
    } else {
        outcome
    };
    let mut end = Ending {
        runs,
        outcome,
        added: Vec::new(),
    };
    end.runs[0].outcome = outcome;
    for e in run.start_failed.borrow().iter() {
        end.fail(e.clone());
    }
    let sets = settings.hook_sets(run.command, run.backup_type.as_deref());
    let point = if end.outcome.is_ok() {
        HookPoint::AfterSuccess
    } else {
        HookPoint::AfterFailure
    };
    end.hooks(session, run, &sets, point);
    let subs = if tell_subscribers {
        subscribers(settings)
    } else {
        Vec::new()
    };
    end.tell(session, &subs);
    let told = end.outcome;
    let (required, others): (Vec<_>, Vec<_>) = settings
        .notifiers_for(run.command, run.backup_type.as_deref())
        .into_iter()
        .partition(|n| n.required);
    let told_required = end.outcome;
    let took = end.notify(session, run, &required);
    end.hooks(session, run, &sets, HookPoint::Finally);
    if end.outcome != told {
        end.tell(session, &subs);
    }
    if end.outcome != told_required {
        end.notify(session, run, &took);
    }
    end.notify(session, run, &others);
    Ended {
        code: end.outcome.into(),
        failures: end.added,
    }
}

/// The plain-text summary of an ended run: a headline, what it did, what failed (at most 10).
fn end_text(doc: &RunDocument) -> String {
    let mut text = format!(
        "sqlguard {} on {}: {} (exit {})",
        run_name(doc.command, doc.backup_type),
        doc.host,
        doc.status,
        doc.exit_code.unwrap_or_default()
    );
    if let Some(what) = doc.summary {
        text.push_str(&format!("; {what}"));
    }
    if let Some(d) = doc.duration_seconds {
        text.push_str(&format!("; {}", crate::duration::took(d)));
    }
    for f in doc.failures.iter().take(10) {
        text.push_str(&format!("\n- {}", crate::ui::cell_text(f)));
    }
    if doc.failures.len() > 10 {
        text.push_str(&format!("\n- … and {} more", doc.failures.len() - 10));
    }
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_failure_cannot_forge_a_line_of_the_end_text() {
        let failures = ["shop\n- all good\u{1b}[2J".to_string()];
        let doc = super::RunDocument {
            schema_version: 1,
            command: "backup",
            backup_type: None,
            status: "failure",
            exit_code: Some(1),
            host: "h".into(),
            started_at: chrono::Utc::now(),
            finished_at: None,
            duration_seconds: None,
            servers: &[],
            summary: None,
            skipped: None,
            failures: &failures,
            sqlguard_version: crate::VERSION,
        };
        let text = super::end_text(&doc);
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(
            text.trim_end().ends_with("- shop\\n- all good\\u{1b}[2J"),
            "{text}"
        );
    }
}
